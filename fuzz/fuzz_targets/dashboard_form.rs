//! The dashboard's form reader (`Form::parse`) and the readings of its values: lists of
//! words, text, lifetimes (`parse_duration`, `short_duration`, `set_lifetime`), and the
//! date and duration shown for a number.
//!
//! Input: a submitted form body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::fuzzing::form::{
    Form, human_duration, parse_duration, set_lifetime, short_duration, utc,
};

fuzz_target!(|data: &[u8]| {
    let Some(form) = Form::parse(data) else {
        panic!("a form body always reads");
    };
    // The same pairs as serde_urlencoded reads, in order, repeats kept (checked for
    // the first names only: every name against every pair is quadratic)...
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(data).expect("any form reads");
    for (name, _) in pairs.iter().take(16) {
        let values: Vec<&str> = pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(form.all(name).collect::<Vec<_>>(), values);
        assert_eq!(form.get(name), values[0]);
        assert!(form.has(name, values[0]));
        if let Some(words) = form.words(name) {
            assert!(
                words
                    .iter()
                    .all(|w| !w.is_empty() && !w.contains(|c: char| c.is_whitespace() || c == ','))
            );
        }
        if let Some(text) = form.text(name) {
            assert_eq!(text, values[0].trim());
            assert!(!text.is_empty());
        }
    }
    // ...and written out again, read back the same.
    let written = serde_urlencoded::to_string(&pairs).expect("pairs encode");
    let again = Form::parse(written.as_bytes()).expect("a written form reads");
    for (name, _) in pairs.iter().take(16) {
        assert!(form.all(name).eq(again.all(name)), "{name:?} round-trips");
    }

    // A lifetime read from the form, written with set_lifetime, reads the same.
    for name in pairs.iter().map(|(n, _)| n.as_str()).take(4) {
        if let Ok(Some(secs)) = form.lifetime(name) {
            let mut other = Form::default();
            set_lifetime(&mut other, name, secs);
            assert_eq!(
                other.lifetime(name).ok(),
                Some(Some(secs)),
                "{name:?} {secs}"
            );
        }
    }
    for (_, value) in pairs.iter().take(4) {
        if let Some(secs) = parse_duration(value) {
            assert_eq!(
                parse_duration(&short_duration(secs)),
                Some(secs),
                "{value:?}"
            );
            let _ = human_duration(secs);
        }
    }
    // Any number of seconds shows as a date and a duration.
    let mut raw = [0u8; 8];
    for (slot, byte) in raw.iter_mut().zip(data) {
        *slot = *byte;
    }
    let _ = utc(i64::from_le_bytes(raw));
    let _ = human_duration(u64::from_le_bytes(raw));
    assert_eq!(
        parse_duration(&short_duration(u64::from_le_bytes(raw))),
        Some(u64::from_le_bytes(raw))
    );
});
