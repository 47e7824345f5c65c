//! The daemon end to end, against the emulator: it follows the manifests directory
//! (add, edit, delete), restores drift at the next resync, keeps going past a broken
//! file (logging its problem once), refuses a mass prune until confirmed, keeps a
//! repository its retained image is in, tells spec, dependency and drift changes apart,
//! turns ready while its queue never drains, survives kill -9 without duplicates or
//! forgotten prunes, reads ownership afresh before a prune deletes anything, and follows
//! a manifest directory reached through a symlink that is swapped (git-sync), and
//! guards its endpoints beyond loopback (Host names, an admin token for POSTs).

use std::time::Duration;

use agentcore_controller::aws::Aws;
use testkit::*;

const LIMIT: Duration = Duration::from_secs(60);

fn param(object: &str, name: &str, value: &str) -> String {
    format!(
        "apiVersion: agentcore.dev/v1alpha1\nkind: Parameter\nmetadata:\n  name: {object}\nspec:\n  name: {name}\n  value: {{ value: \"{value}\" }}\n"
    )
}

/// Poll an async condition against the emulator until it holds.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + LIMIT;
    while !cond().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn wait_status(d: &Daemon, what: &str, cond: impl FnMut() -> bool) {
    let mut cond = cond;
    let deadline = std::time::Instant::now() + LIMIT;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; status: {:#}\nlog tail:\n{}",
            d.status(),
            tail(&d.log_text(), 30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_follows_the_directory_restores_drift_and_guards_prunes() {
    let aws = aws().await;
    let u = unique("d");
    let m = Manifests::new();
    let (p1, p2, p3) = (
        format!("/{u}/one"),
        format!("/{u}/two"),
        format!("/{u}/three"),
    );
    let repo = format!("repo-{u}");
    m.write("a.yaml", &param("one", &p1, "v1"));
    m.write(
        "b.yaml",
        &format!(
            "{}---\napiVersion: agentcore.dev/v1alpha1\nkind: Repository\nmetadata:\n  name: {repo}\nspec:\n  scanOnPush: true\n",
            param("two", &p2, "v2")
        ),
    );
    let instance = format!("inst-{u}");
    let d = Daemon::start(
        m.path(),
        &[
            "--instance",
            &instance,
            "--resync",
            "2s",
            "--retry-base",
            "200ms",
        ],
        None,
    );
    wait_status(&d, "first objects Ready", || d.all_ready());
    assert_eq!(parameter_value(&aws, &p1).await.as_deref(), Some("v1"));
    let (code, _) = d.get("/readyz");
    assert_eq!(code, 200, "ready after the first full pass");

    // Add a manifest: it appears.
    m.write("c.yaml", &param("three", &p3, "v3"));
    eventually("the new parameter", || async {
        parameter_value(&aws, &p3).await.as_deref() == Some("v3")
    })
    .await;

    // Edit a field: updated.
    m.write("a.yaml", &param("one", &p1, "v1-edited"));
    eventually("the edit", || async {
        parameter_value(&aws, &p1).await.as_deref() == Some("v1-edited")
    })
    .await;

    // Out-of-band change: restored within a resync.
    aws.ssm
        .put_parameter()
        .name(&p2)
        .value("changed by hand")
        .overwrite(true)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("out-of-band change");
    eventually("drift restored", || async {
        parameter_value(&aws, &p2).await.as_deref() == Some("v2")
    })
    .await;
    // The metric is counted once the reconcile that wrote the value has finished.
    wait_status(&d, "the drift correction counted", || {
        d.get("/metrics")
            .1
            .contains("agentcore_controller_changes_total{kind=\"Parameter\",cause=\"drift\"}")
    });

    // A broken file: reported in /status; the others are still reconciled; fixing it resumes.
    m.write(
        "b.yaml",
        "apiVersion: agentcore.dev/v1alpha1\nkind: [Parameter\n",
    );
    wait_status(&d, "the problem in /status", || {
        d.status()["problems"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p.as_str().unwrap_or("").contains("b.yaml"))
        })
    });
    broken_b_stops_nothing_else(&d, &aws, &m, &p1, &p2, "v1-while-b-broken").await;
    m.write("b.yaml", &param("two", &p2, "v2-fixed"));
    eventually("b.yaml resumed", || async {
        parameter_value(&aws, &p2).await.as_deref() == Some("v2-fixed")
    })
    .await;
    wait_status(&d, "problem cleared", || {
        d.status()["problems"]
            .as_array()
            .is_none_or(|ps| ps.is_empty())
    });

    // Suspended: drift is observed and reported, not corrected.
    m.write(
        "a.yaml",
        &param("one", &p1, "v1-while-b-broken").replace(
            "  name: one\n",
            "  name: one\n  annotations:\n    agentcore.dev/suspend: \"true\"\n",
        ),
    );
    wait_status(&d, "suspended", || {
        d.object("Parameter", "one")
            .is_some_and(|o| o["suspended"] == true)
    });
    aws.ssm
        .put_parameter()
        .name(&p1)
        .value("hand edit while suspended")
        .overwrite(true)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("out-of-band change");
    let (code, _) = d.post("/reconcile");
    assert_eq!(code, 202);
    wait_status(&d, "drift reported on the suspended object", || {
        d.object("Parameter", "one").is_some_and(|o| {
            o["drift"].as_array().is_some_and(|c| !c.is_empty())
                && o["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Synced" && c["reason"] == "Suspended")
                })
        })
    });
    assert_eq!(
        parameter_value(&aws, &p1).await.as_deref(),
        Some("hand edit while suspended"),
        "a suspended object is never written"
    );

    // Delete a manifest: pruned. (b.yaml no longer has the repository: pruned too.)
    m.remove("c.yaml");
    eventually("the parameter pruned", || async {
        parameter_value(&aws, &p3).await.is_none()
    })
    .await;
    eventually("the repository pruned", || async {
        aws.ecr
            .describe_repositories()
            .repository_names(&repo)
            .send()
            .await
            .is_err()
    })
    .await;

    // Empty the directory: the mass-deletion guard refuses, until confirmed.
    m.remove("a.yaml");
    m.remove("b.yaml");
    wait_status(&d, "the prune refused", || {
        !d.status()["pruneRefused"].is_null()
    });
    let refused = d.status()["pruneRefused"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(refused.contains("refusing to prune 2 of 2"), "{refused}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        parameter_value(&aws, &p1).await.is_some(),
        "kept while refused"
    );
    let out = controller(&["confirm-prune", "--listen", &d.listen]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    eventually("everything pruned after confirmation", || async {
        parameter_value(&aws, &p1).await.is_none() && parameter_value(&aws, &p2).await.is_none()
    })
    .await;

    // The status command reads the daemon; SIGTERM exits 0.
    let out = controller(&["status", "--listen", &d.listen]);
    assert!(stdout(&out).starts_with("KIND"), "{}", stdout(&out));
    assert_eq!(d.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_and_restart_never_duplicates_and_still_prunes_what_was_removed_meanwhile() {
    let aws = aws().await;
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    let instance = format!("inst-{}", unique("k"));
    let flags = [
        "--instance",
        instance.as_str(),
        "--resync",
        "3s",
        "--retry-base",
        "200ms",
    ];

    // Kill -9 while the first reconciles are in flight, several times.
    for delay in [300u64, 700, 1200] {
        let d = Daemon::start(m.path(), &flags, None);
        std::thread::sleep(Duration::from_millis(delay));
        d.kill9();
    }
    // CI pushes the image once the repository exists.
    let d = Daemon::start(m.path(), &flags, None);
    eventually("the repository", || async {
        aws.ecr
            .describe_repositories()
            .repository_names(&names.repo)
            .send()
            .await
            .is_ok()
    })
    .await;
    push_image(&aws, &names.repo, "latest", &names.runtime).await;
    wait_status(&d, "the stack Ready", || d.all_ready());
    // One more kill -9 right in a reconcile (an edit triggers one), then remove a
    // manifest while the daemon is down.
    let runtime_yaml = std::fs::read_to_string(m.path().join("runtime.yaml")).expect("read");
    m.write(
        "runtime.yaml",
        &runtime_yaml.replace("keepLastImages: 10", "keepLastImages: 12"),
    );
    std::thread::sleep(Duration::from_millis(150));
    d.kill9();
    m.remove("outputs.yaml"); // the Token (Retain) and the Parameter (Delete)
    let d = Daemon::start(m.path(), &flags, None);
    eventually("the parameter pruned after the restart", || async {
        parameter_value(&aws, &names.parameter).await.is_none()
    })
    .await;
    wait_status(&d, "the stack Ready again", || d.all_ready());

    // Exactly one of everything.
    assert_one_of_each(&aws, &names, "after kill -9 and restarts").await;
    // The retained secret is still there; the edit made before the kill landed.
    assert!(
        aws.secrets
            .describe_secret()
            .secret_id(&names.secret)
            .send()
            .await
            .is_ok(),
        "secret retained"
    );
    let lifecycle = aws
        .ecr
        .get_lifecycle_policy()
        .repository_name(&names.repo)
        .send()
        .await
        .expect("lifecycle");
    assert!(
        lifecycle
            .lifecycle_policy_text()
            .unwrap_or("")
            .contains("12"),
        "{:?}",
        lifecycle.lifecycle_policy_text()
    );
    assert_eq!(d.terminate(), Some(0));
}

/// Parameters `p0` … `p{n-1}` under `/{u}/`, one file each.
fn write_params(m: &Manifests, u: &str, n: usize) {
    for i in 0..n {
        m.write(
            &format!("p{i}.yaml"),
            &param(&format!("p{i}"), &format!("/{u}/p{i}"), "v"),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_that_cannot_keep_its_resync_period_says_so() {
    let u = unique("lag");
    let m = Manifests::new();
    write_params(&m, &u, 4);
    // One at a time and two SSM requests a second cannot re-read four parameters every
    // second: resyncs queue up behind each other.
    let d = Daemon::start(
        m.path(),
        &[
            "--instance",
            &format!("inst-{u}"),
            "--resync",
            "1s",
            "--concurrency",
            "1",
            "--aws-rate-limit",
            "default=20,ssm=2",
        ],
        None,
    );
    wait_status(&d, "a falling-behind warning", || {
        d.log_text().contains("falling behind")
    });
    let metrics = d.get("/metrics").1;
    let lag: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("agentcore_controller_resync_lag_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no resync lag in {metrics}"));
    assert!(lag > 0.0, "lag {lag}");
    assert_eq!(d.terminate(), Some(0));
}

fn follower(object: &str, name: &str, of: &str) -> String {
    format!(
        "apiVersion: agentcore.dev/v1alpha1\nkind: Parameter\nmetadata:\n  name: {object}\nspec:\n  name: {name}\n  value: {{ from: Parameter/{of}, output: value }}\n"
    )
}

fn changes_counted(d: &Daemon, cause: &str) -> bool {
    d.get("/metrics").1.contains(&format!(
        "agentcore_controller_changes_total{{kind=\"Parameter\",cause=\"{cause}\"}}"
    ))
}

fn observed_hash(d: &Daemon, name: &str) -> String {
    d.object("Parameter", name)
        .and_then(|o| o["observedHash"].as_str().map(String::from))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn causes_apart_the_hash_reconciled_and_a_broken_file_logged_once() {
    let aws = aws().await;
    let u = unique("c");
    let m = Manifests::new();
    let (p1, p2) = (format!("/{u}/one"), format!("/{u}/follows"));
    m.write("one.yaml", &param("one", &p1, "v1"));
    m.write("follows.yaml", &follower("follows", &p2, "one"));
    m.write(
        "broken.yaml",
        "apiVersion: agentcore.dev/v1alpha1\nkind: [Parameter\n",
    );
    let d = Daemon::start(
        m.path(),
        &[
            "--instance",
            &format!("inst-{u}"),
            "--resync",
            "2s",
            "--retry-base",
            "200ms",
        ],
        None,
    );
    wait_status(&d, "both objects Ready", || {
        d.condition("Parameter", "one", "Ready") && d.condition("Parameter", "follows", "Ready")
    });
    let first_hash = observed_hash(&d, "one");
    assert!(!first_hash.is_empty(), "{:#}", d.status());

    // A manifest edit is a spec change; the parameter that follows it, a dependency change.
    m.write("one.yaml", &param("one", &p1, "v2"));
    eventually("the follower follows", || async {
        parameter_value(&aws, &p2).await.as_deref() == Some("v2")
    })
    .await;
    wait_status(&d, "the new hash reconciled", || {
        let h = observed_hash(&d, "one");
        !h.is_empty() && h != first_hash
    });
    wait_status(&d, "spec and dependency changes counted", || {
        changes_counted(&d, "spec") && changes_counted(&d, "dependency")
    });
    assert!(
        !changes_counted(&d, "drift"),
        "nothing was changed outside the manifests:\n{}",
        d.get("/metrics").1
    );
    assert!(!d.log_text().contains("drift corrected"));

    // A change made by hand is drift.
    aws.ssm
        .put_parameter()
        .name(&p2)
        .value("changed by hand")
        .overwrite(true)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("out-of-band change");
    wait_status(&d, "the drift correction counted", || {
        changes_counted(&d, "drift")
    });
    assert!(d.log_text().contains("drift corrected"));

    // Every reload still has the broken file: its problem is logged once, and so is the
    // prune it holds back (the broken file may define what is gone).
    m.remove("follows.yaml");
    let loads = |d: &Daemon| d.log_text().matches("manifests loaded").count();
    for i in 0..3 {
        let before = loads(&d);
        m.write(&format!("note-{i}.txt"), "not a manifest");
        wait_status(&d, "a reload", || loads(&d) > before);
    }
    let log = d.log_text();
    let logged = log
        .lines()
        .filter(|l| l.contains("manifest problem") && l.contains("broken.yaml"))
        .count();
    assert_eq!(logged, 1, "{}", tail(&log, 40));
    assert_eq!(
        log.matches("not pruning while a manifest file cannot be read")
            .count(),
        1,
        "{}",
        tail(&log, 40)
    );
    assert_eq!(
        parameter_value(&aws, &p2).await.as_deref(),
        Some("v2"),
        "held back"
    );

    // Repaired: one line says so.
    m.write("broken.yaml", &param("three", &format!("/{u}/three"), "v3"));
    wait_status(&d, "the repair logged", || {
        d.log_text()
            .lines()
            .any(|l| l.contains("manifest problem fixed") && l.contains("broken.yaml"))
    });
    eventually("the held-back prune done", || async {
        parameter_value(&aws, &p2).await.is_none()
    })
    .await;
    assert_eq!(d.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_after_every_object_had_a_reconcile_though_the_queue_never_drains() {
    let u = unique("ready");
    let m = Manifests::new();
    write_params(&m, &u, 8);
    // One reconcile at a time and three SSM requests a second cannot re-read eight
    // parameters every second: from the first resyncs on, something is always queued.
    let d = Daemon::start(
        m.path(),
        &[
            "--instance",
            &format!("inst-{u}"),
            "--resync",
            "1s",
            "--concurrency",
            "1",
            "--aws-rate-limit",
            "default=20,ssm=3",
        ],
        None,
    );
    let mut ready = serde_json::Value::Null;
    wait_status(&d, "ready", || {
        let s = d.status();
        let done = s["ready"] == true;
        if done {
            ready = s;
        }
        done
    });
    assert!(
        ready["queueDepth"].as_u64().is_some_and(|n| n > 0),
        "the queue was not empty when ready: {ready:#}"
    );
    let objects = ready["objects"].as_array().cloned().unwrap_or_default();
    assert_eq!(objects.len(), 8);
    for o in &objects {
        assert!(!o["lastReconcile"].is_null(), "{o:#}");
    }
    let (code, _) = d.get("/readyz");
    assert_eq!(code, 200);
    assert_eq!(d.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pruned_repository_stays_while_its_retained_image_is_in_it() {
    let aws = aws().await;
    let u = unique("keep");
    let repo = format!("repo-{u}");
    let m = Manifests::new();
    m.write(
        "repo.yaml",
        &format!(
            "apiVersion: agentcore.dev/v1alpha1\nkind: Repository\nmetadata:\n  name: {repo}\nspec:\n  scanOnPush: true\n---\napiVersion: agentcore.dev/v1alpha1\nkind: Image\nmetadata:\n  name: img\nspec:\n  repositoryRef: {repo}\n  tag: latest\n"
        ),
    );
    let d = Daemon::start(
        m.path(),
        &[
            "--instance",
            &format!("inst-{u}"),
            "--resync",
            "2s",
            "--retry-base",
            "200ms",
            "--allow-mass-prune",
        ],
        None,
    );
    eventually("the repository", || async {
        aws.ecr
            .describe_repositories()
            .repository_names(&repo)
            .send()
            .await
            .is_ok()
    })
    .await;
    push_image(&aws, &repo, "latest", &u).await;
    wait_status(&d, "both Ready", || d.all_ready());

    // Both manifests go: the image is retained (its default), so its repository (policy
    // Delete) is kept with it instead of failing to delete.
    m.remove("repo.yaml");
    wait_status(&d, "both pruned", || {
        d.status()["objects"]
            .as_array()
            .is_some_and(|o| o.is_empty())
    });
    let log = d.log_text();
    assert!(
        log.contains("kept: it holds Image/img, which stays"),
        "{}",
        tail(&log, 30)
    );
    assert!(!log.contains("RepositoryNotEmpty"), "{}", tail(&log, 30));
    assert!(
        aws.ecr
            .describe_repositories()
            .repository_names(&repo)
            .send()
            .await
            .is_ok(),
        "the repository stays with the image"
    );
    assert_eq!(d.terminate(), Some(0));
}

/// With `b.yaml` (Parameter `two`, last good value `v2`) broken: `two` keeps its last good
/// spec, is neither pruned nor changed, and an edit of `a.yaml` (Parameter `one`) is still
/// reconciled.
async fn broken_b_stops_nothing_else(
    d: &Daemon,
    aws: &Aws,
    m: &Manifests,
    p1: &str,
    p2: &str,
    new_value: &str,
) {
    let two = d
        .object("Parameter", "two")
        .expect("kept with its last good spec");
    assert!(
        two["validationError"]
            .as_str()
            .unwrap_or("")
            .contains("b.yaml"),
        "{two:#}"
    );
    m.write("a.yaml", &param("one", p1, new_value));
    eventually("a.yaml still reconciled", || async {
        parameter_value(aws, p1).await.as_deref() == Some(new_value)
    })
    .await;
    assert_eq!(
        parameter_value(aws, p2).await.as_deref(),
        Some("v2"),
        "neither pruned nor changed while b.yaml is broken"
    );
}

/// Whether /status lists a problem that contains every one of `parts`.
fn has_problem(d: &Daemon, parts: &[&str]) -> bool {
    d.status()["problems"].as_array().is_some_and(|ps| {
        ps.iter().any(|p| {
            let p = p.as_str().unwrap_or("");
            parts.iter().all(|part| p.contains(part))
        })
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_utf8_stops_nothing_else() {
    let aws = aws().await;
    let u = unique("utf");
    let m = Manifests::new();
    let (p1, p2) = (format!("/{u}/one"), format!("/{u}/two"));
    m.write("a.yaml", &param("one", &p1, "v1"));
    m.write("b.yaml", &param("two", &p2, "v2"));
    // Not UTF-8 from the start: Latin-1 "café".
    let mut latin1 = param("three", &format!("/{u}/three"), "caf").into_bytes();
    let at = latin1.len() - 4;
    latin1.insert(at, 0xe9);
    std::fs::write(m.path().join("c.yaml"), &latin1).expect("write");
    let d = Daemon::start(
        m.path(),
        &["--instance", &format!("inst-{u}"), "--resync", "2s"],
        None,
    );
    wait_status(&d, "the valid objects Ready", || d.all_ready());
    assert_eq!(d.get("/readyz").0, 200, "readiness is not blocked");
    assert!(
        has_problem(&d, &["c.yaml:7", "not UTF-8"]),
        "{:#}",
        d.status()
    );
    assert_eq!(parameter_value(&aws, &p2).await.as_deref(), Some("v2"));

    // A file that was good becomes non-UTF-8: its object keeps its last good spec.
    let mut broken = param("two", &p2, "v2-edited").into_bytes();
    broken.extend([0xff, 0xfe, b'\n']);
    std::fs::write(m.path().join("b.yaml"), &broken).expect("write");
    wait_status(&d, "the problem in /status", || {
        has_problem(&d, &["b.yaml:8", "not UTF-8"])
    });
    broken_b_stops_nothing_else(&d, &aws, &m, &p1, &p2, "v1-edited").await;
    assert_eq!(d.terminate(), Some(0));
}

/// A prune reads ownership when it decides. A parameter whose owner tag was taken off by
/// hand after the daemon last read it is left alone, although the daemon's kept reading
/// (the parameter's version did not move) still says it is its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_prune_leaves_alone_what_was_disowned_by_hand_since_it_was_read() {
    let aws = aws().await;
    let u = unique("disowned");
    let m = Manifests::new();
    let name = format!("/{u}/p");
    m.write("p.yaml", &param("p", &name, "v"));
    let d = Daemon::start(
        m.path(),
        &[
            "--instance",
            &format!("inst-{u}"),
            "--allow-mass-prune",
            "--resync",
            "2s",
        ],
        None,
    );
    // Created, then read again by a resync: that reading of its tags is kept.
    wait_status(&d, "the parameter read again after its creation", || {
        d.status()["objects"].as_array().is_some_and(|os| {
            os.iter()
                .any(|o| o["name"] == "p" && o["lastReconcile"]["outcome"] == "unchanged")
        })
    });
    aws.ssm
        .remove_tags_from_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(&name)
        .tag_keys(agentcore_controller::kinds::OWNER_TAG)
        .send()
        .await
        .expect("take the owner tag off");
    m.remove("p.yaml");
    wait_status(&d, "the prune to finish", || {
        d.status()["objects"]
            .as_array()
            .is_some_and(|os| os.is_empty())
    });
    assert_eq!(
        parameter_value(&aws, &name).await.as_deref(),
        Some("v"),
        "a parameter no longer ours is not deleted; log:\n{}",
        tail(&d.log_text(), 20)
    );
    assert!(
        d.log_text().contains("not-owned"),
        "{}",
        tail(&d.log_text(), 20)
    );
    assert_eq!(d.terminate(), Some(0));
}

/// git-sync's layout: each commit checked out into a new directory, the `current` link
/// swapped to it by rename, the old checkout deleted. The daemon, given
/// `current/manifests`, follows every swap (not only the first), and edits inside the
/// newest checkout.
#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_directory_behind_a_swapped_symlink_is_followed() {
    let aws = aws().await;
    let m = Manifests::new();
    let u = unique("gs");
    let name = format!("/gitsync/{u}");
    let root = m.path().join("git");
    let checkout = |rev: &str| {
        let dir = root.join(".worktrees").join(rev).join("manifests");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("p.yaml"), param("p", &name, rev)).expect("write");
    };
    let publish = |rev: &str, old: Option<&str>| {
        let tmp = root.join(format!(".tmp-{rev}"));
        std::os::unix::fs::symlink(format!(".worktrees/{rev}"), &tmp).expect("link");
        std::fs::rename(&tmp, root.join("current")).expect("swap");
        if let Some(old) = old {
            std::fs::remove_dir_all(root.join(".worktrees").join(old)).expect("rm");
        }
    };
    checkout("r1");
    publish("r1", None);
    let dir = root.join("current/manifests");
    let d = Daemon::start(&dir, &["--resync", "5m"], None);
    eventually("r1 applied", || async {
        parameter_value(&aws, &name).await.as_deref() == Some("r1")
    })
    .await;
    for (rev, old) in [("r2", "r1"), ("r3", "r2"), ("r4", "r3")] {
        checkout(rev);
        publish(rev, Some(old));
        eventually(&format!("{rev} applied"), || async {
            parameter_value(&aws, &name).await.as_deref() == Some(rev)
        })
        .await;
    }
    // An edit inside the newest checkout, as a person on the machine might make.
    std::fs::write(
        root.join(".worktrees/r4/manifests/p.yaml"),
        param("p", &name, "edited"),
    )
    .expect("write");
    eventually("the edit applied", || async {
        parameter_value(&aws, &name).await.as_deref() == Some("edited")
    })
    .await;
    assert!(
        d.log_text().contains("a symlink was swapped"),
        "{}",
        tail(&d.log_text(), 20)
    );
    assert_eq!(d.terminate(), Some(0));
}

/// Beyond loopback: every endpoint refuses Host names it was not told about (DNS
/// rebinding), POSTs need the admin token (and are off without one), the
/// `confirm-prune` command sends the token from its file, and the token is never logged.
#[tokio::test(flavor = "multi_thread")]
async fn beyond_loopback_the_endpoints_check_the_host_and_posts_need_the_admin_token() {
    let m = Manifests::new();
    let token = "tok-e2e-6f1d3a";
    let token_file = m.path().join("admin-token");
    std::fs::write(&token_file, format!("{token}\n")).expect("write");
    let dir = m.path().join("manifests");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let token_arg = token_file.display().to_string();
    let d = Daemon::start(
        &dir,
        &[
            "--listen",
            &listen,
            "--admin-token-file",
            &token_arg,
            "--allowed-host",
            "controller.internal",
        ],
        None,
    );
    let addr = d.listen.clone();
    let with_host = |host: &str| http_with(&addr, "GET", "/status", &[("Host", host)]).0;
    assert_eq!(with_host(&addr), 200, "by IP");
    assert_eq!(with_host(&format!("localhost:{port}")), 200);
    assert_eq!(with_host(&format!("controller.internal:{port}")), 200);
    assert_eq!(
        with_host(&format!("evil.example:{port}")),
        421,
        "a rebound name"
    );
    assert_eq!(
        http_with(&addr, "GET", "/healthz", &[("Host", "evil.example")]).0,
        421
    );
    let post = |auth: Option<&str>| {
        let mut headers = vec![("Host", addr.as_str()), ("x-agentcore-action", "test")];
        let bearer = auth.map(|t| format!("Bearer {t}"));
        if let Some(b) = &bearer {
            headers.push(("Authorization", b.as_str()));
        }
        http_with(&addr, "POST", "/reconcile", &headers).0
    };
    assert_eq!(post(None), 401);
    assert_eq!(post(Some("tok-e2e-6f1d3b")), 401);
    assert_eq!(post(Some(token)), 202);
    // The command sends the token: the daemon answers past the guard (no prune waits).
    let out = controller(&[
        "confirm-prune",
        "--listen",
        &addr,
        "--admin-token-file",
        &token_arg,
    ]);
    assert!(stderr(&out).contains("409"), "{}", stderr(&out));
    let out = controller(&["confirm-prune", "--listen", &addr]);
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert!(!d.log_text().contains(token), "the token was logged");
    assert_eq!(d.terminate(), Some(0));

    // Without a token file, beyond loopback, POSTs are off and the log says so.
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let d = Daemon::start(&dir, &["--listen", &listen], None);
    assert_eq!(d.post("/reconcile").0, 403);
    assert!(
        d.log_text()
            .contains("POST /reconcile and /confirm-prune are off")
    );
    assert_eq!(d.get("/status").0, 200);
    assert_eq!(d.terminate(), Some(0));

    // A token file that cannot be used stops the daemon before it starts.
    let out = controller(&[
        "run",
        "-f",
        &dir.display().to_string(),
        "--admin-token-file",
        "/nonexistent/token",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot read the admin token file"));
}
