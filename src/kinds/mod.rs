//! The kinds of AWS resources the controller manages, one file per kind, and the
//! contract every kind follows (after Crossplane's ExternalClient):
//! observe (reads only) → diff (pure) → create / update / delete (idempotent).
//!
//! A kind knows its AWS API and nothing about files, queues or scheduling. The generic
//! [`DynKind`] wrapper turns a typed [`Kind`] into the one-step reconcile the engine drives.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::Aws;
use crate::error::{ReconcileError, Result};
use crate::manifest::de::{FieldProblem, from_node_lenient};
use crate::manifest::yaml::Node;

pub mod agent_runtime;
pub mod image;
pub mod names;
pub mod parameter;
pub mod policy;
pub mod repository;
pub mod role;
pub mod secret;
mod secrets_manager;
pub mod token;
pub mod user;
pub mod user_pool;
pub mod user_pool_client;

/// The API group and version of every manifest document.
pub const API_VERSION: &str = "agentcore.dev/v1alpha1";
/// Tag put on everything the controller creates; its value is the controller instance.
pub const OWNER_TAG: &str = "agentcore.dev/managed-by";
/// Annotation that lets the controller take over a same-named resource it did not create.
pub const ANNOTATION_ADOPT: &str = "agentcore.dev/adopt";
/// Annotation that sets the deletion policy (`Delete` or `Retain`).
pub const ANNOTATION_DELETION_POLICY: &str = "agentcore.dev/deletion-policy";
/// Annotation that suspends an object: observe and report drift, write nothing.
pub const ANNOTATION_SUSPEND: &str = "agentcore.dev/suspend";
/// Annotation that overrides the resync period of one object (e.g. `30s`, `10m`).
pub const ANNOTATION_RESYNC: &str = "agentcore.dev/resync-period";
/// The prefix of every annotation (and tag) the controller reads or writes.
pub const ANNOTATION_PREFIX: &str = "agentcore.dev/";
/// Every annotation under our prefix that the controller understands.
pub const KNOWN_ANNOTATIONS: [&str; 4] = [
    ANNOTATION_ADOPT,
    ANNOTATION_DELETION_POLICY,
    ANNOTATION_SUSPEND,
    ANNOTATION_RESYNC,
];

/// Named values a resource exposes once it exists (IDs, ARNs, URLs, digests). Never secrets.
pub type Outputs = BTreeMap<String, String>;

/// Identity of a manifest object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    pub kind: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// What happens to the AWS resource when its object is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeletionPolicy {
    Delete,
    Retain,
}

/// The metadata a kind may look at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The directory of the manifest file that defines the object, set by the loader
    /// (never written in a manifest). Relative paths in a spec resolve against it.
    #[serde(skip)]
    pub base_dir: Option<std::path::PathBuf>,
}

impl ObjectMeta {
    pub fn adopt(&self) -> bool {
        self.annotations
            .get(ANNOTATION_ADOPT)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// `path` as written in a spec, resolved against the manifest's directory.
    pub fn resolve_path(&self, path: &str) -> std::path::PathBuf {
        match &self.base_dir {
            Some(base) => base.join(path),
            None => std::path::PathBuf::from(path),
        }
    }
}

/// A reference from one object's spec to another object, by kind and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Field path inside the document, e.g. `spec.userPoolRef`.
    pub path: String,
    pub target: ObjectKey,
    /// The output of the target this value is taken from, when it is one.
    pub output: Option<String>,
}

impl Reference {
    pub fn new(path: impl Into<String>, kind: &str, name: &str) -> Self {
        Self {
            path: path.into(),
            target: ObjectKey::new(kind, name),
            output: None,
        }
    }
}

/// A reference written as `Kind/name` in a manifest (used by value sources).
pub fn parse_kind_name(text: &str) -> Option<ObjectKey> {
    let (kind, name) = text.split_once('/')?;
    (!kind.is_empty() && !name.is_empty()).then(|| ObjectKey::new(kind, name))
}

/// The outputs of the objects this one depends on.
pub struct Deps<'a> {
    outputs: &'a BTreeMap<ObjectKey, Outputs>,
    placeholders: bool,
}

