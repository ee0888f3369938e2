//! The HTTP/1.1 service over real sockets: a third-party client (`ureq`) for ordinary
//! requests and keep-alive, raw sockets for pipelining, every error status, slowloris and a
//! malformed-request corpus.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use reactor::reactor::{Config, Reactor};
use reactor::service::http::{Http, HttpConfig};

fn server(config: HttpConfig) -> (SocketAddr, common::Server) {
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let addr = reactor.serve("127.0.0.1:0".parse().unwrap(), Http::new(config)).unwrap();
    (addr, common::Server::run(reactor, addr))
}

/// Sends `request` on a fresh connection and reads until the server closes it.
fn exchange_until_close(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = common::connect(addr);
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("server closes after an error reply");
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn ureq_gets_hello_and_reuses_the_connection() {
    let (addr, _s) = server(HttpConfig::default());
    let agent = ureq::Agent::new_with_defaults();
    for _ in 0..5 {
        let mut resp = agent.get(&format!("http://{addr}/")).call().unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/plain");
        assert!(resp.headers().contains_key("date"));
        assert_eq!(resp.body_mut().read_to_string().unwrap(), "Hello, World!\n");
    }
    let mut resp = agent.post(&format!("http://{addr}/echo")).send("round trip body").unwrap();
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "round trip body");
    // Keep-alive: six requests, one connection.
    let mut stats = agent.get(&format!("http://{addr}/stats")).call().unwrap();
    let json: serde_json::Value = serde_json::from_str(&stats.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(json["reactor"]["conns_total"], 1, "{json}");
    assert_eq!(json["http"]["requests"], 7, "{json}");
}

#[test]
fn ureq_sees_404_and_405() {
    let (addr, _s) = server(HttpConfig::default());
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    assert_eq!(agent.get(&format!("http://{addr}/nope")).call().unwrap().status(), 404);
    let resp = agent.delete(&format!("http://{addr}/")).call().unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, HEAD, OPTIONS");
    let mut metrics = agent.get(&format!("http://{addr}/metrics")).call().unwrap();
    let text = metrics.body_mut().read_to_string().unwrap();
    assert!(text.contains("# TYPE reactor_connections_open gauge"), "{text}");
}

#[test]
fn ten_pipelined_requests_get_ten_responses_in_order() {
    let (addr, _s) = server(HttpConfig::default());
    let mut stream = common::connect(addr);
    let mut batch = Vec::new();
    for i in 0..9 {
        let body = format!("request {i}");
        batch.extend_from_slice(
            format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                .as_bytes(),
        );
    }
    batch.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(&batch).unwrap(); // one write
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let mut rest = reply.as_str();
    for i in 0..9 {
        let at =
            rest.find(&format!("request {i}")).unwrap_or_else(|| panic!("response {i} missing: {reply}"));
        assert!(rest[..at].starts_with("HTTP/1.1 200 OK\r\n"), "response {i}: {rest}");
        rest = &rest[at + format!("request {i}").len()..];
    }
    assert!(rest.contains("HTTP/1.1 200 OK\r\n") && rest.ends_with("Hello, World!\n"), "{rest}");
    assert_eq!(reply.matches("HTTP/1.1 200 OK").count(), 10);
}

/// "R-U-Dead-Yet": a body that stops arriving gets 408 and a close after the body timeout;
/// a slow but steady one, each byte inside the timeout, is answered in full.
#[test]
fn a_stalled_body_is_cut_off_and_a_slow_steady_one_is_not() {
    let body_timeout = Duration::from_millis(300);
    let (addr, _s) = server(HttpConfig { body_timeout, ..HttpConfig::default() });
    let mut stalled = common::connect(addr);
    let started = Instant::now();
    stalled.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nfirst bytes").unwrap();
    let mut steady = common::connect(addr);
    steady.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n").unwrap();
    for b in b"steady" {
        std::thread::sleep(body_timeout / 2);
        steady.write_all(&[*b]).unwrap();
    }
    let mut reply = Vec::new();
    let _ = stalled.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408 ") && reply.contains("Connection: close"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut reply = [0; 512];
    let n = steady.read(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply[..n]);
    assert!(reply.starts_with("HTTP/1.1 200 ") && reply.ends_with("\r\n\r\nsteady"), "{reply}");
}

#[test]
fn slowloris_head_is_cut_off_by_the_head_timeout() {
    let (addr, _s) = server(HttpConfig { head_timeout: Duration::from_millis(400), ..HttpConfig::default() });
    let mut stream = common::connect(addr);
    let started = Instant::now();
    let mut reply = Vec::new();
    for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Dribble: " {
        if stream.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        if started.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408 "), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let (addr, _s) = server(HttpConfig::default());
    let mut stream = common::connect(addr);
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let mut buf = [0; 64];
    let n = stream.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").unwrap();
    let mut buf = [0; 512];
    let n = stream.read(&mut buf).unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert!(reply.starts_with("HTTP/1.1 200 OK") && reply.ends_with("hello"), "{reply}");
}

/// Every error status over a real socket: the status line, `Connection: close`, and EOF.
#[test]
fn malformed_request_corpus_gets_the_right_status_then_close() {
    let (addr, _s) = server(HttpConfig { max_body: 1024, ..HttpConfig::default() });
    let big_header = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(9000));
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect::<String>();
    let many_headers = format!("GET / HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("400", b"garbage\r\n\r\n".to_vec()),
        ("400", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec()),
        ("400", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ("400", b"GET\r\n\r\n".to_vec()),
        ("400", b"GET /\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n".to_vec()),
        ("400", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("400", b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHost x\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\n: empty-name\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec()),
        (
            "400",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec(),
        ),
        ("400", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec()),
        (
            "400",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"
                .to_vec(),
        ),
        ("400", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n".to_vec()),
        (
            "400",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n".to_vec(),
        ),
        ("400", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n".to_vec()),
        ("400", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01garbage after\r\n\r\n".to_vec()),
        ("400", b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nX: \x01\x02\r\n\r\n".to_vec()),
        ("400", b"GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\rHost: x\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.x\r\nHost: x\r\n\r\n".to_vec()),
        ("400", b"GET / FOO/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("400", b"GET http:/// HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("400", b"GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("400", b"GET http://x:y/ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("400", b"GET http://:8080/ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("400", b"GET / HTTP/1.1\r\nHost: :8080\r\n\r\n".to_vec()),
        ("400", b"GET /?q#frag HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("431", big_header.into_bytes()),
        ("431", many_headers.into_bytes()),
        ("413", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".to_vec()),
        (
            "413",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n"
                .to_vec(),
        ),
        ("413", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n".to_vec()),
        ("400", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec()),
        ("501", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec()),
        ("400", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_vec()),
        ("400", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n".to_vec()),
        (
            "400",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
                .to_vec(),
        ),
        ("505", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n".to_vec()),
        ("505", b"GET / HTTP/0.9\r\nHost: x\r\n\r\n".to_vec()),
        ("505", b"GET / HTTP/3.0\r\nHost: x\r\n\r\n".to_vec()),
        ("417", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\n".to_vec()),
        ("200", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()),
        ("200", b"GET / HTTP/1.0\r\n\r\n".to_vec()),
        ("404", b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()),
        ("405", b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()),
        ("405", b"GET /echo HTTP/1.0\r\n\r\n".to_vec()),
    ];
    assert!(cases.len() >= 50);
    let mut failures = Vec::new();
    for (i, (status, request)) in cases.iter().enumerate() {
        let reply = exchange_until_close(addr, request);
        // The status of the *last* response: a valid request followed by garbage is answered
        // 200, then 400.
        let first = reply.rfind("HTTP/1.1 ").map_or("", |at| reply[at..].lines().next().unwrap_or(""));
        let ok = first.starts_with(&format!("HTTP/1.1 {status} "))
            && (reply.contains("Connection: close\r\n") || reply.contains("connection: close\r\n"));
        if !ok {
            failures.push(format!(
                "case {i} {:?}: expected {status}, got {first:?}",
                String::from_utf8_lossy(&request[..request.len().min(60)])
            ));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    // And the server is still fine for everyone else.
    let reply = exchange_until_close(addr, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 200 OK"));
    let _ = TcpStream::connect(addr).unwrap();
}

#[test]
fn a_peer_that_owes_reads_but_dribbles_a_head_is_still_a_slowloris() {
    // It leaves a big reply unread (owed output, but under the output limit, so we keep
    // reading it) and dribbles the next head: that must meet the head timeout. Postponing it
    // is only for a peer we have stopped reading.
    let config = Config { max_output: 64 * 1024 * 1024, ..Config::default() };
    let mut reactor = Reactor::new(config).unwrap();
    let http = HttpConfig {
        max_body: 32 * 1024 * 1024,
        head_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    let addr = reactor.serve("127.0.0.1:0".parse().unwrap(), Http::new(http)).unwrap();
    let _s = common::Server::run(reactor, addr);
    let mut c = common::connect(addr);
    // More than the kernel's buffers on both sides can hold, so the reply stays owed.
    let body = vec![b'x'; 24 * 1024 * 1024];
    let head = format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", body.len());
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&body).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    // Five head timeouts of dribbling, then the end of the head.
    for i in 0..15 {
        std::thread::sleep(Duration::from_millis(100));
        if c.write_all(format!("X-{i}: y\r\n").as_bytes()).is_err() {
            break; // already closed: fine
        }
    }
    let _ = c.write_all(b"Host: a\r\n\r\n");
    let mut all = Vec::new();
    let _ = c.read_to_end(&mut all);
    let tail = String::from_utf8_lossy(&all[all.len().saturating_sub(300)..]).into_owned();
    assert!(tail.contains("HTTP/1.1 408"), "the dribbled head was answered, not timed out: {tail:?}");
}
