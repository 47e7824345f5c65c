//! The contract of one kind (after Crossplane's ExternalClient): observe (reads only) →
//! diff (pure) → create / update / delete (idempotent), and the types it speaks in.

use crate::model::published::MetricSpec;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::Aws;
use crate::error::Result;
use crate::model::de::FieldProblem;
use crate::model::object::{DeletionPolicy, OWNER_TAG, ObjectMeta, Outputs, Reference};
use crate::model::permissions::{Grant, Scope};
use crate::model::schema::Writes;
use crate::model::value::Deps;

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

    /// The change adopting a resource makes: our owner tag on it.
    pub fn adoption() -> Self {
        Self::new(
            format!("tags.{OWNER_TAG}"),
            None,
            Some(Value::String("(adopted)".into())),
        )
    }

    /// Whether this is the change adopting a resource makes.
    pub fn is_adoption(&self) -> bool {
        self.field.strip_prefix("tags.") == Some(OWNER_TAG)
    }

    /// The path of this change below `parent` (`email` for `spec.attributes.email` below
    /// `spec.attributes`); `None` when it is not below it.
    pub fn below(&self, parent: &str) -> Option<&str> {
        self.field.strip_prefix(parent)?.strip_prefix('.')
    }
}

/// Whether `changes` name `field` itself or a field below it.
pub fn changed(changes: &[Change], field: &str) -> bool {
    changes
        .iter()
        .any(|c| c.field == field || c.below(field).is_some())
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
    /// The lane its reconciles run in: the AWS service it mostly calls (`iam`, `ecr`,
    /// ...). Opaque to the engine, which gives every lane its own slots, so that work
    /// waiting on one service's rate limit never holds up another's.
    const LANE: &'static str = "default";
    /// The names of the values [`Kind::outputs`] returns, for `validate` to check
    /// `{ from: Kind/name, output: x }` against.
    const OUTPUTS: &'static [&'static str];
    /// Used when the manifest sets no deletion policy.
    const DEFAULT_DELETION_POLICY: DeletionPolicy = DeletionPolicy::Delete;
    /// Kinds whose resources hold this kind's (a user lives in a user pool): when the
    /// dependency of such a kind does not exist, neither does this resource.
    const CONTAINED_IN: &'static [&'static str] = &[];
    /// Metrics published about each object of this kind (see [`Kind::gauges`]).
    const METRICS: &'static [MetricSpec] = &[];

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

    /// The name the AWS resource gets, when the manifest alone decides it (for the IAM
    /// policy of the objects that refer to this one).
    fn aws_name(_meta: &ObjectMeta, _spec: &Self::Spec) -> Option<String> {
        None
    }

    /// What IAM must allow the controller for this object: every action its observe,
    /// create, update and delete call, on the resources they call it on.
    fn permissions(meta: &ObjectMeta, spec: &Self::Spec, scope: &Scope) -> Vec<Grant>;

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

    /// The values of the gauges this kind declares in [`Kind::METRICS`], by name.
    fn gauges(_desired: &Self::Desired, _observed: &Self::Observed) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

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

    /// Make the resource match by writing what `changes` name: the list [`Kind::diff`]
    /// produced, plus [`Change::adoption`] when the resource is not ours yet (the owner tag
    /// is then (re)applied). Where the API only replaces the whole resource, one write
    /// serves every change.
    async fn update(
        &self,
        desired: &Self::Desired,
        observed: &Observed<Self::Observed>,
        changes: &[Change],
    ) -> Result<()>;

    /// Delete the resource. Idempotent: a resource already gone is success.
    async fn delete(&self, desired: &Self::Desired, observed: &Self::Observed) -> Result<()>;
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
