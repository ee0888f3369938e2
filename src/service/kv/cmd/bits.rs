//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP. Redis's bitmaps are not a type of
//! their own but strings read as arrays of bits, bit 0 being the most significant bit of the
//! first byte; a missing key reads as an empty string, which reads as all zeros. Each follows
//! Redis 7's `bitops.c` step by step, error texts and odd corners included (compared with
//! redis-server 7.0.15).

use crate::service::Cx;

use super::{Kv, not_an_integer, reply, syntax_error};
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
        Some(w) if w.eq_ignore_ascii_case(b"bit") => Some(true),
        Some(w) if w.eq_ignore_ascii_case(b"byte") => Some(false),
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
    let op = args.arg(1);
    let is = |name: &str| op.eq_ignore_ascii_case(name.as_bytes());
    let (and, or, xor, not) = (is("and"), is("or"), is("xor"), is("not"));
    if !(and || or || xor || not) {
        return syntax_error(cx.out());
    }
    if not && args.len() != 4 {
        return reply::err(cx.out(), "BITOP NOT must be called with a single source key.");
    }
    let now = cx.now();
    let sources: Vec<Vec<u8>> =
        args.iter_from(3).map(|key| kv.store.get(key, now).map(<[u8]>::to_vec).unwrap_or_default()).collect();
    let len = sources.iter().map(Vec::len).max().unwrap_or(0);
    let dest = args.arg(2);
    if len == 0 {
        kv.store.remove(dest, now);
        return reply::int(cx.out(), 0);
    }
    let byte = |source: &Vec<u8>, i: usize| source.get(i).copied().unwrap_or(0);
    let result: Vec<u8> = (0..len)
        .map(|i| {
            let mut bytes = sources.iter().map(|s| byte(s, i));
            let first = bytes.next().unwrap_or(0);
            if not {
                !first
            } else if and {
                bytes.fold(first, |acc, b| acc & b)
            } else if or {
                bytes.fold(first, |acc, b| acc | b)
            } else {
                bytes.fold(first, |acc, b| acc ^ b)
            }
        })
        .collect();
    kv.store.set(dest, &result, Ttl::Clear, now);
    reply::int(cx.out(), i64::try_from(len).unwrap_or(i64::MAX));
}
