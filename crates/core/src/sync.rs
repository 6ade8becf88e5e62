//! Keeping the cache in step with the store: loading everything at start, then applying
//! the change log (written by this process, another node or the CLI) entry by entry,
//! and forgetting what expired.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::directory::{KeyRing, RealmEntry, RingKey};
use crate::domain::Realm;
use crate::error::StoreError;
use crate::shared::Shared;
use crate::store::{Change, ChangeSignal, StoredKey};

/// Change-log entries read per round of [`CacheSync::sync`].
const SYNC_BATCH: i64 = 1000;

pub(crate) struct CacheSync {
    shared: Arc<Shared>,
    /// The last change-log entry this process has applied.
    synced_seq: AtomicI64,
}

impl CacheSync {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            synced_seq: AtomicI64::new(0),
        }
    }

    /// Reads everything again. Used at start and when this process fell too far behind
    /// the change log.
    pub(crate) async fn reload(&self) -> Result<(), StoreError> {
        let shared = &self.shared;
        let store = shared.store();
        let _order = shared.cache_order().await;
        let seq = store.last_change_seq().await?;
        let now_s = shared.now_s();
        let realms = store.realms().await?;
        let keys = store.signing_keys(None).await?;
        let mut entries = Vec::with_capacity(realms.len());
        for realm in realms {
            let realm_keys: Vec<_> = keys.iter().filter(|k| k.realm_id == realm.id).collect();
            entries.push(self.realm_entry(realm, &realm_keys, now_s)?);
        }
        let apps = store.applications().await?;
        let revoked = store.revocations(now_s).await?;
        shared.write().replace_all(entries, apps, revoked);
        self.synced_seq.store(seq, Ordering::SeqCst);
        Ok(())
    }

    /// A signal that another node may have written, if the store can give one; a node
    /// syncs on it at once instead of at the next poll.
    pub(crate) async fn change_signal(&self) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        self.shared.store().change_signal().await
    }

    /// Applies change-log entries written since the last call (by this process, another
    /// node, or the CLI). Returns how many were applied.
    pub(crate) async fn sync(&self) -> Result<usize, StoreError> {
        let store = self.shared.store();
        let mut applied = 0;
        loop {
            let since = self.synced_seq.load(Ordering::SeqCst);
            let entries = store.changes_since(since, SYNC_BATCH).await?;
            if entries.first().is_some_and(|e| e.seq > since + 1) && since > 0 {
                // Entries were purged before this process read them; the only safe
                // answer is to read everything.
                let oldest = store.changes_since(0, 1).await?;
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
        self.shared.write().forget_expired(self.shared.now_s());
        Ok(applied)
    }

    async fn apply(&self, change: &Change) -> Result<(), StoreError> {
        let _order = self.shared.cache_order().await;
        match change {
            Change::Realm { realm_id } | Change::Keys { realm_id } => {
                self.refresh_realm(realm_id).await
            }
            Change::Application {
                realm_id,
                client_id,
            } => self.refresh_application(realm_id, client_id).await,
            Change::Revocation { jti } => {
                if let Some(rev) = self.shared.store().find_revocation(jti).await? {
                    self.shared.write().put_revocation(rev);
                }
                Ok(())
            }
        }
    }

    async fn refresh_realm(&self, realm_id: &str) -> Result<(), StoreError> {
        let shared = &self.shared;
        let store = shared.store();
        match store.find_realm(realm_id).await? {
            Some(realm) => {
                let keys = store.signing_keys(Some(realm_id)).await?;
                let keys: Vec<_> = keys.iter().collect();
                let known = shared.read().has_realm_id(realm_id);
                let entry = self.realm_entry(realm, &keys, shared.now_s())?;
                shared.write().put_realm(entry);
                // A realm new to this process may already have applications.
                if !known {
                    for app in store.list_applications(realm_id).await? {
                        shared.write().put_application(app);
                    }
                }
            }
            None => shared.write().remove_realm(realm_id),
        }
        Ok(())
    }

    /// [`Self::refresh_realm`] after this process changed the realm in the store.
    pub(crate) async fn refresh_realm_now(&self, realm_id: &str) -> Result<(), StoreError> {
        let _order = self.shared.cache_order().await;
        self.refresh_realm(realm_id).await
    }

    async fn refresh_application(&self, realm_id: &str, client_id: &str) -> Result<(), StoreError> {
        let shared = &self.shared;
        match shared.store().find_application(realm_id, client_id).await? {
            Some(app) => shared.write().put_application(app),
            None => shared.write().remove_application(realm_id, client_id),
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
                key: Arc::new(self.shared.open_key(stored)?),
                activates_at: stored.activates_at,
                retired_at: stored.retired_at,
                expires_at: stored.expires_at,
            });
        }
        let issuer = realm.issuer(self.shared.server_url());
        let opaque = self
            .shared
            .sealer(&format!("tessera opaque tokens v1 {}", realm.id));
        let refresh = self
            .shared
            .sealer(&format!("tessera refresh tokens v1 {}", realm.id));
        Ok(RealmEntry {
            refresh,
            keys: KeyRing::new(ring),
            issuer,
            opaque,
            realm,
        })
    }

    /// Removes expired state from the store and the cache.
    pub(crate) async fn purge(&self, keep_changes_secs: i64) -> Result<u64, StoreError> {
        let now_s = self.shared.now_s();
        let purged = self
            .shared
            .store()
            .purge(now_s, now_s - keep_changes_secs)
            .await?;
        self.shared.write().forget_expired(now_s);
        Ok(purged)
    }
}
