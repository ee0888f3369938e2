//! One key of the keyspace: its key and value bytes in one allocation, its deadline, and the
//! two indices that let the store find it from its lists (see `store.rs` and `table.rs`).
//!
//! # Layout
//!
//! An entry is 40 bytes on 64-bit Linux: 16 for the box of bytes, 16 for the optional deadline,
//! 4 + 4 for the two `u32` indices. The box holds, back to back:
//!
//! ```text
//! head (LEB128) [value length (LEB128)] key bytes, value bytes [spare bytes, zero]
//! ```
//!
//! `head` is the key's length times two, plus one if the value was *edited* (below); only
//! then is the value's length written (else the value runs to the end of the box, exactly).
//! LEB128 puts 7 bits in a byte, low bits first, the top bit set on every byte but the last: a
//! key under 64 bytes costs one byte of head. The lengths live in the box rather than in fields
//! because a field would cost 8 bytes with padding, where the head costs one.
//!
//! One allocation, not two: glibc's smallest chunk is 32 bytes, so for short keys and values
//! that halves what the allocator takes, and a `GET` finds the value in the cache line its key
//! comparison has just read.
//!
//! # Growth
//!
//! `SET` writes a value exactly (no spare room: most values are never changed in place).
//! Overwriting a value with one of the same length reuses the box, so a benchmark's repeated
//! `SET` of fixed-size values allocates nothing. `APPEND`, and a `SETRANGE`, `SETBIT` or
//! `BITFIELD` write past the end, grow the value greedily, as Redis's `sdsMakeRoomFor` does:
//! to twice the new length, or 1 MiB more than it past 1 MiB. So a value built by many small
//! appends is copied O(log n) times, not once per append: amortized O(1) an append, where
//! copying the whole value every time made 20,000 appends of 100 bytes run at 2.2k a second,
//! against Redis's 100k and more (measured).
//!
//! # Edited values
//!
//! A value changed in place (`APPEND`, `SETRANGE`, `SETBIT`, a `BITFIELD` write), or grown,
//! is *edited*; a `SET`-like write of the whole value makes it plain again. Redis answers
//! `OBJECT ENCODING` from how it stores a value, and an edited string is `raw` there whatever
//! it holds (`dbUnshareStringValue`), where one written whole is `int`, `embstr` or `raw` by
//! its content; so the head's flag also says "edited", for `OBJECT ENCODING`. Spare room
//! only ever comes from growth, an edit, so the flag still marks every value with spare room.
//! A value over [`EMBSTR_MAX`] bytes is `raw` whatever its history, so one edited in place
//! without growing is not rebuilt just to carry the flag (that would copy a big value once);
//! a short one is, once, for a byte or two of length.

use std::time::Instant;

use super::table::Keyed;

/// Past this, growth adds this much instead of doubling (Redis's `SDS_MAX_PREALLOC`).
const MAX_PREALLOC: usize = 1024 * 1024;

/// The longest string Redis stores in one allocation with its object header, the `embstr`
/// encoding (`OBJ_ENCODING_EMBSTR_SIZE_LIMIT`); longer ones are `raw`.
pub(super) const EMBSTR_MAX: usize = 44;

/// One key (see the module docs).
#[derive(Debug)]
pub(super) struct Entry {
    /// Head, key, value, spare: see "Layout".
    bytes: Box<[u8]>,
    /// The key's position in the table (see `table.rs`).
    pub(super) pos: u32,
    /// While the key has a deadline: where its hash sits in `Store::ttl_keys`.
    pub(super) ttl_slot: u32,
    /// When the key expires (`None`: never).
    pub(super) deadline: Option<Instant>,
}

/// Where the parts of an entry's bytes are.
struct Parts {
    key_start: usize,
    value_start: usize,
    value_end: usize,
    /// The value was edited (see "Edited values"): its length is written after the head, and
    /// it may have spare room after it.
    edited: bool,
}

impl Entry {
    /// An entry for `key` holding exactly `value`, edited or not (see "Edited values").
    pub(super) fn new(key: &[u8], value: &[u8], edited: bool) -> Entry {
        Entry::from_box(build(key, value, value.len(), 0, edited))
    }

    /// An entry for `key` holding `len` zero bytes (SETBIT, SETRANGE, BITFIELD, APPEND on a
    /// missing key), made without a value to copy from.
    pub(super) fn zeroed(key: &[u8], len: usize, edited: bool) -> Entry {
        Entry::from_box(build(key, &[], len, 0, edited))
    }

