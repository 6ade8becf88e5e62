//! A server per test, and the small vocabulary the tests speak: admin calls, token
//! requests, introspection, `/verify`, and assertions on the answers.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, IntrospectionUrl, RevocationUrl,
    TokenUrl,
};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use tempfile::TempDir;
use tessera_server::{Config, Running};
use tessera_test_support::postgres::Schema;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
/// 40 characters; the server wants at least 32.
pub const MASTER_KEY: &str = "test-master-key-0123456789-abcdefghijklm";

/// The third-party OAuth client with token, introspection and revocation URLs set.
pub type OAuthClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointSet, EndpointSet, EndpointSet>;

/// The store the suite runs on: SQLite in the server's temporary data directory, or
/// with `TESSERA_TEST_STORE=postgres` a fresh schema on the PostgreSQL server at
/// `TESSERA_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
/// dropped with the server. `scripts/test.sh` runs the suite both ways.
fn postgres_wanted() -> bool {
    match std::env::var("TESSERA_TEST_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("TESSERA_TEST_STORE is sqlite or postgres, not {other}"),
    }
}

/// A server of its own, on ephemeral ports, with a fresh data directory.
pub struct TestServer {
    pub running: Running,
    /// A plain HTTP client that follows no redirects.
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT`, where the public listener is reached.
    pub base: String,
    /// `http://127.0.0.1:PORT` of the admin listener.
    pub admin_base: String,
    _dir: TempDir,
    _schema: Option<Schema>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.running.shutdown();
    }
}

/// A whole HTTP answer, read eagerly.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON, with `Content-Type: application/json`.
    pub fn json(&self) -> Value {
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "expected a JSON content type, got {content_type:?} (status {}, body {:?})",
            self.status,
            self.text()
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {}, body {:?}",
                self.status,
                self.text()
            )
        })
    }

    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body {:?}, headers {:?}",
            self.text(),
            self.headers
        );
        self
    }

    /// An RFC 6749 §5.2 error: the status, a JSON body whose `error` is `code`, an
    /// optional string `error_description`, nothing else, and `Cache-Control: no-store`.
    #[track_caller]
    pub fn expect_oauth_error(&self, status: u16, code: &str) -> Value {
        self.expect_status(status);
        let body = self.json();
        assert_eq!(body["error"], code, "body {body}");
        let object = body.as_object().expect("an error is a JSON object");
        for key in object.keys() {
            assert!(
                ["error", "error_description", "error_uri"].contains(&key.as_str()),
                "unexpected key {key} in {body}"
            );
        }
        if let Some(description) = object.get("error_description") {
            assert!(description.is_string(), "{body}");
        }
        assert_eq!(self.header("cache-control"), Some("no-store"), "{body}");
        body
    }

    /// A successful token response (RFC 6749 §5.1) with `Cache-Control: no-store`.
    /// Dialects may add fields (keycloak's `refresh_expires_in`), so others are allowed.
    #[track_caller]
    pub fn expect_token(&self) -> Value {
        self.expect_status(200);
        let body = self.json();
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.header("pragma"), Some("no-cache"));
        let token = body["access_token"].as_str().expect("access_token string");
        assert!(!token.is_empty());
        assert!(
            body["token_type"] == "Bearer" || body["token_type"] == "bearer",
            "{body}"
        );
        assert!(body["expires_in"].as_u64().is_some_and(|n| n > 0), "{body}");
        body
    }

    /// An active RFC 7662 answer with at least the fields docs/contract.md §3 names.
    #[track_caller]
    pub fn expect_active(&self) -> Value {
        self.expect_status(200);
        let body = self.json();
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(body["active"], true, "{body}");
        for key in ["client_id", "scope", "token_type", "iss"] {
            assert!(body[key].is_string(), "{key} in {body}");
        }
        for key in ["exp", "iat"] {
            assert!(body[key].is_i64(), "{key} in {body}");
        }
        body
    }

    /// An inactive RFC 7662 answer: exactly `{"active": false}`.
    #[track_caller]
    pub fn expect_inactive(&self) {
        self.expect_status(200);
        assert_eq!(self.json(), json!({"active": false}));
        assert_eq!(self.header("cache-control"), Some("no-store"));
    }

    /// An admin API error: the status, and a JSON body with `error` and `message`.
    #[track_caller]
    pub fn expect_admin_error(&self, status: u16, code: &str) -> Value {
        self.expect_status(status);
        let body = self.json();
        assert_eq!(body["error"], code, "{body}");
        assert!(body["message"].is_string(), "{body}");
        body
    }
}

/// `Authorization: Basic base64(id:secret)` with the parts as given.
pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// RFC 6749 §2.3.1: both parts form-urlencoded before they are joined and encoded.
pub fn basic_encoded(id: &str, secret: &str) -> String {
    basic(&form_encode(id), &form_encode(secret))
}

