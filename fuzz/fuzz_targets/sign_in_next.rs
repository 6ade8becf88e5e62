//! Where the dashboard goes after signing in (`next`): whatever is asked, the answer is
//! `/` or a path of this site that no browser reads as another site.
//!
//! Input: the `next` value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::fuzzing::sign_in_next;

fuzz_target!(|data: &[u8]| {
    let Ok(next) = std::str::from_utf8(data) else {
        return;
    };
    let target = sign_in_next(next);
    assert!(
        target == "/" || target == next,
        "the next path is kept or replaced by /, never rewritten: {next:?} -> {target:?}"
    );
    let bytes = target.as_bytes();
    assert_eq!(bytes.first(), Some(&b'/'), "{target:?}");
    assert!(
        !matches!(bytes.get(1), Some(b'/' | b'\\')),
        "{target:?} could leave the site"
    );
    assert!(
        !bytes.iter().any(|b| b.is_ascii_control() || *b == b'\\'),
        "{target:?} holds a control character, tab or backslash"
    );
});
