//! The fence: whether this replica may write to AWS now. Every AWS client asks it before
//! each attempt of a write (see [`crate::aws`]); the elector moves its deadline.

use std::sync::{Arc, Mutex};

use tokio::time::Instant;

/// Until when this replica may write. Cheap to clone; without leader election there is
/// no fence at all (the clients are built without one).
#[derive(Debug, Clone, Default)]
pub struct Fence {
    until: Arc<Mutex<Option<Instant>>>,
}

/// A write refused by the fence: the error the AWS clients return for it.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "refused locally: this replica does not hold a valid leader lease, so it may not write to AWS"
)]
pub struct Fenced;

impl Fence {
    /// Writes are allowed until `until` (a renewal's send time plus the renew deadline).
    pub fn grant(&self, until: Instant) {
        if let Ok(mut u) = self.until.lock() {
            *u = Some(until);
        }
    }

    /// No more writes.
    pub fn revoke(&self) {
        if let Ok(mut u) = self.until.lock() {
            *u = None;
        }
    }

    pub fn may_write(&self) -> bool {
        self.until
            .lock()
            .ok()
            .and_then(|u| *u)
            .is_some_and(|until| Instant::now() < until)
    }

    /// Ok, or the error a refused write gets.
    pub fn check(&self) -> Result<(), Fenced> {
        if self.may_write() {
            Ok(())
        } else {
            Err(Fenced)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_grant_lapses_at_its_deadline_and_a_revocation_is_at_once() {
        let fence = Fence::default();
        assert!(!fence.may_write(), "a new fence allows nothing");
        fence.grant(Instant::now() + Duration::from_secs(2));
        assert!(fence.may_write());
        tokio::time::advance(Duration::from_millis(1999)).await;
        assert!(fence.check().is_ok());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(fence.check().is_err(), "lapsed at the deadline");
        fence.grant(Instant::now() + Duration::from_secs(2));
        assert!(fence.clone().may_write(), "clones share the deadline");
        fence.revoke();
        assert!(!fence.may_write());
    }
}
