//! Prometheus metrics (prometheus-client), served as text at `/metrics`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::aws::CallCounter;

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
pub struct ConditionLabels {
    pub condition: String,
    pub status: String,
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
    pub token_renewals: Family<NameLabels, Counter>,
    pub token_renewal_failures: Family<NameReasonLabels, Counter>,
    token_expiry: Family<NameLabels, Gauge>,
    token_seconds_left: Family<NameLabels, Gauge>,
    /// Token name → expiry (Unix seconds); seconds-to-expiry is computed at each scrape.
    expiries: Arc<std::sync::Mutex<std::collections::BTreeMap<String, i64>>>,
    aws_calls: Family<CallLabels, Counter>,
    calls: Option<CallCounter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// `calls` feeds `agentcore_controller_aws_calls_total` at each scrape.
    pub fn new(calls: Option<CallCounter>) -> Self {
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
        let token_renewals = Family::<NameLabels, Counter>::default();
        registry.register(
            "token_renewals",
            "Bearer tokens published (first publication and renewals), by Token",
            token_renewals.clone(),
        );
        let token_renewal_failures = Family::<NameReasonLabels, Counter>::default();
        registry.register(
            "token_renewal_failures",
            "Failed token renewals, by Token and reason",
            token_renewal_failures.clone(),
        );
        let token_expiry = Family::<NameLabels, Gauge>::default();
        registry.register(
            "token_expiry_timestamp_seconds",
            "When the published bearer token expires (Unix time), by Token",
            token_expiry.clone(),
        );
        let token_seconds_left = Family::<NameLabels, Gauge>::default();
        registry.register(
            "token_seconds_to_expiry",
            "Seconds until the published bearer token expires, by Token",
            token_seconds_left.clone(),
        );
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
            token_renewals,
            token_renewal_failures,
            token_expiry,
            token_seconds_left,
            expiries: Arc::default(),
            aws_calls,
            calls,
        }
    }

    /// Record when Token `name` expires (Unix seconds); `None` forgets it.
    pub fn set_token_expiry(&self, name: &str, expiry: Option<i64>) {
        if let Ok(mut m) = self.expiries.lock() {
            match expiry {
                Some(e) => {
                    m.insert(name.to_string(), e);
                }
                None => {
                    m.remove(name);
                    let labels = NameLabels {
                        name: name.to_string(),
                    };
                    self.token_expiry.remove(&labels);
                    self.token_seconds_left.remove(&labels);
                }
            }
        }
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
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if let Ok(m) = self.expiries.lock() {
            for (name, expiry) in m.iter() {
                let labels = NameLabels { name: name.clone() };
                self.token_expiry.get_or_create(&labels).set(*expiry);
                self.token_seconds_left
                    .get_or_create(&labels)
                    .set(expiry - now);
            }
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.push_str("# encoding failed\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
