//! A deadline queue with one slot per object (after kube-runtime's scheduler): scheduling
//! an object that is already queued keeps the earlier deadline, so an object is never
//! queued twice and the earliest deadline wins.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Scheduler<K: Ord + Clone> {
    deadlines: BTreeMap<K, Instant>,
    by_time: BTreeSet<(Instant, K)>,
}

impl<K: Ord + Clone> Default for Scheduler<K> {
    fn default() -> Self {
        Self {
            deadlines: BTreeMap::new(),
            by_time: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone> Scheduler<K> {
    /// Queue `key` at `at`, unless it is already queued earlier.
    pub fn schedule(&mut self, key: K, at: Instant) {
        match self.deadlines.get(&key) {
            Some(existing) if *existing <= at => {}
            _ => self.set(key, at),
        }
    }

    /// Queue `key` at exactly `at`, replacing any earlier or later deadline.
    pub fn set(&mut self, key: K, at: Instant) {
        if let Some(old) = self.deadlines.insert(key.clone(), at) {
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((at, key));
    }

    pub fn remove(&mut self, key: &K) {
        if let Some(old) = self.deadlines.remove(key) {
            self.by_time.remove(&(old, key.clone()));
        }
    }

    pub fn deadline(&self, key: &K) -> Option<Instant> {
        self.deadlines.get(key).copied()
    }

    /// The earliest deadline among keys that `pred` accepts.
    pub fn next_deadline_where(&self, mut pred: impl FnMut(&K) -> bool) -> Option<Instant> {
        self.by_time.iter().find(|(_, k)| pred(k)).map(|(t, _)| *t)
    }

    /// Take the earliest key whose deadline has passed and that `may_run` accepts
    /// (e.g. not already running), with its deadline. Keys it rejects stay queued.
    pub fn pop_due(
        &mut self,
        now: Instant,
        may_run: impl FnMut(&K) -> bool,
    ) -> Option<(K, Instant)> {
        let (at, key) = self.peek_due(now, may_run).map(|(t, k)| (t, k.clone()))?;
        self.remove(&key);
        Some((key, at))
    }

    /// The earliest object due by `now` that `pred` accepts, left in the queue.
    pub fn peek_due(
        &self,
        now: Instant,
        mut pred: impl FnMut(&K) -> bool,
    ) -> Option<(Instant, &K)> {
        self.by_time
            .iter()
            .take_while(|(t, _)| *t <= now)
            .find(|(_, k)| pred(k))
            .map(|(t, k)| (*t, k))
    }

    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }

    /// How many keys are due at `now`.
    pub fn due(&self, now: Instant) -> usize {
        self.by_time.iter().take_while(|(t, _)| *t <= now).count()
    }
}

/// Sleep until `at`; with no deadline, forever (a `select!` branch that never fires).
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}

/// A periodic deadline spread by jitter: `period * (1 - jitter/2 + jitter * unit)`, so a
/// thousand objects resynced every 5 minutes do not all fire together.
pub fn jittered(period: Duration, jitter: f64, unit: f64) -> Duration {
    let jitter = jitter.clamp(0.0, 1.0);
    period.mul_f64(1.0 - jitter / 2.0 + jitter * unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_deadline_wins_and_one_slot_per_key() {
        let t0 = Instant::now();
        let s = |secs| t0 + Duration::from_secs(secs);
        let mut q = Scheduler::default();
        q.schedule("a", s(10));
        q.schedule("a", s(5)); // earlier wins
        q.schedule("a", s(20)); // later ignored
        q.schedule("b", s(7));
        assert_eq!(q.len(), 2);
        assert_eq!(q.deadline(&"a"), Some(s(5)));
        assert_eq!(q.next_deadline_where(|_| true), Some(s(5)));
        assert_eq!(q.pop_due(s(4), |_| true), None);
        assert_eq!(q.due(s(7)), 2);
        assert_eq!(q.pop_due(s(8), |_| true), Some(("a", s(5))));
        assert_eq!(q.pop_due(s(8), |_| true), Some(("b", s(7))));
        assert!(q.is_empty());
    }

    #[test]
    fn set_replaces_and_rejected_keys_stay_queued() {
        let t0 = Instant::now();
        let s = |secs| t0 + Duration::from_secs(secs);
        let mut q = Scheduler::default();
        q.schedule("a", s(1));
        q.schedule("b", s(2));
        q.set("a", s(30));
        assert_eq!(q.next_deadline_where(|_| true), Some(s(2)));
        // "b" is running: skip it, nothing else due.
        assert_eq!(q.pop_due(s(3), |k| *k != "b"), None);
        assert_eq!(q.len(), 2);
        q.remove(&"b");
        assert_eq!(q.pop_due(s(31), |_| true), Some(("a", s(30))));
    }

    #[test]
    fn jitter_spreads_around_the_period() {
        let p = Duration::from_secs(300);
        assert_eq!(jittered(p, 0.0, 0.7), p);
        assert_eq!(jittered(p, 0.2, 0.0), Duration::from_secs(270));
        assert_eq!(jittered(p, 0.2, 1.0), Duration::from_secs(330));
        assert_eq!(jittered(p, 0.2, 0.5), p);
    }
}
