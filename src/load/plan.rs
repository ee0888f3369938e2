//! Time: when each connection starts, when measuring starts and ends, and, with `--rate`, when
//! each request is due.
//!
//! ```text
//!   t0         ramp_end            measure_start                       deadline
//!   │ connects  │ warm-up (sent,     │ measured: latency, throughput     │ stop; what is
//!   │ staggered │ verified, not      │                                   │ still in flight
//!   │           │ counted)           │                                   │ is reported
//! ```
//!
//! Connections start [`STAGGER`] apart (spread over at most [`MAX_RAMP`]), so a thousand
//! clients do not hit the server's accept queue in the same microsecond: that would measure
//! the listen backlog, not the service.
//!
//! **Open loop** (`--rate R`): request `i` is *due* at `ramp_end + i/R`, whatever happened to
//! the requests before it. Its latency is measured from that intended time, so a server that
//! stalls for a second is charged for every request that should have been sent during the
//! stall — not only for the one that was stuck (the "coordinated omission" that a closed-loop
//! client, which simply stops sending while it waits, commits).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::{LoadConfig, Stop};

/// Delay between two connection starts.
pub const STAGGER: Duration = Duration::from_micros(100);
/// The longest the staggered start may take in total.
pub const MAX_RAMP: Duration = Duration::from_secs(1);
/// Shorter sleeps than this are not slept (see [`poll_timeout`]).
pub const SPIN_BELOW: Duration = Duration::from_millis(1);

/// The `poll` timeout that wakes the loop at `wake`. `epoll_wait` sleeps in whole milliseconds
/// (mio rounds up), so waiting for a request due in 300 µs would send it 700 µs late and the
/// open loop would charge the server for the client's oversleeping. Below [`SPIN_BELOW`],
/// poll without sleeping instead.
pub fn poll_timeout(now: Instant, wake: Instant) -> Duration {
    let sleep = wake.saturating_duration_since(now);
    if sleep < SPIN_BELOW { Duration::ZERO } else { sleep }
}

/// The timetable of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    t0: Instant,
    stagger: Duration,
    /// When the last connection has been started and sending begins.
    pub ramp_end: Instant,
    /// When results start to count.
    pub measure_start: Instant,
    /// When sending stops (`--duration`); `None` with `--requests`.
    pub deadline: Option<Instant>,
    /// With `--requests`: how many measured requests to send.
    pub requests: Option<u64>,
    /// With `--rate`: the interval between two due requests.
    pub interval: Option<Duration>,
    /// [`LoadConfig::interrupt`]: once set, the plan is done.
    interrupt: Option<Arc<AtomicBool>>,
}

impl Plan {
    /// The timetable for `config`, starting now (`t0`).
    pub fn new(config: &LoadConfig, t0: Instant) -> Self {
        let n = config.conns.max(1) as u32;
        let stagger = STAGGER.min(MAX_RAMP / n);
        let ramp_end = t0 + stagger * (n - 1);
        let measure_start = ramp_end + config.warmup;
        let (deadline, requests) = match config.stop {
            Stop::Duration(d) => (Some(measure_start + d), None),
            Stop::Requests(n) => (None, Some(n)),
        };
        let interval = config.rate.map(|r| Duration::from_secs_f64(1.0 / r));
        let interrupt = config.interrupt.clone();
        Plan { t0, stagger, ramp_end, measure_start, deadline, requests, interval, interrupt }
    }

    /// Whether the run was interrupted (Ctrl-C): it ends at once, and is not "early".
    pub fn interrupted(&self) -> bool {
        super::raised(&self.interrupt)
    }

    /// When connection `i` opens.
    pub fn conn_start(&self, i: usize) -> Instant {
        self.t0 + self.stagger * i as u32
    }

    /// When open-loop request `i` is due.
    pub fn due(&self, i: u64) -> Option<Instant> {
        self.interval.map(|iv| self.ramp_end + iv.mul_f64(i as f64))
    }

    /// Whether a request intended at `at` may still be sent, given `measured_sent` measured
    /// requests sent so far.
    pub fn may_send(&self, at: Instant, measured_sent: u64) -> bool {
        if at < self.ramp_end {
            return false; // still connecting: sending starts with everyone
        }
        if self.interrupted() {
            return false; // Ctrl-C: the run is over
        }
        if at < self.measure_start {
            return true; // warm-up
        }
        match (self.deadline, self.requests) {
            (Some(deadline), _) => at < deadline,
            (None, Some(n)) => measured_sent < n,
            (None, None) => false,
        }
    }

