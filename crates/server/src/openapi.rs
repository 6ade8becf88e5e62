//! The OpenAPI 3.1 document of the admin API and the public endpoints, served at
//! `GET /admin/v1/openapi.json`.
//!
//! Schemas are derived from the wire types in `tessera-proto`; each operation is
//! described once below, and the public operations are then repeated under every alias
//! and realm prefix the public router serves them at. A test reads the routers'
//! sources and fails if a route is missing here, so the two cannot drift apart.

#![allow(dead_code)] // the functions below exist only to carry `#[utoipa::path]`

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::domain::{KEY_ROTATION_SECS, MAX_QUOTA, MAX_TTL_SECS};
use tessera_core::store::USAGE_KEPT_HOURS;
use tessera_proto::{
    AdminError, ApplicationCreate, ApplicationPatch, ApplicationView, ApplicationWithSecret,
    AuditView, ErrorResponse, Introspection, IssueToken, IssuedToken, KeyRotate, Metadata,
    RealmCreate, RealmPatch, RealmView, SecretRotate, SecretRotated, TokenResponse, TokensRevoked,
    UsageView,
};
use utoipa::openapi::path::{Operation, Parameter, ParameterIn, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Object, Ref, Required, Response, Type};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::operations::MAX_PAGE;

/// The document, rendered once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = Doc::openapi();
        add_aliases(&mut doc);
        let Ok(mut value) = serde_json::to_value(&doc) else {
            return "{}".to_owned();
        };
        constrain(&mut value);
        serde_json::to_string(&value).unwrap_or_else(|_| "{}".to_owned())
    })
}

/// What the server checks of an input beyond its type, which the schemas derived from
/// the wire types cannot say: ranges, the words a field takes, the characters of an
/// identifier. Without them a client (or schemathesis) cannot tell a valid input from
/// one the server refuses, and generated inputs hardly ever get past the first field.
/// Each entry is a JSON pointer into the document and the keywords to add there; a
/// test checks that every pointer finds its schema.
fn constraints() -> Vec<(String, Value)> {
    let ttl = json!({ "minimum": 1, "maximum": MAX_TTL_SECS });
    let delay = json!({ "minimum": 0, "maximum": MAX_TTL_SECS });
    let token_format = json!({ "enum": ["jwt", "opaque"] });
    // RFC 6749 §3.3: a scope token is 1 or more of %x21 / %x23-5B / %x5D-7E.
    let scopes = json!({ "items": { "pattern": "^[!#-\\[\\]-~]{1,256}$" } });
    let auth_methods = json!({ "items": { "enum": [
        "client_secret_basic", "client_secret_post", "private_key_jwt", "signed_credential"
    ] } });
    let mut fields = vec![
        ("KeyRotate", "activate_in", delay.clone()),
        ("SecretRotate", "grace_period", delay),
        ("IssueToken", "ttl", ttl.clone()),
        ("IssueToken", "scopes", scopes.clone()),
        (
            "ApplicationCreate",
            "client_id",
            json!({ "pattern": "^[A-Za-z0-9._~@-]{1,128}$" }),
        ),
        (
            "TokenForm",
            "grant_type",
            json!({ "enum": ["client_credentials", "refresh_token"] }),
        ),
        ("IntrospectForm", "token", json!({ "minLength": 1 })),
        ("RevokeForm", "token", json!({ "minLength": 1 })),
    ];
    for realm in ["RealmCreate", "RealmPatch"] {
        fields.extend([
            (realm, "token_format", token_format.clone()),
            (
                realm,
                "signing_alg",
                json!({ "enum": ["ES256", "RS256", "EdDSA", "Ed25519"] }),
            ),
            (realm, "token_type", json!({ "enum": ["Bearer", "bearer"] })),
            (
                realm,
                "key_rotation",
                json!({
                    "minimum": KEY_ROTATION_SECS.start(),
                    "maximum": KEY_ROTATION_SECS.end(),
                }),
            ),
        ]);
    }
    for app in ["ApplicationCreate", "ApplicationPatch"] {
        fields.extend([
            (app, "token_ttl", ttl.clone()),
            (app, "refresh_token_ttl", ttl.clone()),
            (app, "token_format", token_format.clone()),
            (app, "scopes", scopes.clone()),
            (app, "default_scopes", scopes.clone()),
            (app, "auth_methods", auth_methods.clone()),
        ]);
    }
    let quota = json!({ "minimum": 1, "maximum": MAX_QUOTA });
    fields.extend([
        ("QuotaView", "per_minute", quota.clone()),
        ("QuotaView", "per_day", quota),
    ]);
    // An introspection answer is one of the two: `active` tells which, and an inactive
    // token is exactly `{"active": false}`. Without this, every active answer matched
    // both schemas of the `oneOf`, and so neither.
    fields.extend([
        ("ActiveToken", "active", json!({ "enum": [true] })),
        ("InactiveToken", "active", json!({ "enum": [false] })),
    ]);
    let mut out: Vec<(String, Value)> = fields
        .into_iter()
        .map(|(schema, field, keywords)| {
            (
                format!("/components/schemas/{schema}/properties/{field}"),
                keywords,
            )
        })
        .collect();
    out.push((
        "/components/schemas/InactiveToken".to_owned(),
        json!({ "additionalProperties": false }),
    ));
    out
}

