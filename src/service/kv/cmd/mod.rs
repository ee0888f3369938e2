//! Commands: the table of every command the service knows, and the one function that looks a
//! request's command up, checks its arity and runs it.
//!
//! Sits between the parser and the keyspace: `Kv::input` hands each parsed request to
//! [`execute`]; the command functions (grouped by family, one file each) read their arguments
//! in place, touch the [`super::store::Store`], and encode their reply with
//! [`super::reply`].
//!
//! | file            | commands                                                        |
//! |-----------------|-----------------------------------------------------------------|
//! | `strings.rs`    | GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX MGET MSET MSETNX |
//! |                 | APPEND STRLEN GETRANGE SUBSTR SETRANGE INCR DECR INCRBY DECRBY  |
//! |                 | INCRBYFLOAT LCS                                                 |
//! | `bits.rs`       | SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO        |
//! | `keyspace.rs`   | DEL UNLINK EXISTS TOUCH TYPE RENAME RENAMENX COPY EXPIRE PEXPIRE |
//! |                 | EXPIREAT PEXPIREAT TTL PTTL EXPIRETIME PEXPIRETIME PERSIST KEYS |
//! |                 | SCAN RANDOMKEY DBSIZE FLUSHALL FLUSHDB                          |
//! | `connection.rs` | PING ECHO SELECT QUIT AUTH HELLO CLIENT                         |
//! | `server.rs`     | INFO CONFIG MEMORY TIME                                         |
//! | `command.rs`    | COMMAND                                                         |
//! | `object.rs`     | OBJECT                                                          |
//! | `stats.rs`      | the counts behind INFO commandstats                             |
//! | `pubsub.rs`     | SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH PUBSUB    |
//! |                 | SSUBSCRIBE SUNSUBSCRIBE SPUBLISH                                |
//! | this file       | MULTI EXEC DISCARD WATCH UNWATCH RESET (transactions: the connection's queue and its watched keys) |
//!
//! Arity follows Redis's convention (and `COMMAND` reports it): `n > 0` means exactly `n`
//! arguments counting the command name, `n < 0` means at least `-n`.
//!
//! A container (`CLIENT`, `CONFIG`, `COMMAND`, `MEMORY`, `OBJECT`, `PUBSUB`) lists its subcommands in
//! its row ([`Command::subs`]), so [`execute`] resolves `CONFIG GET` to `config|get` before it
//! checks anything else, as Redis's `lookupCommand` does: an unknown subcommand or a wrong
//! count is refused like an unknown command, and fails a transaction at queueing.

mod bits;
mod command;
mod connection;
mod keyspace;
mod object;
mod pubsub;
mod server;
mod stats;
mod strings;

pub(super) use stats::CommandStats;

use crate::service::Cx;

use std::ops::Range;

use super::Kv;
use super::reply;
use super::resp::Args;

/// A command implementation. The arity has been checked before it runs.
type Run = fn(&mut Kv, Args<'_>, &mut Cx<'_>);

/// One row of the command table; also what `COMMAND` reports.
#[derive(Debug)]
pub struct Command {
    /// Lowercase name, as Redis prints it in errors.
    pub name: &'static str,
    /// See the module docs.
    pub arity: i32,
    /// Redis's command flags, for `COMMAND`.
    pub flags: &'static [&'static str],
    /// Position of the first key argument (0: none).
    pub first_key: i32,
    /// Position of the last key argument (-1: the last argument).
    pub last_key: i32,
    /// Step between key arguments.
    pub step: i32,
    /// The key positions name shard channels, not keys (`SSUBSCRIBE`, `SPUBLISH`): Redis 7
    /// declares them with a `not_key` key specification, so `COMMAND INFO` shows the
    /// positions and `COMMAND GETKEYS` finds no keys.
    pub channels: bool,
    run: Run,
    /// A container's subcommands (`CONFIG GET`), its `HELP` last; empty for other commands.
    pub subs: &'static [Sub],
}

const fn command(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
    run: Run,
) -> Command {
    Command {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        channels: false,
        run,
        subs: &[],
    }
}

/// A command whose key positions are shard channels (see [`Command::channels`]).
const fn channels(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
    run: Run,
) -> Command {
    Command { channels: true, ..command(name, arity, flags, keys, run) }
}

/// A container: a command whose first argument names a subcommand (`CLIENT`, `CONFIG`). It
/// has no keys of its own (its subcommands may); `run` answers the container alone, where
/// its arity allows that (`COMMAND`).
const fn container(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    run: Run,
    subs: &'static [Sub],
) -> Command {
    Command { subs, ..command(name, arity, flags, NONE, run) }
}

