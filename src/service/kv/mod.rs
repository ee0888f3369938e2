//! A Redis-protocol (RESP2) key-value store that `redis-cli` and `redis-benchmark` talk to
//! unmodified.
//!
//! The data path, one file per concept:
//!
//! ```text
//!   reactor ── bytes ──▶ Kv::input (this file: the loop over pipelined requests)
//!                          │
//!                          ├─▶ resp.rs    parse one request into borrowed argument slices
//!                          ├─▶ cmd/       look the command up, check arity, run it
//!                          │     └─▶ store.rs   the keyspace, with lazy + active expiry
//!                          │           ├─▶ table.rs   the hash table, with positions for SCAN
//!                          │           └─▶ watch.rs   who WATCHes which key
//!                          │     └─▶ glob.rs    KEYS / SCAN / CONFIG GET patterns
//!                          └─▶ reply.rs   encode the reply into cx.out()
//!   reactor ◀── replies ── cx.out()
//!   reactor ── tick ────▶ Kv::tick ─▶ Store::active_expire
//! ```
//!
//! One [`Kv`] serves every connection of its listener, so all clients share one keyspace. A
//! connection's own state ([`Session`]) is only its parser; what other clients may ask about it
//! (`CLIENT LIST`) lives in the service's client registry.
//!
//! Everything a read delivered is handled in that one call: a client that pipelines 100
//! commands gets 100 replies in the same output buffer, and the reactor writes them with one
//! syscall. Malformed input gets Redis's protocol error and the connection is closed after the
//! reply is sent. See `docs/kv.md` for the command table, the limits and a transcript.

mod cmd;
mod entry;
pub mod glob;
mod longdouble;
mod pubsub;
pub mod reply;
pub mod resp;
pub mod store;
mod table;
mod watch;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{CloseReason, Cx, Service};
use resp::{Limits, Parsed, Parser};
use store::Store;

/// How often `tick` runs active expiry (Redis's default `hz 10`).
pub const EXPIRE_INTERVAL: Duration = Duration::from_millis(100);

/// Limits of the key-value service.
#[derive(Debug, Clone)]
pub struct KvConfig {
    /// Largest bulk string a request may carry, in bytes (Redis's `proto-max-bulk-len`,
    /// 512 MiB there). Longer ones get `-ERR Protocol error: invalid bulk length`.
    pub max_bulk: usize,
    /// Largest single request, in bytes (Redis's `client-query-buffer-limit`, 1 GiB there and
    /// at most that here: see [`MAX_QUERY`]).
    /// Only the request being received counts: complete ones are executed and dropped at once.
    pub max_query: usize,
    /// Most arguments in one request. More get `-ERR Protocol error: invalid multibulk length`.
    pub max_args: usize,
    /// What `CONFIG GET timeout` reports, in seconds (0: none): the idle timeout, which the
    /// reactor enforces (`Config::idle_timeout`), not this service. `reactor serve` copies
    /// `--idle-timeout` here, so a client asking learns the truth.
    pub timeout_secs: u64,
    /// Most keys the keyspace holds. Once it holds this many, commands that may add one
    /// (Redis's `denyoom` flag: SET, INCR, MSET…) are refused with `-OOM`, as Redis refuses
    /// them at its `maxmemory`; reads and deletes go on. Capped at [`store::MAX_KEYS`].
    pub max_keys: usize,
    /// The password of the `default` user (Redis's `requirepass`): when set, a client must
    /// `AUTH` (or `HELLO … AUTH`) before any command but `AUTH`, `HELLO`, `QUIT` and `RESET`,
    /// which get `-NOAUTH Authentication required.` An empty one is none, as in Redis.
    pub requirepass: Option<String>,
    /// Redis's `protected-mode`: with no password set, only clients from a loopback address
    /// are served; any other gets `-DENIED …` and is closed. A server bound to `0.0.0.0` by
    /// mistake so does not hand its data to the network.
    pub protected_mode: bool,
    /// What `CONFIG GET maxclients` and `INFO clients` report: the connection limit, which
    /// the reactor enforces (`Config::max_conns`), not this service; `reactor serve` copies
    /// it here (`--max-conns`, or the default as lowered to fit the file-descriptor limit).
    /// An embedder that sets another `Config::max_conns` should set this too.
    pub maxclients: usize,
    /// The addresses the service listens on, for `CONFIG GET port|bind` and `INFO server`'s
    /// `tcp_port` (the first address's port; `bind` lists every address). Nothing is reported
    /// while it is empty, as for a server built before it is bound to port 0. `reactor serve`
    /// fills it.
    pub listen: Vec<std::net::SocketAddr>,
}

