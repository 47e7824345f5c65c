//! Running an image builder: a shell command that writes an OCI image layout to `{out}`
//! (a directory or a tar archive) from `{context}`, e.g.
//! `docker buildx build --platform linux/arm64 --output type=oci,dest={out} {context}`.
//!
//! The builder runs in a fresh temporary directory (its working directory, where `{out}`
//! lives), in its own process group so that a timeout stops all of it, with its output
//! captured to a file there; the directory is removed when the [`Built`] is dropped,
//! whatever happened.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::error::{Reason, ReconcileError};

/// Placeholders a builder command may use.
pub const OUT: &str = "{out}";
pub const CONTEXT: &str = "{context}";

/// How much of the builder's output an error message carries.
const TAIL_LINES: usize = 20;
const TAIL_BYTES: u64 = 4096;

/// A finished build: the layout it wrote, alive as long as this value.
#[derive(Debug)]
pub struct Built {
    dir: tempfile::TempDir,
    /// `{out}`: a layout directory or a tar archive of one.
    pub out: PathBuf,
}

impl Built {
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Quote `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The command line with `{out}` and `{context}` replaced by quoted paths.
pub fn expand(command: &str, out: &Path, context: &Path) -> String {
    command
        .replace(OUT, &shell_quote(&out.to_string_lossy()))
        .replace(CONTEXT, &shell_quote(&context.to_string_lossy()))
}

/// Run `command` (with `sh -c`) to build `context`; fails on a non-zero exit, a timeout,
/// or when nothing was written to `{out}`, with the tail of the output in the message.
pub async fn run_builder(
    command: &str,
    context: &Path,
    timeout: Duration,
) -> Result<Built, ReconcileError> {
    let dir = tempfile::Builder::new()
        .prefix("agentcore-build-")
        .tempdir()
        .map_err(|e| {
            ReconcileError::recoverable(
                Reason::BuildFailed,
                format!("cannot create a build directory: {e}"),
            )
        })?;
    let out = dir.path().join("image");
    let log_path = dir.path().join("build.log");
    let io = |what: &str, e: std::io::Error| {
        ReconcileError::recoverable(Reason::BuildFailed, format!("{what}: {e}"))
    };
    let log = std::fs::File::create(&log_path).map_err(|e| io("cannot create the build log", e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| io("cannot create the build log", e))?;
    let line = expand(command, &out, context);
    let mut child = shell(&line, dir.path())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| io("cannot start the builder (sh)", e))?;
    // Whatever ends this function, a timeout or the reconcile being dropped (an apply's
    // deadline, the daemon's shutdown), takes the builder's whole process group with it:
    // `kill_on_drop` alone would stop `sh` and leave `docker buildx` running.
    let _group = GroupGuard(child.id());
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(io("waiting for the builder", e)),
        Err(_) => {
            if let Some(pid) = child.id() {
                kill_group(pid);
            }
            let _ = child.kill().await;
            return Err(ReconcileError::recoverable(
                Reason::BuildTimedOut,
                format!(
                    "the builder did not finish within {}{}",
                    humantime::format_duration(timeout),
                    tail_of(&log_path)
                ),
            ));
        }
    };
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        };
        return Err(ReconcileError::recoverable(
            Reason::BuildFailed,
            format!("the builder {how}{}", tail_of(&log_path)),
        ));
    }
    if !out.exists() {
        return Err(ReconcileError::recoverable(
            Reason::BuildFailed,
            format!(
                "the builder succeeded but wrote nothing to {{out}}; the command must write \
                 an OCI image layout there{}",
                tail_of(&log_path)
            ),
        ));
    }
    Ok(Built { dir, out })
}

/// The controller's own AWS credentials and notification receivers (a Slack webhook URL
/// is a secret) are not the builder's business (and its output ends up in status): they
/// are not passed on. (A git token given through the environment was removed from it at
/// start-up.)
const WITHHELD_ENV: [&str; 5] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AGENTCORE_NOTIFY",
];

/// `sh -c line` in `dir`, without the controller's AWS credentials.
fn shell(line: &str, dir: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(line).current_dir(dir);
    for var in WITHHELD_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Kills the builder's process group when dropped.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            kill_group(pid);
        }
    }
}

/// Stop the builder and everything it started (it leads its own process group).
fn kill_group(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The last lines of the build log, prefixed for an error message ("" when empty).
fn tail_of(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL_BYTES);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
    if tail.is_empty() {
        String::new()
    } else {
        format!("; last output:\n{}", tail.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_expansion() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(
            expand(
                "build -o {out} {context} && ls {out}",
                Path::new("/tmp/x y/image"),
                Path::new("/src/app")
            ),
            "build -o '/tmp/x y/image' '/src/app' && ls '/tmp/x y/image'"
        );
    }

    #[tokio::test]
    async fn outcomes() {
        let ctx = tempfile::tempdir().expect("ctx");
        std::fs::write(ctx.path().join("f"), "x").expect("write");
        // Success: a directory written to {out}; the build dir goes away on drop.
        let built = run_builder(
            "mkdir {out} && cp {context}/f {out}/f",
            ctx.path(),
            Duration::from_secs(10),
        )
        .await
        .expect("builds");
        assert!(built.out.join("f").is_file());
        let dir = built.dir().to_path_buf();
        drop(built);
        assert!(!dir.exists(), "build directory removed");

        type Case<'a> = (&'a str, u64, Reason, &'a str);
        let cases: Vec<Case> = vec![
            (
                "echo step one; echo 'boom: no space left' >&2; exit 3",
                10,
                Reason::BuildFailed,
                "the builder exited with status 3; last output:\nstep one\nboom: no space left",
            ),
            (
                "true",
                10,
                Reason::BuildFailed,
                "the builder succeeded but wrote nothing to {out}",
            ),
            (
                "echo started; sleep 30",
                1,
                Reason::BuildTimedOut,
                "the builder did not finish within 1s; last output:\nstarted",
            ),
        ];
        for (command, secs, reason, message) in cases {
            let t0 = std::time::Instant::now();
            let err = run_builder(command, ctx.path(), Duration::from_secs(secs))
                .await
                .expect_err(command);
            assert_eq!(err.reason, reason, "{command}: {err}");
            assert!(
                err.message.starts_with(message),
                "{command}: {}",
                err.message
            );
            assert!(!err.is_terminal());
            assert!(t0.elapsed() < Duration::from_secs(15), "{command}");
        }
        // Long output: only the tail.
        let err = run_builder(
            "for i in $(seq 1 500); do echo line $i; done; exit 1",
            ctx.path(),
            Duration::from_secs(10),
        )
        .await
        .expect_err("fails");
        assert!(err.message.ends_with("line 500"), "{}", err.message);
        assert!(!err.message.contains("line 480\n"), "{}", err.message);
        assert_eq!(err.message.lines().count(), 1 + TAIL_LINES);
    }

    /// A build whose reconcile is dropped (an apply's deadline, a shutdown) stops with
    /// everything it started: a grandchild that would write a file later never does.
    #[tokio::test]
    async fn a_dropped_build_takes_its_children_with_it() {
        let ctx = tempfile::tempdir().expect("ctx");
        let marker = ctx.path().join("still-running");
        let command = format!(
            "(sleep 2; touch {}) & wait",
            shell_quote(&marker.to_string_lossy())
        );
        let build = run_builder(&command, ctx.path(), Duration::from_secs(60));
        let dropped = tokio::time::timeout(Duration::from_millis(500), build).await;
        assert!(dropped.is_err(), "the build was still running when dropped");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            !marker.exists(),
            "a builder's child outlived the dropped build"
        );
    }

    /// The controller's AWS credentials are not handed to the builder.
    #[test]
    fn the_builder_does_not_get_the_controllers_aws_credentials() {
        let cmd = shell("true", Path::new("/"));
        let removed: Vec<String> = cmd
            .as_std()
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AGENTCORE_NOTIFY",
        ] {
            assert!(removed.iter().any(|r| r == var), "{var} is passed on");
        }
    }
}
