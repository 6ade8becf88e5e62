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

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::limiter::PeerAddr;
use crate::tls::Tls;

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
        if self.newcomer.state.load(Ordering::Acquire) == EVICTED
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

// ----- making room when full ----------------------------------------------------------

const WAITING: u8 = 0;
const SETTLED: u8 = 1;
const EVICTED: u8 = 2;

/// A connection that has not begun a request yet: the first to go when the listener
/// is full.
#[derive(Default)]
struct Newcomer {
    state: AtomicU8,
    kick: tokio::sync::Notify,
}

impl Newcomer {
    /// It has begun a request (or ended): never evicted from now on.
    fn settle(&self) {
        let _ = self
            .state
            .compare_exchange(WAITING, SETTLED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Runs what comes before the connection's first request (its first byte, TLS
    /// handshake and head), `None` if it is evicted first; settled either way.
    async fn until_evicted<T>(self: Arc<Self>, first: impl Future<Output = T>) -> Option<T> {
        tokio::pin!(first);
        let outcome = loop {
            tokio::select! {
                done = first.as_mut() => break Some(done),
                () = self.kick.notified() => {
                    if self.state.load(Ordering::Acquire) == EVICTED {
                        break None;
                    }
                }
            }
        };
        self.settle();
        outcome
    }
}

/// The connections in order of arrival, for [`Newcomers::evict_oldest`]. Settled ones
/// (serving, or closed) are skipped there and pruned whenever the queue reaches twice
/// the cap, so it holds at most that many entries of a few words, and pruning costs
/// each admission O(1) on average.
#[derive(Default)]
struct Newcomers(Mutex<std::collections::VecDeque<Arc<Newcomer>>>);

impl Newcomers {
    fn admit(&self, cap: usize) -> Arc<Newcomer> {
        let newcomer = Arc::new(Newcomer::default());
        let mut queue = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if queue.len() >= cap.saturating_mul(2) {
            queue.retain(|n| n.state.load(Ordering::Acquire) == WAITING);
        }
        queue.push_back(newcomer.clone());
        newcomer
    }

    /// Forgets the connections that settled or closed, and gives back the room a flood
    /// made the queue take: run when the listener is quiet, so that what a flood left
    /// behind does not stay until the next one.
    fn prune(&self) {
        let mut queue = self.0.lock().unwrap_or_else(|e| e.into_inner());
        queue.retain(|n| n.state.load(Ordering::Acquire) == WAITING);
        let waiting = queue.len();
        if queue.capacity() > 4 * waiting + 1024 {
            queue.shrink_to(2 * waiting);
        }
    }

    /// Closes the connection that has waited longest without beginning a request.
    /// `false` when every open connection is serving: then the newcomer is refused.
    fn evict_oldest(&self) -> bool {
        let mut queue = self.0.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(oldest) = queue.pop_front() {
            if oldest
                .state
                .compare_exchange(WAITING, EVICTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                oldest.kick.notify_one();
                return true;
            }
        }
        false
    }
}

// ----- phases ----------------------------------------------------------------------

const WAITING_FOR_HEAD: u8 = 0;
const SERVING: u8 = 1;
const IDLE: u8 = 2;

/// What a connection is doing, shared by the socket wrapper and the request service:
/// the phase in the low two bits, above them how many times it changed. It holds no
/// time: the socket wrapper reads the clock only when it has to wait in a new phase,
/// so a request pays no clock read for its phases.
struct Phase(AtomicU32);

impl Phase {
    fn new() -> Self {
        Self(AtomicU32::new(u32::from(WAITING_FOR_HEAD)))
    }

    fn set(&self, phase: u8) {
        let changes = (self.0.load(Ordering::Relaxed) >> 2).wrapping_add(1);
        self.0
            .store((changes << 2) | u32::from(phase), Ordering::Release);
    }

    fn serving(&self) {
        self.set(SERVING);
    }

    fn idle(&self) {
        self.set(IDLE);
    }

    /// The phase and its change count, to compare with an earlier one.
    fn get(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }
}

/// The phase part of [`Phase::get`].
fn phase_of(state: u32) -> u8 {
    (state & 0b11) as u8
}

/// How many silent checks make an idle spell: a kept-alive connection is closed after
/// between `idle_timeout` and `idle_timeout × (1 + 1/IDLE_CHECKS)` of silence.
const IDLE_CHECKS: u8 = 8;

/// What the socket's timer is set for.
#[derive(Clone, Copy)]
enum Watch {
    /// The head begun in this phase (its [`Phase::get`]) must be whole by the deadline.
    Head(u32),
    /// The next look at whether the connection has been idle, unchanged since `seen`,
    /// for `quiet` looks in a row.
    Silence { seen: u32, quiet: u8 },
}

/// The socket, closing itself when the phase it is in has lasted too long: a head
/// begun but not whole in time is an error (`TimedOut`), an idle connection simply
/// ends. It first gives back the bytes read before HTTP took over ([`first_head`]).
///
/// Idle spells are found by looking every `idle_timeout / IDLE_CHECKS` whether the
/// phase changed, so that a request costs no clock read and no timer reset: only a
/// head arriving in pieces sets a precise deadline.
struct Watched<S> {
    inner: S,
    read: Vec<u8>,
    at: usize,
    phase: Arc<Phase>,
    header_timeout: Duration,
    idle_check: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    watch: Watch,
}

impl<S> Watched<S> {
    fn new(inner: S, read: Vec<u8>, phase: Arc<Phase>, limits: &ConnectionLimits) -> Self {
        Self {
            inner,
            read,
            at: 0,
            watch: Watch::Silence {
                seen: phase.get(),
                quiet: 0,
            },
            phase,
            header_timeout: limits.header_timeout,
            idle_check: (limits.idle_timeout / u32::from(IDLE_CHECKS))
                .max(Duration::from_millis(1)),
            timer: None,
        }
    }

    /// Sets the timer to fire at `deadline`, making it the first time.
    fn set_timer(&mut self, deadline: Instant) -> Pin<&mut Sleep> {
        match &mut self.timer {
            Some(timer) => {
                timer.as_mut().reset(deadline);
                timer.as_mut()
            }
            slot @ None => slot
                .insert(Box::pin(tokio::time::sleep_until(deadline)))
                .as_mut(),
        }
    }

    /// The socket has nothing to read: waits, unless the phase has lasted too long.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let state = self.phase.get();
            let head_begun = phase_of(state) == WAITING_FOR_HEAD;
            match self.watch {
                Watch::Head(begun) if head_begun && begun == state => {}
                _ if head_begun => {
                    self.watch = Watch::Head(state);
                    let deadline = Instant::now() + self.header_timeout;
                    self.set_timer(deadline);
                }
                Watch::Head(_) => {
                    self.watch = Watch::Silence {
                        seen: state,
                        quiet: 0,
                    };
                    let next = Instant::now() + self.idle_check;
                    self.set_timer(next);
                }
                Watch::Silence { .. } if self.timer.is_none() => {
                    let next = Instant::now() + self.idle_check;
                    self.set_timer(next);
                }
                Watch::Silence { .. } => {}
            }
            let Some(timer) = self.timer.as_mut() else {
                return Poll::Pending;
            };
            ready!(timer.as_mut().poll(cx));
            match self.watch {
                Watch::Head(_) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the request head did not arrive in time",
                    )));
                }
                Watch::Silence { seen, quiet } => {
                    let quiet = if seen == state && phase_of(state) == IDLE {
                        quiet + 1
                    } else {
                        0
                    };
                    if quiet >= IDLE_CHECKS {
                        // End of stream: the kept-alive connection closes quietly.
                        return Poll::Ready(Ok(()));
                    }
                    self.watch = Watch::Silence { seen: state, quiet };
                    // From now, not from when it fired: a look is never skipped.
                    let next = Instant::now() + self.idle_check;
                    self.set_timer(next);
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(unread) = self.read.get(self.at..).filter(|rest| !rest.is_empty()) {
            let n = buf.remaining().min(unread.len());
            buf.put_slice(unread.get(..n).unwrap_or_default());
            self.at += n;
            if self.at == self.read.len() {
                (self.read, self.at) = (Vec::new(), 0);
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                // The first bytes after an idle spell start the next request's head.
                if buf.filled().len() > before && phase_of(self.phase.get()) == IDLE {
                    self.phase.set(WAITING_FOR_HEAD);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => self.wait(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

// ----- the body deadline -------------------------------------------------------------

/// What a body that did not arrive in time fails with; the HTTP edge answers 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// A request body that must arrive whole within a time. The clock starts when the
/// body is first not there at once (handlers read it first thing, right after the
/// head); a token request's body comes with its head, and then no timer is made and
/// no clock read.
struct DeadlineBody {
    inner: Incoming,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            timer: None,
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(axum::BoxError::from)));
        }
        let timeout = self.timeout;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(BodyTimedOut.into())))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// ----- connections per address -------------------------------------------------------

/// Open connections per source address. Its size is bounded by the listener's cap:
/// an address leaves the map with its last connection.
#[derive(Default)]
struct AddressCounts(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`AddressCounts`], given back when dropped.
struct AddressSlot {
    counts: Arc<AddressCounts>,
    address: IpAddr,
}

impl AddressCounts {
    fn enter(self: &Arc<Self>, address: IpAddr, cap: usize) -> Option<AddressSlot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(address).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            counts: self.clone(),
            address,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
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

    #[test]
    fn an_address_leaves_the_map_with_its_last_connection() {
        let counts = Arc::new(AddressCounts::default());
        let ip: IpAddr = [10, 0, 0, 1].into();
        let a = counts.enter(ip, 2).unwrap();
        let b = counts.enter(ip, 2).unwrap();
        assert!(counts.enter(ip, 2).is_none());
        assert!(counts.enter([10, 0, 0, 2].into(), 2).is_some());
        drop(a);
        let c = counts.enter(ip, 2).unwrap();
        drop((b, c));
        assert!(counts.0.lock().unwrap().is_empty());
    }
}
