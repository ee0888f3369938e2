//! Counting while a run goes on: every request's fate, with the operating system's reason for
//! every failure, and the latency of every measured reply in HDR histograms.
//!
//! Failures are counted over the *whole* run, warm-up included (a failure is never
//! forgiven for being early); successes, bytes and latencies only inside the measured window.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::LoadConfig;

/// Highest latency a histogram tracks: one hour in microseconds. Longer values are clamped
/// to it (no request lives that long: `--timeout` ends it first).
const MAX_MICROS: u64 = 3_600_000_000;

/// How many mismatch descriptions are kept for the report.
const EXAMPLES: usize = 5;

/// Counts per reason, e.g. `"Connection refused (os error 111)" → 3`.
pub type Reasons = BTreeMap<String, u64>;

/// One request on its way.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// Its sequence number on its connection.
    pub k: u64,
    /// When it should have been sent (open loop), or when it was (closed loop).
    pub intended: Instant,
    /// When it was handed to the socket.
    pub sent: Instant,
    /// Replies still to come before it is complete (chat: members yet to hear it).
    pub remaining: usize,
    /// What the server said if it declined the request (counted as refused when complete).
    pub refused: Option<String>,
    /// Sent inside the measured window.
    pub measured: bool,
}

/// The running counts of one load run.
#[derive(Debug)]
pub struct Tally {
    /// Latency from intended send time, µs. Over TCP in a closed loop this equals
    /// `uncorrected`; over UDP a closed-loop request is intended at the loop turn that made
    /// room for it, so this also counts its wait until the datagram left.
    pub latency: Histogram<u64>,
    /// Latency from actual send time, µs.
    pub uncorrected: Histogram<u64>,
    /// Measured requests sent.
    pub sent: u64,
    /// Measured requests completed with a correct reply (including refused ones).
    pub completed: u64,
    /// Completed requests the server declined (HTTP non-2xx, RESP error), by what it said.
    pub refused: Reasons,
    /// Replies that were wrong (each closes its connection).
    pub mismatches: u64,
    /// The first few mismatches, described.
    pub mismatch_examples: Vec<String>,
    /// Requests not answered within `--timeout` (UDP: lost datagrams).
    pub timeouts: u64,
    /// Replies that came after their request had been given up: UDP datagrams counted as
    /// lost (or duplicated by the network), chat lines of a member that had left.
    pub late: u64,
    /// Requests that died with their connection (closed after an error, mismatch or timeout).
    pub abandoned: u64,
    /// Measured requests still in flight when the run ended.
    pub in_flight_at_end: u64,
    /// Open loop: measured requests that were due before the run ended and never sent,
    /// because every connection was waiting at `--depth` (a server stalled at the end).
    pub unsent_at_end: u64,
    /// When the first and the last measured request went out, for the achieved send rate.
    pub send_span: Option<(Instant, Instant)>,
    /// Connections that could not be opened, by reason.
    pub connect_errors: Reasons,
    /// Failed reads (and servers closing the connection), by reason.
    pub read_errors: Reasons,
    /// Failed writes, by reason.
    pub write_errors: Reasons,
    /// Connections that opened.
    pub conns_opened: u64,
    /// Connections opened again after a close (the server's: HTTP `Connection: close`,
    /// keep-alive connections it ends; or ours, after a timeout), not counted in
    /// `conns_opened`.
    pub reconnects: u64,
    /// Bytes written and read inside the measured window.
    pub bytes_out: u64,
    /// See `bytes_out`.
    pub bytes_in: u64,
    /// Things the reader must know (too few connections, rate not reached, …).
    pub warnings: Vec<String>,
}

