//! Git repositories for the GitOps tests (`run --git URL`), all on this machine:
//!
//! - [`GitRepo`]: a bare repository (the "remote") and a working clone that commits and
//!   pushes to it through its path; served to the controller as `file://` ([`GitRepo::file_url`])
//!   or over HTTP ([`GitHttp`]);
//! - [`SigningKey`]: an ed25519 SSH key pair that signs commits, and an `allowed_signers`
//!   file trusting it (for `--verify-commits`);
//! - [`GitHttp`]: git's smart HTTP protocol on `127.0.0.1` — a small HTTP/1.1 server (a
//!   thread per connection, `Connection: close` after every response) running
//!   `git http-backend` as a CGI program per request, anonymous or behind a token.
//!
//! Every git this module runs has the environment of [`git_command`]: no global or system
//! configuration (`GIT_CONFIG_GLOBAL=/dev/null`, `GIT_CONFIG_NOSYSTEM=1`), no inherited
//! `GIT_*` variable, and no prompts; nothing relies on `HOME`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The branch every repository here uses.
pub const BRANCH: &str = "main";

/// A `git` command isolated from this machine's configuration: `GIT_CONFIG_GLOBAL=/dev/null`,
/// `GIT_CONFIG_NOSYSTEM=1`, every inherited `GIT_*` variable removed (a test run from a git
/// hook would otherwise inherit `GIT_DIR`), and `GIT_TERMINAL_PROMPT=0` so that a missing
/// credential fails instead of prompting. stdin is null.
pub fn git_command() -> Command {
    let mut cmd = Command::new("git");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null());
    cmd
}

/// Run [`git_command`] with `args` in `dir`, panicking with git's output when it fails;
/// returns its stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {} (in {}) failed: {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Run [`git_command`] with `args` in `dir` and return its output, whether it succeeded or not.
pub fn git_output(dir: &Path, args: &[&str]) -> Output {
    git_command()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run git")
}

/// A bare repository and a working clone that pushes to it.
pub struct GitRepo {
    /// `<dir>/remote.git`: the bare repository (default branch `main`) the controller fetches.
    pub bare: PathBuf,
    /// `<dir>/work`: a clone of `bare`, with a local user name and e-mail, on `main`.
    pub work: PathBuf,
    /// The temporary directory holding both, when [`GitRepo::temp`] made it.
    _temp: Option<tempfile::TempDir>,
}

impl GitRepo {
    /// `dir/remote.git` (bare, default branch `main`) and `dir/work` (its clone, on `main`,
    /// committing as `Test <test@example.com>`). `dir` is created when missing.
    pub fn new(dir: &Path) -> GitRepo {
        std::fs::create_dir_all(dir).expect("create the repositories' directory");
        let dir = dir
            .canonicalize()
            .expect("the repositories' directory's absolute path");
        let bare = dir.join("remote.git");
        let work = dir.join("work");
        git(
            &dir,
            &["init", "--quiet", "--bare", "-b", BRANCH, "remote.git"],
        );
        git(&dir, &["clone", "--quiet", "remote.git", "work"]);
        // A clone of an empty repository takes the remote's unborn HEAD with protocol v2;
        // say it anyway.
        git(
            &work,
            &["symbolic-ref", "HEAD", &format!("refs/heads/{BRANCH}")],
        );
        git(&work, &["config", "user.name", "Test"]);
        git(&work, &["config", "user.email", "test@example.com"]);
        git(&work, &["config", "commit.gpgsign", "false"]);
        git(&work, &["config", "tag.gpgsign", "false"]);
        GitRepo {
            bare,
            work,
            _temp: None,
        }
    }

    /// [`GitRepo::new`] in a temporary directory removed when this is dropped.
    pub fn temp() -> GitRepo {
        let temp = tempfile::tempdir().expect("temp dir");
        let repo = GitRepo::new(temp.path());
        GitRepo {
            _temp: Some(temp),
            ..repo
        }
    }

    /// The directory holding `remote.git` and `work` (what [`GitHttp::serve`] takes).
    pub fn root(&self) -> &Path {
        self.bare.parent().expect("remote.git has a parent")
    }

