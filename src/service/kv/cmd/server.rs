//! Server commands: INFO, CONFIG, MEMORY and TIME, the introspection that tools such as
//! `redis-cli` and `redis-benchmark` send before (or instead of) real work (and COMMAND, in
//! `command.rs`).

use std::fmt::Write as _;

use crate::service::Cx;

use super::connection::REDIS_VERSION;
use super::{Kv, SUB_KEY, Sub, help, not_an_integer, reply, since_epoch, sub, syntax_error};
use crate::service::kv::glob;
use crate::service::kv::resp::{Args, parse_int};

/// The INFO sections, in Redis's order, and whether `INFO`'s default output has each: all
/// but `commandstats`, as in Redis 7.0, where it comes only with `all`, `everything` or by
/// name.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("commandstats", false),
    ("cluster", true),
    ("keyspace", true),
];

/// `INFO [section ...]`: server facts as `name:value` lines under `# Section` headers, in one
/// bulk string. No section, or `default`, asks for the default ones; `all` and `everything`
/// for every one; a name for that one; an unknown name contributes nothing.
pub(super) fn info(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let asked = |word: &str| args.iter_from(1).any(|a| a.eq_ignore_ascii_case(word.as_bytes()));
    let everything = asked("all") || asked("everything");
    let default = args.len() == 1 || asked("default");
    let mut text = String::new();
    for &(section, in_default) in SECTIONS {
        if everything || (default && in_default) || asked(section) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            write_section(kv, cx, section, &mut text);
        }
    }
    reply::verbatim(cx.out(), kv.resp3, text.as_bytes());
}

