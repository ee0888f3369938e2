//! A connection's I/O path: reading, handing bytes to the service, writing what it answers,
//! and closing, in the order the loop calls them.
//!
//! ```text
//!   read ─▶ input ─▶ call_service ─▶ after_call ─▶ send_out ─▶ transmit ─▶ Conn::send
//!                                        │             (write now; the rest waits in the
//!                                        │              output buffer with WRITABLE)
//!                                        ├─▶ deliver_outbox (bytes for other connections)
//!                                        └─▶ begin_close ─▶ end_session ─▶ settle ─▶ close
//! ```
//!
//! Everything here is a method of [`Reactor`], split out of `mod.rs` so that file shows the
//! loop and this one shows what happens to one connection's bytes. `guarded` (the panic
//! policy) and `transmit` (plain or TLS, the same write path) are here too.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use mio::Registry;

use super::conn::{Conn, ReadOutcome, State};
use super::timer::TimerKind;
use super::{Call, Phase, READ_CHUNK, Reactor, tls};
use crate::service::{CloseReason, ConnId, Cx};
use crate::stats::Stats;

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
                    if n < READ_CHUNK && !self.conns.get(key).is_some_and(|c| c.fin_seen) {
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

    /// Sends whatever the TLS session has queued, with no new plaintext.
    pub(super) fn send_out_empty(&mut self, key: usize) {
        self.out.clear();
        self.send_out(key);
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

    /// Calls the connection's service and carries out what it asked: the reply is written at
    /// once, a close request moves the connection to `Closing`, a timer is armed, and bytes
    /// for other connections are delivered.
    pub(super) fn call_service(&mut self, key: usize, call: Call) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let (id, peer, owed) = (conn.id, conn.peer, conn.pending_output());
        let Some(session) = conn.session.as_deref_mut() else {
            return;
        };
        let service = &mut self.services[conn.service];
        self.out.clear();
        let mut cx =
            Cx::new(self.now, self.wall, id, peer, &mut self.out, &mut self.outbox, &self.stats, owed)
                .with_output_limit(self.config.max_output)
                .with_reads_paused(conn.read_paused || conn.held)
                .with_draining(self.phase == Phase::Draining)
                .with_other_reactors(self.others.as_ref());
        let buffered_before = conn.input.len();
        let (rbuf, input) = match call {
            Call::Plain(_) => (&self.plain, &mut conn.input),
            _ => (&self.rbuf, &mut conn.input),
        };
        let outcome = guarded(service.name(), id, || match call {
            Call::Timer => service.timer(session, &mut cx),
            Call::Drain => service.drain(session, &mut cx),
            Call::Input(n) | Call::Plain(n) if input.is_empty() => {
                // The common case: nothing left over, so parse straight from the read buffer.
                let consumed = service.input(session, &rbuf[..n], &mut cx).min(n);
                if consumed < n {
                    input.extend_from_slice(&rbuf[consumed..n]);
                }
            }
            Call::Input(n) | Call::Plain(n) => {
                // An incomplete request is waiting: append and offer the whole of it.
                input.extend_from_slice(&rbuf[..n]);
                let consumed = service.input(session, input, &mut cx).min(input.len());
                input.drain(..consumed);
                if input.is_empty() {
                    *input = Vec::new(); // release
                }
            }
        });
        if outcome.is_none() {
            self.stats.input_buffered =
                self.stats.input_buffered + conn.input.len() as u64 - buffered_before as u64;
            return self.after_panic(key);
        }
        let close = cx.close_requested();
        let timer = cx.timer_requested();
        self.stats.input_buffered =
            self.stats.input_buffered + conn.input.len() as u64 - buffered_before as u64;
        let fresh = match call {
            Call::Input(n) | Call::Plain(n) => n,
            Call::Timer | Call::Drain => 0,
        };
        // What the call queued: its reply, and bytes for other connections (a broadcast, a
        // PUBLISH); `Cx::output_room` counts both.
        let queued = self.out.len() + self.outbox.bytes();
        // Answered, and consumed something: only then can it have stopped early at the output
        // limit. (A service that answers without consuming is not held back, and offering it
        // the same bytes again every turn would spin.)
        let held_back = queued > 0 && buffered_before + fresh > conn.input.len();
        // (A timer or drain call consumes nothing, so it says nothing about being held back.)
        if !matches!(call, Call::Timer | Call::Drain) {
            conn.held = held_back && !conn.input.is_empty() && owed + queued >= self.config.max_output;
        }
        // Complete requests held back at the output limit are not an over-long request: the
        // limit is for what a service could not consume. (Reading stops while held, so they
        // are at most what had been read when the service stopped.)
        let too_large = conn.input.len() > service.max_input() && !conn.held;
        self.after_call(key, close, timer);
        // A call that stopped at the output limit (`Cx::output_room`) left complete requests.
        // If its answer already went out, nothing else would wake this connection (the peer
        // may be waiting for us), so offer the rest again next turn. If the answer is still
        // owed, `flush` does this once it has gone.
        if let Some(conn) = self.conns.get(key)
            && held_back
            && conn.state == State::Open
            && !conn.input.is_empty()
            && conn.pending_output() == 0
        {
            self.enqueue(key);
        }
        if too_large {
            if let Some(conn) = self.conns.get(key) {
                log::debug!(
                    "{} {}: {} bytes of unconsumed input: over the limit",
                    conn.id,
                    conn.peer,
                    conn.input.len()
                );
            }
            // Gracefully: the service's last words (an error line, say) go out, and the
            // lingering close keeps the unread rest of the input from turning FIN into RST.
            self.begin_close(key, CloseReason::InputTooLarge);
        }
    }

    /// A service call panicked: whatever it wrote is suspect and dropped, and the connection
    /// is closed (the service is still told, in a guarded call of its own).
    pub(super) fn after_panic(&mut self, key: usize) {
        self.stats.service_panics += 1;
        self.out.clear();
        self.outbox.drain();
        self.close(key, CloseReason::Error);
    }

    /// Opens the service session of a new connection (its greeting is written at once).
    pub(super) fn open_session(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let service = &mut self.services[conn.service];
        self.out.clear();
        let draining = self.phase == Phase::Draining;
        let mut cx =
            Cx::new(self.now, self.wall, conn.id, conn.peer, &mut self.out, &mut self.outbox, &self.stats, 0)
                .with_draining(draining)
                .with_other_reactors(self.others.as_ref());
        let Some(session) = guarded(service.name(), conn.id, || service.open(&mut cx)) else {
            // No session: the service never saw this connection, so it is not told of the close.
            self.out.clear();
            self.outbox.drain();
            self.stats.service_panics += 1;
            return self.close(key, CloseReason::Error);
        };
        conn.session = Some(session);
        let close = cx.close_requested();
        let timer = cx.timer_requested();
        self.after_call(key, close, timer);
        // A TLS handshake or a PROXY header that ends after shutdown began: this session
        // missed the drain call the others got.
        if draining && self.conns.get(key).is_some_and(|c| c.state == State::Open) {
            self.call_service(key, Call::Drain);
        }
    }

    /// Carries out the results of a service call (`self.out` holds the reply).
    pub(super) fn after_call(&mut self, key: usize, close: bool, timer: Option<Instant>) {
        self.send_out(key);
        if let Some(at) = timer {
            self.arm_service_timer(key, at);
        }
        if close && self.conns.get(key).is_some_and(|c| c.state == State::Open) {
            self.begin_close(key, CloseReason::Service);
        }
        if !self.outbox.is_empty() {
            self.deliver_outbox();
        }
    }

    /// Writes `self.out` to connection `key` (write-before-sleep).
    pub(super) fn send_out(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if self.out.is_empty() && conn.tls.is_none() {
            return;
        }
        let registry = self.poll.registry();
        if let Err(e) = transmit(conn, &self.out, &mut self.cipher, registry, &mut self.stats) {
            log::debug!("{} {}: write: {e}", conn.id, conn.peer);
            self.close(key, CloseReason::Error);
        }
    }

    /// Delivers bytes services addressed to other connections.
    ///
    /// Each recipient's messages from one batch go out together, in order, in one write: a
    /// pipeline of 16 PUBLISHes to 100 subscribers is 100 writes, not 1,600 (measured: that
    /// took 7 times Redis's CPU, which joins them the same way).
    ///
    /// A recipient that already owed more than `max_output` when the batch came cannot be
    /// slowed down by backpressure (it is not the sender), so it is disconnected as too slow;
    /// nobody else waits for it. One that was keeping up takes the batch even past the limit,
    /// so a prompt reader is not cut off by a single message bigger than the limit; the
    /// sender's `output_room` counts the outbox, which bounds a batch.
    ///
    /// Closing a slow recipient tells its service, which may queue more (chat announces who
    /// left); `end_session` then calls this again. That inner call returns at once and the
    /// loop below picks the new messages up, so a room full of slow members is a loop, not
    /// a recursion as deep as the room.
    pub(super) fn deliver_outbox(&mut self) {
        if self.delivering {
            return;
        }
        self.delivering = true;
        let mut batch = Vec::new();
        let mut joined: Vec<(crate::service::ConnId, Vec<u8>)> = Vec::new();
        while !self.outbox.is_empty() {
            batch.extend(self.outbox.drain());
            // A stable sort: each recipient's messages keep their order.
            batch.sort_by_key(|(to, _)| to.index());
            for (to, bytes) in batch.drain(..) {
                match joined.last_mut() {
                    Some((last, run)) if *last == to => run.extend_from_slice(&bytes),
                    _ => joined.push((to, bytes)),
                }
            }
            for (to, bytes) in joined.drain(..) {
                let key = to.index();
                let Some(conn) = self.conns.get_mut(key) else {
                    continue;
                };
                if conn.id != to || !matches!(conn.state, State::Open | State::HalfClosed | State::Closing) {
                    continue; // that connection is gone or going: the bytes are dropped
                }
                let behind = conn.pending_output() > self.config.max_output;
                let registry = self.poll.registry();
                let sent = if behind {
                    Ok(())
                } else {
                    transmit(conn, &bytes, &mut self.cipher, registry, &mut self.stats)
                };
                match sent {
                    Ok(()) => {
                        if behind {
                            log::debug!(
                                "{} {}: owes {} bytes: too slow",
                                conn.id,
                                conn.peer,
                                conn.pending_output()
                            );
                            self.stats.conns_slow_closed += 1;
                            let dropped = conn.discard_output();
                            self.stats.output_buffered -= dropped as u64;
                            self.close(key, CloseReason::TooSlow);
                        }
                    }
                    Err(e) => {
                        log::debug!("{} {}: write: {e}", conn.id, conn.peer);
                        self.close(key, CloseReason::Error);
                    }
                }
            }
        }
        self.delivering = false;
    }

    /// Writes owed output. When it is all out, reading resumes if backpressure had paused it.
    pub(super) fn flush(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let before = conn.pending_output();
        let flushed = conn.flush(self.poll.registry());
        // Counted even when the write failed part way: what went, went.
        let written = before - conn.pending_output();
        self.stats.bytes_out += written as u64;
        self.stats.output_buffered -= written as u64;
        match flushed {
            Ok(()) => {
                if written > 0 {
                    conn.last_active = self.now;
                }
                if conn.pending_output() == 0 && (conn.read_paused || !conn.input.is_empty()) {
                    if conn.read_paused {
                        conn.read_paused = false;
                        log::debug!("{} {}: output drained: reads resumed", conn.id, conn.peer);
                    }
                    // The socket may hold data whose readable edge we already consumed, and
                    // the service may have held requests back while the output was full.
                    self.enqueue(key);
                }
            }
            Err(e) => {
                log::debug!("{} {}: write: {e}", conn.id, conn.peer);
                self.close(key, CloseReason::Error);
            }
        }
    }

    /// Moves a closing connection on once everything owed has been written: a half-closed
    /// one is done; one we are closing sends FIN and lingers.
    pub(super) fn settle(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.pending_output() > 0 {
            return;
        }
        match conn.state {
            State::HalfClosed => self.close(key, CloseReason::PeerClosed),
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

    /// Tells the service the connection is over (once) and sends whatever it wrote last.
    pub(super) fn end_session(&mut self, key: usize, reason: CloseReason) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(session) = conn.session.take() else {
            return;
        };
        let service = &mut self.services[conn.service];
        self.out.clear();
        let mut cx = Cx::new(
            self.now,
            self.wall,
            conn.id,
            conn.peer,
            &mut self.out,
            &mut self.outbox,
            &self.stats,
            conn.pending_output(),
        )
        .with_draining(self.phase == Phase::Draining)
        .with_other_reactors(self.others.as_ref());
        if guarded(service.name(), conn.id, || service.close(session, reason, &mut cx)).is_none() {
            self.stats.service_panics += 1;
            self.out.clear();
            self.outbox.drain();
            return;
        }
        if reason != CloseReason::Error {
            // The service's last words first: a TLS peer ignores anything after close_notify.
            self.send_out(key);
            // (Unless that write failed and closed it.)
            if let Some(tls) = self
                .conns
                .get_mut(key)
                .filter(|c| c.state != State::Closed)
                .and_then(|c| c.tls.as_deref_mut())
            {
                tls.send_close_notify();
                self.send_out_empty(key);
            }
        }
        if !self.outbox.is_empty() {
            self.deliver_outbox();
        }
    }

    /// Closes connection `key` now: the service is told (if it was not yet), the socket is
    /// deregistered, and the slot becomes a tombstone until the end of the turn.
    pub(super) fn close(&mut self, key: usize, reason: CloseReason) {
        match self.conns.get(key) {
            Some(conn) if conn.state != State::Closed => {}
            _ => return,
        }
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
        log::debug!("{} {}: closed ({reason:?})", conn.id, conn.peer);
        conn.set_state(State::Closed);
        self.stats.conns_open -= 1;
        self.release();
        self.reap.push(key);
    }
}

/// Runs one service call, catching a panic.
///
/// The policy: a panic in a service is a bug in that service, and it must be loud but local.
/// The panic message goes to stderr (Rust's panic hook) and to the log with the connection it
/// happened on; the call's output is dropped and that one connection is closed; every other
/// connection, and the process, go on. Memory safety is untouched (the crate has no `unsafe`),
/// but the service's shared state may be half-updated, which is why the counter
/// `service_panics` is exported: a non-zero value is worth an alert.
pub(super) fn guarded<R>(service: &str, id: ConnId, call: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(AssertUnwindSafe(call))
        .map_err(|payload| {
            log::error!("{service} service panicked on {id}: {}; closing it", panic_message(&*payload));
        })
        .ok()
}

/// [`guarded`] for a datagram service call, which has a peer address instead of a connection.
pub(super) fn guarded_datagram<R>(service: &str, from: SocketAddr, call: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(AssertUnwindSafe(call))
        .map_err(|payload| {
            log::error!("{service} service panicked on a datagram from {from}: {}", panic_message(&*payload));
        })
        .ok()
}

pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-text panic payload)")
}

