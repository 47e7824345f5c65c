//! Reading manifest files into validated objects. Validation is offline and complete:
//! every problem of every file is collected, each with file, line and field path.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::de::{FieldProblem, from_node};
use crate::model::object::{
    ANNOTATION_ADOPT, ANNOTATION_DELETION_POLICY, ANNOTATION_PREFIX, ANNOTATION_RESYNC,
    ANNOTATION_SUSPEND, API_VERSION, DeletionPolicy, KNOWN_ANNOTATIONS, ObjectKey, ObjectMeta,
};
use crate::model::schema::{Schemas, Writes};
use crate::model::yaml::{Node, Value, parse_documents};

/// Where an object or a problem comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Source {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A problem found while loading or validating manifests.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    pub source: Source,
    /// `Kind/name` when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Field path inside the document, e.g. `spec.authorizer.jwt.allowedClients`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.source)?;
        if let Some(o) = &self.object {
            write!(f, "{o}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// One manifest object, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Object {
    pub key: ObjectKey,
    pub meta: ObjectMeta,
    /// The spec as normalised JSON (defaults filled in by the kind's schema).
    pub spec: serde_json::Value,
    pub deletion_policy: DeletionPolicy,
    pub source: Source,
    /// SHA-256 of the normalised metadata and spec: changes iff the object's content does.
    pub hash: String,
}

/// The result of loading: the objects that are valid, and every problem found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Shared with the [`Loader`] that keeps them for the next load, and with whoever
    /// takes them in: at a thousand stacks a copy of each would be tens of megabytes.
    pub objects: Vec<Arc<Object>>,
    pub problems: Vec<Problem>,
    /// Every file read, with the keys of the objects it defines (valid or not).
    pub files: BTreeMap<PathBuf, Vec<ObjectKey>>,
    /// The source revision the files were read at (`main@sha1:…`), when they come from
    /// a git source.
    pub revision: Option<Arc<str>>,
}

/// Manifest files larger than this are refused unread: a manifest is a few kilobytes, and
/// the parser's time and memory grow with the input.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// The manifest files under `paths`: files as given, directories recursively
/// (`.yaml`/`.yml`; hidden files and folders skipped), in a stable order, and a problem for
/// each directory that could not be listed (it may hold manifests; the rest go on).
pub fn manifest_files(paths: &[PathBuf]) -> std::io::Result<(Vec<PathBuf>, Vec<Problem>)> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out, &mut problems);
        } else if p.symlink_metadata().is_ok() {
            // A file, or a link that does not lead to a directory: reading it tells which.
            out.push(p.clone());
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: no such file or directory", p.display()),
            ));
        }
    }
    out.sort();
    out.dedup();
    Ok((out, problems))
}

/// Symbolic links are not followed into directories (no loops); a linked file is read.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(unreadable(dir, format!("cannot list this directory: {e}")));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                problems.push(unreadable(dir, format!("cannot list this directory: {e}")));
                continue;
            }
        };
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out, problems),
            Ok(_) if is_manifest_name(&path) => out.push(path),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => problems.push(unreadable(&path, format!("cannot read: {e}"))),
        }
    }
}

fn is_manifest_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// A file or directory that could not be read, as a problem of that path: the daemon keeps
/// the objects it defined at their last good spec.
fn unreadable(path: &Path, message: String) -> Problem {
    Problem {
        source: Source {
            file: path.to_path_buf(),
            line: 1,
        },
        object: None,
        path: String::new(),
        message,
    }
}

/// The text of one manifest file; `Ok(None)` when it vanished since it was listed.
fn read_manifest(file: &Path) -> Result<Option<String>, Problem> {
    use std::io::Read;
    let gone = |e: &std::io::Error| {
        e.kind() == std::io::ErrorKind::NotFound && file.symlink_metadata().is_err()
    };
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(unreadable(file, format!("cannot read: {e}"))),
    };
    if !meta.is_file() {
        // A FIFO or device would block or never end.
        return Err(unreadable(file, "not a regular file".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(file, meta.len()));
    }
    let mut bytes = Vec::new();
    let read =
        std::fs::File::open(file).and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes));
    match read {
        Ok(_) => {}
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(unreadable(file, format!("cannot read: {e}"))),
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(file, bytes.len() as u64));
    }
    text_of(file, bytes).map(Some)
}

fn too_large(file: &Path, len: u64) -> Problem {
    unreadable(
        file,
        format!(
            "{len} bytes or more: manifest files are limited to {} MiB",
            MAX_FILE_BYTES >> 20
        ),
    )
}

/// `bytes` as UTF-8 text, or a problem naming the line, column and byte offset of the
/// first byte that is not.
fn text_of(file: &Path, bytes: Vec<u8>) -> Result<String, Problem> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let offset = e.utf8_error().valid_up_to();
        let before = &bytes[..offset];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        let mut problem = unreadable(
            file,
            format!(
                "not UTF-8 text: byte 0x{:02x} at offset {offset} (line {line}, column {column}); manifests must be UTF-8",
                bytes[offset]
            ),
        );
        problem.source.line = line;
        problem
    })
}

