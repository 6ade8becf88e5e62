//! Opening opaque tokens and parsing JWTs: `Authority::check` (and with it the private
//! `decode`) in every realm, and `CompactJws::split`.
//!
//! Input: `mode \0 rest`. Mode bits 0-1 pick the realm that checks (`default` ES256,
//! `ed`, `rs`, `op` opaque). Bit 2: start from a token the fixture minted (in the realm
//! bits 4-5 pick) and apply `rest` as edits: pairs (position, byte) that overwrite,
//! and with bit 3 a last byte that truncates to that length. Otherwise `rest` is the
//! token.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use tessera_core::crypto::CompactJws;
use tessera_fuzz::{REALMS, fields, fixture};

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let parts = fields(data, 2);
    let mode = parts[0].first().copied().unwrap_or(0);
    let rest = parts[1];
    let checker = REALMS[usize::from(mode & 3)];
    let token: Vec<u8> = if mode & 4 != 0 {
        let source = REALMS[usize::from((mode >> 4) & 3)];
        let Some((_, minted)) = fx.tokens.iter().find(|(r, _)| *r == source) else {
            return;
        };
        let mut token = minted.clone().into_bytes();
        let mut edits = rest.chunks_exact(2);
        for edit in &mut edits {
            if let Some(at) = token
                .len()
                .checked_sub(1)
                .map(|max| usize::from(edit[0]).min(max))
            {
                token[at] = edit[1];
            }
        }
        if mode & 8 != 0
            && let [len] = edits.remainder()
        {
            token.truncate(usize::from(*len) * 4);
        }
        token
    } else {
        rest.to_vec()
    };
    let Ok(token) = String::from_utf8(token) else {
        return;
    };

    let realm = fx.realm(checker);
    if let Some(info) = fx.authority.check(&realm, &token) {
        assert!(
            fx.tokens.iter().any(|(r, t)| *r == checker && *t == token),
            "a token the realm {checker} never issued checked: {token:?} {info:?}"
        );
        assert_eq!(info.realm, checker);
    } else {
        assert!(
            !fx.tokens.iter().any(|(r, t)| *r == checker && *t == token),
            "a token the realm {checker} issued did not check"
        );
    }

    if let Some(jws) = CompactJws::split(&token) {
        // Every part is canonical base64url: writing the parts again gives the token.
        let again = format!("{}.{}", jws.signing_input, B64.encode(&jws.signature));
        assert_eq!(again, token, "CompactJws::split round-trips");
        if let Some(claims) = jws.claims_bytes() {
            assert_eq!(B64.encode(claims), jws.claims_b64);
        }
        let _ = (jws.header_str("alg"), jws.header_str("kid"));
    }
});
