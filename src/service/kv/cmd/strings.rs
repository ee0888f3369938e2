//! String commands: GET, SET (and SETNX, SETEX, PSETEX), GETSET, GETDEL, GETEX, MGET, MSET,
//! MSETNX, APPEND, STRLEN, GETRANGE (and SUBSTR), SETRANGE, LCS and the INCR family (INCRBYFLOAT's
//! arithmetic is in `longdouble.rs`). The GET/SET
//! path reads its arguments in place from the input and writes its reply straight into
//! `cx.out()`.

use std::time::{Duration, Instant};

use crate::service::Cx;

use super::{Kv, c_str, instant_at_unix_ms, not_an_integer, reply, syntax_error, unix_ms};
use crate::service::kv::longdouble::{self, Value};
use crate::service::kv::resp::{Args, parse_int};
use crate::service::kv::store::{IncrError, Ttl};

/// `GET key`: the value, or null.
pub(super) fn get(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    reply::bulk_or_null(cx.out(), kv.store.get(args.arg(1), now), kv.resp3);
}

/// How a SET or GETEX option gives an expiry: relative (`EX` seconds, `PX` milliseconds) or as
/// a Unix time (`EXAT` seconds, `PXAT` milliseconds).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl Expiry {
    /// The option this word names, if it is one of the four.
    fn named(word: &[u8]) -> Option<Expiry> {
        [
            (b"ex".as_slice(), Expiry::Ex),
            (b"px", Expiry::Px),
            (b"exat", Expiry::ExAt),
            (b"pxat", Expiry::PxAt),
        ]
        .into_iter()
        .find(|(name, _)| c_str(word).eq_ignore_ascii_case(name))
        .map(|(_, kind)| kind)
    }
}

/// Reads `option` and its `value` into `expire` if it is an expiry option allowed here: not
/// after KEEPTTL or PERSIST (`blocked`), nor after an expiry of another kind (the same kind
/// again takes the later value, as in Redis). True if it took it.
fn take_expiry<'a>(
    expire: &mut Option<(&'a [u8], Expiry)>,
    option: &[u8],
    value: Option<&'a [u8]>,
    blocked: bool,
) -> bool {
    match (Expiry::named(option), value) {
        (Some(kind), Some(value)) if !blocked && expire.is_none_or(|(_, set)| set == kind) => {
            *expire = Some((value, kind));
            true
        }
        _ => false,
    }
}

/// Where an expiry option puts the key's deadline.
enum Deadline {
    At(Instant),
    /// An `EXAT`/`PXAT` time that has already passed: the key is deleted.
    Passed,
}

