//! The service interface: protocol state machines that never touch a socket.
//!
//! A service is *sans-I/O*: the reactor reads bytes from a socket and hands them to
//! [`Service::input`]; the service parses what it can, writes its replies into the context
//! ([`Cx::write`]), and says how many input bytes it used. The reactor keeps the unused tail
//! (an incomplete request) and offers it again, with more bytes, after the next read. The
//! service never blocks, never sleeps and never reads a clock: the reactor passes `now` in.
//!
//! ```text
//!   reactor (owns sockets)                     service (owns protocol state)
//!   ──────────────────────                     ─────────────────────────────
//!   accept (and TLS handshake, PROXY header) ▶ open(cx)            -> Session
//!   read   ── bytes ────────────────────────▶  input(session, bytes, cx) -> consumed
//!          ◀── cx.write(..) / cx.send_to(..) / cx.close() / cx.set_timer(..)
//!              / cx.exempt_from_idle(..)
//!   timer  ─────────────────────────────────▶  timer(session, cx)
//!   SIGTERM (graceful shutdown) ────────────▶  drain(session, cx)
//!   close  ─────────────────────────────────▶  close(session, reason, cx)
//!   every `tick` deadline ──────────────────▶  tick(now)           -> next deadline
//! ```
//!
//! Each listener is bound to one service value, shared by all its connections, so a service
//! can keep state across connections (the chat room, the key-value store). Per-connection
//! state lives in `Self::Session`, which the reactor stores beside the socket and hands back on
//! every call. Connections are named by [`ConnId`]; a service can address any other connection
//! it serves (one service may serve several listeners: every `--chat` address is one room) with
//! [`Cx::send_to`]. Those bytes share the recipient's output buffer, but a recipient cannot be
//! slowed down by backpressure, since it is not the sender: one that already owes more than
//! `max_output` is disconnected as too slow ([`CloseReason::TooSlow`]).
//!
//! Datagram (UDP) services have their own, smaller interface: [`DatagramService`].
//!
//! [`testing::Harness`] drives a service without any socket, which is how every service is
//! unit-tested.

pub mod chat;
pub mod echo;
pub mod http;
pub mod kv;

pub mod testing;

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use crate::stats::{Stats, StatsBoard};

/// Names one connection for as long as it lives.
///
/// `index` is the connection's slot in the reactor's slab (and so its `mio::Token`); `serial`
/// is unique for the reactor's lifetime, so an id kept after its connection closed can never
/// reach the connection that later reuses the slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: usize,
    serial: u64,
}

impl ConnId {
    /// Builds an id. The reactor and the test harness are the only callers.
    pub fn new(index: usize, serial: u64) -> Self {
        ConnId { index, serial }
    }

    /// The slab slot (and `mio::Token`) of the connection.
    pub fn index(self) -> usize {
        self.index
    }

    /// The connection's serial number, unique for the reactor's lifetime.
    pub fn serial(self) -> u64 {
        self.serial
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.serial)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.serial)
    }
}

/// Why a connection is closing; passed to [`Service::close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed its sending side (a read returned 0, or TLS close_notify). The service
    /// is told at once; replies still owed are flushed afterwards.
    PeerClosed,
    /// The service asked for it with [`Cx::close`].
    Service,
    /// A socket error (reset, broken pipe, …).
    Error,
    /// No sign of life from the peer for the idle timeout (see `Config::idle_timeout`), and
    /// the service had not exempted it ([`Cx::exempt_from_idle`]).
    Idle,
    /// Output for this peer passed the hard limit: it does not read fast enough. Anything the
    /// service writes in `close` for this reason is tried once, without blocking (a final
    /// notice such as "too slow, disconnected").
    TooSlow,
    /// The peer sent more than the input limit without the service consuming it.
    InputTooLarge,
    /// The server is stopping: the grace period ended, or the stop was immediate (a second
    /// signal, `Handle::stop`, a failed `poll`).
    Shutdown,
}

/// Bytes addressed to other connections, collected during one service call and delivered by
/// the reactor right after it.
#[derive(Debug, Default)]
pub struct Outbox {
    pub(crate) messages: Vec<(ConnId, Vec<u8>)>,
    /// The bytes of all queued messages (what `Cx::output_room` counts).
    bytes: usize,
}

