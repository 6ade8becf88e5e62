//! The resource-server layer in front of an axum API (and a bare tower service): good
//! tokens pass with the caller in the request extensions; expired, revoked,
//! wrong-audience, wrong-issuer, `alg: none` and tampered ones get RFC 6750 answers.

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use tessera_client::resource::{Algorithm, BearerAuthLayer, Principal, TokenVerifier};
use tessera_client::{ClientCredentials, TokenSource};
use tower::ServiceExt;

use crate::fake_issuer::FakeIssuer;
use crate::server::TestServer;

pub fn now_s() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// `GET /reports` needs `read`, `POST /reports` needs `write`; both answer who called.
pub fn api(verifier: TokenVerifier) -> Router {
    let read = BearerAuthLayer::new(verifier.clone()).require_scopes(["read"]);
    let write = BearerAuthLayer::new(verifier).require_scopes(["write"]);
    Router::new().route(
        "/reports",
        get(whoami).layer(read).merge(post(whoami).layer(write)),
    )
}

async fn whoami(Extension(caller): Extension<Principal>) -> Json<Value> {
    Json(json!({
        "client_id": caller.client_id,
        "scopes": caller.scopes,
        "checked_by": format!("{:?}", caller.checked_by),
    }))
}

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub body: Value,
}

/// One request to `app` with `Authorization: Bearer token` (or the raw header).
pub async fn call(app: &Router, method: Method, authorization: Option<&str>) -> Answer {
    let mut request = Request::builder().method(method).uri("/reports");
    if let Some(value) = authorization {
        let value = if value.contains(' ') {
            value.to_owned()
        } else {
            format!("Bearer {value}")
        };
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        challenge,
        body,
    }
}

#[track_caller]
fn assert_refused(answer: &Answer, why: &str) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{why}: {answer:?}");
    assert_eq!(
        answer.challenge.as_deref(),
        Some("Bearer error=\"invalid_token\""),
        "{why}"
    );
}

async fn token_for(server: &TestServer, id: &str, secret: &str) -> String {
    let source = TokenSource::new().unwrap();
    let token = source
        .token(&server.request(ClientCredentials::basic(id, secret)))
        .await
        .unwrap();
    token.access_token().expose().to_owned()
}

#[tokio::test]
async fn good_tokens_reach_the_handler_with_the_caller_and_scopes_are_enforced() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(json!({"name": "reader", "scopes": ["read"]}))
        .await;
    let verifier = TokenVerifier::builder(server.issuer(), server.issuer())
        .build()
        .unwrap();
    let app = api(verifier);
    let token = token_for(&server, &id, &secret).await;

    let answer = call(&app, Method::GET, Some(&token)).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(
        answer.body,
        json!({"client_id": id, "scopes": ["read"], "checked_by": "Signature"})
    );

    let answer = call(&app, Method::POST, Some(&token)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenge.as_deref(),
        Some("Bearer error=\"insufficient_scope\", scope=\"write\"")
    );

    let answer = call(&app, Method::GET, None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenge.as_deref(), Some("Bearer"), "no error code");
    let answer = call(&app, Method::GET, Some("Basic dXNlcjpwdw==")).await;
    assert_eq!(answer.challenge.as_deref(), Some("Bearer"));
    let answer = call(&app, Method::GET, Some("Bearer two words")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    // An opaque token with no introspection configured cannot be good.
    assert_refused(
        &call(&app, Method::GET, Some("tsr_at_whatever")).await,
        "opaque",
    );
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(json!({"name": "brief", "scopes": ["read"], "token_ttl": 1}))
        .await;
    let app = api(TokenVerifier::builder(server.issuer(), server.issuer())
        .build()
        .unwrap());
    let token = token_for(&server, &id, &secret).await;
    // `exp` is rounded up to a whole second, so a 1 s token may carry exp = iat + 2.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_refused(&call(&app, Method::GET, Some(&token)).await, "expired");
}

