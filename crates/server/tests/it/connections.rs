//! Connections from clients that stall or flood, over real sockets: each timeout
//! closes what it should, the caps hold without slowing anyone else, and a stopping
//! server waits for a stalled client only up to its deadline.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::{ADMIN_KEY, MASTER_KEY, TestServer};

fn address(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// A connection from `from` (any 127.x address: each is a source address of its own).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Reads until the server closes the connection (or `limit` passes): what it sent,
/// and how long it took to close.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&seen).into_owned(),
                    Some(started.elapsed()),
                );
            }
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), None),
        }
    }
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test]
async fn a_silent_or_slow_head_is_dropped_after_the_header_timeout() {
    let server = TestServer::start_with(|c| {
        c.public_connections.header_timeout = Duration::from_millis(300);
    })
    .await;
    let to = address(&server.base);
    // Nothing at all.
    let mut silent = TcpStream::connect(to).await.unwrap();
    // Half a head, then nothing.
    let mut half = TcpStream::connect(to).await.unwrap();
    half.write_all(b"POST /oauth2/token HTTP/1.1\r\nHost: t\r\nContent-Ty")
        .await
        .unwrap();
    // A head dripping in a byte at a time never completes in time either.
    let mut drip = TcpStream::connect(to).await.unwrap();
    let dripping = tokio::spawn(async move {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: t\r\n" {
            if drip.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut buf = [0u8; 64];
        matches!(drip.read(&mut buf).await, Ok(0) | Err(_))
    });
    // On a kept-alive connection, a later request's head that stops half-way (the
    // idle timeout, 120 s by default, is not what closes it).
    let mut kept = TcpStream::connect(to).await.unwrap();
    kept.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    for stream in [&mut silent, &mut half, &mut kept] {
        let (sent, closed) = read_until_closed(stream, Duration::from_secs(5)).await;
        let closed = closed.expect("closed by the server");
        assert!(closed < Duration::from_secs(2), "closed after {closed:?}");
        assert!(!sent.contains("200 OK"), "{sent}");
    }
    assert!(dripping.await.unwrap(), "the dripping client was cut off");
    // A client that sends its request at once is served as ever.
    let mut good = TcpStream::connect(to).await.unwrap();
    good.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 512];
    let n = good.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(|c| {
        c.public_connections.header_timeout = Duration::from_secs(3);
        c.public_connections.idle_timeout = Duration::from_millis(400);
    })
    .await;
    let mut stream = TcpStream::connect(address(&server.base)).await.unwrap();
    // Two requests, a little apart but within the idle timeout: one connection.
    for _ in 0..2 {
        stream.write_all(HEALTH).await.unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let closed = closed.expect("closed when idle");
    // Idle, not the (longer) header timeout, closed it.
    assert!(
        closed < Duration::from_millis(2000),
        "closed after {closed:?}"
    );
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_the_connection_closes() {
    let server = TestServer::start_with(|c| {
        c.public_connections.body_timeout = Duration::from_millis(300);
        c.admin_connections.body_timeout = Duration::from_millis(300);
    })
    .await;
    for (base, head) in [
        (
            &server.base,
            "POST /oauth2/token HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
        ),
        (
            &server.admin_base,
            &*format!(
                "POST /admin/v1/realms HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"na"
            ),
        ),
        // An endless chunked body that trickles: the deadline holds it too.
        (
            &server.base,
            "POST /oauth2/token HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n",
        ),
    ] {
        let mut stream = TcpStream::connect(address(base)).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let (sent, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
        let closed = closed.expect("closed after the 408");
        assert!(closed < Duration::from_secs(2), "closed after {closed:?}");
    }
}

/// One address may hold only so many connections, others are refused at once; the
/// listener's own cap holds the same way; the admin listener, capped apart, answers
/// while the public one is full; and a good client from elsewhere is served quickly
/// while the slow ones are held.
#[tokio::test]
async fn the_caps_hold_and_good_clients_and_the_admin_listener_are_still_served() {
    let server = TestServer::start_with(|c| {
        c.public_connections.header_timeout = Duration::from_secs(30);
        c.public_connections.max_connections_per_address = 20;
        c.public_connections.max_connections = 30;
    })
    .await;
    let to = address(&server.base);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect_from([127, 0, 0, 2], to).await);
    }
    // The 21st from that address is closed before anything is read.
    let mut over = connect_from([127, 0, 0, 2], to).await;
    let _ = over.write_all(HEALTH).await;
    let (sent, closed) = read_until_closed(&mut over, Duration::from_secs(3)).await;
    assert!(closed.is_some() && sent.is_empty(), "{sent:?} {closed:?}");

    // Another address is served, and quickly.
    let started = Instant::now();
    let reply = server
        .http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "served in {took:?}");

    // Fill the listener's cap from a third address: 10 more, all silent. A client that
    // asks at once still gets in: the silent connection that waited longest makes room.
    for _ in 0..10 {
        held.push(connect_from([127, 0, 0, 3], to).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut newcomer = connect_from([127, 0, 0, 4], to).await;
    newcomer.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 512];
    let n = newcomer.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let (_, closed) = read_until_closed(&mut held[0], Duration::from_secs(3)).await;
    assert!(closed.is_some(), "the oldest silent connection made room");

    // The admin listener is capped on its own: it answers.
    let reply = server
        .http
        .get(format!("{}/admin/v1/realms", server.admin_base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);

    // Freeing connections frees places.
    held.truncate(0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from([127, 0, 0, 2], to).await;
    again.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 512];
    let n = again.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

/// A listener full of connections that are serving (or kept alive after a request)
/// refuses a newcomer rather than close any of them.
#[tokio::test]
async fn connections_that_began_a_request_are_never_closed_to_make_room() {
    let server = TestServer::start_with(|c| {
        c.public_connections.max_connections = 5;
        c.public_connections.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let to = address(&server.base);
    let mut kept = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(to).await.unwrap();
        stream.write_all(HEALTH).await.unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        kept.push(stream);
    }
    let mut over = TcpStream::connect(to).await.unwrap();
    let _ = over.write_all(HEALTH).await;
    let (sent, closed) = read_until_closed(&mut over, Duration::from_secs(3)).await;
    assert!(closed.is_some() && sent.is_empty(), "{sent:?} {closed:?}");
    // Every kept connection still works.
    for stream in &mut kept {
        stream.write_all(HEALTH).await.unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
}

/// Stopping waits for the request in flight, but a client stalled in the middle of its
/// body is cut off at the shutdown deadline.
#[tokio::test]
async fn stopping_waits_for_a_stalled_client_only_up_to_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tessera_server::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        admin_key: Some(tessera_server::SecretString::new(ADMIN_KEY.into())),
        master_key: Some(tessera_server::SecretString::new(MASTER_KEY.into())),
        shutdown_timeout: Duration::from_millis(500),
        ..tessera_server::Config::default()
    };
    config.public_connections.body_timeout = Duration::from_secs(60);
    let running = tessera_server::start(config).await.unwrap();
    let mut stalled = TcpStream::connect(running.public_addr).await.unwrap();
    stalled
        .write_all(b"POST /oauth2/token HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\ngrant")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    running.shutdown();
    tokio::time::timeout(Duration::from_secs(5), running.wait())
        .await
        .expect("stopped within the deadline")
        .expect("clean stop");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "waited {took:?}");
    assert!(took < Duration::from_secs(3), "waited {took:?}");
    let (_, closed) = read_until_closed(&mut stalled, Duration::from_secs(2)).await;
    assert!(closed.is_some(), "the stalled client was cut off");
}
