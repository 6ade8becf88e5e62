//! The grants, and checking what they issued: the token, introspection and revocation
//! endpoints without HTTP; the usage and quotas they count, and the bounds on the state
//! one application can make the server keep.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::client_auth::{ClientAuth, ClientAuthenticator};
use crate::crypto::{self, CompactJws, Sealer};
use crate::directory::RealmEntry;
use crate::domain::{
    Application, MAX_TTL_SECS, REFRESH_TOKEN_PREFIX, ScopeSet, TokenFormat, TokenTtl,
};
use crate::error::{ManageError, OAuthError, StoreError};
use crate::quota::{self, Per, QuotaCounter};
use crate::shared::{Actor, Audit, Shared};
use crate::store::{RefreshFamily, RefreshUse, Revocation};
use crate::usage::UsageCounter;

/// Which provider's conventions a request came in under; it changes the claims and
/// the response fields, never who may have a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    #[default]
    Standard,
    /// Keycloak's `/protocol/openid-connect/token`: `azp`, `typ`, `preferred_username`,
    /// `resource_access` in the token; `refresh_expires_in`, `not-before-policy` and
    /// `session_state` in the response.
    Keycloak,
}

/// A token request after the HTTP edge parsed it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub grant_type: String,
    pub scope: Option<String>,
    pub resources: Vec<String>,
    pub refresh_token: Option<String>,
    pub auth: ClientAuth,
    pub dialect: Dialect,
}

/// What the token endpoint answers with.
#[derive(Debug, Clone)]
pub struct GrantedToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    pub expires_at: i64,
    pub refresh_token: Option<String>,
    pub refresh_expires_in: Option<u64>,
    /// The id of the refresh family (Keycloak's `session_state`), when there is one.
    pub session: Option<String>,
}

/// What a valid token says, for introspection and `/verify`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    pub realm: String,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub jti: String,
    pub token_type: &'static str,
}

/// The longest a token may live, as a signed number of seconds.
const MAX_TTL_SECS_I64: i64 = MAX_TTL_SECS as i64;

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
type FamilyCounts = HashMap<(String, String), (i64, u64)>;

/// Grants tokens and checks them: the token, introspection and revocation endpoints,
/// and what they count (usage, quotas, live refresh families).
pub(crate) struct Grants {
    shared: Arc<Shared>,
    clients: ClientAuthenticator,
    /// Tokens issued per application per hour, not yet flushed to the store.
    usage: UsageCounter,
    /// Tokens granted per application this minute and this UTC day (see `quota.rs`).
    quota: QuotaCounter,
    /// Held while usage is flushed and while it is read, so that a read never sees
    /// counts that have left memory but are not in the store yet.
    usage_flush: tokio::sync::Mutex<()>,
    state_limits: StateLimits,
    family_counts: Mutex<FamilyCounts>,
}

impl Grants {
    pub(crate) fn new(shared: Arc<Shared>, clients: ClientAuthenticator) -> Self {
        Self {
            shared,
            clients,
            usage: UsageCounter::default(),
            quota: QuotaCounter::default(),
            usage_flush: tokio::sync::Mutex::new(()),
            state_limits: StateLimits::default(),
            family_counts: Mutex::default(),
        }
    }

    pub(crate) fn set_state_limits(&mut self, limits: StateLimits) {
        self.state_limits = limits;
    }

    /// How the grants authenticate their clients.
    pub(crate) fn clients(&self) -> &ClientAuthenticator {
        &self.clients
    }

