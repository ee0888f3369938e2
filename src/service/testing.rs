//! A socket-free driver for services: the unit-test bench every service is tested on.
//!
//! [`Harness`] plays the reactor's part in memory. It opens connections, feeds them bytes in
//! whatever pieces a test chooses (one byte at a time, a whole pipeline at once), keeps the
//! unconsumed tail exactly as the reactor does, collects each connection's output (including
//! bytes other connections sent with [`Cx::send_to`]), and lets the test move the clock. What
//! a service does here is what it does behind a real socket.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::{CloseReason, ConnId, Cx, Outbox, Service};
use crate::stats::Stats;

struct Conn<S> {
    session: Option<S>,
    peer: SocketAddr,
    input: Vec<u8>,
    output: Vec<u8>,
    closing: bool,
    closed: Option<CloseReason>,
    timer: Option<Instant>,
    reads_paused: bool,
    idle_exempt: bool,
}

/// Drives one service with in-memory connections and a clock the test controls.
pub struct Harness<S: Service> {
    /// The service under test; tests may inspect it directly.
    pub service: S,
    /// The reactor counters the service sees through [`Cx::stats`].
    pub stats: Stats,
    now: Instant,
    wall: SystemTime,
    next_serial: u64,
    conns: BTreeMap<ConnId, Conn<S::Session>>,
    outbox: Outbox,
    scratch: Vec<u8>,
    draining: bool,
    output_limit: usize,
}

impl<S: Service> Harness<S> {
    /// A harness whose clock starts at the current instant and then moves only by
    /// [`Harness::advance`].
    pub fn new(service: S) -> Self {
        Harness::with_clock(service, Instant::now(), SystemTime::now())
    }

    /// A harness whose clock starts at the given instant and wall-clock time: two harnesses
    /// made with the same pair see the same times (the fuzz check compares two runs, and a
    /// reply that tells the time, such as kv's `TIME`, must not differ between them).
    pub fn with_clock(service: S, now: Instant, wall: SystemTime) -> Self {
        Harness {
            service,
            stats: Stats::new(now),
            now,
            wall,
            next_serial: 0,
            conns: BTreeMap::new(),
            outbox: Outbox::default(),
            scratch: Vec::new(),
            draining: false,
            output_limit: usize::MAX,
        }
    }

    /// Plays the reactor's `max_output` (no limit by default): [`Cx::output_room`] counts what
    /// a connection owes (output the test has not taken) against it.
    pub fn set_output_limit(&mut self, limit: usize) {
        self.output_limit = limit;
    }

