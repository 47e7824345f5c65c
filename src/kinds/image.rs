//! `Image`: a tagged image in an ECR repository, tracked rather than managed. The
//! controller never pushes or deletes images; it waits until the tag exists and reports
//! its digest, so that dependents (the runtime) follow the tag when it moves.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ecr::types::ImageIdentifier;
use serde::{Deserialize, Serialize};

use super::{Change, Ctx, DeletionPolicy, Deps, Kind, ObjectMeta, Observed, Outputs, Reference};
use crate::error::{ReconcileError, Result, aws_err};
use crate::manifest::de::FieldProblem;

fn default_tag() -> String {
    "latest".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// metadata.name of the Repository that holds the image.
    pub repository_ref: String,
    /// The image tag (1-128 characters of a-z A-Z 0-9 _ . -, not starting with . or -).
    /// Default `latest`.
    #[serde(default = "default_tag")]
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredImage {
    /// The repository's name in ECR.
    pub repository: String,
    pub repository_uri: String,
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedImage {
    pub digest: String,
}

/// Image tags as Docker and ECR accept them: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_image_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    chars.next().is_some_and(word)
        && tag.len() <= 128
        && chars.all(|c| word(c) || c == '.' || c == '-')
}

pub struct Image {
    ctx: Arc<Ctx>,
}

#[async_trait]
impl Kind for Image {
    const KIND: &'static str = "Image";
    const DEFAULT_DELETION_POLICY: DeletionPolicy = DeletionPolicy::Retain;
    type Spec = ImageSpec;
    type Desired = DesiredImage;
    type Observed = ObservedImage;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    fn references(spec: &ImageSpec) -> Vec<Reference> {
        vec![Reference::new(
            "spec.repositoryRef",
            "Repository",
            &spec.repository_ref,
        )]
    }

    fn validate(_name: &str, spec: &ImageSpec, problems: &mut Vec<FieldProblem>) {
        if spec.repository_ref.is_empty() {
            problems.push(FieldProblem::new(
                "spec.repositoryRef",
                "name the Repository that holds the image (its metadata.name)",
            ));
        }
        if !is_image_tag(&spec.tag) {
            problems.push(FieldProblem::new(
                "spec.tag",
                format!(
                    "`{}` is not a valid image tag: 1-128 characters of a-z A-Z 0-9 _ . -, not starting with . or -",
                    spec.tag
                ),
            ));
        }
    }

    fn resolve(
        &self,
        _meta: &ObjectMeta,
        spec: &ImageSpec,
        deps: &Deps<'_>,
    ) -> Result<DesiredImage> {
        Ok(DesiredImage {
            repository: deps.get("Repository", &spec.repository_ref, "name")?,
            repository_uri: deps.get("Repository", &spec.repository_ref, "repositoryUri")?,
            tag: spec.tag.clone(),
        })
    }

    async fn observe(&self, d: &DesiredImage) -> Result<Option<Observed<ObservedImage>>> {
        let (repo, tag) = (&d.repository, &d.tag);
        let described = match self
            .ctx
            .aws
            .ecr
            .describe_images()
            .repository_name(repo)
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error().is_some_and(|se| {
                    se.is_image_not_found_exception() || se.is_repository_not_found_exception()
                }) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(aws_err(format!("DescribeImages {repo}:{tag}"))(e)),
        };
        let digest = described
            .image_details()
            .iter()
            .find(|i| i.image_tags().iter().any(|t| t == tag))
            .or_else(|| described.image_details().first())
            .and_then(|i| i.image_digest());
        // Images carry no tags: the controller only reads them, so they count as ours.
        Ok(digest.map(|digest| Observed {
            owned: true,
            resource: ObservedImage {
                digest: digest.to_string(),
            },
        }))
    }

    fn diff(_d: &DesiredImage, _o: &ObservedImage) -> Vec<Change> {
        // Nothing to converge: the digest is an output, so a moved tag changes the outputs.
        Vec::new()
    }

    fn outputs(d: &DesiredImage, o: &ObservedImage) -> Outputs {
        Outputs::from([
            ("digest".to_string(), o.digest.clone()),
            (
                "imageUri".to_string(),
                format!("{}@{}", d.repository_uri, o.digest),
            ),
            ("tag".to_string(), d.tag.clone()),
        ])
    }

    async fn create(&self, d: &DesiredImage) -> Result<()> {
        Err(ReconcileError::waiting(
            "ImageNotFound",
            format!("image {}:{} not found", d.repository, d.tag),
        ))
    }

    async fn update(
        &self,
        _d: &DesiredImage,
        _o: &Observed<ObservedImage>,
        _changes: &[Change],
    ) -> Result<()> {
        Ok(())
    }

    async fn delete(&self, _d: &DesiredImage, _o: &ObservedImage) -> Result<()> {
        // Images are never deleted by the controller.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

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
    fn validation_table() {
        let cases = [
            ("mcp-server", "latest", 0),
            ("", "latest", 1),
            ("r", "bad tag", 1),
            ("", ".", 2),
        ];
        for (repo, tag, count) in cases {
            let spec = ImageSpec {
                repository_ref: repo.into(),
                tag: tag.into(),
            };
            let mut problems = Vec::new();
            Image::validate("img", &spec, &mut problems);
            assert_eq!(problems.len(), count, "{repo} {tag}: {problems:?}");
        }
    }

    #[test]
    fn diff_is_empty_and_outputs_follow_the_digest() {
        let d = DesiredImage {
            repository: "mcp-server".into(),
            repository_uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp-server".into(),
            tag: "latest".into(),
        };
        let o = ObservedImage {
            digest: "sha256:abc".into(),
        };
        assert_eq!(Image::diff(&d, &o), vec![]);
        let out = Image::outputs(&d, &o);
        assert_eq!(out["digest"], "sha256:abc");
        assert_eq!(
            out["imageUri"],
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp-server@sha256:abc"
        );
        assert_eq!(out["tag"], "latest");
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

    #[test]
    fn references_defaults_and_resolve() {
        let docs = crate::manifest::yaml::parse_documents("repositoryRef: repo\n").expect("yaml");
        let spec: ImageSpec = crate::manifest::de::from_node(&docs[0], "spec").expect("spec");
        assert_eq!(spec.tag, "latest");
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
        let uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp-server";
        outputs.insert(
            key,
            Outputs::from([
                ("name".to_string(), "mcp-server".to_string()),
                ("repositoryUri".to_string(), uri.to_string()),
            ]),
        );
        let d = kind
            .resolve(&meta, &spec, &Deps::new(&outputs))
            .expect("resolves");
        assert_eq!(
            d,
            DesiredImage {
                repository: "mcp-server".into(),
                repository_uri: uri.into(),
                tag: "latest".into(),
            }
        );
    }

    #[tokio::test]
    async fn create_waits_for_the_image() {
        let kind = Image::new(ctx());
        let d = DesiredImage {
            repository: "mcp-server".into(),
            repository_uri: "u".into(),
            tag: "latest".into(),
        };
        let err = kind.create(&d).await.expect_err("never creates");
        assert_eq!(
            err,
            ReconcileError::waiting("ImageNotFound", "image mcp-server:latest not found")
        );
        let o = ObservedImage {
            digest: "sha256:x".into(),
        };
        assert_eq!(kind.delete(&d, &o).await, Ok(()));
    }
}
