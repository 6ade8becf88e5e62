//! The in-memory picture of the store that the hot path reads: realms with their keys,
//! applications, and live revocations. It is refreshed from the change log, never read
//! through to the store on a request.

use std::collections::HashMap;
use std::sync::Arc;

use crate::crypto::{Sealer, SigningKey};
use crate::domain::{Application, Realm};
use crate::store::Revocation;

/// A realm as the hot path needs it: settings, issuer, keys, and its opaque-token sealer.
pub struct RealmEntry {
    pub realm: Realm,
    pub issuer: String,
    pub keys: KeyRing,
    pub(crate) opaque: Sealer,
    pub(crate) refresh: Sealer,
}

/// The realm's published keys, each with the period in which it signs.
pub struct KeyRing {
    /// Newest activation first.
    keys: Vec<RingKey>,
    /// The JWKS document, rendered once per change.
    pub jwks: Arc<str>,
}

/// A published key and its signing period: from `activates_at` (unix seconds) until
/// `retired_at`, if it has been retired; it leaves the JWKS at `expires_at`.
pub struct RingKey {
    pub key: Arc<SigningKey>,
    pub activates_at: i64,
    pub retired_at: Option<i64>,
    pub expires_at: Option<i64>,
}

impl RingKey {
    pub fn signs_at(&self, now_s: i64) -> bool {
        self.activates_at <= now_s && self.retired_at.is_none_or(|until| now_s < until)
    }
}

impl KeyRing {
    pub fn new(mut keys: Vec<RingKey>) -> Self {
        keys.sort_by(|a, b| {
            b.activates_at
                .cmp(&a.activates_at)
                .then_with(|| a.key.kid.cmp(&b.key.kid))
        });
        let jwks: Vec<_> = keys.iter().map(|k| k.key.public_jwk().clone()).collect();
        let jwks = serde_json::json!({ "keys": jwks }).to_string();
        Self {
            keys,
            jwks: jwks.into(),
        }
    }

    /// The key that signs at `now_s`: of the keys active then, the one activated last.
    /// Every node computes this from the same stored times, so they agree without talking.
    pub fn signer(&self, now_s: i64) -> Option<&Arc<SigningKey>> {
        self.keys.iter().find(|k| k.signs_at(now_s)).map(|k| &k.key)
    }

    /// When the newest key starts (or started) signing.
    pub fn newest_activation(&self) -> Option<i64> {
        self.keys.first().map(|k| k.activates_at)
    }

    /// Every published key, newest activation first.
    pub fn keys(&self) -> &[RingKey] {
        &self.keys
    }

    pub fn find(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        self.keys.iter().find(|k| k.key.kid == kid).map(|k| &k.key)
    }
}

#[derive(Default)]
pub(crate) struct Directory {
    realms: HashMap<String, Arc<RealmEntry>>,
    /// realm id → realm name
    names: HashMap<String, String>,
    /// host name → realm name
    hosts: HashMap<String, String>,
    /// realm id → client id → application
    apps: HashMap<String, HashMap<String, Arc<Application>>>,
    /// jti → expiry (unix seconds), and the realm id and client id it belongs to
    revoked: HashMap<String, (i64, AppKey)>,
    /// (realm id, client id) → live revocations of that application
    revoked_per_app: HashMap<AppKey, usize>,
    /// Dashboard sessions begun at or before this instant (unix ms) have been ended.
    admin_sessions_ended_before_ms: i64,
}

type AppKey = (String, String);

/// A revocation whose key starts with this, followed by a unix time in milliseconds,
/// ends every dashboard session begun until then.
pub(crate) const SESSIONS_BEFORE_PREFIX: &str = "admin-sessions-before:";

impl Directory {
    pub fn realm(&self, name: &str) -> Option<&Arc<RealmEntry>> {
        self.realms.get(name)
    }

    /// The realm serving `host` (any case, no port) at the root paths.
    pub fn realm_for_host(&self, host: &str) -> Option<&Arc<RealmEntry>> {
        // Most deployments name no hosts: skip the lower-casing allocation then.
        if self.hosts.is_empty() {
            return None;
        }
        let name = match self.hosts.get(host) {
            Some(name) => name,
            None => self.hosts.get(&host.to_ascii_lowercase())?,
        };
        self.realms.get(name)
    }

