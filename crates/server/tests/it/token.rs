//! The token endpoint: each client authentication method and body encoding, every alias
//! path, and the third-party `oauth2` client against it.

use oauth2::basic::BasicTokenType;
use oauth2::{AuthType, Scope, TokenResponse};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{
    FORM, JSON, TestServer, assert_lifetime, basic, basic_encoded, form_body, scope_set,
};

/// How one request of a table is sent.
struct Case {
    name: &'static str,
    content_type: Option<&'static str>,
    authorization: Option<String>,
    body: String,
}

/// Sends each case to `path`, checks the token answer, and that the token is alive.
async fn check(server: &TestServer, path: &str, id: &str, secret: &str, cases: Vec<Case>) {
    for case in cases {
        let reply = server
            .post_raw(
                path,
                case.content_type,
                case.authorization.as_deref(),
                case.body,
            )
            .await;
        assert_eq!(reply.status, 200, "{}: {}", case.name, reply.text());
        let body = reply.expect_token();
        assert_eq!(body["token_type"], "Bearer", "{}", case.name);
        assert_eq!(body["expires_in"], 3600, "{}", case.name);
        assert_eq!(body["scope"], "read write", "{}", case.name);
        let token = body["access_token"].as_str().expect("token");
        let active = server.assert_alive("", id, secret, token).await;
        assert_eq!(active["client_id"], id, "{}", case.name);
    }
}

#[tokio::test]
async fn every_auth_method_and_body_encoding_gets_a_token() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let grant = form_body(&[("grant_type", "client_credentials")]);
    let post_form = form_body(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &secret),
    ]);
    let cases = vec![
        Case {
            name: "client_secret_basic, form",
            content_type: Some(FORM),
            authorization: Some(basic(&id, &secret)),
            body: grant.clone(),
        },
        Case {
            name: "client_secret_basic with leading spaces (D2)",
            content_type: Some(FORM),
            authorization: Some(format!("   {}", basic(&id, &secret))),
            body: grant.clone(),
        },
        Case {
            name: "client_secret_basic, lower-case scheme",
            content_type: Some(FORM),
            authorization: Some(basic(&id, &secret).replacen("Basic", "basic", 1)),
            body: grant.clone(),
        },
        Case {
            name: "client_secret_basic, form with charset",
            content_type: Some("application/x-www-form-urlencoded; charset=UTF-8"),
            authorization: Some(basic(&id, &secret)),
            body: grant.clone(),
        },
        Case {
            name: "client_secret_basic, form without a content type",
            content_type: None,
            authorization: Some(basic(&id, &secret)),
            body: grant.clone(),
        },
        Case {
            name: "client_secret_basic, client_id repeated in the body",
            content_type: Some(FORM),
            authorization: Some(basic(&id, &secret)),
            body: form_body(&[("grant_type", "client_credentials"), ("client_id", &id)]),
        },
        Case {
            name: "client_secret_basic + JSON body (D5)",
            content_type: Some(JSON),
            authorization: Some(basic(&id, &secret)),
            body: json!({"grant_type": "client_credentials"}).to_string(),
        },
        Case {
            name: "client_secret_post, form (D3)",
            content_type: Some(FORM),
            authorization: None,
            body: post_form.clone(),
        },
        Case {
            name: "client_secret_post, JSON",
            content_type: Some(JSON),
            authorization: None,
            body: json!({
                "grant_type": "client_credentials",
                "client_id": id,
                "client_secret": secret,
            })
            .to_string(),
        },
        Case {
            name: "client_secret_post, JSON with charset",
            content_type: Some("application/json; charset=utf-8"),
            authorization: None,
            body: json!({
                "grant_type": "client_credentials",
                "client_id": id,
                "client_secret": secret,
            })
            .to_string(),
        },
        Case {
            name: "client_secret_post, JSON without a content type",
            content_type: None,
            authorization: None,
            body: json!({
                "grant_type": "client_credentials",
                "client_id": id,
                "client_secret": secret,
            })
            .to_string(),
        },
    ];
    check(&server, "/oauth2/token", &id, &secret, cases).await;
}

