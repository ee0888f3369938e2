//! `COMMAND` and its subcommands: what clients learn about the command table before they use
//! it (redis-py reads `COMMAND` entries, cluster-aware clients `COMMAND GETKEYS`).
//!
//! Entries use Redis 7's ten-field format (name, arity, flags, first key, last key, step, ACL
//! categories, tips, key specifications, subcommands), since `HELLO` says 7.0: redis-py's
//! RESP3 parser reads the seventh field unconditionally, and raised `IndexError` on the
//! six-field form of Redis 2.8–6. Tips, key specifications and subcommands are empty arrays
//! (clients fall back to the first/last/step triple), but for the shard-channel commands
//! (`SSUBSCRIBE`, `SUNSUBSCRIBE`, `SPUBLISH`), whose one key specification, flagged `not_key`,
//! is what tells a client that their positions are channels, not keys.
//!
//! `COMMAND DOCS` is not served: its answer is an unknown subcommand, as from a Redis
//! before 7.0, and that error is what makes `redis-cli` 7 fall back to the help compiled into
//! it (`help SET`, and the hints as you type). An empty answer, which this file gave before,
//! left it with an empty help table: `help set` printed a blank line.
//!
//! `COMMAND GETKEYS` finds keys by the first/last/step triple each row declares (a
//! subcommand's own, for `OBJECT ENCODING key`); for every command here that is exactly what
//! Redis 7's key specifications give (the shard-channel commands have none: their
//! specification is `not_key`). `COMMAND GETKEYSANDFLAGS` is not served: it needs each
//! key's access flags (`RW`, `OW`, `update`…), which the table does not carry.

use crate::service::Cx;

use super::{COMMANDS, Command, Kv, Sub, arity_ok, c_str, find_sub, help, lookup, reply, sub, syntax_error};
use crate::service::kv::glob;
use crate::service::kv::resp::Args;

/// `COMMAND` alone: every command's entry.
pub(super) fn command(kv: &mut Kv, _args: Args<'_>, cx: &mut Cx<'_>) {
    let resp3 = kv.resp3;
    let out = cx.out();
    reply::array(out, COMMANDS.len());
    for c in COMMANDS {
        describe_command(out, c, resp3);
    }
}

/// `COMMAND`'s subcommands, in the order Redis's `COMMAND HELP` lists them.
pub(super) const SUBS: &[Sub] = &[
    sub("command|count", 2, count, &["COUNT", "    Return the total number of commands in this server."]),
    sub(
        "command|list",
        -2,
        list,
        &[
            "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
            "    Return a list of all commands in this server.",
        ],
    ),
    sub(
        "command|info",
        -2,
        info,
        &["INFO <command-name> [<command-name> ...]", "    Return details about the given commands."],
    ),
    sub(
        "command|getkeys",
        -4,
        getkeys,
        &["GETKEYS <full-command>", "    Return the keys from a full command."],
    ),
    help("command|help"),
];

