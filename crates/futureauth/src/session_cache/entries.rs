//! The cache's map: a fixed number of shards, each a `HashMap` behind its own `RwLock`.
//!
//! It replaced `moka`, whose lookup (its own SipHash of the key, the read recorded on a
//! channel for its eviction policy, its clock) was about 1,000 of the 7,300 instructions a
//! cached session check added to a static handler (`scripts/check-cost`). Here a hit is a
//! read lock, a lookup whose hash is the key itself, and one reading of the monotonic
//! clock, compared with the entry's deadline. That is enough because of what the keys are
//! and what this cache needs:
//! - keys are keyed 128-bit SipHash outputs nobody without the key can steer, so their own
//!   bits are a fine hash (no flooding) and pick the shard;
//! - the bound on entries only caps memory: a shard that is full drops its stale entries,
//!   then one entry of its choosing (a session whose entry is dropped is read from the
//!   database on its next check and cached again);
//! - evictions by predicate (one token, one session, one user) are rare, and walk the
//!   shards under their write locks.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The longest an entry answers, whatever the TTL.
const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Shards of the map: enough that two cores rarely wait on one write lock.
const SHARDS: usize = 16;

/// The hasher of a map whose keys are already uniformly random: the key's low 64 bits.
#[derive(Default)]
pub(super) struct KeyBits(u64);

impl Hasher for KeyBits {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u128` keys are hashed here (`write_u128`); anything else is folded in.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, key: u128) {
        // Truncation intended: the low half is the hash, the high half picks the shard.
        self.0 = key as u64;
    }
}

/// Each value with the instant it stops answering.
type Shard<V> = HashMap<u128, (V, Instant), BuildHasherDefault<KeyBits>>;

/// At most `max` values by key, each answering for `ttl` after it was stored, or less if its
/// insert said so.
pub(super) struct Entries<V> {
    shards: Vec<RwLock<Shard<V>>>,
    per_shard: usize,
    ttl: Duration,
}

impl<V> Entries<V> {
    pub(super) fn new(max: u64, ttl: Duration) -> Self {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: max.div_ceil(SHARDS).max(1),
            ttl,
        }
    }

    fn shard(&self, key: u128) -> &RwLock<Shard<V>> {
        // The high half: the low half is the hash within the shard.
        &self.shards[(key >> 64) as usize % SHARDS]
    }

    /// `f` of the live value of `key`, under the shard's read lock.
    pub(super) fn get<T>(&self, key: u128, f: impl FnOnce(&V) -> T) -> Option<T> {
        let shard = self
            .shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let (value, until) = shard.get(&key)?;
        (Instant::now() < *until).then(|| f(value))
    }

    /// Stores `value` under `key`, to answer for at most `lifetime` (and the map's `ttl`),
    /// if `still` holds under the shard's write lock (an eviction that must win over this
    /// insert changes what `still` reads before it takes the locks).
    pub(super) fn insert_if(
        &self,
        key: u128,
        value: V,
        lifetime: Duration,
        still: impl FnOnce() -> bool,
    ) {
        let mut shard = self
            .shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !still() {
            return;
        }
        let now = Instant::now();
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, (_, until)| now < *until);
            if shard.len() >= self.per_shard {
                if let Some(&any) = shard.keys().next() {
                    shard.remove(&any);
                }
            }
        }
        // A TTL of "forever" is a century: `Instant` cannot hold every `Duration`.
        let until = now
            .checked_add(lifetime.min(self.ttl).min(CENTURY))
            .unwrap_or(now);
        shard.insert(key, (value, until));
    }

    pub(super) fn remove(&self, key: u128) {
        self.shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    }

    /// Drops every value `doomed` picks.
    pub(super) fn remove_if(&self, doomed: impl Fn(&V) -> bool) {
        for shard in &self.shards {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, (value, _)| !doomed(value));
        }
    }

    pub(super) fn clear(&self) {
        for shard in &self.shards {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expire_after_their_ttl() {
        let entries = Entries::new(10, Duration::from_millis(50));
        entries.insert_if(1, "a", Duration::MAX, || true);
        assert_eq!(entries.get(1, |v| *v), Some("a"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(entries.get(1, |v| *v), None, "stale");
    }

    #[test]
    fn the_bound_holds_and_new_values_get_in() {
        let entries = Entries::new(32, Duration::from_secs(60));
        // Keys whose high halves all pick shard 0, so that one shard fills up.
        for n in 0..100u128 {
            entries.insert_if(n, n, Duration::MAX, || true);
            assert_eq!(entries.get(n, |v| *v), Some(n), "the newest value is in");
        }
        let held: usize = entries.shards.iter().map(|s| s.read().unwrap().len()).sum();
        assert_eq!(held, 2, "32 over 16 shards: 2 a shard");
    }

    #[test]
    fn a_ttl_of_forever_holds() {
        let entries = Entries::new(10, Duration::MAX);
        entries.insert_if(1, "a", Duration::MAX, || true);
        assert_eq!(entries.get(1, |v| *v), Some("a"));
    }

    #[test]
    fn an_insert_that_lost_its_race_is_dropped() {
        let entries = Entries::new(10, Duration::from_secs(60));
        entries.insert_if(7, 1, Duration::MAX, || false);
        assert_eq!(entries.get(7, |v| *v), None);
    }

    #[test]
    fn removals_take_only_theirs() {
        let entries = Entries::new(100, Duration::from_secs(60));
        for n in 0..10u128 {
            entries.insert_if(n << 64 | n, n, Duration::MAX, || true);
        }
        entries.remove(3 << 64 | 3);
        entries.remove_if(|v| *v % 2 == 0);
        let left: Vec<u128> = (0..10)
            .filter(|&n| entries.get(n << 64 | n, |v| *v).is_some())
            .collect();
        assert_eq!(left, vec![1, 5, 7, 9]);
        entries.clear();
        assert!((0..10).all(|n| entries.get(n << 64 | n, |v| *v).is_none()));
    }
}
