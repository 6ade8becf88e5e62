//! `kill -9` in the middle of a mixed load (issue 10): whatever the server acknowledged
//! before the kill (an answer received whole) still holds after a restart on the same
//! data directory. Requests in flight at the kill may have gone either way; they are
//! counted, and nothing is asserted about them.
//!
//! Each load task owns the applications it uses, so it knows what every answer must
//! be: an answer other than that during the load fails the test too, and so does any
//! 5xx.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::{ADMIN_KEY, Server};

/// The public URL both runs of the server are told. The restarted server listens on
/// other ports, and an assertion's `aud` names this URL: were it to change, a replayed
/// assertion would be refused for its `aud`, and the replay check would prove nothing.
const PUBLIC_URL: &str = "http://tessera.crash.test";
/// The failed-authentication limits are off: the test presents every accepted assertion
/// again on purpose and wants each refusal to say why (401, "already used"), not 429.
const ENV: [(&str, &str); 3] = [
    ("TESSERA_PUBLIC_URL", PUBLIC_URL),
    ("TESSERA_FAILED_AUTH_PER_ADDRESS", "0"),
    ("TESSERA_FAILED_AUTH_PER_CLIENT", "0"),
];
const APPLICATIONS: &str = "/admin/v1/realms/default/applications";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long the load runs before the kill, at least; longer (up to `KILL_BY`) until
/// `ENOUGH` answers were acknowledged, on a machine too busy for that.
const BEFORE_KILL: Duration = Duration::from_millis(1500);
const KILL_BY: Duration = Duration::from_secs(6);
const ENOUGH: usize = 300;
/// No load task starts a request after this, kill or no kill.
const LOAD_LIMIT: Duration = Duration::from_secs(8);
/// One request's limit: only a server that hangs comes near it (the kill ends every
/// request in flight at once).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
struct Creds {
    id: String,
    secret: String,
}

impl Creds {
    fn of(created: &Value) -> Option<Self> {
        Some(Self {
            id: created["client_id"].as_str()?.to_owned(),
            secret: created["client_secret"].as_str()?.to_owned(),
        })
    }
}

/// An application whose creation was acknowledged.
struct App {
    id: String,
    /// The last acknowledged secret; `None` once a rotation was sent and not
    /// acknowledged, as it may or may not have happened.
    secret: Option<String>,
    /// Access tokens issued under that secret (which a rotation without grace ends).
    live: Vec<String>,
    /// The last acknowledged name; `None` once a rename was sent and not acknowledged.
    name: Option<String>,
    /// Acknowledged renames and rotations: each must be in the audit log.
    renames: usize,
    rotations: usize,
    /// Whether its deletion was acknowledged; `None` while one is unacknowledged.
    deleted: Option<bool>,
}

