//! The policy `iam-policy` prints is sufficient: a whole lifecycle of the guide's stack
//! with a machine-to-machine token beside it (a resource server, the pool's domain, a
//! client_credentials client and Token) (apply, drift repaired, a daemon renewing the
//! token, delete), every AWS call the
//! controller made during it read from the emulator's request log, each mapped to its
//! IAM action and the resource it named, each allowed by the printed policy. And it is
//! narrow: the same calls on resources the manifests do not name are not allowed, and
//! every action the policy grants is one the controller's code calls.
//!
//! Where the emulator enforces IAM faithfully, it is enforced: the lifecycle runs as an IAM
//! user holding the printed policy's IAM statements, with moto's enforcement on (moto
//! resolves the resource of IAM's role calls; for the other services it checks every call
//! against `*`, which a scoped policy would fail for the wrong reason, so the user may
//! call them freely and the request log proves their part).
//!
//! One test in this binary: the emulator's log then holds only this lifecycle's calls
//! (the test's own calls carry `app/testkit` and are left out), and enforcement, which
//! holds for the whole emulator, is on for this test alone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use testkit::requests::Call;
use testkit::*;

const REGION: &str = "us-east-1";

/// The IAM resource a logged call acts on, from the parameters that name it.
fn resource(call: &Call, account: &str) -> String {
    let arn = |service: &str, rest: &str| format!("arn:aws:{service}:{REGION}:{account}:{rest}");
    let named = |p: &str| call.param(p).map(String::from);
    match call.service.as_str() {
        "ssm" => named("Name")
            .or_else(|| named("Path"))
            .or_else(|| named("ResourceId"))
            .map(|n| arn("ssm", &format!("parameter/{}", n.trim_start_matches('/'))))
            .unwrap_or_else(|| "*".into()),
        "secretsmanager" => match named("SecretId").or_else(|| named("Name")) {
            Some(id) if id.starts_with("arn:") => id,
            // AWS appends six characters to a secret's name in its ARN.
            Some(name) => arn("secretsmanager", &format!("secret:{name}-AbCdEf")),
            None => "*".into(),
        },
        "ecr" => match (named("resourceArn"), named("repositoryName")) {
            (Some(a), _) => a,
            (None, Some(name)) => arn("ecr", &format!("repository/{name}")),
            (None, None) => arn("ecr", "repository/*"),
        },
        "iam" => named("RoleName")
            .map(|n| format!("arn:aws:iam::{account}:role/{n}"))
            .unwrap_or_else(|| "*".into()),
        "cognito-idp" => named("UserPoolId")
            .map(|id| arn("cognito-idp", &format!("userpool/{id}")))
            .unwrap_or_else(|| "*".into()),
        "dynamodb" => named("TableName")
            .map(|t| arn("dynamodb", &format!("table/{t}")))
            .unwrap_or_else(|| "*".into()),
        "bedrock-agentcore" => {
            let parts: Vec<&str> = call.path.trim_matches('/').split('/').collect();
            match parts.as_slice() {
                ["runtimes", id, "runtime-endpoints", name, ..] => arn(
                    "bedrock-agentcore",
                    &format!("runtime/{id}/runtime-endpoint/{name}"),
                ),
                ["runtimes", id, ..] => arn("bedrock-agentcore", &format!("runtime/{id}")),
                ["runtimes"] if call.operation == "CreateAgentRuntime" => {
                    arn("bedrock-agentcore", "runtime/*")
                }
                ["tags", rest @ ..] => percent_encoding::percent_decode_str(&rest.join("/"))
                    .decode_utf8_lossy()
                    .into_owned(),
                _ => "*".into(),
            }
        }
        _ => "*".into(),
    }
}

/// IAM's wildcard match on ARNs.
fn glob(pattern: &str, text: &str) -> bool {
    agentcore_controller::iam_policy::glob(pattern, text)
}

