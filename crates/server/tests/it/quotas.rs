//! Per-application token quotas over HTTP: set, shown, changed and cleared through the
//! admin API; over the quota, the token endpoint answers 429 `quota_exceeded` with
//! `Retry-After`. The counting itself, on a clock that moves when told, is tested in
//! crates/store/tests/it/authority.rs.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Reply, TestServer, app};

/// Client-credentials grants until one is refused (at most `attempts`); the refusal.
async fn grant_until_refused(
    server: &TestServer,
    id: &str,
    secret: &str,
    attempts: usize,
) -> Reply {
    for _ in 0..attempts {
        let reply = server
            .token_basic(
                "/oauth2/token",
                id,
                secret,
                &[("grant_type", "client_credentials")],
            )
            .await;
        if reply.status != 200 {
            return reply;
        }
    }
    panic!("{attempts} grants and none refused");
}

/// 429, `Retry-After` in seconds within `1..=max`, and the RFC 6749 body.
#[track_caller]
fn expect_quota_exceeded(reply: &Reply, max: u64) -> Value {
    let body = reply.expect_oauth_error(429, "quota_exceeded");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("quota"), "{body}");
    let retry_after: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(
        (1..=max).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    body
}

#[tokio::test]
async fn over_the_minute_quota_the_token_endpoint_answers_429() {
    let server = TestServer::start().await;
    let view = server
        .create_app_view(
            "default",
            json!({"name": "metered", "quota": {"per_minute": 2}}),
        )
        .await;
    assert_eq!(view["quota"], json!({"per_minute": 2}));
    let id = view["client_id"].as_str().unwrap();
    let secret = view["client_secret"].as_str().unwrap();
    // Two a minute: even if the minute turns once in between, the fifth is refused.
    let refused = grant_until_refused(&server, id, secret, 5).await;
    expect_quota_exceeded(&refused, 60);
    // An administrator's token is neither refused nor counted.
    let issued = server
        .admin(
            Method::POST,
            &format!("{}/tokens", app("default", id)),
            None,
        )
        .await;
    issued.expect_status(201);
    // Another application is not affected.
    let (other, other_secret) = server.simple_app("default").await;
    server.fetch_token("", &other, &other_secret).await;
}

#[tokio::test]
async fn over_the_day_quota_the_wait_is_until_utc_midnight() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app("default", json!({"name": "daily", "quota": {"per_day": 1}}))
        .await;
    let refused = grant_until_refused(&server, &id, &secret, 3).await;
    let body = expect_quota_exceeded(&refused, 86_400);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("per day"),
        "{body}"
    );
}

#[tokio::test]
async fn a_quota_is_set_shown_changed_and_cleared_through_the_admin_api() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let path = app("default", &id);
    let shown = server.admin(Method::GET, &path, None).await;
    shown.expect_status(200);
    assert_eq!(shown.json()["quota"], Value::Null, "no quota by default");

    let patched = server
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"quota": {"per_minute": 1, "per_day": 1000}})),
        )
        .await;
    patched.expect_status(200);
    let quota = json!({"per_minute": 1, "per_day": 1000});
    assert_eq!(patched.json()["quota"], quota);
    let shown = server.admin(Method::GET, &path, None).await;
    assert_eq!(shown.json()["quota"], quota);
    // Other fields leave it as it is.
    let renamed = server
        .admin(Method::PATCH, &path, Some(json!({"name": "renamed"})))
        .await;
    assert_eq!(renamed.json()["quota"], quota);
    // In force at once on this node.
    let refused = grant_until_refused(&server, &id, &secret, 3).await;
    expect_quota_exceeded(&refused, 60);

    let cleared = server
        .admin(Method::PATCH, &path, Some(json!({"quota": null})))
        .await;
    cleared.expect_status(200);
    assert_eq!(cleared.json()["quota"], Value::Null);
    for _ in 0..3 {
        server.fetch_token("", &id, &secret).await;
    }
    // Both changes are in the audit log, the clearing too.
    let audit = server
        .admin(
            Method::GET,
            &format!("/admin/v1/audit?client_id={id}&limit=3"),
            None,
        )
        .await;
    audit.expect_status(200);
    let entries = audit.json();
    let details: Vec<&Value> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["detail"])
        .collect();
    assert!(
        details.iter().any(|d| d.get("quota") == Some(&Value::Null)),
        "{entries}"
    );
    assert!(details.iter().any(|d| d["quota"] == quota), "{entries}");
}

#[tokio::test]
async fn bad_quotas_are_400_naming_the_field() {
    let server = TestServer::start().await;
    let (id, _) = server.simple_app("default").await;
    let path = app("default", &id);
    let create = "/admin/v1/realms/default/applications";
    for quota in [
        json!({"per_minute": 0}),
        json!({"per_day": 0}),
        json!({"per_day": 1_000_000_001_u64}),
        json!({"per_minute": -1}),
        json!({"per_minute": "ten"}),
        json!({"per_hour": 5}),
        json!(7),
    ] {
        for (method, path, body) in [
            (Method::PATCH, path.as_str(), json!({"quota": quota})),
            (Method::POST, create, json!({"name": "bad", "quota": quota})),
        ] {
            let reply = server.admin(method.clone(), path, Some(body)).await;
            reply.expect_status(400);
            let error = reply.json();
            assert!(
                error["error"] == "invalid_request" || error["error"] == "invalid_field",
                "{error}"
            );
            let field = error["field"].as_str().unwrap_or_default();
            assert!(
                field == "quota" || field.starts_with("quota."),
                "{method} {quota}: {error}"
            );
        }
    }
    let shown = server.admin(Method::GET, &path, None).await;
    assert_eq!(shown.json()["quota"], Value::Null, "nothing was changed");
}