/// What the server acknowledged, and what went wrong, during the load.
#[derive(Default)]
struct Ledger {
    apps: Vec<App>,
    /// Access tokens that must be active after the restart.
    live_access: Vec<String>,
    /// Access tokens that must not be, and why.
    dead_access: Vec<(String, &'static str)>,
    /// Refresh tokens already exchanged for a new one, with their owner.
    used_refresh: Vec<(Creds, String)>,
    /// Refresh tokens whose family was revoked, and how.
    revoked_refresh: Vec<(Creds, String, &'static str)>,
    accepted_assertions: Vec<String>,
    /// Answers that were not the one the state called for (any 5xx among them).
    wrong: Vec<String>,
    server_errors: usize,
    /// 2xx answers received whole.
    acknowledged: usize,
    /// Requests that got no whole answer because of the kill.
    lost: usize,
}

/// The load's shared state.
struct Load {
    http: reqwest::Client,
    public: String,
    admin: String,
    killing: AtomicBool,
    stop_at: Instant,
    ledger: Mutex<Ledger>,
    key: EcdsaKeyPair,
    signer: String,
    /// Makes the `jti`s of this run unlike any other's.
    run: String,
}

impl Load {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap()
    }

    fn stopped(&self) -> bool {
        Instant::now() >= self.stop_at
    }

    /// Sends `request`; its body if the whole answer came back with status `want`.
    /// Anything else is recorded, and `None` tells the task to stop: a request lost
    /// after the kill is what the kill does, any other surprise is a failure.
    async fn call(&self, what: &str, request: reqwest::RequestBuilder, want: u16) -> Option<Value> {
        let result = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let mut ledger = self.ledger();
        match result {
            Ok((status, body)) => {
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if (200..300).contains(&status) {
                    ledger.acknowledged += 1;
                }
                if status >= 500 {
                    ledger.server_errors += 1;
                }
                if status == want {
                    Some(body)
                } else {
                    ledger
                        .wrong
                        .push(format!("{what}: {status} {body}, expected {want}"));
                    None
                }
            }
            Err(e) => {
                if self.killing.load(Ordering::SeqCst) {
                    ledger.lost += 1;
                } else {
                    ledger
                        .wrong
                        .push(format!("{what}: no answer before the kill: {e}"));
                }
                None
            }
        }
    }

    fn wrong(&self, what: String) -> Option<()> {
        self.ledger().wrong.push(what);
        None
    }

    fn token(&self, creds: &Creds) -> reqwest::RequestBuilder {
        token_request(&self.http, &self.public, creds)
    }

    fn assertion(&self, tag: &str) -> String {
        sign_assertion(&self.key, &self.signer, &format!("{}-{tag}", self.run))
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

fn token_request(http: &reqwest::Client, public: &str, creds: &Creds) -> reqwest::RequestBuilder {
    http.post(format!("http://{public}/oauth2/token"))
        .basic_auth(&creds.id, Some(&creds.secret))
        .form(&[("grant_type", "client_credentials")])
}

fn refresh_request(
    http: &reqwest::Client,
    public: &str,
    creds: &Creds,
    refresh: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("http://{public}/oauth2/token"))
        .basic_auth(&creds.id, Some(&creds.secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
}

fn revoke_request(
    http: &reqwest::Client,
    public: &str,
    creds: &Creds,
    token: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("http://{public}/oauth2/revoke"))
        .basic_auth(&creds.id, Some(&creds.secret))
        .form(&[("token", token)])
}

fn introspect_request(
    http: &reqwest::Client,
    public: &str,
    creds: &Creds,
    token: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("http://{public}/oauth2/introspect"))
        .basic_auth(&creds.id, Some(&creds.secret))
        .form(&[("token", token)])
}

fn assertion_request(
    http: &reqwest::Client,
    public: &str,
    client_id: &str,
    jwt: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("http://{public}/oauth2/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", jwt),
    ])
}

fn now_s() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

/// An ES256 client assertion of `client_id` for this server's token endpoint.
fn sign_assertion(key: &EcdsaKeyPair, client_id: &str, jti: &str) -> String {
    let now = now_s();
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "typ": "JWT"}).to_string());
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": format!("{PUBLIC_URL}/oauth2/token"),
        "jti": jti,
        "iat": now,
        "exp": now + 60,
    });
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

fn pem_of(key: &EcdsaKeyPair) -> String {
    let der = key.public_key().as_der().unwrap();
    tessera_test_support::pem("PUBLIC KEY", der.as_ref())
}

/// Creates an application before the load; its answer.
async fn create(http: &reqwest::Client, server: &Server, body: Value) -> Value {
    let response = http
        .post(format!("http://{}{APPLICATIONS}", server.admin))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "create {body}");
    response.json().await.unwrap()
}

