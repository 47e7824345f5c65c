//! Taking in a finished reconcile: status, metrics, and what comes next (see
//! [`super::policy`]).

use super::*;

impl Controller {
    pub(super) fn record(&mut self, done: Done) {
        let Done {
            key,
            observed_only,
            hash,
            ran_with,
            result,
            recorded,
            duration,
            revision,
        } = done;
        if self.running.remove(&key) {
            self.lanes.give_back(self.queue.lane(&key));
        }
        self.metrics
            .reconcile_duration
            .get_or_create(&KindLabels {
                kind: key.kind.to_string(),
            })
            .observe(duration.as_secs_f64());
        let wall = SystemTime::now();
        let Some(t) = self.objects.get_mut(&key) else {
            return;
        };
        t.first_pass = true;
        if recorded.is_some() {
            t.recorded = recorded;
        }
        if matches!(result, TaskResult::Step(_)) {
            t.status_mut().observed_hash = hash.clone();
        }
        let mut rec = ReconcileRecord {
            at: status::Timestamp::of(wall),
            duration_ms: duration.as_millis() as u64,
            outcome: status::Word::default(),
            reason: status::Word::default(),
        };
        let after = match result {
            TaskResult::Teardown(Ok(outcome)) => self.pruned(&key, outcome, &mut rec),
            TaskResult::Step(Ok(step)) => {
                self.stepped(&key, observed_only, ran_with, step, wall, &mut rec)
            }
            TaskResult::Step(Err(e)) | TaskResult::Teardown(Err(e)) => {
                self.failed(&key, &hash, e, wall, &mut rec)
            }
        };
        if let Some(t) = self.objects.get_mut(&key)
            && t.status().revision != revision
        {
            t.status_mut().revision = revision;
        }
        self.check_expiry(&key, wall);
        self.finish(&key, rec, after, wall);
    }

    /// Tell once when the credential an object publishes is in the last tenth of its
    /// lifetime (its renewal keeps failing); again after it has been renewed.
    fn check_expiry(&mut self, key: &ObjectKey, wall: SystemTime) {
        use super::super::events::{Event, credential_times, expiring};
        if self.one_shot || self.standby {
            return;
        }
        let Some(t) = self.objects.get_mut(key) else {
            return;
        };
        let Some((issued, expires)) = credential_times(&t.status().outputs) else {
            return;
        };
        let now = wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let soon = expiring(issued, expires, now);
        if soon && !t.expiry_told {
            t.expiry_told = true;
            warn!(object = %key, "the published credential expires soon and is not renewed");
            self.emit(Event::CredentialExpiring {
                key: key.clone(),
                expires_at: std::time::UNIX_EPOCH + Duration::from_secs(expires),
            });
        } else if !soon {
            t.expiry_told = false;
        }
    }

    /// A teardown went through: the object goes (unless its manifest came back).
    pub(super) fn pruned(
        &mut self,
        key: &ObjectKey,
        outcome: Teardown,
        rec: &mut ReconcileRecord,
    ) -> After {
        rec.outcome = match outcome {
            Teardown::Deleted => "deleted",
            Teardown::Retained => "retained",
            Teardown::Absent => "absent",
            Teardown::NotOwned => "not-owned",
        }
        .into();
        info!(object = %key, outcome = %rec.outcome, "pruned");
        if containment::stays(outcome)
            && let Some(t) = self.objects.get(key)
        {
            for container in containers_of(&self.registry, &t.object) {
                self.kept_inside
                    .entry(container)
                    .or_default()
                    .push(key.clone());
            }
        }
        After {
            next: None,
            dependents_due: false,
            removed: true,
        }
    }

