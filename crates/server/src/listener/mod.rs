//! Serving one listener in front of the internet: a cap on open connections and on
//! connections per source address, the header, body and idle timeouts, and a shutdown
//! that waits for in-flight requests only up to a deadline.
//!
//! A connection is in one of three phases, which its socket wrapper ([`Watched`]) and
//! the request service share:
//! - *waiting for a request head*: from accept, and from the first byte of each later
//!   request, the whole head must arrive within `header_timeout` (a slow or silent
//!   client is dropped);
//! - *serving*: from the parsed head to the response; the body must arrive within
//!   `body_timeout` ([`DeadlineBody`]), the handler itself is not timed;
//! - *idle*: between requests on a kept-alive connection, at most `idle_timeout` (and
//!   at most an eighth more: idleness is looked at, not timed per request).
//!
//! A connection over its address's cap is closed at once, before any byte is read.
//! When the listener itself is full, the connection that has waited longest without
//! sending a whole request is closed to make room for the new one: a flood of slow
//! sockets cannot keep out clients that ask at once, and connections already serving
//! requests are never the ones closed. Nothing is set up for a connection (no HTTP
//! buffers, no TLS state) before its first byte arrives, and no HTTP state before its
//! first request head is whole: until then it holds a small buffer of its own. Each
//! listener has its own caps, so a flooded public listener never starves the admin one.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::limiter::PeerAddr;
use crate::tls::Tls;

mod room;
mod socket;

use room::{AddressCounts, AddressSlot, Newcomer, Newcomers};
pub use socket::BodyTimedOut;
use socket::{DeadlineBody, Phase, Watched};

/// How one listener treats its connections.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionLimits {
    /// From accept (or a request's first byte) to the end of its head.
    pub header_timeout: Duration,
    /// From when the body is first waited for (right after the head) to its end.
    pub body_timeout: Duration,
    /// Between requests on a kept-alive connection.
    pub idle_timeout: Duration,
    /// Connections open at once on this listener.
    pub max_connections: usize,
    /// Connections open at once from one source address.
    pub max_connections_per_address: usize,
}

impl Default for ConnectionLimits {
    /// Ory's servers use 5 s to read a request and 120 s of idle keep-alive. A
    /// connection costs a file descriptor and a few kilobytes; the caps keep a flood
    /// within what one process can hold (`serve` raises its descriptor limit to the
    /// hard limit at start), and one address may hold a generous share of them.
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(120),
            max_connections: 10_000,
            max_connections_per_address: 512,
        }
    }
}