    fn from_box(bytes: Box<[u8]>) -> Entry {
        Entry { bytes, pos: u32::MAX, ttl_slot: u32::MAX, deadline: None }
    }

    /// The bytes the entry's allocation holds (what `used_memory` charges beyond the entry).
    pub(super) fn allocated(&self) -> usize {
        self.bytes.len()
    }

    fn parts(&self) -> Parts {
        let (head, at) = read_leb128(&self.bytes, 0);
        let (key_len, edited) = (head >> 1, head & 1 == 1);
        let (value_len, key_start) = if edited { read_leb128(&self.bytes, at) } else { (0, at) };
        let value_start = key_start + key_len;
        let value_end = if edited { value_start + value_len } else { self.bytes.len() };
        Parts { key_start, value_start, value_end, edited }
    }

    pub(super) fn value(&self) -> &[u8] {
        let p = self.parts();
        &self.bytes[p.value_start..p.value_end]
    }

    /// The value, to change in place without marking it edited (`APPEND` filling the key it
    /// has just created, which Redis stores as it would `SET` it).
    pub(super) fn value_mut(&mut self) -> &mut [u8] {
        let p = self.parts();
        &mut self.bytes[p.value_start..p.value_end]
    }

    /// The value was edited in place since it was last written whole (see "Edited values").
    pub(super) fn edited(&self) -> bool {
        self.parts().edited
    }

    /// Replaces the value (`SET`; `edited` for a value Redis would store `raw` whatever it
    /// holds, such as `BITOP`'s result): in place when neither the old value nor the new one
    /// is edited and they have the same length, else a new box holding exactly the key and
    /// the new value.
    pub(super) fn set_value(&mut self, value: &[u8], edited: bool) {
        let p = self.parts();
        if !p.edited && !edited && p.value_end - p.value_start == value.len() {
            self.bytes[p.value_start..].copy_from_slice(value);
        } else {
            self.bytes = build(&self.bytes[p.key_start..p.value_start], value, value.len(), 0, edited);
        }
    }

    /// Makes the value `len` bytes long if it is shorter, the new bytes zero, growing the box
    /// greedily when it has no room (see "Growth"), and marks it edited; returns the value to
    /// write into.
    pub(super) fn edit_value(&mut self, len: usize) -> &mut [u8] {
        let p = self.parts();
        let old = p.value_end - p.value_start;
        let (key, value) = (&self.bytes[p.key_start..p.value_start], &self.bytes[p.value_start..p.value_end]);
        if len > old {
            let room = self.bytes.len() - p.value_start;
            if p.edited && len <= room && leb128_len(len) == leb128_len(old) {
                // Fits in the spare room, and the length's new LEB128 is as wide as the old one.
                let (_, at) = read_leb128(&self.bytes, 0);
                write_leb128(&mut self.bytes[at..], len);
                self.bytes[p.value_end..p.value_start + len].fill(0);
            } else {
                let capacity = if len < MAX_PREALLOC { len * 2 } else { len + MAX_PREALLOC };
                self.bytes = build(key, value, len, capacity - len, true);
            }
        } else if !p.edited && old <= EMBSTR_MAX {
            // Changed in place from now on: a short value says so (see "Edited values").
            self.bytes = build(key, value, old, 0, true);
        }
        let p = self.parts();
        &mut self.bytes[p.value_start..p.value_end]
    }

    pub(super) fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|at| now > at)
    }

    /// True for the entry listed at `ttl_keys[slot]`: it has a deadline and that slot.
    pub(super) fn listed_at(&self, slot: usize) -> bool {
        self.deadline.is_some() && self.ttl_slot as usize == slot
    }
}

impl Keyed for Entry {
    fn key(&self) -> &[u8] {
        let p = self.parts();
        &self.bytes[p.key_start..p.value_start]
    }
    fn position(&self) -> u32 {
        self.pos
    }
    fn set_position(&mut self, pos: u32) {
        self.pos = pos;
    }
}

