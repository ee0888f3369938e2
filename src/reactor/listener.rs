//! Listening sockets: binding them, and taking new connections off them.
//!
//! Binding goes through `socket2` because it says outright what a server's listener needs:
//! `SO_REUSEADDR` (restart at once even while old connections sit in TIME_WAIT), the `listen`
//! backlog (a burst of connects that overflows it sees retransmitted SYNs and second-long
//! stalls), and `SO_REUSEPORT` (several reactors on one address), which neither std nor mio
//! offers. (mio's own `bind` happens to set the first two the same way; std's backlog is 128.)
//!
//! Accepting is where a server meets the limits of the machine. [`accept_one`] sorts the
//! errors `accept(2)` can give into what the reactor does next: try again, skip this
//! connection, or stop accepting for a moment because the process is out of file
//! descriptors (spinning on `EMFILE` would burn a core and change nothing).

use std::io;
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream, UdpSocket};
use socket2::{Domain, Protocol, Socket, Type};

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mio::Interest;
use rustls::ServerConfig;

use super::conn::Conn;
use super::timer::TimerKind;
use super::{Ready, tls};
use crate::service::ConnId;

/// Backlog for `listen(2)`. Linux caps it at `net.core.somaxconn` (4096 on current kernels).
pub const BACKLOG: i32 = 1024;

/// Binds a non-blocking TCP listener with `SO_REUSEADDR` and a deep backlog. With
/// `reuse_port`, several sockets (one per reactor thread) may bind the same address, and the
/// kernel spreads new connections across them (`SO_REUSEPORT`).
pub fn bind_tcp(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Fails with `AddrInUse` if any socket, in this process or another, holds `addr` (TCP, or
/// UDP with `udp`): binds a socket without `SO_REUSEPORT` and without listening, and drops
/// it. Reactors that share an address bind it with `SO_REUSEPORT`, which the kernel grants
/// to any process of the same user that sets it too: a second `serve --reactors N` on the
/// same ports would start without a word and take a share of every port's clients. Checked
/// first, it fails instead, as a single reactor's exclusive bind does.
pub fn check_free(addr: SocketAddr, udp: bool) -> io::Result<()> {
    let (kind, protocol) = if udp { (Type::DGRAM, Protocol::UDP) } else { (Type::STREAM, Protocol::TCP) };
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    // As the real listener will: TIME_WAIT leftovers of an earlier run do not count.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())
}

/// Binds a non-blocking UDP socket, with `SO_REUSEPORT` if asked (datagrams are then spread
/// across the sockets bound to the address by a hash of the sender).
pub fn bind_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

/// What one `accept` call produced.
#[derive(Debug)]
pub enum Accepted {
    /// A new connection.
    Conn(TcpStream, SocketAddr),
    /// The backlog is empty.
    Drained,
    /// This one connection failed before we got it (for example it was reset while queued);
    /// keep accepting.
    Skip(io::Error),
    /// Out of file descriptors or kernel memory: pause accepting for a moment.
    Exhausted(io::Error),
    /// Anything else: log and pause too, rather than spin on an error we do not understand.
    Failed(io::Error),
}

// Linux errno values (asm-generic/errno-base.h, errno.h). std has no ErrorKind for them.
const ENFILE: i32 = 23;
const EMFILE: i32 = 24;
const ENOBUFS: i32 = 105;
const ENOMEM: i32 = 12;
const ECONNABORTED: i32 = 103;
const EPROTO: i32 = 71;
const EPERM: i32 = 1;

/// Accepts one connection, retrying `Interrupted`, and classifies the result.
pub fn accept_one(listener: &TcpListener) -> Accepted {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => return Accepted::Conn(stream, peer),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Accepted::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return match e.raw_os_error() {
                    Some(EMFILE | ENFILE | ENOBUFS | ENOMEM) => Accepted::Exhausted(e),
                    // The peer gave up before we accepted it, or a firewall said no: that
                    // connection is lost, the listener is fine.
                    Some(ECONNABORTED | EPROTO | EPERM) => Accepted::Skip(e),
                    _ if e.kind() == io::ErrorKind::ConnectionAborted => Accepted::Skip(e),
                    _ => Accepted::Failed(e),
                };
            }
        }
    }
}

// The reactor's side: taking connections off a listener, within a budget.
impl super::Reactor {
    /// Accepts up to `accept_budget` connections from listener `i`.
    pub(super) fn accept(&mut self, i: usize) {
        for _ in 0..self.config.accept_budget {
            let Some(Some(listener)) = self.listeners.get_mut(i) else {
                return;
            };
            if listener.paused {
                return;
            }
            match accept_one(&listener.socket) {
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
        if let Some(Some(listener)) = self.listeners.get_mut(i)
            && !listener.queued
        {
            listener.queued = true;
            self.ready.push_back(Ready::Listener(i));
        }
    }

    pub(super) fn open_conn(
        &mut self,
        service: usize,
        tls: Option<Arc<ServerConfig>>,
        proxy: bool,
        mut stream: TcpStream,
        peer: SocketAddr,
    ) {
        self.stats.conns_total += 1;
        if !self.admit() {
            self.stats.conns_refused += 1;
            // With shared places, the count that refused it is the process's, not this reactor's.
            let open =
                self.shared_open.as_ref().map_or(self.stats.conns_open, |o| o.load(Ordering::Relaxed) as u64);
            log::debug!("refusing {peer}: {open} connections open (max {})", self.config.max_conns);
            // Best effort: a fresh socket's send buffer is empty, so this short write lands.
            // (A TLS peer could not read a plaintext refusal: it just sees the close.)
            if tls.is_none() {
                let _ = std::io::Write::write(&mut stream, self.services[service].refusal());
            }
            // Closing a socket with unread bytes sends RST, which can destroy the refusal
            // before the peer reads it. Send FIN and read away what the peer already sent (a
            // request written right after connect); a few reads at most, and bytes that come
            // later still meet a closed socket.
            let _ = stream.shutdown(std::net::Shutdown::Write);
            for _ in 0..4 {
                match std::io::Read::read(&mut stream, &mut self.rbuf) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
            return;
        }
        let session = match tls.as_ref().map(tls::session).transpose() {
            Ok(session) => session,
            Err(e) => {
                log::warn!("{peer}: TLS session: {e}");
                return self.release();
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
            return self.release();
        }
        log::info!("Connection from {peer}");
        log::debug!("{id} {peer}: accepted ({} service)", self.services[service].name());
        let mut conn = Conn::new(stream, id, peer, service, self.now);
        let tls = session.is_some();
        if tls || proxy {
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
        // Behind a PROXY header the service opens once the header names the client, behind
        // TLS once the handshake is done: the service meets only peers that got that far.
        if !proxy && !tls {
            self.open_session(key);
            // A service may turn the peer away in its greeting (`cx.close()` in `open`, as
            // a full chat room does). No event will come for that: if the greeting went out
            // whole, the close must go on to FIN now.
            self.settle(key);
        }
    }

    /// Takes one of the `max_conns` places, or says there is none. With several reactors the
    /// places are counted in one atomic they share ([`Reactor::share_conn_limit`]), taken with
    /// a compare-and-swap so two reactors accepting at once cannot both take the last one.
    fn admit(&mut self) -> bool {
        let max = self.config.max_conns;
        match &self.shared_open {
            Some(open) => {
                open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
            }
            None => self.stats.conns_open < max as u64,
        }
    }

    /// Gives back a place taken by [`Reactor::admit`] (the connection closed, or never opened).
    pub(super) fn release(&mut self) {
        if let Some(open) = &self.shared_open {
            open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
