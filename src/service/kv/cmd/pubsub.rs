//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, the sharded
//! SSUBSCRIBE, SUNSUBSCRIBE and SPUBLISH, and PUBSUB (CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS,
//! SHARDNUMSUB). The state, and how a message reaches other connections, is in `pubsub.rs`.
//!
//! A RESP2 client that subscribes to anything (a shard channel too) is in pub/sub mode until
//! it has unsubscribed from everything: `execute` lets it run only the six (un)subscribe
//! commands, PING, QUIT and RESET (Redis's rule; a RESP3 client can run anything, since pushes
//! are told apart from replies).

use std::collections::BTreeSet;

use crate::service::Cx;

use super::{Kv, Sub, help, reply, sub};
use crate::service::kv::pubsub::{Kind, SUBSCRIPTION_OVERHEAD};
use crate::service::kv::resp::Args;

/// `SUBSCRIBE channel [channel ...]`: one confirmation per channel, with the count of the
/// client's subscriptions after it.
pub(super) fn subscribe(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    subscribe_generic(kv, args, cx, Kind::Channel, "subscribe");
}

/// `PSUBSCRIBE pattern [pattern ...]`: as SUBSCRIBE, for glob patterns of channel names.
pub(super) fn psubscribe(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    subscribe_generic(kv, args, cx, Kind::Pattern, "psubscribe");
}

