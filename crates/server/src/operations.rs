//! The management operations on wire types: parse the admin DTO into domain values
//! (naming the bad field), call the authority, render the answer. The admin API and
//! the CLI both go through here, so they cannot drift apart.

pub use tessera_core::Actor;
use tessera_core::NewApplication;
use tessera_core::NewRealm;
use tessera_core::client_keys::{Jwks, PublicKeyPem};
use tessera_core::directory::RealmEntry;
use tessera_core::domain::{
    Application, ApplicationName, Audience, AuthMethod, ClientId, HostName, MAX_TTL_SECS,
    PublicUrl, Quota, RealmName, Role, ScopeSet, SigningAlg, TokenFormat, TokenPrefix, TokenTtl,
    TokenTypeSpelling, key_rotation,
};
use tessera_core::error::{FieldError, ManageError};
use tessera_core::store::{AppQuery, AuditQuery, USAGE_KEPT_HOURS};
use tessera_core::{Audit, Authority};
use tessera_proto::{
    ApplicationCreate, ApplicationList, ApplicationPatch, ApplicationView, ApplicationWithSecret,
    AuditList, AuditView, IssueToken, IssuedToken, KeyRotate, QuotaView, RealmCreate, RealmPatch,
    RealmView, SecretRotate, SecretRotated, SigningKeyView, TokensRevoked, UsageHour, UsageQuery,
    UsageView,
};

/// How long after a rotation on demand the new key signs, unless told otherwise:
/// longer than any node needs to learn of it, so that they all switch together.
pub const DEFAULT_KEY_LEAD_SECS: u64 = 60;

pub fn realm_view(entry: &RealmEntry, now_s: i64) -> RealmView {
    let realm = &entry.realm;
    let signing = entry.keys.signer(now_s).map(|k| k.kid.as_str());
    RealmView {
        name: realm.name.to_string(),
        hosts: realm.hosts.iter().map(ToString::to_string).collect(),
        public_url: realm.public_url.as_ref().map(ToString::to_string),
        issuer: entry.issuer.clone(),
        token_format: realm.token_format.as_str().to_owned(),
        signing_alg: realm.signing_alg.as_str().to_owned(),
        token_prefix: realm.token_prefix.to_string(),
        token_type: realm.token_type.as_str().to_owned(),
        key_rotation: realm.key_rotation_secs,
        keys: entry
            .keys
            .keys()
            .iter()
            .map(|k| SigningKeyView {
                kid: k.key.kid.clone(),
                alg: k.key.alg.as_str().to_owned(),
                activates_at: k.activates_at,
                retired_at: k.retired_at,
                expires_at: k.expires_at,
                signing: signing == Some(k.key.kid.as_str()),
            })
            .collect(),
        created_at: realm.created_at,
    }
}

pub fn application_view(realm: &str, app: &Application) -> ApplicationView {
    ApplicationView {
        realm: realm.to_owned(),
        client_id: app.client_id.to_string(),
        name: app.name.to_string(),
        enabled: app.enabled,
        scopes: app.scopes.to_strings(),
        default_scopes: app.default_scopes.as_ref().map(ScopeSet::to_strings),
        scope_required: app.scope_required,
        token_ttl: app.token_ttl.secs(),
        token_format: app.token_format.map(|f| f.as_str().to_owned()),
        refresh_token_ttl: app.refresh_token_ttl.map(TokenTtl::secs),
        auth_methods: app
            .auth_methods
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect(),
        public_key: app.public_key.as_ref().map(|k| k.as_str().to_owned()),
        jwks: app.jwks.as_ref().map(|j| j.document().clone()),
        audiences: app.audiences.iter().map(|a| a.to_string()).collect(),
        roles: app.roles.iter().map(|r| r.to_string()).collect(),
        quota: (!app.quota.is_unlimited()).then(|| QuotaView {
            per_minute: app.quota.per_minute.map(u64::from),
            per_day: app.quota.per_day.map(u64::from),
        }),
        created_at: app.created_at,
        updated_at: app.updated_at,
    }
}

pub fn list_realms(authority: &Authority) -> Vec<RealmView> {
    let now_s = authority.now_s();
    authority
        .manage()
        .realms()
        .iter()
        .map(|e| realm_view(e, now_s))
        .collect()
}

pub fn show_realm(authority: &Authority, name: &str) -> Result<RealmView, ManageError> {
    let entry = authority.manage().find_realm(name)?;
    Ok(realm_view(&entry, authority.now_s()))
}

