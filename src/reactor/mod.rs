//! The event loop: the only code in the crate that accepts, reads, writes or polls.
//!
//! One turn of [`Reactor::run`]:
//!
//! ```text
//!   ┌─▶ poll(timeout)      sleep until a socket is ready or the nearest timer is due
//!   │     (timeout = 0 while the ready queue holds work left over from the last turn)
//!   │   dispatch events    listener → accept · connection → flush, then read → service
//!   │                      UDP socket → recv → service → send · signal/waker → shutdown
//!   │   ready queue        connections whose read budget ran out, listeners whose accept
//!   │                      budget ran out: served once more, fairly, before sleeping again
//!   │   timers             idle checks, service timers, lingering closes, ticks, --stats
//!   │   reap               free the slab slots of connections closed during this turn
//!   └── until shut down and every connection has finished
//! ```
//!
//! **Edge-triggered readiness.** mio registers sockets edge-triggered: `epoll` reports a socket
//! once when it *becomes* readable, not again while data remains. So a read handler must
//! drain the socket — read until `WouldBlock` — or it never hears of that data again. Two
//! refinements: a short read (fewer bytes than asked) on a Linux TCP socket means the receive
//! queue is empty, so we skip the extra `read` that would only return `WouldBlock` (unless
//! the peer also sent FIN, which only a further read reports); and a per-event byte budget
//! stops one fast peer from holding the loop: when it runs out, the connection goes on the
//! ready queue and is read again after everyone else had their turn.
//!
//! **Write-before-sleep.** A reply is written the moment the service produces it. Only when
//! the kernel takes less than all of it does the rest go to the connection's output buffer
//! and WRITABLE interest get registered; it is dropped again once the buffer empties.
//!
//! **Backpressure.** When a peer owes more than `max_output` bytes (it sends faster than it
//! reads its replies) the reactor stops reading from it; TCP flow control then slows the
//! peer down. Reading resumes when its output has drained.
//!
//! Every piece is in a file of its own: [`token`] (what a token means), [`conn`] (a
//! connection's state machine and buffers), [`listener`] (bind and accept), [`datagram`]
//! (UDP), [`timer`] (deadlines), [`shutdown`] (signals and the [`Handle`]).

pub mod config;
pub mod conn;
pub mod datagram;
pub mod listener;
pub mod shutdown;
pub mod timer;
pub mod tls;
pub mod token;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Waker};
use rustls::ServerConfig;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

pub use config::Config;
pub use conn::State;
pub use shutdown::Handle;

use crate::error::Error;
use crate::service::{AnyService, CloseReason, ConnId, Cx, DatagramService, Outbox, Service};
use crate::stats::{Stats, StatsBoard};
use conn::{Conn, ReadOutcome};
use datagram::{Datagram, Sent};
use listener::Accepted;
use timer::{IdleCheck, TimerKind, Timers};
use token::Target;

/// Size of the shared read buffer: one `read` takes at most this much. 64 KiB also holds the
/// largest possible UDP datagram, so none is ever truncated.
const READ_CHUNK: usize = 64 * 1024;

/// How often reactors sharing a [`StatsBoard`] exchange their counters.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// Names a service added with [`Reactor::add_service`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceId(usize);

/// How a listener is bound and what its connections speak before the service.
#[derive(Clone, Default)]
pub struct ListenOptions {
    /// Connections speak TLS with this configuration.
    pub tls: Option<Arc<ServerConfig>>,
    /// Connections start with a PROXY protocol header (v1 or v2) naming the real client.
    pub proxy_protocol: bool,
    /// Bind with `SO_REUSEPORT`, so other reactors can bind the same address.
    pub reuse_port: bool,
}

/// A TCP listener and the service its connections get.
struct Listener {
    socket: TcpListener,
    service: usize,
    /// Connections on this listener speak TLS with this configuration.
    tls: Option<Arc<ServerConfig>>,
    /// Connections on this listener start with a PROXY protocol header.
    proxy: bool,
    /// Accepting is paused after running out of file descriptors.
    paused: bool,
}

/// Work left over from a turn, served before the next sleep.
#[derive(Debug, Clone, Copy)]
enum Ready {
    Conn(ConnId),
    Listener(usize),
    Datagram(usize),
}

/// Where the reactor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Listeners are closed; accepted connections may finish until the deadline.
    Draining,
    Stopped,
}

/// What a service is being called for (see `Reactor::call_service`; opening a session is
/// `Reactor::open_session`).
enum Call {
    /// `n` new bytes are at the front of the read buffer.
    Input(usize),
    /// `n` new bytes are at the front of the plaintext buffer (decrypted TLS records).
    Plain(usize),
    Timer,
}

