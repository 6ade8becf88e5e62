//! The admin API: the management API of docs/contract.md §5, every request
//! authenticated with the admin key. It answers whatever the dashboard's pages do not
//! (`admin_listener.rs` puts the two together).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use tessera_core::ManageError;

use crate::admin_state::AdminState;
use crate::body::read_body;
use crate::errors::AdminFailure;
use crate::limiter::{Peer, PeerAddr};
use crate::operations::{self, Actor};
use crate::request::bearer_token;

type AppState = State<Arc<AdminState>>;
type Answer = Result<Response, AdminFailure>;

/// The API's routes, each behind the admin key; unknown paths are its JSON 404.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/admin/v1/realms", get(list_realms).post(create_realm))
        .route(
            "/admin/v1/realms/{realm}",
            get(show_realm).patch(update_realm).delete(delete_realm),
        )
        .route("/admin/v1/realms/{realm}/rotate-keys", post(rotate_keys))
        .route(
            "/admin/v1/realms/{realm}/applications",
            get(list_applications).post(create_application),
        )
        .route(
            "/admin/v1/realms/{realm}/applications/{client_id}",
            get(show_application)
                .patch(update_application)
                .delete(delete_application),
        )
        .route(
            "/admin/v1/realms/{realm}/applications/{client_id}/secret",
            post(rotate_secret),
        )
        .route(
            "/admin/v1/realms/{realm}/applications/{client_id}/tokens",
            post(issue_token),
        )
        .route(
            "/admin/v1/realms/{realm}/applications/{client_id}/revoke-tokens",
            post(revoke_tokens),
        )
        .route(
            "/admin/v1/realms/{realm}/applications/{client_id}/usage",
            get(usage),
        )
        .route("/admin/v1/audit", get(list_audit))
        .route("/admin/v1/openapi.json", get(openapi_json))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_admin_key,
        ))
        .with_state(state)
}

async fn require_admin_key(State(state): AppState, request: Request, next: Next) -> Response {
    let peer = Peer(request.extensions().get::<PeerAddr>().map(|p| p.0.ip()));
    let source = state.guard.source(request.headers(), peer);
    if let Err(limited) = state.guard.admit(source) {
        return AdminFailure::TooManyFailures(limited).into_response();
    }
    let presented = bearer_token(request.headers()).unwrap_or_default();
    let expected = state.admin_key.expose();
    let matches: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
    if !matches {
        // Only a key presented is a guess: a browser's /favicon.ico is not.
        if !presented.is_empty()
            && let Err(limited) = state.guard.failed(source, None)
        {
            return AdminFailure::TooManyFailures(limited).into_response();
        }
        return AdminFailure::Unauthorized.into_response();
    }
    next.run(request).await
}

async fn not_found() -> AdminFailure {
    AdminFailure::NotFound
}

/// The realm and client_id of the path, as [`Path`] reads them, except that a name that
/// does not decode (percent-escapes of bytes that are not UTF-8) is answered like every
/// unknown name, 404 in JSON, and not with axum's plain-text 400, which no operation
/// of the OpenAPI document lists.
struct Names<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Names<T> {
    type Rejection = AdminFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminFailure> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(names)) => Ok(Self(names)),
            Err(rejection) if rejection.status().is_client_error() => {
                Err(AdminFailure::Manage(ManageError::NotFound {
                    what: "realm or application",
                    name: parts.uri.path().to_owned(),
                }))
            }
            Err(rejection) => Err(AdminFailure::Manage(ManageError::Internal(
                rejection.body_text(),
            ))),
        }
    }
}

/// Reads a JSON body into `T`; an empty body reads as `{}`. A bad field is named.
async fn json_body<T: DeserializeOwned>(
    state: &AdminState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, AdminFailure> {
    let bytes = read_body(headers, body, state.body_limit)
        .await
        .map_err(AdminFailure::from)?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = inner.to_string();
        // serde names an unknown or missing field in its message, not in the path.
        let field = if path == "." || path.is_empty() {
            field_in_message(&message)
        } else {
            Some(path)
        };
        AdminFailure::BadBody { field, message }
    })
}

fn field_in_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message.get(start..)?.find('`')?;
    message.get(start..start + len).map(str::to_owned)
}

fn created<T: serde::Serialize>(value: T) -> Response {
    (StatusCode::CREATED, axum::Json(value)).into_response()
}

fn ok<T: serde::Serialize>(value: T) -> Response {
    axum::Json(value).into_response()
}

async fn list_realms(State(state): AppState) -> Answer {
    Ok(ok(operations::list_realms(&state.authority)))
}

async fn create_realm(State(state): AppState, headers: HeaderMap, body: Body) -> Answer {
    let input = json_body(&state, &headers, body).await?;
    Ok(created(
        operations::create_realm(&state.authority, &Actor::admin_key(), input).await?,
    ))
}

