//! The attacker of `bench/hostile.sh` (see `bench/README.md`, "Hostile traffic").
//!
//! `tessera-bench-hostile TARGET [key=value ...]` runs for `seconds` and then stops by
//! itself, closing every socket. Meanwhile it
//!
//! - holds `sockets` slow connections to TARGET, spread over `addresses` source
//!   addresses (`src_base`.0.1, `src_base`.0.2, ...: 127.x loopback addresses, so the
//!   per-address cap does not simply refuse them all). Slot i behaves as i mod 4:
//!   0 idle (sends nothing), 1 a half-sent request head, 2 a whole head announcing a
//!   1,000-byte body of which it sends 10 bytes, 3 a head dripped one byte every
//!   `drip_ms`. When the server closes a slot's socket, the slot opens a new one after
//!   `reopen_ms` (± 50%). Slots open at `ramp_per_s` at the start. They are numbered
//!   from `first`, so that several processes can split one attack (each socket takes
//!   a descriptor, and the descriptor limit may not be raised);
//! - sends `bad_rps` token requests a second with wrong credentials from
//!   `bad_addresses` keep-alive connections (`bad_base`.0.1, ...): half with
//!   `client_id` and a wrong secret, half with a random client id. It reads every
//!   answer and counts 401, 429 and anything else.
//!
//! Every second it prints one `hostile:` line of counters (cumulative, except `open`:
//! the slow sockets connected right now), and a last one marked `final` before it exits.
//! Only loopback targets are accepted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, MissedTickBehavior, sleep, sleep_until, timeout};

const USAGE: &str = "usage: tessera-bench-hostile 127.0.0.1:PORT [sockets=20000] [addresses=100] \
[first=0] [seconds=60] [reopen_ms=1000] [ramp_per_s=4000] [drip_ms=1000] [bad_rps=1000] \
[bad_addresses=4] [client_id=ID] [src_base=127.1] [bad_base=127.2]";

struct Config {
    target: SocketAddr,
    sockets: u64,
    /// The first slot's number: several processes can share one attack (each needs a
    /// descriptor per socket) by taking consecutive ranges.
    first: u64,
    addresses: u64,
    seconds: u64,
    reopen_ms: u64,
    ramp_per_s: u64,
    drip_ms: u64,
    bad_rps: u64,
    bad_addresses: u64,
    client_id: String,
    src_base: [u8; 2],
    bad_base: [u8; 2],
}

