//! Slots per lane. A kind names the lane its reconciles run in (the AWS service it
//! mostly calls; see [`crate::kinds::Kind::LANE`]); each lane has its own slots, so a
//! lane whose reconciles wait on its service's rate limit (or are slow) holds up only
//! itself, never the due work of another.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::scheduler::Scheduler;
use crate::kinds::ObjectKey;

/// The lane of a kind that names none (or of an object of an unknown kind).
pub const DEFAULT_LANE: &str = "default";

/// Slots each lane keeps for edits only.
pub const SPARE_SLOTS: usize = 1;

#[derive(Debug, Clone)]
pub struct Lanes {
    per_lane: usize,
    busy: BTreeMap<&'static str, usize>,
}

impl Lanes {
    /// `per_lane` reconciles at once in each lane (at least one).
    pub fn new(per_lane: usize) -> Self {
        Self {
            per_lane: per_lane.max(1),
            busy: BTreeMap::new(),
        }
    }

    pub fn has_room(&self, lane: &str) -> bool {
        self.busy(lane) < self.per_lane
    }

    /// Whether an edit may start in `lane`: each lane has a spare slot for edits, so that
    /// an edit never waits for a resync to finish in a full lane.
    pub fn has_spare_room(&self, lane: &str) -> bool {
        self.busy(lane) < self.per_lane + SPARE_SLOTS
    }

    fn busy(&self, lane: &str) -> usize {
        self.busy.get(lane).copied().unwrap_or(0)
    }

    pub fn take(&mut self, lane: &'static str) {
        *self.busy.entry(lane).or_default() += 1;
    }

    pub fn give_back(&mut self, lane: &str) {
        if let Some(n) = self.busy.get_mut(lane) {
            *n = n.saturating_sub(1);
        }
    }
}

/// The queue, one per lane (each after kube-runtime's scheduler: one slot per object,
/// earliest deadline wins). Finding the next object to run looks at the head of each lane
/// with a free slot, never at the backlog of a lane that is full, so the cost of an event
/// does not grow with the number of objects waiting.
#[derive(Debug, Default)]
pub struct LaneQueue {
    /// The lane of each kind.
    lane_of_kind: BTreeMap<String, &'static str>,
    queues: BTreeMap<&'static str, Scheduler<ObjectKey>>,
}

impl LaneQueue {
    pub fn new(lane_of_kind: BTreeMap<String, &'static str>) -> Self {
        Self {
            lane_of_kind,
            queues: BTreeMap::new(),
        }
    }