#[tokio::test]
async fn basic_credentials_are_form_decoded_per_rfc_6749() {
    let server = TestServer::start().await;
    // A client id with characters that a conforming client percent-encodes.
    let client_id = "svc@tessera.test~1";
    let (id, secret) = server
        .create_app(
            "default",
            json!({"name": "encoded", "client_id": client_id, "scopes": ["read", "write"]}),
        )
        .await;
    assert_eq!(id, client_id);
    let encoded = basic_encoded(&id, &secret);
    assert!(
        encoded != basic(&id, &secret),
        "the id must need encoding for this test to mean anything"
    );
    let grant = form_body(&[("grant_type", "client_credentials")]);
    let cases = vec![
        Case {
            name: "percent-encoded id and secret",
            content_type: Some(FORM),
            authorization: Some(encoded.clone()),
            body: grant.clone(),
        },
        Case {
            name: "the same id sent raw",
            content_type: Some(FORM),
            authorization: Some(basic(&id, &secret)),
            body: grant.clone(),
        },
        Case {
            name: "percent-encoded, JSON body",
            content_type: Some(JSON),
            authorization: Some(encoded),
            body: json!({"grant_type": "client_credentials"}).to_string(),
        },
    ];
    check(&server, "/oauth2/token", &id, &secret, cases).await;
}

#[tokio::test]
async fn every_token_alias_path_issues_tokens_of_its_realm() {
    let server = TestServer::start().await;
    let public = server.public_url();
    let (id, secret) = server.simple_app("default").await;
    server.create_realm(json!({"name": "acme"})).await;
    let (acme_id, acme_secret) = server.simple_app("acme").await;

    let root = [
        "/oauth2/token",
        "/oauth2/token/",
        "/oauth/token",
        "/passport/oauth/token",
        "/v2/token",
        "/protocol/openid-connect/token",
    ];
    let mut paths: Vec<(String, &str, &str, &str, String)> = Vec::new();
    for path in root {
        paths.push((path.to_owned(), &id, &secret, "", public.clone()));
        paths.push((
            format!("/realms/default{path}"),
            &id,
            &secret,
            "",
            public.clone(),
        ));
        paths.push((
            format!("/realms/acme{path}"),
            &acme_id,
            &acme_secret,
            "/realms/acme",
            format!("{public}/realms/acme"),
        ));
    }
    for realm in ["default", "acme"] {
        let (cid, csecret, prefix, issuer) = if realm == "default" {
            (id.as_str(), secret.as_str(), "", public.clone())
        } else {
            (
                acme_id.as_str(),
                acme_secret.as_str(),
                "/realms/acme",
                format!("{public}/realms/acme"),
            )
        };
        paths.push((
            format!("/auth/realms/{realm}/protocol/openid-connect/token"),
            cid,
            csecret,
            prefix,
            issuer.clone(),
        ));
        paths.push((
            format!("/auth/realms/{realm}/oauth2/token"),
            cid,
            csecret,
            prefix,
            issuer,
        ));
    }

    for (path, cid, csecret, prefix, issuer) in &paths {
        for (name, reply) in [
            (
                "basic+form",
                server
                    .token_basic(path, cid, csecret, &[("grant_type", "client_credentials")])
                    .await,
            ),
            (
                "post+json",
                server
                    .post_json(
                        path,
                        None,
                        &json!({
                            "grant_type": "client_credentials",
                            "client_id": cid,
                            "client_secret": csecret,
                        }),
                    )
                    .await,
            ),
        ] {
            assert_eq!(reply.status, 200, "{path} {name}: {}", reply.text());
            let body = reply.expect_token();
            let token = body["access_token"].as_str().expect("token");
            let active = server.assert_alive(prefix, cid, csecret, token).await;
            assert_eq!(&active["iss"], issuer.as_str(), "{path} {name}");
            assert_eq!(&active["client_id"], cid, "{path} {name}");
        }
    }
}

