//! Public keys that applications register (PEM or JWKS), for `private_key_jwt`
//! assertions and signed credentials (D1).

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use num_bigint::BigUint;

use crate::crypto::b64url_decode;
use crate::error::FieldError;

/// One verifying key of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKey {
    Rsa {
        kid: Option<String>,
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed P-256 point (`0x04 || x || y`).
    EcP256 {
        kid: Option<String>,
        point: Vec<u8>,
    },
    Ed25519 {
        kid: Option<String>,
        x: Vec<u8>,
    },
}

/// The JWS algorithms accepted in client assertions; `none` and HMAC never are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionAlg {
    Rs256,
    Es256,
    EdDsa,
}

impl AssertionAlg {
    pub fn parse(alg: &str) -> Option<Self> {
        match alg {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            // RFC 9864 gives EdDSA over Ed25519 the name "Ed25519".
            "EdDSA" | "Ed25519" => Some(Self::EdDsa),
            _ => None,
        }
    }

    pub const NAMES: [&'static str; 4] = ["RS256", "ES256", "EdDSA", "Ed25519"];
}

impl ClientKey {
    pub fn kid(&self) -> Option<&str> {
        match self {
            Self::Rsa { kid, .. } | Self::EcP256 { kid, .. } | Self::Ed25519 { kid, .. } => {
                kid.as_deref()
            }
        }
    }

    /// Verifies a JWS signature made with `alg`; a key of another type never verifies.
    pub fn verify(&self, alg: AssertionAlg, message: &[u8], signature: &[u8]) -> bool {
        match (self, alg) {
            (Self::Rsa { n, e, .. }, AssertionAlg::Rs256) => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
            (Self::EcP256 { point, .. }, AssertionAlg::Es256) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (Self::Ed25519 { x, .. }, AssertionAlg::EdDsa) => UnparsedPublicKey::new(&ED25519, x)
                .verify(message, signature)
                .is_ok(),
            _ => false,
        }
    }

    /// Why an RSA key is not one to trust, if it is not: a modulus outside 2048 to 8192
    /// bits (what signature verification accepts, and small ones are factored), an even
    /// modulus, or a public exponent that is even, below 3 or over 32 bits (`e = 1` makes
    /// "signing" the identity: anyone could forge a signed credential).
    pub fn weakness(&self) -> Option<&'static str> {
        let Self::Rsa { n, e, .. } = self else {
            return None;
        };
        let bits = BigUint::from_bytes_be(n).bits();
        if !(2048..=8192).contains(&bits) {
            return Some("an RSA modulus must be 2048 to 8192 bits");
        }
        if n.last().is_none_or(|b| b % 2 == 0) {
            return Some("an RSA modulus must be odd");
        }
        let exponent = BigUint::from_bytes_be(e);
        if exponent < BigUint::from(3u8)
            || e.last().is_none_or(|b| b % 2 == 0)
            || exponent.bits() > 32
        {
            return Some("an RSA public exponent must be odd, at least 3 and at most 32 bits");
        }
        None
    }

    /// The modulus length in bits, for an RSA key.
    pub fn rsa_bits(&self) -> Option<u64> {
        match self {
            Self::Rsa { n, .. } => Some(BigUint::from_bytes_be(n).bits()),
            _ => None,
        }
    }

    /// Recovers the message of a PKCS#1 v1.5 type-1 block made with the private key and
    /// no digest (what OpenSSL's `RSA_private_encrypt` with PKCS#1 padding produces).
    pub fn rsa_recover(&self, block: &[u8]) -> Option<Vec<u8>> {
        let Self::Rsa { n, e, .. } = self else {
            return None;
        };
        let modulus = BigUint::from_bytes_be(n);
        let k = usize::try_from(modulus.bits().div_ceil(8)).ok()?;
        if block.len() != k {
            return None;
        }
        let s = BigUint::from_bytes_be(block);
        if s >= modulus {
            return None;
        }
        let m = s.modpow(&BigUint::from_bytes_be(e), &modulus).to_bytes_be();
        // Encoded message: 0x00 0x01 0xFF{8,} 0x00 data (the leading zero is implicit).
        let mut em = vec![0u8; k.checked_sub(m.len())?];
        em.extend_from_slice(&m);
        let rest = em.strip_prefix(&[0x00, 0x01])?;
        let pad = rest.iter().take_while(|b| **b == 0xFF).count();
        if pad < 8 {
            return None;
        }
        let rest = rest.get(pad..)?.strip_prefix(&[0x00])?;
        Some(rest.to_vec())
    }
}

