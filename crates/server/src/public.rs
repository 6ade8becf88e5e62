//! The public listener: token, introspection, revocation, metadata, JWKS, `/verify`
//! and health, served for every realm at `/realms/{realm}/…`, `/auth/realms/{realm}/…`
//! and, for `default` or a realm whose host name matches, at the root.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tessera_core::directory::RealmEntry;
use tessera_core::domain::AuthMethod;
use tessera_core::tokens::json_plain;
use tessera_core::{Authority, ClientAuth, Dialect, OAuthError, TokenInfo, TokenRequest};
use tessera_proto::{ActiveToken, InactiveToken, Introspection, Metadata, TokenResponse};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::body::read_body;
use crate::errors::PublicError;
use crate::limiter::{AuthGuard, Peer};
use crate::metrics::Metrics;
use crate::request::{Params, bearer_token, client_auth};

pub struct PublicState {
    pub authority: Arc<Authority>,
    pub metrics: Arc<Metrics>,
    pub body_limit: usize,
    /// The failed-authentication limits of the public listener.
    pub guard: Arc<AuthGuard>,
}

/// Runs `checked`, which authenticates the client, behind the failed-authentication
/// limits: an address that failed too often is refused before its credentials are
/// read, and a failure is counted (and answered 429 once over a limit). Success paths
/// pay one lookup of the address.
async fn guarded<T>(
    state: &PublicState,
    headers: &HeaderMap,
    peer: Peer,
    auth: &ClientAuth,
    checked: impl Future<Output = Result<T, OAuthError>>,
) -> Result<T, PublicError> {
    let source = state.guard.source(headers, peer);
    state.guard.admit(source)?;
    match checked.await {
        // A request without credentials is refused, but it is no guess.
        Err(err @ OAuthError::InvalidClient(_)) if *auth != ClientAuth::None => {
            state.guard.failed(source, auth.client_id())?;
            Err(err.into())
        }
        other => Ok(other?),
    }
}

type AppState = State<Arc<PublicState>>;

/// Every path of docs/contract.md §3, for every realm.
pub fn router(state: Arc<PublicState>) -> Router {
    let per_realm = Router::new()
        .route("/oauth2/token", post(token))
        .route("/oauth2/token/", post(token))
        .route("/oauth/token", post(token))
        .route("/passport/oauth/token", post(token))
        .route("/v2/token", post(token))
        .route("/protocol/openid-connect/token", post(token_keycloak))
        .route("/oauth2/introspect", post(introspect))
        .route(
            "/protocol/openid-connect/token/introspect",
            post(introspect),
        )
        .route("/oauth2/revoke", post(revoke))
        .route("/protocol/openid-connect/revoke", post(revoke))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/protocol/openid-connect/certs", get(jwks))
        .route("/verify", get(verify))
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .merge(per_realm.clone())
        .nest("/realms/{realm}", per_realm.clone())
        .nest("/auth/realms/{realm}", per_realm)
        .route(
            "/.well-known/oauth-authorization-server/realms/{realm}",
            get(metadata),
        )
        .route(
            "/.well-known/openid-configuration/realms/{realm}",
            get(metadata),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // No per-request tracing span or timer here: this is the hot path, and both
        // cost measurably (bench/). Handlers log what goes wrong themselves, and no
        // handler waits on anything but its own bounded body.
        .layer(CatchPanicLayer::new())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
}

/// The realm a request is for: named in the path, else matched by `Host`, else `default`.
pub struct RealmCtx(pub Arc<RealmEntry>);

impl FromRequestParts<Arc<PublicState>> for RealmCtx {
    type Rejection = PublicError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<PublicState>,
    ) -> Result<Self, Self::Rejection> {
        let authority = &state.authority;
        if let Ok(params) = RawPathParams::from_request_parts(parts, state).await
            && let Some((_, name)) = params.iter().find(|(key, _)| *key == "realm")
        {
            return authority
                .realm(name)
                .map(Self)
                .ok_or(PublicError::UnknownRealm);
        }
        if let Some(host) = request_host(parts)
            && let Some(realm) = authority.realm_for_host(host)
        {
            return Ok(Self(realm));
        }
        authority
            .realm(tessera_core::domain::RealmName::DEFAULT)
            .map(Self)
            .ok_or(PublicError::UnknownRealm)
    }
}

