//! End-to-end convergence of the guide's stack against the AWS emulator, through the
//! controller binary: create once, no writes on the second apply, drift detected and
//! repaired, kills at any moment never duplicate, SigV4 variant, ownership, deletion.

use std::time::Duration;

use agentcore_controller::aws::Aws;
use serde_json::Value;
use testkit::*;

fn apply_json(m: &Manifests, extra: &[&str]) -> (i32, Value) {
    let dir = m.arg();
    let mut args = vec!["apply", "-f", &dir, "--output", "json"];
    args.extend_from_slice(extra);
    let out = controller(&args);
    (out.status.code().unwrap_or(-1), json(&out))
}

fn writes(report: &Value) -> u64 {
    report["calls"]["writes"].as_u64().expect("writes count")
}

async fn parameter(aws: &Aws, name: &str) -> String {
    aws.ssm
        .get_parameter()
        .name(name)
        .send()
        .await
        .expect("GetParameter")
        .parameter()
        .and_then(|p| p.value())
        .expect("value")
        .to_string()
}

/// Apply the guide's stack with a pushed image; returns names and the image digest.
async fn converged_stack(m: &Manifests) -> (StackNames, String, Aws) {
    let aws = aws().await;
    let names = StackNames::unique();
    names.write_to(m, "manifests");
    // The repository must exist before CI can push: apply once without the image…
    let (code, report) = apply_json(m, &["--timeout", "4s"]);
    assert_eq!(code, 1, "not Ready without an image: {report:#}");
    let rt = object(&report, "AgentRuntime");
    assert_eq!(rt["state"], "Blocked", "{rt:#}");
    let image = object(&report, "Image");
    assert_eq!(image["state"], "Waiting", "{image:#}");
    assert_eq!(
        image["message"],
        format!("image {}:latest not found", names.repo),
        "{image:#}"
    );
    // …then CI pushes, and the next apply converges.
    let digest = push_image(&aws, &names.repo, "latest", &names.runtime).await;
    let (code, report) = apply_json(m, &[]);
    assert_eq!(code, 0, "apply converges: {report:#}");
    (names, digest, aws)
}

