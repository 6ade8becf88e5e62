//! Scope negotiation (RFC 6749 §3.3) and audiences (RFC 8707 `resource`).

use serde_json::{Value, json};

use crate::harness::{TestServer, jwt_claims, scope_set};

/// What one token request should get.
enum Want {
    /// A token with this scope (compared as a set).
    Scope(&'static str),
    /// A token with no `scope` in the response.
    NoScope,
    /// An RFC 6749 error with status 400.
    Error(&'static str),
}

struct Case {
    name: &'static str,
    app: Value,
    /// Extra form parameters beside `grant_type`.
    params: Vec<(&'static str, &'static str)>,
    want: Want,
}

async fn check(server: &TestServer, cases: Vec<Case>) {
    for case in cases {
        let (id, secret) = server.create_app("default", case.app).await;
        let mut params = vec![("grant_type", "client_credentials")];
        params.extend(case.params.iter().copied());
        let reply = server
            .token_basic("/oauth2/token", &id, &secret, &params)
            .await;
        match case.want {
            Want::Scope(scope) => {
                assert_eq!(reply.status, 200, "{}: {}", case.name, reply.text());
                let body = reply.expect_token();
                let got = body["scope"].as_str().unwrap_or_default();
                assert_eq!(scope_set(got), scope_set(scope), "{}", case.name);
                let token = body["access_token"].as_str().expect("token");
                assert_eq!(
                    scope_set(jwt_claims(token)["scope"].as_str().expect("scope claim")),
                    scope_set(scope),
                    "{}",
                    case.name
                );
                let active = server.assert_alive("", &id, &secret, token).await;
                assert_eq!(
                    scope_set(active["scope"].as_str().expect("scope")),
                    scope_set(scope),
                    "{}",
                    case.name
                );
                let verify = server.verify("", token).await;
                assert_eq!(
                    scope_set(verify.header("x-scope").unwrap_or_default()),
                    scope_set(scope),
                    "{}",
                    case.name
                );
            }
            Want::NoScope => {
                let body = reply.expect_token();
                assert!(body.get("scope").is_none(), "{}: {body}", case.name);
            }
            Want::Error(code) => {
                assert_eq!(reply.status, 400, "{}: {}", case.name, reply.text());
                reply.expect_oauth_error(400, code);
            }
        }
    }
}

#[tokio::test]
async fn scopes_are_granted_as_asked_or_refused_never_narrowed() {
    let server = TestServer::start().await;
    let rwa = || json!({"name": "s", "scopes": ["read", "write", "admin"]});
    let cases = vec![
        Case {
            name: "no scope: every allowed scope",
            app: rwa(),
            params: vec![],
            want: Want::Scope("read write admin"),
        },
        Case {
            name: "an empty scope is no scope",
            app: rwa(),
            params: vec![("scope", "")],
            want: Want::Scope("read write admin"),
        },
        Case {
            name: "no scope with default_scopes",
            app: json!({"name": "s", "scopes": ["read", "write"], "default_scopes": ["read"]}),
            params: vec![],
            want: Want::Scope("read"),
        },
        Case {
            name: "a subset",
            app: rwa(),
            params: vec![("scope", "write")],
            want: Want::Scope("write"),
        },
        Case {
            name: "a subset beyond the defaults",
            app: json!({"name": "s", "scopes": ["read", "write"], "default_scopes": ["read"]}),
            params: vec![("scope", "write")],
            want: Want::Scope("write"),
        },
        Case {
            name: "a subset in another order, with extra spaces and a repeat",
            app: rwa(),
            params: vec![("scope", "admin  read read")],
            want: Want::Scope("admin read"),
        },
        Case {
            name: "the whole set",
            app: rwa(),
            params: vec![("scope", "read write admin")],
            want: Want::Scope("read write admin"),
        },
        Case {
            name: "one scope outside the set",
            app: rwa(),
            params: vec![("scope", "read delete")],
            want: Want::Error("invalid_scope"),
        },
        Case {
            name: "only scopes outside the set",
            app: rwa(),
            params: vec![("scope", "delete")],
            want: Want::Error("invalid_scope"),
        },
        Case {
            name: "scopes are case-sensitive",
            app: rwa(),
            params: vec![("scope", "READ")],
            want: Want::Error("invalid_scope"),
        },
        Case {
            name: "a malformed scope",
            app: rwa(),
            params: vec![("scope", "read \"write\"")],
            want: Want::Error("invalid_scope"),
        },
        Case {
            name: "scope_required without scope",
            app: json!({"name": "s", "scopes": ["read"], "scope_required": true}),
            params: vec![],
            want: Want::Error("invalid_scope"),
        },
        Case {
            name: "scope_required with a blank scope",
            app: json!({"name": "s", "scopes": ["read"], "scope_required": true}),
            params: vec![("scope", "   ")],
            want: Want::Error("invalid_scope"),
        },
        Case {
            name: "scope_required with a scope",
            app: json!({"name": "s", "scopes": ["read", "write"], "scope_required": true}),
            params: vec![("scope", "read")],
            want: Want::Scope("read"),
        },
        Case {
            name: "an application without scopes asks for one",
            app: json!({"name": "s"}),
            params: vec![("scope", "read")],
            want: Want::Error("invalid_scope"),
        },
        Case {
            name: "an application without scopes asks for none",
            app: json!({"name": "s"}),
            params: vec![],
            want: Want::NoScope,
        },
    ];
    check(&server, cases).await;
}

#[tokio::test]
async fn resource_narrows_the_audience() {
    let server = TestServer::start().await;
    let public = server.public_url();
    let (id, secret) = server
        .create_app(
            "default",
            json!({
                "name": "aud",
                "scopes": ["read"],
                "audiences": ["https://api.a.example", "https://api.b.example"],
            }),
        )
        .await;
    let (plain_id, plain_secret) = server.simple_app("default").await;

    let token_with = |resources: Vec<&'static str>| {
        let id = id.clone();
        let secret = secret.clone();
        let server = &server;
        async move {
            let mut params = vec![("grant_type", "client_credentials")];
            params.extend(resources.into_iter().map(|r| ("resource", r)));
            server
                .token_basic("/oauth2/token", &id, &secret, &params)
                .await
        }
    };

    let all = token_with(vec![]).await.expect_token();
    let claims = jwt_claims(all["access_token"].as_str().expect("token"));
    assert_eq!(
        claims["aud"],
        json!(["https://api.a.example", "https://api.b.example"])
    );

    let one = token_with(vec!["https://api.b.example"])
        .await
        .expect_token();
    let token = one["access_token"].as_str().expect("token");
    assert_eq!(jwt_claims(token)["aud"], "https://api.b.example");
    let active = server.assert_alive("", &id, &secret, token).await;
    assert_eq!(active["aud"], json!(["https://api.b.example"]));

    let two = token_with(vec!["https://api.a.example", "https://api.b.example"])
        .await
        .expect_token();
    assert_eq!(
        jwt_claims(two["access_token"].as_str().expect("token"))["aud"],
        json!(["https://api.a.example", "https://api.b.example"])
    );

    token_with(vec!["https://evil.example"])
        .await
        .expect_oauth_error(400, "invalid_target");
    token_with(vec!["https://api.a.example", "https://evil.example"])
        .await
        .expect_oauth_error(400, "invalid_target");

    // JSON bodies give several resources as a list.
    let reply = server
        .post_json(
            "/oauth2/token",
            Some(&crate::harness::basic(&id, &secret)),
            &json!({"grant_type": "client_credentials", "resource": ["https://api.a.example"]}),
        )
        .await;
    let body = reply.expect_token();
    assert_eq!(
        jwt_claims(body["access_token"].as_str().expect("token"))["aud"],
        "https://api.a.example"
    );

    // Without audiences the token is for the issuer, and no resource is known.
    let plain = server.fetch_token("", &plain_id, &plain_secret).await;
    assert_eq!(jwt_claims(&plain)["aud"], public);
    server
        .token_basic(
            "/oauth2/token",
            &plain_id,
            &plain_secret,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://api.a.example"),
            ],
        )
        .await
        .expect_oauth_error(400, "invalid_target");
}
