//! The keyspace's hash table: a set of entries found by their key bytes, as a `HashMap` finds
//! its values, that also gives every entry a *position* from 0 to `len - 1`, so that `SCAN` can
//! walk the keys with a cursor (see "Scanning" in `store.rs` for why positions make that walk
//! safe).
//!
//! The entries live in hashbrown's `HashTable`, the engine of std's `HashMap` (std's map *is*
//! hashbrown), so a lookup costs what it costs there: one probe, one key comparison.
//! Beside it sits `hashes`, where `hashes[pos]` is the hash of the key at position `pos`, and
//! every entry records its own position. So:
//!
//! * key → entry: a hash lookup, as in any map;
//! * position → entry: the hash from `hashes`, then the entry with that hash *and* that
//!   position (two keys with one 64-bit hash are told apart by their positions);
//! * remove: `swap_remove` from `hashes` (O(1)): the last position's entry moves into the
//!   hole, and is found by its hash and told its new position.
//!
//! The same trick, "a dense vector of hashes, and entries that know their index in it", finds
//! any entry from a side list without a second copy of its key: [`Table::find`] and
//! [`Table::remove_found`] take a hash and a test on the entry (`store.rs` keeps its list of
//! keys with a TTL that way).
//!
//! # Why the entry holds its key and position
//!
//! The table stores whole entries, and asks them for their key and position (the [`Keyed`]
//! trait) instead of keeping a key and a position of its own beside each value. That leaves
//! the layout to the entry, which knows its own fields: the store's entry keeps its key and
//! value in one allocation (one cache miss fewer per lookup, one allocation fewer per key) and
//! its `u32` position beside its other 32-bit field, where 8-byte alignment would otherwise
//! leave 4 bytes of padding. So the price of positions is the hash in `hashes`: 8 bytes a key.
//! (`indexmap` offers positions too, but keeps its entries in a vector and only indices in the
//! table, one more memory access per lookup: measured 12–18% slower `GET`s on a million keys.)
//!
//! The hasher is a type parameter only so that the tests can use one that collides on purpose.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// The most keys a table holds (2³² − 1): positions are `u32`.
pub const MAX_LEN: usize = u32::MAX as usize;

/// What the table needs of the entries it stores (see the module docs).
pub trait Keyed {
    /// The key this entry is found by. It must not change while the entry is in the table.
    fn key(&self) -> &[u8];
    /// The position the table last gave this entry.
    fn position(&self) -> u32;
    /// Called by the table, and only by it, when the entry is inserted or moved.
    fn set_position(&mut self, pos: u32);
}

/// A hash table of entries found by key, with positions (see the module docs).
#[derive(Debug)]
pub struct Table<E, S = RandomState> {
    entries: HashTable<E>,
    /// The hash of the key at each position.
    hashes: Vec<u64>,
    /// By default SipHash with a per-process random key, as std's `HashMap` uses: a client
    /// choosing keys cannot aim them all at one bucket.
    hasher: S,
}

/// The bytes one entry costs the table beyond what the entry points to: the entry itself,
/// hashbrown's control byte, and its hash in `hashes`.
pub const fn overhead<E>() -> usize {
    size_of::<E>() + 1 + size_of::<u64>()
}

impl<E> Default for Table<E> {
    fn default() -> Self {
        Table::new()
    }
}

impl<E> Table<E> {
    /// An empty table.
    pub fn new() -> Self {
        Table::with_hasher(RandomState::new())
    }
}

impl<E, S: BuildHasher> Table<E, S> {
    /// An empty table that hashes keys with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        Table { entries: HashTable::new(), hashes: Vec::new(), hasher }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The hash this table gives `key`: what [`Table::find`] and [`Table::insert_new`] take.
    /// A caller about to look a key up more than once hashes it once, here.
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The entry whose key has hash `hash` and which passes `test`. The hash only narrows the
    /// search (hashbrown calls `test` on every entry whose 7 bits of tag match along the probe
    /// path), so `test` must single out one entry of the whole table: compare the key, or an
    /// index the entry alone holds (an entry that records its index in some list is found by
    /// hash and index, without its key).
    pub fn find(&self, hash: u64, test: impl FnMut(&E) -> bool) -> Option<&E> {
        self.entries.find(hash, test)
    }

