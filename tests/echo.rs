//! TCP and UDP echo over real sockets on 127.0.0.1: the article's exchange, then everything
//! that makes a server more than a demo (partial writes, backpressure, half-close, resets,
//! many clients, idle timeout, connection limit).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{connect, echo_server, pattern, read_n};
use reactor::reactor::{Config, Reactor};
use reactor::service::echo::Echo;
use reactor::service::{Cx, Service};
use sha2::{Digest, Sha256};

#[test]
fn hello_server_round_trip() {
    let server = echo_server(Config::default());
    let mut client = connect(server.tcp);
    client.write_all(b"Hello, Server!").unwrap();
    assert_eq!(read_n(&mut client, 14), b"Hello, Server!");
}

#[test]
fn one_mebibyte_round_trip_matches_sha256() {
    // Far more than a socket buffer: the server's writes come up short, it must keep the
    // remainder, ask for WRITABLE, and stop reading while it owes too much.
    let server = echo_server(Config { max_output: 64 * 1024, ..Config::default() });
    let data = pattern(1 << 20, 7);
    let mut client = connect(server.tcp);
    let mut writer = client.try_clone().unwrap();
    let sent = data.clone();
    let t = std::thread::spawn(move || writer.write_all(&sent).unwrap());
    let back = read_n(&mut client, data.len());
    t.join().unwrap();
    assert_eq!(Sha256::digest(&back), Sha256::digest(&data));
}

