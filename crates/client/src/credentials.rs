//! Who the client is and how it proves it (RFC 6749 §2.3): a shared secret sent by Basic,
//! in a form or in a JSON body, a signed credential (dialect D1), or a `private_key_jwt`
//! assertion (RFC 7523).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::keys::{KeyError, PrivateKey};
use crate::secret::Secret;

/// The `client_assertion_type` of RFC 7523 §2.2.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a `private_key_jwt` assertion lives: long enough for one request.
const ASSERTION_LIFETIME_SECS: u64 = 60;

/// The ways of sending client credentials that `tessera token --auth` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthStyle {
    /// `Authorization: Basic` with the form-encoded id and secret (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
    /// The same fields in a JSON body.
    Json,
    /// `client_secret` = base64 of an RSA PKCS#1 v1.5 type-1 block of
    /// `client_id:secret:timestamp_ms` made with the private key (dialect D1).
    SignedCredential,
    /// A JWT signed with the private key (RFC 7523).
    PrivateKeyJwt,
}

impl AuthStyle {
    pub const NAMES: [&'static str; 5] = [
        "basic",
        "post",
        "json",
        "signed-credential",
        "private-key-jwt",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Post => "post",
            Self::Json => "json",
            Self::SignedCredential => "signed-credential",
            Self::PrivateKeyJwt => "private-key-jwt",
        }
    }
}

impl fmt::Display for AuthStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthStyle {
    type Err = CredentialsError;

    /// The CLI's names, and the RFC 8414 names of the same methods.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "basic" | "client_secret_basic" => Ok(Self::Basic),
            "post" | "client_secret_post" => Ok(Self::Post),
            "json" => Ok(Self::Json),
            "signed-credential" | "signed_credential" => Ok(Self::SignedCredential),
            "private-key-jwt" | "private_key_jwt" => Ok(Self::PrivateKeyJwt),
            _ => Err(CredentialsError::UnknownStyle(text.to_owned())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("the client id must not be empty")]
    EmptyClientId,
    #[error("auth style {0} needs a client secret")]
    NeedsSecret(AuthStyle),
    #[error("auth style {0} needs a private key")]
    NeedsKey(AuthStyle),
    #[error("signed credentials need an RSA private key")]
    NeedsRsaKey,
    #[error(
        "unknown auth style {0:?} (one of basic, post, json, signed-credential, private-key-jwt)"
    )]
    UnknownStyle(String),
}

/// A client id with what proves it. `Debug` shows the id and the style, never the
/// secret or the key.
#[derive(Clone)]
pub struct ClientCredentials {
    client_id: String,
    auth: Auth,
    fingerprint: [u8; 32],
}

#[derive(Clone)]
enum Auth {
    Basic(Secret),
    Post(Secret),
    Json(Secret),
    SignedCredential {
        secret: Secret,
        key: Arc<PrivateKey>,
    },
    PrivateKeyJwt {
        key: Arc<PrivateKey>,
        key_id: Option<String>,
    },
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("style", &self.style())
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// Credentials of `style` from what the caller has: a secret, a key or both.
    pub fn new(
        client_id: impl Into<String>,
        style: AuthStyle,
        secret: Option<Secret>,
        key: Option<PrivateKey>,
    ) -> Result<Self, CredentialsError> {
        let client_id = client_id.into();
        if client_id.is_empty() {
            return Err(CredentialsError::EmptyClientId);
        }
        let secret = || {
            secret
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or(CredentialsError::NeedsSecret(style))
        };
        let auth = match style {
            AuthStyle::Basic => Auth::Basic(secret()?),
            AuthStyle::Post => Auth::Post(secret()?),
            AuthStyle::Json => Auth::Json(secret()?),
            AuthStyle::SignedCredential => {
                let key = key.ok_or(CredentialsError::NeedsKey(style))?;
                if !key.is_rsa() {
                    return Err(CredentialsError::NeedsRsaKey);
                }
                Auth::SignedCredential {
                    secret: secret()?,
                    key: Arc::new(key),
                }
            }
            AuthStyle::PrivateKeyJwt => Auth::PrivateKeyJwt {
                key: Arc::new(key.ok_or(CredentialsError::NeedsKey(style))?),
                key_id: None,
            },
        };
        Ok(Self::assemble(client_id, auth))
    }

    /// `client_secret_basic`.
    pub fn basic(client_id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self::assemble(client_id.into(), Auth::Basic(secret.into()))
    }

