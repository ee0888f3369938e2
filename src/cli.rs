//! Command-line definitions (clap derive) and the `serve` / `send` subcommands.
//!
//! `main.rs` only parses, dispatches and turns an error into one line on stderr; what each
//! subcommand does is here, in terms of the library.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::client;
use crate::reactor::{Config, Reactor};
use crate::service::chat::{Chat, ChatConfig};
use crate::service::echo::{Echo, UdpEcho};

/// Default address of the echo service (TCP and UDP): the article's port.
pub const DEFAULT_ECHO: &str = "127.0.0.1:12345";
/// Default address of the chat room.
pub const DEFAULT_CHAT: &str = "127.0.0.1:12346";

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
    /// TCP echo listener (repeatable). Default 127.0.0.1:12345.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub echo: Vec<SocketAddr>,
    /// UDP echo socket (repeatable). Default 127.0.0.1:12345.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub udp_echo: Vec<SocketAddr>,
    /// Line-based chat room listener (repeatable; all share one room). Default 127.0.0.1:12346.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub chat: Vec<SocketAddr>,
    /// Longest chat line in bytes; longer lines are rejected with an error line.
    #[arg(long, value_name = "BYTES", default_value_t = ChatConfig::default().max_line)]
    pub chat_max_line: usize,
    /// Most connections open at once; further ones get a refusal line and are closed.
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
}

/// Options of `reactor send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Server address (host:port).
    #[arg(long, default_value = DEFAULT_ECHO)]
    pub addr: String,
    /// Send one UDP datagram instead of using TCP.
    #[arg(long)]
    pub udp: bool,
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

fn secs(value: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("{what} must be a non-negative number of seconds"))
}

/// `reactor serve`: bind everything, print one line per socket, run until a signal.
pub fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config {
        max_conns: args.max_conns,
        idle_timeout: (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout)),
        max_output: args.max_output.max(1),
        shutdown_grace: secs(args.shutdown_grace, "--shutdown-grace")?,
        stats_interval: args.stats.filter(|s| *s > 0).map(Duration::from_secs),
        handle_signals: true,
        ..Config::default()
    };
    let mut reactor = Reactor::new(config)?;
    let (mut echo, mut udp_echo, mut chat) = (args.echo, args.udp_echo, args.chat);
    if echo.is_empty() && udp_echo.is_empty() && chat.is_empty() {
        // No service named: run them all on their defaults.
        let default = parse_addr(DEFAULT_ECHO)?;
        echo.push(default);
        udp_echo.push(default);
        chat.push(parse_addr(DEFAULT_CHAT)?);
    }
    let mut bound = Vec::new();
    if !echo.is_empty() {
        let service = reactor.add_service(Echo);
        for addr in echo {
            bound.push(("echo", "tcp", reactor.listen(addr, service)?));
        }
    }
    if !chat.is_empty() {
        let service = reactor
            .add_service(Chat::new(ChatConfig { max_line: args.chat_max_line, ..ChatConfig::default() }));
        for addr in chat {
            bound.push(("chat", "tcp", reactor.listen(addr, service)?));
        }
    }
    for addr in udp_echo {
        bound.push(("udp-echo", "udp", reactor.serve_datagrams(addr, UdpEcho)?));
    }
    let mut stdout = std::io::stdout().lock();
    for (name, scheme, addr) in &bound {
        writeln!(stdout, "{name:<9} listening on {scheme}://{addr}")?;
    }
    stdout.flush()?;
    drop(stdout);
    log::info!("serving; SIGINT or SIGTERM to stop");
    reactor.run()?;
    Ok(())
}

/// `reactor send`: one exchange, reply printed byte for byte.
pub fn send(args: SendArgs) -> Result<(), Box<dyn std::error::Error>> {
    let message = args.message.join(" ");
    let timeout = secs(args.timeout, "--timeout")?.max(Duration::from_millis(1));
    let reply = if args.udp {
        client::send_udp(&args.addr, message.as_bytes(), timeout)?
    } else {
        client::send_tcp(&args.addr, message.as_bytes(), timeout)?
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&reply)?;
    stdout.flush()?;
    Ok(())
}
