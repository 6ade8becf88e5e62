//! Client authentication (RFC 6749 §2.3): shared secrets, signed credentials (D1) and
//! `private_key_jwt` assertions (RFC 7523).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::client_keys::{AssertionAlg, ClientKey};
use crate::crypto::{CompactJws, SecretHasher};
use crate::directory::RealmEntry;
use crate::domain::{Application, AuthMethod, SecretHash};
use crate::error::OAuthError;
use crate::replay::ReplayCache;
use crate::shared::Shared;

/// The only `client_assertion_type` there is (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How far a client's clock may be ahead of ours for `iat` and `nbf`.
const CLOCK_SKEW_SECS: i64 = 60;

/// How the client tried to authenticate, as the HTTP edge read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Basic {
        client_id: String,
        secret: String,
    },
    /// `client_id` and `client_secret` in the body. The secret may also be a signed
    /// credential (D1), if the application allows those.
    Post {
        client_id: String,
        secret: String,
    },
    Assertion {
        client_id: Option<String>,
        assertion_type: String,
        assertion: String,
    },
}

impl ClientAuth {
    /// The client id the request names, if it names one outside an assertion.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Self::None => None,
            Self::Basic { client_id, .. } | Self::Post { client_id, .. } => Some(client_id),
            Self::Assertion { client_id, .. } => client_id.as_deref(),
        }
    }
}

/// Paths under a realm's base that an assertion's `aud` may name: the base itself (the
/// issuer) or one of the token endpoint's paths. draft-ietf-oauth-rfc7523bis asks for the
/// issuer alone; the token endpoint stays accepted because RFC 7523 §3 named it and
/// clients written against it still send it. Nothing else: an assertion made for one
/// endpoint or server must not be good at another.
const AUDIENCE_PATHS: [&str; 7] = [
    "",
    "/oauth2/token",
    "/oauth2/token/",
    "/oauth/token",
    "/passport/oauth/token",
    "/v2/token",
    "/protocol/openid-connect/token",
];

/// What an unknown client id's secret is compared with, so that a wrong secret costs
/// the same work whether or not the client exists: answer times must not tell which
/// client ids are real.
const DECOY_SECRETS: [SecretHash; 1] = [SecretHash {
    hash: [0; 32],
    expires_at: None,
}];

#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

/// A one-time value an authentication used up (a signed credential, an assertion's
/// `jti`), accepted by this node's memory and still to be claimed in a shared store.
struct OneTime {
    key: [u8; 32],
    expires_at: i64,
    replayed: &'static str,
}

/// Authenticates clients: checks their secrets, signed credentials and assertions
/// against the cached applications, and remembers the one-time values it accepted.
pub(crate) struct ClientAuthenticator {
    shared: Arc<Shared>,
    /// Client secrets are kept as keyed hashes under a key derived from the master key.
    secrets: SecretHasher,
    /// Signed credentials and assertion `jti`s already accepted.
    replay: ReplayCache,
}

impl ClientAuthenticator {
    pub(crate) fn new(shared: Arc<Shared>, secrets: SecretHasher) -> Self {
        Self {
            shared,
            secrets,
            replay: ReplayCache::default(),
        }
    }

    /// The keyed hash a new secret is stored as.
    pub(crate) fn hash_secret(&self, secret: &str) -> [u8; 32] {
        self.secrets.hash(secret)
    }

    /// Authenticates a client of `realm`. Failures of a shared secret all read the same,
    /// so that a caller cannot probe which client ids exist.
    ///
    /// Everything is decided from memory; only a one-time credential presented to a
    /// node whose store is shared costs one store round trip, so that no other node
    /// accepts it again. Shared secrets never touch the store.
    pub(crate) async fn authenticate(
        &self,
        realm: &RealmEntry,
        auth: &ClientAuth,
    ) -> Result<Arc<Application>, OAuthError> {
        let (app, once) = self.authenticate_locally(realm, auth)?;
        // The store remembers one-time values across restarts (and, when shared, across
        // nodes); memory has already refused the replays it knows of.
        if let Some(once) = once
            && !self
                .shared
                .store()
                .claim_once(&once.key, once.expires_at, self.shared.now_s())
                .await?
        {
            return Err(OAuthError::invalid_client(once.replayed));
        }
        Ok(app)
    }

