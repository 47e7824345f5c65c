//! `Repository`: an ECR repository for the MCP server's container image, with scan on
//! push, tag mutability and an optional "keep the last N images" lifecycle rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ecr::types::{
    ImageScanningConfiguration, ImageTagMutability, Repository as EcrRepository, Tag,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::policy::sort_keys;
use super::{Change, Ctx, Deps, Kind, ObjectMeta, Observed, Outputs, Reference, changed, compare};
use crate::error::{Reason, ReconcileError, Result, aws_err, read_result, write_result};
use crate::memo::{Memo, time_stamp};
use crate::model::de::FieldProblem;
use crate::model::permissions::{Grant, Scope};

fn default_true() -> bool {
    true
}

/// Whether a tag can be pushed again to point at another image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum TagMutability {
    #[default]
    Mutable,
    Immutable,
}

impl TagMutability {
    fn as_str(self) -> &'static str {
        match self {
            TagMutability::Mutable => "MUTABLE",
            TagMutability::Immutable => "IMMUTABLE",
        }
    }

    fn sdk(self) -> ImageTagMutability {
        match self {
            TagMutability::Mutable => ImageTagMutability::Mutable,
            TagMutability::Immutable => ImageTagMutability::Immutable,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleSpec {
    /// Expire images beyond the newest N (1 to 1000), tagged or not.
    pub keep_last_images: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositorySpec {
    /// The repository's name in ECR (2-256 characters: lowercase letters and digits in
    /// components separated by `.`, `_` or `-`, optionally under `/` namespaces).
    /// Defaults to metadata.name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_name: Option<String>,
    /// Scan each image for vulnerabilities when it is pushed. Default true.
    #[serde(default = "default_true")]
    pub scan_on_push: bool,
    /// MUTABLE (default) or IMMUTABLE: whether a pushed tag may be moved to another image.
    #[serde(default)]
    pub image_tag_mutability: TagMutability,
    /// Lifecycle rule; when absent the repository has no lifecycle policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleSpec>,
    /// Delete the repository even when it still holds images. Default false.
    #[serde(default)]
    pub force_delete: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRepository {
    pub name: String,
    pub scan_on_push: bool,
    pub image_tag_mutability: TagMutability,
    /// The lifecycle policy document, normalised; `None` for no policy.
    pub lifecycle_policy: Option<Value>,
    pub force_delete: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRepository {
    pub arn: String,
    pub uri: String,
    pub name: String,
    pub scan_on_push: bool,
    /// As ECR reports it (it also knows MUTABLE_WITH_EXCLUSION and IMMUTABLE_WITH_EXCLUSION).
    pub image_tag_mutability: String,
    /// Normalised; a text that is not JSON is kept as a string.
    pub lifecycle_policy: Option<Value>,
}

/// The lifecycle policy for "keep the last `n` images", normalised.
pub fn lifecycle_policy(n: u32) -> Value {
    normalize_lifecycle(&json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("keep the last {n} images"),
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": n
            },
            "action": {"type": "expire"}
        }]
    }))
}

/// Canonical form of a lifecycle policy: rules by priority, tag prefix and pattern lists
/// sorted, keys sorted.
pub fn normalize_lifecycle(doc: &Value) -> Value {
    let mut doc = sort_keys(doc);
    if let Some(rules) = doc.get_mut("rules").and_then(Value::as_array_mut) {
        rules.sort_by_key(|r| {
            r.get("rulePriority")
                .and_then(Value::as_i64)
                .unwrap_or(i64::MAX)
        });
        for rule in rules.iter_mut() {
            if let Some(selection) = rule.get_mut("selection").and_then(Value::as_object_mut) {
                for key in ["tagPrefixList", "tagPatternList"] {
                    if let Some(list) = selection.get_mut(key).and_then(Value::as_array_mut) {
                        list.sort_by_key(|v| v.to_string());
                    }
                }
            }
        }
    }
    doc
}