pub async fn create_realm(
    authority: &Authority,
    actor: &Actor,
    input: RealmCreate,
) -> Result<RealmView, ManageError> {
    let input = &input;
    let new = NewRealm {
        name: RealmName::parse("name", &input.name)?,
        hosts: parse_hosts(input.hosts.as_deref().unwrap_or_default())?,
        public_url: input
            .public_url
            .as_deref()
            .map(|u| PublicUrl::parse("public_url", u))
            .transpose()?,
        token_format: input
            .token_format
            .as_deref()
            .map(|f| TokenFormat::parse("token_format", f))
            .transpose()?,
        signing_alg: input
            .signing_alg
            .as_deref()
            .map(|a| SigningAlg::parse("signing_alg", a))
            .transpose()?,
        token_prefix: input
            .token_prefix
            .as_deref()
            .map(|p| TokenPrefix::parse("token_prefix", p))
            .transpose()?,
        token_type: input
            .token_type
            .as_deref()
            .map(|t| TokenTypeSpelling::parse("token_type", t))
            .transpose()?,
        key_rotation_secs: input
            .key_rotation
            .map(|secs| key_rotation("key_rotation", secs))
            .transpose()?,
    };
    let name = new.name.to_string();
    let audit = Audit::new(actor.clone(), audit_detail(input));
    let view = authority
        .manage()
        .create_realm(audit, new)
        .await
        .map(|e| realm_view(&e, authority.now_s()))
        .map_err(|e| match e {
            ManageError::Conflict(_) => {
                ManageError::Conflict(format!("realm {name} already exists"))
            }
            other => other,
        })?;
    Ok(view)
}

pub async fn update_realm(
    authority: &Authority,
    actor: &Actor,
    name: &str,
    patch: RealmPatch,
) -> Result<RealmView, ManageError> {
    let audit = Audit::new(actor.clone(), audit_detail(&patch));
    let entry = authority
        .manage()
        .update_realm(audit, name, |realm| {
            if let Some(hosts) = &patch.hosts {
                realm.hosts = parse_hosts(hosts)?;
            }
            if let Some(url) = &patch.public_url {
                realm.public_url = url
                    .as_deref()
                    .map(|u| PublicUrl::parse("public_url", u))
                    .transpose()?;
            }
            if let Some(format) = &patch.token_format {
                realm.token_format = TokenFormat::parse("token_format", format)?;
            }
            if let Some(alg) = &patch.signing_alg {
                realm.signing_alg = SigningAlg::parse("signing_alg", alg)?;
            }
            if let Some(prefix) = &patch.token_prefix {
                realm.token_prefix = TokenPrefix::parse("token_prefix", prefix)?;
            }
            if let Some(spelling) = &patch.token_type {
                realm.token_type = TokenTypeSpelling::parse("token_type", spelling)?;
            }
            if let Some(rotation) = patch.key_rotation {
                realm.key_rotation_secs = rotation
                    .map(|secs| key_rotation("key_rotation", secs))
                    .transpose()?;
            }
            Ok(())
        })
        .await;
    let entry = unless_gone(authority, name, None, entry).await?;
    Ok(realm_view(&entry, authority.now_s()))
}

pub async fn rotate_keys(
    authority: &Authority,
    actor: &Actor,
    name: &str,
    input: KeyRotate,
) -> Result<RealmView, ManageError> {
    let lead = input.activate_in.unwrap_or(DEFAULT_KEY_LEAD_SECS);
    if lead > MAX_TTL_SECS {
        return Err(FieldError::new("activate_in", "at most a year, in seconds").into());
    }
    let audit = Audit::by(actor.clone());
    let entry = authority.manage().rotate_keys(audit, name, lead).await;
    let entry = unless_gone(authority, name, None, entry).await?;
    Ok(realm_view(&entry, authority.now_s()))
}

pub async fn delete_realm(
    authority: &Authority,
    actor: &Actor,
    name: &str,
) -> Result<(), ManageError> {
    let deleted = authority
        .manage()
        .delete_realm(Audit::by(actor.clone()), name)
        .await;
    unless_gone(authority, name, None, deleted).await?;
    Ok(())
}

/// How many entries a list answers unless asked, and at most.
pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

