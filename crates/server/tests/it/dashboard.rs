//! The dashboard over plain HTTP, as a browser without JavaScript would use it: sessions,
//! form tokens, every form's bad input, and that what it does is what the API sees.
//! (`tests/dashboard` drives the same pages in headless Chromium.)

use reqwest::Method;
use reqwest::header;
use serde_json::{Value, json};

use crate::harness::{ADMIN_KEY, FORM, Reply, TestServer, app, form_body};

/// A person at a browser: the session cookie, once signed in.
struct Person<'s> {
    server: &'s TestServer,
    cookie: String,
}

fn set_cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `name=value` part of the `Set-Cookie` of cookie `name`.
fn cookie_pair(reply: &Reply, name: &str) -> String {
    set_cookies(reply)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {reply:?}"))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// The value of the first hidden form token on a page.
fn csrf_of(page: &str) -> String {
    let start = page.find(r#"name="csrf" value=""#).expect("a form token") + 19;
    let len = page[start..].find('"').unwrap();
    page[start..start + len].to_owned()
}

impl TestServer {
    async fn dashboard(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let mut request = self.http.request(method, self.admin_url(path));
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        if let Some(body) = body {
            request = request.header(header::CONTENT_TYPE, FORM).body(body);
        }
        self.send(request).await
    }

    async fn sign_in(&self) -> Person<'_> {
        let page = self.dashboard(Method::GET, "/sign-in", None, None).await;
        page.expect_status(200);
        let pre = cookie_pair(&page, "tessera_sign_in");
        let body = form_body(&[
            ("csrf", &csrf_of(&page.text())),
            ("admin_key", ADMIN_KEY),
            ("next", "/"),
        ]);
        let reply = self
            .dashboard(Method::POST, "/sign-in", Some(&pre), Some(body))
            .await;
        reply.expect_status(303);
        Person {
            server: self,
            cookie: cookie_pair(&reply, "tessera_session"),
        }
    }
}

impl Person<'_> {
    async fn get(&self, path: &str) -> Reply {
        self.server
            .dashboard(Method::GET, path, Some(&self.cookie), None)
            .await
    }

    /// Submits a form the way the page at `page` offers it: with that page's token.
    async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Reply {
        let csrf = csrf_of(&self.get(page).await.text());
        let mut pairs = vec![("csrf", csrf.as_str())];
        pairs.extend_from_slice(fields);
        self.server
            .dashboard(
                Method::POST,
                action,
                Some(&self.cookie),
                Some(form_body(&pairs)),
            )
            .await
    }
}

fn location(reply: &Reply) -> &str {
    reply.header("location").expect("a redirect")
}

