//! One-shot convergence of a manifest set (`apply`, `diff`, and the commands that read a
//! few objects' outputs): a run of the daemon's [`Controller`] over an in-memory
//! inventory, until every object is Ready, nothing more can happen (failed for good, or
//! held back by something that is), or time runs out; then its report. The engine is
//! the same: dependency gating, polling, backoff and the error policy are the
//! controller's. In plan mode every object is only observed, as if suspended.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::controller::{Controller, ControllerConfig, Final, Outcome, Shared};
use super::inventory::MemoryInventory;
use super::status::reason;
use crate::error::Severity;
use crate::kinds::{Action, Change, Mode, ObjectKey, Outputs, Registry};
use crate::manifest::ManifestSet;
use crate::manifest::load::Loaded;
use crate::metrics::Metrics;

/// How to converge.
#[derive(Debug, Clone)]
pub struct ConvergeOptions {
    pub mode: Mode,
    /// Give up waiting after this long (objects still converging are reported as such).
    pub timeout: Duration,
    /// Reconciles running at once (per lane; see `ControllerConfig::concurrency`).
    pub concurrency: usize,
    /// Polling of resources AWS is still creating or updating.
    pub poll: Backoff,
    /// Retries after recoverable errors and while waiting on something external.
    pub retry: Backoff,
}

impl Default for ConvergeOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Apply,
            timeout: Duration::from_secs(300),
            concurrency: 8,
            poll: Backoff::new(Duration::from_millis(500), Duration::from_secs(5)),
            retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(15)),
        }
    }
}

/// Where an object stands at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum State {
    /// Exists, matches the manifest (or will once applied, in plan mode) and is usable.
    Ready,
    /// AWS is still working on it.
    Progressing,
    /// Needs something that is not there yet, or hit a recoverable error; retried.
    Waiting,
    /// Terminal: only a change of the manifest can fix it.
    Failed,
    /// A dependency is not Ready, so this object was not (fully) reconciled.
    Blocked,
    /// Plan mode: does not exist yet.
    Absent,
}

/// The outcome for one object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReport {
    pub kind: String,
    pub name: String,
    /// The strongest write made (apply) or needed (plan); `None` if never reconciled.
    pub action: Option<Action>,
    pub state: State,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: Outputs,
    pub attempts: u32,
}

impl ObjectReport {
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(self.kind.as_str(), self.name.as_str())
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// In dependency order.
    pub objects: Vec<ObjectReport>,
    pub seconds: f64,
    pub timed_out: bool,
}

impl RunReport {
    pub fn all_ready(&self) -> bool {
        self.objects.iter().all(|o| o.state == State::Ready)
    }

    /// Plan mode: whether anything would be written.
    pub fn changes_pending(&self) -> bool {
        self.objects.iter().any(|o| {
            matches!(o.action, Some(Action::Create | Action::Update)) || o.state == State::Blocked
        })
    }

    pub fn any_failed(&self) -> bool {
        self.objects.iter().any(|o| o.state == State::Failed)
    }
}

/// Converge `set` (apply mode) or compute its plan (plan mode).
pub async fn converge(set: &ManifestSet, registry: &Registry, opts: &ConvergeOptions) -> RunReport {
    let start = Instant::now();
    let cfg = ControllerConfig {
        concurrency: opts.concurrency.max(1),
        // Nothing is looked at twice for its own sake within one run.
        resync: opts.timeout.max(Duration::from_secs(3600)),
        resync_jitter: 0.0,
        retry: opts.retry,
        poll: opts.poll,
        observe_only: opts.mode == Mode::Plan,
        ..ControllerConfig::default()
    };
    let controller = Controller::new(
        cfg,
        registry.clone(),
        Arc::new(MemoryInventory::default()),
        Arc::new(Shared::default()),
        Metrics::new(None),
    );
    let outcome = controller.converge(loaded(set), opts.timeout).await;
    report(set, outcome, opts.mode, start.elapsed())
}

/// A valid manifest set as the controller takes in a load.
fn loaded(set: &ManifestSet) -> Loaded {
    let mut files: BTreeMap<std::path::PathBuf, Vec<ObjectKey>> = BTreeMap::new();
    for o in &set.objects {
        files
            .entry(o.source.file.clone())
            .or_default()
            .push(o.key.clone());
    }
    Loaded {
        objects: set.objects.clone(),
        problems: Vec::new(),
        files,
        revision: None,
    }
}

