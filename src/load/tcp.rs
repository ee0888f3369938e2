//! The TCP client loop: many connections, one thread, one `epoll`.
//!
//! Each connection is a small state machine:
//!
//! ```text
//!   Waiting ──its start time──▶ Connecting ──writable, no SO_ERROR, has a peer──▶ Open ──▶ Closed
//!                                   │   │ --tls                                   ▲  │ error, EOF,
//!                                   │   └──▶ Handshaking ──handshake done───────┘  │ mismatch, timeout
//!                                   │ connect failed │ TLS error, --timeout         │
//!                                   └────────────────┴──────────────────────────────┴──▶ Closed
//! ```
//!
//! With `--tls` a connection spends the handshake in *Handshaking*: bytes flow (the same
//! `flush` and `drain`, through [`super::tls`]) but no request is sent, so the handshake is
//! not in the latency figures. A connect, handshake or login (a workload's preamble, kv's
//! `AUTH`) not done within `--timeout` is a connect error.
//!
//! One turn of [`Client::run`]: start the connections whose time has come; send what is due
//! (closed loop: top every ready connection up to `--depth`; open loop: the requests whose
//! scheduled time has passed); check timeouts; sleep in `poll` until a socket is ready or the
//! next thing is due; then handle every event: finish a connect, flush pending output, drain
//! input and judge each reply.
//!
//! Sockets are registered once for both READABLE and WRITABLE. mio is edge-triggered, so the
//! WRITABLE interest costs nothing while the socket stays writable: an event comes only when a
//! full send buffer gets room again, which is exactly when a partial write has more to send.
//! That saves the `epoll_ctl` calls a level-triggered client would make to switch it on and off.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::plan::Plan;
use super::tally::{self, InFlight, Tally};
use super::workload::{Answer, Audience, Verdict, Workload};
use super::{LoadConfig, LoadError};

/// Bytes asked for by one `read`. A read that returns fewer means the receive queue is empty.
const READ_CHUNK: usize = 64 * 1024;

/// How often in-flight requests are checked against `--timeout`.
const TIMEOUT_CHECK: Duration = Duration::from_millis(10);

/// The longest `poll` sleeps, so the live line and timeouts are never late by much.
const MAX_SLEEP: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Connecting,
    Handshaking,
    Open,
    Closed,
}

impl State {
    /// What a connection in this state is still doing before it can carry requests ("connect",
    /// "TLS handshake"), for the connect-error reasons; `None` when it is doing neither.
    fn opening(self) -> Option<&'static str> {
        match self {
            State::Connecting => Some("connect"),
            State::Handshaking => Some("TLS handshake"),
            State::Waiting | State::Open | State::Closed => None,
        }
    }
}

/// One client connection.
struct Conn {
    state: State,
    socket: Option<TcpStream>,
    /// `--tls`: the rustls session between this socket and `out` / `input`.
    tls: Option<Box<rustls::ClientConnection>>,
    /// When the connect started, for the connect and handshake timeout.
    started: Option<Instant>,
    /// Encoded requests not yet taken by the kernel, from `written` on.
    out: Vec<u8>,
    written: usize,
    /// Received bytes no reply has consumed yet.
    input: Vec<u8>,
    /// Requests sent and not yet complete, oldest first.
    in_flight: VecDeque<InFlight>,
    next_k: u64,
    /// A request completed since the connection (last) opened: a server that closes it
    /// cleanly after that gets it back (see [`Client::reopen`]); one that closes before
    /// serving anything does not, or a refusing server would be hammered with connects.
    served: bool,
    /// This connect replaces a connection the server closed, so it is a reconnect.
    reopening: bool,
}

impl Conn {
    fn new() -> Self {
        Conn {
            state: State::Waiting,
            socket: None,
            tls: None,
            started: None,
            out: Vec::new(),
            written: 0,
            input: Vec::new(),
            in_flight: VecDeque::new(),
            next_k: 0,
            served: false,
            reopening: false,
        }
    }
}

/// What the run measured: the measured window, for throughput.
pub type Window = Duration;

