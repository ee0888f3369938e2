//! The UDP client loop: echo datagrams from many sockets, one thread.
//!
//! UDP has no connection, no stream and no delivery guarantee, so this loop is smaller than
//! [`super::tcp`] and counts differently:
//!
//! * a "connection" is a socket bound to its own port and `connect`ed to the server (so the
//!   kernel filters out datagrams from anyone else and `send`/`recv` need no address);
//! * each datagram is a whole echo message ([`super::workload::echo`]): its tag says which
//!   request it answers, so replies may come in any order;
//! * a request not answered within `--timeout` is **lost** (counted under timeouts), and a
//!   reply that comes after that is **late** (counted apart, not as a success). Neither closes
//!   the socket: losing a datagram is normal for UDP, and the next one is independent;
//! * a send that would block leaves the datagram pending until the socket is writable again.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use super::plan::Plan;
use super::tally::{self, InFlight, Tally};
use super::tcp::Window;
use super::workload::{Answer, Verdict, Workload};
use super::{LoadConfig, LoadError};

/// The largest UDP payload over IPv4 (65,535 minus the IP and UDP headers).
pub const MAX_DATAGRAM: usize = 65_507;

/// The longest `poll` sleeps: losses are noticed within this much of `--timeout`.
const MAX_SLEEP: Duration = Duration::from_millis(10);

struct Sock {
    socket: Option<UdpSocket>,
    in_flight: VecDeque<InFlight>,
    next_k: u64,
    /// A datagram whose `send` would have blocked, with its request.
    pending: Option<(Vec<u8>, InFlight)>,
}

/// The UDP load client. Built by [`super::run`].
pub struct Client<'a> {
    config: &'a LoadConfig,
    work: &'a mut dyn Workload,
    plan: Plan,
    tally: &'a mut Tally,
    poll: Poll,
    socks: Vec<Sock>,
    next_start: usize,
    next_due: u64,
    cursor: usize,
    /// Open loop: the last `send_scheduled` stopped at a due request because no socket had
    /// room for it.
    backlogged: bool,
    /// Open loop: when `send_scheduled` last ran (see the TCP client's field of that name).
    last_scheduled: Option<Instant>,
    /// Requests sent or waiting to be (a pending datagram), not yet answered or given up.
    in_flight: usize,
    buf: Vec<u8>,
    /// When the last measured reply arrived: where the measured window ends.
    measured_until: Option<Instant>,
    /// When the first measured request was due (with `--requests`, the window starts there,
    /// not at the start of the run).
    measured_from: Option<Instant>,
}

impl<'a> Client<'a> {
    /// A client for `config`; no socket is opened until [`Client::run`].
    pub fn new(
        config: &'a LoadConfig,
        work: &'a mut dyn Workload,
        plan: Plan,
        tally: &'a mut Tally,
    ) -> Result<Self, LoadError> {
        let poll = Poll::new().map_err(|e| LoadError::Setup("the poller (epoll)", e))?;
        let socks = (0..config.conns)
            .map(|_| Sock { socket: None, in_flight: VecDeque::new(), next_k: 0, pending: None })
            .collect();
        Ok(Client {
            config,
            work,
            plan,
            tally,
            poll,
            socks,
            next_start: 0,
            next_due: 0,
            cursor: 0,
            backlogged: false,
            last_scheduled: None,
            in_flight: 0,
            // One byte more than the largest datagram, so a too-long reply shows as too long.
            buf: vec![0; MAX_DATAGRAM + 1],
            measured_until: None,
            measured_from: None,
        })
    }

