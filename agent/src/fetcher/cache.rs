//! The fetcher cache's bookkeeping: which (user, URI) is cached where, how
//! many bytes that takes, and which entries go first when room is needed
//! (least recently used). No I/O here: the caller deletes the files of
//! evicted entries and does the downloads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tokio::sync::watch;

/// Cache entries are per user: a file fetched for one user is not handed
/// to another (Mesos's rule).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub user: String,
    pub uri: String,
}

/// What a fetch for a key should do.
#[derive(Debug)]
pub enum Lookup {
    /// Cached at this path.
    Hit(PathBuf),
    /// Another fetch is downloading it: wait until `changed()` fails (its
    /// sender is dropped when that fetch ends, however it ends), then look
    /// again.
    Wait(watch::Receiver<()>),
    /// Nobody has it: the caller downloads it, holding the sender so that
    /// waiters learn when it is done; it must call `reserve` and then
    /// `complete` or `abandon`.
    Miss(watch::Sender<()>),
}

#[derive(Debug)]
enum State {
    Downloading(watch::Receiver<()>),
    Ready(PathBuf),
}

#[derive(Debug)]
struct Entry {
    /// Bytes reserved for (or taken by) the entry.
    size: u64,
    /// The clock value of its last use: the smallest goes first.
    last_used: u64,
    state: State,
}

/// Why `reserve` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoRoom {
    #[error("the file is bigger than the whole cache ({capacity} bytes)")]
    TooBig { capacity: u64 },
    #[error("the cache is filled by downloads still in progress")]
    Busy,
}

#[derive(Debug)]
pub struct CacheIndex {
    capacity: u64,
    used: u64,
    clock: u64,
    entries: HashMap<Key, Entry>,
}

