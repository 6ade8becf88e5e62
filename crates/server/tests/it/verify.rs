//! `/verify`, the forward-auth endpoint for reverse proxies.

use reqwest::Method;
use serde_json::json;

use crate::harness::{TestServer, basic, expect_verify_refused};

#[tokio::test]
async fn a_valid_token_gets_200_with_who_it_is() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(
            "default",
            json!({"name": "v", "scopes": ["read", "write"], "default_scopes": ["read"]}),
        )
        .await;
    let token = server.fetch_token("", &id, &secret).await;
    let reply = server.verify("", &token).await;
    reply.expect_status(200);
    assert_eq!(reply.header("x-client-id"), Some(id.as_str()));
    assert_eq!(reply.header("x-scope"), Some("read"));
    assert_eq!(reply.header("x-realm"), Some("default"));
    assert!(reply.header("www-authenticate").is_none());

    // The scheme is case-insensitive (RFC 7235), and surrounding spaces do not matter.
    for authorization in [format!("bearer {token}"), format!("BEARER   {token}")] {
        let reply = server
            .send(
                server
                    .request(Method::GET, "/verify")
                    .header("authorization", authorization),
            )
            .await;
        reply.expect_status(200);
        assert_eq!(reply.header("x-client-id"), Some(id.as_str()));
    }

    server.create_realm(json!({"name": "edge"})).await;
    let (eid, esecret) = server.simple_app("edge").await;
    let etoken = server.fetch_token("/realms/edge", &eid, &esecret).await;
    for prefix in ["/realms/edge", "/auth/realms/edge"] {
        let reply = server.verify(prefix, &etoken).await;
        reply.expect_status(200);
        assert_eq!(reply.header("x-realm"), Some("edge"));
        assert_eq!(reply.header("x-client-id"), Some(eid.as_str()));
        assert_eq!(reply.header("x-scope"), Some("read write"));
    }
}

#[tokio::test]
async fn anything_but_a_valid_bearer_token_gets_401() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let token = server.fetch_token("", &id, &secret).await;
    let cases: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some("Bearer garbage".to_owned()),
        Some(format!("Bearer {token}x")),
        Some(format!("Bearer {}", &token[..token.len() - 3])),
        Some(format!("Basic {token}")),
        Some(basic(&id, &secret)),
        Some(token.clone()),
        Some(format!("Token {token}")),
    ];
    for authorization in cases {
        let mut request = server.request(Method::GET, "/verify");
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let reply = server.send(request).await;
        assert_eq!(reply.status, 401, "{authorization:?}");
        expect_verify_refused(&reply);
        assert_eq!(reply.text(), "Unauthorized");
    }
    // Only GET.
    let reply = server
        .send(server.request(Method::POST, "/verify").bearer_auth(&token))
        .await;
    reply.expect_oauth_error(405, "invalid_request");
}

#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    let server = TestServer::start().await;
    for (method, path, allowed) in [
        (Method::POST, "/verify", "GET"),
        (Method::GET, "/oauth2/token", "POST"),
        (Method::PUT, "/oauth2/introspect", "POST"),
        (Method::POST, "/.well-known/jwks.json", "GET"),
    ] {
        let reply = server.send(server.request(method.clone(), path)).await;
        reply.expect_oauth_error(405, "invalid_request");
        let allow = reply.header("allow").unwrap_or_default();
        assert!(
            allow.split(',').any(|m| m.trim() == allowed),
            "{method} {path}: Allow {allow:?}"
        );
    }
}
