//! A connection's socket once HTTP has it: its phases and their timeouts, and the
//! request body's deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::ConnectionLimits;

// ----- phases ----------------------------------------------------------------------

const WAITING_FOR_HEAD: u8 = 0;
const SERVING: u8 = 1;
const IDLE: u8 = 2;

/// What a connection is doing, shared by the socket wrapper and the request service:
/// the phase in the low two bits, above them how many times it changed. It holds no
/// time: the socket wrapper reads the clock only when it has to wait in a new phase,
/// so a request pays no clock read for its phases.
pub(super) struct Phase(AtomicU32);

impl Phase {
    pub(super) fn new() -> Self {
        Self(AtomicU32::new(u32::from(WAITING_FOR_HEAD)))
    }

    fn set(&self, phase: u8) {
        let changes = (self.0.load(Ordering::Relaxed) >> 2).wrapping_add(1);
        self.0
            .store((changes << 2) | u32::from(phase), Ordering::Release);
    }

    pub(super) fn serving(&self) {
        self.set(SERVING);
    }

    pub(super) fn idle(&self) {
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
/// ends. It first gives back the bytes read before HTTP took over ([`super::first_head`]).
///
/// Idle spells are found by looking every `idle_timeout / IDLE_CHECKS` whether the
/// phase changed, so that a request costs no clock read and no timer reset: only a
/// head arriving in pieces sets a precise deadline.
pub(super) struct Watched<S> {
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
    pub(super) fn new(
        inner: S,
        read: Vec<u8>,
        phase: Arc<Phase>,
        limits: &ConnectionLimits,
    ) -> Self {
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
pub(super) struct DeadlineBody {
    inner: Incoming,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    pub(super) fn new(inner: Incoming, timeout: Duration) -> Self {
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
