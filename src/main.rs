//! agentcore-controller command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agentcore_controller::commands::{self, Common, OutputFormat};
use agentcore_controller::daemon::{DaemonOptions, LeaderElection, LeaseBackend};
use agentcore_controller::engine::backoff::Backoff;
use agentcore_controller::engine::controller::ControllerConfig;
use agentcore_controller::gitsource::GitSourceConfig;
use agentcore_controller::leader::LeaseTimings;
use agentcore_controller::mcp::cmd as mcp;
use clap::{Args, Parser, Subcommand};

/// Keep an MCP server stack on Amazon Bedrock AgentCore Runtime converged with YAML manifests.
///
/// AWS access uses the standard SDK configuration: credentials from the environment,
/// profiles (AWS_PROFILE) or instance roles; the region from AWS_REGION or the profile;
/// AWS_ENDPOINT_URL to talk to a local emulator instead of AWS.
#[derive(Parser)]
#[command(name = "agentcore-controller", version, propagate_version = true)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. `debug` or `agentcore_controller=debug`.
    /// Default: `info` for `run`, `warn` otherwise.
    #[arg(long, global = true, env = "AGENTCORE_LOG")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
struct Files {
    /// Manifest file or directory (recursive; .yaml/.yml; hidden entries skipped). Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
}

/// `run`'s manifests: files and directories, or a git source.
#[derive(Args)]
struct RunFiles {
    /// Manifest file or directory (recursive; .yaml/.yml; hidden entries skipped).
    /// Repeatable. Or --git.
    #[arg(short = 'f', long = "filename", required_unless_present = "git")]
    files: Vec<PathBuf>,
}

/// Pull the manifests from a git remote (as Flux's GitRepository does).
#[derive(Args)]
#[command(next_help_heading = "Git source (instead of -f)")]
struct GitFlags {
    /// Pull the manifests from this git repository: https://HOST/PATH,
    /// ssh://USER@HOST/PATH (or USER@HOST:PATH) or file:///PATH. Each revision is
    /// checked out into a directory of its own and switched to at once; a fetch that
    /// fails keeps the last good revision in force.
    #[arg(long, value_name = "URL", conflicts_with = "files")]
    git: Option<String>,
    /// The branch to follow [default: main].
    #[arg(long = "ref", value_name = "BRANCH", requires = "git", conflicts_with_all = ["tag", "semver"])]
    git_ref: Option<String>,
    /// Follow this tag instead of a branch.
    #[arg(long, requires = "git", conflicts_with = "semver")]
    tag: Option<String>,
    /// Follow the highest tag in this semver range, e.g. '>=1.0.0, <2.0.0' (a leading
    /// `v` in tag names is allowed).
    #[arg(long, value_name = "RANGE", requires = "git")]
    semver: Option<String>,
    /// The manifests' directory in the repository [default: its root].
    #[arg(long, requires = "git")]
    path: Option<PathBuf>,
    /// How often the remote is asked whether the ref moved (a push webhook makes it
    /// sooner: see --webhook-listen) [default: 1m].
    #[arg(long, value_parser = humantime::parse_duration)]
    interval: Option<Duration>,
    /// A file holding an HTTPS access token (sent as the password of HTTP Basic auth,
    /// with --git-username; over https:// only).
    #[arg(long, requires = "git", conflicts_with = "git_token_env")]
    git_token_file: Option<PathBuf>,
    /// The environment variable holding the HTTPS access token.
    #[arg(long, value_name = "VAR", requires = "git")]
    git_token_env: Option<String>,
    /// The user name sent with the token [default: x-access-token].
    #[arg(long)]
    git_username: Option<String>,
    /// The SSH private key for ssh:// URLs (with --git-known-hosts).
    #[arg(long, requires = "git", requires = "git_known_hosts")]
    git_ssh_key: Option<PathBuf>,
    /// The known_hosts file the SSH host's key must be in (never "accept any host key").
    #[arg(long, requires = "git_ssh_key")]
    git_known_hosts: Option<PathBuf>,
    /// Refuse a head commit not signed by a key of this allowed_signers file (SSH
    /// signatures, as `git verify-commit` with gpg.ssh.allowedSignersFile); the last
    /// good revision stays in force.
    #[arg(long, value_name = "ALLOWED_SIGNERS", requires = "git")]
    verify_commits: Option<PathBuf>,
    /// Where fetched revisions are kept [default: agentcore-controller-git-INSTANCE in
    /// the system's temporary directory].
    #[arg(long, requires = "git")]
    git_workdir: Option<PathBuf>,
    /// The token read from --git-token-env (then removed from the environment).
    #[arg(skip)]
    git_token: Option<secrecy::SecretString>,
}

