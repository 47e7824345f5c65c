//! Taking in a load of the manifests, and planning the prune of what they no longer
//! define.

use super::*;

impl Controller {
    /// Take in a fresh load of the manifests.
    pub(super) fn apply_load(&mut self, loaded: Loaded) {
        let wall = SystemTime::now();
        let new_revision = loaded
            .revision
            .clone()
            .filter(|r| self.revision.as_ref() != Some(r));
        let (file_keys, unknown_files) = reload::file_keys(&self.file_keys, &loaded);
        self.file_keys = file_keys;
        self.unknown_files = unknown_files;
        self.problems = loaded.problems.iter().map(|p| p.to_string()).collect();
        let mut problems_by_key = reload::problems_by_key(&loaded, &self.file_keys);
        // New and changed objects (by content hash); invalid ones keep their last good spec.
        let valid: BTreeMap<ObjectKey, Arc<Object>> = loaded
            .objects
            .into_iter()
            .filter(|o| !problems_by_key.contains_key(&o.key))
            .map(|o| (o.key.clone(), o))
            .collect();
        let graph = self.next_graph(&valid, &mut problems_by_key);
        for (key, object) in valid {
            if !problems_by_key.contains_key(&key) {
                self.take_in(key, object, wall);
            }
        }
        for (key, t) in &mut self.objects {
            // Touched only when they change: an untouched status is not copied again.
            let problems = problems_by_key.get(key);
            if problems.is_some() || t.status().validation_error.is_some() {
                let validation_error = problems.map(|ps| ps.join("; "));
                if t.status().validation_error != validation_error {
                    t.status_mut().validation_error = validation_error;
                }
            }
        }
        if let Some(graph) = graph {
            self.graph = graph;
        }
        // A dependency may have left a spec, or stopped being pruned.
        self.unpark_all();
        if self.first_keys.is_none() {
            self.first_keys = Some(self.objects.keys().cloned().collect());
        }
        self.plan_prune();
        if let Some(revision) = new_revision {
            info!(%revision, "applying revision");
            self.revision = Some(revision.clone());
            // What this revision changes: what has not run at its spec, and what goes.
            let awaiting = self
                .objects
                .iter()
                .filter(|(_, t)| t.prune || t.status().observed_hash != t.object.hash)
                .map(|(k, _)| k.clone())
                .collect();
            self.applying = Some((revision, awaiting));
            self.check_applied();
        }
    }

    /// Once every object a new revision changed has been reconciled at it (or removed, or
    /// waits on a dependency), the revision is applied: say so.
    pub(super) fn check_applied(&mut self) {
        let Some((_, awaiting)) = &mut self.applying else {
            return;
        };
        let (objects, running, parked) = (&self.objects, &self.running, &self.parked);
        awaiting.retain(|k| {
            let Some(t) = objects.get(k) else {
                return false; // pruned
            };
            if running.contains(k) {
                return true;
            }
            if parked.contains(k) {
                return false;
            }
            if t.prune {
                t.status().last_error.is_none()
            } else {
                t.status().observed_hash != t.object.hash
            }
        });
        if !awaiting.is_empty() {
            return;
        }
        let Some((revision, _)) = self.applying.take() else {
            return;
        };
        let (mut ready, mut failing, mut waiting) = (0, 0, 0);
        for (k, t) in &self.objects {
            if self.parked.contains(k) {
                waiting += 1;
            } else if t.status().last_error.is_some() {
                failing += 1;
            } else if t.status().is_ready() {
                ready += 1;
            }
        }
        info!(%revision, ready, failing, waiting, "revision applied");
        self.applied_revision = Some(revision.clone());
        self.emit(super::super::events::Event::RevisionApplied {
            revision,
            ready,
            failing,
            waiting,
        });
    }

