//! Keys and the cryptography Tessera does with them: the master key and what is derived
//! from it, secret hashing, sealing, and JWT signing and verification.
//!
//! Every key is parsed once and kept; nothing on the hot path rebuilds a key.

use std::fmt;

use aws_lc_rs::aead::{self, AES_256_GCM_SIV, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use subtle::ConstantTimeEq;

use crate::domain::{SecretHash, SigningAlg};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key generation failed")]
    Generate,
    #[error("stored key does not parse: {0}")]
    BadKey(String),
    #[error("signing failed")]
    Sign,
    #[error("the master key does not open this data (was TESSERA_MASTER_KEY changed?)")]
    Unseal,
}

/// Where the server's randomness comes from; a parameter so tests can fix it.
pub trait Random: Send + Sync {
    fn fill(&self, dest: &mut [u8]);
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl Random for SystemRandom {
    fn fill(&self, dest: &mut [u8]) {
        // The system generator fails only if the kernel has no entropy source at all,
        // in which case no key Tessera makes can be trusted: stop rather than go on.
        #[allow(clippy::expect_used)]
        aws_lc_rs::rand::SystemRandom::new()
            .fill(dest)
            .expect("the operating system's random generator failed");
    }
}

/// A client id or secret: random URL-safe base64 (`A-Z a-z 0-9 - _`) that starts with
/// a letter or digit, so that no command line or shell mistakes it for an option.
pub fn random_credential(rng: &dyn Random, bytes: usize) -> String {
    loop {
        let token = random_token(rng, bytes);
        if token.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return token;
        }
    }
}

/// Random bytes as URL-safe base64 (`A-Z a-z 0-9 - _`).
pub fn random_token(rng: &dyn Random, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rng.fill(&mut buf);
    B64.encode(&buf)
}

/// The root secret every node shares; all other server keys are derived from it.
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

impl MasterKey {
    /// Minimum length of a master key given as text.
    pub const MIN_LEN: usize = 32;

    /// Any text of at least 32 characters; its SHA-256 is the key.
    pub fn from_text(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() < Self::MIN_LEN {
            return None;
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        Some(Self(key))
    }

    /// A new random master key, as the text to store.
    pub fn generate_text(rng: &dyn Random) -> String {
        random_token(rng, 32)
    }

    /// A key for one purpose, so that no two uses ever share a key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let tag = hmac::sign(&key, purpose.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    pub fn secret_hasher(&self) -> SecretHasher {
        SecretHasher(hmac::Key::new(
            hmac::HMAC_SHA256,
            &self.derive("tessera client secrets v1"),
        ))
    }

    pub fn sealer(&self, purpose: &str) -> Sealer {
        Sealer::new(&self.derive(purpose))
    }

    pub fn mac_key(&self, purpose: &str) -> MacKey {
        MacKey(hmac::Key::new(hmac::HMAC_SHA256, &self.derive(purpose)))
    }
}

/// An HMAC-SHA256 key for tagging data this server hands out and reads back (the
/// dashboard's session cookies and form tokens).
pub struct MacKey(hmac::Key);

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(redacted)")
    }
}

impl MacKey {
    /// The tag of `data`, as URL-safe base64.
    pub fn tag(&self, data: &[u8]) -> String {
        B64.encode(hmac::sign(&self.0, data).as_ref())
    }

    /// Whether `tag` is the tag of `data`, compared in constant time.
    pub fn verify(&self, data: &[u8], tag: &str) -> bool {
        B64.decode(tag)
            .is_ok_and(|tag| hmac::verify(&self.0, data, &tag).is_ok())
    }
}

/// Keyed hash of client secrets. Server-made secrets carry 256 random bits, so a fast
/// keyed hash is as strong as a slow one and costs a microsecond.
pub struct SecretHasher(hmac::Key);

impl SecretHasher {
    pub fn hash(&self, secret: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.0, secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `secret` matches a stored hash that has not expired, compared in
    /// constant time.
    pub fn verify(&self, secret: &str, stored: &[SecretHash], now_s: i64) -> bool {
        let candidate = self.hash(secret);
        let mut matched = false;
        for entry in stored {
            let alive = entry.expires_at.is_none_or(|at| now_s < at);
            let equal: bool = candidate.ct_eq(&entry.hash).into();
            matched |= alive & equal;
        }
        matched
    }
}

/// Authenticated encryption under one derived key (AES-256-GCM-SIV, so that a repeated
/// random nonce cannot leak the key).
pub struct Sealer(LessSafeKey);

impl Sealer {
    /// The length of the random nonce that starts every sealed value.
    pub const NONCE_LEN: usize = 12;

