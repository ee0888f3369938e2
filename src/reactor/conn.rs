//! One TCP connection: its socket, its lifecycle state, and its two byte buffers.
//!
//! ```text
//!            read → 0 (peer sent FIN)
//!   Open ───────────────────────────────▶ HalfClosed ──(output flushed)──▶ Closed
//!    │                                                                      ▲
//!    │ service asked to close, idle timeout                                 │
//!    │ (unless the service exempted it), input over its limit               │
//!    ▼                                                                      │
//!   Closing ──(output flushed; shutdown(Write))──▶ Lingering ──(EOF/timer)──┘
//! ```
//!
//! * **Open**: reading and writing.
//! * **HalfClosed**: the peer will send nothing more; we still owe it our replies.
//! * **Closing**: *we* decided to close; no more input is processed, the output is flushed.
//! * **Lingering**: we sent FIN and now read and discard whatever the peer still sends until it
//!   closes too (or a short timer ends). Closing a socket whose receive queue holds unread
//!   bytes makes Linux send RST instead of FIN, and an RST can destroy the very reply (say, an
//!   HTTP 400) that the peer has not read yet. nginx calls this "lingering close".
//! * **Closed**: the socket is gone; the slab slot is freed at the end of the reactor turn, so
//!   a later event in the same batch that still names this token finds a tombstone, not a
//!   stranger that reused the slot.
//!
//! Any state but Closed can also go straight to Closed: a socket error, a peer too slow for
//! what others send it, an idle peer that does not even read our goodbye, the end of a
//! shutdown's grace period.
//!
//! Buffers are lazy. Replies are written straight from the reactor's shared scratch buffer
//! (write-before-sleep); only a reply the kernel would not take in full is copied into
//! `output`. Likewise `input` holds only an incomplete request. Both are released (not just
//! cleared) when they empty, so an idle connection owns no heap memory beyond its session (and,
//! on a TLS listener, its rustls session).

use std::any::Any;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::service::{CloseReason, ConnId};

/// The lifecycle of a connection (see the module docs for the diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Reading and writing.
    Open,
    /// Peer finished sending; flushing our replies, then closing.
    HalfClosed,
    /// We are closing: flushing our replies, reading no more requests.
    Closing,
    /// FIN sent; draining and discarding the peer's bytes until it closes.
    Lingering,
    /// Socket closed; the slot is freed at the end of the turn.
    Closed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            State::Open => "open",
            State::HalfClosed => "half-closed",
            State::Closing => "closing",
            State::Lingering => "lingering",
            State::Closed => "closed",
        };
        f.write_str(s)
    }
}

/// What a read produced.
#[derive(Debug)]
pub enum ReadOutcome {
    /// `n` bytes were read into the buffer.
    Data(usize),
    /// The peer closed its sending side.
    Eof,
    /// Nothing to read right now.
    WouldBlock,
    /// The socket failed.
    Error(io::Error),
}

/// A connection and everything the reactor keeps for it.
pub struct Conn {
    pub(crate) socket: TcpStream,
    pub(crate) id: ConnId,
    pub(crate) peer: SocketAddr,
    /// Index of the service this connection belongs to (in `Reactor::services`).
    pub(crate) service: usize,
    /// The service's per-connection state; `None` once the service has been told of the close.
    pub(crate) session: Option<Box<dyn Any + Send>>,
    pub(crate) state: State,
    /// Unconsumed input: an incomplete request waiting for more bytes.
    pub(crate) input: Vec<u8>,
    /// Output the kernel has not taken yet; `output[sent..]` is still owed.
    output: Vec<u8>,
    sent: usize,
    /// Whether WRITABLE is part of the registered interest right now.
    writable_interest: bool,
    // Whether this connection is read, flag by flag: reading stops while the state is not
    // Open or Lingering (`reads`), while `read_paused` (we owe ≥ max_output; `flush` clears
    // it) and while `held` (the service left whole requests at the limit; the next offer
    // clears it). A FIN seen meanwhile is remembered: by its event in `fin_seen`, or, read
    // while held, in `eof_pending`. `queued`: it is in the ready queue already.
    /// Reading stopped because the output buffer is over its limit (backpressure).
    pub(crate) read_paused: bool,
    /// The service answered, left input unconsumed, and the output is at its limit: it may
    /// have stopped there with complete requests waiting (kv does, `Cx::output_room`).
    /// Reading waits until it has been offered them again: more bytes would only pile up
    /// behind them, and a FIN read now would cut them off. (For a service that just left an
    /// incomplete request, the next offer finds nothing to do and clears it.)
    pub(crate) held: bool,
    /// The peer ended its input (FIN or TLS close_notify) while `held`: act on it once the
    /// held requests are answered.
    pub(crate) eof_pending: bool,
    /// An event said the peer sent FIN (`EPOLLRDHUP`). Kept, not just passed along with that
    /// event: reading may stop before the FIN is read (the budget, backpressure, a hold) and
    /// resume in a later turn, whose short read must not be taken for "drained" either, or
    /// the FIN would wait unread, with its edge spent, until the idle timeout.
    pub(crate) fin_seen: bool,
    /// The idle timeout has already begun to close it (counted once in `conns_idle_closed`).
    pub(crate) idled: bool,
    /// The connection is in the reactor's ready queue (more input may be waiting).
    pub(crate) queued: bool,
    /// The last sign of life from the peer: bytes read from it, or owed output it finally
    /// took. What we or others send it does not count. The idle timeout measures from here.
    pub(crate) last_active: Instant,
    /// When bytes last came from the peer (raw: on TLS, ciphertext, whether or not it
    /// completed a record), for [`crate::service::Cx::last_read`].
    pub(crate) last_read: Instant,
    /// The deadline the service asked for, and the earliest one already in the timer heap.
    pub(crate) service_timer: Option<Instant>,
    pub(crate) service_timer_armed: Option<Instant>,
    /// The TLS session, on listeners that speak TLS (boxed: it is large, and plain
    /// connections should not pay for it).
    pub(crate) tls: Option<Box<rustls::ServerConnection>>,
    /// The listener expects a PROXY protocol header first; until it is read, input goes to
    /// `input` and the service has not been opened.
    pub(crate) awaiting_proxy: bool,
    /// Why the service was told the session ended (`Reactor::end_session`), for the log line
    /// of the close itself: a graceful close ends later, after FIN and lingering.
    pub(crate) close_reason: Option<CloseReason>,
    /// The service exempted this connection from the idle timeout (`Cx::exempt_from_idle`:
    /// a kv pub/sub subscriber).
    pub(crate) idle_exempt: bool,
    /// TCP keepalive was turned on (the first exemption does it).
    keepalive: bool,
}

