//! A small seeded fuzz test: a few thousand random requests (random bytes, random form
//! and JSON bodies, random headers) to the token, introspection and revocation
//! endpoints. Every answer must be JSON with a status under 500, and the server must
//! still answer afterwards.
//!
//! `TESSERA_FUZZ_SEED` and `TESSERA_FUZZ_CASES` override the seed and the count.

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use crate::harness::{TestServer, basic, form_encode};

/// xorshift64*: small, seeded, good enough to pick test inputs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).expect("fits")
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| (self.next() >> 24) as u8).collect()
    }

    /// Text mixing ASCII, escapes, separators, and a little Unicode.
    fn text(&mut self, max: usize) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "0",
            " ",
            "+",
            "%",
            "%20",
            "%3A",
            "%00",
            "%ZZ",
            "%C3%A9",
            "%FF",
            "&",
            "=",
            ":",
            ";",
            ",",
            "\"",
            "'",
            "\\",
            "/",
            "{",
            "}",
            "[",
            "]",
            "\u{e9}",
            "\u{1f600}",
            "\u{0}",
            "\n",
            "\r\n",
            "\t",
            "client_credentials",
            "Basic ",
            "Bearer ",
            "tsr_at_",
            "eyJ",
            ".",
            "..",
            "null",
            "true",
            "-1",
            "1e999",
        ];
        let count = self.below(max + 1);
        (0..count).map(|_| *self.pick(PIECES)).collect()
    }

    /// A visible-ASCII string (what a header value can hold), sometimes with bytes
    /// above 0x7f.
    fn header_text(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len)
            .map(|_| {
                if self.chance(3) {
                    0x80 + (self.next() % 0x80) as u8
                } else {
                    0x20 + (self.next() % 0x5f) as u8
                }
            })
            .collect()
    }
}

const PATHS: &[&str] = &[
    "/oauth2/token",
    "/oauth2/token/",
    "/oauth/token",
    "/passport/oauth/token",
    "/v2/token",
    "/protocol/openid-connect/token",
    "/oauth2/introspect",
    "/protocol/openid-connect/token/introspect",
    "/oauth2/revoke",
    "/protocol/openid-connect/revoke",
    "/realms/default/oauth2/token",
    "/realms/fuzz/oauth2/token",
    "/realms/fuzz/oauth2/introspect",
    "/realms/fuzz/oauth2/revoke",
    "/auth/realms/fuzz/protocol/openid-connect/token",
    "/auth/realms/fuzz/protocol/openid-connect/token/introspect",
    "/auth/realms/fuzz/protocol/openid-connect/revoke",
    "/realms/nope/oauth2/token",
    "/realms/Fuzz/oauth2/introspect",
];

const KEYS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "resource",
    "token",
    "token_type_hint",
    "client_assertion",
    "client_assertion_type",
    "refresh_token",
    "audience",
    "",
];

const CONTENT_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=UTF-8",
    "application/json",
    "application/json; charset=utf-16",
    "application/jwt+json",
    "APPLICATION/JSON",
    "text/plain",
    "multipart/form-data; boundary=zz",
    "*/*",
    "",
    ";",
    "application/x-www-form-urlencoded;;;;",
];

/// What the fuzzer knows that makes requests go deeper than client authentication.
struct Known {
    id: String,
    secret: String,
    fuzz_id: String,
    fuzz_secret: String,
    tokens: Vec<String>,
}

fn value(rng: &mut Rng, known: &Known) -> String {
    match rng.below(10) {
        0 => "client_credentials".to_owned(),
        1 => known.id.clone(),
        2 => known.secret.clone(),
        3 => known.fuzz_id.clone(),
        4 => known.fuzz_secret.clone(),
        5 => rng.pick(&known.tokens).clone(),
        6 => rng
            .pick(&["read", "write", "read write", "admin", "refresh_token"])
            .to_string(),
        7 => "x".repeat(rng.below(5000)),
        _ => rng.text(20),
    }
}

