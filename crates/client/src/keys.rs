//! Client private keys read from PEM: RSA (PKCS#1 or PKCS#8), P-256 (SEC1 or PKCS#8) and
//! Ed25519 (PKCS#8). They sign `private_key_jwt` assertions, and an RSA key also makes
//! the signed credentials of dialect D1.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use num_bigint::BigUint;
use tessera_der::{PemError, Pkcs8, oid};

/// Why a private key could not be read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM private key: {0}")]
    Pem(&'static str),
    #[error("the private key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)")]
    Encrypted,
    #[error("unsupported private key: {0} (RSA, P-256 and Ed25519 are supported)")]
    Unsupported(&'static str),
    #[error("malformed private key: {0}")]
    Malformed(&'static str),
    #[error("signed credentials need an RSA private key")]
    NotRsa,
    #[error("the message is too long for this RSA key")]
    MessageTooLong,
    #[error("signing failed")]
    Signing,
}

/// The JWS algorithm a key signs with, fixed by the key's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    Rs256,
    Es256,
    EdDsa,
}

impl JwsAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// A parsed private key. Its `Debug` names the key type and nothing else.
pub struct PrivateKey {
    kind: Kind,
}

enum Kind {
    Rsa {
        /// `None` for sizes aws-lc-rs will not sign RS256 with; signed credentials
        /// still work with those.
        pair: Option<RsaKeyPair>,
        raw: RsaPrivate,
    },
    EcP256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Rsa { raw, .. } => format!("RSA-{}", raw.n.bits()),
            Kind::EcP256(_) => "P-256".to_owned(),
            Kind::Ed25519(_) => "Ed25519".to_owned(),
        };
        write!(f, "PrivateKey({kind}, [redacted])")
    }
}