/// The host name of the request, without a port.
fn request_host(parts: &Parts) -> Option<&str> {
    let raw = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())?;
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h)
    };
    Some(host)
}

/// The request body, within the configured limit; [`Params::parse`] reads it.
async fn oauth_body(
    state: &PublicState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, PublicError> {
    read_body(headers, body, state.body_limit)
        .await
        .map_err(PublicError::from)
}

/// `value` as JSON; `hint` is about the size to expect, so the buffer rarely grows.
fn to_json(value: &impl serde::Serialize, hint: usize) -> Result<Vec<u8>, OAuthError> {
    let mut out = Vec::with_capacity(hint);
    serde_json::to_writer(&mut out, value)
        .map_err(|_| OAuthError::ServerError("could not write the response".into()))?;
    Ok(out)
}

fn json_no_store(body: Vec<u8>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn token(
    State(state): AppState,
    RealmCtx(realm): RealmCtx,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PublicError> {
    token_in_dialect(&state, &realm, peer, &headers, body, Dialect::Standard).await
}

async fn token_keycloak(
    State(state): AppState,
    RealmCtx(realm): RealmCtx,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PublicError> {
    token_in_dialect(&state, &realm, peer, &headers, body, Dialect::Keycloak).await
}

async fn token_in_dialect(
    state: &PublicState,
    realm: &RealmEntry,
    peer: Peer,
    headers: &HeaderMap,
    body: Body,
    dialect: Dialect,
) -> Result<Response, PublicError> {
    let result = token_inner(state, realm, peer, headers, body, dialect).await;
    match &result {
        Ok(_) => state.metrics.token_issued(),
        Err(err) => state.metrics.token_failed(err.code().unwrap_or_default()),
    }
    result
}

async fn token_inner(
    state: &PublicState,
    realm: &RealmEntry,
    peer: Peer,
    headers: &HeaderMap,
    body: Body,
    dialect: Dialect,
) -> Result<Response, PublicError> {
    let body = oauth_body(state, headers, body).await?;
    let params = Params::parse(headers, &body)?;
    let grant_type = params
        .single("grant_type")?
        .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?
        .to_owned();
    let request = TokenRequest {
        grant_type,
        scope: params.single("scope")?.map(str::to_owned),
        resources: params.all("resource"),
        refresh_token: params.single("refresh_token")?.map(str::to_owned),
        auth: client_auth(headers, &params)?,
        dialect,
    };
    let granted = guarded(
        state,
        headers,
        peer,
        &request.auth,
        state.authority.grant(realm, &request),
    )
    .await?;
    let keycloak = dialect == Dialect::Keycloak;
    let size_hint = granted.access_token.len()
        + granted.refresh_token.as_ref().map_or(0, String::len)
        + granted.scope.len()
        + 192;
    let response = TokenResponse {
        access_token: granted.access_token,
        token_type: granted.token_type.to_owned(),
        expires_in: granted.expires_in,
        scope: (!granted.scope.is_empty() || keycloak).then_some(granted.scope),
        refresh_token: granted.refresh_token,
        // Keycloak always sends it, 0 when there is no refresh token.
        refresh_expires_in: granted.refresh_expires_in.or(keycloak.then_some(0)),
        not_before_policy: keycloak.then_some(0),
        session_state: if keycloak { granted.session } else { None },
    };
    let body = token_response_json(&response, size_hint)?;
    Ok(json_no_store(body))
}

/// `response` exactly as `serde_json` writes it. When no string needs escaping (the
/// usual case: tokens are base64url), it is written directly, which spares
/// serde_json's byte-by-byte escaping scan over the long token.
fn token_response_json(response: &TokenResponse, hint: usize) -> Result<Vec<u8>, OAuthError> {
    // Destructured in full, so that a field added to the type cannot be missed here.
    let TokenResponse {
        access_token,
        token_type,
        expires_in,
        scope,
        refresh_token,
        refresh_expires_in,
        not_before_policy,
        session_state,
    } = response;
    let plain = [
        Some(access_token),
        Some(token_type),
        scope.as_ref(),
        refresh_token.as_ref(),
        session_state.as_ref(),
    ]
    .into_iter()
    .flatten()
    .all(|text| json_plain(text));
    if !plain {
        return to_json(response, hint);
    }
    let mut out = Vec::with_capacity(hint);
    let string = |out: &mut Vec<u8>, name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    };
    string(&mut out, "{\"access_token\":", access_token);
    string(&mut out, ",\"token_type\":", token_type);
    out.extend_from_slice(b",\"expires_in\":");
    write_json(&mut out, expires_in)?;
    if let Some(scope) = scope {
        string(&mut out, ",\"scope\":", scope);
    }
    if let Some(refresh_token) = refresh_token {
        string(&mut out, ",\"refresh_token\":", refresh_token);
    }
    if let Some(secs) = refresh_expires_in {
        out.extend_from_slice(b",\"refresh_expires_in\":");
        write_json(&mut out, secs)?;
    }
    if let Some(policy) = not_before_policy {
        out.extend_from_slice(b",\"not-before-policy\":");
        write_json(&mut out, policy)?;
    }
    if let Some(session) = session_state {
        string(&mut out, ",\"session_state\":", session);
    }
    out.push(b'}');
    Ok(out)
}

fn write_json(out: &mut Vec<u8>, value: &impl serde::Serialize) -> Result<(), OAuthError> {
    serde_json::to_writer(out, value)
        .map_err(|_| OAuthError::ServerError("could not write the response".into()))
}

async fn introspect(
    State(state): AppState,
    RealmCtx(realm): RealmCtx,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PublicError> {
    let body = oauth_body(&state, &headers, body).await?;
    let params = Params::parse(&headers, &body)?;
    let auth = client_auth(&headers, &params)?;
    let token = params
        .single("token")?
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let checked = state.authority.introspect(&realm, &auth, token);
    let answer = match guarded(&state, &headers, peer, &auth, checked).await? {
        Some(info) => {
            state.metrics.introspected(true);
            Introspection::Active(active(info))
        }
        None => {
            state.metrics.introspected(false);
            Introspection::Inactive(InactiveToken { active: false })
        }
    };
    let body = to_json(&answer, 512)?;
    Ok(json_no_store(body))
}

fn active(info: TokenInfo) -> ActiveToken {
    ActiveToken {
        active: true,
        client_id: info.client_id,
        scope: info.scope,
        exp: info.exp,
        iat: info.iat,
        nbf: info.iat,
        token_type: info.token_type.to_owned(),
        iss: info.iss,
        sub: info.sub,
        aud: info.aud,
        jti: info.jti,
    }
}

async fn revoke(
    State(state): AppState,
    RealmCtx(realm): RealmCtx,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PublicError> {
    let body = oauth_body(&state, &headers, body).await?;
    let params = Params::parse(&headers, &body)?;
    let auth = client_auth(&headers, &params)?;
    let token = params
        .single("token")?
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    params.single("token_type_hint")?;
    let checked = state.authority.revoke(&realm, &auth, token);
    guarded(&state, &headers, peer, &auth, checked).await?;
    state.metrics.revoked();
    // RFC 7009 §2.2: 200 and no content to read.
    Ok((
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        (),
    )
        .into_response())
}

async fn metadata(State(state): AppState, RealmCtx(realm): RealmCtx) -> Response {
    let issuer = &realm.issuer;
    let alg = realm.realm.signing_alg.as_str().to_owned();
    let offered = state.authority.offered(&realm);
    let methods: Vec<String> = offered
        .auth_methods
        .iter()
        .map(|m| m.as_str().to_owned())
        .collect();
    let mut grant_types = vec!["client_credentials".to_owned()];
    if offered.refresh_tokens {
        grant_types.push("refresh_token".to_owned());
    }
    let assertion_algs = offered
        .auth_methods
        .contains(&AuthMethod::PrivateKeyJwt)
        .then(|| {
            tessera_core::client_keys::AssertionAlg::NAMES
                .map(str::to_owned)
                .to_vec()
        });
    let document = Metadata {
        issuer: issuer.clone(),
        token_endpoint: format!("{issuer}/oauth2/token"),
        introspection_endpoint: format!("{issuer}/oauth2/introspect"),
        revocation_endpoint: format!("{issuer}/oauth2/revoke"),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        grant_types_supported: grant_types,
        response_types_supported: vec!["token".to_owned()],
        token_endpoint_auth_methods_supported: methods.clone(),
        token_endpoint_auth_signing_alg_values_supported: assertion_algs,
        introspection_endpoint_auth_methods_supported: methods.clone(),
        revocation_endpoint_auth_methods_supported: methods,
        subject_types_supported: vec!["public".to_owned()],
        id_token_signing_alg_values_supported: vec![alg.clone()],
        access_token_signing_alg_values_supported: vec![alg],
    };
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        )],
        axum::Json(document),
    )
        .into_response()
}

async fn jwks(RealmCtx(realm): RealmCtx) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            ),
        ],
        Bytes::from(realm.keys.jwks.as_bytes().to_vec()),
    )
        .into_response()
}

