//! The offline face of a kind: what the manifest loader needs to read and check a spec.

use serde_json::Value;

use super::de::FieldProblem;
use super::object::{DeletionPolicy, ObjectMeta, Reference};
use super::yaml::Node;

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