    /// The token endpoint.
    pub(crate) async fn grant(
        &self,
        realm: &RealmEntry,
        request: &TokenRequest,
    ) -> Result<GrantedToken, OAuthError> {
        match request.grant_type.as_str() {
            "client_credentials" => {
                let app = self.clients.authenticate(realm, &request.auth).await?;
                let scope = negotiate_scope(&app, request.scope.as_deref())?;
                let audiences = negotiate_audiences(&app, &request.resources)?;
                self.take_quota(realm, &app)?;
                let family = match app.refresh_token_ttl {
                    Some(_) if self.room_for_family(realm, &app).await? => {
                        Some(self.new_family_id())
                    }
                    Some(_) => {
                        tracing::warn!(
                            realm = %realm.realm.name, client_id = %app.client_id,
                            "the application has as many live refresh families as it may; \
                             this token comes without a refresh token"
                        );
                        None
                    }
                    None => None,
                };
                let mut granted = self.mint(
                    realm,
                    &app,
                    &scope,
                    &audiences,
                    app.token_ttl,
                    request.dialect,
                    family.as_deref(),
                )?;
                if let (Some(ttl), Some(family)) = (app.refresh_token_ttl, family) {
                    let expires_at = self.shared.now_s() + ttl_secs(ttl);
                    self.shared
                        .store()
                        .insert_refresh_family(&RefreshFamily {
                            id: family.clone(),
                            realm_id: realm.realm.id.clone(),
                            client_id: app.client_id.to_string(),
                            generation: 0,
                            expires_at,
                            revoked: false,
                        })
                        .await?;
                    self.counted_family(realm, &app);
                    self.attach_refresh(
                        realm,
                        &app,
                        &mut granted,
                        &family,
                        0,
                        &scope,
                        &audiences,
                        ttl,
                    )?;
                }
                Ok(granted)
            }
            "refresh_token" => self.refresh(realm, request).await,
            "authorization_code"
            | "password"
            | "implicit"
            | "urn:ietf:params:oauth:grant-type:device_code"
            | "urn:ietf:params:oauth:grant-type:jwt-bearer"
            | "urn:ietf:params:oauth:grant-type:token-exchange" => {
                Err(OAuthError::UnsupportedGrantType(
                    format!("this server issues no {} grants", request.grant_type).into(),
                ))
            }
            _ => Err(OAuthError::UnsupportedGrantType(
                "grant_type is not supported".into(),
            )),
        }
    }

    /// `grant_type=refresh_token`: the presented token is used up and a new one
    /// issued; presenting a used one revokes its whole family.
    async fn refresh(
        &self,
        realm: &RealmEntry,
        request: &TokenRequest,
    ) -> Result<GrantedToken, OAuthError> {
        let app = self.clients.authenticate(realm, &request.auth).await?;
        let Some(ttl) = app.refresh_token_ttl else {
            return Err(OAuthError::UnauthorizedClient(
                "this application has no refresh tokens".into(),
            ));
        };
        let presented = request
            .refresh_token
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
        let invalid = |why: &'static str| OAuthError::InvalidGrant(why.into());
        let claims = self
            .open_refresh(realm, presented)
            .ok_or_else(|| invalid("the refresh token is not valid"))?;
        if claims.client_id != app.client_id.as_str() {
            return Err(invalid("the refresh token belongs to another client"));
        }
        let now_s = self.shared.now_s();
        if claims.exp <= now_s {
            return Err(invalid("the refresh token has expired"));
        }
        if claims.issued_ms <= app.tokens_valid_after_ms {
            return Err(invalid("the refresh token has been revoked"));
        }
        let granted_scope = ScopeSet::parse_param(&claims.scope)
            .map_err(|_| invalid("the refresh token is not valid"))?;
        let scope = match request.scope.as_deref() {
            Some(asked) if !asked.trim().is_empty() => {
                let asked = ScopeSet::parse_param(asked)
                    .map_err(|e| OAuthError::InvalidScope(e.message.into()))?;
                if !asked.is_subset_of(&granted_scope) {
                    return Err(OAuthError::InvalidScope(
                        "a refresh may only narrow the scope it was granted".into(),
                    ));
                }
                asked
            }
            _ => granted_scope,
        };
        if !scope.is_subset_of(&app.scopes) {
            return Err(OAuthError::InvalidScope(
                "the application no longer has this scope".into(),
            ));
        }
        let expires_at = now_s + ttl_secs(ttl);
        // Counted before the family moves on, so that a refused refresh leaves the
        // presented token usable once the quota allows; given back if the refresh fails.
        let counted_at = self.take_quota(realm, &app)?;
        let used = self
            .shared
            .store()
            .use_refresh_family(&claims.family, claims.generation, expires_at, now_s)
            .await;
        if !matches!(used, Ok(RefreshUse::Rotated)) {
            self.quota.give_back(
                &realm.realm.id,
                app.client_id.as_str(),
                app.quota,
                counted_at,
            );
        }
        match used? {
            RefreshUse::Rotated => {}
            RefreshUse::Reused => {
                tracing::warn!(client_id = %app.client_id, "a used refresh token was presented again; its family is revoked");
                // The access tokens the family issued may be in the wrong hands too.
                self.revoke_family_tokens(&realm.realm.id, app.client_id.as_str(), &claims.family)
                    .await?;
                return Err(invalid(
                    "the refresh token was already used; its family is revoked",
                ));
            }
            RefreshUse::Dead => return Err(invalid("the refresh token has been revoked")),
        }
        let mut granted = self.mint(
            realm,
            &app,
            &scope,
            &claims.aud,
            app.token_ttl,
            request.dialect,
            Some(&claims.family),
        )?;
        self.attach_refresh(
            realm,
            &app,
            &mut granted,
            &claims.family,
            claims.generation + 1,
            &scope,
            &claims.aud,
            ttl,
        )?;
        Ok(granted)
    }

