//! `UserPoolDomain`: the Cognito prefix domain of a user pool,
//! `https://{prefix}.auth.{region}.amazoncognito.com`, which serves the OAuth 2.0 token
//! endpoint machine-to-machine tokens come from.
//!
//! Domains cannot be tagged. A domain found attached to the referenced pool counts as ours,
//! as app clients do: whoever owns a pool owns what lives inside it. Prefixes are global:
//! one held by another pool (anyone's) is a conflict only a new prefix resolves. A pool
//! has at most one prefix domain and a prefix cannot be changed in place, so a new
//! `spec.domain` replaces the pool's domain (delete, then create); the plan says so. A
//! create refused after the delete (Cognito still removing the old domain, or the prefix
//! taken meanwhile) is retried, saying the old domain is gone: the pool has none until the
//! new one is created.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::DomainStatusType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Change, Ctx, Deps, Kind, ObjectMeta, Observed, Outputs, Readiness, Reference};
use crate::error::{Reason, ReconcileError, Result, aws_err, read_result, write_result};
use crate::model::de::FieldProblem;
use crate::model::permissions::{Condition, Grant, Scope};

/// Words Cognito reserves: a prefix must not contain them (Cognito developer guide,
/// "Using the Amazon Cognito domain": "You can't use the text aws, amazon, or cognito in
/// the domain prefix").
pub const RESERVED: [&str; 3] = ["aws", "amazon", "cognito"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPoolDomainSpec {
    /// `metadata.name` of the UserPool the domain belongs to.
    pub user_pool_ref: String,
    /// The domain prefix: 1-63 lower-case letters, digits and inner hyphens, globally
    /// unique, without `aws`, `amazon` or `cognito`. Changing it replaces the domain.
    pub domain: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredUserPoolDomain {
    pub pool_id: String,
    pub domain: String,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedUserPoolDomain {
    /// The prefix the pool has (the desired one, or another one to be replaced).
    pub domain: String,
    /// The domain's status when described (`ACTIVE`, `CREATING`, ...).
    pub status: Option<String>,
}

/// Why Cognito would refuse `prefix` as a domain prefix, or `None`: the pattern
/// `^[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?$` and the reserved words.
pub fn prefix_problem(prefix: &str) -> Option<String> {
    let shape = (1..=63).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !prefix.starts_with('-')
        && !prefix.ends_with('-');
    if !shape {
        return Some(format!(
            "`{prefix}` is not a valid domain prefix: 1-63 lower-case letters, digits and hyphens, \
             starting and ending with a letter or digit"
        ));
    }
    RESERVED.iter().find(|w| prefix.contains(*w)).map(|w| {
        format!("`{prefix}` contains `{w}`, which Cognito reserves (aws, amazon and cognito are not allowed in a prefix)")
    })
}

/// `https://{prefix}.auth.{region}.amazoncognito.com`.
pub fn base_url(prefix: &str, region: &str) -> String {
    format!("https://{prefix}.auth.{region}.amazoncognito.com")
}

/// The OAuth 2.0 token endpoint of a prefix domain.
pub fn token_url(prefix: &str, region: &str) -> String {
    format!("{}/oauth2/token", base_url(prefix, region))
}

/// The field `diff` names when the pool has another prefix.
const DOMAIN: &str = "spec.domain";

pub struct UserPoolDomain {
    ctx: Arc<Ctx>,
}

impl UserPoolDomain {
    /// DescribeUserPoolDomain: the pool holding `domain` and the domain's status; `None`
    /// when no pool holds it (Cognito then answers an empty description).
    async fn describe(&self, domain: &str) -> Result<Option<(String, Option<String>)>> {
        let described = self
            .ctx
            .aws
            .cognito
            .describe_user_pool_domain()
            .domain(domain)
            .send()
            .await;
        let found = read_result(format!("DescribeUserPoolDomain {domain}"), described)?
            .and_then(|out| out.domain_description);
        Ok(found.and_then(|d| {
            let pool = d.user_pool_id().filter(|p| !p.is_empty())?.to_string();
            let status = d.status().map(|s| s.as_str().to_string());
            Some((pool, status))
        }))
    }

    async fn create_domain(&self, d: &DesiredUserPoolDomain) -> Result<()> {
        self.ctx
            .aws
            .cognito
            .create_user_pool_domain()
            .user_pool_id(&d.pool_id)
            .domain(&d.domain)
            // No SDK retry: a retry after a lost answer would be refused (the pool has a
            // domain); observe finds it instead.
            .customize()
            .config_override(crate::aws::no_retry_cognito())
            .send()
            .await
            .map_err(|e| {
                let mut err = aws_err(format!(
                    "CreateUserPoolDomain {} for {}",
                    d.domain, d.pool_id
                ))(e);
                if err.message.contains("another user pool") {
                    err.message = format!(
                        "{}; the prefix {} is taken (prefixes are global across AWS accounts): pick another spec.domain",
                        err.message, d.domain
                    );
                }
                err
            })?;
        Ok(())
    }

    async fn delete_domain(&self, pool_id: &str, domain: &str) -> Result<()> {
        let deleted = self
            .ctx
            .aws
            .cognito
            .delete_user_pool_domain()
            .user_pool_id(pool_id)
            .domain(domain)
            .send()
            .await;
        write_result(
            format!("DeleteUserPoolDomain {domain} of {pool_id}"),
            deleted,
        )?;
        Ok(())
    }
}

/// A create refused after the pool's old domain was deleted: retried (Cognito may still be
/// removing the old domain, which blocks the new one for a while), saying the pool has no
/// domain meanwhile.
fn create_after_delete(e: ReconcileError, old: &str, new: &str) -> ReconcileError {
    let message = format!(
        "the old domain {old} was removed and {new} is being created: {} (retrying: Cognito may \
         still be removing {old}; if {new} stays refused, pick another spec.domain)",
        e.message
    );
    ReconcileError {
        message,
        severity: crate::error::Severity::Recoverable,
        ..e
    }
}

/// The refusal when another pool holds the prefix.
fn taken(d: &DesiredUserPoolDomain, other_pool: &str) -> ReconcileError {
    ReconcileError::terminal(
        Reason::DomainTaken,
        format!(
            "the domain prefix {} belongs to user pool {other_pool}, not to {} (prefixes are global): \
             pick another spec.domain, or delete that pool's domain",
            d.domain, d.pool_id
        ),
    )
}

#[async_trait]
impl Kind for UserPoolDomain {
    const KIND: &'static str = "UserPoolDomain";
    const LANE: &'static str = "cognito-idp";
    const OUTPUTS: &'static [&'static str] = &["domain", "baseUrl", "tokenUrl", "poolId"];
    const CONTAINED_IN: &'static [&'static str] = &["UserPool"];
    type Spec = UserPoolDomainSpec;
    type Desired = DesiredUserPoolDomain;
    type Observed = ObservedUserPoolDomain;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    fn permissions(_meta: &ObjectMeta, _spec: &UserPoolDomainSpec, scope: &Scope) -> Vec<Grant> {
        vec![
            // DescribeUserPoolDomain takes a domain, no pool: it has no resource type.
            Grant::new(&["cognito-idp:DescribeUserPoolDomain"], vec!["*".into()]),
            Grant::new(
                &[
                    "cognito-idp:DescribeUserPool",
                    "cognito-idp:CreateUserPoolDomain",
                    "cognito-idp:DeleteUserPoolDomain",
                ],
                vec![scope.arn("cognito-idp", "userpool/*")],
            )
            .when(Condition::Owned),
        ]
    }

    fn references(spec: &UserPoolDomainSpec) -> Vec<Reference> {
        vec![Reference::new(
            "spec.userPoolRef",
            "UserPool",
            &spec.user_pool_ref,
        )]
    }

    fn validate(_name: &str, spec: &UserPoolDomainSpec, problems: &mut Vec<FieldProblem>) {
        if spec.user_pool_ref.is_empty() {
            problems.push(FieldProblem::new(
                "spec.userPoolRef",
                "name the UserPool (its metadata.name) this domain belongs to",
            ));
        }
        if let Some(problem) = prefix_problem(&spec.domain) {
            problems.push(FieldProblem::new("spec.domain", problem));
        }
    }

    fn resolve(
        &self,
        _meta: &ObjectMeta,
        spec: &UserPoolDomainSpec,
        deps: &Deps<'_>,
    ) -> Result<DesiredUserPoolDomain> {
        Ok(DesiredUserPoolDomain {
            pool_id: deps.get("UserPool", &spec.user_pool_ref, "poolId")?,
            domain: spec.domain.clone(),
            region: self.ctx.aws.region.clone(),
        })
    }

    /// The prefix described directly; when no pool holds it, the pool's description tells
    /// whether the pool has another prefix (to be replaced).
    async fn observe(
        &self,
        d: &DesiredUserPoolDomain,
    ) -> Result<Option<Observed<ObservedUserPoolDomain>>> {
        match self.describe(&d.domain).await? {
            Some((pool, status)) if pool == d.pool_id => {
                return Ok(Some(Observed {
                    owned: true,
                    resource: ObservedUserPoolDomain {
                        domain: d.domain.clone(),
                        status,
                    },
                }));
            }
            Some((pool, _)) => return Err(taken(d, &pool)),
            None => {}
        }
        let described = self
            .ctx
            .aws
            .cognito
            .describe_user_pool()
            .user_pool_id(&d.pool_id)
            .send()
            .await;
        let current = read_result(format!("DescribeUserPool {}", d.pool_id), described)?
            .and_then(|out| out.user_pool)
            .and_then(|p| p.domain)
            .filter(|domain| !domain.is_empty());
        Ok(current.map(|domain| Observed {
            owned: true,
            resource: ObservedUserPoolDomain {
                domain,
                status: None,
            },
        }))
    }

    fn diff(d: &DesiredUserPoolDomain, o: &ObservedUserPoolDomain) -> Vec<Change> {
        if o.domain == d.domain {
            return Vec::new();
        }
        vec![Change::new(
            DOMAIN,
            Some(Value::String(o.domain.clone())),
            Some(Value::String(format!(
                "{} (requires replacement: {} is deleted first, then {} is created)",
                d.domain, o.domain, d.domain
            ))),
        )]
    }

    fn readiness(o: &ObservedUserPoolDomain) -> Readiness {
        match o.status.as_deref().map(DomainStatusType::from) {
            None | Some(DomainStatusType::Active) => Readiness::Ready,
            Some(DomainStatusType::Failed) => {
                Readiness::Failed(format!("domain {} is FAILED", o.domain))
            }
            Some(s) => Readiness::Progressing(format!("domain {} is {}", o.domain, s.as_str())),
        }
    }

    fn outputs(d: &DesiredUserPoolDomain, o: &ObservedUserPoolDomain) -> Outputs {
        Outputs::from([
            ("domain".to_string(), o.domain.clone()),
            ("baseUrl".to_string(), base_url(&o.domain, &d.region)),
            ("tokenUrl".to_string(), token_url(&o.domain, &d.region)),
            ("poolId".to_string(), d.pool_id.clone()),
        ])
    }

    async fn create(&self, d: &DesiredUserPoolDomain) -> Result<()> {
        self.create_domain(d).await
    }

    /// The only change is a new prefix: the pool's domain is replaced (Cognito has no
    /// update for a prefix domain, and a pool holds one at a time).
    async fn update(
        &self,
        d: &DesiredUserPoolDomain,
        o: &Observed<ObservedUserPoolDomain>,
        _changes: &[Change],
    ) -> Result<()> {
        if o.resource.domain == d.domain {
            return Ok(());
        }
        tracing::info!(pool = %d.pool_id, from = %o.resource.domain, to = %d.domain, "replacing the user pool domain");
        self.delete_domain(&d.pool_id, &o.resource.domain).await?;
        self.create_domain(d)
            .await
            .map_err(|e| create_after_delete(e, &o.resource.domain, &d.domain))
    }

    async fn delete(&self, d: &DesiredUserPoolDomain, o: &ObservedUserPoolDomain) -> Result<()> {
        self.delete_domain(&d.pool_id, &o.domain).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prefix_table() {
        let p63 = "p".repeat(63);
        let p64 = "p".repeat(64);
        for (prefix, ok) in [
            ("a", true),
            ("0", true),
            ("my-mcp-tokens", true),
            ("a1-b2", true),
            (p63.as_str(), true),
            ("", false),
            (p64.as_str(), false),
            ("-a", false),
            ("a-", false),
            ("Upper", false),
            ("under_score", false),
            ("dot.ted", false),
            ("my-aws-tokens", false),
            ("amazonian", false),
            ("mycognito", false),
        ] {
            assert_eq!(prefix_problem(prefix).is_none(), ok, "{prefix}");
        }
        assert!(
            prefix_problem("my-aws-x")
                .unwrap_or_default()
                .contains("`aws`")
        );
    }

    #[test]
    fn validation_names_the_fields() {
        let mut problems = Vec::new();
        UserPoolDomain::validate(
            "d",
            &UserPoolDomainSpec {
                user_pool_ref: String::new(),
                domain: "Bad".into(),
            },
            &mut problems,
        );
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["spec.userPoolRef", "spec.domain"]);
    }

    fn desired(domain: &str) -> DesiredUserPoolDomain {
        DesiredUserPoolDomain {
            pool_id: "us-east-1_abc".into(),
            domain: domain.into(),
            region: "eu-west-1".into(),
        }
    }

    fn observed(domain: &str, status: Option<&str>) -> ObservedUserPoolDomain {
        ObservedUserPoolDomain {
            domain: domain.into(),
            status: status.map(String::from),
        }
    }

    #[test]
    fn a_new_prefix_is_a_replacement() {
        assert_eq!(
            UserPoolDomain::diff(&desired("a"), &observed("a", Some("ACTIVE"))),
            vec![]
        );
        assert_eq!(
            UserPoolDomain::diff(&desired("b"), &observed("a", None)),
            vec![Change::new(
                "spec.domain",
                Some(json!("a")),
                Some(json!(
                    "b (requires replacement: a is deleted first, then b is created)"
                ))
            )]
        );
    }

    #[test]
    fn a_create_refused_after_the_delete_is_retried() {
        let refused = ReconcileError::terminal(
            Reason::aws("InvalidParameterException"),
            "CreateUserPoolDomain b for us-east-1_abc: InvalidParameterException: Domain already exists.",
        );
        let e = create_after_delete(refused, "a", "b");
        assert!(!e.is_terminal(), "{e:?}");
        assert_eq!(e.severity, crate::error::Severity::Recoverable);
        assert_eq!(e.reason.as_str(), "InvalidParameterException");
        for says in [
            "old domain a was removed",
            "b is being created",
            "Domain already exists",
        ] {
            assert!(e.message.contains(says), "{says}: {}", e.message);
        }
    }

    #[test]
    fn readiness_follows_the_status() {
        for (status, ready) in [
            (None, true),
            (Some("ACTIVE"), true),
            (Some("CREATING"), false),
            (Some("FAILED"), false),
        ] {
            assert_eq!(
                UserPoolDomain::readiness(&observed("a", status)) == Readiness::Ready,
                ready,
                "{status:?}"
            );
        }
    }

    #[test]
    fn taken_names_the_other_pool() {
        let e = taken(&desired("tokens"), "us-east-1_other");
        assert!(e.is_terminal());
        assert!(e.message.contains("us-east-1_other"), "{}", e.message);
        assert!(e.message.contains("tokens"), "{}", e.message);
    }

    #[test]
    fn outputs_are_the_endpoints() {
        let out = UserPoolDomain::outputs(&desired("tokens"), &observed("tokens", None));
        assert_eq!(
            out["baseUrl"],
            "https://tokens.auth.eu-west-1.amazoncognito.com"
        );
        assert_eq!(
            out["tokenUrl"],
            "https://tokens.auth.eu-west-1.amazoncognito.com/oauth2/token"
        );
        crate::kinds::assert_declared_outputs::<UserPoolDomain>(&out);
    }
}