#[derive(Default)]
struct Stats {
    /// Slow sockets connected right now.
    open: AtomicU64,
    /// Slow sockets connected in all.
    connects: AtomicU64,
    /// connect() failing or taking over 10 s.
    connect_errors: AtomicU64,
    /// Slow sockets the server closed within 500 ms of connecting (refused by a cap).
    closed_fast: AtomicU64,
    /// Slow sockets the server closed later (a timeout).
    closed_slow: AtomicU64,
    /// Milliseconds the `closed_slow` ones lived, summed.
    slow_lifetime_ms: AtomicU64,
    /// Slow sockets that got some bytes back (e.g. a 408) before being closed.
    answered: AtomicU64,
    bad_sent: AtomicU64,
    bad_401: AtomicU64,
    bad_429: AtomicU64,
    bad_other: AtomicU64,
    /// Wrong-credential connections lost (closed, reset, unreadable answer).
    bad_conn_errors: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn parse_base(text: &str) -> Option<[u8; 2]> {
    let (a, b) = text.split_once('.')?;
    let a: u8 = a.parse().ok()?;
    (a == 127).then_some(())?;
    Some([a, b.parse().ok()?])
}

fn parse_args() -> Result<Config, String> {
    let mut args = std::env::args().skip(1);
    let target: SocketAddr = args
        .next()
        .ok_or("no target")?
        .parse()
        .map_err(|e| format!("target: {e}"))?;
    if !target.ip().is_loopback() {
        return Err("the target must be a loopback address".into());
    }
    let mut config = Config {
        target,
        sockets: 20_000,
        first: 0,
        addresses: 100,
        seconds: 60,
        reopen_ms: 1000,
        ramp_per_s: 4000,
        drip_ms: 1000,
        bad_rps: 1000,
        bad_addresses: 4,
        client_id: "tessera-bench-unknown".into(),
        src_base: [127, 1],
        bad_base: [127, 2],
    };
    for arg in args {
        let (key, value) = arg.split_once('=').ok_or(format!("not key=value: {arg}"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{key}: {e}"));
        match key {
            "sockets" => config.sockets = number()?,
            "first" => config.first = number()?,
            "addresses" => config.addresses = number()?.max(1),
            "seconds" => config.seconds = number()?,
            "reopen_ms" => config.reopen_ms = number()?,
            "ramp_per_s" => config.ramp_per_s = number()?.max(1),
            "drip_ms" => config.drip_ms = number()?.max(1),
            "bad_rps" => config.bad_rps = number()?,
            "bad_addresses" => config.bad_addresses = number()?.max(1),
            "client_id" => config.client_id = value.to_string(),
            "src_base" => config.src_base = parse_base(value).ok_or("src_base: 127.N")?,
            "bad_base" => config.bad_base = parse_base(value).ok_or("bad_base: 127.N")?,
            _ => return Err(format!("unknown key {key}")),
        }
    }
    if config.addresses > 250 * 250 || config.bad_addresses > 250 {
        return Err("too many addresses".into());
    }
    Ok(config)
}

/// The i-th address under a 127.N base: 127.N.(i / 250).(i % 250 + 1).
fn address(base: [u8; 2], i: u64) -> IpAddr {
    let hi = u8::try_from(i / 250).unwrap_or(0);
    let lo = u8::try_from(i % 250 + 1).unwrap_or(1);
    IpAddr::V4(Ipv4Addr::new(base[0], base[1], hi, lo))
}

/// xorshift64*: good enough for jitter and random client ids.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::from(d.subsec_nanos()));
        Self((seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nanos) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn hex(&mut self, bytes: usize) -> String {
        (0..bytes)
            .map(|_| format!("{:02x}", self.next() & 0xff))
            .collect()
    }
}

async fn connect(source: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    match timeout(Duration::from_secs(10), socket.connect(target)).await {
        Ok(connected) => connected,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Writes all of `bytes` (small: a fresh socket's buffer takes them at once).
async fn send(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads what is there; `Ok(true)` when the server closed the connection.
fn drain(stream: &TcpStream, answered: &mut bool) -> std::io::Result<bool> {
    let mut buf = [0u8; 4096];
    loop {
        match stream.try_read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => *answered = true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// One slow socket's life: behave as `kind` until the server closes it.
async fn behave(stream: &TcpStream, kind: u64, host: &str, drip: Duration) -> bool {
    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
    );
    let first: Vec<u8> = match kind {
        1 => head.as_bytes().get(..40).unwrap_or_default().to_vec(),
        2 => format!("{head}grant_type").into_bytes(),
        _ => Vec::new(),
    };
    let mut answered = false;
    if send(stream, &first).await.is_err() {
        return answered;
    }
    let mut dripped = 0usize;
    let mut next_drip = Instant::now() + drip;
    loop {
        if kind == 3 {
            tokio::select! {
                ready = stream.readable() => if ready.is_err() { return answered },
                () = sleep_until(next_drip) => {
                    let byte = head.as_bytes().get(dripped % head.len()).copied().unwrap_or(b'x');
                    dripped += 1;
                    next_drip += drip;
                    if send(stream, &[byte]).await.is_err() {
                        return answered;
                    }
                    continue;
                }
            }
        } else if stream.readable().await.is_err() {
            return answered;
        }
        match drain(stream, &mut answered) {
            Ok(false) => {}
            Ok(true) | Err(_) => return answered,
        }
    }
}

async fn slot(local: u64, config: Arc<Config>, stats: Arc<Stats>, deadline: Instant) {
    let i = config.first + local;
    let source = address(config.src_base, i % config.addresses);
    let kind = i % 4;
    let host = config.target.to_string();
    let drip = Duration::from_millis(config.drip_ms);
    let mut rng = Rng::new(i + 1);
    // Ramp up: slot i starts at i / ramp_per_s seconds.
    sleep_until(Instant::now() + Duration::from_micros(local * 1_000_000 / config.ramp_per_s))
        .await;
    while Instant::now() < deadline {
        let stream = match connect(source, config.target).await {
            Ok(stream) => stream,
            Err(_) => {
                add(&stats.connect_errors, 1);
                sleep(Duration::from_millis(config.reopen_ms.max(100))).await;
                continue;
            }
        };
        add(&stats.connects, 1);
        add(&stats.open, 1);
        let opened = Instant::now();
        let answered = tokio::select! {
            answered = behave(&stream, kind, &host, drip) => Some(answered),
            () = sleep_until(deadline) => None,
        };
        stats.open.fetch_sub(1, Ordering::Relaxed);
        let Some(answered) = answered else { break };
        let lived = opened.elapsed();
        if answered {
            add(&stats.answered, 1);
        }
        if lived < Duration::from_millis(500) {
            add(&stats.closed_fast, 1);
        } else {
            add(&stats.closed_slow, 1);
            add(
                &stats.slow_lifetime_ms,
                u64::try_from(lived.as_millis()).unwrap_or(0),
            );
        }
        drop(stream);
        let half = config.reopen_ms / 2;
        let pause = half
            + if config.reopen_ms > 0 {
                rng.next() % (config.reopen_ms + 1)
            } else {
                0
            };
        sleep(Duration::from_millis(pause)).await;
    }
}

/// Reads one HTTP/1.1 answer (head and Content-Length body); its status.
async fn read_answer(stream: &TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    let bad = || std::io::Error::from(std::io::ErrorKind::InvalidData);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(buf.get(..end).ok_or_else(bad)?).map_err(|_| bad())?;
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)?;
            let length: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            let total = end + 4 + length;
            if buf.len() >= total {
                buf.drain(..total);
                return Ok(status);
            }
        }
        stream.readable().await?;
        let mut chunk = [0u8; 8192];
        match stream.try_read(&mut chunk) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// One keep-alive connection sending wrong credentials at `rate` a second.
async fn guesser(k: u64, rate: f64, config: Arc<Config>, stats: Arc<Stats>, deadline: Instant) {
    let source = address(config.bad_base, k);
    let mut rng = Rng::new(1_000_003 + k);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let host = config.target.to_string();
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::new();
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = sleep_until(deadline) => return,
        }
        if stream.is_none() {
            match connect(source, config.target).await {
                Ok(s) => {
                    stream = Some(s);
                    buf.clear();
                }
                Err(_) => {
                    add(&stats.bad_conn_errors, 1);
                    continue;
                }
            }
        }
        let Some(s) = stream.as_ref() else { continue };
        n += 1;
        let id = if n.is_multiple_of(2) {
            config.client_id.clone()
        } else {
            format!("app-{}", rng.hex(8))
        };
        let secret = rng.hex(16);
        let auth = STANDARD.encode(format!("{id}:{secret}"));
        let body = "grant_type=client_credentials";
        let request = format!(
            "POST /oauth2/token HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        add(&stats.bad_sent, 1);
        let answer = async {
            send(s, request.as_bytes()).await?;
            read_answer(s, &mut buf).await
        };
        match timeout(Duration::from_secs(10), answer).await {
            Ok(Ok(401)) => add(&stats.bad_401, 1),
            Ok(Ok(429)) => add(&stats.bad_429, 1),
            Ok(Ok(_)) => add(&stats.bad_other, 1),
            Ok(Err(_)) | Err(_) => {
                add(&stats.bad_conn_errors, 1);
                stream = None;
            }
        }
    }
}

fn report(stats: &Stats, started: Instant, last: bool) {
    let slow = get(&stats.closed_slow);
    println!(
        "hostile:{} t={:.1} open={} connects={} connect_errors={} closed_fast={} closed_slow={} mean_slow_lifetime_ms={} answered={} bad_sent={} bad_401={} bad_429={} bad_other={} bad_conn_errors={}",
        if last { " final" } else { "" },
        started.elapsed().as_secs_f64(),
        get(&stats.open),
        get(&stats.connects),
        get(&stats.connect_errors),
        get(&stats.closed_fast),
        slow,
        get(&stats.slow_lifetime_ms).checked_div(slow).unwrap_or(0),
        get(&stats.answered),
        get(&stats.bad_sent),
        get(&stats.bad_401),
        get(&stats.bad_429),
        get(&stats.bad_other),
        get(&stats.bad_conn_errors),
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(config) => Arc::new(config),
        Err(e) => {
            eprintln!("tessera-bench-hostile: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let stats = Arc::new(Stats::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(config.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..config.sockets {
        tasks.spawn(slot(i, config.clone(), stats.clone(), deadline));
    }
    if config.bad_rps > 0 {
        #[allow(clippy::cast_precision_loss)]
        let rate = config.bad_rps as f64 / config.bad_addresses as f64;
        for k in 0..config.bad_addresses {
            tasks.spawn(guesser(k, rate, config.clone(), stats.clone(), deadline));
        }
    }
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => report(&stats, started, false),
            next = tasks.join_next() => if next.is_none() { break },
        }
    }
    report(&stats, started, true);
    ExitCode::SUCCESS
}