/// A single-threaded readiness loop serving any number of TCP listeners and UDP sockets.
pub struct Reactor {
    poll: Poll,
    conns: Slab<Conn>,
    listeners: Vec<Option<Listener>>,
    datagrams: Vec<Option<Datagram>>,
    services: Vec<Box<dyn AnyService>>,
    timers: Timers,
    ready: VecDeque<Ready>,
    /// Slots of connections closed this turn, freed at its end.
    reap: Vec<usize>,
    /// Shared scratch buffers: every read lands in `rbuf`, every reply is built in `out`.
    rbuf: Vec<u8>,
    out: Vec<u8>,
    outbox: Outbox,
    /// TLS scratch buffers: decrypted input, and encrypted output on its way to `Conn::send`.
    plain: Vec<u8>,
    cipher: Vec<u8>,
    stats: Stats,
    config: Config,
    now: Instant,
    wall: SystemTime,
    next_serial: u64,
    phase: Phase,
    /// With several reactors: where this one publishes its counters (and its index there),
    /// and the sum of the others' counters as last published.
    board: Option<(StatsBoard, usize)>,
    others: Option<Stats>,
    signals: Option<Signals>,
    waker: Arc<Waker>,
    request: Arc<AtomicU8>,
}

impl Reactor {
    /// A reactor with no sockets yet.
    pub fn new(config: Config) -> Result<Self, Error> {
        let poll = Poll::new().map_err(|e| Error::Setup("the poller (epoll)", e))?;
        let waker = Waker::new(poll.registry(), token::WAKER).map_err(|e| Error::Setup("the waker", e))?;
        let signals = if config.handle_signals {
            let mut signals =
                Signals::new([SIGINT, SIGTERM]).map_err(|e| Error::Setup("signal handlers", e))?;
            poll.registry()
                .register(&mut signals, token::SIGNALS, Interest::READABLE)
                .map_err(Error::Register)?;
            Some(signals)
        } else {
            None
        };
        let now = Instant::now();
        Ok(Reactor {
            poll,
            conns: Slab::new(),
            listeners: Vec::new(),
            datagrams: Vec::new(),
            services: Vec::new(),
            timers: Timers::default(),
            ready: VecDeque::new(),
            reap: Vec::new(),
            rbuf: vec![0; READ_CHUNK],
            out: Vec::new(),
            outbox: Outbox::default(),
            plain: vec![0; READ_CHUNK],
            cipher: Vec::new(),
            stats: Stats::new(now),
            config,
            now,
            wall: SystemTime::now(),
            next_serial: 0,
            phase: Phase::Running,
            board: None,
            others: None,
            signals,
            waker: Arc::new(waker),
            request: Arc::new(AtomicU8::new(shutdown::NONE)),
        })
    }

    /// Adds a service; its connections arrive through the listeners given its id.
    pub fn add_service(&mut self, service: impl Service) -> ServiceId {
        self.services.push(Box::new(service));
        ServiceId(self.services.len() - 1)
    }

    /// Binds a TCP listener whose connections `service` serves. Returns the bound address
    /// (with the real port when `addr` asked for port 0).
    pub fn listen(&mut self, addr: SocketAddr, service: ServiceId) -> Result<SocketAddr, Error> {
        self.listen_with(addr, service, ListenOptions::default())
    }

    /// Like [`Reactor::listen`], but every connection speaks TLS with `config` first.
    pub fn listen_tls(
        &mut self,
        addr: SocketAddr,
        service: ServiceId,
        config: Arc<ServerConfig>,
    ) -> Result<SocketAddr, Error> {
        self.listen_with(addr, service, ListenOptions { tls: Some(config), ..ListenOptions::default() })
    }

    /// Binds a TCP listener with `options` (TLS, PROXY protocol, `SO_REUSEPORT`).
    pub fn listen_with(
        &mut self,
        addr: SocketAddr,
        service: ServiceId,
        options: ListenOptions,
    ) -> Result<SocketAddr, Error> {
        let mut socket = listener::bind_tcp(addr, options.reuse_port).map_err(|e| Error::Bind(addr, e))?;
        let local = socket.local_addr().map_err(Error::Register)?;
        let i = self.listeners.len();
        self.poll
            .registry()
            .register(&mut socket, token::listener(i), Interest::READABLE)
            .map_err(Error::Register)?;
        let ListenOptions { tls, proxy_protocol: proxy, .. } = options;
        self.listeners.push(Some(Listener { socket, service: service.0, tls, proxy, paused: false }));
        Ok(local)
    }

    /// Shorthand: add `service` and one listener for it.
    pub fn serve(&mut self, addr: SocketAddr, service: impl Service) -> Result<SocketAddr, Error> {
        let id = self.add_service(service);
        self.listen(addr, id)
    }

    /// Binds a UDP socket served by `service`. Returns the bound address.
    pub fn serve_datagrams(
        &mut self,
        addr: SocketAddr,
        service: impl DatagramService,
    ) -> Result<SocketAddr, Error> {
        self.serve_datagrams_with(addr, service, false)
    }

