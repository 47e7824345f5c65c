//! `RuntimeEndpoint`: a named endpoint of an AgentCore runtime, pointing at one of its
//! versions.
//!
//! Every update of a runtime makes a new, immutable version. AgentCore's `DEFAULT`
//! endpoint always follows the latest one; a named endpoint moves only when it is updated.
//! So `prod` can stay on a version that was tried on `staging` (`version: latest`), and a
//! rollout is one line in git: `version: 7` → `version: 8` (`agentcore-controller rollout
//! promote` writes it). Clients call an endpoint with `?qualifier=NAME`.
//!
//! Endpoints carry tags: the owner tag marks the ones this controller made.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_bedrockagentcorecontrol::types::AgentRuntimeEndpointStatus;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::agent_runtime::probe_spec::{self, ProbeSpec};
use super::agent_runtime::{invocation_url, tag_owned, tag_problems, tags_of};
use super::names::valid_runtime_name;
use super::{
    Change, Ctx, Deps, Kind, ObjectMeta, Observed, Outputs, Readiness, Reference, compare,
};
use crate::error::{Reason, ReconcileError, Result, aws_err, read_result, write_result};
use crate::model::de::FieldProblem;
use crate::model::permissions::{Condition, Grant, Scope};

/// The endpoint AgentCore keeps on the latest version of every runtime by itself.
pub const DEFAULT_ENDPOINT: &str = "DEFAULT";

/// Which version an endpoint serves: a number, or the runtime's latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VersionSpec {
    #[default]
    Latest,
    Number(u32),
}

impl VersionSpec {
    /// AgentCore's bound for a version number (`[1-9][0-9]{0,4}`).
    pub const MAX: u32 = 99_999;

    fn parse(text: &str) -> Option<Self> {
        if text == "latest" {
            return Some(Self::Latest);
        }
        if text.is_empty() || text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(Self::Number)
    }
}

