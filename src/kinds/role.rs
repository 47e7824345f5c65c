//! `Role`: the IAM execution role an AgentCore runtime assumes. By default it trusts
//! `bedrock-agentcore.amazonaws.com` (from this account only) and carries the inline policy
//! AgentCore documents for runtimes (ECR pull, logs, X-Ray, metrics, model invocation,
//! workload identity tokens); manifests add inline policies and managed policy ARNs.
//!
//! The controller owns the role: inline policies and managed attachments that the
//! manifest does not list are removed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_iam::types::{EntityType, Tag};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::time::Instant;

use super::policy;
use super::{Change, Ctx, Deps, Kind, ObjectMeta, Observed, Outputs, Reference, changed, compare};
use crate::error::{Reason, ReconcileError, Result, aws_err, read_result, write_result};
use crate::list_cache::{ListedRole, RolesByName};
use crate::model::de::FieldProblem;
use crate::model::permissions::{Grant, Scope};

/// Name of the inline policy `defaultPolicy: true` puts on the role.
pub const DEFAULT_POLICY_NAME: &str = "AgentCoreRuntimeExecution";
/// IAM's default (and minimum) maximum session duration, in seconds.
const DEFAULT_MAX_SESSION: i32 = 3600;
const MAX_SESSION: i32 = 43200;

/// The fields `diff` names and `update` writes.
const ASSUME_ROLE_POLICY: &str = "spec.assumeRolePolicy";
const INLINE_POLICIES: &str = "spec.inlinePolicies";
const MANAGED_POLICY_ARNS: &str = "spec.managedPolicyArns";
const DESCRIPTION: &str = "spec.description";
const MAX_SESSION_DURATION: &str = "spec.maxSessionDurationSeconds";

/// One IAM write an update makes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RoleWrite {
    /// TagRole: our owner tag (adoption).
    Tag,
    UpdateAssumeRolePolicy,
    /// PutRolePolicy of this inline policy.
    PutPolicy(String),
    AttachPolicy(String),
    DetachPolicy(String),
    /// DeleteRolePolicy of this inline policy.
    DeletePolicy(String),
    /// UpdateRole: description and maximum session duration.
    UpdateRole,
}

/// The writes that make the role match, for what `changes` name, in the order they are
/// made: grants before revocations, so the role never holds less than either version.
fn planned_writes(d: &DesiredRole, o: &ObservedRole, changes: &[Change]) -> Vec<RoleWrite> {
    let mut writes = Vec::new();
    if changes.iter().any(Change::is_adoption) {
        writes.push(RoleWrite::Tag);
    }
    if changed(changes, ASSUME_ROLE_POLICY) {
        writes.push(RoleWrite::UpdateAssumeRolePolicy);
    }
    let inline: Vec<&str> = changes
        .iter()
        .filter_map(|c| c.below(INLINE_POLICIES))
        .collect();
    let (put, delete): (Vec<&str>, Vec<&str>) = inline
        .into_iter()
        .partition(|name| d.inline_policies.contains_key(*name));
    writes.extend(put.into_iter().map(|n| RoleWrite::PutPolicy(n.to_string())));
    if changed(changes, MANAGED_POLICY_ARNS) {
        let attach = d.managed_policy_arns.difference(&o.managed_policy_arns);
        writes.extend(attach.map(|arn| RoleWrite::AttachPolicy(arn.clone())));
        let detach = o.managed_policy_arns.difference(&d.managed_policy_arns);
        writes.extend(detach.map(|arn| RoleWrite::DetachPolicy(arn.clone())));
    }
    writes.extend(
        delete
            .into_iter()
            .map(|n| RoleWrite::DeletePolicy(n.to_string())),
    );
    if changed(changes, DESCRIPTION) || changed(changes, MAX_SESSION_DURATION) {
        writes.push(RoleWrite::UpdateRole);
    }
    writes
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleSpec {
    /// The role's name in IAM (1-64 characters of a-z A-Z 0-9 _ + = , . @ -).
    /// Defaults to metadata.name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    /// The role's description (up to 1000 characters). When absent, whatever description
    /// the role has is left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Longest session, in seconds, when the role is assumed: 3600 (the default) to 43200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_duration_seconds: Option<i32>,
    /// Give the role the AgentCore runtime execution permissions (inline policy
    /// `AgentCoreRuntimeExecution`). Default true.
    #[serde(default = "default_true")]
    pub default_policy: bool,
    /// More inline policies: policy name → IAM policy document written as a YAML mapping
    /// (`Version`, `Statement`). Inline policies on the role that are not listed here (or
    /// the default one) are removed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inline_policies: BTreeMap<String, Value>,
    /// ARNs of managed policies to attach; others attached to the role are detached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_policy_arns: Vec<String>,
    /// The trust policy document. Default: trust `bedrock-agentcore.amazonaws.com` for
    /// AgentCore resources of this account and region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_policy: Option<Value>,
}

/// Documents are in [`policy::canonical`] form.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRole {
    pub name: String,
    pub description: Option<String>,
    pub max_session_duration: i32,
    pub assume_role_policy: Value,
    pub inline_policies: BTreeMap<String, Value>,
    pub managed_policy_arns: BTreeSet<String>,
}

/// Documents are in [`policy::canonical`] form (or the raw text when it does not parse).
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRole {
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    pub max_session_duration: Option<i32>,
    pub assume_role_policy: Option<Value>,
    pub inline_policies: BTreeMap<String, Value>,
    pub managed_policy_arns: BTreeSet<String>,
}

