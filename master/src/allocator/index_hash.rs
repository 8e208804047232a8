//! Hashing for maps keyed by the allocator's own dense indices: those are
//! not attacker-controlled, so SipHash's protection buys nothing and its
//! cost shows in the per-agent filter checks of every cycle.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Fibonacci hashing of one integer: spreads consecutive indices over the
/// high bits the hash table probes with.
#[derive(Debug, Default, Clone, Copy)]
pub struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

pub type IndexMap<K, V> = HashMap<K, V, BuildHasherDefault<IndexHasher>>;
pub type IndexSet<K> = HashSet<K, BuildHasherDefault<IndexHasher>>;