    pub fn has_realm_id(&self, realm_id: &str) -> bool {
        self.names.contains_key(realm_id)
    }

    pub fn realms(&self) -> impl Iterator<Item = &Arc<RealmEntry>> {
        self.realms.values()
    }

    pub fn application(&self, realm_id: &str, client_id: &str) -> Option<&Arc<Application>> {
        self.apps.get(realm_id).and_then(|apps| apps.get(client_id))
    }

    pub fn applications_of(&self, realm_id: &str) -> impl Iterator<Item = &Arc<Application>> {
        self.apps
            .get(realm_id)
            .into_iter()
            .flat_map(|apps| apps.values())
    }

    pub fn is_revoked(&self, jti: &str) -> bool {
        self.revoked.contains_key(jti)
    }

    pub fn put_realm(&mut self, entry: RealmEntry) {
        self.remove_realm_names(&entry.realm.id);
        let name = entry.realm.name.as_str().to_owned();
        // A stale entry under this name from a deleted realm goes too.
        if let Some(old) = self.realms.get(&name) {
            let old_id = old.realm.id.clone();
            if old_id != entry.realm.id {
                self.remove_realm(&old_id);
            }
        }
        for host in &entry.realm.hosts {
            self.hosts.insert(host.as_str().to_owned(), name.clone());
        }
        self.names.insert(entry.realm.id.clone(), name.clone());
        self.realms.insert(name, Arc::new(entry));
    }

    pub fn remove_realm(&mut self, realm_id: &str) {
        self.remove_realm_names(realm_id);
        self.apps.remove(realm_id);
    }

    fn remove_realm_names(&mut self, realm_id: &str) {
        if let Some(name) = self.names.remove(realm_id) {
            self.realms.remove(&name);
            self.hosts.retain(|_, realm| *realm != name);
        }
    }

    pub fn put_application(&mut self, app: Application) {
        self.apps
            .entry(app.realm_id.clone())
            .or_default()
            .insert(app.client_id.as_str().to_owned(), Arc::new(app));
    }

    pub fn remove_application(&mut self, realm_id: &str, client_id: &str) {
        if let Some(apps) = self.apps.get_mut(realm_id) {
            apps.remove(client_id);
        }
    }

    pub fn put_revocation(&mut self, revocation: Revocation) {
        let Revocation {
            jti,
            realm_id,
            client_id,
            expires_at,
        } = revocation;
        if let Some(ms) = jti
            .strip_prefix(SESSIONS_BEFORE_PREFIX)
            .and_then(|ms| ms.parse::<i64>().ok())
        {
            self.admin_sessions_ended_before_ms = self.admin_sessions_ended_before_ms.max(ms);
        }
        let app = (realm_id, client_id);
        match self.revoked.get_mut(&jti) {
            Some(known) => known.0 = expires_at,
            None => {
                *self.revoked_per_app.entry(app.clone()).or_default() += 1;
                self.revoked.insert(jti, (expires_at, app));
            }
        }
    }

    /// How many revocations of the application's tokens (and refresh families) are live.
    pub fn live_revocations(&self, realm_id: &str, client_id: &str) -> usize {
        // Keyed by owned strings; looked up once per revocation request, not per token.
        self.revoked_per_app
            .get(&(realm_id.to_owned(), client_id.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    pub fn admin_sessions_ended_before_ms(&self) -> i64 {
        self.admin_sessions_ended_before_ms
    }

    /// Forgets revocations of tokens that have expired on their own.
    pub fn forget_expired(&mut self, now_s: i64) {
        let per_app = &mut self.revoked_per_app;
        self.revoked.retain(|_, (exp, app)| {
            let keep = *exp > now_s;
            if !keep && let Some(count) = per_app.get_mut(app) {
                *count = count.saturating_sub(1);
            }
            keep
        });
        per_app.retain(|_, count| *count > 0);
    }

    pub fn replace_all(
        &mut self,
        realms: Vec<RealmEntry>,
        apps: Vec<Application>,
        revoked: Vec<Revocation>,
    ) {
        *self = Self::default();
        for realm in realms {
            self.put_realm(realm);
        }
        for app in apps {
            if self.names.contains_key(&app.realm_id) {
                self.put_application(app);
            }
        }
        for revocation in revoked {
            self.put_revocation(revocation);
        }
    }
}
