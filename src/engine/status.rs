//! What the controller reports about each object (after Kubernetes conditions): `Ready`
//! and `Synced` with a reason, a message and the last transition time; the content hash
//! last seen; the last reconcile and a short history; the next scheduled time; outputs
//! (IDs and ARNs, never secret values) and the last error.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::kinds::{Change, Outputs};

/// The condition types every object reports.
pub const READY: &str = "Ready";
pub const SYNCED: &str = "Synced";

/// The reasons the engine itself gives (a failed reconcile gives its error's reason).
pub mod reason {
    pub const PENDING: &str = "Pending";
    pub const READY: &str = "Ready";
    pub const RECONCILED: &str = "ReconcileSuccess";
    pub const PROGRESSING: &str = "Progressing";
    pub const RESOURCE_FAILED: &str = "ResourceFailed";
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    pub const PRUNING: &str = "Pruning";
    pub const SUSPENDED: &str = "Suspended";
    /// A standby replica observes only: the leader writes.
    pub const STANDBY: &str = "Standby";
    pub const EXISTS: &str = "Exists";
    pub const ABSENT: &str = "Absent";
    /// Plan mode: a dependency does not exist yet.
    pub const DEPENDENCY_ABSENT: &str = "DependencyAbsent";
    /// A dependency failed for good, so this object cannot go on.
    pub const DEPENDENCY_FAILED: &str = "DependencyFailed";
    /// No live implementation of the object's kind.
    pub const UNKNOWN_KIND: &str = "UnknownKind";
}

/// A word the controller picks from a fixed set (a condition's type, status and reason, a
/// reconcile's outcome): shared by every status that shows it, not copied into each (at a
/// thousand stacks a status history holds ninety thousand of them). Read back from JSON
/// as an owned string.
pub type Word = Cow<'static, str>;

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A wall-clock time to the second, written as RFC 3339 (`2026-12-03T20:00:00Z`) but held
/// as a number: every status holds a dozen of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(u64);

impl Timestamp {
    pub fn of(t: SystemTime) -> Self {
        Self(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = UNIX_EPOCH + Duration::from_secs(self.0);
        fmt::Display::fmt(&humantime::format_rfc3339_seconds(t), f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text)
            .map(Self::of)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: Word,
    /// "True", "False" or "Unknown", as Kubernetes writes them.
    pub status: Word,
    pub reason: Word,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub last_transition_time: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileRecord {
    pub at: Timestamp,
    pub duration_ms: u64,
    /// created, updated, unchanged, drift (suspended), deleted, retained, error.
    pub outcome: Word,
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub reason: Word,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    pub at: String,
    pub reason: String,
    pub message: String,
    /// terminal, recoverable or waiting.
    pub severity: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    pub conditions: Vec<Condition>,
    /// Content hash of the spec last reconciled (empty until the first reconcile ends).
    pub observed_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile: Option<ReconcileRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_reconcile_at: Option<Timestamp>,
    /// Shared with the controller's table of outputs that dependents read.
    #[serde(default, skip_serializing_if = "no_outputs")]
    pub outputs: std::sync::Arc<Outputs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorInfo>,
    /// The manifest problem that keeps the last good spec in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_error: Option<String>,
    /// Drift seen on a suspended object (reported, not corrected).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Change>,
    #[serde(default)]
    pub suspended: bool,
    /// The manifest is gone: the object is being deleted.
    #[serde(default)]
    pub pruning: bool,
    #[serde(default)]
    pub history: VecDeque<ReconcileRecord>,
    /// The source revision in force when it was last reconciled (a git source's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<std::sync::Arc<str>>,
}

impl ObjectStatus {
    pub fn new(kind: &str, name: &str) -> Self {
        Self {
            kind: kind.to_string(),
            name: name.to_string(),
            source: String::new(),
            conditions: Vec::new(),
            observed_hash: String::new(),
            last_reconcile: None,
            next_reconcile_at: None,
            outputs: Default::default(),
            last_error: None,
            validation_error: None,
            drift: Vec::new(),
            suspended: false,
            pruning: false,
            history: VecDeque::new(),
            revision: None,
        }
    }

    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    pub fn is_ready(&self) -> bool {
        self.condition(READY).is_some_and(|c| c.status == "True")
    }

    /// Set a condition; the transition time changes only when the status does.
    pub fn set_condition(
        &mut self,
        kind: &'static str,
        status: bool,
        reason: impl Into<Word>,
        message: &str,
        now: SystemTime,
    ) {
        let status = if status { "True" } else { "False" };
        let reason = reason.into();
        match self.conditions.iter_mut().find(|c| c.kind == kind) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = Timestamp::of(now);
                }
                c.status = Cow::Borrowed(status);
                c.reason = reason;
                if c.message != message {
                    c.message = message.to_string();
                }
            }
            None => self.conditions.push(Condition {
                kind: Cow::Borrowed(kind),
                status: Cow::Borrowed(status),
                reason,
                message: message.to_string(),
                last_transition_time: Timestamp::of(now),
            }),
        }
    }

