//! The keyspace's hash table: a map from key bytes to `V`, as std's `HashMap` is, that also
//! gives every key a *position* from 0 to `len - 1`, so that `SCAN` can walk the keys with a
//! cursor (see "Scanning" in `store.rs` for why positions make that walk safe).
//!
//! The entries live in hashbrown's `HashTable`, laid out as std's `HashMap` lays them out (std's
//! map *is* hashbrown), so a lookup costs what it costs there: one probe, one key comparison.
//! Beside it sits `hashes`, where `hashes[pos]` is the hash of the key at position `pos`, and
//! every value records its own position (the [`Positioned`] trait). So:
//!
//! * key → entry: a hash lookup, as in any map;
//! * position → entry: the hash from `hashes`, then the entry with that hash *and* that
//!   position (two keys with one 64-bit hash are told apart by their positions);
//! * remove: `swap_remove` from `hashes` (O(1)): the last position's entry moves into the
//!   hole, and is found by its hash and told its new position.
//!
//! The same trick, "a dense vector of hashes, and entries that know their index in it", finds
//! any entry from a side list without a second copy of its key: [`Table::find`] and
//! [`Table::remove_found`] take a hash and a test on the value (`store.rs` keeps its list of
//! keys with a TTL that way).
//!
//! # Why the value holds the position
//!
//! Positions are `u32` (a table holds at most [`MAX_LEN`] keys). A lone `u32` beside the key
//! and value would be padded to 8 bytes; held *in* the value, next to the value's own small
//! fields, it fills a gap that was padding anyway. The store's entries are 40 bytes either way,
//! so a slot (key + entry) is 56 bytes: what std's `HashMap` of the same entries would use. The
//! price of positions is then only the hash in `hashes`: 8 bytes a key. (`indexmap` offers
//! positions too, but keeps its entries in a vector and only indices in the table, one more
//! memory access per lookup: measured 12–18% slower `GET`s on a million keys.)

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// The most keys a table holds: positions are `u32`.
pub const MAX_LEN: usize = u32::MAX as usize;

/// A value that remembers its position in the [`Table`] (see the module docs for why the
/// value, not the table, holds it). Only the table sets it.
pub trait Positioned {
    /// The position the table last gave this value.
    fn position(&self) -> u32;
    /// Called by the table when the value is inserted or moved.
    fn set_position(&mut self, pos: u32);
}

/// A hash map from byte-string keys to `V`, with positions (see the module docs).
#[derive(Debug)]
pub struct Table<V> {
    entries: HashTable<Slot<V>>,
    /// The hash of the key at each position.
    hashes: Vec<u64>,
    /// SipHash with a per-process random key, as std's `HashMap` uses: a client choosing keys
    /// cannot aim them all at one bucket.
    hasher: RandomState,
}

#[derive(Debug)]
struct Slot<V> {
    key: Box<[u8]>,
    value: V,
}

/// The bytes one key costs the table beyond its key and value bytes: its slot (key box and
/// `V`, which holds the position), hashbrown's control byte, and its hash in `hashes`.
pub const fn overhead<V>() -> usize {
    size_of::<Slot<V>>() + 1 + size_of::<u64>()
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table::new()
    }
}

impl<V> Table<V> {
    /// An empty table.
    pub fn new() -> Self {
        Table { entries: HashTable::new(), hashes: Vec::new(), hasher: RandomState::new() }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The hash this table gives `key`: what [`Table::find`] takes.
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.get_key_value(key).map(|(_, value)| value)
    }

