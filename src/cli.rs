//! Command-line definitions (clap derive) and the `serve` / `send` subcommands.
//!
//! `main.rs` only parses, dispatches and turns an error into one line on stderr; what each
//! subcommand does is here, in terms of the library.

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::client;
use crate::reactor::{Config, ListenOptions, Reactor};
use crate::service::chat::{Chat, ChatConfig};
use crate::service::echo::{Echo, UdpEcho};
use crate::service::http::{Http, HttpConfig};
use crate::service::kv::{Kv, KvConfig};
use crate::stats::{Board, StatsBoard};
use crate::tls::{self, CertFiles, Identity};

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
    /// HTTP: a request body may go this many seconds without a byte arriving (408 beyond).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub http_body_timeout: f64,
    /// HTTP: largest request body in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = HttpConfig::default().max_body)]
    pub http_max_body: usize,
    /// kv: largest bulk string (a key or value) in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = KvConfig::default().max_bulk)]
    pub kv_max_bulk: usize,
    /// kv: the password clients must give (AUTH) before any other command, as Redis's
    /// requirepass. Better set through the environment: a command line is visible to every
    /// user of the machine.
    #[arg(long, value_name = "PASSWORD", env = "REACTOR_KV_REQUIREPASS", hide_env_values = true)]
    pub kv_requirepass: Option<String>,
    /// kv: with no password set, serve only clients from a loopback address (Redis's
    /// protected-mode); others get -DENIED and are closed.
    #[arg(long, value_name = "yes|no", default_value = "yes", value_parser = yes_no, action = clap::ArgAction::Set)]
    pub kv_protected_mode: bool,
    /// Longest chat line in bytes; longer lines are rejected with an error line.
    #[arg(long, value_name = "BYTES", default_value_t = ChatConfig::default().max_line)]
    pub chat_max_line: usize,
    /// Most members in the chat room; the next one is told the room is full. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub chat_max_members: usize,
    /// Most connections open at once; further ones get the service's refusal and are closed.
    /// Default: 10,000, or fewer if the file-descriptor limit (raised to its hard limit at
    /// start) cannot hold that many; a value given here is obeyed even beyond it.
    #[arg(long, value_name = "N")]
    pub max_conns: Option<usize>,
    /// Expect a PROXY protocol header (v1 or v2, as HAProxy's send-proxy sends) on every TCP
    /// listener. Per listener: proxy://ADDR or proxy+tls://ADDR.
    #[arg(long)]
    pub proxy_protocol: bool,
    /// Independent reactor threads, each with its own listening sockets (SO_REUSEPORT), for
    /// echo, UDP echo and HTTP; chat and kv keep their state on reactor 0. 0 = one per core.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub reactors: usize,
    /// Close connections idle this many seconds (0 disables).
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(..=MAX_SECS))]
    pub idle_timeout: u64,
    /// Bytes owed to one peer before the server stops reading from it (backpressure).
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_output)]
    pub max_output: usize,
    /// After SIGINT/SIGTERM, how long accepted connections may finish (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub shutdown_grace: f64,
    /// Log a one-line summary of the counters every SECS seconds.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(..=MAX_SECS))]
    pub stats: Option<u64>,
    /// Before sleeping, keep polling for up to this many microseconds (0: never). Spends idle
    /// CPU so that clients need not wake the server; see docs/benchmarks.md for the trade-off.
    #[arg(long, value_name = "MICROS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(..=MAX_SECS))]
    pub busy_poll: u64,
    /// TLS: PEM certificate chain (leaf first) for tls:// listeners. SIGHUP reads it and the
    /// key again (renewal without a restart).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS: PEM private key (PKCS#8, RSA or EC) for the certificate.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// TLS: generate an in-memory certificate for localhost, 127.0.0.1 and ::1 at start.
    #[arg(long, conflicts_with = "tls_cert")]
    pub tls_self_signed: bool,
    /// TLS: write the served certificate (PEM) here, for clients to trust (`--cacert`).
    #[arg(long, value_name = "FILE")]
    pub tls_write_cert: Option<PathBuf>,
    /// TLS: a handshake must complete within this many seconds of accept.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub tls_handshake_timeout: f64,
}

