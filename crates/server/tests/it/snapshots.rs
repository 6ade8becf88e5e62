//! What the server puts on the wire, as snapshots: the discovery documents, the shape
//! of the JWKS, every error the public endpoints answer with, the admin API's error
//! body and the metrics' names. A change to any of them shows in review as a change to this file; after a
//! deliberate one, `UPDATE_EXPECT=1 cargo test -p tessera-server --test it snapshots`
//! writes the new answers in.
//!
//! What differs between runs or stores is masked: the listeners' addresses, key ids
//! and key material, and the seconds of a `Retry-After`.

use expect_test::{Expect, expect};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{FORM, JSON, Reply, TestServer, basic};

/// The answer as a client sees it: status, headers (sorted; not `date` and
/// `content-length`, which say nothing of the contract) and body, masked.
fn wire(server: &TestServer, reply: &Reply) -> String {
    let mut headers: Vec<(String, String)> = reply
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "content-length"))
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            let value = if name == "retry-after" {
                "<seconds>".to_owned()
            } else {
                value
            };
            (name.as_str().to_owned(), value)
        })
        .collect();
    headers.sort();
    let mut out = format!("{}\n", reply.status);
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\n"));
    }
    let mut body = reply
        .text()
        .replace(&server.base, "http://<public>")
        .replace(&server.admin_base, "http://<admin>");
    if let Some(seconds) = reply.header("retry-after") {
        body = body.replace(
            &format!("retry after {seconds} s"),
            "retry after <seconds> s",
        );
    }
    out.push('\n');
    out.push_str(&one_member_a_line(&body));
    out
}

/// A JSON object with each top-level member on a line of its own, and nothing else
/// changed (no member reordered, no byte inside a value touched), so that the
/// snapshot of a long document reads, and diffs, line by line. Other text is kept.
fn one_member_a_line(body: &str) -> String {
    if !body.starts_with('{') {
        return body.to_owned();
    }
    let mut out = String::with_capacity(body.len() + 64);
    let (mut depth, mut in_string, mut escaped) = (0u32, false, false);
    for c in body.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    out.push('\n');
                }
            }
            _ => {}
        }
        out.push(c);
        if depth == 1 && (c == ',' || (c == '{' && out.len() == 1)) {
            out.push_str("\n  ");
        }
    }
    out
}

async fn check(server: &TestServer, reply: Reply, snapshot: Expect) {
    snapshot.assert_eq(&wire(server, &reply));
}

/// A JWKS with its key ids and key material masked: what stays is its shape (which
/// members each key has) and the values that are the same for every key of a kind.
fn jwks_shape(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let mut jwks: Value = reply.json();
    for key in jwks["keys"].as_array_mut().expect("a key list") {
        for (name, value) in key.as_object_mut().expect("a key is an object") {
            if ["kid", "x", "y", "n"].contains(&name.as_str()) {
                *value = json!(format!("<{name}>"));
            }
        }
    }
    let headers = ["content-type", "cache-control"]
        .map(|name| format!("{name}: {}\n", reply.header(name).unwrap_or_default()))
        .concat();
    format!(
        "{headers}\n{}",
        serde_json::to_string_pretty(&jwks).expect("JSON")
    )
}