/// The report, in dependency order: each object's state as the run left it.
fn report(set: &ManifestSet, outcome: Outcome, mode: Mode, elapsed: Duration) -> RunReport {
    let mut done: BTreeMap<ObjectKey, ObjectReport> = BTreeMap::new();
    for key in &set.graph.order {
        let settled = outcome.objects.get(key);
        let mut report = ObjectReport {
            kind: key.kind.to_string(),
            name: key.name.to_string(),
            action: settled.and_then(|s| s.tally.action),
            state: State::Blocked,
            reason: String::new(),
            message: String::new(),
            changes: settled.map(|s| s.tally.changes.clone()).unwrap_or_default(),
            outputs: settled
                .map(|s| Outputs::clone(&s.status.outputs))
                .unwrap_or_default(),
            attempts: settled.map_or(0, |s| s.tally.attempts),
        };
        let deps = set.graph.deps_of(key).iter();
        let (state, why, message) = match settled {
            Some(s) if s.tally.attempts > 0 => state_of(s, mode),
            _ => blocked(deps.map(|d| (d, done.get(d))), mode),
        };
        report.state = state;
        report.reason = why;
        report.message = message;
        done.insert(key.clone(), report);
    }
    let objects = set
        .graph
        .order
        .iter()
        .filter_map(|k| done.remove(k))
        .collect();
    RunReport {
        objects,
        seconds: elapsed.as_secs_f64(),
        timed_out: outcome.timed_out,
    }
}

/// The state of an object that was reconciled at least once.
fn state_of(s: &Final, mode: Mode) -> (State, String, String) {
    let error = s.status.last_error.as_ref();
    match (s.tally.failed, error) {
        (Some(severity), Some(e)) => {
            let state = if severity == Severity::Terminal {
                State::Failed
            } else {
                State::Waiting
            };
            return (state, e.reason.clone(), e.message.clone());
        }
        (Some(_), None) => return (State::Waiting, String::new(), String::new()),
        (None, _) => {}
    }
    if mode == Mode::Plan {
        let state = if s.tally.action == Some(Action::Create) && !s.status.is_ready() {
            State::Absent
        } else {
            State::Ready
        };
        return (state, String::new(), String::new());
    }
    if s.status.is_ready() {
        return (State::Ready, String::new(), String::new());
    }
    let (why, message) = s
        .status
        .condition(super::status::READY)
        .map(|c| (c.reason.to_string(), c.message.clone()))
        .unwrap_or_default();
    match why.as_str() {
        reason::PROGRESSING => (State::Progressing, why, message),
        reason::RESOURCE_FAILED => (State::Failed, why, message),
        _ => (State::Blocked, why, message),
    }
}

/// Why an object that never ran was held back, from its dependencies' states.
fn blocked<'a>(
    deps: impl Iterator<Item = (&'a ObjectKey, Option<&'a ObjectReport>)>,
    mode: Mode,
) -> (State, String, String) {
    let mut not_ready = Vec::new();
    for (d, report) in deps {
        let Some(r) = report else { continue };
        match (mode, r.state) {
            (Mode::Plan, State::Absent | State::Blocked) => {
                return (
                    State::Blocked,
                    reason::DEPENDENCY_ABSENT.into(),
                    format!("will be reconciled after {d} is created"),
                );
            }
            (_, State::Failed) | (Mode::Apply, State::Blocked)
                if r.state == State::Failed || r.reason == reason::DEPENDENCY_FAILED =>
            {
                return (
                    State::Blocked,
                    reason::DEPENDENCY_FAILED.into(),
                    format!("blocked: {d} is {:?}", r.state),
                );
            }
            (Mode::Plan, State::Waiting) => {
                return (
                    State::Blocked,
                    reason::DEPENDENCY_NOT_READY.into(),
                    format!("waits for {d}: {}", r.message),
                );
            }
            (_, State::Ready) => {}
            _ => not_ready.push(d.to_string()),
        }
    }
    (
        State::Blocked,
        reason::DEPENDENCY_NOT_READY.into(),
        format!("waiting for {}", not_ready.join(", ")),
    )
}