/// The TCP load client. Built by [`super::run`].
pub struct Client<'a> {
    config: &'a LoadConfig,
    work: &'a mut dyn Workload,
    plan: Plan,
    tally: &'a mut Tally,
    poll: Poll,
    conns: Vec<Conn>,
    /// Index of the next connection to start.
    next_start: usize,
    /// Connections that may have room for more requests (closed loop) or output to flush.
    dirty: Vec<usize>,
    /// Open connections.
    open: usize,
    /// Requests in flight on all connections.
    in_flight: usize,
    /// Chat: every member has joined and sending may begin.
    together: bool,
    /// The ramp is over and sending has begun.
    ramped: bool,
    /// Open loop: the number of the next scheduled request, and a round-robin cursor.
    next_due: u64,
    cursor: usize,
    /// Open loop: the last `send_scheduled` stopped at a due request because no connection
    /// had room for it.
    backlogged: bool,
    /// Open loop: when `send_scheduled` last ran. A request due after it and before the
    /// deadline was not refused a slot; the run simply ended first.
    last_scheduled: Option<Instant>,
    rbuf: Vec<u8>,
    /// When the last measured reply arrived: where the measured window ends.
    measured_until: Option<Instant>,
    /// When the first measured request left (with `--requests`, the window starts there:
    /// connections still finishing their handshake are not the server's throughput).
    measured_from: Option<Instant>,
}

impl<'a> Client<'a> {
    /// A client for `config`; nothing is connected until [`Client::run`].
    pub fn new(
        config: &'a LoadConfig,
        work: &'a mut dyn Workload,
        plan: Plan,
        tally: &'a mut Tally,
    ) -> Result<Self, LoadError> {
        let poll = Poll::new().map_err(|e| LoadError::Setup("the poller (epoll)", e))?;
        let together = !work.start_together();
        Ok(Client {
            config,
            work,
            plan,
            tally,
            poll,
            conns: (0..config.conns).map(|_| Conn::new()).collect(),
            next_start: 0,
            dirty: Vec::new(),
            open: 0,
            in_flight: 0,
            together,
            ramped: false,
            next_due: 0,
            cursor: 0,
            backlogged: false,
            last_scheduled: None,
            rbuf: vec![0; READ_CHUNK],
            measured_until: None,
            measured_from: None,
        })
    }

    /// Runs until the plan says stop; returns the measured window.
    pub fn run(mut self) -> Result<Window, LoadError> {
        let mut events = Events::with_capacity(1024);
        let mut next_timeout_check = Instant::now();
        let mut live = super::report::Live::new(self.plan.measure_start);
        loop {
            let now = Instant::now();
            self.start_due(now);
            if !self.together {
                self.check_together(now);
            }
            if !self.ramped && now >= self.plan.ramp_end {
                // Sending starts now: connections that opened during the ramp were told "not
                // yet" and wait for nothing else, so wake them all once.
                self.ramped = true;
                self.dirty.extend(0..self.conns.len());
            }
            if self.over(now) {
                break;
            }
            if self.plan.interval.is_some() {
                self.send_scheduled(now);
            }
            self.top_up_dirty();
            if now >= next_timeout_check {
                self.check_timeouts(now);
                next_timeout_check = now + TIMEOUT_CHECK;
            }
            if self.config.live {
                live.tick(now, self.tally);
            }
            let timeout = self.sleep_time(now).min(next_timeout_check.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(LoadError::Setup("polling", e));
            }
            for event in events.iter() {
                let i = event.token().0;
                let fin = event.is_read_closed();
                if self.conns.get(i).is_some_and(|c| c.state == State::Connecting) {
                    self.connected(i);
                }
                // Still connecting (a spurious wake-up), closed, or a stale token: nothing to do.
                if !self.live(i) {
                    continue;
                }
                if event.is_writable() {
                    self.flush(i);
                }
                // The flush may have closed it (and begun a reconnect on a new socket).
                if self.live(i) && (event.is_readable() || fin || event.is_error()) {
                    self.drain(i, fin);
                }
            }
        }
        let end = Instant::now();
        // Every connection gone before the deadline (the server closed them, or they timed
        // out and could not be opened again): the window is shorter than asked, and the
        // report must say so rather than quietly rate a shorter run.
        if let Some(early) = self.plan.ended_early(end) {
            self.tally.warn(format!(
                "the run ended {early:.2}s before its deadline: no connection was left to send on"
            ));
        }
        if let Some(last) = self.last_scheduled {
            let tally = &mut *self.tally;
            self.plan.for_each_unsent(self.next_due, tally.sent, last, |due, n| tally.unsent(due, end, n));
        }
        self.finish();
        if self.tally.conns_opened == 0 {
            let why = match self.tally.connect_errors.keys().next() {
                _ if self.plan.interrupted() => "interrupted (Ctrl-C) before any connection opened".into(),
                Some(why) => why.clone(),
                None => "no reason given".into(),
            };
            return Err(LoadError::NoConnections(format!("{} ({why})", self.config.addr)));
        }
        Ok(self.plan.window(self.measured_from, self.measured_until, end, self.tally.sent))
    }

