//! Benchmark of the long-running daemon (`agentcore-controller run`) against the AWS
//! emulator (moto's standalone server), for N copies of the guide's stack.
//!
//! Run with `cargo bench --bench daemon` (sizes: `BENCH_SIZES=10,100,1000`, the default).
//! Under `cargo test --all-targets` this binary is run without `--bench` and does nothing.
//!
//! Per N, with one fresh emulator: cold converge (daemon start until every object is
//! Ready; stand-in images are pushed as soon as the daemon has created each repository,
//! as CI would), the AWS reads and writes that took, steady state over a resync window
//! (reads and writes per object per resync; writes must be 0; daemon CPU per reconcile), a
//! full round on SIGHUP (its duration, and daemon CPU per object in it), edit-to-first-write
//! latency, and the daemon's peak RSS and CPU time. Writes `bench/results.json` and `bench/RESULTS.md`.
//!
//! Other knobs: `BENCH_RATE_LIMIT` (passed to `--aws-rate-limit`; unset: the daemon's
//! default), `BENCH_TIMEOUT` (seconds allowed for cold converge, default 1800),
//! `BENCH_OUT_DIR` (where the results go, default `bench/`), `BENCH_SETTLE` (seconds after
//! convergence before the steady state is measured; default 300, the longest time the
//! controller reads what it wrote directly rather than from a listing),
//! `BENCH_DAEMON_WRAPPER` (a command line the daemon is started under, split on spaces,
//! e.g. `heaptrack -o /tmp/daemon`: for profiling only, as the resource figures are then the
//! wrapper's).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use agentcore_controller::aws::{Access, Aws, access_of};

use serde_json::{Value, json};
use testkit::{
    Emulator, PUSH_SECTION_END, PUSH_SECTION_START, REGION, StackNames, ensure_emulator, free_port,
    guide, repo_root, wait_for,
};

