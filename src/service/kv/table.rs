//! The keyspace's hash table: a map from key bytes to `V`, as std's `HashMap` is, that also
//! gives every key a *position* from 0 to `len - 1`, so that `SCAN` can walk the keys with a
//! cursor (see "Scanning" in `store.rs` for why positions make that walk safe).
//!
//! The entries live in hashbrown's `HashTable`, laid out as std's `HashMap` lays them out (std's
//! map *is* hashbrown), so a lookup costs what it costs there: one probe, one key comparison.
//! Beside it sits `hashes`, where `hashes[pos]` is the hash of the key at position `pos`, and
//! every entry records its own `pos`. So:
//!
//! * key → entry: a hash lookup, as in any map;
//! * position → entry: the hash from `hashes`, then the entry with that hash *and* that
//!   position (two keys with one 64-bit hash are told apart by their positions);
//! * remove: `swap_remove` from `hashes` (O(1)): the last position's entry moves into the
//!   hole, and is found by its hash and told its new position.
//!
//! The price is 16 bytes a key: its hash in `hashes` and its position in the entry.
//! (`indexmap` offers positions too, but keeps its entries in a vector and only indices in
//! the table, one more memory access per lookup: measured 12–18% slower `GET`s on a million
//! keys.)

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

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
    /// Where this key sits in `Table::hashes`.
    pos: usize,
}

/// The bytes one key costs the table beyond its key and value bytes: its slot (key box,
/// value, position), hashbrown's control byte, and its hash in `hashes`.
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

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.get_key_value(key).map(|(_, value)| value)
    }

    /// The stored key (the table's own copy) and its value.
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&[u8], &V)> {
        let slot = self.entries.find(self.hash(key), |slot| *slot.key == *key)?;
        Some((&slot.key, &slot.value))
    }

    /// The value stored under `key`, to change in place.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let hash = self.hash(key);
        self.entries.find_mut(hash, |slot| *slot.key == *key).map(|slot| &mut slot.value)
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Adds `key`, which must not be present (the caller has just looked), at the last position.
    pub fn insert_new(&mut self, key: Box<[u8]>, value: V) {
        let hash = self.hash(&key);
        let pos = self.hashes.len();
        self.hashes.push(hash);
        let hasher = &self.hasher;
        // The rehash closure is called only when the table grows.
        self.entries.insert_unique(hash, Slot { key, value, pos }, |slot| hasher.hash_one(&*slot.key));
    }

    /// Removes `key`, giving back the stored key and value. The key at the last position moves
    /// to the removed key's position.
    pub fn remove(&mut self, key: &[u8]) -> Option<(Box<[u8]>, V)> {
        let found = self.entries.find_entry(self.hash(key), |slot| *slot.key == *key).ok()?;
        let (gone, _) = found.remove();
        let last = self.hashes.len() - 1;
        self.hashes.swap_remove(gone.pos);
        if gone.pos != last {
            let moved = self.hashes[gone.pos];
            let slot = self.entries.iter_hash_mut(moved).find(|slot| slot.pos == last);
            debug_assert!(slot.is_some(), "the entry at the last position was not found by its hash");
            if let Some(slot) = slot {
                slot.pos = gone.pos;
            }
        }
        Some((gone.key, gone.value))
    }

    /// The key and value at position `pos`, if `pos < len`.
    pub fn at(&self, pos: usize) -> Option<(&[u8], &V)> {
        let hash = *self.hashes.get(pos)?;
        // iter_hash yields every entry that *may* have this hash; the position is exact.
        let slot = self.entries.iter_hash(hash).find(|slot| slot.pos == pos)?;
        Some((&slot.key, &slot.value))
    }

    /// Every key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.entries.iter().map(|slot| (&*slot.key, &slot.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every position holds exactly one key and every key knows its position, through a
    /// long run of inserts and removes (removes from the middle, the end and the start).
    #[test]
    fn positions_stay_a_permutation_through_inserts_and_removes() {
        let mut t = Table::new();
        let check = |t: &Table<u32>| {
            let mut seen = std::collections::HashSet::new();
            for pos in 0..t.len() {
                let (key, value) = t.at(pos).expect("every position below len holds a key");
                assert_eq!(t.get(key), Some(value));
                assert!(seen.insert(key.to_vec()), "two positions hold one key");
            }
            assert_eq!(t.at(t.len()), None);
            assert_eq!(seen.len(), t.iter().count());
        };
        for i in 0..1000u32 {
            t.insert_new(i.to_string().into_bytes().into(), i);
        }
        check(&t);
        for i in (0..1000u32).filter(|i| i % 3 != 1) {
            assert_eq!(t.remove(i.to_string().as_bytes()), Some((i.to_string().into_bytes().into(), i)));
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
                    t.insert_new(key.clone().into(), step);
                    model.insert(key, step);
                }
                0 | 1 => {
                    if let Some(v) = t.get_mut(&key) {
                        *v = step;
                    }
                    model.insert(key, step);
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
        t.insert_new(b"k".to_vec().into(), 1);
        if let Some(v) = t.get_mut(b"k") {
            *v = 2;
        }
        assert_eq!(t.get_key_value(b"k"), Some((&b"k"[..], &2)));
        assert!(t.contains_key(b"k"));
        t.remove(b"k");
        assert!(!t.contains_key(b"k"));
        assert_eq!(t.get_mut(b"k"), None);
    }
}