/// Adds [`constraints`] to the document, and the ranges of the query parameters every
/// operation that takes them shares: `limit` (a page) and `hours` (of usage).
fn constrain(doc: &mut Value) {
    for (pointer, keywords) in constraints() {
        if let Some(target) = doc.pointer_mut(&pointer) {
            add_keywords(target, keywords);
        }
    }
    let kept = u32::try_from(USAGE_KEPT_HOURS).unwrap_or(u32::MAX);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for parameter in parameters {
                let range = match parameter.get("name").and_then(Value::as_str) {
                    Some("limit") => json!({ "minimum": 1, "maximum": MAX_PAGE }),
                    Some("hours") => json!({ "minimum": 1, "maximum": kept }),
                    _ => continue,
                };
                if let Some(schema) = parameter.get_mut("schema") {
                    add_keywords(schema, range);
                }
            }
        }
    }
}

/// Adds `keywords` to a schema, nested objects merged; an `enum` of a schema that
/// allows `null` allows it too, since `null` means "absent" or "clear" there.
fn add_keywords(target: &mut Value, keywords: Value) {
    let nullable = target
        .get("type")
        .and_then(Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t == "null"));
    let (Some(target), Value::Object(keywords)) = (target.as_object_mut(), keywords) else {
        return;
    };
    for (key, value) in keywords {
        match (target.get_mut(&key), value) {
            (Some(existing @ Value::Object(_)), value @ Value::Object(_)) => {
                add_keywords(existing, value);
            }
            (_, Value::Array(mut words)) if key == "enum" && nullable => {
                words.push(Value::Null);
                target.insert(key, Value::Array(words));
            }
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "OAuth 2.0 authorization server for machine-to-machine access: the \
                       admin API (admin listener, `Authorization: Bearer <admin key>`) and \
                       the public token endpoints (public listener)."
    ),
    paths(
        list_realms, create_realm, show_realm, update_realm, delete_realm, rotate_keys,
        list_applications, create_application, show_application, update_application,
        delete_application, rotate_secret, issue_token, revoke_tokens, usage, audit,
        openapi_json,
        token, token_keycloak, introspect, revoke, metadata, metadata_for_realm,
        openid_configuration_for_realm, jwks, verify, healthz, readyz, metrics,
    ),
    components(schemas(TokenForm, IntrospectForm, RevokeForm)),
    modifiers(&AdminKey, &Failures),
    tags(
        (name = "admin", description = "Realms, applications, keys, audit (admin listener)"),
        (name = "oauth", description = "Token endpoints (public listener)"),
        (name = "operations", description = "Health and metrics (public listener)"),
    )
)]
struct Doc;

struct AdminKey;

impl Modify for AdminKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// The failures every operation of a kind can answer, added here once rather than to
/// each operation: any admin request without the key is 401, from an address that
/// sent too many wrong keys 429, any body that does not arrive within the body
/// timeout 408 and any body over the limit 413; a public endpoint that reads a form
/// (and authenticates a client) answers 400 to a bad one, 408 and 413 likewise, 415
/// to a content type it does not read, and 429 after too many failed client
/// authentications (limiter.rs).
struct Failures;

impl Modify for Failures {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let admin = path.starts_with("/admin/v1/");
            for operation in operations(item) {
                let has_body = operation.request_body.is_some();
                if admin {
                    add_failure(
                        operation,
                        "401",
                        "AdminError",
                        "Missing or wrong credentials",
                    );
                    add_failure(operation, "429", "AdminError", TOO_MANY);
                    if has_body {
                        add_failure(operation, "408", "AdminError", "Body too slow");
                        add_failure(operation, "413", "AdminError", "Body too large");
                    }
                } else if has_body {
                    add_failure(operation, "400", "ErrorResponse", "Bad input");
                    add_failure(operation, "408", "ErrorResponse", "Body too slow");
                    add_failure(operation, "413", "ErrorResponse", "Body too large");
                    add_failure(
                        operation,
                        "415",
                        "ErrorResponse",
                        "Neither a form nor JSON body",
                    );
                    add_failure(operation, "429", "ErrorResponse", TOO_MANY);
                }
            }
        }
    }
}

