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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_bedrockagentcorecontrol::operation::get_agent_runtime::GetAgentRuntimeOutput;
use aws_sdk_bedrockagentcorecontrol::types::{
    AgentRuntimeArtifact, AgentRuntimeStatus, AuthorizerConfiguration, ContainerConfiguration,
    CustomJwtAuthorizerConfiguration, LifecycleConfiguration, NetworkConfiguration,
    ProtocolConfiguration, ServerProtocol, VpcConfig,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{
    Change, Ctx, Deps, Kind, ObjectMeta, Observed, Outputs, Readiness, Reference, compare,
};
use crate::error::{ReconcileError, Result, aws_err, write_result};
use crate::list_cache::{self, ByName};
use crate::manifest::de::FieldProblem;

/// AgentCore's defaults for the lifecycle settings (seconds).
const DEFAULT_IDLE_TIMEOUT: i64 = 900;
const DEFAULT_MAX_LIFETIME: i64 = 28800;
/// AgentCore's range for both lifecycle settings (seconds, microVM runtimes).
const LIFECYCLE_RANGE: std::ops::RangeInclusive<i64> = 60..=28800;
/// The message for `allowedAudience` with Cognito access tokens (they carry no `aud`).
const COGNITO_AUD_MESSAGE: &str = "Cognito access tokens carry client_id, not aud: the runtime would answer \
     \"Claim 'aud' value mismatch\"; use allowedClients (or clientRefs) instead";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum NetworkMode {
    #[default]
    #[serde(rename = "PUBLIC")]
    Public,
    #[serde(rename = "VPC")]
    Vpc,
}

impl NetworkMode {
    fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Public => "PUBLIC",
            NetworkMode::Vpc => "VPC",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Protocol {
    #[default]
    #[serde(rename = "MCP")]
    Mcp,
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "A2A")]
    A2a,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Mcp => "MCP",
            Protocol::Http => "HTTP",
            Protocol::A2a => "A2A",
        }
    }
}

/// Which Cognito token clients present to the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TokenType {
    /// Access tokens: they carry `client_id` and `scope`, no `aud`.
    #[default]
    #[serde(rename = "access")]
    Access,
    /// ID tokens: they carry `aud` (the app client ID).
    #[serde(rename = "id")]
    Id,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// `PUBLIC` (default) or `VPC`.
    #[serde(default)]
    pub mode: NetworkMode,
    /// Subnet IDs (`subnet-…`) the runtime's network interfaces go in; required with `VPC`,
    /// not allowed with `PUBLIC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<Vec<String>>,
    /// Security group IDs (`sg-…`); required with `VPC`, not allowed with `PUBLIC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleSpec {
    /// Seconds an idle session lives (60-28800, default 900).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_runtime_session_timeout_seconds: Option<i64>,
    /// Seconds an instance lives at most (60-28800, default 28800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lifetime_seconds: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerSpec {
    /// Inbound JWT (OAuth/OIDC) authorization instead of SigV4.
    pub jwt: JwtSpec,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtSpec {
    /// metadata.name of a UserPool whose `discoveryUrl` output is used (or give `discoveryUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_pool_ref: Option<String>,
    /// OpenID discovery URL: `https://…/.well-known/openid-configuration` (or give `userPoolRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// metadata.names of UserPoolClients whose `clientId` outputs are allowed clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_refs: Option<Vec<String>>,
    /// Literal client IDs accepted in the token's `client_id` (merged with `clientRefs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_clients: Option<Vec<String>>,
    /// Values accepted in the token's `aud` claim (ID tokens; Cognito access tokens have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_audience: Option<Vec<String>>,
    /// Scopes the token must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_scopes: Option<Vec<String>>,
    /// Which Cognito token clients present: `access` (default) or `id`. Only used to check
    /// the configuration.
    #[serde(default)]
    pub token_type: TokenType,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRuntimeSpec {
    /// The runtime's name in AgentCore: a letter, then letters, digits or `_` (at most 48).
    /// Defaults to metadata.name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_name: Option<String>,
    /// Free text, 1-4096 characters. Omitted: left as it is in AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// metadata.name of the Image whose `imageUri` output is the container to run.
    pub image_ref: String,
    /// metadata.name of the Role (its `arn` output) the runtime runs as.
    pub role_ref: String,
    /// Network placement: `{ mode: PUBLIC }` (default) or `{ mode: VPC, subnets, securityGroups }`.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Protocol the container serves: `MCP` (default), `HTTP` or `A2A`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Environment variables of the container (names: letters, digits, `_`, not starting
    /// with a digit).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// Session and instance lifetimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleSpec>,
    /// Inbound authorization; absent means SigV4 (IAM) callers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<AuthorizerSpec>,
}

/// Network configuration, normalised (sorted ID lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    pub mode: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
}

/// Lifecycle settings with AgentCore's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    pub idle_runtime_session_timeout_seconds: i64,
    pub max_lifetime_seconds: i64,
}

impl Lifecycle {
    /// AgentCore's rules for missing values: none → 900/28800; only maxLifetime → idle is
    /// min(900, maxLifetime); only idle → maxLifetime 28800.
    pub fn effective(idle: Option<i64>, max: Option<i64>) -> Self {
        let (idle, max) = match (idle, max) {
            (None, None) => (DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_LIFETIME),
            (None, Some(m)) => (m.min(DEFAULT_IDLE_TIMEOUT), m),
            (Some(i), None) => (i, DEFAULT_MAX_LIFETIME),
            (Some(i), Some(m)) => (i, m),
        };
        Self {
            idle_runtime_session_timeout_seconds: idle,
            max_lifetime_seconds: max,
        }
    }
}

