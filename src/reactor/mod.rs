//! The event loop: the only code in the crate that accepts, reads, writes or polls.
//!
//! One turn of [`Reactor::run`], each step a method of its own below:
//!
//! ```text
//!   ┌─▶ poll(timeout)      sleep until a socket is ready or the nearest timer is due
//!   │     (timeout = 0 while the ready queue holds work left over from the last turn;
//!   │      with --busy-poll, look without sleeping for a while first: Reactor::wait)
//!   │   dispatch events    listener → accept · connection → flush, then read → service
//!   │                      UDP socket → recv → service → send · signal/waker → shutdown
//!   │   ready queue        work left over: a connection whose read budget ran out, whose
//!   │                      output drained (reads resume), or whose service held complete
//!   │                      requests back at the output limit; a listener or UDP socket
//!   │                      whose budget ran out. Served once more, fairly, before sleeping
//!   │   timers             idle checks, service timers, handshake deadlines, lingering
//!   │                      closes, ticks, accept resumes, counter exchange between
//!   │                      reactors, --stats, the grace period
//!   │   reap               free the slab slots of connections closed during this turn;
//!   │                      sweep stale timers out of the heap when they dominate it
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
//! **Holding back.** One read can hold thousands of pipelined requests, and their replies (or,
//! for a chat line, its copies for every member) can be far bigger than they are. So a service
//! may stop between requests once what it has queued reaches the limit
//! (`Cx::output_room`), leaving complete requests unconsumed. The reactor then marks the
//! connection `held`: it reads no more from it (more bytes would only pile up behind, and a
//! FIN read now would cut the held requests off), and offers the rest again through the ready
//! queue once the connection's own output has gone: from `flush` when its owed output
//! drains, or on the next turn if nothing was owed to this peer (what it queued went to
//! others, a broadcast), so a flood moves at the loop's pace, a limit's worth a turn.
//!
//! Where a connection's bytes go, file by file (every step is a method of [`Reactor`]):
//!
//! ```text
//!   read.rs    read ─▶ on_bytes ─┐              (through TLS first: layers.rs)
//!   call.rs                      └▶ call_service ─▶ after_call ─┬─▶ send_out      (write.rs)
//!                                                               ├─▶ deliver_outbox (write.rs)
//!                                                               └─▶ begin_close   (close.rs)
//!   write.rs   send_out ─▶ transmit ─▶ Conn::send: written now; the rest waits with WRITABLE
//!   close.rs   begin_close ─▶ end_session (call.rs) ─▶ settle ─▶ FIN, lingering ─▶ close_now
//! ```
//!
//! This file is the loop: the reactor's state, [`Reactor::run`] and its steps. The rest:
//!
//! * `setup`: building a reactor: services, listeners, UDP sockets, what it shares;
//! * [`config`]: every limit and timeout, with its default;
//! * [`token`]: what a token means, and why a closed slot waits for the end of the turn;
//! * [`conn`]: one connection's state machine and buffers;
//! * a connection's bytes, in the order they travel: `read` (drain, budget, FIN), `call`
//!   (the service call and what it asked for), `write` (write-before-sleep, delivery to other
//!   connections), `close` (graceful or at once), and `layers` (a PROXY header and TLS
//!   before the service);
//! * [`listener`] (bind and accept) and [`datagram`] (UDP);
//! * [`timer`] (the deadline heap) and `timeouts` (what each deadline does);
//! * [`tls`] (the rustls session) and [`shutdown`] (signals and the [`Handle`]).

mod call;
mod close;
pub mod config;
pub mod conn;
pub mod datagram;
mod layers;
pub mod listener;
mod read;
mod setup;
pub mod shutdown;
mod timeouts;
pub mod timer;
pub mod tls;
pub mod token;
mod write;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize};
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpListener;
use mio::{Events, Poll, Waker};
use rustls::ServerConfig;
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

pub use config::Config;
pub use conn::State;
pub use shutdown::Handle;

use crate::error::Error;
use crate::service::{AnyService, ConnId, Outbox};
use crate::stats::{Stats, StatsBoard};
use conn::Conn;
use datagram::Datagram;
use timer::{TimerKind, Timers};
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
    /// In the ready queue already (its accept budget ran out): at most one entry, so one
    /// turn accepts at most two budgets' worth, however often its event comes.
    queued: bool,
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
    /// No new bytes: offer again what the connection left unconsumed (requests held back at
    /// the output limit, `Reactor::resume`).
    Reoffer,
    /// `n` new bytes are at the front of the plaintext buffer (decrypted TLS records).
    Plain(usize),
    Timer,
    /// A graceful shutdown has begun ([`crate::service::Service::drain`]).
    Drain,
}

