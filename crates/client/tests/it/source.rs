//! The token source: every auth style against the real server, one request for many
//! waiters, refresh ahead of expiry, and which failures are retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::json;
use tessera_client::{
    AuthStyle, ClientCredentials, RetryPolicy, Secret, TokenRequest, TokenSource,
};

use crate::server::{TestKey, TestServer};

#[tokio::test]
async fn every_auth_style_gets_a_token_the_server_accepts() {
    let server = TestServer::start().await;
    let source = TokenSource::new().unwrap();
    let (id, secret) = server
        .create_app(json!({"name": "secret", "scopes": ["read", "write"]}))
        .await;
    for style in [AuthStyle::Basic, AuthStyle::Post, AuthStyle::Json] {
        let credentials =
            ClientCredentials::new(&id, style, Some(Secret::new(&*secret)), None).unwrap();
        let request = server.request(credentials);
        // Each style asks for its own scope, so each is a token of its own.
        let request = match style {
            AuthStyle::Basic => request.scope("read"),
            AuthStyle::Post => request.scope("write"),
            _ => request.scope("read write"),
        };
        let token = source.token(&request).await.unwrap();
        assert_eq!(
            server
                .verify(token.access_token().expose())
                .await
                .as_deref(),
            Some(id.as_str()),
            "{style}"
        );
    }

    let rsa = TestKey::rsa();
    let (d1_id, d1_secret) = server
        .create_app(json!({"name": "d1", "auth_methods": ["signed_credential"],
                           "public_key": rsa.public_pem}))
        .await;
    let credentials = ClientCredentials::new(
        &d1_id,
        AuthStyle::SignedCredential,
        Some(d1_secret.into()),
        Some(rsa.private_key()),
    )
    .unwrap();
    let token = source.token(&server.request(credentials)).await.unwrap();
    assert_eq!(token.expires_in(), Some(3600));
    assert_eq!(
        server
            .verify(token.access_token().expose())
            .await
            .as_deref(),
        Some(d1_id.as_str())
    );

    for (name, key) in [
        ("rs256", TestKey::rsa()),
        ("es256", TestKey::p256()),
        ("eddsa", TestKey::ed25519()),
    ] {
        let (jwt_id, _) = server
            .create_app(json!({"name": name, "auth_methods": ["private_key_jwt"],
                               "public_key": key.public_pem}))
            .await;
        let credentials = ClientCredentials::private_key_jwt(&jwt_id, key.private_key());
        let token = source.token(&server.request(credentials)).await.unwrap();
        assert_eq!(
            server
                .verify(token.access_token().expose())
                .await
                .as_deref(),
            Some(jwt_id.as_str()),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_waiting_tasks_cause_one_token_request() {
    let server = TestServer::start().await;
    let (id, secret) = server.create_app(json!({"name": "busy"})).await;
    let source = TokenSource::new().unwrap();
    let request = server.request(ClientCredentials::basic(&id, secret));
    let before = server.tokens_issued().await;
    let start = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (source, request, start) = (source.clone(), request.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                source.token(&request).await.unwrap()
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap());
    }
    assert!(tokens.windows(2).all(|w| w[0] == w[1]), "one shared token");
    assert_eq!(server.tokens_issued().await - before, 1);
    // And later callers keep getting it without asking again.
    assert_eq!(source.token(&request).await.unwrap(), tokens[0]);
    assert_eq!(server.tokens_issued().await - before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lived_token_is_replaced_before_it_expires() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(json!({"name": "short", "token_ttl": 6}))
        .await;
    let source = TokenSource::new().unwrap();
    let request = server.request(ClientCredentials::basic(&id, secret));
    let before = server.tokens_issued().await;
    let started = Instant::now();
    let first = source.token(&request).await.unwrap();
    assert_eq!(first.expires_in(), Some(6));

    // Before 75% of its life: the held token, no request.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(source.token(&request).await.unwrap(), first);
    assert_eq!(server.tokens_issued().await - before, 1);

    // Past 80% (4.8 s) but still usable (until 5.4 s): the caller gets the held token
    // at once, and a refresh starts behind it.
    tokio::time::sleep_until((started + Duration::from_millis(4900)).into()).await;
    assert_eq!(source.token(&request).await.unwrap(), first, "no waiting");
    let fresh = loop {
        let token = source.token(&request).await.unwrap();
        if token != first {
            break token;
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "no refresh in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "refreshed before the first token expired"
    );
    assert_eq!(server.tokens_issued().await - before, 2);
    assert!(server.verify(fresh.access_token().expose()).await.is_some());
}

#[tokio::test]
async fn invalid_client_is_never_retried() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(json!({"name": "wrong", "scopes": ["read"]}))
        .await;
    let source = TokenSource::builder()
        .retry_policy(RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        })
        .build()
        .unwrap();
    let series = "tessera_token_errors_total{error=\"invalid_client\"} ";
    let before = server.metric(series).await;
    let err = source
        .token(&server.request(ClientCredentials::basic(&id, "not-the-secret")))
        .await
        .unwrap_err();
    assert_eq!(err.oauth_code(), Some("invalid_client"));
    assert!(!err.to_string().contains("not-the-secret"));
    assert_eq!(
        server.metric(series).await - before,
        1,
        "exactly one request"
    );

    // Other refusals are not retried either, and say what was wrong.
    let scope = source
        .token(
            &server
                .request(ClientCredentials::basic(&id, secret))
                .scope("admin"),
        )
        .await
        .unwrap_err();
    assert_eq!(scope.oauth_code(), Some("invalid_scope"));
    assert!(scope.to_string().contains("scope"), "{scope}");
}

/// A token endpoint that fails `failures` times with 503 `temporarily_unavailable`,
/// then issues a token; it counts the requests.
async fn flaky_endpoint(failures: usize) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = Router::new().route(
        "/token",
        post(move || {
            let seen = seen.clone();
            async move {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                if n < failures {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(json!({"error": "temporarily_unavailable"})),
                    )
                } else {
                    (
                        StatusCode::OK,
                        axum::Json(json!({"access_token": format!("t{n}"), "expires_in": 60})),
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff_then_given_up() {
    let retry = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    };
    let source = TokenSource::builder().retry_policy(retry).build().unwrap();

    let (url, count) = flaky_endpoint(2).await;
    let request = TokenRequest::parse(&url, ClientCredentials::basic("a", "b")).unwrap();
    let started = Instant::now();
    let token = source.token(&request).await.unwrap();
    assert_eq!(token.access_token().expose(), "t2");
    assert_eq!(count.load(Ordering::SeqCst), 3);
    // Backoff: at least 10 ms then 20 ms (half of 20 and 40, the rest random).
    assert!(started.elapsed() >= Duration::from_millis(30));

    let (url, count) = flaky_endpoint(usize::MAX).await;
    let request = TokenRequest::parse(&url, ClientCredentials::basic("a", "b")).unwrap();
    let err = source.token(&request).await.unwrap_err();
    assert_eq!(err.oauth_code(), Some("temporarily_unavailable"));
    assert_eq!(count.load(Ordering::SeqCst), 4, "max_attempts requests");

    // Nobody listening: a transport error, retried, then reported.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", closed.local_addr().unwrap());
    drop(closed);
    let request = TokenRequest::parse(&url, ClientCredentials::basic("a", "b")).unwrap();
    let err = source.token(&request).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
}

/// The signed credential is the same block `openssl rsautl -sign` makes (PKCS#1 v1.5
/// type-1 padding is deterministic), from a PKCS#1 key file as openssl writes it.
#[test]
fn signed_credentials_are_what_openssl_rsautl_makes() {
    let dir = tempfile::tempdir().unwrap();
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    openssl(&["genrsa", "-traditional", "-out", "key.pem", "2048"]);
    let message = b"client-1:s3cret:1700000000000";
    std::fs::write(dir.path().join("msg"), message).unwrap();
    openssl(&[
        "rsautl", "-sign", "-inkey", "key.pem", "-in", "msg", "-out", "sig",
    ]);
    let pem = std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let key = tessera_client::PrivateKey::from_pem(&pem).unwrap();
    let ours = key.rsa_private_encrypt(message).unwrap();
    assert_eq!(ours, std::fs::read(dir.path().join("sig")).unwrap());
}