    /// The reason of the Ready condition ("" before there is one).
    pub fn ready_reason(&self) -> &str {
        self.condition(READY).map_or("", |c| &*c.reason)
    }

    /// Loaded, not reconciled yet.
    pub fn mark_pending(&mut self, now: SystemTime) {
        let why = "not reconciled yet";
        self.set_condition(READY, false, reason::PENDING, why, now);
        self.set_condition(SYNCED, false, reason::PENDING, why, now);
    }

    /// Converged and usable.
    pub fn mark_ready(&mut self, now: SystemTime) {
        self.set_condition(SYNCED, true, reason::RECONCILED, "", now);
        self.set_condition(READY, true, reason::READY, "", now);
    }

    /// Reconciled; AWS is still working on it.
    pub fn mark_progressing(&mut self, message: &str, now: SystemTime) {
        self.set_condition(SYNCED, true, reason::RECONCILED, "", now);
        self.set_condition(READY, false, reason::PROGRESSING, message, now);
    }

    /// Reconciled; AWS reports the resource failed.
    pub fn mark_resource_failed(&mut self, message: &str, now: SystemTime) {
        self.set_condition(SYNCED, true, reason::RECONCILED, "", now);
        self.set_condition(READY, false, reason::RESOURCE_FAILED, message, now);
    }

    /// Observed only: what differs is reported, nothing written.
    /// Observed only, `why` being [`reason::SUSPENDED`] or [`reason::STANDBY`].
    pub fn mark_observed(&mut self, exists: bool, why: &'static str, now: SystemTime) {
        let doing = if why == reason::STANDBY {
            "standby (the leader writes)"
        } else {
            "suspended"
        };
        let message = if self.drift.is_empty() {
            format!("{doing}; no drift")
        } else {
            format!("{doing}; {} field(s) differ", self.drift.len())
        };
        self.set_condition(SYNCED, false, why, &message, now);
        let ready_reason = if exists {
            reason::EXISTS
        } else {
            reason::ABSENT
        };
        self.set_condition(READY, exists, ready_reason, "", now);
    }

    /// Held back until a dependency is Ready.
    pub fn mark_waiting_for_dependency(&mut self, why: &str, now: SystemTime) {
        self.set_condition(READY, false, reason::DEPENDENCY_NOT_READY, why, now);
    }

    /// Its manifest is gone: being deleted. (Ready stays as it was, if it was anything:
    /// an inventory orphan starts out as Pruning.)
    pub fn mark_pruning(&mut self, now: SystemTime) {
        self.pruning = true;
        let why = "manifest removed";
        self.set_condition(SYNCED, false, reason::PRUNING, why, now);
        if self.condition(READY).is_none() {
            self.set_condition(READY, false, reason::PRUNING, why, now);
        }
    }

