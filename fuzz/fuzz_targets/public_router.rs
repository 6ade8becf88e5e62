//! The whole public router (every endpoint, every realm path, errors, fallbacks) with
//! whatever a client sends: no answer is a 5xx, and every error is a JSON body.
//!
//! Input: `method \0 path \0 content-type \0 authorization \0 host \0 body`. A one-byte
//! path field picks one of `PATHS`; a one-byte authorization field picks Basic for
//! `basic` (0), or the Bearer token of `default` (1) or `op` (2). In the body, `$CLIENT`,
//! `$SECRET`, `$TOKEN` and `$OPAQUE` stand for `basic`'s id and secret and those tokens.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use tessera_fuzz::{Fixture, fields, fixture};
use tessera_server::limiter::AuthGuard;
use tessera_server::metrics::Metrics;
use tessera_server::public::{PublicState, router};
use tower::ServiceExt;

const METHODS: [Method; 8] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::PATCH,
    Method::POST,
];

const PATHS: [&str; 12] = [
    "/oauth2/token",
    "/realms/default/oauth2/token",
    "/oauth2/introspect",
    "/oauth2/revoke",
    "/protocol/openid-connect/token",
    "/verify",
    "/.well-known/openid-configuration",
    "/realms/op/oauth2/introspect",
    "/auth/realms/ed/protocol/openid-connect/certs",
    "/.well-known/oauth-authorization-server/realms/rs",
    "/realms/op/protocol/openid-connect/revoke",
    "/healthz",
];

/// The public router, its failed-authentication limits off: the fuzzer fails all the
/// time, and a 429 for everything would hide the endpoints behind it.
fn app(fx: &Fixture) -> Router {
    static APP: OnceLock<Router> = OnceLock::new();
    APP.get_or_init(|| {
        let metrics = Arc::new(Metrics::default());
        router(Arc::new(PublicState {
            authority: fx.authority.clone(),
            metrics: metrics.clone(),
            body_limit: 16 * 1024,
            guard: Arc::new(AuthGuard::new(false, 0, 0, Vec::new(), metrics)),
        }))
    })
    .clone()
}

fn token_of<'a>(fx: &'a Fixture, realm: &str) -> &'a str {
    fx.tokens
        .iter()
        .find(|(r, _)| *r == realm)
        .map_or("", |(_, t)| t.as_str())
}

fn replace(haystack: &[u8], needle: &str, with: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(needle.as_bytes()) {
            out.extend_from_slice(with.as_bytes());
            rest = &rest[needle.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let basic = fx.client("basic");
    let parts = fields(data, 6);
    let method = METHODS[usize::from(parts[0].first().copied().unwrap_or(0) % 8)].clone();
    let path: Vec<u8> = match parts[1] {
        [i] if usize::from(*i) < PATHS.len() => PATHS[usize::from(*i)].as_bytes().to_vec(),
        raw => raw.to_vec(),
    };
    let Ok(mut request) = Request::builder()
        .method(method.clone())
        .uri(path.as_slice())
        .body(())
    else {
        return;
    };
    let headers = request.headers_mut();
    if !parts[2].is_empty()
        && let Ok(value) = HeaderValue::from_bytes(parts[2])
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    let authorization: Vec<u8> = match parts[3] {
        [] => Vec::new(),
        [0] => format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", basic.client_id, basic.secret))
        )
        .into_bytes(),
        [1] => format!("Bearer {}", token_of(fx, "default")).into_bytes(),
        [2] => format!("Bearer {}", token_of(fx, "op")).into_bytes(),
        raw => raw.to_vec(),
    };
    if !authorization.is_empty()
        && let Ok(value) = HeaderValue::from_bytes(&authorization)
    {
        headers.insert(header::AUTHORIZATION, value);
    }
    if !parts[4].is_empty()
        && let Ok(value) = HeaderValue::from_bytes(parts[4])
    {
        headers.insert(header::HOST, value);
    }
    let mut body = parts[5].to_vec();
    if body.contains(&b'$') {
        body = replace(&body, "$CLIENT", &basic.client_id);
        body = replace(&body, "$SECRET", &basic.secret);
        body = replace(&body, "$TOKEN", token_of(fx, "default"));
        body = replace(&body, "$OPAQUE", token_of(fx, "op"));
    }
    let request = request.map(|()| Body::from(body));

    let (status, content_type, bytes) = fx.block_on(async {
        let response = app(fx)
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("the answer is read");
        (status, content_type, bytes)
    });
    assert!(
        !status.is_server_error(),
        "{method} {} answered {status}: {}",
        String::from_utf8_lossy(&path),
        String::from_utf8_lossy(&bytes)
    );
    // `/verify` answers a plain 401 for a reverse proxy (docs/contract.md).
    let verify = std::str::from_utf8(&path)
        .is_ok_and(|p| p.split('?').next().is_some_and(|p| p.ends_with("/verify")));
    if status.is_client_error() && method != Method::HEAD && !(verify && status == 401) {
        assert!(
            content_type.is_some_and(|ct| ct.as_bytes().starts_with(b"application/json")),
            "{method} {} answered {status} without JSON",
            String::from_utf8_lossy(&path)
        );
        assert!(
            serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
            "{status} {}",
            String::from_utf8_lossy(&bytes)
        );
    }
});