    /// A reconcile step went through: take in what it saw and decide what is next.
    pub(super) fn stepped(
        &mut self,
        key: &ObjectKey,
        observe_only: bool,
        ran_with: cause::Inputs,
        step: StepReport,
        wall: SystemTime,
        rec: &mut ReconcileRecord,
    ) -> After {
        let timings = self.timings(key);
        let standby = self.standby;
        let one_shot = self.one_shot;
        let Some(t) = self.objects.get_mut(key) else {
            return After::default();
        };
        // Only a one-shot run reports the changes; a daemon would keep every object's
        // last changes (its creation's, for most) for nothing.
        let changes = if one_shot { &step.changes[..] } else { &[] };
        t.tally.succeeded(step.action, changes);
        rec.outcome = match (observe_only, step.action) {
            (true, Action::Unchanged) if step.changes.is_empty() => "unchanged",
            (true, _) => "drift",
            (false, Action::Create) => "created",
            (false, Action::Update) => "updated",
            (false, Action::Unchanged) => "unchanged",
        }
        .into();
        let wrote = matches!(step.action, Action::Create | Action::Update) && !observe_only;
        let mut told = Vec::new();
        if !observe_only && t.alerted.take().is_some() {
            info!(object = %key, "reconciles again");
            told.push(super::super::events::Event::Recovered { key: key.clone() });
        }
        if wrote {
            let why = cause::cause(t.converged.as_ref(), &ran_with, &step.changes);
            if why == cause::Cause::Drift && !one_shot {
                told.push(super::super::events::Event::DriftCorrected {
                    key: key.clone(),
                    fields: step.changes.iter().map(|c| c.field.clone()).collect(),
                });
            }
            self.metrics
                .changes
                .get_or_create(&KindCauseLabels {
                    kind: key.kind.to_string(),
                    cause: why.label().to_string(),
                })
                .inc();
            info!(object = %key, cause = why.label(), changes = step.changes.len(), "{}", why.describe());
        }
        t.retry_streak = 0;
        t.status_mut().last_error = None;
        t.status_mut().suspended = observe_only;
        t.status_mut().drift = if observe_only {
            step.changes.clone()
        } else {
            Vec::new()
        };
        let mut dependents_due = false;
        // One copy, shared by the status and the table dependents read.
        let outputs = match self.outputs.get(key) {
            Some(known) if **known == step.outputs => Arc::clone(known),
            _ => {
                let outputs = Arc::new(step.outputs);
                if !outputs.is_empty() {
                    self.outputs.insert(key.clone(), Arc::clone(&outputs));
                    dependents_due = true;
                }
                outputs
            }
        };
        for event in told {
            self.emit(event);
        }
        let Some(t) = self.objects.get_mut(key) else {
            return After::default();
        };
        // What the kind publishes about the object (a token's expiry), as it is.
        self.metrics
            .object_reconciled(&key.kind, &key.name, &step.gauges, wrote);
        t.status_mut().outputs = outputs;
        if observe_only {
            // Ready while suspended means it exists: what waits on it may go on then.
            let exists = step.action != Action::Create;
            dependents_due |= exists && !t.status().is_ready();
            let why = if standby {
                status::reason::STANDBY
            } else {
                status::reason::SUSPENDED
            };
            t.status_mut().mark_observed(exists, why, wall);
            return After {
                next: Some(Next::Resync(timings.resync)),
                dependents_due,
                removed: false,
            };
        }
        let next =
            policy::success_policy(&step.readiness, step.requeue_after, t.poll_streak, &timings);
        match &step.readiness {
            Readiness::Ready => {
                t.poll_streak = 0;
                if ran_with.spec_is(&t.object.hash) {
                    t.converged = Some(ran_with);
                }
                dependents_due |= !t.status().is_ready();
                t.status_mut().mark_ready(wall);
            }
            Readiness::Progressing(msg) => {
                t.poll_streak += 1;
                t.status_mut().mark_progressing(msg, wall);
            }
            Readiness::Failed(msg) => t.status_mut().mark_resource_failed(msg, wall),
        }
        After {
            next: Some(next),
            dependents_due,
            removed: false,
        }
    }