/// A listening address: `HOST:PORT`, `tls://HOST:PORT`, `proxy://HOST:PORT` or
/// `proxy+tls://HOST:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Speak TLS on it.
    pub tls: bool,
    /// Expect a PROXY protocol header (v1 or v2) first.
    pub proxy: bool,
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
    // What the resolver would only call "Name or service not known".
    if let Some((scheme, _)) = s.split_once("://") {
        return Err(format!(
            "{s}: this address is HOST:PORT, without {scheme}:// (tls:// and proxy:// are for TCP listeners; a client takes --tls)"
        ));
    }
    if s.starts_with(':') {
        return Err(format!("{s}: a host is needed, e.g. 127.0.0.1{s}, 0.0.0.0{s} or [::]{s}"));
    }
    s.to_socket_addrs()
        .map_err(|e| format!("{s}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s}: resolves to no address"))
}

/// Parses `HOST:PORT`, `tls://HOST:PORT`, `proxy://HOST:PORT` or `proxy+tls://HOST:PORT`.
pub fn parse_listen(s: &str) -> Result<ListenAddr, String> {
    let (scheme, rest) = s.split_once("://").unwrap_or(("", s));
    let (tls, proxy) = match scheme {
        "" => (false, false),
        "tls" => (true, false),
        "proxy" => (false, true),
        "proxy+tls" => (true, true),
        _ => return Err(format!("{s}: unknown scheme {scheme}:// (use tls://, proxy:// or proxy+tls://)")),
    };
    Ok(ListenAddr { addr: parse_addr(rest)?, tls, proxy })
}

/// A number of seconds from the command line, at most [`MAX_SECS`] (about 31 years).
pub(crate) fn secs(value: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|_| value <= MAX_SECS as f64)
        .ok_or_else(|| format!("{what} must be a number of seconds from 0 to {MAX_SECS}"))
}

/// `yes` or `no`, as Redis spells its booleans.
fn yes_no(text: &str) -> Result<bool, String> {
    match text {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("{text:?} is not yes or no")),
    }
}

/// Refuses two listeners of one protocol on one address, or on one port when one is a
/// wildcard that covers the other (`0.0.0.0` covers IPv4; `[::]` IPv6, and IPv4 too unless
/// `net.ipv6.bindv6only` is set). A single reactor's bind
/// would fail with "address in use"; with `--reactors` every socket sets `SO_REUSEPORT`, and
/// the kernel would let both bind and deal each connection to one of them at random. Port 0
/// asks for a fresh port each time, so it never clashes.
fn clash(addrs: &[(&str, SocketAddr)]) -> Result<(), String> {
    for (i, (first, a)) in addrs.iter().enumerate() {
        for (second, b) in &addrs[i + 1..] {
            let overlap = covers(a, b) || covers(b, a);
            if a.port() != 0 && a.port() == b.port() && overlap {
                let what = match (a == b, first == second) {
                    (true, true) => format!("{a} is given to {first} twice"),
                    (true, false) => format!("{a} is given to {first} and to {second}"),
                    (false, _) => format!("{a} ({first}) and {b} ({second}) share port {}", a.port()),
                };
                return Err(format!("{what}: each listener needs an address of its own"));
            }
        }
    }
    Ok(())
}

/// Whether a listener on `wide` also takes connections meant for `narrow` (same port
/// assumed): the same address, or `wide` a wildcard of its family. `[::]` is dual-stack on
/// Linux unless `net.ipv6.bindv6only` is 1 (the sockets here inherit it), so it usually
/// covers IPv4 as well; an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is its IPv4 address.
fn covers(wide: &SocketAddr, narrow: &SocketAddr) -> bool {
    let canonical = |a: &SocketAddr| a.ip().to_canonical();
    let (w, n) = (canonical(wide), canonical(narrow));
    let dual_stack =
        || std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|v| v.trim() == "0");
    w == n || (w.is_unspecified() && (w.is_ipv6() == n.is_ipv6() || (w.is_ipv6() && dual_stack())))
}

