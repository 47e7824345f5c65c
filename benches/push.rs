//! Benchmark of the image push path (OCI layout → ECR API) against the AWS emulator.
//!
//! Run with `cargo bench --bench push` (`BENCH_PUSH_MIB=64,256` by default: the sizes of
//! the one layer, random so that it does not compress). Under `cargo test --all-targets` this
//! binary is run without `--bench` and does nothing.
//!
//! Measures a cold push (every blob uploaded) and a no-op push (everything present):
//! wall time, bytes uploaded, ECR calls, and the peak RSS of this process during each
//! (reset before each via /proc/self/clear_refs), which shows that layers stream from
//! disk a part at a time rather than being loaded whole. Writes the figures under
//! `image_push` in `bench/results.json` and as a section of `bench/RESULTS.md` (the
//! daemon bench keeps both when it rewrites those files).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use agentcore_controller::aws::{Aws, CallSummary};
use agentcore_controller::oci::layout::{Layout, Platform};
use agentcore_controller::oci::push::{PushReport, push_image};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use testkit::{Emulator, PUSH_SECTION_END, PUSH_SECTION_START, ensure_emulator, repo_root};

const MIB: u64 = 1024 * 1024;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("push bench: skipped (run it with `cargo bench --bench push`)");
        return;
    }
    let sizes: Vec<u64> = std::env::var("BENCH_PUSH_MIB")
        .unwrap_or_else(|_| "64,256".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("BENCH_PUSH_MIB: `{s}` is not a number of MiB"))
        })
        .collect();
    let root = repo_root();
    ensure_emulator();

    let emulator = Emulator::start("bench-push-emulator");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let aws = rt
        .block_on(Aws::connect(&emulator.sdk_config()))
        .expect("connect to the emulator");

    let mut runs = Vec::new();
    for mib in sizes {
        let dir = tempfile::tempdir().expect("temp dir for the layout");
        let t = Instant::now();
        write_layout(dir.path(), mib * MIB);
        eprintln!(
            "layout with a {mib} MiB layer written in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let layout = Arc::new(Layout::open(dir.path()).expect("open the layout"));
        let image = layout
            .select(&Platform::linux_arm64())
            .expect("the arm64 image");
        // A fresh repository per size: the cold push finds nothing.
        let repo = format!("bench-push-{mib}");
        rt.block_on(aws.ecr.create_repository().repository_name(&repo).send())
            .expect("CreateRepository");
        for (name, expect_upload) in [("cold", true), ("no-op", false)] {
            reset_peak_rss();
            let rss_before = status_kib("VmRSS");
            let calls_before = aws.calls.snapshot();
            let t = Instant::now();
            let report: PushReport = rt
                .block_on(push_image(&aws.ecr, &repo, layout.clone(), &image, "bench"))
                .unwrap_or_else(|e| panic!("{name} push: {e}"));
            let seconds = t.elapsed().as_secs_f64();
            let calls = CallSummary::between(&calls_before, &aws.calls.snapshot());
            assert_eq!(
                report.bytes_uploaded > 0,
                expect_upload,
                "{name}: {report:?}"
            );
            let peak = status_kib("VmHWM");
            let r = json!({
                "layer_mib": mib,
                "push": name,
                "seconds": round3(seconds),
                "bytes_uploaded": report.bytes_uploaded,
                "blobs_total": report.blobs_total,
                "blobs_uploaded": report.blobs_uploaded,
                "throughput_mib_s": (report.bytes_uploaded > 0)
                    .then(|| round3(report.bytes_uploaded as f64 / MIB as f64 / seconds)),
                "ecr_calls": calls.by_operation,
                "rss_before_mib": rss_before.map(kib_to_mib),
                "peak_rss_mib": peak.map(kib_to_mib),
                "peak_rss_growth_mib": peak.zip(rss_before).map(|(p, b)| kib_to_mib(p.saturating_sub(b))),
                "digest": report.digest,
            });
            eprintln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            runs.push(r);
        }
    }

    let result = json!({
        "date": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "git_commit": git_commit(&root),
        "nproc": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "part_size_mib": agentcore_controller::oci::push::part_size(None) / MIB,
        "emulator": "moto[server]==5.2.5 via scripts/emulator.py (loopback)",
        "runs": runs,
    });
    let out_dir = std::env::var("BENCH_OUT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("bench"));
    std::fs::create_dir_all(&out_dir).expect("create bench/");
    merge_json(&out_dir.join("results.json"), &result);
    let md = markdown(&result);
    merge_markdown(&out_dir.join("RESULTS.md"), &md);
    println!("{md}");
}

/// A layout with one random (incompressible) layer of `size` bytes, written and hashed
/// a MiB at a time.
fn write_layout(dir: &Path, size: u64) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir blobs");
    let tmp = dir.join("layer.tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).expect("layer file"));
    let mut h = Sha256::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut chunk = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        let n = left.min(MIB) as usize;
        for word in chunk[..n].chunks_mut(8) {
            // xorshift64*: fast, and gzip cannot shrink its output.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            word.copy_from_slice(&v[..word.len()]);
        }
        h.update(&chunk[..n]);
        f.write_all(&chunk[..n]).expect("write layer");
        left -= n as u64;
    }
    f.flush().expect("flush layer");
    drop(f);
    let layer_hex = hex::encode(h.finalize());
    std::fs::rename(&tmp, blobs.join(&layer_hex)).expect("place layer");
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = hex::encode(Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes).expect("blob");
        (format!("sha256:{hex}"), bytes.len())
    };
    let config = json!({
        "architecture": "arm64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]},
    })
    .to_string();
    let (cdigest, csize) = put(config.as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": csize},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{layer_hex}"), "size": size}],
    })
    .to_string();
    let (mdigest, msize) = put(manifest.as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest, "size": msize,
                        "platform": {"architecture": "arm64", "os": "linux"}}],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index.json");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
}