    /// Whether the application may start one more refresh family
    /// (`StateLimits::live_refresh_families_per_app`). The store is asked at most once
    /// a minute per application; this node's own new families are added in between.
    async fn room_for_family(
        &self,
        realm: &RealmEntry,
        app: &Application,
    ) -> Result<bool, StoreError> {
        let now_s = self.shared.now_s();
        let key = (realm.realm.id.clone(), app.client_id.to_string());
        let cached = self
            .family_counts()
            .get(&key)
            .copied()
            .filter(|(at, _)| now_s.saturating_sub(*at) < 60);
        let live = match cached {
            Some((_, live)) => live,
            None => {
                let live = self
                    .shared
                    .store()
                    .live_refresh_families(&key.0, &key.1, now_s)
                    .await?;
                self.family_counts().insert(key, (now_s, live));
                live
            }
        };
        Ok(live < self.state_limits.live_refresh_families_per_app)
    }

    /// Adds a family just started to the application's count.
    fn counted_family(&self, realm: &RealmEntry, app: &Application) {
        let key = (realm.realm.id.clone(), app.client_id.to_string());
        if let Some((_, live)) = self.family_counts().get_mut(&key) {
            *live = live.saturating_add(1);
        }
    }

    /// Counts one token against the application's quota (a grant: never an
    /// administrator's `issue_token`), or refuses with `quota_exceeded` and when the
    /// limit rolls over. Returns the second it counted at.
    fn take_quota(&self, realm: &RealmEntry, app: &Application) -> Result<i64, OAuthError> {
        if app.quota.is_unlimited() {
            // No clock read and no lock for the applications without a quota.
            return Ok(0);
        }
        let now_s = self.shared.now_s();
        self.quota
            .take(&realm.realm.id, app.client_id.as_str(), app.quota, now_s)
            .map_err(|exceeded| {
                let per = match exceeded.per {
                    Per::Minute => "minute",
                    Per::Day => "day (UTC)",
                };
                OAuthError::QuotaExceeded {
                    description: format!(
                        "the application's quota of {} tokens per {per} is used up; retry after {} s",
                        exceeded.limit, exceeded.retry_after_s
                    )
                    .into(),
                    retry_after_s: exceeded.retry_after_s,
                }
            })?;
        Ok(now_s)
    }

    #[allow(clippy::too_many_arguments)]
    fn attach_refresh(
        &self,
        realm: &RealmEntry,
        app: &Application,
        granted: &mut GrantedToken,
        family: &str,
        generation: i64,
        scope: &ScopeSet,
        audiences: &[String],
        ttl: TokenTtl,
    ) -> Result<(), OAuthError> {
        let now_ms = issue_ms(self.shared.now_ms(), app);
        let claims = RefreshClaims {
            family: family.to_owned(),
            generation,
            client_id: app.client_id.to_string(),
            scope: scope.to_string(),
            aud: audiences.to_vec(),
            exp: now_ms.div_euclid(1000) + ttl_secs(ttl),
            issued_ms: now_ms,
        };
        let json = serde_json::to_vec(&claims).map_err(internal)?;
        let sealed = realm
            .refresh
            .seal(self.shared.rng(), realm.realm.id.as_bytes(), &json);
        granted.refresh_token = Some(format!(
            "{REFRESH_TOKEN_PREFIX}{}",
            crypto::b64url_encode(&sealed)
        ));
        granted.refresh_expires_in = Some(ttl.secs());
        granted.session = Some(family.to_owned());
        Ok(())
    }

    fn open_refresh(&self, realm: &RealmEntry, token: &str) -> Option<RefreshClaims> {
        let body = token.strip_prefix(REFRESH_TOKEN_PREFIX)?;
        if body.len() > 4096 {
            return None;
        }
        let sealed = crypto::b64url_decode(body)?;
        let plain = realm.refresh.open(realm.realm.id.as_bytes(), &sealed)?;
        serde_json::from_slice(&plain).ok()
    }

