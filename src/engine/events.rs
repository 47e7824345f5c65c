//! What the controller tells about state changes worth a person's attention (the daemon
//! turns them into notifications). One event per change of state, not per retry: a
//! failure is told once it is terminal or has failed [`FAILURES_BEFORE_ALERT`] times in a
//! row (and again only if its reason changes), its recovery once.

use std::sync::Arc;
use std::time::SystemTime;

use crate::kinds::ObjectKey;

/// A recoverable error is told after this many failures in a row (the first few are
/// usually throttling or eventual consistency, retried away).
pub const FAILURES_BEFORE_ALERT: u32 = 3;

/// A credential is told to be expiring once less than this fraction of its lifetime is
/// left (it should have been renewed long before: a third of it is left at renewal).
pub const EXPIRY_WARNING_FRACTION: f64 = 0.1;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Every object of the revision's load has been reconciled once (or waits on a
    /// dependency that cannot go on).
    RevisionApplied {
        revision: Arc<str>,
        ready: usize,
        failing: usize,
        waiting: usize,
    },
    /// A change made outside the manifests was undone.
    DriftCorrected { key: ObjectKey, fields: Vec<String> },
    /// Reconciles of the object fail: for good (`terminal`), or again and again.
    /// `credential`: the object publishes an expiring credential (a token).
    ReconcileFailed {
        key: ObjectKey,
        reason: String,
        message: String,
        terminal: bool,
        credential: bool,
    },
    /// It reconciles again after a failure that was told.
    Recovered { key: ObjectKey },
    /// The credential it publishes expires soon (less than a tenth of its lifetime left).
    CredentialExpiring {
        key: ObjectKey,
        expires_at: SystemTime,
    },
    /// The mass-deletion guard refused a prune.
    PruneRefused { message: String },
}

/// Where the controller sends its events (it must not block).
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// The object's credential expiry, if its outputs publish one: (issued, expires).
pub fn credential_times(outputs: &crate::kinds::Outputs) -> Option<(u64, u64)> {
    let issued = outputs.get("issuedAtEpoch")?.parse().ok()?;
    let expires = outputs.get("expiresAtEpoch")?.parse().ok()?;
    Some((issued, expires))
}

/// Whether less than [`EXPIRY_WARNING_FRACTION`] of the lifetime is left at `now`
/// (seconds since the epoch).
pub fn expiring(issued: u64, expires: u64, now: u64) -> bool {
    let lifetime = expires.saturating_sub(issued) as f64;
    let left = expires.saturating_sub(now) as f64;
    lifetime > 0.0 && left < lifetime * EXPIRY_WARNING_FRACTION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_is_expiring_in_the_last_tenth_of_its_lifetime() {
        // (issued, expires, now, expiring)
        let cases = [
            (1000, 4600, 1000, false),
            (1000, 4600, 4200, false),
            (1000, 4600, 4240, false), // exactly a tenth left
            (1000, 4600, 4241, true),
            (1000, 4600, 5000, true),  // expired
            (1000, 1000, 1000, false), // no lifetime: nothing to tell
        ];
        for (issued, expires, now, want) in cases {
            assert_eq!(
                expiring(issued, expires, now),
                want,
                "{issued} {expires} {now}"
            );
        }
        let outputs = crate::kinds::Outputs::from([
            ("issuedAtEpoch".to_string(), "10".to_string()),
            ("expiresAtEpoch".to_string(), "20".to_string()),
        ]);
        assert_eq!(credential_times(&outputs), Some((10, 20)));
        assert_eq!(credential_times(&crate::kinds::Outputs::new()), None);
    }
}