/// The JWT authorizer, normalised: client/audience/scope lists sorted and deduplicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Jwt {
    pub discovery_url: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_clients: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_audience: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredRuntime {
    pub name: String,
    pub description: Option<String>,
    pub container_uri: String,
    pub role_arn: String,
    pub network: Network,
    pub protocol: Protocol,
    pub environment: BTreeMap<String, String>,
    pub lifecycle: Lifecycle,
    pub authorizer: Option<Jwt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedRuntime {
    pub id: String,
    pub arn: String,
    pub version: String,
    pub name: String,
    pub status: String,
    pub failure_reason: Option<String>,
    pub container_uri: Option<String>,
    pub role_arn: String,
    pub network: Network,
    /// `serverProtocol`; HTTP (AgentCore's default) when AWS reports none.
    pub protocol: String,
    pub environment: BTreeMap<String, String>,
    pub lifecycle: Lifecycle,
    /// Empty when AWS reports none.
    pub description: String,
    pub authorizer: Option<Jwt>,
    /// Region of the clients, for the invocation URL.
    pub region: String,
}

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

pub use super::names::valid_runtime_name;

/// Whether `key` is a usable environment variable name (`[A-Za-z_][A-Za-z0-9_]*`, ≤ 100).
fn valid_env_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.len() <= 100
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a discovery URL is a Cognito user pool's (`https://cognito-idp.<region>.amazonaws.com/…`).
fn is_cognito_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    let host = rest.split('/').next().unwrap_or_default();
    host.starts_with("cognito-idp.")
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
}

/// `prefix` followed by 8-17 letters or digits (`subnet-…`, `sg-…`).
fn valid_aws_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        (8..=17).contains(&rest.len()) && rest.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

fn sorted_set(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = items.into_iter().collect();
    v.sort();
    v.dedup();
    v
}

/// A deterministic AgentCore `clientToken` (33-256 characters of `[a-zA-Z0-9-]`, starting and
/// ending with a letter or digit): the runtime name (`_` → `-`) and a SHA-256 over the owner,
/// the name, the desired configuration and `salt`. The same request retried gets the same
/// token; a different configuration gets a different one.
pub fn client_token(owner: &str, desired: &DesiredRuntime, salt: &str) -> String {
    let config = serde_json::to_string(desired).unwrap_or_default();
    let mut h = Sha256::new();
    for part in [owner, desired.name.as_str(), config.as_str(), salt] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = hex::encode(h.finalize());
    format!("{}-{digest}", desired.name.replace('_', "-"))
}

/// The observed runtime from GetAgentRuntime, with AWS's defaults normalised.
fn observed_from(out: &GetAgentRuntimeOutput, region: &str) -> ObservedRuntime {
    let container_uri = match out.agent_runtime_artifact() {
        Some(AgentRuntimeArtifact::ContainerConfiguration(c)) => {
            Some(c.container_uri().to_string())
        }
        Some(_) => Some("(not a container artifact)".to_string()),
        None => None,
    };
    let network = match out.network_configuration() {
        Some(n) => Network {
            mode: n.network_mode().as_str().to_string(),
            subnets: sorted_set(
                n.network_mode_config()
                    .map(|v| v.subnets().to_vec())
                    .unwrap_or_default(),
            ),
            security_groups: sorted_set(
                n.network_mode_config()
                    .map(|v| v.security_groups().to_vec())
                    .unwrap_or_default(),
            ),
        },
        None => Network {
            mode: NetworkMode::Public.as_str().to_string(),
            subnets: Vec::new(),
            security_groups: Vec::new(),
        },
    };
    let lifecycle = out.lifecycle_configuration().map_or_else(
        || Lifecycle::effective(None, None),
        |l| {
            Lifecycle::effective(
                l.idle_runtime_session_timeout().map(i64::from),
                l.max_lifetime().map(i64::from),
            )
        },
    );
    let authorizer = out.authorizer_configuration().map(|a| match a {
        AuthorizerConfiguration::CustomJwtAuthorizer(j) => Jwt {
            discovery_url: j.discovery_url().to_string(),
            allowed_clients: sorted_set(j.allowed_clients().iter().cloned()),
            allowed_audience: sorted_set(j.allowed_audience().iter().cloned()),
            allowed_scopes: sorted_set(j.allowed_scopes().iter().cloned()),
        },
        _ => Jwt {
            discovery_url: "(an authorizer type this controller does not manage)".to_string(),
            allowed_clients: Vec::new(),
            allowed_audience: Vec::new(),
            allowed_scopes: Vec::new(),
        },
    });
    ObservedRuntime {
        id: out.agent_runtime_id().to_string(),
        arn: out.agent_runtime_arn().to_string(),
        version: out.agent_runtime_version().to_string(),
        name: out.agent_runtime_name().to_string(),
        status: out.status().as_str().to_string(),
        failure_reason: out.failure_reason().map(str::to_string),
        container_uri,
        role_arn: out.role_arn().to_string(),
        network,
        protocol: out
            .protocol_configuration()
            .map_or(Protocol::Http.as_str(), |p| p.server_protocol().as_str())
            .to_string(),
        environment: out
            .environment_variables()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        lifecycle,
        description: out.description().unwrap_or_default().to_string(),
        authorizer,
        region: region.to_string(),
    }
}