const R: &[&str] = &["readonly", "fast"];
const W: &[&str] = &["write", "denyoom"];
const WF: &[&str] = &["write", "denyoom", "fast"];
const WD: &[&str] = &["write", "fast"];
const F: &[&str] = &["fast"];
const S: &[&str] = &["loading", "stale"];
const PS: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const CONN: &[&str] = &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"];
const TX: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];
const NONE: (i32, i32, i32) = (0, 0, 0);
const KEY: (i32, i32, i32) = (1, 1, 1);
const KEYS: (i32, i32, i32) = (1, -1, 1);
/// A subcommand's one key, right after its name (`OBJECT ENCODING key`).
const SUB_KEY: (i32, i32, i32) = (2, 2, 1);

/// Every command, the hottest first (lookup is a linear scan of short names).
pub static COMMANDS: &[Command] = &[
    command("get", 2, R, KEY, strings::get),
    command("set", -3, W, KEY, strings::set),
    command("ping", -1, F, NONE, connection::ping),
    command("incr", 2, WF, KEY, strings::incr),
    command("mget", -2, R, KEYS, strings::mget),
    command("mset", -3, W, (1, -1, 2), strings::mset),
    command("del", -2, &["write"], KEYS, keyspace::del),
    command("exists", -2, R, KEYS, keyspace::exists),
    command("decr", 2, WF, KEY, strings::decr),
    command("incrby", 3, WF, KEY, strings::incrby),
    command("decrby", 3, WF, KEY, strings::decrby),
    command("incrbyfloat", 3, WF, KEY, strings::incrbyfloat),
    command("setbit", 4, W, KEY, bits::setbit),
    command("getbit", 3, R, KEY, bits::getbit),
    command("bitcount", -2, &["readonly"], KEY, bits::bitcount),
    command("bitpos", -3, &["readonly"], KEY, bits::bitpos),
    command("bitop", -4, W, (2, -1, 1), bits::bitop),
    command("bitfield", -2, W, KEY, bits::bitfield),
    command("bitfield_ro", -2, &["readonly", "fast"], KEY, bits::bitfield_ro),
    command("expire", -3, WD, KEY, keyspace::expire),
    command("pexpire", -3, WD, KEY, keyspace::pexpire),
    command("ttl", 2, R, KEY, keyspace::ttl),
    command("pttl", 2, R, KEY, keyspace::pttl),
    command("persist", 2, WD, KEY, keyspace::persist),
    command("setex", 4, W, KEY, strings::setex),
    command("psetex", 4, W, KEY, strings::psetex),
    command("setnx", 3, WF, KEY, strings::setnx),
    command("strlen", 2, R, KEY, strings::strlen),
    command("append", 3, WF, KEY, strings::append),
    command("getrange", 4, &["readonly"], KEY, strings::getrange),
    command("substr", 4, &["readonly"], KEY, strings::getrange),
    command("setrange", 4, W, KEY, strings::setrange),
    command("lcs", -3, &["readonly"], (1, 2, 1), strings::lcs),
    command("type", 2, R, KEY, keyspace::key_type),
    command("unlink", -2, WD, KEYS, keyspace::del),
    command("touch", -2, R, KEYS, keyspace::exists),
    command("getset", 3, WF, KEY, strings::getset),
    command("getdel", 2, WD, KEY, strings::getdel),
    command("getex", -2, WD, KEY, strings::getex),
    command("msetnx", -3, W, (1, -1, 2), strings::msetnx),
    command("expireat", -3, WD, KEY, keyspace::expireat),
    command("pexpireat", -3, WD, KEY, keyspace::pexpireat),
    command("expiretime", 2, R, KEY, keyspace::expiretime),
    command("pexpiretime", 2, R, KEY, keyspace::pexpiretime),
    command("rename", 3, &["write"], (1, 2, 1), keyspace::rename),
    command("renamenx", 3, WD, (1, 2, 1), keyspace::renamenx),
    command("copy", -3, W, (1, 2, 1), keyspace::copy),
    command("publish", 3, &["pubsub", "loading", "stale", "fast"], NONE, pubsub::publish),
    command("subscribe", -2, PS, NONE, pubsub::subscribe),
    command("unsubscribe", -1, PS, NONE, pubsub::unsubscribe),
    command("psubscribe", -2, PS, NONE, pubsub::psubscribe),
    command("punsubscribe", -1, PS, NONE, pubsub::punsubscribe),
    channels("spublish", 3, &["pubsub", "loading", "stale", "fast"], KEY, pubsub::spublish),
    channels("ssubscribe", -2, PS, KEYS, pubsub::ssubscribe),
    channels("sunsubscribe", -1, PS, KEYS, pubsub::sunsubscribe),
    container("pubsub", -2, &[], handled_in_execute, pubsub::SUBS),
    command(
        "reset",
        1,
        &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        NONE,
        handled_in_execute,
    ),
    command("randomkey", 1, &["readonly"], NONE, keyspace::randomkey),
    command("echo", 2, &["loading", "stale", "fast"], NONE, connection::echo),
    command("dbsize", 1, R, NONE, keyspace::dbsize),
    command("keys", 2, &["readonly"], NONE, keyspace::keys),
    command("scan", -2, &["readonly"], NONE, keyspace::scan),
    command("flushall", -1, &["write"], NONE, keyspace::flush),
    command("flushdb", -1, &["write"], NONE, keyspace::flush),
    command("select", 2, &["loading", "stale", "fast"], NONE, connection::select),
    command("quit", -1, CONN, NONE, connection::quit),
    command("hello", -1, CONN, NONE, connection::hello),
    command("auth", -2, CONN, NONE, connection::auth),
    container("client", -2, &[], handled_in_execute, connection::CLIENT),
    command("info", -1, S, NONE, server::info),
    container("config", -2, &[], handled_in_execute, server::CONFIG),
    container("command", -1, S, command::command, command::SUBS),
    container("memory", -2, &[], handled_in_execute, server::MEMORY),
    container("object", -2, &[], handled_in_execute, object::SUBS),
    command("time", 1, &["loading", "stale", "fast"], NONE, server::time),
    command("multi", 1, TX, NONE, handled_in_execute),
    command("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"], NONE, handled_in_execute),
    command("discard", 1, TX, NONE, handled_in_execute),
    command("watch", -2, TX, KEYS, watch),
    command("unwatch", 1, TX, NONE, unwatch),
];

