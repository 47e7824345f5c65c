//! Building AWS SDK clients from the standard configuration (credential chain, profiles,
//! region, `AWS_ENDPOINT_URL`), with adaptive retries and a call counter on every client.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;

use crate::error::{Reason, ReconcileError, Result};
use crate::leader::Fence;
use crate::list_cache::{ListCaches, WriteWatch};
use crate::ratelimit::RateLimits;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Whether an API operation changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
}

/// Classify an operation by its name. AWS names read-only operations with these verbs
/// (Cognito puts `Admin` in front of some of them).
pub fn access_of(operation: &str) -> Access {
    const READ_PREFIXES: [&str; 6] = ["Get", "List", "Describe", "BatchGet", "BatchCheck", "Head"];
    let operation = operation.strip_prefix("Admin").unwrap_or(operation);
    if READ_PREFIXES.iter().any(|p| operation.starts_with(p)) {
        Access::Read
    } else {
        Access::Write
    }
}

/// One counted operation: `service`, `operation`, whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CallKey {
    pub service: String,
    pub operation: String,
    pub access: Access,
    pub ok: bool,
}

/// Counts every AWS call made through the clients built by [`Aws`]. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    inner: Arc<Mutex<BTreeMap<CallKey, u64>>>,
}

impl CallCounter {
    pub fn snapshot(&self) -> BTreeMap<CallKey, u64> {
        self.inner.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Calls of one kind of access since `before` (a snapshot taken earlier).
    pub fn count_since(&self, before: &BTreeMap<CallKey, u64>, access: Access) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(k, _)| k.access == access)
            .map(|(k, v)| v - before.get(k).copied().unwrap_or(0))
            .sum()
    }

    fn record(&self, key: CallKey) {
        if let Ok(mut m) = self.inner.lock() {
            *m.entry(key).or_insert(0) += 1;
        }
    }
}

/// Summary of calls, as printed by `--output json`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CallSummary {
    pub reads: u64,
    pub writes: u64,
    pub failed: u64,
    /// "service:Operation" → count.
    pub by_operation: BTreeMap<String, u64>,
}

impl CallSummary {
    pub fn between(before: &BTreeMap<CallKey, u64>, after: &BTreeMap<CallKey, u64>) -> Self {
        let mut s = CallSummary::default();
        for (k, v) in after {
            let n = v - before.get(k).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            match k.access {
                Access::Read => s.reads += n,
                Access::Write => s.writes += n,
            }
            if !k.ok {
                s.failed += n;
            }
            *s.by_operation
                .entry(format!("{}:{}", k.service, k.operation))
                .or_insert(0) += n;
        }
        s
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            let ok = matches!(context.output_or_error(), Some(Ok(_)));
            self.record(CallKey {
                service: meta.service().to_string(),
                operation: meta.name().to_string(),
                access: access_of(meta.name()),
                ok,
            });
        }
        Ok(())
    }
}

/// Refuses every attempt of a write while the fence does not allow it (see
/// [`crate::leader`]): checked before each attempt, so a retry after the lease ran out
/// is refused too.
#[derive(Debug, Clone)]
struct FenceCheck(Fence);

impl Intercept for FenceCheck {
    fn name(&self) -> &'static str {
        "FenceCheck"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        match cfg.load::<Metadata>() {
            Some(meta) if access_of(meta.name()) == Access::Write => Ok(self.0.check()?),
            _ => Ok(()),
        }
    }
}

/// The AWS clients the kinds use, built once from one configuration.
#[derive(Clone, Debug)]
pub struct Aws {
    pub region: String,
    pub account_id: String,
    pub calls: CallCounter,
    /// Listings shared by every object of a kind (see [`crate::list_cache`]).
    pub lists: Arc<ListCaches>,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub iam: aws_sdk_iam::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub agentcore: aws_sdk_bedrockagentcorecontrol::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub ssm: aws_sdk_ssm::Client,
}

