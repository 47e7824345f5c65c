//! `User`: a Cognito user with a controller-generated password, kept in Secrets Manager as
//! JSON `{"username": ..., "password": ...}` so that clients (and token renewal) can sign in.
//!
//! Users cannot be tagged. A user found by name in the referenced pool counts as ours: the
//! pool is ours (it carries the owner tag) or was adopted explicitly, and whoever owns a pool
//! owns its users.
//!
//! The password is never lost, whatever step a run is killed at:
//! - it is stored before Cognito ever sees it, and a stored password is reused rather than
//!   replaced;
//! - a newly stored password carries the tag [`PASSWORD_PENDING_TAG`] until it has been set
//!   on the user as a permanent password, so a run killed in between shows up as a change
//!   (`passwordSecret`) and the next run sets it again.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType};
use aws_sdk_secretsmanager::types::Tag;
use rand::RngExt;
use rand::seq::SliceRandom;
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::secret::valid_secret_name;
use super::{
    Change, Ctx, DeletionPolicy, Deps, Kind, ObjectMeta, Observed, Outputs, Reference, Writes,
    changed, compare, secrets_manager,
};
use crate::error::{Reason, ReconcileError, Result, aws_err, read_result, write_result};
use crate::model::de::FieldProblem;
use crate::model::permissions::{Condition, Grant, Scope};

/// Tag on a password secret whose password may not be the user's password yet.
pub const PASSWORD_PENDING_TAG: &str = "agentcore.dev/password-pending";
/// Length of generated passwords (longer when the pool's policy asks for more).
pub const PASSWORD_LENGTH: usize = 24;
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const DIGITS: &[u8] = b"0123456789";
/// Symbols Cognito accepts in passwords (a subset of its list, without quotes and spaces).
const SYMBOLS: &[u8] = b"^$*.[]{}()?-!@#%&/,><:;|_~";
/// The user status we converge on.
const CONFIRMED: &str = "CONFIRMED";

/// The fields `diff` names and `update` writes.
const STATUS: &str = "status";
const PASSWORD_SECRET: &str = "passwordSecret";
const ATTRIBUTES: &str = "spec.attributes";

/// One write an update makes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UserWrite {
    /// Set the stored password (a new one, stored first, when the secret is not usable):
    /// confirms the user and puts secret and user back in step.
    SetPassword,
    /// AdminUpdateUserAttributes of these attributes, to their desired values.
    UpdateAttributes(Vec<String>),
}

/// The writes that make the user match, for what `changes` name.
fn planned_writes(d: &DesiredUser, changes: &[Change]) -> Vec<UserWrite> {
    let mut writes = Vec::new();
    if changed(changes, STATUS) || changed(changes, PASSWORD_SECRET) {
        writes.push(UserWrite::SetPassword);
    }
    let attributes: Vec<String> = changes
        .iter()
        .filter_map(|c| c.below(ATTRIBUTES))
        .filter(|key| d.attributes.contains_key(*key))
        .map(String::from)
        .collect();
    if !attributes.is_empty() {
        writes.push(UserWrite::UpdateAttributes(attributes));
    }
    writes
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    /// `metadata.name` of the UserPool the user belongs to.
    pub user_pool_ref: String,
    /// The user's name in Cognito; defaults to `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// User attributes, name to value (e.g. `email: alice@example.com`). Only these keys
    /// are managed; attributes Cognito adds (such as `sub`) are left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
    /// Secrets Manager secret holding `{"username": ..., "password": ...}`. Default
    /// `agentcore-controller/users/{poolName}/{username}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredUser {
    pub pool_id: String,
    pub pool_name: String,
    pub username: String,
    pub attributes: BTreeMap<String, String>,
    pub secret_name: String,
}

/// The password secret as DescribeSecret shows it (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordSecret {
    pub arn: String,
    /// Carries our owner tag: created by us, so deleted with the user.
    pub owned: bool,
    /// Carries [`PASSWORD_PENDING_TAG`]: the password may not be set on the user yet.
    pub pending: bool,
    /// Scheduled for deletion (it can be restored until the window ends).
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedUser {
    pub status: String,
    pub attributes: BTreeMap<String, String>,
    pub secret: Option<PasswordSecret>,
}