    fn new_family_id(&self) -> String {
        let mut bytes = [0u8; 16];
        self.shared.rng().fill(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// Writes an access token for `app`. A token issued beside a refresh token names its
    /// refresh family (`sid`), so that revoking the family ends the token too.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mint(
        &self,
        realm: &RealmEntry,
        app: &Application,
        scope: &ScopeSet,
        audiences: &[String],
        ttl: TokenTtl,
        dialect: Dialect,
        family: Option<&str>,
    ) -> Result<GrantedToken, OAuthError> {
        let now_ms = issue_ms(self.shared.now_ms(), app);
        let iat = now_ms.div_euclid(1000);
        // `exp - iat` is exactly the lifetime, as every peer server writes it and as
        // validators that compare the two expect; `expires_in` says the same lifetime.
        let exp = iat.saturating_add(ttl_secs(ttl));
        let format = app.format_in(&realm.realm);
        // One draw from the generator for the jti's random bits and, for an opaque
        // token, the seal's nonce.
        let mut random = [0u8; JTI_RANDOM_LEN + Sealer::NONCE_LEN];
        let drawn = match format {
            TokenFormat::Jwt => JTI_RANDOM_LEN,
            TokenFormat::Opaque => random.len(),
        };
        if let Some(used) = random.get_mut(..drawn) {
            self.shared.rng().fill(used);
        }
        let (jti_random, nonce) = split_random(&random);
        let mut jti_buf = uuid::Uuid::encode_buffer();
        let jti = new_jti(now_ms, &jti_random, &mut jti_buf);
        let scope_text = scope.to_string();
        let aud = if audiences.is_empty() {
            std::slice::from_ref(&realm.issuer)
        } else {
            audiences
        };
        let keycloak = dialect == Dialect::Keycloak;
        let username = keycloak.then(|| format!("service-account-{}", app.client_id));
        let resource_access = (keycloak && !app.roles.is_empty()).then(|| {
            let roles: Vec<&str> = app.roles.iter().map(|r| r.as_str()).collect();
            serde_json::json!({ app.client_id.as_str(): { "roles": roles } })
        });
        let claims = AccessClaims {
            iss: &realm.issuer,
            sub: app.client_id.as_str(),
            aud: Audience::from(aud),
            exp,
            iat,
            jti,
            client_id: app.client_id.as_str(),
            scope: &scope_text,
            azp: keycloak.then_some(app.client_id.as_str()),
            typ: keycloak.then_some("Bearer"),
            preferred_username: username.as_deref(),
            resource_access,
            sid: family,
        };
        let json = claims.to_json().map_err(internal)?;
        let access_token = match format {
            TokenFormat::Jwt => {
                let key = realm.keys.signer(iat).ok_or_else(|| {
                    tracing::error!(realm = %realm.realm.name, "realm has no active signing key");
                    OAuthError::ServerError("the realm has no signing key".into())
                })?;
                key.sign_jwt(&json).map_err(internal)?
            }
            TokenFormat::Opaque => {
                let sealed = realm
                    .opaque
                    .seal_with_nonce(nonce, realm.realm.id.as_bytes(), &json);
                let prefix = realm.realm.token_prefix.as_str();
                let mut token = String::with_capacity(prefix.len() + sealed.len().div_ceil(3) * 4);
                token.push_str(prefix);
                crypto::b64url_encode_to(&sealed, &mut token);
                token
            }
        };
        self.usage
            .add(&realm.realm.id, app.client_id.as_str(), iat, 1);
        Ok(GrantedToken {
            access_token,
            token_type: realm.realm.token_type.as_str(),
            expires_in: ttl.secs(),
            scope: scope_text,
            expires_at: exp,
            refresh_token: None,
            refresh_expires_in: None,
            session: None,
        })
    }

    /// Whether `token` is alive in `realm`, and what it says. `None` for anything else:
    /// malformed, forged, another realm's, expired, revoked, or its application gone.
    pub(crate) fn check(&self, realm: &RealmEntry, token: &str) -> Option<TokenInfo> {
        let claims = decode(realm, token)?;
        if claims.exp <= self.shared.now_s() {
            return None;
        }
        if !self.shared.is_alive(
            &realm.realm.id,
            &claims.client_id,
            &claims.jti,
            claims.sid.as_deref(),
            issued_ms(&claims),
        ) {
            return None;
        }
        Some(TokenInfo {
            realm: realm.realm.name.as_str().to_owned(),
            client_id: claims.client_id,
            scope: claims.scope,
            iat: claims.iat,
            exp: claims.exp,
            iss: claims.iss,
            sub: claims.sub,
            aud: claims.aud.into_vec(),
            jti: claims.jti,
            token_type: realm.realm.token_type.as_str(),
        })
    }

    /// The introspection endpoint (RFC 7662): the caller must be a client of the realm.
    pub(crate) async fn introspect(
        &self,
        realm: &RealmEntry,
        auth: &ClientAuth,
        token: &str,
    ) -> Result<Option<TokenInfo>, OAuthError> {
        self.clients.authenticate(realm, auth).await?;
        Ok(self.check(realm, token))
    }

    /// The revocation endpoint (RFC 7009). A token that is not the caller's, or not a
    /// token at all, is left alone and still answered with success. A refresh token is
    /// recognised whatever `token_type_hint` says (§2.1: the hint only speeds the
    /// lookup); revoking it ends its whole family and every access token the family
    /// issued (§2.1: "SHOULD also invalidate all access tokens based on the same
    /// authorization grant").
    pub(crate) async fn revoke(
        &self,
        realm: &RealmEntry,
        auth: &ClientAuth,
        token: &str,
    ) -> Result<(), OAuthError> {
        let app = self.clients.authenticate(realm, auth).await?;
        if token.starts_with(REFRESH_TOKEN_PREFIX) {
            let Some(claims) = self.open_refresh(realm, token) else {
                return Ok(());
            };
            if claims.client_id != app.client_id.as_str() || claims.exp <= self.shared.now_s() {
                return Ok(());
            }
            self.shared
                .store()
                .revoke_refresh_family(&claims.family)
                .await?;
            self.revoke_family_tokens(&realm.realm.id, app.client_id.as_str(), &claims.family)
                .await?;
            return Ok(());
        }
        let Some(info) = self.check(realm, token) else {
            return Ok(());
        };
        if info.client_id != app.client_id.as_str() {
            return Ok(());
        }
        let live = self
            .shared
            .live_revocations(&realm.realm.id, app.client_id.as_str());
        if live >= self.state_limits.live_revocations_per_app {
            return self
                .revoke_all_instead(realm, app.client_id.as_str(), live)
                .await;
        }
        self.revoke_jti(&realm.realm.id, &info).await?;
        Ok(())
    }

    /// Past the bound on live revocations (`StateLimits`), a single-token revocation
    /// ends every token of the application issued so far, and says so in the audit log.
    async fn revoke_all_instead(
        &self,
        realm: &RealmEntry,
        client_id: &str,
        live: usize,
    ) -> Result<(), OAuthError> {
        tracing::warn!(
            realm = %realm.realm.name, client_id, live,
            "too many live revocations for one application; revoking all its tokens instead"
        );
        let realm_name = realm.realm.name.as_str();
        let detail = serde_json::json!({ "reason": "live revocation limit", "live": live });
        self.revoke_all(Audit::new(Actor::system(), detail), realm_name, client_id)
            .await
            .map_err(|err| match err {
                ManageError::Store(err) => OAuthError::from(err),
                other => {
                    tracing::error!(error = %other, "revoking all tokens failed");
                    OAuthError::ServerError("the token could not be revoked".into())
                }
            })?;
        Ok(())
    }

    /// Ends every access token issued from refresh family `family`: they carry its id
    /// as `sid`, and a revocation under that id is kept for as long as any of them may
    /// live (the longest lifetime a token can have, since the application's lifetime
    /// may have been longer when one was issued).
    async fn revoke_family_tokens(
        &self,
        realm_id: &str,
        client_id: &str,
        family: &str,
    ) -> Result<(), StoreError> {
        let revocation = Revocation {
            jti: family.to_owned(),
            realm_id: realm_id.to_owned(),
            client_id: client_id.to_owned(),
            expires_at: self.shared.now_s().saturating_add(MAX_TTL_SECS_I64),
        };
        self.shared.add_revocation(revocation).await
    }

    async fn revoke_jti(&self, realm_id: &str, info: &TokenInfo) -> Result<(), StoreError> {
        let revocation = Revocation {
            jti: info.jti.clone(),
            realm_id: realm_id.to_owned(),
            client_id: info.client_id.clone(),
            expires_at: info.exp,
        };
        self.shared.add_revocation(revocation).await
    }

    /// Every token of the application issued until now stops working (an
    /// administrator's "revoke all", or the bound on live revocations). Returns the
    /// application's new `tokens_valid_after`.
    pub(crate) async fn revoke_all(
        &self,
        audit: Audit,
        realm: &str,
        client_id: &str,
    ) -> Result<i64, ManageError> {
        let mut app = self.shared.find_application(realm, client_id).await?;
        let now_ms = self.kill_tokens_issued_so_far(&mut app);
        let audit = audit.with("tokens_valid_after_ms", now_ms.into());
        let action = "application.revoke_tokens";
        let record = self
            .shared
            .audit_record(audit, action, realm, Some(client_id));
        self.shared.save_application(app, &record).await?;
        Ok(now_ms)
    }

    /// Moves `tokens_valid_after` past every issue stamp handed out so far: a token is
    /// stamped at least one millisecond after the previous value (see [`issue_ms`]), so
    /// "now" alone could leave a token of this same millisecond alive.
    pub(crate) fn kill_tokens_issued_so_far(&self, app: &mut Application) -> i64 {
        let at = issue_ms(self.shared.now_ms(), app);
        app.tokens_valid_after_ms = at;
        at
    }

    fn family_counts(&self) -> MutexGuard<'_, FamilyCounts> {
        // A poisoned lock still holds consistent counts.
        self.family_counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ----- usage ----------------------------------------------------------------------

    /// Adds what this process counted since the last flush to the store's hourly
    /// totals. Counts are put back if the store is unavailable, so none are lost.
    /// Then reads today's totals of every application with a day quota, so that the
    /// quota counts what the other nodes issued too (see `quota.rs`).
    pub(crate) async fn flush_usage(&self) -> Result<usize, StoreError> {
        let _flushing = self.usage_flush.lock().await;
        let counts = self.usage.take();
        let flushed = counts.len();
        if !counts.is_empty() {
            match self.shared.store().add_usage(&counts).await {
                Ok(()) => {
                    let now_s = self.shared.now_s();
                    let day_quota: Vec<_> = counts
                        .into_iter()
                        .filter(|(key, _)| {
                            self.shared
                                .cached_application(&key.realm_id, &key.client_id)
                                .is_some_and(|app| app.quota.per_day.is_some())
                        })
                        .collect();
                    self.quota.flushed(&day_quota, now_s);
                }
                Err(err) => {
                    self.usage.restore(counts);
                    return Err(err);
                }
            }
        }
        self.read_quota_totals().await?;
        Ok(flushed)
    }

    /// Reads today's usage totals of the applications with a day quota from the store.
    async fn read_quota_totals(&self) -> Result<(), StoreError> {
        let now_s = self.shared.now_s();
        let with_day_quota: Vec<(String, String)> = {
            let directory = self.shared.read();
            directory
                .realms()
                .flat_map(|realm| directory.applications_of(&realm.realm.id))
                .filter(|app| app.quota.per_day.is_some())
                .map(|app| (app.realm_id.clone(), app.client_id.to_string()))
                .collect()
        };
        let first = quota::first_hour_of_day(now_s);
        for (realm_id, client_id) in with_day_quota {
            let hours = self
                .shared
                .store()
                .usage(&realm_id, &client_id, first)
                .await?;
            let total = hours
                .iter()
                .map(|(_, n)| *n)
                .fold(0u64, u64::saturating_add);
            self.quota.stored_today(&realm_id, &client_id, total, now_s);
        }
        self.quota.forget_before(now_s);
        Ok(())
    }

    /// Tokens issued to an application per hour since `first_hour`, as (hour, tokens)
    /// pairs: the store's totals, then this process's unflushed counts (an hour may
    /// come twice).
    pub(crate) async fn usage_since(
        &self,
        realm_id: &str,
        client_id: &str,
        first_hour: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let _no_flush = self.usage_flush.lock().await;
        let mut hours = self
            .shared
            .store()
            .usage(realm_id, client_id, first_hour)
            .await?;
        hours.extend(self.usage.pending(realm_id, client_id));
        Ok(hours)
    }
}

/// The random bytes of a UUIDv7 `jti`.
const JTI_RANDOM_LEN: usize = 10;

/// The jti's random bytes and the nonce, out of one draw.
fn split_random(
    random: &[u8; JTI_RANDOM_LEN + Sealer::NONCE_LEN],
) -> ([u8; JTI_RANDOM_LEN], [u8; Sealer::NONCE_LEN]) {
    let mut jti = [0u8; JTI_RANDOM_LEN];
    let mut nonce = [0u8; Sealer::NONCE_LEN];
    let (head, tail) = random.split_at(JTI_RANDOM_LEN);
    jti.copy_from_slice(head);
    nonce.copy_from_slice(tail);
    (jti, nonce)
}

/// A UUIDv7, written into `buf`: unique, and it records the issue time to the
/// millisecond, which the "revoke all tokens" rule compares against.
fn new_jti<'b>(now_ms: i64, random: &[u8; JTI_RANDOM_LEN], buf: &'b mut [u8]) -> &'b str {
    let ms = u64::try_from(now_ms).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(ms, random)
        .into_uuid()
        .hyphenated()
        .encode_lower(buf)
}