/// Finds a command by name, ignoring ASCII case as Redis does.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    lookup_row(name).map(|(_, command)| command)
}

/// [`lookup`], with the command's row in the table.
fn lookup_row(name: &[u8]) -> Option<(usize, &'static Command)> {
    COMMANDS.iter().enumerate().find(|(_, c)| c.name.as_bytes().eq_ignore_ascii_case(name))
}

/// What a request runs: a command, or a container's subcommand.
#[derive(Debug, Clone, Copy)]
struct Target {
    command: &'static Command,
    /// As Redis names it: `get`, `config|get`.
    name: &'static str,
    arity: i32,
    run: Run,
    /// Its place in [`CommandStats`].
    slot: usize,
}

/// The target of `args`, the command at row `index`, as Redis's `lookupCommand` finds it: a
/// container followed by an argument names one of its subcommands (`None` if it has no such
/// one); alone, it is itself.
fn resolve(stats: &CommandStats, index: usize, command: &'static Command, args: Args<'_>) -> Option<Target> {
    if command.subs.is_empty() || args.len() < 2 {
        let Command { name, arity, run, .. } = *command;
        return Some(Target { command, name, arity, run, slot: index });
    }
    let (j, sub) = command.subs.iter().enumerate().find(|(_, sub)| sub.is_called(args.arg(1)))?;
    Some(Target { command, name: sub.name, arity: sub.arity, run: sub.run, slot: stats.sub_slot(index, j) })
}

/// The container's subcommand called `wanted` (ignoring ASCII case).
pub(super) fn find_sub(command: &'static Command, wanted: &[u8]) -> Option<&'static Sub> {
    command.subs.iter().find(|sub| sub.is_called(wanted))
}

pub(super) fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = i64::try_from(argc).unwrap_or(i64::MAX);
    let arity = i64::from(arity);
    if arity >= 0 { argc == arity } else { argc >= -arity }
}

/// Commands queued between `MULTI` and `EXEC`, copied out of the input (which moves on).
#[derive(Debug, Default)]
pub struct Transaction {
    commands: Vec<Queued>,
    /// Bytes queued so far: bounded by `max_query`, since a transaction is one request.
    bytes: usize,
    /// A command was refused while queueing (unknown, wrong arity, too large): `EXEC` will
    /// discard the whole transaction, as Redis does.
    failed: bool,
}

