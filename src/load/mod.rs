//! `reactor load`: a load generator that verifies every reply, on its own mio loop.
//!
//! The server's loop (`crate::reactor`) waits for peers; this one *is* the peers. It drives
//! `--conns` connections from one thread, each with `--depth` requests in flight, and checks
//! every byte that comes back. It shares no code with the server loop, on purpose (a bug in
//! one must not hide a bug in the other), but follows the same ideas, so reading one teaches
//! the other:
//!
//! | idea | server | here |
//! |---|---|---|
//! | edge-triggered draining, short-read shortcut | `reactor::Reactor::read` | [`tcp`] `Client::drain` |
//! | partial writes, write-before-sleep | `reactor::conn` | [`tcp`] `Client::flush` |
//! | non-blocking connect checked with `take_error`/`peer_addr` | (accept side) | [`tcp`] `Client::connected` |
//! | protocol kept away from sockets | `service::Service` | [`workload::Workload`] |
//! | TLS as a sans-I/O layer in the connection | `reactor::tls` | [`tls`] `send` / `receive` |
//!
//! ```text
//!   Plan (when: ramp, warm-up, deadline, --rate pacing)
//!     │
//!     ▼
//!   tcp::Client / udp::Client ── encode ──▶ Workload ◀── parse ── bytes from the socket
//!     │ every reply: Ok · Refused · Mismatch · (timeout, error, closed)
//!     ▼
//!   Tally (counters, OS reasons, HDR histograms) ──▶ Report (text like wrk's, JSON, CSV)
//! ```
//!
//! Files: [`workload`] (one file per protocol), [`plan`] (time), [`tcp`] and [`udp`] (the
//! loops), [`tls`] (the rustls session inside a TCP connection, `--tls`), [`tally`]
//! (counting while running), [`report`] (what is printed), [`crate::fdlimit`]
//! (the file-descriptor limit), [`cli`] (the `reactor load` command line).
//!
//! From Rust (benches, tests):
//!
//! ```no_run
//! use reactor::load::{self, LoadConfig, Service, Stop};
//! use std::time::Duration;
//!
//! let config = LoadConfig {
//!     conns: 8,
//!     stop: Stop::Duration(Duration::from_secs(2)),
//!     ..LoadConfig::new(Service::Echo, "127.0.0.1:12345".parse().unwrap())
//! };
//! let report = load::run(&config)?;
//! println!("{}", report.render_text());
//! # Ok::<(), reactor::load::LoadError>(())
//! ```

pub mod cli;

pub mod plan;
pub mod report;
pub mod tally;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod workload;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use report::Report;

/// The protocols `reactor load` can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// TCP echo: sequence-numbered messages that must come back byte for byte.
    Echo,
    /// UDP echo: sequence-numbered datagrams; one not answered within --timeout is lost.
    Udp,
    /// Chat room: every line must reach every other member, in order.
    Chat,
    /// HTTP/1.1 `GET /`, keep-alive: status 2xx and body "Hello, World!\n" (`--post`:
    /// `POST /echo`, each body back byte for byte).
    Http,
    /// RESP key-value: SET/GET pairs over keys each connection owns; every GET's value checked.
    Kv,
}

impl Service {
    /// The service's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Service::Echo => "echo",
            Service::Udp => "udp",
            Service::Chat => "chat",
            Service::Http => "http",
            Service::Kv => "kv",
        }
    }

    /// Where `reactor serve` listens for it by default.
    pub fn default_addr(self) -> &'static str {
        match self {
            Service::Echo | Service::Udp => crate::cli::DEFAULT_ECHO,
            Service::Chat => crate::cli::DEFAULT_CHAT,
            Service::Http => "127.0.0.1:8080",
            Service::Kv => crate::cli::DEFAULT_KV,
        }
    }
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this long, measured from the end of the warm-up. Requests still in flight then
    /// are reported, not waited for.
    Duration(Duration),
    /// After exactly this many requests (all connections together, warm-up not included)
    /// have been sent and each has been answered, failed or timed out.
    Requests(u64),
}

