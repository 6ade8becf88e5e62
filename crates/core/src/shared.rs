//! What every part of the authority shares, below all of them: the clock, who made a
//! change ([`Actor`], [`Audit`]), and `Shared`: the store, the clock, the random
//! generator, the master key and the cache of the store (the `Directory`), with the
//! cache reads the hot path makes and the few writes that go to the store and the cache
//! together. Syncing (`sync`), client authentication (`client_auth`), granting
//! (`tokens`), management (`manage`) and dashboard sessions (`sessions`) each build on
//! this module and on nothing above it; `authority` puts them together.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::crypto::{self, CryptoError, MacKey, MasterKey, Random, Sealer, SigningKey};
use crate::directory::{Directory, RealmEntry};
use crate::domain::{Application, AuthMethod, PublicUrl, SigningAlg};
use crate::error::{ManageError, StoreError};
use crate::store::{AuditRecord, Revocation, Store, StoredKey};

/// Where the time comes from; a parameter so that expiry is tested without sleeping.
pub trait Clock: Send + Sync {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        Self(AtomicI64::new(now_ms))
    }

    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Who made an administrative change, as the audit log names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// A caller of the admin HTTP API, holding the admin key.
    pub fn admin_key() -> Self {
        Self("admin-key".to_owned())
    }

    /// The `tessera` command line, working on the store directly.
    pub fn cli() -> Self {
        Self("cli".to_owned())
    }

    /// A person signed in to the dashboard; `session` is a public id of the session.
    pub fn dashboard(session: &str) -> Self {
        Self(format!("dashboard:{session}"))
    }

    /// The server itself: the default realm, scheduled key rotations, the bound on
    /// live revocations, purging expired keys.
    pub fn system() -> Self {
        Self("system".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who asks for an administrative change and what they asked (a JSON object of
/// non-secret fields). Every management operation takes one and the store writes it,
/// with what the operation decided added, in the change's own transaction.
#[derive(Debug, Clone)]
pub struct Audit {
    actor: Actor,
    detail: serde_json::Value,
}

impl Audit {
    pub fn new(actor: Actor, detail: serde_json::Value) -> Self {
        Self { actor, detail }
    }

    /// A change with nothing to say beyond who made it.
    pub fn by(actor: Actor) -> Self {
        Self::new(actor, serde_json::json!({}))
    }

    /// Adds what the operation decided (a new key's id, a time) to the detail.
    pub(crate) fn with(mut self, field: &str, value: serde_json::Value) -> Self {
        if let Some(fields) = self.detail.as_object_mut() {
            fields.insert(field.to_owned(), value);
        }
        self
    }
}

/// The authentication methods and grants a realm's applications use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub auth_methods: Vec<AuthMethod>,
    pub refresh_tokens: bool,
}

/// The store, the clock, the random generator, the master key and the cache, shared
/// by every part of the authority (each holds it behind an `Arc`).
pub(crate) struct Shared {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    master: MasterKey,
    /// Seals signing keys' private parts for the store, and opens them again.
    key_sealer: Sealer,
    server_url: PublicUrl,
    directory: RwLock<Directory>,
    /// Held from reading a value from the store (or writing it) to putting it in the
    /// cache, so that a sync that read an older version cannot put it back after a
    /// change this process just made: what a node changed, it obeys at once.
    cache_order: tokio::sync::Mutex<()>,
}

impl Shared {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        master: MasterKey,
        server_url: PublicUrl,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
    ) -> Self {
        Self {
            key_sealer: master.sealer("tessera signing keys v1"),
            master,
            store,
            clock,
            rng,
            server_url,
            directory: RwLock::new(Directory::default()),
            cache_order: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub(crate) fn rng(&self) -> &dyn Random {
        self.rng.as_ref()
    }

    pub(crate) fn server_url(&self) -> &PublicUrl {
        &self.server_url
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(crate) fn now_s(&self) -> i64 {
        self.clock.now_ms().div_euclid(1000)
    }

    /// A MAC key derived from the master key for one purpose: every node that shares
    /// the master key derives the same one.
    pub(crate) fn mac_key(&self, purpose: &str) -> MacKey {
        self.master.mac_key(purpose)
    }

    /// A sealer derived from the master key for one purpose (a realm's tokens).
    pub(crate) fn sealer(&self, purpose: &str) -> Sealer {
        self.master.sealer(purpose)
    }

    /// `bytes` fresh random bytes as URL-safe base64.
    pub(crate) fn random_token(&self, bytes: usize) -> String {
        crypto::random_token(self.rng.as_ref(), bytes)
    }

    // ----- the cache --------------------------------------------------------------------

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Directory> {
        // A poisoned lock means a panic while writing the cache; the data is still a
        // consistent map, and the next sync rewrites what changed.
        self.directory.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Directory> {
        self.directory.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Taken from reading (or writing) the store to putting the result in the cache.
    pub(crate) async fn cache_order(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.cache_order.lock().await
    }

    pub(crate) fn realm(&self, name: &str) -> Option<Arc<RealmEntry>> {
        self.read().realm(name).cloned()
    }

    pub(crate) fn realm_for_host(&self, host: &str) -> Option<Arc<RealmEntry>> {
        self.read().realm_for_host(host).cloned()
    }

    pub(crate) fn find_realm(&self, name: &str) -> Result<Arc<RealmEntry>, ManageError> {
        self.realm(name).ok_or_else(|| ManageError::NotFound {
            what: "realm",
            name: name.to_owned(),
        })
    }

    pub(crate) fn cached_application(
        &self,
        realm_id: &str,
        client_id: &str,
    ) -> Option<Arc<Application>> {
        self.read().application(realm_id, client_id).cloned()
    }

    /// Whether a token of `client_id` issued at `issued_ms` with this `jti` is still
    /// good: its application is alive, it was issued after the last "revoke all", it
    /// was not revoked one by one, and the refresh family it came from (if any) was not
    /// revoked.
    pub(crate) fn is_alive(
        &self,
        realm_id: &str,
        client_id: &str,
        jti: &str,
        family: Option<&str>,
        issued_ms: i64,
    ) -> bool {
        let directory = self.read();
        let Some(app) = directory.application(realm_id, client_id) else {
            return false;
        };
        app.enabled
            && issued_ms > app.tokens_valid_after_ms
            && !directory.is_revoked(jti)
            && !family.is_some_and(|f| directory.is_revoked(f))
    }

    /// What the realm's applications really use, for the discovery document.
    pub(crate) fn offered(&self, realm: &RealmEntry) -> Offered {
        let directory = self.read();
        let mut offered = Offered {
            auth_methods: Vec::new(),
            refresh_tokens: false,
        };
        for app in directory.applications_of(&realm.realm.id) {
            for method in &app.auth_methods {
                if !offered.auth_methods.contains(method) {
                    offered.auth_methods.push(*method);
                }
            }
            offered.refresh_tokens |= app.refresh_token_ttl.is_some();
        }
        if offered.auth_methods.is_empty() {
            offered.auth_methods =
                vec![AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost];
        }
        offered
            .auth_methods
            .sort_by_key(|m| AuthMethod::ALL.iter().position(|a| a == m));
        offered
    }

    pub(crate) fn live_revocations(&self, realm_id: &str, client_id: &str) -> usize {
        self.read().live_revocations(realm_id, client_id)
    }

    // ----- writes to the store and the cache together ----------------------------------

    /// Writes a revocation to the store, then to this process's cache.
    pub(crate) async fn add_revocation(&self, revocation: Revocation) -> Result<(), StoreError> {
        self.store.insert_revocation(&revocation).await?;
        self.write().put_revocation(revocation);
        Ok(())
    }

    /// An application as the store has it now (not as cached), by realm name.
    pub(crate) async fn find_application(
        &self,
        realm: &str,
        client_id: &str,
    ) -> Result<Application, ManageError> {
        let entry = self.find_realm(realm)?;
        self.store
            .find_application(&entry.realm.id, client_id)
            .await?
            .ok_or_else(|| app_not_found(client_id))
    }

    /// Writes a changed application with its audit record, then puts it in the cache.
    pub(crate) async fn save_application(
        &self,
        mut app: Application,
        record: &AuditRecord,
    ) -> Result<Application, ManageError> {
        app.updated_at = self.now_s();
        if !self.store.update_application(&app, record).await? {
            return Err(app_not_found(app.client_id.as_str()));
        }
        let _order = self.cache_order().await;
        self.write().put_application(app.clone());
        Ok(app)
    }

    /// The audit record of `action` on a realm (by name) or one of its applications,
    /// for the store to write with the change.
    pub(crate) fn audit_record(
        &self,
        audit: Audit,
        action: &str,
        realm: &str,
        client_id: Option<&str>,
    ) -> AuditRecord {
        AuditRecord {
            seq: 0,
            at_ms: self.clock.now_ms(),
            actor: audit.actor.as_str().to_owned(),
            action: action.to_owned(),
            realm: realm.to_owned(),
            client_id: client_id.map(str::to_owned),
            detail: audit.detail.to_string(),
        }
    }

    // ----- signing keys, sealed under the master key in the store -----------------------

    /// A new key for `realm_id`, signing from `activates_at`.
    pub(crate) fn new_key(
        &self,
        realm_id: &str,
        alg: SigningAlg,
        activates_at: i64,
    ) -> Result<StoredKey, ManageError> {
        let kid = crypto::random_token(self.rng.as_ref(), 12);
        let (_, der) = SigningKey::generate(alg, kid.clone())
            .map_err(|e| ManageError::Internal(e.to_string()))?;
        let sealed_private = self
            .key_sealer
            .seal(self.rng.as_ref(), kid.as_bytes(), &der);
        Ok(StoredKey {
            kid,
            realm_id: realm_id.to_owned(),
            alg,
            sealed_private,
            created_at: self.now_s(),
            activates_at,
            retired_at: None,
            expires_at: None,
        })
    }

    pub(crate) fn open_key(&self, stored: &StoredKey) -> Result<SigningKey, StoreError> {
        let der = self
            .key_sealer
            .open(stored.kid.as_bytes(), &stored.sealed_private)
            .ok_or_else(|| StoreError::Corrupt(CryptoError::Unseal.to_string()))?;
        SigningKey::from_pkcs8(stored.alg, stored.kid.clone(), &der)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

pub(crate) fn app_not_found(client_id: &str) -> ManageError {
    ManageError::NotFound {
        what: "application",
        name: client_id.to_owned(),
    }
}
