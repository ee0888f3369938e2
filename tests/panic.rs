//! The panic policy: a panic inside a service closes the connection it happened on, is
//! reported, and leaves every other connection and the process running.

mod common;

use std::io::{Read, Write};

use reactor::reactor::{Config, Reactor};
use reactor::service::{Cx, Service};

/// Echo, except that a line "boom" panics (a stand-in for a bug in a service).
struct Fragile;

impl Service for Fragile {
    type Session = ();
    fn name(&self) -> &'static str {
        "fragile"
    }
    fn open(&mut self, _cx: &mut Cx<'_>) {}
    fn input(&mut self, _: &mut (), input: &[u8], cx: &mut Cx<'_>) -> usize {
        if input.starts_with(b"boom") {
            cx.write(b"half a reply that must not be sent");
            panic!("a bug in the service");
        }
        cx.write(input);
        input.len()
    }
}

#[test]
fn a_panicking_service_call_closes_only_its_connection() {
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let addr = reactor.serve("127.0.0.1:0".parse().unwrap(), Fragile).unwrap();
    let _server = common::Server::run(reactor, addr);

    let mut bystander = common::connect(addr);
    bystander.write_all(b"hello").unwrap();
    assert_eq!(common::read_n(&mut bystander, 5), b"hello");

    let mut victim = common::connect(addr);
    victim.write_all(b"boom").unwrap();
    let mut got = Vec::new();
    // Closed with nothing sent: the output of a panicked call is dropped. (The close may
    // arrive as a reset, since the request was never read in full by a service.)
    let _ = victim.read_to_end(&mut got);
    assert!(got.is_empty(), "got {:?}", String::from_utf8_lossy(&got));

    bystander.write_all(b"still here").unwrap();
    assert_eq!(common::read_n(&mut bystander, 10), b"still here");
    let mut newcomer = common::connect(addr);
    newcomer.write_all(b"new").unwrap();
    assert_eq!(common::read_n(&mut newcomer, 3), b"new");
}