/// TCP keepalive on a connection exempt from the idle timeout: Redis's `tcp-keepalive 300`
/// (first probe after 300 s of silence, then every 100 s, given up after 3), so that a peer
/// that vanished without a FIN or a reset (a NAT that forgot it, a laptop put to sleep) is
/// still found out and closed, by the kernel, instead of holding its slot for ever.
const EXEMPT_KEEPALIVE: Duration = Duration::from_secs(300);

impl Conn {
    /// Exempts the connection from the idle timeout, or ends the exemption
    /// (`Cx::exempt_from_idle`). An exempt connection gets TCP keepalive in exchange.
    pub(crate) fn set_idle_exempt(&mut self, exempt: bool) {
        self.idle_exempt = exempt;
        if exempt {
            self.enable_keepalive();
        }
    }

    /// Turns TCP keepalive on, once (see [`EXEMPT_KEEPALIVE`]): one `setsockopt` call the
    /// first time; it stays on after an exemption ends, which costs an idle peer nothing.
    fn enable_keepalive(&mut self) {
        if self.keepalive {
            return;
        }
        let probes = socket2::TcpKeepalive::new()
            .with_time(EXEMPT_KEEPALIVE)
            .with_interval(EXEMPT_KEEPALIVE / 3)
            .with_retries(3);
        match socket2::SockRef::from(&self.socket).set_tcp_keepalive(&probes) {
            Ok(()) => self.keepalive = true,
            Err(e) => log::debug!("{} {}: keepalive: {e}", self.id, self.peer),
        }
    }

    /// Wraps an accepted (and already registered) socket.
    pub fn new(socket: TcpStream, id: ConnId, peer: SocketAddr, service: usize, now: Instant) -> Self {
        Conn {
            socket,
            id,
            peer,
            service,
            session: None,
            state: State::Open,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
            writable_interest: false,
            read_paused: false,
            held: false,
            eof_pending: false,
            fin_seen: false,
            idled: false,
            queued: false,
            last_active: now,
            last_read: now,
            service_timer: None,
            service_timer_armed: None,
            tls: None,
            awaiting_proxy: false,
            close_reason: None,
            idle_exempt: false,
            keepalive: false,
        }
    }

    /// The mio token of this connection.
    pub fn token(&self) -> Token {
        Token(self.id.index())
    }

    /// Moves to `next`, logging the transition (the `RUST_LOG=debug` tour of a connection).
    pub fn set_state(&mut self, next: State) {
        if self.state != next {
            log::debug!("{} {}: {} -> {}", self.id, self.peer, self.state, next);
            self.state = next;
        }
    }

    /// Whether incoming bytes are still read (and, except when lingering, handed to the
    /// service).
    pub fn reads(&self) -> bool {
        matches!(self.state, State::Open | State::Lingering)
    }

    /// Bytes still owed to the peer.
    pub fn pending_output(&self) -> usize {
        self.output.len() - self.sent
    }

