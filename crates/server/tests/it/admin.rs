//! The admin API of docs/contract.md §5: every route, its authentication, and its errors.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ADMIN_KEY, Reply, TestServer, app, assert_has_keys, basic, now_s};

const REALMS: &str = "/admin/v1/realms";

fn apps(realm: &str) -> String {
    format!("/admin/v1/realms/{realm}/applications")
}

/// An application view: every documented field, and never a secret.
#[track_caller]
fn assert_app_view(value: &Value) {
    assert_has_keys(value, &APP_KEYS);
    assert!(value.get("client_secret").is_none(), "{value}");
}

const REALM_KEYS: [&str; 11] = [
    "created_at",
    "hosts",
    "issuer",
    "key_rotation",
    "keys",
    "name",
    "public_url",
    "signing_alg",
    "token_format",
    "token_prefix",
    "token_type",
];

const APP_KEYS: [&str; 16] = [
    "audiences",
    "auth_methods",
    "client_id",
    "created_at",
    "default_scopes",
    "enabled",
    "jwks",
    "name",
    "public_key",
    "realm",
    "refresh_token_ttl",
    "scope_required",
    "scopes",
    "token_format",
    "token_ttl",
    "updated_at",
];

#[tokio::test]
async fn realms_crud() {
    let server = TestServer::start().await;
    let public = server.public_url();

    let reply = server.admin(Method::GET, REALMS, None).await;
    reply.expect_status(200);
    let list = reply.json();
    assert_eq!(list.as_array().expect("a list").len(), 1);
    assert_eq!(list[0]["name"], "default");
    assert_eq!(list[0]["issuer"], public);
    assert_has_keys(&list[0], &REALM_KEYS);

    let reply = server
        .admin(Method::POST, REALMS, Some(json!({"name": "sandbox"})))
        .await;
    reply.expect_status(201);
    let created = reply.json();
    assert_has_keys(&created, &REALM_KEYS);
    assert_eq!(created["name"], "sandbox");
    assert_eq!(created["hosts"], json!([]));
    assert_eq!(created["public_url"], Value::Null);
    assert_eq!(created["issuer"], format!("{public}/realms/sandbox"));
    assert_eq!(created["token_format"], "jwt");
    assert_eq!(created["signing_alg"], "ES256");
    assert_eq!(created["token_prefix"], "tsr_at_");
    assert_eq!(created["token_type"], "Bearer");
    assert!(created["created_at"].is_i64());

    let full = json!({
        "name": "full",
        "hosts": ["Full.API.example"],
        "public_url": "https://full.api.example/",
        "token_format": "opaque",
        "signing_alg": "RS256",
        "token_prefix": "ory_at_",
        "token_type": "bearer",
    });
    let created = server.create_realm(full).await;
    assert_eq!(created["hosts"], json!(["full.api.example"]));
    assert_eq!(created["public_url"], "https://full.api.example");
    assert_eq!(created["issuer"], "https://full.api.example");
    assert_eq!(created["token_format"], "opaque");
    assert_eq!(created["signing_alg"], "RS256");
    assert_eq!(created["token_prefix"], "ory_at_");
    assert_eq!(created["token_type"], "bearer");

    let reply = server
        .admin(Method::GET, &format!("{REALMS}/full"), None)
        .await;
    reply.expect_status(200);
    assert_eq!(reply.json(), created);

    let reply = server.admin(Method::GET, REALMS, None).await;
    let names: Vec<Value> = reply
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, [json!("default"), json!("full"), json!("sandbox")]);

    // PATCH changes only what it names; null clears public_url.
    let reply = server
        .admin(
            Method::PATCH,
            &format!("{REALMS}/full"),
            Some(json!({"token_type": "Bearer", "public_url": null, "hosts": []})),
        )
        .await;
    reply.expect_status(200);
    let patched = reply.json();
    assert_eq!(patched["token_type"], "Bearer");
    assert_eq!(patched["public_url"], Value::Null);
    assert_eq!(patched["hosts"], json!([]));
    assert_eq!(patched["issuer"], format!("{public}/realms/full"));
    assert_eq!(patched["token_prefix"], "ory_at_");
    assert_eq!(patched["token_format"], "opaque");
    assert_eq!(patched["created_at"], created["created_at"]);
    let reply = server
        .admin(Method::PATCH, &format!("{REALMS}/full"), Some(json!({})))
        .await;
    reply.expect_status(200);
    assert_eq!(reply.json(), patched);
    let reply = server
        .admin(Method::GET, &format!("{REALMS}/full"), None)
        .await;
    assert_eq!(reply.json(), patched);

    // DELETE: gone from the admin API and from the public side.
    let (id, secret) = server.simple_app("sandbox").await;
    server.fetch_token("/realms/sandbox", &id, &secret).await;
    let reply = server
        .admin(Method::DELETE, &format!("{REALMS}/sandbox"), None)
        .await;
    reply.expect_status(204);
    assert!(reply.body.is_empty());
    server
        .admin(Method::GET, &format!("{REALMS}/sandbox"), None)
        .await
        .expect_admin_error(404, "not_found");
    server
        .admin(Method::DELETE, &format!("{REALMS}/sandbox"), None)
        .await
        .expect_admin_error(404, "not_found");
    server
        .token_basic(
            "/realms/sandbox/oauth2/token",
            &id,
            &secret,
            &[("grant_type", "client_credentials")],
        )
        .await
        .expect_oauth_error(404, "invalid_request");

    // Keys: on a schedule, and on demand with the new key published before it signs.
    let reply = server
        .admin(
            Method::PATCH,
            &format!("{REALMS}/default"),
            Some(json!({"key_rotation": 2_592_000})),
        )
        .await;
    reply.expect_status(200);
    assert_eq!(reply.json()["key_rotation"], 2_592_000);
    let before = server.jwks_kids().await;
    assert_eq!(before.len(), 1);
    let reply = server
        .admin(
            Method::POST,
            &format!("{REALMS}/default/rotate-keys"),
            Some(json!({"activate_in": 600})),
        )
        .await;
    reply.expect_status(200);
    let keys = reply.json()["keys"].clone();
    assert_eq!(keys.as_array().map(Vec::len), Some(2), "{keys}");
    assert_eq!(keys[0]["signing"], false, "the new key waits: {keys}");
    assert_eq!(keys[1]["signing"], true);
    assert_eq!(keys[1]["kid"], before[0]);
    assert_eq!(
        keys[1]["retired_at"], keys[0]["activates_at"],
        "the old key signs until the new one starts"
    );
    assert_eq!(server.jwks_kids().await.len(), 2);
    let reply = server
        .admin(
            Method::PATCH,
            &format!("{REALMS}/default"),
            Some(json!({"key_rotation": null})),
        )
        .await;
    assert_eq!(reply.json()["key_rotation"], Value::Null);

    // The default realm stays.
    let reply = server
        .admin(Method::DELETE, &format!("{REALMS}/default"), None)
        .await;
    reply.expect_admin_error(403, "forbidden");
    server
        .admin(Method::GET, &format!("{REALMS}/default"), None)
        .await
        .expect_status(200);
}

