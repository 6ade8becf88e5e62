//! The five dialects (docs/dialects.md) as their providers' clients speak them, and the
//! bad input each invites: every refusal is `invalid_client` (or `invalid_grant` for a
//! refresh token), never a 500.

use std::path::Path;
use std::process::Command;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::{Value, json};
use tessera_test_support::pem;

use crate::harness::{TestServer, basic, now_s};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What `RSA_private_encrypt` with PKCS#1 padding makes of `message`, via the
/// command line the provider's users would reach for: `openssl rsautl -sign`.
fn signed_credential(dir: &Path, key: &str, message: &str) -> String {
    std::fs::write(dir.join("msg"), message).unwrap();
    openssl(
        dir,
        &[
            "rsautl", "-sign", "-inkey", key, "-in", "msg", "-out", "sig",
        ],
    );
    STANDARD.encode(std::fs::read(dir.join("sig")).unwrap())
}

fn now_ms() -> i64 {
    now_s() * 1000
}

#[tokio::test]
async fn d1_signed_credential_from_openssl_gets_a_token_once() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    openssl(path, &["genrsa", "-out", "key.pem", "2048"]);
    openssl(
        path,
        &["rsa", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
    );
    openssl(path, &["genrsa", "-out", "other.pem", "2048"]);
    let public_key = std::fs::read_to_string(path.join("pub.pem")).unwrap();
    let (id, secret) = server
        .create_app(
            "default",
            json!({"name": "d1", "auth_methods": ["signed_credential"], "public_key": public_key}),
        )
        .await;
    let credential = signed_credential(path, "key.pem", &format!("{id}:{secret}:{}", now_ms()));
    let form = |credential: &str| {
        vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), id.clone()),
            ("client_secret".to_owned(), credential.to_owned()),
        ]
    };
    let send = |pairs: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = crate::harness::form_body(&pairs);
        server.post_raw("/v2/token", Some(crate::harness::FORM), None, body)
    };
    let token = send(form(&credential)).await.expect_token();
    assert_eq!(token["expires_in"], 3600);
    let access = token["access_token"].as_str().unwrap().to_owned();
    server.verify("", &access).await.expect_status(200);

    let replay = send(form(&credential))
        .await
        .expect_oauth_error(401, "invalid_client");
    assert!(
        replay["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );

    let stale = signed_credential(
        path,
        "key.pem",
        &format!("{id}:{secret}:{}", now_ms() - 600_000),
    );
    let early = signed_credential(
        path,
        "key.pem",
        &format!("{id}:{secret}:{}", now_ms() + 600_000),
    );
    let wrong_key = signed_credential(path, "other.pem", &format!("{id}:{secret}:{}", now_ms()));
    let wrong_secret = signed_credential(path, "key.pem", &format!("{id}:nope:{}", now_ms()));
    let wrong_id = signed_credential(path, "key.pem", &format!("someone:{secret}:{}", now_ms()));
    let fresh = signed_credential(path, "key.pem", &format!("{id}:{secret}:{}", now_ms()));
    for (why, credential) in [
        ("outside the window (old)", stale),
        ("outside the window (future)", early),
        ("another key", wrong_key),
        ("wrong secret inside", wrong_secret),
        ("another client inside", wrong_id),
        ("truncated", fresh[..fresh.len() / 2].to_owned()),
        ("not base64", "%%%%not base64%%%%".repeat(20)),
        ("the plain secret", secret.clone()),
    ] {
        let reply = send(form(&credential)).await;
        assert_eq!(reply.status, 401, "{why}: {}", reply.text());
        reply.expect_oauth_error(401, "invalid_client");
    }
}

fn assertion(alg: &str, sign: impl Fn(&[u8]) -> Vec<u8>, claims: &Value) -> String {
    let header = B64.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
    let input = format!("{header}.{}", B64.encode(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", B64.encode(signature))
}

#[tokio::test]
async fn private_key_jwt_with_rsa_pem_and_ed25519_jwks() {
    let server = TestServer::start().await;
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let rsa_der = rsa.public_key().as_der().unwrap();
    let (rsa_id, _) = server
        .create_app(
            "default",
            json!({"name": "rsa", "auth_methods": ["private_key_jwt"],
                   "public_key": pem("PUBLIC KEY", rsa_der.as_ref()), "scopes": ["read"]}),
        )
        .await;
    let ed = Ed25519KeyPair::generate().unwrap();
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "ed1",
                                "x": B64.encode(ed.public_key().as_ref())}]});
    let (ed_id, _) = server
        .create_app(
            "default",
            json!({"name": "ed", "auth_methods": ["private_key_jwt"], "jwks": jwks}),
        )
        .await;
    let audience = format!("{}/oauth2/token", server.public_url());
    let claims = |id: &str, jti: &str| json!({"iss": id, "sub": id, "aud": audience, "jti": jti, "exp": now_s() + 60, "iat": now_s()});
    let sign_rsa = |input: &[u8]| {
        let mut sig = vec![0u8; rsa.public_modulus_len()];
        rsa.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input, &mut sig)
            .unwrap();
        sig
    };
    let sign_ed = |input: &[u8]| ed.sign(input).as_ref().to_vec();
    let request = |client_id: Option<&str>, jwt: &str| {
        let mut pairs = vec![
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", jwt),
        ];
        if let Some(id) = client_id {
            pairs.push(("client_id", id));
        }
        let body = crate::harness::form_body(&pairs);
        server.post_raw("/oauth2/token", Some(crate::harness::FORM), None, body)
    };

    let rsa_jwt = assertion("RS256", sign_rsa, &claims(&rsa_id, "r1"));
    let token = request(Some(&rsa_id), &rsa_jwt).await.expect_token();
    assert_eq!(token["scope"], "read");
    request(Some(&rsa_id), &rsa_jwt)
        .await
        .expect_oauth_error(401, "invalid_client");

    // No client_id in the body: the client is the assertion's iss/sub. Both names of
    // the Ed25519 algorithm are accepted.
    for (alg, jti) in [("EdDSA", "e1"), ("Ed25519", "e2")] {
        let jwt = assertion(alg, sign_ed, &claims(&ed_id, jti));
        request(None, &jwt).await.expect_token();
    }

    // The classic confusion: HS256 "signed" with the RSA public key as the HMAC secret.
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, rsa_der.as_ref());
    let sign_hs = |input: &[u8]| aws_lc_rs::hmac::sign(&hmac_key, input).as_ref().to_vec();
    let expired =
        json!({"iss": rsa_id, "sub": rsa_id, "aud": audience, "jti": "x1", "exp": now_s() - 5});
    let wrong_aud = json!({"iss": rsa_id, "sub": rsa_id, "aud": "https://elsewhere.example/token", "jti": "x2", "exp": now_s() + 60});
    for (why, jwt) in [
        (
            "HS256 against an RSA key",
            assertion("HS256", sign_hs, &claims(&rsa_id, "h1")),
        ),
        (
            "alg none",
            assertion("none", |_| Vec::new(), &claims(&rsa_id, "n1")),
        ),
        ("expired", assertion("RS256", sign_rsa, &expired)),
        ("wrong aud", assertion("RS256", sign_rsa, &wrong_aud)),
        (
            "signed by another key",
            assertion("EdDSA", sign_ed, &claims(&rsa_id, "o1")),
        ),
        ("not a JWT", "not-a-jwt".to_owned()),
    ] {
        let reply = request(Some(&rsa_id), &jwt).await;
        assert_eq!(reply.status, 401, "{why}: {}", reply.text());
        reply.expect_oauth_error(401, "invalid_client");
    }
    // A wrong assertion type, and an assertion beside a secret, are request errors.
    let body = crate::harness::form_body(&[
        ("grant_type", "client_credentials"),
        ("client_assertion", &rsa_jwt),
    ]);
    server
        .post_raw("/oauth2/token", Some(crate::harness::FORM), None, body)
        .await
        .expect_oauth_error(400, "invalid_request");

    let metadata = server
        .get("/.well-known/oauth-authorization-server")
        .await
        .json();
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.contains(&json!("private_key_jwt")), "{metadata}");
    assert!(metadata["token_endpoint_auth_signing_alg_values_supported"].is_array());
}

