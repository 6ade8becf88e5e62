//! Several `tessera serve` processes on one PostgreSQL database behave as one server
//! (docs/contract.md §4, §7): what one node is told, every node obeys within one second.
//!
//! Each test gets its own database, created through `TESSERA_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`) and dropped afterwards.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{ADMIN_KEY, Server, json_of, tessera, token};

/// What docs/contract.md §4 allows between a change on one node and its effect on
/// another.
const WITHIN: Duration = Duration::from_secs(1);

/// A fresh PostgreSQL database, dropped (with any connection left to it) on drop.
struct Database {
    url: String,
    _database: tessera_test_support::postgres::Database,
}

impl Database {
    async fn create() -> Self {
        let database = tessera_test_support::postgres::Database::create("tessera_test")
            .await
            .unwrap_or_else(|e| panic!("the multi-node tests need their database: {e}"));
        Self {
            url: database.url().to_owned(),
            _database: database,
        }
    }
}

/// A node on `database`, with its own data directory.
fn node(data: &Path, database: &Database) -> Server {
    Server::start_with(data, &[("TESSERA_DATABASE_URL", &database.url)])
}

/// Waits until the node serves, store and all.
async fn ready(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = reqwest::get(format!("http://{}/readyz", server.public)).await;
        if answer.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "the node never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Retries `check` until it holds, and fails if that took longer than [`WITHIN`].
async fn within_a_second(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            start.elapsed() < WITHIN,
            "{what}: not obeyed within one second"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn admin(server: &Server, method: reqwest::Method, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("http://{}/admin/v1{path}", server.admin))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn post_form(
    server: &Server,
    path: &str,
    (id, secret): (&str, &str),
    form: &[(&str, &str)],
) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{}{path}", server.public))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn is_active(server: &Server, prefix: &str, client: (&str, &str), access: &str) -> bool {
    let response = post_form(
        server,
        &format!("{prefix}/oauth2/introspect"),
        client,
        &[("token", access)],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["active"] == json!(true)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_on_one_database_behave_as_one() {
    let database = Database::create().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Both start at once on an empty database: they migrate it and make the default
    // realm together.
    let a = Server::spawn_with(dir_a.path(), &[("TESSERA_DATABASE_URL", &database.url)]);
    let b = Server::spawn_with(dir_b.path(), &[("TESSERA_DATABASE_URL", &database.url)]);
    a.wait_healthy();
    b.wait_healthy();
    ready(&a).await;
    ready(&b).await;

    // An application created on A gets tokens from B.
    let created = admin(
        &a,
        reqwest::Method::POST,
        "/realms/default/applications",
        json!({"name": "shared", "scopes": ["read"]}),
    )
    .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let client = (id.as_str(), secret.as_str());
    within_a_second("an application created on A, on B", async || {
        token(&b, &id, &secret).await.status() == 200
    })
    .await;
    let body: Value = token(&b, &id, &secret).await.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert!(
        is_active(&a, "", client, &access).await,
        "A checks B's signature: the signing keys are shared"
    );

    // Revoked on B: inactive on A.
    let revoked = post_form(&b, "/oauth2/revoke", client, &[("token", &access)]).await;
    assert_eq!(revoked.status(), 200);
    within_a_second("a revocation on B, on A", async || {
        !is_active(&a, "", client, &access).await
    })
    .await;

    // Deleted on A: B refuses its secret.
    admin(
        &a,
        reqwest::Method::DELETE,
        &format!("/realms/default/applications/{id}"),
        Value::Null,
    )
    .await;
    within_a_second("a deletion on A, on B", async || {
        token(&b, &id, &secret).await.status() == 401
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn realms_keys_and_revoke_all_reach_every_node() {
    let database = Database::create().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(dir_a.path(), &database);
    let b = node(dir_b.path(), &database);
    ready(&a).await;
    ready(&b).await;

    admin(
        &b,
        reqwest::Method::POST,
        "/realms",
        json!({"name": "tenant", "signing_alg": "EdDSA"}),
    )
    .await;
    let mut created = Value::Null;
    within_a_second("a realm created on B, on A", async || {
        let response = reqwest::Client::new()
            .post(format!(
                "http://{}/admin/v1/realms/tenant/applications",
                a.admin
            ))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"name": "tenant app"}))
            .send()
            .await
            .unwrap();
        if response.status() != 201 {
            return false;
        }
        created = response.json().await.unwrap();
        true
    })
    .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let client = (id.as_str(), secret.as_str());
    let token_path = "/realms/tenant/oauth2/token";
    let grant = [("grant_type", "client_credentials")];
    let mut access = String::new();
    within_a_second("an application created on A, on B", async || {
        let response = post_form(&b, token_path, client, &grant).await;
        if response.status() != 200 {
            return false;
        }
        let body: Value = response.json().await.unwrap();
        access = body["access_token"].as_str().unwrap().to_owned();
        true
    })
    .await;
    assert!(is_active(&a, "/realms/tenant", client, &access).await);

    // Every token of the application, revoked on A: dead on B.
    admin(
        &a,
        reqwest::Method::POST,
        &format!("/realms/tenant/applications/{id}/revoke-tokens"),
        json!({}),
    )
    .await;
    within_a_second("revoke-all on A, on B", async || {
        !is_active(&b, "/realms/tenant", client, &access).await
    })
    .await;
}

/// A token from `server` for `client`, and the `kid` that signed it.
async fn signed_token(server: &Server, client: (&str, &str)) -> (String, String) {
    use base64::Engine;
    let response = token(server, client.0, client.1).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap().to_owned();
    let header = access.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    (access, header["kid"].as_str().unwrap().to_owned())
}

async fn published_kids(server: &Server) -> Vec<String> {
    let jwks: Value = reqwest::get(format!("http://{}/.well-known/jwks.json", server.public))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_rotated_on_one_node_are_published_everywhere_before_any_node_signs_with_them() {
    let database = Database::create().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(dir_a.path(), &database);
    let b = node(dir_b.path(), &database);
    ready(&a).await;
    ready(&b).await;
    let created = admin(
        &a,
        reqwest::Method::POST,
        "/realms/default/applications",
        json!({"name": "rotating"}),
    )
    .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let client = (id.as_str(), secret.as_str());
    let mut old = (String::new(), String::new());
    within_a_second("an application created on A, on B", async || {
        if token(&b, client.0, client.1).await.status() != 200 {
            return false;
        }
        old = signed_token(&b, client).await;
        true
    })
    .await;
    let old_kid = old.1.clone();

    let lead = 4;
    let realm = admin(
        &a,
        reqwest::Method::POST,
        "/realms/default/rotate-keys",
        json!({"activate_in": lead}),
    )
    .await;
    let rotated_at = Instant::now();
    let keys = realm["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{realm}");
    let new_kid = keys
        .iter()
        .find(|k| k["kid"] != json!(old_kid))
        .and_then(|k| k["kid"].as_str())
        .unwrap()
        .to_owned();
    within_a_second("a key rotated on A, in B's JWKS", async || {
        published_kids(&b).await.contains(&new_kid)
    })
    .await;
    assert!(published_kids(&a).await.contains(&old_kid));
    // Published, but neither node signs with it before its time.
    assert!(
        rotated_at.elapsed() < Duration::from_secs(lead - 2),
        "too slow to tell"
    );
    assert_eq!(signed_token(&a, client).await.1, old_kid);
    assert_eq!(signed_token(&b, client).await.1, old_kid);

    tokio::time::sleep(Duration::from_secs(lead + 1).saturating_sub(rotated_at.elapsed())).await;
    let from_a = signed_token(&a, client).await;
    let from_b = signed_token(&b, client).await;
    assert_eq!(from_a.1, new_kid);
    assert_eq!(from_b.1, new_kid);
    // Tokens signed by either key, on either node, verify on the other.
    assert!(is_active(&b, "", client, &from_a.0).await);
    assert!(is_active(&a, "", client, &from_b.0).await);
    assert!(is_active(&a, "", client, &old.0).await);
    assert!(published_kids(&b).await.contains(&old_kid));
}

#[tokio::test(flavor = "multi_thread")]
async fn tessera_migrate_prepares_the_database_for_nodes_that_do_not_migrate() {
    let database = Database::create().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TESSERA_DATABASE_URL", database.url.as_str()),
        ("TESSERA_MIGRATE_ON_START", "false"),
    ];

    // Not migrated, and told not to: the node refuses to start, and says why.
    let mut refused = tessera(dir.path())
        .arg("serve")
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .env("TESSERA_ADMIN_LISTEN", "127.0.0.1:0")
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while refused.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = refused.kill();
            panic!("a node started on a database that was never migrated");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = refused.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tessera migrate"), "{stderr}");

    // Two operators migrating at once: both succeed.
    let migrate = || {
        tessera(dir.path())
            .args(["migrate", "--json"])
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (migrate(), migrate());
    for child in [first, second] {
        let done = json_of(&child.wait_with_output().unwrap());
        assert_eq!(done["ok"], true);
    }

    let server = Server::start_with(dir.path(), &env);
    ready(&server).await;
    // The CLI works on the same database; the node obeys it like another node.
    let created = json_of(
        &tessera(dir.path())
            .args(["app", "create", "--name", "from-cli", "--json"])
            .envs(env)
            .output()
            .unwrap(),
    );
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    within_a_second("an application created by the CLI", async || {
        token(&server, id, secret).await.status() == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_under_load_leaves_the_others_serving() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let database = Database::create().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(dir_a.path(), &database);
    let b = node(dir_b.path(), &database);
    ready(&a).await;
    ready(&b).await;
    let created = admin(
        &a,
        reqwest::Method::POST,
        "/realms/default/applications",
        json!({"name": "busy"}),
    )
    .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let client = (id.as_str(), secret.as_str());
    within_a_second("an application created on A, on B", async || {
        token(&b, &id, &secret).await.status() == 200
    })
    .await;
    let from_a: Value = token(&a, &id, &secret).await.json().await.unwrap();
    let from_a = from_a["access_token"].as_str().unwrap().to_owned();

    // Load on both nodes; B must answer every request whatever happens to A.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let http = reqwest::Client::new();
    let mut load = Vec::new();
    // One client per node: enough to be killed mid-request, light enough to leave the
    // tests running beside this one their second.
    for (node, counts) in [(&a, false), (&b, true)] {
        let url = format!("http://{}/oauth2/token", node.public);
        let (http, stop, served, failed) =
            (http.clone(), stop.clone(), served.clone(), failed.clone());
        let (id, secret) = (id.clone(), secret.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = http
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                if counts {
                    match answer {
                        Ok(r) if r.status() == 200 => served.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.signal("-9");
    drop(a);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // While A is gone, B takes a revocation of a token A issued, and a new application.
    let revoked = post_form(&b, "/oauth2/revoke", client, &[("token", &from_a)]).await;
    assert_eq!(revoked.status(), 200);
    let later = admin(
        &b,
        reqwest::Method::POST,
        "/realms/default/applications",
        json!({"name": "made while A was down"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "B failed requests");
    assert!(served.load(Ordering::Relaxed) > 0);

    // A comes back on the same database and knows everything that happened meanwhile.
    let a = node(dir_a.path(), &database);
    ready(&a).await;
    assert!(!is_active(&a, "", client, &from_a).await);
    let (later_id, later_secret) = (
        later["client_id"].as_str().unwrap(),
        later["client_secret"].as_str().unwrap(),
    );
    assert_eq!(token(&a, later_id, later_secret).await.status(), 200);
}
