//! Reading a connection: drain it (edge-triggered), within a budget, and hand what came to
//! the service; notice the peer's FIN.
//!
//! Where a connection's bytes go, file by file (every step is a method of [`Reactor`]):
//!
//! ```text
//!   read.rs    read ─▶ input ─┐                 (through TLS first: layers.rs)
//!   call.rs                   └▶ call_service ─▶ after_call ─┬─▶ send_out      (write.rs)
//!                                                            ├─▶ deliver_outbox (write.rs)
//!                                                            └─▶ begin_close   (close.rs)
//!   write.rs   send_out ─▶ transmit ─▶ Conn::send: written now; the rest waits with WRITABLE
//!   close.rs   begin_close ─▶ end_session (call.rs) ─▶ settle ─▶ FIN, lingering ─▶ close
//! ```

use super::conn::{ReadOutcome, State};
use super::{Call, READ_CHUNK, Reactor};
use crate::service::CloseReason;

impl Reactor {
    /// Reads until the socket is drained, the budget is spent, or backpressure stops us.
    /// Once an event has said the peer closed its side (`Conn::fin_seen`), a short read is
    /// not the end: only a read that returns 0 reports the FIN.
    pub(super) fn read(&mut self, key: usize) {
        let mut budget = self.config.read_budget;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if !conn.reads() || (conn.held && conn.state == State::Open) {
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
                    budget = budget.saturating_sub(n);
                    if conn.state == State::Open {
                        if conn.awaiting_proxy {
                            self.proxy_input(key, n);
                        } else {
                            self.input(key, n);
                        }
                    }
                    // A lingering connection's bytes are read only to be thrown away.
                    if n < READ_CHUNK && !fin {
                        return; // short read: the receive queue is empty
                    }
                }
                ReadOutcome::Eof => return self.on_eof(key),
                ReadOutcome::WouldBlock => return,
                ReadOutcome::Error(e) => {
                    log::debug!("{} {}: read: {e}", conn.id, conn.peer);
                    return self.close(key, CloseReason::Error);
                }
            }
        }
    }

    /// `n` new bytes are in the read buffer: through TLS if the connection has it, then to
    /// the service.
    pub(super) fn input(&mut self, key: usize, n: usize) {
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
                // them. The ready queue serves them, then ends it (`Reactor::serve_ready_queue`).
                conn.eof_pending = true;
            }
            State::Open => {
                // A request cut off by the FIN can never complete.
                self.stats.input_buffered -= conn.discard_input() as u64;
                conn.set_state(State::HalfClosed);
                self.end_session(key, CloseReason::PeerClosed);
            }
            State::Lingering => self.close(key, CloseReason::Service),
            _ => {}
        }
    }
}