#[tokio::test]
async fn d3_keycloak_realm_with_refresh_tokens() {
    let server = TestServer::start().await;
    server
        .create_realm(json!({"name": "Arkane", "signing_alg": "RS256", "token_type": "bearer"}))
        .await;
    let (id, secret) = server
        .create_app(
            "Arkane",
            json!({"name": "Striegel-capsule", "scopes": ["view:wallets", "sign:wallets", "email"],
                   "refresh_token_ttl": 3456000, "token_ttl": 1800, "roles": ["query-clients"]}),
        )
        .await;
    let path = "/auth/realms/Arkane/protocol/openid-connect/token";
    let grant = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let body = server.post_form(path, None, &grant).await.expect_token();
    for key in [
        "refresh_token",
        "refresh_expires_in",
        "not-before-policy",
        "session_state",
        "scope",
    ] {
        assert!(body.get(key).is_some(), "{key} in {body}");
    }
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["refresh_expires_in"], 3456000);
    assert_eq!(body["scope"], "view:wallets sign:wallets email");

    // The access token is an RS256 JWT with a kid, verifiable with the realm's certs.
    let access = body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let certs = server
        .get("/auth/realms/Arkane/protocol/openid-connect/certs")
        .await
        .json();
    let jwk = certs["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .expect("the kid is published");
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[format!("{}/realms/Arkane", server.public_url())]);
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(access, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["azp"], id.as_str());
    assert_eq!(claims["typ"], "Bearer");
    assert_eq!(
        claims["preferred_username"],
        format!("service-account-{id}")
    );
    assert_eq!(
        claims["resource_access"][id.as_str()]["roles"],
        json!(["query-clients"])
    );

    // Introspection and revocation at the Keycloak paths.
    server
        .post_form(
            "/auth/realms/Arkane/protocol/openid-connect/token/introspect",
            Some(&basic(&id, &secret)),
            &[("token", access)],
        )
        .await
        .expect_active();

    // Refresh: rotated on use; the old one presented again kills the family.
    let first = body["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: &str| {
        let pairs = [
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ];
        let body = crate::harness::form_body(&pairs);
        server.post_raw(path, Some(crate::harness::FORM), None, body)
    };
    let second = refresh(&first).await.expect_token();
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first);
    refresh(&first)
        .await
        .expect_oauth_error(400, "invalid_grant");
    refresh(&second_refresh)
        .await
        .expect_oauth_error(400, "invalid_grant");
    refresh("tsr_rt_garbage")
        .await
        .expect_oauth_error(400, "invalid_grant");

    // Realm names are case-sensitive.
    let other = server
        .post_form(
            "/auth/realms/arkane/protocol/openid-connect/token",
            None,
            &grant,
        )
        .await;
    assert_eq!(other.status, 404);

    let discovery = server
        .get("/auth/realms/Arkane/.well-known/openid-configuration")
        .await
        .json();
    assert_eq!(
        discovery["issuer"],
        format!("{}/realms/Arkane", server.public_url())
    );
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("refresh_token"))
    );

    // Revoking every token of the application kills its refresh tokens too.
    let (id2, secret2) = server
        .create_app("Arkane", json!({"name": "two", "refresh_token_ttl": 600}))
        .await;
    let pairs = [
        ("grant_type", "client_credentials"),
        ("client_id", id2.as_str()),
        ("client_secret", secret2.as_str()),
    ];
    let body = server.post_form(path, None, &pairs).await.expect_token();
    server
        .admin(
            Method::POST,
            &format!("/admin/v1/realms/Arkane/applications/{id2}/revoke-tokens"),
            None,
        )
        .await
        .expect_status(200);
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ("client_id", id2.as_str()),
        ("client_secret", secret2.as_str()),
    ];
    server
        .post_form(path, None, &pairs)
        .await
        .expect_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn d4_hydra_style_opaque_tokens_with_required_scope() {
    let server = TestServer::start().await;
    server
        .create_realm(json!({"name": "bitquery", "token_format": "opaque", "token_prefix": "ory_at_", "token_type": "bearer"}))
        .await;
    let (id, secret) = server
        .create_app(
            "bitquery",
            json!({"name": "api", "scopes": ["api"], "scope_required": true, "token_ttl": 2627999}),
        )
        .await;
    // The provider's sample pastes the credentials into the body unencoded.
    let payload =
        format!("grant_type=client_credentials&client_id={id}&client_secret={secret}&scope=api");
    let reply = server
        .post_raw(
            "/realms/bitquery/oauth2/token",
            Some(crate::harness::FORM),
            None,
            payload,
        )
        .await;
    let body = reply.expect_token();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access_token", "expires_in", "scope", "token_type"]);
    assert!(
        body["access_token"]
            .as_str()
            .unwrap()
            .starts_with("ory_at_")
    );
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], "api");
    assert_eq!(body["expires_in"], 2627999);
    let without_scope =
        format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    server
        .post_raw(
            "/realms/bitquery/oauth2/token",
            Some(crate::harness::FORM),
            None,
            without_scope,
        )
        .await
        .expect_oauth_error(400, "invalid_scope");
}

#[tokio::test]
async fn d5_basic_and_json_on_the_trailing_slash_path_of_a_sandbox_host() {
    let server = TestServer::start().await;
    server
        .create_realm(json!({"name": "sandbox", "hosts": ["sandbox.podero.example"]}))
        .await;
    let (id, secret) = server
        .create_app(
            "sandbox",
            json!({"name": "partner", "scopes": ["read", "write"], "token_ttl": 36000}),
        )
        .await;
    let reply = server
        .send(
            server
                .request(Method::POST, "/oauth2/token/")
                .header("Host", "sandbox.podero.example")
                .header("Authorization", basic(&id, &secret))
                .header("Cache-Control", "no-cache")
                .header("Content-Type", "application/json")
                .body(json!({"grant_type": "client_credentials"}).to_string()),
        )
        .await;
    let body = reply.expect_token();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read write");
    assert_eq!(body["expires_in"], 36000);
    // The same credentials mean nothing in the default realm.
    server
        .post_json(
            "/oauth2/token/",
            Some(&basic(&id, &secret)),
            &json!({"grant_type": "client_credentials"}),
        )
        .await
        .expect_oauth_error(401, "invalid_client");
}
