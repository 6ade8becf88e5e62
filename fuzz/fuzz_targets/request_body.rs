//! `Params::parse` (form and JSON bodies) and the client authentication read from the
//! `Authorization` header and the body.
//!
//! Input: `flags \0 content-type \0 authorization \0 body`. The first byte of the
//! content-type field picks `1` form, `2` JSON, `3` an empty value; otherwise the field
//! is the header as given (empty: no header).
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use tessera_fuzz::{check_client_auth, fields};
use tessera_server::fuzzing::Body;

fuzz_target!(|data: &[u8]| {
    let parts = fields(data, 4);
    let (flags, content_type, authorization, body) = (parts[0], parts[1], parts[2], parts[3]);
    let flags = flags.first().copied().unwrap_or(0);
    let mut headers = HeaderMap::new();
    let content_type: Option<&[u8]> = match content_type {
        [] => None,
        [1] => Some(b"application/x-www-form-urlencoded"),
        [2] => Some(b"application/json"),
        [3] => Some(b""),
        raw => Some(raw),
    };
    if let Some(value) = content_type.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.append(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_bytes(authorization)
        && !authorization.is_empty()
    {
        headers.append(header::AUTHORIZATION, value.clone());
        if flags & 1 == 1 {
            headers.append(header::AUTHORIZATION, value);
        }
    }
    let form = match headers.get(header::CONTENT_TYPE) {
        None => body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{'),
        Some(v) => v.as_bytes() == b"application/x-www-form-urlencoded",
    };
    let json =
        headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes) == Some(b"application/json");

    let parsed = match Body::parse(&headers, body) {
        Ok(parsed) => parsed,
        Err(status) => {
            assert!((400..500).contains(&status), "a bad body answers {status}");
            assert!(!form, "a form body always reads");
            if json {
                check_json_refusal(body);
            }
            return;
        }
    };
    if form {
        check_form(&parsed, body);
    }
    if json {
        check_json(&parsed, body);
    }
    check_client_auth(&headers, &parsed);
});

/// A form reads as `serde_urlencoded` reads it, empty values dropped.
fn check_form(parsed: &Body, body: &[u8]) {
    let want: Vec<(String, String)> = serde_urlencoded::from_bytes(body).expect("any form reads");
    for (name, _) in &want {
        let values: Vec<String> = want
            .iter()
            .filter(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect();
        assert_eq!(parsed.all(name), values, "parameter {name:?}");
        assert_eq!(parsed.single(name).is_err(), values.len() > 1);
    }
}

/// The members of a JSON object, in order, repeats kept.
fn members(body: &[u8]) -> Option<Vec<(String, serde_json::Value)>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    // serde_json keeps the last of repeated names; count them to know if any repeat.
    struct Count(usize);
    impl<'de> serde::Deserialize<'de> for Count {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Count;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Count, A::Error> {
                    let mut n = 0;
                    while map
                        .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                        .is_some()
                    {
                        n += 1;
                    }
                    Ok(Count(n))
                }
            }
            d.deserialize_map(V)
        }
    }
    let Count(count) = serde_json::from_slice(body).ok()?;
    (count == object.len()).then(|| object.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn as_param(value: &serde_json::Value) -> Option<Vec<String>> {
    match value {
        serde_json::Value::Null => Some(Vec::new()),
        serde_json::Value::String(s) => Some(vec![s.clone()]),
        serde_json::Value::Number(n) => Some(vec![n.to_string()]),
        serde_json::Value::Bool(b) => Some(vec![b.to_string()]),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        serde_json::Value::Object(_) => None,
    }
}

/// A JSON object without repeated names reads member by member.
fn check_json(parsed: &Body, body: &[u8]) {
    if body.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let Some(members) = members(body) else {
        return;
    };
    for (name, value) in &members {
        let values: Vec<String> = as_param(value)
            .expect("an accepted body has no nested object")
            .into_iter()
            .filter(|v| !v.is_empty())
            .collect();
        assert_eq!(parsed.all(name), values, "member {name:?}");
    }
}

/// A JSON body is refused only if it is not an object of strings, numbers, booleans,
/// nulls and lists of strings.
fn check_json_refusal(body: &[u8]) {
    if let Some(members) = members(body) {
        assert!(
            members.iter().any(|(_, v)| as_param(v).is_none()),
            "a plain JSON object was refused"
        );
    }
}