/// Parses a PEM public key: `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo: RSA, P-256 or
/// Ed25519) or `BEGIN RSA PUBLIC KEY` (PKCS#1).
pub fn parse_pem(field: &str, pem: &str) -> Result<ClientKey, FieldError> {
    let bad = |why: &str| FieldError::new(field, format!("not a usable public key: {why}"));
    let text = pem.trim();
    let (label, body) = pem_body(text).ok_or_else(|| bad("no PEM block"))?;
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| bad("the PEM body is not base64"))?;
    let key = match label {
        "PUBLIC KEY" => parse_spki(&der),
        "RSA PUBLIC KEY" => parse_pkcs1(&der, None),
        _ => None,
    }
    .ok_or_else(|| bad("unsupported or malformed key (RSA, P-256 and Ed25519 are supported)"))?;
    if let Some(why) = key.weakness() {
        return Err(bad(why));
    }
    Ok(key)
}

fn pem_body(text: &str) -> Option<(&str, String)> {
    let begin = text.strip_prefix("-----BEGIN ")?;
    let (label, rest) = begin.split_once("-----")?;
    let end_marker = format!("-----END {label}-----");
    let body = rest.trim_end().strip_suffix(end_marker.as_str())?;
    Some((label, body.split_whitespace().collect()))
}

/// The keys of a JWKS document that Tessera can use; others are skipped.
pub fn parse_jwks(field: &str, jwks: &serde_json::Value) -> Result<Vec<ClientKey>, FieldError> {
    let keys = jwks
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| FieldError::new(field, "a JWKS is an object with a \"keys\" array"))?;
    let mut out = Vec::new();
    for jwk in keys {
        let text = |name: &str| jwk.get(name).and_then(|v| v.as_str());
        let bytes = |name: &str| text(name).and_then(b64url_decode);
        let kid = text("kid").map(str::to_owned);
        let key = match (text("kty"), text("crv")) {
            (Some("RSA"), _) => {
                bytes("n")
                    .zip(bytes("e"))
                    .map(|(n, e)| ClientKey::Rsa { kid, n, e })
            }
            (Some("EC"), Some("P-256")) => bytes("x").zip(bytes("y")).and_then(|(x, y)| {
                (x.len() == 32 && y.len() == 32).then(|| {
                    let mut point = vec![0x04];
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    ClientKey::EcP256 { kid, point }
                })
            }),
            (Some("OKP"), Some("Ed25519")) => bytes("x")
                .filter(|x| x.len() == 32)
                .map(|x| ClientKey::Ed25519 { kid, x }),
            _ => None,
        };
        if let Some(why) = key.as_ref().and_then(ClientKey::weakness) {
            return Err(FieldError::new(
                field,
                format!("a JWK in the set is not usable: {why}"),
            ));
        }
        match key {
            Some(key) => out.push(key),
            None if matches!(text("kty"), Some("RSA" | "EC" | "OKP")) => {
                return Err(FieldError::new(field, "a JWK in the set is malformed"));
            }
            None => {}
        }
    }
    if out.is_empty() {
        return Err(FieldError::new(
            field,
            "the JWKS holds no RSA, P-256 or Ed25519 key",
        ));
    }
    Ok(out)
}

// ----- a minimal DER reader: just enough for public keys -------------------------------

const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x2B, 0x65, 0x70];

/// Reads one tag-length-value; returns the tag, the content and what follows.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 3 {
            return None;
        }
        let (len_bytes, rest) = rest.split_at_checked(count)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, content, rest) = tlv(input)?;
    (found == tag).then_some((content, rest))
}

fn parse_spki(der: &[u8]) -> Option<ClientKey> {
    let (spki, _) = expect(der, 0x30)?;
    let (alg_id, rest) = expect(spki, 0x30)?;
    let (bits, _) = expect(rest, 0x03)?;
    let key_bytes = bits.strip_prefix(&[0x00])?;
    let (oid, params) = expect(alg_id, 0x06)?;
    match oid {
        OID_RSA => parse_pkcs1(key_bytes, None),
        OID_EC => {
            let (curve, _) = expect(params, 0x06)?;
            (curve == OID_P256 && key_bytes.len() == 65 && key_bytes.first() == Some(&0x04)).then(
                || ClientKey::EcP256 {
                    kid: None,
                    point: key_bytes.to_vec(),
                },
            )
        }
        OID_ED25519 => (key_bytes.len() == 32).then(|| ClientKey::Ed25519 {
            kid: None,
            x: key_bytes.to_vec(),
        }),
        _ => None,
    }
}

