//! The lease as a Kubernetes `coordination.k8s.io/v1` Lease (client-go's `leaderelection`
//! keeps its leases the same way), through kube-rs, in the pod's namespace.
//!
//! The spec holds what every Kubernetes tool reads (holder, duration in whole seconds,
//! acquire and renew times, transitions). The version the elector compares is kept in an
//! annotation, and each write is conditional on the object's `resourceVersion` as read
//! just before it: a write between the read and the replace gets 409 Conflict.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

use super::{LeaseRecord, LeaseStore, Swap};
use crate::error::{Reason, ReconcileError, Result};

/// The elector's version of the lease.
pub const VERSION_ANNOTATION: &str = "agentcore.dev/lease-version";
/// The lease duration to the millisecond (the spec has whole seconds).
pub const DURATION_ANNOTATION: &str = "agentcore.dev/lease-duration-ms";

/// A Lease name for a controller instance: a DNS subdomain (lower case, `-` for what it
/// does not allow, at most 253 characters).
pub fn lease_name(instance: &str) -> String {
    let name: String = instance
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(253)
        .collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if name.is_empty() {
        "agentcore-controller".into()
    } else {
        name.to_string()
    }
}

pub struct KubernetesLeases {
    api: Api<Lease>,
    namespace: String,
    name: String,
}

impl KubernetesLeases {
    /// From the standard configuration: in a pod, its service account and namespace;
    /// elsewhere `KUBECONFIG` or `~/.kube/config` and its context's namespace.
    pub async fn connect(name: &str) -> Result<Self> {
        let config = kube::Config::infer().await.map_err(|e| {
            ReconcileError::terminal(
                Reason::InvalidRequest,
                format!(
                    "--leader-election kubernetes: no Kubernetes configuration (in a pod: its \
                     service account; elsewhere: KUBECONFIG): {e}"
                ),
            )
        })?;
        let namespace = std::env::var("POD_NAMESPACE")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::Client::try_from(config).map_err(|e| {
            ReconcileError::terminal(
                Reason::InvalidRequest,
                format!("cannot build a Kubernetes client: {e}"),
            )
        })?;
        Ok(Self::new(client, &namespace, name))
    }

    /// The Lease `name` in `namespace`, through `client`.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    fn error(&self, action: &str, e: kube::Error) -> ReconcileError {
        let message = format!("{action} lease {}/{}: {e}", self.namespace, self.name);
        match &e {
            kube::Error::Api(s) if s.is_forbidden() => ReconcileError::terminal(
                Reason::InvalidRequest,
                format!("{message} (the service account needs get, create and update on leases)"),
            ),
            _ => ReconcileError::recoverable(Reason::Unreachable, message),
        }
    }
}

