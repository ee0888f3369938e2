//! Live counters of one reactor: what `--stats`, HTTP `/stats` and `/metrics`, and kv `INFO`
//! report.
//!
//! The reactor is the only writer: it bumps these plain integers as it accepts, reads, writes
//! and closes. Services get a shared reference through their context ([`crate::service::Cx`])
//! and may only read them. Plain `u64`s are enough because one thread owns one reactor; a
//! multi-reactor process sums snapshots instead of sharing counters on the hot path.

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