    /// `client_secret_post`.
    pub fn post(client_id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self::assemble(client_id.into(), Auth::Post(secret.into()))
    }

    /// The secret in a JSON body.
    pub fn json(client_id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self::assemble(client_id.into(), Auth::Json(secret.into()))
    }

    /// `private_key_jwt` with `key`.
    pub fn private_key_jwt(client_id: impl Into<String>, key: PrivateKey) -> Self {
        Self::assemble(
            client_id.into(),
            Auth::PrivateKeyJwt {
                key: Arc::new(key),
                key_id: None,
            },
        )
    }

    /// Names the key in the assertion header (`kid`), for servers that hold several.
    pub fn with_key_id(mut self, kid: impl Into<String>) -> Self {
        if let Auth::PrivateKeyJwt { key_id, .. } = &mut self.auth {
            *key_id = Some(kid.into());
        }
        self
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn style(&self) -> AuthStyle {
        match self.auth {
            Auth::Basic(_) => AuthStyle::Basic,
            Auth::Post(_) => AuthStyle::Post,
            Auth::Json(_) => AuthStyle::Json,
            Auth::SignedCredential { .. } => AuthStyle::SignedCredential,
            Auth::PrivateKeyJwt { .. } => AuthStyle::PrivateKeyJwt,
        }
    }

    /// A one-way digest of the client id, the style and the secret or key, so that a
    /// cache can tell whether a token was obtained with these same credentials.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    fn assemble(client_id: String, auth: Auth) -> Self {
        let mut credentials = Self {
            client_id,
            auth,
            fingerprint: [0; 32],
        };
        credentials.fingerprint = credentials.digest();
        credentials
    }

    fn digest(&self) -> [u8; 32] {
        let mut material =
            format!("tessera-client-v1\0{}\0{}\0", self.client_id, self.style()).into_bytes();
        match &self.auth {
            Auth::Basic(secret) | Auth::Post(secret) | Auth::Json(secret) => {
                material.extend_from_slice(secret.expose().as_bytes());
            }
            Auth::SignedCredential { secret, key } => {
                material.extend_from_slice(secret.expose().as_bytes());
                material.push(0);
                material.extend_from_slice(&key.public_fingerprint());
            }
            Auth::PrivateKeyJwt { key, .. } => {
                material.extend_from_slice(&key.public_fingerprint());
            }
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, &material).as_ref());
        out
    }

    /// The request parts that authenticate this client to `audience`, around the
    /// endpoint's own `params`. `audience` is what an assertion names as `aud`: the
    /// token endpoint's URL or the server's issuer (RFC 7523 §3; the issuer alone for
    /// any other endpoint, as draft-ietf-oauth-rfc7523bis asks). A signed credential or
    /// an assertion is made anew on every call: the server accepts each only once.
    pub(crate) fn authorize(
        &self,
        audience: &str,
        params: Vec<(String, String)>,
    ) -> Result<AuthorizedBody, KeyError> {
        let mut params = params;
        let id = self.client_id.clone();
        let (basic, json) = match &self.auth {
            Auth::Basic(secret) => {
                // RFC 6749 §2.3.1: each part form-encoded before they are joined.
                let pair = format!(
                    "{}:{}",
                    form_encode(&self.client_id),
                    form_encode(secret.expose())
                );
                (
                    Some(Secret::new(format!("Basic {}", STANDARD.encode(pair)))),
                    false,
                )
            }
            Auth::Post(secret) => {
                params.push(("client_id".into(), id));
                params.push(("client_secret".into(), secret.expose().to_owned()));
                (None, false)
            }
            Auth::Json(secret) => {
                params.push(("client_id".into(), id));
                params.push(("client_secret".into(), secret.expose().to_owned()));
                (None, true)
            }
            Auth::SignedCredential { secret, key } => {
                let text = format!("{}:{}:{}", self.client_id, secret.expose(), now_ms());
                let block = key.rsa_private_encrypt(text.as_bytes())?;
                params.push(("client_id".into(), id));
                params.push(("client_secret".into(), STANDARD.encode(block)));
                (None, false)
            }
            Auth::PrivateKeyJwt { key, key_id } => {
                let assertion = assertion(&self.client_id, audience, key, key_id.as_deref())?;
                params.push(("client_id".into(), id));
                params.push(("client_assertion_type".into(), JWT_BEARER.into()));
                params.push(("client_assertion".into(), assertion));
                (None, false)
            }
        };
        Ok(AuthorizedBody {
            authorization: basic,
            params,
            json,
        })
    }
}

