//! Slots per lane. A kind names the lane its reconciles run in (the AWS service it
//! mostly calls; see [`crate::kinds::Kind::LANE`]); each lane has its own slots, so a
//! lane whose reconciles wait on its service's rate limit (or are slow) holds up only
//! itself, never the due work of another.

use std::collections::BTreeMap;

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
        self.busy.get(lane).copied().unwrap_or(0) < self.per_lane
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
}