/// Load and validate every manifest under `paths`. Objects and problems are both
/// returned so that a caller may keep going with the valid part (the daemon does). A file
/// that cannot be read (not UTF-8, too large, unreadable) is a problem of that file, with
/// no objects, like one that does not parse; only a path given that does not exist is an
/// error.
pub fn load(paths: &[PathBuf], schemas: &dyn Schemas) -> std::io::Result<Loaded> {
    Loader::default().load(paths, schemas)
}

/// [`load`] on texts already read: `(file name, contents)`.
pub fn load_texts(texts: &[(PathBuf, String)], schemas: &dyn Schemas) -> Loaded {
    let parsed: Vec<(PathBuf, ParsedFile)> = texts
        .iter()
        .map(|(file, text)| (file.clone(), ParsedFile::parse(file, text, schemas)))
        .collect();
    assemble(parsed.iter().map(|(f, p)| (f, p)), schemas)
}

/// Loads the same paths again and again (the daemon, at every change), parsing and
/// validating only the files whose text changed since the last load: at a thousand
/// stacks, parsing every file again is most of a reload. A file whose metadata says it is
/// as it was is not even read again (see [`Stamp`]). What depends on several files
/// (duplicates, shared writes, references) is checked again in full each time.
#[derive(Default)]
pub struct Loader {
    parsed: BTreeMap<PathBuf, ParsedFile>,
    /// How many files the last load parsed (the others were unchanged).
    last_parsed: usize,
    /// How many files the last load read (the others had the stamp they were read with).
    last_read: usize,
}

/// A file's metadata as it was just before the file was read: when it is the same at the
/// next load, the file is too, and it is not read again (as git's index and make trust
/// them). Only a stamp taken [`STAMP_SETTLES_AFTER`] after the file's last modification is kept:
/// a write within the same tick of a coarse clock could leave every field as it was.
/// Editors that replace a file by renaming change its inode; writes in place change its
/// change time, which nothing can set back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: std::time::SystemTime,
    #[cfg(unix)]
    changed: (i64, i64),
    #[cfg(unix)]
    inode: (u64, u64),
}

/// How long after its last change a file's stamp is trusted (see [`Stamp`]).
pub const STAMP_SETTLES_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

impl Stamp {
    fn of(file: &Path) -> Option<Self> {
        let meta = std::fs::metadata(file).ok()?;
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok()?,
            #[cfg(unix)]
            changed: (meta.ctime(), meta.ctime_nsec()),
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
        })
    }

    /// The stamp, if it was taken at `at` long enough after the file last changed.
    fn settled_at(self, at: std::time::SystemTime) -> Option<Self> {
        let last = self.modified;
        #[cfg(unix)]
        let last = last.max(
            std::time::UNIX_EPOCH
                + std::time::Duration::new(
                    u64::try_from(self.changed.0).ok()?,
                    u32::try_from(self.changed.1).ok()?,
                ),
        );
        (last + STAMP_SETTLES_AFTER <= at).then_some(self)
    }
}

impl Loader {
    /// [`load`], reusing what the last load parsed of each unchanged file.
    pub fn load(&mut self, paths: &[PathBuf], schemas: &dyn Schemas) -> std::io::Result<Loaded> {
        let (files, mut unread) = manifest_files(paths)?;
        let mut parsed = BTreeMap::new();
        self.last_parsed = 0;
        self.last_read = 0;
        for file in files {
            let stamp = Stamp::of(&file);
            let before = match self.parsed.remove(&file) {
                Some(kept) if kept.stamp.is_some() && kept.stamp == stamp => {
                    parsed.insert(file, kept);
                    continue;
                }
                before => before,
            };
            let read_at = std::time::SystemTime::now();
            match read_manifest(&file) {
                Ok(Some(text)) => {
                    self.last_read += 1;
                    let d = digest(&text);
                    let mut p = match before.filter(|p| p.digest == d) {
                        Some(kept) => kept,
                        None => {
                            self.last_parsed += 1;
                            ParsedFile::parse(&file, &text, schemas)
                        }
                    };
                    p.stamp = stamp.and_then(|s| s.settled_at(read_at));
                    parsed.insert(file, p);
                }
                Ok(None) => {}
                Err(p) => unread.push(p),
            }
        }
        // Files gone or unreadable now are forgotten with what they held.
        self.parsed = parsed;
        let mut loaded = assemble(self.parsed.iter(), schemas);
        for p in unread {
            if !p.source.file.is_dir() {
                loaded.files.entry(p.source.file.clone()).or_default();
            }
            loaded.problems.push(p);
        }
        loaded.problems.sort();
        Ok(loaded)
    }

    /// How many files the last load parsed; the others were kept as they were.
    pub fn last_parsed(&self) -> usize {
        self.last_parsed
    }

    /// How many files the last load read; the others had not changed since they were.
    pub fn last_read(&self) -> usize {
        self.last_read
    }

    /// How many files were read too soon after they changed for their stamp to be
    /// trusted (see [`Stamp`]): the next load reads them again, unless [`Loader::settle`]
    /// does first.
    pub fn unsettled(&self) -> usize {
        self.parsed.values().filter(|p| p.stamp.is_none()).count()
    }