/// The JSON document kept in the password secret.
#[derive(Serialize)]
struct CredentialsOut<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
struct CredentialsIn {
    username: String,
    password: SecretString,
}

/// A password of `length` (at least 4) characters from the operating system's CSPRNG-seeded
/// thread generator, with at least one upper-case letter, lower-case letter, digit and symbol.
pub fn generate_password(length: usize) -> SecretString {
    let mut rng = rand::rng();
    let classes = [UPPER, LOWER, DIGITS, SYMBOLS];
    let all: Vec<u8> = classes.concat();
    let mut chars: Vec<u8> = Vec::with_capacity(length.max(classes.len()));
    for class in classes {
        chars.push(class[rng.random_range(0..class.len())]);
    }
    while chars.len() < length {
        chars.push(all[rng.random_range(0..all.len())]);
    }
    chars.shuffle(&mut rng);
    let password: String = chars.iter().map(|&b| char::from(b)).collect();
    chars.zeroize();
    SecretString::from(password)
}

/// A new password for a user of `pool_id`: our length, or the pool's minimum when that is
/// longer.
pub async fn new_password(ctx: &Ctx, pool_id: &str) -> Result<SecretString> {
    let out = ctx
        .aws
        .cognito
        .describe_user_pool()
        .user_pool_id(pool_id)
        .send()
        .await
        .map_err(aws_err(format!("DescribeUserPool {pool_id}")))?;
    let minimum = out
        .user_pool()
        .and_then(|p| p.policies())
        .and_then(|p| p.password_policy())
        .and_then(|p| p.minimum_length())
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    Ok(generate_password(PASSWORD_LENGTH.max(minimum)))
}

fn default_secret_name(pool_name: &str, username: &str) -> String {
    format!("agentcore-controller/users/{pool_name}/{username}")
}

pub(crate) use super::names::valid_cognito_text;

/// Read the username and password stored in a password secret.
async fn read_credentials(ctx: &Ctx, secret_name: &str) -> Result<(String, SecretString)> {
    let Some(text) = secrets_manager::value(ctx, secret_name).await? else {
        return Err(ReconcileError::waiting(
            Reason::PasswordSecretNotFound,
            format!("password secret {secret_name} does not exist yet"),
        ));
    };
    // The parse error is not passed on: serde's messages may quote the secret's content.
    let creds: CredentialsIn = serde_json::from_str(text.expose_secret()).map_err(|_| {
        ReconcileError::terminal(
            Reason::InvalidPasswordSecret,
            format!(
                "secret {secret_name} does not hold JSON {{\"username\": ..., \"password\": ...}}"
            ),
        )
    })?;
    Ok((creds.username, creds.password))
}

/// The password stored in a User's password secret (e.g. to sign in and renew tokens).
pub async fn read_password(ctx: &Ctx, secret_name: &str) -> Result<SecretString> {
    Ok(read_credentials(ctx, secret_name).await?.1)
}

/// Give a user a permanent password (its status becomes CONFIRMED).
pub async fn set_permanent_password(
    ctx: &Ctx,
    pool_id: &str,
    username: &str,
    password: &SecretString,
) -> Result<()> {
    ctx.aws
        .cognito
        .admin_set_user_password()
        .user_pool_id(pool_id)
        .username(username)
        .password(password.expose_secret())
        .permanent(true)
        .send()
        .await
        .map_err(aws_err(format!("AdminSetUserPassword {username}")))?;
    Ok(())
}

pub struct User {
    ctx: Arc<Ctx>,
}

impl User {
    async fn describe_secret(&self, name: &str) -> Result<Option<PasswordSecret>> {
        let Some(out) = secrets_manager::describe(&self.ctx, name).await? else {
            return Ok(None);
        };
        let tags = || {
            out.tags()
                .iter()
                .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        };
        Ok(Some(PasswordSecret {
            arn: out.arn().unwrap_or_default().to_string(),
            owned: self.ctx.owns(tags()),
            pending: tags().any(|(k, _)| k == PASSWORD_PENDING_TAG),
            deleted: out.deleted_date().is_some(),
        }))
    }

