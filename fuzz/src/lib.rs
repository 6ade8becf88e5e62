//! What the fuzz targets share: an [`Authority`] over a temporary SQLite store, built
//! once per process, with realms of every token format and applications of every
//! client authentication method; the keys those applications sign with; and helpers
//! to cut a fuzz input into fields.
//!
//! The random generator and the clock are fixed, so that client ids, secrets, realm ids
//! and opaque tokens are the same in every run: the seed corpus can hold credentials
//! and tokens that work.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use aws_lc_rs::rand::SystemRandom as LcRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use num_bigint::BigUint;
use tessera_core::crypto::{MasterKey, Random};
use tessera_core::directory::RealmEntry;
use tessera_core::domain::{
    AuthMethod, PublicUrl, RealmName, ScopeSet, SigningAlg, TokenFormat, TokenTtl,
};
use tessera_core::{
    Actor, Audit, Authority, ClientAuth, Dialect, ManualClock, NewApplication, NewRealm,
    TokenRequest,
};

pub mod rsa_key;

/// The fixed time every target runs at.
pub const NOW_MS: i64 = 1_800_000_000_000;
pub const NOW_S: i64 = NOW_MS / 1000;
pub const SERVER_URL: &str = "https://auth.example";

/// A deterministic generator (SplitMix64): the same draws in every process.
pub struct FixedRandom(AtomicU64);