const RESYNC: Duration = Duration::from_secs(30);
/// Steady-state window: one resync period (and at least a full round, see below).
const WINDOW: Duration = Duration::from_secs(30);
/// How often the bench reads /status while it waits for a round (each read costs the
/// daemon CPU: it is measured and taken out of the per-object figure).
const ROUND_POLL: Duration = Duration::from_secs(1);
const CONCURRENCY: usize = 8;
const DEBOUNCE: &str = "250ms"; // the daemon's default, passed explicitly
const KINDS_PER_COPY: usize = 9;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("daemon bench: skipped (run it with `cargo bench --bench daemon`)");
        return;
    }
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10,100,1000".into())
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("BENCH_SIZES: `{s}` is not a number"))
        })
        .collect();
    let rate_limit = std::env::var("BENCH_RATE_LIMIT").ok();
    let timeout = Duration::from_secs(
        std::env::var("BENCH_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1800),
    );
    let root = repo_root();
    ensure_emulator();
    let clk_tck = clock_ticks();

    let mut results = Vec::new();
    for &n in &sizes {
        eprintln!("== N = {n} ({} objects)", n * KINDS_PER_COPY);
        let r = run_size(n, rate_limit.as_deref(), timeout, clk_tck);
        eprintln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        results.push(r);
    }

    let mut doc = json!({
        "machine": {
            "nproc": command_output("nproc", &[]).trim().parse::<u64>().ok(),
            "cpu_model": cpu_model(),
            "memory_total": meminfo_total(),
        },
        "date": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "git_commit": command_output("git", &["-C", &root.display().to_string(), "rev-parse", "--short", "HEAD"]).trim(),
        "config": {
            "concurrency": CONCURRENCY,
            // The daemon binary is built with the bench's own profile.
            "build": if cfg!(debug_assertions) { "dev profile (unoptimized; `--profile dev`)" } else { "release" },
            "resync_seconds": RESYNC.as_secs(),
            "resync_jitter": "±10 %",
            "debounce": DEBOUNCE,
            "aws_rate_limit": rate_limit.clone().unwrap_or_else(|| "daemon default (20 requests/s per service)".into()),
            "steady_window_seconds": WINDOW.as_secs(),
            "emulator": "moto[server]==5.2.5 via scripts/emulator.py, one fresh instance per N",
        },
        "sizes": results,
    });
    let dir = std::env::var("BENCH_OUT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("bench"));
    std::fs::create_dir_all(&dir).expect("create bench/");
    // The push bench (benches/push.rs) keeps its figures in the same files: carry them over.
    let old_json: Option<Value> = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(push) = old_json.as_ref().and_then(|o| o.get("image_push")) {
        doc["image_push"] = push.clone();
    }
    let text = serde_json::to_string_pretty(&doc).expect("results serialise as JSON");
    std::fs::write(dir.join("results.json"), text + "\n").expect("write bench/results.json");
    let mut md = markdown(&doc);
    let old_md = std::fs::read_to_string(dir.join("RESULTS.md")).unwrap_or_default();
    if let (Some(s), Some(e)) = (
        old_md.find(PUSH_SECTION_START),
        old_md.find(PUSH_SECTION_END),
    ) && e > s
    {
        md.push('\n');
        md.push_str(&old_md[s..e + PUSH_SECTION_END.len()]);
        md.push('\n');
    }
    std::fs::write(dir.join("RESULTS.md"), &md).expect("write bench/RESULTS.md");
    println!("{md}");
}

// ---------------------------------------------------------------------------------------
// One size

/// How long after convergence the steady state is measured: `BENCH_SETTLE` seconds, by
/// default how long the controller trusts no listing about what it wrote (the longest
/// settle window, Secrets Manager's).
fn settle_time() -> Duration {
    std::env::var("BENCH_SETTLE")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(agentcore_controller::list_cache::SECRETS_SETTLE)
}

fn run_size(n: usize, rate_limit: Option<&str>, timeout: Duration, clk_tck: f64) -> Value {
    let emulator = Emulator::start("bench-emulator");
    let manifests = tempfile::tempdir().expect("temp dir for manifests");
    let copies: Vec<Copy> = (0..n).map(Copy::new).collect();
    for c in &copies {
        c.write(manifests.path());
    }
    let objects = n * KINDS_PER_COPY;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime for the bench's own ECR calls");
    let aws = rt
        .block_on(Aws::connect(&emulator.sdk_config()))
        .expect("connect the bench's AWS clients to the emulator");

    let mut out = json!({ "copies": n, "objects": objects });
    let emulator_cpu0 = cpu_seconds(emulator.pid(), clk_tck);
    let daemon = Daemon::start(&emulator.url, manifests.path(), rate_limit);
    let t0 = daemon.started;
    out["daemon_log"] = json!(daemon.log.display().to_string());

    // Cold converge: push each image as soon as its repository exists (CI's role).
    let mut pushed = vec![false; n];
    let mut last_push: Option<Duration> = None;
    let mut ready_at: Option<Duration> = None;
    let mut last_progress = Instant::now();
    let mut best_ready = 0usize;
    let mut progress: Vec<Value> = Vec::new();
    let mut next_progress = Duration::from_secs(10);
    let deadline = t0 + timeout;
    while Instant::now() < deadline {
        if pushed.iter().any(|p| !p) {
            match rt.block_on(repositories(&aws)) {
                Ok(existing) => {
                    for (i, c) in copies.iter().enumerate() {
                        if !pushed[i] && existing.contains(&c.names.repo) {
                            match rt.block_on(push_image(&aws, &c.names.repo, &c.salt())) {
                                Ok(()) => pushed[i] = true,
                                Err(e) => {
                                    eprintln!("push to {} failed (retrying): {e}", c.names.repo)
                                }
                            }
                        }
                    }
                    if pushed.iter().all(|p| *p) {
                        last_push = Some(t0.elapsed());
                    }
                }
                Err(e) => eprintln!("DescribeRepositories failed (retrying): {e}"),
            }
        }
        let ready = daemon.ready_count();
        if ready > best_ready {
            best_ready = ready;
            last_progress = Instant::now();
        }
        if t0.elapsed() >= next_progress {
            eprintln!(
                "  t={:>5.0}s ready {ready}/{objects}, images pushed {}/{n}",
                t0.elapsed().as_secs_f64(),
                pushed.iter().filter(|p| **p).count()
            );
            progress.push(json!({"t": t0.elapsed().as_secs(), "ready": ready}));
            next_progress += Duration::from_secs(10);
        }
        if ready == objects {
            ready_at = Some(t0.elapsed());
            break;
        }
        if last_progress.elapsed() > Duration::from_secs(180) {
            eprintln!("  no progress for 180 s: stalled");
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let cold_metrics = daemon.metrics();
    let cold_wall = t0.elapsed().as_secs_f64();
    let emulator_cold_share = emulator_cpu0
        .zip(cpu_seconds(emulator.pid(), clk_tck))
        .map(|(a, b)| round3((b - a) / cold_wall));
    // One number (`--aws-rate-limit 20`), or unset (the daemon's default, 20): the same
    // rate for every service. Per-service settings are not modelled here.
    let rate = match rate_limit {
        None => Some(20.0),
        Some(r) => r.parse::<f64>().ok(),
    };
    out["cold"] = json!({
        "rate_limit_floor": cold_metrics.rate_floor_json(rate),
        "converged": ready_at.is_some(),
        "emulator_cpu_share_of_a_core": emulator_cold_share,
        "seconds": ready_at.map(|d| round3(d.as_secs_f64())),
        "all_images_pushed_at_seconds": last_push.map(|d| round3(d.as_secs_f64())),
        "aws": cold_metrics.calls_json(),
        "reconciles": cold_metrics.reconciles(),
        "mean_reconcile_ms_by_kind": cold_metrics.mean_reconcile_ms(),
        "reconcile_errors": cold_metrics.family("agentcore_controller_reconcile_errors_total"),
        "progress_every_10s": progress,
    });
    if ready_at.is_none() {
        out["cold"]["not_ready"] = daemon.not_ready_summary();
        out["warnings"] = json!([format!(
            "cold converge did not finish: {best_ready}/{objects} Ready (see not_ready)"
        )]);
        out["resources"] = resources(&daemon, &emulator, clk_tck);
        return out;
    }
    let converged_wall = SystemTime::now();
    let mut warnings: Vec<String> = Vec::new();

    // Steady state: wait for one full resync round after convergence, then a window.
    let round_start = Instant::now();
    let round_done = daemon.wait_all_reconciled_after(converged_wall, Duration::from_secs(900));
    let round_seconds = round_start.elapsed().as_secs_f64();
    // Steady means the writes have settled: for a while after a write the controller reads
    // what it wrote directly, not from a listing (Secrets Manager's listing may lag five
    // minutes). The window and the SIGHUP round are measured after that.
    let settle = settle_time();
    let since_convergence = converged_wall.elapsed().unwrap_or_default();
    if settle > since_convergence {
        eprintln!(
            "  waiting {:.0} s for the writes to settle",
            (settle - since_convergence).as_secs_f64()
        );
        std::thread::sleep(settle - since_convergence);
    }
    if !round_done {
        warnings.push(format!(
            "not every object was re-reconciled within {round_seconds:.0} s of convergence \
             (resync period {} s)",
            RESYNC.as_secs()
        ));
    }
    // The window lasts at least WINDOW and until every object has been reconciled again
    // (a full round), so that every kind is in it even when a round takes longer than
    // the resync period.
    let m1 = daemon.metrics();
    let pid = daemon.child.id();
    let cpu1 = cpu_seconds(pid, clk_tck);
    let w0 = Instant::now();
    let w0_wall = SystemTime::now();
    std::thread::sleep(WINDOW);
    let window_round_done = daemon.wait_all_reconciled_after(w0_wall, Duration::from_secs(900));
    let m2 = daemon.metrics();
    let cpu2 = cpu_seconds(pid, clk_tck);
    let window = w0.elapsed().as_secs_f64();
    if !window_round_done {
        warnings.push("the steady-state window ended before a full round (900 s cap)".into());
    }
    let delta = m2.minus(&m1);
    let (reads, writes, errors) = delta.calls();
    let reconciles = delta.reconcile_total();
    let periods = window / RESYNC.as_secs_f64();
    if writes > 0 {
        warnings.push(format!(
            "!!! STEADY STATE WROTE TO AWS: {writes} write call(s) in {window:.1} s with unchanged \
             manifests: {:?}",
            delta.ops(Access::Write)
        ));
    }
    out["steady"] = json!({
        "measured_after_convergence_seconds": settle.max(since_convergence).as_secs(),
        "full_round_after_convergence_seconds": round3(round_seconds),
        "full_round_completed": round_done,
        "window_seconds": round3(window),
        "aws": delta.calls_json(),
        "reads": reads,
        "writes": writes,
        "errors": errors,
        "reconciles": reconciles,
        "window_covers_full_round": window_round_done,
        "reads_per_object_per_round": round3(reads as f64 / objects as f64),
        "reads_per_object_per_resync": round3(reads as f64 / objects as f64 / periods),
        "writes_per_object_per_resync": round3(writes as f64 / objects as f64 / periods),
        "daemon_cpu_ms_per_reconcile": match (cpu1, cpu2) {
            (Some(a), Some(b)) if reconciles > 0 => Some(round3((b - a) * 1000.0 / reconciles as f64)),
            _ => None,
        },
        "reads_per_reconcile": if reconciles > 0 { Some(round3(reads as f64 / reconciles as f64)) } else { None },
        "mean_seconds_between_reconciles_of_an_object": if reconciles > 0 {
            Some(round3(objects as f64 * window / reconciles as f64))
        } else { None },
        "reconciles_by_kind": delta.reconciles(),
        "mean_reconcile_ms_by_kind": delta.mean_reconcile_ms(),
        "queue_depth_at_end": m2.gauge("agentcore_controller_queue_depth"),
    });

    out["sighup_round"] = sighup_round(&daemon, &emulator, objects, clk_tck, &mut warnings);
    let floor = sdk_read_floor(&rt, &aws, &copies[0], clk_tck);
    if let (Some(per_read), Some(per_object), Some(reads)) = (
        floor["cpu_ms_per_read"].as_f64(),
        out["sighup_round"]["daemon_cpu_ms_per_object"].as_f64(),
        out["sighup_round"]["reads_per_object"].as_f64(),
    ) {
        out["sighup_round"]["daemon_cpu_ms_per_object_beyond_sdk_reads"] =
            json!(round3((per_object - reads * per_read).max(0.0)));
    }
    out["sdk_read_floor"] = floor;

    // Edit to first write: copy 0's repository keeps 11 images instead of 10.
    let before = daemon.metrics();
    let queue_at_edit = before.gauge("agentcore_controller_queue_depth");
    let path = manifests.path().join(copies[0].dir()).join("runtime.yaml");
    let text = std::fs::read_to_string(&path).expect("read copy 0's runtime.yaml");
    let edited = text.replace("keepLastImages: 10", "keepLastImages: 11");
    assert_ne!(text, edited, "runtime.yaml has keepLastImages: 10");
    // Meanwhile, how long the emulator takes to answer one call of its own: the part of
    // the edit's latency that is the emulator's queue, which AWS would not have.
    let probing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probe = {
        let (url, probing) = (emulator.url.clone(), probing.clone());
        std::thread::spawn(move || {
            let mut ms = Vec::new();
            while probing.load(std::sync::atomic::Ordering::Relaxed) && ms.len() < 500 {
                ms.extend(emulator_call_ms(&url));
                std::thread::sleep(Duration::from_millis(10));
            }
            ms
        })
    };
    let t_edit = Instant::now();
    std::fs::write(&path, edited).expect("write the edited runtime.yaml");
    let mut first_write: Option<(f64, Vec<(String, u64)>)> = None;
    let mut ecr_write: Option<(f64, Vec<(String, u64)>)> = None;
    while t_edit.elapsed() < Duration::from_secs(120) && ecr_write.is_none() {
        std::thread::sleep(Duration::from_millis(20));
        let d = daemon.metrics().minus(&before);
        let w = d.ops(Access::Write);
        if !w.is_empty() && first_write.is_none() {
            first_write = Some((t_edit.elapsed().as_secs_f64() * 1000.0, w.clone()));
        }
        let ecr: Vec<(String, u64)> = w
            .into_iter()
            .filter(|(op, _)| op.to_ascii_lowercase().starts_with("ecr:"))
            .collect();
        if !ecr.is_empty() {
            ecr_write = Some((t_edit.elapsed().as_secs_f64() * 1000.0, ecr));
        }
    }
    probing.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut probes = probe.join().unwrap_or_default();
    probes.sort_by(f64::total_cmp);
    let median_probe = probes.get(probes.len() / 2).copied().map(round3);
    if first_write.is_none() {
        warnings.push("the edit produced no write call within 120 s".into());
    }
    // The daemon's own account of the reload: reading the files, and taking them in.
    let reload = daemon.metrics().minus(&before);
    let reload_ms = |phase: &str| {
        reload
            .labelled(
                "agentcore_controller_reload_duration_seconds_sum",
                "phase",
                phase,
            )
            .map(|s| round3(s * 1000.0))
    };
    out["edit"] = json!({
        "change": format!("Repository/{}: lifecycle.keepLastImages 10 -> 11", copies[0].names.repo),
        "reload_read_ms": reload_ms("read"),
        "reload_take_in_ms": reload_ms("take_in"),
        "debounce": DEBOUNCE,
        "queue_depth_at_edit": queue_at_edit,
        "first_write_ms": first_write.as_ref().map(|w| round3(w.0)),
        "first_write_ops": first_write.as_ref().map(|w| ops_json(&w.1)),
        "first_ecr_write_ms": ecr_write.as_ref().map(|w| round3(w.0)),
        "first_ecr_write_ops": ecr_write.as_ref().map(|w| ops_json(&w.1)),
        "poll_interval_ms": 20,
        "emulator_call_ms_median": median_probe,
        "emulator_calls_probed": probes.len(),
    });

    out["resources"] = resources(&daemon, &emulator, clk_tck);
    out["warnings"] = json!(warnings);
    drop(daemon);
    out
}

/// A full round on demand: SIGHUP, then until every object has been reconciled since.
/// Daemon CPU per object in it leaves out what the bench's own /status reads cost (measured
/// right after, on the same daemon); the emulator's CPU share says whether it was the limit.
fn sighup_round(
    daemon: &Daemon,
    emulator: &Emulator,
    objects: usize,
    clk_tck: f64,
    warnings: &mut Vec<String>,
) -> Value {
    let pid = daemon.child.id();
    // /status times have one-second resolution: start the round just after a second
    // begins, and count every reconcile from that second on.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    std::thread::sleep(Duration::from_nanos(u64::from(
        1_000_000_000 - now.subsec_nanos(),
    )));
    let second = SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_secs() + 1);
    let wall = second - Duration::from_secs(1);
    let before = daemon.metrics();
    let cpu0 = cpu_seconds(pid, clk_tck);
    let emu0 = cpu_seconds(emulator.pid(), clk_tck);
    let t0 = Instant::now();
    let _ = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status();
    let (done, polls) =
        daemon.wait_all_reconciled_after_counting(wall, Duration::from_secs(1800), ROUND_POLL);
    let seconds = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_seconds(pid, clk_tck);
    let emu1 = cpu_seconds(emulator.pid(), clk_tck);
    let delta = daemon.metrics().minus(&before);
    let (reads, writes, _) = delta.calls();
    if !done {
        warnings.push(format!(
            "the SIGHUP round did not finish within {seconds:.0} s"
        ));
    }
    // What one /status read costs the daemon now (three in a row, averaged).
    let c0 = cpu_seconds(pid, clk_tck);
    for _ in 0..3 {
        let _ = daemon.status();
    }
    let per_poll = match (c0, cpu_seconds(pid, clk_tck)) {
        (Some(a), Some(b)) => (b - a) / 3.0,
        _ => 0.0,
    };
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    json!({
        "completed": done,
        "seconds": round3(seconds),
        "reads_per_object": round3(reads as f64 / objects as f64),
        "writes": writes,
        "reconciles": delta.reconcile_total(),
        "daemon_cpu_seconds": cpu.map(round3),
        "status_polls": polls,
        "daemon_cpu_ms_per_status_poll": round3(per_poll * 1000.0),
        "daemon_cpu_ms_per_object": cpu.map(|c| round3((c - polls as f64 * per_poll).max(0.0) * 1000.0 / objects as f64)),
        "emulator_cpu_share_of_a_core": match (emu0, emu1) {
            (Some(a), Some(b)) if seconds > 0.0 => Some(round3((b - a) / seconds)),
            _ => None,
        },
    })
}

