//! The home page: the list of realms, and creating one.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_proto::RealmCreate;

use super::form::Fields;
use super::pages;
use super::site::{
    DashState, Dashboard, Page, SignedIn, done_message, html, see_other, show_error,
};
use crate::operations;

pub(super) async fn to_home() -> Response {
    see_other("/")
}

pub(super) async fn home(
    State(state): DashState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Page {
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

pub(super) async fn create_realm(State(state): DashState, headers: HeaderMap, body: Body) -> Page {
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
