//! The storage contract. `tessera-store` implements it for SQLite and PostgreSQL; the
//! domain only ever sees this trait.
//!
//! Every write also appends to a change log in the same transaction, so that every node
//! (and a server beside a CLI) can bring its caches up to date by reading the log.

use async_trait::async_trait;

use crate::domain::{Application, Realm, SigningAlg};
use crate::error::StoreError;

/// A realm's signing key as stored: the private part sealed under the master key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub kid: String,
    pub realm_id: String,
    pub alg: SigningAlg,
    pub sealed_private: Vec<u8>,
    pub created_at: i64,
    /// When it starts signing; it is published from `created_at`, so that verifiers
    /// fetching the JWKS know it before any token it signed reaches them.
    pub activates_at: i64,
    /// When it stops signing; it stays published until `expires_at`.
    pub retired_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// One revoked token, remembered only until the token would have expired anyway.
#[derive(Debug, Clone, PartialEq)]
pub struct Revocation {
    pub jti: String,
    pub realm_id: String,
    pub client_id: String,
    pub expires_at: i64,
}

/// A chain of refresh tokens: each use moves `generation` on by one. Presenting an
/// older generation again means the chain leaked, and the whole family is revoked.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshFamily {
    pub id: String,
    pub realm_id: String,
    pub client_id: String,
    pub generation: i64,
    pub expires_at: i64,
    pub revoked: bool,
}

/// The outcome of presenting a refresh token of generation `g`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshUse {
    /// It was the current one; the family is now at `g + 1`.
    Rotated,
    /// It was an older one: reuse. The family has been revoked.
    Reused,
    /// The family is unknown, expired or already revoked.
    Dead,
}

/// A page of a realm's applications, ordered by `client_id`: those after `after`,
/// whose name or client_id contains `search` (ignoring ASCII case), at most `limit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppQuery {
    pub after: Option<String>,
    pub search: Option<String>,
    pub limit: u32,
}

/// One administrative change: who made it, what, when and to what. Never a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Assigned by the store; ignored when appending.
    pub seq: i64,
    pub at_ms: i64,
    /// `admin-key`, `cli`, `dashboard:<session>`, or `system` for what the server does
    /// on its own (the default realm, scheduled key rotations, purging expired keys).
    pub actor: String,
    /// What was done, such as `application.create`.
    pub action: String,
    pub realm: String,
    pub client_id: Option<String>,
    /// A JSON object of what changed (field names and non-secret values).
    pub detail: String,
}

/// A page of the audit log, newest first: entries before `before` (a `seq`), of one
/// realm or application if given, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub before: Option<i64>,
    pub realm: Option<String>,
    pub client_id: Option<String>,
    pub limit: u32,
}

/// Tokens issued to one application in one hour (`hour` = unix seconds / 3600).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsageKey {
    pub realm_id: String,
    pub client_id: String,
    pub hour: i64,
}

/// How long hourly usage is kept, in hours.
pub const USAGE_KEPT_HOURS: i64 = 35 * 24;

/// Wakes a node when another may have written to the change log.
#[async_trait]
pub trait ChangeSignal: Send {
    /// Waits for the next signal. An error means the signal is gone; polling goes on.
    async fn wait(&mut self) -> Result<(), StoreError>;
}

