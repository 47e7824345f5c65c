//! A runtime's JWT authorizer as `mcp` and `local` use it: its settings (read from AWS,
//! or resolved from the manifests against the live user pool and app clients), the
//! issuer's keys, and the refusal AgentCore would answer for a token the checks of
//! [`crate::token::jwt::check`] fail.

use jsonwebtoken::jwk::JwkSet;
use serde::Serialize;

use crate::kinds::agent_runtime::claims::{self, Claim};
use crate::token::jwt::{self, Expectation, TokenUse, Verdict};
use crate::token::oidc;

/// The settings of a JWT authorizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorizer {
    pub discovery_url: String,
    pub allowed_clients: Vec<String>,
    pub allowed_audience: Vec<String>,
    pub allowed_scopes: Vec<String>,
    /// The `customClaims` rules, normalised.
    pub custom_claims: Vec<Claim>,
    /// The Cognito token clients are meant to present (the manifest's `tokenType`).
    #[serde(skip)]
    pub token_use: TokenUse,
}

impl Authorizer {
    /// The authorizer of a deployed runtime.
    pub fn from_aws(
        cfg: &aws_sdk_bedrockagentcorecontrol::types::CustomJwtAuthorizerConfiguration,
        token_use: TokenUse,
    ) -> Self {
        Self {
            discovery_url: cfg.discovery_url().to_string(),
            allowed_clients: cfg.allowed_clients().to_vec(),
            allowed_audience: cfg.allowed_audience().to_vec(),
            allowed_scopes: cfg.allowed_scopes().to_vec(),
            // A rule this controller cannot read (an operator newer than it) is left out:
            // `local` is then more lenient than the runtime for that rule only.
            custom_claims: claims::readable(cfg.custom_claims()),
            token_use,
        }
    }

    /// Fetch the discovery document and the signing keys, as the runtime does.
    pub async fn keys(&self) -> Result<Keys, String> {
        let endpoint = endpoint_override();
        let discovery = oidc::fetch_discovery(&self.discovery_url, endpoint.as_deref()).await?;
        let jwks = oidc::fetch_jwks(&discovery.jwks_uri, endpoint.as_deref()).await?;
        Ok(Keys {
            expect: Expectation {
                issuer: discovery.issuer,
                token_use: self.token_use,
                allowed_clients: self.allowed_clients.clone(),
                allowed_audience: self.allowed_audience.clone(),
                allowed_scopes: self.allowed_scopes.clone(),
                custom_claims: self.custom_claims.clone(),
            },
            jwks,
        })
    }
}

/// What a token is checked against.
#[derive(Debug, Clone)]
pub struct Keys {
    pub expect: Expectation,
    pub jwks: JwkSet,
}

/// Where Cognito is reached: `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`, else
/// `AWS_ENDPOINT_URL` (an emulator), else AWS itself.
pub fn endpoint_override() -> Option<String> {
    std::env::var("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok()
}

/// A refused request: the status and message AgentCore would answer, and the checks that
/// failed (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub status: u16,
    pub message: String,
    pub checks: Vec<Verdict>,
}

/// AgentCore's answers, as its inbound authorizer words them (the probe classifies a
/// refusal by them).
pub const MISSING_BEARER: &str = "Missing bearer token";
pub const INVALID_BEARER: &str = "Invalid bearer token";
pub const INVALID_SIGNATURE: &str = "Invalid token signature";
pub const ISSUER_MISMATCH: &str = "Claim 'iss' value mismatch with configuration";
pub const NOT_YET_VALID: &str = "Token is not valid yet";
pub const TOKEN_EXPIRED: &str = "Token has expired";
pub const CLIENT_MISMATCH: &str = "Claim 'client_id' value mismatch with configuration";
pub const AUDIENCE_MISMATCH: &str = "Claim 'aud' value mismatch with configuration";
pub const TOKEN_USE_MISMATCH: &str = "Claim 'token_use' value mismatch with configuration";
pub const SCOPE_MISMATCH: &str = "Claim 'scope' value mismatch with configuration";

/// The check a request without a bearer token fails.
const BEARER_CHECK: &str = "bearer";

