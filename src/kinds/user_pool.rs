//! `UserPool`: a Cognito user pool, the identity provider whose tokens the MCP server's
//! inbound authorizer accepts (through its discovery URL).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::{
    PasswordPolicyType, UserPoolPolicyType, UserPoolType,
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{
    Change, Ctx, DeletionPolicy, Deps, Kind, ObjectMeta, Observed, Outputs, Reference, compare,
};
use crate::error::{Reason, ReconcileError, Result, aws_err, read_result, write_result};
use crate::list_cache::{self, ByName};
use crate::memo::{Memo, time_stamp};
use crate::model::de::FieldProblem;
use crate::model::permissions::{Condition, Grant, Scope};

/// The OpenID Connect discovery document of a user pool.
pub fn discovery_url(region: &str, pool_id: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer(region, pool_id)
    )
}

/// The `iss` claim of the tokens a user pool issues.
pub fn issuer(region: &str, pool_id: &str) -> String {
    format!("https://cognito-idp.{region}.amazonaws.com/{pool_id}")
}

/// Check a Cognito pool or app client name: 1-128 characters matching `[\w\s+=,.@-]+`.
/// `what` names the field for the message (e.g. "pool name").
pub(crate) fn check_cognito_name(
    path: &str,
    what: &str,
    name: &str,
    problems: &mut Vec<FieldProblem>,
) {
    if !super::names::valid_cognito_name(name) {
        problems.push(FieldProblem::new(
            path,
            format!(
                "`{name}` is not a valid {what}: 1-128 characters of letters, digits, spaces and _ + = , . @ -"
            ),
        ));
    }
}

/// The password rules of a user pool. Absent fields take Cognito's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordPolicySpec {
    /// Minimum password length, 6-99. Default 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_length: Option<i32>,
    /// Require at least one upper-case letter. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_uppercase: Option<bool>,
    /// Require at least one lower-case letter. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_lowercase: Option<bool>,
    /// Require at least one digit. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_numbers: Option<bool>,
    /// Require at least one symbol. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_symbols: Option<bool>,
    /// Days a temporary password set by an administrator stays valid, 0-365. Default 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporary_password_validity_days: Option<i32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPoolSpec {
    /// The pool's name in Cognito; defaults to `metadata.name`. The pool is found by this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_name: Option<String>,
    /// Password rules for the pool's users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_policy: Option<PasswordPolicySpec>,
}

/// A password policy with every value filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub minimum_length: i32,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_numbers: bool,
    pub require_symbols: bool,
    pub temporary_password_validity_days: i32,
}

impl Default for PasswordPolicy {
    /// Cognito's defaults.
    fn default() -> Self {
        Self {
            minimum_length: 8,
            require_uppercase: true,
            require_lowercase: true,
            require_numbers: true,
            require_symbols: true,
            temporary_password_validity_days: 7,
        }
    }
}

impl PasswordPolicy {
    fn from_spec(spec: Option<&PasswordPolicySpec>) -> Self {
        let d = Self::default();
        let Some(s) = spec else { return d };
        Self {
            minimum_length: s.minimum_length.unwrap_or(d.minimum_length),
            require_uppercase: s.require_uppercase.unwrap_or(d.require_uppercase),
            require_lowercase: s.require_lowercase.unwrap_or(d.require_lowercase),
            require_numbers: s.require_numbers.unwrap_or(d.require_numbers),
            require_symbols: s.require_symbols.unwrap_or(d.require_symbols),
            temporary_password_validity_days: s
                .temporary_password_validity_days
                .unwrap_or(d.temporary_password_validity_days),
        }
    }

    /// The policy as AWS reports it; a pool without one has Cognito's defaults.
    pub fn from_aws(policy: Option<&PasswordPolicyType>) -> Self {
        let Some(p) = policy else {
            return Self::default();
        };
        Self {
            minimum_length: p.minimum_length().unwrap_or(Self::default().minimum_length),
            require_uppercase: p.require_uppercase(),
            require_lowercase: p.require_lowercase(),
            require_numbers: p.require_numbers(),
            require_symbols: p.require_symbols(),
            temporary_password_validity_days: p.temporary_password_validity_days(),
        }
    }

