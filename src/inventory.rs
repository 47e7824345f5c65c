//! The inventory in SSM Parameter Store: one SecureString parameter per managed object
//! under `/agentcore-controller/{instance}/inventory/{Kind}/{name}`, holding the entry as
//! JSON (encrypted: a spec may carry literal values such as environment variables).
//! Written only when an entry changes, so a converged fleet costs no writes.

use async_trait::async_trait;
use aws_sdk_ssm::types::{ParameterTier, ParameterType, Tag};

use crate::aws::Aws;
use crate::engine::inventory::{Inventory, InventoryEntry};
use crate::error::{Reason, ReconcileError, Result, aws_err};
use crate::kinds::{OWNER_TAG, ObjectKey};

pub struct SsmInventory {
    aws: Aws,
    instance: String,
    /// Entries known to exist (listed or written): overwritten without re-tagging.
    known: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl SsmInventory {
    pub fn new(aws: Aws, instance: impl Into<String>) -> Self {
        Self {
            aws,
            instance: instance.into(),
            known: Default::default(),
        }
    }

    fn remember(&self, name: &str) {
        if let Ok(mut k) = self.known.lock() {
            k.insert(name.to_string());
        }
    }

    pub fn prefix(&self) -> String {
        format!("/agentcore-controller/{}/inventory/", self.instance)
    }

    fn name(&self, key: &ObjectKey) -> String {
        format!("{}{}/{}", self.prefix(), key.kind, key.name)
    }
}

#[async_trait]
impl Inventory for SsmInventory {
    async fn list(&self) -> Result<Vec<InventoryEntry>> {
        // What is known to exist is what this listing finds: an entry deleted behind the
        // controller's back is created again with its tag, not overwritten untagged.
        let mut found = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .aws
                .ssm
                .get_parameters_by_path()
                .path(self.prefix())
                .recursive(true)
                .with_decryption(true)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(aws_err("GetParametersByPath inventory"))?;
            for p in page.parameters() {
                let Some(value) = p.value() else { continue };
                match serde_json::from_str::<InventoryEntry>(value) {
                    Ok(entry) => {
                        found.insert(p.name().unwrap_or_default().to_string());
                        out.push(entry)
                    }
                    Err(e) => tracing::warn!(
                        parameter = p.name().unwrap_or_default(),
                        error = %e,
                        "ignoring an unreadable inventory entry"
                    ),
                }
            }
            next = page.next_token().map(String::from);
            if next.is_none() {
                if let Ok(mut known) = self.known.lock() {
                    *known = found;
                }
                return Ok(out);
            }
        }
    }

    async fn put(&self, entry: &InventoryEntry) -> Result<()> {
        let value = serde_json::to_string(entry)
            .map_err(|e| ReconcileError::terminal(Reason::Inventory, e.to_string()))?;
        let name = self.name(&entry.key);
        let tier = if value.len() > 4096 {
            ParameterTier::Advanced
        } else {
            ParameterTier::Standard
        };
        let tag = Tag::builder()
            .key(OWNER_TAG)
            .value(&self.instance)
            .build()
            .map_err(|e| ReconcileError::terminal(Reason::InvalidTag, e.to_string()))?;
        let put = || {
            self.aws
                .ssm
                .put_parameter()
                .name(&name)
                .value(&value)
                .r#type(ParameterType::SecureString)
                .tier(tier.clone())
        };
        // One write per change: create with the tag, or overwrite what exists (SSM takes
        // no tags together with Overwrite).
        let exists = self
            .known
            .lock()
            .map(|k| k.contains(&name))
            .unwrap_or(false);
        if !exists {
            match put().overwrite(false).tags(tag.clone()).send().await {
                Ok(_) => {
                    self.remember(&name);
                    return Ok(());
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_parameter_already_exists()) => {}
                Err(e) => return Err(aws_err(format!("PutParameter {name}"))(e)),
            }
        }
        put()
            .overwrite(true)
            .send()
            .await
            .map_err(aws_err(format!("PutParameter {name}")))?;
        if !exists {
            self.aws
                .ssm
                .add_tags_to_resource()
                .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
                .resource_id(&name)
                .tags(tag)
                .send()
                .await
                .map_err(aws_err(format!("AddTagsToResource {name}")))?;
            self.remember(&name);
        }
        Ok(())
    }

    async fn remove(&self, key: &ObjectKey) -> Result<()> {
        let name = self.name(key);
        if let Ok(mut k) = self.known.lock() {
            k.remove(&name);
        }
        match self.aws.ssm.delete_parameter().name(&name).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_parameter_not_found()) =>
            {
                Ok(())
            }
            Err(e) => Err(aws_err(format!("DeleteParameter {name}"))(e)),
        }
    }
}
