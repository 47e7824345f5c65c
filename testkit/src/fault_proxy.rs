//! A fault-injecting HTTP/1.1 reverse proxy in front of the emulator.
//!
//! Every request is read off a (keep-alive) client connection and, for a configurable
//! share of them chosen by a seeded PRNG, answered with a fault instead of the
//! emulator's answer:
//!
//! - `Throttle`: HTTP 400 with the AWS throttling error of the request's protocol (JSON
//!   `ThrottlingException` for awsJson/rest-json, XML `Throttling` for the query
//!   protocol of IAM and STS), so the SDK classifies it as throttling;
//! - `Status500` / `Status503`: a server error with an `InternalFailure` /
//!   `ServiceUnavailable` body;
//! - `DropBefore`: the request is read and the connection closed without forwarding it;
//! - `DropAfter` ("response lost"): the request is forwarded, the emulator acts on it,
//!   and the connection is closed instead of answering — the case where a retried create
//!   must not duplicate.
//!
//! `lose_first_write_answers` turns on a lost-answer mode: the first request of every write
//! operation (create, put, update, delete, tag, the ECR layer upload, …) gets `DropAfter`,
//! whatever the rate, and `lost_answers` says which operations it hit.
//!
//! The emulator (werkzeug) answers with `Content-Length` and `Connection: close`; the
//! proxy opens one upstream connection per request, reads the response framed by
//! `Content-Length`, chunked encoding or end of stream, and re-frames it with
//! `Content-Length` so that the client's connection stays alive.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    Status500,
    Status503,
    DropBefore,
    DropAfter,
}

impl Fault {
    const ALL: [Fault; 5] = [
        Fault::Throttle,
        Fault::Status500,
        Fault::Status503,
        Fault::DropBefore,
        Fault::DropAfter,
    ];
}

/// Counts of requests seen and faults injected, by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub requests: u64,
    pub forwarded: u64,
    pub throttle: u64,
    pub status500: u64,
    pub status503: u64,
    pub drop_before: u64,
    pub drop_after: u64,
}

impl FaultCounts {
    pub fn faults(&self) -> u64 {
        self.throttle + self.status500 + self.status503 + self.drop_before + self.drop_after
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests, {} forwarded; faults: {} throttle, {} HTTP 500, {} HTTP 503, \
             {} dropped before forwarding, {} dropped after forwarding",
            self.requests,
            self.forwarded,
            self.throttle,
            self.status500,
            self.status503,
            self.drop_before,
            self.drop_after
        )
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    forwarded: AtomicU64,
    throttle: AtomicU64,
    status500: AtomicU64,
    status503: AtomicU64,
    drop_before: AtomicU64,
    drop_after: AtomicU64,
}

impl Counters {
    fn fault(&self, f: Fault) -> &AtomicU64 {
        match f {
            Fault::Throttle => &self.throttle,
            Fault::Status500 => &self.status500,
            Fault::Status503 => &self.status503,
            Fault::DropBefore => &self.drop_before,
            Fault::DropAfter => &self.drop_after,
        }
    }

    fn snapshot(&self) -> FaultCounts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FaultCounts {
            requests: g(&self.requests),
            forwarded: g(&self.forwarded),
            throttle: g(&self.throttle),
            status500: g(&self.status500),
            status503: g(&self.status503),
            drop_before: g(&self.drop_before),
            drop_after: g(&self.drop_after),
        }
    }
}

/// splitmix64: small, deterministic for a seed.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct State {
    upstream: SocketAddr,
    /// Share of requests answered with a fault, in millionths (changeable while running).
    rate_ppm: AtomicU64,
    rng: Mutex<Prng>,
    /// Faults to inject on the next request for an operation, whatever the rate.
    forced: Mutex<Vec<(String, Fault)>>,
    counters: Counters,
    started: std::time::Instant,
    /// One line per request: time since start, operation, outcome; for failure messages.
    log: Mutex<Vec<(bool, String)>>,
    /// Lose the answer to the first request of each write operation.
    lose_writes: std::sync::atomic::AtomicBool,
    /// The write operations whose first answer was lost, in order.
    lost: Mutex<Vec<String>>,
}

