//! Reading a connection: drain it (edge-triggered), within a budget, and hand what came to
//! the service; notice the peer's FIN.
//!
//! The map of a connection's path through the files is in `mod.rs`.

use super::conn::{ReadOutcome, State};
use super::{Call, READ_CHUNK, Reactor};
use crate::service::CloseReason;

impl Reactor {
    /// Reads until the socket is drained, the budget is spent, backpressure stops us, or the
    /// service is holding requests back (`Conn::held`). Once an event has said the peer closed
    /// its side (`Conn::fin_seen`), a short read is not the end: only a read that returns 0
    /// reports the FIN.
    pub(super) fn read(&mut self, key: usize) {
        let mut budget = self.config.read_budget;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if !conn.reads() {
                return; // half-closed or closing: there is nothing more to read for
            }
            // Held: complete requests wait at the output limit and come first
            // (`Reactor::resume`); a FIN read now would cut them off.
            if conn.held && conn.state == State::Open {
                return;
            }
            if conn.state == State::Open && conn.pending_output() >= self.config.max_output {
                if !conn.read_paused {
                    log::debug!(
                        "{} {}: backpressure, {} bytes owed: reads paused",
                        conn.id,
                        conn.peer,
                        conn.pending_output()
                    );
                    conn.read_paused = true;
                }
                return;
            }
            if budget == 0 {
                self.enqueue(key);
                return;
            }
            match conn.read(&mut self.rbuf) {
                ReadOutcome::Data(n) => {
                    let fin = conn.fin_seen;
                    self.stats.bytes_in += n as u64;
                    self.stats.reads += 1;
                    conn.last_active = self.now;
                    conn.last_read = self.now;
                    budget = budget.saturating_sub(n);
                    if conn.state == State::Open {
                        if conn.awaiting_proxy {
                            self.proxy_input(key, n);
                        } else {
                            self.on_bytes(key, n);
                        }
                    } else {
                        // Lingering: the peer's bytes are read only to be thrown away.
                    }
                    if n < READ_CHUNK && !fin {
                        return; // short read: the receive queue is empty
                    }
                }
                ReadOutcome::Eof => return self.on_eof(key),
                ReadOutcome::WouldBlock => return,
                ReadOutcome::Error(e) => {
                    log::debug!("{} {}: read: {e}", conn.id, conn.peer);
                    return self.close_now(key, CloseReason::Error);
                }
            }
        }
    }

    /// A connection comes off the ready queue: its read budget was spent, its output drained
    /// after backpressure, or its service held complete requests back at the output limit.
    /// Offer the held requests again, read on, and act on a FIN that waited behind them.
    pub(super) fn resume(&mut self, key: usize) {
        let Some(conn) = self.conns.get(key) else { return };
        // A service may have left complete requests unconsumed at the output limit
        // (`Cx::output_room`); if it is queued because that output has gone, offer them again
        // even if no new byte arrives. (Queued for its budget instead, this finds only an
        // incomplete request: a no-op.)
        if !conn.input.is_empty() && conn.state == State::Open && !conn.read_paused {
            self.call_service(key, Call::Reoffer);
        }
        self.read(key);
        if let Some(conn) = self.conns.get(key)
            && conn.eof_pending
            && !conn.held
            && conn.state == State::Open
        {
            self.on_eof(key);
        }
        self.settle(key);
    }

    /// `n` new bytes are in the read buffer: through TLS if the connection has it, then to
    /// the service.
    pub(super) fn on_bytes(&mut self, key: usize, n: usize) {
        if self.conns.get(key).is_some_and(|c| c.tls.is_some()) {
            self.tls_input(key, n);
        } else {
            self.call_service(key, Call::Input(n));
        }
    }

    /// The peer sent FIN.
    pub(super) fn on_eof(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match conn.state {
            State::Open if conn.held => {
                // Complete requests still wait for the output to drain (a TLS close_notify
                // decrypted in the same read as they were): the end of input comes after
                // them. The ready queue offers them again, and `Reactor::resume` then ends it.
                conn.eof_pending = true;
            }
            State::Open => {
                // A request cut off by the FIN can never complete.
                self.stats.input_buffered -= conn.discard_input() as u64;
                conn.set_state(State::HalfClosed);
                self.end_session(key, CloseReason::PeerClosed);
            }
            State::Lingering => self.close_now(key, CloseReason::Service),
            _ => {}
        }
    }
}
