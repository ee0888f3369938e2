//! Writing: a reply goes out the moment it exists (write-before-sleep), the rest waits in the
//! connection's output buffer with WRITABLE interest; bytes services addressed to other
//! connections are delivered in one write per recipient; slow recipients are dropped.

use mio::Registry;

use super::conn::{Conn, State};
use super::{Reactor, tls};
use crate::service::CloseReason;
use crate::stats::Stats;

impl Reactor {
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
            self.close_now(key, CloseReason::Error);
        }
    }

    /// Sends whatever the TLS session has queued, with no new plaintext.
    pub(super) fn send_out_empty(&mut self, key: usize) {
        self.out.clear();
        self.send_out(key);
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
                            self.close_now(key, CloseReason::TooSlow);
                        }
                    }
                    Err(e) => {
                        log::debug!("{} {}: write: {e}", conn.id, conn.peer);
                        self.close_now(key, CloseReason::Error);
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
                self.close_now(key, CloseReason::Error);
            }
        }
    }
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
    // Kept even when `send` failed after buffering (registering WRITABLE): `close_now` takes the
    // buffered bytes off this gauge again, so they must have been put on it.
    stats.output_buffered = stats.output_buffered + conn.pending_output() as u64 - before as u64;
    stats.bytes_out += sent? as u64;
    Ok(())
}
