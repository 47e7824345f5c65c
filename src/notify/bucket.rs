//! The rate limit of one receiver, and the count of what it dropped since it last
//! delivered.

use std::time::Duration;

use tokio::time::Instant;

/// Events a receiver may get at once, after a quiet time: enough for a short incident
/// (a revision failing on a few objects) to arrive whole.
pub const BURST: u32 = 10;

/// One more event allowed every this long: at most ten a minute in a long incident,
/// which people can still read, and which stays under chat services' webhook limits
/// (Slack allows about one message a second).
pub const REFILL: Duration = Duration::from_secs(6);

/// A token bucket counted in whole tokens, so that its arithmetic is exact: `burst`
/// tokens at most, one more every `refill`.
#[derive(Debug)]
pub(super) struct TokenBucket {
    burst: u32,
    refill: Duration,
    tokens: u32,
    /// Since when the next token has been accruing (now, while the bucket is full).
    since: Instant,
}

impl TokenBucket {
    /// A full bucket. At least one token; a zero `refill` means no limit.
    pub(super) fn new(burst: u32, refill: Duration, now: Instant) -> Self {
        let burst = burst.max(1);
        Self {
            burst,
            refill,
            tokens: burst,
            since: now,
        }
    }

    /// Takes a token if there is one.
    pub(super) fn try_take(&mut self, now: Instant) -> bool {
        self.top_up(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    fn top_up(&mut self, now: Instant) {
        let missing = self.burst - self.tokens;
        if missing == 0 || self.refill.is_zero() {
            self.tokens = self.burst;
            self.since = now;
            return;
        }
        let accrued = now.saturating_duration_since(self.since).as_nanos() / self.refill.as_nanos();
        match u32::try_from(accrued) {
            Ok(n) if n < missing => {
                self.tokens += n;
                // The part of a token accrued so far counts towards the next one.
                self.since += self.refill * n;
            }
            _ => {
                self.tokens = self.burst;
                self.since = now;
            }
        }
    }
}

/// Events a receiver dropped since it last delivered one, by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Over the rate limit.
    pub rate_limit: u64,
    /// Pushed out of a full queue by newer events.
    pub queue_full: u64,
}

impl Dropped {
    pub fn total(&self) -> u64 {
        self.rate_limit + self.queue_full
    }
}

/// A receiver's rate limit, and what it dropped, to be told with the next event it sends.
#[derive(Debug)]
pub(super) struct Limiter {
    bucket: TokenBucket,
    dropped: Dropped,
}

impl Limiter {
    pub(super) fn new(burst: u32, refill: Duration, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(burst, refill, now),
            dropped: Dropped::default(),
        }
    }

    /// Whether an event may go out now; if not, it counts as dropped.
    pub(super) fn admit(&mut self, now: Instant) -> bool {
        let admitted = self.bucket.try_take(now);
        if !admitted {
            self.dropped.rate_limit += 1;
        }
        admitted
    }

    /// `n` events fell out of the full queue.
    pub(super) fn overflowed(&mut self, n: u64) {
        self.dropped.queue_full += n;
    }

    /// What was dropped since the last delivery: the next event sent says so.
    pub(super) fn dropped(&self) -> Dropped {
        self.dropped
    }

    /// An event went out, saying what was dropped before it.
    pub(super) fn delivered(&mut self) {
        self.dropped = Dropped::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    /// Takes tokens until refused; how many it got.
    fn drain(bucket: &mut TokenBucket) -> u32 {
        let mut n = 0;
        while bucket.try_take(Instant::now()) {
            n += 1;
            assert!(n <= 1000, "the bucket never runs dry");
        }
        n
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_gives_a_burst_then_one_token_per_refill() {
        let mut bucket = TokenBucket::new(BURST, REFILL, Instant::now());
        // (wait before draining in ms, tokens then available)
        let steps = [
            (0, 10),       // starts full
            (0, 0),        // and is empty after the burst
            (5_999, 0),    // not yet a whole token
            (1, 1),        // 6 s: one
            (3_000, 0),    // half a token …
            (3_000, 1),    // … and the other half
            (12_000, 2),   // two refills
            (8_999, 1),    // one, and 2.999 s towards the next …
            (3_001, 1),    // … which the next 3.001 s complete
            (600_000, 10), // a long quiet time fills it to the burst, no more
            (59_999, 9),
            (1, 1),
        ];
        for (i, (wait, available)) in steps.into_iter().enumerate() {
            advance(Duration::from_millis(wait)).await;
            assert_eq!(drain(&mut bucket), available, "step {i}: after {wait} ms");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_accrues_nothing() {
        let mut bucket = TokenBucket::new(2, REFILL, Instant::now());
        advance(Duration::from_secs(5)).await;
        assert_eq!(drain(&mut bucket), 2);
        // The refill clock started when the first token was taken, not at creation.
        advance(Duration::from_secs(5)).await;
        assert_eq!(drain(&mut bucket), 0);
        advance(Duration::from_secs(1)).await;
        assert_eq!(drain(&mut bucket), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn degenerate_settings_still_work() {
        let mut unlimited = TokenBucket::new(3, Duration::ZERO, Instant::now());
        for _ in 0..100 {
            assert!(unlimited.try_take(Instant::now()));
        }
        let mut one = TokenBucket::new(0, REFILL, Instant::now());
        assert_eq!(drain(&mut one), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_counts_what_it_drops_until_a_delivery() {
        let mut limiter = Limiter::new(2, REFILL, Instant::now());
        let admitted: Vec<bool> = (0..5).map(|_| limiter.admit(Instant::now())).collect();
        assert_eq!(admitted, [true, true, false, false, false]);
        limiter.overflowed(4);
        assert_eq!(
            limiter.dropped(),
            Dropped {
                rate_limit: 3,
                queue_full: 4
            }
        );
        assert_eq!(limiter.dropped().total(), 7);
        advance(REFILL).await;
        assert!(limiter.admit(Instant::now()));
        // Not delivered (yet): the count stands, for the next event to tell.
        assert_eq!(limiter.dropped().total(), 7);
        limiter.delivered();
        assert_eq!(limiter.dropped(), Dropped::default());
    }
}