impl<'a> Deps<'a> {
    pub fn new(outputs: &'a BTreeMap<ObjectKey, Outputs>) -> Self {
        Self {
            outputs,
            placeholders: false,
        }
    }

    /// For tearing down: a missing output reads as an empty string instead of "waiting".
    /// A resource is found by what names it (its own name, or the container it lives in,
    /// which the teardown checks first: see [`Kind::CONTAINED_IN`]), not by the values it
    /// was configured with, so a runtime whose image is gone can still be deleted.
    pub fn for_teardown(outputs: &'a BTreeMap<ObjectKey, Outputs>) -> Self {
        Self {
            outputs,
            placeholders: true,
        }
    }

    /// The output `key` of object `kind/name`, or a "waiting" error while it has none.
    pub fn get(&self, kind: &str, name: &str, key: &str) -> Result<String> {
        let target = ObjectKey::new(kind, name);
        if self.placeholders
            && self
                .outputs
                .get(&target)
                .is_none_or(|o| !o.contains_key(key))
        {
            return Ok(String::new());
        }
        let outputs = self.outputs.get(&target).ok_or_else(|| {
            ReconcileError::waiting("DependencyNotReady", format!("waiting for {target}"))
        })?;
        outputs.get(key).cloned().ok_or_else(|| {
            ReconcileError::waiting(
                "DependencyNotReady",
                format!("waiting for {target} to report {key}"),
            )
        })
    }
}

/// One field that differs between the manifest and AWS. Values are rendered for people;
/// kinds put `"***"` in place of anything secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

impl Change {
    pub fn new(field: impl Into<String>, from: Option<Value>, to: Option<Value>) -> Self {
        Self {
            field: field.into(),
            from,
            to,
        }
    }
}

/// Compare one field and record a change when it differs. The workhorse of `diff`.
pub fn compare<T: Serialize + PartialEq>(
    changes: &mut Vec<Change>,
    field: &str,
    observed: &T,
    desired: &T,
) {
    if observed != desired {
        changes.push(Change::new(
            field,
            serde_json::to_value(observed).ok(),
            serde_json::to_value(desired).ok(),
        ));
    }
}

/// Whether an existing resource is usable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "message")]
pub enum Readiness {
    Ready,
    /// Still converging on the AWS side (e.g. a runtime in CREATING).
    Progressing(String),
    /// AWS reports a failure (e.g. CREATE_FAILED with its failureReason).
    Failed(String),
}

/// An AWS resource as observed, with whether it carries our owner tag.
#[derive(Debug, Clone)]
pub struct Observed<O> {
    pub resource: O,
    pub owned: bool,
}

/// What every kind shares: the AWS clients and the owner tag value.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub aws: Aws,
    /// Value of the owner tag: the controller instance name.
    pub owner: String,
}

impl Ctx {
    /// Whether a tag list marks the resource as ours.
    pub fn owns<'t>(&self, mut tags: impl Iterator<Item = (&'t str, &'t str)>) -> bool {
        tags.any(|(k, v)| k == OWNER_TAG && v == self.owner)
    }

    pub fn owner_tags(&self) -> Vec<(String, String)> {
        vec![(OWNER_TAG.to_string(), self.owner.clone())]
    }
}