    /// The stored password, storing a new one first when there is none. Returns the
    /// password and whether the secret is pending (not known to be set on the user).
    /// Also returns the secret's ARN when an answer gave it.
    async fn ensure_password(&self, d: &DesiredUser) -> Result<(SecretString, bool, String)> {
        let secrets = &self.ctx.aws.secrets;
        let name = &d.secret_name;
        if let Some(existing) = self.describe_secret(name).await? {
            if existing.deleted {
                // A secret scheduled for deletion blocks CreateSecret under its name; bring
                // it back and keep using its password.
                secrets
                    .restore_secret()
                    .secret_id(name)
                    .send()
                    .await
                    .map_err(aws_err(format!("RestoreSecret {name}")))?;
            }
            let (username, password) = read_credentials(&self.ctx, name).await?;
            if username != d.username {
                return Err(ReconcileError::terminal(
                    Reason::PasswordSecretConflict,
                    format!(
                        "secret {name} holds the credentials of user {username}, not {}; \
                         set spec.passwordSecretName to another secret",
                        d.username
                    ),
                ));
            }
            return Ok((password, existing.pending, existing.arn));
        }
        let password = new_password(&self.ctx, &d.pool_id).await?;
        let document = SecretString::from(
            serde_json::to_string(&CredentialsOut {
                username: &d.username,
                password: password.expose_secret(),
            })
            .map_err(|e| ReconcileError::terminal(Reason::InvalidPasswordSecret, e.to_string()))?,
        );
        let mut req = secrets
            .create_secret()
            .name(name)
            .description(format!(
                "Password of Cognito user {} in user pool {} (agentcore-controller)",
                d.username, d.pool_name
            ))
            .secret_string(document.expose_secret())
            .tags(
                Tag::builder()
                    .key(PASSWORD_PENDING_TAG)
                    .value("true")
                    .build(),
            );
        for (k, v) in self.ctx.owner_tags() {
            req = req.tags(Tag::builder().key(k).value(v).build());
        }
        match req.send().await {
            Ok(out) => Ok((password, true, out.arn.unwrap_or_default())),
            // Created meanwhile (or a lost response to our own request): use what is stored.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_exists_exception()) =>
            {
                let (_, stored) = read_credentials(&self.ctx, name).await?;
                Ok((stored, true, String::new()))
            }
            // DescribeSecret has just found no secret of this name, so this is AWS still
            // removing a force-deleted one (deletion is asynchronous): retry later.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_invalid_request_exception()) =>
            {
                let err = ReconcileError::from_sdk(&format!("CreateSecret {name}"), e);
                Err(ReconcileError::recoverable(err.reason, err.message))
            }
            Err(e) => Err(aws_err(format!("CreateSecret {name}"))(e)),
        }
    }

    /// Set the password as permanent (status CONFIRMED), then clear the pending mark.
    async fn set_password(
        &self,
        d: &DesiredUser,
        password: &SecretString,
        pending: bool,
    ) -> Result<()> {
        set_permanent_password(&self.ctx, &d.pool_id, &d.username, password).await?;
        if pending {
            self.ctx
                .aws
                .secrets
                .untag_resource()
                .secret_id(&d.secret_name)
                .tag_keys(PASSWORD_PENDING_TAG)
                .send()
                .await
                .map_err(aws_err(format!("UntagResource {}", d.secret_name)))?;
        }
        Ok(())
    }

    fn attributes<'a>(
        pairs: impl Iterator<Item = (&'a String, &'a String)>,
    ) -> Result<Vec<AttributeType>> {
        pairs
            .map(|(k, v)| {
                AttributeType::builder()
                    .name(k)
                    .value(v)
                    .build()
                    .map_err(|e| ReconcileError::terminal(Reason::InvalidSpec, e.to_string()))
            })
            .collect()
    }
}

