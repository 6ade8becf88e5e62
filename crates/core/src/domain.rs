//! Realms, applications and the small parsed values they are made of.
//!
//! Every value here is made by a parsing constructor; past that edge nothing re-checks it.

use std::fmt;

use crate::client_keys::{Jwks, PublicKeyPem, VerifyingKey};
use crate::error::FieldError;

/// Longest token lifetime an application or an administrator may choose: 366 days.
pub const MAX_TTL_SECS: u64 = 366 * 24 * 3600;

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A realm's name: 1 to 64 of `A-Z a-z 0-9 . _ -`, case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RealmName(String);
string_newtype!(RealmName);

impl RealmName {
    pub const DEFAULT: &'static str = "default";

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(FieldError::new(
                field,
                "a realm name is 1 to 64 characters of A-Z a-z 0-9 . _ -",
            ));
        }
        // `.` and `..` are path segments that URLs resolve away: /realms/../x is /x.
        if value.bytes().all(|b| b == b'.') {
            return Err(FieldError::new(
                field,
                "a realm name must not be only dots (. and .. are not names in a URL)",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn default_realm() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }
}

/// A client identifier: 1 to 128 of `A-Z a-z 0-9 . _ ~ @ -`, so that it survives any
/// encoding a client may (or may not) apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);
string_newtype!(ClientId);

impl ClientId {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let ok = !value.is_empty()
            && value.len() <= 128
            && value.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'@' | b'-')
            });
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                "a client_id is 1 to 128 characters of A-Z a-z 0-9 . _ ~ @ -",
            ))
        }
    }

    /// Made from our own random generator's output, which is always valid.
    pub(crate) fn generated(value: String) -> Self {
        Self(value)
    }
}

/// One scope token (RFC 6749 §3.3: `%x21 / %x23-5B / %x5D-7E`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);
string_newtype!(Scope);

impl Scope {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let ok = !value.is_empty()
            && value.len() <= 256
            && value
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                format!("{value:?} is not a valid scope (printable ASCII without space, \" or \\)"),
            ))
        }
    }
}

/// A set of scopes, kept in the order first given and without repeats.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    pub fn parse_list<S: AsRef<str>>(field: &str, values: &[S]) -> Result<Self, FieldError> {
        let mut set = Vec::with_capacity(values.len());
        for value in values {
            // A list entry may itself hold several space-separated scopes ("read write").
            for part in value.as_ref().split(' ').filter(|p| !p.is_empty()) {
                let scope = Scope::parse(field, part)?;
                if !set.contains(&scope) {
                    set.push(scope);
                }
            }
        }
        Ok(Self(set))
    }

    /// Parses the space-delimited `scope` parameter of a request.
    pub fn parse_param(value: &str) -> Result<Self, FieldError> {
        Self::parse_list("scope", &[value])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }

    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|s| s.0.clone()).collect()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

/// A token lifetime in seconds, from 1 second to [`MAX_TTL_SECS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTtl(u64);

impl TokenTtl {
    pub fn parse(field: &str, secs: u64) -> Result<Self, FieldError> {
        if (1..=MAX_TTL_SECS).contains(&secs) {
            Ok(Self(secs))
        } else {
            Err(FieldError::new(
                field,
                format!("a lifetime is 1 to {MAX_TTL_SECS} seconds"),
            ))
        }
    }

    pub fn secs(self) -> u64 {
        self.0
    }

    pub fn millis(self) -> i64 {
        // At most 366 days in milliseconds, far inside i64.
        (self.0 as i64).saturating_mul(1000)
    }
}

impl Default for TokenTtl {
    fn default() -> Self {
        Self(3600)
    }
}

/// How access tokens are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// RFC 9068 JWT, verifiable with the realm's JWKS.
    Jwt,
    /// A sealed random-looking string with the realm's prefix, checked by introspection.
    Opaque,
}

