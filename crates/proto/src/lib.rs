//! Wire types of Tessera: what goes over HTTP, and nothing else.
//!
//! These structs are serde shapes only. The domain (`tessera-core`) never derives
//! `Serialize`; the server converts at the edge.

use serde::{Deserialize, Serialize};

/// A successful token response (RFC 6749 §5.1), with the extra fields some dialects read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
    /// Keycloak dialect only.
    #[serde(
        default,
        rename = "not-before-policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before_policy: Option<i64>,
    /// Keycloak dialect only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_state: Option<String>,
}

/// An error response (RFC 6749 §5.2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ErrorResponse {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// An introspection answer (RFC 7662 §2.2). An inactive token is exactly `{"active": false}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Introspection {
    Active(ActiveToken),
    Inactive(InactiveToken),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct InactiveToken {
    pub active: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ActiveToken {
    pub active: bool,
    pub client_id: String,
    pub scope: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub token_type: String,
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub jti: String,
}

/// Authorization server metadata (RFC 8414), also served as OpenID configuration.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq)]
pub struct Metadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub jwks_uri: String,
    pub grant_types_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Present only while `private_key_jwt` is offered (RFC 8414 §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub access_token_signing_alg_values_supported: Vec<String>,
}

/// The error body of the admin API: which field was wrong and why.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq)]
pub struct AdminError {
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `POST /admin/v1/realms`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RealmCreate {
    pub name: String,
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    #[serde(default)]
    pub public_url: Option<String>,
    #[serde(default)]
    pub token_format: Option<String>,
    #[serde(default)]
    pub signing_alg: Option<String>,
    #[serde(default)]
    pub token_prefix: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds between scheduled key rotations; absent: keys rotate only on demand.
    #[serde(default)]
    pub key_rotation: Option<u64>,
}

/// `PATCH /admin/v1/realms/{realm}`: every field optional; `public_url: null` clears it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RealmPatch {
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    #[serde(default, with = "double_option")]
    pub public_url: Option<Option<String>>,
    #[serde(default)]
    pub token_format: Option<String>,
    #[serde(default)]
    pub signing_alg: Option<String>,
    #[serde(default)]
    pub token_prefix: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    /// `null` stops scheduled rotation.
    #[serde(default, with = "double_option")]
    pub key_rotation: Option<Option<u64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq)]
pub struct RealmView {
    pub name: String,
    pub hosts: Vec<String>,
    pub public_url: Option<String>,
    pub issuer: String,
    pub token_format: String,
    pub signing_alg: String,
    pub token_prefix: String,
    pub token_type: String,
    pub key_rotation: Option<u64>,
    /// Published signing keys, newest first.
    pub keys: Vec<SigningKeyView>,
    pub created_at: i64,
}

/// A published signing key: it signs from `activates_at` until `retired_at` and
/// leaves the JWKS at `expires_at`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq)]
pub struct SigningKeyView {
    pub kid: String,
    pub alg: String,
    pub activates_at: i64,
    pub retired_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// Whether it is the key signing now.
    pub signing: bool,
}

/// `POST /admin/v1/realms/{realm}/rotate-keys`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRotate {
    /// Seconds from now until the new key signs; it is published at once. Default 60,
    /// more than the time every node needs to learn of it.
    #[serde(default)]
    pub activate_in: Option<u64>,
}

/// `POST /admin/v1/realms/{realm}/applications`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationCreate {
    pub name: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub default_scopes: Option<Vec<String>>,
    #[serde(default)]
    pub scope_required: Option<bool>,
    #[serde(default)]
    pub token_ttl: Option<u64>,
    #[serde(default)]
    pub token_format: Option<String>,
    #[serde(default)]
    pub refresh_token_ttl: Option<u64>,
    #[serde(default)]
    pub auth_methods: Option<Vec<String>>,
    #[serde(default)]
    pub public_key: Option<String>,
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Tokens the application may be granted per minute and per UTC day; absent (or
    /// `null`) for no limit.
    #[serde(default)]
    pub quota: Option<QuotaView>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// An application's quota: at most `per_minute` access tokens per minute and
/// `per_day` per UTC day (each 1 to 1000000000; absent or `null`: no limit). Over it
/// the token endpoint answers 429 `quota_exceeded` with `Retry-After`. Tokens an
/// administrator issues do not count.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QuotaView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u64>,
}