impl Transaction {
    /// Commands queued so far.
    pub(super) fn len(&self) -> usize {
        self.commands.len()
    }
}

/// One queued command, looked up when it was queued, with its arguments copied back to back.
#[derive(Debug)]
struct Queued {
    target: Target,
    source: Vec<u8>,
    /// Where each argument lies in `source`.
    ranges: Vec<Range<usize>>,
}

/// Runs one request (`args` is not empty), or queues it if a `MULTI` is open.
///
/// `MULTI` opens `transaction`; until `EXEC` or `DISCARD`, every command is checked (known,
/// right arity) and answered `+QUEUED` instead of run. `EXEC` then runs them all, one after
/// another in this one call, so no other client's command can come between them: on a
/// single-threaded reactor that is all atomicity takes.
///
/// Before anything runs or is queued: the command and, for a container, its subcommand
/// exist, then the arity, then the password, then the keyspace's bound, then pub/sub mode
/// (Redis's `processCommand` order). A request refused by one of them is not run, and one
/// refused before pub/sub mode fails an open transaction; a refused `EXEC` ends the
/// transaction and the watch at once ([`abort_exec`]).
pub(super) fn execute(kv: &mut Kv, transaction: &mut Option<Transaction>, args: Args<'_>, cx: &mut Cx<'_>) {
    if looks_like_http(args.arg(0)) {
        return cross_protocol_attack(cx);
    }
    // CLIENT LIST's `cmd=` names the last command looked up, as Redis's `lastcmd` does:
    // refused ones included, EXEC rather than what it ran, and `NULL` for an unknown command
    // or subcommand, which is none.
    let Some((index, command)) = lookup_row(args.arg(0)) else {
        note_command(kv, cx, "NULL");
        fail(transaction);
        return unknown_command(args, cx.out());
    };
    // An unknown command or subcommand is counted nowhere, as in Redis; any other refusal
    // below counts as the target's `rejected_calls`.
    let Some(target) = resolve(&kv.command_stats, index, command, args) else {
        note_command(kv, cx, "NULL");
        fail(transaction);
        return unknown_subcommand(command.name, args.arg(1), cx.out());
    };
    note_command(kv, cx, target.name);
    if !arity_ok(target.arity, args.len()) {
        kv.command_stats.rejected(target.slot);
        if target.name == "exec" {
            return abort_exec(kv, transaction, b"wrong number of arguments for 'exec' command", cx);
        }
        fail(transaction);
        return wrong_arity(target.name, cx.out());
    }
    // With a password set, a client that has not given it may only AUTH, HELLO, QUIT or
    // RESET (the commands Redis flags `no_auth`). After the checks above, as in Redis: an
    // unknown command or a wrong arity is reported as such even then.
    if kv.config.requirepass.is_some() && !command.flags.contains(&"no_auth") && !kv.authenticated(cx) {
        kv.command_stats.rejected(target.slot);
        if command.name == "exec" {
            return abort_exec(kv, transaction, NOAUTH, cx);
        }
        fail(transaction);
        return reply::error_bytes(cx.out(), NOAUTH);
    }
    if command.name == "reset" {
        kv.counters.commands_processed += 1;
        kv.command_stats.called(target.slot, false);
        return reset(kv, transaction, cx);
    }
    // A full keyspace refuses what may add a key, as Redis does at its `maxmemory`: at once,
    // or, for a transaction, at queueing (which fails it) and at EXEC (which discards it), so
    // that a transaction never runs in part. (Flags are read only once the keyspace is full.)
    // Redis at `maxmemory` also refuses to *queue* commands that add nothing, since queueing
    // costs memory; here the limit counts keys and the queue is bounded by `max_query`, so
    // only commands that may add a key are refused. Like `maxmemory`, the limit is checked
    // before a command runs: one command or transaction may take the keyspace past it.
    if full(kv) && denyoom(command) {
        kv.command_stats.rejected(target.slot);
        fail(transaction);
        return reply::error_bytes(cx.out(), OOM);
    }
    if command.name == "exec"
        && full(kv)
        && transaction.as_ref().is_some_and(|t| t.commands.iter().any(|q| denyoom(q.target.command)))
    {
        kv.command_stats.rejected(target.slot);
        return abort_exec(kv, transaction, OOM, cx);
    }
    // A RESP2 client in pub/sub mode may only (un)subscribe, PING, QUIT or RESET: anything
    // else's reply could not be told from a message (RESP3's pushes can). A subcommand is
    // named as Redis names it (`config|get`). After the keyspace's bound, as in Redis's
    // `processCommand`.
    if in_pubsub_mode(kv, cx)
        && !matches!(
            target.name,
            "subscribe"
                | "unsubscribe"
                | "psubscribe"
                | "punsubscribe"
                | "ssubscribe"
                | "sunsubscribe"
                | "ping"
                | "quit"
                | "reset"
        )
    {
        kv.command_stats.rejected(target.slot);
        if target.name == "exec" {
            return abort_exec(kv, transaction, pubsub_context_text("exec").as_bytes(), cx);
        }
        return pubsub_context_error(target.name, cx.out());
    }
    // The transaction commands are answered here; counted below, as `run` counts the rest.
    // Processed (`total_commands_processed`) before they run, as `run` counts, so that an
    // INFO inside EXEC sees the EXEC, as in Redis; a command merely queued is not, yet.
    let answered_here = match command.name {
        "multi" | "exec" | "discard" => true,
        "watch" => transaction.is_some(), // refused inside MULTI; outside, `run` counts it
        _ => false,
    };
    if answered_here {
        kv.counters.commands_processed += 1;
    }
    let start = cx.out().len();
    match (command.name, transaction.as_mut()) {
        ("multi", None) => {
            *transaction = Some(Transaction::default());
            cx.write(reply::OK);
        }
        ("multi", Some(_)) => reply::err(cx.out(), "MULTI calls can not be nested"),
        // Watching from inside the transaction would be too late to mean anything. Refused,
        // but the transaction stays good (Redis answers this in the command, not at queueing).
        ("watch", Some(_)) => reply::err(cx.out(), "WATCH inside MULTI is not allowed"),
        ("exec", None) => reply::err(cx.out(), "EXEC without MULTI"),
        ("discard", None) => reply::err(cx.out(), "DISCARD without MULTI"),
        ("discard", Some(_)) => {
            *transaction = None;
            kv.store.unwatch(cx.id().serial(), cx.now());
            cx.write(reply::OK);
        }
        ("exec", Some(_)) => {
            if let Some(t) = transaction.take() {
                exec(kv, t, cx);
            }
        }
        // QUIT is obeyed at once, transaction or not.
        ("quit", _) | (_, None) => return run(kv, target, args, cx),
        (_, Some(t)) => {
            if !queue(t, target, args, kv.config.max_query, cx) {
                kv.command_stats.rejected(target.slot);
            }
            return;
        }
    }
    kv.command_stats.called(target.slot, is_error(cx, start));
}

