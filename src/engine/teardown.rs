//! Tearing a manifest set down: observe everything (to learn the IDs dependents need),
//! then delete in reverse dependency order, honouring deletion policies.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio::time::Instant;

use crate::kinds::{Deps, Mode, ObjectKey, Outputs, Registry, Teardown};
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
    for key in &set.graph.order {
        let (Some(object), Some(kind)) = (set.get(key), registry.get(&key.kind)) else {
            continue;
        };
        if let Ok(step) = kind
            .step(&object.meta, &object.spec, &Deps::new(&outputs), Mode::Plan)
            .await
            && !step.outputs.is_empty()
        {
            outputs.insert(key.clone(), step.outputs);
        }
    }
    let mut objects = Vec::new();
    for key in set.graph.order.iter().rev() {
        let (Some(object), Some(kind)) = (set.get(key), registry.get(&key.kind)) else {
            continue;
        };
        let result = kind
            .teardown(
                &object.meta,
                &object.spec,
                &Deps::new(&outputs),
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
            Err(e) => (None, e.to_string()),
        };
        objects.push(TeardownEntry {
            kind: key.kind.clone(),
            name: key.name.clone(),
            result,
            message,
        });
    }
    TeardownReport {
        objects,
        seconds: start.elapsed().as_secs_f64(),
    }
}
