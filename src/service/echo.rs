//! Echo: the article's "Hello, Server!" exchange, answered. Every byte a peer sends comes back
//! unchanged, over TCP ([`Echo`]) and over UDP ([`UdpEcho`]).
//!
//! It is the smallest possible [`Service`]: no session state (a zero-sized session costs the
//! reactor no allocation), and every byte is consumed at once, so the reactor never has to
//! keep an input buffer for an echo connection. Whatever flow control echo needs comes from
//! the reactor: when a peer does not read its echoes, its output buffer fills and the reactor
//! stops reading from it (backpressure), which is exactly TCP's own flow control passed on.

use std::net::SocketAddr;
use std::time::Instant;

use super::{Cx, DatagramService, Service};

/// TCP echo.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Service for Echo {
    type Session = ();

    fn name(&self) -> &'static str {
        "echo"
    }

    fn open(&mut self, _cx: &mut Cx<'_>) {}

    fn input(&mut self, _session: &mut (), input: &[u8], cx: &mut Cx<'_>) -> usize {
        cx.write(input);
        input.len()
    }

    fn refusal(&self) -> &[u8] {
        b"server busy: too many connections, try again later\n"
    }
}

/// UDP echo: each datagram is sent back to its sender as it came, empty ones included.
#[derive(Debug, Default, Clone, Copy)]
pub struct UdpEcho;

impl DatagramService for UdpEcho {
    fn name(&self) -> &'static str {
        "udp-echo"
    }

    fn datagram(&mut self, _from: SocketAddr, data: &[u8], _now: Instant, reply: &mut Vec<u8>) -> bool {
        reply.extend_from_slice(data);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::Harness;

    #[test]
    fn echoes_every_byte_and_consumes_all() {
        let mut h = Harness::new(Echo);
        let c = h.open();
        assert!(h.take_output(c).is_empty(), "echo sends no greeting");
        h.input(c, b"Hello, Server!");
        assert_eq!(h.take_output(c), b"Hello, Server!");
        assert_eq!(h.unconsumed(c), 0);
        let binary: Vec<u8> = (0..=255u8).collect();
        h.input(c, &binary);
        assert_eq!(h.take_output(c), binary);
        assert!(!h.is_closing(c));
    }

    #[test]
    fn udp_echo_replies_with_same_datagram_even_empty() {
        let mut s = UdpEcho;
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut reply = Vec::new();
        assert!(s.datagram(from, b"ping", Instant::now(), &mut reply));
        assert_eq!(reply, b"ping");
        reply.clear();
        assert!(s.datagram(from, b"", Instant::now(), &mut reply));
        assert!(reply.is_empty());
    }
}
