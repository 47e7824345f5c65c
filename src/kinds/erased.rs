//! The erased face of a kind: [`Erased`] turns a typed [`Kind`] into the one-step
//! reconcile ([`DynKind`]) the engine drives, and [`SchemaOf`] into the [`Schema`] the
//! manifest loader reads specs with.

use crate::model::published::MetricSpec;
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::contract::{Change, Kind, Observed, Readiness};
use crate::error::{Reason, ReconcileError, Result};
use crate::model::de::{FieldProblem, from_node_lenient};
use crate::model::object::{
    ANNOTATION_ADOPT, DeletionPolicy, OWNER_TAG, ObjectMeta, Outputs, Reference,
};
use crate::model::permissions::{Grant, Scope};
use crate::model::schema::{Schema, Writes};
use crate::model::value::Deps;
use crate::model::yaml::Node;

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
    /// The values of the gauges the kind publishes (see [`Kind::METRICS`]).
    #[serde(skip)]
    pub gauges: Vec<(&'static str, f64)>,
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

/// The schema of kind `K`, usable without AWS clients.
pub struct SchemaOf<K>(pub(super) std::marker::PhantomData<fn() -> K>);

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

    fn metrics(&self) -> &'static [MetricSpec] {
        K::METRICS
    }

    fn lane(&self) -> &'static str {
        K::LANE
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

    fn aws_name(&self, meta: &ObjectMeta, spec: &Value) -> Option<String> {
        typed::<K::Spec>(K::KIND, spec)
            .ok()
            .and_then(|s| K::aws_name(meta, &s))
    }

    fn permissions(&self, meta: &ObjectMeta, spec: &Value, scope: &Scope) -> Vec<Grant> {
        typed::<K::Spec>(K::KIND, spec)
            .map(|s| K::permissions(meta, &s, scope))
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
        ReconcileError::terminal(
            Reason::InvalidSpec,
            format!("{kind} spec does not parse: {e}"),
        )
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
                Reason::NotOwned,
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
                    gauges: Vec::new(),
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
                    gauges: K::gauges(&desired, &o.resource),
                },
                None => StepReport {
                    action: Action::Create,
                    changes: Vec::new(),
                    readiness: Readiness::Progressing("created; waiting for it to appear".into()),
                    outputs: Outputs::new(),
                    requeue_after: None,
                    gauges: Vec::new(),
                },
            });
        };
        let mut changes = K::diff(&desired, &observed.resource);
        if !observed.owned {
            changes.push(Change::adoption());
        }
        let readiness = K::readiness(&observed.resource);
        let unchanged = StepReport {
            action: Action::Unchanged,
            changes: Vec::new(),
            readiness: readiness.clone(),
            outputs: K::outputs(&desired, &observed.resource),
            requeue_after: K::requeue_after(&desired, &observed.resource),
            gauges: K::gauges(&desired, &observed.resource),
        };
        if changes.is_empty() {
            if let Readiness::Failed(msg) = &readiness {
                return Err(ReconcileError::terminal(
                    Reason::ResourceFailed,
                    msg.clone(),
                ));
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
                gauges: unchanged.gauges,
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
                gauges: K::gauges(&desired, &o.resource),
            },
            None => StepReport {
                action: Action::Update,
                changes,
                readiness: Readiness::Progressing("updated; waiting for it to reappear".into()),
                outputs: Outputs::new(),
                requeue_after: None,
                gauges: Vec::new(),
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
        // Whether it is still ours to delete is read now, not recalled: the owner tag may
        // have been taken off since the listing that serves resyncs.
        let Some(observed) = crate::fresh::reading(self.0.observe(&desired)).await? else {
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

/// Test helper: the field paths of the problems kind `K`'s schema finds in the spec
/// `yaml` of an object named `name`.
#[cfg(test)]
pub(crate) fn problem_paths<K: Kind>(name: &str, yaml: &str) -> Vec<String> {
    use crate::model::schema::Schema;
    let docs = crate::model::yaml::parse_documents(yaml).expect("yaml");
    SchemaOf::<K>(std::marker::PhantomData)
        .parse(name, &docs[0])
        .1
        .into_iter()
        .map(|p| p.path)
        .collect()
}
