//! The kinds of AWS resources the controller manages, one file per kind, and the
//! contract every kind follows (after Crossplane's ExternalClient):
//! observe (reads only) → diff (pure) → create / update / delete (idempotent).
//!
//! A kind knows its AWS API and nothing about files, queues or scheduling. The generic
//! [`DynKind`] wrapper turns a typed [`Kind`] into the one-step reconcile the engine drives.

pub mod agent_runtime;
mod contract;
mod erased;
#[cfg(test)]
pub(crate) mod fake;
pub mod image;
pub mod names;
pub mod parameter;
pub mod policy;
mod registry;
pub mod repository;
pub mod resource_server;
pub mod role;
pub mod runtime_endpoint;
pub mod secret;
mod secrets_manager;
pub mod token;
pub mod user;
pub mod user_pool;
pub mod user_pool_client;
pub mod user_pool_domain;

#[cfg(test)]
pub(crate) use contract::assert_declared_outputs;
pub use contract::{Change, Ctx, Kind, Observed, Readiness, changed, compare};
#[cfg(test)]
pub(crate) use erased::problem_paths;
pub use erased::{Action, DynKind, Erased, Mode, SchemaOf, StepReport, Teardown};
pub use registry::Registry;

pub use crate::model::object::{
    ANNOTATION_ADOPT, ANNOTATION_DELETION_POLICY, ANNOTATION_PREFIX, ANNOTATION_RESYNC,
    ANNOTATION_SUSPEND, API_VERSION, DeletionPolicy, KNOWN_ANNOTATIONS, OWNER_TAG, ObjectKey,
    ObjectMeta, Outputs, Reference, parse_kind_name,
};
pub use crate::model::published::{MetricSource, MetricSpec};
pub use crate::model::schema::{Schema, Writes};
pub use crate::model::value::{Deps, ValueSource};