    /// Open loop, at the end of a run: calls `f(due, n)` for the measured requests from number
    /// `next` on that were due before `until` (the client's last attempt to send) and never
    /// sent (`measured_sent` went out; with `--requests` the count stops at N): `n` requests
    /// from the one due at `due` on. `n` is 1 unless there are over a million of them (a
    /// server that vanished under `--rate 1e9`): then each call stands for a run of them, so
    /// the accounting takes a moment, not minutes, and moves each wait by under a millionth
    /// of the run.
    pub fn for_each_unsent(
        &self,
        next: u64,
        measured_sent: u64,
        until: Instant,
        mut f: impl FnMut(Instant, u64),
    ) {
        const MAX_CALLS: u64 = 1_000_000;
        let (Some(interval), Some(first)) = (self.interval, self.due(next)) else {
            return;
        };
        let span = until.saturating_duration_since(first).as_secs_f64();
        let estimate = (span / interval.as_secs_f64().max(1e-12)) as u64 + 1;
        let stride = (estimate / MAX_CALLS).max(1);
        let mut sent = measured_sent;
        let mut k = next;
        while let Some(due) = self.due(k) {
            if due > until || !self.may_send(due, sent) {
                break;
            }
            if due >= self.measure_start {
                let n = match (self.deadline, self.requests) {
                    (None, Some(cap)) => stride.min(cap.saturating_sub(sent)),
                    _ => stride,
                };
                f(due, n);
                sent += n;
            }
            k += stride;
        }
    }

    /// When the loop must wake, at the latest `wake`: for the deadline, and for request
    /// `next_due` if it can go out when due. Not for one that waits for a free slot
    /// (`backlogged`: only a reply can change that, and a reply is an event), nor for one that
    /// may not be sent at all (`--requests` all sent).
    pub fn wake_by(&self, mut wake: Instant, next_due: u64, backlogged: bool, measured_sent: u64) -> Instant {
        if let Some(due) = self.due(next_due)
            && !backlogged
            && self.may_send(due, measured_sent)
        {
            wake = wake.min(due);
        }
        if let Some(deadline) = self.deadline {
            wake = wake.min(deadline);
        }
        wake
    }

    /// Whether the plan is done at `now`, with `sent` measured requests sent and `in_flight`
    /// still unanswered: the deadline passed, or `--requests` were all sent and answered.
    pub fn done(&self, now: Instant, sent: u64, in_flight: usize) -> bool {
        if self.interrupted() {
            return true;
        }
        match (self.deadline, self.requests) {
            (Some(deadline), _) => now >= deadline,
            (None, Some(n)) => sent >= n && in_flight == 0,
            (None, None) => true,
        }
    }

    /// How many seconds before its `--duration` deadline a run that ended at `end` stopped,
    /// if noticeably (50 ms) early: every connection or socket was gone, and the report must
    /// say so rather than quietly rate a shorter run.
    pub fn ended_early(&self, end: Instant) -> Option<f64> {
        let deadline = self.deadline.filter(|_| !self.interrupted())?;
        (end + Duration::from_millis(50) < deadline).then(|| (deadline - end).as_secs_f64())
    }

    /// The measured window of a run that ended at `end`. With `--requests` it spans the first
    /// measured request sent (`from`) to the last measured reply (`until`); with `--duration`,
    /// the measuring phase, cut short if the run ended early.
    pub fn window(&self, from: Option<Instant>, until: Option<Instant>, end: Instant, sent: u64) -> Duration {
        let (from, until) = match self.requests {
            Some(_) => (from.unwrap_or(self.measure_start), until.unwrap_or(end)),
            None => (self.measure_start, self.deadline.unwrap_or(end).min(end)),
        };
        let span = until.saturating_duration_since(from);
        // Open loop with `--requests`: the `sent` requests due one interval apart took `sent`
        // intervals, not the `sent - 1` between the first and the last send, or `--rate 5
        // -n 5` would report 6.25 requests a second. (Those sent, not N: a run interrupted
        // or left without connections is rated over the time it ran.)
        match (self.requests, self.interval) {
            (Some(_), Some(interval)) => span.max(interval.mul_f64(sent as f64)),
            _ => span,
        }
    }

    /// Moves everything after the ramp later by the time between `ramp_end` and `now`: used when
    /// sending could not begin on time (chat waits until every member joined), so that the
    /// wait is not counted as measured time.
    pub fn start_sending_at(&mut self, now: Instant) {
        let late = now.saturating_duration_since(self.ramp_end);
        self.ramp_end += late;
        self.measure_start += late;
        if let Some(d) = self.deadline.as_mut() {
            *d += late;
        }
    }
}