/// The contract of one kind of AWS resource.
#[async_trait]
pub trait Kind: Send + Sync + 'static {
    /// The `kind:` of its manifest documents.
    const KIND: &'static str;
    /// The names of the values [`Kind::outputs`] returns, for `validate` to check
    /// `{ from: Kind/name, output: x }` against.
    const OUTPUTS: &'static [&'static str];
    /// Used when the manifest sets no deletion policy.
    const DEFAULT_DELETION_POLICY: DeletionPolicy = DeletionPolicy::Delete;
    /// Kinds whose resources hold this kind's (a user lives in a user pool): when the
    /// dependency of such a kind does not exist, neither does this resource.
    const CONTAINED_IN: &'static [&'static str] = &[];

    /// The manifest's `spec`, exactly as written.
    type Spec: DeserializeOwned + Serialize + Clone + Debug + Send + Sync;
    /// The spec with references resolved to concrete values.
    type Desired: Debug + Send + Sync;
    /// What observe reads back from AWS.
    type Observed: Debug + Send + Sync;

    /// Build the kind on the shared clients.
    fn new(ctx: Arc<Ctx>) -> Self
    where
        Self: Sized;

    /// The objects this spec names (they must exist in the manifests).
    fn references(spec: &Self::Spec) -> Vec<Reference>;

    /// Offline checks beyond the schema; push one problem per finding.
    fn validate(_name: &str, _spec: &Self::Spec, _problems: &mut Vec<FieldProblem>) {}

    /// Local files the resource is made from (an image's build context): the daemon
    /// watches them and reconciles the object when they change.
    fn sources(_meta: &ObjectMeta, _spec: &Self::Spec) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    /// The AWS resources this object writes whose names are known offline. Two objects
    /// that write the same one would undo each other's changes on every pass.
    fn writes(_name: &str, _spec: &Self::Spec) -> Vec<Writes> {
        Vec::new()
    }

    /// Fill in references from the dependencies' outputs. Pure.
    fn resolve(
        &self,
        meta: &ObjectMeta,
        spec: &Self::Spec,
        deps: &Deps<'_>,
    ) -> Result<Self::Desired>;

    /// Read the resource; `None` when it does not exist. Never writes.
    async fn observe(&self, desired: &Self::Desired) -> Result<Option<Observed<Self::Observed>>>;

    /// Field-by-field differences between desired and observed. Pure.
    fn diff(desired: &Self::Desired, observed: &Self::Observed) -> Vec<Change>;

    /// Whether the observed resource is usable.
    fn readiness(_observed: &Self::Observed) -> Readiness {
        Readiness::Ready
    }

    /// The values dependents may use.
    fn outputs(desired: &Self::Desired, observed: &Self::Observed) -> Outputs;

    /// Reconcile again after this long even if nothing changes (e.g. to renew a token
    /// before it expires). `None`: the regular resync.
    fn requeue_after(
        _desired: &Self::Desired,
        _observed: &Self::Observed,
    ) -> Option<std::time::Duration> {
        None
    }

    /// Create the resource, tagged as ours. Must not duplicate when retried after a lost
    /// response (observe runs first; use client tokens where the API has them).
    async fn create(&self, desired: &Self::Desired) -> Result<()>;

    /// [`Kind::create`], returning the resource when the create's answers describe all of
    /// what observe would read, so that the step need not read it back; `None`: observe.
    async fn create_observed(
        &self,
        desired: &Self::Desired,
    ) -> Result<Option<Observed<Self::Observed>>> {
        self.create(desired).await?;
        Ok(None)
    }

    /// Make the resource match; also (re)applies the owner tag when `observed.owned` is false.
    async fn update(
        &self,
        desired: &Self::Desired,
        observed: &Observed<Self::Observed>,
        changes: &[Change],
    ) -> Result<()>;

    /// Delete the resource. Idempotent: a resource already gone is success.
    async fn delete(&self, desired: &Self::Desired, observed: &Self::Observed) -> Result<()>;
}

/// An AWS resource an object writes, named in its spec (see [`Kind::writes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writes {
    /// Field path of the name, e.g. `spec.secretName` (or `metadata.name`).
    pub path: &'static str,
    /// What it is, e.g. `secret`, `SSM parameter`.
    pub resource: &'static str,
    pub name: String,
}

impl Writes {
    pub fn new(path: &'static str, resource: &'static str, name: impl Into<String>) -> Self {
        Self {
            path,
            resource,
            name: name.into(),
        }
    }
}

/// Whether a step may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Observe and diff only (`diff`, suspended objects).
    Plan,
    /// Observe, diff, and write what differs.
    Apply,
}

/// What a step did (or, in plan mode, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
}

/// The result of one reconcile step of one object.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub action: Action,
    pub changes: Vec<Change>,
    pub readiness: Readiness,
    pub outputs: Outputs,
    /// The kind asks to be reconciled again after this long.
    #[serde(skip)]
    pub requeue_after: Option<std::time::Duration>,
}

/// What a teardown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Teardown {
    Deleted,
    Retained,
    Absent,
    /// Exists but is not ours: never deleted.
    NotOwned,
}

