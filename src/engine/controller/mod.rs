//! The long-running controller: keeps a changing set of objects converged.
//!
//! One queue slot per object, earliest deadline wins, a queue per lane ([`LaneQueue`]); never two
//! reconciles of one object at once; a bound on concurrent reconciles per lane; dependents
//! re-queued when a dependency's outputs change; periodic resync with jitter; per-object
//! exponential backoff; prune of objects whose manifests are gone, from an inventory kept
//! outside the process, guarded against mass deletion. With nothing due it sleeps.
//!
//! Here: the state, the loop and the scheduling. Taking in a load and planning a prune
//! (`load.rs`), the work of one reconcile (`task.rs`), taking in its result (`record.rs`),
//! and the one-shot run `apply` and `diff` are (`one_shot.rs`).

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
use super::inventory::{EntryDigest, Inventory, InventoryEntry};
use super::lanes::{LaneQueue, Lanes};
use super::policy::{self, Next};
use super::prune;
use super::reload;
use super::scheduler::{jittered, sleep_until};
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

mod load;
mod one_shot;
mod record;
mod task;
mod tracked;

use tracked::Tracked;

pub use one_shot::{Final, Outcome};

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
    /// Start as a standby replica (leader election): observe only, slowly, and prune
    /// nothing, until [`Command::Lead`].
    pub standby: bool,
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
            standby: false,
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
    /// This replica holds the leader lease now: read the inventory back (the previous
    /// leader wrote it), then write, prune and renew.
    Lead,
    /// This replica lost the leader lease: observe only, and leave prunes to the leader.
    Follow,
}

/// A standby observes each object this many times less often than the resync period.
pub const STANDBY_SLOWDOWN: u32 = 4;

/// State shared with the HTTP server.
#[derive(Debug, Default)]
pub struct Shared {
    pub snapshot: RwLock<Arc<Snapshot>>,
}

impl Shared {
    /// The last snapshot published (shared, not copied: readers never hold up the
    /// controller).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().map(|s| s.clone()).unwrap_or_default()
    }
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
    /// It ran observing only (a suspended object, `diff`, a standby).
    observed_only: bool,
    /// Content hash of the spec this reconcile ran with.
    hash: String,
    /// What it ran with: its spec's hash and its dependencies' outputs.
    ran_with: cause::Inputs,
    result: TaskResult,
    /// The digest of the inventory entry it wrote, if it wrote one.
    recorded: Option<EntryDigest>,
    duration: Duration,
    /// The source revision in force when it started.
    revision: Option<Arc<str>>,
}

pub struct Controller {
    cfg: ControllerConfig,
    registry: Registry,
    inventory: Arc<dyn Inventory>,
    shared: Arc<Shared>,
    metrics: Metrics,
    objects: BTreeMap<ObjectKey, Tracked>,
    graph: Graph,
    /// The graph is that of the tracked objects (not one kept from before a reload whose
    /// dependency cycle could not be set aside).
    graph_exact: bool,
    outputs: BTreeMap<ObjectKey, Arc<Outputs>>,
    queue: LaneQueue,
    running: BTreeSet<ObjectKey>,
    /// Due but held back by a dependency: re-queued when it may run. Its own set, so that
    /// what finishes looks at the few objects waiting, not at all of them.
    parked: BTreeSet<ObjectKey>,
    /// Slots taken, by lane.
    lanes: Lanes,
    /// Keys each file defined when it last parsed (a file that fails to parse keeps these).
    file_keys: reload::FileKeys,
    /// What the inventory held at start-up and is not (yet) in the manifests.
    orphans: BTreeMap<ObjectKey, InventoryEntry>,
    problems: Vec<String>,
    prune_refused: Option<String>,
    prune_confirmed: bool,
    /// A manifest file has never parsed, so what it defines is unknown.
    unknown_files: bool,
    first_keys: Option<BTreeSet<ObjectKey>>,
    ready: bool,
    /// The deadline of urgent work (new dependency outputs, reconcile-now, the first
    /// load): earlier than any periodic resync, so a backlog of overdue resyncs never
    /// delays it.
    urgent: Instant,
    /// The deadline of edits (a manifest or a build source changed, a manifest removed,
    /// once the first load is in): earlier still, and an edit may take a lane's spare slot
    /// (see [`Lanes::has_spare_room`]), so that it starts at once even in a fleet whose
    /// lanes are all busy with resyncs.
    edit: Instant,
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
    /// When the snapshot was last published (see [`PUBLISH_INTERVAL`]).
    published_at: Option<Instant>,
    /// A standby replica (leader election): observes only, slowly; prunes nothing.
    standby: bool,
    /// Just became the leader: nothing starts until the inventory has been read back.
    promoting: bool,
    /// Where state changes are told (see [`super::events`]).
    events: Option<super::events::EventSink>,
    /// The source revision of the last load taken in (a git source's).
    revision: Option<Arc<str>>,
    /// A new revision being applied: the objects not reconciled since it was taken in.
    applying: Option<(Arc<str>, BTreeSet<ObjectKey>)>,
    /// The last revision whose objects have all been reconciled.
    applied_revision: Option<Arc<str>>,
}