fn json_value(rng: &mut Rng, known: &Known, depth: usize) -> Value {
    match rng.below(if depth > 2 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next() as i64),
        3 => json!((rng.next() % 1000) as f64 / 7.0),
        4 | 5 => json!(value(rng, known)),
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| json_value(rng, known, depth + 1))
                .collect(),
        ),
        _ => json_object(rng, known, depth + 1),
    }
}

fn json_object(rng: &mut Rng, known: &Known, depth: usize) -> Value {
    let mut map = Map::new();
    for _ in 0..rng.below(6) {
        let key = if rng.chance(80) {
            rng.pick(KEYS).to_string()
        } else {
            rng.text(6)
        };
        map.insert(key, json_value(rng, known, depth));
    }
    Value::Object(map)
}

fn form(rng: &mut Rng, known: &Known) -> Vec<u8> {
    let mut parts = Vec::new();
    for _ in 0..rng.below(7) {
        let key = if rng.chance(85) {
            rng.pick(KEYS).to_string()
        } else {
            rng.text(6)
        };
        let value = value(rng, known);
        // Mostly encoded as a client would; sometimes raw.
        if rng.chance(80) {
            parts.push(format!("{}={}", form_encode(&key), form_encode(&value)));
        } else {
            parts.push(format!("{key}={value}"));
        }
    }
    let separator = if rng.chance(90) { "&" } else { ";" };
    parts.join(separator).into_bytes()
}

fn authorization(rng: &mut Rng, known: &Known) -> Option<Vec<u8>> {
    let value = match rng.below(9) {
        0 | 1 => return None,
        2 => basic(&known.id, &known.secret).into_bytes(),
        3 => basic(&known.fuzz_id, &known.fuzz_secret).into_bytes(),
        4 => format!("Basic {}", STANDARD.encode(rng.bytes(40))).into_bytes(),
        5 => format!(
            "{}Basic {}",
            " ".repeat(rng.below(3)),
            STANDARD.encode(format!("{}:{}", rng.text(8), rng.text(8)))
        )
        .into_bytes(),
        6 => format!("Bearer {}", rng.pick(&known.tokens)).into_bytes(),
        _ => rng.header_text(60),
    };
    Some(value)
}

/// One random request: method, path, headers and body.
fn request(rng: &mut Rng, server: &TestServer, known: &Known) -> (reqwest::RequestBuilder, String) {
    let method = if rng.chance(92) {
        Method::POST
    } else {
        rng.pick(&[Method::GET, Method::PUT, Method::DELETE, Method::PATCH])
            .clone()
    };
    let path = *rng.pick(PATHS);
    let mut description = format!("{method} {path}");
    let mut builder = server.request(method, path);

    if let Some(value) = authorization(rng, known)
        && let Ok(value) = HeaderValue::from_bytes(&value)
    {
        description.push_str(&format!(" authorization={value:?}"));
        builder = builder.header("authorization", value);
    }
    let kind = rng.below(5);
    let (default_type, body) = match kind {
        0 => (None, rng.bytes(300)),
        1 => (Some("application/x-www-form-urlencoded"), form(rng, known)),
        2 => (
            Some("application/json"),
            json_object(rng, known, 0).to_string().into_bytes(),
        ),
        3 => (
            Some("application/json"),
            json_value(rng, known, 0).to_string().into_bytes(),
        ),
        _ => {
            // Nearly right: a working request with one thing changed.
            let mut pairs = vec![
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                ("token".to_owned(), rng.pick(&known.tokens).clone()),
            ];
            let key = rng.pick(KEYS).to_string();
            pairs.push((key, value(rng, known)));
            let body = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            (Some("application/x-www-form-urlencoded"), body.into_bytes())
        }
    };
    let content_type = if rng.chance(75) {
        default_type.map(str::to_owned)
    } else if rng.chance(60) {
        Some(rng.pick(CONTENT_TYPES).to_string())
    } else {
        None
    };
    if let Some(content_type) = content_type
        && let Ok(value) = HeaderValue::from_str(&content_type)
    {
        description.push_str(&format!(" content-type={value:?}"));
        builder = builder.header("content-type", value);
    }
    for _ in 0..rng.below(3) {
        let name = rng.pick(&[
            "accept",
            "accept-encoding",
            "content-encoding",
            "x-forwarded-for",
            "x-forwarded-host",
            "host",
            "cookie",
            "origin",
            "user-agent",
            "x-random",
        ]);
        let value = rng.header_text(40);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            description.push_str(&format!(" {name}={value:?}"));
            builder = builder.header(name, value);
        }
    }
    description.push_str(&format!(" body={:?}", String::from_utf8_lossy(&body)));
    (builder.body(body), description)
}

