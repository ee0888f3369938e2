//! Tunables of one reactor, with the defaults `reactor serve` uses.
//!
//! Every limit the reactor itself sets lives here, in one place, so `docs/architecture.md`
//! and `--help` can name them and tests can shrink them. (Each service adds its own, such as
//! the request size it accepts, `Service::max_input`, in its own config.)

use std::time::Duration;

/// Limits and budgets of one reactor.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most connections open at once; one more gets the service's refusal and is closed.
    pub max_conns: usize,
    /// Close a connection after this long without a sign of life from the peer (bytes read
    /// from it, or owed output it finally took; what we or others send it does not count);
    /// `None` disables. A connection its service exempted (`Cx::exempt_from_idle`: a kv
    /// subscriber) is spared while it is open, and gets TCP keepalive instead.
    pub idle_timeout: Option<Duration>,
    /// Output owed to one peer beyond which the reactor stops reading from it (backpressure),
    /// and beyond which bytes sent to it by *other* connections close it as too slow.
    pub max_output: usize,
    /// Bytes read from one connection per readiness event before others get a turn.
    pub read_budget: usize,
    /// Connections accepted from one listener per accept call (an event, or the ready queue)
    /// before others get a turn.
    pub accept_budget: usize,
    /// Datagrams received from one UDP socket per receive call (an event, or the ready queue)
    /// before others get a turn.
    pub datagram_budget: usize,
    /// Replies queued per UDP socket while its send buffer is full; beyond, they are dropped.
    /// (Their bytes are bounded by `max_output` too.)
    pub datagram_queue: usize,
    /// How long accepting pauses after running out of file descriptors.
    pub accept_pause: Duration,
    /// How long a closing connection may linger, discarding input, before it is cut.
    pub linger: Duration,
    /// A TLS handshake, and a PROXY protocol header before it, must complete within this
    /// long after accept.
    pub handshake_timeout: Duration,
    /// How long accepted connections may keep going after a shutdown request.
    pub shutdown_grace: Duration,
    /// Log a summary line this often; `None` disables.
    pub stats_interval: Option<Duration>,
    /// Turn SIGINT and SIGTERM into a graceful shutdown (the CLI does; tests use a `Handle`).
    pub handle_signals: bool,
    /// Before a `poll` that would sleep, keep polling without sleeping for up to this long.
    /// Zero (the default) never spins. Spinning spends the server's idle CPU so that a peer's
    /// next write finds the loop awake instead of having to wake it: see `Reactor::wait`.
    pub busy_poll: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_conns: 10_000,
            idle_timeout: Some(Duration::from_secs(300)),
            max_output: 1024 * 1024,
            read_budget: 256 * 1024,
            accept_budget: 64,
            datagram_budget: 256,
            datagram_queue: 1024,
            accept_pause: Duration::from_millis(100),
            linger: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            stats_interval: None,
            handle_signals: false,
            busy_poll: Duration::ZERO,
        }
    }
}