    pub fn new(key: &[u8; 32]) -> Self {
        // A 32-byte key is exactly what AES-256-GCM-SIV takes.
        #[allow(clippy::expect_used)]
        let unbound = UnboundKey::new(&AES_256_GCM_SIV, key).expect("32-byte key");
        Self(LessSafeKey::new(unbound))
    }

    /// `nonce || ciphertext || tag`.
    pub fn seal(&self, rng: &dyn Random, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; Self::NONCE_LEN];
        rng.fill(&mut nonce);
        self.seal_with_nonce(nonce, aad, plaintext)
    }

    /// [`Sealer::seal`] with a nonce the caller drew from the random generator (so that
    /// one draw can serve several random values).
    pub fn seal_with_nonce(
        &self,
        nonce: [u8; Self::NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let (_, body) = out.split_at_mut(Self::NONCE_LEN);
        // Sealing fails only for inputs over 64 GiB.
        #[allow(clippy::expect_used)]
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                body,
            )
            .expect("plaintext within AEAD limits");
        out.extend_from_slice(tag.as_ref());
        out
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, body) = sealed.split_at_checked(Self::NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, aead::Aad::from(aad), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }

    /// [`Sealer::open`] without copies: decrypts `sealed` where it is and returns the
    /// plaintext, a part of it.
    pub fn open_in_place<'a>(&self, aad: &[u8], sealed: &'a mut [u8]) -> Option<&'a [u8]> {
        let (nonce, body) = sealed.split_at_mut_checked(Self::NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self
            .0
            .open_in_place(nonce, aead::Aad::from(aad), body)
            .ok()?;
        Some(plain)
    }
}

enum Pair {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// A realm's signing key, parsed once: signs, verifies, and shows its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pair: Pair,
    /// `base64url(header).` ready to prepend to the claims.
    header_b64: String,
    jwk: serde_json::Value,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new key, and its private part as PKCS#8 DER for sealing into the store.
    pub fn generate(alg: SigningAlg, kid: String) -> Result<(Self, Vec<u8>), CryptoError> {
        let der = match alg {
            SigningAlg::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map(|d| d.as_ref().to_vec()),
            SigningAlg::EdDsa => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8v1())
                .map(|d| d.as_ref().to_vec()),
            SigningAlg::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| CryptoError::Generate)?;
        let key = Self::from_pkcs8(alg, kid, &der)?;
        Ok((key, der))
    }

    pub fn from_pkcs8(alg: SigningAlg, kid: String, der: &[u8]) -> Result<Self, CryptoError> {
        let bad = |e: aws_lc_rs::error::KeyRejected| CryptoError::BadKey(e.to_string());
        let (pair, jwk) = match alg {
            SigningAlg::Es256 => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(bad)?;
                let point = pair.public_key().as_ref();
                // An uncompressed P-256 point is 0x04 || x (32) || y (32).
                let (x, y) = point
                    .get(1..33)
                    .zip(point.get(33..65))
                    .ok_or_else(|| CryptoError::BadKey("P-256 point".into()))?;
                let jwk = serde_json::json!({
                    "kty": "EC", "crv": "P-256", "x": B64.encode(x), "y": B64.encode(y),
                    "kid": kid, "alg": "ES256", "use": "sig",
                });
                (Pair::Es256(pair), jwk)
            }
            SigningAlg::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(bad)?;
                let jwk = serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "x": B64.encode(pair.public_key().as_ref()),
                    "kid": kid, "alg": "EdDSA", "use": "sig",
                });
                (Pair::EdDsa(pair), jwk)
            }
            SigningAlg::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(bad)?;
                let public = pair.public_key();
                let jwk = serde_json::json!({
                    "kty": "RSA",
                    "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
                    "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
                    "kid": kid, "alg": "RS256", "use": "sig",
                });
                (Pair::Rs256(pair), jwk)
            }
        };
        let header = serde_json::json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": kid});
        let header_b64 = B64.encode(header.to_string());
        Ok(Self {
            kid,
            alg,
            pair,
            header_b64,
            jwk,
        })
    }

    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// A compact JWS of `claims` with this key's `at+jwt` header.
    pub fn sign_jwt(&self, claims_json: &[u8]) -> Result<String, CryptoError> {
        let mut out =
            String::with_capacity(self.header_b64.len() + claims_json.len() * 4 / 3 + 400);
        out.push_str(&self.header_b64);
        out.push('.');
        B64.encode_string(claims_json, &mut out);
        let signature = self.sign(out.as_bytes())?;
        out.push('.');
        B64.encode_string(&signature, &mut out);
        Ok(out)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.pair {
            Pair::Es256(pair) => pair
                .sign(&aws_lc_rs::rand::SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| CryptoError::Sign),
            Pair::EdDsa(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Pair::Rs256(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(|_| CryptoError::Sign)?;
                Ok(sig)
            }
        }
    }

    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match &self.pair {
            Pair::Es256(pair) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key())
                    .verify(message, sig)
                    .is_ok()
            }
            Pair::EdDsa(pair) => UnparsedPublicKey::new(&ED25519, pair.public_key())
                .verify(message, sig)
                .is_ok(),
            Pair::Rs256(pair) => {
                let public = pair.public_key();
                signature::RsaPublicKeyComponents {
                    n: public.modulus().big_endian_without_leading_zero(),
                    e: public.exponent().big_endian_without_leading_zero(),
                }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok()
            }
        }
    }
}

