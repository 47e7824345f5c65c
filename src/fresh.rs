//! Whether the work in progress must read the cloud as it is now, not as a listing or a
//! kept reading last showed it. A teardown decides from what it reads whether a resource
//! is still the controller's to delete: someone may have taken the owner tag off a
//! moment ago, after the listing that serves resyncs was taken. Inside [`reading`],
//! kept readings ([`crate::memo`]) are not used and each kind reads ownership directly.

use std::future::Future;

tokio::task_local! {
    static FRESH: ();
}

/// Run `work` reading fresh: everything it awaits sees [`is_fresh`].
pub async fn reading<F: Future>(work: F) -> F::Output {
    FRESH.scope((), work).await
}

/// Whether the current work must read fresh (not, outside any [`reading`]).
pub fn is_fresh() -> bool {
    FRESH.try_with(|_| ()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fresh_is_seen_by_what_the_work_awaits_and_nowhere_else() {
        assert!(!is_fresh());
        let inner = async {
            tokio::task::yield_now().await;
            is_fresh()
        };
        assert!(reading(inner).await);
        assert!(!is_fresh());
    }
}