/// The box for `key` and a value of `len` bytes that starts with `value` (zeros after it),
/// with `spare` zero bytes of room after the value, the value's length written out if it is
/// `edited` (spare room needs that): one allocation, sized exactly (a vector with room left
/// over would be shrunk on the way into a box, a `realloc` that glibc does in place, keeping
/// the bigger chunk: measured, 16 bytes more a key).
fn build(key: &[u8], value: &[u8], len: usize, spare: usize, edited: bool) -> Box<[u8]> {
    debug_assert!(value.len() <= len);
    debug_assert!(edited || spare == 0, "spare room needs the value's length written");
    let head = key.len() << 1 | usize::from(edited);
    let value_len = if edited { leb128_len(len) } else { 0 };
    let size = leb128_len(head) + value_len + key.len() + len + spare;
    let mut bytes = vec![0; size];
    let mut at = write_leb128(&mut bytes, head);
    if edited {
        at += write_leb128(&mut bytes[at..], len);
    }
    bytes[at..at + key.len()].copy_from_slice(key);
    bytes[at + key.len()..at + key.len() + value.len()].copy_from_slice(value);
    debug_assert_eq!(bytes.len(), bytes.capacity());
    bytes.into()
}

/// Bytes LEB128 takes for `n`.
fn leb128_len(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()).div_ceil(7).max(1) as usize
}

/// Writes `n` at the start of `out` (which has room); returns the bytes written.
fn write_leb128(out: &mut [u8], mut n: usize) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        out[i] = 0x80 | (n & 0x7f) as u8;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    i + 1
}