#[tokio::test]
async fn revoked_tokens_are_refused_once_the_revocation_delay_has_passed() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(json!({"name": "opaque", "scopes": ["read"], "token_format": "opaque"}))
        .await;
    let delay = Duration::from_millis(1000);
    let verifier = TokenVerifier::builder(server.issuer(), server.issuer())
        .introspection(ClientCredentials::basic(&id, &*secret))
        .revocation_delay(delay)
        .build()
        .unwrap();
    let app = api(verifier);
    let token = token_for(&server, &id, &secret).await;
    assert!(token.starts_with("tsr_at_"), "an opaque token");

    let active = "tessera_introspections_total{active=\"true\"} ";
    let before = server.metric(active).await;
    let answer = call(&app, Method::GET, Some(&token)).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body["checked_by"], "Introspection");
    assert_eq!(
        call(&app, Method::GET, Some(&token)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.metric(active).await - before,
        1,
        "the answer was cached"
    );

    server.revoke(&id, &secret, &token).await;
    tokio::time::sleep(delay + Duration::from_millis(100)).await;
    assert_refused(
        &call(&app, Method::GET, Some(&token)).await,
        "revoked opaque",
    );

    // A JWT is refused after revocation too when JWTs are introspected as well.
    let (jwt_id, jwt_secret) = server
        .create_app(json!({"name": "jwt", "scopes": ["read"]}))
        .await;
    let app = api(TokenVerifier::builder(server.issuer(), server.issuer())
        .introspection(ClientCredentials::basic(&jwt_id, &*jwt_secret))
        .introspect_jwts(true)
        .revocation_delay(Duration::ZERO)
        .build()
        .unwrap());
    let jwt = token_for(&server, &jwt_id, &jwt_secret).await;
    assert_eq!(
        call(&app, Method::GET, Some(&jwt)).await.status,
        StatusCode::OK
    );
    server.revoke(&jwt_id, &jwt_secret, &jwt).await;
    assert_refused(&call(&app, Method::GET, Some(&jwt)).await, "revoked JWT");
}

