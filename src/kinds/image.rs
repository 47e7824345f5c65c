//! `Image`: the container image in an ECR repository that dependents (the runtime) run,
//! pinned by digest. Three sources:
//!
//! - a tag, tracked (the default): the controller waits until the tag exists and follows
//!   it when it moves; it never pushes.
//! - `build`: a context directory and a builder command that writes an OCI image layout.
//!   The controller hashes the context (honouring `.dockerignore`) and the command; only
//!   when ECR has no image for that hash does it build and push, so an unchanged context
//!   never rebuilds.
//! - `ociLayout`: an OCI image layout (directory or tar archive) pushed as is.
//!
//! Built and pushed images get an immutable tag from their content (`build-<hash>`,
//! `oci-<manifest hash>`), and optionally a moving tag such as `latest`.
//!
//! ```yaml
//! kind: Image
//! metadata: { name: mcp-server-latest }
//! spec:
//!   repositoryRef: mcp-server
//!   build:
//!     context: ../mcp-server          # relative to this manifest's directory
//!     command: docker buildx build --platform linux/arm64 --output type=oci,dest={out} {context}
//!     timeout: 20m                    # default 30m
//!   movingTag: latest
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecr::types::{DescribeImagesFilter, TagStatus};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    Change, Ctx, DeletionPolicy, Deps, Kind, ObjectMeta, Observed, Outputs, Reference, changed,
};
use crate::error::{Reason, ReconcileError, Result, read_result, write_result};
use crate::model::de::FieldProblem;
use crate::model::permissions::{Grant, Scope};
use crate::oci::build::{OUT, run_builder};
use crate::oci::context::{ContextHash, build_id, hash_context};
use crate::oci::layout::{Layout, Platform, SelectedImage};
use crate::oci::push::{move_tag, push_image, retag, tag_digest};
use crate::oci::{BUILD_TAG_PREFIX, LAYOUT_TAG_PREFIX, is_content_tag};

const DEFAULT_TAG: &str = "latest";
const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const BUILD_TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=24 * 3600;
/// Hex digits of the content hash in a content tag (80 bits).
const TAG_HEX: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSpec {
    /// The build context directory; relative to the manifest's directory.
    pub context: String,
    /// Shell command that writes an OCI image layout (directory or tar) to `{out}`;
    /// `{context}` is the context directory.
    pub command: String,
    /// How long the builder may run (default 30m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// metadata.name of the Repository that holds the image.
    pub repository_ref: String,
    /// Without a build or ociLayout: the tag to track (1-128 characters of
    /// a-z A-Z 0-9 _ . -, not starting with . or -). Default `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Build the image from a context directory and push it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSpec>,
    /// Push the image in this OCI image layout (directory or tar archive); relative to the
    /// manifest's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_layout: Option<String>,
    /// With build or ociLayout: a tag (e.g. `latest`) also pointed at the pushed image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moving_tag: Option<String>,
}