    /// A reconcile failed. Ready turns False when it was not Ready yet, or the error
    /// says the resource is unusable (`unusable`); a resource being pruned says so.
    pub fn mark_failed(&mut self, reason: Word, message: &str, unusable: bool, now: SystemTime) {
        if !self.is_ready() || unusable {
            let ready_reason = if self.pruning {
                Cow::Borrowed(reason::PRUNING)
            } else {
                reason.clone()
            };
            self.set_condition(READY, false, ready_reason, message, now);
        }
        self.set_condition(SYNCED, false, reason, message, now);
    }

    /// Keep `record` as the last reconcile and at the head of the history, which holds
    /// the latest `keep` (in a buffer of exactly that size: a thousand stacks keep nine
    /// thousand of them).
    pub fn record(&mut self, record: ReconcileRecord, keep: usize) {
        self.history.truncate(keep.saturating_sub(1));
        if keep > 0 {
            if self.history.capacity() < keep {
                self.history.reserve_exact(keep - self.history.len());
            }
            self.history.push_front(record.clone());
        }
        self.last_reconcile = Some(record);
    }
}

fn no_outputs(o: &std::sync::Arc<Outputs>) -> bool {
    o.is_empty()
}

/// Everything `/status` serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub generated_at: String,
    /// Every object of the first load has been reconciled once.
    pub ready: bool,
    pub objects: Vec<std::sync::Arc<ObjectStatus>>,
    /// Problems of the manifests as last loaded (file:line).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Set while the mass-deletion guard refuses a prune.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_refused: Option<String>,
    pub queue_depth: usize,
    /// This replica's part in leader election (set by the HTTP server, which has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leadership: Option<crate::leader::Leadership>,
    /// The source revision whose manifests have all been reconciled (a git source's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_revision: Option<std::sync::Arc<str>>,
    /// The git source, if the manifests come from one (set by the HTTP server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::gitsource::SourceStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t1 = t0 + Duration::from_secs(60);
        let t2 = t1 + Duration::from_secs(60);
        let mut s = ObjectStatus::new("Role", "r");
        s.set_condition("Ready", false, "Creating", "", t0);
        s.set_condition("Ready", false, "Waiting", "still", t1);
        assert_eq!(s.conditions[0].last_transition_time, Timestamp::of(t0));
        assert_eq!(s.conditions[0].reason, "Waiting");
        s.set_condition("Ready", true, "Ready", "", t2);
        assert_eq!(s.conditions[0].last_transition_time, Timestamp::of(t2));
        assert!(s.is_ready());
    }

    #[test]
    fn history_keeps_the_latest_few_in_a_buffer_of_that_size() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |i: u64| Timestamp::of(t0 + Duration::from_secs(i));
        // keep, records, the history's times (latest first).
        let cases: [(usize, u64, &[u64]); 4] = [
            (3, 5, &[4, 3, 2]),
            (3, 2, &[1, 0]),
            (1, 4, &[3]),
            (0, 2, &[]),
        ];
        for (keep, n, want) in cases {
            let mut s = ObjectStatus::new("Role", "r");
            for i in 0..n {
                s.record(
                    ReconcileRecord {
                        at: at(i),
                        duration_ms: i,
                        outcome: "unchanged".into(),
                        reason: Word::default(),
                    },
                    keep,
                );
            }
            let ats: Vec<Timestamp> = s.history.iter().map(|r| r.at).collect();
            let want: Vec<Timestamp> = want.iter().map(|&i| at(i)).collect();
            assert_eq!(ats, want, "keep {keep}, {n} records");
            assert_eq!(s.last_reconcile.map(|r| r.at), Some(at(n - 1)));
            assert!(
                s.history.capacity() <= keep.max(1),
                "keep {keep}: {}",
                s.history.capacity()
            );
        }
    }

    #[test]
    fn times_are_written_and_read_as_rfc3339() {
        let t = Timestamp::of(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_328_000));
        let json = serde_json::to_string(&t).expect("serialises");
        assert_eq!(json, "\"2026-12-03T20:00:00Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).expect("parses"), t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}