fn write_section(kv: &Kv, cx: &Cx<'_>, section: &str, text: &mut String) {
    let stats = &cx.stats_total();
    let uptime = stats.uptime(cx.now()).as_secs();
    let used = kv.store.used_memory();
    // Writing to a String cannot fail, so the results below are ignored.
    let _ = match section {
        "server" => write!(
            text,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\n\
             server_name:reactor\r\nreactor_version:{}\r\narch_bits:{}\r\n\
             multiplexing_api:mio\r\nprocess_id:{}\r\nuptime_in_seconds:{uptime}\r\n\
             uptime_in_days:{}\r\nhz:10\r\n{}",
            env!("CARGO_PKG_VERSION"),
            usize::BITS,
            std::process::id(),
            uptime / 86_400,
            kv.config.listen.first().map(|a| format!("tcp_port:{}\r\n", a.port())).unwrap_or_default(),
        ),
        "clients" => {
            write!(
                text,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n",
                stats.conns_open, kv.config.maxclients,
            )
        }
        "memory" => write!(
            text,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nmaxmemory:0\r\n\
             maxmemory_policy:noeviction\r\n",
            human_bytes(used),
        ),
        "persistence" => write!(
            text,
            "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:0\r\n\
             aof_enabled:0\r\n",
        ),
        "stats" => write!(
            text,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
             total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n\
             rejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:0\r\n\
             keyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\n\
             pubsub_patterns:{}\r\npubsubshard_channels:{}\r\n",
            stats.conns_total,
            kv.counters.commands_processed,
            stats.bytes_in,
            stats.bytes_out,
            stats.conns_refused,
            kv.store.expired,
            kv.store.hits,
            kv.store.misses,
            kv.pubsub.channel_count(),
            kv.pubsub.pattern_count(),
            kv.pubsub.shard_channel_count(),
        ),
        "replication" => write!(text, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"),
        // What a client that may be pointed at a cluster asks first (`cluster_enabled:0`:
        // plain commands, no MOVED redirections to expect).
        "cluster" => write!(text, "# Cluster\r\ncluster_enabled:0\r\n"),
        "commandstats" => {
            text.push_str("# Commandstats\r\n");
            kv.command_stats.write_info(text);
            Ok(())
        }
        "keyspace" => {
            let _ = write!(text, "# Keyspace\r\n");
            // Redis lists only databases that hold keys.
            if kv.store.is_empty() {
                Ok(())
            } else {
                let (keys, expires, avg_ttl) =
                    (kv.store.len(), kv.store.expires_len(), kv.store.avg_ttl_ms());
                write!(text, "db0:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n")
            }
        }
        _ => Ok(()),
    };
}

/// `1.50M`-style sizes, as Redis's `bytesToHuman`.
fn human_bytes(n: usize) -> String {
    let n = n as f64;
    const K: f64 = 1024.0;
    if n < K {
        format!("{n}B")
    } else if n < K * K {
        format!("{:.2}K", n / K)
    } else if n < K * K * K {
        format!("{:.2}M", n / (K * K))
    } else {
        format!("{:.2}G", n / (K * K * K))
    }
}

/// `CONFIG GET|SET|RESETSTAT|HELP`.
pub(super) const CONFIG: &[Sub] = &[
    sub(
        "config|get",
        -3,
        config_get,
        &["GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values."],
    ),
    sub(
        "config|set",
        -4,
        config_set,
        &["SET <directive> <value>", "    Refused: every parameter here is fixed at startup."],
    ),
    sub(
        "config|resetstat",
        2,
        config_resetstat,
        &["RESETSTAT", "    Reset statistics reported by the INFO command."],
    ),
    help("config|help"),
];

/// `CONFIG GET pattern [pattern ...]`: a flat array of name/value pairs for every known
/// parameter matching any pattern (case-insensitively), each once. A parameter found by an
/// exact name is answered under the name as it was asked (`MAXMEMORY`), as Redis 7 does, so
/// a client that looks its answer up by the name it sent finds it. `redis-benchmark` asks
/// for `save` and `appendonly`; there is no persistence, so they are empty and `no`.
fn config_get(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let max_bulk = kv.config.max_bulk.to_string();
    let max_query = kv.config.max_query.to_string();
    let timeout = kv.config.timeout_secs.to_string();
    let requirepass = kv.config.requirepass.clone().unwrap_or_default();
    let protected = if kv.config.protected_mode { "yes" } else { "no" };
    let maxclients = kv.config.maxclients.to_string();
    let listen = &kv.config.listen;
    let port = listen.first().map(|a| a.port().to_string());
    let bind = listen.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(" ");
    let mut params: Vec<(&str, &str)> = vec![
        ("save", ""),
        ("appendonly", "no"),
        ("databases", "1"),
        ("maxmemory", "0"),
        ("maxmemory-policy", "noeviction"),
        ("timeout", &timeout),
        ("hz", "10"),
        ("proto-max-bulk-len", &max_bulk),
        ("client-query-buffer-limit", &max_query),
        // As Redis answers it: to a client that is in, the password itself.
        ("requirepass", &requirepass),
        ("protected-mode", protected),
        ("maxclients", &maxclients),
    ];
    if let Some(port) = &port {
        params.extend([("port", port.as_str()), ("bind", bind.as_str())]);
    }
    let asked: Vec<&[u8]> = args.iter_from(2).collect();
    let patterns: Vec<Vec<u8>> = asked.iter().map(|p| p.to_ascii_lowercase()).collect();
    let matching: Vec<(&[u8], &str)> = params
        .iter()
        .filter_map(|&(name, value)| {
            let first = patterns.iter().position(|p| glob::matches(p, name.as_bytes()))?;
            let exact = !asked[first].iter().any(|b| matches!(b, b'*' | b'?' | b'['));
            Some((if exact { asked[first] } else { name.as_bytes() }, value))
        })
        .collect();
    let resp3 = kv.resp3;
    let out = cx.out();
    if resp3 {
        reply::map(out, matching.len());
    } else {
        reply::array(out, matching.len() * 2);
    }
    for (name, value) in matching {
        reply::bulk(out, name);
        reply::bulk(out, value.as_bytes());
    }
}

/// `CONFIG SET`: every parameter here is fixed at startup.
fn config_set(_kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let mut text = b"ERR Unknown option or number of arguments for CONFIG SET - '".to_vec();
    text.extend_from_slice(args.arg(2));
    text.push(b'\'');
    reply::error_bytes(cx.out(), &text);
}

/// `CONFIG RESETSTAT`: zeroes the counters INFO reports (those the service owns). Its own
/// call is counted after, so `INFO commandstats` then shows it, as Redis's does.
fn config_resetstat(kv: &mut Kv, _args: Args<'_>, cx: &mut Cx<'_>) {
    kv.counters.commands_processed = 0;
    kv.command_stats.reset();
    kv.store.hits = 0;
    kv.store.misses = 0;
    kv.store.expired = 0;
    cx.write(reply::OK);
}

/// `TIME`: the server's clock, as two bulk strings: Unix seconds and microseconds.
pub(super) fn time(_kv: &mut Kv, _args: Args<'_>, cx: &mut Cx<'_>) {
    let since = since_epoch(cx);
    let out = cx.out();
    reply::array(out, 2);
    reply::bulk(out, since.as_secs().to_string().as_bytes());
    reply::bulk(out, since.subsec_micros().to_string().as_bytes());
}

/// `MEMORY USAGE key [SAMPLES n]` (`redis-cli --memkeys` sends it for every key it scans).
pub(super) const MEMORY: &[Sub] = &[
    sub(
        "memory|usage",
        -3,
        memory_usage,
        &["USAGE <key> [SAMPLES <count>]", "    Return memory in bytes used by <key> and its value."],
    )
    .keys(SUB_KEY),
    help("memory|help"),
];

/// `MEMORY USAGE key [SAMPLES n]`: the bytes our own accounting charges the key (its key and
/// value bytes and its bookkeeping, as `used_memory` adds them up), or null for no key.
/// `SAMPLES` is checked as Redis checks it and otherwise ignored: a string has nothing to
/// sample.
fn memory_usage(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let mut i = 3;
    while i < args.len() {
        if !(args.arg(i).eq_ignore_ascii_case(b"samples") && i + 1 < args.len()) {
            return syntax_error(cx.out());
        }
        match parse_int(args.arg(i + 1)) {
            None => return not_an_integer(cx.out()),
            Some(n) if n < 0 => return syntax_error(cx.out()),
            Some(_) => {}
        }
        i += 2;
    }
    match kv.store.memory_usage(args.arg(2)) {
        Some(bytes) => reply::int(cx.out(), i64::try_from(bytes).unwrap_or(i64::MAX)),
        None => reply::null(cx.out(), kv.resp3),
    }
}