    /// Whether connection `i` has a socket that bytes flow through (open or handshaking).
    fn live(&self, i: usize) -> bool {
        self.conns.get(i).is_some_and(|c| matches!(c.state, State::Open | State::Handshaking))
    }

    /// Whether the run is over at `now`.
    fn over(&self, now: Instant) -> bool {
        // Nothing left that could send or receive. (The scan of every connection runs only
        // once none is open, not on every turn of a run with thousands.)
        if self.next_start == self.conns.len()
            && self.open == 0
            && !self.conns.iter().any(|c| c.state.opening().is_some())
        {
            return true;
        }
        self.plan.done(now, self.tally.sent, self.in_flight)
    }

    /// How long `poll` may sleep: until the next connection start, scheduled request or
    /// deadline, at most [`MAX_SLEEP`] (see [`Plan::wake_by`]).
    fn sleep_time(&self, now: Instant) -> Duration {
        let mut wake = now + MAX_SLEEP;
        if self.next_start < self.conns.len() {
            wake = wake.min(self.plan.conn_start(self.next_start));
        }
        if !self.ramped {
            wake = wake.min(self.plan.ramp_end);
        }
        let wake = self.plan.wake_by(wake, self.next_due, self.backlogged, self.tally.sent);
        super::plan::poll_timeout(now, wake)
    }

    // ─── connecting ───────────────────────────────────────────────────────────────────────

    fn start_due(&mut self, now: Instant) {
        while self.next_start < self.conns.len() && self.plan.conn_start(self.next_start) <= now {
            let i = self.next_start;
            self.next_start += 1;
            self.connect(i, self.config.addr);
        }
    }