    /// `file:///abs/path/remote.git`.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// Write `contents` to `rel` in the working clone, creating parent directories.
    pub fn write(&self, rel: &str, contents: &str) {
        let path = self.work.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the file's directory");
        }
        std::fs::write(&path, contents).expect("write a file in the working clone");
    }

    /// Remove `rel` (a file, or a directory with everything in it) from the working clone.
    pub fn remove(&self, rel: &str) {
        let path = self.work.join(rel);
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("remove a directory in the working clone");
        } else {
            std::fs::remove_file(&path).expect("remove a file in the working clone");
        }
    }

    /// `git add -A` and commit (panics when there is nothing to commit); returns the
    /// commit's full SHA. Not pushed: see [`GitRepo::push`].
    pub fn commit(&self, message: &str) -> String {
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "--quiet", "-m", message]);
        self.head()
    }

    /// [`GitRepo::commit`], SSH-signed with `key` (`gpg.format=ssh`, `user.signingkey=<the
    /// private key's path>`, `commit -S`). The commit's author and committer e-mail is the
    /// key's, as a forge would require to call it verified.
    pub fn commit_signed(&self, message: &str, key: &SigningKey) -> String {
        git(&self.work, &["add", "-A"]);
        let signing_key = format!("user.signingkey={}", key.private.display());
        let email = format!("user.email={}", key.email);
        git(
            &self.work,
            &[
                "-c",
                "gpg.format=ssh",
                "-c",
                &signing_key,
                "-c",
                &email,
                "commit",
                "--quiet",
                "-S",
                "-m",
                message,
            ],
        );
        self.head()
    }

    /// Push `main` to the bare repository.
    pub fn push(&self) {
        git(&self.work, &["push", "--quiet", "origin", BRANCH]);
    }

    /// A lightweight tag at HEAD, pushed.
    pub fn tag(&self, name: &str) {
        git(&self.work, &["tag", name]);
        self.push_tag(name);
    }

    /// An annotated tag at HEAD with `message`, pushed.
    pub fn annotated_tag(&self, name: &str, message: &str) {
        git(&self.work, &["tag", "-a", name, "-m", message]);
        self.push_tag(name);
    }

    fn push_tag(&self, name: &str) {
        git(
            &self.work,
            &["push", "--quiet", "origin", &format!("refs/tags/{name}")],
        );
    }

    /// `git reset --hard sha` in the working clone (then [`GitRepo::force_push`] rolls the
    /// remote back).
    pub fn reset_hard(&self, sha: &str) {
        git(&self.work, &["reset", "--quiet", "--hard", sha]);
    }

    /// Push `main` with `--force`.
    pub fn force_push(&self) {
        git(
            &self.work,
            &["push", "--quiet", "--force", "origin", BRANCH],
        );
    }

    /// The working clone's HEAD commit, a full SHA.
    pub fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

/// An SSH key pair for signing commits, and an allowed_signers file trusting it.
pub struct SigningKey {
    /// The private key's file (mode 0600), what `user.signingkey` names.
    pub private: PathBuf,
    /// The public key, `ssh-ed25519 AAAA…` (no comment).
    pub public: String,
    /// A file with the one line `<email> namespaces="git" <public>`, for
    /// `gpg.ssh.allowedSignersFile` or the controller's option taking it.
    pub allowed_signers: PathBuf,
    pub email: String,
}