impl Random for FixedRandom {
    fn fill(&self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let mut z = self
                .0
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let bytes = z.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// An application of the fixture and what it takes to authenticate as it.
#[derive(Debug, Clone)]
pub struct Client {
    pub realm: &'static str,
    pub client_id: String,
    pub secret: String,
    pub methods: Vec<AuthMethod>,
    pub enabled: bool,
}

impl Client {
    pub fn allows(&self, method: AuthMethod) -> bool {
        self.enabled && self.methods.contains(&method)
    }
}

pub struct Fixture {
    pub rt: tokio::runtime::Runtime,
    pub authority: Arc<Authority>,
    /// `basic` (secret, Basic and Post), `d1` (signed credentials and Post), `jwt`
    /// (private_key_jwt), `off` (disabled) in `default`; one Basic client per other realm.
    pub clients: Vec<Client>,
    /// Access tokens minted at start, with the realm that issued them.
    pub tokens: Vec<(&'static str, String)>,
    /// The keys `jwt` may sign assertions with (its JWKS: `kid` "ec" and "ed"; its PEM:
    /// the RSA key, no kid).
    pub ec: EcdsaKeyPair,
    pub ed: Ed25519KeyPair,
    pub rsa: RsaKeyPair,
}

/// The realms: `default` (JWT, ES256), `ed` (JWT, EdDSA), `rs` (JWT, RS256), `op`
/// (opaque).
pub const REALMS: [&str; 4] = ["default", "ed", "rs", "op"];

impl Fixture {
    pub fn client(&self, name: &str) -> &Client {
        let index = match name {
            "basic" => 0,
            "d1" => 1,
            "jwt" => 2,
            "off" => 3,
            _ => panic!("no client {name}"),
        };
        &self.clients[index]
    }

    pub fn realm(&self, name: &str) -> Arc<RealmEntry> {
        self.authority.realm(name).expect("fixture realm")
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// A compact JWS of `header` and `claims` (the bytes as given), signed with one of
    /// `jwt`'s keys: 0 ES256, 1 EdDSA, 2 RS256.
    pub fn sign_assertion(&self, key: u8, header: &[u8], claims: &[u8]) -> String {
        let mut jws = B64.encode(header);
        jws.push('.');
        jws.push_str(&B64.encode(claims));
        let signature = match key % 3 {
            0 => self
                .ec
                .sign(&LcRandom::new(), jws.as_bytes())
                .expect("ES256 signs")
                .as_ref()
                .to_vec(),
            1 => self.ed.sign(jws.as_bytes()).as_ref().to_vec(),
            _ => {
                let mut sig = vec![0u8; self.rsa.public_modulus_len()];
                self.rsa
                    .sign(
                        &RSA_PKCS1_SHA256,
                        &LcRandom::new(),
                        jws.as_bytes(),
                        &mut sig,
                    )
                    .expect("RS256 signs");
                sig
            }
        };
        jws.push('.');
        jws.push_str(&B64.encode(signature));
        jws
    }
}

/// The fixture, built on first use.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

fn build() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::var_os("TESSERA_FUZZ_TMP")
        .map_or_else(std::env::temp_dir, PathBuf::from)
        .join(format!("tessera-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let url = format!("sqlite://{}", dir.join("fuzz.db").display());

    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key");
    let ed = Ed25519KeyPair::generate().expect("Ed25519 key");
    let rsa = RsaKeyPair::from_pkcs8(include_bytes!("../testdata/rsa_key.pk8")).expect("RSA key");
    let point = ec.public_key().as_ref();
    let jwks = serde_json::json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec",
         "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": B64.encode(ed.public_key().as_ref())},
    ]});

    let (authority, clients, tokens) = rt.block_on(async {
        let store = tessera_store::open(&url).await.expect("SQLite store");
        let authority = Authority::open(
            store,
            MasterKey::from_text("a master key for fuzzing, at least 32 characters")
                .expect("master key"),
            PublicUrl::parse("public_url", SERVER_URL).expect("public URL"),
            Arc::new(ManualClock::new(NOW_MS)),
            Arc::new(FixedRandom(AtomicU64::new(1))),
        )
        .await
        .expect("authority");
        for (name, format, alg) in [
            ("ed", TokenFormat::Jwt, SigningAlg::EdDsa),
            ("rs", TokenFormat::Jwt, SigningAlg::Rs256),
            ("op", TokenFormat::Opaque, SigningAlg::Es256),
        ] {
            authority
                .manage()
                .create_realm(
                    Audit::by(Actor::cli()),
                    NewRealm {
                        name: RealmName::parse("name", name).expect("realm name"),
                        hosts: Vec::new(),
                        public_url: None,
                        token_format: Some(format),
                        signing_alg: Some(alg),
                        token_prefix: None,
                        token_type: None,
                        key_rotation_secs: None,
                    },
                )
                .await
                .expect("realm");
        }
        let app = |name: &str, methods: &[AuthMethod]| NewApplication {
            name: name.to_owned(),
            scopes: ScopeSet::parse_list("scopes", &["read", "write"]).expect("scopes"),
            token_ttl: Some(TokenTtl::parse("token_ttl", 600).expect("ttl")),
            refresh_token_ttl: Some(TokenTtl::parse("refresh_token_ttl", 3600).expect("ttl")),
            auth_methods: Some(methods.to_vec()),
            enabled: true,
            ..NewApplication::default()
        };
        let mut specs = vec![
            (
                "default",
                app(
                    "basic",
                    &[AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost],
                ),
            ),
            (
                "default",
                NewApplication {
                    public_key: Some(rsa_key::D1_PUBLIC_PEM.to_owned()),
                    ..app(
                        "d1",
                        &[AuthMethod::SignedCredential, AuthMethod::ClientSecretPost],
                    )
                },
            ),
            (
                "default",
                NewApplication {
                    public_key: Some(rsa_key::PUBLIC_PEM.to_owned()),
                    jwks: Some(jwks),
                    ..app("jwt", &[AuthMethod::PrivateKeyJwt])
                },
            ),
            (
                "default",
                NewApplication {
                    enabled: false,
                    public_key: Some(rsa_key::PUBLIC_PEM.to_owned()),
                    ..app("off", &AuthMethod::ALL)
                },
            ),
        ];
        for realm in ["ed", "rs", "op"] {
            specs.push((realm, app("basic", &[AuthMethod::ClientSecretBasic])));
        }
        let mut clients = Vec::new();
        for (realm, new) in specs {
            let methods = new.auth_methods.clone().unwrap_or_default();
            let enabled = new.enabled;
            let (app, secret) = authority
                .manage()
                .create_application(Audit::by(Actor::cli()), realm, new)
                .await
                .expect("application");
            clients.push(Client {
                realm,
                client_id: app.client_id.as_str().to_owned(),
                secret,
                methods,
                enabled,
            });
        }
        let mut tokens = Vec::new();
        for client in clients
            .iter()
            .filter(|c| c.allows(AuthMethod::ClientSecretBasic))
        {
            let realm = authority.realm(client.realm).expect("realm");
            let granted = authority
                .grant(
                    &realm,
                    &TokenRequest {
                        grant_type: "client_credentials".to_owned(),
                        scope: None,
                        resources: Vec::new(),
                        refresh_token: None,
                        auth: ClientAuth::Basic {
                            client_id: client.client_id.clone(),
                            secret: client.secret.clone(),
                        },
                        dialect: Dialect::Standard,
                    },
                )
                .await
                .expect("token");
            tokens.push((client.realm, granted.access_token));
        }
        (Arc::new(authority), clients, tokens)
    });
    if std::env::var_os("TESSERA_FUZZ_SHOW").is_some() {
        for client in &clients {
            eprintln!("{client:?}");
        }
        for token in &tokens {
            eprintln!("{token:?}");
        }
    }
    Fixture {
        rt,
        authority,
        clients,
        tokens,
        ec,
        ed,
        rsa,
    }
}

/// Cuts `data` at its first `n - 1` NUL bytes into `n` fields (missing ones empty). A
/// NUL cannot appear in a header, so header fields come first and a body takes the rest.
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    for _ in 1..n {
        match rest.iter().position(|&b| b == 0) {
            Some(at) => {
                out.push(&rest[..at]);
                rest = &rest[at + 1..];
            }
            None => {
                out.push(rest);
                rest = &[];
            }
        }
    }
    out.push(rest);
    out
}

