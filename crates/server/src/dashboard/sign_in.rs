//! Signing in with the admin key, and signing out (here, or everywhere).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use subtle::ConstantTimeEq;
use tessera_core::error::FieldError;

use super::form::{Fields, Form};
use super::pages;
use super::session;
use super::site::{DashState, Dashboard, Page, html, see_other};
use crate::errors::AdminFailure;
use crate::limiter::{Peer, TooManyFailures};

/// Where to go after signing in: a path of this site, else `/`.
///
/// Browsers read a `Location` leniently: they drop leading and trailing spaces and
/// controls, delete tabs and newlines anywhere, and take `\\` for `/`, so `/\t/evil.example`
/// and `/\\evil.example` both lead to `//evil.example`, another site. Rather than
/// repeat that normalisation, only plain paths pass: printable ASCII without `\\`,
/// starting with one `/` that is not followed by another. Every path the dashboard
/// sends (percent-encoded by `pages::encode`) is of that kind.
pub fn local_path(next: &str) -> &str {
    let plain = next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    let mut chars = next.chars();
    let local = chars.next() == Some('/') && chars.next() != Some('/');
    if plain && local { next } else { "/" }
}

pub(super) async fn sign_in_page(
    State(state): DashState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if state.session(&headers).is_some() {
        return see_other("/");
    }
    let next = Form::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    sign_in_form(
        &state,
        &headers,
        local_path(next.get("next")),
        &Fields::default(),
        StatusCode::OK,
    )
}

/// The sign-in form, with a fresh form token in its own cookie: there is no session
/// to bind it to yet.
fn sign_in_form(
    state: &Dashboard,
    headers: &HeaderMap,
    next: &str,
    fields: &Fields,
    status: StatusCode,
) -> Response {
    let token = state.authority().random_token(16);
    let mut response = html(status, pages::sign_in(&token, next, fields));
    let cookie = session::set_cookie(
        session::SIGN_IN_COOKIE,
        &token,
        3600,
        session::over_tls(headers),
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub(super) async fn sign_in(
    State(state): DashState,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Page {
    let form = state.read_form(&headers, body, None).await?;
    let next = local_path(form.get("next")).to_owned();
    let guard = &state.admin.guard;
    let source = guard.source(&headers, peer);
    let slow_down = |limited: TooManyFailures| {
        let mut fields = Fields::default();
        fields.banner = Some(format!(
            "Too many wrong admin keys from here. Try again in {} seconds.",
            limited.retry_after_s
        ));
        let retry_after = HeaderValue::from_str(&limited.retry_after_s.to_string());
        let status = AdminFailure::from(limited).status();
        let mut page = sign_in_form(&state, &headers, &next, &fields, status);
        if let Ok(value) = retry_after {
            page.headers_mut().insert(header::RETRY_AFTER, value);
        }
        page
    };
    guard.admit(source).map_err(slow_down)?;
    let expected = session::cookie(&headers, session::SIGN_IN_COOKIE).unwrap_or_default();
    let presented = form.get("csrf");
    let token_ok: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
    if !token_ok || expected.is_empty() {
        let mut fields = Fields::default();
        fields.banner = Some("The sign-in form had expired; please sign in again.".to_owned());
        return Err(sign_in_form(
            &state,
            &headers,
            &next,
            &fields,
            AdminFailure::StaleForm.status(),
        ));
    }
    let key_ok: bool = form
        .get("admin_key")
        .trim()
        .as_bytes()
        .ct_eq(state.admin.admin_key.expose().as_bytes())
        .into();
    if !key_ok {
        guard.failed(source, None).map_err(slow_down)?;
        tracing::debug!("dashboard sign-in with a wrong admin key");
        let mut fields = Fields::default();
        fields.fail(FieldError::new("admin_key", "That is not the admin key."));
        return Err(sign_in_form(
            &state,
            &headers,
            &next,
            &fields,
            AdminFailure::Unauthorized.status(),
        ));
    }
    let now_ms = state.authority().now_ms();
    let (session, cookie) = state
        .sessions
        .begin(state.authority().random_token(16), now_ms);
    tracing::info!(session = %state.sessions.public_id(&session), "dashboard sign-in");
    let tls = session::over_tls(&headers);
    let mut response = see_other(&next);
    for value in [
        session::set_cookie(session::COOKIE, &cookie, session::LIFETIME_S, tls),
        session::set_cookie(session::SIGN_IN_COOKIE, "", 0, tls),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// Ends this session on every node: the cookie is cleared here, and the store records
/// the session as ended, so a copy of the cookie is refused everywhere too.
pub(super) async fn sign_out(State(state): DashState, headers: HeaderMap, body: Body) -> Page {
    let (who, _) = state.submitted(&headers, body, "/").await?;
    let session = &who.session;
    state
        .authority()
        .end_admin_session(&session.id, session.expires_at)
        .await
        .map_err(|err| state.failure(&who, err))?;
    tracing::info!(session = %state.sessions.public_id(session), "dashboard sign-out");
    Ok(signed_out(&headers))
}

/// Ends every dashboard session begun so far, this one included, on every node.
pub(super) async fn sign_out_everywhere(
    State(state): DashState,
    headers: HeaderMap,
    body: Body,
) -> Page {
    let (who, _) = state.submitted(&headers, body, "/").await?;
    state
        .authority()
        .end_admin_sessions(session::LIFETIME_S)
        .await
        .map_err(|err| state.failure(&who, err))?;
    tracing::warn!(session = %state.sessions.public_id(&who.session), "every dashboard session ended");
    Ok(signed_out(&headers))
}

/// To the sign-in page, with the session cookie cleared.
fn signed_out(headers: &HeaderMap) -> Response {
    let mut response = see_other("/sign-in");
    let cookie = session::set_cookie(session::COOKIE, "", 0, session::over_tls(headers));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
