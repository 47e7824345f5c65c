//! The daemon's HTTP endpoints (loopback by default): health, readiness, Prometheus
//! metrics, status as JSON, and reconcile-now / confirm-prune triggers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, watch};

use crate::engine::controller::{Command, Shared};
use std::collections::BTreeMap;

use crate::engine::status::{Condition, Snapshot};
use crate::guard::Guard;
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::model::object::ObjectKey;

#[derive(Clone)]
pub struct AppState {
    pub shared: Arc<Shared>,
    pub metrics: Metrics,
    pub commands: mpsc::Sender<Command>,
    /// This replica's part in leader election, if it takes part.
    pub leadership: Option<watch::Receiver<Leadership>>,
    /// The git source, if the manifests come from one.
    pub source: Option<watch::Receiver<crate::gitsource::SourceStatus>>,
    /// Which Host names are answered and who may POST.
    pub guard: Guard,
    /// The live probes' `Serving` conditions, added to the objects in `/status`.
    pub probes: Option<crate::probe::Board>,
}

/// POSTs must carry this header: a browser page cannot add it to a cross-site request
/// without a CORS preflight, which this server never grants (CSRF protection).
pub const ACTION_HEADER: &str = "x-agentcore-action";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/reconcile", post(reconcile))
        .route("/confirm-prune", post(confirm_prune))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            check_host,
        ))
        .with_state(state)
}

/// Refuse a Host name the daemon was not told about (see [`Guard::host`]).
async fn check_host(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // A Host that is not text is no name the daemon answers to.
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or_default());
    match s.guard.host(host) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// Why a POST may not act (it lacks the action header, or the guard refuses it); None:
/// it may.
fn refusal(s: &AppState, headers: &HeaderMap) -> Option<Response> {
    if !has_action_header(headers) {
        return Some(forbidden());
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let (code, msg) = s.guard.act(authorization).err()?;
    let mut r = (code, msg).into_response();
    if code == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    Some(r)
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.shared.snapshot().ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first full reconcile pass has not finished\n",
        )
            .into_response()
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn status(State(s): State<AppState>) -> Response {
    let leadership = s.leadership.as_ref().map(|rx| rx.borrow().clone());
    let source = s.source.as_ref().map(|rx| rx.borrow().clone());
    let probes = s
        .probes
        .as_ref()
        .and_then(|b| b.read().ok().map(|b| b.clone()))
        .unwrap_or_default();
    let chunks = StatusChunks::new(s.shared.snapshot(), leadership, source, probes);
    (
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(futures::stream::iter(chunks)),
    )
        .into_response()
}

/// About how much JSON [`StatusChunks`] writes at a time.
const STATUS_CHUNK: usize = 64 << 10;

/// A snapshot as JSON (the same bytes as `serde_json::to_vec`), written a few objects at a
/// time as the response is sent: at a thousand stacks the whole is about 10 MB, which,
/// written at once into a buffer that doubles as it grows, was held two or three times
/// over for every request and left the daemon's resident memory tens of megabytes higher.
struct StatusChunks {
    snapshot: Arc<Snapshot>,
    /// The snapshot's other fields, around where its objects go.
    head: Option<Vec<u8>>,
    tail: Option<Vec<u8>>,
    next: usize,
    /// Conditions the engine does not set (the probes'), added to their objects.
    extra: BTreeMap<ObjectKey, Condition>,
}

impl StatusChunks {
    const OBJECTS: &'static str = "\"objects\":[";

    fn new(
        snapshot: Arc<Snapshot>,
        leadership: Option<Leadership>,
        source: Option<crate::gitsource::SourceStatus>,
        extra: BTreeMap<ObjectKey, Condition>,
    ) -> Self {
        let frame = Snapshot {
            leadership,
            source,
            applied_revision: snapshot.applied_revision.clone(),
            generated_at: snapshot.generated_at.clone(),
            ready: snapshot.ready,
            objects: Vec::new(),
            problems: snapshot.problems.clone(),
            prune_refused: snapshot.prune_refused.clone(),
            queue_depth: snapshot.queue_depth,
        };
        // A string in JSON has its quotes escaped: `"objects":[` occurs once, as the key.
        let text = serde_json::to_string(&frame).unwrap_or_default();
        let (head, tail) = match text.split_once(&format!("{}]", Self::OBJECTS)) {
            Some((before, after)) => (format!("{before}{}", Self::OBJECTS), format!("]{after}")),
            None => (text, String::new()),
        };
        Self {
            snapshot,
            head: Some(head.into_bytes()),
            tail: Some(tail.into_bytes()),
            next: 0,
            extra,
        }
    }
}

impl Iterator for StatusChunks {
    type Item = Result<Vec<u8>, serde_json::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(head) = self.head.take() {
            return Some(Ok(head));
        }
        let objects = &self.snapshot.objects;
        if self.next < objects.len() {
            let mut chunk = Vec::with_capacity(STATUS_CHUNK + (STATUS_CHUNK >> 2));
            while self.next < objects.len() && chunk.len() < STATUS_CHUNK {
                if self.next > 0 {
                    chunk.push(b',');
                }
                let object = &objects[self.next];
                let extra = self
                    .extra
                    .get(&ObjectKey::new(object.kind.as_str(), object.name.as_str()));
                let written = match extra {
                    None => serde_json::to_writer(&mut chunk, &**object),
                    Some(c) => {
                        let mut with = (**object).clone();
                        with.conditions.retain(|x| x.kind != c.kind);
                        with.conditions.push(c.clone());
                        serde_json::to_writer(&mut chunk, &with)
                    }
                };
                if let Err(e) = written {
                    return Some(Err(e));
                }
                self.next += 1;
            }
            return Some(Ok(chunk));
        }
        self.tail.take().map(Ok)
    }
}