impl State {
    /// The fault for the next request, if any: a forced one for `operation`, else by the
    /// PRNG. The sequence of random decisions is fixed by the seed; which request gets which
    /// decision depends on arrival order.
    fn decide(&self, service: &str, operation: &str) -> Option<Fault> {
        if let Ok(mut forced) = self.forced.lock()
            && let Some(i) = forced.iter().position(|(op, _)| op == operation)
        {
            return Some(forced.remove(i).1);
        }
        let qualified = format!("{service}:{operation}");
        if self.lose_writes.load(Ordering::Relaxed)
            && agentcore_controller::error::is_write(operation)
            && let Ok(mut lost) = self.lost.lock()
            && !lost.contains(&qualified)
        {
            lost.push(qualified);
            return Some(Fault::DropAfter);
        }
        let rate = self.rate_ppm.load(Ordering::Relaxed) as f64 / 1e6;
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let roll = rng.unit();
        let pick = rng.next();
        (roll < rate).then(|| Fault::ALL[(pick % Fault::ALL.len() as u64) as usize])
    }
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    pub url: String,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Start a proxy to `upstream` (an `http://host:port` URL) on a free loopback port,
    /// faulting a share `rate` (0.0-1.0) of requests, decided by a PRNG seeded with `seed`.
    /// It runs on its own thread and runtime, independent of the caller's.
    pub fn start(upstream: &str, rate: f64, seed: u64) -> FaultProxy {
        let authority = upstream
            .strip_prefix("http://")
            .expect("upstream is an http:// URL")
            .trim_end_matches('/');
        let upstream: SocketAddr = authority.parse().expect("upstream is host:port");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(State {
            upstream,
            rate_ppm: AtomicU64::new(0),
            rng: Mutex::new(Prng(seed)),
            forced: Mutex::new(Vec::new()),
            counters: Counters::default(),
            started: std::time::Instant::now(),
            log: Mutex::new(Vec::new()),
            lose_writes: Default::default(),
            lost: Mutex::new(Vec::new()),
        });
        let proxy_state = state.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                tokio::select! {
                    _ = accept_loop(listener, proxy_state) => {}
                    _ = stopped => {}
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        let proxy = FaultProxy {
            url,
            state,
            stop: Some(stop),
            thread: Some(thread),
        };
        proxy.set_rate(rate);
        proxy
    }

    /// Change the share of faulted requests.
    pub fn set_rate(&self, rate: f64) {
        let ppm = (rate.clamp(0.0, 1.0) * 1e6) as u64;
        self.state.rate_ppm.store(ppm, Ordering::Relaxed);
    }

    /// Inject `fault` on the next request for `operation` (as the log names it: the
    /// operation, e.g. `CreateUserPool`, or `CreateAgentRuntime` for rest-json's
    /// `PUT /runtimes`).
    pub fn force(&self, operation: &str, fault: Fault) {
        if let Ok(mut forced) = self.state.forced.lock() {
            forced.push((operation.to_string(), fault));
        }
    }

    /// From now on, lose the answer to the first request of every write operation: the
    /// emulator acts on it and the connection drops.
    pub fn lose_first_write_answers(&self) {
        self.state.lose_writes.store(true, Ordering::Relaxed);
    }

    /// The write operations whose first answer was lost, as `Service:Operation` (e.g.
    /// `ECR:TagResource`; see `lose_first_write_answers`).
    pub fn lost_answers(&self) -> Vec<String> {
        self.state
            .lost
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    pub fn counts(&self) -> FaultCounts {
        self.state.counters.snapshot()
    }

    /// Every injected fault as "time operation: fault", in order.
    pub fn fault_log(&self) -> Vec<String> {
        self.log_lines(true)
    }

    /// Every request as "time operation: outcome", in order.
    pub fn request_log(&self) -> Vec<String> {
        self.log_lines(false)
    }

    fn log_lines(&self, faults_only: bool) -> Vec<String> {
        self.state
            .log
            .lock()
            .map(|l| {
                l.iter()
                    .filter(|(fault, _)| *fault || !faults_only)
                    .map(|(_, line)| line.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _ = serve_connection(stream, state).await;
        });
    }
}

/// A byte stream with a read buffer, for parsing HTTP/1.1 messages.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Read more bytes into the buffer; false at end of stream.
    async fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The header block up to the blank line; `None` at a clean end of stream.
    async fn head(&mut self) -> std::io::Result<Option<Head>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 4).collect();
                return Head::parse(&raw).map(Some);
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(invalid("end of stream inside a header block"))
                };
            }
        }
    }

    async fn exact(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(invalid("end of stream inside a body"));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    async fn line(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let mut line: Vec<u8> = self.buf.drain(..end + 2).collect();
                line.truncate(end);
                return Ok(line);
            }
            if !self.fill().await? {
                return Err(invalid("end of stream inside a chunk header"));
            }
        }
    }

    /// A chunked body, de-chunked (trailers are read and dropped).
    async fn chunked(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await?;
            let size = String::from_utf8_lossy(&line);
            let size = size.split(';').next().unwrap_or("").trim();
            let n = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
            if n == 0 {
                while !self.line().await?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.exact(n).await?);
            self.exact(2).await?;
        }
    }

    async fn until_closed(&mut self) -> std::io::Result<Vec<u8>> {
        while self.fill().await? {}
        Ok(std::mem::take(&mut self.buf))
    }

    /// The body that follows `head`. `response_to` is the request method for a response
    /// (None for a request).
    async fn body(&mut self, head: &Head, response_to: Option<&str>) -> std::io::Result<Vec<u8>> {
        if let Some(method) = response_to
            && (method == "HEAD"
                || head.status == Some(204)
                || head.status == Some(304)
                || head.status.is_some_and(|s| s < 200))
        {
            return Ok(Vec::new());
        }
        if head
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
        {
            return self.chunked().await;
        }
        match head.header("content-length") {
            Some(len) => {
                let n = len
                    .trim()
                    .parse()
                    .map_err(|_| invalid("bad content-length"))?;
                self.exact(n).await
            }
            // A response without framing runs to the end of the connection; a request
            // without framing has no body.
            None if response_to.is_some() => self.until_closed().await,
            None => Ok(Vec::new()),
        }
    }
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A request or status line and its headers.
struct Head {
    start: String,
    status: Option<u16>,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: &[u8]) -> std::io::Result<Head> {
        let text = String::from_utf8_lossy(raw);
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or("").to_string();
        let status = start
            .starts_with("HTTP/")
            .then(|| start.split_whitespace().nth(1).and_then(|s| s.parse().ok()))
            .flatten();
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| invalid("header line without a colon"))?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(Head {
            start,
            status,
            headers,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn method(&self) -> &str {
        self.start.split_whitespace().next().unwrap_or("")
    }

    /// Serialise with `body` framed by Content-Length, without hop-by-hop headers, and
    /// with `connection` as the Connection header.
    fn serialise(&self, body: &[u8], connection: &str) -> Vec<u8> {
        const HOP: [&str; 6] = [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "content-length",
            "expect",
            "proxy-connection",
        ];
        let mut out = format!("{}\r\n", self.start);
        for (k, v) in &self.headers {
            if !HOP.iter().any(|h| k.eq_ignore_ascii_case(h)) {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
            body.len()
        ));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    /// Whether the sender wants the connection closed after this message.
    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
            || self.start.ends_with("HTTP/1.0")
    }

    /// The query protocol (IAM, STS) sends form-encoded bodies and gets XML errors; the
    /// others (awsJson 1.0/1.1, rest-json) get JSON errors.
    fn is_query_protocol(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.contains("x-www-form-urlencoded"))
    }

    /// The service a request is for: `Cognito`, `ECR`, `SecretsManager`, `SSM`, `STS`,
    /// `IAM` (the query protocol) or `AgentCore` (rest-json).
    fn service(&self) -> String {
        if let Some(target) = self.header("x-amz-target") {
            let prefix = target.split('.').next().unwrap_or(target);
            return match prefix {
                "AWSCognitoIdentityProviderService" => "Cognito",
                "AmazonEC2ContainerRegistry_V20150921" => "ECR",
                "secretsmanager" => "SecretsManager",
                "AmazonSSM" => "SSM",
                other => other,
            }
            .to_string();
        }
        let auth = self.header("authorization").unwrap_or_default();
        if auth.contains("/sts/") {
            "STS".into()
        } else if self.is_query_protocol() {
            "IAM".into()
        } else {
            "AgentCore".into()
        }
    }

    /// What the request is, for the fault log: the operation's name (for rest-json, that
    /// of the AgentCore operation its method and path stand for).
    fn operation(&self, body: &[u8]) -> String {
        if let Some(target) = self.header("x-amz-target") {
            return target.rsplit('.').next().unwrap_or(target).to_string();
        }
        if self.is_query_protocol() {
            let body = String::from_utf8_lossy(body);
            if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
                return action.to_string();
            }
        }
        let path = self.start.split_whitespace().nth(1).unwrap_or("");
        let path = path.split('?').next().unwrap_or("");
        rest_operation(self.method(), path)
    }
}

