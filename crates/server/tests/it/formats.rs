//! Token formats: RFC 9068 JWTs verified by an independent library against the published
//! JWKS (ES256, RS256, EdDSA), and opaque tokens with the realm's prefix.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_lifetime, now_s};

/// The realm's JWKS, fetched from `path` (cacheable, JSON).
async fn fetch_jwks(server: &TestServer, path: &str) -> JwkSet {
    let reply = server.get(path).await;
    reply.expect_status(200);
    let body = reply.json();
    assert!(
        reply
            .header("cache-control")
            .is_some_and(|v| v.starts_with("public")),
        "{:?}",
        reply.headers
    );
    serde_json::from_value(body).expect("a JWKS")
}

fn decoding_key(jwk: &Jwk) -> DecodingKey {
    match &jwk.algorithm {
        // Built from the raw component, as some versions of the library want it.
        AlgorithmParameters::OctetKeyPair(okp) => {
            DecodingKey::from_ed_components(&okp.x).expect("Ed25519 key")
        }
        _ => DecodingKey::from_jwk(jwk).expect("a usable JWK"),
    }
}

/// Verifies `token` with the JWKS at `jwks_path`: header, signature and claims.
async fn verify_jwt(
    server: &TestServer,
    token: &str,
    jwks_path: &str,
    alg: Algorithm,
    issuer: &str,
    audience: &str,
) -> Value {
    let header = decode_header(token).expect("a JWT header");
    assert_eq!(header.alg, alg);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("kid in the header");
    let jwks = fetch_jwks(server, jwks_path).await;
    let jwk = jwks.find(&kid).expect("the kid is published");
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    let data = decode::<Value>(token, &decoding_key(jwk), &validation)
        .unwrap_or_else(|e| panic!("{alg:?} token does not verify: {e}"));
    let claims = data.claims;
    for key in ["iss", "sub", "jti", "client_id", "scope"] {
        assert!(claims[key].is_string(), "{key} in {claims}");
    }
    for key in ["exp", "iat"] {
        assert!(claims[key].is_i64(), "{key} in {claims}");
    }
    assert!(claims["aud"].is_string() || claims["aud"].is_array());
    let iat = claims["iat"].as_i64().expect("iat");
    assert!((iat - now_s()).abs() <= 5, "iat {iat} is now");

    // Any change to the signed part breaks the signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut forged = claims.clone();
    forged["scope"] = json!("admin");
    parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
    assert!(decode::<Value>(parts.join("."), &decoding_key(jwk), &validation).is_err());
    claims
}

#[tokio::test]
async fn default_tokens_are_es256_jwts_that_verify_against_the_jwks() {
    let server = TestServer::start().await;
    let public = server.public_url();
    let (id, secret) = server.simple_app("default").await;
    let token = server.fetch_token("", &id, &secret).await;
    let claims = verify_jwt(
        &server,
        &token,
        "/.well-known/jwks.json",
        Algorithm::ES256,
        &public,
        &public,
    )
    .await;
    assert_eq!(claims["iss"], public);
    assert_eq!(claims["aud"], public);
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["client_id"], id);
    assert_eq!(claims["scope"], "read write");
    assert_lifetime(&claims, 3600);

    // Introspection tells the same story as the claims.
    let active = server.assert_alive("", &id, &secret, &token).await;
    for key in ["iss", "sub", "client_id", "scope", "exp", "iat", "jti"] {
        assert_eq!(active[key], claims[key], "{key}");
    }
    assert_eq!(active["token_type"], "Bearer");

    // Every token has its own jti.
    let again = server.fetch_token("", &id, &secret).await;
    let claims2 = crate::harness::jwt_claims(&again);
    assert_ne!(claims["jti"], claims2["jti"]);

    // The keycloak path serves the same keys.
    let jwks = fetch_jwks(&server, "/.well-known/jwks.json").await;
    let certs = fetch_jwks(&server, "/protocol/openid-connect/certs").await;
    assert_eq!(jwks, certs);
    assert_eq!(jwks.keys.len(), 1);
    let key = serde_json::to_value(&jwks.keys[0]).expect("JWK");
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert!(key.get("d").is_none(), "no private part in {key}");
}

#[tokio::test]
async fn rs256_and_eddsa_realms_sign_with_their_algorithm() {
    let server = TestServer::start().await;
    let public = server.public_url();
    for (realm, alg_name, alg, kty) in [
        ("keycloak", "RS256", Algorithm::RS256, "RSA"),
        ("edwards", "EdDSA", Algorithm::EdDSA, "OKP"),
        ("edwards2", "Ed25519", Algorithm::EdDSA, "OKP"),
    ] {
        let view = server
            .create_realm(json!({"name": realm, "signing_alg": alg_name}))
            .await;
        let expected_alg = if alg == Algorithm::RS256 {
            "RS256"
        } else {
            "EdDSA"
        };
        assert_eq!(view["signing_alg"], expected_alg);
        let (id, secret) = server.simple_app(realm).await;
        // The keycloak dialect (D3): a form post at the /auth/realms path.
        let reply = server
            .post_form(
                &format!("/auth/realms/{realm}/protocol/openid-connect/token"),
                None,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ],
            )
            .await;
        let body = reply.expect_token();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], "read write");
        let token = body["access_token"].as_str().expect("token");
        let issuer = format!("{public}/realms/{realm}");
        for jwks_path in [
            format!("/realms/{realm}/.well-known/jwks.json"),
            format!("/realms/{realm}/protocol/openid-connect/certs"),
            format!("/auth/realms/{realm}/protocol/openid-connect/certs"),
        ] {
            let claims = verify_jwt(&server, token, &jwks_path, alg, &issuer, &issuer).await;
            assert_eq!(claims["client_id"], id);
        }
        let jwks = fetch_jwks(&server, &format!("/realms/{realm}/.well-known/jwks.json")).await;
        let key = serde_json::to_value(&jwks.keys[0]).expect("JWK");
        assert_eq!(key["kty"], kty, "{realm}");
        assert!(key.get("d").is_none() && key.get("p").is_none(), "{key}");
        // The default realm's keys do not verify this realm's tokens.
        let default_jwks = fetch_jwks(&server, "/.well-known/jwks.json").await;
        let kid = decode_header(token).expect("header").kid.expect("kid");
        assert!(default_jwks.find(&kid).is_none());
        server
            .assert_alive(&format!("/realms/{realm}"), &id, &secret, token)
            .await;
    }
}