/// Reads the number written at `bytes[at..]`; returns it and where it ends. `build` always
/// ends one with a byte below 0x80, within the box.
fn read_leb128(bytes: &[u8], at: usize) -> (usize, usize) {
    let mut n = 0;
    // At most 10 bytes: a `usize` needs no more, and the shift below stays under 64.
    for (i, &byte) in bytes[at..].iter().take(10).enumerate() {
        n |= usize::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return (n, at + i + 1);
        }
    }
    (n, bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys of every head width (1, 2 and 3 bytes, and the edges between), with values
    /// replaced in place (same length) or anew, and grown, keep their bytes.
    #[test]
    fn keys_of_any_length_and_their_values_survive_replacement_and_growth() {
        for len in [0, 1, 63, 64, 127, 128, 8191, 8192, 70_000] {
            let key: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut e = Entry::new(&key, b"abc", false);
            assert_eq!((e.key(), e.value()), (&key[..], &b"abc"[..]), "key of {len} bytes");
            let head = if len < 64 {
                1
            } else if len < 8192 {
                2
            } else {
                3
            };
            assert_eq!(e.allocated(), head + len + 3, "an exact box");
            e.set_value(b"xyz", false);
            assert_eq!((e.key(), e.value()), (&key[..], &b"xyz"[..]));
            e.set_value(b"", false);
            assert_eq!((e.key(), e.value()), (&key[..], &b""[..]));
            e.set_value(&key, false);
            assert_eq!((e.key(), e.value()), (&key[..], &key[..]));
            e.edit_value(len + 2)[len..].copy_from_slice(b"!!");
            assert_eq!(e.key(), &key[..]);
            assert_eq!(&e.value()[..len], &key[..]);
            assert_eq!(&e.value()[len..], b"!!");
            // SET after growth writes an exact box again.
            e.set_value(b"v", false);
            assert_eq!((e.key(), e.value(), e.allocated()), (&key[..], &b"v"[..], head + len + 1));
        }
    }

    /// 20,000 appends of 10 bytes: the value is right after each, the box is replaced only
    /// when the spare room runs out or the length's LEB128 widens (a few dozen times, not
    /// 20,000), and the spare room is never more than the value again (below 1 MiB).
    #[test]
    fn appends_grow_the_box_greedily() {
        let mut e = Entry::new(b"log", b"", false);
        let mut expect = Vec::new();
        let mut boxes = 0;
        for i in 0..20_000u32 {
            let piece = format!("{:010}", i);
            let before = e.allocated();
            let len = e.value().len();
            e.edit_value(len + piece.len())[len..].copy_from_slice(piece.as_bytes());
            expect.extend_from_slice(piece.as_bytes());
            boxes += usize::from(e.allocated() != before);
            assert_eq!(e.value().len(), expect.len());
            assert!(e.allocated() <= 3 + 10 + 2 * expect.len());
        }
        assert_eq!(e.value(), &expect[..]);
        assert_eq!(e.key(), b"log");
        assert!(boxes < 30, "the box was replaced {boxes} times");
    }

    /// Growth past 1 MiB adds 1 MiB instead of doubling, and new bytes are zero even where
    /// the spare room is reused.
    #[test]
    fn growth_past_a_mebibyte_is_linear_and_new_bytes_are_zero() {
        let mut e = Entry::new(b"k", &[7; 10], false);
        e.edit_value(2 * MAX_PREALLOC);
        assert_eq!(e.allocated() - 2 * MAX_PREALLOC, MAX_PREALLOC + 1 + 4 + 1);
        assert_eq!(&e.value()[..10], &[7; 10]);
        assert!(e.value()[10..].iter().all(|&b| b == 0));
        e.edit_value(2 * MAX_PREALLOC + 5);
        assert!(e.value()[2 * MAX_PREALLOC..].iter().all(|&b| b == 0));
        // Not shorter: growing to less changes nothing.
        assert_eq!(e.edit_value(3).len(), 2 * MAX_PREALLOC + 5);
    }

    /// `leb128_len` is what `write_leb128` writes, and `read_leb128` reads it back, at every
    /// edge of every width up to `usize::MAX`.
    #[test]
    fn leb128_sizes_writes_and_reads_agree_at_every_width_edge() {
        let mut lens = vec![0, usize::MAX, usize::MAX - 1];
        for bit in 0..usize::BITS {
            lens.extend([1usize << bit, (1usize << bit) - 1, (1usize << bit) + 1]);
        }
        for len in lens {
            let mut out = [0u8; 10];
            let written = write_leb128(&mut out, len);
            assert_eq!(leb128_len(len), written, "{len}");
            assert_eq!(read_leb128(&out, 0), (len, written), "{len}");
        }
        assert_eq!(leb128_len(usize::MAX), 10);
    }

    /// Key and value bytes that look like LEB128 continuation bytes (0x80 and up) are never
    /// read as part of a length, at every head width that can be allocated here.
    #[test]
    fn key_bytes_are_never_read_as_a_length() {
        for len in [0usize, 63, 64, 8191, 8192, (1 << 20) - 1, 1 << 20] {
            let key = vec![0xff; len];
            let mut e = Entry::new(&key, &[0x80, 0x81], false);
            assert_eq!((e.key(), e.value()), (&key[..], &[0x80u8, 0x81][..]), "{len}");
            assert_eq!(e.allocated(), leb128_len(len << 1) + len + 2);
            e.edit_value(3)[2] = 0xff;
            assert_eq!((e.key(), e.value()), (&key[..], &[0x80u8, 0x81, 0xff][..]), "{len}");
        }
    }

    /// Growing one byte at a time across the value length's LEB128 width edges (127/128,
    /// 16383/16384) keeps the bytes and zero-fills the new ones (from the third review).
    #[test]
    fn byte_by_byte_growth_across_length_width_edges() {
        let mut e = Entry::zeroed(b"key", 0, false);
        let mut expect = Vec::new();
        for len in 1..=20_000usize {
            let v = e.edit_value(len);
            assert_eq!((v.len(), v[len - 1]), (len, 0), "at {len}");
            v[len - 1] = (len % 251) as u8;
            expect.push((len % 251) as u8);
            assert_eq!((e.key(), e.value()), (&b"key"[..], &expect[..]), "at {len}");
        }
    }

    /// An edit marks a value edited (Redis's `raw`): a short one is rebuilt once with its
    /// length written out, a long one edited in place is left as it is (raw by its length
    /// anyway), growth always marks it, and a whole write makes it plain again.
    #[test]
    fn edits_mark_a_value_edited_and_a_whole_write_clears_it() {
        let mut e = Entry::new(b"k", b"12", false);
        assert!(!e.edited());
        e.edit_value(2)[0] = b'3';
        assert_eq!((e.value(), e.edited(), e.allocated()), (&b"32"[..], true, 1 + 1 + 1 + 2));
        let before = e.allocated();
        e.edit_value(1);
        assert_eq!((e.value(), e.allocated()), (&b"32"[..], before), "no second rebuild");
        e.set_value(b"12", false);
        assert_eq!((e.edited(), e.allocated()), (false, 1 + 1 + 2));
        e.set_value(b"12", true);
        assert_eq!((e.edited(), e.allocated()), (true, 1 + 1 + 1 + 2));

        let long = [7u8; EMBSTR_MAX + 1];
        let mut e = Entry::new(b"k", &long, false);
        let before = e.allocated();
        e.edit_value(3)[0] = 1;
        assert_eq!((e.edited(), e.allocated()), (false, before), "not rebuilt: raw by length");
        e.edit_value(long.len() + 1);
        assert!(e.edited());
        assert!(Entry::zeroed(b"k", 1, true).edited() && !Entry::zeroed(b"k", 1, false).edited());
    }
}
