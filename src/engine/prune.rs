//! The mass-prune guard: a reload that would prune more than a fraction of what the
//! controller manages (an emptied directory, a half-finished checkout) is refused until
//! the operator confirms it.

use std::collections::BTreeSet;

use crate::kinds::ObjectKey;

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
