//! The git source of `run --git URL`: the daemon pulls the manifests itself, as Flux's
//! source-controller does. Every `--interval` (or at once, when the push webhook fires)
//! it asks the remote where the followed ref points; when that moved, it fetches the
//! commit, verifies its signature if asked to, and checks the manifests' directory out
//! into a directory of its own. The daemon then switches the `current` link to it (one
//! rename: a reader sees the old revision or the new one, never a mix) and loads it. A
//! fetch, verification or checkout that fails leaves the last good revision in force
//! and says why in the source's status.
//!
//! The work directory:
//! - `cache.git`: a bare repository holding what was fetched (depth 1);
//! - `checkouts/<sha>/<path>`: one directory per revision checked out (the current one
//!   and the one before are kept);
//! - `current` → `checkouts/<sha>`: the revision in force.

pub mod git;
pub mod reference;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::engine::backoff::Backoff;
use crate::engine::status::Timestamp;
pub use reference::Reference;

/// How the source reaches the remote.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// HTTPS with a token (sent as the password of HTTP Basic auth, which GitHub, GitLab
    /// and Bitbucket all take).
    Token {
        username: String,
        token: SecretString,
    },
    /// SSH with this private key, trusting only the host keys in `known_hosts`.
    Ssh {
        key: PathBuf,
        known_hosts: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub struct GitSourceConfig {
    pub url: String,
    pub reference: Reference,
    /// The manifests' directory in the repository (empty: its root).
    pub path: PathBuf,
    pub interval: Duration,
    pub auth: Auth,
    /// Refuse a commit that no key of this allowed_signers file signed.
    pub verify_commits: Option<PathBuf>,
    /// Where the cache repository and the checkouts are kept.
    pub workdir: PathBuf,
}

impl GitSourceConfig {
    /// Check what can be checked before the first fetch: the URL's form, that
    /// credentials fit it, and that the path stays inside the repository.
    pub fn check(&self) -> Result<(), String> {
        let url = &self.url;
        let scheme = url_scheme(url);
        match scheme.as_deref() {
            Some("https" | "http" | "ssh" | "file") => {}
            Some(other) => {
                return Err(format!(
                    "`{other}://` is not a git transport this controller uses: https://, ssh:// or file://"
                ));
            }
            None if scp_like(url) => {}
            None => {
                return Err(format!(
                    "`{}` is not a git URL: https://HOST/PATH, ssh://USER@HOST/PATH, USER@HOST:PATH or file:///PATH",
                    redact_url(url)
                ));
            }
        }
        let http = matches!(scheme.as_deref(), Some("https" | "http"));
        if userinfo_password(url) || (http && userinfo(url).is_some()) {
            return Err(
                "the git URL holds credentials: give the token with --git-token-file or \
                 --git-token-env instead (a URL is logged and shown in /status)"
                    .into(),
            );
        }
        let ssh = matches!(scheme.as_deref(), Some("ssh")) || scheme.is_none();
        match &self.auth {
            Auth::Token { .. } if ssh || scheme.as_deref() == Some("file") => {
                return Err("a git token is for https:// URLs".into());
            }
            Auth::Token { .. } if scheme.as_deref() == Some("http") && !loopback_http(url) => {
                return Err(
                    "a git token is sent only over https:// (plain http:// only to a loopback address)"
                        .into(),
                );
            }
            Auth::Ssh { .. } if !ssh => {
                return Err("an SSH key is for ssh:// (or USER@HOST:PATH) URLs".into());
            }
            Auth::None if ssh => {
                return Err(
                    "an ssh:// URL needs --git-ssh-key and --git-known-hosts (the host key is \
                     always checked against known_hosts)"
                        .into(),
                );
            }
            _ => {}
        }
        if self.path.is_absolute()
            || self.path.components().any(|c| {
                !matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            })
        {
            return Err(format!(
                "--path `{}` must be a directory inside the repository (relative, no `..`)",
                self.path.display()
            ));
        }
        let files = [
            match &self.auth {
                Auth::Ssh { key, .. } => Some(("--git-ssh-key", key)),
                _ => None,
            },
            match &self.auth {
                Auth::Ssh { known_hosts, .. } => Some(("--git-known-hosts", known_hosts)),
                _ => None,
            },
            self.verify_commits
                .as_ref()
                .map(|f| ("--verify-commits", f)),
        ];
        for (flag, file) in files.into_iter().flatten() {
            if !file.is_file() {
                return Err(format!("{flag} {}: no such file", file.display()));
            }
        }
        if self.interval < Duration::from_secs(1) {
            return Err("--interval must be at least 1s".into());
        }
        Ok(())
    }

    /// What the revisions in the work directory were checked out from: a revision kept
    /// from a run with another URL, ref or path is not restored.
    pub fn identity(&self) -> String {
        format!(
            "{} {} {}",
            redact_url(&self.url),
            self.reference,
            self.path.display()
        )
    }

    /// The manifests as the loader reads them: through the `current` link.
    pub fn manifests(&self) -> PathBuf {
        self.workdir.join("current").join(&self.path)
    }
}

/// One commit of the source, as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// The branch or tag, short (`main`, `v1.2.3`).
    #[serde(rename = "ref")]
    pub reference: String,
    pub sha: String,
    pub commit_time: Timestamp,
    pub subject: String,
}

