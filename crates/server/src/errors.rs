//! The one place where errors become HTTP: status, JSON body and `WWW-Authenticate`.

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
        match self {
            Self::OAuth(err) => {
                let status = match &err {
                    OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
                    OAuthError::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
                    OAuthError::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
                    OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::BAD_REQUEST,
                };
                let mut response =
                    json_error(status, err.code(), Some(err.description().to_owned()));
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
                "invalid_request",
                Some(format!("the request body is over {limit} bytes")),
            ),
            Self::BodyTimedOut => closing(json_error(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request",
                Some("the request body did not arrive in time".to_owned()),
            )),
            Self::TooManyFailures(limited) => retry_after(
                json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "invalid_client",
                    Some(format!(
                        "too many failed client authentications; slow down and retry after {} s",
                        limited.retry_after_s
                    )),
                ),
                limited,
            ),
            Self::UnsupportedMediaType => json_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                Some("send application/x-www-form-urlencoded or application/json".to_owned()),
            ),
            Self::UnknownRealm => json_error(
                StatusCode::NOT_FOUND,
                "invalid_request",
                Some("no such realm".to_owned()),
            ),
            Self::NotFound => json_error(StatusCode::NOT_FOUND, "not_found", None),
            Self::MethodNotAllowed => json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                Some("method not allowed on this path".to_owned()),
            ),
        }
    }
}

/// An error of the admin API.
#[derive(Debug)]
pub enum AdminFailure {
    Manage(ManageError),
    Unauthorized,
    BadBody {
        field: Option<String>,
        message: String,
    },
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
        match self {
            Self::Unauthorized => {
                let mut response = admin_json(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send Authorization: Bearer <admin key>".to_owned(),
                    None,
                );
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Self::BadBody { field, message } => {
                admin_json(StatusCode::BAD_REQUEST, "invalid_request", message, field)
            }
            Self::TooManyFailures(limited) => retry_after(
                admin_json(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    format!(
                        "too many requests with a wrong admin key; retry after {} s",
                        limited.retry_after_s
                    ),
                    None,
                ),
                limited,
            ),
            Self::BodyTimedOut => closing(admin_json(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive in time".to_owned(),
                None,
            )),
            Self::PayloadTooLarge(limit) => admin_json(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body is over {limit} bytes"),
                None,
            ),
            Self::NotFound => admin_json(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route".to_owned(),
                None,
            ),
            Self::Manage(err) => match err {
                ManageError::Invalid(field) => admin_json(
                    StatusCode::BAD_REQUEST,
                    "invalid_field",
                    field.message,
                    Some(field.field),
                ),
                ManageError::NotFound { what, name } => admin_json(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("{what} {name} not found"),
                    None,
                ),
                ManageError::Conflict(message) => {
                    admin_json(StatusCode::CONFLICT, "conflict", message, None)
                }
                ManageError::Forbidden(message) => {
                    admin_json(StatusCode::FORBIDDEN, "forbidden", message.to_owned(), None)
                }
                ManageError::Store(StoreError::Unavailable(message)) => {
                    tracing::error!(%message, "store unavailable");
                    admin_json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "the store is unavailable; try again".to_owned(),
                        None,
                    )
                }
                ManageError::Store(other) => {
                    tracing::error!(error = %other, "store failure");
                    admin_json(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "the store failed".to_owned(),
                        None,
                    )
                }
                ManageError::Internal(message) => {
                    tracing::error!(%message, "internal failure");
                    admin_json(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "internal error".to_owned(),
                        None,
                    )
                }
            },
        }
    }
}
