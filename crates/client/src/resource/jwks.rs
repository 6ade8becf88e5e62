//! The issuer's signing keys, fetched once and kept. A token naming a `kid` the set
//! lacks (the issuer rotated its keys) makes the set be fetched again, at most once per
//! interval, so that tokens with made-up key ids cannot drive traffic to the issuer.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use tokio::time::Instant;

use super::VerifyError;
use crate::token::read_limited;

/// After a failed first fetch, the next one waits this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

pub(crate) struct KeyCache {
    refetch_interval: Duration,
    max_age: Duration,
    state: RwLock<KeySet>,
    /// Held while a fetch is in flight: one at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct KeySet {
    keys: Arc<Vec<VerifyingKey>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    /// Counts fetch attempts, so that a task that waited for another's fetch does not
    /// fetch again.
    generation: u64,
}

#[derive(Clone)]
struct VerifyingKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    family: AlgorithmFamily,
    key: DecodingKey,
}

impl KeyCache {
    pub fn new(refetch_interval: Duration, max_age: Duration) -> Self {
        Self {
            refetch_interval,
            max_age,
            state: RwLock::new(KeySet::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The keys that may have signed a token with this `kid` and `alg`.
    pub async fn candidates(
        &self,
        http: &reqwest::Client,
        jwks_uri: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<DecodingKey>, VerifyError> {
        let (generation, fetched_at, last_attempt) = self.snapshot();
        let now = Instant::now();
        let stale = fetched_at.is_none_or(|at| now.duration_since(at) > self.max_age);
        if stale {
            if fetched_at.is_none()
                && last_attempt.is_some_and(|at| now.duration_since(at) < RETRY_AFTER_FAILURE)
            {
                return Err(VerifyError::Unavailable(
                    "the issuer's JWKS could not be fetched".into(),
                ));
            }
            self.refresh(http, jwks_uri, generation).await?;
        }
        let found = self.matching(kid, alg);
        if !found.is_empty() {
            return Ok(found);
        }
        let (generation, _, last_attempt) = self.snapshot();
        let may_refetch = last_attempt
            .is_none_or(|at| Instant::now().duration_since(at) >= self.refetch_interval);
        if may_refetch {
            tracing::debug!(?kid, "no key for the token in the JWKS; fetching it again");
            self.refresh(http, jwks_uri, generation).await?;
            let found = self.matching(kid, alg);
            if !found.is_empty() {
                return Ok(found);
            }
        }
        Err(VerifyError::Invalid(
            "no key of the issuer matches the token",
        ))
    }

    fn snapshot(&self) -> (u64, Option<Instant>, Option<Instant>) {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        (state.generation, state.fetched_at, state.last_attempt)
    }

    fn matching(&self, kid: Option<&str>, alg: Algorithm) -> Vec<DecodingKey> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state
            .keys
            .iter()
            // A key without a `kid` may have signed any token; one with a `kid` only
            // the tokens that name it.
            .filter(|key| kid.is_none() || key.kid.is_none() || key.kid.as_deref() == kid)
            .filter(|key| key.family == alg.family() && key.alg.is_none_or(|a| a == alg))
            .map(|key| key.key.clone())
            .collect()
    }

    /// Fetches the set unless another task did since `seen` generation. Fails only when
    /// there is no set to fall back on.
    async fn refresh(
        &self,
        http: &reqwest::Client,
        jwks_uri: &str,
        seen: u64,
    ) -> Result<(), VerifyError> {
        let _one_at_a_time = self.fetching.lock().await;
        if self.snapshot().0 != seen {
            return Ok(());
        }
        let fetched = fetch(http, jwks_uri).await;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        state.generation += 1;
        state.last_attempt = Some(now);
        match fetched {
            Ok(keys) => {
                state.keys = Arc::new(keys);
                state.fetched_at = Some(now);
                Ok(())
            }
            Err(why) => {
                tracing::warn!(jwks_uri, error = %why, "cannot fetch the issuer's JWKS");
                if state.fetched_at.is_some() {
                    Ok(())
                } else {
                    Err(VerifyError::Unavailable(why))
                }
            }
        }
    }
}

/// The signing keys of a JWKS document. Keys of unknown types, keys for encryption and
/// symmetric keys are skipped.
async fn fetch(http: &reqwest::Client, jwks_uri: &str) -> Result<Vec<VerifyingKey>, String> {
    let response = http
        .get(jwks_uri)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("{jwks_uri} answered {}", response.status()));
    }
    let body = read_limited(response).await.map_err(|e| e.to_string())?;
    let document: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    let listed = document
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("the JWKS has no keys array")?;
    Ok(listed.iter().filter_map(parse_key).collect())
}

fn parse_key(value: &serde_json::Value) -> Option<VerifyingKey> {
    let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        Some(alg) => Some(Algorithm::try_from(alg).ok()?),
        None => None,
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    let family = key.family();
    if family == AlgorithmFamily::Hmac {
        return None;
    }
    Some(VerifyingKey {
        kid: jwk.common.key_id,
        alg,
        family,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_encryption_keys_are_skipped() {
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let key = parse_key(&ec).unwrap();
        assert_eq!(key.kid.as_deref(), Some("k1"));
        assert_eq!(key.family, AlgorithmFamily::Ec);
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"});
        assert!(parse_key(&oct).is_none());
        let mut enc = ec.clone();
        enc["use"] = "enc".into();
        assert!(parse_key(&enc).is_none());
        assert!(parse_key(&serde_json::json!({"kty": "weird"})).is_none());
    }
}
