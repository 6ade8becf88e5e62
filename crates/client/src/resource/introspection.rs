//! Opaque tokens checked at the issuer's introspection endpoint (RFC 7662), with a
//! cache: an answer is reused no longer than the token lives and no longer than the
//! revocation delay, so that a revoked token stops working within that delay.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use serde::Deserialize;
use tokio::time::Instant;

use super::{CheckedBy, Principal, VerifyError, split_scope};
use crate::credentials::ClientCredentials;
use crate::token::read_limited;

pub(crate) struct Introspector {
    credentials: ClientCredentials,
    revocation_delay: Duration,
    capacity: usize,
    /// Keyed by the token's SHA-256, so that the cache holds no usable tokens.
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

#[derive(Clone)]
struct Cached {
    answer: Result<Principal, VerifyError>,
    until: Instant,
}

impl Introspector {
    pub fn new(
        credentials: ClientCredentials,
        revocation_delay: Duration,
        capacity: usize,
    ) -> Self {
        Self {
            credentials,
            revocation_delay,
            capacity,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn check(
        &self,
        http: &reqwest::Client,
        endpoint: &str,
        token: &str,
        issuer: &str,
        audiences: &[String],
    ) -> Result<Principal, VerifyError> {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        let now = Instant::now();
        if let Some(cached) = self.lock().get(&key).filter(|c| now < c.until).cloned() {
            return cached.answer;
        }
        let answer = self.ask(http, endpoint, token, issuer, audiences).await?;
        let (answer, lives) = match answer {
            Ok(principal) => {
                let left = principal.expires_at.saturating_sub(unix_now());
                let lives = Duration::from_secs(u64::try_from(left).unwrap_or(0));
                (Ok(principal), lives)
            }
            Err(refusal) => (Err(refusal), self.revocation_delay),
        };
        let until = now + lives.min(self.revocation_delay);
        if until > now {
            self.remember(
                key,
                Cached {
                    answer: answer.clone(),
                    until,
                },
            );
        }
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Cached>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remember(&self, key: [u8; 32], entry: Cached) {
        let mut cache = self.lock();
        if cache.len() >= self.capacity {
            let now = Instant::now();
            cache.retain(|_, cached| cached.until > now);
        }
        if cache.len() < self.capacity {
            cache.insert(key, entry);
        }
    }

    /// One introspection request. The outer error is "could not ask" (not cached); the
    /// inner result is the answer about the token (cached).
    async fn ask(
        &self,
        http: &reqwest::Client,
        endpoint: &str,
        token: &str,
        issuer: &str,
        audiences: &[String],
    ) -> Result<Result<Principal, VerifyError>, VerifyError> {
        let unavailable = |why: String| VerifyError::Unavailable(why);
        let params = vec![
            ("token".to_owned(), token.to_owned()),
            ("token_type_hint".to_owned(), "access_token".to_owned()),
        ];
        let body = self
            .credentials
            // An assertion names the server's issuer, not the introspection endpoint.
            .authorize(issuer, params)
            .map_err(|e| unavailable(format!("cannot sign the introspection credentials: {e}")))?;
        let response = body
            .apply(
                http.post(endpoint)
                    .header(http::header::ACCEPT, "application/json"),
            )
            .send()
            .await
            .map_err(|e| unavailable(format!("introspection failed: {}", e.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            // 401 here means our own credentials are wrong: a configuration problem,
            // not the caller's.
            tracing::warn!(%status, endpoint, "the introspection endpoint refused the request");
            return Err(unavailable(format!(
                "the introspection endpoint answered {status}"
            )));
        }
        let body = read_limited(response)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let answer: Introspection = serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("the introspection answer is not usable: {e}")))?;
        Ok(answer.judge(issuer, audiences))
    }
}

/// The fields of an RFC 7662 answer a resource server needs.
#[derive(Deserialize)]
struct Introspection {
    active: bool,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    jti: Option<String>,
}

impl Introspection {
    fn judge(self, issuer: &str, audiences: &[String]) -> Result<Principal, VerifyError> {
        if !self.active {
            return Err(VerifyError::Invalid(
                "inactive (expired, revoked or unknown)",
            ));
        }
        let exp = self
            .exp
            .ok_or(VerifyError::Invalid("the introspection answer has no exp"))?;
        if exp <= unix_now() {
            return Err(VerifyError::Invalid("expired"));
        }
        let iss = self.iss.unwrap_or_else(|| issuer.to_owned());
        if iss != issuer {
            return Err(VerifyError::Invalid("wrong issuer"));
        }
        let aud: Vec<String> = match self.aud {
            Some(serde_json::Value::String(one)) => vec![one],
            Some(serde_json::Value::Array(many)) => many
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        if !aud.iter().any(|a| audiences.contains(a)) {
            return Err(VerifyError::Invalid("wrong audience"));
        }
        let client_id = self.client_id.ok_or(VerifyError::Invalid(
            "the introspection answer has no client_id",
        ))?;
        Ok(Principal {
            client_id,
            scopes: split_scope(self.scope.as_deref()),
            subject: self.sub,
            issuer: iss,
            audiences: aud,
            expires_at: exp,
            token_id: self.jti,
            checked_by: CheckedBy::Introspection,
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(answer: serde_json::Value) -> Result<Principal, VerifyError> {
        serde_json::from_value::<Introspection>(answer)
            .unwrap()
            .judge("https://as", &["api".to_owned()])
    }

    #[test]
    fn answers_are_judged_on_activity_time_issuer_and_audience() {
        let exp = unix_now() + 60;
        let good = serde_json::json!({"active": true, "client_id": "c", "scope": "read",
            "exp": exp, "iss": "https://as", "aud": ["api", "other"]});
        let principal = judge(good.clone()).unwrap();
        assert_eq!(principal.client_id, "c");
        assert_eq!(principal.checked_by, CheckedBy::Introspection);
        assert!(judge(serde_json::json!({"active": false})).is_err());
        let mut expired = good.clone();
        expired["exp"] = (unix_now() - 1).into();
        assert_eq!(judge(expired), Err(VerifyError::Invalid("expired")));
        let mut issuer = good.clone();
        issuer["iss"] = "https://evil".into();
        assert_eq!(judge(issuer), Err(VerifyError::Invalid("wrong issuer")));
        let mut audience = good;
        audience["aud"] = "elsewhere".into();
        assert_eq!(judge(audience), Err(VerifyError::Invalid("wrong audience")));
    }
}