/// Creates applications, renames them, rotates their secrets without grace (which ends
/// the tokens issued so far), revokes all their tokens, deletes some, and gets tokens
/// with the last secret.
async fn admin_task(load: Arc<Load>, task: usize) -> Option<()> {
    // Ledger slot and current credentials of each application this task created.
    let mut mine: Vec<(usize, Creds)> = Vec::new();
    for step in 0usize.. {
        if load.stopped() {
            break;
        }
        let pick = step / 6 % mine.len().max(1);
        match (step % 6, mine.len()) {
            (0, _) | (_, 0) => {
                let name = format!("crash-{task}-{step}");
                let request = load
                    .http
                    .post(format!("http://{}{APPLICATIONS}", load.admin))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"name": name, "scopes": ["read"]}));
                let body = load.call("create", request, 201).await?;
                let Some(creds) = Creds::of(&body) else {
                    return load.wrong(format!("create answered {body}"));
                };
                let mut ledger = load.ledger();
                ledger.apps.push(App {
                    id: creds.id.clone(),
                    secret: Some(creds.secret.clone()),
                    live: Vec::new(),
                    name: Some(name),
                    renames: 0,
                    rotations: 0,
                    deleted: Some(false),
                });
                mine.push((ledger.apps.len() - 1, creds));
            }
            (1, _) => {
                let (slot, Creds { id, .. }) = &mine[pick];
                let name = format!("renamed-{task}-{step}");
                // Until acknowledged, the rename may or may not happen.
                load.ledger().apps[*slot].name = None;
                let request = load
                    .http
                    .patch(format!("http://{}{APPLICATIONS}/{id}", load.admin))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"name": name}));
                load.call("rename", request, 200).await?;
                let mut ledger = load.ledger();
                ledger.apps[*slot].renames += 1;
                ledger.apps[*slot].name = Some(name);
            }
            (2, _) => {
                let (slot, old) = mine[pick].clone();
                // Until acknowledged, the rotation may or may not happen.
                load.ledger().apps[slot].secret = None;
                let request = load
                    .http
                    .post(format!(
                        "http://{}{APPLICATIONS}/{}/secret",
                        load.admin, old.id
                    ))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"grace_period": 0}));
                let body = load.call("rotate", request, 200).await?;
                let Some(secret) = body["client_secret"].as_str() else {
                    return load.wrong(format!("rotate answered {body}"));
                };
                {
                    let mut ledger = load.ledger();
                    let app = &mut ledger.apps[slot];
                    app.secret = Some(secret.to_owned());
                    app.rotations += 1;
                    let ended: Vec<_> = app.live.drain(..).collect();
                    ledger.dead_access.extend(
                        ended
                            .into_iter()
                            .map(|t| (t, "issued before a rotation without grace")),
                    );
                }
                mine[pick].1.secret = secret.to_owned();
                load.call("token with the rotated-away secret", load.token(&old), 401)
                    .await?;
            }
            (4, _) => {
                let (slot, Creds { id, .. }) = &mine[pick];
                // Until acknowledged, these may live or not.
                let ended = std::mem::take(&mut load.ledger().apps[*slot].live);
                let request = load
                    .http
                    .post(format!(
                        "http://{}{APPLICATIONS}/{id}/revoke-tokens",
                        load.admin
                    ))
                    .bearer_auth(ADMIN_KEY);
                load.call("revoke-tokens", request, 200).await?;
                load.ledger().dead_access.extend(
                    ended
                        .into_iter()
                        .map(|t| (t, "issued before the application's revoke-tokens")),
                );
            }
            (5, _) if step % 24 == 5 => {
                let (slot, creds) = mine.swap_remove(pick);
                let ended = {
                    let mut ledger = load.ledger();
                    ledger.apps[slot].deleted = None;
                    std::mem::take(&mut ledger.apps[slot].live)
                };
                let request = load
                    .http
                    .delete(format!("http://{}{APPLICATIONS}/{}", load.admin, creds.id))
                    .bearer_auth(ADMIN_KEY);
                load.call("delete", request, 204).await?;
                let mut ledger = load.ledger();
                ledger.apps[slot].deleted = Some(true);
                ledger.dead_access.extend(
                    ended
                        .into_iter()
                        .map(|t| (t, "of an application since deleted")),
                );
            }
            _ => {
                let (slot, creds) = &mine[pick];
                let body = load.call("token", load.token(creds), 200).await?;
                let Some(token) = body["access_token"].as_str() else {
                    return load.wrong(format!("token answered {body}"));
                };
                load.ledger().apps[*slot].live.push(token.to_owned());
            }
        }
    }
    Some(())
}

/// Gets tokens and revokes three in four of them, checking some at once.
async fn revoke_task(load: Arc<Load>, creds: Creds) -> Option<()> {
    for step in 0usize.. {
        if load.stopped() {
            break;
        }
        let body = load.call("token", load.token(&creds), 200).await?;
        let Some(token) = body["access_token"].as_str().map(str::to_owned) else {
            return load.wrong(format!("token answered {body}"));
        };
        if step % 4 == 0 {
            load.ledger().live_access.push(token);
            continue;
        }
        let request = revoke_request(&load.http, &load.public, &creds, &token);
        load.call("revoke", request, 200).await?;
        load.ledger().dead_access.push((token.clone(), "revoked"));
        if step % 3 == 0 {
            let request = introspect_request(&load.http, &load.public, &creds, &token);
            let body = load.call("introspect", request, 200).await?;
            if body != json!({"active": false}) {
                return load.wrong(format!("a revoked token introspected as {body}"));
            }
        }
    }
    Some(())
}