const TOO_MANY: &str = "Too many failed authentications; Retry-After says when to retry";

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// Adds a JSON error answer unless the operation documents that status already.
fn add_failure(operation: &mut Operation, status: &str, schema: &str, description: &str) {
    let content = Content::new(Some(Ref::from_schema_name(schema)));
    let response = Response::builder()
        .description(description)
        .content("application/json", content)
        .build();
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| response.into());
}

/// Where the public router serves each per-realm operation besides its canonical path.
const ALIASES: &[(&str, &[&str])] = &[
    (
        "/oauth2/token",
        &[
            "/oauth2/token/",
            "/oauth/token",
            "/passport/oauth/token",
            "/v2/token",
        ],
    ),
    ("/protocol/openid-connect/token", &[]),
    (
        "/oauth2/introspect",
        &["/protocol/openid-connect/token/introspect"],
    ),
    ("/oauth2/revoke", &["/protocol/openid-connect/revoke"]),
    (
        "/.well-known/oauth-authorization-server",
        &["/.well-known/openid-configuration"],
    ),
    (
        "/.well-known/jwks.json",
        &["/protocol/openid-connect/certs"],
    ),
    ("/verify", &[]),
];

/// The realm prefixes every per-realm path is also served under.
const REALM_PREFIXES: &[&str] = &["/realms/{realm}", "/auth/realms/{realm}"];

/// Repeats each per-realm operation under its aliases and realm prefixes.
fn add_aliases(doc: &mut utoipa::openapi::OpenApi) {
    let realm = Parameter::builder()
        .name("realm")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("The realm's name"))
        .schema(Some(Object::with_type(Type::String)))
        .build();
    for (canonical, aliases) in ALIASES {
        let Some(item) = doc.paths.paths.get(*canonical).cloned() else {
            continue;
        };
        for path in std::iter::once(canonical).chain(aliases.iter()) {
            if path != canonical {
                doc.paths
                    .paths
                    .insert((*path).to_owned(), renamed(&item, path));
            }
            for prefix in REALM_PREFIXES {
                let full = format!("{prefix}{path}");
                let mut under = renamed(&item, &full);
                under
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(realm.clone().into());
                for operation in operations(&mut under) {
                    add_failure(operation, "404", "ErrorResponse", "No such realm");
                }
                doc.paths.paths.insert(full, under);
            }
        }
    }
}

/// A copy of `item` for another path: operation ids must be unique in a document, so
/// each is suffixed with the path, every other character than A-Z a-z 0-9 as `_`.
fn renamed(item: &PathItem, path: &str) -> PathItem {
    let mut copy = item.clone();
    let suffix: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    for operation in [&mut copy.get, &mut copy.post].into_iter().flatten() {
        if let Some(id) = &mut operation.operation_id {
            id.push('_');
            id.push_str(&suffix);
        }
    }
    copy
}

// ----- the public endpoints' form bodies -------------------------------------------

// A form field is there or not; it cannot be `null`, so none is nullable.

/// `POST /oauth2/token` (RFC 6749 §4.4, §6; RFC 7523; RFC 8707). The client
/// authenticates with HTTP Basic, `client_id` + `client_secret` in the body, a signed
/// credential, or a `private_key_jwt` assertion. JSON bodies of the same fields are
/// accepted too.
#[derive(Deserialize, ToSchema)]
struct TokenForm {
    /// `client_credentials` or `refresh_token`.
    grant_type: String,
    /// Space-separated scopes.
    #[schema(nullable = false)]
    scope: Option<String>,
    /// RFC 8707 resource indicator (repeatable).
    #[schema(nullable = false)]
    resource: Option<String>,
    /// The audience (Auth0 dialect).
    #[schema(nullable = false)]
    audience: Option<String>,
    #[schema(nullable = false)]
    client_id: Option<String>,
    #[schema(nullable = false)]
    client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    #[schema(nullable = false)]
    client_assertion_type: Option<String>,
    #[schema(nullable = false)]
    client_assertion: Option<String>,
    #[schema(nullable = false)]
    refresh_token: Option<String>,
}

