//! The offline face of a kind: what the manifest loader needs to read and check a spec.

use super::published::MetricSpec;
use serde_json::Value;

use super::de::FieldProblem;
use super::object::{DeletionPolicy, ObjectMeta, Reference};
use super::permissions::{Grant, Scope};
use super::yaml::Node;

/// An AWS resource an object writes, named in its spec (see [`Schema::writes`]).
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

/// The offline face of a kind: what the manifest loader needs, no AWS.
pub trait Schema: Send + Sync {
    fn kind(&self) -> &'static str;
    fn default_deletion_policy(&self) -> DeletionPolicy;
    /// Kinds whose resources hold this kind's (a user lives in a user pool): when the
    /// dependency of such a kind does not exist, neither does this resource.
    fn contained_in(&self) -> &'static [&'static str];
    /// The names of the values the kind exposes to dependents, for `validate` to check
    /// `{ from: Kind/name, output: x }` against.
    fn outputs(&self) -> &'static [&'static str];
    /// See `Kind::METRICS` in `kinds`.
    fn metrics(&self) -> &'static [MetricSpec];
    /// See `Kind::LANE` in `kinds`.
    fn lane(&self) -> &'static str;
    /// Deserialize and check a spec: the normalised spec (when it could be read at all)
    /// and every problem found. The spec is usable only when there are no problems.
    fn parse(&self, name: &str, spec: &Node) -> (Option<Value>, Vec<FieldProblem>);
    fn references(&self, spec: &Value) -> Vec<Reference>;
    /// The AWS resources this object writes whose names are known offline. Two objects
    /// that write the same one would undo each other's changes on every pass.
    fn writes(&self, name: &str, spec: &Value) -> Vec<Writes>;
    /// Local files the resource is made from (an image's build context).
    fn sources(&self, meta: &ObjectMeta, spec: &Value) -> Vec<std::path::PathBuf>;
    /// The name the AWS resource gets, when the manifest alone decides it.
    fn aws_name(&self, meta: &ObjectMeta, spec: &Value) -> Option<String>;
    /// What IAM must allow the controller for this object.
    fn permissions(&self, meta: &ObjectMeta, spec: &Value, scope: &Scope) -> Vec<Grant>;
}

/// The schemas of every kind, by `kind:` name: what the manifest loader reads with. The
/// kinds' registry implements it; the loader knows nothing else of the kinds.
pub trait Schemas {
    fn schema(&self, kind: &str) -> Option<&dyn Schema>;
    /// Every kind name, sorted (for "one of: …" messages).
    fn names(&self) -> Vec<&'static str>;
}
