//! `AgentRuntime`: an Amazon Bedrock AgentCore Runtime that runs the MCP server container
//! image, with SigV4 (IAM) inbound auth or a JWT authorizer (typically Cognito).
//!
//! ```yaml
//! kind: AgentRuntime
//! metadata: { name: mcp_server_ac }
//! spec:
//!   imageRef: mcp-server-latest
//!   roleRef: agentcore-mcp_server_ac-role
//!   protocol: MCP
//!   authorizer:
//!     jwt: { userPoolRef: MCPServerPool, clientRefs: [MCPServerPoolClient] }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_bedrockagentcorecontrol::types::AgentRuntimeStatus;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::time::Instant;

use super::{
    Change, Ctx, Deps, Kind, ObjectMeta, Observed, Outputs, Readiness, Reference, compare,
};
use crate::error::{Result, aws_err, read_result, write_result};
use crate::list_cache::{self, ByName};
use crate::memo::{Memo, time_stamp};
use crate::model::de::FieldProblem;
use crate::model::permissions::{Condition, Grant, Scope};

pub mod claims;
pub mod probe_spec;
mod sdk;
mod spec;
#[cfg(test)]
mod tests;
pub mod versions;

pub use sdk::*;
pub use spec::*;

/// The URL MCP clients call: the runtime ARN, every non-alphanumeric character
/// percent-encoded, in the AgentCore data-plane endpoint of `region`.
pub fn invocation_url(region: &str, arn: &str) -> String {
    // Every reserved character is encoded (':' → %3A, '/' → %2F), the unreserved ones
    // (RFC 3986: letters, digits, - . _ ~) are not, as `urllib.parse.quote(arn, safe='')`.
    const COMPONENT: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    format!(
        "https://bedrock-agentcore.{region}.amazonaws.com/runtimes/{}/invocations?qualifier=DEFAULT",
        utf8_percent_encode(arn, COMPONENT)
    )
}