/// Redis's `getExpireMillisecondsOrReply` (SET, GETEX, SETEX, PSETEX): the amount must be an
/// integer (else `None`, "not an integer"), positive, and must not overflow in milliseconds
/// or, for a relative one, when added to the current Unix time (else `Some(Err(()))`, "invalid
/// expire time").
fn deadline(value: &[u8], kind: Expiry, cx: &Cx<'_>) -> Option<Result<Deadline, ()>> {
    let amount = parse_int(value)?;
    let unit_ms = if matches!(kind, Expiry::Ex | Expiry::ExAt) { 1000 } else { 1 };
    let Some(millis) = amount.checked_mul(unit_ms).filter(|_| amount > 0) else {
        return Some(Err(()));
    };
    Some(match kind {
        Expiry::Ex | Expiry::Px => millis
            .checked_add(unix_ms(cx))
            .and_then(|_| cx.now().checked_add(Duration::from_millis(millis.unsigned_abs())))
            .map(Deadline::At)
            .ok_or(()),
        Expiry::ExAt | Expiry::PxAt => match instant_at_unix_ms(cx, millis) {
            Some(at) => Ok(Deadline::At(at)),
            None if millis <= unix_ms(cx) => Ok(Deadline::Passed),
            None => Err(()),
        },
    })
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT unix-s|PXAT unix-ms|KEEPTTL]`.
///
/// Options are read as Redis's `parseExtendedStringArgumentsOrReply` reads them: any order,
/// NX with XX or two kinds of expiry is a syntax error, a repeated EX takes the last value.
/// Only then is the expire time checked. An EXAT/PXAT time already past still sets the key,
/// which is then gone at once (as Redis, where it expires on its next lookup).
pub(super) fn set(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let (mut nx, mut xx, mut get, mut keep_ttl) = (false, false, false, false);
    let mut expire: Option<(&[u8], Expiry)> = None;
    let mut i = 3;
    while let Some(option) = args.get(i) {
        let next = args.get(i + 1);
        let is = |name: &str| c_str(option).eq_ignore_ascii_case(name.as_bytes());
        if is("nx") && !xx {
            nx = true;
        } else if is("xx") && !nx {
            xx = true;
        } else if is("get") {
            get = true;
        } else if is("keepttl") && expire.is_none() {
            keep_ttl = true;
        } else if take_expiry(&mut expire, option, next, keep_ttl) {
            i += 1;
        } else {
            return syntax_error(cx.out());
        }
        i += 1;
    }

    let now = cx.now();
    let mut ttl = if keep_ttl { Ttl::Keep } else { Ttl::Clear };
    let mut passed = false;
    if let Some((value, kind)) = expire {
        match deadline(value, kind, cx) {
            None => return not_an_integer(cx.out()),
            Some(Err(())) => return reply::err(cx.out(), "invalid expire time in 'set' command"),
            Some(Ok(Deadline::At(at))) => ttl = Ttl::At(at),
            Some(Ok(Deadline::Passed)) => passed = true,
        }
    }

    let key = args.arg(1);
    if get {
        // The reply is the old value, whether or not the write happens.
        reply::bulk_or_null(cx.out(), kv.store.get(key, now), kv.resp3);
    }
    if nx || xx {
        let found = kv.store.contains(key, now);
        if (nx && found) || (xx && !found) {
            if !get {
                reply::null(cx.out(), kv.resp3);
            }
            return;
        }
    }
    kv.store.set(key, args.arg(2), ttl, now);
    if passed {
        kv.store.remove(key, now);
    }
    if !get {
        cx.write(reply::OK);
    }
}

/// `GETEX key [EX s|PX ms|EXAT unix-s|PXAT unix-ms|PERSIST]`: the value (or null), and the
/// key's TTL set, or removed with PERSIST; an EXAT/PXAT time already past deletes the key
/// after its value is read. Redis's order: options, then the key (a missing key is null even
/// with a bad time), then the time.
pub(super) fn getex(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let (mut persist, mut expire) = (false, None::<(&[u8], Expiry)>);
    let mut i = 2;
    while let Some(option) = args.get(i) {
        let next = args.get(i + 1);
        if c_str(option).eq_ignore_ascii_case(b"persist") && expire.is_none() {
            persist = true;
        } else if take_expiry(&mut expire, option, next, persist) {
            i += 1;
        } else {
            return syntax_error(cx.out());
        }
        i += 1;
    }
    let (now, key) = (cx.now(), args.arg(1));
    let Some(value) = kv.store.get(key, now).map(<[u8]>::to_vec) else {
        return reply::null(cx.out(), kv.resp3);
    };
    let deadline = match expire.map(|(value, kind)| deadline(value, kind, cx)) {
        None => None,
        Some(None) => return not_an_integer(cx.out()),
        Some(Some(Err(()))) => return reply::err(cx.out(), "invalid expire time in 'getex' command"),
        Some(Some(Ok(deadline))) => Some(deadline),
    };
    reply::bulk(cx.out(), &value);
    match deadline {
        Some(Deadline::At(at)) => {
            kv.store.expire_at(key, at, now);
        }
        Some(Deadline::Passed) => {
            kv.store.remove(key, now);
        }
        None if persist => {
            kv.store.persist(key, now);
        }
        None => {}
    }
}

/// `SETEX key seconds value`: SET with EX, arguments in another order.
pub(super) fn setex(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    set_expiring(kv, args, Expiry::Ex, "setex", cx);
}

/// `PSETEX key milliseconds value`.
pub(super) fn psetex(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    set_expiring(kv, args, Expiry::Px, "psetex", cx);
}

fn set_expiring(kv: &mut Kv, args: Args<'_>, kind: Expiry, name: &str, cx: &mut Cx<'_>) {
    let deadline = match deadline(args.arg(2), kind, cx) {
        None => return not_an_integer(cx.out()),
        Some(Ok(Deadline::At(at))) => at,
        // A relative time is never already past; every other outcome is an invalid time.
        Some(_) => return reply::err(cx.out(), &format!("invalid expire time in '{name}' command")),
    };
    let now = cx.now();
    kv.store.set(args.arg(1), args.arg(3), Ttl::At(deadline), now);
    cx.write(reply::OK);
}

/// `SETNX key value`: `:1` if it was set, `:0` if the key existed.
pub(super) fn setnx(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    let (key, value) = (args.arg(1), args.arg(2));
    if kv.store.contains(key, now) {
        return reply::int(cx.out(), 0);
    }
    kv.store.set(key, value, Ttl::Clear, now);
    reply::int(cx.out(), 1);
}

/// `STRLEN key`: the value's length in bytes, 0 for a missing key.
pub(super) fn strlen(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    let len = kv.store.get(args.arg(1), now).map_or(0, <[u8]>::len);
    reply::int(cx.out(), i64::try_from(len).unwrap_or(i64::MAX));
}

/// `APPEND key value`: the new length. The result obeys the bulk limit, as in Redis, so a
/// value can never grow past what a client could have SET.
pub(super) fn append(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    match kv.store.append(args.arg(1), args.arg(2), kv.config.max_bulk, now) {
        Some(len) => reply::int(cx.out(), i64::try_from(len).unwrap_or(i64::MAX)),
        None => reply::err(cx.out(), "string exceeds maximum allowed size (proto-max-bulk-len)"),
    }
}

/// `GETRANGE key start end` (and its old name `SUBSTR`): the bytes from `start` to `end`,
/// both included; negative offsets count from the end (-1 is the last byte), and the range
/// is clipped to the value. A missing key reads as the empty string.
pub(super) fn getrange(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let (Some(start), Some(end)) = (parse_int(args.arg(2)), parse_int(args.arg(3))) else {
        return not_an_integer(cx.out());
    };
    let now = cx.now();
    let value = kv.store.get(args.arg(1), now).unwrap_or_default();
    // Redis's getrangeCommand, step by step (len + a negative i64 cannot overflow).
    let len = i64::try_from(value.len()).unwrap_or(i64::MAX);
    let from_end = |i: i64| if i < 0 { len + i } else { i };
    let (first, last) = (from_end(start).max(0), from_end(end).max(0).min(len - 1));
    let both_negative_and_crossed = start < 0 && end < 0 && start > end;
    match (usize::try_from(first), usize::try_from(last)) {
        (Ok(first), Ok(last)) if !both_negative_and_crossed && first <= last => {
            reply::bulk(cx.out(), &value[first..=last]);
        }
        _ => reply::bulk(cx.out(), b""),
    }
}

/// `SETRANGE key offset value`: overwrites the value from `offset` on, padding with zero bytes
/// if it was shorter (a missing key is an empty value), and answers the new length. The TTL
/// is kept; the result obeys the bulk limit, as APPEND's does.
pub(super) fn setrange(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let Some(offset) = parse_int(args.arg(2)) else {
        return not_an_integer(cx.out());
    };
    let Ok(offset) = usize::try_from(offset) else {
        return reply::err(cx.out(), "offset is out of range");
    };
    let (now, key, piece) = (cx.now(), args.arg(1), args.arg(3));
    if piece.is_empty() {
        // Nothing to write: the current length (0 for no key), and no key is created.
        let len = kv.store.peek(key, now).map_or(0, <[u8]>::len);
        return reply::int(cx.out(), i64::try_from(len).unwrap_or(i64::MAX));
    }
    if offset.checked_add(piece.len()).is_none_or(|end| end > kv.config.max_bulk) {
        return reply::err(cx.out(), "string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let len = kv.store.set_range(key, offset, piece, now);
    reply::int(cx.out(), i64::try_from(len).unwrap_or(i64::MAX));
}

/// `MGET key [key ...]`: an array of values and nulls.
///
/// One small request can name one big value many times (`MGET big big big …`: 5 bytes of
/// request per 8 MiB of reply), and one command's reply cannot be held back at the output
/// limit the way a pipeline's can. So once the reply passes `max_query` bytes (the bound
/// EXEC puts on its replies) it is dropped and the client gets an error instead: nothing has
/// changed, and it can ask for fewer keys. Redis has no such bound (its normal clients'
/// output is unlimited), so this is the one place MGET answers differently.
pub(super) fn mget(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    let start = cx.out().len();
    reply::array(cx.out(), args.len() - 1);
    for key in args.iter_from(1) {
        reply::bulk_or_null(cx.out(), kv.store.get(key, now), kv.resp3);
        if cx.out().len() - start > kv.config.max_query {
            cx.out().truncate(start);
            let limit = kv.config.max_query;
            return reply::err(
                cx.out(),
                &format!("MGET reply over the limit of {limit} bytes: ask for fewer keys"),
            );
        }
    }
}

/// `MSET key value [key value ...]`: sets them all (clearing their TTLs).
pub(super) fn mset(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    if args.len().is_multiple_of(2) {
        return super::wrong_arity("mset", cx.out());
    }
    let now = cx.now();
    let mut pairs = args.iter_from(1);
    while let (Some(key), Some(value)) = (pairs.next(), pairs.next()) {
        kv.store.set(key, value, Ttl::Clear, now);
    }
    cx.write(reply::OK);
}

/// `MSETNX key value [key value ...]`: sets them all (clearing their TTLs) only if none of
/// the keys exists: `:1`, else nothing is set: `:0`.
pub(super) fn msetnx(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    if args.len().is_multiple_of(2) {
        return super::wrong_arity("msetnx", cx.out());
    }
    let now = cx.now();
    if args.iter_from(1).step_by(2).any(|key| kv.store.contains(key, now)) {
        return reply::int(cx.out(), 0);
    }
    let mut pairs = args.iter_from(1);
    while let (Some(key), Some(value)) = (pairs.next(), pairs.next()) {
        kv.store.set(key, value, Ttl::Clear, now);
    }
    reply::int(cx.out(), 1);
}

/// `GETSET key value`: the old value (or null), and the new one is set without a TTL.
pub(super) fn getset(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    let key = args.arg(1);
    reply::bulk_or_null(cx.out(), kv.store.get(key, now), kv.resp3);
    kv.store.set(key, args.arg(2), Ttl::Clear, now);
}

/// `GETDEL key`: the value (or null), and the key is gone.
pub(super) fn getdel(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    let key = args.arg(1);
    reply::bulk_or_null(cx.out(), kv.store.get(key, now), kv.resp3);
    kv.store.remove(key, now);
}

/// `INCR key`.
pub(super) fn incr(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    incr_by(kv, args.arg(1), 1, cx);
}

/// `DECR key`.
pub(super) fn decr(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    incr_by(kv, args.arg(1), -1, cx);
}

/// `INCRBY key increment`.
pub(super) fn incrby(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    match parse_int(args.arg(2)) {
        Some(delta) => incr_by(kv, args.arg(1), delta, cx),
        None => not_an_integer(cx.out()),
    }
}

/// `DECRBY key decrement`. Negating `i64::MIN` would overflow before the addition is even
/// tried, so Redis rejects it up front with its own message.
pub(super) fn decrby(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    match parse_int(args.arg(2)) {
        Some(i64::MIN) => reply::err(cx.out(), "decrement would overflow"),
        Some(delta) => incr_by(kv, args.arg(1), -delta, cx),
        None => not_an_integer(cx.out()),
    }
}

/// `INCRBYFLOAT key increment`: the sum as Redis computes it, in x86's 80-bit `long double`,
/// stored and answered as `"%.17Lf"` with trailing zeros trimmed (see `longdouble.rs`). The
/// stored value is checked first, then the increment; the TTL is kept.
pub(super) fn incrbyfloat(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    let key = args.arg(1);
    let current = match kv.store.peek(key, now) {
        Some(text) => longdouble::parse(text),
        None => Some(Value::Finite(longdouble::Ld::default())),
    };
    let (Some(current), Some(increment)) = (current, longdouble::parse(args.arg(2))) else {
        return reply::err(cx.out(), "value is not a valid float");
    };
    let Some(sum) = longdouble::add(current, increment) else {
        return reply::err(cx.out(), "increment would produce NaN or Infinity");
    };
    let text = longdouble::format(sum);
    kv.store.set(key, &text, Ttl::Keep, now);
    reply::bulk(cx.out(), &text);
}

fn incr_by(kv: &mut Kv, key: &[u8], delta: i64, cx: &mut Cx<'_>) {
    let now = cx.now();
    match kv.store.incr_by(key, delta, now) {
        Ok(value) => reply::int(cx.out(), value),
        Err(IncrError::NotAnInteger) => not_an_integer(cx.out()),
        Err(IncrError::Overflow) => reply::err(cx.out(), "increment or decrement would overflow"),
    }
}

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`: the longest common
/// subsequence of two values (missing keys read as empty), its length, or with IDX the
/// matching ranges, last first, as Redis 7's `lcsCommand` walks its table back (transcribed
/// step by step, so the ranges come out as Redis's do). The table costs 4 bytes a cell,
/// (len1 + 1) × (len2 + 1) cells, and is refused past the bulk length limit, as Redis refuses
/// it past `proto-max-bulk-len`: that bounds both the memory and the loop's time.
pub(super) fn lcs(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    // Both looked up first (expiry, hit counts), then read where they lie, as BITOP reads its
    // sources: no copy of either value.
    kv.store.get(args.arg(1), now);
    kv.store.get(args.arg(2), now);
    let a = kv.store.value_in_place(args.arg(1)).unwrap_or_default();
    let b = kv.store.value_in_place(args.arg(2)).unwrap_or_default();
    let (mut want_len, mut want_idx, mut with_len, mut min_len) = (false, false, false, 0u64);
    let mut i = 3;
    while let Some(option) = args.get(i) {
        let is = |name: &str| c_str(option).eq_ignore_ascii_case(name.as_bytes());
        if is("idx") {
            want_idx = true;
        } else if is("len") {
            want_len = true;
        } else if is("withmatchlen") {
            with_len = true;
        } else if is("minmatchlen") && i + 1 < args.len() {
            let Some(n) = parse_int(args.arg(i + 1)) else {
                return not_an_integer(cx.out());
            };
            min_len = n.max(0).unsigned_abs();
            i += 1;
        } else {
            return syntax_error(cx.out());
        }
        i += 1;
    }
    if want_idx && want_len {
        return reply::err(cx.out(), "If you want both the length and indexes, please just use IDX.");
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen + 1).saturating_mul(blen + 1);
    if cells.saturating_mul(4) > kv.config.max_bulk {
        return reply::err(
            cx.out(),
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        );
    }
    // table[i * (blen + 1) + j]: the LCS length of a[..i] and b[..j]. Its cells are at most
    // max_bulk / 4, so lengths fit in u32.
    let mut table = vec![0u32; cells];
    let at = |i: usize, j: usize| i * (blen + 1) + j;
    for i in 1..=alen {
        for j in 1..=blen {
            table[at(i, j)] = if a[i - 1] == b[j - 1] {
                table[at(i - 1, j - 1)] + 1
            } else {
                table[at(i - 1, j)].max(table[at(i, j - 1)])
            };
        }
    }
    let total = table[at(alen, blen)] as usize;
    if want_len {
        return reply::int(cx.out(), total as i64);
    }
    // Walk back from the end, collecting the subsequence and, for IDX, the matched ranges.
    let mut common = vec![0u8; total];
    let mut ranges: Vec<[usize; 4]> = Vec::new();
    let (mut i, mut j, mut left) = (alen, blen, total);
    // (a_start, a_end, b_start, b_end) of the range being grown; a_start == alen: none.
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0, 0, 0);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            common[left - 1] = a[i - 1];
            if a_start == alen {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            (left, i, j) = (left - 1, i - 1, j - 1);
        } else {
            if table[at(i - 1, j)] > table[at(i, j - 1)] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = a_start != alen;
        }
        if emit {
            let matched = (a_end - a_start + 1) as u64;
            if min_len == 0 || matched >= min_len {
                ranges.push([a_start, a_end, b_start, b_end]);
            }
            a_start = alen;
        }
    }
    if !want_idx {
        return reply::bulk(cx.out(), &common);
    }
    let resp3 = kv.resp3;
    let out = cx.out();
    if resp3 {
        reply::map(out, 2);
    } else {
        reply::array(out, 4);
    }
    reply::bulk(out, b"matches");
    reply::array(out, ranges.len());
    for [a_start, a_end, b_start, b_end] in ranges {
        reply::array(out, 2 + usize::from(with_len));
        for (start, end) in [(a_start, a_end), (b_start, b_end)] {
            reply::array(out, 2);
            reply::int(out, start as i64);
            reply::int(out, end as i64);
        }
        if with_len {
            reply::int(out, (a_end - a_start + 1) as i64);
        }
    }
    reply::bulk(out, b"len");
    reply::int(out, total as i64);
}
