//! What invalidates a token (docs/contract.md §4), and admin-issued tokens with a set
//! lifetime.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::harness::{TestServer, now_s};

fn app_path(client_id: &str) -> String {
    format!("/admin/v1/realms/default/applications/{client_id}")
}

#[tokio::test]
async fn revoke_tokens_kills_every_token_issued_so_far() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let (other_id, other_secret) = server.simple_app("default").await;
    let jwt = server.fetch_token("", &id, &secret).await;
    let other = server.fetch_token("", &other_id, &other_secret).await;
    let reply = server
        .admin(
            Method::POST,
            &format!("{}/tokens", app_path(&id)),
            Some(json!({})),
        )
        .await;
    reply.expect_status(201);
    let issued = reply.json()["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    server.assert_alive("", &id, &secret, &jwt).await;
    server.assert_alive("", &id, &secret, &issued).await;

    let before = now_s();
    let reply = server
        .admin(
            Method::POST,
            &format!("{}/revoke-tokens", app_path(&id)),
            None,
        )
        .await;
    reply.expect_status(200);
    let body = reply.json();
    assert_eq!(body["client_id"], id);
    let after = body["tokens_valid_after"].as_i64().expect("seconds");
    assert!((before..=now_s()).contains(&after), "{body}");

    server.assert_dead("", &id, &secret, &jwt).await;
    server.assert_dead("", &id, &secret, &issued).await;
    // Other applications are untouched; the application itself still gets new tokens.
    server
        .assert_alive("", &other_id, &other_secret, &other)
        .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = server.fetch_token("", &id, &secret).await;
    server.assert_alive("", &id, &secret, &fresh).await;
}

#[tokio::test]
async fn rotating_without_grace_kills_the_old_secret_and_its_tokens() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let old_token = server.fetch_token("", &id, &secret).await;
    let reply = server
        .admin(Method::POST, &format!("{}/secret", app_path(&id)), None)
        .await;
    reply.expect_status(200);
    let body = reply.json();
    assert_eq!(body["client_id"], id);
    assert!(body["previous_secret_expires_at"].is_null(), "{body}");
    let new_secret = body["client_secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, secret);
    assert!(
        new_secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{new_secret}"
    );

    let refused = server
        .token_basic(
            "/oauth2/token",
            &id,
            &secret,
            &[("grant_type", "client_credentials")],
        )
        .await;
    refused.expect_oauth_error(401, "invalid_client");
    assert!(refused.header("www-authenticate").is_some());
    server.assert_dead("", &id, &new_secret, &old_token).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = server.fetch_token("", &id, &new_secret).await;
    server.assert_alive("", &id, &new_secret, &fresh).await;
}

#[tokio::test]
async fn rotating_with_grace_keeps_the_old_secret_working() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let old_token = server.fetch_token("", &id, &secret).await;
    let before = now_s();
    let reply = server
        .admin(
            Method::POST,
            &format!("{}/secret", app_path(&id)),
            Some(json!({"grace_period": 600})),
        )
        .await;
    reply.expect_status(200);
    let body = reply.json();
    let new_secret = body["client_secret"].as_str().expect("secret").to_owned();
    let until = body["previous_secret_expires_at"]
        .as_i64()
        .expect("an expiry for the old secret");
    assert!(
        (before + 600..=now_s() + 600).contains(&until),
        "{until} vs {before}"
    );

    // Both secrets work, and the old tokens live.
    let by_old = server.fetch_token("", &id, &secret).await;
    let by_new = server.fetch_token("", &id, &new_secret).await;
    for token in [&old_token, &by_old, &by_new] {
        server.assert_alive("", &id, &new_secret, token).await;
        server.assert_alive("", &id, &secret, token).await;
    }

    // A second rotation without grace ends both previous secrets.
    let reply = server
        .admin(Method::POST, &format!("{}/secret", app_path(&id)), None)
        .await;
    reply.expect_status(200);
    let newest = reply.json()["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    for dead_secret in [&secret, &new_secret] {
        server
            .token_basic(
                "/oauth2/token",
                &id,
                dead_secret,
                &[("grant_type", "client_credentials")],
            )
            .await
            .expect_oauth_error(401, "invalid_client");
    }
    server.assert_dead("", &id, &newest, &by_new).await;
}

