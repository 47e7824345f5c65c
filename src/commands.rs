//! The one-shot commands: validate, diff, apply, delete. Each returns the process exit
//! code; `main.rs` only parses arguments.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use aws_sdk_bedrockagentcorecontrol::operation::get_agent_runtime::GetAgentRuntimeOutput;

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

pub(crate) fn load(files: &[PathBuf]) -> Result<ManifestSet, i32> {
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

pub(crate) async fn connect(instance: &str) -> Result<(Aws, Registry), i32> {
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

/// Load and validate the manifests, then connect to AWS: what diff, apply and delete need.
async fn prepare(common: &Common) -> Result<(ManifestSet, Aws, Registry), i32> {
    let set = load(&common.files)?;
    let (aws, registry) = connect(&common.instance).await?;
    Ok((set, aws, registry))
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

/// `iam-policy`: the policy the controller needs for these manifests, on stdout.
pub fn iam_policy(files: &[PathBuf], opts: crate::iam_policy::PolicyOptions) -> i32 {
    let set = match load(files) {
        Ok(set) => set,
        Err(code) => return code,
    };
    let grants = crate::iam_policy::grants(&set, &Registry::offline(), &opts);
    let document = crate::iam_policy::document(&grants, &opts.instance);
    print_json(&document);
    let size = crate::iam_policy::size(&document);
    if size > crate::iam_policy::MANAGED_POLICY_LIMIT {
        eprintln!(
            "warning: the policy is {size} characters, over the {} a managed policy may hold: \
             split the manifests among controller instances, or attach it as inline policies",
            crate::iam_policy::MANAGED_POLICY_LIMIT
        );
    }
    exit::OK
}

pub(crate) fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot render JSON: {e}"),
    }
}

/// `diff`: observe only; exit 0 in sync, 2 changes pending, 1 error.
pub async fn diff(common: &Common, timeout: Duration) -> i32 {
    let (set, aws, registry) = match prepare(common).await {
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
    let (set, aws, registry) = match prepare(common).await {
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
    let (set, aws, registry) = match prepare(common).await {
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
    let (code, body) = match crate::server::request(listen, "GET", "/status", None).await {
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
pub async fn confirm_prune(
    listen: std::net::SocketAddr,
    token_file: Option<&std::path::Path>,
) -> i32 {
    let token = match token_file.map(crate::guard::read_token_file).transpose() {
        Ok(t) => t,
        Err(msg) => {
            eprintln!("error: {msg}");
            return exit::ERROR;
        }
    };
    match crate::server::request(listen, "POST", "/confirm-prune", token.as_ref()).await {
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

pub(crate) fn find<'a>(
    set: &'a ManifestSet,
    kind: &str,
    name: &str,
) -> Result<&'a crate::manifest::Object, i32> {
    set.objects
        .iter()
        .find(|o| &*o.key.kind == kind && &*o.key.name == name)
        .map(|o| &**o)
        .ok_or_else(|| {
            let known: Vec<&str> = set
                .objects
                .iter()
                .filter(|o| &*o.key.kind == kind)
                .map(|o| &*o.key.name)
                .collect();
            eprintln!(
                "error: no {kind} named {name} in the manifests (there: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
            exit::ERROR
        })
}

/// The JSON a Token publishes, read from Secrets Manager.
pub(crate) async fn published(
    aws: &Aws,
    token: &crate::manifest::Object,
) -> Result<serde_json::Map<String, serde_json::Value>, i32> {
    let Some(secret) = token.spec.get("secretName").and_then(|v| v.as_str()) else {
        eprintln!("error: Token {} has no secretName", token.key.name);
        return Err(exit::ERROR);
    };
    secret_object(aws, secret).await.map_err(|e| {
        match e {
            SecretRead::Unreadable(why) => {
                eprintln!("error: the token is not published yet ({why})")
            }
            SecretRead::NotAnObject => {
                eprintln!("error: secret {secret} does not hold a JSON object")
            }
        }
        exit::ERROR
    })
}

/// Why a secret's JSON object could not be read.
pub(crate) enum SecretRead {
    /// GetSecretValue failed: its error (never the value).
    Unreadable(String),
    NotAnObject,
}

/// The JSON object a secret holds (a Token's published one), read with GetSecretValue.
/// Errors never carry the value.
pub(crate) async fn secret_object(
    aws: &Aws,
    secret: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, SecretRead> {
    use secrecy::ExposeSecret;
    let value = aws
        .secrets
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| {
            let action = format!("GetSecretValue {secret}");
            SecretRead::Unreadable(crate::error::ReconcileError::from_sdk(&action, e).message)
        })?;
    let text = secrecy::SecretString::from(value.secret_string.unwrap_or_default());
    serde_json::from_str(text.expose_secret()).map_err(|_| SecretRead::NotAnObject)
}

/// `token NAME`: print the bearer token a Token object publishes (for MCP Inspector's
/// Authorization header). This is the one command that prints a secret, on purpose.
pub async fn token(common: &Common, name: &str) -> i32 {
    let set = match load(&common.files) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let object = match find(&set, "Token", name) {
        Ok(o) => o.clone(),
        Err(c) => return c,
    };
    let (aws, _) = match connect(&common.instance).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    match published(&aws, &object).await {
        Ok(map) => match map.get("bearer_token").and_then(|v| v.as_str()) {
            Some(t) => {
                println!("{t}");
                exit::OK
            }
            None => {
                eprintln!("error: no bearer_token published yet");
                exit::ERROR
            }
        },
        Err(c) => c,
    }
}

/// The runtime called `runtime_name` in AgentCore, if it exists.
pub(crate) async fn deployed_runtime(
    aws: &Aws,
    runtime_name: &str,
) -> Result<Option<GetAgentRuntimeOutput>, String> {
    let Some(id) = crate::kinds::agent_runtime::find_runtime_id(&aws.agentcore, runtime_name)
        .await
        .map_err(|e| e.message)?
    else {
        return Ok(None);
    };
    aws.agentcore
        .get_agent_runtime()
        .agent_runtime_id(id)
        .send()
        .await
        .map(Some)
        .map_err(|e| crate::error::ReconcileError::from_sdk("GetAgentRuntime", e).message)
}

/// The runtime's actual configuration, found by its AgentCore name; an error (printed)
/// when it does not exist.
async fn runtime_by_name(aws: &Aws, runtime_name: &str) -> Result<GetAgentRuntimeOutput, i32> {
    match deployed_runtime(aws, runtime_name).await {
        Ok(Some(rt)) => Ok(rt),
        Ok(None) => {
            eprintln!("error: runtime {runtime_name} does not exist (apply the manifests first)");
            Err(exit::ERROR)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(exit::ERROR)
        }
    }
}

pub(crate) fn runtime_name(object: &crate::manifest::Object) -> String {
    object
        .spec
        .get("runtimeName")
        .and_then(|v| v.as_str())
        .unwrap_or(&object.key.name)
        .to_string()
}

/// `url NAME`: the invocation URL of an AgentRuntime object.
pub async fn url(common: &Common, name: &str) -> i32 {
    let set = match load(&common.files) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let object = match find(&set, "AgentRuntime", name) {
        Ok(o) => o.clone(),
        Err(c) => return c,
    };
    let (aws, _) = match connect(&common.instance).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    match runtime_by_name(&aws, &runtime_name(&object)).await {
        Ok(rt) => {
            println!(
                "{}",
                crate::kinds::agent_runtime::invocation_url(&aws.region, rt.agent_runtime_arn())
            );
            exit::OK
        }
        Err(c) => c,
    }
}

/// `check-auth NAME`: would the runtime accept the token that Token NAME publishes?
pub async fn check_auth(common: &Common, name: &str, runtime: Option<&str>, probe: bool) -> i32 {
    use crate::token::{jwt, oidc};
    let set = match load(&common.files) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let token_object = match find(&set, "Token", name) {
        Ok(o) => o.clone(),
        Err(c) => return c,
    };
    let runtime_object = match runtime {
        Some(r) => match find(&set, "AgentRuntime", r) {
            Ok(o) => o.clone(),
            Err(c) => return c,
        },
        None => {
            let all: Vec<_> = set
                .objects
                .iter()
                .filter(|o| &*o.key.kind == "AgentRuntime")
                .collect();
            match all.as_slice() {
                [one] => crate::manifest::Object::clone(one),
                _ => {
                    eprintln!(
                        "error: {} AgentRuntime objects in the manifests: name one with --runtime",
                        all.len()
                    );
                    return exit::ERROR;
                }
            }
        }
    };
    let (aws, _) = match connect(&common.instance).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    let map = match published(&aws, &token_object).await {
        Ok(m) => m,
        Err(c) => return c,
    };
    let Some(bearer) = map.get("bearer_token").and_then(|v| v.as_str()) else {
        eprintln!("error: no bearer_token published yet");
        return exit::ERROR;
    };
    let bearer = secrecy::SecretString::from(bearer.to_string());
    let rt = match runtime_by_name(&aws, &runtime_name(&runtime_object)).await {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    let Some(jwt_cfg) = rt
        .authorizer_configuration()
        .and_then(|a| a.as_custom_jwt_authorizer().ok())
    else {
        let verdicts = vec![jwt::Verdict {
            check: "authorizer",
            ok: false,
            detail: format!(
                "runtime {} has no JWT authorizer: it accepts SigV4 only, and refuses bearer tokens",
                runtime_name(&runtime_object)
            ),
            fix: Some(
                "add spec.authorizer.jwt (userPoolRef and clientRefs) to the AgentRuntime".into(),
            ),
            claim: None,
        }];
        print_verdicts(&verdicts, common.output);
        return exit::ERROR;
    };
    let endpoint = std::env::var("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok();
    let discovery = match oidc::fetch_discovery(jwt_cfg.discovery_url(), endpoint.as_deref()).await
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let jwks = match oidc::fetch_jwks(&discovery.jwks_uri, endpoint.as_deref()).await {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let token_use = match token_object.spec.get("bearer").and_then(|v| v.as_str()) {
        Some("id") => jwt::TokenUse::Id,
        _ => jwt::TokenUse::Access,
    };
    let expect = jwt::Expectation {
        issuer: discovery.issuer.clone(),
        token_use,
        allowed_clients: jwt_cfg.allowed_clients().to_vec(),
        allowed_audience: jwt_cfg.allowed_audience().to_vec(),
        allowed_scopes: jwt_cfg.allowed_scopes().to_vec(),
        // As `local` reads them: a rule this controller cannot read is left out.
        custom_claims: crate::kinds::agent_runtime::claims::readable(jwt_cfg.custom_claims()),
    };
    let hint = format!(
        "the controller renews the token before it expires (agentcore-controller run); check `agentcore-controller status`, then run `agentcore-controller token {name}` again"
    );
    use secrecy::ExposeSecret;
    let verdicts = jwt::check(
        bearer.expose_secret(),
        &jwks,
        &expect,
        std::time::SystemTime::now(),
        Some(&hint),
    );
    print_verdicts(&verdicts, common.output);
    if probe {
        let url = crate::probe::data_plane_url(&crate::kinds::agent_runtime::invocation_url(
            &aws.region,
            rt.agent_runtime_arn(),
        ));
        let config = load_config().await;
        let probes = crate::token::probe::probe(&url, &bearer, &config, &aws.region).await;
        match common.output {
            OutputFormat::Json => print_json(&json!({ "probes": probes })),
            OutputFormat::Text => {
                println!("\nProbe: MCP initialize to {url}");
                for p in &probes {
                    println!(
                        "{} {:<7} {}",
                        if p.accepted { "ok  " } else { "FAIL" },
                        p.mode,
                        p.detail
                    );
                }
            }
        }
    }
    if verdicts.iter().all(|v| v.ok) {
        exit::OK
    } else {
        exit::ERROR
    }
}

fn print_verdicts(verdicts: &[crate::token::jwt::Verdict], format: OutputFormat) {
    match format {
        OutputFormat::Json => print_json(&json!({
            "accepted": verdicts.iter().all(|v| v.ok),
            "checks": verdicts,
        })),
        OutputFormat::Text => {
            for v in verdicts {
                println!(
                    "{} {:<10} {}",
                    if v.ok { "ok  " } else { "FAIL" },
                    v.check,
                    v.detail
                );
                if let Some(fix) = &v.fix
                    && !v.ok
                {
                    println!("     {:<10} fix: {fix}", "");
                }
            }
            let failed = verdicts.iter().filter(|v| !v.ok).count();
            if failed == 0 {
                println!("\nThe runtime's authorizer would accept this token.");
            } else {
                println!("\n{failed} check(s) fail: the runtime would refuse this token.");
            }
        }
    }
}