/// Where the image comes from, with paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Track {
        tag: String,
    },
    Build {
        context: PathBuf,
        command: String,
        timeout: Duration,
    },
    Layout {
        path: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredImage {
    /// The repository's name in ECR.
    pub repository: String,
    pub repository_uri: String,
    pub source: ImageSource,
    /// Also point this tag at the image (build and ociLayout only).
    pub moving_tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedImage {
    /// As ECR reports it.
    pub digest: String,
    /// The tracked tag, or the content tag.
    pub tag: String,
    /// Where the moving tag points now (None: nowhere).
    pub moving_tag_digest: Option<String>,
}

pub use super::names::is_image_tag;

/// The immutable tag of a build, from its identity (context hash and command).
pub fn build_tag(build_id_hex: &str) -> String {
    format!(
        "{BUILD_TAG_PREFIX}{}",
        &build_id_hex[..TAG_HEX.min(build_id_hex.len())]
    )
}

/// The immutable tag of an image pushed from a layout, from its manifest digest.
pub fn layout_tag(manifest_digest: &str) -> String {
    let hex = manifest_digest
        .strip_prefix("sha256:")
        .unwrap_or(manifest_digest);
    format!("{LAYOUT_TAG_PREFIX}{}", &hex[..TAG_HEX.min(hex.len())])
}

fn parse_timeout(text: Option<&str>) -> std::result::Result<Duration, String> {
    let Some(text) = text else {
        return Ok(DEFAULT_BUILD_TIMEOUT);
    };
    match humantime::parse_duration(text) {
        Ok(d) if BUILD_TIMEOUT_RANGE.contains(&d.as_secs()) => Ok(d),
        _ => Err(format!(
            "`{text}` is not a duration between 1s and 24h (e.g. 90s, 20m, 1h)"
        )),
    }
}

fn tag_problem(tag: &str) -> String {
    format!(
        "`{tag}` is not a valid image tag: 1-128 characters of a-z A-Z 0-9 _ . -, not starting with . or -"
    )
}

async fn hash(context: PathBuf) -> std::io::Result<ContextHash> {
    tokio::task::spawn_blocking(move || hash_context(&context))
        .await
        .map_err(std::io::Error::other)?
}

async fn select(path: PathBuf) -> Result<(Layout, SelectedImage)> {
    tokio::task::spawn_blocking(move || {
        let layout = Layout::open(&path)?;
        let image = layout.select(&Platform::linux_arm64())?;
        Ok((layout, image))
    })
    .await
    .map_err(|e| ReconcileError::recoverable(Reason::ImageLayoutUnreadable, e.to_string()))?
}

/// The context directory is not there (as opposed to unreadable).
fn missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

fn context_error(context: &Path, e: std::io::Error) -> ReconcileError {
    if missing(&e) {
        ReconcileError::terminal(
            Reason::ContextNotFound,
            format!(
                "build context {} is not a directory; spec.build.context is relative to the manifest's directory",
                context.display()
            ),
        )
    } else {
        ReconcileError::recoverable(
            Reason::ContextUnreadable,
            format!("build context {}: {e}", context.display()),
        )
    }
}

pub struct Image {
    ctx: Arc<Ctx>,
}

impl Image {
    /// Push `image` under `tag`, and the moving tag; logs what the push did.
    async fn push(
        &self,
        d: &DesiredImage,
        layout: Layout,
        image: &SelectedImage,
        tag: &str,
    ) -> Result<Observed<ObservedImage>> {
        let ecr = &self.ctx.aws.ecr;
        let report = push_image(ecr, &d.repository, Arc::new(layout), image, tag).await?;
        tracing::info!(
            repository = %d.repository,
            tag,
            digest = %report.digest,
            blobs_total = report.blobs_total,
            blobs_uploaded = report.blobs_uploaded,
            bytes_uploaded = report.bytes_uploaded,
            "pushed image"
        );
        if let Some(moving) = &d.moving_tag {
            move_tag(
                ecr,
                &d.repository,
                &image.manifest,
                &image.media_type,
                moving,
                &report.digest,
            )
            .await?;
        }
        // What observe would read: the content tag, and the moving tag, at the digest ECR
        // answered with.
        Ok(Observed {
            owned: true,
            resource: ObservedImage {
                moving_tag_digest: d.moving_tag.as_ref().map(|_| report.digest.clone()),
                digest: report.digest,
                tag: tag.to_string(),
            },
        })
    }
}

/// The digests `tags` point at, from one page of the repository's tagged images (both
/// tags in one read); `None` when the repository has more tagged images than a page of
/// 100 holds (then they are asked for one by one).
async fn tag_digests(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    tags: [&str; 2],
) -> Result<Option<[Option<String>; 2]>> {
    let described = ecr
        .describe_images()
        .repository_name(repo)
        .filter(
            DescribeImagesFilter::builder()
                .tag_status(TagStatus::Tagged)
                .build(),
        )
        .max_results(100)
        .send()
        .await;
    // No repository: neither tag is there.
    let Some(out) = read_result(format!("DescribeImages {repo}"), described)? else {
        return Ok(Some([None, None]));
    };
    if out.next_token().is_some_and(|t| !t.is_empty()) {
        return Ok(None);
    }
    let digest = |tag: &str| {
        out.image_details()
            .iter()
            .find(|i| i.image_tags().iter().any(|t| t == tag))
            .and_then(|i| i.image_digest())
            .map(String::from)
    };
    Ok(Some([digest(tags[0]), digest(tags[1])]))
}

#[async_trait]
impl Kind for Image {
    const KIND: &'static str = "Image";
    const LANE: &'static str = "ecr";
    const OUTPUTS: &'static [&'static str] = &["digest", "imageUri", "tag"];
    const DEFAULT_DELETION_POLICY: DeletionPolicy = DeletionPolicy::Retain;
    const CONTAINED_IN: &'static [&'static str] = &["Repository"];
    type Spec = ImageSpec;
    type Desired = DesiredImage;
    type Observed = ObservedImage;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    fn permissions(_meta: &ObjectMeta, spec: &ImageSpec, scope: &Scope) -> Vec<Grant> {
        let repository = scope.name_of("Repository", &spec.repository_ref);
        vec![Grant::new(
            &[
                "ecr:DescribeImages",
                "ecr:BatchGetImage",
                "ecr:BatchCheckLayerAvailability",
                "ecr:InitiateLayerUpload",
                "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload",
                "ecr:PutImage",
                "ecr:BatchDeleteImage",
            ],
            vec![scope.arn("ecr", &format!("repository/{repository}"))],
        )]
    }

    fn references(spec: &ImageSpec) -> Vec<Reference> {
        vec![Reference::new(
            "spec.repositoryRef",
            "Repository",
            &spec.repository_ref,
        )]
    }

    fn sources(meta: &ObjectMeta, spec: &ImageSpec) -> Vec<PathBuf> {
        match (&spec.build, &spec.oci_layout) {
            (Some(b), _) => vec![meta.resolve_path(&b.context)],
            (None, Some(path)) => vec![meta.resolve_path(path)],
            (None, None) => Vec::new(),
        }
    }

    fn validate(_name: &str, spec: &ImageSpec, problems: &mut Vec<FieldProblem>) {
        let mut problem = |path: &str, message: String| {
            problems.push(FieldProblem::new(path, message));
        };
        if spec.repository_ref.is_empty() {
            problem(
                "spec.repositoryRef",
                "name the Repository that holds the image (its metadata.name)".into(),
            );
        }
        let pushes = spec.build.is_some() || spec.oci_layout.is_some();
        if spec.build.is_some() && spec.oci_layout.is_some() {
            problem(
                "spec.ociLayout",
                "set at most one of build and ociLayout".into(),
            );
        }
        if let Some(tag) = &spec.tag {
            if pushes {
                problem(
                    "spec.tag",
                    "tag names a tag to track; a built or pushed image is tagged from its content \
                     (use movingTag to also point a tag such as latest at it)"
                        .into(),
                );
            } else if !is_image_tag(tag) {
                problem("spec.tag", tag_problem(tag));
            }
        }
        if let Some(tag) = &spec.moving_tag {
            if !pushes {
                problem(
                    "spec.movingTag",
                    "movingTag needs build or ociLayout; to follow a tag pushed by someone else, use tag"
                        .into(),
                );
            } else if !is_image_tag(tag) {
                problem("spec.movingTag", tag_problem(tag));
            } else if is_content_tag(tag) {
                problem(
                    "spec.movingTag",
                    format!(
                        "`{tag}`: tags starting with {BUILD_TAG_PREFIX} or {LAYOUT_TAG_PREFIX} are the controller's content tags"
                    ),
                );
            }
        }
        if let Some(b) = &spec.build {
            if b.context.trim().is_empty() {
                problem(
                    "spec.build.context",
                    "name the build context directory (relative to this manifest's directory)"
                        .into(),
                );
            }
            if b.command.trim().is_empty() {
                problem(
                    "spec.build.command",
                    "the builder command is empty; e.g. docker buildx build --platform linux/arm64 \
                     --output type=oci,dest={out} {context}"
                        .into(),
                );
            } else if !b.command.contains(OUT) {
                problem(
                    "spec.build.command",
                    "the command must write the OCI image layout to {out} (e.g. --output type=oci,dest={out})"
                        .into(),
                );
            }
            if let Err(e) = parse_timeout(b.timeout.as_deref()) {
                problem("spec.build.timeout", e);
            }
        }
        if spec
            .oci_layout
            .as_ref()
            .is_some_and(|p| p.trim().is_empty())
        {
            problem(
                "spec.ociLayout",
                "name the OCI image layout (directory or tar archive)".into(),
            );
        }
    }

    fn resolve(
        &self,
        meta: &ObjectMeta,
        spec: &ImageSpec,
        deps: &Deps<'_>,
    ) -> Result<DesiredImage> {
        let source = match (&spec.build, &spec.oci_layout) {
            (Some(b), _) => ImageSource::Build {
                context: meta.resolve_path(&b.context),
                command: b.command.clone(),
                timeout: parse_timeout(b.timeout.as_deref())
                    .map_err(|e| ReconcileError::terminal(Reason::InvalidSpec, e))?,
            },
            (None, Some(path)) => ImageSource::Layout {
                path: meta.resolve_path(path),
            },
            (None, None) => ImageSource::Track {
                tag: spec.tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_string()),
            },
        };
        Ok(DesiredImage {
            repository: deps.get("Repository", &spec.repository_ref, "name")?,
            repository_uri: deps.get("Repository", &spec.repository_ref, "repositoryUri")?,
            source,
            moving_tag: spec.moving_tag.clone(),
        })
    }

    async fn observe(&self, d: &DesiredImage) -> Result<Option<Observed<ObservedImage>>> {
        let tag = match &d.source {
            ImageSource::Track { tag } => tag.clone(),
            ImageSource::Build {
                context, command, ..
            } => match hash(context.clone()).await {
                Ok(h) => build_tag(&build_id(&h, command)),
                // Nothing to look for: create says why.
                Err(e) if missing(&e) => return Ok(None),
                Err(e) => return Err(context_error(context, e)),
            },
            ImageSource::Layout { path } => {
                if !path.exists() {
                    return Ok(None);
                }
                let (_, image) = select(path.clone()).await?;
                layout_tag(&image.digest)
            }
        };
        let ecr = &self.ctx.aws.ecr;
        let (digest, moving_tag_digest) = match &d.moving_tag {
            Some(m) => match tag_digests(ecr, &d.repository, [&tag, m]).await? {
                Some([digest, moving]) => (digest, moving),
                None => (
                    tag_digest(ecr, &d.repository, &tag).await?,
                    tag_digest(ecr, &d.repository, m).await?,
                ),
            },
            None => (tag_digest(ecr, &d.repository, &tag).await?, None),
        };
        let Some(digest) = digest else {
            return Ok(None);
        };
        // Images carry no resource tags: they count as ours.
        Ok(Some(Observed {
            owned: true,
            resource: ObservedImage {
                digest,
                tag,
                moving_tag_digest,
            },
        }))
    }

    fn diff(d: &DesiredImage, o: &ObservedImage) -> Vec<Change> {
        // The digest is an output: a moved tracked tag changes the outputs, not the image.
        match &d.moving_tag {
            Some(m) if o.moving_tag_digest.as_deref() != Some(o.digest.as_str()) => {
                vec![Change::new(
                    MOVING_TAG,
                    o.moving_tag_digest
                        .as_ref()
                        .map(|old| json!(format!("{m} -> {old}"))),
                    Some(json!(format!("{m} -> {}", o.digest))),
                )]
            }
            _ => Vec::new(),
        }
    }

    fn outputs(d: &DesiredImage, o: &ObservedImage) -> Outputs {
        Outputs::from([
            ("digest".to_string(), o.digest.clone()),
            (
                "imageUri".to_string(),
                format!("{}@{}", d.repository_uri, o.digest),
            ),
            ("tag".to_string(), o.tag.clone()),
        ])
    }

    async fn create(&self, d: &DesiredImage) -> Result<()> {
        self.create_observed(d).await.map(|_| ())
    }

    /// A push answers with the digest ECR stored under both tags: nothing to read back.
    async fn create_observed(&self, d: &DesiredImage) -> Result<Option<Observed<ObservedImage>>> {
        match &d.source {
            ImageSource::Track { tag } => Err(ReconcileError::waiting(
                Reason::ImageNotFound,
                format!("image {}:{tag} not found", d.repository),
            )),
            ImageSource::Build {
                context,
                command,
                timeout,
            } => {
                let before = hash(context.clone())
                    .await
                    .map_err(|e| context_error(context, e))?;
                let tag = build_tag(&build_id(&before, command));
                tracing::info!(context = %context.display(), tag, "building image");
                let built = run_builder(command, context, *timeout).await?;
                let after = hash(context.clone())
                    .await
                    .map_err(|e| context_error(context, e))?;
                if after != before {
                    return Err(ReconcileError::recoverable(
                        Reason::ContextChanged,
                        format!(
                            "build context {} changed during build; building again",
                            context.display()
                        ),
                    ));
                }
                let (layout, image) = select(built.out.clone()).await?;
                self.push(d, layout, &image, &tag).await.map(Some)
                // `built` (the build directory) is removed here.
            }
            ImageSource::Layout { path } => {
                if !path.exists() {
                    return Err(ReconcileError::waiting(
                        Reason::LayoutNotFound,
                        format!(
                            "OCI image layout {} not found; spec.ociLayout is relative to the manifest's directory",
                            path.display()
                        ),
                    ));
                }
                let (layout, image) = select(path.clone()).await?;
                let tag = layout_tag(&image.digest);
                self.push(d, layout, &image, &tag).await.map(Some)
            }
        }
    }

    async fn update(
        &self,
        d: &DesiredImage,
        o: &Observed<ObservedImage>,
        changes: &[Change],
    ) -> Result<()> {
        if let Some(moving) = tag_to_move(d, changes) {
            retag(&self.ctx.aws.ecr, &d.repository, &o.resource.digest, moving).await?;
        }
        Ok(())
    }

    /// With policy Delete (the default is Retain): the image itself, by digest, with every
    /// tag on it. An image already gone is done.
    async fn delete(&self, d: &DesiredImage, o: &ObservedImage) -> Result<()> {
        let action = format!("BatchDeleteImage {}@{}", d.repository, o.digest);
        let out = write_result(
            action.clone(),
            self.ctx
                .aws
                .ecr
                .batch_delete_image()
                .repository_name(&d.repository)
                .image_ids(
                    aws_sdk_ecr::types::ImageIdentifier::builder()
                        .image_digest(&o.digest)
                        .build(),
                )
                .send()
                .await,
        )?;
        let failure = out.as_ref().and_then(|out| {
            out.failures().iter().find(|f| {
                f.failure_code() != Some(&aws_sdk_ecr::types::ImageFailureCode::ImageNotFound)
            })
        });
        match failure {
            None => Ok(()),
            Some(f) => Err(ReconcileError::recoverable(
                f.failure_code()
                    .map_or(Reason::ImageDeleteFailed, |c| Reason::aws(c.as_str())),
                format!(
                    "{action}: {}",
                    f.failure_reason().unwrap_or("ECR did not delete the image")
                ),
            )),
        }
    }
}