/// The refusal for a request without `Authorization: Bearer …`.
pub fn missing_bearer(authorization: Option<&str>) -> Rejection {
    let detail = match authorization {
        None => "the request has no Authorization header".to_string(),
        Some(a) if a.starts_with("AWS4-HMAC-SHA256") => {
            "the request is signed with SigV4, but this runtime has a JWT authorizer: it takes \
             bearer tokens only"
                .to_string()
        }
        Some(_) => "the Authorization header is not \"Bearer <token>\"".to_string(),
    };
    Rejection {
        status: 401,
        message: MISSING_BEARER.to_string(),
        checks: vec![Verdict {
            check: BEARER_CHECK,
            ok: false,
            detail,
            fix: Some(
                "send Authorization: Bearer <token> (agentcore-controller mcp NAME reads it \
                 from the Token's secret)"
                    .to_string(),
            ),
            claim: None,
        }],
    }
}

/// The check a bearer token fails at a runtime without a JWT authorizer.
const METHOD_CHECK: &str = "method";

/// The refusal for a bearer token at a runtime without a JWT authorizer (it takes SigV4
/// only), worded as AgentCore answers it.
pub fn method_mismatch() -> Rejection {
    Rejection {
        status: 403,
        message: METHOD_MISMATCH.to_string(),
        checks: vec![Verdict {
            check: METHOD_CHECK,
            ok: false,
            detail: "the request carries a bearer token, but the runtime has no JWT \
                     authorizer: it takes SigV4-signed requests only"
                .to_string(),
            fix: Some(
                "give the AgentRuntime spec.authorizer.jwt (and apply), or sign the requests \
                 with SigV4 (agentcore-controller mcp NAME --sigv4)"
                    .to_string(),
            ),
            claim: None,
        }],
    }
}

/// AgentCore's answer to a bearer token at a runtime that takes SigV4 only.
pub const METHOD_MISMATCH: &str = "Authorization method mismatch. The agent is configured for a \
     different authorization method than what was used in your request. Check the agent's \
     authorization configuration and ensure your request uses the matching method.";

/// The refusal for a token whose checks `verdicts` (from [`jwt::check`], in
/// [`jwt::CHECKS`] order) are not all passed; `None` when the token is accepted.
///
/// The first failing check decides the message, worded as AgentCore words it: tokens
/// that are not valid (malformed, bad signature, wrong issuer, expired) get 401,
/// valid tokens whose claims the authorizer does not allow get 403. Every failing check
/// is kept, with its detail and fix.
pub fn rejection(verdicts: &[Verdict], expect: &Expectation) -> Option<Rejection> {
    let failed: Vec<Verdict> = verdicts.iter().filter(|v| !v.ok).cloned().collect();
    let first = failed.first()?;
    let (status, message) = match first.check {
        "signature" if first.detail.starts_with("not a JWT") => (401, INVALID_BEARER),
        "signature" => (401, INVALID_SIGNATURE),
        "issuer" => (401, ISSUER_MISMATCH),
        "expiry" if first.detail.starts_with("not valid before") => (401, NOT_YET_VALID),
        "expiry" => (401, TOKEN_EXPIRED),
        // AgentCore reads the claim the configuration names: an ID token has no
        // client_id, an access token no aud.
        "token_use" => match expect.token_use {
            TokenUse::Access if !expect.allowed_clients.is_empty() => (403, CLIENT_MISMATCH),
            TokenUse::Id if !expect.allowed_audience.is_empty() => (403, AUDIENCE_MISMATCH),
            _ => (403, TOKEN_USE_MISMATCH),
        },
        "client" => (403, CLIENT_MISMATCH),
        "audience" => (403, AUDIENCE_MISMATCH),
        "scope" => (403, SCOPE_MISMATCH),
        // AgentCore does not document its answer for a custom claim; worded as for the
        // claims it does, naming the rule's claim.
        "claims" => {
            let name = first.claim.as_deref().unwrap_or("custom");
            return Some(Rejection {
                status: 403,
                message: format!("Claim '{name}' value mismatch with configuration"),
                checks: failed,
            });
        }
        _ => (401, "Unauthorized"),
    };
    Some(Rejection {
        status,
        message: message.to_string(),
        checks: failed,
    })
}

