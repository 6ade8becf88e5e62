//! A tower layer that lets a request through only with a good bearer token (RFC 6750),
//! for any service on `http` requests: axum routers and handlers, tonic servers, plain
//! hyper services.
//!
//! - no `Authorization: Bearer` header: 401 with `WWW-Authenticate: Bearer`;
//! - a bad token: 401 with `WWW-Authenticate: Bearer error="invalid_token"`;
//! - a good token without the scopes the layer requires: 403 with
//!   `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`;
//! - a token that could not be checked (issuer unreachable): 503;
//! - otherwise the request goes on with a [`Principal`] in its extensions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tower::{Layer, Service};

use super::{Principal, TokenVerifier, VerifyError};

/// Wraps services in [`BearerAuth`]. Cheap to clone; one verifier can serve many layers
/// with different required scopes.
#[derive(Debug, Clone)]
pub struct BearerAuthLayer {
    verifier: TokenVerifier,
    required_scopes: Arc<[String]>,
}

impl BearerAuthLayer {
    pub fn new(verifier: TokenVerifier) -> Self {
        Self {
            verifier,
            required_scopes: Arc::from(Vec::new()),
        }
    }

    /// Every one of these scopes must be granted, or the answer is 403.
    pub fn require_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            verifier: self.verifier.clone(),
            required_scopes: self.required_scopes.clone(),
        }
    }
}

/// The service [`BearerAuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct BearerAuth<S> {
    inner: S,
    verifier: TokenVerifier,
    required_scopes: Arc<[String]>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BearerAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone takes the place of the service that was polled ready, which then
        // serves this request (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let required = self.required_scopes.clone();
        Box::pin(async move {
            let token = match bearer_token(request.headers()) {
                Ok(Some(token)) => token,
                Ok(None) => return Ok(challenge(StatusCode::UNAUTHORIZED, None)),
                Err(()) => {
                    return Ok(challenge(
                        StatusCode::BAD_REQUEST,
                        Some("error=\"invalid_request\"".to_owned()),
                    ));
                }
            };
            let principal = match verifier.verify(&token).await {
                Ok(principal) => principal,
                Err(VerifyError::Invalid(why)) => {
                    tracing::debug!(reason = why, "bearer token refused");
                    return Ok(challenge(
                        StatusCode::UNAUTHORIZED,
                        Some("error=\"invalid_token\"".to_owned()),
                    ));
                }
                Err(VerifyError::Unavailable(why)) => {
                    tracing::warn!(reason = %why, "cannot check a bearer token");
                    let mut response = Response::new(ResBody::default());
                    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    return Ok(response);
                }
            };
            if !principal.has_scopes(required.iter().map(String::as_str)) {
                return Ok(challenge(
                    StatusCode::FORBIDDEN,
                    Some(format!(
                        "error=\"insufficient_scope\", scope=\"{}\"",
                        required.join(" ")
                    )),
                ));
            }
            request.extensions_mut().insert::<Principal>(principal);
            inner.call(request).await
        })
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive). `Ok(None)`:
/// no bearer credentials at all; `Err`: more than one `Authorization` header, or a
/// bearer token with characters RFC 6750's `b64token` does not allow.
fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, ()> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    let Ok(text) = value.to_str() else {
        return Err(());
    };
    let Some((scheme, token)) = text.trim_start().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim();
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if token.is_empty() || !token.chars().all(b64token) {
        return Err(());
    }
    Ok(Some(token.to_owned()))
}

fn challenge<B: Default>(status: StatusCode, params: Option<String>) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    let value = match params {
        Some(params) => HeaderValue::from_str(&format!("Bearer {params}"))
            .unwrap_or(HeaderValue::from_static("Bearer")),
        None => HeaderValue::from_static("Bearer"),
    };
    response.headers_mut().insert(WWW_AUTHENTICATE, value);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bearer_tokens_are_read_per_rfc_6750() {
        assert_eq!(bearer_token(&headers(&[])), Ok(None));
        assert_eq!(bearer_token(&headers(&["Basic abc"])), Ok(None));
        assert_eq!(
            bearer_token(&headers(&["bearer abc.def-_"])),
            Ok(Some("abc.def-_".to_owned()))
        );
        assert_eq!(bearer_token(&headers(&["Bearer a b"])), Err(()));
        assert_eq!(bearer_token(&headers(&["Bearer  "])), Err(()));
        assert_eq!(bearer_token(&headers(&["Bearer a", "Bearer b"])), Err(()));
    }
}
