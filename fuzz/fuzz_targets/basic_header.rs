//! The `Authorization` header alone: Basic credentials (RFC 6749 §2.3.1: base64 of
//! form-encoded id and secret), other schemes, and bearer tokens.
//!
//! Input: the header value as sent.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use tessera_fuzz::check_client_auth;
use tessera_server::fuzzing::Body;

fuzz_target!(|data: &[u8]| {
    let empty = Body::parse(&HeaderMap::new(), b"").expect("an empty body reads");
    for value in [
        data.to_vec(),
        [b"Basic ".as_slice(), &STANDARD.encode(data).into_bytes()].concat(),
    ] {
        let Ok(value) = HeaderValue::from_bytes(&value) else {
            continue;
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value);
        check_client_auth(&headers, &empty);
    }
});
