//! A second echo load generator, the one anyone would write with tokio: the yardstick that
//! shows `reactor load` is not the bottleneck of the echo rows (issue #8). `SECTIONS=client
//! scripts/compare.sh` drives one `reactor serve --echo` with both, alternating, and compares
//! what each gets out of it.
//!
//! It is written to be fair, not to lose: a `current_thread` runtime (one thread, like
//! `reactor load`), one task per connection, `TCP_NODELAY`, a closed loop with `--depth`
//! messages in flight per connection, written in one `write_all` and read back through a
//! 64 KiB buffer. It does the same work per message as `reactor load echo`: every message is
//! an 8-byte tag (connection, sequence number) and filler computed from it, and every byte
//! that comes back is compared with the byte that was sent. A wrong byte is a *mismatch*: the
//! connection stops, and the run exits with status 1.
//!
//! ```text
//! cargo run --release --example tokio_load -- 127.0.0.1:12345 --conns 50 --depth 16 --duration 10
//! ```
//!
//! Output: one JSON object on one line. Fields it shares with `reactor load echo --json` have
//! the same names and meanings (`requests_per_sec`, `completed`, `latency_p99_us`,
//! `mismatches`, `duration_s`, …), so scripts read both the same way.
//!
//! Timing, as in `reactor load`: every connection is opened first (one after the other, which
//! staggers them lightly), then all start sending at once; the measured window is exactly
//! `--duration` from there. Latency runs from just before a message is written to when its
//! last byte has been read. Replies that arrive after the window are not counted; messages
//! still in flight then are reported as `in_flight_at_end`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes of the tag at the front of every message: the smallest `--size`.
const TAG_LEN: usize = 8;
/// The tag keeps the sequence number in its low 40 bits and the connection above them.
const SEQ_BITS: u32 = 40;
/// Bytes asked for by one `read`, as in `reactor load`: a shorter read means the socket is
/// drained, and tokio then waits for the next readiness event instead of reading again.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes in flight per connection at most. A connection writes its whole window before it
/// reads again, so the window must fit in the socket buffers between client and server, or
/// both ends would wait for each other to read. 256 KiB does on Linux loopback defaults.
const MAX_WINDOW: usize = 256 * 1024;
/// A connect not done by then is a connect error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A message still unanswered at the end after waiting this long is counted as a timeout:
/// `reactor load`'s default `--timeout`.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The histogram's range: 1 µs to one hour, 3 significant digits, as `reactor load` keeps it.
const MAX_MICROS: u64 = 3_600_000_000;

/// A tokio echo load client that verifies every byte (see the module documentation).
#[derive(Parser, Debug)]
struct Args {
    /// The echo server, e.g. 127.0.0.1:12345.
    addr: SocketAddr,
    /// Connections, one task each.
    #[arg(long, short = 'c', default_value_t = 50)]
    conns: usize,
    /// Bytes per message (at least 8: the tag).
    #[arg(long, short = 's', default_value_t = 64)]
    size: usize,
    /// Messages in flight per connection: 1 is ping-pong, more is pipelining.
    #[arg(long, short = 'd', default_value_t = 1)]
    depth: usize,
    /// Seconds to measure, once every connection is open.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tokio_load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the load and prints the record; false when any reply was wrong.
fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.size < TAG_LEN {
        return Err(format!("--size must be at least {TAG_LEN} (the tag)").into());
    }
    if args.conns == 0 || args.conns >= 1 << (64 - SEQ_BITS) || args.depth == 0 {
        return Err("--conns must be 1 to 16777215 and --depth at least 1".into());
    }
    if args.depth.saturating_mul(args.size) > MAX_WINDOW {
        return Err(format!("--depth × --size must be at most {MAX_WINDOW} bytes (see MAX_WINDOW)").into());
    }
    let duration = Duration::try_from_secs_f64(args.duration)
        .map_err(|_| "--duration must be a non-negative number of seconds")?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
    let total = rt.block_on(load(&args, duration))?;
    println!("{}", total.json(&args, duration));
    if total.mismatches > 0 {
        eprintln!("tokio_load: verification failed: {} wrong replies", total.mismatches);
    }
    Ok(total.mismatches == 0)
}

