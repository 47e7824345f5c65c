//! The long-running controller: keeps a changing set of objects converged.
//!
//! One queue slot per object, earliest deadline wins ([`Scheduler`]); never two
//! reconciles of one object at once; a bound on concurrent reconciles; dependents
//! re-queued when a dependency's outputs change; periodic resync with jitter; per-object
//! exponential backoff; prune of objects whose manifests are gone, from an inventory kept
//! outside the process, guarded against mass deletion. With nothing due it sleeps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use futures::future::{BoxFuture, OptionFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::backoff::Backoff;
use super::cause;
use super::containment;
use super::inventory::{Inventory, InventoryEntry};
use super::lanes::Lanes;
use super::policy::{self, Next};
use super::prune;
use super::reload;
use super::scheduler::{Scheduler, jittered};
use super::status::{self, ErrorInfo, ObjectStatus, ReconcileRecord, Snapshot, rfc3339};
use super::tally::Tally;
use crate::error::{ReconcileError, Severity};
use crate::kinds::{
    Action, DeletionPolicy, Deps, DynKind, Mode, ObjectKey, ObjectMeta, Outputs, Readiness,
    Registry, StepReport, Teardown,
};
use crate::manifest::load::Loaded;
use crate::manifest::{Graph, Object};
use crate::metrics::{ConditionLabels, ErrorLabels, KindCauseLabels, KindLabels, Metrics};

use crate::kinds::{ANNOTATION_RESYNC, ANNOTATION_SUSPEND};

#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Reconciles running at once in each lane (see [`crate::kinds::Kind::LANE`]).
    pub concurrency: usize,
    pub resync: Duration,
    /// Fraction of the period by which resyncs are spread (0.2 = ±10 %).
    pub resync_jitter: f64,
    pub retry: Backoff,
    pub poll: Backoff,
    /// Refuse a reload that would prune more than this fraction of the inventory…
    pub prune_threshold: f64,
    /// …unless the operator allowed it.
    pub allow_mass_prune: bool,
    pub history: usize,
    /// Observe every object and write nothing, as if each were suspended (`diff`).
    pub observe_only: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            resync: Duration::from_secs(300),
            resync_jitter: 0.2,
            retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            poll: Backoff::new(Duration::from_secs(1), Duration::from_secs(15)),
            prune_threshold: 0.5,
            allow_mass_prune: false,
            history: 10,
            observe_only: false,
        }
    }
}

/// What the daemon tells the controller.
#[derive(Debug)]
pub enum Command {
    /// The manifests as just (re)loaded: valid objects and every problem.
    Load(Loaded),
    /// Reconcile everything now (SIGHUP, HTTP POST).
    ReconcileAll,
    /// These local files changed: reconcile the objects made from them (see
    /// [`crate::kinds::Kind::sources`]).
    SourcesChanged(Vec<std::path::PathBuf>),
    /// Allow the prune that the mass-deletion guard refused.
    ConfirmPrune,
}

/// State shared with the HTTP server.
#[derive(Debug, Default)]
pub struct Shared {
    pub snapshot: RwLock<Snapshot>,
}

impl Shared {
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.read().map(|s| s.clone()).unwrap_or_default()
    }
}

struct Tracked {
    object: Object,
    status: ObjectStatus,
    /// Inventory entry as last written (None: not yet recorded).
    recorded: Option<InventoryEntry>,
    retry_streak: u32,
    poll_streak: u32,
    /// What the last converged reconcile ran with: tells why a later one writes.
    converged: Option<cause::Inputs>,
    /// Terminal failure at this content hash: wait for the manifest to change.
    terminal_hash: Option<String>,
    /// Due but held back by a dependency (re-queued when it becomes Ready).
    parked: bool,
    prune: bool,
    /// A reconcile of it has finished since start (whatever its outcome), or it was held
    /// back by a dependency: it has had its first pass.
    first_pass: bool,
    /// What the reconciles of this run did, for a one-shot run's report.
    tally: Tally,
}

impl Tracked {
    fn new(
        object: Object,
        status: ObjectStatus,
        recorded: Option<InventoryEntry>,
        converged: Option<cause::Inputs>,
    ) -> Self {
        Self {
            object,
            status,
            recorded,
            retry_streak: 0,
            poll_streak: 0,
            converged,
            terminal_hash: None,
            parked: false,
            prune: false,
            first_pass: false,
            tally: Tally::default(),
        }
    }

    /// Nothing more will happen to it unless something else does: Ready, failed for good
    /// (terminal, or AWS reports the resource failed), held back by a dependency, or,
    /// observing only, looked at (a recoverable error is retried).
    fn settled(&self, observe_only: bool) -> bool {
        self.parked
            || self.terminal_hash.is_some()
            || self.status.is_ready()
            || self.status.ready_reason() == status::reason::RESOURCE_FAILED
            || (observe_only
                && self.tally.attempts > 0
                && self.tally.failed != Some(Severity::Recoverable))
    }
}

/// Where a one-shot run left one object.
#[derive(Debug, Clone)]
pub struct Final {
    pub status: ObjectStatus,
    pub tally: Tally,
}

/// Where a one-shot run left everything.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub objects: BTreeMap<ObjectKey, Final>,
    pub timed_out: bool,
}

enum TaskResult {
    Step(Result<StepReport, ReconcileError>),
    Teardown(Result<Teardown, ReconcileError>),
}

/// What a finished reconcile leads to.
#[derive(Debug, Default)]
struct After {
    next: Option<Next>,
    /// Its dependents should look again (its outputs changed, or it became Ready).
    dependents_due: bool,
    /// Pruned: it goes.
    removed: bool,
}