#[tokio::test]
async fn the_oauth2_crate_gets_tokens_with_basic_and_post() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(
            "default",
            json!({"name": "crate", "scopes": ["read", "write", "admin"]}),
        )
        .await;
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let client = server.oauth_client("", &id, &secret, auth.clone());
        let all = client
            .exchange_client_credentials()
            .request_async(&server.http)
            .await
            .unwrap_or_else(|e| panic!("{auth:?}: {e:?}"));
        assert_eq!(*all.token_type(), BasicTokenType::Bearer);
        assert_eq!(all.expires_in().map(|d| d.as_secs()), Some(3600));
        let scopes: Vec<String> = all
            .scopes()
            .expect("scope")
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(scopes, ["read", "write", "admin"]);
        server
            .assert_alive("", &id, &secret, all.access_token().secret())
            .await;

        let narrow = client
            .exchange_client_credentials()
            .add_scope(Scope::new("write".into()))
            .request_async(&server.http)
            .await
            .unwrap_or_else(|e| panic!("{auth:?}: {e:?}"));
        let scopes: Vec<String> = narrow
            .scopes()
            .expect("scope")
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(scopes, ["write"]);
        let active = server
            .assert_alive("", &id, &secret, narrow.access_token().secret())
            .await;
        assert_eq!(active["scope"], "write");
    }

    // The crate reads our errors as RFC 6749 errors.
    let wrong = server.oauth_client("", &id, "not-the-secret", AuthType::BasicAuth);
    let err = wrong
        .exchange_client_credentials()
        .request_async(&server.http)
        .await
        .expect_err("a wrong secret is refused");
    match err {
        oauth2::RequestTokenError::ServerResponse(e) => {
            assert_eq!(
                e.error(),
                &oauth2::basic::BasicErrorResponseType::InvalidClient
            );
        }
        other => panic!("expected an invalid_client answer, got {other:?}"),
    }
}

#[tokio::test]
async fn auth_methods_an_application_does_not_allow_are_refused() {
    let server = TestServer::start().await;
    let (basic_only, basic_secret) = server
        .create_app(
            "default",
            json!({"name": "b", "auth_methods": ["client_secret_basic"]}),
        )
        .await;
    let (post_only, post_secret) = server
        .create_app(
            "default",
            json!({"name": "p", "auth_methods": ["client_secret_post"]}),
        )
        .await;

    server
        .token_basic(
            "/oauth2/token",
            &basic_only,
            &basic_secret,
            &[("grant_type", "client_credentials")],
        )
        .await
        .expect_token();
    let refused = server
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &basic_only),
                ("client_secret", &basic_secret),
            ],
        )
        .await;
    refused.expect_oauth_error(401, "invalid_client");
    // A 401 always carries a challenge, even when the client did not try Basic.
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic realm="))
    );

    server
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &post_only),
                ("client_secret", &post_secret),
            ],
        )
        .await
        .expect_token();
    let refused = server
        .token_basic(
            "/oauth2/token",
            &post_only,
            &post_secret,
            &[("grant_type", "client_credentials")],
        )
        .await;
    refused.expect_oauth_error(401, "invalid_client");
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic realm=")),
        "{:?}",
        refused.headers
    );
}

#[tokio::test]
async fn token_lifetime_and_scope_come_from_the_application() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app("default", json!({"name": "short", "token_ttl": 120}))
        .await;
    let reply = server
        .token_basic(
            "/oauth2/token",
            &id,
            &secret,
            &[("grant_type", "client_credentials")],
        )
        .await;
    let body = reply.expect_token();
    assert_eq!(body["expires_in"], 120);
    // No scopes at all: the response carries no `scope`.
    assert!(body.get("scope").is_none(), "{body}");
    let active = server
        .assert_alive("", &id, &secret, body["access_token"].as_str().expect("t"))
        .await;
    assert_lifetime(&active, 120);
    assert_eq!(active["scope"], "");

    // A PATCHed lifetime applies to the next token at once.
    server
        .admin(
            Method::PATCH,
            &format!("/admin/v1/realms/default/applications/{id}"),
            Some(json!({"token_ttl": 60, "scopes": ["a", "b"]})),
        )
        .await
        .expect_status(200);
    let body: Value = server
        .token_basic(
            "/oauth2/token",
            &id,
            &secret,
            &[("grant_type", "client_credentials")],
        )
        .await
        .expect_token();
    assert_eq!(body["expires_in"], 60);
    assert_eq!(
        scope_set(body["scope"].as_str().expect("scope")),
        scope_set("a b")
    );
}