/// Opens every connection, then drives them all for `duration`; returns the counts summed.
async fn load(args: &Args, duration: Duration) -> Result<Tally, Box<dyn std::error::Error>> {
    let mut total = Tally::new();
    let mut streams = Vec::with_capacity(args.conns);
    for id in 0..args.conns {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(args.addr)).await {
            Ok(Ok(stream)) => {
                // Small messages must leave at once: Nagle's algorithm would hold a pipelined
                // message back until the previous one is acknowledged.
                stream.set_nodelay(true)?;
                streams.push((id, stream));
            }
            Ok(Err(e)) => count(&mut total.connect_errors, e.to_string()),
            Err(_) => count(&mut total.connect_errors, "connect timed out".into()),
        }
    }
    if streams.is_empty() {
        let why = total.connect_errors.keys().next().cloned().unwrap_or_default();
        return Err(format!("no connection could be opened to {}: {why}", args.addr).into());
    }
    total.conns_opened = streams.len() as u64;
    // Every connection is open: start them together. Spawned tasks first run when this task
    // awaits, so none gets a head start on the others.
    let start = Instant::now();
    let deadline = start + duration;
    let (size, depth) = (args.size, args.depth);
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|(id, mut stream)| {
            tokio::spawn(async move {
                let mut conn = Conn::new(id, size, depth);
                // The state lives outside the future, so it survives the cut at the deadline.
                let at = tokio::time::Instant::from_std(deadline);
                let _ = tokio::time::timeout_at(at, conn.drive(&mut stream, deadline)).await;
                conn.finish(Instant::now());
                conn.tally
            })
        })
        .collect();
    for task in tasks {
        total.add(task.await?);
    }
    Ok(total)
}

/// One connection's state: what it sent and has not had back yet, and its counts.
struct Conn {
    id: usize,
    size: usize,
    depth: usize,
    /// Sequence number of the next message to send, and of the next one expected back.
    next_k: u64,
    want_k: u64,
    /// When each message in flight was written, oldest first.
    sent_at: VecDeque<Instant>,
    /// Set when the connection ended early (error or mismatch): its in-flight are abandoned.
    closed: bool,
    tally: Tally,
}

impl Conn {
    fn new(id: usize, size: usize, depth: usize) -> Self {
        let sent_at = VecDeque::with_capacity(depth);
        Conn { id, size, depth, next_k: 0, want_k: 0, sent_at, closed: false, tally: Tally::new() }
    }

    /// The closed loop: top the window up to `depth` messages and write them in one go, read
    /// what has come back, check it, repeat. Returns when the connection fails or a reply is
    /// wrong; otherwise runs until the caller's timeout drops it at the deadline.
    async fn drive(&mut self, stream: &mut TcpStream, deadline: Instant) {
        let mut out = Vec::with_capacity(self.depth * self.size);
        let mut buf = vec![0u8; READ_CHUNK + self.size];
        let mut filled = 0;
        loop {
            let now = Instant::now();
            while self.sent_at.len() < self.depth {
                encode(self.id, self.next_k, self.size, &mut out);
                self.next_k += 1;
                self.sent_at.push_back(now);
            }
            if !out.is_empty() {
                if let Err(e) = stream.write_all(&out).await {
                    return self.fail(Failure::Write(e.to_string()));
                }
                self.tally.sent += (out.len() / self.size) as u64;
                self.tally.bytes_out += out.len() as u64;
                out.clear();
            }
            let n = match stream.read(&mut buf[filled..]).await {
                Ok(0) => return self.fail(Failure::Read("connection closed by the server".into())),
                Ok(n) => n,
                Err(e) => return self.fail(Failure::Read(e.to_string())),
            };
            let now = Instant::now();
            if now >= deadline {
                return; // after the window: not counted (the timeout is about to end us)
            }
            filled += n;
            self.tally.bytes_in += n as u64;
            // Every complete reply, then whatever has arrived of the next: a wrong byte is
            // reported as soon as it is read, and one lost byte cannot leave us waiting for a
            // reply that will never be complete.
            let mut pos = 0;
            while pos < filled {
                let have = (filled - pos).min(self.size);
                if self.sent_at.is_empty() {
                    let what = format!("{have} bytes came back that were never sent");
                    return self.fail(Failure::Mismatch(what));
                }
                if let Some(what) = check(self.id, self.want_k, self.size, &buf[pos..pos + have]) {
                    return self.fail(Failure::Mismatch(what));
                }
                if have < self.size {
                    break;
                }
                let sent = self.sent_at.pop_front().unwrap_or(now);
                self.tally.latency.saturating_record(micros(now.saturating_duration_since(sent)));
                self.tally.completed += 1;
                self.want_k += 1;
                pos += self.size;
            }
            buf.copy_within(pos..filled, 0);
            filled -= pos;
        }
    }

    fn fail(&mut self, why: Failure) {
        match why {
            Failure::Read(e) => count(&mut self.tally.read_errors, e),
            Failure::Write(e) => count(&mut self.tally.write_errors, e),
            Failure::Mismatch(what) => {
                self.tally.mismatches += 1;
                self.tally.mismatch_examples.push(format!("connection {}: {what}", self.id));
            }
        }
        self.closed = true;
    }

    /// The run is over: what is still in flight is abandoned (the connection failed) or
    /// unfinished; one that has waited longer than [`TIMEOUT`] is a timeout.
    fn finish(&mut self, now: Instant) {
        let waiting = self.sent_at.len() as u64;
        if self.closed {
            self.tally.abandoned += waiting;
        } else {
            self.tally.in_flight_at_end += waiting;
            if self.sent_at.front().is_some_and(|&t| now.saturating_duration_since(t) > TIMEOUT) {
                self.tally.timeouts += 1;
            }
        }
    }
}