    /// This policy as the SDK type, keeping what we do not manage (password history) from
    /// `existing`.
    fn to_aws(&self, existing: Option<&PasswordPolicyType>) -> PasswordPolicyType {
        PasswordPolicyType::builder()
            .minimum_length(self.minimum_length)
            .require_uppercase(self.require_uppercase)
            .require_lowercase(self.require_lowercase)
            .require_numbers(self.require_numbers)
            .require_symbols(self.require_symbols)
            .temporary_password_validity_days(self.temporary_password_validity_days)
            .set_password_history_size(existing.and_then(|p| p.password_history_size()))
            .build()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredUserPool {
    pub name: String,
    pub policy: PasswordPolicy,
}

#[derive(Debug, Clone)]
pub struct ObservedUserPool {
    pub id: String,
    /// The region the pool lives in (for its issuer and discovery URLs).
    pub region: String,
    pub arn: String,
    pub policy: PasswordPolicy,
    pub tags: BTreeMap<String, String>,
    /// The whole description: UpdateUserPool resets what it is not given, so an update
    /// sends back everything we do not manage from here.
    pub raw: UserPoolType,
}

/// A pool's description without its attribute schema, which the controller neither
/// manages nor sends back (UpdateUserPool does not take it): a pool's standard attributes
/// are most of its description, and a description is kept per pool (see
/// [`UserPool::describe_unless_unchanged`]).
fn without_schema(mut pool: UserPoolType) -> UserPoolType {
    pool.schema_attributes = None;
    pool
}

pub struct UserPool {
    ctx: Arc<Ctx>,
    /// Descriptions as last read, by pool ID, with the pool's last change then (see
    /// [`UserPool::describe_unless_unchanged`]).
    described: Memo<UserPoolType>,
}

impl UserPool {
    /// Every pool, by name, across all pages of ListUserPools (it has no name filter).
    async fn list_all(&self) -> Result<ByName> {
        let mut all = ByName::default();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .ctx
                .aws
                .cognito
                .list_user_pools()
                .max_results(60)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(aws_err("ListUserPools"))?;
            for p in page.user_pools() {
                if let (Some(name), Some(id)) = (p.name(), p.id()) {
                    match p.last_modified_date() {
                        Some(t) => all.insert_stamped(name, id, time_stamp(t)),
                        None => all.insert(name, id),
                    }
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(all),
            }
        }
    }

    /// The descriptions of every pool named `name`, found in the shared listing. A pool
    /// listed but gone when described leaves the listing; when none is left, a listing
    /// begun after this call decides, so absence is never an old answer.
    async fn pools_named(&self, name: &str) -> Result<Vec<UserPoolType>> {
        let cache = &self.ctx.aws.lists.user_pools;
        let asked = Instant::now();
        let mut found = list_cache::ids_named(cache, name, || self.list_all()).await?;
        loop {
            let mut pools = Vec::new();
            for id in &found.value {
                match self.describe_unless_unchanged(id).await? {
                    Some(pool) => pools.push(pool),
                    None => cache.edit(|m| m.remove(name, id)).await,
                }
            }
            if !pools.is_empty() || found.listed_at >= asked {
                return Ok(pools);
            }
            found = cache
                .lookup(Some(asked), || self.list_all(), |m| m.ids(name))
                .await?;
        }
    }

    /// The pool's description as last read, when the shared listing shows the pool
    /// unchanged since (the same last change; Cognito moves it on every UpdateUserPool)
    /// and the reading is young; otherwise read now. Tags, which the stamp may not cover,
    /// are read at least every [`MEMO_MAX_AGE`](crate::memo::MEMO_MAX_AGE).
    async fn describe_unless_unchanged(&self, id: &str) -> Result<Option<UserPoolType>> {
        if !self.described.is_empty() {
            let listed = self
                .ctx
                .aws
                .lists
                .user_pools
                .lookup(None, || self.list_all(), |m| m.stamp(id))
                .await?;
            if let Some(recalled) = listed.value.and_then(|s| self.described.get(id, &s)) {
                return Ok(Some(recalled.value));
            }
        }
        let pool = self.describe(id).await?;
        match &pool {
            Some(p) => {
                if let Some(t) = p.last_modified_date() {
                    self.described.put(id, time_stamp(t), p.clone());
                }
            }
            None => self.described.forget(id),
        }
        Ok(pool)
    }

    /// The pool's description; `None` when it has gone since it was listed.
    async fn describe(&self, id: &str) -> Result<Option<UserPoolType>> {
        let described = self
            .ctx
            .aws
            .cognito
            .describe_user_pool()
            .user_pool_id(id)
            .send()
            .await;
        Ok(read_result(format!("DescribeUserPool {id}"), described)?
            .and_then(|out| out.user_pool)
            .map(without_schema))
    }

    fn owns(&self, pool: &UserPoolType) -> bool {
        self.ctx.owns(
            pool.user_pool_tags
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    fn observed(&self, pool: UserPoolType) -> Observed<ObservedUserPool> {
        let owned = self.owns(&pool);
        let id = pool.id().unwrap_or_default().to_string();
        let arn = pool.arn().map(String::from).unwrap_or_else(|| {
            format!(
                "arn:aws:cognito-idp:{}:{}:userpool/{id}",
                self.ctx.aws.region, self.ctx.aws.account_id
            )
        });
        let policy = PasswordPolicy::from_aws(pool.policies().and_then(|p| p.password_policy()));
        let tags = pool
            .user_pool_tags
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Observed {
            owned,
            resource: ObservedUserPool {
                id,
                region: self.ctx.aws.region.clone(),
                arn,
                policy,
                tags,
                raw: pool,
            },
        }
    }
}

#[async_trait]
impl Kind for UserPool {
    const KIND: &'static str = "UserPool";
    const LANE: &'static str = "cognito-idp";
    const OUTPUTS: &'static [&'static str] =
        &["poolId", "poolArn", "poolName", "discoveryUrl", "issuer"];
    const DEFAULT_DELETION_POLICY: DeletionPolicy = DeletionPolicy::Retain;
    type Spec = UserPoolSpec;
    type Desired = DesiredUserPool;
    type Observed = ObservedUserPool;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            described: Memo::default(),
        }
    }

    fn permissions(_meta: &ObjectMeta, _spec: &UserPoolSpec, scope: &Scope) -> Vec<Grant> {
        vec![
            Grant::new(&["cognito-idp:ListUserPools"], vec!["*".into()]),
            Grant::new(
                &["cognito-idp:CreateUserPool", "cognito-idp:TagResource"],
                vec!["*".into()],
            )
            .when(Condition::TaggedOnCreate),
            Grant::new(
                &[
                    "cognito-idp:DescribeUserPool",
                    "cognito-idp:UpdateUserPool",
                    "cognito-idp:DeleteUserPool",
                ],
                vec![scope.arn("cognito-idp", "userpool/*")],
            )
            .when(Condition::Owned),
        ]
    }

    fn references(_spec: &UserPoolSpec) -> Vec<Reference> {
        Vec::new()
    }

    fn validate(name: &str, spec: &UserPoolSpec, problems: &mut Vec<FieldProblem>) {
        match &spec.pool_name {
            Some(pool_name) => {
                check_cognito_name("spec.poolName", "pool name", pool_name, problems)
            }
            None => check_cognito_name(
                "metadata.name",
                "pool name (spec.poolName defaults to metadata.name; set it to another name)",
                name,
                problems,
            ),
        }
        let Some(p) = &spec.password_policy else {
            return;
        };
        if let Some(n) = p.minimum_length
            && !(6..=99).contains(&n)
        {
            problems.push(FieldProblem::new(
                "spec.passwordPolicy.minimumLength",
                format!("{n} is out of range: Cognito allows 6-99"),
            ));
        }
        if let Some(n) = p.temporary_password_validity_days
            && !(0..=365).contains(&n)
        {
            problems.push(FieldProblem::new(
                "spec.passwordPolicy.temporaryPasswordValidityDays",
                format!("{n} is out of range: Cognito allows 0-365"),
            ));
        }
    }

    fn resolve(
        &self,
        meta: &ObjectMeta,
        spec: &UserPoolSpec,
        _deps: &Deps<'_>,
    ) -> Result<DesiredUserPool> {
        Ok(DesiredUserPool {
            name: spec.pool_name.clone().unwrap_or_else(|| meta.name.clone()),
            policy: PasswordPolicy::from_spec(spec.password_policy.as_ref()),
        })
    }

    async fn observe(&self, d: &DesiredUserPool) -> Result<Option<Observed<ObservedUserPool>>> {
        let mut pools = self.pools_named(&d.name).await?;
        if pools.len() <= 1 {
            return Ok(pools.pop().map(|p| self.observed(p)));
        }
        // Pool names are not unique in Cognito: the owner tag tells ours apart.
        let all_ids = pools
            .iter()
            .filter_map(|p| p.id())
            .collect::<Vec<_>>()
            .join(", ");
        let mut ours: Vec<UserPoolType> = pools.iter().filter(|p| self.owns(p)).cloned().collect();
        match ours.len() {
            1 => Ok(ours.pop().map(|p| self.observed(p))),
            0 => Err(ReconcileError::terminal(
                Reason::AmbiguousUserPool,
                format!(
                    "{} user pools are named {} ({all_ids}) and none was created by agentcore-controller; \
                     set spec.poolName to a unique name, or delete the extra pools",
                    pools.len(),
                    d.name
                ),
            )),
            n => Err(ReconcileError::terminal(
                Reason::AmbiguousUserPool,
                format!(
                    "{n} user pools named {} carry this controller's owner tag ({}); delete the extra ones",
                    d.name,
                    ours.iter()
                        .filter_map(|p| p.id())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    fn diff(d: &DesiredUserPool, o: &ObservedUserPool) -> Vec<Change> {
        let mut changes = Vec::new();
        let (want, have) = (&d.policy, &o.policy);
        let base = "spec.passwordPolicy";
        compare(
            &mut changes,
            &format!("{base}.minimumLength"),
            &have.minimum_length,
            &want.minimum_length,
        );
        compare(
            &mut changes,
            &format!("{base}.requireUppercase"),
            &have.require_uppercase,
            &want.require_uppercase,
        );
        compare(
            &mut changes,
            &format!("{base}.requireLowercase"),
            &have.require_lowercase,
            &want.require_lowercase,
        );
        compare(
            &mut changes,
            &format!("{base}.requireNumbers"),
            &have.require_numbers,
            &want.require_numbers,
        );
        compare(
            &mut changes,
            &format!("{base}.requireSymbols"),
            &have.require_symbols,
            &want.require_symbols,
        );
        compare(
            &mut changes,
            &format!("{base}.temporaryPasswordValidityDays"),
            &have.temporary_password_validity_days,
            &want.temporary_password_validity_days,
        );
        changes
    }

    fn outputs(d: &DesiredUserPool, o: &ObservedUserPool) -> Outputs {
        Outputs::from([
            ("poolId".to_string(), o.id.clone()),
            ("poolArn".to_string(), o.arn.clone()),
            ("poolName".to_string(), d.name.clone()),
            ("discoveryUrl".to_string(), discovery_url(&o.region, &o.id)),
            ("issuer".to_string(), issuer(&o.region, &o.id)),
        ])
    }

    async fn create(&self, d: &DesiredUserPool) -> Result<()> {
        self.create_observed(d).await.map(|_| ())
    }

    /// CreateUserPool answers with the pool as DescribeUserPool would.
    async fn create_observed(
        &self,
        d: &DesiredUserPool,
    ) -> Result<Option<Observed<ObservedUserPool>>> {
        // CreateUserPool takes no client token; a retry after a lost response is caught by
        // observe, which finds the pool by name and owner tag — so the engine retries, not
        // the SDK (see `aws::no_retry_cognito`).
        let mut req = self
            .ctx
            .aws
            .cognito
            .create_user_pool()
            .pool_name(&d.name)
            .policies(
                UserPoolPolicyType::builder()
                    .password_policy(d.policy.to_aws(None))
                    .build(),
            );
        for (k, v) in self.ctx.owner_tags() {
            req = req.user_pool_tags(k, v);
        }
        // No SDK retry: CreateUserPool has no idempotency token, so a retry after a lost
        // response would make a second pool. The next reconcile observes first instead.
        let cache = &self.ctx.aws.lists.user_pools;
        let created = req
            .customize()
            .config_override(crate::aws::no_retry_cognito())
            .send()
            .await
            .inspect_err(|_| cache.invalidate())
            .map_err(aws_err(format!("CreateUserPool {}", d.name)))?;
        let Some(pool) = created
            .user_pool
            .filter(|p| p.id().is_some())
            .map(without_schema)
        else {
            cache.invalidate();
            return Ok(None);
        };
        let id = pool.id().unwrap_or_default().to_string();
        match pool.last_modified_date() {
            Some(t) => {
                let stamp = time_stamp(t);
                cache
                    .edit(|m| m.insert_stamped(&d.name, &id, stamp.clone()))
                    .await;
                self.described.put(&id, stamp, pool.clone());
            }
            None => cache.edit(|m| m.insert(&d.name, id)).await,
        }
        Ok(Some(self.observed(pool)))
    }

    async fn update(
        &self,
        d: &DesiredUserPool,
        o: &Observed<ObservedUserPool>,
        // One UpdateUserPool, the same whichever fields changed (adoption included): there
        // is no partial write to choose.
        _changes: &[Change],
    ) -> Result<()> {
        // UpdateUserPool sets every setting it is not given back to its default (on AWS;
        // moto likewise rebuilds the pool's settings from its defaults plus the request), so
        // everything we do not manage is sent back as described.
        //
        // The owner tag also goes through UpdateUserPool's UserPoolTags (the existing tags
        // plus ours) rather than TagResource: moto 5.2.5 does not implement TagResource for
        // cognito-idp (it answers HTTP 500), and on AWS UpdateUserPool assigns the tags it is
        // given, so one call adopts and updates on both.
        let raw = &o.resource.raw;
        let existing = raw.policies();
        let policies = UserPoolPolicyType::builder()
            .password_policy(d.policy.to_aws(existing.and_then(|p| p.password_policy())))
            .set_sign_in_policy(existing.and_then(|p| p.sign_in_policy()).cloned())
            .build();
        let mut tags: HashMap<String, String> = o.resource.tags.clone().into_iter().collect();
        tags.extend(self.ctx.owner_tags());
        // UnusedAccountValidityDays is deprecated in favour of the password policy's
        // TemporaryPasswordValidityDays; AWS rejects a request that sets both, so it is sent
        // as 0 (unset).
        let admin_create_user_config = raw.admin_create_user_config.clone().map(|mut c| {
            c.unused_account_validity_days = 0;
            c
        });
        // The legacy verification message fields mirror VerificationMessageTemplate; send
        // them only for a pool that has no template.
        let legacy = raw.verification_message_template.is_none();
        let id = &o.resource.id;
        // Read back after the write, whatever the listing shows meanwhile.
        self.described.forget(id);
        self.ctx
            .aws
            .cognito
            .update_user_pool()
            .user_pool_id(id)
            .policies(policies)
            .set_deletion_protection(raw.deletion_protection.clone())
            .set_lambda_config(raw.lambda_config.clone())
            .set_auto_verified_attributes(raw.auto_verified_attributes.clone())
            .set_verification_message_template(raw.verification_message_template.clone())
            .set_sms_verification_message(raw.sms_verification_message.clone().filter(|_| legacy))
            .set_email_verification_message(
                raw.email_verification_message.clone().filter(|_| legacy),
            )
            .set_email_verification_subject(
                raw.email_verification_subject.clone().filter(|_| legacy),
            )
            .set_sms_authentication_message(raw.sms_authentication_message.clone())
            .set_user_attribute_update_settings(raw.user_attribute_update_settings.clone())
            .set_mfa_configuration(raw.mfa_configuration.clone())
            .set_device_configuration(raw.device_configuration.clone())
            .set_email_configuration(raw.email_configuration.clone())
            .set_sms_configuration(raw.sms_configuration.clone())
            .set_user_pool_tags(Some(tags))
            .set_admin_create_user_config(admin_create_user_config)
            .set_user_pool_add_ons(raw.user_pool_add_ons.clone())
            .set_account_recovery_setting(raw.account_recovery_setting.clone())
            .set_user_pool_tier(raw.user_pool_tier.clone())
            .set_key_configuration(raw.key_configuration.clone())
            .set_issuer_configuration(raw.issuer_configuration.clone())
            .set_acr_configuration(raw.acr_configuration.clone().filter(|m| !m.is_empty()))
            .send()
            .await
            .map_err(aws_err(format!("UpdateUserPool {} ({id})", d.name)))?;
        Ok(())
    }

    async fn delete(&self, d: &DesiredUserPool, o: &ObservedUserPool) -> Result<()> {
        self.described.forget(&o.id);
        let deleted = self
            .ctx
            .aws
            .cognito
            .delete_user_pool()
            .user_pool_id(&o.id)
            .send()
            .await;
        write_result(format!("DeleteUserPool {} ({})", d.name, o.id), deleted)?;
        self.ctx
            .aws
            .lists
            .user_pools
            .edit(|m| m.remove(&d.name, &o.id))
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observed(policy: PasswordPolicy) -> ObservedUserPool {
        ObservedUserPool {
            id: "us-east-1_abc".into(),
            region: "us-east-1".into(),
            arn: "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc".into(),
            policy,
            tags: BTreeMap::new(),
            raw: UserPoolType::builder().build(),
        }
    }

    fn desired(spec: Option<PasswordPolicySpec>) -> DesiredUserPool {
        DesiredUserPool {
            name: "pool".into(),
            policy: PasswordPolicy::from_spec(spec.as_ref()),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            discovery_url("us-east-1", "us-east-1_abc"),
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc/.well-known/openid-configuration"
        );
        assert_eq!(
            issuer("eu-west-1", "eu-west-1_x"),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_x"
        );
    }

    #[test]
    fn outputs_use_the_pool_region() {
        let out = UserPool::outputs(&desired(None), &observed(PasswordPolicy::default()));
        assert_eq!(out["poolId"], "us-east-1_abc");
        assert_eq!(out["poolName"], "pool");
        assert_eq!(
            out["issuer"],
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"
        );
        assert!(out["discoveryUrl"].ends_with("/us-east-1_abc/.well-known/openid-configuration"));
    }

    #[test]
    fn diff_table() {
        let aws_default = PasswordPolicy::from_aws(None);
        let cases = [
            // Defaults on both sides: converged.
            (aws_default.clone(), None, vec![]),
            (
                aws_default.clone(),
                Some(PasswordPolicySpec {
                    minimum_length: Some(12),
                    ..Default::default()
                }),
                vec![Change::new(
                    "spec.passwordPolicy.minimumLength",
                    Some(json!(8)),
                    Some(json!(12)),
                )],
            ),
            (
                PasswordPolicy {
                    require_symbols: false,
                    temporary_password_validity_days: 3,
                    ..aws_default.clone()
                },
                Some(PasswordPolicySpec {
                    require_symbols: Some(false),
                    ..Default::default()
                }),
                vec![Change::new(
                    "spec.passwordPolicy.temporaryPasswordValidityDays",
                    Some(json!(3)),
                    Some(json!(7)),
                )],
            ),
            (
                aws_default.clone(),
                Some(PasswordPolicySpec {
                    require_uppercase: Some(false),
                    require_lowercase: Some(false),
                    require_numbers: Some(false),
                    ..Default::default()
                }),
                vec![
                    Change::new(
                        "spec.passwordPolicy.requireUppercase",
                        Some(json!(true)),
                        Some(json!(false)),
                    ),
                    Change::new(
                        "spec.passwordPolicy.requireLowercase",
                        Some(json!(true)),
                        Some(json!(false)),
                    ),
                    Change::new(
                        "spec.passwordPolicy.requireNumbers",
                        Some(json!(true)),
                        Some(json!(false)),
                    ),
                ],
            ),
        ];
        for (have, spec, want) in cases {
            assert_eq!(UserPool::diff(&desired(spec), &observed(have)), want);
        }
    }

    #[test]
    fn aws_policy_is_normalised() {
        let p = PasswordPolicyType::builder()
            .require_uppercase(true)
            .require_lowercase(true)
            .require_numbers(true)
            .require_symbols(true)
            .temporary_password_validity_days(7)
            .build();
        // MinimumLength absent: Cognito's default.
        assert_eq!(
            PasswordPolicy::from_aws(Some(&p)),
            PasswordPolicy::default()
        );
        let kept = PasswordPolicyType::builder()
            .password_history_size(5)
            .build();
        assert_eq!(
            PasswordPolicy::default()
                .to_aws(Some(&kept))
                .password_history_size(),
            Some(5)
        );
    }

    #[test]
    fn validation_table() {
        let policy = |min: Option<i32>, days: Option<i32>| {
            Some(PasswordPolicySpec {
                minimum_length: min,
                temporary_password_validity_days: days,
                ..Default::default()
            })
        };
        let cases = [
            ("pool", None, None, 0),
            ("pool", Some("My pool-1@x"), policy(Some(6), Some(0)), 0),
            ("pool", None, policy(Some(99), Some(365)), 0),
            ("pool", None, policy(Some(5), None), 1),
            ("pool", None, policy(Some(100), Some(366)), 2),
            ("pool", Some(""), None, 1),
            ("pool", Some("bad/name"), None, 1),
            ("bad/name", None, None, 1),
            ("bad/name", Some("good"), None, 0),
        ];
        for (name, pool_name, password_policy, count) in cases {
            let spec = UserPoolSpec {
                pool_name: pool_name.map(String::from),
                password_policy,
            };
            let mut problems = Vec::new();
            UserPool::validate(name, &spec, &mut problems);
            assert_eq!(problems.len(), count, "{name} {pool_name:?}: {problems:?}");
        }
        let long = "x".repeat(129);
        let mut problems = Vec::new();
        check_cognito_name("spec.poolName", "pool name", &long, &mut problems);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn manifest_spec_parses() {
        use crate::kinds::Registry;
        use crate::model::yaml::parse_documents;
        let schema = Registry::offline();
        let schema = schema.schema("UserPool").expect("registered");
        let docs =
            parse_documents("passwordPolicy:\n  minimumLength: 12\n  requireSymbols: false\n")
                .expect("yaml");
        let spec = schema.parse("pool", &docs[0]).0.expect("valid");
        assert_eq!(
            spec,
            json!({"passwordPolicy": {"minimumLength": 12, "requireSymbols": false}})
        );
        let docs = parse_documents("passwordPolicy:\n  minimumLength: 3\n  requireDigits: true\n")
            .expect("yaml");
        let problems = schema.parse("pool", &docs[0]).1;
        // Both the unknown field and the out-of-range value are reported at once.
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].path, "spec.passwordPolicy.requireDigits");
        assert_eq!(problems[1].path, "spec.passwordPolicy.minimumLength");
        assert_eq!(schema.default_deletion_policy(), DeletionPolicy::Retain);
    }

    #[test]
    fn declared_outputs_are_the_outputs() {
        crate::kinds::assert_declared_outputs::<UserPool>(&UserPool::outputs(
            &desired(None),
            &observed(PasswordPolicy::default()),
        ));
    }
}