/// The reply written from `start` on is an error (Redis counts such a call as failed).
fn is_error(cx: &mut Cx<'_>, start: usize) -> bool {
    cx.out().get(start) == Some(&b'-')
}

/// EXEC refused for `why` (a wrong count, no password, a full keyspace, pub/sub mode), in
/// MULTI or not: Redis's `rejectCommand` answers every refusal of EXEC with
/// `execCommandAbort`, which discards the transaction and ends the watch, and says why.
fn abort_exec(kv: &mut Kv, transaction: &mut Option<Transaction>, why: &[u8], cx: &mut Cx<'_>) {
    *transaction = None;
    kv.store.unwatch(cx.id().serial(), cx.now());
    reply::error_bytes(cx.out(), &[&b"EXECABORT Transaction discarded because of: "[..], why].concat());
}

/// A command was refused: an open transaction will be discarded at `EXEC`, as in Redis.
fn fail(transaction: &mut Option<Transaction>) {
    if let Some(t) = transaction.as_mut() {
        t.failed = true;
    }
}

/// The error a write gets when the keyspace is full (Redis says `OOM command not allowed when
/// used memory > 'maxmemory'.`; clients look at the `OOM` code).
const OOM: &[u8] = b"OOM command not allowed: the keyspace holds its most keys";

/// The keyspace holds `max_keys` keys (see `KvConfig::max_keys`).
fn full(kv: &Kv) -> bool {
    kv.store.len() >= kv.config.max_keys.min(super::store::MAX_KEYS)
}

/// A command that may add a key (Redis's `denyoom` flag).
fn denyoom(command: &Command) -> bool {
    command.flags.contains(&"denyoom")
}

/// Runs a command (one that passed `execute`'s checks, or was queued after them) and counts
/// the call, as failed if it answered an error.
fn run(kv: &mut Kv, target: Target, args: Args<'_>, cx: &mut Cx<'_>) {
    kv.counters.commands_processed += 1;
    let start = cx.out().len();
    (target.run)(kv, args, cx);
    kv.command_stats.called(target.slot, is_error(cx, start));
}

