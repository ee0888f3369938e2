//! The `reactor load` command line: the clap definitions and the function `main` calls.
//!
//! Kept here rather than in `crate::cli` so that the load generator is one directory; the
//! top-level CLI only names [`LoadArgs`] in its `Command::Load` variant.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Args;
use signal_hook::consts::SIGINT;

use super::tls::TlsClient;
use super::{LoadConfig, Service, Stop};

const AFTER_HELP: &str = "\
Output (text, like wrk's; docs/load.md explains each field):
  Latency Avg/Stdev/Max   over every measured request, from its (intended) send time
                          to its last reply byte
  Latency Distribution    percentiles: 50% of requests took at most the p50 value, etc.
                          With --rate, 'corrected' counts from the time a request was
                          due (no coordinated omission), 'uncorrected' from when it left
  Requests/sec            completed requests / measured seconds
  Transfer/sec            megabytes (10^6) received and sent per measured second
  Errors                  connect / read / write errors (with the OS's reason below),
                          timeouts (UDP: lost), mismatches (wrong replies), refused
                          (HTTP non-2xx, RESP errors)
  Unfinished              requests in flight when the run ended; with --rate, requests
                          due that never went out; requests abandoned when their
                          connection closed after a failure; late replies (UDP: after
                          their request was counted lost; chat: from a member that left)
Exit status: 0 when replies came and every one was right; 1 on any mismatch, when nothing
was answered, when no connection opened, or for settings that make no sense; 2 for a
command line that cannot be parsed.";

/// Options of `reactor load`.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct LoadArgs {
    /// What to drive.
    #[arg(value_enum)]
    pub service: Service,
    /// Server address [default: echo/udp 127.0.0.1:12345, chat :12346, http :8080, kv :6380].
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
    /// Connections to open (UDP: sockets). Starts are staggered 100 µs apart (1 s at most).
    #[arg(long, short = 'c', value_name = "N", default_value_t = 16)]
    pub conns: usize,
    /// Requests in flight per connection: 1 is ping-pong, more is pipelining.
    #[arg(long, short = 'd', value_name = "D", default_value_t = 1)]
    pub depth: usize,
    /// Bytes per request (echo, udp; chat: line length; http --post: body length).
    #[arg(long, short = 's', value_name = "BYTES", default_value_t = 64)]
    pub size: usize,
    /// Measure for this many seconds (after the warm-up).
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", conflicts_with = "requests")]
    pub duration: Option<f64>,
    /// Send exactly N measured requests in total, then wait for their replies.
    #[arg(long, short = 'n', value_name = "N")]
    pub requests: Option<u64>,
    /// Run this many seconds before measuring; nothing in them counts but failures.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = 0.0)]
    pub warmup: f64,
    /// Open loop: R requests per second in total, at fixed intervals. Default: closed loop.
    #[arg(long, allow_negative_numbers = true, value_name = "R")]
    pub rate: Option<f64>,
    /// A request unanswered this long is a timeout (UDP: lost).
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = 5.0)]
    pub timeout: f64,
    /// Print one JSON object with the settings and all results instead of text.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print a CSV header line and one row instead of text.
    #[arg(long)]
    pub csv: bool,
    /// http: the path to request [default: /, or /echo with --post]. A GET's body is checked
    /// only for `/` (the benchmark route, which must answer "Hello, World!\n"), a POST's only
    /// for `/echo` (it must come back byte for byte); for any other path, the status (2xx) and
    /// the framing.
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// http: POST a body of --size bytes with each request (each body distinct: a sequence tag
    /// and a pattern, as echo's) instead of GET.
    #[arg(long)]
    pub post: bool,
    /// kv: log in with this password (AUTH) on every connection first, as redis-benchmark -a.
    /// Read from REACTOR_KV_REQUIREPASS too, the variable `serve --kv-requirepass` reads.
    #[arg(long, value_name = "PASSWORD", env = "REACTOR_KV_REQUIREPASS", hide_env_values = true)]
    pub password: Option<String>,
    /// kv: keys in total, split evenly among the connections (each owns its own).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub keys: usize,
    /// kv: bytes per value (at least 16).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub value_size: usize,
    /// Speak TLS (TCP services). Trust the server with --ca, or skip with --insecure-skip-verify.
    /// The handshake is not in the latency figures.
    #[arg(long)]
    pub tls: bool,
    /// TLS: PEM certificate(s) to trust (the server's own, e.g. from `serve --tls-write-cert`, or its CA).
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<PathBuf>,
    /// TLS: accept any server certificate (encrypted, not authenticated; for trying things out).
    #[arg(long, requires = "tls", conflicts_with = "ca")]
    pub insecure_skip_verify: bool,
}

impl LoadArgs {
    /// The engine's settings for these arguments.
    pub fn config(&self) -> Result<LoadConfig, Box<dyn std::error::Error>> {
        let addr_text = self.addr.as_deref().unwrap_or(self.service.default_addr());
        let addr = crate::cli::parse_addr(addr_text)?;
        let tls = if self.tls {
            let config = crate::tls::client_config(self.ca.as_deref(), self.insecure_skip_verify)?;
            Some(TlsClient { config, name: crate::tls::server_name(addr_text)? })
        } else {
            None
        };
        let stop = match (self.requests, self.duration) {
            (Some(n), _) => Stop::Requests(n),
            (None, Some(d)) => Stop::Duration(load_secs(d, "--duration")?),
            (None, None) => Stop::Duration(Duration::from_secs(10)),
        };
        let config = LoadConfig {
            conns: self.conns,
            depth: self.depth,
            size: self.size,
            stop,
            warmup: load_secs(self.warmup, "--warmup")?,
            rate: self.rate,
            timeout: load_secs(self.timeout, "--timeout")?,
            // Live lines would corrupt --json/--csv output and clutter a pipe or a log.
            live: std::io::stdout().is_terminal() && !self.json && !self.csv,
            keys: self.keys,
            value_size: self.value_size,
            path: self.path.clone().unwrap_or_else(|| if self.post { "/echo" } else { "/" }.into()),
            post: self.post,
            password: self.password.clone(),
            tls,
            ..LoadConfig::new(self.service, addr)
        };
        config.validate()?;
        Ok(config)
    }
}

/// A time option's value in seconds: what a `Duration` cannot hold (negative, NaN, past
/// its range) is refused here; the bound of a year, by [`LoadConfig::validate`], with the
/// same message.
fn load_secs(value: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| super::seconds_range(what))
}

/// `reactor load`: run, print, and fail when a reply was wrong.
pub fn load(args: LoadArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = args.config()?;
    // Ctrl-C ends the run and prints what it measured, as wrk does; a second one, should the
    // end take a moment, quits at once (the check runs before the flag is set).
    let interrupt = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register_conditional_shutdown(SIGINT, 130, Arc::clone(&interrupt))?;
    signal_hook::flag::register(SIGINT, Arc::clone(&interrupt))?;
    config.interrupt = Some(interrupt);
    let report = super::run(&config)?;
    let text = if args.json {
        report.to_json() + "\n"
    } else if args.csv {
        report.to_csv()
    } else {
        report.render_text()
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    if report.tally.mismatches > 0 {
        return Err(format!("verification failed: {} wrong replies", report.tally.mismatches).into());
    }
    if !report.verified() {
        return Err("no request was answered: nothing was measured or verified".into());
    }
    Ok(())
}
