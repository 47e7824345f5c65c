//! `agentcore-controller run`: the long-running service. Watches the manifests
//! (debounced), feeds every reload to the controller, serves HTTP, and handles signals:
//! SIGHUP reconciles everything now; SIGTERM/SIGINT stop taking work, let in-flight AWS
//! calls finish within a bound, and exit 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::aws::{Aws, load_config};
use crate::engine::backoff::Backoff;
use crate::engine::controller::{Command, Controller, ControllerConfig, Shared};
use crate::gitsource::{self, Checkout, FetchNow, GitSourceConfig, SourceStatus};
use crate::guard::Guard;
use crate::inventory::SsmInventory;
use crate::kinds::{Ctx, Registry};
use crate::leader::{self, Elector, Fence, Leadership, LeaseTimings, Role};
use crate::manifest::load;
use crate::manifest_paths::ManifestPaths;
use crate::metrics::Metrics;
use crate::notify::{Event, Notifier, Reason, Severity};
use crate::ratelimit::RateLimits;
use crate::server::{AppState, serve};

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub files: Vec<PathBuf>,
    pub instance: String,
    pub listen: SocketAddr,
    pub controller: ControllerConfig,
    pub rate_limits: RateLimits,
    /// Quiet time after the last file event before reloading.
    pub debounce: Duration,
    /// How long in-flight reconciles may run on after SIGTERM.
    pub grace: Duration,
    /// Run as one of several replicas, of which the holder of this lease writes.
    pub leader_election: Option<LeaderElection>,
    /// Host names answered besides IP literals and localhost (see [`crate::guard`]).
    pub allowed_hosts: Vec<String>,
    /// The bearer token POSTs need (beyond loopback they are off without one).
    pub admin_token: Option<secrecy::SecretString>,
    /// Pull the manifests from this git remote (then `files` is not read).
    pub git: Option<GitSourceConfig>,
    /// Serve the push webhook (`POST /hooks/git`) on this address, checked with this
    /// secret (only with `git`).
    pub webhook: Option<(SocketAddr, crate::webhook::WebhookSecret)>,
    /// Post events to these receivers.
    pub notify: Vec<crate::notify::Receiver>,
}

/// Where the leader lease is kept, and its timings.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    pub store: LeaseBackend,
    pub timings: LeaseTimings,
}

/// Where the lease is kept; either way it is named after the controller instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseBackend {
    /// An item of this DynamoDB table (created if missing).
    DynamoDb { table: String },
    /// A `coordination.k8s.io` Lease in the pod's namespace.
    Kubernetes,
}

impl std::str::FromStr for LeaseBackend {
    type Err = String;

    /// `dynamodb:TABLE` (a table name as DynamoDB allows it: 3-255 of `a-zA-Z0-9_.-`) or
    /// `kubernetes`.
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "kubernetes" {
            return Ok(Self::Kubernetes);
        }
        let Some(table) = text.strip_prefix("dynamodb:") else {
            return Err(format!(
                "`{text}` is not a lease store: use dynamodb:TABLE (e.g. \
                 dynamodb:agentcore-controller-leases) or kubernetes"
            ));
        };
        let valid = (3..=255).contains(&table.len())
            && table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if valid {
            Ok(Self::DynamoDb {
                table: table.to_string(),
            })
        } else {
            Err(format!(
                "`{table}` is not a DynamoDB table name: 3 to 255 of letters, digits, `_`, `.` and `-`"
            ))
        }
    }
}