/// `POST /oauth2/introspect` (RFC 7662), authenticated as the token endpoint.
#[derive(Deserialize, ToSchema)]
struct IntrospectForm {
    token: String,
    #[schema(nullable = false)]
    token_type_hint: Option<String>,
}

/// `POST /oauth2/revoke` (RFC 7009), authenticated as the token endpoint.
#[derive(Deserialize, ToSchema)]
struct RevokeForm {
    token: String,
    #[schema(nullable = false)]
    token_type_hint: Option<String>,
}

// ----- admin API -------------------------------------------------------------------

/// The realms.
#[utoipa::path(get, path = "/admin/v1/realms", tag = "admin",
    security(("admin_key" = [])),
    responses((status = 200, body = Vec<RealmView>, description = "OK"), (status = 401, body = AdminError, description = "Missing or wrong credentials")))]
fn list_realms() {}

/// Creates a realm with its first signing key.
#[utoipa::path(post, path = "/admin/v1/realms", tag = "admin", request_body = RealmCreate,
    security(("admin_key" = [])),
    responses((status = 201, body = RealmView, description = "Created"), (status = 400, body = AdminError, description = "Bad input; `field` names it"),
        (status = 409, body = AdminError, description = "Already exists")))]
fn create_realm() {}

#[utoipa::path(get, path = "/admin/v1/realms/{realm}", tag = "admin",
    params(("realm" = String, Path)), security(("admin_key" = [])),
    responses((status = 200, body = RealmView, description = "OK"), (status = 404, body = AdminError, description = "No such realm, application or path")))]
fn show_realm() {}

/// Changes a realm's settings; `null` clears `public_url` or `key_rotation`.
#[utoipa::path(patch, path = "/admin/v1/realms/{realm}", tag = "admin",
    params(("realm" = String, Path)), request_body = RealmPatch, security(("admin_key" = [])),
    responses((status = 200, body = RealmView, description = "OK"), (status = 400, body = AdminError, description = "Bad input; `field` names it"),
        (status = 404, body = AdminError, description = "No such realm, application or path"), (status = 409, body = AdminError, description = "Already exists")))]
fn update_realm() {}

/// Deletes a realm with its applications (not `default`).
#[utoipa::path(delete, path = "/admin/v1/realms/{realm}", tag = "admin",
    params(("realm" = String, Path)), security(("admin_key" = [])),
    responses((status = 204, description = "Done, no content"), (status = 403, body = AdminError, description = "Not allowed"), (status = 404, body = AdminError, description = "No such realm, application or path")))]
fn delete_realm() {}

/// Adds a signing key, published at once and signing after `activate_in` seconds.
#[utoipa::path(post, path = "/admin/v1/realms/{realm}/rotate-keys", tag = "admin",
    params(("realm" = String, Path)), request_body = KeyRotate, security(("admin_key" = [])),
    responses((status = 200, body = RealmView, description = "OK"), (status = 400, body = AdminError, description = "Bad input; `field` names it"),
        (status = 404, body = AdminError, description = "No such realm, application or path")))]
fn rotate_keys() {}

/// A page of applications ordered by client_id; a full page has a `Link: rel="next"` header.
#[utoipa::path(get, path = "/admin/v1/realms/{realm}/applications", tag = "admin",
    params(("realm" = String, Path),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("after" = Option<String>, Query, description = "the last client_id of the previous page"),
        ("q" = Option<String>, Query, description = "name or client_id contains, ignoring case")),
    security(("admin_key" = [])),
    responses((status = 200, body = Vec<ApplicationView>, description = "OK"), (status = 400, body = AdminError, description = "Bad input; `field` names it"),
        (status = 404, body = AdminError, description = "No such realm, application or path")))]
fn list_applications() {}

/// Creates an application; the answer is the only time its secret is shown.
#[utoipa::path(post, path = "/admin/v1/realms/{realm}/applications", tag = "admin",
    params(("realm" = String, Path)), request_body = ApplicationCreate,
    security(("admin_key" = [])),
    responses((status = 201, body = ApplicationWithSecret, description = "Created"), (status = 400, body = AdminError, description = "Bad input; `field` names it"),
        (status = 404, body = AdminError, description = "No such realm, application or path"), (status = 409, body = AdminError, description = "Already exists"),
        (status = 413, body = AdminError, description = "Body too large")))]
fn create_application() {}

