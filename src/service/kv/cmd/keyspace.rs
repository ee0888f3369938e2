//! Keyspace commands: DEL (and UNLINK), EXISTS (and TOUCH), TYPE, RENAME, RENAMENX, COPY, the expiry
//! family (EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST),
//! KEYS, SCAN, RANDOMKEY, DBSIZE and FLUSHALL/FLUSHDB. They work on keys whatever their value.

use std::time::Duration;

use crate::service::Cx;

use super::{
    Kv, c_str, instant_at_unix_ms, not_an_integer, reply, since_epoch, syntax_error, unix_ms, unix_ms_at,
};
use crate::service::kv::glob;
use crate::service::kv::resp::{Args, parse_int};
use crate::service::kv::store::Ttl;

/// `DEL key [key ...]`: how many of the keys existed. Also `UNLINK`, which in Redis frees big
/// values on a background thread; here there is nothing to gain from that (and no thread).
pub(super) fn del(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    let removed = args.iter_from(1).filter(|key| kv.store.remove(key, now)).count();
    reply::int(cx.out(), removed as i64);
}

/// `EXISTS key [key ...]`: how many of the keys exist (a key named twice counts twice). Also
/// `TOUCH`, which in Redis also refreshes the keys' last-access time, kept for eviction; there
/// is no eviction here.
pub(super) fn exists(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    let found = args.iter_from(1).filter(|key| kv.store.exists(key, now)).count();
    reply::int(cx.out(), found as i64);
}

