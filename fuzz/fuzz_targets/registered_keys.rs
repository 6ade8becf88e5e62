//! The public keys an application registers (`public_key` as PEM, `jwks`), read as the
//! admin API and the store's rows hand them to core, through the one PEM/DER reader.
//!
//! Input: `mode \0 rest`, the mode byte taken modulo 4. Mode 0: `rest` is the PEM
//! text; 1 and 2: `rest` is DER, put in a `PUBLIC KEY` or an `RSA PUBLIC KEY` block
//! here; 3: `rest` is the JWKS document.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use tessera_core::client_keys::{Jwks, PublicKeyPem};
use tessera_fuzz::fields;

fuzz_target!(|data: &[u8]| {
    let parts = fields(data, 2);
    let mode = parts[0].first().copied().unwrap_or(0) % 4;
    let rest = parts[1];
    if mode == 3 {
        let Ok(document) = serde_json::from_slice::<serde_json::Value>(rest) else {
            return;
        };
        match Jwks::parse("jwks", document) {
            Ok(jwks) => {
                assert!(!jwks.keys().is_empty(), "a JWKS without a usable key");
                // What the store writes must read back: a row that does not is corrupt.
                let stored = jwks.document().to_string();
                let document = serde_json::from_str(&stored).expect("stored JSON");
                let again = Jwks::parse("jwks", document).expect("a stored JWKS reads back");
                assert_eq!(again, jwks);
            }
            Err(err) => assert_eq!(err.field, "jwks"),
        }
        return;
    }
    let text = match mode {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => block("PUBLIC KEY", rest),
        _ => block("RSA PUBLIC KEY", rest),
    };
    match PublicKeyPem::parse("public_key", &text) {
        Ok(key) => {
            let again = PublicKeyPem::parse("public_key", key.as_str())
                .expect("a stored public key reads back");
            assert_eq!(again, key);
        }
        Err(err) => assert_eq!(err.field, "public_key"),
    }
});

fn block(label: &str, der: &[u8]) -> String {
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        STANDARD.encode(der)
    )
}