/// Refresh families: a token, three refreshes, then the family ends, by revocation of
/// its last refresh token or (one time in three) by presenting a used one again.
async fn refresh_task(load: Arc<Load>, creds: Creds) -> Option<()> {
    for chain in 0usize.. {
        if load.stopped() {
            break;
        }
        let body = load.call("token", load.token(&creds), 200).await?;
        let (Some(access), Some(refresh)) = (
            body["access_token"].as_str(),
            body["refresh_token"].as_str(),
        ) else {
            return load.wrong(format!("token answered {body}"));
        };
        let mut family = vec![access.to_owned()];
        let mut refresh = refresh.to_owned();
        let mut used = Vec::new();
        for _ in 0..3 {
            let request = refresh_request(&load.http, &load.public, &creds, &refresh);
            let body = load.call("refresh", request, 200).await?;
            let (Some(access), Some(next)) = (
                body["access_token"].as_str(),
                body["refresh_token"].as_str(),
            ) else {
                return load.wrong(format!("refresh answered {body}"));
            };
            load.ledger()
                .used_refresh
                .push((creds.clone(), refresh.clone()));
            used.push(std::mem::replace(&mut refresh, next.to_owned()));
            family.push(access.to_owned());
        }
        let why = if chain % 3 == 2 {
            // The answer is a refusal, but received whole: the family was revoked
            // before it was written.
            let request = refresh_request(&load.http, &load.public, &creds, &used[0]);
            let body = load.call("reused refresh token", request, 400).await?;
            if body["error"] != "invalid_grant" {
                return load.wrong(format!("a reused refresh token answered {body}"));
            }
            "family revoked by the reuse of a used refresh token"
        } else {
            let request = revoke_request(&load.http, &load.public, &creds, &refresh);
            load.call("revoke refresh token", request, 200).await?;
            "family revoked at the revocation endpoint"
        };
        let mut ledger = load.ledger();
        ledger
            .revoked_refresh
            .push((creds.clone(), refresh.clone(), why));
        ledger
            .dead_access
            .extend(family.into_iter().map(|token| (token, why)));
    }
    Some(())
}

/// `private_key_jwt` token requests with fresh `jti`s, and now and then one replayed.
async fn assertion_task(load: Arc<Load>, task: usize) -> Option<()> {
    let mut accepted: Vec<String> = Vec::new();
    for step in 0usize.. {
        if load.stopped() {
            break;
        }
        let jwt = load.assertion(&format!("{task}-{step}"));
        let request = assertion_request(&load.http, &load.public, &load.signer, &jwt);
        load.call("assertion", request, 200).await?;
        load.ledger().accepted_assertions.push(jwt.clone());
        accepted.push(jwt);
        if step % 5 == 4 {
            let old = &accepted[step / 5 % accepted.len()];
            let request = assertion_request(&load.http, &load.public, &load.signer, old);
            load.call("replayed assertion", request, 401).await?;
        }
    }
    Some(())
}

