//! The daemon's shared listings against the AWS emulator: what they answer from a listing
//! (a role's policies, a runtime or pool unchanged since it was read) spares reads at
//! every resync, and never hides a change made outside the manifests for longer than a
//! listing lives.

use std::time::Duration;

use agentcore_controller::aws::Aws;
use serde_json::Value;
use testkit::*;

/// The role's inline policy as IAM holds it, parsed.
async fn inline_policy(aws: &Aws, role: &str) -> (String, Value) {
    let names = aws
        .iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("ListRolePolicies");
    let name = names.policy_names()[0].clone();
    let doc = aws
        .iam
        .get_role_policy()
        .role_name(role)
        .policy_name(&name)
        .send()
        .await
        .expect("GetRolePolicy");
    let text = percent_encoding::percent_decode_str(doc.policy_document())
        .decode_utf8_lossy()
        .into_owned();
    (name, serde_json::from_str(&text).expect("policy JSON"))
}

fn has_xray(policy: &Value) -> bool {
    policy["Statement"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["Action"].to_string().contains("xray:")))
}

/// The pool's minimum password length as Cognito holds it.
async fn minimum_length(aws: &Aws, pool_id: &str) -> Option<i32> {
    aws.cognito
        .describe_user_pool()
        .user_pool_id(pool_id)
        .send()
        .await
        .ok()?
        .user_pool()?
        .policies()?
        .password_policy()?
        .minimum_length()
}