/// What a queued command costs beyond its arguments' bytes: its `Queued` and two vectors (64),
/// and a range per argument (16). Counted, as WATCH counts its keys' bookkeeping, so that
/// four million queued `PING`s cannot hold 470 MB under a 16 MiB `max_query`.
const QUEUED_OVERHEAD: usize = 64;
const QUEUED_ARG_OVERHEAD: usize = 16;

/// Queues a command for `EXEC`; false if it was refused (the transaction is over its bound).
fn queue(t: &mut Transaction, target: Target, args: Args<'_>, limit: usize, cx: &mut Cx<'_>) -> bool {
    let size: usize = args.iter_from(0).map(<[u8]>::len).sum();
    let cost = size + QUEUED_OVERHEAD + QUEUED_ARG_OVERHEAD * args.len();
    if t.bytes.saturating_add(cost) > limit {
        t.failed = true;
        reply::err(cx.out(), "transaction too large: over the query buffer limit");
        return false;
    }
    let mut source = Vec::with_capacity(size);
    let mut ranges = Vec::with_capacity(args.len());
    for arg in args.iter_from(0) {
        ranges.push(source.len()..source.len() + arg.len());
        source.extend_from_slice(arg);
    }
    t.bytes += cost;
    t.commands.push(Queued { target, source, ranges });
    reply::simple(cx.out(), "QUEUED");
    true
}

/// `EXEC`: every queued command, in order, and an array of their replies; or, if a key the
/// client `WATCH`es has changed since, nothing at all and a null array. The replies of a
/// transaction cannot be held back at the output limit like a pipeline's (holding back would
/// let other clients' commands in between), so they are bounded on their own: past
/// `max_query` bytes of replies the rest still run (a transaction is all or nothing) but their
/// replies are dropped, the client gets an error, and the connection closes, as Redis closes
/// a client over its output buffer limit.
fn exec(kv: &mut Kv, t: Transaction, cx: &mut Cx<'_>) {
    // The watch ends here whatever happens next: the commands below may change the watched
    // keys themselves, and that must not count against the next transaction.
    let unchanged = kv.store.unwatch(cx.id().serial(), cx.now());
    if t.failed {
        return reply::error_bytes(cx.out(), b"EXECABORT Transaction discarded because of previous errors.");
    }
    if !unchanged {
        log::debug!("kv: {} EXEC aborted: a watched key changed", cx.id());
        return reply::null_array(cx.out(), kv.resp3);
    }
    let start = cx.out().len();
    let limit = kv.config.max_query;
    let mut over = false;
    reply::array(cx.out(), t.commands.len());
    kv.in_exec = true;
    for &Queued { target, ref source, ref ranges } in &t.commands {
        run(kv, target, Args::from_parts(source, ranges), cx);
        // Once over, every later reply is dropped as soon as it is written.
        over |= cx.out().len() - start > limit;
        if over {
            cx.out().truncate(start);
        }
    }
    kv.in_exec = false;
    if over {
        reply::err(
            cx.out(),
            "EXEC replies over the output limit: the transaction ran, its replies are dropped",
        );
        cx.close();
    }
}

/// `WATCH key [key ...]`: `EXEC` will run the next transaction only if none of these keys
/// changes before it. The keys a client watches, with their bookkeeping, are bounded
/// together by `max_query`, like the transaction they guard.
fn watch(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let client = cx.id().serial();
    let adding: usize = args.iter_from(1).map(|key| key.len() + super::watch::WATCH_OVERHEAD).sum();
    if kv.store.watched_bytes(client).saturating_add(adding) > kv.config.max_query {
        return reply::err(cx.out(), "too many watched keys: over the query buffer limit");
    }
    let now = cx.now();
    for key in args.iter_from(1) {
        kv.store.watch(client, key, now);
    }
    cx.write(reply::OK);
}

/// `UNWATCH`: forget every watched key.
fn unwatch(kv: &mut Kv, _args: Args<'_>, cx: &mut Cx<'_>) {
    kv.store.unwatch(cx.id().serial(), cx.now());
    cx.write(reply::OK);
}

/// True for a RESP2 client with a subscription of any kind, a shard channel's too (cheap
/// while nobody is subscribed).
fn in_pubsub_mode(kv: &Kv, cx: &Cx<'_>) -> bool {
    kv.pubsub.any() && !kv.resp3 && kv.pubsub.subscribed(cx.id().serial())
}

