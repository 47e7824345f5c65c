//! The inventory: what this controller instance manages, kept outside the process (the
//! AWS implementation lives in SSM Parameter Store) so that pruning is correct across
//! restarts and machines. An entry is written before an object is first created, so a
//! crash between the two never orphans a resource.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::kinds::{DeletionPolicy, ObjectKey, ObjectMeta, Outputs};

/// What the controller remembers of one managed object: enough to delete it after its
/// manifest is gone (spec, policy, and the outputs its own teardown resolves from).
/// Stored with the manifest's directory (which `ObjectMeta` never serialises), so that
/// relative paths in a pruned object's spec still resolve and a re-read entry compares
/// equal to the one written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "StoredEntry")]
pub struct InventoryEntry {
    pub key: ObjectKey,
    pub meta: ObjectMeta,
    pub spec: serde_json::Value,
    pub deletion_policy: DeletionPolicy,
    pub hash: String,
    /// Outputs of the object's dependencies when it was last reconciled, by `Kind/name`.
    pub dep_outputs: BTreeMap<String, Outputs>,
}

/// The stored form of an [`InventoryEntry`], as read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredEntry {
    key: ObjectKey,
    meta: ObjectMeta,
    spec: serde_json::Value,
    deletion_policy: DeletionPolicy,
    hash: String,
    #[serde(default)]
    dep_outputs: BTreeMap<String, Outputs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_dir: Option<PathBuf>,
}

impl From<StoredEntry> for InventoryEntry {
    fn from(s: StoredEntry) -> Self {
        let mut meta = s.meta;
        meta.base_dir = s.base_dir;
        Self {
            key: s.key,
            meta,
            spec: s.spec,
            deletion_policy: s.deletion_policy,
            hash: s.hash,
            dep_outputs: s.dep_outputs,
        }
    }
}

/// The stored form of an [`InventoryEntry`], as written (the fields of [`StoredEntry`], in
/// its order, borrowed).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredRef<'a> {
    key: &'a ObjectKey,
    meta: &'a ObjectMeta,
    spec: &'a serde_json::Value,
    deletion_policy: DeletionPolicy,
    hash: &'a str,
    dep_outputs: &'a BTreeMap<String, Outputs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_dir: Option<&'a PathBuf>,
}

impl Serialize for InventoryEntry {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        StoredRef {
            key: &self.key,
            meta: &self.meta,
            spec: &self.spec,
            deletion_policy: self.deletion_policy,
            hash: &self.hash,
            dep_outputs: &self.dep_outputs,
            base_dir: self.meta.base_dir.as_ref(),
        }
        .serialize(serializer)
    }
}

/// A fingerprint of an entry's stored form (SHA-256): what the controller keeps of each
/// entry it wrote, to tell whether the inventory still holds it, rather than a second copy
/// of every spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryDigest([u8; 32]);

impl InventoryEntry {
    pub fn digest(&self) -> EntryDigest {
        // Serialising cannot fail: every map in an entry has string keys.
        EntryDigest(Sha256::digest(serde_json::to_vec(self).unwrap_or_default()).into())
    }
}

#[async_trait]
pub trait Inventory: Send + Sync {
    async fn list(&self) -> Result<Vec<InventoryEntry>>;
    async fn put(&self, entry: &InventoryEntry) -> Result<()>;
    async fn remove(&self, key: &ObjectKey) -> Result<()>;
}

/// An inventory that lives as long as the process: for a one-shot `apply`, which prunes
/// nothing, and for tests.
#[derive(Debug, Default)]
pub struct MemoryInventory {
    entries: std::sync::Mutex<BTreeMap<ObjectKey, InventoryEntry>>,
    puts: std::sync::atomic::AtomicUsize,
}

impl MemoryInventory {
    /// An inventory that already holds `entries` (what an earlier run recorded).
    pub fn holding(entries: impl IntoIterator<Item = InventoryEntry>) -> Self {
        Self {
            entries: std::sync::Mutex::new(
                entries.into_iter().map(|e| (e.key.clone(), e)).collect(),
            ),
            puts: Default::default(),
        }
    }