impl std::fmt::Display for Revision {
    /// As Flux writes it: `main@sha1:0123…` (the full SHA).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algo = if self.sha.len() == 64 {
            "sha256"
        } else {
            "sha1"
        };
        write!(f, "{}@{algo}:{}", self.reference, self.sha)
    }
}

/// What `/status` shows of the source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    /// The remote, without credentials.
    pub url: String,
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// The revision checked out and handed to the controller last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<Revision>,
    /// When the remote was last asked (successfully).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_at: Option<Timestamp>,
    /// Why the last attempt failed (cleared by the next that succeeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<Timestamp>,
    /// Attempts that failed since start.
    #[serde(default)]
    pub failures: u64,
    /// Commits must be signed by a key of this allowed_signers file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_commits: Option<String>,
}

/// A revision checked out, for the daemon to switch to; it answers on `done` once the
/// revision is in force and loaded (or why not).
#[derive(Debug)]
pub struct Checkout {
    pub revision: Revision,
    pub done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// Fetch now (the push webhook).
#[derive(Debug, Clone, Copy)]
pub struct FetchNow;

/// Follow the remote until `shutdown`: each revision checked out goes to `checkouts`, and
/// `status` always says where the source stands.
pub async fn run(
    cfg: GitSourceConfig,
    mut fetch_now: mpsc::Receiver<FetchNow>,
    checkouts: mpsc::Sender<Checkout>,
    status: watch::Sender<SourceStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let git = git::Git::new(&cfg);
    status.send_modify(|s| {
        s.url = redact_url(&cfg.url);
        s.reference = cfg.reference.to_string();
        s.path = cfg.path.to_string_lossy().into_owned();
        s.verify_commits = cfg.verify_commits.as_ref().map(|p| p.display().to_string());
    });
    let backoff = Backoff::new(Duration::from_secs(1), cfg.interval);
    let mut failures = 0u32;
    let mut applied: Option<String> = None;
    // The revision in force before a restart is loaded at once: a remote that is down
    // must not hold up renewals. It is verified again if commits must be signed now.
    if let Some(revision) = restore(&cfg) {
        let verified = match &cfg.verify_commits {
            Some(allowed) => git.verify(&revision.sha, allowed).await,
            None => Ok(()),
        };
        match verified {
            Ok(()) => {
                info!(%revision, "source: loading the revision in force before the restart");
                match hand_over(&checkouts, revision.clone()).await {
                    None => return,
                    Some(Ok(())) => {
                        applied = Some(revision.sha.clone());
                        status.send_modify(|s| s.revision = Some(revision));
                    }
                    Some(Err(e)) => {
                        warn!(error = %e, "source: the revision kept from before the restart cannot be loaded")
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "source: not loading the revision kept from before the restart")
            }
        }
    }
    loop {
        let outcome = match sync(&cfg, &git, applied.as_deref()).await {
            Ok(Some(revision)) => {
                info!(revision = %revision, subject = %revision.subject, "source: new revision checked out");
                match hand_over(&checkouts, revision.clone()).await {
                    None => return,
                    Some(Ok(())) => {
                        // Kept: the revision in force and the one before (a rollback to it
                        // needs no checkout).
                        let keep: Vec<String> = [Some(revision.sha.clone()), applied.take()]
                            .into_iter()
                            .flatten()
                            .collect();
                        let workdir = cfg.workdir.clone();
                        let _ =
                            tokio::task::spawn_blocking(move || prune_checkouts(&workdir, &keep))
                                .await;
                        applied = Some(revision.sha.clone());
                        status.send_modify(|s| s.revision = Some(revision));
                        Ok(())
                    }
                    Some(Err(e)) => Err(format!(
                        "revision {revision} checked out but not loaded: {e}"
                    )),
                }
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                failures = 0;
                let now = Timestamp::of(SystemTime::now());
                status.send_modify(|s| {
                    s.last_checked_at = Some(now);
                    if s.last_error.take().is_some() {
                        info!("source: fetching works again");
                    }
                    s.last_error_at = None;
                });
            }
            Err(e) => {
                failures += 1;
                let same = status.borrow().last_error.as_deref() == Some(e.as_str());
                if same {
                    debug!(error = %e, "source: still failing; the last good revision stays");
                } else {
                    warn!(error = %e, "source: cannot update; the last good revision stays");
                }
                status.send_modify(|s| {
                    s.failures += 1;
                    s.last_error = Some(e);
                    s.last_error_at = Some(Timestamp::of(SystemTime::now()));
                });
            }
        }
        let wait = if failures == 0 {
            cfg.interval
        } else {
            backoff.next(failures - 1).min(cfg.interval)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            Some(FetchNow) = fetch_now.recv() => {
                debug!("source: fetching now (webhook)");
            }
            _ = shutdown.wait_for(|s| *s) => return,
        }
        // Pushes that came meanwhile are covered by this fetch.
        while fetch_now.try_recv().is_ok() {}
    }
}

/// Hand `revision` to the daemon and wait until it is in force: None when the daemon is
/// stopping.
async fn hand_over(
    checkouts: &mpsc::Sender<Checkout>,
    revision: Revision,
) -> Option<Result<(), String>> {
    let (done, answer) = tokio::sync::oneshot::channel();
    checkouts.send(Checkout { revision, done }).await.ok()?;
    answer.await.ok()
}

/// Ask the remote where the ref points; if not at `applied`, fetch, verify and check out
/// that commit. The new revision, or None when the ref has not moved.
async fn sync(
    cfg: &GitSourceConfig,
    git: &git::Git,
    applied: Option<&str>,
) -> Result<Option<Revision>, String> {
    git.init().await?;
    let refs = git.ls_remote(&cfg.reference.patterns()).await?;
    let target = cfg.reference.select(&refs)?;
    if applied == Some(target.commit.as_str()) {
        return Ok(None);
    }
    let sha = git.fetch(&target.name).await?;
    if applied == Some(sha.as_str()) {
        return Ok(None); // moved back between the two calls
    }
    if let Some(allowed) = &cfg.verify_commits {
        git.verify(&sha, allowed).await?;
    }
    let info = git.commit_info(&sha).await?;
    let dir = checkout_dir(&cfg.workdir, &sha);
    if !dir.is_dir() {
        let parent = cfg.workdir.join("checkouts");
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let tmp = parent.join(format!(".tmp-{sha}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        if let Err(e) = git.checkout(&sha, &cfg.path, &tmp).await {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if !tmp.join(&cfg.path).is_dir() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(format!(
                "`{}` is not a directory in commit {sha}",
                cfg.path.display()
            ));
        }
        std::fs::rename(&tmp, &dir)
            .map_err(|e| format!("cannot move the checkout to {}: {e}", dir.display()))?;
    }
    Ok(Some(Revision {
        reference: reference::short_name(&target.name).to_string(),
        sha,
        commit_time: Timestamp::of(SystemTime::UNIX_EPOCH + Duration::from_secs(info.time)),
        subject: info.subject,
    }))
}

fn checkout_dir(workdir: &Path, sha: &str) -> PathBuf {
    workdir.join("checkouts").join(sha)
}

/// What `current.json` records of the revision in force, so that a restart loads it at
/// once, before the remote answers (or when it does not).
#[derive(Debug, Serialize, Deserialize)]
struct InForce {
    source: String,
    revision: Revision,
}

/// Make `revision` the one in force: `current` is pointed at its checkout in one rename,
/// and `current.json` says which revision that is (and of which `source`, see
/// [`GitSourceConfig::identity`]).
pub fn switch(workdir: &Path, source: &str, revision: &Revision) -> Result<(), String> {
    let target = Path::new("checkouts").join(&revision.sha);
    let link = workdir.join("current");
    let tmp = workdir.join(format!(".current-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &tmp)
        .map_err(|e| format!("cannot link {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &link).map_err(|e| format!("cannot switch {}: {e}", link.display()))?;
    let state = InForce {
        source: source.to_string(),
        revision: revision.clone(),
    };
    let json = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
    let (file, tmp) = (workdir.join("current.json"), workdir.join(".current.json"));
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &file))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(())
}

/// Remove the checkouts but those of `keep`, and what an interrupted checkout or removal
/// left (`.tmp-*`, `.trash-*`). A checkout is renamed aside before it is removed, so a
/// removal cut short never leaves a partial tree under a revision's name.
fn prune_checkouts(workdir: &Path, keep: &[String]) {
    let Ok(entries) = std::fs::read_dir(workdir.join("checkouts")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep.contains(&name) {
            continue;
        }
        let doomed = if name.starts_with('.') {
            entry.path()
        } else {
            let aside = workdir.join("checkouts").join(format!(".trash-{name}"));
            if std::fs::rename(entry.path(), &aside).is_err() {
                continue;
            }
            aside
        };
        if let Err(e) = std::fs::remove_dir_all(&doomed) {
            warn!(path = %doomed.display(), error = %e, "cannot remove an old checkout");
        }
    }
}

/// The revision a previous run left in force in the work directory, if it came from the
/// same source and its checkout is whole (the link and `current.json` agree).
fn restore(cfg: &GitSourceConfig) -> Option<Revision> {
    let text = std::fs::read(cfg.workdir.join("current.json")).ok()?;
    let state: InForce = serde_json::from_slice(&text).ok()?;
    let target = std::fs::read_link(cfg.workdir.join("current")).ok()?;
    let expected = Path::new("checkouts").join(&state.revision.sha);
    let whole = state.source == cfg.identity()
        && reference::is_sha(&state.revision.sha)
        && target == expected
        && cfg.manifests().is_dir();
    whole.then_some(state.revision)
}

/// Make the work directory and hold it: a second daemon given the same one is refused
/// (they would switch each other's `current` link). Held while the file is open.
pub fn lock_workdir(workdir: &Path) -> Result<std::fs::File, String> {
    std::fs::create_dir_all(workdir).map_err(|e| {
        format!(
            "cannot create the git work directory {}: {e}",
            workdir.display()
        )
    })?;
    // Its checkouts are loaded as manifests: nobody else may write there (the default is
    // under the shared temporary directory).
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::symlink_metadata(workdir)
            .map_err(|e| format!("cannot read {}: {e}", workdir.display()))?;
        // SAFETY: geteuid has no preconditions and touches no memory.
        let me = unsafe { libc::geteuid() };
        if !meta.is_dir() || meta.uid() != me {
            return Err(format!(
                "the git work directory {} is not a directory of this user (uid {me}): \
                 give one with --git-workdir",
                workdir.display()
            ));
        }
        std::fs::set_permissions(workdir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot restrict {}: {e}", workdir.display()))?;
    }
    let path = workdir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(format!(
                "another agentcore-controller uses the git work directory {}: give this one \
                 its own with --git-workdir",
                workdir.display()
            ));
        }
    }
    Ok(file)
}

/// `scheme` of `scheme://…`, lower case.
fn url_scheme(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once("://")?;
    (!scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)))
    .then(|| scheme.to_ascii_lowercase())
}