struct Done {
    key: ObjectKey,
    /// Content hash of the spec this reconcile ran with.
    hash: String,
    /// The outputs of its dependencies it ran with, by `Kind/name`.
    deps: BTreeMap<String, Outputs>,
    result: TaskResult,
    recorded: Option<InventoryEntry>,
    duration: Duration,
}

pub struct Controller {
    cfg: ControllerConfig,
    registry: Registry,
    inventory: Arc<dyn Inventory>,
    shared: Arc<Shared>,
    metrics: Metrics,
    objects: BTreeMap<ObjectKey, Tracked>,
    graph: Graph,
    outputs: BTreeMap<ObjectKey, Outputs>,
    queue: Scheduler<ObjectKey>,
    running: BTreeSet<ObjectKey>,
    /// Slots taken, by lane.
    lanes: Lanes,
    /// Keys each file defined when it last parsed (a file that fails to parse keeps these).
    file_keys: BTreeMap<PathBuf, BTreeSet<ObjectKey>>,
    /// What the inventory held at start-up and is not (yet) in the manifests.
    orphans: BTreeMap<ObjectKey, InventoryEntry>,
    problems: Vec<String>,
    prune_refused: Option<String>,
    prune_confirmed: bool,
    /// A manifest file has never parsed, so what it defines is unknown.
    unknown_files: bool,
    first_keys: Option<BTreeSet<ObjectKey>>,
    ready: bool,
    /// The deadline of urgent work (edits, new dependency outputs, reconcile-now, prunes):
    /// earlier than any periodic resync, so a backlog of overdue resyncs never delays it.
    urgent: Instant,
    /// When the last falling-behind warning was logged.
    lag_warned: Option<Instant>,
    /// Containers and the pruned contents that stayed inside them (see
    /// [`super::containment`]): such a container is kept when it is pruned.
    kept_inside: BTreeMap<ObjectKey, Vec<ObjectKey>>,
    /// The prune candidates held back while a manifest file cannot be read (logged once).
    prune_held: Option<BTreeSet<ObjectKey>>,
    /// A one-shot run: its report says what failed, so failures are not logged as
    /// warnings at every retry.
    one_shot: bool,
}

/// At most one falling-behind warning this often.
const LAG_WARNING_INTERVAL: Duration = Duration::from_secs(300);

impl Controller {
    pub fn new(
        cfg: ControllerConfig,
        registry: Registry,
        inventory: Arc<dyn Inventory>,
        shared: Arc<Shared>,
        metrics: Metrics,
    ) -> Self {
        let prune_confirmed = cfg.allow_mass_prune;
        let per_lane = cfg.concurrency;
        Self {
            cfg,
            registry,
            inventory,
            shared,
            metrics,
            objects: BTreeMap::new(),
            graph: Graph::default(),
            outputs: BTreeMap::new(),
            queue: Scheduler::default(),
            running: BTreeSet::new(),
            lanes: Lanes::new(per_lane),
            file_keys: BTreeMap::new(),
            orphans: BTreeMap::new(),
            problems: Vec::new(),
            prune_refused: None,
            prune_confirmed,
            unknown_files: false,
            first_keys: None,
            ready: false,
            urgent: Instant::now(),
            lag_warned: None,
            kept_inside: BTreeMap::new(),
            prune_held: None,
            one_shot: false,
        }
    }