#[async_trait]
impl Kind for User {
    const KIND: &'static str = "User";
    const LANE: &'static str = "cognito-idp";
    const OUTPUTS: &'static [&'static str] =
        &["username", "passwordSecretName", "passwordSecretArn"];
    const DEFAULT_DELETION_POLICY: DeletionPolicy = DeletionPolicy::Retain;
    const CONTAINED_IN: &'static [&'static str] = &["UserPool"];
    type Spec = UserSpec;
    type Desired = DesiredUser;
    type Observed = ObservedUser;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    fn aws_name(_meta: &ObjectMeta, spec: &UserSpec) -> Option<String> {
        // What a Token signing this user in reads: the password secret.
        spec.password_secret_name.clone()
    }

    fn permissions(_meta: &ObjectMeta, spec: &UserSpec, scope: &Scope) -> Vec<Grant> {
        let secret = spec
            .password_secret_name
            .clone()
            .unwrap_or_else(|| "agentcore-controller/users/*".into());
        let mut grants = vec![
            Grant::new(
                &[
                    "cognito-idp:DescribeUserPool",
                    "cognito-idp:AdminGetUser",
                    "cognito-idp:AdminCreateUser",
                    "cognito-idp:AdminSetUserPassword",
                    "cognito-idp:AdminUpdateUserAttributes",
                    "cognito-idp:AdminDeleteUser",
                ],
                vec![scope.arn("cognito-idp", "userpool/*")],
            )
            .when(Condition::Owned),
        ];
        grants.extend(super::secrets_manager::grants(scope, &[secret]));
        grants
    }

    fn references(spec: &UserSpec) -> Vec<Reference> {
        vec![Reference::new(
            "spec.userPoolRef",
            "UserPool",
            &spec.user_pool_ref,
        )]
    }

    fn writes(_name: &str, spec: &UserSpec) -> Vec<Writes> {
        // The default name depends on the pool's name, known only once resolved.
        spec.password_secret_name
            .iter()
            .map(|n| Writes::new("spec.passwordSecretName", "secret", n))
            .collect()
    }

    fn validate(name: &str, spec: &UserSpec, problems: &mut Vec<FieldProblem>) {
        if spec.user_pool_ref.is_empty() {
            problems.push(FieldProblem::new(
                "spec.userPoolRef",
                "name the UserPool (its metadata.name) this user belongs to",
            ));
        }
        let (path, username) = match &spec.username {
            Some(u) => ("spec.username", u.as_str()),
            None => ("metadata.name", name),
        };
        if !valid_cognito_text(username, 128) {
            problems.push(FieldProblem::new(
                path,
                format!("`{username}` is not a valid username: 1-128 characters, no spaces"),
            ));
        }
        match &spec.password_secret_name {
            Some(secret) if !valid_secret_name(secret) => problems.push(FieldProblem::new(
                "spec.passwordSecretName",
                format!("`{secret}` is not a valid secret name: 1-512 characters of a-z A-Z 0-9 / _ + = . @ -"),
            )),
            Some(_) => {}
            None if !valid_secret_name(&default_secret_name("pool", username)) => {
                problems.push(FieldProblem::new(
                    path,
                    format!(
                        "the default password secret name {} cannot hold `{username}` (allowed: a-z A-Z 0-9 / _ + = . @ -); \
                         set spec.passwordSecretName",
                        default_secret_name("{poolName}", "{username}")
                    ),
                ))
            }
            None => {}
        }
        for (key, value) in spec.attributes.iter().flatten() {
            let path = format!("spec.attributes.{key}");
            if key == "sub" {
                problems.push(FieldProblem::new(
                    path,
                    "`sub` is assigned by Cognito and cannot be set",
                ));
            } else if !valid_cognito_text(key, 32) {
                problems.push(FieldProblem::new(
                    path,
                    format!("`{key}` is not a valid attribute name: 1-32 characters, no spaces"),
                ));
            } else if value.chars().count() > 2048 {
                problems.push(FieldProblem::new(
                    path,
                    "the value is longer than 2048 characters",
                ));
            }
        }
    }

    fn resolve(&self, meta: &ObjectMeta, spec: &UserSpec, deps: &Deps<'_>) -> Result<DesiredUser> {
        let pool_id = deps.get("UserPool", &spec.user_pool_ref, "poolId")?;
        let pool_name = deps.get("UserPool", &spec.user_pool_ref, "poolName")?;
        let username = spec.username.clone().unwrap_or_else(|| meta.name.clone());
        let secret_name = match &spec.password_secret_name {
            Some(n) => n.clone(),
            None => {
                let n = default_secret_name(&pool_name, &username);
                if !valid_secret_name(&n) {
                    return Err(ReconcileError::terminal(
                        Reason::InvalidSpec,
                        format!(
                            "the default password secret name {n} is not a valid secret name \
                             (allowed: a-z A-Z 0-9 / _ + = . @ -); set spec.passwordSecretName"
                        ),
                    ));
                }
                n
            }
        };
        Ok(DesiredUser {
            pool_id,
            pool_name,
            username,
            attributes: spec.attributes.clone().unwrap_or_default(),
            secret_name,
        })
    }

    async fn observe(&self, d: &DesiredUser) -> Result<Option<Observed<ObservedUser>>> {
        let user = self
            .ctx
            .aws
            .cognito
            .admin_get_user()
            .user_pool_id(&d.pool_id)
            .username(&d.username)
            .send()
            .await;
        // No such user, or no such pool (and so no user).
        let Some(user) = read_result(format!("AdminGetUser {}", d.username), user)? else {
            return Ok(None);
        };
        let attributes = user
            .user_attributes()
            .iter()
            .map(|a| {
                (
                    a.name().to_string(),
                    a.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let status = user
            .user_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        // The secret's metadata only: its value is read when a password must be set.
        let secret = self.describe_secret(&d.secret_name).await?;
        Ok(Some(Observed {
            // Owned when found: see the module documentation.
            owned: true,
            resource: ObservedUser {
                status,
                attributes,
                secret,
            },
        }))
    }

    fn diff(d: &DesiredUser, o: &ObservedUser) -> Vec<Change> {
        let mut changes = Vec::new();
        if o.status != CONFIRMED {
            changes.push(Change::new(
                STATUS,
                Some(Value::String(o.status.clone())),
                Some(Value::String(CONFIRMED.into())),
            ));
        }
        let masked = Some(Value::String("***".into()));
        let secret_state = match &o.secret {
            None => Some(None),
            Some(s) if s.deleted => Some(Some("(scheduled for deletion)")),
            Some(s) if s.pending => Some(Some("(not yet set on the user)")),
            Some(_) => None,
        };
        if let Some(from) = secret_state {
            changes.push(Change::new(
                PASSWORD_SECRET,
                from.map(|f| Value::String(f.into())),
                masked,
            ));
        }
        for (key, want) in &d.attributes {
            compare(
                &mut changes,
                &format!("{ATTRIBUTES}.{key}"),
                &o.attributes.get(key),
                &Some(want),
            );
        }
        changes
    }

    fn outputs(d: &DesiredUser, o: &ObservedUser) -> Outputs {
        let mut out = Outputs::from([
            ("username".to_string(), d.username.clone()),
            ("passwordSecretName".to_string(), d.secret_name.clone()),
        ]);
        if let Some(s) = o
            .secret
            .as_ref()
            .filter(|s| !s.deleted && !s.arn.is_empty())
        {
            out.insert("passwordSecretArn".to_string(), s.arn.clone());
        }
        out
    }

    async fn create(&self, d: &DesiredUser) -> Result<()> {
        self.create_observed(d).await.map(|_| ())
    }

    /// Created CONFIRMED with the desired attributes, its password stored and set (the
    /// pending mark cleared): what observe would read, but for attributes Cognito adds,
    /// which the diff does not compare.
    async fn create_observed(&self, d: &DesiredUser) -> Result<Option<Observed<ObservedUser>>> {
        // (a) The password is stored (or the stored one reused) before Cognito sees it.
        let (password, pending, arn) = self.ensure_password(d).await?;
        // (b) The user, with that password as its temporary password and no invitation.
        let created = self
            .ctx
            .aws
            .cognito
            .admin_create_user()
            .user_pool_id(&d.pool_id)
            .username(&d.username)
            .message_action(MessageActionType::Suppress)
            .temporary_password(password.expose_secret())
            .set_user_attributes(Some(Self::attributes(d.attributes.iter())?))
            .send()
            .await;
        let existed = match created {
            Ok(_) => false,
            // A lost response to our own earlier request: carry on with the same password.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_username_exists_exception()) =>
            {
                true
            }
            Err(e) => return Err(aws_err(format!("AdminCreateUser {}", d.username))(e)),
        };
        // (c) Permanent, so the status is CONFIRMED and no password change is forced.
        self.set_password(d, &password, pending).await?;
        // A user that existed already may hold other attributes: read it back.
        if existed || arn.is_empty() {
            return Ok(None);
        }
        Ok(Some(Observed {
            owned: true,
            resource: ObservedUser {
                status: CONFIRMED.to_string(),
                attributes: d.attributes.clone(),
                secret: Some(PasswordSecret {
                    arn,
                    owned: true,
                    pending: false,
                    deleted: false,
                }),
            },
        }))
    }

    async fn update(
        &self,
        d: &DesiredUser,
        _o: &Observed<ObservedUser>,
        changes: &[Change],
    ) -> Result<()> {
        for write in planned_writes(d, changes) {
            match write {
                UserWrite::SetPassword => {
                    // A missing secret gets a new password, stored first; otherwise the
                    // stored password is set again.
                    let (password, pending, _) = self.ensure_password(d).await?;
                    self.set_password(d, &password, pending).await?;
                }
                UserWrite::UpdateAttributes(keys) => {
                    let changed =
                        Self::attributes(d.attributes.iter().filter(|(k, _)| keys.contains(*k)))?;
                    self.ctx
                        .aws
                        .cognito
                        .admin_update_user_attributes()
                        .user_pool_id(&d.pool_id)
                        .username(&d.username)
                        .set_user_attributes(Some(changed))
                        .send()
                        .await
                        .map_err(aws_err(format!("AdminUpdateUserAttributes {}", d.username)))?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, d: &DesiredUser, o: &ObservedUser) -> Result<()> {
        // The secret goes first: a run killed in between still finds the user, and so comes
        // back to delete it. Only a secret we created is deleted.
        if o.secret.as_ref().is_some_and(|s| s.owned) {
            secrets_manager::delete_now(&self.ctx, &d.secret_name).await?;
        }
        let deleted = self
            .ctx
            .aws
            .cognito
            .admin_delete_user()
            .user_pool_id(&d.pool_id)
            .username(&d.username)
            .send()
            .await;
        write_result(format!("AdminDeleteUser {}", d.username), deleted)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn desired(attributes: &[(&str, &str)]) -> DesiredUser {
        DesiredUser {
            pool_id: "us-east-1_abc".into(),
            pool_name: "pool".into(),
            username: "alice".into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secret_name: "agentcore-controller/users/pool/alice".into(),
        }
    }

    fn secret(pending: bool, deleted: bool) -> Option<PasswordSecret> {
        Some(PasswordSecret {
            arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:x".into(),
            owned: true,
            pending,
            deleted,
        })
    }

    fn observed(
        status: &str,
        attributes: &[(&str, &str)],
        secret: Option<PasswordSecret>,
    ) -> ObservedUser {
        ObservedUser {
            status: status.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secret,
        }
    }

    /// The writes an update makes are the ones its change list names.
    #[test]
    fn update_writes_what_the_changes_name() {
        use UserWrite::*;
        let d = desired(&[("email", "a@example.com"), ("name", "Alice")]);
        let field = |f: &str| Change::new(f, None, None);
        let cases: Vec<(Vec<Change>, Vec<UserWrite>)> = vec![
            (vec![], vec![]),
            (vec![field(STATUS)], vec![SetPassword]),
            (vec![field(PASSWORD_SECRET)], vec![SetPassword]),
            (
                vec![field("spec.attributes.name")],
                vec![UpdateAttributes(vec!["name".into()])],
            ),
            (
                vec![
                    field(STATUS),
                    field(PASSWORD_SECRET),
                    field("spec.attributes.email"),
                    field("spec.attributes.name"),
                ],
                vec![
                    SetPassword,
                    UpdateAttributes(vec!["email".into(), "name".into()]),
                ],
            ),
            // From diff: a user that lost its secret and has an old e-mail address.
            (
                User::diff(
                    &d,
                    &observed(
                        "CONFIRMED",
                        &[("email", "old@example.com"), ("name", "Alice")],
                        None,
                    ),
                ),
                vec![SetPassword, UpdateAttributes(vec!["email".into()])],
            ),
        ];
        for (changes, want) in cases {
            let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
            assert_eq!(planned_writes(&d, &changes), want, "{fields:?}");
        }
    }

    #[test]
    fn diff_table() {
        let email = [("email", "a@example.com")];
        let cognito_adds = [
            ("sub", "1234"),
            ("email", "a@example.com"),
            ("email_verified", "false"),
        ];
        let cases = [
            (
                observed("CONFIRMED", &[("sub", "1234")], secret(false, false)),
                desired(&[]),
                vec![],
            ),
            // Attributes Cognito adds are not compared.
            (
                observed("CONFIRMED", &cognito_adds, secret(false, false)),
                desired(&email),
                vec![],
            ),
            (
                observed("FORCE_CHANGE_PASSWORD", &[], secret(false, false)),
                desired(&[]),
                vec![Change::new(
                    "status",
                    Some(json!("FORCE_CHANGE_PASSWORD")),
                    Some(json!("CONFIRMED")),
                )],
            ),
            (
                observed("CONFIRMED", &[], None),
                desired(&[]),
                vec![Change::new("passwordSecret", None, Some(json!("***")))],
            ),
            (
                observed("CONFIRMED", &[], secret(true, false)),
                desired(&[]),
                vec![Change::new(
                    "passwordSecret",
                    Some(json!("(not yet set on the user)")),
                    Some(json!("***")),
                )],
            ),
            (
                observed("CONFIRMED", &[], secret(false, true)),
                desired(&[]),
                vec![Change::new(
                    "passwordSecret",
                    Some(json!("(scheduled for deletion)")),
                    Some(json!("***")),
                )],
            ),
            (
                observed(
                    "CONFIRMED",
                    &[("email", "old@example.com")],
                    secret(false, false),
                ),
                desired(&[("email", "new@example.com"), ("name", "Alice")]),
                vec![
                    Change::new(
                        "spec.attributes.email",
                        Some(json!("old@example.com")),
                        Some(json!("new@example.com")),
                    ),
                    Change::new(
                        "spec.attributes.name",
                        Some(json!(null)),
                        Some(json!("Alice")),
                    ),
                ],
            ),
        ];
        for (o, d, want) in cases {
            assert_eq!(User::diff(&d, &o), want, "{o:?}");
        }
    }

    #[test]
    fn no_change_shows_a_password() {
        let changes = User::diff(&desired(&[]), &observed("RESET_REQUIRED", &[], None));
        let text = serde_json::to_string(&changes).unwrap_or_default();
        assert!(text.contains("***"));
    }

    #[test]
    fn outputs_table() {
        let out = User::outputs(
            &desired(&[]),
            &observed("CONFIRMED", &[], secret(false, false)),
        );
        assert_eq!(out["username"], "alice");
        assert_eq!(
            out["passwordSecretName"],
            "agentcore-controller/users/pool/alice"
        );
        assert!(out["passwordSecretArn"].starts_with("arn:aws:secretsmanager:"));
        let out = User::outputs(
            &desired(&[]),
            &observed("CONFIRMED", &[], secret(false, true)),
        );
        assert!(!out.contains_key("passwordSecretArn"));
    }

    #[test]
    fn generated_passwords_meet_the_policy() {
        for _ in 0..500 {
            let p = generate_password(PASSWORD_LENGTH);
            let p = p.expose_secret();
            assert_eq!(p.len(), PASSWORD_LENGTH);
            assert!(p.bytes().any(|b| UPPER.contains(&b)), "{p}");
            assert!(p.bytes().any(|b| LOWER.contains(&b)), "{p}");
            assert!(p.bytes().any(|b| DIGITS.contains(&b)), "{p}");
            assert!(p.bytes().any(|b| SYMBOLS.contains(&b)), "{p}");
            assert!(p.bytes().all(|b| {
                [UPPER, LOWER, DIGITS, SYMBOLS]
                    .iter()
                    .any(|c| c.contains(&b))
            }));
        }
        assert_eq!(generate_password(40).expose_secret().len(), 40);
        assert_ne!(
            generate_password(24).expose_secret(),
            generate_password(24).expose_secret()
        );
    }

    #[test]
    fn credentials_document_round_trips() {
        let password = generate_password(PASSWORD_LENGTH);
        let text = serde_json::to_string(&CredentialsOut {
            username: "alice",
            password: password.expose_secret(),
        })
        .unwrap_or_default();
        let back: CredentialsIn = serde_json::from_str(&text).expect("parses");
        assert_eq!(back.username, "alice");
        assert_eq!(back.password.expose_secret(), password.expose_secret());
        assert!(!format!("{:?}", back.password).contains(password.expose_secret()));
    }

    #[test]
    fn validation_table() {
        let attrs = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let long = "x".repeat(2049);
        // metadata.name, spec.username, spec.passwordSecretName, spec.attributes, problems
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<BTreeMap<String, String>>,
            usize,
        );
        let cases: Vec<Case> = vec![
            ("alice", None, None, None, 0),
            (
                "x",
                Some("alice@example.com"),
                Some("my/secret_1+=.@-"),
                attrs(&[("email", "a@example.com")]),
                0,
            ),
            ("x", Some("bob smith"), Some("s"), None, 1),
            ("x", Some(""), Some("s"), None, 1),
            // The default secret name cannot hold a username with a `#`.
            ("x", Some("bob#1"), None, None, 1),
            ("x", Some("bob#1"), Some("bob-1"), None, 0),
            ("alice", None, Some("bad secret"), None, 1),
            ("alice", None, None, attrs(&[("sub", "1")]), 1),
            ("alice", None, None, attrs(&[("bad name", "1")]), 1),
            ("alice", None, None, attrs(&[("email", long.as_str())]), 1),
        ];
        for (name, username, secret, attributes, count) in cases {
            let spec = UserSpec {
                user_pool_ref: "pool".into(),
                username: username.map(String::from),
                attributes,
                password_secret_name: secret.map(String::from),
            };
            let mut problems = Vec::new();
            User::validate(name, &spec, &mut problems);
            assert_eq!(
                problems.len(),
                count,
                "{name} {username:?} {secret:?}: {problems:?}"
            );
        }
    }

    #[test]
    fn manifest_spec_parses() {
        use crate::kinds::Registry;
        use crate::model::yaml::parse_documents;
        let registry = Registry::offline();
        let schema = registry.schema("User").expect("registered");
        let docs = parse_documents("userPoolRef: pool\nattributes:\n  email: a@example.com\n")
            .expect("yaml");
        let spec = schema.parse("alice", &docs[0]).0.expect("valid");
        assert_eq!(
            spec,
            json!({"userPoolRef": "pool", "attributes": {"email": "a@example.com"}})
        );
        assert_eq!(
            schema.references(&spec),
            vec![Reference::new("spec.userPoolRef", "UserPool", "pool")]
        );
        assert_eq!(schema.default_deletion_policy(), DeletionPolicy::Retain);
    }

    #[test]
    fn declared_outputs_are_the_outputs() {
        crate::kinds::assert_declared_outputs::<User>(&User::outputs(
            &desired(&[]),
            &observed("CONFIRMED", &[], secret(false, false)),
        ));
    }
}