    /// Read again the files whose stamp could not be trusted yet, and trust it now for
    /// those whose text is as it was: the next load (after an edit) then reads only what
    /// the edit touched, not a whole checkout made just before the first load. A file
    /// whose text changed is left as it is, for the load its change brings.
    pub fn settle(&mut self) {
        for (file, p) in self.parsed.iter_mut().filter(|(_, p)| p.stamp.is_none()) {
            let stamp = Stamp::of(file);
            let read_at = std::time::SystemTime::now();
            if let Ok(Some(text)) = read_manifest(file)
                && digest(&text) == p.digest
            {
                p.stamp = stamp.and_then(|s| s.settled_at(read_at));
            }
        }
    }
}

/// One file, parsed, with each document loaded on its own: everything about the file
/// that does not depend on the others. The YAML tree itself is not kept (at a thousand
/// stacks it would be tens of megabytes): only the lines the cross-file checks cite.
struct ParsedFile {
    /// SHA-256 of the text: the file is parsed again when it changes.
    digest: [u8; 32],
    /// The file's stamp when it was read, if it can be trusted: the file is not read
    /// again while it has this one.
    stamp: Option<Stamp>,
    /// The documents, or why the file is not YAML.
    docs: std::result::Result<Vec<LoadedDocument>, Problem>,
}