#[tokio::test]
async fn random_requests_never_break_the_server() {
    let seed = std::env::var("TESSERA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7e55_e7a0_5eed_0001_u64);
    let cases: usize = std::env::var("TESSERA_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let server = TestServer::start().await;
    server
        .create_realm(json!({"name": "fuzz", "token_format": "opaque", "token_prefix": "fz_"}))
        .await;
    let (id, secret) = server
        .create_app(
            "default",
            json!({"name": "f", "scopes": ["read", "write"], "audiences": ["https://a"]}),
        )
        .await;
    let (fuzz_id, fuzz_secret) = server.simple_app("fuzz").await;
    let tokens = vec![
        server.fetch_token("", &id, &secret).await,
        server
            .fetch_token("/realms/fuzz", &fuzz_id, &fuzz_secret)
            .await,
        "garbage".to_owned(),
    ];
    let known = Known {
        id,
        secret,
        fuzz_id,
        fuzz_secret,
        tokens,
    };

    let mut rng = Rng::new(seed);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..cases {
        let (builder, description) = request(&mut rng, &server, &known);
        let reply = server.send(builder).await;
        *statuses.entry(reply.status).or_default() += 1;
        let context = format!("seed {seed:#x}, case {i}: {description}");
        assert!(
            reply.status < 500,
            "{context}\n-> {} {:?}",
            reply.status,
            reply.text()
        );
        let revoked = reply.status == 200 && description.contains("revoke ");
        if revoked && reply.body.is_empty() {
            continue;
        }
        let content_type = reply.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "{context}\n-> {} {content_type:?} {:?}",
            reply.status,
            reply.text()
        );
        let body: Value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|e| panic!("{context}\n-> not JSON ({e}): {:?}", reply.text()));
        if reply.status >= 400 {
            assert!(body["error"].is_string(), "{context}\n-> {body}");
        }
    }
    eprintln!("fuzz: seed {seed:#x}, {cases} requests, statuses {statuses:?}");
    assert!(
        statuses.contains_key(&200),
        "some requests should have succeeded: {statuses:?}"
    );

    // Garbage that is not even HTTP, straight on the socket.
    let addr = server.running.public_addr;
    let garbage: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            let mut bytes = rng.bytes(400);
            if i % 2 == 0 {
                let mut head = b"POST /oauth2/token HTTP/1.1\r\nContent-Length: 5\r\n".to_vec();
                head.extend_from_slice(&bytes);
                bytes = head;
            }
            bytes
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        for bytes in garbage {
            let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
                panic!("cannot connect to {addr}");
            };
            stream
                .set_read_timeout(Some(Duration::from_millis(300)))
                .expect("timeout");
            let _ = stream.write_all(&bytes);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            assert!(
                !answer.starts_with(b"HTTP/1.1 5"),
                "{:?} -> {:?}",
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&answer)
            );
        }
    })
    .await
    .expect("the raw phase ran");

    // The server still answers, and still works.
    let health = server.get("/healthz").await;
    health.expect_status(200);
    assert_eq!(health.json(), json!({"status": "ok"}));
    let token = server.fetch_token("", &known.id, &known.secret).await;
    server
        .assert_alive("", &known.id, &known.secret, &token)
        .await;
}