/// The AgentCore control operation a rest-json request stands for (`METHOD /path` for one
/// not listed here).
fn rest_operation(method: &str, path: &str) -> String {
    crate::requests::agentcore_operation(method, path)
        .map_or_else(|| format!("{method} {path}"), String::from)
}

fn error_response(request: &Head, fault: Fault) -> Vec<u8> {
    let (status, reason, code, message) = match fault {
        Fault::Throttle => (
            400,
            "Bad Request",
            if request.is_query_protocol() {
                "Throttling"
            } else {
                "ThrottlingException"
            },
            "Rate exceeded",
        ),
        Fault::Status500 => (
            500,
            "Internal Server Error",
            "InternalFailure",
            "injected internal error",
        ),
        _ => (
            503,
            "Service Unavailable",
            "ServiceUnavailable",
            "injected service unavailable",
        ),
    };
    let (content_type, body) = if request.is_query_protocol() {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                 <Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
            ),
        )
    } else {
        (
            "application/json",
            format!(r#"{{"__type":"{code}","message":"{message}"}}"#),
        )
    };
    let head = Head {
        start: format!("HTTP/1.1 {status} {reason}"),
        status: Some(status),
        headers: vec![
            ("Content-Type".into(), content_type.into()),
            ("x-amzn-ErrorType".into(), code.into()),
            ("x-amzn-RequestId".into(), "fault-proxy".into()),
        ],
    };
    head.serialise(body.as_bytes(), "keep-alive")
}

