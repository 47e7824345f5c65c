//! Notifications: events the daemon posts to webhook receivers (`--notify URL`,
//! `--notify-format json|slack`).
//!
//! Telling people is never allowed to hold up the work it reports on. [`Notifier::send`]
//! is synchronous and returns at once: it decides whether the event is news (below), and
//! if so puts it on every receiver's queue. Each receiver has its own task, HTTP client,
//! bounded queue ([`QUEUE`] events) and rate limit, so a receiver that is slow or down
//! loses its own events (the oldest queued first) and delays nobody else.
//!
//! # One event per state change
//!
//! A failing object fails again at every retry; its owners want to hear it once. The
//! notifier keeps, per (object, or none, and *channel*), the fingerprint of the last event
//! it let through (a hash of reason, message, fields and revision; not the object, not
//! the severity) and suppresses an event whose fingerprint equals it:
//!
//! | channel | reasons | rule |
//! |---|---|---|
//! | health, per object | `ReconcileFailed`, `TokenRenewalFailed`, `Recovered` | a failure is suppressed when the same failure was the last one; `Recovered` is sent only after a failure (then the channel starts over), so failed → failed is one event and failed → recovered → failed three |
//! | token expiry, per object | `TokenExpiring` | suppressed when the same as the last |
//! | prune, one for all objects | `PruneRefused` | suppressed when the same as the last |
//! | source, per object | `RevisionApplied`, `SourceFailed` | suppressed when the same as the last: the same revision applied again, the same failure again |
//! | leadership, per object | `LeadershipGained`, `LeadershipLost` | suppressed when the same as the last |
//! | none | `DriftCorrected` | never suppressed: each correction is an action taken |
//!
//! Deduplication happens once, in [`Notifier::send`], for all receivers; what it
//! suppresses counts as `suppressed` in `agentcore_controller_notifications_total`. It
//! remembers one hash per object and channel for the life of the process.
//!
//! # Delivery, per receiver
//!
//! - Rate limit: a token bucket of [`BURST`] events, refilled by one every [`REFILL`].
//!   Events over the limit are dropped; the next event sent says how many were dropped
//!   before it (JSON `"droppedBefore": N`, Slack a trailing line), counting those a full
//!   queue lost too.
//! - Retries: connection errors, timeouts ([`TIMEOUT`] per request), 5xx and 429 are
//!   retried, [`ATTEMPTS`] attempts in all, after 1 s, 2 s, 4 s … (at most 30 s), or after
//!   what a `Retry-After: SECONDS` header on a 429 or 503 asks (at most 60 s). Other
//!   answers (4xx, and 3xx: redirects are not followed) fail at once. Either failure is
//!   logged once, at warn. Events go out one at a time, in order.
//! - Formats: `json` posts the event as a JSON object with the instance and the time;
//!   `slack` posts `{"text": …}` with one readable message (`render.rs` shows both).
//!
//! Outcomes are counted in `agentcore_controller_notifications_total{outcome}`: `sent`,
//! `failed`, `dropped` (queue full or rate limit), `suppressed` (deduplicated).
//!
//! # Secrets
//!
//! A receiver's URL may itself be a credential (a Slack webhook URL is). It is never
//! logged nor put in an error: receivers are named by [`redacted`] (scheme, host and
//! port), and HTTP client errors are stripped of the URL. Events carry only what the
//! caller puts in them.
//!
//! When the last [`Notifier`] clone is dropped, each receiver task delivers what is still
//! queued (with its retries) and ends.

mod bucket;
mod dedup;
mod deliver;
mod render;

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::broadcast;
use tracing::{error, warn};

use crate::metrics::{Metrics, NotificationLabels};

pub use bucket::{BURST, REFILL};
pub use deliver::{ATTEMPTS, TIMEOUT};

/// Events a receiver may have queued; when more come, the oldest are dropped.
pub const QUEUE: usize = 256;

/// How a receiver wants its events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// The event as a JSON object, with the instance and the time it was sent.
    #[default]
    Json,
    /// `{"text": …}`, as Slack's incoming webhooks (and many chat tools) take it.
    Slack,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "json" => Ok(Self::Json),
            "slack" => Ok(Self::Slack),
            other => Err(format!(
                "`{other}` is not a notification format: use json or slack"
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "json",
            Self::Slack => "slack",
        })
    }
}

/// A webhook that receives events. Its URL may be a secret: its `Debug` shows only
/// [`redacted`].
#[derive(Clone, PartialEq, Eq)]
pub struct Receiver {
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    pub format: Format,
}

impl Receiver {
    /// Checks that `url` is an absolute `http://` or `https://` URL with a host. The error
    /// never quotes the URL (it may be a secret).
    pub fn new(url: &str, format: Format) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url.trim())
            .map_err(|e| format!("a --notify URL is not a valid URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "a --notify URL must start with http:// or https://, not {}:",
                parsed.scheme()
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err("a --notify URL has no host".to_string());
        }
        Ok(Self {
            url: parsed.into(),
            format,
        })
    }
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("url", &redacted(&self.url))
            .field("format", &self.format)
            .finish()
    }
}

/// How a receiver is named in logs and errors: `scheme://host[:port]`, never the path,
/// query or user info, which may hold a secret.
pub fn redacted(url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url.trim()) else {
        return "<invalid URL>".to_string();
    };
    let Some(host) = parsed.host_str() else {
        return format!("{}://<no host>", parsed.scheme());
    };
    match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    }
}

/// What happened. Each reason belongs to a deduplication channel (see the module docs).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    RevisionApplied,
    SourceFailed,
    DriftCorrected,
    ReconcileFailed,
    Recovered,
    TokenRenewalFailed,
    TokenExpiring,
    PruneRefused,
    LeadershipGained,
    LeadershipLost,
}