/// Start a fresh peak-RSS window for this process (Linux: VmHWM := VmRSS).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find(|l| l.starts_with(&format!("{field}:")))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn kib_to_mib(k: u64) -> f64 {
    round3(k as f64 / 1024.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn git_commit(root: &Path) -> String {
    Command::new("git")
        .args([
            "-C",
            &root.display().to_string(),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Set `image_push` in results.json, keeping everything else in it.
fn merge_json(path: &Path, result: &Value) {
    let mut doc: Value = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({}));
    doc["image_push"] = result.clone();
    let text = serde_json::to_string_pretty(&doc).expect("results serialise as JSON");
    std::fs::write(path, text + "\n").expect("write results.json");
}

/// Replace (or append) this bench's section of RESULTS.md.
fn merge_markdown(path: &Path, section: &str) {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{PUSH_SECTION_START}\n{section}{PUSH_SECTION_END}\n");
    let new = match (old.find(PUSH_SECTION_START), old.find(PUSH_SECTION_END)) {
        (Some(s), Some(e)) if e > s => {
            format!(
                "{}{block}{}",
                &old[..s],
                &old[e + PUSH_SECTION_END.len()..].trim_start_matches('\n')
            )
        }
        _ if old.is_empty() => block,
        _ => format!("{}\n{block}", old.trim_end_matches('\n').to_string() + "\n"),
    };
    std::fs::write(path, new).expect("write RESULTS.md");
}

fn markdown(r: &Value) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Image push\n");
    let _ = writeln!(
        md,
        "`cargo bench --bench push` (benches/push.rs). {} · {} CPUs · commit {} · {}\n",
        r["date"].as_str().unwrap_or(""),
        r["nproc"],
        r["git_commit"].as_str().unwrap_or(""),
        r["emulator"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        md,
        "An OCI layout with one random layer (incompressible) of each size and its config, pushed through the \
         ECR API (parts of {} MiB) to a fresh repository. Cold: nothing in the repository; no-op: the same push \
         again.\n",
        r["part_size_mib"]
    );
    let _ = writeln!(
        md,
        "| layer MiB | push | wall s | bytes uploaded | blobs uploaded / total | MiB/s | ECR calls | peak RSS MiB (growth during the push) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for run in r["runs"].as_array().into_iter().flatten() {
        let calls: Vec<String> = run["ecr_calls"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{} {v}", k.trim_start_matches("ECR:")))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} / {} | {} | {} | {} ({}) |",
            run["layer_mib"],
            run["push"].as_str().unwrap_or(""),
            run["seconds"],
            run["bytes_uploaded"],
            run["blobs_uploaded"],
            run["blobs_total"],
            if run["throughput_mib_s"].is_null() {
                "–".to_string()
            } else {
                run["throughput_mib_s"].to_string()
            },
            calls.join(", "),
            run["peak_rss_mib"],
            run["peak_rss_growth_mib"],
        );
    }
    let _ = writeln!(
        md,
        "\nPeak RSS is this benchmark process's (tokio, SDK clients and the push), its high-water mark reset \
         before each push. The peak is the same for every layer size, because layers are streamed from disk one \
         part at a time: what a push holds is a part, its base64 form in the JSON request body and the SDK's \
         copy of that body. Later pushes grow less because the allocator keeps what earlier ones freed."
    );
    md
}
