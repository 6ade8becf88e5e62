//! RFC 7662 introspection: who may ask, what an active and an inactive answer hold.

use oauth2::{AccessToken, AuthType, TokenIntrospectionResponse};
use serde_json::json;

use crate::harness::{FORM, JSON, TestServer, assert_lifetime, basic, form_body, now_s};

#[tokio::test]
async fn the_oauth2_crate_introspects_with_basic_and_post() {
    let server = TestServer::start().await;
    let public = server.public_url();
    let (id, secret) = server.simple_app("default").await;
    let token = server.fetch_token("", &id, &secret).await;
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let client = server.oauth_client("", &id, &secret, auth.clone());
        let answer = client
            .introspect(&AccessToken::new(token.clone()))
            .request_async(&server.http)
            .await
            .unwrap_or_else(|e| panic!("{auth:?}: {e:?}"));
        assert!(answer.active());
        assert_eq!(answer.client_id().map(|c| c.as_str()), Some(id.as_str()));
        let scopes: Vec<String> = answer
            .scopes()
            .expect("scope")
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(scopes, ["read", "write"]);
        assert_eq!(answer.iss(), Some(public.as_str()));
        assert_eq!(answer.sub(), Some(id.as_str()));
        assert!(answer.jti().is_some());
        assert_eq!(answer.aud(), Some(&vec![public.clone()]));
        let exp = answer.exp().expect("exp").timestamp();
        let iat = answer.iat().expect("iat").timestamp();
        // exp is rounded up to the next second so that the token lives its whole ttl.
        assert!((3600..=3601).contains(&(exp - iat)), "{}", exp - iat);
        assert!((iat - now_s()).abs() <= 5);
        assert!(answer.token_type().is_some());

        let dead = client
            .introspect(&AccessToken::new("tsr_at_not-a-token".into()))
            .request_async(&server.http)
            .await
            .unwrap_or_else(|e| panic!("{auth:?}: {e:?}"));
        assert!(!dead.active());
        assert!(dead.client_id().is_none());
    }
}

#[tokio::test]
async fn an_active_answer_has_the_rfc_7662_fields() {
    let server = TestServer::start().await;
    let public = server.public_url();
    let (id, secret) = server.simple_app("default").await;
    let token = server.fetch_token("", &id, &secret).await;
    let body = server
        .introspect("", &id, &secret, &token)
        .await
        .expect_active();
    assert_eq!(body["client_id"], id);
    assert_eq!(body["scope"], "read write");
    assert_eq!(body["iss"], public);
    assert_eq!(body["sub"], id);
    assert_eq!(body["token_type"], "Bearer");
    assert_lifetime(&body, 3600);
}

#[tokio::test]
async fn an_inactive_answer_is_exactly_active_false() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let token = server.fetch_token("", &id, &secret).await;
    let long = "a".repeat(10_000);
    for junk in [
        "garbage",
        "tsr_at_",
        "tsr_at_AAAA",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
        &long,
        &token[..token.len() - 1],
        "\u{e9}\u{e8}",
    ] {
        server
            .introspect("", &id, &secret, junk)
            .await
            .expect_inactive();
    }
    // A JSON body and a token_type_hint change nothing.
    let reply = server
        .post_json(
            "/oauth2/introspect",
            Some(&basic(&id, &secret)),
            &json!({"token": "garbage", "token_type_hint": "access_token"}),
        )
        .await;
    reply.expect_inactive();
    let reply = server
        .post_json(
            "/oauth2/introspect",
            None,
            &json!({"token": token, "client_id": id, "client_secret": secret}),
        )
        .await;
    reply.expect_active();
}

#[tokio::test]
async fn introspection_requires_a_client_of_the_same_realm() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let (other_id, other_secret) = server.simple_app("default").await;
    server.create_realm(json!({"name": "elsewhere"})).await;
    let (far_id, far_secret) = server.simple_app("elsewhere").await;
    let token = server.fetch_token("", &id, &secret).await;

    // Any client of the realm may ask about any of its tokens.
    let body = server
        .introspect("", &other_id, &other_secret, &token)
        .await
        .expect_active();
    assert_eq!(body["client_id"], id);

    // No client authentication.
    let reply = server
        .post_form("/oauth2/introspect", None, &[("token", &token)])
        .await;
    reply.expect_oauth_error(401, "invalid_client");
    // A public client that names itself but proves nothing.
    let reply = server
        .post_form(
            "/oauth2/introspect",
            None,
            &[("token", &token), ("client_id", &id)],
        )
        .await;
    reply.expect_oauth_error(401, "invalid_client");
    // A wrong secret, by Basic: the Basic challenge comes back.
    let reply = server.introspect("", &id, "wrong", &token).await;
    reply.expect_oauth_error(401, "invalid_client");
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic realm=")),
        "{:?}",
        reply.headers
    );
    // A wrong secret in the body.
    let reply = server
        .post_form(
            "/oauth2/introspect",
            None,
            &[
                ("token", &token),
                ("client_id", &id),
                ("client_secret", "wrong"),
            ],
        )
        .await;
    reply.expect_oauth_error(401, "invalid_client");
    // A client of another realm, with its right secret.
    let reply = server.introspect("", &far_id, &far_secret, &token).await;
    reply.expect_oauth_error(401, "invalid_client");
    // A bearer token is not client authentication.
    let reply = server
        .send(
            server
                .request(reqwest::Method::POST, "/oauth2/introspect")
                .bearer_auth(&token)
                .header("content-type", FORM)
                .body(form_body(&[("token", &token)])),
        )
        .await;
    reply.expect_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn introspection_needs_the_token_parameter_once() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let auth = basic(&id, &secret);
    for (content_type, body) in [
        (FORM, String::new()),
        (FORM, "token=".to_owned()),
        (FORM, "token_type_hint=access_token".to_owned()),
        (JSON, "{}".to_owned()),
        (JSON, r#"{"token": null}"#.to_owned()),
        (FORM, "token=a&token=b".to_owned()),
    ] {
        let reply = server
            .post_raw("/oauth2/introspect", Some(content_type), Some(&auth), body)
            .await;
        reply.expect_oauth_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn keycloak_introspection_alias_works_per_realm() {
    let server = TestServer::start().await;
    server.create_realm(json!({"name": "kc"})).await;
    let (id, secret) = server.simple_app("kc").await;
    let (did, dsecret) = server.simple_app("default").await;
    let token = server.fetch_token("/realms/kc", &id, &secret).await;
    let dtoken = server.fetch_token("", &did, &dsecret).await;
    for path in [
        "/realms/kc/protocol/openid-connect/token/introspect",
        "/auth/realms/kc/protocol/openid-connect/token/introspect",
        "/realms/kc/oauth2/introspect",
    ] {
        let reply = server
            .post_form(
                path,
                None,
                &[
                    ("token", &token),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ],
            )
            .await;
        assert_eq!(reply.expect_active()["client_id"], id, "{path}");
        let reply = server
            .post_form(path, Some(&basic(&id, &secret)), &[("token", &dtoken)])
            .await;
        reply.expect_inactive();
    }
    let reply = server
        .post_form(
            "/protocol/openid-connect/token/introspect",
            Some(&basic(&did, &dsecret)),
            &[("token", &dtoken)],
        )
        .await;
    assert_eq!(reply.expect_active()["client_id"], did);
}
