//! Reading OAuth requests off the wire: the form or JSON body, and the client's
//! credentials from the `Authorization` header or the body.

use std::borrow::Cow;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use tessera_core::{ClientAuth, OAuthError};

use crate::errors::PublicError;

/// The parameters of a request body, in order, empty values dropped (RFC 6749 §3.1).
/// Names and values borrow from the body unless decoding changed them.
#[derive(Debug, Default)]
pub struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Params<'a> {
    /// Reads a body as its `Content-Type` says: form (also when no type is given and
    /// the body does not look like JSON) or JSON.
    pub fn parse(headers: &HeaderMap, body: &'a [u8]) -> Result<Self, PublicError> {
        let content_type = match headers.get_all(header::CONTENT_TYPE).iter().next_back() {
            Some(value) => Some(
                value
                    .to_str()
                    .map_err(|_| OAuthError::invalid_request("malformed Content-Type"))?
                    .trim(),
            ),
            None => None,
        };
        // Lower-cased only when it has capitals (rarely), to compare media types.
        let content_type = content_type.map(|ct| {
            if ct.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(ct.to_ascii_lowercase())
            } else {
                Cow::Borrowed(ct)
            }
        });
        let essence = content_type
            .as_deref()
            .map(|ct| ct.split(';').next().unwrap_or_default().trim());
        match essence {
            Some("application/x-www-form-urlencoded") => Ok(Self::form(body)),
            Some(ct) if ct == "application/json" || ct.ends_with("+json") => Self::json(body),
            None | Some("") if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') => {
                Self::json(body)
            }
            None | Some("") => Ok(Self::form(body)),
            Some(_) => Err(PublicError::UnsupportedMediaType),
        }
    }

    /// `application/x-www-form-urlencoded` as the URL standard parses it (what
    /// `serde_urlencoded` does): `&`-separated, empty pieces skipped, split at the first
    /// `=`, `+` read as a space, percent-decoded, invalid UTF-8 replaced. Never fails.
    fn form(body: &'a [u8]) -> Self {
        let pairs = body
            .split(|&b| b == b'&')
            .filter(|piece| !piece.is_empty())
            .map(|piece| {
                let (name, value) = match piece.iter().position(|&b| b == b'=') {
                    Some(at) => {
                        let (name, rest) = piece.split_at(at);
                        (name, rest.get(1..).unwrap_or_default())
                    }
                    None => (piece, &[][..]),
                };
                (form_component(name), form_component(value))
            })
            .filter(|(_, v)| !v.is_empty())
            .collect();
        Self(pairs)
    }

    fn json(body: &[u8]) -> Result<Self, PublicError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let JsonPairs(members) = serde_json::from_slice(body).map_err(|_| {
            OAuthError::invalid_request("the JSON body is malformed or not an object")
        })?;
        let mut pairs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(members.len());
        for (name, value) in members {
            match value {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => pairs.push((name.into(), s.into())),
                serde_json::Value::Number(n) => pairs.push((name.into(), n.to_string().into())),
                serde_json::Value::Bool(b) => pairs.push((name.into(), b.to_string().into())),
                // `resource` may be given several times (RFC 8707); in JSON, as an array.
                serde_json::Value::Array(items) => {
                    for item in items {
                        let serde_json::Value::String(s) = item else {
                            return Err(OAuthError::invalid_request(format!(
                                "parameter {name} must be a string or a list of strings"
                            ))
                            .into());
                        };
                        pairs.push((name.clone().into(), s.into()));
                    }
                }
                serde_json::Value::Object(_) => {
                    return Err(OAuthError::invalid_request(format!(
                        "parameter {name} must be a string"
                    ))
                    .into());
                }
            }
        }
        Ok(Self(
            pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
        ))
    }

    /// A parameter that may appear at most once (RFC 6749 §3.2).
    pub fn single(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut found = self.0.iter().filter(|(n, _)| n == name);
        let first = found.next().map(|(_, v)| v.as_ref());
        if found.next().is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
        Ok(first)
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone().into_owned())
            .collect()
    }
}

/// One name or value of a form body: `+` is a space, then percent-decoding, then
/// UTF-8 with invalid sequences replaced. Borrowed when nothing needed decoding.
fn form_component(raw: &[u8]) -> Cow<'_, str> {
    // The usual case (a token, a grant type): nothing to decode, and plain UTF-8.
    // Scanned without an early exit, so that the compiler can use wide registers.
    let plain = !raw
        .iter()
        .fold(false, |seen, &b| seen | (b == b'+') | (b == b'%'));
    if plain {
        return match std::str::from_utf8(raw) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(raw),
        };
    }
    let spaced: Cow<'_, [u8]> = if raw.contains(&b'+') {
        Cow::Owned(
            raw.iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    let decoded: Cow<'_, [u8]> = match Cow::from(percent_encoding::percent_decode(&spaced)) {
        Cow::Owned(bytes) => Cow::Owned(bytes),
        Cow::Borrowed(_) => spaced,
    };
    match decoded {
        Cow::Borrowed(bytes) => String::from_utf8_lossy(bytes),
        Cow::Owned(bytes) => Cow::Owned(
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
    }
}

