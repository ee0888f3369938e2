//! The keyspace: every key and value of the key-value service, with optional expiry.
//!
//! Commands (`cmd/`) read and write it; nothing else does. Values are byte strings only (the
//! service implements no lists, hashes or sets), so Redis's `WRONGTYPE` error cannot arise.
//!
//! # Memory
//!
//! A key costs one `Table` entry, 40 bytes (`entry.rs`: the key and value bytes in one
//! allocation, the deadline, two 32-bit indices), plus the table's control byte and the key's
//! hash in its dense vector (what `SCAN` walks by, below): 49 bytes of bookkeeping a key, and
//! one allocation. `SET` stores a value exactly; `APPEND` and `SETRANGE` grow it greedily, in
//! place, as Redis grows its strings (see `entry.rs`).
//! [`Store::used_memory`] is our own running total of the entries' allocations (key, value and
//! any spare room grown for appends) plus an estimate of the per-entry overhead; allocator
//! rounding and the table's spare capacity are not counted.
//!
//! # Expiry
//!
//! A key with a TTL expires in two ways, as in Redis:
//!
//! * **lazily**: every lookup checks the deadline and deletes an expired key before answering,
//!   so no command ever sees one;
//! * **actively**: [`Store::active_expire`], run from the service's `tick`, examines keys with
//!   a TTL in samples of 20, and repeats while more than a quarter of a sample had expired
//!   (Redis's `activeExpireCycle`). Keys nobody reads still go away, and the work per tick is
//!   bounded.
//!
//! To sample without scanning the whole keyspace, keys with a TTL are also listed in
//! `ttl_keys`, a vector walked by a cursor (Redis 6+ also walks its `expires` table with a
//! cursor rather than picking at random). The list holds each key's *hash*, and the key's
//! entry records its slot in the list, so a hash and a slot find the entry (the trick
//! `table.rs` plays with positions) without a second copy of the key: 8 bytes a key with a
//! TTL. Removing a key from the list is a `swap_remove`, O(1), that tells the moved key's
//! entry its new slot.
//!
//! A key is expired when `now` is *past* its deadline (at the deadline itself it is still
//! alive, with a PTTL of 0), matching Redis's `keyIsExpired`.
//!
//! # Scanning
//!
//! [`Store::scan`] serves `SCAN`: a client walks the keyspace a few keys per call, handing back
//! the cursor each call returned, while other clients go on writing. Redis promises that a key
//! present for the whole walk is returned at least once (perhaps more), and that a key added or
//! deleted meanwhile may or may not be. Redis keeps that promise with a reverse-binary cursor
//! over its hash buckets; here the cursor is a position in the `Table`, walked from the top
//! down, so the positions below the cursor are the part still to walk. A delete swap-removes:
//! the key at the *last* position moves into the hole. If the last position is at or above the
//! cursor, its key was walked already or added since (it may come again, or appear); if the
//! keyspace shrank below the cursor, that key is still to walk and moves lower, still to walk.
//! So no key still to walk ever moves into the walked part: none present throughout is
//! skipped. Inserts go at the end: above the cursor, not returned, unless the keyspace has
//! shrunk below the cursor since; either way the promise allows it.
//!
//! # Watched keys
//!
//! Every change to a key goes through one of five functions: `write` (every `SET`-like
//! write), `set_deadline` (`EXPIRE` and writes with a TTL), `persist`, `forget` (every
//! removal: `DEL`, lazy and active expiry, `RANDOMKEY` meeting an expired key) and `clear`
//! (`FLUSHALL`). Each tells `Watches` which key changed, so `WATCH` (see `watch.rs`) sees every
//! change without the commands having to remember it.

use std::mem::size_of;
use std::time::{Duration, Instant};

use super::entry::Entry;
use super::table::{self, Keyed, Table};

use super::resp::parse_int;
use super::watch::Watches;

/// Keys with a TTL examined per active-expiry round (Redis's
/// `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub const EXPIRE_SAMPLE: usize = 20;
/// Rounds per active-expiry pass at most: Redis bounds a pass by time (25 ms); a sans-I/O
/// store cannot read a clock, so it bounds by work instead: at most 16 × 20 keys per tick.
pub const EXPIRE_MAX_ROUNDS: usize = 16;

/// One step of Marsaglia's xorshift64: a fast, small pseudo-random generator (never 0 from a
/// non-zero state). `RANDOMKEY` uses it; so do the tests, to be reproducible.
pub(super) fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// What a write does to the key's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Remove any TTL (plain `SET`, `MSET`).
    Clear,
    /// Leave the TTL as it was (`SET … KEEPTTL`, `INCR`).
    Keep,
    /// Expire at this instant.
    At(Instant),
}

/// Why an `INCRBY`-style update failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrError {
    /// The stored value is not a decimal integer in `i64` range.
    NotAnInteger,
    /// The result would not fit in an `i64`.
    Overflow,
}

/// Estimated bookkeeping bytes of one entry beyond its key and value bytes (see
/// [`table::overhead`]).
const ENTRY_OVERHEAD: usize = table::overhead::<Entry>();
/// Extra bytes of a key with a TTL: its hash in `ttl_keys`.
const TTL_OVERHEAD: usize = size_of::<u64>();

/// The most keys the service lets the keyspace hold, 2³¹ (`KvConfig::max_keys` is capped at
/// it): half the table's 2³² − 1 positions (`table::MAX_LEN`). The limit is checked before a
/// command runs, so one last command or transaction may go past it, but by less than 2³⁰
/// keys: its arguments, at least a byte a key, are bounded by the query buffer limit, itself
/// capped at 1 GiB (`kv::MAX_QUERY`). So the table's own limit is never reached.
pub const MAX_KEYS: usize = 1 << 31;

/// The keyspace (Redis's db 0; there is only one).
#[derive(Debug, Default)]
pub struct Store {
    map: Table<Entry>,
    /// The hash of every key that has an expiry, for active sampling; the entry records its
    /// index here (`ttl_slot`), so hash and index find it (see `table.rs`).
    ttl_keys: Vec<u64>,
    /// Where the next active-expiry sample starts in `ttl_keys`.
    cursor: usize,
    used: usize,
    /// Reads that found their key (`keyspace_hits`).
    pub hits: u64,
    /// Reads that did not (`keyspace_misses`).
    pub misses: u64,
    /// Keys removed because their TTL passed, lazily or actively (`expired_keys`).
    pub expired: u64,
    /// Who `WATCH`es which key.
    watches: Watches,
    /// `RANDOMKEY`'s xorshift state (0: not seeded yet).
    rng: u64,
    /// Estimated mean time to live of keys with a TTL, in milliseconds (`INFO`'s `avg_ttl`).
    avg_ttl_ms: u64,
}

