//! `OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key`: how Redis would hold a key's value, which
//! memory-analysis tools ask of every key they sample.
//!
//! Values here are byte strings in one allocation with their key (`entry.rs`), not Redis
//! objects, so the answers are Redis's for the same value with the same history:
//!
//! * `ENCODING`: `int` for a value written whole that reads as a 64-bit integer in Redis's
//!   strict form (`string2l`: no sign but `-`, no leading zero, no space); else `embstr` up to
//!   44 bytes; else `raw`. A value edited in place (`APPEND` to an existing key, `SETRANGE`,
//!   `SETBIT`, a `BITFIELD` write) and `BITOP`'s result are `raw` at any length, as in Redis;
//!   the entry remembers that (`entry.rs`, "Edited values"), and `RENAME` and `COPY` carry it.
//! * `REFCOUNT`: Redis shares one object for each integer from 0 to 9999 (with no
//!   `maxmemory`, as here) and reports its count as `INT_MAX`; every other value has one
//!   owner.
//! * `FREQ`: Redis's error for a server whose `maxmemory-policy` is not an LFU one (ours is
//!   `noeviction`, as `CONFIG GET` says).
//! * `IDLETIME`: Redis keeps each key's last access time; this store does not (it would cost
//!   every key bytes its 40-byte entry has no room for, and every read a write), so the
//!   question is refused with an error rather than answered with a made-up time.
//!
//! A missing key is null for all four, as in Redis, and the lookup counts a keyspace hit or
//! miss, as Redis's does.
//!
//! Two answers are not Redis's (`docs/kv.md`, *OBJECT*): an `INCRBYFLOAT` result that is a
//! whole number is `int` here (Redis never tries `int` there: `embstr`), and a `COPY` of a
//! shared integer counts `INT_MAX` references here (Redis's copy has one); the entry's one
//! flag cannot tell either from a value `SET` wrote.

use crate::service::Cx;

use super::{Kv, SUB_KEY, Sub, help, reply, sub};
use crate::service::kv::entry::EMBSTR_MAX;
use crate::service::kv::resp::{Args, parse_int};

/// `OBJECT`'s subcommands, in the order Redis's `OBJECT HELP` lists them.
pub(super) const SUBS: &[Sub] = &[
    sub(
        "object|encoding",
        3,
        encoding,
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
        ],
    )
    .keys(SUB_KEY),
    sub(
        "object|freq",
        3,
        freq,
        &[
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
        ],
    )
    .keys(SUB_KEY),
    sub(
        "object|idletime",
        3,
        idletime,
        &["IDLETIME <key>", "    Refused: this server keeps no access time per key."],
    )
    .keys(SUB_KEY),
    sub(
        "object|refcount",
        3,
        refcount,
        &[
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    )
    .keys(SUB_KEY),
    help("object|help"),
];

/// The reference count Redis reports for its shared integers (`OBJ_SHARED_REFCOUNT`).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// Redis shares one object for each of these integers (`OBJ_SHARED_INTEGERS`).
const SHARED_INTEGERS: std::ops::Range<i64> = 0..10_000;

/// How Redis would encode `value`: `int`, `embstr` or `raw` (see the module docs), with the
/// integer for `int`.
fn encoding_of(value: &[u8], edited: bool) -> (&'static str, Option<i64>) {
    if edited && value.len() <= EMBSTR_MAX {
        return ("raw", None);
    }
    // Redis tries only strings of up to 20 bytes, the longest a 64-bit integer takes.
    let int = if value.len() <= 20 { parse_int(value) } else { None };
    match int {
        Some(n) => ("int", Some(n)),
        None if value.len() <= EMBSTR_MAX => ("embstr", None),
        None => ("raw", None),
    }
}

/// Looks the key up (null reply and `None` for no key) and returns its encoding.
fn lookup(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) -> Option<(&'static str, Option<i64>)> {
    let found = kv.store.object(args.arg(2), cx.now()).map(|(value, edited)| encoding_of(value, edited));
    if found.is_none() {
        reply::null(cx.out(), kv.resp3);
    }
    found
}

/// `OBJECT ENCODING key`.
fn encoding(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    if let Some((name, _)) = lookup(kv, args, cx) {
        reply::bulk(cx.out(), name.as_bytes());
    }
}

/// `OBJECT REFCOUNT key`.
fn refcount(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    if let Some((_, int)) = lookup(kv, args, cx) {
        let shared = int.is_some_and(|n| SHARED_INTEGERS.contains(&n));
        reply::int(cx.out(), if shared { SHARED_REFCOUNT } else { 1 });
    }
}

/// `OBJECT FREQ key`: Redis's answer under a policy that is not LFU.
fn freq(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    if lookup(kv, args, cx).is_some() {
        reply::err(
            cx.out(),
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that \
             when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        );
    }
}

/// `OBJECT IDLETIME key`: refused (see the module docs).
fn idletime(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    if lookup(kv, args, cx).is_some() {
        reply::err(cx.out(), "idle time not tracked: this server keeps no access time per key");
    }
}