/// `application/x-www-form-urlencoded` encoding of one value: every byte but
/// `A-Z a-z 0-9 * - . _` is escaped, spaces too (as `%20`).
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'*' | b'-' | b'.' | b'_') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A form body from pairs, each part encoded.
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `exp - iat` is exactly the lifetime, as Keycloak, Hydra and node-oidc-provider write
/// it and as validators that compare the two expect.
#[track_caller]
pub fn assert_lifetime(claims: &Value, ttl: i64) {
    let exp = claims["exp"].as_i64().expect("exp");
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(exp - iat, ttl, "exp - iat for ttl {ttl}");
}

/// The admin API path of an application.
pub fn app(realm: &str, client_id: &str) -> String {
    format!("/admin/v1/realms/{realm}/applications/{client_id}")
}

pub fn now_s() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_secs()).expect("seconds fit")
}

pub const FORM: &str = "application/x-www-form-urlencoded";
pub const JSON: &str = "application/json";

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration `tweak` changed first.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let (schema, database_url) = if postgres_wanted() {
            let schema = Schema::create("tessera_http")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let url = schema.url().to_owned();
            (Some(schema), Some(url))
        } else {
            (None, None)
        };
        let started = tessera_test_support::server::start(ADMIN_KEY, MASTER_KEY, |config| {
            config.database_url = database_url;
            tweak(config);
        })
        .await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        Self {
            base: started.public_base(),
            admin_base: started.admin_base(),
            running: started.running,
            http,
            _dir: started.data_dir,
            _schema: schema,
        }
    }

    /// The configured public URL: the default realm's issuer.
    pub fn public_url(&self) -> String {
        self.running.public_url.to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin_base)
    }

    pub async fn send(&self, request: RequestBuilder) -> Reply {
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("a whole body").to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    /// POST of a raw body with a content type (none if `None`).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut request = self.request(Method::POST, path).body(body);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        self.send(request).await
    }

    /// POST of a form body, with `Authorization` if given.
    pub async fn post_form(
        &self,
        path: &str,
        authorization: Option<&str>,
        pairs: &[(&str, &str)],
    ) -> Reply {
        self.post_raw(path, Some(FORM), authorization, form_body(pairs))
            .await
    }

    /// POST of a JSON body, with `Authorization` if given.
    pub async fn post_json(&self, path: &str, authorization: Option<&str>, body: &Value) -> Reply {
        self.post_raw(path, Some(JSON), authorization, body.to_string())
            .await
    }

    /// A token request with Basic authentication and exactly the given form.
    pub async fn token_basic(
        &self,
        path: &str,
        id: &str,
        secret: &str,
        pairs: &[(&str, &str)],
    ) -> Reply {
        self.post_form(path, Some(&basic(id, secret)), pairs).await
    }

    /// A client-credentials token at `{prefix}/oauth2/token` (Basic), checked and returned.
    pub async fn fetch_token(&self, prefix: &str, id: &str, secret: &str) -> String {
        let reply = self
            .token_basic(
                &format!("{prefix}/oauth2/token"),
                id,
                secret,
                &[("grant_type", "client_credentials")],
            )
            .await;
        reply.expect_token()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A client-credentials grant at the root (Basic), checked: the whole response.
    pub async fn grant(&self, id: &str, secret: &str) -> Value {
        self.token_basic(
            "/oauth2/token",
            id,
            secret,
            &[("grant_type", "client_credentials")],
        )
        .await
        .expect_token()
    }

    /// A refresh-token grant at the root (Basic), not checked.
    pub async fn refresh(&self, id: &str, secret: &str, refresh_token: &str) -> Reply {
        self.token_basic(
            "/oauth2/token",
            id,
            secret,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// Introspection at `{prefix}/oauth2/introspect`, the caller authenticated by Basic.
    pub async fn introspect(&self, prefix: &str, id: &str, secret: &str, token: &str) -> Reply {
        self.post_form(
            &format!("{prefix}/oauth2/introspect"),
            Some(&basic(id, secret)),
            &[("token", token)],
        )
        .await
    }

    /// Revocation at `{prefix}/oauth2/revoke`, the caller authenticated by Basic.
    pub async fn revoke(&self, prefix: &str, id: &str, secret: &str, token: &str) -> Reply {
        self.post_form(
            &format!("{prefix}/oauth2/revoke"),
            Some(&basic(id, secret)),
            &[("token", token)],
        )
        .await
    }

    /// `GET {prefix}/verify` with `Authorization: Bearer token`.
    pub async fn verify(&self, prefix: &str, token: &str) -> Reply {
        self.send(
            self.request(Method::GET, &format!("{prefix}/verify"))
                .bearer_auth(token),
        )
        .await
    }

    /// Asserts that `token` is alive at `{prefix}`: introspection and `/verify` agree.
    pub async fn assert_alive(&self, prefix: &str, id: &str, secret: &str, token: &str) -> Value {
        let body = self
            .introspect(prefix, id, secret, token)
            .await
            .expect_active();
        let verify = self.verify(prefix, token).await;
        verify.expect_status(200);
        assert_eq!(verify.header("x-client-id"), body["client_id"].as_str());
        body
    }

    /// Asserts that `token` is dead at `{prefix}`, asking as client `id`.
    pub async fn assert_dead(&self, prefix: &str, id: &str, secret: &str, token: &str) {
        self.introspect(prefix, id, secret, token)
            .await
            .expect_inactive();
        expect_verify_refused(&self.verify(prefix, token).await);
    }

    // ----- admin ----------------------------------------------------------------------

    /// An admin call with the right key and, if given, a JSON body.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .http
            .request(method, self.admin_url(path))
            .bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, JSON)
                .body(body.to_string());
        }
        self.send(request).await
    }

    /// An admin call with the given `Authorization` (or none) and a raw body.
    pub async fn admin_raw(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut request = self.http.request(method, self.admin_url(path));
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        if let Some(body) = body {
            request = request.header(header::CONTENT_TYPE, JSON).body(body);
        }
        self.send(request).await
    }

    /// Creates a realm and returns its view (201).
    pub async fn create_realm(&self, body: Value) -> Value {
        let reply = self
            .admin(Method::POST, "/admin/v1/realms", Some(body))
            .await;
        reply.expect_status(201);
        reply.json()
    }

    /// Creates an application and returns the whole answer (201), secret included.
    pub async fn create_app_view(&self, realm: &str, body: Value) -> Value {
        let reply = self
            .admin(
                Method::POST,
                &format!("/admin/v1/realms/{realm}/applications"),
                Some(body),
            )
            .await;
        reply.expect_status(201);
        reply.json()
    }

    /// Creates an application; its client id and secret.
    pub async fn create_app(&self, realm: &str, body: Value) -> (String, String) {
        let view = self.create_app_view(realm, body).await;
        (
            view["client_id"].as_str().expect("client_id").to_owned(),
            view["client_secret"]
                .as_str()
                .expect("client_secret")
                .to_owned(),
        )
    }

    /// The `kid`s of the default realm's JWKS.
    pub async fn jwks_kids(&self) -> Vec<Value> {
        let reply = self.get("/.well-known/jwks.json").await;
        reply.expect_status(200);
        reply.json()["keys"]
            .as_array()
            .expect("a key list")
            .iter()
            .map(|k| k["kid"].clone())
            .collect()
    }

    /// An application with scopes `read write` in `realm`.
    pub async fn simple_app(&self, realm: &str) -> (String, String) {
        self.create_app(realm, json!({"name": "svc", "scopes": ["read", "write"]}))
            .await
    }

    /// The third-party `oauth2` client for `{prefix}`'s endpoints.
    pub fn oauth_client(
        &self,
        prefix: &str,
        id: &str,
        secret: &str,
        auth_type: AuthType,
    ) -> OAuthClient {
        BasicClient::new(ClientId::new(id.to_owned()))
            .set_client_secret(ClientSecret::new(secret.to_owned()))
            .set_auth_type(auth_type)
            .set_token_uri(
                TokenUrl::new(self.url(&format!("{prefix}/oauth2/token"))).expect("token URL"),
            )
            .set_introspection_url(
                IntrospectionUrl::new(self.url(&format!("{prefix}/oauth2/introspect")))
                    .expect("introspection URL"),
            )
            .set_revocation_url(
                // The crate refuses a revocation URL that is not HTTPS (RFC 7009 §2):
                // give it one, and send it as plain HTTP with `plain_http`.
                RevocationUrl::new(
                    self.url(&format!("{prefix}/oauth2/revoke"))
                        .replacen("http://", "https://", 1),
                )
                .expect("revocation URL"),
            )
    }
}