#[utoipa::path(get, path = "/admin/v1/realms/{realm}/applications/{client_id}", tag = "admin",
    params(("realm" = String, Path), ("client_id" = String, Path)), security(("admin_key" = [])),
    responses((status = 200, body = ApplicationView, description = "OK"), (status = 404, body = AdminError, description = "No such realm, application or path")))]
fn show_application() {}

#[utoipa::path(patch, path = "/admin/v1/realms/{realm}/applications/{client_id}", tag = "admin",
    params(("realm" = String, Path), ("client_id" = String, Path)),
    request_body = ApplicationPatch, security(("admin_key" = [])),
    responses((status = 200, body = ApplicationView, description = "OK"), (status = 400, body = AdminError, description = "Bad input; `field` names it"),
        (status = 404, body = AdminError, description = "No such realm, application or path")))]
fn update_application() {}

#[utoipa::path(delete, path = "/admin/v1/realms/{realm}/applications/{client_id}", tag = "admin",
    params(("realm" = String, Path), ("client_id" = String, Path)), security(("admin_key" = [])),
    responses((status = 204, description = "Done, no content"), (status = 404, body = AdminError, description = "No such realm, application or path")))]
fn delete_application() {}

/// A new secret, shown only here; `grace_period` keeps the old one valid that long.
#[utoipa::path(post, path = "/admin/v1/realms/{realm}/applications/{client_id}/secret",
    tag = "admin", params(("realm" = String, Path), ("client_id" = String, Path)),
    request_body = SecretRotate, security(("admin_key" = [])),
    responses((status = 200, body = SecretRotated, description = "OK"), (status = 400, body = AdminError, description = "Bad input; `field` names it"),
        (status = 404, body = AdminError, description = "No such realm, application or path")))]
fn rotate_secret() {}

/// A token with a set expiration, issued by an administrator.
#[utoipa::path(post, path = "/admin/v1/realms/{realm}/applications/{client_id}/tokens",
    tag = "admin", params(("realm" = String, Path), ("client_id" = String, Path)),
    request_body = IssueToken, security(("admin_key" = [])),
    responses((status = 201, body = IssuedToken, description = "Created"), (status = 400, body = AdminError, description = "Bad input; `field` names it"),
        (status = 403, body = AdminError, description = "Not allowed"), (status = 404, body = AdminError, description = "No such realm, application or path")))]
fn issue_token() {}

/// Every token of the application issued so far stops working.
#[utoipa::path(post, path = "/admin/v1/realms/{realm}/applications/{client_id}/revoke-tokens",
    tag = "admin", params(("realm" = String, Path), ("client_id" = String, Path)),
    security(("admin_key" = [])),
    responses((status = 200, body = TokensRevoked, description = "OK"), (status = 404, body = AdminError, description = "No such realm, application or path")))]
fn revoke_tokens() {}

/// Tokens issued to the application per hour.
#[utoipa::path(get, path = "/admin/v1/realms/{realm}/applications/{client_id}/usage",
    tag = "admin", params(("realm" = String, Path), ("client_id" = String, Path),
        ("hours" = Option<u32>, Query, description = "1 to 840, default 24")),
    security(("admin_key" = [])),
    responses((status = 200, body = UsageView, description = "OK"), (status = 400, body = AdminError, description = "Bad input; `field` names it"),
        (status = 404, body = AdminError, description = "No such realm, application or path")))]
fn usage() {}

/// Administrative changes, newest first; a full page has a `Link: rel="next"` header.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "admin",
    params(("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("before" = Option<i64>, Query, description = "the last seq of the previous page"),
        ("realm" = Option<String>, Query), ("client_id" = Option<String>, Query)),
    security(("admin_key" = [])),
    responses((status = 200, body = Vec<AuditView>, description = "OK"), (status = 400, body = AdminError, description = "Bad input; `field` names it")))]
fn audit() {}

/// This document.
#[utoipa::path(get, path = "/admin/v1/openapi.json", tag = "admin",
    security(("admin_key" = [])), responses((status = 200, description = "OpenAPI 3.1")))]
fn openapi_json() {}

// ----- public endpoints ------------------------------------------------------------

/// Issues an access token (client credentials, or a refresh token's next one).
#[utoipa::path(post, path = "/oauth2/token", tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses((status = 200, body = TokenResponse, description = "OK"), (status = 400, body = ErrorResponse, description = "Bad input; `field` names it"),
        (status = 401, body = ErrorResponse, description = "Missing or wrong credentials"),
        (status = 429, body = ErrorResponse, description = "`quota_exceeded`: the application's quota (per minute or per UTC day) is used up; or too many failed authentications. `Retry-After` says when to retry")))]
