//! The dashboard at `/` of the admin listener: what the admin API does, for a person.
//!
//! Server-rendered HTML that works without JavaScript. Every change to realms and
//! applications goes through [`operations`](crate::operations), like the admin API and
//! the CLI, and the audit log names the session that made it; statuses come from
//! `errors.rs`, the words are the dashboard's own. A person signs in with the admin key
//! and gets a session cookie (HttpOnly, SameSite=Strict, Secure behind TLS); every form
//! carries a token bound to the session, checked before anything else is read.
//!
//! This file only routes. What every page stands on is in `site.rs`; the handlers are
//! in `sign_in.rs`, `realms.rs` and `applications.rs`, the markup in `pages.rs`. None of
//! them imports this module.

// Handlers return the page that says why not as `Err(Response)`: one per request, at
// most, so its size is no cost worth a box.
#![allow(clippy::result_large_err)]

mod applications;
mod form;
mod pages;
mod realms;
mod session;
mod sign_in;
mod site;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::admin_state::AdminState;
use session::Sessions;
use site::Dashboard;

/// For the fuzz target of the sign-in form's `next`.
#[cfg(feature = "fuzzing")]
pub use sign_in::local_path;

pub fn router(admin: Arc<AdminState>) -> Router {
    // Bound to the admin key as well as the master key: a new admin key ends every session.
    let mac = admin.authority.mac_key(&format!(
        "tessera dashboard sessions v1 {}",
        admin.admin_key.expose()
    ));
    let state = Arc::new(Dashboard {
        admin,
        sessions: Sessions::new(mac),
    });
    Router::new()
        .route("/", get(realms::home))
        .route(
            "/sign-in",
            get(sign_in::sign_in_page).post(sign_in::sign_in),
        )
        .route("/sign-out", post(sign_in::sign_out))
        .route("/sign-out-everywhere", post(sign_in::sign_out_everywhere))
        .route("/assets/dashboard.css", get(css))
        .route("/assets/dashboard.js", get(script))
        .route("/realms", get(realms::to_home).post(realms::create_realm))
        .route("/realms/{realm}", get(applications::realm_page))
        .route(
            "/realms/{realm}/new",
            get(applications::new_app_page).post(applications::create_app),
        )
        .route(
            "/realms/{realm}/apps/{client_id}",
            get(applications::app_page).post(applications::save_app),
        )
        .route(
            "/realms/{realm}/apps/{client_id}/token",
            post(applications::issue_token),
        )
        .route(
            "/realms/{realm}/apps/{client_id}/secret",
            post(applications::rotate_secret),
        )
        .route(
            "/realms/{realm}/apps/{client_id}/revoke",
            post(applications::revoke_tokens),
        )
        .route(
            "/realms/{realm}/apps/{client_id}/delete",
            get(applications::delete_page).post(applications::delete_app),
        )
        .layer(map_response(protect))
        .with_state(state)
}

/// Pages show secrets and act on forms: never cached, never framed, scripts only from
/// ourselves.
async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::CACHE_CONTROL, "no-store");
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    response
}

async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/dashboard.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
