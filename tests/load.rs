//! `reactor load` against real sockets on 127.0.0.1: it must catch a server that answers
//! wrongly, send exactly what it was asked to, print JSON that parses, keep every connection
//! busy, and verify chat's fan-out, UDP echo, HTTP, kv and echo over TLS against the real
//! services.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::echo_server;
use reactor::load::{self, LoadConfig, Service, Stop};
use reactor::reactor::{Config, Reactor};
use reactor::service::chat::{Chat, ChatConfig};
use reactor::service::echo::Echo;
use reactor::service::http::{Http, HttpConfig};
use reactor::service::kv::{Kv, KvConfig};
use reactor::tls::{self, Identity};

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
/// and may break the stream on purpose. It serves up to `conns` connections.
struct Peer {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    /// Connections that sent at least one byte.
    active: Arc<AtomicUsize>,
    /// Set by [`Peer::finish`]: the client has exited, so no more connections will come.
    client_done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Peer {
    /// Called once the client has exited: accepts what is still queued, waits for every
    /// connection's thread, and returns. Bounded, so a client that opened fewer connections
    /// than planned fails the test's assertions instead of hanging it in `accept`.
    fn finish(&mut self) {
        self.client_done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            common::join_within(thread, Duration::from_secs(30));
        }
    }
}

fn peer(conns: usize, fault: Fault) -> Peer {
    // A backlog well above `conns`: std's 128 would drop SYNs when the load generator opens
    // 200 connections in 20 ms on a busy machine, and a dropped SYN is retried only after a
    // second, by which time a short run is over.
    let listener = listener_with_backlog(1024);
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let active = Arc::new(AtomicUsize::new(0));
    let client_done = Arc::new(AtomicBool::new(false));
    let (counter, actives, done) = (Arc::clone(&received), Arc::clone(&active), Arc::clone(&client_done));
    let thread = std::thread::spawn(move || {
        let mut handlers = Vec::new();
        while handlers.len() < conns {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking");
                    let (counter, actives) = (Arc::clone(&counter), Arc::clone(&actives));
                    handlers.push(std::thread::spawn(move || serve(stream, fault, &counter, &actives)));
                }
                // Nothing queued: if the client has exited, nothing more will come.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => break,
            }
        }
        for h in handlers {
            let _ = h.join();
        }
    });
    Peer { addr, received, active, client_done, thread: Some(thread) }
}

/// A listener on 127.0.0.1:0 with the given accept backlog (std's `bind` always asks for 128).
fn listener_with_backlog(backlog: i32) -> TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind");
    socket.listen(backlog).expect("listen");
    TcpListener::from(socket)
}

fn serve(mut stream: TcpStream, fault: Fault, counter: &AtomicU64, active: &AtomicUsize) {
    // A bounded life: a test that goes wrong ends here instead of hanging.
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut offset = 0u64;
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if offset == 0 {
            active.fetch_add(1, Ordering::SeqCst);
        }
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
    common::output(Command::new(env!("CARGO_BIN_EXE_reactor")).arg("load").args(args).env("RUST_LOG", "warn"))
}

/// `reactor load ARGS --json`, which must succeed: its one JSON record.
fn load_json(args: &[&str]) -> serde_json::Value {
    let out = reactor_load(&[args, &["--json"]].concat());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints one JSON object");
    assert!(out.status.success(), "{v}");
    v
}