/// What a change-log entry says changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Realm { realm_id: String },
    Application { realm_id: String, client_id: String },
    Keys { realm_id: String },
    Revocation { jti: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEntry {
    pub seq: i64,
    pub change: Change,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Whether the store answers at all (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether other nodes may serve from this store too.
    fn is_shared(&self) -> bool;

    async fn realms(&self) -> Result<Vec<Realm>, StoreError>;
    async fn find_realm(&self, realm_id: &str) -> Result<Option<Realm>, StoreError>;

    // Every administrative change below takes its audit record, and writes it in the
    // change's own transaction: a change is made with its record or not at all.

    /// Inserts a realm together with its first signing key. `Conflict` if the name is taken.
    async fn insert_realm(
        &self,
        realm: &Realm,
        first_key: &StoredKey,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Changes a realm's settings and, with `rotation` (a key and the `keep_old_until`
    /// of [`Store::rotate_signing_key`]), rotates a new key in, all in one transaction.
    /// `false`, and nothing written, if there is no such realm.
    async fn update_realm(
        &self,
        realm: &Realm,
        rotation: Option<(&StoredKey, i64)>,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;
    /// Deletes the realm with its applications, keys and revocations. `false`, and
    /// nothing written, if there is no such realm.
    async fn delete_realm(&self, realm_id: &str, audit: &AuditRecord) -> Result<bool, StoreError>;

    /// Every application of every realm (to fill the cache at start).
    async fn applications(&self) -> Result<Vec<Application>, StoreError>;
    async fn list_applications(&self, realm_id: &str) -> Result<Vec<Application>, StoreError>;
    async fn find_application(
        &self,
        realm_id: &str,
        client_id: &str,
    ) -> Result<Option<Application>, StoreError>;
    /// `Conflict` if the client id is taken in that realm.
    async fn insert_application(
        &self,
        app: &Application,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// `false`, and nothing written, if there is no such application.
    async fn update_application(
        &self,
        app: &Application,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;
    /// `false`, and nothing written, if there is no such application.
    async fn delete_application(
        &self,
        realm_id: &str,
        client_id: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;

    async fn signing_keys(&self, realm_id: Option<&str>) -> Result<Vec<StoredKey>, StoreError>;
    /// Adds `key` to its realm, to sign from `key.activates_at`. Every other key of the
    /// realm stops signing then (if it has not already) and stays published until
    /// `keep_old_until`. With `unless_since`, does nothing and answers false when a key
    /// of the realm activates at that time or later, so that nodes rotating on schedule
    /// at the same moment add one key between them; also false, and nothing written,
    /// if the realm is gone.
    async fn rotate_signing_key(
        &self,
        key: &StoredKey,
        keep_old_until: i64,
        unless_since: Option<i64>,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;

    /// Revocations whose token has not expired by `now_s`.
    async fn revocations(&self, now_s: i64) -> Result<Vec<Revocation>, StoreError>;
    async fn find_revocation(&self, jti: &str) -> Result<Option<Revocation>, StoreError>;
    async fn insert_revocation(&self, revocation: &Revocation) -> Result<(), StoreError>;

    async fn insert_refresh_family(&self, family: &RefreshFamily) -> Result<(), StoreError>;
    /// Atomically moves the family from `generation` to `generation + 1` (and its
    /// expiry to `expires_at`), or revokes it if `generation` is stale.
    async fn use_refresh_family(
        &self,
        id: &str,
        generation: i64,
        expires_at: i64,
        now_s: i64,
    ) -> Result<RefreshUse, StoreError>;

    /// How many of the application's refresh families are alive (not revoked, not
    /// expired by `now_s`): the bound of `StateLimits::live_refresh_families_per_app`.
    async fn live_refresh_families(
        &self,
        realm_id: &str,
        client_id: &str,
        now_s: i64,
    ) -> Result<u64, StoreError>;

    /// Revokes a refresh family (RFC 7009): none of its refresh tokens works again.
    /// `false` if there is no such family.
    async fn revoke_refresh_family(&self, id: &str) -> Result<bool, StoreError>;

    /// Records a one-time value (the SHA-256 of a signed credential or an assertion's
    /// `jti`) as used until `expires_at`. `false` if it was already claimed (by this
    /// node before a restart, or by another node) and has not expired by `now_s`: a
    /// replay. The node's in-memory cache answers first; this makes the answer hold
    /// across restarts and nodes.
    async fn claim_once(
        &self,
        key: &[u8; 32],
        expires_at: i64,
        now_s: i64,
    ) -> Result<bool, StoreError>;

    /// A page of a realm's applications (see [`AppQuery`]).
    async fn application_page(
        &self,
        realm_id: &str,
        query: &AppQuery,
    ) -> Result<Vec<Application>, StoreError>;

    /// Records an administrative act that changes nothing stored (a token an
    /// administrator issued). A change's record is written with the change instead.
    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;

    /// Adds counts of tokens issued to the hourly totals (one transaction).
    async fn add_usage(&self, counts: &[(UsageKey, u64)]) -> Result<(), StoreError>;
    /// An application's hourly totals from `since_hour` on, oldest first.
    async fn usage(
        &self,
        realm_id: &str,
        client_id: &str,
        since_hour: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError>;
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;

    /// A signal that the change log may have grown, sooner than polling would notice
    /// (PostgreSQL: LISTEN/NOTIFY). `None` where the store has none; nodes poll the log
    /// either way, so a lost signal only delays a change to the next poll.
    async fn change_signal(&self) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        Ok(None)
    }

    /// Change-log entries after `seq`, oldest first, at most `limit`.
    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<ChangeEntry>, StoreError>;
    async fn last_change_seq(&self) -> Result<i64, StoreError>;

    /// Removes expired revocations, keys, refresh families and one-time claims, and
    /// change-log entries older than `changes_before_s`; returns how many rows went. A
    /// shared store lets one node at a time do it; the others get `Ok(0)`. Expired
    /// signing keys go with an audit record per realm (actor `system`), in the same
    /// transaction.
    async fn purge(&self, now_s: i64, changes_before_s: i64) -> Result<u64, StoreError>;
}