/// What one AWS read costs a process in CPU through the controller's own clients
/// (`Aws::connect`: signing, the HTTP exchange, parsing), measured in this process, which
/// is otherwise idle: the floor under the daemon's CPU per object. Against the emulator
/// it includes a TCP connect per call (werkzeug closes every connection; AWS keeps them).
fn sdk_read_floor(rt: &tokio::runtime::Runtime, aws: &Aws, copy: &Copy, clk_tck: f64) -> Value {
    const ROUNDS: usize = 100;
    let me = std::process::id();
    let c0 = cpu_seconds(me, clk_tck);
    let t0 = Instant::now();
    let names = &copy.names;
    let ok = rt.block_on(async {
        let mut ok = 0usize;
        for _ in 0..ROUNDS {
            let calls = [
                aws.ssm
                    .get_parameter()
                    .name(&names.parameter)
                    .send()
                    .await
                    .is_ok(),
                aws.secrets
                    .describe_secret()
                    .secret_id(&names.secret)
                    .send()
                    .await
                    .is_ok(),
                aws.ecr
                    .describe_images()
                    .repository_name(&names.repo)
                    .send()
                    .await
                    .is_ok(),
                aws.iam
                    .get_role()
                    .role_name(&names.role)
                    .send()
                    .await
                    .is_ok(),
            ];
            ok += calls.iter().filter(|c| **c).count();
        }
        ok
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = c0.zip(cpu_seconds(me, clk_tck)).map(|(a, b)| b - a);
    json!({
        "operations": ["ssm:GetParameter", "secretsmanager:DescribeSecret", "ecr:DescribeImages", "iam:GetRole"],
        "reads": ok,
        "failed": ROUNDS * 4 - ok,
        "cpu_ms_per_read": cpu.filter(|_| ok > 0).map(|c| round3(c * 1000.0 / ok as f64)),
        "wall_ms_per_read": (ok > 0).then(|| round3(wall * 1000.0 / ok as f64)),
    })
}

fn resources(daemon: &Daemon, emulator: &Emulator, clk_tck: f64) -> Value {
    let pid = daemon.child.id();
    json!({
        "daemon_peak_rss_mib": vm_hwm_kib(pid).map(|k| round3(k as f64 / 1024.0)),
        "daemon_cpu_seconds": cpu_seconds(pid, clk_tck).map(round3),
        "daemon_wall_seconds": round3(daemon.started.elapsed().as_secs_f64()),
        "emulator_peak_rss_mib": vm_hwm_kib(emulator.pid()).map(|k| round3(k as f64 / 1024.0)),
        "emulator_cpu_seconds": cpu_seconds(emulator.pid(), clk_tck).map(round3),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ops_json(ops: &[(String, u64)]) -> Value {
    Value::Object(ops.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

// ---------------------------------------------------------------------------------------
// The stack, N times

/// One copy of the guide's stack with its own names.
struct Copy {
    i: usize,
    names: StackNames,
}

impl Copy {
    fn new(i: usize) -> Self {
        let names = StackNames {
            pool: format!("BenchPool{i:04}"),
            client: format!("BenchClient{i:04}"),
            user: format!("benchuser{i:04}"),
            role: format!("bench-role-{i:04}"),
            repo: format!("bench-repo-{i:04}"),
            runtime: format!("bench_rt_{i:04}"),
            secret: format!("bench/{i:04}/cognito/credentials"),
            parameter: format!("/bench/{i:04}/runtime/agent_arn"),
        };
        Self { i, names }
    }

    fn dir(&self) -> String {
        format!("copy-{:04}", self.i)
    }

    fn salt(&self) -> String {
        format!("bench-layer-{:04}", self.i)
    }

    /// The guide's manifests with this copy's names, in its own directory; object names
    /// that are not AWS names are made unique per copy too (all copies share one root).
    fn write(&self, root: &Path) {
        let dst = root.join(self.dir());
        std::fs::create_dir_all(&dst).expect("create a copy's manifest directory");
        for (name, text) in self.names.render("manifests") {
            let text = text
                .replace(
                    "name: cognito-credentials",
                    &format!("name: cognito-credentials-{:04}", self.i),
                )
                .replace("name: agent-arn", &format!("name: agent-arn-{:04}", self.i));
            std::fs::write(dst.join(name), text).expect("write a manifest");
        }
    }
}

async fn repositories(aws: &Aws) -> Result<std::collections::BTreeSet<String>, String> {
    let mut names = std::collections::BTreeSet::new();
    let mut next: Option<String> = None;
    loop {
        let out = aws
            .ecr
            .describe_repositories()
            .max_results(1000)
            .set_next_token(next.clone())
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        for r in out.repositories() {
            if let Some(n) = r.repository_name() {
                names.insert(n.to_string());
            }
        }
        next = out.next_token().map(String::from);
        if next.is_none() {
            return Ok(names);
        }
    }
}

/// Push a small stand-in image manifest under `latest` whose one layer is unique to `salt`
/// (the emulator derives the image digest from the layer digests).
async fn push_image(aws: &Aws, repo: &str, salt: &str) -> Result<(), String> {
    let manifest = guide::standin_manifest(salt);
    aws.ecr
        .put_image()
        .repository_name(repo)
        .image_tag("latest")
        .image_manifest(manifest)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

// ---------------------------------------------------------------------------------------
// Processes

/// `agentcore-controller run` on the manifests, killed on drop.
struct Daemon {
    child: Child,
    listen: String,
    log: PathBuf,
    started: Instant,
}

impl Daemon {
    fn start(endpoint: &str, dir: &Path, rate_limit: Option<&str>) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("bench-daemon-{port}.log"));
        let file = std::fs::File::create(&log).expect("daemon log file");
        let resync = format!("{}s", RESYNC.as_secs());
        let concurrency = CONCURRENCY.to_string();
        let binary = env!("CARGO_BIN_EXE_agentcore-controller");
        let wrapper = std::env::var("BENCH_DAEMON_WRAPPER").unwrap_or_default();
        let mut wrapper = wrapper.split_whitespace();
        let mut cmd = match wrapper.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(wrapper).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        cmd.args(["run", "-f"])
            .arg(dir)
            .args(["--listen", &listen, "--resync", &resync])
            .args(["--concurrency", &concurrency, "--debounce", DEBOUNCE]);
        if let Some(r) = rate_limit {
            cmd.args(["--aws-rate-limit", r]);
        }
        cmd.env("AWS_ENDPOINT_URL", endpoint)
            .env("AGENTCORE_COGNITO_DOMAIN_URL", endpoint)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AGENTCORE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        // Its own process group, so that dropping it stops the daemon even when it runs
        // under a wrapper (a profiler), which may not pass the signal on.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let started = Instant::now();
        let child = cmd.spawn().expect("start agentcore-controller run");
        let d = Self {
            child,
            listen,
            log,
            started,
        };
        wait_for(Duration::from_secs(60), "the daemon to listen", || {
            std::net::TcpStream::connect(&d.listen).is_ok()
        });
        d
    }

    fn status(&self) -> Option<Value> {
        let (code, body) = http(&self.listen, "/status");
        if code != 200 {
            return None;
        }
        serde_json::from_str(&body).ok()
    }

    fn objects(&self) -> Vec<Value> {
        self.status()
            .and_then(|s| s["objects"].as_array().cloned())
            .unwrap_or_default()
    }

    fn ready_count(&self) -> usize {
        self.objects().iter().filter(|o| is_ready(o)).count()
    }

    /// Objects not Ready, counted by kind and reason.
    fn not_ready_summary(&self) -> Value {
        let mut by: BTreeMap<String, u64> = BTreeMap::new();
        let mut example: BTreeMap<String, String> = BTreeMap::new();
        for o in self.objects().iter().filter(|o| !is_ready(o)) {
            let cond = o["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .cloned()
                .unwrap_or(Value::Null);
            let key = format!(
                "{}: {}",
                o["kind"].as_str().unwrap_or("?"),
                cond["reason"].as_str().unwrap_or("?")
            );
            *by.entry(key.clone()).or_insert(0) += 1;
            example.entry(key).or_insert_with(|| {
                format!(
                    "{} — {}",
                    o["name"].as_str().unwrap_or("?"),
                    cond["message"].as_str().unwrap_or("")
                )
            });
        }
        json!({ "counts": by, "examples": example })
    }

    /// Wait until every object has a reconcile recorded after `after` (status times have
    /// one-second resolution, so "after" means a later second).
    fn wait_all_reconciled_after(&self, after: SystemTime, limit: Duration) -> bool {
        self.wait_all_reconciled_after_counting(after, limit, Duration::from_millis(500))
            .0
    }

    /// [`Daemon::wait_all_reconciled_after`], reading /status every `poll`; also returns
    /// how many times it read it.
    fn wait_all_reconciled_after_counting(
        &self,
        after: SystemTime,
        limit: Duration,
        poll: Duration,
    ) -> (bool, u64) {
        let mut polls = 0;
        let after_secs = after
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let objects = self.objects();
            polls += 1;
            let done = !objects.is_empty()
                && objects.iter().all(|o| {
                    o["lastReconcile"]["at"]
                        .as_str()
                        .and_then(|t| humantime::parse_rfc3339(t).ok())
                        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                        .is_some_and(|t| t.as_secs() > after_secs)
                });
            if done {
                return (true, polls);
            }
            std::thread::sleep(poll);
        }
        (false, polls)
    }

    fn metrics(&self) -> Metrics {
        let (_, body) = http(&self.listen, "/metrics");
        Metrics::parse(&body)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn is_ready(o: &Value) -> bool {
    o["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// GET `path` from a loopback HTTP/1.1 server: (status code, body).
fn http(addr: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(i) => (&buf[..i], &buf[i + 4..]),
        None => (&buf[..], &[][..]),
    };
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (code, String::from_utf8_lossy(&body).into_owned())
}

/// The wall time of one STS GetCallerIdentity at the emulator (a call that does no work
/// there, so its time is the emulator's queue); `None` when it failed.
fn emulator_call_ms(url: &str) -> Option<f64> {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential=testing/20260101/{REGION}/sts/aws4_request, SignedHeaders=host, \
         Signature=0\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    buf.starts_with(b"HTTP/1.1 200")
        .then(|| t.elapsed().as_secs_f64() * 1000.0)
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&rest[..i]);
        let size = size.split(';').next().unwrap_or("").trim();
        let Ok(n) = usize::from_str_radix(size, 16) else {
            break;
        };
        let after = &rest[i + 2..];
        if n == 0 || after.len() < n {
            break;
        }
        out.extend_from_slice(&after[..n]);
        rest = after[n..].strip_prefix(b"\r\n").unwrap_or(&after[n..]);
    }
    out
}

// ---------------------------------------------------------------------------------------
// /metrics

/// Samples of the Prometheus text exposition: (metric name, labels) -> value.
#[derive(Default, Clone)]
struct Metrics {
    samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
}

impl Metrics {
    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = match line.rsplit_once(' ') {
                Some(p) => p,
                None => continue,
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.insert((name.to_string(), labels), value);
        }
        Self { samples }
    }

    fn minus(&self, earlier: &Metrics) -> Metrics {
        let samples = self
            .samples
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v - earlier.samples.get(k).copied().unwrap_or(0.0),
                )
            })
            .collect();
        Metrics { samples }
    }

    /// The sample of `name` whose label `label` is `value`.
    fn labelled(&self, name: &str, label: &str, value: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|((n, labels), _)| {
                n == name && labels.get(label).map(String::as_str) == Some(value)
            })
            .map(|(_, v)| *v)
    }

    fn gauge(&self, name: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|((n, _), _)| n == name)
            .map(|(_, v)| *v)
    }

    /// AWS calls as ("service:operation", outcome, count).
    fn aws_calls(&self) -> Vec<(String, String, u64)> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == "agentcore_controller_aws_calls_total")
            .map(|((_, l), v)| {
                let svc = l.get("service").cloned().unwrap_or_default();
                let op = l.get("operation").cloned().unwrap_or_default();
                let outcome = l.get("outcome").cloned().unwrap_or_default();
                (format!("{svc}:{op}"), outcome, v.round() as u64)
            })
            .filter(|(_, _, v)| *v > 0)
            .collect()
    }

    /// (reads, writes, errors); errors are counted in reads or writes too.
    fn calls(&self) -> (u64, u64, u64) {
        let (mut r, mut w, mut e) = (0, 0, 0);
        for (op, outcome, n) in self.aws_calls() {
            let name = op.rsplit(':').next().unwrap_or("");
            match access_of(name) {
                Access::Read => r += n,
                Access::Write => w += n,
            }
            if outcome != "ok" {
                e += n;
            }
        }
        (r, w, e)
    }

    /// Calls by operation of one access kind.
    fn ops(&self, access: Access) -> Vec<(String, u64)> {
        let mut by: BTreeMap<String, u64> = BTreeMap::new();
        for (op, _, n) in self.aws_calls() {
            if access_of(op.rsplit(':').next().unwrap_or("")) == access {
                *by.entry(op).or_insert(0) += n;
            }
        }
        by.into_iter().collect()
    }

    /// Calls by service.
    fn by_service(&self) -> BTreeMap<String, u64> {
        let mut by: BTreeMap<String, u64> = BTreeMap::new();
        for (op, _, n) in self.aws_calls() {
            let service = op.split(':').next().unwrap_or("").to_string();
            *by.entry(service).or_insert(0) += n;
        }
        by
    }

    /// The least time the calls made could take at `rate` requests per second per service
    /// (each service has its own bucket): the busiest service's calls over the rate.
    fn rate_floor_json(&self, rate: Option<f64>) -> Value {
        let by = self.by_service();
        let Some((service, calls)) = by.iter().max_by_key(|(_, n)| **n) else {
            return Value::Null;
        };
        json!({
            "calls_by_service": by,
            "busiest_service": service,
            "busiest_service_calls": calls,
            "rate_per_service": rate,
            "seconds_at_rate": rate.map(|r| round3(*calls as f64 / r)),
        })
    }

    fn calls_json(&self) -> Value {
        let (reads, writes, errors) = self.calls();
        json!({
            "reads": reads,
            "writes": writes,
            "errors": errors,
            "reads_by_operation": ops_json(&self.ops(Access::Read)),
            "writes_by_operation": ops_json(&self.ops(Access::Write)),
        })
    }

    fn family(&self, name: &str) -> Value {
        let mut out = serde_json::Map::new();
        for ((n, labels), v) in &self.samples {
            if n == name && *v > 0.0 {
                let key = labels.values().cloned().collect::<Vec<_>>().join("/");
                out.insert(key, json!(v.round() as u64));
            }
        }
        Value::Object(out)
    }

    fn reconciles(&self) -> Value {
        self.family("agentcore_controller_reconcile_duration_seconds_count")
    }

    /// Mean reconcile duration by kind, in milliseconds.
    fn mean_reconcile_ms(&self) -> Value {
        let mut out = serde_json::Map::new();
        for ((n, labels), count) in &self.samples {
            if n != "agentcore_controller_reconcile_duration_seconds_count" || *count <= 0.0 {
                continue;
            }
            let sum = self
                .samples
                .get(&(
                    "agentcore_controller_reconcile_duration_seconds_sum".to_string(),
                    labels.clone(),
                ))
                .copied()
                .unwrap_or(0.0);
            let kind = labels.get("kind").cloned().unwrap_or_default();
            out.insert(kind, json!(round3(sum / count * 1000.0)));
        }
        Value::Object(out)
    }

    fn reconcile_total(&self) -> u64 {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == "agentcore_controller_reconcile_duration_seconds_count")
            .map(|(_, v)| v.round() as u64)
            .sum()
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some(end) = after.find('"') else { break };
        out.insert(
            key.trim_start_matches(',').trim().to_string(),
            after[..end].to_string(),
        );
        rest = &after[end + 1..];
    }
    out
}

