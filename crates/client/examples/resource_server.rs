//! An API protected by Tessera tokens: an axum router behind `BearerAuthLayer`.
//!
//! With a Tessera server on 127.0.0.1:8080 (`tessera serve`) and an application with
//! scopes `read write`:
//!
//! ```text
//! cargo run -p tessera-client --example resource_server
//! TOKEN=$(tessera token --token-url http://127.0.0.1:8080/oauth2/token \
//!     --client-id ID --client-secret SECRET --scope read)
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/reports   # 200
//! curl -X POST -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/reports   # 403
//! curl -i http://127.0.0.1:3000/reports                                   # 401
//! ```
//!
//! Settings (environment): `TESSERA_ISSUER` (default `http://127.0.0.1:8080`),
//! `API_AUDIENCE` (default: the issuer, which is what Tessera puts in `aud` for an
//! application without audiences), `API_LISTEN` (default `127.0.0.1:3000`), and for
//! opaque tokens the introspecting client `TESSERA_CLIENT_ID` / `TESSERA_CLIENT_SECRET`.

use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tessera_client::resource::{Algorithm, BearerAuthLayer, Principal, TokenVerifier};
use tessera_client::{ClientCredentials, Secret};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let issuer = env("TESSERA_ISSUER").unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let audience = env("API_AUDIENCE").unwrap_or_else(|| issuer.clone());
    let listen = env("API_LISTEN").unwrap_or_else(|| "127.0.0.1:3000".to_owned());

    let mut verifier = TokenVerifier::builder(&issuer, audience).algorithms([
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::EdDSA,
    ]);
    if let (Some(id), Some(secret)) = (env("TESSERA_CLIENT_ID"), env("TESSERA_CLIENT_SECRET")) {
        verifier = verifier.introspection(ClientCredentials::basic(id, Secret::new(secret)));
    }
    let app = router(verifier.build()?);

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("API on http://{listen}, trusting tokens of {issuer}");
    axum::serve(listener, app).await?;
    Ok(())
}

/// `GET /reports` needs scope `read`, `POST /reports` needs `write`, `/health` nothing.
fn router(verifier: TokenVerifier) -> Router {
    let read = BearerAuthLayer::new(verifier.clone()).require_scopes(["read"]);
    let write = BearerAuthLayer::new(verifier).require_scopes(["write"]);
    Router::new()
        .route(
            "/reports",
            get(list_reports)
                .layer(read)
                .merge(post(create_report).layer(write)),
        )
        .route("/health", get(|| async { "ok" }))
}

async fn list_reports(Extension(caller): Extension<Principal>) -> Json<Value> {
    Json(json!({
        "client_id": caller.client_id,
        "scopes": caller.scopes,
        "reports": ["q1", "q2"],
    }))
}

async fn create_report(Extension(caller): Extension<Principal>) -> Json<Value> {
    Json(json!({"created_by": caller.client_id}))
}
