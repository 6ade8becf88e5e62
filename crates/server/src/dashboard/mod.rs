//! The dashboard at `/` of the admin listener: what the admin API does, for a person.
//!
//! Server-rendered HTML that works without JavaScript. Every change to realms and
//! applications goes through [`operations`], like the admin API and the CLI, and the
//! audit log names the session that made it; statuses come from `errors.rs`, the words
//! are the dashboard's own. A person signs in with the admin key and gets a session cookie
//! (HttpOnly, SameSite=Strict, Secure behind TLS); every form carries a token bound to
//! the session, checked before anything else is read.

// Handlers return the page that says why not as `Err(Response)`: one per request, at
// most, so its size is no cost worth a box.
#![allow(clippy::result_large_err)]

mod applications;
mod form;
mod pages;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::Markup;
use subtle::ConstantTimeEq;
use tessera_core::error::{FieldError, ManageError};
use tessera_core::{Authority, StoreError};
use tessera_proto::{RealmCreate, RealmView};

use crate::admin_state::AdminState;
use crate::body::{BodyError, read_body};
use crate::errors::{self, AdminFailure};
use crate::limiter::{Peer, TooManyFailures};
use crate::operations::{self, Actor};
use form::{Fields, Form};
use pages::Chrome;
use session::{Session, Sessions};

struct Dashboard {
    admin: Arc<AdminState>,
    sessions: Sessions,
}

type DashState = State<Arc<Dashboard>>;
/// A page, or the page that says why not.
type Page = Result<Response, Response>;

/// Applications shown per page of a realm's list.
const PAGE_SIZE: u32 = 50;

pub fn router(admin: Arc<AdminState>) -> Router {
    // Bound to the admin key as well as the master key: a new admin key ends every session.
    let mac = admin.authority.mac_key(&format!(
        "tessera dashboard sessions v1 {}",
        admin.admin_key.expose()
    ));
    let state = Arc::new(Dashboard {
        admin,
        sessions: Sessions::new(mac),
    });
    Router::new()
        .route("/", get(home))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/sign-out-everywhere", post(sign_out_everywhere))
        .route("/assets/dashboard.css", get(css))
        .route("/assets/dashboard.js", get(script))
        .route("/realms", get(to_home).post(create_realm))
        .route("/realms/{realm}", get(applications::realm_page))
        .route(
            "/realms/{realm}/new",
            get(applications::new_app_page).post(applications::create_app),
        )
        .route(
            "/realms/{realm}/apps/{client_id}",
            get(applications::app_page).post(applications::save_app),
        )
        .route(
            "/realms/{realm}/apps/{client_id}/token",
            post(applications::issue_token),
        )
        .route(
            "/realms/{realm}/apps/{client_id}/secret",
            post(applications::rotate_secret),
        )
        .route(
            "/realms/{realm}/apps/{client_id}/revoke",
            post(applications::revoke_tokens),
        )
        .route(
            "/realms/{realm}/apps/{client_id}/delete",
            get(applications::delete_page).post(applications::delete_app),
        )
        .layer(map_response(protect))
        .with_state(state)
}

/// Pages show secrets and act on forms: never cached, never framed, scripts only from
/// ourselves.
async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::CACHE_CONTROL, "no-store");
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    response
}

/// What a signed-in request carries.
struct SignedIn {
    session: Session,
    csrf: String,
    actor: Actor,
}