/// Everything a run needs. [`LoadConfig::new`] gives the command line's defaults.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// What to drive.
    pub service: Service,
    /// Where the server is.
    pub addr: SocketAddr,
    /// Connections (UDP: sockets) to open.
    pub conns: usize,
    /// Requests in flight per connection: 1 is ping-pong, more is pipelining.
    pub depth: usize,
    /// Bytes per request (echo, udp, chat).
    pub size: usize,
    /// When to stop.
    pub stop: Stop,
    /// Time before measuring starts (after the connections opened): not counted.
    pub warmup: Duration,
    /// Open loop: this many requests per second in total, at fixed intervals. `None` is a
    /// closed loop (each connection sends as soon as it has room).
    pub rate: Option<f64>,
    /// A request not answered this long after it was sent is a timeout (UDP: lost).
    pub timeout: Duration,
    /// Print one progress line per second to stdout.
    pub live: bool,
    /// kv: keys in total, split evenly among the connections (each owns its own).
    pub keys: usize,
    /// kv: bytes per value.
    pub value_size: usize,
    /// http: the path to request (a `GET`'s body is checked only for `/`, a `POST`'s only for
    /// `/echo`).
    pub path: String,
    /// http: `POST` a body of `size` bytes with each request instead of `GET`.
    pub post: bool,
    /// kv: the password to `AUTH` with on every connection, before its first request.
    pub password: Option<String>,
    /// Speak TLS (TCP services only): whom to trust, and the server's name.
    pub tls: Option<tls::TlsClient>,
    /// Set from elsewhere (the CLI's Ctrl-C handler) to end the run at once: it stops sending
    /// and reports what it measured so far, as `wrk` does when interrupted.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// Bounds on the settings: past them a run could not be meant, and would overflow a clock or
/// the memory rather than measure anything.
const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 1e9;
const MAX_SECS: Duration = Duration::from_secs(365 * 24 * 3600);
const MAX_DEPTH: usize = 1 << 16;
const MAX_HELD: u128 = 4 << 30;
const MAX_VALUE: usize = 512 << 20;

impl LoadConfig {
    /// The defaults of `reactor load`: 16 connections, ping-pong, 64-byte requests, 10 s.
    pub fn new(service: Service, addr: SocketAddr) -> Self {
        LoadConfig {
            service,
            addr,
            conns: 16,
            depth: 1,
            size: 64,
            stop: Stop::Duration(Duration::from_secs(10)),
            warmup: Duration::ZERO,
            rate: None,
            timeout: Duration::from_secs(5),
            live: false,
            keys: 10_000,
            value_size: 64,
            path: "/".into(),
            post: false,
            password: None,
            tls: None,
            interrupt: None,
        }
    }

