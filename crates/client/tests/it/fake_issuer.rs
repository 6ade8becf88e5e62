//! A stand-in issuer whose signing keys the test holds, to forge tokens that are
//! correctly signed yet wrong in one claim, and to count JWKS fetches.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub struct FakeIssuer {
    /// `http://127.0.0.1:PORT`: the issuer, and the base of its endpoints.
    pub issuer: String,
    pub jwks_fetches: Arc<AtomicUsize>,
    /// Private keys (PKCS#8) by `kid`.
    keys: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl FakeIssuer {
    /// An issuer publishing one ES256 key, `k1`.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let keys: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let metadata = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
        let (served_keys, fetches) = (keys.clone(), jwks_fetches.clone());
        let app = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { axum::Json(metadata) }),
            )
            .route(
                "/jwks",
                get(move || async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(jwks(&served_keys.lock().unwrap()))
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let fake = Self {
            issuer,
            jwks_fetches,
            keys,
        };
        fake.add_key("k1");
        fake
    }

    /// Publishes a new key (a rotation).
    pub fn add_key(&self, kid: &str) {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        self.keys
            .lock()
            .unwrap()
            .insert(kid.to_owned(), doc.as_ref().to_vec());
    }

    pub fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Claims of a good token for `audience`, living a minute.
    pub fn claims(&self, audience: &str) -> Value {
        let now = crate::resource::now_s();
        json!({"iss": self.issuer, "sub": "svc", "aud": audience, "exp": now + 60, "iat": now,
               "jti": "j1", "client_id": "svc", "scope": "read write"})
    }

    /// `claims` signed ES256 with key `kid` (or with `k1` under a `kid` the issuer does
    /// not publish), with header `typ`.
    pub fn sign(&self, kid: &str, typ: &str, claims: &Value) -> String {
        let keys = self.keys.lock().unwrap();
        let der = keys.get(kid).or_else(|| keys.get("k1")).unwrap();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(der)).unwrap()
    }
}

fn jwks(keys: &BTreeMap<String, Vec<u8>>) -> Value {
    let listed: Vec<Value> = keys
        .iter()
        .map(|(kid, der)| {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).unwrap();
            let point = pair.public_key().as_ref();
            json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                   "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])})
        })
        .collect();
    json!({"keys": listed})
}