fn parse_pkcs1(der: &[u8], kid: Option<String>) -> Option<ClientKey> {
    let (seq, _) = expect(der, 0x30)?;
    let (n, rest) = expect(seq, 0x02)?;
    let (e, _) = expect(rest, 0x02)?;
    let strip = |v: &[u8]| {
        let start = v.iter().take_while(|b| **b == 0).count();
        v.get(start..).map(<[u8]>::to_vec)
    };
    Some(ClientKey::Rsa {
        kid,
        n: strip(n)?,
        e: strip(e)?,
    })
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, RsaKeyPair};

    use super::*;

    fn pem(label: &str, der: &[u8]) -> String {
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

    #[test]
    fn rsa_spki_parses_and_rejects_junk_blocks() {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let spki = pair.public_key().as_der().unwrap();
        let key = parse_pem("public_key", &pem("PUBLIC KEY", spki.as_ref())).unwrap();
        assert_eq!(key.rsa_bits(), Some(2048));
        assert!(key.rsa_recover(&[0u8; 10]).is_none());
        assert!(key.rsa_recover(&[0xFFu8; 256]).is_none());
        assert!(key.rsa_recover(&[0x01u8; 256]).is_none());
    }

    /// PKCS#1 `RSAPublicKey` DER of a modulus and exponent given as big-endian bytes.
    fn pkcs1_der(n: &[u8], e: &[u8]) -> Vec<u8> {
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            match content.len() {
                len @ 0..0x80 => out.push(len as u8),
                len @ 0x80..0x100 => out.extend([0x81, len as u8]),
                len => out.extend([0x82, (len >> 8) as u8, len as u8]),
            }
            out.extend_from_slice(content);
            out
        }
        let int = |v: &[u8]| {
            let mut padded = vec![0u8];
            padded.extend_from_slice(v);
            tlv(0x02, &padded)
        };
        tlv(0x30, &[int(n), int(e)].concat())
    }

    #[test]
    fn weak_rsa_keys_are_refused_naming_the_field() {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let good = parse_pem(
            "public_key",
            &pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref()),
        )
        .unwrap();
        let ClientKey::Rsa { n, e, .. } = good else {
            panic!("RSA")
        };
        let mut even_n = n.clone();
        *even_n.last_mut().unwrap() &= 0xFE;
        let cases: [(&str, Vec<u8>, Vec<u8>); 6] = [
            ("e = 1", n.clone(), vec![1]),
            ("even e", n.clone(), vec![1, 0, 0]),
            (
                "64-bit modulus",
                vec![0xC5, 0x1F, 0x2E, 0x3D, 0x4C, 0x5B, 0x6A, 0x79],
                e.clone(),
            ),
            ("1024-bit modulus", n[..128].to_vec(), e.clone()),
            ("even modulus", even_n, e.clone()),
            ("huge e", n.clone(), vec![1, 0, 0, 0, 1]),
        ];
        for (name, n, e) in cases {
            let err =
                parse_pem("public_key", &pem("RSA PUBLIC KEY", &pkcs1_der(&n, &e))).unwrap_err();
            assert_eq!(err.field, "public_key", "{name}");
            let jwks = serde_json::json!({"keys": [{"kty": "RSA", "n": crate::crypto::b64url_encode(&n), "e": crate::crypto::b64url_encode(&e)}]});
            let err = parse_jwks("jwks", &jwks).unwrap_err();
            assert_eq!(err.field, "jwks", "{name}");
        }
        assert!(parse_pem("public_key", &pem("RSA PUBLIC KEY", &pkcs1_der(&n, &e))).is_ok());
    }

    /// A block made by `openssl rsautl -sign` (raw PKCS#1 v1.5, no digest) over
    /// `client-1:s3cret:1700000000000`.
    #[test]
    fn recovers_what_openssl_rsautl_signed() {
        let key = parse_pem("public_key", include_str!("test_d1.pub")).unwrap();
        let block = STANDARD.decode(include_str!("test_d1.sig").trim()).unwrap();
        assert_eq!(
            key.rsa_recover(&block).as_deref(),
            Some(&b"client-1:s3cret:1700000000000"[..])
        );
        let mut tampered = block.clone();
        tampered[100] ^= 1;
        assert!(key.rsa_recover(&tampered).is_none());
    }

    #[test]
    fn malformed_keys_are_field_errors() {
        for bad in [
            "",
            "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
        ] {
            let err = parse_pem("public_key", bad).unwrap_err();
            assert_eq!(err.field, "public_key");
        }
        assert!(parse_jwks("jwks", &serde_json::json!({"keys": []})).is_err());
        assert!(
            parse_jwks(
                "jwks",
                &serde_json::json!({"keys": [{"kty": "RSA", "n": "%%"}]})
            )
            .is_err()
        );
    }
}