/// A single-threaded readiness loop serving any number of TCP listeners and UDP sockets.
pub struct Reactor {
    poll: Poll,
    /// Every connection; its slab key is its token (`token.rs`), and a closed one stays a
    /// tombstone until the end of the turn.
    conns: Slab<Conn>,
    listeners: Vec<Option<Listener>>,
    datagrams: Vec<Option<Datagram>>,
    services: Vec<Box<dyn AnyService>>,
    timers: Timers,
    /// Work left over, served once per turn before the next sleep (`serve_ready_queue`).
    ready: VecDeque<Ready>,
    /// Scratch for `fire_timers`: the timers due this turn.
    due: Vec<(Instant, TimerKind)>,
    /// Slots of connections closed this turn, freed at its end.
    reap: Vec<usize>,
    /// Shared scratch buffers: every read lands in `rbuf`, every reply is built in `out`.
    rbuf: Vec<u8>,
    out: Vec<u8>,
    /// Bytes a service call addressed to *other* connections (`Cx::send_to`), delivered after
    /// the call (`deliver_outbox`).
    outbox: Outbox,
    /// `deliver_outbox` is running (closing a slow recipient can queue more: see there).
    delivering: bool,
    /// TLS scratch buffers: decrypted input, and encrypted output on its way to `Conn::send`.
    plain: Vec<u8>,
    cipher: Vec<u8>,
    stats: Stats,
    config: Config,
    /// The clock, read once per turn: every service call of a turn sees the same instant
    /// (`now` for deadlines, `wall` for dates and `TIME`).
    now: Instant,
    wall: SystemTime,
    /// The serial of the next connection's `ConnId`: never repeats, unlike slab keys.
    next_serial: u64,
    phase: Phase,
    /// When the graceful stop began (a repeat of its signal within [`shutdown::REPEAT`] is
    /// the same request delivered twice, not a second one).
    stopping_since: Option<Instant>,
    /// With several reactors: where this one publishes its counters, and its index there.
    board: Option<(StatsBoard, usize)>,
    /// With several reactors: the connections open in all of them, against `max_conns`.
    shared_open: Option<Arc<AtomicUsize>>,
    signals: Option<Signals>,
    waker: Arc<Waker>,
    /// A stop asked from another thread through a [`Handle`]: `shutdown::NONE`, `GRACEFUL`
    /// or `IMMEDIATE` (an integer because it is an atomic).
    request: Arc<AtomicU8>,
}

