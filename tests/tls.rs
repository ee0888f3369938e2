//! TLS on every TCP service, driven by the reactor without blocking: a rustls client against
//! each service, `openssl s_client` (TLS 1.2 and 1.3) and curl for interop, and the failures
//! that must stay local (plaintext to a TLS port, a stalled handshake, a malformed hello, an
//! untrusted CA), and a clean close answered with `close_notify`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reactor::reactor::{Config, Reactor};
use reactor::service::chat::{Chat, ChatConfig};
use reactor::service::echo::Echo;
use reactor::service::http::{Http, HttpConfig};
use reactor::service::kv::{Kv, KvConfig};
use reactor::tls::{self, Identity};
use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};

struct TlsServer {
    echo: SocketAddr,
    chat: SocketAddr,
    http: SocketAddr,
    kv: SocketAddr,
    client: Arc<rustls::ClientConfig>,
    cert_file: std::path::PathBuf,
    _server: common::Server,
}

/// Every service behind TLS, on one reactor, with a certificate made for this test.
fn tls_server(config: Config) -> TlsServer {
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let plain = tls::server_config(&identity, &[]).unwrap();
    let http_config = tls::server_config(&identity, &[b"http/1.1"]).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut reactor = Reactor::new(config).unwrap();
    let svc = reactor.add_service(Echo);
    let echo = reactor.listen_tls(any, svc, plain.clone()).unwrap();
    let svc = reactor.add_service(Chat::new(ChatConfig::default()));
    let chat = reactor.listen_tls(any, svc, plain.clone()).unwrap();
    let svc = reactor.add_service(Http::new(HttpConfig::default()));
    let http = reactor.listen_tls(any, svc, http_config).unwrap();
    let svc = reactor.add_service(Kv::new(KvConfig::default()));
    let kv = reactor.listen_tls(any, svc, plain).unwrap();
    let cert_file =
        std::env::temp_dir().join(format!("reactor-test-{}-{}.pem", std::process::id(), echo.port()));
    identity.write_cert(&cert_file).unwrap();
    let client = tls::client_config(Some(&cert_file), false).unwrap();
    TlsServer { echo, chat, http, kv, client, cert_file, _server: common::Server::run(reactor, echo) }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.cert_file);
    }
}

fn tls_connect(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let tcp = common::connect(addr);
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

#[test]
fn rustls_client_talks_to_every_service() {
    let s = tls_server(Config::default());
    // echo
    let mut echo = tls_connect(s.echo, &s.client);
    echo.write_all(b"Hello, Server!").unwrap();
    let mut buf = [0; 14];
    echo.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"Hello, Server!");
    // chat: the greeting is written when the service opens, once the handshake is done
    let mut chat = BufReader::new(tls_connect(s.chat, &s.client));
    let mut line = String::new();
    chat.read_line(&mut line).unwrap();
    assert!(line.starts_with("*** welcome, you are guest-1"), "{line}");
    // http, with ALPN
    let mut http = tls_connect(s.http, &s.client);
    http.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    http.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK") && reply.ends_with("Hello, World!\n"), "{reply}");
    // kv
    let mut kv = tls_connect(s.kv, &s.client);
    kv.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap();
    let mut buf = [0; 12];
    kv.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+OK\r\n$1\r\nv\r\n");
}