/// The instant a new token of `app` records as its issue time. A token is alive only if
/// it was issued strictly after the application's `tokens_valid_after`, so that one
/// minted in the same millisecond just before a "revoke all" dies with it; a token
/// minted in that same millisecond just after is stamped one millisecond later.
fn issue_ms(now_ms: i64, app: &Application) -> i64 {
    now_ms.max(app.tokens_valid_after_ms.saturating_add(1))
}

fn ttl_secs(ttl: TokenTtl) -> i64 {
    ttl.millis() / 1000
}

fn internal(err: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %err, "could not write a token");
    OAuthError::ServerError("the token could not be written".into())
}

fn decode(realm: &RealmEntry, token: &str) -> Option<OwnedClaims> {
    if token.len() > 8192 {
        return None;
    }
    let realm_data = &realm.realm;
    let opaque_body = std::iter::once(&realm_data.token_prefix)
        .chain(&realm_data.previous_token_prefixes)
        .find_map(|prefix| token.strip_prefix(prefix.as_str()));
    if let Some(body) = opaque_body {
        let mut sealed = crypto::b64url_decode(body)?;
        let plain = realm
            .opaque
            .open_in_place(realm_data.id.as_bytes(), &mut sealed)?;
        return serde_json::from_slice(plain).ok();
    }
    let jws = CompactJws::split(token)?;
    let key = realm.keys.find(jws.header_str("kid")?)?;
    if jws.header_str("alg")? != key.alg.as_str() {
        return None;
    }
    if !key.verify(jws.signing_input.as_bytes(), &jws.signature) {
        return None;
    }
    serde_json::from_slice(&jws.claims_bytes()?).ok()
}

