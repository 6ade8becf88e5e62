//! Bad input on the public endpoints: always a JSON RFC 6749 error with the right status,
//! never a 500.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::json;

use crate::harness::{FORM, JSON, TestServer, basic, form_body};

/// One bad request and the error it must get.
struct Case {
    name: String,
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    authorization: Option<String>,
    body: Vec<u8>,
    status: u16,
    error: &'static str,
    /// `Some(true)`: a `WWW-Authenticate: Basic` challenge must come back;
    /// `Some(false)`: none may.
    basic_challenge: Option<bool>,
}

impl Case {
    fn post(name: impl Into<String>, status: u16, error: &'static str) -> Self {
        Self {
            name: name.into(),
            method: Method::POST,
            path: "/oauth2/token",
            content_type: Some(FORM),
            authorization: None,
            body: Vec::new(),
            status,
            error,
            basic_challenge: None,
        }
    }

    fn path(mut self, path: &'static str) -> Self {
        self.path = path;
        self
    }

    fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    fn auth(mut self, authorization: impl Into<String>) -> Self {
        self.authorization = Some(authorization.into());
        self
    }

    fn content_type(mut self, content_type: Option<&'static str>) -> Self {
        self.content_type = content_type;
        self
    }

    fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        self.content_type = Some(FORM);
        self.body = form_body(pairs).into_bytes();
        self
    }

    fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn challenge(mut self, expected: bool) -> Self {
        self.basic_challenge = Some(expected);
        self
    }
}

async fn check(server: &TestServer, cases: Vec<Case>) {
    for case in cases {
        let mut request = server
            .request(case.method.clone(), case.path)
            .body(case.body.clone());
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(authorization) = &case.authorization {
            request = request.header("authorization", authorization);
        }
        let reply = server.send(request).await;
        assert_eq!(
            reply.status,
            case.status,
            "{}: {} {:?}",
            case.name,
            reply.text(),
            reply.headers
        );
        let body = reply.json();
        assert_eq!(body["error"], case.error, "{}: {body}", case.name);
        assert!(
            body.get("error_description").is_none_or(|d| d.is_string()),
            "{}: {body}",
            case.name
        );
        let challenge = reply.header("www-authenticate");
        // RFC 6749 §5.2 and RFC 9110 §15.5.2: every 401 names the scheme to use,
        // whether the client tried Basic, another scheme, the body, or nothing.
        if case.status == 401 {
            assert!(
                challenge.is_some_and(|c| c.starts_with("Basic realm=")),
                "{}: a 401 without a challenge: {challenge:?}",
                case.name
            );
        }
        match case.basic_challenge {
            Some(true) => assert!(
                challenge.is_some_and(|c| c.starts_with("Basic realm=")),
                "{}: {challenge:?}",
                case.name
            ),
            Some(false) => assert!(challenge.is_none(), "{}: {challenge:?}", case.name),
            None => {}
        }
    }
}

