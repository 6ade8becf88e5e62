//! Failed-authentication limits: an honest burst is still 401; past a limit, 429 with
//! `Retry-After` and an RFC 6749 body, released after the window; a correct credential
//! is never refused because of someone else's failures.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::harness::{ADMIN_KEY, Reply, TestServer, basic};

/// A client whose requests come from `from` (any 127.x address).
fn client_from(from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(from))
        .build()
        .unwrap()
}

async fn token_from(
    server: &TestServer,
    client: &reqwest::Client,
    id: &str,
    secret: &str,
    forwarded_for: Option<&str>,
) -> Reply {
    let mut request = client
        .post(server.url("/oauth2/token"))
        .header("authorization", basic(id, secret))
        .form(&[("grant_type", "client_credentials")]);
    if let Some(hop) = forwarded_for {
        request = request.header("x-forwarded-for", hop);
    }
    server.send(request).await
}

/// 429, `Retry-After`, and the RFC 6749 error body.
#[track_caller]
fn expect_limited(reply: &Reply) -> u64 {
    let body: Value = reply.expect_oauth_error(429, "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("retry after")
    );
    reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds")
}

#[tokio::test]
async fn an_honest_burst_of_failures_is_still_answered_401() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let client = client_from([127, 0, 0, 1]);
    // ~100 failures in a minute from one address, across a few dozen client ids...
    for i in 0..100 {
        let reply = token_from(
            &server,
            &client,
            &format!("client-{}", i % 30),
            "wrong",
            None,
        )
        .await;
        reply.expect_oauth_error(401, "invalid_client");
    }
    // ...and ~20 for one client id.
    for _ in 0..20 {
        token_from(&server, &client, &id, "wrong", None)
            .await
            .expect_oauth_error(401, "invalid_client");
    }
    token_from(&server, &client, &id, &secret, None)
        .await
        .expect_token();
}