impl TokenFormat {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        match value {
            "jwt" => Ok(Self::Jwt),
            "opaque" => Ok(Self::Opaque),
            _ => Err(FieldError::new(
                field,
                "token format is \"jwt\" or \"opaque\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Opaque => "opaque",
        }
    }
}

/// The algorithm a realm signs JWTs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    Es256,
    Rs256,
    EdDsa,
}

impl SigningAlg {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        match value {
            "ES256" => Ok(Self::Es256),
            "RS256" => Ok(Self::Rs256),
            "EdDSA" | "Ed25519" => Ok(Self::EdDsa),
            _ => Err(FieldError::new(
                field,
                "signing algorithm is \"ES256\", \"RS256\" or \"EdDSA\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// How a realm spells `token_type` in responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeSpelling {
    Bearer,
    LowerBearer,
}

impl TokenTypeSpelling {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        match value {
            "Bearer" => Ok(Self::Bearer),
            "bearer" => Ok(Self::LowerBearer),
            _ => Err(FieldError::new(
                field,
                "token_type is \"Bearer\" or \"bearer\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::LowerBearer => "bearer",
        }
    }
}

/// Refuses text that would show one thing and be another: control characters (and
/// NUL, which PostgreSQL text cannot hold), bidirectional overrides and isolates (which
/// reorder what a reader sees), and zero-width characters (which hide in a name that
/// looks like another). For names and other strings shown to people.
pub fn check_visible_text(field: &str, value: &str) -> Result<(), FieldError> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c,
                '\u{061C}'                     // Arabic letter mark
                | '\u{180E}'                   // Mongolian vowel separator
                | '\u{200B}'..='\u{200F}'     // zero-width space/joiners, LRM, RLM
                | '\u{202A}'..='\u{202E}'     // embeddings and overrides
                | '\u{2060}'..='\u{2064}'     // word joiner, invisible operators
                | '\u{2066}'..='\u{2069}'     // isolates
                | '\u{FEFF}'                   // zero-width no-break space
            )
    };
    match value.chars().find(|c| hidden(*c)) {
        Some(c) => Err(FieldError::new(
            field,
            format!(
                "must not contain control, bidirectional or zero-width characters (found U+{:04X})",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// Refresh tokens carry this marker before their sealed body, in every realm.
pub const REFRESH_TOKEN_PREFIX: &str = "tsr_rt_";

/// How every JWT begins: `{"` in base64url.
const JWT_START: &str = "eyJ";

/// The prefix of a realm's opaque tokens: 1 to 32 of `A-Z a-z 0-9 _ -`, telling them
/// apart from the realm's JWTs and from refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPrefix(String);
string_newtype!(TokenPrefix);

impl TokenPrefix {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let ok = !value.is_empty()
            && value.len() <= 32
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !ok {
            return Err(FieldError::new(
                field,
                "a token prefix is 1 to 32 characters of A-Z a-z 0-9 _ -",
            ));
        }
        // A token is read as opaque when it starts with the prefix, so a prefix that a
        // JWT or a refresh token may start with (or that starts like one) would make
        // those unreadable.
        let overlaps = |other: &str| value.starts_with(other) || other.starts_with(value);
        if overlaps(JWT_START) || overlaps(REFRESH_TOKEN_PREFIX) {
            return Err(FieldError::new(
                field,
                format!(
                    "a token prefix must not overlap the start of a JWT ({JWT_START}) or of a refresh token ({REFRESH_TOKEN_PREFIX})"
                ),
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

impl Default for TokenPrefix {
    fn default() -> Self {
        Self("tsr_at_".to_owned())
    }
}

/// A way a client proves who it is at the token, introspection and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    SignedCredential,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 4] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::SignedCredential,
    ];

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == value)
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    format!(
                        "{value:?} is not an auth method (client_secret_basic, client_secret_post, private_key_jwt, signed_credential)"
                    ),
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::SignedCredential => "signed_credential",
        }
    }
}

/// A host name a realm answers to at the root paths, lower-cased and without a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostName(String);
string_newtype!(HostName);

impl HostName {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let lower = value.to_ascii_lowercase();
        let ok = !lower.is_empty()
            && lower.len() <= 253
            && lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
        if ok {
            Ok(Self(lower))
        } else {
            Err(FieldError::new(
                field,
                format!("{value:?} is not a host name"),
            ))
        }
    }
}

/// An absolute `http(s)://` URL without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);
string_newtype!(PublicUrl);

impl PublicUrl {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let trimmed = value.trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"));
        match rest {
            Some(rest)
                if !rest.is_empty()
                    && !rest.contains(char::is_whitespace)
                    && !rest.contains(['?', '#']) =>
            {
                Ok(Self(trimmed.to_owned()))
            }
            _ => Err(FieldError::new(
                field,
                "a public URL is an absolute http:// or https:// URL",
            )),
        }
    }
}

/// An isolated tenant: its own applications, keys, issuer and token settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Realm {
    /// Stable identity; a realm deleted and created again under the same name is another realm.
    pub id: String,
    pub name: RealmName,
    pub hosts: Vec<HostName>,
    pub public_url: Option<PublicUrl>,
    pub token_format: TokenFormat,
    pub signing_alg: SigningAlg,
    pub token_prefix: TokenPrefix,
    /// Prefixes the realm used before, newest first: their tokens are still read.
    pub previous_token_prefixes: Vec<TokenPrefix>,
    pub token_type: TokenTypeSpelling,
    /// How far a signed credential's timestamp may be from now (D1).
    pub credential_window_secs: u64,
    /// The longest a `private_key_jwt` assertion may live.
    pub assertion_max_lifetime_secs: u64,
    /// How often a new signing key takes over, if the realm rotates on a schedule.
    pub key_rotation_secs: Option<u64>,
    pub created_at: i64,
}

/// The shortest and longest key rotation period a realm may ask for. A retired key
/// stays published as long as a token may live, so a day at least keeps the JWKS small.
pub const KEY_ROTATION_SECS: std::ops::RangeInclusive<u64> = 24 * 3600..=10 * 366 * 24 * 3600;

/// Checks a key rotation period in seconds.
pub fn key_rotation(field: &str, secs: u64) -> Result<u64, FieldError> {
    if KEY_ROTATION_SECS.contains(&secs) {
        Ok(secs)
    } else {
        Err(FieldError::new(
            field,
            "a key rotation period is 86400 seconds (1 day) to 10 years, in seconds",
        ))
    }
}

impl Realm {
    /// The issuer: the realm's own public URL, the server's for `default`, else the
    /// server's with `/realms/{name}`.
    pub fn issuer(&self, server_url: &PublicUrl) -> String {
        match &self.public_url {
            Some(url) => url.as_str().to_owned(),
            None if self.name.is_default() => server_url.as_str().to_owned(),
            None => format!("{}/realms/{}", server_url.as_str(), self.name.as_str()),
        }
    }
}

/// The most tokens a quota may allow per minute or per day. Far above what one
/// application needs, and small enough that counts never come near overflowing.
pub const MAX_QUOTA: u32 = 1_000_000_000;

/// How many access tokens an application may be issued per minute and per UTC day
/// (`None`: unlimited). Only grants count; a token an administrator issues does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    pub per_minute: Option<u32>,
    pub per_day: Option<u32>,
}

impl Quota {
    /// Each limit, when given, is 1 to [`MAX_QUOTA`].
    pub fn parse(
        field: &str,
        per_minute: Option<u64>,
        per_day: Option<u64>,
    ) -> Result<Self, FieldError> {
        let limit = |name: &str, value: Option<u64>| -> Result<Option<u32>, FieldError> {
            match value {
                None => Ok(None),
                Some(n) => u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=MAX_QUOTA).contains(n))
                    .map(Some)
                    .ok_or_else(|| {
                        FieldError::new(
                            field,
                            format!("{name} is 1 to {MAX_QUOTA} tokens, or absent for no limit"),
                        )
                    }),
            }
        };
        Ok(Self {
            per_minute: limit("per_minute", per_minute)?,
            per_day: limit("per_day", per_day)?,
        })
    }

    pub fn is_unlimited(&self) -> bool {
        self.per_minute.is_none() && self.per_day.is_none()
    }
}

