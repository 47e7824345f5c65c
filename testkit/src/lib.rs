//! What the end-to-end tests (tests/) and the benchmarks (benches/) share: the AWS emulator
//! (moto's standalone server) on a free loopback port, the controller binary run against it,
//! a fault-injecting proxy, and fixtures of the guide's stack. A test binary shares one
//! emulator (`emulator()`); every test uses unique names so that tests can share the server.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use agentcore_controller::aws::Aws;
use aws_config::{BehaviorVersion, Region, SdkConfig};

pub mod fault_proxy;
pub mod git;
pub mod guide;
pub mod receiver;
pub mod requests;

pub const REGION: &str = "us-east-1";

/// The push benchmark's section of bench/RESULTS.md (the daemon benchmark keeps it).
pub const PUSH_SECTION_START: &str = "<!-- image-push:start -->";
pub const PUSH_SECTION_END: &str = "<!-- image-push:end -->";

/// The repository's root (this crate lives in `testkit/`).
pub fn repo_root() -> PathBuf {
    let testkit = Path::new(env!("CARGO_MANIFEST_DIR"));
    testkit.parent().unwrap_or(testkit).to_path_buf()
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// Install the emulator into .venv when it is not there yet.
pub fn ensure_emulator() {
    let status = Command::new(repo_root().join("scripts/ensure-emulator"))
        .status()
        .expect("run scripts/ensure-emulator (installs the emulator into .venv)");
    assert!(status.success(), "installing the emulator failed");
}

/// The emulator on a free port; it exits with this process, and is killed when dropped.
pub struct Emulator {
    pub url: String,
    /// Where every request is logged, one JSON line each, when asked for (see
    /// `scripts/emulator.py`).
    pub request_log: Option<PathBuf>,
    child: Child,
}

impl Emulator {
    /// Install and start one, logging to `{log_name}-{port}.log` in the temp directory.
    pub fn start(log_name: &str) -> Self {
        Self::start_with(log_name, false)
    }

    /// [`Emulator::start`], logging every request (to `{log_name}-{port}.requests.jsonl`).
    pub fn start_with(log_name: &str, log_requests: bool) -> Self {
        ensure_emulator();
        let root = repo_root();
        let port = free_port();
        let log = std::env::temp_dir().join(format!("{log_name}-{port}.log"));
        let log = std::fs::File::create(log).expect("emulator log file");
        let request_log = log_requests
            .then(|| std::env::temp_dir().join(format!("{log_name}-{port}.requests.jsonl")));
        let mut command = Command::new(root.join(".venv/bin/python"));
        if let Some(path) = &request_log {
            let _ = std::fs::remove_file(path);
            command.env("EMULATOR_REQUEST_LOG", path);
        }
        let child = command
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
            request_log,
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SDK configuration pointing at this emulator.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.url)
            // The tests' own calls, told apart from the controller's in the request log.
            .app_name(aws_config::AppName::new("testkit").expect("app name"))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        "testing", "testing", None, None, "tests",
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

/// The emulator shared by every test of this binary, logging every request (see
/// [`Emulator::request_log`]).
pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| Emulator::start_with("emulator", true))
}

/// Poll `cond` until it holds or `limit` passes (then panic naming `what`).
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The controller binary cargo built beside the running test or benchmark
/// (`target/<profile>/deps/<test>` → `target/<profile>/agentcore-controller`).
pub fn controller_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let bin = profile_dir.join(format!(
        "agentcore-controller{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(
        bin.exists(),
        "{} is missing: run the tests through cargo (it builds the binary first)",
        bin.display()
    );
    bin
}

/// SDK configuration pointing at the shared emulator.
pub fn sdk_config() -> SdkConfig {
    emulator().sdk_config()
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
    let mut cmd = Command::new(controller_binary());
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", &e.url)
        .env("AGENTCORE_COGNITO_DOMAIN_URL", &e.url)
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

impl Default for Manifests {
    fn default() -> Self {
        Self::new()
    }
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
            let text = guide::track_latest(&self.substitute(&text));
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
    let manifest = guide::standin_manifest(salt);
    let out = aws
        .ecr
        .put_image()
        .repository_name(repo)
        .image_tag(tag)
        .image_manifest(manifest)
        .send()
        .await
        .expect("PutImage");
    out.image()
        .and_then(|i| i.image_id())
        .and_then(|id| id.image_digest())
        .expect("digest")
        .to_string()
}

/// A running `agentcore-controller run` daemon, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub listen: String,
    pub log: PathBuf,
}

