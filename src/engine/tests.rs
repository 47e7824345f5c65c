//! The engine's rules, one test each, against fake kinds over an in-memory cloud (see
//! [`crate::kinds::fake`]) and an in-memory inventory, on tokio's paused clock: backoff,
//! polling and resyncs take no real time, and what happened when is exact.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::backoff::Backoff;
use super::controller::{Command, Controller, ControllerConfig, Shared};
use super::inventory::MemoryInventory;
use super::status::{ObjectStatus, Snapshot};
use crate::error::ReconcileError;
use crate::kinds::fake::{Alpha, Beta, Call, Cloud, Fake, Fns, Gamma, Resource};
use crate::kinds::{ObjectKey, Observed, Readiness, Registry};
use crate::manifest::load::load_texts;
use crate::metrics::Metrics;
use crate::reason::Reason;

/// What each fake kind does.
#[derive(Default, Clone)]
pub(super) struct Kinds {
    pub alpha: Fns,
    pub beta: Fns,
    pub gamma: Fns,
}

pub(super) fn registry(cloud: &Arc<Cloud>, kinds: Kinds) -> Registry {
    Registry::empty()
        .with_kind(Fake::<Alpha>::with(cloud.clone(), kinds.alpha))
        .with_kind(Fake::<Beta>::with(cloud.clone(), kinds.beta))
        .with_kind(Fake::<Gamma>::with(cloud.clone(), kinds.gamma))
}

/// A manifest document of a fake kind: `value`, the objects it takes values from, and
/// its annotations.
pub(super) fn doc(key: &str, value: &str, after: &[&str], annotations: &[(&str, &str)]) -> String {
    let (kind, name) = key.split_once('/').unwrap_or((key, key));
    let mut out =
        format!("apiVersion: agentcore.dev/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n");
    if !annotations.is_empty() {
        out.push_str("  annotations:\n");
        for (k, v) in annotations {
            out.push_str(&format!("    {k}: \"{v}\"\n"));
        }
    }
    out.push_str(&format!("spec:\n  value: \"{value}\"\n"));
    if !after.is_empty() {
        out.push_str(&format!("  after: [{}]\n", after.join(", ")));
    }
    out
}

/// Documents as one manifest file.
pub(super) fn file(docs: &[String]) -> String {
    docs.join("---\n")
}

pub(super) fn key(text: &str) -> ObjectKey {
    let (kind, name) = text.split_once('/').unwrap_or((text, text));
    ObjectKey::new(kind, name)
}

pub(super) fn test_config() -> ControllerConfig {
    ControllerConfig {
        concurrency: 4,
        resync: Duration::from_secs(300),
        resync_jitter: 0.0,
        retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        poll: Backoff::new(Duration::from_secs(1), Duration::from_secs(15)),
        ..ControllerConfig::default()
    }
}

/// A controller running over fake kinds, driven as the daemon drives it.
struct World {
    cloud: Arc<Cloud>,
    registry: Registry,
    shared: Arc<Shared>,
    metrics: Metrics,
    commands: mpsc::Sender<Command>,
    shutdown: watch::Sender<bool>,
    run: tokio::task::JoinHandle<()>,
    /// What the controller told (see [`super::events`]).
    events: Arc<std::sync::Mutex<Vec<super::events::Event>>>,
}

impl World {
    fn start(cfg: ControllerConfig, kinds: Kinds) -> Self {
        Self::start_with(cfg, kinds, Arc::default(), Duration::from_secs(30))
    }

    fn start_with(
        cfg: ControllerConfig,
        kinds: Kinds,
        inventory: Arc<MemoryInventory>,
        grace: Duration,
    ) -> Self {
        let cloud = Arc::new(Cloud::default());
        let registry = registry(&cloud, kinds);
        let shared = Arc::new(Shared::default());
        let metrics = Metrics::with_kinds(None, &registry.metrics());
        let (commands, rx) = mpsc::channel(16);
        let (shutdown, stop) = watch::channel(false);
        let events: Arc<std::sync::Mutex<Vec<super::events::Event>>> = Arc::default();
        let told = events.clone();
        let controller = Controller::new(
            cfg,
            registry.clone(),
            inventory,
            shared.clone(),
            metrics.clone(),
        )
        .with_events(Arc::new(move |e| {
            if let Ok(mut told) = told.lock() {
                told.push(e);
            }
        }));
        let run = tokio::spawn(controller.run(rx, stop, grace));
        Self {
            cloud,
            registry,
            shared,
            metrics,
            commands,
            shutdown,
            run,
            events,
        }
    }

