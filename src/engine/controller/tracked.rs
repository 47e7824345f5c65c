//! What the controller holds about one object. Its status is shared with the `/status`
//! snapshots and changed only through [`Tracked::status_mut`], which copies it first when
//! a snapshot still holds it (copy on write): an object whose status nobody touched since
//! the last snapshot is shared with the next one, not compared or copied again, and only
//! the statuses changed since a snapshot exist twice.

use std::sync::Arc;

use super::super::cause;
use super::super::inventory::EntryDigest;
use super::super::status::ObjectStatus;
use super::super::tally::Tally;
use crate::manifest::load::Object;

pub(super) struct Tracked {
    pub(super) object: Arc<Object>,
    /// Private: see [`Tracked::status_mut`].
    status: Arc<ObjectStatus>,
    /// The inventory entry as last written (None: not yet recorded).
    pub(super) recorded: Option<EntryDigest>,
    pub(super) retry_streak: u32,
    pub(super) poll_streak: u32,
    /// What the last converged reconcile ran with: tells why a later one writes.
    pub(super) converged: Option<cause::Inputs>,
    /// Terminal failure at this content hash: wait for the manifest to change.
    pub(super) terminal_hash: Option<String>,
    pub(super) prune: bool,
    /// A reconcile of it has finished since start (whatever its outcome), or it was held
    /// back by a dependency: it has had its first pass.
    pub(super) first_pass: bool,
    /// What the reconciles of this run did, for a one-shot run's report.
    pub(super) tally: Tally,
    /// The reason of the failure last told (see [`crate::engine::events`]); None: none
    /// told since it last succeeded.
    pub(super) alerted: Option<String>,
    /// Its credential's coming expiry was told (until it is renewed).
    pub(super) expiry_told: bool,
}

impl Tracked {
    pub(super) fn new(
        object: Arc<Object>,
        mut status: ObjectStatus,
        recorded: Option<EntryDigest>,
        converged: Option<cause::Inputs>,
    ) -> Self {
        status.source = object.source.to_string();
        Self {
            object,
            status: Arc::new(status),
            recorded,
            retry_streak: 0,
            poll_streak: 0,
            converged,
            terminal_hash: None,
            prune: false,
            first_pass: false,
            tally: Tally::default(),
            alerted: None,
            expiry_told: false,
        }
    }

    /// Track `object` from now on (a new spec, or the same one moved in its file): the
    /// status names where it is defined.
    pub(super) fn set_object(&mut self, object: Arc<Object>) {
        if Arc::ptr_eq(&self.object, &object) {
            return; // the loader's own, from a file it did not read again
        }
        if self.object.source != object.source {
            self.status_mut().source = object.source.to_string();
        }
        self.object = object;
    }

    pub(super) fn status(&self) -> &ObjectStatus {
        &self.status
    }

    /// The status, to change: copied first if a snapshot still shares it.
    pub(super) fn status_mut(&mut self) -> &mut ObjectStatus {
        Arc::make_mut(&mut self.status)
    }

    /// The status for a snapshot, shared until the next change.
    pub(super) fn publish(&self) -> Arc<ObjectStatus> {
        Arc::clone(&self.status)
    }

    /// Where it ended: its status and what was done to it (a one-shot run's report).
    pub(super) fn finish(self) -> (ObjectStatus, Tally) {
        (Arc::unwrap_or_clone(self.status), self.tally)
    }
}
