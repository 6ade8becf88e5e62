//! The authorization server's behaviour, independent of HTTP: client authentication,
//! the grants, token checking, and keeping the cache in step with the store. The
//! management operations that the admin API, the dashboard and the CLI share are in
//! `manage`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::crypto::{
    self, CryptoError, MacKey, MasterKey, Random, Sealer, SecretHasher, SigningKey,
};
use crate::directory::{Directory, KeyRing, RealmEntry, RingKey};
use crate::domain::{
    Application, AuthMethod, ClientId, HostName, MAX_TTL_SECS, PublicUrl, Quota, Realm, RealmName,
    ScopeSet, SigningAlg, TokenFormat, TokenPrefix, TokenTtl, TokenTypeSpelling,
};
use crate::error::{ManageError, StoreError};
use crate::quota::QuotaCounter;
use crate::replay::ReplayCache;
use crate::store::{Change, ChangeSignal, Revocation, Store, StoredKey};
use crate::usage::UsageCounter;

mod manage;
mod sessions;

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

/// Settings of a realm to create; `None` takes the default.
#[derive(Debug, Clone)]
pub struct NewRealm {
    pub name: RealmName,
    pub hosts: Vec<HostName>,
    pub public_url: Option<PublicUrl>,
    pub token_format: Option<TokenFormat>,
    pub signing_alg: Option<SigningAlg>,
    pub token_prefix: Option<TokenPrefix>,
    pub token_type: Option<TokenTypeSpelling>,
    pub key_rotation_secs: Option<u64>,
}

/// Settings of an application to create; `None` takes the default. The name, keys,
/// audiences and roles come as given: `Authority::create_application` parses them.
#[derive(Debug, Clone, Default)]
pub struct NewApplication {
    pub name: String,
    pub client_id: Option<ClientId>,
    pub scopes: ScopeSet,
    pub default_scopes: Option<ScopeSet>,
    pub scope_required: bool,
    pub token_ttl: Option<TokenTtl>,
    pub token_format: Option<TokenFormat>,
    pub refresh_token_ttl: Option<TokenTtl>,
    pub auth_methods: Option<Vec<AuthMethod>>,
    pub public_key: Option<String>,
    pub jwks: Option<serde_json::Value>,
    pub audiences: Vec<String>,
    pub roles: Vec<String>,
    pub quota: Quota,
    pub enabled: bool,
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
    fn with(mut self, field: &str, value: serde_json::Value) -> Self {
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

/// Bounds on the state one application can make the server keep (issue 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    /// Live revocations (of single tokens and of refresh families) per application. A
    /// single-token revocation past it revokes every token of the application issued
    /// so far instead (as `revoke_tokens` does): the token surely dies, and no row is
    /// added. The directory holds every node's live revocations, so the bound is
    /// realm-wide up to one sync.
    pub live_revocations_per_app: usize,
    /// Live refresh families (chains of refresh tokens) per application. Past it, a
    /// client-credentials grant still issues its access token, without a refresh token
    /// (RFC 6749 §4.4.3 makes one optional) and without a row. Counted from the store
    /// at most once a minute per application, plus this node's own since: with N
    /// nodes, a bound can be passed by what the others start in that minute.
    pub live_refresh_families_per_app: u64,
}

impl Default for StateLimits {
    fn default() -> Self {
        Self {
            live_revocations_per_app: 100_000,
            live_refresh_families_per_app: 10_000,
        }
    }
}

/// (realm id, client id) → (when counted in the store, live refresh families since)
pub(crate) type FamilyCounts =
    std::sync::Mutex<std::collections::HashMap<(String, String), (i64, u64)>>;

/// The authorization server. One per process; cheap to share behind an `Arc`.
pub struct Authority {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Random>,
    master: MasterKey,
    pub(crate) secrets: SecretHasher,
    /// Signed credentials and assertion `jti`s already accepted.
    pub(crate) replay: ReplayCache,
    /// Tokens issued per application per hour, not yet flushed to the store.
    pub(crate) usage: UsageCounter,
    /// Tokens granted per application this minute and this UTC day (see `quota.rs`).
    pub(crate) quota: QuotaCounter,
    /// Held while usage is flushed and while it is read, so that a read never sees
    /// counts that have left memory but are not in the store yet.
    usage_flush: tokio::sync::Mutex<()>,
    /// Held from reading a value from the store (or writing it) to putting it in the
    /// cache, so that a sync that read an older version cannot put it back after a
    /// change this process just made: what a node changed, it obeys at once.
    cache_order: tokio::sync::Mutex<()>,
    key_sealer: Sealer,
    server_url: PublicUrl,
    directory: RwLock<Directory>,
    /// The last change-log entry this process has applied.
    synced_seq: AtomicI64,
    pub(crate) state_limits: StateLimits,
    pub(crate) family_counts: FamilyCounts,
}

/// Change-log entries read per round of [`Authority::sync`].
const SYNC_BATCH: i64 = 1000;
/// How long a retired key stays published: the longest any token may live.
const MAX_TTL: i64 = MAX_TTL_SECS as i64;
/// How long before it signs a key rotated in on schedule is published, so that
/// verifiers caching the JWKS see it first.
pub const SCHEDULED_KEY_LEAD_SECS: i64 = 3600;

impl Authority {
    /// Loads everything from the store, creating the `default` realm if it is missing.
    pub async fn open(
        store: Arc<dyn Store>,
        master: MasterKey,
        server_url: PublicUrl,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
    ) -> Result<Self, ManageError> {
        let authority = Self {
            secrets: master.secret_hasher(),
            key_sealer: master.sealer("tessera signing keys v1"),
            master,
            store,
            clock,
            rng,
            server_url,
            directory: RwLock::new(Directory::default()),
            replay: ReplayCache::default(),
            usage: UsageCounter::default(),
            quota: QuotaCounter::default(),
            usage_flush: tokio::sync::Mutex::new(()),
            cache_order: tokio::sync::Mutex::new(()),
            synced_seq: AtomicI64::new(0),
            state_limits: StateLimits::default(),
            family_counts: FamilyCounts::default(),
        };
        authority.reload().await?;
        if authority.realm(RealmName::DEFAULT).is_none() {
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
            match authority.create_realm(audit, default).await {
                // Another process made it first; it is in the store now.
                Ok(_) | Err(ManageError::Conflict(_)) => authority.reload().await?,
                Err(err) => return Err(err),
            }
        }
        Ok(authority)
    }