/// The status and body of `request`, which must get an answer.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_was_acknowledged_before_kill_9_holds_after_the_restart() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &ENV);
    let http = http_client();
    let plain = |name: &str| json!({"name": name, "scopes": ["read"]});
    let with_refresh =
        |name: &str| json!({"name": name, "scopes": ["read"], "refresh_token_ttl": 3600});
    let introspector = Creds::of(&create(&http, &server, plain("introspector")).await).unwrap();
    let mut revokers = Vec::new();
    let mut refreshers = Vec::new();
    for n in 0..2 {
        let created = create(&http, &server, plain(&format!("revoker-{n}"))).await;
        revokers.push(Creds::of(&created).unwrap());
        let created = create(&http, &server, with_refresh(&format!("refresher-{n}"))).await;
        refreshers.push(Creds::of(&created).unwrap());
    }
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let signer = create(
        &http,
        &server,
        json!({
            "name": "signer",
            "scopes": ["read"],
            "auth_methods": ["private_key_jwt"],
            "public_key": pem_of(&key),
        }),
    )
    .await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // What must still work after the restart, so that a refusal then means something.
    let (status, body) = answer(token_request(&http, &server.public, &introspector)).await;
    assert_eq!(status, 200, "{body}");
    let control_access = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = answer(token_request(&http, &server.public, &refreshers[0])).await;
    assert_eq!(status, 200, "{body}");
    let control_refresh = body["refresh_token"].as_str().unwrap().to_owned();

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let load = Arc::new(Load {
        http: http.clone(),
        public: server.public.clone(),
        admin: server.admin.clone(),
        killing: AtomicBool::new(false),
        stop_at: Instant::now() + LOAD_LIMIT,
        ledger: Mutex::new(Ledger::default()),
        key,
        signer: signer.clone(),
        run: format!("{}-{nanos}", std::process::id()),
    });
    let mut tasks = Vec::new();
    for n in 0..2 {
        tasks.push(tokio::spawn(admin_task(load.clone(), n)));
        tasks.push(tokio::spawn(revoke_task(load.clone(), revokers[n].clone())));
        tasks.push(tokio::spawn(refresh_task(
            load.clone(),
            refreshers[n].clone(),
        )));
        tasks.push(tokio::spawn(assertion_task(load.clone(), n)));
    }
    let load_started = Instant::now();
    while load_started.elapsed() < KILL_BY
        && (load_started.elapsed() < BEFORE_KILL || load.ledger().acknowledged < ENOUGH)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    load.killing.store(true, Ordering::SeqCst);
    server.signal("-9");
    let killed_at = Instant::now();
    let ran = killed_at - load_started;
    for task in tasks {
        tokio::time::timeout(LOAD_LIMIT + REQUEST_TIMEOUT, task)
            .await
            .expect("a load task did not stop")
            .unwrap();
    }
    let tasks_stopped = killed_at.elapsed();
    drop(server);
    let restarted_at = Instant::now();
    let server = Server::start_with(dir.path(), &ENV);
    let restart = restarted_at.elapsed();
    let ledger = std::mem::take(&mut *load.ledger());
    let http = http_client();
    let public = server.public.as_str();
    let mut failures = ledger.wrong.clone();

    // The controls.
    let (status, body) = answer(introspect_request(
        &http,
        public,
        &introspector,
        &control_access,
    ))
    .await;
    if status != 200 || body["active"] != true {
        failures.push(format!(
            "control access token after the restart: {status} {body}"
        ));
    }
    let (status, body) = answer(refresh_request(
        &http,
        public,
        &refreshers[0],
        &control_refresh,
    ))
    .await;
    if status != 200 {
        failures.push(format!(
            "control refresh token after the restart: {status} {body}"
        ));
    }
    let fresh = sign_assertion(&load.key, &signer, &format!("{}-control", load.run));
    let (status, body) = answer(assertion_request(&http, public, &signer, &fresh)).await;
    if status != 200 {
        failures.push(format!(
            "a fresh assertion after the restart: {status} {body}"
        ));
    }

    // Acknowledged applications exist, with their last acknowledged name and secret, and
    // acknowledged deletions stand.
    let mut secrets_checked = 0;
    for app in &ledger.apps {
        let (status, body) = answer(
            http.get(format!("http://{}{APPLICATIONS}/{}", server.admin, app.id))
                .bearer_auth(ADMIN_KEY),
        )
        .await;
        let wrong = match app.deleted {
            Some(false) => {
                status != 200 || app.name.as_ref().is_some_and(|name| body["name"] != *name)
            }
            Some(true) => status != 404,
            None => false,
        };
        if wrong {
            failures.push(format!(
                "application {} (last acknowledged name {:?}, deleted {:?}) after the restart: \
                 {status} {body}",
                app.id, app.name, app.deleted
            ));
        }
        let (status, body) = answer(
            http.get(format!(
                "http://{}/admin/v1/audit?client_id={}&limit=1000",
                server.admin, app.id
            ))
            .bearer_auth(ADMIN_KEY),
        )
        .await;
        let count = |action: &str| {
            body.as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["action"] == action)
                .count()
        };
        // A write in flight at the kill may be in the log too.
        if status != 200
            || count("application.create") != 1
            || count("application.update") < app.renames
            || count("application.rotate_secret") < app.rotations
            || count("application.delete") < usize::from(app.deleted == Some(true))
        {
            failures.push(format!(
                "application {}'s audit log after the restart ({} renames and {} rotations \
                 acknowledged): {status} {body}",
                app.id, app.renames, app.rotations
            ));
        }
        let (Some(secret), Some(deleted)) = (&app.secret, app.deleted) else {
            continue;
        };
        secrets_checked += 1;
        let creds = Creds {
            id: app.id.clone(),
            secret: secret.clone(),
        };
        let (status, body) = answer(token_request(&http, public, &creds)).await;
        if status != if deleted { 401 } else { 200 } {
            failures.push(format!(
                "application {} (deleted {deleted})'s last acknowledged secret after the \
                 restart: {status} {body}",
                app.id
            ));
        }
    }

    // Access tokens: alive or not, as acknowledged.
    let live = ledger
        .apps
        .iter()
        .filter(|app| app.secret.is_some() && app.deleted == Some(false))
        .flat_map(|app| app.live.iter())
        .chain(&ledger.live_access);
    let mut live_checked = 0;
    for token in live {
        live_checked += 1;
        let (status, body) = answer(introspect_request(&http, public, &introspector, token)).await;
        if status != 200 || body["active"] != true {
            failures.push(format!(
                "a live access token after the restart: {status} {body}"
            ));
        }
    }
    for (token, why) in &ledger.dead_access {
        let (status, body) = answer(introspect_request(&http, public, &introspector, token)).await;
        if status != 200 || body != json!({"active": false}) {
            failures.push(format!(
                "an access token ended before the kill ({why}) after the restart: \
                 {status} {body}"
            ));
        }
    }

    // Refresh tokens used or revoked stay so. Presenting a used one revokes its family,
    // which would hide a revocation that did not last, or an earlier use that did not:
    // so these come after the access tokens, revoked families first, then the used
    // tokens newest first (the newest of a family shows whether its last use lasted).
    let refused = ledger
        .revoked_refresh
        .iter()
        .map(|(creds, token, why)| (creds, token, *why))
        .chain(
            ledger
                .used_refresh
                .iter()
                .rev()
                .map(|(creds, token)| (creds, token, "used")),
        );
    for (creds, token, why) in refused {
        let (status, body) = answer(refresh_request(&http, public, creds, token)).await;
        if status != 400 || body["error"] != "invalid_grant" {
            failures.push(format!(
                "a refresh token ({why}) after the restart: {status} {body}"
            ));
        }
    }

    // Accepted assertions are not accepted again.
    for jwt in &ledger.accepted_assertions {
        let (status, body) = answer(assertion_request(&http, public, &signer, jwt)).await;
        let replay = body["error"] == "invalid_client"
            && body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("already used"));
        if status != 401 || !replay {
            failures.push(format!(
                "an assertion accepted before the kill, presented again after the restart: \
                 {status} {body}"
            ));
        }
    }

    let rotation_unknown = ledger.apps.iter().filter(|a| a.secret.is_none()).count();
    let deleted = ledger
        .apps
        .iter()
        .filter(|a| a.deleted == Some(true))
        .count();
    println!(
        "crash test: {} acknowledged (2xx) during the load, {} lost at the kill, {} 5xx; \
         {} applications ({deleted} deleted, {secrets_checked} secrets checked, \
         {rotation_unknown} with a rotation in flight), {live_checked} live and {} ended \
         access tokens, {} used and {} revoked refresh tokens, {} accepted assertions; \
         killed after {ran:?} of load, tasks stopped {:?} after the kill, restart took \
         {restart:?}, {:?} in all",
        ledger.acknowledged,
        ledger.lost,
        ledger.server_errors,
        ledger.apps.len(),
        ledger.dead_access.len(),
        ledger.used_refresh.len(),
        ledger.revoked_refresh.len(),
        ledger.accepted_assertions.len(),
        tasks_stopped,
        started.elapsed(),
    );
    assert_eq!(
        ledger.server_errors, 0,
        "5xx during the load: {failures:#?}"
    );
    assert!(
        ledger.acknowledged > 100 && !ledger.accepted_assertions.is_empty(),
        "too little load to mean anything"
    );
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
}
