//! Readings reused while nothing says they changed. A listing often carries a stamp per
//! resource (a version, when it last changed) that moves whenever the resource's
//! configuration does; while the stamp a listing shows is the one a reading was taken
//! at, the reading still holds and the resource need not be read again. What no stamp
//! covers (tags, on most services) is read again at least every [`MEMO_MAX_AGE`].
//!
//! A caller forgets a key when it writes to it, so its own changes are always read back.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long a reading is reused at most, whatever its stamp says.
pub const MEMO_MAX_AGE: Duration = Duration::from_secs(300);

struct Entry<V> {
    stamp: String,
    at: Instant,
    value: V,
}

/// Readings by key, each with the stamp it was taken at.
pub struct Memo<V> {
    max_age: Duration,
    entries: Mutex<Entries<V>>,
}

struct Entries<V> {
    by_key: BTreeMap<String, Entry<V>>,
    /// When entries past their age were last dropped.
    trimmed: Instant,
}

impl<V> std::fmt::Debug for Memo<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl<V: Clone> Default for Memo<V> {
    fn default() -> Self {
        Self::new(MEMO_MAX_AGE)
    }
}

/// A reading recalled, and when it was taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Recalled<V> {
    pub value: V,
    pub at: Instant,
}

impl<V: Clone> Memo<V> {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            entries: Mutex::new(Entries {
                by_key: BTreeMap::new(),
                trimmed: Instant::now(),
            }),
        }
    }

    /// The reading of `key`, when it was taken at `stamp` and is younger than the
    /// maximum age (and the work in progress need not read fresh: see [`crate::fresh`]).
    pub fn get(&self, key: &str, stamp: &str) -> Option<Recalled<V>> {
        if crate::fresh::is_fresh() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let e = entries.by_key.get(key)?;
        (e.stamp == stamp && e.at.elapsed() < self.max_age).then(|| Recalled {
            value: e.value.clone(),
            at: e.at,
        })
    }

    /// Remember `value` as the reading of `key` at `stamp`, taken just now.
    pub fn put(&self, key: &str, stamp: String, value: V) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        // Readings past their age are of no use: drop them once per age, so that the
        // memo holds what was read lately and nothing of resources long gone.
        if now.duration_since(entries.trimmed) >= self.max_age {
            let max_age = self.max_age;
            entries
                .by_key
                .retain(|_, e| now.duration_since(e.at) < max_age);
            entries.trimmed = now;
        }
        entries.by_key.insert(
            key.to_string(),
            Entry {
                stamp,
                at: now,
                value,
            },
        );
    }

    /// The next [`Memo::get`] of `key` finds nothing (the caller wrote to it).
    pub fn forget(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.by_key.remove(key);
        }
    }

    /// How many readings are held.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.by_key.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A stamp from a service's date-time (seconds and nanoseconds, so that two changes in
/// one second differ wherever the service says so).
pub fn time_stamp(t: &aws_smithy_types::DateTime) -> String {
    format!("{}.{:09}", t.secs(), t.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_reading_holds_while_its_stamp_does_and_it_is_young() {
        let memo = Memo::new(Duration::from_secs(300));
        assert_eq!(memo.get("a", "v1"), None);
        memo.put("a", "v1".into(), 7);
        let cases = [
            ("a", "v1", Some(7)),
            ("a", "v2", None), // the listing shows a change
            ("b", "v1", None), // never read
        ];
        for (key, stamp, want) in cases {
            assert_eq!(memo.get(key, stamp).map(|r| r.value), want, "{key} {stamp}");
        }
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(memo.get("a", "v1").map(|r| r.value), Some(7));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(memo.get("a", "v1"), None, "older than the maximum age");
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_must_read_fresh_recalls_nothing() {
        let memo = Memo::new(Duration::from_secs(300));
        memo.put("a", "v1".into(), 7);
        assert_eq!(
            crate::fresh::reading(async { memo.get("a", "v1") }).await,
            None
        );
        assert_eq!(memo.get("a", "v1").map(|r| r.value), Some(7), "still kept");
    }

    #[tokio::test(start_paused = true)]
    async fn a_forgotten_key_is_read_again() {
        let memo = Memo::new(Duration::from_secs(300));
        memo.put("a", "v1".into(), 1);
        memo.forget("a");
        assert_eq!(memo.get("a", "v1"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn old_readings_are_dropped_as_new_ones_come() {
        let memo = Memo::new(Duration::from_secs(10));
        for i in 0..100 {
            memo.put(&format!("k{i}"), String::new(), i);
        }
        assert_eq!(memo.len(), 100);
        tokio::time::advance(Duration::from_secs(10)).await;
        memo.put("new", String::new(), 0);
        assert_eq!(memo.len(), 1, "only the reading still of use");
    }

    #[test]
    fn time_stamps_keep_fractions() {
        let a = aws_smithy_types::DateTime::from_millis(1_700_000_000_100);
        let b = aws_smithy_types::DateTime::from_millis(1_700_000_000_200);
        assert_ne!(time_stamp(&a), time_stamp(&b));
        assert_eq!(time_stamp(&a), "1700000000.100000000");
    }
}
