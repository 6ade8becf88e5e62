//! The dashboard's application pages: a realm's list, creating one, and an
//! application's page with its forms (settings, token, secret, revoke, delete).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_core::error::{FieldError, ManageError};
use tessera_proto::{
    ApplicationCreate, ApplicationList, ApplicationPatch, ApplicationView, IssueToken, QuotaView,
    SecretRotate, UsageQuery,
};

use super::form::{self, Fields, Form};
use super::pages::{self, AppList, AppPage};
use super::site::{
    DashState, Dashboard, PAGE_SIZE, Page, SignedIn, done_message, field_error, find_realm, html,
    see_other, show_error,
};
use crate::errors;
use crate::operations;

pub(super) async fn realm_page(
    State(state): DashState,
    Path(realm): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Page {
    let here = pages::realm_href(&realm);
    let who = state.signed_in(&headers, &here)?;
    let view = find_realm(&state, &who, &realm)?;
    let params = Form::parse(query.as_deref().unwrap_or_default().as_bytes()).unwrap_or_default();
    let search = params.get("q").trim().to_owned();
    let list = ApplicationList {
        limit: Some(PAGE_SIZE.to_string()),
        after: params.text("after"),
        q: Some(search.clone()),
    };
    let (apps, next, search_error, status) =
        match operations::list_applications(state.authority(), &realm, list).await {
            Ok(page) => {
                let next = page.next.and_then(|n| {
                    let query = serde_urlencoded::to_string([
                        ("q", n.q.unwrap_or_default()),
                        ("after", n.after.unwrap_or_default()),
                    ])
                    .ok()?;
                    Some(format!("{here}?{query}"))
                });
                (page.items, next, None, StatusCode::OK)
            }
            Err(err) => {
                let status = errors::manage_status(&err);
                let ManageError::Invalid(field) = err else {
                    return Err(state.failure(&who, err));
                };
                (Vec::new(), None, Some(field.message), status)
            }
        };
    let list = AppList {
        realm: &view,
        apps: &apps,
        search: &search,
        search_error: search_error.as_deref(),
        next,
        done: done_message(query.as_deref()),
    };
    Ok(html(
        status,
        pages::applications(&state.chrome(&who, Some(&realm)), &list),
    ))
}

pub(super) async fn new_app_page(
    State(state): DashState,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> Page {
    let who = state.signed_in(&headers, &format!("{}/new", pages::realm_href(&realm)))?;
    let view = find_realm(&state, &who, &realm)?;
    let mut form = Form::default();
    form::set_lifetime(&mut form, "token_ttl", 3600);
    form.push("auth_methods", "client_secret_basic");
    form.push("auth_methods", "client_secret_post");
    let chrome = state.chrome(&who, Some(&realm));
    Ok(html(
        StatusCode::OK,
        pages::new_application(&chrome, &view, &Fields::new(form)),
    ))
}

/// The application a create form describes, or the first field that is wrong.
fn application_create(form: &Form) -> Result<ApplicationCreate, FieldError> {
    let methods: Vec<String> = form.all("auth_methods").map(str::to_owned).collect();
    Ok(ApplicationCreate {
        name: form.get("name").trim().to_owned(),
        client_id: form.text("client_id"),
        scopes: form.words("scopes"),
        scope_required: Some(form.has("scope_required", "on")),
        token_ttl: form.lifetime("token_ttl")?,
        token_format: form.text("token_format"),
        auth_methods: (!methods.is_empty()).then_some(methods),
        public_key: form.text("public_key"),
        audiences: form.words("audiences"),
        quota: quota_of(form)?,
        ..ApplicationCreate::default()
    })
}

/// The quota the two quota fields ask for; `None` when both are blank.
fn quota_of(form: &Form) -> Result<Option<QuotaView>, FieldError> {
    let limit = |name: &str| {
        form.text(name)
            .map(|text| {
                text.parse::<u64>().map_err(|_| {
                    FieldError::new("quota", "a quota is a whole number of tokens, or blank")
                })
            })
            .transpose()
    };
    let per_minute = limit("quota_per_minute")?;
    let per_day = limit("quota_per_day")?;
    Ok(
        (per_minute.is_some() || per_day.is_some()).then_some(QuotaView {
            per_minute,
            per_day,
        }),
    )
}

pub(super) async fn create_app(
    State(state): DashState,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Page {
    let here = format!("{}/new", pages::realm_href(&realm));
    let (who, form) = state.submitted(&headers, body, &here).await?;
    let view = find_realm(&state, &who, &realm)?;
    let mut fields = Fields::new(form);
    let status = match application_create(&fields.form) {
        Err(field) => field_error(&mut fields, field),
        Ok(input) => {
            if input.name.is_empty() {
                let field = FieldError::new("name", "give the application a name");
                field_error(&mut fields, field)
            } else {
                match operations::create_application(state.authority(), &who.actor, &realm, input)
                    .await
                {
                    Ok(created) => {
                        let chrome = state.chrome(&who, Some(&realm));
                        return Ok(html(
                            StatusCode::CREATED,
                            pages::created(&chrome, &realm, &created),
                        ));
                    }
                    Err(err @ ManageError::Conflict(_))
                        if fields.form.text("client_id").is_some() =>
                    {
                        let status = errors::manage_status(&err);
                        fields.fail(FieldError::new("client_id", err.to_string()));
                        status
                    }
                    Err(err) => show_error(&mut fields, err).map_err(|e| state.failure(&who, e))?,
                }
            }
        }
    };
    let chrome = state.chrome(&who, Some(&realm));
    Err(html(
        status,
        pages::new_application(&chrome, &view, &fields),
    ))
}

/// The settings form filled from the application as stored.
fn settings_of(app: &ApplicationView) -> Fields {
    let mut form = Form::default();
    form.set("name", app.name.clone());
    form.set("scopes", app.scopes.join(" "));
    form.set("audiences", app.audiences.join(" "));
    form.set("token_format", app.token_format.clone().unwrap_or_default());
    form.set("public_key", app.public_key.clone().unwrap_or_default());
    form::set_lifetime(&mut form, "token_ttl", app.token_ttl);
    if let Some(quota) = &app.quota {
        for (name, limit) in [
            ("quota_per_minute", quota.per_minute),
            ("quota_per_day", quota.per_day),
        ] {
            if let Some(limit) = limit {
                form.set(name, limit.to_string());
            }
        }
    }
    if app.enabled {
        form.set("enabled", "on");
    }
    if app.scope_required {
        form.set("scope_required", "on");
    }
    for method in &app.auth_methods {
        form.push("auth_methods", method.clone());
    }
    Fields::new(form)
}

/// The token form, preset to the application's own lifetime.
fn token_form(app: &ApplicationView) -> Fields {
    let mut form = Form::default();
    form::set_lifetime(&mut form, "ttl", app.token_ttl);
    Fields::new(form)
}

/// The forms of the application page, some of them as submitted with their errors.
struct AppForms {
    settings: Option<Fields>,
    token: Option<Fields>,
    secret: Option<Fields>,
}

impl AppForms {
    const FRESH: Self = Self {
        settings: None,
        token: None,
        secret: None,
    };
}

async fn render_app(
    state: &Dashboard,
    who: &SignedIn,
    realm: &str,
    app: &ApplicationView,
    forms: AppForms,
    status: StatusCode,
    done: Option<&str>,
) -> Page {
    let view = find_realm(state, who, realm)?;
    let usage = operations::usage(
        state.authority(),
        realm,
        &app.client_id,
        UsageQuery::default(),
    )
    .await
    .map_err(|e| state.failure(who, e))?;
    let settings = forms.settings.unwrap_or_else(|| settings_of(app));
    let token = forms.token.unwrap_or_else(|| token_form(app));
    let secret = forms.secret.unwrap_or_default();
    let page = AppPage {
        realm: &view,
        app,
        usage: &usage.hours,
        settings: &settings,
        token: &token,
        secret: &secret,
        done,
    };
    Ok(html(
        status,
        pages::application(&state.chrome(who, Some(realm)), &page),
    ))
}

/// The forms of the application page that can fail.
enum AppForm {
    Settings,
    Token,
    Secret,
}

/// The application page again, with the form that failed as it was submitted and its
/// error beside the field (or the page that says what else went wrong).
async fn app_form_failed(
    state: &Dashboard,
    who: &SignedIn,
    realm: &str,
    app: &ApplicationView,
    (which, mut fields, err): (AppForm, Fields, ManageError),
) -> Response {
    let status = match show_error(&mut fields, err) {
        Ok(status) => status,
        Err(other) => return state.failure(who, other),
    };
    let mut forms = AppForms::FRESH;
    let slot = match which {
        AppForm::Settings => &mut forms.settings,
        AppForm::Token => &mut forms.token,
        AppForm::Secret => &mut forms.secret,
    };
    *slot = Some(fields);
    match render_app(state, who, realm, app, forms, status, None).await {
        Ok(page) | Err(page) => page,
    }
}

async fn find_app(
    state: &Dashboard,
    who: &SignedIn,
    realm: &str,
    client_id: &str,
) -> Result<ApplicationView, Response> {
    operations::show_application(state.authority(), realm, client_id)
        .await
        .map_err(|e| state.failure(who, e))
}

/// A form submitted on an application's page: who sent it, the application as stored,
/// and the form to show again if it fails.
async fn app_form(
    state: &Dashboard,
    headers: &HeaderMap,
    body: Body,
    realm: &str,
    client_id: &str,
) -> Result<(SignedIn, ApplicationView, Fields), Response> {
    let here = pages::app_href(realm, client_id);
    let (who, form) = state.submitted(headers, body, &here).await?;
    let app = find_app(state, &who, realm, client_id).await?;
    Ok((who, app, Fields::new(form)))
}

pub(super) async fn app_page(
    State(state): DashState,
    Path((realm, client_id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Page {
    let who = state.signed_in(&headers, &pages::app_href(&realm, &client_id))?;
    let app = find_app(&state, &who, &realm, &client_id).await?;
    let done = done_message(query.as_deref());
    render_app(
        &state,
        &who,
        &realm,
        &app,
        AppForms::FRESH,
        StatusCode::OK,
        done,
    )
    .await
}

/// The change a settings form asks for: every field it shows is set.
fn application_patch(form: &Form) -> Result<ApplicationPatch, FieldError> {
    Ok(ApplicationPatch {
        name: Some(form.get("name").trim().to_owned()),
        enabled: Some(form.has("enabled", "on")),
        scopes: Some(form.words("scopes").unwrap_or_default()),
        scope_required: Some(form.has("scope_required", "on")),
        token_ttl: form.lifetime("token_ttl")?,
        token_format: Some(form.text("token_format")),
        auth_methods: Some(form.all("auth_methods").map(str::to_owned).collect()),
        public_key: Some(form.text("public_key")),
        audiences: Some(form.words("audiences").unwrap_or_default()),
        quota: Some(quota_of(form)?),
        ..ApplicationPatch::default()
    })
}

pub(super) async fn save_app(
    State(state): DashState,
    Path((realm, client_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Page {
    let (who, app, fields) = app_form(&state, &headers, body, &realm, &client_id).await?;
    let outcome = match application_patch(&fields.form) {
        Err(field) => Err(ManageError::Invalid(field)),
        Ok(patch) => {
            operations::update_application(state.authority(), &who.actor, &realm, &client_id, patch)
                .await
        }
    };
    match outcome {
        Ok(_) => Ok(see_other(&format!(
            "{}?done=saved",
            pages::app_href(&realm, &client_id)
        ))),
        Err(err) => {
            let failed = (AppForm::Settings, fields, err);
            Err(app_form_failed(&state, &who, &realm, &app, failed).await)
        }
    }
}

pub(super) async fn issue_token(
    State(state): DashState,
    Path((realm, client_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Page {
    let (who, app, fields) = app_form(&state, &headers, body, &realm, &client_id).await?;
    let outcome = match fields.form.lifetime("ttl") {
        Err(field) => Err(ManageError::Invalid(field)),
        Ok(ttl) => {
            let input = IssueToken {
                ttl,
                scopes: fields.form.words("scopes"),
            };
            operations::issue_token(state.authority(), &who.actor, &realm, &client_id, input).await
        }
    };
    match outcome {
        Ok(token) => {
            let chrome = state.chrome(&who, Some(&realm));
            Ok(html(
                StatusCode::CREATED,
                pages::token(&chrome, &realm, &app, &token),
            ))
        }
        Err(err) => {
            let failed = (AppForm::Token, fields, err);
            Err(app_form_failed(&state, &who, &realm, &app, failed).await)
        }
    }
}

pub(super) async fn rotate_secret(
    State(state): DashState,
    Path((realm, client_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Page {
    let (who, app, fields) = app_form(&state, &headers, body, &realm, &client_id).await?;
    let outcome = match fields.form.get("grace_period").trim().parse::<u64>() {
        Err(_) => Err(ManageError::Invalid(FieldError::new(
            "grace_period",
            "choose how long the current secret keeps working",
        ))),
        Ok(grace) => {
            let input = SecretRotate {
                grace_period: Some(grace),
            };
            operations::rotate_secret(state.authority(), &who.actor, &realm, &client_id, input)
                .await
        }
    };
    match outcome {
        Ok(rotated) => {
            let chrome = state.chrome(&who, Some(&realm));
            Ok(html(
                StatusCode::OK,
                pages::secret(&chrome, &realm, &app, &rotated),
            ))
        }
        Err(err) => {
            let failed = (AppForm::Secret, fields, err);
            Err(app_form_failed(&state, &who, &realm, &app, failed).await)
        }
    }
}

pub(super) async fn revoke_tokens(
    State(state): DashState,
    Path((realm, client_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Page {
    let here = pages::app_href(&realm, &client_id);
    let (who, _) = state.submitted(&headers, body, &here).await?;
    operations::revoke_tokens(state.authority(), &who.actor, &realm, &client_id)
        .await
        .map_err(|e| state.failure(&who, e))?;
    Ok(see_other(&format!("{here}?done=revoked")))
}

pub(super) async fn delete_page(
    State(state): DashState,
    Path((realm, client_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Page {
    let here = format!("{}/delete", pages::app_href(&realm, &client_id));
    let who = state.signed_in(&headers, &here)?;
    let app = find_app(&state, &who, &realm, &client_id).await?;
    let chrome = state.chrome(&who, Some(&realm));
    Ok(html(
        StatusCode::OK,
        pages::confirm_delete(&chrome, &realm, &app),
    ))
}

/// Deletes once confirmed: by the confirmation page, or by the script's dialog on the
/// application page. Unconfirmed, it shows the confirmation page.
pub(super) async fn delete_app(
    State(state): DashState,
    Path((realm, client_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Page {
    let here = pages::app_href(&realm, &client_id);
    let (who, form) = state.submitted(&headers, body, &here).await?;
    if form.get("confirm") != "yes" {
        let app = find_app(&state, &who, &realm, &client_id).await?;
        let chrome = state.chrome(&who, Some(&realm));
        return Ok(html(
            StatusCode::OK,
            pages::confirm_delete(&chrome, &realm, &app),
        ));
    }
    operations::delete_application(state.authority(), &who.actor, &realm, &client_id)
        .await
        .map_err(|e| state.failure(&who, e))?;
    Ok(see_other(&format!(
        "{}?done=deleted",
        pages::realm_href(&realm)
    )))
}
