//! The dependency graph of manifest objects: references decide the order, a cycle is
//! a validation error.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use super::load::{Object, Problem};
use crate::model::object::ObjectKey;
use crate::model::schema::Schemas;

/// Objects with their dependencies, in an order where every object comes after the
/// objects it depends on.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Topological order (dependencies first); ties broken by key for stability.
    pub order: Vec<ObjectKey>,
    /// Direct dependencies of each object.
    pub deps: BTreeMap<ObjectKey, Keys>,
    /// Direct dependents of each object.
    pub dependents: BTreeMap<ObjectKey, Keys>,
}

/// Keys in order, each once, held in exactly their space (a set's tree node holds eleven
/// whatever it has, twice per object in a fleet), and shared rather than copied.
pub type Keys = std::sync::Arc<[ObjectKey]>;

fn exact(sets: BTreeMap<ObjectKey, BTreeSet<ObjectKey>>) -> BTreeMap<ObjectKey, Keys> {
    sets.into_iter()
        .map(|(k, set)| (k, set.into_iter().collect()))
        .collect()
}

impl Graph {
    /// Build the graph of `objects`. References to objects outside the set are ignored
    /// here (the loader reports them). A cycle is returned as one problem per object in it.
    pub fn build<O: Borrow<Object>>(
        objects: &[O],
        schemas: &dyn Schemas,
    ) -> Result<Graph, Vec<Problem>> {
        let objects = || objects.iter().map(Borrow::borrow);
        let keys: BTreeSet<&ObjectKey> = objects().map(|o: &Object| &o.key).collect();
        let mut deps: BTreeMap<ObjectKey, BTreeSet<ObjectKey>> = BTreeMap::new();
        let mut dependents: BTreeMap<ObjectKey, BTreeSet<ObjectKey>> = BTreeMap::new();
        for o in objects() {
            let refs = schemas
                .schema(&o.key.kind)
                .map(|s| s.references(&o.spec))
                .unwrap_or_default();
            let entry = deps.entry(o.key.clone()).or_default();
            dependents.entry(o.key.clone()).or_default();
            for r in refs {
                if keys.contains(&r.target) && r.target != o.key {
                    entry.insert(r.target.clone());
                }
            }
        }
        for (k, ds) in &deps {
            for d in ds {
                dependents.entry(d.clone()).or_default().insert(k.clone());
            }
        }
        // Kahn's algorithm; BTreeSet keeps the order deterministic.
        let mut remaining: BTreeMap<&ObjectKey, usize> =
            deps.iter().map(|(k, ds)| (k, ds.len())).collect();
        let mut ready: BTreeSet<&ObjectKey> = remaining
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(k, _)| *k)
            .collect();
        let mut order = Vec::new();
        while let Some(k) = ready.pop_first() {
            remaining.remove(k);
            order.push(k.clone());
            for d in dependents.get(k).into_iter().flatten() {
                if let Some(n) = remaining.get_mut(d) {
                    *n -= 1;
                    if *n == 0 {
                        ready.insert(d);
                    }
                }
            }
        }
        if !remaining.is_empty() {
            let cycle: Vec<String> = remaining.keys().map(|k| k.to_string()).collect();
            let problems = objects()
                .filter(|o| remaining.contains_key(&o.key))
                .map(|o| Problem {
                    source: o.source.clone(),
                    object: Some(o.key.to_string()),
                    path: String::new(),
                    message: format!(
                        "dependency cycle between {}; break it by removing one reference",
                        cycle.join(", ")
                    ),
                })
                .collect();
            return Err(problems);
        }
        Ok(Graph {
            order,
            deps: exact(deps),
            dependents: exact(dependents),
        })
    }

    /// The direct dependencies of `key` (none when it is not in the graph).
    pub fn deps_of(&self, key: &ObjectKey) -> &[ObjectKey] {
        self.deps.get(key).map_or(&[], |ks| ks)
    }

    /// The direct dependents of `key` (none when it is not in the graph).
    pub fn dependents_of(&self, key: &ObjectKey) -> &[ObjectKey] {
        self.dependents.get(key).map_or(&[], |ks| ks)
    }

    /// Every object that depends on `key`, directly or not.
    pub fn transitive_dependents(&self, key: &ObjectKey) -> BTreeSet<ObjectKey> {
        let mut out = BTreeSet::new();
        let mut stack = vec![key.clone()];
        while let Some(k) = stack.pop() {
            for d in self.dependents_of(&k) {
                if out.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Registry;
    use crate::manifest::load::load_texts;
    use std::path::PathBuf;

    fn objects(pairs: &[(&str, Option<&str>)]) -> Vec<std::sync::Arc<Object>> {
        let text: String = pairs
            .iter()
            .map(|(name, from)| {
                let value = match from {
                    Some(f) => format!("{{ from: Parameter/{f}, output: value }}"),
                    None => "{ value: x }".to_string(),
                };
                format!(
                    "---\napiVersion: agentcore.dev/v1alpha1\nkind: Parameter\nmetadata:\n  name: {name}\nspec:\n  name: /{name}\n  value: {value}\n"
                )
            })
            .collect();
        let loaded = load_texts(&[(PathBuf::from("g.yaml"), text)], &Registry::offline());
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        loaded.objects
    }

    fn names(keys: &[ObjectKey]) -> Vec<&str> {
        keys.iter().map(|k| &*k.name).collect()
    }

    #[test]
    fn order_table() {
        type Case<'a> = (Vec<(&'a str, Option<&'a str>)>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (vec![("a", None), ("b", Some("a"))], vec!["a", "b"]),
            (
                vec![("c", Some("b")), ("b", Some("a")), ("a", None)],
                vec!["a", "b", "c"],
            ),
            (
                vec![("x", None), ("a", Some("x")), ("b", None)],
                vec!["b", "x", "a"],
            ),
        ];
        for (pairs, want) in cases {
            let objs = objects(&pairs);
            let g = Graph::build(&objs, &Registry::offline()).expect("acyclic");
            assert_eq!(names(&g.order), want);
        }
    }

    #[test]
    fn cycles_are_reported_for_each_member() {
        let objs = objects(&[
            ("a", Some("c")),
            ("b", Some("a")),
            ("c", Some("b")),
            ("d", None),
        ]);
        let problems = Graph::build(&objs, &Registry::offline()).expect_err("cycle");
        assert_eq!(problems.len(), 3);
        assert!(
            problems[0]
                .message
                .contains("dependency cycle between Parameter/a, Parameter/b, Parameter/c")
        );
    }

    #[test]
    fn transitive_dependents() {
        let objs = objects(&[("a", None), ("b", Some("a")), ("c", Some("b")), ("d", None)]);
        let g = Graph::build(&objs, &Registry::offline()).expect("acyclic");
        let deps = g.transitive_dependents(&ObjectKey::new("Parameter", "a"));
        assert_eq!(
            deps.iter().map(|k| &*k.name).collect::<Vec<_>>(),
            vec!["b", "c"]
        );
    }
}