impl Reason {
    /// In words, for chat messages: "reconcile failed".
    pub fn words(&self) -> &'static str {
        match self {
            Self::RevisionApplied => "revision applied",
            Self::SourceFailed => "source failed",
            Self::DriftCorrected => "drift corrected",
            Self::ReconcileFailed => "reconcile failed",
            Self::Recovered => "recovered",
            Self::TokenRenewalFailed => "token renewal failed",
            Self::TokenExpiring => "token expiring",
            Self::PruneRefused => "prune refused",
            Self::LeadershipGained => "leadership gained",
            Self::LeadershipLost => "leadership lost",
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// The object an event is about.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
}

/// One notification. Holds only what the caller puts in it: names and messages, never
/// secrets.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub reason: Reason,
    pub severity: Severity,
    pub object: Option<ObjectRef>,
    /// One line, for people.
    pub message: String,
    /// E.g. the paths of the fields that drifted; empty if none.
    pub fields: Vec<String>,
    /// The source revision, e.g. `main@sha1:0123…`.
    pub revision: Option<String>,
}

impl Event {
    pub fn new(reason: Reason, severity: Severity, message: impl Into<String>) -> Self {
        Self {
            reason,
            severity,
            object: None,
            message: message.into(),
            fields: Vec::new(),
            revision: None,
        }
    }

    /// About the object `kind/name`.
    pub fn object(mut self, kind: impl Into<String>, name: impl Into<String>) -> Self {
        self.object = Some(ObjectRef {
            kind: kind.into(),
            name: name.into(),
        });
        self
    }

    pub fn fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }

    pub fn revision(mut self, revision: Option<String>) -> Self {
        self.revision = revision;
        self
    }
}

/// An event on its way, with the time it was sent.
#[derive(Debug)]
struct Queued {
    event: Event,
    time: SystemTime,
}

/// Hands events to the receivers' tasks. Cheap to clone; [`Notifier::disabled`] (also
/// the default) sends nothing.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// Every receiver task reads this channel at its own pace: a slow one lags, losing
    /// its oldest events (it is told how many), and holds up no one.
    queue: broadcast::Sender<Arc<Queued>>,
    dedup: Mutex<dedup::Dedup>,
    metrics: Metrics,
    /// The receivers, redacted, for `Debug`.
    names: Vec<String>,
}

/// Delivery settings; [`Tuning::default`] is what the daemon runs with, tests shorten
/// the waits.
#[derive(Clone, Copy, Debug)]
struct Tuning {
    queue: usize,
    burst: u32,
    refill: Duration,
    attempts: u32,
    /// The first retry's delay; each later one doubles it, up to `backoff_max`.
    backoff: Duration,
    backoff_max: Duration,
    /// The most a `Retry-After` header may make a retry wait.
    retry_after_max: Duration,
    timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            queue: QUEUE,
            burst: BURST,
            refill: REFILL,
            attempts: ATTEMPTS,
            backoff: deliver::BACKOFF,
            backoff_max: deliver::BACKOFF_MAX,
            retry_after_max: deliver::RETRY_AFTER_MAX,
            timeout: TIMEOUT,
        }
    }
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Starts one task per receiver on the current tokio runtime; events name this
    /// controller `instance`. Without receivers (or outside a runtime, which is logged)
    /// the notifier is disabled.
    pub fn spawn(receivers: Vec<Receiver>, instance: String, metrics: Metrics) -> Self {
        Self::spawn_tuned(receivers, instance, metrics, Tuning::default())
    }

    fn spawn_tuned(
        receivers: Vec<Receiver>,
        instance: String,
        metrics: Metrics,
        tuning: Tuning,
    ) -> Self {
        if receivers.is_empty() {
            return Self::disabled();
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            error!("notifications are off: no async runtime to deliver them on");
            return Self::disabled();
        };
        let (queue, _) = broadcast::channel(tuning.queue.max(1));
        let instance: Arc<str> = instance.into();
        let mut names = Vec::new();
        for receiver in receivers {
            let name = redacted(&receiver.url);
            match deliver::Delivery::new(&receiver, instance.clone(), metrics.clone(), tuning) {
                Ok(delivery) => {
                    runtime.spawn(delivery.run(queue.subscribe()));
                    names.push(name);
                }
                Err(e) => {
                    warn!(receiver = %name, error = %e, "notifications to this receiver are off")
                }
            }
        }
        if names.is_empty() {
            return Self::disabled();
        }
        Self {
            inner: Some(Arc::new(Inner {
                queue,
                dedup: Mutex::default(),
                metrics,
                names,
            })),
        }
    }

    /// Queues `event` for every receiver, unless it repeats the last event of its channel
    /// (see the module docs). Never blocks, never fails.
    pub fn send(&self, event: Event) {
        let Some(inner) = &self.inner else {
            return;
        };
        let news = inner
            .dedup
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .admit(&event);
        if !news {
            count(&inner.metrics, "suppressed", 1);
            return;
        }
        let queued = Arc::new(Queued {
            event,
            time: SystemTime::now(),
        });
        // Fails only when every receiver task has ended: nothing to deliver to.
        let _ = inner.queue.send(queued);
    }

    /// Whether any receiver is there to send to.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let receivers = self.inner.as_ref().map_or(&[][..], |i| i.names.as_slice());
        f.debug_struct("Notifier")
            .field("receivers", &receivers)
            .finish()
    }
}

/// Adds `n` to `agentcore_controller_notifications_total{outcome}`.
fn count(metrics: &Metrics, outcome: &'static str, n: u64) {
    if n > 0 {
        metrics
            .notifications
            .get_or_create(&NotificationLabels { outcome })
            .inc_by(n);
    }
}

#[cfg(test)]
mod tests;