impl Dashboard {
    fn authority(&self) -> &Authority {
        &self.admin.authority
    }

    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let value = session::cookie(headers, session::COOKIE)?;
        let session = self.sessions.check(value, self.authority().now_ms())?;
        let ended = self
            .authority()
            .is_admin_session_ended(&session.id, session.issued_ms);
        (!ended).then_some(session)
    }

    /// The signed-in person, or a redirect to the sign-in page that comes back to `here`.
    fn signed_in(&self, headers: &HeaderMap, here: &str) -> Result<SignedIn, Response> {
        let Some(session) = self.session(headers) else {
            let next = pages::encode(here);
            return Err(see_other(&format!("/sign-in?next={next}")));
        };
        Ok(SignedIn {
            csrf: self.sessions.csrf(&session),
            actor: Actor::dashboard(&self.sessions.public_id(&session)),
            session,
        })
    }

    /// A signed-in form submission whose form token is right.
    async fn submitted(
        &self,
        headers: &HeaderMap,
        body: Body,
        here: &str,
    ) -> Result<(SignedIn, Form), Response> {
        let who = self.signed_in(headers, here)?;
        let form = self.read_form(headers, body, Some(&who)).await?;
        if !self.sessions.csrf_matches(&who.session, form.get("csrf")) {
            return Err(self.problem(
                Some(&who),
                &AdminFailure::StaleForm,
                "This form has expired",
                "The page was older than your session. Go back, reload it and try again.",
            ));
        }
        Ok((who, form))
    }

    async fn read_form(
        &self,
        headers: &HeaderMap,
        body: Body,
        who: Option<&SignedIn>,
    ) -> Result<Form, Response> {
        let too_large = |err: BodyError| {
            let (title, message) = match err {
                BodyError::TooLarge(limit) => (
                    "That was too much",
                    format!("A form may send at most {limit} bytes."),
                ),
                BodyError::TimedOut => (
                    "That took too long",
                    "The form did not arrive in time; please send it again.".to_owned(),
                ),
            };
            self.problem(who, &AdminFailure::from(err), title, &message)
        };
        let bytes = read_body(headers, body, self.admin.body_limit)
            .await
            .map_err(too_large)?;
        Form::parse(&bytes).ok_or_else(|| {
            let message = "Send the dashboard's own forms, URL-encoded.";
            let failure = AdminFailure::BadBody {
                field: None,
                message: message.to_owned(),
            };
            self.problem(who, &failure, "That form did not read", message)
        })
    }

    fn chrome<'a>(&self, who: &'a SignedIn, realm: Option<&'a str>) -> Chrome<'a> {
        Chrome {
            csrf: &who.csrf,
            realms: self
                .authority()
                .realms()
                .iter()
                .map(|r| r.realm.name.to_string())
                .collect(),
            realm,
            until: who.session.expires_at,
        }
    }

    /// The page that says why not: its status from the admin listener's one table, its
    /// words the dashboard's own.
    fn problem(
        &self,
        who: Option<&SignedIn>,
        failure: &AdminFailure,
        title: &str,
        message: &str,
    ) -> Response {
        let chrome = who.map(|w| self.chrome(w, None));
        html(
            failure.status(),
            pages::problem(chrome.as_ref(), title, message),
        )
    }

    /// A failed operation that no form field explains.
    fn failure(&self, who: &SignedIn, err: ManageError) -> Response {
        errors::log_manage_failure(&err);
        let (title, message) = match &err {
            ManageError::NotFound { what, name } => {
                ("Not found", format!("There is no {what} {name}."))
            }
            ManageError::Invalid(field) => (
                "That did not work",
                format!("{}: {}", field.field, field.message),
            ),
            ManageError::Conflict(message) => ("That did not work", message.clone()),
            ManageError::Forbidden(message) => ("That is not allowed", (*message).to_owned()),
            ManageError::Store(StoreError::Unavailable(_)) => (
                "The store is unavailable",
                "Nothing was changed. Try again in a moment.".to_owned(),
            ),
            ManageError::Store(_) | ManageError::Internal(_) => (
                "Something went wrong",
                "The server logged what happened.".to_owned(),
            ),
        };
        self.problem(Some(who), &AdminFailure::Manage(err), title, &message)
    }
}

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A 303 to `location`, which must be a local path; one that cannot be a header value
/// goes to `/` instead (axum's `Redirect` would panic on it).
fn see_other(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// A form's error as the page shows it: next to its field, or above the form; any
/// other error is for [`Dashboard::failure`].
fn show_error(fields: &mut Fields, err: ManageError) -> Result<StatusCode, ManageError> {
    let status = errors::manage_status(&err);
    match err {
        ManageError::Invalid(field) => fields.fail(field),
        ManageError::Conflict(message) => fields.banner = Some(message),
        other => return Err(other),
    }
    Ok(status)
}

/// A field the form got wrong, shown beside it.
fn field_error(fields: &mut Fields, field: FieldError) -> StatusCode {
    let err = ManageError::Invalid(field);
    let status = errors::manage_status(&err);
    if let ManageError::Invalid(field) = err {
        fields.fail(field);
    }
    status
}

/// The message a `?done=` after a redirect stands for.
fn done_message(query: Option<&str>) -> Option<&'static str> {
    let form = Form::parse(query.unwrap_or_default().as_bytes())?;
    Some(match form.get("done") {
        "saved" => "Settings saved.",
        "revoked" => "Every token issued so far to this application is revoked.",
        "deleted" => "Application deleted.",
        "realm" => "Realm created.",
        _ => return None,
    })
}

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

// ----- sign in ------------------------------------------------------------------------

async fn sign_in_page(
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

async fn sign_in(State(state): DashState, peer: Peer, headers: HeaderMap, body: Body) -> Page {
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
async fn sign_out(State(state): DashState, headers: HeaderMap, body: Body) -> Page {
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
async fn sign_out_everywhere(State(state): DashState, headers: HeaderMap, body: Body) -> Page {
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

async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/dashboard.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

// ----- realms -------------------------------------------------------------------------

async fn to_home() -> Response {
    see_other("/")
}

async fn home(State(state): DashState, headers: HeaderMap, RawQuery(query): RawQuery) -> Page {
    let who = state.signed_in(&headers, "/")?;
    Ok(realms_page(
        &state,
        &who,
        &Fields::default(),
        StatusCode::OK,
        done_message(query.as_deref()),
    ))
}

fn realms_page(
    state: &Dashboard,
    who: &SignedIn,
    fields: &Fields,
    status: StatusCode,
    done: Option<&str>,
) -> Response {
    let realms = operations::list_realms(state.authority());
    html(
        status,
        pages::realms(&state.chrome(who, None), &realms, fields, done),
    )
}

async fn create_realm(State(state): DashState, headers: HeaderMap, body: Body) -> Page {
    let (who, form) = state.submitted(&headers, body, "/").await?;
    let input = RealmCreate {
        name: form.get("name").trim().to_owned(),
        ..RealmCreate::default()
    };
    match operations::create_realm(state.authority(), &who.actor, input).await {
        Ok(realm) => Ok(see_other(&format!(
            "{}?done=realm",
            pages::realm_href(&realm.name)
        ))),
        Err(err) => {
            let mut fields = Fields::new(form);
            let status = show_error(&mut fields, err).map_err(|e| state.failure(&who, e))?;
            Err(realms_page(&state, &who, &fields, status, None))
        }
    }
}

fn find_realm(state: &Dashboard, who: &SignedIn, realm: &str) -> Result<RealmView, Response> {
    operations::show_realm(state.authority(), realm).map_err(|e| state.failure(who, e))
}