    fn authenticate_locally(
        &self,
        realm: &RealmEntry,
        auth: &ClientAuth,
    ) -> Result<(Arc<Application>, Option<OneTime>), OAuthError> {
        match auth {
            ClientAuth::None => Err(OAuthError::invalid_client(
                "client authentication is required",
            )),
            ClientAuth::Basic { client_id, secret } => self
                .check_secret(realm, client_id, secret, AuthMethod::ClientSecretBasic)
                .map(|app| (app, None)),
            ClientAuth::Post { client_id, secret } => {
                if let Some(app) = self.shared.cached_application(&realm.realm.id, client_id)
                    && app.enabled
                    && app.allows(AuthMethod::SignedCredential)
                    && let Some((key, block)) = signed_credential_block(&app, secret)
                {
                    let once = self.check_signed_credential(realm, &app, key, &block)?;
                    return Ok((app, Some(once)));
                }
                self.check_secret(realm, client_id, secret, AuthMethod::ClientSecretPost)
                    .map(|app| (app, None))
            }
            ClientAuth::Assertion {
                client_id,
                assertion_type,
                assertion,
            } => self
                .check_assertion(realm, client_id.as_deref(), assertion_type, assertion)
                .map(|(app, once)| (app, Some(once))),
        }
    }

    /// A shared secret. An unknown, disabled or not-allowed client fails exactly as a
    /// wrong secret does, after the same keyed hash and comparison.
    fn check_secret(
        &self,
        realm: &RealmEntry,
        client_id: &str,
        secret: &str,
        method: AuthMethod,
    ) -> Result<Arc<Application>, OAuthError> {
        let app = self.shared.cached_application(&realm.realm.id, client_id);
        let hashes = app
            .as_deref()
            .map_or(&DECOY_SECRETS[..], |a| &a.secrets[..]);
        let matched = self.secrets.verify(secret, hashes, self.shared.now_s());
        match app {
            Some(app) if matched && app.enabled && app.allows(method) => Ok(app),
            _ => Err(OAuthError::invalid_client("client authentication failed")),
        }
    }

    fn secret_matches(&self, app: &Application, secret: &str) -> bool {
        self.secrets
            .verify(secret, &app.secrets, self.shared.now_s())
    }

    /// D1: the block recovers to `client_id:secret:timestamp_ms`, the id and secret
    /// match, the timestamp is inside the realm's window, and the block is new.
    fn check_signed_credential(
        &self,
        realm: &RealmEntry,
        app: &Application,
        key: &ClientKey,
        block: &[u8],
    ) -> Result<OneTime, OAuthError> {
        let refuse = |why: &'static str| OAuthError::invalid_client(why);
        let text = key
            .rsa_recover(block)
            .and_then(|plain| String::from_utf8(plain).ok())
            .ok_or_else(|| {
                refuse("the signed credential does not verify with the registered key")
            })?;
        let (id, rest) = text
            .split_once(':')
            .ok_or_else(|| refuse("the signed credential is not client_id:secret:timestamp"))?;
        let (secret, timestamp) = rest
            .rsplit_once(':')
            .ok_or_else(|| refuse("the signed credential is not client_id:secret:timestamp"))?;
        if id != app.client_id.as_str() {
            return Err(refuse("the signed credential names another client"));
        }
        if !self.secret_matches(app, secret) {
            return Err(refuse("client authentication failed"));
        }
        let stamp_ms: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| refuse("the signed credential's timestamp is not a number"))?;
        let now_ms = self.shared.now_ms();
        let window_ms = i64::try_from(realm.realm.credential_window_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        if now_ms.abs_diff(stamp_ms) > window_ms.unsigned_abs() {
            return Err(refuse(
                "the signed credential's timestamp is outside the allowed window",
            ));
        }
        let forget_at = stamp_ms.saturating_add(window_ms).div_euclid(1000) + 1;
        let mut memo = b"d1:".to_vec();
        memo.extend_from_slice(block);
        let once = OneTime {
            key: ReplayCache::key_of(&memo),
            expires_at: forget_at,
            replayed: "the signed credential was already used",
        };
        if !self
            .replay
            .claim_key(once.key, forget_at, self.shared.now_s())
        {
            return Err(refuse(once.replayed));
        }
        Ok(once)
    }

