//! The management operations on the authority: realms, applications, usage and the
//! audit log. Each writes the store first and then this process's cache, under the
//! cache-order lock (see `sync.rs`); the admin API, the dashboard and the CLI all reach
//! them through the server's `operations`. Each takes the [`Audit`] of who asked, and
//! hands the store the change together with its audit record: the store writes both in
//! one transaction, or neither.

use std::sync::Arc;

use crate::client_keys::{Jwks, PublicKeyPem};
use crate::crypto;
use crate::directory::RealmEntry;
use crate::domain::{
    Application, ApplicationName, Audience, AuthMethod, ClientId, HostName, MAX_TTL_SECS,
    PublicUrl, Quota, Realm, RealmName, Role, ScopeSet, SecretHash, SigningAlg, TokenFormat,
    TokenPrefix, TokenTtl, TokenTypeSpelling,
};
use crate::error::{FieldError, ManageError, StoreError};
use crate::store::{AppQuery, AuditQuery, AuditRecord};

use crate::shared::{Actor, Audit, Shared, app_not_found};
use crate::sync::CacheSync;
use crate::tokens::{Dialect, GrantedToken, Grants};

/// How long a retired key stays published: the longest any token may live.
const MAX_TTL: i64 = MAX_TTL_SECS as i64;
/// How long before it signs a key rotated in on schedule is published, so that
/// verifiers caching the JWKS see it first.
pub const SCHEDULED_KEY_LEAD_SECS: i64 = 3600;

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
/// audiences and roles come as given: [`Manage::create_application`] parses them.
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

/// The management operations (`Authority::manage`), over the parts they use: the
/// cache to refresh after a realm changed, and the grants (an administrator's token,
/// revoking every token of an application, usage, hashing a new secret). It is a few
/// references, taken by value, so that an operation's future borrows the authority
/// rather than this view.
#[derive(Clone, Copy)]
pub struct Manage<'a> {
    shared: &'a Shared,
    cache: &'a CacheSync,
    grants: &'a Grants,
}

impl<'a> Manage<'a> {
    pub(crate) fn new(shared: &'a Shared, cache: &'a CacheSync, grants: &'a Grants) -> Self {
        Self {
            shared,
            cache,
            grants,
        }
    }

    // ----- realms ---------------------------------------------------------------------

    pub fn realms(self) -> Vec<Arc<RealmEntry>> {
        let mut realms: Vec<_> = self.shared.read().realms().cloned().collect();
        realms.sort_by(|a, b| a.realm.name.as_str().cmp(b.realm.name.as_str()));
        realms
    }

    pub fn find_realm(self, name: &str) -> Result<Arc<RealmEntry>, ManageError> {
        self.shared.find_realm(name)
    }

    pub async fn create_realm(
        self,
        audit: Audit,
        new: NewRealm,
    ) -> Result<Arc<RealmEntry>, ManageError> {
        let realm = Realm {
            id: uuid::Builder::from_random_bytes(self.random16())
                .into_uuid()
                .to_string(),
            name: new.name,
            hosts: new.hosts,
            public_url: new.public_url,
            token_format: new.token_format.unwrap_or(TokenFormat::Jwt),
            signing_alg: new.signing_alg.unwrap_or(SigningAlg::Es256),
            token_prefix: new.token_prefix.unwrap_or_default(),
            previous_token_prefixes: Vec::new(),
            token_type: new.token_type.unwrap_or(TokenTypeSpelling::Bearer),
            credential_window_secs: 60,
            assertion_max_lifetime_secs: 3600,
            key_rotation_secs: new.key_rotation_secs,
            created_at: self.shared.now_s(),
        };
        self.check_hosts_free(&realm)?;
        let key = self
            .shared
            .new_key(&realm.id, realm.signing_alg, self.shared.now_s())?;
        let record = self
            .shared
            .audit_record(audit, "realm.create", realm.name.as_str(), None);
        self.shared
            .store()
            .insert_realm(&realm, &key, &record)
            .await?;
        self.cache.refresh_realm_now(&realm.id).await?;
        self.find_realm(realm.name.as_str())
    }

