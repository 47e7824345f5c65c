//! Leader election: of the replicas running against one set of manifests, one (the
//! leader) writes to AWS; the others (standbys) observe, so that one of them takes over
//! warm when the leader stops renewing its lease.
//!
//! The lease is one record in a store that offers a conditional write (DynamoDB: see
//! [`dynamodb`]), after the DynamoDB lock client and client-go's `leaderelection`:
//! - every write of the record gives it a new random *version*;
//! - the leader renews by writing it again, on the condition that it still holds the
//!   version it last wrote;
//! - a standby takes the lease over when it has seen the same version for a whole lease
//!   duration, measured on its own clock (clocks of different machines are never
//!   compared), on the condition that the version is still that one.
//!
//! Fencing: the leader may write to AWS only until its last successful renewal's *send
//! time* plus the renew deadline ([`Fence`]). A standby starts counting the lease duration
//! no earlier than it sees that renewal, that is after it was sent, so the leader stops
//! writing at least `duration - renew_deadline` (the margin for clock-rate skew and writes
//! in flight) before anyone can take over. A leader that cannot renew within the deadline
//! steps down to standby.
//!
//! This module knows nothing about AWS: the store is a trait, and the engine hears of
//! changes of role as commands.

pub mod dynamodb;
mod elector;
mod fence;
pub mod kubernetes;

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use elector::Elector;
pub use fence::{Fence, Fenced};

use crate::error::Result;

/// The lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Who holds it; empty once released.
    pub holder: String,
    /// New at every write (the compare-and-swap token).
    pub version: String,
    /// How long a standby waits, after it last saw the version change, before taking over.
    pub duration: Duration,
    /// When the holder last renewed it, by the holder's clock (for people to read; never
    /// used to decide anything).
    pub renewed_at: SystemTime,
    /// When the holder took it, by the holder's clock.
    pub acquired_at: SystemTime,
    /// How many times it changed hands.
    pub transitions: u64,
}

/// What a conditional write of the lease came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    /// Written.
    Done,
    /// The stored record was not the expected one: nothing written.
    Conflict,
}

/// Where the lease lives.
#[async_trait::async_trait]
pub trait LeaseStore: Send + Sync {
    /// The record, read consistently; `None` if there is none.
    async fn read(&self) -> Result<Option<LeaseRecord>>;
    /// Write `next` if the stored record's version is `expected` (`None`: if there is no
    /// record).
    async fn swap(&self, expected: Option<&str>, next: &LeaseRecord) -> Result<Swap>;
    /// For logs and the status: `dynamodb:TABLE/NAME`.
    fn describe(&self) -> String;
}

/// Timings of the lease (client-go's defaults: 15 s, 10 s, 2 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long a lease holds without renewal before a standby may take it.
    pub duration: Duration,
    /// A leader that has not renewed for this long stops writing and steps down.
    pub renew_deadline: Duration,
}

impl Default for LeaseTimings {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
        }
    }
}

/// The least gap between a lease's duration and its renew deadline.
pub const MIN_MARGIN: Duration = Duration::from_secs(1);

impl LeaseTimings {
    /// Both given, checked: the renew deadline must end at least [`MIN_MARGIN`] before
    /// the lease can be taken.
    pub fn new(duration: Duration, renew_deadline: Duration) -> std::result::Result<Self, String> {
        if renew_deadline < Duration::from_millis(500) {
            return Err(format!(
                "--lease-renew-deadline {} is too short: at least 500ms",
                humantime::format_duration(renew_deadline)
            ));
        }
        if duration < renew_deadline + MIN_MARGIN {
            return Err(format!(
                "--lease-duration {} must exceed --lease-renew-deadline {} by at least {}: \
                 the gap is the margin within which a leader that cannot renew has stopped \
                 writing before a standby may take over",
                humantime::format_duration(duration),
                humantime::format_duration(renew_deadline),
                humantime::format_duration(MIN_MARGIN),
            ));
        }
        Ok(Self {
            duration,
            renew_deadline,
        })
    }

    /// How often the leader renews and a standby looks: a fifth of the renew deadline
    /// (2 s at the defaults), so a leader has five tries before its deadline.
    pub fn retry(&self) -> Duration {
        self.renew_deadline / 5
    }

    /// The longest a standby waits, after the last renewal of a leader that died, before
    /// it takes over: a lease duration, plus one period between its looks.
    pub fn takeover_bound(&self) -> Duration {
        self.duration + self.retry()
    }
}

/// This replica's part, as `/status` and `status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    #[serde(rename = "leader")]
    Leader,
    #[serde(rename = "standby")]
    Standby,
}

/// What `/status` says of leader election.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leadership {
    pub role: Role,
    /// This replica.
    pub identity: String,
    /// Who holds the lease, as last seen (none: nobody, or not read yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// When the lease runs out unless renewed, by this replica's clock (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<String>,
    /// Where the lease is kept.
    pub lease: String,
    /// How many times the lease changed hands, as last seen.
    pub transitions: u64,
}

/// An identity for this replica: the pod's name in Kubernetes (`POD_NAME`), else the
/// host's, with a random suffix so that a restarted process is a new holder.
pub fn identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(hostname)
        .unwrap_or_else(|| "replica".into());
    let base: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(40)
        .collect();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{base}-{}", &suffix[..8])
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_keep_a_margin_between_the_deadline_and_the_lease() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // (duration, renew deadline, accepted)
        let cases = [
            (s(15), s(10), true),
            (s(3), s(2), true),
            (s(11), s(10), true),
            (ms(10_999), s(10), false),
            (s(10), s(10), false),
            (s(5), s(10), false),
            (s(2), ms(400), false),
        ];
        for (duration, deadline, ok) in cases {
            assert_eq!(
                LeaseTimings::new(duration, deadline).is_ok(),
                ok,
                "{duration:?} / {deadline:?}"
            );
        }
        assert_eq!(LeaseTimings::default().retry(), s(2));
    }

    #[test]
    fn an_identity_is_new_for_each_process_and_fits_a_user_agent() {
        let (a, b) = (identity(), identity());
        assert_ne!(a, b);
        for id in [a, b] {
            assert!(id.len() <= 49, "{id}");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
                "{id}"
            );
        }
    }
}
