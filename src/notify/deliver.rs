//! One receiver's task: takes its events in order, applies its rate limit, and posts
//! each with retries.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::bucket::Limiter;
use super::render::render;
use super::{Format, Queued, Receiver, Tuning, count, redacted};
use crate::metrics::Metrics;

/// Attempts per event, the first included.
pub const ATTEMPTS: u32 = 5;

/// How long one request may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The delay before the first retry; it doubles at each further one, up to
/// [`BACKOFF_MAX`]. With [`ATTEMPTS`], a receiver gets about 15 s to come back.
pub(super) const BACKOFF: Duration = Duration::from_secs(1);
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The most a receiver's `Retry-After` may make a retry wait: longer, and the events
/// behind it would be stale when they arrive.
pub(super) const RETRY_AFTER_MAX: Duration = Duration::from_secs(60);

/// What one receiver needs to deliver.
pub(super) struct Delivery {
    url: Url,
    /// The receiver as logs name it (see [`redacted`]).
    name: String,
    format: Format,
    client: reqwest::Client,
    instance: Arc<str>,
    metrics: Metrics,
    tuning: Tuning,
}

/// What an answer means for the event.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Delivered,
    /// Worth another attempt, after the receiver's `Retry-After` if it gave one.
    Retry(Option<Duration>),
    /// Another attempt would get the same answer.
    Refused,
}

impl Delivery {
    /// Its HTTP client: the tuning's timeout, no redirects (a redirect would send the
    /// event elsewhere than configured).
    pub(super) fn new(
        receiver: &Receiver,
        instance: Arc<str>,
        metrics: Metrics,
        tuning: Tuning,
    ) -> Result<Self, String> {
        let name = redacted(&receiver.url);
        let url = Url::parse(&receiver.url).map_err(|e| format!("not a valid URL: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(tuning.timeout)
            .connect_timeout(tuning.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("agentcore-controller/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| describe(e, &url))?;
        Ok(Self {
            url,
            name,
            format: receiver.format,
            client,
            instance,
            metrics,
            tuning,
        })
    }

    /// Delivers the events of `queue` until every sender is gone and it is empty.
    pub(super) async fn run(self, mut queue: broadcast::Receiver<Arc<Queued>>) {
        debug!(receiver = %self.name, format = %self.format, "notifying");
        let mut limiter = Limiter::new(self.tuning.burst, self.tuning.refill, Instant::now());
        loop {
            let queued = match queue.recv().await {
                Ok(queued) => queued,
                Err(RecvError::Lagged(n)) => {
                    debug!(receiver = %self.name, dropped = n, "notification queue full");
                    limiter.overflowed(n);
                    count(&self.metrics, "dropped", n);
                    continue;
                }
                Err(RecvError::Closed) => break,
            };
            if !limiter.admit(Instant::now()) {
                count(&self.metrics, "dropped", 1);
                continue;
            }
            let event = &queued.event;
            let body = match render(
                self.format,
                &self.instance,
                event,
                queued.time,
                limiter.dropped(),
            ) {
                Ok(body) => body,
                Err(e) => {
                    warn!(receiver = %self.name, reason = ?event.reason, error = %e, "cannot render a notification");
                    count(&self.metrics, "failed", 1);
                    continue;
                }
            };
            match self.post(body).await {
                Ok(()) => {
                    limiter.delivered();
                    count(&self.metrics, "sent", 1);
                }
                Err(e) => {
                    warn!(receiver = %self.name, reason = ?event.reason, error = %e, "notification not delivered");
                    count(&self.metrics, "failed", 1);
                }
            }
        }
        debug!(receiver = %self.name, "notifier stopped");
    }

    /// Posts `body`, retrying what may succeed later. The error names no URL.
    pub(super) async fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let mut attempt = 1;
        loop {
            let sent = self
                .client
                .post(self.url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let (why, wait) = match sent {
                Ok(response) => match answer(response.status(), response.headers(), &self.tuning) {
                    Answer::Delivered => return Ok(()),
                    Answer::Retry(wait) => (format!("HTTP {}", response.status()), wait),
                    Answer::Refused => {
                        return Err(format!("HTTP {}, not retried", response.status()));
                    }
                },
                Err(e) => (describe(e, &self.url), None),
            };
            if attempt >= self.tuning.attempts {
                return Err(format!("{why} (gave up after {attempt} attempts)"));
            }
            let wait = wait.unwrap_or_else(|| backoff(attempt, &self.tuning));
            debug!(receiver = %self.name, attempt, error = %why, wait = ?wait, "notification not delivered yet");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// Delivered (2xx), worth retrying (429, 5xx) or refused (the rest).
fn answer(status: StatusCode, headers: &HeaderMap, tuning: &Tuning) -> Answer {
    if status.is_success() {
        return Answer::Delivered;
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        let asked = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => retry_after(headers),
            _ => None,
        };
        return Answer::Retry(asked.map(|d| d.min(tuning.retry_after_max)));
    }
    Answer::Refused
}

/// A `Retry-After` in seconds (its HTTP-date form is not honoured: the backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The delay after failed attempt `attempt` (1-based): the base, doubled at each
/// further attempt, at most the maximum.
fn backoff(attempt: u32, tuning: &Tuning) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    tuning
        .backoff
        .checked_mul(factor)
        .unwrap_or(tuning.backoff_max)
        .min(tuning.backoff_max)
}

/// A client error in words, without the URL (it may be a secret): what went wrong and
/// why, down the error's sources.
fn describe(e: reqwest::Error, url: &Url) -> String {
    if e.is_timeout() {
        return "timed out".to_string();
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    // Should a cause quote the URL after all, it does not get out.
    text.replace(url.as_str(), &redacted(url.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuning() -> Tuning {
        Tuning::default()
    }

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, retry_after.parse().expect("header value"));
        h
    }

    #[test]
    fn backoff_doubles_from_one_second_up_to_thirty() {
        let delays: Vec<u64> = (1..=8).map(|a| backoff(a, &tuning()).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX, &tuning()), BACKOFF_MAX);
    }

    #[test]
    fn answers_decide_between_done_retry_and_refused() {
        let none = HeaderMap::new();
        let secs = |s| Some(Duration::from_secs(s));
        // (status, Retry-After, answer)
        let cases = [
            (200, None, Answer::Delivered),
            (204, None, Answer::Delivered),
            (500, None, Answer::Retry(None)),
            (502, None, Answer::Retry(None)),
            (503, None, Answer::Retry(None)),
            (429, None, Answer::Retry(None)),
            (429, Some("7"), Answer::Retry(secs(7))),
            (503, Some(" 12 "), Answer::Retry(secs(12))),
            (503, Some("3600"), Answer::Retry(secs(60))), // capped
            (429, Some("0"), Answer::Retry(secs(0))),
            (500, Some("7"), Answer::Retry(None)), // only 429 and 503 say when
            (
                429,
                Some("Wed, 21 Oct 2015 07:28:00 GMT"),
                Answer::Retry(None),
            ),
            (429, Some("-1"), Answer::Retry(None)),
            (400, None, Answer::Refused),
            (401, None, Answer::Refused),
            (404, Some("7"), Answer::Refused),
            (301, None, Answer::Refused),
        ];
        for (status, after, expected) in cases {
            let status = StatusCode::from_u16(status).expect("status");
            let h = after.map_or_else(|| none.clone(), headers);
            assert_eq!(
                answer(status, &h, &tuning()),
                expected,
                "{status} {after:?}"
            );
        }
    }
}
