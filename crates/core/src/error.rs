//! The errors of the domain: OAuth errors as RFC 6749 §5.2 names them, errors of the
//! management operations, and what a store can fail with.

use std::borrow::Cow;

/// A value that did not parse, and which input field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// An error answered by the token, introspection or revocation endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(Cow<'static, str>),
    /// Always a 401 with a `WWW-Authenticate` challenge (RFC 6749 §5.2, RFC 9110 §15.5.2),
    /// whichever way the client tried to authenticate.
    #[error("invalid_client: {0}")]
    InvalidClient(Cow<'static, str>),
    #[error("invalid_grant: {0}")]
    InvalidGrant(Cow<'static, str>),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(Cow<'static, str>),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(Cow<'static, str>),
    #[error("invalid_scope: {0}")]
    InvalidScope(Cow<'static, str>),
    #[error("invalid_target: {0}")]
    InvalidTarget(Cow<'static, str>),
    /// A fault of the server itself (never of the request).
    #[error("server_error: {0}")]
    ServerError(Cow<'static, str>),
    /// The store could not be reached; the request may succeed later.
    #[error("temporarily_unavailable: {0}")]
    TemporarilyUnavailable(Cow<'static, str>),
    /// The application's quota of tokens is used up until `retry_after_s` seconds from
    /// now (an extension error code, RFC 6749 §8.5; answered 429 with `Retry-After`).
    #[error("quota_exceeded: {description}")]
    QuotaExceeded {
        description: Cow<'static, str>,
        retry_after_s: u64,
    },
}

impl OAuthError {
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidRequest(description.into())
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidClient(description.into())
    }

    /// The registered OAuth error codes that [`OAuthError::code`] returns (RFC 6749
    /// §5.2 and §4.1.2.1, RFC 8707 §2), in a fixed order: the metrics count refused
    /// token requests by them. `quota_exceeded`, an extension of ours, is not one.
    pub const REGISTERED_CODES: [&'static str; 9] = [
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_target",
        "server_error",
        "temporarily_unavailable",
    ];

    /// The RFC 6749 error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::ServerError(_) => "server_error",
            Self::TemporarilyUnavailable(_) => "temporarily_unavailable",
            Self::QuotaExceeded { .. } => "quota_exceeded",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d)
            | Self::InvalidTarget(d)
            | Self::ServerError(d)
            | Self::TemporarilyUnavailable(d)
            | Self::InvalidClient(d)
            | Self::QuotaExceeded { description: d, .. } => d,
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "store failure while serving an OAuth request");
        Self::TemporarilyUnavailable("the store is unavailable; try again".into())
    }
}

/// What a store implementation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key (realm name, client id) is taken.
    #[error("already exists: {0}")]
    Conflict(String),
    /// Stored data that no longer parses (hand-edited, or written by a newer version).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// The error of a management operation (admin API, CLI, dashboard).
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("{what} not found")]
    NotFound { what: &'static str, name: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Store(StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ManageError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Store(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_but_our_extension_is_a_registered_one() {
        let d = || Cow::Borrowed("");
        let all = [
            OAuthError::InvalidRequest(d()),
            OAuthError::InvalidClient(d()),
            OAuthError::InvalidGrant(d()),
            OAuthError::UnauthorizedClient(d()),
            OAuthError::UnsupportedGrantType(d()),
            OAuthError::InvalidScope(d()),
            OAuthError::InvalidTarget(d()),
            OAuthError::ServerError(d()),
            OAuthError::TemporarilyUnavailable(d()),
            OAuthError::QuotaExceeded {
                description: d(),
                retry_after_s: 1,
            },
        ];
        let registered: Vec<&str> = all
            .iter()
            .map(OAuthError::code)
            .filter(|code| *code != "quota_exceeded")
            .collect();
        assert_eq!(registered, OAuthError::REGISTERED_CODES);
    }
}
