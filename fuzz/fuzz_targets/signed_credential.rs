//! Signed credentials (D1): a PKCS#1 type-1 block of `client_id:secret:timestamp_ms`
//! made with the application's RSA key, sent base64 as `client_secret`.
//!
//! Input: `mode \0 rest`. Mode 0: `rest` is the message, signed here; 1: the same,
//! then pasted the way a form mangles it (`+` as spaces, surrounding whitespace);
//! 2: `rest` is the `client_secret` as sent; 3: a message for `d1` with its real
//! secret and the timestamp now plus (the first two bytes of `rest`, i16) * 2 ms, and
//! the rest of `rest` put after the timestamp.
#![no_main]

use std::collections::HashSet;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use tessera_core::ClientAuth;
use tessera_fuzz::{NOW_MS, fields, fixture, rsa_private_block};

/// Blocks accepted so far: each may be used once.
static ACCEPTED: Mutex<Option<HashSet<Vec<u8>>>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let d1 = fx.client("d1");
    let parts = fields(data, 2);
    let mode = parts[0].first().copied().unwrap_or(0) % 4;
    let rest = parts[1];
    let message: Vec<u8> = match mode {
        3 => {
            let delta = i64::from(i16::from_le_bytes([
                rest.first().copied().unwrap_or(0),
                rest.get(1).copied().unwrap_or(0),
            ])) * 2;
            let mut m = format!("{}:{}:{}", d1.client_id, d1.secret, NOW_MS + delta).into_bytes();
            m.extend_from_slice(rest.get(2..).unwrap_or_default());
            m
        }
        _ => rest.to_vec(),
    };
    let (secret, block) = if mode == 2 {
        (String::from_utf8_lossy(rest).into_owned(), None)
    } else {
        let Some(block) = rsa_private_block(&message) else {
            return;
        };
        let mut secret = STANDARD.encode(&block);
        if mode == 1 {
            secret = format!(" \t{}\n ", secret.replace('+', " "));
        }
        (secret, Some(block))
    };
    let realm = fx.realm("default");
    let auth = ClientAuth::Post {
        client_id: d1.client_id.clone(),
        secret: secret.clone(),
    };
    let result = fx.block_on(fx.authority.authenticate(&realm, &auth));
    if let Err(err) = &result {
        assert_eq!(err.code(), "invalid_client", "{err:?}");
    }
    let mut accepted = ACCEPTED.lock().unwrap_or_else(|e| e.into_inner());
    let accepted = accepted.get_or_insert_with(HashSet::new);
    let Some(block) = block else {
        if result.is_ok() {
            assert_eq!(secret, d1.secret, "only d1's secret authenticates unsigned");
        }
        return;
    };
    // What the block says, read independently of the server.
    let valid = std::str::from_utf8(&message).ok().and_then(|text| {
        let (id, rest) = text.split_once(':')?;
        let (secret, stamp) = rest.rsplit_once(':')?;
        let stamp: i64 = stamp.trim().parse().ok()?;
        (id == d1.client_id && secret == d1.secret && stamp.abs_diff(NOW_MS) <= 60_000)
            .then_some(())
    });
    let fresh = !accepted.contains(&block);
    match (&result, valid.is_some() && fresh) {
        (Ok(_), true) => {
            accepted.insert(block);
        }
        (Err(_), false) => {}
        (Ok(_), false) => panic!(
            "accepted a signed credential that is {}: {:?}",
            if fresh { "wrong" } else { "used" },
            String::from_utf8_lossy(&message)
        ),
        (Err(err), true) => panic!(
            "refused a good signed credential {:?}: {err:?}",
            String::from_utf8_lossy(&message)
        ),
    }
});