    /// A one-shot run (`apply`, `diff`): take in `loaded` and drive it until nothing more
    /// can happen (every object Ready, failed for good, or held back by one that is) or
    /// `timeout` passes; then in-flight reconciles are cancelled. The same scheduling,
    /// gating, policy and bookkeeping as [`Controller::run`], over whatever inventory it
    /// was given (an `apply` prunes nothing: an in-memory one).
    pub async fn converge(mut self, loaded: Loaded, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        self.one_shot = true;
        self.apply_load(loaded);
        let mut tasks = FuturesUnordered::new();
        let mut timed_out = false;
        loop {
            self.launch_due(&mut tasks);
            if tasks.is_empty() && self.settled() {
                break;
            }
            let wake = self.next_wake().map_or(deadline, |w| w.min(deadline));
            tokio::select! {
                Some(done) = tasks.next(), if !tasks.is_empty() => self.record(done),
                _ = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= deadline {
                        timed_out = true;
                        break;
                    }
                }
            }
        }
        // Cancel what still runs (a build is stopped with every process it started).
        drop(tasks);
        self.publish();
        let objects = std::mem::take(&mut self.objects)
            .into_iter()
            .map(|(k, t)| {
                let settled = Final {
                    status: t.status,
                    tally: t.tally,
                };
                (k, settled)
            })
            .collect();
        Outcome { objects, timed_out }
    }

    fn settled(&self) -> bool {
        self.running.is_empty()
            && self
                .objects
                .values()
                .all(|t| t.settled(self.cfg.observe_only))
    }

    /// Observe only: suspended, or the whole controller observes.
    fn observe_only(&self, meta: &ObjectMeta) -> bool {
        self.cfg.observe_only || suspended(meta)
    }

    /// Run until `commands` closes or `shutdown` fires; in-flight reconciles then get up
    /// to `grace` to finish.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        shutdown: tokio::sync::watch::Receiver<bool>,
        grace: Duration,
    ) {
        let mut shutdown = shutdown;
        self.load_inventory(&mut shutdown).await;
        let mut tasks = FuturesUnordered::new();
        // Once per resync period the inventory is read back, so that an entry lost behind
        // the controller's back is written again (see `check_inventory`).
        let mut inventory_check: Option<
            BoxFuture<'static, crate::error::Result<Vec<InventoryEntry>>>,
        > = None;
        let mut check_at = Instant::now() + self.cfg.resync;
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.launch_due(&mut tasks);
            self.publish();
            if inventory_check.is_none() && Instant::now() >= check_at {
                let inventory = Arc::clone(&self.inventory);
                inventory_check = Some(Box::pin(async move { inventory.list().await }));
            }
            let wake = match (self.next_wake(), inventory_check.is_none()) {
                (Some(w), true) => Some(w.min(check_at)),
                (None, true) => Some(check_at),
                (w, false) => w,
            };
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                Some(done) = tasks.next(), if !tasks.is_empty() => self.record(done),
                Some(listed) = OptionFuture::from(inventory_check.as_mut()) => {
                    inventory_check = None;
                    check_at = Instant::now() + self.cfg.resync;
                    self.check_inventory(listed);
                }
                _ = sleep_until(wake) => {}
                _ = shutdown.changed() => {}
            }
        }
        info!(
            in_flight = tasks.len(),
            "stopping: letting in-flight reconciles finish"
        );
        let drain = async {
            while let Some(done) = tasks.next().await {
                self.record(done);
            }
        };
        if tokio::time::timeout(grace, drain).await.is_err() {
            warn!("in-flight reconciles did not finish within the shutdown grace period");
        }
        self.publish();
    }

    async fn load_inventory(&mut self, shutdown: &mut tokio::sync::watch::Receiver<bool>) {
        let mut attempt = 0;
        loop {
            match self.inventory.list().await {
                Ok(entries) => {
                    for e in entries {
                        self.orphans.insert(e.key.clone(), e);
                    }
                    info!(entries = self.orphans.len(), "inventory loaded");
                    return;
                }
                Err(e) => {
                    let wait = self.cfg.retry.next(attempt);
                    attempt += 1;
                    error!(error = %e, retry_in = ?wait, "cannot read the inventory");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        }
    }

    /// Compare the inventory as read back with what this controller wrote: an object
    /// whose entry is missing or different (deleted behind the controller's back, or a
    /// write that never landed) has it written again by its next reconcile, now.
    fn check_inventory(&mut self, listed: crate::error::Result<Vec<InventoryEntry>>) {
        let listed = match listed {
            Ok(listed) => listed,
            Err(e) => {
                warn!(error = %e, "cannot read the inventory back; checking again next resync");
                return;
            }
        };
        let now = Instant::now();
        for key in super::inventory::unrecorded(&listed, self.recorded()) {
            warn!(object = %key, "its inventory entry is missing or changed: writing it again");
            if let Some(t) = self.objects.get_mut(&key) {
                t.recorded = None;
            }
            self.queue.schedule(key, now);
        }
    }

    /// The inventory entries this controller wrote, by object (objects being pruned left
    /// out: their entries go).
    fn recorded(&self) -> impl Iterator<Item = &InventoryEntry> {
        self.objects
            .values()
            .filter(|t| !t.prune)
            .filter_map(|t| t.recorded.as_ref())
    }

    /// The earliest deadline of work that could start (not running, its lane has room);
    /// `None`: wait for a completion, or a command.
    fn next_wake(&self) -> Option<Instant> {
        self.queue.next_deadline_where(|k| {
            !self.running.contains(k) && self.lanes.has_room(self.lane_of(k))
        })
    }

    fn lane_of(&self, key: &ObjectKey) -> &'static str {
        self.registry
            .schema(&key.kind)
            .map_or("default", |s| s.lane())
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Load(loaded) => self.apply_load(loaded),
            Command::ReconcileAll => {
                for (k, t) in &mut self.objects {
                    t.terminal_hash = None;
                    t.parked = false;
                    self.queue.schedule(k.clone(), self.urgent);
                }
                info!(objects = self.objects.len(), "reconciling everything now");
            }
            Command::SourcesChanged(paths) => {
                let mut due = Vec::new();
                for (k, t) in &mut self.objects {
                    let Some(schema) = self.registry.schema(&k.kind) else {
                        continue;
                    };
                    let sources = schema.sources(&t.object.meta, &t.object.spec);
                    if paths
                        .iter()
                        .any(|p| sources.iter().any(|s| p.starts_with(s)))
                    {
                        t.terminal_hash = None;
                        t.parked = false;
                        due.push(k.clone());
                    }
                }
                for k in due {
                    info!(object = %k, "its local sources changed: reconciling now");
                    self.queue.schedule(k, self.urgent);
                }
            }
            Command::ConfirmPrune => {
                if self.prune_refused.is_some() {
                    self.prune_confirmed = true;
                    warn!("mass prune confirmed by the operator");
                    self.plan_prune();
                } else {
                    info!("prune confirmation ignored: no prune is waiting for one");
                }
            }
        }
    }

    /// Take in a fresh load of the manifests.
    fn apply_load(&mut self, loaded: Loaded) {
        let wall = SystemTime::now();
        let (file_keys, unknown_files) = reload::file_keys(&self.file_keys, &loaded);
        self.file_keys = file_keys;
        self.unknown_files = unknown_files;
        self.problems = loaded.problems.iter().map(|p| p.to_string()).collect();
        let mut problems_by_key = reload::problems_by_key(&loaded, &self.file_keys);
        // New and changed objects (by content hash); invalid ones keep their last good spec.
        let valid: BTreeMap<ObjectKey, Object> = loaded
            .objects
            .into_iter()
            .filter(|o| !problems_by_key.contains_key(&o.key))
            .map(|o| (o.key.clone(), o))
            .collect();
        let graph = self.next_graph(&valid, &mut problems_by_key);
        for (key, object) in valid {
            if !problems_by_key.contains_key(&key) {
                self.take_in(key, object, wall);
            }
        }
        for (key, t) in &mut self.objects {
            t.status.validation_error = problems_by_key.get(key).map(|ps| ps.join("; "));
            t.status.source = t.object.source.to_string();
        }
        self.graph = graph;
        if self.first_keys.is_none() {
            self.first_keys = Some(self.objects.keys().cloned().collect());
        }
        self.plan_prune();
    }

    /// The dependency graph of what is defined once `valid` is taken in. A cycle is a
    /// problem of each object in it, which keeps its previous spec.
    fn next_graph(
        &mut self,
        valid: &BTreeMap<ObjectKey, Object>,
        problems_by_key: &mut BTreeMap<ObjectKey, Vec<String>>,
    ) -> Graph {
        let defined: BTreeSet<&ObjectKey> = self.file_keys.values().flatten().collect();
        let mut candidate: BTreeMap<ObjectKey, Object> = self
            .objects
            .iter()
            .filter(|(k, t)| !t.prune && defined.contains(*k))
            .map(|(k, t)| (k.clone(), t.object.clone()))
            .collect();
        for (k, o) in valid {
            candidate.insert(k.clone(), o.clone());
        }
        let candidates: Vec<Object> = candidate.into_values().collect();
        let cycle = match Graph::build(&candidates, &self.registry) {
            Ok(g) => return g,
            Err(cycle) => cycle,
        };
        for p in cycle {
            self.problems.push(p.to_string());
            if let Some((k, n)) = p.object.as_deref().and_then(|o| o.split_once('/')) {
                problems_by_key
                    .entry(ObjectKey::new(k, n))
                    .or_default()
                    .push(p.to_string());
            }
        }
        let kept: Vec<Object> = candidates
            .into_iter()
            .filter_map(|o| {
                if problems_by_key.contains_key(&o.key) {
                    self.objects.get(&o.key).map(|t| t.object.clone())
                } else {
                    Some(o)
                }
            })
            .collect();
        Graph::build(&kept, &self.registry).unwrap_or_else(|_| self.graph.clone())
    }

    /// Take in one valid object: new, changed (by content hash), or as it was.
    fn take_in(&mut self, key: ObjectKey, object: Object, wall: SystemTime) {
        match self.objects.get_mut(&key) {
            Some(t) if t.object.hash == object.hash && !t.prune => {}
            Some(t) => {
                info!(object = %key, "manifest changed");
                t.object = object;
                t.prune = false;
                t.status.pruning = false;
                t.terminal_hash = None;
                t.retry_streak = 0;
                t.parked = false;
                self.queue.set(key, self.urgent);
            }
            None => {
                info!(object = %key, "new object");
                let recorded = self.orphans.remove(&key);
                // The inventory remembers what it was last reconciled with.
                let converged = recorded.as_ref().map(|e| cause::Inputs {
                    hash: e.hash.clone(),
                    deps: e.dep_outputs.clone(),
                });
                let mut status = ObjectStatus::new(&key.kind, &key.name);
                status.mark_pending(wall);
                self.objects.insert(
                    key.clone(),
                    Tracked::new(object, status, recorded, converged),
                );
                self.queue.set(key, self.urgent);
            }
        }
    }

    /// Objects no manifest defines any more (and inventory orphans) are pruned, unless
    /// the plan (see [`prune::plan`]) holds them back.
    fn plan_prune(&mut self) {
        let defined: BTreeSet<&ObjectKey> = self.file_keys.values().flatten().collect();
        let loaded: BTreeSet<&ObjectKey> = self
            .objects
            .iter()
            .filter(|(_, t)| !t.prune)
            .map(|(k, _)| k)
            .collect();
        let orphans: BTreeSet<&ObjectKey> = self
            .orphans
            .keys()
            .filter(|k| !self.objects.contains_key(*k))
            .collect();
        let plan = prune::plan(prune::Facts {
            defined: &defined,
            loaded: &loaded,
            orphans: &orphans,
            unknown_files: self.unknown_files,
            threshold: self.cfg.prune_threshold,
            confirmed: self.prune_confirmed,
        });
        let gone = match plan {
            prune::Plan::Nothing => {
                self.prune_refused = None;
                self.prune_held = None;
                return;
            }
            prune::Plan::Held(gone) => {
                // Said once per set of candidates, not at every reload.
                if self.prune_held.as_ref() != Some(&gone) {
                    warn!(
                        candidates = gone.len(),
                        "not pruning while a manifest file cannot be read"
                    );
                    self.prune_held = Some(gone);
                }
                return;
            }
            prune::Plan::Refused(msg) => {
                self.prune_held = None;
                if self.prune_refused.as_deref() != Some(msg.as_str()) {
                    error!("{msg}");
                }
                self.prune_refused = Some(msg);
                return;
            }
            prune::Plan::Go(gone) => gone,
        };
        self.prune_held = None;
        self.prune_refused = None;
        if !self.cfg.allow_mass_prune {
            self.prune_confirmed = false; // a confirmation covers one prune
        }
        let wall = SystemTime::now();
        for key in gone {
            if let Some(entry) = self.orphans.remove(&key) {
                self.adopt_orphan(entry);
            }
            if let Some(t) = self.objects.get_mut(&key) {
                info!(object = %key, "manifest removed: pruning");
                t.prune = true;
                t.parked = false;
                t.status.mark_pruning(wall);
                self.queue.set(key, self.urgent);
            }
        }
    }

    /// Track an inventory entry no manifest defines, so that it can be pruned: its spec
    /// as recorded, and the outputs of its dependencies it was last reconciled with.
    fn adopt_orphan(&mut self, entry: InventoryEntry) {
        let object = Object {
            key: entry.key.clone(),
            meta: entry.meta.clone(),
            spec: entry.spec.clone(),
            deletion_policy: entry.deletion_policy,
            source: crate::manifest::Source {
                file: PathBuf::from("(inventory)"),
                line: 0,
            },
            hash: entry.hash.clone(),
        };
        for (k, v) in &entry.dep_outputs {
            if let Some((kind, name)) = k.split_once('/') {
                self.outputs
                    .entry(ObjectKey::new(kind, name))
                    .or_insert_with(|| v.clone());
            }
        }
        let status = ObjectStatus::new(&entry.key.kind, &entry.key.name);
        let mut tracked = Tracked::new(object, status, Some(entry), None);
        tracked.first_pass = true;
        self.objects.insert(tracked.object.key.clone(), tracked);
    }

    /// Whether `key` may run now; if not, why.
    fn gate(&self, key: &ObjectKey) -> Result<(), String> {
        let Some(t) = self.objects.get(key) else {
            return Err("unknown".into());
        };
        if t.prune {
            // Delete dependents first: wait while any tracked object still refers to it.
            let dependents: Vec<String> = self
                .objects
                .iter()
                .filter(|(k, other)| *k != key && self.refers_to(other, key))
                .map(|(k, _)| k.to_string())
                .collect();
            return if dependents.is_empty() {
                Ok(())
            } else {
                Err(format!("waiting for {} to go first", dependents.join(", ")))
            };
        }
        let waiting: Vec<String> = self
            .graph
            .deps
            .get(key)
            .into_iter()
            .flatten()
            .filter(|d| {
                !self
                    .objects
                    .get(*d)
                    .is_some_and(|t| t.status.is_ready() && !t.prune)
            })
            .map(|d| d.to_string())
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!("waiting for {}", waiting.join(", ")))
        }
    }

    fn refers_to(&self, t: &Tracked, target: &ObjectKey) -> bool {
        self.registry
            .schema(&t.object.key.kind)
            .map(|s| s.references(&t.object.spec))
            .unwrap_or_default()
            .iter()
            .any(|r| &r.target == target)
    }

    fn launch_due(&mut self, tasks: &mut FuturesUnordered<BoxFuture<'static, Done>>) {
        let now = Instant::now();
        loop {
            let (running, lanes, registry) = (&self.running, &self.lanes, &self.registry);
            let may_run = |k: &ObjectKey| {
                !running.contains(k)
                    && lanes.has_room(registry.schema(&k.kind).map_or("default", |s| s.lane()))
            };
            let Some((key, due)) = self.queue.pop_due(now, may_run) else {
                break;
            };
            if due > self.urgent {
                self.note_resync_lag(&key, now.saturating_duration_since(due));
            }
            if let Err(why) = self.gate(&key) {
                if let Some(t) = self.objects.get_mut(&key) {
                    t.parked = true;
                    t.first_pass = true;
                    t.status.next_reconcile_at = None;
                    let wall = SystemTime::now();
                    if !t.prune {
                        t.status.mark_waiting_for_dependency(&why, wall);
                    }
                }
                continue;
            }
            let Some(task) = self.task(&key) else {
                self.no_live_kind(&key);
                continue;
            };
            self.lanes.take(self.lane_of(&key));
            self.running.insert(key.clone());
            if let Some(t) = self.objects.get_mut(&key) {
                t.parked = false;
            }
            tasks.push(task);
        }
        self.metrics.queue_depth.set(self.queue.due(now) as i64);
    }

    /// `key`'s kind has no live implementation (an offline registry): it fails until the
    /// manifest changes.
    fn no_live_kind(&mut self, key: &ObjectKey) {
        let Some(t) = self.objects.get_mut(key) else {
            return;
        };
        let message = format!("no live implementation of kind {}", key.kind);
        t.first_pass = true;
        t.terminal_hash = Some(t.object.hash.clone());
        t.tally.failed(Severity::Terminal);
        t.status.last_error = Some(ErrorInfo {
            at: rfc3339(SystemTime::now()),
            reason: "UnknownKind".into(),
            message: message.clone(),
            severity: "terminal".into(),
        });
        t.status
            .mark_failed("UnknownKind", &message, true, SystemTime::now());
    }

    /// Record how late a periodic resync starts; warn (at most every few minutes) when it
    /// is later than the object's whole period, i.e. the daemon is falling behind.
    fn note_resync_lag(&mut self, key: &ObjectKey, lag: Duration) {
        self.metrics.resync_lag.set(lag.as_secs_f64());
        let Some(t) = self.objects.get(key) else {
            return;
        };
        let period = resync_period(&t.object.meta, &self.cfg);
        let quiet = self
            .lag_warned
            .is_some_and(|at| at.elapsed() < LAG_WARNING_INTERVAL);
        if lag > period && !quiet {
            self.lag_warned = Some(Instant::now());
            warn!(
                object = %key,
                lag_s = (lag.as_secs_f64() * 10.0).round() / 10.0,
                resync_s = (period.as_secs_f64() * 10.0).round() / 10.0,
                due = self.queue.due(Instant::now()),
                concurrency = self.cfg.concurrency,
                "falling behind: resyncs start later than their period; raise --concurrency or --aws-rate-limit, or lengthen --resync"
            );
        }
    }

    /// The reconcile (or, for an object being pruned, the teardown) of `key`, ready to run.
    fn task(&self, key: &ObjectKey) -> Option<BoxFuture<'static, Done>> {
        let t = self.objects.get(key)?;
        let kind = Arc::clone(self.registry.get(&key.kind)?);
        // Only the outputs of its own dependencies travel with the task.
        let deps: BTreeMap<ObjectKey, Outputs> = self
            .registry
            .schema(&key.kind)
            .map(|s| s.references(&t.object.spec))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| {
                self.outputs
                    .get(&r.target)
                    .map(|o| (r.target.clone(), o.clone()))
            })
            .collect();
        let span = info_span!("reconcile", kind = %key.kind, name = %key.name);
        let task = if t.prune {
            self.teardown_task(t, kind, deps)
        } else {
            self.step_task(t, kind, deps)
        };
        Some(Box::pin(task.instrument(span)))
    }

    /// Delete per policy (a container stays while what it holds does), then drop the
    /// inventory entry.
    fn teardown_task(
        &self,
        t: &Tracked,
        kind: Arc<dyn DynKind>,
        deps: BTreeMap<ObjectKey, Outputs>,
    ) -> BoxFuture<'static, Done> {
        let inventory = Arc::clone(&self.inventory);
        let (key, meta, spec) = (
            t.object.key.clone(),
            t.object.meta.clone(),
            t.object.spec.clone(),
        );
        let hash = t.object.hash.clone();
        let policy = t.object.deletion_policy;
        let kept = match policy {
            DeletionPolicy::Delete => {
                containment::kept_by(self.kept_inside.get(&key).map_or(&[], |k| k.as_slice()))
            }
            DeletionPolicy::Retain => None,
        };
        if let Some(why) = &kept {
            info!(object = %key, "{why}");
        }
        Box::pin(async move {
            let start = Instant::now();
            let mut result = match kept {
                Some(_) => Ok(Teardown::Retained),
                None => match kind
                    .teardown(&meta, &spec, &Deps::new(&deps), policy, false)
                    .await
                {
                    // What it holds keeps it (a repository with images): it stays, as if
                    // retained, and its entry goes.
                    Err(e) if e.stays => {
                        info!(object = %key, "{}", e.message);
                        Ok(Teardown::Retained)
                    }
                    result => result,
                },
            };
            if result.is_ok()
                && let Err(e) = inventory.remove(&key).await
            {
                result = Err(e);
            }
            Done {
                key,
                hash,
                deps: BTreeMap::new(),
                result: TaskResult::Teardown(result),
                recorded: None,
                duration: start.elapsed(),
            }
        })
    }

    /// Record intent in the inventory when it changed, then one reconcile step (observe
    /// only while suspended).
    fn step_task(
        &self,
        t: &Tracked,
        kind: Arc<dyn DynKind>,
        deps: BTreeMap<ObjectKey, Outputs>,
    ) -> BoxFuture<'static, Done> {
        let inventory = Arc::clone(&self.inventory);
        let (key, meta, spec) = (
            t.object.key.clone(),
            t.object.meta.clone(),
            t.object.spec.clone(),
        );
        let hash = t.object.hash.clone();
        let mode = if self.observe_only(&meta) {
            Mode::Plan
        } else {
            Mode::Apply
        };
        let dep_outputs: BTreeMap<String, Outputs> = deps
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let entry = InventoryEntry {
            key: key.clone(),
            meta: meta.clone(),
            spec: spec.clone(),
            deletion_policy: t.object.deletion_policy,
            hash: hash.clone(),
            dep_outputs: dep_outputs.clone(),
        };
        let record = (mode == Mode::Apply && t.recorded.as_ref() != Some(&entry)).then_some(entry);
        Box::pin(async move {
            let start = Instant::now();
            // Record intent before anything is created, so a crash never orphans it.
            let recorded = match &record {
                Some(entry) => inventory.put(entry).await,
                None => Ok(()),
            };
            let (result, recorded) = match recorded {
                Ok(()) => (
                    kind.step(&meta, &spec, &Deps::new(&deps), mode).await,
                    record,
                ),
                Err(e) => (Err(e), None),
            };
            Done {
                key,
                hash,
                deps: dep_outputs,
                result: TaskResult::Step(result),
                recorded,
                duration: start.elapsed(),
            }
        })
    }

    fn record(&mut self, done: Done) {
        let Done {
            key,
            hash,
            deps,
            result,
            recorded,
            duration,
        } = done;
        if self.running.remove(&key) {
            self.lanes.give_back(self.lane_of(&key));
        }
        self.metrics
            .reconcile_duration
            .get_or_create(&KindLabels {
                kind: key.kind.clone(),
            })
            .observe(duration.as_secs_f64());
        let wall = SystemTime::now();
        let Some(t) = self.objects.get_mut(&key) else {
            return;
        };
        t.first_pass = true;
        if recorded.is_some() {
            t.recorded = recorded;
        }
        if matches!(result, TaskResult::Step(_)) {
            t.status.observed_hash = hash.clone();
        }
        let mut rec = ReconcileRecord {
            at: rfc3339(wall),
            duration_ms: duration.as_millis() as u64,
            outcome: String::new(),
            reason: String::new(),
        };
        let after = match result {
            TaskResult::Teardown(Ok(outcome)) => self.pruned(&key, outcome, &mut rec),
            TaskResult::Step(Ok(step)) => {
                let ran_with = cause::Inputs { hash, deps };
                self.stepped(&key, ran_with, step, wall, &mut rec)
            }
            TaskResult::Step(Err(e)) | TaskResult::Teardown(Err(e)) => {
                self.failed(&key, &hash, e, wall, &mut rec)
            }
        };
        self.finish(&key, rec, after, wall);
    }

    /// A teardown went through: the object goes (unless its manifest came back).
    fn pruned(&mut self, key: &ObjectKey, outcome: Teardown, rec: &mut ReconcileRecord) -> After {
        rec.outcome = match outcome {
            Teardown::Deleted => "deleted",
            Teardown::Retained => "retained",
            Teardown::Absent => "absent",
            Teardown::NotOwned => "not-owned",
        }
        .into();
        info!(object = %key, outcome = %rec.outcome, "pruned");
        if containment::stays(outcome)
            && let Some(t) = self.objects.get(key)
        {
            for container in containers_of(&self.registry, &t.object) {
                self.kept_inside
                    .entry(container)
                    .or_default()
                    .push(key.clone());
            }
        }
        After {
            next: None,
            dependents_due: false,
            removed: true,
        }
    }

    /// A reconcile step went through: take in what it saw and decide what is next.
    fn stepped(
        &mut self,
        key: &ObjectKey,
        ran_with: cause::Inputs,
        step: StepReport,
        wall: SystemTime,
        rec: &mut ReconcileRecord,
    ) -> After {
        let timings = self.timings(key);
        let observe_only = self
            .objects
            .get(key)
            .is_some_and(|t| self.observe_only(&t.object.meta));
        let Some(t) = self.objects.get_mut(key) else {
            return After::default();
        };
        t.tally.succeeded(step.action, &step.changes);
        rec.outcome = match (observe_only, step.action) {
            (true, Action::Unchanged) if step.changes.is_empty() => "unchanged",
            (true, _) => "drift",
            (false, Action::Create) => "created",
            (false, Action::Update) => "updated",
            (false, Action::Unchanged) => "unchanged",
        }
        .into();
        let wrote = matches!(step.action, Action::Create | Action::Update) && !observe_only;
        if wrote {
            let why = cause::cause(t.converged.as_ref(), &ran_with, &step.changes);
            self.metrics
                .changes
                .get_or_create(&KindCauseLabels {
                    kind: key.kind.clone(),
                    cause: why.label().to_string(),
                })
                .inc();
            info!(object = %key, cause = why.label(), changes = step.changes.len(), "{}", why.describe());
        }
        t.retry_streak = 0;
        t.status.last_error = None;
        t.status.suspended = observe_only;
        t.status.drift = if observe_only {
            step.changes.clone()
        } else {
            Vec::new()
        };
        let mut dependents_due = false;
        if !step.outputs.is_empty() && self.outputs.get(key) != Some(&step.outputs) {
            self.outputs.insert(key.clone(), step.outputs.clone());
            dependents_due = true;
        }
        // What the kind publishes about the object (a token's expiry), as it is.
        self.metrics
            .object_reconciled(&key.kind, &key.name, &step.gauges, wrote);
        t.status.outputs = step.outputs;
        if observe_only {
            t.status.mark_suspended(step.action != Action::Create, wall);
            return After {
                next: Some(Next::Resync(timings.resync)),
                dependents_due,
                removed: false,
            };
        }
        let next =
            policy::success_policy(&step.readiness, step.requeue_after, t.poll_streak, &timings);
        match &step.readiness {
            Readiness::Ready => {
                t.poll_streak = 0;
                if ran_with.hash == t.object.hash {
                    t.converged = Some(ran_with);
                }
                dependents_due |= !t.status.is_ready();
                t.status.mark_ready(wall);
            }
            Readiness::Progressing(msg) => {
                t.poll_streak += 1;
                t.status.mark_progressing(msg, wall);
            }
            Readiness::Failed(msg) => t.status.mark_resource_failed(msg, wall),
        }
        After {
            next: Some(next),
            dependents_due,
            removed: false,
        }
    }

    /// A reconcile or teardown failed: say so, and decide when to try again.
    fn failed(
        &mut self,
        key: &ObjectKey,
        hash: &str,
        e: ReconcileError,
        wall: SystemTime,
        rec: &mut ReconcileRecord,
    ) -> After {
        let timings = self.timings(key);
        let Some(t) = self.objects.get_mut(key) else {
            return After::default();
        };
        rec.outcome = "error".into();
        rec.reason = e.reason.clone();
        if !t.prune {
            t.tally.failed(e.severity);
        }
        self.metrics
            .reconcile_errors
            .get_or_create(&ErrorLabels {
                kind: key.kind.clone(),
                reason: e.reason.clone(),
            })
            .inc();
        self.metrics.object_failed(&key.kind, &key.name, &e.reason);
        let severity = match e.severity {
            Severity::Terminal => "terminal",
            Severity::Recoverable => "recoverable",
            Severity::Waiting => "waiting",
        };
        if self.one_shot {
            debug!(object = %key, reason = %e.reason, severity, "{}", e.message);
        } else {
            warn!(object = %key, reason = %e.reason, severity, "{}", e.message);
        }
        t.status.last_error = Some(ErrorInfo {
            at: rfc3339(wall),
            reason: e.reason.clone(),
            message: e.message.clone(),
            severity: severity.into(),
        });
        t.status
            .mark_failed(&e.reason, &e.message, e.is_terminal() || e.unready, wall);
        let next = policy::error_policy(&e, t.prune, t.retry_streak, &timings);
        match next {
            Next::AwaitChange(_) if hash == t.object.hash => {
                t.terminal_hash = Some(hash.to_string());
            }
            Next::Retry(_) => t.retry_streak += 1,
            _ => {}
        }
        After {
            next: Some(next),
            dependents_due: false,
            removed: false,
        }
    }

    /// Record the reconcile in the object's history, then remove it or queue it again,
    /// and wake what was waiting on it.
    fn finish(&mut self, key: &ObjectKey, rec: ReconcileRecord, after: After, wall: SystemTime) {
        let history = self.cfg.history;
        let Some(t) = self.objects.get_mut(key) else {
            return;
        };
        let mut next = after.next.map(Next::after);
        let mut removed = after.removed;
        if removed && !t.prune {
            // The manifest came back while it was being deleted: reconcile it again.
            removed = false;
            next = Some(Duration::ZERO);
        }
        t.status.record(rec, history);
        if removed {
            self.metrics.object_gone(&key.kind, &key.name);
            self.objects.remove(key);
            self.outputs.remove(key);
            self.kept_inside.remove(key);
            self.queue.remove(key);
            // Whatever it was holding back may go now.
            self.unpark_all();
            return;
        }
        let now = Instant::now();
        match next {
            Some(d) => {
                // An edit or a dependency change while this ran queued it earlier: keep that.
                self.queue.schedule(key.clone(), now + d);
                let at = self
                    .queue
                    .deadline(key)
                    .map_or(d, |t| t.saturating_duration_since(now));
                t.status.next_reconcile_at = Some(rfc3339(wall + at));
            }
            None => t.status.next_reconcile_at = None,
        }
        if after.dependents_due {
            for d in self.graph.dependents.get(key).cloned().unwrap_or_default() {
                if let Some(t) = self.objects.get_mut(&d) {
                    t.parked = false;
                    if t.terminal_hash.is_none() {
                        self.queue.schedule(d, self.urgent);
                    }
                }
            }
        }
        self.unpark_all();
    }

    /// The policy's timings for `key`.
    fn timings(&self, key: &ObjectKey) -> policy::Timings {
        let resync = self.objects.get(key).map_or(self.cfg.resync, |t| {
            resync_period(&t.object.meta, &self.cfg)
        });
        policy::Timings {
            resync,
            retry: self.cfg.retry,
            poll: self.cfg.poll,
            jitter: rand::random::<f64>(),
        }
    }

    /// Re-queue parked objects (a dependency may have become ready, or a dependent gone).
    fn unpark_all(&mut self) {
        let parked: Vec<ObjectKey> = self
            .objects
            .iter()
            .filter(|(k, t)| t.parked && !self.running.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in parked {
            if self.gate(&k).is_ok() {
                if let Some(t) = self.objects.get_mut(&k) {
                    t.parked = false;
                }
                self.queue.schedule(k, self.urgent);
            }
        }
    }

    fn publish(&mut self) {
        if !self.ready
            && let Some(first) = &self.first_keys
        {
            // Whatever is queued or running now: a fleet with periodic resyncs may never
            // have an empty queue.
            self.ready = first
                .iter()
                .all(|k| self.objects.get(k).is_none_or(|t| t.first_pass));
        }
        let mut by_condition: BTreeMap<(String, String), i64> = BTreeMap::new();
        for t in self.objects.values() {
            for c in &t.status.conditions {
                *by_condition
                    .entry((c.kind.clone(), c.status.clone()))
                    .or_insert(0) += 1;
            }
        }
        for cond in [status::READY, status::SYNCED] {
            for status in ["True", "False"] {
                self.metrics
                    .objects
                    .get_or_create(&ConditionLabels {
                        condition: cond.into(),
                        status: status.into(),
                    })
                    .set(
                        by_condition
                            .get(&(cond.to_string(), status.to_string()))
                            .copied()
                            .unwrap_or(0),
                    );
            }
        }
        let snapshot = Snapshot {
            generated_at: rfc3339(SystemTime::now()),
            ready: self.ready,
            objects: self.objects.values().map(|t| t.status.clone()).collect(),
            problems: self.problems.clone(),
            prune_refused: self.prune_refused.clone(),
            queue_depth: self.queue.due(Instant::now()),
        };
        if let Ok(mut s) = self.shared.snapshot.write() {
            *s = snapshot;
        }
    }
}

/// The objects `object` lives inside (a user's pool, an image's repository).
fn containers_of(registry: &Registry, object: &Object) -> Vec<ObjectKey> {
    let Some(schema) = registry.schema(&object.key.kind) else {
        return Vec::new();
    };
    schema
        .references(&object.spec)
        .into_iter()
        .map(|r| r.target)
        .filter(|t| schema.contained_in().contains(&t.kind.as_str()))
        .collect()
}

fn suspended(meta: &ObjectMeta) -> bool {
    meta.annotations
        .get(ANNOTATION_SUSPEND)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn resync_period(meta: &ObjectMeta, cfg: &ControllerConfig) -> Duration {
    let period = meta
        .annotations
        .get(ANNOTATION_RESYNC)
        .and_then(|v| humantime::parse_duration(v).ok())
        .unwrap_or(cfg.resync)
        .clamp(Duration::from_secs(1), Duration::from_secs(7 * 24 * 3600));
    jittered(period, cfg.resync_jitter, rand::random::<f64>())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}