fn token() {}

/// The token endpoint as Keycloak answers it (`not-before-policy`, `session_state`).
#[utoipa::path(post, path = "/protocol/openid-connect/token", tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses((status = 200, body = TokenResponse, description = "OK"), (status = 400, body = ErrorResponse, description = "Bad input; `field` names it"),
        (status = 401, body = ErrorResponse, description = "Missing or wrong credentials"),
        (status = 429, body = ErrorResponse, description = "`quota_exceeded`: the application's quota (per minute or per UTC day) is used up; or too many failed authentications. `Retry-After` says when to retry")))]
fn token_keycloak() {}

/// Whether a token is active, and its claims (RFC 7662).
#[utoipa::path(post, path = "/oauth2/introspect", tag = "oauth",
    request_body(content = IntrospectForm, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses((status = 200, body = Introspection, description = "OK"), (status = 401, body = ErrorResponse, description = "Missing or wrong credentials")))]
fn introspect() {}

/// Revokes a token (RFC 7009); unknown tokens are answered 200 as well.
#[utoipa::path(post, path = "/oauth2/revoke", tag = "oauth",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses((status = 200, description = "OK"), (status = 401, body = ErrorResponse, description = "Missing or wrong credentials")))]
fn revoke() {}

/// Authorization server metadata (RFC 8414), also as OpenID configuration.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "oauth",
    responses((status = 200, body = Metadata, description = "OK")))]
fn metadata() {}

/// A realm's metadata at the RFC 8414 §3 well-known location.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server/realms/{realm}",
    tag = "oauth", params(("realm" = String, Path)),
    responses((status = 200, body = Metadata, description = "OK"), (status = 404, body = ErrorResponse, description = "No such realm, application or path")))]
fn metadata_for_realm() {}

#[utoipa::path(get, path = "/.well-known/openid-configuration/realms/{realm}",
    tag = "oauth", params(("realm" = String, Path)),
    responses((status = 200, body = Metadata, description = "OK"), (status = 404, body = ErrorResponse, description = "No such realm, application or path")))]
fn openid_configuration_for_realm() {}

/// The realm's published signing keys (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oauth",
    responses((status = 200, description = "a JWK Set", content_type = "application/json")))]
fn jwks() {}

/// 200 with the token's claims if the bearer token is active, else 401 (RFC 6750).
#[utoipa::path(get, path = "/verify", tag = "oauth",
    params(("Authorization" = String, Header, description = "Bearer <access token>")),
    responses((status = 200, description = "the token's claims"),
        (status = 401, description = "no, or no active, token")))]
fn verify() {}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the process is up")))]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "the store answers"),
        (status = 503, description = "the store does not answer")))]
fn readyz() {}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
fn metrics() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constraint_finds_its_schema() {
        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        for (pointer, _) in constraints() {
            assert!(
                doc.pointer(&pointer).is_some(),
                "{pointer} is not in the document"
            );
        }
        let rendered: Value = serde_json::from_str(document()).unwrap();
        let token_ttl = rendered
            .pointer("/components/schemas/ApplicationCreate/properties/token_ttl")
            .unwrap();
        assert_eq!(token_ttl["maximum"], MAX_TTL_SECS, "{token_ttl}");
        let per_day = rendered
            .pointer("/components/schemas/QuotaView/properties/per_day")
            .unwrap();
        assert_eq!(per_day["minimum"], 1, "{per_day}");
        assert_eq!(per_day["maximum"], MAX_QUOTA, "{per_day}");
        let quota_exceeded = rendered
            .pointer("/paths/~1oauth2~1token/post/responses/429/description")
            .unwrap();
        assert!(quota_exceeded.as_str().unwrap().contains("quota_exceeded"));
        let format = rendered
            .pointer("/components/schemas/ApplicationPatch/properties/token_format")
            .unwrap();
        assert_eq!(format["enum"], json!(["jwt", "opaque", null]), "{format}");
        // Schemathesis found every active introspection answer valid under both
        // schemas of Introspection's oneOf.
        let schemas = &rendered["components"]["schemas"];
        assert_eq!(
            schemas["ActiveToken"]["properties"]["active"]["enum"],
            json!([true])
        );
        assert_eq!(
            schemas["InactiveToken"]["properties"]["active"]["enum"],
            json!([false])
        );
        assert_eq!(
            schemas["InactiveToken"]["additionalProperties"],
            json!(false)
        );
    }
}
