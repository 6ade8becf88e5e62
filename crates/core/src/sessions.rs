//! Ending dashboard sessions. A session is a signed cookie that every node accepts on
//! its own, so ending one is a record shared through the store: a revocation under the
//! session's id (sign-out), or one that ends every session begun until a moment (sign
//! out everywhere). Both travel the change log like a token's revocation, so every node
//! obeys them within a second, and both are forgotten once the sessions they end would
//! have expired anyway.

use crate::directory::SESSIONS_BEFORE_PREFIX;
use crate::domain::RealmName;
use crate::error::ManageError;
use crate::shared::Shared;
use crate::store::Revocation;

/// The revocation that ends one session.
const SESSION_PREFIX: &str = "admin-session:";

/// The dashboard's sessions, as far as every node must know of them: which were ended.
pub(crate) struct AdminSessions<'a> {
    shared: &'a Shared,
}

impl<'a> AdminSessions<'a> {
    pub(crate) fn new(shared: &'a Shared) -> Self {
        Self { shared }
    }

    /// Ends the session `id`, which would have expired at `expires_at` (unix seconds).
    pub(crate) async fn end_admin_session(
        &self,
        id: &str,
        expires_at: i64,
    ) -> Result<(), ManageError> {
        self.remember_ending(format!("{SESSION_PREFIX}{id}"), expires_at)
            .await
    }

    /// Ends every session begun until now; sessions live at most `lifetime_s`.
    pub(crate) async fn end_admin_sessions(&self, lifetime_s: i64) -> Result<(), ManageError> {
        let now_ms = self.shared.now_ms();
        let until = now_ms.div_euclid(1000).saturating_add(lifetime_s) + 1;
        self.remember_ending(format!("{SESSIONS_BEFORE_PREFIX}{now_ms}"), until)
            .await
    }

    /// Whether session `id`, begun at `issued_ms`, was ended by a sign-out.
    pub(crate) fn is_admin_session_ended(&self, id: &str, issued_ms: i64) -> bool {
        let directory = self.shared.read();
        issued_ms <= directory.admin_sessions_ended_before_ms()
            || directory.is_revoked(&format!("{SESSION_PREFIX}{id}"))
    }

    async fn remember_ending(&self, key: String, expires_at: i64) -> Result<(), ManageError> {
        let realm = self.shared.find_realm(RealmName::DEFAULT)?;
        let revocation = Revocation {
            jti: key,
            realm_id: realm.realm.id.clone(),
            client_id: String::new(),
            expires_at,
        };
        Ok(self.shared.add_revocation(revocation).await?)
    }
}