    /// The same authority with other bounds on per-application state (tests, tuning).
    #[must_use]
    pub fn with_state_limits(mut self, limits: StateLimits) -> Self {
        self.state_limits = limits;
        self
    }

    pub fn server_url(&self) -> &PublicUrl {
        &self.server_url
    }

    pub fn now_s(&self) -> i64 {
        self.clock.now_ms().div_euclid(1000)
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A MAC key derived from the master key for one purpose: every node that shares
    /// the master key derives the same one.
    pub fn mac_key(&self, purpose: &str) -> MacKey {
        self.master.mac_key(purpose)
    }

    /// `bytes` fresh random bytes as URL-safe base64.
    pub fn random_token(&self, bytes: usize) -> String {
        crypto::random_token(self.rng.as_ref(), bytes)
    }

    fn read(&self) -> RwLockReadGuard<'_, Directory> {
        // A poisoned lock means a panic while writing the cache; the data is still a
        // consistent map, and the next sync rewrites what changed.
        self.directory.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Directory> {
        self.directory.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn realm(&self, name: &str) -> Option<Arc<RealmEntry>> {
        self.read().realm(name).cloned()
    }

    pub fn realm_for_host(&self, host: &str) -> Option<Arc<RealmEntry>> {
        self.read().realm_for_host(host).cloned()
    }

    pub fn cached_application(&self, realm_id: &str, client_id: &str) -> Option<Arc<Application>> {
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
    pub fn offered(&self, realm: &RealmEntry) -> Offered {
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

    pub(crate) fn remember_revocation(&self, revocation: Revocation) {
        self.write().put_revocation(revocation);
    }

    /// Whether the store answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    // ----- keeping the cache in step with the store -----------------------------------

    /// Reads everything again. Used at start and when this process fell too far behind
    /// the change log.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _order = self.cache_order.lock().await;
        let seq = self.store.last_change_seq().await?;
        let now_s = self.now_s();
        let realms = self.store.realms().await?;
        let keys = self.store.signing_keys(None).await?;
        let mut entries = Vec::with_capacity(realms.len());
        for realm in realms {
            let realm_keys: Vec<_> = keys.iter().filter(|k| k.realm_id == realm.id).collect();
            entries.push(self.realm_entry(realm, &realm_keys, now_s)?);
        }
        let apps = self.store.applications().await?;
        let revoked = self.store.revocations(now_s).await?;
        self.write().replace_all(entries, apps, revoked);
        self.synced_seq.store(seq, Ordering::SeqCst);
        Ok(())
    }

    /// A signal that another node may have written, if the store can give one; a node
    /// syncs on it at once instead of at the next poll.
    pub async fn change_signal(&self) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        self.store.change_signal().await
    }

    /// Applies change-log entries written since the last call (by this process, another
    /// node, or the CLI). Returns how many were applied.
    pub async fn sync(&self) -> Result<usize, StoreError> {
        let mut applied = 0;
        loop {
            let since = self.synced_seq.load(Ordering::SeqCst);
            let entries = self.store.changes_since(since, SYNC_BATCH).await?;
            if entries.first().is_some_and(|e| e.seq > since + 1) && since > 0 {
                // Entries were purged before this process read them; the only safe
                // answer is to read everything.
                let oldest = self.store.changes_since(0, 1).await?;
                if oldest.first().is_some_and(|e| e.seq > since + 1) {
                    self.reload().await?;
                    return Ok(applied);
                }
            }
            let count = entries.len();
            for entry in entries {
                self.apply(&entry.change).await?;
                self.synced_seq.store(entry.seq, Ordering::SeqCst);
                applied += 1;
            }
            if count < usize::try_from(SYNC_BATCH).unwrap_or(usize::MAX) {
                break;
            }
        }
        self.write().forget_expired(self.now_s());
        Ok(applied)
    }

    async fn apply(&self, change: &Change) -> Result<(), StoreError> {
        let _order = self.cache_order.lock().await;
        match change {
            Change::Realm { realm_id } | Change::Keys { realm_id } => {
                self.refresh_realm(realm_id).await
            }
            Change::Application {
                realm_id,
                client_id,
            } => self.refresh_application(realm_id, client_id).await,
            Change::Revocation { jti } => {
                if let Some(rev) = self.store.find_revocation(jti).await? {
                    self.write().put_revocation(rev);
                }
                Ok(())
            }
        }
    }

    async fn refresh_realm(&self, realm_id: &str) -> Result<(), StoreError> {
        match self.store.find_realm(realm_id).await? {
            Some(realm) => {
                let keys = self.store.signing_keys(Some(realm_id)).await?;
                let keys: Vec<_> = keys.iter().collect();
                let known = self.read().has_realm_id(realm_id);
                let entry = self.realm_entry(realm, &keys, self.now_s())?;
                self.write().put_realm(entry);
                // A realm new to this process may already have applications.
                if !known {
                    for app in self.store.list_applications(realm_id).await? {
                        self.write().put_application(app);
                    }
                }
            }
            None => self.write().remove_realm(realm_id),
        }
        Ok(())
    }

    /// [`Self::refresh_realm`] after this process changed the realm in the store.
    async fn refresh_realm_now(&self, realm_id: &str) -> Result<(), StoreError> {
        let _order = self.cache_order.lock().await;
        self.refresh_realm(realm_id).await
    }

    async fn refresh_application(&self, realm_id: &str, client_id: &str) -> Result<(), StoreError> {
        match self.store.find_application(realm_id, client_id).await? {
            Some(app) => self.write().put_application(app),
            None => self.write().remove_application(realm_id, client_id),
        }
        Ok(())
    }

    fn realm_entry(
        &self,
        realm: Realm,
        keys: &[&StoredKey],
        now_s: i64,
    ) -> Result<RealmEntry, StoreError> {
        let mut ring = Vec::with_capacity(keys.len());
        for stored in keys {
            if stored.expires_at.is_some_and(|at| at <= now_s) {
                continue;
            }
            ring.push(RingKey {
                key: Arc::new(self.open_key(stored)?),
                activates_at: stored.activates_at,
                retired_at: stored.retired_at,
                expires_at: stored.expires_at,
            });
        }
        let issuer = realm.issuer(&self.server_url);
        let opaque = self
            .master
            .sealer(&format!("tessera opaque tokens v1 {}", realm.id));
        let refresh = self
            .master
            .sealer(&format!("tessera refresh tokens v1 {}", realm.id));
        Ok(RealmEntry {
            refresh,
            keys: KeyRing::new(ring),
            issuer,
            opaque,
            realm,
        })
    }

    fn open_key(&self, stored: &StoredKey) -> Result<SigningKey, StoreError> {
        let der = self
            .key_sealer
            .open(stored.kid.as_bytes(), &stored.sealed_private)
            .ok_or_else(|| StoreError::Corrupt(CryptoError::Unseal.to_string()))?;
        SigningKey::from_pkcs8(stored.alg, stored.kid.clone(), &der)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// A new key for `realm_id`, signing from `activates_at`.
    fn new_key(
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

    /// Removes expired state from the store and the cache.
    pub async fn purge(&self, keep_changes_secs: i64) -> Result<u64, StoreError> {
        let now_s = self.now_s();
        let purged = self.store.purge(now_s, now_s - keep_changes_secs).await?;
        self.write().forget_expired(now_s);
        Ok(purged)
    }
}