impl GitFlags {
    /// Read the token of --git-token-env and remove the variable from the environment:
    /// what the daemon runs (a build command from the manifests, git) inherits the
    /// environment. Called before any other thread exists.
    fn take_token_env(&mut self) {
        let Some(var) = &self.git_token_env else {
            return;
        };
        if let Ok(value) = std::env::var(var)
            && !value.trim().is_empty()
        {
            self.git_token = Some(secrecy::SecretString::from(value.trim().to_string()));
        }
        // SAFETY: main calls this before the async runtime (or any other thread) starts.
        unsafe { std::env::remove_var(var) };
    }

    /// The git source these flags ask for (None: no --git), or why they do not fit.
    fn source(self, instance: &str) -> Result<Option<GitSourceConfig>, String> {
        use agentcore_controller::gitsource::{Auth, Reference};
        let Some(url) = self.git else {
            // clap's `requires` does not hold against -f (which --git conflicts with).
            let given = [
                ("--ref", self.git_ref.is_some()),
                ("--tag", self.tag.is_some()),
                ("--semver", self.semver.is_some()),
                ("--path", self.path.is_some()),
                ("--interval", self.interval.is_some()),
                ("--git-username", self.git_username.is_some()),
                ("--git-token-file", self.git_token_file.is_some()),
                ("--git-token-env", self.git_token_env.is_some()),
                ("--git-ssh-key", self.git_ssh_key.is_some()),
                ("--verify-commits", self.verify_commits.is_some()),
                ("--git-workdir", self.git_workdir.is_some()),
            ];
            return match given.iter().find(|(_, set)| *set) {
                Some((flag, _)) => Err(format!(
                    "{flag} is an option of the git source: it needs --git URL"
                )),
                None => Ok(None),
            };
        };
        let reference = match (self.git_ref, self.tag, self.semver) {
            (_, Some(tag), _) => Reference::tag(&tag)?,
            (_, _, Some(range)) => Reference::semver(&range)?,
            (branch, None, None) => Reference::branch(branch.as_deref().unwrap_or("main"))?,
        };
        let token = match (self.git_token_file, self.git_token_env) {
            (Some(file), _) => Some(agentcore_controller::guard::read_secret_file(
                &file,
                "the git token file",
            )?),
            (None, Some(var)) => match std::env::var(&var) {
                Ok(v) if !v.trim().is_empty() => {
                    Some(secrecy::SecretString::from(v.trim().to_string()))
                }
                _ => {
                    return Err(format!(
                        "the environment variable {var} (--git-token-env) is not set"
                    ));
                }
            },
            (None, None) => None,
        };
        let auth = match (token, self.git_ssh_key, self.git_known_hosts) {
            (Some(token), _, _) => Auth::Token {
                username: self
                    .git_username
                    .unwrap_or_else(|| "x-access-token".to_string()),
                token,
            },
            (None, Some(key), Some(known_hosts)) => Auth::Ssh { key, known_hosts },
            _ => Auth::None,
        };
        let workdir = self.git_workdir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("agentcore-controller-git-{instance}"))
        });
        let cfg = GitSourceConfig {
            url,
            reference,
            path: self.path.unwrap_or_default(),
            interval: self.interval.unwrap_or(Duration::from_secs(60)),
            auth,
            verify_commits: self.verify_commits,
            workdir,
        };
        cfg.check()?;
        Ok(Some(cfg))
    }
}

