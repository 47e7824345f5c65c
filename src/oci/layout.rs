//! Reading an OCI image layout (a directory, or a tar archive of one as `docker buildx
//! --output type=oci` writes) and picking the image for one platform out of its index.
//!
//! Small JSON documents (index, manifests, configs) are read whole, with a size limit;
//! layers are only ever opened as streams.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Reason, ReconcileError};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Limit for JSON documents read into memory.
const MAX_DOCUMENT: u64 = 4 * 1024 * 1024;
/// Nested indexes deeper than this are refused.
const MAX_DEPTH: usize = 4;

/// An OS/architecture pair, as in OCI platform objects and image configs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// linux/arm64: what AgentCore Runtime runs.
    pub fn linux_arm64() -> Self {
        Self {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: None,
        }
    }

    /// Whether an image for `self` runs where `want` is needed (arm64 means v8).
    pub fn satisfies(&self, want: &Platform) -> bool {
        let variant_ok = match (&want.variant, &self.variant) {
            (None, None) => true,
            (None, Some(v)) => want.architecture == "arm64" && v == "v8",
            (Some(w), v) => v.as_deref() == Some(w.as_str()),
        };
        self.os == want.os && self.architecture == want.architecture && variant_ok
    }

    fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: Option<String>,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    media_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

/// The image picked for a platform: its manifest exactly as stored, and what it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedImage {
    /// The manifest bytes, exactly as in the layout (what gets pushed).
    pub manifest: Vec<u8>,
    pub media_type: String,
    /// `sha256:<hex>` of the manifest bytes.
    pub digest: String,
    pub platform: Platform,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl SelectedImage {
    /// Config and layers, each digest once.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        let mut seen = std::collections::BTreeSet::new();
        std::iter::once(&self.config)
            .chain(&self.layers)
            .filter(|d| seen.insert(d.digest.as_str()))
            .collect()
    }
}

/// Where the layout's files live.
#[derive(Debug)]
enum Store {
    Dir(PathBuf),
    /// A tar archive: each regular file's (offset, size) by its normalised path.
    Tar {
        path: PathBuf,
        entries: HashMap<String, (u64, u64)>,
    },
}

/// An OCI image layout on disk.
#[derive(Debug)]
pub struct Layout {
    path: PathBuf,
    store: Store,
}

fn invalid(path: &Path, message: impl fmt::Display) -> ReconcileError {
    ReconcileError::terminal(
        Reason::InvalidImageLayout,
        format!("{}: {message}", path.display()),
    )
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> ReconcileError {
    ReconcileError::recoverable(
        Reason::ImageLayoutUnreadable,
        format!("{}: {what}: {e}", path.display()),
    )
}

/// `sha256:<64 lowercase hex>`, the only digest algorithm ECR takes.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn normalise(name: &str) -> String {
    let mut s = name;
    loop {
        if let Some(r) = s.strip_prefix("./") {
            s = r;
        } else if let Some(r) = s.strip_prefix('/') {
            s = r;
        } else {
            return s.to_string();
        }
    }
}

impl Layout {
    /// Open a layout directory or a tar archive of one (indexing the archive's entries).
    pub fn open(path: &Path) -> Result<Self, ReconcileError> {
        let meta = std::fs::metadata(path).map_err(|e| io_error(path, "cannot open", e))?;
        let store = if meta.is_dir() {
            Store::Dir(path.to_path_buf())
        } else {
            let file = File::open(path).map_err(|e| io_error(path, "cannot open", e))?;
            let mut archive = tar::Archive::new(file);
            let mut entries = HashMap::new();
            let iter = archive
                .entries_with_seek()
                .map_err(|e| invalid(path, format!("not a tar archive: {e}")))?;
            for entry in iter {
                let entry = entry.map_err(|e| invalid(path, format!("bad tar archive: {e}")))?;
                let kind = entry.header().entry_type();
                if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                    continue;
                }
                let name = normalise(&String::from_utf8_lossy(&entry.path_bytes()));
                entries.insert(name, (entry.raw_file_position(), entry.size()));
            }
            Store::Tar {
                path: path.to_path_buf(),
                entries,
            }
        };
        let layout = Self {
            path: path.to_path_buf(),
            store,
        };
        if !layout.exists("index.json") {
            return Err(invalid(
                path,
                "not an OCI image layout (no index.json); a builder must write one, e.g. \
                 docker buildx build --output type=oci,dest={out}",
            ));
        }
        Ok(layout)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn exists(&self, rel: &str) -> bool {
        match &self.store {
            Store::Dir(root) => root.join(rel).is_file(),
            Store::Tar { entries, .. } => entries.contains_key(rel),
        }
    }