/// Run the daemon until SIGTERM/SIGINT. Returns the exit code.
pub async fn run(opts: DaemonOptions) -> i32 {
    let _workdir_lock = match opts
        .git
        .as_ref()
        .map(|g| gitsource::lock_workdir(&g.workdir))
    {
        Some(Err(msg)) => {
            error!("{msg}");
            return 1;
        }
        lock => lock,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    spawn_signal_handlers(shutdown_tx.clone());
    // With leader election, this replica's AWS writes pass a fence the elector opens.
    let identity = leader::identity();
    let fence = opts.leader_election.as_ref().map(|_| Fence::default());
    let mut config = load_config().await;
    if opts.leader_election.is_some() {
        // AWS sees which replica made each call (CloudTrail's user agent).
        match aws_config::AppName::new(identity.clone()) {
            Ok(name) => config = config.to_builder().app_name(name).build(),
            Err(e) => warn!(error = %e, "cannot name this replica in the user agent"),
        }
    }
    let Some(aws) = connect(&opts, &config, fence.clone(), shutdown_rx.clone()).await else {
        return 0; // asked to stop before AWS answered
    };
    let ctx = Arc::new(Ctx {
        aws: aws.clone(),
        owner: opts.instance.clone(),
    });
    let registry = Registry::live(ctx);
    let inventory = Arc::new(SsmInventory::new(aws.clone(), opts.instance.clone()));
    let metrics = Metrics::with_kinds(Some(aws.calls.clone()), &registry.metrics());
    let (leadership, elector) = match (&opts.leader_election, &fence) {
        (Some(le), Some(fence)) => {
            let store = lease_store(le, &config, &aws, &opts.instance, shutdown_rx.clone());
            let store = match store.await {
                Some(Ok(store)) => store,
                Some(Err(msg)) => {
                    error!("{msg}");
                    return 1;
                }
                None => return 0, // asked to stop before the lease store was there
            };
            let (elector, rx) = Elector::new(store, le.timings, identity, fence.clone());
            (Some(rx), Some(elector))
        }
        _ => {
            metrics.leader.set(1);
            (None, None)
        }
    };
    let shared = Arc::new(Shared::default());
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let notifier = if opts.notify.is_empty() {
        Notifier::disabled()
    } else {
        info!(
            receivers = opts.notify.len(),
            "posting events to the --notify receivers"
        );
        Notifier::spawn(opts.notify.clone(), opts.instance.clone(), metrics.clone())
    };
    let source_status = opts
        .git
        .as_ref()
        .map(|_| watch::channel(SourceStatus::default()));

    let listener = match tokio::net::TcpListener::bind(opts.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(address = %opts.listen, error = %e, "cannot listen");
            return 1;
        }
    };
    info!(address = %opts.listen, "serving /healthz /readyz /metrics /status");
    let guard = Guard::new(opts.listen, &opts.allowed_hosts, opts.admin_token.clone());
    if guard.actions_off() {
        warn!(
            address = %opts.listen,
            "listening beyond loopback without --admin-token-file: POST /reconcile and \
             /confirm-prune are off (SIGHUP still reconciles everything)"
        );
    }
    let probes = crate::probe::Board::default();
    let (manifests_tx, manifests_rx) = watch::channel(Arc::new(Vec::new()));
    let state = AppState {
        probes: Some(probes.clone()),
        shared: shared.clone(),
        metrics: metrics.clone(),
        commands: cmd_tx.clone(),
        leadership: leadership.clone(),
        source: source_status.as_ref().map(|(_, rx)| rx.clone()),
        guard,
    };
    let mut server_stop = shutdown_rx.clone();
    let server = tokio::spawn(serve(listener, state, async move {
        let _ = server_stop.wait_for(|stop| *stop).await;
    }));

    // With a git source, the watcher loads each revision the source checks out.
    let (_fetch_now, checkouts) = match (&opts.git, source_status) {
        (Some(cfg), Some((status_tx, status_rx))) => {
            let (fetch_tx, fetch_rx) = mpsc::channel::<FetchNow>(1);
            let (checkout_tx, checkout_rx) = mpsc::channel::<Checkout>(4);
            info!(url = %gitsource::redact_url(&cfg.url), reference = %cfg.reference, path = %cfg.path.display(), interval = ?cfg.interval, "following a git source");
            tokio::spawn(gitsource::run(
                cfg.clone(),
                fetch_rx,
                checkout_tx,
                status_tx,
                shutdown_rx.clone(),
            ));
            spawn_source_bridge(status_rx, metrics.clone(), notifier.clone());
            if let Some((address, secret)) = &opts.webhook {
                let hook = spawn_webhook(
                    *address,
                    secret.clone(),
                    fetch_tx.clone(),
                    &metrics,
                    shutdown_rx.clone(),
                );
                if let Err(msg) = hook.await {
                    error!("{msg}");
                    return 1;
                }
            }
            (Some(fetch_tx), Some(checkout_rx))
        }
        _ => (None, None),
    };
    if let Err(e) = spawn_watcher(
        &opts,
        checkouts,
        cmd_tx.clone(),
        metrics.clone(),
        manifests_tx,
        shutdown_rx.clone(),
    ) {
        error!(error = %e, "cannot watch the manifests");
        return 1;
    }
    spawn_sighup(cmd_tx.clone());
    crate::memory::spawn_trimmer();
    // The live probes (AgentRuntime spec.probe): their own schedule, beside the engine.
    tokio::spawn(
        crate::probe::Prober {
            aws: aws.clone(),
            sdk: config.clone(),
            metrics: metrics.clone(),
            shared: shared.clone(),
            board: probes,
            manifests: manifests_rx,
        }
        .run(shutdown_rx.clone()),
    );

    // The elector runs until the controller has stopped (its last writes need the
    // lease), then gives the lease up.
    let (stop_elector, elector_stop) = tokio::sync::oneshot::channel();
    let elector = elector.map(|e| tokio::spawn(e.run(elector_stop)));
    if let Some(rx) = leadership {
        spawn_role_bridge(rx, cmd_tx.clone(), metrics.clone(), notifier.clone());
    }
    let mut controller_cfg = opts.controller.clone();
    controller_cfg.standby = elector.is_some();
    let controller = Controller::new(controller_cfg, registry, inventory, shared, metrics);
    let controller = if notifier.is_enabled() {
        let notifier = notifier.clone();
        controller.with_events(Arc::new(move |e| notifier.send(notification(e))))
    } else {
        controller
    };
    controller.run(cmd_rx, shutdown_rx, opts.grace).await;
    let _ = stop_elector.send(());
    if let Some(elector) = elector
        && tokio::time::timeout(Duration::from_secs(10), elector)
            .await
            .is_err()
    {
        warn!(
            "the leader lease was not released in time; a standby takes it over when it runs out"
        );
    }
    let _ = shutdown_tx.send(true);
    let _ = server.await;
    info!("stopped");
    0
}