impl Daemon {
    /// Start the daemon on `dir` with a short resync and debounce, plus `extra` flags.
    /// `endpoint` overrides the emulator URL (e.g. a fault-injecting proxy in front of it).
    pub fn start(dir: &Path, extra: &[&str], endpoint: Option<&str>) -> Daemon {
        Self::start_with(dir, extra, endpoint, &[])
    }

    /// [`Daemon::start`] with extra environment variables.
    pub fn start_with(
        dir: &Path,
        extra: &[&str],
        endpoint: Option<&str>,
        envs: &[(&str, &str)],
    ) -> Daemon {
        let dir = dir.display().to_string();
        let mut args = vec!["-f", &dir];
        args.extend_from_slice(extra);
        Self::launch(&args, endpoint, envs)
    }

    /// The daemon on a git source (`--git URL` and the like in `args`), with a short
    /// debounce.
    pub fn start_git(args: &[&str], envs: &[(&str, &str)]) -> Daemon {
        Self::launch(args, None, envs)
    }

    /// `run` with `extra` (its manifests among them) on loopback.
    fn launch(extra: &[&str], endpoint: Option<&str>, envs: &[(&str, &str)]) -> Daemon {
        // `--listen` in `extra` replaces the loopback default (connecting through
        // loopback to an address on every interface).
        let given = extra
            .iter()
            .position(|a| *a == "--listen")
            .and_then(|i| extra.get(i + 1));
        let port = given
            .and_then(|l| l.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(free_port);
        let listen = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("daemon-{port}.log"));
        let file = std::fs::File::create(&log).expect("daemon log");
        let mut args = vec!["run", "--debounce", "100ms"];
        if given.is_none() {
            args.extend(["--listen", &listen]);
        }
        args.extend_from_slice(extra);
        let mut cmd = controller_command(&args);
        cmd.envs(envs.iter().copied());
        if let Some(url) = endpoint {
            cmd.env("AWS_ENDPOINT_URL", url)
                .env("AGENTCORE_COGNITO_DOMAIN_URL", url);
        }
        let child = cmd
            .env("AGENTCORE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start the daemon");
        let d = Daemon { child, listen, log };
        wait_for(Duration::from_secs(30), "the daemon to listen", || {
            std::net::TcpStream::connect(&d.listen).is_ok()
        });
        d
    }

    /// GET a path; (status code, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http(&self.listen, "GET", path)
    }

    pub fn post(&self, path: &str) -> (u16, String) {
        http(&self.listen, "POST", path)
    }

    pub fn status(&self) -> serde_json::Value {
        let (code, body) = self.get("/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status JSON")
    }

    /// The status of one object, if the daemon tracks it.
    pub fn object(&self, kind: &str, name: &str) -> Option<serde_json::Value> {
        self.status()["objects"]
            .as_array()?
            .iter()
            .find(|o| o["kind"] == kind && o["name"] == name)
            .cloned()
    }

    /// Whether `kind/name` has condition `cond` = True.
    pub fn condition(&self, kind: &str, name: &str, cond: &str) -> bool {
        self.object(kind, name).is_some_and(|o| {
            o["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == cond && c["status"] == "True")
            })
        })
    }

    pub fn all_ready(&self) -> bool {
        let s = self.status();
        let objects = s["objects"].as_array().cloned().unwrap_or_default();
        !objects.is_empty()
            && objects.iter().all(|o| {
                o["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL (kill -9) without waiting for anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP/1.1 client for loopback endpoints.
pub fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    http_with(
        addr,
        method,
        path,
        &[("Host", addr), ("x-agentcore-action", "test")],
    )
}

/// [`http`] with exactly these headers (besides Connection and Content-Length).
pub fn http_with(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "{method} {path} HTTP/1.1\r\n{headers}Connection: close\r\nContent-Length: 0\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
                break;
            };
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_string()
    };
    (code, body)
}

/// An SSM parameter's value, if it exists.
pub async fn parameter_value(aws: &Aws, name: &str) -> Option<String> {
    aws.ssm
        .get_parameter()
        .name(name)
        .send()
        .await
        .ok()?
        .parameter()?
        .value()
        .map(String::from)
}

/// IDs of the user pools called `name` (every page).
pub async fn pools_named(aws: &Aws, name: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = aws
            .cognito
            .list_user_pools()
            .max_results(60)
            .set_next_token(next.clone())
            .send()
            .await
            .expect("ListUserPools");
        for p in out.user_pools() {
            if p.name() == Some(name) {
                ids.push(p.id().unwrap_or_default().to_string());
            }
        }
        match out.next_token() {
            Some(token) if next.as_deref() != Some(token) => next = Some(token.to_string()),
            _ => return ids,
        }
    }
}