    /// Like [`Reactor::serve_datagrams`], optionally with `SO_REUSEPORT`.
    pub fn serve_datagrams_with(
        &mut self,
        addr: SocketAddr,
        service: impl DatagramService,
        reuse_port: bool,
    ) -> Result<SocketAddr, Error> {
        let mut socket = listener::bind_udp(addr, reuse_port).map_err(|e| Error::Bind(addr, e))?;
        let local = socket.local_addr().map_err(Error::Register)?;
        let token = token::datagram(self.datagrams.len());
        self.poll.registry().register(&mut socket, token, Interest::READABLE).map_err(Error::Register)?;
        let queue = self.config.datagram_queue;
        self.datagrams.push(Some(Datagram::new(socket, token, Box::new(service), queue)));
        Ok(local)
    }

    /// Joins a [`StatsBoard`] as reactor `index`: counters are exchanged a few times a second,
    /// so `/stats`, `/metrics`, `INFO` and `--stats` report the whole process.
    pub fn share_stats(&mut self, board: StatsBoard, index: usize) {
        self.board = Some((board, index));
    }

    /// A handle that stops this reactor from another thread.
    pub fn handle(&self) -> Handle {
        Handle { waker: Arc::clone(&self.waker), request: Arc::clone(&self.request) }
    }

