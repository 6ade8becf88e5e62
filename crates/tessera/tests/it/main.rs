//! The `tessera` binary as a user runs it: admin commands on the store, and the server
//! process (start, changes from the CLI, `kill -9`, SIGTERM).

// Test code may stop at the first surprise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod crash;
mod multinode;
mod token_cli;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ADMIN_KEY: &str = "cli-test-admin-key-0123456789";
const MASTER_KEY: &str = "cli-test-master-key-0123456789-0123456789";

fn tessera(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TESSERA_DATA_DIR", data)
        .env("TESSERA_ADMIN_KEY", ADMIN_KEY)
        .env("TESSERA_MASTER_KEY", MASTER_KEY);
    command
}

fn run(data: &Path, args: &[&str]) -> Output {
    tessera(data).args(args).output().expect("run tessera")
}

fn json_of(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Server {
    child: Child,
    public: String,
    admin: String,
}

impl Server {
    fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    /// A server with extra environment (such as `TESSERA_DATABASE_URL`), started and
    /// listening.
    fn start_with(data: &Path, env: &[(&str, &str)]) -> Self {
        let server = Self::spawn_with(data, env);
        server.wait_healthy();
        server
    }

    /// A server process on two free loopback ports, not waited for.
    fn spawn_with(data: &Path, env: &[(&str, &str)]) -> Self {
        let (public, admin) = (
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        );
        let child = tessera(data)
            .args(["serve"])
            .env("TESSERA_LISTEN", &public)
            .env("TESSERA_ADMIN_LISTEN", &admin)
            .env("TESSERA_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn serve");
        Self {
            child,
            public,
            admin,
        }
    }

    /// Until both listeners answer and `/readyz` says the store is open: a port that
    /// takes connections is not enough, as the listeners are bound before the store
    /// is opened (and migrated).
    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&self.admin).is_ok()
                && http_status(&self.public, "/readyz") == Some(200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

/// The status code of `GET path`, spoken over a plain socket.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(head.get(9..12)?).ok()?.parse().ok()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn token(server: &Server, id: &str, secret: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{}/oauth2/token", server.public))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
}

#[test]
fn admin_commands_print_json_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let created = json_of(&run(
        data,
        &[
            "app",
            "create",
            "--name",
            "billing",
            "--scopes",
            "read write",
            "--token-ttl",
            "36000",
            "--json",
        ],
    ));
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43, "256-bit secret");
    assert!(
        id.chars()
            .chain(secret.chars())
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "ids and secrets use only A-Z a-z 0-9 - _"
    );
    assert_eq!(created["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(created["token_ttl"], 36000);

    let shown = json_of(&run(data, &["app", "show", id, "--json"]));
    assert_eq!(shown["name"], "billing");
    assert!(
        shown.get("client_secret").is_none(),
        "the secret is shown only once"
    );

    let table = run(data, &["app", "list"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("CLIENT_ID"), "{text}");
    assert!(text.contains(id) && !text.contains(secret), "{text}");

    let issued = json_of(&run(
        data,
        &["app", "issue-token", id, "--ttl", "120", "--json"],
    ));
    assert_eq!(issued["expires_in"], 120);

    let realm = json_of(&run(
        data,
        &[
            "realm",
            "create",
            "sandbox",
            "--host",
            "sandbox.api.example",
            "--json",
        ],
    ));
    assert_eq!(realm["hosts"], serde_json::json!(["sandbox.api.example"]));
    let realms = json_of(&run(data, &["realm", "list", "--json"]));
    assert_eq!(realms.as_array().map(Vec::len), Some(2));

    let rotated = json_of(&run(
        data,
        &["app", "rotate-secret", id, "--grace-period", "60", "--json"],
    ));
    assert_ne!(rotated["client_secret"].as_str(), Some(secret));
    json_of(&run(data, &["app", "revoke-tokens", id, "--json"]));
    json_of(&run(data, &["app", "delete", id, "--json"]));
    let gone = run(data, &["app", "show", id]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not found"));
}

#[test]
fn app_list_pages_and_searches_and_audit_shows_what_the_cli_did() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for (id, name) in [("a1", "Billing"), ("a2", "reports"), ("a3", "billing-eu")] {
        json_of(&run(
            data,
            &["app", "create", "--name", name, "--client-id", id, "--json"],
        ));
    }
    let ids = |output: &Output| -> Vec<String> {
        json_of(output)
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["client_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = run(data, &["app", "list", "--limit", "2", "--json"]);
    assert_eq!(ids(&first), ["a1", "a2"]);
    assert!(String::from_utf8_lossy(&first.stderr).contains("--after a2"));
    let rest = run(
        data,
        &["app", "list", "--limit", "2", "--after", "a2", "--json"],
    );
    assert_eq!(ids(&rest), ["a3"]);
    let found = run(data, &["app", "list", "--search", "BILL", "--json"]);
    assert_eq!(ids(&found), ["a1", "a3"]);
    json_of(&run(data, &["app", "delete", "a2", "--json"]));

    let log = json_of(&run(data, &["audit", "--json"]));
    let log = log.as_array().unwrap();
    let actions: Vec<_> = log
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["client_id"].as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("application.delete", Some("a2")),
            ("application.create", Some("a3")),
            ("application.create", Some("a2")),
            ("application.create", Some("a1")),
            // The default realm, made by the first command: by the server itself.
            ("realm.create", None),
        ]
    );
    let (made, by_cli) = log.split_last().unwrap();
    assert_eq!(made["actor"], "system");
    assert!(by_cli.iter().all(|e| e["actor"] == "cli"));
    let table = run(data, &["audit", "--client-id", "a1"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("SEQ"), "{text}");
    assert!(
        text.contains("application.create") && !text.contains("a2"),
        "{text}"
    );
}

#[test]
fn quota_flags_set_keep_and_clear_an_applications_quota() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let created = json_of(&run(
        data,
        &[
            "app",
            "create",
            "--name",
            "metered",
            "--quota-per-minute",
            "100",
            "--json",
        ],
    ));
    let id = created["client_id"].as_str().unwrap();
    assert_eq!(created["quota"], serde_json::json!({"per_minute": 100}));
    // A flag changes its own limit and keeps the other.
    let updated = json_of(&run(
        data,
        &["app", "update", id, "--quota-per-day", "5000", "--json"],
    ));
    assert_eq!(
        updated["quota"],
        serde_json::json!({"per_minute": 100, "per_day": 5000})
    );
    let table = run(data, &["app", "show", id]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("100/min, 5000/day"), "{text}");
    // Other changes leave it alone.
    let renamed = json_of(&run(data, &["app", "update", id, "--name", "m2", "--json"]));
    assert_eq!(renamed["quota"], updated["quota"]);
    let cleared = json_of(&run(data, &["app", "update", id, "--no-quota", "--json"]));
    assert_eq!(cleared["quota"], serde_json::Value::Null);
    let shown = json_of(&run(data, &["app", "show", id, "--json"]));
    assert_eq!(shown["quota"], serde_json::Value::Null);
    // Out of range: the field named, nothing changed; --no-quota with a limit: refused.
    let bad = run(data, &["app", "update", id, "--quota-per-minute", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("quota"));
    let both = run(
        data,
        &["app", "update", id, "--no-quota", "--quota-per-day", "5"],
    );
    assert_eq!(both.status.code(), Some(2));
    let shown = json_of(&run(data, &["app", "show", id, "--json"]));
    assert_eq!(shown["quota"], serde_json::Value::Null);
}

#[test]
fn bad_arguments_exit_2_with_a_message_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (
            vec!["app", "create", "--name", "x", "--token-ttl", "0"],
            "token_ttl",
        ),
        (
            vec!["app", "create", "--name", "x", "--scopes", "bad\"scope"],
            "scopes",
        ),
        (
            vec!["app", "create", "--name", "x", "--auth-methods", "magic"],
            "auth_methods",
        ),
        (vec!["realm", "create", "no/slash"], "name"),
        (vec!["app", "create"], "--name"),
        (vec!["app", "frobnicate"], "frobnicate"),
    ] {
        let output = run(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let bad_env = tessera(dir.path())
        .env("TESSERA_LISTEN", "not-an-address")
        .args(["app", "list"])
        .output()
        .unwrap();
    assert!(!bad_env.status.success());
    assert!(String::from_utf8_lossy(&bad_env.stderr).contains("TESSERA_LISTEN"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_beside_a_running_server_takes_effect_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let created = json_of(&run(
        dir.path(),
        &["app", "create", "--name", "late", "--json"],
    ));
    let (id, secret) = (
        created["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"].as_str().unwrap().to_owned(),
    );
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let response = token(&server, &id, &secret).await;
        if response.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server never saw the new application"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    json_of(&run(
        dir.path(),
        &["app", "update", &id, "--disable", "--json"],
    ));
    let deadline = Instant::now() + Duration::from_secs(1);
    while token(&server, &id, &secret).await.status() == 200 {
        assert!(
            Instant::now() < deadline,
            "the server never saw the disable"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acknowledged_admin_write_survives_kill_9_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!(
            "http://{}/admin/v1/realms/default/applications",
            server.admin
        ))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({"name": "durable", "scopes": ["read"]}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    server.signal("-9");
    drop(server);

    let mut server = Server::start(dir.path());
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    let response = token(&server, id, secret).await;
    assert_eq!(response.status(), 200, "the application survived kill -9");

    server.signal("-TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop the server");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

/// The database, its WAL and shared-memory files and every key file are owner-only,
/// whatever the data directory's mode, and a database an older version left readable
/// by others is tightened at start.
#[tokio::test(flavor = "multi_thread")]
async fn the_store_and_key_files_are_owner_only_whatever_the_directory_allows() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A database file from before, readable by everyone.
    let old = dir.path().join("tessera.db");
    std::fs::write(&old, b"").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (public, admin) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let child = tessera(dir.path())
        .env_remove("TESSERA_MASTER_KEY")
        .env_remove("TESSERA_ADMIN_KEY")
        .args(["serve"])
        .env("TESSERA_LISTEN", &public)
        .env("TESSERA_ADMIN_LISTEN", &admin)
        .env("TESSERA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let server = Server {
        child,
        public,
        admin,
    };
    server.wait_healthy();
    let admin_key = std::fs::read_to_string(dir.path().join("admin.key")).unwrap();
    // A write, so that the WAL holds something.
    reqwest::Client::new()
        .post(format!(
            "http://{}/admin/v1/realms/default/applications",
            server.admin
        ))
        .bearer_auth(admin_key.trim())
        .json(&serde_json::json!({"name": "perms"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    for name in [
        "tessera.db",
        "tessera.db-wal",
        "tessera.db-shm",
        "tessera.db.migrate-lock",
        "master.key",
        "admin.key",
    ] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} is {:o}", mode & 0o777);
    }
}
