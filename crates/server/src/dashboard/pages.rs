//! The dashboard's pages, as maud templates: plain HTML forms that work without
//! JavaScript; `/assets/dashboard.js` only adds copy buttons, preset focus and
//! confirmation dialogs on top.

use maud::{DOCTYPE, Markup, html};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use tessera_proto::{
    ApplicationView, ApplicationWithSecret, IssuedToken, QuotaView, RealmView, SecretRotated,
    UsageHour,
};

use super::form::{Fields, LIFETIME_PRESETS, human_duration, utc};

/// What every signed-in page needs: the form token and the realms for the menu.
pub struct Chrome<'a> {
    pub csrf: &'a str,
    pub realms: Vec<String>,
    pub realm: Option<&'a str>,
    /// When the session ends (unix seconds).
    pub until: i64,
}

/// The authentication methods an application may be allowed, as the form names them.
const AUTH_METHODS: [(&str, &str); 4] = [
    (
        "client_secret_basic",
        "Client secret in the Authorization header (Basic)",
    ),
    ("client_secret_post", "Client secret in the request body"),
    ("private_key_jwt", "Signed JWT assertion (private_key_jwt)"),
    ("signed_credential", "Signed credential (RSA)"),
];

/// Everything but `A-Z a-z 0-9 - . _ ~` is encoded in a path segment or query value.
const COMPONENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

pub fn encode(part: &str) -> String {
    utf8_percent_encode(part, COMPONENT).to_string()
}

pub fn realm_href(realm: &str) -> String {
    format!("/realms/{}", encode(realm))
}

pub fn app_href(realm: &str, client_id: &str) -> String {
    format!("/realms/{}/apps/{}", encode(realm), encode(client_id))
}

