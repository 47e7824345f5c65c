//! The git CLI, as the source runs it: every command against one bare repository kept as
//! a cache, with a configuration of its own (the system's and the user's are not read),
//! no prompt, only the `file`, `http(s)` and `ssh` transports, and the credentials in the
//! child's environment (never in its arguments, which any local user can list).
//!
//! Why the CLI and not gix: gix cannot verify commit signatures (`--verify-commits`), and
//! its `file://` and `ssh://` transports run `git-upload-pack` and `ssh` anyway; the CLI
//! is the one implementation of every transport and of `verify-commit`, so there is one
//! behaviour to test rather than two.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::process::Command;

use super::reference::{RemoteRef, is_sha, parse_ls_remote};
use super::{Auth, GitSourceConfig};

/// Where each fetch puts the commit it fetched (in the cache repository).
const FETCHED: &str = "refs/agentcore/fetched";

/// A git command taking longer than this is stopped (a remote that hangs).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The git CLI bound to one remote and one cache repository.
#[derive(Debug, Clone)]
pub struct Git {
    program: PathBuf,
    repo: PathBuf,
    url: String,
    auth: Auth,
}

/// A commit's time (seconds since the epoch) and subject line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub time: u64,
    pub subject: String,
}

impl Git {
    pub fn new(cfg: &GitSourceConfig) -> Self {
        Self {
            program: PathBuf::from(
                std::env::var_os("AGENTCORE_GIT").unwrap_or_else(|| "git".into()),
            ),
            repo: cfg.workdir.join("cache.git"),
            url: cfg.url.clone(),
            auth: cfg.auth.clone(),
        }
    }

    /// Make the cache repository if it is not there.
    pub async fn init(&self) -> Result<(), String> {
        if self.repo.join("HEAD").is_file() {
            return Ok(());
        }
        let repo = self.repo.to_string_lossy().into_owned();
        self.run(&["init", "--quiet", "--bare", &repo], false, None)
            .await
            .map(|_| ())
    }

    /// The refs the remote has that match `patterns`.
    pub async fn ls_remote(&self, patterns: &[String]) -> Result<Vec<RemoteRef>, String> {
        let mut args = vec!["ls-remote", "--", self.url.as_str()];
        args.extend(patterns.iter().map(String::as_str));
        let out = self.run(&args, true, None).await?;
        Ok(parse_ls_remote(&out))
    }

    /// Fetch `full_ref`'s commit (its history is not needed: depth 1) and return it.
    pub async fn fetch(&self, full_ref: &str) -> Result<String, String> {
        let refspec = format!("+{full_ref}:{FETCHED}");
        self.run(
            &[
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--depth=1",
                "--",
                &self.url,
                &refspec,
            ],
            true,
            None,
        )
        .await?;
        let sha = self
            .run(
                &["rev-parse", "--verify", &format!("{FETCHED}^{{commit}}")],
                false,
                None,
            )
            .await?;
        let sha = sha.trim();
        if is_sha(sha) {
            Ok(sha.to_string())
        } else {
            Err(format!("git rev-parse gave `{sha}`, not a commit"))
        }
    }

    pub async fn commit_info(&self, sha: &str) -> Result<CommitInfo, String> {
        let out = self
            .run(&["log", "-1", "--format=%ct%x00%s", sha], false, None)
            .await?;
        let (time, subject) = out.trim_end().split_once('\0').unwrap_or(("0", ""));
        Ok(CommitInfo {
            time: time.parse().unwrap_or(0),
            subject: subject.to_string(),
        })
    }

