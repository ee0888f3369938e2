//! Building a reactor before it runs: the services, the sockets they listen on, and what it
//! shares with the other reactors of a process. Nothing here runs during the loop; `mod.rs`
//! is the loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize};
use std::time::{Instant, SystemTime};

use mio::{Interest, Poll, Waker};
use rustls::ServerConfig;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use std::collections::VecDeque;

use super::datagram::Datagram;
use super::timer::Timers;
use super::{
    Config, Handle, ListenOptions, Listener, Phase, READ_CHUNK, Reactor, ServiceId, listener, shutdown, token,
};
use crate::error::Error;
use crate::service::{DatagramService, Outbox, Service};
use crate::stats::{Stats, StatsBoard};

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
            due: Vec::new(),
            reap: Vec::new(),
            rbuf: vec![0; READ_CHUNK],
            out: Vec::new(),
            outbox: Outbox::default(),
            delivering: false,
            plain: vec![0; READ_CHUNK],
            cipher: Vec::new(),
            stats: Stats::new(now),
            config,
            now,
            wall: SystemTime::now(),
            next_serial: 0,
            phase: Phase::Running,
            stopping_since: None,
            board: None,
            shared_open: None,
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
        self.listeners.push(Some(Listener {
            socket,
            service: service.0,
            tls,
            proxy,
            paused: false,
            queued: false,
        }));
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
        let (queue, bytes) = (self.config.datagram_queue, self.config.max_output);
        self.datagrams.push(Some(Datagram::new(socket, token, Box::new(service), queue, bytes)));
        Ok(local)
    }

    /// Joins a [`StatsBoard`] as reactor `index`: counters are exchanged a few times a second,
    /// so `/stats`, `/metrics`, `INFO` and `--stats` report the whole process.
    pub fn share_stats(&mut self, board: StatsBoard, index: usize) {
        self.board = Some((board, index));
    }

    /// Counts this reactor's open connections in `open`, which other reactors of the process
    /// share, so that [`Config::max_conns`] bounds them all together rather than each alone.
    /// Places are given back as connections close, and by [`Reactor::run`] on its way out;
    /// a reactor that panics keeps its places, so give the others a fresh count then.
    pub fn share_conn_limit(&mut self, open: Arc<AtomicUsize>) {
        self.shared_open = Some(open);
    }

    /// A handle that stops this reactor from another thread.
    pub fn handle(&self) -> Handle {
        Handle { waker: Arc::clone(&self.waker), request: Arc::clone(&self.request) }
    }

    /// The counters so far (for embedding; the running loop owns them).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
