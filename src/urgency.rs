//! Whether the work in progress is something a person is waiting on (an edit of a
//! manifest, a dependency whose outputs changed, a reconcile asked for) rather than a
//! periodic resync. The engine says so for each reconcile it runs; shared resources that
//! queue work (the AWS rate limiter) serve urgent work first, so that an edit is not held
//! behind a fleet's resyncs. Neither side knows about the other: this is all they share.

use std::future::Future;

tokio::task_local! {
    static URGENT: bool;
}

/// Run `work` as urgent (or not): everything it awaits sees [`is_urgent`].
pub async fn run<F: Future>(urgent: bool, work: F) -> F::Output {
    URGENT.scope(urgent, work).await
}

/// Whether the current work was started as urgent (not, outside any [`run`]).
pub fn is_urgent() -> bool {
    URGENT.try_with(|u| *u).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urgency_is_seen_by_what_the_work_awaits_and_nowhere_else() {
        assert!(!is_urgent());
        let inner = async {
            tokio::task::yield_now().await;
            is_urgent()
        };
        assert!(run(true, inner).await);
        assert!(!run(false, async { is_urgent() }).await);
        assert!(!is_urgent());
    }
}
