//! An in-memory kind for testing the engine without AWS (after crossplane-runtime's
//! `ExternalClientFns`): observe, create, update and delete are closures over a shared
//! [`Cloud`], which counts every call. The defaults behave like a well-mannered AWS
//! resource; a test replaces one closure to script a failure, a slow resource, or one
//! that is not visible yet.
//!
//! A manifest of a fake kind:
//!
//! ```yaml
//! apiVersion: agentcore.dev/v1alpha1
//! kind: Beta
//! metadata: { name: b }
//! spec: { value: "1", after: [Alpha/a] }   # takes Alpha/a's `value` output
//! ```

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{
    Change, Ctx, Deps, Kind, ObjectKey, ObjectMeta, Observed, Outputs, Readiness, Reference,
    compare, parse_kind_name,
};
use crate::error::{ReconcileError, Result};

/// Names a fake kind and its lane.
pub(crate) trait Label: Send + Sync + 'static {
    const KIND: &'static str;
    const LANE: &'static str;
}

pub(crate) struct Alpha;
impl Label for Alpha {
    const KIND: &'static str = "Alpha";
    const LANE: &'static str = "east";
}

pub(crate) struct Beta;
impl Label for Beta {
    const KIND: &'static str = "Beta";
    const LANE: &'static str = "east";
}

pub(crate) struct Gamma;
impl Label for Gamma {
    const KIND: &'static str = "Gamma";
    const LANE: &'static str = "west";
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FakeSpec {
    #[serde(default)]
    pub value: String,
    /// `Kind/name` of objects whose `value` output this one takes.
    #[serde(default)]
    pub after: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Desired {
    pub key: ObjectKey,
    pub value: String,
    /// The `value` output of each dependency, by `Kind/name`.
    pub inputs: BTreeMap<String, String>,
}

/// A resource in the fake cloud.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resource {
    pub value: String,
    pub inputs: BTreeMap<String, String>,
    pub owned: bool,
    pub readiness: Readiness,
    /// A gauge the kind publishes (see [`Kind::gauges`]), when set.
    pub gauge: Option<f64>,
    /// A credential it publishes: (issued, expires), seconds since the epoch.
    pub credential: Option<(u64, u64)>,
}

impl Resource {
    pub fn ready(desired: &Desired) -> Self {
        Self {
            value: desired.value.clone(),
            inputs: desired.inputs.clone(),
            owned: true,
            readiness: Readiness::Ready,
            gauge: None,
            credential: None,
        }
    }
}

/// One call made to the fake cloud.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub op: &'static str,
    pub key: ObjectKey,
    /// When it started.
    pub at: Instant,
    /// Made by work that must read fresh (see [`crate::fresh`]).
    pub fresh: bool,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.op, self.key)
    }
}

/// The shared state every fake kind reads and writes.
#[derive(Debug, Default)]
pub(crate) struct Cloud {
    resources: Mutex<BTreeMap<ObjectKey, Resource>>,
    calls: Mutex<Vec<Call>>,
}

impl Cloud {
    pub fn get(&self, key: &ObjectKey) -> Option<Resource> {
        self.resources.lock().ok()?.get(key).cloned()
    }

    pub fn put(&self, key: ObjectKey, resource: Resource) {
        if let Ok(mut r) = self.resources.lock() {
            r.insert(key, resource);
        }
    }

    pub fn remove(&self, key: &ObjectKey) {
        if let Ok(mut r) = self.resources.lock() {
            r.remove(key);
        }
    }

    /// Change a resource in place (drift, AWS finishing its work).
    pub fn edit(&self, key: &ObjectKey, f: impl FnOnce(&mut Resource)) {
        if let Ok(mut r) = self.resources.lock()
            && let Some(res) = r.get_mut(key)
        {
            f(res);
        }
    }