fn layout(title: &str, chrome: Option<&Chrome<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tessera" }
                link rel="stylesheet" href="/assets/dashboard.css";
                script src="/assets/dashboard.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "Tessera" }
                    @if let Some(chrome) = chrome {
                        nav aria-label="Realms" {
                            @for realm in &chrome.realms {
                                a href=(realm_href(realm))
                                    aria-current=[(chrome.realm == Some(realm.as_str())).then_some("page")]
                                    { (realm) }
                            }
                        }
                        form.sign-out method="post" action="/sign-out"
                            title=(format!("Signed in until {}", utc(chrome.until))) {
                            input type="hidden" name="csrf" value=(chrome.csrf);
                            button.link type="submit" { "Sign out" }
                        }
                        form.sign-out method="post" action="/sign-out-everywhere"
                            title="End every dashboard session, on every device and node" {
                            input type="hidden" name="csrf" value=(chrome.csrf);
                            button.link type="submit" { "Sign out everywhere" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn csrf(chrome: &Chrome<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(chrome.csrf); }
}

fn flash(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.flash role="status" { (message) }
        }
    }
}

fn banner(fields: &Fields) -> Markup {
    html! {
        @if let Some(message) = &fields.banner {
            p.banner role="alert" { (message) }
        }
    }
}

/// A field's error, tied to its input by id for screen readers.
fn field_error(fields: &Fields, name: &str, id: &str) -> Markup {
    html! {
        @if let Some(message) = fields.error(name) {
            p.field-error id=(format!("{id}-error")) { (message) }
        }
    }
}

fn described_by(fields: &Fields, name: &str, id: &str) -> Option<String> {
    fields.error(name).map(|_| format!("{id}-error"))
}

fn text_field(
    fields: &Fields,
    prefix: &str,
    name: &str,
    label: &str,
    hint: Option<&str>,
) -> Markup {
    let id = format!("{prefix}-{name}");
    html! {
        div.field.invalid[fields.error(name).is_some()] {
            label for=(id) { (label) }
            @if let Some(hint) = hint { small.hint { (hint) } }
            input type="text" id=(id) name=(name) value=(fields.form.get(name))
                aria-invalid=[fields.error(name).map(|_| "true")]
                aria-describedby=[described_by(fields, name, &id)];
            (field_error(fields, name, &id))
        }
    }
}

/// The two limits of an application's quota, blank for none; an error of either (or
/// of the range the server checks) is the field `quota`'s.
fn quota_field(fields: &Fields, prefix: &str) -> Markup {
    let id = format!("{prefix}-quota");
    let invalid = fields.error("quota").map(|_| "true");
    let described = described_by(fields, "quota", &id);
    html! {
        fieldset.field.invalid[invalid.is_some()] id=(id) {
            legend { "Quota" }
            small.hint { "Tokens the application may be granted; blank for no limit. Tokens generated here do not count." }
            label for=(format!("{id}-per_minute")) { "Per minute" }
            input type="number" min="1" step="1" id=(format!("{id}-per_minute")) name="quota_per_minute"
                value=(fields.form.get("quota_per_minute"))
                aria-invalid=[invalid] aria-describedby=[described.clone()];
            label for=(format!("{id}-per_day")) { "Per day (UTC)" }
            input type="number" min="1" step="1" id=(format!("{id}-per_day")) name="quota_per_day"
                value=(fields.form.get("quota_per_day"))
                aria-invalid=[invalid] aria-describedby=[described];
            (field_error(fields, "quota", &id))
        }
    }
}

fn checkbox(fields: &Fields, prefix: &str, name: &str, label: &str) -> Markup {
    let id = format!("{prefix}-{name}");
    html! {
        div.field.check {
            input type="checkbox" id=(id) name=(name) value="on" checked[fields.form.has(name, "on")];
            label for=(id) { (label) }
            (field_error(fields, name, &id))
        }
    }
}

/// Lifetime presets as radio buttons, and `other` with a text field beside it.
fn lifetime_field(fields: &Fields, prefix: &str, name: &str, legend: &str) -> Markup {
    let chosen = fields.form.get(name);
    let other = format!("{name}_other");
    let id = format!("{prefix}-{name}");
    html! {
        fieldset.field.lifetime.invalid[fields.error(name).is_some()] data-lifetime {
            legend { (legend) }
            @for (secs, label) in LIFETIME_PRESETS {
                @let value = secs.to_string();
                label.preset {
                    input type="radio" name=(name) value=(value) checked[chosen == value];
                    span { (label) }
                }
            }
            label.preset {
                input type="radio" name=(name) value="other" checked[chosen == "other"];
                span { "Other:" }
                input type="text" id=(id) name=(other) value=(fields.form.get(&other))
                    placeholder="e.g. 45m, 2h, 7d" size="12" aria-label=(format!("{legend}, other"))
                    aria-describedby=[described_by(fields, name, &id)];
            }
            (field_error(fields, name, &id))
        }
    }
}

fn format_field(fields: &Fields, prefix: &str, realm: &RealmView) -> Markup {
    let id = format!("{prefix}-token_format");
    let chosen = fields.form.get("token_format");
    html! {
        div.field.invalid[fields.error("token_format").is_some()] {
            label for=(id) { "Token format" }
            select id=(id) name="token_format" {
                option value="" selected[chosen.is_empty()] {
                    "Realm default (" (realm.token_format) ")"
                }
                option value="jwt" selected[chosen == "jwt"] { "JWT (RFC 9068), checked anywhere with the JWKS" }
                option value="opaque" selected[chosen == "opaque"] { "Opaque, checked by introspection" }
            }
            (field_error(fields, "token_format", &id))
        }
    }
}

fn methods_field(fields: &Fields, prefix: &str) -> Markup {
    html! {
        fieldset.field.invalid[fields.error("auth_methods").is_some()] {
            legend { "How the application authenticates" }
            @for (method, label) in AUTH_METHODS {
                @let id = format!("{prefix}-method-{method}");
                div.check {
                    input type="checkbox" id=(id) name="auth_methods" value=(method)
                        checked[fields.form.has("auth_methods", method)];
                    label for=(id) { (label) }
                }
            }
            (field_error(fields, "auth_methods", &format!("{prefix}-auth_methods")))
        }
    }
}

fn public_key_field(fields: &Fields, prefix: &str) -> Markup {
    let id = format!("{prefix}-public_key");
    html! {
        div.field.invalid[fields.error("public_key").is_some()] {
            label for=(id) { "Public key (PEM)" }
            small.hint { "For signed credentials and private_key_jwt: RSA, P-256 or Ed25519." }
            textarea id=(id) name="public_key" rows="5" spellcheck="false"
                aria-describedby=[described_by(fields, "public_key", &id)] {
                (fields.form.get("public_key"))
            }
            (field_error(fields, "public_key", &id))
        }
    }
}

/// A value shown once, with a button that copies it.
fn secret_box(id: &str, label: &str, value: &str) -> Markup {
    html! {
        div.secret {
            label for=(id) { (label) }
            div.copy-row {
                input.mono type="text" id=(id) value=(value) readonly;
                button.copy type="button" data-copy=(id) { "Copy" }
            }
        }
    }
}

pub fn sign_in(token: &str, next: &str, fields: &Fields) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            section.card.narrow {
                h1 { "Sign in" }
                p { "Paste the admin key: " code { "TESSERA_ADMIN_KEY" } ", or the "
                    code { "admin.key" } " file in the data directory." }
                (banner(fields))
                form method="post" action="/sign-in" {
                    input type="hidden" name="csrf" value=(token);
                    input type="hidden" name="next" value=(next);
                    div.field.invalid[fields.error("admin_key").is_some()] {
                        label for="admin_key" { "Admin key" }
                        input type="password" id="admin_key" name="admin_key"
                            autocomplete="current-password" required autofocus
                            aria-describedby=[described_by(fields, "admin_key", "admin_key")];
                        (field_error(fields, "admin_key", "admin_key"))
                    }
                    button.primary type="submit" { "Sign in" }
                }
            }
        },
    )
}

