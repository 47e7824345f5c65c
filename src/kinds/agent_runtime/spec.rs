//! The AgentRuntime spec as written, its validation, and the desired runtime it resolves to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Reason, ReconcileError, Result};
use crate::kinds::{Deps, ObjectMeta, ValueSource};
use crate::model::de::FieldProblem;

/// AgentCore's defaults for the lifecycle settings (seconds).
pub(super) const DEFAULT_IDLE_TIMEOUT: i64 = 900;
pub(super) const DEFAULT_MAX_LIFETIME: i64 = 28800;
/// AgentCore's range for both lifecycle settings (seconds, microVM runtimes).
pub(super) const LIFECYCLE_RANGE: std::ops::RangeInclusive<i64> = 60..=28800;
/// The message for `allowedAudience` with Cognito access tokens (they carry no `aud`).
pub(super) const COGNITO_AUD_MESSAGE: &str = "Cognito access tokens carry client_id, not aud: the runtime would answer \
     \"Claim 'aud' value mismatch\"; use allowedClients (or clientRefs) instead";

/// Kinds whose outputs an environment variable may not take: they hold secrets, and
/// environment variables are not secret (see [`EnvValue`]).
pub(super) const SECRET_KINDS: &[&str] = &["Secret", "Token"];

/// An environment variable's value: text, or another object's output.
///
/// AgentCore keeps environment variables in the runtime's configuration, in every
/// version, and GetAgentRuntime returns them in clear to anyone allowed to read the
/// runtime: they are no place for a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EnvValue {
    Text(String),
    From(ValueSource),
}

impl EnvValue {
    pub(super) fn resolve(&self, deps: &Deps<'_>) -> Result<String> {
        match self {
            EnvValue::Text(t) => Ok(t.clone()),
            EnvValue::From(source) => source.resolve(deps),
        }
    }

    /// The literal text, when the value is written in the manifest.
    pub(super) fn text(&self) -> Option<&str> {
        match self {
            EnvValue::Text(t) => Some(t),
            EnvValue::From(source) => source.value.as_deref(),
        }
    }
}