    /// The events told so far.
    fn told(&self) -> Vec<super::events::Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// [`World::load`] of files read at a source revision.
    async fn load_at(&self, files: &[(&str, String)], revision: &str) {
        let texts: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(f, t)| (PathBuf::from(f), t.clone()))
            .collect();
        let mut loaded = load_texts(&texts, &self.registry);
        loaded.revision = Some(revision.into());
        self.send(Command::Load(loaded)).await;
    }

    /// Hand the controller these manifest files, as a reload does.
    async fn load(&self, files: &[(&str, String)]) {
        let texts: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(f, t)| (PathBuf::from(f), t.clone()))
            .collect();
        let loaded = load_texts(&texts, &self.registry);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        self.send(Command::Load(loaded)).await;
    }

    async fn send(&self, cmd: Command) {
        assert!(self.commands.send(cmd).await.is_ok(), "controller stopped");
    }

    fn status(&self, k: &str) -> Option<ObjectStatus> {
        let k = key(k);
        self.shared
            .snapshot()
            .objects
            .iter()
            .find(|o| *o.kind == *k.kind && *o.name == *k.name)
            .map(|o| ObjectStatus::clone(o))
    }

    /// Wait (on the paused clock) until `pred` holds; fail after an hour of it.
    async fn until(&self, what: &str, pred: impl Fn(&Snapshot, &Cloud) -> bool) -> Arc<Snapshot> {
        let deadline = Instant::now() + Duration::from_secs(3600);
        loop {
            let snapshot = self.shared.snapshot();
            if pred(&snapshot, &self.cloud) {
                return snapshot;
            }
            assert!(
                Instant::now() < deadline,
                "never happened: {what}\ncalls: {:?}\nstatus: {:#?}",
                self.cloud.log(),
                snapshot.objects
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn until_ready(&self, keys: &[&str]) {
        let keys: Vec<ObjectKey> = keys.iter().map(|k| key(k)).collect();
        self.until(&format!("{keys:?} Ready"), |s, _| {
            keys.iter().all(|k| {
                s.objects
                    .iter()
                    .any(|o| *o.kind == *k.kind && *o.name == *k.name && o.is_ready())
            })
        })
        .await;
    }

    /// Until `k`'s Ready condition gives `reason`.
    async fn until_ready_reason(&self, k: &str, reason: &str) {
        let k = key(k);
        self.until(&format!("{k} {reason}"), |s, _| {
            s.objects.iter().any(|o| {
                *o.kind == *k.kind
                    && *o.name == *k.name
                    && o.condition("Ready").is_some_and(|c| c.reason == reason)
            })
        })
        .await;
    }

    fn calls_of(&self, op: &str, k: &str) -> Vec<Call> {
        let k = key(k);
        self.cloud
            .calls()
            .into_iter()
            .filter(|c| c.op == op && c.key == k)
            .collect()
    }
}

fn condition(status: &Option<ObjectStatus>, kind: &str) -> (String, String, String) {
    status
        .as_ref()
        .and_then(|s| s.condition(kind))
        .map(|c| {
            (
                c.status.to_string(),
                c.reason.to_string(),
                c.message.clone(),
            )
        })
        .unwrap_or_default()
}

fn observed(cloud: &Cloud, k: &ObjectKey) -> Option<Observed<Resource>> {
    cloud.get(k).map(|r| Observed {
        owned: r.owned,
        resource: r,
    })
}

/// Created Progressing; Ready once it has been observed `observes` times since.
fn slow_to_create(observes: usize) -> Fns {
    let seen = Arc::new(AtomicUsize::new(0));
    Fns {
        create: Arc::new(|cloud, d| {
            cloud.put(
                d.key.clone(),
                Resource {
                    readiness: Readiness::Progressing("creating".into()),
                    ..Resource::ready(d)
                },
            );
            Ok(())
        }),
        observe: Arc::new(move |cloud, d| {
            if cloud
                .get(&d.key)
                .is_some_and(|r| matches!(r.readiness, Readiness::Progressing(_)))
                && seen.fetch_add(1, Ordering::SeqCst) + 1 >= observes
            {
                cloud.edit(&d.key, |r| r.readiness = Readiness::Ready);
            }
            Ok(observed(cloud, &d.key))
        }),
        ..Fns::default()
    }
}

/// Fails with `err` while `failures` is above zero (counting it down), then behaves.
fn observe_failing_while(failures: Arc<AtomicUsize>, err: ReconcileError) -> Fns {
    Fns {
        observe: Arc::new(move |cloud, d| {
            if failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(err.clone());
            }
            Ok(observed(cloud, &d.key))
        }),
        ..Fns::default()
    }
}

/// The keys the inventory holds, sorted.
async fn inventory_keys(inventory: &MemoryInventory) -> Vec<String> {
    use super::inventory::Inventory;
    let mut keys: Vec<String> = inventory
        .list()
        .await
        .unwrap_or_default()
        .iter()
        .map(|e| e.key.to_string())
        .collect();
    keys.sort();
    keys
}

/// What an earlier run recorded in the inventory for `Alpha/gone`, whose manifest is no
/// more.
fn recorded_orphan() -> super::inventory::InventoryEntry {
    super::inventory::InventoryEntry {
        key: key("Alpha/gone"),
        meta: crate::kinds::ObjectMeta {
            name: "gone".into(),
            ..Default::default()
        },
        spec: serde_json::json!({ "value": "1" }),
        deletion_policy: crate::kinds::DeletionPolicy::Delete,
        hash: "h".into(),
        dep_outputs: Default::default(),
    }
}

fn gaps(calls: &[Call]) -> Vec<Duration> {
    calls.windows(2).map(|w| w[1].at - w[0].at).collect()
}

fn within(d: Duration, lo_ms: u64, hi_ms: u64) -> bool {
    d >= Duration::from_millis(lo_ms) && d <= Duration::from_millis(hi_ms)
}

#[tokio::test(start_paused = true)]
async fn a_dependent_waits_until_its_dependency_is_ready() {
    let kinds = Kinds {
        alpha: slow_to_create(3),
        ..Kinds::default()
    };
    let w = World::start(test_config(), kinds);
    w.load(&[(
        "m.yaml",
        file(&[
            doc("Alpha/a", "1", &[], &[]),
            doc("Beta/b", "1", &["Alpha/a"], &[]),
        ]),
    )])
    .await;
    w.until_ready_reason("Alpha/a", "Progressing").await;
    let (ready, reason, message) = condition(&w.status("Beta/b"), "Ready");
    assert_eq!(
        (ready.as_str(), reason.as_str(), message.as_str()),
        ("False", "DependencyNotReady", "waiting for Alpha/a")
    );
    w.until_ready(&["Alpha/a", "Beta/b"]).await;
    let log = w.cloud.log();
    let third_look_at_a = log
        .iter()
        .enumerate()
        .filter(|(_, c)| *c == "observe Alpha/a")
        .nth(2)
        .map(|(i, _)| i);
    let first_look_at_b = log.iter().position(|c| c == "observe Beta/b");
    assert!(
        third_look_at_a < first_look_at_b,
        "Beta/b went before Alpha/a was Ready: {log:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn dependents_follow_a_change_of_their_dependency_outputs() {
    // No resync within the test's hour: only the change itself can re-queue Beta/b.
    let cfg = ControllerConfig {
        resync: Duration::from_secs(24 * 3600),
        ..test_config()
    };
    let w = World::start(cfg, Kinds::default());
    let manifests = |v: &str| {
        [(
            "m.yaml",
            file(&[
                doc("Alpha/a", v, &[], &[]),
                doc("Beta/b", "1", &["Alpha/a"], &[]),
            ]),
        )]
    };
    w.load(&manifests("1")).await;
    w.until_ready(&["Alpha/a", "Beta/b"]).await;
    w.load(&manifests("2")).await;
    w.until("Beta/b follows Alpha/a", |_, cloud| {
        cloud
            .get(&key("Beta/b"))
            .is_some_and(|r| r.inputs.get("Alpha/a").map(String::as_str) == Some("2"))
    })
    .await;
    assert_eq!(w.calls_of("update", "Beta/b").len(), 1);
    let metrics = w.metrics.render();
    assert!(
        metrics.contains(r#"agentcore_controller_changes_total{kind="Beta",cause="dependency"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn recoverable_errors_back_off_doubling_and_success_resets_the_backoff() {
    let failures = Arc::new(AtomicUsize::new(3));
    let kinds = Kinds {
        alpha: observe_failing_while(
            failures.clone(),
            ReconcileError::recoverable(Reason::Aws("Throttling".into()), "slow down"),
        ),
        ..Kinds::default()
    };
    let w = World::start(test_config(), kinds);
    w.load(&[("m.yaml", doc("Alpha/a", "1", &[], &[]))]).await;
    w.until_ready(&["Alpha/a"]).await;
    // Three failures, then the observe that finds nothing and the one after the create.
    let g = gaps(&w.calls_of("observe", "Alpha/a"));
    assert_eq!(g.len(), 4, "{g:?}");
    assert!(within(g[0], 500, 1000), "first retry after 0.5-1 s: {g:?}");
    assert!(within(g[1], 1000, 2000), "second after 1-2 s: {g:?}");
    assert!(within(g[2], 2000, 4000), "third after 2-4 s: {g:?}");

    // Success reset the streak: the next failure is retried after 0.5-1 s again.
    let before = w.calls_of("observe", "Alpha/a").len();
    failures.store(2, Ordering::SeqCst);
    w.send(Command::ReconcileAll).await;
    w.until("two more failures and a success", |_, _| {
        w.calls_of("observe", "Alpha/a").len() >= before + 3
    })
    .await;
    let again = &w.calls_of("observe", "Alpha/a")[before..];
    let g = gaps(again);
    assert!(within(g[0], 500, 1000), "backoff reset by success: {g:?}");
    assert!(within(g[1], 1000, 2000), "{g:?}");
}

#[tokio::test(start_paused = true)]
async fn terminal_errors_wait_for_the_manifest_and_recoverable_ones_retry() {
    // Error, and how many creates in five minutes less a second (before the resync).
    let cases = [
        (
            ReconcileError::terminal(Reason::InvalidValue, "no such thing"),
            1..=1,
            "terminal",
        ),
        (
            ReconcileError::recoverable(Reason::Aws("Throttling".into()), "slow down"),
            6..=20,
            "recoverable",
        ),
    ];
    for (err, creates, severity) in cases {
        let kinds = Kinds {
            alpha: Fns::failing("create", usize::MAX, err.clone()),
            ..Kinds::default()
        };
        let w = World::start(test_config(), kinds);
        w.load(&[("m.yaml", doc("Alpha/a", "1", &[], &[]))]).await;
        tokio::time::sleep(Duration::from_secs(299)).await;
        let n = w.calls_of("create", "Alpha/a").len();
        assert!(creates.contains(&n), "{severity}: {n} creates");
        let status = w.status("Alpha/a");
        let (ready, reason, _) = condition(&status, "Ready");
        assert_eq!(
            (ready.as_str(), reason.as_str()),
            ("False", err.reason.as_str())
        );
        let last = status.and_then(|s| s.last_error).map(|e| e.severity);
        assert_eq!(last.as_deref(), Some(severity));
        if severity == "terminal" {
            // A manifest change is what it waited for: tried again at once.
            w.load(&[("m.yaml", doc("Alpha/a", "2", &[], &[]))]).await;
            w.until("retried after the edit", |_, _| {
                w.calls_of("create", "Alpha/a").len() == 2
            })
            .await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_resource_not_created_here_is_left_alone_unless_adopted() {
    // Annotations, then whether it ends up ours, the Ready reason, and updates made.
    type Case<'a> = (&'a [(&'a str, &'a str)], bool, &'a str, usize);
    let cases: [Case; 2] = [
        (&[], false, "NotOwned", 0),
        (&[("agentcore.dev/adopt", "true")], true, "Ready", 1),
    ];
    for (annotations, owned, reason, updates) in cases {
        let w = World::start(test_config(), Kinds::default());
        w.cloud.put(
            key("Alpha/a"),
            Resource {
                value: "theirs".into(),
                inputs: Default::default(),
                owned: false,
                readiness: Readiness::Ready,
                gauge: None,
                credential: None,
            },
        );
        w.load(&[("m.yaml", doc("Alpha/a", "ours", &[], annotations))])
            .await;
        w.until("one reconcile", |s, _| {
            s.objects.iter().any(|o| o.last_reconcile.is_some())
        })
        .await;
        let (_, got, _) = condition(&w.status("Alpha/a"), "Ready");
        assert_eq!(got, reason, "{annotations:?}");
        assert_eq!(w.calls_of("update", "Alpha/a").len(), updates);
        assert_eq!(w.calls_of("create", "Alpha/a").len(), 0);
        let now = w.cloud.get(&key("Alpha/a"));
        assert_eq!(
            now.as_ref().map(|r| r.owned),
            Some(owned),
            "{annotations:?}"
        );
        assert_eq!(
            now.map(|r| r.value),
            Some(if owned { "ours" } else { "theirs" }.to_string())
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_suspended_object_reports_drift_and_writes_nothing() {
    // What exists in the cloud, then the Ready reason and the drift reported.
    let cases = [(None, "Absent", 0), (Some("old"), "Exists", 1)];
    for (existing, reason, drift) in cases {
        let w = World::start(test_config(), Kinds::default());
        if let Some(value) = existing {
            w.cloud.put(
                key("Alpha/a"),
                Resource {
                    value: value.into(),
                    inputs: Default::default(),
                    owned: true,
                    readiness: Readiness::Ready,
                    gauge: None,
                    credential: None,
                },
            );
        }
        let suspend = [("agentcore.dev/suspend", "true")];
        w.load(&[("m.yaml", doc("Alpha/a", "new", &[], &suspend))])
            .await;
        w.until("one reconcile", |s, _| {
            s.objects.iter().any(|o| o.last_reconcile.is_some())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(600)).await;
        let status = w.status("Alpha/a");
        assert_eq!(condition(&status, "Synced").1, "Suspended");
        assert_eq!(condition(&status, "Ready").1, reason);
        assert_eq!(status.map(|s| s.drift.len()), Some(drift));
        assert_eq!(w.cloud.writes(), 0, "{:?}", w.cloud.log());
    }
}

#[tokio::test(start_paused = true)]
async fn a_dependent_goes_on_once_its_suspended_dependency_exists() {
    // Alpha/a exists but AWS is still working on it: not Ready, so Beta/b waits.
    // Suspending a makes it Ready (it exists) with the same outputs: b must be woken by
    // that alone.
    let w = World::start(test_config(), Kinds::default());
    w.cloud.put(
        key("Alpha/a"),
        Resource {
            value: "1".into(),
            inputs: Default::default(),
            owned: true,
            readiness: Readiness::Progressing("still creating".into()),
            gauge: None,
            credential: None,
        },
    );
    let manifests = |annotations: &[(&str, &str)]| {
        [(
            "m.yaml",
            file(&[
                doc("Alpha/a", "1", &[], annotations),
                doc("Beta/b", "1", &["Alpha/a"], &[]),
            ]),
        )]
    };
    w.load(&manifests(&[])).await;
    // Beta/b waits for Alpha/a.
    w.until_ready_reason("Beta/b", "DependencyNotReady").await;
    w.load(&manifests(&[("agentcore.dev/suspend", "true")]))
        .await;
    w.until_ready(&["Alpha/a", "Beta/b"]).await;
    assert_eq!(w.calls_of("create", "Beta/b").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_update_waits_while_aws_is_still_applying_the_last_one() {
    let w = World::start(test_config(), Kinds::default());
    w.cloud.put(
        key("Alpha/a"),
        Resource {
            value: "old".into(),
            inputs: Default::default(),
            owned: true,
            readiness: Readiness::Progressing("updating".into()),
            gauge: None,
            credential: None,
        },
    );
    w.load(&[("m.yaml", doc("Alpha/a", "new", &[], &[]))]).await;
    w.until("polled a few times", |_, _| {
        w.calls_of("observe", "Alpha/a").len() >= 4
    })
    .await;
    assert_eq!(w.calls_of("update", "Alpha/a").len(), 0);
    assert_eq!(condition(&w.status("Alpha/a"), "Ready").1, "Progressing");
    w.cloud
        .edit(&key("Alpha/a"), |r| r.readiness = Readiness::Ready);
    w.until_ready(&["Alpha/a"]).await;
    assert_eq!(w.calls_of("update", "Alpha/a").len(), 1);
    assert_eq!(
        w.cloud.get(&key("Alpha/a")).map(|r| r.value).as_deref(),
        Some("new")
    );
}

#[tokio::test(start_paused = true)]
async fn a_created_resource_not_visible_yet_is_polled_not_created_again() {
    let hidden = Arc::new(AtomicUsize::new(1));
    let kinds = Kinds {
        alpha: Fns {
            observe: Arc::new(move |cloud, d| {
                let found = observed(cloud, &d.key);
                if found.is_some()
                    && hidden
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                {
                    return Ok(None);
                }
                Ok(found)
            }),
            ..Fns::default()
        },
        ..Kinds::default()
    };
    let w = World::start(test_config(), kinds);
    w.load(&[("m.yaml", doc("Alpha/a", "1", &[], &[]))]).await;
    w.until("created, not visible", |s, _| {
        s.objects.iter().any(|o| {
            o.condition("Ready")
                .is_some_and(|c| c.message == "created; waiting for it to appear")
        })
    })
    .await;
    w.until_ready(&["Alpha/a"]).await;
    assert_eq!(w.calls_of("create", "Alpha/a").len(), 1);
}

fn three_alphas() -> Vec<String> {
    ["Alpha/a", "Alpha/b", "Alpha/c"]
        .iter()
        .map(|k| doc(k, "1", &[], &[]))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_mass_prune_waits_for_confirmation() {
    let w = World::start(test_config(), Kinds::default());
    w.load(&[("m.yaml", file(&three_alphas()))]).await;
    w.until_ready(&["Alpha/a", "Alpha/b", "Alpha/c"]).await;
    // An emptied directory: no file at all.
    w.load(&[]).await;
    let s = w
        .until("prune refused", |s, _| s.prune_refused.is_some())
        .await;
    assert!(
        s.prune_refused
            .as_deref()
            .is_some_and(|m| m.contains("refusing to prune 3 of 3")),
        "{s:?}"
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(w.cloud.writes(), 3, "only the creates: {:?}", w.cloud.log());
    w.send(Command::ConfirmPrune).await;
    w.until("pruned", |s, cloud| {
        s.objects.is_empty()
            && ["Alpha/a", "Alpha/b", "Alpha/c"]
                .iter()
                .all(|k| cloud.get(&key(k)).is_none())
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_prune_deletes_dependents_first() {
    let cfg = ControllerConfig {
        allow_mass_prune: true,
        ..test_config()
    };
    let w = World::start(cfg, Kinds::default());
    w.load(&[(
        "m.yaml",
        file(&[
            doc("Alpha/a", "1", &[], &[]),
            doc("Beta/b", "1", &["Alpha/a"], &[]),
            doc("Gamma/c", "1", &["Beta/b"], &[]),
        ]),
    )])
    .await;
    w.until_ready(&["Alpha/a", "Beta/b", "Gamma/c"]).await;
    w.load(&[]).await;
    w.until("all gone", |s, _| s.objects.is_empty()).await;
    let deletes: Vec<String> = w
        .cloud
        .log()
        .into_iter()
        .filter(|c| c.starts_with("delete"))
        .collect();
    assert_eq!(
        deletes,
        ["delete Gamma/c", "delete Beta/b", "delete Alpha/a"]
    );
    // Each deletion was decided on a fresh reading (ownership is not recalled), and only
    // those: the reconciles before them read as usual.
    let observes: Vec<(String, bool)> = w
        .cloud
        .calls()
        .into_iter()
        .filter(|c| c.op == "observe")
        .map(|c| (c.key.to_string(), c.fresh))
        .collect();
    let fresh: Vec<&str> = observes
        .iter()
        .filter(|(_, f)| *f)
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(fresh, ["Gamma/c", "Beta/b", "Alpha/a"], "{observes:?}");
    assert!(observes.iter().take(3).all(|(_, f)| !f), "{observes:?}");
}

#[tokio::test(start_paused = true)]
async fn an_edit_goes_ahead_of_overdue_resyncs() {
    let cfg = ControllerConfig {
        concurrency: 1,
        resync: Duration::from_secs(10),
        ..test_config()
    };
    let kinds = Kinds {
        alpha: Fns {
            latency: Duration::from_secs(4),
            ..Fns::default()
        },
        ..Kinds::default()
    };
    let w = World::start(cfg, kinds);
    let names = ["Alpha/a1", "Alpha/a2", "Alpha/a3", "Alpha/a4", "Alpha/a5"];
    let manifests = |edited: &str| {
        let docs: Vec<String> = names
            .iter()
            .map(|k| doc(k, if *k == "Alpha/a3" { edited } else { "1" }, &[], &[]))
            .collect();
        [("m.yaml", file(&docs))]
    };
    w.load(&manifests("1")).await;
    w.until_ready(&names).await;
    // Five objects of 4 s each against a 10 s resync, one at a time: always behind.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let edited_at = Instant::now();
    w.load(&manifests("2")).await;
    w.until("the edit applied", |_, cloud| {
        cloud.get(&key("Alpha/a3")).is_some_and(|r| r.value == "2")
    })
    .await;
    let next = w.cloud.calls().into_iter().find(|c| c.at >= edited_at);
    assert_eq!(
        next.as_ref().map(|c| c.to_string()).as_deref(),
        Some("observe Alpha/a3")
    );
    // The lane's one slot is always busy with a 4 s resync: the edit took the spare slot
    // at once rather than waiting for it.
    let waited = next.map(|c| c.at.duration_since(edited_at));
    assert!(waited < Some(Duration::from_secs(1)), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_in_flight_work_finish_within_the_grace_period() {
    // Grace, and whether the reconcile in flight got to create the resource.
    let cases = [
        (Duration::from_secs(60), true),
        (Duration::from_secs(2), false),
    ];
    for (grace, finished) in cases {
        let kinds = Kinds {
            alpha: Fns {
                latency: Duration::from_secs(10),
                ..Fns::default()
            },
            ..Kinds::default()
        };
        let w = World::start_with(test_config(), kinds, Arc::default(), grace);
        w.load(&[("m.yaml", doc("Alpha/a", "1", &[], &[]))]).await;
        w.until("reconcile started", |_, cloud| !cloud.calls().is_empty())
            .await;
        let stop_at = Instant::now();
        assert!(w.shutdown.send(true).is_ok());
        let run = w.run;
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), run)
                .await
                .is_ok(),
            "the controller stopped"
        );
        assert!(Instant::now() - stop_at <= grace, "{grace:?}");
        assert_eq!(
            w.cloud.get(&key("Alpha/a")).is_some(),
            finished,
            "{grace:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn what_a_kind_publishes_is_exported_by_name_without_the_engine_knowing_it() {
    let cfg = ControllerConfig {
        allow_mass_prune: true,
        ..test_config()
    };
    let kinds = Kinds {
        beta: Fns::failing(
            "create",
            usize::MAX,
            ReconcileError::terminal(Reason::InvalidValue, "no"),
        ),
        ..Kinds::default()
    };
    let w = World::start(cfg, kinds);
    let docs = [doc("Alpha/a", "1", &[], &[]), doc("Beta/b", "1", &[], &[])];
    w.load(&[("m.yaml", file(&docs))]).await;
    w.until_ready(&["Alpha/a"]).await;
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
        + 1000.0;
    w.cloud
        .edit(&key("Alpha/a"), |r| r.gauge = Some(soon.round()));
    w.send(Command::ReconcileAll).await;
    let gauge = format!(
        r#"agentcore_controller_fake_level{{name="a"}} {:.1}"#,
        soon.round()
    );
    w.until("the gauge exported", |_, _| {
        w.metrics.render().contains(&gauge)
    })
    .await;
    let text = w.metrics.render();
    for line in [
        r#"agentcore_controller_fake_writes_total{name="a"} 1"#,
        // Once at the load, once at reconcile-all.
        r#"agentcore_controller_fake_failures_total{name="b",reason="InvalidValue"} 2"#,
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    let left = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"agentcore_controller_fake_seconds_to_level{name="a"} "#))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(
        left.is_some_and(|s| s > 0.0 && s <= 1000.0),
        "{left:?}\n{text}"
    );
    // Gone with the object.
    w.load(&[("m.yaml", doc("Beta/b", "1", &[], &[]))]).await;
    w.until("Alpha/a pruned", |s, _| s.objects.len() == 1).await;
    let text = w.metrics.render();
    assert!(!text.contains(r#"fake_level{name="a"}"#), "{text}");
}

/// A manifest set of fake kinds, as `apply` loads one.
fn manifest_set(registry: &Registry, docs: &[String]) -> crate::manifest::ManifestSet {
    let loaded = load_texts(&[(PathBuf::from("m.yaml"), file(docs))], registry);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let graph = crate::manifest::Graph::build(&loaded.objects, registry);
    crate::manifest::ManifestSet {
        objects: loaded.objects,
        graph: graph.unwrap_or_default(),
    }
}

fn one_shot(mode: crate::kinds::Mode, timeout_s: u64) -> super::ConvergeOptions {
    super::ConvergeOptions {
        mode,
        timeout: Duration::from_secs(timeout_s),
        ..super::ConvergeOptions::default()
    }
}

/// `kind/name state reason` of each object of a report, in order.
fn states(report: &super::RunReport) -> Vec<String> {
    report
        .objects
        .iter()
        .map(|o| {
            format!("{}/{} {:?} {}", o.kind, o.name, o.state, o.reason)
                .trim_end()
                .to_string()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn apply_runs_the_controller_until_nothing_more_can_happen() {
    use crate::kinds::Mode;
    let chain = || {
        vec![
            doc("Alpha/a", "1", &[], &[]),
            doc("Beta/b", "1", &["Alpha/a"], &[]),
            doc("Gamma/c", "1", &["Beta/b"], &[]),
        ]
    };
    let terminal = ReconcileError::terminal(Reason::InvalidValue, "no such value");
    let throttled = ReconcileError::recoverable(Reason::Aws("Throttling".into()), "slow down");
    // Name, what Beta does, the timeout, and then: timed out, states, and the virtual
    // seconds it took at most.
    type Case = (&'static str, Fns, u64, bool, [&'static str; 3], u64);
    let cases: [Case; 4] = [
        (
            "everything Ready",
            slow_to_create(3),
            300,
            false,
            ["Alpha/a Ready", "Beta/b Ready", "Gamma/c Ready"],
            30,
        ),
        (
            "stops on a terminal failure",
            Fns::failing("create", usize::MAX, terminal),
            300,
            false,
            [
                "Alpha/a Ready",
                "Beta/b Failed InvalidValue",
                "Gamma/c Blocked DependencyFailed",
            ],
            1,
        ),
        (
            "retries until the timeout",
            Fns::failing("create", usize::MAX, throttled.clone()),
            60,
            true,
            [
                "Alpha/a Ready",
                "Beta/b Waiting Throttling",
                "Gamma/c Blocked DependencyNotReady",
            ],
            60,
        ),
        (
            "a retry that succeeds",
            Fns::failing("create", 2, throttled),
            300,
            false,
            ["Alpha/a Ready", "Beta/b Ready", "Gamma/c Ready"],
            10,
        ),
    ];
    for (name, beta, timeout, timed_out, want, at_most) in cases {
        let cloud = Arc::new(Cloud::default());
        let kinds = Kinds {
            beta,
            ..Kinds::default()
        };
        let registry = registry(&cloud, kinds);
        let set = manifest_set(&registry, &chain());
        let start = Instant::now();
        let report = super::converge(&set, &registry, &one_shot(Mode::Apply, timeout)).await;
        assert_eq!(report.timed_out, timed_out, "{name}");
        assert_eq!(states(&report), want, "{name}");
        assert!(
            Instant::now() - start <= Duration::from_secs(at_most),
            "{name}: took {:?}",
            Instant::now() - start
        );
        assert_eq!(
            report.all_ready(),
            want.iter().all(|s| s.ends_with("Ready"))
        );
    }
}

#[tokio::test(start_paused = true)]
async fn apply_ends_when_a_suspended_object_is_absent() {
    use crate::kinds::Mode;
    let cloud = Arc::new(Cloud::default());
    let registry = registry(&cloud, Kinds::default());
    let suspend = [("agentcore.dev/suspend", "true")];
    let docs = [
        doc("Alpha/a", "1", &[], &[]),
        doc("Beta/b", "1", &[], &suspend),
    ];
    let set = manifest_set(&registry, &docs);
    let start = Instant::now();
    let report = super::converge(&set, &registry, &one_shot(Mode::Apply, 600)).await;
    // Observed once and found absent: nothing more will happen to it in this run.
    assert!(!report.timed_out, "{:?}", states(&report));
    assert!(Instant::now() - start < Duration::from_secs(60));
    assert_eq!(states(&report)[0], "Alpha/a Ready");
    assert!(
        cloud
            .calls()
            .iter()
            .all(|c| c.op == "observe" || &*c.key.kind != "Beta")
    );
}

#[tokio::test(start_paused = true)]
async fn plan_mode_writes_nothing_and_reports_what_it_would_do() {
    use crate::kinds::{Action, Mode};
    let cloud = Arc::new(Cloud::default());
    let registry = registry(&cloud, Kinds::default());
    // Alpha/a exists and differs, Beta/b exists as wanted, Gamma/c does not exist, and
    // Gamma/d waits on it.
    for (k, value) in [("Alpha/a", "old"), ("Beta/b", "1")] {
        cloud.put(
            key(k),
            Resource {
                value: value.into(),
                inputs: Default::default(),
                owned: true,
                readiness: Readiness::Ready,
                gauge: None,
                credential: None,
            },
        );
    }
    let set = manifest_set(
        &registry,
        &[
            doc("Alpha/a", "new", &[], &[]),
            doc("Beta/b", "1", &[], &[]),
            doc("Gamma/c", "1", &[], &[]),
            doc("Gamma/d", "1", &["Gamma/c"], &[]),
        ],
    );
    let report = super::converge(&set, &registry, &one_shot(Mode::Plan, 60)).await;
    assert_eq!(cloud.writes(), 0, "{:?}", cloud.log());
    assert!(!report.timed_out);
    let got: Vec<(String, Option<Action>, usize)> = report
        .objects
        .iter()
        .map(|o| {
            (
                format!("{}/{} {:?} {}", o.kind, o.name, o.state, o.reason)
                    .trim_end()
                    .to_string(),
                o.action,
                o.changes.len(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Alpha/a Ready".to_string(), Some(Action::Update), 1),
            ("Beta/b Ready".to_string(), Some(Action::Unchanged), 0),
            ("Gamma/c Absent".to_string(), Some(Action::Create), 0),
            ("Gamma/d Blocked DependencyAbsent".to_string(), None, 0),
        ]
    );
    assert!(report.changes_pending());
    let blocked = &report.objects[3].message;
    assert_eq!(blocked, "will be reconciled after Gamma/c is created");
}

#[tokio::test(start_paused = true)]
async fn a_slow_lane_does_not_hold_up_the_due_work_of_another() {
    // One slot per lane; Alpha (lane east) takes a minute per call, Gamma (west) none.
    let cfg = ControllerConfig {
        concurrency: 1,
        ..test_config()
    };
    let kinds = Kinds {
        alpha: Fns {
            latency: Duration::from_secs(60),
            ..Fns::default()
        },
        ..Kinds::default()
    };
    let w = World::start(cfg, kinds);
    let docs: Vec<String> = ["Alpha/a1", "Alpha/a2", "Gamma/g1", "Gamma/g2", "Gamma/g3"]
        .iter()
        .map(|k| doc(k, "1", &[], &[]))
        .collect();
    w.load(&[("m.yaml", file(&docs))]).await;
    w.until_ready(&["Gamma/g1", "Gamma/g2", "Gamma/g3"]).await;
    // West went while east's first reconcile was still on its first call.
    let alpha_calls = w
        .cloud
        .calls()
        .iter()
        .filter(|c| &*c.key.kind == "Alpha")
        .count();
    assert_eq!(alpha_calls, 1, "{:?}", w.cloud.log());
    assert!(w.status("Alpha/a1").is_some_and(|s| !s.is_ready()));
    w.until_ready(&["Alpha/a1", "Alpha/a2"]).await;
}

#[tokio::test(start_paused = true)]
async fn intent_is_recorded_before_a_create_and_an_orphan_is_pruned_after_a_restart() {
    use super::inventory::Inventory;
    // What an earlier run recorded: Alpha/gone, whose manifest is no more.
    let cloud_seed = Resource {
        value: "1".into(),
        inputs: Default::default(),
        owned: true,
        readiness: Readiness::Ready,
        gauge: None,
        credential: None,
    };
    let orphan = recorded_orphan();
    let inventory = Arc::new(MemoryInventory::holding([orphan]));
    let recorded_first = Arc::new(AtomicUsize::new(0));
    let (inv, seen) = (inventory.clone(), recorded_first.clone());
    let kinds = Kinds {
        alpha: Fns {
            create: Arc::new(move |cloud, d| {
                let listed = futures::executor::block_on(inv.list()).unwrap_or_default();
                if listed.iter().any(|e| e.key == d.key) {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                cloud.put(d.key.clone(), Resource::ready(d));
                Ok(())
            }),
            ..Fns::default()
        },
        ..Kinds::default()
    };
    let cfg = ControllerConfig {
        allow_mass_prune: true,
        ..test_config()
    };
    let w = World::start_with(cfg, kinds, inventory.clone(), Duration::from_secs(30));
    w.cloud.put(key("Alpha/gone"), cloud_seed);
    w.load(&[(
        "m.yaml",
        file(&[doc("Alpha/a", "1", &[], &[]), doc("Alpha/b", "1", &[], &[])]),
    )])
    .await;
    w.until("a and b created, the orphan deleted", |s, cloud| {
        cloud.get(&key("Alpha/gone")).is_none()
            && s.objects.len() == 2
            && s.objects.iter().all(|o| o.is_ready())
    })
    .await;
    assert_eq!(
        recorded_first.load(Ordering::SeqCst),
        2,
        "entries before creates"
    );
    assert_eq!(inventory_keys(&inventory).await, ["Alpha/a", "Alpha/b"]);
}

/// A publication copies only the statuses that changed since the last one: an object
/// left alone is the same shared status in the next snapshot, one reconciled since is
/// not.
#[tokio::test(start_paused = true)]
async fn snapshots_share_the_statuses_that_did_not_change() {
    let w = World::start(test_config(), Kinds::default());
    w.load(&[(
        "m.yaml",
        file(&[doc("Alpha/a", "1", &[], &[]), doc("Beta/b", "1", &[], &[])]),
    )])
    .await;
    w.until_ready(&["Alpha/a", "Beta/b"]).await;
    let find = |s: &Snapshot, name: &str| {
        s.objects
            .iter()
            .find(|o| o.name == name)
            .cloned()
            .expect("in the snapshot")
    };
    let before = w.shared.snapshot();
    w.load(&[(
        "m.yaml",
        file(&[doc("Alpha/a", "2", &[], &[]), doc("Beta/b", "1", &[], &[])]),
    )])
    .await;
    let after = w
        .until("Alpha/a reconciled at its new content", |s, _| {
            !Arc::ptr_eq(&find(s, "a"), &find(&before, "a"))
                && find(s, "a").observed_hash != find(&before, "a").observed_hash
        })
        .await;
    assert!(
        !Arc::ptr_eq(&before, &after),
        "a new snapshot was published"
    );
    assert!(
        Arc::ptr_eq(&find(&before, "b"), &find(&after, "b")),
        "Beta/b did not change: its status is shared, not copied"
    );
}

/// Leader election, as the engine sees it: a standby observes only (no write, no inventory
/// entry, no prune); promoted, it reads the inventory back first, prunes what no manifest
/// defines and writes; demoted, it stops; promoted again, it does not write again the
/// entries it finds as it would write them.
#[tokio::test(start_paused = true)]
async fn a_standby_observes_only_and_a_promoted_replica_takes_over_from_the_inventory() {
    let orphan = recorded_orphan();
    let inventory = Arc::new(MemoryInventory::holding([orphan]));
    let cfg = ControllerConfig {
        allow_mass_prune: true,
        standby: true,
        ..test_config()
    };
    let w = World::start_with(
        cfg,
        Kinds::default(),
        inventory.clone(),
        Duration::from_secs(30),
    );
    let seeded = |value: &str| Resource {
        value: value.into(),
        inputs: Default::default(),
        owned: true,
        readiness: Readiness::Ready,
        gauge: None,
        credential: None,
    };
    w.cloud.put(key("Alpha/gone"), seeded("1"));
    w.cloud.put(key("Alpha/a"), seeded("drifted"));
    w.load(&[(
        "m.yaml",
        file(&[doc("Alpha/a", "1", &[], &[]), doc("Alpha/b", "1", &[], &[])]),
    )])
    .await;
    w.until("both observed", |s, _| {
        s.objects.len() == 2 && s.objects.iter().all(|o| o.last_reconcile.is_some())
    })
    .await;
    // A whole resync period and more, standing by.
    tokio::time::sleep(Duration::from_secs(3 * 300)).await;
    let writes = |w: &World| {
        w.cloud
            .calls()
            .into_iter()
            .filter(|c| c.op != "observe")
            .map(|c| format!("{} {}", c.op, c.key))
            .collect::<Vec<_>>()
    };
    assert_eq!(writes(&w), Vec::<String>::new(), "a standby writes nothing");
    assert_eq!(inventory.puts(), 0, "nor any inventory entry");
    assert!(w.cloud.get(&key("Alpha/gone")).is_some(), "nor prunes");
    let (_, reason, message) = condition(&w.status("Alpha/a"), "Synced");
    assert_eq!(reason, "Standby");
    assert!(message.contains("standby"), "{message}");
    assert_eq!(condition(&w.status("Alpha/a"), "Ready").1, "Exists");
    assert_eq!(condition(&w.status("Alpha/b"), "Ready").1, "Absent");

    w.send(Command::Lead).await;
    w.until("the orphan pruned, a corrected, b created", |s, cloud| {
        cloud.get(&key("Alpha/gone")).is_none()
            && cloud.get(&key("Alpha/a")).is_some_and(|r| r.value == "1")
            && s.objects.len() == 2
            && s.objects.iter().all(|o| o.is_ready())
    })
    .await;
    // Read back before anything was written: the orphan was known to the prune.
    assert_eq!(inventory_keys(&inventory).await, ["Alpha/a", "Alpha/b"]);
    let puts = inventory.puts();
    assert_eq!(puts, 2);

    // Demoted: drift is seen, not corrected.
    w.send(Command::Follow).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = writes(&w).len();
    w.cloud
        .edit(&key("Alpha/a"), |r| r.value = "drifted".into());
    w.send(Command::ReconcileAll).await;
    w.until("the drift seen", |s, _| {
        s.objects
            .iter()
            .any(|o| &*o.name == "a" && !o.drift.is_empty())
    })
    .await;
    assert_eq!(writes(&w).len(), before, "a demoted replica writes nothing");

    // Promoted again: it corrects the drift, and writes no entry it found as it would
    // write it.
    w.send(Command::Lead).await;
    w.until("the drift corrected", |_, cloud| {
        cloud.get(&key("Alpha/a")).is_some_and(|r| r.value == "1")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        inventory.puts(),
        puts,
        "entries rewritten after the re-read"
    );
}

/// Promoted before the manifests were first loaded, a replica prunes nothing: what is
/// gone is only known once they are. The load then plans the prune as usual.
#[tokio::test(start_paused = true)]
async fn a_replica_promoted_before_the_first_load_prunes_only_after_it() {
    let inventory = Arc::new(MemoryInventory::holding([recorded_orphan()]));
    let cfg = ControllerConfig {
        allow_mass_prune: true,
        standby: true,
        ..test_config()
    };
    let w = World::start_with(cfg, Kinds::default(), inventory, Duration::from_secs(30));
    w.cloud.put(
        key("Alpha/gone"),
        Resource {
            value: "1".into(),
            inputs: Default::default(),
            owned: true,
            readiness: Readiness::Ready,
            gauge: None,
            credential: None,
        },
    );
    w.send(Command::Lead).await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(
        w.cloud.get(&key("Alpha/gone")).is_some(),
        "{:?}",
        w.cloud.log()
    );
    w.load(&[("m.yaml", file(&[doc("Alpha/a", "1", &[], &[])]))])
        .await;
    w.until("the orphan pruned after the load", |_, cloud| {
        cloud.get(&key("Alpha/gone")).is_none() && cloud.get(&key("Alpha/a")).is_some()
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_failure_is_told_once_then_its_recovery_and_each_revision_once_applied() {
    use super::events::Event;
    let failures = Arc::new(AtomicUsize::new(6));
    let kinds = Kinds {
        alpha: observe_failing_while(
            failures.clone(),
            ReconcileError::recoverable(Reason::Aws("Throttling".into()), "slow down"),
        ),
        ..Kinds::default()
    };
    let w = World::start(test_config(), kinds);
    w.load_at(&[("m.yaml", doc("Alpha/a", "1", &[], &[]))], "main@sha1:1")
        .await;
    w.until_ready(&["Alpha/a"]).await;
    // Applied once every object has run at the revision (the first attempt failed);
    // the failure told at the third in a row, not at each of the six; the recovery once.
    let a = key("Alpha/a");
    let want = vec![
        Event::RevisionApplied {
            revision: "main@sha1:1".into(),
            ready: 0,
            failing: 1,
            waiting: 0,
        },
        Event::ReconcileFailed {
            key: a.clone(),
            reason: "Throttling".into(),
            message: "slow down".into(),
            terminal: false,
            credential: false,
        },
        Event::Recovered { key: a.clone() },
    ];
    assert_eq!(w.told(), want);
    let status = w.status("Alpha/a").expect("tracked");
    assert_eq!(status.revision.as_deref(), Some("main@sha1:1"));

    // A change made behind the controller's back is undone, and told with its fields.
    w.cloud.edit(&a, |r| r.value = "by hand".into());
    w.send(Command::ReconcileAll).await;
    w.until("the drift undone", |_, cloud| {
        cloud.get(&a).is_some_and(|r| r.value == "1")
    })
    .await;
    // A new revision that changes nothing is applied at once; one that changes the object,
    // once it has run at it; the same revision loaded again is not told again.
    w.load_at(&[("m.yaml", doc("Alpha/a", "1", &[], &[]))], "main@sha1:2")
        .await;
    w.load_at(&[("m.yaml", doc("Alpha/a", "2", &[], &[]))], "main@sha1:3")
        .await;
    w.until("a at 2", |_, cloud| {
        cloud.get(&a).is_some_and(|r| r.value == "2")
    })
    .await;
    w.load_at(&[("m.yaml", doc("Alpha/a", "2", &[], &[]))], "main@sha1:3")
        .await;
    w.until("revision 3 applied", |s, _| {
        s.applied_revision.as_deref() == Some("main@sha1:3")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let told = w.told();
    let later: Vec<&Event> = told[want.len()..].iter().collect();
    let applied = |rev: &str| Event::RevisionApplied {
        revision: rev.into(),
        ready: 1,
        failing: 0,
        waiting: 0,
    };
    assert_eq!(
        later,
        vec![
            &Event::DriftCorrected {
                key: a.clone(),
                fields: vec!["spec.value".into()],
            },
            &applied("main@sha1:2"),
            &applied("main@sha1:3"),
        ]
    );
    assert_eq!(
        w.status("Alpha/a").and_then(|s| s.revision).as_deref(),
        Some("main@sha1:3")
    );
}

#[tokio::test(start_paused = true)]
async fn a_terminal_failure_is_told_at_once_and_a_refused_prune_once() {
    use super::events::Event;
    let kinds = Kinds {
        alpha: Fns::failing(
            "create",
            usize::MAX,
            ReconcileError::terminal(Reason::InvalidValue, "no such thing"),
        ),
        ..Kinds::default()
    };
    let w = World::start(test_config(), kinds);
    w.load(&[("m.yaml", doc("Alpha/a", "1", &[], &[]))]).await;
    w.until_ready_reason("Alpha/a", Reason::InvalidValue.as_str())
        .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let failed: Vec<Event> = w
        .told()
        .into_iter()
        .filter(|e| matches!(e, Event::ReconcileFailed { terminal: true, .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");

    let w = World::start(test_config(), Kinds::default());
    w.load(&[("m.yaml", file(&three_alphas()))]).await;
    w.until_ready(&["Alpha/a", "Alpha/b", "Alpha/c"]).await;
    w.load(&[("m.yaml", String::new())]).await;
    w.load(&[("m.yaml", doc("Alpha/x", "1", &[], &[]))]).await;
    w.until_ready(&["Alpha/x"]).await;
    let refused = w
        .told()
        .into_iter()
        .filter(|e| matches!(e, Event::PruneRefused { .. }))
        .count();
    assert_eq!(refused, 1, "{:?}", w.told());
}

#[tokio::test(start_paused = true)]
async fn a_credential_in_the_last_tenth_of_its_lifetime_is_told_once_until_renewed() {
    use super::events::Event;
    let w = World::start(test_config(), Kinds::default());
    w.load(&[("m.yaml", doc("Alpha/a", "1", &[], &[]))]).await;
    w.until_ready(&["Alpha/a"]).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let a = key("Alpha/a");
    let expiring = |w: &World| {
        w.told()
            .into_iter()
            .filter(|e| matches!(e, Event::CredentialExpiring { .. }))
            .count()
    };
    // (issued, expires) as each reconcile reads them, and how many times it was told.
    let steps = [
        ((now - 100, now + 900), 0), // 90 % left
        ((now - 950, now + 50), 1),  // 5 % left: told
        ((now - 960, now + 40), 1),  // still: not again
        ((now, now + 1000), 1),      // renewed
        ((now - 990, now + 10), 2),  // expiring again: told again
    ];
    for (i, (credential, told)) in steps.into_iter().enumerate() {
        let before = w.calls_of("observe", "Alpha/a").len();
        w.cloud.edit(&a, |r| r.credential = Some(credential));
        w.send(Command::ReconcileAll).await;
        w.until("observed again", |_, _| {
            w.calls_of("observe", "Alpha/a").len() > before
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(expiring(&w), told, "step {i}: {:?}", w.told());
    }
}