#[tokio::test(flavor = "multi_thread")]
async fn guide_stack_converges_wired_together_and_second_apply_writes_nothing() {
    let m = Manifests::new();
    let (names, digest, aws) = converged_stack(&m).await;

    // Everything exists exactly once and is wired together.
    let pools = pools_named(&aws, &names.pool).await;
    assert_eq!(pools.len(), 1, "one pool");
    let pool_id = &pools[0];
    let clients = aws
        .cognito
        .list_user_pool_clients()
        .user_pool_id(pool_id)
        .send()
        .await
        .expect("ListUserPoolClients");
    let client_ids: Vec<String> = clients
        .user_pool_clients()
        .iter()
        .filter(|c| c.client_name() == Some(names.client.as_str()))
        .filter_map(|c| c.client_id().map(String::from))
        .collect();
    assert_eq!(client_ids.len(), 1, "one client");
    let user = aws
        .cognito
        .admin_get_user()
        .user_pool_id(pool_id)
        .username(&names.user)
        .send()
        .await
        .expect("AdminGetUser");
    assert_eq!(user.user_status().map(|s| s.as_str()), Some("CONFIRMED"));

    let role = aws
        .iam
        .get_role()
        .role_name(&names.role)
        .send()
        .await
        .expect("GetRole");
    let role_arn = role.role().map(|r| r.arn().to_string()).expect("role arn");

    let rt = runtime(&aws, &names.runtime).await;
    assert_eq!(rt.role_arn(), role_arn);
    let container = rt
        .agent_runtime_artifact()
        .and_then(|a| a.as_container_configuration().ok())
        .map(|c| c.container_uri().to_string())
        .expect("container artifact");
    assert!(
        container.ends_with(&format!("/{}@{digest}", names.repo)),
        "{container}"
    );
    let jwt = rt
        .authorizer_configuration()
        .and_then(|a| a.as_custom_jwt_authorizer().ok())
        .expect("JWT authorizer");
    assert_eq!(
        jwt.discovery_url(),
        format!(
            "https://cognito-idp.{REGION}.amazonaws.com/{pool_id}/.well-known/openid-configuration"
        )
    );
    assert_eq!(jwt.allowed_clients(), client_ids.as_slice());

    assert_eq!(
        parameter(&aws, &names.parameter).await,
        rt.agent_runtime_arn()
    );
    let secret = secret_map(&aws, &names.secret).await;
    assert_eq!(secret["pool_id"], pool_id.as_str());
    assert_eq!(secret["client_id"], client_ids[0].as_str());
    assert_eq!(
        secret["discovery_url"],
        format!(
            "https://cognito-idp.{REGION}.amazonaws.com/{pool_id}/.well-known/openid-configuration"
        )
    );

    // A second apply of the same manifests writes nothing, and diff agrees.
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        writes(&report),
        0,
        "second apply made writes: {:#}",
        report["calls"]
    );
    for o in report["objects"].as_array().expect("objects") {
        assert_eq!(o["action"], "unchanged", "{o:#}");
    }
    let out = controller(&["diff", "-f", &m.arg()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_reported_by_diff_and_repaired_by_apply() {
    let m = Manifests::new();
    let (names, _digest, aws) = converged_stack(&m).await;

    // Out-of-band: runtime allowedClients changed, a statement removed from the inline
    // policy, scan-on-push turned off.
    let rt = runtime(&aws, &names.runtime).await;
    let mut jwt = rt
        .authorizer_configuration()
        .and_then(|a| a.as_custom_jwt_authorizer().ok())
        .cloned()
        .expect("jwt");
    jwt.allowed_clients = Some(vec!["someone-else".into()]);
    let updated = set_jwt_authorizer(&aws, &rt, jwt).await;
    // AWS keeps a runtime's tags across updates; the emulator keys them by an ARN that
    // carries the version, which each update changes. Carry them over as AWS would.
    aws.agentcore
        .tag_resource()
        .resource_arn(updated.agent_runtime_arn())
        .tags(
            agentcore_controller::kinds::OWNER_TAG,
            "agentcore-controller",
        )
        .send()
        .await
        .expect("TagResource");

    let policy_names = aws
        .iam
        .list_role_policies()
        .role_name(&names.role)
        .send()
        .await
        .expect("ListRolePolicies");
    let policy_name = policy_names.policy_names()[0].clone();
    let doc = aws
        .iam
        .get_role_policy()
        .role_name(&names.role)
        .policy_name(&policy_name)
        .send()
        .await
        .expect("GetRolePolicy");
    let text = percent_encoding::percent_decode_str(doc.policy_document())
        .decode_utf8_lossy()
        .into_owned();
    let mut parsed: Value = serde_json::from_str(&text).expect("policy JSON");
    let statements = parsed["Statement"].as_array_mut().expect("statements");
    let before = statements.len();
    statements.retain(|s| !s["Action"].to_string().contains("xray:PutTraceSegments"));
    assert_eq!(statements.len() + 1, before, "removed the X-Ray statement");
    aws.iam
        .put_role_policy()
        .role_name(&names.role)
        .policy_name(&policy_name)
        .policy_document(parsed.to_string())
        .send()
        .await
        .expect("PutRolePolicy out of band");

    aws.ecr
        .put_image_scanning_configuration()
        .repository_name(&names.repo)
        .image_scanning_configuration(
            aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                .scan_on_push(false)
                .build(),
        )
        .customize()
        .mutate_request(agentcore_controller::kinds::repository::explicit_scan_on_push)
        .send()
        .await
        .expect("PutImageScanningConfiguration out of band");

    // diff sees all three and names the fields.
    let out = controller(&["diff", "-f", &m.arg()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}{}", stderr(&out));
    assert!(text.contains("spec.authorizer"), "{text}");
    assert!(text.contains("someone-else"), "{text}");
    assert!(text.contains("spec.inlinePolicies"), "{text}");
    assert!(text.contains("spec.scanOnPush"), "{text}");

    let out = controller(&["diff", "-f", &m.arg(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let plan = json(&out);
    assert_eq!(
        plan["calls"]["writes"], 0,
        "diff never writes: {:#}",
        plan["calls"]
    );

    // apply restores it, and then everything is in sync again.
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(object(&report, "AgentRuntime")["action"], "update");
    assert_eq!(object(&report, "Role")["action"], "update");
    assert_eq!(object(&report, "Repository")["action"], "update");
    let out = controller(&["diff", "-f", &m.arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let rt = runtime(&aws, &names.runtime).await;
    let allowed = rt
        .authorizer_configuration()
        .and_then(|a| a.as_custom_jwt_authorizer().ok())
        .map(|j| j.allowed_clients().to_vec())
        .unwrap_or_default();
    assert_ne!(allowed, vec!["someone-else".to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_apply_converges_on_rerun_without_duplicates() {
    let aws = aws().await;
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    let dir = m.arg();
    // Kill at several points of the first run; the repository appears along the way, and
    // once it exists the image is pushed (as CI would) so later runs reach the runtime.
    let mut pushed = false;
    for delay_ms in [150u64, 400, 800, 1200, 1800, 2500, 3500] {
        let mut child = controller_command(&["apply", "-f", &dir, "--timeout", "20s"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn apply");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        if !pushed
            && aws
                .ecr
                .describe_repositories()
                .repository_names(&names.repo)
                .send()
                .await
                .is_ok()
        {
            push_image(&aws, &names.repo, "latest", &names.runtime).await;
            pushed = true;
        }
    }
    if !pushed {
        let _ = apply_json(&m, &["--timeout", "3s"]);
        push_image(&aws, &names.repo, "latest", &names.runtime).await;
    }
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");

    assert_one_of_each(&aws, &names, "after killed applies").await;
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0);
    assert_eq!(writes(&report), 0, "{:#}", report["calls"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn moved_tag_rolls_the_runtime_to_the_new_digest() {
    let m = Manifests::new();
    let (names, first, aws) = converged_stack(&m).await;
    let second = push_image(&aws, &names.repo, "latest", "a new build").await;
    assert_ne!(first, second);
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(object(&report, "AgentRuntime")["action"], "update");
    let rt = runtime(&aws, &names.runtime).await;
    let container = rt
        .agent_runtime_artifact()
        .and_then(|a| a.as_container_configuration().ok())
        .map(|c| c.container_uri().to_string())
        .expect("container");
    assert!(container.ends_with(&second), "{container}");
    // The parameter follows the runtime's ARN.
    assert_eq!(
        parameter(&aws, &names.parameter).await,
        rt.agent_runtime_arn()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigv4_variant_converges() {
    let aws = aws().await;
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests-sigv4");
    let (code, _) = apply_json(&m, &["--timeout", "3s"]);
    assert_eq!(code, 1);
    push_image(&aws, &names.repo, "latest", "sigv4").await;
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    let rt = runtime(&aws, &names.runtime).await;
    assert!(
        rt.authorizer_configuration().is_none(),
        "SigV4: no authorizer"
    );
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0);
    assert_eq!(writes(&report), 0, "{:#}", report["calls"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_same_named_resource_is_not_touched_unless_adopted() {
    let aws = aws().await;
    let m = Manifests::new();
    let name = unique("foreign-");
    aws.ssm
        .put_parameter()
        .name(format!("/{name}"))
        .value("theirs")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("PutParameter by hand");
    let doc = |annotations: &str| {
        format!(
            "apiVersion: agentcore.dev/v1alpha1\nkind: Parameter\nmetadata:\n  name: p\n{annotations}spec:\n  name: /{name}\n  value: {{ value: ours }}\n"
        )
    };
    m.write("p.yaml", &doc(""));
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 1);
    let p = object(&report, "Parameter");
    assert_eq!(p["state"], "Failed");
    assert_eq!(p["reason"], "NotOwned");
    assert!(
        p["message"]
            .as_str()
            .unwrap_or("")
            .contains("agentcore.dev/adopt"),
        "{p:#}"
    );
    assert_eq!(parameter(&aws, &format!("/{name}")).await, "theirs");

    m.write(
        "p.yaml",
        &doc("  annotations:\n    agentcore.dev/adopt: \"true\"\n"),
    );
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(parameter(&aws, &format!("/{name}")).await, "ours");
    // Adopted: now ours even without the annotation.
    m.write("p.yaml", &doc(""));
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(writes(&report), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_tears_down_in_reverse_order_and_honours_retain() {
    let m = Manifests::new();
    let (names, _digest, aws) = converged_stack(&m).await;
    // The guide's stack with its default policies: what stays is kept, and so is the
    // container it stays in; nothing fails.
    let out = controller(&["delete", "-f", &m.arg(), "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json(&out);
    let result = |kind: &str| {
        object(&report, kind)["result"]
            .as_str()
            .unwrap_or("failed")
            .to_string()
    };
    assert_eq!(result("AgentRuntime"), "deleted");
    assert_eq!(result("Role"), "deleted");
    assert_eq!(result("Parameter"), "deleted");
    assert_eq!(result("UserPoolClient"), "deleted");
    assert_eq!(result("UserPool"), "retained");
    assert_eq!(result("User"), "retained");
    assert_eq!(result("Token"), "retained");
    assert_eq!(result("Image"), "retained");
    // The repository (policy Delete) holds the retained image: kept, and the summary says why.
    assert_eq!(result("Repository"), "retained");
    let message = object(&report, "Repository")["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let image = format!("Image/{}-latest", names.repo);
    assert!(
        message.contains(&format!("it holds {image}, which stays")),
        "{message}"
    );
    assert!(
        aws.ecr
            .describe_repositories()
            .repository_names(&names.repo)
            .send()
            .await
            .is_ok(),
        "repository kept with the image"
    );
    let out = controller(&["delete", "-f", &m.arg()]);
    let table = stdout(&out);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("Repository") && l.contains("retained") && l.contains(&image)),
        "{table}"
    );
    assert!(runtimes_named(&aws, &names.runtime).await.is_empty());
    assert!(
        aws.iam
            .get_role()
            .role_name(&names.role)
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        pools_named(&aws, &names.pool).await.len(),
        1,
        "pool retained"
    );

    // The image may go with its repository: both go.
    let runtime_yaml = std::fs::read_to_string(m.path().join("runtime.yaml")).expect("read");
    m.write(
        "runtime.yaml",
        &runtime_yaml
            .replace(
                "  scanOnPush: true\n",
                "  scanOnPush: true\n  forceDelete: true\n",
            )
            .replace(
                &format!("  name: {}-latest\n", names.repo),
                &format!(
                    "  name: {}-latest\n  annotations:\n    agentcore.dev/deletion-policy: Delete\n",
                    names.repo
                ),
            ),
    );
    let out = controller(&["delete", "-f", &m.arg()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        aws.ecr
            .describe_repositories()
            .repository_names(&names.repo)
            .send()
            .await
            .is_err(),
        "repository deleted with forceDelete"
    );
    // Deleting again is a no-op.
    let out = controller(&["delete", "-f", &m.arg()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn validate_reports_every_problem_with_file_and_line() {
    let m = Manifests::new();
    m.write(
        "a.yaml",
        "apiVersion: agentcore.dev/v1alpha1\nkind: AgentRuntime\nmetadata:\n  name: bad-name\nspec:\n  imageRef: img\n  roleRef: missing-role\n  colour: blue\n  authorizer:\n    jwt:\n      userPoolRef: pool\n      allowedAudience: [x]\n      allowedScopes: []\n",
    );
    m.write(
        "b.yml",
        "apiVersion: agentcore.dev/v1alpha1\nkind: Gadget\nmetadata:\n  name: g\nspec: {}\n---\napiVersion: agentcore.dev/v1alpha1\nkind: Parameter\nmetadata:\n  name: p\nspec:\n  name: /p\n  value: { from: AgentRuntime/bad-name }\n---\napiVersion: agentcore.dev/v1alpha1\nkind: Parameter\nmetadata:\n  name: p\nspec:\n  name: /q\n  value: { value: x }\n",
    );
    let out = controller(&["validate", "-f", &m.arg()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for needle in [
        // the runtime name rule
        "a.yaml:4: AgentRuntime/bad-name: metadata.name: `bad-name` is not a valid runtime name",
        "a.yaml:7: AgentRuntime/bad-name: spec.roleRef: refers to Role/missing-role which is not defined",
        "a.yaml:8: AgentRuntime/bad-name: spec.colour: unknown field `colour`",
        // allowedAudience with Cognito access tokens
        "a.yaml:12: AgentRuntime/bad-name: spec.authorizer.jwt.allowedAudience: Cognito access tokens carry client_id, not aud: the runtime would answer \"Claim 'aud' value mismatch\"; use allowedClients",
        "a.yaml:13: AgentRuntime/bad-name: spec.authorizer.jwt.allowedScopes: an empty list",
        "b.yml:2: Gadget/g: kind: unknown kind `Gadget`",
        "b.yml:13: Parameter/p: spec.value: `from` needs `output`",
        "b.yml:18: Parameter/p: metadata.name: duplicate",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(err.contains("10 problems found"), "{err}");
}

#[test]
fn the_shipped_manifests_are_valid() {
    for dir in ["manifests", "manifests-sigv4"] {
        let path = format!("{}/{dir}", env!("CARGO_MANIFEST_DIR"));
        let out = controller(&["validate", "-f", &path]);
        assert_eq!(out.status.code(), Some(0), "{dir}: {}", stderr(&out));
    }
}

/// What an `apply` of the guide's stack costs in AWS reads, from nothing and again with
/// nothing to do. The counts are deterministic against the emulator: a change that adds
/// reads shows here. Objects found by listing (pools, runtimes) share one listing per
/// service.
#[tokio::test(flavor = "multi_thread")]
async fn guide_stack_apply_reads_cold_and_no_op() {
    let m = Manifests::new();
    let names = StackNames::unique();
    for (file, text) in names.render("manifests") {
        m.write(&file, &guide::push_layout(&text, "image.tar"));
    }
    guide::pack_standin_layout(&names.runtime, &m.path().join("image.tar"));
    let objects = 9;

    let (code, cold) = apply_json(&m, &[]);
    assert_eq!(code, 0, "apply converges from nothing: {cold:#}");
    let ops = &cold["calls"]["by_operation"];
    assert_eq!(cold["calls"]["reads"], 20, "cold reads: {ops:#}");
    assert_eq!(
        ops["Cognito Identity Provider:ListUserPools"], 1,
        "one listing finds the pool, and says it is absent only when begun after the question"
    );
    assert_eq!(
        ops["Bedrock AgentCore Control:ListAgentRuntimes"], 1,
        "{ops:#}"
    );

    let (code, again) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(writes(&again), 0, "{again:#}");
    let ops = &again["calls"]["by_operation"];
    let reads = again["calls"]["reads"].as_u64().expect("reads");
    assert_eq!(reads, 18, "no-op reads for {objects} objects: {ops:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_carries_every_field_so_changing_one_keeps_the_others() {
    type Described =
        aws_sdk_bedrockagentcorecontrol::operation::get_agent_runtime::GetAgentRuntimeOutput;
    let m = Manifests::new();
    let (names, _, aws) = converged_stack(&m).await;
    let runtime_yaml =
        std::fs::read_to_string(m.path().join("runtime.yaml")).expect("runtime.yaml");
    // A claim rule besides the allowed clients.
    let runtime_yaml: String = runtime_yaml
        .lines()
        .flat_map(|l| {
            let mut out = vec![l.to_string()];
            if l.trim_start().starts_with("clientRefs:") {
                out.push(
                    "      customClaims: [{ name: \"cognito:groups\", valueType: STRING_ARRAY, operator: CONTAINS_ANY, values: [mcp-users, admins] }]".to_string(),
                );
            }
            out
        })
        .map(|l| l + "\n")
        .collect();
    // A value from another object's output (a Parameter's value).
    let greeting = |value: &str| {
        format!(
            "apiVersion: agentcore.dev/v1alpha1\nkind: Parameter\nmetadata: {{ name: greeting }}\nspec:\n  name: /{}/greeting\n  value: {{ value: \"{value}\" }}\n",
            names.runtime
        )
    };
    m.write("greeting.yaml", &greeting("hello from ssm"));
    let with = |description: &str| {
        runtime_yaml.replace(
            "  protocol: MCP\n",
            &format!(
                "  protocol: MCP\n  description: {description}\n  environment:\n    GREETING: hello\n    FROM_SSM: {{ from: Parameter/greeting, output: value }}\n    LOG_LEVEL: debug\n  lifecycle:\n    idleRuntimeSessionTimeoutSeconds: 600\n  requestHeaderAllowlist: [X-Amzn-Bedrock-AgentCore-Runtime-Custom-Tenant, Authorization]\n  tags: {{ team: mcp, env: test }}\n"
            ),
        )
    };
    let env = |rt: &Described| {
        rt.environment_variables()
            .map(|e| {
                let mut v: Vec<String> = e.iter().map(|(k, v)| format!("{k}={v}")).collect();
                v.sort();
                v
            })
            .unwrap_or_default()
    };
    let idle = |rt: &Described| {
        rt.lifecycle_configuration()
            .and_then(|l| l.idle_runtime_session_timeout())
    };
    let headers = |rt: &Described| {
        match rt.request_header_configuration() {
            Some(aws_sdk_bedrockagentcorecontrol::types::RequestHeaderConfiguration::RequestHeaderAllowlist(h)) => {
                let mut h = h.clone();
                h.sort();
                h
            }
            _ => Vec::new(),
        }
    };
    let claims = |rt: &Described| {
        rt.authorizer_configuration()
            .and_then(|a| a.as_custom_jwt_authorizer().ok())
            .map(|j| {
                j.custom_claims()
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {:?}",
                            c.inbound_token_claim_name(),
                            c.authorizing_claim_match_value()
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let clients = |rt: &Described| {
        rt.authorizer_configuration()
            .and_then(|a| a.as_custom_jwt_authorizer().ok())
            .map(|j| j.allowed_clients().to_vec())
            .unwrap_or_default()
    };
    m.write("runtime.yaml", &with("first"));
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    let rt = runtime(&aws, &names.runtime).await;
    assert_eq!(
        env(&rt),
        [
            "FROM_SSM=hello from ssm",
            "GREETING=hello",
            "LOG_LEVEL=debug"
        ]
    );
    assert_eq!(idle(&rt), Some(600));
    let passed = [
        "Authorization",
        "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Tenant",
    ];
    assert_eq!(headers(&rt), passed);
    let rules = claims(&rt);
    assert_eq!(rules.len(), 1, "{rt:?}");
    assert!(
        rules[0].starts_with("cognito:groups")
            && rules[0].contains("ContainsAny")
            && rules[0].contains("mcp-users"),
        "{rules:?}"
    );
    let allowed = clients(&rt);
    assert_eq!(allowed.len(), 1, "{rt:?}");
    let version = rt.agent_runtime_version().to_string();

    // The emulator replaces the whole configuration on update, as AgentCore does: an update
    // naming only what is required drops the rest (so the check below can fail).
    aws.agentcore
        .update_agent_runtime()
        .agent_runtime_id(rt.agent_runtime_id())
        .set_agent_runtime_artifact(rt.agent_runtime_artifact().cloned())
        .role_arn(rt.role_arn())
        .set_network_configuration(rt.network_configuration().cloned())
        .send()
        .await
        .expect("UpdateAgentRuntime by hand");
    let bare = runtime(&aws, &names.runtime).await;
    assert!(env(&bare).is_empty(), "{bare:?}");
    assert!(clients(&bare).is_empty(), "{bare:?}");
    assert!(headers(&bare).is_empty(), "{bare:?}");
    assert!(bare.description().is_none_or(str::is_empty), "{bare:?}");
    // The controller puts it all back.
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(object(&report, "AgentRuntime")["action"], "update");

    // One field changed in the manifest: the update carries every other one.
    m.write("runtime.yaml", &with("second"));
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    let rt = runtime(&aws, &names.runtime).await;
    assert_eq!(rt.description(), Some("second"));
    assert_eq!(
        env(&rt),
        [
            "FROM_SSM=hello from ssm",
            "GREETING=hello",
            "LOG_LEVEL=debug"
        ]
    );
    assert_eq!(idle(&rt), Some(600));
    assert_eq!(clients(&rt), allowed);
    assert_eq!(headers(&rt), passed);
    assert_eq!(claims(&rt), rules);
    assert!(
        rt.agent_runtime_version().parse::<u64>().unwrap_or(0)
            >= version.parse::<u64>().unwrap_or(0) + 3,
        "a version per update: {version} then {}",
        rt.agent_runtime_version()
    );
    // And nothing more to do.
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(writes(&report), 0, "{report:#}");

    // Tags are the runtime's, not a version's: changing them makes no new version, and a
    // key left out of the manifest is removed (the owner tag stays).
    let tags = |arn: String| {
        let aws = aws.clone();
        async move {
            let out = aws
                .agentcore
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .expect("ListTagsForResource");
            let mut tags: Vec<String> = out
                .tags()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            tags.sort();
            tags
        }
    };
    let rt = runtime(&aws, &names.runtime).await;
    let owner = "agentcore.dev/managed-by=agentcore-controller";
    assert_eq!(
        tags(rt.agent_runtime_arn().to_string()).await,
        [owner, "env=test", "team=mcp"]
    );
    let version = rt.agent_runtime_version().to_string();
    m.write(
        "runtime.yaml",
        &with("second").replace("tags: { team: mcp, env: test }", "tags: { team: agents }"),
    );
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(object(&report, "AgentRuntime")["action"], "update");
    let rt = runtime(&aws, &names.runtime).await;
    assert_eq!(
        rt.agent_runtime_version(),
        version,
        "no new version for tags"
    );
    assert_eq!(
        tags(rt.agent_runtime_arn().to_string()).await,
        [owner, "team=agents"]
    );

    // The output changes: the runtime follows with a new version.
    m.write("greeting.yaml", &greeting("hello again"));
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(object(&report, "AgentRuntime")["action"], "update");
    let rt = runtime(&aws, &names.runtime).await;
    assert_eq!(
        env(&rt),
        ["FROM_SSM=hello again", "GREETING=hello", "LOG_LEVEL=debug"]
    );
    assert_ne!(rt.agent_runtime_version(), version);
    // The runtime's report masks environment values.
    let rt_report = object(&report, "AgentRuntime").to_string();
    assert!(rt_report.contains("FROM_SSM"), "{rt_report}");
    assert!(!rt_report.contains("hello again"), "{rt_report}");
}

/// Named endpoints: `prod` pinned, `staging` on latest; old versions beyond keepVersions
/// deleted unless an endpoint serves them; `rollout` moves an endpoint through its manifest.
#[tokio::test(flavor = "multi_thread")]
async fn endpoints_pin_or_follow_versions_and_rollout_moves_them_through_the_manifest() {
    let m = Manifests::new();
    let (names, _, aws) = converged_stack(&m).await;
    let rt = runtime(&aws, &names.runtime).await;
    let id = rt.agent_runtime_id().to_string();
    let first: u32 = rt
        .agent_runtime_version()
        .parse()
        .expect("a version number");
    let endpoint_yaml = |name: &str, version: &str| {
        format!(
            "apiVersion: agentcore.dev/v1alpha1\nkind: RuntimeEndpoint\nmetadata:\n  name: {name}\nspec:\n  runtimeRef: {}\n  # moved by `rollout promote`\n  version: {version}   # keep this comment\n  description: the {name} endpoint\n",
            names.runtime
        )
    };
    m.write(
        "endpoints.yaml",
        &format!(
            "{}---\n{}",
            endpoint_yaml("prod", &first.to_string()),
            endpoint_yaml("staging", "latest")
        ),
    );
    let runtime_yaml =
        std::fs::read_to_string(m.path().join("runtime.yaml")).expect("runtime.yaml");
    let with = |description: &str| {
        runtime_yaml.replace(
            "  protocol: MCP\n",
            &format!("  protocol: MCP\n  keepVersions: 2\n  description: {description}\n"),
        )
    };
    let live = |name: &'static str| {
        let aws = aws.clone();
        let id = id.clone();
        async move {
            let e = aws
                .agentcore
                .get_agent_runtime_endpoint()
                .agent_runtime_id(id)
                .endpoint_name(name)
                .send()
                .await
                .expect("GetAgentRuntimeEndpoint");
            (
                e.live_version().unwrap_or_default().to_string(),
                e.status().as_str().to_string(),
                e.agent_runtime_endpoint_arn().to_string(),
            )
        }
    };
    let versions = || {
        let aws = aws.clone();
        let id = id.clone();
        async move {
            let out = aws
                .agentcore
                .list_agent_runtime_versions()
                .agent_runtime_id(id)
                .send()
                .await
                .expect("ListAgentRuntimeVersions");
            let mut v: Vec<u32> = out
                .agent_runtimes()
                .iter()
                .filter_map(|r| r.agent_runtime_version().parse().ok())
                .collect();
            v.sort_unstable();
            v
        }
    };

    // Three updates of the runtime: staging follows, prod stays, DEFAULT is AgentCore's.
    for n in 1..=3 {
        m.write("runtime.yaml", &with(&format!("update {n}")));
        let (code, report) = apply_json(&m, &[]);
        assert_eq!(code, 0, "{report:#}");
    }
    let latest: u32 = runtime(&aws, &names.runtime)
        .await
        .agent_runtime_version()
        .parse()
        .expect("a version number");
    assert_eq!(latest, first + 3, "a version per update");
    let (prod, status, prod_arn) = live("prod").await;
    assert_eq!(
        (prod.as_str(), status.as_str()),
        (&*first.to_string(), "READY")
    );
    assert!(
        prod_arn.ends_with(&format!("runtime/{id}/runtime-endpoint/prod")),
        "{prod_arn}"
    );
    assert_eq!(live("staging").await.0, latest.to_string());
    assert_eq!(live("DEFAULT").await.0, latest.to_string());
    // keepVersions 2: the two newest, and the one prod serves. A version made by an update
    // is counted at the next pass, once the update is done.
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(versions().await, [first, latest - 1, latest]);
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(writes(&report), 0, "{report:#}");
    let staging = report["objects"]
        .as_array()
        .and_then(|objects| objects.iter().find(|o| o["name"] == "staging"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(staging["state"], "Ready", "{report:#}");

    // rollout status: versions newest first, with the endpoints serving each.
    let dir = m.arg();
    let out = controller(&["rollout", "status", &names.runtime, "-f", &dir]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let line_of = |v: u32| {
        text.lines()
            .find(|l| l.starts_with(&format!("{v} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line_of(latest).ends_with("DEFAULT, staging"), "{text}");
    assert!(line_of(first).ends_with("prod"), "{text}");
    assert!(line_of(first).contains("sha256:"), "{text}");
    assert!(line_of(latest - 2).is_empty(), "deleted: {text}");
    let out = controller(&[
        "rollout",
        "status",
        &names.runtime,
        "-f",
        &dir,
        "-o",
        "json",
    ]);
    let status = json(&out);
    assert_eq!(status["latest"], latest, "{status:#}");
    assert_eq!(
        status["versions"].as_array().map(Vec::len),
        Some(3),
        "{status:#}"
    );

    // promote: printed, then written; the file keeps its comments.
    let before = std::fs::read_to_string(m.path().join("endpoints.yaml")).expect("read");
    let to = latest.to_string();
    let out = controller(&[
        "rollout",
        "promote",
        "prod",
        "--to-version",
        &to,
        "-f",
        &dir,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "-  version: {first}   # keep this comment\n+  version: {latest}   # keep this comment"
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(m.path().join("endpoints.yaml")).expect("read"),
        before,
        "without --write nothing is written"
    );
    let out = controller(&[
        "rollout",
        "promote",
        "prod",
        "--to-version",
        &to,
        "-f",
        &dir,
        "--write",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = std::fs::read_to_string(m.path().join("endpoints.yaml")).expect("read");
    assert_eq!(
        after,
        before.replacen(
            &format!("version: {first}   #"),
            &format!("version: {latest}   #"),
            1
        )
    );
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(live("prod").await.0, latest.to_string());
    // The first version is no longer served: the next pass deletes it.
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(versions().await, [latest - 1, latest]);
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(writes(&report), 0, "{report:#}");

    // undo: back to the newest older version.
    let out = controller(&["rollout", "undo", "prod", "-f", &dir, "--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(live("prod").await.0, (latest - 1).to_string());

    // Moved by hand: moved back.
    aws.agentcore
        .update_agent_runtime_endpoint()
        .agent_runtime_id(&id)
        .endpoint_name("prod")
        .agent_runtime_version(latest.to_string())
        .send()
        .await
        .expect("UpdateAgentRuntimeEndpoint by hand");
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(live("prod").await.0, (latest - 1).to_string());

    // A version the runtime does not have: refused, nothing written.
    let now = std::fs::read_to_string(m.path().join("endpoints.yaml")).expect("read");
    let out = controller(&[
        "rollout",
        "promote",
        "prod",
        "--to-version",
        "9999",
        "-f",
        &dir,
        "--write",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has no version 9999"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(m.path().join("endpoints.yaml")).expect("read"),
        now
    );

    // Two more updates: `latest` is now beyond keepVersions and unserved, so the next pass
    // deletes it; promoting prod to it is refused rather than racing that delete.
    for n in 4..=5 {
        m.write("runtime.yaml", &with(&format!("update {n}")));
        let (code, report) = apply_json(&m, &[]);
        assert_eq!(code, 0, "{report:#}");
    }
    assert_eq!(
        versions().await,
        [latest - 1, latest, latest + 1, latest + 2],
        "pruned at the next pass"
    );
    let to = latest.to_string();
    let out = controller(&[
        "rollout",
        "promote",
        "prod",
        "--to-version",
        &to,
        "-f",
        &dir,
        "--write",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("keepVersions: 2"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(m.path().join("endpoints.yaml")).expect("read"),
        now
    );
    let (code, report) = apply_json(&m, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(versions().await, [latest - 1, latest + 1, latest + 2]);
}
