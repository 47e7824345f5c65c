//! The inventory: what this controller instance manages, kept outside the process (the
//! AWS implementation lives in SSM Parameter Store) so that pruning is correct across
//! restarts and machines. An entry is written before an object is first created, so a
//! crash between the two never orphans a resource.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::kinds::{DeletionPolicy, ObjectKey, ObjectMeta, Outputs};

/// What the controller remembers of one managed object: enough to delete it after its
/// manifest is gone (spec, policy, and the outputs its own teardown resolves from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryEntry {
    pub key: ObjectKey,
    pub meta: ObjectMeta,
    pub spec: serde_json::Value,
    pub deletion_policy: DeletionPolicy,
    pub hash: String,
    /// Outputs of the object's dependencies when it was last reconciled, by `Kind/name`.
    #[serde(default)]
    pub dep_outputs: BTreeMap<String, Outputs>,
}

#[async_trait]
pub trait Inventory: Send + Sync {
    async fn list(&self) -> Result<Vec<InventoryEntry>>;
    async fn put(&self, entry: &InventoryEntry) -> Result<()>;
    async fn remove(&self, key: &ObjectKey) -> Result<()>;
}

/// An inventory in memory (one-shot commands and tests).
#[derive(Debug, Default)]
pub struct MemoryInventory {
    entries: Mutex<BTreeMap<ObjectKey, InventoryEntry>>,
}

#[async_trait]
impl Inventory for MemoryInventory {
    async fn list(&self) -> Result<Vec<InventoryEntry>> {
        Ok(self
            .entries
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn put(&self, entry: &InventoryEntry) -> Result<()> {
        if let Ok(mut m) = self.entries.lock() {
            m.insert(entry.key.clone(), entry.clone());
        }
        Ok(())
    }

    async fn remove(&self, key: &ObjectKey) -> Result<()> {
        if let Ok(mut m) = self.entries.lock() {
            m.remove(key);
        }
        Ok(())
    }
}