    /// One `read` into `buf`, retrying `Interrupted`.
    pub fn read(&mut self, buf: &mut [u8]) -> ReadOutcome {
        loop {
            match self.socket.read(buf) {
                Ok(0) => return ReadOutcome::Eof,
                Ok(n) => return ReadOutcome::Data(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return ReadOutcome::Error(e),
            }
        }
    }

    /// Sends `bytes` after whatever is already owed: written at once if nothing is waiting
    /// (write-before-sleep), otherwise, or for the part the kernel would not take, kept in the
    /// output buffer with WRITABLE interest registered. Returns how many bytes went to the
    /// kernel now.
    pub fn send(&mut self, bytes: &[u8], registry: &Registry) -> io::Result<usize> {
        if bytes.is_empty() {
            return Ok(0);
        }
        let written = if self.pending_output() == 0 { write_some(&mut self.socket, bytes)? } else { 0 };
        if written < bytes.len() {
            // A peer that keeps a little owed all the time never lets the buffer empty, so the
            // part already sent would pile up at the front: drop it once it is half.
            if self.sent > 0 && self.sent >= self.output.len() / 2 {
                self.output.drain(..self.sent);
                self.sent = 0;
            }
            self.output.extend_from_slice(&bytes[written..]);
            self.want_writable(true, registry)?;
        }
        Ok(written)
    }

    /// Writes as much of the owed output as the kernel takes; when everything is out, the
    /// buffer is released and WRITABLE interest dropped. (How much went: the drop in
    /// `pending_output`, which also counts what was written before an error.)
    pub fn flush(&mut self, registry: &Registry) -> io::Result<()> {
        while self.sent < self.output.len() {
            let n = write_some(&mut self.socket, &self.output[self.sent..])?;
            if n == 0 {
                break;
            }
            self.sent += n;
        }
        if self.sent == self.output.len() {
            // Release, not clear: an idle connection keeps no buffer.
            self.output = Vec::new();
            self.sent = 0;
            self.want_writable(false, registry)?;
        }
        Ok(())
    }

    /// Forgets the unconsumed input and releases its buffer; returns how many bytes it held.
    pub fn discard_input(&mut self) -> usize {
        std::mem::take(&mut self.input).len()
    }

    /// Forgets the owed output (the connection is being closed anyway).
    pub fn discard_output(&mut self) -> usize {
        let dropped = self.pending_output();
        self.output = Vec::new();
        self.sent = 0;
        dropped
    }

    /// Registers or drops WRITABLE interest. Only touches the kernel (`epoll_ctl`) when the
    /// interest actually changes: in ping-pong traffic every reply fits in the socket buffer,
    /// so the `epoll_ctl` never happens.
    fn want_writable(&mut self, on: bool, registry: &Registry) -> io::Result<()> {
        if self.writable_interest == on || self.state == State::Closed {
            return Ok(());
        }
        let interest = if on { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        let token = self.token();
        registry.reregister(&mut self.socket, token, interest)?;
        self.writable_interest = on;
        Ok(())
    }

    /// Sends FIN: we will write no more. Errors (the peer is already gone) are irrelevant here.
    pub fn shutdown_write(&mut self) {
        if let Err(e) = self.socket.shutdown(Shutdown::Write) {
            log::debug!("{} {}: shutdown(write): {e}", self.id, self.peer);
        }
    }
}

/// One `write`, retrying `Interrupted`; `WouldBlock` is reported as 0 bytes written.
fn write_some(socket: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match socket.write(bytes) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::Poll;
    use mio::net::TcpListener;
    use std::time::Duration;

    /// A peer that reads, but always a little behind, never lets the output buffer empty.
    /// What it has taken must not pile up at the buffer's front (a pub/sub subscriber on a
    /// slow link would otherwise grow it for as long as it stays connected).
    #[test]
    fn output_a_peer_keeps_a_little_behind_on_does_not_grow_the_buffer() {
        let poll = Poll::new().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (mut stream, remote) = loop {
            match listener.accept() {
                Ok(accepted) => break accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        poll.registry().register(&mut stream, Token(0), Interest::READABLE).unwrap();
        let mut conn = Conn::new(stream, ConnId::new(0, 0), remote, 0, Instant::now());
        let chunk = vec![7u8; 16 * 1024];
        while conn.pending_output() == 0 {
            conn.send(&chunk, poll.registry()).unwrap();
        }
        let mut buf = vec![0; 16 * 1024];
        let mut read = 0;
        for _ in 0..2_000 {
            read += io::Read::read(&mut peer, &mut buf).unwrap();
            conn.flush(poll.registry()).unwrap();
            conn.send(&chunk, poll.registry()).unwrap();
            assert!(
                conn.output.len() <= 2 * conn.pending_output() + chunk.len(),
                "{} bytes buffered for {} owed",
                conn.output.len(),
                conn.pending_output()
            );
        }
        assert!(read > 1_000 * 1024, "the peer did read ({read} bytes)");
    }
}