/// The Lease object that holds `r`.
fn lease_object(
    name: &str,
    namespace: &str,
    r: &LeaseRecord,
    resource_version: Option<String>,
) -> Lease {
    let time = |t: SystemTime| {
        k8s_openapi::jiff::Timestamp::try_from(t)
            .ok()
            .map(MicroTime)
    };
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            resource_version,
            annotations: Some(BTreeMap::from([
                (VERSION_ANNOTATION.to_string(), r.version.clone()),
                (
                    DURATION_ANNOTATION.to_string(),
                    r.duration.as_millis().to_string(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: (!r.holder.is_empty()).then(|| r.holder.clone()),
            lease_duration_seconds: Some(
                i32::try_from(r.duration.as_secs_f64().ceil() as u64).unwrap_or(i32::MAX),
            ),
            acquire_time: time(r.acquired_at),
            renew_time: time(r.renewed_at),
            lease_transitions: Some(i32::try_from(r.transitions).unwrap_or(i32::MAX)),
            ..LeaseSpec::default()
        }),
    }
}

/// The record a Lease holds, or why it is not one.
fn record_of(lease: &Lease) -> std::result::Result<LeaseRecord, String> {
    let annotations = lease.metadata.annotations.clone().unwrap_or_default();
    let version = annotations
        .get(VERSION_ANNOTATION)
        .cloned()
        .ok_or_else(|| format!("no {VERSION_ANNOTATION} annotation"))?;
    let spec = lease.spec.clone().unwrap_or_default();
    let duration = match annotations.get(DURATION_ANNOTATION) {
        Some(ms) => Duration::from_millis(
            ms.parse()
                .map_err(|_| format!("{DURATION_ANNOTATION} is not a number"))?,
        ),
        None => Duration::from_secs(
            spec.lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .ok_or("no lease duration")?,
        ),
    };
    let time = |t: Option<MicroTime>| t.map_or(UNIX_EPOCH, |t| SystemTime::from(t.0));
    Ok(LeaseRecord {
        holder: spec.holder_identity.unwrap_or_default(),
        version,
        duration,
        renewed_at: time(spec.renew_time),
        acquired_at: time(spec.acquire_time),
        transitions: spec
            .lease_transitions
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(0),
    })
}

#[async_trait::async_trait]
impl LeaseStore for KubernetesLeases {
    async fn read(&self) -> Result<Option<LeaseRecord>> {
        let lease = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error("get", e))?;
        match lease {
            None => Ok(None),
            Some(l) => record_of(&l).map(Some).map_err(|why| {
                ReconcileError::recoverable(
                    Reason::BadResponse,
                    format!(
                        "lease {}/{} is not one this controller wrote: {why}",
                        self.namespace, self.name
                    ),
                )
            }),
        }
    }

    async fn swap(&self, expected: Option<&str>, next: &LeaseRecord) -> Result<Swap> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error("get", e))?;
        let found = current
            .as_ref()
            .map(|l| record_of(l).map(|r| r.version).unwrap_or_default());
        if found.as_deref() != expected {
            return Ok(Swap::Conflict);
        }
        let written = match current {
            None => {
                self.api
                    .create(
                        &PostParams::default(),
                        &lease_object(&self.name, &self.namespace, next, None),
                    )
                    .await
            }
            Some(l) => {
                let rv = l.metadata.resource_version.clone();
                let lease = lease_object(&self.name, &self.namespace, next, rv);
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(_) => Ok(Swap::Done),
            Err(kube::Error::Api(s)) if s.is_conflict() || s.is_already_exists() => {
                Ok(Swap::Conflict)
            }
            Err(e) => Err(self.error("write", e)),
        }
    }

    fn describe(&self) -> String {
        format!("kubernetes:{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_names_a_valid_lease() {
        for (instance, lease) in [
            ("agentcore-controller", "agentcore-controller"),
            ("Prod_Stack", "prod-stack"),
            ("_x_", "x"),
            ("__", "agentcore-controller"),
            ("a.b-c", "a.b-c"),
        ] {
            assert_eq!(lease_name(instance), lease, "{instance}");
        }
    }

    #[test]
    fn a_lease_reads_back_as_the_record_it_was_written_from() {
        let store_lease = |r: &LeaseRecord| lease_object("n", "ns", r, None);
        let r = LeaseRecord {
            holder: "pod-a".into(),
            version: "v1".into(),
            duration: Duration::from_millis(2500),
            renewed_at: UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
            acquired_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            transitions: 4,
        };
        assert_eq!(record_of(&store_lease(&r)), Ok(r.clone()));
        // Written by another tool: no version annotation.
        let mut foreign = store_lease(&r);
        foreign.metadata.annotations = None;
        assert!(record_of(&foreign).is_err());
        // Without the millisecond annotation, the spec's seconds.
        let mut seconds = store_lease(&r);
        if let Some(a) = seconds.metadata.annotations.as_mut() {
            a.remove(DURATION_ANNOTATION);
        }
        assert_eq!(
            record_of(&seconds).map(|r| r.duration),
            Ok(Duration::from_secs(3))
        );
    }
}