/// The ceiling on `KvConfig::max_query`: 1 GiB.
pub const MAX_QUERY: usize = 1 << 30;

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            max_bulk: 8 * 1024 * 1024,
            // One maximal value plus as much again for its key and other arguments.
            max_query: 16 * 1024 * 1024,
            max_args: 1024 * 1024,
            // The reactor's default idle timeout.
            timeout_secs: 300,
            max_keys: store::MAX_KEYS,
            requirepass: None,
            protected_mode: true,
            // The reactor's default connection limit.
            maxclients: 10_000,
            listen: Vec::new(),
        }
    }
}

/// Protected mode's refusal (see [`KvConfig::protected_mode`]), in Redis's words where they
/// apply and this server's flags where Redis names its own.
const DENIED: &[u8] =
    b"-DENIED Running in protected mode because protected mode is enabled and no password is \
    set for the default user. In this mode connections are only accepted from the loopback interface. \
    To accept clients from other computers, set a password (--kv-requirepass), or, on a network you \
    trust, start the server with --kv-protected-mode no.\r\n";

/// What the service knows about one connected client, for `CLIENT LIST` / `CLIENT INFO`.
#[derive(Debug)]
struct Client {
    addr: SocketAddr,
    name: Option<Box<[u8]>>,
    opened: Instant,
    last_command_at: Instant,
    /// The last command run, as Redis names it (`get`, `client|list`).
    last_command: &'static str,
    /// The protocol it speaks: RESP3 after `HELLO 3` (`CLIENT LIST`'s `resp=`).
    resp3: bool,
    /// It may run commands: there is no password, or it gave it (`AUTH`).
    authenticated: bool,
    /// Wrong passwords it gave (`AUTH`, `HELLO … AUTH`): the first is logged at once, the
    /// count when it leaves.
    failed_auths: u64,
    /// In a `MULTI`: the commands queued so far (`CLIENT LIST`'s `multi=` and `x` flag).
    multi: Option<usize>,
}

/// Service-wide counters reported by `INFO stats`.
#[derive(Debug, Default)]
struct Counters {
    commands_processed: u64,
}

/// The key-value service. Build one with [`Kv::new`] and bind it to a listener.
#[derive(Debug)]
pub struct Kv {
    config: KvConfig,
    store: Store,
    /// Connected clients by connection serial (which is also their `CLIENT ID`).
    clients: BTreeMap<u64, Client>,
    counters: Counters,
    /// `INFO commandstats`: calls, refusals and errors of each command.
    command_stats: cmd::CommandStats,
    /// Who is subscribed to which channels and patterns.
    pubsub: pubsub::PubSub,
    /// The protocol of the connection whose command is running: RESP3 after `HELLO 3`. The
    /// session owns it; `input` lends it here for the command's time, since commands see the
    /// service, not the session.
    resp3: bool,
    /// A transaction's commands are running (`EXEC`), where Redis refuses `SSUBSCRIBE`.
    in_exec: bool,
}

/// Per-connection state: where the parser is in the client's current request.
#[derive(Debug)]
pub struct Session {
    parser: Parser,
    /// Commands queued since `MULTI`, if one is open.
    transaction: Option<cmd::Transaction>,
    /// `HELLO 3` switched this connection to RESP3.
    resp3: bool,
}

impl Kv {
    /// A service with an empty keyspace. A `max_query` over 1 GiB (Redis's own default
    /// `client-query-buffer-limit`) is lowered to it: that bounds what one command or
    /// transaction can add past `max_keys` (see `store::MAX_KEYS`).
    pub fn new(mut config: KvConfig) -> Self {
        config.max_query = config.max_query.min(MAX_QUERY);
        // An empty password is none, as Redis reads `requirepass ""` (and protected mode holds).
        config.requirepass = config.requirepass.filter(|p| !p.is_empty());
        Kv {
            config,
            store: Store::new(),
            clients: BTreeMap::new(),
            counters: Counters::default(),
            command_stats: cmd::CommandStats::new(),
            pubsub: pubsub::PubSub::default(),
            resp3: false,
            in_exec: false,
        }
    }

    /// Whether the client on `cx` may run commands: no password is set, or it gave it.
    fn authenticated(&self, cx: &Cx<'_>) -> bool {
        self.clients.get(&cx.id().serial()).is_some_and(|c| c.authenticated)
    }

    /// The keyspace, for tests and diagnostics.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn limits(&self) -> Limits {
        Limits {
            max_bulk: self.config.max_bulk,
            max_args: self.config.max_args,
            max_query: self.config.max_query,
        }
    }
}

impl Service for Kv {
    type Session = Session;