/// The offline face of a kind: what the manifest loader needs, no AWS.
pub trait Schema: Send + Sync {
    fn kind(&self) -> &'static str;
    fn default_deletion_policy(&self) -> DeletionPolicy;
    /// See [`Kind::CONTAINED_IN`].
    fn contained_in(&self) -> &'static [&'static str];
    /// See [`Kind::OUTPUTS`].
    fn outputs(&self) -> &'static [&'static str];
    /// Deserialize and check a spec: the normalised spec (when it could be read at all)
    /// and every problem found. The spec is usable only when there are no problems.
    fn parse(&self, name: &str, spec: &Node) -> (Option<Value>, Vec<FieldProblem>);
    fn references(&self, spec: &Value) -> Vec<Reference>;
    fn writes(&self, name: &str, spec: &Value) -> Vec<Writes>;
    /// See [`Kind::sources`].
    fn sources(&self, meta: &ObjectMeta, spec: &Value) -> Vec<std::path::PathBuf>;
}

/// The schema of kind `K`, usable without AWS clients.
pub struct SchemaOf<K>(std::marker::PhantomData<fn() -> K>);

impl<K: Kind> Schema for SchemaOf<K> {
    fn kind(&self) -> &'static str {
        K::KIND
    }

    fn default_deletion_policy(&self) -> DeletionPolicy {
        K::DEFAULT_DELETION_POLICY
    }

    fn contained_in(&self) -> &'static [&'static str] {
        K::CONTAINED_IN
    }

    fn outputs(&self) -> &'static [&'static str] {
        K::OUTPUTS
    }

    fn parse(&self, name: &str, spec: &Node) -> (Option<Value>, Vec<FieldProblem>) {
        let (typed, mut problems) = from_node_lenient::<K::Spec>(spec, "spec");
        let Some(typed) = typed else {
            return (None, problems);
        };
        K::validate(name, &typed, &mut problems);
        match serde_json::to_value(&typed) {
            Ok(v) => (Some(v), problems),
            Err(e) => {
                problems.push(FieldProblem::new("spec", e.to_string()));
                (None, problems)
            }
        }
    }

    fn references(&self, spec: &Value) -> Vec<Reference> {
        typed::<K::Spec>(K::KIND, spec)
            .map(|s| K::references(&s))
            .unwrap_or_default()
    }

    fn writes(&self, name: &str, spec: &Value) -> Vec<Writes> {
        typed::<K::Spec>(K::KIND, spec)
            .map(|s| K::writes(name, &s))
            .unwrap_or_default()
    }

    fn sources(&self, meta: &ObjectMeta, spec: &Value) -> Vec<std::path::PathBuf> {
        typed::<K::Spec>(K::KIND, spec)
            .map(|s| K::sources(meta, &s))
            .unwrap_or_default()
    }
}

/// The live face of a kind, as the engine drives it.
#[async_trait]
pub trait DynKind: Send + Sync {
    /// One reconcile step: observe, diff, and in apply mode create or update.
    async fn step(
        &self,
        meta: &ObjectMeta,
        spec: &Value,
        deps: &Deps<'_>,
        mode: Mode,
    ) -> Result<StepReport>;
    /// Delete per policy. `plan` only reports what would happen.
    async fn teardown(
        &self,
        meta: &ObjectMeta,
        spec: &Value,
        deps: &Deps<'_>,
        policy: DeletionPolicy,
        plan: bool,
    ) -> Result<Teardown>;
}

/// Adapts a typed [`Kind`] to [`DynKind`].
pub struct Erased<K>(pub K);

fn typed<S: DeserializeOwned>(kind: &str, spec: &Value) -> Result<S> {
    serde_json::from_value(spec.clone()).map_err(|e| {
        ReconcileError::terminal("InvalidSpec", format!("{kind} spec does not parse: {e}"))
    })
}

impl<K: Kind> Erased<K> {
    async fn observe_checked(
        &self,
        meta: &ObjectMeta,
        desired: &K::Desired,
    ) -> Result<Option<Observed<K::Observed>>> {
        let observed = self.0.observe(desired).await?;
        if let Some(o) = &observed
            && !o.owned
            && !meta.adopt()
        {
            return Err(ReconcileError::terminal(
                "NotOwned",
                format!(
                    "{} {} exists but was not created by agentcore-controller (no {OWNER_TAG} tag); \
                     rename it in the manifest, or add the annotation {ANNOTATION_ADOPT}: \"true\" to manage it",
                    K::KIND,
                    meta.name
                ),
            ));
        }
        Ok(observed)
    }
}

