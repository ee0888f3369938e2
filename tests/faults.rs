//! Faults and hostile peers, over real sockets on 127.0.0.1: what a server meets outside a
//! test. Each test sets up one misbehaving crowd and one well-behaved client, and checks two
//! things: the well-behaved client keeps being served, and once the crowd is gone the server
//! holds nothing for it (no connection, no buffered byte — read from HTTP `/stats`).
//!
//! | peer                                           | test                                         |
//! |------------------------------------------------|----------------------------------------------|
//! | resets (RST) mid-request, mid-reply            | `resets_mid_read_and_mid_write_leave_nothing_behind` |
//! | half-open: shuts down writing, never reads     | `half_open_and_vanishing_peers_are_finished` |
//! | 0-byte and 65,507-byte datagrams               | `udp_empty_and_maximal_datagrams_from_many_sockets` |
//! | slowloris on HTTP (200 dribbling heads)        | `http_slowloris_is_cut_by_the_head_timeout_while_others_are_served` |
//! | slowloris on chat and kv                       | `chat_and_kv_slowloris_is_cut_by_the_idle_timeout` |
//! | kv client pipelining big GETs, never reading   | `kv_pipeliner_that_never_reads_stops_being_read` and `kv_pipeliner_that_never_reads_is_held_at_the_output_limit` |
//! | 10,000 random-sized echo messages, 100 conns   | `ten_thousand_echo_messages_arrive_whole_once_and_in_order` |
//! | malformed RESP, HTTP garbage, hostile chat     | `malformed_input_of_every_service_while_others_are_served` |
//! | more connections than file descriptors         | `out_of_file_descriptors_the_server_pauses_accepting_and_recovers` |
//!
//! Every test is bounded in time (socket timeouts, deadlines) and in traffic (a few MiB).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{connect, pattern, read_n};
use reactor::reactor::{Config, Reactor};
use reactor::service::chat::{Chat, ChatConfig};
use reactor::service::echo::{Echo, UdpEcho};
use reactor::service::http::{Http, HttpConfig};
use reactor::service::kv::{Kv, KvConfig};

// ─── one reactor serving every service ───────────────────────────────────────────────────

/// Every service on one in-process reactor, as `reactor serve` runs them.
struct Stack {
    echo: SocketAddr,
    udp: SocketAddr,
    chat: SocketAddr,
    http: SocketAddr,
    kv: SocketAddr,
    _server: common::Server,
}

fn stack(config: Config, http: HttpConfig, kv: KvConfig) -> Stack {
    let mut reactor = Reactor::new(config).expect("reactor");
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let echo = reactor.serve(any, Echo).unwrap();
    let udp = reactor.serve_datagrams(any, UdpEcho).unwrap();
    let chat = reactor.serve(any, Chat::new(ChatConfig::default())).unwrap();
    let http = reactor.serve(any, Http::new(http)).unwrap();
    let kv = reactor.serve(any, Kv::new(kv)).unwrap();
    Stack { echo, udp, chat, http, kv, _server: common::Server::run(reactor, echo) }
}

fn default_stack() -> Stack {
    stack(Config::default(), HttpConfig::default(), KvConfig::default())
}

impl Stack {
    /// The reactor's counters, from `GET /stats` on a fresh connection (which is itself one
    /// of the `conns_open`).
    fn stats(&self) -> serde_json::Value {
        let mut s = connect(self.http);
        s.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("read /stats");
        let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).expect("a body");
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        json["reactor"].clone()
    }

    /// Waits until only `open` connections (the `/stats` one included) remain and no byte is
    /// buffered for anyone; panics with the last counters after `within`.
    fn wait_until_quiet(&self, open: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let stats = self.stats();
            if stats["conns_open"] == open && stats["input_buffered"] == 0 && stats["output_buffered"] == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "server not quiet after {within:?}: {stats}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One echo round trip on a fresh connection: the server is alive and serving.
    fn echo_ok(&self) {
        let mut s = connect(self.echo);
        s.write_all(b"still serving?").unwrap();
        assert_eq!(read_n(&mut s, 14), b"still serving?");
    }
}

