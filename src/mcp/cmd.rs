//! The `mcp` and `local` commands. Each returns the process exit code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::authz::Authorizer;
use super::client::{Auth, Client, Error};
use super::render::{content_text, prompts_text, resources_text, tools_text};
use crate::aws::Aws;
use crate::commands::{self, OutputFormat, exit};
use crate::kinds::agent_runtime::{AgentRuntimeSpec, TokenType, invocation_url};
use crate::kinds::{Mode, ObjectKey, Registry};
use crate::manifest::{ManifestSet, Object};
use crate::token::jwt::{self, TokenUse, Verdict};

/// What `mcp` does once connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Tools,
    Prompts,
    Resources,
    Call { tool: String, args: Vec<String> },
}

/// Options of `mcp`.
pub struct McpOptions {
    /// The AgentRuntime's metadata.name (needs `files`).
    pub name: Option<String>,
    pub files: Vec<PathBuf>,
    pub instance: String,
    /// Another MCP endpoint (a `local` front door, any MCP server).
    pub url: Option<String>,
    /// A bearer token instead of the Token secret's.
    pub token: Option<SecretString>,
    /// Sign with SigV4 (for `--url` without a NAME).
    pub sigv4: bool,
    /// The Token object whose secret holds the bearer (default: the one for the runtime).
    pub token_object: Option<String>,
    pub output: OutputFormat,
    pub timeout: Duration,
}

/// Options of `local`.
pub struct LocalOptions {
    pub name: String,
    pub files: Vec<PathBuf>,
    pub instance: String,
    pub listen: SocketAddr,
    pub upstream: Option<String>,
}

fn spec(object: &Object) -> Result<AgentRuntimeSpec, String> {
    serde_json::from_value(object.spec.clone())
        .map_err(|e| format!("AgentRuntime {}: {e}", object.key.name))
}

fn token_use(spec: &AgentRuntimeSpec) -> TokenUse {
    match spec.authorizer.as_ref().map(|a| a.jwt.token_type) {
        Some(TokenType::Id) => TokenUse::Id,
        _ => TokenUse::Access,
    }
}

/// The runtime's JWT authorizer as its manifest describes it, with the user pool's
/// discovery URL and the app clients' IDs read from AWS (the pool and clients must
/// exist; the runtime need not). `None` when the manifest has no authorizer (SigV4).
async fn manifest_authorizer(
    set: &ManifestSet,
    registry: &Registry,
    object: &Object,
) -> Result<Option<Authorizer>, String> {
    let spec = spec(object)?;
    let Some(a) = &spec.authorizer else {
        return Ok(None);
    };
    let j = &a.jwt;
    let cognito: Vec<Arc<Object>> = set
        .objects
        .iter()
        .filter(|o| &*o.key.kind == "UserPool" || &*o.key.kind == "UserPoolClient")
        .cloned()
        .collect();
    let outputs = if cognito.is_empty() {
        Default::default()
    } else {
        let graph = crate::manifest::graph::Graph::build(&cognito, &Registry::offline()).map_err(
            |problems| format!("{} problem(s) in the Cognito manifests", problems.len()),
        )?;
        let subset = ManifestSet {
            objects: cognito,
            graph,
        };
        let opts = crate::engine::ConvergeOptions {
            mode: Mode::Plan,
            timeout: Duration::from_secs(60),
            ..Default::default()
        };
        let report = crate::engine::converge(&subset, registry, &opts).await;
        report
            .objects
            .into_iter()
            .map(|o| (o.key(), o.outputs))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let output = |kind: &str, name: &str, key: &str| -> Result<String, String> {
        outputs
            .get(&ObjectKey::new(kind, name))
            .and_then(|o| o.get(key))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "{kind} {name} does not exist in AWS yet (no {key}): apply the manifests \
                     first (`agentcore-controller apply -f …`); the runtime itself need not \
                     be deployed"
                )
            })
    };
    let discovery_url = match (&j.discovery_url, &j.user_pool_ref) {
        (Some(url), _) => url.clone(),
        (None, Some(pool)) => output("UserPool", pool, "discoveryUrl")?,
        (None, None) => {
            return Err(format!(
                "AgentRuntime {}: spec.authorizer.jwt needs userPoolRef or discoveryUrl",
                object.key.name
            ));
        }
    };
    let mut clients = j.allowed_clients.clone().unwrap_or_default();
    for c in j.client_refs.iter().flatten() {
        clients.push(output("UserPoolClient", c, "clientId")?);
    }
    clients.sort();
    clients.dedup();
    Ok(Some(Authorizer {
        discovery_url,
        allowed_clients: clients,
        allowed_audience: j.allowed_audience.clone().unwrap_or_default(),
        allowed_scopes: j.allowed_scopes.clone().unwrap_or_default(),
        custom_claims: crate::kinds::agent_runtime::claims::normalised(
            j.custom_claims
                .iter()
                .flatten()
                .map(crate::kinds::agent_runtime::claims::Claim::of)
                .collect(),
        ),
        token_use: token_use(&spec),
    }))
}