#[async_trait]
impl<K: Kind> DynKind for Erased<K> {
    async fn step(
        &self,
        meta: &ObjectMeta,
        spec: &Value,
        deps: &Deps<'_>,
        mode: Mode,
    ) -> Result<StepReport> {
        let spec: K::Spec = typed(K::KIND, spec)?;
        let desired = self.0.resolve(meta, &spec, deps)?;
        let Some(observed) = self.observe_checked(meta, &desired).await? else {
            if mode == Mode::Plan {
                return Ok(StepReport {
                    action: Action::Create,
                    changes: Vec::new(),
                    readiness: Readiness::Progressing("does not exist".into()),
                    outputs: Outputs::new(),
                    requeue_after: None,
                });
            }
            let created = match self.0.create_observed(&desired).await? {
                Some(o) => Some(o),
                None => self.0.observe(&desired).await?,
            };
            return Ok(match created {
                Some(o) => StepReport {
                    action: Action::Create,
                    changes: Vec::new(),
                    readiness: K::readiness(&o.resource),
                    outputs: K::outputs(&desired, &o.resource),
                    requeue_after: K::requeue_after(&desired, &o.resource),
                },
                None => StepReport {
                    action: Action::Create,
                    changes: Vec::new(),
                    readiness: Readiness::Progressing("created; waiting for it to appear".into()),
                    outputs: Outputs::new(),
                    requeue_after: None,
                },
            });
        };
        let mut changes = K::diff(&desired, &observed.resource);
        if !observed.owned {
            changes.push(Change::new(
                format!("tags.{OWNER_TAG}"),
                None,
                Some(Value::String("(adopted)".into())),
            ));
        }
        let readiness = K::readiness(&observed.resource);
        let unchanged = StepReport {
            action: Action::Unchanged,
            changes: Vec::new(),
            readiness: readiness.clone(),
            outputs: K::outputs(&desired, &observed.resource),
            requeue_after: K::requeue_after(&desired, &observed.resource),
        };
        if changes.is_empty() {
            if let Readiness::Failed(msg) = &readiness {
                return Err(ReconcileError::terminal("ResourceFailed", msg.clone()));
            }
            return Ok(unchanged);
        }
        if mode == Mode::Plan {
            return Ok(StepReport {
                action: Action::Update,
                changes,
                ..unchanged
            });
        }
        if let Readiness::Progressing(msg) = &readiness {
            // Never stack an update on one AWS is still applying; come back later.
            return Ok(StepReport {
                action: Action::Unchanged,
                changes,
                readiness: Readiness::Progressing(msg.clone()),
                outputs: unchanged.outputs,
                requeue_after: None,
            });
        }
        self.0.update(&desired, &observed, &changes).await?;
        let after = self.0.observe(&desired).await?;
        Ok(match after {
            Some(o) => StepReport {
                action: Action::Update,
                changes,
                readiness: K::readiness(&o.resource),
                outputs: K::outputs(&desired, &o.resource),
                requeue_after: K::requeue_after(&desired, &o.resource),
            },
            None => StepReport {
                action: Action::Update,
                changes,
                readiness: Readiness::Progressing("updated; waiting for it to reappear".into()),
                outputs: Outputs::new(),
                requeue_after: None,
            },
        })
    }

    async fn teardown(
        &self,
        meta: &ObjectMeta,
        spec: &Value,
        deps: &Deps<'_>,
        policy: DeletionPolicy,
        plan: bool,
    ) -> Result<Teardown> {
        let spec: K::Spec = typed(K::KIND, spec)?;
        let desired = self.0.resolve(meta, &spec, deps)?;
        let Some(observed) = self.0.observe(&desired).await? else {
            return Ok(Teardown::Absent);
        };
        if !observed.owned {
            return Ok(Teardown::NotOwned);
        }
        if policy == DeletionPolicy::Retain {
            return Ok(Teardown::Retained);
        }
        if !plan {
            self.0.delete(&desired, &observed.resource).await?;
        }
        Ok(Teardown::Deleted)
    }
}

