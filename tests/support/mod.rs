//! Test harness: one AWS emulator (moto's standalone server) per test binary, started on
//! a free loopback port, and helpers to run the controller against it. Every test uses
//! unique names so that tests can share the one server.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use agentcore_controller::aws::Aws;
use aws_config::{BehaviorVersion, Region, SdkConfig};

pub const REGION: &str = "us-east-1";

pub struct Emulator {
    pub url: String,
    _child: Child,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// The emulator shared by every test of this binary.
pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        let root = repo_root();
        let status = Command::new(root.join("scripts/ensure-emulator"))
            .status()
            .expect("run scripts/ensure-emulator");
        assert!(status.success(), "installing the emulator failed");
        let port = free_port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("emulator-{port}.log")))
            .expect("emulator log file");
        let child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("scripts/emulator.py"))
            .args(["--exit-with", &std::process::id().to_string()])
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the emulator");
        let url = format!("http://127.0.0.1:{port}");
        wait_for(Duration::from_secs(60), "the emulator to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Emulator { url, _child: child }
    })
}

/// Poll `cond` until it holds or `limit` passes (then panic naming `what`).
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SDK configuration pointing at the emulator.
pub fn sdk_config() -> SdkConfig {
    let e = emulator();
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&e.url)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("testing", "testing", None, None, "tests"),
            ),
        )
        .build()
}

pub async fn aws() -> Aws {
    Aws::connect(&sdk_config())
        .await
        .expect("connect to the emulator")
}

/// A unique suffix for names in one test.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Run the controller binary with the emulator's environment.
pub fn controller(args: &[&str]) -> Output {
    controller_command(args)
        .output()
        .expect("run agentcore-controller")
}

pub fn controller_command(args: &[&str]) -> Command {
    let e = emulator();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentcore-controller"));
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", &e.url)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    cmd
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            stdout(o),
            stderr(o)
        )
    })
}

/// A temporary directory of manifests.
pub struct Manifests {
    pub dir: tempfile::TempDir,
}

impl Manifests {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn arg(&self) -> String {
        self.path().display().to_string()
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(name), text).expect("write manifest");
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.path().join(name)).expect("remove manifest");
    }
}

/// The names one copy of the guide's stack uses.
#[derive(Clone, Debug)]
pub struct StackNames {
    pub pool: String,
    pub client: String,
    pub user: String,
    pub role: String,
    pub repo: String,
    pub runtime: String,
    pub secret: String,
    pub parameter: String,
}

impl StackNames {
    pub fn unique() -> Self {
        let u = unique("t");
        Self {
            pool: format!("Pool{u}"),
            client: format!("Client{u}"),
            user: format!("user{u}"),
            role: format!("role-{u}"),
            repo: format!("repo-{u}"),
            runtime: format!("rt_{u}"),
            secret: format!("mcp/{u}/credentials"),
            parameter: format!("/mcp/{u}/agent_arn"),
        }
    }

    /// The guide's manifests (from `manifests/`, or `manifests-sigv4/`) with these names.
    pub fn render(&self, dir: &str) -> Vec<(String, String)> {
        let root = repo_root().join(dir);
        let mut out = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(&root)
            .expect("read manifests dir")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        entries.sort();
        for path in entries {
            let text = std::fs::read_to_string(&path).expect("read manifest");
            let text = self.substitute(&text);
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            out.push((name, text));
        }
        out
    }

    pub fn substitute(&self, text: &str) -> String {
        // Longest names first so that MCPServerPoolClient is not hit by MCPServerPool.
        text.replace("MCPServerPoolClient", &self.client)
            .replace("MCPServerPool", &self.pool)
            .replace("agentcore-mcp_server_ac-role", &self.role)
            .replace("/mcp_server/runtime/agent_arn", &self.parameter)
            .replace("mcp_server/cognito/credentials", &self.secret)
            .replace("mcp-server-latest", &format!("{}-latest", self.repo))
            .replace("mcp-server", &self.repo)
            .replace("mcp_server_ac", &self.runtime)
            .replace("testuser", &self.user)
    }

    pub fn write_to(&self, m: &Manifests, dir: &str) {
        for (name, text) in self.render(dir) {
            m.write(&name, &text);
        }
    }
}

/// Push a small stand-in image manifest under `tag` (what CI would do); returns the digest
/// ECR reports.
pub async fn push_image(aws: &Aws, repo: &str, tag: &str, salt: &str) -> String {
    let config = serde_json::json!({"salt": salt}).to_string();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config.len(),
            "digest": format!("sha256:{}", sha256_hex(config.as_bytes())),
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": salt.len(),
            // The emulator derives the image digest from the layer digests.
            "digest": format!("sha256:{}", sha256_hex(salt.as_bytes())),
        }]
    });
    let out = aws
        .ecr
        .put_image()
        .repository_name(repo)
        .image_tag(tag)
        .image_manifest(manifest.to_string())
        .send()
        .await
        .expect("PutImage");
    out.image()
        .and_then(|i| i.image_id())
        .and_then(|id| id.image_digest())
        .expect("digest")
        .to_string()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