/// Forward one request to the emulator on a fresh connection; the response head and body.
async fn forward(state: &State, head: &Head, body: &[u8]) -> std::io::Result<(Head, Vec<u8>)> {
    let upstream = TcpStream::connect(state.upstream).await?;
    let mut up = Conn::new(upstream);
    up.stream.write_all(&head.serialise(body, "close")).await?;
    let response = loop {
        let Some(h) = up.head().await? else {
            return Err(invalid("the emulator closed without answering"));
        };
        if h.status != Some(100) {
            break h;
        }
    };
    let body = up.body(&response, Some(head.method())).await?;
    Ok((response, body))
}

async fn serve_connection(stream: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut client = Conn::new(stream);
    while let Some(head) = client.head().await? {
        if head
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            client
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await?;
        }
        let body = client.body(&head, None).await?;
        state.counters.requests.fetch_add(1, Ordering::Relaxed);
        let operation = head.operation(&body);
        let fault = state.decide(&head.service(), &operation);
        if let Some(f) = fault {
            state.counters.fault(f).fetch_add(1, Ordering::Relaxed);
        }
        let note = |outcome: String| {
            let at = state.started.elapsed().as_secs_f64();
            if let Ok(mut log) = state.log.lock() {
                log.push((fault.is_some(), format!("{at:8.3}s {operation}: {outcome}")));
            }
        };
        if let Some(f) = fault
            && f != Fault::DropAfter
        {
            note(format!("{f:?}"));
        }
        match fault {
            Some(Fault::DropBefore) => return Ok(()),
            Some(f @ (Fault::Throttle | Fault::Status500 | Fault::Status503)) => {
                client.stream.write_all(&error_response(&head, f)).await?;
                continue;
            }
            _ => {}
        }
        let (response, response_body) = match forward(&state, &head, &body).await {
            Ok(r) => r,
            Err(e) => {
                let msg = format!("fault proxy: upstream failed: {e}");
                note(msg.clone());
                let bad = Head {
                    start: "HTTP/1.1 502 Bad Gateway".into(),
                    status: Some(502),
                    headers: vec![("Content-Type".into(), "text/plain".into())],
                };
                client
                    .stream
                    .write_all(&bad.serialise(msg.as_bytes(), "close"))
                    .await?;
                return Ok(());
            }
        };
        state.counters.forwarded.fetch_add(1, Ordering::Relaxed);
        note(match fault {
            Some(f) => format!("{f:?} (emulator answered {})", response.status.unwrap_or(0)),
            None => format!("{}", response.status.unwrap_or(0)),
        });
        if fault == Some(Fault::DropAfter) {
            // The emulator has acted on the request; the answer is lost.
            return Ok(());
        }
        let close = head.wants_close();
        let connection = if close { "close" } else { "keep-alive" };
        client
            .stream
            .write_all(&response.serialise(&response_body, connection))
            .await?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}
