//! Public keys that applications register (PEM or JWKS), for `private_key_jwt`
//! assertions and signed credentials (D1).

use std::fmt;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RsaPublicKeyComponents,
};
use num_bigint::BigUint;
use tessera_der::{PemError, RsaPublicKey, Spki, oid};

use crate::crypto::b64url_decode;
use crate::error::FieldError;

/// The values of one verifying key of a client.
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

/// A PEM public key an application registered: parsed once, when the application is
/// created or read from the store, and kept with its text (trimmed), which is what is
/// shown and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyPem {
    text: String,
    key: VerifyingKey,
}

impl PublicKeyPem {
    /// A PEM block alone, as [`parse_pem`] reads it.
    pub fn parse(field: &str, text: &str) -> Result<Self, FieldError> {
        let key = parse_pem(field, text)?;
        Ok(Self {
            text: text.trim().to_owned(),
            key: VerifyingKey::new(key),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn key(&self) -> &ClientKey {
        &self.key.key
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// A JWKS an application registered: the document as given, which is what is shown and
/// stored, and the keys of it Tessera can use, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwks {
    document: serde_json::Value,
    keys: Vec<VerifyingKey>,
}

impl Jwks {
    /// A document with at least one usable key, as [`parse_jwks`] reads it.
    pub fn parse(field: &str, document: serde_json::Value) -> Result<Self, FieldError> {
        let keys = parse_jwks(field, &document)?;
        let keys = keys.into_iter().map(VerifyingKey::new).collect();
        Ok(Self { document, keys })
    }

    pub fn document(&self) -> &serde_json::Value {
        &self.document
    }

    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }
}

/// A client key ready to verify signatures: its values, and aws-lc's parsed form of
/// them, made once when the application is read, so that no request parses a key.
#[derive(Clone)]
pub struct VerifyingKey {
    key: ClientKey,
    /// `None` for a key aws-lc refuses (an EC point off the curve, say): it verifies
    /// nothing, as it did when it was parsed for each request.
    parsed: Option<ParsedPublicKey>,
}

impl VerifyingKey {
    pub fn new(key: ClientKey) -> Self {
        let parsed = match &key {
            ClientKey::Rsa { n, e, .. } => RsaPublicKeyComponents { n, e }
                .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
                .ok(),
            ClientKey::EcP256 { point, .. } => {
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).ok()
            }
            ClientKey::Ed25519 { x, .. } => ParsedPublicKey::new(&ED25519, x).ok(),
        };
        Self { key, parsed }
    }

    pub fn key(&self) -> &ClientKey {
        &self.key
    }

    pub fn kid(&self) -> Option<&str> {
        self.key.kid()
    }

    /// Verifies a JWS signature made with `alg`; a key of another type never verifies.
    pub fn verify(&self, alg: AssertionAlg, message: &[u8], signature: &[u8]) -> bool {
        let fits = matches!(
            (&self.key, alg),
            (ClientKey::Rsa { .. }, AssertionAlg::Rs256)
                | (ClientKey::EcP256 { .. }, AssertionAlg::Es256)
                | (ClientKey::Ed25519 { .. }, AssertionAlg::EdDsa)
        );
        fits && self
            .parsed
            .as_ref()
            .is_some_and(|key| key.verify_sig(message, signature).is_ok())
    }
}

/// Two verifying keys are the same when their values are.
impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for VerifyingKey {}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.key.fmt(f)
    }
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
/// Ed25519) or `BEGIN RSA PUBLIC KEY` (PKCS#1). The text is the block alone.
fn parse_pem(field: &str, pem: &str) -> Result<ClientKey, FieldError> {
    let bad = |why: &str| FieldError::new(field, format!("not a usable public key: {why}"));
    let block = match tessera_der::pem_block(pem) {
        Ok(block) if block.is_alone() => block,
        // What an encrypted block carries in its body is not base64 either.
        Err(PemError::NotBase64 | PemError::Encrypted) => {
            return Err(bad("the PEM body is not base64"));
        }
        _ => return Err(bad("no PEM block")),
    };
    let key = match block.label {
        "PUBLIC KEY" => from_spki(&block.der),
        "RSA PUBLIC KEY" => RsaPublicKey::parse(&block.der).map(|rsa| rsa_key(rsa, None)),
        _ => None,
    }
    .ok_or_else(|| bad("unsupported or malformed key (RSA, P-256 and Ed25519 are supported)"))?;
    if let Some(why) = key.weakness() {
        return Err(bad(why));
    }
    Ok(key)
}

/// The keys of a JWKS document that Tessera can use; others are skipped.
fn parse_jwks(field: &str, jwks: &serde_json::Value) -> Result<Vec<ClientKey>, FieldError> {
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

fn from_spki(der: &[u8]) -> Option<ClientKey> {
    let spki = Spki::parse(der)?;
    match spki.algorithm {
        oid::RSA => RsaPublicKey::parse(spki.key).map(|rsa| rsa_key(rsa, None)),
        oid::EC => (spki.curve() == Some(oid::P256)
            && spki.key.len() == 65
            && spki.key.first() == Some(&0x04))
        .then(|| ClientKey::EcP256 {
            kid: None,
            point: spki.key.to_vec(),
        }),
        oid::ED25519 => (spki.key.len() == 32).then(|| ClientKey::Ed25519 {
            kid: None,
            x: spki.key.to_vec(),
        }),
        _ => None,
    }
}

fn rsa_key(rsa: RsaPublicKey<'_>, kid: Option<String>) -> ClientKey {
    ClientKey::Rsa {
        kid,
        n: rsa.n.to_vec(),
        e: rsa.e.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use tessera_test_support::pem;

    use super::*;

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

    #[test]
    fn registered_keys_keep_their_text_and_their_parsed_keys() {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let text = pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref());
        let key = PublicKeyPem::parse("public_key", &format!("\n  {text}\n")).unwrap();
        assert_eq!(key.as_str(), text.trim());
        assert_eq!(key.key().rsa_bits(), Some(2048));
        let err = PublicKeyPem::parse("public_key", &format!("junk {text}")).unwrap_err();
        assert_eq!(err.message, "not a usable public key: no PEM block");

        let document = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": crate::crypto::b64url_encode(&[7; 32])},
            {"kty": "oct", "k": "c2VjcmV0"},
        ], "extra": true});
        let jwks = Jwks::parse("jwks", document.clone()).unwrap();
        assert_eq!(jwks.document(), &document);
        assert_eq!(jwks.keys().len(), 1);
        assert_eq!(jwks.keys().first().and_then(VerifyingKey::kid), Some("a"));
    }

    #[test]
    fn verifying_keys_verify_their_own_algorithm_only() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{
            ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256,
        };
        let rng = SystemRandom::new();
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let mut rsa_sig = vec![0; rsa.public_modulus_len()];
        rsa.sign(&RSA_PKCS1_SHA256, &rng, b"m", &mut rsa_sig)
            .unwrap();
        let rsa_key = parse_pem(
            "public_key",
            &pem("PUBLIC KEY", rsa.public_key().as_der().unwrap().as_ref()),
        )
        .unwrap();
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let ec_sig = ec.sign(&rng, b"m").unwrap();
        let ec_key = ClientKey::EcP256 {
            kid: None,
            point: ec.public_key().as_ref().to_vec(),
        };
        let ed = Ed25519KeyPair::generate().unwrap();
        let ed_sig = ed.sign(b"m");
        let ed_key = ClientKey::Ed25519 {
            kid: None,
            x: ed.public_key().as_ref().to_vec(),
        };
        let cases = [
            (rsa_key, AssertionAlg::Rs256, rsa_sig.as_slice()),
            (ec_key, AssertionAlg::Es256, ec_sig.as_ref()),
            (ed_key, AssertionAlg::EdDsa, ed_sig.as_ref()),
        ];
        for (key, alg, sig) in cases {
            let key = VerifyingKey::new(key);
            assert!(key.verify(alg, b"m", sig), "{alg:?}");
            assert!(!key.verify(alg, b"other", sig), "{alg:?}");
            for other in [
                AssertionAlg::Rs256,
                AssertionAlg::Es256,
                AssertionAlg::EdDsa,
            ] {
                assert_eq!(
                    key.verify(other, b"m", sig),
                    other == alg,
                    "{alg:?} {other:?}"
                );
            }
        }
        // A point off the curve is registered (the JWKS reader checks lengths only) and
        // verifies nothing.
        let off_curve = VerifyingKey::new(ClientKey::EcP256 {
            kid: None,
            point: [&[4u8][..], &[1u8; 64][..]].concat(),
        });
        assert!(!off_curve.verify(AssertionAlg::Es256, b"m", &[0; 64]));
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
        let key = parse_pem("public_key", include_str!("../testdata/d1.pub")).unwrap();
        let block = STANDARD
            .decode(include_str!("../testdata/d1.sig").trim())
            .unwrap();
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