fn has_action_header(headers: &HeaderMap) -> bool {
    headers.contains_key(ACTION_HEADER)
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        format!("POST needs the header {ACTION_HEADER} (use the agentcore-controller command)\n"),
    )
        .into_response()
}

async fn reconcile(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&s, &headers) {
        return refused;
    }
    send(&s, Command::ReconcileAll, "reconciling everything now\n").await
}

async fn confirm_prune(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&s, &headers) {
        return refused;
    }
    if s.shared.snapshot().prune_refused.is_none() {
        return (
            StatusCode::CONFLICT,
            "no prune is waiting for confirmation\n",
        )
            .into_response();
    }
    send(&s, Command::ConfirmPrune, "prune confirmed\n").await
}

async fn send(s: &AppState, cmd: Command, ok: &'static str) -> Response {
    match s.commands.send(cmd).await {
        Ok(()) => (StatusCode::ACCEPTED, ok).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "controller stopped\n").into_response(),
    }
}

/// Serve until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A minimal HTTP/1.1 client for the daemon's endpoints (`status`, `confirm-prune`), with
/// the admin token if one is given.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&secrecy::SecretString>,
) -> std::io::Result<(u16, String)> {
    use secrecy::ExposeSecret;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let authorization = token
        .map(|t| format!("Authorization: Bearer {}\r\n", t.expose_secret()))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{ACTION_HEADER}: {path}\r\n{authorization}Content-Length: 0\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let body = buf.get(split + 4..).unwrap_or_default();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

/// Undo chunked transfer encoding, on bytes (chunk sizes count bytes, not characters).
fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&rest[..eol]);
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let data = &rest[eol + 2..];
        if n == 0 || data.len() < n {
            break;
        }
        out.extend_from_slice(&data[..n]);
        rest = data[n..].strip_prefix(b"\r\n").unwrap_or(&data[n..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_streamed_as_the_same_json() {
        use crate::engine::status::ObjectStatus;
        let object = |i: usize| {
            let mut o = ObjectStatus::new("Role", &format!("r{i}"));
            o.mark_pending(std::time::SystemTime::UNIX_EPOCH);
            // Large enough that a fleet's objects take several chunks.
            o.source = format!("{}:{i}", "x".repeat(2000));
            Arc::new(o)
        };
        let snapshot = |n: usize, problems: Vec<String>| Snapshot {
            generated_at: "2026-12-03T00:00:00Z".into(),
            ready: n.is_multiple_of(2),
            objects: (0..n).map(object).collect(),
            problems,
            prune_refused: (n == 1).then(|| "refused".into()),
            queue_depth: n,
            leadership: (n == 3).then(|| crate::leader::Leadership {
                role: crate::leader::Role::Standby,
                identity: "b".into(),
                holder: Some("a".into()),
                lease_expires_at: Some("2026-12-03T00:00:15Z".into()),
                lease: "dynamodb:t/i".into(),
                transitions: 2,
            }),
            applied_revision: (n == 2).then(|| format!("main@sha1:{}", "a".repeat(40)).into()),
            source: (n == 2).then(|| crate::gitsource::SourceStatus {
                url: "file:///r.git".into(),
                reference: "branch main".into(),
                last_error: Some("e".into()),
                ..Default::default()
            }),
        };
        let tricky = vec!["a \"objects\":[] in a message".to_string()];
        for s in [
            snapshot(0, vec![]),
            snapshot(1, tricky.clone()),
            snapshot(3, vec![]),
            snapshot(200, tricky),
        ] {
            let s = Arc::new(s);
            let chunks: Vec<Vec<u8>> = StatusChunks::new(
                s.clone(),
                s.leadership.clone(),
                s.source.clone(),
                BTreeMap::new(),
            )
            .collect::<Result<_, _>>()
            .expect("serialises");
            let streamed = chunks.concat();
            let whole = serde_json::to_vec(&*s).expect("serialises");
            assert_eq!(
                String::from_utf8_lossy(&streamed),
                String::from_utf8_lossy(&whole)
            );
            assert!(
                chunks.iter().all(|c| c.len() < 2 * STATUS_CHUNK),
                "{}",
                chunks.len()
            );
            if s.objects.len() == 200 {
                assert!(chunks.len() > 4, "{} chunks", chunks.len());
            }
        }
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            b"hello world"
        );
        // Sizes count bytes: a multi-byte character across the count must not panic.
        assert_eq!(
            dechunk("3\r\n\u{e9}!\r\n0\r\n\r\n".as_bytes()),
            "\u{e9}!".as_bytes()
        );
    }
}