    /// Starts a non-blocking connect. It returns at once (`EINPROGRESS`); the socket becomes
    /// writable when the handshake is done or has failed, and [`Client::connected`] tells which.
    fn connect(&mut self, i: usize, addr: SocketAddr) {
        let mut socket = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return self.connect_failed(i, e),
        };
        if let Err(e) =
            self.poll.registry().register(&mut socket, Token(i), Interest::READABLE | Interest::WRITABLE)
        {
            return self.connect_failed(i, e);
        }
        self.conns[i].socket = Some(socket);
        self.conns[i].state = State::Connecting;
        self.conns[i].started = Some(Instant::now());
        self.conns[i].served = false;
    }

    /// An event on a connecting socket. Writable does not mean connected: a refused connect is
    /// also "writable". `take_error` reads `SO_ERROR` (the connect's verdict); `peer_addr`
    /// succeeding proves the handshake finished (mio's documented check: a spurious wake-up
    /// answers `NotConnected`, and we wait for the next event).
    fn connected(&mut self, i: usize) {
        let Some(socket) = self.conns[i].socket.as_ref() else {
            return;
        };
        match socket.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return self.connect_failed(i, e),
        }
        match socket.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
            Err(e) => return self.connect_failed(i, e),
        }
        // Small requests must leave at once: Nagle's algorithm would hold a pipelined request
        // back until the previous one is acknowledged, and we would measure that instead.
        if let Err(e) = socket.set_nodelay(true) {
            log::debug!("connection {i}: TCP_NODELAY: {e}");
        }
        let Some(client) = &self.config.tls else {
            return self.opened(i);
        };
        match super::tls::session(client) {
            Ok(tls) => self.conns[i].tls = Some(tls),
            Err(e) => return self.connect_failed(i, io::Error::other(format!("TLS: {e}"))),
        }
        // The ClientHello goes out now; the server's answer comes as a readable edge.
        self.conns[i].state = State::Handshaking;
        self.flush(i);
    }

    /// The connection is ready for requests: connected, and with `--tls` past the handshake.
    /// A workload's preamble (kv's `AUTH`) goes out first.
    fn opened(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        conn.state = State::Open;
        self.open += 1;
        if std::mem::take(&mut conn.reopening) {
            self.tally.reconnects += 1;
        } else {
            self.tally.conns_opened += 1;
        }
        self.dirty.push(i);
        let before = conn.out.len();
        self.work.preamble(i, &mut conn.out);
        if conn.out.len() > before {
            self.flush(i);
        }
    }

    fn connect_failed(&mut self, i: usize, e: io::Error) {
        let mut reason = e.to_string();
        if e.raw_os_error() == Some(24) {
            reason.push_str(" — the file-descriptor limit (see the WARNING)");
        }
        tally::count(&mut self.tally.connect_errors, reason);
        self.close(i);
    }

    /// Chat: once every started connection is open and welcomed, sending may begin.
    fn check_together(&mut self, now: Instant) {
        if self.next_start < self.conns.len() {
            return;
        }
        let waiting = self
            .conns
            .iter()
            .enumerate()
            .any(|(i, c)| c.state.opening().is_some() || (c.state == State::Open && !self.work.ready(i)));
        if waiting {
            return;
        }
        self.together = true;
        self.plan.start_sending_at(now);
        self.dirty.extend(0..self.conns.len());
    }

    // ─── sending ──────────────────────────────────────────────────────────────────────────

    fn can_send(&self, i: usize) -> bool {
        let c = &self.conns[i];
        c.state == State::Open && self.together && self.work.ready(i) && c.in_flight.len() < self.config.depth
    }

    /// Closed loop: each dirty connection sends until `--depth` requests are in flight, then
    /// writes at once (write-before-sleep). Open loop: only flushes.
    fn top_up_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for &i in &dirty {
            if self.plan.interval.is_none() {
                // The clock is read per connection, just before its write: a request's
                // latency starts when it leaves, not when the turn began (with 50
                // connections ready at once, the last one's write comes 49 writes later).
                let now = Instant::now();
                while self.can_send(i) && self.plan.may_send(now, self.tally.sent) {
                    if !self.enqueue(i, now, now) {
                        break;
                    }
                }
            }
            self.flush(i);
        }
        // Keep what was marked meanwhile (a close releasing a chat member completes other
        // senders' requests, and they must be topped up too), in the list's old allocation.
        dirty.clear();
        dirty.append(&mut self.dirty);
        self.dirty = dirty;
    }

    /// Open loop: hands every request whose time has come to a connection with room, round
    /// robin, and writes it at once. When none has room the request stays due; it goes out as
    /// soon as a reply frees a slot, and its latency still counts from when it was due.
    fn send_scheduled(&mut self, now: Instant) {
        let n = self.conns.len();
        self.backlogged = false;
        self.last_scheduled = Some(now);
        while let Some(due) = self.plan.due(self.next_due) {
            if due > now || !self.plan.may_send(due, self.tally.sent) {
                break;
            }
            let Some(i) = (0..n).map(|j| (self.cursor + j) % n).find(|&i| self.can_send(i)) else {
                self.backlogged = true;
                break;
            };
            self.cursor = (i + 1) % n;
            // Stamped just before its own write, not at the top of the turn: the writes of
            // the connections ahead of it are not its latency.
            if !self.enqueue(i, due, Instant::now()) {
                break;
            }
            self.next_due += 1;
            self.flush(i);
        }
    }

    /// Encodes the next request of connection `i` into its output buffer. Returns false when
    /// it cannot be sent (chat with nobody to hear it).
    fn enqueue(&mut self, i: usize, intended: Instant, now: Instant) -> bool {
        let remaining = self.work.audience().fanout(self.open);
        if remaining == 0 {
            return false;
        }
        let measured = intended >= self.plan.measure_start;
        let conn = &mut self.conns[i];
        let k = conn.next_k;
        conn.next_k += 1;
        self.work.encode(i, k, &mut conn.out);
        conn.in_flight.push_back(InFlight { k, intended, sent: now, remaining, refused: None, measured });
        self.in_flight += 1;
        if measured {
            self.tally.sent += 1;
            self.tally.sent_at(now);
            self.measured_from.get_or_insert(now);
        }
        true
    }

    /// Writes pending output until it is all gone or the kernel's send buffer is full. A
    /// partial write is normal, not an error: the rest waits for the next WRITABLE edge.
    /// With `--tls` the output is plaintext, and rustls encrypts and writes it (and any
    /// handshake message it has to send); `sent` counts plaintext bytes either way.
    fn flush(&mut self, i: usize) {
        let measuring = Instant::now() >= self.plan.measure_start;
        let conn = &mut self.conns[i];
        let Some(socket) = conn.socket.as_mut() else {
            return;
        };
        let before = conn.written;
        let result = match conn.tls.as_deref_mut() {
            Some(tls) => super::tls::send(tls, socket, &conn.out, &mut conn.written),
            None => write_plain(socket, &conn.out, &mut conn.written),
        };
        if measuring {
            self.tally.bytes_out += (conn.written - before) as u64;
        }
        if let Err(e) = result {
            match conn.state {
                State::Handshaking => {
                    tally::count(&mut self.tally.connect_errors, format!("{e} during the TLS handshake"))
                }
                _ => tally::count(&mut self.tally.write_errors, e.to_string()),
            }
            // A reset or broken pipe on a connection that served: the server closed it
            // while we wrote (a bare close crossing our next request), so open it again.
            self.close(i);
            return self.reopen(i);
        }
        if conn.written == conn.out.len() {
            conn.out.clear();
            conn.written = 0;
        }
    }

    // ─── receiving ────────────────────────────────────────────────────────────────────────

    /// Reads until the socket is drained (edge-triggered: there is no second notice), judging
    /// replies after each read so the input buffer holds at most one partial reply plus a read.
    /// `fin`: the peer also closed, so a short read is not yet the end.
    fn drain(&mut self, i: usize, fin: bool) {
        loop {
            let Some(socket) = self.conns[i].socket.as_mut() else {
                return;
            };
            match socket.read(&mut self.rbuf) {
                Ok(0) => return self.ended_by_server(i, "connection closed by the server"),
                Ok(n) => {
                    let before = self.conns[i].input.len();
                    let Some(ended) = self.take(i, n) else {
                        return;
                    };
                    if Instant::now() >= self.plan.measure_start {
                        self.tally.bytes_in += (self.conns[i].input.len() - before) as u64;
                    }
                    if self.conns[i].state == State::Open {
                        self.judge(i);
                    }
                    if !self.live(i) {
                        return;
                    }
                    if self.work.take_close(i) {
                        // The reply said `Connection: close`: the server will close after it,
                        // and will not answer what was pipelined behind it (abandoned).
                        self.close(i);
                        return self.reopen(i);
                    }
                    if ended {
                        // TLS's end of stream (close_notify), after the replies that came with
                        // it were judged: the same as a FIN on a plain connection.
                        return self.ended_by_server(i, "connection closed by the server (TLS close_notify)");
                    }
                    // Short read: the receive queue is empty; skip the read that would only
                    // say WouldBlock.
                    if n < READ_CHUNK && !fin {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // A reset: counted, and, if it had served, reopened like a clean close.
                    self.read_failed(i, e.to_string());
                    return self.reopen(i);
                }
            }
        }
    }

    /// Connection `i` was closed by the server, cleanly: opens it again, as `wrk` or a
    /// browser would, so the load stays at `--conns` connections. Only after it served a
    /// request (see `Conn::served`), when the workload can carry on over a new connection
    /// ([`Workload::can_reopen`]: not chat, whose member would be a new one), and not once the
    /// run is over.
    fn reopen(&mut self, i: usize) {
        let conn = &self.conns[i];
        if conn.state != State::Closed
            || !conn.served
            || !self.work.can_reopen(i, conn.next_k)
            || self.plan.done(Instant::now(), self.tally.sent, self.in_flight)
        {
            return;
        }
        log::debug!("connection {i}: closed by the server; reconnecting");
        self.conns[i].reopening = true;
        self.connect(i, self.config.addr);
    }

    /// The server ended connection `i` cleanly (FIN, or TLS close_notify). A keep-alive
    /// connection the server ends (an idle limit, a request limit like nginx's
    /// `keepalive_requests`) with nothing owed is not an error; either way it is reopened. A
    /// connection not yet ready is owed the answer to its login (kv's `AUTH`).
    fn ended_by_server(&mut self, i: usize, why: &str) {
        let owed = !self.conns[i].in_flight.is_empty() || !self.work.ready(i);
        if owed || self.conns[i].state != State::Open {
            // A connection turned away (a full chat room) is reported with the server's words.
            let why = match self.work.turned_away(i) {
                Some(said) if !self.work.ready(i) => format!("{why} after it said {said:?}"),
                _ => why.into(),
            };
            self.read_failed(i, why);
        } else {
            self.close(i);
        }
        self.reopen(i)
    }

    /// A read found the connection closed or broken. Before the TLS handshake finished, the
    /// connection never opened: that is a connect error, as the docs promise.
    fn read_failed(&mut self, i: usize, why: String) {
        match self.conns[i].state {
            State::Handshaking => {
                tally::count(&mut self.tally.connect_errors, format!("{why} during the TLS handshake"))
            }
            _ => tally::count(&mut self.tally.read_errors, why),
        }
        self.close(i);
    }

    /// Appends the `n` bytes just read into `rbuf` to connection `i`'s input: as they are, or
    /// with `--tls` through rustls, which may also finish the handshake and have something to
    /// send. `Some(true)` when the server's close_notify came with them: the plaintext before
    /// it is in the input all the same, to be judged before the end is acted on (a server's
    /// last reply, `Connection: close`, usually arrives in the same read as its close_notify).
    /// `None` when the connection was closed (a TLS error).
    fn take(&mut self, i: usize, n: usize) -> Option<bool> {
        let conn = &mut self.conns[i];
        let Some(tls) = conn.tls.as_deref_mut() else {
            conn.input.extend_from_slice(&self.rbuf[..n]);
            return Some(false);
        };
        let received = super::tls::receive(tls, &self.rbuf[..n], &mut conn.input);
        let handshaken = conn.state == State::Handshaking && !tls.is_handshaking();
        // Whatever rustls wants to say now goes out now: the handshake's next flight, a key
        // update, or the alert that explains an error to the server.
        if tls.wants_write() {
            self.flush(i);
        }
        let ended = match received {
            Ok(super::tls::Received::Data) => false,
            Ok(super::tls::Received::Closed) => true,
            Err(e) => {
                let errors = match self.conns[i].state {
                    State::Handshaking => &mut self.tally.connect_errors,
                    _ => &mut self.tally.read_errors,
                };
                tally::count(errors, e);
                self.close(i);
                return None;
            }
        };
        if handshaken && self.live(i) {
            self.opened(i);
        }
        self.live(i).then_some(ended)
    }

    /// Judges every complete reply at the front of connection `i`'s input.
    fn judge(&mut self, i: usize) {
        let input = std::mem::take(&mut self.conns[i].input);
        let mut pos = 0;
        let now = Instant::now();
        while pos < input.len() {
            let (len, answers, refused) = match self.work.parse(i, &input[pos..]) {
                Verdict::Incomplete => break,
                Verdict::Skip(len) => {
                    pos += len;
                    // It may have made the connection ready (kv's answer to `AUTH`).
                    self.dirty.push(i);
                    continue;
                }
                Verdict::Ok { len, answers } => (len, answers, None),
                Verdict::Refused { len, answers, why } => (len, answers, Some(why)),
                Verdict::Mismatch(what) => return self.mismatch(i, what),
            };
            pos += len;
            if let Err(what) = self.answer(i, answers, refused, now) {
                return self.mismatch(i, what);
            }
        }
        let mut input = input;
        input.drain(..pos);
        self.conns[i].input = input;
    }

    /// Connection `i` received a correct reply to `answers`: find that request and, once every
    /// reply it needs is in, complete it. A reply to a request that is not the one due is a
    /// mismatch (lost, duplicated or reordered replies).
    fn answer(
        &mut self,
        i: usize,
        answers: Answer,
        refused: Option<String>,
        now: Instant,
    ) -> Result<(), String> {
        let to_sender = self.work.audience() == Audience::Sender;
        let (sender, index) = match answers {
            Answer::Oldest => match self.conns[i].in_flight.front() {
                Some(_) => (i, 0),
                None => return Err("a reply with no request in flight".into()),
            },
            Answer::Request { conn, k } => {
                // A line of a member that has left (its requests were abandoned with it) may
                // still be on its way to the others; the workload has checked its order and
                // bytes, so it is simply late. Unless it was never sent at all.
                if let Some(sender) = self.conns.get(conn).filter(|c| c.state == State::Closed && !to_sender)
                {
                    if k >= sender.next_k {
                        return Err(format!("a line #{k} of connection {conn}, which never sent it"));
                    }
                    self.tally.late += 1;
                    return Ok(());
                }
                let Some(front) = self.conns.get(conn).and_then(|c| c.in_flight.front()) else {
                    return Err(format!(
                        "a reply to request #{k} of connection {conn}, which has none in flight"
                    ));
                };
                let index = k.checked_sub(front.k).map(|d| d as usize);
                let valid = match index {
                    // On a request/reply stream the reply must be to the oldest request.
                    Some(0) if to_sender => conn == i,
                    Some(d) if !to_sender => conn != i && d < self.conns[conn].in_flight.len(),
                    _ => false,
                };
                if !valid {
                    return Err(format!(
                        "a reply to request #{k} of connection {conn}, but the one due is #{}",
                        front.k
                    ));
                }
                (conn, index.unwrap_or(0))
            }
        };
        let req = &mut self.conns[sender].in_flight[index];
        if req.remaining == 0 {
            return Err(format!("request #{} of connection {sender} answered once too often", req.k));
        }
        req.remaining -= 1;
        if refused.is_some() {
            req.refused = refused;
        }
        self.complete_front(sender, now);
        Ok(())
    }

    /// Completes the requests at the front of `sender`'s queue that have every reply they
    /// need. Requests complete in order (each member hears a sender's lines in order), so
    /// only the front can be finished.
    fn complete_front(&mut self, sender: usize, now: Instant) {
        while let Some(front) = self.conns[sender].in_flight.front() {
            if front.remaining > 0 {
                break;
            }
            let Some(done) = self.conns[sender].in_flight.pop_front() else { break };
            self.conns[sender].served = true;
            self.in_flight -= 1;
            self.tally.complete(&done, now);
            if done.measured {
                self.measured_until = Some(now);
            }
        }
        self.dirty.push(sender);
    }

    /// Fan-out: member `gone` has left the room. Every other member's request it had not
    /// heard yet was counting on its reply; it needs one fewer now, and may be complete (it
    /// reached everyone still there). Without this, one member's timeout or reset would
    /// leave the others' requests waiting for a reply that cannot come.
    fn release_member(&mut self, gone: usize) {
        let now = Instant::now();
        for sender in 0..self.conns.len() {
            if sender == gone || self.conns[sender].in_flight.is_empty() {
                continue;
            }
            let heard = self.work.heard(gone, sender);
            for req in self.conns[sender].in_flight.iter_mut().filter(|r| r.k >= heard) {
                req.remaining = req.remaining.saturating_sub(1);
            }
            self.complete_front(sender, now);
        }
    }

    fn mismatch(&mut self, i: usize, what: String) {
        self.tally.mismatch(i, what);
        // The request answered wrongly is counted as a mismatch, not again as abandoned.
        if self.conns[i].in_flight.pop_front().is_some() {
            self.in_flight -= 1;
        }
        self.close(i);
    }

    // ─── ending ───────────────────────────────────────────────────────────────────────────

    /// Closes connections whose oldest request waited longer than `--timeout`, and those
    /// whose connect or TLS handshake took longer than that.
    fn check_timeouts(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            if let Some(what) = c.state.opening()
                && c.started.is_some_and(|t| now.saturating_duration_since(t) > self.config.timeout)
            {
                tally::count(&mut self.tally.connect_errors, format!("{what} timed out"));
                self.close(i);
                continue;
            }
            // Open, but the server has not let it send yet (kv: no answer to its AUTH; chat:
            // no welcome). That wait is part of opening it: nothing is in flight for the
            // request timeout to catch, and without this it would wait for ever.
            if c.state == State::Open
                && !self.work.ready(i)
                && c.started.is_some_and(|t| now.saturating_duration_since(t) > self.config.timeout)
            {
                tally::count(
                    &mut self.tally.connect_errors,
                    String::from("login timed out (kv: no answer to AUTH; chat: no welcome)"),
                );
                self.close(i);
                continue;
            }
            let late = self.conns[i]
                .in_flight
                .front()
                .is_some_and(|r| now.saturating_duration_since(r.sent) > self.config.timeout);
            if late {
                if let Some(r) = self.conns[i].in_flight.pop_front() {
                    self.in_flight -= 1;
                    self.tally.timed_out(&r, now);
                }
                self.close(i);
                // As wrk does: a new connection takes its place, so one stall does not end
                // the run early (when a reconnect is safe for the workload: see `reopen`).
                self.reopen(i);
            }
        }
    }

    /// Closes connection `i`; its requests still in flight are abandoned.
    fn close(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        let was_open = conn.state == State::Open;
        if was_open {
            self.open -= 1;
        }
        conn.state = State::Closed;
        if let Some(mut socket) = conn.socket.take() {
            let _ = self.poll.registry().deregister(&mut socket);
        }
        let abandoned = conn.in_flight.len();
        conn.in_flight.clear();
        conn.out = Vec::new();
        conn.written = 0;
        conn.input = Vec::new();
        conn.tls = None;
        self.in_flight -= abandoned;
        self.tally.abandoned += abandoned as u64;
        if was_open && self.work.audience() == Audience::Others {
            self.release_member(i);
        }
    }

    /// The run is over: count what is still in flight, then close everything (a TLS session
    /// says close_notify first, if the socket takes it at once).
    fn finish(&mut self) {
        for (i, conn) in self.conns.iter_mut().enumerate() {
            // Not an error of the server's making for sure, but a connection the run meant to
            // measure and could not: say so instead of quietly measuring fewer. (A login, kv's
            // `AUTH`, still unanswered is part of opening, as in `check_timeouts`.)
            let what = match conn.state.opening() {
                Some(what) => Some(what),
                None if conn.state == State::Open && !self.work.ready(i) => Some("login"),
                None => None,
            };
            if let Some(what) = what
                && !conn.reopening
            {
                tally::count(&mut self.tally.connect_errors, format!("{what} unfinished when the run ended"));
            }
            let measured = conn.in_flight.iter().filter(|r| r.measured).count() as u64;
            self.tally.in_flight_at_end += measured;
            conn.in_flight.clear();
            if let (Some(tls), Some(socket)) = (conn.tls.as_deref_mut(), conn.socket.as_mut()) {
                tls.send_close_notify();
                let _ = tls.write_tls(socket);
            }
            conn.tls = None;
            conn.socket = None;
            conn.state = State::Closed;
        }
        self.in_flight = 0;
    }
}

/// Writes `out[*written..]` to a plain socket until it is all gone or the send buffer is full
/// (`WouldBlock`: the next WRITABLE edge continues), advancing `written`.
fn write_plain(socket: &mut TcpStream, out: &[u8], written: &mut usize) -> io::Result<()> {
    while *written < out.len() {
        match socket.write(&out[*written..]) {
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