/// Environment values may be sensitive (AWS marks them so): the change names the keys and
/// masks every value; `to` flags the keys whose value is new or different.
/// The request header allowlist: at most 20 names AgentCore takes, no name twice (names
/// compare without regard to case), and `Authorization` only with a JWT authorizer (with
/// SigV4 the header carries the caller's AWS signature).
fn validate_headers(spec: &AgentRuntimeSpec, problems: &mut Vec<FieldProblem>) {
    let names = &spec.request_header_allowlist;
    if names.len() > 20 {
        problems.push(FieldProblem::new(
            "spec.requestHeaderAllowlist",
            format!("{} headers; AgentCore allows at most 20", names.len()),
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let path = format!("spec.requestHeaderAllowlist[{i}]");
        if let Some(why) = spec::header_problem(name) {
            problems.push(FieldProblem::new(path.clone(), why));
        }
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            problems.push(FieldProblem::new(
                path.clone(),
                format!("`{name}` is listed twice (header names ignore case)"),
            ));
        }
        if lower == "authorization" && spec.authorizer.is_none() {
            problems.push(FieldProblem::new(
                path,
                "Authorization can be passed through only with a JWT authorizer (with SigV4 it carries the caller's AWS signature)",
            ));
        }
        seen.push(lower);
    }
}

pub(super) fn environment_change(
    observed: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> Option<Change> {
    if observed == desired {
        return None;
    }
    let from: BTreeMap<&str, &str> = observed.keys().map(|k| (k.as_str(), "***")).collect();
    let to: BTreeMap<&str, &str> = desired
        .iter()
        .map(|(k, v)| {
            let shown = match observed.get(k) {
                Some(old) if old == v => "***",
                Some(_) => "*** (changed)",
                None => "*** (new)",
            };
            (k.as_str(), shown)
        })
        .collect();
    Some(Change::new(
        "spec.environment",
        serde_json::to_value(from).ok(),
        serde_json::to_value(to).ok(),
    ))
}

/// The configuration and tags the manifest and AWS disagree on.
fn diff_runtime(d: &DesiredRuntime, o: &ObservedRuntime) -> Vec<Change> {
    let mut changes = Vec::new();
    compare(
        &mut changes,
        "spec.image",
        &o.container_uri,
        &Some(d.container_uri.clone()),
    );
    compare(&mut changes, "spec.roleArn", &o.role_arn, &d.role_arn);
    compare(&mut changes, "spec.network", &o.network, &d.network);
    compare(
        &mut changes,
        "spec.protocol",
        &o.protocol.as_str(),
        &d.protocol.as_str(),
    );
    changes.extend(environment_change(&o.environment, &d.environment));
    compare(&mut changes, "spec.lifecycle", &o.lifecycle, &d.lifecycle);
    // An omitted description is left alone (AgentCore has no way to set an empty one).
    if let Some(desc) = &d.description {
        compare(&mut changes, "spec.description", &o.description, desc);
    }
    compare(
        &mut changes,
        "spec.authorizer",
        &o.authorizer,
        &d.authorizer,
    );
    let lower = |names: &[String]| -> Vec<String> {
        names.iter().map(|n| n.to_ascii_lowercase()).collect()
    };
    if let Some(tags) = &d.tags {
        compare(&mut changes, "spec.tags", &o.tags, tags);
    }
    if lower(&o.request_headers) != lower(&d.request_headers) {
        compare(
            &mut changes,
            "spec.requestHeaderAllowlist",
            &o.request_headers,
            &d.request_headers,
        );
    }
    changes
}

pub struct AgentRuntime {
    ctx: Arc<Ctx>,
    /// Ready runtimes as last read, by ID (see [`AgentRuntime::unchanged`]).
    seen: Memo<Observed<ObservedRuntime>>,
}

/// The ID of the runtime with this exact name, across all pages of ListAgentRuntimes.
pub async fn find_runtime_id(
    client: &aws_sdk_bedrockagentcorecontrol::Client,
    name: &str,
) -> Result<Option<String>> {
    Ok(list_runtimes(client).await?.ids(name).into_iter().next())
}

/// Every runtime, by name, across all pages of ListAgentRuntimes.
async fn list_runtimes(client: &aws_sdk_bedrockagentcorecontrol::Client) -> Result<ByName> {
    let mut all = ByName::default();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_agent_runtimes()
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(aws_err("ListAgentRuntimes"))?;
        for r in page.agent_runtimes() {
            let stamp = runtime_stamp(
                r.agent_runtime_version(),
                r.last_updated_at(),
                r.status().as_str(),
            );
            all.insert_stamped(r.agent_runtime_name(), r.agent_runtime_id(), stamp);
        }
        match page.next_token() {
            // Guard against a service that hands back the same token forever.
            Some(next) if !next.is_empty() && token.as_deref() != Some(next) => {
                token = Some(next.to_string());
            }
            _ => return Ok(all),
        }
    }
}

/// What changes whenever a runtime's configuration or state does: its version (every
/// update makes one), when it last changed, and its status.
fn runtime_stamp(version: &str, updated: &aws_smithy_types::DateTime, status: &str) -> String {
    format!("{version} {} {status}", time_stamp(updated))
}

impl AgentRuntime {
    /// The runtime as GetAgentRuntime describes it, with its tags.
    async fn observe_runtime(
        &self,
        d: &DesiredRuntime,
    ) -> Result<Option<Observed<ObservedRuntime>>> {
        let asked = Instant::now();
        let client = &self.ctx.aws.agentcore;
        let mut fresh_since = None;
        let got = loop {
            let Some(id) = self.find_id(&d.name, fresh_since).await? else {
                return Ok(None);
            };
            if let Some(o) = self.unchanged(&id).await? {
                return Ok(Some(o));
            }
            // moto advances the runtime's status (CREATING → READY) on GetAgentRuntime.
            let answer = client
                .get_agent_runtime()
                .agent_runtime_id(&id)
                .send()
                .await;
            match read_result(format!("GetAgentRuntime {id}"), answer)? {
                Some(out) => break out,
                // Listed, but deleted since: a listing begun after this call decides.
                None => {
                    let cache = &self.ctx.aws.lists.agent_runtimes;
                    cache.edit(|m| m.remove(&d.name, &id)).await;
                    if fresh_since.is_some() {
                        return Ok(None);
                    }
                    fresh_since = Some(asked);
                }
            }
        };
        let resource = observed_from(&got, &self.ctx.aws.region);
        // Tags are read on the ARN GetAgentRuntime answers with (AgentCore's
        // `runtime/ID`, the same for every version).
        let tags = tags_of(&self.ctx, &resource.arn).await?;
        let owned = self
            .ctx
            .owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut resource = resource;
        resource.tags = tags
            .into_iter()
            .filter(|(k, _)| k.as_str() != crate::model::object::OWNER_TAG)
            .collect();
        let observed = Observed { resource, owned };
        if Self::readiness(&observed.resource) == Readiness::Ready {
            let stamp = runtime_stamp(
                got.agent_runtime_version(),
                got.last_updated_at(),
                got.status().as_str(),
            );
            self.seen
                .put(&observed.resource.id, stamp, observed.clone());
        }
        Ok(Some(observed))
    }

    /// The runtime as last read, when the listing shows the same stamp and the reading is
    /// younger than [`MEMO_MAX_AGE`](crate::memo::MEMO_MAX_AGE) (its tags, which no
    /// version records, are read at least that often).
    async fn unchanged(&self, id: &str) -> Result<Option<Observed<ObservedRuntime>>> {
        if self.seen.is_empty() {
            return Ok(None);
        }
        let client = &self.ctx.aws.agentcore;
        let listed = self
            .ctx
            .aws
            .lists
            .agent_runtimes
            .lookup(None, || list_runtimes(client), |m| m.stamp(id))
            .await?;
        Ok(listed
            .value
            .and_then(|stamp| self.seen.get(id, &stamp))
            .map(|r| r.value))
    }

    fn forget(&self, id: &str) {
        self.seen.forget(id);
    }

    /// The runtime's ID from the shared listing (runtime names are unique).
    async fn find_id(&self, name: &str, fresh_since: Option<Instant>) -> Result<Option<String>> {
        let cache = &self.ctx.aws.lists.agent_runtimes;
        let client = &self.ctx.aws.agentcore;
        let found = match fresh_since {
            None => list_cache::ids_named(cache, name, || list_runtimes(client)).await?,
            Some(t) => {
                cache
                    .lookup(Some(t), || list_runtimes(client), |m| m.ids(name))
                    .await?
            }
        };
        Ok(found.value.into_iter().next())
    }

    /// Make the runtime's user tags `want` (from `have`): what is missing or different is
    /// tagged, what is not wanted untagged. The owner tag is never touched here.
    async fn set_tags(
        &self,
        arn: &str,
        have: &BTreeMap<String, String>,
        want: &BTreeMap<String, String>,
    ) -> Result<()> {
        let client = &self.ctx.aws.agentcore;
        let set: Vec<(&String, &String)> = want
            .iter()
            .filter(|(k, v)| have.get(*k) != Some(*v))
            .collect();
        if !set.is_empty() {
            let mut req = client.tag_resource().resource_arn(arn);
            for (k, v) in set {
                req = req.tags(k, v);
            }
            req.send()
                .await
                .map_err(aws_err(format!("TagResource {arn}")))?;
        }
        let gone: Vec<String> = have
            .keys()
            .filter(|k| !want.contains_key(*k))
            .cloned()
            .collect();
        if !gone.is_empty() {
            client
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(gone))
                .send()
                .await
                .map_err(aws_err(format!("UntagResource {arn}")))?;
        }
        Ok(())
    }

    async fn tag(&self, arn: &str) -> Result<()> {
        tag_owned(&self.ctx, arn).await
    }
}