/// `PATCH .../applications/{client_id}`: absent fields stay; `null` clears an optional one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default, with = "double_option")]
    pub default_scopes: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub scope_required: Option<bool>,
    #[serde(default)]
    pub token_ttl: Option<u64>,
    #[serde(default, with = "double_option")]
    pub token_format: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub refresh_token_ttl: Option<Option<u64>>,
    #[serde(default)]
    pub auth_methods: Option<Vec<String>>,
    #[serde(default, with = "double_option")]
    pub public_key: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub jwks: Option<Option<serde_json::Value>>,
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Replaces the quota as a whole; `null` clears it (no limit).
    #[serde(default, with = "double_option")]
    pub quota: Option<Option<QuotaView>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Query of `GET /admin/v1/realms/{realm}/applications`: a page of at most `limit`
/// (default 100, at most 1000) applications ordered by client_id, starting after the
/// client_id `after`, whose name or client_id contains `q` (ignoring ASCII case). A
/// full page comes with a `Link: <…>; rel="next"` header.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationList {
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub q: Option<String>,
}

/// Query of `GET /admin/v1/audit`: newest first, at most `limit` (default 100, at most
/// 1000) entries older than the entry `before`, of one realm / application if given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditList {
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub realm: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
}

/// Query of `GET .../applications/{client_id}/usage`: the last `hours` hours
/// (default 24, at most 840 = 35 days).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    #[serde(default)]
    pub hours: Option<String>,
}

/// Tokens issued to an application per hour, oldest first, zeros included.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq)]
pub struct UsageView {
    pub client_id: String,
    pub hours: Vec<UsageHour>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq)]
pub struct UsageHour {
    /// Unix time (seconds) at which the hour starts.
    pub start: i64,
    pub tokens: u64,
}

/// One administrative change.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq)]
pub struct AuditView {
    pub seq: i64,
    /// Unix time in milliseconds.
    pub at_ms: i64,
    /// `admin-key`, `cli` or `dashboard:<session>`.
    pub actor: String,
    pub action: String,
    pub realm: String,
    pub client_id: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq)]
pub struct ApplicationView {
    pub realm: String,
    pub client_id: String,
    pub name: String,
    pub enabled: bool,
    pub scopes: Vec<String>,
    pub default_scopes: Option<Vec<String>>,
    pub scope_required: bool,
    pub token_ttl: u64,
    pub token_format: Option<String>,
    pub refresh_token_ttl: Option<u64>,
    pub auth_methods: Vec<String>,
    pub public_key: Option<String>,
    pub jwks: Option<serde_json::Value>,
    pub audiences: Vec<String>,
    pub roles: Vec<String>,
    /// `null` when the application has no quota.
    #[serde(default)]
    pub quota: Option<QuotaView>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The answer to creating an application or rotating its secret: the only time the
/// secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq)]
pub struct ApplicationWithSecret {
    #[serde(flatten)]
    pub application: ApplicationView,
    pub client_secret: String,
}

/// `POST .../applications/{client_id}/secret`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRotate {
    #[serde(default)]
    pub grace_period: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq)]
pub struct SecretRotated {
    pub client_id: String,
    pub client_secret: String,
    /// Until when (unix seconds) the previous secret keeps working, if at all.
    pub previous_secret_expires_at: Option<i64>,
}

/// `POST .../applications/{client_id}/tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueToken {
    #[serde(default)]
    pub ttl: Option<u64>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq)]
pub struct IssuedToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub expires_at: i64,
    pub scope: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq)]
pub struct TokensRevoked {
    pub client_id: String,
    pub tokens_valid_after: i64,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_none(),
            Some(inner) => inner.serialize(serializer),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}
