//! The engine: drives reconciles of a set of objects in dependency order. It knows the
//! kinds only through [`DynKind`]; nothing here knows about AWS, files or HTTP.

pub mod backoff;
pub mod cause;
pub mod containment;
pub mod controller;
pub mod converge;
pub mod events;
pub mod inventory;
pub mod lanes;
pub mod policy;
pub mod prune;
pub mod reload;
pub mod scheduler;
pub mod status;
pub mod tally;
pub mod teardown;

pub use converge::{ConvergeOptions, ObjectReport, RunReport, State, converge};
pub use teardown::{TeardownReport, teardown};

#[cfg(test)]
mod tests;
