//! Secrets Manager calls shared by the kinds that keep secrets (Secret, User, Token):
//! "not found" is an answer here, not an error, and values never leave as plain strings.

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use secrecy::SecretString;

use super::{Ctx, OWNER_TAG};
use crate::error::{Result, aws_err, read_result, write_result};
use crate::list_cache::{self, SecretsByName};

/// What DescribeSecret says about secret `id` (a name or an ARN); `None` when there is
/// no such secret. Answered from the shared listing of the controller's secrets when it
/// holds the secret and nothing was written to it since the listing began; otherwise (a
/// secret not ours, created or changed since, or absent) by DescribeSecret, so absence is
/// never an old answer. Read fresh ([`crate::fresh`]), always by DescribeSecret: the
/// listing may lag behind a change of tags by minutes.
pub async fn describe(ctx: &Ctx, id: &str) -> Result<Option<DescribeSecretOutput>> {
    if crate::fresh::is_fresh() {
        return describe_direct(ctx, id).await;
    }
    let name = list_cache::secret_name(id);
    let lists = &ctx.aws.lists;
    let listed = lists
        .secrets
        .lookup(None, || list_owned(ctx), |m| listed(m, id).cloned())
        .await;
    match listed {
        Ok(listed) => match listed.value {
            Some(entry) if !lists.secrets_written.since(name, listed.listed_at) => Ok(Some(entry)),
            _ => describe_direct(ctx, id).await,
        },
        // A listing refused (a policy that allows DescribeSecret on the controller's
        // secrets but not ListSecrets) or failing: the secret is read on its own.
        Err(e) => {
            tracing::debug!(error = %e, "secrets are read one by one: ListSecrets failed");
            describe_direct(ctx, id).await
        }
    }
}

/// The listed secret `id` names: by name, or by its full ARN. A partial ARN (no suffix) is
/// not matched here, as its name cannot be told apart from a name that ends in a hyphen
/// and six characters: Secrets Manager resolves it (DescribeSecret).
fn listed<'a>(m: &'a SecretsByName, id: &str) -> Option<&'a DescribeSecretOutput> {
    m.get(list_cache::secret_name(id))
        .filter(|s| !id.starts_with("arn:") || s.arn() == Some(id))
}

/// Every secret carrying the owner tag (scheduled deletions included), as DescribeSecret
/// would describe each.
async fn list_owned(ctx: &Ctx) -> Result<SecretsByName> {
    let (key, value) = (OWNER_TAG.to_string(), ctx.owner.clone());
    let mut all = SecretsByName::new();
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .aws
            .secrets
            .list_secrets()
            .include_planned_deletion(true)
            .max_results(100)
            .filters(
                Filter::builder()
                    .key(FilterNameStringType::TagKey)
                    .values(key.clone())
                    .build(),
            )
            .filters(
                Filter::builder()
                    .key(FilterNameStringType::TagValue)
                    .values(value.clone())
                    .build(),
            )
            .set_next_token(token.take())
            .send()
            .await
            .map_err(aws_err("ListSecrets"))?;
        for e in page.secret_list() {
            let Some(name) = e.name() else { continue };
            let described = DescribeSecretOutput::builder()
                .set_arn(e.arn().map(String::from))
                .name(name)
                .set_description(e.description().map(String::from))
                .set_tags(e.tags.clone())
                .set_deleted_date(e.deleted_date)
                .set_last_changed_date(e.last_changed_date)
                .set_created_date(e.created_date)
                .set_version_ids_to_stages(e.secret_versions_to_stages.clone())
                .build();
            all.insert(name.to_string(), described);
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(all),
        }
    }
}

/// DescribeSecret; `None` when there is no such secret.
async fn describe_direct(ctx: &Ctx, id: &str) -> Result<Option<DescribeSecretOutput>> {
    let described = ctx.aws.secrets.describe_secret().secret_id(id).send().await;
    read_result(format!("DescribeSecret {id}"), described)
}

/// GetSecretValue: the current string value; `None` when the secret or its value does not
/// exist (AWS and moto answer ResourceNotFoundException for a secret with no value yet).
pub async fn value(ctx: &Ctx, id: &str) -> Result<Option<SecretString>> {
    let got = ctx
        .aws
        .secrets
        .get_secret_value()
        .secret_id(id)
        .send()
        .await;
    Ok(read_result(format!("GetSecretValue {id}"), got)?
        .and_then(|out| out.secret_string.map(SecretString::from)))
}

/// DeleteSecret without a recovery window; a secret already gone is fine.
pub async fn delete_now(ctx: &Ctx, id: &str) -> Result<()> {
    let deleted = ctx
        .aws
        .secrets
        .delete_secret()
        .secret_id(id)
        .force_delete_without_recovery(true)
        .send()
        .await;
    write_result(format!("DeleteSecret {id}"), deleted)?;
    Ok(())
}

/// The owner tags, as Secrets Manager takes them.
pub fn owner_tags(ctx: &Ctx) -> Vec<Tag> {
    ctx.owner_tags()
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tag a secret as ours (adoption).
pub async fn tag_owned(ctx: &Ctx, id: &str) -> Result<()> {
    ctx.aws
        .secrets
        .tag_resource()
        .secret_id(id)
        .set_tags(Some(owner_tags(ctx)))
        .send()
        .await
        .map_err(aws_err(format!("TagResource {id}")))?;
    Ok(())
}

/// What IAM must allow for secrets the controller keeps under these names (`*` may end
/// a name): listing them (the shared listing), and reading, writing, tagging, restoring
/// and deleting them.
pub fn grants(
    scope: &crate::model::permissions::Scope,
    names: &[String],
) -> Vec<crate::model::permissions::Grant> {
    use crate::model::permissions::Grant;
    vec![
        Grant::new(&["secretsmanager:ListSecrets"], vec!["*".into()]),
        Grant::new(
            &[
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:CreateSecret",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecret",
                "secretsmanager:TagResource",
                "secretsmanager:UntagResource",
                "secretsmanager:RestoreSecret",
                "secretsmanager:DeleteSecret",
            ],
            names.iter().map(|n| scope.secret_arn(n)).collect(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_secret_is_found_by_name_or_full_arn_only() {
        let arn =
            |name: &str| format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}");
        let secret = |name: &str, suffix: &str| {
            DescribeSecretOutput::builder()
                .name(name)
                .arn(arn(&format!("{name}{suffix}")))
                .build()
        };
        let m: SecretsByName = [secret("my", "-AbCdEf"), secret("my-secret", "-XyZ123")]
            .into_iter()
            .map(|s| (s.name().unwrap_or_default().to_string(), s))
            .collect();
        let cases = [
            ("my", Some("my")),
            ("my-secret", Some("my-secret")),
            (&*arn("my-AbCdEf"), Some("my")),
            (&*arn("my-secret-XyZ123"), Some("my-secret")),
            // A partial ARN of "my-secret" looks like "my" with a suffix: not "my".
            (&*arn("my-secret"), None),
            (&*arn("other-AbCdEf"), None),
            ("absent", None),
        ];
        for (id, want) in cases {
            assert_eq!(listed(&m, id).and_then(|s| s.name()), want, "{id}");
        }
    }
}
