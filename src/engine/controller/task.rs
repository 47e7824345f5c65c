//! The work a reconcile is: a step (observe, diff, write) or, for an object being
//! pruned, a teardown, as a future the controller runs.

use super::*;

impl Controller {
    /// The reconcile (or, for an object being pruned, the teardown) of `key`, ready to run.
    pub(super) fn task(&self, key: &ObjectKey, urgent: bool) -> Option<BoxFuture<'static, Done>> {
        let t = self.objects.get(key)?;
        let kind = Arc::clone(self.registry.get(&key.kind)?);
        // Only the outputs of its own dependencies travel with the task.
        let deps: BTreeMap<ObjectKey, Outputs> = self
            .registry
            .schema(&key.kind)
            .map(|s| s.references(&t.object.spec))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| {
                self.outputs
                    .get(&r.target)
                    .map(|o| (r.target.clone(), Outputs::clone(o)))
            })
            .collect();
        let span = info_span!("reconcile", kind = %key.kind, name = %key.name);
        let task = if t.prune {
            self.teardown_task(t, kind, deps)
        } else {
            self.step_task(t, kind, deps)
        };
        Some(Box::pin(crate::urgency::run(urgent, task.instrument(span))))
    }

    /// Delete per policy (a container stays while what it holds does), then drop the
    /// inventory entry.
    pub(super) fn teardown_task(
        &self,
        t: &Tracked,
        kind: Arc<dyn DynKind>,
        deps: BTreeMap<ObjectKey, Outputs>,
    ) -> BoxFuture<'static, Done> {
        let inventory = Arc::clone(&self.inventory);
        let (key, meta, spec) = (
            t.object.key.clone(),
            t.object.meta.clone(),
            t.object.spec.clone(),
        );
        let hash = t.object.hash.clone();
        let ran_with = cause::Inputs::new(&hash, &deps);
        let revision = self.revision.clone();
        let policy = t.object.deletion_policy;
        let kept = match policy {
            DeletionPolicy::Delete => {
                containment::kept_by(self.kept_inside.get(&key).map_or(&[], |k| k.as_slice()))
            }
            DeletionPolicy::Retain => None,
        };
        if let Some(why) = &kept {
            info!(object = %key, "{why}");
        }
        Box::pin(async move {
            let start = Instant::now();
            let mut result = match kept {
                Some(_) => Ok(Teardown::Retained),
                None => match kind
                    .teardown(&meta, &spec, &Deps::new(&deps), policy, false)
                    .await
                {
                    // What it holds keeps it (a repository with images): it stays, as if
                    // retained, and its entry goes.
                    Err(e) if e.stays => {
                        info!(object = %key, "{}", e.message);
                        Ok(Teardown::Retained)
                    }
                    result => result,
                },
            };
            if result.is_ok()
                && let Err(e) = inventory.remove(&key).await
            {
                result = Err(e);
            }
            Done {
                key,
                observed_only: false,
                hash,
                ran_with,
                result: TaskResult::Teardown(result),
                recorded: None,
                duration: start.elapsed(),
                revision,
            }
        })
    }

    /// Record intent in the inventory when it changed, then one reconcile step (observe
    /// only while suspended).
    pub(super) fn step_task(
        &self,
        t: &Tracked,
        kind: Arc<dyn DynKind>,
        deps: BTreeMap<ObjectKey, Outputs>,
    ) -> BoxFuture<'static, Done> {
        let inventory = Arc::clone(&self.inventory);
        let (key, meta, spec) = (
            t.object.key.clone(),
            t.object.meta.clone(),
            t.object.spec.clone(),
        );
        let hash = t.object.hash.clone();
        let mode = if self.observe_only(&meta) {
            Mode::Plan
        } else {
            Mode::Apply
        };
        let ran_with = cause::Inputs::new(&hash, &deps);
        let revision = self.revision.clone();
        // The entry to write when it is not the one last written (only when writing at all).
        let record = (mode == Mode::Apply)
            .then(|| {
                let entry = InventoryEntry {
                    key: key.clone(),
                    meta: meta.clone(),
                    spec: spec.clone(),
                    deletion_policy: t.object.deletion_policy,
                    hash: hash.clone(),
                    dep_outputs: deps
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect(),
                };
                let digest = entry.digest();
                (entry, digest)
            })
            .filter(|(_, digest)| t.recorded != Some(*digest));
        Box::pin(async move {
            let start = Instant::now();
            // Record intent before anything is created, so a crash never orphans it.
            let recorded = match &record {
                Some((entry, _)) => inventory.put(entry).await,
                None => Ok(()),
            };
            let (result, recorded) = match recorded {
                Ok(()) => (
                    kind.step(&meta, &spec, &Deps::new(&deps), mode).await,
                    record.map(|(_, digest)| digest),
                ),
                Err(e) => (Err(e), None),
            };
            Done {
                key,
                observed_only: mode == Mode::Plan,
                hash,
                ran_with,
                result: TaskResult::Step(result),
                recorded,
                duration: start.elapsed(),
                revision,
            }
        })
    }
}