/// Whether the policy document allows `action` on `resource` (its conditions on the
/// owner tag taken as met: every resource the controller touches carries it).
fn allowed(policy: &Value, action: &str, resource: &str) -> bool {
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["Effect"] == "Allow")
        .any(|s| {
            let list = |v: &Value| -> Vec<String> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            };
            list(&s["Action"])
                .iter()
                .any(|a| a.eq_ignore_ascii_case(action))
                && list(&s["Resource"]).iter().any(|r| glob(r, resource))
        })
}

/// An IAM user holding `policy` as its one inline policy; its access key.
async fn iam_user(
    aws: &agentcore_controller::aws::Aws,
    name: &str,
    policy: &Value,
) -> (String, String) {
    aws.iam
        .create_user()
        .user_name(name)
        .send()
        .await
        .expect("CreateUser");
    aws.iam
        .put_user_policy()
        .user_name(name)
        .policy_name("policy")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("PutUserPolicy");
    let out = aws
        .iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .expect("CreateAccessKey");
    let key = out.access_key().expect("access key");
    (
        key.access_key_id().to_string(),
        key.secret_access_key().to_string(),
    )
}

/// The printed policy's IAM statements (their IAM actions only), and every other
/// service's actions on anything: what the emulator can hold the controller to.
fn iam_part(policy: &Value) -> Value {
    let mut statements: Vec<Value> = policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let actions: Vec<Value> = s["Action"]
                .as_array()?
                .iter()
                .filter(|a| a.as_str().is_some_and(|a| a.starts_with("iam:")))
                .cloned()
                .collect();
            if actions.is_empty() {
                return None;
            }
            let mut s = s.clone();
            s["Action"] = Value::Array(actions);
            Some(s)
        })
        .collect();
    statements
        .push(serde_json::json!({ "Effect": "Allow", "NotAction": "iam:*", "Resource": "*" }));
    serde_json::json!({ "Version": "2012-10-17", "Statement": statements })
}

/// Turn the emulator's IAM enforcement on (moto's `INITIAL_NO_AUTH_ACTION_COUNT`, reset
/// to 0 through its API): every later call must be signed by a user its policy allows.
async fn enforce_iam() {
    let url = format!("{}/moto-api/reset-auth", emulator().url);
    let answer = reqwest::Client::new()
        .post(url)
        .body("0")
        .send()
        .await
        .expect("reset-auth");
    assert!(answer.status().is_success(), "{answer:?}");
}

fn with_key(mut command: std::process::Command, key: &(String, String)) -> std::process::Output {
    command
        .env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1)
        .output()
        .expect("run the controller")
}

fn succeeded(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
}

