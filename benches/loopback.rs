//! End-to-end benches over loopback: a server started in-process on port 0, driven by the
//! load generator's engine (`reactor::load::run`), next to a peer baseline — a tokio
//! `current_thread` echo server written here — driven by the very same client, so one
//! `cargo bench` prints our throughput beside tokio's.
//!
//! Each criterion iteration is one request: `iter_custom` runs the engine for exactly
//! `iters` requests and reports the engine's measured window (connects are outside it), so
//! criterion's "thrpt" line reads in requests per second.
//!
//! Both servers and the client share the machine's cores, so the absolute figures are lower
//! than with pinned processes (see docs/load.md); the *ratio* between the two servers is the
//! point. HTTP `GET /` and kv SET/GET run against ours alone: their peers (nginx, Redis) are
//! separate programs, compared in `scripts/compare.sh`. The TLS groups put echo over TLS
//! beside plain echo on the same reactor (the cost of TLS on established sessions, issue 5's
//! "within 1.5×"), and HTTPS `GET /` beside plain `GET /`.

use std::net::SocketAddr;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reactor::load::tls::TlsClient;
use reactor::load::{self, LoadConfig, Service, Stop};
use reactor::reactor::{Config, Handle, Reactor};
use reactor::service::echo::{Echo, UdpEcho};
use reactor::service::http::{Http, HttpConfig};
use reactor::service::kv::{Kv, KvConfig};
use reactor::tls::{self, Identity};

/// A reactor running on its own thread, stopped and joined on drop.
struct Running {
    handle: Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn spawn(reactor: Reactor) -> Running {
        let handle = reactor.handle();
        let thread = std::thread::spawn(move || {
            reactor.run().expect("reactor run");
        });
        Running { handle, thread: Some(thread) }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Our reactor serving TCP and UDP echo, HTTP and kv on 127.0.0.1:0.
struct Ours {
    tcp: SocketAddr,
    udp: SocketAddr,
    http: SocketAddr,
    kv: SocketAddr,
    _running: Running,
}

impl Ours {
    fn start() -> Ours {
        let mut reactor = Reactor::new(Config::default()).expect("reactor");
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let tcp = reactor.serve(any, Echo).expect("tcp");
        let udp = reactor.serve_datagrams(any, UdpEcho).expect("udp");
        let http = reactor.serve(any, Http::new(HttpConfig::default())).expect("http");
        let kv = reactor.serve(any, Kv::new(KvConfig::default())).expect("kv");
        Ours { tcp, udp, http, kv, _running: Running::spawn(reactor) }
    }
}

/// The peer baseline: the echo server anyone would write with tokio, on a current_thread
/// runtime (one thread, like ours): one task per connection, a 64 KiB buffer, `read` then
/// `write_all`; UDP: `recv_from` then `send_to`. The runtime thread lives as long as the
/// bench process.
fn tokio_echo() -> (SocketAddr, SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("tcp");
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("udp");
            tx.send((listener.local_addr().expect("addr"), udp.local_addr().expect("addr"))).expect("send");
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                while let Ok((n, from)) = udp.recv_from(&mut buf).await {
                    let _ = udp.send_to(&buf[..n], from).await;
                }
            });
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let mut buf = vec![0u8; 65_536];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
    });
    rx.recv().expect("tokio echo started")
}

/// Runs the load engine for exactly `iters` requests and returns its measured window.
fn drive(
    service: Service,
    addr: SocketAddr,
    conns: usize,
    depth: usize,
    size: usize,
    iters: u64,
) -> Duration {
    drive_tls(service, addr, None, conns, depth, size, iters)
}

/// [`drive`], over TLS when `tls` is given (handshakes happen before the measured window).
fn drive_tls(
    service: Service,
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    conns: usize,
    depth: usize,
    size: usize,
    iters: u64,
) -> Duration {
    let config = LoadConfig {
        conns,
        depth,
        size,
        stop: Stop::Requests(iters.max(1)),
        tls: tls.cloned(),
        ..LoadConfig::new(service, addr)
    };
    let report = load::run(&config).expect("load run");
    assert!(report.verified(), "{}", report.render_text());
    report.window
}

/// A group against ours alone (the peer is a separate program: see `scripts/compare.sh`).
fn ours_alone(c: &mut Criterion, name: &str, service: Service, conns: usize, depth: usize) {
    let ours = Ours::start();
    let addr = match service {
        Service::Http => ours.http,
        _ => ours.kv,
    };
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter("reactor"), |b| {
        b.iter_custom(|iters| drive(service, addr, conns, depth, 64, iters));
    });
    group.finish();
}