/// How often the queue of connections that may be evicted is cleared of those that
/// cannot be any more, and the end of a flood looked for ([`crate::memory`]).
const TIDY_INTERVAL: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` (over TLS with `tls`) until `stopped` turns true,
/// then stops accepting, lets in-flight requests finish for at most
/// `shutdown_timeout`, and closes the rest.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<Arc<Tls>>,
    shutdown_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) -> io::Result<()> {
    let limits = Arc::new(limits);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(AddressCounts::default());
    let newcomers = Newcomers::default();
    let (drain, draining) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut flood = crate::memory::FloodWatch::default();
    let mut tidy = tokio::time::interval(TIDY_INTERVAL);
    tidy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = turned_true(&mut stopped) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = tidy.tick() => {
                newcomers.prune();
                if flood.tick(limits.max_connections.saturating_sub(open.available_permits())) {
                    tracing::debug!("a flood of connections is over; freed memory given back");
                }
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors (or another transient failure):
                        // the connections being served finish and free some.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let Some(slot) = per_address.enter(peer.ip(), limits.max_connections_per_address)
                else {
                    refused(peer, "this address's connection cap is reached");
                    continue;
                };
                let permit = match open.clone().try_acquire_owned() {
                    Ok(permit) => permit,
                    // Full: close the connection that has waited longest without a
                    // request. Its place passes to this one at once: one more permit
                    // now, which the evicted connection forgets instead of giving back
                    // when its task ends ([`Place`]), so nothing waits for that task.
                    Err(_) if newcomers.evict_oldest() => {
                        open.add_permits(1);
                        match open.clone().try_acquire_owned() {
                            Ok(permit) => permit,
                            Err(_) => {
                                refused(peer, "the listener's connection cap is reached");
                                continue;
                            }
                        }
                    }
                    Err(_) => {
                        refused(peer, "the listener's connection cap is reached");
                        continue;
                    }
                };
                let newcomer = newcomers.admit(limits.max_connections);
                let tls = tls.as_ref().map(|tls| tls.acceptor());
                let serving = Serving {
                    peer,
                    router: router.clone(),
                    limits: limits.clone(),
                    draining: draining.clone(),
                    held: Place {
                        permit: Some(permit),
                        _slot: slot,
                        newcomer: newcomer.clone(),
                    },
                };
                connections.spawn(serve_accepted(stream, tls, newcomer, serving));
                // A finished task keeps its allocation until joined: under a flood of
                // short connections, reaping one per turn of this loop falls behind.
                while connections.try_join_next().is_some() {}
            }
        }
    }
    drop(listener);
    let _ = drain.send(true);
    let deadline = tokio::time::sleep(shutdown_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => {
                if !connections.is_empty() {
                    tracing::warn!(
                        open = connections.len(),
                        "shutdown deadline passed; closing the connections still open"
                    );
                }
                connections.abort_all();
                while connections.join_next().await.is_some() {}
                break;
            }
            next = connections.join_next() => if next.is_none() { break },
        }
    }
    Ok(())
}

/// Until the flag turns true (or its sender is gone).
async fn turned_true(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|on| *on).await;
}

/// Logged at debug level only: under a flood this happens thousands of times a second.
fn refused(peer: SocketAddr, why: &str) {
    tracing::debug!(%peer, why, "connection refused");
}

/// What serving one connection needs besides its socket.
struct Serving {
    peer: SocketAddr,
    router: Router,
    limits: Arc<ConnectionLimits>,
    draining: watch::Receiver<bool>,
    /// Its place under both caps, given back when the connection ends.
    held: Place,
}

/// A connection's place under the listener's cap and its address's. An evicted
/// connection's permit went to the newcomer that evicted it (see the accept loop): it
/// is forgotten, not given back, so the cap holds.
struct Place {
    permit: Option<OwnedSemaphorePermit>,
    _slot: AddressSlot,
    newcomer: Arc<Newcomer>,
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.newcomer.is_evicted()
            && let Some(permit) = self.permit.take()
        {
            permit.forget();
        }
    }
}

/// One accepted connection. Nothing is set up for it before its first byte; the HTTP
/// state (and the TLS state's buffers) only once its first request's head is whole,
/// and boxed then, so that the task of a connection still waiting for it stays a few
/// hundred bytes. Until then it may be evicted to make room; from then on it never is.
async fn serve_accepted(
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    newcomer: Arc<Newcomer>,
    serving: Serving,
) {
    let (peer, timeout) = (serving.peer, serving.limits.header_timeout);
    match tls {
        None => {
            let first = async {
                let mut stream = stream;
                stream.readable().await.ok()?;
                let head = first_head(&mut stream).await?;
                Some((stream, head))
            };
            let first = in_time(first, timeout, &peer);
            let Some((stream, head)) = newcomer.until_evicted(first).await.flatten() else {
                return;
            };
            // Answers go out at once (only a client that asked pays the call).
            let _ = stream.set_nodelay(true);
            Box::pin(connection(stream, head, serving)).await;
        }
        Some(acceptor) => {
            let first = async {
                stream.readable().await.ok()?;
                let _ = stream.set_nodelay(true);
                let mut stream = match Box::pin(acceptor.accept(stream)).await {
                    Ok(stream) => Box::new(stream),
                    Err(err) => {
                        tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        return None;
                    }
                };
                let head = first_head(&mut stream).await?;
                Some((stream, head))
            };
            let first = in_time(first, timeout, &peer);
            let Some((stream, head)) = newcomer.until_evicted(first).await.flatten() else {
                return;
            };
            Box::pin(connection(stream, head, serving)).await;
        }
    }
}

/// What comes before a connection's first request (its first byte, the TLS handshake,
/// the head), within the header timeout from accept: one timer for all of it.
async fn in_time<T>(
    first: impl Future<Output = Option<T>>,
    timeout: Duration,
    peer: &SocketAddr,
) -> Option<T> {
    let done = tokio::time::timeout(timeout, first).await;
    if done.is_err() {
        tracing::debug!(%peer, "no whole request head in time");
    }
    done.ok().flatten()
}

/// One connection, from its first request's head (already read) to close.
async fn connection<S>(stream: S, head: Vec<u8>, serving: Serving)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Serving {
        peer,
        router,
        limits,
        mut draining,
        held: _held,
    } = serving;
    let phase = Arc::new(Phase::new());
    let io = TokioIo::new(Watched::new(stream, head, phase.clone(), &limits));
    let body_timeout = limits.body_timeout;
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        phase.serving();
        let mut request = request.map(|body| Body::new(DeadlineBody::new(body, body_timeout)));
        request.extensions_mut().insert(PeerAddr(peer));
        let answer = router.clone().oneshot(request);
        let phase = phase.clone();
        async move {
            let response = answer.await;
            phase.idle();
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The socket's phases time heads and idle spells. hyper's own head timer (on by
    // default once it has a timer) would cost every request a clock read, a boxed
    // timer registered and removed again: it is off.
    builder.header_read_timeout(None);
    let served = builder.serve_connection(io, service);
    tokio::pin!(served);
    let drained = tokio::select! {
        _ = served.as_mut() => false,
        () = turned_true(&mut draining) => true,
    };
    if drained {
        // Finish the request in flight, if any, then close.
        served.as_mut().graceful_shutdown();
        let _ = served.await;
    }
}

// ----- the first request's head --------------------------------------------------------

/// What the first head is read into at first; most token requests' heads fit.
const HEAD_START: usize = 512;
/// Past this, the head is handed to HTTP as it is, which reads on and refuses what is
/// too large exactly as for any later request.
const HEAD_LIMIT: usize = 8 * 1024;
/// As many header lines as HTTP accepts (hyper's default).
const MAX_HEADERS: usize = 100;

/// Reads the first request's head into a small buffer of its own, before any HTTP state
/// exists for the connection: a client whose head dribbles in (or never ends) holds a
/// few hundred bytes, not HTTP's buffers. It ends when the head is whole, is no HTTP
/// at all (HTTP then answers it as before), or reaches [`HEAD_LIMIT`]; `None` when the
/// client leaves or fails. Its caller times it ([`in_time`]).
async fn first_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD_START);
    loop {
        if head.len() == head.capacity() {
            head.reserve(head.len());
        }
        let before = head.len();
        match stream.read_buf(&mut head).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        // Parsed again only when a line ended (or on the first bytes, so that what is
        // not HTTP is handed on at once): a head sent a byte at a time costs a parse per
        // line, not per byte.
        let line_ended = head.get(before..).is_some_and(|new| new.contains(&b'\n'));
        if (before == 0 || line_ended) && !head_incomplete(&head) {
            return Some(head);
        }
        if head.len() >= HEAD_LIMIT {
            return Some(head);
        }
    }
}

/// Whether these bytes are the beginning of a request head that is still arriving.
fn head_incomplete(bytes: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    matches!(
        httparse::Request::new(&mut headers).parse(bytes),
        Ok(httparse::Status::Partial)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `first_head` on what a client sends in these pieces, a pause between each.
    async fn head_of(pieces: &[&[u8]]) -> Option<Vec<u8>> {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let pieces: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
        let sending = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in pieces {
                client.write_all(&piece).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            client
        });
        let peer: SocketAddr = ([127, 0, 0, 1], 1).into();
        let head = in_time(first_head(&mut server), Duration::from_millis(500), &peer).await;
        drop(sending.await.unwrap());
        head
    }

    #[tokio::test]
    async fn the_first_head_is_read_whole_before_http_takes_over() {
        let head: &[&[u8]] = &[
            b"POST /token HTTP/1.1\r\nHost: a",
            b"\r\nContent-Length: 2\r\n",
            b"\r\nab",
        ];
        assert_eq!(head_of(head).await.unwrap(), head.concat());
        // Bare line feeds end a head too, as HTTP accepts them.
        assert!(
            head_of(&[b"GET /healthz HTTP/1.1\n", b"\n"])
                .await
                .is_some()
        );
        // What is not HTTP is handed on at once, for HTTP to answer as it always has.
        let hello = [0x16, 0x03, 0x01, 0x00, 0x05];
        assert_eq!(head_of(&[&hello]).await.unwrap(), hello);
        // Too long: handed on at the limit, HTTP reads on and refuses it.
        let long = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; HEAD_LIMIT]].concat();
        assert!(head_of(&[&long]).await.unwrap().len() >= HEAD_LIMIT);
        // A head that stops, or a client that leaves: nothing for HTTP.
        assert!(head_of(&[b"GET / HTTP/1.1\r\nHost"]).await.is_none());
        assert!(head_of(&[]).await.is_none());
    }
}