    /// The dependency graph of what is defined once `valid` is taken in (None: the current
    /// one). A cycle is a problem of each object in it, which keeps its previous spec.
    pub(super) fn next_graph(
        &mut self,
        valid: &BTreeMap<ObjectKey, Arc<Object>>,
        problems_by_key: &mut BTreeMap<ObjectKey, Vec<String>>,
    ) -> Option<Graph> {
        let defined: BTreeSet<&ObjectKey> =
            self.file_keys.values().flat_map(|ks| ks.iter()).collect();
        let mut candidate: BTreeMap<ObjectKey, Arc<Object>> = self
            .objects
            .iter()
            .filter(|(k, t)| !t.prune && defined.contains(*k))
            .map(|(k, t)| (k.clone(), t.object.clone()))
            .collect();
        for (k, o) in valid {
            candidate.insert(k.clone(), o.clone());
        }
        if self.graph_holds(&candidate) {
            return None;
        }
        let candidates: Vec<Arc<Object>> = candidate.into_values().collect();
        let cycle = match Graph::build(&candidates, &self.registry) {
            Ok(g) => {
                self.graph_exact = true;
                return Some(g);
            }
            Err(cycle) => cycle,
        };
        for p in cycle {
            self.problems.push(p.to_string());
            if let Some((k, n)) = p.object.as_deref().and_then(|o| o.split_once('/')) {
                problems_by_key
                    .entry(ObjectKey::new(k, n))
                    .or_default()
                    .push(p.to_string());
            }
        }
        let kept: Vec<Arc<Object>> = candidates
            .into_iter()
            .filter_map(|o| {
                if problems_by_key.contains_key(&o.key) {
                    self.objects.get(&o.key).map(|t| t.object.clone())
                } else {
                    Some(o)
                }
            })
            .collect();
        match Graph::build(&kept, &self.registry) {
            Ok(g) => {
                self.graph_exact = true;
                Some(g)
            }
            Err(_) => {
                self.graph_exact = false;
                None
            }
        }
    }