    /// Plays the reactor's backpressure for connection `id`: while paused, the service sees
    /// [`Cx::reads_paused`] (the reactor would not be reading the peer).
    pub fn set_reads_paused(&mut self, id: ConnId, paused: bool) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.reads_paused = paused;
        }
    }

    /// Begins a graceful shutdown, as SIGTERM does: every open connection's session is told
    /// ([`Service::drain`]), and every later call sees [`Cx::draining`].
    pub fn begin_shutdown(&mut self) {
        self.draining = true;
        let open: Vec<ConnId> =
            self.conns.iter().filter(|(_, c)| !c.closing && c.closed.is_none()).map(|(id, _)| *id).collect();
        for id in open {
            self.call(id, |service, session, _input, cx| {
                service.drain(session, cx);
                0
            });
        }
    }

    /// The harness's current time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The harness's wall-clock time (moves with [`Harness::advance`]).
    pub fn wall(&self) -> SystemTime {
        self.wall
    }

    /// Moves the clock forward and fires every connection timer that is due, then the
    /// service's `tick` if it asks for one.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.wall += by;
        let due: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.closed.is_none() && c.timer.is_some_and(|t| t <= self.now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(c) = self.conns.get_mut(&id) {
                c.timer = None;
            }
            self.call(id, |service, session, _input, cx| {
                service.timer(session, cx);
                0
            });
        }
        self.service.tick(self.now);
    }

    /// Opens a connection from 127.0.0.1 and returns its id.
    pub fn open(&mut self) -> ConnId {
        let peer: SocketAddr = ([127, 0, 0, 1], 40000 + (self.next_serial % 20000) as u16).into();
        self.open_from(peer)
    }

    /// Opens a connection from `peer`.
    pub fn open_from(&mut self, peer: SocketAddr) -> ConnId {
        let id = ConnId::new(self.next_serial as usize, self.next_serial);
        self.next_serial += 1;
        self.stats.conns_open += 1;
        self.stats.conns_total += 1;
        self.scratch.clear();
        let mut cx =
            Cx::new(self.now, self.wall, id, peer, &mut self.scratch, &mut self.outbox, &self.stats, 0);
        let session = self.service.open(&mut cx);
        let closing = cx.close_requested();
        let timer = cx.timer_requested();
        let idle_exempt = cx.idle_exemption_requested().unwrap_or(false);
        let conn = Conn {
            session: Some(session),
            peer,
            input: Vec::new(),
            output: self.scratch.clone(),
            closing,
            closed: None,
            timer,
            reads_paused: false,
            idle_exempt,
        };
        self.conns.insert(id, conn);
        self.deliver_outbox();
        id
    }

    /// Feeds `bytes` to connection `id` as one read. Returns how many bytes of the buffered
    /// input the service consumed in this call. Input after [`Cx::close`] is ignored, as the
    /// reactor ignores it.
    pub fn input(&mut self, id: ConnId, bytes: &[u8]) -> usize {
        let Some(c) = self.conns.get_mut(&id) else {
            return 0;
        };
        if c.closing || c.closed.is_some() {
            return 0;
        }
        c.input.extend_from_slice(bytes);
        self.call(id, |service, session, input, cx| service.input(session, input, cx))
    }

    /// Feeds `bytes` one byte per read: the harshest split a peer can produce.
    pub fn input_bytewise(&mut self, id: ConnId, bytes: &[u8]) {
        for b in bytes {
            self.input(id, std::slice::from_ref(b));
        }
    }

    /// Closes connection `id` for `reason` (as the reactor would on EOF, error, timeout).
    pub fn close(&mut self, id: ConnId, reason: CloseReason) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(session) = c.session.take() else {
            return;
        };
        c.closed = Some(reason);
        let peer = c.peer;
        self.stats.conns_open -= 1;
        self.scratch.clear();
        let mut cx =
            Cx::new(self.now, self.wall, id, peer, &mut self.scratch, &mut self.outbox, &self.stats, 0);
        self.service.close(session, reason, &mut cx);
        let farewell = std::mem::take(&mut self.scratch);
        if let Some(c) = self.conns.get_mut(&id) {
            c.output.extend_from_slice(&farewell);
        }
        self.deliver_outbox();
    }

    /// Takes (and clears) everything written to `id` so far.
    pub fn take_output(&mut self, id: ConnId) -> Vec<u8> {
        self.conns.get_mut(&id).map(|c| std::mem::take(&mut c.output)).unwrap_or_default()
    }

    /// Everything written to `id` and not yet taken, as lossy UTF-8 (handy for text protocols).
    pub fn take_text(&mut self, id: ConnId) -> String {
        String::from_utf8_lossy(&self.take_output(id)).into_owned()
    }

    /// Bytes of input the service has left unconsumed on `id`.
    pub fn unconsumed(&self, id: ConnId) -> usize {
        self.conns.get(&id).map_or(0, |c| c.input.len())
    }

    /// True once the service asked to close `id` (or it was closed).
    pub fn is_closing(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|c| c.closing || c.closed.is_some())
    }

    /// Whether the service exempted `id` from the idle timeout ([`Cx::exempt_from_idle`]).
    pub fn is_idle_exempt(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|c| c.idle_exempt)
    }

    /// The reason `id` was closed, if [`Harness::close`] was called for it.
    pub fn closed_reason(&self, id: ConnId) -> Option<CloseReason> {
        self.conns.get(&id).and_then(|c| c.closed)
    }

    /// The timer the service last asked for on `id`, if still pending.
    pub fn timer(&self, id: ConnId) -> Option<Instant> {
        self.conns.get(&id).and_then(|c| c.timer)
    }

    fn call(
        &mut self,
        id: ConnId,
        f: impl FnOnce(&mut S, &mut S::Session, &[u8], &mut Cx<'_>) -> usize,
    ) -> usize {
        let Some(c) = self.conns.get_mut(&id) else {
            return 0;
        };
        let Some(session) = c.session.as_mut() else {
            return 0;
        };
        self.scratch.clear();
        // Output the test has not taken yet is what the peer has not read: owed.
        let owed = c.output.len();
        let mut cx =
            Cx::new(self.now, self.wall, id, c.peer, &mut self.scratch, &mut self.outbox, &self.stats, owed)
                .with_reads_paused(c.reads_paused)
                .with_draining(self.draining)
                .with_output_limit(self.output_limit);
        let consumed = f(&mut self.service, session, &c.input, &mut cx);
        assert!(consumed <= c.input.len(), "service consumed more than it was given");
        if cx.close_requested() {
            c.closing = true;
        }
        if let Some(t) = cx.timer_requested() {
            c.timer = Some(t);
        }
        if let Some(exempt) = cx.idle_exemption_requested() {
            c.idle_exempt = exempt;
        }
        c.input.drain(..consumed);
        c.output.extend_from_slice(&self.scratch);
        self.deliver_outbox();
        consumed
    }

    fn deliver_outbox(&mut self) {
        let messages: Vec<_> = self.outbox.drain().collect();
        for (to, bytes) in messages {
            if let Some(c) = self.conns.get_mut(&to)
                && c.closed.is_none()
            {
                c.output.extend_from_slice(&bytes);
            }
        }
    }
}