impl Outbox {
    /// Takes every queued message, leaving the outbox empty (and its allocation in place).
    pub fn drain(&mut self) -> std::vec::Drain<'_, (ConnId, Vec<u8>)> {
        self.bytes = 0;
        self.messages.drain(..)
    }

    fn push(&mut self, to: ConnId, bytes: &[u8]) {
        self.bytes += bytes.len();
        self.messages.push((to, bytes.to_vec()));
    }

    /// The bytes of all queued messages.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True when no message is queued.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// What a service can see and do during one call: the context.
///
/// `out` is where replies for *this* connection go. The reactor lends a reused scratch buffer
/// here, so a reply that the kernel takes at once is never copied into a per-connection
/// buffer: idle connections own no buffers at all.
pub struct Cx<'a> {
    now: Instant,
    wall: SystemTime,
    id: ConnId,
    peer: SocketAddr,
    out: &'a mut Vec<u8>,
    outbox: &'a mut Outbox,
    stats: &'a Stats,
    board: Option<&'a (StatsBoard, usize)>,
    pending_output: usize,
    output_limit: usize,
    reads_paused: bool,
    last_read: Option<Instant>,
    draining: bool,
    close: bool,
    timer: Option<Instant>,
    idle_exempt: Option<bool>,
}

impl<'a> Cx<'a> {
    /// Builds a context. Called by the reactor and by [`testing::Harness`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        now: Instant,
        wall: SystemTime,
        id: ConnId,
        peer: SocketAddr,
        out: &'a mut Vec<u8>,
        outbox: &'a mut Outbox,
        stats: &'a Stats,
        pending_output: usize,
    ) -> Self {
        Cx {
            now,
            wall,
            id,
            peer,
            out,
            outbox,
            stats,
            board: None,
            pending_output,
            output_limit: usize::MAX,
            reads_paused: false,
            last_read: None,
            draining: false,
            close: false,
            timer: None,
            idle_exempt: None,
        }
    }

    /// The board where the process's reactors publish their counters, and this reactor's
    /// place on it, for [`Cx::stats_total`].
    pub fn with_board(mut self, board: Option<&'a (StatsBoard, usize)>) -> Self {
        self.board = board;
        self
    }

    /// Sets the output limit [`Cx::output_room`] measures against (the reactor's
    /// `max_output`; unlimited unless set).
    pub fn with_output_limit(mut self, limit: usize) -> Self {
        self.output_limit = limit;
        self
    }

    /// Says whether the reactor has stopped reading this peer, for [`Cx::reads_paused`].
    pub fn with_reads_paused(mut self, paused: bool) -> Self {
        self.reads_paused = paused;
        self
    }

    /// The reactor has stopped reading this peer for now (backpressure: it owes the peer too
    /// much, or the service stopped at [`Cx::output_room`]). Bytes the peer sent may be
    /// waiting unread on our side, so a slow request is not the peer's doing.
    pub fn reads_paused(&self) -> bool {
        self.reads_paused
    }

    /// When bytes last came from the peer, for [`Cx::last_read`].
    pub fn with_last_read(mut self, at: Instant) -> Self {
        self.last_read = Some(at);
        self
    }

    /// When bytes last came from the peer, if the caller knows (the reactor always does).
    /// Unlike the calls to `input`, this counts bytes that did not reach the service yet: on
    /// TLS, part of a record, which yields no plaintext until the record is whole. A timeout
    /// meant as "the peer went quiet" should ask this, or a peer sending steadily but slower
    /// than a record per period would look silent.
    pub fn last_read(&self) -> Option<Instant> {
        self.last_read
    }

    /// Marks the call as made during a graceful shutdown, for [`Cx::draining`].
    pub fn with_draining(mut self, draining: bool) -> Self {
        self.draining = draining;
        self
    }

    /// The server is shutting down gracefully: finish what is in progress, but invite nothing
    /// more (HTTP answers with `Connection: close`). See [`Service::drain`].
    pub fn draining(&self) -> bool {
        self.draining
    }

    /// The time of this reactor turn (read once per turn, never from inside a service).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Wall-clock time of this reactor turn, for protocol fields that need a date (HTTP's
    /// `Date` header). Read once per turn by the reactor, like `now`.
    pub fn wall(&self) -> SystemTime {
        self.wall
    }

    /// This connection.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// This reactor's live counters.
    pub fn stats(&self) -> &Stats {
        self.stats
    }

    /// The whole process's counters: this reactor's, live, plus the other reactors' as they
    /// published them (a fraction of a second old). With one reactor, the same as `stats`.
    pub fn stats_total(&self) -> Stats {
        // Publishing first, then reading every other reactor's latest copy, keeps totals from
        // going down between reports made by different reactors (see `Board::total`).
        match self.board {
            Some((board, index)) => board.total(*index, self.stats),
            None => self.stats.clone(),
        }
    }

    /// Bytes already waiting in this connection's output buffer because the peer reads slower
    /// than we write. A service whose replies can be much larger than its requests may hold
    /// back while this is high: leave the remaining requests unconsumed, and the reactor offers
    /// them again once the output has drained, even if no new byte arrives.
    pub fn pending_output(&self) -> usize {
        self.pending_output
    }

    /// How many more reply bytes fit under the connection's output limit, counting what is
    /// already owed and what this call wrote so far. A service whose replies can be much
    /// larger than its requests (a pipeline of GETs of big values) stops answering at 0 and
    /// leaves the remaining requests unconsumed; the reactor stops reading this peer and offers
    /// them again as soon as the output has gone out. Bytes queued for other connections
    /// ([`Cx::send_to`]) count too, so a broadcast pipeline yields the same way. Answering a
    /// request that started below the limit may overshoot it.
    pub fn output_room(&self) -> usize {
        // Bytes for other connections count too: a pipeline of PUBLISHes yields once the
        // fan-out it has made reaches the limit, and the reactor delivers it before going on.
        let owed = self.pending_output.saturating_add(self.out.len()).saturating_add(self.outbox.bytes);
        self.output_limit.saturating_sub(owed)
    }

    /// Appends `bytes` to this connection's reply.
    pub fn write(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// The reply buffer itself, for services that format in place (`write!`, `itoa`, …).
    pub fn out(&mut self) -> &mut Vec<u8> {
        self.out
    }

    /// Queues `bytes` for another connection of the same service. Bytes for a connection that
    /// has closed meanwhile are dropped.
    pub fn send_to(&mut self, to: ConnId, bytes: &[u8]) {
        if to == self.id {
            self.out.extend_from_slice(bytes);
        } else {
            self.outbox.push(to, bytes);
        }
    }

    /// Asks the reactor to close this connection once everything written so far is sent.
    /// No more input is delivered after this call.
    pub fn close(&mut self) {
        self.close = true;
    }

    /// True once [`Cx::close`] was called during this call.
    pub fn close_requested(&self) -> bool {
        self.close
    }

    /// Asks for one [`Service::timer`] call at `at` (or soon after). A connection has one
    /// service timer: each request replaces the previous one, earlier or later, from this
    /// call or an earlier one. Comparing `cx.now()` with your own deadline in `timer` is
    /// still a cheap safeguard.
    pub fn set_timer(&mut self, at: Instant) {
        self.timer = Some(at);
    }

    /// The timer requested during this call, if any.
    pub fn timer_requested(&self) -> Option<Instant> {
        self.timer
    }

    /// From now on, exempts this connection from the reactor's idle timeout (`true`), or
    /// makes it subject to it again (`false`): for a peer that may rightly say nothing for
    /// hours, as a Redis pub/sub subscriber does (Redis never times those out). The last
    /// word stays until changed; a connection starts subject to the timeout, and the
    /// exemption holds only while the connection is open (not while it closes). In exchange
    /// the reactor turns TCP keepalive on for the socket (and leaves it on), so that a peer
    /// whose machine vanished without a FIN is still found out. Once the exemption ends,
    /// silence counts from the peer's last sign of life, so the next idle check may close it.
    pub fn exempt_from_idle(&mut self, exempt: bool) {
        self.idle_exempt = Some(exempt);
    }

    /// What [`Cx::exempt_from_idle`] asked during this call, if it was called.
    pub fn idle_exemption_requested(&self) -> Option<bool> {
        self.idle_exempt
    }
}

