//! `WATCH`: optimistic locking for `MULTI`/`EXEC`.
//!
//! The check-and-set pattern: a client `WATCH`es some keys, reads them, decides what to write,
//! then sends `MULTI` … `EXEC`. If anyone (itself included) changed a watched key in between,
//! `EXEC` runs nothing and answers a null array, and the client reads again and retries. On
//! a single-threaded reactor nothing can run *during* `EXEC`, so this is all it takes: a
//! record of who watches which key, and a flag per watcher, raised by any change to one of
//! its keys.
//!
//! The store owns a [`Watches`] and calls [`Watches::touch`] wherever a key changes: a write,
//! a delete, an expiry (lazy or active), a TTL set or removed, a flush. With nobody watching,
//! that is one `is_empty` check per write. The registry is indexed both ways, by key (to
//! flag the watchers of a changed key) and by client (to forget all of a client's keys at
//! `EXEC`, `DISCARD`, `UNWATCH` or disconnect).

use std::collections::{HashMap, HashSet};

/// Who watches which key, and whose watched keys have changed.
#[derive(Debug, Default)]
pub struct Watches {
    /// Watched key → the clients watching it (by connection serial, the `CLIENT ID`).
    by_key: HashMap<Box<[u8]>, Vec<u64>>,
    /// Client → the keys it watches, and their total size in bytes (bounded by the caller).
    by_client: HashMap<u64, Watching>,
    /// Clients one of whose watched keys has changed since they watched it.
    dirty: HashSet<u64>,
}

#[derive(Debug, Default)]
struct Watching {
    /// A set, so watching a key twice (or 100,000 keys in one `WATCH`) costs one lookup per
    /// key, not a scan of the keys watched so far.
    keys: HashSet<Box<[u8]>>,
    bytes: usize,
}

/// Bookkeeping bytes of one watched key beyond its bytes, counted with them against the
/// caller's bound: its copy in each index, the client's id in the key's list, table slots.
pub const WATCH_OVERHEAD: usize = 96;

impl Watches {
    /// `client` watches `key` from now on. Watching a key twice is watching it once.
    pub fn watch(&mut self, client: u64, key: &[u8]) {
        let watching = self.by_client.entry(client).or_default();
        if !watching.keys.insert(key.into()) {
            return;
        }
        watching.bytes += key.len() + WATCH_OVERHEAD;
        self.by_key.entry(key.into()).or_default().push(client);
    }

    /// `key` changed: every client watching it is flagged.
    pub fn touch(&mut self, key: &[u8]) {
        if self.by_key.is_empty() {
            return;
        }
        if let Some(clients) = self.by_key.get(key) {
            self.dirty.extend(clients.iter().copied());
        }
    }

    /// True when a key `client` watches has changed since it watched it.
    pub fn is_dirty(&self, client: u64) -> bool {
        self.dirty.contains(&client)
    }

    /// The keys `client` watches.
    pub fn keys(&self, client: u64) -> impl Iterator<Item = &[u8]> {
        self.by_client.get(&client).into_iter().flat_map(|w| w.keys.iter().map(|k| &**k))
    }

    /// What the keys `client` watches cost: their bytes plus [`WATCH_OVERHEAD`] each, for
    /// the caller's bound.
    pub fn bytes(&self, client: u64) -> usize {
        self.by_client.get(&client).map_or(0, |w| w.bytes)
    }

    /// Every watched key, each once (for a flush, which touches those that exist).
    pub fn watched(&self) -> impl Iterator<Item = &[u8]> {
        self.by_key.keys().map(|k| &**k)
    }

    /// `client` stops watching all its keys, and its flag is cleared.
    pub fn unwatch(&mut self, client: u64) {
        self.dirty.remove(&client);
        let Some(watching) = self.by_client.remove(&client) else {
            return;
        };
        for key in watching.keys {
            if let Some(clients) = self.by_key.get_mut(&key) {
                clients.retain(|&c| c != client);
                if clients.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
    }

    /// True when nobody watches anything.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_touch_flags_every_watcher_of_that_key_and_no_one_else() {
        let mut w = Watches::default();
        w.watch(1, b"a");
        w.watch(2, b"a");
        w.watch(2, b"b");
        w.watch(3, b"c");
        w.touch(b"a");
        assert!(w.is_dirty(1) && w.is_dirty(2));
        assert!(!w.is_dirty(3));
        w.touch(b"unwatched");
        assert!(!w.is_dirty(3));
    }

    #[test]
    fn unwatch_forgets_the_client_everywhere_and_clears_its_flag() {
        let mut w = Watches::default();
        w.watch(1, b"a");
        w.watch(1, b"a");
        w.watch(1, b"bb");
        w.watch(2, b"a");
        assert_eq!(w.keys(1).count(), 2, "a key watched twice is watched once");
        assert_eq!(w.bytes(1), 3 + 2 * WATCH_OVERHEAD);
        w.touch(b"a");
        w.unwatch(1);
        assert!(!w.is_dirty(1));
        assert_eq!(w.keys(1).count(), 0);
        assert_eq!(w.watched().count(), 1, "only client 2's key is left");
        w.unwatch(2);
        assert!(w.is_empty());
        // A touch after everyone left flags nobody.
        w.touch(b"a");
        assert!(!w.is_dirty(1) && !w.is_dirty(2));
    }
}
