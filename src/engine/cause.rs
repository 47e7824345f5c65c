//! Why a reconcile wrote: the manifest changed (`spec`), a dependency's outputs changed
//! and the object follows them (`dependency`: the runtime's ARN changed, so the Parameter
//! holding it is rewritten), something the object keeps up by itself fell due
//! (`renewal`: a token inside its renewal window), or the resource was changed outside
//! the manifests (`drift`). Decided against the spec and dependency outputs of the last
//! reconcile that converged.

use std::fmt::Display;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::kinds::{Change, Outputs};

/// What a converged reconcile ran with: the spec's content hash and its dependencies'
/// outputs (by `Kind/name`), as digests. They are only ever compared, and an object keeps
/// the last converged one for as long as it lives: at a thousand stacks, the outputs
/// themselves were a copy of every dependency's outputs per object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    spec: u64,
    deps: u64,
}

impl Inputs {
    /// `deps` in any order (the digest of a set).
    pub fn new<'a, K: Display + 'a>(
        hash: &str,
        deps: impl IntoIterator<Item = (&'a K, &'a Outputs)>,
    ) -> Self {
        Self {
            spec: digest(hash),
            deps: deps.into_iter().fold(0, |all, (key, outputs)| {
                all.wrapping_add(digest((key.to_string(), outputs)))
            }),
        }
    }

    /// It ran with the spec whose content hash is `hash`.
    pub fn spec_is(&self, hash: &str) -> bool {
        self.spec == digest(hash)
    }
}

fn digest(value: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Spec,
    Dependency,
    Renewal,
    Drift,
}

impl Cause {
    /// The `cause` label of the metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Cause::Spec => "spec",
            Cause::Dependency => "dependency",
            Cause::Renewal => "renewal",
            Cause::Drift => "drift",
        }
    }

    /// How the log says it.
    pub fn describe(self) -> &'static str {
        match self {
            Cause::Spec => "applied a manifest change",
            Cause::Dependency => "followed a change of a dependency's outputs",
            Cause::Renewal => "renewed what fell due",
            Cause::Drift => "drift corrected",
        }
    }
}

/// Why a reconcile that ran with `now` and wrote `changes` wrote, given what the last
/// converged reconcile ran with (`None`: never converged, as far as anyone recorded).
pub fn cause(last: Option<&Inputs>, now: &Inputs, changes: &[Change]) -> Cause {
    match last {
        None => Cause::Spec,
        Some(last) if last.spec != now.spec => Cause::Spec,
        Some(last) if last.deps != now.deps => Cause::Dependency,
        // Only the kind's own state changed (its fields under `status.`).
        Some(_)
            if !changes.is_empty() && changes.iter().all(|c| c.field.starts_with("status.")) =>
        {
            Cause::Renewal
        }
        Some(_) => Cause::Drift,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(hash: &str, arn: &str) -> Inputs {
        let key = "AgentRuntime/rt".to_string();
        let outputs = Outputs::from([("arn".to_string(), arn.to_string())]);
        Inputs::new(hash, [(&key, &outputs)])
    }

    /// Name, what the last converged reconcile ran with, what this one ran with, what it
    /// wrote, and why.
    type Case<'a> = (&'a str, Option<Inputs>, Inputs, &'a [Change], Cause);

    #[test]
    fn spec_dependency_renewal_and_drift_apart() {
        let value = [Change::new("spec.value", None, None)];
        let token = [Change::new("status.bearer_token", None, None)];
        let cases: [Case; 7] = [
            (
                "first reconcile",
                None,
                inputs("h1", "a1"),
                &value,
                Cause::Spec,
            ),
            (
                "edited",
                Some(inputs("h1", "a1")),
                inputs("h2", "a1"),
                &value,
                Cause::Spec,
            ),
            (
                "edited and dependency moved",
                Some(inputs("h1", "a1")),
                inputs("h2", "a2"),
                &value,
                Cause::Spec,
            ),
            (
                "dependency moved",
                Some(inputs("h1", "a1")),
                inputs("h1", "a2"),
                &value,
                Cause::Dependency,
            ),
            (
                "changed by hand",
                Some(inputs("h1", "a1")),
                inputs("h1", "a1"),
                &value,
                Cause::Drift,
            ),
            (
                "token due",
                Some(inputs("h1", "a1")),
                inputs("h1", "a1"),
                &token,
                Cause::Renewal,
            ),
            (
                "deleted by hand",
                Some(inputs("h1", "a1")),
                inputs("h1", "a1"),
                &[],
                Cause::Drift,
            ),
        ];
        for (name, last, now, changes, want) in cases {
            assert_eq!(cause(last.as_ref(), &now, changes), want, "{name}");
        }
    }

    #[test]
    fn the_same_dependencies_give_the_same_digest_whatever_their_keys_and_order() {
        use crate::kinds::ObjectKey;
        let role = ObjectKey::new("Role", "exec");
        let pool = ObjectKey::new("UserPool", "pool");
        let arn = Outputs::from([("arn".to_string(), "a1".to_string())]);
        let id = Outputs::from([("id".to_string(), "p1".to_string())]);
        // As a task has them, and as the inventory recorded them.
        let by_key = Inputs::new("h", [(&role, &arn), (&pool, &id)]);
        let (role_s, pool_s) = (role.to_string(), pool.to_string());
        assert_eq!(by_key, Inputs::new("h", [(&pool_s, &id), (&role_s, &arn)]));
        // A different pairing of the same values is a different set.
        assert_ne!(by_key, Inputs::new("h", [(&role, &id), (&pool, &arn)]));
        assert_ne!(by_key, Inputs::new("h", [(&role, &arn)]));
        let none: [(&String, &Outputs); 0] = [];
        assert_ne!(Inputs::new("h", none), Inputs::new("h2", none));
    }
}