/// The stored, keyed hash of a client secret, and until when it is accepted (for the
/// old secret during a rotation's grace period).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretHash {
    pub hash: [u8; 32],
    pub expires_at: Option<i64>,
}

/// An audience an application's tokens may name (`aud`, RFC 8707 `resource`): 1 to 512
/// characters without whitespace or hidden characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Audience(String);
string_newtype!(Audience);

impl Audience {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        check_visible_text(field, value)?;
        if value.is_empty() || value.len() > 512 || value.contains(char::is_whitespace) {
            return Err(FieldError::new(
                field,
                "an audience is a non-empty string without spaces",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn parse_list<S: AsRef<str>>(field: &str, values: &[S]) -> Result<Vec<Self>, FieldError> {
        parse_each(field, values, Self::parse)
    }
}

/// A role shown in Keycloak-style tokens (`resource_access`): 1 to 128 characters,
/// none of them hidden.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Role(String);
string_newtype!(Role);

impl Role {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        if value.is_empty() || value.len() > 128 {
            return Err(FieldError::new(field, "a role is 1 to 128 characters"));
        }
        check_visible_text(field, value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn parse_list<S: AsRef<str>>(field: &str, values: &[S]) -> Result<Vec<Self>, FieldError> {
        parse_each(field, values, Self::parse)
    }
}

/// Parses every value of a list with `parse`; the error is the first value's that does
/// not parse.
fn parse_each<T, S: AsRef<str>>(
    field: &str,
    values: &[S],
    parse: impl Fn(&str, &str) -> Result<T, FieldError>,
) -> Result<Vec<T>, FieldError> {
    values.iter().map(|v| parse(field, v.as_ref())).collect()
}

/// An application's name, shown to people: 1 to 200 bytes, not only spaces, none of
/// its characters hidden (see [`check_visible_text`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApplicationName(String);
string_newtype!(ApplicationName);

impl ApplicationName {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        if value.trim().is_empty() || value.len() > 200 {
            return Err(FieldError::new(field, "a name is 1 to 200 characters"));
        }
        check_visible_text(field, value)?;
        Ok(Self(value.to_owned()))
    }
}

/// A client of a realm: who it is, how it authenticates, what tokens it gets.
///
/// Built only from parsed values, when it is created or read from the store: the keys a
/// client authenticates with are parsed then, and never again per request.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub realm_id: String,
    pub client_id: ClientId,
    pub name: ApplicationName,
    pub enabled: bool,
    pub secrets: Vec<SecretHash>,
    pub scopes: ScopeSet,
    pub default_scopes: Option<ScopeSet>,
    pub scope_required: bool,
    pub token_ttl: TokenTtl,
    pub token_format: Option<TokenFormat>,
    pub refresh_token_ttl: Option<TokenTtl>,
    pub auth_methods: Vec<AuthMethod>,
    pub public_key: Option<PublicKeyPem>,
    pub jwks: Option<Jwks>,
    pub audiences: Vec<Audience>,
    /// Roles shown in Keycloak-style tokens (`resource_access`).
    pub roles: Vec<Role>,
    /// Tokens granted per minute and per UTC day (no limit by default).
    pub quota: Quota,
    /// Tokens issued before this instant (unix milliseconds) are dead.
    pub tokens_valid_after_ms: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Application {
    pub fn allows(&self, method: AuthMethod) -> bool {
        self.auth_methods.contains(&method)
    }

    /// The scopes a request without `scope` gets.
    pub fn effective_default_scopes(&self) -> &ScopeSet {
        self.default_scopes.as_ref().unwrap_or(&self.scopes)
    }

    pub fn format_in(&self, realm: &Realm) -> TokenFormat {
        self.token_format.unwrap_or(realm.token_format)
    }

    /// The keys a `private_key_jwt` assertion may be signed with: the PEM key, then
    /// every usable key of the JWKS.
    pub fn assertion_keys(&self) -> impl Iterator<Item = &VerifyingKey> {
        let pem = self.public_key.iter().map(PublicKeyPem::verifying_key);
        pem.chain(self.jwks.iter().flat_map(|jwks| jwks.keys()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_strictly() {
        assert!(RealmName::parse("name", "Arkane").is_ok());
        assert!(RealmName::parse("name", "").is_err());
        assert!(RealmName::parse("name", "a/b").is_err());
        for dots in [".", "..", "..."] {
            assert!(RealmName::parse("name", dots).is_err(), "{dots}");
        }
        assert!(RealmName::parse("name", "a..b").is_ok());
        for hidden in [
            "a\u{202E}b",
            "a\u{200B}",
            "\u{2066}x",
            "a\nb",
            "a\u{7f}",
            "\u{FEFF}",
        ] {
            assert!(check_visible_text("name", hidden).is_err(), "{hidden:?}");
        }
        assert!(check_visible_text("name", "Zahlung – café 支付").is_ok());
        for clash in ["eyJ", "e", "ey", "eyJhbG", "tsr_rt_", "tsr_", "tsr_rt_x"] {
            let err = TokenPrefix::parse("token_prefix", clash).unwrap_err();
            assert_eq!(err.field, "token_prefix", "{clash}");
        }
        for fine in ["tsr_at_", "ory_at_", "eyj", "tsr_ru_"] {
            assert!(TokenPrefix::parse("token_prefix", fine).is_ok(), "{fine}");
        }
        assert!(ClientId::parse("client_id", "abc-DEF_1.2~x@y").is_ok());
        assert!(ClientId::parse("client_id", "a:b").is_err());
        assert!(Scope::parse("scope", "read:all").is_ok());
        assert!(Scope::parse("scope", "a\"b").is_err());
        assert!(TokenTtl::parse("ttl", 0).is_err());
        assert_eq!(
            Quota::parse("quota", Some(5), None),
            Ok(Quota {
                per_minute: Some(5),
                per_day: None
            })
        );
        for bad in [0, u64::from(MAX_QUOTA) + 1, u64::MAX] {
            assert_eq!(
                Quota::parse("quota", None, Some(bad)).unwrap_err().field,
                "quota"
            );
        }
        assert!(TokenTtl::parse("ttl", MAX_TTL_SECS + 1).is_err());
        assert!(HostName::parse("hosts", "Sandbox.API.example").is_ok());
        assert!(PublicUrl::parse("public_url", "ftp://x").is_err());
        assert_eq!(
            PublicUrl::parse("public_url", "https://a.example/").map(|u| u.to_string()),
            Ok("https://a.example".to_owned())
        );
    }

    #[test]
    fn application_names_are_visible_text_of_1_to_200_bytes() {
        for fine in [
            "billing",
            "Zahlung – café 支付",
            " padded ",
            &"x".repeat(200),
        ] {
            let name = ApplicationName::parse("name", fine).unwrap();
            assert_eq!(name.as_str(), fine);
        }
        for bad in ["", "   ", &"x".repeat(201), "a\u{202E}b", "tab\there"] {
            assert_eq!(
                ApplicationName::parse("name", bad).unwrap_err().field,
                "name",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn scope_sets_keep_order_and_drop_repeats() {
        let set = ScopeSet::parse_list("scopes", &["read write", "read", "admin"]).unwrap();
        assert_eq!(set.to_string(), "read write admin");
        let sub = ScopeSet::parse_param("write  read").unwrap();
        assert!(sub.is_subset_of(&set));
        assert!(!set.is_subset_of(&sub));
    }
}
