//! The resource-server side: checking the bearer tokens an API receives.
//!
//! A JWT access token (RFC 9068) is checked locally: its signature against the issuer's
//! JWKS (found through the issuer's metadata and cached), its algorithm against a pinned
//! list, its `typ`, `exp`, `nbf`, `iss` and `aud`. Any other token is checked by
//! introspection (RFC 7662), whose answers are cached no longer than the token lives and
//! no longer than the configured revocation delay. [`BearerAuthLayer`] puts this in
//! front of any tower service (axum, tonic, hyper) and hands the caller's identity to
//! handlers as a [`Principal`] request extension.

mod introspection;
mod jwks;
mod layer;

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{AlgorithmFamily, Validation};
use serde::Deserialize;
use tokio::sync::OnceCell;

pub use self::layer::{BearerAuth, BearerAuthLayer};
use crate::credentials::ClientCredentials;
use crate::token::{http_client, read_limited};
pub use jsonwebtoken::Algorithm;

/// Who called, as a checked token says. Handlers find it in the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    pub subject: Option<String>,
    pub issuer: String,
    pub audiences: Vec<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// The token's `jti`.
    pub token_id: Option<String>,
    pub checked_by: CheckedBy,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn has_scopes<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> bool {
        scopes.into_iter().all(|scope| self.has_scope(scope))
    }
}

/// How a token was found good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckedBy {
    /// Its signature, with a key from the issuer's JWKS.
    Signature,
    /// The issuer's introspection endpoint.
    Introspection,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The token is not good: 401 `invalid_token`. The reason is for logs, not for the
    /// caller.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// The token could not be checked (the issuer is unreachable or misconfigured):
    /// 503, and the caller may try again.
    #[error("cannot check the token: {0}")]
    Unavailable(String),
}

/// Errors in a [`TokenVerifierBuilder`]'s settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifierConfigError {
    #[error("{0:?} is not an http(s) URL")]
    InvalidUrl(String),
    #[error("at least one audience is required")]
    NoAudience,
    #[error("at least one algorithm is required, and none may be HMAC or none")]
    BadAlgorithms,
    #[error("cannot set up HTTPS: {0}")]
    Http(String),
}

/// Checks bearer tokens for one issuer and the audiences of one API. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<VerifierInner>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .field("algorithms", &self.inner.algorithms)
            .finish_non_exhaustive()
    }
}

struct VerifierInner {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    http: reqwest::Client,
    leeway: Duration,
    require_at_jwt_typ: bool,
    introspect_jwts: bool,
    endpoints: OnceCell<Endpoints>,
    configured_jwks_uri: Option<String>,
    configured_introspection_endpoint: Option<String>,
    keys: jwks::KeyCache,
    introspection: Option<introspection::Introspector>,
}

/// Where the issuer's keys and introspection live.
#[derive(Debug, Clone)]
struct Endpoints {
    jwks_uri: Option<String>,
    introspection_endpoint: Option<String>,
}

/// Settings of a [`TokenVerifier`].
#[derive(Debug)]
pub struct TokenVerifierBuilder {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    http: Option<reqwest::Client>,
    leeway: Duration,
    require_at_jwt_typ: bool,
    introspect_jwts: bool,
    jwks_uri: Option<String>,
    introspection_endpoint: Option<String>,
    introspection_credentials: Option<ClientCredentials>,
    jwks_refetch_interval: Duration,
    jwks_max_age: Duration,
    revocation_delay: Duration,
    introspection_cache_capacity: usize,
}