#[test]
fn a_corrupted_or_dropped_byte_is_a_mismatch_and_fails_the_run() {
    for fault in [Fault::Corrupt(1000), Fault::Drop(700)] {
        let mut peer = peer(1, fault);
        let addr = peer.addr.to_string();
        let out = reactor_load(&["echo", "--addr", &addr, "--conns", "1", "--requests", "100"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "a wrong reply must fail the run:\n{stdout}");
        assert!(stdout.contains("mismatches 1"), "{stdout}");
        assert!(stdout.contains("MISMATCH connection 0"), "{stdout}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("verification failed"));
        peer.finish();
    }
}

#[test]
fn requests_n_sends_exactly_n_across_connections() {
    // 1001 over 4 connections with 3 in flight each: not a multiple of either.
    let mut peer = peer(4, Fault::None);
    let addr = peer.addr.to_string();
    let out = reactor_load(&["echo", "--addr", &addr, "-c", "4", "-d", "3", "-n", "1001", "-s", "100"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    peer.finish(); // every connection closed, so every byte was counted
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
    assert_eq!(v["verified"], true, "a boolean, so `jq -e .verified` means what it says");
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
fn connections_still_connecting_at_the_end_are_reported() {
    // A listener that never accepts, with the smallest backlog: Linux completes one or two
    // handshakes into the queue and drops the other SYNs, so those connects are still
    // pending (retrying after a second) when a 0.3 s run ends.
    let listener = listener_with_backlog(0);
    let addr = listener.local_addr().unwrap().to_string();
    let out = reactor_load(&["echo", "--addr", &addr, "-c", "8", "--duration", "0.3", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let unfinished = v["connect_errors"]["connect unfinished when the run ended"].as_u64().unwrap_or(0);
    let opened = v["conns_opened"].as_u64().unwrap();
    assert!(unfinished >= 4, "{v}");
    assert_eq!(opened + unfinished, 8, "every connection is either opened or reported: {v}");
    drop(listener);
}

#[test]
fn chat_fan_out_reaches_every_other_member() {
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let addr = reactor.serve("127.0.0.1:0".parse().unwrap(), Chat::new(ChatConfig::default())).unwrap();
    let server = common::Server::run(reactor, addr);
    let config =
        LoadConfig { conns: 5, depth: 2, stop: Stop::Requests(200), ..LoadConfig::new(Service::Chat, addr) };
    let report = load::run(&config).expect("chat run");
    drop(server);
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
    // 500 ms at 2000/s is 1000 requests. Requests are sent by their schedule, so a late
    // client catches up; only a stall at the very end (a busy CI machine) sends fewer. A
    // wrong rate would be far off either way.
    assert!((900..=1010).contains(&report.tally.sent), "{}", report.render_text());
}

#[test]
fn every_connection_sends_in_duration_mode() {
    // 200 connections start 100 µs apart over 20 ms; most open before sending may start and
    // are told "not yet". Each must be woken when the ramp ends (fixed in 5fe5963: they
    // used to wait forever, and the run quietly measured fewer connections).
    let conns = 200;
    let mut peer = peer(conns, Fault::None);
    let addr = peer.addr.to_string();
    let out =
        reactor_load(&["echo", "--addr", &addr, "-c", &conns.to_string(), "--duration", "0.5", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    peer.finish();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["conns_opened"], conns);
    assert_eq!(peer.active.load(Ordering::SeqCst), conns, "connections that sent nothing: {v}");
}

/// Starts one service on an in-process reactor; stopped when the returned server drops.
fn serve_one<S: reactor::service::Service + Send + 'static>(service: S) -> common::Server {
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let addr = reactor.serve("127.0.0.1:0".parse().unwrap(), service).unwrap();
    common::Server::run(reactor, addr)
}

#[test]
fn kv_values_are_verified_against_the_real_kv_service() {
    let server = serve_one(Kv::new(KvConfig::default()));
    // Twice against the same keys: the second run must not trip over the first one's values.
    for _ in 0..2 {
        let config = LoadConfig {
            conns: 4,
            depth: 8,
            keys: 40,
            value_size: 100,
            stop: Stop::Requests(4000),
            ..LoadConfig::new(Service::Kv, server.tcp)
        };
        let report = load::run(&config).expect("kv run");
        assert!(report.verified(), "{}", report.render_text());
        assert_eq!(report.tally.completed, 4000, "{}", report.render_text());
        assert!(report.tally.refused.is_empty(), "{}", report.render_text());
        // 2000 SETs of 100-byte values went out, and 2000 of them came back from GETs.
        assert!(report.tally.bytes_in > 2000 * 100, "{}", report.render_text());
    }
}

/// `--password`: every connection logs in first (`AUTH`), then its values are verified as
/// usual, over plain TCP and TLS; a wrong password is a mismatch that names it, not a run of
/// `NOAUTH` refusals.
#[test]
fn kv_with_a_password_logs_in_on_every_connection() {
    let config = KvConfig { requirepass: Some("s3cret".into()), ..KvConfig::default() };
    let server = serve_one(Kv::new(config));
    let run = |password: &str| {
        let config = LoadConfig {
            conns: 4,
            depth: 4,
            stop: Stop::Requests(2000),
            password: Some(password.into()),
            ..LoadConfig::new(Service::Kv, server.tcp)
        };
        load::run(&config).expect("kv run")
    };
    let report = run("s3cret");
    assert!(report.verified() && report.tally.refused.is_empty(), "{}", report.render_text());
    assert_eq!(report.tally.completed, 2000, "{}", report.render_text());
    let report = run("wrong");
    assert!(!report.verified(), "{}", report.render_text());
    assert!(report.render_text().contains("is --password right?"), "{}", report.render_text());
    assert_eq!(report.tally.completed, 0, "nothing is sent before the login");
}

/// A peer that accepts `conns` connections and, after reading what they send, holds each
/// (`close`: false) without a word, or closes it (`close`: true).
fn mute_peer(conns: usize, close: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..conns {
            let Ok((mut stream, _)) = listener.accept() else { return };
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = stream.read(&mut [0u8; 4096]);
            held.push(stream);
            if close {
                held.clear();
            }
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    addr
}

/// `--password` against a server that never answers the `AUTH`: the login is part of opening
/// the connection, so `--timeout` bounds it like a connect or a TLS handshake, and the run
/// ends with a connect error instead of waiting for ever (`--requests`) or reporting a
/// silent run with no error at all (`--duration`).
#[test]
fn kv_login_unanswered_is_a_connect_error_within_the_timeout() {
    let addr = mute_peer(2, false);
    let run = std::thread::spawn(move || {
        let config = LoadConfig {
            conns: 2,
            stop: Stop::Requests(10),
            timeout: Duration::from_millis(300),
            password: Some("s3cret".into()),
            ..LoadConfig::new(Service::Kv, addr)
        };
        load::run(&config).expect("kv run")
    });
    let report = common::join_within(run, Duration::from_secs(20));
    assert_eq!(report.tally.completed, 0, "{}", report.render_text());
    assert_eq!(report.tally.connect_errors.values().sum::<u64>(), 2, "{}", report.render_text());
    assert!(report.render_text().contains("AUTH"), "{}", report.render_text());
}

/// A `--duration` run that ends while logins still wait for their answer (the timeout is
/// longer than the run) says so, as it says so of connects still in progress.
#[test]
fn kv_logins_unfinished_at_the_end_of_a_run_are_reported() {
    let addr = mute_peer(2, false);
    let config = LoadConfig {
        conns: 2,
        stop: Stop::Duration(Duration::from_millis(300)),
        timeout: Duration::from_secs(5),
        password: Some("s3cret".into()),
        ..LoadConfig::new(Service::Kv, addr)
    };
    let report = load::run(&config).expect("kv run");
    assert_eq!(
        report.tally.connect_errors.get("login unfinished when the run ended"),
        Some(&2),
        "{}",
        report.render_text()
    );
}

/// `--password` against a server that closes the connection instead of answering the `AUTH`:
/// the answer was owed, so that is a read error, as a close with a request in flight is, not
/// a connection that quietly disappears from the run.
#[test]
fn kv_login_cut_off_by_the_server_is_a_read_error() {
    let addr = mute_peer(2, true);
    let config = LoadConfig {
        conns: 2,
        stop: Stop::Duration(Duration::from_millis(500)),
        password: Some("s3cret".into()),
        ..LoadConfig::new(Service::Kv, addr)
    };
    let report = load::run(&config).expect("kv run");
    assert_eq!(report.tally.read_errors.values().sum::<u64>(), 2, "{}", report.render_text());
}

/// A RESP peer that answers every command with `reply(command number)`: a stand-in for a
/// kv server that refuses or forgets.
fn resp_peer(reply: fn(u64) -> &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (mut buf, mut n) = ([0u8; 4096], 0u64);
        while let Ok(len @ 1..) = stream.read(&mut buf) {
            // Every command is an array, and '*' appears nowhere else (keys and values are
            // letters, digits and ':').
            for _ in buf[..len].iter().filter(|&&b| b == b'*') {
                if stream.write_all(reply(n)).is_err() {
                    return;
                }
                n += 1;
            }
        }
    });
    addr
}

#[test]
fn kv_errors_are_refused_and_a_wrong_value_is_a_mismatch() {
    let addr = resp_peer(|_| b"-ERR out of memory\r\n").to_string();
    let out = reactor_load(&["kv", "--addr", &addr, "-c", "1", "-n", "10", "--json"]);
    assert!(out.status.success(), "RESP errors are refusals, not wrong replies");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["completed"], 10);
    assert_eq!(v["refused"]["ERR out of memory"], 10, "{v}");

    let addr = resp_peer(|n| if n % 2 == 0 { b"+OK\r\n" } else { b"$16\r\nabcdefghijklmnop\r\n" });
    let out = reactor_load(&["kv", "--addr", &addr.to_string(), "-c", "1", "-n", "10", "--value-size", "16"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("MISMATCH connection 0") && stdout.contains("GET load:0:0"), "{stdout}");
}

#[test]
fn http_is_verified_against_the_real_http_service() {
    let server = serve_one(Http::new(HttpConfig::default()));
    let config = LoadConfig {
        conns: 3,
        depth: 4,
        stop: Stop::Requests(3000),
        ..LoadConfig::new(Service::Http, server.tcp)
    };
    let report = load::run(&config).expect("http run");
    assert!(report.verified(), "{}", report.render_text());
    assert_eq!(report.tally.completed, 3000, "{}", report.render_text());
    assert!(report.tally.refused.is_empty(), "{}", report.render_text());
}

/// `--path`: another route of the real HTTP service is driven and its replies framed (any
/// body, since only `/`'s is known); a path it does not have is refused (404), and a path that
/// could break the request line is refused before anything is sent.
#[test]
fn http_path_drives_another_route() {
    let server = serve_one(Http::new(HttpConfig::default()));
    let addr = server.tcp.to_string();
    let out = reactor_load(&[
        "http", "--addr", &addr, "--path", "/stats", "-c", "2", "-d", "2", "-n", "40", "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{v}");
    assert_eq!((v["completed"].as_u64(), v["path"].as_str()), (Some(40), Some("/stats")), "{v}");
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");

    let out = reactor_load(&["http", "--addr", &addr, "--path", "/nope", "-c", "1", "-n", "5", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["refused"]["HTTP/1.1 404 Not Found"], 5, "{v}");

    let out = reactor_load(&["http", "--addr", &addr, "--path", "/a b", "-n", "5"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--path must start with /"), "{stderr}");
}

/// `--post`: bodies sent to the real service's `/echo` come back and are checked byte for
/// byte, pipelined, over several connections; a body over the service's limit is refused
/// (`413`), not wrong.
#[test]
fn http_post_to_echo_is_verified_against_the_real_http_service() {
    let server = serve_one(Http::new(HttpConfig::default()));
    let addr = server.tcp.to_string();
    let out = reactor_load(&[
        "http", "--addr", &addr, "--post", "--size", "3000", "-c", "3", "-d", "4", "-n", "600", "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{v}");
    assert_eq!(
        (v["completed"].as_u64(), v["path"].as_str(), v["post"].as_bool()),
        (Some(600), Some("/echo"), Some(true)),
        "{v}"
    );
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
    assert!(v["bytes_out"].as_u64().unwrap() > 600 * 3000, "{v}");

    let out = reactor_load(&[
        "http", "--addr", &addr, "--post", "--size", "2000000", "-c", "1", "-n", "1", "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{v}");
    assert_eq!(v["refused"]["HTTP/1.1 413 Content Too Large"], 1, "{v}");

    let out = reactor_load(&["echo", "--addr", &addr, "--post", "-n", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--post is for http"), "{stderr}");
}

/// A server that answers two pipelined POSTs to `/echo` in the wrong order: each body is a
/// correct echo, of the wrong request. The bodies name their requests, so it is caught.
#[test]
fn http_post_replies_in_the_wrong_order_are_a_mismatch() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (mut pending, mut bodies) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 4096];
        while let Ok(len @ 1..) = stream.read(&mut buf) {
            pending.extend_from_slice(&buf[..len]);
            // Each request: a head with Content-Length 16 (the size asked below), then 16 bytes.
            while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                if pending.len() < end + 4 + 16 {
                    break;
                }
                bodies.push(pending[end + 4..end + 20].to_vec());
                pending.drain(..end + 20);
            }
            if bodies.len() >= 2 {
                for body in bodies.drain(..).rev() {
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                    if stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let out = reactor_load(&[
        "http",
        "--addr",
        &addr.to_string(),
        "--post",
        "--size",
        "16",
        "-c",
        "1",
        "-d",
        "2",
        "-n",
        "4",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("mismatches 1") && stdout.contains("the one due is #0"), "{stdout}");
}

/// An HTTP peer that answers every request (one per blank line) with `reply`.
fn http_peer(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut pending = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(len @ 1..) = stream.read(&mut buf) {
            pending.extend_from_slice(&buf[..len]);
            while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                pending.drain(..end + 4);
                if stream.write_all(reply).is_err() {
                    return;
                }
            }
        }
    });
    addr
}

#[test]
fn http_non_2xx_is_refused_and_a_short_body_is_a_mismatch() {
    let addr = http_peer(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nbusy\n").to_string();
    let out = reactor_load(&["http", "--addr", &addr, "-c", "1", "-d", "2", "-n", "20", "--json"]);
    assert!(out.status.success(), "a non-2xx reply is a refusal, not a wrong reply");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["completed"], 20);
    assert_eq!(v["refused"]["HTTP/1.1 503 Service Unavailable"], 20, "{v}");

    // Chunked: the chunks are joined, then checked.
    let addr = http_peer(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nHello, \r\n7\r\nWorld!\n\r\n0\r\n\r\n",
    )
    .to_string();
    let out = reactor_load(&["http", "--addr", &addr, "-c", "1", "-d", "3", "-n", "20", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{v}");
    assert_eq!(v["completed"], 20, "{v}");

    // Well framed, but 13 bytes where the service sends 14.
    let addr = http_peer(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!").to_string();
    let out = reactor_load(&["http", "--addr", &addr, "-c", "1", "-n", "5"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("mismatches 1"), "{stdout}");
}

#[test]
fn echo_over_tls_is_verified_and_needs_trust() {
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let svc = reactor.add_service(Echo);
    let addr = reactor
        .listen_tls("127.0.0.1:0".parse().unwrap(), svc, tls::server_config(&identity, &[]).unwrap())
        .unwrap();
    let _server = common::Server::run(reactor, addr);
    let cert =
        std::env::temp_dir().join(format!("reactor-load-test-{}-{}.pem", std::process::id(), addr.port()));
    identity.write_cert(&cert).unwrap();
    let (a, c) = (addr.to_string(), cert.to_string_lossy().into_owned());
    // Pipelined 16 KiB messages: rustls's 64 KiB send buffer fills, and writes come up short.
    let out = reactor_load(&[
        "echo", "--addr", &a, "--tls", "--ca", &c, "-c", "4", "-d", "8", "-s", "16384", "-n", "2000",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(out.status.success(), "{v} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(v["completed"], 2000, "{v}");
    assert_eq!(v["conns_opened"], 4, "{v}");
    assert_eq!(v["tls"], true);
    let out =
        reactor_load(&["echo", "--addr", &a, "--tls", "--insecure-skip-verify", "-c", "2", "-n", "100"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // Trusting another certificate: every handshake fails, with rustls's reason.
    Identity::self_signed(&["localhost"]).unwrap().write_cert(&cert).unwrap();
    let out = reactor_load(&["echo", "--addr", &a, "--tls", "--ca", &c, "-c", "2", "-n", "10"]);
    std::fs::remove_file(&cert).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no connection could be opened") && stderr.contains("certificate"), "{stderr}");
}

#[test]
fn a_chat_member_that_leaves_is_no_longer_waited_for() {
    // A chat peer written for the test: it relays each member's lines to the others, then, at
    // member 0's 21st line, stops relaying to and from member 0 for 200 ms (the others' lines
    // in that time can never reach it), disconnects it, and 100 ms later relays that 21st
    // line to the others after all.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut members = Vec::new();
        for i in 0..3 {
            let Ok((mut stream, _)) = listener.accept() else { return };
            // Line by line, at once: Nagle's algorithm with delayed ACKs would hold relayed
            // lines back for tens of milliseconds on a busy machine.
            stream.set_nodelay(true).unwrap();
            let _ = stream.write_all(format!("*** welcome, you are guest-{i}\n").as_bytes());
            members.push(stream);
        }
        let writers: Arc<Vec<std::sync::Mutex<TcpStream>>> =
            Arc::new(members.iter().map(|s| std::sync::Mutex::new(s.try_clone().unwrap())).collect());
        let dropped = Arc::new(AtomicBool::new(false));
        let relay = |writers: &[std::sync::Mutex<TcpStream>], from: usize, line: &str, skip_0: bool| {
            for (to, w) in writers.iter().enumerate() {
                if to != from && !(to == 0 && skip_0) {
                    let _ = w.lock().unwrap().write_all(format!("guest-{from}: {line}").as_bytes());
                }
            }
        };
        for (i, stream) in members.into_iter().enumerate() {
            let (writers, dropped) = (writers.clone(), dropped.clone());
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut reader = std::io::BufReader::new(stream);
                let mut line = String::new();
                for n in 1.. {
                    line.clear();
                    if !matches!(std::io::BufRead::read_line(&mut reader, &mut line), Ok(1..)) {
                        return;
                    }
                    if i == 0 && n == 21 {
                        dropped.store(true, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(200));
                        let _ = writers[0].lock().unwrap().shutdown(std::net::Shutdown::Both);
                        std::thread::sleep(Duration::from_millis(100));
                        relay(&writers, 0, &line, true);
                        return;
                    }
                    relay(&writers, i, &line, dropped.load(Ordering::SeqCst));
                }
            });
        }
    });
    // Long enough to go on well past the drop (~0.2 s in) and the late line (~0.3 s).
    let config = LoadConfig {
        conns: 3,
        stop: Stop::Duration(Duration::from_millis(700)),
        timeout: Duration::from_secs(2),
        ..LoadConfig::new(Service::Chat, addr)
    };
    let report = load::run(&config).expect("chat run");
    let text = report.render_text();
    let t = &report.tally;
    // The lines the others sent while member 0 was cut off needed its reply; once it has
    // gone they need one fewer, complete, and the other two chat on: thousands of lines
    // in the 0.4 s left, where waiting for member 0 forever would stop them at a few dozen.
    assert!(t.completed > 500, "{text}");
    assert_eq!(t.timeouts, 0, "{text}");
    // Its last line, still on its way when it left, is late at the others, not wrong.
    assert!(report.verified(), "{text}");
    assert_eq!(t.late, 2, "{text}");
    assert_eq!(t.abandoned, 1, "member 0's last line left with it: {text}");
    assert_eq!(t.completed + t.abandoned + t.in_flight_at_end, t.sent, "{text}");
}

#[test]
fn open_loop_requests_due_at_a_stall_at_the_end_are_counted_and_in_the_latencies() {
    // An echo peer that answers the first 20 requests and then stops reading: every request
    // due after that waits for the only connection's only slot until the run ends.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut message = [0u8; 64];
        for _ in 0..20 {
            if stream.read_exact(&mut message).is_err() || stream.write_all(&message).is_err() {
                return;
            }
        }
        // Stalled: wait, unread, for the client to leave.
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    let v = load_json(&[
        "echo",
        "--addr",
        &addr,
        "-c",
        "1",
        "--rate",
        "400",
        "--duration",
        "0.5",
        "--timeout",
        "5",
    ]);
    common::join_within(peer, Duration::from_secs(10));
    // 200 due in 0.5 s: 20 answered, one stuck in flight, the rest never sent.
    let unsent = v["unsent_at_end"].as_u64().unwrap();
    assert!((150..=180).contains(&unsent), "{v}");
    assert_eq!(v["in_flight_at_end"], 1, "{v}");
    assert!(v["warnings"].as_str().unwrap().contains("that were due never did"), "{v}");
    // They are in the corrected latencies: the last ones had waited up to ~0.45 s.
    assert!(v["latency_max_us"].as_u64().unwrap() > 300_000, "{v}");
    assert!(v["uncorrected_max_us"].as_u64().unwrap() < 300_000, "{v}");
}

#[test]
fn settings_that_would_overflow_are_refused_with_a_message_not_a_panic() {
    for (args, says) in [
        (&["--rate", "1e-20"][..], "--rate must be between"),
        (&["--rate", "1e12"][..], "--rate must be between"),
        (&["--duration", "1e19"][..], "--duration must be"),
        (&["--timeout", "1e12"][..], "--timeout must be"),
        (&["--depth", "100000"][..], "--depth must be at most"),
        (&["-c", "1000", "-d", "1000", "-s", "10000"][..], "MiB of requests in flight"),
        // A negative number is a value out of range, not an unknown option "-5"; one time
        // limit, said the same way at any size; zero is no run.
        (&["--rate", "-5"][..], "--rate must be between"),
        (&["--timeout", "-1"][..], "--timeout must be a number of seconds from 0 to 31536000 (a year)"),
        (&["--duration", "1e8"][..], "--duration must be a number of seconds from 0 to 31536000 (a year)"),
        (&["--duration", "0"][..], "--duration must be more than 0 seconds"),
        (&["--timeout", "1e-10"][..], "--timeout must be at least 1 nanosecond"),
    ] {
        let out = reactor_load(&[&["echo", "--addr", "127.0.0.1:9"][..], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // kv requests are as large as their values.
    for (args, says) in [
        (&["-c", "100", "-d", "1000", "--value-size", "100000"][..], "--value-size is"),
        (&["--value-size", "1000000000"][..], "--value-size must be at most"),
    ] {
        let out = reactor_load(&[&["kv", "--addr", "127.0.0.1:9"][..], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_server_that_hangs_up_during_the_tls_handshake_is_a_connect_error() {
    // A plain TCP peer that accepts and closes at once: the ClientHello gets an EOF.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for _ in 0..2 {
            let Ok((stream, _)) = listener.accept() else { return };
            drop(stream);
        }
    });
    let out =
        reactor_load(&["echo", "--addr", &addr, "--tls", "--insecure-skip-verify", "-c", "2", "-n", "10"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no connection could be opened") && stderr.contains("during the TLS handshake"),
        "{stderr}"
    );
}

/// Answers `GET /` requests on `stream` up to the third, whose reply says
/// `Connection: close` when `announce`; `send(stream, reply, last)` writes each reply.
fn serve_three<S: Read>(
    stream: &mut S,
    announce: bool,
    mut send: impl FnMut(&mut S, &[u8], bool) -> std::io::Result<()>,
) {
    let (mut pending, mut buf, mut served) = (Vec::new(), [0u8; 4096], 0);
    while let Ok(len @ 1..) = stream.read(&mut buf) {
        pending.extend_from_slice(&buf[..len]);
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            served += 1;
            let last = served == 3;
            let close = if last && announce { "Connection: close\r\n" } else { "" };
            let reply = format!("HTTP/1.1 200 OK\r\n{close}Content-Length: 14\r\n\r\nHello, World!\n");
            if send(stream, reply.as_bytes(), last).is_err() || last {
                return;
            }
        }
    }
}

/// An HTTP peer that serves `GET /` on up to 64 connections and ends each after 3 requests,
/// the last reply saying `Connection: close` when `announce`, or with a bare close after it.
fn http_peer_closing_every_3(announce: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..64 {
            let Ok((mut stream, _)) = listener.accept() else { return };
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                serve_three(&mut stream, announce, |stream, reply, _| stream.write_all(reply));
            }); // dropping the stream closes it
        }
    });
    addr
}

#[test]
fn http_connections_the_server_closes_are_reopened_like_wrk_does() {
    // nginx ends a keep-alive connection after `keepalive_requests` (1,000 by default):
    // a load generator that did not reconnect would run out of connections.
    for announce in [true, false] {
        let addr = http_peer_closing_every_3(announce).to_string();
        let out = reactor_load(&["http", "--addr", &addr, "-c", "2", "-n", "30", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(out.status.success(), "{v}");
        assert_eq!(v["conns_opened"], 2, "{v}");
        let (completed, abandoned) = (v["completed"].as_u64().unwrap(), v["abandoned"].as_u64().unwrap());
        assert!(v["reconnects"].as_u64().unwrap() * 3 >= completed - 6, "3 requests per connection: {v}");
        if announce {
            // Told in the reply: nothing else is sent on that connection, nothing is lost.
            assert_eq!(completed, 30, "{v}");
            assert_eq!(v["read_errors"], serde_json::json!({}), "a clean close is not an error: {v}");
        } else {
            // A bare close can cross the next request on its way: that one is lost, and
            // counted, and the connection is reopened all the same.
            assert_eq!(completed + abandoned, 30, "{v}");
            assert!(completed >= 20, "{v}");
        }
    }
}

#[test]
fn an_http_1_0_server_closing_after_each_reply_is_no_error() {
    // Python's http.server and other simple servers answer HTTP/1.0 without keep-alive: the
    // reply itself announces the close (RFC 9112 §9.3), so the next request waits for a new
    // connection instead of racing the close and being counted as a read error.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for _ in 0..64 {
            let Ok((mut stream, _)) = listener.accept() else { return };
            // A thread each: a connection reopened when no request is left to send on it
            // must not hold up the others.
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let (mut head, mut buf) = (Vec::new(), [0u8; 1024]);
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(len @ 1..) => head.extend_from_slice(&buf[..len]),
                        _ => return,
                    }
                }
                let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 14\r\n\r\nHello, World!\n");
            }); // dropping the stream closes it
        }
    });
    for depth in ["1", "4"] {
        let out = reactor_load(&["http", "--addr", &addr, "-c", "2", "-d", depth, "-n", "20", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(out.status.success(), "{v}");
        assert_eq!(
            v["read_errors"],
            serde_json::json!({}),
            "depth {depth}: an announced close is no error: {v}"
        );
        if depth == "1" {
            assert_eq!(v["completed"], 20, "{v}");
        }
    }
}

/// `http_peer_closing_every_3(true)` over TLS: the last reply says `Connection: close` and is
/// followed by close_notify, as nginx does at `keepalive_requests`. Returns the address and
/// the certificate's PEM file.
fn tls_http_peer_closing_every_3() -> (SocketAddr, std::path::PathBuf) {
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let config = tls::server_config(&identity, &[]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let cert = std::env::temp_dir().join(format!(
        "reactor-load-close-notify-{}-{}.pem",
        std::process::id(),
        addr.port()
    ));
    identity.write_cert(&cert).unwrap();
    std::thread::spawn(move || {
        for _ in 0..64 {
            let Ok((stream, _)) = listener.accept() else { return };
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let session = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(session, stream);
                serve_three(&mut tls, true, |tls, reply, last| {
                    // Into the session, not the socket: the last reply and close_notify then
                    // leave together, in one write.
                    tls.conn.writer().write_all(reply)?;
                    if last {
                        tls.conn.send_close_notify();
                    }
                    tls.flush()
                });
            });
        }
    });
    (addr, cert)
}

#[test]
fn tls_connections_the_server_ends_with_close_notify_are_reopened_and_their_last_reply_counts() {
    // Before, the reply that came in the same read as close_notify was thrown away, the close
    // was counted as a read error, and the connection was not reopened: against nginx over
    // TLS, every connection died at its `keepalive_requests`.
    let (addr, cert) = tls_http_peer_closing_every_3();
    let (a, c) = (addr.to_string(), cert.to_string_lossy().into_owned());
    let out = reactor_load(&["http", "--addr", &a, "--tls", "--ca", &c, "-c", "2", "-n", "30", "--json"]);
    std::fs::remove_file(&cert).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(out.status.success(), "{v} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(v["completed"], 30, "{v}");
    assert_eq!(v["read_errors"], serde_json::json!({}), "a clean close is not an error: {v}");
    assert!(v["reconnects"].as_u64().unwrap() >= 8, "3 requests per connection: {v}");
}

#[test]
fn an_open_loop_run_that_keeps_up_does_not_warn() {
    // At 3 per second the last request falls due a nanosecond before the deadline (the
    // interval rounds down): the run ends before its turn comes. That is not a request the
    // server held back, and no reason to say the target was missed.
    let server = echo_server(Config::default());
    let addr = server.tcp.to_string();
    let out = reactor_load(&["echo", "--addr", &addr, "-c", "1", "--rate", "3", "--duration", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{v}");
    assert_eq!(v["unsent_at_end"], 0, "{v}");
    assert_eq!(v["warnings"], "", "{v}");
    // The rate achieved is in the record too, as the text's "sent at": 3 sends, 1/3 s apart.
    let sent_at = v["send_rate"].as_f64().unwrap();
    assert!((2.5..3.5).contains(&sent_at), "{v}");
}

/// A server that stops answering for longer than `--timeout`, then recovers: the timed-out
/// request's wait is in the corrected latencies, the connection is replaced (as wrk does)
/// instead of the run ending early, and the report covers the whole duration.
#[test]
fn a_stall_past_the_timeout_is_in_the_latencies_and_the_run_goes_on() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        // The first connection answers 50 messages, then stalls; the next ones answer all.
        for (i, stream) in listener.incoming().take(2).enumerate() {
            let Ok(mut stream) = stream else { return };
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            std::thread::spawn(move || {
                let mut message = [0u8; 64];
                let mut answered = 0;
                while stream.read_exact(&mut message).is_ok() {
                    if i == 0 && answered == 50 {
                        let mut sink = Vec::new();
                        let _ = stream.read_to_end(&mut sink); // stalled until the client leaves
                        return;
                    }
                    if stream.write_all(&message).is_err() {
                        return;
                    }
                    answered += 1;
                }
            });
        }
    });
    let v = load_json(&["echo", "--addr", &addr, "-c", "1", "--duration", "1.5", "--timeout", "0.3"]);
    common::join_within(peer, Duration::from_secs(10));
    assert_eq!(v["timeouts"], 1, "{v}");
    assert_eq!(v["abandoned"], 0, "{v}");
    assert_eq!(v["reconnects"], 1, "a new connection replaced the stalled one: {v}");
    assert!(v["completed"].as_u64().unwrap() > 100, "the run went on after the stall: {v}");
    assert!(v["latency_max_us"].as_u64().unwrap() >= 300_000, "the stall is in the latencies: {v}");
    assert_eq!(v["warnings"], "", "{v}");
}

#[test]
fn a_run_that_measured_nothing_fails_and_reports_no_latency_rather_than_zero() {
    // UDP to a port nothing listens on: every socket learns "connection refused" and closes.
    // The run ends long before its deadline, and says so; it answered nothing, so it verified
    // nothing: `null` latencies (a 0 would read as a perfect result) and a failed exit.
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let out = reactor_load(&["udp", "--addr", &addr, "-c", "2", "--duration", "3", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!out.status.success(), "{v}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was measured"), "{out:?}");
    assert_eq!(v["completed"], 0, "{v}");
    assert_eq!(v["verified"], false, "{v}");
    for key in ["latency_mean_us", "latency_p50_us", "latency_p99_us", "latency_max_us", "uncorrected_p99_us"]
    {
        assert!(v[key].is_null(), "{key}: {v}");
    }
    assert!(v["warnings"].as_str().unwrap().contains("before its deadline"), "{v}");
    let text = reactor_load(&["udp", "--addr", &addr, "-c", "2", "--duration", "3"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("n/a") && !text.contains(" 0us"), "{text}");
}

/// Runs `reactor load ARGS --json` against an echo peer, sends it SIGINT once the peer has
/// accepted its first connection (so the handler, installed before any connect, is in place)
/// and `after` has passed; returns the exit status and the JSON record.
fn interrupted_load(args: &[&str], after: Duration) -> (std::process::ExitStatus, serde_json::Value) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (accepted, first) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { return };
            let _ = accepted.send(());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    if stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_reactor"))
        .args(["load", "echo", "--addr", &addr, "--json"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    first.recv_timeout(Duration::from_secs(20)).expect("the load generator connected");
    std::thread::sleep(after);
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running 10 s after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    (status, serde_json::from_slice(&out).expect("a report, not silence"))
}

#[test]
fn ctrl_c_ends_the_run_and_prints_what_it_measured() {
    // As wrk does: an interrupted 60 s run still reports, at once, on what it had measured.
    let (status, v) = interrupted_load(&["-c", "2", "--duration", "60"], Duration::from_millis(500));
    assert!(status.success(), "{status:?} {v}");
    assert!(v["completed"].as_u64().unwrap() > 0, "{v}");
    assert!(v["window_s"].as_f64().unwrap() < 10.0, "the window is the run so far: {v}");
    assert!(v["warnings"].as_str().unwrap().contains("interrupted"), "{v}");
    // An open-loop run of N requests, interrupted: rated over the time it ran, at about its
    // rate, and not said to have lost its connections.
    let (status, v) =
        interrupted_load(&["-c", "1", "--rate", "20", "-n", "1000"], Duration::from_millis(1500));
    assert!(status.success(), "{status:?} {v}");
    let rate = v["requests_per_sec"].as_f64().unwrap();
    assert!((10.0..=21.0).contains(&rate), "{v}");
    let warnings = v["warnings"].as_str().unwrap();
    assert!(warnings.contains("interrupted") && !warnings.contains("REQUESTS WERE SENT"), "{v}");
}

#[test]
fn an_open_loop_run_of_n_requests_reports_the_rate_it_was_asked_for_not_more() {
    // N requests due 1/R apart take N intervals: measured from the first send to the last
    // reply alone, 10 at 50/s would report 55.6/s, more than was ever sent.
    let server = echo_server(Config::default());
    let v = load_json(&["echo", "--addr", &server.tcp.to_string(), "-c", "1", "--rate", "50", "-n", "10"]);
    let rate = v["requests_per_sec"].as_f64().unwrap();
    assert!((30.0..=50.0).contains(&rate), "{v}");
}

#[test]
fn on_a_terminal_the_live_line_says_the_warm_up_is_not_measured() {
    // One line a second on a terminal (script(1) gives it one). During the warm-up nothing is
    // counted, and a "0 req/s" there read as a server that did not answer.
    if !common::have("script") {
        return;
    }
    let server = echo_server(Config::default());
    let line = format!(
        "'{}' load echo --addr {} -c 1 --warmup 2.5 --duration 1.5",
        env!("CARGO_BIN_EXE_reactor"),
        server.tcp
    );
    let out =
        common::output(Command::new("script").args(["-qec", &line, "/dev/null"]).env("RUST_LOG", "warn"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let warm: Vec<&str> = text.lines().filter(|l| l.contains("[warm-up]")).collect();
    assert!(
        !warm.is_empty() && warm.iter().all(|l| l.contains("(not measured)") && !l.contains("req/s")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.contains("[measuring]") && l.contains("req/s")), "{text}");
}

#[test]
fn kv_says_how_many_keys_it_used_when_they_do_not_divide_by_the_connections() {
    // Each connection owns whole keys: --keys 1000 over 7 connections uses 994.
    let server = serve_one(Kv::new(KvConfig::default()));
    let out =
        reactor_load(&["kv", "--addr", &server.tcp.to_string(), "-c", "7", "--keys", "1000", "-n", "70"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("over 994 keys (142 per connection, of --keys 1000)"),
        "{text}"
    );
    let out =
        reactor_load(&["kv", "--addr", &server.tcp.to_string(), "-c", "4", "--keys", "1000", "-n", "40"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("over 1000 keys\n") || text.contains("over 1000 keys,"), "{text}");
}

#[test]
fn chat_members_turned_away_are_reported_with_the_servers_words() {
    // A room of 3 and 5 members: two are told the room is full, and the report says so
    // rather than only "connection closed by the server".
    let server = serve_one(Chat::new(ChatConfig { max_members: Some(3), ..ChatConfig::default() }));
    let v = load_json(&["chat", "--addr", &server.tcp.to_string(), "-c", "5", "-n", "20"]);
    let errors = v["read_errors"].as_object().unwrap();
    let (why, count) = errors.iter().next().unwrap();
    assert!(why.contains("the room is full") && count == 2, "{v}");
}