    fn check_hosts_free(self, realm: &Realm) -> Result<(), ManageError> {
        let directory = self.shared.read();
        for host in &realm.hosts {
            if let Some(other) = directory.realm_for_host(host.as_str())
                && other.realm.id != realm.id
            {
                return Err(ManageError::Conflict(format!(
                    "host {host} already belongs to realm {}",
                    other.realm.name
                )));
            }
        }
        Ok(())
    }

    /// Changes a realm's settings through `edit`. A new signing algorithm gets a new
    /// key at once; the old key stays published until every token it signed expired.
    /// (At once rather than after a lead: a verifier that pinned the old algorithm
    /// has to be changed anyway, and every node switches within one sync.)
    pub async fn update_realm(
        self,
        audit: Audit,
        name: &str,
        edit: impl FnOnce(&mut Realm) -> Result<(), FieldError>,
    ) -> Result<Arc<RealmEntry>, ManageError> {
        let current = self.find_realm(name)?;
        let mut realm = current.realm.clone();
        edit(&mut realm)?;
        if realm.token_prefix != current.realm.token_prefix {
            // Tokens already handed out keep working under the prefix they were given.
            let old = current.realm.token_prefix.clone();
            realm
                .previous_token_prefixes
                .retain(|p| *p != old && *p != realm.token_prefix);
            realm.previous_token_prefixes.insert(0, old);
            realm.previous_token_prefixes.truncate(8);
        }
        self.check_hosts_free(&realm)?;
        let new_key = if realm.signing_alg == current.realm.signing_alg {
            None
        } else {
            Some(
                self.shared
                    .new_key(&realm.id, realm.signing_alg, self.shared.now_s())?,
            )
        };
        let rotation = new_key.as_ref().map(|k| (k, k.activates_at + MAX_TTL));
        let record = self.shared.audit_record(audit, "realm.update", name, None);
        if !self
            .shared
            .store()
            .update_realm(&realm, rotation, &record)
            .await?
        {
            return Err(ManageError::NotFound {
                what: "realm",
                name: name.to_owned(),
            });
        }
        self.cache.refresh_realm_now(&realm.id).await?;
        self.find_realm(realm.name.as_str())
    }

    /// Adds a signing key to the realm, published now and signing from `activate_in`
    /// seconds on; the keys signing until then stop at that moment and stay published
    /// until every token they could have signed has expired. Every node picks the
    /// signing key by those stored times, so with a lead longer than one sync they all
    /// switch at the same second.
    pub async fn rotate_keys(
        self,
        audit: Audit,
        name: &str,
        activate_in: u64,
    ) -> Result<Arc<RealmEntry>, ManageError> {
        let entry = self.find_realm(name)?;
        let lead = i64::try_from(activate_in).unwrap_or(i64::MAX);
        let key = self.shared.new_key(
            &entry.realm.id,
            entry.realm.signing_alg,
            self.shared.now_s().saturating_add(lead),
        )?;
        let audit = audit
            .with("activate_in", activate_in.into())
            .with("kid", key.kid.as_str().into());
        let record = self
            .shared
            .audit_record(audit, "realm.rotate_keys", name, None);
        let keep_old_until = key.activates_at.saturating_add(MAX_TTL);
        self.shared
            .store()
            .rotate_signing_key(&key, keep_old_until, None, &record)
            .await?;
        self.cache.refresh_realm_now(&entry.realm.id).await?;
        self.find_realm(name)
    }