    fn name(&self) -> &'static str {
        "kv"
    }

    /// The reactor's backstop sits just above our own limit: an incomplete request is at most
    /// `max_query` bytes plus one header line still being received.
    fn max_input(&self) -> usize {
        self.config.max_query + resp::INLINE_MAX + 64
    }

    fn open(&mut self, cx: &mut Cx<'_>) -> Session {
        let now = cx.now();
        // `to_canonical`: an IPv4 client of a dual-stack listener shows as `::ffff:a.b.c.d`.
        let local = cx.peer().ip().to_canonical().is_loopback();
        if self.config.protected_mode && self.config.requirepass.is_none() && !local {
            log::warn!("kv: {} ({}) refused: protected mode, and no password is set", cx.id(), cx.peer());
            cx.write(DENIED);
            cx.close();
        }
        self.clients.insert(
            cx.id().serial(),
            Client {
                addr: cx.peer(),
                name: None,
                opened: now,
                last_command_at: now,
                last_command: "NULL",
                resp3: false,
                authenticated: self.config.requirepass.is_none(),
                failed_auths: 0,
                multi: None,
            },
        );
        let mut parser = Parser::new(self.limits());
        parser.set_unauthenticated(self.config.requirepass.is_some());
        Session { parser, transaction: None, resp3: false }
    }

    fn input(&mut self, session: &mut Session, input: &[u8], cx: &mut Cx<'_>) -> usize {
        let mut consumed = 0;
        loop {
            // Replies can be far larger than requests (a pipeline of GETs of a big value):
            // stop at the output limit and leave the rest for when the peer has read. At
            // least one request per call, so a tiny limit still makes progress.
            if consumed > 0 && cx.output_room() == 0 {
                return consumed;
            }
            let rest = input.get(consumed..).unwrap_or_default();
            match session.parser.parse(rest) {
                Ok(Parsed::Incomplete) => return consumed,
                Ok(Parsed::Request(len)) => {
                    let args = session.parser.args(rest);
                    consumed += len;
                    if !args.is_empty() {
                        self.resp3 = session.resp3;
                        // Set only while EXEC runs; cleared here too, so that a panic inside a
                        // transaction (a bug, caught by the reactor) cannot leave it set for
                        // every later client.
                        self.in_exec = false;
                        let queued = session.transaction.as_ref().map(cmd::Transaction::len);
                        cmd::execute(self, &mut session.transaction, args, cx);
                        // For other clients' `CLIENT LIST`: only when MULTI, a queued command,
                        // EXEC or DISCARD changed it, so a plain command costs no lookup.
                        let now_queued = session.transaction.as_ref().map(cmd::Transaction::len);
                        if now_queued != queued
                            && let Some(client) = self.clients.get_mut(&cx.id().serial())
                        {
                            client.multi = now_queued;
                        }
                        if self.config.requirepass.is_some() {
                            // AUTH (or RESET) may have changed it: the next request's bounds.
                            session.parser.set_unauthenticated(!self.authenticated(cx));
                        }
                        if session.resp3 != self.resp3 {
                            // HELLO (or RESET) switched it: messages to this client change shape.
                            session.resp3 = self.resp3;
                            self.pubsub.set_protocol(cx.id().serial(), self.resp3);
                            if let Some(client) = self.clients.get_mut(&cx.id().serial()) {
                                client.resp3 = self.resp3;
                            }
                        }
                    }
                    if cx.close_requested() {
                        // QUIT: nothing after it is read.
                        return input.len();
                    }
                }
                Err(error) => {
                    log::debug!("kv: {} from {}: protocol error: {error:?}", cx.id(), cx.peer());
                    error.write_reply(cx.out());
                    cx.close();
                    return input.len();
                }
            }
        }
    }

    fn close(&mut self, _session: Session, _reason: CloseReason, cx: &mut Cx<'_>) {
        if let Some(client) = self.clients.remove(&cx.id().serial())
            && client.failed_auths > 1
        {
            log::info!("kv: {} ({}): {} failed AUTHs", cx.id(), cx.peer(), client.failed_auths);
        }
        self.store.unwatch(cx.id().serial(), cx.now());
        self.pubsub.forget(cx.id().serial());
    }

    /// Active expiry, every [`EXPIRE_INTERVAL`]. It keeps asking even with no TTL keys, since
    /// the reactor stops calling `tick` after a `None` and a later `SET … EX` needs it again.
    fn tick(&mut self, now: Instant) -> Option<Instant> {
        let removed = self.store.active_expire(now);
        if removed > 0 {
            log::trace!("kv: active expiry removed {removed} keys");
        }
        Some(now + EXPIRE_INTERVAL)
    }

    fn refusal(&self) -> &[u8] {
        b"-ERR max number of clients reached\r\n"
    }
}
