//! End-to-end: Image sources that push (`build`, `ociLayout`) against the AWS emulator,
//! through the controller binary. The builder is `scripts/oci-pack` (no Docker), wrapped
//! so that every run appends a line to a counter file.

use std::path::{Path, PathBuf};

use agentcore_controller::aws::Aws;
use aws_sdk_ecr::types::ImageIdentifier;
use serde_json::Value;
use testkit::*;

fn apply_json(m: &Manifests, extra: &[&str]) -> (i32, Value) {
    let dir = m.arg();
    let mut args = vec!["apply", "-f", &dir, "--output", "json"];
    args.extend_from_slice(extra);
    let out = controller(&args);
    (out.status.code().unwrap_or(-1), json(&out))
}

fn object<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report["objects"]
        .as_array()
        .and_then(|objs| objs.iter().find(|o| o["kind"] == kind && o["name"] == name))
        .unwrap_or_else(|| panic!("no {kind}/{name} in report: {report:#}"))
}

/// Calls of one ECR operation in an apply's report.
fn ecr_calls(report: &Value, operation: &str) -> u64 {
    report["calls"]["by_operation"][format!("ECR:{operation}")]
        .as_u64()
        .unwrap_or(0)
}

fn writes(report: &Value) -> u64 {
    report["calls"]["writes"].as_u64().expect("writes count")
}

fn oci_pack() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/oci-pack")
}