#[tokio::test]
async fn applications_crud_and_the_secret_is_shown_only_twice() {
    let server = TestServer::start().await;
    server.create_realm(json!({"name": "R"})).await;

    let reply = server.admin(Method::GET, &apps("R"), None).await;
    reply.expect_status(200);
    assert_eq!(reply.json(), json!([]));

    // Defaults.
    let created = server
        .create_app_view("R", json!({"name": "billing"}))
        .await;
    assert_has_keys(&created, &APP_KEYS);
    assert_has_keys(&created, &["client_secret"]);
    assert_eq!(created["realm"], "R");
    assert_eq!(created["name"], "billing");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["scopes"], json!([]));
    assert_eq!(created["default_scopes"], Value::Null);
    assert_eq!(created["scope_required"], false);
    assert_eq!(created["token_ttl"], 3600);
    assert_eq!(created["token_format"], Value::Null);
    assert_eq!(
        created["auth_methods"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(created["audiences"], json!([]));
    let generated_id = created["client_id"].as_str().expect("client_id").to_owned();
    let first_secret = created["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned();
    for text in [&generated_id, &first_secret] {
        assert!(text.len() >= 16, "{text}");
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{text}"
        );
    }

    // Everything set.
    let created = server
        .create_app_view(
            "R",
            json!({
                "name": "full",
                "client_id": "full-client",
                "scopes": ["read", "write admin"],
                "default_scopes": ["read"],
                "scope_required": true,
                "token_ttl": 900,
                "token_format": "opaque",
                "auth_methods": ["client_secret_post"],
                "audiences": ["https://api.example"],
                "enabled": true,
            }),
        )
        .await;
    assert_eq!(created["client_id"], "full-client");
    assert_eq!(created["scopes"], json!(["read", "write", "admin"]));
    assert_eq!(created["default_scopes"], json!(["read"]));
    assert_eq!(created["scope_required"], true);
    assert_eq!(created["token_ttl"], 900);
    assert_eq!(created["token_format"], "opaque");
    assert_eq!(created["auth_methods"], json!(["client_secret_post"]));
    assert_eq!(created["audiences"], json!(["https://api.example"]));
    let full_secret = created["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();

    // GET of one and of the list: the same views, never a secret.
    let reply = server
        .admin(Method::GET, &app("R", "full-client"), None)
        .await;
    reply.expect_status(200);
    let shown = reply.json();
    assert_app_view(&shown);
    let mut without_secret = created.clone();
    without_secret
        .as_object_mut()
        .expect("object")
        .remove("client_secret");
    assert_eq!(shown, without_secret);
    let list = server.admin(Method::GET, &apps("R"), None).await;
    list.expect_status(200);
    let listed = list.json();
    assert_eq!(listed.as_array().expect("list").len(), 2);
    for item in listed.as_array().expect("list") {
        assert_app_view(item);
    }
    for reply in [&reply, &list] {
        let text = reply.text();
        assert!(!text.contains("\"client_secret\""), "{text}");
        assert!(!text.contains(&first_secret), "{text}");
        assert!(!text.contains(&full_secret), "{text}");
    }
    // Other realms do not list them.
    let reply = server.admin(Method::GET, &apps("default"), None).await;
    assert_eq!(reply.json(), json!([]));

    // PATCH: named fields change, null clears, the rest stays.
    let reply = server
        .admin(
            Method::PATCH,
            &app("R", "full-client"),
            Some(json!({
                "name": "renamed",
                "default_scopes": null,
                "token_format": null,
                "token_ttl": 60,
                "auth_methods": ["client_secret_basic", "client_secret_post"],
            })),
        )
        .await;
    reply.expect_status(200);
    let patched = reply.json();
    assert_app_view(&patched);
    assert_eq!(patched["name"], "renamed");
    assert_eq!(patched["default_scopes"], Value::Null);
    assert_eq!(patched["token_format"], Value::Null);
    assert_eq!(patched["token_ttl"], 60);
    assert_eq!(patched["scopes"], json!(["read", "write", "admin"]));
    assert_eq!(patched["scope_required"], true);
    assert_eq!(patched["created_at"], created["created_at"]);
    assert!(!patched.to_string().contains(&full_secret));
    let reply = server
        .admin(Method::GET, &app("R", "full-client"), None)
        .await;
    assert_eq!(reply.json(), patched);
    // The patched application works as patched: Basic, JWT, 60 s, and scope required.
    let reply = server
        .token_basic(
            "/realms/R/oauth2/token",
            "full-client",
            &full_secret,
            &[("grant_type", "client_credentials"), ("scope", "admin")],
        )
        .await;
    let body = reply.expect_token();
    assert_eq!(body["expires_in"], 60);
    assert_eq!(
        body["access_token"].as_str().expect("t").split('.').count(),
        3
    );

    // Secret rotation shows the new secret once.
    let reply = server
        .admin(
            Method::POST,
            &format!("{}/secret", app("R", "full-client")),
            Some(json!({"grace_period": 30})),
        )
        .await;
    reply.expect_status(200);
    let rotated = reply.json();
    assert_has_keys(
        &rotated,
        &["client_id", "client_secret", "previous_secret_expires_at"],
    );
    let new_secret = rotated["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let reply = server
        .admin(Method::GET, &app("R", "full-client"), None)
        .await;
    assert!(!reply.text().contains(&new_secret));
    assert!(!reply.text().contains("\"client_secret\""));

    // DELETE.
    let reply = server
        .admin(Method::DELETE, &app("R", "full-client"), None)
        .await;
    reply.expect_status(204);
    server
        .admin(Method::GET, &app("R", "full-client"), None)
        .await
        .expect_admin_error(404, "not_found");
    server
        .admin(Method::DELETE, &app("R", "full-client"), None)
        .await
        .expect_admin_error(404, "not_found");
    let reply = server.admin(Method::GET, &apps("R"), None).await;
    assert_eq!(reply.json().as_array().expect("list").len(), 1);
}

#[tokio::test]
async fn tokens_and_revoke_tokens_routes() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let reply = server
        .admin(
            Method::POST,
            &format!("{}/tokens", app("default", &id)),
            Some(json!({"ttl": 300, "scopes": ["write"]})),
        )
        .await;
    reply.expect_status(201);
    let issued = reply.json();
    assert_has_keys(
        &issued,
        &[
            "access_token",
            "expires_at",
            "expires_in",
            "scope",
            "token_type",
        ],
    );
    assert_eq!(issued["expires_in"], 300);
    assert_eq!(issued["scope"], "write");
    let token = issued["access_token"].as_str().expect("token");
    server.assert_alive("", &id, &secret, token).await;

    let reply = server
        .admin(
            Method::POST,
            &format!("{}/revoke-tokens", app("default", &id)),
            None,
        )
        .await;
    reply.expect_status(200);
    assert_has_keys(&reply.json(), &["client_id", "tokens_valid_after"]);
    server.assert_dead("", &id, &secret, token).await;
}

#[tokio::test]
async fn every_route_wants_the_admin_key() {
    // Well over a hundred wrong keys from one address: without the limit, so that each
    // is answered 401 (tests/it/limits.rs tests the limit).
    let server = TestServer::start_with(|c| c.failed_admin_auth_per_address = 0).await;
    let (id, _) = server.simple_app("default").await;
    let routes: Vec<(Method, String)> = vec![
        (Method::GET, REALMS.to_owned()),
        (Method::POST, REALMS.to_owned()),
        (Method::GET, format!("{REALMS}/default")),
        (Method::PATCH, format!("{REALMS}/default")),
        (Method::DELETE, format!("{REALMS}/default")),
        (Method::POST, format!("{REALMS}/default/rotate-keys")),
        (Method::GET, apps("default")),
        (Method::POST, apps("default")),
        (Method::GET, app("default", &id)),
        (Method::PATCH, app("default", &id)),
        (Method::DELETE, app("default", &id)),
        (Method::POST, format!("{}/secret", app("default", &id))),
        (Method::POST, format!("{}/tokens", app("default", &id))),
        (
            Method::POST,
            format!("{}/revoke-tokens", app("default", &id)),
        ),
        (Method::GET, format!("{}/usage", app("default", &id))),
        (Method::GET, "/admin/v1/audit".to_owned()),
        (Method::GET, "/admin/v1/openapi.json".to_owned()),
        (Method::GET, "/admin/v1/nothing-here".to_owned()),
    ];
    let bad_keys: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer wrong-key-0123456789".to_owned()),
        Some(format!("Bearer {}", &ADMIN_KEY[..ADMIN_KEY.len() - 1])),
        Some(format!("Bearer {ADMIN_KEY}x")),
        Some(format!("Bearer {}", ADMIN_KEY.to_uppercase())),
        Some(ADMIN_KEY.to_owned()),
        Some(basic("admin", ADMIN_KEY)),
        Some(format!("Token {ADMIN_KEY}")),
    ];
    for (method, path) in &routes {
        for key in &bad_keys {
            let reply = server
                .admin_raw(
                    method.clone(),
                    path,
                    key.as_deref(),
                    Some(br#"{"name": "x"}"#.to_vec()),
                )
                .await;
            assert_eq!(reply.status, 401, "{method} {path} with {key:?}");
            reply.expect_admin_error(401, "unauthorized");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        }
    }
    // Nothing changed.
    let reply = server.admin(Method::GET, REALMS, None).await;
    assert_eq!(reply.json().as_array().expect("list").len(), 1);
    server
        .admin(Method::GET, &app("default", &id), None)
        .await
        .expect_status(200);
    // The scheme is case-insensitive.
    let reply = server
        .admin_raw(
            Method::GET,
            REALMS,
            Some(&format!("bearer {ADMIN_KEY}")),
            None,
        )
        .await;
    reply.expect_status(200);
}

/// One admin request that must fail with a 400 naming `field`.
struct Bad {
    method: Method,
    path: String,
    body: &'static str,
    /// The field the answer names (`a|b`: either); `None` when the body is not JSON.
    field: Option<&'static str>,
}

fn bad(method: Method, path: impl Into<String>, body: &'static str, field: &'static str) -> Bad {
    Bad {
        method,
        path: path.into(),
        body,
        field: Some(field),
    }
}

async fn check_bad(server: &TestServer, cases: Vec<Bad>) {
    for case in cases {
        let reply: Reply = server
            .admin_raw(
                case.method.clone(),
                &case.path,
                Some(&format!("Bearer {ADMIN_KEY}")),
                Some(case.body.as_bytes().to_vec()),
            )
            .await;
        assert_eq!(
            reply.status,
            400,
            "{} {} {}: {}",
            case.method,
            case.path,
            case.body,
            reply.text()
        );
        let body = reply.json();
        assert!(
            body["error"] == "invalid_request" || body["error"] == "invalid_field",
            "{body}"
        );
        assert!(body["message"].is_string(), "{body}");
        match case.field {
            Some(field) => assert!(
                field.split('|').any(|f| body["field"].as_str() == Some(f)),
                "{} {} {}: wanted field {field}, got {body}",
                case.method,
                case.path,
                case.body
            ),
            None => assert!(body.get("field").is_none_or(Value::is_string), "{body}"),
        }
    }
}

#[tokio::test]
async fn bad_admin_input_is_a_400_naming_the_field() {
    let server = TestServer::start().await;
    let (id, _) = server
        .create_app("default", json!({"name": "x", "scopes": ["read"]}))
        .await;
    let realm = format!("{REALMS}/default");
    let one = app("default", &id);
    let secret = format!("{one}/secret");
    let tokens = format!("{one}/tokens");
    let cases = vec![
        // Not JSON, or not an object.
        Bad {
            method: Method::POST,
            path: REALMS.to_owned(),
            body: "{",
            field: None,
        },
        Bad {
            method: Method::POST,
            path: apps("default"),
            body: "name=x",
            field: None,
        },
        Bad {
            method: Method::PATCH,
            path: one.clone(),
            body: "[1, 2]",
            field: None,
        },
        // Realms.
        bad(Method::POST, REALMS, "{}", "name"),
        bad(
            Method::POST,
            REALMS,
            r#"{"name": "x", "key_rotation": 60}"#,
            "key_rotation",
        ),
        bad(
            Method::PATCH,
            realm.clone(),
            r#"{"key_rotation": -1}"#,
            "key_rotation",
        ),
        bad(
            Method::POST,
            format!("{realm}/rotate-keys"),
            r#"{"activate_in": 99999999999}"#,
            "activate_in",
        ),
        bad(
            Method::POST,
            format!("{realm}/rotate-keys"),
            r#"{"activate_in": "soon"}"#,
            "activate_in",
        ),
        bad(
            Method::POST,
            format!("{realm}/rotate-keys"),
            r#"{"kid": "mine"}"#,
            "kid",
        ),
        bad(Method::POST, REALMS, r#"{"name": 5}"#, "name"),
        bad(
            Method::POST,
            REALMS,
            r#"{"name": "x", "colour": "red"}"#,
            "colour",
        ),
        bad(Method::POST, REALMS, r#"{"name": ""}"#, "name"),
        bad(Method::POST, REALMS, r#"{"name": "a/b"}"#, "name"),
        bad(Method::POST, REALMS, r#"{"name": "has space"}"#, "name"),
        bad(
            Method::POST,
            REALMS,
            r#"{"name": "x", "hosts": "a.example"}"#,
            "hosts",
        ),
        bad(
            Method::POST,
            REALMS,
            r#"{"name": "x", "hosts": ["not a host"]}"#,
            "hosts",
        ),
        bad(
            Method::POST,
            REALMS,
            r#"{"name": "x", "public_url": "ftp://x"}"#,
            "public_url",
        ),
        bad(
            Method::POST,
            REALMS,
            r#"{"name": "x", "token_format": "xml"}"#,
            "token_format",
        ),
        bad(
            Method::POST,
            REALMS,
            r#"{"name": "x", "signing_alg": "HS256"}"#,
            "signing_alg",
        ),
        bad(
            Method::POST,
            REALMS,
            r#"{"name": "x", "signing_alg": "none"}"#,
            "signing_alg",
        ),
        bad(
            Method::POST,
            REALMS,
            r#"{"name": "x", "token_prefix": "a b"}"#,
            "token_prefix",
        ),
        bad(
            Method::POST,
            REALMS,
            r#"{"name": "x", "token_prefix": ""}"#,
            "token_prefix",
        ),
        bad(
            Method::POST,
            REALMS,
            r#"{"name": "x", "token_type": "mac"}"#,
            "token_type",
        ),
        bad(
            Method::PATCH,
            realm.clone(),
            r#"{"name": "renamed"}"#,
            "name",
        ),
        bad(
            Method::PATCH,
            realm.clone(),
            r#"{"token_type": "BEARER"}"#,
            "token_type",
        ),
        bad(
            Method::PATCH,
            realm.clone(),
            r#"{"signing_alg": "ES512"}"#,
            "signing_alg",
        ),
        bad(Method::PATCH, realm.clone(), r#"{"hosts": [""]}"#, "hosts"),
        bad(
            Method::PATCH,
            realm.clone(),
            r#"{"public_url": "nope"}"#,
            "public_url",
        ),
        // Applications.
        bad(Method::POST, apps("default"), "{}", "name"),
        bad(Method::POST, apps("default"), r#"{"name": ""}"#, "name"),
        bad(Method::POST, apps("default"), r#"{"name": "   "}"#, "name"),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "secret": "s"}"#,
            "secret",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "client_id": "a b"}"#,
            "client_id",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "client_id": "a:b"}"#,
            "client_id",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "scopes": "read"}"#,
            "scopes",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "scopes": ["a\"b"]}"#,
            "scopes",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "scopes": ["a"], "default_scopes": ["b"]}"#,
            "default_scopes",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "scope_required": "yes"}"#,
            "scope_required",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "token_ttl": 0}"#,
            "token_ttl",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "token_ttl": -1}"#,
            "token_ttl",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "token_ttl": "60"}"#,
            "token_ttl",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "token_ttl": 999999999999}"#,
            "token_ttl",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "token_format": "xml"}"#,
            "token_format",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "auth_methods": []}"#,
            "auth_methods",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "auth_methods": ["magic"]}"#,
            "auth_methods",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "auth_methods": ["private_key_jwt"]}"#,
            "auth_methods|public_key|jwks",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "auth_methods": ["signed_credential"]}"#,
            "auth_methods|public_key",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "public_key": "nope"}"#,
            "public_key",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "jwks": {"x": 1}}"#,
            "jwks",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "audiences": ["a b"]}"#,
            "audiences",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "audiences": [""]}"#,
            "audiences",
        ),
        bad(
            Method::POST,
            apps("default"),
            r#"{"name": "x", "enabled": 1}"#,
            "enabled",
        ),
        bad(Method::PATCH, one.clone(), r#"{"nme": "typo"}"#, "nme"),
        bad(
            Method::PATCH,
            one.clone(),
            r#"{"client_id": "new"}"#,
            "client_id",
        ),
        bad(
            Method::PATCH,
            one.clone(),
            r#"{"enabled": "no"}"#,
            "enabled",
        ),
        bad(Method::PATCH, one.clone(), r#"{"name": ""}"#, "name"),
        bad(
            Method::PATCH,
            one.clone(),
            r#"{"token_ttl": 0}"#,
            "token_ttl",
        ),
        bad(
            Method::PATCH,
            one.clone(),
            r#"{"default_scopes": ["write"]}"#,
            "default_scopes",
        ),
        bad(
            Method::PATCH,
            one.clone(),
            r#"{"scopes": ["bad scope\\"]}"#,
            "scopes",
        ),
        bad(
            Method::PATCH,
            one.clone(),
            r#"{"auth_methods": []}"#,
            "auth_methods",
        ),
        // Secret rotation and issued tokens.
        bad(
            Method::POST,
            secret.clone(),
            r#"{"grace_period": -5}"#,
            "grace_period",
        ),
        bad(
            Method::POST,
            secret.clone(),
            r#"{"grace_period": "1h"}"#,
            "grace_period",
        ),
        bad(
            Method::POST,
            secret.clone(),
            r#"{"grace_period": 99999999999}"#,
            "grace_period",
        ),
        bad(Method::POST, secret.clone(), r#"{"grace": 5}"#, "grace"),
        bad(Method::POST, tokens.clone(), r#"{"ttl": 0}"#, "ttl"),
        bad(Method::POST, tokens.clone(), r#"{"ttl": "60"}"#, "ttl"),
        bad(
            Method::POST,
            tokens.clone(),
            r#"{"ttl": 99999999999}"#,
            "ttl",
        ),
        bad(
            Method::POST,
            tokens.clone(),
            r#"{"scopes": ["write"]}"#,
            "scopes",
        ),
        bad(
            Method::POST,
            tokens.clone(),
            r#"{"scope": "read"}"#,
            "scope",
        ),
    ];
    check_bad(&server, cases).await;

    // None of that changed anything.
    let reply = server.admin(Method::GET, REALMS, None).await;
    assert_eq!(reply.json().as_array().expect("list").len(), 1);
    let reply = server.admin(Method::GET, &apps("default"), None).await;
    let list = reply.json();
    assert_eq!(list.as_array().expect("list").len(), 1);
    assert_eq!(list[0]["name"], "x");
    assert_eq!(list[0]["scopes"], json!(["read"]));
    assert_eq!(list[0]["token_ttl"], 3600);
}

#[tokio::test]
async fn unknown_realms_and_applications_are_404() {
    let server = TestServer::start().await;
    let (id, _) = server.simple_app("default").await;
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("{REALMS}/nope"), None),
        (Method::PATCH, format!("{REALMS}/nope"), Some(json!({}))),
        (Method::DELETE, format!("{REALMS}/nope"), None),
        (Method::POST, format!("{REALMS}/nope/rotate-keys"), None),
        (Method::GET, format!("{REALMS}/Default"), None),
        (Method::GET, apps("nope"), None),
        (Method::POST, apps("nope"), Some(json!({"name": "x"}))),
        (Method::GET, app("nope", &id), None),
        (Method::GET, app("default", "nope"), None),
        (
            Method::PATCH,
            app("default", "nope"),
            Some(json!({"name": "y"})),
        ),
        (Method::DELETE, app("default", "nope"), None),
        (
            Method::POST,
            format!("{}/secret", app("default", "nope")),
            None,
        ),
        (
            Method::POST,
            format!("{}/tokens", app("default", "nope")),
            None,
        ),
        (
            Method::POST,
            format!("{}/revoke-tokens", app("default", "nope")),
            None,
        ),
        (Method::POST, format!("{}/secret", app("nope", &id)), None),
        (Method::GET, "/admin/v1/nothing".to_owned(), None),
        (Method::GET, "/admin/v2/realms".to_owned(), None),
        (Method::GET, format!("{}/extra", app("default", &id)), None),
    ];
    for (method, path, body) in cases {
        let reply = server.admin(method.clone(), &path, body).await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.text());
        reply.expect_admin_error(404, "not_found");
    }
}