async fn connect(
    opts: &DaemonOptions,
    config: &aws_config::SdkConfig,
    fence: Option<Fence>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Aws> {
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut attempt = 0;
    loop {
        match Aws::connect_with(config, &opts.rate_limits, fence.clone()).await {
            Ok(aws) => {
                info!(account = %aws.account_id, region = %aws.region, "connected to AWS");
                return Some(aws);
            }
            Err(e) => {
                let wait = backoff.next(attempt);
                attempt += 1;
                error!(error = %e.message, retry_in = ?wait, "cannot reach AWS");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|s| *s) => return None,
                }
            }
        }
    }
}

/// The lease store: a DynamoDB table made sure of (retried until it is, or shutdown), or
/// the Kubernetes API (`Err`: it cannot be used at all). None: asked to stop first.
/// DynamoDB calls are counted with the others but neither fenced nor rate-limited: the
/// lease must be renewed whatever else waits.
async fn lease_store(
    le: &LeaderElection,
    config: &aws_config::SdkConfig,
    aws: &Aws,
    instance: &str,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Result<Arc<dyn leader::LeaseStore>, String>> {
    let table = match &le.store {
        LeaseBackend::DynamoDb { table } => table,
        LeaseBackend::Kubernetes => {
            let name = leader::kubernetes::lease_name(instance);
            return Some(
                match leader::kubernetes::KubernetesLeases::connect(&name).await {
                    Ok(store) => Ok(Arc::new(store)),
                    Err(e) => Err(e.message),
                },
            );
        }
    };
    let conf = aws_sdk_dynamodb::config::Builder::from(config)
        .interceptor(aws.calls.clone())
        .build();
    let store = leader::dynamodb::DynamoDbLeases::new(
        aws_sdk_dynamodb::Client::from_conf(conf),
        table,
        instance,
    );
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut attempt = 0;
    loop {
        match store.ensure_table().await {
            Ok(()) => return Some(Ok(Arc::new(store))),
            Err(e) => {
                let wait = backoff.next(attempt);
                attempt += 1;
                error!(error = %e.message, %table, retry_in = ?wait, "cannot use the leader lease table");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|s| *s) => return None,
                }
            }
        }
    }
}

