//! A real Tessera server per test, and the calls the tests make to it: admin, metrics,
//! revocation, and keys for applications that sign.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
};
use serde_json::{Value, json};
use tempfile::TempDir;
use tessera_client::{ClientCredentials, PrivateKey, TokenRequest};
use tessera_server::Running;
use tessera_test_support::pem;

pub const ADMIN_KEY: &str = "client-test-admin-key-0123456789";
/// 40 characters; the server wants at least 32.
pub const MASTER_KEY: &str = "client-test-master-key-0123456789-abcdef";

pub struct TestServer {
    pub running: Running,
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT` of the public listener: the default realm's issuer.
    pub base: String,
    pub admin_base: String,
    _dir: TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.running.shutdown();
    }
}

impl TestServer {
    pub async fn start() -> Self {
        let started = tessera_test_support::server::start(ADMIN_KEY, MASTER_KEY, |_| {}).await;
        Self {
            base: started.public_base(),
            admin_base: started.admin_base(),
            running: started.running,
            http: reqwest::Client::new(),
            _dir: started.data_dir,
        }
    }

    /// The default realm's issuer (`iss` of its tokens).
    pub fn issuer(&self) -> String {
        self.running.public_url.to_string()
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.base)
    }

    /// A token request at `/oauth2/token` with `credentials`.
    pub fn request(&self, credentials: ClientCredentials) -> TokenRequest {
        TokenRequest::parse(&self.token_url(), credentials).unwrap()
    }

    /// Creates an application in `realm`; its client id and secret.
    pub async fn create_app_in(&self, realm: &str, body: Value) -> (String, String) {
        let response = self
            .http
            .post(format!(
                "{}/admin/v1/realms/{realm}/applications",
                self.admin_base
            ))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        let view: Value = response.json().await.unwrap();
        (
            view["client_id"].as_str().unwrap().to_owned(),
            view["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn create_app(&self, body: Value) -> (String, String) {
        self.create_app_in("default", body).await
    }

    pub async fn create_realm(&self, name: &str) {
        let response = self
            .http
            .post(format!("{}/admin/v1/realms", self.admin_base))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }

    /// A counter of `/metrics`, by its whole series name (labels included).
    pub async fn metric(&self, series: &str) -> u64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in {text}"))
    }

    /// How many tokens the token endpoint has issued.
    pub async fn tokens_issued(&self) -> u64 {
        self.metric("tessera_tokens_issued_total ").await
    }

    /// RFC 7009 revocation by the token's owner.
    pub async fn revoke(&self, id: &str, secret: &str, token: &str) {
        let response = self
            .http
            .post(format!("{}/oauth2/revoke", self.base))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// `GET /verify` with the token: its `X-Client-Id`, or `None` when refused.
    pub async fn verify(&self, token: &str) -> Option<String> {
        let response = self
            .http
            .get(format!("{}/verify", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (response.status() == 200).then(|| {
            response.headers()["x-client-id"]
                .to_str()
                .unwrap()
                .to_owned()
        })
    }
}

/// A fresh key pair: the private key as the client reads it, the public key as the
/// application registers it (PEM).
pub struct TestKey {
    pub private_pem: String,
    pub public_pem: String,
}

impl TestKey {
    pub fn rsa() -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let private = AsDer::<Pkcs8V1Der>::as_der(&pair).unwrap();
        let public = pair.public_key().as_der().unwrap();
        Self {
            private_pem: pem("PRIVATE KEY", private.as_ref()),
            public_pem: pem("PUBLIC KEY", public.as_ref()),
        }
    }

    pub fn p256() -> Self {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
        let public = pair.public_key().as_der().unwrap();
        Self {
            private_pem: pem("PRIVATE KEY", doc.as_ref()),
            public_pem: pem("PUBLIC KEY", public.as_ref()),
        }
    }

    pub fn ed25519() -> Self {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let public = pair.public_key().as_der().unwrap();
        Self {
            private_pem: pem("PRIVATE KEY", doc.as_ref()),
            public_pem: pem("PUBLIC KEY", public.as_ref()),
        }
    }

    pub fn private_key(&self) -> PrivateKey {
        PrivateKey::from_pem(&self.private_pem).unwrap()
    }
}