fn page_limit(text: Option<&str>) -> Result<u32, FieldError> {
    let Some(text) = text else {
        return Ok(DEFAULT_PAGE);
    };
    match text.parse::<u32>() {
        Ok(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
        _ => Err(FieldError::new(
            "limit",
            format!("a page is 1 to {MAX_PAGE} entries"),
        )),
    }
}

/// A page of applications, and the query of the next page if this one is full.
pub struct Page<T, Q> {
    pub items: Vec<T>,
    pub next: Option<Q>,
}

pub async fn list_applications(
    authority: &Authority,
    realm: &str,
    query: ApplicationList,
) -> Result<Page<ApplicationView, ApplicationList>, ManageError> {
    let limit = page_limit(query.limit.as_deref())?;
    let search = query.q.clone().filter(|q| !q.is_empty());
    if search.as_ref().is_some_and(|q| q.len() > 200) {
        return Err(FieldError::new("q", "a search is at most 200 characters").into());
    }
    let apps = authority
        .manage()
        .application_page(
            realm,
            &AppQuery {
                after: query.after.clone(),
                search: search.clone(),
                limit,
            },
        )
        .await?;
    let next = (apps.len() == limit as usize)
        .then(|| apps.last())
        .flatten()
        .map(|last| ApplicationList {
            limit: Some(limit.to_string()),
            after: Some(last.client_id.to_string()),
            q: search,
        });
    Ok(Page {
        items: apps.iter().map(|a| application_view(realm, a)).collect(),
        next,
    })
}

pub async fn usage(
    authority: &Authority,
    realm: &str,
    client_id: &str,
    query: UsageQuery,
) -> Result<UsageView, ManageError> {
    let kept = u32::try_from(USAGE_KEPT_HOURS).unwrap_or(u32::MAX);
    let hours = match query.hours.as_deref() {
        None => 24,
        Some(text) => match text.parse::<u32>() {
            Ok(h) if (1..=kept).contains(&h) => h,
            _ => {
                let message = format!("1 to {kept} hours");
                return Err(FieldError::new("hours", message).into());
            }
        },
    };
    // 404 for an unknown application rather than a row of zeros.
    authority
        .manage()
        .find_application(realm, client_id)
        .await?;
    let series = authority.manage().usage(realm, client_id, hours).await?;
    Ok(UsageView {
        client_id: client_id.to_owned(),
        hours: series
            .into_iter()
            .map(|(hour, tokens)| UsageHour {
                start: hour * 3600,
                tokens,
            })
            .collect(),
    })
}

pub async fn list_audit(
    authority: &Authority,
    query: AuditList,
) -> Result<Page<AuditView, AuditList>, ManageError> {
    let limit = page_limit(query.limit.as_deref())?;
    let before = query
        .before
        .as_deref()
        .map(|b| {
            b.parse::<i64>()
                .map_err(|_| FieldError::new("before", "the seq of an audit entry"))
        })
        .transpose()?;
    let records = authority
        .manage()
        .audit(&AuditQuery {
            before,
            realm: query.realm.clone(),
            client_id: query.client_id.clone(),
            limit,
        })
        .await?;
    let next = (records.len() == limit as usize)
        .then(|| records.last())
        .flatten()
        .map(|last| AuditList {
            limit: Some(limit.to_string()),
            before: Some(last.seq.to_string()),
            realm: query.realm.clone(),
            client_id: query.client_id.clone(),
        });
    let items = records
        .into_iter()
        .map(|r| AuditView {
            detail: serde_json::from_str(&r.detail).unwrap_or_default(),
            seq: r.seq,
            at_ms: r.at_ms,
            actor: r.actor,
            action: r.action,
            realm: r.realm,
            client_id: r.client_id,
        })
        .collect();
    Ok(Page { items, next })
}

pub async fn show_application(
    authority: &Authority,
    realm: &str,
    client_id: &str,
) -> Result<ApplicationView, ManageError> {
    let app = authority
        .manage()
        .find_application(realm, client_id)
        .await?;
    Ok(application_view(realm, &app))
}

pub async fn create_application(
    authority: &Authority,
    actor: &Actor,
    realm: &str,
    input: ApplicationCreate,
) -> Result<ApplicationWithSecret, ManageError> {
    let audit = Audit::new(actor.clone(), audit_detail(&input));
    let new = NewApplication {
        name: input.name,
        client_id: input
            .client_id
            .as_deref()
            .map(|id| ClientId::parse("client_id", id))
            .transpose()?,
        scopes: ScopeSet::parse_list("scopes", input.scopes.as_deref().unwrap_or_default())?,
        default_scopes: input
            .default_scopes
            .as_deref()
            .map(|d| ScopeSet::parse_list("default_scopes", d))
            .transpose()?,
        scope_required: input.scope_required.unwrap_or(false),
        token_ttl: input
            .token_ttl
            .map(|t| TokenTtl::parse("token_ttl", t))
            .transpose()?,
        token_format: input
            .token_format
            .as_deref()
            .map(|f| TokenFormat::parse("token_format", f))
            .transpose()?,
        refresh_token_ttl: input
            .refresh_token_ttl
            .map(|t| TokenTtl::parse("refresh_token_ttl", t))
            .transpose()?,
        auth_methods: input
            .auth_methods
            .as_deref()
            .map(parse_methods)
            .transpose()?,
        public_key: input.public_key,
        jwks: input.jwks,
        audiences: input.audiences.unwrap_or_default(),
        roles: input.roles.unwrap_or_default(),
        quota: parse_quota(input.quota.as_ref())?,
        enabled: input.enabled.unwrap_or(true),
    };
    let created = authority
        .manage()
        .create_application(audit, realm, new)
        .await;
    let (app, secret) = unless_gone(authority, realm, None, created).await?;
    Ok(ApplicationWithSecret {
        application: application_view(realm, &app),
        client_secret: secret,
    })
}

pub async fn update_application(
    authority: &Authority,
    actor: &Actor,
    realm: &str,
    client_id: &str,
    patch: ApplicationPatch,
) -> Result<ApplicationView, ManageError> {
    let mut detail = audit_detail(&patch);
    // `audit_detail` drops nulls; a cleared quota is a change worth recording.
    if let (Some(None), Some(fields)) = (&patch.quota, detail.as_object_mut()) {
        fields.insert("quota".to_owned(), serde_json::Value::Null);
    }
    let audit = Audit::new(actor.clone(), detail);
    let app = authority
        .manage()
        .update_application(audit, realm, client_id, |app| {
            if let Some(scopes) = &patch.scopes {
                app.scopes = ScopeSet::parse_list("scopes", scopes)?;
            }
            if let Some(defaults) = &patch.default_scopes {
                app.default_scopes = defaults
                    .as_deref()
                    .map(|d| ScopeSet::parse_list("default_scopes", d))
                    .transpose()?;
            }
            if let Some(required) = patch.scope_required {
                app.scope_required = required;
            }
            if let Some(ttl) = patch.token_ttl {
                app.token_ttl = TokenTtl::parse("token_ttl", ttl)?;
            }
            if let Some(format) = &patch.token_format {
                app.token_format = format
                    .as_deref()
                    .map(|f| TokenFormat::parse("token_format", f))
                    .transpose()?;
            }
            if let Some(ttl) = patch.refresh_token_ttl {
                app.refresh_token_ttl = ttl
                    .map(|t| TokenTtl::parse("refresh_token_ttl", t))
                    .transpose()?;
            }
            if let Some(methods) = &patch.auth_methods {
                app.auth_methods = parse_methods(methods)?;
            }
            if let Some(pem) = &patch.public_key {
                app.public_key = pem
                    .as_deref()
                    .map(|pem| PublicKeyPem::parse("public_key", pem))
                    .transpose()?;
            }
            if let Some(jwks) = &patch.jwks {
                app.jwks = jwks
                    .clone()
                    .map(|jwks| Jwks::parse("jwks", jwks))
                    .transpose()?;
            }
            if let Some(audiences) = &patch.audiences {
                app.audiences = Audience::parse_list("audiences", audiences)?;
            }
            if let Some(roles) = &patch.roles {
                app.roles = Role::parse_list("roles", roles)?;
            }
            if let Some(quota) = &patch.quota {
                app.quota = parse_quota(quota.as_ref())?;
            }
            if let Some(enabled) = patch.enabled {
                app.enabled = enabled;
            }
            // The name last: a bad one is reported after any other field's error, and
            // before core's checks across fields.
            if let Some(name) = &patch.name {
                app.name = ApplicationName::parse("name", name)?;
            }
            Ok(())
        })
        .await;
    let app = unless_gone(authority, realm, Some(client_id), app).await?;
    Ok(application_view(realm, &app))
}

/// An application's quota from the wire; absent means no limit.
pub fn parse_quota(quota: Option<&QuotaView>) -> Result<Quota, FieldError> {
    match quota {
        Some(q) => Quota::parse("quota", q.per_minute, q.per_day),
        None => Ok(Quota::default()),
    }
}

pub async fn delete_application(
    authority: &Authority,
    actor: &Actor,
    realm: &str,
    client_id: &str,
) -> Result<(), ManageError> {
    let audit = Audit::by(actor.clone());
    let deleted = authority
        .manage()
        .delete_application(audit, realm, client_id)
        .await;
    unless_gone(authority, realm, Some(client_id), deleted).await?;
    Ok(())
}

pub async fn rotate_secret(
    authority: &Authority,
    actor: &Actor,
    realm: &str,
    client_id: &str,
    input: SecretRotate,
) -> Result<SecretRotated, ManageError> {
    let detail = serde_json::json!({ "grace_period": input.grace_period });
    let audit = Audit::new(actor.clone(), detail);
    let grace = input.grace_period.unwrap_or(0);
    let rotated = authority
        .manage()
        .rotate_secret(audit, realm, client_id, grace)
        .await;
    let (secret, until) = unless_gone(authority, realm, Some(client_id), rotated).await?;
    Ok(SecretRotated {
        client_id: client_id.to_owned(),
        client_secret: secret,
        previous_secret_expires_at: until,
    })
}

pub async fn issue_token(
    authority: &Authority,
    actor: &Actor,
    realm: &str,
    client_id: &str,
    input: IssueToken,
) -> Result<IssuedToken, ManageError> {
    let ttl = input.ttl.map(|t| TokenTtl::parse("ttl", t)).transpose()?;
    let scopes = input
        .scopes
        .as_deref()
        .map(|s| ScopeSet::parse_list("scopes", s))
        .transpose()?;
    let audit = Audit::by(actor.clone());
    let granted = authority
        .manage()
        .issue_token(audit, realm, client_id, ttl, scopes)
        .await;
    let granted = unless_gone(authority, realm, Some(client_id), granted).await?;
    Ok(IssuedToken {
        access_token: granted.access_token,
        token_type: granted.token_type.to_owned(),
        expires_in: granted.expires_in,
        expires_at: granted.expires_at,
        scope: granted.scope,
    })
}

pub async fn revoke_tokens(
    authority: &Authority,
    actor: &Actor,
    realm: &str,
    client_id: &str,
) -> Result<TokensRevoked, ManageError> {
    let audit = Audit::by(actor.clone());
    let at = authority
        .manage()
        .revoke_tokens(audit, realm, client_id)
        .await;
    let at = unless_gone(authority, realm, Some(client_id), at).await?;
    Ok(TokensRevoked {
        client_id: client_id.to_owned(),
        tokens_valid_after: at.div_euclid(1000),
    })
}

/// A change the store refused because its realm or application was deleted meanwhile,
/// by a request running at the same time (in SQL, a foreign key the write no longer
/// meets), is answered as if the object had been gone before: 404, not the 503 of a
/// store that fails. Any other outcome is left as it is.
async fn unless_gone<T>(
    authority: &Authority,
    realm: &str,
    client_id: Option<&str>,
    result: Result<T, ManageError>,
) -> Result<T, ManageError> {
    let Err(ManageError::Store(_)) = &result else {
        return result;
    };
    // The cache may not know yet: the deletion that made this write fail may have
    // committed while its own request has not updated the cache (the change log has
    // it), or may still be committing (on PostgreSQL the two can deadlock, and the
    // write is the one aborted). So look again for a moment; this is the error path.
    for _ in 0..20 {
        if let Err(err) = authority.sync().await {
            tracing::warn!(error = %err, "could not read the change log");
        }
        if let Err(gone @ ManageError::NotFound { .. }) = authority.manage().find_realm(realm) {
            return Err(gone);
        }
        if let Some(client_id) = client_id
            && let Err(gone @ ManageError::NotFound { .. }) =
                authority.manage().find_application(realm, client_id).await
        {
            return Err(gone);
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    result
}

/// An input as the audit log keeps it: its fields, with key material reduced to
/// whether it was given. (Secrets never arrive in inputs; they are generated.)
fn audit_detail(input: &impl serde::Serialize) -> serde_json::Value {
    let mut value = serde_json::to_value(input).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.retain(|_, v| !v.is_null());
        for bulky in ["public_key", "jwks"] {
            if let Some(v) = fields.get_mut(bulky) {
                *v = serde_json::Value::String("(set)".to_owned());
            }
        }
    }
    value
}

fn parse_hosts(hosts: &[String]) -> Result<Vec<HostName>, FieldError> {
    hosts.iter().map(|h| HostName::parse("hosts", h)).collect()
}

fn parse_methods(methods: &[String]) -> Result<Vec<AuthMethod>, FieldError> {
    let mut out = Vec::with_capacity(methods.len());
    for method in methods {
        let method = AuthMethod::parse("auth_methods", method)?;
        if !out.contains(&method) {
            out.push(method);
        }
    }
    Ok(out)
}