    /// Whether `sha` carries a signature by a key of `allowed_signers` (as `git
    /// verify-commit` with `gpg.ssh.allowedSignersFile`); if not, why.
    pub async fn verify(&self, sha: &str, allowed_signers: &Path) -> Result<(), String> {
        let raw = self.run(&["cat-file", "commit", sha], false, None).await?;
        let signature = raw.lines().take_while(|l| !l.is_empty()).find_map(|l| {
            l.strip_prefix("gpgsig ")
                .or_else(|| l.strip_prefix("gpgsig-sha256 "))
        });
        match signature {
            None => return Err(format!("commit {sha} is not signed")),
            // Only SSH signatures are checked against allowed_signers; a GPG one would be
            // checked against whatever keyring the daemon's user has.
            Some(first) if first.trim() != "-----BEGIN SSH SIGNATURE-----" => {
                return Err(format!(
                    "commit {sha} is not signed with an SSH key (only SSH signatures are \
                     checked against allowed_signers)"
                ));
            }
            Some(_) => {}
        }
        let config = format!("gpg.ssh.allowedSignersFile={}", allowed_signers.display());
        self.run(&["-c", &config, "verify-commit", sha], false, None)
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "commit {sha} is not signed by a key of {}: {e}",
                    allowed_signers.display()
                )
            })
    }

    /// Write `path` (the whole tree when empty) of commit `sha` into the empty directory
    /// `into`. Symbolic links are written as files holding their target, so a link in the
    /// repository can never make the loader read outside the checkout.
    pub async fn checkout(&self, sha: &str, path: &Path, into: &Path) -> Result<(), String> {
        let index = into.with_extension("index");
        let work_tree = format!("--work-tree={}", into.display());
        let pathspec = if path.as_os_str().is_empty() {
            ".".to_string()
        } else {
            path.to_string_lossy().into_owned()
        };
        let result = self
            .run(
                &[
                    &work_tree,
                    "-c",
                    "core.bare=false",
                    "-c",
                    "core.symlinks=false",
                    "-c",
                    "core.autocrlf=false",
                    "checkout",
                    "--quiet",
                    sha,
                    "--",
                    &pathspec,
                ],
                false,
                Some(&index),
            )
            .await;
        let _ = std::fs::remove_file(&index);
        result.map(|_| ()).map_err(|e| {
            if e.contains("did not match any file") {
                format!("`{pathspec}` is not in commit {sha}")
            } else {
                e
            }
        })
    }

    /// Run git on the cache repository; its standard output, or why it failed (its
    /// standard error, with any credentials masked). `remote`: it talks to the remote,
    /// so it gets the credentials.
    async fn run(
        &self,
        args: &[&str],
        remote: bool,
        index: Option<&Path>,
    ) -> Result<String, String> {
        let mut cmd = Command::new(&self.program);
        cmd.arg(format!("--git-dir={}", self.repo.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ALLOW_PROTOCOL", "file:http:https:ssh")
            // --path is a path, never pathspec magic (`:(glob)…`).
            .env("GIT_LITERAL_PATHSPECS", "1")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env("LC_ALL", "C");
        if let Some(index) = index {
            cmd.env("GIT_INDEX_FILE", index);
        }
        if remote {
            match &self.auth {
                Auth::None => {}
                Auth::Token { username, token } => {
                    use base64::Engine as _;
                    let basic = base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{}", token.expose_secret()));
                    cmd.env("GIT_CONFIG_COUNT", "1")
                        .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                        .env(
                            "GIT_CONFIG_VALUE_0",
                            format!("Authorization: Basic {basic}"),
                        );
                }
                Auth::Ssh { key, known_hosts } => {
                    cmd.env("GIT_SSH_COMMAND", ssh_command(key, known_hosts));
                }
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        let out = match tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output()).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return Err(format!("git {}: {e}", args.first().unwrap_or(&""))),
            Err(_) => {
                return Err(format!(
                    "git {} did not finish within {}s",
                    args.first().unwrap_or(&""),
                    COMMAND_TIMEOUT.as_secs()
                ));
            }
        };
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut message: String = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(4)
            .collect::<Vec<_>>()
            .join("; ");
        if message.is_empty() {
            message = format!("git exited with {}", out.status);
        }
        Err(self.mask(&message))
    }

    /// `text` with the token (should the remote echo it) masked.
    fn mask(&self, text: &str) -> String {
        match &self.auth {
            Auth::Token { token, .. } if !token.expose_secret().is_empty() => {
                text.replace(token.expose_secret(), "***")
            }
            _ => text.to_string(),
        }
    }
}

/// The ssh that git runs: this key only, these known hosts only (an unknown or changed
/// host key fails the fetch: never "accept any host key"), never a prompt, and no
/// ~/.ssh/config.
fn ssh_command(key: &Path, known_hosts: &Path) -> String {
    format!(
        "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o IdentityAgent=none \
         -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
         -o StrictHostKeyChecking=yes -o BatchMode=yes",
        shell_quote(&key.to_string_lossy()),
        shell_quote(&known_hosts.to_string_lossy()),
    )
}

/// Quoted for the shell git runs `GIT_SSH_COMMAND` with.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_is_told_to_trust_only_the_known_hosts_given() {
        let cmd = ssh_command(Path::new("/keys/id it's"), Path::new("/etc/kh"));
        assert!(cmd.contains("-i '/keys/id it'\\''s'"), "{cmd}");
        assert!(cmd.contains("StrictHostKeyChecking=yes"), "{cmd}");
        assert!(cmd.contains("UserKnownHostsFile='/etc/kh'"), "{cmd}");
        assert!(!cmd.contains("StrictHostKeyChecking=no"));
        assert!(cmd.contains("BatchMode=yes"));
    }
}
