//! `Authority::authenticate` with whatever a client sends: Basic, Post (secret or signed
//! credential) and assertions, against the fixture's applications.
//!
//! Input: `mode \0 client \0 a \0 b`. Mode 0 Basic{client, a}, 1 Post{client, a},
//! 2 Assertion{client (empty: none), type a (empty: jwt-bearer), assertion b}; bit 4
//! asks the `op` realm instead of `default`. A one-byte client field 0..=3 names the
//! fixture's `basic`, `d1`, `jwt`, `off`; a one-byte secret field 0 is that client's
//! secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::ClientAuth;
use tessera_core::client_auth::JWT_BEARER;
use tessera_core::domain::AuthMethod;
use tessera_fuzz::{fields, fixture};

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let parts = fields(data, 4);
    let mode = parts[0].first().copied().unwrap_or(0);
    let realm_name = if mode & 16 == 0 { "default" } else { "op" };
    let named = match parts[1] {
        [i @ 0..=3] => Some(&fx.clients[usize::from(*i)]),
        _ => None,
    };
    let client_id = match named {
        Some(client) => client.client_id.clone(),
        None => String::from_utf8_lossy(parts[1]).into_owned(),
    };
    let text = |raw: &[u8]| match (raw, named) {
        ([0], Some(client)) => client.secret.clone(),
        _ => String::from_utf8_lossy(raw).into_owned(),
    };
    let auth = match mode % 3 {
        0 => ClientAuth::Basic {
            client_id: client_id.clone(),
            secret: text(parts[2]),
        },
        1 => ClientAuth::Post {
            client_id: client_id.clone(),
            secret: text(parts[2]),
        },
        _ => ClientAuth::Assertion {
            client_id: (!parts[1].is_empty()).then(|| client_id.clone()),
            assertion_type: if parts[2].is_empty() {
                JWT_BEARER.to_owned()
            } else {
                text(parts[2])
            },
            assertion: text(parts[3]),
        },
    };
    let realm = fx.realm(realm_name);
    let result = fx.block_on(fx.authority.authenticate(&realm, &auth));
    // The client these credentials are for, if it is one of the fixture's in this realm.
    let known = fx
        .clients
        .iter()
        .find(|c| c.client_id == client_id && c.realm == realm_name);
    match (&auth, &result) {
        (_, Err(err)) => {
            assert_eq!(err.code(), "invalid_client", "{auth:?}: {err:?}");
            if let (ClientAuth::Basic { secret, .. }, Some(c)) = (&auth, known) {
                assert!(
                    !(c.allows(AuthMethod::ClientSecretBasic) && *secret == c.secret),
                    "the right Basic secret was refused: {err:?}"
                );
            }
            if let (ClientAuth::Post { secret, .. }, Some(c)) = (&auth, known) {
                assert!(
                    !(c.allows(AuthMethod::ClientSecretPost) && *secret == c.secret),
                    "the right Post secret was refused: {err:?}"
                );
            }
        }
        (ClientAuth::None, Ok(_)) => panic!("no credentials authenticated"),
        (ClientAuth::Basic { secret, .. }, Ok(app)) => {
            let c = known.expect("only a known client authenticates");
            assert_eq!(app.client_id.as_str(), c.client_id);
            assert!(c.allows(AuthMethod::ClientSecretBasic), "{c:?}");
            assert_eq!(*secret, c.secret, "Basic with a wrong secret");
        }
        (ClientAuth::Post { secret, .. }, Ok(app)) => {
            let c = known.expect("only a known client authenticates");
            assert_eq!(app.client_id.as_str(), c.client_id);
            // A signed credential is checked by the signed_credential target.
            let signed = c.allows(AuthMethod::SignedCredential) && secret.len() >= 256;
            assert!(
                signed || (c.allows(AuthMethod::ClientSecretPost) && *secret == c.secret),
                "Post with a wrong secret: {c:?}"
            );
        }
        (ClientAuth::Assertion { .. }, Ok(app)) => {
            // Only the fixed RSA key can have signed an assertion given in advance.
            let c = known.or_else(|| {
                fx.clients
                    .iter()
                    .find(|c| c.client_id == app.client_id.as_str())
            });
            let c = c.expect("only a known client authenticates");
            assert!(c.allows(AuthMethod::PrivateKeyJwt), "{c:?}");
        }
    }
});