/// Load the standard AWS configuration: environment, profiles, credential chain and
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`, with request timeouts.
///
/// Retries use the SDK's adaptive mode (client-side rate limiting once throttled), unless
/// `AWS_RETRY_MODE` says otherwise (`standard`). Measured against an emulator injecting
/// 20 % faults, adaptive mode made a daemon wait 3-20 s after a single throttle at its low
/// request rate, where standard mode converged in 5-12 s; the controller's own per-service
/// token bucket (`--aws-rate-limit`) keeps it under account limits either way.
pub async fn load_config() -> SdkConfig {
    let retry = match std::env::var("AWS_RETRY_MODE").ok().as_deref() {
        Some("standard") | Some("legacy") => RetryConfig::standard(),
        _ => RetryConfig::adaptive(),
    };
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry.with_max_attempts(5))
        // A stalled connection must not hold an object's reconcile forever.
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .operation_attempt_timeout(std::time::Duration::from_secs(30))
                .operation_timeout(std::time::Duration::from_secs(120))
                .build(),
        )
        .load()
        .await
}

/// A Cognito config override without SDK retries, for creates that have no idempotency
/// token: a retry after a lost response would duplicate; the controller's own retry
/// observes first.
pub fn no_retry_cognito() -> aws_sdk_cognitoidentityprovider::config::Builder {
    aws_sdk_cognitoidentityprovider::config::Builder::default()
        .retry_config(RetryConfig::disabled())
}

/// The SDK's default HTTPS client (hyper 1 with rustls on aws-lc), which the rate
/// limiter wraps.
fn default_http_client() -> SharedHttpClient {
    use aws_smithy_http_client::{Builder, tls};
    Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https()
}

impl Aws {
    /// Build every client from `config`, and find the account with STS.
    pub async fn connect(config: &SdkConfig) -> Result<Self> {
        Self::connect_with(config, &RateLimits::default(), None).await
    }

    /// [`Aws::connect`] with client-side rate limits per service, and with every write
    /// refused while `fence` (if any) does not allow it.
    pub async fn connect_with(
        config: &SdkConfig,
        limits: &RateLimits,
        fence: Option<Fence>,
    ) -> Result<Self> {
        let region = config.region().map(|r| r.to_string()).ok_or_else(|| {
            ReconcileError::terminal(
                Reason::NoRegion,
                "no AWS region configured: set AWS_REGION or a profile region",
            )
        })?;
        let calls = CallCounter::default();
        let lists = Arc::new(ListCaches::default());
        let watch = WriteWatch(lists.clone());
        let base_http = config.http_client().unwrap_or_else(default_http_client);
        macro_rules! client {
            ($krate:ident, $service:expr) => {{
                let mut conf = $krate::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .interceptor(watch.clone())
                    .http_client(limits.client($service, base_http.clone()));
                if let Some(fence) = &fence {
                    conf = conf.interceptor(FenceCheck(fence.clone()));
                }
                $krate::Client::from_conf(conf.build())
            }};
        }
        let sts = client!(aws_sdk_sts, "sts");
        let account_id = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| ReconcileError::from_sdk("GetCallerIdentity", e))?
            .account
            .ok_or_else(|| {
                ReconcileError::terminal(Reason::NoAccount, "STS returned no account")
            })?;
        Ok(Self {
            region,
            account_id,
            cognito: client!(aws_sdk_cognitoidentityprovider, "cognito-idp"),
            iam: client!(aws_sdk_iam, "iam"),
            ecr: client!(aws_sdk_ecr, "ecr"),
            agentcore: client!(aws_sdk_bedrockagentcorecontrol, "bedrock-agentcore"),
            secrets: client!(aws_sdk_secretsmanager, "secretsmanager"),
            ssm: client!(aws_sdk_ssm, "ssm"),
            calls,
            lists,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_classified() {
        for (op, access) in [
            ("GetRole", Access::Read),
            ("ListTagsForResource", Access::Read),
            ("DescribeImages", Access::Read),
            ("BatchGetImage", Access::Read),
            ("BatchCheckLayerAvailability", Access::Read),
            ("CreateRole", Access::Write),
            ("PutRolePolicy", Access::Write),
            ("TagResource", Access::Write),
            ("AdminSetUserPassword", Access::Write),
            ("AdminGetUser", Access::Read),
            ("AdminCreateUser", Access::Write),
        ] {
            assert_eq!(access_of(op), access, "{op}");
        }
    }
}
