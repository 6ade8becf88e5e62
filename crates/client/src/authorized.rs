//! A reqwest client that calls a protected API with a token from a [`TokenSource`]:
//! it adds `Authorization: Bearer`, and when the API answers 401 it drops that token,
//! gets a fresh one and sends the request once more.

use crate::source::TokenSource;
use crate::token::{TokenError, TokenRequest};

/// Why a call through [`AuthorizedClient`] failed before an HTTP answer came back.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizedError {
    #[error("no access token: {0}")]
    Token(#[from] TokenError),
    #[error("the request failed: {0}")]
    Http(#[from] reqwest::Error),
}

/// Calls an API as the client of `request`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuthorizedClient {
    http: reqwest::Client,
    source: TokenSource,
    request: TokenRequest,
}

impl AuthorizedClient {
    /// Calls go out on `http`; tokens come from `source` for `request`.
    pub fn new(http: reqwest::Client, source: TokenSource, request: TokenRequest) -> Self {
        Self {
            http,
            source,
            request,
        }
    }

    /// The plain client, to build requests with (`client.http().get(url)`).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn source(&self) -> &TokenSource {
        &self.source
    }

    /// Builds and sends `request` with a bearer token.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AuthorizedError> {
        self.execute(request.build()?).await
    }

    /// Sends `request` with a bearer token. On 401 the token is dropped and the request
    /// sent once more with a fresh one, if its body can be sent twice (a streaming body
    /// cannot; its 401 is returned as it is).
    pub async fn execute(
        &self,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, AuthorizedError> {
        let again = request.try_clone();
        let token = self.source.token(&self.request).await?;
        let response = self.http.execute(with_bearer(request, &token)).await?;
        let Some(again) = again else {
            return Ok(response);
        };
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        tracing::debug!(
            url = %response.url(),
            "the API refused the access token; retrying once with a fresh one"
        );
        drop(response);
        self.source.invalidate(&self.request, &token);
        let fresh = self.source.token(&self.request).await?;
        Ok(self.http.execute(with_bearer(again, &fresh)).await?)
    }
}

fn with_bearer(mut request: reqwest::Request, token: &crate::token::Token) -> reqwest::Request {
    let value = format!("Bearer {}", token.access_token().expose());
    if let Ok(mut header) = http::HeaderValue::from_str(&value) {
        header.set_sensitive(true);
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, header);
    }
    request
}
