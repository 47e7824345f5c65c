//! Prometheus metrics (prometheus-client), served as text at `/metrics`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::aws::CallCounter;
use crate::kinds::{MetricSource, MetricSpec};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindCauseLabels {
    pub kind: String,
    /// spec, dependency, renewal or drift (see [`crate::engine::cause`]).
    pub cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub service: String,
    pub operation: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabels {
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameReasonLabels {
    pub name: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectReasonLabels {
    pub kind: String,
    pub name: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// `read` (listing, reading and parsing the files) or `take_in` (the controller
    /// comparing the result with what it tracks, and queueing what changed).
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub condition: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `accepted` (it proved it knows the secret) or `refused` (see [`crate::webhook`]).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// The remote, without credentials.
    pub url: String,
    /// `main@sha1:…`, as Flux writes a revision.
    pub revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// `sent`, `failed`, `dropped` or `suppressed` (see [`crate::notify`]).
    pub outcome: &'static str,
}

/// The controller's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub changes: Family<KindCauseLabels, Counter>,
    pub queue_depth: Gauge,
    pub resync_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub objects: Family<ConditionLabels, Gauge>,
    pub reload_duration: Family<PhaseLabels, Histogram>,
    /// 1 while this replica may write (the leader, or the only replica), else 0.
    pub leader: Gauge,
    pub leadership_transitions: Counter,
    pub webhook_requests: Family<WebhookLabels, Counter>,
    /// 1 for the git source's revision checked out last (see [`crate::gitsource`]).
    pub source_info: Family<SourceLabels, Gauge>,
    /// Fetches, verifications or checkouts of the git source that failed.
    pub source_failures: Counter,
    /// Notifications to webhook receivers, by outcome (see [`crate::notify`]).
    pub notifications: Family<NotificationLabels, Counter>,
    /// The live probes (see [`crate::probe`]), by object.
    pub probe_success: Family<ObjectLabels, Gauge>,
    pub probe_duration: Family<ObjectLabels, FloatGauge>,
    pub probe_tools: Family<ObjectLabels, Gauge>,
    pub probe_failures: Family<ObjectReasonLabels, Counter>,
    published: Arc<Published>,
    aws_calls: Family<CallLabels, Counter>,
    calls: Option<CallCounter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// `calls` feeds `agentcore_controller_aws_calls_total` at each scrape; no kind
    /// publishes metrics.
    pub fn new(calls: Option<CallCounter>) -> Self {
        Self::with_kinds(calls, &[])
    }

    /// Also the metrics the kinds publish about their objects, by kind (see
    /// [`crate::kinds::Kind::METRICS`]).
    pub fn with_kinds(calls: Option<CallCounter>, kinds: &[(&'static str, MetricSpec)]) -> Self {
        let mut registry = Registry::with_prefix("agentcore_controller");
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile, by kind",
            reconcile_duration.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciles, by kind and reason",
            reconcile_errors.clone(),
        );
        let changes = Family::<KindCauseLabels, Counter>::default();
        registry.register(
            "changes",
            "Reconciles that created or updated a resource, by kind and cause: spec (the \
             manifest changed), dependency (a dependency's outputs changed), renewal (a \
             token fell due), drift (a change made outside the manifests was undone)",
            changes.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Objects due for reconcile and not yet running",
            queue_depth.clone(),
        );
        let resync_lag = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "resync_lag_seconds",
            "How late the last periodic resync started after its due time",
            resync_lag.clone(),
        );
        let objects = Family::<ConditionLabels, Gauge>::default();
        registry.register(
            "objects",
            "Objects by condition and status",
            objects.clone(),
        );
        let reload_duration = Family::<PhaseLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register(
            "reload_duration_seconds",
            "Duration of a reload of the manifests, by phase: read (list, read and parse the \
             files) and take_in (compare with what is tracked, queue what changed)",
            reload_duration.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease (or runs without leader election), \
             0 on a standby",
            leader.clone(),
        );
        let leadership_transitions = Counter::default();
        registry.register(
            "leadership_transitions",
            "Times this replica became leader or stopped being leader",
            leadership_transitions.clone(),
        );
        let source_info = Family::<SourceLabels, Gauge>::default();
        registry.register(
            "source_info",
            "The git source's revision checked out last (value 1)",
            source_info.clone(),
        );
        let source_failures = Counter::default();
        registry.register(
            "source_failures",
            "Attempts to update from the git source that failed (the last good revision stays)",
            source_failures.clone(),
        );
        let webhook_requests = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_requests",
            "Requests to the git webhook, by outcome: accepted (it proved it knows the \
             secret) or refused",
            webhook_requests.clone(),
        );
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Notifications to webhook receivers, by outcome: sent, failed (gave up after \
             retries, or refused), dropped (queue full or rate limit), suppressed (no change \
             since the last one)",
            notifications.clone(),
        );
        let probe_success = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "probe_success",
            "1 when the last live probe of the object (MCP initialize and tools/list at its \
             invocation URL, authorized as a client) succeeded, else 0",
            probe_success.clone(),
        );
        let probe_duration = Family::<ObjectLabels, FloatGauge>::default();
        registry.register(
            "probe_duration_seconds",
            "How long the last live probe of the object took",
            probe_duration.clone(),
        );
        let probe_tools = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "probe_tools",
            "The tools the object's MCP server listed at its last successful probe",
            probe_tools.clone(),
        );
        let probe_failures = Family::<ObjectReasonLabels, Counter>::default();
        registry.register(
            "probe_failures",
            "Live probes that failed, by object and reason (TokenExpired, ClientMismatch, \
             AudienceMismatch, AuthMethodMismatch, NotFound, Throttled, ContainerError, \
             Unreachable, …)",
            probe_failures.clone(),
        );
        let published = Published::register(&mut registry, kinds);
        let aws_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "aws_calls",
            "AWS API calls, by service, operation and outcome",
            aws_calls.clone(),
        );
        Self {
            registry: Arc::new(registry),
            reconcile_duration,
            reconcile_errors,
            changes,
            queue_depth,
            resync_lag,
            objects,
            reload_duration,
            leader,
            leadership_transitions,
            webhook_requests,
            source_info,
            source_failures,
            notifications,
            probe_success,
            probe_duration,
            probe_tools,
            probe_failures,
            published: Arc::new(published),
            aws_calls,
            calls,
        }
    }

    /// One phase of a reload of the manifests took `took`.
    pub fn reloaded(&self, phase: &'static str, took: std::time::Duration) {
        self.reload_duration
            .get_or_create(&PhaseLabels { phase })
            .observe(took.as_secs_f64());
    }

    /// A reconcile of `kind/name` went through: the gauges it reported, and whether it
    /// wrote.
    pub fn object_reconciled(&self, kind: &str, name: &str, gauges: &[(&str, f64)], wrote: bool) {
        self.published.reconciled(kind, name, gauges, wrote);
    }

    /// A reconcile of `kind/name` failed with `reason`.
    pub fn object_failed(&self, kind: &str, name: &str, reason: &str) {
        self.published.failed(kind, name, reason);
    }

    /// `kind/name` is gone: its published metrics go too.
    pub fn object_gone(&self, kind: &str, name: &str) {
        self.published.gone(kind, name);
    }

    /// A live probe of `kind/name` ended: `Ok(tools)` or `Err(reason)`.
    pub fn probed(
        &self,
        kind: &str,
        name: &str,
        took: std::time::Duration,
        outcome: Result<usize, &str>,
    ) {
        let labels = ObjectLabels {
            kind: kind.into(),
            name: name.into(),
        };
        self.probe_duration
            .get_or_create(&labels)
            .set(took.as_secs_f64());
        match outcome {
            Ok(tools) => {
                self.probe_success.get_or_create(&labels).set(1);
                self.probe_tools
                    .get_or_create(&labels)
                    .set(i64::try_from(tools).unwrap_or(i64::MAX));
            }
            Err(reason) => {
                self.probe_success.get_or_create(&labels).set(0);
                self.probe_failures
                    .get_or_create(&ObjectReasonLabels {
                        kind: kind.into(),
                        name: name.into(),
                        reason: reason.into(),
                    })
                    .inc();
            }
        }
    }

    /// `kind/name` is probed no more: its probe gauges go (the failure counts stay).
    pub fn probe_gone(&self, kind: &str, name: &str) {
        let labels = ObjectLabels {
            kind: kind.into(),
            name: name.into(),
        };
        self.probe_success.remove(&labels);
        self.probe_duration.remove(&labels);
        self.probe_tools.remove(&labels);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        if let Some(calls) = &self.calls {
            for (k, n) in calls.snapshot() {
                let labels = CallLabels {
                    service: k.service.clone(),
                    operation: k.operation.clone(),
                    outcome: if k.ok { "ok" } else { "error" }.to_string(),
                };
                let counter = self.aws_calls.get_or_create(&labels);
                let have = counter.get();
                if n > have {
                    counter.inc_by(n - have);
                }
            }
        }
        self.published.scrape();
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.push_str("# encoding failed\n");
        }
        out
    }
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The metrics kinds publish about their objects, by the kind's declarations.
struct Published {
    /// Kind → what it publishes.
    by_kind: BTreeMap<&'static str, Vec<MetricSpec>>,
    gauges: BTreeMap<&'static str, Family<NameLabels, FloatGauge>>,
    writes: BTreeMap<&'static str, Family<NameLabels, Counter>>,
    failures: BTreeMap<&'static str, Family<NameReasonLabels, Counter>>,
    /// The last value of each gauge a kind reported, by (gauge, object name): what
    /// `SecondsUntil` counts down to at each scrape.
    values: Mutex<BTreeMap<(&'static str, String), f64>>,
}

impl Published {
    fn register(registry: &mut Registry, kinds: &[(&'static str, MetricSpec)]) -> Self {
        let mut p = Self {
            by_kind: BTreeMap::new(),
            gauges: BTreeMap::new(),
            writes: BTreeMap::new(),
            failures: BTreeMap::new(),
            values: Mutex::default(),
        };
        for (kind, spec) in kinds {
            p.by_kind.entry(kind).or_default().push(*spec);
            // Two kinds may publish the same metric: one family.
            let new = match spec.source {
                MetricSource::Gauge | MetricSource::SecondsUntil(_) => {
                    !p.gauges.contains_key(spec.name)
                }
                MetricSource::Writes => !p.writes.contains_key(spec.name),
                MetricSource::Failures => !p.failures.contains_key(spec.name),
            };
            if !new {
                continue;
            }
            match spec.source {
                MetricSource::Gauge | MetricSource::SecondsUntil(_) => {
                    let family = Family::<NameLabels, FloatGauge>::default();
                    registry.register(spec.name, spec.help, family.clone());
                    p.gauges.insert(spec.name, family);
                }
                MetricSource::Writes => {
                    let family = Family::<NameLabels, Counter>::default();
                    registry.register(spec.name, spec.help, family.clone());
                    p.writes.insert(spec.name, family);
                }
                MetricSource::Failures => {
                    let family = Family::<NameReasonLabels, Counter>::default();
                    registry.register(spec.name, spec.help, family.clone());
                    p.failures.insert(spec.name, family);
                }
            }
        }
        p
    }

    fn specs(&self, kind: &str) -> &[MetricSpec] {
        self.by_kind.get(kind).map_or(&[], Vec::as_slice)
    }

    fn reconciled(&self, kind: &str, name: &str, gauges: &[(&str, f64)], wrote: bool) {
        let labels = NameLabels { name: name.into() };
        for spec in self.specs(kind) {
            match spec.source {
                MetricSource::Gauge => {
                    let Some((_, v)) = gauges.iter().find(|(g, _)| *g == spec.name) else {
                        continue;
                    };
                    if let Some(f) = self.gauges.get(spec.name) {
                        f.get_or_create(&labels).set(*v);
                    }
                    if let Ok(mut values) = self.values.lock() {
                        values.insert((spec.name, name.to_string()), *v);
                    }
                }
                MetricSource::Writes if wrote => {
                    if let Some(f) = self.writes.get(spec.name) {
                        f.get_or_create(&labels).inc();
                    }
                }
                _ => {}
            }
        }
    }

    fn failed(&self, kind: &str, name: &str, reason: &str) {
        for spec in self.specs(kind) {
            if let (MetricSource::Failures, Some(f)) = (spec.source, self.failures.get(spec.name)) {
                f.get_or_create(&NameReasonLabels {
                    name: name.into(),
                    reason: reason.into(),
                })
                .inc();
            }
        }
    }

    fn gone(&self, kind: &str, name: &str) {
        let labels = NameLabels { name: name.into() };
        for spec in self.specs(kind) {
            if let Some(f) = self.gauges.get(spec.name) {
                f.remove(&labels);
            }
            if let Ok(mut values) = self.values.lock() {
                values.remove(&(spec.name, name.to_string()));
            }
        }
    }

    /// Count down every `SecondsUntil` to now.
    fn scrape(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let Ok(values) = self.values.lock() else {
            return;
        };
        for spec in self.by_kind.values().flatten() {
            let (MetricSource::SecondsUntil(source), Some(f)) =
                (spec.source, self.gauges.get(spec.name))
            else {
                continue;
            };
            for ((gauge, name), at) in values.iter() {
                if *gauge == source {
                    f.get_or_create(&NameLabels { name: name.clone() })
                        .set((at - now).round());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_phases_are_exported() {
        let m = Metrics::new(None);
        m.reloaded("read", std::time::Duration::from_millis(120));
        m.reloaded("take_in", std::time::Duration::from_millis(30));
        let text = m.render();
        for line in [
            "agentcore_controller_reload_duration_seconds_sum{phase=\"read\"} 0.12",
            "agentcore_controller_reload_duration_seconds_count{phase=\"take_in\"} 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn renders_registered_families() {
        let m = Metrics::new(None);
        m.reconcile_errors
            .get_or_create(&ErrorLabels {
                kind: "Role".into(),
                reason: "Throttling".into(),
            })
            .inc();
        m.queue_depth.set(3);
        m.reconcile_duration
            .get_or_create(&KindLabels {
                kind: "Role".into(),
            })
            .observe(0.02);
        let text = m.render();
        assert!(
            text.contains(
                "agentcore_controller_reconcile_errors_total{kind=\"Role\",reason=\"Throttling\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("agentcore_controller_queue_depth 3"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE agentcore_controller_reconcile_duration_seconds histogram"),
            "{text}"
        );
    }
}