/// The `WWW-Authenticate` challenge of a refusal (RFC 6750 §3), its error code agreeing
/// with its status: a request without a token gets a bare challenge (§3.1: no error
/// code when no authentication was attempted); a token that is not valid (401) is
/// `invalid_token`; a valid token this runtime does not allow (403, as AgentCore answers
/// a claim mismatch) is `insufficient_scope`, the code the RFC pairs with 403.
pub fn challenge(r: &Rejection) -> String {
    let attempted = !r.checks.iter().any(|c| c.check == BEARER_CHECK);
    let error = match r.status {
        403 => Some("insufficient_scope"),
        _ if attempted => Some("invalid_token"),
        _ => None,
    };
    match error {
        None => "Bearer".to_string(),
        Some(error) => format!(
            "Bearer error=\"{error}\", error_description=\"{}\"",
            r.message.replace(['"', '\\'], "'")
        ),
    }
}

/// Check `token` now; `Err` with the refusal when the runtime would refuse it.
pub fn verify(token: &str, keys: &Keys) -> Result<(), Rejection> {
    let verdicts = jwt::check(
        token,
        &keys.jwks,
        &keys.expect,
        std::time::SystemTime::now(),
        None,
    );
    match rejection(&verdicts, &keys.expect) {
        None => Ok(()),
        Some(r) => Err(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(check: &'static str, ok: bool, detail: &str) -> Verdict {
        Verdict {
            check,
            ok,
            detail: detail.to_string(),
            fix: (!ok).then(|| "do this".to_string()),
            claim: (!ok && check == "claims").then(|| "tenant".to_string()),
        }
    }

    /// Verdicts in CHECKS order with `failing` failed (detail `detail` for the first).
    fn verdicts(failing: &[&'static str], detail: &str) -> Vec<Verdict> {
        jwt::CHECKS
            .iter()
            .map(|&c| {
                let ok = !failing.contains(&c);
                let d = if !ok && Some(&c) == failing.first() {
                    detail
                } else {
                    "fine"
                };
                verdict(c, ok, d)
            })
            .collect()
    }

    fn expect(token_use: TokenUse, clients: &[&str], audience: &[&str]) -> Expectation {
        Expectation {
            issuer: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x".into(),
            token_use,
            allowed_clients: clients.iter().map(|s| s.to_string()).collect(),
            allowed_audience: audience.iter().map(|s| s.to_string()).collect(),
            allowed_scopes: vec![],
            custom_claims: vec![],
        }
    }

    /// Name, failing checks, the first one's detail, the expectation, the answer.
    type Case<'a> = (
        &'a str,
        &'a [&'static str],
        &'a str,
        &'a Expectation,
        Option<(u16, &'a str)>,
    );

    #[test]
    fn the_first_failing_check_decides_the_answer() {
        let access = expect(TokenUse::Access, &["c1"], &[]);
        let id = expect(TokenUse::Id, &[], &["c1"]);
        let neither = expect(TokenUse::Access, &[], &[]);
        let cases: &[Case<'_>] = &[
            ("accepted", &[], "", &access, None),
            (
                "garbage",
                &jwt::CHECKS,
                "not a JWT: the token is empty",
                &access,
                Some((401, "Invalid bearer token")),
            ),
            (
                "bad signature, expired too",
                &["signature", "expiry"],
                "the RS256 signature does not match",
                &access,
                Some((401, "Invalid token signature")),
            ),
            (
                "other pool",
                &["issuer"],
                "issued by x",
                &access,
                Some((401, "Claim 'iss' value mismatch with configuration")),
            ),
            (
                "expired",
                &["expiry"],
                "expired at 2027-01-15T07:50:00Z (10 minutes ago)",
                &access,
                Some((401, "Token has expired")),
            ),
            (
                "not yet valid",
                &["expiry"],
                "not valid before 2027-01-15T08:05:00Z",
                &access,
                Some((401, "Token is not valid yet")),
            ),
            (
                "ID token, allowedClients",
                &["token_use"],
                "this is an ID token",
                &access,
                Some((403, "Claim 'client_id' value mismatch with configuration")),
            ),
            (
                "access token, allowedAudience",
                &["token_use", "audience"],
                "this is an access token",
                &id,
                Some((403, "Claim 'aud' value mismatch with configuration")),
            ),
            (
                "wrong type, nothing restricted",
                &["token_use"],
                "token_use is \"x\"",
                &neither,
                Some((403, "Claim 'token_use' value mismatch with configuration")),
            ),
            (
                "other app client",
                &["client"],
                "client c2 (client_id) is not in allowedClients (c1)",
                &access,
                Some((403, "Claim 'client_id' value mismatch with configuration")),
            ),
            (
                "audience",
                &["audience"],
                "aud c2 is not in allowedAudience",
                &id,
                Some((403, "Claim 'aud' value mismatch with configuration")),
            ),
            (
                "scope",
                &["scope"],
                "the token's scopes (a) include none of allowedScopes (b)",
                &access,
                Some((403, "Claim 'scope' value mismatch with configuration")),
            ),
            (
                "custom claim",
                &["claims"],
                "the token has no tenant claim, but customClaims requires tenant EQUALS \"acme\"",
                &access,
                Some((403, "Claim 'tenant' value mismatch with configuration")),
            ),
        ];
        for (name, failing, detail, expect, want) in cases {
            let got = rejection(&verdicts(failing, detail), expect);
            match (got, want) {
                (None, None) => {}
                (Some(r), Some((status, message))) => {
                    assert_eq!(
                        (r.status, r.message.as_str()),
                        (*status, *message),
                        "{name}"
                    );
                    let checks: Vec<&str> = r.checks.iter().map(|v| v.check).collect();
                    assert_eq!(checks, *failing, "{name}: every failing check is kept");
                    assert_eq!(r.checks[0].detail, *detail, "{name}");
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_challenge_code_agrees_with_the_status() {
        let access = expect(TokenUse::Access, &["c1"], &[]);
        let cases: [(&str, Rejection, &str); 6] = [
            ("no token", missing_bearer(None), "Bearer"),
            (
                "sigv4 instead",
                missing_bearer(Some("AWS4-HMAC-SHA256 x")),
                "Bearer",
            ),
            (
                "expired",
                rejection(&verdicts(&["expiry"], "expired at"), &access).expect("refused"),
                "Bearer error=\"invalid_token\", error_description=\"Token has expired\"",
            ),
            (
                "bad signature",
                rejection(&verdicts(&["signature"], "bad"), &access).expect("refused"),
                "Bearer error=\"invalid_token\", error_description=\"Invalid token signature\"",
            ),
            (
                "client not allowed",
                rejection(&verdicts(&["client"], "c2"), &access).expect("refused"),
                "Bearer error=\"insufficient_scope\", error_description=\"Claim 'client_id' value mismatch with configuration\"",
            ),
            (
                "scope missing",
                rejection(&verdicts(&["scope"], "none"), &access).expect("refused"),
                "Bearer error=\"insufficient_scope\", error_description=\"Claim 'scope' value mismatch with configuration\"",
            ),
        ];
        for (name, r, want) in cases {
            assert_eq!(challenge(&r), want, "{name}");
            let code_for_other_status = match r.status {
                401 => "insufficient_scope",
                _ => "invalid_token",
            };
            assert!(!want.contains(code_for_other_status), "{name}");
        }
    }

    #[test]
    fn a_missing_bearer_says_what_was_sent_instead() {
        for (header, says) in [
            (None, "no Authorization header"),
            (
                Some("AWS4-HMAC-SHA256 Credential=AKID/..."),
                "signed with SigV4",
            ),
            (Some("Basic dXNlcjpwYXNz"), "is not \"Bearer <token>\""),
        ] {
            let r = missing_bearer(header);
            assert_eq!(
                (r.status, r.message.as_str()),
                (401, "Missing bearer token")
            );
            assert!(r.checks[0].detail.contains(says), "{header:?}: {r:?}");
            if let Some(h) = header {
                assert!(!r.checks[0].detail.contains(h), "the header is not echoed");
            }
        }
    }
}
