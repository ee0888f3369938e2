//! Calling a service: the one place the reactor hands a connection's bytes (or a timer, a
//! shutdown, an open, a close) to its service, and carries out what the service asked for in
//! the [`Cx`]: a reply, a close, a timer, bytes for other connections, an exemption from the
//! idle timeout.
//!
//! Every call is guarded (`guarded`): a panicking service loses that one connection, not
//! the process.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use super::conn::State;
use super::{Call, Phase, Reactor};
use crate::service::{CloseReason, ConnId, Cx};

/// What a service call asked of the reactor besides its reply, read from the [`Cx`] once
/// the call is over and carried out by [`Reactor::after_call`].
pub(super) struct Asked {
    close: bool,
    timer: Option<Instant>,
    idle_exempt: Option<bool>,
}

impl Asked {
    fn of(cx: &Cx<'_>) -> Asked {
        Asked {
            close: cx.close_requested(),
            timer: cx.timer_requested(),
            idle_exempt: cx.idle_exemption_requested(),
        }
    }
}

impl Reactor {
    /// Calls the connection's service and carries out what it asked: the reply is written at
    /// once, a close request moves the connection to `Closing`, a timer is armed, bytes for
    /// other connections are delivered, and an idle exemption is noted on the connection.
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
                .with_last_read(conn.last_read)
                .with_draining(self.phase == Phase::Draining)
                .with_board(self.board.as_ref());
        let buffered_before = conn.input.len();
        let (rbuf, input) = match call {
            Call::Plain(_) => (&self.plain, &mut conn.input),
            _ => (&self.rbuf, &mut conn.input),
        };
        // The bytes this call brings: new ones at the front of a buffer, or none.
        let fresh = match call {
            Call::Input(n) | Call::Plain(n) => n,
            Call::Reoffer | Call::Timer | Call::Drain => 0,
        };
        let outcome = guarded(service.name(), id, || match call {
            Call::Timer => service.timer(session, &mut cx),
            Call::Drain => service.drain(session, &mut cx),
            Call::Input(_) | Call::Plain(_) | Call::Reoffer if input.is_empty() => {
                // The common case: nothing left over, so parse straight from the read buffer.
                let consumed = service.input(session, &rbuf[..fresh], &mut cx).min(fresh);
                if consumed < fresh {
                    input.extend_from_slice(&rbuf[consumed..fresh]);
                }
            }
            Call::Input(_) | Call::Plain(_) | Call::Reoffer => {
                // An incomplete request (or requests held back) is waiting: append the new
                // bytes, if any, and offer the whole of it.
                input.extend_from_slice(&rbuf[..fresh]);
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
        let asked = Asked::of(&cx);
        self.stats.input_buffered =
            self.stats.input_buffered + conn.input.len() as u64 - buffered_before as u64;
        // What the call queued: its reply, and bytes for other connections (a broadcast, a
        // PUBLISH); `Cx::output_room` counts both.
        let queued = self.out.len() + self.outbox.bytes();
        // Did the service stop early at the output limit (`Cx::output_room`), leaving whole
        // requests? Only if it consumed something and either answered or began already at
        // the limit (a TLS read makes one call per record, and a later record may be answered
        // with nothing: a blank chat line). A call that consumed nothing is waiting for the
        // rest of a request, and offering it the same bytes again every turn would spin.
        let consumed_some = buffered_before + fresh > conn.input.len();
        let answered_or_full = queued > 0 || owed >= self.config.max_output;
        let stopped_early = consumed_some && answered_or_full;
        // `held` (reading stops until the rest is offered again) only while the limit is
        // really reached. A timer or drain call consumes nothing, so it says nothing either way.
        if !matches!(call, Call::Timer | Call::Drain) {
            conn.held = stopped_early && !conn.input.is_empty() && owed + queued >= self.config.max_output;
        }
        // Complete requests held back at the output limit are not an over-long request: the
        // limit is for what a service could not consume. (Reading stops while held, so they
        // are at most what had been read when the service stopped.)
        let too_large = conn.input.len() > service.max_input() && !conn.held;
        self.after_call(key, asked);
        // A call that stopped at the output limit (`Cx::output_room`) left complete requests.
        // If its answer already went out, nothing else would wake this connection (the peer
        // may be waiting for us), so offer the rest again next turn. If the answer is still
        // owed, `flush` does this once it has gone.
        if let Some(conn) = self.conns.get(key)
            && stopped_early
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

    /// Carries out the results of a service call (`self.out` holds the reply).
    pub(super) fn after_call(&mut self, key: usize, asked: Asked) {
        if let (Some(exempt), Some(conn)) = (asked.idle_exempt, self.conns.get_mut(key)) {
            conn.set_idle_exempt(exempt);
        }
        self.send_out(key);
        if let Some(at) = asked.timer {
            self.arm_service_timer(key, at);
        }
        if asked.close && self.conns.get(key).is_some_and(|c| c.state == State::Open) {
            self.begin_close(key, CloseReason::Service);
        }
        if !self.outbox.is_empty() {
            self.deliver_outbox();
        }
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
                .with_board(self.board.as_ref());
        let Some(session) = guarded(service.name(), conn.id, || service.open(&mut cx)) else {
            // No session: the service never saw this connection, so it is not told of the close.
            self.out.clear();
            self.outbox.drain();
            self.stats.service_panics += 1;
            return self.close_now(key, CloseReason::Error);
        };
        conn.session = Some(session);
        let asked = Asked::of(&cx);
        self.after_call(key, asked);
        // A TLS handshake or a PROXY header that ends after shutdown began: this session
        // missed the drain call the others got.
        if draining && self.conns.get(key).is_some_and(|c| c.state == State::Open) {
            self.call_service(key, Call::Drain);
        }
    }

    /// Tells the service the connection is over (once) and sends whatever it wrote last.
    pub(super) fn end_session(&mut self, key: usize, reason: CloseReason) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.close_reason.get_or_insert(reason);
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
        .with_board(self.board.as_ref());
        if guarded(service.name(), conn.id, || service.close(session, reason, &mut cx)).is_none() {
            self.stats.service_panics += 1;
            self.out.clear();
            self.outbox.drain();
            return;
        }
        // A TLS peer dropped as too slow had its owed ciphertext thrown away, cut wherever the
        // kernel stopped taking it, inside a record: nothing sent after that decrypts (the
        // peer would report a bad record MAC instead of the notice). It gets the FIN alone.
        let cut_tls = reason == CloseReason::TooSlow && conn.tls.is_some();
        if reason != CloseReason::Error && !cut_tls {
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

    /// A service call panicked: whatever it wrote is suspect and dropped, and the connection
    /// is closed (the service is still told, in a guarded call of its own).
    pub(super) fn after_panic(&mut self, key: usize) {
        self.stats.service_panics += 1;
        self.out.clear();
        self.outbox.drain();
        self.close_now(key, CloseReason::Error);
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
