//! The lease in DynamoDB: one item per lease name, in a table whose partition key is
//! `lease` (string), written with conditional puts (the DynamoDB lock client's pattern).
//! The table is created when missing, with on-demand billing.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tracing::info;

use super::{LeaseRecord, LeaseStore, Swap};
use crate::error::{Reason, ReconcileError, Result};

/// The partition key of the lease table.
pub const KEY: &str = "lease";

pub struct DynamoDbLeases {
    client: Client,
    table: String,
    name: String,
}

impl DynamoDbLeases {
    pub fn new(client: Client, table: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            name: name.into(),
        }
    }

    /// Create the table unless it exists, and wait until it is ACTIVE.
    pub async fn ensure_table(&self) -> Result<()> {
        let status = match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(out) => out.table().and_then(|t| t.table_status().cloned()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                info!(table = %self.table, "creating the leader lease table (on-demand billing)");
                let created = self
                    .client
                    .create_table()
                    .table_name(&self.table)
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name(KEY)
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .map_err(build_error)?,
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name(KEY)
                            .key_type(KeyType::Hash)
                            .build()
                            .map_err(build_error)?,
                    )
                    .billing_mode(BillingMode::PayPerRequest)
                    .send()
                    .await;
                match created {
                    Ok(out) => out
                        .table_description()
                        .and_then(|t| t.table_status().cloned()),
                    // Another replica created it first.
                    Err(e) if e.code() == Some("ResourceInUseException") => None,
                    Err(e) => return Err(ReconcileError::from_sdk("CreateTable", e)),
                }
            }
            Err(e) => return Err(ReconcileError::from_sdk("DescribeTable", e)),
        };
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        for _ in 0..120 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| ReconcileError::from_sdk("DescribeTable", e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
        }
        Err(ReconcileError::recoverable(
            Reason::Unreachable,
            format!(
                "the lease table {} did not become ACTIVE within a minute",
                self.table
            ),
        ))
    }

    fn item(&self, r: &LeaseRecord) -> HashMap<String, AttributeValue> {
        let n = |v: u64| AttributeValue::N(v.to_string());
        HashMap::from([
            (KEY.to_string(), AttributeValue::S(self.name.clone())),
            ("holder".into(), AttributeValue::S(r.holder.clone())),
            ("version".into(), AttributeValue::S(r.version.clone())),
            ("duration_ms".into(), n(r.duration.as_millis() as u64)),
            ("renewed_at_ms".into(), n(unix_ms(r.renewed_at))),
            ("acquired_at_ms".into(), n(unix_ms(r.acquired_at))),
            ("transitions".into(), n(r.transitions)),
        ])
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> ReconcileError {
    ReconcileError::terminal(Reason::InvalidRequest, e.to_string())
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The record an item holds, or why it is not one.
fn record_of(item: &HashMap<String, AttributeValue>) -> std::result::Result<LeaseRecord, String> {
    let s = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(format!("attribute {k} is missing or not a string")),
    };
    let n = |k: &str| match item.get(k) {
        Some(AttributeValue::N(v)) => v
            .parse::<u64>()
            .map_err(|_| format!("attribute {k} is not a whole number")),
        _ => Err(format!("attribute {k} is missing or not a number")),
    };
    Ok(LeaseRecord {
        holder: s("holder")?,
        version: s("version")?,
        duration: Duration::from_millis(n("duration_ms")?),
        renewed_at: UNIX_EPOCH + Duration::from_millis(n("renewed_at_ms")?),
        acquired_at: UNIX_EPOCH + Duration::from_millis(n("acquired_at_ms")?),
        transitions: n("transitions")?,
    })
}

#[async_trait::async_trait]
impl LeaseStore for DynamoDbLeases {
    async fn read(&self) -> Result<Option<LeaseRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(self.name.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ReconcileError::from_sdk("GetItem", e))?;
        match out.item() {
            None => Ok(None),
            Some(item) => record_of(item).map(Some).map_err(|why| {
                ReconcileError::recoverable(
                    Reason::BadResponse,
                    format!(
                        "the lease {} in table {} is not one this controller wrote: {why}",
                        self.name, self.table
                    ),
                )
            }),
        }
    }

    async fn swap(&self, expected: Option<&str>, next: &LeaseRecord) -> Result<Swap> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(next)));
        let put = match expected {
            None => put
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", KEY),
            Some(version) => put
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", AttributeValue::S(version.to_string())),
        };
        match put.send().await {
            Ok(_) => Ok(Swap::Done),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(Swap::Conflict),
            Err(e) => Err(ReconcileError::from_sdk("PutItem", e)),
        }
    }

    fn describe(&self) -> String {
        format!("dynamodb:{}/{}", self.table, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_reads_back_as_the_record_it_was_written_from() {
        let store = DynamoDbLeases::new(
            Client::from_conf(
                aws_sdk_dynamodb::Config::builder()
                    .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                    .build(),
            ),
            "t",
            "n",
        );
        let r = LeaseRecord {
            holder: "a".into(),
            version: "v1".into(),
            duration: Duration::from_millis(15_000),
            renewed_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            acquired_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_000),
            transitions: 3,
        };
        let item = store.item(&r);
        assert_eq!(record_of(&item), Ok(r));
        for broken in ["holder", "duration_ms"] {
            let mut item = item.clone();
            item.insert(broken.into(), AttributeValue::Bool(true));
            assert!(record_of(&item).is_err(), "{broken}");
        }
    }
}