/// Redis's refusal of a command in RESP2 pub/sub mode, naming it as Redis does
/// (`container|sub` for a subcommand).
fn pubsub_context_error(name: &str, out: &mut Vec<u8>) {
    reply::err(out, &pubsub_context_text(name));
}

/// [`pubsub_context_error`]'s text, without its `ERR` code.
fn pubsub_context_text(name: &str) -> String {
    format!(
        "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    )
}

/// `RESET`: the connection as new, as Redis resets it: no transaction, no watched keys, no
/// subscriptions, RESP2, no name.
fn reset(kv: &mut Kv, transaction: &mut Option<Transaction>, cx: &mut Cx<'_>) {
    let client = cx.id().serial();
    *transaction = None;
    kv.store.unwatch(client, cx.now());
    kv.pubsub.forget(client);
    cx.exempt_from_idle(false);
    kv.resp3 = false;
    let password = kv.config.requirepass.is_some();
    if let Some(c) = kv.clients.get_mut(&client) {
        c.name = None;
        // Back to a new connection's state: with a password, that is not authenticated.
        c.authenticated = !password;
    }
    reply::simple(cx.out(), "RESET");
}

/// The table's entry for what [`execute`] runs itself: MULTI, EXEC and DISCARD (they act on
/// the connection's transaction, which commands do not see), RESET, and containers, which
/// need a subcommand by their arity and run that instead. Never called.
fn handled_in_execute(_kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    unknown_command(args, cx.out());
}

/// An HTTP request line or header where a command should be. Inline commands make RESP
/// readable from any byte stream, so a web page can make a browser `POST` to this port and
/// have the lines of its body run as commands; Redis closes such a connection at its first
/// `POST` or `Host:`, without a reply, and so do we.
fn looks_like_http(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:")
}

fn cross_protocol_attack(cx: &mut Cx<'_>) {
    // Nothing this call answered goes out either (the arity error of `GET / HTTP/1.1`, the
    // line before `Host:`), as Redis frees such a client before writing what it had queued.
    cx.out().clear();
    log::warn!(
        "kv: {} ({}) sent an HTTP request line or header: a possible cross-protocol attack; \
         connection closed",
        cx.id(),
        cx.peer()
    );
    cx.close();
}

/// Records the command a client ran last, for `CLIENT LIST`'s `cmd=` and `idle=`.
/// `-NOAUTH`'s text, without the `-`.
const NOAUTH: &[u8] = b"NOAUTH Authentication required.";

fn note_command(kv: &mut Kv, cx: &Cx<'_>, name: &'static str) {
    if let Some(client) = kv.clients.get_mut(&cx.id().serial()) {
        client.last_command = name;
        client.last_command_at = cx.now();
    }
}

/// `-ERR unknown command 'x', with args beginning with: 'a' 'b' ` as Redis 7 words it: the
/// name cut at 128 bytes, then quoted arguments (each followed by a space) until 128 bytes of
/// them have been written. Each is printed as a C string (`%.*s`), so up to a NUL byte.
fn unknown_command(args: Args<'_>, out: &mut Vec<u8>) {
    let mut text = Vec::with_capacity(200);
    text.extend_from_slice(b"ERR unknown command '");
    let name = c_str(args.arg(0));
    text.extend_from_slice(name.get(..128).unwrap_or(name));
    text.extend_from_slice(b"', with args beginning with: ");
    let mut written = 0;
    for arg in args.iter_from(1) {
        if written >= 128 {
            break;
        }
        let arg = c_str(arg);
        let shown = arg.get(..128 - written).unwrap_or(arg);
        text.push(b'\'');
        text.extend_from_slice(shown);
        text.extend_from_slice(b"' ");
        written += shown.len() + 3;
    }
    reply::error_bytes(out, &text);
}

/// `-ERR wrong number of arguments for 'get' command`.
fn wrong_arity(name: &str, out: &mut Vec<u8>) {
    reply::err(out, &format!("wrong number of arguments for '{name}' command"));
}

/// A subcommand of a container command (`CLIENT ID`, `CONFIG GET`).
#[derive(Debug)]
pub struct Sub {
    /// Redis's full name, `container|sub`.
    pub name: &'static str,
    /// Arity counted from the container's name, as for commands.
    pub arity: i32,
    /// Key positions, counted from the container's name as for commands (0: no keys).
    pub first_key: i32,
    /// See `first_key`.
    pub last_key: i32,
    /// See `first_key`.
    pub step: i32,
    run: Run,
    /// Its entry in `CONTAINER HELP`: the usage line, then what it does.
    help: &'static [&'static str],
}