    fn note(&self, op: &'static str, key: &ObjectKey) {
        if let Ok(mut c) = self.calls.lock() {
            c.push(Call {
                op,
                key: key.clone(),
                at: Instant::now(),
                fresh: crate::fresh::is_fresh(),
            });
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Creates, updates and deletes, of any object.
    pub fn writes(&self) -> usize {
        self.calls().iter().filter(|c| c.op != "observe").count()
    }

    /// The calls as `op Kind/name`, in order.
    pub fn log(&self) -> Vec<String> {
        self.calls().iter().map(|c| c.to_string()).collect()
    }
}

pub(crate) type ObserveFn =
    Arc<dyn Fn(&Cloud, &Desired) -> Result<Option<Observed<Resource>>> + Send + Sync>;
pub(crate) type WriteFn = Arc<dyn Fn(&Cloud, &Desired) -> Result<()> + Send + Sync>;

/// What each operation does. The defaults read and write the [`Cloud`] faithfully.
#[derive(Clone)]
pub(crate) struct Fns {
    pub observe: ObserveFn,
    pub create: WriteFn,
    pub update: WriteFn,
    pub delete: WriteFn,
    /// How long every call takes (on tokio's clock, which the tests pause).
    pub latency: Duration,
}

impl Default for Fns {
    fn default() -> Self {
        Self {
            observe: Arc::new(|cloud, d| {
                Ok(cloud.get(&d.key).map(|r| Observed {
                    owned: r.owned,
                    resource: r,
                }))
            }),
            create: Arc::new(|cloud, d| {
                cloud.put(d.key.clone(), Resource::ready(d));
                Ok(())
            }),
            update: Arc::new(|cloud, d| {
                cloud.edit(&d.key, |r| {
                    r.value = d.value.clone();
                    r.inputs = d.inputs.clone();
                    r.owned = true;
                });
                Ok(())
            }),
            delete: Arc::new(|cloud, d| {
                cloud.remove(&d.key);
                Ok(())
            }),
            latency: Duration::ZERO,
        }
    }
}

impl Fns {
    /// Every call fails with `err` the first `times` times it is made, then behaves.
    pub fn failing(op: &'static str, times: usize, err: ReconcileError) -> Self {
        let mut fns = Self::default();
        let left = Arc::new(Mutex::new(times));
        let fail = move || -> Result<()> {
            let mut left = left.lock().map_err(|_| err.clone())?;
            if *left > 0 {
                *left -= 1;
                return Err(err.clone());
            }
            Ok(())
        };
        match op {
            "observe" => {
                let inner = fns.observe.clone();
                fns.observe = Arc::new(move |c, d| {
                    fail()?;
                    inner(c, d)
                });
            }
            "create" => {
                let inner = fns.create.clone();
                fns.create = Arc::new(move |c, d| {
                    fail()?;
                    inner(c, d)
                });
            }
            "update" => {
                let inner = fns.update.clone();
                fns.update = Arc::new(move |c, d| {
                    fail()?;
                    inner(c, d)
                });
            }
            _ => {
                let inner = fns.delete.clone();
                fns.delete = Arc::new(move |c, d| {
                    fail()?;
                    inner(c, d)
                });
            }
        }
        fns
    }
}

/// A fake kind of label `L` over a shared cloud.
pub(crate) struct Fake<L> {
    cloud: Arc<Cloud>,
    fns: Fns,
    label: PhantomData<fn() -> L>,
}

impl<L: Label> Fake<L> {
    pub fn with(cloud: Arc<Cloud>, fns: Fns) -> Self {
        Self {
            cloud,
            fns,
            label: PhantomData,
        }
    }

    async fn call(&self, op: &'static str, key: &ObjectKey) {
        self.cloud.note(op, key);
        if !self.fns.latency.is_zero() {
            tokio::time::sleep(self.fns.latency).await;
        }
    }
}

#[async_trait]
impl<L: Label> Kind for Fake<L> {
    const KIND: &'static str = L::KIND;
    const LANE: &'static str = L::LANE;
    const OUTPUTS: &'static [&'static str] = &["id", "value"];
    const METRICS: &'static [super::MetricSpec] = &[
        super::MetricSpec {
            name: "fake_level",
            help: "The level a fake resource reports",
            source: super::MetricSource::Gauge,
        },
        super::MetricSpec {
            name: "fake_seconds_to_level",
            help: "Seconds until the fake level, read as a Unix time",
            source: super::MetricSource::SecondsUntil("fake_level"),
        },
        super::MetricSpec {
            name: "fake_writes",
            help: "Writes to fake resources",
            source: super::MetricSource::Writes,
        },
        super::MetricSpec {
            name: "fake_failures",
            help: "Failed reconciles of fake resources",
            source: super::MetricSource::Failures,
        },
    ];

    type Spec = FakeSpec;
    type Desired = Desired;
    type Observed = Resource;

    fn new(_ctx: Arc<Ctx>) -> Self {
        Self::with(Arc::default(), Fns::default())
    }

    fn permissions(
        _meta: &ObjectMeta,
        _spec: &Self::Spec,
        _scope: &crate::model::permissions::Scope,
    ) -> Vec<crate::model::permissions::Grant> {
        Vec::new()
    }

    fn references(spec: &FakeSpec) -> Vec<Reference> {
        spec.after
            .iter()
            .filter_map(|s| parse_kind_name(s))
            .map(|t| Reference {
                path: "spec.after".into(),
                target: t,
                output: Some("value".into()),
            })
            .collect()
    }

    fn resolve(&self, meta: &ObjectMeta, spec: &FakeSpec, deps: &Deps<'_>) -> Result<Desired> {
        let mut inputs = BTreeMap::new();
        for r in Self::references(spec) {
            let v = deps.get(&r.target.kind, &r.target.name, "value")?;
            inputs.insert(r.target.to_string(), v);
        }
        Ok(Desired {
            key: ObjectKey::new(L::KIND, meta.name.as_str()),
            value: spec.value.clone(),
            inputs,
        })
    }

    async fn observe(&self, d: &Desired) -> Result<Option<Observed<Resource>>> {
        self.call("observe", &d.key).await;
        (self.fns.observe)(&self.cloud, d)
    }

    fn diff(d: &Desired, o: &Resource) -> Vec<Change> {
        let mut changes = Vec::new();
        compare(&mut changes, "spec.value", &o.value, &d.value);
        compare(&mut changes, "spec.inputs", &o.inputs, &d.inputs);
        changes
    }

    fn readiness(o: &Resource) -> Readiness {
        o.readiness.clone()
    }

    fn outputs(d: &Desired, o: &Resource) -> Outputs {
        let mut out = Outputs::from([
            ("id".to_string(), d.key.name.to_string()),
            ("value".to_string(), o.value.clone()),
        ]);
        if let Some((issued, expires)) = o.credential {
            out.insert("issuedAtEpoch".into(), issued.to_string());
            out.insert("expiresAtEpoch".into(), expires.to_string());
        }
        out
    }

    fn gauges(_d: &Desired, o: &Resource) -> Vec<(&'static str, f64)> {
        o.gauge.map(|g| ("fake_level", g)).into_iter().collect()
    }

    async fn create(&self, d: &Desired) -> Result<()> {
        self.call("create", &d.key).await;
        (self.fns.create)(&self.cloud, d)
    }

    async fn update(&self, d: &Desired, _o: &Observed<Resource>, _c: &[Change]) -> Result<()> {
        self.call("update", &d.key).await;
        (self.fns.update)(&self.cloud, d)
    }

    async fn delete(&self, d: &Desired, _o: &Resource) -> Result<()> {
        self.call("delete", &d.key).await;
        (self.fns.delete)(&self.cloud, d)
    }
}