    /// [`Table::find`], to change the entry in place (but not its key).
    pub fn find_mut(&mut self, hash: u64, test: impl FnMut(&E) -> bool) -> Option<&mut E> {
        self.entries.find_mut(hash, test)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &E> {
        self.entries.iter()
    }
}

impl<E: Keyed, S: BuildHasher> Table<E, S> {
    /// The entry for `key`.
    pub fn get(&self, key: &[u8]) -> Option<&E> {
        self.find(self.hash(key), |e| e.key() == key)
    }

    /// The entry for `key`, to change in place (but not its key). (The store hashes a key once
    /// per command and uses `find_mut`; this and `remove` serve the tests.)
    #[cfg(test)]
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut E> {
        self.find_mut(self.hash(key), |e| e.key() == key)
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Adds `entry`, whose key must not be present (the caller has just looked) and hashes to
    /// `hash`, at the last position. Gives it back if the table already holds [`MAX_LEN`]
    /// entries.
    pub fn insert_new(&mut self, hash: u64, mut entry: E) -> Result<(), E> {
        debug_assert_eq!(hash, self.hash(entry.key()), "insert_new was given another key's hash");
        let pos = match u32::try_from(self.hashes.len()) {
            Ok(pos) if (pos as usize) < MAX_LEN => pos,
            _ => return Err(entry),
        };
        self.hashes.push(hash);
        entry.set_position(pos);
        // The rehash closure is called only when the table grows, for every entry: it reads
        // the hash kept for the entry's position instead of hashing each key again (which
        // also touched every entry's allocation; growing to 4 M keys stalled the loop ~1 s).
        let hashes = &self.hashes;
        self.entries.insert_unique(hash, entry, |e| hashes[e.position() as usize]);
        Ok(())
    }

    /// Removes the entry for `key` and gives it back, as [`Table::remove_found`] does.
    #[cfg(test)]
    pub fn remove(&mut self, key: &[u8]) -> Option<E> {
        self.remove_found(self.hash(key), |e| e.key() == key)
    }

    /// Removes the entry [`Table::find`] would find and gives it back. The entry at the last
    /// position moves to the removed one's position.
    pub fn remove_found(&mut self, hash: u64, test: impl FnMut(&E) -> bool) -> Option<E> {
        let (gone, _) = self.entries.find_entry(hash, test).ok()?.remove();
        let hole = gone.position();
        let last = self.hashes.len() - 1;
        self.hashes.swap_remove(hole as usize);
        if hole as usize != last {
            let moved = self.hashes[hole as usize];
            let entry = self.entries.find_mut(moved, |e| e.position() as usize == last);
            debug_assert!(entry.is_some(), "the entry at the last position was not found by its hash");
            if let Some(entry) = entry {
                entry.set_position(hole);
            }
        }
        Some(gone)
    }

    /// The entry at position `pos`, if `pos < len`.
    pub fn at(&self, pos: usize) -> Option<&E> {
        let hash = *self.hashes.get(pos)?;
        // The hash finds every entry that *may* be this one; the position is exact.
        self.find(hash, |e| e.position() as usize == pos)
    }

    /// Removes the entry at position `pos`, if `pos < len`, as [`Table::remove_found`] does.
    pub fn remove_at(&mut self, pos: usize) -> Option<E> {
        let hash = *self.hashes.get(pos)?;
        self.remove_found(hash, |e| e.position() as usize == pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test entry: a key, a number, and the position the table gives it (not part of
    /// equality).
    #[derive(Debug, Clone)]
    struct Val(Box<[u8]>, u64, u32);

    impl PartialEq for Val {
        fn eq(&self, other: &Val) -> bool {
            (&self.0, self.1) == (&other.0, other.1)
        }
    }

    impl Keyed for Val {
        fn key(&self) -> &[u8] {
            &self.0
        }
        fn position(&self) -> u32 {
            self.2
        }
        fn set_position(&mut self, pos: u32) {
            self.2 = pos;
        }
    }

    fn val(key: impl Into<Vec<u8>>, n: impl Into<u64>) -> Val {
        Val(key.into().into(), n.into(), u32::MAX)
    }

    /// Inserts a key that is not present yet.
    fn insert<S: BuildHasher>(t: &mut Table<Val, S>, key: impl Into<Vec<u8>>, n: impl Into<u64>) {
        let v = val(key, n);
        assert!(t.insert_new(t.hash(&v.0), v).is_ok());
    }

    /// A hasher that gives every key one of four hashes, so that most lookups meet entries
    /// of other keys with the very same 64-bit hash.
    #[derive(Clone, Default)]
    struct Colliding;

    impl BuildHasher for Colliding {
        type Hasher = CollidingHasher;
        fn build_hasher(&self) -> CollidingHasher {
            CollidingHasher(0)
        }
    }

    struct CollidingHasher(u64);

    impl std::hash::Hasher for CollidingHasher {
        fn finish(&self) -> u64 {
            self.0 % 4
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = self.0.wrapping_mul(31).wrapping_add(u64::from(b));
            }
        }
    }

    /// Growing the table must not run the hasher over every key again (reading each entry's
    /// allocation, a cache miss a key): `hashes` holds them all. A review measured PINGs
    /// stalled 0.75-1.27 s while ~3.7 million keys were rehashed, 0.24 s without. Counted
    /// here: one hash per insert, none more.
    #[test]
    fn growing_the_table_does_not_hash_the_keys_again() {
        use std::cell::Cell;
        thread_local!(static HASHED: Cell<usize> = const { Cell::new(0) });
        #[derive(Clone, Default)]
        struct Counting;
        struct CountingHasher(std::collections::hash_map::DefaultHasher);
        impl BuildHasher for Counting {
            type Hasher = CountingHasher;
            fn build_hasher(&self) -> CountingHasher {
                HASHED.with(|n| n.set(n.get() + 1));
                CountingHasher(Default::default())
            }
        }
        impl std::hash::Hasher for CountingHasher {
            fn finish(&self) -> u64 {
                self.0.finish()
            }
            fn write(&mut self, bytes: &[u8]) {
                self.0.write(bytes)
            }
        }
        let mut t = Table::with_hasher(Counting);
        for i in 0..100_000u32 {
            insert(&mut t, i.to_string(), i);
        }
        let hashed = HASHED.with(Cell::get);
        // One hash an insert (by the caller), and one more in debug builds, where
        // `insert_new` checks it was given the right one.
        let per_insert = if cfg!(debug_assertions) { 2 } else { 1 };
        assert_eq!(
            hashed,
            100_000 * per_insert,
            "100,000 inserts hashed {hashed} times: growth hashed keys again"
        );
    }

    /// Every position holds exactly one key and every key knows its position, through a
    /// long run of inserts and removes (removes from the middle, the end and the start).
    #[test]
    fn positions_stay_a_permutation_through_inserts_and_removes() {
        let mut t = Table::new();
        let check = |t: &Table<Val>| {
            let mut seen = std::collections::HashSet::new();
            for pos in 0..t.len() {
                let e = t.at(pos).expect("every position below len holds a key");
                assert_eq!(e.position() as usize, pos, "the entry knows its position");
                assert_eq!(t.get(e.key()), Some(e));
                assert!(seen.insert(e.key().to_vec()), "two positions hold one key");
            }
            assert_eq!(t.at(t.len()), None);
            assert_eq!(seen.len(), t.iter().count());
        };
        for i in 0..1000u32 {
            insert(&mut t, i.to_string(), i);
        }
        check(&t);
        for i in (0..1000u32).filter(|i| i % 3 != 1) {
            assert_eq!(t.remove(i.to_string().as_bytes()), Some(val(i.to_string(), i)));
            if i % 97 == 0 {
                check(&t);
            }
        }
        assert_eq!(t.remove(b"0"), None);
        check(&t);
        assert_eq!(t.len(), 333);
        let keys: Vec<Vec<u8>> = t.iter().map(|e| e.key().to_vec()).collect();
        for key in keys {
            assert!(t.remove(&key).is_some());
        }
        assert!(t.is_empty());
        check(&t);
    }

    /// A long random mix of inserts, removes, updates and lookups, checked against std's
    /// `HashMap` after every step, and the positions checked to be a permutation now and then.
    #[test]
    fn behaves_as_a_hash_map_under_a_random_mix_of_operations() {
        random_mix(Table::new(), 20_000);
    }

    /// The same with four hashes for all keys: keys that share a whole 64-bit hash are told
    /// apart by their key or their position, never mixed up.
    #[test]
    fn keys_that_share_a_hash_are_kept_apart() {
        random_mix(Table::with_hasher(Colliding), 5_000);
    }

    fn random_mix<S: BuildHasher>(mut t: Table<Val, S>, steps: u64) {
        let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| crate::service::kv::store::xorshift(&mut rng) % n;
        let mut model = std::collections::HashMap::new();
        for step in 0..steps {
            // A small key space, so that operations often meet existing keys.
            let key = next(300).to_string().into_bytes();
            match next(4) {
                0 | 1 if !model.contains_key(&key) => {
                    insert(&mut t, key.clone(), step);
                    model.insert(key, step);
                }
                0 | 1 => {
                    if let Some(e) = t.get_mut(&key) {
                        e.1 = step;
                    }
                    model.insert(key, step);
                }
                2 => assert_eq!(t.remove(&key).map(|e| e.1), model.remove(&key), "step {step}"),
                _ => assert_eq!(t.get(&key).map(|e| e.1), model.get(&key).copied(), "step {step}"),
            }
            assert_eq!(t.len(), model.len());
            if step % 1000 == 0 {
                let mut seen = std::collections::HashSet::new();
                for pos in 0..t.len() {
                    let e = t.at(pos).expect("a key at every position below len");
                    assert_eq!(model.get(e.key()), Some(&e.1));
                    assert!(seen.insert(e.key().to_vec()));
                }
            }
        }
    }

    #[test]
    fn an_entry_changes_in_place_and_contains_follows_removal() {
        let mut t = Table::new();
        insert(&mut t, "k", 1u64);
        if let Some(e) = t.get_mut(b"k") {
            e.1 = 2;
        }
        assert_eq!(t.get(b"k"), Some(&val("k", 2u64)));
        assert!(t.contains_key(b"k"));
        t.remove(b"k");
        assert!(!t.contains_key(b"k"));
        assert_eq!(t.get_mut(b"k"), None);
    }

    /// `remove_at` takes out exactly the entry `at` shows, and `find` with a test on the
    /// position alone finds an entry by hash and position, without its key.
    #[test]
    fn an_entry_is_found_and_removed_by_hash_and_position() {
        let mut t = Table::new();
        for i in 0..100u32 {
            insert(&mut t, i.to_string(), i);
        }
        for pos in [99, 0, 50, 96] {
            let key = t.at(pos).map(|e| e.key().to_vec()).unwrap_or_default();
            let by_hash = t.find(t.hash(&key), |e| e.position() as usize == pos).map(|e| e.key().to_vec());
            assert_eq!(by_hash.as_ref(), Some(&key));
            let gone = t.remove_at(pos).expect("a key at every position below len");
            assert_eq!(gone.key(), &key[..]);
            assert!(!t.contains_key(&key));
        }
        assert_eq!(t.len(), 96);
        assert_eq!(t.remove_at(96), None);
    }
}