/// Closes `stream` with an RST instead of a FIN (SO_LINGER 0): the peer's next read or write
/// fails with "connection reset".
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
}

/// Writes what the socket takes within its write timeout; returns how much that was.
fn write_some(stream: &mut TcpStream, data: &[u8]) -> usize {
    let mut written = 0;
    while written < data.len() {
        match stream.write(&data[written..]) {
            Ok(0) => break,
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    written
}

/// Reads until EOF, a reset or `within`; returns the bytes and whether the server closed.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    let deadline = Instant::now() + within;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (got, true),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return (got, false),
            Err(e) => panic!("read: {e}"),
        }
        if Instant::now() > deadline {
            return (got, false);
        }
    }
}

// ─── resets and half-open peers ──────────────────────────────────────────────────────────

#[test]
fn resets_mid_read_and_mid_write_leave_nothing_behind() {
    let s = stack(
        Config { max_output: 256 * 1024, ..Config::default() },
        HttpConfig::default(),
        KvConfig::default(),
    );
    let mut bystander = connect(s.echo);
    bystander.write_all(b"before").unwrap();
    assert_eq!(read_n(&mut bystander, 6), b"before");

    // Mid-read: half a request sits in the server's input buffer when the RST comes.
    for (addr, partial) in [
        (s.http, &b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly part"[..]),
        (s.http, b"GET / HTTP/1.1\r\nHost: x\r\nX-Half: "),
        (s.kv, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nnot all of it"),
        (s.chat, b"a line without its newline"),
    ] {
        let mut c = connect(addr);
        c.write_all(partial).unwrap();
        std::thread::sleep(Duration::from_millis(20)); // let the server read it
        reset(c);
    }

    // Mid-write: the server owes a large reply the peer never reads.
    let mut kv = connect(s.kv);
    let big = pattern(200_000, 1);
    kv.write_all(&common::resp(&[b"SET", b"big", &big])).unwrap();
    assert_eq!(read_n(&mut kv, 5), b"+OK\r\n");
    for _ in 0..3 {
        let mut c = connect(s.kv);
        c.write_all(&common::resp(&[b"GET", b"big"]).repeat(20)).unwrap(); // 4 MB of replies
        let mut echo = connect(s.echo);
        echo.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
        write_some(&mut echo, &pattern(2 << 20, 2)); // echoes pile up, unread
        std::thread::sleep(Duration::from_millis(50));
        reset(c);
        reset(echo);
    }

    bystander.write_all(b"after").unwrap();
    assert_eq!(read_n(&mut bystander, 5), b"after");
    drop(bystander);
    drop(kv);
    s.wait_until_quiet(1, Duration::from_secs(5));
    s.echo_ok();
}

#[test]
fn half_open_and_vanishing_peers_are_finished() {
    let idle = Duration::from_millis(400);
    let s = stack(
        Config { idle_timeout: Some(idle), max_output: 64 * 1024, ..Config::default() },
        HttpConfig::default(),
        KvConfig::default(),
    );
    let mut kept = Vec::new();

    // Shuts down writing with a request cut off mid-way: that request can never complete.
    let mut c = connect(s.http);
    c.write_all(b"GET / HTTP/1.1\r\nHost").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    kept.push(c);

    // Shuts down writing after complete requests and never reads the replies: the server
    // writes what the socket takes; the idle timeout ends the rest.
    let mut c = connect(s.echo);
    c.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    write_some(&mut c, &pattern(1 << 20, 3));
    c.shutdown(Shutdown::Write).unwrap();
    kept.push(c);
    let mut c = connect(s.kv);
    c.write_all(&common::resp(&[b"PING"]).repeat(1000)).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    kept.push(c);

    // Never shuts anything down and never reads: a peer whose machine vanished.
    let mut c = connect(s.echo);
    c.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    write_some(&mut c, &pattern(1 << 20, 4));
    kept.push(c);
    let mut c = connect(s.chat);
    c.write_all(b"hello, anyone?\n").unwrap();
    kept.push(c);

    // Closes without reading what it asked for (its kernel answers our reply with RST).
    for _ in 0..5 {
        let mut c = connect(s.http);
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        drop(c);
    }

    s.echo_ok();
    // Everything above is gone within a few idle timeouts, though `kept` still holds the
    // sockets open on our side.
    s.wait_until_quiet(1, idle * 8);
    drop(kept);
}

// ─── UDP ─────────────────────────────────────────────────────────────────────────────────

#[test]
fn udp_empty_and_maximal_datagrams_from_many_sockets() {
    /// 65,535 (IP total length) − 20 (IPv4 header) − 8 (UDP header).
    const MAX_UDP_PAYLOAD: usize = 65_507;
    let s = default_stack();
    let sockets: Vec<UdpSocket> = (0..8)
        .map(|_| {
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            u.connect(s.udp).unwrap();
            u
        })
        .collect();
    // Over the maximum, the datagram cannot even be sent: the kernel refuses it (EMSGSIZE).
    let err = sockets[0].send(&vec![0; MAX_UDP_PAYLOAD + 1]).expect_err("an oversized datagram was sent");
    assert_eq!(err.raw_os_error(), Some(90), "EMSGSIZE expected, got {err}");

    let mut buf = vec![0; MAX_UDP_PAYLOAD + 1];
    for round in 0..6 {
        for (i, u) in sockets.iter().enumerate() {
            let payload = match (round + i) % 3 {
                0 => Vec::new(),
                1 => pattern(MAX_UDP_PAYLOAD, (round * 8 + i) as u64),
                _ => vec![round as u8],
            };
            u.send(&payload).unwrap();
            let n = u.recv(&mut buf).expect("echo of the datagram");
            assert_eq!(n, payload.len(), "round {round} socket {i}");
            assert!(buf[..n] == payload[..], "round {round} socket {i}: bytes differ");
        }
        s.echo_ok(); // TCP is served in between
    }
}

// ─── slowloris ───────────────────────────────────────────────────────────────────────────

/// Opens `n` connections to `addr`, each sending `first`, and returns them.
fn crowd(addr: SocketAddr, n: usize, first: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut c = connect(addr);
            c.set_write_timeout(Some(Duration::from_millis(100))).unwrap();
            c.write_all(first).unwrap();
            c
        })
        .collect()
}