struct LoadedDocument {
    key: Option<ObjectKey>,
    /// The line of `metadata.name` (where a duplicate is reported).
    name_line: usize,
    object: Option<Arc<Object>>,
    /// The AWS resources the object writes, each with the line of the field naming it.
    writes: Vec<(Writes, usize)>,
    problems: Vec<Problem>,
    refs: Vec<PendingRef>,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl ParsedFile {
    fn parse(file: &Path, text: &str, schemas: &dyn Schemas) -> Self {
        let docs = match parse_documents(text) {
            Ok(docs) => Ok(docs
                .into_iter()
                .map(|node| {
                    let (object, problems, refs) = load_document(file, &node, schemas);
                    let writes = object
                        .as_ref()
                        .and_then(|o| {
                            let schema = schemas.schema(&o.key.kind)?;
                            Some(schema.writes(&o.meta.name, &o.spec))
                        })
                        .unwrap_or_default()
                        .into_iter()
                        .map(|w| {
                            let line = node.line_of(w.path);
                            (w, line)
                        })
                        .collect();
                    LoadedDocument {
                        key: document_key(&node),
                        name_line: node.line_of("metadata.name"),
                        object: object.map(Arc::new),
                        writes,
                        problems,
                        refs,
                    }
                })
                .collect()),
            Err(e) => Err(Problem {
                source: Source {
                    file: file.to_path_buf(),
                    line: e.line,
                },
                object: None,
                path: String::new(),
                message: format!("invalid YAML: {}", e.message),
            }),
        };
        Self {
            digest: digest(text),
            stamp: None,
            docs,
        }
    }
}

/// The objects and problems of parsed files, in order, with what only all of them
/// together can show: an object defined twice, a resource two objects write, a
/// reference to nothing.
fn assemble<'a>(
    files: impl Iterator<Item = (&'a PathBuf, &'a ParsedFile)>,
    schemas: &dyn Schemas,
) -> Loaded {
    let mut loaded = Loaded::default();
    let mut first_seen: BTreeMap<ObjectKey, Source> = BTreeMap::new();
    let mut writers: BTreeMap<(&'static str, String), (ObjectKey, Source)> = BTreeMap::new();
    let mut refs: Vec<&PendingRef> = Vec::new();
    for (file, parsed) in files {
        let keys = loaded.files.entry(file.clone()).or_default();
        let docs = match &parsed.docs {
            Ok(d) => d,
            Err(p) => {
                loaded.problems.push(p.clone());
                continue;
            }
        };
        for doc in docs {
            if let Some(key) = &doc.key {
                keys.push(key.clone());
                let source = Source {
                    file: file.clone(),
                    line: doc.name_line,
                };
                if let Some(first) = first_seen.get(key) {
                    loaded.problems.push(Problem {
                        source,
                        object: Some(key.to_string()),
                        path: "metadata.name".into(),
                        message: format!("duplicate: {key} is already defined at {first}"),
                    });
                    continue;
                }
                first_seen.insert(key.clone(), source);
            }
            loaded.problems.extend(doc.problems.iter().cloned());
            refs.extend(&doc.refs);
            if let Some(o) = &doc.object {
                if let Some(p) = shared_write(o, &doc.writes, &mut writers) {
                    loaded.problems.push(p);
                    continue;
                }
                loaded.objects.push(Arc::clone(o));
            }
        }
    }
    check_references(&mut loaded, &refs, schemas);
    loaded.problems.sort();
    loaded
}

/// The first AWS resource that `o` writes and an object loaded before it also writes, as a
/// problem; otherwise records what `o` writes.
fn shared_write(
    o: &Object,
    writes: &[(Writes, usize)],
    writers: &mut BTreeMap<(&'static str, String), (ObjectKey, Source)>,
) -> Option<Problem> {
    let at = |line: usize| Source {
        file: o.source.file.clone(),
        line,
    };
    for (w, line) in writes {
        if let Some((other, first)) = writers.get(&(w.resource, w.name.clone())) {
            return Some(Problem {
                source: at(*line),
                object: Some(o.key.to_string()),
                path: w.path.to_string(),
                message: format!(
                    "{other} ({first}) already writes {} {}: two objects writing one resource undo each other's changes on every pass",
                    w.resource, w.name
                ),
            });
        }
    }
    for (w, line) in writes {
        writers.insert((w.resource, w.name.clone()), (o.key.clone(), at(*line)));
    }
    None
}

fn document_key(doc: &Node) -> Option<ObjectKey> {
    let kind = doc.get("kind")?.as_str()?;
    let name = doc.get("metadata")?.get("name")?.as_str()?;
    Some(ObjectKey::new(kind, name))
}

fn load_document(
    file: &Path,
    doc: &Node,
    schemas: &dyn Schemas,
) -> (Option<Object>, Vec<Problem>, Vec<PendingRef>) {
    let key = document_key(doc);
    let problem = |path: &str, message: String| Problem {
        source: Source {
            file: file.to_path_buf(),
            line: doc.line_of(path),
        },
        object: key.as_ref().map(|k| k.to_string()),
        path: path.to_string(),
        message,
    };
    let mut problems = Vec::new();
    let Value::Map(entries) = &doc.value else {
        problems.push(problem(
            "",
            format!(
                "a manifest document must be a mapping with apiVersion, kind, metadata and spec; found {}",
                doc.type_name()
            ),
        ));
        return (None, problems, Vec::new());
    };
    for (k, _) in entries {
        if !["apiVersion", "kind", "metadata", "spec"].contains(&k.name.as_str()) {
            problems.push(problem(
                &k.name,
                format!(
                    "unknown field `{}`; allowed here: apiVersion, kind, metadata, spec",
                    k.name
                ),
            ));
        }
    }
    match doc.get("apiVersion").map(|n| n.as_str()) {
        Some(Some(API_VERSION)) => {}
        Some(Some(other)) => problems.push(problem(
            "apiVersion",
            format!("unsupported apiVersion `{other}`; allowed: {API_VERSION}"),
        )),
        _ => problems.push(problem(
            "apiVersion",
            format!("missing apiVersion; set it to {API_VERSION}"),
        )),
    }
    let schema = match doc.get("kind").map(|n| n.as_str()) {
        Some(Some(kind)) => match schemas.schema(kind) {
            Some(s) => Some(s),
            None => {
                problems.push(problem(
                    "kind",
                    format!(
                        "unknown kind `{kind}`; known kinds: {}",
                        schemas.names().join(", ")
                    ),
                ));
                None
            }
        },
        _ => {
            problems.push(problem(
                "kind",
                format!("missing kind; one of: {}", schemas.names().join(", ")),
            ));
            None
        }
    };
    let meta = match doc.get("metadata") {
        Some(node) => match from_node::<ObjectMeta>(node, "metadata") {
            Ok(mut meta) => {
                meta.base_dir = Some(manifest_dir(file));
                Some(meta)
            }
            Err(ps) => {
                problems.extend(ps.into_iter().map(|p| located(file, doc, &key, p)));
                None
            }
        },
        None => {
            problems.push(problem("metadata", "missing metadata with a name".into()));
            None
        }
    };
    let mut deletion_policy = schema.map(|s| s.default_deletion_policy());
    if let Some(meta) = &meta {
        problems.extend(
            check_meta(meta)
                .into_iter()
                .map(|p| located(file, doc, &key, p)),
        );
        match meta
            .annotations
            .get(ANNOTATION_DELETION_POLICY)
            .map(String::as_str)
        {
            None => {}
            Some("Delete") => deletion_policy = Some(DeletionPolicy::Delete),
            Some("Retain") => deletion_policy = Some(DeletionPolicy::Retain),
            Some(other) => problems.push(problem(
                &format!("metadata.annotations.{ANNOTATION_DELETION_POLICY}"),
                format!("`{other}` is not a deletion policy; allowed: Delete, Retain"),
            )),
        }
    }
    let spec = match (schema, doc.get("spec"), &meta) {
        (Some(schema), Some(node), Some(meta)) => {
            let (spec, ps) = schema.parse(&meta.name, node);
            problems.extend(ps.into_iter().map(|p| located(file, doc, &key, p)));
            spec
        }
        (Some(_), None, _) => {
            problems.push(problem("spec", "missing spec".into()));
            None
        }
        _ => None,
    };
    let refs: Vec<PendingRef> = match (schema, &spec, &key) {
        (Some(schema), Some(spec), Some(key)) => schema
            .references(spec)
            .into_iter()
            .map(|r| PendingRef {
                source: Source {
                    file: file.to_path_buf(),
                    line: doc.line_of(&r.path),
                },
                from: key.clone(),
                output: r.output.map(|o| {
                    let at = r.path.strip_suffix(".from").unwrap_or(&r.path);
                    let line = doc.line_of(&format!("{at}.output"));
                    (
                        o,
                        Source {
                            file: file.to_path_buf(),
                            line,
                        },
                    )
                }),
                path: r.path,
                target: r.target,
            })
            .collect(),
        _ => Vec::new(),
    };
    let (Some(meta), Some(spec), Some(deletion_policy), Some(key), true) =
        (meta, spec, deletion_policy, key, problems.is_empty())
    else {
        return (None, problems, refs);
    };
    let hash = content_hash(&meta, &spec);
    let object = Object {
        key,
        meta,
        spec,
        deletion_policy,
        source: Source {
            file: file.to_path_buf(),
            line: doc.line,
        },
        hash,
    };
    (Some(object), problems, refs)
}

/// A reference waiting to be checked once every file has been read.
struct PendingRef {
    source: Source,
    from: ObjectKey,
    path: String,
    target: ObjectKey,
    /// The output used, and where it is named.
    output: Option<(String, Source)>,
}

fn located(file: &Path, doc: &Node, key: &Option<ObjectKey>, p: FieldProblem) -> Problem {
    Problem {
        source: Source {
            file: file.to_path_buf(),
            line: p.line.unwrap_or_else(|| doc.line_of(&p.path)),
        },
        object: key.as_ref().map(|k| k.to_string()),
        path: p.path,
        message: p.message,
    }
}

fn check_meta(meta: &ObjectMeta) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let name = &meta.name;
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        problems.push(FieldProblem::new(
            "metadata.name",
            format!("`{name}` is not a valid object name: 1-253 characters of a-z A-Z 0-9 - _ ."),
        ));
    }
    if let Some(v) = meta.annotations.get(ANNOTATION_RESYNC) {
        match humantime::parse_duration(v) {
            Ok(d) if (10..=7 * 24 * 3600).contains(&d.as_secs()) => {}
            _ => problems.push(FieldProblem::new(
                format!("metadata.annotations.{ANNOTATION_RESYNC}"),
                format!("`{v}` is not a duration between 10s and 7d (e.g. 30s, 10m, 1h)"),
            )),
        }
    }
    for flag in [ANNOTATION_SUSPEND, ANNOTATION_ADOPT] {
        if let Some(v) = meta.annotations.get(flag)
            && !matches!(v.as_str(), "true" | "false")
        {
            problems.push(FieldProblem::new(
                format!("metadata.annotations.{flag}"),
                format!("`{v}` is not \"true\" or \"false\""),
            ));
        }
    }
    for key in meta.annotations.keys() {
        if key.starts_with(ANNOTATION_PREFIX) && !KNOWN_ANNOTATIONS.contains(&key.as_str()) {
            problems.push(FieldProblem::new(
                format!("metadata.annotations.{key}"),
                format!(
                    "unknown annotation `{key}`; known: {}",
                    KNOWN_ANNOTATIONS.join(", ")
                ),
            ));
        }
    }
    problems
}

