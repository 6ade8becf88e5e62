//! Realms on the public side: by path, by `Host`, case-sensitive names, isolation,
//! issuers, and the per-realm token spelling and prefix.

use reqwest::Method;
use reqwest::header::HOST;
use serde_json::json;

use crate::harness::{TestServer, basic, expect_verify_refused};

#[tokio::test]
async fn a_realm_is_served_under_its_path_with_its_own_issuer() {
    let server = TestServer::start().await;
    let public = server.public_url();
    server.create_realm(json!({"name": "acme"})).await;
    let (id, secret) = server.simple_app("acme").await;

    let token = server.fetch_token("/realms/acme", &id, &secret).await;
    let active = server
        .assert_alive("/realms/acme", &id, &secret, &token)
        .await;
    assert_eq!(active["iss"], format!("{public}/realms/acme"));
    let verify = server.verify("/realms/acme", &token).await;
    assert_eq!(verify.header("x-realm"), Some("acme"));

    // The application is unknown to the default realm at the root paths.
    let reply = server
        .token_basic(
            "/oauth2/token",
            &id,
            &secret,
            &[("grant_type", "client_credentials")],
        )
        .await;
    reply.expect_oauth_error(401, "invalid_client");
    expect_verify_refused(&server.verify("", &token).await);

    // The default realm is also served under /realms/default, with the root issuer.
    let (did, dsecret) = server.simple_app("default").await;
    let token = server.fetch_token("/realms/default", &did, &dsecret).await;
    let active = server.assert_alive("", &did, &dsecret, &token).await;
    assert_eq!(active["iss"], public);
    server
        .assert_alive("/realms/default", &did, &dsecret, &token)
        .await;
}