    /// The stored key (the table's own copy) and its value.
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&[u8], &V)> {
        self.find(self.hash(key), |k, _| k == key)
    }

    /// The value stored under `key`, to change in place.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.find_mut(self.hash(key), |k, _| k == key)
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// The entry whose key has hash `hash` and which passes `test`. `test` tells apart keys
    /// that share a hash; it may look at the key, or only at the value (a value that records
    /// an index of its own is found by hash and index, without its key).
    pub fn find(&self, hash: u64, mut test: impl FnMut(&[u8], &V) -> bool) -> Option<(&[u8], &V)> {
        let slot = self.entries.find(hash, |slot| test(&slot.key, &slot.value))?;
        Some((&slot.key, &slot.value))
    }

    /// [`Table::find`], to change the value in place.
    pub fn find_mut(&mut self, hash: u64, mut test: impl FnMut(&[u8], &V) -> bool) -> Option<&mut V> {
        self.entries.find_mut(hash, |slot| test(&slot.key, &slot.value)).map(|slot| &mut slot.value)
    }

    /// Every key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.entries.iter().map(|slot| (&*slot.key, &slot.value))
    }
}

impl<V: Positioned> Table<V> {
    /// Adds `key`, which must not be present (the caller has just looked), at the last
    /// position. Gives them back if the table already holds [`MAX_LEN`] keys.
    pub fn insert_new(&mut self, key: Box<[u8]>, mut value: V) -> Result<(), (Box<[u8]>, V)> {
        let pos = match u32::try_from(self.hashes.len()) {
            Ok(pos) if (pos as usize) < MAX_LEN => pos,
            _ => return Err((key, value)),
        };
        let hash = self.hash(&key);
        self.hashes.push(hash);
        value.set_position(pos);
        let hasher = &self.hasher;
        // The rehash closure is called only when the table grows.
        self.entries.insert_unique(hash, Slot { key, value }, |slot| hasher.hash_one(&*slot.key));
        Ok(())
    }

    /// Removes `key`, giving back the stored key and value. The key at the last position moves
    /// to the removed key's position.
    pub fn remove(&mut self, key: &[u8]) -> Option<(Box<[u8]>, V)> {
        self.remove_found(self.hash(key), |k, _| k == key)
    }

    /// Removes the entry [`Table::find`] would find, as [`Table::remove`] does.
    pub fn remove_found(
        &mut self,
        hash: u64,
        mut test: impl FnMut(&[u8], &V) -> bool,
    ) -> Option<(Box<[u8]>, V)> {
        let found = self.entries.find_entry(hash, |slot| test(&slot.key, &slot.value)).ok()?;
        let (gone, _) = found.remove();
        let hole = gone.value.position();
        let last = self.hashes.len() - 1;
        self.hashes.swap_remove(hole as usize);
        if hole as usize != last {
            let moved = self.hashes[hole as usize];
            let slot = self.entries.find_mut(moved, |slot| slot.value.position() as usize == last);
            debug_assert!(slot.is_some(), "the entry at the last position was not found by its hash");
            if let Some(slot) = slot {
                slot.value.set_position(hole);
            }
        }
        Some((gone.key, gone.value))
    }

    /// The key and value at position `pos`, if `pos < len`.
    pub fn at(&self, pos: usize) -> Option<(&[u8], &V)> {
        let hash = *self.hashes.get(pos)?;
        // The hash finds every entry that *may* be this one; the position is exact.
        self.find(hash, |_, value| value.position() as usize == pos)
    }