/// A counter of the daemon's /metrics, summed over the series whose labels include all
/// of `labels`.
fn counter(d: &Daemon, family: &str, labels: &[&str]) -> u64 {
    let (_, text) = d.get("/metrics");
    text.lines()
        .filter(|l| l.starts_with(family) && labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn described_pools(d: &Daemon) -> u64 {
    let calls = "agentcore_controller_aws_calls_total{";
    counter(d, calls, &["operation=\"DescribeUserPool\""])
}

fn repository_tag_reads(d: &Daemon) -> u64 {
    let calls = "agentcore_controller_aws_calls_total{";
    counter(
        d,
        calls,
        &["service=\"ECR\"", "operation=\"ListTagsForResource\""],
    )
}

fn pool_reconciles(d: &Daemon) -> u64 {
    let family = "agentcore_controller_reconcile_duration_seconds_count{";
    counter(d, family, &["kind=\"UserPool\""])
}

async fn allowed_clients(aws: &Aws, runtime_name: &str) -> Vec<String> {
    runtime(aws, runtime_name)
        .await
        .authorizer_configuration()
        .and_then(|a| a.as_custom_jwt_authorizer().ok())
        .map(|j| j.allowed_clients().to_vec())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_behind_the_shared_listings_is_repaired_by_the_daemon() {
    let aws = aws().await;
    let m = Manifests::new();
    let names = StackNames::unique();
    for (file, text) in names.render("manifests") {
        m.write(&file, &guide::push_layout(&text, "image.tar"));
    }
    guide::pack_standin_layout(&names.runtime, &m.path().join("image.tar"));
    let d = Daemon::start(m.path(), &["--resync", "2s"], None);
    let ready = tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            if d.all_ready() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    });
    assert!(ready, "converged: {}", d.log_text());

    // Unchanged, a pool is not described again while ListUserPools shows the same last
    // change, nor a repository's tags read again (for a while): resyncs go on meanwhile.
    let (described, tag_reads, reconciles) = (
        described_pools(&d),
        repository_tag_reads(&d),
        pool_reconciles(&d),
    );
    tokio::task::block_in_place(|| {
        wait_for(Duration::from_secs(60), "three resyncs of the pool", || {
            pool_reconciles(&d) >= reconciles + 3
        })
    });
    assert_eq!(
        described_pools(&d),
        described,
        "DescribeUserPool at a resync"
    );
    assert_eq!(repository_tag_reads(&d), tag_reads, "ECR tags at a resync");

    // Out of band: the pool's password policy, the runtime's authorizer (a new runtime
    // version) and the role's inline policy (one statement removed). Each was last read
    // from a listing or kept as read.
    let pool_id = pools_named(&aws, &names.pool).await.remove(0);
    assert_eq!(minimum_length(&aws, &pool_id).await, Some(8));
    // UpdateUserPool resets what it is not given: the tags (ownership) go back as they are.
    let tags = aws
        .cognito
        .describe_user_pool()
        .user_pool_id(&pool_id)
        .send()
        .await
        .expect("DescribeUserPool")
        .user_pool()
        .and_then(|p| p.user_pool_tags().cloned());
    aws.cognito
        .update_user_pool()
        .user_pool_id(&pool_id)
        .set_user_pool_tags(tags)
        .policies(
            aws_sdk_cognitoidentityprovider::types::UserPoolPolicyType::builder()
                .password_policy(
                    aws_sdk_cognitoidentityprovider::types::PasswordPolicyType::builder()
                        .minimum_length(12)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("UpdateUserPool out of band");
    let rt = runtime(&aws, &names.runtime).await;
    let mut jwt = rt
        .authorizer_configuration()
        .and_then(|a| a.as_custom_jwt_authorizer().ok())
        .cloned()
        .expect("jwt");
    jwt.allowed_clients = Some(vec!["someone-else".into()]);
    set_jwt_authorizer(&aws, &rt, jwt).await;
    let (policy_name, mut policy) = inline_policy(&aws, &names.role).await;
    assert!(has_xray(&policy), "{policy:#}");
    if let Some(statements) = policy["Statement"].as_array_mut() {
        statements.retain(|s| !s["Action"].to_string().contains("xray:"));
    }
    aws.iam
        .put_role_policy()
        .role_name(&names.role)
        .policy_name(&policy_name)
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("PutRolePolicy out of band");

    // The daemon puts both back within a few resyncs and listing lifetimes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let clients = allowed_clients(&aws, &names.runtime).await;
        let (_, policy) = inline_policy(&aws, &names.role).await;
        let length = minimum_length(&aws, &pool_id).await;
        if clients != ["someone-else"] && has_xray(&policy) && length == Some(8) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "drift not repaired within 60 s (allowedClients {clients:?}, X-Ray statement {}, \
             minimum length {length:?}):\n{}",
            has_xray(&policy),
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_one_of_each(&aws, &names, "after the daemon repaired drift").await;
}

/// Every write the SDK makes marks what it wrote, whichever code made it: a listing begun
/// before the write no longer answers for it (it is read directly until a newer listing).
#[tokio::test(flavor = "multi_thread")]
async fn the_controllers_own_writes_are_marked_for_the_listings() {
    let aws = aws().await;
    let names = StackNames::unique();
    let before = tokio::time::Instant::now();
    let lists = &aws.lists;
    // A read marks nothing (even one answered "not found").
    let _ = aws.iam.get_role().role_name(&names.role).send().await;
    let _ = aws
        .secrets
        .describe_secret()
        .secret_id(&names.secret)
        .send()
        .await;
    assert!(!lists.roles_written.since(&names.role, before));
    assert!(!lists.secrets_written.since(&names.secret, before));
    aws.secrets
        .create_secret()
        .name(&names.secret)
        .secret_string("{}")
        .send()
        .await
        .expect("CreateSecret");
    assert!(
        lists.secrets_written.since(&names.secret, before),
        "CreateSecret marks its secret"
    );
    aws.iam
        .create_role()
        .role_name(&names.role)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .expect("CreateRole");
    assert!(
        lists.roles_written.since(&names.role, before),
        "CreateRole marks its role"
    );
    aws.ecr
        .create_repository()
        .repository_name(&names.repo)
        .send()
        .await
        .expect("CreateRepository");
    assert!(
        lists.repositories_written.since(&names.repo, before),
        "CreateRepository marks its repository"
    );
}
