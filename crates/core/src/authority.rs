//! The authorization server's behaviour, independent of HTTP, as one value: the
//! [`Authority`] owns the parts and answers for them. Each part is written in its own
//! module, and imports only from below it:
//!
//! - `shared`: the store, the clock, the random generator and the cache, with the
//!   cache reads of the hot path and the writes that go to store and cache together;
//! - `sync`: keeping the cache in step with the store (the change log);
//! - `client_auth`: authenticating clients;
//! - `tokens`: the grants, checking and revoking tokens, usage and quotas (it
//!   authenticates through `client_auth`);
//! - `manage`: the management operations, audited (over `sync` and `tokens`);
//! - `sessions`: ending the dashboard's sessions.
//!
//! The management operations are reached through [`Authority::manage`]; the methods
//! below hand each other call to its part, grouped by who calls them.

use std::future::Future;
use std::sync::Arc;

use crate::client_auth::{ClientAuth, ClientAuthenticator};
use crate::crypto::{MacKey, MasterKey, Random};
use crate::directory::RealmEntry;
use crate::domain::{Application, PublicUrl, RealmName};
use crate::error::{ManageError, OAuthError, StoreError};
use crate::manage::{Manage, NewRealm};
use crate::sessions::AdminSessions;
use crate::shared::{Actor, Audit, Clock, Offered, Shared};
use crate::store::{ChangeSignal, Store};
use crate::sync::CacheSync;
use crate::tokens::{GrantedToken, Grants, StateLimits, TokenInfo, TokenRequest};

/// The authorization server. One per process; cheap to share behind an `Arc`.
pub struct Authority {
    shared: Arc<Shared>,
    cache: CacheSync,
    grants: Grants,
}

impl Authority {
    /// Loads everything from the store, creating the `default` realm if it is missing.
    pub async fn open(
        store: Arc<dyn Store>,
        master: MasterKey,
        server_url: PublicUrl,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
    ) -> Result<Self, ManageError> {
        let secrets = master.secret_hasher();
        let shared = Arc::new(Shared::new(store, master, server_url, clock, rng));
        let clients = ClientAuthenticator::new(shared.clone(), secrets);
        let authority = Self {
            cache: CacheSync::new(shared.clone()),
            grants: Grants::new(shared.clone(), clients),
            shared,
        };
        authority.cache.reload().await?;
        if authority.shared.realm(RealmName::DEFAULT).is_none() {
            let default = NewRealm {
                name: RealmName::default_realm(),
                hosts: Vec::new(),
                public_url: None,
                token_format: None,
                signing_alg: None,
                token_prefix: None,
                token_type: None,
                key_rotation_secs: None,
            };
            let audit = Audit::new(
                Actor::system(),
                serde_json::json!({ "name": RealmName::DEFAULT }),
            );
            match authority.manage().create_realm(audit, default).await {
                // Another process made it first; it is in the store now.
                Ok(_) | Err(ManageError::Conflict(_)) => authority.cache.reload().await?,
                Err(err) => return Err(err),
            }
        }
        Ok(authority)
    }

    /// The same authority with other bounds on per-application state (tests, tuning).
    #[must_use]
    pub fn with_state_limits(mut self, limits: StateLimits) -> Self {
        self.grants.set_state_limits(limits);
        self
    }

