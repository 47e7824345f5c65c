//! What the controller holds about one object. Its status is changed only through
//! [`Tracked::status_mut`], which is how a publication knows what to copy: an object
//! whose status nobody touched since the last snapshot is shared with it, not compared
//! or copied again.

use std::sync::Arc;

use super::super::cause;
use super::super::inventory::InventoryEntry;
use super::super::status::ObjectStatus;
use super::super::tally::Tally;
use crate::manifest::load::Object;

pub(super) struct Tracked {
    pub(super) object: Object,
    /// Private: see [`Tracked::status_mut`].
    status: ObjectStatus,
    /// Inventory entry as last written (None: not yet recorded).
    pub(super) recorded: Option<InventoryEntry>,
    pub(super) retry_streak: u32,
    pub(super) poll_streak: u32,
    /// What the last converged reconcile ran with: tells why a later one writes.
    pub(super) converged: Option<cause::Inputs>,
    /// Terminal failure at this content hash: wait for the manifest to change.
    pub(super) terminal_hash: Option<String>,
    /// Due but held back by a dependency (re-queued when it becomes Ready).
    pub(super) parked: bool,
    pub(super) prune: bool,
    /// A reconcile of it has finished since start (whatever its outcome), or it was held
    /// back by a dependency: it has had its first pass.
    pub(super) first_pass: bool,
    /// What the reconciles of this run did, for a one-shot run's report.
    pub(super) tally: Tally,
    /// The status as last published; `None` once it may have changed since.
    published: Option<Arc<ObjectStatus>>,
}

impl Tracked {
    pub(super) fn new(
        object: Object,
        status: ObjectStatus,
        recorded: Option<InventoryEntry>,
        converged: Option<cause::Inputs>,
    ) -> Self {
        Self {
            object,
            status,
            recorded,
            retry_streak: 0,
            poll_streak: 0,
            converged,
            terminal_hash: None,
            parked: false,
            prune: false,
            first_pass: false,
            tally: Tally::default(),
            published: None,
        }
    }

    pub(super) fn status(&self) -> &ObjectStatus {
        &self.status
    }

    /// The status, to change: the next snapshot copies it again.
    pub(super) fn status_mut(&mut self) -> &mut ObjectStatus {
        self.published = None;
        &mut self.status
    }

    /// The status for a snapshot: the one last published when it has not been touched
    /// since, otherwise a new copy.
    pub(super) fn publish(&mut self) -> Arc<ObjectStatus> {
        match &self.published {
            Some(p) => p.clone(),
            None => {
                let fresh = Arc::new(self.status.clone());
                self.published = Some(fresh.clone());
                fresh
            }
        }
    }

    /// Where it ended: its status and what was done to it (a one-shot run's report).
    pub(super) fn finish(self) -> (ObjectStatus, Tally) {
        (self.status, self.tally)
    }
}