impl TokenVerifier {
    /// Settings for tokens of `issuer` (its exact `iss` value) meant for `audience`.
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> TokenVerifierBuilder {
        TokenVerifierBuilder {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            algorithms: vec![Algorithm::ES256],
            http: None,
            leeway: Duration::ZERO,
            require_at_jwt_typ: true,
            introspect_jwts: false,
            jwks_uri: None,
            introspection_endpoint: None,
            introspection_credentials: None,
            jwks_refetch_interval: Duration::from_secs(30),
            jwks_max_age: Duration::from_secs(3600),
            revocation_delay: Duration::from_secs(10),
            introspection_cache_capacity: 10_000,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Checks `token` and says who it belongs to.
    pub async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        if token.is_empty() || token.len() > 16 * 1024 {
            return Err(VerifyError::Invalid("empty or oversized token"));
        }
        if looks_like_jwt(token) {
            let principal = self.verify_jwt(token).await?;
            if self.inner.introspect_jwts && self.inner.introspection.is_some() {
                // The signature says who; introspection says whether it was revoked.
                return self.introspect(token).await;
            }
            return Ok(principal);
        }
        self.introspect(token).await
    }

    async fn endpoints(&self) -> Result<&Endpoints, VerifyError> {
        let inner = &self.inner;
        inner
            .endpoints
            .get_or_try_init(|| async {
                let needs_discovery = inner.configured_jwks_uri.is_none()
                    || (inner.introspection.is_some()
                        && inner.configured_introspection_endpoint.is_none());
                let discovered = if needs_discovery {
                    Some(discover(&inner.http, &inner.issuer).await?)
                } else {
                    None
                };
                Ok(Endpoints {
                    jwks_uri: inner
                        .configured_jwks_uri
                        .clone()
                        .or_else(|| discovered.as_ref().and_then(|d| d.jwks_uri.clone())),
                    introspection_endpoint: inner
                        .configured_introspection_endpoint
                        .clone()
                        .or_else(|| discovered.and_then(|d| d.introspection_endpoint)),
                })
            })
            .await
    }

    async fn verify_jwt(&self, token: &str) -> Result<Principal, VerifyError> {
        let inner = &self.inner;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| VerifyError::Invalid("malformed JWT header or algorithm"))?;
        if !inner.algorithms.contains(&header.alg) {
            return Err(VerifyError::Invalid("algorithm not allowed"));
        }
        if inner.require_at_jwt_typ {
            let typ = header.typ.as_deref().map(str::to_ascii_lowercase);
            if !matches!(typ.as_deref(), Some("at+jwt" | "application/at+jwt")) {
                return Err(VerifyError::Invalid(
                    "not an access token (typ is not at+jwt)",
                ));
            }
        }
        let jwks_uri =
            self.endpoints().await?.jwks_uri.clone().ok_or_else(|| {
                VerifyError::Unavailable("the issuer publishes no jwks_uri".into())
            })?;
        let keys = inner
            .keys
            .candidates(&inner.http, &jwks_uri, header.kid.as_deref(), header.alg)
            .await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&inner.issuer]);
        validation.set_audience(&inner.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = inner.leeway.as_secs();
        validation.validate_nbf = true;
        let mut refusal = VerifyError::Invalid("signature does not verify");
        for key in &keys {
            match jsonwebtoken::decode::<AccessClaims>(token, key, &validation) {
                Ok(data) => return data.claims.into_principal(),
                Err(err) if matches!(err.kind(), ErrorKind::InvalidSignature) => {}
                Err(err) => {
                    refusal = VerifyError::Invalid(reason(err.kind()));
                    break;
                }
            }
        }
        Err(refusal)
    }

    async fn introspect(&self, token: &str) -> Result<Principal, VerifyError> {
        let inner = &self.inner;
        let introspector = inner.introspection.as_ref().ok_or(VerifyError::Invalid(
            "not a JWT, and no introspection credentials are configured",
        ))?;
        let endpoint = self
            .endpoints()
            .await?
            .introspection_endpoint
            .clone()
            .ok_or_else(|| {
                VerifyError::Unavailable("the issuer publishes no introspection_endpoint".into())
            })?;
        introspector
            .check(
                &inner.http,
                &endpoint,
                token,
                &inner.issuer,
                &inner.audiences,
            )
            .await
    }
}

impl TokenVerifierBuilder {
    /// Another accepted audience.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The signing algorithms accepted (default ES256 only). HMAC algorithms are refused
    /// by [`Self::build`]; `none` cannot be named.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Clock skew allowed on `exp` and `nbf` (default none: an expired token is refused).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Accept JWTs whose `typ` is not `at+jwt` (RFC 9068 §4 asks to refuse them;
    /// some servers send `JWT`).
    pub fn accept_any_jwt_typ(mut self) -> Self {
        self.require_at_jwt_typ = false;
        self
    }

