//! One client-credentials token request (RFC 6749 §4.4) and what can come back.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tessera_proto::ErrorResponse;

use crate::credentials::ClientCredentials;
use crate::keys::KeyError;
use crate::secret::Secret;

/// The largest token-endpoint answer read; a token response is a few kilobytes.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// What to ask for, where, as whom: the endpoint, the credentials, the scope and the
/// resources (RFC 8707). Cheap to clone.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    endpoint: reqwest::Url,
    credentials: Arc<ClientCredentials>,
    scope: Option<String>,
    resources: Vec<String>,
}

impl TokenRequest {
    pub fn new(endpoint: reqwest::Url, credentials: ClientCredentials) -> Self {
        Self {
            endpoint,
            credentials: Arc::new(credentials),
            scope: None,
            resources: Vec::new(),
        }
    }

    /// Parses `endpoint`; only `http` and `https` URLs are accepted.
    pub fn parse(endpoint: &str, credentials: ClientCredentials) -> Result<Self, TokenError> {
        let url = reqwest::Url::parse(endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| TokenError::InvalidEndpoint(endpoint.to_owned()))?;
        Ok(Self::new(url, credentials))
    }

    /// Space-separated scopes to ask for; empty asks for the client's default.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        let scope: String = scope.into();
        let words: Vec<&str> = scope.split_whitespace().collect();
        self.scope = (!words.is_empty()).then(|| words.join(" "));
        self
    }

    /// An RFC 8707 `resource` (the audience the token is for); repeatable.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    pub fn endpoint(&self) -> &reqwest::Url {
        &self.endpoint
    }

    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    pub fn requested_scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// What identifies the token this request gets: the endpoint, the client, the
    /// scope (order and repeats aside), the resources, and the credentials' fingerprint
    /// (so that a token got with one secret is never handed to a caller with another).
    pub fn cache_key(&self) -> TokenKey {
        let mut scope: Vec<&str> = self
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect();
        scope.sort_unstable();
        scope.dedup();
        let mut resources = self.resources.clone();
        resources.sort_unstable();
        resources.dedup();
        TokenKey {
            endpoint: self.endpoint.as_str().to_owned(),
            client_id: self.credentials.client_id().to_owned(),
            scope: scope.join(" "),
            resources,
            credentials: self.credentials.fingerprint(),
        }
    }

    /// Sends the request once and reads the answer.
    pub async fn send(&self, http: &reqwest::Client) -> Result<Token, TokenError> {
        let mut params = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
        if let Some(scope) = &self.scope {
            params.push(("scope".to_owned(), scope.clone()));
        }
        for resource in &self.resources {
            params.push(("resource".to_owned(), resource.clone()));
        }
        let body = self
            .credentials
            .authorize(self.endpoint.as_str(), params)
            .map_err(TokenError::Key)?;
        let request = body.apply(
            http.post(self.endpoint.clone())
                .header(http::header::ACCEPT, "application/json"),
        );
        let response = request
            .send()
            .await
            .map_err(|e| TokenError::Transport(Arc::new(e.without_url())))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = read_limited(response).await?;
        parse_answer(status.as_u16(), retry_after, &body)
    }
}

/// The identity of a token in a cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey {
    pub endpoint: String,
    pub client_id: String,
    /// Sorted, without repeats; empty for the client's default scope.
    pub scope: String,
    pub resources: Vec<String>,
    /// [`ClientCredentials::fingerprint`].
    pub credentials: [u8; 32],
}

/// An access token with what the server said about it. Cheap to clone; `Debug` never
/// shows the token.
#[derive(Clone)]
pub struct Token(Arc<TokenData>);

struct TokenData {
    access_token: Secret,
    token_type: Option<String>,
    expires_in: Option<u64>,
    scope: Option<String>,
    response: serde_json::Value,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &self.0.access_token)
            .field("token_type", &self.0.token_type)
            .field("expires_in", &self.0.expires_in)
            .field("scope", &self.0.scope)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Self) -> bool {
        self.0.access_token == other.0.access_token
    }
}