impl SigningKey {
    /// `ssh-keygen -t ed25519 -N "" -q` into a fresh `dir/signing-key-N` (several keys can
    /// share `dir`), and `dir/signing-key-N.allowed_signers` trusting it for `email`.
    pub fn generate(dir: &Path, email: &str) -> SigningKey {
        std::fs::create_dir_all(dir).expect("create the key's directory");
        let dir = dir
            .canonicalize()
            .expect("the key directory's absolute path");
        let private = (1..)
            .map(|n| dir.join(format!("signing-key-{n}")))
            .find(|p| !p.exists() && !p.with_extension("pub").exists())
            .expect("a free key file name");
        let out = Command::new("ssh-keygen")
            .args(["-t", "ed25519", "-N", "", "-q", "-C", email, "-f"])
            .arg(&private)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh-keygen");
        assert!(
            out.status.success(),
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pub_file = std::fs::read_to_string(private.with_extension("pub"))
            .expect("read the public key ssh-keygen wrote");
        let public = pub_file
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let allowed_signers = private.with_extension("allowed_signers");
        std::fs::write(
            &allowed_signers,
            format!("{email} namespaces=\"git\" {public}\n"),
        )
        .expect("write allowed_signers");
        SigningKey {
            private,
            public,
            allowed_signers,
            email: email.to_string(),
        }
    }
}

/// `Authorization` header value for HTTP Basic auth: `Basic base64(user:password)`
/// (e.g. `basic_auth("x-access-token", token)` for
/// `-c http.extraHeader=Authorization: <this>`).
pub fn basic_auth(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{user}:{password}").as_bytes())
    )
}

/// `git http-backend` served over HTTP on 127.0.0.1 (a random free port), for the
/// repositories under `root`. Stops accepting connections when dropped.
pub struct GitHttp {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl GitHttp {
    /// Serve every repository under `root`, anonymously (fetches only: no `receive-pack`).
    pub fn serve(root: &Path) -> GitHttp {
        Self::start(root, None)
    }

    /// [`GitHttp::serve`], where every request must carry `Authorization: Basic
    /// base64(USER:token)` (any user, as GitHub takes `x-access-token:TOKEN`) or
    /// `Authorization: Bearer token`; anything else is answered 401 with
    /// `WWW-Authenticate: Basic realm="git"`.
    pub fn serve_with_token(root: &Path, token: &str) -> GitHttp {
        Self::start(root, Some(token.to_string()))
    }

