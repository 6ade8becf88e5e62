//! A token source: one shared token per (endpoint, client, scope), refreshed ahead of
//! its expiry, with one request in flight however many tasks wait for it.
//!
//! A caller gets the held token at once while it is fresh. Past the refresh point (80%
//! of its life by default, a little earlier at random so that many processes started
//! together do not refresh together) the first caller starts a refresh in the
//! background and every caller keeps getting the held token until it is about to
//! expire. Only when there is no usable token do callers wait, all on the same request.
//! The request runs in its own task, so a caller that gives up does not cancel it for
//! the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::token::{Token, TokenError, TokenKey, TokenRequest, http_client};

/// When a held token is replaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshPolicy {
    /// The fraction of a token's life after which it is refreshed (default 0.8).
    pub refresh_at: f64,
    /// Up to this fraction of its life earlier, at random (default 0.05).
    pub jitter: f64,
    /// A token is not handed out when it has less than this left (default 10 s),
    /// capped at a tenth of its life.
    pub expiry_margin: Duration,
    /// The life assumed for a token whose response carries no `expires_in` (default 60 s).
    pub default_lifetime: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            refresh_at: 0.8,
            jitter: 0.05,
            expiry_margin: Duration::from_secs(10),
            default_lifetime: Duration::from_secs(60),
        }
    }
}

impl RefreshPolicy {
    /// When a token obtained at `started` and living `lifetime` is refreshed, and until
    /// when it may be handed out. `unit` is a random number in `[0, 1)`.
    fn schedule(&self, started: Instant, lifetime: Duration, unit: f64) -> (Instant, Instant) {
        let at = self.refresh_at.clamp(0.0, 1.0);
        let fraction = (at - self.jitter.clamp(0.0, at) * unit.clamp(0.0, 1.0)).clamp(0.0, 1.0);
        let margin = self.expiry_margin.min(lifetime / 10);
        let usable_until = started + lifetime.saturating_sub(margin);
        let refresh_at = (started + lifetime.mul_f64(fraction)).min(usable_until);
        (refresh_at, usable_until)
    }
}