/// Sends one byte on every connection that still takes it; returns how many did.
fn dribble(crowd: &mut [TcpStream], byte: u8) -> usize {
    crowd.iter_mut().map(|c| c.write(&[byte])).filter(Result::is_ok).count()
}

#[test]
fn http_slowloris_is_cut_by_the_head_timeout_while_others_are_served() {
    let head_timeout = Duration::from_millis(500);
    let s =
        stack(Config::default(), HttpConfig { head_timeout, ..HttpConfig::default() }, KvConfig::default());
    let mut dribblers = crowd(s.http, 200, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    let mut normal = connect(s.http);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    // Dribble a byte every 50 ms for three head timeouts; a keep-alive client asks all along.
    while started.elapsed() < head_timeout * 3 {
        dribble(&mut dribblers, b'a');
        let asked = Instant::now();
        normal.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut reply = [0; 512];
        let n = normal.read(&mut reply).unwrap();
        assert!(reply[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
        slowest = slowest.max(asked.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Generous: other tests share the machine. What matters is that it never waits for a
    // head timeout (500 ms) to be answered.
    assert!(slowest < Duration::from_millis(400), "a normal request took {slowest:?}");
    // Every dribbler got its 408 and was closed, however much it kept sending.
    for (i, c) in dribblers.iter_mut().enumerate() {
        let (reply, closed) = read_until_closed(c, Duration::from_secs(2));
        assert!(closed, "dribbler {i} still open");
        assert!(reply.starts_with(b"HTTP/1.1 408 "), "dribbler {i}: {:?}", String::from_utf8_lossy(&reply));
    }
    drop(dribblers);
    drop(normal);
    s.wait_until_quiet(1, Duration::from_secs(3));
}

#[test]
fn an_idle_peer_that_ignores_the_polite_close_is_counted_once() {
    // Silent echo clients that never read nor close: the idle timeout says goodbye (FIN),
    // they ignore it, and the next check closes them hard. Five connections, five idle closes.
    let idle = Duration::from_millis(200);
    let s = stack(
        Config { idle_timeout: Some(idle), ..Config::default() },
        HttpConfig::default(),
        KvConfig::default(),
    );
    let silent: Vec<_> = (0..5).map(|_| connect(s.echo)).collect();
    std::thread::sleep(idle * 6);
    let stats = s.stats();
    assert_eq!(stats["conns_idle_closed"], 5, "{stats}");
    drop(silent);
}

#[test]
fn chat_and_kv_slowloris_is_cut_by_the_idle_timeout() {
    // Chat and kv have no head timeout: a line or a request may take as long as it likes, as
    // long as bytes keep coming. A dribbler slower than the idle timeout is closed by it.
    // (1 s, not less: the talking clients below must never look idle, and on a loaded CI
    // machine this thread has been seen to stall long enough for a 300 ms timeout to close
    // the kv client between two of its requests.)
    let idle = Duration::from_secs(1);
    let s = stack(
        Config { idle_timeout: Some(idle), ..Config::default() },
        HttpConfig::default(),
        KvConfig::default(),
    );
    // Both crowds then dribble 'x': more of the chat line, more of the kv value.
    let mut dribblers = crowd(s.chat, 100, b"a slow line");
    dribblers.extend(crowd(s.kv, 100, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n"));
    let mut kv = connect(s.kv);
    let mut member = connect(s.chat);
    let started = Instant::now();
    // One byte per dribbler every two idle timeouts.
    let mut last_dribble = Instant::now();
    while started.elapsed() < idle * 5 {
        if last_dribble.elapsed() >= idle * 2 {
            dribble(&mut dribblers, b'x');
            last_dribble = Instant::now();
        }
        kv.write_all(&common::resp(&[b"INCR", b"n"])).unwrap();
        let mut reply = [0; 64];
        let n = kv.read(&mut reply).unwrap();
        assert!(reply[..n].starts_with(b":"), "{:?}", String::from_utf8_lossy(&reply[..n]));
        member.write_all(b"still talking\n").unwrap(); // keeps the member busy, not idle
        std::thread::sleep(Duration::from_millis(50));
    }
    // The member was never idle, so it is still in the room, alone now.
    member.write_all(b"/who\n").unwrap();
    member.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut heard = Vec::new();
    let mut buf = [0; 4096];
    while !String::from_utf8_lossy(&heard).contains("*** 1 member") {
        let n = member.read(&mut buf).expect("the member's /who is answered");
        assert!(n > 0, "the busy member was closed");
        heard.extend_from_slice(&buf[..n]);
    }
    for (i, c) in dribblers.iter_mut().enumerate() {
        let (_, closed) = read_until_closed(c, idle * 4);
        assert!(closed, "dribbler {i} still open");
    }
    drop(dribblers);
    // Left alone, the member and the kv client go idle too, and everything is closed.
    s.wait_until_quiet(1, idle * 8);
}

// ─── clients that never read ─────────────────────────────────────────────────────────────

/// A kv client that pipelines GETs of a 16 KiB value and never reads a reply: its requests
/// are tiny (22 bytes), each reply is 16 KiB. Returns a well-behaved client, the hog, and
/// how many request bytes the hog's kernel accepted.
fn kv_pipeliner(s: &Stack) -> (TcpStream, TcpStream, u64) {
    let mut setup = connect(s.kv);
    setup.write_all(&common::resp(&[b"SET", b"v", &pattern(16 * 1024, 5)])).unwrap();
    assert_eq!(read_n(&mut setup, 5), b"+OK\r\n");
    let mut hog = connect(s.kv);
    hog.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
    // 8.8 MB of requests, asking for 6.4 GB of replies: if the server kept executing them,
    // it would run out of memory. Loopback buffers may absorb much of it (they grow to tens
    // of megabytes), so whether our writes block says little; the server's counters tell.
    let gets = common::resp(&[b"GET", b"v"]).repeat(400_000);
    let written = write_some(&mut hog, &gets);
    std::thread::sleep(Duration::from_millis(100));
    (setup, hog, written as u64)
}

#[test]
fn kv_pipeliner_that_never_reads_stops_being_read() {
    let max_output = 256 * 1024;
    let s = stack(Config { max_output, ..Config::default() }, HttpConfig::default(), KvConfig::default());
    let (mut setup, _hog, written) = kv_pipeliner(&s);
    let before = s.stats();
    std::thread::sleep(Duration::from_millis(300));
    let after = s.stats();
    let bytes_in = after["bytes_in"].as_u64().unwrap();
    assert!(
        bytes_in + 1_000_000 < written,
        "only {written} bytes sent, {bytes_in} read: the test proves nothing"
    );
    // Reads have stopped: nothing more comes in while the hog has megabytes queued. (The
    // /stats request itself is read in between: about 60 bytes.)
    let read = bytes_in - before["bytes_in"].as_u64().unwrap();
    assert!(read < 1000, "{read} bytes read from a client owing {} bytes", after["output_buffered"]);
    assert_eq!(after["output_buffered"], before["output_buffered"], "replies are still being made");
    // The well-behaved client is served meanwhile.
    setup.write_all(&common::resp(&[b"PING"])).unwrap();
    assert_eq!(read_n(&mut setup, 7), b"+PONG\r\n");
    eprintln!("kv hog: {written} bytes sent, {bytes_in} read, {} buffered", after["output_buffered"]);
}

/// The stricter promise: not only does the server stop reading, it stops *executing* once
/// the client owes about `max_output` (`Cx::output_room`). Without that, one 64 KiB read of
/// pipelined GETs would be executed whole and buffer ~3,000 replies (48 MiB here): an
/// amplification of request bytes into memory of about 750x.
#[test]
fn kv_pipeliner_that_never_reads_is_held_at_the_output_limit() {
    let max_output = 256 * 1024;
    let s = stack(Config { max_output, ..Config::default() }, HttpConfig::default(), KvConfig::default());
    let (mut setup, _hog, _) = kv_pipeliner(&s);
    let buffered = s.stats()["output_buffered"].as_u64().unwrap();
    assert!(
        buffered <= 2 * max_output as u64,
        "{buffered} bytes buffered for a client that never reads (max_output {max_output})"
    );
    setup.write_all(&common::resp(&[b"PING"])).unwrap();
    assert_eq!(read_n(&mut setup, 7), b"+PONG\r\n");
}

// ─── volume with verification ────────────────────────────────────────────────────────────

/// A deterministic PRNG (SplitMix64), so a failure replays exactly.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Message `seq` of connection `conn`: an 8-byte header naming it, then random bytes, of a
/// random total size between 8 bytes and 8 KiB. The header makes a lost, duplicated or
/// reordered message show up by name.
fn message(rng: &mut SplitMix, conn: u32, seq: u32) -> Vec<u8> {
    let len = 8 + (rng.next() % (8 * 1024 - 8)) as usize;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&conn.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend(std::iter::repeat_with(|| rng.next() as u8).take(len - 8));
    m
}

#[test]
fn ten_thousand_echo_messages_arrive_whole_once_and_in_order() {
    const CONNS: u32 = 100;
    const PER_CONN: u32 = 100;
    const BATCH: u32 = 4; // messages in flight per connection: at most 32 KiB
    let s = default_stack();
    let addr = s.echo;
    let total = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..10u32)
        .map(|t| {
            let total = Arc::clone(&total);
            std::thread::spawn(move || {
                let ids: Vec<u32> = (0..CONNS / 10).map(|i| t * (CONNS / 10) + i).collect();
                let mut conns: Vec<TcpStream> = ids.iter().map(|_| connect(addr)).collect();
                let mut rngs: Vec<SplitMix> = ids.iter().map(|&id| SplitMix(u64::from(id) + 1)).collect();
                for first in (0..PER_CONN).step_by(BATCH as usize) {
                    // Each connection sends a batch, then all batches are read back: many
                    // connections have data in flight at once.
                    let mut sent: Vec<Vec<u8>> = Vec::new();
                    for ((c, rng), &id) in conns.iter_mut().zip(&mut rngs).zip(&ids) {
                        let batch: Vec<u8> =
                            (first..first + BATCH).flat_map(|seq| message(rng, id, seq)).collect();
                        c.write_all(&batch).unwrap();
                        sent.push(batch);
                    }
                    for ((c, batch), &id) in conns.iter_mut().zip(&sent).zip(&ids) {
                        let back = read_n(c, batch.len());
                        if back != *batch {
                            let at = back.iter().zip(batch).position(|(a, b)| a != b).unwrap_or(0);
                            panic!("connection {id}, messages {first}..: first wrong byte at {at}");
                        }
                        total.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                }
                // Nothing more comes back than was sent: no duplicate at the end either.
                for (c, &id) in conns.iter_mut().zip(&ids) {
                    c.shutdown(Shutdown::Write).unwrap();
                    let mut rest = Vec::new();
                    c.read_to_end(&mut rest).unwrap();
                    assert!(rest.is_empty(), "connection {id}: {} extra bytes", rest.len());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client thread failed");
    }
    // ~40 MB each way (10,000 messages of 4 KiB on average).
    assert!(total.load(Ordering::Relaxed) > 30_000_000, "{}", total.load(Ordering::Relaxed));
    s.wait_until_quiet(1, Duration::from_secs(3));
}

// ─── malformed input ─────────────────────────────────────────────────────────────────────

/// A well-behaved client of each TCP service, in a thread, until `stop`: every reply checked.
fn well_behaved_clients(s: &Stack, stop: &Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let (echo, http, kv, stop) = (s.echo, s.http, s.kv, Arc::clone(stop));
    std::thread::spawn(move || {
        let mut e = connect(echo);
        let mut h = connect(http);
        let mut k = connect(kv);
        let mut rounds = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let msg = format!("round {rounds}\n");
            e.write_all(msg.as_bytes()).unwrap();
            assert_eq!(read_n(&mut e, msg.len()), msg.as_bytes());
            k.write_all(&common::resp(&[b"SET", b"well", msg.as_bytes()])).unwrap();
            k.write_all(&common::resp(&[b"GET", b"well"])).unwrap();
            let want = format!("+OK\r\n${}\r\n{msg}\r\n", msg.len());
            assert_eq!(read_n(&mut k, want.len()), want.as_bytes());
            h.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut reply = Vec::new();
            let mut buf = [0; 512];
            while !reply.ends_with(b"Hello, World!\n") {
                let n = h.read(&mut buf).unwrap();
                assert!(n > 0, "HTTP connection closed");
                reply.extend_from_slice(&buf[..n]);
            }
            assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"));
            rounds += 1;
        }
        rounds
    })
}

// kv's malformed-input corpus, shared with the in-memory test.
include!("data/kv_malformed.rs");

#[test]
fn malformed_input_of_every_service_while_others_are_served() {
    let s = stack(
        Config::default(),
        HttpConfig::default(),
        KvConfig { max_bulk: 1024, max_query: 4096, max_args: 64, ..KvConfig::default() },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let served = well_behaved_clients(&s, &stop);

    // kv: the exact Redis error, then EOF; whole and in 3-byte pieces.
    let corpus = kv_malformed_corpus();
    assert_eq!(corpus.len(), 52);
    let mut failures = Vec::new();
    for (input, want) in corpus {
        for pieces in [input.len(), 3] {
            let mut c = connect(s.kv);
            for piece in input.chunks(pieces) {
                c.write_all(piece).unwrap();
            }
            let (reply, closed) = read_until_closed(&mut c, Duration::from_secs(5));
            if reply != want.as_bytes() || !closed {
                failures.push(format!(
                    "{:?} in {pieces}-byte pieces: got {:?}, closed {closed}",
                    String::from_utf8_lossy(&input[..input.len().min(40)]),
                    String::from_utf8_lossy(&reply)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} kv failures:\n{}", failures.len(), failures.join("\n"));

    // HTTP: random bytes are a 400 (or, if they happen to look like a head, 431), then EOF.
    for seed in 0..30 {
        let mut garbage = pattern(300 + seed * 100, seed as u64 + 100);
        garbage.extend_from_slice(b"\r\n\r\n");
        let mut c = connect(s.http);
        c.write_all(&garbage).unwrap();
        let (reply, closed) = read_until_closed(&mut c, Duration::from_secs(5));
        assert!(closed, "seed {seed}: not closed");
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.starts_with("HTTP/1.1 400 ") || reply.starts_with("HTTP/1.1 431 "),
            "seed {seed}: {reply}"
        );
    }

    // Chat: a member sending noise, control sequences and overlong lines stays a member and
    // sends the room only clean lines; a listener checks every line it gets.
    let mut listener = connect(s.chat);
    let mut noisy = connect(s.chat);
    let mut noise = Vec::new();
    for seed in 0..20 {
        noise.extend(pattern(50 + seed * 40, seed as u64 + 7));
        noise.push(b'\n');
    }
    noise.extend_from_slice(b"\x1b[2J\x07clear screen\r\n");
    noise.extend_from_slice(&[b'x'; 10_000]);
    noise.extend_from_slice(b"\n/nick b*d\n/nick\n/bogus\n/me \xff\xfe\nlast line\n");
    noisy.write_all(&noise).unwrap();
    let mut text = Vec::new();
    listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0; 4096];
    while !text.ends_with(b"guest-2: last line\n") {
        let n = listener.read(&mut buf).expect("the listener hears the noisy member's last line");
        assert!(n > 0, "listener closed");
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(text).expect("the room only ever sends valid UTF-8");
    for line in text.lines() {
        assert!(!line.chars().any(|c| c.is_control() && c != '\t'), "control character relayed: {line:?}");
        assert!(!line.contains(&"x".repeat(5000)), "the overlong line was relayed");
    }

    stop.store(true, Ordering::Relaxed);
    let rounds = served.join().expect("a well-behaved client was refused or got a wrong reply");
    assert!(rounds > 10, "the well-behaved clients were served only {rounds} rounds");
    drop((listener, noisy));
    s.wait_until_quiet(1, Duration::from_secs(3));
}

// ─── file descriptors ────────────────────────────────────────────────────────────────────

/// CPU time (user + system) of process `pid` in clock ticks, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).expect("stat format");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the line, utime and stime, are 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn out_of_file_descriptors_the_server_pauses_accepting_and_recovers() {
    // 64 descriptors for the whole process: about 55 connections, after stdio, epoll, the
    // listener, the waker and the signal pipe. `ulimit -n` sets soft and hard limits, so the
    // server cannot raise its own.
    let server = echo_under_nofile_limit(64, &["--max-conns", "1000"]);
    let addr = server.addr("echo:tcp");
    let pid = server.child.id();

    let round_trip = |c: &mut TcpStream, tag: &[u8]| {
        c.write_all(tag).unwrap();
        assert_eq!(read_n(c, tag.len()), tag);
    };
    let mut first = connect(addr);
    round_trip(&mut first, b"first");

    // 100 more: the kernel completes every handshake (the backlog is 1,024), but the server
    // can accept only about 55 before accept(2) fails with EMFILE.
    let mut crowd: Vec<TcpStream> = (0..100).map(|_| connect(addr)).collect();
    std::thread::sleep(Duration::from_millis(300));

    // The server is up and serves the connection it has...
    round_trip(&mut first, b"still here");
    assert!(server.child.id() == pid && std::fs::metadata(format!("/proc/{pid}")).is_ok());
    // ...without spinning: over one second of waiting, it uses little CPU (a retry every
    // `accept_pause`, 100 ms, not a busy loop). 100 ticks = one second of one core.
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(pid) - before;
    assert!(used <= 20, "the server used {used} ticks of CPU in 1 s while out of descriptors");
    // The last connection of the crowd is still waiting in the backlog.
    let last = crowd.last_mut().unwrap();
    last.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    last.write_all(b"?").unwrap();
    let mut buf = [0; 1];
    assert!(
        matches!(last.read(&mut buf), Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "a connection beyond the descriptor limit was answered"
    );
    last.set_read_timeout(Some(Duration::from_secs(10))).unwrap();

    // Free descriptors: the oldest 60 of the crowd leave. The server accepts the rest by
    // itself (nothing else wakes it), and every remaining connection is served; the last
    // one gets its "?" back.
    let waiting = crowd.split_off(60);
    drop(crowd);
    let mut waiting = waiting;
    assert_eq!(read_n(waiting.last_mut().unwrap(), 1), b"?");
    for (i, c) in waiting.iter_mut().enumerate() {
        round_trip(c, format!("c{i}").as_bytes());
    }
    round_trip(&mut first, b"last");
}

/// Without `--max-conns`, the server sizes its connection limit to the descriptors it has (as
/// Redis sizes maxclients): past it, clients get the polite refusal line, not a hung connect.
#[test]
fn the_default_connection_limit_fits_the_descriptor_limit() {
    let server = echo_under_nofile_limit(64, &[]);
    let addr = server.addr("echo:tcp");

    // 64 descriptors, 16 reserved plus one per listener: 47 connections fit.
    let mut served = Vec::new();
    for i in 0..47 {
        let mut c = connect(addr);
        let tag = format!("c{i:02}");
        c.write_all(tag.as_bytes()).unwrap();
        assert_eq!(read_n(&mut c, tag.len()), tag.as_bytes(), "connection {i} within the limit");
        served.push(c);
    }
    let mut refused = connect(addr);
    let mut reply = String::new();
    refused.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("server busy"), "the 48th connection got {reply:?}");
    // The ones inside the limit are untouched.
    served[0].write_all(b"ok").unwrap();
    assert_eq!(read_n(&mut served[0], 2), b"ok");
}

/// The same with `--reactors 8`: each reactor holds descriptors of its own (its epoll, its
/// waker, its signal pipe), and the limit must leave room for them too, or accept runs out
/// of descriptors below the limit and the next clients hang instead of being refused.
#[test]
fn with_several_reactors_the_default_connection_limit_still_fits() {
    let server = echo_under_nofile_limit(64, &["--reactors", "8"]);
    let addr = server.addr("echo:tcp");
    let mut served = Vec::new();
    loop {
        assert!(served.len() < 64, "64 connections served under `ulimit -n 64`");
        let mut c = connect(addr);
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        c.write_all(b"hi").unwrap();
        let mut reply = [0u8; 2];
        if let Err(e) = c.read_exact(&mut reply) {
            panic!("connection {} got neither its echo nor the refusal: {e}", served.len());
        }
        if &reply == b"se" {
            break; // "server busy: ..."
        }
        assert_eq!(&reply, b"hi");
        served.push(c);
    }
    assert!(served.len() >= 8, "only {} connections served", served.len());
    served[0].write_all(b"ok").unwrap();
    assert_eq!(read_n(&mut served[0], 2), b"ok");
}

/// The real binary serving echo on 127.0.0.1:0 under `ulimit -n nofile` (which sets the soft
/// and the hard limit, so the server cannot raise its own), with `extra` flags.
fn echo_under_nofile_limit(nofile: u32, extra: &[&str]) -> common::Binary {
    let script = format!(
        "ulimit -n {nofile} && exec {} serve --echo 127.0.0.1:0 {}",
        env!("CARGO_BIN_EXE_reactor"),
        extra.join(" ")
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let mut out = child.stdout.take().expect("stdout");
    let mut line = Vec::new();
    let mut byte = [0; 1];
    while !line.ends_with(b"\n") {
        assert_eq!(out.read(&mut byte).expect("read stdout"), 1, "server exited before binding");
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).unwrap();
    let addr: SocketAddr = line.trim().rsplit("tcp://").next().unwrap().parse().expect("address");
    common::Binary { child, addrs: vec![("echo:tcp".into(), addr)] }
}