/// [`secs`], and more than zero.
fn positive_secs(value: f64, what: &str) -> Result<Duration, String> {
    Some(secs(value, what)?)
        .filter(|t| !t.is_zero())
        .ok_or_else(|| format!("{what} must be more than 0 seconds"))
}

/// The longest time any option may name, in its own unit: a deadline is `now` plus it, and
/// an `Instant` centuries out would overflow.
const MAX_SECS: u64 = 1_000_000_000;

/// `reactor serve`: bind everything, print one line per socket, run until a signal.
pub fn serve(mut args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (mut echo, mut udp_echo, mut chat, mut http, mut kv) = (
        std::mem::take(&mut args.echo),
        std::mem::take(&mut args.udp_echo),
        std::mem::take(&mut args.chat),
        std::mem::take(&mut args.http),
        std::mem::take(&mut args.kv),
    );
    if echo.is_empty() && udp_echo.is_empty() && chat.is_empty() && http.is_empty() && kv.is_empty() {
        // No service named: run them all on their defaults.
        echo.push(parse_listen(DEFAULT_ECHO)?);
        udp_echo.push(parse_addr(DEFAULT_ECHO)?);
        chat.push(parse_listen(DEFAULT_CHAT)?);
        http.push(parse_listen(DEFAULT_HTTP)?);
        kv.push(parse_listen(DEFAULT_KV)?);
    }
    // Zero is not "unlimited" for these (as it is for --chat-max-members or --idle-timeout):
    // it would refuse every client, line or value. Said rather than quietly made 1.
    let zero = [
        ("--max-conns", args.max_conns == Some(0)),
        ("--max-output", args.max_output == 0),
        ("--chat-max-line", args.chat_max_line == 0),
        ("--kv-max-bulk", args.kv_max_bulk == 0),
    ];
    if let Some((name, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
        return Err(format!("{name} must be at least 1").into());
    }
    let tcp: Vec<(&str, SocketAddr)> =
        [("--echo", &echo), ("--chat", &chat), ("--http", &http), ("--kv", &kv)]
            .into_iter()
            .flat_map(|(name, list)| list.iter().map(move |l| (name, l.addr)))
            .collect();
    let udp: Vec<(&str, SocketAddr)> = udp_echo.iter().map(|a| ("--udp-echo", *a)).collect();
    clash(&tcp)?;
    clash(&udp)?;
    if args.proxy_protocol {
        for l in echo.iter_mut().chain(&mut chat).chain(&mut http).chain(&mut kv) {
            l.proxy = true;
        }
    }
    let wants_tls = [&echo, &chat, &http, &kv].iter().any(|list| list.iter().any(|l| l.tls));
    let tls = if wants_tls { Some(TlsConfigs::load(&args)?) } else { None };
    if !wants_tls && (args.tls_cert.is_some() || args.tls_self_signed) {
        // Most likely an address written without its scheme: the service would then run in
        // plaintext while its operator believes it encrypted. Said, not refused, since the
        // server does what each address asks.
        log::warn!(
            "TLS options given, but no listener is tls:// or proxy+tls://: every service is \
             plaintext and the certificate is not read (write an address as tls://HOST:PORT)"
        );
    }
    // Before the lines that say where we listen: a script or supervisor that reloads once it
    // has read them must not find SIGHUP's default action (the end of the process) still set.
    if let Some(files) = tls.as_ref().and_then(|tls| tls.files.clone()) {
        reload_on_sighup(files, args.tls_write_cert.clone())?;
    }
    let reactors = match args.reactors {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };

    // Each connection is a file descriptor: raise the soft limit to the hard one and keep the
    // connection limit within it, as Redis does with maxclients.
    let fd = crate::fdlimit::raise_nofile();
    let sockets = (echo.len() + chat.len() + http.len() + kv.len() + udp_echo.len()) * reactors;
    // Every reactor after the first holds its own epoll, waker and signal pipe as well:
    // uncounted, `--reactors 8` under `ulimit -n 64` ran out of descriptors at 20 connections
    // of a limit of 40, and the next clients hung in the backlog instead of being refused.
    let held = sockets + (reactors - 1) * crate::fdlimit::FDS_PER_REACTOR as usize;
    let fits = crate::fdlimit::max_conns_for(usize::MAX, held, &fd);
    let max_conns = match args.max_conns {
        // Asked for explicitly: obeyed, with a warning if the descriptors cannot hold it
        // (beyond them, accept fails with EMFILE and the reactor pauses accepting).
        Some(n) => {
            if n > fits {
                log::warn!(
                    "--max-conns {n} exceeds what the file-descriptor limit {} (hard {}) can hold \
                     (about {fits}); past that, accepting pauses until descriptors free up",
                    fd.soft,
                    fd.hard
                );
            }
            n
        }
        // The default: 10,000, or what fits (as Redis sizes maxclients), so the server
        // refuses politely instead of running out of descriptors.
        None => {
            let n = Config::default().max_conns.min(fits);
            if n < Config::default().max_conns {
                log::warn!(
                    "connection limit lowered to {n} by the file-descriptor limit {} (hard {})",
                    fd.soft,
                    fd.hard
                );
            }
            n
        }
    };
    let config = Config {
        // With several reactors they share one count (`Reactor::share_conn_limit`).
        max_conns: max_conns.max(1),
        idle_timeout: (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout)),
        max_output: args.max_output,
        shutdown_grace: secs(args.shutdown_grace, "--shutdown-grace")?,
        // Zero would close every TLS connection in the turn that accepted it.
        handshake_timeout: positive_secs(args.tls_handshake_timeout, "--tls-handshake-timeout")?,
        stats_interval: args.stats.filter(|s| *s > 0).map(Duration::from_secs),
        handle_signals: true,
        busy_poll: Duration::from_micros(args.busy_poll),
        ..Config::default()
    };
    let http_config = HttpConfig {
        // Zero would time out every head before its first byte could be answered.
        head_timeout: positive_secs(args.http_head_timeout, "--http-head-timeout")?,
        body_timeout: positive_secs(args.http_body_timeout, "--http-body-timeout")?,
        max_body: args.http_max_body,
        ..HttpConfig::default()
    };
    let reuse_port = reactors > 1;
    let options = |l: &ListenAddr, name: &str| ListenOptions {
        tls: match (&tls, l.tls) {
            (Some(tls), true) => Some(if name == "http" { tls.http.clone() } else { tls.plain.clone() }),
            _ => None,
        },
        proxy_protocol: l.proxy,
        // SO_REUSEPORT only where every reactor binds the address. The chat room and the kv
        // store live on reactor 0 alone, so their sockets keep the ordinary, exclusive bind:
        // a second `serve --reactors N` started on the same ports by mistake then fails with
        // "address in use", instead of silently taking half the clients into a second room
        // or a second, different store (the kernel spreads connections over every socket of
        // the same user that set SO_REUSEPORT on the address, whatever process holds it).
        reuse_port: reuse_port && !matches!(name, "chat" | "kv"),
    };

    // Shared addresses are bound with SO_REUSEPORT, which another process could share too
    // (`listener::check_free`): make sure nobody holds them first.
    if reuse_port {
        let tcp = echo.iter().chain(&http).map(|l| (l.addr, false));
        for (addr, udp) in tcp.chain(udp_echo.iter().map(|a| (*a, true))).filter(|(a, _)| a.port() != 0) {
            crate::reactor::listener::check_free(addr, udp)
                .map_err(|e| crate::error::Error::Bind(addr, e))?;
        }
    }

    // Reactor 0 binds first, so that port 0 becomes a real port the others then share.
    let mut bound: Vec<(&'static str, String, SocketAddr)> = Vec::new();
    let mut all = Vec::with_capacity(reactors);
    let board = StatsBoard::new(reactors);
    let http_board = Board::new(reactors);
    let open = Arc::new(AtomicUsize::new(0));
    for index in 0..reactors {
        let mut reactor = Reactor::new(config.clone())?;
        if reactors > 1 {
            reactor.share_stats(board.clone(), index);
            reactor.share_conn_limit(Arc::clone(&open));
        }
        let first = index == 0;
        let mut listen = |reactor: &mut Reactor, name: &'static str, service, addrs: &mut Vec<ListenAddr>| {
            for l in addrs.iter_mut() {
                let local = reactor.listen_with(l.addr, service, options(l, name))?;
                if first {
                    l.addr = local; // the others bind the port the OS picked for reactor 0
                    let scheme = match (l.proxy, l.tls) {
                        (false, false) => "tcp",
                        (false, true) => "tls",
                        (true, false) => "proxy",
                        (true, true) => "proxy+tls",
                    };
                    bound.push((name, scheme.to_string(), local));
                }
            }
            Ok::<(), crate::error::Error>(())
        };
        // Stateless services run on every reactor; stateful ones (chat room, key-value store)
        // on reactor 0 only: one thread owning the state is what makes it correct without locks.
        if !echo.is_empty() {
            let service = reactor.add_service(Echo);
            listen(&mut reactor, "echo", service, &mut echo)?;
        }
        if first && !chat.is_empty() {
            let config = ChatConfig {
                max_line: args.chat_max_line,
                max_members: (args.chat_max_members > 0).then_some(args.chat_max_members),
            };
            let service = reactor.add_service(Chat::new(config));
            listen(&mut reactor, "chat", service, &mut chat)?;
        }
        if !http.is_empty() {
            let mut http_service = Http::new(http_config);
            if reactors > 1 {
                http_service = http_service.shared(http_board.clone(), index);
            }
            let service = reactor.add_service(http_service);
            listen(&mut reactor, "http", service, &mut http)?;
        }
        if first && !kv.is_empty() {
            let max_bulk = args.kv_max_bulk;
            let config = KvConfig {
                max_bulk,
                max_query: max_bulk.saturating_mul(2),
                timeout_secs: args.idle_timeout,
                requirepass: args.kv_requirepass.clone(), // Kv::new reads "" as none
                protected_mode: args.kv_protected_mode,
                maxclients: max_conns.max(1),
                // As asked: a port 0 is not known yet, and is left out.
                listen: kv.iter().map(|l| l.addr).filter(|a| a.port() != 0).collect(),
                ..KvConfig::default()
            };
            let service = reactor.add_service(Kv::new(config));
            listen(&mut reactor, "kv", service, &mut kv)?;
        }
        for addr in udp_echo.iter_mut() {
            let local = reactor.serve_datagrams_with(*addr, UdpEcho, reuse_port)?;
            if first {
                *addr = local;
                bound.push(("udp-echo", "udp".to_string(), local));
            }
        }
        all.push(reactor);
    }

    // What was bound, for people and for scripts. Best effort: a reader that went away
    // (`reactor serve | head -1`, a test that read the lines it needed) must not stop the
    // server, so a failed write is logged, not returned.
    let mut lines = String::new();
    if let Some(tls) = &tls
        && tls.self_signed
    {
        lines.push_str(&format!(
            "tls       self-signed certificate, sha256 fingerprint {}\n",
            tls.fingerprint
        ));
    }
    for (name, scheme, addr) in &bound {
        lines.push_str(&format!("{name:<9} listening on {scheme}://{addr}\n"));
    }
    if reactors > 1 {
        lines.push_str(&format!("reactors  {reactors} threads (SO_REUSEPORT); chat and kv on reactor 0\n"));
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(lines.as_bytes()).and_then(|()| stdout.flush()) {
        log::warn!("could not print the bound addresses: {e}");
    }
    drop(stdout);
    log::info!("serving; SIGINT or SIGTERM to stop");
    run_all(all)
}

/// Runs one reactor on this thread, or several on threads of their own. If one fails or
/// panics, the others are stopped at once and the error is returned: a half-working server
/// (some ports answering, some not) is worse than a clean exit a supervisor can restart.
fn run_all(mut reactors: Vec<Reactor>) -> Result<(), Box<dyn std::error::Error>> {
    if reactors.len() == 1 {
        let reactor = reactors.pop().ok_or("no reactor")?;
        reactor.run()?;
        return Ok(());
    }
    let handles: Vec<_> = reactors.iter().map(Reactor::handle).collect();
    let (done, finished) = std::sync::mpsc::channel();
    for (index, reactor) in reactors.into_iter().enumerate() {
        let done = done.clone();
        std::thread::Builder::new().name(format!("reactor-{index}")).spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reactor.run()));
            let _ = done.send((index, result));
        })?;
    }
    drop(done);
    let mut failure: Option<Box<dyn std::error::Error>> = None;
    for (index, result) in finished.iter() {
        let error: Option<Box<dyn std::error::Error>> = match result {
            Ok(Ok(_stats)) => None,
            Ok(Err(e)) => Some(format!("reactor {index}: {e}").into()),
            Err(_) => {
                Some(format!("reactor {index} panicked (see the message above); stopping the others").into())
            }
        };
        if let Some(e) = error {
            log::error!("{e}");
            for handle in &handles {
                handle.stop();
            }
            failure.get_or_insert(e);
        }
    }
    failure.map_or(Ok(()), Err)
}

