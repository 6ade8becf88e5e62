//! `private_key_jwt` client assertions (RFC 7523) through `Authority::authenticate`:
//! `CompactJws::split`, the header, the claims, the signature with each key type, the
//! audience, the lifetime and the `jti` replay check.
//!
//! Input: `mode \0 header \0 claims \0 extra`. Mode bits 0-1 pick the key that signs
//! (0 ES256 "ec", 1 EdDSA "ed", 2 RS256 PEM) or 3: the header field is the assertion as
//! sent, unsigned. Bit 2: a well-formed header for that key instead of the field; bit 3:
//! well-formed claims for `jwt` instead of the field, with the audience picked by
//! `extra[0]`, `exp` now + i16 `extra[1..3]` seconds and `jti` the hex of `extra[3..]`;
//! bit 4: `client_id` in the body too; bit 5: one signature character changed; bit 6:
//! a wrong `client_assertion_type`.
#![no_main]

use std::collections::HashSet;
use std::fmt::Write;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tessera_core::ClientAuth;
use tessera_core::client_auth::JWT_BEARER;
use tessera_fuzz::{NOW_S, SERVER_URL, fields, fixture};

/// The `jti`s accepted so far.
static ACCEPTED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

const PATHS: [&str; 11] = [
    "",
    "/oauth2/token",
    "/oauth2/token/",
    "/oauth/token",
    "/passport/oauth/token",
    "/v2/token",
    "/protocol/openid-connect/token",
    "/oauth2/introspect",
    "/protocol/openid-connect/token/introspect",
    "/oauth2/revoke",
    "/protocol/openid-connect/revoke",
];

/// Whether some value of `aud` names `default` or one of its endpoints (RFC 7523 §3);
/// the server may be stricter.
fn audience_ok(aud: Option<&Value>) -> bool {
    let bases = [
        SERVER_URL.to_owned(),
        format!("{SERVER_URL}/realms/default"),
        format!("{SERVER_URL}/auth/realms/default"),
    ];
    let one = |s: &str| {
        bases.iter().any(|b| {
            s.strip_prefix(b.as_str())
                .is_some_and(|p| PATHS.contains(&p))
        })
    };
    match aud {
        Some(Value::String(s)) => one(s),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).any(one),
        _ => false,
    }
}

