//! The PEM and DER that keys come in: just enough ASN.1 to read public keys
//! (SubjectPublicKeyInfo, PKCS#1 `RSAPublicKey`) and private keys (PKCS#8, PKCS#1
//! `RSAPrivateKey`).
//!
//! One reader for both sides: the server reads the public keys applications register,
//! the client reads the private keys it signs with. It is lenient where keys in the wild
//! are (leading zeros of integers, long-form lengths) and reads nothing it does not need.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The tags of the DER values keys are made of.
pub mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
}

/// The object identifiers of the key algorithms Tessera supports, as DER content bytes.
pub mod oid {
    /// rsaEncryption, 1.2.840.113549.1.1.1.
    pub const RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
    /// id-ecPublicKey, 1.2.840.10045.2.1.
    pub const EC: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
    /// prime256v1 (P-256), 1.2.840.10045.3.1.7.
    pub const P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
    /// id-Ed25519, 1.3.101.112.
    pub const ED25519: &[u8] = &[0x2B, 0x65, 0x70];
}

/// Why a text is not a PEM block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemError {
    /// No `-----BEGIN ` line.
    NoBegin,
    /// A `-----BEGIN ` without the closing dashes.
    BrokenBegin,
    /// No `-----END ` line with the label of the BEGIN line.
    NoEnd,
    /// The block carries the `Proc-Type`/`DEK-Info` headers of an encrypted key.
    Encrypted,
    /// The body is not base64.
    NotBase64,
}

/// The first PEM block of a text, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock<'a> {
    /// What follows `-----BEGIN `, such as `PUBLIC KEY`.
    pub label: &'a str,
    /// The decoded body.
    pub der: Vec<u8>,
    /// The text before the BEGIN line.
    pub before: &'a str,
    /// The text after the END line.
    pub after: &'a str,
}

impl PemBlock<'_> {
    /// Whether the text was this block alone, give or take surrounding whitespace.
    pub fn is_alone(&self) -> bool {
        self.before.trim().is_empty() && self.after.trim().is_empty()
    }
}

/// Finds and decodes the first PEM block of `text` (RFC 7468); whitespace inside the
/// body is ignored.
pub fn pem_block(text: &str) -> Result<PemBlock<'_>, PemError> {
    const BEGIN: &str = "-----BEGIN ";
    let start = text.find(BEGIN).ok_or(PemError::NoBegin)?;
    let before = text.get(..start).unwrap_or_default();
    let rest = text.get(start + BEGIN.len()..).unwrap_or_default();
    let (label, rest) = rest.split_once("-----").ok_or(PemError::BrokenBegin)?;
    let end_marker = format!("-----END {label}-----");
    let end = rest.find(end_marker.as_str()).ok_or(PemError::NoEnd)?;
    let body = rest.get(..end).unwrap_or_default();
    let after = rest.get(end + end_marker.len()..).unwrap_or_default();
    if body.contains("Proc-Type:") || body.contains("DEK-Info:") {
        return Err(PemError::Encrypted);
    }
    let body: String = body.split_whitespace().collect();
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| PemError::NotBase64)?;
    Ok(PemBlock {
        label,
        der,
        before,
        after,
    })
}

/// Reads one tag-length-value: the tag, the content and what follows it. Lengths of up
/// to four bytes are read; indefinite lengths are not.
pub fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 {
            return None;
        }
        let (len_bytes, rest) = rest.split_at_checked(count)?;
        let len = len_bytes.iter().try_fold(0usize, |acc, b| {
            acc.checked_mul(256)?.checked_add(usize::from(*b))
        })?;
        (len, rest)
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// Reads one value that must have `tag`: its content and what follows it.
pub fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, content, rest) = tlv(input)?;
    (found == tag).then_some((content, rest))
}

/// The big-endian magnitude of a DER INTEGER's content, without its leading zeros.
pub fn unsigned(integer: &[u8]) -> &[u8] {
    let start = integer.iter().take_while(|b| **b == 0).count();
    integer.get(start..).unwrap_or_default()
}

/// A SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), the body of `BEGIN PUBLIC KEY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spki<'a> {
    /// The algorithm's OID (see [`oid`]).
    pub algorithm: &'a [u8],
    /// What follows the OID in the AlgorithmIdentifier: for EC keys, the curve's OID.
    pub parameters: &'a [u8],
    /// The public key: the bit string's content without its unused-bits count.
    pub key: &'a [u8],
}

impl<'a> Spki<'a> {
    pub fn parse(der: &'a [u8]) -> Option<Self> {
        let (spki, _) = expect(der, tag::SEQUENCE)?;
        let (algorithm_id, rest) = expect(spki, tag::SEQUENCE)?;
        let (bits, _) = expect(rest, tag::BIT_STRING)?;
        let key = bits.strip_prefix(&[0x00])?;
        let (algorithm, parameters) = expect(algorithm_id, tag::OID)?;
        Some(Self {
            algorithm,
            parameters,
            key,
        })
    }

    /// The named curve of an EC key's parameters.
    pub fn curve(&self) -> Option<&'a [u8]> {
        expect(self.parameters, tag::OID).map(|(curve, _)| curve)
    }
}