impl std::fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for VersionSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Latest => s.serialize_str("latest"),
            Self::Number(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for VersionSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        const EXPECTED: &str = "`latest` or a version number (1-99999)";
        impl serde::de::Visitor<'_> for Visitor {
            type Value = VersionSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<VersionSpec, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|n| (1..=VersionSpec::MAX).contains(n))
                    .map(VersionSpec::Number)
                    .ok_or_else(|| E::custom(format!("{v} is not {EXPECTED}")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<VersionSpec, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("{v} is not {EXPECTED}")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<VersionSpec, E> {
                VersionSpec::parse(v)
                    .filter(|s| *s == VersionSpec::Latest || v.len() <= 5)
                    .ok_or_else(|| E::custom(format!("`{v}` is not {EXPECTED}")))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeEndpointSpec {
    /// metadata.name of the AgentRuntime this endpoint belongs to.
    pub runtime_ref: String,
    /// The endpoint's name in AgentCore (the invocation's `qualifier`); default
    /// metadata.name. A letter, then at most 47 letters, digits or `_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The runtime version it serves: a number, or `latest` (the default: the controller
    /// moves it after every update of the runtime).
    #[serde(default)]
    pub version: VersionSpec,
    /// Free text, 1-256 characters. Omitted: left as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags besides the owner tag, given at creation (changing them later is not managed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Call the endpoint as a client would, every `interval` (see the AgentRuntime's
    /// `probe`); the runtime's authorizer decides the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredEndpoint {
    pub name: String,
    pub runtime_id: String,
    pub runtime_arn: String,
    /// The version resolved: `latest` is the runtime's current version.
    pub version: String,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedEndpoint {
    pub arn: String,
    pub name: String,
    pub status: String,
    pub failure_reason: Option<String>,
    pub live_version: Option<String>,
    pub target_version: Option<String>,
    pub description: String,
    pub runtime_arn: String,
    pub region: String,
    /// When AgentCore last changed it: part of an update's client token, so that a move
    /// back to an earlier version is a new request, not a replay of the first move.
    pub last_updated: String,
}

impl ObservedEndpoint {
    /// The version the endpoint serves or is moving to.
    fn version(&self) -> Option<&str> {
        self.target_version
            .as_deref()
            .or(self.live_version.as_deref())
    }
}

/// The invocation URL of a runtime's endpoint: the runtime's, qualified by the endpoint.
pub fn endpoint_invocation_url(region: &str, runtime_arn: &str, endpoint: &str) -> String {
    let base = invocation_url(region, runtime_arn);
    match base.split_once("?qualifier=") {
        Some((path, _)) => format!("{path}?qualifier={endpoint}"),
        None => format!("{base}?qualifier={endpoint}"),
    }
}

/// AgentCore's idempotency token for a create or update (33-256 characters).
fn client_token(owner: &str, d: &DesiredEndpoint, salt: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        owner,
        d.runtime_id.as_str(),
        d.name.as_str(),
        d.version.as_str(),
        d.description.as_deref().unwrap_or_default(),
        salt,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("ep-{}", hex::encode(h.finalize()))
}

pub struct RuntimeEndpoint {
    ctx: Arc<Ctx>,
}

fn endpoint_name(meta: &ObjectMeta, spec: &RuntimeEndpointSpec) -> String {
    spec.name.clone().unwrap_or_else(|| meta.name.clone())
}

fn resolve_endpoint(
    meta: &ObjectMeta,
    spec: &RuntimeEndpointSpec,
    deps: &Deps<'_>,
) -> Result<DesiredEndpoint> {
    let runtime = &spec.runtime_ref;
    Ok(DesiredEndpoint {
        name: endpoint_name(meta, spec),
        runtime_id: deps.get("AgentRuntime", runtime, "id")?,
        runtime_arn: deps.get("AgentRuntime", runtime, "arn")?,
        version: match spec.version {
            VersionSpec::Latest => deps.get("AgentRuntime", runtime, "version")?,
            VersionSpec::Number(n) => n.to_string(),
        },
        description: spec.description.clone(),
        tags: spec.tags.clone().unwrap_or_default(),
    })
}

#[async_trait]
impl Kind for RuntimeEndpoint {
    const KIND: &'static str = "RuntimeEndpoint";
    const LANE: &'static str = "bedrock-agentcore-control";
    const OUTPUTS: &'static [&'static str] = &["arn", "name", "version", "invocationUrl"];
    const CONTAINED_IN: &'static [&'static str] = &["AgentRuntime"];
    type Spec = RuntimeEndpointSpec;
    type Desired = DesiredEndpoint;
    type Observed = ObservedEndpoint;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    fn permissions(_meta: &ObjectMeta, _spec: &RuntimeEndpointSpec, scope: &Scope) -> Vec<Grant> {
        // Endpoint calls name the runtime and the endpoint (`runtime/ID/runtime-endpoint/NAME`):
        // both are granted, each only when it carries the owner tag, but for the reads and
        // the create, which name an endpoint that may not be ours or not exist yet.
        let both = vec![
            scope.arn("bedrock-agentcore", "runtime/*"),
            scope.arn("bedrock-agentcore", "runtime/*/runtime-endpoint/*"),
        ];
        vec![
            Grant::new(
                &[
                    "bedrock-agentcore:GetAgentRuntimeEndpoint",
                    "bedrock-agentcore:CreateAgentRuntimeEndpoint",
                    "bedrock-agentcore:ListTagsForResource",
                ],
                both.clone(),
            ),
            Grant::new(&["bedrock-agentcore:TagResource"], both.clone())
                .when(Condition::TaggedOnCreate),
            Grant::new(
                &[
                    "bedrock-agentcore:TagResource",
                    "bedrock-agentcore:UpdateAgentRuntimeEndpoint",
                    "bedrock-agentcore:DeleteAgentRuntimeEndpoint",
                ],
                both,
            )
            .when(Condition::Owned),
        ]
    }

    fn references(spec: &RuntimeEndpointSpec) -> Vec<Reference> {
        vec![Reference::new(
            "spec.runtimeRef",
            "AgentRuntime",
            &spec.runtime_ref,
        )]
    }

    fn validate(name: &str, spec: &RuntimeEndpointSpec, problems: &mut Vec<FieldProblem>) {
        let rule = "a letter, then at most 47 letters, digits or _";
        let (path, endpoint) = match &spec.name {
            Some(n) => ("spec.name", n.as_str()),
            None => ("metadata.name", name),
        };
        if !valid_runtime_name(endpoint) {
            let hint = if spec.name.is_none() {
                "; rename the object or set spec.name"
            } else {
                ""
            };
            problems.push(FieldProblem::new(
                path,
                format!("`{endpoint}` is not a valid endpoint name: {rule}{hint}"),
            ));
        } else if endpoint.eq_ignore_ascii_case(DEFAULT_ENDPOINT) {
            problems.push(FieldProblem::new(
                path,
                "DEFAULT is AgentCore's own endpoint (it always serves the latest version); name yours otherwise",
            ));
        }
        if let Some(d) = &spec.description
            && (d.is_empty() || d.chars().count() > 256)
        {
            problems.push(FieldProblem::new(
                "spec.description",
                "must be 1-256 characters; omit it for none",
            ));
        }
        if let Some(tags) = &spec.tags {
            for (path, message) in tag_problems(tags) {
                problems.push(FieldProblem::new(path, message));
            }
        }
        if let Some(probe) = &spec.probe {
            probe_spec::validate(probe, problems);
        }
    }

    fn resolve(
        &self,
        meta: &ObjectMeta,
        spec: &RuntimeEndpointSpec,
        deps: &Deps<'_>,
    ) -> Result<DesiredEndpoint> {
        resolve_endpoint(meta, spec, deps)
    }

    async fn observe(&self, d: &DesiredEndpoint) -> Result<Option<Observed<ObservedEndpoint>>> {
        let client = &self.ctx.aws.agentcore;
        // Torn down after its runtime: nothing to look for.
        if d.runtime_id.is_empty() {
            return Ok(None);
        }
        let got = client
            .get_agent_runtime_endpoint()
            .agent_runtime_id(&d.runtime_id)
            .endpoint_name(&d.name)
            .send()
            .await;
        let Some(out) = read_result(format!("GetAgentRuntimeEndpoint {}", d.name), got)? else {
            return Ok(None);
        };
        let arn = out.agent_runtime_endpoint_arn().to_string();
        let tags = tags_of(&self.ctx, &arn).await?;
        let owned = self
            .ctx
            .owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Ok(Some(Observed {
            owned,
            resource: ObservedEndpoint {
                arn,
                name: out.name().to_string(),
                status: out.status().as_str().to_string(),
                failure_reason: out.failure_reason().map(str::to_string),
                live_version: out.live_version().map(str::to_string),
                target_version: out.target_version().map(str::to_string),
                description: out.description().unwrap_or_default().to_string(),
                runtime_arn: if out.agent_runtime_arn().is_empty() {
                    d.runtime_arn.clone()
                } else {
                    out.agent_runtime_arn().to_string()
                },
                region: self.ctx.aws.region.clone(),
                last_updated: crate::memo::time_stamp(out.last_updated_at()),
            },
        }))
    }

    fn diff(d: &DesiredEndpoint, o: &ObservedEndpoint) -> Vec<Change> {
        let mut changes = Vec::new();
        compare(
            &mut changes,
            "spec.version",
            &o.version(),
            &Some(d.version.as_str()),
        );
        if let Some(desc) = &d.description {
            compare(&mut changes, "spec.description", &o.description, desc);
        }
        changes
    }

    fn readiness(o: &ObservedEndpoint) -> Readiness {
        match AgentRuntimeEndpointStatus::from(o.status.as_str()) {
            AgentRuntimeEndpointStatus::Ready => Readiness::Ready,
            AgentRuntimeEndpointStatus::CreateFailed
            | AgentRuntimeEndpointStatus::UpdateFailed
            | AgentRuntimeEndpointStatus::DeleteFailed => Readiness::Failed(format!(
                "endpoint {} is {}: {}",
                o.name,
                o.status,
                o.failure_reason
                    .as_deref()
                    .unwrap_or("AgentCore gave no reason")
            )),
            _ => Readiness::Progressing(format!("status {}", o.status)),
        }
    }

    fn outputs(_d: &DesiredEndpoint, o: &ObservedEndpoint) -> Outputs {
        Outputs::from([
            ("arn".to_string(), o.arn.clone()),
            ("name".to_string(), o.name.clone()),
            (
                "version".to_string(),
                o.live_version.clone().unwrap_or_default(),
            ),
            (
                "invocationUrl".to_string(),
                endpoint_invocation_url(&o.region, &o.runtime_arn, &o.name),
            ),
        ])
    }

    async fn create(&self, d: &DesiredEndpoint) -> Result<()> {
        let mut req = self
            .ctx
            .aws
            .agentcore
            .create_agent_runtime_endpoint()
            .agent_runtime_id(&d.runtime_id)
            .name(&d.name)
            .agent_runtime_version(&d.version)
            .set_description(d.description.clone());
        // No token of ours: endpoint names are unique within a runtime, so a create whose
        // answer was lost is found by the next observe (a repeat answers ConflictException),
        // and a fixed token would make AgentCore answer a create after a delete with the
        // deleted endpoint. The SDK gives each call its own token, kept across its retries.
        for (k, v) in self.ctx.owner_tags().into_iter().chain(d.tags.clone()) {
            req = req.tags(k, v);
        }
        req.send().await.map_err(endpoint_err(format!(
            "CreateAgentRuntimeEndpoint {}",
            d.name
        )))?;
        Ok(())
    }

    async fn update(
        &self,
        d: &DesiredEndpoint,
        o: &Observed<ObservedEndpoint>,
        changes: &[Change],
    ) -> Result<()> {
        if changes.iter().any(|c| c.field.starts_with("spec.")) {
            let current = &o.resource;
            let description = d
                .description
                .clone()
                .or_else(|| (!current.description.is_empty()).then(|| current.description.clone()));
            let salt = format!(
                "update-from-{}-at-{}",
                current.version().unwrap_or_default(),
                current.last_updated
            );
            self.ctx
                .aws
                .agentcore
                .update_agent_runtime_endpoint()
                .agent_runtime_id(&d.runtime_id)
                .endpoint_name(&d.name)
                .agent_runtime_version(&d.version)
                .set_description(description)
                .client_token(client_token(&self.ctx.owner, d, &salt))
                .send()
                .await
                .map_err(endpoint_err(format!(
                    "UpdateAgentRuntimeEndpoint {}",
                    d.name
                )))?;
        }
        if !o.owned {
            tag_owned(&self.ctx, &o.resource.arn).await?;
        }
        Ok(())
    }

    async fn delete(&self, d: &DesiredEndpoint, o: &ObservedEndpoint) -> Result<()> {
        let deleted = self
            .ctx
            .aws
            .agentcore
            .delete_agent_runtime_endpoint()
            .agent_runtime_id(&d.runtime_id)
            .endpoint_name(&o.name)
            .send()
            .await;
        write_result(format!("DeleteAgentRuntimeEndpoint {}", o.name), deleted)?;
        Ok(())
    }
}

/// A write's error; a version AgentCore does not have is the manifest's to fix.
fn endpoint_err<E>(
    action: String,
) -> impl FnOnce(
    aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> ReconcileError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    move |e| {
        let validation = e
            .as_service_error()
            .and_then(|se| se.code())
            .is_some_and(|c| c == "ValidationException");
        if validation {
            let detail = e
                .as_service_error()
                .and_then(|se| se.message())
                .unwrap_or("no detail")
                .to_string();
            return ReconcileError::terminal(
                Reason::InvalidSpec,
                format!(
                    "{action}: AgentCore refused it: {detail} (does the runtime have this version? `agentcore-controller rollout status` lists them)"
                ),
            );
        }
        aws_err(action)(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::ObjectKey;

    fn problems(name: &str, yaml: &str) -> Vec<String> {
        crate::kinds::problem_paths::<RuntimeEndpoint>(name, yaml)
    }

    #[test]
    fn validation_table() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("prod", "runtimeRef: rt\n", &[]),
            ("prod", "runtimeRef: rt\nversion: 3\n", &[]),
            ("prod", "runtimeRef: rt\nversion: \"3\"\n", &[]),
            ("prod", "runtimeRef: rt\nversion: latest\n", &[]),
            ("prod", "runtimeRef: rt\nversion: 0\n", &["spec.version"]),
            (
                "prod",
                "runtimeRef: rt\nversion: 100000\n",
                &["spec.version"],
            ),
            (
                "prod",
                "runtimeRef: rt\nversion: \"07\"\n",
                &["spec.version"],
            ),
            (
                "prod",
                "runtimeRef: rt\nversion: newest\n",
                &["spec.version"],
            ),
            ("prod", "runtimeRef: rt\nversion: -1\n", &["spec.version"]),
            ("my-prod", "runtimeRef: rt\n", &["metadata.name"]),
            ("my-prod", "runtimeRef: rt\nname: my_prod\n", &[]),
            ("x", "runtimeRef: rt\nname: 1st\n", &["spec.name"]),
            ("x", "runtimeRef: rt\nname: DEFAULT\n", &["spec.name"]),
            ("default", "runtimeRef: rt\n", &["metadata.name"]),
            (
                "x",
                "runtimeRef: rt\ndescription: \"\"\n",
                &["spec.description"],
            ),
            ("x", "version: 1\n", &["spec"]),
            ("x", "runtimeRef: rt\nprobe: { interval: 30s }\n", &[]),
            (
                "x",
                "runtimeRef: rt\nprobe: { interval: 1s }\n",
                &["spec.probe.interval"],
            ),
            (
                "x",
                "runtimeRef: rt\ntags: { \"aws:x\": y }\n",
                &["spec.tags.aws:x"],
            ),
        ];
        for (name, yaml, want) in cases {
            let got = problems(name, yaml);
            assert_eq!(&got, want, "{name}: {yaml}");
        }
    }

    fn observed() -> ObservedEndpoint {
        ObservedEndpoint {
            arn: "arn:aws:bedrock-agentcore:us-east-1:1:runtime/rt-1/runtime-endpoint/prod".into(),
            name: "prod".into(),
            status: "READY".into(),
            failure_reason: None,
            live_version: Some("2".into()),
            target_version: None,
            description: "".into(),
            runtime_arn: "arn:aws:bedrock-agentcore:us-east-1:1:runtime/rt-1".into(),
            region: "us-east-1".into(),
            last_updated: "2026-12-04T13:00:00Z".into(),
        }
    }

    fn desired() -> DesiredEndpoint {
        DesiredEndpoint {
            name: "prod".into(),
            runtime_id: "rt-1".into(),
            runtime_arn: "arn:aws:bedrock-agentcore:us-east-1:1:runtime/rt-1".into(),
            version: "2".into(),
            description: None,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn diff_table() {
        type Edit = fn(&mut DesiredEndpoint, &mut ObservedEndpoint);
        let cases: &[(&str, Edit, &[&str])] = &[
            ("same", |_, _| {}, &[]),
            ("version", |d, _| d.version = "3".into(), &["spec.version"]),
            (
                "moving to the wanted version",
                |d, o| {
                    d.version = "3".into();
                    o.target_version = Some("3".into());
                },
                &[],
            ),
            (
                "moving elsewhere",
                |_, o| o.target_version = Some("3".into()),
                &["spec.version"],
            ),
            (
                "description given",
                |d, _| d.description = Some("x".into()),
                &["spec.description"],
            ),
            (
                "description left alone",
                |_, o| o.description = "by hand".into(),
                &[],
            ),
        ];
        for (what, edit, want) in cases {
            let (mut d, mut o) = (desired(), observed());
            edit(&mut d, &mut o);
            let got: Vec<String> = RuntimeEndpoint::diff(&d, &o)
                .into_iter()
                .map(|c| c.field)
                .collect();
            assert_eq!(&got, want, "{what}");
        }
    }

    #[test]
    fn readiness_table() {
        for (status, want) in [
            ("READY", "Ready"),
            ("CREATING", "Progressing"),
            ("UPDATING", "Progressing"),
            ("CREATE_FAILED", "Failed"),
            ("UPDATE_FAILED", "Failed"),
            ("DELETING", "Progressing"),
        ] {
            let o = ObservedEndpoint {
                status: status.into(),
                ..observed()
            };
            let got = match RuntimeEndpoint::readiness(&o) {
                Readiness::Ready => "Ready",
                Readiness::Progressing(_) => "Progressing",
                Readiness::Failed(_) => "Failed",
            };
            assert_eq!(got, want, "{status}");
        }
    }

    #[test]
    fn outputs_qualify_the_invocation_url_with_the_endpoint() {
        let out = RuntimeEndpoint::outputs(&desired(), &observed());
        crate::kinds::assert_declared_outputs::<RuntimeEndpoint>(&out);
        assert_eq!(
            out["invocationUrl"],
            "https://bedrock-agentcore.us-east-1.amazonaws.com/runtimes/arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A1%3Aruntime%2Frt-1/invocations?qualifier=prod"
        );
        assert_eq!(out["version"], "2");
    }

    #[test]
    fn latest_resolves_to_the_runtimes_version() {
        let outputs = BTreeMap::from([(
            ObjectKey::new("AgentRuntime", "rt"),
            Outputs::from([
                ("id".to_string(), "rt-1".to_string()),
                ("arn".to_string(), "arn:rt".to_string()),
                ("version".to_string(), "7".to_string()),
            ]),
        )]);
        let deps = Deps::new(&outputs);
        let meta = ObjectMeta {
            name: "staging".into(),
            ..Default::default()
        };
        let spec = |version| RuntimeEndpointSpec {
            runtime_ref: "rt".into(),
            name: None,
            version,
            description: None,
            tags: None,
            probe: None,
        };
        let kind_resolve = |spec: &RuntimeEndpointSpec| resolve_endpoint(&meta, spec, &deps);
        assert_eq!(
            kind_resolve(&spec(VersionSpec::Latest)).unwrap().version,
            "7"
        );
        assert_eq!(
            kind_resolve(&spec(VersionSpec::Number(2))).unwrap().version,
            "2"
        );
        assert_eq!(
            kind_resolve(&spec(VersionSpec::Latest)).unwrap().name,
            "staging"
        );
    }

    #[test]
    fn client_tokens_fit_agentcore() {
        let d = desired();
        let t = client_token("ctl", &d, "create");
        assert!((33..=256).contains(&t.len()), "{t}");
        assert_ne!(t, client_token("ctl", &d, "update-from-1"));
        let mut d2 = d.clone();
        d2.version = "3".into();
        assert_ne!(t, client_token("ctl", &d2, "create"));
    }
}
