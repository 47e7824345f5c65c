//! Containers and what stays inside them.
//!
//! Some resources live inside another (a user in its pool, an image in its repository;
//! see [`crate::kinds::Kind::CONTAINED_IN`]). Deleting the container takes its contents
//! with it, or fails while they are there (ECR refuses to delete a repository that holds
//! images). So a deletion policy of Retain on something inside decides for its container
//! too: a container is deleted only when nothing that stays is inside it. Otherwise it is
//! kept, and the report says which of its contents kept it.

use crate::kinds::{ObjectKey, Teardown};

/// Whether a teardown outcome leaves the resource in place (and so in its container).
pub fn stays(outcome: Teardown) -> bool {
    matches!(outcome, Teardown::Retained | Teardown::NotOwned)
}

/// Why a container stays although its own policy is Delete: the contents that stay
/// (`None` when nothing does, and it may go).
pub fn kept_by(kept: &[ObjectKey]) -> Option<String> {
    let (first, rest) = kept.split_first()?;
    let what = if rest.is_empty() {
        format!("{first}, which stays,")
    } else {
        let names: Vec<String> = kept.iter().map(|k| k.to_string()).collect();
        format!("{}, which stay,", names.join(", "))
    };
    Some(format!(
        "kept: it holds {what} and deleting it would take them along or fail; \
         set agentcore.dev/deletion-policy: Delete on what it holds to delete both"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_that_stay() {
        let cases = [
            (Teardown::Deleted, false),
            (Teardown::Absent, false),
            (Teardown::Retained, true),
            (Teardown::NotOwned, true),
        ];
        for (outcome, want) in cases {
            assert_eq!(stays(outcome), want, "{outcome:?}");
        }
    }

    #[test]
    fn a_container_is_kept_by_what_stays_inside() {
        let image = ObjectKey::new("Image", "img");
        let user = ObjectKey::new("User", "u");
        let cases: [(&[ObjectKey], Option<&str>); 3] = [
            (&[], None),
            (
                std::slice::from_ref(&image),
                Some("kept: it holds Image/img, which stays,"),
            ),
            (
                &[image.clone(), user.clone()],
                Some("kept: it holds Image/img, User/u, which stay,"),
            ),
        ];
        for (kept, want) in cases {
            let got = kept_by(kept);
            match want {
                None => assert_eq!(got, None),
                Some(w) => assert!(got.as_deref().is_some_and(|g| g.starts_with(w)), "{got:?}"),
            }
        }
    }
}