/// The trust policy AgentCore documents for runtime execution roles.
pub fn default_trust_policy(region: &str, account: &str) -> Value {
    let p = policy::partition(region);
    policy::canonical(&json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AssumeRolePolicy",
            "Effect": "Allow",
            "Principal": {"Service": "bedrock-agentcore.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": format!("arn:{p}:bedrock-agentcore:{region}:{account}:*")}
            }
        }]
    }))
}

/// The permissions AgentCore documents for runtime execution roles.
pub fn default_execution_policy(region: &str, account: &str) -> Value {
    let p = policy::partition(region);
    let log_group = format!("arn:{p}:logs:{region}:{account}:log-group");
    let workload =
        format!("arn:{p}:bedrock-agentcore:{region}:{account}:workload-identity-directory/default");
    policy::canonical(&json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EcrImagePull",
                "Effect": "Allow",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": format!("arn:{p}:ecr:{region}:{account}:repository/*")
            },
            {
                "Sid": "EcrTokenAccess",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*"
            },
            {
                "Sid": "LogsRuntimeGroups",
                "Effect": "Allow",
                "Action": ["logs:DescribeLogStreams", "logs:CreateLogGroup"],
                "Resource": format!("{log_group}:/aws/bedrock-agentcore/runtimes/*")
            },
            {
                "Sid": "LogsDescribeGroups",
                "Effect": "Allow",
                "Action": "logs:DescribeLogGroups",
                "Resource": format!("{log_group}:*")
            },
            {
                "Sid": "LogsWriteStreams",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": format!("{log_group}:/aws/bedrock-agentcore/runtimes/*:log-stream:*")
            },
            {
                "Sid": "XRayTracing",
                "Effect": "Allow",
                "Action": [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets"
                ],
                "Resource": "*"
            },
            {
                "Sid": "CloudWatchMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": "bedrock-agentcore"}}
            },
            {
                "Sid": "BedrockModelInvocation",
                "Effect": "Allow",
                "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                "Resource": [
                    format!("arn:{p}:bedrock:*::foundation-model/*"),
                    format!("arn:{p}:bedrock:{region}:{account}:*")
                ]
            },
            {
                "Sid": "GetAgentAccessToken",
                "Effect": "Allow",
                "Action": [
                    "bedrock-agentcore:GetWorkloadAccessToken",
                    "bedrock-agentcore:GetWorkloadAccessTokenForJWT",
                    "bedrock-agentcore:GetWorkloadAccessTokenForUserId"
                ],
                "Resource": [workload.clone(), format!("{workload}/workload-identity/*")]
            }
        ]
    }))
}

pub(crate) use super::names::is_iam_name;

/// A managed policy ARN: `arn:<partition>:iam::<account|aws>:policy/<path/name>`.
fn is_policy_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource] => {
            partition.starts_with("aws")
                && (*account == "aws"
                    || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())))
                && resource
                    .strip_prefix("policy/")
                    .is_some_and(|n| !n.is_empty() && !n.ends_with('/'))
        }
        _ => false,
    }
}

/// The desired role from its spec, the account and the region. Pure.
pub fn desired_role(
    meta: &ObjectMeta,
    spec: &RoleSpec,
    region: &str,
    account: &str,
) -> DesiredRole {
    let mut inline_policies: BTreeMap<String, Value> = spec
        .inline_policies
        .iter()
        .map(|(name, doc)| (name.clone(), policy::canonical(doc)))
        .collect();
    if spec.default_policy {
        inline_policies.insert(
            DEFAULT_POLICY_NAME.to_string(),
            default_execution_policy(region, account),
        );
    }
    DesiredRole {
        name: spec.role_name.clone().unwrap_or_else(|| meta.name.clone()),
        description: spec.description.clone(),
        max_session_duration: spec
            .max_session_duration_seconds
            .unwrap_or(DEFAULT_MAX_SESSION),
        assume_role_policy: spec
            .assume_role_policy
            .as_ref()
            .map(policy::canonical)
            .unwrap_or_else(|| default_trust_policy(region, account)),
        inline_policies,
        managed_policy_arns: spec.managed_policy_arns.iter().cloned().collect(),
    }
}

fn tag(k: String, v: String) -> Result<Tag> {
    Tag::builder()
        .key(k)
        .value(v)
        .build()
        .map_err(|e| ReconcileError::terminal(Reason::InvalidTag, e.to_string()))
}

pub struct Role {
    ctx: Arc<Ctx>,
    /// GetAccountAuthorizationDetails was refused (a policy without that permission):
    /// roles are read one by one.
    listing_denied: AtomicBool,
}

/// Every role, by name, from GetAccountAuthorizationDetails (roles only) and ListRoles,
/// all pages of each.
async fn list_roles(iam: &aws_sdk_iam::Client) -> Result<RolesByName> {
    let mut details = BTreeMap::new();
    let mut marker: Option<String> = None;
    loop {
        let page = iam
            .get_account_authorization_details()
            .filter(EntityType::Role)
            .max_items(1000)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(aws_err("GetAccountAuthorizationDetails"))?;
        for role in page.role_detail_list() {
            if let Some(name) = role.role_name() {
                details.insert(name.to_string(), role.clone());
            }
        }
        match page.marker() {
            Some(m) if page.is_truncated() && !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    let mut all = RolesByName::new();
    loop {
        let page = iam
            .list_roles()
            .max_items(1000)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(aws_err("ListRoles"))?;
        for role in page.roles() {
            if let Some(detail) = details.remove(role.role_name()) {
                all.insert(
                    role.role_name().to_string(),
                    ListedRole {
                        detail,
                        role: role.clone(),
                    },
                );
            }
        }
        match page.marker() {
            Some(m) if page.is_truncated() && !m.is_empty() => marker = Some(m.to_string()),
            _ => return Ok(all),
        }
    }
}

/// A role as observed: what IAM says of the role itself (GetRole, ListRoles and CreateRole
/// answer alike), its trust policy as written, and its policies.
fn observed_role(
    role: &aws_sdk_iam::types::Role,
    owned: bool,
    assume_role_policy: Option<&str>,
    inline_policies: BTreeMap<String, Value>,
    managed_policy_arns: BTreeSet<String>,
) -> Observed<ObservedRole> {
    Observed {
        owned,
        resource: ObservedRole {
            arn: role.arn().to_string(),
            name: role.role_name().to_string(),
            description: role.description().map(String::from),
            max_session_duration: role.max_session_duration(),
            assume_role_policy: assume_role_policy.map(policy::observed_document),
            inline_policies,
            managed_policy_arns,
        },
    }
}

/// A role as observed, from its entries in the listings.
fn observed_from_listing(listed: &ListedRole, owned: bool) -> Observed<ObservedRole> {
    let detail = &listed.detail;
    observed_role(
        &listed.role,
        owned,
        detail.assume_role_policy_document(),
        detail
            .role_policy_list()
            .iter()
            .filter_map(|p| {
                Some((
                    p.policy_name()?.to_string(),
                    policy::observed_document(p.policy_document()?),
                ))
            })
            .collect(),
        detail
            .attached_managed_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(String::from))
            .collect(),
    )
}

impl Role {
    /// GetRole, the inline policies and the attached ones, read one by one.
    async fn observe_directly(&self, d: &DesiredRole) -> Result<Option<Observed<ObservedRole>>> {
        let iam = &self.ctx.aws.iam;
        let name = &d.name;
        let got = iam.get_role().role_name(name).send().await;
        let Some(role) = read_result(format!("GetRole {name}"), got)?.and_then(|out| out.role)
        else {
            return Ok(None);
        };
        // GetRole returns the role's tags; ListRoleTags is the fallback for when it does not.
        let mut owned = self
            .ctx
            .owns(role.tags().iter().map(|t| (t.key(), t.value())));
        if !owned && role.tags().is_empty() {
            let tags = iam
                .list_role_tags()
                .role_name(name)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(aws_err(format!("ListRoleTags {name}")))?;
            owned = self.ctx.owns(tags.iter().map(|t| (t.key(), t.value())));
        }
        let policy_names = iam
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err(format!("ListRolePolicies {name}")))?;
        let mut inline_policies = BTreeMap::new();
        for policy_name in policy_names {
            let got = iam
                .get_role_policy()
                .role_name(name)
                .policy_name(&policy_name)
                .send()
                .await;
            // Deleted between the listing and now: it is not there.
            if let Some(out) = read_result(format!("GetRolePolicy {name} {policy_name}"), got)? {
                inline_policies.insert(
                    policy_name,
                    policy::observed_document(out.policy_document()),
                );
            }
        }
        let attached = iam
            .list_attached_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err(format!("ListAttachedRolePolicies {name}")))?;
        Ok(Some(observed_role(
            &role,
            owned,
            role.assume_role_policy_document(),
            inline_policies,
            attached
                .iter()
                .filter_map(|p| p.policy_arn().map(String::from))
                .collect(),
        )))
    }

    /// The role from the shared listings: `Some(None)` when a listing begun at or after
    /// `asked` does not hold it; `None` when they cannot answer for it.
    async fn listed(&self, name: &str, asked: Instant) -> Option<Option<Observed<ObservedRole>>> {
        // Read fresh (a teardown deciding ownership), the role is read on its own.
        if self.listing_denied.load(Ordering::Relaxed) || crate::fresh::is_fresh() {
            return None;
        }
        let lists = &self.ctx.aws.lists;
        let iam = &self.ctx.aws.iam;
        match lists
            .roles
            .lookup(None, || list_roles(iam), |m| m.get(name).cloned())
            .await
        {
            Ok(found) if !lists.roles_written.since(name, found.listed_at) => match found.value {
                Some(listed) => {
                    let owned = self
                        .ctx
                        .owns(listed.detail.tags().iter().map(|t| (t.key(), t.value())));
                    Some(Some(observed_from_listing(&listed, owned)))
                }
                None if found.listed_at >= asked => Some(None),
                None => None,
            },
            Ok(_) => None,
            Err(e) => {
                if matches!(&e.reason, Reason::Aws(code) if code.starts_with("AccessDenied")) {
                    tracing::info!(error = %e, "roles are read one by one: the account's authorization details are not readable");
                    self.listing_denied.store(true, Ordering::Relaxed);
                }
                None
            }
        }
    }

    async fn put_policy(&self, role: &str, name: &str, doc: &Value) -> Result<()> {
        self.ctx
            .aws
            .iam
            .put_role_policy()
            .role_name(role)
            .policy_name(name)
            .policy_document(policy::to_text(doc))
            .send()
            .await
            .map_err(aws_err(format!("PutRolePolicy {role} {name}")))?;
        Ok(())
    }

    async fn attach(&self, role: &str, arn: &str) -> Result<()> {
        self.ctx
            .aws
            .iam
            .attach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await
            .map_err(aws_err(format!("AttachRolePolicy {role} {arn}")))?;
        Ok(())
    }

    async fn detach(&self, role: &str, arn: &str) -> Result<()> {
        let detached = self
            .ctx
            .aws
            .iam
            .detach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await;
        write_result(format!("DetachRolePolicy {role} {arn}"), detached)?;
        Ok(())
    }

    async fn delete_policy(&self, role: &str, name: &str) -> Result<()> {
        let deleted = self
            .ctx
            .aws
            .iam
            .delete_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await;
        write_result(format!("DeleteRolePolicy {role} {name}"), deleted)?;
        Ok(())
    }
}

#[async_trait]
impl Kind for Role {
    const KIND: &'static str = "Role";
    const LANE: &'static str = "iam";
    const OUTPUTS: &'static [&'static str] = &["arn", "name"];
    type Spec = RoleSpec;
    type Desired = DesiredRole;
    type Observed = ObservedRole;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            listing_denied: AtomicBool::new(false),
        }
    }

    fn aws_name(meta: &ObjectMeta, spec: &RoleSpec) -> Option<String> {
        Some(spec.role_name.clone().unwrap_or_else(|| meta.name.clone()))
    }

    fn permissions(meta: &ObjectMeta, spec: &RoleSpec, scope: &Scope) -> Vec<Grant> {
        let name = spec.role_name.clone().unwrap_or_else(|| meta.name.clone());
        vec![
            // The shared listing of roles with their policies and tags.
            Grant::new(
                &["iam:ListRoles", "iam:GetAccountAuthorizationDetails"],
                vec!["*".into()],
            ),
            Grant::new(
                &[
                    "iam:GetRole",
                    "iam:CreateRole",
                    "iam:UpdateRole",
                    "iam:UpdateAssumeRolePolicy",
                    "iam:TagRole",
                    "iam:ListRoleTags",
                    "iam:GetRolePolicy",
                    "iam:ListRolePolicies",
                    "iam:PutRolePolicy",
                    "iam:DeleteRolePolicy",
                    "iam:ListAttachedRolePolicies",
                    "iam:AttachRolePolicy",
                    "iam:DetachRolePolicy",
                    "iam:DeleteRole",
                ],
                vec![scope.iam_arn(&format!("role/{name}"))],
            ),
        ]
    }

    fn references(_spec: &RoleSpec) -> Vec<Reference> {
        Vec::new()
    }

    fn validate(name: &str, spec: &RoleSpec, problems: &mut Vec<FieldProblem>) {
        match &spec.role_name {
            Some(role_name) if !is_iam_name(role_name, 64) => problems.push(FieldProblem::new(
                "spec.roleName",
                format!("`{role_name}` is not a valid role name: 1-64 characters of a-z A-Z 0-9 _ + = , . @ -"),
            )),
            None if !is_iam_name(name, 64) => problems.push(FieldProblem::new(
                "metadata.name",
                format!(
                    "metadata.name `{name}` is not a valid role name (1-64 characters of a-z A-Z 0-9 _ + = , . @ -); set spec.roleName"
                ),
            )),
            _ => {}
        }
        if let Some(description) = &spec.description {
            let allowed =
                |c: char| matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{A1}'..='\u{FF}');
            if description.chars().count() > 1000 || !description.chars().all(allowed) {
                problems.push(FieldProblem::new(
                    "spec.description",
                    "a role description is up to 1000 characters of printable ASCII or Latin-1",
                ));
            }
        }
        if let Some(seconds) = spec.max_session_duration_seconds
            && !(DEFAULT_MAX_SESSION..=MAX_SESSION).contains(&seconds)
        {
            problems.push(FieldProblem::new(
                "spec.maxSessionDurationSeconds",
                format!("{seconds} is out of range: 3600 to 43200 seconds"),
            ));
        }
        for (policy_name, doc) in &spec.inline_policies {
            let path = format!("spec.inlinePolicies.{policy_name}");
            if !is_iam_name(policy_name, 128) {
                problems.push(FieldProblem::new(
                    &path,
                    format!("`{policy_name}` is not a valid policy name: 1-128 characters of a-z A-Z 0-9 _ + = , . @ -"),
                ));
            }
            if spec.default_policy && policy_name == DEFAULT_POLICY_NAME {
                problems.push(FieldProblem::new(
                    &path,
                    format!("`{DEFAULT_POLICY_NAME}` is the default policy's name; pick another name, or set defaultPolicy: false to replace it"),
                ));
            }
            policy::validate_document(&path, doc, false, problems);
        }
        let mut seen = BTreeSet::new();
        for (i, arn) in spec.managed_policy_arns.iter().enumerate() {
            let path = format!("spec.managedPolicyArns[{i}]");
            if !is_policy_arn(arn) {
                problems.push(FieldProblem::new(
                    &path,
                    format!("`{arn}` is not a managed policy ARN, e.g. arn:aws:iam::aws:policy/AmazonBedrockFullAccess"),
                ));
            }
            if !seen.insert(arn) {
                problems.push(FieldProblem::new(&path, format!("`{arn}` is listed twice")));
            }
        }
        if spec.managed_policy_arns.len() > 20 {
            problems.push(FieldProblem::new(
                "spec.managedPolicyArns",
                "IAM attaches at most 20 managed policies to a role",
            ));
        }
        if let Some(doc) = &spec.assume_role_policy {
            policy::validate_document("spec.assumeRolePolicy", doc, true, problems);
        }
    }

    fn resolve(&self, meta: &ObjectMeta, spec: &RoleSpec, _deps: &Deps<'_>) -> Result<DesiredRole> {
        Ok(desired_role(
            meta,
            spec,
            &self.ctx.aws.region,
            &self.ctx.aws.account_id,
        ))
    }

    /// From the shared listings when they hold the role and nothing was written to it since
    /// they began, or when they were begun after this call and do not hold it; otherwise
    /// (created or changed since, listings refused) read directly, so absence is never an
    /// old answer.
    async fn observe(&self, d: &DesiredRole) -> Result<Option<Observed<ObservedRole>>> {
        if let Some(answer) = self.listed(&d.name, Instant::now()).await {
            return Ok(answer);
        }
        self.observe_directly(d).await
    }

    fn diff(d: &DesiredRole, o: &ObservedRole) -> Vec<Change> {
        let mut changes = Vec::new();
        changes.extend(policy::diff_documents(
            ASSUME_ROLE_POLICY,
            o.assume_role_policy.as_ref(),
            Some(&d.assume_role_policy),
        ));
        let names: BTreeSet<&String> = d
            .inline_policies
            .keys()
            .chain(o.inline_policies.keys())
            .collect();
        for name in names {
            changes.extend(policy::diff_documents(
                &format!("{INLINE_POLICIES}.{name}"),
                o.inline_policies.get(name),
                d.inline_policies.get(name),
            ));
        }
        compare(
            &mut changes,
            MANAGED_POLICY_ARNS,
            &o.managed_policy_arns,
            &d.managed_policy_arns,
        );
        if let Some(description) = &d.description {
            // IAM omits an empty description.
            let observed = o.description.clone().unwrap_or_default();
            compare(&mut changes, DESCRIPTION, &observed, description);
        }
        compare(
            &mut changes,
            MAX_SESSION_DURATION,
            &o.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION),
            &d.max_session_duration,
        );
        changes
    }

    fn outputs(_d: &DesiredRole, o: &ObservedRole) -> Outputs {
        Outputs::from([
            ("arn".to_string(), o.arn.clone()),
            ("name".to_string(), o.name.clone()),
        ])
    }

    async fn create(&self, d: &DesiredRole) -> Result<()> {
        self.create_observed(d).await.map(|_| ())
    }

    /// CreateRole answers with the role; its policies are the ones just put and attached.
    async fn create_observed(&self, d: &DesiredRole) -> Result<Option<Observed<ObservedRole>>> {
        let name = &d.name;
        let mut req = self
            .ctx
            .aws
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(policy::to_text(&d.assume_role_policy))
            .max_session_duration(d.max_session_duration);
        if let Some(description) = d.description.as_deref().filter(|s| !s.is_empty()) {
            req = req.description(description);
        }
        for (k, v) in self.ctx.owner_tags() {
            req = req.tags(tag(k, v)?);
        }
        // EntityAlreadyExists (our own resent request, a concurrent attempt, someone else)
        // makes the reconcile observe again rather than touch a role of unknown ownership.
        let created = req
            .send()
            .await
            .map_err(aws_err(format!("CreateRole {name}")))?;
        // A failure from here on leaves a role that is ours; the next step's diff finishes it.
        for (policy_name, doc) in &d.inline_policies {
            self.put_policy(name, policy_name, doc).await?;
        }
        for arn in &d.managed_policy_arns {
            self.attach(name, arn).await?;
        }
        let Some(role) = created.role() else {
            return Ok(None);
        };
        Ok(Some(observed_role(
            role,
            true,
            role.assume_role_policy_document(),
            d.inline_policies.clone(),
            d.managed_policy_arns.clone(),
        )))
    }

    async fn update(
        &self,
        d: &DesiredRole,
        o: &Observed<ObservedRole>,
        changes: &[Change],
    ) -> Result<()> {
        let iam = &self.ctx.aws.iam;
        let (name, obs) = (&d.name, &o.resource);
        for write in planned_writes(d, obs, changes) {
            match write {
                RoleWrite::Tag => {
                    let mut req = iam.tag_role().role_name(name);
                    for (k, v) in self.ctx.owner_tags() {
                        req = req.tags(tag(k, v)?);
                    }
                    req.send()
                        .await
                        .map_err(aws_err(format!("TagRole {name}")))?;
                }
                RoleWrite::UpdateAssumeRolePolicy => {
                    iam.update_assume_role_policy()
                        .role_name(name)
                        .policy_document(policy::to_text(&d.assume_role_policy))
                        .send()
                        .await
                        .map_err(aws_err(format!("UpdateAssumeRolePolicy {name}")))?;
                }
                RoleWrite::PutPolicy(policy_name) => {
                    if let Some(doc) = d.inline_policies.get(&policy_name) {
                        self.put_policy(name, &policy_name, doc).await?;
                    }
                }
                RoleWrite::AttachPolicy(arn) => self.attach(name, &arn).await?,
                RoleWrite::DetachPolicy(arn) => self.detach(name, &arn).await?,
                RoleWrite::DeletePolicy(policy_name) => {
                    self.delete_policy(name, &policy_name).await?;
                }
                RoleWrite::UpdateRole => {
                    let mut req = iam
                        .update_role()
                        .role_name(name)
                        .max_session_duration(d.max_session_duration);
                    // Always send the description: moto clears it when UpdateRole omits it.
                    if let Some(description) = d.description.as_ref().or(obs.description.as_ref()) {
                        req = req.description(description);
                    }
                    req.send()
                        .await
                        .map_err(aws_err(format!("UpdateRole {name}")))?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, d: &DesiredRole, o: &ObservedRole) -> Result<()> {
        let name = &d.name;
        for arn in &o.managed_policy_arns {
            self.detach(name, arn).await?;
        }
        for policy_name in o.inline_policies.keys() {
            self.delete_policy(name, policy_name).await?;
        }
        // DeleteConflict (something attached since observe) observes again and removes it.
        let deleted = self.ctx.aws.iam.delete_role().role_name(name).send().await;
        write_result(format!("DeleteRole {name}"), deleted)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGION: &str = "us-east-1";
    const ACCOUNT: &str = "123456789012";

    fn spec() -> RoleSpec {
        RoleSpec {
            role_name: None,
            description: None,
            max_session_duration_seconds: None,
            default_policy: true,
            inline_policies: BTreeMap::new(),
            managed_policy_arns: Vec::new(),
            assume_role_policy: None,
        }
    }

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: name.into(),
            ..Default::default()
        }
    }

    fn s3_policy(action: &str) -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "S3", "Effect": "Allow", "Action": action, "Resource": "*"}]})
    }

    /// What IAM would report for a converged role.
    fn converged(d: &DesiredRole) -> ObservedRole {
        ObservedRole {
            arn: format!("arn:aws:iam::{ACCOUNT}:role/{}", d.name),
            name: d.name.clone(),
            description: d.description.clone().filter(|s| !s.is_empty()),
            max_session_duration: Some(d.max_session_duration),
            assume_role_policy: Some(d.assume_role_policy.clone()),
            inline_policies: d.inline_policies.clone(),
            managed_policy_arns: d.managed_policy_arns.clone(),
        }
    }

    /// A role with a description, an inline policy and a managed policy.
    fn described_role() -> DesiredRole {
        let mut s = spec();
        s.description = Some("runtime role".into());
        s.inline_policies
            .insert("extra".into(), s3_policy("s3:GetObject"));
        s.managed_policy_arns = vec!["arn:aws:iam::aws:policy/A".into()];
        desired_role(&meta("r"), &s, REGION, ACCOUNT)
    }

    /// The writes an update makes are the ones its change list names: what differs but is
    /// not in the list is left alone, and grants go before revocations.
    #[test]
    fn update_writes_what_the_changes_name() {
        use RoleWrite::*;
        let d = described_role();
        let mut o = converged(&d);
        // Drift everywhere: a managed policy swapped, an inline policy gone and a foreign
        // one added, another description and session length.
        o.managed_policy_arns = BTreeSet::from(["arn:aws:iam::aws:policy/B".to_string()]);
        o.inline_policies.remove("extra");
        o.inline_policies
            .insert("foreign".into(), s3_policy("s3:*"));
        o.description = Some("old".into());
        o.max_session_duration = Some(7200);
        let field = |f: &str| Change::new(f, None, None);
        let cases: Vec<(Vec<Change>, Vec<RoleWrite>)> = vec![
            (vec![], vec![]),
            (vec![Change::adoption()], vec![Tag]),
            (vec![field(DESCRIPTION)], vec![UpdateRole]),
            (
                vec![field(MAX_SESSION_DURATION), field(DESCRIPTION)],
                vec![UpdateRole],
            ),
            (
                vec![field(ASSUME_ROLE_POLICY)],
                vec![UpdateAssumeRolePolicy],
            ),
            (
                vec![field(MANAGED_POLICY_ARNS)],
                vec![
                    AttachPolicy("arn:aws:iam::aws:policy/A".into()),
                    DetachPolicy("arn:aws:iam::aws:policy/B".into()),
                ],
            ),
            (
                vec![field("spec.inlinePolicies.foreign")],
                vec![DeletePolicy("foreign".into())],
            ),
            // Everything diff reports, in grant-then-revoke order.
            (
                Role::diff(&d, &o),
                vec![
                    PutPolicy("extra".into()),
                    AttachPolicy("arn:aws:iam::aws:policy/A".into()),
                    DetachPolicy("arn:aws:iam::aws:policy/B".into()),
                    DeletePolicy("foreign".into()),
                    UpdateRole,
                ],
            ),
        ];
        for (changes, want) in cases {
            let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
            assert_eq!(planned_writes(&d, &o, &changes), want, "{fields:?}");
        }
    }

    #[test]
    fn defaults() {
        let d = desired_role(&meta("agentcore-runtime"), &spec(), REGION, ACCOUNT);
        assert_eq!(d.name, "agentcore-runtime");
        assert_eq!(d.max_session_duration, 3600);
        assert_eq!(
            d.inline_policies.keys().collect::<Vec<_>>(),
            vec![DEFAULT_POLICY_NAME]
        );
        let trust = &d.assume_role_policy["Statement"][0];
        assert_eq!(
            trust["Principal"]["Service"],
            json!(["bedrock-agentcore.amazonaws.com"])
        );
        assert_eq!(
            trust["Condition"]["StringEquals"]["aws:SourceAccount"],
            json!([ACCOUNT])
        );
        assert_eq!(
            trust["Condition"]["ArnLike"]["aws:SourceArn"],
            json!(["arn:aws:bedrock-agentcore:us-east-1:123456789012:*"])
        );
        let exec = &d.inline_policies[DEFAULT_POLICY_NAME];
        let statements = exec["Statement"].as_array().cloned().unwrap_or_default();
        assert_eq!(statements.len(), 9);
        assert!(statements.iter().all(|s| s["Sid"].is_string()));
        let by_sid = |sid: &str| {
            statements
                .iter()
                .find(|s| s["Sid"] == sid)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            by_sid("EcrImagePull")["Resource"],
            json!(["arn:aws:ecr:us-east-1:123456789012:repository/*"])
        );
        assert_eq!(
            by_sid("CloudWatchMetrics")["Condition"],
            json!({"StringEquals": {"cloudwatch:namespace": ["bedrock-agentcore"]}})
        );
        assert_eq!(
            by_sid("LogsWriteStreams")["Resource"],
            json!([
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/bedrock-agentcore/runtimes/*:log-stream:*"
            ])
        );
        assert_eq!(
            by_sid("GetAgentAccessToken")["Resource"],
            json!([
                "arn:aws:bedrock-agentcore:us-east-1:123456789012:workload-identity-directory/default",
                "arn:aws:bedrock-agentcore:us-east-1:123456789012:workload-identity-directory/default/workload-identity/*"
            ])
        );
        let mut problems = Vec::new();
        policy::validate_document("x", exec, false, &mut problems);
        policy::validate_document("y", &d.assume_role_policy, true, &mut problems);
        assert_eq!(problems, vec![]);

        let mut custom = spec();
        custom.role_name = Some("explicit".into());
        custom.default_policy = false;
        custom
            .inline_policies
            .insert("extra".into(), s3_policy("s3:GetObject"));
        custom.managed_policy_arns = vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()];
        custom.max_session_duration_seconds = Some(7200);
        let d = desired_role(&meta("m"), &custom, REGION, ACCOUNT);
        assert_eq!(d.name, "explicit");
        assert_eq!(d.max_session_duration, 7200);
        assert_eq!(d.inline_policies.keys().collect::<Vec<_>>(), vec!["extra"]);
        assert_eq!(
            d.inline_policies["extra"],
            policy::canonical(&s3_policy("s3:GetObject"))
        );
    }

    #[test]
    fn diff_table() {
        let d = described_role();
        let base = converged(&d);
        type Edit = fn(&mut ObservedRole);
        let cases: Vec<(Edit, Vec<&str>)> = vec![
            (|_| {}, vec![]),
            // IAM hands back the same documents in another shape: no change.
            (
                |o| {
                    o.inline_policies.insert(
                        "extra".into(),
                        policy::observed_document(
                            "%7B%22Statement%22%3A%7B%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22%2A%22%2C%22Effect%22%3A%22Allow%22%2C%22Sid%22%3A%22S3%22%7D%2C%22Version%22%3A%222012-10-17%22%7D",
                        ),
                    );
                },
                vec![],
            ),
            (|o| o.max_session_duration = None, vec![]),
            (
                |o| o.assume_role_policy = Some(json!({"Statement": []})),
                vec!["spec.assumeRolePolicy"],
            ),
            (
                |o| o.assume_role_policy = None,
                vec!["spec.assumeRolePolicy"],
            ),
            (
                |o| {
                    o.inline_policies
                        .insert("extra".into(), policy::canonical(&s3_policy("s3:*")));
                },
                vec!["spec.inlinePolicies.extra"],
            ),
            (
                |o| {
                    o.inline_policies.remove(DEFAULT_POLICY_NAME);
                },
                vec!["spec.inlinePolicies.AgentCoreRuntimeExecution"],
            ),
            (
                |o| {
                    o.inline_policies
                        .insert("stray".into(), policy::canonical(&s3_policy("s3:*")));
                },
                vec!["spec.inlinePolicies.stray"],
            ),
            (
                |o| {
                    o.managed_policy_arns
                        .insert("arn:aws:iam::aws:policy/B".into());
                },
                vec!["spec.managedPolicyArns"],
            ),
            (
                |o| o.managed_policy_arns.clear(),
                vec!["spec.managedPolicyArns"],
            ),
            (|o| o.description = None, vec!["spec.description"]),
            (
                |o| o.description = Some("other".into()),
                vec!["spec.description"],
            ),
            (
                |o| o.max_session_duration = Some(7200),
                vec!["spec.maxSessionDurationSeconds"],
            ),
        ];
        for (i, (edit, want)) in cases.into_iter().enumerate() {
            let mut o = base.clone();
            edit(&mut o);
            let got: Vec<String> = Role::diff(&d, &o).into_iter().map(|c| c.field).collect();
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn diff_names_the_statement() {
        let d = desired_role(&meta("r"), &spec(), REGION, ACCOUNT);
        let mut o = converged(&d);
        let mut changed = d.inline_policies[DEFAULT_POLICY_NAME].clone();
        if let Some(stmts) = changed["Statement"].as_array_mut() {
            for s in stmts.iter_mut() {
                if s["Sid"] == "XRayTracing" {
                    s["Action"] = json!(["xray:PutTraceSegments"]);
                }
            }
        }
        o.inline_policies
            .insert(DEFAULT_POLICY_NAME.into(), changed);
        let changes = Role::diff(&d, &o);
        assert_eq!(changes.len(), 1);
        let keys = |v: &Option<Value>| {
            v.as_ref()
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
        };
        assert_eq!(
            keys(&changes[0].from),
            Some(vec!["XRayTracing".to_string()])
        );
        assert_eq!(keys(&changes[0].to), Some(vec!["XRayTracing".to_string()]));
    }

    #[test]
    fn description_absent_is_unmanaged() {
        let d = desired_role(&meta("r"), &spec(), REGION, ACCOUNT);
        let mut o = converged(&d);
        o.description = Some("set by hand".into());
        assert_eq!(Role::diff(&d, &o), vec![]);
        let mut s = spec();
        s.description = Some(String::new());
        let d = desired_role(&meta("r"), &s, REGION, ACCOUNT);
        assert_eq!(Role::diff(&d, &converged(&d)), vec![]);
    }

    #[test]
    fn validation_table() {
        type Edit = fn(&mut RoleSpec);
        let cases: Vec<(&str, Edit, usize)> = vec![
            ("agentcore-runtime", |_| {}, 0),
            ("ok", |s| s.role_name = Some("Role_+=,.@-1".into()), 0),
            ("bad name!", |_| {}, 1),
            ("ok", |s| s.role_name = Some("a".repeat(65)), 1),
            ("ok", |s| s.role_name = Some("has space".into()), 1),
            ("ok", |s| s.role_name = Some(String::new()), 1),
            ("ok", |s| s.description = Some("fine ünïcode".into()), 0),
            ("ok", |s| s.description = Some("emoji 🚀".into()), 1),
            ("ok", |s| s.description = Some("x".repeat(1001)), 1),
            ("ok", |s| s.max_session_duration_seconds = Some(43200), 0),
            ("ok", |s| s.max_session_duration_seconds = Some(3599), 1),
            ("ok", |s| s.max_session_duration_seconds = Some(43201), 1),
            (
                "ok",
                |s| {
                    s.inline_policies
                        .insert("extra".into(), s3_policy("s3:GetObject"));
                },
                0,
            ),
            (
                "ok",
                |s| {
                    s.inline_policies
                        .insert("bad name".into(), s3_policy("s3:GetObject"));
                },
                1,
            ),
            (
                "ok",
                |s| {
                    s.inline_policies
                        .insert(DEFAULT_POLICY_NAME.into(), s3_policy("s3:GetObject"));
                },
                1,
            ),
            (
                "ok",
                |s| {
                    s.default_policy = false;
                    s.inline_policies
                        .insert(DEFAULT_POLICY_NAME.into(), s3_policy("s3:GetObject"));
                },
                0,
            ),
            (
                "ok",
                |s| {
                    s.inline_policies
                        .insert("p".into(), json!({"Statement": {"Effect": "Allow"}}));
                },
                2,
            ),
            (
                "ok",
                |s| {
                    s.managed_policy_arns = vec![
                        "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
                            .into(),
                        "arn:aws:iam::123456789012:policy/mine".into(),
                    ]
                },
                0,
            ),
            (
                "ok",
                |s| s.managed_policy_arns = vec!["AmazonS3ReadOnlyAccess".into()],
                1,
            ),
            (
                "ok",
                |s| s.managed_policy_arns = vec!["arn:aws:iam::aws:role/x".into()],
                1,
            ),
            (
                "ok",
                |s| {
                    s.managed_policy_arns = vec![
                        "arn:aws:iam::aws:policy/A".into(),
                        "arn:aws:iam::aws:policy/A".into(),
                    ]
                },
                1,
            ),
            (
                "ok",
                |s| {
                    s.assume_role_policy = Some(json!({
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]
                    }))
                },
                0,
            ),
            (
                "ok",
                |s| {
                    s.assume_role_policy = Some(
                        json!({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}),
                    )
                },
                1,
            ),
        ];
        for (i, (name, edit, count)) in cases.into_iter().enumerate() {
            let mut s = spec();
            edit(&mut s);
            let mut problems = Vec::new();
            Role::validate(name, &s, &mut problems);
            assert_eq!(problems.len(), count, "case {i}: {problems:?}");
        }
    }

    #[test]
    fn spec_parses_from_yaml() {
        let yaml = r#"
roleName: agentcore-runtime
inlinePolicies:
  SecretsRead:
    Version: "2012-10-17"
    Statement:
      - Sid: ReadSecret
        Effect: Allow
        Action: secretsmanager:GetSecretValue
        Resource: "*"
managedPolicyArns: [arn:aws:iam::aws:policy/ReadOnlyAccess]
maxSessionDurationSeconds: 7200
"#;
        let docs = crate::model::yaml::parse_documents(yaml).expect("yaml");
        let s: RoleSpec = crate::model::de::from_node(&docs[0], "spec").expect("spec");
        assert!(s.default_policy);
        assert_eq!(s.max_session_duration_seconds, Some(7200));
        let mut problems = Vec::new();
        Role::validate("x", &s, &mut problems);
        assert_eq!(problems, vec![]);
        assert_eq!(
            s.inline_policies["SecretsRead"]["Statement"][0]["Action"],
            json!("secretsmanager:GetSecretValue")
        );
    }

    #[test]
    fn declared_outputs_are_the_outputs() {
        crate::kinds::assert_declared_outputs::<Role>(&{
            let d = desired_role(&meta("r"), &spec(), REGION, ACCOUNT);
            Role::outputs(&d, &converged(&d))
        });
    }
}
