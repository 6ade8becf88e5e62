//! The one place where errors become HTTP: status, JSON body and `WWW-Authenticate`,
//! for the public listener ([`PublicError`]) and the admin listener ([`AdminFailure`],
//! whose status the dashboard reads too).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::{ManageError, OAuthError, StoreError};
use tessera_proto::{AdminError, ErrorResponse};

use crate::body::BodyError;
use crate::limiter::TooManyFailures;

/// An error of a public OAuth endpoint.
#[derive(Debug)]
pub enum PublicError {
    OAuth(OAuthError),
    /// The body is over the configured limit (413).
    PayloadTooLarge(usize),
    /// The body did not arrive within the body timeout (408).
    BodyTimedOut,
    /// Too many failed authentications from this address or for this client (429).
    TooManyFailures(TooManyFailures),
    /// A content type the endpoint does not read (415).
    UnsupportedMediaType,
    /// A `/realms/{realm}` path naming no realm (404).
    UnknownRealm,
    /// No route (404) or wrong method (405).
    NotFound,
    MethodNotAllowed,
    /// `/verify` without a bearer token that checks out: 401 with the RFC 6750 §3.1
    /// challenge, and no JSON (a reverse proxy reads only the status).
    InvalidToken,
    /// `/readyz` while the store does not answer (503).
    NotReady,
}

impl PublicError {
    /// The `error` code its JSON body carries (also what the metrics count a refused
    /// token request by); `None` for the answers that have no such body.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::OAuth(err) => Some(err.code()),
            Self::TooManyFailures(_) => Some("invalid_client"),
            Self::PayloadTooLarge(_)
            | Self::BodyTimedOut
            | Self::UnsupportedMediaType
            | Self::UnknownRealm
            | Self::MethodNotAllowed => Some("invalid_request"),
            Self::NotFound => Some("not_found"),
            Self::InvalidToken | Self::NotReady => None,
        }
    }
}

impl From<OAuthError> for PublicError {
    fn from(err: OAuthError) -> Self {
        Self::OAuth(err)
    }
}

impl From<TooManyFailures> for PublicError {
    fn from(err: TooManyFailures) -> Self {
        Self::TooManyFailures(err)
    }
}

/// RFC 6585 §4: 429 says when to come back.
fn retry_after(mut response: Response, limited: TooManyFailures) -> Response {
    if let Ok(value) = HeaderValue::from_str(&limited.retry_after_s.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

impl From<BodyError> for PublicError {
    fn from(err: BodyError) -> Self {
        match err {
            BodyError::TooLarge(limit) => Self::PayloadTooLarge(limit),
            BodyError::TimedOut => Self::BodyTimedOut,
        }
    }
}

/// RFC 9110 §15.5.9: the server closes the connection after a 408.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn json_error(status: StatusCode, code: &str, description: Option<String>) -> Response {
    let body = ErrorResponse {
        error: code.to_owned(),
        error_description: description,
    };
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

impl IntoResponse for PublicError {
    fn into_response(self) -> Response {
        let code = self.code().unwrap_or_default();
        match self {
            Self::OAuth(err) => {
                let status = match &err {
                    OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
                    OAuthError::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
                    OAuthError::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
                    OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::BAD_REQUEST,
                };
                let mut response = json_error(status, code, Some(err.description().to_owned()));
                match err {
                    // A 401 always names the scheme to use, however the client tried.
                    OAuthError::InvalidClient(_) => {
                        response.headers_mut().insert(
                            header::WWW_AUTHENTICATE,
                            HeaderValue::from_static("Basic realm=\"tessera\", charset=\"UTF-8\""),
                        );
                    }
                    // RFC 6585 §4: the quota rolls over in this many seconds.
                    OAuthError::QuotaExceeded { retry_after_s, .. } => {
                        response
                            .headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
                    }
                    _ => {}
                }
                response
            }
            Self::PayloadTooLarge(limit) => json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                code,
                Some(format!("the request body is over {limit} bytes")),
            ),
            Self::BodyTimedOut => closing(json_error(
                StatusCode::REQUEST_TIMEOUT,
                code,
                Some("the request body did not arrive in time".to_owned()),
            )),
            Self::TooManyFailures(limited) => retry_after(
                json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    code,
                    Some(format!(
                        "too many failed client authentications; slow down and retry after {} s",
                        limited.retry_after_s
                    )),
                ),
                limited,
            ),
            Self::UnsupportedMediaType => json_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code,
                Some("send application/x-www-form-urlencoded or application/json".to_owned()),
            ),
            Self::UnknownRealm => json_error(
                StatusCode::NOT_FOUND,
                code,
                Some("no such realm".to_owned()),
            ),
            Self::NotFound => json_error(StatusCode::NOT_FOUND, code, None),
            Self::MethodNotAllowed => json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                code,
                Some("method not allowed on this path".to_owned()),
            ),
            Self::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                )],
                "Unauthorized",
            )
                .into_response(),
            Self::NotReady => (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "store unavailable"})),
            )
                .into_response(),
        }
    }
}