    /// A reconcile or teardown failed: say so, and decide when to try again.
    pub(super) fn failed(
        &mut self,
        key: &ObjectKey,
        hash: &str,
        e: ReconcileError,
        wall: SystemTime,
        rec: &mut ReconcileRecord,
    ) -> After {
        let timings = self.timings(key);
        let Some(t) = self.objects.get_mut(key) else {
            return After::default();
        };
        rec.outcome = "error".into();
        rec.reason = e.reason.word();
        if !t.prune {
            t.tally.failed(e.severity);
        }
        self.metrics
            .reconcile_errors
            .get_or_create(&ErrorLabels {
                kind: key.kind.to_string(),
                reason: e.reason.to_string(),
            })
            .inc();
        self.metrics
            .object_failed(&key.kind, &key.name, e.reason.metric_label());
        let severity = match e.severity {
            Severity::Terminal => "terminal",
            Severity::Recoverable => "recoverable",
            Severity::Waiting => "waiting",
        };
        if self.one_shot {
            debug!(object = %key, reason = %e.reason, severity, "{}", e.message);
        } else {
            warn!(object = %key, reason = %e.reason, severity, "{}", e.message);
        }
        t.status_mut().last_error = Some(ErrorInfo {
            at: rfc3339(wall),
            reason: e.reason.to_string(),
            message: e.message.clone(),
            severity: severity.into(),
        });
        t.status_mut().mark_failed(
            e.reason.word(),
            &e.message,
            e.is_terminal() || e.unready,
            wall,
        );
        let next = policy::error_policy(&e, t.prune, t.retry_streak, &timings);
        match next {
            Next::AwaitChange(_) if hash == t.object.hash => {
                t.terminal_hash = Some(hash.to_string());
            }
            Next::Retry(_) => t.retry_streak += 1,
            _ => {}
        }
        let terminal = e.is_terminal();
        let tell = !self.one_shot
            && !matches!(e.severity, Severity::Waiting)
            && (terminal || t.retry_streak >= super::super::events::FAILURES_BEFORE_ALERT)
            && t.alerted.as_deref() != Some(&e.reason.to_string());
        if tell {
            t.alerted = Some(e.reason.to_string());
            let credential = super::super::events::credential_times(&t.status().outputs).is_some();
            let event = super::super::events::Event::ReconcileFailed {
                key: key.clone(),
                reason: e.reason.to_string(),
                message: e.message.clone(),
                terminal,
                credential,
            };
            self.emit(event);
        }
        After {
            next: Some(next),
            dependents_due: false,
            removed: false,
        }
    }

    /// Record the reconcile in the object's history, then remove it or queue it again,
    /// and wake what was waiting on it.
    pub(super) fn finish(
        &mut self,
        key: &ObjectKey,
        rec: ReconcileRecord,
        after: After,
        wall: SystemTime,
    ) {
        let history = self.cfg.history;
        let Some(t) = self.objects.get_mut(key) else {
            return;
        };
        let mut next = after.next.map(Next::after);
        let mut removed = after.removed;
        if removed && !t.prune {
            // The manifest came back while it was being deleted: reconcile it again.
            removed = false;
            next = Some(Duration::ZERO);
        }
        t.status_mut().record(rec, history);
        if removed {
            self.metrics.object_gone(&key.kind, &key.name);
            let gone = self.objects.remove(key);
            self.parked.remove(key);
            self.outputs.remove(key);
            self.kept_inside.remove(key);
            self.queue.remove(key);
            // What it referred to may have been waiting for it to go first.
            if let Some(gone) = gone {
                let targets: Vec<ObjectKey> = self
                    .registry
                    .schema(&key.kind)
                    .map(|s| s.references(&gone.object.spec))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| r.target)
                    .collect();
                self.unpark(targets);
            }
            return;
        }
        let now = Instant::now();
        match next {
            Some(d) => {
                // An edit or a dependency change while this ran queued it earlier: keep that.
                self.queue.schedule(key.clone(), now + d);
                let at = self
                    .queue
                    .deadline(key)
                    .map_or(d, |t| t.saturating_duration_since(now));
                t.status_mut().next_reconcile_at = Some(status::Timestamp::of(wall + at));
            }
            None => t.status_mut().next_reconcile_at = None,
        }
        // Its dependents look again; nothing else can have been waiting on this reconcile
        // (a parked object waits for a dependency to turn Ready, or for what refers to it
        // to go: see `unpark`).
        if after.dependents_due {
            let dependents = self.graph.dependents.get(key).cloned().unwrap_or_default();
            for d in dependents.iter() {
                if let Some(t) = self.objects.get(d) {
                    self.parked.remove(d);
                    if t.terminal_hash.is_none() {
                        self.queue.schedule(d.clone(), self.urgent);
                    }
                }
            }
        }
    }

    /// The policy's timings for `key`.
    pub(super) fn timings(&self, key: &ObjectKey) -> policy::Timings {
        let resync = self.objects.get(key).map_or(self.cfg.resync, |t| {
            resync_period(&t.object.meta, &self.cfg, self.standby)
        });
        policy::Timings {
            resync,
            retry: self.cfg.retry,
            poll: self.cfg.poll,
            jitter: rand::random::<f64>(),
        }
    }
}