impl Sub {
    /// Whether a client names this subcommand by `wanted`: the name after the `|`, ignoring
    /// ASCII case.
    fn is_called(&self, wanted: &[u8]) -> bool {
        let short = self.name.split_once('|').map_or(self.name, |(_, name)| name);
        short.as_bytes().eq_ignore_ascii_case(wanted)
    }
}

const fn sub(name: &'static str, arity: i32, run: Run, help: &'static [&'static str]) -> Sub {
    Sub { name, arity, first_key: 0, last_key: 0, step: 0, run, help }
}

impl Sub {
    /// The subcommand with key positions (`OBJECT ENCODING key`: `(2, 2, 1)`).
    const fn keys(self, (first_key, last_key, step): (i32, i32, i32)) -> Sub {
        Sub { first_key, last_key, step, ..self }
    }
}

/// A container's `HELP` subcommand (`name` is `container|help`), last in its list.
const fn help(name: &'static str) -> Sub {
    sub(name, 2, show_help, &["HELP", "    Prints this help."])
}

/// `CONTAINER HELP`: every subcommand's entry, as Redis lays them out.
fn show_help(_kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let Some(container) = lookup(args.arg(0)) else {
        return;
    };
    let out = cx.out();
    reply::array(out, 1 + container.subs.iter().map(|sub| sub.help.len()).sum::<usize>());
    let name = container.name.to_ascii_uppercase();
    reply::simple(out, &format!("{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for line in container.subs.iter().flat_map(|sub| sub.help) {
        reply::simple(out, line);
    }
}

/// Redis's `-ERR unknown subcommand 'x'. Try CLIENT HELP.`
fn unknown_subcommand(container: &str, wanted: &[u8], out: &mut Vec<u8>) {
    let mut text = b"ERR unknown subcommand '".to_vec();
    text.extend_from_slice(wanted.get(..128).unwrap_or(wanted));
    text.extend_from_slice(format!("'. Try {} HELP.", container.to_ascii_uppercase()).as_bytes());
    reply::error_bytes(out, &text);
}

/// Redis's reply to an argument that should be an integer and is not.
fn not_an_integer(out: &mut Vec<u8>) {
    reply::err(out, "value is not an integer or out of range");
}

/// An option word as Redis reads it: a C string, up to its first NUL byte. Redis compares
/// options (`strcasecmp`) on the argument's C string, so `NX\0junk` is `NX` there; lengths and
/// numbers, read with their full length, are not cut.
fn c_str(arg: &[u8]) -> &[u8] {
    arg.split(|&b| b == 0).next().unwrap_or_default()
}

/// Redis's reply to options it cannot make sense of.
fn syntax_error(out: &mut Vec<u8>) {
    reply::err(out, "syntax error");
}

/// The wall clock as Unix milliseconds (whole ones, as Redis's `mstime`), which Redis adds to
/// relative expire times before checking them for overflow.
fn unix_ms(cx: &Cx<'_>) -> i64 {
    i64::try_from(since_epoch(cx).as_millis()).unwrap_or(i64::MAX)
}

/// This turn's wall clock as time since the Unix epoch (zero for a clock set before 1970).
fn since_epoch(cx: &Cx<'_>) -> std::time::Duration {
    cx.wall().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
}

/// The Unix time in milliseconds of `at`, an instant of the reactor's clock (not before this
/// turn), as this turn's wall clock places it, to the nearest millisecond: the two clocks are
/// read a few nanoseconds apart each turn, so an instant made by [`instant_at_unix_ms`] in an
/// earlier turn can come back a hair early, and rounding gives back the same millisecond.
fn unix_ms_at(cx: &Cx<'_>, at: std::time::Instant) -> i64 {
    let unix =
        since_epoch(cx) + at.saturating_duration_since(cx.now()) + std::time::Duration::from_micros(500);
    i64::try_from(unix.as_millis()).unwrap_or(i64::MAX)
}

/// The instant of Unix time `when` (milliseconds), if that is after this turn's wall clock.
fn instant_at_unix_ms(cx: &Cx<'_>, when: i64) -> Option<std::time::Instant> {
    let ahead = std::time::Duration::from_millis(u64::try_from(when).ok()?).checked_sub(since_epoch(cx))?;
    cx.now().checked_add(ahead)
}