/// The Token object that publishes the bearer for `runtime`: `--token-from`, else the
/// one whose app client the runtime's authorizer names, else the only Token.
fn token_object<'a>(
    set: &'a ManifestSet,
    runtime: &Object,
    wanted: Option<&str>,
) -> Result<&'a Object, i32> {
    if let Some(name) = wanted {
        return commands::find(set, "Token", name);
    }
    let tokens: Vec<(&Object, Option<&str>)> = set
        .objects
        .iter()
        .filter(|o| &*o.key.kind == "Token")
        .map(|o| (&**o, o.spec.get("clientRef").and_then(Value::as_str)))
        .collect();
    let clients: Vec<String> = spec(runtime)
        .ok()
        .and_then(|s| s.authorizer)
        .and_then(|a| a.jwt.client_refs)
        .unwrap_or_default();
    crate::kinds::token::bearer_token_of(&tokens, &clients).map_err(|n| {
        eprintln!(
            "error: {n} Token objects could publish the bearer for {}: name one with --token-from",
            runtime.key.name
        );
        exit::ERROR
    })
}

async fn bearer_from_secret(aws: &Aws, token: &Object) -> Result<SecretString, i32> {
    let map = commands::published(aws, token).await?;
    match map.get("bearer_token").and_then(Value::as_str) {
        Some(t) => Ok(SecretString::from(t.to_string())),
        None => {
            eprintln!(
                "error: Token {} has published no bearer_token yet",
                token.key.name
            );
            Err(exit::ERROR)
        }
    }
}

async fn sigv4_auth() -> Result<Auth, String> {
    let config = crate::aws::load_config().await;
    let region = config
        .region()
        .map(|r| r.to_string())
        .ok_or("no AWS region configured (AWS_REGION) to sign requests for")?;
    let provider = config
        .credentials_provider()
        .ok_or("no AWS credentials configured to sign requests with")?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| format!("no AWS credentials to sign requests with: {e}"))?;
    Ok(Auth::SigV4 {
        credentials,
        region,
    })
}

/// Where a refusal is explained from.
struct Explainer {
    authorizer: Authorizer,
    source: &'static str,
    token: SecretString,
}