/// Tell the controller when this replica starts or stops leading, and count it.
fn spawn_role_bridge(
    mut leadership: watch::Receiver<Leadership>,
    commands: mpsc::Sender<Command>,
    metrics: Metrics,
    notifier: Notifier,
) {
    tokio::spawn(async move {
        let mut leading = false;
        loop {
            let now = leadership.borrow_and_update().role == Role::Leader;
            if now != leading {
                leading = now;
                metrics.leader.set(i64::from(leading));
                metrics.leadership_transitions.inc();
                let cmd = if leading {
                    Command::Lead
                } else {
                    Command::Follow
                };
                let identity = leadership.borrow().identity.clone();
                notifier.send(if leading {
                    Event::new(
                        Reason::LeadershipGained,
                        Severity::Info,
                        format!("{identity} leads: it writes to AWS now"),
                    )
                } else {
                    Event::new(
                        Reason::LeadershipLost,
                        Severity::Warning,
                        format!("{identity} stopped leading: it observes only"),
                    )
                });
                if commands.send(cmd).await.is_err() {
                    return;
                }
            }
            if leadership.changed().await.is_err() {
                return;
            }
        }
    });
}

/// Serve the push webhook on its own listener: each authenticated push fetches now.
async fn spawn_webhook(
    address: SocketAddr,
    secret: crate::webhook::WebhookSecret,
    fetch_now: mpsc::Sender<FetchNow>,
    metrics: &Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen for the webhook on {address}: {e}"))?;
    let (trigger_tx, mut trigger_rx) = mpsc::channel(1);
    let router = crate::webhook::router(secret, trigger_tx, metrics.clone());
    info!(%address, path = crate::webhook::PATH, "serving the git push webhook");
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = crate::webhook::serve(listener, router, stop).await {
            error!(error = %e, "the webhook listener failed");
        }
    });
    tokio::spawn(async move {
        while trigger_rx.recv().await.is_some() {
            // Full: a fetch is pending already, and covers this push.
            let _ = fetch_now.try_send(FetchNow);
        }
    });
    Ok(())
}

/// The git source's state, as metrics and notifications: its revision (an info metric
/// with one series), its failures (counted, and told when the reason changes).
fn spawn_source_bridge(
    mut status: watch::Receiver<SourceStatus>,
    metrics: Metrics,
    notifier: Notifier,
) {
    tokio::spawn(async move {
        let (mut revision, mut failures, mut error) = (None::<String>, 0u64, None::<String>);
        loop {
            let s = status.borrow_and_update().clone();
            let now = s.revision.as_ref().map(|r| r.to_string());
            if now != revision {
                metrics.source_info.clear();
                if let Some(r) = &now {
                    metrics
                        .source_info
                        .get_or_create(&crate::metrics::SourceLabels {
                            url: s.url.clone(),
                            revision: r.clone(),
                        })
                        .set(1);
                }
                revision = now;
            }
            if s.failures > failures {
                metrics.source_failures.inc_by(s.failures - failures);
                failures = s.failures;
            }
            if s.last_error != error {
                if let Some(e) = &s.last_error {
                    notifier.send(
                        Event::new(
                            Reason::SourceFailed,
                            Severity::Error,
                            format!(
                                "cannot update from {}: {e}; the last good revision stays",
                                s.url
                            ),
                        )
                        .revision(revision.clone()),
                    );
                }
                error = s.last_error;
            }
            if status.changed().await.is_err() {
                return;
            }
        }
    });
}

