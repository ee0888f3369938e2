//! UDP sockets: one datagram in, at most one datagram out, and a small queue for the rare
//! moment the socket's send buffer is full.
//!
//! UDP has no connections, so there is no per-peer state in the reactor at all: a datagram
//! service answers each datagram on its own. What UDP does have is loss: when the kernel will
//! not take a reply (`WouldBlock`), we keep it in a bounded queue and ask for WRITABLE; past the
//! bound (a number of replies, and of bytes: 1,024 replies of 64 KiB would be 64 MiB) we drop
//! the reply and count it, as a router would. Reading through a 64 KiB buffer
//! means no datagram is ever truncated (the largest UDP payload over IPv4 is 65,507 bytes).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use crate::service::DatagramService;

use super::Ready;
use super::call::guarded_datagram;

/// A bound UDP socket with its service and its send queue.
pub struct Datagram {
    pub(crate) socket: UdpSocket,
    pub(crate) token: Token,
    pub(crate) service: Box<dyn DatagramService>,
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Bytes of the replies in `queue`.
    queue_bytes: usize,
    queue_limit: usize,
    queue_bytes_limit: usize,
    writable_interest: bool,
    /// In the reactor's ready queue already (its receive budget ran out).
    pub(crate) queued: bool,
}

/// What happened to one reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// The kernel took it.
    Now,
    /// It waits in the queue.
    Queued,
    /// The queue was full (or the send failed): it is gone.
    Dropped,
}

impl Datagram {
    /// Wraps a bound socket (already registered for READABLE under `token`). At most
    /// `queue_limit` replies and `queue_bytes_limit` bytes of them wait for the socket.
    pub fn new(
        socket: UdpSocket,
        token: Token,
        service: Box<dyn DatagramService>,
        queue_limit: usize,
        queue_bytes_limit: usize,
    ) -> Self {
        Datagram {
            socket,
            token,
            service,
            queue: VecDeque::new(),
            queue_bytes: 0,
            queue_limit,
            queue_bytes_limit,
            writable_interest: false,
            queued: false,
        }
    }

    /// One `recv_from`, retrying `Interrupted`. `Ok(None)` means nothing is waiting.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        loop {
            match self.socket.recv_from(buf) {
                Ok(got) => return Ok(Some(got)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `reply` to `to`, or queues it behind earlier replies, or drops it.
    pub fn send(&mut self, to: SocketAddr, reply: &[u8], registry: &Registry) -> Sent {
        if self.queue.is_empty() {
            match send_to(&self.socket, reply, to) {
                Ok(true) => return Sent::Now,
                Ok(false) => {}
                Err(e) => {
                    // A failed send to one peer (say, an ICMP error reported late) must not
                    // affect the others.
                    log::debug!("udp send to {to}: {e}");
                    return Sent::Dropped;
                }
            }
        }
        let sent = self.enqueue(to, reply);
        if sent == Sent::Queued {
            self.set_writable(true, registry);
        }
        sent
    }

    /// Keeps `reply` for later, if the queue has room for it in count and in bytes.
    fn enqueue(&mut self, to: SocketAddr, reply: &[u8]) -> Sent {
        if self.queue.len() >= self.queue_limit || self.queue_bytes + reply.len() > self.queue_bytes_limit {
            return Sent::Dropped;
        }
        self.queue_bytes += reply.len();
        self.queue.push_back((to, reply.to_vec()));
        Sent::Queued
    }

    /// Sends queued replies until the kernel pushes back. Returns (sent, dropped).
    pub fn flush(&mut self, registry: &Registry) -> (u64, u64) {
        let (mut sent, mut dropped) = (0, 0);
        while let Some((to, reply)) = self.queue.front() {
            match send_to(&self.socket, reply, *to) {
                Ok(true) => sent += 1,
                Ok(false) => return (sent, dropped),
                Err(e) => {
                    log::debug!("udp send to {to}: {e}");
                    dropped += 1;
                }
            }
            if let Some((_, reply)) = self.queue.pop_front() {
                self.queue_bytes -= reply.len();
            }
        }
        self.set_writable(false, registry);
        (sent, dropped)
    }

    fn set_writable(&mut self, on: bool, registry: &Registry) {
        if self.writable_interest == on {
            return;
        }
        let interest = if on { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        match registry.reregister(&mut self.socket, self.token, interest) {
            Ok(()) => self.writable_interest = on,
            Err(e) => log::warn!("udp socket: reregister: {e}"),
        }
    }
}

/// One `send_to`: `Ok(true)` sent, `Ok(false)` the socket buffer is full.
fn send_to(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) -> io::Result<bool> {
    loop {
        match socket.send_to(bytes, to) {
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

// The reactor's side: receiving within a budget, answering, and flushing the queue.
impl super::Reactor {
    pub(super) fn datagram_read(&mut self, i: usize) {
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
        if !dgram.queued {
            dgram.queued = true;
            self.ready.push_back(Ready::Datagram(i));
        }
    }

    pub(super) fn datagram_flush(&mut self, i: usize) {
        let Some(Some(dgram)) = self.datagrams.get_mut(i) else {
            return;
        };
        let (sent, dropped) = dgram.flush(self.poll.registry());
        self.stats.datagrams_out += sent;
        self.stats.datagrams_dropped += dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::echo::UdpEcho;

    /// The queue is bounded in bytes as well as in replies: a few large replies fill it as
    /// surely as many small ones, and a sent reply gives its bytes back.
    #[test]
    fn the_send_queue_is_bounded_in_bytes_and_in_count() {
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut d = Datagram::new(socket, Token(0), Box::new(UdpEcho), 4, 100_000);
        let big = vec![0; 40_000];
        assert_eq!(d.enqueue(to, &big), Sent::Queued);
        assert_eq!(d.enqueue(to, &big), Sent::Queued);
        assert_eq!(d.enqueue(to, &big), Sent::Dropped, "120,000 bytes would pass the bound");
        assert_eq!(d.enqueue(to, &[1; 100]), Sent::Queued, "a small one still fits");
        assert_eq!(d.enqueue(to, &[2; 100]), Sent::Queued);
        assert_eq!(d.enqueue(to, &[3; 1]), Sent::Dropped, "four replies: the count's bound");
        let poll = mio::Poll::new().unwrap();
        assert_eq!(d.flush(poll.registry()), (4, 0));
        assert_eq!(d.queue_bytes, 0);
        assert_eq!(d.enqueue(to, &big), Sent::Queued, "sent replies gave their room back");
    }
}