impl PrivateKey {
    /// Reads a PEM block: `RSA PRIVATE KEY` (PKCS#1), `EC PRIVATE KEY` (SEC1) or
    /// `PRIVATE KEY` (PKCS#8 with RSA, P-256 or Ed25519 inside).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) = pem_block(pem)?;
        match label.as_str() {
            "RSA PRIVATE KEY" => Self::rsa_from_pkcs1(&der),
            "EC PRIVATE KEY" => {
                EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map(|pair| Self {
                        kind: Kind::EcP256(pair),
                    })
                    .map_err(|_| KeyError::Unsupported("an EC key on a curve other than P-256"))
            }
            "PRIVATE KEY" => Self::from_pkcs8(&der),
            "ENCRYPTED PRIVATE KEY" => Err(KeyError::Encrypted),
            _ => Err(KeyError::Pem(
                "expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block",
            )),
        }
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let info = Pkcs8::parse(der).ok_or(KeyError::Malformed("PKCS#8 structure"))?;
        match info.algorithm {
            oid::RSA => Self::rsa_from_pkcs1(info.private_key),
            oid::EC => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map(|pair| Self {
                    kind: Kind::EcP256(pair),
                })
                .map_err(|_| KeyError::Unsupported("an EC key on a curve other than P-256")),
            oid::ED25519 => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map(|pair| Self {
                    kind: Kind::Ed25519(pair),
                })
                .map_err(|_| KeyError::Malformed("Ed25519 key")),
            _ => Err(KeyError::Unsupported("an unknown key algorithm")),
        }
    }

    fn rsa_from_pkcs1(der: &[u8]) -> Result<Self, KeyError> {
        let raw = RsaPrivate::from_pkcs1(der)?;
        let pair = RsaKeyPair::from_der(der).ok();
        Ok(Self {
            kind: Kind::Rsa { pair, raw },
        })
    }

    /// The algorithm of this key's JWS signatures.
    pub fn jws_alg(&self) -> JwsAlg {
        match &self.kind {
            Kind::Rsa { .. } => JwsAlg::Rs256,
            Kind::EcP256(_) => JwsAlg::Es256,
            Kind::Ed25519(_) => JwsAlg::EdDsa,
        }
    }

    /// The public half's bytes (the RSA modulus, the EC point, the Ed25519 key), to tell
    /// keys apart without revealing them.
    pub fn public_fingerprint(&self) -> Vec<u8> {
        match &self.kind {
            Kind::Rsa { raw, .. } => raw.n.to_bytes_be(),
            Kind::EcP256(pair) => pair.public_key().as_ref().to_vec(),
            Kind::Ed25519(pair) => pair.public_key().as_ref().to_vec(),
        }
    }

    pub fn is_rsa(&self) -> bool {
        matches!(self.kind, Kind::Rsa { .. })
    }

    /// A JWS signature over `message` with [`Self::jws_alg`].
    pub fn sign_jws(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.kind {
            Kind::Rsa { pair, .. } => {
                let pair = pair.as_ref().ok_or(KeyError::Unsupported(
                    "an RSA key size aws-lc-rs cannot sign with",
                ))?;
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(|_| KeyError::Signing)?;
                Ok(signature)
            }
            Kind::EcP256(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| KeyError::Signing),
            Kind::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// What OpenSSL's `RSA_private_encrypt` with PKCS#1 padding makes of `message`: the
    /// PKCS#1 v1.5 type-1 block `00 01 FF.. 00 message`, raised to the private exponent.
    /// No digest is taken; the block is as long as the modulus.
    pub fn rsa_private_encrypt(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.kind {
            Kind::Rsa { raw, .. } => raw.private_encrypt(message),
            _ => Err(KeyError::NotRsa),
        }
    }
}

/// The decoded body of the first PEM block of `text`, with its label.
fn pem_block(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let block = tessera_der::pem_block(text).map_err(|err| match err {
        PemError::NoBegin => KeyError::Pem("no -----BEGIN line"),
        PemError::BrokenBegin => KeyError::Pem("a broken BEGIN line"),
        PemError::NoEnd => KeyError::Pem("no matching -----END line"),
        PemError::Encrypted => KeyError::Encrypted,
        PemError::NotBase64 => KeyError::Pem("the body is not base64"),
    })?;
    Ok((block.label.to_owned(), block.der))
}

/// The numbers of an RSA private key (PKCS#1 `RSAPrivateKey`).
struct RsaPrivate {
    n: BigUint,
    e: BigUint,
    p: BigUint,
    q: BigUint,
    dp: BigUint,
    dq: BigUint,
    qinv: BigUint,
    /// The modulus length in bytes.
    k: usize,
}

impl RsaPrivate {
    fn from_pkcs1(der: &[u8]) -> Result<Self, KeyError> {
        let malformed = || KeyError::Malformed("PKCS#1 RSAPrivateKey");
        let mut integers = tessera_der::integers(der).ok_or_else(malformed)?;
        let mut next = || -> Result<BigUint, KeyError> {
            let value = integers.next().ok_or_else(malformed)?;
            Ok(BigUint::from_bytes_be(value))
        };
        let version = next()?;
        if version != BigUint::ZERO {
            return Err(KeyError::Unsupported("a multi-prime RSA key"));
        }
        let (n, e, _d, p, q, dp, dq, qinv) = (
            next()?,
            next()?,
            next()?,
            next()?,
            next()?,
            next()?,
            next()?,
            next()?,
        );
        let k = usize::try_from(n.bits().div_ceil(8)).map_err(|_| malformed())?;
        if n.bits() < 1024 || p == BigUint::ZERO || q == BigUint::ZERO {
            return Err(KeyError::Unsupported("an RSA key under 1024 bits"));
        }
        Ok(Self {
            n,
            e,
            p,
            q,
            dp,
            dq,
            qinv,
            k,
        })
    }

    /// PKCS#1 v1.5 type-1 padding and the private-key operation. The input is blinded
    /// with a fresh random factor, so the time the arithmetic takes says nothing about
    /// the key, and the result is checked with the public exponent before it leaves.
    fn private_encrypt(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let k = self.k;
        let pad = k
            .checked_sub(message.len() + 3)
            .filter(|pad| *pad >= 8)
            .ok_or(KeyError::MessageTooLong)?;
        let mut block = Vec::with_capacity(k);
        block.extend_from_slice(&[0x00, 0x01]);
        block.resize(2 + pad, 0xFF);
        block.push(0x00);
        block.extend_from_slice(message);
        let m = BigUint::from_bytes_be(&block);

        let (r, r_inv) = self.blinding_factor()?;
        let blinded = (&m * r.modpow(&self.e, &self.n)) % &self.n;
        let s = (self.crt(&blinded) * r_inv) % &self.n;
        if s.modpow(&self.e, &self.n) != m {
            return Err(KeyError::Signing);
        }
        let bytes = s.to_bytes_be();
        let mut out = vec![0u8; k.checked_sub(bytes.len()).ok_or(KeyError::Signing)?];
        out.extend_from_slice(&bytes);
        Ok(out)
    }

    /// `c^d mod n` by the Chinese remainder theorem.
    fn crt(&self, c: &BigUint) -> BigUint {
        let m1 = c.modpow(&self.dp, &self.p);
        let m2 = c.modpow(&self.dq, &self.q);
        let diff = (&m1 + &self.p - (&m2 % &self.p)) % &self.p;
        let h = (&self.qinv * diff) % &self.p;
        m2 + h * &self.q
    }

    /// A random `r` invertible mod `n`, and its inverse.
    fn blinding_factor(&self) -> Result<(BigUint, BigUint), KeyError> {
        let mut bytes = vec![0u8; self.k];
        for _ in 0..8 {
            aws_lc_rs::rand::fill(&mut bytes).map_err(|_| KeyError::Signing)?;
            let r = BigUint::from_bytes_be(&bytes) % &self.n;
            if r.bits() < 2 {
                continue;
            }
            if let Some(inverse) = r.modinv(&self.n) {
                return Ok((r, inverse));
            }
        }
        Err(KeyError::Signing)
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
    };
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use tessera_test_support::pem;

    use super::*;

    #[test]
    fn pkcs8_keys_of_each_type_sign_what_their_public_keys_verify() {
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let rsa_pem = pem(
            "PRIVATE KEY",
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa)
                .unwrap()
                .as_ref(),
        );
        let key = PrivateKey::from_pem(&rsa_pem).unwrap();
        assert_eq!(key.jws_alg(), JwsAlg::Rs256);
        let sig = key.sign_jws(b"hello").unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, rsa.public_key().as_ref())
            .verify(b"hello", &sig)
            .unwrap();

        let rng = SystemRandom::new();
        let ec_doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = PrivateKey::from_pem(&pem("PRIVATE KEY", ec_doc.as_ref())).unwrap();
        assert_eq!(key.jws_alg(), JwsAlg::Es256);
        let ec =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec_doc.as_ref()).unwrap();
        let sig = key.sign_jws(b"hello").unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, ec.public_key().as_ref())
            .verify(b"hello", &sig)
            .unwrap();

        let ed_doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = PrivateKey::from_pem(&pem("PRIVATE KEY", ed_doc.as_ref())).unwrap();
        assert_eq!(key.jws_alg(), JwsAlg::EdDsa);
        let ed = Ed25519KeyPair::from_pkcs8(ed_doc.as_ref()).unwrap();
        let sig = key.sign_jws(b"hello").unwrap();
        UnparsedPublicKey::new(&ED25519, ed.public_key().as_ref())
            .verify(b"hello", &sig)
            .unwrap();
        assert!(!format!("{key:?}").contains(&STANDARD.encode(ed_doc.as_ref())));
    }

    /// The public operation undoes the private one and finds the type-1 block.
    #[test]
    fn private_encrypt_makes_a_type_1_block() {
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa).unwrap();
        let key = PrivateKey::from_pem(&pem("PRIVATE KEY", der.as_ref())).unwrap();
        let block = key
            .rsa_private_encrypt(b"client:secret:1700000000000")
            .unwrap();
        assert_eq!(block.len(), 256);
        let Kind::Rsa { raw, .. } = &key.kind else {
            panic!("an RSA key")
        };
        let m = BigUint::from_bytes_be(&block)
            .modpow(&raw.e, &raw.n)
            .to_bytes_be();
        // The leading zero byte disappears in the integer.
        assert_eq!(m[0], 0x01);
        assert!(m.ends_with(b"\x00client:secret:1700000000000"));
        assert!(key.rsa_private_encrypt(&[b'x'; 246]).is_err(), "too long");
    }

    #[test]
    fn bad_pem_is_refused_with_a_reason() {
        for (text, want) in [
            ("", "PEM"),
            (
                "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----",
                "base64",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "malformed",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
                "encrypted",
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
                "PRIVATE KEY",
            ),
        ] {
            let err = PrivateKey::from_pem(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let ed_doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let key = PrivateKey::from_pem(&pem("PRIVATE KEY", ed_doc.as_ref())).unwrap();
        assert_eq!(key.rsa_private_encrypt(b"x").unwrap_err(), KeyError::NotRsa);
    }
}