    /// The issuer's JWKS, instead of the one its metadata names.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// The issuer's introspection endpoint, instead of the one its metadata names.
    pub fn introspection_endpoint(mut self, uri: impl Into<String>) -> Self {
        self.introspection_endpoint = Some(uri.into());
        self
    }

    /// Check opaque tokens by introspection, authenticating as this client.
    pub fn introspection(mut self, credentials: ClientCredentials) -> Self {
        self.introspection_credentials = Some(credentials);
        self
    }

    /// Introspect JWTs too after their signature checks, so that a revoked JWT is
    /// refused within the revocation delay (costs one request per token and delay).
    pub fn introspect_jwts(mut self, on: bool) -> Self {
        self.introspect_jwts = on;
        self
    }

    /// An unknown `kid` makes the JWKS be fetched again at most this often (default 30 s).
    pub fn jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.jwks_refetch_interval = interval;
        self
    }

    /// The JWKS is fetched again when it is older than this (default 1 h).
    pub fn jwks_max_age(mut self, age: Duration) -> Self {
        self.jwks_max_age = age;
        self
    }

    /// How long an introspection answer is reused at most (default 10 s): a revoked
    /// token stops working within this delay.
    pub fn revocation_delay(mut self, delay: Duration) -> Self {
        self.revocation_delay = delay;
        self
    }

    /// How many introspection answers are kept at most (default 10 000).
    pub fn introspection_cache_capacity(mut self, capacity: usize) -> Self {
        self.introspection_cache_capacity = capacity;
        self
    }

    pub fn build(self) -> Result<TokenVerifier, VerifierConfigError> {
        check_url(&self.issuer)?;
        for uri in self.jwks_uri.iter().chain(&self.introspection_endpoint) {
            check_url(uri)?;
        }
        if self.audiences.iter().all(String::is_empty) {
            return Err(VerifierConfigError::NoAudience);
        }
        if self.algorithms.is_empty()
            || self
                .algorithms
                .iter()
                .any(|a| a.family() == AlgorithmFamily::Hmac)
        {
            return Err(VerifierConfigError::BadAlgorithms);
        }
        let http = match self.http {
            Some(http) => http,
            None => http_client().map_err(|e| VerifierConfigError::Http(e.to_string()))?,
        };
        Ok(TokenVerifier {
            inner: Arc::new(VerifierInner {
                issuer: self.issuer,
                audiences: self
                    .audiences
                    .into_iter()
                    .filter(|a| !a.is_empty())
                    .collect(),
                algorithms: self.algorithms,
                http,
                leeway: self.leeway,
                require_at_jwt_typ: self.require_at_jwt_typ,
                introspect_jwts: self.introspect_jwts,
                endpoints: OnceCell::new(),
                configured_jwks_uri: self.jwks_uri,
                configured_introspection_endpoint: self.introspection_endpoint,
                keys: jwks::KeyCache::new(self.jwks_refetch_interval, self.jwks_max_age),
                introspection: self.introspection_credentials.map(|credentials| {
                    introspection::Introspector::new(
                        credentials,
                        self.revocation_delay,
                        self.introspection_cache_capacity,
                    )
                }),
            }),
        })
    }
}

fn check_url(text: &str) -> Result<(), VerifierConfigError> {
    reqwest::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .map(|_| ())
        .ok_or_else(|| VerifierConfigError::InvalidUrl(text.to_owned()))
}

/// Three base64url parts whose first decodes to a JSON object: a JWS. Anything else is
/// an opaque token.
fn looks_like_jwt(token: &str) -> bool {
    use base64::Engine;
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|value| value.is_object())
}

fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not valid yet (nbf)",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::InvalidAlgorithm => "algorithm does not match the key",
        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
        ErrorKind::InvalidSignature => "signature does not verify",
        _ => "malformed token",
    }
}

