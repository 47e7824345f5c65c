//! agentcore-controller command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agentcore_controller::commands::{self, Common, OutputFormat};
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
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `agentcore_controller=debug`.
    #[arg(long, global = true, env = "AGENTCORE_LOG", default_value = "warn")]
    log: String,
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

#[derive(Args)]
struct AwsArgs {
    /// Controller instance: the value of the owner tag `agentcore.dev/managed-by`.
    /// Resources tagged by another instance are not touched.
    #[arg(
        long,
        env = "AGENTCORE_INSTANCE",
        default_value = "agentcore-controller"
    )]
    instance: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: OutputFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Check manifests offline and report every problem with file and line (exit 1 on any).
    Validate {
        #[command(flatten)]
        files: Files,
    },
    /// Show what apply would change, field by field (exit 0 in sync, 2 changes pending, 1 error).
    ///
    /// Reads AWS only. Secret values are masked.
    Diff {
        #[command(flatten)]
        files: Files,
        #[command(flatten)]
        aws: AwsArgs,
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
        aws: AwsArgs,
        /// How long to wait for every resource to become Ready.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Reconciles running at once (independent resources only).
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
        aws: AwsArgs,
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
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

fn common(files: Files, aws: AwsArgs) -> Common {
    Common {
        files: files.files,
        instance: aws.instance,
        output: aws.output,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log);
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
            Command::Diff {
                files,
                aws,
                timeout,
            } => commands::diff(&common(files, aws), timeout).await,
            Command::Apply {
                files,
                aws,
                timeout,
                concurrency,
            } => commands::apply(&common(files, aws), timeout, concurrency).await,
            Command::Delete {
                files,
                aws,
                dry_run,
            } => commands::delete(&common(files, aws), dry_run).await,
        }
    });
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