#[tokio::test]
async fn duplicates_are_409() {
    let server = TestServer::start().await;
    server
        .create_realm(json!({"name": "R", "hosts": ["r.api.example"]}))
        .await;
    for body in [
        json!({"name": "R"}),
        json!({"name": "default"}),
        json!({"name": "other", "hosts": ["r.api.example"]}),
        json!({"name": "other", "hosts": ["R.API.example"]}),
    ] {
        let reply = server.admin(Method::POST, REALMS, Some(body.clone())).await;
        assert_eq!(reply.status, 409, "{body}: {}", reply.text());
        reply.expect_admin_error(409, "conflict");
    }
    // Host clash on PATCH as well.
    server.create_realm(json!({"name": "S"})).await;
    server
        .admin(
            Method::PATCH,
            &format!("{REALMS}/S"),
            Some(json!({"hosts": ["r.api.example"]})),
        )
        .await
        .expect_admin_error(409, "conflict");

    server
        .create_app("R", json!({"name": "a", "client_id": "dup"}))
        .await;
    let reply = server
        .admin(
            Method::POST,
            &apps("R"),
            Some(json!({"name": "b", "client_id": "dup"})),
        )
        .await;
    reply.expect_admin_error(409, "conflict");
    // The same client_id in another realm is another application.
    server
        .create_app("S", json!({"name": "b", "client_id": "dup"}))
        .await;
    server
        .create_app("R", json!({"name": "c", "client_id": "Dup"}))
        .await;
    let reply = server.admin(Method::GET, &app("R", "dup"), None).await;
    assert_eq!(reply.json()["name"], "a");
}

