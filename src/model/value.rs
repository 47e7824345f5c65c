//! Values taken from other objects: the outputs of an object's dependencies and the value
//! sources that name them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::de::FieldProblem;
use super::object::{ObjectKey, Outputs, Reference, parse_kind_name};
use crate::error::{Reason, ReconcileError, Result};

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
    /// which the teardown checks first: see [`Schema::contained_in`](super::schema::Schema::contained_in)), not by the values it
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
            ReconcileError::waiting(Reason::DependencyNotReady, format!("waiting for {target}"))
        })?;
        outputs.get(key).cloned().ok_or_else(|| {
            ReconcileError::waiting(
                Reason::DependencyNotReady,
                format!("waiting for {target} to report {key}"),
            )
        })
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
                ReconcileError::terminal(Reason::InvalidSpec, "value source has no reference")
            })?;
        let output = self.output.as_deref().unwrap_or_default();
        deps.get(&target.kind, &target.name, output)
    }
}