    /// Runs until the plan says stop; returns the measured window.
    pub fn run(mut self) -> Result<Window, LoadError> {
        let mut events = Events::with_capacity(1024);
        let mut live = super::report::Live::new(self.plan.measure_start);
        loop {
            let now = Instant::now();
            while self.next_start < self.socks.len() && self.plan.conn_start(self.next_start) <= now {
                self.open(self.next_start);
                self.next_start += 1;
            }
            let open = self.socks.iter().filter(|s| s.socket.is_some()).count();
            if self.plan.done(now, self.tally.sent, self.in_flight)
                || (self.next_start == self.socks.len() && open == 0)
            {
                break;
            }
            self.expire(now);
            if self.plan.interval.is_some() {
                self.send_scheduled(now);
            } else {
                for i in 0..self.socks.len() {
                    self.top_up(i);
                }
            }
            if self.config.live {
                live.tick(now, self.tally);
            }
            let wake = self.plan.wake_by(now + MAX_SLEEP, self.next_due, self.backlogged, self.tally.sent);
            let timeout = super::plan::poll_timeout(now, wake);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(LoadError::Setup("polling", e));
            }
            for event in events.iter() {
                let i = event.token().0;
                if event.is_writable() {
                    self.send_pending(i);
                }
                if event.is_readable() || event.is_error() {
                    self.receive(i);
                }
            }
        }
        let end = Instant::now();
        // Every socket closed by an error (the server's port unreachable): as over TCP, a
        // shorter run than asked is said, not quietly rated.
        if let Some(early) = self.plan.ended_early(end) {
            self.tally.warn(format!(
                "the run ended {early:.2}s before its deadline: no socket was left to send on"
            ));
        }
        if let Some(last) = self.last_scheduled {
            let tally = &mut *self.tally;
            self.plan.for_each_unsent(self.next_due, tally.sent, last, |due, n| tally.unsent(due, end, n));
        }
        for sock in &mut self.socks {
            let pending = sock.pending.as_ref().is_some_and(|(_, r)| r.measured);
            self.tally.in_flight_at_end +=
                sock.in_flight.iter().filter(|r| r.measured).count() as u64 + u64::from(pending);
            sock.socket = None;
        }
        if self.tally.conns_opened == 0 {
            let why = self.tally.connect_errors.keys().next().cloned().unwrap_or_default();
            return Err(LoadError::NoConnections(format!("{} ({why})", self.config.addr)));
        }
        Ok(self.plan.window(self.measured_from, self.measured_until, end, self.tally.sent))
    }

    /// Binds socket `i` to a free local port and connects it to the server.
    fn open(&mut self, i: usize) {
        let addr = self.config.addr;
        let local: SocketAddr = match (addr.is_ipv4(), addr.ip().is_loopback()) {
            (true, true) => (Ipv4Addr::LOCALHOST, 0).into(),
            (true, false) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            (false, true) => (Ipv6Addr::LOCALHOST, 0).into(),
            (false, false) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let result = UdpSocket::bind(local).and_then(|mut s| {
            s.connect(addr)?;
            self.poll.registry().register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)?;
            Ok(s)
        });
        match result {
            Ok(s) => {
                self.socks[i].socket = Some(s);
                self.tally.conns_opened += 1;
            }
            Err(e) => tally::count(&mut self.tally.connect_errors, e.to_string()),
        }
    }

    fn can_send(&self, i: usize) -> bool {
        let s = &self.socks[i];
        s.socket.is_some() && s.pending.is_none() && s.in_flight.len() < self.config.depth
    }

    /// Closed loop: socket `i` sends until `--depth` requests are in flight. The clock is
    /// read here, per socket, so a request's latency does not include the sends of the
    /// sockets served before it in this turn.
    fn top_up(&mut self, i: usize) {
        let now = Instant::now();
        while self.can_send(i) && self.plan.may_send(now, self.tally.sent) {
            self.send(i, now);
        }
    }

    /// Open loop, as in [`super::tcp`]: due requests go to sockets with room, round robin.
    fn send_scheduled(&mut self, now: Instant) {
        let n = self.socks.len();
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
            self.send(i, due);
            self.next_due += 1;
        }
    }

    /// Encodes and sends the next request of socket `i`, intended for `intended`.
    fn send(&mut self, i: usize, intended: Instant) {
        let sock = &mut self.socks[i];
        let k = sock.next_k;
        sock.next_k += 1;
        let mut datagram = Vec::with_capacity(self.config.size);
        self.work.encode(i, k, &mut datagram);
        let measured = intended >= self.plan.measure_start;
        if measured {
            self.tally.sent += 1;
            self.measured_from.get_or_insert(intended);
        }
        let req = InFlight { k, intended, sent: intended, remaining: 1, refused: None, measured };
        // In flight from now on, even while the datagram waits for room: `--requests` must
        // not end the run under it, and the end of the run must count it.
        self.socks[i].pending = Some((datagram, req));
        self.in_flight += 1;
        self.send_pending(i);
    }

    /// Tries to send socket `i`'s pending datagram. A datagram is sent whole or not at all.
    fn send_pending(&mut self, i: usize) {
        let sock = &mut self.socks[i];
        let (Some(socket), Some((datagram, _))) = (sock.socket.as_ref(), sock.pending.as_ref()) else {
            return;
        };
        match socket.send(datagram) {
            Ok(n) => {
                let now = Instant::now();
                if now >= self.plan.measure_start {
                    self.tally.bytes_out += n as u64;
                }
                if let Some((_, mut req)) = sock.pending.take() {
                    req.sent = now;
                    if req.measured {
                        self.tally.sent_at(now);
                    }
                    sock.in_flight.push_back(req);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                // ECONNREFUSED here reports an ICMP "port unreachable" for an earlier datagram:
                // nobody listens. Sending on would only repeat it, so this socket stops.
                tally::count(&mut self.tally.write_errors, e.to_string());
                self.close(i);
            }
        }
    }

    /// Receives every datagram waiting on socket `i`: one `recv` per datagram, until
    /// `WouldBlock` (no short-read shortcut here: each datagram is a read of its own).
    fn receive(&mut self, i: usize) {
        loop {
            let Some(socket) = self.socks[i].socket.as_ref() else {
                return;
            };
            let n = match socket.recv(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tally::count(&mut self.tally.read_errors, e.to_string());
                    return self.close(i);
                }
            };
            let now = Instant::now();
            if now >= self.plan.measure_start {
                self.tally.bytes_in += n as u64;
            }
            let what = match self.work.parse(i, &self.buf[..n]) {
                Verdict::Ok { len, answers: Answer::Request { conn, k } } if len == n && conn == i => {
                    self.answer(i, k, now);
                    continue;
                }
                Verdict::Ok { answers, .. } => {
                    // The tag names our request, but the datagram is the wrong size: that
                    // request got its (wrong) answer, so it is not also lost later.
                    if let Answer::Request { conn, k } = answers
                        && conn == i
                    {
                        self.give_up(i, k);
                    }
                    format!("a datagram of {n} bytes answering {answers:?}")
                }
                Verdict::Incomplete => format!("a truncated datagram of {n} bytes"),
                Verdict::Mismatch(what) => what,
                other => format!("unexpected {other:?}"),
            };
            // A wrong datagram says nothing about the next one: count it, keep the socket.
            self.tally.mismatch(i, what);
        }
    }

    /// Socket `i` got the reply to its request `k`.
    fn answer(&mut self, i: usize, k: u64, now: Instant) {
        let sock = &mut self.socks[i];
        match sock.in_flight.iter().position(|r| r.k == k) {
            Some(at) => {
                if let Some(req) = sock.in_flight.remove(at) {
                    self.in_flight -= 1;
                    self.tally.complete(&req, now);
                    if req.measured {
                        self.measured_until = Some(now);
                    }
                }
            }
            // Given up as lost already (or a duplicate the network made).
            None if k < sock.next_k => self.tally.late += 1,
            None => self.tally.mismatch(i, format!("a reply to request #{k}, which was never sent")),
        }
    }

    /// Request `k` of socket `i` was answered wrongly: it leaves the flight without
    /// completing.
    fn give_up(&mut self, i: usize, k: u64) {
        let sock = &mut self.socks[i];
        if let Some(at) = sock.in_flight.iter().position(|r| r.k == k) {
            sock.in_flight.remove(at);
            self.in_flight -= 1;
        }
    }

    /// Requests older than `--timeout` are lost.
    fn expire(&mut self, now: Instant) {
        for sock in &mut self.socks {
            while sock
                .in_flight
                .front()
                .is_some_and(|r| now.saturating_duration_since(r.sent) > self.config.timeout)
            {
                sock.in_flight.pop_front();
                self.in_flight -= 1;
                self.tally.timeouts += 1;
            }
        }
    }

    fn close(&mut self, i: usize) {
        let sock = &mut self.socks[i];
        sock.socket = None;
        let abandoned = sock.in_flight.len() + usize::from(sock.pending.take().is_some());
        self.in_flight -= abandoned;
        self.tally.abandoned += abandoned as u64;
        sock.in_flight.clear();
    }
}