#[tokio::test]
async fn a_realm_with_host_names_answers_the_root_paths_for_them() {
    let server = TestServer::start().await;
    let public = server.public_url();
    server
        .create_realm(json!({"name": "sandbox", "hosts": ["sandbox.api.example"]}))
        .await;
    let (id, secret) = server.simple_app("sandbox").await;
    let (did, dsecret) = server.simple_app("default").await;

    for host in [
        "sandbox.api.example",
        "SANDBOX.Api.Example",
        "sandbox.api.example:8443",
    ] {
        let reply = server
            .send(
                server
                    .request(Method::POST, "/oauth2/token")
                    .header(HOST, host)
                    .header("authorization", basic(&id, &secret))
                    .form(&[("grant_type", "client_credentials")]),
            )
            .await;
        let body = reply.expect_token();
        let token = body["access_token"].as_str().expect("token");
        let active = server
            .send(
                server
                    .request(Method::POST, "/oauth2/introspect")
                    .header(HOST, host)
                    .header("authorization", basic(&id, &secret))
                    .form(&[("token", token)]),
            )
            .await
            .expect_active();
        assert_eq!(active["iss"], format!("{public}/realms/sandbox"), "{host}");
        let verify = server
            .send(
                server
                    .request(Method::GET, "/verify")
                    .header(HOST, host)
                    .bearer_auth(token),
            )
            .await;
        verify.expect_status(200);
        assert_eq!(verify.header("x-realm"), Some("sandbox"), "{host}");
        assert_eq!(verify.header("x-client-id"), Some(id.as_str()));
        // Without that host, the root paths are the default realm's.
        expect_verify_refused(&server.verify("", token).await);

        let metadata = server
            .send(
                server
                    .request(Method::GET, "/.well-known/oauth-authorization-server")
                    .header(HOST, host),
            )
            .await;
        metadata.expect_status(200);
        assert_eq!(
            metadata.json()["issuer"],
            format!("{public}/realms/sandbox")
        );
    }

    // The sandbox client is not a client of the default realm, and the other way round.
    server
        .token_basic(
            "/oauth2/token",
            &id,
            &secret,
            &[("grant_type", "client_credentials")],
        )
        .await
        .expect_oauth_error(401, "invalid_client");
    let reply = server
        .send(
            server
                .request(Method::POST, "/oauth2/token")
                .header(HOST, "sandbox.api.example")
                .header("authorization", basic(&did, &dsecret))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    reply.expect_oauth_error(401, "invalid_client");

    // An unknown host is the default realm.
    let reply = server
        .send(
            server
                .request(Method::POST, "/oauth2/token")
                .header(HOST, "other.api.example")
                .header("authorization", basic(&did, &dsecret))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    reply.expect_token();
}

#[tokio::test]
async fn a_realm_public_url_is_its_issuer() {
    let server = TestServer::start().await;
    server
        .create_realm(json!({
            "name": "sandbox",
            "hosts": ["sandbox.api.example"],
            "public_url": "https://sandbox.api.example/",
        }))
        .await;
    let (id, secret) = server.simple_app("sandbox").await;
    let token = server.fetch_token("/realms/sandbox", &id, &secret).await;
    let active = server
        .assert_alive("/realms/sandbox", &id, &secret, &token)
        .await;
    assert_eq!(active["iss"], "https://sandbox.api.example");

    let view = server
        .admin(Method::GET, "/admin/v1/realms/sandbox", None)
        .await;
    view.expect_status(200);
    let view = view.json();
    assert_eq!(view["issuer"], "https://sandbox.api.example");
    assert_eq!(view["public_url"], "https://sandbox.api.example");
}

#[tokio::test]
async fn realm_names_are_case_sensitive() {
    let server = TestServer::start().await;
    server.create_realm(json!({"name": "Arkane"})).await;
    server.create_realm(json!({"name": "arkane"})).await;
    let (upper_id, upper_secret) = server.simple_app("Arkane").await;
    let (lower_id, lower_secret) = server.simple_app("arkane").await;

    let upper = server
        .fetch_token("/realms/Arkane", &upper_id, &upper_secret)
        .await;
    let lower = server
        .fetch_token("/realms/arkane", &lower_id, &lower_secret)
        .await;
    let active = server
        .assert_alive("/realms/Arkane", &upper_id, &upper_secret, &upper)
        .await;
    assert!(
        active["iss"]
            .as_str()
            .expect("iss")
            .ends_with("/realms/Arkane")
    );
    let active = server
        .assert_alive("/realms/arkane", &lower_id, &lower_secret, &lower)
        .await;
    assert!(
        active["iss"]
            .as_str()
            .expect("iss")
            .ends_with("/realms/arkane")
    );

    // Each realm's client and tokens are strangers to the other.
    server
        .token_basic(
            "/realms/arkane/oauth2/token",
            &upper_id,
            &upper_secret,
            &[("grant_type", "client_credentials")],
        )
        .await
        .expect_oauth_error(401, "invalid_client");
    server
        .assert_dead("/realms/arkane", &lower_id, &lower_secret, &upper)
        .await;
    server
        .assert_dead("/realms/Arkane", &upper_id, &upper_secret, &lower)
        .await;

    // A third spelling is no realm at all.
    server
        .token_basic(
            "/realms/ARKANE/oauth2/token",
            &upper_id,
            &upper_secret,
            &[("grant_type", "client_credentials")],
        )
        .await
        .expect_oauth_error(404, "invalid_request");
}

#[tokio::test]
async fn an_unknown_realm_is_a_json_404_on_every_endpoint() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let auth = basic(&id, &secret);
    for prefix in ["/realms/nope", "/auth/realms/nope"] {
        for path in [
            "/oauth2/token",
            "/oauth2/token/",
            "/v2/token",
            "/protocol/openid-connect/token",
            "/oauth2/introspect",
            "/protocol/openid-connect/token/introspect",
            "/oauth2/revoke",
            "/protocol/openid-connect/revoke",
        ] {
            let reply = server
                .post_form(
                    &format!("{prefix}{path}"),
                    Some(&auth),
                    &[("grant_type", "client_credentials"), ("token", "x")],
                )
                .await;
            reply.expect_oauth_error(404, "invalid_request");
        }
        for path in [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
            "/.well-known/jwks.json",
            "/protocol/openid-connect/certs",
            "/verify",
        ] {
            let reply = server.get(&format!("{prefix}{path}")).await;
            reply.expect_oauth_error(404, "invalid_request");
        }
    }
    server
        .get("/.well-known/oauth-authorization-server/realms/nope")
        .await
        .expect_oauth_error(404, "invalid_request");
}

#[tokio::test]
async fn a_token_of_one_realm_is_inactive_in_another() {
    let server = TestServer::start().await;
    server.create_realm(json!({"name": "a"})).await;
    server
        .create_realm(json!({"name": "b", "token_format": "opaque"}))
        .await;
    let (a_id, a_secret) = server.simple_app("a").await;
    let (b_id, b_secret) = server.simple_app("b").await;
    let (d_id, d_secret) = server.simple_app("default").await;
    let a_token = server.fetch_token("/realms/a", &a_id, &a_secret).await;
    let b_token = server.fetch_token("/realms/b", &b_id, &b_secret).await;
    assert!(b_token.starts_with("tsr_at_"), "{b_token}");

    server
        .assert_alive("/realms/a", &a_id, &a_secret, &a_token)
        .await;
    server
        .assert_alive("/realms/b", &b_id, &b_secret, &b_token)
        .await;
    server
        .assert_dead("/realms/b", &b_id, &b_secret, &a_token)
        .await;
    server
        .assert_dead("/realms/a", &a_id, &a_secret, &b_token)
        .await;
    server.assert_dead("", &d_id, &d_secret, &a_token).await;
    server.assert_dead("", &d_id, &d_secret, &b_token).await;

    // The same client_id in both realms does not make a's token valid at b.
    let (sa, sa_secret) = server
        .create_app("a", json!({"name": "s", "client_id": "shared"}))
        .await;
    let (sb, sb_secret) = server
        .create_app("b", json!({"name": "s", "client_id": "shared"}))
        .await;
    let shared_a = server.fetch_token("/realms/a", &sa, &sa_secret).await;
    let shared_b = server.fetch_token("/realms/b", &sb, &sb_secret).await;
    server
        .assert_alive("/realms/a", &sa, &sa_secret, &shared_a)
        .await;
    server
        .assert_dead("/realms/b", &sb, &sb_secret, &shared_a)
        .await;
    server
        .assert_dead("/realms/a", &sa, &sa_secret, &shared_b)
        .await;
    // Revoking at b with b's `shared` leaves a's token alone.
    server
        .revoke("/realms/b", &sb, &sb_secret, &shared_a)
        .await
        .expect_status(200);
    server
        .assert_alive("/realms/a", &sa, &sa_secret, &shared_a)
        .await;

    // A client of realm a may not introspect at realm b at all.
    server
        .introspect("/realms/b", &a_id, &a_secret, &b_token)
        .await
        .expect_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn a_realm_chooses_token_type_spelling_and_opaque_prefix() {
    let server = TestServer::start().await;
    // The hydra dialect (D4).
    server
        .create_realm(json!({
            "name": "hydra",
            "token_format": "opaque",
            "token_prefix": "ory_at_",
            "token_type": "bearer",
        }))
        .await;
    let (id, secret) = server
        .create_app("hydra", json!({"name": "h", "scopes": ["api", "other"]}))
        .await;
    let reply = server
        .post_form(
            "/realms/hydra/oauth2/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "api"),
            ],
        )
        .await;
    let body = reply.expect_token();
    let mut keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "expires_in", "scope", "token_type"]);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], "api");
    let token = body["access_token"].as_str().expect("token");
    assert!(token.starts_with("ory_at_"), "{token}");
    assert_eq!(token.split('.').count(), 1, "opaque, not a JWT: {token}");
    let active = server
        .assert_alive("/realms/hydra", &id, &secret, token)
        .await;
    assert_eq!(active["token_type"], "bearer");
    assert_eq!(active["scope"], "api");

    // The default realm keeps `Bearer` and JWTs.
    let (did, dsecret) = server.simple_app("default").await;
    let reply = server
        .token_basic(
            "/oauth2/token",
            &did,
            &dsecret,
            &[("grant_type", "client_credentials")],
        )
        .await;
    let body = reply.expect_token();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["access_token"]
            .as_str()
            .expect("token")
            .split('.')
            .count(),
        3
    );

    // A realm PATCH changes the spelling of the next answer at once.
    server
        .admin(
            Method::PATCH,
            "/admin/v1/realms/default",
            Some(json!({"token_type": "bearer"})),
        )
        .await
        .expect_status(200);
    let reply = server
        .token_basic(
            "/oauth2/token",
            &did,
            &dsecret,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(reply.expect_token()["token_type"], "bearer");
}

#[tokio::test]
async fn patching_a_realm_hosts_moves_the_host() {
    let server = TestServer::start().await;
    server
        .create_realm(json!({"name": "r", "hosts": ["old.api.example"]}))
        .await;
    let (id, secret) = server.simple_app("r").await;
    let token = server.fetch_token("/realms/r", &id, &secret).await;
    let verify_at = |host: &'static str| {
        server
            .request(Method::GET, "/verify")
            .header(HOST, host)
            .bearer_auth(&token)
    };
    server
        .send(verify_at("old.api.example"))
        .await
        .expect_status(200);
    server
        .admin(
            Method::PATCH,
            "/admin/v1/realms/r",
            Some(json!({"hosts": ["new.api.example"]})),
        )
        .await
        .expect_status(200);
    server
        .send(verify_at("new.api.example"))
        .await
        .expect_status(200);
    expect_verify_refused(&server.send(verify_at("old.api.example")).await);
}