#[tokio::test]
async fn disabling_an_application_stops_its_tokens_and_its_secret() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let (watcher, watcher_secret) = server.simple_app("default").await;
    let token = server.fetch_token("", &id, &secret).await;
    server.assert_alive("", &id, &secret, &token).await;

    let reply = server
        .admin(
            Method::PATCH,
            &app_path(&id),
            Some(json!({"enabled": false})),
        )
        .await;
    reply.expect_status(200);
    assert_eq!(reply.json()["enabled"], false);

    server
        .assert_dead("", &watcher, &watcher_secret, &token)
        .await;
    server
        .token_basic(
            "/oauth2/token",
            &id,
            &secret,
            &[("grant_type", "client_credentials")],
        )
        .await
        .expect_oauth_error(401, "invalid_client");
    // A disabled client cannot introspect either.
    server
        .introspect("", &id, &secret, &token)
        .await
        .expect_oauth_error(401, "invalid_client");
    // Nor can an administrator issue it a token.
    server
        .admin(
            Method::POST,
            &format!("{}/tokens", app_path(&id)),
            Some(json!({"ttl": 60})),
        )
        .await
        .expect_admin_error(403, "forbidden");
}

#[tokio::test]
async fn deleting_an_application_stops_its_tokens_and_its_secret() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let (watcher, watcher_secret) = server.simple_app("default").await;
    let token = server.fetch_token("", &id, &secret).await;
    let reply = server.admin(Method::DELETE, &app_path(&id), None).await;
    reply.expect_status(204);
    assert!(reply.body.is_empty());
    server
        .assert_dead("", &watcher, &watcher_secret, &token)
        .await;
    server
        .token_basic(
            "/oauth2/token",
            &id,
            &secret,
            &[("grant_type", "client_credentials")],
        )
        .await
        .expect_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn a_recreated_client_id_does_not_revive_old_tokens() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(
            "default",
            json!({"name": "first", "client_id": "reused-id"}),
        )
        .await;
    let (watcher, watcher_secret) = server.simple_app("default").await;
    let token = server.fetch_token("", &id, &secret).await;
    server
        .admin(Method::DELETE, &app_path(&id), None)
        .await
        .expect_status(204);
    server
        .assert_dead("", &watcher, &watcher_secret, &token)
        .await;
    let (id2, secret2) = server
        .create_app(
            "default",
            json!({"name": "second owner", "client_id": "reused-id"}),
        )
        .await;
    assert_eq!(id2, id);
    // The first application's token must not be a token of the second one.
    server.assert_dead("", &id2, &secret2, &token).await;
}

#[tokio::test]
async fn a_realm_deleted_and_made_again_knows_no_old_tokens() {
    let server = TestServer::start().await;
    for format in ["jwt", "opaque"] {
        server
            .create_realm(json!({"name": "again", "token_format": format}))
            .await;
        let (id, secret) = server
            .create_app("again", json!({"name": "a", "client_id": "same-id"}))
            .await;
        let token = server.fetch_token("/realms/again", &id, &secret).await;
        server
            .admin(Method::DELETE, "/admin/v1/realms/again", None)
            .await
            .expect_status(204);
        server
            .create_realm(json!({"name": "again", "token_format": format}))
            .await;
        let (id, secret) = server
            .create_app("again", json!({"name": "a", "client_id": "same-id"}))
            .await;
        server
            .assert_dead("/realms/again", &id, &secret, &token)
            .await;
        server
            .admin(Method::DELETE, "/admin/v1/realms/again", None)
            .await
            .expect_status(204);
    }
}