fn http_get(c: &mut Criterion) {
    ours_alone(c, "loopback/http_get_16conns", Service::Http, 16, 1);
}

fn kv_set_get(c: &mut Criterion) {
    ours_alone(c, "loopback/kv_setget_16conns", Service::Kv, 16, 1);
}

/// One group: the same client settings against both servers.
fn compare(c: &mut Criterion, name: &str, service: Service, conns: usize, depth: usize, size: usize) {
    let ours = Ours::start();
    let (tokio_tcp, tokio_udp) = tokio_echo();
    let (our_addr, their_addr) = match service {
        Service::Udp => (ours.udp, tokio_udp),
        _ => (ours.tcp, tokio_tcp),
    };
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    for (who, addr) in [("reactor", our_addr), ("tokio_current_thread", their_addr)] {
        group.bench_function(BenchmarkId::from_parameter(who), |b| {
            b.iter_custom(|iters| drive(service, addr, conns, depth, size, iters));
        });
    }
    group.finish();
}

fn echo_64_ping_pong(c: &mut Criterion) {
    compare(c, "loopback/echo_64B_pingpong_16conns", Service::Echo, 16, 1, 64);
}

fn echo_64_pipelined(c: &mut Criterion) {
    compare(c, "loopback/echo_64B_depth16_16conns", Service::Echo, 16, 16, 64);
}

fn echo_16k(c: &mut Criterion) {
    compare(c, "loopback/echo_16KiB_16conns", Service::Echo, 16, 1, 16 * 1024);
}

fn udp_64(c: &mut Criterion) {
    compare(c, "loopback/udp_64B_16socks", Service::Udp, 16, 1, 64);
}

/// One reactor serving echo and HTTP both plain and over TLS (a self-signed certificate made
/// here, trusted by the client through a temporary PEM file), and the client's TLS settings.
struct TlsPair {
    _running: Running,
    echo: (SocketAddr, SocketAddr),
    http: (SocketAddr, SocketAddr),
    client: TlsClient,
}

fn tls_pair() -> TlsPair {
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).expect("certificate");
    let mut reactor = Reactor::new(Config::default()).expect("reactor");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    // One service each, with a plain and a TLS listener: only the TLS layer differs.
    let echo = reactor.add_service(Echo);
    let echo_plain = reactor.listen(any, echo).expect("echo");
    let echo_tls =
        reactor.listen_tls(any, echo, tls::server_config(&identity, &[]).expect("config")).expect("tls");
    let http = reactor.add_service(Http::new(HttpConfig::default()));
    let http_plain = reactor.listen(any, http).expect("http");
    let alpn: &[&[u8]] = &[b"http/1.1"];
    let http_tls =
        reactor.listen_tls(any, http, tls::server_config(&identity, alpn).expect("config")).expect("https");
    let cert = std::env::temp_dir().join(format!("reactor-bench-{}.pem", std::process::id()));
    identity.write_cert(&cert).expect("write cert");
    let client = TlsClient {
        config: tls::client_config(Some(&cert), false).expect("client config"),
        name: tls::server_name("localhost").expect("name"),
    };
    let _ = std::fs::remove_file(&cert);
    TlsPair {
        _running: Running::spawn(reactor),
        echo: (echo_plain, echo_tls),
        http: (http_plain, http_tls),
        client,
    }
}

/// Plain vs TLS on the same reactor, the same client settings.
fn plain_vs_tls(
    c: &mut Criterion,
    name: &str,
    service: Service,
    pick: fn(&TlsPair) -> (SocketAddr, SocketAddr),
) {
    let pair = tls_pair();
    let (plain, secure) = pick(&pair);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    for (who, addr, tls) in [("plain", plain, None), ("tls", secure, Some(&pair.client))] {
        group.bench_function(BenchmarkId::from_parameter(who), |b| {
            b.iter_custom(|iters| drive_tls(service, addr, tls, 16, 1, 64, iters));
        });
    }
    group.finish();
}

fn tls_echo_64(c: &mut Criterion) {
    plain_vs_tls(c, "loopback/echo_64B_pingpong_16conns_tls", Service::Echo, |p| p.echo);
}

fn tls_http_get(c: &mut Criterion) {
    plain_vs_tls(c, "loopback/http_get_16conns_tls", Service::Http, |p| p.http);
}

fn config() -> Criterion {
    // Modest: the machine has two cores shared with others; ten samples of about a second.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = echo_64_ping_pong, echo_64_pipelined, echo_16k, udp_64, http_get, kv_set_get, tls_echo_64, tls_http_get }
criterion_main!(benches);