/// The claims of an RFC 9068 access token that a resource server reads.
#[derive(Deserialize)]
struct AccessClaims {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    aud: OneOrMany,
    exp: i64,
    #[serde(default)]
    client_id: Option<String>,
    /// Keycloak names the client `azp`.
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    jti: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

impl AccessClaims {
    fn into_principal(self) -> Result<Principal, VerifyError> {
        let client_id = self
            .client_id
            .or(self.azp)
            .ok_or(VerifyError::Invalid("no client_id claim"))?;
        Ok(Principal {
            client_id,
            scopes: split_scope(self.scope.as_deref()),
            subject: self.sub,
            issuer: self.iss,
            audiences: self.aud.into_vec(),
            expires_at: self.exp,
            token_id: self.jti,
            checked_by: CheckedBy::Signature,
        })
    }
}

fn split_scope(scope: Option<&str>) -> Vec<String> {
    scope
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The issuer's metadata (RFC 8414), at the path-inserted well-known URL first, then
/// appended to the issuer (as OpenID Connect does). The document must name the same
/// issuer (§3.3).
async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, VerifyError> {
    #[derive(Deserialize)]
    struct Metadata {
        issuer: String,
        #[serde(default)]
        jwks_uri: Option<String>,
        #[serde(default)]
        introspection_endpoint: Option<String>,
    }
    let unavailable = |why: String| VerifyError::Unavailable(why);
    let url = reqwest::Url::parse(issuer).map_err(|e| unavailable(e.to_string()))?;
    let path = url.path().trim_end_matches('/');
    let origin = url.origin().ascii_serialization();
    let base = issuer.trim_end_matches('/');
    let candidates = [
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{base}/.well-known/oauth-authorization-server"),
        format!("{base}/.well-known/openid-configuration"),
    ];
    let mut last = String::from("no metadata URL answered");
    for candidate in candidates {
        let response = match http.get(&candidate).send().await {
            Ok(response) => response,
            Err(err) => {
                last = format!("cannot fetch the issuer's metadata: {}", err.without_url());
                continue;
            }
        };
        if !response.status().is_success() {
            last = format!("{candidate} answered {}", response.status());
            continue;
        }
        let body = read_limited(response)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("{candidate} is not metadata: {e}")))?;
        if metadata.issuer != issuer {
            return Err(unavailable(format!(
                "the metadata at {candidate} names issuer {:?}, not {issuer:?}",
                metadata.issuer
            )));
        }
        return Ok(Endpoints {
            jwks_uri: metadata.jwks_uri,
            introspection_endpoint: metadata.introspection_endpoint,
        });
    }
    Err(unavailable(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_are_told_from_opaque_tokens() {
        assert!(looks_like_jwt("eyJhbGciOiJFUzI1NiJ9.e30.sig"));
        assert!(!looks_like_jwt("tsr_at_abcdef"));
        assert!(!looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("eyJhbGciOiJFUzI1NiJ9.e30.sig.extra"));
    }

    #[test]
    fn the_builder_refuses_hmac_and_missing_settings() {
        let hmac = TokenVerifier::builder("https://as.example", "api")
            .algorithms([Algorithm::HS256])
            .build();
        assert_eq!(hmac.unwrap_err(), VerifierConfigError::BadAlgorithms);
        let none = TokenVerifier::builder("https://as.example", "api")
            .algorithms([])
            .build();
        assert_eq!(none.unwrap_err(), VerifierConfigError::BadAlgorithms);
        let url = TokenVerifier::builder("as.example", "api").build();
        assert!(matches!(url, Err(VerifierConfigError::InvalidUrl(_))));
        let aud = TokenVerifier::builder("https://as.example", "").build();
        assert_eq!(aud.unwrap_err(), VerifierConfigError::NoAudience);
    }

    #[test]
    fn principals_answer_scope_questions() {
        let claims: AccessClaims = serde_json::from_value(serde_json::json!({
            "iss": "https://as", "aud": "api", "exp": 1, "client_id": "c", "scope": "read  write"
        }))
        .unwrap();
        let principal = claims.into_principal().unwrap();
        assert!(principal.has_scopes(["read", "write"]));
        assert!(!principal.has_scope("admin"));
        assert_eq!(principal.audiences, vec!["api".to_owned()]);
    }
}
