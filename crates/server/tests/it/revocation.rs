//! RFC 7009 revocation: the owner's revocation kills the token, anyone else's does not.

use oauth2::{AccessToken, AuthType, StandardRevocableToken};
use serde_json::json;

use crate::harness::{Reply, TestServer, basic, plain_http};

/// A revocation answer: 200, no-store.
#[track_caller]
fn expect_revoked(reply: &Reply) {
    reply.expect_status(200);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn the_owner_revokes_with_the_oauth2_crate() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let token = server.fetch_token("", &id, &secret).await;
        let other = server.fetch_token("", &id, &secret).await;
        server.assert_alive("", &id, &secret, &token).await;
        let client = server.oauth_client("", &id, &secret, auth.clone());
        client
            .revoke_token(StandardRevocableToken::AccessToken(AccessToken::new(
                token.clone(),
            )))
            .expect("revocation URL set")
            .request_async(&|r| plain_http(server.http.clone(), r))
            .await
            .unwrap_or_else(|e| panic!("{auth:?}: {e:?}"));
        server.assert_dead("", &id, &secret, &token).await;
        // Only that token: the application's other tokens live on.
        server.assert_alive("", &id, &secret, &other).await;
        // Revoking again is still a success.
        expect_revoked(&server.revoke("", &id, &secret, &token).await);
        server.assert_dead("", &id, &secret, &token).await;
    }
}

#[tokio::test]
async fn opaque_tokens_are_revoked_too() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app("default", json!({"name": "o", "token_format": "opaque"}))
        .await;
    let token = server.fetch_token("", &id, &secret).await;
    assert!(token.starts_with("tsr_at_"));
    server.assert_alive("", &id, &secret, &token).await;
    expect_revoked(&server.revoke("", &id, &secret, &token).await);
    server.assert_dead("", &id, &secret, &token).await;
}

#[tokio::test]
async fn another_client_cannot_revoke_a_token_it_does_not_own() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let (other_id, other_secret) = server.simple_app("default").await;
    let token = server.fetch_token("", &id, &secret).await;
    let client = server.oauth_client("", &other_id, &other_secret, AuthType::BasicAuth);
    client
        .revoke_token(StandardRevocableToken::AccessToken(AccessToken::new(
            token.clone(),
        )))
        .expect("revocation URL set")
        .request_async(&|r| plain_http(server.http.clone(), r))
        .await
        .expect("answered 200");
    expect_revoked(&server.revoke("", &other_id, &other_secret, &token).await);
    server.assert_alive("", &id, &secret, &token).await;
}

#[tokio::test]
async fn revocation_of_garbage_succeeds_and_needs_client_auth() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let token = server.fetch_token("", &id, &secret).await;
    for junk in ["garbage", "tsr_at_xyz", "a.b.c", &"z".repeat(9000)] {
        expect_revoked(&server.revoke("", &id, &secret, junk).await);
    }
    let reply = server
        .post_form(
            "/oauth2/revoke",
            Some(&basic(&id, &secret)),
            &[("token", "garbage"), ("token_type_hint", "refresh_token")],
        )
        .await;
    expect_revoked(&reply);

    // No client authentication, or a wrong one: 401, and the token lives.
    let reply = server
        .post_form("/oauth2/revoke", None, &[("token", &token)])
        .await;
    reply.expect_oauth_error(401, "invalid_client");
    let reply = server.revoke("", &id, "wrong", &token).await;
    reply.expect_oauth_error(401, "invalid_client");
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic realm=")),
    );
    server.assert_alive("", &id, &secret, &token).await;

    // The token parameter is required, once.
    for body in ["", "token_type_hint=access_token", "token=a&token=b"] {
        let reply = server
            .post_raw(
                "/oauth2/revoke",
                Some(crate::harness::FORM),
                Some(&basic(&id, &secret)),
                body,
            )
            .await;
        reply.expect_oauth_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn keycloak_revocation_alias_works_per_realm() {
    let server = TestServer::start().await;
    server.create_realm(json!({"name": "kc"})).await;
    let (id, secret) = server.simple_app("kc").await;
    for path in [
        "/realms/kc/protocol/openid-connect/revoke",
        "/auth/realms/kc/protocol/openid-connect/revoke",
        "/realms/kc/oauth2/revoke",
    ] {
        let token = server.fetch_token("/realms/kc", &id, &secret).await;
        let reply = server
            .post_form(
                path,
                None,
                &[
                    ("token", &token),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ],
            )
            .await;
        expect_revoked(&reply);
        server.assert_dead("/realms/kc", &id, &secret, &token).await;
    }
    // A realm's token revoked at another realm's endpoint stays alive.
    let (did, dsecret) = server.simple_app("default").await;
    let token = server.fetch_token("/realms/kc", &id, &secret).await;
    expect_revoked(
        &server
            .post_form(
                "/protocol/openid-connect/revoke",
                Some(&basic(&did, &dsecret)),
                &[("token", &token)],
            )
            .await,
    );
    server
        .assert_alive("/realms/kc", &id, &secret, &token)
        .await;
}

/// RFC 7009 §2.1: a revoked refresh token stops working at once, with or without the
/// hint, and the access tokens of its family stop with it; a client revoking another
/// client's refresh token changes nothing.
#[tokio::test]
async fn revoking_a_refresh_token_ends_its_family_and_its_access_tokens() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app("default", json!({"name": "r", "refresh_token_ttl": 3600}))
        .await;
    let (other_id, other_secret) = server.simple_app("default").await;
    for hint in [None, Some("refresh_token"), Some("access_token")] {
        let first = server.grant(&id, &secret).await;
        let refresh = first["refresh_token"].as_str().unwrap().to_owned();
        let access = first["access_token"].as_str().unwrap().to_owned();
        // A second family of the same client lives on.
        let unrelated = server.fetch_token("", &id, &secret).await;
        // One rotation, so that the family has issued two access tokens.
        let second = server.refresh(&id, &secret, &refresh).await.expect_token();
        let refresh = second["refresh_token"].as_str().unwrap().to_owned();
        let access2 = second["access_token"].as_str().unwrap().to_owned();

        // Another client's revocation is answered 200 and changes nothing.
        expect_revoked(&server.revoke("", &other_id, &other_secret, &refresh).await);
        server.assert_alive("", &id, &secret, &access2).await;

        let mut form = vec![("token", refresh.as_str())];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint));
        }
        expect_revoked(
            &server
                .post_form("/oauth2/revoke", Some(&basic(&id, &secret)), &form)
                .await,
        );
        server
            .refresh(&id, &secret, &refresh)
            .await
            .expect_oauth_error(400, "invalid_grant");
        for token in [&access, &access2] {
            server.assert_dead("", &id, &secret, token).await;
        }
        server.assert_alive("", &id, &secret, &unrelated).await;
    }
}

/// A reused refresh token revokes its family (RFC 9700 §4.14.2), and the access tokens
/// the family issued die with it.
#[tokio::test]
async fn a_reused_refresh_token_ends_the_access_tokens_of_its_family() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app("default", json!({"name": "r", "refresh_token_ttl": 3600}))
        .await;
    let first = server.grant(&id, &secret).await;
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let second = server.refresh(&id, &secret, &refresh).await.expect_token();
    let access2 = second["access_token"].as_str().unwrap().to_owned();
    server.assert_alive("", &id, &secret, &access2).await;
    server
        .refresh(&id, &secret, &refresh)
        .await
        .expect_oauth_error(400, "invalid_grant");
    server.assert_dead("", &id, &secret, &access2).await;
    server
        .assert_dead("", &id, &secret, first["access_token"].as_str().unwrap())
        .await;
}
