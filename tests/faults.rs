//! Fault injection: the daemon and a one-shot `apply` talk to the emulator through a proxy
//! that answers a fifth of the requests with throttling, HTTP 500/503 or a dropped
//! connection — before the request reaches the emulator, or after it acted on it ("response
//! lost"). Everything must still converge, and nothing may be created twice.

use std::process::Stdio;
use std::time::{Duration, Instant};

use agentcore_controller::aws::Aws;
use serde_json::Value;
use testkit::fault_proxy::{Fault, FaultCounts, FaultProxy};
use testkit::*;

/// Share of requests that get a fault.
const FAULT_RATE: f64 = 0.2;

async fn repository_exists(aws: &Aws, name: &str) -> bool {
    aws.ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .is_ok()
}

/// Exactly one of everything the stack creates, checked against the emulator directly.
async fn assert_no_duplicates(aws: &Aws, names: &StackNames, faults: &[String]) {
    assert_one_of_each(aws, names, &format!("faults: {faults:#?}")).await;
}

fn ready_report(report: &Value) -> bool {
    report["objects"]
        .as_array()
        .is_some_and(|objs| !objs.is_empty() && objs.iter().all(|o| o["state"] == "Ready"))
}

fn assert_every_fault_type(counts: &FaultCounts, faults: &[String]) {
    assert!(counts.throttle > 0, "no throttling injected: {counts}");
    assert!(
        counts.status500 + counts.status503 > 0,
        "no 5xx injected: {counts}"
    );
    assert!(
        counts.drop_before > 0,
        "no connection dropped before forwarding: {counts}"
    );
    assert!(
        counts.drop_after > 0,
        "no response lost after forwarding: {counts}; faults: {faults:#?}"
    );
}

/// Under 20 % injected throttling, the SDK's adaptive mode (the default) stalls retried
/// calls for seconds after each throttle; these tests are about correctness under faults,
/// so they use plain jittered backoff.
const RETRY_MODE: &str = "standard";