/// The TLS server configurations `serve` needs: one plain, one offering ALPN `http/1.1`.
struct TlsConfigs {
    plain: Arc<rustls::ServerConfig>,
    http: Arc<rustls::ServerConfig>,
    fingerprint: String,
    self_signed: bool,
    /// With `--tls-cert`/`--tls-key`: the files, which `SIGHUP` reads again.
    files: Option<Arc<CertFiles>>,
}

impl TlsConfigs {
    fn load(args: &ServeArgs) -> Result<TlsConfigs, Box<dyn std::error::Error>> {
        // Files are served through `CertFiles`, which SIGHUP reads again; a self-signed
        // certificate made here has no files, and is served as it is.
        let (identity, files) = match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
            (Some(cert), Some(key), _) => {
                let (files, identity) = CertFiles::load(cert, key)?;
                (identity, Some(files))
            }
            (_, _, true) => (Identity::self_signed(&["localhost", "127.0.0.1", "::1"])?, None),
            _ => {
                return Err(
                    "a tls:// listener needs --tls-cert FILE and --tls-key FILE, or --tls-self-signed".into(),
                );
            }
        };
        if let Some(path) = &args.tls_write_cert {
            identity.write_cert(path)?;
        }
        let config = |alpn: &[&[u8]]| match &files {
            Some(files) => tls::server_config_from_files(Arc::clone(files), alpn),
            None => tls::server_config(&identity, alpn),
        };
        Ok(TlsConfigs {
            plain: config(&[])?,
            http: config(&[b"http/1.1"])?,
            fingerprint: identity.fingerprint_sha256(),
            self_signed: files.is_none(),
            files,
        })
    }
}

