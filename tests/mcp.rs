//! MCP end to end: the guide's MCP server (in-process) answers the `mcp` command, and
//! `local` stands in for the runtime's JWT authorizer against the emulator's Cognito:
//! the published token reaches the tools, and expired tokens, ID tokens, tokens of
//! another app client and requests without a token are refused with AgentCore's reasons;
//! and the daemon's live probe, with `local` as the data plane's front door, reports
//! whether the runtime serves its Token's clients.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use agentcore_controller::aws::Aws;
use serde_json::{Value, json};
use testkit::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The guide's MCP server on a free loopback port, in this process; its /mcp URL.
async fn guide_server() -> (String, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(mcp_server::serve(listener, std::future::pending()));
    (format!("http://{addr}/mcp"), addr)
}

/// The guide's tools behind rmcp's defaults instead: sessions (initialize hands out an
/// Mcp-Session-Id that every later request must carry) and event-stream answers.
async fn session_server() -> String {
    use mcp_server::rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use mcp_server::rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    let service = StreamableHttpService::new(
        || Ok(mcp_server::Guide),
        std::sync::Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, axum::Router::new().route_service("/mcp", service)).await
    });
    format!("http://{addr}/mcp")
}

/// The controller binary without the emulator's environment (for servers that need none).
async fn run(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_agentcore-controller"))
            .args(&args)
            .env_remove("AWS_ENDPOINT_URL")
            .stdin(Stdio::null())
            .output()
            .expect("run agentcore-controller")
    })
    .await
    .expect("join")
}

/// The controller binary against the emulator, off the async worker threads.
/// Everything the controller printed in these tests, to check that no token leaked.
static PRINTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

async fn run_emulated(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        controller(&refs)
    })
    .await
    .expect("join");
    PRINTED.lock().expect("printed").push(both(&out));
    out
}

/// `mcp RUNTIME -f DIR --url URL ARGS…` against the emulator.
async fn mcp_via(runtime: &str, dir: &str, url: &str, args: &[&str]) -> Output {
    let mut all = vec!["mcp", runtime, "-f", dir, "--url", url];
    all.extend_from_slice(args);
    run_emulated(&all).await
}