/// The directory relative paths in `file`'s specs resolve against, made absolute so that
/// it means the same wherever it is used later.
fn manifest_dir(file: &Path) -> PathBuf {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Hash of what the controller acts on; labels are included so that a relabel is seen,
/// and the manifest's directory, which relative paths in the spec resolve against.
pub fn content_hash(meta: &ObjectMeta, spec: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(meta).unwrap_or_default());
    h.update(b"\0");
    h.update(serde_json::to_vec(spec).unwrap_or_default());
    if let Some(dir) = &meta.base_dir {
        h.update(b"\0");
        h.update(dir.as_os_str().as_encoded_bytes());
    }
    hex::encode(h.finalize())
}

/// Every reference must name an object defined in the manifests (valid or not: a
/// reference to an invalid object is not reported twice).
fn check_references(loaded: &mut Loaded, refs: &[&PendingRef], schemas: &dyn Schemas) {
    let defined: std::collections::BTreeSet<&ObjectKey> = loaded.files.values().flatten().collect();
    let mut problems = Vec::new();
    for r in refs {
        let Some(schema) = schemas.schema(&r.target.kind) else {
            problems.push(Problem {
                source: r.source.clone(),
                object: Some(r.from.to_string()),
                path: r.path.clone(),
                message: format!(
                    "`{}` is not a known kind; known kinds: {}",
                    r.target.kind,
                    schemas.names().join(", ")
                ),
            });
            continue;
        };
        if let Some((output, at)) = &r.output
            && !schema.outputs().contains(&output.as_str())
        {
            problems.push(Problem {
                source: at.clone(),
                object: Some(r.from.to_string()),
                path: format!("{}.output", r.path.strip_suffix(".from").unwrap_or(&r.path)),
                message: format!(
                    "{} has no output `{output}`; its outputs: {}",
                    r.target.kind,
                    schema.outputs().join(", ")
                ),
            });
        }
        let message = if r.target == r.from {
            format!(
                "refers to itself: {} cannot wait for its own outputs",
                r.target
            )
        } else if !defined.contains(&r.target) {
            format!(
                "refers to {} which is not defined in the manifests",
                r.target
            )
        } else {
            continue;
        };
        problems.push(Problem {
            source: r.source.clone(),
            object: Some(r.from.to_string()),
            path: r.path.clone(),
            message,
        });
    }
    loaded.problems.extend(problems);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Registry;

    /// A loader that keeps what it parsed gives, after every edit, what a load from
    /// nothing gives, and parses only the files that changed.
    #[test]
    fn reloads_parse_only_changed_files_and_match_a_fresh_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |f: &str| dir.path().join(f);
        let write = |f: &str, text: &str| std::fs::write(path(f), text).expect("write");
        let a = param("a", "  name: /a\n  value: x\n");
        let b = param(
            "b",
            "  name: /b\n  value: { from: Parameter/a, output: name }\n",
        );
        write("a.yaml", &a);
        write("b.yaml", &b);
        let registry = Registry::offline();
        let mut loader = Loader::default();
        type Edit<'e> = (&'e str, Box<dyn Fn() + 'e>, usize);
        let edits: Vec<Edit> = vec![
            ("first load", Box::new(|| {}), 2),
            ("nothing changed", Box::new(|| {}), 0),
            (
                "a value edited",
                Box::new(|| write("a.yaml", &param("a", "  name: /a\n  value: y\n"))),
                1,
            ),
            ("a file broken", Box::new(|| write("b.yaml", "spec: [")), 1),
            ("fixed again", Box::new(|| write("b.yaml", &b)), 1),
            (
                "a duplicate in a new file",
                Box::new(|| write("c.yaml", &param("a", "  name: /c\n  value: z\n"))),
                1,
            ),
            (
                "the referenced object removed",
                Box::new(|| std::fs::remove_file(path("a.yaml")).expect("rm")),
                0,
            ),
        ];
        for (what, edit, parses) in edits {
            edit();
            let again = loader.load(&[dir.path().to_path_buf()], &registry);
            let fresh = load(&[dir.path().to_path_buf()], &registry);
            let (again, fresh) = (again.expect("load"), fresh.expect("load"));
            assert_eq!(again.objects, fresh.objects, "{what}");
            assert_eq!(again.problems, fresh.problems, "{what}");
            assert_eq!(again.files, fresh.files, "{what}");
            assert_eq!(loader.last_parsed(), parses, "{what}: files parsed");
        }
    }

    /// A file whose stamp has not changed since it was read (long enough after it was
    /// written) is not read again; any write changes the stamp, even one that keeps the
    /// length and puts the modification time back.
    #[test]
    fn unchanged_files_are_not_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |f: &str| dir.path().join(f);
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let write_old = |f: &str, text: &str| {
            std::fs::write(path(f), text).expect("write");
            let file = std::fs::File::options()
                .write(true)
                .open(path(f))
                .expect("open");
            file.set_modified(an_hour_ago).expect("set mtime");
        };
        let text = |name: &str, value: &str| {
            param(
                name,
                &format!("  name: /{name}\n  value: {{ value: v{value} }}\n"),
            )
        };
        write_old("a.yaml", &text("a", "1"));
        write_old("b.yaml", &text("b", "1"));
        let registry = Registry::offline();
        let mut loader = Loader::default();
        let dirs = [dir.path().to_path_buf()];
        let value = |l: &Loaded, name: &str| {
            l.objects
                .iter()
                .find(|o| &*o.key.name == name)
                .map(|o| o.spec["value"]["value"].clone())
        };
        let first = loader.load(&dirs, &registry).expect("load");
        assert_eq!((loader.last_read(), loader.last_parsed()), (2, 2));
        assert_eq!(first.problems, []);
        assert_eq!(first.objects.len(), 2);
        // Written just now (the change time is now): read again until it has settled.
        let again = loader.load(&dirs, &registry).expect("load");
        assert_eq!((loader.last_read(), loader.last_parsed()), (2, 0));
        assert_eq!(again.objects, first.objects);
        assert_eq!(loader.unsettled(), 2);
        loader.settle();
        assert_eq!(loader.unsettled(), 2, "too soon still");
        std::thread::sleep(STAMP_SETTLES_AFTER);
        loader.settle();
        assert_eq!(loader.unsettled(), 0, "read once more, now settled");
        let settled = loader.load(&dirs, &registry).expect("load");
        assert_eq!((loader.last_read(), loader.last_parsed()), (0, 0));
        assert_eq!(settled.objects, first.objects);
        // Same length, modification time put back: the change time still tells.
        write_old("a.yaml", &text("a", "2"));
        let edited = loader.load(&dirs, &registry).expect("load");
        assert_eq!((loader.last_read(), loader.last_parsed()), (1, 1));
        assert_eq!(loader.unsettled(), 1, "a.yaml changed just now");
        assert_eq!(value(&edited, "a"), Some(serde_json::json!("v2")));
        assert_eq!(value(&edited, "b"), Some(serde_json::json!("v1")));
    }

    fn param(name: &str, body: &str) -> String {
        format!(
            "apiVersion: agentcore.dev/v1alpha1\nkind: Parameter\nmetadata:\n  name: {name}\nspec:\n{body}"
        )
    }

    fn doc(kind: &str, name: &str, body: &str) -> String {
        format!(
            "apiVersion: agentcore.dev/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{body}"
        )
    }

    /// A YAML bomb is one problem, at the line of the file where it goes off.
    #[test]
    fn an_alias_bomb_is_one_problem_at_its_line() {
        let bomb = crate::model::yaml::tests::alias_bomb();
        let problems = problems_of(&[("bomb.yaml", bomb)]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("bomb.yaml:5: invalid YAML: aliases expand past 4096 nodes"),
            "{problems:?}"
        );
    }

    fn problems_of(files: &[(&str, String)]) -> Vec<String> {
        let texts: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(f, t)| (PathBuf::from(f), t.clone()))
            .collect();
        load_texts(&texts, &Registry::offline())
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn problems_table() {
        let ok = "  name: /a\n  value: { value: x }\n";
        type Case<'a> = (Vec<(&'a str, String)>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (vec![("a.yaml", param("a", ok))], vec![]),
            (
                vec![("a.yaml", format!("{}---\n{}", param("a", ok), param("a", ok)))],
                vec!["a.yaml:12: Parameter/a: metadata.name: duplicate: Parameter/a is already defined at a.yaml:4"],
            ),
            (
                vec![("a.yaml", param("a", "  name: /a\n  value: { from: Parameter/zzz, output: value }\n"))],
                vec!["a.yaml:7: Parameter/a: spec.value.from: refers to Parameter/zzz which is not defined in the manifests"],
            ),
            // Names AWS refuses.
            (
                vec![("a.yaml", param("a", "  name: /aws/x\n  value: { value: x }\n"))],
                vec!["a.yaml:6: Parameter/a: spec.name: `/aws/x`: names beginning with aws or ssm"],
            ),
            (
                vec![("a.yaml", param("a", "  name: SSM-x\n  value: { value: x }\n"))],
                vec!["a.yaml:6: Parameter/a: spec.name: `SSM-x`: names beginning with aws or ssm"],
            ),
            // Values that can never arrive: from the object itself, or an output the
            // referenced kind does not have.
            (
                vec![("a.yaml", param("p1", "  name: /a\n  value: { from: Parameter/p1, output: value }\n"))],
                vec!["a.yaml:7: Parameter/p1: spec.value.from: refers to itself: Parameter/p1 cannot wait for its own outputs"],
            ),
            (
                vec![("a.yaml", format!("{}---\n{}", param("a", ok), param("b", "  name: /b\n  value:\n    from: Parameter/a\n    output: ARN\n")))],
                vec!["a.yaml:17: Parameter/b: spec.value.output: Parameter has no output `ARN`; its outputs: name, arn, value"],
            ),
            (
                vec![("a.yaml", format!("{}---\n{}", param("a", ok), param("b", "  name: /b\n  value: { from: Parameter/a, output: poolId }\n")))],
                vec!["a.yaml:15: Parameter/b: spec.value.output: Parameter has no output `poolId`; its outputs: name, arn, value"],
            ),
            (
                vec![("a.yaml", param("a", "  name: /a\n  value: { from: Widget/zzz, output: value }\n"))],
                vec!["a.yaml:7: Parameter/a: spec.value.from: `Widget` is not a known kind; known kinds: "],
            ),
            (
                vec![("a.yaml", "apiVersion: v1\nkind: Parameter\nmetadata:\n  name: a\n  owner: me\nspec:\n  name: /a\n  value: { value: x }\nstatus: {}\n".to_string())],
                vec![
                    "a.yaml:1: Parameter/a: apiVersion: unsupported apiVersion `v1`; allowed: agentcore.dev/v1alpha1",
                    "a.yaml:5: Parameter/a: metadata.owner: unknown field `owner`; allowed here: name, labels, annotations",
                    "a.yaml:9: Parameter/a: status: unknown field `status`; allowed here: apiVersion, kind, metadata, spec",
                ],
            ),
            (
                vec![("a.yaml", "kind: [\n".to_string())],
                vec!["a.yaml:"],
            ),
            // A tab is reported on its own line, not on the line of the scalar before it.
            (
                vec![("a.yaml", param("a", "  name: /a\n\tvalue: { value: x }\n"))],
                vec!["a.yaml:7: invalid YAML: while scanning a plain scalar, found a tab"],
            ),
            // A name defaulted from metadata.name is reported at metadata.name.
            (
                vec![("a.yaml", doc("Role", &"r".repeat(65), "  description: d\n"))],
                vec!["a.yaml:4: Role/rrrr"],
            ),
            (
                vec![("a.yaml", doc("Repository", "Bad_Repo", "  scanOnPush: true\n"))],
                vec!["a.yaml:4: Repository/Bad_Repo: metadata.name: metadata.name `Bad_Repo` is not a valid repository name"],
            ),
            // Two writers of one resource: the second is refused, wherever it is.
            (
                vec![("a.yaml", param("a", ok)), ("b.yaml", param("b", ok))],
                vec!["b.yaml:6: Parameter/b: spec.name: Parameter/a (a.yaml:6) already writes SSM parameter /a: two objects writing one resource undo each other's changes on every pass"],
            ),
            (
                vec![("a.yaml", param("a", ok)), ("b.yaml", param("b", "  name: /b\n  value: { value: x }\n"))],
                vec![],
            ),
            (
                vec![
                    ("a.yaml", doc("Secret", "creds", "  secretName: app/creds\n  data: { k: { value: v } }\n")),
                    ("b.yaml", doc("Token", "tok", "  userRef: u\n  clientRef: c\n  secretName: app/creds\n")),
                ],
                vec![
                    "b.yaml:6: Token/tok: spec.userRef: refers to User/u",
                    "b.yaml:7: Token/tok: spec.clientRef: refers to UserPoolClient/c",
                    "b.yaml:8: Token/tok: spec.secretName: Secret/creds (a.yaml:6) already writes secret app/creds",
                ],
            ),
            (
                vec![
                    ("a.yaml", doc("Token", "tok", "  userRef: u\n  clientRef: c\n  secretName: app/creds\n")),
                    ("b.yaml", doc("Secret", "state", "  secretName: agentcore-controller/tokens/app/creds\n  data: { k: { value: v } }\n")),
                ],
                vec![
                    "a.yaml:6: Token/tok: spec.userRef: refers to User/u",
                    "a.yaml:7: Token/tok: spec.clientRef: refers to UserPoolClient/c",
                    "b.yaml:6: Secret/state: spec.secretName: Token/tok (a.yaml:8) already writes secret agentcore-controller/tokens/app/creds",
                ],
            ),
            (
                vec![("a.yaml", param("a", ok).replace("  name: a\n", "  name: a\n  annotations:\n    agentcore.dev/deletion-policy: Keep\n    agentcore.dev/frobnicate: \"1\"\n"))],
                vec![
                    "a.yaml:6: Parameter/a: metadata.annotations.agentcore.dev/deletion-policy: `Keep` is not a deletion policy; allowed: Delete, Retain",
                    "a.yaml:7: Parameter/a: metadata.annotations.agentcore.dev/frobnicate: unknown annotation `agentcore.dev/frobnicate`; known: agentcore.dev/adopt, agentcore.dev/deletion-policy",
                ],
            ),
        ];
        for (files, want) in cases {
            let got = problems_of(&files);
            assert_eq!(got.len(), want.len(), "{got:#?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(g.starts_with(w), "got {g:?}, want {w:?}");
            }
        }
    }

    /// Files that cannot be read are problems of their own file; the others load.
    #[test]
    fn unreadable_files_are_problems_of_their_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, bytes: &[u8]| {
            std::fs::write(dir.path().join(name), bytes).expect("write");
        };
        write(
            "good.yaml",
            param("good", "  name: /g\n  value: { value: x }\n").as_bytes(),
        );
        let mut latin1 = param("bad", "  name: /b\n  value: { value: caf\u{e9} }\n").into_bytes();
        let at = latin1.iter().position(|b| *b == 0xc3).expect("é");
        latin1.splice(at..at + 2, [0xe9]);
        write("latin1.yaml", &latin1);
        write("huge.yaml", &vec![b'#'; MAX_FILE_BYTES as usize + 1]);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("loop.yaml", dir.path().join("loop.yaml")).expect("link");
            std::os::unix::fs::symlink(".", dir.path().join("subdir")).expect("link");
            std::os::unix::fs::symlink("nowhere", dir.path().join("dangling.yaml")).expect("link");
        }
        let loaded = load(&[dir.path().to_path_buf()], &Registry::offline()).expect("loads");
        let keys: Vec<String> = loaded.objects.iter().map(|o| o.key.to_string()).collect();
        assert_eq!(keys, ["Parameter/good"]);
        let got: Vec<String> = loaded
            .problems
            .iter()
            .map(|p| {
                let file = p
                    .source
                    .file
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy();
                format!("{file}:{}: {}", p.source.line, p.message)
            })
            .collect();
        let mut want = vec![
            format!("huge.yaml:1: {} bytes or more: manifest files are limited to 4 MiB", MAX_FILE_BYTES + 1),
            "latin1.yaml:7: not UTF-8 text: byte 0xe9 at offset 111 (line 7, column 22); manifests must be UTF-8".to_string(),
        ];
        if cfg!(unix) {
            want.insert(
                0,
                "dangling.yaml:1: cannot read: No such file or directory (os error 2)".into(),
            );
            want.push(
                "loop.yaml:1: cannot read: Too many levels of symbolic links (os error 40)".into(),
            );
        }
        assert_eq!(got, want);
        // A file that vanished between listing and reading is simply not there.
        assert_eq!(read_manifest(&dir.path().join("vanished.yaml")), Ok(None));
        // Each unreadable file is known, with no objects: the daemon keeps its old ones.
        let files: Vec<String> = loaded
            .files
            .iter()
            .map(|(f, ks)| {
                format!(
                    "{}={}",
                    f.file_name().unwrap_or_default().to_string_lossy(),
                    ks.len()
                )
            })
            .collect();
        let mut want_files = vec!["good.yaml=1", "huge.yaml=0", "latin1.yaml=0"];
        if cfg!(unix) {
            want_files.insert(0, "dangling.yaml=0");
            want_files.push("loop.yaml=0");
        }
        assert_eq!(files, want_files);
    }

    #[test]
    fn deletion_policy_and_hash() {
        let text = param("a", "  name: /a\n  value: { value: x }\n");
        let texts = vec![(PathBuf::from("a.yaml"), text.clone())];
        let loaded = load_texts(&texts, &Registry::offline());
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let o = &loaded.objects[0];
        assert_eq!(o.deletion_policy, DeletionPolicy::Delete);
        let retained = text.replace(
            "  name: a\n",
            "  name: a\n  annotations:\n    agentcore.dev/deletion-policy: Retain\n",
        );
        let loaded2 = load_texts(&[(PathBuf::from("a.yaml"), retained)], &Registry::offline());
        assert_eq!(loaded2.objects[0].deletion_policy, DeletionPolicy::Retain);
        assert_ne!(loaded2.objects[0].hash, o.hash);
        // Same content written differently hashes the same.
        let reformatted = param("a", "  value:\n    value: x\n  name: /a\n");
        let loaded3 = load_texts(
            &[(PathBuf::from("b.yaml"), reformatted)],
            &Registry::offline(),
        );
        assert_eq!(loaded3.objects[0].hash, o.hash);
    }
}