/// Times the counting builder ran.
fn builds(counter: &Path) -> usize {
    std::fs::read_to_string(counter)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

/// The guide's SigV4 stack with the Image document's spec replaced by `image_spec`.
fn stack_with_image(m: &Manifests, names: &StackNames, image_spec: &str) {
    for (file, text) in names.render("manifests-sigv4") {
        let tracked = format!("  repositoryRef: {}\n  tag: latest\n", names.repo);
        assert!(text.contains(&tracked), "the Image document of {file}");
        let text = text.replace(
            &tracked,
            &format!("  repositoryRef: {}\n{image_spec}", names.repo),
        );
        m.write(&file, &text);
    }
}

async fn repository_uri(aws: &Aws, repo: &str) -> String {
    aws.ecr
        .describe_repositories()
        .repository_names(repo)
        .send()
        .await
        .expect("DescribeRepositories")
        .repositories()[0]
        .repository_uri()
        .expect("uri")
        .to_string()
}

/// (digest, tags) of the image `tag` points at, as ECR reports it.
async fn image_by_tag(aws: &Aws, repo: &str, tag: &str) -> (String, Vec<String>) {
    let out = aws
        .ecr
        .describe_images()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeImages {repo}:{tag}: {e:?}"));
    let d = &out.image_details()[0];
    (
        d.image_digest().expect("digest").to_string(),
        d.image_tags().to_vec(),
    )
}

async fn container_uri(aws: &Aws, name: &str) -> String {
    runtime(aws, name)
        .await
        .agent_runtime_artifact()
        .and_then(|a| a.as_container_configuration().ok())
        .map(|c| c.container_uri().to_string())
        .expect("container artifact")
}

#[tokio::test(flavor = "multi_thread")]
async fn build_pushes_once_pins_the_runtime_and_rebuilds_only_on_change() {
    let aws = aws().await;
    let m = Manifests::new();
    let names = StackNames::unique();
    let app = m.path().join("app");
    write(&app.join("server.py"), "print('v1')\n");
    write(&app.join(".dockerignore"), "*.log\n");
    write(&app.join("debug.log"), "noise\n");
    let counter = m.path().join("builds.txt");
    let command = format!(
        "echo run >> '{}' && python3 '{}' {{context}} {{out}}",
        counter.display(),
        oci_pack().display()
    );
    // The context is relative to the manifest's directory.
    stack_with_image(
        &m,
        &names,
        &format!(
            "  build:\n    context: ./app\n    command: \"{command}\"\n    timeout: 2m\n  movingTag: latest\n"
        ),
    );

    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "apply converges: {report:#}");
    assert_eq!(builds(&counter), 1, "one build");
    let image = object(&report, "Image", &format!("{}-latest", names.repo));
    let build_tag = image["outputs"]["tag"].as_str().expect("tag").to_string();
    assert!(build_tag.starts_with("build-"), "{image:#}");
    let (first, tags) = image_by_tag(&aws, &names.repo, &build_tag).await;
    assert!(tags.contains(&"latest".to_string()), "{tags:?}");
    assert_eq!(image["outputs"]["digest"], first.as_str());
    let uri = repository_uri(&aws, &names.repo).await;
    assert_eq!(
        container_uri(&aws, &names.runtime).await,
        format!("{uri}@{first}"),
        "the runtime runs the digest ECR reports"
    );
    // Config and layer uploaded; the manifest put under both tags.
    assert_eq!(
        ecr_calls(&report, "CompleteLayerUpload"),
        2,
        "{:#}",
        report["calls"]
    );
    assert!(ecr_calls(&report, "UploadLayerPart") >= 2);
    assert_eq!(ecr_calls(&report, "PutImage"), 2);

    // Unchanged context (an ignored file changing included): no build, nothing written.
    for edit in [None, Some("more noise\n")] {
        if let Some(text) = edit {
            write(&app.join("debug.log"), text);
        }
        let (code, report) = apply_json(&m, &[]);
        assert_eq!(code, 0, "{report:#}");
        assert_eq!(builds(&counter), 1, "an unchanged context never rebuilds");
        assert_eq!(writes(&report), 0, "{:#}", report["calls"]);
        assert_eq!(ecr_calls(&report, "InitiateLayerUpload"), 0);
    }

    // One file changes: exactly one build, a new digest, and the runtime rolls to it.
    write(&app.join("server.py"), "print('v2')\n");
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(builds(&counter), 2, "exactly one more build");
    let image = object(&report, "Image", &format!("{}-latest", names.repo));
    assert_eq!(image["action"], "create", "{image:#}");
    let second_tag = image["outputs"]["tag"].as_str().expect("tag").to_string();
    assert_ne!(second_tag, build_tag);
    let (second, _) = image_by_tag(&aws, &names.repo, &second_tag).await;
    assert_ne!(second, first);
    assert_eq!(image_by_tag(&aws, &names.repo, "latest").await.0, second);
    assert_eq!(
        object(&report, "AgentRuntime", &names.runtime)["action"],
        "update"
    );
    assert_eq!(
        container_uri(&aws, &names.runtime).await,
        format!("{uri}@{second}")
    );
    assert!(ecr_calls(&report, "CompleteLayerUpload") >= 1);

    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(builds(&counter), 2);
    assert_eq!(writes(&report), 0, "{:#}", report["calls"]);

    // The source changes again and the stack is deleted before any build: ECR has no
    // image for the new context, yet the runtime is found by its name and deleted, and
    // so is its role; the image is gone with nothing to find.
    write(&app.join("server.py"), "print('v3')\n");
    let out = controller(&["delete", "-f", &m.arg(), "--output", "json"]);
    let report = json(&out);
    assert_eq!(
        object(&report, "AgentRuntime", &names.runtime)["result"],
        "deleted",
        "{report:#}"
    );
    assert_eq!(object(&report, "Role", &names.role)["result"], "deleted");
    assert!(runtimes_named(&aws, &names.runtime).await.is_empty());
    assert_eq!(builds(&counter), 2, "delete never builds");
}

/// Pack `ctx` with oci-pack; returns the manifest digest it reports.
fn pack(ctx: &Path, out: &Path, extra: &[&str]) -> String {
    let o = std::process::Command::new("python3")
        .arg(oci_pack())
        .args(extra)
        .arg(ctx)
        .arg(out)
        .output()
        .expect("run oci-pack");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "oci-pack failed: {err}");
    err.split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .expect("digest in oci-pack's output")
        .to_string()
}

/// A context of one file, `server.py` holding `source`, packed as `image.tar` among the
/// manifests; returns the manifest digest.
fn pack_archive(m: &Manifests, source: &str) -> String {
    let ctx = tempfile::tempdir().expect("ctx");
    write(&ctx.path().join("server.py"), source);
    pack(
        ctx.path(),
        &m.path().join("image.tar"),
        &["--format", "tar"],
    )
}