#[tokio::test]
async fn admin_issued_tokens_have_the_lifetime_asked_for() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(
            "default",
            json!({"name": "i", "scopes": ["read", "write"], "token_ttl": 3600}),
        )
        .await;
    let before = now_s();
    let reply = server
        .admin(
            Method::POST,
            &format!("{}/tokens", app_path(&id)),
            Some(json!({"ttl": 86400, "scopes": ["read"]})),
        )
        .await;
    reply.expect_status(201);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["expires_in"], 86400);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read");
    let expires_at = body["expires_at"].as_i64().expect("expires_at");
    assert!((before + 86400..=now_s() + 86401).contains(&expires_at));
    let token = body["access_token"].as_str().expect("token");
    let active = server.assert_alive("", &id, &secret, token).await;
    assert_eq!(active["exp"], expires_at);
    assert_eq!(active["scope"], "read");
    assert_eq!(active["client_id"], id);

    // Without a ttl: the application's lifetime and default scopes.
    let reply = server
        .admin(
            Method::POST,
            &format!("{}/tokens", app_path(&id)),
            Some(json!({})),
        )
        .await;
    reply.expect_status(201);
    let body = reply.json();
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read write");
    // And with no body at all.
    let reply = server
        .admin(Method::POST, &format!("{}/tokens", app_path(&id)), None)
        .await;
    reply.expect_status(201);
}

#[tokio::test]
async fn an_expired_token_is_never_accepted() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app("default", json!({"name": "e", "token_format": "opaque"}))
        .await;
    let mut tokens = Vec::new();
    let reply = server
        .admin(
            Method::POST,
            &format!("{}/tokens", app_path(&id)),
            Some(json!({"ttl": 1})),
        )
        .await;
    reply.expect_status(201);
    assert_eq!(reply.json()["expires_in"], 1);
    tokens.push(reply.json()["access_token"].as_str().expect("t").to_owned());
    // A JWT as well.
    let (jid, jsecret) = server.simple_app("default").await;
    let reply = server
        .admin(
            Method::POST,
            &format!("{}/tokens", app_path(&jid)),
            Some(json!({"ttl": 1})),
        )
        .await;
    reply.expect_status(201);
    tokens.push(reply.json()["access_token"].as_str().expect("t").to_owned());

    tokio::time::sleep(Duration::from_millis(2100)).await;
    for token in &tokens {
        server.assert_dead("", &id, &secret, token).await;
        server.assert_dead("", &jid, &jsecret, token).await;
    }
}

#[tokio::test]
async fn re_enabling_does_not_revive_tokens_killed_by_disabling() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let (watcher, watcher_secret) = server.simple_app("default").await;
    let token = server.fetch_token("", &id, &secret).await;
    for enabled in [false, true] {
        server
            .admin(
                Method::PATCH,
                &app_path(&id),
                Some(json!({"enabled": enabled})),
            )
            .await
            .expect_status(200);
        server
            .assert_dead("", &watcher, &watcher_secret, &token)
            .await;
    }
    // The application itself works again, with new tokens.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = server.fetch_token("", &id, &secret).await;
    server.assert_alive("", &id, &secret, &fresh).await;
}

#[tokio::test]
async fn a_new_token_prefix_keeps_outstanding_opaque_tokens_valid() {
    let server = TestServer::start().await;
    server
        .create_realm(json!({"name": "op", "token_format": "opaque", "token_prefix": "old_"}))
        .await;
    let (id, secret) = server.simple_app("op").await;
    let old = server.fetch_token("/realms/op", &id, &secret).await;
    assert!(old.starts_with("old_"));
    server
        .admin(
            Method::PATCH,
            "/admin/v1/realms/op",
            Some(json!({"token_prefix": "new_"})),
        )
        .await
        .expect_status(200);
    let new = server.fetch_token("/realms/op", &id, &secret).await;
    assert!(new.starts_with("new_"));
    server.assert_alive("/realms/op", &id, &secret, &new).await;
    // A token setting is not among docs/contract.md §4's ways to invalidate a token.
    server.assert_alive("/realms/op", &id, &secret, &old).await;
}
