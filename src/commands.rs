//! The one-shot commands: validate, diff, apply, delete. Each returns the process exit
//! code; `main.rs` only parses arguments.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::aws::{Aws, CallSummary, load_config};
use crate::engine::{ConvergeOptions, converge, teardown};
use crate::kinds::{Ctx, Mode, Registry};
use crate::manifest::{LoadError, ManifestSet, load_set};
use crate::output;

/// Exit codes, as `terraform plan -detailed-exitcode` uses them.
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const CHANGES: i32 = 2;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// Settings every command that talks to AWS shares.
#[derive(Debug, Clone)]
pub struct Common {
    pub files: Vec<PathBuf>,
    /// Value of the owner tag; one controller instance per value.
    pub instance: String,
    pub output: OutputFormat,
}

fn load(files: &[PathBuf]) -> Result<ManifestSet, i32> {
    match load_set(files, &Registry::offline()) {
        Ok(set) => Ok(set),
        Err(LoadError::Invalid(problems)) => {
            eprint!("{}", output::problems_text(&problems));
            Err(exit::ERROR)
        }
        Err(LoadError::Io(e)) => {
            eprintln!("error: {e}");
            Err(exit::ERROR)
        }
    }
}

async fn connect(instance: &str) -> Result<(Aws, Registry), i32> {
    let config = load_config().await;
    match Aws::connect(&config).await {
        Ok(aws) => {
            let ctx = Arc::new(Ctx {
                aws: aws.clone(),
                owner: instance.to_string(),
            });
            Ok((aws, Registry::live(ctx)))
        }
        Err(e) => {
            eprintln!("error: cannot reach AWS: {}", e.message);
            Err(exit::ERROR)
        }
    }
}

/// `validate`: offline; every problem; exit 1 on any.
pub fn validate(files: &[PathBuf]) -> i32 {
    match load(files) {
        Ok(set) => {
            println!(
                "{} object{} valid",
                set.objects.len(),
                if set.objects.len() == 1 { "" } else { "s" }
            );
            exit::OK
        }
        Err(code) => code,
    }
}

fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot render JSON: {e}"),
    }
}

/// `diff`: observe only; exit 0 in sync, 2 changes pending, 1 error.
pub async fn diff(common: &Common, timeout: Duration) -> i32 {
    let set = match load(&common.files) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let (aws, registry) = match connect(&common.instance).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    let before = aws.calls.snapshot();
    let opts = ConvergeOptions {
        mode: Mode::Plan,
        timeout,
        ..ConvergeOptions::default()
    };
    let report = converge(&set, &registry, &opts).await;
    let calls = CallSummary::between(&before, &aws.calls.snapshot());
    let code = if report.any_failed() || report.timed_out {
        exit::ERROR
    } else if report.changes_pending() || !report.all_ready() {
        exit::CHANGES
    } else {
        exit::OK
    };
    match common.output {
        OutputFormat::Json => print_json(&json!({
            "inSync": code == exit::OK,
            "objects": report.objects,
            "calls": calls,
            "seconds": report.seconds,
        })),
        OutputFormat::Text => print!("{}", output::plan_text(&report)),
    }
    code
}

/// `apply`: converge once; exit 0 only if every object is Ready.
pub async fn apply(common: &Common, timeout: Duration, concurrency: usize) -> i32 {
    let set = match load(&common.files) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let (aws, registry) = match connect(&common.instance).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    let before = aws.calls.snapshot();
    let opts = ConvergeOptions {
        mode: Mode::Apply,
        timeout,
        concurrency: concurrency.max(1),
        ..ConvergeOptions::default()
    };
    let report = converge(&set, &registry, &opts).await;
    let calls = CallSummary::between(&before, &aws.calls.snapshot());
    match common.output {
        OutputFormat::Json => print_json(&json!({
            "ready": report.all_ready(),
            "timedOut": report.timed_out,
            "objects": report.objects,
            "calls": calls,
            "seconds": report.seconds,
        })),
        OutputFormat::Text => {
            print!("{}", output::apply_table(&report));
            println!("AWS calls: {} reads, {} writes", calls.reads, calls.writes);
        }
    }
    if report.all_ready() {
        exit::OK
    } else {
        exit::ERROR
    }
}

/// `delete`: tear down in reverse dependency order, honouring deletion policies.
pub async fn delete(common: &Common, dry_run: bool) -> i32 {
    let set = match load(&common.files) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let (aws, registry) = match connect(&common.instance).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    let before = aws.calls.snapshot();
    let report = teardown(&set, &registry, dry_run).await;
    let calls = CallSummary::between(&before, &aws.calls.snapshot());
    match common.output {
        OutputFormat::Json => print_json(&json!({
            "dryRun": dry_run,
            "objects": report.objects,
            "calls": calls,
            "seconds": report.seconds,
        })),
        OutputFormat::Text => print!("{}", output::teardown_table(&report)),
    }
    if report.any_failed() {
        exit::ERROR
    } else {
        exit::OK
    }
}

/// `status`: the table (or JSON) of a running daemon's objects.
pub async fn status(listen: std::net::SocketAddr, output: OutputFormat) -> i32 {
    let (code, body) = match crate::server::request(listen, "GET", "/status").await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: no agentcore-controller daemon answers on {listen}: {e}");
            return exit::ERROR;
        }
    };
    if code != 200 {
        eprintln!("error: {listen}/status answered {code}: {body}");
        return exit::ERROR;
    }
    let snapshot: crate::engine::status::Snapshot = match serde_json::from_str(&body) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: unexpected /status answer: {e}");
            return exit::ERROR;
        }
    };
    match output {
        OutputFormat::Json => print_json(&snapshot),
        OutputFormat::Text => print!("{}", output::status_table(&snapshot)),
    }
    if snapshot.objects.iter().all(|o| o.is_ready()) {
        exit::OK
    } else {
        exit::CHANGES
    }
}

/// `confirm-prune`: let a running daemon carry out the prune its guard refused.
pub async fn confirm_prune(listen: std::net::SocketAddr) -> i32 {
    match crate::server::request(listen, "POST", "/confirm-prune").await {
        Ok((202, body)) => {
            print!("{body}");
            exit::OK
        }
        Ok((code, body)) => {
            eprintln!("error: {listen} answered {code}: {body}");
            exit::ERROR
        }
        Err(e) => {
            eprintln!("error: no agentcore-controller daemon answers on {listen}: {e}");
            exit::ERROR
        }
    }
}
