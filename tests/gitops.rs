//! GitOps end to end, against the emulator: the daemon follows a git remote itself
//! (`run --git`), over `file://` and over smart HTTP with a token, applies each pushed
//! commit, keeps going past a commit with a broken file (its status names the commit and
//! the file), converges back when the branch is force-pushed to an older commit (pruning
//! what the newer one added), fetches at once on a signed push webhook and ignores a
//! forged one, refuses unsigned commits under `--verify-commits`, and posts each event
//! once to a local receiver, with no secret anywhere.

use std::time::{Duration, Instant};

use agentcore_controller::aws::Aws;
use hmac::{KeyInit, Mac};
use testkit::git::{GitHttp, GitRepo, SigningKey};
use testkit::receiver::Receiver;
use testkit::*;

const LIMIT: Duration = Duration::from_secs(60);

fn param(object: &str, name: &str, value: &str) -> String {
    format!(
        "apiVersion: agentcore.dev/v1alpha1\nkind: Parameter\nmetadata:\n  name: {object}\nspec:\n  name: {name}\n  value: {{ value: \"{value}\" }}\n"
    )
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Wait until `cond` holds; on timeout, fail with the daemon's status and log.
async fn until<F, Fut>(d: &Daemon, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + LIMIT;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; status: {:#}\nlog tail:\n{}",
            d.status(),
            tail(&d.log_text(), 40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn value_is(aws: &Aws, name: &str, want: Option<&str>) -> bool {
    parameter_value(aws, name).await.as_deref() == want
}

fn revision_of(status: &serde_json::Value) -> String {
    status["source"]["revision"]["sha"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_branch_is_followed_past_broken_files_and_back_on_a_force_push() {
    let aws = aws().await;
    let u = unique("g");
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::new(dir.path());
    let (one, keep, two, foreign) = (
        format!("/{u}/one"),
        format!("/{u}/keep"),
        format!("/{u}/two"),
        format!("/{u}/foreign"),
    );
    // A parameter another controller instance owns: adopting it is refused for good.
    aws.ssm
        .put_parameter()
        .name(&foreign)
        .value("theirs")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .tags(
            aws_sdk_ssm::types::Tag::builder()
                .key("agentcore.dev/managed-by")
                .value("someone-else")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("put the foreign parameter");
    repo.write("manifests/one.yaml", &param("one", &one, "v1"));
    repo.write("manifests/keep.yaml", &param("keep", &keep, "k"));
    repo.write(
        "manifests/foreign.yaml",
        &param("foreign", &foreign, "ours"),
    );
    repo.write("README.md", "not a manifest: outside --path\n");
    let c1 = repo.commit("one, keep and foreign");
    repo.push();

    let receiver = Receiver::start().await;
    let url = repo.file_url();
    let instance = format!("inst-{u}");
    let workdir = dir.path().join("controller");
    let workdir_arg = workdir.display().to_string();
    let d = Daemon::start_git(
        &[
            "--git",
            &url,
            "--path",
            "manifests",
            "--interval",
            "1s",
            "--git-workdir",
            &workdir_arg,
            "--instance",
            &instance,
            "--resync",
            "3s",
            "--notify",
            &receiver.url,
        ],
        &[],
    );
    until(&d, "one and keep from the first commit", || async {
        value_is(&aws, &one, Some("v1")).await && value_is(&aws, &keep, Some("k")).await
    })
    .await;
    let c1_revision = format!("main@sha1:{c1}");
    until(&d, "the first revision applied", || async {
        d.status()["appliedRevision"] == c1_revision.as_str()
    })
    .await;
    let s = d.status();
    assert_eq!(revision_of(&s), c1, "{s:#}");
    assert_eq!(s["source"]["revision"]["subject"], "one, keep and foreign");
    assert_eq!(s["source"]["ref"], "branch main");
    let object = d.object("Parameter", "one").expect("one is tracked");
    assert_eq!(object["revision"], c1_revision.as_str(), "{object:#}");
    assert!(
        object["source"]
            .as_str()
            .is_some_and(|f| f.contains("manifests/one.yaml")),
        "{object:#}"
    );
    let (_, metrics) = d.get("/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("agentcore_controller_source_info{")
                && l.contains(&c1_revision)
                && l.ends_with(" 1")),
        "no source_info for {c1_revision}:\n{metrics}"
    );
    // The foreign parameter fails for good: told once, not at every retry.
    until(&d, "the refusal of the foreign parameter told", || async {
        !receiver.of("reconcileFailed", Some("foreign")).is_empty()
    })
    .await;

    // An edit and a new object.
    repo.write("manifests/one.yaml", &param("one", &one, "v2"));
    repo.write("manifests/two.yaml", &param("two", &two, "2"));
    let c2 = repo.commit("one v2, and two");
    repo.push();
    until(&d, "the second commit applied", || async {
        value_is(&aws, &one, Some("v2")).await && value_is(&aws, &two, Some("2")).await
    })
    .await;
    until(&d, "the second revision reported", || async {
        d.status()["appliedRevision"] == format!("main@sha1:{c2}").as_str()
    })
    .await;

    // Drift is undone at the next resync, and told.
    aws.ssm
        .put_parameter()
        .name(&one)
        .value("by hand")
        .overwrite(true)
        .send()
        .await
        .expect("drift");
    until(&d, "the drift corrected and told", || async {
        value_is(&aws, &one, Some("v2")).await
            && !receiver.of("driftCorrected", Some("one")).is_empty()
    })
    .await;

    // A commit with a broken file: the other objects go on; the status names both.
    repo.write("manifests/broken.yaml", "kind: [unclosed\n");
    repo.write("manifests/one.yaml", &param("one", &one, "v3"));
    let c3 = repo.commit("one v3, and a broken file");
    repo.push();
    until(&d, "the good part of the broken commit applied", || async {
        value_is(&aws, &one, Some("v3")).await
    })
    .await;
    until(&d, "the broken commit's problem reported", || async {
        let s = d.status();
        revision_of(&s) == c3
            && s["problems"].as_array().is_some_and(|ps| {
                ps.iter().any(|p| {
                    p.as_str()
                        .is_some_and(|p| p.contains("manifests/broken.yaml"))
                })
            })
    })
    .await;
    assert!(value_is(&aws, &two, Some("2")).await, "two stays");

    // Rolling back: the branch is force-pushed to the first commit. AWS converges back,
    // and what the newer commits added is pruned.
    repo.reset_hard(&c1);
    repo.force_push();
    until(&d, "the rollback converged", || async {
        value_is(&aws, &one, Some("v1")).await && value_is(&aws, &two, None).await
    })
    .await;
    until(&d, "the rollback reported", || async {
        let s = d.status();
        s["appliedRevision"] == c1_revision.as_str()
            && s["problems"].as_array().is_none_or(|p| p.is_empty())
    })
    .await;
    // Recovery: the foreign parameter is given up by its owner; reconciling everything
    // now takes it over.
    aws.ssm
        .delete_parameter()
        .name(&foreign)
        .send()
        .await
        .expect("delete the foreign parameter");
    assert_eq!(d.post("/reconcile").0, 202);
    until(&d, "the recovery told", || async {
        value_is(&aws, &foreign, Some("ours")).await
            && !receiver.of("recovered", Some("foreign")).is_empty()
    })
    .await;

    // Removing most of the objects at once is refused until confirmed, and told.
    repo.remove("manifests/one.yaml");
    repo.remove("manifests/keep.yaml");
    repo.commit("remove one and keep");
    repo.push();
    until(&d, "the mass prune refused and told", || async {
        d.status()["pruneRefused"].is_string() && !receiver.of("pruneRefused", None).is_empty()
    })
    .await;
    assert!(value_is(&aws, &one, Some("v1")).await, "one is kept");

    // Each event arrived once: a revision applied per revision switched to, the failure
    // once however often it was retried, the drift once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let applied: Vec<String> = receiver
        .of("revisionApplied", None)
        .iter()
        .map(|e| e["revision"].as_str().unwrap_or_default().to_string())
        .collect();
    let c2_revision = format!("main@sha1:{c2}");
    let c3_revision = format!("main@sha1:{c3}");
    for (rev, n) in [(&c1_revision, 2), (&c2_revision, 1), (&c3_revision, 1)] {
        assert_eq!(
            applied.iter().filter(|r| *r == rev).count(),
            n,
            "{rev}: {applied:#?}"
        );
    }
    assert_eq!(
        receiver.of("reconcileFailed", Some("foreign")).len(),
        1,
        "{:#?}",
        receiver.events()
    );
    assert_eq!(receiver.of("recovered", Some("foreign")).len(), 1);
    assert_eq!(receiver.of("pruneRefused", None).len(), 1);
    let drift = receiver.of("driftCorrected", Some("one"));
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert!(
        drift[0]["fields"].as_array().is_some_and(|f| !f.is_empty()),
        "{drift:#?}"
    );
    for e in receiver.events() {
        assert_eq!(e["instance"], instance.as_str(), "{e}");
    }
    let log = d.log_text();
    assert!(log.contains("revision applied"), "{}", tail(&log, 40));
    assert_eq!(d.terminate(), Some(0));
    assert!(
        workdir.join("current").read_link().is_ok(),
        "the revision in force is a link in the work directory"
    );
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// POST a push notification to the webhook listener; the status code.
fn hook(addr: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the webhook");
    let headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "POST /hooks/git HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_remote_with_a_token_follows_signed_webhooks_and_signed_commits_only() {
    let aws = aws().await;
    let u = unique("h");
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::new(dir.path());
    let key = SigningKey::generate(dir.path(), "ci@example.com");
    let token = format!("ghp_{}", u.replace('-', ""));
    let secret = format!("webhook-secret-{u}");
    let token_file = dir.path().join("token");
    let secret_file = dir.path().join("webhook-secret");
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    std::fs::write(&secret_file, &secret).expect("secret file");
    let server = GitHttp::serve_with_token(dir.path(), &token);
    let one = format!("/{u}/one");

    repo.write("one.yaml", &param("one", &one, "v1"));
    repo.commit_signed("v1", &key);
    repo.push();

    let receiver = Receiver::start().await;
    let url = server.url("remote.git");
    let hook_addr = format!("127.0.0.1:{}", free_port());
    let workdir = dir.path().join("controller").display().to_string();
    let (token_arg, secret_arg, signers) = (
        token_file.display().to_string(),
        secret_file.display().to_string(),
        key.allowed_signers.display().to_string(),
    );
    let instance = format!("inst-{u}");
    let args = [
        "--git",
        &url,
        "--git-token-file",
        &token_arg,
        // Only a webhook (or a restart) fetches within this test.
        "--interval",
        "1h",
        "--webhook-listen",
        &hook_addr,
        "--webhook-secret-file",
        &secret_arg,
        "--verify-commits",
        &signers,
        "--git-workdir",
        &workdir,
        "--instance",
        &instance,
        "--notify",
        &receiver.url,
    ];
    let d = Daemon::start_git(&args, &[]);
    until(&d, "the first signed commit applied", || async {
        value_is(&aws, &one, Some("v1")).await
    })
    .await;

    // A push, then a forged webhook: refused, and nothing fetched.
    repo.write("one.yaml", &param("one", &one, "v2"));
    let c2 = repo.commit_signed("v2", &key);
    repo.push();
    let body = format!("{{\"ref\":\"refs/heads/main\",\"after\":\"{c2}\"}}");
    let requests = server.requests();
    let forged = hmac_hex("not the secret", body.as_bytes());
    let code = hook(
        &hook_addr,
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &format!("sha256={forged}")),
        ],
        &body,
    );
    assert_eq!(code, 401, "a forged signature is refused");
    let refusal = d
        .log_text()
        .lines()
        .find(|l| l.contains("webhook refused"))
        .map(String::from)
        .unwrap_or_default();
    assert!(
        refusal.contains("127.0.0.1:") && refusal.contains("signature does not match"),
        "the refusal is logged with the peer and the reason: {refusal}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        server.requests(),
        requests,
        "a forged webhook fetches nothing"
    );
    assert!(value_is(&aws, &one, Some("v1")).await);

    // The signed webhook fetches at once (the interval is an hour).
    let signed = hmac_hex(&secret, body.as_bytes());
    let sent = Instant::now();
    let code = hook(
        &hook_addr,
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &format!("sha256={signed}")),
        ],
        &body,
    );
    assert_eq!(code, 202);
    until(&d, "the push applied after the webhook", || async {
        value_is(&aws, &one, Some("v2")).await
    })
    .await;
    println!(
        "pushed commit applied {:?} after the signed webhook",
        sent.elapsed()
    );

    // An unsigned commit is refused; the last good revision stays.
    repo.write("one.yaml", &param("one", &one, "v3"));
    let c3 = repo.commit("v3, unsigned");
    repo.push();
    assert_eq!(hook(&hook_addr, &[("X-Gitlab-Token", &secret)], &body), 202);
    until(&d, "the unsigned commit refused", || async {
        d.status()["source"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains(&c3) && e.contains("not signed"))
    })
    .await;
    let s = d.status();
    assert_eq!(revision_of(&s), c2, "{s:#}");
    assert!(value_is(&aws, &one, Some("v2")).await);
    let (_, text) = {
        let o = controller(&["status", "--listen", &d.listen]);
        (o.status.code(), stdout(&o))
    };
    assert!(text.contains("is not signed"), "{text}");
    assert!(text.contains(&format!("main@sha1:{c2}")), "{text}");

    // A commit signed by a key that allowed_signers does not hold is refused too.
    let stranger = SigningKey::generate(dir.path(), "stranger@example.com");
    repo.write("one.yaml", &param("one", &one, "v3b"));
    let c3b = repo.commit_signed("v3b, signed by a stranger", &stranger);
    repo.push();
    assert_eq!(hook(&hook_addr, &[("X-Gitlab-Token", &secret)], &body), 202);
    until(&d, "the stranger's commit refused", || async {
        d.status()["source"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains(&c3b) && e.contains("not signed by a key of"))
    })
    .await;
    assert!(value_is(&aws, &one, Some("v2")).await);

    // A signed commit on top goes through (a generic HMAC-signed webhook).
    repo.write("one.yaml", &param("one", &one, "v4"));
    let c4 = repo.commit_signed("v4", &key);
    repo.push();
    let signed = hmac_hex(&secret, body.as_bytes());
    assert_eq!(
        hook(
            &hook_addr,
            &[("X-Signature", &format!("sha256={signed}"))],
            &body
        ),
        202
    );
    until(&d, "the signed commit applied", || async {
        value_is(&aws, &one, Some("v4")).await && d.status()["source"]["lastError"].is_null()
    })
    .await;

    // One event per refusal (two commits), not per fetch.
    let failures = receiver.of("sourceFailed", None);
    assert_eq!(failures.len(), 2, "{failures:#?}");
    // No secret anywhere: logs, status, metrics, notifications.
    let (_, metrics) = d.get("/metrics");
    let everything = format!(
        "{}\n{}\n{metrics}\n{:?}",
        d.log_text(),
        d.status(),
        receiver.events()
    );
    for s in [&token, &secret] {
        assert!(!everything.contains(s.as_str()), "a secret leaked");
    }
    assert!(
        metrics.contains("agentcore_controller_webhook_requests_total{outcome=\"refused\"} 1"),
        "{metrics}"
    );
    assert_eq!(d.terminate(), Some(0));

    // Restarted while the remote is down: the revision in force before is loaded at once
    // (its objects are reconciled, tokens would be renewed), and the failure is shown.
    drop(server);
    let d = Daemon::start_git(&args, &[]);
    until(
        &d,
        "the kept revision loaded with the remote down",
        || async {
            let s = d.status();
            revision_of(&s) == c4
                && s["source"]["lastError"].is_string()
                && d.condition("Parameter", "one", "Ready")
        },
    )
    .await;
    assert!(
        d.log_text()
            .contains("loading the revision in force before the restart"),
        "{}",
        tail(&d.log_text(), 20)
    );
    assert_eq!(d.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_in_a_semver_range_are_followed_over_ssh_with_known_hosts_enforced() {
    let aws = aws().await;
    let u = unique("s");
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::new(&dir.path().join("repo"));
    // `ssh` for the daemon: records how it was asked to connect, then serves the remote
    // command from the local repository (no SSH server on this machine).
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let ssh_log = dir.path().join("ssh.log");
    let fake = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nfor last; do :; done\nexec sh -c \"$last\"\n",
        ssh_log.display()
    );
    std::fs::write(bin.join("ssh"), fake).expect("fake ssh");
    std::process::Command::new("chmod")
        .args(["+x", &bin.join("ssh").display().to_string()])
        .status()
        .expect("chmod");
    let (key, known_hosts) = (
        dir.path().join("id_ed25519"),
        dir.path().join("known_hosts"),
    );
    std::fs::write(&key, "not used by the fake ssh\n").expect("key");
    std::fs::write(&known_hosts, "git.example.invalid ssh-ed25519 AAAA\n").expect("known_hosts");
    let one = format!("/{u}/one");

    repo.write("one.yaml", &param("one", &one, "1.0.0"));
    repo.commit("1.0.0");
    repo.push();
    repo.tag("v1.0.0");

    let url = format!("ssh://git@git.example.invalid{}", repo.bare.display());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let workdir = dir.path().join("controller").display().to_string();
    let instance = format!("inst-{u}");
    let (key_arg, kh_arg) = (key.display().to_string(), known_hosts.display().to_string());
    let slack = Receiver::start().await;
    let d = Daemon::start_git(
        &[
            "--git",
            &url,
            "--semver",
            "^1",
            "--git-ssh-key",
            &key_arg,
            "--git-known-hosts",
            &kh_arg,
            "--interval",
            "1s",
            "--git-workdir",
            &workdir,
            "--instance",
            &instance,
            "--notify",
            &slack.url,
            "--notify-format",
            "slack",
        ],
        &[("PATH", &path)],
    );
    until(&d, "v1.0.0 applied", || async {
        value_is(&aws, &one, Some("1.0.0")).await
    })
    .await;
    let s = d.status();
    assert_eq!(s["source"]["ref"], "semver ^1", "{s:#}");
    assert_eq!(s["source"]["revision"]["ref"], "v1.0.0", "{s:#}");

    // A higher version in the range is followed (an annotated tag: its commit is used);
    // one outside the range is not.
    repo.write("one.yaml", &param("one", &one, "1.10.0"));
    repo.commit("1.10.0");
    repo.push();
    repo.annotated_tag("v1.10.0", "release 1.10.0");
    until(&d, "v1.10.0 applied", || async {
        value_is(&aws, &one, Some("1.10.0")).await
    })
    .await;
    repo.write("one.yaml", &param("one", &one, "2.0.0"));
    repo.commit("2.0.0");
    repo.push();
    repo.tag("v2.0.0");
    let checked = d.status()["source"]["lastCheckedAt"].clone();
    until(&d, "the remote asked again after v2.0.0", || async {
        d.status()["source"]["lastCheckedAt"] != checked
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        value_is(&aws, &one, Some("1.10.0")).await,
        "v2.0.0 is outside ^1"
    );
    assert_eq!(d.status()["source"]["revision"]["ref"], "v1.10.0");

    // A tag deleted from the remote: the highest left in the range is followed (a
    // rollback); none left: the revision in force stays, and the status says why.
    testkit::git::git(
        &repo.work,
        &["push", "--quiet", "origin", ":refs/tags/v1.10.0"],
    );
    until(&d, "back to v1.0.0", || async {
        value_is(&aws, &one, Some("1.0.0")).await
    })
    .await;
    testkit::git::git(
        &repo.work,
        &["push", "--quiet", "origin", ":refs/tags/v1.0.0"],
    );
    until(&d, "no tag in the range", || async {
        d.status()["source"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("no tag of the remote is a version in semver ^1"))
    })
    .await;
    assert!(value_is(&aws, &one, Some("1.0.0")).await);
    assert_eq!(d.status()["source"]["revision"]["ref"], "v1.0.0");

    // Slack's incoming-webhook form: one text per event.
    let texts: Vec<String> = slack
        .events()
        .iter()
        .filter_map(|e| e["text"].as_str().map(String::from))
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("revision applied") && t.contains("v1.10.0@sha1:")),
        "{texts:#?}"
    );

    // ssh was told to trust only the known_hosts given, with this key alone.
    let log = std::fs::read_to_string(&ssh_log).expect("ssh was run");
    for says in [
        "StrictHostKeyChecking=yes".to_string(),
        format!("UserKnownHostsFile={kh_arg}"),
        format!("-i {key_arg}"),
        "BatchMode=yes".to_string(),
        "git@git.example.invalid".to_string(),
    ] {
        assert!(
            log.lines().all(|l| l.contains(&says)),
            "`{says}` missing:\n{log}"
        );
    }
    assert_eq!(d.terminate(), Some(0));
}

#[test]
fn bad_git_flags_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, "").expect("known_hosts");
    let kh = kh.display().to_string();
    // (arguments, what the error must say)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--git", "ssh://git@example.com/r.git"],
            "--git-known-hosts",
        ),
        (
            vec!["--git", "https://u:p@example.com/r.git"],
            "holds credentials",
        ),
        (
            vec!["--git", "ftp://example.com/r.git"],
            "not a git transport",
        ),
        (
            vec!["--git", "file:///r.git", "--path", "../x"],
            "inside the repository",
        ),
        (
            vec!["--git", "file:///r.git", "--semver", "nope"],
            "not a semver range",
        ),
        (
            vec!["--git", "file:///r.git", "--ref", "a..b"],
            "not a valid git branch name",
        ),
        (
            vec!["--git", "file:///r.git", "-f", "."],
            "cannot be used with",
        ),
        (vec!["--git-known-hosts", &kh], "--git-ssh-key"),
        (
            vec![
                "--git",
                "file:///r.git",
                "--verify-commits",
                "/nonexistent/signers",
            ],
            "--verify-commits /nonexistent/signers: no such file",
        ),
        (
            vec!["--path", "m", "-f", "."],
            "--path is an option of the git source",
        ),
        (
            vec!["--tag", "v1", "-f", "."],
            "--tag is an option of the git source",
        ),
        (
            vec![
                "--webhook-listen",
                "127.0.0.1:0",
                "--webhook-secret-file",
                "/x",
                "-f",
                ".",
            ],
            "it needs --git",
        ),
        (
            vec!["--git", "file:///r.git", "--webhook-listen", "127.0.0.1:0"],
            "--webhook-secret-file",
        ),
        (
            vec!["-f", ".", "--notify", "ftp://x/y"],
            "http:// or https://",
        ),
    ];
    for (args, says) in cases {
        let mut all = vec!["run"];
        all.extend(args.iter().copied());
        let out = controller(&all);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: `{err}` lacks `{says}`");
    }
}
