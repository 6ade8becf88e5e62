//! Reading a request body whole: within the configured limit, and within the
//! listener's body timeout.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over the limit, which it carries (413).
    TooLarge(usize),
    /// It did not arrive whole within the listener's body timeout (408).
    TimedOut,
}

/// Reads a whole body, refusing one over `limit` bytes or one that does not arrive in
/// time.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    // Past the declared length check, what is left is a body that streams more than
    // the limit, one too slow (the listener's deadline), or a client that went away
    // (which cannot read the answer).
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(error) = cause {
            if error.is::<crate::listener::BodyTimedOut>() {
                return BodyError::TimedOut;
            }
            cause = error.source();
        }
        BodyError::TooLarge(limit)
    })
}