/// RFC 6749 §3.3: a requested scope outside the allowed set is refused, never narrowed.
fn negotiate_scope(app: &Application, requested: Option<&str>) -> Result<ScopeSet, OAuthError> {
    let requested = match requested {
        Some(text) if !text.trim().is_empty() => text,
        _ if app.scope_required => {
            return Err(OAuthError::InvalidScope(
                "this application must ask for a scope".into(),
            ));
        }
        _ => return Ok(app.effective_default_scopes().clone()),
    };
    let set =
        ScopeSet::parse_param(requested).map_err(|e| OAuthError::InvalidScope(e.message.into()))?;
    if let Some(unknown) = set.iter().find(|s| !app.scopes.contains(s)) {
        return Err(OAuthError::InvalidScope(
            format!("scope {unknown} is not allowed for this application").into(),
        ));
    }
    Ok(set)
}

/// RFC 8707: each `resource` must be one of the application's audiences.
fn negotiate_audiences(app: &Application, resources: &[String]) -> Result<Vec<String>, OAuthError> {
    if resources.is_empty() {
        return Ok(app
            .audiences
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect());
    }
    for resource in resources {
        if !app.audiences.iter().any(|a| a.as_str() == resource) {
            return Err(OAuthError::InvalidTarget(
                format!("resource {resource} is not an audience of this application").into(),
            ));
        }
    }
    Ok(resources.to_vec())
}