/// A JSON object's members in order with repeats kept (a `serde_json::Value` keeps only
/// the last), so that a repeated parameter is refused like a repeated form field.
struct JsonPairs(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for JsonPairs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = JsonPairs;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonPairs, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, serde_json::Value>()? {
                    members.push(member);
                }
                Ok(JsonPairs(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// Which client is calling and how it proves it; two methods at once is an error
/// (RFC 6749 §2.3).
pub fn client_auth(headers: &HeaderMap, params: &Params<'_>) -> Result<ClientAuth, OAuthError> {
    let basic = basic_credentials(headers)?;
    let body_id = params.single("client_id")?;
    let body_secret = params.single("client_secret")?;
    let assertion_type = params.single("client_assertion_type")?;
    if let Some(assertion) = params.single("client_assertion")? {
        if basic.is_some() || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not a client_assertion and a secret",
            ));
        }
        let assertion_type = assertion_type
            .ok_or_else(|| OAuthError::invalid_request("client_assertion_type is missing"))?;
        return Ok(ClientAuth::Assertion {
            client_id: body_id.map(str::to_owned),
            assertion_type: assertion_type.to_owned(),
            assertion: assertion.to_owned(),
        });
    }
    match (basic, body_secret) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method, not both Basic and client_secret",
        )),
        (Some((client_id, secret)), None) => {
            if body_id.is_some_and(|id| id != client_id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Authorization header",
                ));
            }
            Ok(ClientAuth::Basic { client_id, secret })
        }
        (None, Some(secret)) => match body_id {
            Some(client_id) => Ok(ClientAuth::Post {
                client_id: client_id.to_owned(),
                secret: secret.to_owned(),
            }),
            None => Err(OAuthError::invalid_request(
                "client_secret was sent without client_id",
            )),
        },
        (None, None) => Ok(ClientAuth::None),
    }
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
/// Leading spaces before the scheme are tolerated; other schemes are not client
/// authentication and are ignored here.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(
            "the Authorization header is repeated",
        ));
    }
    let malformed = || OAuthError::invalid_request("malformed Basic authorization header");
    let text = value.to_str().map_err(|_| malformed())?.trim();
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let encoded = rest.trim();
    let decoded = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok(Some((id, secret)))
}

fn form_decode(text: &str) -> Option<String> {
    if !text.contains(['+', '%']) {
        return Some(text.to_owned());
    }
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The bearer token of `Authorization: Bearer T`, if that is what the header holds.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn form_and_json_bodies_read_alike() {
        let form = Params::parse(
            &headers(&[("content-type", " application/x-www-form-urlencoded")]),
            b"grant_type=client_credentials&scope=a+b&empty=",
        )
        .unwrap();
        let json = Params::parse(
            &headers(&[("content-type", "application/json; charset=utf-8")]),
            br#"{"grant_type":"client_credentials","scope":"a b","resource":["x","y"]}"#,
        )
        .unwrap();
        for params in [&form, &json] {
            assert_eq!(
                params.single("grant_type").unwrap(),
                Some("client_credentials")
            );
            assert_eq!(params.single("scope").unwrap(), Some("a b"));
        }
        assert_eq!(form.single("empty").unwrap(), None);
        assert_eq!(json.all("resource"), vec!["x", "y"]);
        assert!(Params::parse(&headers(&[("content-type", "text/plain")]), b"x").is_err());
        assert!(Params::parse(&headers(&[("content-type", "application/json")]), b"{").is_err());
        let repeated = Params::parse(&HeaderMap::new(), b"scope=a&scope=b").unwrap();
        assert!(repeated.single("scope").is_err());
        let upper = Params::parse(
            &headers(&[(
                "content-type",
                "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            )]),
            b"grant_type=x",
        )
        .unwrap();
        assert_eq!(upper.single("grant_type").unwrap(), Some("x"));
    }

    #[test]
    fn form_bodies_read_as_serde_urlencoded_reads_them() {
        for body in [
            &b"grant_type=client_credentials"[..],
            b"a=1&&b=2&c&=d&e==f&g=h%3D&i=+j+k%2B&l=%zz%4&m=%FF%c3%a9&n=\xff&%61=b",
            b"&&&",
            b"",
            b"x=%E2%82%AC+%2b+caf\xc3\xa9",
            b"a=b=c&a%26b=c%3Dd",
        ] {
            let want: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap();
            let want: Vec<(String, String)> =
                want.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            let got: Vec<(String, String)> = Params::form(body)
                .0
                .into_iter()
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(got, want, "{}", String::from_utf8_lossy(body));
        }
        let mut raw = b"k=".to_vec();
        raw.extend_from_slice(&[0xff, b'+', 0xc3, 0xa9, b'%', b'F', b'F']);
        let want: Vec<(String, String)> = serde_urlencoded::from_bytes(&raw).unwrap();
        let got = Params::form(&raw);
        assert_eq!(got.single("k").unwrap(), Some(want[0].1.as_str()));
    }

    #[test]
    fn basic_header_is_decoded_per_rfc_6749() {
        // "my%20id:s%3Acret" → id "my id", secret "s:cret"
        let value = format!("  Basic {}", STANDARD.encode("my%20id:s%3Acret"));
        let auth = client_auth(&headers(&[("authorization", &value)]), &Params::default()).unwrap();
        assert_eq!(
            auth,
            ClientAuth::Basic {
                client_id: "my id".into(),
                secret: "s:cret".into()
            }
        );
        for bad in [
            "Basic !!!",
            "Basic",
            &format!("Basic {}", STANDARD.encode("nocolon")),
        ] {
            let err = client_auth(&headers(&[("authorization", bad)]), &Params::default());
            assert_eq!(err.unwrap_err().code(), "invalid_request", "{bad}");
        }
        let both = Params::parse(&HeaderMap::new(), b"client_id=a&client_secret=b").unwrap();
        let value = format!("Basic {}", STANDARD.encode("a:b"));
        let err = client_auth(&headers(&[("authorization", &value)]), &both).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }
}