async fn show_realm(State(state): AppState, Names(realm): Names<String>) -> Answer {
    Ok(ok(operations::show_realm(&state.authority, &realm)?))
}

async fn update_realm(
    State(state): AppState,
    Names(realm): Names<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let patch = json_body(&state, &headers, body).await?;
    Ok(ok(operations::update_realm(
        &state.authority,
        &Actor::admin_key(),
        &realm,
        patch,
    )
    .await?))
}

async fn delete_realm(State(state): AppState, Names(realm): Names<String>) -> Answer {
    operations::delete_realm(&state.authority, &Actor::admin_key(), &realm).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn rotate_keys(
    State(state): AppState,
    Names(realm): Names<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let input = json_body(&state, &headers, body).await?;
    Ok(ok(operations::rotate_keys(
        &state.authority,
        &Actor::admin_key(),
        &realm,
        input,
    )
    .await?))
}

async fn list_applications(
    State(state): AppState,
    Names(realm): Names<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let query = query_of(query.as_deref())?;
    let page = operations::list_applications(&state.authority, &realm, query).await?;
    paged(
        &format!("/admin/v1/realms/{realm}/applications"),
        page.items,
        page.next,
    )
}

async fn usage(
    State(state): AppState,
    Names((realm, client_id)): Names<(String, String)>,
    RawQuery(query): RawQuery,
) -> Answer {
    let query = query_of(query.as_deref())?;
    Ok(ok(operations::usage(
        &state.authority,
        &realm,
        &client_id,
        query,
    )
    .await?))
}

async fn openapi_json() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(),
    )
        .into_response()
}

async fn list_audit(State(state): AppState, RawQuery(query): RawQuery) -> Answer {
    let query = query_of(query.as_deref())?;
    let page = operations::list_audit(&state.authority, query).await?;
    paged("/admin/v1/audit", page.items, page.next)
}

/// A query string as `T`, naming the parameter that does not fit.
fn query_of<T: DeserializeOwned>(query: Option<&str>) -> Result<T, AdminFailure> {
    serde_urlencoded::from_str(query.unwrap_or_default()).map_err(|err| {
        let message = err.to_string();
        AdminFailure::BadBody {
            field: field_in_message(&message),
            message,
        }
    })
}

/// A JSON array, with `Link: <…>; rel="next"` (RFC 8288) when there is more.
fn paged<T: serde::Serialize, Q: serde::Serialize>(
    path: &str,
    items: Vec<T>,
    next: Option<Q>,
) -> Answer {
    let mut response = ok(items);
    if let Some(next) = next
        && let Ok(query) = serde_urlencoded::to_string(&next)
        && let Ok(link) = format!("<{path}?{query}>; rel=\"next\"").parse()
    {
        response
            .headers_mut()
            .insert(axum::http::header::LINK, link);
    }
    Ok(response)
}

async fn create_application(
    State(state): AppState,
    Names(realm): Names<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let input = json_body(&state, &headers, body).await?;
    Ok(created(
        operations::create_application(&state.authority, &Actor::admin_key(), &realm, input)
            .await?,
    ))
}

async fn show_application(
    State(state): AppState,
    Names((realm, client_id)): Names<(String, String)>,
) -> Answer {
    Ok(ok(operations::show_application(
        &state.authority,
        &realm,
        &client_id,
    )
    .await?))
}

async fn update_application(
    State(state): AppState,
    Names((realm, client_id)): Names<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let patch = json_body(&state, &headers, body).await?;
    Ok(ok(operations::update_application(
        &state.authority,
        &Actor::admin_key(),
        &realm,
        &client_id,
        patch,
    )
    .await?))
}

async fn delete_application(
    State(state): AppState,
    Names((realm, client_id)): Names<(String, String)>,
) -> Answer {
    operations::delete_application(&state.authority, &Actor::admin_key(), &realm, &client_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn rotate_secret(
    State(state): AppState,
    Names((realm, client_id)): Names<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let input = json_body(&state, &headers, body).await?;
    Ok(ok(operations::rotate_secret(
        &state.authority,
        &Actor::admin_key(),
        &realm,
        &client_id,
        input,
    )
    .await?))
}

async fn issue_token(
    State(state): AppState,
    Names((realm, client_id)): Names<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let input = json_body(&state, &headers, body).await?;
    let token = operations::issue_token(
        &state.authority,
        &Actor::admin_key(),
        &realm,
        &client_id,
        input,
    )
    .await?;
    let mut response = created(token);
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

async fn revoke_tokens(
    State(state): AppState,
    Names((realm, client_id)): Names<(String, String)>,
) -> Answer {
    Ok(ok(operations::revoke_tokens(
        &state.authority,
        &Actor::admin_key(),
        &realm,
        &client_id,
    )
    .await?))
}