fn parse_lifecycle(text: &str) -> Value {
    serde_json::from_str::<Value>(text)
        .map(|doc| normalize_lifecycle(&doc))
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

/// How a lifecycle policy is shown in a change: `{keepLastImages: N}` when it is exactly
/// the policy this kind writes, the whole document otherwise.
fn lifecycle_view(policy: &Value) -> Value {
    let n = policy
        .pointer("/rules/0/selection/countNumber")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok());
    match n {
        Some(n) if *policy == lifecycle_policy(n) => json!({ "keepLastImages": n }),
        _ => policy.clone(),
    }
}

pub use super::names::is_repository_name;

/// The SDK leaves `scanOnPush: false` (the default) out, sending
/// `imageScanningConfiguration: {}`. AWS reads that as false; moto ignores an empty
/// configuration and keeps scanning on. Writing the false explicitly works with both.
pub fn explicit_scan_on_push(req: &mut HttpRequest) {
    let Some(mut body) = req
        .body()
        .bytes()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
    else {
        return;
    };
    let Some(config) = body
        .get_mut("imageScanningConfiguration")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if config.contains_key("scanOnPush") {
        return;
    }
    config.insert("scanOnPush".to_string(), Value::Bool(false));
    let text = body.to_string();
    req.headers_mut()
        .insert("content-length", text.len().to_string());
    *req.body_mut() = SdkBody::from(text);
}

fn tag(k: String, v: String) -> Result<Tag> {
    Tag::builder()
        .key(k)
        .value(v)
        .build()
        .map_err(|e| ReconcileError::terminal(Reason::InvalidTag, e.to_string()))
}

/// What tells one repository from another of the same name made since (whose tags are
/// then its own): its ARN and when it was created.
fn identity_stamp(repo: &aws_sdk_ecr::types::Repository) -> String {
    format!(
        "{} {}",
        repo.repository_arn().unwrap_or_default(),
        repo.created_at().map(time_stamp).unwrap_or_default()
    )
}

pub struct Repository {
    ctx: Arc<Ctx>,
    /// Whether each repository carried the owner tag when its tags were last read, by
    /// name: tags change rarely, and only the controller's own tagging matters to it
    /// (forgotten when it writes), so they are read at most every
    /// [`MEMO_MAX_AGE`](crate::memo::MEMO_MAX_AGE), not at every observe.
    owned: Memo<bool>,
}

impl Repository {
    async fn put_lifecycle(&self, name: &str, policy: &Value) -> Result<()> {
        self.ctx
            .aws
            .ecr
            .put_lifecycle_policy()
            .repository_name(name)
            .lifecycle_policy_text(policy.to_string())
            .send()
            .await
            .map_err(aws_err(format!("PutLifecyclePolicy {name}")))?;
        Ok(())
    }
}

/// Every repository, by name, across all pages of DescribeRepositories.
async fn list_repositories(ecr: &aws_sdk_ecr::Client) -> Result<BTreeMap<String, EcrRepository>> {
    let mut all = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let page = ecr
            .describe_repositories()
            .max_results(1000)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(aws_err("DescribeRepositories"))?;
        for repo in page.repositories() {
            if let Some(name) = repo.repository_name() {
                all.insert(name.to_string(), repo.clone());
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(all),
        }
    }
}

/// DescribeRepositories of one repository; `None` when there is none by that name.
async fn describe_repository(
    ecr: &aws_sdk_ecr::Client,
    name: &str,
) -> Result<Option<EcrRepository>> {
    let described = ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await;
    let Some(described) = read_result(format!("DescribeRepositories {name}"), described)? else {
        return Ok(None);
    };
    Ok(described
        .repositories()
        .iter()
        .find(|r| r.repository_name() == Some(name))
        .cloned())
}