/// Reads the certificate files again at each `SIGHUP`, on a thread of its own: the reactors
/// never wait for a file, and the next handshake on any of them serves the new certificate
/// (see [`CertFiles`]). A failed reload is logged and changes nothing. After a reload,
/// `--tls-write-cert`'s file is written again, so clients that trust it trust what is served.
fn reload_on_sighup(files: Arc<CertFiles>, write_cert: Option<PathBuf>) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new().name("tls-reload".into()).spawn(move || {
        for _ in signals.forever() {
            let identity = match files.reload() {
                Ok(identity) => identity,
                Err(e) => {
                    log::error!("SIGHUP: TLS certificate not reloaded, still serving the previous one: {e}");
                    continue;
                }
            };
            log::info!(
                "SIGHUP: TLS certificate reloaded from {}, sha256 fingerprint {}",
                files.cert_path().display(),
                identity.fingerprint_sha256()
            );
            // The new certificate is served whatever happens here; only the copy is stale.
            if let Some(path) = &write_cert
                && let Err(e) = identity.write_cert(path)
            {
                log::error!("SIGHUP: the new certificate is served, but --tls-write-cert failed: {e}");
            }
        }
    })?;
    Ok(())
}

/// `reactor send`: one exchange, reply printed byte for byte (on a terminal, a reply that does
/// not end a line is followed by a newline, so the prompt does not glue to it; piped, the
/// bytes are exactly the server's).
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
    if stdout.is_terminal() && !reply.ends_with(b"\n") {
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    Ok(())
}
