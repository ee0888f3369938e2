//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and BITFIELD_RO.
//!
//! Redis's bitmaps are not a type of their own but strings read as arrays of bits, bit 0 being
//! the most significant bit of the first byte; a missing key reads as an empty string, which
//! reads as all zeros. Each command follows Redis 7's `bitops.c` step by step, error texts and
//! odd corners included (`scripts/kv_diff.py bits` and `bitfield` compare them with a real
//! redis-server). Writes go through the store, which grows a value in place (`entry.rs`).

use std::collections::HashMap;

use crate::service::Cx;

use super::{Kv, c_str, not_an_integer, reply, syntax_error};
use crate::service::kv::resp::{Args, parse_int};
use crate::service::kv::store::Ttl;

const BAD_OFFSET: &str = "bit offset is not an integer or out of range";

/// A bit offset as Redis's `getBitOffsetFromArgument` takes it: an integer, not negative, whose
/// byte (`offset / 8`) is within the bulk length limit.
fn bit_offset(text: &[u8], max_bulk: usize) -> Option<usize> {
    parse_int(text).and_then(|n| usize::try_from(n).ok()).filter(|&n| n / 8 < max_bulk)
}

/// `SETBIT key offset 0|1`: the bit's old value. The value grows with zero bytes to reach the
/// bit; a missing key is created (even to clear a bit). The TTL is kept.
pub(super) fn setbit(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let Some(offset) = bit_offset(args.arg(2), kv.config.max_bulk) else {
        return reply::err(cx.out(), BAD_OFFSET);
    };
    let on = match parse_int(args.arg(3)) {
        Some(0) => false,
        Some(1) => true,
        _ => return reply::err(cx.out(), "bit is not an integer or out of range"),
    };
    let now = cx.now();
    let was = kv.store.set_bit(args.arg(1), offset, on, now);
    reply::int(cx.out(), i64::from(was));
}

/// `GETBIT key offset`: 0 or 1; 0 past the end and for a missing key.
pub(super) fn getbit(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let Some(offset) = bit_offset(args.arg(2), kv.config.max_bulk) else {
        return reply::err(cx.out(), BAD_OFFSET);
    };
    let now = cx.now();
    let value = kv.store.get(args.arg(1), now).unwrap_or_default();
    let bit = value.get(offset / 8).is_some_and(|byte| byte & (0x80 >> (offset % 8)) != 0);
    reply::int(cx.out(), i64::from(bit));
}

/// A `[start end [BYTE|BIT]]` range as `bitcountCommand` and `bitposCommand` resolve it, over a
/// value of `len` bytes: inclusive, negative counting from the end, clipped; in bits, whatever
/// the unit it was given in. `None` when it is empty.
fn bit_range(len: usize, start: i64, end: i64, in_bits: bool) -> Option<(u64, u64)> {
    let total = (len as i64).saturating_mul(if in_bits { 8 } else { 1 });
    let from_end = |i: i64| if i < 0 { (total + i).max(0) } else { i };
    let (start, end) = (from_end(start), from_end(end).min(total - 1));
    if start > end {
        return None;
    }
    // Both are now within 0..total, so not negative.
    let (start, end) = (start as u64, end as u64);
    Some(if in_bits { (start, end) } else { (start * 8, end * 8 + 7) })
}

/// The BYTE or BIT word, if given.
fn unit(word: Option<&[u8]>) -> Option<bool> {
    match word {
        None => Some(false),
        Some(w) if c_str(w).eq_ignore_ascii_case(b"bit") => Some(true),
        Some(w) if c_str(w).eq_ignore_ascii_case(b"byte") => Some(false),
        Some(_) => None,
    }
}