#[test]
fn five_hundred_concurrent_connections_twenty_messages_each() {
    let server = echo_server(Config::default());
    let threads: Vec<_> = (0..10)
        .map(|t| {
            let addr = server.tcp;
            std::thread::spawn(move || {
                let mut conns: Vec<TcpStream> = (0..50).map(|_| connect(addr)).collect();
                for round in 0..20 {
                    for (i, c) in conns.iter_mut().enumerate() {
                        c.write_all(format!("t{t} c{i} r{round}\n").as_bytes()).unwrap();
                    }
                    for (i, c) in conns.iter_mut().enumerate() {
                        let want = format!("t{t} c{i} r{round}\n");
                        assert_eq!(read_n(c, want.len()), want.as_bytes());
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn udp_echo_returns_each_datagram_including_empty_and_large() {
    let server = echo_server(Config::default());
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    socket.connect(server.udp).unwrap();
    let mut buf = vec![0; 70_000];
    for payload in [b"Hello, Server!".to_vec(), Vec::new(), pattern(65_507, 3)] {
        socket.send(&payload).unwrap();
        let n = socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &payload[..], "datagram of {} bytes", payload.len());
    }
}

#[test]
fn half_close_still_delivers_everything_owed() {
    let server = echo_server(Config::default());
    let data = pattern(300_000, 11);
    let mut client = connect(server.tcp);
    let mut writer = client.try_clone().unwrap();
    let sent = data.clone();
    let t = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    client.read_to_end(&mut back).unwrap(); // EOF only after the server flushed and closed
    t.join().unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data);
}

#[test]
fn client_that_never_reads_is_held_back_while_others_are_served() {
    let server = echo_server(Config { max_output: 256 * 1024, ..Config::default() });
    let hog = connect(server.tcp);
    hog.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut writer = hog.try_clone().unwrap();
    let chunk = pattern(64 * 1024, 5);
    let started = Instant::now();
    let mut written = 0usize;
    let mut stream = Vec::new(); // exactly the bytes the kernel took, in order
    // Try to push 50 MiB without reading a byte back. Backpressure must stop us long before.
    while written < 50 << 20 && started.elapsed() < Duration::from_secs(20) {
        match writer.write(&chunk) {
            Ok(n) => {
                written += n;
                stream.extend_from_slice(&chunk[..n]);
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                break;
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(written < 50 << 20, "the server kept reading from a peer that does not read");
    // Meanwhile everyone else is served normally.
    let mut other = connect(server.tcp);
    other.write_all(b"still there?").unwrap();
    assert_eq!(read_n(&mut other, 12), b"still there?");
    // And nothing the hog sent was lost: it all comes back, in order.
    let mut reader = hog;
    reader.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let back = read_n(&mut reader, written);
    assert!(back == stream, "echoed bytes differ from what was sent");
}

#[test]
fn reset_mid_transfer_does_not_disturb_others() {
    let server = echo_server(Config::default());
    let mut bystander = connect(server.tcp);
    bystander.write_all(b"before").unwrap();
    assert_eq!(read_n(&mut bystander, 6), b"before");
    for _ in 0..5 {
        let mut victim = connect(server.tcp);
        victim.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
        let _ = victim.write_all(&pattern(2 << 20, 9)); // server is mid-echo when we vanish
        socket2::SockRef::from(&victim).set_linger(Some(Duration::ZERO)).unwrap();
        drop(victim); // close with SO_LINGER 0: RST
    }
    bystander.write_all(b"after").unwrap();
    assert_eq!(read_n(&mut bystander, 5), b"after");
    let mut newcomer = connect(server.tcp);
    newcomer.write_all(b"new").unwrap();
    assert_eq!(read_n(&mut newcomer, 3), b"new");
}

#[test]
fn idle_connection_is_closed_after_the_timeout() {
    let server = echo_server(Config { idle_timeout: Some(Duration::from_millis(300)), ..Config::default() });
    let mut busy = connect(server.tcp);
    let mut idle = connect(server.tcp);
    let started = Instant::now();
    // Traffic keeps `busy` alive past the timeout.
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(100));
        busy.write_all(b"x").unwrap();
        assert_eq!(read_n(&mut busy, 1), b"x");
    }
    let mut buf = [0; 16];
    let n = idle.read(&mut buf).expect("idle connection closed cleanly");
    assert_eq!(n, 0, "EOF expected");
    assert!(started.elapsed() >= Duration::from_millis(300));
    busy.write_all(b"y").unwrap();
    assert_eq!(read_n(&mut busy, 1), b"y");
}

#[test]
fn busy_polling_serves_and_still_fires_timers_on_time() {
    // The spin must end on its own, serve what arrives during it and after it, and never
    // hold back a timer: the idle timeout below is far shorter than one spin.
    let config = Config {
        busy_poll: Duration::from_secs(2),
        idle_timeout: Some(Duration::from_millis(200)),
        ..Config::default()
    };
    let server = echo_server(config);
    let mut c = connect(server.tcp);
    for round in 0..3u8 {
        c.write_all(&[round; 100]).unwrap();
        assert_eq!(read_n(&mut c, 100), [round; 100]);
    }
    let quiet = Instant::now();
    let mut buf = [0; 16];
    assert_eq!(c.read(&mut buf).expect("closed cleanly"), 0, "EOF expected");
    let waited = quiet.elapsed();
    // The idle check runs every 0.2 s, so the close lands 0.2–0.4 s after the last echo; a
    // timer held back by a 2 s spin would land after 2 s.
    assert!(waited < Duration::from_millis(1500), "idle close took {waited:?}");
}

#[test]
fn connections_over_the_limit_are_refused_with_a_line() {
    let server = echo_server(Config { max_conns: 2, ..Config::default() });
    let mut a = connect(server.tcp);
    let mut b = connect(server.tcp);
    a.write_all(b"a").unwrap();
    assert_eq!(read_n(&mut a, 1), b"a");
    b.write_all(b"b").unwrap();
    assert_eq!(read_n(&mut b, 1), b"b");
    let mut c = connect(server.tcp);
    let mut refusal = String::new();
    c.read_to_string(&mut refusal).unwrap();
    assert!(refusal.starts_with("server busy"), "got {refusal:?}");
    // Existing clients are unaffected, and a slot frees up when one leaves.
    a.write_all(b"a2").unwrap();
    assert_eq!(read_n(&mut a, 2), b"a2");
    drop(b);
    std::thread::sleep(Duration::from_millis(100));
    let mut d = connect(server.tcp);
    d.write_all(b"d").unwrap();
    assert_eq!(read_n(&mut d, 1), b"d");
}

#[test]
fn graceful_shutdown_lets_accepted_connections_finish() {
    let server = echo_server(Config::default());
    let mut client = connect(server.tcp);
    client.write_all(b"one").unwrap();
    assert_eq!(read_n(&mut client, 3), b"one");
    server.handle.shutdown();
    std::thread::sleep(Duration::from_millis(100));
    // No new connections...
    assert!(TcpStream::connect(server.tcp).is_err(), "listener should be closed");
    // ...but the accepted one is still served, reads included.
    client.write_all(b"two").unwrap();
    assert_eq!(read_n(&mut client, 3), b"two");
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    server.join(Duration::from_secs(5));
}

/// Data and a FIN that are both waiting when the loop first looks at a connection, more data
/// than one read budget: reading stops for the budget and resumes next turn, where a short
/// read used to be taken for "drained" and the FIN, whose edge was already spent, went
/// unread until the idle timeout. The connection is accepted (and the bytes and FIN queued)
/// before the loop even runs, so the order is not left to chance.
#[test]
fn a_fin_behind_more_than_a_read_budget_is_seen_at_once() {
    let config = Config { read_budget: 1, idle_timeout: Some(Duration::from_secs(120)), ..Config::default() };
    let mut reactor = Reactor::new(config).unwrap();
    let tcp = reactor.serve("127.0.0.1:0".parse().unwrap(), Echo).unwrap();
    let data = pattern(70 * 1024, 5);
    let mut client = connect(tcp); // completes in the kernel's backlog: nobody has accepted yet
    client.write_all(&data).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(50)); // let the bytes and the FIN land
    let _server = common::Server::run(reactor, tcp);
    let mut back = Vec::new();
    // EOF only once the server has seen the FIN; the 10 s read timeout fails a missed one.
    client.read_to_end(&mut back).expect("the echo and then EOF, well before the idle timeout");
    assert!(back == data);
}

/// A service that, on every timer, asks for another one that is due already: at `cx.now()`,
/// or (`missed`) again at the deadline it has just missed.
struct Rearming {
    missed: bool,
}

impl Service for Rearming {
    type Session = Instant;
    fn name(&self) -> &'static str {
        "rearming"
    }
    fn open(&mut self, cx: &mut Cx<'_>) -> Instant {
        let due = if self.missed { cx.now() - Duration::from_secs(1) } else { cx.now() };
        cx.set_timer(due);
        due
    }
    fn input(&mut self, _due: &mut Instant, input: &[u8], _cx: &mut Cx<'_>) -> usize {
        input.len()
    }
    fn timer(&mut self, due: &mut Instant, cx: &mut Cx<'_>) {
        cx.set_timer(if self.missed { *due } else { cx.now() });
    }
}

/// A reactor serving `Rearming` and echo, and a client of `Rearming` whose timers are running;
/// `Server::tcp` is the echo listener.
fn rearming_beside_echo(config: Config, missed: bool) -> (common::Server, TcpStream) {
    let mut reactor = Reactor::new(config).unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let rearming = reactor.serve(any, Rearming { missed }).unwrap();
    let echo = reactor.serve(any, Echo).unwrap();
    let server = common::Server::run(reactor, echo);
    let client = connect(rearming);
    std::thread::sleep(Duration::from_millis(50));
    (server, client)
}

/// Such a timer fires once per turn, not over and over inside one: the loop still gets back
/// to `poll`, and another listener's client is answered.
#[test]
fn a_timer_rearmed_for_a_moment_already_past_does_not_stall_the_loop() {
    let (server, restless_client) = rearming_beside_echo(Config::default(), false);
    let mut client = connect(server.tcp);
    let answered = client.write_all(b"Hello, Server!").and_then(|()| {
        let mut back = [0; 14];
        client.read_exact(&mut back).map(|()| back)
    });
    if answered.is_err() {
        // A stalled loop would never see the stop request either: do not wait for it.
        std::mem::forget(server);
        panic!("the echo listener was not served: {answered:?}");
    }
    assert_eq!(&answered.unwrap(), b"Hello, Server!");
    drop(restless_client);
}

/// Such a timer sorts before every other due one, turn after turn: the idle timer of another
/// connection must still fire.
#[test]
fn a_timer_rearmed_for_a_fixed_past_deadline_does_not_starve_the_others() {
    let config = Config { idle_timeout: Some(Duration::from_millis(300)), ..Config::default() };
    let (server, stubborn_client) = rearming_beside_echo(config, true);
    let mut idle = connect(server.tcp);
    idle.write_all(b"hi").unwrap();
    assert_eq!(read_n(&mut idle, 2), b"hi");
    idle.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    let mut buf = [0; 16];
    let outcome = idle.read(&mut buf);
    drop(stubborn_client);
    if !matches!(outcome, Ok(0)) {
        std::mem::forget(server); // a starved loop may never see the stop request either
        panic!("the idle echo client should have been closed after 300 ms: {outcome:?}");
    }
}