/// Run a one-shot command through the proxy (the emulator's environment otherwise).
fn controller_via(proxy: &FaultProxy, args: &[&str]) -> std::process::Command {
    let mut cmd = controller_command(args);
    cmd.env("AWS_ENDPOINT_URL", &proxy.url)
        .env("AGENTCORE_COGNITO_DOMAIN_URL", &proxy.url)
        .env("AWS_RETRY_MODE", RETRY_MODE);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_converges_through_faults_without_duplicates() {
    let started = Instant::now();
    let aws = aws().await; // direct to the emulator
    let proxy = FaultProxy::start(&emulator().url, FAULT_RATE, 0x5EED_0001);
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    let daemon = Daemon::start_with(
        m.path(),
        &["--resync", "5s", "--retry-base", "200ms"],
        Some(&proxy.url),
        &[("AWS_RETRY_MODE", RETRY_MODE)],
    );

    // CI pushes the image once the daemon has created the repository.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !repository_exists(&aws, &names.repo).await {
        assert!(
            Instant::now() < deadline,
            "the daemon never created the repository; log:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    push_image(&aws, &names.repo, "latest", &names.runtime).await;

    while !daemon.all_ready() {
        assert!(
            Instant::now() < deadline,
            "not all Ready within 120 s through the fault proxy ({}):\n{:#}\nfaults: {:#?}\nlog:\n{}",
            proxy.counts(),
            daemon.status(),
            proxy.fault_log(),
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let objects = daemon.status()["objects"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(objects, 9, "{:#}", daemon.status());
    let converged_after = started.elapsed();

    assert_no_duplicates(&aws, &names, &proxy.fault_log()).await;
    // Let a resync or two run through the faults as well, then stop the daemon.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(daemon.all_ready(), "{:#}", daemon.status());
    let daemon_counts = proxy.counts();
    // The daemon alone met every kind of fault (the seeded sequence has all five within
    // its first 28 decisions).
    assert_every_fault_type(&daemon_counts, &proxy.fault_log());
    let stopping = Instant::now();
    assert_eq!(
        daemon.terminate(),
        Some(0),
        "the daemon stops cleanly on SIGTERM"
    );
    let stopped_in = stopping.elapsed();
    assert_no_duplicates(&aws, &names, &proxy.fault_log()).await;

    // A one-shot apply through the same proxy finds everything in place.
    let dir = m.arg();
    let applying = Instant::now();
    let out = controller_via(&proxy, &["apply", "-f", &dir, "--output", "json"])
        .output()
        .expect("run apply");
    let applied_in = applying.elapsed();
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{}", stderr(&out));
    assert!(ready_report(&report), "{report:#}");
    assert_no_duplicates(&aws, &names, &proxy.fault_log()).await;
    eprintln!(
        "daemon: Ready in {converged_after:?}, stopped in {stopped_in:?}, {daemon_counts}; \
         then apply: {applied_in:?}, all told {}",
        proxy.counts()
    );
}

/// One `apply` through the proxy while CI pushes the image as soon as the repository
/// exists; the exit code and the JSON report.
async fn apply_while_pushing(
    proxy: &FaultProxy,
    aws: &Aws,
    m: &Manifests,
    names: &StackNames,
) -> (Option<i32>, Value, String) {
    let dir = m.arg();
    let started = Instant::now();
    let child = controller_via(
        proxy,
        &["apply", "-f", &dir, "--output", "json", "--timeout", "100s"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn apply");
    let deadline = Instant::now() + Duration::from_secs(100);
    while !repository_exists(aws, &names.repo).await {
        assert!(
            Instant::now() < deadline,
            "apply never created the repository"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    push_image(aws, &names.repo, "latest", &names.runtime).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait for apply");
    eprintln!("apply took {:?}", started.elapsed());
    (out.status.code(), json(&out), stderr(&out))
}

#[tokio::test(flavor = "multi_thread")]
async fn one_shot_apply_converges_through_faults_without_duplicates() {
    let aws = aws().await;
    let proxy = FaultProxy::start(&emulator().url, FAULT_RATE, 0x5EED_0002);
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    let (code, report, err) = apply_while_pushing(&proxy, &aws, &m, &names).await;
    let counts = proxy.counts();
    eprintln!("one-shot apply: {counts}");
    assert_eq!(
        code,
        Some(0),
        "apply through the fault proxy ({counts}):\n{report:#}\n{err}\nfaults: {:#?}",
        proxy.fault_log()
    );
    assert!(ready_report(&report), "{report:#}");
    // Every kind of fault (the seeded sequence has all five within its first 36 decisions).
    assert_every_fault_type(&counts, &proxy.fault_log());
    assert_no_duplicates(&aws, &names, &proxy.fault_log()).await;
}

/// Pack a small OCI image layout (linux/arm64) with `scripts/oci-pack`, so that the
/// controller pushes the image itself through the ECR layer API.
fn packed_layout(dir: &std::path::Path, salt: &str) -> std::path::PathBuf {
    let ctx = dir.join("context");
    std::fs::create_dir_all(&ctx).expect("mkdir context");
    std::fs::write(ctx.join("server.py"), format!("print('{salt}')\n")).expect("write context");
    let out = dir.join("image.tar");
    let packed = std::process::Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/oci-pack"))
        .arg(&ctx)
        .arg(&out)
        .output()
        .expect("run oci-pack");
    assert!(
        packed.status.success(),
        "oci-pack: {}",
        String::from_utf8_lossy(&packed.stderr)
    );
    out
}

/// The guide's stack with the Image pushed by the controller from `layout` (content tag
/// and movingTag `latest`), and `edit` applied to every document.
fn write_pushing_stack(
    m: &Manifests,
    names: &StackNames,
    layout: &std::path::Path,
    edit: &dyn Fn(String) -> String,
) {
    for (file, text) in names.render("manifests") {
        let tracked = format!("  repositoryRef: {}\n  tag: latest\n", names.repo);
        let text = text.replace(
            &tracked,
            &format!(
                "  repositoryRef: {}\n  ociLayout: {}\n  movingTag: latest\n",
                names.repo,
                layout.display()
            ),
        );
        m.write(&file, &edit(text));
    }
}

/// Everything can be deleted (whatever its kind's default), so that `delete` makes every
/// delete the kinds have.
fn deletable(_names: &StackNames) -> impl Fn(String) -> String {
    annotated("    agentcore.dev/deletion-policy: Delete\n")
}

/// Every document with `annotations` (lines of the annotations map), and a repository
/// that can be deleted with its images.
fn annotated(annotations: &'static str) -> impl Fn(String) -> String {
    move |text: String| {
        let mut out = String::new();
        let mut in_metadata = false;
        for line in text.lines() {
            out.push_str(line);
            out.push('\n');
            if in_metadata && line.starts_with("  name: ") {
                out.push_str("  annotations:\n");
                out.push_str(annotations);
            }
            in_metadata = line == "metadata:";
        }
        out.replace(
            "  imageTagMutability: MUTABLE\n",
            "  imageTagMutability: MUTABLE\n  forceDelete: true\n",
        )
    }
}

/// The same stack with a change for every kind that has an update path: pool, app client,
/// role, repository, runtime, and the Token's bearer (a new secret version); and everything
/// may be adopted (the test removes some owner tags, so that the tagging calls run).
fn edited(names: &StackNames) -> impl Fn(String) -> String {
    let base =
        annotated("    agentcore.dev/deletion-policy: Delete\n    agentcore.dev/adopt: \"true\"\n");
    let role = names.role.clone();
    move |text: String| {
        let text = text
            .replace("minimumLength: 8", "minimumLength: 10")
            .replace("accessToken: 60m", "accessToken: 30m")
            .replace(
                &format!("  name: {role}\nspec:\n"),
                &format!("  name: {role}\nspec:\n  description: edited\n"),
            )
            .replace("scanOnPush: true", "scanOnPush: false")
            .replace(
                "  protocol: MCP\n",
                "  protocol: MCP\n  description: edited\n",
            )
            .replace("bearer: access", "bearer: id");
        base(text)
    }
}

/// Remove the owner tag from the role, repository, runtime, consumer secret and parameter
/// (straight at the emulator).
async fn forget_owner(aws: &Aws, names: &StackNames) {
    const OWNER: &str = "agentcore.dev/managed-by";
    aws.iam
        .untag_role()
        .role_name(&names.role)
        .tag_keys(OWNER)
        .send()
        .await
        .expect("UntagRole");
    let repo = aws
        .ecr
        .describe_repositories()
        .repository_names(&names.repo)
        .send()
        .await
        .expect("DescribeRepositories");
    let repo_arn = repo.repositories()[0]
        .repository_arn()
        .expect("repository ARN");
    aws.ecr
        .untag_resource()
        .resource_arn(repo_arn)
        .tag_keys(OWNER)
        .send()
        .await
        .expect("ECR UntagResource");
    let id = runtimes_named(aws, &names.runtime).await.remove(0);
    let runtime = aws
        .agentcore
        .get_agent_runtime()
        .agent_runtime_id(&id)
        .send()
        .await
        .expect("GetAgentRuntime");
    aws.agentcore
        .untag_resource()
        .resource_arn(runtime.agent_runtime_arn())
        .tag_keys(OWNER)
        .send()
        .await
        .expect("AgentCore UntagResource");
    aws.secrets
        .untag_resource()
        .secret_id(&names.secret)
        .tag_keys(OWNER)
        .send()
        .await
        .expect("Secrets Manager UntagResource");
    aws.ssm
        .remove_tags_from_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(&names.parameter)
        .tag_keys(OWNER)
        .send()
        .await
        .expect("RemoveTagsFromResource");
}

/// Run a one-shot command through the proxy; exit code, JSON report and stderr.
async fn run_via(proxy: &FaultProxy, args: &[&str]) -> (Option<i32>, Value, String) {
    let out = controller_via(proxy, args)
        .output()
        .expect("run the controller");
    (out.status.code(), json(&out), stderr(&out))
}

/// The first answer to every write the controller makes is lost: the emulator acts on the
/// request and the connection drops. The SDK resends it and gets whatever the first
/// attempt left behind (already exists, upload gone, not found, …); each `apply` and the
/// `delete` must still finish in one run, with nothing made twice. The write operations
/// hit are checked against the list of every write the stack's kinds make, the image push
/// included.
#[tokio::test(flavor = "multi_thread")]
async fn lost_write_answers_never_fail_a_run() {
    let aws = aws().await;
    let proxy = FaultProxy::start(&emulator().url, 0.0, 0x5EED_0003);
    proxy.lose_first_write_answers();
    let m = Manifests::new();
    let names = StackNames::unique();
    let work = tempfile::tempdir().expect("tempdir");
    let layout = packed_layout(work.path(), &names.runtime);
    let dir = m.arg();
    let apply = ["apply", "-f", &dir, "--output", "json", "--timeout", "300s"];

    // Create everything (the image pushed by the controller).
    write_pushing_stack(&m, &names, &layout, &deletable(&names));
    let (code, report, err) = run_via(&proxy, &apply).await;
    assert_eq!(
        code,
        Some(0),
        "apply with lost write answers:\n{report:#}\n{err}\nlost: {:?}\nrequests: {:#?}",
        proxy.lost_answers(),
        proxy.request_log()
    );
    assert!(ready_report(&report), "{report:#}");
    assert_no_duplicates(&aws, &names, &proxy.fault_log()).await;

    // Change something of every kind that updates, and have the controller adopt (tag)
    // what lost its owner tag.
    forget_owner(&aws, &names).await;
    write_pushing_stack(&m, &names, &layout, &edited(&names));
    let (code, report, err) = run_via(&proxy, &apply).await;
    assert_eq!(
        code,
        Some(0),
        "edited apply with lost write answers:\n{report:#}\n{err}\nlost: {:?}",
        proxy.lost_answers()
    );
    assert!(ready_report(&report), "{report:#}");
    assert_no_duplicates(&aws, &names, &proxy.fault_log()).await;

    // Delete everything.
    let (code, report, err) = run_via(&proxy, &["delete", "-f", &dir, "--output", "json"]).await;
    assert_eq!(
        code,
        Some(0),
        "delete with lost write answers:\n{report:#}\n{err}\nlost: {:?}",
        proxy.lost_answers()
    );
    assert!(pools_named(&aws, &names.pool).await.is_empty());
    assert!(runtimes_named(&aws, &names.runtime).await.is_empty());

    let lost = proxy.lost_answers();
    eprintln!(
        "lost the first answer of {} write operations: {lost:?}; {}",
        lost.len(),
        proxy.counts()
    );
    let every_write = [
        "Cognito:CreateUserPool",
        "Cognito:UpdateUserPool",
        "Cognito:DeleteUserPool",
        "Cognito:CreateUserPoolClient",
        "Cognito:UpdateUserPoolClient",
        "Cognito:DeleteUserPoolClient",
        "Cognito:AdminCreateUser",
        "Cognito:AdminSetUserPassword",
        "Cognito:AdminDeleteUser",
        // The User's password secret and the Token's two secrets.
        "SecretsManager:CreateSecret",
        "SecretsManager:PutSecretValue",
        "SecretsManager:UntagResource",
        "SecretsManager:TagResource",
        "SecretsManager:DeleteSecret",
        "IAM:CreateRole",
        "IAM:PutRolePolicy",
        "IAM:UpdateRole",
        "IAM:TagRole",
        "IAM:DeleteRolePolicy",
        "IAM:DeleteRole",
        // The repository, then the image push.
        "ECR:CreateRepository",
        "ECR:PutLifecyclePolicy",
        "ECR:PutImageScanningConfiguration",
        "ECR:TagResource",
        "ECR:InitiateLayerUpload",
        "ECR:UploadLayerPart",
        "ECR:CompleteLayerUpload",
        "ECR:PutImage",
        "ECR:DeleteRepository",
        "AgentCore:CreateAgentRuntime",
        "AgentCore:UpdateAgentRuntime",
        "AgentCore:TagResource",
        "AgentCore:DeleteAgentRuntime",
        "SSM:PutParameter",
        "SSM:AddTagsToResource",
        "SSM:DeleteParameter",
    ];
    let missed: Vec<_> = every_write
        .iter()
        .filter(|op| !lost.iter().any(|l| l == *op))
        .collect();
    assert!(
        missed.is_empty(),
        "writes whose answer was never lost: {missed:?}; lost: {lost:?}; requests: {:#?}",
        proxy.request_log()
    );
}

/// One `apply` that also pushes the image (the ECR layer API) converges in one run through
/// 20 % mixed faults (throttling, 500/503, connections dropped before forwarding, answers
/// lost after the emulator acted) on top of the first answer to every write being lost;
/// nothing is made twice.
#[tokio::test(flavor = "multi_thread")]
async fn one_shot_apply_with_image_push_converges_through_mixed_faults() {
    let aws = aws().await;
    let proxy = FaultProxy::start(&emulator().url, FAULT_RATE, 0x5EED_0005);
    proxy.lose_first_write_answers();
    let m = Manifests::new();
    let names = StackNames::unique();
    let work = tempfile::tempdir().expect("tempdir");
    let layout = packed_layout(work.path(), &names.runtime);
    write_pushing_stack(&m, &names, &layout, &|text| text);
    let dir = m.arg();
    let (code, report, err) = run_via(
        &proxy,
        &["apply", "-f", &dir, "--output", "json", "--timeout", "300s"],
    )
    .await;
    let counts = proxy.counts();
    eprintln!(
        "one-shot apply with push: {counts}; first answers lost: {}",
        proxy.lost_answers().len()
    );
    assert_eq!(
        code,
        Some(0),
        "apply through the fault proxy ({counts}):\n{report:#}\n{err}\nfaults: {:#?}",
        proxy.fault_log()
    );
    assert!(ready_report(&report), "{report:#}");
    assert_every_fault_type(&counts, &proxy.fault_log());
    for op in [
        "ECR:InitiateLayerUpload",
        "ECR:UploadLayerPart",
        "ECR:CompleteLayerUpload",
        "ECR:PutImage",
    ] {
        assert!(
            proxy.lost_answers().iter().any(|l| l == op),
            "{op} lost no answer: {:?}",
            proxy.lost_answers()
        );
    }
    assert_no_duplicates(&aws, &names, &proxy.fault_log()).await;
}

/// The proxy itself: two requests on one kept-alive client connection, each answered by an
/// upstream that sends a chunked body and closes; the client gets them re-framed with
/// Content-Length, and a throttled request gets the query protocol's XML error.
#[test]
fn proxy_keeps_connections_alive_and_reframes_chunked_responses() {
    use std::io::{BufRead, BufReader, Read, Write};
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let upstream_url = format!("http://{}", upstream.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in upstream.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                  5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
            );
        }
    });
    let proxy = FaultProxy::start(&upstream_url, 0.0, 7);
    let addr = proxy.url.trim_start_matches("http://").to_string();
    let mut client = std::net::TcpStream::connect(&addr).expect("connect to the proxy");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut exchange = |body: &str| -> (String, String) {
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        client.write_all(request.as_bytes()).expect("send");
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read a header line");
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("content-length");
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("read the body");
        (head, String::from_utf8(body).expect("utf-8"))
    };
    for n in 0..2 {
        let (head, body) = exchange(&format!("Action=Ping&N={n}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Connection: keep-alive"), "{head}");
        assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
        assert_eq!(body, "hello world");
    }
    proxy.force("Ping", Fault::Throttle);
    let (head, body) = exchange("Action=Ping");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(body.contains("<Code>Throttling</Code>"), "{body}");
    let counts = proxy.counts();
    assert_eq!(
        (counts.requests, counts.forwarded, counts.throttle),
        (3, 2, 1)
    );
}

/// `delete` when a dependency cannot be read: the runtime cannot be found without the
/// image's digest, so it must be left alone and reported, not guessed "absent" — and the
/// role it uses must not be deleted from under it. Once the faults stop, delete finishes.
#[tokio::test(flavor = "multi_thread")]
async fn delete_leaves_alone_what_it_cannot_find_and_keeps_its_dependencies() {
    let aws = aws().await;
    let proxy = FaultProxy::start(&emulator().url, 0.0, 0x5EED_0004);
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    let (code, report, err) = apply_while_pushing(&proxy, &aws, &m, &names).await;
    assert_eq!(code, Some(0), "{report:#}\n{err}");
    // More failures than the SDK's five attempts: reading the image fails once.
    for _ in 0..5 {
        proxy.force("DescribeImages", Fault::Status500);
    }
    let out = controller_via(&proxy, &["delete", "-f", &m.arg(), "--output", "json"])
        .output()
        .expect("run delete");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let runtime = object(&report, "AgentRuntime");
    assert!(runtime["result"].is_null(), "{runtime:#}");
    let message = runtime["message"].as_str().unwrap_or_default();
    assert!(message.contains("could not be read"), "{message}");
    let role = object(&report, "Role");
    assert!(role["result"].is_null(), "{role:#}");
    assert!(
        role["message"]
            .as_str()
            .is_some_and(|m| m.contains("AgentRuntime/")),
        "{role:#}"
    );
    assert_eq!(runtimes_named(&aws, &names.runtime).await.len(), 1);
    assert!(
        aws.iam
            .get_role()
            .role_name(&names.role)
            .send()
            .await
            .is_ok(),
        "the role the runtime uses is still there"
    );
    // Faults over: the runtime and the role go.
    let out = controller_via(&proxy, &["delete", "-f", &m.arg(), "--output", "json"])
        .output()
        .expect("run delete");
    let report = json(&out);
    assert_eq!(object(&report, "AgentRuntime")["result"], "deleted");
    assert_eq!(object(&report, "Role")["result"], "deleted");
}

/// The daemon writes each object's inventory entry (SSM) before creating it, and only when
/// the entry changes. An entry lost behind its back (deleted here; a write that never
/// landed) is seen when the inventory is read back (every ten resyncs), and written again
/// with its owner tag, so that the object can still be pruned after a restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_inventory_entry_is_written_again() {
    let aws = aws().await;
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    let instance = unique("inv");
    let daemon = Daemon::start(m.path(), &["--resync", "2s", "--instance", &instance], None);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !repository_exists(&aws, &names.repo).await {
        assert!(Instant::now() < deadline, "{}", daemon.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    push_image(&aws, &names.repo, "latest", &names.runtime).await;
    while !daemon.all_ready() {
        assert!(
            Instant::now() < deadline,
            "{:#}\n{}",
            daemon.status(),
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let entry = format!(
        "/agentcore-controller/{instance}/inventory/Role/{}",
        names.role
    );
    let read = || async {
        aws.ssm
            .get_parameter()
            .name(&entry)
            .with_decryption(true)
            .send()
            .await
            .ok()
            .and_then(|p| p.parameter().and_then(|p| p.value().map(String::from)))
    };
    let written = read().await.expect("the Role's inventory entry");
    aws.ssm
        .delete_parameter()
        .name(&entry)
        .send()
        .await
        .expect("DeleteParameter");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(again) = read().await {
            assert_eq!(again, written);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the inventory entry was not written again:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tags = aws
        .ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(&entry)
        .send()
        .await
        .expect("ListTagsForResource");
    assert!(
        tags.tag_list()
            .iter()
            .any(|t| t.key() == "agentcore.dev/managed-by" && t.value() == instance),
        "{tags:?}"
    );
    assert!(
        daemon
            .log_text()
            .contains("its inventory entry is missing or changed"),
        "{}",
        daemon.log_text()
    );
    assert_eq!(daemon.terminate(), Some(0));
}
