//! Live counters of one reactor: what `--stats`, HTTP `/stats` and `/metrics`, and kv `INFO`
//! report.
//!
//! The reactor is the only writer: it bumps these plain integers as it accepts, reads, writes
//! and closes. Services get a shared reference through their context ([`crate::service::Cx`])
//! and may only read them. Plain `u64`s are enough because one thread owns one reactor; a
//! multi-reactor process sums snapshots instead of sharing counters on the hot path.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counters kept by one reactor since it started.
#[derive(Debug, Clone)]
pub struct Stats {
    /// When the reactor was built; `uptime` is measured from here.
    pub started: Instant,
    /// TCP connections open right now.
    pub conns_open: u64,
    /// TCP connections accepted since start (refused ones included).
    pub conns_total: u64,
    /// Connections turned away because `--max-conns` was reached.
    pub conns_refused: u64,
    /// Connections closed because their idle timer fired.
    pub conns_idle_closed: u64,
    /// Connections closed because their output buffer passed the hard limit.
    pub conns_slow_closed: u64,
    /// Bytes read from TCP peers.
    pub bytes_in: u64,
    /// Bytes written to TCP peers.
    pub bytes_out: u64,
    /// Reads that delivered bytes to a service (one per `read` syscall that returned data).
    pub reads: u64,
    /// Bytes currently held in connection output buffers (data the kernel would not take yet).
    pub output_buffered: u64,
    /// Bytes currently held in connection input buffers (incomplete requests).
    pub input_buffered: u64,
    /// Datagrams received on UDP sockets.
    pub datagrams_in: u64,
    /// Datagrams sent from UDP sockets.
    pub datagrams_out: u64,
    /// Replies dropped because the UDP send queue was full.
    pub datagrams_dropped: u64,
    /// Times accepting was paused because the process ran out of file descriptors.
    pub accept_pauses: u64,
    /// Service calls that panicked (each closed its connection; see `reactor::guarded`).
    pub service_panics: u64,
}

impl Stats {
    /// Fresh counters, with `started` set to `now`.
    pub fn new(now: Instant) -> Self {
        Stats {
            started: now,
            conns_open: 0,
            conns_total: 0,
            conns_refused: 0,
            conns_idle_closed: 0,
            conns_slow_closed: 0,
            bytes_in: 0,
            bytes_out: 0,
            reads: 0,
            output_buffered: 0,
            input_buffered: 0,
            datagrams_in: 0,
            datagrams_out: 0,
            datagrams_dropped: 0,
            accept_pauses: 0,
            service_panics: 0,
        }
    }

    /// Adds `other`'s counters to these (for totals over several reactors). The start time
    /// becomes the earlier of the two.
    pub fn add(&mut self, other: &Stats) {
        self.started = self.started.min(other.started);
        self.conns_open += other.conns_open;
        self.conns_total += other.conns_total;
        self.conns_refused += other.conns_refused;
        self.conns_idle_closed += other.conns_idle_closed;
        self.conns_slow_closed += other.conns_slow_closed;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.reads += other.reads;
        self.output_buffered += other.output_buffered;
        self.input_buffered += other.input_buffered;
        self.datagrams_in += other.datagrams_in;
        self.datagrams_out += other.datagrams_out;
        self.datagrams_dropped += other.datagrams_dropped;
        self.accept_pauses += other.accept_pauses;
        self.service_panics += other.service_panics;
    }

