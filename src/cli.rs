//! Command-line definitions (clap derive) and the `serve` / `send` subcommands.
//!
//! `main.rs` only parses, dispatches and turns an error into one line on stderr; what each
//! subcommand does is here, in terms of the library.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::client;
use crate::reactor::{Config, Reactor};
use crate::service::chat::{Chat, ChatConfig};
use crate::service::echo::{Echo, UdpEcho};
use crate::service::http::{Http, HttpConfig};
use crate::service::kv::{Kv, KvConfig};
use crate::tls::{self, Identity};

/// Default address of the echo service (TCP and UDP): the article's port.
pub const DEFAULT_ECHO: &str = "127.0.0.1:12345";
/// Default address of the chat room.
pub const DEFAULT_CHAT: &str = "127.0.0.1:12346";
/// Default address of the HTTP/1.1 server.
pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";
/// Default address of the Redis-protocol key-value store (Redis itself uses 6379).
pub const DEFAULT_KV: &str = "127.0.0.1:6380";

/// A single-threaded mio event-loop server and its client.
#[derive(Debug, Parser)]
#[command(name = "reactor", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server. With no service flag, every service runs on its default address.
    Serve(ServeArgs),
    /// Send a message to a server and print exactly what comes back.
    Send(SendArgs),
    /// Drive a service with many connections, verify every reply, report latency and throughput.
    Load(crate::load::cli::LoadArgs),
}

/// Options of `reactor serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TCP echo listener (repeatable; `tls://ADDR` for TLS). Default 127.0.0.1:12345.
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub echo: Vec<ListenAddr>,
    /// UDP echo socket (repeatable). Default 127.0.0.1:12345.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub udp_echo: Vec<SocketAddr>,
    /// Line-based chat room listener (repeatable; all share one room). Default 127.0.0.1:12346.
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub chat: Vec<ListenAddr>,
    /// HTTP/1.1 listener (repeatable; `tls://ADDR` for HTTPS). Default 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub http: Vec<ListenAddr>,
    /// Redis-protocol (RESP2) key-value listener (repeatable; all share one store).
    /// Default 127.0.0.1:6380.
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub kv: Vec<ListenAddr>,
    /// HTTP: a request head must arrive within this many seconds of its first byte.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub http_head_timeout: f64,
    /// HTTP: largest request body in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = HttpConfig::default().max_body)]
    pub http_max_body: usize,
    /// kv: largest bulk string (a key or value) in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = KvConfig::default().max_bulk)]
    pub kv_max_bulk: usize,
    /// Longest chat line in bytes; longer lines are rejected with an error line.
    #[arg(long, value_name = "BYTES", default_value_t = ChatConfig::default().max_line)]
    pub chat_max_line: usize,
    /// Most connections open at once; further ones get the service's refusal and are closed.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_conns)]
    pub max_conns: usize,
    /// Close connections idle this many seconds (0 disables).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub idle_timeout: u64,
    /// Bytes owed to one peer before the server stops reading from it (backpressure).
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_output)]
    pub max_output: usize,
    /// After SIGINT/SIGTERM, how long accepted connections may finish (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub shutdown_grace: f64,
    /// Log a one-line summary of the counters every SECS seconds.
    #[arg(long, value_name = "SECS")]
    pub stats: Option<u64>,
    /// TLS: PEM certificate chain (leaf first) for tls:// listeners.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS: PEM private key (PKCS#8, RSA or EC) for the certificate.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// TLS: generate an in-memory certificate for localhost and 127.0.0.1 at start.
    #[arg(long, conflicts_with = "tls_cert")]
    pub tls_self_signed: bool,
    /// TLS: write the served certificate (PEM) here, for clients to trust (`--cacert`).
    #[arg(long, value_name = "FILE")]
    pub tls_write_cert: Option<PathBuf>,
    /// TLS: a handshake must complete within this many seconds of accept.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub tls_handshake_timeout: f64,
}

/// A listening address, possibly `tls://HOST:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Speak TLS on it.
    pub tls: bool,
}

/// Options of `reactor send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Server address (host:port).
    #[arg(long, default_value = DEFAULT_ECHO)]
    pub addr: String,
    /// Send one UDP datagram instead of using TCP.
    #[arg(long, conflicts_with = "tls")]
    pub udp: bool,
    /// Speak TLS (trust the server with --ca, or skip verification with --insecure-skip-verify).
    #[arg(long)]
    pub tls: bool,
    /// TLS: PEM file of the certificate(s) to trust (the server's own, or its CA).
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<PathBuf>,
    /// TLS: accept any certificate. Encrypts, but does not authenticate the server.
    #[arg(long, requires = "tls")]
    pub insecure_skip_verify: bool,
    /// Give up after this many seconds without progress.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub timeout: f64,
    /// The message; several words are joined with spaces, as `echo` does.
    #[arg(required = true)]
    pub message: Vec<String>,
}

/// Parses `host:port`, resolving names such as `localhost`.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    s.to_socket_addrs()
        .map_err(|e| format!("{s}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s}: resolves to no address"))
}

/// Parses `HOST:PORT` or `tls://HOST:PORT`.
pub fn parse_listen(s: &str) -> Result<ListenAddr, String> {
    match s.strip_prefix("tls://") {
        Some(rest) => Ok(ListenAddr { addr: parse_addr(rest)?, tls: true }),
        None if s.contains("://") => Err(format!("{s}: the only scheme is tls://")),
        None => Ok(ListenAddr { addr: parse_addr(s)?, tls: false }),
    }
}

fn secs(value: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("{what} must be a non-negative number of seconds"))
}