/// A stream protocol: one value per listener, one `Session` per connection.
///
/// Call order for a connection: `open`, then any number of `input` and `timer`, with at most
/// one `drain` among them (a graceful shutdown began), then exactly one `close` (none if
/// `open` panicked: there is no session to close). `tick` is independent of connections.
pub trait Service: Send + 'static {
    /// Per-connection protocol state.
    type Session: Send + 'static;

    /// A short name for logs ("echo", "http", …).
    fn name(&self) -> &'static str;

    /// The most unconsumed input a connection may hold. When a service leaves more than this
    /// unconsumed, the reactor closes the connection ([`CloseReason::InputTooLarge`]). Services
    /// should enforce their own, tighter protocol limits and answer them with a protocol error;
    /// this is the reactor's backstop. Requests left unconsumed because the call stopped at
    /// the output limit ([`Cx::output_room`]) are not counted: reading waits while they do.
    fn max_input(&self) -> usize {
        64 * 1024
    }

    /// A new connection is ready: just accepted, or, behind TLS or a PROXY header, once the
    /// handshake or the header is done. Greetings written to `cx` are sent at once.
    fn open(&mut self, cx: &mut Cx<'_>) -> Self::Session;

    /// Bytes arrived. `input` starts with whatever the previous call left unconsumed. Returns
    /// how many bytes from the front of `input` were used; the rest is offered again later.
    fn input(&mut self, session: &mut Self::Session, input: &[u8], cx: &mut Cx<'_>) -> usize;

    /// A timer set with [`Cx::set_timer`] is due.
    fn timer(&mut self, _session: &mut Self::Session, _cx: &mut Cx<'_>) {}

    /// A graceful shutdown has begun (SIGTERM): no new connections come, and this one has
    /// until the grace period ends. A connection with nothing in progress may be closed now
    /// with [`Cx::close`] (HTTP closes an idle keep-alive connection), so that shutdown does
    /// not wait the whole grace period for peers that would never send again. The default
    /// keeps the connection open until its peer closes it or the grace period ends.
    fn drain(&mut self, _session: &mut Self::Session, _cx: &mut Cx<'_>) {}

    /// The connection is closing. What is written here is sent best effort (written once,
    /// never waited for) for every reason except [`CloseReason::Error`], and except
    /// [`CloseReason::TooSlow`] on TLS, where the owed ciphertext was cut inside a record;
    /// [`Cx::send_to`] reaches other connections as usual.
    fn close(&mut self, _session: Self::Session, _reason: CloseReason, _cx: &mut Cx<'_>) {}

    /// Service-wide periodic work (for example expiring keys). Called once when the reactor
    /// starts and then at each deadline it returns; `None` means "no periodic work".
    fn tick(&mut self, _now: Instant) -> Option<Instant> {
        None
    }

    /// Bytes sent to a connection refused because the server is at `--max-conns`, just before
    /// it is closed (for example `-ERR max number of clients reached\r\n`).
    fn refusal(&self) -> &[u8] {
        b"server busy: too many connections\n"
    }

    /// The first bytes on a `tls://` listener (`first`) failed as TLS. If they read as this
    /// protocol in plaintext, write into `out` a reply the peer can read without TLS and
    /// return true: it is sent in the clear, and the connection closed. The default, false,
    /// leaves the TLS alert alone, as for any other bad handshake. HTTP answers `400`, as
    /// nginx does, so `curl http://` to an HTTPS port explains itself instead of printing the
    /// alert's bytes. (A TLS record starts with byte 22, which no text does.)
    fn plaintext_on_tls(&mut self, _first: &[u8], _wall: SystemTime, _out: &mut Vec<u8>) -> bool {
        false
    }
}

/// A datagram protocol: one datagram in, at most one datagram out.
pub trait DatagramService: Send + 'static {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// A datagram arrived from `from`. Write the reply into `reply` (empty on entry) and return
    /// true to send it, false to send nothing.
    fn datagram(&mut self, from: SocketAddr, data: &[u8], now: Instant, reply: &mut Vec<u8>) -> bool;
}

/// A [`Service`] with its session type erased, so one reactor can hold many kinds of service.
///
/// The reactor stores each session as `Box<dyn Any + Send>` (a zero-sized session, like
/// echo's, costs no allocation) and this blanket implementation casts it back. The cast fails
/// only if the reactor mixed up sessions of different services, which is a bug in the reactor;
/// it is logged and the connection is closed rather than the process brought down.
pub trait AnyService: Send {
    /// See [`Service::name`].
    fn name(&self) -> &'static str;
    /// See [`Service::max_input`].
    fn max_input(&self) -> usize;
    /// See [`Service::open`].
    fn open(&mut self, cx: &mut Cx<'_>) -> Box<dyn Any + Send>;
    /// See [`Service::input`].
    fn input(&mut self, session: &mut (dyn Any + Send), input: &[u8], cx: &mut Cx<'_>) -> usize;
    /// See [`Service::timer`].
    fn timer(&mut self, session: &mut (dyn Any + Send), cx: &mut Cx<'_>);
    /// See [`Service::drain`].
    fn drain(&mut self, session: &mut (dyn Any + Send), cx: &mut Cx<'_>);
    /// See [`Service::close`].
    fn close(&mut self, session: Box<dyn Any + Send>, reason: CloseReason, cx: &mut Cx<'_>);
    /// See [`Service::tick`].
    fn tick(&mut self, now: Instant) -> Option<Instant>;
    /// See [`Service::refusal`].
    fn refusal(&self) -> &[u8];
    /// See [`Service::plaintext_on_tls`].
    fn plaintext_on_tls(&mut self, first: &[u8], wall: SystemTime, out: &mut Vec<u8>) -> bool;
}

impl<S: Service> AnyService for S {
    fn name(&self) -> &'static str {
        Service::name(self)
    }

    fn max_input(&self) -> usize {
        Service::max_input(self)
    }

    fn open(&mut self, cx: &mut Cx<'_>) -> Box<dyn Any + Send> {
        Box::new(Service::open(self, cx))
    }

    fn input(&mut self, session: &mut (dyn Any + Send), input: &[u8], cx: &mut Cx<'_>) -> usize {
        match session.downcast_mut::<S::Session>() {
            Some(session) => Service::input(self, session, input, cx),
            None => session_mixup(self.name(), cx, input.len()),
        }
    }

    fn timer(&mut self, session: &mut (dyn Any + Send), cx: &mut Cx<'_>) {
        match session.downcast_mut::<S::Session>() {
            Some(session) => Service::timer(self, session, cx),
            None => {
                session_mixup(self.name(), cx, 0);
            }
        }
    }

    fn drain(&mut self, session: &mut (dyn Any + Send), cx: &mut Cx<'_>) {
        match session.downcast_mut::<S::Session>() {
            Some(session) => Service::drain(self, session, cx),
            None => {
                session_mixup(self.name(), cx, 0);
            }
        }
    }

    fn close(&mut self, session: Box<dyn Any + Send>, reason: CloseReason, cx: &mut Cx<'_>) {
        match session.downcast::<S::Session>() {
            Ok(session) => Service::close(self, *session, reason, cx),
            Err(_) => log::error!("{}: session of another service on close", self.name()),
        }
    }

    fn tick(&mut self, now: Instant) -> Option<Instant> {
        Service::tick(self, now)
    }

    fn refusal(&self) -> &[u8] {
        Service::refusal(self)
    }

    fn plaintext_on_tls(&mut self, first: &[u8], wall: SystemTime, out: &mut Vec<u8>) -> bool {
        Service::plaintext_on_tls(self, first, wall, out)
    }
}

fn session_mixup(name: &str, cx: &mut Cx<'_>, consumed: usize) -> usize {
    log::error!("{name}: {} carries a session of another service; closing it", cx.id());
    cx.close();
    consumed
}