fn both(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guides_server_answers_the_mcp_command() {
    let (url, addr) = guide_server().await;

    let out = run(&["mcp", "--url", &url, "tools"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let text = stdout(&out);
    let names: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["add", "subtract"], "{text}");
    assert!(text.contains("a: number, required"), "{text}");

    let out = run(&["mcp", "--url", &url, "call", "add", "a=2", "b=3"]).await;
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), "5\n"),
        "{}",
        stderr(&out)
    );
    let out = run(&["mcp", "--url", &url, "call", "subtract", "a=2", "b=3"]).await;
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), "-1\n"),
        "{}",
        stderr(&out)
    );

    let out = run(&["mcp", "--url", &url, "prompts", "--output", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let prompts = json(&out);
    assert_eq!(prompts["prompts"][0]["name"], "greeting", "{prompts:#}");
    assert_eq!(prompts["prompts"][0]["arguments"][0]["name"], "name");

    let out = run(&["mcp", "--url", &url, "resources"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(stdout(&out), "The server offers no resources.\n");

    // A JSON-RPC error is reported as such, and a failed tool fails the command.
    let out = run(&["mcp", "--url", &url, "call", "multiply", "a=2"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("JSON-RPC error -32602"),
        "{}",
        both(&out)
    );
    let out = run(&["mcp", "--url", &url, "call", "add", "a=two", "b=3"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("tool add failed"), "{}", both(&out));

    // A server with sessions and event streams: the session id is kept and sent back.
    let session_url = session_server().await;
    let out = run(&["mcp", "--url", &session_url, "call", "add", "a=2", "b=3"]).await;
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), "5\n"),
        "{}",
        stderr(&out)
    );
    let r = reqwest::Client::new()
        .post(&session_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .expect("POST");
    assert!(
        r.status().is_client_error(),
        "without a session id this server refuses: {}",
        r.status()
    );

    // Stateless JSON answers; GET /mcp is refused; /ping is healthy; both session
    // headers are accepted.
    let (code, _) = http(&addr, "GET", "/mcp");
    assert_eq!(code, 405);
    let (code, body) = http(&addr, "GET", "/ping");
    assert_eq!((code, body.as_str()), (200, r#"{"status":"Healthy"}"#));
    let r = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", "some-session")
        .header(
            "x-amzn-bedrock-agentcore-runtime-session-id",
            "a-runtime-session-id-of-at-least-33-chars",
        )
        .body(
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                   "params": {"name": "add", "arguments": {"a": 40, "b": 2}}})
            .to_string(),
        )
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let v: Value = serde_json::from_str(&r.text().await.expect("body")).expect("JSON");
    assert_eq!(v["id"], 7);
    assert_eq!(v["result"]["content"][0]["text"], "42");
}

/// A running `local`, killed on drop.
struct Local {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Local {
    fn start(m: &Manifests, runtime: &str, extra: &[&str]) -> Local {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("local-{port}.log"));
        let listen = format!("127.0.0.1:{port}");
        let dir = m.arg();
        let mut args = vec!["local", runtime, "-f", &dir, "--listen", &listen];
        args.extend_from_slice(extra);
        let mut child = controller_command(&args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start local");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading after the first line so that local never writes to a closed pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut local = Local {
            child,
            url: String::new(),
            log,
        };
        let first = rx
            .recv_timeout(Duration::from_secs(90))
            .unwrap_or_else(|_| {
                panic!(
                    "local printed no URL\n{}",
                    std::fs::read_to_string(&local.log).unwrap_or_default()
                )
            });
        local.url = first
            .strip_prefix("Local invocation URL: ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_string();
        local
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POST a tools/call for add(2, 3) with `bearer`; (status, runtime session header, body).
async fn invoke(url: &str, bearer: Option<&str>) -> (u16, Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header(
            "x-amzn-bedrock-agentcore-runtime-session-id",
            "test-session-0123456789-0123456789-abc",
        )
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "add", "arguments": {"a": 2, "b": 3}}})
            .to_string(),
        );
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("POST to local");
    let status = r.status().as_u16();
    let session = r
        .headers()
        .get("x-amzn-bedrock-agentcore-runtime-session-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or(Value::Null);
    (status, session, body)
}

/// `token` re-signed with the emulator's own key with `exp` 10 minutes in the past.
fn expired(token: &str) -> String {
    const SCRIPT: &str = r#"
import base64, gzip, json, os, sys, time
import moto
from joserfc import jwk, jwt
path = os.path.join(os.path.dirname(moto.__file__), "cognitoidp/resources/jwks-private.json.gz")
key = jwk.RSAKey.import_key(json.loads(gzip.open(path).read()))
header, payload, _ = sys.stdin.read().strip().split(".")
claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
now = int(time.time())
claims["iat"], claims["exp"] = now - 4200, now - 600
print(jwt.encode({"kid": json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"], "alg": "RS256"}, claims, key))
"#;
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(token.as_bytes()).expect("write token");
    }
    let out = child.wait_with_output().expect("python output");
    assert!(out.status.success(), "minting failed: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// An access token for the same user through a second app client of the same pool.
async fn other_client_token(aws: &Aws, names: &StackNames) -> String {
    let pool_id = pools_named(aws, &names.pool)
        .await
        .into_iter()
        .next()
        .expect("the pool");
    let client = aws
        .cognito
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name(format!("{}-other", names.client))
        .explicit_auth_flows(
            aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType::AllowUserPasswordAuth,
        )
        .send()
        .await
        .expect("CreateUserPoolClient");
    let client_id = client
        .user_pool_client()
        .and_then(|c| c.client_id())
        .expect("client id")
        .to_string();
    let password_secret = format!("agentcore-controller/users/{}/{}", names.pool, names.user);
    let password = secret_map(aws, &password_secret).await["password"]
        .as_str()
        .expect("password")
        .to_string();
    let auth = aws
        .cognito
        .initiate_auth()
        .client_id(client_id)
        .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", &names.user)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .expect("InitiateAuth");
    auth.authentication_result()
        .and_then(|r| r.access_token())
        .expect("access token")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn local_authorizes_like_the_runtime_and_forwards_to_the_guides_server() {
    let aws = aws().await;
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    let dir = m.arg();
    // Before the runtime exists: only the Cognito side and the Token are applied, and
    // local serves a placeholder ARN's path with the authorizer from the manifests.
    let cognito = Manifests::new();
    for (file, text) in names.render("manifests") {
        if file == "cognito.yaml" {
            cognito.write(&file, &text);
        } else if file == "outputs.yaml" {
            let token = text
                .split("\n---\n")
                .find(|doc| doc.contains("kind: Token"))
                .expect("the Token document");
            cognito.write("token.yaml", token);
        }
    }
    let out = run_emulated(&["apply", "-f", &cognito.arg()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    {
        let local = Local::start(&m, &names.runtime, &[]);
        assert!(
            local.url.contains(&format!(
                "%3Aruntime%2F{}-local/invocations?qualifier=DEFAULT",
                names.runtime
            )),
            "{}",
            local.url
        );
        let out = mcp_via(
            &names.runtime,
            &dir,
            &local.url,
            &["call", "subtract", "a=2", "b=3"],
        )
        .await;
        assert_eq!(
            (out.status.code(), stdout(&out).as_str()),
            (Some(0), "-1\n"),
            "{}\n{}",
            stderr(&out),
            local.log_text()
        );
    }

    // Then the whole stack: the first apply stops at the runtime (no image yet), the
    // second converges once the stand-in image CI would push is there.
    let _ = run_emulated(&["apply", "-f", &dir, "--timeout", "3s"]).await;
    push_image(&aws, &names.repo, "latest", &names.runtime).await;
    let out = run_emulated(&["apply", "-f", &dir]).await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let published = secret_map(&aws, &names.secret).await;
    let access = published["access_token"]
        .as_str()
        .expect("access")
        .to_string();
    let id = published["id_token"].as_str().expect("id").to_string();
    assert_eq!(published["bearer_token"], published["access_token"]);

    let local = Local::start(&m, &names.runtime, &[]);
    let arn_url = run_emulated(&["url", &names.runtime, "-f", &dir]).await;
    let deployed_path = stdout(&arn_url);
    let deployed_path = deployed_path
        .trim()
        .split_once("/runtimes/")
        .map(|(_, p)| p.to_string())
        .expect("runtime URL");
    assert!(
        local.url.ends_with(&format!("/runtimes/{deployed_path}")),
        "local serves the deployed runtime's invocation path: {} vs {deployed_path}",
        local.url
    );

    // End to end with the published token: mcp → local authorizer → MCP server → tool.
    let out = mcp_via(
        &names.runtime,
        &dir,
        &local.url,
        &["call", "add", "a=2", "b=3"],
    )
    .await;
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), "5\n"),
        "{}\n{}",
        stderr(&out),
        local.log_text()
    );
    let out = mcp_via(&names.runtime, &dir, &local.url, &["tools"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).starts_with("add "), "{}", stdout(&out));

    let (status, session, body) = invoke(&local.url, Some(&access)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "5", "{body}");
    assert_eq!(
        session.as_deref(),
        Some("test-session-0123456789-0123456789-abc"),
        "the runtime session header passes through"
    );

    // Refusals, with AgentCore's reasons and the failing check.
    let expired_token = expired(&access);
    let other = other_client_token(&aws, &names).await;
    let cases = [
        (
            "expired",
            Some(expired_token.as_str()),
            401,
            "Token has expired",
            "expiry",
        ),
        (
            "ID token",
            Some(id.as_str()),
            403,
            "Claim 'client_id' value mismatch with configuration",
            "token_use",
        ),
        (
            "another app client",
            Some(other.as_str()),
            403,
            "Claim 'client_id' value mismatch with configuration",
            "client",
        ),
        ("no bearer", None, 401, "Missing bearer token", "bearer"),
        (
            "garbage",
            Some("not-a-jwt"),
            401,
            "Invalid bearer token",
            "signature",
        ),
    ];
    for (what, token, want_status, want_message, want_check) in cases {
        let (status, _, body) = invoke(&local.url, token).await;
        assert_eq!(status, want_status, "{what}: {body}");
        assert_eq!(body["message"], want_message, "{what}: {body}");
        assert_eq!(body["checks"][0]["check"], want_check, "{what}: {body}");
        assert!(body["checks"][0]["fix"].is_string(), "{what}: {body}");
    }

    // The mcp command explains a refusal check by check.
    let out = mcp_via(
        &names.runtime,
        &dir,
        &local.url,
        &["--token", &expired_token, "tools"],
    )
    .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("HTTP 401: Token has expired"), "{err}");
    assert!(
        err.contains("checked against the deployed runtime's authorizer"),
        "{err}"
    );
    assert!(err.contains("FAIL expiry"), "{err}");
    let out = mcp_via(
        &names.runtime,
        &dir,
        &local.url,
        &["--token", &other, "-o", "json", "tools"],
    )
    .await;
    let report = json(&out);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["status"], 403, "{report:#}");
    let failing: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .filter_map(|c| c["check"].as_str())
        .collect();
    assert_eq!(failing, ["client"], "{report:#}");

    // In front of a server with sessions: Mcp-Session-Id passes through both ways.
    let session_url = session_server().await;
    let with_sessions = Local::start(&m, &names.runtime, &["--upstream", &session_url]);
    let out = mcp_via(
        &names.runtime,
        &dir,
        &with_sessions.url,
        &["call", "subtract", "a=10", "b=4"],
    )
    .await;
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), "6\n"),
        "{}\n{}",
        stderr(&out),
        with_sessions.log_text()
    );

    // A runtime whose authorizer requires a custom claim (set by hand, as in the
    // console): local reads it from AWS and refuses the published token, which lacks it.
    let rt = runtime(&aws, &names.runtime).await;
    let mut jwt = rt
        .authorizer_configuration()
        .and_then(|a| a.as_custom_jwt_authorizer().ok())
        .cloned()
        .expect("jwt");
    let rule = agentcore_controller::kinds::agent_runtime::claims::Claim {
        name: "tenant".into(),
        value_type: agentcore_controller::kinds::agent_runtime::claims::ClaimValueType::String,
        operator: agentcore_controller::kinds::agent_runtime::claims::ClaimOperator::Equals,
        values: vec!["acme".into()],
    };
    jwt.custom_claims = Some(vec![rule.to_sdk().expect("rule")]);
    set_jwt_authorizer(&aws, &rt, jwt).await;
    let with_claims = Local::start(&m, &names.runtime, &[]);
    let (status, _, body) = invoke(&with_claims.url, Some(&access)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["message"], "Claim 'tenant' value mismatch with configuration",
        "{body}"
    );
    assert_eq!(body["checks"][0]["check"], "claims", "{body}");
    let detail = body["checks"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("the token has no tenant claim") && detail.contains("tenant EQUALS"),
        "{body}"
    );
    assert!(body["checks"][0]["fix"].is_string(), "{body}");
    drop(with_claims);

    // No token reaches any output: local's log, or anything mcp printed, refusals
    // (with --token) included.
    let log = local.log_text();
    assert!(log.contains("Token has expired"), "{log}");
    let printed = PRINTED.lock().expect("printed").clone();
    assert!(
        printed.iter().any(|p| p.contains("FAIL expiry")),
        "the refusals are among the outputs checked"
    );
    for token in [&access, &id, &expired_token, &other] {
        let signature = token.rsplit('.').next().unwrap_or(token);
        assert!(!log.contains(signature), "a token in local's log");
        for p in &printed {
            assert!(!p.contains(signature), "a token in mcp's output: {p}");
        }
    }
}

/// The `Serving` condition of `kind/name` in the daemon's status: (status, reason, message).
fn serving(d: &Daemon, kind: &str, name: &str) -> Option<(String, String, String)> {
    let o = d.object(kind, name)?;
    let c = o["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Serving")?
        .clone();
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

/// Wait (generously) until the Serving condition satisfies `ok`; the last one seen.
fn wait_serving(
    d: &Daemon,
    name: &str,
    what: &str,
    ok: impl Fn(&(String, String, String)) -> bool,
) -> (String, String, String) {
    wait_serving_of(d, "AgentRuntime", name, what, ok)
}

fn wait_serving_of(
    d: &Daemon,
    kind: &str,
    name: &str,
    what: &str,
    ok: impl Fn(&(String, String, String)) -> bool,
) -> (String, String, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    loop {
        let seen = serving(d, kind, name);
        if let Some(s) = seen.as_ref().filter(|s| ok(s)) {
            return s.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; last Serving: {seen:?}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The value of the metric line starting with `prefix` (name and labels), if any.
fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_probes_the_runtime_as_a_client_and_reports_serving() {
    let aws = aws().await;
    let m = Manifests::new();
    let names = StackNames::unique();
    for (file, text) in names.render("manifests") {
        let text = if file == "runtime.yaml" {
            format!("{}\n  probe:\n    interval: 10s\n", text.trim_end())
        } else {
            text
        };
        m.write(&file, &text);
    }
    // A named endpoint, probed at its own URL (?qualifier=prod).
    m.write(
        "endpoint.yaml",
        &format!(
            "apiVersion: agentcore.dev/v1alpha1\nkind: RuntimeEndpoint\nmetadata:\n  name: prod\nspec:\n  runtimeRef: {}\n  probe:\n    interval: 10s\n",
            names.runtime
        ),
    );
    let dir = m.arg();
    let _ = run_emulated(&["apply", "-f", &dir, "--timeout", "3s"]).await;
    push_image(&aws, &names.repo, "latest", &names.runtime).await;
    let out = run_emulated(&["apply", "-f", &dir]).await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // local is the data plane's front door: the daemon's probe goes to it.
    let local = Local::start(&m, &names.runtime, &[]);
    let origin = local
        .url
        .split_once("/runtimes/")
        .map(|(o, _)| o.to_string())
        .expect("local's URL");
    let d = Daemon::start_with(
        m.path(),
        &[],
        None,
        &[("AGENTCORE_DATA_PLANE_URL", origin.as_str())],
    );
    let rt = names.runtime.as_str();
    let (_, reason, message) = wait_serving(&d, rt, "Serving True", |s| s.0 == "True");
    assert_eq!(reason, "Serving");
    assert!(
        message.starts_with("MCP initialize and tools/list answered in ")
            && message.ends_with(": 2 tools"),
        "{message}"
    );
    assert!(
        d.condition("AgentRuntime", rt, "Ready"),
        "Ready stays as it was"
    );
    let (_, _, message) = wait_serving_of(
        &d,
        "RuntimeEndpoint",
        "prod",
        "the endpoint Serving True",
        |s| s.0 == "True",
    );
    assert!(message.ends_with(": 2 tools"), "{message}");
    let url = d
        .object("RuntimeEndpoint", "prod")
        .and_then(|o| o["outputs"]["invocationUrl"].as_str().map(String::from))
        .unwrap_or_default();
    assert!(url.ends_with("/invocations?qualifier=prod"), "{url}");
    let labels = format!("{{kind=\"AgentRuntime\",name=\"{rt}\"}}");
    let (_, text) = d.get("/metrics");
    assert_eq!(
        metric(
            &text,
            &format!("agentcore_controller_probe_success{labels}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, &format!("agentcore_controller_probe_tools{labels}")),
        Some(2.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            &format!("agentcore_controller_probe_duration_seconds{labels}")
        )
        .is_some_and(|s| s > 0.0),
        "{text}"
    );
    assert!(
        local.log_text().contains("tools/list"),
        "{}",
        local.log_text()
    );

    // Someone points the authorizer at another app client: the runtime (local, which
    // follows it) refuses the Token's bearer, and the probe says why.
    let live = runtime(&aws, rt).await;
    let mut jwt = live
        .authorizer_configuration()
        .and_then(|a| a.as_custom_jwt_authorizer().ok())
        .cloned()
        .expect("jwt");
    let allowed = jwt.allowed_clients.clone();
    jwt.allowed_clients = Some(vec!["someone-else".into()]);
    set_jwt_authorizer(&aws, &live, jwt).await;
    let (_, reason, message) =
        wait_serving(&d, rt, "Serving False, client mismatch", |s| s.0 == "False");
    assert_eq!(reason, "ClientMismatch", "{message}");
    assert!(
        message.contains("HTTP 403: Claim 'client_id' value mismatch with configuration")
            && message.contains("fix: "),
        "{message}"
    );
    assert!(
        d.condition("AgentRuntime", rt, "Ready"),
        "the probe leaves Ready alone"
    );
    let (_, text) = d.get("/metrics");
    assert_eq!(
        metric(
            &text,
            &format!("agentcore_controller_probe_success{labels}")
        ),
        Some(0.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            &format!(
                "agentcore_controller_probe_failures_total{{kind=\"AgentRuntime\",name=\"{rt}\",reason=\"ClientMismatch\"}}"
            )
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );

    // The daemon puts the authorizer back (drift): serving again.
    let (code, body) = d.post("/reconcile");
    assert_eq!(code, 202, "{body}");
    wait_serving(&d, rt, "Serving True again", |s| s.0 == "True");
    let repaired = runtime(&aws, rt).await;
    assert_eq!(
        repaired
            .authorizer_configuration()
            .and_then(|a| a.as_custom_jwt_authorizer().ok())
            .map(|j| j.allowed_clients.clone()),
        Some(allowed)
    );
    // The bearer never reaches the daemon's log nor its status.
    let bearer = secret_map(&aws, &names.secret).await["bearer_token"]
        .as_str()
        .expect("bearer")
        .to_string();
    let signature = bearer.rsplit('.').next().unwrap_or(&bearer).to_string();
    assert!(
        !d.log_text().contains(&signature),
        "a token in the daemon's log"
    );
    assert!(
        !d.get("/status").1.contains(&signature),
        "a token in the status"
    );
}