    /// Removes the key at position `pos`, if `pos < len`, as [`Table::remove`] does.
    pub fn remove_at(&mut self, pos: usize) -> Option<(Box<[u8]>, V)> {
        let hash = *self.hashes.get(pos)?;
        self.remove_found(hash, |_, value| value.position() as usize == pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test value: a number, and the position the table gives it (not part of equality).
    #[derive(Debug, Clone, Copy)]
    struct Val(u64, u32);

    impl PartialEq for Val {
        fn eq(&self, other: &Val) -> bool {
            self.0 == other.0
        }
    }

    impl Positioned for Val {
        fn position(&self) -> u32 {
            self.1
        }
        fn set_position(&mut self, pos: u32) {
            self.1 = pos;
        }
    }

    fn val(n: impl Into<u64>) -> Val {
        Val(n.into(), u32::MAX)
    }

    /// Inserts a key that is not present yet.
    fn insert(t: &mut Table<Val>, key: impl Into<Vec<u8>>, n: impl Into<u64>) {
        assert!(t.insert_new(key.into().into(), val(n)).is_ok());
    }

    /// Every position holds exactly one key and every key knows its position, through a
    /// long run of inserts and removes (removes from the middle, the end and the start).
    #[test]
    fn positions_stay_a_permutation_through_inserts_and_removes() {
        let mut t = Table::new();
        let check = |t: &Table<Val>| {
            let mut seen = std::collections::HashSet::new();
            for pos in 0..t.len() {
                let (key, value) = t.at(pos).expect("every position below len holds a key");
                assert_eq!(value.position() as usize, pos, "the value knows its position");
                assert_eq!(t.get(key), Some(value));
                assert!(seen.insert(key.to_vec()), "two positions hold one key");
            }
            assert_eq!(t.at(t.len()), None);
            assert_eq!(seen.len(), t.iter().count());
        };
        for i in 0..1000u32 {
            insert(&mut t, i.to_string(), i);
        }
        check(&t);
        for i in (0..1000u32).filter(|i| i % 3 != 1) {
            assert_eq!(t.remove(i.to_string().as_bytes()), Some((i.to_string().into_bytes().into(), val(i))));
            if i % 97 == 0 {
                check(&t);
            }
        }
        assert_eq!(t.remove(b"0"), None);
        check(&t);
        assert_eq!(t.len(), 333);
        let keys: Vec<Vec<u8>> = t.iter().map(|(k, _)| k.to_vec()).collect();
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
        let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| crate::service::kv::store::xorshift(&mut rng) % n;
        let mut t = Table::new();
        let mut model = std::collections::HashMap::new();
        for step in 0..20_000u64 {
            // A small key space, so that operations often meet existing keys.
            let key = next(300).to_string().into_bytes();
            match next(4) {
                0 | 1 if !model.contains_key(&key) => {
                    insert(&mut t, key.clone(), step);
                    model.insert(key, val(step));
                }
                0 | 1 => {
                    if let Some(v) = t.get_mut(&key) {
                        v.0 = step;
                    }
                    model.insert(key, val(step));
                }
                2 => assert_eq!(t.remove(&key).map(|(_, v)| v), model.remove(&key), "step {step}"),
                _ => assert_eq!(t.get(&key), model.get(&key), "step {step}"),
            }
            assert_eq!(t.len(), model.len());
            if step % 1000 == 0 {
                let mut seen = std::collections::HashSet::new();
                for pos in 0..t.len() {
                    let (key, value) = t.at(pos).expect("a key at every position below len");
                    assert_eq!(model.get(key), Some(value));
                    assert!(seen.insert(key.to_vec()));
                }
            }
        }
    }

    #[test]
    fn a_value_changes_in_place_and_contains_follows_removal() {
        let mut t = Table::new();
        insert(&mut t, "k", 1u64);
        if let Some(v) = t.get_mut(b"k") {
            v.0 = 2;
        }
        assert_eq!(t.get_key_value(b"k"), Some((&b"k"[..], &val(2u64))));
        assert!(t.contains_key(b"k"));
        t.remove(b"k");
        assert!(!t.contains_key(b"k"));
        assert_eq!(t.get_mut(b"k"), None);
    }

    /// `remove_at` takes out exactly the key `at` shows, and `find` with a test on the value
    /// alone finds an entry by hash and position, without its key.
    #[test]
    fn an_entry_is_found_and_removed_by_hash_and_position() {
        let mut t = Table::new();
        for i in 0..100u32 {
            insert(&mut t, i.to_string(), i);
        }
        for pos in [99, 0, 50, 96] {
            let key = t.at(pos).map(|(k, _)| k.to_vec()).unwrap_or_default();
            let by_hash = t.find(t.hash(&key), |_, v| v.position() as usize == pos).map(|(k, _)| k.to_vec());
            assert_eq!(by_hash.as_ref(), Some(&key));
            let (gone, _) = t.remove_at(pos).expect("a key at every position below len");
            assert_eq!(*gone, *key);
            assert!(!t.contains_key(&key));
        }
        assert_eq!(t.len(), 96);
        assert_eq!(t.remove_at(96), None);
    }
}