/// The snapshot the HTTP server reads is rebuilt at most this often. Rebuilding it takes a
/// pointer to every object's status (and copies those changed), so doing it at every
/// event would make a round of N objects cost O(N²); this way a change is visible within
/// this long, whatever N.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(200);

/// The inventory is read back every this many resync periods (5 minutes at the default
/// 30 s).
pub const INVENTORY_CHECK_RESYNCS: u32 = 10;

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
        let cfg_standby = cfg.standby;
        let per_lane = cfg.concurrency;
        let urgent = Instant::now();
        let lane_of_kind = registry
            .names()
            .into_iter()
            .filter_map(|kind| Some((kind.to_string(), registry.schema(kind)?.lane())))
            .collect();
        Self {
            cfg,
            registry,
            inventory,
            shared,
            metrics,
            objects: BTreeMap::new(),
            graph: Graph::default(),
            graph_exact: true,
            outputs: BTreeMap::new(),
            queue: LaneQueue::new(lane_of_kind),
            running: BTreeSet::new(),
            parked: BTreeSet::new(),
            lanes: Lanes::new(per_lane),
            file_keys: BTreeMap::new(),
            orphans: BTreeMap::new(),
            problems: Vec::new(),
            prune_refused: None,
            prune_confirmed,
            unknown_files: false,
            first_keys: None,
            ready: false,
            urgent,
            edit: urgent.checked_sub(Duration::from_secs(1)).unwrap_or(urgent),
            lag_warned: None,
            kept_inside: BTreeMap::new(),
            prune_held: None,
            one_shot: false,
            published_at: None,
            standby: cfg_standby,
            promoting: false,
            events: None,
            revision: None,
            applying: None,
            applied_revision: None,
        }
    }

    /// Tell state changes worth a person's attention to `sink` (see [`super::events`]).
    pub fn with_events(mut self, sink: super::events::EventSink) -> Self {
        self.events = Some(sink);
        self
    }

    fn emit(&self, event: super::events::Event) {
        if let Some(sink) = &self.events {
            sink(event);
        }
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
        // Every few resync periods the inventory is read back, so that an entry lost behind
        // the controller's back is written again (see `check_inventory`). Not at every
        // one: it is a paged read of every entry (ten per page), and losing one is rare.
        let mut inventory_check: Option<
            BoxFuture<'static, crate::error::Result<Vec<InventoryEntry>>>,
        > = None;
        let check_every = self.cfg.resync * INVENTORY_CHECK_RESYNCS;
        let mut check_at = Instant::now() + check_every;
        // On promotion, the inventory as the previous leader left it.
        let mut promotion: Option<BoxFuture<'static, Vec<InventoryEntry>>> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            match (self.promoting, promotion.is_some()) {
                (true, false) => promotion = Some(self.read_inventory_until_read()),
                (false, true) => promotion = None, // lost the lease meanwhile
                _ => {}
            }
            self.launch_due(&mut tasks);
            self.check_applied();
            let publish_at = self.publish_soon();
            if inventory_check.is_none() && Instant::now() >= check_at {
                let inventory = Arc::clone(&self.inventory);
                inventory_check = Some(Box::pin(async move { inventory.list().await }));
            }
            let wake = match (self.next_wake(), inventory_check.is_none()) {
                (Some(w), true) => Some(w.min(check_at)),
                (None, true) => Some(check_at),
                (w, false) => w,
            };
            let wake = match (wake, publish_at) {
                (Some(w), Some(p)) => Some(w.min(p)),
                (w, p) => w.or(p),
            };
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                Some(done) = tasks.next(), if !tasks.is_empty() => self.record(done),
                Some(listed) = OptionFuture::from(inventory_check.as_mut()) => {
                    inventory_check = None;
                    check_at = Instant::now() + check_every;
                    self.check_inventory(listed);
                }
                Some(listed) = OptionFuture::from(promotion.as_mut()) => {
                    promotion = None;
                    self.take_over(listed);
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
        if self.standby {
            return; // the leader keeps the inventory
        }
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
    fn recorded(&self) -> impl Iterator<Item = (&ObjectKey, EntryDigest)> {
        self.objects
            .iter()
            .filter(|(_, t)| !t.prune)
            .filter_map(|(key, t)| Some((key, t.recorded?)))
    }

    /// The earliest deadline of work that could start (not running, its lane has room);
    /// `None`: wait for a completion, or a command.
    fn next_wake(&self) -> Option<Instant> {
        if self.promoting {
            return None; // nothing starts before the inventory is read back
        }
        self.queue
            .next_deadline(self.edit, &self.lanes, |k| !self.running.contains(k))
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Load(loaded) => {
                let started = std::time::Instant::now();
                self.apply_load(loaded);
                self.metrics.reloaded("take_in", started.elapsed());
            }
            Command::ReconcileAll => self.reconcile_all(),
            Command::Lead => {
                if self.standby {
                    self.standby = false;
                    self.promoting = true;
                    info!("leader: reading the inventory back before writing");
                }
            }
            Command::Follow => self.follow(),
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
                        self.parked.remove(k);
                        due.push(k.clone());
                    }
                }
                for k in due {
                    info!(object = %k, "its local sources changed: reconciling now");
                    self.queue.schedule(k, self.edit);
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

    fn reconcile_all(&mut self) {
        self.parked.clear();
        for (k, t) in &mut self.objects {
            t.terminal_hash = None;
            self.queue.schedule(k.clone(), self.urgent);
        }
        info!(objects = self.objects.len(), "reconciling everything now");
    }

    /// Read the inventory, again and again (with backoff) until it answers.
    fn read_inventory_until_read(&self) -> BoxFuture<'static, Vec<InventoryEntry>> {
        let inventory = Arc::clone(&self.inventory);
        let retry = self.cfg.retry;
        Box::pin(async move {
            let mut attempt = 0;
            loop {
                match inventory.list().await {
                    Ok(entries) => return entries,
                    Err(e) => {
                        let wait = retry.next(attempt);
                        attempt += 1;
                        error!(error = %e, retry_in = ?wait, "cannot read the inventory");
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        })
    }

    /// Promoted, with the inventory as the previous leader left it: what it recorded for
    /// a tracked object is not written again; what no manifest defines is pruned (under
    /// the mass-deletion guard); then everything is reconciled, writing.
    fn take_over(&mut self, listed: Vec<InventoryEntry>) {
        self.promoting = false;
        self.orphans.clear();
        let entries = listed.len();
        for entry in listed {
            match self.objects.get_mut(&entry.key) {
                Some(t) if !t.prune => {
                    t.recorded = Some(entry.digest());
                    if t.converged.is_none() {
                        t.converged = Some(cause::Inputs::new(&entry.hash, &entry.dep_outputs));
                    }
                }
                Some(_) => {}
                None => {
                    self.orphans.insert(entry.key.clone(), entry);
                }
            }
        }
        info!(entries, "leader: inventory read back");
        // Before the first load nothing is known to be gone: the load plans the prune.
        if self.first_keys.is_some() {
            self.plan_prune();
        }
        self.reconcile_all();
    }

    /// Demoted: observe only from now on (what runs finishes; its writes are fenced), and
    /// drop what was being pruned: its inventory entries stay, for the next leader.
    fn follow(&mut self) {
        if self.standby {
            return;
        }
        self.standby = true;
        self.promoting = false;
        let pruning: Vec<ObjectKey> = self
            .objects
            .iter()
            .filter(|(_, t)| t.prune)
            .map(|(k, _)| k.clone())
            .collect();
        for key in pruning {
            self.objects.remove(&key);
            self.queue.remove(&key);
            self.parked.remove(&key);
        }
        // The next leader may change the inventory: what this one wrote is read back if
        // it leads again.
        for t in self.objects.values_mut() {
            t.recorded = None;
        }
        self.prune_refused = None;
        warn!("standby: observing only until this replica leads again");
    }

    /// [`Controller::gate`] without saying why (nothing allocated): called for every parked
    /// object at every event, so it must stay cheap.
    fn may_run(&self, key: &ObjectKey) -> bool {
        let Some(t) = self.objects.get(key) else {
            return false;
        };
        if t.prune {
            return self.referrers(key).next().is_none();
        }
        self.unready_dependencies(key).next().is_none()
    }

    /// Whether `key` may run now ([`Controller::may_run`]); if not, why.
    fn gate(&self, key: &ObjectKey) -> Result<(), String> {
        if self.may_run(key) {
            return Ok(());
        }
        let Some(t) = self.objects.get(key) else {
            return Err("unknown".into());
        };
        let list = |keys: Vec<String>| keys.join(", ");
        if t.prune {
            // Delete dependents first: wait while any tracked object still refers to it.
            let dependents = self.referrers(key).map(|k| k.to_string()).collect();
            return Err(format!("waiting for {} to go first", list(dependents)));
        }
        let waiting = self
            .unready_dependencies(key)
            .map(|d| d.to_string())
            .collect();
        Err(format!("waiting for {}", list(waiting)))
    }

    /// The tracked objects other than `key` that still refer to it.
    fn referrers<'a>(&'a self, key: &'a ObjectKey) -> impl Iterator<Item = &'a ObjectKey> {
        self.objects
            .iter()
            .filter(move |(k, other)| *k != key && self.refers_to(other, key))
            .map(|(k, _)| k)
    }

    /// `key`'s dependencies that are not Ready (or are being pruned).
    fn unready_dependencies<'a>(&'a self, key: &ObjectKey) -> impl Iterator<Item = &'a ObjectKey> {
        self.graph.deps_of(key).iter().filter(|d| {
            !self
                .objects
                .get(*d)
                .is_some_and(|t| t.status().is_ready() && !t.prune)
        })
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
        if self.promoting {
            return;
        }
        let now = Instant::now();
        loop {
            let running = &self.running;
            let Some((key, due)) = self
                .queue
                .pop_due(now, self.edit, &self.lanes, |k| !running.contains(k))
            else {
                break;
            };
            // Urgent work (not a periodic resync) also goes first where AWS calls queue.
            let urgent = due <= self.urgent;
            if !urgent {
                self.note_resync_lag(&key, now.saturating_duration_since(due));
            }
            if let Err(why) = self.gate(&key) {
                if let Some(t) = self.objects.get_mut(&key) {
                    self.parked.insert(key.clone());
                    t.first_pass = true;
                    t.status_mut().next_reconcile_at = None;
                    let wall = SystemTime::now();
                    if !t.prune {
                        t.status_mut().mark_waiting_for_dependency(&why, wall);
                    }
                }
                continue;
            }
            let Some(task) = self.task(&key, urgent) else {
                self.no_live_kind(&key);
                continue;
            };
            self.lanes.take(self.queue.lane(&key));
            self.running.insert(key.clone());
            self.parked.remove(&key);
            tasks.push(task);
        }
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
        t.status_mut().last_error = Some(ErrorInfo {
            at: rfc3339(SystemTime::now()),
            reason: status::reason::UNKNOWN_KIND.into(),
            message: message.clone(),
            severity: "terminal".into(),
        });
        t.status_mut().mark_failed(
            status::reason::UNKNOWN_KIND.into(),
            &message,
            true,
            SystemTime::now(),
        );
    }

    /// Record how late a periodic resync starts; warn (at most every few minutes) when it
    /// is later than the object's whole period, i.e. the daemon is falling behind.
    fn note_resync_lag(&mut self, key: &ObjectKey, lag: Duration) {
        self.metrics.resync_lag.set(lag.as_secs_f64());
        let Some(t) = self.objects.get(key) else {
            return;
        };
        let period = resync_period(&t.object.meta, &self.cfg, self.standby);
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

    /// Re-queue every parked object that may run now. After a reload only (the graph may
    /// have changed under all of them): it looks at each parked object, and at a thousand
    /// stacks in cold converge most objects are parked.
    fn unpark_all(&mut self) {
        let parked: Vec<ObjectKey> = self.parked.iter().cloned().collect();
        self.unpark(parked);
    }

    /// Re-queue those of `keys` that are parked and may run now. After a reconcile only
    /// the objects it can have freed are looked at: its dependents when it turned Ready
    /// (see `finish`), what it referred to when it was pruned.
    fn unpark(&mut self, keys: impl IntoIterator<Item = ObjectKey>) {
        for k in keys {
            if self.parked.contains(&k) && !self.running.contains(&k) && self.may_run(&k) {
                self.parked.remove(&k);
                self.queue.schedule(k, self.urgent);
            }
        }
    }

    /// Publish now, unless the last publication is younger than [`PUBLISH_INTERVAL`]: then
    /// say when to publish (the loop wakes then; every turn of it may have changed
    /// something).
    fn publish_soon(&mut self) -> Option<Instant> {
        let now = Instant::now();
        match self.published_at {
            Some(at) if now < at + PUBLISH_INTERVAL => Some(at + PUBLISH_INTERVAL),
            _ => {
                self.publish();
                None
            }
        }
    }

    fn publish(&mut self) {
        let now = Instant::now();
        self.published_at = Some(now);
        let depth = self.queue.due(now);
        self.metrics.queue_depth.set(depth as i64);
        if !self.ready
            && let Some(first) = &self.first_keys
        {
            // Whatever is queued or running now: a fleet with periodic resyncs may never
            // have an empty queue.
            self.ready = first
                .iter()
                .all(|k| self.objects.get(k).is_none_or(|t| t.first_pass));
        }
        // Every object's status goes into the snapshot, but only those changed since the
        // last one are copied (see `Tracked::status_mut`): a publication costs a pointer
        // per object plus a copy per change.
        const COUNTED: [(&str, &str); 4] = [
            (status::READY, "True"),
            (status::READY, "False"),
            (status::SYNCED, "True"),
            (status::SYNCED, "False"),
        ];
        let mut counts = [0i64; COUNTED.len()];
        let mut objects = Vec::with_capacity(self.objects.len());
        for t in self.objects.values() {
            for c in &t.status().conditions {
                if let Some(i) = COUNTED
                    .iter()
                    .position(|(kind, st)| c.kind == *kind && c.status == *st)
                {
                    counts[i] += 1;
                }
            }
            objects.push(t.publish());
        }
        for ((condition, status), count) in COUNTED.iter().zip(counts) {
            self.metrics
                .objects
                .get_or_create(&ConditionLabels {
                    condition: condition.to_string(),
                    status: status.to_string(),
                })
                .set(count);
        }
        let snapshot = Snapshot {
            generated_at: rfc3339(SystemTime::now()),
            ready: self.ready,
            objects,
            problems: self.problems.clone(),
            prune_refused: self.prune_refused.clone(),
            queue_depth: depth,
            leadership: None,
            applied_revision: self.applied_revision.clone(),
            source: None,
        };
        if let Ok(mut s) = self.shared.snapshot.write() {
            *s = Arc::new(snapshot);
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
        .filter(|t| schema.contained_in().contains(&&*t.kind))
        .collect()
}

fn suspended(meta: &ObjectMeta) -> bool {
    meta.annotations
        .get(ANNOTATION_SUSPEND)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn resync_period(meta: &ObjectMeta, cfg: &ControllerConfig, standby: bool) -> Duration {
    let period = meta
        .annotations
        .get(ANNOTATION_RESYNC)
        .and_then(|v| humantime::parse_duration(v).ok())
        .unwrap_or(cfg.resync)
        .saturating_mul(if standby { STANDBY_SLOWDOWN } else { 1 })
        .clamp(Duration::from_secs(1), Duration::from_secs(7 * 24 * 3600));
    jittered(period, cfg.resync_jitter, rand::random::<f64>())
}
