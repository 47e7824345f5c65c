//! The elector: takes the lease, renews it, gives it up; moves the fence and publishes
//! this replica's role. One step at a time ([`Elector::tick`]), so that tests drive it on
//! paused time.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use super::{Fence, Leadership, LeaseRecord, LeaseStore, LeaseTimings, Role, Swap};
use crate::engine::status::rfc3339;

/// The lease as this replica holds it.
#[derive(Debug, Clone)]
struct Held {
    record: LeaseRecord,
    /// When the write that made `record` was sent.
    sent: Instant,
}

/// Another holder's record, and since when (by this replica's clock) it has not changed.
#[derive(Debug, Clone)]
struct Observed {
    record: LeaseRecord,
    since: Instant,
}

pub struct Elector {
    store: Arc<dyn LeaseStore>,
    timings: LeaseTimings,
    identity: String,
    fence: Fence,
    held: Option<Held>,
    observed: Option<Observed>,
    /// Renewals whose answers were lost: any of them may have landed (version, send time).
    pending: Vec<(String, Instant)>,
    status: watch::Sender<Leadership>,
    /// The store's last error was logged (logged again once it recovered).
    failing: bool,
}

impl Elector {
    pub fn new(
        store: Arc<dyn LeaseStore>,
        timings: LeaseTimings,
        identity: String,
        fence: Fence,
    ) -> (Self, watch::Receiver<Leadership>) {
        fence.revoke();
        let (status, rx) = watch::channel(Leadership {
            role: Role::Standby,
            identity: identity.clone(),
            holder: None,
            lease_expires_at: None,
            lease: store.describe(),
            transitions: 0,
        });
        let elector = Self {
            store,
            timings,
            identity,
            fence,
            held: None,
            observed: None,
            pending: Vec::new(),
            status,
            failing: false,
        };
        (elector, rx)
    }