#[tokio::test]
async fn tokens_for_another_audience_or_from_another_issuer_are_refused() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(json!({"name": "billing-client", "scopes": ["read"],
                           "audiences": ["https://billing.example"]}))
        .await;
    let token = token_for(&server, &id, &secret).await;
    let ours = api(TokenVerifier::builder(server.issuer(), server.issuer())
        .build()
        .unwrap());
    assert_refused(
        &call(&ours, Method::GET, Some(&token)).await,
        "wrong audience",
    );
    let billing = api(
        TokenVerifier::builder(server.issuer(), "https://billing.example")
            .build()
            .unwrap(),
    );
    assert_eq!(
        call(&billing, Method::GET, Some(&token)).await.status,
        StatusCode::OK
    );

    // Another realm is another issuer, with keys of its own.
    server.create_realm("second").await;
    let (other_id, other_secret) = server
        .create_app_in("second", json!({"name": "x", "scopes": ["read"]}))
        .await;
    let source = TokenSource::new().unwrap();
    let second_token_url = format!("{}/realms/second/oauth2/token", server.base);
    let other = source
        .token(
            &tessera_client::TokenRequest::parse(
                &second_token_url,
                ClientCredentials::basic(&other_id, &*other_secret),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_refused(
        &call(&ours, Method::GET, Some(other.access_token().expose())).await,
        "other realm",
    );
    // And its own verifier (found through the path-inserted metadata) accepts it.
    let second_issuer = format!("{}/realms/second", server.issuer());
    let second = api(TokenVerifier::builder(&second_issuer, &second_issuer)
        .build()
        .unwrap());
    assert_eq!(
        call(&second, Method::GET, Some(other.access_token().expose()))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn alg_none_hmac_and_tampered_tokens_are_refused() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(json!({"name": "t", "scopes": ["read", "write"]}))
        .await;
    let app = api(TokenVerifier::builder(server.issuer(), server.issuer())
        .build()
        .unwrap());
    let token = token_for(&server, &id, &secret).await;
    assert_eq!(
        call(&app, Method::GET, Some(&token)).await.status,
        StatusCode::OK
    );
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();

    let mut none_header = header.clone();
    none_header["alg"] = "none".into();
    let none = format!("{}.{}.", B64.encode(none_header.to_string()), parts[1]);
    assert_refused(&call(&app, Method::GET, Some(&none)).await, "alg none");

    claims["client_id"] = "someone-else".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(claims.to_string()),
        parts[2]
    );
    assert_refused(
        &call(&app, Method::GET, Some(&tampered)).await,
        "tampered claims",
    );

    let mut signature = B64.decode(parts[2]).unwrap();
    signature[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], B64.encode(&signature));
    assert_refused(
        &call(&app, Method::GET, Some(&flipped)).await,
        "flipped signature",
    );

    // HS256 "signed" with the issuer's public JWKS as the secret.
    let jwks = server
        .http
        .get(format!("{}/.well-known/jwks.json", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut hs_header = header;
    hs_header["alg"] = "HS256".into();
    let input = format!("{}.{}", B64.encode(hs_header.to_string()), parts[1]);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, jwks.as_bytes());
    let mac = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    let hs = format!("{input}.{}", B64.encode(mac.as_ref()));
    assert_refused(&call(&app, Method::GET, Some(&hs)).await, "HS256 confusion");
}

#[tokio::test]
async fn algorithms_are_pinned() {
    let server = TestServer::start().await;
    let response = server
        .http
        .post(format!("{}/admin/v1/realms", server.admin_base))
        .bearer_auth(crate::server::ADMIN_KEY)
        .json(&json!({"name": "legacy", "signing_alg": "RS256"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (id, secret) = server
        .create_app_in("legacy", json!({"name": "r", "scopes": ["read"]}))
        .await;
    let url = format!("{}/realms/legacy/oauth2/token", server.base);
    let token = TokenSource::new()
        .unwrap()
        .token(
            &tessera_client::TokenRequest::parse(&url, ClientCredentials::basic(id, secret))
                .unwrap(),
        )
        .await
        .unwrap();
    let token = token.access_token().expose();
    let issuer = format!("{}/realms/legacy", server.issuer());
    let es256_only = api(TokenVerifier::builder(&issuer, &issuer).build().unwrap());
    assert_refused(
        &call(&es256_only, Method::GET, Some(token)).await,
        "RS256 not pinned",
    );
    let rs256 = api(TokenVerifier::builder(&issuer, &issuer)
        .algorithms([Algorithm::RS256])
        .build()
        .unwrap());
    assert_eq!(
        call(&rs256, Method::GET, Some(token)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn correctly_signed_tokens_are_still_checked_for_issuer_audience_time_and_type() {
    let fake = FakeIssuer::start().await;
    let verifier = |b: tessera_client::resource::TokenVerifierBuilder| b.build().unwrap();
    let app = api(verifier(TokenVerifier::builder(&fake.issuer, "api")));
    let good = fake.claims("api");
    assert_eq!(
        call(&app, Method::GET, Some(&fake.sign("k1", "at+jwt", &good)))
            .await
            .status,
        StatusCode::OK
    );
    let with = |key: &str, value: Value| {
        let mut claims = good.clone();
        claims[key] = value;
        claims
    };
    let now = now_s();
    for (why, claims) in [
        ("wrong issuer", with("iss", "http://evil.example".into())),
        ("wrong audience", with("aud", json!(["other-api"]))),
        ("expired", with("exp", (now - 5).into())),
        ("not yet valid", with("nbf", (now + 120).into())),
        ("no client_id", {
            let mut c = good.clone();
            c.as_object_mut().unwrap().remove("client_id");
            c
        }),
    ] {
        let token = fake.sign("k1", "at+jwt", &claims);
        assert_refused(&call(&app, Method::GET, Some(&token)).await, why);
    }
    // RFC 9068 §4: a JWT that is not typed as an access token is refused, unless the
    // API says it trusts the issuer to send no other JWTs.
    let plain = fake.sign("k1", "JWT", &good);
    assert_refused(&call(&app, Method::GET, Some(&plain)).await, "typ JWT");
    let lenient = api(verifier(
        TokenVerifier::builder(&fake.issuer, "api").accept_any_jwt_typ(),
    ));
    assert_eq!(
        call(&lenient, Method::GET, Some(&plain)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_key_ids_fetch_the_jwks_again_at_most_once_per_interval() {
    let fake = FakeIssuer::start().await;
    let app = api(TokenVerifier::builder(&fake.issuer, "api")
        .jwks_refetch_interval(Duration::from_millis(600))
        .build()
        .unwrap());
    let good = fake.claims("api");
    let ok = call(&app, Method::GET, Some(&fake.sign("k1", "at+jwt", &good))).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(fake.fetches(), 1);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    for n in 0..5 {
        let forged = fake.sign(&format!("made-up-{n}"), "at+jwt", &good);
        assert_refused(&call(&app, Method::GET, Some(&forged)).await, "unknown kid");
    }
    assert_eq!(fake.fetches(), 2, "one refetch for five unknown kids");

    // A rotation inside the interval is seen once the interval has passed.
    fake.add_key("k2");
    let rotated = fake.sign("k2", "at+jwt", &good);
    assert_refused(&call(&app, Method::GET, Some(&rotated)).await, "too soon");
    assert_eq!(fake.fetches(), 2);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        call(&app, Method::GET, Some(&rotated)).await.status,
        StatusCode::OK
    );
    assert_eq!(fake.fetches(), 3);
}

#[tokio::test]
async fn the_layer_also_wraps_a_bare_tower_service() {
    let fake = FakeIssuer::start().await;
    let verifier = TokenVerifier::builder(&fake.issuer, "api").build().unwrap();
    let service = tower::ServiceBuilder::new()
        .layer(BearerAuthLayer::new(verifier))
        .service_fn(|request: http::Request<String>| async move {
            let caller = request.extensions().get::<Principal>().unwrap();
            Ok::<_, Infallible>(http::Response::new(format!("hello {}", caller.client_id)))
        });
    let token = fake.sign("k1", "at+jwt", &fake.claims("api"));
    let request = http::Request::builder()
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), "hello svc");
    let refused = service
        .oneshot(http::Request::new(String::new()))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body(), "");
}
