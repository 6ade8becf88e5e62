//! What every page of the dashboard stands on: its state, who is signed in, reading a
//! form, and the answers any page can give (a page, a redirect, the page that says why
//! not).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::Markup;
use tessera_core::error::{FieldError, ManageError};
use tessera_core::{Authority, StoreError};
use tessera_proto::RealmView;

use super::form::{Fields, Form};
use super::pages::{self, Chrome};
use super::session::{self, Session, Sessions};
use crate::admin_state::AdminState;
use crate::body::{BodyError, read_body};
use crate::errors::{self, AdminFailure};
use crate::operations::{self, Actor};

pub(super) struct Dashboard {
    pub(super) admin: Arc<AdminState>,
    pub(super) sessions: Sessions,
}

pub(super) type DashState = State<Arc<Dashboard>>;
/// A page, or the page that says why not.
pub(super) type Page = Result<Response, Response>;

/// Applications shown per page of a realm's list.
pub(super) const PAGE_SIZE: u32 = 50;

/// What a signed-in request carries.
pub(super) struct SignedIn {
    pub(super) session: Session,
    pub(super) csrf: String,
    pub(super) actor: Actor,
}

impl Dashboard {
    pub(super) fn authority(&self) -> &Authority {
        &self.admin.authority
    }

    pub(super) fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let value = session::cookie(headers, session::COOKIE)?;
        let session = self.sessions.check(value, self.authority().now_ms())?;
        let ended = self
            .authority()
            .is_admin_session_ended(&session.id, session.issued_ms);
        (!ended).then_some(session)
    }

    /// The signed-in person, or a redirect to the sign-in page that comes back to `here`.
    pub(super) fn signed_in(&self, headers: &HeaderMap, here: &str) -> Result<SignedIn, Response> {
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
    pub(super) async fn submitted(
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

    pub(super) async fn read_form(
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

    pub(super) fn chrome<'a>(&self, who: &'a SignedIn, realm: Option<&'a str>) -> Chrome<'a> {
        Chrome {
            csrf: &who.csrf,
            realms: self
                .authority()
                .manage()
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
    pub(super) fn problem(
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
    pub(super) fn failure(&self, who: &SignedIn, err: ManageError) -> Response {
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

pub(super) fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A 303 to `location`, which must be a local path; one that cannot be a header value
/// goes to `/` instead (axum's `Redirect` would panic on it).
pub(super) fn see_other(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// A form's error as the page shows it: next to its field, or above the form; any
/// other error is for [`Dashboard::failure`].
pub(super) fn show_error(fields: &mut Fields, err: ManageError) -> Result<StatusCode, ManageError> {
    let status = errors::manage_status(&err);
    match err {
        ManageError::Invalid(field) => fields.fail(field),
        ManageError::Conflict(message) => fields.banner = Some(message),
        other => return Err(other),
    }
    Ok(status)
}

/// A field the form got wrong, shown beside it.
pub(super) fn field_error(fields: &mut Fields, field: FieldError) -> StatusCode {
    let err = ManageError::Invalid(field);
    let status = errors::manage_status(&err);
    if let ManageError::Invalid(field) = err {
        fields.fail(field);
    }
    status
}

/// The message a `?done=` after a redirect stands for.
pub(super) fn done_message(query: Option<&str>) -> Option<&'static str> {
    let form = Form::parse(query.unwrap_or_default().as_bytes())?;
    Some(match form.get("done") {
        "saved" => "Settings saved.",
        "revoked" => "Every token issued so far to this application is revoked.",
        "deleted" => "Application deleted.",
        "realm" => "Realm created.",
        _ => return None,
    })
}

pub(super) fn find_realm(
    state: &Dashboard,
    who: &SignedIn,
    realm: &str,
) -> Result<RealmView, Response> {
    operations::show_realm(state.authority(), realm).map_err(|e| state.failure(who, e))
}