    /// Take part until `stop` fires (or its sender is dropped), then give the lease up if
    /// held, so that a standby takes over at once.
    pub async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        info!(lease = %self.store.describe(), identity = %self.identity, "leader election: standing by");
        loop {
            self.tick().await;
            tokio::select! {
                _ = tokio::time::sleep(self.timings.retry()) => {}
                _ = &mut stop => break,
            }
        }
        self.release().await;
    }

    /// One step: renew the lease if held, else look at it and take it if it is free or
    /// has not been renewed for a lease duration.
    pub async fn tick(&mut self) {
        match self.held.take() {
            Some(held) => self.renew(held).await,
            None => self.look().await,
        }
        self.publish();
    }

    fn new_version() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    async fn renew(&mut self, held: Held) {
        let sent = Instant::now();
        let next = LeaseRecord {
            version: Self::new_version(),
            renewed_at: SystemTime::now(),
            ..held.record.clone()
        };
        match self.store.swap(Some(&held.record.version), &next).await {
            Ok(Swap::Done) => self.hold(next, sent),
            Ok(Swap::Conflict) => match self.store.read().await {
                // A renewal whose answer was lost did land.
                Ok(Some(r)) if r.holder == self.identity => {
                    match self.pending.iter().find(|(v, _)| *v == r.version) {
                        Some(&(_, landed)) => self.hold(r, landed),
                        None => self.step_down(&held, "the lease changed under this replica"),
                    }
                }
                Ok(r) => {
                    let by = r.map(|r| r.holder).filter(|h| !h.is_empty());
                    self.step_down(
                        &held,
                        &format!(
                            "the lease was taken by {}",
                            by.as_deref().unwrap_or("nobody")
                        ),
                    );
                }
                Err(e) => {
                    warn!(error = %e.message, "cannot read the leader lease back");
                    self.keep_or_step_down(held);
                }
            },
            Err(e) => {
                warn!(error = %e.message, "cannot renew the leader lease");
                self.pending.push((next.version, sent));
                self.keep_or_step_down(held);
            }
        }
    }

    /// After a failed renewal: still the leader until the renew deadline (the fence runs
    /// out then by itself), then a standby.
    fn keep_or_step_down(&mut self, held: Held) {
        if Instant::now() >= held.sent + self.timings.renew_deadline {
            self.step_down(
                &held,
                "the lease could not be renewed within the renew deadline",
            );
        } else {
            self.held = Some(held);
        }
    }

    fn hold(&mut self, record: LeaseRecord, sent: Instant) {
        self.fence.grant(sent + self.timings.renew_deadline);
        self.held = Some(Held { record, sent });
        self.pending.clear();
        self.observed = None;
    }

    fn step_down(&mut self, held: &Held, why: &str) {
        self.fence.revoke();
        self.held = None;
        self.pending.clear();
        self.observed = None;
        warn!(
            lease = %self.store.describe(),
            held_since = %rfc3339(held.record.acquired_at),
            "leadership lost: {why}; standing by (no more AWS writes)"
        );
    }

    async fn look(&mut self) {
        let record = match self.store.read().await {
            Ok(r) => {
                if std::mem::take(&mut self.failing) {
                    info!("the leader lease can be read again");
                }
                r
            }
            Err(e) => {
                if !std::mem::replace(&mut self.failing, true) {
                    warn!(error = %e.message, "cannot read the leader lease");
                }
                return;
            }
        };
        let now = Instant::now();
        let expected = match &record {
            None => Some(None),
            Some(r) if r.holder.is_empty() || r.holder == self.identity => {
                Some(Some(r.version.clone()))
            }
            Some(r) => match &self.observed {
                Some(o) if o.record.version == r.version => {
                    (now.duration_since(o.since) >= r.duration).then(|| Some(r.version.clone()))
                }
                _ => {
                    self.observed = Some(Observed {
                        record: r.clone(),
                        since: now,
                    });
                    None
                }
            },
        };
        let Some(expected) = expected else {
            return;
        };
        let wall = SystemTime::now();
        let transitions = match &record {
            None => 0,
            Some(r) if r.holder == self.identity => r.transitions,
            Some(r) => r.transitions + 1,
        };
        let next = LeaseRecord {
            holder: self.identity.clone(),
            version: Self::new_version(),
            duration: self.timings.duration,
            renewed_at: wall,
            acquired_at: wall,
            transitions,
        };
        let sent = Instant::now();
        match self.store.swap(expected.as_deref(), &next).await {
            Ok(Swap::Done) => {
                let before = record
                    .as_ref()
                    .map(|r| r.holder.clone())
                    .filter(|h| !h.is_empty() && *h != self.identity);
                info!(
                    lease = %self.store.describe(),
                    previous = before.as_deref().unwrap_or("none"),
                    "leadership acquired: this replica writes to AWS now"
                );
                self.hold(next, sent);
            }
            // Another standby was quicker.
            Ok(Swap::Conflict) => self.observed = None,
            // If it landed, the next look finds this replica named and takes it again.
            Err(e) => warn!(error = %e.message, "cannot take the leader lease"),
        }
    }

    /// Give the lease up (on shutdown, after the last write).
    pub async fn release(&mut self) {
        self.fence.revoke();
        let Some(held) = self.held.take() else {
            return;
        };
        let next = LeaseRecord {
            holder: String::new(),
            version: Self::new_version(),
            renewed_at: SystemTime::now(),
            ..held.record.clone()
        };
        match self.store.swap(Some(&held.record.version), &next).await {
            Ok(Swap::Done) => info!("leader lease released"),
            Ok(Swap::Conflict) => info!("leader lease not released: it had changed hands"),
            Err(e) => {
                warn!(error = %e.message, "cannot release the leader lease; a standby takes it over when it runs out")
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let wall = |at: Instant| {
            let now = Instant::now();
            let wall = SystemTime::now();
            rfc3339(match at.checked_duration_since(now) {
                Some(ahead) => wall + ahead,
                None => wall - now.duration_since(at),
            })
        };
        let status = match (&self.held, &self.observed) {
            (Some(h), _) => Leadership {
                role: Role::Leader,
                identity: self.identity.clone(),
                holder: Some(self.identity.clone()),
                lease_expires_at: Some(wall(h.sent + h.record.duration)),
                lease: self.store.describe(),
                transitions: h.record.transitions,
            },
            (None, Some(o)) => Leadership {
                role: Role::Standby,
                identity: self.identity.clone(),
                holder: Some(o.record.holder.clone()),
                lease_expires_at: Some(wall(o.since + o.record.duration)),
                lease: self.store.describe(),
                transitions: o.record.transitions,
            },
            (None, None) => Leadership {
                role: Role::Standby,
                identity: self.identity.clone(),
                holder: None,
                lease_expires_at: None,
                lease: self.store.describe(),
                transitions: self.status.borrow().transitions,
            },
        };
        self.status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }

    /// The role right now.
    pub fn is_leader(&self) -> bool {
        self.held.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Reason, ReconcileError, Result};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// A lease store in memory, which can fail every call or lose a write's answer.
    #[derive(Default)]
    struct MemoryStore {
        record: Mutex<Option<LeaseRecord>>,
        down: AtomicBool,
        lose_answers: AtomicBool,
    }

    fn unreachable() -> ReconcileError {
        ReconcileError::recoverable(Reason::Unreachable, "store down")
    }

    #[async_trait::async_trait]
    impl LeaseStore for MemoryStore {
        async fn read(&self) -> Result<Option<LeaseRecord>> {
            if self.down.load(Ordering::SeqCst) {
                return Err(unreachable());
            }
            Ok(self.record.lock().expect("lock").clone())
        }

        async fn swap(&self, expected: Option<&str>, next: &LeaseRecord) -> Result<Swap> {
            if self.down.load(Ordering::SeqCst) {
                return Err(unreachable());
            }
            let mut r = self.record.lock().expect("lock");
            if r.as_ref().map(|r| r.version.as_str()) != expected {
                return Ok(Swap::Conflict);
            }
            *r = Some(next.clone());
            if self.lose_answers.load(Ordering::SeqCst) {
                return Err(unreachable());
            }
            Ok(Swap::Done)
        }

        fn describe(&self) -> String {
            "memory".into()
        }
    }

    const STEP: Duration = Duration::from_millis(100);

    fn timings() -> LeaseTimings {
        LeaseTimings::new(Duration::from_secs(3), Duration::from_secs(2)).expect("timings")
    }

    /// Replicas sharing one store, each ticking every retry period (staggered), on paused
    /// time, with the invariant checked at every step: at most one may write.
    struct Cluster {
        store: Arc<MemoryStore>,
        replicas: Vec<Replica>,
    }

    struct Replica {
        elector: Elector,
        fence: Fence,
        next_tick: Instant,
        alive: bool,
    }

    impl Cluster {
        fn new(n: usize) -> Self {
            let store = Arc::new(MemoryStore::default());
            let replicas = (0..n)
                .map(|i| {
                    let fence = Fence::default();
                    let (elector, _) = Elector::new(
                        store.clone(),
                        timings(),
                        format!("replica-{i}"),
                        fence.clone(),
                    );
                    Replica {
                        elector,
                        fence,
                        next_tick: Instant::now() + STEP * i as u32,
                        alive: true,
                    }
                })
                .collect();
            Self { store, replicas }
        }

        fn writers(&self) -> Vec<usize> {
            (0..self.replicas.len())
                .filter(|&i| self.replicas[i].fence.may_write())
                .collect()
        }

        fn leaders(&self) -> Vec<usize> {
            (0..self.replicas.len())
                .filter(|&i| self.replicas[i].alive && self.replicas[i].elector.is_leader())
                .collect()
        }

        /// Run for `d`; returns the first time any replica other than `except` became
        /// leader (since the start of the run).
        async fn run(&mut self, d: Duration, except: Option<usize>) -> Option<Duration> {
            let start = Instant::now();
            let mut first = None;
            while Instant::now() < start + d {
                for r in self.replicas.iter_mut().filter(|r| r.alive) {
                    if Instant::now() >= r.next_tick {
                        r.elector.tick().await;
                        r.next_tick = Instant::now() + timings().retry();
                    }
                }
                let writers = self.writers();
                assert!(writers.len() <= 1, "two writers at once: {writers:?}");
                if first.is_none() && self.leaders().iter().any(|&l| Some(l) != except) {
                    first = Some(start.elapsed());
                }
                tokio::time::advance(STEP).await;
            }
            first
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_leader_holds_while_it_renews_and_a_standby_takes_over_when_it_dies() {
        let mut c = Cluster::new(3);
        c.run(Duration::from_secs(1), None).await;
        assert_eq!(c.leaders(), vec![0], "the first to look takes a free lease");
        // It renews: nobody takes over, for many lease durations.
        let other = c.run(Duration::from_secs(60), Some(0)).await;
        assert_eq!(other, None);
        assert_eq!(c.writers(), vec![0]);
        // It dies (no more renewals): its fence lapses by itself; one standby takes over
        // within a lease duration and a retry period of the last renewal.
        c.replicas[0].alive = false;
        let took = c
            .run(Duration::from_secs(10), Some(0))
            .await
            .expect("a takeover");
        assert!(took <= timings().takeover_bound(), "took {took:?}");
        assert!(
            took >= timings().duration - timings().retry(),
            "took {took:?}"
        );
        assert_eq!(c.leaders().len(), 1);
        assert!(!c.replicas[0].fence.may_write());
        let record = c
            .store
            .record
            .lock()
            .expect("lock")
            .clone()
            .expect("record");
        assert_eq!(record.transitions, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_cannot_renew_stops_writing_at_its_deadline_before_anyone_takes_over() {
        let mut c = Cluster::new(2);
        c.run(Duration::from_secs(1), None).await;
        assert_eq!(c.leaders(), vec![0]);
        // The store stops answering replica 0 only: model it as replica 0 no longer
        // ticking its renewals through, while the store stays up for replica 1.
        let last_renewal = c.replicas[0].elector.held.as_ref().expect("held").sent;
        c.replicas[0].alive = false;
        let mut lapsed_at = None;
        let start = Instant::now();
        while Instant::now() < start + Duration::from_secs(6) {
            if lapsed_at.is_none() && !c.replicas[0].fence.may_write() {
                lapsed_at = Some(Instant::now());
            }
            c.run(STEP, Some(0)).await;
        }
        let lapsed_at = lapsed_at.expect("the fence lapsed");
        assert!(lapsed_at <= last_renewal + timings().renew_deadline + STEP);
        assert_eq!(c.leaders(), vec![1]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_outage_makes_the_leader_step_down_and_nobody_write() {
        let mut c = Cluster::new(2);
        c.run(Duration::from_secs(1), None).await;
        c.store.down.store(true, Ordering::SeqCst);
        c.run(timings().renew_deadline + Duration::from_secs(1), None)
            .await;
        assert!(c.writers().is_empty(), "nobody may write during the outage");
        assert!(c.leaders().is_empty(), "the leader stepped down");
        c.store.down.store(false, Ordering::SeqCst);
        c.run(Duration::from_secs(10), None).await;
        assert_eq!(c.leaders().len(), 1, "one leader after the outage");
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_whose_answer_was_lost_keeps_the_lease() {
        let mut c = Cluster::new(2);
        c.run(Duration::from_secs(1), None).await;
        assert_eq!(c.leaders(), vec![0]);
        // Every write lands but its answer is lost, for a while shorter than the deadline.
        c.store.lose_answers.store(true, Ordering::SeqCst);
        c.run(Duration::from_millis(900), Some(0)).await;
        c.store.lose_answers.store(false, Ordering::SeqCst);
        let other = c.run(Duration::from_secs(20), Some(0)).await;
        assert_eq!(other, None, "nobody else took over");
        assert_eq!(c.leaders(), vec![0]);
        assert!(c.replicas[0].fence.may_write());
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_lease_is_taken_at_the_next_look() {
        let mut c = Cluster::new(2);
        c.run(Duration::from_secs(1), None).await;
        c.replicas[0].elector.release().await;
        c.replicas[0].alive = false;
        assert!(!c.replicas[0].fence.may_write());
        let took = c.run(Duration::from_secs(5), Some(0)).await.expect("taken");
        assert!(took <= timings().retry() + STEP, "took {took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_status_names_the_role_and_the_holder() {
        let mut c = Cluster::new(2);
        let rx = c.replicas[1].elector.status.subscribe();
        c.run(Duration::from_secs(1), None).await;
        let seen = rx.borrow().clone();
        assert_eq!(seen.role, Role::Standby);
        assert_eq!(seen.holder.as_deref(), Some("replica-0"));
        assert!(seen.lease_expires_at.is_some());
        let rx0 = c.replicas[0].elector.status.subscribe();
        assert_eq!(rx0.borrow().role, Role::Leader);
    }
}