/// All kinds, by their `kind:` name: schemas always, live kinds when AWS clients exist.
#[derive(Clone)]
pub struct Registry {
    ctx: Option<Arc<Ctx>>,
    schemas: BTreeMap<&'static str, Arc<dyn Schema>>,
    live: BTreeMap<&'static str, Arc<dyn DynKind>>,
}

impl Registry {
    /// Schemas only: enough to load and validate manifests offline.
    pub fn offline() -> Self {
        Self::with(None)
    }

    /// Every kind, wired to the given AWS clients.
    pub fn live(ctx: Arc<Ctx>) -> Self {
        Self::with(Some(ctx))
    }

    fn with(ctx: Option<Arc<Ctx>>) -> Self {
        let mut r = Self {
            ctx,
            schemas: BTreeMap::new(),
            live: BTreeMap::new(),
        };
        // Adding a kind: one file in this folder, one line here.
        r.register::<user_pool::UserPool>();
        r.register::<user_pool_client::UserPoolClient>();
        r.register::<user::User>();
        r.register::<role::Role>();
        r.register::<repository::Repository>();
        r.register::<image::Image>();
        r.register::<agent_runtime::AgentRuntime>();
        r.register::<secret::Secret>();
        r.register::<token::Token>();
        r.register::<parameter::Parameter>();
        r
    }

    fn register<K: Kind>(&mut self) {
        self.schemas
            .insert(K::KIND, Arc::new(SchemaOf::<K>(std::marker::PhantomData)));
        if let Some(ctx) = &self.ctx {
            self.live
                .insert(K::KIND, Arc::new(Erased(K::new(ctx.clone()))));
        }
    }

    pub fn schema(&self, kind: &str) -> Option<&Arc<dyn Schema>> {
        self.schemas.get(kind)
    }

    /// The live kind; `None` for an unknown kind or an offline registry.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn DynKind>> {
        self.live.get(kind)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.schemas.keys().copied().collect()
    }
}

/// Where a value comes from: written in the manifest, or another object's output.
///
/// ```yaml
/// value: { from: AgentRuntime/mcp_server_ac, output: arn }
/// value: { value: "literal text" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `Kind/name` of the object whose output is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Name of the output, e.g. `arn`, `poolId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl ValueSource {
    pub fn reference(&self, path: &str) -> Option<Reference> {
        let target = parse_kind_name(self.from.as_deref()?)?;
        Some(Reference {
            path: format!("{path}.from"),
            target,
            output: self.output.clone(),
        })
    }

    pub fn validate(&self, path: &str, problems: &mut Vec<FieldProblem>) {
        match (&self.value, &self.from, &self.output) {
            (Some(_), None, None) => {}
            (None, Some(from), Some(_)) => {
                if parse_kind_name(from).is_none() {
                    problems.push(FieldProblem::new(
                        format!("{path}.from"),
                        format!("`{from}` is not a reference; write Kind/name, e.g. AgentRuntime/mcp_server_ac"),
                    ));
                }
            }
            (None, Some(_), None) => problems.push(FieldProblem::new(
                path,
                "`from` needs `output`: the name of the output to use (e.g. arn, poolId)",
            )),
            _ => problems.push(FieldProblem::new(
                path,
                "set either `value`, or `from` (Kind/name) with `output`",
            )),
        }
    }

    pub fn resolve(&self, deps: &Deps<'_>) -> Result<String> {
        if let Some(v) = &self.value {
            return Ok(v.clone());
        }
        let target = self
            .from
            .as_deref()
            .and_then(parse_kind_name)
            .ok_or_else(|| {
                ReconcileError::terminal("InvalidSpec", "value source has no reference")
            })?;
        let output = self.output.as_deref().unwrap_or_default();
        deps.get(&target.kind, &target.name, output)
    }
}

/// Test helper: `outputs` has exactly the names kind `K` declares in [`Kind::OUTPUTS`].
#[cfg(test)]
pub(crate) fn assert_declared_outputs<K: Kind>(outputs: &Outputs) {
    let mut got: Vec<&str> = outputs.keys().map(String::as_str).collect();
    let mut declared = K::OUTPUTS.to_vec();
    got.sort_unstable();
    declared.sort_unstable();
    assert_eq!(got, declared, "{}: outputs() against OUTPUTS", K::KIND);
}