fn issued_ms(claims: &OwnedClaims) -> i64 {
    uuid::Uuid::parse_str(&claims.jti)
        .ok()
        .and_then(|id| id.get_timestamp())
        .map(|ts| {
            let (secs, nanos) = ts.to_unix();
            i64::try_from(secs).unwrap_or(i64::MAX) * 1000 + i64::from(nanos / 1_000_000)
        })
        .unwrap_or(claims.iat.saturating_mul(1000))
}

/// The claims Tessera writes (RFC 9068 §2.2), borrowed for serialisation.
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: Audience<'a>,
    exp: i64,
    iat: i64,
    jti: &'a str,
    client_id: &'a str,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    azp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    typ: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_access: Option<serde_json::Value>,
    /// The refresh family the token was issued from (as Keycloak's `sid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
}

impl AccessClaims<'_> {
    /// The claims exactly as `serde_json` writes them. In the usual case (no dialect
    /// extras, no string that needs escaping) they are written directly, which spares
    /// serde_json's byte-by-byte escaping scan.
    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        // Destructured in full, so that a field added to the type cannot be missed here.
        let AccessClaims {
            iss,
            sub,
            aud,
            exp,
            iat,
            jti,
            client_id,
            scope,
            azp,
            typ,
            preferred_username,
            resource_access,
            sid,
        } = self;
        let aud_plain = match aud {
            Audience::One(one) => json_plain(one),
            Audience::Many(many) => many.iter().all(|a| json_plain(a)),
        };
        let extras = azp.is_some()
            || typ.is_some()
            || preferred_username.is_some()
            || resource_access.is_some()
            || sid.is_some();
        if extras
            || !aud_plain
            || ![iss, sub, jti, client_id, scope]
                .into_iter()
                .all(|t| json_plain(t))
        {
            return serde_json::to_vec(self);
        }
        let mut out = Vec::with_capacity(256);
        let string = |out: &mut Vec<u8>, value: &str| {
            out.push(b'"');
            out.extend_from_slice(value.as_bytes());
            out.push(b'"');
        };
        out.extend_from_slice(b"{\"iss\":");
        string(&mut out, iss);
        out.extend_from_slice(b",\"sub\":");
        string(&mut out, sub);
        out.extend_from_slice(b",\"aud\":");
        match aud {
            Audience::One(one) => string(&mut out, one),
            Audience::Many(many) => {
                out.push(b'[');
                for (i, one) in many.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    string(&mut out, one);
                }
                out.push(b']');
            }
        }
        out.extend_from_slice(b",\"exp\":");
        serde_json::to_writer(&mut out, exp)?;
        out.extend_from_slice(b",\"iat\":");
        serde_json::to_writer(&mut out, iat)?;
        out.extend_from_slice(b",\"jti\":");
        string(&mut out, jti);
        out.extend_from_slice(b",\"client_id\":");
        string(&mut out, client_id);
        out.extend_from_slice(b",\"scope\":");
        string(&mut out, scope);
        out.push(b'}');
        Ok(out)
    }
}