/// The notification for an event of the controller.
fn notification(event: crate::engine::events::Event) -> Event {
    use crate::engine::events::Event as E;
    match event {
        E::RevisionApplied {
            revision,
            ready,
            failing,
            waiting,
        } => Event::new(
            Reason::RevisionApplied,
            if failing > 0 { Severity::Warning } else { Severity::Info },
            format!("revision applied: {ready} ready, {failing} failing, {waiting} waiting on dependencies"),
        )
        .revision(Some(revision.to_string())),
        E::DriftCorrected { key, fields } => Event::new(
            Reason::DriftCorrected,
            Severity::Warning,
            "a change made outside the manifests was undone",
        )
        .object(key.kind.to_string(), key.name.to_string())
        .fields(fields),
        E::ReconcileFailed {
            key,
            reason,
            message,
            terminal,
            credential,
        } => {
            let why = if terminal { "fails until the manifest changes" } else { "keeps failing (retried)" };
            let what = if credential { Reason::TokenRenewalFailed } else { Reason::ReconcileFailed };
            Event::new(what, Severity::Error, format!("{why}: {reason}: {message}"))
                .object(key.kind.to_string(), key.name.to_string())
        }
        E::Recovered { key } => Event::new(Reason::Recovered, Severity::Info, "reconciles again")
            .object(key.kind.to_string(), key.name.to_string()),
        E::CredentialExpiring { key, expires_at } => Event::new(
            Reason::TokenExpiring,
            Severity::Warning,
            format!(
                "the published token expires at {} and has not been renewed",
                humantime::format_rfc3339_seconds(expires_at)
            ),
        )
        .object(key.kind.to_string(), key.name.to_string()),
        E::PruneRefused { message } => Event::new(Reason::PruneRefused, Severity::Error, message),
    }
}

/// Load the manifests now, then again after every burst of file events. Objects' local
/// sources (an image's build context) are watched too: a change there reconciles the
/// objects made from them, without a reload.
fn spawn_watcher(
    opts: &DaemonOptions,
    mut checkouts: Option<mpsc::Receiver<Checkout>>,
    commands: mpsc::Sender<Command>,
    metrics: Metrics,
    manifests: watch::Sender<Arc<Vec<Arc<load::Object>>>>,
    mut shutdown: watch::Receiver<bool>,
) -> notify::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<PathBuf>>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event
            && !matches!(e.kind, notify::EventKind::Access(_))
        {
            let _ = tx.send(e.paths);
        }
    })?;
    // A git source's checkouts change only when a revision is switched to: nothing
    // there is watched, and nothing is loaded before the first revision is checked out.
    let git = opts
        .git
        .as_ref()
        .map(|g| (g.workdir.clone(), g.manifests(), g.identity()));
    let (watched, files) = match &git {
        Some((_, manifests, _)) => (Vec::new(), vec![manifests.clone()]),
        None => (opts.files.clone(), opts.files.clone()),
    };
    // Resolved, absolute paths, so that event paths compare with the sources' paths.
    let mut paths = ManifestPaths::new(watched);
    paths.start(&mut watcher)?;
    let mut reloader = Reloader::new(files, commands.clone(), metrics);
    reloader.manifests = Some(manifests);
    let debounce = opts.debounce;
    tokio::spawn(async move {
        let mut watcher = watcher; // alive as long as this task
        let mut sources = Sources::new(paths.dirs().to_vec());
        if git.is_none()
            && let Some(named) = reloader.reload().await
        {
            sources.follow(&mut watcher, named);
        }
        // Files read just after they changed are read once more when their stamp can be
        // trusted (once per reload), so that the next edit's reload reads only what it
        // touched.
        let mut settle_at = reloader.settle_time();
        loop {
            let event = tokio::select! {
                event = rx.recv() => match event { Some(paths) => Wake::Files(paths), None => return },
                _ = shutdown.wait_for(|s| *s) => return,
                _ = crate::engine::scheduler::sleep_until(settle_at) => Wake::Settle,
                Some(checkout) = next_checkout(&mut checkouts) => Wake::Revision(checkout),
            };
            let event = match event {
                Wake::Files(paths) => Some(paths),
                Wake::Settle => None,
                Wake::Revision(checkout) => {
                    if let Some((workdir, _, source)) = &git {
                        reloader.switch(workdir, source, checkout).await;
                        settle_at = reloader.settle_time();
                    }
                    continue;
                }
            };
            let Some(mut changed) = event else {
                settle_at = None;
                reloader.settle().await;
                continue;
            };
            // Debounce: wait until things have been quiet for a moment (editors'
            // rename-and-replace, partial writes, a checkout rewriting many files).
            let deadline = tokio::time::Instant::now() + debounce * 20;
            loop {
                match tokio::time::timeout(debounce, rx.recv()).await {
                    Ok(Some(paths)) if tokio::time::Instant::now() < deadline => {
                        changed.extend(paths);
                        continue;
                    }
                    Ok(Some(paths)) => changed.extend(paths),
                    Ok(None) => return,
                    Err(_) => {}
                }
                break;
            }
            let (touched, elsewhere) = sources.classify(&changed);
            if elsewhere {
                // A symlink on the way may have been swapped (git-sync, a ConfigMap).
                if paths.refresh(&mut watcher) {
                    sources.manifest_dirs = paths.dirs().to_vec();
                }
                if let Some(named) = reloader.reload().await {
                    sources.follow(&mut watcher, named);
                }
                settle_at = reloader.settle_time();
            }
            if !touched.is_empty() {
                let _ = commands.send(Command::SourcesChanged(touched)).await;
            }
        }
    });
    Ok(())
}

