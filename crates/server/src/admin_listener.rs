//! The admin listener's router: the dashboard's pages, and the admin API behind them.
//! Assembled here, above both, so that neither needs the other.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::admin_state::AdminState;
use crate::{admin, dashboard};

pub fn router(state: Arc<AdminState>) -> Router {
    // The dashboard's pages take a session instead of the admin key; everything else
    // on this listener is the API.
    dashboard::router(state.clone())
        .fallback_service(admin::router(state))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
}