/// A PKCS#1 v1.5 type-1 block of `message` made with `d1`'s RSA private key and no
/// digest: what a D1 client sends (`openssl rsautl -sign`). `None` when the message is
/// too long for the key.
pub fn rsa_private_block(message: &[u8]) -> Option<Vec<u8>> {
    struct Private {
        n: BigUint,
        /// Each prime, the private exponent modulo it less one, its CRT coefficient.
        parts: Vec<(BigUint, BigUint, BigUint)>,
    }
    static PRIVATE: OnceLock<Private> = OnceLock::new();
    let key = PRIVATE.get_or_init(|| {
        let hex = |s: &str| BigUint::parse_bytes(s.as_bytes(), 16).expect("hex");
        let parts: Vec<_> = rsa_key::D1_PRIMES
            .iter()
            .map(|(p, d, c)| (hex(p), hex(d), hex(c)))
            .collect();
        let n = parts.iter().map(|(p, _, _)| p).product();
        Private { n, parts }
    });
    let k = usize::try_from(key.n.bits().div_ceil(8)).ok()?;
    let pad = k.checked_sub(message.len() + 3)?;
    if pad < 8 {
        return None;
    }
    let mut em = vec![0x00, 0x01];
    em.extend(std::iter::repeat_n(0xFF, pad));
    em.push(0x00);
    em.extend_from_slice(message);
    let m = BigUint::from_bytes_be(&em);
    // The private operation by the Chinese remainder theorem, one prime at a time.
    let s: BigUint = key
        .parts
        .iter()
        .map(|(p, d, c)| (&m % p).modpow(d, p) * c)
        .sum::<BigUint>()
        % &key.n;
    let s = s.to_bytes_be();
    let mut block = vec![0u8; k - s.len()];
    block.extend_from_slice(&s);
    Some(block)
}

/// The invariants of reading client authentication off a request, whatever it holds:
/// a failure is `invalid_request`; Basic credentials survive being written into a
/// header again; body credentials are the body's parameters.
pub fn check_client_auth(headers: &axum::http::HeaderMap, body: &tessera_server::fuzzing::Body) {
    use axum::http::{HeaderValue, header};
    use base64::engine::general_purpose::STANDARD;
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

    match body.client_auth(headers) {
        Err(err) => assert_eq!(err.code(), "invalid_request", "{err:?}"),
        Ok(ClientAuth::None) => {}
        Ok(ClientAuth::Basic { client_id, secret }) => {
            assert!(!client_id.is_empty(), "a Basic client id is never empty");
            let encoded = format!(
                "{}:{}",
                utf8_percent_encode(&client_id, NON_ALPHANUMERIC),
                utf8_percent_encode(&secret, NON_ALPHANUMERIC)
            );
            let value = format!("Basic {}", STANDARD.encode(encoded));
            let mut again = axum::http::HeaderMap::new();
            again.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&value).expect("base64 is a header value"),
            );
            let empty = tessera_server::fuzzing::Body::parse(&again, b"").expect("empty body");
            assert_eq!(
                empty.client_auth(&again).expect("re-encoded Basic reads"),
                ClientAuth::Basic {
                    client_id: client_id.clone(),
                    secret: secret.clone()
                },
                "Basic credentials round-trip"
            );
            if let Ok(Some(id)) = body.single("client_id") {
                assert_eq!(id, client_id, "the body's client_id agrees with Basic");
            }
        }
        Ok(ClientAuth::Post { client_id, secret }) => {
            assert_eq!(body.single("client_id").ok().flatten(), Some(&*client_id));
            assert_eq!(body.single("client_secret").ok().flatten(), Some(&*secret));
        }
        Ok(ClientAuth::Assertion {
            client_id,
            assertion_type,
            assertion,
        }) => {
            assert_eq!(
                body.single("client_id").ok().flatten(),
                client_id.as_deref()
            );
            assert_eq!(
                body.single("client_assertion_type").ok().flatten(),
                Some(&*assertion_type)
            );
            assert_eq!(
                body.single("client_assertion").ok().flatten(),
                Some(&*assertion)
            );
            assert_eq!(body.single("client_secret").ok().flatten(), None);
        }
    }
    if let Some(token) = tessera_server::fuzzing::bearer_token(headers) {
        assert!(!token.is_empty() && token.trim() == token, "{token:?}");
    }
}