/// What wakes the watcher.
enum Wake {
    Files(Vec<PathBuf>),
    /// Files read just after they changed can be trusted now.
    Settle,
    Revision(Checkout),
}

/// The next revision a git source checked out (never, without one).
async fn next_checkout(checkouts: &mut Option<mpsc::Receiver<Checkout>>) -> Option<Checkout> {
    match checkouts {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The objects' local sources being watched: absolute path → the path as the object
/// names it.
struct Sources {
    manifest_dirs: Vec<PathBuf>,
    watched: std::collections::BTreeMap<PathBuf, PathBuf>,
}

impl Sources {
    fn new(manifest_dirs: Vec<PathBuf>) -> Self {
        Self {
            manifest_dirs,
            watched: Default::default(),
        }
    }

    /// Watch exactly these sources (those that exist; a source inside a manifest
    /// directory is already watched with it).
    fn follow(&mut self, watcher: &mut notify::RecommendedWatcher, named: Vec<PathBuf>) {
        let mut want = std::collections::BTreeMap::new();
        for n in named {
            if let Ok(abs) = std::fs::canonicalize(&n) {
                want.insert(abs, n);
            }
        }
        let covered = |p: &PathBuf, dirs: &[PathBuf]| dirs.iter().any(|d| p.starts_with(d));
        for abs in self.watched.keys() {
            if !want.contains_key(abs) && !covered(abs, &self.manifest_dirs) {
                let _ = watcher.unwatch(abs);
            }
        }
        for abs in want.keys() {
            if self.watched.contains_key(abs) || covered(abs, &self.manifest_dirs) {
                continue;
            }
            let mode = if abs.is_dir() {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            if let Err(e) = watcher.watch(abs, mode) {
                warn!(path = %abs.display(), error = %e, "cannot watch a build source; it is re-read at each resync");
            }
        }
        self.watched = want;
    }

    /// The sources (as named) that `changed` touches, and whether the manifests may have
    /// changed (then they are loaded again).
    fn classify(&self, changed: &[PathBuf]) -> (Vec<PathBuf>, bool) {
        let mut touched = std::collections::BTreeSet::new();
        let mut elsewhere = false;
        for p in changed {
            let hits: Vec<&PathBuf> = self
                .watched
                .iter()
                .filter(|(abs, _)| p.starts_with(abs))
                .map(|(_, named)| named)
                .collect();
            // Anything in a manifest directory may be a manifest (a context of `.`).
            if hits.is_empty() || self.manifest_dirs.iter().any(|d| p.starts_with(d)) {
                elsewhere = true;
            }
            touched.extend(hits.into_iter().cloned());
        }
        (touched.into_iter().collect(), elsewhere)
    }
}

/// The manifest problems of the last load, so that each is logged once when it appears
/// and once when it is fixed, not again at every reload.
#[derive(Debug, Default)]
struct Problems {
    current: std::collections::BTreeSet<String>,
}

impl Problems {
    /// Take in the problems of a fresh load: those new since the last one (in load
    /// order) and those gone (sorted).
    fn update(&mut self, now: Vec<String>) -> (Vec<String>, Vec<String>) {
        let mut seen = std::collections::BTreeSet::new();
        let appeared: Vec<String> = now
            .iter()
            .filter(|p| !self.current.contains(*p) && seen.insert(p.as_str()))
            .cloned()
            .collect();
        let now: std::collections::BTreeSet<String> = now.into_iter().collect();
        let fixed = self.current.difference(&now).cloned().collect();
        self.current = now;
        (appeared, fixed)
    }
}

/// Loads the manifests (off the async threads) and hands them to the controller; keeps
/// the loader, which remembers what it read, and the problems last logged.
struct Reloader {
    files: Vec<PathBuf>,
    registry: Registry,
    loader: Arc<std::sync::Mutex<load::Loader>>,
    problems: Problems,
    commands: mpsc::Sender<Command>,
    metrics: Metrics,
    /// The git source's revision in force (stamped on each load).
    revision: Option<Arc<str>>,
    /// Where each load's objects are published (for the live probes).
    manifests: Option<watch::Sender<Arc<Vec<Arc<load::Object>>>>>,
}

impl Reloader {
    fn new(files: Vec<PathBuf>, commands: mpsc::Sender<Command>, metrics: Metrics) -> Self {
        Self {
            files,
            registry: Registry::offline(),
            loader: Arc::default(),
            problems: Problems::default(),
            commands,
            metrics,
            revision: None,
            manifests: None,
        }
    }

    /// Put a git source's new revision in force and load it, and tell the source whether
    /// that worked. Its local sources (build contexts) may have changed with it: the
    /// objects made from them are reconciled.
    async fn switch(&mut self, workdir: &std::path::Path, source: &str, checkout: Checkout) {
        let Checkout { revision, done } = checkout;
        if let Err(e) = gitsource::switch(workdir, source, &revision) {
            error!(error = %e, %revision, "cannot switch to the revision; keeping the one in force");
            let _ = done.send(Err(e));
            return;
        }
        info!(%revision, subject = %revision.subject, "source: loading revision");
        let before = self.revision.replace(revision.to_string().into());
        match self.reload().await {
            Some(named) => {
                if !named.is_empty() {
                    let _ = self.commands.send(Command::SourcesChanged(named)).await;
                }
                let _ = done.send(Ok(()));
            }
            None => {
                self.revision = before;
                let _ = done.send(Err("its manifests cannot be read (see the log)".into()));
            }
        }
    }

    /// Only this reloader's task uses the loader: the lock is never contended (nor
    /// poisoned, but a poisoned loader would only have lost what it had read).
    fn loader(loader: &std::sync::Mutex<load::Loader>) -> std::sync::MutexGuard<'_, load::Loader> {
        loader.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Load the manifests and hand them to the controller; the local sources of the
    /// loaded objects, or `None` when nothing could be loaded.
    async fn reload(&mut self) -> Option<Vec<PathBuf>> {
        let started = std::time::Instant::now();
        let (files, registry, loader) = (
            self.files.clone(),
            self.registry.clone(),
            self.loader.clone(),
        );
        let loaded =
            tokio::task::spawn_blocking(move || Self::loader(&loader).load(&files, &registry))
                .await;
        self.metrics.reloaded("read", started.elapsed());
        match loaded {
            Ok(Ok(mut loaded)) => {
                loaded.revision = self.revision.clone();
                let current: Vec<String> = loaded.problems.iter().map(|p| p.to_string()).collect();
                let (appeared, fixed) = self.problems.update(current);
                for p in appeared {
                    warn!("manifest problem: {p}");
                }
                for p in fixed {
                    info!("manifest problem fixed: {p}");
                }
                info!(
                    objects = loaded.objects.len(),
                    problems = loaded.problems.len(),
                    "manifests loaded"
                );
                let sources = loaded
                    .objects
                    .iter()
                    .flat_map(|o| {
                        self.registry
                            .schema(&o.key.kind)
                            .map(|s| s.sources(&o.meta, &o.spec))
                            .unwrap_or_default()
                    })
                    .collect();
                if let Some(tx) = &self.manifests {
                    tx.send_replace(Arc::new(loaded.objects.clone()));
                }
                let _ = self.commands.send(Command::Load(loaded)).await;
                Some(sources)
            }
            Ok(Err(e)) => {
                error!(error = %e, "cannot read the manifests; keeping the last good state");
                None
            }
            Err(e) => {
                error!(error = %e, "manifest loader failed");
                None
            }
        }
    }

    /// When the files the loader could not trust yet can be (None: it trusts them all).
    fn settle_time(&self) -> Option<tokio::time::Instant> {
        (Self::loader(&self.loader).unsettled() > 0).then(|| {
            tokio::time::Instant::now() + load::STAMP_SETTLES_AFTER + Duration::from_millis(100)
        })
    }

    /// Read once more the files whose stamps can be trusted now.
    async fn settle(&self) {
        let loader = self.loader.clone();
        let _ = tokio::task::spawn_blocking(move || Self::loader(&loader).settle()).await;
    }
}

fn spawn_signal_handlers(shutdown: watch::Sender<bool>) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                error!("cannot install signal handlers");
                return;
            };
            tokio::select! {
                _ = term.recv() => info!("SIGTERM: shutting down"),
                _ = int.recv() => info!("SIGINT: shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        let _ = shutdown.send(true);
    });
}

fn spawn_sighup(commands: mpsc::Sender<Command>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            info!("SIGHUP: reconciling everything");
            if commands.send(Command::ReconcileAll).await.is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_of_the_controller_becomes_the_notification_of_its_kind() {
        use crate::engine::events::Event as E;
        use crate::kinds::ObjectKey;
        let key = || ObjectKey::new("Token", "t");
        let failed = |credential, terminal| E::ReconcileFailed {
            key: key(),
            reason: "NotAuthorizedException".into(),
            message: "Incorrect username or password.".into(),
            terminal,
            credential,
        };
        // (event, reason, severity, words the message must hold)
        let cases = [
            (
                E::RevisionApplied {
                    revision: "main@sha1:abc".into(),
                    ready: 3,
                    failing: 1,
                    waiting: 0,
                },
                Reason::RevisionApplied,
                Severity::Warning,
                "3 ready, 1 failing",
            ),
            (
                E::DriftCorrected {
                    key: key(),
                    fields: vec!["spec.value".into()],
                },
                Reason::DriftCorrected,
                Severity::Warning,
                "undone",
            ),
            (
                failed(true, false),
                Reason::TokenRenewalFailed,
                Severity::Error,
                "keeps failing",
            ),
            (
                failed(false, true),
                Reason::ReconcileFailed,
                Severity::Error,
                "until the manifest changes",
            ),
            (
                E::Recovered { key: key() },
                Reason::Recovered,
                Severity::Info,
                "again",
            ),
            (
                E::CredentialExpiring {
                    key: key(),
                    expires_at: std::time::UNIX_EPOCH + Duration::from_secs(1_796_328_000),
                },
                Reason::TokenExpiring,
                Severity::Warning,
                "expires at 2026-12-03T20:00:00Z",
            ),
            (
                E::PruneRefused {
                    message: "refusing to prune 3 of 3".into(),
                },
                Reason::PruneRefused,
                Severity::Error,
                "refusing",
            ),
        ];
        for (event, reason, severity, says) in cases {
            let n = notification(event.clone());
            assert_eq!((n.reason, n.severity), (reason, severity), "{event:?}");
            assert!(n.message.contains(says), "{event:?}: {}", n.message);
        }
        let n = notification(failed(true, false));
        assert_eq!(
            n.object.map(|o| (o.kind, o.name)),
            Some(("Token".into(), "t".into()))
        );
    }

    #[test]
    fn a_problem_is_logged_when_it_appears_and_when_it_is_fixed() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // (problems of each successive load, appeared, fixed)
        let steps: [(&[&str], &[&str], &[&str]); 6] = [
            (&[], &[], &[]),
            (&["b.yaml:2: bad"], &["b.yaml:2: bad"], &[]),
            (&["b.yaml:2: bad"], &[], &[]),
            (
                &["b.yaml:2: bad", "c.yaml:1: worse"],
                &["c.yaml:1: worse"],
                &[],
            ),
            (&["c.yaml:1: worse"], &[], &["b.yaml:2: bad"]),
            (&[], &[], &["c.yaml:1: worse"]),
        ];
        let mut p = Problems::default();
        for (i, (now, appeared, fixed)) in steps.into_iter().enumerate() {
            assert_eq!(p.update(s(now)), (s(appeared), s(fixed)), "load {i}");
        }
    }
}