/// `TYPE key`: `string`, the only type here, or `none`.
pub(super) fn key_type(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    let found = kv.store.exists(args.arg(1), now);
    reply::simple(cx.out(), if found { "string" } else { "none" });
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`.
pub(super) fn expire(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    expire_generic(kv, args, cx, 1000, false, "expire");
}

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`.
pub(super) fn pexpire(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    expire_generic(kv, args, cx, 1, false, "pexpire");
}

/// `EXPIREAT key unix-time-seconds [NX|XX|GT|LT]`.
pub(super) fn expireat(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    expire_generic(kv, args, cx, 1000, true, "expireat");
}

/// `PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]`.
pub(super) fn pexpireat(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    expire_generic(kv, args, cx, 1, true, "pexpireat");
}

/// Redis's `expireGenericCommand`: the time is relative to now, or with `absolute` a Unix
/// time. A deadline that is not in the future deletes the key at once and still replies 1;
/// the conditions compare with the current TTL, a key without one counting as an infinite TTL.
fn expire_generic(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>, unit_ms: i64, absolute: bool, name: &str) {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in args.iter_from(3) {
        // Redis compares (strcasecmp) and prints (%s) options as C strings: up to a NUL.
        let option = c_str(option);
        let is = |name: &str| option.eq_ignore_ascii_case(name.as_bytes());
        if is("nx") {
            nx = true;
        } else if is("xx") {
            xx = true;
        } else if is("gt") {
            gt = true;
        } else if is("lt") {
            lt = true;
        } else {
            let mut text = b"ERR Unsupported option ".to_vec();
            text.extend_from_slice(option);
            return reply::error_bytes(cx.out(), &text);
        }
    }
    if nx && (xx || gt || lt) {
        return reply::err(cx.out(), "NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return reply::err(cx.out(), "GT and LT options at the same time are not compatible");
    }
    let Some(amount) = parse_int(args.arg(2)) else {
        return not_an_integer(cx.out());
    };
    // The deadline as a Unix time in milliseconds must survive the unit conversion and, for a
    // relative time, the addition of the current time. Then, as milliseconds from now:
    let unix_now = unix_ms(cx);
    let base = if absolute { 0 } else { unix_now };
    let Some(when) = amount.checked_mul(unit_ms).and_then(|ms| ms.checked_add(base)) else {
        return reply::err(cx.out(), &format!("invalid expire time in '{name}' command"));
    };
    let millis = when.saturating_sub(unix_now);

    let now = cx.now();
    let key = args.arg(1);
    let Some(current) = kv.store.deadline(key, now) else {
        return reply::int(cx.out(), 0);
    };
    // Compared as Unix milliseconds, as Redis stores them; `None` is "no TTL", i.e. infinite.
    let current_ms = current.map(|at| unix_ms_at(cx, at));
    let refused = (nx && current_ms.is_some())
        || (xx && current_ms.is_none())
        || (gt && current_ms.is_none_or(|cur| when <= cur))
        || (lt && current_ms.is_some_and(|cur| when >= cur));
    if refused {
        return reply::int(cx.out(), 0);
    }
    if millis <= 0 {
        kv.store.remove(key, now);
        return reply::int(cx.out(), 1);
    }
    // A relative time counts from this turn's instant exactly (so `PTTL` right after `PEXPIRE k
    // 1000` says 1000); an absolute one is placed by the wall clock (so `PEXPIRETIME` gives
    // back the very millisecond `PEXPIREAT` was given).
    let at = if absolute {
        instant_at_unix_ms(cx, when)
    } else {
        now.checked_add(Duration::from_millis(millis.unsigned_abs()))
    };
    match at {
        Some(at) => {
            kv.store.expire_at(key, at, now);
            reply::int(cx.out(), 1);
        }
        None => reply::err(cx.out(), &format!("invalid expire time in '{name}' command")),
    }
}

/// `TTL key`: seconds left (rounded to nearest), -1 without a TTL, -2 without the key.
pub(super) fn ttl(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    ttl_generic(kv, args, cx, false, false);
}

/// `PTTL key`: milliseconds left, -1 without a TTL, -2 without the key.
pub(super) fn pttl(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    ttl_generic(kv, args, cx, true, false);
}

/// `EXPIRETIME key`: the Unix time (seconds, rounded to nearest) at which the key expires, -1
/// without a TTL, -2 without the key.
pub(super) fn expiretime(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    ttl_generic(kv, args, cx, false, true);
}

/// `PEXPIRETIME key`: the same in Unix milliseconds.
pub(super) fn pexpiretime(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    ttl_generic(kv, args, cx, true, true);
}

/// Redis's `ttlGenericCommand`: the time left (or, `absolute`, the Unix time of the deadline),
/// in milliseconds or in seconds rounded to the nearest.
fn ttl_generic(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>, millis: bool, absolute: bool) {
    let now = cx.now();
    let answer = match kv.store.ttl(args.arg(1), now) {
        None => -2,
        Some(None) => -1,
        Some(Some(left)) => {
            let ms = if absolute {
                unix_ms_at(cx, now + left)
            } else {
                i64::try_from(left.as_millis()).unwrap_or(i64::MAX)
            };
            if millis { ms } else { nearest_second(ms) }
        }
    };
    reply::int(cx.out(), answer);
}

/// Milliseconds to seconds, rounded to the nearest as Redis does with `(ms + 500) / 1000`
/// (which cannot overflow there: Redis's values are never that close to `i64::MAX`; ours, from
/// `PEXPIREAT k 9223372036854775807`, can).
fn nearest_second(ms: i64) -> i64 {
    ms / 1000 + i64::from(ms % 1000 >= 500)
}

/// `RENAME key newkey`: moves the value and its TTL; `newkey` is overwritten.
pub(super) fn rename(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    rename_generic(kv, args, cx, false);
}

/// `RENAMENX key newkey`: as RENAME, but only if `newkey` does not exist (`:1`, else `:0`).
pub(super) fn renamenx(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    rename_generic(kv, args, cx, true);
}

fn rename_generic(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>, nx: bool) {
    let now = cx.now();
    let (from, to) = (args.arg(1), args.arg(2));
    // Redis's order: a missing source first, then (same key) nothing to do.
    let Some(deadline) = kv.store.deadline(from, now) else {
        return reply::err(cx.out(), "no such key");
    };
    if from == to {
        return if nx { reply::int(cx.out(), 0) } else { cx.write(reply::OK) };
    }
    if nx && kv.store.contains(to, now) {
        return reply::int(cx.out(), 0);
    }
    let value = kv.store.peek(from, now).map(<[u8]>::to_vec).unwrap_or_default();
    // Redis moves the object itself, so OBJECT ENCODING answers for it as before.
    let edited = kv.store.edited(from);
    kv.store.remove(from, now);
    let ttl = deadline.map_or(Ttl::Clear, Ttl::At);
    if edited {
        kv.store.set_edited(to, &value, ttl, now)
    } else {
        kv.store.set(to, &value, ttl, now)
    }
    if nx { reply::int(cx.out(), 1) } else { cx.write(reply::OK) }
}

/// `COPY source destination [DB destination-db] [REPLACE]`: copies the value and its TTL; 1
/// if copied, 0 if the source is missing or the destination exists (REPLACE overwrites it).
/// There is one database, so `DB` takes only 0 (another is out of range, as for SELECT).
pub(super) fn copy(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let mut replace = false;
    let mut i = 3;
    while let Some(word) = args.get(i) {
        if c_str(word).eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if c_str(word).eq_ignore_ascii_case(b"db") && i + 1 < args.len() {
            match parse_int(args.arg(i + 1)) {
                None => return not_an_integer(cx.out()),
                Some(n) if i32::try_from(n).is_err() => {
                    return reply::err(
                        cx.out(),
                        "value is out of range, value must between -2147483648 and 2147483647",
                    );
                }
                Some(0) => {}
                Some(_) => return reply::err(cx.out(), "DB index is out of range"),
            }
            i += 1;
        } else {
            return syntax_error(cx.out());
        }
        i += 1;
    }
    let (now, from, to) = (cx.now(), args.arg(1), args.arg(2));
    if from == to {
        return reply::err(cx.out(), "source and destination objects are the same");
    }
    let Some(value) = kv.store.get(from, now).map(<[u8]>::to_vec) else {
        return reply::int(cx.out(), 0);
    };
    let deadline = kv.store.deadline(from, now).flatten();
    if kv.store.contains(to, now) && !replace {
        return reply::int(cx.out(), 0);
    }
    // Redis's copy keeps the source's encoding (`dupStringObject`).
    let ttl = deadline.map_or(Ttl::Clear, Ttl::At);
    if kv.store.edited(from) {
        kv.store.set_edited(to, &value, ttl, now)
    } else {
        kv.store.set(to, &value, ttl, now)
    }
    reply::int(cx.out(), 1);
}

/// `RANDOMKEY`: a key picked at random, or null when there is none.
pub(super) fn randomkey(kv: &mut Kv, _args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    let seed = since_epoch(cx).subsec_nanos();
    let key = kv.store.random_key(now, u64::from(seed)).map(<[u8]>::to_vec);
    reply::bulk_or_null(cx.out(), key.as_deref(), kv.resp3);
}

/// `PERSIST key`: 1 if a TTL was removed, 0 if the key has none or does not exist.
pub(super) fn persist(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    let removed = kv.store.persist(args.arg(1), now);
    reply::int(cx.out(), i64::from(removed));
}

/// `KEYS pattern`: every live key matching the glob pattern. O(number of keys), as in Redis:
/// meant for debugging, not for production traffic.
pub(super) fn keys(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let pattern = args.arg(1);
    let all = pattern == b"*";
    let mut count = 0;
    let mut body = Vec::new();
    kv.store.for_each_key(cx.now(), |key| {
        if all || glob::matches(pattern, key) {
            count += 1;
            reply::bulk(&mut body, key);
        }
    });
    reply::array(cx.out(), count);
    cx.write(&body);
}

/// Keys `SCAN` examines per call when the client gives no `COUNT` (Redis's default).
const SCAN_COUNT: usize = 10;

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`: the next few keys of a walk over the
/// keyspace, and the cursor to continue from (`0` when the walk is done). `KEYS` without
/// holding the loop: each call examines `COUNT` keys, so a client can list millions of keys
/// while every other client is still served between its calls. How the cursor survives
/// writes made between calls: `Store::scan`.
///
/// As in Redis, `COUNT` is how many keys are *examined*, so with `MATCH` or `TYPE` a call may
/// return fewer, even none, before the walk is over; the only end is cursor `0`. `TYPE`
/// filters by type name: `string` keeps every key, any other name none (Redis 7.0 does not
/// reject unknown names either).
pub(super) fn scan(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let Some(cursor) = parse_cursor(args.arg(1)) else {
        return reply::err(cx.out(), "invalid cursor");
    };
    let (mut pattern, mut count, mut strings) = (None, SCAN_COUNT, true);
    let mut i = 2;
    while i < args.len() {
        let (option, value) = (c_str(args.arg(i)), args.arg(i + 1));
        let has_value = i + 1 < args.len();
        if option.eq_ignore_ascii_case(b"count") && has_value {
            match parse_int(value) {
                None => return not_an_integer(cx.out()),
                Some(n) if n < 1 => return syntax_error(cx.out()),
                Some(n) => count = usize::try_from(n).unwrap_or(usize::MAX),
            }
        } else if option.eq_ignore_ascii_case(b"match") && has_value {
            pattern = (value != b"*").then_some(value);
        } else if option.eq_ignore_ascii_case(b"type") && has_value {
            strings = c_str(value).eq_ignore_ascii_case(b"string");
        } else {
            return syntax_error(cx.out());
        }
        i += 2;
    }

    let mut found = 0;
    let mut body = Vec::new();
    let next = kv.store.scan(cursor, count, cx.now(), |key| {
        if strings && pattern.is_none_or(|p| glob::matches(p, key)) {
            found += 1;
            reply::bulk(&mut body, key);
        }
    });
    reply::array(cx.out(), 2);
    let mut digits = Vec::with_capacity(20);
    // A position in the keyspace, so far below i64::MAX.
    reply::decimal(&mut digits, i64::try_from(next).unwrap_or(i64::MAX));
    reply::bulk(cx.out(), &digits);
    reply::array(cx.out(), found);
    cx.write(&body);
}

/// Reads a `SCAN` cursor as Redis does, with C's `strtoul`: an optional sign (a negative
/// number wraps around, so `-1` is the largest cursor), decimal digits, nothing after them;
/// no leading space, no overflow. An empty argument is cursor 0. Like C, it stops at a NUL.
fn parse_cursor(text: &[u8]) -> Option<u64> {
    let text = c_str(text);
    let digits = match text.first() {
        Some(b'+' | b'-') => &text[1..],
        Some(b) if b.is_ascii_whitespace() || *b == 0x0b => return None,
        _ => text,
    };
    if digits.is_empty() {
        // strtoul read nothing: its end pointer is the argument's first byte.
        return text.is_empty().then_some(0);
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(if text[0] == b'-' { value.wrapping_neg() } else { value })
}

/// `DBSIZE`: number of keys.
pub(super) fn dbsize(kv: &mut Kv, _args: Args<'_>, cx: &mut Cx<'_>) {
    reply::int(cx.out(), kv.store.len() as i64);
}

/// `FLUSHALL [ASYNC|SYNC]` and `FLUSHDB [ASYNC|SYNC]`: delete every key. With one database
/// they are the same; both modes free at once.
pub(super) fn flush(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let mode_ok = match args.len() {
        1 => true,
        2 => {
            let mode = c_str(args.arg(1));
            mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync")
        }
        _ => false,
    };
    if !mode_ok {
        return syntax_error(cx.out());
    }
    kv.store.clear();
    cx.write(reply::OK);
}