/// Why the admin listener refuses a request. The admin API answers it as JSON
/// ([`IntoResponse`]), the dashboard as a page in its own words; both take the status
/// from [`AdminFailure::status`], the one table of the admin listener.
#[derive(Debug)]
pub enum AdminFailure {
    Manage(ManageError),
    /// No admin key, or the wrong one (401; the API adds its Bearer challenge).
    Unauthorized,
    BadBody {
        field: Option<String>,
        message: String,
    },
    /// A dashboard form whose form token does not match (403); the API has no forms.
    StaleForm,
    PayloadTooLarge(usize),
    BodyTimedOut,
    TooManyFailures(TooManyFailures),
    NotFound,
}

impl From<ManageError> for AdminFailure {
    fn from(err: ManageError) -> Self {
        Self::Manage(err)
    }
}

impl From<BodyError> for AdminFailure {
    fn from(err: BodyError) -> Self {
        match err {
            BodyError::TooLarge(limit) => Self::PayloadTooLarge(limit),
            BodyError::TimedOut => Self::BodyTimedOut,
        }
    }
}

impl From<TooManyFailures> for AdminFailure {
    fn from(err: TooManyFailures) -> Self {
        Self::TooManyFailures(err)
    }
}

impl AdminFailure {
    /// The HTTP status, for the admin API and the dashboard alike.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Manage(err) => manage_status(err),
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadBody { .. } => StatusCode::BAD_REQUEST,
            Self::StaleForm => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyFailures(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
        }
    }

    /// The `error` code of the admin API's JSON body.
    fn code(&self) -> &'static str {
        match self {
            Self::Manage(err) => manage_code(err),
            Self::Unauthorized => "unauthorized",
            Self::BadBody { .. } => "invalid_request",
            Self::StaleForm => "forbidden",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::BodyTimedOut => "request_timeout",
            Self::TooManyFailures(_) => "too_many_requests",
            Self::NotFound => "not_found",
        }
    }
}

/// The status of a failed management operation. The dashboard reads it for the forms
/// it shows again with the error beside a field.
pub fn manage_status(err: &ManageError) -> StatusCode {
    match err {
        ManageError::Invalid(_) => StatusCode::BAD_REQUEST,
        ManageError::NotFound { .. } => StatusCode::NOT_FOUND,
        ManageError::Conflict(_) => StatusCode::CONFLICT,
        ManageError::Forbidden(_) => StatusCode::FORBIDDEN,
        ManageError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
        ManageError::Store(_) | ManageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn manage_code(err: &ManageError) -> &'static str {
    match err {
        ManageError::Invalid(_) => "invalid_field",
        ManageError::NotFound { .. } => "not_found",
        ManageError::Conflict(_) => "conflict",
        ManageError::Forbidden(_) => "forbidden",
        ManageError::Store(StoreError::Unavailable(_)) => "unavailable",
        ManageError::Store(_) | ManageError::Internal(_) => "internal",
    }
}

/// Logs a management failure that is the server's and not the request's (its detail
/// is for the log only: answers say no more than the status). Called once for each
/// answer, by whichever front end gives it.
pub fn log_manage_failure(err: &ManageError) {
    match err {
        ManageError::Store(StoreError::Unavailable(message)) => {
            tracing::error!(%message, "store unavailable");
        }
        ManageError::Store(other) => tracing::error!(error = %other, "store failure"),
        ManageError::Internal(message) => tracing::error!(%message, "internal failure"),
        ManageError::Invalid(_)
        | ManageError::NotFound { .. }
        | ManageError::Conflict(_)
        | ManageError::Forbidden(_) => {}
    }
}

fn admin_json(status: StatusCode, code: &str, message: String, field: Option<String>) -> Response {
    (
        status,
        axum::Json(AdminError {
            error: code.to_owned(),
            message,
            field,
        }),
    )
        .into_response()
}

impl IntoResponse for AdminFailure {
    fn into_response(self) -> Response {
        let (status, code) = (self.status(), self.code());
        let (message, field) = match self {
            Self::Unauthorized => {
                let mut response = admin_json(
                    status,
                    code,
                    "send Authorization: Bearer <admin key>".to_owned(),
                    None,
                );
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return response;
            }
            Self::TooManyFailures(limited) => {
                let message = format!(
                    "too many requests with a wrong admin key; retry after {} s",
                    limited.retry_after_s
                );
                return retry_after(admin_json(status, code, message, None), limited);
            }
            Self::BodyTimedOut => {
                let message = "the request body did not arrive in time".to_owned();
                return closing(admin_json(status, code, message, None));
            }
            Self::BadBody { field, message } => (message, field),
            Self::StaleForm => ("the form has expired".to_owned(), None),
            Self::PayloadTooLarge(limit) => {
                (format!("the request body is over {limit} bytes"), None)
            }
            Self::NotFound => ("no such route".to_owned(), None),
            Self::Manage(err) => {
                log_manage_failure(&err);
                match err {
                    ManageError::Invalid(field) => (field.message, Some(field.field)),
                    ManageError::NotFound { what, name } => {
                        (format!("{what} {name} not found"), None)
                    }
                    ManageError::Conflict(message) => (message, None),
                    ManageError::Forbidden(message) => (message.to_owned(), None),
                    ManageError::Store(StoreError::Unavailable(_)) => {
                        ("the store is unavailable; try again".to_owned(), None)
                    }
                    ManageError::Store(_) => ("the store failed".to_owned(), None),
                    ManageError::Internal(_) => ("internal error".to_owned(), None),
                }
            }
        };
        admin_json(status, code, message, field)
    }
}
