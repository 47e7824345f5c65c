//! A one-shot run (`apply`, `diff`): the controller driven until nothing more can happen.

use super::*;

/// Where a one-shot run left one object.
#[derive(Debug, Clone)]
pub struct Final {
    pub status: ObjectStatus,
    pub tally: Tally,
}

/// Where a one-shot run left everything.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub objects: BTreeMap<ObjectKey, Final>,
    pub timed_out: bool,
}

impl Tracked {
    /// Nothing more will happen to it unless something else does: Ready, failed for good
    /// (terminal, or AWS reports the resource failed), held back by a dependency, or,
    /// observing only, looked at (a recoverable error is retried).
    fn settled(&self, parked: bool, observe_only: bool) -> bool {
        // A retry is queued after a recoverable error, even for an object that was Ready.
        let retrying = matches!(
            self.tally.failed,
            Some(Severity::Recoverable | Severity::Waiting)
        );
        parked
            || self.terminal_hash.is_some()
            || (!retrying
                && (self.status().is_ready()
                    || self.status().ready_reason() == status::reason::RESOURCE_FAILED))
            || (observe_only
                && self.tally.attempts > 0
                && self.tally.failed != Some(Severity::Recoverable))
    }
}

impl Controller {
    /// A one-shot run (`apply`, `diff`): take in `loaded` and drive it until nothing more
    /// can happen (every object Ready, failed for good, or held back by one that is) or
    /// `timeout` passes; then in-flight reconciles are cancelled. The same scheduling,
    /// gating, policy and bookkeeping as [`Controller::run`], over whatever inventory it
    /// was given (an `apply` prunes nothing: an in-memory one).
    pub async fn converge(mut self, loaded: Loaded, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        self.one_shot = true;
        self.apply_load(loaded);
        let mut tasks = FuturesUnordered::new();
        let mut timed_out = false;
        loop {
            self.launch_due(&mut tasks);
            if tasks.is_empty() && self.settled() {
                break;
            }
            let wake = self.next_wake().map_or(deadline, |w| w.min(deadline));
            tokio::select! {
                Some(done) = tasks.next(), if !tasks.is_empty() => self.record(done),
                _ = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= deadline {
                        timed_out = true;
                        break;
                    }
                }
            }
        }
        // Cancel what still runs (a build is stopped with every process it started).
        drop(tasks);
        self.publish();
        let objects = std::mem::take(&mut self.objects)
            .into_iter()
            .map(|(k, t)| {
                let (status, tally) = t.finish();
                (k, Final { status, tally })
            })
            .collect();
        Outcome { objects, timed_out }
    }

    pub(super) fn settled(&self) -> bool {
        self.running.is_empty()
            && self
                .objects
                .iter()
                .all(|(k, t)| t.settled(self.parked.contains(k), self.observe_only(&t.object.meta)))
    }

    /// Observe only: suspended, or the whole controller observes.
    pub(super) fn observe_only(&self, meta: &ObjectMeta) -> bool {
        self.cfg.observe_only || self.standby || suspended(meta)
    }
}
