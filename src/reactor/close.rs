//! Closing: gracefully (the service's last words, the output flushed, FIN, then lingering
//! until the peer closes too) or at once (an error, a peer too slow, the grace period over).
//! The states are `conn.rs`'s diagram.

use super::Reactor;
use super::conn::State;
use super::timer::TimerKind;
use crate::service::CloseReason;

impl Reactor {
    /// Moves a closing connection on once everything owed has been written: a half-closed
    /// one is done; one we are closing sends FIN and lingers. Called after anything that may
    /// have emptied a closing connection's output with no event to follow (a service call, a
    /// timer, a drain): epoll says when a socket can take more, never that our write is done.
    pub(super) fn settle(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.pending_output() > 0 {
            return;
        }
        match conn.state {
            State::HalfClosed => self.close_now(key, CloseReason::PeerClosed),
            State::Closing => {
                conn.shutdown_write();
                conn.set_state(State::Lingering);
                let id = conn.id;
                self.timers.add(self.now + self.config.linger, TimerKind::Linger(id));
                // Bytes may already be waiting, and their edge is spent: drain them now.
                self.read(key);
            }
            _ => {}
        }
    }

    /// Starts a graceful close: the service is told, no more input is processed, the output
    /// is flushed, then FIN and lingering (see [`State`]).
    pub(super) fn begin_close(&mut self, key: usize, reason: CloseReason) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.state != State::Open {
            return;
        }
        self.stats.input_buffered -= conn.discard_input() as u64;
        conn.set_state(State::Closing);
        self.end_session(key, reason);
    }

    /// Closes connection `key` now: the service is told (if it was not yet), the socket is
    /// deregistered, and the slot becomes a tombstone until the end of the turn.
    pub(super) fn close_now(&mut self, key: usize, reason: CloseReason) {
        match self.conns.get(key) {
            Some(conn) if conn.state != State::Closed => {}
            _ => return,
        }
        // Records `reason` as the close's first, if none is yet (see the log line below).
        self.end_session(key, reason);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.state == State::Closed {
            return; // closed while the service was being told (a write error)
        }
        if conn.pending_output() > 0 {
            log::debug!("{} {}: {} bytes owed are dropped", conn.id, conn.peer, conn.pending_output());
        }
        self.stats.output_buffered -= conn.discard_output() as u64;
        self.stats.input_buffered -= conn.discard_input() as u64;
        if let Err(e) = self.poll.registry().deregister(&mut conn.socket) {
            log::debug!("{} {}: deregister: {e}", conn.id, conn.peer);
        }
        // The reason the close began (an idle timeout, a `Connection: close`, a TLS error on
        // a connection that never had a session), and the last step's only if it adds
        // something: a reset while the last words were flushed, say. A linger that ended,
        // answered or timed out, is passed as `Service` and adds nothing.
        match conn.close_reason {
            Some(first) if first != reason && reason != CloseReason::Service => {
                log::debug!("{} {}: closed ({first:?}; then {reason:?})", conn.id, conn.peer)
            }
            first => log::debug!("{} {}: closed ({:?})", conn.id, conn.peer, first.unwrap_or(reason)),
        }
        conn.set_state(State::Closed);
        self.stats.conns_open -= 1;
        self.release();
        self.reap.push(key);
    }
}
