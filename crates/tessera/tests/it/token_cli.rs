//! `tessera token` as a user runs it, against a real server started in this process:
//! every auth style, the on-disk cache (counted at the server's `/metrics`), credentials
//! from flags, environment and profiles, and the errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use tempfile::TempDir;
use tessera_server::Running;

const ADMIN_KEY: &str = "token-cli-admin-key-0123456789";
const MASTER_KEY: &str = "token-cli-master-key-0123456789-abcdefghi";

struct Setup {
    running: Running,
    base: String,
    admin: String,
    http: reqwest::Client,
    /// The user's home: the cache and the client config live under it.
    home: TempDir,
    _data: TempDir,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.running.shutdown();
    }
}

impl Setup {
    async fn start() -> Self {
        let started = tessera_test_support::server::start(ADMIN_KEY, MASTER_KEY, |_| {}).await;
        Self {
            base: started.public_base(),
            admin: started.admin_base(),
            running: started.running,
            http: reqwest::Client::new(),
            home: tempfile::tempdir().unwrap(),
            _data: started.data_dir,
        }
    }

    fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.base)
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    async fn create_app(&self, body: Value) -> (String, String) {
        let response = self
            .http
            .post(format!(
                "{}/admin/v1/realms/default/applications",
                self.admin
            ))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let view: Value = response.json().await.unwrap();
        (
            view["client_id"].as_str().unwrap().to_owned(),
            view["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    async fn tokens_issued(&self) -> u64 {
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
            .find_map(|l| l.strip_prefix("tessera_tokens_issued_total ")?.parse().ok())
            .unwrap()
    }

    /// The client id `/verify` reads from `token`, or `None` if refused.
    async fn verify(&self, token: &str) -> Option<String> {
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

    /// `tessera token ARGS` with a clean environment plus `env`.
    async fn token(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .arg("token")
            .args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    fn cache_dir(&self) -> PathBuf {
        self.home().join(".cache").join("tessera").join("tokens")
    }
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs openssl in `dir` to make a key file; returns its path.
fn openssl(dir: &Path, name: &str, args: &[&str]) -> String {
    let (command, rest) = args.split_first().unwrap();
    let status = Command::new("openssl")
        .arg(command)
        .args(["-out", name])
        .args(rest)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    dir.join(name).to_str().unwrap().to_owned()
}

fn public_pem(dir: &Path, private: &str) -> String {
    let output = Command::new("openssl")
        .args(["pkey", "-in", private, "-pubout"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_auth_style_prints_a_token_the_server_accepts() {
    let setup = Setup::start().await;
    let url = setup.token_url();
    let (id, secret) = setup
        .create_app(json!({"name": "secret", "scopes": ["read"]}))
        .await;
    for style in ["basic", "post", "json"] {
        let output = setup
            .token(
                &[
                    "--token-url",
                    &url,
                    "--client-id",
                    &id,
                    "--client-secret",
                    &secret,
                    "--auth",
                    style,
                    "--no-cache",
                ],
                &[],
            )
            .await;
        let token = stdout(&output);
        assert_eq!(
            setup.verify(&token).await.as_deref(),
            Some(id.as_str()),
            "{style}"
        );
    }

    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    // PKCS#1 ("RSA PRIVATE KEY"), as `openssl genrsa -traditional` writes it.
    let rsa = openssl(dir, "rsa.pem", &["genrsa", "-traditional", "2048"]);
    let (d1_id, d1_secret) = setup
        .create_app(json!({"name": "d1", "auth_methods": ["signed_credential"],
                           "public_key": public_pem(dir, &rsa)}))
        .await;
    // A secret and a key: a signed credential, unless told otherwise.
    for extra in [&["--auth", "signed-credential"][..], &[][..]] {
        let mut args = vec![
            "--token-url",
            &url,
            "--client-id",
            &d1_id,
            "--client-secret",
            &d1_secret,
            "--private-key",
            &rsa,
            "--no-cache",
        ];
        args.extend_from_slice(extra);
        let token = stdout(&setup.token(&args, &[]).await);
        assert_eq!(setup.verify(&token).await.as_deref(), Some(d1_id.as_str()));
    }

    let ec = openssl(
        dir,
        "ec.pem",
        &["ecparam", "-genkey", "-name", "prime256v1", "-noout"],
    );
    let ed = openssl(dir, "ed.pem", &["genpkey", "-algorithm", "ed25519"]);
    for (name, key) in [("rs256", &rsa), ("es256", &ec), ("eddsa", &ed)] {
        let (jwt_id, _) = setup
            .create_app(json!({"name": name, "auth_methods": ["private_key_jwt"],
                               "public_key": public_pem(dir, key)}))
            .await;
        // A key alone: private_key_jwt.
        let output = setup
            .token(
                &[
                    "--token-url",
                    &url,
                    "--client-id",
                    &jwt_id,
                    "--private-key",
                    key,
                    "--no-cache",
                ],
                &[],
            )
            .await;
        let token = stdout(&output);
        assert_eq!(
            setup.verify(&token).await.as_deref(),
            Some(jwt_id.as_str()),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_call_is_answered_from_an_owner_only_cache() {
    let setup = Setup::start().await;
    let url = setup.token_url();
    let (id, secret) = setup
        .create_app(json!({"name": "cached", "scopes": ["read", "write"], "token_ttl": 600}))
        .await;
    let args = [
        "--token-url",
        url.as_str(),
        "--client-id",
        &id,
        "--client-secret",
        &secret,
    ];
    let before = setup.tokens_issued().await;
    let first = stdout(&setup.token(&args, &[]).await);
    assert_eq!(setup.tokens_issued().await - before, 1);
    let second = stdout(&setup.token(&args, &[]).await);
    assert_eq!(second, first);
    assert_eq!(
        setup.tokens_issued().await - before,
        1,
        "no request the second time"
    );

    // One owner-only file in an owner-only directory, without the secret.
    let files: Vec<PathBuf> = std::fs::read_dir(setup.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files[0]), 0o600);
        assert_eq!(mode(&setup.cache_dir()), 0o700);
    }
    assert!(
        !std::fs::read_to_string(&files[0])
            .unwrap()
            .contains(&secret)
    );

    // --json: the whole response, from the cache too, with the time left.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let response: Value =
        serde_json::from_str(&stdout(&setup.token(&json_args, &[]).await)).unwrap();
    assert_eq!(response["access_token"], first.as_str());
    assert_eq!(response["token_type"], "Bearer");
    assert_eq!(response["scope"], "read write");
    let left = response["expires_in"].as_u64().unwrap();
    assert!((590..=600).contains(&left), "{response}");
    assert_eq!(setup.tokens_issued().await - before, 1);

    // Another scope is another token; --no-cache always asks.
    let mut read_only = args.to_vec();
    read_only.extend(["--scope", "read"]);
    let narrow = stdout(&setup.token(&read_only, &[]).await);
    assert_ne!(narrow, first);
    assert_eq!(setup.tokens_issued().await - before, 2);
    let mut no_cache = args.to_vec();
    no_cache.push("--no-cache");
    let fresh = stdout(&setup.token(&no_cache, &[]).await);
    assert_ne!(fresh, first);
    assert_eq!(setup.tokens_issued().await - before, 3);
    assert_eq!(
        stdout(&setup.token(&args, &[]).await),
        first,
        "the cache kept the first"
    );

    // A wrong secret never gets the cached token of the right one.
    let wrong = [
        "--token-url",
        url.as_str(),
        "--client-id",
        &id,
        "--client-secret",
        "nope",
    ];
    let output = setup.token(&wrong, &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_not_reused_shortly_before_it_expires() {
    let setup = Setup::start().await;
    let url = setup.token_url();
    let (id, secret) = setup
        .create_app(json!({"name": "brief", "token_ttl": 2}))
        .await;
    let args = [
        "--token-url",
        url.as_str(),
        "--client-id",
        &id,
        "--client-secret",
        &secret,
    ];
    let before = setup.tokens_issued().await;
    let first = stdout(&setup.token(&args, &[]).await);
    assert_eq!(stdout(&setup.token(&args, &[]).await), first);
    // Past 90% of its life it is left alone.
    tokio::time::sleep(std::time::Duration::from_millis(1900)).await;
    let next = stdout(&setup.token(&args, &[]).await);
    assert_ne!(next, first);
    assert_eq!(setup.tokens_issued().await - before, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_the_environment_or_a_profile() {
    let setup = Setup::start().await;
    let url = setup.token_url();
    let (id, secret) = setup
        .create_app(json!({"name": "env", "scopes": ["read", "write"]}))
        .await;
    let env = [
        ("TESSERA_TOKEN_URL", url.as_str()),
        ("TESSERA_CLIENT_ID", id.as_str()),
        ("TESSERA_CLIENT_SECRET", secret.as_str()),
    ];
    let token = stdout(&setup.token(&["--no-cache"], &env).await);
    assert_eq!(setup.verify(&token).await.as_deref(), Some(id.as_str()));

    // --help shows which variables are read, never their values.
    let help = setup.token(&["--help"], &env).await;
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("TESSERA_CLIENT_SECRET"), "{text}");
    assert!(!text.contains(&secret));

    let config_dir = setup.home().join(".config").join("tessera");
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = config_dir.join("client.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.billing]\ntoken_url = \"{url}\"\nclient_id = \"{id}\"\n\
             client_secret = \"{secret}\"\nauth = \"post\"\nscope = \"read\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = setup.token(&["--profile", "billing", "--json"], &[]).await;
    let response: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(response["scope"], "read");

    // A profile's secret is not sent for another client, nor to another server.
    let output = setup
        .token(
            &["--profile", "billing", "--client-id", "someone-else"],
            &[],
        )
        .await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("needs a client secret"),
        "{}",
        stderr(&output)
    );

    // A secret in a file others can read is refused.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = setup.token(&["--profile", "billing"], &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("chmod 600"), "{}", stderr(&output));
    let output = setup.token(&["--profile", "nope"], &[]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("billing"),
        "names the profiles it has"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_errors_are_explained_without_echoing_the_secret() {
    let setup = Setup::start().await;
    let url = setup.token_url();
    let (id, secret) = setup
        .create_app(json!({"name": "errs", "scopes": ["read"]}))
        .await;
    let wrong_secret = "wrong-secret-value-123";
    let output = setup
        .token(
            &[
                "--token-url",
                &url,
                "--client-id",
                &id,
                "--client-secret",
                wrong_secret,
            ],
            &[],
        )
        .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(output.stdout.is_empty());
    assert!(
        text.contains("invalid_client") && text.contains("client credentials"),
        "{text}"
    );
    assert!(!text.contains(wrong_secret), "{text}");

    let output = setup
        .token(
            &[
                "--token-url",
                &url,
                "--client-id",
                &id,
                "--client-secret",
                &secret,
                "--scope",
                "admin",
            ],
            &[],
        )
        .await;
    let text = stderr(&output);
    assert!(
        text.contains("invalid_scope") && text.contains("not allowed"),
        "{text}"
    );
    assert!(!text.contains(&secret));

    // A key-based style without a key, and no client id at all: usage errors.
    let output = setup
        .token(
            &[
                "--token-url",
                &url,
                "--client-id",
                &id,
                "--auth",
                "private-key-jwt",
            ],
            &[],
        )
        .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("needs a private key"),
        "{}",
        stderr(&output)
    );
    let output = setup.token(&["--token-url", &url], &[]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--client-id"));
    let output = setup
        .token(
            &["--token-url", &url, "--client-id", &id, "--auth", "magic"],
            &[],
        )
        .await;
    assert_eq!(output.status.code(), Some(2));

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/oauth2/token", closed.local_addr().unwrap());
    drop(closed);
    let output = setup
        .token(
            &[
                "--token-url",
                &dead,
                "--client-id",
                &id,
                "--client-secret",
                &secret,
            ],
            &[],
        )
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot reach"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains(&secret));
}