pub fn realms(
    chrome: &Chrome<'_>,
    realms: &[RealmView],
    fields: &Fields,
    done: Option<&str>,
) -> Markup {
    layout(
        "Realms",
        Some(chrome),
        html! {
            h1 { "Realms" }
            (flash(done))
            p.lead { "Each realm is an issuer of its own, with its own applications and keys." }
            table {
                thead { tr { th { "Realm" } th { "Issuer" } th { "Tokens" } th { "Signing" } } }
                tbody {
                    @for realm in realms {
                        tr {
                            td { a href=(realm_href(&realm.name)) { (realm.name) } }
                            td.mono { (realm.issuer) }
                            td { (realm.token_format) }
                            td { (realm.signing_alg) }
                        }
                    }
                }
            }
            section.card {
                h2 { "New realm" }
                (banner(fields))
                form method="post" action="/realms" {
                    (csrf(chrome))
                    (text_field(fields, "realm", "name", "Name", Some("Lower-case letters, digits and dashes.")))
                    button.primary type="submit" { "Create realm" }
                }
            }
        },
    )
}

pub struct AppList<'a> {
    pub realm: &'a RealmView,
    pub apps: &'a [ApplicationView],
    pub search: &'a str,
    pub search_error: Option<&'a str>,
    pub next: Option<String>,
    pub done: Option<&'a str>,
}