/// A request body with the client's credentials in it (or in `authorization`).
pub(crate) struct AuthorizedBody {
    /// The `Authorization` header value, for Basic.
    pub authorization: Option<Secret>,
    pub params: Vec<(String, String)>,
    /// Send `params` as a JSON object rather than a form.
    pub json: bool,
}

impl AuthorizedBody {
    /// Adds the body and the header to `request`.
    pub fn apply(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let mut request = if self.json {
            let object: serde_json::Map<String, serde_json::Value> = self
                .params
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            request.json(&object)
        } else {
            request.form(&self.params)
        };
        if let Some(value) = self.authorization
            && let Ok(mut header) = http::HeaderValue::from_str(value.expose())
        {
            header.set_sensitive(true);
            request = request.header(http::header::AUTHORIZATION, header);
        }
        request
    }
}

/// An RFC 7523 client assertion: `iss` = `sub` = the client, `aud` = the server, a
/// random `jti` and a short life.
fn assertion(
    client_id: &str,
    audience: &str,
    key: &PrivateKey,
    key_id: Option<&str>,
) -> Result<String, KeyError> {
    let mut header = serde_json::json!({"alg": key.jws_alg().as_str(), "typ": "JWT"});
    if let (Some(kid), Some(object)) = (key_id, header.as_object_mut()) {
        object.insert("kid".into(), kid.into());
    }
    let now = now_ms() / 1000;
    let mut jti = [0u8; 16];
    aws_lc_rs::rand::fill(&mut jti).map_err(|_| KeyError::Signing)?;
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": URL_SAFE_NO_PAD.encode(jti),
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign_jws(input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `application/x-www-form-urlencoded` escaping of one value, for the Basic header.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

fn form_encode(text: &str) -> String {
    utf8_percent_encode(text, FORM).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params_of(body: &AuthorizedBody) -> std::collections::BTreeMap<&str, &str> {
        body.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn styles_parse_by_cli_and_rfc_names() {
        for name in AuthStyle::NAMES {
            assert_eq!(name.parse::<AuthStyle>().unwrap().as_str(), name);
        }
        assert_eq!(
            "client_secret_basic".parse::<AuthStyle>().unwrap(),
            AuthStyle::Basic
        );
        assert!("magic".parse::<AuthStyle>().is_err());
    }

    #[test]
    fn each_secret_style_puts_the_secret_where_it_belongs() {
        let basic = ClientCredentials::basic("id 1", "s:ecret")
            .authorize("https://as/token", vec![("grant_type".into(), "x".into())])
            .unwrap();
        assert_eq!(
            basic.authorization.as_ref().unwrap().expose(),
            format!("Basic {}", STANDARD.encode("id%201:s%3Aecret"))
        );
        assert_eq!(params_of(&basic).len(), 1);
        let post = ClientCredentials::post("id", "sec")
            .authorize("https://as/token", Vec::new())
            .unwrap();
        assert!(post.authorization.is_none() && !post.json);
        assert_eq!(params_of(&post)["client_secret"], "sec");
        let json = ClientCredentials::json("id", "sec")
            .authorize("https://as/token", Vec::new())
            .unwrap();
        assert!(json.json);
    }

    #[test]
    fn new_refuses_what_a_style_cannot_work_with() {
        let none = ClientCredentials::new("id", AuthStyle::Basic, None, None);
        assert_eq!(
            none.unwrap_err(),
            CredentialsError::NeedsSecret(AuthStyle::Basic)
        );
        let empty = ClientCredentials::new("", AuthStyle::Basic, Some("s".into()), None);
        assert_eq!(empty.unwrap_err(), CredentialsError::EmptyClientId);
        let keyless = ClientCredentials::new("id", AuthStyle::PrivateKeyJwt, None, None);
        assert_eq!(
            keyless.unwrap_err(),
            CredentialsError::NeedsKey(AuthStyle::PrivateKeyJwt)
        );
    }

    #[test]
    fn debug_and_fingerprint_hide_the_secret() {
        let creds = ClientCredentials::basic("svc", "very-secret-value");
        let shown = format!("{creds:?}");
        assert!(shown.contains("svc") && !shown.contains("very-secret-value"));
        assert_ne!(
            creds.fingerprint(),
            ClientCredentials::basic("svc", "other").fingerprint()
        );
        assert_ne!(
            creds.fingerprint(),
            ClientCredentials::post("svc", "very-secret-value").fingerprint()
        );
    }
}