/// `user@host:path` (scp-like SSH), not a Windows or local path.
fn scp_like(url: &str) -> bool {
    match url.split_once(':') {
        Some((host, path)) => {
            !host.is_empty() && !host.contains('/') && !path.is_empty() && host.contains('@')
        }
        None => false,
    }
}

/// The URL's authority part (`user:pass@host:port`), if it has one.
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

fn userinfo(url: &str) -> Option<&str> {
    authority(url)
        .and_then(|a| a.rsplit_once('@'))
        .map(|(userinfo, _)| userinfo)
}

fn userinfo_password(url: &str) -> bool {
    userinfo(url).is_some_and(|u| u.contains(':'))
}

fn loopback_http(url: &str) -> bool {
    let Some(auth) = authority(url) else {
        return false;
    };
    let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.split(':').next().unwrap_or(host),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The URL as logs and `/status` show it: without a query (it may hold a token), and for
/// http(s) without its user info (`https://TOKEN@host/…` is a way to pass a token); an
/// SSH URL keeps its user name (`git@`), not a password.
pub fn redact_url(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    let Some((scheme, rest)) = no_query.split_once("://") else {
        return no_query.to_string();
    };
    let (auth, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match auth.rsplit_once('@') {
        Some((_, host)) if scheme.starts_with("http") => format!("{scheme}://***@{host}{path}"),
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{scheme}://{masked}@{host}{path}")
        }
        None => no_query.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, auth: Auth, path: &str) -> GitSourceConfig {
        GitSourceConfig {
            url: url.into(),
            reference: Reference::branch("main").expect("valid"),
            path: path.into(),
            interval: Duration::from_secs(60),
            auth,
            verify_commits: None,
            workdir: "/tmp/w".into(),
        }
    }

    #[test]
    fn urls_credentials_and_paths_are_checked_before_any_fetch() {
        let token = || Auth::Token {
            username: "x-access-token".into(),
            token: SecretString::from("t0k3n".to_string()),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let (key, kh) = (dir.path().join("k"), dir.path().join("kh"));
        std::fs::write(&key, "").expect("key");
        std::fs::write(&kh, "").expect("known_hosts");
        let ssh = || Auth::Ssh {
            key: key.clone(),
            known_hosts: kh.clone(),
        };
        // (url, auth, path, error fragment or "" for valid)
        let cases: Vec<(&str, Auth, &str, &str)> = vec![
            ("https://github.com/o/r.git", Auth::None, "manifests", ""),
            ("https://github.com/o/r.git", token(), "", ""),
            ("http://127.0.0.1:8080/r.git", token(), "", ""),
            ("http://[::1]:8080/r.git", token(), "", ""),
            (
                "http://git.example.com/r.git",
                token(),
                "",
                "only over https",
            ),
            ("file:///srv/r.git", Auth::None, "a/b", ""),
            ("file:///srv/r.git", token(), "", "for https"),
            ("ssh://git@github.com/o/r.git", ssh(), "", ""),
            ("git@github.com:o/r.git", ssh(), "", ""),
            (
                "git@github.com:o/r.git",
                Auth::None,
                "",
                "--git-known-hosts",
            ),
            ("ssh://git@github.com/o/r.git", token(), "", "for https"),
            ("https://github.com/o/r.git", ssh(), "", "for ssh://"),
            (
                "https://u:secret@github.com/o/r.git",
                Auth::None,
                "",
                "holds credentials",
            ),
            (
                "https://secret@github.com/o/r.git",
                Auth::None,
                "",
                "holds credentials",
            ),
            (
                "ssh://git:secret@github.com/o/r.git",
                ssh(),
                "",
                "holds credentials",
            ),
            ("ext::sh -c evil", Auth::None, "", "not a git URL"),
            ("ftp://host/r.git", Auth::None, "", "not a git transport"),
            ("/srv/r.git", Auth::None, "", "not a git URL"),
            (
                "https://github.com/o/r.git",
                Auth::None,
                "../up",
                "inside the repository",
            ),
            (
                "https://github.com/o/r.git",
                Auth::None,
                "/abs",
                "inside the repository",
            ),
        ];
        for (url, auth, path, want) in cases {
            let got = config(url, auth, path).check();
            match (want, got) {
                ("", Ok(())) => {}
                ("", Err(e)) => panic!("{url}: refused: {e}"),
                (want, Ok(())) => panic!("{url}: accepted, wanted `{want}`"),
                (want, Err(e)) => {
                    assert!(e.contains(want), "{url}: `{e}` lacks `{want}`");
                    assert!(!e.contains("secret"), "{url}: {e}");
                }
            }
        }
    }

    #[test]
    fn urls_are_shown_without_passwords_or_queries() {
        let cases = [
            ("https://github.com/o/r.git", "https://github.com/o/r.git"),
            ("https://u:pw@host/r.git", "https://***@host/r.git"),
            ("https://tok@host/r.git?x=1", "https://***@host/r.git"),
            ("ssh://git:pw@host/r.git", "ssh://git:***@host/r.git"),
            ("ssh://git@host/r.git", "ssh://git@host/r.git"),
            ("git@github.com:o/r.git", "git@github.com:o/r.git"),
            ("file:///srv/r.git", "file:///srv/r.git"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn a_revision_is_written_as_flux_writes_it() {
        let r = Revision {
            reference: "main".into(),
            sha: "a".repeat(40),
            commit_time: Timestamp::of(SystemTime::UNIX_EPOCH),
            subject: "s".into(),
        };
        assert_eq!(r.to_string(), format!("main@sha1:{}", "a".repeat(40)));
    }
}
