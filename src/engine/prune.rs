//! The mass-prune guard: a reload that would prune more than a fraction of what the
//! controller manages (an emptied directory, a half-finished checkout) is refused until
//! the operator confirms it.

use std::collections::BTreeSet;

use crate::kinds::ObjectKey;

/// What to do about the objects no manifest defines any more.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing to prune.
    Nothing,
    /// A manifest file has never been read, and may define any of these: prune nothing
    /// until it is.
    Held(BTreeSet<ObjectKey>),
    /// A mass deletion nobody confirmed: the refusal.
    Refused(String),
    /// Prune these.
    Go(BTreeSet<ObjectKey>),
}

/// What the controller knows when it plans a prune.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Every key a manifest file defines (a file that failed to parse keeps its old keys).
    pub defined: &'a BTreeSet<&'a ObjectKey>,
    /// The objects loaded and not already being pruned.
    pub loaded: &'a BTreeSet<&'a ObjectKey>,
    /// What the inventory held at start-up that is not loaded.
    pub orphans: &'a BTreeSet<&'a ObjectKey>,
    /// Some manifest file has never been read.
    pub unknown_files: bool,
    pub threshold: f64,
    /// The operator confirmed (or allowed) a mass prune.
    pub confirmed: bool,
}

/// Objects no manifest defines any more (and inventory orphans) are pruned, unless a file
/// that was never read may define them, or that would be a mass deletion the operator
/// has not confirmed. What is managed, for the guard: every object loaded (recorded in
/// the inventory or not yet) and the inventory's orphans.
pub fn plan(f: Facts<'_>) -> Plan {
    let gone: BTreeSet<ObjectKey> = f
        .loaded
        .iter()
        .chain(f.orphans.iter())
        .filter(|k| !f.defined.contains(*k))
        .map(|k| (*k).clone())
        .collect();
    if gone.is_empty() {
        return Plan::Nothing;
    }
    if f.unknown_files {
        return Plan::Held(gone);
    }
    let managed: BTreeSet<&ObjectKey> = f.loaded.union(f.orphans).copied().collect();
    match refusal(&gone.iter().collect(), &managed, f.threshold) {
        Some(msg) if !f.confirmed => Plan::Refused(msg),
        _ => Plan::Go(gone),
    }
}

/// The refusal for pruning `gone` out of `managed` under `threshold` (a fraction), or
/// `None` when the prune may go ahead. What is pruned is part of what is managed, so the
/// count is taken against both together: the share never exceeds 100 %.
pub fn refusal(
    gone: &BTreeSet<&ObjectKey>,
    managed: &BTreeSet<&ObjectKey>,
    threshold: f64,
) -> Option<String> {
    let total = managed.union(gone).count().max(1);
    let fraction = gone.len() as f64 / total as f64;
    (fraction > threshold && gone.len() > 1).then(|| {
        format!(
            "refusing to prune {} of {} managed objects ({:.0}% > {:.0}% threshold): \
             the manifests may be half checked out or empty; fix them, or confirm with \
             `agentcore-controller confirm-prune` (POST /confirm-prune) or --allow-mass-prune",
            gone.len(),
            total,
            fraction * 100.0,
            threshold * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        let k = |n: &str| ObjectKey::new("Parameter", n);
        let (a, b, c, d) = (k("a"), k("b"), k("c"), k("d"));
        let set = |ks: &[&ObjectKey]| -> BTreeSet<ObjectKey> {
            ks.iter().map(|k| (*k).clone()).collect()
        };
        // Defined, loaded, orphans, unknown files, confirmed, and the plan.
        type Case<'a> = (
            &'a [&'a ObjectKey],
            &'a [&'a ObjectKey],
            &'a [&'a ObjectKey],
            bool,
            bool,
            Plan,
        );
        let cases: [Case; 6] = [
            (&[&a, &b], &[&a, &b], &[], false, false, Plan::Nothing),
            (
                &[&a, &b, &c],
                &[&a, &b, &c, &d],
                &[],
                false,
                false,
                Plan::Go(set(&[&d])),
            ),
            (
                &[&a, &b, &c],
                &[&a, &b, &c],
                &[&d],
                false,
                false,
                Plan::Go(set(&[&d])),
            ),
            (
                &[&a],
                &[&a, &b, &c],
                &[&d],
                true,
                false,
                Plan::Held(set(&[&b, &c, &d])),
            ),
            (
                &[&a],
                &[&a, &b, &c],
                &[&d],
                false,
                true,
                Plan::Go(set(&[&b, &c, &d])),
            ),
            (
                &[],
                &[&a, &b],
                &[],
                false,
                false,
                Plan::Refused(String::new()),
            ),
        ];
        for (defined, loaded, orphans, unknown_files, confirmed, want) in cases {
            let defined: BTreeSet<&ObjectKey> = defined.iter().copied().collect();
            let loaded: BTreeSet<&ObjectKey> = loaded.iter().copied().collect();
            let orphans: BTreeSet<&ObjectKey> = orphans.iter().copied().collect();
            let got = plan(Facts {
                defined: &defined,
                loaded: &loaded,
                orphans: &orphans,
                unknown_files,
                threshold: 0.5,
                confirmed,
            });
            match (&got, &want) {
                (Plan::Refused(msg), Plan::Refused(_)) => {
                    assert!(msg.contains("refusing to prune 2 of 2"), "{msg}")
                }
                _ => assert_eq!(got, want, "{defined:?} {loaded:?} {orphans:?}"),
            }
        }
    }

    fn keys(names: &[&str]) -> Vec<ObjectKey> {
        names
            .iter()
            .map(|n| ObjectKey::new("Parameter", *n))
            .collect()
    }

    /// Gone, managed, threshold, and what the refusal says (`None`: no refusal).
    type Case<'a> = (&'a [&'a str], &'a [&'a str], f64, Option<&'a str>);

    #[test]
    fn counts_against_everything_managed() {
        let cases: [Case; 6] = [
            (&["a"], &["a", "b"], 0.5, None),
            (&["a", "b"], &["a", "b", "c", "d"], 0.5, None),
            (
                &["a", "b", "c"],
                &["a", "b", "c", "d"],
                0.5,
                Some("3 of 4 managed objects (75%"),
            ),
            (
                &["a", "b"],
                &["a", "b"],
                0.5,
                Some("2 of 2 managed objects (100%"),
            ),
            // Pruned objects the inventory never recorded (never created, or not yet)
            // are still managed objects: never more pruned than managed.
            (
                &["a", "b", "c", "d", "e", "f", "g", "h", "i"],
                &["a", "b", "c", "d", "e", "f", "g", "h"],
                0.5,
                Some("9 of 9 managed objects (100%"),
            ),
            (&["x", "y"], &[], 0.5, Some("2 of 2 managed objects (100%")),
        ];
        for (gone, managed, threshold, want) in cases {
            let (gone, managed) = (keys(gone), keys(managed));
            let got = refusal(&gone.iter().collect(), &managed.iter().collect(), threshold);
            match want {
                None => assert_eq!(got, None, "{gone:?} of {managed:?}"),
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(w)),
                    "{gone:?} of {managed:?}: {got:?}"
                ),
            }
        }
    }
}
