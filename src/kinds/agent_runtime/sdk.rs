//! The mapping between the desired runtime and the AgentCore control API's requests and answers.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_bedrockagentcorecontrol::operation::get_agent_runtime::GetAgentRuntimeOutput;
use aws_sdk_bedrockagentcorecontrol::types::{
    AgentRuntimeArtifact, AuthorizerConfiguration, ContainerConfiguration,
    CustomJwtAuthorizerConfiguration, LifecycleConfiguration, NetworkConfiguration,
    ProtocolConfiguration, RequestHeaderConfiguration, ServerProtocol, VpcConfig,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use sha2::{Digest, Sha256};

use crate::error::{Reason, ReconcileError, Result};

use super::spec::*;

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
pub(super) fn observed_from(out: &GetAgentRuntimeOutput, region: &str) -> ObservedRuntime {
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
            // A rule this controller cannot express is kept as an impossible one, so that
            // it shows as drift and is replaced.
            custom_claims: super::claims::normalised(
                j.custom_claims()
                    .iter()
                    .map(|c| {
                        super::claims::Claim::from_sdk(c).unwrap_or_else(|| super::claims::Claim {
                            name: format!("(unknown rule on {})", c.inbound_token_claim_name()),
                            value_type: super::claims::ClaimValueType::String,
                            operator: super::claims::ClaimOperator::Equals,
                            values: Vec::new(),
                        })
                    })
                    .collect(),
            ),
        },
        _ => Jwt {
            discovery_url: "(an authorizer type this controller does not manage)".to_string(),
            allowed_clients: Vec::new(),
            allowed_audience: Vec::new(),
            allowed_scopes: Vec::new(),
            custom_claims: Vec::new(),
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
        request_headers: match out.request_header_configuration() {
            Some(RequestHeaderConfiguration::RequestHeaderAllowlist(names)) => {
                super::spec::sorted_headers(names.clone())
            }
            _ => Vec::new(),
        },
        tags: BTreeMap::new(),
        prunable_versions: Vec::new(),
        region: region.to_string(),
    }
}

pub(super) fn build_err(e: impl std::fmt::Display) -> ReconcileError {
    ReconcileError::terminal(Reason::InvalidRequest, e.to_string())
}

/// The request parts CreateAgentRuntime and UpdateAgentRuntime share.
pub(super) struct RequestParts {
    pub(super) artifact: AgentRuntimeArtifact,
    pub(super) network: NetworkConfiguration,
    pub(super) protocol: ProtocolConfiguration,
    pub(super) lifecycle: LifecycleConfiguration,
    pub(super) authorizer: Option<AuthorizerConfiguration>,
    pub(super) environment: HashMap<String, String>,
    /// None when the allowlist is empty (AgentCore takes no empty list).
    pub(super) request_headers: Option<RequestHeaderConfiguration>,
}

pub(super) fn request_parts(d: &DesiredRuntime) -> Result<RequestParts> {
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
                    .set_custom_claims(if j.custom_claims.is_empty() {
                        None
                    } else {
                        Some(
                            j.custom_claims
                                .iter()
                                .map(super::claims::Claim::to_sdk)
                                .collect::<Result<Vec<_>>>()?,
                        )
                    })
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
        request_headers: (!d.request_headers.is_empty())
            .then(|| RequestHeaderConfiguration::RequestHeaderAllowlist(d.request_headers.clone())),
    })
}

/// Classify a create/update failure. A role created moments ago is not yet assumable by
/// AgentCore (IAM is eventually consistent): that ValidationException is worth a retry.
pub(super) fn write_err<E>(
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
                Reason::RoleNotReady,
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