fn repo_and_image(names: &StackNames, image: &str, spec: &str) -> String {
    format!(
        "apiVersion: agentcore.dev/v1alpha1\nkind: Repository\nmetadata:\n  name: {repo}\nspec:\n  forceDelete: true\n---\n\
         apiVersion: agentcore.dev/v1alpha1\nkind: Image\nmetadata:\n  name: {image}\nspec:\n  repositoryRef: {repo}\n{spec}",
        repo = names.repo
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oci_layout_archive_is_pushed_as_is_and_its_moving_tag_kept_in_place() {
    let aws = aws().await;
    let m = Manifests::new();
    let names = StackNames::unique();
    let ctx = tempfile::tempdir().expect("ctx");
    write(&ctx.path().join("server.py"), "print('layout')\n");
    let manifest_digest = pack(
        ctx.path(),
        &m.path().join("image.tar"),
        &["--format", "tar"],
    );
    let as_dir = tempfile::tempdir().expect("dir");
    assert_eq!(
        pack(ctx.path(), &as_dir.path().join("l"), &[]),
        manifest_digest,
        "oci-pack is deterministic"
    );
    let manifest_bytes = std::fs::read(
        as_dir
            .path()
            .join("l/blobs/sha256")
            .join(&manifest_digest["sha256:".len()..]),
    )
    .expect("manifest blob");
    m.write(
        "image.yaml",
        &repo_and_image(
            &names,
            "img",
            "  ociLayout: image.tar\n  movingTag: latest\n",
        ),
    );

    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    let tag = format!("oci-{}", &manifest_digest["sha256:".len()..][..20]);
    assert_eq!(
        object(&report, "Image", "img")["outputs"]["tag"],
        tag.as_str()
    );
    let (digest, tags) = image_by_tag(&aws, &names.repo, &tag).await;
    assert!(tags.contains(&"latest".to_string()), "{tags:?}");
    // The exact manifest bytes of the layout.
    let got = aws
        .ecr
        .batch_get_image()
        .repository_name(&names.repo)
        .image_ids(ImageIdentifier::builder().image_digest(&digest).build())
        .send()
        .await
        .expect("BatchGetImage");
    assert_eq!(
        got.images()[0].image_manifest().map(str::as_bytes),
        Some(manifest_bytes.as_slice())
    );
    // Pushing again uploads nothing.
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(writes(&report), 0, "{:#}", report["calls"]);

    // Someone moves `latest`: diff sees it, apply points it back without uploading.
    let other = push_image(&aws, &names.repo, "latest", "someone else's build").await;
    assert_ne!(other, digest);
    let out = controller(&["diff", "-f", &m.arg()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("spec.movingTag"), "{}", stdout(&out));
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(object(&report, "Image", "img")["action"], "update");
    assert_eq!(ecr_calls(&report, "InitiateLayerUpload"), 0);
    assert_eq!(image_by_tag(&aws, &names.repo, "latest").await.0, digest);
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(writes(&report), 0, "{:#}", report["calls"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layout_without_arm64_fails_clearly() {
    let m = Manifests::new();
    let names = StackNames::unique();
    let ctx = tempfile::tempdir().expect("ctx");
    write(&ctx.path().join("server.py"), "print('x86')\n");
    pack(
        ctx.path(),
        &m.path().join("amd64"),
        &["--platform", "linux/amd64"],
    );
    m.write(
        "image.yaml",
        &repo_and_image(&names, "img", "  ociLayout: amd64\n"),
    );
    let (code, report) = apply_json(&m, &["--timeout", "20s"]);
    assert_eq!(code, 1, "{report:#}");
    let image = object(&report, "Image", "img");
    assert_eq!(image["state"], "Failed", "{image:#}");
    assert_eq!(image["reason"], "NoImageForPlatform", "{image:#}");
    let message = image["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no linux/arm64 image") && message.contains("only linux/amd64"),
        "{message}"
    );
    assert_eq!(ecr_calls(&report, "PutImage"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_builds_and_changing_contexts_report_why_and_push_nothing() {
    let m = Manifests::new();
    let names = StackNames::unique();
    let ctx = m.path().join("ctx");
    write(&ctx.join("server.py"), "print('x')\n");
    let failing = "  build:\n    context: ctx\n    command: \"echo compiling {out}; echo 'error: no module named foo' >&2; exit 2\"\n";
    let racing = format!(
        "  build:\n    context: ctx\n    command: \"date +%s%N >> {{context}}/stamp; python3 '{}' {{context}} {{out}}\"\n",
        oci_pack().display()
    );
    m.write(
        "images.yaml",
        &format!(
            "{}\n---\napiVersion: agentcore.dev/v1alpha1\nkind: Image\nmetadata:\n  name: racing\nspec:\n  repositoryRef: {}\n{racing}",
            repo_and_image(&names, "failing", failing),
            names.repo
        ),
    );
    let (code, report) = apply_json(&m, &["--timeout", "4s"]);
    assert_eq!(code, 1, "{report:#}");
    let failing = object(&report, "Image", "failing");
    assert_eq!(failing["reason"], "BuildFailed", "{failing:#}");
    let message = failing["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("exited with status 2")
            && message.contains("compiling")
            && message.contains("error: no module named foo"),
        "{message}"
    );
    let racing = object(&report, "Image", "racing");
    assert_eq!(racing["reason"], "ContextChanged", "{racing:#}");
    assert!(
        racing["message"]
            .as_str()
            .unwrap_or_default()
            .contains("changed during build"),
        "{racing:#}"
    );
    assert_eq!(ecr_calls(&report, "PutImage"), 0);
    assert_eq!(ecr_calls(&report, "InitiateLayerUpload"), 0);
}

/// Deterministic incompressible bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn pushes_upload_large_blobs_in_parts_and_skip_what_is_there() {
    use agentcore_controller::aws::CallSummary;
    use agentcore_controller::oci::layout::{Layout, Platform};
    use agentcore_controller::oci::push::push_image;
    use std::sync::Arc;

    let aws = aws().await;
    let repo = unique("push-");
    aws.ecr
        .create_repository()
        .repository_name(&repo)
        .send()
        .await
        .expect("CreateRepository");
    let ctx = tempfile::tempdir().expect("ctx");
    std::fs::write(ctx.path().join("big.bin"), noise(12 * 1024 * 1024)).expect("write");
    let out = tempfile::tempdir().expect("out");
    // Same files, other command: the same layer under another config.
    pack(ctx.path(), &out.path().join("a"), &["--cmd", "serve a"]);
    pack(ctx.path(), &out.path().join("b"), &["--cmd", "serve b"]);
    let open = |name: &str| {
        let layout = Layout::open(&out.path().join(name)).expect("layout");
        let image = layout.select(&Platform::linux_arm64()).expect("image");
        (Arc::new(layout), image)
    };
    let ((la, ia), (lb, ib)) = (open("a"), open("b"));
    assert_eq!(ia.layers, ib.layers);
    assert_ne!(ia.config, ib.config);
    let layer = ia.layers[0].size;
    assert!(layer > 10 * 1024 * 1024, "more than one part: {layer}");

    let before = aws.calls.snapshot();
    let report = push_image(&aws.ecr, &repo, la.clone(), &ia, "a")
        .await
        .expect("push a");
    let calls = CallSummary::between(&before, &aws.calls.snapshot());
    assert_eq!((report.blobs_total, report.blobs_uploaded), (2, 2));
    assert_eq!(report.bytes_uploaded, layer + ia.config.size);
    // Two parts of the layer (10 MiB and the rest), one of the config.
    assert_eq!(calls.by_operation.get("ECR:UploadLayerPart"), Some(&3));
    assert_eq!(calls.by_operation.get("ECR:CompleteLayerUpload"), Some(&2));
    assert_eq!(image_by_tag(&aws, &repo, "a").await.0, report.digest);

    // The layer is there already: only the new config goes up.
    let report_b = push_image(&aws.ecr, &repo, lb, &ib, "b")
        .await
        .expect("push b");
    assert_eq!(report_b.blobs_uploaded, 1);
    assert_eq!(report_b.bytes_uploaded, ib.config.size);
    assert_ne!(report_b.digest, report.digest);

    // Everything is there: nothing is uploaded, and the digest is the same.
    let before = aws.calls.snapshot();
    let again = push_image(&aws.ecr, &repo, la, &ia, "a")
        .await
        .expect("push a again");
    let calls = CallSummary::between(&before, &aws.calls.snapshot());
    assert_eq!((again.blobs_uploaded, again.bytes_uploaded), (0, 0));
    assert_eq!(again.digest, report.digest);
    assert_eq!(calls.by_operation.get("ECR:InitiateLayerUpload"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_moving_tag_that_cannot_move_is_an_error_not_a_silent_success() {
    let m = Manifests::new();
    let names = StackNames::unique();
    let ctx = tempfile::tempdir().expect("ctx");
    write(&ctx.path().join("server.py"), "print(1)\n");
    pack(ctx.path(), &m.path().join("one"), &[]);
    write(&ctx.path().join("server.py"), "print(2)\n");
    pack(ctx.path(), &m.path().join("two"), &[]);
    let doc = |layout: &str| {
        repo_and_image(
            &names,
            "img",
            &format!("  ociLayout: {layout}\n  movingTag: latest\n"),
        )
        .replace(
            "  forceDelete: true\n",
            "  forceDelete: true\n  imageTagMutability: IMMUTABLE\n",
        )
    };
    m.write("image.yaml", &doc("one"));
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    m.write("image.yaml", &doc("two"));
    let (code, report) = apply_json(&m, &["--timeout", "20s"]);
    assert_eq!(code, 1, "{report:#}");
    let image = object(&report, "Image", "img");
    assert_eq!(image["reason"], "TagNotMoved", "{image:#}");
    assert!(
        image["message"]
            .as_str()
            .unwrap_or_default()
            .contains("immutable"),
        "{image:#}"
    );
}

#[test]
fn the_daemon_builds_from_a_relative_context_and_rebuilds_when_it_changes() {
    // This builder writes {out} as a tar archive (as docker buildx --output type=oci does).
    let m = Manifests::new();
    let names = StackNames::unique();
    let app = m.path().join("app");
    write(&app.join("server.py"), "print('daemon v1')\n");
    let counter = m.path().join("builds.txt");
    let command = format!(
        "echo run >> '{}' && python3 '{}' --format tar {{context}} {{out}}",
        counter.display(),
        oci_pack().display()
    );
    // As in the guide's layout: the manifests in one directory, the source beside it.
    let manifests = m.path().join("manifests");
    write(
        &manifests.join("image.yaml"),
        &repo_and_image(
            &names,
            "img",
            &format!("  build:\n    context: ../app\n    command: \"{command}\"\n"),
        ),
    );
    let daemon = Daemon::start(&manifests, &["--resync", "1h"], None);
    let digest = |d: &Daemon| {
        d.object("Image", "img")
            .and_then(|o| o["outputs"]["digest"].as_str().map(String::from))
    };
    wait_for(
        std::time::Duration::from_secs(60),
        "the image to be built and pushed",
        || daemon.condition("Image", "img", "Ready"),
    );
    let first = digest(&daemon).expect("a digest output");
    assert_eq!(builds(&counter), 1, "{}", daemon.log_text());

    // The context is watched: a change rebuilds at once (the resync is an hour away).
    write(&app.join("server.py"), "print('daemon v2')\n");
    wait_for(
        std::time::Duration::from_secs(60),
        "a new digest after the context changed",
        || digest(&daemon).is_some_and(|d| d != first),
    );
    assert_eq!(builds(&counter), 2, "{}", daemon.log_text());
    assert!(
        daemon.log_text().contains("pushed image"),
        "the push is logged: {}",
        daemon.log_text()
    );
}

/// Remove one tag of an image behind the controller's back.
async fn untag(aws: &Aws, repo: &str, tag: &str) {
    let out = aws
        .ecr
        .batch_delete_image()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .expect("BatchDeleteImage");
    assert!(out.failures().is_empty(), "{:?}", out.failures());
}

/// The Image writes the content tag, then the movingTag: a run stopped between the two
/// leaves the moving tag missing (simulated by deleting it). The next apply puts it back,
/// without uploading; the same for a content tag gone while the moving tag stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_moving_or_content_tag_is_put_back() {
    let aws = aws().await;
    let names = StackNames::unique();
    let m = Manifests::new();
    pack_archive(&m, "print('tags')\n");
    m.write(
        "image.yaml",
        &repo_and_image(
            &names,
            "img",
            "  ociLayout: image.tar\n  movingTag: latest\n",
        ),
    );
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    let tag = object(&report, "Image", "img")["outputs"]["tag"]
        .as_str()
        .expect("content tag")
        .to_string();
    let (digest, _) = image_by_tag(&aws, &names.repo, &tag).await;

    for (gone, kept) in [("latest", tag.as_str()), (tag.as_str(), "latest")] {
        untag(&aws, &names.repo, gone).await;
        assert_eq!(image_by_tag(&aws, &names.repo, kept).await.0, digest);
        let out = controller(&["diff", "-f", &m.arg()]);
        assert_eq!(out.status.code(), Some(2), "{gone} gone: {}", stdout(&out));
        let (code, report) = apply_json(&m, &[]);
        assert_eq!(code, 0, "{report:#}");
        assert_eq!(ecr_calls(&report, "InitiateLayerUpload"), 0, "{report:#}");
        let (now, tags) = image_by_tag(&aws, &names.repo, &tag).await;
        assert_eq!(now, digest);
        assert!(tags.contains(&"latest".to_string()), "{tags:?}");
        let (code, report) = apply_json(&m, &[]);
        assert_eq!(code, 0, "{report:#}");
        assert_eq!(writes(&report), 0, "{:#}", report["calls"]);
    }
}

/// An Image with deletion policy Delete takes its image (every tag on it) out of ECR, so
/// its repository (no forceDelete) can go too; the default, Retain, keeps both.
#[tokio::test(flavor = "multi_thread")]
async fn an_image_with_policy_delete_is_deleted_and_its_repository_with_it() {
    let aws = aws().await;
    let m = Manifests::new();
    let names = StackNames::unique();
    pack_archive(&m, "print('to be deleted')\n");
    let manifests = |policy: &str| {
        format!(
            "apiVersion: agentcore.dev/v1alpha1\nkind: Repository\nmetadata:\n  name: {repo}\nspec: {{}}\n---\n\
             apiVersion: agentcore.dev/v1alpha1\nkind: Image\nmetadata:\n  name: img\n  annotations:\n    \
             agentcore.dev/deletion-policy: {policy}\nspec:\n  repositoryRef: {repo}\n  ociLayout: image.tar\n  \
             movingTag: latest\n",
            repo = names.repo
        )
    };
    m.write("image.yaml", &manifests("Retain"));
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    let digest = object(&report, "Image", "img")["outputs"]["digest"]
        .as_str()
        .expect("digest output")
        .to_string();

    // Retain: the image stays, and so does the repository that holds it.
    let out = controller(&["delete", "-f", &m.arg(), "--output", "json"]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(object(&report, "Image", "img")["result"], "retained");
    assert_eq!(
        object(&report, "Repository", &names.repo)["result"],
        "retained"
    );
    assert_eq!(image_by_tag(&aws, &names.repo, "latest").await.0, digest);

    // Delete: BatchDeleteImage by digest, then the now empty repository.
    m.write("image.yaml", &manifests("Delete"));
    let out = controller(&["delete", "-f", &m.arg(), "--output", "json"]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(
        object(&report, "Image", "img")["result"],
        "deleted",
        "{report:#}"
    );
    assert_eq!(
        object(&report, "Repository", &names.repo)["result"],
        "deleted",
        "{report:#}"
    );
    assert_eq!(
        ecr_calls(&report, "BatchDeleteImage"),
        1,
        "{:#}",
        report["calls"]
    );
    let repos = aws
        .ecr
        .describe_repositories()
        .repository_names(&names.repo)
        .send()
        .await;
    assert!(
        repos
            .as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_repository_not_found_exception()),
        "the repository is gone: {repos:?}"
    );
    // Deleting again finds nothing and exits 0.
    let out = controller(&["delete", "-f", &m.arg(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// A repository (policy Delete) that holds images no Image object takes along (pushed by
/// CI, or retained by a daemon before a restart) is kept, and `delete` says why and exits
/// 0; ECR's refusal to delete a repository that is not empty is never a failure.
#[tokio::test(flavor = "multi_thread")]
async fn a_repository_holding_undeclared_images_is_kept_and_says_why() {
    let aws = aws().await;
    let m = Manifests::new();
    let names = StackNames::unique();
    m.write(
        "repo.yaml",
        &format!(
            "apiVersion: agentcore.dev/v1alpha1\nkind: Repository\nmetadata:\n  name: {}\nspec: {{}}\n",
            names.repo
        ),
    );
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    push_image(&aws, &names.repo, "ci-build", "pushed by CI").await;

    let out = controller(&["delete", "-f", &m.arg(), "--output", "json"]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let repo = object(&report, "Repository", &names.repo);
    assert_eq!(repo["result"], "retained", "{report:#}");
    let message = repo["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("kept: it still holds images") && message.contains("forceDelete"),
        "{message}"
    );
    assert!(
        aws.ecr
            .describe_repositories()
            .repository_names(&names.repo)
            .send()
            .await
            .is_ok(),
        "the repository stays with its image"
    );
}