/// The tags of an AgentCore resource (a runtime or an endpoint).
pub(crate) async fn tags_of(ctx: &Ctx, arn: &str) -> Result<BTreeMap<String, String>> {
    let out = ctx
        .aws
        .agentcore
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(aws_err(format!("ListTagsForResource {arn}")))?;
    Ok(out.tags.unwrap_or_default().into_iter().collect())
}

/// Put the owner tag on an AgentCore resource (a runtime or an endpoint).
pub(crate) async fn tag_owned(ctx: &Ctx, arn: &str) -> Result<()> {
    let mut req = ctx.aws.agentcore.tag_resource().resource_arn(arn);
    for (k, v) in ctx.owner_tags() {
        req = req.tags(k, v);
    }
    req.send()
        .await
        .map_err(aws_err(format!("TagResource {arn}")))?;
    Ok(())
}

#[async_trait]
impl Kind for AgentRuntime {
    const KIND: &'static str = "AgentRuntime";
    const LANE: &'static str = "bedrock-agentcore-control";
    const OUTPUTS: &'static [&'static str] = &["arn", "id", "version", "name", "invocationUrl"];
    type Spec = AgentRuntimeSpec;
    type Desired = DesiredRuntime;
    type Observed = ObservedRuntime;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            seen: Memo::default(),
        }
    }

    fn permissions(_meta: &ObjectMeta, spec: &AgentRuntimeSpec, scope: &Scope) -> Vec<Grant> {
        let runtimes = vec![scope.arn("bedrock-agentcore", "runtime/*")];
        let role = scope.name_of("Role", &spec.role_ref);
        let mut grants = vec![
            Grant::new(&["bedrock-agentcore:ListAgentRuntimes"], vec!["*".into()]),
            Grant::new(
                &[
                    "bedrock-agentcore:CreateAgentRuntime",
                    "bedrock-agentcore:TagResource",
                ],
                runtimes.clone(),
            )
            .when(Condition::TaggedOnCreate),
            Grant::new(
                &[
                    "bedrock-agentcore:GetAgentRuntime",
                    "bedrock-agentcore:UpdateAgentRuntime",
                    "bedrock-agentcore:ListTagsForResource",
                    "bedrock-agentcore:TagResource",
                    "bedrock-agentcore:UntagResource",
                    "bedrock-agentcore:DeleteAgentRuntime",
                ],
                runtimes,
            )
            .when(Condition::Owned),
            // The execution role, handed to AgentCore only.
            Grant::new(
                &["iam:PassRole"],
                vec![scope.iam_arn(&format!("role/{role}"))],
            )
            .when(Condition::PassedTo("bedrock-agentcore.amazonaws.com")),
        ];
        if spec.keep_versions.is_some() {
            // Which versions exist, and which ones endpoints serve.
            grants.push(
                Grant::new(
                    &[
                        "bedrock-agentcore:ListAgentRuntimeVersions",
                        "bedrock-agentcore:ListAgentRuntimeEndpoints",
                    ],
                    vec![scope.arn("bedrock-agentcore", "runtime/*")],
                )
                .when(Condition::Owned),
            );
        }
        grants
    }

    fn references(spec: &AgentRuntimeSpec) -> Vec<Reference> {
        let mut refs = vec![
            Reference::new("spec.imageRef", "Image", &spec.image_ref),
            Reference::new("spec.roleRef", "Role", &spec.role_ref),
        ];
        for (k, v) in &spec.environment {
            if let EnvValue::From(source) = v {
                refs.extend(source.reference(&format!("spec.environment.{k}")));
            }
        }
        if let Some(a) = &spec.authorizer {
            if let Some(pool) = &a.jwt.user_pool_ref {
                refs.push(Reference::new(
                    "spec.authorizer.jwt.userPoolRef",
                    "UserPool",
                    pool,
                ));
            }
            for (i, client) in a.jwt.client_refs.iter().flatten().enumerate() {
                refs.push(Reference::new(
                    format!("spec.authorizer.jwt.clientRefs[{i}]"),
                    "UserPoolClient",
                    client,
                ));
            }
        }
        refs
    }

    fn validate(name: &str, spec: &AgentRuntimeSpec, problems: &mut Vec<FieldProblem>) {
        let rule = "a letter, then at most 47 letters, digits or _ (AgentCore allows no - or .)";
        match &spec.runtime_name {
            Some(n) if !valid_runtime_name(n) => problems.push(FieldProblem::new(
                "spec.runtimeName",
                format!("`{n}` is not a valid runtime name: {rule}"),
            )),
            None if !valid_runtime_name(name) => problems.push(FieldProblem::new(
                "metadata.name",
                format!("`{name}` is not a valid runtime name: {rule}; rename the object or set spec.runtimeName"),
            )),
            _ => {}
        }
        if let Some(d) = &spec.description
            && (d.is_empty() || d.chars().count() > 4096)
        {
            problems.push(FieldProblem::new(
                "spec.description",
                "must be 1-4096 characters; omit it for none",
            ));
        }
        validate_network(&spec.network, problems);
        if spec.environment.len() > 50 {
            problems.push(FieldProblem::new(
                "spec.environment",
                format!(
                    "{} variables; AgentCore allows at most 50",
                    spec.environment.len()
                ),
            ));
        }
        for (k, v) in &spec.environment {
            let path = format!("spec.environment.{k}");
            if !valid_env_name(k) {
                problems.push(FieldProblem::new(
                    &path,
                    format!("`{k}` is not a valid variable name: letters, digits and _ (at most 100), not starting with a digit"),
                ));
            }
            if v.text().is_some_and(|t| t.chars().count() > 5000) {
                problems.push(FieldProblem::new(
                    &path,
                    "the value is longer than AgentCore's 5000 characters",
                ));
            }
            if let EnvValue::From(source) = v {
                source.validate(&path, problems);
                if let Some(r) = source.reference(&path)
                    && spec::SECRET_KINDS.contains(&&*r.target.kind)
                {
                    problems.push(FieldProblem::new(
                        r.path,
                        format!(
                            "a {} output may not be an environment variable: AgentCore keeps \
                             environment variables in clear in the runtime's configuration \
                             (every version, and GetAgentRuntime shows them to anyone who may \
                             read the runtime); give the container the secret's name as text \
                             and let it read the value from Secrets Manager with its role",
                            r.target.kind
                        ),
                    ));
                }
            }
        }
        validate_headers(spec, problems);
        if spec.keep_versions == Some(0) {
            problems.push(FieldProblem::new(
                "spec.keepVersions",
                "must be at least 1 (the latest version always stays); omit it to keep every version",
            ));
        }
        if let Some(tags) = &spec.tags {
            for (path, message) in spec::tag_problems(tags) {
                problems.push(FieldProblem::new(path, message));
            }
        }
        if let Some(l) = &spec.lifecycle {
            let fields = [
                (
                    "spec.lifecycle.idleRuntimeSessionTimeoutSeconds",
                    l.idle_runtime_session_timeout_seconds,
                ),
                ("spec.lifecycle.maxLifetimeSeconds", l.max_lifetime_seconds),
            ];
            let mut in_range = true;
            for (path, value) in fields {
                if let Some(v) = value
                    && !LIFECYCLE_RANGE.contains(&v)
                {
                    in_range = false;
                    problems.push(FieldProblem::new(
                        path,
                        format!("{v} is out of range: 60-28800 seconds"),
                    ));
                }
            }
            let eff = Lifecycle::effective(
                l.idle_runtime_session_timeout_seconds,
                l.max_lifetime_seconds,
            );
            if in_range && eff.idle_runtime_session_timeout_seconds > eff.max_lifetime_seconds {
                problems.push(FieldProblem::new(
                    "spec.lifecycle.idleRuntimeSessionTimeoutSeconds",
                    format!(
                        "{} is more than maxLifetimeSeconds ({}); the idle timeout must not exceed the lifetime",
                        eff.idle_runtime_session_timeout_seconds, eff.max_lifetime_seconds
                    ),
                ));
            }
        }
        if let Some(a) = &spec.authorizer {
            validate_jwt(&a.jwt, problems);
        }
        if let Some(p) = &spec.probe {
            probe_spec::validate(p, problems);
        }
    }

    fn resolve(
        &self,
        meta: &ObjectMeta,
        spec: &AgentRuntimeSpec,
        deps: &Deps<'_>,
    ) -> Result<DesiredRuntime> {
        resolve_runtime(meta, spec, deps)
    }

    async fn observe(&self, d: &DesiredRuntime) -> Result<Option<Observed<ObservedRuntime>>> {
        let Some(mut observed) = self.observe_runtime(d).await? else {
            return Ok(None);
        };
        let o = &mut observed.resource;
        if let Some(keep) = d.keep_versions
            && Self::readiness(o) == Readiness::Ready
            && let Ok(latest) = o.version.parse::<u32>()
        {
            let client = &self.ctx.aws.agentcore;
            o.prunable_versions = versions::read_prunable(client, &o.id, latest, keep)
                .await?
                .iter()
                .map(u32::to_string)
                .collect();
        }
        Ok(Some(observed))
    }

    fn diff(d: &DesiredRuntime, o: &ObservedRuntime) -> Vec<Change> {
        let mut changes = diff_runtime(d, o);
        if d.keep_versions.is_some() && !o.prunable_versions.is_empty() {
            changes.push(Change::new(
                "spec.keepVersions",
                serde_json::to_value(&o.prunable_versions).ok(),
                Some(serde_json::Value::String("(deleted)".into())),
            ));
        }
        changes
    }

    fn readiness(o: &ObservedRuntime) -> Readiness {
        let failed = || {
            Readiness::Failed(format!(
                "runtime {} is {}: {}",
                o.name,
                o.status,
                o.failure_reason
                    .as_deref()
                    .unwrap_or("AgentCore gave no reason")
            ))
        };
        match AgentRuntimeStatus::from(o.status.as_str()) {
            AgentRuntimeStatus::Ready => Readiness::Ready,
            AgentRuntimeStatus::CreateFailed
            | AgentRuntimeStatus::UpdateFailed
            | AgentRuntimeStatus::DeleteFailed => failed(),
            _ => Readiness::Progressing(format!("status {}", o.status)),
        }
    }

    fn outputs(_d: &DesiredRuntime, o: &ObservedRuntime) -> Outputs {
        Outputs::from([
            ("arn".to_string(), o.arn.clone()),
            ("id".to_string(), o.id.clone()),
            ("version".to_string(), o.version.clone()),
            ("name".to_string(), o.name.clone()),
            (
                "invocationUrl".to_string(),
                invocation_url(&o.region, &o.arn),
            ),
        ])
    }

    async fn create(&self, d: &DesiredRuntime) -> Result<()> {
        let p = request_parts(d)?;
        // AgentCore's idempotency: a retried create with the same token and parameters
        // returns the runtime the first attempt made. (moto ignores the token; observe finds
        // the runtime by name before any create anyway.)
        let mut req = self
            .ctx
            .aws
            .agentcore
            .create_agent_runtime()
            .agent_runtime_name(&d.name)
            .agent_runtime_artifact(p.artifact)
            .role_arn(&d.role_arn)
            .network_configuration(p.network)
            .protocol_configuration(p.protocol)
            .lifecycle_configuration(p.lifecycle)
            .set_authorizer_configuration(p.authorizer)
            .set_request_header_configuration(p.request_headers)
            .set_description(d.description.clone())
            .client_token(client_token(&self.ctx.owner, d, "create"));
        if !p.environment.is_empty() {
            req = req.set_environment_variables(Some(p.environment));
        }
        for (k, v) in self.ctx.owner_tags() {
            req = req.tags(k, v);
        }
        for (k, v) in d.tags.iter().flatten() {
            req = req.tags(k, v);
        }
        let cache = &self.ctx.aws.lists.agent_runtimes;
        let created = req
            .send()
            .await
            .inspect_err(|_| cache.invalidate())
            .map_err(write_err(format!("CreateAgentRuntime {}", d.name)))?;
        cache
            .edit(|m| m.insert(&d.name, created.agent_runtime_id()))
            .await;
        Ok(())
    }

    async fn update(
        &self,
        d: &DesiredRuntime,
        o: &Observed<ObservedRuntime>,
        changes: &[Change],
    ) -> Result<()> {
        let current = &o.resource;
        // Whatever the outcome, the next observe reads it again.
        self.forget(&current.id);
        if !changes.iter().any(|c| c.field.starts_with("spec.")) {
            // Only adoption: tag the runtime as it is.
            return self.tag(&current.arn).await;
        }
        // Tags are the runtime's, not a version's: set apart from the configuration.
        if let Some(tags) = &d.tags
            && changes.iter().any(|c| c.field == "spec.tags")
        {
            self.set_tags(&current.arn, &current.tags, tags).await?;
        }
        let configuration = |c: &Change| {
            c.field.starts_with("spec.") && c.field != "spec.tags" && c.field != "spec.keepVersions"
        };
        if !changes.iter().any(configuration) {
            // Old versions go only while the configuration stands: an update makes a new
            // latest, and the next pass counts again.
            if changes.iter().any(|c| c.field == "spec.keepVersions") {
                let client = &self.ctx.aws.agentcore;
                versions::delete(client, &current.id, &current.prunable_versions).await?;
            }
            return if o.owned {
                Ok(())
            } else {
                self.tag(&current.arn).await
            };
        }
        let p = request_parts(d)?;
        // The token also covers the version being replaced: going back to an earlier
        // configuration later is a new request, not a replay AgentCore would swallow.
        let token = client_token(
            &self.ctx.owner,
            d,
            &format!("update-from-{}", current.version),
        );
        // UpdateAgentRuntime replaces the configuration (each version is complete: what
        // the request leaves out is gone): artifact, role and network are required, and
        // everything else is passed too. The environment is always sent (an empty map
        // clears it). Without an authorizer in the manifest none is sent: AgentCore then
        // goes back to SigV4. A description the manifest leaves out is carried over as it
        // is (left alone, not cleared).
        let description = d
            .description
            .clone()
            .or_else(|| (!current.description.is_empty()).then(|| current.description.clone()));
        let out = self
            .ctx
            .aws
            .agentcore
            .update_agent_runtime()
            .agent_runtime_id(&current.id)
            .agent_runtime_artifact(p.artifact)
            .role_arn(&d.role_arn)
            .network_configuration(p.network)
            .protocol_configuration(p.protocol)
            .lifecycle_configuration(p.lifecycle)
            .set_authorizer_configuration(p.authorizer)
            .set_request_header_configuration(p.request_headers)
            .set_description(description)
            .set_environment_variables(Some(p.environment))
            .client_token(token)
            .send()
            .await
            .map_err(write_err(format!("UpdateAgentRuntime {}", d.name)))?;
        // Tags belong to the runtime and survive the update: only an adopted runtime is
        // tagged, at the ARN the update answered with. (A re-tag after every update would be
        // a second write that a run killed in between leaves undone.)
        if o.owned {
            return Ok(());
        }
        let arn = if out.agent_runtime_arn().is_empty() {
            current.arn.as_str()
        } else {
            out.agent_runtime_arn()
        };
        self.tag(arn).await
    }

    async fn delete(&self, _d: &DesiredRuntime, o: &ObservedRuntime) -> Result<()> {
        self.forget(&o.id);
        let deleted = self
            .ctx
            .aws
            .agentcore
            .delete_agent_runtime()
            .agent_runtime_id(&o.id)
            .send()
            .await;
        write_result(format!("DeleteAgentRuntime {}", o.name), deleted)?;
        self.ctx
            .aws
            .lists
            .agent_runtimes
            .edit(|m| m.remove(&o.name, &o.id))
            .await;
        Ok(())
    }
}