    /// Checks the settings against each other; the message says what to change.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |s: String| Err(LoadError::Config(s));
        if self.conns == 0 || self.depth == 0 {
            return bad("--conns and --depth must be at least 1".into());
        }
        let tagged = matches!(self.service, Service::Echo | Service::Udp)
            || (self.service == Service::Http && self.post);
        if tagged && self.size < workload::echo::TAG_LEN {
            return bad(format!("--size must be at least {} (the sequence tag)", workload::echo::TAG_LEN));
        }
        if self.post && self.service != Service::Http {
            return bad("--post is for http".into());
        }
        if self.service == Service::Udp && self.size > udp::MAX_DATAGRAM {
            return bad(format!("--size must be at most {} for UDP", udp::MAX_DATAGRAM));
        }
        if self.service == Service::Chat && self.conns < 2 {
            return bad("chat needs --conns 2 or more: a line must reach another member".into());
        }
        if self.conns > (1 << 24) {
            return bad("--conns must be at most 16777216 (the echo tag keeps 24 bits for it)".into());
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && (MIN_RATE..=MAX_RATE).contains(&rate))
        {
            return bad(format!(
                "--rate must be between {MIN_RATE} and {MAX_RATE:e} requests per second \
                 (one every {} s at most, one per ns at least)",
                1.0 / MIN_RATE
            ));
        }
        for (name, value) in
            [("--timeout", self.timeout), ("--warmup", self.warmup)].into_iter().chain(match self.stop {
                Stop::Duration(d) => Some(("--duration", d)),
                Stop::Requests(_) => None,
            })
        {
            if value > MAX_SECS {
                return bad(seconds_range(name));
            }
        }
        if self.depth > MAX_DEPTH {
            return bad(format!("--depth must be at most {MAX_DEPTH}"));
        }
        if self.service == Service::Kv && self.value_size > MAX_VALUE {
            return bad(format!("--value-size must be at most {} MiB (Redis's own limit)", MAX_VALUE >> 20));
        }
        // Closed loop writes a connection's whole depth of requests at once: bound what that
        // holds in memory before it starts, rather than find out from the allocator.
        let (request, sized_by) = match self.service {
            Service::Kv => (self.value_size + 64, "--value-size"),
            Service::Http if self.post => (192 + self.path.len() + self.size, "--size"),
            Service::Http => (128 + self.path.len(), "the request"),
            Service::Echo | Service::Udp | Service::Chat => (self.size.max(64), "--size"),
        };
        let held = (self.conns as u128) * (self.depth as u128) * (request as u128);
        if held > MAX_HELD {
            return bad(format!(
                "--conns × --depth × {sized_by} is {} MiB of requests in flight; at most {} MiB",
                held >> 20,
                MAX_HELD >> 20
            ));
        }
        if self.service == Service::Kv && self.value_size < workload::kv::MIN_VALUE {
            return bad(format!("--value-size must be at least {}", workload::kv::MIN_VALUE));
        }
        if !workload::http::valid_path(&self.path) {
            return bad(
                "--path must start with / and hold only visible ASCII (escape the rest as %XX)".into()
            );
        }
        if self.service == Service::Kv && self.keys == 0 {
            return bad("--keys must be at least 1".into());
        }
        if self.service == Service::Udp && self.tls.is_some() {
            return bad("--tls is for TCP services; UDP echo has no TLS (that would be DTLS)".into());
        }
        if matches!(self.stop, Stop::Requests(0)) {
            return bad("--requests must be at least 1".into());
        }
        if matches!(self.stop, Stop::Duration(d) if d.is_zero()) {
            return bad("--duration must be more than 0 seconds".into());
        }
        if self.timeout.is_zero() {
            return bad("--timeout must be at least 1 nanosecond".into());
        }
        Ok(())
    }
}

impl LoadConfig {
    /// Whether [`LoadConfig::interrupt`] has been raised (Ctrl-C).
    pub fn interrupted(&self) -> bool {
        raised(&self.interrupt)
    }
}

/// Whether an interrupt flag is set (none given: never).
pub(crate) fn raised(flag: &Option<Arc<AtomicBool>>) -> bool {
    flag.as_ref().is_some_and(|flag| flag.load(Ordering::Relaxed))
}

/// What a time option must be, said the same way whichever check refused it.
pub(crate) fn seconds_range(name: &str) -> String {
    format!("{name} must be a number of seconds from 0 to {} (a year)", MAX_SECS.as_secs())
}

/// Why a run could not take place at all. Failures *during* a run (refused connections,
/// mismatches, timeouts) are not errors: they are counted in the [`Report`].
#[derive(Debug)]
pub enum LoadError {
    /// The settings do not make sense.
    Config(String),
    /// The poller could not be created or a socket not registered.
    Setup(&'static str, std::io::Error),
    /// Not one connection could be opened: nothing was measured.
    NoConnections(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Config(msg) => write!(f, "{msg}"),
            LoadError::Setup(what, e) => write!(f, "setting up {what}: {e}"),
            LoadError::NoConnections(why) => write!(f, "no connection could be opened: {why}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Runs one load test and returns what it measured.
pub fn run(config: &LoadConfig) -> Result<Report, LoadError> {
    config.validate()?;
    let fd = crate::fdlimit::raise_nofile();
    let mut work = workload::for_config(config);
    let mut tally = tally::Tally::new(config);
    if let Some(warning) = crate::fdlimit::check_conns(config.conns, &fd) {
        tally.warn(warning);
    }
    let started = std::time::SystemTime::now();
    let plan = plan::Plan::new(config, std::time::Instant::now());
    let window = match config.service {
        Service::Udp => udp::Client::new(config, work.as_mut(), plan.clone(), &mut tally)?.run(),
        _ => tcp::Client::new(config, work.as_mut(), plan.clone(), &mut tally)?.run(),
    }?;
    if plan.interrupted() {
        tally.warn("interrupted (Ctrl-C): these figures cover the run up to then".into());
    }
    Ok(Report::new(config, tally, started, std::time::SystemTime::now(), window, fd))
}