impl Token {
    /// A token from a stored token response (as [`Token::response`] gave it).
    pub fn from_response(response: serde_json::Value) -> Result<Self, TokenError> {
        #[derive(Deserialize)]
        struct Wire {
            access_token: String,
            #[serde(default)]
            token_type: Option<String>,
            #[serde(default)]
            expires_in: Option<serde_json::Value>,
            #[serde(default)]
            scope: Option<String>,
        }
        let wire: Wire = serde_json::from_value(response.clone())
            .map_err(|e| TokenError::InvalidResponse(format!("not a token response: {e}")))?;
        if wire.access_token.is_empty() {
            return Err(TokenError::InvalidResponse("access_token is empty".into()));
        }
        // Some servers send `"expires_in": "3600"`.
        let expires_in = match wire.expires_in {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        Ok(Self(Arc::new(TokenData {
            access_token: Secret::new(wire.access_token),
            token_type: wire.token_type,
            expires_in,
            scope: wire.scope,
            response,
        })))
    }

    pub fn access_token(&self) -> &Secret {
        &self.0.access_token
    }

    pub fn token_type(&self) -> Option<&str> {
        self.0.token_type.as_deref()
    }

    /// Seconds the token lived when it was issued, if the server said.
    pub fn expires_in(&self) -> Option<u64> {
        self.0.expires_in
    }

    pub fn scope(&self) -> Option<&str> {
        self.0.scope.as_deref()
    }

    /// The whole JSON answer of the token endpoint, access token included: print it
    /// only where the user asked for it.
    pub fn response(&self) -> &serde_json::Value {
        &self.0.response
    }
}

/// Why no token came back.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// An RFC 6749 §5.2 error answer.
    #[error("{}", oauth_message(*status, code, description.as_deref()))]
    OAuth {
        status: u16,
        code: String,
        description: Option<String>,
        retry_after: Option<Duration>,
    },
    /// An error status without an OAuth error body.
    #[error("the token endpoint answered HTTP {status} without an OAuth error body")]
    Http {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("cannot reach the token endpoint: {}", with_causes(.0))]
    Transport(Arc<reqwest::Error>),
    #[error("the token endpoint's answer is not usable: {0}")]
    InvalidResponse(String),
    #[error("{0:?} is not an http(s) URL")]
    InvalidEndpoint(String),
    #[error("cannot sign the client credentials: {0}")]
    Key(KeyError),
    #[error("cannot set up HTTPS: {0}")]
    Tls(String),
    #[error("the token request stopped before it finished")]
    Interrupted,
    #[error("a TokenSource must be used inside a Tokio runtime")]
    NoRuntime,
}