/// How a failed token request is retried: only transient failures (unreachable
/// server, 5xx, 429, `temporarily_unavailable`), with exponential backoff and jitter.
/// `invalid_client` and every other refusal are returned at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 4).
    pub max_attempts: u32,
    /// The wait before the second attempt (default 200 ms); it doubles each time.
    pub initial_backoff: Duration,
    /// The longest wait, `Retry-After` included (default 5 s).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): half of the doubled
    /// backoff fixed, half at random.
    fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let doubled = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let capped = doubled.min(self.max_backoff);
        capped / 2 + (capped / 2).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Sends `request` until it succeeds, fails for good, or the attempts run out.
    pub async fn run(
        &self,
        http: &reqwest::Client,
        request: &TokenRequest,
    ) -> Result<Token, TokenError> {
        let mut attempt = 1;
        loop {
            match request.send(http).await {
                Ok(token) => return Ok(token),
                Err(err) if err.is_transient() && attempt < self.max_attempts => {
                    let wait = err
                        .retry_after()
                        .map(|d| d.min(self.max_backoff))
                        .unwrap_or_else(|| self.backoff(attempt, random_unit()));
                    tracing::debug!(
                        endpoint = %request.endpoint(),
                        client_id = request.credentials().client_id(),
                        attempt,
                        error = %err,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "token request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// Shared tokens for any number of (endpoint, client, scope) combinations. Cheap to
/// clone: clones share the tokens.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    refresh: RefreshPolicy,
    retry: RetryPolicy,
    slots: Mutex<HashMap<TokenKey, Arc<Slot>>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("refresh", &self.inner.refresh)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// The outcome of one token request, as every waiter sees it.
type Outcome = Option<Result<Token, TokenError>>;

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    held: Option<Held>,
    /// The request in flight, if any.
    flight: Option<watch::Receiver<Outcome>>,
}

struct Held {
    token: Token,
    refresh_at: Instant,
    usable_until: Instant,
}

/// Builds a [`TokenSource`] with other than the default policies or HTTP client.
#[derive(Debug, Default)]
pub struct TokenSourceBuilder {
    http: Option<reqwest::Client>,
    refresh: RefreshPolicy,
    retry: RetryPolicy,
}

impl TokenSourceBuilder {
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    pub fn refresh_policy(mut self, refresh: RefreshPolicy) -> Self {
        self.refresh = refresh;
        self
    }

    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn build(self) -> Result<TokenSource, TokenError> {
        let http = match self.http {
            Some(http) => http,
            None => http_client()?,
        };
        Ok(TokenSource {
            inner: Arc::new(Inner {
                http,
                refresh: self.refresh,
                retry: self.retry,
                slots: Mutex::new(HashMap::new()),
            }),
        })
    }
}

impl TokenSource {
    /// A source with the default policies and HTTP client.
    pub fn new() -> Result<Self, TokenError> {
        Self::builder().build()
    }

    pub fn builder() -> TokenSourceBuilder {
        TokenSourceBuilder::default()
    }

    /// The HTTP client the source sends token requests with.
    pub fn http_client(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// A usable token for `request`: the held one, or a new one.
    pub async fn token(&self, request: &TokenRequest) -> Result<Token, TokenError> {
        let slot = self.slot(request);
        let mut flight = {
            let mut state = lock(&slot.state);
            let now = Instant::now();
            if let Some(held) = &state.held
                && now < held.usable_until
            {
                let token = held.token.clone();
                if now >= held.refresh_at
                    && state.flight.is_none()
                    && let Ok(flight) = self.launch(&slot, request)
                {
                    state.flight = Some(flight);
                }
                return Ok(token);
            }
            match &state.flight {
                Some(flight) => flight.clone(),
                None => {
                    let flight = self.launch(&slot, request)?;
                    state.flight = Some(flight.clone());
                    flight
                }
            }
        };
        let outcome = flight
            .wait_for(Option::is_some)
            .await
            .map_err(|_| TokenError::Interrupted)?;
        outcome.clone().unwrap_or(Err(TokenError::Interrupted))
    }

    /// Forgets `token` if it is the one held for `request` (a resource server refused
    /// it), so that the next [`Self::token`] asks for a new one. A token already
    /// replaced is left alone, so that many callers refused at once cause one request.
    pub fn invalidate(&self, request: &TokenRequest, token: &Token) {
        let slot = self.slot(request);
        let mut state = lock(&slot.state);
        if state.held.as_ref().is_some_and(|held| held.token == *token) {
            state.held = None;
        }
    }

    fn slot(&self, request: &TokenRequest) -> Arc<Slot> {
        let mut slots = lock(&self.inner.slots);
        slots.entry(request.cache_key()).or_default().clone()
    }

    /// Starts a token request in its own task; its outcome arrives on the receiver.
    fn launch(
        &self,
        slot: &Arc<Slot>,
        request: &TokenRequest,
    ) -> Result<watch::Receiver<Outcome>, TokenError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| TokenError::NoRuntime)?;
        let (tx, rx) = watch::channel(None);
        let inner = self.inner.clone();
        let slot = slot.clone();
        let request = request.clone();
        runtime.spawn(async move {
            let started = Instant::now();
            let outcome = inner.retry.run(&inner.http, &request).await;
            {
                let mut state = lock(&slot.state);
                state.flight = None;
                match &outcome {
                    Ok(token) => {
                        let lifetime = token
                            .expires_in()
                            .map(Duration::from_secs)
                            .unwrap_or(inner.refresh.default_lifetime);
                        let (refresh_at, usable_until) =
                            inner.refresh.schedule(started, lifetime, random_unit());
                        state.held = Some(Held {
                            token: token.clone(),
                            refresh_at,
                            usable_until,
                        });
                    }
                    Err(err) => {
                        // Keep the held token while it lasts; try again halfway to
                        // its end rather than on every call.
                        let now = Instant::now();
                        if let Some(held) = &mut state.held {
                            let left = held.usable_until.saturating_duration_since(now);
                            held.refresh_at = now + (left / 2).min(inner.retry.max_backoff);
                        }
                        tracing::warn!(
                            endpoint = %request.endpoint(),
                            client_id = request.credentials().client_id(),
                            error = %err,
                            "token request failed"
                        );
                    }
                }
            }
            let _ = tx.send(Some(outcome));
        });
        Ok(rx)
    }
}

/// A poisoned lock only means another task panicked while holding it; the state it
/// guards is still consistent (every write is a single assignment).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A random number in `[0, 1)`.
pub(crate) fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return 0.5;
    }
    // 53 random bits: every value exactly representable.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_comes_at_80_percent_minus_jitter_and_never_past_the_margin() {
        let policy = RefreshPolicy::default();
        let t0 = Instant::now();
        let life = Duration::from_secs(100);
        let (early, usable) = policy.schedule(t0, life, 0.999_999);
        let (late, _) = policy.schedule(t0, life, 0.0);
        assert_eq!(late - t0, Duration::from_secs(80));
        assert!(early - t0 > Duration::from_millis(74_999) && early < late);
        assert_eq!(usable - t0, Duration::from_secs(90), "10 s margin");
        // A one-second token: margin capped at a tenth of its life.
        let (refresh, usable) = policy.schedule(t0, Duration::from_secs(1), 0.0);
        assert_eq!(refresh - t0, Duration::from_millis(800));
        assert_eq!(usable - t0, Duration::from_millis(900));
        // Silly settings stay inside the token's life.
        let odd = RefreshPolicy {
            refresh_at: 7.0,
            jitter: -1.0,
            ..policy
        };
        let (refresh, usable) = odd.schedule(t0, life, 0.5);
        assert!(refresh <= usable);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1, 0.0), Duration::from_millis(100));
        assert_eq!(policy.backoff(1, 1.0), Duration::from_millis(200));
        assert_eq!(policy.backoff(3, 1.0), Duration::from_millis(800));
        assert_eq!(policy.backoff(30, 1.0), Duration::from_secs(5));
        let unit = random_unit();
        assert!((0.0..1.0).contains(&unit));
    }
}
