//! Timers: mio has none, so the reactor keeps its own and turns the nearest deadline into the
//! `poll` timeout.
//!
//! A binary heap of `(deadline, seq, kind)` entries; `seq` keeps equal deadlines in the order
//! they were added. On the hot path nothing is removed from the middle: an entry whose
//! connection has gone, or whose deadline moved later, is simply found stale when it fires
//! and ignored or pushed again. That keeps every operation `O(log n)` and the hot path free of
//! timer work: a busy connection only stores "last active at" and never touches the heap (see
//! `Reactor::on_idle_timer` in `timeouts.rs`). Only when stale entries come to dominate the
//! heap does `Reactor::compact_timers` sweep them out, in one `O(n)` pass ([`Timers::retain`]).
//!
//! Time is passed in: nothing here reads a clock, so tests drive it with made-up instants.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::service::ConnId;

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKind {
    /// Check whether a connection has been idle for the idle timeout.
    Idle(ConnId),
    /// A timer the connection's service asked for (`Cx::set_timer`).
    Service(ConnId),
    /// The TLS handshake (or the PROXY header before it) of a connection must be done by now.
    Handshake(ConnId),
    /// End of the lingering close of a connection.
    Linger(ConnId),
    /// Service-wide periodic work (`Service::tick`) of service number `i`.
    Tick(usize),
    /// Try accepting again on listener `i` after running out of file descriptors.
    AcceptResume(usize),
    /// Log the `--stats` line.
    Stats,
    /// Exchange counters with the other reactors of the process.
    Publish,
    /// The shutdown grace period ended.
    Grace,
}

/// A min-heap of deadlines.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, TimerKind)>>,
    seq: u64,
}

impl Timers {
    /// Schedules `kind` at `at`. Entries with equal deadlines fire in insertion order.
    pub fn add(&mut self, at: Instant, kind: TimerKind) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, kind)));
    }

    /// The nearest deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// How long `poll` may sleep at `now`: until the nearest deadline, rounded up to whole
    /// milliseconds (epoll's resolution) so that we never wake a hair early and spin.
    pub fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        self.next_deadline().map(|at| {
            let wait = at.saturating_duration_since(now);
            let ms = wait.as_nanos().div_ceil(1_000_000);
            Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
        })
    }

    /// Removes and returns one timer that is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKind)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                self.heap.pop().map(|Reverse((at, _, kind))| (at, kind))
            }
            _ => None,
        }
    }

    /// Keeps only the entries `keep` approves, and gives back the memory of the rest.
    pub fn retain(&mut self, mut keep: impl FnMut(&TimerKind) -> bool) {
        self.heap.retain(|Reverse((_, _, kind))| keep(kind));
        self.heap.shrink_to(self.heap.len() * 2);
    }

    /// Number of pending entries (stale ones included).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// What an idle check finds at `now` for a connection last active at `last_active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleCheck {
    /// There was traffic since the timer was set: check again at this instant.
    Rearm(Instant),
    /// No traffic for the whole timeout: close it.
    Expired,
}

/// The idle rule, apart from any clock: a connection expires once `idle` has passed since it
/// was last active. A timer that fires early (the connection was busy meanwhile) moves to
/// the real deadline instead of being replaced on every byte.
pub fn idle_check(last_active: Instant, idle: Duration, now: Instant) -> IdleCheck {
    let due = last_active + idle;
    if due > now { IdleCheck::Rearm(due) } else { IdleCheck::Expired }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_check_rearms_while_busy_and_expires_when_quiet() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(300);
        // Opened at t0, timer due at t0+300s; traffic at t0+200s moves the deadline.
        let busy_at = t0 + Duration::from_secs(200);
        assert_eq!(idle_check(busy_at, idle, t0 + idle), IdleCheck::Rearm(busy_at + idle));
        // Nothing since: at the new deadline it expires, and not a moment before.
        assert_eq!(
            idle_check(busy_at, idle, busy_at + idle - Duration::from_millis(1)),
            IdleCheck::Rearm(busy_at + idle)
        );
        assert_eq!(idle_check(busy_at, idle, busy_at + idle), IdleCheck::Expired);
        assert_eq!(idle_check(t0, idle, t0 + Duration::from_secs(3600)), IdleCheck::Expired);
    }

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.add(t0 + Duration::from_secs(3), TimerKind::Stats);
        timers.add(t0 + Duration::from_secs(1), TimerKind::Grace);
        timers.add(t0 + Duration::from_secs(2), TimerKind::Tick(4));
        assert_eq!(timers.pop_due(t0), None);
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_secs(1)));
        let due: Vec<_> =
            std::iter::from_fn(|| timers.pop_due(t0 + Duration::from_secs(2))).map(|(_, k)| k).collect();
        assert_eq!(due, vec![TimerKind::Grace, TimerKind::Tick(4)]);
        assert_eq!(timers.len(), 1);
    }

    #[test]
    fn retain_drops_stale_entries_and_keeps_order() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for i in 0..100u64 {
            timers.add(t0 + Duration::from_millis(i), TimerKind::Tick(i as usize));
        }
        timers.retain(|kind| matches!(kind, TimerKind::Tick(i) if i % 10 == 0));
        assert_eq!(timers.len(), 10);
        let due: Vec<_> =
            std::iter::from_fn(|| timers.pop_due(t0 + Duration::from_secs(1))).map(|(_, k)| k).collect();
        assert_eq!(due, (0..10).map(|i| TimerKind::Tick(i * 10)).collect::<Vec<_>>());
    }

    #[test]
    fn poll_timeout_rounds_up_to_a_millisecond() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.add(t0 + Duration::from_micros(1500), TimerKind::Stats);
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_millis(2)));
        assert_eq!(timers.poll_timeout(t0 + Duration::from_secs(1)), Some(Duration::ZERO));
    }
}