/// `SSUBSCRIBE shardchannel [shardchannel ...]`: as SUBSCRIBE, for shard channels; each
/// confirmation counts the client's shard channels only, as Redis counts them. Refused inside
/// `EXEC`, as Redis refuses it to a client that may not block (SUBSCRIBE is let through
/// there for old clients' sake; SSUBSCRIBE, new in 7.0, is not).
pub(super) fn ssubscribe(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    if kv.in_exec {
        return reply::err(cx.out(), "SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
    }
    subscribe_generic(kv, args, cx, Kind::Shard, "ssubscribe");
}

fn subscribe_generic(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>, kind: Kind, word: &str) {
    if !within_bound(kv, &args, kind, cx) {
        return;
    }
    for name in args.iter_from(1) {
        let count = kv.pubsub.subscribe(kind, cx.id(), kv.resp3, name);
        confirm(cx.out(), kv.resp3, word, Some(name), count);
    }
    // A subscriber may wait hours for its next message: exempt from the idle timeout, as
    // Redis never times out a pub/sub client (the reactor gives it TCP keepalive instead).
    cx.exempt_from_idle(true);
}

/// Whether the names in `args` fit in what one client may hold in subscriptions: together
/// with those it has (of all three kinds), `max_query` bytes, bookkeeping counted (as WATCH is bounded). If not,
/// the command is refused whole with an error, and no subscription is made. Only names it
/// would add count: subscribing again to what it holds (a client re-subscribing after a
/// reconnect, say) is always answered.
fn within_bound(kv: &Kv, args: &Args<'_>, kind: Kind, cx: &mut Cx<'_>) -> bool {
    let client = cx.id().serial();
    let mut new = BTreeSet::new();
    let adding: usize = args
        .iter_from(1)
        .filter(|&name| !kv.pubsub.holds(kind, client, name) && new.insert(name))
        .map(|name| name.len() + SUBSCRIPTION_OVERHEAD)
        .sum();
    if kv.pubsub.bytes(client).saturating_add(adding) > kv.config.max_query {
        reply::err(cx.out(), "too many subscriptions for one client: over the query buffer limit");
        return false;
    }
    true
}

/// `UNSUBSCRIBE [channel ...]`: from these channels, or from all of the client's; one
/// confirmation each, or one with a null channel if there was none to leave.
pub(super) fn unsubscribe(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    unsubscribe_generic(kv, args, cx, Kind::Channel, "unsubscribe");
}

/// `PUNSUBSCRIBE [pattern ...]`: as UNSUBSCRIBE, for patterns.
pub(super) fn punsubscribe(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    unsubscribe_generic(kv, args, cx, Kind::Pattern, "punsubscribe");
}

/// `SUNSUBSCRIBE [shardchannel ...]`: as UNSUBSCRIBE, for shard channels (counting those).
pub(super) fn sunsubscribe(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    unsubscribe_generic(kv, args, cx, Kind::Shard, "sunsubscribe");
}

fn unsubscribe_generic(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>, kind: Kind, word: &str) {
    let client = cx.id().serial();
    let names: Vec<Box<[u8]>> = if args.len() > 1 {
        args.iter_from(1).map(Box::from).collect()
    } else {
        kv.pubsub.subscriptions(kind, client)
    };
    if names.is_empty() {
        let count = kv.pubsub.count(kind, client);
        return confirm(cx.out(), kv.resp3, word, None, count);
    }
    for name in &names {
        let count = kv.pubsub.unsubscribe(kind, client, name);
        confirm(cx.out(), kv.resp3, word, Some(name), count);
    }
    // Listening to nothing any more (of any kind), it is an ordinary client again.
    cx.exempt_from_idle(kv.pubsub.subscribed(client));
}

/// `PUBLISH channel message`: the message to every subscriber of the channel and of every
/// pattern that matches it; answers how many messages were sent.
pub(super) fn publish(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let sent = kv.pubsub.publish(args.arg(1), args.arg(2), |to, message| cx.send_to(to, message));
    reply::int(cx.out(), i64::try_from(sent).unwrap_or(i64::MAX));
}

/// `SPUBLISH shardchannel message`: the message to every subscriber of the shard channel
/// (not to patterns, nor to SUBSCRIBE's subscribers of a channel of that name); answers how
/// many messages were sent.
pub(super) fn spublish(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let sent = kv.pubsub.spublish(args.arg(1), args.arg(2), |to, message| cx.send_to(to, message));
    reply::int(cx.out(), i64::try_from(sent).unwrap_or(i64::MAX));
}

/// `PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | SHARDCHANNELS [pattern] |
/// SHARDNUMSUB [shardchannel ...] | HELP`, with Redis 7.0's help text.
pub(super) const SUBS: &[Sub] = &[
    sub(
        "pubsub|channels",
        -2,
        pubsub_channels,
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
        ],
    ),
    sub("pubsub|numpat", 2, pubsub_numpat, &["NUMPAT", "    Return number of subscriptions to patterns."]),
    sub(
        "pubsub|numsub",
        -2,
        pubsub_numsub,
        &[
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
        ],
    ),
    sub(
        "pubsub|shardchannels",
        -2,
        pubsub_shardchannels,
        &[
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        ],
    ),
    sub(
        "pubsub|shardnumsub",
        -2,
        pubsub_shardnumsub,
        &[
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    ),
    help("pubsub|help"),
];

fn pubsub_channels(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    list_channels(kv, args, cx, Kind::Channel);
}

fn pubsub_shardchannels(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    list_channels(kv, args, cx, Kind::Shard);
}

fn list_channels(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>, kind: Kind) {
    if args.len() > 3 {
        // Redis names the subcommand as the client spelled it.
        let mut text = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
        text.extend_from_slice(args.arg(1));
        text.extend_from_slice(b"'. Try PUBSUB HELP.");
        return reply::error_bytes(cx.out(), &text);
    }
    let names = kv.pubsub.active_channels(kind, args.get(2));
    let out = cx.out();
    reply::array(out, names.len());
    for name in names {
        reply::bulk(out, name);
    }
}

/// A flat array of name, count, name, count… in RESP3 too, as Redis 7 sends it (redis-py 8
/// slices that reply and fails on a map).
fn pubsub_numsub(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    count_subscribers(kv, args, cx, Kind::Channel);
}

/// As NUMSUB, for shard channels (a flat array in RESP3 too, as Redis 7.0 sends it).
fn pubsub_shardnumsub(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    count_subscribers(kv, args, cx, Kind::Shard);
}

fn count_subscribers(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>, kind: Kind) {
    let out = cx.out();
    reply::array(out, (args.len() - 2) * 2);
    for name in args.iter_from(2) {
        reply::bulk(out, name);
        reply::int(out, i64::try_from(kv.pubsub.subscribers(kind, name)).unwrap_or(i64::MAX));
    }
}

fn pubsub_numpat(kv: &mut Kv, _args: Args<'_>, cx: &mut Cx<'_>) {
    reply::int(cx.out(), i64::try_from(kv.pubsub.pattern_count()).unwrap_or(i64::MAX));
}

/// A (un)subscription confirmation: `[word, name or null, count]`, a push in RESP3.
fn confirm(out: &mut Vec<u8>, resp3: bool, word: &str, name: Option<&[u8]>, count: usize) {
    reply::push(out, resp3, 3);
    reply::bulk(out, word.as_bytes());
    match name {
        Some(name) => reply::bulk(out, name),
        None => reply::null(out, resp3),
    }
    reply::int(out, i64::try_from(count).unwrap_or(i64::MAX));
}
