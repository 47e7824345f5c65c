//! Metrics a kind publishes about each of its objects (a token's expiry), declared by the
//! kind and exported by the engine without knowing what they mean. Each is labelled with
//! the object's name.

/// One metric a kind declares (see `Kind::METRICS` in `kinds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricSpec {
    /// The metric's name, after the controller's prefix (`agentcore_controller_`).
    pub name: &'static str,
    pub help: &'static str,
    pub source: MetricSource,
}

/// Where a published metric's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricSource {
    /// A gauge: the value of this name the kind reports with each reconcile
    /// (see `Kind::gauges`).
    Gauge,
    /// A gauge: the seconds from each scrape until the Unix time held by the gauge named
    /// here.
    SecondsUntil(&'static str),
    /// A counter of the reconciles that wrote (created or updated).
    Writes,
    /// A counter of the reconciles that failed, also labelled with the reason.
    Failures,
}