impl From<&str> for EnvValue {
    fn from(text: &str) -> Self {
        EnvValue::Text(text.to_string())
    }
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = EnvValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "text (quote numbers and booleans), or { from: Kind/name, output: NAME }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<EnvValue, E> {
                Ok(EnvValue::Text(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(
                self,
                v: String,
            ) -> std::result::Result<EnvValue, E> {
                Ok(EnvValue::Text(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<EnvValue, A::Error> {
                ValueSource::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(EnvValue::From)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum NetworkMode {
    #[default]
    #[serde(rename = "PUBLIC")]
    Public,
    #[serde(rename = "VPC")]
    Vpc,
}

impl NetworkMode {
    pub(super) fn as_str(self) -> &'static str {
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
    pub(super) fn as_str(self) -> &'static str {
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
    /// Claims the token must carry, and what they must match: `{ name, valueType: STRING
    /// | STRING_ARRAY, operator: EQUALS | CONTAINS | CONTAINS_ANY, value | values }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_claims: Option<Vec<super::claims::ClaimSpec>>,
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
    /// with a digit). A value is text, or another object's output:
    /// `{ from: Parameter/x, output: value }` (never a Secret's or a Token's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, EnvValue>,
    /// Session and instance lifetimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleSpec>,
    /// Request headers passed through to the container (at most 20): `Authorization`
    /// (with a JWT authorizer) or custom `X-Amzn-Bedrock-AgentCore-Runtime-Custom-*`
    /// headers, or other names outside AWS's `X-Amz-`/`X-Amzn-` space.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_header_allowlist: Vec<String>,
    /// Tags of the runtime besides the controller's owner tag (at most 49). Given, they
    /// are the runtime's tags exactly (a key removed here is removed from it); left out,
    /// other tags are left alone. Tags belong to the runtime, not to a version: changing
    /// them makes no new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Delete old versions beyond this many (the newest are kept), except the versions
    /// an endpoint serves. Absent: every version is kept (AgentCore's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_versions: Option<u32>,
    /// Inbound authorization; absent means SigV4 (IAM) callers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<AuthorizerSpec>,
    /// A live probe by the daemon (`{ interval: 5m, tokenRef: NAME }`): not sent to AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<super::probe_spec::ProbeSpec>,
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
    /// Sorted (see [`super::claims::normalised`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_claims: Vec<super::claims::Claim>,
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
    /// Sorted; names are compared without regard to case (HTTP header names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers: Vec<String>,
    /// The user tags the runtime must have exactly (None: not managed). Not part of the
    /// configuration a version records, so not serialised into the update's client token.
    #[serde(skip)]
    pub tags: Option<BTreeMap<String, String>>,
    /// How many versions to keep (None: all). Not part of a version's configuration.
    #[serde(skip)]
    pub keep_versions: Option<u32>,
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
    /// The request header allowlist, sorted (empty: none).
    pub request_headers: Vec<String>,
    /// Its tags but the owner tag.
    pub tags: BTreeMap<String, String>,
    /// Old versions beyond the desired keepVersions that no endpoint serves (read only
    /// when keepVersions is set), oldest first.
    pub prunable_versions: Vec<String>,
    /// Region of the clients, for the invocation URL.
    pub region: String,
}

pub use crate::kinds::names::valid_runtime_name;

/// Why AgentCore would refuse the user tags (paths and messages): at most 49 besides the
/// owner tag; keys of 1-128 and values of at most 256 of letters, digits, spaces and
/// `._:/=+@-`; no `aws:` prefix, and not the owner tag's key.
pub fn tag_problems(tags: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if tags.len() > 49 {
        out.push((
            "spec.tags".to_string(),
            format!(
                "{} tags; AgentCore allows 50, one of them the controller's owner tag",
                tags.len()
            ),
        ));
    }
    let allowed = |t: &str| {
        t.chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "._:/=+@-".contains(c))
    };
    for (k, v) in tags {
        let path = format!("spec.tags.{k}");
        if k.is_empty() || k.chars().count() > 128 || !allowed(k) {
            out.push((
                path.clone(),
                format!("`{k}` is not a tag key: 1-128 letters, digits, spaces or ._:/=+@-"),
            ));
        } else if k.to_ascii_lowercase().starts_with("aws:") {
            out.push((
                path.clone(),
                "keys starting with aws: are AWS's own".to_string(),
            ));
        } else if k == crate::model::object::OWNER_TAG {
            out.push((
                path.clone(),
                "the controller sets this tag itself (its owner tag)".to_string(),
            ));
        }
        if v.chars().count() > 256 || !allowed(v) {
            out.push((
                path,
                "a tag value is at most 256 letters, digits, spaces or ._:/=+@-".to_string(),
            ));
        }
    }
    out
}

/// Header names sorted (case-insensitively) and without case-insensitive duplicates, as
/// AgentCore compares them.
pub fn sorted_headers(mut names: Vec<String>) -> Vec<String> {
    names.sort_by_key(|n| n.to_ascii_lowercase());
    names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    names
}

/// Why AgentCore would refuse `name` in a request header allowlist (None: it would not):
/// `[A-Za-z][A-Za-z0-9_-]{0,255}`, and nothing in AWS's `X-Amz-`/`X-Amzn-` space but
/// the custom `X-Amzn-Bedrock-AgentCore-Runtime-Custom-*` headers.
pub fn header_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let shaped = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 256
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !shaped {
        return Some(format!(
            "`{name}` is not a header name AgentCore takes: a letter, then letters, digits, `_` or `-` (at most 256)"
        ));
    }
    let lower = name.to_ascii_lowercase();
    let custom = "x-amzn-bedrock-agentcore-runtime-custom-";
    if (lower.starts_with("x-amz-") || lower.starts_with("x-amzn-"))
        && !(lower.starts_with(custom) && lower.len() > custom.len())
    {
        return Some(format!(
            "`{name}` is in AWS's own header space: custom headers are X-Amzn-Bedrock-AgentCore-Runtime-Custom-<name>"
        ));
    }
    None
}

/// Whether `key` is a usable environment variable name (`[A-Za-z_][A-Za-z0-9_]*`, ≤ 100).
pub(super) fn valid_env_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.len() <= 100
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a discovery URL is a Cognito user pool's (`https://cognito-idp.<region>.amazonaws.com/…`).
pub(super) fn is_cognito_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    let host = rest.split('/').next().unwrap_or_default();
    host.starts_with("cognito-idp.")
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
}

/// `prefix` followed by 8-17 letters or digits (`subnet-…`, `sg-…`).
pub(super) fn valid_aws_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        (8..=17).contains(&rest.len()) && rest.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

pub(super) fn sorted_set(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = items.into_iter().collect();
    v.sort();
    v.dedup();
    v
}

/// Fill in the references from the dependencies' outputs. Pure.
pub(super) fn resolve_runtime(
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
                        Reason::InvalidSpec,
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
                custom_claims: super::claims::normalised(
                    j.custom_claims
                        .iter()
                        .flatten()
                        .map(super::claims::Claim::of)
                        .collect(),
                ),
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
        environment: resolve_environment(spec, deps)?,
        lifecycle,
        authorizer,
        request_headers: sorted_headers(spec.request_header_allowlist.clone()),
        tags: spec.tags.clone(),
        keep_versions: spec.keep_versions,
    })
}

/// The environment with values taken from outputs; one AgentCore would refuse (longer
/// than 5000 characters) is the manifest's to fix.
fn resolve_environment(
    spec: &AgentRuntimeSpec,
    deps: &Deps<'_>,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in &spec.environment {
        let value = v.resolve(deps)?;
        if value.chars().count() > 5000 {
            return Err(ReconcileError::terminal(
                Reason::InvalidSpec,
                format!(
                    "spec.environment.{k}: the value is {} characters, more than AgentCore's 5000",
                    value.chars().count()
                ),
            ));
        }
        out.insert(k.clone(), value);
    }
    Ok(out)
}

pub(super) fn validate_network(n: &NetworkSpec, problems: &mut Vec<FieldProblem>) {
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

pub(super) fn validate_jwt(j: &JwtSpec, problems: &mut Vec<FieldProblem>) {
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
    if lists.iter().all(|(_, l)| l.is_none()) && j.custom_claims.is_none() {
        problems.push(FieldProblem::new(
            P,
            "the authorizer must restrict who may call: set clientRefs, allowedClients, allowedAudience, allowedScopes or customClaims",
        ));
    }
    if let Some(claims) = &j.custom_claims {
        super::claims::validate(&format!("{P}.customClaims"), claims, problems);
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