#[tokio::test]
async fn a_new_signing_algorithm_keeps_the_old_key_published() {
    let server = TestServer::start().await;
    let public = server.public_url();
    let (id, secret) = server.simple_app("default").await;
    let old = server.fetch_token("", &id, &secret).await;
    server
        .admin(
            Method::PATCH,
            "/admin/v1/realms/default",
            Some(json!({"signing_alg": "RS256"})),
        )
        .await
        .expect_status(200);
    let new = server.fetch_token("", &id, &secret).await;
    assert_eq!(decode_header(&new).expect("header").alg, Algorithm::RS256);
    let jwks = fetch_jwks(&server, "/.well-known/jwks.json").await;
    assert_eq!(jwks.keys.len(), 2, "the retired ES256 key stays published");
    verify_jwt(
        &server,
        &old,
        "/.well-known/jwks.json",
        Algorithm::ES256,
        &public,
        &public,
    )
    .await;
    verify_jwt(
        &server,
        &new,
        "/.well-known/jwks.json",
        Algorithm::RS256,
        &public,
        &public,
    )
    .await;
    server.assert_alive("", &id, &secret, &old).await;
    server.assert_alive("", &id, &secret, &new).await;
}

#[tokio::test]
async fn opaque_tokens_carry_the_prefix_and_are_checked_by_introspection() {
    let server = TestServer::start().await;
    let public = server.public_url();
    // An opaque application in the (JWT) default realm.
    let (id, secret) = server
        .create_app(
            "default",
            json!({"name": "o", "scopes": ["read"], "token_format": "opaque"}),
        )
        .await;
    let token = server.fetch_token("", &id, &secret).await;
    assert!(token.starts_with("tsr_at_"), "{token}");
    assert!(!token.contains('.'), "{token}");
    let active = server.assert_alive("", &id, &secret, &token).await;
    assert_eq!(active["iss"], public);
    assert_eq!(active["client_id"], id);
    assert_eq!(active["sub"], id);
    assert_eq!(active["scope"], "read");
    assert_eq!(active["token_type"], "Bearer");
    assert!(active["jti"].is_string());
    let verify = server.verify("", &token).await;
    assert_eq!(verify.header("x-scope"), Some("read"));

    // Altered, truncated or re-prefixed tokens are nothing.
    let body = token.strip_prefix("tsr_at_").expect("prefix");
    let mut flipped = body.as_bytes().to_vec();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    let flipped = format!("tsr_at_{}", String::from_utf8(flipped).expect("ascii"));
    for bad in [
        flipped.as_str(),
        &token[..token.len() - 4],
        &format!("ory_at_{body}"),
        body,
        "tsr_at_",
    ] {
        server.assert_dead("", &id, &secret, bad).await;
    }

    // A realm-wide opaque format, and the app-level override back to JWT.
    server
        .create_realm(json!({"name": "op", "token_format": "opaque", "token_prefix": "op-"}))
        .await;
    let (oid, osecret) = server.simple_app("op").await;
    let (jid, jsecret) = server
        .create_app("op", json!({"name": "j", "token_format": "jwt"}))
        .await;
    let opaque = server.fetch_token("/realms/op", &oid, &osecret).await;
    assert!(opaque.starts_with("op-"), "{opaque}");
    let jwt = server.fetch_token("/realms/op", &jid, &jsecret).await;
    assert_eq!(jwt.split('.').count(), 3, "{jwt}");
    server
        .assert_alive("/realms/op", &oid, &osecret, &opaque)
        .await;
    server
        .assert_alive("/realms/op", &oid, &osecret, &jwt)
        .await;
}

#[tokio::test]
async fn forged_jwts_are_refused() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let token = server.fetch_token("", &id, &secret).await;
    let parts: Vec<&str> = token.split('.').collect();
    let claims = crate::harness::jwt_claims(&token);
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");

    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_i64().expect("exp") + 100_000);
    let mut none_header = header.clone();
    none_header["alg"] = json!("none");
    let mut hs_header = header.clone();
    hs_header["alg"] = json!("HS256");
    let mut other_kid = header.clone();
    other_kid["kid"] = json!("not-a-kid");
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let forgeries = [
        format!("{}.{}.{}", parts[0], enc(&longer), parts[2]),
        format!("{}.{}.", enc(&none_header), parts[1]),
        format!("{}.{}.{}", enc(&hs_header), parts[1], parts[2]),
        format!("{}.{}.{}", enc(&other_kid), parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            &parts[2][..parts[2].len() - 2]
        ),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.x"),
    ];
    for forged in &forgeries {
        server.assert_dead("", &id, &secret, forged).await;
    }
    server.assert_alive("", &id, &secret, &token).await;
}