    /// Whether the current graph is the graph of `candidates`: the same objects, each
    /// with the same references (a reload that changed no reference, the common case,
    /// does not build it again).
    fn graph_holds(&self, candidates: &BTreeMap<ObjectKey, Arc<Object>>) -> bool {
        let targets = |o: &Object| -> BTreeSet<ObjectKey> {
            self.registry
                .schema(&o.key.kind)
                .map(|s| s.references(&o.spec))
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.target)
                .collect()
        };
        self.graph_exact
            && candidates.len() == self.graph.deps.len()
            && candidates.iter().all(|(key, object)| {
                let Some(t) = self.objects.get(key) else {
                    return false;
                };
                self.graph.deps.contains_key(key)
                    && (Arc::ptr_eq(&t.object, object)
                        || t.object.hash == object.hash
                        || targets(&t.object) == targets(object))
            })
    }

    /// Take in one valid object: new, changed (by content hash), or as it was.
    pub(super) fn take_in(&mut self, key: ObjectKey, object: Arc<Object>, wall: SystemTime) {
        match self.objects.get_mut(&key) {
            // As it was (perhaps moved in its file).
            Some(t) if t.object.hash == object.hash && !t.prune => t.set_object(object),
            Some(t) => {
                info!(object = %key, "manifest changed");
                t.set_object(object);
                t.prune = false;
                t.status_mut().pruning = false;
                t.terminal_hash = None;
                t.retry_streak = 0;
                self.parked.remove(&key);
                self.queue.set(key, self.edit);
            }
            None => {
                info!(object = %key, "new object");
                let recorded = self.orphans.remove(&key);
                // The inventory remembers what it was last reconciled with.
                let converged = recorded
                    .as_ref()
                    .map(|e| cause::Inputs::new(&e.hash, &e.dep_outputs));
                let mut status = ObjectStatus::new(&key.kind, &key.name);
                status.mark_pending(wall);
                self.objects.insert(
                    key.clone(),
                    Tracked::new(object, status, recorded.map(|e| e.digest()), converged),
                );
                // Added by an edit, or there from the start.
                let at = match self.first_keys {
                    Some(_) => self.edit,
                    None => self.urgent,
                };
                self.queue.set(key, at);
            }
        }
    }

    /// Objects no manifest defines any more (and inventory orphans) are pruned, unless
    /// the plan (see [`prune::plan`]) holds them back.
    pub(super) fn plan_prune(&mut self) {
        if self.standby {
            return; // the leader prunes
        }
        let defined: BTreeSet<&ObjectKey> =
            self.file_keys.values().flat_map(|ks| ks.iter()).collect();
        let loaded: BTreeSet<&ObjectKey> = self
            .objects
            .iter()
            .filter(|(_, t)| !t.prune)
            .map(|(k, _)| k)
            .collect();
        let orphans: BTreeSet<&ObjectKey> = self
            .orphans
            .keys()
            .filter(|k| !self.objects.contains_key(*k))
            .collect();
        let plan = prune::plan(prune::Facts {
            defined: &defined,
            loaded: &loaded,
            orphans: &orphans,
            unknown_files: self.unknown_files,
            threshold: self.cfg.prune_threshold,
            confirmed: self.prune_confirmed,
        });
        let gone = match plan {
            prune::Plan::Nothing => {
                self.prune_refused = None;
                self.prune_held = None;
                return;
            }
            prune::Plan::Held(gone) => {
                // Said once per set of candidates, not at every reload.
                if self.prune_held.as_ref() != Some(&gone) {
                    warn!(
                        candidates = gone.len(),
                        "not pruning while a manifest file cannot be read"
                    );
                    self.prune_held = Some(gone);
                }
                return;
            }
            prune::Plan::Refused(msg) => {
                self.prune_held = None;
                if self.prune_refused.as_deref() != Some(msg.as_str()) {
                    error!("{msg}");
                }
                // Told when it starts refusing, not again as the counts change.
                if self.prune_refused.is_none() {
                    self.emit(super::super::events::Event::PruneRefused {
                        message: msg.clone(),
                    });
                }
                self.prune_refused = Some(msg);
                return;
            }
            prune::Plan::Go(gone) => gone,
        };
        self.prune_held = None;
        self.prune_refused = None;
        if !self.cfg.allow_mass_prune {
            self.prune_confirmed = false; // a confirmation covers one prune
        }
        let wall = SystemTime::now();
        for key in gone {
            if let Some(entry) = self.orphans.remove(&key) {
                self.adopt_orphan(entry);
            }
            if let Some(t) = self.objects.get_mut(&key) {
                info!(object = %key, "manifest removed: pruning");
                t.prune = true;
                self.parked.remove(&key);
                t.status_mut().mark_pruning(wall);
                self.queue.set(key, self.edit);
            }
        }
    }

    /// Track an inventory entry no manifest defines, so that it can be pruned: its spec
    /// as recorded, and the outputs of its dependencies it was last reconciled with.
    pub(super) fn adopt_orphan(&mut self, entry: InventoryEntry) {
        let object = Object {
            key: entry.key.clone(),
            meta: entry.meta.clone(),
            spec: entry.spec.clone(),
            deletion_policy: entry.deletion_policy,
            source: crate::manifest::Source {
                file: PathBuf::from("(inventory)"),
                line: 0,
            },
            hash: entry.hash.clone(),
        };
        for (k, v) in &entry.dep_outputs {
            if let Some((kind, name)) = k.split_once('/') {
                self.outputs
                    .entry(ObjectKey::new(kind, name))
                    .or_insert_with(|| Arc::new(v.clone()));
            }
        }
        let status = ObjectStatus::new(&entry.key.kind, &entry.key.name);
        let mut tracked = Tracked::new(Arc::new(object), status, Some(entry.digest()), None);
        tracked.first_pass = true;
        self.objects.insert(tracked.object.key.clone(), tracked);
    }
}