/// Forward-auth for a reverse proxy: 200 with who the caller is, or 401.
async fn verify(State(state): AppState, RealmCtx(realm): RealmCtx, headers: HeaderMap) -> Response {
    let info = bearer_token(&headers).and_then(|token| state.authority.check(&realm, token));
    state.metrics.verified(info.is_some());
    let Some(info) = info else {
        return PublicError::InvalidToken.into_response();
    };
    let mut response = (StatusCode::OK, "OK").into_response();
    let out = response.headers_mut();
    for (name, value) in [
        ("x-client-id", info.client_id.as_str()),
        ("x-scope", info.scope.as_str()),
        ("x-realm", info.realm.as_str()),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.insert(HeaderName::from_static(name), value);
        }
    }
    response
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(state): AppState) -> Response {
    match state.authority.ping().await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            PublicError::NotReady.into_response()
        }
    }
}

async fn metrics(State(state): AppState) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> PublicError {
    PublicError::NotFound
}

async fn method_not_allowed() -> PublicError {
    PublicError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses_are_written_as_serde_json_writes_them() {
        let base = TokenResponse {
            access_token: "tsr_at_AbC-_09".into(),
            token_type: "Bearer".into(),
            expires_in: 3600,
            scope: None,
            refresh_token: None,
            refresh_expires_in: None,
            not_before_policy: None,
            session_state: None,
        };
        let keycloak = TokenResponse {
            scope: Some(String::new()),
            refresh_token: Some("tsr_rt_x".into()),
            refresh_expires_in: Some(0),
            not_before_policy: Some(0),
            session_state: Some("0191-ab".into()),
            ..base.clone()
        };
        let escaped = TokenResponse {
            access_token: "a\"b\\c\u{1}d\u{7f}é".into(),
            scope: Some("read write".into()),
            not_before_policy: Some(-5),
            ..base.clone()
        };
        let session_escaped = TokenResponse {
            session_state: Some("x\ny".into()),
            ..keycloak.clone()
        };
        for response in [base, keycloak, escaped, session_escaped] {
            let want = serde_json::to_vec(&response).unwrap();
            for hint in [0, 512] {
                assert_eq!(
                    String::from_utf8(token_response_json(&response, hint).unwrap()).unwrap(),
                    String::from_utf8(want.clone()).unwrap()
                );
            }
        }
        assert!(json_plain("tsr_at_AbC-_09 é~\u{7f}"));
        for bad in ["\"", "\\", "\n", "\u{1f}", "a\u{0}"] {
            assert!(!json_plain(bad), "{bad:?}");
        }
    }
}
