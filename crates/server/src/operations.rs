//! The management operations on wire types: parse the admin DTO into domain values
//! (naming the bad field), call the authority, render the answer. The admin API and
//! the CLI both go through here, so they cannot drift apart.

use tessera_core::Authority;
use tessera_core::NewApplication;
use tessera_core::NewRealm;
use tessera_core::client_keys;
use tessera_core::directory::RealmEntry;
use tessera_core::domain::{
    Application, AuthMethod, ClientId, HostName, PublicUrl, RealmName, ScopeSet, SigningAlg,
    TokenFormat, TokenPrefix, TokenTtl, TokenTypeSpelling,
};
use tessera_core::error::{FieldError, ManageError};
use tessera_proto::{
    ApplicationCreate, ApplicationPatch, ApplicationView, ApplicationWithSecret, IssueToken,
    IssuedToken, RealmCreate, RealmPatch, RealmView, SecretRotate, SecretRotated, TokensRevoked,
};

pub fn realm_view(entry: &RealmEntry) -> RealmView {
    let realm = &entry.realm;
    RealmView {
        name: realm.name.to_string(),
        hosts: realm.hosts.iter().map(ToString::to_string).collect(),
        public_url: realm.public_url.as_ref().map(ToString::to_string),
        issuer: entry.issuer.clone(),
        token_format: realm.token_format.as_str().to_owned(),
        signing_alg: realm.signing_alg.as_str().to_owned(),
        token_prefix: realm.token_prefix.to_string(),
        token_type: realm.token_type.as_str().to_owned(),
        created_at: realm.created_at,
    }
}

pub fn application_view(realm: &str, app: &Application) -> ApplicationView {
    ApplicationView {
        realm: realm.to_owned(),
        client_id: app.client_id.to_string(),
        name: app.name.clone(),
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
        public_key: app.public_key.clone(),
        jwks: app.jwks.clone(),
        audiences: app.audiences.clone(),
        roles: app.roles.clone(),
        created_at: app.created_at,
        updated_at: app.updated_at,
    }
}

pub fn list_realms(authority: &Authority) -> Vec<RealmView> {
    authority.realms().iter().map(|e| realm_view(e)).collect()
}

pub fn show_realm(authority: &Authority, name: &str) -> Result<RealmView, ManageError> {
    let entry = authority.find_realm(name)?;
    Ok(realm_view(&entry))
}

pub async fn create_realm(
    authority: &Authority,
    input: RealmCreate,
) -> Result<RealmView, ManageError> {
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
    };
    let name = new.name.to_string();
    authority
        .create_realm(new)
        .await
        .map(|e| realm_view(&e))
        .map_err(|e| match e {
            ManageError::Conflict(_) => {
                ManageError::Conflict(format!("realm {name} already exists"))
            }
            other => other,
        })
}

pub async fn update_realm(
    authority: &Authority,
    name: &str,
    patch: RealmPatch,
) -> Result<RealmView, ManageError> {
    let entry = authority
        .update_realm(name, |realm| {
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
            Ok(())
        })
        .await?;
    Ok(realm_view(&entry))
}

pub async fn delete_realm(authority: &Authority, name: &str) -> Result<(), ManageError> {
    authority.delete_realm(name).await
}

pub async fn list_applications(
    authority: &Authority,
    realm: &str,
) -> Result<Vec<ApplicationView>, ManageError> {
    let apps = authority.list_applications(realm).await?;
    Ok(apps.iter().map(|a| application_view(realm, a)).collect())
}

pub async fn show_application(
    authority: &Authority,
    realm: &str,
    client_id: &str,
) -> Result<ApplicationView, ManageError> {
    let app = authority.find_application(realm, client_id).await?;
    Ok(application_view(realm, &app))
}

pub async fn create_application(
    authority: &Authority,
    realm: &str,
    input: ApplicationCreate,
) -> Result<ApplicationWithSecret, ManageError> {
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
        public_key: input.public_key.map(|pem| check_pem(&pem)).transpose()?,
        jwks: input.jwks.map(check_jwks).transpose()?,
        audiences: input.audiences.unwrap_or_default(),
        roles: input.roles.unwrap_or_default(),
        enabled: input.enabled.unwrap_or(true),
    };
    let (app, secret) = authority.create_application(realm, new).await?;
    Ok(ApplicationWithSecret {
        application: application_view(realm, &app),
        client_secret: secret,
    })
}

pub async fn update_application(
    authority: &Authority,
    realm: &str,
    client_id: &str,
    patch: ApplicationPatch,
) -> Result<ApplicationView, ManageError> {
    let app = authority
        .update_application(realm, client_id, |app| {
            if let Some(name) = &patch.name {
                app.name.clone_from(name);
            }
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
                app.public_key = pem.as_deref().map(check_pem).transpose()?;
            }
            if let Some(jwks) = &patch.jwks {
                app.jwks = jwks.clone().map(check_jwks).transpose()?;
            }
            if let Some(audiences) = &patch.audiences {
                app.audiences.clone_from(audiences);
            }
            if let Some(roles) = &patch.roles {
                app.roles.clone_from(roles);
            }
            if let Some(enabled) = patch.enabled {
                app.enabled = enabled;
            }
            Ok(())
        })
        .await?;
    Ok(application_view(realm, &app))
}

pub async fn delete_application(
    authority: &Authority,
    realm: &str,
    client_id: &str,
) -> Result<(), ManageError> {
    authority.delete_application(realm, client_id).await
}

pub async fn rotate_secret(
    authority: &Authority,
    realm: &str,
    client_id: &str,
    input: SecretRotate,
) -> Result<SecretRotated, ManageError> {
    let (secret, until) = authority
        .rotate_secret(realm, client_id, input.grace_period.unwrap_or(0))
        .await?;
    Ok(SecretRotated {
        client_id: client_id.to_owned(),
        client_secret: secret,
        previous_secret_expires_at: until,
    })
}

pub async fn issue_token(
    authority: &Authority,
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
    let granted = authority.issue_token(realm, client_id, ttl, scopes).await?;
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
    realm: &str,
    client_id: &str,
) -> Result<TokensRevoked, ManageError> {
    let at = authority.revoke_tokens(realm, client_id).await?;
    Ok(TokensRevoked {
        client_id: client_id.to_owned(),
        tokens_valid_after: at.div_euclid(1000),
    })
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

/// A PEM public key that parses (RSA, P-256 or Ed25519).
fn check_pem(pem: &str) -> Result<String, FieldError> {
    client_keys::parse_pem("public_key", pem)?;
    Ok(pem.trim().to_owned())
}

fn check_jwks(jwks: serde_json::Value) -> Result<serde_json::Value, FieldError> {
    client_keys::parse_jwks("jwks", &jwks)?;
    Ok(jwks)
}