/// The push webhook and the event notifications.
#[derive(Args)]
#[command(next_help_heading = "Webhook and notifications")]
struct EventFlags {
    /// Serve POST /hooks/git on this address (its own listener, which may face the git
    /// host: the admin endpoints are not on it). An authenticated push fetches at once.
    /// Needs --git and --webhook-secret-file.
    #[arg(
        long,
        value_name = "ADDR",
        requires = "git",
        requires = "webhook_secret_file"
    )]
    webhook_listen: Option<std::net::SocketAddr>,
    /// The webhook's shared secret (at least 16 bytes): GitHub signs with it
    /// (X-Hub-Signature-256), GitLab sends it (X-Gitlab-Token), other senders sign with
    /// it as X-Signature: sha256=HMAC.
    #[arg(long, value_name = "PATH", requires = "webhook_listen")]
    webhook_secret_file: Option<PathBuf>,
    /// Post events to this webhook URL (repeatable): revision applied, source failed,
    /// drift corrected, reconcile failed and recovered, token renewal failed, token
    /// expiring, prune refused, leadership gained or lost. One per change of state,
    /// rate-limited and retried per receiver; never holding up reconciles.
    #[arg(
        long = "notify",
        value_name = "URL",
        env = "AGENTCORE_NOTIFY",
        value_delimiter = ','
    )]
    notify: Vec<String>,
    /// How events are posted: json (the event as a JSON object) or slack (Slack's
    /// incoming-webhook `{"text": …}`).
    #[arg(long, default_value = "json")]
    notify_format: agentcore_controller::notify::Format,
}

/// The webhook listener and its secret, and the notification receivers.
type Events = (
    Option<(
        std::net::SocketAddr,
        agentcore_controller::webhook::WebhookSecret,
    )>,
    Vec<agentcore_controller::notify::Receiver>,
);

impl EventFlags {
    fn resolve(self, git: bool) -> Result<Events, String> {
        if self.webhook_listen.is_some() && !git {
            return Err(
                "--webhook-listen triggers fetches of the git source: it needs --git URL".into(),
            );
        }
        let webhook = match (self.webhook_listen, self.webhook_secret_file) {
            (Some(address), Some(file)) => Some((
                address,
                agentcore_controller::webhook::WebhookSecret::from_file(&file)?,
            )),
            _ => None,
        };
        let notify = self
            .notify
            .iter()
            .map(|url| agentcore_controller::notify::Receiver::new(url, self.notify_format))
            .collect::<Result<Vec<_>, String>>()?;
        Ok((webhook, notify))
    }
}

#[derive(Args)]
struct Instance {
    /// Controller instance: the value of the owner tag `agentcore.dev/managed-by`.
    /// Resources tagged by another instance are not touched.
    #[arg(
        long,
        global = true,
        env = "AGENTCORE_INSTANCE",
        default_value = "agentcore-controller"
    )]
    instance: String,
}

#[derive(Args)]
struct Output {
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value = "text")]
    output: OutputFormat,
}

