//! TLS on the listeners with a certificate the test makes: real clients (reqwest,
//! curl) get tokens over it, TLS 1.1 is refused, the admin listener shares the pair,
//! and a renewed certificate is served without a restart, when its files change or on
//! SIGHUP.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{ADMIN_KEY, TestServer};

/// A self-signed certificate for 127.0.0.1 and localhost, written to `dir`.
fn certificate(dir: &Path, name: &str) -> (String, tessera_server::tls::TlsFiles) {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = made.cert.pem();
    let files = tessera_server::tls::TlsFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&files.cert, &cert).unwrap();
    std::fs::write(&files.key, made.key_pair.serialize_pem()).unwrap();
    (cert, files)
}

fn trusting(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
}

/// Whether a client trusting only `cert_pem` completes a request to `url`.
async fn accepted_by(cert_pem: &str, url: &str) -> bool {
    trusting(cert_pem).get(url).send().await.is_ok()
}

// Multi-threaded: curl runs as a blocking child process while the server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_over_tls_with_reqwest_and_curl_and_never_tls_1_1() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, files) = certificate(dir.path(), "server");
    let server = TestServer::start_with(|c| c.tls = Some(files.clone())).await;
    let https = format!("https://{}", server.running.public_addr);
    assert!(
        server.public_url().starts_with("https://"),
        "the issuer defaults to https with TLS on: {}",
        server.public_url()
    );
    let client = trusting(&cert);
    // The admin listener speaks TLS with the same pair.
    let admin = format!("https://{}", server.running.admin_addr);
    let created: serde_json::Value = client
        .post(format!("{admin}/admin/v1/realms/default/applications"))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({"name": "over-tls"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let token: serde_json::Value = client
        .post(format!("{https}/oauth2/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap();
    let verified = client
        .get(format!("{https}/verify"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);
    let metadata: serde_json::Value = client
        .get(format!("{https}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(metadata["issuer"].as_str().unwrap().starts_with("https://"));

    let realms = client
        .get(format!("{admin}/admin/v1/realms"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(realms.status(), 200);

    // Plain HTTP on a TLS listener is no request.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", server.running.public_addr))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    // curl, trusting the certificate: a token; asking for TLS 1.1 at most: refused.
    let cacert = files.cert.to_str().unwrap().to_owned();
    let curl = |args: Vec<String>| {
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert", &cacert])
            .args(args)
            .output()
            .expect("curl runs")
    };
    let out = curl(vec![
        "-u".into(),
        format!("{id}:{secret}"),
        "-d".into(),
        "grant_type=client_credentials".into(),
        format!("{https}/oauth2/token"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("access_token"));
    let out = curl(vec![
        "--tlsv1.2".into(),
        "--tls-max".into(),
        "1.2".into(),
        format!("{https}/healthz"),
    ]);
    assert!(
        out.status.success(),
        "TLS 1.2: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = curl(vec![
        "--tlsv1.1".into(),
        "--tls-max".into(),
        "1.1".into(),
        format!("{https}/healthz"),
    ]);
    assert!(!out.status.success(), "TLS 1.1 must not connect");

    // Whatever a client's TLS library allows, the server itself answers a TLS 1.1
    // ClientHello with an alert and never a ServerHello.
    let mut stream = TcpStream::connect(server.running.public_addr)
        .await
        .unwrap();
    stream.write_all(&tls11_client_hello()).await.unwrap();
    let mut answer = [0u8; 7];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(n >= 1, "an answer");
    assert_eq!(
        answer[0], 0x15,
        "a TLS alert record, not a handshake: {answer:?}"
    );
}

/// A TLS 1.1 ClientHello: no supported_versions extension, one TLS 1.1-era suite.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend([7u8; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE_RSA_AES128_SHA, RSA_AES128_SHA
    body.extend([0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00];
    handshake.extend((body.len() as u16).to_be_bytes());
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

/// A server on a fresh certificate in `dir`, and its health URL, which a client
/// trusting that certificate reaches.
async fn served_over_tls(
    dir: &Path,
) -> (String, tessera_server::tls::TlsFiles, TestServer, String) {
    let (cert, files) = certificate(dir, "server");
    let server = TestServer::start_with(|c| c.tls = Some(files.clone())).await;
    let url = format!("https://{}/healthz", server.running.public_addr);
    assert!(accepted_by(&cert, &url).await);
    (cert, files, server, url)
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (old_cert, files, _server, url) = served_over_tls(dir.path()).await;

    // The renewal replaces both files (as certbot or cert-manager do).
    let renewal = tempfile::tempdir().unwrap();
    let (new_cert, new_files) = certificate(renewal.path(), "renewed");
    std::fs::copy(&new_files.key, &files.key).unwrap();
    std::fs::copy(&new_files.cert, &files.cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !accepted_by(&new_cert, &url).await {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!accepted_by(&old_cert, &url).await, "the old one is gone");

    // A broken renewal keeps the certificate in use.
    std::fs::write(&files.cert, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(accepted_by(&new_cert, &url).await);
}

#[tokio::test]
async fn a_missing_or_mismatched_key_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, files) = certificate(dir.path(), "a");
    let (_, other) = certificate(dir.path(), "b");
    for (tls, names) in [
        (
            tessera_server::tls::TlsFiles {
                cert: files.cert.clone(),
                key: dir.path().join("missing.key"),
            },
            "missing.key",
        ),
        (
            tessera_server::tls::TlsFiles {
                cert: files.cert.clone(),
                key: other.key.clone(),
            },
            "b.key",
        ),
    ] {
        let config = tessera_server::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("data"),
            admin_key: Some(tessera_server::SecretString::new(ADMIN_KEY.into())),
            master_key: Some(tessera_server::SecretString::new(
                crate::harness::MASTER_KEY.into(),
            )),
            tls: Some(tls),
            ..tessera_server::Config::default()
        };
        let err = match tessera_server::start(config).await {
            Ok(_) => panic!("started with a bad key"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains(names), "{err}");
    }
}

#[tokio::test]
async fn sighup_reloads_a_certificate_whose_files_look_unchanged() {
    // This process answers SIGHUP from now on instead of ending (the server's own
    // watcher registers its handler only once its task first runs).
    let _hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (old_cert, files, _server, url) = served_over_tls(dir.path()).await;

    // The new pair takes the old files' places with their modification times, so that
    // only the signal can make the server read them again.
    let renewal = tempfile::tempdir().unwrap();
    let (new_cert, new_files) = certificate(renewal.path(), "renewed");
    for (new, old) in [(&new_files.key, &files.key), (&new_files.cert, &files.cert)] {
        let modified = std::fs::metadata(old).unwrap().modified().unwrap();
        let staged = old.with_extension("staged");
        std::fs::copy(new, &staged).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&staged)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        std::fs::rename(&staged, old).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        accepted_by(&old_cert, &url).await,
        "without the signal, the files look unchanged and the old pair stays"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::sleep(Duration::from_millis(200)).await;
        if accepted_by(&new_cert, &url).await {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not reload the pair");
    }
    assert!(!accepted_by(&old_cert, &url).await, "the old one is gone");
}
