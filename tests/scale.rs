//! Scale-out: several reactors sharing a port through SO_REUSEPORT, and the PROXY protocol
//! that lets the real client address survive a TCP load balancer.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use reactor::proxy;
use reactor::reactor::{Config, ListenOptions, Reactor};
use reactor::service::echo::Echo;
use reactor::service::kv::{Kv, KvConfig};

#[test]
fn two_reactors_share_a_port_and_both_serve() {
    let reuse = ListenOptions { reuse_port: true, ..ListenOptions::default() };
    let mut first = Reactor::new(Config::default()).unwrap();
    let svc = first.add_service(Echo);
    let addr = first.listen_with("127.0.0.1:0".parse().unwrap(), svc, reuse.clone()).unwrap();
    let mut second = Reactor::new(Config::default()).unwrap();
    let svc = second.add_service(Echo);
    assert_eq!(second.listen_with(addr, svc, reuse).unwrap(), addr);
    let handles = [first.handle(), second.handle()];
    let threads =
        [std::thread::spawn(move || first.run().unwrap()), std::thread::spawn(move || second.run().unwrap())];

    let mut clients: Vec<_> = (0..200).map(|_| common::connect(addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let msg = format!("message {i:03}");
        c.write_all(msg.as_bytes()).unwrap();
        assert_eq!(common::read_n(c, msg.len()), msg.as_bytes());
    }
    drop(clients);
    for h in &handles {
        h.shutdown();
    }
    let stats: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let per_reactor: Vec<u64> = stats.iter().map(|s| s.conns_total).collect();
    assert_eq!(per_reactor.iter().sum::<u64>(), 200);
    assert!(per_reactor.iter().all(|&n| n > 0), "the kernel spread nothing: {per_reactor:?}");
}

fn proxy_server(proxy_protocol: bool) -> (SocketAddr, SocketAddr, common::Server) {
    let opts = ListenOptions { proxy_protocol, ..ListenOptions::default() };
    let mut reactor =
        Reactor::new(Config { handshake_timeout: Duration::from_millis(500), ..Config::default() }).unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let svc = reactor.add_service(Echo);
    let echo = reactor.listen_with(any, svc, opts.clone()).unwrap();
    // The clients the headers name are not on loopback: kv's protected mode would refuse them.
    let svc = reactor.add_service(Kv::new(KvConfig { protected_mode: false, ..KvConfig::default() }));
    let kv = reactor.listen_with(any, svc, opts).unwrap();
    (echo, kv, common::Server::run(reactor, echo))
}

#[test]
fn proxy_v1_and_v2_headers_are_stripped_and_name_the_client() {
    let (echo, kv, _s) = proxy_server(true);
    let client: SocketAddr = "203.0.113.7:40001".parse().unwrap();
    let balancer_side: SocketAddr = "192.0.2.1:443".parse().unwrap();

    // v1, header and payload in one write: only the payload is echoed.
    let mut c = common::connect(echo);
    c.write_all(format!("{}Hello, Server!", proxy::encode_v1(client, balancer_side)).as_bytes()).unwrap();
    assert_eq!(common::read_n(&mut c, 14), b"Hello, Server!");

    // v2, the header split across writes.
    let header = proxy::encode_v2(client, balancer_side);
    let mut c = common::connect(echo);
    c.write_all(&header[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    c.write_all(&header[5..]).unwrap();
    c.write_all(b"v2").unwrap();
    assert_eq!(common::read_n(&mut c, 2), b"v2");

    // The kv service sees the client's address, not the balancer's.
    let mut c = common::connect(kv);
    c.write_all(&header).unwrap();
    c.write_all(b"CLIENT LIST\r\n").unwrap();
    let mut reply = vec![0; 512];
    let n = c.read(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply[..n]);
    assert!(reply.contains("addr=203.0.113.7:40001"), "{reply}");
}

#[test]
fn garbage_or_silence_on_a_proxy_listener_is_closed() {
    let (echo, _kv, _s) = proxy_server(true);
    let mut liar = common::connect(echo);
    liar.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = liar.read_to_end(&mut got);
    assert!(got.is_empty(), "nothing is echoed before a valid header: {got:?}");
    let mut silent = common::connect(echo);
    let started = std::time::Instant::now();
    let _ = silent.read_to_end(&mut got);
    assert!(started.elapsed() < Duration::from_secs(5), "a connection that never sends its header is cut");
}

#[test]
fn without_the_flag_a_proxy_header_is_ordinary_data() {
    let (echo, _kv, _s) = proxy_server(false);
    let line = proxy::encode_v1("203.0.113.7:1".parse().unwrap(), "192.0.2.1:2".parse().unwrap());
    let mut c = common::connect(echo);
    c.write_all(line.as_bytes()).unwrap();
    assert_eq!(common::read_n(&mut c, line.len()), line.as_bytes());
}

#[test]
fn serve_with_two_reactors_runs_and_stops_cleanly() {
    let mut server = common::Binary::start(&[
        "serve",
        "--reactors",
        "2",
        "--echo",
        "127.0.0.1:0",
        "--udp-echo",
        "127.0.0.1:0",
    ]);
    let addr = server.addr("echo:tcp");
    for i in 0..50 {
        let mut c = common::connect(addr);
        let msg = format!("hello {i}");
        c.write_all(msg.as_bytes()).unwrap();
        assert_eq!(common::read_n(&mut c, msg.len()), msg.as_bytes());
    }
    let out = common::output(std::process::Command::new(env!("CARGO_BIN_EXE_reactor")).args([
        "send",
        "--udp",
        "--addr",
        &server.addr("udp-echo:udp").to_string(),
        "datagram",
    ]));
    assert_eq!(out.stdout, b"datagram");
    server.signal("-TERM");
    assert_eq!(server.wait(Duration::from_secs(5)), Some(0));
}

#[test]
fn stats_report_the_whole_process_with_two_reactors() {
    let server = common::Binary::start(&["serve", "--reactors", "2", "--http", "127.0.0.1:0"]);
    let addr = server.addr("http:tcp");
    let get = |path: &str| {
        let mut c = common::connect(addr);
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        reply
    };
    for _ in 0..40 {
        assert!(get("/").ends_with("Hello, World!\n"));
    }
    // Counters are exchanged every 200 ms; then either reactor reports all 40 connections
    // (plus the /stats requests themselves, which land on either). The HTTP service's own
    // counters too: each reactor has its own `Http`, and each used to report only its own
    // requests, so `http_requests_total` jumped between about 20 and about 40 from one scrape
    // to the next, a counter going down, which Prometheus takes for a restart.
    std::thread::sleep(Duration::from_millis(600));
    let mut last_requests = 0;
    for _ in 0..6 {
        let reply = get("/stats");
        let body = reply.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        let total = json["reactor"]["conns_total"].as_u64().unwrap();
        assert!(total >= 41, "a reactor reported only {total} of 40+ connections: {json}");
        let requests = json["http"]["requests"].as_u64().unwrap();
        assert!(requests >= 41, "a reactor reported only {requests} of 40+ HTTP requests: {json}");
        assert!(json["http"]["responses"]["2xx"].as_u64().unwrap() >= 40, "{json}");
        assert!(requests > last_requests, "http requests went from {last_requests} to {requests}");
        last_requests = requests;
    }
    let metrics = get("/metrics");
    let sample = metrics.lines().find_map(|l| l.strip_prefix("http_requests_total ")).unwrap();
    assert!(sample.parse::<u64>().unwrap() > last_requests, "{metrics}");
}

#[test]
fn max_conns_bounds_the_process_not_each_reactor() {
    // Two reactors, three places. Connections land on either reactor (the kernel hashes them
    // across the two SO_REUSEPORT sockets); however they fall, exactly three are served.
    let server =
        common::Binary::start(&["serve", "--reactors", "2", "--max-conns", "3", "--echo", "127.0.0.1:0"]);
    let addr = server.addr("echo:tcp");
    let mut served = Vec::new();
    let mut refused = 0;
    for i in 0..16u8 {
        // A refused connection is told at once; a served one hears nothing until it speaks.
        let mut c = common::connect(addr);
        c.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut told = String::new();
        match c.read_to_string(&mut told) {
            Ok(_) => {
                assert!(told.starts_with("server busy"), "{told:?}");
                refused += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                c.write_all(&[b'a' + i]).unwrap();
                assert_eq!(common::read_n(&mut c, 1), [b'a' + i]);
                served.push(c);
            }
            Err(e) => panic!("connection {i}: {e}"),
        }
    }
    assert_eq!((served.len(), refused), (3, 13));
}

/// Reactor counters in `/stats` never go down from one scrape to the next while other
/// reactors are busy. Each report used to add this reactor's live counters to the others'
/// copies as this reactor last fetched them (up to 200 ms old), so a scrape served by a quiet
/// reactor could read an older copy of the busy one's counts than the scrape before had
/// seen live: `bytes_in` and `conns_total` went backwards in about a third of the scrapes
/// under load, which Prometheus reads as counter resets.
#[test]
fn reactor_counters_never_go_down_between_scrapes_under_load() {
    let server = common::Binary::start(&["serve", "--reactors", "2", "--http", "127.0.0.1:0"]);
    let addr = server.addr("http:tcp");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut c = common::connect(addr);
                    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
                    let mut reply = String::new();
                    c.read_to_string(&mut reply).unwrap();
                    assert!(reply.ends_with("Hello, World!\n"), "{reply}");
                }
            })
        })
        .collect();
    let mut last: Option<[u64; 3]> = None;
    let mut backwards = Vec::new();
    for _ in 0..100 {
        let mut c = common::connect(addr);
        c.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        let body = reply.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        let r = &json["reactor"];
        let now = ["conns_total", "bytes_in", "reads"].map(|k| r[k].as_u64().unwrap());
        if let Some(before) = last
            && now.iter().zip(before).any(|(n, b)| *n < b)
        {
            backwards.push((before, now));
        }
        last = Some(now);
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert!(backwards.is_empty(), "counters went down: {backwards:?}");
}