    pub fn lane(&self, key: &ObjectKey) -> &'static str {
        self.lane_of_kind
            .get(&*key.kind)
            .copied()
            .unwrap_or(DEFAULT_LANE)
    }

    fn queue_mut(&mut self, key: &ObjectKey) -> &mut Scheduler<ObjectKey> {
        let lane = self.lane(key);
        self.queues.entry(lane).or_default()
    }

    /// Queue `key` at `at`, unless it is queued earlier already.
    pub fn schedule(&mut self, key: ObjectKey, at: Instant) {
        self.queue_mut(&key).schedule(key, at);
    }

    /// Queue `key` at `at`, whatever it was queued at.
    pub fn set(&mut self, key: ObjectKey, at: Instant) {
        self.queue_mut(&key).set(key, at);
    }

    pub fn remove(&mut self, key: &ObjectKey) {
        self.queue_mut(key).remove(key);
    }

    pub fn deadline(&self, key: &ObjectKey) -> Option<Instant> {
        self.queues.get(self.lane(key))?.deadline(key)
    }

    /// How many objects are due by `now`, in all lanes.
    pub fn due(&self, now: Instant) -> usize {
        self.queues.values().map(|q| q.due(now)).sum()
    }

    /// Take the earliest object due by `now` in a lane with a free slot that `may_run`
    /// allows (one not running already), with its deadline. Work due by `spare` (an edit)
    /// may also take a lane's spare slot (see [`Lanes::has_spare_room`]).
    pub fn pop_due(
        &mut self,
        now: Instant,
        spare: Instant,
        slots: &Lanes,
        mut may_run: impl FnMut(&ObjectKey) -> bool,
    ) -> Option<(ObjectKey, Instant)> {
        let (at, key) = self
            .queues
            .iter()
            .filter_map(|(lane, q)| {
                if slots.has_room(lane) {
                    q.peek_due(now, &mut may_run)
                } else if slots.has_spare_room(lane) {
                    q.peek_due(now.min(spare), &mut may_run)
                } else {
                    None
                }
            })
            .min_by_key(|(at, _)| *at)
            .map(|(at, key)| (at, key.clone()))?;
        self.remove(&key);
        Some((key, at))
    }

    /// When the next object a free slot could take falls due (edits: see
    /// [`LaneQueue::pop_due`]).
    pub fn next_deadline(
        &self,
        spare: Instant,
        slots: &Lanes,
        mut may_run: impl FnMut(&ObjectKey) -> bool,
    ) -> Option<Instant> {
        self.queues
            .iter()
            .filter_map(|(lane, q)| {
                if slots.has_room(lane) {
                    q.next_deadline_where(&mut may_run)
                } else if slots.has_spare_room(lane) {
                    q.next_deadline_where(&mut may_run)
                        .filter(|at| *at <= spare)
                } else {
                    None
                }
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lane_has_its_own_slots() {
        let mut lanes = Lanes::new(2);
        lanes.take("iam");
        lanes.take("iam");
        assert!(!lanes.has_room("iam"));
        assert!(lanes.has_room("ecr"));
        lanes.give_back("iam");
        assert!(lanes.has_room("iam"));
        lanes.give_back("ssm"); // never taken: nothing happens
        assert!(lanes.has_room("ssm"));
        assert!(Lanes::new(0).has_room("x"), "at least one slot");
    }

    #[test]
    fn the_earliest_due_object_of_a_lane_with_room_runs_next() {
        let t0 = Instant::now();
        let at = |ms| t0 + std::time::Duration::from_millis(ms);
        let key = |kind: &str, name: &str| ObjectKey::new(kind, name);
        let mut q = LaneQueue::new(BTreeMap::from([
            ("Role".to_string(), "iam"),
            ("Repository".to_string(), "ecr"),
        ]));
        q.schedule(key("Role", "a"), at(1));
        q.schedule(key("Role", "b"), at(2));
        q.schedule(key("Repository", "c"), at(3));
        q.schedule(key("Unknown", "d"), at(4));
        q.schedule(key("Role", "a"), at(9)); // later: the earlier deadline stays
        assert_eq!(q.deadline(&key("Role", "a")), Some(at(1)));
        assert_eq!(q.lane(&key("Unknown", "d")), DEFAULT_LANE);
        assert_eq!(q.due(at(10)), 4);
        let mut slots = Lanes::new(1);
        slots.take("iam");
        // iam is full: its earlier work waits, the next lane's runs.
        assert_eq!(q.next_deadline(t0, &slots, |_| true), Some(at(3)));
        assert_eq!(
            q.pop_due(at(10), t0, &slots, |_| true),
            Some((key("Repository", "c"), at(3)))
        );
        // Not due yet.
        assert_eq!(q.pop_due(at(3), t0, &slots, |_| true), None);
        assert_eq!(
            q.pop_due(at(10), t0, &slots, |_| true),
            Some((key("Unknown", "d"), at(4)))
        );
        assert_eq!(
            q.pop_due(at(10), t0, &slots, |_| true),
            None,
            "only iam work is left"
        );
        slots.give_back("iam");
        // A running object is passed over for the next one of its lane.
        let running = key("Role", "a");
        assert_eq!(
            q.pop_due(at(10), t0, &slots, |k| *k != running),
            Some((key("Role", "b"), at(2)))
        );
        q.set(key("Role", "a"), at(20)); // set moves it later
        assert_eq!(q.next_deadline(t0, &slots, |_| true), Some(at(20)));
        q.remove(&key("Role", "a"));
        assert_eq!(q.due(at(30)), 0);
    }

    #[test]
    fn an_edit_takes_the_spare_slot_of_a_full_lane() {
        let edit = Instant::now();
        let at = |ms| edit + std::time::Duration::from_millis(ms);
        let key = |name: &str| ObjectKey::new("Role", name);
        let mut q = LaneQueue::new(BTreeMap::from([("Role".to_string(), "iam")]));
        q.schedule(key("resync"), at(1));
        q.schedule(key("edit"), edit);
        let mut slots = Lanes::new(1);
        slots.take("iam");
        assert!(!slots.has_room("iam") && slots.has_spare_room("iam"));
        // The lane is full: only the edit may start, now.
        assert_eq!(q.next_deadline(edit, &slots, |_| true), Some(edit));
        assert_eq!(
            q.pop_due(at(10), edit, &slots, |_| true),
            Some((key("edit"), edit))
        );
        slots.take("iam");
        assert!(!slots.has_spare_room("iam"));
        assert_eq!(q.pop_due(at(10), edit, &slots, |_| true), None);
        slots.give_back("iam");
        // With the spare slot free again, a resync still waits for a regular one.
        assert_eq!(q.next_deadline(edit, &slots, |_| true), None);
        assert_eq!(q.pop_due(at(10), edit, &slots, |_| true), None);
        slots.give_back("iam");
        assert_eq!(
            q.pop_due(at(10), edit, &slots, |_| true),
            Some((key("resync"), at(1)))
        );
    }
}