    /// How many entries were written so far.
    pub fn puts(&self) -> usize {
        self.puts.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn locked(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<ObjectKey, InventoryEntry>>> {
        self.entries.lock().map_err(|_| {
            crate::error::ReconcileError::recoverable(
                crate::reason::Reason::Inventory,
                "inventory lock poisoned",
            )
        })
    }
}

#[async_trait]
impl Inventory for MemoryInventory {
    async fn list(&self) -> Result<Vec<InventoryEntry>> {
        Ok(self.locked()?.values().cloned().collect())
    }

    async fn put(&self, entry: &InventoryEntry) -> Result<()> {
        self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.locked()?.insert(entry.key.clone(), entry.clone());
        Ok(())
    }

    async fn remove(&self, key: &ObjectKey) -> Result<()> {
        self.locked()?.remove(key);
        Ok(())
    }
}

/// The keys of the `recorded` entries (by the digest of what was written) that `listed`
/// (the inventory as read back) does not hold as they were written. Pure.
pub fn unrecorded<'a>(
    listed: &[InventoryEntry],
    recorded: impl Iterator<Item = (&'a ObjectKey, EntryDigest)>,
) -> Vec<ObjectKey> {
    let listed: BTreeMap<&ObjectKey, &InventoryEntry> =
        listed.iter().map(|e| (&e.key, e)).collect();
    recorded
        .filter(|(key, digest)| listed.get(key).map(|e| e.digest()) != Some(*digest))
        .map(|(key, _)| key.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, hash: &str) -> InventoryEntry {
        InventoryEntry {
            key: ObjectKey::new("Role", name),
            meta: ObjectMeta {
                name: name.into(),
                ..Default::default()
            },
            spec: serde_json::json!({}),
            deletion_policy: DeletionPolicy::Delete,
            hash: hash.into(),
            dep_outputs: BTreeMap::new(),
        }
    }

    #[test]
    fn entries_missing_or_changed_in_the_inventory_are_unrecorded() {
        let (a, b, c) = (entry("a", "1"), entry("b", "1"), entry("c", "1"));
        let cases: [(Vec<InventoryEntry>, Vec<&str>); 4] = [
            (vec![a.clone(), b.clone(), c.clone()], vec![]),
            (vec![a.clone(), c.clone()], vec!["b"]),
            (vec![a.clone(), entry("b", "2"), c.clone()], vec!["b"]),
            (vec![], vec!["a", "b", "c"]),
        ];
        for (listed, want) in cases {
            let recorded = [&a, &b, &c].map(|e| (&e.key, e.digest()));
            let got = unrecorded(&listed, recorded.into_iter());
            let got: Vec<&str> = got.iter().map(|k| &*k.name).collect();
            assert_eq!(got, want, "{listed:?}");
        }
    }

    #[test]
    fn the_manifest_directory_survives_a_round_trip() {
        let entry = InventoryEntry {
            key: ObjectKey::new("Image", "img"),
            meta: ObjectMeta {
                name: "img".into(),
                base_dir: Some(PathBuf::from("/srv/manifests")),
                ..Default::default()
            },
            spec: serde_json::json!({"repositoryRef": "r"}),
            deletion_policy: DeletionPolicy::Retain,
            hash: "h".into(),
            dep_outputs: BTreeMap::new(),
        };
        let text = serde_json::to_string(&entry).expect("serialises");
        assert!(text.contains("\"baseDir\":\"/srv/manifests\""), "{text}");
        let back: InventoryEntry = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, entry);
        // Entries written before the field existed still read.
        let old = text.replace(",\"baseDir\":\"/srv/manifests\"", "");
        let back: InventoryEntry = serde_json::from_str(&old).expect("parses");
        assert_eq!(back.meta.base_dir, None);
    }
}