// ---------------------------------------------------------------------------------------
// /proc and the machine

fn clock_ticks() -> f64 {
    command_output("getconf", &["CLK_TCK"])
        .trim()
        .parse()
        .unwrap_or(100.0)
}

fn command_output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32, clk_tck: f64) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces):
    // state is field 3, utime field 14, stime field 15.
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn meminfo_total() -> Option<String> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|v| v.trim().to_string())
}

// ---------------------------------------------------------------------------------------
// RESULTS.md

fn markdown(doc: &Value) -> String {
    let mut s = String::new();
    let m = &doc["machine"];
    let c = &doc["config"];
    let _ = writeln!(s, "# Daemon benchmark\n");
    let _ = writeln!(
        s,
        "`cargo bench --bench daemon` (benches/daemon.rs). {} · {} CPUs ({}) · {} · commit {}\n",
        doc["date"].as_str().unwrap_or("?"),
        m["nproc"],
        m["cpu_model"].as_str().unwrap_or("?"),
        m["memory_total"].as_str().unwrap_or("?"),
        doc["git_commit"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(
        s,
        "Daemon ({} build): `run --concurrency {} --resync {}s --debounce {}`, AWS rate limit: {}. \
         Emulator: {}. N copies of the guide's stack (`manifests/`, 9 objects each, every \
         name unique per copy); stand-in images pushed as soon as the daemon has created \
         each repository. Steady state: once the writes have settled (`BENCH_SETTLE`, by \
         default 300 s after convergence: until then the daemon reads what it wrote \
         directly, not from a listing), a window of at least {} s that also lasts until \
         every object has been reconciled once more; the SIGHUP round follows it.\n",
        c["build"].as_str().unwrap_or("?"),
        c["concurrency"],
        c["resync_seconds"],
        c["debounce"].as_str().unwrap_or("?"),
        c["aws_rate_limit"].as_str().unwrap_or("?"),
        c["emulator"].as_str().unwrap_or("?"),
        c["steady_window_seconds"],
    );
    let _ = writeln!(
        s,
        "| N | objects | cold converge s | cold reads | cold writes | SIGHUP round s | \
         reads/object/resync | writes/object/resync | s between reconciles of an object | \
         daemon CPU ms/object/round | daemon CPU ms/reconcile | edit → first write ms | \
         daemon peak RSS MiB | emulator CPU share in the round |"
    );
    let _ = writeln!(s, "|{}", "---|".repeat(14));
    let sizes = doc["sizes"].as_array().cloned().unwrap_or_default();
    let f = |v: &Value| match v {
        Value::Null => "—".to_string(),
        Value::Number(n) => n
            .as_f64()
            .map(|x| {
                if x.fract() == 0.0 {
                    format!("{x:.0}")
                } else {
                    format!("{x:.2}")
                }
            })
            .unwrap_or_else(|| n.to_string()),
        other => other.to_string(),
    };
    for r in &sizes {
        let cold_s = if r["cold"]["converged"] == true {
            f(&r["cold"]["seconds"])
        } else {
            "did not converge".into()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r["copies"],
            r["objects"],
            cold_s,
            f(&r["cold"]["aws"]["reads"]),
            f(&r["cold"]["aws"]["writes"]),
            f(&r["sighup_round"]["seconds"]),
            f(&r["steady"]["reads_per_object_per_resync"]),
            f(&r["steady"]["writes_per_object_per_resync"]),
            f(&r["steady"]["mean_seconds_between_reconciles_of_an_object"]),
            f(&r["sighup_round"]["daemon_cpu_ms_per_object"]),
            f(&r["steady"]["daemon_cpu_ms_per_reconcile"]),
            f(&r["edit"]["first_write_ms"]),
            f(&r["resources"]["daemon_peak_rss_mib"]),
            f(&r["sighup_round"]["emulator_cpu_share_of_a_core"]),
        );
    }
    let _ = writeln!(
        s,
        "\nColumns: *cold converge* is daemon start until /status shows every object Ready; \
         cold reads/writes are all AWS calls in that time (reads: Get/List/Describe/BatchGet/\
         BatchCheck/Head after a leading Admin; the rest are writes), including the SSM \
         inventory and resyncs of objects already Ready. *SIGHUP round* is the time from \
         SIGHUP until /status (read every second) shows every object reconciled since. \
         *reads (writes) per object per resync* are the calls in the steady window ÷ objects \
         ÷ (window ÷ resync period), i.e. what the daemon achieved; *s between reconciles* is \
         objects × window ÷ reconciles (the resync period actually achieved). *daemon CPU per \
         object per round* is the daemon's CPU time in the SIGHUP round, less what the bench's \
         /status reads in it cost (measured right after), ÷ objects; *per reconcile* is its \
         CPU time in the steady window ÷ reconciles there (the bench's /status reads, every \
         500 ms, included). *emulator CPU share* is the emulator's CPU time in the SIGHUP \
         round ÷ its duration (1.0 = one core: the single-threaded emulator is the limit). \
         *edit → first write* is the time from writing the file until /metrics (polled every \
         20 ms) shows a new write call.\n"
    );
    for r in &sizes {
        let _ = writeln!(s, "## N = {}\n", r["copies"]);
        if let Some(ws) = r["warnings"].as_array().filter(|w| !w.is_empty()) {
            for w in ws {
                let _ = writeln!(s, "**WARNING: {}**\n", w.as_str().unwrap_or("?"));
            }
        }
        let _ = writeln!(
            s,
            "- cold: all images pushed at {} s; AWS call errors {}; reconcile errors {}",
            f(&r["cold"]["all_images_pushed_at_seconds"]),
            f(&r["cold"]["aws"]["errors"]),
            r["cold"]["reconcile_errors"]
        );
        let floor = &r["cold"]["rate_limit_floor"];
        let _ = writeln!(
            s,
            "- cold: the busiest service ({}) made {} calls (resyncs of what was Ready \
             already included): {} s at {} requests/s; converged in {} s; the emulator used \
             {} of a core meanwhile (1.0: it was the limit)",
            floor["busiest_service"].as_str().unwrap_or("?"),
            f(&floor["busiest_service_calls"]),
            f(&floor["seconds_at_rate"]),
            f(&floor["rate_per_service"]),
            f(&r["cold"]["seconds"]),
            f(&r["cold"]["emulator_cpu_share_of_a_core"]),
        );
        let _ = writeln!(
            s,
            "- cold writes by operation: {}",
            r["cold"]["aws"]["writes_by_operation"]
        );
        let _ = writeln!(
            s,
            "- cold reads by operation: {}",
            r["cold"]["aws"]["reads_by_operation"]
        );
        if !r["cold"]["not_ready"].is_null() {
            let _ = writeln!(s, "- not Ready at the end: {}", r["cold"]["not_ready"]);
        }
        if !r["steady"].is_null() {
            let st = &r["steady"];
            let _ = writeln!(
                s,
                "- steady: full resync round after convergence took {} s; window from {} s \
                 after convergence, {} s long (covers a full round: {}): {} reads ({} per \
                 object), {} writes, {} reconciles; queue depth at end {}",
                f(&st["full_round_after_convergence_seconds"]),
                f(&st["measured_after_convergence_seconds"]),
                f(&st["window_seconds"]),
                st["window_covers_full_round"],
                f(&st["reads"]),
                f(&st["reads_per_object_per_round"]),
                f(&st["writes"]),
                f(&st["reconciles"]),
                f(&st["queue_depth_at_end"]),
            );
            let _ = writeln!(
                s,
                "- steady CPU: daemon {} ms per reconcile",
                f(&st["daemon_cpu_ms_per_reconcile"]),
            );
            let _ = writeln!(
                s,
                "- steady reads by operation: {}",
                st["aws"]["reads_by_operation"]
            );
            let _ = writeln!(
                s,
                "- steady reconciles by kind: {}",
                st["reconciles_by_kind"]
            );
            let _ = writeln!(
                s,
                "- steady mean reconcile duration by kind (ms): {}",
                st["mean_reconcile_ms_by_kind"]
            );
        }
        if !r["sighup_round"].is_null() {
            let h = &r["sighup_round"];
            let _ = writeln!(
                s,
                "- SIGHUP round: {} s (completed: {}), {} reads per object, {} writes, {} \
                 reconciles; daemon CPU {} s ({} ms per object after {} /status reads at {} ms \
                 each); emulator CPU share {}",
                f(&h["seconds"]),
                h["completed"],
                f(&h["reads_per_object"]),
                f(&h["writes"]),
                f(&h["reconciles"]),
                f(&h["daemon_cpu_seconds"]),
                f(&h["daemon_cpu_ms_per_object"]),
                f(&h["status_polls"]),
                f(&h["daemon_cpu_ms_per_status_poll"]),
                f(&h["emulator_cpu_share_of_a_core"]),
            );
        }
        if !r["sdk_read_floor"].is_null() {
            let fl = &r["sdk_read_floor"];
            let _ = writeln!(
                s,
                "- one AWS read through the controller's clients, in the bench process: {} ms \
                 CPU ({} ms wall; {} reads of {}); so of the daemon's {} ms per object in \
                 the round, {} ms is beyond its {} reads per object",
                f(&fl["cpu_ms_per_read"]),
                f(&fl["wall_ms_per_read"]),
                f(&fl["reads"]),
                fl["operations"],
                f(&r["sighup_round"]["daemon_cpu_ms_per_object"]),
                f(&r["sighup_round"]["daemon_cpu_ms_per_object_beyond_sdk_reads"]),
                f(&r["sighup_round"]["reads_per_object"]),
            );
        }
        if !r["edit"].is_null() {
            let e = &r["edit"];
            let _ = writeln!(
                s,
                "- edit ({}; queue depth at the edit {}; the daemon's reload: read {} ms, take in \
                 {} ms, after a debounce of {}): first write after {} ms ({}), first ECR write \
                 after {} ms ({}); meanwhile one call the emulator does no work for \
                 (GetCallerIdentity) took {} ms (median of {})",
                e["change"].as_str().unwrap_or("?"),
                f(&e["queue_depth_at_edit"]),
                f(&e["reload_read_ms"]),
                f(&e["reload_take_in_ms"]),
                e["debounce"].as_str().unwrap_or("?"),
                f(&e["first_write_ms"]),
                e["first_write_ops"],
                f(&e["first_ecr_write_ms"]),
                e["first_ecr_write_ops"],
                f(&e["emulator_call_ms_median"]),
                f(&e["emulator_calls_probed"]),
            );
        }
        let _ = writeln!(
            s,
            "- resources: daemon peak RSS {} MiB, CPU {} s over {} s wall; emulator peak RSS {} MiB, CPU {} s",
            f(&r["resources"]["daemon_peak_rss_mib"]),
            f(&r["resources"]["daemon_cpu_seconds"]),
            f(&r["resources"]["daemon_wall_seconds"]),
            f(&r["resources"]["emulator_peak_rss_mib"]),
            f(&r["resources"]["emulator_cpu_seconds"]),
        );
        let _ = writeln!(s);
    }
    s
}
