//! When an object is looked at again after a reconcile (after kube-runtime's
//! `error_policy(obj, &err, ctx) -> Action`): the answer to a finished reconcile is the
//! next action, decided here from the outcome alone, so that the rules read in one place.

use std::time::Duration;

use super::backoff::Backoff;
use crate::error::ReconcileError;
use crate::kinds::Readiness;

/// What happens next to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Converged (or AWS reports it failed, which only a change fixes): look again at
    /// the periodic resync, or sooner when the kind asks (a token's renewal time).
    Resync(Duration),
    /// AWS is still working on it: poll, backing off.
    Poll(Duration),
    /// A recoverable error: retry after the backoff.
    Retry(Duration),
    /// A terminal error: wait for the manifest to change, but still look again at the
    /// resync, in case the cause was outside the manifest (permissions, a name freed).
    AwaitChange(Duration),
}

impl Next {
    pub fn after(self) -> Duration {
        match self {
            Next::Resync(d) | Next::Poll(d) | Next::Retry(d) | Next::AwaitChange(d) => d,
        }
    }
}

/// The timings the policy works with, for one object.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// This object's resync period (jitter applied).
    pub resync: Duration,
    pub retry: Backoff,
    pub poll: Backoff,
    /// Jitter unit in [0, 1) for the backoffs.
    pub jitter: f64,
}

/// After a reconcile that ended in `readiness`; `polls` is how many polls in a row
/// came before it.
pub fn success_policy(
    readiness: &Readiness,
    requeue_after: Option<Duration>,
    polls: u32,
    t: &Timings,
) -> Next {
    match readiness {
        Readiness::Ready => Next::Resync(requeue_after.map_or(t.resync, |r| r.min(t.resync))),
        Readiness::Progressing(_) => Next::Poll(t.poll.delay(polls, t.jitter)),
        Readiness::Failed(_) => Next::Resync(t.resync),
    }
}

/// After a reconcile that failed with `err`; `retries` is how many failures in a row
/// came before it. A prune is retried whatever the error: the resource must go.
pub fn error_policy(err: &ReconcileError, pruning: bool, retries: u32, t: &Timings) -> Next {
    if err.is_terminal() && !pruning {
        return Next::AwaitChange(t.resync);
    }
    // Back off, but never past a deadline the error names (a token's expiry).
    let backoff = t.retry.delay(retries, t.jitter);
    Next::Retry(err.retry_before.map_or(backoff, |cap| backoff.min(cap)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::Reason;

    fn timings() -> Timings {
        Timings {
            resync: Duration::from_secs(300),
            retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            poll: Backoff::new(Duration::from_secs(1), Duration::from_secs(15)),
            jitter: 1.0,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn after_success() {
        let cases = [
            (Readiness::Ready, None, 0, Next::Resync(secs(300))),
            (Readiness::Ready, Some(secs(60)), 0, Next::Resync(secs(60))),
            (
                Readiness::Ready,
                Some(secs(900)),
                0,
                Next::Resync(secs(300)),
            ),
            (
                Readiness::Progressing("x".into()),
                None,
                0,
                Next::Poll(secs(1)),
            ),
            (
                Readiness::Progressing("x".into()),
                None,
                3,
                Next::Poll(secs(8)),
            ),
            (
                Readiness::Progressing("x".into()),
                None,
                9,
                Next::Poll(secs(15)),
            ),
            (
                Readiness::Failed("x".into()),
                None,
                0,
                Next::Resync(secs(300)),
            ),
        ];
        for (readiness, requeue, polls, want) in cases {
            let got = success_policy(&readiness, requeue, polls, &timings());
            assert_eq!(got, want, "{readiness:?} {requeue:?} {polls}");
        }
    }

    #[test]
    fn after_an_error() {
        let terminal = ReconcileError::terminal(Reason::InvalidValue, "x");
        let throttled = ReconcileError::recoverable(Reason::Aws("Throttling".into()), "x");
        let expiring = ReconcileError::recoverable(Reason::Aws("NotAuthorized".into()), "x")
            .retry_before(secs(5));
        let waiting = ReconcileError::waiting(Reason::DependencyNotReady, "x");
        let cases = [
            (&terminal, false, 4, Next::AwaitChange(secs(300))),
            (&terminal, true, 2, Next::Retry(secs(4))),
            (&throttled, false, 0, Next::Retry(secs(1))),
            (&throttled, false, 5, Next::Retry(secs(32))),
            (&throttled, false, 20, Next::Retry(secs(300))),
            (&expiring, false, 5, Next::Retry(secs(5))),
            (&waiting, false, 1, Next::Retry(secs(2))),
        ];
        for (err, pruning, retries, want) in cases {
            let got = error_policy(err, pruning, retries, &timings());
            assert_eq!(
                got, want,
                "{} pruning={pruning} retries={retries}",
                err.reason
            );
        }
    }
}