#[tokio::test]
async fn discovery_documents() {
    let server = TestServer::start().await;
    check(
        &server,
        server.get("/.well-known/oauth-authorization-server").await,
        expect![[r#"
            200
            cache-control: public, max-age=60
            content-type: application/json

            {
              "issuer":"http://<public>",
              "token_endpoint":"http://<public>/oauth2/token",
              "introspection_endpoint":"http://<public>/oauth2/introspect",
              "revocation_endpoint":"http://<public>/oauth2/revoke",
              "jwks_uri":"http://<public>/.well-known/jwks.json",
              "grant_types_supported":["client_credentials"],
              "response_types_supported":["token"],
              "token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"],
              "introspection_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"],
              "revocation_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"],
              "subject_types_supported":["public"],
              "id_token_signing_alg_values_supported":["ES256"],
              "access_token_signing_alg_values_supported":["ES256"]
            }"#]],
    )
    .await;
    // The OpenID Connect name of the same document.
    let oauth = server.get("/.well-known/oauth-authorization-server").await;
    let openid = server.get("/.well-known/openid-configuration").await;
    assert_eq!(wire(&server, &openid), wire(&server, &oauth));

    server
        .create_realm(json!({"name": "kc", "signing_alg": "RS256"}))
        .await;
    server
        .create_app(
            "kc",
            json!({"name": "refreshing", "refresh_token_ttl": 86400}),
        )
        .await;
    check(
        &server,
        server
            .get("/realms/kc/.well-known/openid-configuration")
            .await,
        expect![[r#"
            200
            cache-control: public, max-age=60
            content-type: application/json

            {
              "issuer":"http://<public>/realms/kc",
              "token_endpoint":"http://<public>/realms/kc/oauth2/token",
              "introspection_endpoint":"http://<public>/realms/kc/oauth2/introspect",
              "revocation_endpoint":"http://<public>/realms/kc/oauth2/revoke",
              "jwks_uri":"http://<public>/realms/kc/.well-known/jwks.json",
              "grant_types_supported":["client_credentials","refresh_token"],
              "response_types_supported":["token"],
              "token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"],
              "introspection_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"],
              "revocation_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"],
              "subject_types_supported":["public"],
              "id_token_signing_alg_values_supported":["RS256"],
              "access_token_signing_alg_values_supported":["RS256"]
            }"#]],
    )
    .await;
}