/// `mcp`: list or call what an MCP server offers.
pub async fn mcp(opts: McpOptions, action: Action) -> i32 {
    let call_args = match &action {
        Action::Call { args, .. } => match super::args::parse(args) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::ERROR;
            }
        },
        _ => None,
    };
    let (url, auth, explainer) = match target(&opts).await {
        Ok(t) => t,
        Err(code) => return code,
    };
    let mode = auth.mode();
    let mut client = match Client::connect(&url, auth, opts.timeout).await {
        Ok(c) => c,
        Err(e) => return failed(&e, mode, explainer.as_ref(), opts.output).await,
    };
    let result = match &action {
        Action::Tools => client
            .list("tools/list", "tools")
            .await
            .map(|items| (json!({"tools": items}), tools_text(&items))),
        Action::Prompts => {
            if client.offers("prompts") {
                client
                    .list("prompts/list", "prompts")
                    .await
                    .map(|items| (json!({"prompts": items}), prompts_text(&items)))
            } else {
                Ok((
                    json!({"prompts": []}),
                    "The server offers no prompts.\n".to_string(),
                ))
            }
        }
        Action::Resources => {
            if client.offers("resources") {
                client
                    .list("resources/list", "resources")
                    .await
                    .map(|items| (json!({"resources": items}), resources_text(&items)))
            } else {
                Ok((
                    json!({"resources": []}),
                    "The server offers no resources.\n".to_string(),
                ))
            }
        }
        Action::Call { tool, .. } => {
            let arguments = Value::Object(call_args.unwrap_or_default());
            match client
                .request("tools/call", json!({"name": tool, "arguments": arguments}))
                .await
            {
                Ok(result) => {
                    let text = content_text(&result);
                    if result.get("isError").and_then(Value::as_bool) == Some(true) {
                        match opts.output {
                            OutputFormat::Json => commands::print_json(&result),
                            OutputFormat::Text => {
                                eprint!("error: tool {tool} failed: {text}");
                            }
                        }
                        return exit::ERROR;
                    }
                    Ok((result, text))
                }
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok((value, text)) => {
            match opts.output {
                OutputFormat::Json => commands::print_json(&value),
                OutputFormat::Text => print!("{text}"),
            }
            exit::OK
        }
        Err(e) => failed(&e, mode, explainer.as_ref(), opts.output).await,
    }
}

/// The URL, the authentication, and what explains a refusal.
async fn target(opts: &McpOptions) -> Result<(String, Auth, Option<Explainer>), i32> {
    let Some(name) = &opts.name else {
        let Some(url) = &opts.url else {
            eprintln!(
                "error: name an AgentRuntime (with -f MANIFESTS), or give --url of an MCP server"
            );
            return Err(exit::ERROR);
        };
        let auth = if let Some(t) = &opts.token {
            Auth::Bearer(t.clone())
        } else if opts.sigv4 {
            sigv4_auth().await.map_err(|e| {
                eprintln!("error: {e}");
                exit::ERROR
            })?
        } else {
            Auth::None
        };
        return Ok((url.clone(), auth, None));
    };
    if opts.files.is_empty() {
        eprintln!("error: AgentRuntime {name} is looked up in the manifests: give -f MANIFESTS");
        return Err(exit::ERROR);
    }
    let set = commands::load(&opts.files)?;
    let runtime = commands::find(&set, "AgentRuntime", name)?.clone();
    let (aws, registry) = commands::connect(&opts.instance).await?;
    let runtime_name = commands::runtime_name(&runtime);
    let live = commands::deployed_runtime(&aws, &runtime_name)
        .await
        .map_err(|e| {
            eprintln!("error: {e}");
            exit::ERROR
        })?;
    let tu = spec(&runtime).map(|s| token_use(&s)).unwrap_or_default();
    // The authorizer the runtime applies: AWS's if deployed, else the manifest's.
    let (authorizer, source) = match &live {
        Some(rt) => (
            rt.authorizer_configuration()
                .and_then(|a| a.as_custom_jwt_authorizer().ok())
                .map(|j| Authorizer::from_aws(j, tu)),
            "the deployed runtime's authorizer",
        ),
        None => (
            manifest_authorizer(&set, &registry, &runtime)
                .await
                .map_err(|e| {
                    eprintln!("error: {e}");
                    exit::ERROR
                })?,
            "the authorizer in the manifests",
        ),
    };
    let url = match (&opts.url, &live) {
        (Some(u), _) => u.clone(),
        (None, Some(rt)) => {
            crate::probe::data_plane_url(&invocation_url(&aws.region, rt.agent_runtime_arn()))
        }
        (None, None) => {
            eprintln!(
                "error: runtime {runtime_name} is not deployed; to try it locally run \
                 `agentcore-controller local {name} -f …` and pass the URL it prints with --url"
            );
            return Err(exit::ERROR);
        }
    };
    let auth = if let Some(t) = &opts.token {
        Auth::Bearer(t.clone())
    } else if opts.sigv4 || authorizer.is_none() {
        sigv4_auth().await.map_err(|e| {
            eprintln!("error: {e}");
            exit::ERROR
        })?
    } else {
        let token = token_object(&set, &runtime, opts.token_object.as_deref())?.clone();
        Auth::Bearer(bearer_from_secret(&aws, &token).await?)
    };
    let explainer = match (&auth, authorizer) {
        (Auth::Bearer(t), Some(authorizer)) => Some(Explainer {
            authorizer,
            source,
            token: t.clone(),
        }),
        _ => None,
    };
    Ok((url, auth, explainer))
}

/// Report a failure; a refused bearer token is explained check by check.
async fn failed(e: &Error, mode: &str, explainer: Option<&Explainer>, output: OutputFormat) -> i32 {
    let refused = matches!(e.status(), Some(401 | 403));
    let mut verdicts: Option<Vec<Verdict>> = None;
    let mut note: Option<String> = None;
    if refused && let Some(x) = explainer {
        match x.authorizer.keys().await {
            Ok(keys) => {
                verdicts = Some(jwt::check(
                    x.token.expose_secret(),
                    &keys.jwks,
                    &keys.expect,
                    std::time::SystemTime::now(),
                    Some(
                        "the daemon renews it (agentcore-controller run); check `agentcore-controller status`",
                    ),
                ));
            }
            Err(err) => note = Some(format!("the token could not be checked: {err}")),
        }
    } else if refused && mode == "sigv4" {
        note = Some(
            "the request was signed with SigV4: the runtime has a JWT authorizer (it takes \
             bearer tokens only), or these AWS credentials may not call \
             bedrock-agentcore:InvokeAgentRuntime on it"
                .to_string(),
        );
    } else if refused && mode == "none" {
        note = Some(
            "no credentials were sent: set MCP_BEARER_TOKEN (or --token), or give --sigv4"
                .to_string(),
        );
    } else if refused && mode == "bearer" {
        note = Some(
            "to have the refusal explained check by check, name the AgentRuntime and its \
             manifests: MCP_BEARER_TOKEN=… agentcore-controller mcp NAME -f MANIFESTS --url …"
                .to_string(),
        );
    }
    match output {
        OutputFormat::Json => {
            let mut v = json!({"error": e.to_string()});
            if let Some(s) = e.status() {
                v["status"] = json!(s);
            }
            if let Some(list) = &verdicts {
                v["checks"] = json!(list);
            }
            if let Some(n) = &note {
                v["note"] = json!(n);
            }
            commands::print_json(&v);
        }
        OutputFormat::Text => {
            let what = if refused {
                "the server refused the request"
            } else {
                "the MCP request failed"
            };
            eprintln!("error: {what}: {e}");
            if let (Some(list), Some(x)) = (&verdicts, explainer) {
                let failing: Vec<&Verdict> = list.iter().filter(|v| !v.ok).collect();
                if failing.is_empty() {
                    eprintln!(
                        "The token passes every check against {}: the refusal has another cause \
                         (an authorizer changed since, or another proxy in between).",
                        x.source
                    );
                } else {
                    eprintln!("Why, checked against {}:", x.source);
                    for v in failing {
                        eprintln!("  FAIL {:<10} {}", v.check, v.detail);
                        if let Some(fix) = &v.fix {
                            eprintln!("       {:<10} fix: {fix}", "");
                        }
                    }
                }
            }
            if let Some(n) = &note {
                eprintln!("{n}");
            }
        }
    }
    exit::ERROR
}

/// How often `local` reads the deployed runtime's authorizer again.
const AUTHORIZER_REFRESH: Duration = Duration::from_secs(3);

/// The JWT authorizer of a deployed runtime, if it has one.
fn jwt_of(
    rt: &aws_sdk_bedrockagentcorecontrol::operation::get_agent_runtime::GetAgentRuntimeOutput,
    tu: TokenUse,
) -> Option<Authorizer> {
    rt.authorizer_configuration()
        .and_then(|a| a.as_custom_jwt_authorizer().ok())
        .map(|j| Authorizer::from_aws(j, tu))
}

/// Read the deployed runtime's authorizer every [`AUTHORIZER_REFRESH`] and publish it
/// (`None`: it has none, or the runtime is gone); a failed read keeps the last one.
async fn watch_authorizer(
    aws: crate::aws::Aws,
    runtime_name: String,
    tu: TokenUse,
    tx: tokio::sync::watch::Sender<Option<Authorizer>>,
) {
    loop {
        tokio::time::sleep(AUTHORIZER_REFRESH).await;
        if tx.is_closed() {
            return;
        }
        match commands::deployed_runtime(&aws, &runtime_name).await {
            Ok(rt) => {
                let next = rt.as_ref().and_then(|rt| jwt_of(rt, tu));
                tx.send_if_modified(|cur| {
                    let changed = *cur != next;
                    if changed {
                        *cur = next;
                    }
                    changed
                });
            }
            Err(e) => eprintln!("reading the runtime's authorizer failed (kept as it was): {e}"),
        }
    }
}

/// `local`: the runtime's invocation path on loopback, with its JWT authorizer in front
/// of an MCP server.
pub async fn local(opts: LocalOptions) -> i32 {
    let set = match commands::load(&opts.files) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let runtime = match commands::find(&set, "AgentRuntime", &opts.name) {
        Ok(o) => o.clone(),
        Err(c) => return c,
    };
    let (aws, registry) = match commands::connect(&opts.instance).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    let runtime_name = commands::runtime_name(&runtime);
    let deployed = match commands::deployed_runtime(&aws, &runtime_name).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let tu = spec(&runtime).map(|s| token_use(&s)).unwrap_or_default();
    // The deployed runtime's authorizer, followed while local runs; else the manifest's.
    let (arn, arn_note, authorizer, updates) = match &deployed {
        Some(rt) => {
            let Some(a) = jwt_of(rt, tu) else {
                eprintln!(
                    "error: the deployed runtime {runtime_name} has no JWT authorizer (SigV4 \
                     only); `local` checks bearer tokens: add spec.authorizer.jwt and apply"
                );
                return exit::ERROR;
            };
            let (tx, rx) = tokio::sync::watch::channel(Some(a.clone()));
            tokio::spawn(watch_authorizer(aws.clone(), runtime_name.clone(), tu, tx));
            (
                rt.agent_runtime_arn().to_string(),
                "the deployed runtime's",
                a,
                Some(rx),
            )
        }
        None => {
            let a = match manifest_authorizer(&set, &registry, &runtime).await {
                Ok(Some(a)) => a,
                Ok(None) => {
                    eprintln!(
                        "error: AgentRuntime {} has no JWT authorizer in its manifest (SigV4 \
                         only); `local` checks bearer tokens: add spec.authorizer.jwt",
                        opts.name
                    );
                    return exit::ERROR;
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::ERROR;
                }
            };
            (
                format!(
                    "arn:aws:bedrock-agentcore:{}:{}:runtime/{runtime_name}-local",
                    aws.region, aws.account_id
                ),
                "a placeholder: the runtime is not deployed",
                a,
                None,
            )
        }
    };
    let keys = match authorizer.keys().await {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let (upstream, upstream_note) = match &opts.upstream {
        Some(u) => (u.clone(), "given with --upstream".to_string()),
        None => match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => {
                let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                tokio::spawn(async move {
                    if let Err(e) = mcp_server::serve(l, std::future::pending()).await {
                        eprintln!("error: the in-process MCP server stopped: {e}");
                    }
                });
                (
                    format!("http://{addr}{}", mcp_server::MCP_PATH),
                    "the guide's MCP server, in-process".to_string(),
                )
            }
            Err(e) => {
                eprintln!("error: cannot start the MCP server on loopback: {e}");
                return exit::ERROR;
            }
        },
    };
    let listener = match tokio::net::TcpListener::bind(opts.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", opts.listen);
            return exit::ERROR;
        }
    };
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| opts.listen.to_string());
    let path = super::local::invocation_path(&arn);
    let url = format!("http://{bound}{path}?qualifier=DEFAULT");
    let list = |l: &[String]| {
        if l.is_empty() {
            "(not set)".to_string()
        } else {
            l.join(", ")
        }
    };
    // Written without panicking: whoever started us may stop reading after the URL.
    let files = opts
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(" -f ");
    let banner = format!(
        "Local invocation URL: {url}\n\
         \x20 runtime:         {runtime_name} (ARN: {arn_note})\n\
         \x20 discovery URL:   {}\n\
         \x20 allowedClients:  {}\n\
         \x20 allowedAudience: {}\n\
         \x20 allowedScopes:   {}\n\
         \x20 customClaims:    {}\n\
         \x20 token type:      {}\n\
         \x20 upstream:        {upstream} ({upstream_note})\n\
         Try: agentcore-controller mcp {} -f {files} --url '{url}' tools\n",
        authorizer.discovery_url,
        list(&authorizer.allowed_clients),
        list(&authorizer.allowed_audience),
        list(&authorizer.allowed_scopes),
        list(
            &authorizer
                .custom_claims
                .iter()
                .map(crate::token::jwt::rule_text)
                .collect::<Vec<_>>()
        ),
        authorizer.token_use,
        opts.name,
    );
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes());
        let _ = out.flush();
    }
    let config = super::local::Config {
        invocation_path: path,
        upstream,
        authorizer,
        keys,
        updates,
    };
    match super::local::serve(listener, config, shutdown_signal()).await {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::ERROR
        }
    }
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