impl CacheIndex {
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            used: 0,
            clock: 0,
            entries: HashMap::new(),
        }
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub fn lookup(&mut self, key: &Key) -> Lookup {
        let now = self.tick();
        if let Some(entry) = self.entries.get_mut(key) {
            entry.last_used = now;
            return match &entry.state {
                State::Ready(path) => Lookup::Hit(path.clone()),
                State::Downloading(rx) => Lookup::Wait(rx.clone()),
            };
        }
        let (tx, rx) = watch::channel(());
        self.entries.insert(
            key.clone(),
            Entry {
                size: 0,
                last_used: now,
                state: State::Downloading(rx),
            },
        );
        Lookup::Miss(tx)
    }

    /// Reserves `size` bytes for a key being downloaded, evicting the
    /// least recently used finished entries as needed. Returns the files
    /// of the evicted entries, for the caller to delete. Nothing is
    /// evicted when the room cannot be made.
    pub fn reserve(&mut self, key: &Key, size: u64) -> Result<Vec<PathBuf>, NoRoom> {
        if size > self.capacity {
            return Err(NoRoom::TooBig {
                capacity: self.capacity,
            });
        }
        let Some(previous) = self.entries.get(key).map(|e| e.size) else {
            return Err(NoRoom::Busy);
        };
        let used = self.used - previous;
        let in_progress: u64 = self
            .entries
            .iter()
            .filter(|(k, e)| *k != key && matches!(e.state, State::Downloading(_)))
            .map(|(_, e)| e.size)
            .sum();
        if in_progress + size > self.capacity {
            return Err(NoRoom::Busy);
        }
        let mut ready: Vec<(u64, Key)> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.state, State::Ready(_)))
            .map(|(k, e)| (e.last_used, k.clone()))
            .collect();
        ready.sort();
        let mut used = used;
        let mut evicted = Vec::new();
        for (_, victim) in ready {
            if used + size <= self.capacity {
                break;
            }
            if let Some(entry) = self.entries.remove(&victim) {
                used -= entry.size;
                if let State::Ready(path) = entry.state {
                    evicted.push(path);
                }
            }
        }
        if let Some(entry) = self.entries.get_mut(key) {
            entry.size = size;
        }
        self.used = used + size;
        Ok(evicted)
    }

    /// The download of `key` is in the cache at `path`.
    pub fn complete(&mut self, key: &Key, path: PathBuf) {
        let now = self.tick();
        if let Some(entry) = self.entries.get_mut(key) {
            entry.state = State::Ready(path);
            entry.last_used = now;
        }
    }

    /// Forgets `key` if it is cached at `path` (the file is gone).
    pub fn forget_file(&mut self, key: &Key, path: &Path) {
        if self
            .entries
            .get(key)
            .is_some_and(|e| matches!(&e.state, State::Ready(p) if p == path))
        {
            self.abandon(key);
        }
    }

    /// Forgets `key` (its download failed or is not cached after all),
    /// releasing what it reserved.
    pub fn abandon(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.used -= entry.size;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn key(uri: &str) -> Key {
        Key {
            user: "u".into(),
            uri: uri.into(),
        }
    }

    /// Downloads `uri` of `size` bytes into the index; returns the evicted files.
    fn add(index: &mut CacheIndex, uri: &str, size: u64) -> Vec<PathBuf> {
        let Lookup::Miss(_tx) = index.lookup(&key(uri)) else {
            panic!("{uri} already known");
        };
        let evicted = index.reserve(&key(uri), size).unwrap();
        index.complete(&key(uri), PathBuf::from(uri));
        evicted
    }

    #[test]
    fn evicts_least_recently_used_first_within_the_bound() {
        let mut index = CacheIndex::new(100);
        assert!(add(&mut index, "a", 40).is_empty());
        assert!(add(&mut index, "b", 40).is_empty());
        // Using `a` makes `b` the oldest.
        assert!(matches!(index.lookup(&key("a")), Lookup::Hit(_)));
        assert_eq!(add(&mut index, "c", 30), vec![PathBuf::from("b")]);
        assert_eq!(index.used(), 70);
        assert!(matches!(index.lookup(&key("b")), Lookup::Miss(_)));
        index.abandon(&key("b"));
        assert_eq!(
            add(&mut index, "d", 100),
            vec![PathBuf::from("a"), PathBuf::from("c")]
        );
        assert_eq!(index.used(), 100);
    }

    #[test]
    fn entries_bigger_than_the_cache_are_refused_without_evicting() {
        let mut index = CacheIndex::new(100);
        add(&mut index, "a", 60);
        let Lookup::Miss(_tx) = index.lookup(&key("big")) else {
            panic!()
        };
        assert_eq!(
            index.reserve(&key("big"), 101),
            Err(NoRoom::TooBig { capacity: 100 })
        );
        index.abandon(&key("big"));
        assert!(matches!(index.lookup(&key("a")), Lookup::Hit(_)));
        assert_eq!(index.used(), 60);
    }

    #[test]
    fn downloads_in_progress_are_never_evicted() {
        let mut index = CacheIndex::new(100);
        let Lookup::Miss(_a) = index.lookup(&key("a")) else {
            panic!()
        };
        index.reserve(&key("a"), 70).unwrap();
        let Lookup::Miss(_b) = index.lookup(&key("b")) else {
            panic!()
        };
        assert_eq!(index.reserve(&key("b"), 40), Err(NoRoom::Busy));
        index.abandon(&key("b"));
        assert_eq!(index.used(), 70);
    }

    #[test]
    fn concurrent_requests_wait_for_the_first_download() {
        let mut index = CacheIndex::new(100);
        let Lookup::Miss(tx) = index.lookup(&key("a")) else {
            panic!()
        };
        let Lookup::Wait(rx) = index.lookup(&key("a")) else {
            panic!("second request must wait")
        };
        index.reserve(&key("a"), 10).unwrap();
        index.complete(&key("a"), PathBuf::from("/cache/a"));
        drop(tx);
        // The waiter wakes up (the sender is gone) and finds the file.
        assert!(rx.has_changed().is_err());
        match index.lookup(&key("a")) {
            Lookup::Hit(path) => assert_eq!(path, PathBuf::from("/cache/a")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_vanished_file_is_forgotten_but_not_a_newer_download() {
        let mut index = CacheIndex::new(100);
        add(&mut index, "a", 10);
        index.forget_file(&key("a"), Path::new("elsewhere"));
        assert!(matches!(index.lookup(&key("a")), Lookup::Hit(_)));
        index.forget_file(&key("a"), Path::new("a"));
        assert_eq!(index.used(), 0);
        let Lookup::Miss(_tx) = index.lookup(&key("a")) else {
            panic!()
        };
        index.forget_file(&key("a"), Path::new("a"));
        assert!(matches!(index.lookup(&key("a")), Lookup::Wait(_)));
    }

    #[test]
    fn keys_are_per_user() {
        let mut index = CacheIndex::new(100);
        add(&mut index, "a", 10);
        let other = Key {
            user: "v".into(),
            uri: "a".into(),
        };
        assert!(matches!(index.lookup(&other), Lookup::Miss(_)));
    }
}