#[tokio::test]
async fn jwks_of_each_signing_algorithm() {
    let server = TestServer::start().await;
    for (alg, snapshot) in [
        (
            "ES256",
            expect![[r#"
            content-type: application/json
            cache-control: public, max-age=60

            {
              "keys": [
                {
                  "alg": "ES256",
                  "crv": "P-256",
                  "kid": "<kid>",
                  "kty": "EC",
                  "use": "sig",
                  "x": "<x>",
                  "y": "<y>"
                }
              ]
            }"#]],
        ),
        (
            "RS256",
            expect![[r#"
            content-type: application/json
            cache-control: public, max-age=60

            {
              "keys": [
                {
                  "alg": "RS256",
                  "e": "AQAB",
                  "kid": "<kid>",
                  "kty": "RSA",
                  "n": "<n>",
                  "use": "sig"
                }
              ]
            }"#]],
        ),
        (
            "EdDSA",
            expect![[r#"
            content-type: application/json
            cache-control: public, max-age=60

            {
              "keys": [
                {
                  "alg": "EdDSA",
                  "crv": "Ed25519",
                  "kid": "<kid>",
                  "kty": "OKP",
                  "use": "sig",
                  "x": "<x>"
                }
              ]
            }"#]],
        ),
    ] {
        let name = alg.to_ascii_lowercase();
        server
            .create_realm(json!({"name": name, "signing_alg": alg}))
            .await;
        let reply = server
            .get(&format!("/realms/{name}/.well-known/jwks.json"))
            .await;
        snapshot.assert_eq(&jwks_shape(&reply));
    }
}

#[tokio::test]
async fn token_endpoint_errors() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let auth = basic(&id, &secret);
    let token =
        async |pairs: &[(&str, &str)]| server.post_form("/oauth2/token", Some(&auth), pairs).await;
    check(
        &server,
        token(&[]).await,
        expect![[r#"
        400
        cache-control: no-store
        content-type: application/json
        pragma: no-cache

        {
          "error":"invalid_request",
          "error_description":"grant_type is missing"
        }"#]],
    )
    .await;
    check(
        &server,
        token(&[("grant_type", "password")]).await,
        expect![[r#"
            400
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"unsupported_grant_type",
              "error_description":"this server issues no password grants"
            }"#]],
    )
    .await;
    check(
        &server,
        token(&[("grant_type", "client_credentials"), ("scope", "admin")]).await,
        expect![[r#"
            400
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"invalid_scope",
              "error_description":"scope admin is not allowed for this application"
            }"#]],
    )
    .await;
    check(
        &server,
        token(&[
            ("grant_type", "client_credentials"),
            ("resource", "https://nowhere.example"),
        ])
        .await,
        expect![[r#"
            400
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"invalid_target",
              "error_description":"resource https://nowhere.example is not an audience of this application"
            }"#]],
    )
    .await;
    check(
        &server,
        token(&[("grant_type", "refresh_token"), ("refresh_token", "bogus")]).await,
        expect![[r#"
            400
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"unauthorized_client",
              "error_description":"this application has no refresh tokens"
            }"#]],
    )
    .await;
    let (refreshing, refreshing_secret) = server
        .create_app(
            "default",
            json!({"name": "refreshing", "refresh_token_ttl": 86400}),
        )
        .await;
    check(
        &server,
        server
            .refresh(&refreshing, &refreshing_secret, "bogus")
            .await,
        expect![[r#"
            400
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"invalid_grant",
              "error_description":"the refresh token is not valid"
            }"#]],
    )
    .await;
    check(
        &server,
        token(&[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ])
        .await,
        expect![[r#"
            400
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"invalid_request",
              "error_description":"parameter grant_type is repeated"
            }"#]],
    )
    .await;
    // Two client authentications at once.
    check(
        &server,
        token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .await,
        expect![[r#"
            400
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"invalid_request",
              "error_description":"use one client authentication method, not both Basic and client_secret"
            }"#]],
    )
    .await;
    check(
        &server,
        server
            .token_basic(
                "/oauth2/token",
                &id,
                "wrong",
                &[("grant_type", "client_credentials")],
            )
            .await,
        expect![[r#"
            401
            cache-control: no-store
            content-type: application/json
            pragma: no-cache
            www-authenticate: Basic realm="tessera", charset="UTF-8"

            {
              "error":"invalid_client",
              "error_description":"client authentication failed"
            }"#]],
    )
    .await;
    check(
        &server,
        server
            .post_form(
                "/oauth2/token",
                None,
                &[("grant_type", "client_credentials")],
            )
            .await,
        expect![[r#"
            401
            cache-control: no-store
            content-type: application/json
            pragma: no-cache
            www-authenticate: Basic realm="tessera", charset="UTF-8"

            {
              "error":"invalid_client",
              "error_description":"client authentication is required"
            }"#]],
    )
    .await;
    check(
        &server,
        server
            .post_raw(
                "/oauth2/token",
                Some("text/plain"),
                Some(&auth),
                "grant_type=client_credentials",
            )
            .await,
        expect![[r#"
            415
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"invalid_request",
              "error_description":"send application/x-www-form-urlencoded or application/json"
            }"#]],
    )
    .await;
    check(
        &server,
        server
            .post_raw("/oauth2/token", Some(JSON), Some(&auth), "{\"grant_type\":")
            .await,
        expect![[r#"
            400
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"invalid_request",
              "error_description":"the JSON body is malformed or not an object"
            }"#]],
    )
    .await;
    check(
        &server,
        server
            .post_raw("/oauth2/token", Some(FORM), Some(&auth), vec![b'a'; 70_000])
            .await,
        expect![[r#"
            413
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"invalid_request",
              "error_description":"the request body is over 65536 bytes"
            }"#]],
    )
    .await;
    check(
        &server,
        server
            .post_form(
                "/realms/nowhere/oauth2/token",
                Some(&auth),
                &[("grant_type", "client_credentials")],
            )
            .await,
        expect![[r#"
            404
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"invalid_request",
              "error_description":"no such realm"
            }"#]],
    )
    .await;
    check(
        &server,
        server.get("/oauth2/token").await,
        expect![[r#"
        405
        allow: POST
        cache-control: no-store
        content-type: application/json
        pragma: no-cache

        {
          "error":"invalid_request",
          "error_description":"method not allowed on this path"
        }"#]],
    )
    .await;
    check(
        &server,
        server.get("/no/such/path").await,
        expect![[r#"
        404
        cache-control: no-store
        content-type: application/json
        pragma: no-cache

        {
          "error":"not_found"
        }"#]],
    )
    .await;
}

/// A day quota rather than a minute one: the second request falls in the same day far
/// more surely than in the same minute.
#[tokio::test]
async fn a_used_up_quota() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(
            "default",
            json!({"name": "metered", "quota": {"per_day": 1}}),
        )
        .await;
    server.grant(&id, &secret).await;
    let refused = server
        .token_basic(
            "/oauth2/token",
            &id,
            &secret,
            &[("grant_type", "client_credentials")],
        )
        .await;
    check(&server, refused, expect![[r#"
        429
        cache-control: no-store
        content-type: application/json
        pragma: no-cache
        retry-after: <seconds>

        {
          "error":"quota_exceeded",
          "error_description":"the application's quota of 1 tokens per day (UTC) is used up; retry after <seconds> s"
        }"#]]).await;
}

#[tokio::test]
async fn too_many_failed_authentications() {
    let server = TestServer::start_with(|c| {
        c.failed_auth_per_address = 2;
        c.failed_auth_per_client = 0;
    })
    .await;
    let mut reply = None;
    for i in 0..10 {
        let answer = server
            .token_basic(
                "/oauth2/token",
                &format!("guess-{i}"),
                "wrong",
                &[("grant_type", "client_credentials")],
            )
            .await;
        if answer.status == 429 {
            reply = Some(answer);
            break;
        }
    }
    let reply = reply.expect("refused with 429 within ten failures");
    check(&server, reply, expect![[r#"
        429
        cache-control: no-store
        content-type: application/json
        pragma: no-cache
        retry-after: <seconds>

        {
          "error":"invalid_client",
          "error_description":"too many failed client authentications; slow down and retry after <seconds> s"
        }"#]]).await;
}

#[tokio::test]
async fn introspection_and_revocation_errors() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    for (path, missing, wrong) in [
        (
            "/oauth2/introspect",
            expect![[r#"
            400
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"invalid_request",
              "error_description":"token is missing"
            }"#]],
            expect![[r#"
            401
            cache-control: no-store
            content-type: application/json
            pragma: no-cache
            www-authenticate: Basic realm="tessera", charset="UTF-8"

            {
              "error":"invalid_client",
              "error_description":"client authentication failed"
            }"#]],
        ),
        (
            "/oauth2/revoke",
            expect![[r#"
            400
            cache-control: no-store
            content-type: application/json
            pragma: no-cache

            {
              "error":"invalid_request",
              "error_description":"token is missing"
            }"#]],
            expect![[r#"
            401
            cache-control: no-store
            content-type: application/json
            pragma: no-cache
            www-authenticate: Basic realm="tessera", charset="UTF-8"

            {
              "error":"invalid_client",
              "error_description":"client authentication failed"
            }"#]],
        ),
    ] {
        let reply = server
            .post_form(path, Some(&basic(&id, &secret)), &[])
            .await;
        check(&server, reply, missing).await;
        let reply = server
            .post_form(path, Some(&basic(&id, "wrong")), &[("token", "t")])
            .await;
        check(&server, reply, wrong).await;
    }
}

#[tokio::test]
async fn verify_challenge() {
    let server = TestServer::start().await;
    check(
        &server,
        server.get("/verify").await,
        expect![[r#"
        401
        content-type: text/plain; charset=utf-8
        www-authenticate: Bearer error="invalid_token"

        Unauthorized"#]],
    )
    .await;
    check(
        &server,
        server.verify("", "not-a-token").await,
        expect![[r#"
            401
            content-type: text/plain; charset=utf-8
            www-authenticate: Bearer error="invalid_token"

            Unauthorized"#]],
    )
    .await;
}

#[tokio::test]
async fn admin_api_errors() {
    let server = TestServer::start().await;
    let admin = async |method: Method, path: &str, body: Option<Value>| {
        server.admin(method, path, body).await
    };
    check(
        &server,
        server
            .admin_raw(Method::GET, "/admin/v1/realms", None, None)
            .await,
        expect![[r#"
            401
            content-type: application/json
            www-authenticate: Bearer

            {
              "error":"unauthorized",
              "message":"send Authorization: Bearer <admin key>"
            }"#]],
    )
    .await;
    check(
        &server,
        admin(Method::GET, "/admin/v1/nothing", None).await,
        expect![[r#"
            404
            content-type: application/json

            {
              "error":"not_found",
              "message":"no such route"
            }"#]],
    )
    .await;
    check(
        &server,
        admin(Method::GET, "/admin/v1/realms/nowhere", None).await,
        expect![[r#"
            404
            content-type: application/json

            {
              "error":"not_found",
              "message":"realm nowhere not found"
            }"#]],
    )
    .await;
    check(
        &server,
        admin(Method::GET, "/admin/v1/realms/%FF", None).await,
        expect![[r#"
            404
            content-type: application/json

            {
              "error":"not_found",
              "message":"realm or application /admin/v1/realms/%FF not found"
            }"#]],
    )
    .await;
    check(
        &server,
        admin(
            Method::POST,
            "/admin/v1/realms",
            Some(json!({"name": "default"})),
        )
        .await,
        expect![[r#"
            409
            content-type: application/json

            {
              "error":"conflict",
              "message":"realm default already exists"
            }"#]],
    )
    .await;
    check(
        &server,
        admin(
            Method::POST,
            "/admin/v1/realms",
            Some(json!({"name": "no spaces"})),
        )
        .await,
        expect![[r#"
            400
            content-type: application/json

            {
              "error":"invalid_field",
              "message":"a realm name is 1 to 64 characters of A-Z a-z 0-9 . _ -",
              "field":"name"
            }"#]],
    )
    .await;
    check(
        &server,
        admin(
            Method::POST,
            "/admin/v1/realms",
            Some(json!({"name": "r", "colour": "blue"})),
        )
        .await,
        expect![[r#"
            400
            content-type: application/json

            {
              "error":"invalid_request",
              "message":"unknown field `colour`, expected one of `name`, `hosts`, `public_url`, `token_format`, `signing_alg`, `token_prefix`, `token_type`, `key_rotation` at line 1 column 9",
              "field":"colour"
            }"#]],
    )
    .await;
    check(
        &server,
        server
            .admin_raw(
                Method::POST,
                "/admin/v1/realms",
                Some(&format!("Bearer {}", crate::harness::ADMIN_KEY)),
                Some(vec![b' '; 70_000]),
            )
            .await,
        expect![[r#"
            413
            content-type: application/json

            {
              "error":"payload_too_large",
              "message":"the request body is over 65536 bytes"
            }"#]],
    )
    .await;
    let (id, _) = server.simple_app("default").await;
    let app = format!("/admin/v1/realms/default/applications/{id}");
    server
        .admin(Method::PATCH, &app, Some(json!({"enabled": false})))
        .await
        .expect_status(200);
    check(
        &server,
        server
            .admin(Method::POST, &format!("{app}/tokens"), Some(json!({})))
            .await,
        expect![[r#"
            403
            content-type: application/json

            {
              "error":"forbidden",
              "message":"the application is disabled"
            }"#]],
    )
    .await;
}

#[tokio::test]
async fn too_many_wrong_admin_keys() {
    let server = TestServer::start_with(|c| c.failed_admin_auth_per_address = 2).await;
    let mut reply = None;
    for _ in 0..10 {
        let answer = server
            .admin_raw(Method::GET, "/admin/v1/realms", Some("Bearer wrong"), None)
            .await;
        if answer.status == 429 {
            reply = Some(answer);
            break;
        }
    }
    let reply = reply.expect("refused with 429 within ten wrong keys");
    check(
        &server,
        reply,
        expect![[r#"
        429
        content-type: application/json
        retry-after: <seconds>

        {
          "error":"too_many_requests",
          "message":"too many requests with a wrong admin key; retry after <seconds> s"
        }"#]],
    )
    .await;
}

#[tokio::test]
async fn metrics_of_a_fresh_server() {
    let server = TestServer::start().await;
    check(&server, server.get("/metrics").await, expect![[r#"
        200
        content-type: text/plain; version=0.0.4

        # HELP tessera_tokens_issued_total Access tokens issued by the token endpoint.
        # TYPE tessera_tokens_issued_total counter
        tessera_tokens_issued_total 0
        # HELP tessera_token_errors_total Token requests refused, by RFC 6749 error code.
        # TYPE tessera_token_errors_total counter
        tessera_token_errors_total{error="invalid_request"} 0
        tessera_token_errors_total{error="invalid_client"} 0
        tessera_token_errors_total{error="invalid_grant"} 0
        tessera_token_errors_total{error="unauthorized_client"} 0
        tessera_token_errors_total{error="unsupported_grant_type"} 0
        tessera_token_errors_total{error="invalid_scope"} 0
        tessera_token_errors_total{error="invalid_target"} 0
        tessera_token_errors_total{error="server_error"} 0
        tessera_token_errors_total{error="temporarily_unavailable"} 0
        # HELP tessera_introspections_total Introspection answers, by whether the token was active.
        # TYPE tessera_introspections_total counter
        tessera_introspections_total{active="true"} 0
        tessera_introspections_total{active="false"} 0
        # HELP tessera_revocations_total Revocation requests answered.
        # TYPE tessera_revocations_total counter
        tessera_revocations_total 0
        # HELP tessera_verify_total Forward-auth checks, by outcome.
        # TYPE tessera_verify_total counter
        tessera_verify_total{outcome="allowed"} 0
        tessera_verify_total{outcome="denied"} 0
        # HELP tessera_auth_limited_total Requests answered 429 for too many failed authentications, by listener.
        # TYPE tessera_auth_limited_total counter
        tessera_auth_limited_total{listener="public"} 0
        tessera_auth_limited_total{listener="admin"} 0
    "#]]).await;
}

/// A body that stops halfway is answered 408 on both listeners, and the connection
/// closed; read off the socket as it was written, `date` masked.
#[tokio::test]
async fn a_body_that_does_not_arrive_in_time() {
    let server = TestServer::start_with(|c| {
        c.public_connections.body_timeout = std::time::Duration::from_millis(300);
        c.admin_connections.body_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let admin_head = format!(
        "POST /admin/v1/realms HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"na",
        crate::harness::ADMIN_KEY
    );
    for (base, head, snapshot) in [
        (
            &server.base,
            "POST /oauth2/token HTTP/1.1\r\nHost: t\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
             grant_type=",
            expect![[r#"
                HTTP/1.1 408 Request Timeout
                content-type: application/json
                cache-control: no-store
                pragma: no-cache
                connection: close
                content-length: 89
                date: <date>

                {"error":"invalid_request","error_description":"the request body did not arrive in time"}"#]],
        ),
        (
            &server.admin_base,
            admin_head.as_str(),
            expect![[r#"
            HTTP/1.1 408 Request Timeout
            content-type: application/json
            connection: close
            content-length: 79
            date: <date>

            {"error":"request_timeout","message":"the request body did not arrive in time"}"#]],
        ),
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut sent = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut sent),
        )
        .await
        .expect("closed after the 408")
        .unwrap();
        let sent = String::from_utf8_lossy(&sent)
            .split("\r\n")
            .map(|line| {
                if line.starts_with("date: ") {
                    "date: <date>"
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        snapshot.assert_eq(&sent);
    }
}