#[tokio::test]
async fn an_oversized_admin_body_is_413() {
    let server = TestServer::start().await;
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(70 * 1024));
    let reply = server
        .admin_raw(
            Method::POST,
            REALMS,
            Some(&format!("Bearer {ADMIN_KEY}")),
            Some(big.into_bytes()),
        )
        .await;
    reply.expect_admin_error(413, "payload_too_large");
}

#[tokio::test]
async fn the_openapi_document_is_served_and_covers_every_route() {
    let server = TestServer::start().await;
    let reply = server
        .admin(Method::GET, "/admin/v1/openapi.json", None)
        .await;
    reply.expect_status(200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let document = reply.json();
    assert_eq!(document["openapi"], "3.1.0", "{document}");
    let paths = document["paths"].as_object().expect("paths");

    let source = |file: &str| {
        std::fs::read_to_string(format!("{}/src/{file}", env!("CARGO_MANIFEST_DIR")))
            .expect("router source")
    };
    let admin = source("admin.rs");
    let public = source("public.rs");
    // The public router serves its per-realm routes at the root and under two prefixes.
    let (per_realm, rest) = public
        .split_once(".merge(per_realm")
        .expect("the per-realm router is merged");
    let mut routes = routes_in(&admin);
    routes.extend(routes_in(rest));
    for (path, methods) in routes_in(per_realm) {
        for prefix in ["", "/realms/{realm}", "/auth/realms/{realm}"] {
            routes.push((format!("{prefix}{path}"), methods.clone()));
        }
    }
    assert!(
        routes.len() > 60,
        "the source parse found {} routes",
        routes.len()
    );
    for (path, methods) in routes {
        let item = paths
            .get(&path)
            .unwrap_or_else(|| panic!("{path} is served but not in the OpenAPI document"));
        for method in methods {
            assert!(
                item.get(&method).is_some(),
                "{method} {path} is served but not in the OpenAPI document"
            );
        }
    }
    for schema in ["RealmView", "ApplicationView", "TokenResponse", "AuditView"] {
        assert!(
            document["components"]["schemas"][schema].is_object(),
            "{schema}"
        );
    }
}

/// `(path, [method])` of every `.route("path", get(..).post(..))` in a router's source.
fn routes_in(source: &str) -> Vec<(String, Vec<String>)> {
    let mut routes = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find(".route(") {
        let call = &rest[start + ".route(".len()..];
        let mut depth = 1;
        let end = call
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("a closed .route(");
        let inside = &call[..end];
        let path = inside.split('"').nth(1).expect("a path literal").to_owned();
        // A method router is `get(handler)` or `….post(handler)`: the name right
        // after a non-identifier character, followed by `(`.
        let methods = ["get", "post", "patch", "delete", "put"]
            .into_iter()
            .filter(|m| {
                inside.match_indices(&format!("{m}(")).any(|(at, _)| {
                    at == 0
                        || !inside.as_bytes()[at - 1].is_ascii_alphanumeric()
                            && inside.as_bytes()[at - 1] != b'_'
                })
            })
            .map(str::to_owned)
            .collect();
        routes.push((path, methods));
        rest = &call[end..];
    }
    routes
}

#[tokio::test]
async fn applications_list_in_pages_with_a_next_link_and_by_search() {
    let server = TestServer::start().await;
    for (id, name) in [
        ("app-a", "Billing"),
        ("app-b", "reports"),
        ("app-c", "billing EU"),
        ("app-d", "search me"),
        ("app-e", "other"),
    ] {
        server
            .create_app("default", json!({"name": name, "client_id": id}))
            .await;
    }
    let ids = |reply: &Reply| -> Vec<String> {
        reply
            .json()
            .as_array()
            .expect("a list")
            .iter()
            .map(|a| a["client_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let reply = server
        .admin(Method::GET, &format!("{}?limit=2", apps("default")), None)
        .await;
    reply.expect_status(200);
    assert_eq!(ids(&reply), ["app-a", "app-b"]);
    let link = reply.header("link").expect("a next link").to_owned();
    assert_eq!(
        link,
        "</admin/v1/realms/default/applications?limit=2&after=app-b>; rel=\"next\""
    );
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("a URL");
    let reply = server.admin(Method::GET, next, None).await;
    assert_eq!(ids(&reply), ["app-c", "app-d"]);
    let reply = server
        .admin(
            Method::GET,
            &format!("{}?limit=2&after=app-d", apps("default")),
            None,
        )
        .await;
    assert_eq!(ids(&reply), ["app-e"]);
    assert!(reply.header("link").is_none(), "the last page");

    let reply = server
        .admin(
            Method::GET,
            &format!("{}?q=BILLING%20", apps("default")),
            None,
        )
        .await;
    assert_eq!(ids(&reply), ["app-c"]);
    let reply = server
        .admin(Method::GET, &format!("{}?q=bill", apps("default")), None)
        .await;
    assert_eq!(ids(&reply), ["app-a", "app-c"]);
    let reply = server.admin(Method::GET, &apps("default"), None).await;
    assert_eq!(ids(&reply).len(), 5, "100 unless asked");

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("colour=red", "colour"),
    ] {
        let reply = server
            .admin(Method::GET, &format!("{}?{query}", apps("default")), None)
            .await;
        reply.expect_status(400);
        let error = reply.json();
        assert_eq!(error["field"], field, "{query}: {error}");
    }
    let reply = server
        .admin(Method::GET, "/admin/v1/audit?before=yesterday", None)
        .await;
    reply.expect_status(400);
    assert_eq!(reply.json()["field"], "before");
}

#[tokio::test]
async fn every_admin_change_is_in_the_audit_log_and_no_secret_is() {
    let server = TestServer::start().await;
    server
        .admin(Method::POST, REALMS, Some(json!({"name": "audited"})))
        .await
        .expect_status(201);
    let (id, secret) = server
        .create_app("audited", json!({"name": "a", "scopes": ["read"]}))
        .await;
    let one = app("audited", &id);
    let changes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::PATCH, one.clone(), Some(json!({"token_ttl": 600}))),
        (Method::POST, format!("{one}/secret"), None),
        (
            Method::POST,
            format!("{one}/tokens"),
            Some(json!({"ttl": 60})),
        ),
        (Method::POST, format!("{one}/revoke-tokens"), None),
        (
            Method::PATCH,
            format!("{REALMS}/audited"),
            Some(json!({"token_type": "bearer"})),
        ),
        (Method::POST, format!("{REALMS}/audited/rotate-keys"), None),
        (Method::DELETE, one.clone(), None),
        (Method::DELETE, format!("{REALMS}/audited"), None),
    ];
    let mut answers = String::new();
    for (method, path, body) in changes {
        let reply = server.admin(method.clone(), &path, body).await;
        assert!(reply.status < 300, "{method} {path}: {}", reply.text());
        answers.push_str(&reply.text());
    }
    // A failed change is not a change.
    server
        .admin(Method::DELETE, &format!("{REALMS}/nope"), None)
        .await
        .expect_status(404);

    let reply = server
        .admin(Method::GET, "/admin/v1/audit?realm=audited", None)
        .await;
    reply.expect_status(200);
    let log = reply.json();
    let actions: Vec<&str> = log
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "realm.delete",
            "application.delete",
            "realm.rotate_keys",
            "realm.update",
            "application.revoke_tokens",
            "application.issue_token",
            "application.rotate_secret",
            "application.update",
            "application.create",
            "realm.create",
        ]
    );
    for entry in log.as_array().expect("a list") {
        assert_eq!(entry["actor"], "admin-key");
        assert_eq!(entry["realm"], "audited");
        assert!(entry["at_ms"].as_i64().expect("a time") > 1_700_000_000_000);
    }
    assert_eq!(log[7]["client_id"], id.as_str());
    assert_eq!(log[7]["detail"], json!({"token_ttl": 600}));
    let text = log.to_string();
    assert!(!text.contains(&secret), "the first secret");
    let tokens_and_secrets: Vec<&str> = answers
        .split('"')
        .filter(|s| s.len() > 30 && !s.contains(' '))
        .collect();
    for value in tokens_and_secrets {
        assert!(!text.contains(value), "{value} is in the audit log");
    }

    let reply = server
        .admin(Method::GET, "/admin/v1/audit?realm=audited&limit=3", None)
        .await;
    assert_eq!(reply.json().as_array().map(Vec::len), Some(3));
    assert!(reply.header("link").is_some());
}