    /// RFC 7523 client authentication with a signed JWT.
    fn check_assertion(
        &self,
        realm: &RealmEntry,
        body_client_id: Option<&str>,
        assertion_type: &str,
        assertion: &str,
    ) -> Result<(Arc<Application>, OneTime), OAuthError> {
        let refuse = |why: &'static str| OAuthError::invalid_client(why);
        if assertion_type != JWT_BEARER {
            return Err(refuse(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        let jws =
            CompactJws::split(assertion).ok_or_else(|| refuse("client_assertion is not a JWS"))?;
        let alg = jws
            .header_str("alg")
            .and_then(AssertionAlg::parse)
            .ok_or_else(|| refuse("client_assertion alg must be RS256, ES256 or EdDSA"))?;
        let claims: AssertionClaims = jws
            .claims_bytes()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| refuse("client_assertion claims are malformed"))?;
        let client_id = body_client_id
            .or(claims.sub.as_deref())
            .ok_or_else(|| refuse("client_assertion has no sub"))?;
        if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
            return Err(refuse("client_assertion iss and sub must be the client_id"));
        }
        let app = self
            .shared
            .cached_application(&realm.realm.id, client_id)
            .filter(|app| app.enabled && app.allows(AuthMethod::PrivateKeyJwt))
            .ok_or_else(|| refuse("client authentication failed"))?;
        let kid = jws.header_str("kid");
        let verified = app
            .assertion_keys()
            .filter(|key| kid.is_none() || key.kid().is_none() || key.kid() == kid)
            .any(|key| key.verify(alg, jws.signing_input.as_bytes(), &jws.signature));
        if !verified {
            return Err(refuse("client_assertion signature does not verify"));
        }
        let now_s = self.shared.now_s();
        let exp = claims
            .exp
            .ok_or_else(|| refuse("client_assertion has no exp"))?;
        if exp <= now_s {
            return Err(refuse("client_assertion has expired"));
        }
        let max_life = i64::try_from(realm.realm.assertion_max_lifetime_secs).unwrap_or(3600);
        if exp - now_s > max_life + CLOCK_SKEW_SECS {
            return Err(refuse("client_assertion lives too long"));
        }
        if claims.nbf.is_some_and(|nbf| nbf > now_s + CLOCK_SKEW_SECS)
            || claims.iat.is_some_and(|iat| iat > now_s + CLOCK_SKEW_SECS)
        {
            return Err(refuse("client_assertion is not valid yet"));
        }
        if !self.audience_accepted(realm, claims.aud.as_ref()) {
            return Err(refuse(
                "client_assertion aud is not this server's token endpoint",
            ));
        }
        let jti = claims
            .jti
            .ok_or_else(|| refuse("client_assertion has no jti"))?;
        let memo = format!("jti:{}:{}:{jti}", realm.realm.id, app.client_id);
        let once = OneTime {
            key: ReplayCache::key_of(memo.as_bytes()),
            expires_at: exp + 1,
            replayed: "client_assertion jti was already used",
        };
        if !self.replay.claim_key(once.key, once.expires_at, now_s) {
            return Err(refuse(once.replayed));
        }
        Ok((app, once))
    }

    /// `aud` is one value, as a string or a one-element list, naming this realm's issuer
    /// or token endpoint. A list with anything more is refused: an assertion meant for
    /// several servers is good at each of them, so any of them could replay it here.
    fn audience_accepted(&self, realm: &RealmEntry, aud: Option<&serde_json::Value>) -> bool {
        let value = match aud {
            Some(serde_json::Value::String(one)) => one.as_str(),
            Some(serde_json::Value::Array(many)) => match many.as_slice() {
                [serde_json::Value::String(one)] => one.as_str(),
                _ => return false,
            },
            _ => return false,
        };
        let server = self.shared.server_url().as_str();
        let name = realm.realm.name.as_str();
        let mut bases = vec![realm.issuer.clone()];
        bases.push(format!("{server}/realms/{name}"));
        bases.push(format!("{server}/auth/realms/{name}"));
        if realm.realm.name.is_default() {
            bases.push(server.to_owned());
        }
        bases.iter().any(|base| {
            value
                .strip_prefix(base.as_str())
                .is_some_and(|path| AUDIENCE_PATHS.contains(&path))
        })
    }
}

/// The application's RSA key and the block of a signed credential, if `secret` is one
/// for that key: base64 of exactly the modulus length. Clients that paste the credential
/// into a form unencoded turn its `+` into spaces; those are put back.
fn signed_credential_block<'a>(
    app: &'a Application,
    secret: &str,
) -> Option<(&'a ClientKey, Vec<u8>)> {
    let key = app.public_key.as_ref()?.key();
    let modulus_len = usize::try_from(key.rsa_bits()?.div_ceil(8)).ok()?;
    if secret.len() < modulus_len {
        return None;
    }
    let text = secret.trim().replace(' ', "+");
    let block = STANDARD.decode(text.as_bytes()).ok()?;
    (block.len() == modulus_len).then_some((key, block))
}
