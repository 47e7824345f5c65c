//! One-shot convergence of a manifest set: every object reconciled once its
//! dependencies are Ready, independent branches concurrently, progress polled and
//! recoverable errors retried with backoff until everything is Ready or time runs out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use tokio::time::Instant;
use tracing::{Instrument, info_span};

use super::backoff::Backoff;
use crate::error::{ReconcileError, Severity};
use crate::kinds::{
    Action, Change, Deps, Mode, ObjectKey, Outputs, Readiness, Registry, StepReport,
};
use crate::manifest::ManifestSet;

/// How to converge.
#[derive(Debug, Clone)]
pub struct ConvergeOptions {
    pub mode: Mode,
    /// Give up waiting after this long (objects still converging are reported as such).
    pub timeout: Duration,
    /// Reconciles running at once.
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
        ObjectKey::new(&self.kind, &self.name)
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

struct Entry {
    report: ObjectReport,
    finished: bool,
    running: bool,
    next_at: Instant,
    /// Consecutive polls / retries, for backoff.
    streak: u32,
}

fn stronger(a: Option<Action>, b: Action) -> Option<Action> {
    let rank = |x: Action| match x {
        Action::Unchanged => 0,
        Action::Update => 1,
        Action::Create => 2,
    };
    match a {
        Some(a) if rank(a) >= rank(b) => Some(a),
        _ => Some(b),
    }
}

/// Converge `set` (apply mode) or compute its plan (plan mode).
pub async fn converge(set: &ManifestSet, registry: &Registry, opts: &ConvergeOptions) -> RunReport {
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let mut entries: BTreeMap<ObjectKey, Entry> = set
        .objects
        .iter()
        .map(|o| {
            (
                o.key.clone(),
                Entry {
                    report: ObjectReport {
                        kind: o.key.kind.clone(),
                        name: o.key.name.clone(),
                        action: None,
                        state: State::Blocked,
                        reason: String::new(),
                        message: String::new(),
                        changes: Vec::new(),
                        outputs: Outputs::new(),
                        attempts: 0,
                    },
                    finished: false,
                    running: false,
                    next_at: start,
                    streak: 0,
                },
            )
        })
        .collect();
    let mut outputs: BTreeMap<ObjectKey, Outputs> = BTreeMap::new();
    let mut running = FuturesUnordered::new();
    let mut timed_out = false;

    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        let mut next_wake: Option<Instant> = None;
        for key in &set.graph.order {
            let Some(entry) = entries.get(key) else {
                continue;
            };
            if entry.finished || entry.running {
                continue;
            }
            let deps = set.graph.deps.get(key).cloned().unwrap_or_default();
            match dependency_gate(&deps, &entries, opts.mode) {
                Gate::Wait => continue,
                Gate::Blocked(reason, message) => {
                    if let Some(e) = entries.get_mut(key) {
                        e.finished = true;
                        e.report.state = State::Blocked;
                        e.report.reason = reason;
                        e.report.message = message;
                    }
                    continue;
                }
                Gate::Go => {}
            }
            if entry.next_at > now {
                next_wake = Some(next_wake.map_or(entry.next_at, |w| w.min(entry.next_at)));
                continue;
            }
            if running.len() >= opts.concurrency {
                break;
            }
            let (Some(object), Some(kind)) = (set.get(key), registry.get(&key.kind)) else {
                if let Some(e) = entries.get_mut(key) {
                    e.finished = true;
                    e.report.state = State::Failed;
                    e.report.reason = "UnknownKind".into();
                    e.report.message = format!("no live implementation of kind {}", key.kind);
                }
                continue;
            };
            let kind = Arc::clone(kind);
            let meta = object.meta.clone();
            let spec = object.spec.clone();
            let snapshot = outputs.clone();
            let key = key.clone();
            let mode = opts.mode;
            let span = info_span!("reconcile", kind = %key.kind, name = %key.name);
            running.push(
                async move {
                    let result = kind.step(&meta, &spec, &Deps::new(&snapshot), mode).await;
                    (key, result)
                }
                .instrument(span),
            );
            if let Some(e) = entries.get_mut(&object.key) {
                e.running = true;
            }
        }

        if running.is_empty() && next_wake.is_none() {
            break; // nothing running, nothing scheduled: done (or stuck behind failures)
        }
        let wake = next_wake.unwrap_or(deadline).min(deadline);
        tokio::select! {
            done = running.next(), if !running.is_empty() => {
                if let Some((key, result)) = done {
                    record(&mut entries, &mut outputs, &key, result, opts);
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    }

    let ready: BTreeSet<ObjectKey> = entries
        .iter()
        .filter(|(_, e)| e.report.state == State::Ready)
        .map(|(k, _)| k.clone())
        .collect();
    let objects = set
        .graph
        .order
        .iter()
        .filter_map(|k| entries.remove(k))
        .map(|mut e| {
            if !e.finished && e.report.attempts == 0 && e.report.message.is_empty() {
                let waiting_on: Vec<String> = set
                    .graph
                    .deps
                    .get(&ObjectKey::new(&e.report.kind, &e.report.name))
                    .into_iter()
                    .flatten()
                    .filter(|d| !ready.contains(*d))
                    .map(|d| d.to_string())
                    .collect();
                e.report.state = State::Blocked;
                e.report.reason = "DependencyNotReady".into();
                e.report.message = format!("waiting for {}", waiting_on.join(", "));
            }
            e.report
        })
        .collect();
    RunReport {
        objects,
        seconds: start.elapsed().as_secs_f64(),
        timed_out,
    }
}

enum Gate {
    Go,
    Wait,
    Blocked(String, String),
}

/// May an object be reconciled now, given its dependencies' states?
fn dependency_gate(
    deps: &BTreeSet<ObjectKey>,
    entries: &BTreeMap<ObjectKey, Entry>,
    mode: Mode,
) -> Gate {
    for d in deps {
        let Some(e) = entries.get(d) else { continue };
        match (mode, e.finished, e.report.state) {
            (Mode::Plan, true, State::Absent | State::Blocked) => {
                return Gate::Blocked(
                    "DependencyAbsent".into(),
                    format!("will be reconciled after {d} is created"),
                );
            }
            (_, true, State::Failed | State::Blocked) => {
                return Gate::Blocked(
                    "DependencyFailed".into(),
                    format!("blocked: {d} is {:?}", e.report.state),
                );
            }
            (Mode::Plan, true, State::Waiting) => {
                return Gate::Blocked(
                    "DependencyNotReady".into(),
                    format!("waits for {d}: {}", e.report.message),
                );
            }
            (_, _, State::Ready) if e.finished => {}
            _ => return Gate::Wait,
        }
    }
    Gate::Go
}

fn record(
    entries: &mut BTreeMap<ObjectKey, Entry>,
    outputs: &mut BTreeMap<ObjectKey, Outputs>,
    key: &ObjectKey,
    result: Result<StepReport, ReconcileError>,
    opts: &ConvergeOptions,
) {
    let Some(e) = entries.get_mut(key) else {
        return;
    };
    let now = Instant::now();
    e.running = false;
    e.report.attempts += 1;
    match result {
        Ok(step) => {
            e.report.action = stronger(e.report.action, step.action);
            if !step.changes.is_empty() {
                e.report.changes = step.changes;
            }
            if !step.outputs.is_empty() {
                outputs.insert(key.clone(), step.outputs.clone());
                e.report.outputs = step.outputs;
            }
            e.report.reason.clear();
            e.report.message.clear();
            if opts.mode == Mode::Plan {
                e.finished = true;
                e.report.state = if step.action == Action::Create {
                    State::Absent
                } else {
                    State::Ready
                };
                return;
            }
            match step.readiness {
                Readiness::Ready => {
                    e.finished = true;
                    e.report.state = State::Ready;
                }
                Readiness::Progressing(msg) => {
                    e.report.state = State::Progressing;
                    e.report.reason = "Progressing".into();
                    e.report.message = msg;
                    e.next_at = now + opts.poll.next(e.streak);
                    e.streak += 1;
                }
                Readiness::Failed(msg) => {
                    e.finished = true;
                    e.report.state = State::Failed;
                    e.report.reason = "ResourceFailed".into();
                    e.report.message = msg;
                }
            }
        }
        Err(err) => {
            e.report.reason = err.reason.to_string();
            e.report.message = err.message.clone();
            match err.severity {
                Severity::Terminal => {
                    e.finished = true;
                    e.report.state = State::Failed;
                }
                Severity::Waiting | Severity::Recoverable => {
                    e.report.state = State::Waiting;
                    if opts.mode == Mode::Plan && err.severity == Severity::Waiting {
                        e.finished = true;
                        return;
                    }
                    e.next_at = now + opts.retry.next(e.streak);
                    e.streak += 1;
                }
            }
        }
    }
}
