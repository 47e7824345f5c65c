//! What a run of the controller did to one object, for the report of a one-shot run
//! (`apply`, `diff`): how many reconciles, the strongest write, the last changes, and
//! how the last one ended.

use crate::error::Severity;
use crate::kinds::{Action, Change};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Reconciles that ran (teardowns not counted).
    pub attempts: u32,
    /// The strongest write made (or, observing only, needed).
    pub action: Option<Action>,
    /// The changes of the last reconcile that found any.
    pub changes: Vec<Change>,
    /// How the last reconcile failed; `None` when it went through.
    pub failed: Option<Severity>,
}

impl Tally {
    pub fn succeeded(&mut self, action: Action, changes: &[Change]) {
        self.attempts += 1;
        self.action = Some(match self.action {
            Some(a) if rank(a) >= rank(action) => a,
            _ => action,
        });
        if !changes.is_empty() {
            self.changes = changes.to_vec();
        }
        self.failed = None;
    }

    pub fn failed(&mut self, severity: Severity) {
        self.attempts += 1;
        self.failed = Some(severity);
    }
}

fn rank(a: Action) -> u8 {
    match a {
        Action::Unchanged => 0,
        Action::Update => 1,
        Action::Create => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strongest_action_and_the_last_changes_stay() {
        let c = |f: &str| vec![Change::new(f, None, None)];
        let mut t = Tally::default();
        t.succeeded(Action::Create, &[]);
        t.succeeded(Action::Update, &c("a"));
        t.failed(Severity::Recoverable);
        t.succeeded(Action::Unchanged, &[]);
        assert_eq!(t.attempts, 4);
        assert_eq!(t.action, Some(Action::Create));
        assert_eq!(t.changes, c("a"));
        assert_eq!(t.failed, None);
        t.failed(Severity::Terminal);
        assert_eq!(t.failed, Some(Severity::Terminal));
    }
}