/// The three parts of a compact JWS, decoded enough to pick a key and verify.
pub struct CompactJws<'a> {
    pub header: serde_json::Value,
    pub signing_input: &'a str,
    pub claims_b64: &'a str,
    pub signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    pub fn split(token: &'a str) -> Option<Self> {
        let (signing_input, sig_b64) = token.rsplit_once('.')?;
        let (header_b64, claims_b64) = signing_input.split_once('.')?;
        if claims_b64.contains('.') {
            return None;
        }
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(header_b64).ok()?).ok()?;
        let signature = B64.decode(sig_b64).ok()?;
        Some(Self {
            header,
            signing_input,
            claims_b64,
            signature,
        })
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(|v| v.as_str())
    }

    pub fn claims_bytes(&self) -> Option<Vec<u8>> {
        B64.decode(self.claims_b64).ok()
    }
}

pub fn b64url_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Appends the URL-safe base64 of `bytes` to `out`.
pub fn b64url_encode_to(bytes: &[u8], out: &mut String) {
    B64.encode_string(bytes, out);
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    B64.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for alg in [SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Rs256] {
            let (key, der) = SigningKey::generate(alg, "k1".into()).unwrap();
            let again = SigningKey::from_pkcs8(alg, "k1".into(), &der).unwrap();
            let jwt = key.sign_jwt(br#"{"sub":"x"}"#).unwrap();
            let jws = CompactJws::split(&jwt).unwrap();
            assert_eq!(jws.header_str("kid"), Some("k1"));
            assert_eq!(jws.header_str("alg"), Some(alg.as_str()));
            assert!(again.verify(jws.signing_input.as_bytes(), &jws.signature));
            assert!(!again.verify(b"other", &jws.signature));
        }
    }

    #[test]
    fn sealer_round_trips_and_rejects_tampering() {
        let master = MasterKey::from_text(&"x".repeat(40)).unwrap();
        let sealer = master.sealer("test");
        let sealed = sealer.seal(&SystemRandom, b"aad", b"hello");
        assert_eq!(sealer.open(b"aad", &sealed).as_deref(), Some(&b"hello"[..]));
        assert!(sealer.open(b"other", &sealed).is_none());
        let mut copy = sealed.clone();
        assert_eq!(sealer.open_in_place(b"aad", &mut copy), Some(&b"hello"[..]));
        let mut copy = sealed.clone();
        assert!(sealer.open_in_place(b"other", &mut copy).is_none());
        assert!(sealer.open_in_place(b"aad", &mut [0u8; 11]).is_none());
        let fixed = sealer.seal_with_nonce([7; Sealer::NONCE_LEN], b"aad", b"hello");
        assert_eq!(fixed.get(..Sealer::NONCE_LEN), Some(&[7u8; 12][..]));
        assert_eq!(sealer.open(b"aad", &fixed).as_deref(), Some(&b"hello"[..]));
        let mut bad = sealed.clone();
        if let Some(last) = bad.last_mut() {
            *last ^= 1;
        }
        assert!(sealer.open(b"aad", &bad).is_none());
        assert!(master.sealer("other").open(b"aad", &sealed).is_none());
    }

    #[test]
    fn credentials_never_start_like_an_option() {
        for _ in 0..2000 {
            let secret = random_credential(&SystemRandom, 32);
            assert!(
                secret.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{secret}"
            );
            assert_eq!(secret.len(), 43);
        }
    }

    #[test]
    fn secrets_verify_only_while_alive() {
        let hasher = MasterKey::from_text(&"y".repeat(40))
            .unwrap()
            .secret_hasher();
        let stored = vec![
            SecretHash {
                hash: hasher.hash("new"),
                expires_at: None,
            },
            SecretHash {
                hash: hasher.hash("old"),
                expires_at: Some(100),
            },
        ];
        assert!(hasher.verify("new", &stored, 200));
        assert!(hasher.verify("old", &stored, 99));
        assert!(!hasher.verify("old", &stored, 100));
        assert!(!hasher.verify("other", &stored, 0));
    }
}