#[tokio::test]
async fn bad_token_requests_get_rfc_6749_errors() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let grant = [("grant_type", "client_credentials")];
    let ok_basic = basic(&id, &secret);
    let cases =
        vec![
        // Client authentication.
        Case::post("wrong secret, Basic", 401, "invalid_client")
            .auth(basic(&id, "wrong"))
            .form(&grant)
            .challenge(true),
        Case::post("empty secret, Basic", 401, "invalid_client")
            .auth(basic(&id, ""))
            .form(&grant)
            .challenge(true),
        Case::post("unknown client, Basic", 401, "invalid_client")
            .auth(basic("nobody", &secret))
            .form(&grant)
            .challenge(true),
        Case::post("wrong secret, post", 401, "invalid_client")
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "wrong"),
            ])
            .challenge(true),
        Case::post("unknown client, post", 401, "invalid_client")
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", &secret),
            ])
            .challenge(true),
        Case::post("wrong secret, JSON", 401, "invalid_client")
            .content_type(Some(JSON))
            .raw(
                json!({"grant_type": "client_credentials", "client_id": id, "client_secret": "x"})
                    .to_string(),
            )
            .challenge(true),
        Case::post("no client authentication", 401, "invalid_client")
            .form(&grant)
            .challenge(true),
        Case::post("client_id alone", 401, "invalid_client")
            .form(&[("grant_type", "client_credentials"), ("client_id", &id)])
            .challenge(true),
        Case::post("a bearer token is no client authentication", 401, "invalid_client")
            .auth("Bearer abc")
            .form(&grant),
        Case::post("the secret in the wrong case", 401, "invalid_client")
            .auth(basic(&id, &secret.to_uppercase()))
            .form(&grant)
            .challenge(true),
        Case::post("the id in the wrong case", 401, "invalid_client")
            .auth(basic(&id.to_uppercase(), &secret))
            .form(&grant)
            .challenge(true),
        // Malformed Basic headers.
        Case::post("Basic with bad base64", 400, "invalid_request")
            .auth("Basic !!!")
            .form(&grant),
        Case::post("Basic without credentials", 400, "invalid_request")
            .auth("Basic")
            .form(&grant),
        Case::post("Basic without a colon", 400, "invalid_request")
            .auth(format!("Basic {}", STANDARD.encode(&id)))
            .form(&grant),
        Case::post("Basic with an empty id", 400, "invalid_request")
            .auth(format!("Basic {}", STANDARD.encode(format!(":{secret}"))))
            .form(&grant),
        Case::post("Basic that is not UTF-8", 400, "invalid_request")
            .auth(format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', 0x80])))
            .form(&grant),
        Case::post("Basic with a bad percent escape", 400, "invalid_request")
            .auth(format!("Basic {}", STANDARD.encode("%ZZ:%C3")))
            .form(&grant),
        Case::post("client_secret_post with a differing client_id", 400, "invalid_request")
            .auth(ok_basic.clone())
            .form(&[("grant_type", "client_credentials"), ("client_id", "someone-else")]),
        Case::post("Basic plus client_secret in the body", 400, "invalid_request")
            .auth(ok_basic.clone())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ]),
        Case::post("client_secret without client_id", 400, "invalid_request")
            .form(&[("grant_type", "client_credentials"), ("client_secret", &secret)]),
        // Grant types and parameters.
        Case::post("missing grant_type", 400, "invalid_request")
            .auth(ok_basic.clone())
            .form(&[("scope", "read")]),
        Case::post("empty grant_type", 400, "invalid_request")
            .auth(ok_basic.clone())
            .form(&[("grant_type", "")]),
        Case::post("empty body", 400, "invalid_request").auth(ok_basic.clone()),
        Case::post("unknown grant_type", 400, "unsupported_grant_type")
            .auth(ok_basic.clone())
            .form(&[("grant_type", "magic")]),
        Case::post("password grant", 400, "unsupported_grant_type")
            .auth(ok_basic.clone())
            .form(&[("grant_type", "password"), ("username", "u"), ("password", "p")]),
        Case::post("authorization_code grant", 400, "unsupported_grant_type")
            .auth(ok_basic.clone())
            .form(&[("grant_type", "authorization_code"), ("code", "c")]),
        Case::post("grant_type in the wrong case", 400, "unsupported_grant_type")
            .auth(ok_basic.clone())
            .form(&[("grant_type", "Client_Credentials")]),
        Case::post("refresh_token for an application without it", 400, "unauthorized_client")
            .auth(ok_basic.clone())
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "r")]),
        Case::post("repeated grant_type", 400, "invalid_request")
            .auth(ok_basic.clone())
            .form(&[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ]),
        Case::post("repeated scope", 400, "invalid_request")
            .auth(ok_basic.clone())
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "read"),
                ("scope", "write"),
            ]),
        Case::post("repeated client_id", 400, "invalid_request").form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_id", &id),
            ("client_secret", &secret),
        ]),
        Case::post("two credentials in one Authorization header", 400, "invalid_request")
            .auth(format!("{ok_basic}, {ok_basic}"))
            .form(&grant),
        // Bodies.
        Case::post("malformed JSON", 400, "invalid_request")
            .auth(ok_basic.clone())
            .content_type(Some(JSON))
            .raw(r#"{"grant_type": "client_credentials""#),
        Case::post("JSON that is not an object", 400, "invalid_request")
            .auth(ok_basic.clone())
            .content_type(Some(JSON))
            .raw(r#"["grant_type", "client_credentials"]"#),
        Case::post("JSON with a nested object", 400, "invalid_request")
            .auth(ok_basic.clone())
            .content_type(Some(JSON))
            .raw(r#"{"grant_type": {"a": 1}}"#),
        Case::post("JSON with a list of numbers", 400, "invalid_request")
            .auth(ok_basic.clone())
            .content_type(Some(JSON))
            .raw(r#"{"grant_type": "client_credentials", "resource": [1]}"#),
        Case::post("JSON that is not UTF-8", 400, "invalid_request")
            .auth(ok_basic.clone())
            .content_type(Some(JSON))
            .raw(b"{\"grant_type\": \"\xff\"}".to_vec()),
        Case::post("a form that is JSON", 400, "invalid_request")
            .auth(ok_basic.clone())
            .content_type(Some(FORM))
            .raw(r#"{"grant_type": "client_credentials"}"#),
        Case::post("text/plain", 415, "invalid_request")
            .auth(ok_basic.clone())
            .content_type(Some("text/plain"))
            .raw("grant_type=client_credentials"),
        Case::post("multipart", 415, "invalid_request")
            .auth(ok_basic.clone())
            .content_type(Some("multipart/form-data; boundary=x"))
            .raw("--x\r\n\r\n--x--"),
        Case::post("XML", 415, "invalid_request")
            .auth(ok_basic.clone())
            .content_type(Some("application/xml"))
            .raw("<grant_type>client_credentials</grant_type>"),
        Case::post("a body over 64 KiB", 413, "invalid_request")
            .auth(ok_basic.clone())
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", &"r".repeat(70 * 1024)),
            ]),
        Case::post("a JSON body over 64 KiB", 413, "invalid_request")
            .auth(ok_basic.clone())
            .content_type(Some(JSON))
            .raw(format!(r#"{{"grant_type": "{}"}}"#, "x".repeat(65 * 1024))),
        // Methods and paths.
        Case::post("GET on the token endpoint", 405, "invalid_request").method(Method::GET),
        Case::post("PUT on the token endpoint", 405, "invalid_request")
            .method(Method::PUT)
            .form(&grant),
        Case::post("GET on a realm's token endpoint", 405, "invalid_request")
            .method(Method::GET)
            .path("/realms/default/oauth2/token"),
        Case::post("GET on introspection", 405, "invalid_request")
            .method(Method::GET)
            .path("/oauth2/introspect"),
        Case::post("GET on revocation", 405, "invalid_request")
            .method(Method::GET)
            .path("/oauth2/revoke"),
        Case::post("POST to the JWKS", 405, "invalid_request").path("/.well-known/jwks.json"),
        Case::post("unknown path", 404, "not_found").path("/oauth3/token"),
        Case::post("unknown GET path", 404, "not_found")
            .method(Method::GET)
            .path("/nothing/here"),
        Case::post("unknown path under a realm", 404, "not_found")
            .path("/realms/default/oauth3/token"),
        Case::post("a path with a double slash", 404, "not_found").path("/oauth2//token"),
    ];
    check(&server, cases).await;

    // Two Authorization headers, each fine alone.
    let reply = server
        .send(
            server
                .request(Method::POST, "/oauth2/token")
                .header("authorization", &ok_basic)
                .header("authorization", &ok_basic)
                .form(&grant),
        )
        .await;
    reply.expect_oauth_error(400, "invalid_request");

    // The body limit is 64 KiB exactly: one byte more is too much.
    let base = form_body(&[("grant_type", "client_credentials"), ("scope", "read")]);
    let padding = 64 * 1024 - base.len() - "&pad=".len();
    let at_limit = format!("{base}&pad={}", "p".repeat(padding));
    assert_eq!(at_limit.len(), 64 * 1024);
    let reply = server
        .post_raw(
            "/oauth2/token",
            Some(FORM),
            Some(&ok_basic),
            at_limit.clone(),
        )
        .await;
    assert_eq!(reply.expect_token()["scope"], "read");
    let reply = server
        .post_raw(
            "/oauth2/token",
            Some(FORM),
            Some(&ok_basic),
            format!("{at_limit}p"),
        )
        .await;
    reply.expect_oauth_error(413, "invalid_request");

    // After all that, the application still gets tokens.
    server.fetch_token("", &id, &secret).await;
}

#[tokio::test]
async fn introspection_and_revocation_refuse_bad_input_alike() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let ok_basic = basic(&id, &secret);
    let mut cases = Vec::new();
    for path in ["/oauth2/introspect", "/oauth2/revoke"] {
        cases.extend([
            Case::post(format!("{path}: wrong secret"), 401, "invalid_client")
                .path(path)
                .auth(basic(&id, "wrong"))
                .form(&[("token", "t")])
                .challenge(true),
            Case::post(format!("{path}: no auth"), 401, "invalid_client")
                .path(path)
                .form(&[("token", "t")])
                .challenge(true),
            Case::post(format!("{path}: malformed Basic"), 400, "invalid_request")
                .path(path)
                .auth("Basic ***")
                .form(&[("token", "t")]),
            Case::post(format!("{path}: two methods"), 400, "invalid_request")
                .path(path)
                .auth(ok_basic.clone())
                .form(&[("token", "t"), ("client_secret", &secret)]),
            Case::post(format!("{path}: missing token"), 400, "invalid_request")
                .path(path)
                .auth(ok_basic.clone())
                .form(&[("token_type_hint", "access_token")]),
            Case::post(format!("{path}: repeated token"), 400, "invalid_request")
                .path(path)
                .auth(ok_basic.clone())
                .form(&[("token", "a"), ("token", "b")]),
            Case::post(format!("{path}: malformed JSON"), 400, "invalid_request")
                .path(path)
                .auth(ok_basic.clone())
                .content_type(Some(JSON))
                .raw("{\"token\":"),
            Case::post(format!("{path}: text/plain"), 415, "invalid_request")
                .path(path)
                .auth(ok_basic.clone())
                .content_type(Some("text/plain"))
                .raw("token=t"),
            Case::post(format!("{path}: too large"), 413, "invalid_request")
                .path(path)
                .auth(ok_basic.clone())
                .form(&[("token", &"t".repeat(70 * 1024))]),
        ]);
    }
    check(&server, cases).await;
}

#[tokio::test]
async fn a_repeated_key_in_a_json_body_is_invalid_request() {
    let server = TestServer::start().await;
    let (id, secret) = server.simple_app("default").await;
    let reply = server
        .post_raw(
            "/oauth2/token",
            Some(JSON),
            Some(&basic(&id, &secret)),
            r#"{"grant_type": "client_credentials", "scope": "read", "scope": "write"}"#,
        )
        .await;
    reply.expect_oauth_error(400, "invalid_request");
}