#[tokio::test]
async fn usage_counts_tokens_issued_per_hour() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    for _ in 0..3 {
        server.fetch_token("", &id, &secret).await;
    }
    server
        .admin(
            Method::POST,
            &format!("{}/tokens", app("default", &id)),
            Some(json!({"ttl": 60})),
        )
        .await
        .expect_status(201);
    // A refused grant is not a token issued.
    server
        .token_basic(
            "/oauth2/token",
            &id,
            "wrong-secret",
            &[("grant_type", "client_credentials")],
        )
        .await
        .expect_status(401);

    let reply = server
        .admin(Method::GET, &format!("{}/usage", app("default", &id)), None)
        .await;
    reply.expect_status(200);
    let usage = reply.json();
    let hours = usage["hours"].as_array().expect("hours");
    assert_eq!(hours.len(), 24);
    let now_hour = now_s() / 3600 * 3600;
    assert_eq!(hours[23]["start"], now_hour);
    let total: u64 = hours.iter().map(|h| h["tokens"].as_u64().expect("n")).sum();
    assert_eq!(total, 4, "{usage}");

    let reply = server
        .admin(
            Method::GET,
            &format!("{}/usage?hours=2", app("default", &id)),
            None,
        )
        .await;
    assert_eq!(reply.json()["hours"].as_array().map(Vec::len), Some(2));
    for query in ["hours=0", "hours=841", "hours=x", "days=1"] {
        let reply = server
            .admin(
                Method::GET,
                &format!("{}/usage?{query}", app("default", &id)),
                None,
            )
            .await;
        reply.expect_status(400);
    }
    server
        .admin(
            Method::GET,
            &format!("{}/usage", app("default", "nope")),
            None,
        )
        .await
        .expect_admin_error(404, "not_found");
}