/// Environment values may be sensitive (AWS marks them so): the change names the keys and
/// masks every value; `to` flags the keys whose value is new or different.
fn environment_change(
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

fn build_err(e: impl std::fmt::Display) -> ReconcileError {
    ReconcileError::terminal("InvalidRequest", e.to_string())
}

/// The request parts CreateAgentRuntime and UpdateAgentRuntime share.
struct RequestParts {
    artifact: AgentRuntimeArtifact,
    network: NetworkConfiguration,
    protocol: ProtocolConfiguration,
    lifecycle: LifecycleConfiguration,
    authorizer: Option<AuthorizerConfiguration>,
    environment: HashMap<String, String>,
}

fn request_parts(d: &DesiredRuntime) -> Result<RequestParts> {
    let artifact = AgentRuntimeArtifact::ContainerConfiguration(
        ContainerConfiguration::builder()
            .container_uri(&d.container_uri)
            .build()
            .map_err(build_err)?,
    );
    let mut network = NetworkConfiguration::builder().network_mode(d.network.mode.as_str().into());
    if d.network.mode == NetworkMode::Vpc.as_str() {
        network = network.network_mode_config(
            VpcConfig::builder()
                .set_subnets(Some(d.network.subnets.clone()))
                .set_security_groups(Some(d.network.security_groups.clone()))
                .build()
                .map_err(build_err)?,
        );
    }
    let protocol = ProtocolConfiguration::builder()
        .server_protocol(ServerProtocol::from(d.protocol.as_str()))
        .build()
        .map_err(build_err)?;
    // Validated to 60..=28800 before, so these fit an i32.
    let lifecycle = LifecycleConfiguration::builder()
        .idle_runtime_session_timeout(
            i32::try_from(d.lifecycle.idle_runtime_session_timeout_seconds).map_err(build_err)?,
        )
        .max_lifetime(i32::try_from(d.lifecycle.max_lifetime_seconds).map_err(build_err)?)
        .build();
    let authorizer = match &d.authorizer {
        None => None,
        Some(j) => {
            // AgentCore rejects empty lists (min 1): leave out the ones with nothing in them.
            let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
            Some(AuthorizerConfiguration::CustomJwtAuthorizer(
                CustomJwtAuthorizerConfiguration::builder()
                    .discovery_url(&j.discovery_url)
                    .set_allowed_clients(non_empty(&j.allowed_clients))
                    .set_allowed_audience(non_empty(&j.allowed_audience))
                    .set_allowed_scopes(non_empty(&j.allowed_scopes))
                    .build()
                    .map_err(build_err)?,
            ))
        }
    };
    Ok(RequestParts {
        artifact,
        network: network.build().map_err(build_err)?,
        protocol,
        lifecycle,
        authorizer,
        environment: d
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

/// Classify a create/update failure. A role created moments ago is not yet assumable by
/// AgentCore (IAM is eventually consistent): that ValidationException is worth a retry.
fn write_err<E>(
    action: String,
) -> impl FnOnce(
    aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> ReconcileError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| {
        let role_not_ready = e.as_service_error().is_some_and(|se| {
            let msg = se.message().unwrap_or_default().to_ascii_lowercase();
            se.code() == Some("ValidationException")
                && msg.contains("role")
                && (msg.contains("assume") || msg.contains("validation failed"))
        });
        let err = ReconcileError::from_sdk(&action, e);
        if role_not_ready {
            ReconcileError::recoverable(
                "RoleNotReady",
                format!(
                    "{} (a new IAM role takes a few seconds to become assumable; retrying)",
                    err.message
                ),
            )
        } else {
            err
        }
    }
}

pub struct AgentRuntime {
    ctx: Arc<Ctx>,
    /// Ready runtimes as last read, by ID (see [`AgentRuntime::unchanged`]).
    seen: std::sync::Mutex<BTreeMap<String, Seen>>,
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
    format!(
        "{version} {}.{:09} {status}",
        updated.secs(),
        updated.subsec_nanos()
    )
}

/// How long an observation of a runtime whose stamp has not changed is used without
/// reading it again (its tags, which no version records, are read at least this often).
pub const SEEN_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(300);

/// A Ready runtime as last read, with its stamp then.
struct Seen {
    stamp: String,
    at: Instant,
    observed: Observed<ObservedRuntime>,
}

impl AgentRuntime {
    /// The runtime as last read, when the listing shows the same stamp and the reading is
    /// younger than [`SEEN_MAX_AGE`].
    async fn unchanged(&self, id: &str) -> Result<Option<Observed<ObservedRuntime>>> {
        let Some((stamp, observed)) = self.seen.lock().ok().and_then(|seen| {
            let s = seen.get(id)?;
            (s.at.elapsed() < SEEN_MAX_AGE).then(|| (s.stamp.clone(), s.observed.clone()))
        }) else {
            return Ok(None);
        };
        let client = &self.ctx.aws.agentcore;
        let listed = self
            .ctx
            .aws
            .lists
            .agent_runtimes
            .lookup(None, || list_runtimes(client), |m| m.stamp(id))
            .await?;
        Ok((listed.value.as_deref() == Some(stamp.as_str())).then_some(observed))
    }

    fn forget(&self, id: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(id);
        }
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

    async fn tag(&self, arn: &str) -> Result<()> {
        let mut req = self.ctx.aws.agentcore.tag_resource().resource_arn(arn);
        for (k, v) in self.ctx.owner_tags() {
            req = req.tags(k, v);
        }
        req.send()
            .await
            .map_err(aws_err(format!("TagResource {arn}")))?;
        Ok(())
    }
}

#[async_trait]
impl Kind for AgentRuntime {
    const KIND: &'static str = "AgentRuntime";
    const OUTPUTS: &'static [&'static str] = &["arn", "id", "version", "name", "invocationUrl"];
    type Spec = AgentRuntimeSpec;
    type Desired = DesiredRuntime;
    type Observed = ObservedRuntime;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            seen: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    fn references(spec: &AgentRuntimeSpec) -> Vec<Reference> {
        let mut refs = vec![
            Reference::new("spec.imageRef", "Image", &spec.image_ref),
            Reference::new("spec.roleRef", "Role", &spec.role_ref),
        ];
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
            if !valid_env_name(k) {
                problems.push(FieldProblem::new(
                    format!("spec.environment.{k}"),
                    format!("`{k}` is not a valid variable name: letters, digits and _ (at most 100), not starting with a digit"),
                ));
            }
            if v.chars().count() > 5000 {
                problems.push(FieldProblem::new(
                    format!("spec.environment.{k}"),
                    "the value is longer than AgentCore's 5000 characters",
                ));
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
            match client
                .get_agent_runtime()
                .agent_runtime_id(&id)
                .send()
                .await
            {
                Ok(out) => break out,
                // Listed, but deleted since: a listing begun after this call decides.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_resource_not_found_exception()) =>
                {
                    let cache = &self.ctx.aws.lists.agent_runtimes;
                    cache.edit(|m| m.remove(&d.name, &id)).await;
                    if fresh_since.is_some() {
                        return Ok(None);
                    }
                    fresh_since = Some(asked);
                }
                Err(e) => return Err(aws_err(format!("GetAgentRuntime {id}"))(e)),
            }
        };
        let resource = observed_from(&got, &self.ctx.aws.region);
        // moto keys tags by the versioned ARN it returns (…:agent/<uuid>:<version>), so the
        // tags are read on the ARN GetAgentRuntime returns now; update re-tags each new one.
        let tags = client
            .list_tags_for_resource()
            .resource_arn(&resource.arn)
            .send()
            .await
            .map_err(aws_err(format!("ListTagsForResource {}", resource.arn)))?;
        let owned = self.ctx.owns(
            tags.tags()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let observed = Observed { resource, owned };
        if Self::readiness(&observed.resource) == Readiness::Ready
            && let Ok(mut seen) = self.seen.lock()
        {
            let stamp = runtime_stamp(
                got.agent_runtime_version(),
                got.last_updated_at(),
                got.status().as_str(),
            );
            seen.insert(
                observed.resource.id.clone(),
                Seen {
                    stamp,
                    at: Instant::now(),
                    observed: observed.clone(),
                },
            );
        }
        Ok(Some(observed))
    }

    fn diff(d: &DesiredRuntime, o: &ObservedRuntime) -> Vec<Change> {
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
            .set_description(d.description.clone())
            .client_token(client_token(&self.ctx.owner, d, "create"));
        if !p.environment.is_empty() {
            req = req.set_environment_variables(Some(p.environment));
        }
        for (k, v) in self.ctx.owner_tags() {
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
        let p = request_parts(d)?;
        // The token also covers the version being replaced: going back to an earlier
        // configuration later is a new request, not a replay AgentCore would swallow.
        let token = client_token(
            &self.ctx.owner,
            d,
            &format!("update-from-{}", current.version),
        );
        // UpdateAgentRuntime replaces the configuration: artifact, role and network are
        // required, and everything else is passed too. The environment is always sent (an
        // empty map clears it). Without an authorizer in the manifest none is sent: AgentCore
        // then goes back to SigV4; moto keeps the old one.
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
            .set_description(d.description.clone())
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

/// Fill in the references from the dependencies' outputs. Pure.
fn resolve_runtime(
    meta: &ObjectMeta,
    spec: &AgentRuntimeSpec,
    deps: &Deps<'_>,
) -> Result<DesiredRuntime> {
    let authorizer = match &spec.authorizer {
        None => None,
        Some(a) => {
            let j = &a.jwt;
            let discovery_url = match (&j.discovery_url, &j.user_pool_ref) {
                (Some(url), _) => url.clone(),
                (None, Some(pool)) => deps.get("UserPool", pool, "discoveryUrl")?,
                (None, None) => {
                    return Err(ReconcileError::terminal(
                        "InvalidSpec",
                        "spec.authorizer.jwt needs userPoolRef or discoveryUrl",
                    ));
                }
            };
            let mut clients: Vec<String> = j.allowed_clients.clone().unwrap_or_default();
            for c in j.client_refs.iter().flatten() {
                clients.push(deps.get("UserPoolClient", c, "clientId")?);
            }
            Some(Jwt {
                discovery_url,
                allowed_clients: sorted_set(clients),
                allowed_audience: sorted_set(j.allowed_audience.clone().unwrap_or_default()),
                allowed_scopes: sorted_set(j.allowed_scopes.clone().unwrap_or_default()),
            })
        }
    };
    let lifecycle = spec.lifecycle.as_ref().map_or_else(
        || Lifecycle::effective(None, None),
        |l| {
            Lifecycle::effective(
                l.idle_runtime_session_timeout_seconds,
                l.max_lifetime_seconds,
            )
        },
    );
    Ok(DesiredRuntime {
        name: spec
            .runtime_name
            .clone()
            .unwrap_or_else(|| meta.name.clone()),
        description: spec.description.clone(),
        container_uri: deps.get("Image", &spec.image_ref, "imageUri")?,
        role_arn: deps.get("Role", &spec.role_ref, "arn")?,
        network: Network {
            mode: spec.network.mode.as_str().to_string(),
            subnets: sorted_set(spec.network.subnets.clone().unwrap_or_default()),
            security_groups: sorted_set(spec.network.security_groups.clone().unwrap_or_default()),
        },
        protocol: spec.protocol,
        environment: spec.environment.clone(),
        lifecycle,
        authorizer,
    })
}

fn validate_network(n: &NetworkSpec, problems: &mut Vec<FieldProblem>) {
    let lists = [
        ("spec.network.subnets", &n.subnets, "subnet-", "subnet"),
        (
            "spec.network.securityGroups",
            &n.security_groups,
            "sg-",
            "security group",
        ),
    ];
    for (path, list, prefix, what) in lists {
        match (n.mode, list) {
            (NetworkMode::Public, Some(_)) => problems.push(FieldProblem::new(
                path,
                "only allowed with mode: VPC; remove it, or set spec.network.mode: VPC",
            )),
            (NetworkMode::Vpc, None) => problems.push(FieldProblem::new(
                path,
                format!("mode VPC needs at least one {what} ID ({prefix}…)"),
            )),
            (NetworkMode::Vpc, Some(ids)) => {
                if ids.is_empty() || ids.len() > 16 {
                    problems.push(FieldProblem::new(
                        path,
                        format!(
                            "mode VPC needs 1-16 {what} IDs ({prefix}…); found {}",
                            ids.len()
                        ),
                    ));
                }
                for (i, id) in ids.iter().enumerate() {
                    if !valid_aws_id(id, prefix) {
                        problems.push(FieldProblem::new(
                            format!("{path}[{i}]"),
                            format!("`{id}` is not a {what} ID: {prefix} followed by 8-17 letters or digits"),
                        ));
                    }
                }
            }
            (NetworkMode::Public, None) => {}
        }
    }
}

fn validate_jwt(j: &JwtSpec, problems: &mut Vec<FieldProblem>) {
    const P: &str = "spec.authorizer.jwt";
    match (&j.user_pool_ref, &j.discovery_url) {
        (Some(_), Some(_)) => problems.push(FieldProblem::new(
            P,
            "set either userPoolRef or discoveryUrl, not both",
        )),
        (None, None) => problems.push(FieldProblem::new(
            P,
            "set userPoolRef (a UserPool's metadata.name) or discoveryUrl",
        )),
        _ => {}
    }
    if let Some(url) = &j.discovery_url
        && !(url.starts_with("https://") && url.ends_with("/.well-known/openid-configuration"))
    {
        problems.push(FieldProblem::new(
            format!("{P}.discoveryUrl"),
            format!("`{url}` must be an https URL ending in /.well-known/openid-configuration"),
        ));
    }
    let lists = [
        ("clientRefs", &j.client_refs),
        ("allowedClients", &j.allowed_clients),
        ("allowedAudience", &j.allowed_audience),
        ("allowedScopes", &j.allowed_scopes),
    ];
    for (field, list) in lists {
        if list.as_ref().is_some_and(Vec::is_empty) {
            problems.push(FieldProblem::new(
                format!("{P}.{field}"),
                "an empty list allows nothing; list at least one value, or leave the field out",
            ));
        }
    }
    if lists.iter().all(|(_, l)| l.is_none()) {
        problems.push(FieldProblem::new(
            P,
            "the authorizer must restrict who may call: set clientRefs, allowedClients, allowedAudience or allowedScopes",
        ));
    }
    for (i, s) in j.allowed_scopes.iter().flatten().enumerate() {
        let ok = !s.is_empty()
            && s.len() <= 255
            && s.chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
        if !ok {
            problems.push(FieldProblem::new(
                format!("{P}.allowedScopes[{i}]"),
                format!("`{s}` is not a valid scope: 1-255 printable ASCII characters without spaces, \" or \\"),
            ));
        }
    }
    let cognito =
        j.user_pool_ref.is_some() || j.discovery_url.as_deref().is_some_and(is_cognito_url);
    if cognito && j.token_type == TokenType::Access && j.allowed_audience.is_some() {
        problems.push(FieldProblem::new(
            format!("{P}.allowedAudience"),
            COGNITO_AUD_MESSAGE,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{Schema, SchemaOf};
    use crate::manifest::yaml::parse_documents;
    use serde_json::json;

    fn desired() -> DesiredRuntime {
        DesiredRuntime {
            name: "mcp_server_ac".into(),
            description: None,
            container_uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp@sha256:abc".into(),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            network: Network {
                mode: "PUBLIC".into(),
                subnets: vec![],
                security_groups: vec![],
            },
            protocol: Protocol::Mcp,
            environment: BTreeMap::new(),
            lifecycle: Lifecycle::effective(None, None),
            authorizer: Some(Jwt {
                discovery_url: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x/.well-known/openid-configuration"
                    .into(),
                allowed_clients: vec!["a".into(), "b".into()],
                allowed_audience: vec![],
                allowed_scopes: vec![],
            }),
        }
    }

    fn observed() -> ObservedRuntime {
        let d = desired();
        ObservedRuntime {
            id: "mcp_server_ac-abcdefghij".into(),
            arn:
                "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/mcp_server_ac-abcdefghij"
                    .into(),
            version: "1".into(),
            name: d.name,
            status: "READY".into(),
            failure_reason: None,
            container_uri: Some(d.container_uri),
            role_arn: d.role_arn,
            network: d.network,
            protocol: "MCP".into(),
            environment: BTreeMap::new(),
            lifecycle: d.lifecycle,
            description: String::new(),
            authorizer: d.authorizer,
            region: "us-east-1".into(),
        }
    }

    fn fields(changes: &[Change]) -> Vec<&str> {
        changes.iter().map(|c| c.field.as_str()).collect()
    }

    #[test]
    fn diff_table() {
        type Edit = fn(&mut DesiredRuntime, &mut ObservedRuntime);
        let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
            ("converged", |_, _| {}, vec![]),
            (
                "image",
                |d, _| d.container_uri = "x@sha256:new".into(),
                vec!["spec.image"],
            ),
            (
                "role",
                |d, _| d.role_arn = "arn:aws:iam::1:role/other".into(),
                vec!["spec.roleArn"],
            ),
            (
                "network",
                |d, _| d.network.mode = "VPC".into(),
                vec!["spec.network"],
            ),
            (
                "protocol",
                |d, _| d.protocol = Protocol::Http,
                vec!["spec.protocol"],
            ),
            (
                "lifecycle",
                |d, _| d.lifecycle = Lifecycle::effective(Some(60), None),
                vec!["spec.lifecycle"],
            ),
            (
                "description set",
                |d, _| d.description = Some("hello".into()),
                vec!["spec.description"],
            ),
            (
                "description omitted is left alone",
                |_, o| o.description = "old".into(),
                vec![],
            ),
            (
                "description same",
                |d, o| {
                    d.description = Some("x".into());
                    o.description = "x".into();
                },
                vec![],
            ),
            (
                "no authorizer wanted",
                |d, _| d.authorizer = None,
                vec!["spec.authorizer"],
            ),
            (
                "clients differ",
                |d, _| {
                    if let Some(j) = &mut d.authorizer {
                        j.allowed_clients = vec!["a".into()];
                    }
                },
                vec!["spec.authorizer"],
            ),
            (
                "environment",
                |d, _| {
                    d.environment.insert("A".into(), "1".into());
                },
                vec!["spec.environment"],
            ),
            (
                "image missing in AWS",
                |_, o| o.container_uri = None,
                vec!["spec.image"],
            ),
        ];
        for (name, edit, want) in cases {
            let (mut d, mut o) = (desired(), observed());
            edit(&mut d, &mut o);
            assert_eq!(fields(&AgentRuntime::diff(&d, &o)), want, "{name}");
        }
    }

    #[test]
    fn environment_values_are_masked() {
        let mut d = desired();
        let mut o = observed();
        o.environment.insert("KEEP".into(), "same".into());
        o.environment.insert("SECRETISH".into(), "old-value".into());
        o.environment.insert("GONE".into(), "bye".into());
        d.environment.insert("KEEP".into(), "same".into());
        d.environment.insert("SECRETISH".into(), "new-value".into());
        d.environment.insert("ADDED".into(), "hi".into());
        let changes = AgentRuntime::diff(&d, &o);
        assert_eq!(
            changes,
            vec![Change::new(
                "spec.environment",
                Some(json!({"GONE": "***", "KEEP": "***", "SECRETISH": "***"})),
                Some(json!({"ADDED": "*** (new)", "KEEP": "***", "SECRETISH": "*** (changed)"})),
            )]
        );
        let text = serde_json::to_string(&changes).unwrap_or_default();
        for v in ["same", "old-value", "new-value", "bye", "hi"] {
            assert!(!text.contains(&format!("\"{v}\"")), "{v} leaked: {text}");
        }
    }

    #[test]
    fn lifecycle_defaults() {
        let cases = [
            (None, None, (900, 28800)),
            (None, Some(600), (600, 600)),
            (None, Some(3600), (900, 3600)),
            (Some(120), None, (120, 28800)),
            (Some(120), Some(240), (120, 240)),
        ];
        for (idle, max, (wi, wm)) in cases {
            let l = Lifecycle::effective(idle, max);
            assert_eq!(
                (
                    l.idle_runtime_session_timeout_seconds,
                    l.max_lifetime_seconds
                ),
                (wi, wm),
                "{idle:?} {max:?}"
            );
        }
    }

    #[test]
    fn observed_normalises_aws_defaults() {
        use aws_sdk_bedrockagentcorecontrol::types::NetworkMode as SdkMode;
        let d = desired();
        let out = GetAgentRuntimeOutput::builder()
            .agent_runtime_arn(
                "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/mcp_server_ac-abcdefghij",
            )
            .agent_runtime_id("mcp_server_ac-abcdefghij")
            .agent_runtime_name("mcp_server_ac")
            .agent_runtime_version("1")
            .role_arn(&d.role_arn)
            .status(AgentRuntimeStatus::Ready)
            .created_at(aws_smithy_types::DateTime::from_secs(0))
            .last_updated_at(aws_smithy_types::DateTime::from_secs(0))
            .network_configuration(
                NetworkConfiguration::builder()
                    .network_mode(SdkMode::Public)
                    .build()
                    .unwrap(),
            )
            .agent_runtime_artifact(AgentRuntimeArtifact::ContainerConfiguration(
                ContainerConfiguration::builder()
                    .container_uri(&d.container_uri)
                    .build()
                    .unwrap(),
            ))
            .protocol_configuration(
                ProtocolConfiguration::builder()
                    .server_protocol(ServerProtocol::Mcp)
                    .port(8000)
                    .path("/mcp")
                    .build()
                    .unwrap(),
            )
            .lifecycle_configuration(LifecycleConfiguration::builder().build())
            .description("")
            .authorizer_configuration(AuthorizerConfiguration::CustomJwtAuthorizer(
                CustomJwtAuthorizerConfiguration::builder()
                    .discovery_url(&d.authorizer.as_ref().unwrap().discovery_url)
                    .allowed_clients("b")
                    .allowed_clients("a")
                    .allowed_clients("a")
                    .build()
                    .unwrap(),
            ))
            .build()
            .unwrap();
        let o = observed_from(&out, "us-east-1");
        assert_eq!(AgentRuntime::diff(&d, &o), vec![], "{o:?}");
        assert_eq!(AgentRuntime::readiness(&o), Readiness::Ready);
    }

    #[test]
    fn readiness_table() {
        let cases = [
            ("READY", None, Readiness::Ready),
            (
                "CREATING",
                None,
                Readiness::Progressing("status CREATING".into()),
            ),
            (
                "UPDATING",
                None,
                Readiness::Progressing("status UPDATING".into()),
            ),
            (
                "DELETING",
                None,
                Readiness::Progressing("status DELETING".into()),
            ),
            (
                "CREATE_FAILED",
                Some("image not found"),
                Readiness::Failed("runtime mcp_server_ac is CREATE_FAILED: image not found".into()),
            ),
            (
                "UPDATE_FAILED",
                None,
                Readiness::Failed(
                    "runtime mcp_server_ac is UPDATE_FAILED: AgentCore gave no reason".into(),
                ),
            ),
        ];
        for (status, reason, want) in cases {
            let mut o = observed();
            o.status = status.into();
            o.failure_reason = reason.map(String::from);
            assert_eq!(AgentRuntime::readiness(&o), want, "{status}");
        }
    }

    #[test]
    fn invocation_url_encodes_the_arn() {
        assert_eq!(
            invocation_url(
                "us-east-1",
                "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/mcp_server_ac-AbCdEf1234"
            ),
            "https://bedrock-agentcore.us-east-1.amazonaws.com/runtimes/\
             arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A123456789012%3Aruntime%2Fmcp_server_ac-AbCdEf1234\
             /invocations?qualifier=DEFAULT"
        );
    }

    #[test]
    fn client_tokens_fit_agentcore() {
        let d = desired();
        let a = client_token("ctl", &d, "create");
        assert_eq!(a, client_token("ctl", &d, "create"), "deterministic");
        assert_ne!(a, client_token("other", &d, "create"), "owner matters");
        assert_ne!(a, client_token("ctl", &d, "update-from-1"), "salt matters");
        let mut d2 = d.clone();
        d2.container_uri = "other".into();
        assert_ne!(
            a,
            client_token("ctl", &d2, "create"),
            "configuration matters"
        );
        let mut long = d.clone();
        long.name = format!("a{}_", "b".repeat(46));
        for t in [a, client_token("ctl", &long, "x")] {
            assert!((33..=256).contains(&t.len()), "{t}");
            assert!(
                t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{t}"
            );
            assert!(t.starts_with(|c: char| c.is_ascii_alphanumeric()), "{t}");
            assert!(t.ends_with(|c: char| c.is_ascii_alphanumeric()), "{t}");
        }
    }

    fn problems(name: &str, yaml: &str) -> Vec<(String, String)> {
        let docs = parse_documents(yaml).unwrap();
        SchemaOf::<AgentRuntime>(std::marker::PhantomData)
            .parse(name, &docs[0])
            .1
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect::<Vec<_>>()
    }

    #[test]
    fn validation_table() {
        let base = "imageRef: img\nroleRef: role\n";
        let cases: Vec<(&str, String, Vec<&str>)> = vec![
            ("mcp_server_ac", base.to_string(), vec![]),
            ("mcp-server", base.to_string(), vec!["metadata.name"]),
            (
                "mcp-server",
                format!("{base}runtimeName: mcp_server\n"),
                vec![],
            ),
            (
                "x",
                format!("{base}runtimeName: 9lives\n"),
                vec!["spec.runtimeName"],
            ),
            (
                "x",
                format!("{base}runtimeName: {}\n", "a".repeat(49)),
                vec!["spec.runtimeName"],
            ),
            (
                "x",
                format!("{base}description: \"\"\n"),
                vec!["spec.description"],
            ),
            (
                "x",
                format!("{base}network: {{ mode: VPC }}\n"),
                vec!["spec.network.subnets", "spec.network.securityGroups"],
            ),
            (
                "x",
                format!(
                    "{base}network: {{ mode: VPC, subnets: [subnet-0123456789abcdef0], securityGroups: [sg-01234567] }}\n"
                ),
                vec![],
            ),
            (
                "x",
                format!("{base}network: {{ mode: VPC, subnets: [], securityGroups: [bad] }}\n"),
                vec!["spec.network.subnets", "spec.network.securityGroups[0]"],
            ),
            (
                "x",
                format!("{base}network: {{ subnets: [subnet-01234567] }}\n"),
                vec!["spec.network.subnets"],
            ),
            (
                "x",
                format!("{base}protocol: GRPC\n"),
                vec!["spec.protocol"],
            ),
            (
                "x",
                format!("{base}environment: {{ GOOD_1: a, 1BAD: b }}\n"),
                vec!["spec.environment.1BAD"],
            ),
            (
                "x",
                format!("{base}lifecycle: {{ idleRuntimeSessionTimeoutSeconds: 30 }}\n"),
                vec!["spec.lifecycle.idleRuntimeSessionTimeoutSeconds"],
            ),
            (
                "x",
                format!("{base}lifecycle: {{ maxLifetimeSeconds: 28801 }}\n"),
                vec!["spec.lifecycle.maxLifetimeSeconds"],
            ),
            (
                "x",
                format!(
                    "{base}lifecycle: {{ idleRuntimeSessionTimeoutSeconds: 3600, maxLifetimeSeconds: 1800 }}\n"
                ),
                vec!["spec.lifecycle.idleRuntimeSessionTimeoutSeconds"],
            ),
            (
                "x",
                format!(
                    "{base}lifecycle: {{ idleRuntimeSessionTimeoutSeconds: 900, maxLifetimeSeconds: 28800 }}\n"
                ),
                vec![],
            ),
            (
                "x",
                format!("{base}authorizer: {{ jwt: {{ userPoolRef: pool, clientRefs: [c] }} }}\n"),
                vec![],
            ),
            (
                "x",
                format!("{base}authorizer: {{ jwt: {{ clientRefs: [c] }} }}\n"),
                vec!["spec.authorizer.jwt"],
            ),
            (
                "x",
                format!(
                    "{base}authorizer: {{ jwt: {{ userPoolRef: p, discoveryUrl: \"https://x/.well-known/openid-configuration\", allowedClients: [c] }} }}\n"
                ),
                vec!["spec.authorizer.jwt"],
            ),
            (
                "x",
                format!(
                    "{base}authorizer: {{ jwt: {{ discoveryUrl: \"http://x/.well-known/openid-configuration\", allowedClients: [c] }} }}\n"
                ),
                vec!["spec.authorizer.jwt.discoveryUrl"],
            ),
            (
                "x",
                format!("{base}authorizer: {{ jwt: {{ userPoolRef: p }} }}\n"),
                vec!["spec.authorizer.jwt"],
            ),
            (
                "x",
                format!(
                    "{base}authorizer: {{ jwt: {{ userPoolRef: p, clientRefs: [], allowedScopes: [s] }} }}\n"
                ),
                vec!["spec.authorizer.jwt.clientRefs"],
            ),
            (
                "x",
                format!(
                    "{base}authorizer: {{ jwt: {{ userPoolRef: p, allowedAudience: [c] }} }}\n"
                ),
                vec!["spec.authorizer.jwt.allowedAudience"],
            ),
            (
                "x",
                format!(
                    "{base}authorizer: {{ jwt: {{ userPoolRef: p, allowedAudience: [c], tokenType: id }} }}\n"
                ),
                vec![],
            ),
            (
                "x",
                format!(
                    "{base}authorizer: {{ jwt: {{ discoveryUrl: \"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_A/.well-known/openid-configuration\", allowedAudience: [c] }} }}\n"
                ),
                vec!["spec.authorizer.jwt.allowedAudience"],
            ),
            (
                "x",
                format!(
                    "{base}authorizer: {{ jwt: {{ discoveryUrl: \"https://login.example.com/.well-known/openid-configuration\", allowedAudience: [api] }} }}\n"
                ),
                vec![],
            ),
            (
                "x",
                format!(
                    "{base}authorizer: {{ jwt: {{ userPoolRef: p, allowedScopes: [\"has space\"] }} }}\n"
                ),
                vec!["spec.authorizer.jwt.allowedScopes[0]"],
            ),
        ];
        for (name, yaml, want) in cases {
            let got = problems(name, &yaml);
            let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
            assert_eq!(paths, want, "{name}: {yaml}\n{got:?}");
        }
    }

    #[test]
    fn cognito_audience_message_is_exact() {
        let got = problems(
            "x",
            "imageRef: i\nroleRef: r\nauthorizer: { jwt: { userPoolRef: p, allowedAudience: [c] } }\n",
        );
        assert_eq!(
            got,
            vec![(
                "spec.authorizer.jwt.allowedAudience".to_string(),
                "Cognito access tokens carry client_id, not aud: the runtime would answer \
                 \"Claim 'aud' value mismatch\"; use allowedClients (or clientRefs) instead"
                    .to_string()
            )]
        );
    }

    #[test]
    fn references_name_their_paths() {
        let docs = parse_documents(
            "imageRef: img\nroleRef: role\nauthorizer: { jwt: { userPoolRef: pool, clientRefs: [c1, c2] } }\n",
        )
        .unwrap();
        let spec: AgentRuntimeSpec = crate::manifest::de::from_node(&docs[0], "spec").unwrap();
        let refs: Vec<(String, String)> = AgentRuntime::references(&spec)
            .into_iter()
            .map(|r| (r.path, r.target.to_string()))
            .collect();
        let want = [
            ("spec.imageRef", "Image/img"),
            ("spec.roleRef", "Role/role"),
            ("spec.authorizer.jwt.userPoolRef", "UserPool/pool"),
            ("spec.authorizer.jwt.clientRefs[0]", "UserPoolClient/c1"),
            ("spec.authorizer.jwt.clientRefs[1]", "UserPoolClient/c2"),
        ];
        assert_eq!(
            refs,
            want.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn resolve_fills_references() {
        use crate::kinds::ObjectKey;
        let docs = parse_documents(
            "imageRef: img\nroleRef: role\nauthorizer: { jwt: { userPoolRef: pool, clientRefs: [c1], allowedClients: [lit, zz] } }\n",
        )
        .unwrap();
        let spec: AgentRuntimeSpec = crate::manifest::de::from_node(&docs[0], "spec").unwrap();
        let outputs = BTreeMap::from([
            (
                ObjectKey::new("Image", "img"),
                Outputs::from([("imageUri".to_string(), "uri@sha256:1".to_string())]),
            ),
            (
                ObjectKey::new("Role", "role"),
                Outputs::from([("arn".to_string(), "arn:role".to_string())]),
            ),
            (
                ObjectKey::new("UserPool", "pool"),
                Outputs::from([(
                    "discoveryUrl".to_string(),
                    "https://d/.well-known/openid-configuration".to_string(),
                )]),
            ),
            (
                ObjectKey::new("UserPoolClient", "c1"),
                Outputs::from([("clientId".to_string(), "cid".to_string())]),
            ),
        ]);
        let deps = Deps::new(&outputs);
        let meta = ObjectMeta {
            name: "mcp_server_ac".into(),
            ..Default::default()
        };
        let d = resolve_runtime(&meta, &spec, &deps).unwrap();
        assert_eq!(d.name, "mcp_server_ac");
        assert_eq!(d.container_uri, "uri@sha256:1");
        assert_eq!(d.role_arn, "arn:role");
        let j = d.authorizer.unwrap();
        assert_eq!(
            j.discovery_url,
            "https://d/.well-known/openid-configuration"
        );
        assert_eq!(j.allowed_clients, vec!["cid", "lit", "zz"]);
        assert_eq!(d.lifecycle, Lifecycle::effective(None, None));
        assert_eq!(d.protocol, Protocol::Mcp);

        let missing = BTreeMap::new();
        let err = resolve_runtime(&meta, &spec, &Deps::new(&missing)).unwrap_err();
        assert_eq!(err.severity, crate::error::Severity::Waiting);
    }

    #[test]
    fn declared_outputs_are_the_outputs() {
        crate::kinds::assert_declared_outputs::<AgentRuntime>(&AgentRuntime::outputs(
            &desired(),
            &observed(),
        ));
    }
}
