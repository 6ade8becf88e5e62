//! Prometheus counters, kept as atomics so that counting costs the hot path nothing.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use tessera_core::OAuthError;

/// Refused token requests are counted by these codes; others (`quota_exceeded`) are not.
const ERROR_CODES: &[&str] = &OAuthError::REGISTERED_CODES;

#[derive(Debug, Default)]
pub struct Metrics {
    tokens_issued: AtomicU64,
    token_errors: [AtomicU64; ERROR_CODES.len()],
    introspections_active: AtomicU64,
    introspections_inactive: AtomicU64,
    revocations: AtomicU64,
    verify_ok: AtomicU64,
    verify_denied: AtomicU64,
    /// Answered 429 for failed authentications: public listener, admin listener.
    auth_limited: [AtomicU64; 2],
}

impl Metrics {
    pub fn token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    pub fn token_failed(&self, code: &str) {
        if let Some(i) = ERROR_CODES.iter().position(|c| *c == code)
            && let Some(counter) = self.token_errors.get(i)
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn introspected(&self, active: bool) {
        let counter = if active {
            &self.introspections_active
        } else {
            &self.introspections_inactive
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A request refused for too many failed authentications.
    pub fn auth_limited(&self, admin: bool) {
        if let Some(counter) = self.auth_limited.get(usize::from(admin)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn revoked(&self) {
        self.revocations.fetch_add(1, Ordering::Relaxed);
    }

    pub fn verified(&self, ok: bool) {
        let counter = if ok {
            &self.verify_ok
        } else {
            &self.verify_denied
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::with_capacity(1024);
        let _ = writeln!(
            out,
            "# HELP tessera_tokens_issued_total Access tokens issued by the token endpoint."
        );
        let _ = writeln!(out, "# TYPE tessera_tokens_issued_total counter");
        let _ = writeln!(
            out,
            "tessera_tokens_issued_total {}",
            load(&self.tokens_issued)
        );
        let _ = writeln!(
            out,
            "# HELP tessera_token_errors_total Token requests refused, by RFC 6749 error code."
        );
        let _ = writeln!(out, "# TYPE tessera_token_errors_total counter");
        for (code, counter) in ERROR_CODES.iter().zip(&self.token_errors) {
            let _ = writeln!(
                out,
                "tessera_token_errors_total{{error=\"{code}\"}} {}",
                load(counter)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tessera_introspections_total Introspection answers, by whether the token was active."
        );
        let _ = writeln!(out, "# TYPE tessera_introspections_total counter");
        let _ = writeln!(
            out,
            "tessera_introspections_total{{active=\"true\"}} {}",
            load(&self.introspections_active)
        );
        let _ = writeln!(
            out,
            "tessera_introspections_total{{active=\"false\"}} {}",
            load(&self.introspections_inactive)
        );
        let _ = writeln!(
            out,
            "# HELP tessera_revocations_total Revocation requests answered."
        );
        let _ = writeln!(out, "# TYPE tessera_revocations_total counter");
        let _ = writeln!(out, "tessera_revocations_total {}", load(&self.revocations));
        let _ = writeln!(
            out,
            "# HELP tessera_verify_total Forward-auth checks, by outcome."
        );
        let _ = writeln!(out, "# TYPE tessera_verify_total counter");
        let _ = writeln!(
            out,
            "tessera_verify_total{{outcome=\"allowed\"}} {}",
            load(&self.verify_ok)
        );
        let _ = writeln!(
            out,
            "tessera_verify_total{{outcome=\"denied\"}} {}",
            load(&self.verify_denied)
        );
        let _ = writeln!(
            out,
            "# HELP tessera_auth_limited_total Requests answered 429 for too many failed authentications, by listener."
        );
        let _ = writeln!(out, "# TYPE tessera_auth_limited_total counter");
        for (listener, counter) in ["public", "admin"].iter().zip(&self.auth_limited) {
            let _ = writeln!(
                out,
                "tessera_auth_limited_total{{listener=\"{listener}\"}} {}",
                load(counter)
            );
        }
        out
    }
}