#[tokio::test]
async fn signing_in_takes_the_admin_key_and_sets_a_strict_http_only_cookie() {
    let server = TestServer::start().await;
    let home = server.dashboard(Method::GET, "/", None, None).await;
    home.expect_status(303);
    assert_eq!(location(&home), "/sign-in?next=%2F");
    let deep = server
        .dashboard(Method::GET, "/realms/default/new", None, None)
        .await;
    assert_eq!(location(&deep), "/sign-in?next=%2Frealms%2Fdefault%2Fnew");

    let page = server.dashboard(Method::GET, "/sign-in", None, None).await;
    page.expect_status(200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let pre_cookie = set_cookies(&page).join("\n");
    assert!(pre_cookie.contains("HttpOnly") && pre_cookie.contains("SameSite=Strict"));
    assert!(!pre_cookie.contains("Secure"));
    let pre = cookie_pair(&page, "tessera_sign_in");
    let csrf = csrf_of(&page.text());

    // Without the sign-in form's own cookie and token: refused, with a fresh form.
    let body = form_body(&[("csrf", &csrf), ("admin_key", ADMIN_KEY)]);
    let reply = server
        .dashboard(Method::POST, "/sign-in", None, Some(body))
        .await;
    reply.expect_status(403);
    assert!(reply.text().contains("sign in again"));

    let wrong = form_body(&[("csrf", &csrf), ("admin_key", "not-it")]);
    let reply = server
        .dashboard(Method::POST, "/sign-in", Some(&pre), Some(wrong))
        .await;
    reply.expect_status(401);
    assert!(reply.text().contains(r#"id="admin_key-error""#));
    assert!(
        !reply.text().contains("not-it"),
        "the key typed is not echoed"
    );

    // The right key: to `next` when it is a path of ours, else home. Browsers drop
    // tabs and newlines from a Location and read `\` as `/`, so each of these would
    // lead to another site, or (control characters) could not be a header at all.
    for (next, to) in [
        ("/realms/default", "/realms/default"),
        (
            "/realms/default/apps/x?q=a%20b",
            "/realms/default/apps/x?q=a%20b",
        ),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("\t//evil.example", "/"),
        (" //evil.example", "/"),
        ("/\\evil.example", "/"),
        ("\\/evil.example", "/"),
        ("/\r\n/evil.example", "/"),
        ("/x\ny", "/"),
        ("/x\r\nSet-Cookie: a=b", "/"),
        ("/x\u{7f}", "/"),
        ("/x\u{0}", "/"),
        ("/caf\u{e9}", "/"),
        ("", "/"),
    ] {
        let body = form_body(&[("csrf", &csrf), ("admin_key", ADMIN_KEY), ("next", next)]);
        let reply = server
            .dashboard(Method::POST, "/sign-in", Some(&pre), Some(body))
            .await;
        reply.expect_status(303);
        assert_eq!(location(&reply), to);
        let cookies = set_cookies(&reply).join("\n");
        assert!(cookies.contains("tessera_session="), "{cookies}");
        assert!(cookies.contains("; HttpOnly; SameSite=Strict"));
        assert!(cookies.contains("Max-Age=28800"));
    }

    // Behind a TLS-terminating proxy the cookies are Secure.
    let page = server
        .send(
            server
                .http
                .get(server.admin_url("/sign-in"))
                .header("x-forwarded-proto", "https"),
        )
        .await;
    assert!(set_cookies(&page).join("\n").contains("; Secure"));

    let person = server.sign_in().await;
    let home = person.get("/").await;
    home.expect_status(200);
    assert!(home.text().contains(r#"href="/realms/default""#));
    let sign_out = person.submit("/", "/sign-out", &[]).await;
    sign_out.expect_status(303);
    assert!(
        set_cookies(&sign_out)
            .join("\n")
            .contains("tessera_session=; Path=/; Max-Age=0")
    );

    // Signing out ended the session: a copy of the old cookie is no session either.
    let home = person.get("/").await;
    home.expect_status(303);
    assert_eq!(location(&home), "/sign-in?next=%2F");

    // A forged or stale cookie is no session.
    let reply = server
        .dashboard(
            Method::GET,
            "/",
            Some("tessera_session=abc.99999999999.AAAA"),
            None,
        )
        .await;
    reply.expect_status(303);
}

/// The `next` of the sign-in page itself, as the query carries it: percent-encoded
/// control characters, tabs and backslashes never reach a `Location` (and never give a
/// 500), and a redirect to sign in keeps a path that is ours.
#[tokio::test]
async fn the_sign_in_page_keeps_only_a_plain_local_next() {
    let server = TestServer::start().await;
    for (query, kept) in [
        ("next=%2Frealms%2Fdefault", Some("/realms/default")),
        ("next=%2F%09%2Fevil.example", None),
        ("next=/%09/evil.example", None),
        ("next=%0A", None),
        ("next=%0D%0A", None),
        ("next=%7F", None),
        ("next=/%0D%0ALocation:%20https://evil.example", None),
        ("next=%5C%5Cevil.example", None),
        ("next=%E2%80%AE", None),
    ] {
        let page = server
            .dashboard(Method::GET, &format!("/sign-in?{query}"), None, None)
            .await;
        page.expect_status(200);
        let form = page.text();
        let hidden = r#"name="next" value=""#;
        let start = form.find(hidden).expect("a next field") + hidden.len();
        let value = &form[start..start + form[start..].find('"').unwrap()];
        assert_eq!(value, kept.unwrap_or("/"), "{query}");
        // Signing in from that form goes there, never elsewhere, never a 500.
        let pre = cookie_pair(&page, "tessera_sign_in");
        let body = form_body(&[
            ("csrf", &csrf_of(&form)),
            ("admin_key", ADMIN_KEY),
            ("next", &percent_decoded(query.trim_start_matches("next="))),
        ]);
        let reply = server
            .dashboard(Method::POST, "/sign-in", Some(&pre), Some(body))
            .await;
        reply.expect_status(303);
        assert_eq!(location(&reply), kept.unwrap_or("/"), "{query}");
    }
}

fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Signing out ends the session on the server, not only in the browser; "sign out
/// everywhere" ends every session begun so far, and a new sign-in works again.
#[tokio::test]
async fn signing_out_ends_the_session_and_everywhere_ends_them_all() {
    let server = TestServer::start().await;
    let first = server.sign_in().await;
    let second = server.sign_in().await;
    let third = server.sign_in().await;
    first.submit("/", "/sign-out", &[]).await.expect_status(303);
    first.get("/").await.expect_status(303);
    second.get("/").await.expect_status(200);
    third.get("/").await.expect_status(200);

    let page = second.get("/").await.text();
    assert!(page.contains(r#"action="/sign-out-everywhere""#));
    let everywhere = second.submit("/", "/sign-out-everywhere", &[]).await;
    everywhere.expect_status(303);
    assert_eq!(location(&everywhere), "/sign-in");
    assert!(
        set_cookies(&everywhere)
            .join("\n")
            .contains("tessera_session=; Path=/; Max-Age=0")
    );
    for person in [&first, &second, &third] {
        person.get("/").await.expect_status(303);
    }
    let fresh = server.sign_in().await;
    fresh.get("/").await.expect_status(200);
}

#[tokio::test]
async fn pages_are_not_cached_framed_or_scripted_from_elsewhere() {
    let server = TestServer::start().await;
    let person = server.sign_in().await;
    for path in ["/", "/realms/default", "/realms/default/new", "/sign-in"] {
        let reply = person.get(path).await;
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        let csp = reply.header("content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    }
    for asset in ["/assets/dashboard.css", "/assets/dashboard.js"] {
        server
            .dashboard(Method::GET, asset, None, None)
            .await
            .expect_status(200);
    }
}

#[tokio::test]
async fn every_form_wants_the_token_of_the_session() {
    let server = TestServer::start().await;
    let (id, _) = server.simple_app("default").await;
    let person = server.sign_in().await;
    let other = server.sign_in().await;
    let other_token = csrf_of(&other.get("/").await.text());
    let app_path = format!("/realms/default/apps/{id}");
    let actions = [
        "/realms".to_owned(),
        "/realms/default/new".to_owned(),
        app_path.clone(),
        format!("{app_path}/token"),
        format!("{app_path}/secret"),
        format!("{app_path}/revoke"),
        format!("{app_path}/delete"),
        "/sign-out".to_owned(),
        "/sign-out-everywhere".to_owned(),
    ];
    for action in &actions {
        for csrf in ["", "guess", other_token.as_str()] {
            let body = form_body(&[
                ("csrf", csrf),
                ("name", "forged"),
                ("confirm", "yes"),
                ("grace_period", "0"),
            ]);
            let reply = server
                .dashboard(Method::POST, action, Some(&person.cookie), Some(body))
                .await;
            assert_eq!(reply.status, 403, "{action} with csrf {csrf:?}");
            assert!(reply.text().contains("This form has expired"));
        }
        // No session at all: to the sign-in page, nothing done.
        let reply = server
            .dashboard(
                Method::POST,
                action,
                None,
                Some(form_body(&[("name", "x")])),
            )
            .await;
        reply.expect_status(303);
    }
    server
        .admin(Method::GET, &app("default", &id), None)
        .await
        .expect_status(200);
    let realms = server.admin(Method::GET, "/admin/v1/realms", None).await;
    assert!(!realms.text().contains("forged"));
}

#[tokio::test]
async fn bad_input_gets_a_page_with_the_error_beside_its_field_never_a_500() {
    let server = TestServer::start().await;
    server
        .create_app("default", json!({"name": "taken", "client_id": "taken-id"}))
        .await;
    let person = server.sign_in().await;
    let new = "/realms/default/new";
    // The fields sent, the status, and the id of the error shown beside its field.
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
    let cases: [Case; 7] = [
        (&[("name", "")], 400, "new-name-error"),
        (
            &[
                ("name", "a"),
                (
                    "public_key",
                    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
                ),
            ],
            400,
            "new-public_key-error",
        ),
        (
            &[
                ("name", "a"),
                ("token_ttl", "other"),
                ("token_ttl_other", "soon"),
            ],
            400,
            "new-token_ttl-error",
        ),
        (
            &[
                ("name", "a"),
                ("token_ttl", "other"),
                ("token_ttl_other", "400d"),
            ],
            400,
            "new-token_ttl-error",
        ),
        (
            &[("name", "a"), ("token_ttl", "0")],
            400,
            "new-token_ttl-error",
        ),
        (
            &[("name", "a"), ("client_id", "taken-id")],
            409,
            "new-client_id-error",
        ),
        (
            &[("name", "a"), ("scopes", "bad\"scope")],
            400,
            "new-scopes-error",
        ),
    ];
    for (fields, status, error_id) in cases {
        let reply = person.submit(new, new, fields).await;
        assert_eq!(reply.status, status, "{fields:?}: {}", reply.text());
        let page = reply.text();
        assert!(
            page.contains(&format!(r#"id="{error_id}""#)),
            "{fields:?}: {page}"
        );
        assert!(page.contains("<form"), "the form is shown again");
    }
    let reply = person
        .submit(new, new, &[("name", "a"), ("auth_methods", "telepathy")])
        .await;
    reply.expect_status(400);
    assert!(reply.text().contains("telepathy") || reply.text().contains("auth_methods"));

    // Unknown realms and applications: a page that says so.
    for path in [
        "/realms/nope",
        "/realms/nope/new",
        "/realms/default/apps/nope",
        "/realms/default/apps/nope/delete",
    ] {
        let reply = person.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert!(reply.text().contains("There is no"), "{path}");
    }
    let reply = person
        .submit("/", "/realms/default/apps/nope/token", &[("ttl", "900")])
        .await;
    reply.expect_status(404);

    // A search too long, an oversized form, a form that does not decode.
    let long = "q".repeat(201);
    let reply = person.get(&format!("/realms/default?q={long}")).await;
    reply.expect_status(400);
    assert!(reply.text().contains(r#"id="q-error""#));
    let csrf = csrf_of(&person.get("/").await.text());
    let huge = form_body(&[("csrf", &csrf), ("name", &"x".repeat(2 << 20))]);
    let reply = server
        .dashboard(Method::POST, new, Some(&person.cookie), Some(huge))
        .await;
    reply.expect_status(413);
    assert!(reply.text().contains("too much"));
    let reply = server
        .dashboard(
            Method::POST,
            new,
            Some(&person.cookie),
            Some("%%%=%".to_owned()),
        )
        .await;
    assert!(
        reply.status == 400 || reply.status == 403,
        "{}",
        reply.status
    );
}

#[tokio::test]
async fn what_the_dashboard_does_the_api_sees_and_the_audit_log_names_the_session() {
    let server = TestServer::start().await;
    let person = server.sign_in().await;
    let new = "/realms/default/new";
    let reply = person
        .submit(
            new,
            new,
            &[
                ("name", "Reports"),
                ("scopes", "read, write"),
                ("token_ttl", "other"),
                ("token_ttl_other", "45m"),
                ("auth_methods", "client_secret_basic"),
                ("audiences", "https://api.example"),
            ],
        )
        .await;
    reply.expect_status(201);
    let page = reply.text();
    let value_of = |id: &str| {
        let marker = format!(r#"id="{id}" value=""#);
        let at = page.find(&marker).unwrap() + marker.len();
        page[at..at + page[at..].find('"').unwrap()].to_owned()
    };
    let (id, secret) = (value_of("client_id"), value_of("client_secret"));
    let view = server
        .admin(Method::GET, &app("default", &id), None)
        .await
        .json();
    assert_eq!(view["name"], "Reports");
    assert_eq!(view["token_ttl"], 2700);
    assert_eq!(view["scopes"], json!(["read", "write"]));
    assert_eq!(view["auth_methods"], json!(["client_secret_basic"]));
    assert_eq!(view["audiences"], json!(["https://api.example"]));
    let token = server.fetch_token("", &id, &secret).await;

    let app_page = format!("/realms/default/apps/{id}");
    let reply = person
        .submit(
            &app_page,
            &format!("{app_page}/token"),
            &[("ttl", "900"), ("scopes", "read")],
        )
        .await;
    reply.expect_status(201);
    let page = reply.text();
    let at = page.find(r#"id="access_token""#).unwrap();
    let start = at + page[at..].find('>').unwrap() + 1;
    let issued = &page[start..start + page[start..].find('<').unwrap()];
    let claims = server.assert_alive("", &id, &secret, issued).await;
    assert_eq!(claims["scope"], "read");

    let reply = person
        .submit(
            &app_page,
            &app_page,
            &[
                ("name", "Reports 2"),
                ("token_ttl", "3600"),
                ("enabled", "on"),
                ("auth_methods", "client_secret_basic"),
            ],
        )
        .await;
    reply.expect_status(303);
    assert_eq!(location(&reply), format!("{app_page}?done=saved"));
    let view = server
        .admin(Method::GET, &app("default", &id), None)
        .await
        .json();
    assert_eq!(view["name"], "Reports 2");
    assert_eq!(view["token_ttl"], 3600);
    assert_eq!(view["scopes"], json!([]));

    let reply = person
        .submit(&app_page, &format!("{app_page}/revoke"), &[])
        .await;
    assert_eq!(location(&reply), format!("{app_page}?done=revoked"));
    server.assert_dead("", &id, &secret, &token).await;

    // Unconfirmed, delete shows the confirmation page; confirmed, it deletes.
    let reply = person
        .submit(&app_page, &format!("{app_page}/delete"), &[("confirm", "")])
        .await;
    reply.expect_status(200);
    assert!(reply.text().contains("Delete Reports 2?"));
    server
        .admin(Method::GET, &app("default", &id), None)
        .await
        .expect_status(200);
    let reply = person
        .submit(
            &app_page,
            &format!("{app_page}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(location(&reply), "/realms/default?done=deleted");
    server
        .admin(Method::GET, &app("default", &id), None)
        .await
        .expect_admin_error(404, "not_found");

    let audit = server
        .admin(
            Method::GET,
            &format!("/admin/v1/audit?client_id={id}"),
            None,
        )
        .await
        .json();
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 5, "{audit}");
    let actor = entries[0]["actor"].as_str().unwrap();
    assert!(
        actor.starts_with("dashboard:") && actor.len() > 12,
        "{actor}"
    );
    assert!(entries.iter().all(|e| e["actor"] == actor));
    let text = audit.to_string();
    assert!(!text.contains(&secret) && !text.contains(issued));
    assert!(
        !text.contains(
            person
                .cookie
                .split('=')
                .nth(1)
                .unwrap()
                .split('.')
                .next()
                .unwrap()
        )
    );
}

#[tokio::test]
async fn random_forms_never_get_a_500() {
    let server = TestServer::start().await;
    let (id, _) = server.simple_app("default").await;
    let person = server.sign_in().await;
    let csrf = csrf_of(&person.get("/").await.text());
    let app_page = format!("/realms/default/apps/{id}");
    let actions = [
        "/realms".to_owned(),
        "/realms/default/new".to_owned(),
        app_page.clone(),
        format!("{app_page}/token"),
        format!("{app_page}/secret"),
    ];
    let names = [
        "name",
        "scopes",
        "token_ttl",
        "token_ttl_other",
        "ttl",
        "ttl_other",
        "token_format",
        "auth_methods",
        "public_key",
        "audiences",
        "client_id",
        "grace_period",
        "enabled",
    ];
    let values = [
        "",
        "0",
        "-1",
        "other",
        "18446744073709551616",
        "jwt",
        "opaque",
        "x\u{0}y",
        "%",
        "ä",
        "1w",
        "99999999999w",
        "client_secret_post",
        "-----BEGIN PUBLIC KEY-----",
    ];
    let mut seed: u64 = 0x5eed;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for round in 0..120 {
        let action = &actions[round % actions.len()];
        let mut pairs = vec![("csrf", csrf.as_str())];
        for _ in 0..next(6) {
            pairs.push((names[next(names.len())], values[next(values.len())]));
        }
        let reply = server
            .dashboard(
                Method::POST,
                action,
                Some(&person.cookie),
                Some(form_body(&pairs)),
            )
            .await;
        assert!(reply.status < 500, "{action} {pairs:?}: {}", reply.status);
        assert!(
            reply.status == 303 || !reply.body.is_empty(),
            "never a blank page"
        );
    }
}

#[tokio::test]
async fn the_quota_fields_set_change_and_clear_the_quota() {
    let server = TestServer::start().await;
    let person = server.sign_in().await;
    let new = "/realms/default/new";
    for bad in ["0", "ten", "-3", "1000000001"] {
        let reply = person
            .submit(new, new, &[("name", "a"), ("quota_per_minute", bad)])
            .await;
        reply.expect_status(400);
        assert!(
            reply.text().contains(r#"id="new-quota-error""#),
            "{bad}: {}",
            reply.text()
        );
    }
    let reply = person
        .submit(
            new,
            new,
            &[
                ("name", "Metered"),
                ("quota_per_minute", "5"),
                ("quota_per_day", ""),
                ("auth_methods", "client_secret_basic"),
            ],
        )
        .await;
    reply.expect_status(201);
    let page = reply.text();
    let marker = r#"id="client_id" value=""#;
    let at = page.find(marker).unwrap() + marker.len();
    let id = page[at..at + page[at..].find('"').unwrap()].to_owned();
    let quota_of = |view: Value| view["quota"].clone();
    let view = server.admin(Method::GET, &app("default", &id), None).await;
    assert_eq!(quota_of(view.json()), json!({"per_minute": 5}));

    let app_page = format!("/realms/default/apps/{id}");
    let page = person.get(&app_page).await.text();
    assert!(page.contains("5 per minute"), "{page}");
    assert!(
        page.contains(r#"id="edit-quota-per_minute" name="quota_per_minute" value="5""#),
        "{page}"
    );
    let settings = |per_minute: &'static str, per_day: &'static str| {
        [
            ("name", "Metered"),
            ("enabled", "on"),
            ("auth_methods", "client_secret_basic"),
            ("quota_per_minute", per_minute),
            ("quota_per_day", per_day),
        ]
    };
    let reply = person
        .submit(&app_page, &app_page, &settings("", "100"))
        .await;
    reply.expect_status(303);
    let view = server.admin(Method::GET, &app("default", &id), None).await;
    assert_eq!(quota_of(view.json()), json!({"per_day": 100}));
    let reply = person
        .submit(&app_page, &app_page, &settings("0", "100"))
        .await;
    reply.expect_status(400);
    assert!(reply.text().contains(r#"id="edit-quota-error""#));
    let reply = person.submit(&app_page, &app_page, &settings("", "")).await;
    reply.expect_status(303);
    let view = server.admin(Method::GET, &app("default", &id), None).await;
    assert_eq!(quota_of(view.json()), Value::Null);
}