/// The field `diff` names when the moving tag points elsewhere.
const MOVING_TAG: &str = "spec.movingTag";

/// The tag an update points at the image: the moving tag, when the changes name it (the
/// image itself is immutable; a different one is a create).
fn tag_to_move<'d>(d: &'d DesiredImage, changes: &[Change]) -> Option<&'d str> {
    d.moving_tag
        .as_deref()
        .filter(|_| changed(changes, MOVING_TAG))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    /// An update moves the moving tag when its change list names it, and writes nothing else.
    #[test]
    fn update_writes_what_the_changes_name() {
        let d = |moving: Option<&str>| DesiredImage {
            repository: "mcp-server".into(),
            repository_uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp-server".into(),
            source: ImageSource::Track {
                tag: "latest".into(),
            },
            moving_tag: moving.map(String::from),
        };
        let moved = vec![Change::new(MOVING_TAG, None, None)];
        let other = vec![Change::new("spec.tag", None, None)];
        let cases = [
            (d(Some("latest")), vec![], None),
            (d(Some("latest")), other.clone(), None),
            (d(Some("latest")), moved.clone(), Some("latest")),
            (d(None), moved, None),
        ];
        for (desired, changes, want) in cases {
            assert_eq!(tag_to_move(&desired, &changes), want, "{changes:?}");
        }
    }

    use super::*;
    use crate::kinds::ObjectKey;

    #[test]
    fn tags() {
        let cases = [
            ("latest", true),
            ("v1.2.3", true),
            ("_build-7", true),
            ("sha-abc_DEF", true),
            ("", false),
            (".hidden", false),
            ("-dash", false),
            ("with space", false),
            ("a:b", false),
            ("a/b", false),
        ];
        for (tag, ok) in cases {
            assert_eq!(is_image_tag(tag), ok, "{tag}");
        }
        assert!(is_image_tag(&"a".repeat(128)));
        assert!(!is_image_tag(&"a".repeat(129)));
    }

    #[test]
    fn content_tags() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(build_tag(id), "build-0123456789abcdef0123");
        assert_eq!(
            layout_tag(&format!("sha256:{id}")),
            "oci-0123456789abcdef0123"
        );
        for t in [build_tag(id), layout_tag(id)] {
            assert!(is_image_tag(&t), "{t}");
        }
    }

    fn parse(yaml: &str) -> ImageSpec {
        let docs = crate::model::yaml::parse_documents(yaml).expect("yaml");
        crate::model::de::from_node(&docs[0], "spec").expect("spec")
    }

    #[test]
    fn validation_table() {
        let build = "repositoryRef: r\nbuild:\n  context: ./app\n  command: make {context} {out}\n";
        let cases: Vec<(String, Vec<&str>)> = vec![
            ("repositoryRef: mcp-server\n".into(), vec![]),
            ("repositoryRef: r\ntag: v1\n".into(), vec![]),
            ("repositoryRef: ''\n".into(), vec!["spec.repositoryRef"]),
            ("repositoryRef: r\ntag: bad tag\n".into(), vec!["spec.tag"]),
            (
                "repositoryRef: ''\ntag: '.'\n".into(),
                vec!["spec.repositoryRef", "spec.tag"],
            ),
            (build.into(), vec![]),
            (format!("{build}movingTag: latest\n"), vec![]),
            (format!("{build}  timeout: 20m\n"), vec![]),
            (
                format!("{build}  timeout: soon\n"),
                vec!["spec.build.timeout"],
            ),
            (
                format!("{build}  timeout: 2d\n"),
                vec!["spec.build.timeout"],
            ),
            (format!("{build}tag: latest\n"), vec!["spec.tag"]),
            (
                format!("{build}movingTag: 'no good'\n"),
                vec!["spec.movingTag"],
            ),
            (
                format!("{build}movingTag: build-1\n"),
                vec!["spec.movingTag"],
            ),
            (format!("{build}ociLayout: x.tar\n"), vec!["spec.ociLayout"]),
            (
                "repositoryRef: r\nbuild: { context: '', command: '  ' }\n".into(),
                vec!["spec.build.context", "spec.build.command"],
            ),
            (
                "repositoryRef: r\nbuild: { context: ., command: docker build . }\n".into(),
                vec!["spec.build.command"],
            ),
            (
                "repositoryRef: r\nociLayout: image.tar\nmovingTag: latest\n".into(),
                vec![],
            ),
            (
                "repositoryRef: r\nociLayout: ''\n".into(),
                vec!["spec.ociLayout"],
            ),
            (
                "repositoryRef: r\nmovingTag: latest\n".into(),
                vec!["spec.movingTag"],
            ),
        ];
        for (yaml, want) in cases {
            let mut problems = Vec::new();
            Image::validate("img", &parse(&yaml), &mut problems);
            let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
            assert_eq!(paths, want, "{yaml}: {problems:?}");
        }
    }

    #[test]
    fn diff_and_outputs() {
        let d = DesiredImage {
            repository: "mcp-server".into(),
            repository_uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp-server".into(),
            source: ImageSource::Track {
                tag: "latest".into(),
            },
            moving_tag: None,
        };
        let o = ObservedImage {
            digest: "sha256:abc".into(),
            tag: "latest".into(),
            moving_tag_digest: None,
        };
        assert_eq!(Image::diff(&d, &o), vec![]);
        let out = Image::outputs(&d, &o);
        crate::kinds::assert_declared_outputs::<Image>(&out);
        assert_eq!(out["digest"], "sha256:abc");
        assert_eq!(
            out["imageUri"],
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp-server@sha256:abc"
        );
        assert_eq!(out["tag"], "latest");

        // A moving tag that points elsewhere (or nowhere) is drift.
        let d = DesiredImage {
            moving_tag: Some("latest".into()),
            ..d
        };
        let cases = [
            (Some("sha256:abc"), vec![]),
            (
                Some("sha256:old"),
                vec![Change::new(
                    "spec.movingTag",
                    Some(json!("latest -> sha256:old")),
                    Some(json!("latest -> sha256:abc")),
                )],
            ),
            (
                None,
                vec![Change::new(
                    "spec.movingTag",
                    None,
                    Some(json!("latest -> sha256:abc")),
                )],
            ),
        ];
        for (moving, want) in cases {
            let o = ObservedImage {
                digest: "sha256:abc".into(),
                tag: "build-0123".into(),
                moving_tag_digest: moving.map(String::from),
            };
            assert_eq!(Image::diff(&d, &o), want, "{moving:?}");
            assert_eq!(Image::outputs(&d, &o)["tag"], "build-0123");
        }
    }

    fn ctx() -> Arc<Ctx> {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        Arc::new(Ctx {
            aws: crate::aws::Aws {
                region: "us-east-1".into(),
                account_id: "123456789012".into(),
                calls: Default::default(),
                lists: Default::default(),
                cognito: aws_sdk_cognitoidentityprovider::Client::new(&config),
                iam: aws_sdk_iam::Client::new(&config),
                ecr: aws_sdk_ecr::Client::new(&config),
                agentcore: aws_sdk_bedrockagentcorecontrol::Client::new(&config),
                secrets: aws_sdk_secretsmanager::Client::new(&config),
                ssm: aws_sdk_ssm::Client::new(&config),
            },
            owner: "test".into(),
        })
    }

    fn repo_outputs() -> BTreeMap<ObjectKey, Outputs> {
        BTreeMap::from([(
            ObjectKey::new("Repository", "repo"),
            Outputs::from([
                ("name".to_string(), "mcp-server".to_string()),
                ("repositoryUri".to_string(), "u/mcp-server".to_string()),
            ]),
        )])
    }

    #[test]
    fn references_defaults_and_resolve() {
        let spec = parse("repositoryRef: repo\n");
        assert_eq!(spec.tag, None);
        assert_eq!(
            Image::references(&spec),
            vec![Reference::new("spec.repositoryRef", "Repository", "repo")]
        );
        let kind = Image::new(ctx());
        let meta = ObjectMeta {
            name: "img".into(),
            ..Default::default()
        };
        let key = ObjectKey::new("Repository", "repo");
        // Waits until the repository reports both outputs.
        let mut outputs = BTreeMap::new();
        for partial in [
            None,
            Some(Outputs::from([(
                "name".to_string(),
                "mcp-server".to_string(),
            )])),
        ] {
            if let Some(p) = partial {
                outputs.insert(key.clone(), p);
            }
            let err = kind
                .resolve(&meta, &spec, &Deps::new(&outputs))
                .expect_err("waits");
            assert_eq!(err.severity, crate::error::Severity::Waiting);
        }
        let outputs = repo_outputs();
        let d = kind
            .resolve(&meta, &spec, &Deps::new(&outputs))
            .expect("resolves");
        assert_eq!(
            d,
            DesiredImage {
                repository: "mcp-server".into(),
                repository_uri: "u/mcp-server".into(),
                source: ImageSource::Track {
                    tag: "latest".into()
                },
                moving_tag: None,
            }
        );
    }

    #[test]
    fn paths_resolve_against_the_manifest_directory() {
        let kind = Image::new(ctx());
        let outputs = repo_outputs();
        let deps = Deps::new(&outputs);
        let meta = ObjectMeta {
            name: "img".into(),
            base_dir: Some(PathBuf::from("/srv/stack/manifests")),
            ..Default::default()
        };
        let cases = [
            (
                "repositoryRef: repo\nbuild: { context: ../server, command: 'b {out}', timeout: 90s }\nmovingTag: latest\n",
                ImageSource::Build {
                    context: PathBuf::from("/srv/stack/manifests/../server"),
                    command: "b {out}".into(),
                    timeout: Duration::from_secs(90),
                },
            ),
            (
                "repositoryRef: repo\nbuild: { context: /abs/ctx, command: 'b {out}' }\n",
                ImageSource::Build {
                    context: PathBuf::from("/abs/ctx"),
                    command: "b {out}".into(),
                    timeout: DEFAULT_BUILD_TIMEOUT,
                },
            ),
            (
                "repositoryRef: repo\nociLayout: out/image.tar\n",
                ImageSource::Layout {
                    path: PathBuf::from("/srv/stack/manifests/out/image.tar"),
                },
            ),
        ];
        for (yaml, want) in cases {
            let d = kind.resolve(&meta, &parse(yaml), &deps).expect("resolves");
            assert_eq!(d.source, want, "{yaml}");
        }
    }

    #[tokio::test]
    async fn tracking_create_waits_and_a_missing_context_is_said() {
        let kind = Image::new(ctx());
        let d = DesiredImage {
            repository: "mcp-server".into(),
            repository_uri: "u".into(),
            source: ImageSource::Track {
                tag: "latest".into(),
            },
            moving_tag: None,
        };
        let err = kind.create(&d).await.expect_err("never creates");
        assert_eq!(
            err,
            ReconcileError::waiting(Reason::ImageNotFound, "image mcp-server:latest not found")
        );
        // A build whose context is missing says so, before any AWS call.
        let d = DesiredImage {
            source: ImageSource::Build {
                context: PathBuf::from("/nonexistent/context"),
                command: "b {out}".into(),
                timeout: Duration::from_secs(5),
            },
            ..d
        };
        assert_eq!(kind.observe(&d).await.map(|o| o.is_none()), Ok(true));
        let err = kind.create(&d).await.expect_err("no context");
        assert_eq!(err.reason, Reason::ContextNotFound);
        assert!(err.is_terminal());
    }
}
