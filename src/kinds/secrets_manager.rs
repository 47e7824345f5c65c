//! Secrets Manager calls shared by the kinds that keep secrets (Secret, User, Token):
//! "not found" is an answer here, not an error, and values never leave as plain strings.

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::types::Tag;
use secrecy::SecretString;

use super::Ctx;
use crate::error::{Result, aws_err, read_result, write_result};

/// DescribeSecret; `None` when there is no such secret.
pub async fn describe(ctx: &Ctx, id: &str) -> Result<Option<DescribeSecretOutput>> {
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
