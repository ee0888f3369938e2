//! `reactor load` against real sockets on 127.0.0.1: it must catch a server that answers
//! wrongly, send exactly what it was asked to, print JSON that parses, and verify chat's
//! fan-out and UDP echo against the real services.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::echo_server;
use reactor::load::{self, LoadConfig, Service, Stop};
use reactor::reactor::{Config, Reactor};
use reactor::service::chat::{Chat, ChatConfig};

/// What a test echo peer does to the bytes it returns.
#[derive(Clone, Copy)]
enum Fault {
    None,
    /// Flip the bits of the stream's byte at this offset.
    Corrupt(u64),
    /// Leave out the stream's byte at this offset.
    Drop(u64),
}

/// A thread-per-connection echo peer written for the tests: it counts every byte it receives
/// and may break the stream on purpose. It serves `conns` connections and then stops.
struct Peer {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

fn peer(conns: usize, fault: Fault) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let thread = std::thread::spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..conns {
            let Ok((stream, _)) = listener.accept() else { break };
            let counter = Arc::clone(&counter);
            handlers.push(std::thread::spawn(move || serve(stream, fault, &counter)));
        }
        for h in handlers {
            let _ = h.join();
        }
    });
    Peer { addr, received, thread }
}

fn serve(mut stream: TcpStream, fault: Fault, counter: &AtomicU64) {
    // A bounded life: a test that goes wrong ends here instead of hanging.
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut offset = 0u64;
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        counter.fetch_add(n as u64, Ordering::SeqCst);
        let mut reply = Vec::with_capacity(n);
        for (i, &b) in buf[..n].iter().enumerate() {
            match fault {
                Fault::Corrupt(at) if offset + i as u64 == at => reply.push(!b),
                Fault::Drop(at) if offset + i as u64 == at => {}
                _ => reply.push(b),
            }
        }
        offset += n as u64;
        if stream.write_all(&reply).is_err() {
            return;
        }
    }
}

fn reactor_load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reactor"))
        .arg("load")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run reactor load")
}

#[test]
fn a_corrupted_or_dropped_byte_is_a_mismatch_and_fails_the_run() {
    for fault in [Fault::Corrupt(1000), Fault::Drop(700)] {
        let peer = peer(1, fault);
        let addr = peer.addr.to_string();
        let out = reactor_load(&["echo", "--addr", &addr, "--conns", "1", "--requests", "100"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "a wrong reply must fail the run:\n{stdout}");
        assert!(stdout.contains("mismatches 1"), "{stdout}");
        assert!(stdout.contains("MISMATCH connection 0"), "{stdout}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("verification failed"));
        peer.thread.join().unwrap();
    }
}

#[test]
fn requests_n_sends_exactly_n_across_connections() {
    // 1001 over 4 connections with 3 in flight each: not a multiple of either.
    let peer = peer(4, Fault::None);
    let addr = peer.addr.to_string();
    let out = reactor_load(&["echo", "--addr", &addr, "-c", "4", "-d", "3", "-n", "1001", "-s", "100"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    peer.thread.join().unwrap(); // every connection closed, so every byte was counted
    assert_eq!(peer.received.load(Ordering::SeqCst), 1001 * 100);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1001 requests in"));
}

#[test]
fn json_output_parses_and_has_every_result() {
    let server = echo_server(Config::default());
    let addr = server.tcp.to_string();
    let out = reactor_load(&["echo", "--addr", &addr, "-c", "3", "-n", "300", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints one JSON object");
    assert_eq!(v["service"], "echo");
    assert_eq!(v["sent"], 300);
    assert_eq!(v["completed"], 300);
    assert_eq!(v["mismatches"], 0);
    assert_eq!(v["verified"], "true");
    assert_eq!(v["conns_opened"], 3);
    assert!(v["latency_p99_us"].as_u64().unwrap() >= v["latency_p50_us"].as_u64().unwrap());
    assert!(v["started"].as_str().unwrap().ends_with('Z'));
    assert!(v["connect_errors"].is_object());
}

#[test]
fn no_server_is_a_connect_error_with_the_os_reason() {
    // Bind then drop: the port is (almost certainly) closed for the next few milliseconds.
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let out = reactor_load(&["echo", "--addr", &addr, "-c", "2", "-n", "10"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn chat_fan_out_reaches_every_other_member() {
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let addr = reactor.serve("127.0.0.1:0".parse().unwrap(), Chat::new(ChatConfig::default())).unwrap();
    let handle = reactor.handle();
    let thread = std::thread::spawn(move || {
        reactor.run().unwrap();
    });
    let config =
        LoadConfig { conns: 5, depth: 2, stop: Stop::Requests(200), ..LoadConfig::new(Service::Chat, addr) };
    let report = load::run(&config).expect("chat run");
    handle.stop();
    thread.join().unwrap();
    assert!(report.verified(), "{}", report.render_text());
    assert_eq!(report.tally.sent, 200);
    assert_eq!(report.tally.completed, 200, "{}", report.render_text());
    // Every line reached the 4 other members.
    assert!(report.tally.bytes_in >= 4 * report.tally.bytes_out, "{}", report.render_text());
}

#[test]
fn udp_echo_is_verified_datagram_by_datagram() {
    let server = echo_server(Config::default());
    let config = LoadConfig {
        conns: 4,
        depth: 4,
        stop: Stop::Requests(2000),
        ..LoadConfig::new(Service::Udp, server.udp)
    };
    let report = load::run(&config).expect("udp run");
    assert!(report.verified(), "{}", report.render_text());
    assert_eq!(report.tally.sent, 2000);
    // Loopback does not lose datagrams under this light load, but UDP may: allow a few.
    assert!(report.tally.completed + report.tally.timeouts == 2000, "{}", report.render_text());
    assert!(report.tally.completed >= 1990, "{}", report.render_text());
}

#[test]
fn open_loop_sends_at_the_target_rate() {
    let server = echo_server(Config::default());
    let config = LoadConfig {
        conns: 2,
        rate: Some(2000.0),
        stop: Stop::Duration(Duration::from_millis(500)),
        ..LoadConfig::new(Service::Echo, server.tcp)
    };
    let report = load::run(&config).expect("open-loop run");
    assert!(report.verified());
    // 500 ms at 2000/s is 1000 requests, give or take scheduling at the edges.
    assert!((950..=1010).contains(&report.tally.sent), "{}", report.render_text());
}