    fn start(root: &Path, token: Option<String>) -> GitHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the git HTTP server");
        let addr = listener
            .local_addr()
            .expect("the git HTTP server's address");
        let server = Arc::new(Server {
            root: root
                .canonicalize()
                .expect("the served root's absolute path"),
            token,
        });
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (stats, stop) = (stats.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("git-http-{}", addr.port()))
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(conn) = conn else { continue };
                        let (server, stats) = (server.clone(), stats.clone());
                        std::thread::spawn(move || server.handle(conn, &stats));
                    }
                })
                .expect("spawn the git HTTP server")
        };
        GitHttp {
            addr,
            stats,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT/<repo>`, e.g. `url("remote.git")`.
    pub fn url(&self, repo: &str) -> String {
        format!("http://{}/{}", self.addr, repo.trim_start_matches('/'))
    }

    /// How many HTTP requests arrived (answered 401 or not).
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread up so that it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// What the server counted.
#[derive(Default)]
struct Stats {
    requests: AtomicUsize,
    /// Requests whose body came chunked / gzip'd (what the unit tests check was exercised).
    chunked: AtomicUsize,
    gzip: AtomicUsize,
}

struct Server {
    root: PathBuf,
    token: Option<String>,
}

/// One parsed request.
struct Request {
    method: String,
    path: String,
    query: String,
    /// Header names lowercased.
    headers: HashMap<String, String>,
    /// The body, chunked transfer encoding undone (content encoding kept).
    body: Vec<u8>,
    /// Whether the body came with `Transfer-Encoding: chunked`.
    chunked: bool,
}

impl Server {
    fn handle(&self, conn: TcpStream, stats: &Stats) {
        let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
        let peer = conn.peer_addr().ok();
        let Ok(mut writer) = conn.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(conn);
        let request = match read_request(&mut reader, &mut writer) {
            Ok(Some(r)) => r,
            Ok(None) => return, // a connection closed without a request (e.g. Drop's wake-up)
            Err(e) => {
                let _ = write!(
                    writer,
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{e}",
                    e.to_string().len()
                );
                return;
            }
        };
        stats.requests.fetch_add(1, Ordering::SeqCst);
        if request.chunked {
            stats.chunked.fetch_add(1, Ordering::SeqCst);
        }
        if request
            .headers
            .get("content-encoding")
            .is_some_and(|v| v.contains("gzip"))
        {
            stats.gzip.fetch_add(1, Ordering::SeqCst);
        }
        let user = match self.authenticate(&request) {
            Ok(user) => user,
            Err(()) => {
                let body = "authentication required\n";
                let _ = write!(
                    writer,
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                     Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                return;
            }
        };
        if let Err(e) = self.cgi(&request, user.as_deref(), peer, &mut writer) {
            eprintln!("git HTTP server: {} {}: {e}", request.method, request.path);
        }
        let _ = writer.flush();
        let _ = writer.shutdown(Shutdown::Both);
    }

    /// `Ok(None)` for anonymous access, `Ok(Some(user))` for a good token, `Err` for none or
    /// a wrong one.
    fn authenticate(&self, request: &Request) -> Result<Option<String>, ()> {
        let Some(token) = &self.token else {
            return Ok(None);
        };
        let auth = request.headers.get("authorization").ok_or(())?;
        let (scheme, value) = auth.trim().split_once(' ').ok_or(())?;
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return if value == token {
                Ok(Some("bearer".to_string()))
            } else {
                Err(())
            };
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64_decode(value).ok_or(())?;
            let decoded = String::from_utf8(decoded).map_err(|_| ())?;
            let (user, password) = decoded.split_once(':').ok_or(())?;
            if password == token {
                return Ok(Some(user.to_string()));
            }
        }
        Err(())
    }

    /// Run `git http-backend` for `request` and relay its answer.
    fn cgi(
        &self,
        request: &Request,
        user: Option<&str>,
        peer: Option<SocketAddr>,
        out: &mut TcpStream,
    ) -> std::io::Result<()> {
        let mut cmd = git_command();
        cmd.arg("http-backend")
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("SERVER_PROTOCOL", "HTTP/1.1")
            .env("REQUEST_METHOD", &request.method)
            .env("PATH_INFO", &request.path)
            .env("QUERY_STRING", &request.query)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let header = |name: &str| request.headers.get(name).map(String::as_str);
        if let Some(v) = header("content-type") {
            cmd.env("CONTENT_TYPE", v);
        }
        if request.method != "GET" && request.method != "HEAD" {
            cmd.env("CONTENT_LENGTH", request.body.len().to_string());
        }
        if let Some(v) = header("content-encoding") {
            cmd.env("HTTP_CONTENT_ENCODING", v);
        }
        if let Some(v) = header("git-protocol") {
            cmd.env("GIT_PROTOCOL", v);
        }
        if let Some(peer) = peer {
            cmd.env("REMOTE_ADDR", peer.ip().to_string());
        }
        if let Some(user) = user {
            cmd.env("REMOTE_USER", user).env("AUTH_TYPE", "Basic");
        }
        let mut child = cmd.spawn()?;
        // Feed the body from another thread: http-backend may answer before reading it all.
        let mut stdin = child.stdin.take().expect("piped stdin");
        let body = request.body.clone();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let errors = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut status = "200 OK".to_string();
        let mut headers = String::new();
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line)? == 0 {
                break;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            match line.split_once(':') {
                Some((name, value)) if name.eq_ignore_ascii_case("status") => {
                    status = value.trim().to_string();
                }
                Some((name, _)) if name.eq_ignore_ascii_case("connection") => {}
                _ => {
                    headers.push_str(line);
                    headers.push_str("\r\n");
                }
            }
        }
        write!(
            out,
            "HTTP/1.1 {status}\r\n{headers}Connection: close\r\n\r\n"
        )?;
        let copied = std::io::copy(&mut stdout, out);
        let _ = feeder.join();
        let exit = child.wait()?;
        let errors = errors.join().unwrap_or_default();
        if !exit.success() || !errors.trim().is_empty() {
            eprintln!(
                "git http-backend ({} {}?{}): {exit}: {}",
                request.method,
                request.path,
                request.query,
                errors.trim()
            );
        }
        copied.map(|_| ())
    }
}

/// Read one request (line, headers and body) off `reader`; `Ok(None)` when the connection
/// closes before a request line. Answers `Expect: 100-continue` on `writer`.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> Result<Option<Request>, String> {
    let io = |e: std::io::Error| e.to_string();
    let mut line = String::new();
    if reader.read_line(&mut line).map_err(io)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("bad request line {line:?}"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (method, path, query) = (method.to_string(), path.to_string(), query.to_string());
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(io)? == 0 {
            return Err("the connection closed in the headers".into());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    if headers
        .get("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        writer
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(io)?;
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).map_err(io)?;
            let size = size.trim_end_matches(['\r', '\n']);
            let size = size.split(';').next().unwrap_or("").trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {size:?}"))?;
            if size == 0 {
                // Trailers, up to an empty line.
                loop {
                    let mut trailer = String::new();
                    if reader.read_line(&mut trailer).map_err(io)? == 0
                        || trailer.trim_end_matches(['\r', '\n']).is_empty()
                    {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).map_err(io)?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).map_err(io)?;
        }
    } else if let Some(len) = headers.get("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad Content-Length {len:?}"))?;
        body.resize(len, 0);
        reader.read_exact(&mut body).map_err(io)?;
    }
    Ok(Some(Request {
        method,
        path,
        query,
        headers,
        body,
        chunked,
    }))
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padding optional; `None` when `text` is not base64.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = BASE64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `git clone` of `url` into a fresh directory under `dir`, with `config` (`-c` values);
    /// the output, and the clone's path.
    fn clone(dir: &Path, url: &str, config: &[&str]) -> (Output, PathBuf) {
        let n = std::fs::read_dir(dir).expect("list").count();
        let into = dir.join(format!("clone-{n}"));
        let mut args = Vec::new();
        for c in config {
            args.extend(["-c", c]);
        }
        let into_arg = into.display().to_string();
        args.extend(["clone", "--quiet", url, &into_arg]);
        (git_output(dir, &args), into)
    }

    fn assert_ok(out: &Output, what: &str) {
        assert!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A repository with two commits on main, a lightweight tag and an annotated one.
    fn sample_repo() -> (GitRepo, String) {
        let repo = GitRepo::temp();
        repo.write("manifests/a.yaml", "kind: A\n");
        repo.commit("first");
        repo.tag("v1");
        repo.write("manifests/sub/b.yaml", "kind: B\n");
        let head = repo.commit("second");
        repo.annotated_tag("v2", "release 2");
        repo.push();
        (repo, head)
    }

    #[test]
    fn git_repo_commits_and_pushes_and_clones_over_file_url() {
        let (repo, head) = sample_repo();
        assert_eq!(head.len(), 40);
        assert_eq!(git(&repo.bare, &["rev-parse", "refs/heads/main"]), head);
        assert_eq!(
            git(&repo.bare, &["symbolic-ref", "HEAD"]),
            "refs/heads/main"
        );
        assert!(repo.file_url().starts_with("file:///"));

        let dir = tempfile::tempdir().expect("temp dir");
        let (out, into) = clone(dir.path(), &repo.file_url(), &[]);
        assert_ok(&out, "clone over file://");
        assert_eq!(
            std::fs::read_to_string(into.join("manifests/sub/b.yaml")).expect("read"),
            "kind: B\n"
        );
        assert_eq!(git(&into, &["rev-parse", "HEAD"]), head);

        // Removing, committing, and nothing to commit.
        repo.remove("manifests/sub");
        let third = repo.commit("third");
        assert_ne!(third, head);
        assert!(!git(&repo.work, &["ls-files"]).contains("b.yaml"));
        let empty = std::panic::catch_unwind(|| repo.commit("nothing"));
        assert!(empty.is_err(), "an empty commit is refused");
    }

    #[test]
    fn git_repo_rolls_back_with_a_force_push() {
        let (repo, first_push) = sample_repo();
        repo.write("c.yaml", "kind: C\n");
        let later = repo.commit("later");
        repo.push();
        assert_eq!(git(&repo.bare, &["rev-parse", "main"]), later);
        repo.reset_hard(&first_push);
        repo.force_push();
        assert_eq!(git(&repo.bare, &["rev-parse", "main"]), first_push);
        assert_eq!(repo.head(), first_push);
    }

    #[test]
    fn git_http_serves_clones_and_ls_remote_anonymously() {
        let (repo, head) = sample_repo();
        let http = GitHttp::serve(repo.root());
        let url = http.url("remote.git");
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");

        let dir = tempfile::tempdir().expect("temp dir");
        let (out, into) = clone(dir.path(), &url, &[]);
        assert_ok(&out, "clone over HTTP");
        assert_eq!(git(&into, &["rev-parse", "HEAD"]), head);
        assert_eq!(
            std::fs::read_to_string(into.join("manifests/a.yaml")).expect("read"),
            "kind: A\n"
        );
        let served = http.requests();
        assert!(served >= 2, "{served} requests");

        let refs = git(dir.path(), &["ls-remote", &url]);
        assert!(refs.contains(&format!("{head}\trefs/heads/main")), "{refs}");
        assert!(refs.contains("\trefs/tags/v1\n"), "{refs}");
        assert!(refs.contains("\trefs/tags/v2\n"), "{refs}");
        assert!(
            refs.contains(&format!("{head}\trefs/tags/v2^{{}}")),
            "{refs}"
        );
        assert!(http.requests() > served);

        // Protocol v0 (no Git-Protocol header) works too, and a missing repository is a 404.
        let refs = git(dir.path(), &["-c", "protocol.version=0", "ls-remote", &url]);
        assert!(refs.contains("refs/heads/main"), "{refs}");
        let out = git_output(dir.path(), &["ls-remote", &http.url("missing.git")]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

        // A fetch into the clone after a new push.
        repo.write("d.yaml", "kind: D\n");
        let newer = repo.commit("newer");
        repo.push();
        git(&into, &["fetch", "--quiet", "origin"]);
        assert_eq!(git(&into, &["rev-parse", "origin/main"]), newer);
    }

    #[test]
    fn git_http_with_a_token_refuses_clones_without_it() {
        let (repo, head) = sample_repo();
        let token = "s3cret-token";
        let http = GitHttp::serve_with_token(repo.root(), token);
        let url = http.url("remote.git");
        let dir = tempfile::tempdir().expect("temp dir");

        let (out, _) = clone(dir.path(), &url, &[]);
        assert!(!out.status.success(), "a clone without credentials fails");
        let before = http.requests();
        assert!(before >= 1);

        let wrong = format!(
            "http.extraHeader=Authorization: {}",
            basic_auth("x-access-token", "nope")
        );
        let (out, _) = clone(dir.path(), &url, &[&wrong]);
        assert!(!out.status.success(), "a clone with a wrong token fails");

        let basic = format!(
            "http.extraHeader=Authorization: {}",
            basic_auth("x-access-token", token)
        );
        let (out, into) = clone(dir.path(), &url, &[&basic]);
        assert_ok(&out, "clone with Basic auth");
        assert_eq!(git(&into, &["rev-parse", "HEAD"]), head);

        let bearer = format!("http.extraHeader=Authorization: Bearer {token}");
        let refs = git(dir.path(), &["-c", &bearer, "ls-remote", &url]);
        assert!(refs.contains("refs/tags/v2"), "{refs}");

        // Credentials in the URL: curl answers the 401 challenge with Basic auth.
        let with_user = url.replace("http://", &format!("http://x-access-token:{token}@"));
        let (out, _) = clone(dir.path(), &with_user, &[]);
        assert_ok(&out, "clone with the token in the URL");
    }

    #[test]
    fn git_http_takes_gzip_and_chunked_request_bodies() {
        let (repo, _) = sample_repo();
        let http = GitHttp::serve(repo.root());
        let url = http.url("remote.git");
        // 3,000 annotated tags: a clone then wants 3,000 distinct objects, a request body
        // of ~150 KB. Git sends a body chunked when it outgrows http.postBuffer (1 MiB by
        // default; at or below 65520, git 2.47's remote-curl aborts with a BUG), so the
        // clone lowers that; smaller bodies over 1 KB go gzip'd.
        let mut stream = String::new();
        for i in 0..3000 {
            let msg = format!("tag {i}");
            stream.push_str(&format!(
                "tag t{i}\nfrom refs/heads/main\ntagger T <t@example.com> 1700000000 +0000\ndata {}\n{msg}\n",
                msg.len()
            ));
        }
        let mut child = git_command()
            .current_dir(&repo.bare)
            .args(["fast-import", "--quiet"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("git fast-import");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stream.as_bytes())
            .expect("feed fast-import");
        assert!(child.wait().expect("fast-import").success());

        let dir = tempfile::tempdir().expect("temp dir");
        for version in ["2", "0"] {
            let chunked = http.stats.chunked.load(Ordering::SeqCst);
            let protocol = format!("protocol.version={version}");
            let (out, into) = clone(dir.path(), &url, &[&protocol, "http.postBuffer=100000"]);
            assert_ok(&out, "clone with 3,000 tags");
            assert_eq!(git(&into, &["tag"]).lines().count(), 3002);
            assert!(
                http.stats.chunked.load(Ordering::SeqCst) > chunked,
                "protocol v{version}: no chunked request"
            );
        }
        // With the default http.postBuffer the same ~150 KB request goes in one gzip'd body.
        let (gzip, chunked) = (
            http.stats.gzip.load(Ordering::SeqCst),
            http.stats.chunked.load(Ordering::SeqCst),
        );
        let (out, into) = clone(dir.path(), &url, &[]);
        assert_ok(&out, "clone with 3,000 tags");
        assert_eq!(git(&into, &["tag"]).lines().count(), 3002);
        assert!(
            http.stats.gzip.load(Ordering::SeqCst) > gzip,
            "no gzip'd request"
        );
        assert_eq!(http.stats.chunked.load(Ordering::SeqCst), chunked);
    }

    #[test]
    fn signed_commits_verify_and_unsigned_ones_do_not() {
        let repo = GitRepo::temp();
        let keys = tempfile::tempdir().expect("temp dir");
        let key = SigningKey::generate(keys.path(), "signer@example.com");
        let other = SigningKey::generate(keys.path(), "other@example.com");
        assert_ne!(key.private, other.private);
        assert!(key.public.starts_with("ssh-ed25519 "), "{}", key.public);
        assert_eq!(
            std::fs::read_to_string(&key.allowed_signers).expect("read"),
            format!("signer@example.com namespaces=\"git\" {}\n", key.public)
        );

        repo.write("a.yaml", "kind: A\n");
        let signed = repo.commit_signed("signed", &key);
        repo.write("b.yaml", "kind: B\n");
        let unsigned = repo.commit("unsigned");
        repo.push();

        let verify = |allowed: &Path, sha: &str| {
            let allowed = format!("gpg.ssh.allowedSignersFile={}", allowed.display());
            git_output(&repo.work, &["-c", &allowed, "verify-commit", sha])
        };
        let out = verify(&key.allowed_signers, &signed);
        assert_ok(&out, "verify-commit of the signed commit");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("Good \"git\" signature for signer@example.com"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!verify(&key.allowed_signers, &unsigned).status.success());
        assert!(!verify(&other.allowed_signers, &signed).status.success());
        assert_eq!(
            git(&repo.work, &["log", "-1", "--format=%ce", &signed]),
            "signer@example.com"
        );

        // Cloned over HTTP, the signature travels with the commit.
        let http = GitHttp::serve(repo.root());
        let dir = tempfile::tempdir().expect("temp dir");
        let (out, into) = clone(dir.path(), &http.url("remote.git"), &[]);
        assert_ok(&out, "clone over HTTP");
        let allowed = format!(
            "gpg.ssh.allowedSignersFile={}",
            key.allowed_signers.display()
        );
        git(&into, &["-c", &allowed, "verify-commit", &signed]);
    }

    #[test]
    fn base64_round_trips() {
        for s in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "x-access-token:s3cret",
        ] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).as_deref(), Some(s.as_bytes()), "{s}");
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(basic_auth("a", "b"), "Basic YTpi");
        assert_eq!(base64_decode("!!"), None);
    }
}