    /// The management operations: realms, applications, usage and the audit log, and
    /// the scheduled key rotations (see `manage.rs`).
    pub fn manage(&self) -> Manage<'_> {
        Manage::new(&self.shared, &self.cache, &self.grants)
    }

    fn sessions(&self) -> AdminSessions<'_> {
        AdminSessions::new(&self.shared)
    }

    // ----- what everyone reads --------------------------------------------------------

    pub fn server_url(&self) -> &PublicUrl {
        self.shared.server_url()
    }

    pub fn now_s(&self) -> i64 {
        self.shared.now_s()
    }

    pub fn now_ms(&self) -> i64 {
        self.shared.now_ms()
    }

    /// A MAC key derived from the master key for one purpose: every node that shares
    /// the master key derives the same one.
    pub fn mac_key(&self, purpose: &str) -> MacKey {
        self.shared.mac_key(purpose)
    }

    /// `bytes` fresh random bytes as URL-safe base64.
    pub fn random_token(&self, bytes: usize) -> String {
        self.shared.random_token(bytes)
    }

    pub fn realm(&self, name: &str) -> Option<Arc<RealmEntry>> {
        self.shared.realm(name)
    }

    pub fn realm_for_host(&self, host: &str) -> Option<Arc<RealmEntry>> {
        self.shared.realm_for_host(host)
    }

    pub fn cached_application(&self, realm_id: &str, client_id: &str) -> Option<Arc<Application>> {
        self.shared.cached_application(realm_id, client_id)
    }

    /// What the realm's applications really use, for the discovery document.
    pub fn offered(&self, realm: &RealmEntry) -> Offered {
        self.shared.offered(realm)
    }

    /// Whether the store answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.shared.store().ping().await
    }

    // ----- the public endpoints (`tokens`, `client_auth`) -----------------------------
    // Each returns its part's own future, so that a request runs no extra state machine.

    /// The token endpoint.
    pub fn grant(
        &self,
        realm: &RealmEntry,
        request: &TokenRequest,
    ) -> impl Future<Output = Result<GrantedToken, OAuthError>> + Send {
        self.grants.grant(realm, request)
    }

    /// Authenticates a client of `realm` (see `client_auth.rs`).
    pub fn authenticate(
        &self,
        realm: &RealmEntry,
        auth: &ClientAuth,
    ) -> impl Future<Output = Result<Arc<Application>, OAuthError>> + Send {
        self.grants.clients().authenticate(realm, auth)
    }

    /// Whether `token` is alive in `realm`, and what it says. `None` for anything else:
    /// malformed, forged, another realm's, expired, revoked, or its application gone.
    pub fn check(&self, realm: &RealmEntry, token: &str) -> Option<TokenInfo> {
        self.grants.check(realm, token)
    }

    /// The introspection endpoint (RFC 7662).
    pub fn introspect(
        &self,
        realm: &RealmEntry,
        auth: &ClientAuth,
        token: &str,
    ) -> impl Future<Output = Result<Option<TokenInfo>, OAuthError>> + Send {
        self.grants.introspect(realm, auth, token)
    }

    /// The revocation endpoint (RFC 7009).
    pub fn revoke(
        &self,
        realm: &RealmEntry,
        auth: &ClientAuth,
        token: &str,
    ) -> impl Future<Output = Result<(), OAuthError>> + Send {
        self.grants.revoke(realm, auth, token)
    }

    // ----- the maintenance task (`sync`, `tokens`; key rotations are `manage`'s) --------

    /// Reads everything again (see `sync.rs`).
    pub async fn reload(&self) -> Result<(), StoreError> {
        self.cache.reload().await
    }

    /// A signal that another node may have written, if the store can give one.
    pub async fn change_signal(&self) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        self.cache.change_signal().await
    }

    /// Applies the change-log entries written since the last call; returns how many.
    pub async fn sync(&self) -> Result<usize, StoreError> {
        self.cache.sync().await
    }

    /// Removes expired state from the store and the cache.
    pub async fn purge(&self, keep_changes_secs: i64) -> Result<u64, StoreError> {
        self.cache.purge(keep_changes_secs).await
    }

    /// Adds the usage counted since the last flush to the store (see `tokens.rs`).
    pub async fn flush_usage(&self) -> Result<usize, StoreError> {
        self.grants.flush_usage().await
    }

    // ----- the dashboard's sessions (`sessions`) --------------------------------------

    pub async fn end_admin_session(&self, id: &str, expires_at: i64) -> Result<(), ManageError> {
        self.sessions().end_admin_session(id, expires_at).await
    }

    pub async fn end_admin_sessions(&self, lifetime_s: i64) -> Result<(), ManageError> {
        self.sessions().end_admin_sessions(lifetime_s).await
    }

    pub fn is_admin_session_ended(&self, id: &str, issued_ms: i64) -> bool {
        self.sessions().is_admin_session_ended(id, issued_ms)
    }
}