pub fn applications(chrome: &Chrome<'_>, list: &AppList<'_>) -> Markup {
    let realm = &list.realm.name;
    layout(
        realm,
        Some(chrome),
        html! {
            div.title-row {
                h1 { "Applications " small { "in " (realm) } }
                a.button.primary href=(format!("{}/new", realm_href(realm))) { "New application" }
            }
            (flash(list.done))
            p.lead { "Token endpoint: " code { (list.realm.issuer) "/oauth2/token" } }
            form.search method="get" action=(realm_href(realm)) role="search" {
                label for="q" { "Search" }
                input type="search" id="q" name="q" value=(list.search)
                    placeholder="Name or client_id"
                    aria-describedby=[list.search_error.map(|_| "q-error")];
                button type="submit" { "Search" }
                @if let Some(error) = list.search_error { p.field-error id="q-error" { (error) } }
            }
            @if list.apps.is_empty() {
                p.empty { @if list.search.is_empty() { "No applications yet." } @else { "No application matches." } }
            } @else {
                table {
                    thead { tr { th { "Name" } th { "client_id" } th { "Lifetime" } th { "Format" } th { "Status" } } }
                    tbody {
                        @for app in list.apps {
                            tr {
                                td { a href=(app_href(realm, &app.client_id)) { (app.name) } }
                                td.mono { (app.client_id) }
                                td { (human_duration(app.token_ttl)) }
                                td { (app.token_format.as_deref().unwrap_or(&list.realm.token_format)) }
                                td { @if app.enabled { "enabled" } @else { span.off { "disabled" } } }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = &list.next {
                p { a.button rel="next" href=(next) { "Next page" } }
            }
        },
    )
}

pub fn new_application(chrome: &Chrome<'_>, realm: &RealmView, fields: &Fields) -> Markup {
    let action = format!("{}/new", realm_href(&realm.name));
    layout(
        "New application",
        Some(chrome),
        html! {
            h1 { "New application " small { "in " (realm.name) } }
            section.card {
                (banner(fields))
                form method="post" action=(action) {
                    (csrf(chrome))
                    (text_field(fields, "new", "name", "Name", None))
                    (text_field(fields, "new", "scopes", "Scopes", Some("Separated by spaces, e.g. read write.")))
                    (checkbox(fields, "new", "scope_required", "A token request must name its scopes"))
                    (lifetime_field(fields, "new", "token_ttl", "Token lifetime"))
                    (format_field(fields, "new", realm))
                    (methods_field(fields, "new"))
                    (public_key_field(fields, "new"))
                    (text_field(fields, "new", "audiences", "Audiences", Some("Optional; the aud claim of its tokens.")))
                    (quota_field(fields, "new"))
                    (text_field(fields, "new", "client_id", "client_id", Some("Optional; generated when blank.")))
                    div.actions {
                        button.primary type="submit" { "Create application" }
                        a href=(realm_href(&realm.name)) { "Cancel" }
                    }
                }
            }
        },
    )
}

pub fn created(chrome: &Chrome<'_>, realm: &str, created: &ApplicationWithSecret) -> Markup {
    let app = &created.application;
    layout(
        "Application created",
        Some(chrome),
        html! {
            h1 { "Application created: " (app.name) }
            section.card.once {
                p.warn { "Copy the secret now: it is shown only this once." }
                (secret_box("client_id", "client_id", &app.client_id))
                (secret_box("client_secret", "client_secret", &created.client_secret))
                p { a.button.primary href=(app_href(realm, &app.client_id)) { "Go to the application" } }
            }
        },
    )
}

pub struct AppPage<'a> {
    pub realm: &'a RealmView,
    pub app: &'a ApplicationView,
    pub usage: &'a [UsageHour],
    pub settings: &'a Fields,
    pub token: &'a Fields,
    pub secret: &'a Fields,
    pub done: Option<&'a str>,
}

pub fn application(chrome: &Chrome<'_>, page: &AppPage<'_>) -> Markup {
    let app = page.app;
    let href = app_href(&page.realm.name, &app.client_id);
    layout(
        &app.name,
        Some(chrome),
        html! {
            div.title-row {
                h1 { (app.name) @if !app.enabled { " " span.off { "disabled" } } }
            }
            (flash(page.done))
            dl.facts {
                dt { "client_id" } dd.mono { (app.client_id) }
                dt { "Realm" } dd { a href=(realm_href(&page.realm.name)) { (page.realm.name) } }
                dt { "Token endpoint" } dd.mono { (page.realm.issuer) "/oauth2/token" }
                dt { "Scopes" } dd { @if app.scopes.is_empty() { "none" } @else { (app.scopes.join(" ")) } }
                dt { "Token lifetime" } dd { (human_duration(app.token_ttl)) }
                dt { "Quota" } dd { (quota_text(app.quota.as_ref())) }
                dt { "Created" } dd { (utc(app.created_at)) }
            }
            section.card {
                h2 { "Tokens issued per hour" }
                (usage_chart(page.usage))
            }
            div.columns {
                section.card {
                    h2 { "Generate a token" }
                    (banner(page.token))
                    form method="post" action=(format!("{href}/token")) {
                        (csrf(chrome))
                        (lifetime_field(page.token, "token", "ttl", "Expires after"))
                        (text_field(page.token, "token", "scopes", "Scopes", Some("Blank for the application's default.")))
                        button.primary type="submit" { "Generate token" }
                    }
                }
                section.card {
                    h2 { "Secret" }
                    (banner(page.secret))
                    form method="post" action=(format!("{href}/secret")) {
                        (csrf(chrome))
                        @let grace = page.secret.form.get("grace_period");
                        div.field.invalid[page.secret.error("grace_period").is_some()] {
                            label for="secret-grace_period" { "The current secret" }
                            select id="secret-grace_period" name="grace_period" {
                                option value="0" selected[grace.is_empty() || grace == "0"] { "stops working at once" }
                                option value="3600" selected[grace == "3600"] { "keeps working 1 hour" }
                                option value="86400" selected[grace == "86400"] { "keeps working 1 day" }
                                option value="604800" selected[grace == "604800"] { "keeps working 7 days" }
                            }
                            (field_error(page.secret, "grace_period", "secret-grace_period"))
                        }
                        button type="submit" { "Rotate secret" }
                    }
                    h2 { "Tokens" }
                    form method="post" action=(format!("{href}/revoke"))
                        data-confirm="Revoke every token issued so far to this application?" {
                        (csrf(chrome))
                        p.hint { "Every token issued until now stops working; new ones can be had at once." }
                        button.danger type="submit" { "Revoke all tokens" }
                    }
                }
            }
            section.card {
                h2 { "Settings" }
                (banner(page.settings))
                form method="post" action=(href) {
                    (csrf(chrome))
                    (text_field(page.settings, "edit", "name", "Name", None))
                    (checkbox(page.settings, "edit", "enabled", "Enabled: it may get tokens"))
                    (text_field(page.settings, "edit", "scopes", "Scopes", Some("Separated by spaces.")))
                    (checkbox(page.settings, "edit", "scope_required", "A token request must name its scopes"))
                    (lifetime_field(page.settings, "edit", "token_ttl", "Token lifetime"))
                    (format_field(page.settings, "edit", page.realm))
                    (methods_field(page.settings, "edit"))
                    (public_key_field(page.settings, "edit"))
                    (text_field(page.settings, "edit", "audiences", "Audiences", None))
                    (quota_field(page.settings, "edit"))
                    button.primary type="submit" { "Save settings" }
                }
            }
            section.card.danger-zone {
                h2 { "Delete" }
                form method="post" action=(format!("{href}/delete"))
                    data-confirm=(format!("Delete {}? Its tokens stop working and it cannot be undone.", app.name)) {
                    (csrf(chrome))
                    input type="hidden" name="confirm" value="" data-confirmed="yes";
                    button.danger type="submit" { "Delete application…" }
                }
            }
        },
    )
}

/// "100 per minute, 10000 per day", or "no limit".
fn quota_text(quota: Option<&QuotaView>) -> String {
    let parts: Vec<String> = quota
        .map(|q| {
            [(q.per_minute, "minute"), (q.per_day, "day")]
                .into_iter()
                .filter_map(|(n, per)| n.map(|n| format!("{n} per {per}")))
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        "no limit".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Bars of tokens per hour, oldest left, as inline SVG: no script, no image request.
fn usage_chart(hours: &[UsageHour]) -> Markup {
    const HEIGHT: f64 = 120.0;
    const BAR: f64 = 20.0;
    const LEFT: f64 = 40.0;
    let max = hours.iter().map(|h| h.tokens).max().unwrap_or(0);
    let total: u64 = hours.iter().map(|h| h.tokens).sum();
    let width = LEFT + BAR * hours.len() as f64 + 10.0;
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {width} 160")) role="img"
                aria-label=(format!("{total} tokens issued in the last {} hours", hours.len())) {
                line x1=(LEFT) y1="130" x2=(width - 10.0) y2="130" class="axis" {}
                text x=(LEFT - 6.0) y="14" text-anchor="end" class="label" { (max) }
                text x=(LEFT - 6.0) y="130" text-anchor="end" class="label" { "0" }
                @for (i, hour) in hours.iter().enumerate() {
                    @let height = if max == 0 { 0.0 } else { HEIGHT * hour.tokens as f64 / max as f64 };
                    @let x = LEFT + BAR * i as f64 + 2.0;
                    rect x=(x) y=(130.0 - height) width=(BAR - 4.0) height=(height) class="bar" {
                        title { (utc(hour.start)) ": " (hour.tokens) " tokens" }
                    }
                    @if i % 6 == 0 {
                        text x=(x) y="148" class="label" { (utc(hour.start).get(11..16).unwrap_or_default()) }
                    }
                }
            }
            figcaption { (total) " tokens in the last " (hours.len()) " hours (hours in UTC)." }
        }
    }
}

pub fn token(
    chrome: &Chrome<'_>,
    realm: &str,
    app: &ApplicationView,
    token: &IssuedToken,
) -> Markup {
    layout(
        "Token",
        Some(chrome),
        html! {
            h1 { "A token for " (app.name) }
            section.card.once {
                p.warn { "Copy the token now: it is not kept and cannot be shown again." }
                div.secret {
                    label for="access_token" { "access_token" }
                    textarea.mono id="access_token" rows="4" readonly { (token.access_token) }
                    button.copy type="button" data-copy="access_token" { "Copy" }
                }
                dl.facts {
                    dt { "Expires" } dd { (utc(token.expires_at)) " (in " (human_duration(token.expires_in)) ")" }
                    dt { "Scope" } dd { @if token.scope.is_empty() { "none" } @else { (token.scope) } }
                    dt { "Type" } dd { (token.token_type) }
                }
                p { a.button href=(app_href(realm, &app.client_id)) { "Back to the application" } }
            }
        },
    )
}

pub fn secret(
    chrome: &Chrome<'_>,
    realm: &str,
    app: &ApplicationView,
    rotated: &SecretRotated,
) -> Markup {
    layout(
        "New secret",
        Some(chrome),
        html! {
            h1 { "A new secret for " (app.name) }
            section.card.once {
                p.warn { "Copy the secret now: it is shown only this once." }
                (secret_box("client_secret", "client_secret", &rotated.client_secret))
                p {
                    @match rotated.previous_secret_expires_at {
                        Some(at) => { "The previous secret keeps working until " (utc(at)) "." }
                        None => { "The previous secret no longer works." }
                    }
                }
                p { a.button href=(app_href(realm, &app.client_id)) { "Back to the application" } }
            }
        },
    )
}

pub fn confirm_delete(chrome: &Chrome<'_>, realm: &str, app: &ApplicationView) -> Markup {
    let href = app_href(realm, &app.client_id);
    layout(
        "Delete application",
        Some(chrome),
        html! {
            section.card.narrow.danger-zone {
                h1 { "Delete " (app.name) "?" }
                p { "Its secret and every token issued to it stop working. This cannot be undone." }
                form method="post" action=(format!("{href}/delete")) {
                    (csrf(chrome))
                    input type="hidden" name="confirm" value="yes";
                    div.actions {
                        button.danger type="submit" { "Delete application" }
                        a href=(href) { "Cancel" }
                    }
                }
            }
        },
    )
}

/// A page for what went wrong outside any form: unknown realm, expired form, store down.
pub fn problem(chrome: Option<&Chrome<'_>>, title: &str, message: &str) -> Markup {
    layout(
        title,
        chrome,
        html! {
            section.card.narrow {
                h1 { (title) }
                p { (message) }
                p { a.button href="/" { "Back to the realms" } }
            }
        },
    )
}