#[derive(Args)]
struct Listen {
    /// Address of the daemon's HTTP endpoints.
    #[arg(long, env = "AGENTCORE_LISTEN", default_value = "127.0.0.1:8181")]
    listen: std::net::SocketAddr,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller: watch the manifests, keep AWS converged, renew what expires.
    ///
    /// Edits take effect about a second after they are saved; drift made outside the
    /// manifests is undone at the next resync; objects whose manifests are removed are
    /// deleted (per their deletion policy), tracked in an inventory kept in SSM Parameter
    /// Store under /agentcore-controller/<instance>/ so that this survives restarts.
    /// Serves /healthz, /readyz, /metrics, /status; POST /reconcile reconciles everything
    /// now (so does SIGHUP). SIGTERM or SIGINT stop it cleanly.
    Run {
        #[command(flatten)]
        files: RunFiles,
        #[command(flatten)]
        instance: Instance,
        #[command(flatten)]
        listen: Listen,
        /// How often every object is re-read to catch drift (per object: annotation
        /// agentcore.dev/resync-period). Jittered by ±10 %.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        resync: Duration,
        /// Reconciles running at once per lane. Each kind runs in the lane of the AWS
        /// service it mostly calls (cognito-idp, iam, ecr, bedrock-agentcore-control,
        /// secretsmanager, ssm), so work waiting on one service's rate limit never holds up
        /// another's: up to this many per service, six times this in all. Each lane keeps
        /// one slot more for edits, so a saved manifest starts at once even when resyncs
        /// fill the lane.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Refuse a reload that would prune more than this fraction of the managed objects
        /// (an emptied directory, a half-finished checkout) until confirmed.
        #[arg(long, default_value_t = 0.5, value_parser = fraction)]
        prune_threshold: f64,
        /// Prune without the mass-deletion guard.
        #[arg(long)]
        allow_mass_prune: bool,
        /// Client-side AWS request rate: requests per second, overall and per service,
        /// e.g. `20` or `default=20,iam=5,cognito-idp=10`.
        #[arg(long, default_value = "20", value_parser = agentcore_controller::ratelimit::RateLimits::parse)]
        aws_rate_limit: agentcore_controller::ratelimit::RateLimits,
        /// Quiet time after the last file change before the manifests are reloaded.
        #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
        debounce: Duration,
        /// On SIGTERM, how long in-flight reconciles may still run.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        shutdown_grace: Duration,
        /// Initial retry delay after a recoverable error (doubles up to 5m; resets on success).
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        retry_base: Duration,
        /// Run as one of several replicas: `dynamodb:TABLE` keeps a leader lease in that
        /// DynamoDB table (created if missing, on-demand billing; the item is named after
        /// --instance); `kubernetes` keeps it as a coordination.k8s.io Lease named after
        /// --instance in the pod's namespace (POD_NAMESPACE, or the service account's).
        /// Only the leader writes to AWS, renews tokens and prunes; a standby loads the
        /// manifests, observes slowly and takes over when the leader's lease runs out.
        /// Without it: one replica, which writes.
        #[arg(long, value_name = "dynamodb:TABLE|kubernetes")]
        leader_election: Option<LeaseBackend>,
        /// How long a leader lease holds without renewal before a standby may take it.
        #[arg(long, default_value = "15s", value_parser = humantime::parse_duration, requires = "leader_election")]
        lease_duration: Duration,
        /// A leader that has not renewed its lease for this long stops writing and stands
        /// by. At least 1s shorter than --lease-duration: the gap is the safety margin for
        /// writes in flight and clock-rate skew. It renews every fifth of this.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, requires = "leader_election")]
        lease_renew_deadline: Duration,
        /// A file holding the bearer token that POST /reconcile and /confirm-prune need
        /// (Authorization: Bearer …). Required for them beyond loopback: listening on
        /// another address without it turns them off.
        #[arg(long, env = "AGENTCORE_ADMIN_TOKEN_FILE")]
        admin_token_file: Option<PathBuf>,
        /// A Host name to answer besides IP addresses and localhost (repeatable), e.g. the
        /// name of a Service in front of the daemon. Requests naming any other host are
        /// refused with 421: a guard against DNS rebinding.
        #[arg(long = "allowed-host", value_name = "NAME")]
        allowed_hosts: Vec<String>,
        // Last: a flattened group's help heading applies to the arguments after it.
        #[command(flatten)]
        git: Box<GitFlags>,
        #[command(flatten)]
        events: Box<EventFlags>,
    },
    /// Show the objects of a running daemon: conditions, last and next reconcile.
    /// Exit 0 when all are Ready, 2 otherwise.
    Status {
        #[command(flatten)]
        listen: Listen,
        #[command(flatten)]
        output: Output,
    },
    /// Print the bearer token a Token object publishes, for MCP Inspector's
    /// `Authorization: Bearer …` header. (Prints a secret: mind where the output goes.)
    Token {
        /// The Token object's metadata.name.
        name: String,
        #[command(flatten)]
        files: Files,
        #[command(flatten)]
        instance: Instance,
    },
    /// Print an AgentRuntime's invocation URL:
    /// https://bedrock-agentcore.{region}.amazonaws.com/runtimes/{URL-encoded ARN}/invocations?qualifier=DEFAULT
    Url {
        /// The AgentRuntime object's metadata.name.
        name: String,
        #[command(flatten)]
        files: Files,
        #[command(flatten)]
        instance: Instance,
    },
    /// Explain whether the runtime would accept the token a Token object publishes:
    /// signature (JWKS), issuer, expiry, token_use, and the claims against the runtime's
    /// actual authorizer (allowedClients, allowedAudience, allowedScopes), with the fix for
    /// each failure. Exit 0 when every check passes.
    CheckAuth {
        /// The Token object's metadata.name.
        name: String,
        /// The AgentRuntime object (default: the only one in the manifests).
        #[arg(long)]
        runtime: Option<String>,
        /// Also POST an MCP `initialize` to the invocation URL, once with the bearer token
        /// and once signed with SigV4, and report which auth mode the runtime accepts.
        #[arg(long)]
        probe: bool,
        #[command(flatten)]
        files: Files,
        #[command(flatten)]
        instance: Instance,
        #[command(flatten)]
        output: Output,
    },
    /// Talk MCP to a runtime (or any MCP server): list its tools, prompts and resources,
    /// or call a tool.
    ///
    /// With NAME (an AgentRuntime's metadata.name in the manifests) it connects to the
    /// runtime's invocation URL with the bearer token its Token publishes, or signs each
    /// request with SigV4 when the runtime has no JWT authorizer. A 401/403 is explained
    /// check by check (expiry, token type, allowed clients, audience, scopes) against the
    /// runtime's actual authorizer. --url points it anywhere else: the front door
    /// `agentcore-controller local` serves (keep NAME to use its Token), or any MCP server
    /// (then NAME is not needed; --token or --sigv4 say how to authenticate).
    ///
    /// It speaks MCP over streamable HTTP: initialize (keeping the Mcp-Session-Id the
    /// server hands out), notifications/initialized, then the request; answers may be JSON
    /// or an event stream. The token is never printed.
    #[command(after_long_help = MCP_EXAMPLES)]
    Mcp {
        /// The AgentRuntime object's metadata.name (not needed with --url).
        name: Option<String>,
        #[command(subcommand)]
        action: McpAction,
        /// Manifest file or directory, to find NAME, its Token and its authorizer. Repeatable.
        #[arg(short = 'f', long = "filename", global = true)]
        files: Vec<PathBuf>,
        /// MCP endpoint to call instead of the runtime's invocation URL.
        #[arg(long, global = true)]
        url: Option<String>,
        /// Bearer token to send instead of the one the runtime's Token publishes. Prefer the
        /// environment variable: a command-line argument shows in the process list.
        #[arg(long, global = true, env = "MCP_BEARER_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Sign requests with SigV4 (AWS credentials) instead of sending a bearer token.
        #[arg(long, global = true, conflicts_with = "token")]
        sigv4: bool,
        /// The Token object whose secret holds the bearer (default: the runtime's).
        #[arg(long, global = true)]
        token_from: Option<String>,
        /// Give up on an answer after this long.
        #[arg(long, global = true, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        instance: Instance,
    },
    /// Try a runtime's auth path before deploying: its invocation path on loopback, with
    /// its JWT authorizer in front of an MCP server.
    ///
    /// Serves /runtimes/{URL-encoded ARN}/invocations (the deployed runtime's ARN, or a
    /// placeholder built from the name, account and region) and checks each bearer token
    /// as the runtime's authorizer does: signature against the issuer's JWKS, issuer,
    /// expiry, and allowedClients / allowedAudience / allowedScopes, taken from the
    /// manifests and resolved against the live user pool and app clients (so apply them
    /// first; the runtime itself need not exist). Refusals answer 401/403 with AgentCore's
    /// message ("Token has expired", "Claim 'client_id' value mismatch with
    /// configuration", …) and the failing checks. Accepted requests go to the guide's MCP
    /// server, started in-process, or to --upstream. Mcp-Session-Id and
    /// X-Amzn-Bedrock-AgentCore-Runtime-Session-Id pass through. Stops on Ctrl-C.
    #[command(after_long_help = LOCAL_EXAMPLES)]
    Local {
        /// The AgentRuntime object's metadata.name.
        name: String,
        #[command(flatten)]
        files: Files,
        #[command(flatten)]
        instance: Instance,
        /// Address to serve on (loopback unless you mean it).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// MCP endpoint to forward accepted requests to (default: the guide's MCP server,
        /// in-process on a free loopback port).
        #[arg(long)]
        upstream: Option<String>,
    },
    /// A runtime's versions and the endpoints serving them; move an endpoint to another
    /// version through its manifest.
    ///
    /// Every update of a runtime makes a new, immutable version. DEFAULT always serves the
    /// latest; a RuntimeEndpoint serves the version its manifest names (`version: N`) or
    /// follows the latest (`version: latest`). `promote` and `undo` change that line of the
    /// manifest (printed, or made with --write), so the move goes through the manifests
    /// (and git) and the controller does not undo it; apply or commit it to carry it out.
    #[command(after_long_help = ROLLOUT_EXAMPLES)]
    Rollout {
        #[command(subcommand)]
        action: RolloutAction,
        #[command(flatten)]
        instance: Instance,
        #[command(flatten)]
        output: Output,
    },
    /// Let a running daemon carry out the prune its mass-deletion guard refused.
    ConfirmPrune {
        #[command(flatten)]
        listen: Listen,
        /// The file holding the daemon's admin token (its --admin-token-file).
        #[arg(long, env = "AGENTCORE_ADMIN_TOKEN_FILE")]
        admin_token_file: Option<PathBuf>,
    },
    /// Check manifests offline and report every problem with file and line (exit 1 on any).
    Validate {
        #[command(flatten)]
        files: Files,
    },
    /// Print the IAM policy the controller needs for these manifests (offline).
    ///
    /// Only the actions the controller calls, on the resources the manifests name:
    /// roles, repositories, parameters and secrets by name; user pools and runtimes,
    /// whose IDs AWS picks, by the owner tag (agentcore.dev/managed-by = --instance);
    /// iam:PassRole only for runtimes' execution roles, only to AgentCore; the
    /// inventory under /agentcore-controller/<instance>/; the lease table of
    /// --leader-election dynamodb:TABLE. Attach it to the controller's role.
    IamPolicy {
        #[command(flatten)]
        files: Files,
        #[command(flatten)]
        instance: Instance,
        /// Region in the ARNs (`*`: any). Default: AWS_REGION, else `*`.
        #[arg(long, env = "AWS_REGION", default_value = "*")]
        region: String,
        /// Account in the ARNs (`*`: any).
        #[arg(long, default_value = "*")]
        account_id: String,
        /// The daemon's --leader-election: with dynamodb:TABLE, the table's actions.
        #[arg(long, value_name = "dynamodb:TABLE|kubernetes")]
        leader_election: Option<LeaseBackend>,
    },
    /// Show what apply would change, field by field (exit 0 in sync, 2 changes pending, 1 error).
    ///
    /// Reads AWS only. Secret values are masked.
    Diff {
        #[command(flatten)]
        files: Files,
        #[command(flatten)]
        instance: Instance,
        #[command(flatten)]
        output: Output,
        /// Give up after this long.
        #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Create what is missing and correct what drifted, in dependency order; wait until
    /// everything is Ready (exit 0) or the timeout passes (exit 1).
    ///
    /// A second apply of unchanged manifests makes no write calls.
    Apply {
        #[command(flatten)]
        files: Files,
        #[command(flatten)]
        instance: Instance,
        #[command(flatten)]
        output: Output,
        /// How long to wait for every resource to become Ready.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Reconciles running at once per lane (the AWS service a kind mostly calls; see
        /// `run --help`); only independent resources run together.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Delete the manifests' resources in reverse dependency order.
    ///
    /// Resources whose deletion policy is Retain (the default for user pools, users and
    /// secrets; set with the annotation agentcore.dev/deletion-policy) are left in place,
    /// and so is anything the controller did not create.
    Delete {
        #[command(flatten)]
        files: Files,
        #[command(flatten)]
        instance: Instance,
        #[command(flatten)]
        output: Output,
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum RolloutAction {
    /// List the runtime's versions, newest first: status, when it was made, its image and
    /// the endpoints serving it.
    Status {
        /// The AgentRuntime object's metadata.name.
        runtime: String,
        #[command(flatten)]
        files: Files,
    },
    /// Point an endpoint at version N (the edit pins it, also when it followed latest).
    Promote {
        /// The RuntimeEndpoint object's metadata.name (or its endpoint name).
        endpoint: String,
        /// The runtime version to serve (`rollout status` lists them).
        #[arg(long)]
        to_version: u32,
        /// Edit the manifest file in place instead of printing the edit.
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        files: Files,
    },
    /// Point an endpoint back at the newest version older than the one it serves now.
    Undo {
        /// The RuntimeEndpoint object's metadata.name (or its endpoint name).
        endpoint: String,
        /// Edit the manifest file in place instead of printing the edit.
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        files: Files,
    },
}

const ROLLOUT_EXAMPLES: &str = r#"Examples:
  agentcore-controller rollout status mcp_server_ac -f manifests/
  agentcore-controller rollout promote prod --to-version 4 -f manifests/           # prints the edit
  agentcore-controller rollout promote prod --to-version 4 -f manifests/ --write   # makes it
  agentcore-controller apply -f manifests/                                         # carries it out
  agentcore-controller rollout undo prod -f manifests/ --write                     # back one version
"#;

#[derive(Subcommand)]
enum McpAction {
    /// List the server's tools and their parameters.
    Tools,
    /// List the server's prompts and their arguments.
    Prompts,
    /// List the server's resources.
    Resources,
    /// Call a tool: `call add a=2 b=3`. Values are JSON where they parse (2, true,
    /// [1,2], "quoted"), strings otherwise.
    Call {
        /// The tool's name.
        tool: String,
        /// Arguments as key=value.
        args: Vec<String>,
    },
}

const MCP_EXAMPLES: &str = r#"Examples:
  # The deployed runtime, with the bearer token its Token publishes
  agentcore-controller mcp mcp_server_ac -f manifests/ tools
  agentcore-controller mcp mcp_server_ac -f manifests/ call add a=2 b=3      # prints 5
  agentcore-controller mcp mcp_server_ac -f manifests/ prompts --output json

  # Through `agentcore-controller local` (same Token, the authorizer checked locally):
  # LOCAL_URL is the invocation URL `local` prints
  agentcore-controller mcp mcp_server_ac -f manifests/ --url "$LOCAL_URL" tools

  # Any MCP server
  agentcore-controller mcp --url http://127.0.0.1:8000/mcp call subtract a=2 b=3   # prints -1
  MCP_BEARER_TOKEN=… agentcore-controller mcp --url https://… tools
"#;

const LOCAL_EXAMPLES: &str = r#"Examples:
  # The user pool, app client and Token must exist (the runtime need not):
  agentcore-controller apply -f manifests/
  agentcore-controller local mcp_server_ac -f manifests/ # prints the local invocation URL
  # in another terminal, with LOCAL_URL the URL it printed:
  agentcore-controller mcp mcp_server_ac -f manifests/ --url "$LOCAL_URL" call add a=2 b=3
  curl -i -X POST "$LOCAL_URL"                           # 401 Missing bearer token

  # Another MCP server behind the same authorizer
  agentcore-controller local mcp_server_ac -f manifests/ --upstream http://127.0.0.1:8000/mcp
"#;

fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{text}` is not a fraction between 0 and 1")),
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn common(files: Files, instance: Instance, output: OutputFormat) -> Common {
    Common {
        files: files.files,
        instance: instance.instance,
        output,
    }
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    // Secrets given in the environment are taken out of it while this is the only thread:
    // a build command (from the manifests) inherits the environment, and its output may
    // reach /status.
    if let Command::Run { git, .. } = &mut cli.command {
        git.take_token_env();
    }
    // SAFETY: no other thread exists yet (the async runtime starts below); clap has read
    // the --notify receivers from it already.
    unsafe { std::env::remove_var("AGENTCORE_NOTIFY") };
    let default_log = if matches!(cli.command, Command::Run { .. }) {
        "info"
    } else {
        "warn"
    };
    init_logging(cli.log_format, cli.log.as_deref().unwrap_or(default_log));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Validate { files } => commands::validate(&files.files),
            Command::IamPolicy {
                files,
                instance,
                region,
                account_id,
                leader_election,
            } => commands::iam_policy(
                &files.files,
                agentcore_controller::iam_policy::PolicyOptions {
                    region,
                    account: account_id,
                    instance: instance.instance,
                    lease_table: match leader_election {
                        Some(LeaseBackend::DynamoDb { table }) => Some(table),
                        _ => None,
                    },
                },
            ),
            Command::Diff {
                files,
                instance,
                output,
                timeout,
            } => commands::diff(&common(files, instance, output.output), timeout).await,
            Command::Apply {
                files,
                instance,
                output,
                timeout,
                concurrency,
            } => {
                commands::apply(
                    &common(files, instance, output.output),
                    timeout,
                    concurrency,
                )
                .await
            }
            Command::Delete {
                files,
                instance,
                output,
                dry_run,
            } => commands::delete(&common(files, instance, output.output), dry_run).await,
            Command::Run {
                files,
                instance,
                listen,
                resync,
                concurrency,
                prune_threshold,
                allow_mass_prune,
                aws_rate_limit,
                debounce,
                shutdown_grace,
                retry_base,
                leader_election,
                lease_duration,
                lease_renew_deadline,
                admin_token_file,
                allowed_hosts,
                git,
                events,
            } => {
                let git = match git.source(&instance.instance) {
                    Ok(git) => git,
                    Err(msg) => {
                        eprintln!("error: {msg}");
                        return 2;
                    }
                };
                let (webhook, notify) = match events.resolve(git.is_some()) {
                    Ok(x) => x,
                    Err(msg) => {
                        eprintln!("error: {msg}");
                        return 2;
                    }
                };
                let admin_token = match admin_token_file
                    .as_deref()
                    .map(agentcore_controller::guard::read_token_file)
                    .transpose()
                {
                    Ok(t) => t,
                    Err(msg) => {
                        eprintln!("error: {msg}");
                        return 2;
                    }
                };
                let leader_election = match leader_election {
                    None => None,
                    Some(store) => match LeaseTimings::new(lease_duration, lease_renew_deadline) {
                        Ok(timings) => Some(LeaderElection { store, timings }),
                        Err(msg) => {
                            eprintln!("error: {msg}");
                            return 2;
                        }
                    },
                };
                let defaults = ControllerConfig::default();
                let opts = DaemonOptions {
                    files: files.files,
                    instance: instance.instance,
                    listen: listen.listen,
                    controller: ControllerConfig {
                        concurrency: concurrency.max(1),
                        resync,
                        prune_threshold,
                        allow_mass_prune,
                        retry: Backoff::new(retry_base, defaults.retry.cap),
                        ..defaults
                    },
                    rate_limits: aws_rate_limit,
                    debounce,
                    grace: shutdown_grace,
                    leader_election,
                    allowed_hosts,
                    admin_token,
                    git,
                    webhook,
                    notify,
                };
                agentcore_controller::daemon::run(opts).await
            }
            Command::Status { listen, output } => {
                commands::status(listen.listen, output.output).await
            }
            Command::Rollout {
                action,
                instance,
                output,
            } => {
                use agentcore_controller::rollout;
                let format = output.output;
                match action {
                    RolloutAction::Status { runtime, files } => {
                        rollout::status(&common(files, instance, format), &runtime).await
                    }
                    RolloutAction::Promote {
                        endpoint,
                        to_version,
                        write,
                        files,
                    } => {
                        let common = common(files, instance, format);
                        rollout::move_endpoint(&common, &endpoint, Some(to_version), write).await
                    }
                    RolloutAction::Undo {
                        endpoint,
                        write,
                        files,
                    } => {
                        let common = common(files, instance, format);
                        rollout::move_endpoint(&common, &endpoint, None, write).await
                    }
                }
            }
            Command::ConfirmPrune {
                listen,
                admin_token_file,
            } => commands::confirm_prune(listen.listen, admin_token_file.as_deref()).await,
            Command::Token {
                name,
                files,
                instance,
            } => commands::token(&common(files, instance, OutputFormat::Text), &name).await,
            Command::Url {
                name,
                files,
                instance,
            } => commands::url(&common(files, instance, OutputFormat::Text), &name).await,
            Command::CheckAuth {
                name,
                runtime,
                probe,
                files,
                instance,
                output,
            } => {
                let common = common(files, instance, output.output);
                commands::check_auth(&common, &name, runtime.as_deref(), probe).await
            }
            Command::Mcp {
                name,
                action,
                files,
                url,
                token,
                sigv4,
                token_from,
                timeout,
                output,
                instance,
            } => {
                let action = match action {
                    McpAction::Tools => mcp::Action::Tools,
                    McpAction::Prompts => mcp::Action::Prompts,
                    McpAction::Resources => mcp::Action::Resources,
                    McpAction::Call { tool, args } => mcp::Action::Call { tool, args },
                };
                let opts = mcp::McpOptions {
                    name,
                    files,
                    instance: instance.instance,
                    url,
                    token: token.map(secrecy::SecretString::from),
                    sigv4,
                    token_object: token_from,
                    output: output.output,
                    timeout,
                };
                mcp::mcp(opts, action).await
            }
            Command::Local {
                name,
                files,
                instance,
                listen,
                upstream,
            } => {
                let opts = mcp::LocalOptions {
                    name,
                    files: files.files,
                    instance: instance.instance,
                    listen,
                    upstream,
                };
                mcp::local(opts).await
            }
        }
    });
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