#[async_trait]
impl Kind for Repository {
    const KIND: &'static str = "Repository";
    const LANE: &'static str = "ecr";
    const OUTPUTS: &'static [&'static str] = &["repositoryUri", "arn", "name"];
    type Spec = RepositorySpec;
    type Desired = DesiredRepository;
    type Observed = ObservedRepository;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            owned: Memo::default(),
        }
    }

    fn aws_name(meta: &ObjectMeta, spec: &RepositorySpec) -> Option<String> {
        Some(desired_repository(meta, spec).name)
    }

    fn permissions(meta: &ObjectMeta, spec: &RepositorySpec, scope: &Scope) -> Vec<Grant> {
        let name = desired_repository(meta, spec).name;
        vec![
            // The shared listing of the account's repositories.
            Grant::new(
                &["ecr:DescribeRepositories"],
                vec![scope.arn("ecr", "repository/*")],
            ),
            Grant::new(
                &[
                    "ecr:CreateRepository",
                    "ecr:TagResource",
                    "ecr:ListTagsForResource",
                    "ecr:GetLifecyclePolicy",
                    "ecr:PutLifecyclePolicy",
                    "ecr:DeleteLifecyclePolicy",
                    "ecr:PutImageScanningConfiguration",
                    "ecr:PutImageTagMutability",
                    "ecr:DeleteRepository",
                ],
                vec![scope.arn("ecr", &format!("repository/{name}"))],
            ),
        ]
    }

    fn references(_spec: &RepositorySpec) -> Vec<Reference> {
        Vec::new()
    }

    fn validate(name: &str, spec: &RepositorySpec, problems: &mut Vec<FieldProblem>) {
        const RULE: &str = "2-256 characters: lowercase letters and digits, separated by single . _ or -, \
                            in /-separated components (e.g. mcp-server or team/mcp_server)";
        match &spec.repository_name {
            Some(repo) if !is_repository_name(repo) => problems.push(FieldProblem::new(
                "spec.repositoryName",
                format!("`{repo}` is not a valid repository name: {RULE}"),
            )),
            None if !is_repository_name(name) => problems.push(FieldProblem::new(
                "metadata.name",
                format!("metadata.name `{name}` is not a valid repository name ({RULE}); set spec.repositoryName"),
            )),
            _ => {}
        }
        if let Some(lifecycle) = &spec.lifecycle
            && !(1..=1000).contains(&lifecycle.keep_last_images)
        {
            problems.push(FieldProblem::new(
                "spec.lifecycle.keepLastImages",
                format!("{} is out of range: 1 to 1000", lifecycle.keep_last_images),
            ));
        }
    }

    fn resolve(
        &self,
        meta: &ObjectMeta,
        spec: &RepositorySpec,
        _deps: &Deps<'_>,
    ) -> Result<DesiredRepository> {
        Ok(desired_repository(meta, spec))
    }

    /// The repository from the shared listing when it holds it and nothing was written to
    /// it since the listing began, or absent when a listing begun after this call does not
    /// hold it; otherwise (created or changed since) described directly, so absence is
    /// never an old answer. Its tags and lifecycle policy are read
    /// every time.
    async fn observe(&self, d: &DesiredRepository) -> Result<Option<Observed<ObservedRepository>>> {
        let ecr = &self.ctx.aws.ecr;
        let name = &d.name;
        let lists = &self.ctx.aws.lists;
        let asked = tokio::time::Instant::now();
        let listed = lists
            .repositories
            .lookup(None, || list_repositories(ecr), |m| m.get(name).cloned())
            .await;
        // A listing refused (a policy scoped to the manifests' repositories) or failing:
        // the repository is read on its own.
        let listed = listed
            .inspect_err(|e| tracing::debug!(error = %e, "repositories are read one by one"))
            .ok()
            .filter(|l| !lists.repositories_written.since(name, l.listed_at));
        let repo = match listed.map(|l| (l.value, l.listed_at)) {
            Some((Some(repo), _)) => repo,
            // Not in a listing begun after this call: there is none.
            Some((None, listed_at)) if listed_at >= asked => return Ok(None),
            _ => match describe_repository(ecr, name).await? {
                Some(repo) => repo,
                None => return Ok(None),
            },
        };
        let arn = repo.repository_arn().unwrap_or_default().to_string();
        let stamp = identity_stamp(&repo);
        let owned = match self.owned.get(name, &stamp) {
            Some(recalled) => recalled.value,
            None => {
                let tags = ecr.list_tags_for_resource().resource_arn(&arn).send().await;
                let Some(tags) = read_result(format!("ListTagsForResource {name}"), tags)? else {
                    return Ok(None);
                };
                let owned = self
                    .ctx
                    .owns(tags.tags().iter().map(|t| (t.key(), t.value())));
                self.owned.put(name, stamp, owned);
                owned
            }
        };
        let lifecycle_policy = match ecr
            .get_lifecycle_policy()
            .repository_name(name)
            .send()
            .await
        {
            // A repository without a lifecycle policy.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_lifecycle_policy_not_found_exception()) =>
            {
                None
            }
            got => match read_result(format!("GetLifecyclePolicy {name}"), got)? {
                Some(out) => out.lifecycle_policy_text().map(parse_lifecycle),
                None => return Ok(None),
            },
        };
        Ok(Some(Observed {
            owned,
            resource: ObservedRepository {
                arn,
                uri: repo.repository_uri().unwrap_or_default().to_string(),
                name: name.clone(),
                scan_on_push: repo
                    .image_scanning_configuration()
                    .is_some_and(|c| c.scan_on_push()),
                image_tag_mutability: repo
                    .image_tag_mutability()
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_else(|| "MUTABLE".to_string()),
                lifecycle_policy,
            },
        }))
    }

    fn diff(d: &DesiredRepository, o: &ObservedRepository) -> Vec<Change> {
        let mut changes = Vec::new();
        compare(&mut changes, SCAN_ON_PUSH, &o.scan_on_push, &d.scan_on_push);
        compare(
            &mut changes,
            IMAGE_TAG_MUTABILITY,
            &o.image_tag_mutability.as_str(),
            &d.image_tag_mutability.as_str(),
        );
        if o.lifecycle_policy != d.lifecycle_policy {
            changes.push(Change::new(
                LIFECYCLE,
                o.lifecycle_policy.as_ref().map(lifecycle_view),
                d.lifecycle_policy.as_ref().map(lifecycle_view),
            ));
        }
        changes
    }

    fn outputs(_d: &DesiredRepository, o: &ObservedRepository) -> Outputs {
        Outputs::from([
            ("repositoryUri".to_string(), o.uri.clone()),
            ("arn".to_string(), o.arn.clone()),
            ("name".to_string(), o.name.clone()),
        ])
    }

    async fn create(&self, d: &DesiredRepository) -> Result<()> {
        self.create_observed(d).await.map(|_| ())
    }

    /// CreateRepository answers with the repository as DescribeRepositories would; the tags
    /// and the lifecycle policy are what it was given.
    async fn create_observed(
        &self,
        d: &DesiredRepository,
    ) -> Result<Option<Observed<ObservedRepository>>> {
        let name = &d.name;
        let mut req = self
            .ctx
            .aws
            .ecr
            .create_repository()
            .repository_name(name)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(d.scan_on_push)
                    .build(),
            )
            .image_tag_mutability(d.image_tag_mutability.sdk());
        for (k, v) in self.ctx.owner_tags() {
            req = req.tags(tag(k, v)?);
        }
        // RepositoryAlreadyExistsException (created since observe) observes again.
        let created = req
            .customize()
            .mutate_request(explicit_scan_on_push)
            .send()
            .await
            .map_err(aws_err(format!("CreateRepository {name}")))?;
        if let Some(policy) = &d.lifecycle_policy {
            self.put_lifecycle(name, policy).await?;
        }
        let Some(repo) = created.repository() else {
            return Ok(None);
        };
        // Created with the owner tag.
        self.owned.put(name, identity_stamp(repo), true);
        Ok(Some(Observed {
            owned: true,
            resource: ObservedRepository {
                arn: repo.repository_arn().unwrap_or_default().to_string(),
                uri: repo.repository_uri().unwrap_or_default().to_string(),
                name: name.clone(),
                scan_on_push: d.scan_on_push,
                image_tag_mutability: d.image_tag_mutability.sdk().as_str().to_string(),
                lifecycle_policy: d.lifecycle_policy.clone(),
            },
        }))
    }

    async fn update(
        &self,
        d: &DesiredRepository,
        o: &Observed<ObservedRepository>,
        changes: &[Change],
    ) -> Result<()> {
        let ecr = &self.ctx.aws.ecr;
        let (name, obs) = (&d.name, &o.resource);
        for write in planned_writes(d, changes) {
            match write {
                RepositoryWrite::Tag => {
                    self.owned.forget(name);
                    let mut req = ecr.tag_resource().resource_arn(&obs.arn);
                    for (k, v) in self.ctx.owner_tags() {
                        req = req.tags(tag(k, v)?);
                    }
                    req.send()
                        .await
                        .map_err(aws_err(format!("TagResource {name}")))?;
                }
                RepositoryWrite::PutImageScanningConfiguration => {
                    ecr.put_image_scanning_configuration()
                        .repository_name(name)
                        .image_scanning_configuration(
                            ImageScanningConfiguration::builder()
                                .scan_on_push(d.scan_on_push)
                                .build(),
                        )
                        .customize()
                        .mutate_request(explicit_scan_on_push)
                        .send()
                        .await
                        .map_err(aws_err(format!("PutImageScanningConfiguration {name}")))?;
                }
                RepositoryWrite::PutImageTagMutability => {
                    ecr.put_image_tag_mutability()
                        .repository_name(name)
                        .image_tag_mutability(d.image_tag_mutability.sdk())
                        .send()
                        .await
                        .map_err(aws_err(format!("PutImageTagMutability {name}")))?;
                }
                RepositoryWrite::PutLifecyclePolicy => {
                    if let Some(policy) = &d.lifecycle_policy {
                        self.put_lifecycle(name, policy).await?;
                    }
                }
                RepositoryWrite::DeleteLifecyclePolicy => {
                    let deleted = ecr
                        .delete_lifecycle_policy()
                        .repository_name(name)
                        .send()
                        .await;
                    write_result(format!("DeleteLifecyclePolicy {name}"), deleted)?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, d: &DesiredRepository, _o: &ObservedRepository) -> Result<()> {
        let name = &d.name;
        self.owned.forget(name);
        match self
            .ctx
            .aws
            .ecr
            .delete_repository()
            .repository_name(name)
            .force(d.force_delete)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_repository_not_empty_exception()) =>
            {
                Err(ReconcileError::stays(
                    Reason::aws("RepositoryNotEmptyException"),
                    "kept: it still holds images that no Image with deletion policy Delete \
                     takes along; delete them, or set spec.forceDelete: true to delete the \
                     repository with its images",
                ))
            }
            Err(e) => write_result(format!("DeleteRepository {name}"), Err::<(), _>(e)).map(drop),
        }
    }
}

