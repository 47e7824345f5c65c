//! Object identity and metadata: what a manifest object is called, how it is annotated,
//! what it refers to and what it exposes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The API group and version of every manifest document.
pub const API_VERSION: &str = "agentcore.dev/v1alpha1";
/// Tag put on everything the controller creates; its value is the controller instance.
pub const OWNER_TAG: &str = "agentcore.dev/managed-by";
/// Annotation that lets the controller take over a same-named resource it did not create.
pub const ANNOTATION_ADOPT: &str = "agentcore.dev/adopt";
/// Annotation that sets the deletion policy (`Delete` or `Retain`).
pub const ANNOTATION_DELETION_POLICY: &str = "agentcore.dev/deletion-policy";
/// Annotation that suspends an object: observe and report drift, write nothing.
pub const ANNOTATION_SUSPEND: &str = "agentcore.dev/suspend";
/// Annotation that overrides the resync period of one object (e.g. `30s`, `10m`).
pub const ANNOTATION_RESYNC: &str = "agentcore.dev/resync-period";
/// The prefix of every annotation (and tag) the controller reads or writes.
pub const ANNOTATION_PREFIX: &str = "agentcore.dev/";
/// Every annotation under our prefix that the controller understands.
pub const KNOWN_ANNOTATIONS: [&str; 4] = [
    ANNOTATION_ADOPT,
    ANNOTATION_DELETION_POLICY,
    ANNOTATION_SUSPEND,
    ANNOTATION_RESYNC,
];

/// Named values a resource exposes once it exists (IDs, ARNs, URLs, digests). Never secrets.
pub type Outputs = BTreeMap<String, String>;

/// Identity of a manifest object. Cheap to clone (the strings are shared): every index of
/// the controller (the graph, the queues, the maps by object) holds keys, a thousand stacks
/// are nine thousand of them, and a clone must not allocate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    pub kind: Arc<str>,
    pub name: Arc<str>,
}

impl ObjectKey {
    pub fn new(kind: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Self {
        Self {
            kind: kind.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// What happens to the AWS resource when its object is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeletionPolicy {
    Delete,
    Retain,
}

/// The metadata a kind may look at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The directory of the manifest file that defines the object, set by the loader
    /// (never written in a manifest). Relative paths in a spec resolve against it.
    #[serde(skip)]
    pub base_dir: Option<std::path::PathBuf>,
}

impl ObjectMeta {
    pub fn adopt(&self) -> bool {
        self.annotations
            .get(ANNOTATION_ADOPT)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// `path` as written in a spec, resolved against the manifest's directory.
    pub fn resolve_path(&self, path: &str) -> std::path::PathBuf {
        match &self.base_dir {
            Some(base) => base.join(path),
            None => std::path::PathBuf::from(path),
        }
    }
}

/// A reference from one object's spec to another object, by kind and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Field path inside the document, e.g. `spec.userPoolRef`.
    pub path: String,
    pub target: ObjectKey,
    /// The output of the target this value is taken from, when it is one.
    pub output: Option<String>,
}

impl Reference {
    pub fn new(path: impl Into<String>, kind: &str, name: &str) -> Self {
        Self {
            path: path.into(),
            target: ObjectKey::new(kind, name),
            output: None,
        }
    }
}

/// A reference written as `Kind/name` in a manifest (used by value sources).
pub fn parse_kind_name(text: &str) -> Option<ObjectKey> {
    let (kind, name) = text.split_once('/')?;
    (!kind.is_empty() && !name.is_empty()).then(|| ObjectKey::new(kind, name))
}