/// `COMMAND COUNT`: the top-level commands, as Redis counts them (not their subcommands).
fn count(_kv: &mut Kv, _args: Args<'_>, cx: &mut Cx<'_>) {
    reply::int(cx.out(), COMMANDS.len() as i64);
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]`: the name of
/// every command and subcommand (`config|get`), a container's right after it, as Redis lists
/// them (in its hash table's order; here the table's). `PATTERN` is a glob, matched without
/// regard to case; `ACLCAT` takes a category without its `@`; there are no modules, so
/// `MODULE` lists nothing. Any other form is a syntax error, as in Redis.
fn list(_kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let filter = match args.len() {
        2 => None,
        5 if c_str(args.arg(2)).eq_ignore_ascii_case(b"filterby") => {
            let (kind, arg) = (c_str(args.arg(3)), args.arg(4).to_ascii_lowercase());
            if kind.eq_ignore_ascii_case(b"module") {
                Some(Filter::Module)
            } else if kind.eq_ignore_ascii_case(b"aclcat") {
                Some(Filter::Category(arg))
            } else if kind.eq_ignore_ascii_case(b"pattern") {
                Some(Filter::Pattern(arg))
            } else {
                return syntax_error(cx.out());
            }
        }
        _ => return syntax_error(cx.out()),
    };
    let names =
        COMMANDS.iter().flat_map(|c| std::iter::once(c.name).chain(c.subs.iter().map(|sub| sub.name)));
    let listed: Vec<&str> = names.filter(|name| filter.as_ref().is_none_or(|f| f.keeps(name))).collect();
    let out = cx.out();
    reply::array(out, listed.len());
    for name in listed {
        reply::bulk(out, name.as_bytes());
    }
}

/// A `COMMAND LIST FILTERBY`, its argument lowercased.
enum Filter {
    Module,
    Category(Vec<u8>),
    Pattern(Vec<u8>),
}

impl Filter {
    fn keeps(&self, name: &str) -> bool {
        match self {
            Filter::Module => false,
            Filter::Category(wanted) => {
                acl_categories(name).iter().any(|category| category.as_bytes()[1..] == wanted[..])
            }
            // Names are lowercase, so a lowercased pattern matches without regard to case, as
            // Redis's `stringmatchlen(…, nocase)` does.
            Filter::Pattern(pattern) => glob::matches(pattern, name.as_bytes()),
        }
    }
}

/// `COMMAND INFO name...`: each command's entry, null for an unknown name; with no name,
/// every command's, as `COMMAND` alone gives (Redis 7.0 does the same).
fn info(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    if args.len() == 2 {
        return command(kv, args, cx);
    }
    let resp3 = kv.resp3;
    let out = cx.out();
    reply::array(out, args.len() - 2);
    for name in args.iter_from(2) {
        match lookup(name) {
            Some(c) => describe_command(out, c, resp3),
            None => reply::null(out, resp3),
        }
    }
}

/// `COMMAND GETKEYS command [arg ...]`: the keys the full command would touch, found by its
/// row's key positions (a subcommand's own when the command is a container with a
/// subcommand argument). Checks and errors in Redis's order: an unknown command or
/// subcommand, a command without keys, a wrong count of arguments.
fn getkeys(_kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let Some(command) = lookup(args.arg(2)) else {
        return reply::err(cx.out(), "Invalid command specified");
    };
    let (arity, first, last, step) = if command.subs.is_empty() || args.len() < 4 {
        (command.arity, command.first_key, command.last_key, command.step)
    } else {
        match find_sub(command, args.arg(3)) {
            Some(sub) => (sub.arity, sub.first_key, sub.last_key, sub.step),
            None => return reply::err(cx.out(), "Invalid command specified"),
        }
    };
    if first == 0 || command.channels {
        return reply::err(cx.out(), "The command has no key arguments");
    }
    let argc = args.len() - 2;
    if !arity_ok(arity, argc) {
        return reply::err(cx.out(), "Invalid number of arguments specified for command");
    }
    // A negative last position counts from the end (-1: the last argument). The arity check
    // above keeps every position inside the command; the bound below makes sure of it.
    let argc_i = i64::try_from(argc).unwrap_or(i64::MAX);
    let last = if last < 0 { argc_i + i64::from(last) } else { i64::from(last) }.min(argc_i - 1);
    let positions: Vec<usize> = (i64::from(first)..=last)
        .step_by(usize::try_from(step).unwrap_or(1).max(1))
        .filter_map(|pos| usize::try_from(pos).ok())
        .collect();
    if positions.is_empty() {
        return reply::err(cx.out(), "Invalid arguments specified for command");
    }
    let out = cx.out();
    reply::array(out, positions.len());
    for pos in positions {
        reply::bulk(out, args.arg(2 + pos));
    }
}

fn describe_command(out: &mut Vec<u8>, c: &Command, resp3: bool) {
    reply::array(out, 10);
    reply::bulk(out, c.name.as_bytes());
    reply::int(out, i64::from(c.arity));
    reply::array(out, c.flags.len());
    for flag in c.flags {
        reply::simple(out, flag);
    }
    reply::int(out, i64::from(c.first_key));
    reply::int(out, i64::from(c.last_key));
    reply::int(out, i64::from(c.step));
    let categories = acl_categories(c.name);
    reply::array(out, categories.len());
    for category in categories {
        reply::simple(out, category);
    }
    // Tips, key specifications, subcommands.
    reply::array(out, 0);
    if c.channels {
        reply::array(out, 1);
        channel_key_spec(out, c.last_key, resp3);
    } else {
        reply::array(out, 0);
    }
    reply::array(out, 0);
}

/// The key specification Redis 7.0 gives the shard-channel commands: the channels from
/// argument 1 to `last_key` (0: that one alone, -1: to the end), flagged `not_key`. Maps in
/// RESP3, flat arrays in RESP2, as Redis sends them (its `flags` set is an array here).
fn channel_key_spec(out: &mut Vec<u8>, last_key: i32, resp3: bool) {
    let map = |out: &mut Vec<u8>, pairs: usize| {
        if resp3 { reply::map(out, pairs) } else { reply::array(out, 2 * pairs) }
    };
    map(out, 3);
    reply::bulk(out, b"flags");
    reply::array(out, 1);
    reply::simple(out, "not_key");
    reply::bulk(out, b"begin_search");
    map(out, 2);
    reply::bulk(out, b"type");
    reply::bulk(out, b"index");
    reply::bulk(out, b"spec");
    map(out, 1);
    reply::bulk(out, b"index");
    reply::int(out, 1);
    reply::bulk(out, b"find_keys");
    map(out, 2);
    reply::bulk(out, b"type");
    reply::bulk(out, b"range");
    reply::bulk(out, b"spec");
    map(out, 3);
    reply::bulk(out, b"lastkey");
    // Counted from the first key here, from the command's name in the triple.
    reply::int(out, if last_key < 0 { i64::from(last_key) } else { i64::from(last_key) - 1 });
    reply::bulk(out, b"keystep");
    reply::int(out, 1);
    reply::bulk(out, b"limit");
    reply::int(out, 0);
}

/// A command's ACL categories, as redis-server 7.0.15 lists them in `COMMAND INFO`; a
/// subcommand's too (`config|get`), for `COMMAND LIST FILTERBY ACLCAT`.
fn acl_categories(name: &str) -> &'static [&'static str] {
    match name {
        "get" | "mget" | "strlen" => &["@read", "@string", "@fast"],
        "getrange" | "substr" | "lcs" => &["@read", "@string", "@slow"],
        "set" | "mset" | "setex" | "psetex" | "setrange" | "msetnx" => &["@write", "@string", "@slow"],
        "incr" | "decr" | "incrby" | "decrby" | "incrbyfloat" | "setnx" | "append" | "getset" | "getdel"
        | "getex" => &["@write", "@string", "@fast"],
        "getbit" | "bitfield_ro" => &["@read", "@bitmap", "@fast"],
        "bitcount" | "bitpos" => &["@read", "@bitmap", "@slow"],
        "setbit" | "bitop" | "bitfield" => &["@write", "@bitmap", "@slow"],
        "exists" | "ttl" | "pttl" | "type" | "touch" | "expiretime" | "pexpiretime" | "dbsize" => {
            &["@keyspace", "@read", "@fast"]
        }
        "randomkey" | "scan" => &["@keyspace", "@read", "@slow"],
        "keys" => &["@keyspace", "@read", "@slow", "@dangerous"],
        "expire" | "pexpire" | "persist" | "unlink" | "expireat" | "pexpireat" | "renamenx" => {
            &["@keyspace", "@write", "@fast"]
        }
        "del" | "rename" | "copy" => &["@keyspace", "@write", "@slow"],
        "flushall" | "flushdb" => &["@keyspace", "@write", "@slow", "@dangerous"],
        "ping" | "reset" | "echo" | "select" | "quit" | "hello" | "auth" => &["@fast", "@connection"],
        "command" | "command|count" | "command|list" | "command|info" | "command|getkeys"
        | "command|help" => &["@slow", "@connection"],
        "client|id" | "client|getname" | "client|setname" | "client|info" | "client|help" => {
            &["@slow", "@connection"]
        }
        "client|list" => &["@admin", "@slow", "@dangerous", "@connection"],
        "config|get" | "config|set" | "config|resetstat" => &["@admin", "@slow", "@dangerous"],
        "memory|usage" => &["@read", "@slow"],
        "object|encoding" | "object|freq" | "object|idletime" | "object|refcount" => {
            &["@keyspace", "@read", "@slow"]
        }
        "object|help" => &["@keyspace", "@slow"],
        "pubsub|channels"
        | "pubsub|numpat"
        | "pubsub|numsub"
        | "pubsub|shardchannels"
        | "pubsub|shardnumsub"
        | "subscribe"
        | "unsubscribe"
        | "psubscribe"
        | "punsubscribe"
        | "ssubscribe"
        | "sunsubscribe" => &["@pubsub", "@slow"],
        "publish" | "spublish" => &["@pubsub", "@fast"],
        "multi" | "discard" | "watch" | "unwatch" => &["@fast", "@transaction"],
        "exec" => &["@slow", "@transaction"],
        "info" => &["@slow", "@dangerous"],
        "time" => &["@fast"],
        // Containers (their subcommands carry the rest), and config|help, memory|help,
        // pubsub|help.
        _ => &["@slow"],
    }
}