/// The desired repository from its spec. Pure.
pub fn desired_repository(meta: &ObjectMeta, spec: &RepositorySpec) -> DesiredRepository {
    DesiredRepository {
        name: spec
            .repository_name
            .clone()
            .unwrap_or_else(|| meta.name.clone()),
        scan_on_push: spec.scan_on_push,
        image_tag_mutability: spec.image_tag_mutability,
        lifecycle_policy: spec.lifecycle.map(|l| lifecycle_policy(l.keep_last_images)),
        force_delete: spec.force_delete,
    }
}

/// The fields `diff` names and `update` writes.
const SCAN_ON_PUSH: &str = "spec.scanOnPush";
const IMAGE_TAG_MUTABILITY: &str = "spec.imageTagMutability";
const LIFECYCLE: &str = "spec.lifecycle";

/// One ECR write an update makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RepositoryWrite {
    /// TagResource: our owner tag (adoption).
    Tag,
    PutImageScanningConfiguration,
    PutImageTagMutability,
    PutLifecyclePolicy,
    DeleteLifecyclePolicy,
}

/// The writes that make the repository match, for what `changes` name.
fn planned_writes(d: &DesiredRepository, changes: &[Change]) -> Vec<RepositoryWrite> {
    let mut writes = Vec::new();
    if changes.iter().any(Change::is_adoption) {
        writes.push(RepositoryWrite::Tag);
    }
    if changed(changes, SCAN_ON_PUSH) {
        writes.push(RepositoryWrite::PutImageScanningConfiguration);
    }
    if changed(changes, IMAGE_TAG_MUTABILITY) {
        writes.push(RepositoryWrite::PutImageTagMutability);
    }
    if changed(changes, LIFECYCLE) {
        writes.push(match d.lifecycle_policy {
            Some(_) => RepositoryWrite::PutLifecyclePolicy,
            None => RepositoryWrite::DeleteLifecyclePolicy,
        });
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writes an update makes are the ones its change list names, and nothing else.
    #[test]
    fn update_writes_what_the_changes_name() {
        use RepositoryWrite::*;
        let with_policy = desired_repository(
            &meta("r"),
            &RepositorySpec {
                lifecycle: Some(LifecycleSpec {
                    keep_last_images: 5,
                }),
                ..spec()
            },
        );
        let without = desired_repository(&meta("r"), &spec());
        let field = |f: &str| Change::new(f, None, None);
        let cases: Vec<(&DesiredRepository, Vec<Change>, Vec<RepositoryWrite>)> = vec![
            (&with_policy, vec![], vec![]),
            (&with_policy, vec![Change::adoption()], vec![Tag]),
            (
                &with_policy,
                vec![field(SCAN_ON_PUSH)],
                vec![PutImageScanningConfiguration],
            ),
            (
                &with_policy,
                vec![field(IMAGE_TAG_MUTABILITY)],
                vec![PutImageTagMutability],
            ),
            (
                &with_policy,
                vec![field(LIFECYCLE)],
                vec![PutLifecyclePolicy],
            ),
            (
                &without,
                vec![field(LIFECYCLE)],
                vec![DeleteLifecyclePolicy],
            ),
            (
                &without,
                vec![
                    Change::adoption(),
                    field(IMAGE_TAG_MUTABILITY),
                    field(SCAN_ON_PUSH),
                ],
                vec![Tag, PutImageScanningConfiguration, PutImageTagMutability],
            ),
        ];
        for (d, changes, want) in cases {
            let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
            assert_eq!(planned_writes(d, &changes), want, "{fields:?}");
        }
    }

    fn spec() -> RepositorySpec {
        RepositorySpec {
            repository_name: None,
            scan_on_push: true,
            image_tag_mutability: TagMutability::Mutable,
            lifecycle: None,
            force_delete: false,
        }
    }

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: name.into(),
            ..Default::default()
        }
    }

    fn converged(d: &DesiredRepository) -> ObservedRepository {
        ObservedRepository {
            arn: format!("arn:aws:ecr:us-east-1:123456789012:repository/{}", d.name),
            uri: format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{}", d.name),
            name: d.name.clone(),
            scan_on_push: d.scan_on_push,
            image_tag_mutability: d.image_tag_mutability.as_str().to_string(),
            lifecycle_policy: d.lifecycle_policy.clone(),
        }
    }

    #[test]
    fn names() {
        let cases = [
            ("mcp-server", true),
            ("mcp_server", true),
            ("team/mcp.server-1", true),
            ("a/b/c", true),
            ("ab", true),
            ("a", false),
            ("Mcp", false),
            ("-mcp", false),
            ("mcp-", false),
            ("mcp--server", false),
            ("mcp._server", false),
            ("/mcp", false),
            ("mcp/", false),
            ("a//b", false),
            ("mcp server", false),
            ("été", false),
        ];
        for (name, ok) in cases {
            assert_eq!(is_repository_name(name), ok, "{name}");
        }
        assert!(is_repository_name(&"a".repeat(256)));
        assert!(!is_repository_name(&"a".repeat(257)));
    }

    #[test]
    fn lifecycle_documents() {
        let written = lifecycle_policy(10);
        assert_eq!(
            written,
            json!({"rules": [{
                "action": {"type": "expire"},
                "description": "keep the last 10 images",
                "rulePriority": 1,
                "selection": {"countNumber": 10, "countType": "imageCountMoreThan", "tagStatus": "any"}
            }]})
        );
        // ECR returns the text it was given, possibly with other spacing and key order.
        let returned = r#"{ "rules" : [ { "selection": {"tagStatus":"any","countNumber":10,
            "countType":"imageCountMoreThan"}, "action":{"type":"expire"}, "rulePriority":1,
            "description":"keep the last 10 images" } ] }"#;
        assert_eq!(parse_lifecycle(returned), written);
        assert_eq!(parse_lifecycle("nope"), json!("nope"));
        assert_eq!(lifecycle_view(&written), json!({"keepLastImages": 10}));
        let other = normalize_lifecycle(&json!({"rules": [
            {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPrefixList": ["b", "a"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
            {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}}
        ]}));
        assert_eq!(other.pointer("/rules/0/rulePriority"), Some(&json!(1)));
        assert_eq!(
            other.pointer("/rules/1/selection/tagPrefixList"),
            Some(&json!(["a", "b"]))
        );
        assert_eq!(lifecycle_view(&other), other);
    }

    #[test]
    fn diff_table() {
        let mut s = spec();
        s.lifecycle = Some(LifecycleSpec {
            keep_last_images: 10,
        });
        let d = desired_repository(&meta("mcp-server"), &s);
        let base = converged(&d);
        type Edit = fn(&mut ObservedRepository);
        let cases: Vec<(Edit, Vec<Change>)> = vec![
            (|_| {}, vec![]),
            (
                |o| o.scan_on_push = false,
                vec![Change::new(
                    "spec.scanOnPush",
                    Some(json!(false)),
                    Some(json!(true)),
                )],
            ),
            (
                |o| o.image_tag_mutability = "IMMUTABLE".into(),
                vec![Change::new(
                    "spec.imageTagMutability",
                    Some(json!("IMMUTABLE")),
                    Some(json!("MUTABLE")),
                )],
            ),
            (
                |o| o.image_tag_mutability = "MUTABLE_WITH_EXCLUSION".into(),
                vec![Change::new(
                    "spec.imageTagMutability",
                    Some(json!("MUTABLE_WITH_EXCLUSION")),
                    Some(json!("MUTABLE")),
                )],
            ),
            (
                |o| o.lifecycle_policy = None,
                vec![Change::new(
                    "spec.lifecycle",
                    None,
                    Some(json!({"keepLastImages": 10})),
                )],
            ),
            (
                |o| o.lifecycle_policy = Some(lifecycle_policy(5)),
                vec![Change::new(
                    "spec.lifecycle",
                    Some(json!({"keepLastImages": 5})),
                    Some(json!({"keepLastImages": 10})),
                )],
            ),
            (
                |o| o.lifecycle_policy = Some(json!({"rules": []})),
                vec![Change::new(
                    "spec.lifecycle",
                    Some(json!({"rules": []})),
                    Some(json!({"keepLastImages": 10})),
                )],
            ),
        ];
        for (i, (edit, want)) in cases.into_iter().enumerate() {
            let mut o = base.clone();
            edit(&mut o);
            assert_eq!(Repository::diff(&d, &o), want, "case {i}");
        }
        // No lifecycle wanted, one present: removed.
        let d = desired_repository(&meta("mcp-server"), &spec());
        let mut o = converged(&d);
        o.lifecycle_policy = Some(lifecycle_policy(3));
        assert_eq!(
            Repository::diff(&d, &o),
            vec![Change::new(
                "spec.lifecycle",
                Some(json!({"keepLastImages": 3})),
                None
            )]
        );
    }

    #[test]
    fn scan_on_push_false_is_written_out() {
        let cases = [
            (
                r#"{"repositoryName":"r","imageScanningConfiguration":{}}"#,
                json!({"repositoryName": "r", "imageScanningConfiguration": {"scanOnPush": false}}),
            ),
            (
                r#"{"repositoryName":"r","imageScanningConfiguration":{"scanOnPush":true}}"#,
                json!({"repositoryName": "r", "imageScanningConfiguration": {"scanOnPush": true}}),
            ),
            (r#"{"repositoryName":"r"}"#, json!({"repositoryName": "r"})),
        ];
        for (body, want) in cases {
            let mut req = HttpRequest::new(SdkBody::from(body));
            explicit_scan_on_push(&mut req);
            let bytes = req.body().bytes().unwrap_or_default();
            let got: Value = serde_json::from_slice(bytes).expect("json");
            assert_eq!(got, want);
            if body.contains("{}") {
                let len = bytes.len().to_string();
                assert_eq!(req.headers().get("content-length"), Some(len.as_str()));
            }
        }
    }

    #[test]
    fn validation_table() {
        type Edit = fn(&mut RepositorySpec);
        let cases: Vec<(&str, Edit, usize)> = vec![
            ("mcp-server", |_| {}, 0),
            ("MCP", |_| {}, 1),
            ("MCP", |s| s.repository_name = Some("mcp".into()), 0),
            ("ok", |s| s.repository_name = Some("Bad".into()), 1),
            (
                "ok",
                |s| {
                    s.lifecycle = Some(LifecycleSpec {
                        keep_last_images: 1,
                    })
                },
                0,
            ),
            (
                "ok",
                |s| {
                    s.lifecycle = Some(LifecycleSpec {
                        keep_last_images: 1000,
                    })
                },
                0,
            ),
            (
                "ok",
                |s| {
                    s.lifecycle = Some(LifecycleSpec {
                        keep_last_images: 0,
                    })
                },
                1,
            ),
            (
                "ok",
                |s| {
                    s.lifecycle = Some(LifecycleSpec {
                        keep_last_images: 1001,
                    })
                },
                1,
            ),
        ];
        for (i, (name, edit, count)) in cases.into_iter().enumerate() {
            let mut s = spec();
            edit(&mut s);
            let mut problems = Vec::new();
            Repository::validate(name, &s, &mut problems);
            assert_eq!(problems.len(), count, "case {i}: {problems:?}");
        }
    }

    #[test]
    fn spec_defaults_from_yaml() {
        let docs =
            crate::model::yaml::parse_documents("lifecycle: {keepLastImages: 5}\n").expect("yaml");
        let s: RepositorySpec = crate::model::de::from_node(&docs[0], "spec").expect("spec");
        assert!(s.scan_on_push);
        assert!(!s.force_delete);
        assert_eq!(s.image_tag_mutability, TagMutability::Mutable);
        assert_eq!(
            s.lifecycle,
            Some(LifecycleSpec {
                keep_last_images: 5
            })
        );
        let docs =
            crate::model::yaml::parse_documents("imageTagMutability: SOMETIMES\n").expect("yaml");
        assert!(crate::model::de::from_node::<RepositorySpec>(&docs[0], "spec").is_err());
    }

    #[test]
    fn declared_outputs_are_the_outputs() {
        crate::kinds::assert_declared_outputs::<Repository>(&{
            let d = desired_repository(&meta("mcp-server"), &spec());
            Repository::outputs(&d, &converged(&d))
        });
    }
}
