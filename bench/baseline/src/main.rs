//! Baseline servers for Tessera's load benchmark (`bench/run.sh`, see `bench/README.md`).
//!
//! `tessera-bench-baseline bare ADDR` answers `POST /oauth2/token` after doing the HTTP
//! work Tessera's token endpoint cannot avoid: it decodes the `Authorization: Basic`
//! header and parses the form body with `serde_urlencoded`, then answers a fixed JSON
//! body. `tessera-bench-baseline sign ADDR` does the same plus one ES256 signature over a
//! JWT-sized message per request, and answers that message with the base64url signature
//! appended, as a JWT would be. The ratio of Tessera's throughput to these two is what
//! the benchmark reports: what Tessera costs beyond the floor set by axum, hyper and
//! one signature on the same machine in the same run.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// The same global allocator as the `tessera` binary, so that the baselines and Tessera
/// pay the same price for the buffers hyper and axum allocate per request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: tessera-bench-baseline (bare|sign) LISTEN_ADDR   e.g. bare 127.0.0.1:0";

/// The whole answer of `bare`; `bench/run.sh` checks every response body against it.
const BARE_BODY: &str =
    r#"{"access_token":"tessera-bench-baseline","token_type":"Bearer","expires_in":3600}"#;

/// What follows the token in every answer of `sign`; `bench/run.sh` checks for it.
const SIGN_BODY_END: &str = r#"","token_type":"Bearer","expires_in":3600}"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bare,
    Sign,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, addr) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(mode, addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(args: &[String]) -> Result<(Mode, SocketAddr), String> {
    let [mode, addr] = args else {
        return Err("expected two arguments".to_owned());
    };
    let mode = match mode.as_str() {
        "bare" => Mode::Bare,
        "sign" => Mode::Sign,
        other => return Err(format!("unknown mode {other:?}")),
    };
    let addr = addr
        .parse()
        .map_err(|e| format!("bad listen address {addr:?}: {e}"))?;
    Ok((mode, addr))
}

async fn serve(mode: Mode, addr: SocketAddr) -> Result<(), String> {
    let app = match mode {
        Mode::Bare => Router::new().route("/oauth2/token", post(bare)),
        Mode::Sign => Router::new()
            .route("/oauth2/token", post(sign))
            .with_state(Arc::new(Signer::generate()?)),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    // bench/run.sh reads the bound address (the port may have been 0) off this line.
    println!(
        "tessera-bench-baseline {} listening on {bound}",
        match mode {
            Mode::Bare => "bare",
            Mode::Sign => "sign",
        }
    );
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server failed: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// The parts of a token request Tessera reads before it looks anything up.
#[derive(Debug, PartialEq, Eq)]
struct TokenRequest {
    client_id: String,
    secret: String,
    params: Vec<(String, String)>,
}

/// Decodes `Authorization: Basic` and the form body, as Tessera's token endpoint does
/// (without its percent-decoding of the id and secret, which costs next to nothing).
fn parse_request(headers: &HeaderMap, body: &[u8]) -> Option<TokenRequest> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let encoded = encoded.trim();
    let decoded = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (client_id, secret) = decoded.split_once(':')?;
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    let grant = params.iter().find(|(name, _)| name == "grant_type")?;
    if grant.1 != "client_credentials" {
        return None;
    }
    Some(TokenRequest {
        client_id: client_id.to_owned(),
        secret: secret.to_owned(),
        params,
    })
}

/// The headers Tessera's token endpoint answers with.
fn json_no_store(body: impl IntoResponse) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

fn bad_request() -> Response {
    (
        StatusCode::BAD_REQUEST,
        json_no_store(r#"{"error":"invalid_request"}"#),
    )
        .into_response()
}

async fn bare(headers: HeaderMap, body: Bytes) -> Response {
    match parse_request(&headers, &body) {
        Some(_) => json_no_store(BARE_BODY),
        None => bad_request(),
    }
}

async fn sign(State(signer): State<Arc<Signer>>, headers: HeaderMap, body: Bytes) -> Response {
    if parse_request(&headers, &body).is_none() {
        return bad_request();
    }
    match signer.token_response() {
        Some(body) => json_no_store(body),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "signing failed").into_response(),
    }
}

/// An ES256 key made at start, and the signing input of a JWT the size of Tessera's.
struct Signer {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    signing_input: String,
}

impl Signer {
    fn generate() -> Result<Self, String> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "cannot generate an ES256 key".to_owned())?;
        // Shaped like Tessera's at+jwt for a client of the default realm.
        let header = serde_json::json!({
            "alg": "ES256",
            "typ": "at+jwt",
            "kid": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        });
        let claims = serde_json::json!({
            "iss": "http://127.0.0.1:41234",
            "sub": "tsr_cl_0123456789abcdefghijklmn",
            "aud": "http://127.0.0.1:41234",
            "exp": 1_900_003_600_i64,
            "iat": 1_900_000_000_i64,
            "jti": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "client_id": "tsr_cl_0123456789abcdefghijklmn",
            "scope": "",
        });
        let mut signing_input = URL_SAFE_NO_PAD.encode(header.to_string());
        signing_input.push('.');
        signing_input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        Ok(Self {
            pair,
            rng: SystemRandom::new(),
            signing_input,
        })
    }

    /// `{"access_token":"<signing input>.<signature>", …}` with a fresh signature.
    fn token_response(&self) -> Option<String> {
        let signature = self
            .pair
            .sign(&self.rng, self.signing_input.as_bytes())
            .ok()?;
        let mut body = String::with_capacity(self.signing_input.len() + 160);
        body.push_str(r#"{"access_token":""#);
        body.push_str(&self.signing_input);
        body.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut body);
        body.push_str(SIGN_BODY_END);
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, KeyPair, UnparsedPublicKey};

    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).unwrap(),
        );
        map
    }

    #[test]
    fn parses_basic_and_form_like_the_token_endpoint() {
        let value = format!("Basic {}", STANDARD.encode("id:se:cret"));
        let parsed =
            parse_request(&headers(&value), b"grant_type=client_credentials&scope=a+b").unwrap();
        assert_eq!(parsed.client_id, "id");
        assert_eq!(parsed.secret, "se:cret");
        assert_eq!(parsed.params[1], ("scope".to_owned(), "a b".to_owned()));
        assert!(parse_request(&headers(&value), b"grant_type=password").is_none());
        assert!(parse_request(&headers("Basic !!!"), b"grant_type=client_credentials").is_none());
        assert!(parse_request(&HeaderMap::new(), b"grant_type=client_credentials").is_none());
    }

    #[test]
    fn sign_answers_a_verifiable_jwt() {
        let signer = Signer::generate().unwrap();
        let body = signer.token_response().unwrap();
        assert!(body.ends_with(SIGN_BODY_END));
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let token = json["access_token"].as_str().unwrap();
        let (input, signature) = token.rsplit_once('.').unwrap();
        assert_eq!(input, signer.signing_input);
        assert!(token.len() > 400, "JWT-sized: {}", token.len());
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, signer.pair.public_key())
            .verify(input.as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn arguments_choose_mode_and_address() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_args(&args(&["sign", "127.0.0.1:0"])).unwrap().0,
            Mode::Sign
        );
        assert!(parse_args(&args(&["bare"])).is_err());
        assert!(parse_args(&args(&["fast", "127.0.0.1:0"])).is_err());
        assert!(parse_args(&args(&["bare", "nowhere"])).is_err());
    }
}