    /// Open a file of the layout as a stream of exactly its bytes; with its size.
    fn open_file(&self, rel: &str) -> Result<(Box<dyn Read + Send>, u64), ReconcileError> {
        match &self.store {
            Store::Dir(root) => {
                let p = root.join(rel);
                let f = File::open(&p).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        invalid(&self.path, format!("{rel} is missing"))
                    } else {
                        io_error(&p, "cannot open", e)
                    }
                })?;
                let size = f
                    .metadata()
                    .map_err(|e| io_error(&p, "cannot stat", e))?
                    .len();
                Ok((Box::new(f.take(size)), size))
            }
            Store::Tar { path, entries } => {
                let &(offset, size) = entries
                    .get(rel)
                    .ok_or_else(|| invalid(path, format!("{rel} is missing")))?;
                let mut f = File::open(path).map_err(|e| io_error(path, "cannot open", e))?;
                f.seek(SeekFrom::Start(offset))
                    .map_err(|e| io_error(path, "cannot seek", e))?;
                Ok((Box::new(f.take(size)), size))
            }
        }
    }

    fn read_document(&self, rel: &str) -> Result<Vec<u8>, ReconcileError> {
        let (reader, size) = self.open_file(rel)?;
        if size > MAX_DOCUMENT {
            return Err(invalid(
                &self.path,
                format!("{rel} is {size} bytes; documents over {MAX_DOCUMENT} are refused"),
            ));
        }
        let mut out = Vec::with_capacity(size as usize);
        reader
            .take(MAX_DOCUMENT)
            .read_to_end(&mut out)
            .map_err(|e| io_error(&self.path, rel, e))?;
        Ok(out)
    }

    fn blob_path(&self, digest: &str) -> Result<String, ReconcileError> {
        if !is_sha256_digest(digest) {
            return Err(invalid(
                &self.path,
                format!("unsupported digest `{digest}` (ECR takes sha256)"),
            ));
        }
        Ok(format!("blobs/sha256/{}", &digest["sha256:".len()..]))
    }

    /// A small blob (manifest, index, config), checked against its descriptor.
    pub fn read_blob(&self, d: &Descriptor) -> Result<Vec<u8>, ReconcileError> {
        let bytes = self.read_document(&self.blob_path(&d.digest)?)?;
        if bytes.len() as u64 != d.size || sha256_digest(&bytes) != d.digest {
            return Err(invalid(
                &self.path,
                format!("blob {} does not match its descriptor", d.digest),
            ));
        }
        Ok(bytes)
    }

    /// A blob as a stream (layers are never read whole); with its size on disk.
    pub fn open_blob(&self, digest: &str) -> Result<(Box<dyn Read + Send>, u64), ReconcileError> {
        self.open_file(&self.blob_path(digest)?)
    }

    /// Pick the image for `want` from index.json, through nested indexes; attestation
    /// manifests (`unknown/unknown`) are skipped, and entries without a platform are
    /// judged by their image config.
    pub fn select(&self, want: &Platform) -> Result<SelectedImage, ReconcileError> {
        let index: Index = serde_json::from_slice(&self.read_document("index.json")?)
            .map_err(|e| invalid(&self.path, format!("index.json: {e}")))?;
        let mut seen = Vec::new();
        if let Some(image) = self.find(&index.manifests, want, 0, &mut seen)? {
            return Ok(image);
        }
        let mut names: Vec<String> = seen.iter().map(|p| p.to_string()).collect();
        names.sort();
        names.dedup();
        let has = if names.is_empty() {
            "no images at all".to_string()
        } else {
            format!("only {}", names.join(", "))
        };
        Err(ReconcileError::terminal(
            Reason::NoImageForPlatform,
            format!(
                "{}: no {want} image (AgentCore Runtime runs {want}); the layout has {has}. \
                 Build for {want}, e.g. docker buildx build --platform {want}",
                self.path.display()
            ),
        ))
    }

    fn find(
        &self,
        descriptors: &[Descriptor],
        want: &Platform,
        depth: usize,
        seen: &mut Vec<Platform>,
    ) -> Result<Option<SelectedImage>, ReconcileError> {
        if depth > MAX_DEPTH {
            return Err(invalid(
                &self.path,
                format!("indexes nested deeper than {MAX_DEPTH}"),
            ));
        }
        for d in descriptors {
            let attestation = d
                .annotations
                .get("vnd.docker.reference.type")
                .is_some_and(|t| t == "attestation-manifest");
            if attestation || d.platform.as_ref().is_some_and(Platform::is_unknown) {
                continue;
            }
            if let Some(p) = &d.platform
                && !p.satisfies(want)
            {
                // Not wanted; an index's own platform list is enough to say so.
                seen.push(p.clone());
                continue;
            }
            let bytes = self.read_blob(d)?;
            let doc: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| invalid(&self.path, format!("blob {}: {e}", d.digest)))?;
            let media_type = d
                .media_type
                .clone()
                .or_else(|| doc["mediaType"].as_str().map(String::from));
            let is_index = match media_type.as_deref() {
                Some(OCI_INDEX | DOCKER_LIST) => true,
                Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
                Some(_) => continue, // artifacts and other content: not an image
                None => doc.get("manifests").is_some(),
            };
            if is_index {
                let nested: Index = serde_json::from_value(doc)
                    .map_err(|e| invalid(&self.path, format!("index {}: {e}", d.digest)))?;
                if let Some(found) = self.find(&nested.manifests, want, depth + 1, seen)? {
                    return Ok(Some(found));
                }
                continue;
            }
            let manifest: Manifest = serde_json::from_value(doc)
                .map_err(|e| invalid(&self.path, format!("manifest {}: {e}", d.digest)))?;
            let platform = match &d.platform {
                Some(p) => p.clone(),
                None => {
                    let config: Config = serde_json::from_slice(&self.read_blob(&manifest.config)?)
                        .map_err(|e| invalid(&self.path, format!("image config: {e}")))?;
                    Platform {
                        architecture: config.architecture,
                        os: config.os,
                        variant: config.variant,
                    }
                }
            };
            if platform.is_unknown() || !platform.satisfies(want) {
                if !platform.is_unknown() {
                    seen.push(platform);
                }
                continue;
            }
            let media_type = media_type
                .or(manifest.media_type)
                .unwrap_or_else(|| OCI_MANIFEST.to_string());
            return Ok(Some(SelectedImage {
                digest: sha256_digest(&bytes),
                manifest: bytes,
                media_type,
                platform,
                config: manifest.config,
                layers: manifest.layers,
            }));
        }
        Ok(None)
    }
}

