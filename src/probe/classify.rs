//! Why a probe failed, from what the runtime answered: AgentCore's refusals (401/403) are
//! matched by the wording its inbound authorizer uses (the same text `local` answers with,
//! see [`crate::mcp::authz`]); a 404 is a runtime or endpoint that is not there, a 429 (or
//! 402, a quota) is throttling; every other HTTP error is the container's, no answer is
//! "unreachable". Pure: a table-driven test covers it.

use crate::mcp::authz;
use crate::mcp::client::{self, Error};

/// A probe failure's reason (the `Serving` condition's reason, and the `reason` label of
/// `agentcore_controller_probe_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The Token's published bearer has expired.
    TokenExpired,
    /// The token's app client is not in the authorizer's allowedClients.
    ClientMismatch,
    /// The token's `aud` is not in allowedAudience.
    AudienceMismatch,
    /// None of the token's scopes is in allowedScopes.
    ScopeMismatch,
    /// A customClaims rule (or `token_use`) is not met.
    ClaimMismatch,
    /// The token comes from another issuer than the authorizer's discovery URL.
    IssuerMismatch,
    /// The token is malformed, altered, or not valid yet.
    InvalidToken,
    /// A bearer token at a SigV4 runtime, or a SigV4 request at a JWT runtime.
    AuthMethodMismatch,
    /// Another refusal (401/403) the authorizer gave.
    Unauthorized,
    /// 404: no runtime, or no endpoint of that qualifier, at the invocation URL.
    NotFound,
    /// 429 (or 402, a service quota): AgentCore throttled the invocation.
    Throttled,
    /// Any other HTTP error: the container's (or AgentCore's in front of it).
    ContainerError,
    /// No answer: connection refused, DNS, TLS, timeout.
    Unreachable,
    /// An answer that is not MCP, or a JSON-RPC error.
    NotMcp,
    /// The probe could not be made: no token published, no credentials.
    NoCredentials,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenExpired => "TokenExpired",
            Self::ClientMismatch => "ClientMismatch",
            Self::AudienceMismatch => "AudienceMismatch",
            Self::ScopeMismatch => "ScopeMismatch",
            Self::ClaimMismatch => "ClaimMismatch",
            Self::IssuerMismatch => "IssuerMismatch",
            Self::InvalidToken => "InvalidToken",
            Self::AuthMethodMismatch => "AuthMethodMismatch",
            Self::Unauthorized => "Unauthorized",
            Self::NotFound => "NotFound",
            Self::Throttled => "Throttled",
            Self::ContainerError => "ContainerError",
            Self::Unreachable => "Unreachable",
            Self::NotMcp => "NotMcp",
            Self::NoCredentials => "NoCredentials",
        }
    }

    /// What to do about it.
    pub fn fix(self) -> &'static str {
        match self {
            Self::TokenExpired => {
                "the Token's published bearer has expired: check the Token (`agentcore-controller \
                 status`, its renewAt and last error); the controller renews it before expiry"
            }
            Self::ClientMismatch => {
                "the token's app client is not in the runtime's allowedClients: probe with a \
                 Token whose clientRef is among the authorizer's clientRefs (spec.probe.tokenRef), \
                 or add its client there; an authorizer changed by hand is put back at the \
                 runtime's next reconcile"
            }
            Self::AudienceMismatch => {
                "the token's aud is not in allowedAudience: Cognito access tokens carry no aud, \
                 use allowedClients (clientRefs), or publish the ID token (bearer: id)"
            }
            Self::ScopeMismatch => {
                "the token carries none of allowedScopes: give the Token's app client one of \
                 them, or change allowedScopes"
            }
            Self::ClaimMismatch => {
                "the token does not meet a claim rule of the authorizer (customClaims, or the \
                 token type): `agentcore-controller check-auth TOKEN` says which"
            }
            Self::IssuerMismatch => {
                "the token comes from another user pool than the authorizer's discovery URL: \
                 probe with a Token of that pool, or fix userPoolRef / discoveryUrl"
            }
            Self::InvalidToken => {
                "the published bearer is not a valid token for this runtime: \
                 `agentcore-controller check-auth TOKEN` checks it step by step"
            }
            Self::AuthMethodMismatch => {
                "the runtime's authorization method is not the one the probe used: a runtime \
                 with spec.authorizer.jwt takes bearer tokens, one without takes SigV4; check \
                 the deployed authorizer against the manifest (`agentcore-controller diff`)"
            }
            Self::Unauthorized => {
                "the runtime refused the request: `agentcore-controller check-auth TOKEN \
                 --probe` checks the token against the deployed authorizer"
            }
            Self::NotFound => {
                "AgentCore has no runtime or endpoint at the invocation URL: check that the \
                 runtime exists under that name (`agentcore-controller status`) and that the \
                 qualifier is the name of one of its endpoints (DEFAULT, or a RuntimeEndpoint's \
                 name)"
            }
            Self::Throttled => {
                "AgentCore throttled the probe: invoke the runtime less often (a longer \
                 spec.probe.interval, fewer clients) or ask for a higher InvokeAgentRuntime \
                 quota"
            }
            Self::ContainerError => {
                "the runtime's container answered with an error: check its logs (CloudWatch \
                 /aws/bedrock-agentcore/runtimes/…) and that it serves MCP on 0.0.0.0:8000/mcp"
            }
            Self::Unreachable => {
                "the invocation URL did not answer: check the network path to the AgentCore \
                 data plane (proxy, DNS) and the runtime's status"
            }
            Self::NotMcp => {
                "the answer is not MCP: check that the runtime's protocol is MCP and the \
                 container serves streamable HTTP at /mcp"
            }
            Self::NoCredentials => {
                "the probe has nothing to authorize with: check that the Token has published \
                 its bearer (or that the daemon has AWS credentials for SigV4)"
            }
        }
    }
}