impl Reactor {
    /// Runs the loop until shut down (signal or [`Handle`]) and every connection has finished
    /// or the grace period has ended. Returns the final counters.
    pub fn run(mut self) -> Result<Stats, Error> {
        let mut events = Events::with_capacity(1024);
        self.start();
        while !self.finished() {
            if let Err(e) = self.wait(&mut events) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                self.close_all(); // and give back any shared connection places
                return Err(Error::Poll(e));
            }
            // Step 2: one clock reading per turn: every service call in this turn sees the same
            // `now`. (The steps are numbered as docs/architecture.md numbers them.)
            self.now = Instant::now();
            self.wall = SystemTime::now();
            self.dispatch(&events);
            self.serve_ready_queue();
            self.fire_timers();
            self.reap();
        }
        self.close_all();
        match &self.board {
            Some((_, index)) => log::info!("reactor {index} stopped: {}", self.stats.summary(self.now)),
            None => log::info!("reactor stopped: {}", self.stats.summary(self.now)),
        }
        Ok(self.stats)
    }

    /// Step 1 of a turn: wait for readiness. Without work left in the ready queue this sleeps
    /// until an event or the nearest timer; with work left it only looks.
    ///
    /// With [`Config::busy_poll`] it first looks again and again, for up to that long, before
    /// it sleeps. Why spend CPU on that: a sleeping loop must be woken by whoever makes one of
    /// its sockets ready, and on loopback that is the *peer's* CPU, in its `write` (and in a
    /// virtual machine a wake-up of an idle vCPU is dear). A fast server that sleeps between
    /// every burst of requests can so make its client slower. Measured trade-off in
    /// `docs/benchmarks.md`; off by default.
    fn wait(&mut self, events: &mut Events) -> std::io::Result<()> {
        if !self.ready.is_empty() {
            return self.poll.poll(events, Some(Duration::ZERO));
        }
        // The clock now, not at the start of the turn: a long turn must not push timers late.
        let mut now = Instant::now();
        if !self.config.busy_poll.is_zero() {
            let until = now + self.config.busy_poll;
            loop {
                self.poll.poll(events, Some(Duration::ZERO))?;
                if !events.is_empty() {
                    return Ok(());
                }
                now = Instant::now();
                // A timer due during the spin ends it, so spinning never delays one.
                if now >= until || self.timers.poll_timeout(now) == Some(Duration::ZERO) {
                    break;
                }
            }
        }
        self.poll.poll(events, self.timers.poll_timeout(now))
    }

    /// Step 3: hand each event to what its token names (`token.rs`).
    fn dispatch(&mut self, events: &Events) {
        for event in events.iter() {
            match token::target(event.token()) {
                Target::Conn(key) => {
                    // An error or a hang-up is reported to whoever reads next: the read that
                    // follows returns it (or 0), so both count as "readable".
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

    /// A readiness event for connection `key`: flush first (that may lift backpressure), then
    /// read, then see whether the connection can now finish closing.
    fn conn_event(&mut self, key: usize, readable: bool, writable: bool, fin: bool) {
        match self.conns.get_mut(key) {
            Some(conn) if conn.state != State::Closed => conn.fin_seen |= fin,
            // A tombstone, or a slot already freed: the event is stale.
            _ => return,
        }
        if writable {
            self.flush(key);
        }
        if readable {
            self.read(key);
        }
        self.settle(key);
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

    /// Step 4: serves, once each, the entries queued before this call: by this turn's events
    /// (a spent budget) or by the previous turn's timers and flushes. Entries queued while
    /// serving wait for the next turn, so the loop always gets back to `poll`.
    fn serve_ready_queue(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(item) = self.ready.pop_front() else {
                break;
            };
            match item {
                Ready::Conn(id) => {
                    if let Some(conn) = self.live(id) {
                        conn.queued = false;
                        self.resume(id.index());
                    }
                }
                Ready::Listener(i) => {
                    if let Some(Some(listener)) = self.listeners.get_mut(i) {
                        listener.queued = false;
                    }
                    self.accept(i);
                }
                Ready::Datagram(i) => {
                    if let Some(Some(dgram)) = self.datagrams.get_mut(i) {
                        dgram.queued = false;
                    }
                    self.datagram_read(i);
                }
            }
        }
    }

    /// Step 5: fire every timer that is due (what each does: `timeouts.rs`).
    fn fire_timers(&mut self) {
        // Everything due is taken out before any of it fires: a timer armed meanwhile for a
        // deadline already past (a service asking for `cx.now()`, or again for one it missed)
        // fires next turn, instead of looping here or crowding out the others.
        let mut due = std::mem::take(&mut self.due);
        due.extend(std::iter::from_fn(|| self.timers.pop_due(self.now)));
        for (at, kind) in due.drain(..) {
            match kind {
                TimerKind::Idle(id) => self.on_idle_timer(id),
                TimerKind::Service(id) => self.on_service_timer(id, at),
                TimerKind::Handshake(id) => self.on_handshake_timer(id),
                TimerKind::Linger(id) => self.on_linger_timer(id),
                TimerKind::Tick(i) => self.tick(i),
                TimerKind::AcceptResume(i) => self.on_accept_resume(i),
                TimerKind::Publish => self.on_publish(),
                TimerKind::Stats => self.on_stats_timer(),
                TimerKind::Grace => self.on_grace_over(),
            }
        }
        self.due = due;
    }

    /// Step 6: free the slots of connections closed this turn. Not at the close itself: a
    /// later event of the same batch may still name the slot, and must find the tombstone
    /// (`token.rs`), not a connection accepted meanwhile into the same slot.
    fn reap(&mut self) {
        for key in self.reap.drain(..) {
            // Dropping the connection closes its socket.
            self.conns.try_remove(key);
        }
        self.compact_timers();
    }
}