    /// Time since the reactor started, as seen at `now`.
    pub fn uptime(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// The one-line summary `serve --stats N` logs.
    pub fn summary(&self, now: Instant) -> String {
        format!(
            "up {}s: conns open {} total {} refused {}; bytes in {} out {}; reads {}; \
             buffered in {} out {}; datagrams in {} out {} dropped {}",
            self.uptime(now).as_secs(),
            self.conns_open,
            self.conns_total,
            self.conns_refused,
            self.bytes_in,
            self.bytes_out,
            self.reads,
            self.input_buffered,
            self.output_buffered,
            self.datagrams_in,
            self.datagrams_out,
            self.datagrams_dropped,
        )
    }
}

/// Counters that a [`Board`] can sum over reactors.
pub trait Tally: Clone {
    /// Adds `other`'s counts to these.
    fn add(&mut self, other: &Self);
}

impl Tally for Stats {
    fn add(&mut self, other: &Self) {
        Stats::add(self, other);
    }
}

/// Where several reactors of one process publish their counters, so that each can report
/// the process's totals (`--stats`, HTTP `/stats` and `/metrics`, kv `INFO`): the reactor's
/// [`Stats`] ([`StatsBoard`]), and a service's own counters (HTTP's requests and responses).
///
/// This is the only state reactor threads share, and it is off the hot path: each reactor
/// copies its counters in a few times a second (`Reactor::share_stats`) and reads the
/// others' copies at the same moment. A lock taken five times a second per thread costs
/// nothing measurable; counters shared per event (atomics bumped on every read) would.
#[derive(Debug)]
pub struct Board<T> {
    slots: Arc<Mutex<Vec<Option<T>>>>,
}

/// The reactors' own counters.
pub type StatsBoard = Board<Stats>;

impl<T> Clone for Board<T> {
    fn clone(&self) -> Self {
        Board { slots: Arc::clone(&self.slots) }
    }
}

impl<T> Default for Board<T> {
    fn default() -> Self {
        Board { slots: Arc::new(Mutex::new(Vec::new())) }
    }
}

impl<T: Tally> Board<T> {
    /// A board for `reactors` reactors.
    pub fn new(reactors: usize) -> Self {
        Board { slots: Arc::new(Mutex::new((0..reactors).map(|_| None).collect())) }
    }

    /// Publishes `mine` as reactor `index`'s counters and returns the process's totals: `mine`
    /// plus every other reactor's latest copy. Reported totals never go down from one report
    /// to the next, whichever reactor makes them: each slot only grows, and every report
    /// first brings its own slot up to date, so no later report can read an older copy of it.
    pub fn total(&self, index: usize, mine: &T) -> T {
        let mut total = mine.clone();
        if let Some(others) = self.publish(index, mine) {
            total.add(&others);
        }
        total
    }

    /// Publishes reactor `index`'s counters and returns the sum of every *other* reactor's
    /// latest copy.
    pub fn publish(&self, index: usize, mine: &T) -> Option<T> {
        // A poisoned lock means another reactor panicked while publishing; its counters
        // are still plain numbers, so keep using them.
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = slots.get_mut(index) {
            *slot = Some(mine.clone());
        }
        let mut others: Option<T> = None;
        for (i, slot) in slots.iter().enumerate() {
            if let (true, Some(stats)) = (i != index, slot) {
                match others.as_mut() {
                    Some(sum) => sum.add(stats),
                    None => others = Some(stats.clone()),
                }
            }
        }
        others
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_sums_the_other_reactors() {
        let now = Instant::now();
        let board = StatsBoard::new(3);
        let mut a = Stats::new(now);
        a.conns_total = 5;
        let mut b = Stats::new(now);
        b.conns_total = 7;
        b.bytes_in = 100;
        assert!(board.publish(0, &a).is_none(), "nobody else has published yet");
        let others = board.publish(1, &b).unwrap();
        assert_eq!(others.conns_total, 5);
        let others = board.publish(2, &Stats::new(now)).unwrap();
        assert_eq!((others.conns_total, others.bytes_in), (12, 100));
    }

    #[test]
    fn a_total_counts_its_own_live_counters_and_publishes_them_first() {
        let now = Instant::now();
        let board = StatsBoard::new(2);
        let mut a = Stats::new(now);
        a.conns_total = 5;
        assert_eq!(board.total(0, &a).conns_total, 5, "alone on the board");
        let mut b = Stats::new(now);
        b.conns_total = 1;
        // Reactor 1 sees the 5 reactor 0 published while reporting, not an older copy.
        assert_eq!(board.total(1, &b).conns_total, 6);
        a.conns_total = 9;
        assert_eq!(board.total(0, &a).conns_total, 10);
        assert_eq!(board.total(1, &b).conns_total, 10);
    }
}