fn bit_at(value: &[u8], i: u64) -> bool {
    value[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
}

/// Splits the bits `first..=last` into a bit-by-bit head, whole bytes, and a bit-by-bit tail,
/// so that long ranges are handled a byte (or a word, by the compiler) at a time.
fn split(first: u64, last: u64) -> (std::ops::Range<u64>, std::ops::Range<usize>, std::ops::Range<u64>) {
    let (whole_from, whole_to) = (first.div_ceil(8), (last + 1) / 8);
    if whole_from >= whole_to {
        return (first..last + 1, 0..0, 0..0);
    }
    (first..whole_from * 8, whole_from as usize..whole_to as usize, whole_to * 8..last + 1)
}

/// Set bits among `first..=last`.
fn count_ones(value: &[u8], first: u64, last: u64) -> u64 {
    let (head, bytes, tail) = split(first, last);
    let edge = |bits: std::ops::Range<u64>| bits.filter(|&i| bit_at(value, i)).count() as u64;
    edge(head) + value[bytes].iter().map(|b| u64::from(b.count_ones())).sum::<u64>() + edge(tail)
}

/// The first bit equal to `bit` among `first..=last`.
fn find_bit(value: &[u8], first: u64, last: u64, bit: bool) -> Option<u64> {
    let (head, bytes, tail) = split(first, last);
    let skip = if bit { 0x00 } else { 0xff };
    let in_bytes = || {
        let at = bytes.start + value[bytes.clone()].iter().position(|&b| b != skip)?;
        (0..8).map(|k| at as u64 * 8 + k).find(|&i| bit_at(value, i) == bit)
    };
    head.clone()
        .find(|&i| bit_at(value, i) == bit)
        .or_else(in_bytes)
        .or_else(|| tail.clone().find(|&i| bit_at(value, i) == bit))
}

/// `BITCOUNT key [start end [BYTE|BIT]]`: the number of set bits, in the range if given. As in
/// Redis, a missing key answers 0 before the arguments are even read.
pub(super) fn bitcount(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let now = cx.now();
    let Some(value) = kv.store.get(args.arg(1), now) else {
        return reply::int(cx.out(), 0);
    };
    let (first, last) = match args.len() {
        2 if value.is_empty() => return reply::int(cx.out(), 0),
        2 => (0, value.len() as u64 * 8 - 1),
        4 | 5 => {
            let (Some(start), Some(end)) = (parse_int(args.arg(2)), parse_int(args.arg(3))) else {
                return not_an_integer(cx.out());
            };
            // Redis answers this case before it reads the unit.
            if start < 0 && end < 0 && start > end {
                return reply::int(cx.out(), 0);
            }
            let Some(in_bits) = unit(args.get(4)) else {
                return syntax_error(cx.out());
            };
            match bit_range(value.len(), start, end, in_bits) {
                Some(range) => range,
                None => return reply::int(cx.out(), 0),
            }
        }
        _ => return syntax_error(cx.out()),
    };
    let count = count_ones(value, first, last);
    reply::int(cx.out(), i64::try_from(count).unwrap_or(i64::MAX));
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`: the first bit equal to `bit`, or -1. A missing
/// key is all zeros: 0 for a clear bit, -1 for a set one. Looking for a clear bit without an
/// `end`, the value is taken as followed by zeros (the answer may be its length in bits); with
/// an `end`, only the range counts.
pub(super) fn bitpos(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let bit = match parse_int(args.arg(2)) {
        Some(0) => false,
        Some(1) => true,
        Some(_) => return reply::err(cx.out(), "The bit argument must be 1 or 0."),
        None => return not_an_integer(cx.out()),
    };
    let now = cx.now();
    let Some(value) = kv.store.get(args.arg(1), now) else {
        return reply::int(cx.out(), if bit { -1 } else { 0 });
    };
    let len = value.len();
    let (range, end_given) = match args.len() {
        3 => (bit_range(len, 0, -1, false), false),
        4..=6 => {
            let Some(start) = parse_int(args.arg(3)) else {
                return not_an_integer(cx.out());
            };
            let Some(in_bits) = unit(args.get(5)) else {
                return syntax_error(cx.out());
            };
            let end = match args.get(4) {
                Some(text) => match parse_int(text) {
                    Some(end) => end,
                    None => return not_an_integer(cx.out()),
                },
                None => -1,
            };
            (bit_range(len, start, end, in_bits), args.len() >= 5)
        }
        _ => return syntax_error(cx.out()),
    };
    let Some((first, last)) = range else {
        return reply::int(cx.out(), -1);
    };
    let answer = match find_bit(value, first, last, bit) {
        Some(i) => i64::try_from(i).unwrap_or(i64::MAX),
        // No clear bit in the value: without an end, the first one past it.
        None if !bit && !end_given => i64::try_from((last / 8 + 1) * 8).unwrap_or(i64::MAX),
        None => -1,
    };
    reply::int(cx.out(), answer);
}

/// `BITOP AND|OR|XOR|NOT destkey key [key ...]`: the operation over the values (missing keys
/// and shorter values read as zeros, out to the longest), stored at `destkey` (its TTL
/// cleared, as by SET); answers the result's length. An empty result deletes `destkey`.
pub(super) fn bitop(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let op = c_str(args.arg(1));
    let is = |name: &str| op.eq_ignore_ascii_case(name.as_bytes());
    let (and, or, xor, not) = (is("and"), is("or"), is("xor"), is("not"));
    if !(and || or || xor || not) {
        return syntax_error(cx.out());
    }
    if not && args.len() != 4 {
        return reply::err(cx.out(), "BITOP NOT must be called with a single source key.");
    }
    let now = cx.now();
    // Every source looked up first (expiring, counting hits and misses), then read where it
    // lies: a key named many times is not copied many times.
    for key in args.iter_from(3) {
        kv.store.get(key, now);
    }
    let result = {
        let store = &kv.store;
        // Each key once, in the order first named, with how often it was named: a repeat
        // changes nothing for AND and OR and cancels in pairs for XOR, so the work is bounded
        // by the bytes stored, not by how often one request names a big key (a review's
        // 70 KB BITOP naming one 8 MiB key 10,000 times took 5.8 s).
        let mut index: HashMap<&[u8], usize> = HashMap::new();
        let mut named: Vec<(&[u8], usize)> = Vec::new();
        for key in args.iter_from(3) {
            let i = *index.entry(key).or_insert_with(|| {
                named.push((key, 0));
                named.len() - 1
            });
            named[i].1 += 1;
        }
        // Each distinct key's value, looked up once.
        let named: Vec<(&[u8], usize)> =
            named.iter().map(|&(key, n)| (store.value_in_place(key).unwrap_or_default(), n)).collect();
        let len = named.iter().map(|(value, _)| value.len()).max().unwrap_or(0);
        let sources: Vec<&[u8]> = if xor {
            // XOR from zero over the keys named an odd number of times.
            std::iter::once(&[][..])
                .chain(named.iter().filter(|(_, n)| n % 2 == 1).map(|&(v, _)| v))
                .collect()
        } else {
            named.iter().map(|&(value, _)| value).collect()
        };
        // The first source, zero-padded; then each other one folded in, byte by byte where
        // it has bytes (past its end, AND clears and OR and XOR keep).
        let mut result = vec![0u8; len];
        let (first, rest) = sources.split_first().map_or((&[][..], &[][..]), |(f, r)| (*f, r));
        result[..first.len()].copy_from_slice(first);
        if not {
            result.iter_mut().for_each(|b| *b = !*b);
        }
        for source in rest {
            let (head, tail) = result.split_at_mut(source.len());
            let pairs = head.iter_mut().zip(source.iter());
            if and {
                pairs.for_each(|(r, s)| *r &= s);
                tail.fill(0);
            } else if or {
                pairs.for_each(|(r, s)| *r |= s);
            } else {
                pairs.for_each(|(r, s)| *r ^= s);
            }
        }
        result
    };
    let (dest, len) = (args.arg(2), result.len());
    if len == 0 {
        kv.store.remove(dest, now);
        return reply::int(cx.out(), 0);
    }
    // Redis stores BITOP's result as a `raw` string whatever it holds.
    kv.store.set_edited(dest, &result, Ttl::Clear, now);
    reply::int(cx.out(), i64::try_from(len).unwrap_or(i64::MAX));
}

/// What a BITFIELD `SET` or `INCRBY` does past the field's range (`OVERFLOW`, until the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    /// Two's complement wrap-around (the default).
    Wrap,
    /// Saturate at the field's minimum or maximum.
    Sat,
    /// Write nothing; the reply is null.
    Fail,
}

/// One parsed BITFIELD operation.
#[derive(Debug)]
struct FieldOp {
    /// `None` for GET, else SET (`false`) or INCRBY (`true`) with its argument.
    write: Option<(bool, i64)>,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

const BAD_TYPE: &str =
    "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// `i1`..`i64` or `u1`..`u63` (lowercase only, and up to a NUL, as Redis reads it).
fn field_type(text: &[u8]) -> Option<(bool, u32)> {
    let (signed, width) = match c_str(text).split_first()? {
        (b'i', rest) => (true, rest),
        (b'u', rest) => (false, rest),
        _ => return None,
    };
    let bits = parse_int(width)?;
    let max = if signed { 64 } else { 63 };
    (1..=max).contains(&bits).then_some((signed, bits as u32))
}

/// A BITFIELD offset: a bit offset, or `#n`, the n-th field of this width.
fn field_offset(text: &[u8], bits: u32, max_bulk: usize) -> Option<u64> {
    let (number, scale) = match text {
        [b'#', rest @ ..] if !rest.is_empty() => (rest, i64::from(bits)),
        _ => (text, 1),
    };
    let offset = parse_int(number)?.checked_mul(scale)?;
    u64::try_from(offset).ok().filter(|&o| o / 8 < max_bulk as u64)
}

/// `BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ...`: an array with one reply per GET, SET (the old value) and
/// INCRBY (the new value, or null when `OVERFLOW FAIL` refused it). Every operation is parsed
/// before any runs: a bad one fails the whole command. A command that writes makes the value
/// long enough for its farthest field first (creating the key), even if FAIL then writes
/// nothing; fields are read past the end as zeros.
pub(super) fn bitfield(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    bitfield_generic(kv, args, cx, false);
}

/// `BITFIELD_RO key [GET type offset] ...`: BITFIELD's reads, allowed on read-only replicas.
pub(super) fn bitfield_ro(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    bitfield_generic(kv, args, cx, true);
}

fn bitfield_generic(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>, read_only: bool) {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    // One past the last byte a write reaches.
    let mut reach = 0u64;
    let mut i = 2;
    while let Some(word) = args.get(i) {
        let left = args.len() - i - 1;
        let is = |name: &str| c_str(word).eq_ignore_ascii_case(name.as_bytes());
        let write = if is("get") && left >= 2 {
            false
        } else if (is("set") || is("incrby")) && left >= 3 {
            true
        } else if is("overflow") && left >= 1 {
            let kind = c_str(args.arg(i + 1));
            let is = |name: &str| kind.eq_ignore_ascii_case(name.as_bytes());
            overflow = if is("wrap") {
                Overflow::Wrap
            } else if is("sat") {
                Overflow::Sat
            } else if is("fail") {
                Overflow::Fail
            } else {
                return reply::err(cx.out(), "Invalid OVERFLOW type specified");
            };
            i += 2;
            continue;
        } else {
            return syntax_error(cx.out());
        };
        let Some((signed, bits)) = field_type(args.arg(i + 1)) else {
            return reply::err(cx.out(), BAD_TYPE);
        };
        let Some(offset) = field_offset(args.arg(i + 2), bits, kv.config.max_bulk) else {
            return reply::err(cx.out(), BAD_OFFSET);
        };
        let write = if write {
            let Some(n) = parse_int(args.arg(i + 3)) else {
                return not_an_integer(cx.out());
            };
            reach = reach.max((offset + u64::from(bits) - 1) / 8 + 1);
            Some((is("incrby"), n))
        } else {
            None
        };
        ops.push(FieldOp { write, signed, bits, offset, overflow });
        i += if write.is_some() { 4 } else { 3 };
    }
    let now = cx.now();
    let key = args.arg(1);
    let mut replies = Vec::new();
    if ops.iter().all(|op| op.write.is_none()) {
        let value = kv.store.get(key, now).unwrap_or_default();
        replies.extend(ops.iter().map(|op| Some(read_field(value, op))));
    } else if read_only {
        return reply::err(cx.out(), "BITFIELD_RO only supports the GET subcommand");
    } else {
        // `reach` is within the bulk limit plus 8 bytes, as every offset's byte is.
        // WATCH sees a change only from an operation that ran (not refused by FAIL) and
        // created or grew the key or changed its field, as Redis counts `changes`.
        kv.store.modify(key, reach as usize, now, |value, grown| {
            let mut changed = false;
            for op in &ops {
                let ran = run_field(value, op);
                changed |= op.write.is_some() && ran.is_some_and(|(_, field_changed)| grown || field_changed);
                replies.push(ran.map(|(answer, _)| answer));
            }
            changed
        });
    }
    reply::array(cx.out(), replies.len());
    for answer in replies {
        match answer {
            Some(n) => reply::int(cx.out(), n),
            None => reply::null(cx.out(), kv.resp3),
        }
    }
}

/// The field's bits as an unsigned number, zeros past the end of the value.
fn get_bits(value: &[u8], offset: u64, bits: u32) -> u64 {
    (offset..offset + u64::from(bits)).fold(0, |acc, i| {
        let bit = value.get((i / 8) as usize).is_some_and(|byte| byte & (0x80 >> (i % 8)) != 0);
        acc << 1 | u64::from(bit)
    })
}

fn set_bits(value: &mut [u8], offset: u64, bits: u32, n: u64) {
    for k in 0..u64::from(bits) {
        let i = offset + k;
        let (byte, mask) = ((i / 8) as usize, 0x80u8 >> (i % 8));
        if n >> (u64::from(bits) - 1 - k) & 1 == 1 {
            value[byte] |= mask;
        } else {
            value[byte] &= !mask;
        }
    }
}

/// The field read as its type says: unsigned, or two's complement of `bits` bits.
fn read_field(value: &[u8], op: &FieldOp) -> i64 {
    let raw = get_bits(value, op.offset, op.bits);
    if op.signed && op.bits < 64 && raw >> (op.bits - 1) & 1 == 1 {
        (raw | u64::MAX << op.bits) as i64
    } else {
        raw as i64
    }
}

/// An operation on `value` (long enough): its reply and whether it changed the field, or
/// `None` if `OVERFLOW FAIL` refused it.
fn run_field(value: &mut [u8], op: &FieldOp) -> Option<(i64, bool)> {
    let Some((incr, n)) = op.write else {
        return Some((read_field(value, op), false));
    };
    let old = read_field(value, op);
    // SET checks the new value against the range as an increment of 0 from it.
    let (base, delta) = if incr { (old, n) } else { (n, 0) };
    let (overflowed, limit) =
        if op.signed { signed_overflow(base, delta, op) } else { unsigned_overflow(base as u64, delta, op) };
    if overflowed && op.overflow == Overflow::Fail {
        return None;
    }
    // In the field's range either way (WRAP and SAT put it there), so it reads back as `new`.
    let new = if overflowed { limit } else { base.wrapping_add(delta) };
    set_bits(value, op.offset, op.bits, new as u64);
    Some((if incr { new } else { old }, new != old))
}

/// Redis's `checkSignedBitfieldOverflow`: whether `value + incr` leaves the signed range of
/// `op.bits` bits, and the value WRAP or SAT puts there instead.
fn signed_overflow(value: i64, incr: i64, op: &FieldOp) -> (bool, i64) {
    let bits = op.bits;
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let sum = (value as u64).wrapping_add(incr as u64);
        let wrapped = if bits < 64 {
            let mask = u64::MAX << bits;
            if sum & (1 << (bits - 1)) != 0 { sum | mask } else { sum & !mask }
        } else {
            sum
        };
        wrapped as i64
    };
    let over = value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr);
    let under = value < min || (bits != 64 && incr < min_incr) || (value < 0 && incr < 0 && incr < min_incr);
    match (over, under, op.overflow) {
        (true, _, Overflow::Sat) => (true, max),
        (false, true, Overflow::Sat) => (true, min),
        (true, _, _) | (false, true, _) => (true, wrap()),
        _ => (false, 0),
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`, the same for an unsigned field.
fn unsigned_overflow(value: u64, incr: i64, op: &FieldOp) -> (bool, i64) {
    let max = (1u64 << op.bits) - 1;
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = value.wrapping_neg() as i64;
    let wrap = || (value.wrapping_add(incr as u64) & max) as i64;
    let over = value > max || (incr > 0 && incr > max_incr);
    let under = incr < 0 && incr < min_incr;
    match (over, under, op.overflow) {
        (true, _, Overflow::Sat) => (true, max as i64),
        (false, true, Overflow::Sat) => (true, 0),
        (true, _, _) | (false, true, _) => (true, wrap()),
        _ => (false, 0),
    }
}