    /// Rotates the keys of every realm whose schedule says so, one hour ahead of when
    /// the new key signs. Called periodically by every node; the store lets only one
    /// new key in per period whoever asks, and only the node that added it writes the
    /// audit record (actor `system`). Returns the realms rotated.
    pub async fn rotate_due_keys(self) -> Result<Vec<RealmName>, ManageError> {
        let now_s = self.shared.now_s();
        let mut rotated = Vec::new();
        for entry in self.realms() {
            let Some(period) = entry.realm.key_rotation_secs else {
                continue;
            };
            let period = i64::try_from(period).unwrap_or(i64::MAX);
            let activates_at = now_s.saturating_add(SCHEDULED_KEY_LEAD_SECS);
            let newest = entry.keys.newest_activation().unwrap_or(i64::MIN);
            if newest.saturating_add(period) > activates_at {
                continue;
            }
            let key =
                self.shared
                    .new_key(&entry.realm.id, entry.realm.signing_alg, activates_at)?;
            // Unless another node got there first: a key activating within the last
            // period means the rotation is done.
            let since = activates_at.saturating_sub(period).saturating_add(1);
            let audit = Audit::by(Actor::system())
                .with("activate_in", SCHEDULED_KEY_LEAD_SECS.into())
                .with("kid", key.kid.as_str().into());
            let record = self.shared.audit_record(
                audit,
                "realm.rotate_keys",
                entry.realm.name.as_str(),
                None,
            );
            let keep_old_until = activates_at.saturating_add(MAX_TTL);
            if self
                .shared
                .store()
                .rotate_signing_key(&key, keep_old_until, Some(since), &record)
                .await?
            {
                rotated.push(entry.realm.name.clone());
            }
            self.cache.refresh_realm_now(&entry.realm.id).await?;
        }
        Ok(rotated)
    }

    pub async fn delete_realm(self, audit: Audit, name: &str) -> Result<(), ManageError> {
        let entry = self.find_realm(name)?;
        if entry.realm.name.is_default() {
            return Err(ManageError::Forbidden(
                "the default realm cannot be deleted",
            ));
        }
        let record = self.shared.audit_record(audit, "realm.delete", name, None);
        self.shared
            .store()
            .delete_realm(&entry.realm.id, &record)
            .await?;
        let _order = self.shared.cache_order().await;
        self.shared.write().remove_realm(&entry.realm.id);
        Ok(())
    }

    // ----- usage ----------------------------------------------------------------------

    /// Tokens issued to an application in each of the last `hours` hours, oldest
    /// first, zeros included: the store's totals plus this process's unflushed counts.
    pub async fn usage(
        self,
        realm: &str,
        client_id: &str,
        hours: u32,
    ) -> Result<Vec<(i64, u64)>, ManageError> {
        let entry = self.find_realm(realm)?;
        let now_hour = self.shared.now_s().div_euclid(3600);
        let first = now_hour - i64::from(hours) + 1;
        let mut series: Vec<(i64, u64)> = (first..=now_hour).map(|h| (h, 0)).collect();
        let counted = self
            .grants
            .usage_since(&entry.realm.id, client_id, first)
            .await?;
        for (hour, tokens) in counted {
            let slot = usize::try_from(hour - first).ok();
            if let Some((_, total)) = slot.and_then(|i| series.get_mut(i)) {
                *total += tokens;
            }
        }
        Ok(series)
    }

    // ----- audit log ------------------------------------------------------------------

    pub async fn audit(self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.shared.store().audit(query).await
    }

    // ----- management: applications ---------------------------------------------------

    /// A page of a realm's applications, ordered by client_id (see [`AppQuery`]).
    pub async fn application_page(
        self,
        realm: &str,
        query: &AppQuery,
    ) -> Result<Vec<Application>, ManageError> {
        let entry = self.find_realm(realm)?;
        Ok(self
            .shared
            .store()
            .application_page(&entry.realm.id, query)
            .await?)
    }

    /// An application as the store has it now.
    pub async fn find_application(
        self,
        realm: &str,
        client_id: &str,
    ) -> Result<Application, ManageError> {
        self.shared.find_application(realm, client_id).await
    }