/// Why a connection stopped before the deadline.
enum Failure {
    Read(String),
    Write(String),
    Mismatch(String),
}

/// The tag of message `k` of connection `id`.
fn tag(id: usize, k: u64) -> u64 {
    ((id as u64) << SEQ_BITS) | (k & ((1 << SEQ_BITS) - 1))
}

/// Byte `i` of a message tagged `tag`: the tag itself, then filler that changes by 31 from one
/// byte to the next, so a changed, lost or repeated byte never passes for the right one.
fn byte(tag: u64, i: usize) -> u8 {
    if i < TAG_LEN { tag.to_be_bytes()[i] } else { tag.wrapping_add((i as u64).wrapping_mul(31)) as u8 }
}

/// Appends message `k` of connection `id`.
fn encode(id: usize, k: u64, size: usize, out: &mut Vec<u8>) {
    let tag = tag(id, k);
    out.extend((0..size).map(|i| byte(tag, i)));
}

/// Compares the first `got.len()` bytes of a reply with message `k` of connection `id`;
/// describes the first difference.
fn check(id: usize, k: u64, size: usize, got: &[u8]) -> Option<String> {
    let tag = tag(id, k);
    let i = (0..got.len().min(size)).find(|&i| got[i] != byte(tag, i))?;
    Some(format!("echo of message {tag:#x}: byte {i} is {:#04x}, sent {:#04x}", got[i], byte(tag, i)))
}

/// A duration in whole microseconds, at least 1 (the histogram's lowest value).
fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_MICROS)
}

fn count(reasons: &mut BTreeMap<String, u64>, reason: String) {
    *reasons.entry(reason).or_default() += 1;
}

/// The counts of one connection, or of all of them summed.
struct Tally {
    latency: Histogram<u64>,
    conns_opened: u64,
    sent: u64,
    completed: u64,
    bytes_in: u64,
    bytes_out: u64,
    mismatches: u64,
    mismatch_examples: Vec<String>,
    timeouts: u64,
    abandoned: u64,
    in_flight_at_end: u64,
    connect_errors: BTreeMap<String, u64>,
    read_errors: BTreeMap<String, u64>,
    write_errors: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            latency: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("constant histogram bounds are valid"),
            conns_opened: 0,
            sent: 0,
            completed: 0,
            bytes_in: 0,
            bytes_out: 0,
            mismatches: 0,
            mismatch_examples: Vec::new(),
            timeouts: 0,
            abandoned: 0,
            in_flight_at_end: 0,
            connect_errors: BTreeMap::new(),
            read_errors: BTreeMap::new(),
            write_errors: BTreeMap::new(),
        }
    }

    fn add(&mut self, other: Tally) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.sent += other.sent;
        self.completed += other.completed;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.mismatches += other.mismatches;
        self.timeouts += other.timeouts;
        self.abandoned += other.abandoned;
        self.in_flight_at_end += other.in_flight_at_end;
        // The first five described, as `reactor load` keeps them.
        let room = 5usize.saturating_sub(self.mismatch_examples.len());
        self.mismatch_examples.extend(other.mismatch_examples.into_iter().take(room));
        for (mine, theirs) in [
            (&mut self.connect_errors, other.connect_errors),
            (&mut self.read_errors, other.read_errors),
            (&mut self.write_errors, other.write_errors),
        ] {
            for (why, n) in theirs {
                *mine.entry(why).or_default() += n;
            }
        }
    }

    /// The record, with `reactor load --json`'s field names for what both measure.
    fn json(&self, args: &Args, window: Duration) -> serde_json::Value {
        let secs = window.as_secs_f64();
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let h = &self.latency;
        let q = |p: f64| h.value_at_quantile(p);
        serde_json::json!({
            "client": "tokio_load",
            "service": "echo",
            "addr": args.addr.to_string(),
            "conns": args.conns,
            "depth": args.depth,
            "size": args.size,
            "duration_s": args.duration,
            "window_s": secs,
            "conns_opened": self.conns_opened,
            "sent": self.sent,
            "completed": self.completed,
            "requests_per_sec": per_sec(self.completed),
            "mb_in_per_sec": per_sec(self.bytes_in) / 1e6,
            "mb_out_per_sec": per_sec(self.bytes_out) / 1e6,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "latency_mean_us": h.mean(),
            "latency_stdev_us": h.stdev(),
            "latency_p50_us": q(0.50),
            "latency_p90_us": q(0.90),
            "latency_p99_us": q(0.99),
            "latency_p99_9_us": q(0.999),
            "latency_p99_99_us": q(0.9999),
            "latency_max_us": h.max(),
            "mismatches": self.mismatches,
            "timeouts": self.timeouts,
            "abandoned": self.abandoned,
            "in_flight_at_end": self.in_flight_at_end,
            "connect_errors": self.connect_errors,
            "read_errors": self.read_errors,
            "write_errors": self.write_errors,
            "mismatch_examples": self.mismatch_examples.join(" | "),
            "verified": (self.mismatches == 0).to_string(),
        })
    }
}