#[cfg(test)]
pub mod testing {
    //! Writing small layouts in tests.
    use super::*;
    use serde_json::{Value, json};

    /// A layout being written: blobs go in as they are added.
    pub struct Writer {
        pub root: PathBuf,
    }

    impl Writer {
        pub fn new(root: &Path) -> Self {
            std::fs::create_dir_all(root.join("blobs/sha256")).expect("mkdir");
            std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
                .expect("oci-layout");
            Self {
                root: root.to_path_buf(),
            }
        }

        pub fn blob(&self, bytes: &[u8]) -> (String, u64) {
            let digest = sha256_digest(bytes);
            std::fs::write(
                self.root
                    .join("blobs/sha256")
                    .join(&digest["sha256:".len()..]),
                bytes,
            )
            .expect("blob");
            (digest, bytes.len() as u64)
        }

        pub fn descriptor(&self, media_type: &str, doc: &Value) -> Value {
            let (digest, size) = self.blob(doc.to_string().as_bytes());
            json!({"mediaType": media_type, "digest": digest, "size": size})
        }

        /// A single-layer image manifest for `arch`; returns its descriptor (no platform).
        pub fn image(&self, arch: &str, layer: &[u8]) -> Value {
            let (ldigest, lsize) = self.blob(layer);
            let config = json!({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [ldigest]}});
            let cdesc = self.descriptor("application/vnd.oci.image.config.v1+json", &config);
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": cdesc,
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ldigest, "size": lsize}],
            });
            self.descriptor(OCI_MANIFEST, &manifest)
        }

        pub fn index(&self, manifests: Vec<Value>) {
            let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
            std::fs::write(self.root.join("index.json"), index.to_string()).expect("index");
        }
    }

    pub fn with_platform(mut d: Value, os: &str, arch: &str) -> Value {
        d["platform"] = json!({"os": os, "architecture": arch});
        d
    }

    /// The layout directory `root` as a tar archive at `out`.
    pub fn archive(root: &Path, out: &Path) {
        let f = File::create(out).expect("tar file");
        let mut b = tar::Builder::new(f);
        b.append_dir_all(".", root).expect("append");
        b.finish().expect("finish");
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::json;

    type Build = fn(&Writer);

    #[test]
    fn platform_selection_table() {
        let cases: Vec<(&str, Build, Result<&str, &str>)> = vec![
            (
                "single manifest without platform: read from the config",
                |w| {
                    let m = w.image("arm64", b"arm layer");
                    w.index(vec![m]);
                },
                Ok("arm layer"),
            ),
            (
                "index with amd64, arm64 and an attestation",
                |w| {
                    let amd = with_platform(w.image("amd64", b"amd layer"), "linux", "amd64");
                    let arm = with_platform(w.image("arm64", b"arm layer"), "linux", "arm64");
                    let mut att = with_platform(w.image("unknown", b"att"), "unknown", "unknown");
                    att["annotations"] =
                        json!({"vnd.docker.reference.type": "attestation-manifest"});
                    let nested = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd, att, arm]});
                    let d = w.descriptor(OCI_INDEX, &nested);
                    w.index(vec![d]);
                },
                Ok("arm layer"),
            ),
            (
                "nested index two levels down, arm64/v8",
                |w| {
                    let mut arm = with_platform(w.image("arm64", b"deep arm"), "linux", "arm64");
                    arm["platform"]["variant"] = json!("v8");
                    let inner = json!({"schemaVersion": 2, "manifests": [arm]});
                    let inner_d = w.descriptor(OCI_INDEX, &inner);
                    let outer = json!({"schemaVersion": 2, "manifests": [inner_d]});
                    let outer_d = w.descriptor(OCI_INDEX, &outer);
                    w.index(vec![outer_d]);
                },
                Ok("deep arm"),
            ),
            (
                "arm/v7 is not arm64",
                |w| {
                    let mut arm = with_platform(w.image("arm", b"v7"), "linux", "arm");
                    arm["platform"]["variant"] = json!("v7");
                    w.index(vec![arm]);
                },
                Err("only linux/arm/v7"),
            ),
            (
                "amd64 only",
                |w| {
                    let amd = w.image("amd64", b"amd layer");
                    let att = with_platform(w.image("x", b"att"), "unknown", "unknown");
                    w.index(vec![amd, att]);
                },
                Err(
                    "no linux/arm64 image (AgentCore Runtime runs linux/arm64); the layout has only linux/amd64",
                ),
            ),
            (
                "empty index",
                |w| w.index(vec![]),
                Err("the layout has no images at all"),
            ),
        ];
        for (what, build, want) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let w = Writer::new(dir.path());
            build(&w);
            let tarball = dir.path().with_extension("tar");
            archive(dir.path(), &tarball);
            for path in [dir.path().to_path_buf(), tarball.clone()] {
                let got = Layout::open(&path).and_then(|l| {
                    let img = l.select(&Platform::linux_arm64())?;
                    let (mut r, _) = l.open_blob(&img.layers[0].digest)?;
                    let mut s = String::new();
                    r.read_to_string(&mut s).expect("layer text");
                    assert_eq!(img.digest, sha256_digest(&img.manifest), "{what}");
                    assert_eq!(img.blobs().len(), 2, "{what}");
                    assert!(img.platform.satisfies(&Platform::linux_arm64()));
                    Ok(s)
                });
                match (&got, want) {
                    (Ok(layer), Ok(w)) => assert_eq!(layer, w, "{what} ({})", path.display()),
                    (Err(e), Err(w)) => {
                        assert!(e.message.contains(w), "{what}: {}", e.message);
                        assert!(e.is_terminal(), "{what}");
                    }
                    _ => panic!("{what} ({}): got {got:?}, want {want:?}", path.display()),
                }
            }
            let _ = std::fs::remove_file(tarball);
        }
    }

    #[test]
    fn broken_layouts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Layout::open(dir.path()).expect_err("no index.json");
        assert!(err.message.contains("no index.json"), "{}", err.message);
        let err = Layout::open(&dir.path().join("nope")).expect_err("missing");
        assert_eq!(err.reason, Reason::ImageLayoutUnreadable);
        // A blob that does not match its digest is refused.
        let w = Writer::new(dir.path());
        let m = w.image("arm64", b"layer");
        let digest = m["digest"].as_str().expect("digest").to_string();
        std::fs::write(
            dir.path().join("blobs/sha256").join(&digest[7..]),
            b"{\"tampered\":true}",
        )
        .expect("overwrite");
        w.index(vec![m]);
        let err = Layout::open(dir.path())
            .and_then(|l| l.select(&Platform::linux_arm64()))
            .expect_err("tampered");
        assert!(err.message.contains("does not match"), "{}", err.message);
        assert!(is_sha256_digest(&sha256_digest(b"x")));
        assert!(!is_sha256_digest("sha512:abc"));
        assert!(!is_sha256_digest(&format!("sha256:{}", "A".repeat(64))));
    }
}