/// Whether serde_json writes `text` as is between quotes: no control character,
/// quote or backslash. Checked without an early exit, so that it runs on wide registers.
/// The server's token response fast path uses it too.
pub fn json_plain(text: &str) -> bool {
    text.bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
}

#[derive(Serialize)]
#[serde(untagged)]
enum Audience<'a> {
    One(&'a str),
    Many(&'a [String]),
}

impl<'a> From<&'a [String]> for Audience<'a> {
    fn from(list: &'a [String]) -> Self {
        match list {
            [one] => Self::One(one),
            many => Self::Many(many),
        }
    }
}

#[derive(Deserialize)]
struct OwnedClaims {
    iss: String,
    sub: String,
    aud: OwnedAudience,
    exp: i64,
    iat: i64,
    jti: String,
    client_id: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    sid: Option<String>,
}

/// `aud`: one string or a list of strings. Read by hand rather than as an untagged
/// enum, which would buffer the value before trying each form.
enum OwnedAudience {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OwnedAudience {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OwnedAudience;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OwnedAudience, E> {
                Ok(OwnedAudience::One(v.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<OwnedAudience, E> {
                Ok(OwnedAudience::One(v))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OwnedAudience, A::Error> {
                let mut many = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(item) = seq.next_element::<String>()? {
                    many.push(item);
                }
                Ok(OwnedAudience::Many(many))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl OwnedAudience {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// What a refresh token carries under its seal.
#[derive(Serialize, Deserialize)]
struct RefreshClaims {
    #[serde(rename = "f")]
    family: String,
    #[serde(rename = "g")]
    generation: i64,
    #[serde(rename = "c")]
    client_id: String,
    #[serde(rename = "s")]
    scope: String,
    #[serde(rename = "a")]
    aud: Vec<String>,
    #[serde(rename = "e")]
    exp: i64,
    #[serde(rename = "i")]
    issued_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_claims_are_written_as_serde_json_writes_them() {
        let many = ["https://a.example".to_owned(), "b".to_owned()];
        let quoted = ["a\"b".to_owned()];
        let empty: Vec<String> = Vec::new();
        let base = || AccessClaims {
            iss: "http://127.0.0.1:8080",
            sub: "client-1",
            aud: Audience::One("http://127.0.0.1:8080"),
            exp: 1_795_441_172,
            iat: -3,
            jti: "01a2086b-2eed-7e05-83fc-33dbff806e4a",
            client_id: "client-1",
            scope: "read write",
            azp: None,
            typ: None,
            preferred_username: None,
            resource_access: None,
            sid: None,
        };
        let cases = [
            base(),
            AccessClaims {
                aud: Audience::from(&many[..]),
                scope: "",
                ..base()
            },
            AccessClaims {
                aud: Audience::from(&empty[..]),
                sub: "é\u{7f}",
                ..base()
            },
            AccessClaims {
                aud: Audience::from(&quoted[..]),
                ..base()
            },
            AccessClaims {
                scope: "a\\b",
                ..base()
            },
            AccessClaims {
                client_id: "x\ny",
                ..base()
            },
            AccessClaims {
                azp: Some("client-1"),
                typ: Some("Bearer"),
                preferred_username: Some("service-account-client-1"),
                resource_access: Some(serde_json::json!({"client-1": {"roles": ["r"]}})),
                ..base()
            },
            AccessClaims {
                sid: Some("0192a6c4-5b2d-4b8e-9f3a-1c2d3e4f5a6b"),
                ..base()
            },
        ];
        for claims in cases {
            let want = String::from_utf8(serde_json::to_vec(&claims).unwrap()).unwrap();
            let got = String::from_utf8(claims.to_json().unwrap()).unwrap();
            assert_eq!(got, want);
        }
    }
}
