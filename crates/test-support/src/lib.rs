//! What Tessera's test suites share, so that each helper exists once: PEM encoding for
//! key fixtures made in a test, (feature `postgres`) a schema or a database of one
//! test's own on the PostgreSQL server the suites use, and (feature `server`) a server
//! started in the test's own process.
//!
//! A dev-dependency only; test code, so it may stop at the first surprise.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "server")]
pub mod server;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// `der` as a PEM block with `label` (such as `PUBLIC KEY`), its body in lines of 64
/// characters as OpenSSL writes them.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bodies_are_wrapped_at_64_characters() {
        let text = pem("PUBLIC KEY", &[0xAB; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first(), Some(&"-----BEGIN PUBLIC KEY-----"));
        assert_eq!(lines.last(), Some(&"-----END PUBLIC KEY-----"));
        let lengths: Vec<usize> = lines.iter().map(|l| l.len()).collect();
        assert_eq!(lengths, [26, 64, 64, 8, 24]);
    }
}