/// A PKCS#1 `RSAPublicKey` (RFC 8017 §A.1.1), the body of `BEGIN RSA PUBLIC KEY` and
/// the key of an RSA SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsaPublicKey<'a> {
    /// The modulus, big-endian, without leading zeros.
    pub n: &'a [u8],
    /// The public exponent, big-endian, without leading zeros.
    pub e: &'a [u8],
}

impl<'a> RsaPublicKey<'a> {
    pub fn parse(der: &'a [u8]) -> Option<Self> {
        let (seq, _) = expect(der, tag::SEQUENCE)?;
        let (n, rest) = expect(seq, tag::INTEGER)?;
        let (e, _) = expect(rest, tag::INTEGER)?;
        Some(Self {
            n: unsigned(n),
            e: unsigned(e),
        })
    }
}

/// A PKCS#8 `PrivateKeyInfo` (RFC 5208 §5), the body of `BEGIN PRIVATE KEY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pkcs8<'a> {
    /// The algorithm's OID (see [`oid`]).
    pub algorithm: &'a [u8],
    /// The algorithm's own encoding of the private key (for RSA, an `RSAPrivateKey`).
    pub private_key: &'a [u8],
}

impl<'a> Pkcs8<'a> {
    pub fn parse(der: &'a [u8]) -> Option<Self> {
        let (info, _) = expect(der, tag::SEQUENCE)?;
        let (_version, rest) = expect(info, tag::INTEGER)?;
        let (algorithm_id, rest) = expect(rest, tag::SEQUENCE)?;
        let (private_key, _) = expect(rest, tag::OCTET_STRING)?;
        let (algorithm, _) = expect(algorithm_id, tag::OID)?;
        Some(Self {
            algorithm,
            private_key,
        })
    }
}

/// The INTEGERs of a SEQUENCE, in order, as their content bytes (a PKCS#1
/// `RSAPrivateKey` is one: version, n, e, d, p, q, dp, dq, qinv). Reading stops at the
/// first value that is not an INTEGER.
pub fn integers(der: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    let (mut rest, _) = expect(der, tag::SEQUENCE)?;
    Some(std::iter::from_fn(move || {
        let (value, after) = expect(rest, tag::INTEGER)?;
        rest = after;
        Some(value)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_found_with_what_surrounds_them() {
        let block = pem_block("junk\n-----BEGIN X-----\nAQI D\n-----END X-----\nmore").unwrap();
        assert_eq!(block.label, "X");
        assert_eq!(block.der, [1, 2, 3]);
        assert_eq!((block.before, block.after), ("junk\n", "\nmore"));
        assert!(!block.is_alone());
        assert!(
            pem_block(" -----BEGIN X-----AQID-----END X-----\n")
                .unwrap()
                .is_alone()
        );
        for (text, want) in [
            ("", PemError::NoBegin),
            ("-----BEGIN X", PemError::BrokenBegin),
            ("-----BEGIN X-----AQID-----END Y-----", PemError::NoEnd),
            ("-----BEGIN X-----!!-----END X-----", PemError::NotBase64),
            (
                "-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\n-----END X-----",
                PemError::Encrypted,
            ),
        ] {
            assert_eq!(pem_block(text), Err(want), "{text:?}");
        }
    }

    #[test]
    fn lengths_are_read_in_both_forms_and_never_past_the_input() {
        assert_eq!(
            tlv(&[0x04, 0x01, 0xAA, 0xBB]),
            Some((0x04, &[0xAA][..], &[0xBB][..]))
        );
        assert_eq!(
            tlv(&[0x04, 0x81, 0x01, 0xAA]),
            Some((0x04, &[0xAA][..], &[][..]))
        );
        assert_eq!(
            tlv(&[0x04, 0x84, 0, 0, 0, 1, 0xAA]).map(|t| t.1),
            Some(&[0xAA][..])
        );
        for bad in [
            &[][..],
            &[0x04],
            &[0x04, 0x02, 0xAA],
            &[0x04, 0x80],
            &[0x04, 0x85, 0, 0, 0, 0, 1, 0xAA],
            &[0x04, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
        ] {
            assert_eq!(tlv(bad), None, "{bad:?}");
        }
        assert_eq!(expect(&[0x02, 0x01, 0x05], tag::OID), None);
    }

    #[test]
    fn structures_read_their_parts() {
        // SEQUENCE { INTEGER 00 C5, INTEGER 03 }
        let pkcs1 = [0x30, 0x07, 0x02, 0x02, 0x00, 0xC5, 0x02, 0x01, 0x03];
        let rsa = RsaPublicKey::parse(&pkcs1).unwrap();
        assert_eq!((rsa.n, rsa.e), (&[0xC5][..], &[0x03][..]));
        let ints: Vec<&[u8]> = integers(&pkcs1).unwrap().collect();
        assert_eq!(ints, [&[0x00, 0xC5][..], &[0x03][..]]);
        // SEQUENCE { SEQUENCE { OID Ed25519 }, BIT STRING 00 07 }
        let spki = [
            0x30, 0x0B, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x02, 0x00, 0x07,
        ];
        let parsed = Spki::parse(&spki).unwrap();
        assert_eq!((parsed.algorithm, parsed.key), (oid::ED25519, &[0x07][..]));
        assert_eq!(parsed.curve(), None);
        assert_eq!(Spki::parse(&spki[..spki.len() - 1]), None);
    }
}