/// Sends plaintext `bytes` to `conn`, through its TLS session if it has one, and keeps the
/// counters. Plain connections write `bytes` as they are; TLS connections encrypt into
/// `cipher` and write that, so both take the same path into the socket and the same output
/// buffer (see `reactor/tls.rs`).
///
/// Writing does not make a connection active: the idle timer measures signs of life *from
/// the peer* (bytes read from it, or owed output it finally took, see `flush`), so a member
/// that never reads cannot be kept alive by what others send it.
pub(super) fn transmit(
    conn: &mut Conn,
    bytes: &[u8],
    cipher: &mut Vec<u8>,
    registry: &Registry,
    stats: &mut Stats,
) -> std::io::Result<()> {
    let before = conn.pending_output();
    let sent = if let Some(tls) = conn.tls.as_deref_mut() {
        tls::encrypt(tls, bytes, cipher).and_then(|()| conn.send(cipher, registry))
    } else {
        conn.send(bytes, registry)
    };
    // Kept even when `send` failed after buffering (registering WRITABLE): `close` takes the
    // buffered bytes off this gauge again, so they must have been put on it.
    stats.output_buffered = stats.output_buffered + conn.pending_output() as u64 - before as u64;
    stats.bytes_out += sent? as u64;
    Ok(())
}