#[tokio::test]
async fn an_address_that_fails_too_often_is_refused_until_the_window_passes() {
    let server = TestServer::start_with(|c| {
        c.failed_auth_per_address = 60;
        c.failed_auth_per_client = 0;
    })
    .await;
    let (id, secret) = server.simple_app("default").await;
    let guesser = client_from([127, 0, 0, 2]);
    for i in 0..60 {
        token_from(&server, &guesser, &format!("guess-{i}"), "x", None)
            .await
            .expect_oauth_error(401, "invalid_client");
    }
    let retry_after = expect_limited(&token_from(&server, &guesser, "guess-x", "x", None).await);
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // From that address even a correct secret waits: the address is what is limited.
    expect_limited(&token_from(&server, &guesser, &id, &secret, None).await);
    // Introspection and revocation are behind the same limit.
    for path in ["/oauth2/introspect", "/oauth2/revoke"] {
        let reply = server
            .send(
                guesser
                    .post(server.url(path))
                    .header("authorization", basic(&id, "wrong"))
                    .form(&[("token", "t")]),
            )
            .await;
        expect_limited(&reply);
    }
    // Everyone else is served.
    let honest = client_from([127, 0, 0, 3]);
    token_from(&server, &honest, &id, &secret, None)
        .await
        .expect_token();
    // After the window (one failure's worth: a second), the address may try again.
    tokio::time::sleep(Duration::from_millis(1100 * retry_after)).await;
    token_from(&server, &guesser, &id, &secret, None)
        .await
        .expect_token();
    let metrics = server.get("/metrics").await.text();
    let limited = metrics
        .lines()
        .find(|l| l.starts_with("tessera_auth_limited_total{listener=\"public\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap();
    assert!(limited >= 4, "{metrics}");
}

/// Guessing one client's secret gets 429 for the guesses, but the real owner's correct
/// secret is still served, from anywhere; and a flood of random client ids changes
/// nothing for anyone.
#[tokio::test]
async fn a_client_id_under_attack_still_serves_its_owner() {
    let server = TestServer::start_with(|c| {
        c.failed_auth_per_address = 0;
        c.failed_auth_per_client = 5;
    })
    .await;
    let (id, secret) = server.simple_app("default").await;
    let (other, other_secret) = server.simple_app("default").await;
    let attacker = client_from([127, 0, 0, 4]);
    for _ in 0..5 {
        token_from(&server, &attacker, &id, "guess", None)
            .await
            .expect_oauth_error(401, "invalid_client");
    }
    expect_limited(&token_from(&server, &attacker, &id, "guess", None).await);
    // The owner, from the attacker's address or its own, gets tokens.
    token_from(&server, &attacker, &id, &secret, None)
        .await
        .expect_token();
    token_from(&server, &client_from([127, 0, 0, 5]), &id, &secret, None)
        .await
        .expect_token();
    // Another client id is untouched.
    token_from(&server, &attacker, &other, "wrong", None)
        .await
        .expect_oauth_error(401, "invalid_client");
    // Random client ids by the thousand: the right secret still works at once.
    for i in 0..2000 {
        token_from(&server, &attacker, &format!("random-{i}"), "x", None).await;
    }
    token_from(&server, &attacker, &other, &other_secret, None)
        .await
        .expect_token();
}

/// Behind a trusted proxy, the client's address is the one the proxy names; from
/// anyone else, `X-Forwarded-For` is ignored.
#[tokio::test]
async fn a_trusted_proxy_names_the_address_that_is_limited() {
    let server = TestServer::start_with(|c| {
        c.failed_auth_per_address = 5;
        c.failed_auth_per_client = 0;
        c.trusted_proxies = vec![tessera_server::limiter::IpNet::parse("127.0.0.6").unwrap()];
    })
    .await;
    let (id, secret) = server.simple_app("default").await;
    let proxy = client_from([127, 0, 0, 6]);
    for _ in 0..5 {
        token_from(&server, &proxy, &id, "x", Some("203.0.113.5"))
            .await
            .expect_oauth_error(401, "invalid_client");
    }
    expect_limited(&token_from(&server, &proxy, &id, &secret, Some("203.0.113.5")).await);
    // Another client behind the same proxy is served.
    token_from(&server, &proxy, &id, &secret, Some("203.0.113.6"))
        .await
        .expect_token();
    // An untrusted peer cannot pick its address: its own is limited.
    let stranger = client_from([127, 0, 0, 7]);
    for i in 0..5 {
        token_from(
            &server,
            &stranger,
            &id,
            "x",
            Some(&format!("198.51.100.{i}")),
        )
        .await
        .expect_oauth_error(401, "invalid_client");
    }
    expect_limited(&token_from(&server, &stranger, &id, &secret, Some("198.51.100.99")).await);
}

#[tokio::test]
async fn wrong_admin_keys_are_limited_on_the_api_and_the_dashboard_sign_in() {
    let server = TestServer::start_with(|c| c.failed_admin_auth_per_address = 5).await;
    let guesser = client_from([127, 0, 0, 8]);
    let realms = server.admin_url("/admin/v1/realms");
    for _ in 0..5 {
        let reply = server
            .send(guesser.get(&realms).bearer_auth("wrong-admin-key-123456"))
            .await;
        reply.expect_admin_error(401, "unauthorized");
    }
    let reply = server
        .send(guesser.get(&realms).bearer_auth("wrong-admin-key-123456"))
        .await;
    reply.expect_admin_error(429, "too_many_requests");
    assert!(reply.header("retry-after").is_some());
    // The dashboard's sign-in shares the limit: a page saying so, with Retry-After.
    let page = server.send(guesser.get(server.admin_url("/sign-in"))).await;
    page.expect_status(200);
    let reply = server
        .send(
            guesser
                .post(server.admin_url("/sign-in"))
                .form(&[("admin_key", ADMIN_KEY), ("csrf", "x")]),
        )
        .await;
    reply.expect_status(429);
    assert!(reply.text().contains("Too many wrong admin keys"));
    assert!(reply.header("retry-after").is_some());
    // Another address holding the key is served.
    server
        .admin(Method::GET, "/admin/v1/realms", None)
        .await
        .expect_status(200);
}

/// Requests that present no credentials at all (a browser's `/favicon.ico` on the admin
/// listener, a token request without client authentication) are refused but are no
/// guesses: they never count toward a limit.
#[tokio::test]
async fn requests_without_credentials_never_count_as_failures() {
    let server = TestServer::start_with(|c| {
        c.failed_admin_auth_per_address = 3;
        c.failed_auth_per_address = 3;
    })
    .await;
    for _ in 0..20 {
        let reply = server
            .send(server.http.get(server.admin_url("/favicon.ico")))
            .await;
        assert_eq!(reply.status, 401);
        server
            .post_form(
                "/oauth2/token",
                None,
                &[("grant_type", "client_credentials")],
            )
            .await
            .expect_oauth_error(401, "invalid_client");
    }
    server
        .admin(Method::GET, "/admin/v1/realms", None)
        .await
        .expect_status(200);
    let (id, secret) = server.simple_app("default").await;
    server.grant(&id, &secret).await;
}