impl Store {
    /// An empty keyspace.
    pub fn new() -> Self {
        Store::default()
    }

    /// Number of keys, counting expired ones not yet removed (as Redis's `DBSIZE` does).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there are no keys at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of keys with a TTL.
    pub fn expires_len(&self) -> usize {
        self.ttl_keys.len()
    }

    /// Our estimate of the bytes the keyspace holds (see the module docs).
    pub fn used_memory(&self) -> usize {
        self.used
    }

    /// What [`Store::used_memory`] charges `key`, or `None` if there is no such key. Like
    /// Redis's `MEMORY USAGE`, it neither counts a hit nor expires the key.
    pub fn memory_usage(&self, key: &[u8]) -> Option<usize> {
        let entry = self.map.get(key)?;
        let ttl = if entry.deadline.is_some() { TTL_OVERHEAD } else { 0 };
        Some(entry.allocated() + ENTRY_OVERHEAD + ttl)
    }

    /// Reads a value, counting a hit or a miss.
    pub fn get(&mut self, key: &[u8], now: Instant) -> Option<&[u8]> {
        let hash = self.lookup(key, now);
        match self.map.find(hash, |e| e.key() == key) {
            Some(entry) => {
                self.hits += 1;
                Some(entry.value())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Reads a value without counting a hit or a miss (a read made in order to write, like
    /// `RENAME`'s, Redis's `lookupKeyWrite`).
    pub fn peek(&mut self, key: &[u8], now: Instant) -> Option<&[u8]> {
        let hash = self.lookup(key, now);
        self.map.find(hash, |e| e.key() == key).map(Entry::value)
    }

    /// The value at `key` as it is, without expiring it or counting a hit or miss: for a
    /// command that has just looked all its keys up with [`Store::get`] and now reads several
    /// values at once (`BITOP`, `LCS`), which needs shared borrows.
    pub fn value_in_place(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(key).map(Entry::value)
    }

    /// A live key picked at random (`RANDOMKEY`), or `None` if there is none. An expired key
    /// that the pick lands on is removed on the way, as a read would, and the pick is made
    /// again: each try either returns or shrinks the keyspace, so this ends.
    ///
    /// The generator is seeded once, with `seed` (the caller passes the wall clock's
    /// nanoseconds): random from run to run, yet the same picks for the same clock, which the
    /// tests and the fuzz check (two runs of one input must agree) rely on.
    pub fn random_key(&mut self, now: Instant, seed: u64) -> Option<&[u8]> {
        if self.rng == 0 {
            self.rng = seed | 1;
        }
        loop {
            if self.map.is_empty() {
                return None;
            }
            let pos = (xorshift(&mut self.rng) % self.map.len() as u64) as usize;
            if self.map.at(pos).is_some_and(|entry| !entry.expired(now)) {
                // Looked up again to return it: a borrow returned from inside a loop that goes
                // on to mutate the map is what the borrow checker cannot yet accept.
                return self.map.at(pos).map(Keyed::key);
            }
            if let Some(entry) = self.map.remove_at(pos) {
                self.forget(entry);
                self.expired += 1;
            }
        }
    }

    /// True when `key` exists, counting a hit or a miss.
    pub fn exists(&mut self, key: &[u8], now: Instant) -> bool {
        self.get(key, now).is_some()
    }

    /// True when `key` exists, without counting a hit or miss (a lookup made in order to
    /// write, like Redis's `lookupKeyWrite`).
    pub fn contains(&mut self, key: &[u8], now: Instant) -> bool {
        let hash = self.lookup(key, now);
        self.map.find(hash, |e| e.key() == key).is_some()
    }

    /// The key's deadline, without counting a hit or miss: `None` if there is no such key,
    /// `Some(None)` if it has no TTL.
    pub fn deadline(&mut self, key: &[u8], now: Instant) -> Option<Option<Instant>> {
        let hash = self.lookup(key, now);
        self.map.find(hash, |e| e.key() == key).map(|e| e.deadline)
    }

    /// Writes `value` under `key`, with `ttl` deciding the expiry.
    pub fn set(&mut self, key: &[u8], value: &[u8], ttl: Ttl, now: Instant) {
        let hash = self.lookup(key, now);
        self.write(hash, key, value, ttl, false);
    }

    /// [`Store::set`] for a value that `OBJECT ENCODING` calls `raw` whatever it holds, as
    /// Redis stores it (`BITOP`'s result; what `RENAME` and `COPY` carry from an edited value;
    /// see `entry.rs`, "Edited values").
    pub fn set_edited(&mut self, key: &[u8], value: &[u8], ttl: Ttl, now: Instant) {
        let hash = self.lookup(key, now);
        self.write(hash, key, value, ttl, true);
    }

    /// `OBJECT`'s read: the value and whether it was edited in place since it was last written
    /// whole (see `entry.rs`), counting a hit or a miss as Redis's `OBJECT` does.
    pub fn object(&mut self, key: &[u8], now: Instant) -> Option<(&[u8], bool)> {
        let hash = self.lookup(key, now);
        match self.map.find(hash, |e| e.key() == key) {
            Some(entry) => {
                self.hits += 1;
                Some((entry.value(), entry.edited()))
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Whether the value at `key` was edited in place (see [`Store::object`]), for a command
    /// that has just looked the key up and copies its value (`RENAME`, `COPY`).
    pub fn edited(&self, key: &[u8]) -> bool {
        self.map.get(key).is_some_and(Entry::edited)
    }

    /// Deletes `key`; true if it existed (an expired key did not).
    pub fn remove(&mut self, key: &[u8], now: Instant) -> bool {
        let hash = self.lookup(key, now);
        self.delete(hash, key)
    }

    /// The key's remaining time to live: `None` if there is no such key, `Some(None)` if it
    /// has no TTL.
    pub fn ttl(&mut self, key: &[u8], now: Instant) -> Option<Option<Duration>> {
        let hash = self.lookup(key, now);
        let entry = self.map.find(hash, |e| e.key() == key);
        match entry {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        entry.map(|e| e.deadline.map(|at| at.saturating_duration_since(now)))
    }

    /// Sets an existing key's deadline; false if there is no such key.
    pub fn expire_at(&mut self, key: &[u8], at: Instant, now: Instant) -> bool {
        let hash = self.lookup(key, now);
        self.set_deadline(hash, key, at)
    }

    /// Removes the key's TTL; true if it had one.
    pub fn persist(&mut self, key: &[u8], now: Instant) -> bool {
        let hash = self.lookup(key, now);
        let had = self.clear_deadline(hash, key);
        if had {
            self.watches.touch(key);
        }
        had
    }

    /// `APPEND`: adds `tail` to the value at `key` (a new key if there is none), keeping its
    /// TTL, unless the result would be longer than `max_len`; returns the new length, or
    /// `None` (nothing changed) if it would be too long. The value grows in place, greedily
    /// (see `entry.rs`), so appends cost amortized O(1), not a copy of the value each.
    pub fn append(&mut self, key: &[u8], tail: &[u8], max_len: usize, now: Instant) -> Option<usize> {
        let hash = self.lookup(key, now);
        let len = self.map.find(hash, |e| e.key() == key).map_or(0, |e| e.value().len());
        let new_len = len.checked_add(tail.len()).filter(|&n| n <= max_len)?;
        // A key APPEND creates is stored as SET would store it; one it extends is edited.
        self.change_value(hash, key, new_len, false, |value, _| {
            value[len..].copy_from_slice(tail);
            true
        });
        Some(new_len)
    }

    /// `SETRANGE`'s write: `piece` at `offset` of the value at `key` (a new key if there is
    /// none), zeros between the old end and `offset`, keeping the TTL; returns the new length.
    /// The caller has checked `offset + piece.len()` against the size limit.
    pub fn set_range(&mut self, key: &[u8], offset: usize, piece: &[u8], now: Instant) -> usize {
        let hash = self.lookup(key, now);
        let end = offset + piece.len();
        let mut new_len = end;
        // Grown to `end` if shorter; a longer value keeps its length.
        self.change_value(hash, key, end, true, |value, _| {
            value[offset..end].copy_from_slice(piece);
            new_len = value.len();
            true
        });
        new_len
    }

    /// `SETBIT`: sets (`on`) or clears bit `offset` of the value at `key` (bit 0 is the most
    /// significant bit of the first byte), growing it with zero bytes to reach it, creating the
    /// key if there is none; keeps the TTL. Returns the bit's old value. The caller has checked
    /// `offset / 8` against the size limit.
    pub fn set_bit(&mut self, key: &[u8], offset: usize, on: bool, now: Instant) -> bool {
        let hash = self.lookup(key, now);
        let (byte, mask) = (offset / 8, 0x80 >> (offset % 8));
        let mut was = false;
        self.change_value(hash, key, byte + 1, true, |value, grown| {
            was = value[byte] & mask != 0;
            if on {
                value[byte] |= mask;
            } else {
                value[byte] &= !mask;
            }
            grown || was != on
        });
        was
    }

    /// `BITFIELD`'s write: makes the value at `key` at least `len` bytes long (zeros added; a
    /// missing key is created), then lets `change` edit it in place; keeps the TTL. `change` is
    /// told whether the key was created or grown, and answers whether `WATCH` should see a
    /// change.
    pub fn modify(
        &mut self,
        key: &[u8],
        len: usize,
        now: Instant,
        change: impl FnOnce(&mut [u8], bool) -> bool,
    ) {
        let hash = self.lookup(key, now);
        self.change_value(hash, key, len, true, change);
    }

    /// Calls `change` with the value at `key` (`hash` is its hash) made at least `len` bytes
    /// long (zeros added), to change in place; a missing key is first created with `len` zero
    /// bytes, exactly (a new key's value is as likely to stay as it is as to grow). `change`
    /// is told whether the key was created or grown, and answers whether that counts as a
    /// change for `WATCH` (Redis signals a SETBIT or BITFIELD only when something changed).
    /// An existing value comes out edited (see `entry.rs`), as a new one does if `edit_new`.
    fn change_value(
        &mut self,
        hash: u64,
        key: &[u8],
        len: usize,
        edit_new: bool,
        change: impl FnOnce(&mut [u8], bool) -> bool,
    ) {
        let created = self.map.find(hash, |e| e.key() == key).is_none();
        if created && !self.insert(hash, Entry::zeroed(key, len, edit_new)) {
            return;
        }
        // Found: it was there, or has just been inserted.
        let Some(entry) = self.map.find_mut(hash, |e| e.key() == key) else {
            return;
        };
        let (before, old_len) = (entry.allocated(), entry.value().len());
        let value = if created { entry.value_mut() } else { entry.edit_value(len) };
        let grown = created || value.len() > old_len;
        let changed = change(value, grown);
        self.used = self.used - before + entry.allocated();
        if changed {
            self.watches.touch(key);
        }
    }

    /// Adds `delta` to the integer stored at `key` (0 if absent), keeping its TTL. Returns the
    /// new value.
    pub fn incr_by(&mut self, key: &[u8], delta: i64, now: Instant) -> Result<i64, IncrError> {
        let hash = self.lookup(key, now);
        let current = match self.map.find(hash, |e| e.key() == key) {
            Some(entry) => parse_int(entry.value()).ok_or(IncrError::NotAnInteger)?,
            None => 0,
        };
        let new = current.checked_add(delta).ok_or(IncrError::Overflow)?;
        let mut text = Vec::with_capacity(20);
        super::reply::decimal(&mut text, new);
        self.write(hash, key, &text, Ttl::Keep, false);
        Ok(new)
    }

    /// Calls `f` with every live key (expired ones not yet removed are skipped).
    pub fn for_each_key(&self, now: Instant, mut f: impl FnMut(&[u8])) {
        for entry in self.map.iter() {
            if !entry.expired(now) {
                f(entry.key());
            }
        }
    }

    /// One step of a `SCAN` walk (see the module docs): calls `f` with each live key among the
    /// next `count` entries below `cursor` (0 starts a walk), and returns the cursor to pass
    /// next time, 0 when the walk is over. A cursor from before the keyspace shrank simply
    /// resumes at its top.
    pub fn scan(&self, cursor: u64, count: usize, now: Instant, mut f: impl FnMut(&[u8])) -> u64 {
        let len = self.map.len();
        let top = match usize::try_from(cursor) {
            Ok(0) => len,
            Ok(position) => position.min(len),
            Err(_) => len,
        };
        let bottom = top.saturating_sub(count.max(1));
        for index in (bottom..top).rev() {
            if let Some(entry) = self.map.at(index)
                && !entry.expired(now)
            {
                f(entry.key());
            }
        }
        bottom as u64
    }

    /// Deletes every key (`FLUSHALL`). Counters are kept. A watched key that existed has
    /// changed; one that did not, has not (as in Redis).
    pub fn clear(&mut self) {
        let existed: Vec<Box<[u8]>> =
            self.watches.watched().filter(|key| self.map.contains_key(key)).map(Box::from).collect();
        for key in existed {
            self.watches.touch(&key);
        }
        self.map = Table::new();
        self.ttl_keys = Vec::new();
        self.avg_ttl_ms = 0;
        self.cursor = 0;
        self.used = 0;
    }

    /// `INFO`'s `avg_ttl`: the mean time to live, in milliseconds, of the keys that active
    /// expiry sampled, smoothed over passes as Redis smooths it (each pass moves the estimate
    /// a fiftieth of the way); 0 before any sample, and whenever no key has a TTL.
    pub fn avg_ttl_ms(&self) -> u64 {
        if self.ttl_keys.is_empty() { 0 } else { self.avg_ttl_ms }
    }

    /// One pass of active expiry (see the module docs). Returns how many keys it removed.
    pub fn active_expire(&mut self, now: Instant) -> usize {
        let mut removed = 0;
        // Remaining lifetimes of the sampled keys that live on, for `avg_ttl`.
        let (mut ttl_sum, mut ttl_samples) = (0u64, 0u64);
        for _ in 0..EXPIRE_MAX_ROUNDS {
            let sample = EXPIRE_SAMPLE.min(self.ttl_keys.len());
            if sample == 0 {
                break;
            }
            let mut expired_in_sample = 0;
            for _ in 0..sample {
                if self.cursor >= self.ttl_keys.len() {
                    self.cursor = 0;
                }
                let (slot, Some(&hash)) = (self.cursor, self.ttl_keys.get(self.cursor)) else {
                    break;
                };
                let deadline = self.map.find(hash, |e| e.listed_at(slot)).and_then(|e| e.deadline);
                let due = deadline.is_some_and(|at| now > at);
                if due {
                    // Unlisting swap-removes this slot, moving the last listed key into it
                    // (one not yet examined in this lap), so the cursor stays where it is.
                    if let Some(entry) = self.map.remove_found(hash, |e| e.listed_at(slot)) {
                        self.forget(entry);
                    }
                    self.expired += 1;
                    expired_in_sample += 1;
                } else {
                    if let Some(at) = deadline {
                        let left = at.saturating_duration_since(now).as_millis();
                        ttl_sum = ttl_sum.saturating_add(u64::try_from(left).unwrap_or(u64::MAX));
                        ttl_samples += 1;
                    }
                    self.cursor += 1;
                }
            }
            removed += expired_in_sample;
            // Stop once at most a quarter of a sample was expired: the rest is probably live.
            if expired_in_sample * 4 <= sample {
                break;
            }
        }
        // Redis's activeExpireCycle: start at the first pass's mean, then move by 1/50.
        if let Some(mean) = ttl_sum.checked_div(ttl_samples) {
            if self.avg_ttl_ms == 0 {
                self.avg_ttl_ms = mean;
            }
            self.avg_ttl_ms = self.avg_ttl_ms / 50 * 49 + mean / 50;
        }
        removed
    }

    /// `client` watches `key` (`WATCH`). A key already past its deadline is removed first:
    /// that expiry happened before the watch, so it must not count as a change after it.
    pub fn watch(&mut self, client: u64, key: &[u8], now: Instant) {
        self.lookup(key, now);
        self.watches.watch(client, key);
    }

    /// A key `client` watches has changed since (Redis's `CLIENT_DIRTY_CAS`, `CLIENT LIST`'s
    /// `d` flag): its `EXEC` will fail. (A key past its deadline but not yet expired by an
    /// access is not counted here; `unwatch` counts it.)
    pub fn watch_dirty(&self, client: u64) -> bool {
        !self.watches.is_empty() && self.watches.is_dirty(client)
    }

    /// How many distinct keys are watched by anyone (for tests and diagnostics).
    pub fn watched_keys(&self) -> usize {
        self.watches.watched().count()
    }

    /// What the keys `client` watches cost, their bytes and bookkeeping (bounded by the
    /// caller, like a transaction).
    pub fn watched_bytes(&self, client: u64) -> usize {
        self.watches.bytes(client)
    }

    /// Ends `client`'s watch (at `EXEC`, `DISCARD`, `UNWATCH`, or when it disconnects) and
    /// says whether every key it watched is unchanged. A watched key whose deadline has passed
    /// by `now` counts as changed even if nobody has touched it since (Redis 7 checks this at
    /// `EXEC` too), so it is expired here.
    pub fn unwatch(&mut self, client: u64, now: Instant) -> bool {
        if self.watches.is_empty() {
            return true;
        }
        let keys: Vec<Box<[u8]>> = self.watches.keys(client).map(Box::from).collect();
        for key in &keys {
            self.lookup(key, now);
        }
        let unchanged = !self.watches.is_dirty(client);
        self.watches.unwatch(client);
        unchanged
    }

    /// Every command's first step: lazy expiry (deletes `key` if its deadline has passed, so
    /// that no command ever sees an expired key). Returns the key's hash, which the caller's
    /// next lookups take instead of hashing the key again.
    ///
    /// The caller then probes the table again for the key: the borrow checker cannot yet
    /// accept one probe that either returns the entry or, if it is due, deletes it. The second
    /// probe finds its cache lines warm: skipping the first while no key has a deadline made
    /// no measurable difference to GETs over a million keys (1.01x, 5 rounds), so it is not.
    fn lookup(&mut self, key: &[u8], now: Instant) -> u64 {
        let hash = self.map.hash(key);
        if self.map.find(hash, |e| e.key() == key).is_some_and(|e| e.expired(now)) {
            self.delete(hash, key);
            self.expired += 1;
        }
        hash
    }

    /// `set`, for a key already looked up (`hash` is its hash); `edited` as for
    /// [`Store::set_edited`].
    fn write(&mut self, hash: u64, key: &[u8], value: &[u8], ttl: Ttl, edited: bool) {
        self.watches.touch(key);
        match self.map.find_mut(hash, |e| e.key() == key) {
            Some(entry) => {
                let before = entry.allocated();
                entry.set_value(value, edited);
                self.used = self.used - before + entry.allocated();
            }
            None => {
                if !self.insert(hash, Entry::new(key, value, edited)) {
                    return;
                }
            }
        }
        match ttl {
            Ttl::Keep => {}
            Ttl::Clear => {
                self.clear_deadline(hash, key);
            }
            Ttl::At(at) => {
                self.set_deadline(hash, key, at);
            }
        }
    }

    /// Adds a new key's entry (`hash` is its key's hash), charging its memory; false if the
    /// table is full, which cannot happen while the service refuses writes past MAX_KEYS.
    fn insert(&mut self, hash: u64, entry: Entry) -> bool {
        let cost = entry.allocated() + ENTRY_OVERHEAD;
        if self.map.insert_new(hash, entry).is_err() {
            log::error!("kv: the keyspace is full ({} keys): a key was not stored", self.map.len());
            return false;
        }
        self.used += cost;
        true
    }

    fn delete(&mut self, hash: u64, key: &[u8]) -> bool {
        // The last key moves to this one's position: the one change of order `scan` allows for.
        let Some(entry) = self.map.remove_found(hash, |e| e.key() == key) else {
            return false;
        };
        self.forget(entry);
        true
    }

    /// The bookkeeping of a key just removed from the table: memory, the TTL list, watches.
    fn forget(&mut self, entry: Entry) {
        self.used -= entry.allocated() + ENTRY_OVERHEAD;
        if entry.deadline.is_some() {
            self.unlist(entry.ttl_slot);
        }
        self.watches.touch(entry.key());
    }

    /// Gives the key (`hash` is its hash) a deadline, listing it in `ttl_keys` if it had
    /// none; false if there is no such key.
    fn set_deadline(&mut self, hash: u64, key: &[u8], at: Instant) -> bool {
        let Some(entry) = self.map.find_mut(hash, |e| e.key() == key) else {
            return false;
        };
        if entry.deadline.is_none() {
            // At most one listed key per table entry, so the slot fits in u32 as positions do.
            entry.ttl_slot = self.ttl_keys.len() as u32;
            self.ttl_keys.push(hash);
            self.used += TTL_OVERHEAD;
        }
        entry.deadline = Some(at);
        self.watches.touch(key);
        true
    }

    /// Takes the key's deadline away, unlisting it; true if it had one.
    fn clear_deadline(&mut self, hash: u64, key: &[u8]) -> bool {
        let Some(entry) = self.map.find_mut(hash, |e| e.key() == key).filter(|e| e.deadline.is_some()) else {
            return false;
        };
        entry.deadline = None;
        let slot = entry.ttl_slot;
        self.unlist(slot);
        true
    }

    /// Removes `ttl_keys[slot]` (its entry has just lost its deadline, or gone), moving the
    /// last listed hash into its place and telling that key's entry where it went.
    fn unlist(&mut self, slot: u32) {
        let slot = slot as usize;
        if slot >= self.ttl_keys.len() {
            return;
        }
        let last = self.ttl_keys.len() - 1;
        self.ttl_keys.swap_remove(slot);
        self.used -= TTL_OVERHEAD;
        if let Some(&moved) = self.ttl_keys.get(slot)
            && let Some(entry) = self.map.find_mut(moved, |e| e.listed_at(last))
        {
            entry.ttl_slot = slot as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout the docs count on: an entry of 40 bytes, so a key's bookkeeping is 49 bytes
    /// with its control byte and hash.
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    #[test]
    fn an_entry_is_40_bytes_and_a_key_costs_49_with_its_control_byte_and_hash() {
        assert_eq!(size_of::<Entry>(), 40);
        assert_eq!(ENTRY_OVERHEAD, 40 + 1 + 8);
    }

    #[test]
    fn ttl_list_stays_consistent_and_memory_returns_to_zero() {
        let now = Instant::now();
        let mut s = Store::new();
        for i in 0..100u32 {
            let key = i.to_string();
            let ttl = if i % 2 == 0 { Ttl::At(now + Duration::from_secs(u64::from(i))) } else { Ttl::Clear };
            s.set(key.as_bytes(), b"value", ttl, now);
        }
        assert_eq!(s.expires_len(), 50);
        for i in (0..100u32).step_by(3) {
            s.remove(i.to_string().as_bytes(), now);
        }
        for i in (0..100u32).step_by(5) {
            s.persist(i.to_string().as_bytes(), now);
        }
        // Every listed hash finds exactly one entry that points back at its slot, and every
        // key with a deadline is listed.
        for (slot, &hash) in s.ttl_keys.iter().enumerate() {
            let entry = s.map.find(hash, |e| e.listed_at(slot)).expect("a listed key's entry");
            assert_eq!(s.map.hash(entry.key()), hash);
        }
        assert_eq!(s.map.iter().filter(|e| e.deadline.is_some()).count(), s.expires_len());
        let keys: Vec<Vec<u8>> = s.map.iter().map(|e| e.key().to_vec()).collect();
        for key in keys {
            s.remove(&key, now);
        }
        assert_eq!(s.used_memory(), 0);
        assert_eq!(s.expires_len(), 0);
    }

    /// Redis's SCAN promise, under writes between calls: a key present for the whole walk is
    /// returned at least once; nothing is returned that never existed. Many walks, each with
    /// pseudo-random inserts and deletes between its steps (deletes move the last entry, the
    /// case the downward walk exists for).
    #[test]
    fn a_scan_walk_returns_every_key_that_stayed_despite_writes_between_calls() {
        let now = Instant::now();
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| xorshift(&mut rng) % n;
        let mut fresh = 0u64;
        for walk in 0..200 {
            let mut s = Store::new();
            let start = 1 + next(300);
            for _ in 0..start {
                fresh += 1;
                s.set(fresh.to_string().as_bytes(), b"v", Ttl::Clear, now);
            }
            let mut stayed: std::collections::HashSet<Vec<u8>> =
                s.map.iter().map(|e| e.key().to_vec()).collect();
            let mut ever: std::collections::HashSet<Vec<u8>> = stayed.clone();
            let mut seen = std::collections::HashSet::new();
            let mut cursor = 0;
            loop {
                let count = 1 + next(20) as usize;
                cursor = s.scan(cursor, count, now, |key| {
                    seen.insert(key.to_vec());
                });
                if cursor == 0 {
                    break;
                }
                for _ in 0..next(6) {
                    if next(2) == 0 && !s.is_empty() {
                        let index = next(s.len() as u64) as usize;
                        let key = s.map.at(index).map(|e| e.key().to_vec()).unwrap_or_default();
                        s.remove(&key, now);
                        stayed.remove(&key);
                    } else {
                        fresh += 1;
                        s.set(fresh.to_string().as_bytes(), b"v", Ttl::Clear, now);
                        ever.insert(fresh.to_string().into_bytes());
                    }
                }
            }
            let missed: Vec<_> = stayed.difference(&seen).collect();
            assert!(missed.is_empty(), "walk {walk}: missed {missed:?}");
            assert!(seen.is_subset(&ever), "walk {walk}: returned a key that never existed");
        }
    }

    #[test]
    fn a_scan_skips_expired_keys_and_a_stale_cursor_resumes_inside_the_keyspace() {
        let now = Instant::now();
        let mut s = Store::new();
        for i in 0..10u32 {
            let ttl = if i < 5 { Ttl::At(now) } else { Ttl::Clear };
            s.set(i.to_string().as_bytes(), b"v", ttl, now);
        }
        let later = now + Duration::from_millis(1);
        let mut seen = Vec::new();
        assert_eq!(s.scan(0, 100, later, |k| seen.push(k.to_vec())), 0);
        seen.sort();
        assert_eq!(seen, (5..10u32).map(|i| i.to_string().into_bytes()).collect::<Vec<_>>());
        // A cursor beyond the keyspace (it shrank, or the client made one up) starts at its top.
        let mut n = 0;
        assert_eq!(s.scan(u64::MAX, 3, now, |_| n += 1), 7);
        assert_eq!(n, 3);
        assert_eq!(Store::new().scan(0, 10, now, |_| n += 1), 0);
    }

    #[test]
    fn a_random_key_is_never_an_expired_one_and_expired_ones_it_meets_are_removed() {
        let now = Instant::now();
        let mut s = Store::new();
        for i in 0..50u32 {
            let ttl = if i % 10 == 0 { Ttl::Clear } else { Ttl::At(now) };
            s.set(i.to_string().as_bytes(), b"v", ttl, now);
        }
        let later = now + Duration::from_millis(1);
        let mut live = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let key = s.random_key(later, 7).map(<[u8]>::to_vec).unwrap_or_default();
            live.insert(String::from_utf8(key).unwrap_or_default());
        }
        assert_eq!(live, ["0", "10", "20", "30", "40"].map(String::from).into());
        // Each expired key it met was removed and counted; the others are still listed.
        assert!(s.expired > 0);
        assert_eq!(s.expired as usize + s.expires_len(), 45);
        // Once every key is expired there is none to give, and none is left behind.
        for key in ["0", "10", "20", "30", "40"] {
            s.set(key.as_bytes(), b"v", Ttl::At(later), later);
        }
        assert_eq!(s.random_key(later + Duration::from_millis(1), 7), None);
        assert!(s.is_empty());
    }

    #[test]
    fn avg_ttl_estimates_the_remaining_lifetime_of_keys_with_a_ttl() {
        let now = Instant::now();
        let mut s = Store::new();
        for i in 0..10u32 {
            s.set(i.to_string().as_bytes(), b"v", Ttl::At(now + Duration::from_secs(10)), now);
        }
        s.set(b"no ttl", b"v", Ttl::Clear, now);
        assert_eq!(s.avg_ttl_ms(), 0, "no sample yet");
        s.active_expire(now);
        // The first pass starts at the mean (10 s), then moves 1/50 of the way: about 10 s.
        assert!((9_700..=10_000).contains(&s.avg_ttl_ms()), "{}", s.avg_ttl_ms());
        // Later passes follow the keys' remaining time down, slowly.
        for _ in 0..200 {
            s.active_expire(now + Duration::from_secs(5));
        }
        assert!((5_000..6_000).contains(&s.avg_ttl_ms()), "{}", s.avg_ttl_ms());
        s.clear();
        assert_eq!(s.avg_ttl_ms(), 0);
    }

    #[test]
    fn memory_usage_is_what_used_memory_charges_the_key() {
        let now = Instant::now();
        let mut s = Store::new();
        s.set(b"plain", b"value", Ttl::Clear, now);
        s.set(b"timed", b"value", Ttl::At(now + Duration::from_secs(9)), now);
        let plain = s.memory_usage(b"plain").unwrap_or_default();
        let timed = s.memory_usage(b"timed").unwrap_or_default();
        assert_eq!(plain + timed, s.used_memory());
        assert_eq!(timed - plain, TTL_OVERHEAD);
        assert_eq!(s.memory_usage(b"none"), None);
    }

    #[test]
    fn active_expiry_is_bounded_per_pass() {
        let now = Instant::now();
        let mut s = Store::new();
        for i in 0..1000u32 {
            s.set(i.to_string().as_bytes(), b"v", Ttl::At(now), now);
        }
        let later = now + Duration::from_millis(1);
        assert_eq!(s.active_expire(later), EXPIRE_SAMPLE * EXPIRE_MAX_ROUNDS);
        while s.active_expire(later) > 0 {}
        assert!(s.is_empty());
        assert_eq!(s.expired, 1000);
    }

    /// Checks every invariant the store's bookkeeping rests on: positions are a permutation
    /// of 0..len, each entry found by its position; every listed TTL hash finds exactly the
    /// entry that points back at its slot and has its key's hash; every entry with a deadline
    /// is listed; `used` is the sum of `memory_usage` over the keys.
    fn check_invariants(s: &Store) {
        let len = s.map.len();
        assert_eq!(s.map.iter().count(), len, "entries and positions disagree on the count");
        let mut seen = std::collections::HashSet::new();
        for pos in 0..len {
            let e = s.map.at(pos).expect("an entry at every position below len");
            assert_eq!(e.position() as usize, pos);
            assert!(seen.insert(e.key().to_vec()), "two positions hold one key");
            assert!(std::ptr::eq(s.map.get(e.key()).expect("found by key"), e));
        }
        assert!(s.map.at(len).is_none());
        for (slot, &hash) in s.ttl_keys.iter().enumerate() {
            let claimed: Vec<&Entry> = s.map.iter().filter(|e| e.listed_at(slot)).collect();
            assert_eq!(claimed.len(), 1, "slot {slot} is claimed by {} entries", claimed.len());
            assert_eq!(s.map.hash(claimed[0].key()), hash, "slot {slot} lists another key's hash");
            assert!(s.map.find(hash, |e| e.listed_at(slot)).is_some());
        }
        let mut used = 0;
        for e in s.map.iter() {
            if e.deadline.is_some() {
                let slot = e.ttl_slot as usize;
                assert!(slot < s.ttl_keys.len(), "a deadline without a slot");
                assert_eq!(s.ttl_keys[slot], s.map.hash(e.key()));
            }
            used += s.memory_usage(e.key()).expect("every entry has a usage");
        }
        assert_eq!(s.map.iter().filter(|e| e.deadline.is_some()).count(), s.ttl_keys.len());
        assert_eq!(used, s.used_memory(), "used_memory is not the sum of MEMORY USAGE");
    }

    /// A long random mix of every write (SET with and without TTL or KEEPTTL, DEL, PERSIST,
    /// EXPIRE, RENAME as the command does it, INCR, APPEND, SETRANGE, RANDOMKEY, active expiry,
    /// FLUSHALL) under a
    /// moving clock, checked against a `HashMap` model after every step, with the invariants
    /// of `check_invariants`.
    #[test]
    fn behaves_as_a_model_keyspace_and_keeps_its_bookkeeping_in_step() {
        type Model = std::collections::HashMap<Vec<u8>, (Vec<u8>, Option<Instant>)>;
        let live = |m: &Model, k: &[u8], now: Instant| -> Option<(Vec<u8>, Option<Instant>)> {
            m.get(k).filter(|(_, d)| !d.is_some_and(|at| now > at)).cloned()
        };
        let start = Instant::now();
        for seed in 1..=10u64 {
            let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut next = move |n: u64| xorshift(&mut rng) % n;
            let mut s = Store::new();
            let mut m: Model = Model::new();
            let mut now = start;
            for step in 0..5_000 {
                // Mostly short keys; now and then one past 127 bytes (a two-byte length).
                let key =
                    format!("k{}{}", next(60), "-".repeat(if next(8) == 0 { 130 } else { 0 })).into_bytes();
                let value = vec![b'a' + next(26) as u8; next(4) as usize];
                let ms = |n: u64| Duration::from_millis(n);
                match next(20) {
                    0..=2 => {
                        let ttl = match next(3) {
                            0 => Ttl::Clear,
                            1 => Ttl::Keep,
                            _ => Ttl::At(now + ms(next(10))),
                        };
                        let old = live(&m, &key, now);
                        let deadline = match ttl {
                            Ttl::Clear => None,
                            Ttl::Keep => old.and_then(|(_, d)| d),
                            Ttl::At(at) => Some(at),
                        };
                        s.set(&key, &value, ttl, now);
                        m.insert(key.clone(), (value, deadline));
                    }
                    3 => {
                        let was = live(&m, &key, now).is_some();
                        m.remove(&key);
                        assert_eq!(s.remove(&key, now), was, "step {step}");
                    }
                    4 => {
                        let had = live(&m, &key, now).is_some_and(|(_, d)| d.is_some());
                        if had && let Some(e) = m.get_mut(&key) {
                            e.1 = None;
                        }
                        assert_eq!(s.persist(&key, now), had, "step {step}");
                    }
                    5 | 6 => {
                        let at = now + ms(next(10));
                        let exists = live(&m, &key, now).is_some();
                        if exists && let Some(e) = m.get_mut(&key) {
                            e.1 = Some(at);
                        }
                        assert_eq!(s.expire_at(&key, at, now), exists, "step {step}");
                    }
                    7 => {
                        // RENAME, as `keyspace::rename_generic` does it.
                        let to = format!("k{}", next(60)).into_bytes();
                        let from = live(&m, &key, now);
                        assert_eq!(s.deadline(&key, now), from.as_ref().map(|e| e.1), "step {step}");
                        if let Some((v, d)) = from
                            && key != to
                        {
                            let got = s.peek(&key, now).map(<[u8]>::to_vec);
                            assert_eq!(got.as_ref(), Some(&v));
                            s.remove(&key, now);
                            s.set(&to, &v, d.map_or(Ttl::Clear, Ttl::At), now);
                            m.remove(&key);
                            m.insert(to, (v, d));
                        }
                    }
                    8 => {
                        let expect = live(&m, &key, now).map(|e| e.0);
                        assert_eq!(s.get(&key, now).map(<[u8]>::to_vec), expect, "step {step}");
                    }
                    9 => {
                        let old = live(&m, &key, now);
                        let cur = match &old {
                            Some((v, _)) => std::str::from_utf8(v).ok().and_then(|t| t.parse::<i64>().ok()),
                            None => Some(0),
                        };
                        let r = s.incr_by(&key, 1, now);
                        match cur {
                            Some(n) => {
                                assert_eq!(r, Ok(n + 1), "step {step}");
                                m.insert(
                                    key.clone(),
                                    ((n + 1).to_string().into_bytes(), old.and_then(|e| e.1)),
                                );
                            }
                            None => assert_eq!(r, Err(IncrError::NotAnInteger), "step {step}"),
                        }
                    }
                    10 => {
                        let got = s.random_key(now, 7).map(<[u8]>::to_vec);
                        match got {
                            Some(k) => assert!(live(&m, &k, now).is_some(), "step {step}: a dead random key"),
                            None => assert!(m.keys().all(|k| live(&m, k, now).is_none()), "step {step}"),
                        }
                    }
                    11 | 12 => {
                        s.active_expire(now);
                    }
                    13 | 14 => now += ms(next(4)),
                    15 => {
                        // APPEND, sometimes long enough to grow past the spare room.
                        let tail = vec![b'+'; next(40) as usize];
                        let old = live(&m, &key, now);
                        let mut v = old.as_ref().map(|e| e.0.clone()).unwrap_or_default();
                        let max = 100;
                        let got = s.append(&key, &tail, max, now);
                        if v.len() + tail.len() > max {
                            assert_eq!(got, None, "step {step}");
                        } else {
                            v.extend_from_slice(&tail);
                            assert_eq!(got, Some(v.len()), "step {step}");
                            m.insert(key.clone(), (v, old.and_then(|e| e.1)));
                        }
                    }
                    16 => {
                        let (offset, piece) = (next(30) as usize, vec![b'#'; 1 + next(5) as usize]);
                        let old = live(&m, &key, now);
                        let mut v = old.as_ref().map(|e| e.0.clone()).unwrap_or_default();
                        v.resize(v.len().max(offset + piece.len()), 0);
                        v[offset..offset + piece.len()].copy_from_slice(&piece);
                        assert_eq!(s.set_range(&key, offset, &piece, now), v.len(), "step {step}");
                        m.insert(key.clone(), (v, old.and_then(|e| e.1)));
                    }
                    17 => {
                        // SETBIT, growing the value (zeros) to reach the bit.
                        let (offset, on) = (next(300) as usize, next(2) == 1);
                        let old = live(&m, &key, now);
                        let mut v = old.as_ref().map(|e| e.0.clone()).unwrap_or_default();
                        v.resize(v.len().max(offset / 8 + 1), 0);
                        let mask = 0x80u8 >> (offset % 8);
                        let was = v[offset / 8] & mask != 0;
                        if on {
                            v[offset / 8] |= mask;
                        } else {
                            v[offset / 8] &= !mask;
                        }
                        assert_eq!(s.set_bit(&key, offset, on, now), was, "step {step}");
                        m.insert(key.clone(), (v, old.and_then(|e| e.1)));
                    }
                    18 => {
                        // BITFIELD's modify: grow to `len`, then flip the last byte.
                        let len = next(50) as usize;
                        let old = live(&m, &key, now);
                        let mut v = old.as_ref().map(|e| e.0.clone()).unwrap_or_default();
                        v.resize(v.len().max(len), 0);
                        if let Some(b) = v.last_mut() {
                            *b ^= 0x5a;
                        }
                        s.modify(&key, len, now, |value, _| {
                            if let Some(b) = value.last_mut() {
                                *b ^= 0x5a;
                            }
                            true
                        });
                        m.insert(key.clone(), (v, old.and_then(|e| e.1)));
                    }
                    _ => {
                        if next(50) == 0 {
                            s.clear();
                            m.clear();
                        }
                    }
                }
                check_invariants(&s);
                // The live keys agree, with their values and deadlines.
                for e in s.map.iter().filter(|e| !e.expired(now)) {
                    let expect = live(&m, e.key(), now);
                    assert_eq!(expect, Some((e.value().to_vec(), e.deadline)), "seed {seed} step {step}");
                }
                let live_count = m.keys().filter(|k| live(&m, k, now).is_some()).count();
                assert_eq!(
                    s.map.iter().filter(|e| !e.expired(now)).count(),
                    live_count,
                    "seed {seed} step {step}"
                );
            }
        }
    }

    /// Every change to a key dirties a watcher, and what changes nothing does not (from the
    /// second review).
    #[test]
    fn every_change_is_seen_by_a_watcher_and_no_non_change_is() {
        let t0 = Instant::now();
        type Op = fn(&mut Store, Instant);
        let changes: &[(&str, &[u8], Op)] = &[
            ("set new", b"w", |s, now| s.set(b"w", b"1", Ttl::Clear, now)),
            ("set same value", b"k", |s, now| s.set(b"k", b"v", Ttl::Keep, now)),
            ("set with ttl", b"k", |s, now| s.set(b"k", b"v", Ttl::At(now + Duration::from_secs(1)), now)),
            ("incr new", b"w", |s, now| assert_eq!(s.incr_by(b"w", 1, now), Ok(1))),
            ("append", b"k", |s, now| assert_eq!(s.append(b"k", b"+", 10, now), Some(2))),
            ("setrange", b"k", |s, now| assert_eq!(s.set_range(b"k", 0, b"x", now), 1)),
            ("expire", b"k", |s, now| assert!(s.expire_at(b"k", now + Duration::from_secs(1), now))),
            ("persist", b"t", |s, now| assert!(s.persist(b"t", now))),
            ("remove", b"k", |s, now| assert!(s.remove(b"k", now))),
            ("clear", b"k", |s, _| s.clear()),
            ("lazy expiry by get", b"t", |s, now| {
                assert_eq!(s.get(b"t", now + Duration::from_secs(100)), None)
            }),
            ("active expiry", b"t", |s, now| assert_eq!(s.active_expire(now + Duration::from_secs(100)), 1)),
        ];
        let non_changes: &[(&str, Op)] = &[
            ("get", |s, now| assert!(s.get(b"k", now).is_some())),
            ("persist without ttl", |s, now| assert!(!s.persist(b"k", now))),
            ("expire missing", |s, now| assert!(!s.expire_at(b"nope", now, now))),
            ("remove missing", |s, now| assert!(!s.remove(b"nope", now))),
            ("incr not an integer", |s, now| assert!(s.incr_by(b"k", 1, now).is_err())),
            ("append too long", |s, now| assert_eq!(s.append(b"k", b"++", 2, now), None)),
        ];
        let fresh = |watch: &[u8]| {
            let mut s = Store::new();
            s.set(b"k", b"v", Ttl::Clear, t0);
            s.set(b"t", b"v", Ttl::At(t0 + Duration::from_secs(50)), t0);
            s.watch(1, watch, t0);
            s
        };
        for (name, watched, op) in changes {
            let mut s = fresh(watched);
            op(&mut s, t0);
            assert!(!s.unwatch(1, t0), "{name} was not seen");
        }
        for (name, op) in non_changes {
            let mut s = fresh(b"k");
            op(&mut s, t0);
            assert!(s.unwatch(1, t0), "{name} dirtied the watch");
        }
    }

    /// `lookup` deletes an expired key, and `write` then inserts it anew with the hash taken
    /// before the delete: the key is found by that hash afterwards, by position and by TTL
    /// slot, with the bookkeeping in step (from the second review).
    #[test]
    fn a_write_after_lazy_expiry_uses_a_hash_that_is_still_right() {
        let t0 = Instant::now();
        let mut s = Store::new();
        for i in 0..200u32 {
            s.set(format!("k{i}").as_bytes(), b"v", Ttl::At(t0 + Duration::from_millis(1)), t0);
        }
        let t1 = t0 + Duration::from_secs(1);
        for i in (0..200u32).step_by(2) {
            s.set(format!("k{i}").as_bytes(), b"new", Ttl::At(t1 + Duration::from_secs(1)), t1);
        }
        for i in (1..200u32).step_by(2) {
            assert_eq!(s.incr_by(format!("k{i}").as_bytes(), 5, t1), Ok(5));
        }
        assert_eq!((s.len(), s.expires_len(), s.expired), (200, 100, 200));
        check_invariants(&s);
    }
}