/// IDs of the runtimes called `name`, across every page of ListAgentRuntimes.
pub async fn runtimes_named(aws: &Aws, name: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = aws
            .agentcore
            .list_agent_runtimes()
            .max_results(100)
            .set_next_token(next.clone())
            .send()
            .await
            .expect("ListAgentRuntimes");
        ids.extend(
            out.agent_runtimes()
                .iter()
                .filter(|r| r.agent_runtime_name() == name)
                .map(|r| r.agent_runtime_id().to_string()),
        );
        match out.next_token() {
            Some(token) if next.as_deref() != Some(token) => next = Some(token.to_string()),
            _ => return ids,
        }
    }
}

/// Exactly one user pool, app client, user and runtime of a stack exist; `context` is
/// shown on failure (e.g. the faults injected).
pub async fn assert_one_of_each(aws: &Aws, names: &StackNames, context: &str) {
    let pools = pools_named(aws, &names.pool).await;
    assert_eq!(pools.len(), 1, "one user pool: {pools:?}; {context}");
    let pool_id = &pools[0];
    let clients = aws
        .cognito
        .list_user_pool_clients()
        .user_pool_id(pool_id)
        .max_results(60)
        .send()
        .await
        .expect("ListUserPoolClients");
    let clients: Vec<_> = clients
        .user_pool_clients()
        .iter()
        .map(|c| c.client_name())
        .collect();
    assert_eq!(
        clients,
        vec![Some(names.client.as_str())],
        "one app client; {context}"
    );
    let users = aws
        .cognito
        .list_users()
        .user_pool_id(pool_id)
        .send()
        .await
        .expect("ListUsers");
    let users: Vec<_> = users.users().iter().map(|u| u.username()).collect();
    assert_eq!(
        users,
        vec![Some(names.user.as_str())],
        "one user; {context}"
    );
    let runtimes = runtimes_named(aws, &names.runtime).await;
    assert_eq!(runtimes.len(), 1, "one runtime: {runtimes:?}; {context}");
}

/// The entry of kind `kind` in an apply, diff or delete JSON report.
pub fn object<'a>(report: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    report["objects"]
        .as_array()
        .and_then(|objs| objs.iter().find(|o| o["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} in report: {report:#}"))
}

/// A JSON secret's current value, as a map.
pub async fn secret_map(aws: &Aws, name: &str) -> serde_json::Map<String, serde_json::Value> {
    let v = aws
        .secrets
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .expect("GetSecretValue");
    serde_json::from_str(v.secret_string().unwrap_or("{}")).expect("JSON secret")
}

/// Change a runtime's JWT authorizer out of band, as someone in the console would, keeping
/// the rest of its configuration (sent again: an update replaces the whole of it); the
/// update's answer.
pub async fn set_jwt_authorizer(
    aws: &Aws,
    rt: &aws_sdk_bedrockagentcorecontrol::operation::get_agent_runtime::GetAgentRuntimeOutput,
    jwt: aws_sdk_bedrockagentcorecontrol::types::CustomJwtAuthorizerConfiguration,
) -> aws_sdk_bedrockagentcorecontrol::operation::update_agent_runtime::UpdateAgentRuntimeOutput {
    aws.agentcore
        .update_agent_runtime()
        .agent_runtime_id(rt.agent_runtime_id())
        .set_agent_runtime_artifact(rt.agent_runtime_artifact().cloned())
        .role_arn(rt.role_arn())
        .set_network_configuration(rt.network_configuration().cloned())
        .set_protocol_configuration(rt.protocol_configuration().cloned())
        .set_lifecycle_configuration(rt.lifecycle_configuration().cloned())
        .set_environment_variables(rt.environment_variables().cloned())
        .set_request_header_configuration(rt.request_header_configuration().cloned())
        .set_description(rt.description().map(String::from))
        .authorizer_configuration(
            aws_sdk_bedrockagentcorecontrol::types::AuthorizerConfiguration::CustomJwtAuthorizer(
                jwt,
            ),
        )
        .send()
        .await
        .expect("UpdateAgentRuntime out of band")
}

/// The one runtime named `name`, as AgentCore describes it.
pub async fn runtime(
    aws: &Aws,
    name: &str,
) -> aws_sdk_bedrockagentcorecontrol::operation::get_agent_runtime::GetAgentRuntimeOutput {
    let ids = runtimes_named(aws, name).await;
    assert_eq!(ids.len(), 1, "exactly one runtime named {name}: {ids:?}");
    aws.agentcore
        .get_agent_runtime()
        .agent_runtime_id(&ids[0])
        .send()
        .await
        .expect("GetAgentRuntime")
}