/// How the probe authorized itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Bearer,
    SigV4,
}

/// The reason of a failed probe, from the error the MCP client met.
pub fn classify(sent: Sent, error: &Error) -> Reason {
    let (status, body) = match error {
        Error::Http { status, body, .. } => (*status, body),
        Error::Transport(_) => return Reason::Unreachable,
        Error::Rpc { .. } | Error::Protocol(_) => return Reason::NotMcp,
    };
    match status {
        401 | 403 => refused(sent, &client::error_message(body).unwrap_or_default()),
        404 => Reason::NotFound,
        402 | 429 => Reason::Throttled,
        _ => Reason::ContainerError,
    }
}

/// The reason of a 401/403, from the authorizer's wording.
fn refused(sent: Sent, m: &str) -> Reason {
    if m.starts_with("Authorization method mismatch") {
        return Reason::AuthMethodMismatch;
    }
    match m {
        authz::MISSING_BEARER => match sent {
            Sent::SigV4 => Reason::AuthMethodMismatch,
            Sent::Bearer => Reason::InvalidToken,
        },
        authz::TOKEN_EXPIRED => Reason::TokenExpired,
        authz::CLIENT_MISMATCH => Reason::ClientMismatch,
        authz::AUDIENCE_MISMATCH => Reason::AudienceMismatch,
        authz::SCOPE_MISMATCH => Reason::ScopeMismatch,
        authz::ISSUER_MISMATCH => Reason::IssuerMismatch,
        authz::INVALID_BEARER | authz::INVALID_SIGNATURE | authz::NOT_YET_VALID => {
            Reason::InvalidToken
        }
        _ if m.starts_with("Claim '") && m.ends_with("value mismatch with configuration") => {
            Reason::ClaimMismatch
        }
        _ => Reason::Unauthorized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::agent_runtime::claims::{Claim, ClaimOperator, ClaimValueType};
    use crate::token::jwt::{CHECKS, Expectation, TokenUse, Verdict};

    fn http(status: u16, message: &str) -> Error {
        Error::Http {
            status,
            challenge: None,
            body: serde_json::json!({ "message": message }).to_string(),
        }
    }

    /// The refusal `local` answers when `failing` (its first check decides) fails.
    fn refusal(failing: &'static str) -> Error {
        let expect = Expectation {
            token_use: TokenUse::Access,
            allowed_clients: vec!["c1".into()],
            custom_claims: vec![Claim {
                name: "tenant".into(),
                value_type: ClaimValueType::String,
                operator: ClaimOperator::Equals,
                values: vec!["acme".into()],
            }],
            ..Expectation::default()
        };
        let verdicts: Vec<Verdict> = CHECKS
            .iter()
            .map(|&c| Verdict {
                check: c,
                ok: c != failing,
                detail: if c == "expiry" && c == failing {
                    "expired at x".into()
                } else {
                    "x".into()
                },
                fix: None,
                claim: (c == "claims").then(|| "tenant".to_string()),
            })
            .collect();
        let r = authz::rejection(&verdicts, &expect).expect("refused");
        http(r.status, &r.message)
    }

    #[test]
    fn refusals_are_classified_by_agentcores_wording() {
        let cases: Vec<(&str, Sent, Error, Reason)> = vec![
            (
                "expired",
                Sent::Bearer,
                refusal("expiry"),
                Reason::TokenExpired,
            ),
            (
                "other client",
                Sent::Bearer,
                refusal("client"),
                Reason::ClientMismatch,
            ),
            (
                "aud",
                Sent::Bearer,
                refusal("audience"),
                Reason::AudienceMismatch,
            ),
            (
                "scope",
                Sent::Bearer,
                refusal("scope"),
                Reason::ScopeMismatch,
            ),
            (
                "custom claim",
                Sent::Bearer,
                refusal("claims"),
                Reason::ClaimMismatch,
            ),
            (
                "ID token for access",
                Sent::Bearer,
                refusal("token_use"),
                Reason::ClientMismatch,
            ),
            (
                "other pool",
                Sent::Bearer,
                refusal("issuer"),
                Reason::IssuerMismatch,
            ),
            (
                "altered",
                Sent::Bearer,
                refusal("signature"),
                Reason::InvalidToken,
            ),
            (
                "bearer at a SigV4 runtime",
                Sent::Bearer,
                http(403, authz::METHOD_MISMATCH),
                Reason::AuthMethodMismatch,
            ),
            (
                "SigV4 at a JWT runtime",
                Sent::SigV4,
                http(
                    401,
                    &authz::missing_bearer(Some("AWS4-HMAC-SHA256 x")).message,
                ),
                Reason::AuthMethodMismatch,
            ),
            (
                "bearer lost on the way",
                Sent::Bearer,
                http(401, authz::MISSING_BEARER),
                Reason::InvalidToken,
            ),
            (
                "other 403",
                Sent::SigV4,
                http(403, "AccessDeniedException"),
                Reason::Unauthorized,
            ),
            (
                "container 500",
                Sent::Bearer,
                http(500, "boom"),
                Reason::ContainerError,
            ),
            (
                "container 500 whose body has an authorizer's wording",
                Sent::Bearer,
                http(500, authz::TOKEN_EXPIRED),
                Reason::ContainerError,
            ),
            (
                "container 400 whose body has an authorizer's wording",
                Sent::Bearer,
                http(400, authz::CLIENT_MISMATCH),
                Reason::ContainerError,
            ),
            (
                "unknown qualifier",
                Sent::Bearer,
                http(404, "No endpoint or agent found with qualifier 'prod'"),
                Reason::NotFound,
            ),
            (
                "404, not JSON",
                Sent::Bearer,
                Error::Http {
                    status: 404,
                    challenge: None,
                    body: "Not Found".into(),
                },
                Reason::NotFound,
            ),
            (
                "404 whose body has an authorizer's wording",
                Sent::Bearer,
                http(404, authz::TOKEN_EXPIRED),
                Reason::NotFound,
            ),
            (
                "throttled",
                Sent::Bearer,
                http(429, "Rate exceeded"),
                Reason::Throttled,
            ),
            (
                "service quota",
                Sent::SigV4,
                http(402, "ServiceQuotaExceededException"),
                Reason::Throttled,
            ),
            (
                "refused connection",
                Sent::Bearer,
                Error::Transport("connection refused".into()),
                Reason::Unreachable,
            ),
            (
                "JSON-RPC error",
                Sent::Bearer,
                Error::Rpc {
                    code: -32601,
                    message: "Method not found".into(),
                    data: None,
                },
                Reason::NotMcp,
            ),
            (
                "HTML",
                Sent::Bearer,
                Error::Protocol("not JSON".into()),
                Reason::NotMcp,
            ),
        ];
        for (name, sent, error, want) in cases {
            assert_eq!(classify(sent, &error), want, "{name}: {error}");
            assert!(!want.fix().is_empty());
        }
    }
}