impl TokenError {
    /// The RFC 6749 error code, for an OAuth error answer.
    pub fn oauth_code(&self) -> Option<&str> {
        match self {
            Self::OAuth { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether asking again later may succeed: the server was unreachable, overloaded or
    /// failing. A refusal of the request itself (`invalid_client`, `invalid_scope`, any
    /// other 4xx) never is.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::OAuth { status, code, .. } => {
                code != "invalid_client"
                    && (matches!(code.as_str(), "temporarily_unavailable" | "server_error")
                        || *status == 429
                        || *status >= 500)
            }
            Self::Http { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            Self::Transport(err) => !err.is_builder() && !err.is_redirect(),
            Self::Interrupted => true,
            Self::InvalidResponse(_)
            | Self::InvalidEndpoint(_)
            | Self::Key(_)
            | Self::Tls(_)
            | Self::NoRuntime => false,
        }
    }

    /// How long the server asked us to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::OAuth { retry_after, .. } | Self::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A sentence for each RFC 6749 error code, then the server's own words.
fn oauth_message(status: u16, code: &str, description: Option<&str>) -> String {
    let meaning = match code {
        "invalid_client" => {
            "the server did not accept the client credentials (check the client id, the secret or key, and the auth style)"
        }
        "invalid_request" => "the server found the token request malformed",
        "invalid_scope" => "the scope asked for is not allowed for this client",
        "unauthorized_client" => "this client may not use the client credentials grant",
        "unsupported_grant_type" => "the server does not offer the client credentials grant here",
        "invalid_grant" => "the server refused the grant",
        "invalid_target" => "a requested resource is not an audience this client may ask for",
        "server_error" => "the server failed while handling the request",
        "temporarily_unavailable" => "the server is temporarily unable to issue tokens",
        "access_denied" => "the server denied the request",
        _ => "the server refused the token request",
    };
    match description {
        Some(text) if !text.is_empty() => {
            format!("{meaning}: {code} (HTTP {status}): {}", printable(text))
        }
        _ => format!("{meaning}: {code} (HTTP {status})"),
    }
}

/// An error and its causes, `: `-separated ("error sending request: ... Connection
/// refused").
fn with_causes(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Server-supplied text without control characters, so that it cannot drive a terminal.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(500).collect()
}

fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The response body, refusing one larger than any token response could be.
pub(crate) async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, TokenError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| TokenError::Transport(Arc::new(e.without_url())))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(TokenError::InvalidResponse(
                "the answer is larger than any token response".into(),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse_answer(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Token, TokenError> {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let oauth_error = json
        .as_ref()
        .filter(|v| v.get("error").is_some())
        .and_then(|v| serde_json::from_value::<ErrorResponse>(v.clone()).ok());
    if let Some(error) = oauth_error {
        return Err(TokenError::OAuth {
            status,
            code: printable(&error.error),
            description: error.error_description,
            retry_after,
        });
    }
    if !(200..300).contains(&status) {
        return Err(TokenError::Http {
            status,
            retry_after,
        });
    }
    let json = json.ok_or_else(|| TokenError::InvalidResponse("the body is not JSON".into()))?;
    Token::from_response(json)
}

/// An HTTP client for token endpoints and issuers: HTTPS through rustls with the
/// Mozilla roots, no redirects (a redirect would carry the credentials elsewhere), and
/// time limits.
pub fn http_client() -> Result<reqwest::Client, TokenError> {
    http_client_builder()
        .build()
        .map_err(|e| TokenError::Tls(e.to_string()))
}

/// [`http_client`]'s settings, to add to before building (a private CA, a proxy).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("tessera-client/", env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_into_tokens_and_errors() {
        let token = parse_answer(
            200,
            None,
            br#"{"access_token":"abc","expires_in":"900","token_type":"bearer"}"#,
        )
        .unwrap();
        assert_eq!(token.expires_in(), Some(900));
        assert!(!format!("{token:?}").contains("abc"));

        let err = parse_answer(
            401,
            None,
            br#"{"error":"invalid_client","error_description":"bad\u001b[31m secret"}"#,
        )
        .unwrap_err();
        assert_eq!(err.oauth_code(), Some("invalid_client"));
        assert!(!err.is_transient());
        let text = err.to_string();
        assert!(
            text.contains("client credentials") && !text.contains('\u{1b}'),
            "{text}"
        );

        let busy = parse_answer(503, Some(Duration::from_secs(2)), b"<html>").unwrap_err();
        assert!(busy.is_transient());
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(2)));
        let scope = parse_answer(400, None, br#"{"error":"invalid_scope"}"#).unwrap_err();
        assert!(!scope.is_transient());
        assert!(parse_answer(200, None, b"{}").is_err());
        assert!(parse_answer(200, None, br#"{"access_token":""}"#).is_err());
    }

    #[test]
    fn the_cache_key_ignores_scope_order_but_not_credentials() {
        let request = |credentials| {
            TokenRequest::parse("https://as.example/oauth2/token", credentials).unwrap()
        };
        let a = request(ClientCredentials::basic("svc", "one")).scope("write  read read");
        let b = request(ClientCredentials::basic("svc", "one")).scope("read write");
        assert_eq!(a.cache_key(), b.cache_key());
        assert_ne!(a.cache_key(), b.clone().scope("read").cache_key());
        let c = request(ClientCredentials::basic("svc", "two")).scope("read write");
        assert_ne!(a.cache_key(), c.cache_key());
        assert!(TokenRequest::parse("ftp://x/y", ClientCredentials::basic("a", "b")).is_err());
    }
}