    /// Creates an application and returns it with its secret, which is shown only now.
    pub async fn create_application(
        self,
        audit: Audit,
        realm: &str,
        new: NewApplication,
    ) -> Result<(Application, String), ManageError> {
        // A key that does not parse is refused before the realm is looked for, as it was
        // when the server's operations checked keys first.
        let public_key = new
            .public_key
            .as_deref()
            .map(|pem| PublicKeyPem::parse("public_key", pem))
            .transpose()?;
        let jwks = new.jwks.map(|jwks| Jwks::parse("jwks", jwks)).transpose()?;
        let entry = self.find_realm(realm)?;
        let name = ApplicationName::parse("name", &new.name)?;
        let now_s = self.shared.now_s();
        let secret = crypto::random_credential(self.shared.rng(), 32);
        let client_id = match new.client_id {
            Some(id) => id,
            None => ClientId::generated(crypto::random_credential(self.shared.rng(), 18)),
        };
        let app = Application {
            realm_id: entry.realm.id.clone(),
            client_id,
            name,
            enabled: new.enabled,
            secrets: vec![SecretHash {
                hash: self.grants.clients().hash_secret(&secret),
                expires_at: None,
            }],
            scopes: new.scopes,
            default_scopes: new.default_scopes,
            scope_required: new.scope_required,
            token_ttl: new.token_ttl.unwrap_or_default(),
            token_format: new.token_format,
            refresh_token_ttl: new.refresh_token_ttl,
            auth_methods: new.auth_methods.unwrap_or_else(|| {
                vec![AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost]
            }),
            public_key,
            jwks,
            audiences: Audience::parse_list("audiences", &new.audiences)?,
            roles: Role::parse_list("roles", &new.roles)?,
            quota: new.quota,
            // A client_id may be reused after a deletion; the new application must not
            // inherit tokens its predecessor was given.
            tokens_valid_after_ms: self.shared.now_ms(),
            created_at: now_s,
            updated_at: now_s,
        };
        validate_application(&app)?;
        let record = self.shared.audit_record(
            audit,
            "application.create",
            realm,
            Some(app.client_id.as_str()),
        );
        self.shared
            .store()
            .insert_application(&app, &record)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => ManageError::Conflict(format!(
                    "client_id {} already exists in realm {realm}",
                    app.client_id
                )),
                other => other.into(),
            })?;
        let _order = self.shared.cache_order().await;
        self.shared.write().put_application(app.clone());
        Ok((app, secret))
    }

    /// Changes an application through `edit`, then checks it is still coherent.
    pub async fn update_application(
        self,
        audit: Audit,
        realm: &str,
        client_id: &str,
        edit: impl FnOnce(&mut Application) -> Result<(), FieldError>,
    ) -> Result<Application, ManageError> {
        let mut app = self.find_application(realm, client_id).await?;
        let was_enabled = app.enabled;
        edit(&mut app)?;
        validate_application(&app)?;
        if was_enabled && !app.enabled {
            // Disabling kills every token for good: enabling again must not revive them.
            self.grants.kill_tokens_issued_so_far(&mut app);
        }
        let record = self
            .shared
            .audit_record(audit, "application.update", realm, Some(client_id));
        self.shared.save_application(app, &record).await
    }

    pub async fn delete_application(
        self,
        audit: Audit,
        realm: &str,
        client_id: &str,
    ) -> Result<(), ManageError> {
        let entry = self.find_realm(realm)?;
        let record = self
            .shared
            .audit_record(audit, "application.delete", realm, Some(client_id));
        if !self
            .shared
            .store()
            .delete_application(&entry.realm.id, client_id, &record)
            .await?
        {
            return Err(app_not_found(client_id));
        }
        let _order = self.shared.cache_order().await;
        self.shared
            .write()
            .remove_application(&entry.realm.id, client_id);
        Ok(())
    }

    /// A new secret. With a grace period the old secret keeps working that long;
    /// without one, every token issued so far dies with it.
    pub async fn rotate_secret(
        self,
        audit: Audit,
        realm: &str,
        client_id: &str,
        grace_secs: u64,
    ) -> Result<(String, Option<i64>), ManageError> {
        if grace_secs > MAX_TTL_SECS {
            return Err(FieldError::new(
                "grace_period",
                format!("a grace period is 0 to {MAX_TTL_SECS} seconds"),
            )
            .into());
        }
        let mut app = self.find_application(realm, client_id).await?;
        let now_ms = self.shared.now_ms();
        let now_s = now_ms.div_euclid(1000);
        let secret = crypto::random_credential(self.shared.rng(), 32);
        let fresh = SecretHash {
            hash: self.grants.clients().hash_secret(&secret),
            expires_at: None,
        };
        let old_until = if grace_secs == 0 {
            app.secrets = vec![fresh];
            self.grants.kill_tokens_issued_so_far(&mut app);
            None
        } else {
            let until = now_s + i64::try_from(grace_secs).unwrap_or(i64::MAX);
            let mut kept: Vec<_> = app
                .secrets
                .drain(..)
                .filter(|s| s.expires_at.is_none_or(|at| at > now_s))
                .map(|s| SecretHash {
                    hash: s.hash,
                    expires_at: Some(s.expires_at.map_or(until, |at| at.min(until))),
                })
                .collect();
            kept.insert(0, fresh);
            app.secrets = kept;
            Some(until)
        };
        let action = "application.rotate_secret";
        let record = self
            .shared
            .audit_record(audit, action, realm, Some(client_id));
        self.shared.save_application(app, &record).await?;
        Ok((secret, old_until))
    }

    /// Every token of the application issued until now stops working.
    pub async fn revoke_tokens(
        self,
        audit: Audit,
        realm: &str,
        client_id: &str,
    ) -> Result<i64, ManageError> {
        self.grants.revoke_all(audit, realm, client_id).await
    }

    /// A token issued by an administrator, with a lifetime of their choosing. It is an
    /// administrator's act, not the application's: it is counted in usage but neither
    /// counted against nor refused by the application's quota. It is handed out only
    /// once its audit record is written.
    pub async fn issue_token(
        self,
        audit: Audit,
        realm: &str,
        client_id: &str,
        ttl: Option<TokenTtl>,
        scopes: Option<ScopeSet>,
    ) -> Result<GrantedToken, ManageError> {
        let entry = self.find_realm(realm)?;
        let app = self.find_application(realm, client_id).await?;
        if !app.enabled {
            return Err(ManageError::Forbidden("the application is disabled"));
        }
        let scope = match scopes {
            Some(scopes) if !scopes.is_empty() => {
                if !scopes.is_subset_of(&app.scopes) {
                    return Err(FieldError::new(
                        "scopes",
                        format!("the application is allowed only: {}", app.scopes),
                    )
                    .into());
                }
                scopes
            }
            _ => app.effective_default_scopes().clone(),
        };
        // The cache may not have this application yet if it was made by another process.
        if self
            .shared
            .cached_application(&entry.realm.id, client_id)
            .is_none()
        {
            self.shared.write().put_application(app.clone());
        }
        let audiences: Vec<String> = app
            .audiences
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect();
        let granted = self
            .grants
            .mint(
                &entry,
                &app,
                &scope,
                &audiences,
                ttl.unwrap_or(app.token_ttl),
                Dialect::Standard,
                None,
            )
            .map_err(|e| ManageError::Internal(e.to_string()))?;
        let audit = audit
            .with("ttl", granted.expires_in.into())
            .with("scope", granted.scope.clone().into())
            .with("expires_at", granted.expires_at.into());
        let action = "application.issue_token";
        let record = self
            .shared
            .audit_record(audit, action, realm, Some(client_id));
        self.shared.store().append_audit(&record).await?;
        Ok(granted)
    }

    fn random16(self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        self.shared.rng().fill(&mut bytes);
        bytes
    }
}

/// What must hold across an application's fields (each field is a parsed value).
fn validate_application(app: &Application) -> Result<(), FieldError> {
    if let Some(defaults) = &app.default_scopes
        && !defaults.is_subset_of(&app.scopes)
    {
        return Err(FieldError::new(
            "default_scopes",
            "default scopes must be among the application's scopes",
        ));
    }
    if app.auth_methods.is_empty() {
        return Err(FieldError::new(
            "auth_methods",
            "an application needs at least one auth method",
        ));
    }
    if app.allows(AuthMethod::PrivateKeyJwt) && app.public_key.is_none() && app.jwks.is_none() {
        return Err(FieldError::new(
            "auth_methods",
            "private_key_jwt needs a public_key or jwks",
        ));
    }
    if app.allows(AuthMethod::SignedCredential) {
        let bits = app.public_key.as_ref().and_then(|k| k.key().rsa_bits());
        if !bits.is_some_and(|b| (2048..=4096).contains(&b)) {
            return Err(FieldError::new(
                "public_key",
                "signed_credential needs an RSA public_key of 2048 to 4096 bits",
            ));
        }
    }
    Ok(())
}