/// An audience for the template claims, and whether it must be accepted (`None`: a
/// matter of policy the target does not pin down, such as a list of several values or
/// the introspection endpoint).
fn audience_choice(pick: u8) -> (Value, Option<bool>) {
    match pick % 10 {
        0 => (json!(format!("{SERVER_URL}/oauth2/token")), Some(true)),
        1 => (json!(SERVER_URL), Some(true)),
        2 => (
            json!(format!(
                "{SERVER_URL}/realms/default/protocol/openid-connect/token"
            )),
            Some(true),
        ),
        3 => (json!([format!("{SERVER_URL}/v2/token")]), Some(true)),
        4 => (json!("https://evil.example/oauth2/token"), Some(false)),
        5 => (json!(format!("{SERVER_URL}/oauth2/tokens")), Some(false)),
        6 => (
            json!(format!("{SERVER_URL}/realms/ed/oauth2/token")),
            Some(false),
        ),
        7 => (json!([1, null, {"a": SERVER_URL}]), Some(false)),
        8 => (
            json!([
                "https://elsewhere.example",
                format!("{SERVER_URL}/v2/token")
            ]),
            None,
        ),
        _ => (json!(format!("{SERVER_URL}/oauth2/introspect")), None),
    }
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let jwt = fx.client("jwt");
    let parts = fields(data, 4);
    let mode = parts[0].first().copied().unwrap_or(0);
    let (header, claims, extra) = (parts[1], parts[2], parts[3]);
    let key = mode & 3;
    let template_header = mode & 4 != 0;
    let template_claims = mode & 8 != 0;
    let tamper = mode & 32 != 0;
    let right_type = mode & 64 == 0;

    let header: Vec<u8> = if template_header {
        let (alg, kid) = match key {
            0 => ("ES256", Some("ec")),
            1 => ("EdDSA", Some("ed")),
            _ => ("RS256", None),
        };
        match kid {
            Some(kid) => json!({"alg": alg, "kid": kid, "typ": "JWT"}),
            None => json!({"alg": alg}),
        }
        .to_string()
        .into_bytes()
    } else {
        header.to_vec()
    };
    let mut exp_delta = 0;
    let mut jti = String::new();
    let claims: Vec<u8> = if template_claims {
        exp_delta = i64::from(i16::from_le_bytes([
            extra.get(1).copied().unwrap_or(0),
            extra.get(2).copied().unwrap_or(0),
        ]));
        for b in extra.get(3..).unwrap_or_default() {
            let _ = write!(jti, "{b:02x}");
        }
        json!({
            "iss": jwt.client_id, "sub": jwt.client_id,
            "aud": audience_choice(extra.first().copied().unwrap_or(0)).0,
            "exp": NOW_S + exp_delta, "iat": NOW_S, "jti": jti,
        })
        .to_string()
        .into_bytes()
    } else {
        claims.to_vec()
    };
    let mut assertion = if key == 3 {
        String::from_utf8_lossy(&header).into_owned()
    } else {
        fx.sign_assertion(key, &header, &claims)
    };
    if tamper && key != 3 {
        let last = assertion.pop().unwrap_or('A');
        assertion.push(if last == 'A' { 'B' } else { 'A' });
    }
    let auth = ClientAuth::Assertion {
        client_id: (mode & 16 != 0).then(|| jwt.client_id.clone()),
        assertion_type: if right_type {
            JWT_BEARER.to_owned()
        } else {
            format!("{JWT_BEARER}x")
        },
        assertion: assertion.clone(),
    };
    let realm = fx.realm("default");
    let result = fx.block_on(fx.authority.authenticate(&realm, &auth));
    let mut accepted = ACCEPTED.lock().unwrap_or_else(|e| e.into_inner());
    let accepted = accepted.get_or_insert_with(HashSet::new);
    match &result {
        Err(err) => {
            assert_eq!(err.code(), "invalid_client", "{err:?}");
            let should_pass = template_header
                && template_claims
                && key != 3
                && !tamper
                && right_type
                && (1..=3660).contains(&exp_delta)
                && audience_choice(extra.first().copied().unwrap_or(0)).1 == Some(true)
                && !accepted.contains(&jti);
            assert!(!should_pass, "a good assertion was refused: {err:?}");
        }
        Ok(app) => {
            assert_eq!(app.client_id.as_str(), jwt.client_id);
            assert!(right_type, "a wrong client_assertion_type passed");
            assert!(!tamper || key == 3, "a changed signature verified");
            // What the assertion says, read independently of the server.
            let mut pieces = assertion.split('.');
            let (h, c) = (pieces.next().unwrap_or(""), pieces.next().unwrap_or(""));
            let header: Value =
                serde_json::from_slice(&B64.decode(h).expect("header b64")).expect("header JSON");
            let claims: Value =
                serde_json::from_slice(&B64.decode(c).expect("claims b64")).expect("claims JSON");
            assert!(
                matches!(header["alg"].as_str(), Some("RS256" | "ES256" | "EdDSA")),
                "{header}"
            );
            assert_eq!(claims["iss"].as_str(), Some(&*jwt.client_id), "{claims}");
            assert_eq!(claims["sub"].as_str(), Some(&*jwt.client_id), "{claims}");
            let exp = claims["exp"].as_i64().expect("exp is an integer");
            assert!(exp > NOW_S && exp <= NOW_S + 3660, "exp {exp}");
            for name in ["nbf", "iat"] {
                match &claims[name] {
                    Value::Null => {}
                    v => assert!(v.as_i64().is_some_and(|t| t <= NOW_S + 60), "{name} {v}"),
                }
            }
            assert!(audience_ok(claims.get("aud")), "aud {}", claims["aud"]);
            let jti = claims["jti"].as_str().expect("jti is a string").to_owned();
            assert!(accepted.insert(jti), "a jti was accepted twice");
        }
    }
});
