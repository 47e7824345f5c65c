//! Tearing a manifest set down: observe everything (to learn the IDs dependents need),
//! then delete in reverse dependency order, honouring deletion policies.
//!
//! Resources are found by what names them, not by the values they were configured with:
//! a runtime whose image is gone is still found by its name and deleted. Only a resource
//! that lives inside another (a user in its pool, an image in its repository) is taken to
//! be gone with it. Two rules keep it from orphaning anything: an object whose dependency
//! could not be read is left alone ("not found" would be a guess), and an object is not
//! deleted while a dependent of it failed to go. A container is kept while something
//! retained lives in it (see [`super::containment`]).

use std::collections::BTreeMap;

use serde::Serialize;
use tokio::time::Instant;

use super::containment;
use crate::error::{Reason, Severity};
use crate::kinds::{DeletionPolicy, Deps, Mode, ObjectKey, Outputs, Registry, Teardown};
use crate::manifest::ManifestSet;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TeardownEntry {
    pub kind: String,
    pub name: String,
    /// What happened; `None` when it failed.
    pub result: Option<Teardown>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeardownReport {
    /// In the order handled: dependents first.
    pub objects: Vec<TeardownEntry>,
    pub seconds: f64,
}

impl TeardownReport {
    pub fn any_failed(&self) -> bool {
        self.objects.iter().any(|o| o.result.is_none())
    }
}

/// Delete (or, with `dry_run`, report) every object of `set`.
pub async fn teardown(set: &ManifestSet, registry: &Registry, dry_run: bool) -> TeardownReport {
    let start = Instant::now();
    // Learn the outputs of everything that exists, dependencies first.
    let mut outputs: BTreeMap<ObjectKey, Outputs> = BTreeMap::new();
    // Objects whose state is unknown: reading them failed, or they wait on one that did.
    let mut unreadable: BTreeMap<ObjectKey, String> = BTreeMap::new();
    for key in &set.graph.order {
        let (Some(object), Some(kind)) = (set.get(key), registry.get(&key.kind)) else {
            continue;
        };
        match kind
            .step(&object.meta, &object.spec, &Deps::new(&outputs), Mode::Plan)
            .await
        {
            Ok(step) if !step.outputs.is_empty() => {
                outputs.insert(key.clone(), step.outputs);
            }
            Ok(_) => {}
            // Not ours: its dependents are found (or not) without it.
            Err(e) if e.reason == Reason::NotOwned => {}
            Err(e) if e.severity == Severity::Waiting => {
                if let Some(dep) = deps_of(set, key).find(|d| unreadable.contains_key(*d)) {
                    let why = format!("it depends on {dep}, which could not be read");
                    unreadable.insert(key.clone(), why);
                }
            }
            Err(e) => {
                unreadable.insert(key.clone(), e.to_string());
            }
        }
    }
    let mut objects = Vec::new();
    let mut failed: Vec<ObjectKey> = Vec::new();
    for key in set.graph.order.iter().rev() {
        let (Some(object), Some(kind)) = (set.get(key), registry.get(&key.kind)) else {
            continue;
        };
        let blocked = deps_of(set, key)
            .find_map(|d| unreadable.get(d).map(|why| (d, why)))
            .map(|(d, why)| {
                format!("left alone: cannot tell whether it exists, because {d} could not be read ({why})")
            })
            .or_else(|| {
                let dependents = set.graph.dependents.get(key)?;
                let d = failed.iter().find(|f| dependents.contains(*f))?;
                Some(format!("kept: its dependent {d} was not deleted"))
            });
        let container_gone = registry.schema(&key.kind).and_then(|schema| {
            deps_of(set, key)
                .find(|d| !outputs.contains_key(*d) && schema.contained_in().contains(&&*d.kind))
        });
        if blocked.is_none()
            && let Some(container) = container_gone
        {
            objects.push(TeardownEntry {
                kind: key.kind.to_string(),
                name: key.name.to_string(),
                result: Some(Teardown::Absent),
                message: format!("{container}, which holds it, does not exist"),
            });
            continue;
        }
        if let Some(message) = blocked {
            failed.push(key.clone());
            objects.push(TeardownEntry {
                kind: key.kind.to_string(),
                name: key.name.to_string(),
                result: None,
                message,
            });
            continue;
        }
        let kept: Vec<ObjectKey> = objects
            .iter()
            .filter(|o| o.result.is_some_and(containment::stays))
            .map(|o| ObjectKey::new(o.kind.as_str(), o.name.as_str()))
            .filter(|k| contained_in(set, registry, k, key))
            .collect();
        if object.deletion_policy == DeletionPolicy::Delete
            && let Some(message) = containment::kept_by(&kept)
        {
            objects.push(TeardownEntry {
                kind: key.kind.to_string(),
                name: key.name.to_string(),
                result: Some(Teardown::Retained),
                message,
            });
            continue;
        }
        let result = kind
            .teardown(
                &object.meta,
                &object.spec,
                &Deps::for_teardown(&outputs),
                object.deletion_policy,
                dry_run,
            )
            .await;
        let (result, message) = match result {
            Ok(Teardown::Retained) => (
                Some(Teardown::Retained),
                "deletion policy Retain: left in place".to_string(),
            ),
            Ok(Teardown::NotOwned) => (
                Some(Teardown::NotOwned),
                "not created by agentcore-controller: left in place".to_string(),
            ),
            Ok(t) => (Some(t), String::new()),
            // What it holds keeps it (a repository with images): it stays, and says why.
            Err(e) if e.stays => (Some(Teardown::Retained), e.message),
            Err(e) => {
                failed.push(key.clone());
                (None, e.to_string())
            }
        };
        objects.push(TeardownEntry {
            kind: key.kind.to_string(),
            name: key.name.to_string(),
            result,
            message,
        });
    }
    TeardownReport {
        objects,
        seconds: start.elapsed().as_secs_f64(),
    }
}

fn deps_of<'a>(set: &'a ManifestSet, key: &ObjectKey) -> impl Iterator<Item = &'a ObjectKey> {
    set.graph.deps_of(key).iter()
}

/// Whether `inner` lives inside `container` (refers to it, and its kind lives in that kind).
fn contained_in(
    set: &ManifestSet,
    registry: &Registry,
    inner: &ObjectKey,
    container: &ObjectKey,
) -> bool {
    registry
        .schema(&inner.kind)
        .is_some_and(|s| s.contained_in().contains(&&*container.kind))
        && deps_of(set, inner).any(|d| d == container)
}