/// `reactor serve`: bind everything, print one line per socket, run until a signal.
pub fn serve(mut args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config {
        max_conns: args.max_conns,
        idle_timeout: (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout)),
        max_output: args.max_output.max(1),
        shutdown_grace: secs(args.shutdown_grace, "--shutdown-grace")?,
        handshake_timeout: secs(args.tls_handshake_timeout, "--tls-handshake-timeout")?,
        stats_interval: args.stats.filter(|s| *s > 0).map(Duration::from_secs),
        handle_signals: true,
        ..Config::default()
    };
    let mut reactor = Reactor::new(config)?;
    let (mut echo, mut udp_echo, mut chat, mut http, mut kv) = (
        std::mem::take(&mut args.echo),
        std::mem::take(&mut args.udp_echo),
        std::mem::take(&mut args.chat),
        std::mem::take(&mut args.http),
        std::mem::take(&mut args.kv),
    );
    if echo.is_empty() && udp_echo.is_empty() && chat.is_empty() && http.is_empty() && kv.is_empty() {
        // No service named: run them all on their defaults.
        let plain = |s: &str| parse_listen(s);
        echo.push(plain(DEFAULT_ECHO)?);
        udp_echo.push(parse_addr(DEFAULT_ECHO)?);
        chat.push(plain(DEFAULT_CHAT)?);
        http.push(plain(DEFAULT_HTTP)?);
        kv.push(plain(DEFAULT_KV)?);
    }
    let wants_tls = [&echo, &chat, &http, &kv].iter().any(|list| list.iter().any(|l| l.tls));
    let tls = if wants_tls { Some(TlsConfigs::load(&args)?) } else { None };

    let mut bound = Vec::new();
    let mut listen = |reactor: &mut Reactor, name: &'static str, service, addrs: Vec<ListenAddr>| {
        for ListenAddr { addr, tls: use_tls } in addrs {
            let local = match (&tls, use_tls) {
                (Some(tls), true) => {
                    let config = if name == "http" { &tls.http } else { &tls.plain };
                    reactor.listen_tls(addr, service, config.clone())?
                }
                _ => reactor.listen(addr, service)?,
            };
            bound.push((name, if use_tls { "tls" } else { "tcp" }, local));
        }
        Ok::<(), crate::error::Error>(())
    };
    if !echo.is_empty() {
        let service = reactor.add_service(Echo);
        listen(&mut reactor, "echo", service, echo)?;
    }
    if !chat.is_empty() {
        let config = ChatConfig { max_line: args.chat_max_line, ..ChatConfig::default() };
        let service = reactor.add_service(Chat::new(config));
        listen(&mut reactor, "chat", service, chat)?;
    }
    if !http.is_empty() {
        let config = HttpConfig {
            head_timeout: secs(args.http_head_timeout, "--http-head-timeout")?,
            max_body: args.http_max_body,
            ..HttpConfig::default()
        };
        let service = reactor.add_service(Http::new(config));
        listen(&mut reactor, "http", service, http)?;
    }
    if !kv.is_empty() {
        let max_bulk = args.kv_max_bulk.max(1);
        let config = KvConfig { max_bulk, max_query: max_bulk.saturating_mul(2), ..KvConfig::default() };
        let service = reactor.add_service(Kv::new(config));
        listen(&mut reactor, "kv", service, kv)?;
    }
    for addr in udp_echo {
        bound.push(("udp-echo", "udp", reactor.serve_datagrams(addr, UdpEcho)?));
    }
    let mut stdout = std::io::stdout().lock();
    if let Some(tls) = &tls
        && tls.self_signed
    {
        writeln!(stdout, "tls       self-signed certificate, sha256 fingerprint {}", tls.fingerprint)?;
    }
    for (name, scheme, addr) in &bound {
        writeln!(stdout, "{name:<9} listening on {scheme}://{addr}")?;
    }
    stdout.flush()?;
    drop(stdout);
    log::info!("serving; SIGINT or SIGTERM to stop");
    reactor.run()?;
    Ok(())
}

/// The TLS server configurations `serve` needs: one plain, one offering ALPN `http/1.1`.
struct TlsConfigs {
    plain: Arc<rustls::ServerConfig>,
    http: Arc<rustls::ServerConfig>,
    fingerprint: String,
    self_signed: bool,
}

impl TlsConfigs {
    fn load(args: &ServeArgs) -> Result<TlsConfigs, Box<dyn std::error::Error>> {
        let identity = match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
            (Some(cert), Some(key), _) => Identity::from_pem_files(cert, key)?,
            (_, _, true) => Identity::self_signed(&["localhost", "127.0.0.1", "::1"])?,
            _ => {
                return Err(
                    "a tls:// listener needs --tls-cert FILE and --tls-key FILE, or --tls-self-signed".into(),
                );
            }
        };
        if let Some(path) = &args.tls_write_cert {
            identity.write_cert(path)?;
        }
        Ok(TlsConfigs {
            plain: tls::server_config(&identity, &[])?,
            http: tls::server_config(&identity, &[b"http/1.1"])?,
            fingerprint: identity.fingerprint_sha256(),
            self_signed: args.tls_self_signed,
        })
    }
}

/// `reactor send`: one exchange, reply printed byte for byte.
pub fn send(args: SendArgs) -> Result<(), Box<dyn std::error::Error>> {
    let message = args.message.join(" ");
    let timeout = secs(args.timeout, "--timeout")?.max(Duration::from_millis(1));
    let reply = if args.udp {
        client::send_udp(&args.addr, message.as_bytes(), timeout)?
    } else if args.tls {
        let config = tls::client_config(args.ca.as_deref(), args.insecure_skip_verify)?;
        client::send_tls(&args.addr, message.as_bytes(), timeout, config)?
    } else {
        client::send_tcp(&args.addr, message.as_bytes(), timeout)?
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&reply)?;
    stdout.flush()?;
    Ok(())
}
