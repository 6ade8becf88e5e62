//! RFC 8414 metadata for every realm, the JWKS it points to, and health endpoints.

use reqwest::Method;
use reqwest::header::HOST;
use serde_json::{Value, json};

use crate::harness::TestServer;

/// Checks a metadata document against the realm's issuer and signing algorithm.
fn check_metadata(document: &Value, issuer: &str, alg: &str) {
    assert_eq!(document["issuer"], issuer, "{document}");
    for (key, path) in [
        ("token_endpoint", "/oauth2/token"),
        ("introspection_endpoint", "/oauth2/introspect"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("jwks_uri", "/.well-known/jwks.json"),
    ] {
        assert_eq!(
            document[key],
            format!("{issuer}{path}"),
            "{key} in {document}"
        );
    }
    let list = |key: &str| -> Vec<String> {
        document[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is a list in {document}"))
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect()
    };
    assert!(list("grant_types_supported").contains(&"client_credentials".to_owned()));
    for key in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let methods = list(key);
        assert!(methods.contains(&"client_secret_basic".to_owned()), "{key}");
        assert!(methods.contains(&"client_secret_post".to_owned()), "{key}");
    }
    assert!(list("access_token_signing_alg_values_supported").contains(&alg.to_owned()));
}

async fn fetch(server: &TestServer, path: &str) -> Value {
    let reply = server.get(path).await;
    reply.expect_status(200);
    reply.json()
}

#[tokio::test]
async fn metadata_of_every_realm_lists_its_issuer_and_endpoints() {
    let server = TestServer::start().await;
    let public = server.public_url();
    server
        .create_realm(json!({"name": "R", "signing_alg": "RS256"}))
        .await;
    server
        .create_realm(json!({
            "name": "sandbox",
            "hosts": ["sandbox.api.example"],
            "public_url": "https://sandbox.api.example",
            "signing_alg": "EdDSA",
        }))
        .await;

    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/realms/default/.well-known/oauth-authorization-server",
    ] {
        check_metadata(&fetch(&server, path).await, &public, "ES256");
    }
    let realm_issuer = format!("{public}/realms/R");
    for path in [
        "/.well-known/oauth-authorization-server/realms/R",
        "/.well-known/openid-configuration/realms/R",
        "/realms/R/.well-known/oauth-authorization-server",
        "/realms/R/.well-known/openid-configuration",
        "/auth/realms/R/.well-known/openid-configuration",
    ] {
        check_metadata(&fetch(&server, path).await, &realm_issuer, "RS256");
    }
    for path in [
        "/.well-known/oauth-authorization-server/realms/sandbox",
        "/realms/sandbox/.well-known/openid-configuration",
    ] {
        check_metadata(
            &fetch(&server, path).await,
            "https://sandbox.api.example",
            "EdDSA",
        );
    }
    let by_host = server
        .send(
            server
                .request(Method::GET, "/.well-known/openid-configuration")
                .header(HOST, "sandbox.api.example"),
        )
        .await;
    by_host.expect_status(200);
    check_metadata(&by_host.json(), "https://sandbox.api.example", "EdDSA");

    // The jwks_uri of a path realm, fetched as a path, is that realm's key set.
    let document = fetch(&server, "/.well-known/oauth-authorization-server/realms/R").await;
    let jwks_uri = document["jwks_uri"].as_str().expect("jwks_uri");
    let path = jwks_uri
        .strip_prefix(&public)
        .expect("under the public URL");
    let jwks = fetch(&server, path).await;
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert!(keys[0]["kid"].is_string());

    // Metadata may be cached; it names no secrets.
    let reply = server.get("/.well-known/oauth-authorization-server").await;
    assert!(
        reply
            .header("cache-control")
            .is_some_and(|v| v.starts_with("public")),
        "{:?}",
        reply.headers
    );
    assert!(
        reply
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );
}

#[tokio::test]
async fn the_issuer_in_metadata_matches_the_tokens() {
    let server = TestServer::start().await;
    server.create_realm(json!({"name": "R"})).await;
    for (prefix, realm, metadata) in [
        ("", "default", "/.well-known/oauth-authorization-server"),
        (
            "/realms/R",
            "R",
            "/.well-known/oauth-authorization-server/realms/R",
        ),
    ] {
        let (id, secret) = server.simple_app(realm).await;
        let token = server.fetch_token(prefix, &id, &secret).await;
        let claims = crate::harness::jwt_claims(&token);
        let document = fetch(&server, metadata).await;
        assert_eq!(claims["iss"], document["issuer"], "{realm}");
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let server = TestServer::start().await;
    let health = server.get("/healthz").await;
    health.expect_status(200);
    assert_eq!(health.json(), json!({"status": "ok"}));
    let ready = server.get("/readyz").await;
    ready.expect_status(200);
    assert_eq!(ready.json(), json!({"status": "ready"}));

    let (id, secret) = server.simple_app("default").await;
    server.fetch_token("", &id, &secret).await;
    let metrics = server.get("/metrics").await;
    metrics.expect_status(200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/plain")),
        "{:?}",
        metrics.headers
    );
    let text = metrics.text();
    assert!(text.contains("# TYPE"), "{text}");
    assert!(
        text.lines().any(|l| l == "tessera_tokens_issued_total 1"),
        "{text}"
    );
}