    /// The counters so far (for embedding; the running loop owns them).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Runs the loop until shut down (signal or [`Handle`]) and every connection has finished
    /// or the grace period has ended. Returns the final counters.
    pub fn run(mut self) -> Result<Stats, Error> {
        let mut events = Events::with_capacity(1024);
        self.start();
        while !self.finished() {
            let timeout =
                if self.ready.is_empty() { self.timers.poll_timeout(self.now) } else { Some(Duration::ZERO) };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Poll(e));
            }
            // One clock reading per turn: every service call in this turn sees the same `now`.
            self.now = Instant::now();
            self.wall = SystemTime::now();
            for event in events.iter() {
                match token::target(event.token()) {
                    Target::Conn(key) => {
                        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                        self.conn_event(key, readable, event.is_writable(), event.is_read_closed());
                    }
                    Target::Listener(i) => self.accept(i),
                    Target::Datagram(i) => {
                        if event.is_writable() {
                            self.datagram_flush(i);
                        }
                        if event.is_readable() {
                            self.datagram_read(i);
                        }
                    }
                    Target::Signals => self.on_signal(),
                    Target::Waker => self.on_wake(),
                }
            }
            self.serve_ready_queue();
            self.fire_timers();
            for key in self.reap.drain(..) {
                // Dropping the connection closes its socket.
                self.conns.try_remove(key);
            }
            self.compact_timers();
        }
        self.close_all();
        match &self.board {
            Some((_, index)) => log::info!("reactor {index} stopped: {}", self.stats.summary(self.now)),
            None => log::info!("reactor stopped: {}", self.stats.summary(self.now)),
        }
        Ok(self.stats)
    }

    fn start(&mut self) {
        self.now = Instant::now();
        for i in 0..self.services.len() {
            self.tick(i);
        }
        if let Some(every) = self.config.stats_interval {
            self.timers.add(self.now + every, TimerKind::Stats);
        }
        if self.board.is_some() {
            self.timers.add(self.now, TimerKind::Publish);
        }
    }

    fn finished(&self) -> bool {
        match self.phase {
            Phase::Running => false,
            Phase::Draining => self.conns.is_empty(),
            Phase::Stopped => true,
        }
    }

    // ─── connections ──────────────────────────────────────────────────────────────────────

    /// A readiness event for connection `key`: flush first (that may lift backpressure), then
    /// read, then see whether the connection can now finish closing.
    fn conn_event(&mut self, key: usize, readable: bool, writable: bool, fin: bool) {
        match self.conns.get(key) {
            Some(conn) if conn.state != State::Closed => {}
            // A tombstone, or a slot already freed: the event is stale.
            _ => return,
        }
        if writable {
            self.flush(key);
        }
        if readable {
            self.read(key, fin);
        }
        self.settle(key);
    }

    /// Reads until the socket is drained, the budget is spent, or backpressure stops us.
    /// `fin`: the event said the peer closed its side, so a short read is not the end.
    fn read(&mut self, key: usize, fin: bool) {
        let mut budget = self.config.read_budget;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if !conn.reads() {
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
    fn input(&mut self, key: usize, n: usize) {
        if self.conns.get(key).is_some_and(|c| c.tls.is_some()) {
            self.tls_input(key, n);
        } else {
            self.call_service(key, Call::Input(n));
        }
    }

    /// `n` bytes arrived before the PROXY protocol header was complete: collect them until it
    /// is, then take the client's address from it, open the service, and pass on what came
    /// after the header (a TLS ClientHello, a request) as if it had just been read.
    fn proxy_input(&mut self, key: usize, n: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        conn.input.extend_from_slice(&self.rbuf[..n]);
        self.stats.input_buffered += n as u64;
        match crate::proxy::parse(&conn.input) {
            Ok(crate::proxy::Parsed::Incomplete) => {}
            Ok(crate::proxy::Parsed::Done { header_len, source, .. }) => {
                self.stats.input_buffered -= conn.input.len() as u64;
                let rest = conn.input.split_off(header_len);
                conn.input = Vec::new();
                conn.awaiting_proxy = false;
                if let Some(client) = source {
                    log::info!("Connection from {client} (via {})", conn.peer);
                    log::debug!("{} {}: PROXY header: the client is {client}", conn.id, conn.peer);
                    conn.peer = client;
                } else {
                    log::debug!(
                        "{} {}: PROXY header without addresses (a health check?)",
                        conn.id,
                        conn.peer
                    );
                }
                self.open_session(key);
                for chunk in rest.chunks(READ_CHUNK) {
                    if !self.conns.get(key).is_some_and(|c| c.state == State::Open) {
                        break;
                    }
                    self.rbuf[..chunk.len()].copy_from_slice(chunk);
                    self.input(key, chunk.len());
                }
            }
            Err(e) => {
                log::info!(
                    "{} {}: claims PROXY protocol but sent garbage ({e}); closing",
                    conn.id,
                    conn.peer
                );
                self.close(key, CloseReason::Error);
            }
        }
    }

    /// `n` bytes of ciphertext are in the read buffer: feed them to the TLS session, send
    /// what the handshake wants sent, and hand the plaintext to the service.
    fn tls_input(&mut self, key: usize, n: usize) {
        let mut offset = 0;
        while offset < n {
            let Some(tls) = self.conns.get_mut(key).and_then(|c| c.tls.as_deref_mut()) else {
                return;
            };
            let mut input = &self.rbuf[offset..n];
            let result = tls::absorb(tls, &mut input);
            offset = n - input.len();
            if let Err(e) = result {
                if let Some(conn) = self.conns.get(key) {
                    log::debug!("{} {}: TLS: {e}", conn.id, conn.peer);
                }
                self.send_out_empty(key); // the alert rustls queued, best effort
                return self.close(key, CloseReason::Error);
            }
            // Handshake messages (and, once the handshake is done, any greeting the service
            // wrote at open, which rustls held until then).
            self.send_out_empty(key);
            loop {
                let Some(conn) = self.conns.get_mut(key) else { return };
                if conn.state != State::Open {
                    return;
                }
                let Some(tls) = conn.tls.as_deref_mut() else { return };
                match tls::plaintext(tls, &mut self.plain) {
                    Ok(tls::Plain::Data(k)) => self.call_service(key, Call::Plain(k)),
                    Ok(tls::Plain::Closed) => return self.on_eof(key),
                    Ok(tls::Plain::Empty) => break,
                    Err(e) => {
                        log::debug!("{} {}: TLS: {e}", conn.id, conn.peer);
                        return self.close(key, CloseReason::Error);
                    }
                }
            }
        }
    }

    /// Sends whatever the TLS session has queued, with no new plaintext.
    fn send_out_empty(&mut self, key: usize) {
        self.out.clear();
        self.send_out(key);
    }

    /// The peer sent FIN.
    fn on_eof(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match conn.state {
            State::Open => {
                // A request cut off by the FIN can never complete.
                self.stats.input_buffered -= conn.input.len() as u64;
                conn.input = Vec::new();
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
    fn call_service(&mut self, key: usize, call: Call) {
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
                .with_other_reactors(self.others.as_ref());
        let buffered_before = conn.input.len();
        let (rbuf, input) = match call {
            Call::Plain(_) => (&self.plain, &mut conn.input),
            _ => (&self.rbuf, &mut conn.input),
        };
        let outcome = guarded(service.name(), id, || match call {
            Call::Timer => service.timer(session, &mut cx),
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
        let too_large = conn.input.len() > service.max_input();
        self.stats.input_buffered =
            self.stats.input_buffered + conn.input.len() as u64 - buffered_before as u64;
        let answered = !self.out.is_empty();
        self.after_call(key, close, timer);
        // A call that answered and still left input may have stopped at the output limit
        // (`Cx::output_room`). If its answer already went out, nothing else would wake this
        // connection (the peer may be waiting for us), so offer the rest again next turn. If
        // the answer is still owed, `flush` does this once it has gone.
        if let Some(conn) = self.conns.get(key)
            && answered
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
            self.close(key, CloseReason::InputTooLarge);
        }
    }

    /// A service call panicked: whatever it wrote is suspect and dropped, and the connection
    /// is closed (the service is still told, in a guarded call of its own).
    fn after_panic(&mut self, key: usize) {
        self.stats.service_panics += 1;
        self.out.clear();
        self.outbox.drain();
        self.close(key, CloseReason::Error);
    }

    /// Opens the service session of a new connection (its greeting is written at once).
    fn open_session(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let service = &mut self.services[conn.service];
        self.out.clear();
        let mut cx =
            Cx::new(self.now, self.wall, conn.id, conn.peer, &mut self.out, &mut self.outbox, &self.stats, 0)
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
    }

    /// Carries out the results of a service call (`self.out` holds the reply).
    fn after_call(&mut self, key: usize, close: bool, timer: Option<Instant>) {
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
    fn send_out(&mut self, key: usize) {
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

    /// Delivers bytes services addressed to other connections. A recipient that already owes
    /// more than `max_output` cannot be slowed down by backpressure (it is not the sender), so
    /// it is disconnected as too slow; nobody else waits for it.
    fn deliver_outbox(&mut self) {
        let mut batch = Vec::new();
        while !self.outbox.is_empty() {
            batch.extend(self.outbox.drain());
            for (to, bytes) in batch.drain(..) {
                let key = to.index();
                let Some(conn) = self.conns.get_mut(key) else {
                    continue;
                };
                if conn.id != to || !matches!(conn.state, State::Open | State::HalfClosed | State::Closing) {
                    continue; // that connection is gone or going: the bytes are dropped
                }
                let registry = self.poll.registry();
                match transmit(conn, &bytes, &mut self.cipher, registry, &mut self.stats) {
                    Ok(()) => {
                        if conn.pending_output() > self.config.max_output {
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
    }

    /// Writes owed output. When it is all out, reading resumes if backpressure had paused it.
    fn flush(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match conn.flush(self.poll.registry()) {
            Ok(written) => {
                self.stats.bytes_out += written as u64;
                self.stats.output_buffered -= written as u64;
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
    fn settle(&mut self, key: usize) {
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
                self.read(key, false);
            }
            _ => {}
        }
    }

    /// Starts a graceful close: the service is told, no more input is processed, the output
    /// is flushed, then FIN and lingering (see [`State`]).
    fn begin_close(&mut self, key: usize, reason: CloseReason) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.state != State::Open {
            return;
        }
        self.stats.input_buffered -= conn.input.len() as u64;
        conn.input = Vec::new();
        conn.set_state(State::Closing);
        self.end_session(key, reason);
    }

    /// Tells the service the connection is over (once) and sends whatever it wrote last.
    fn end_session(&mut self, key: usize, reason: CloseReason) {
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
        .with_other_reactors(self.others.as_ref());
        if guarded(service.name(), conn.id, || service.close(session, reason, &mut cx)).is_none() {
            self.stats.service_panics += 1;
            self.out.clear();
            self.outbox.drain();
            return;
        }
        if reason != CloseReason::Error {
            if let Some(tls) = self.conns.get_mut(key).and_then(|c| c.tls.as_deref_mut()) {
                // Queued behind the service's last words; `send_out` encrypts both.
                tls.send_close_notify();
            }
            self.send_out(key);
        }
        if !self.outbox.is_empty() {
            self.deliver_outbox();
        }
    }

    /// Closes connection `key` now: the service is told (if it was not yet), the socket is
    /// deregistered, and the slot becomes a tombstone until the end of the turn.
    fn close(&mut self, key: usize, reason: CloseReason) {
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
        self.stats.input_buffered -= conn.input.len() as u64;
        conn.input = Vec::new();
        if let Err(e) = self.poll.registry().deregister(&mut conn.socket) {
            log::debug!("{} {}: deregister: {e}", conn.id, conn.peer);
        }
        log::debug!("{} {}: closed ({reason:?})", conn.id, conn.peer);
        conn.set_state(State::Closed);
        self.stats.conns_open -= 1;
        self.reap.push(key);
    }

    fn enqueue(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key)
            && !conn.queued
        {
            conn.queued = true;
            self.ready.push_back(Ready::Conn(conn.id));
        }
    }

    /// The live connection `id`, if it has not closed meanwhile (the slot may hold another).
    fn live(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(id.index()).filter(|c| c.id == id && c.state != State::Closed)
    }

    // ─── accepting ────────────────────────────────────────────────────────────────────────

    /// Accepts up to `accept_budget` connections from listener `i`.
    fn accept(&mut self, i: usize) {
        for _ in 0..self.config.accept_budget {
            let Some(Some(listener)) = self.listeners.get_mut(i) else {
                return;
            };
            if listener.paused {
                return;
            }
            match listener::accept_one(&listener.socket) {
                Accepted::Conn(stream, peer) => {
                    let (service, tls, proxy) = (listener.service, listener.tls.clone(), listener.proxy);
                    self.open_conn(service, tls, proxy, stream, peer);
                }
                Accepted::Drained => return,
                Accepted::Skip(e) => log::debug!("accept: {e}"),
                Accepted::Exhausted(e) | Accepted::Failed(e) => {
                    log::warn!("accept: {e}; pausing accepts for {:?}", self.config.accept_pause);
                    listener.paused = true;
                    self.stats.accept_pauses += 1;
                    self.timers.add(self.now + self.config.accept_pause, TimerKind::AcceptResume(i));
                    return;
                }
            }
        }
        // Budget spent with connections possibly still queued: come back after the others.
        self.ready.push_back(Ready::Listener(i));
    }

    fn open_conn(
        &mut self,
        service: usize,
        tls: Option<Arc<ServerConfig>>,
        proxy: bool,
        mut stream: TcpStream,
        peer: SocketAddr,
    ) {
        self.stats.conns_total += 1;
        if self.stats.conns_open >= self.config.max_conns as u64 {
            self.stats.conns_refused += 1;
            log::debug!("refusing {peer}: {} connections open", self.stats.conns_open);
            // Best effort: a fresh socket's send buffer is empty, so this short write lands.
            // (A TLS peer could not read a plaintext refusal: it just sees the close.)
            if tls.is_none() {
                let _ = std::io::Write::write(&mut stream, self.services[service].refusal());
            }
            return;
        }
        let session = match tls.as_ref().map(tls::session).transpose() {
            Ok(session) => session,
            Err(e) => {
                log::warn!("{peer}: TLS session: {e}");
                return;
            }
        };
        // Replies are complete messages: send them now, do not wait to coalesce (Nagle).
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("{peer}: TCP_NODELAY: {e}");
        }
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let id = ConnId::new(key, self.next_serial);
        self.next_serial += 1;
        if let Err(e) = self.poll.registry().register(&mut stream, mio::Token(key), Interest::READABLE) {
            log::warn!("{peer}: register: {e}");
            return;
        }
        log::info!("Connection from {peer}");
        log::debug!("{id} {peer}: accepted ({} service)", self.services[service].name());
        let mut conn = Conn::new(stream, id, peer, service, self.now);
        if session.is_some() || proxy {
            // The PROXY header and the TLS handshake share one deadline.
            self.timers.add(self.now + self.config.handshake_timeout, TimerKind::Handshake(id));
        }
        conn.tls = session;
        conn.awaiting_proxy = proxy;
        entry.insert(conn);
        self.stats.conns_open += 1;
        if let Some(idle) = self.config.idle_timeout {
            self.timers.add(self.now + idle, TimerKind::Idle(id));
        }
        if !proxy {
            // Behind a PROXY header the service opens once the header names the client.
            self.open_session(key);
        }
    }

    // ─── datagrams ────────────────────────────────────────────────────────────────────────

    fn datagram_read(&mut self, i: usize) {
        let registry = self.poll.registry();
        let Some(Some(dgram)) = self.datagrams.get_mut(i) else {
            return;
        };
        for _ in 0..self.config.datagram_budget {
            match dgram.recv(&mut self.rbuf) {
                Ok(Some((n, from))) => {
                    self.stats.datagrams_in += 1;
                    self.out.clear();
                    let (service, rbuf, out, now) = (&mut dgram.service, &self.rbuf, &mut self.out, self.now);
                    let name = service.name();
                    let reply = guarded_datagram(name, from, || service.datagram(from, &rbuf[..n], now, out));
                    if reply.is_none() {
                        self.stats.service_panics += 1;
                    }
                    if reply == Some(true) {
                        match dgram.send(from, &self.out, registry) {
                            Sent::Now => self.stats.datagrams_out += 1,
                            Sent::Queued => {}
                            Sent::Dropped => self.stats.datagrams_dropped += 1,
                        }
                    }
                }
                Ok(None) => return,
                // For example ICMP "port unreachable" from an earlier reply: one peer's
                // problem, reported on a shared socket. Keep serving the others.
                Err(e) => log::debug!("{}: recv: {e}", dgram.service.name()),
            }
        }
        self.ready.push_back(Ready::Datagram(i));
    }

    fn datagram_flush(&mut self, i: usize) {
        let Some(Some(dgram)) = self.datagrams.get_mut(i) else {
            return;
        };
        let (sent, dropped) = dgram.flush(self.poll.registry());
        self.stats.datagrams_out += sent;
        self.stats.datagrams_dropped += dropped;
    }

    // ─── the ready queue and timers ───────────────────────────────────────────────────────

    /// Serves the work queued during the previous turn once (work queued now waits for the
    /// next turn, so the loop always gets back to `poll`).
    fn serve_ready_queue(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(item) = self.ready.pop_front() else {
                break;
            };
            match item {
                Ready::Conn(id) => {
                    let Some(conn) = self.live(id) else { continue };
                    conn.queued = false;
                    // A service may have left complete requests unconsumed while this peer
                    // owed a lot (holding back on `cx.pending_output()`); now that the output
                    // drained, offer them again even if no new byte arrives.
                    if !conn.input.is_empty() && conn.state == State::Open && !conn.read_paused {
                        self.call_service(id.index(), Call::Input(0));
                    }
                    self.read(id.index(), false);
                    self.settle(id.index());
                }
                Ready::Listener(i) => self.accept(i),
                Ready::Datagram(i) => self.datagram_read(i),
            }
        }
    }

    fn fire_timers(&mut self) {
        while let Some((at, kind)) = self.timers.pop_due(self.now) {
            match kind {
                TimerKind::Idle(id) => self.on_idle_timer(id),
                TimerKind::Service(id) => self.on_service_timer(id, at),
                TimerKind::Handshake(id) => {
                    if let Some(conn) = self.live(id)
                        && (conn.awaiting_proxy || conn.tls.as_ref().is_some_and(|tls| tls.is_handshaking()))
                    {
                        log::debug!(
                            "{} {}: PROXY header or TLS handshake not done in time",
                            conn.id,
                            conn.peer
                        );
                        self.close(id.index(), CloseReason::Error);
                    }
                }
                TimerKind::Linger(id) => {
                    if self.live(id).is_some_and(|c| c.state == State::Lingering) {
                        self.close(id.index(), CloseReason::Service);
                    }
                }
                TimerKind::Tick(i) => self.tick(i),
                TimerKind::AcceptResume(i) => {
                    if let Some(Some(listener)) = self.listeners.get_mut(i) {
                        listener.paused = false;
                        self.accept(i);
                    }
                }
                TimerKind::Publish => {
                    if let Some((board, index)) = &self.board {
                        self.others = board.publish(*index, &self.stats);
                        self.timers.add(self.now + PUBLISH_EVERY, TimerKind::Publish);
                    }
                }
                TimerKind::Stats => {
                    self.log_stats();
                    if let Some(every) = self.config.stats_interval {
                        self.timers.add(self.now + every, TimerKind::Stats);
                    }
                }
                TimerKind::Grace => {
                    if self.phase == Phase::Draining {
                        log::info!("grace period over: closing {} connections", self.conns.len());
                        self.phase = Phase::Stopped;
                    }
                }
            }
        }
    }

    /// Drops timer entries of connections that are gone, once they outnumber the live ones.
    /// Entries are never removed when a connection closes (that would be an O(n) search);
    /// without this, a server with much connection churn would carry an idle-timer entry for
    /// every connection closed in the last `idle_timeout`, and keep the heap's capacity after.
    fn compact_timers(&mut self) {
        if self.timers.len() <= 64 + 4 * self.conns.len() {
            return;
        }
        let conns = &self.conns;
        self.timers.retain(|kind| match kind {
            TimerKind::Idle(id)
            | TimerKind::Service(id)
            | TimerKind::Linger(id)
            | TimerKind::Handshake(id) => {
                conns.get(id.index()).is_some_and(|c| c.id == *id && c.state != State::Closed)
            }
            _ => true,
        });
    }

    /// Service-wide periodic work. A panicking tick is logged and retried a second later.
    fn tick(&mut self, i: usize) {
        let (service, now) = (&mut self.services[i], self.now);
        match std::panic::catch_unwind(AssertUnwindSafe(|| service.tick(now))) {
            Ok(Some(next)) => self.timers.add(next, TimerKind::Tick(i)),
            Ok(None) => {}
            Err(payload) => {
                log::error!("{} service panicked in tick: {}", service.name(), panic_message(&*payload));
                self.stats.service_panics += 1;
                self.timers.add(now + Duration::from_secs(1), TimerKind::Tick(i));
            }
        }
    }

    /// The `--stats` line. With several reactors, reactor 0 logs the process's totals.
    fn log_stats(&self) {
        match (&self.board, &self.others) {
            (None, _) => log::info!("{}", self.stats.summary(self.now)),
            (Some((_, 0)), others) => {
                let mut total = self.stats.clone();
                if let Some(others) = others {
                    total.add(others);
                }
                log::info!("all reactors: {}", total.summary(self.now));
            }
            (Some(_), _) => {} // reactor 0 speaks for everyone
        }
    }

    /// Idle check. Busy connections never touch the heap: they only update `last_active`,
    /// and this timer, when it fires early, just re-arms itself at the real deadline.
    fn on_idle_timer(&mut self, id: ConnId) {
        let Some(idle) = self.config.idle_timeout else {
            return;
        };
        let now = self.now;
        let Some(conn) = self.live(id) else { return };
        if let IdleCheck::Rearm(due) = timer::idle_check(conn.last_active, idle, now) {
            self.timers.add(due, TimerKind::Idle(id));
            return;
        }
        log::debug!("{} {}: idle for {:?}", conn.id, conn.peer, idle);
        let open = conn.state == State::Open;
        if open {
            conn.last_active = now;
        }
        self.stats.conns_idle_closed += 1;
        if open {
            // Say goodbye politely; if the peer does not even read that, the next idle check
            // closes it hard.
            self.begin_close(id.index(), CloseReason::Idle);
            self.timers.add(now + idle, TimerKind::Idle(id));
            self.settle(id.index());
        } else {
            self.close(id.index(), CloseReason::Idle);
        }
    }

    /// Keeps at most one heap entry per connection for service timers, however often the
    /// service moves its deadline.
    fn arm_service_timer(&mut self, key: usize, at: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.service_timer = Some(at);
        if conn.service_timer_armed.is_none_or(|armed| at < armed) {
            conn.service_timer_armed = Some(at);
            self.timers.add(at, TimerKind::Service(conn.id));
        }
    }

    fn on_service_timer(&mut self, id: ConnId, fired: Instant) {
        let now = self.now;
        let Some(conn) = self.live(id) else { return };
        if conn.service_timer_armed == Some(fired) {
            conn.service_timer_armed = None;
        }
        match conn.service_timer {
            Some(at) if at <= now => {
                conn.service_timer = None;
                if conn.state == State::Open {
                    self.call_service(id.index(), Call::Timer);
                    self.settle(id.index());
                }
            }
            Some(at) if conn.service_timer_armed.is_none() => {
                conn.service_timer_armed = Some(at);
                self.timers.add(at, TimerKind::Service(id));
            }
            _ => {}
        }
    }

    // ─── shutdown ─────────────────────────────────────────────────────────────────────────

    fn on_signal(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        let count = signals.pending().count();
        for _ in 0..count {
            log::info!("signal received");
            self.request_stop(if self.phase == Phase::Running {
                shutdown::GRACEFUL
            } else {
                shutdown::IMMEDIATE
            });
        }
    }

    fn on_wake(&mut self) {
        let asked = self.request.swap(shutdown::NONE, Ordering::SeqCst);
        if asked != shutdown::NONE {
            self.request_stop(asked);
        }
    }

    fn request_stop(&mut self, how: u8) {
        if how == shutdown::IMMEDIATE || self.phase != Phase::Running {
            log::info!("stopping now");
            self.phase = Phase::Stopped;
            return;
        }
        log::info!(
            "shutting down: listeners closed, {} connections may finish within {:?}",
            self.conns.len(),
            self.config.shutdown_grace
        );
        let registry = self.poll.registry();
        for slot in self.listeners.iter_mut() {
            if let Some(mut listener) = slot.take() {
                let _ = registry.deregister(&mut listener.socket);
            }
        }
        for slot in self.datagrams.iter_mut() {
            if let Some(mut dgram) = slot.take() {
                let _ = registry.deregister(&mut dgram.socket);
            }
        }
        self.ready.retain(|r| matches!(r, Ready::Conn(_)));
        self.phase = Phase::Draining;
        self.timers.add(self.now + self.config.shutdown_grace, TimerKind::Grace);
    }

    /// Closes every remaining connection, after one last attempt to flush what it is owed.
    fn close_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.flush(key);
            self.close(key, CloseReason::Shutdown);
        }
        self.conns.clear();
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
fn guarded<R>(service: &str, id: ConnId, call: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(AssertUnwindSafe(call))
        .map_err(|payload| {
            log::error!("{service} service panicked on {id}: {}; closing it", panic_message(&*payload));
        })
        .ok()
}

/// [`guarded`] for a datagram service call, which has a peer address instead of a connection.
fn guarded_datagram<R>(service: &str, from: SocketAddr, call: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(AssertUnwindSafe(call))
        .map_err(|payload| {
            log::error!("{service} service panicked on a datagram from {from}: {}", panic_message(&*payload));
        })
        .ok()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-text panic payload)")
}

/// Sends plaintext `bytes` to `conn`, through its TLS session if it has one, and keeps the
/// counters. Writing does not make a connection active: the idle timer measures signs of
/// life *from the peer* (bytes read from it, or owed output it finally took, see `flush`),
/// so a member that never reads cannot be kept alive by what others send it. Plain connections write `bytes` as they are; TLS connections encrypt into
/// `cipher` and write that, so both take the same path into the socket and the same output
/// buffer (see `reactor/tls.rs`).
fn transmit(
    conn: &mut Conn,
    bytes: &[u8],
    cipher: &mut Vec<u8>,
    registry: &Registry,
    stats: &mut Stats,
) -> std::io::Result<()> {
    let before = conn.pending_output();
    let written = if let Some(tls) = conn.tls.as_deref_mut() {
        tls::encrypt(tls, bytes, cipher)?;
        conn.send(cipher, registry)?
    } else {
        conn.send(bytes, registry)?
    };
    stats.bytes_out += written as u64;
    stats.output_buffered = stats.output_buffered + conn.pending_output() as u64 - before as u64;
    Ok(())
}
