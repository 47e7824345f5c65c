//! What the benchmarks share: the AWS emulator on a free port.
#![allow(dead_code)] // each benchmark uses part of it

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

pub const REGION: &str = "us-east-1";

/// The push benchmark's section of bench/RESULTS.md (the daemon benchmark keeps it).
pub const PUSH_SECTION_START: &str = "<!-- image-push:start -->";
pub const PUSH_SECTION_END: &str = "<!-- image-push:end -->";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Install the emulator into .venv when it is not there yet.
pub fn ensure_emulator() {
    let status = Command::new(repo_root().join("scripts/ensure-emulator"))
        .status()
        .expect("run scripts/ensure-emulator (installs the emulator into .venv)");
    assert!(status.success(), "installing the emulator failed");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The emulator on a free port; exits with this process, killed on drop.
pub struct Emulator {
    pub url: String,
    child: Child,
}

impl Emulator {
    /// Start it, logging to `{log_name}-{port}.log` in the temp directory.
    pub fn start(log_name: &str) -> Self {
        let root = repo_root();
        let port = free_port();
        let log = std::env::temp_dir().join(format!("{log_name}-{port}.log"));
        let log = std::fs::File::create(log).expect("emulator log file");
        let child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("scripts/emulator.py"))
            .args(["--exit-with", &std::process::id().to_string()])
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the emulator (.venv/bin/python scripts/emulator.py)");
        wait_for(Duration::from_secs(60), "the emulator to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.url)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        "testing", "testing", None, None, "bench",
                    ),
                ),
            )
            .build()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