/// Calls that need no IAM permission.
const UNAUTHORIZED_BY_DESIGN: [&str; 2] = ["sts:GetCallerIdentity", "cognito-idp:InitiateAuth"];

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_policy_allows_every_call_of_a_whole_lifecycle_and_no_more() {
    let setup = aws().await;
    let account = setup.account_id.clone();
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    // A token renewed every 5 s while the daemon runs.
    let outputs = std::fs::read_to_string(m.path().join("outputs.yaml")).expect("read");
    m.write(
        "outputs.yaml",
        &outputs.replace(
            "  bearer: access\n",
            "  bearer: access\n  renewBefore: 59m55s\n",
        ),
    );
    // Machine to machine: the guide's pool gets a resource server, a domain, a
    // client_credentials client and its Token.
    let m2m = unique("m");
    m.write(
        "m2m.yaml",
        &format!(
            "apiVersion: agentcore.dev/v1alpha1
kind: ResourceServer
metadata:
  name: api
spec:
  userPoolRef: {pool}
  identifier: api-{m2m}
  scopes: [{{name: read, description: Read}}]
---
apiVersion: agentcore.dev/v1alpha1
kind: UserPoolDomain
metadata:
  name: domain
spec:
  userPoolRef: {pool}
  domain: iam-{m2m}
---
apiVersion: agentcore.dev/v1alpha1
kind: UserPoolClient
metadata:
  name: service-{m2m}
spec:
  userPoolRef: {pool}
  generateSecret: true
  allowedOAuthFlows: [client_credentials]
  allowedOAuthScopes: [api-{m2m}/read]
---
apiVersion: agentcore.dev/v1alpha1
kind: Token
metadata:
  name: machine
spec:
  grant: client_credentials
  clientRef: service-{m2m}
  domainRef: domain
  secretName: m2m/{m2m}/token
",
            pool = names.pool
        ),
    );
    // A named endpoint on the latest version, and old versions pruned.
    let runtime_yaml = std::fs::read_to_string(m.path().join("runtime.yaml")).expect("read");
    m.write(
        "runtime.yaml",
        &runtime_yaml.replace("  protocol: MCP\n", "  protocol: MCP\n  keepVersions: 1\n"),
    );
    m.write(
        "endpoint.yaml",
        &format!(
            "apiVersion: agentcore.dev/v1alpha1\nkind: RuntimeEndpoint\nmetadata:\n  name: staging\nspec:\n  runtimeRef: {}\n",
            names.runtime
        ),
    );
    let dir = m.arg();
    let printed_policy = || {
        let out = controller(&[
            "iam-policy",
            "-f",
            &dir,
            "--region",
            REGION,
            "--account-id",
            &account,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        json(&out)
    };
    let policy = printed_policy();

    // An administrator for the test's own calls, and the controller's user; then the
    // emulator enforces IAM.
    let u = unique("iam");
    let admin = iam_user(
        &setup,
        &format!("admin-{u}"),
        &serde_json::json!({ "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Action": "*", "Resource": "*" }] }),
    )
    .await;
    let key = iam_user(&setup, &format!("controller-{u}"), &iam_part(&policy)).await;
    enforce_iam().await;
    let credentials = |key: &(String, String)| {
        aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new(&key.0, &key.1, None, None, "test"),
        )
    };
    let config = |key: &(String, String)| {
        sdk_config()
            .to_builder()
            .credentials_provider(credentials(key))
            .build()
    };
    let aws = agentcore_controller::aws::Aws::connect(&config(&admin))
        .await
        .expect("the administrator");
    // Enforced: the controller's user may not touch a role the manifests do not name,
    // and unknown credentials get nothing.
    let as_controller = agentcore_controller::aws::Aws::connect(&config(&key))
        .await
        .expect("the controller's user");
    let denied = as_controller
        .iam
        .create_role()
        .role_name(format!("not-in-the-manifests-{u}"))
        .assume_role_policy_document("{}")
        .send()
        .await
        .expect_err("a role the manifests do not name");
    assert!(format!("{denied:?}").contains("AccessDenied"), "{denied:?}");
    assert!(
        setup.iam.list_roles().send().await.is_err(),
        "unknown credentials"
    );

    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let run = |args: &[&str]| with_key(controller_command(args), &key);
    let apply = |timeout: &str| run(&["apply", "-f", &dir, "--timeout", timeout]);
    // The repository first, then the image CI pushes, then the rest.
    let _ = apply("4s");
    push_image(&aws, &names.repo, "latest", &names.runtime).await;
    succeeded(&apply("2m"));

    // Drift, repaired by the next apply.
    aws.ssm
        .put_parameter()
        .name(&names.parameter)
        .value("changed by hand")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .expect("drift");
    succeeded(&apply("2m"));

    // A daemon for a while: resyncs, and token renewals.
    let d = Daemon::start_with(
        m.path(),
        &["--resync", "5s"],
        None,
        &[
            ("AWS_ACCESS_KEY_ID", key.0.as_str()),
            ("AWS_SECRET_ACCESS_KEY", key.1.as_str()),
        ],
    );
    wait_for(Duration::from_secs(60), "the daemon ready", || {
        d.get("/readyz").0 == 200
    });
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(d.terminate(), Some(0));

    // Delete all of it, the resources retained by default too.
    for entry in std::fs::read_dir(m.path()).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("read");
            let text = text.replace(
                "metadata:\n",
                "metadata:\n  annotations:\n    agentcore.dev/deletion-policy: Delete\n",
            );
            std::fs::write(&path, text).expect("write");
        }
    }
    succeeded(&run(&["delete", "-f", &dir]));
    // The annotations added for the delete change nothing in the policy.
    assert_eq!(printed_policy(), policy);

    let log = emulator().request_log.clone().expect("request log");
    let calls: Vec<Call> = testkit::requests::calls_since(&log, since)
        .into_iter()
        .filter(|c| c.app.as_deref() != Some("testkit"))
        .collect();
    assert!(calls.len() > 50, "{} calls", calls.len());
    let mut refused: BTreeSet<String> = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    // The OAuth token endpoint is no AWS API: it takes the client's secret, not IAM.
    let token_requests = calls.iter().filter(|c| c.path == "/oauth2/token").count();
    assert!(token_requests >= 1, "the M2M token was granted");
    let calls: Vec<Call> = calls
        .into_iter()
        .filter(|c| c.path != "/oauth2/token")
        .collect();
    for c in &calls {
        assert!(
            !c.operation.is_empty() && !c.service.is_empty(),
            "a call the test cannot name: {} {}",
            c.method,
            c.path
        );
        let action = c.action();
        *seen.entry(action.clone()).or_default() += 1;
        if UNAUTHORIZED_BY_DESIGN.contains(&action.as_str()) {
            continue;
        }
        let on = resource(c, &account);
        if !allowed(&policy, &action, &on) {
            refused.insert(format!("{action} on {on}"));
        }
        // Handing the execution role to AgentCore needs iam:PassRole on it.
        if let Some(role) = c.param("roleArn")
            && !allowed(&policy, "iam:PassRole", role)
        {
            refused.insert(format!("iam:PassRole on {role}"));
        }
    }
    assert!(
        refused.is_empty(),
        "calls the printed policy does not allow:\n{}\npolicy: {policy:#}",
        refused.into_iter().collect::<Vec<_>>().join("\n")
    );

    // Narrow: the same calls on what the manifests do not name are not allowed.
    for (action, other) in [
        (
            "ssm:PutParameter",
            format!("arn:aws:ssm:{REGION}:{account}:parameter/someone/else"),
        ),
        (
            "secretsmanager:GetSecretValue",
            format!("arn:aws:secretsmanager:{REGION}:{account}:secret:prod/db-AbCdEf"),
        ),
        (
            "iam:PutRolePolicy",
            format!("arn:aws:iam::{account}:role/admin"),
        ),
        ("iam:PassRole", format!("arn:aws:iam::{account}:role/admin")),
        (
            "ecr:PutImage",
            format!("arn:aws:ecr:{REGION}:{account}:repository/another"),
        ),
        (
            "ecr:DeleteRepository",
            format!("arn:aws:ecr:{REGION}:{account}:repository/another"),
        ),
        (
            "ssm:DeleteParameter",
            format!(
                "arn:aws:ssm:{REGION}:{account}:parameter/agentcore-controller/other-instance/inventory/Role/x"
            ),
        ),
    ] {
        assert!(
            !allowed(&policy, action, &other),
            "{action} on {other} is allowed"
        );
    }

    // Every granted action is one the controller calls: this lifecycle called most of
    // them; the rest are called on paths it did not take, named here with the path.
    let granted: BTreeSet<String> = policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let elsewhere: BTreeMap<&str, &str> = BTreeMap::from([
        (
            "iam:PassRole",
            "implied by CreateAgentRuntime and UpdateAgentRuntime (checked above)",
        ),
        (
            "iam:UpdateRole",
            "a role's description or session duration changed",
        ),
        (
            "iam:UpdateAssumeRolePolicy",
            "a role's trust policy changed",
        ),
        (
            "iam:DetachRolePolicy",
            "a managed policy removed from a role",
        ),
        (
            "iam:DeleteRolePolicy",
            "an inline policy removed from a role",
        ),
        (
            "iam:GetRole",
            "reading a role alone, without the account's listing",
        ),
        (
            "iam:GetRolePolicy",
            "reading a role alone, without the account's listing",
        ),
        (
            "iam:ListRolePolicies",
            "reading a role alone, without the account's listing",
        ),
        (
            "iam:ListAttachedRolePolicies",
            "reading a role alone, without the account's listing",
        ),
        (
            "iam:ListRoleTags",
            "reading a role alone, without the account's listing",
        ),
        ("iam:TagRole", "adopting a role"),
        ("iam:AttachRolePolicy", "a role with managedPolicyArns"),
        ("ecr:PutImageScanningConfiguration", "scanOnPush changed"),
        ("ecr:PutImageTagMutability", "imageTagMutability changed"),
        ("ecr:DeleteLifecyclePolicy", "a lifecycle rule removed"),
        ("ecr:PutLifecyclePolicy", "a lifecycle rule set or changed"),
        (
            "ecr:BatchCheckLayerAvailability",
            "an image pushed by the controller (build or OCI layout)",
        ),
        (
            "ecr:InitiateLayerUpload",
            "an image pushed by the controller",
        ),
        ("ecr:UploadLayerPart", "an image pushed by the controller"),
        (
            "ecr:CompleteLayerUpload",
            "an image pushed by the controller",
        ),
        ("ecr:PutImage", "an image pushed by the controller"),
        (
            "ecr:BatchGetImage",
            "an image pushed by the controller (its manifest read back)",
        ),
        ("ecr:TagResource", "adopting a repository"),
        (
            "cognito-idp:UpdateUserPool",
            "a pool's password policy changed",
        ),
        (
            "cognito-idp:UpdateUserPoolClient",
            "a client's flows or token validity changed",
        ),
        (
            "cognito-idp:AdminUpdateUserAttributes",
            "a user's attributes changed",
        ),
        (
            "cognito-idp:UpdateResourceServer",
            "a resource server's name or scopes changed",
        ),
        ("cognito-idp:TagResource", "tags given at a pool's creation"),
        (
            "secretsmanager:UpdateSecret",
            "a Secret's description changed",
        ),
        (
            "secretsmanager:UntagResource",
            "a user's pending mark cleared",
        ),
        (
            "secretsmanager:RestoreSecret",
            "a secret scheduled for deletion is wanted again",
        ),
        (
            "secretsmanager:TagResource",
            "tags given at a secret's creation, or adoption",
        ),
        (
            "bedrock-agentcore:UpdateAgentRuntime",
            "a runtime's configuration or image changed",
        ),
        (
            "bedrock-agentcore:TagResource",
            "tags given at a runtime's creation, or adoption",
        ),
        (
            "bedrock-agentcore:UntagResource",
            "a tag removed from a runtime's manifest",
        ),
        (
            "bedrock-agentcore:UpdateAgentRuntimeEndpoint",
            "an endpoint moved to another version",
        ),
        (
            "ssm:AddTagsToResource",
            "tags given at a parameter's creation",
        ),
        ("ssm:GetParametersByPath", "the inventory read (a daemon)"),
    ]);
    let unexplained: Vec<&String> = granted
        .iter()
        .filter(|a| !seen.contains_key(*a) && !elsewhere.contains_key(a.as_str()))
        .collect();
    assert!(
        unexplained.is_empty(),
        "granted, never called, no path named: {unexplained:?}\ncalled: {seen:?}"
    );
    let stale: Vec<&&str> = elsewhere
        .keys()
        .filter(|a| !granted.contains(**a))
        .collect();
    assert!(stale.is_empty(), "named but not granted: {stale:?}");
    eprintln!(
        "{} calls, {} distinct actions, all allowed; the policy grants {} actions, {} of them called here",
        calls.len(),
        seen.len(),
        granted.len(),
        granted.iter().filter(|a| seen.contains_key(*a)).count()
    );
}