impl Tally {
    /// Empty counts for a run of `config`.
    pub fn new(_config: &LoadConfig) -> Self {
        // 3 significant digits: every value is kept within 0.1% (1 µs below 1 ms).
        let hist =
            || Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid");
        Tally {
            latency: hist(),
            uncorrected: hist(),
            sent: 0,
            completed: 0,
            refused: Reasons::new(),
            mismatches: 0,
            mismatch_examples: Vec::new(),
            timeouts: 0,
            late: 0,
            abandoned: 0,
            in_flight_at_end: 0,
            unsent_at_end: 0,
            send_span: None,
            connect_errors: Reasons::new(),
            read_errors: Reasons::new(),
            write_errors: Reasons::new(),
            conns_opened: 0,
            reconnects: 0,
            bytes_out: 0,
            bytes_in: 0,
            warnings: Vec::new(),
        }
    }

    /// Adds a warning for the report.
    pub fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    /// A request is complete at `now`.
    pub fn complete(&mut self, req: &InFlight, now: Instant) {
        if !req.measured {
            return;
        }
        self.completed += 1;
        if let Some(why) = &req.refused {
            count(&mut self.refused, why.as_str());
        }
        self.latency.saturating_record(micros(now.saturating_duration_since(req.intended)));
        self.uncorrected.saturating_record(micros(now.saturating_duration_since(req.sent)));
    }

    /// A measured request left at `at`.
    pub fn sent_at(&mut self, at: Instant) {
        let span = self.send_span.get_or_insert((at, at));
        span.1 = at;
    }

    /// A request waited `--timeout` for its reply and was given up on at `now`: counted, and
    /// (if measured) what it had waited goes into the corrected latencies, a lower bound as
    /// for [`Tally::unsent`], so a stall that outlasts the timeout is not missing from them.
    pub fn timed_out(&mut self, req: &InFlight, now: Instant) {
        self.timeouts += 1;
        if req.measured {
            self.latency.saturating_record(micros(now.saturating_duration_since(req.intended)));
        }
    }

    /// Open loop: a measured request due at `due` was never sent before the run ended at
    /// `end`. What it had waited by then goes into the corrected latencies (a lower bound:
    /// it would have waited longer), so a stall at the end of a run is not hidden from the
    /// percentiles that exist to show stalls.
    /// `n`: how many such requests, from the one due at `due` on (see
    /// [`Plan::for_each_unsent`](super::plan::Plan::for_each_unsent)).
    pub fn unsent(&mut self, due: Instant, end: Instant, n: u64) {
        self.unsent_at_end += n;
        self.latency.saturating_record_n(micros(end.saturating_duration_since(due)), n);
    }

    /// Requests per second at which measured requests went out: the first to the last.
    /// `None` with fewer than two.
    pub fn send_rate(&self) -> Option<f64> {
        let (first, last) = self.send_span?;
        let span = last.saturating_duration_since(first).as_secs_f64();
        (self.sent >= 2 && span > 0.0).then(|| (self.sent - 1) as f64 / span)
    }

    /// How many requests the sending fell behind a `target` rate, first send to last: what
    /// should have gone out in that span, less what did. `None` with fewer than two sends.
    pub fn behind(&self, target: f64) -> Option<f64> {
        let (first, last) = self.send_span?;
        let span = last.saturating_duration_since(first).as_secs_f64();
        (self.sent >= 2).then(|| target * span - (self.sent - 1) as f64)
    }

    /// A reply was wrong.
    pub fn mismatch(&mut self, conn: usize, what: String) {
        self.mismatches += 1;
        if self.mismatch_examples.len() < EXAMPLES {
            self.mismatch_examples.push(format!("connection {conn}: {what}"));
        }
    }

    /// Total number of failures of any kind.
    pub fn failures(&self) -> u64 {
        let sum = |r: &Reasons| r.values().sum::<u64>();
        self.mismatches
            + self.timeouts
            + sum(&self.connect_errors)
            + sum(&self.read_errors)
            + sum(&self.write_errors)
    }
}

/// Adds one occurrence of `reason`.
pub fn count(reasons: &mut Reasons, reason: impl Into<String>) {
    *reasons.entry(reason.into()).or_default() += 1;
}

/// A duration in whole microseconds, at least 1 (the histogram's lowest value).
fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_MICROS)
}