/// The `oauth2` crate's HTTP client for revocation: the `https://` URL it insists on
/// is sent as `http://` to the test server on loopback.
pub async fn plain_http(
    http: reqwest::Client,
    mut request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>> {
    let url = request.uri().to_string();
    if let Some(rest) = url.strip_prefix("https://") {
        match format!("http://{rest}").parse() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(e) => return Err(oauth2::HttpClientError::Other(format!("{e}"))),
        }
    }
    oauth2::AsyncHttpClient::call(&http, request).await
}

/// Asserts that `value` is an object with at least `keys`.
#[track_caller]
pub fn assert_has_keys(value: &Value, keys: &[&str]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"));
    for key in keys {
        assert!(object.contains_key(*key), "{key} missing in {value}");
    }
}

/// `/verify` refused the token: 401 with the RFC 6750 challenge.
#[track_caller]
pub fn expect_verify_refused(reply: &Reply) {
    reply.expect_status(401);
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\""),
    );
    assert!(reply.header("x-client-id").is_none());
    assert!(reply.header("x-scope").is_none());
    assert!(reply.header("x-realm").is_none());
}

/// The claims part of a JWT, not verified (for tests that verify elsewhere).
pub fn jwt_claims(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url claims");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The set of space-separated words of a scope string.
pub fn scope_set(scope: &str) -> std::collections::BTreeSet<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