#[test]
fn http_offers_alpn_http11() {
    let s = tls_server(Config::default());
    let mut config = (*s.client).clone();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut http = tls_connect(s.http, &Arc::new(config));
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    http.read_to_string(&mut reply).unwrap();
    assert_eq!(http.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[test]
fn one_mebibyte_echo_over_tls_matches_sha256() {
    let s = tls_server(Config { max_output: 64 * 1024, ..Config::default() });
    let data = common::pattern(1 << 20, 21);
    let mut client = tls_connect(s.echo, &s.client);
    // One thread: write in pieces and read what is ready, so neither side can deadlock on a
    // full buffer (rustls streams are not split into reader and writer halves).
    client.get_ref().set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut back = Vec::with_capacity(data.len());
    let mut buf = vec![0; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(20);
    for piece in data.chunks(16 * 1024) {
        client.write_all(piece).unwrap();
        drain(&mut client, &mut buf, &mut back);
    }
    while back.len() < data.len() {
        assert!(Instant::now() < deadline, "only {} bytes came back", back.len());
        drain(&mut client, &mut buf, &mut back);
    }
    assert_eq!(Sha256::digest(&back), Sha256::digest(&data));
}

fn drain(client: &mut impl Read, buf: &mut [u8], back: &mut Vec<u8>) {
    loop {
        match client.read(buf) {
            Ok(0) => return,
            Ok(n) => back.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn plaintext_garbage_and_stalled_handshakes_stay_local() {
    let s = tls_server(Config { handshake_timeout: Duration::from_millis(300), ..Config::default() });
    let mut good = tls_connect(s.echo, &s.client);
    good.write_all(b"before").unwrap();
    let mut buf = [0; 6];
    good.read_exact(&mut buf).unwrap();

    // Plaintext to the TLS port: an alert, then the close.
    let mut plain = common::connect(s.echo);
    plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert!(reply.is_empty() || reply[0] == 0x15, "expected a TLS alert record, got {reply:?}");

    // A client that connects and never says hello is cut at the handshake timeout.
    let mut stalled = common::connect(s.echo);
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = stalled.read_to_end(&mut sink);
    assert!(started.elapsed() < Duration::from_secs(5), "stalled handshake was not cut");

    // A client that starts a handshake and vanishes.
    let half = common::connect(s.echo);
    (&half).write_all(&[0x16, 0x03, 0x01, 0x00, 0xff, 0x01]).unwrap();
    drop(half);

    good.write_all(b"after!").unwrap();
    good.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"after!");
}

#[test]
fn a_malformed_client_hello_gets_an_alert_and_a_clean_close_is_answered_in_kind() {
    let s = tls_server(Config::default());
    let mut good = tls_connect(s.echo, &s.client);
    good.write_all(b"before").unwrap();
    let mut buf = [0; 6];
    good.read_exact(&mut buf).unwrap();

    // A handshake record holding a ClientHello with an empty body: rustls cannot decode it.
    let mut bad = common::connect(s.echo);
    bad.write_all(&[0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00]).unwrap();
    let mut reply = Vec::new();
    let _ = bad.read_to_end(&mut reply);
    assert_eq!(reply.first(), Some(&0x15), "expected an alert record, then EOF; got {reply:?}");

    // A client that ends with close_notify gets close_notify back before the FIN: rustls
    // reports that as a clean end (Ok(0)), and a bare FIN as an UnexpectedEof error.
    let mut leaving = tls_connect(s.echo, &s.client);
    leaving.write_all(b"bye").unwrap();
    let mut three = [0; 3];
    leaving.read_exact(&mut three).unwrap();
    leaving.conn.send_close_notify();
    leaving.flush().unwrap();
    let mut rest = Vec::new();
    leaving.read_to_end(&mut rest).expect("the server's close_notify, then EOF");
    assert!(rest.is_empty());

    good.write_all(b"after!").unwrap();
    good.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"after!");
}

#[test]
fn a_services_last_words_reach_a_tls_peer_before_close_notify() {
    // The chat says why it closes an idle member; over TLS that line must be encrypted
    // before close_notify, since a TLS client discards whatever follows it.
    let s = tls_server(Config { idle_timeout: Some(Duration::from_millis(300)), ..Config::default() });
    let mut member = BufReader::new(tls_connect(s.chat, &s.client));
    let mut line = String::new();
    member.read_line(&mut line).unwrap();
    assert!(line.starts_with("*** welcome"), "{line:?}");
    let mut rest = String::new();
    member.read_to_string(&mut rest).expect("the notice, then close_notify and EOF");
    assert_eq!(rest, "*** idle too long, disconnected\n");
}

#[test]
fn the_chat_meets_a_tls_peer_only_once_its_handshake_is_done() {
    let identity = Identity::self_signed(&["localhost"]).unwrap();
    let config = tls::server_config(&identity, &[]).unwrap();
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let room = reactor.add_service(Chat::new(ChatConfig { max_members: Some(2), ..ChatConfig::default() }));
    let addr = reactor.listen_tls("127.0.0.1:0".parse().unwrap(), room, config).unwrap();
    let cert = std::env::temp_dir().join(format!("reactor-room-{}-{}.pem", std::process::id(), addr.port()));
    identity.write_cert(&cert).unwrap();
    let client = tls::client_config(Some(&cert), false).unwrap();
    std::fs::remove_file(&cert).unwrap();
    let _server = common::Server::run(reactor, addr);

    let mut first = BufReader::new(tls_connect(addr, &client));
    let mut line = String::new();
    first.read_line(&mut line).unwrap();
    assert!(line.starts_with("*** welcome, you are guest-1"), "{line:?}");
    // A peer that connects and never says hello is not a member: nobody hears of it, and
    // it does not take the room's second place.
    let _silent = common::connect(addr);
    let mut second = BufReader::new(tls_connect(addr, &client));
    line.clear();
    second.read_line(&mut line).unwrap();
    assert!(line.starts_with("*** welcome, you are guest-2 (2 members here)"), "{line:?}");
    line.clear();
    first.read_line(&mut line).unwrap();
    assert_eq!(line, "*** guest-2 joined\n", "the silent peer was announced");
    // The room is full now, and a TLS peer can read why.
    let mut third = tls_connect(addr, &client);
    let mut told = String::new();
    third.read_to_string(&mut told).expect("the refusal, then close_notify");
    assert_eq!(told, "*** the room is full, try again later\n");
}

#[test]
fn a_tls_pipeline_ended_by_close_notify_gets_every_reply() {
    // 40 GETs of 64 KiB and close_notify in one write: kv holds GETs back at the 1 MiB output
    // limit, and the close_notify, decrypted in the same read, must wait behind them.
    let s = tls_server(Config::default());
    let mut kv = tls_connect(s.kv, &s.client);
    let value = "v".repeat(64 * 1024);
    kv.write_all(&common::resp(&[b"SET", b"big", value.as_bytes()])).unwrap();
    let mut ok = [0; 5];
    kv.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");
    kv.conn.writer().write_all(&b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(40)).unwrap();
    kv.conn.send_close_notify();
    let mut wire = Vec::new();
    while kv.conn.wants_write() {
        kv.conn.write_tls(&mut wire).unwrap();
    }
    kv.sock.write_all(&wire).unwrap();
    let mut all = Vec::new();
    kv.read_to_end(&mut all).expect("every reply, then the server's close_notify");
    let reply = format!("$65536\r\n{value}\r\n");
    assert_eq!(all.len() / reply.len(), 40, "replies before the close");
    assert!(all == reply.repeat(40).into_bytes(), "replies differ");
}

#[test]
fn a_handshake_that_ends_after_shutdown_began_is_drained_too() {
    // An HTTPS peer accepted before SIGTERM finishes its handshake after it, then sends
    // nothing (a browser's preconnect): it must be closed as idle keep-alive, not held for
    // the whole grace period.
    let s = tls_server(Config { shutdown_grace: Duration::from_secs(20), ..Config::default() });
    let mut tcp = common::connect(s.http);
    std::thread::sleep(Duration::from_millis(100)); // accepted
    s._server.handle.shutdown();
    std::thread::sleep(Duration::from_millis(100));
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(s.client.clone(), name).unwrap();
    let started = Instant::now();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    let mut https = rustls::StreamOwned::new(conn, tcp);
    let mut rest = Vec::new();
    https.read_to_end(&mut rest).expect("close_notify, then EOF");
    assert!(rest.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5), "held for {:?}", started.elapsed());
}

#[test]
fn a_client_that_does_not_trust_the_certificate_fails_and_the_server_goes_on() {
    let s = tls_server(Config::default());
    let stranger = Identity::self_signed(&["localhost"]).unwrap();
    let path = std::env::temp_dir().join(format!("reactor-stranger-{}.pem", std::process::id()));
    stranger.write_cert(&path).unwrap();
    let untrusting = tls::client_config(Some(&path), false).unwrap();
    std::fs::remove_file(&path).unwrap();
    let mut client = tls_connect(s.echo, &untrusting);
    let err = client.write_all(b"x").and_then(|_| client.flush()).and_then(|_| client.read(&mut [0; 1]));
    assert!(err.is_err(), "handshake with an unknown CA must fail");
    let mut good = tls_connect(s.echo, &s.client);
    good.write_all(b"ok").unwrap();
    let mut buf = [0; 2];
    good.read_exact(&mut buf).unwrap();
}

#[test]
fn openssl_s_client_speaks_tls12_and_tls13() {
    if !common::have("openssl") {
        return;
    }
    // s_client keeps the session open after its input ends; the server's idle timeout is
    // what closes it (with close_notify), so keep that short here.
    let s = tls_server(Config { idle_timeout: Some(Duration::from_millis(700)), ..Config::default() });
    for version in ["-tls1_2", "-tls1_3"] {
        let out = common::output_with_input(
            Command::new("openssl")
                .args(["s_client", "-connect", &s.echo.to_string(), version, "-CAfile"])
                .arg(&s.cert_file)
                .args(["-verify_return_error", "-quiet", "-ign_eof"]),
            b"Hello over openssl\n",
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Hello over openssl\n",
            "{version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn curl_trusts_the_written_certificate_for_https() {
    if !common::have("curl") {
        return;
    }
    let s = tls_server(Config::default());
    let out = common::output(
        Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&s.cert_file)
            .arg(format!("https://localhost:{}/", s.http.port())),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"Hello, World!\n");
}

/// Plain HTTP to the HTTPS port (`curl http://` where `https://` was meant) gets nginx's kind
/// of answer, a `400` in plaintext that says what happened, instead of a TLS alert that curl
/// would print as garbage; the echo port, whose service has nothing to say, still alerts.
#[test]
fn plain_http_to_an_https_port_is_told_so_in_plain_http() {
    let s = tls_server(Config::default());
    let mut plain = common::connect(s.http);
    plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    plain.read_to_end(&mut reply).expect("a clean close after the reply, not a reset");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    assert!(
        reply.ends_with("\r\n\r\nThis port speaks HTTPS: a plain HTTP request was sent to it.\n"),
        "{reply}"
    );
    assert!(reply.contains("\r\nDate: "), "a 4xx carries a Date (RFC 9110 6.6.1): {reply}");
    // A HEAD's answer has no content, this one too.
    let mut head = common::connect(s.http);
    head.write_all(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    head.read_to_end(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400 ") && reply.ends_with("\r\n\r\n"), "{reply}");

    // Not a request line (nor a method: a PROXY header on the wrong listener): the alert.
    for not_http in [&b"\x00\x01 not a request\r\n"[..], b"PROXY TCP4 127.0.0.2 127.0.0.1 1 2\r\n"] {
        let mut garbage = common::connect(s.http);
        garbage.write_all(not_http).unwrap();
        let mut reply = Vec::new();
        let _ = garbage.read_to_end(&mut reply);
        assert!(reply.is_empty() || reply[0] == 0x15, "not HTTP: the alert, got {reply:?}");
    }

    if common::have("curl") {
        let out = common::output(
            Command::new("curl")
                .args(["-sS", "-w", "%{http_code}"])
                .arg(format!("http://127.0.0.1:{}/", s.http.port())),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("This port speaks HTTPS") && stdout.ends_with("400"), "{stdout}");
    }
    // HTTPS on the same port is unaffected.
    let mut https = tls_connect(s.http, &s.client);
    https.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    https.read_to_end(&mut reply).unwrap();
    assert!(reply.ends_with(b"Hello, World!\n"));
}

/// The body timeout counts the peer's bytes as they arrive, not as TLS records complete: a
/// slow but steady upload over TLS, whose body is one record taking longer than the timeout
/// to come in, is answered in full, as it is in plaintext (and as nginx's client_body_timeout,
/// reset by every read, allows). Before, only a whole record's plaintext reset the clock: at
/// 16 KiB records, an upload slower than 273 bytes a second got 408 at the default 60 s.
#[test]
fn a_slow_steady_tls_body_is_not_cut_off_between_records() {
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let http_config = tls::server_config(&identity, &[b"http/1.1"]).unwrap();
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let body_timeout = Duration::from_millis(400);
    let svc = reactor.add_service(Http::new(HttpConfig { body_timeout, ..HttpConfig::default() }));
    let addr = reactor.listen_tls("127.0.0.1:0".parse().unwrap(), svc, http_config).unwrap();
    let cert_file =
        std::env::temp_dir().join(format!("reactor-test-{}-{}.pem", std::process::id(), addr.port()));
    identity.write_cert(&cert_file).unwrap();
    let client = tls::client_config(Some(&cert_file), false).unwrap();
    let _ = std::fs::remove_file(&cert_file);
    let _server = common::Server::run(reactor, addr);

    let mut stream = tls_connect(addr, &client);
    stream.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n").unwrap();
    stream.flush().unwrap();
    // The body as one record, whose ciphertext goes out a few bytes at a time, each gap well
    // inside the timeout, the whole of it three times as long.
    stream.conn.writer().write_all(&[b'b'; 300]).unwrap();
    let mut record = Vec::new();
    while stream.conn.wants_write() {
        stream.conn.write_tls(&mut record).unwrap();
    }
    let pieces = 30;
    for piece in record.chunks(record.len().div_ceil(pieces)) {
        std::thread::sleep(body_timeout * 3 / pieces as u32 + Duration::from_millis(10));
        stream.sock.write_all(piece).unwrap();
    }
    let mut reply = Vec::new();
    let mut buf = [0; 1024];
    while !reply.ends_with(&[b'b'; 300]) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
}

#[test]
fn a_tls_member_dropped_as_too_slow_sees_a_cut_stream_not_garbage() {
    // What a member too slow to keep up was owed is cut off wherever the kernel stopped taking
    // it, most likely inside a TLS record. Anything sent after that (the chat's notice, a
    // close_notify) would be read as the rest of that record and fail its authentication: the
    // peer's library would report a corrupt stream. So such a peer gets only the FIN, and sees
    // what happened: a stream that ended without close_notify.
    let s = tls_server(Config { max_output: 64 * 1024, ..Config::default() });
    let mut talker = BufReader::new(tls_connect(s.chat, &s.client));
    let mut listener = BufReader::new(tls_connect(s.chat, &s.client));
    let mut line = String::new();
    talker.read_line(&mut line).unwrap();
    assert!(line.starts_with("*** welcome, you are guest-1"), "{line:?}");
    line.clear();
    listener.read_line(&mut line).unwrap();
    assert!(line.starts_with("*** welcome, you are guest-2"), "{line:?}");
    line.clear();
    talker.read_line(&mut line).unwrap();
    assert_eq!(line, "*** guest-2 joined\n");
    // Three slow members, each dropped on its own: whether last words would have found room
    // is a matter of timing (below), so three chances make a regression show more surely.
    let mut slow = Vec::new();
    for n in 3..6 {
        let mut member = BufReader::new(tls_connect(s.chat, &s.client));
        line.clear();
        member.read_line(&mut line).unwrap();
        assert!(line.starts_with(&format!("*** welcome, you are guest-{n}")), "{line:?}");
        for other in [&mut talker, &mut listener] {
            line.clear();
            other.read_line(&mut line).unwrap();
            assert_eq!(line, format!("*** guest-{n} joined\n"));
        }
        slow.push(member);
    }

    // The slow members read, but far slower than the talker talks. Reading (rather than never
    // reading) matters: a drop then often finds room in the kernel's buffer, where last words
    // would have gone out after the cut record.
    let readers: Vec<_> = slow
        .into_iter()
        .map(|mut member| {
            member.get_mut().sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut chunk = [0u8; 2048];
                let end = loop {
                    match member.read(&mut chunk) {
                        Ok(0) => break Ok(()),
                        Ok(n) => got.extend_from_slice(&chunk[..n]),
                        Err(e) => break Err(e),
                    }
                    std::thread::sleep(Duration::from_millis(1));
                };
                (got, end)
            })
        })
        .collect();
    // Far beyond what a slow member's 64 KiB limit and both kernels' buffers can hold.
    let text = "y".repeat(1000);
    let whole = format!("guest-1: {text}\n");
    let mut dropped = 0;
    for _ in 0..40_000 {
        talker.get_mut().write_all(format!("{text}\n").as_bytes()).unwrap();
        loop {
            line.clear();
            listener.read_line(&mut line).unwrap();
            if line.starts_with("*** guest-") && line.ends_with(" was disconnected (too slow)\n") {
                dropped += 1;
                continue;
            }
            assert_eq!(line, whole);
            break;
        }
        if dropped == 3 {
            break;
        }
    }
    assert_eq!(dropped, 3, "not every slow member was disconnected");

    for reader in readers {
        // Whole lines of the talker's (the last one perhaps cut), then the end of a cut
        // stream; never undecryptable bytes, nor a clean close.
        let (got, end) = common::join_within(reader, Duration::from_secs(60));
        let end = end.expect_err("a cut stream, not a clean close");
        assert_eq!(end.kind(), std::io::ErrorKind::UnexpectedEof, "{end}");
        let got = String::from_utf8(got).unwrap();
        assert!(!got.is_empty(), "a slow member was sent nothing before the cut");
        for (i, line) in got.split_inclusive('\n').enumerate() {
            let notice = line.starts_with("*** guest-") && line.ends_with('\n'); // others join, leave
            let talk = line == whole || (!line.ends_with('\n') && whole.starts_with(line));
            assert!(notice || talk, "line {i}: {line:?}");
        }
    }
}

/// A fresh self-signed certificate for localhost and 127.0.0.1: (certificate PEM, key PEM).
fn cert_and_key() -> (String, String) {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    (made.cert.pem(), made.signing_key.serialize_pem())
}

/// Whether a client that trusts only `trusted` completes a handshake with `addr` and gets an
/// echo back.
fn trusted_by(addr: SocketAddr, trusted: &std::path::Path) -> bool {
    let config = tls::client_config(Some(trusted), false).unwrap();
    let mut stream = tls_connect(addr, &config);
    let mut back = [0u8; 2];
    stream.write_all(b"hi").and_then(|()| stream.read_exact(&mut back)).is_ok() && &back == b"hi"
}

/// Writes `text` to `path` as an operator should: a new file renamed over the old one, so the
/// server never reads half of it.
fn replace(path: &std::path::Path, text: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, text).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

#[test]
fn sighup_reloads_the_certificate_files_and_a_bad_pair_changes_nothing() {
    let dir = std::env::temp_dir().join(format!("reactor-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file, log_file) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("stderr"));
    // What `--tls-write-cert` writes: a client's trust file, which must follow the reload.
    let written = dir.join("written.pem");
    let (first, first_key) = cert_and_key();
    let (second, second_key) = cert_and_key();
    let (trust_first, trust_second) = (dir.join("first.pem"), dir.join("second.pem"));
    std::fs::write(&trust_first, &first).unwrap();
    std::fs::write(&trust_second, &second).unwrap();
    replace(&cert_file, &first);
    replace(&key_file, &first_key);

    let log = std::fs::File::create(&log_file).unwrap();
    let (cert_arg, key_arg) = (cert_file.to_str().unwrap(), key_file.to_str().unwrap());
    let server = common::Binary::start_with(
        &[
            "serve",
            "--echo",
            "tls://127.0.0.1:0",
            "--tls-cert",
            cert_arg,
            "--tls-key",
            key_arg,
            "--tls-write-cert",
            written.to_str().unwrap(),
        ],
        |cmd| {
            cmd.stderr(log);
        },
    );
    let addr = server.addr("echo:tls");
    assert!(trusted_by(addr, &trust_first));
    assert!(!trusted_by(addr, &trust_second));
    assert!(trusted_by(addr, &written), "--tls-write-cert did not write the served certificate");
    let config = tls::client_config(Some(&trust_first), false).unwrap();
    let mut before = tls_connect(addr, &config);
    before.write_all(b"up").unwrap();
    let mut back = [0u8; 2];
    before.read_exact(&mut back).unwrap();

    // The new pair, then SIGHUP: the next handshakes get it (the reload runs on a thread of
    // its own, so wait for it, within bounds), and an established session goes on.
    replace(&cert_file, &second);
    replace(&key_file, &second_key);
    server.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !trusted_by(addr, &trust_second) {
        assert!(Instant::now() < deadline, "the new certificate was not served after SIGHUP");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!trusted_by(addr, &trust_first), "the old certificate is still served");
    // The copy is written after the swap, on the same thread: wait for it too.
    while !trusted_by(addr, &written) {
        assert!(Instant::now() < deadline, "--tls-write-cert's file still holds the old certificate");
        std::thread::sleep(Duration::from_millis(20));
    }
    before.write_all(b"on").unwrap();
    before.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"on");

    // A certificate whose key is not in the key file (a renewal caught halfway): the reload
    // is refused, said so in one line, and the certificate served so far stays.
    let (third, _) = cert_and_key();
    replace(&cert_file, &third);
    server.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let said = loop {
        let text = std::fs::read_to_string(&log_file).unwrap();
        if let Some(line) = text.lines().find(|l| l.contains("not reloaded")) {
            break line.to_string();
        }
        assert!(Instant::now() < deadline, "no word of the failed reload: {text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        said.contains("still serving the previous one")
            && said.contains("not the private key of the certificate"),
        "{said}"
    );
    assert!(trusted_by(addr, &trust_second), "a failed reload changed the certificate");
    assert!(trusted_by(addr, &written), "a failed reload rewrote --tls-write-cert's file");
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_takes_the_key_formats_openssl_writes_and_refuses_a_key_of_another_certificate() {
    // What a CA or an operator hands over: RSA keys as PKCS#8 or PKCS#1, EC keys as SEC1.
    if !common::have("openssl") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("reactor-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let openssl = |args: &[&str]| {
        let out = common::output(Command::new("openssl").args(args).current_dir(&dir));
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    // Not a CA certificate (openssl's default for `req -x509`), which rustls's client, rightly,
    // does not accept as a server's own.
    let subject = [
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-days",
        "2",
    ];
    openssl(
        &[
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa8.pem", "-out", "rsa.crt"][..],
            &subject,
        ]
        .concat(),
    );
    openssl(&["rsa", "-in", "rsa8.pem", "-out", "rsa1.pem", "-traditional"]);
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec.pem"]);
    openssl(&[&["req", "-x509", "-key", "ec.pem", "-out", "ec.crt"][..], &subject].concat());
    for (cert, key, header) in [
        ("rsa.crt", "rsa8.pem", "BEGIN PRIVATE KEY"),
        ("rsa.crt", "rsa1.pem", "BEGIN RSA PRIVATE KEY"),
        ("ec.crt", "ec.pem", "BEGIN EC PRIVATE KEY"),
    ] {
        let (cert, key) = (dir.join(cert), dir.join(key));
        assert!(
            std::fs::read_to_string(&key).unwrap().contains(header),
            "{key:?} is not in the format meant"
        );
        let server = common::Binary::start(&[
            "serve",
            "--echo",
            "tls://127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ]);
        assert!(trusted_by(server.addr("echo:tls"), &cert), "{key:?}");
    }

    // The EC key with the RSA certificate: refused at start, in one line naming both files.
    let out = common::output(Command::new(env!("CARGO_BIN_EXE_reactor")).env("RUST_LOG", "warn").args([
        "serve",
        "--echo",
        "tls://127.0.0.1:0",
        "--tls-cert",
        dir.join("rsa.crt").to_str().unwrap(),
        "--tls-key",
        dir.join("ec.pem").to_str().unwrap(),
    ]));
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("ec.pem: not the private key of the certificate in") && stderr.contains("rsa.crt"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_sighup_right_after_the_listening_lines_reloads_instead_of_ending_the_server() {
    // A supervisor or a script that reloads as soon as the server says where it listens (the
    // lines scripts wait for) must find the handler in place: the default action of SIGHUP
    // ends the process.
    let dir = std::env::temp_dir().join(format!("reactor-early-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    let (cert, key) = cert_and_key();
    replace(&cert_file, &cert);
    replace(&key_file, &key);
    let (cert_arg, key_arg) = (cert_file.to_str().unwrap(), key_file.to_str().unwrap());
    for round in 0..20 {
        let log_file = dir.join(format!("stderr-{round}"));
        let log = std::fs::File::create(&log_file).unwrap();
        let mut server = common::Binary::start_with(
            &["serve", "--echo", "tls://127.0.0.1:0", "--tls-cert", cert_arg, "--tls-key", key_arg],
            |cmd| {
                cmd.env("RUST_LOG", "info").stderr(log);
            },
        );
        server.signal("-HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&log_file).unwrap().contains("TLS certificate reloaded") {
            let ended = server.child.try_wait().unwrap();
            assert!(ended.is_none(), "round {round}: SIGHUP ended the server: {ended:?}");
            assert!(Instant::now() < deadline, "round {round}: no word of the reload");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(trusted_by(server.addr("echo:tls"), &cert_file), "round {round}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
