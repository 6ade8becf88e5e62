//! Dashboard sessions: a signed cookie rather than a server-side table, so that every
//! node sharing the master key and the admin key accepts a session another node began,
//! and a form token (CSRF) bound to the session.
//!
//! A cookie is `{id}.{issued_ms}.{tag}`; the tag is an HMAC under a key derived from
//! the master key and the admin key, so changing the admin key ends every session.
//! Signing out ends a session before it expires through a record in the store that
//! every node reads (`Authority::end_admin_session`); the cookie alone cannot say so.

use axum::http::HeaderMap;
use tessera_core::crypto::MacKey;

/// The session cookie.
pub const COOKIE: &str = "tessera_session";
/// The cookie that carries the sign-in form's token before there is a session.
pub const SIGN_IN_COOKIE: &str = "tessera_sign_in";
/// How long a session lasts after signing in.
pub const LIFETIME_S: i64 = 8 * 3600;

pub struct Sessions {
    mac: MacKey,
}

/// A valid session, read back from its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    /// When it began (unix milliseconds): a "sign out everywhere" ends every session
    /// begun until then.
    pub issued_ms: i64,
    pub expires_at: i64,
}

impl Sessions {
    pub fn new(mac: MacKey) -> Self {
        Self { mac }
    }

    /// A new session and the value of its cookie.
    pub fn begin(&self, id: String, now_ms: i64) -> (Session, String) {
        let payload = format!("{id}.{now_ms}");
        let tag = self.mac.tag(format!("session.{payload}").as_bytes());
        let session = Session {
            id,
            issued_ms: now_ms,
            expires_at: expiry(now_ms),
        };
        (session, format!("{payload}.{tag}"))
    }

    /// The session of a cookie value, if its tag is right and it has not expired.
    /// (Whether it was ended by a sign-out is the store's to say.)
    pub fn check(&self, value: &str, now_ms: i64) -> Option<Session> {
        let (payload, tag) = value.rsplit_once('.')?;
        if !self
            .mac
            .verify(format!("session.{payload}").as_bytes(), tag)
        {
            return None;
        }
        let (id, issued_ms) = payload.split_once('.')?;
        let issued_ms: i64 = issued_ms.parse().ok()?;
        let expires_at = expiry(issued_ms);
        (now_ms.div_euclid(1000) < expires_at).then(|| Session {
            id: id.to_owned(),
            issued_ms,
            expires_at,
        })
    }

    /// The form token of a session: every form a signed-in page shows carries it.
    pub fn csrf(&self, session: &Session) -> String {
        self.mac.tag(format!("csrf.{}", session.id).as_bytes())
    }

    pub fn csrf_matches(&self, session: &Session, presented: &str) -> bool {
        self.mac
            .verify(format!("csrf.{}", session.id).as_bytes(), presented)
    }

    /// A name for the session that the audit log may show: it identifies the session
    /// without being usable to forge or resume it.
    pub fn public_id(&self, session: &Session) -> String {
        let tag = self.mac.tag(format!("public.{}", session.id).as_bytes());
        tag.get(..12).unwrap_or(&tag).to_owned()
    }
}

/// When a session begun at `issued_ms` expires (unix seconds).
fn expiry(issued_ms: i64) -> i64 {
    issued_ms.div_euclid(1000).saturating_add(LIFETIME_S)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly and SameSite=Strict always, Secure when the request
/// came over TLS.
pub fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{secure}")
}

/// Whether the browser reached us over TLS. The admin listener speaks plain HTTP, so
/// TLS means a terminating proxy in front that says so (`X-Forwarded-Proto` or RFC
/// 7239 `Forwarded`). Trusting the header is safe: it can only add `Secure`.
pub fn over_tls(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(axum::http::header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split([';', ','])
                .filter_map(|p| p.trim().split_once('='))
                .any(|(k, v)| {
                    k.eq_ignore_ascii_case("proto")
                        && v.trim_matches('"').eq_ignore_ascii_case("https")
                })
        });
    forwarded_proto || forwarded
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tessera_core::crypto::MasterKey;

    fn sessions(admin_key: &str) -> Sessions {
        let master = MasterKey::from_text("0123456789abcdef0123456789abcdef").unwrap();
        Sessions::new(master.mac_key(&format!("dashboard {admin_key}")))
    }

    #[test]
    fn a_session_cookie_reads_back_until_it_expires() {
        let s = sessions("k");
        let (session, cookie) = s.begin("abc".into(), 1_000_000);
        let back = s.check(&cookie, (1000 + LIFETIME_S - 1) * 1000).unwrap();
        assert_eq!(back.expires_at, session.expires_at);
        assert_eq!(back.issued_ms, 1_000_000);
        assert!(s.check(&cookie, (1000 + LIFETIME_S) * 1000).is_none());
        assert_eq!(s.csrf(&back), s.csrf(&session));
        assert!(s.csrf_matches(&back, &s.csrf(&session)));
        assert!(!s.csrf_matches(&back, "nope"));
    }

    #[test]
    fn a_changed_cookie_or_admin_key_ends_the_session() {
        let s = sessions("k");
        let (_, cookie) = s.begin("abc".into(), 1_000_000);
        let longer = cookie.replacen("1000000", "99999999999", 1);
        assert!(s.check(&longer, 1_000_000).is_none());
        assert!(s.check("abc.99999999999.", 1_000_000).is_none());
        assert!(s.check("", 1_000_000).is_none());
        assert!(sessions("other").check(&cookie, 1_000_000).is_none());
    }

    #[test]
    fn cookies_are_found_among_others_and_tls_is_read_from_the_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "a=1; tessera_session=xyz; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
        assert!(!over_tls(&headers));
        headers.insert("forwarded", "for=1.2.3.4;proto=https".parse().unwrap());
        assert!(over_tls(&headers));
        headers.insert("forwarded", "for=1.2.3.4, proto=\"HTTPS\"".parse().unwrap());
        assert!(over_tls(&headers));
        headers.insert("forwarded", "for=1.2.3.4;proto=http".parse().unwrap());
        assert!(!over_tls(&headers));
        let set = set_cookie(COOKIE, "v", 60, true);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(set.ends_with("; Secure"));
    }
}