/// PEM of a PKCS#1 `RSAPublicKey` with the given modulus and exponent (big-endian).
fn rsa_pem(n: &[u8], e: &[u8]) -> String {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }
    let int = |v: &[u8]| tlv(0x02, &[&[0u8][..], v].concat());
    let der = tlv(0x30, &[int(n), int(e)].concat());
    tessera_test_support::pem("RSA PUBLIC KEY", &der)
}

/// Input that breaks routing or tokens, or that shows people one thing and is another:
/// each a 400 naming its field, and nothing is created.
#[tokio::test]
async fn input_that_breaks_routing_tokens_or_reading_is_refused_naming_the_field() {
    let server = TestServer::start().await;
    let (id, _) = server.simple_app("default").await;
    let mut strong_n = vec![0xC3u8; 256];
    strong_n[255] = 0xC5;
    let key_app =
        |pem: String| json!({"name": "k", "auth_methods": ["private_key_jwt"], "public_key": pem});
    let apps_path = "/admin/v1/realms/default/applications".to_owned();
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            REALMS.to_owned(),
            json!({"name": ".."}),
            "name",
        ),
        (
            Method::POST,
            REALMS.to_owned(),
            json!({"name": "."}),
            "name",
        ),
        (
            Method::POST,
            REALMS.to_owned(),
            json!({"name": "r1", "token_prefix": "eyJ"}),
            "token_prefix",
        ),
        (
            Method::POST,
            REALMS.to_owned(),
            json!({"name": "r2", "token_prefix": "eyJhbGci"}),
            "token_prefix",
        ),
        (
            Method::POST,
            REALMS.to_owned(),
            json!({"name": "r3", "token_prefix": "tsr_rt_"}),
            "token_prefix",
        ),
        (
            Method::POST,
            REALMS.to_owned(),
            json!({"name": "r4", "token_prefix": "tsr_"}),
            "token_prefix",
        ),
        (
            Method::PATCH,
            format!("{REALMS}/default"),
            json!({"token_prefix": "ey"}),
            "token_prefix",
        ),
        (
            Method::POST,
            apps_path.clone(),
            json!({"name": "pay\u{202E}lapyap"}),
            "name",
        ),
        (
            Method::POST,
            apps_path.clone(),
            json!({"name": "bill\u{200B}ing"}),
            "name",
        ),
        (
            Method::POST,
            apps_path.clone(),
            json!({"name": "\u{2066}billing"}),
            "name",
        ),
        (
            Method::POST,
            apps_path.clone(),
            json!({"name": "bill\u{FEFF}"}),
            "name",
        ),
        (
            Method::POST,
            apps_path.clone(),
            json!({"name": "a\u{1b}[31mred"}),
            "name",
        ),
        (
            Method::POST,
            apps_path.clone(),
            json!({"name": "r", "roles": ["ad\u{202D}min"]}),
            "roles",
        ),
        (
            Method::POST,
            apps_path.clone(),
            json!({"name": "r", "audiences": ["https://a\u{200D}.example"]}),
            "audiences",
        ),
        (
            Method::PATCH,
            app("default", &id),
            json!({"name": "x\u{200F}"}),
            "name",
        ),
        (
            Method::POST,
            apps_path.clone(),
            key_app(rsa_pem(&strong_n, &[1])),
            "public_key",
        ),
        (
            Method::POST,
            apps_path.clone(),
            key_app(rsa_pem(&strong_n, &[1, 0, 0])),
            "public_key",
        ),
        (
            Method::POST,
            apps_path.clone(),
            key_app(rsa_pem(
                &[0xC5, 0x1F, 0x2E, 0x3D, 0x4C, 0x5B, 0x6A, 0x79],
                &[1, 0, 1],
            )),
            "public_key",
        ),
        (
            Method::POST,
            apps_path.clone(),
            key_app(rsa_pem(&strong_n[..128], &[1, 0, 1])),
            "public_key",
        ),
        (
            Method::POST,
            apps_path.clone(),
            json!({"name": "j", "auth_methods": ["private_key_jwt"],
            "jwks": {"keys": [{"kty": "RSA", "n": "xR8uPUxbank", "e": "AQ"}]}}),
            "jwks",
        ),
    ];
    for (method, path, body, field) in cases {
        let reply = server
            .admin(method.clone(), &path, Some(body.clone()))
            .await;
        let error = reply.expect_admin_error(400, "invalid_field");
        assert_eq!(error["field"], field, "{method} {path} {body}: {error}");
    }
    // Nothing was made or changed by any of them.
    let realms = server.admin(Method::GET, REALMS, None).await.json();
    assert_eq!(realms.as_array().unwrap().len(), 1, "{realms}");
    let apps = server.admin(Method::GET, &apps_path, None).await.json();
    assert_eq!(apps.as_array().unwrap().len(), 1, "{apps}");
    // A strong key of the same shape is taken.
    server
        .admin(
            Method::POST,
            &apps_path,
            Some(key_app(rsa_pem(&strong_n, &[1, 0, 1]))),
        )
        .await
        .expect_status(201);
}
