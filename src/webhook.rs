//! The push-webhook receiver: `POST /hooks/git` on a listener of its own
//! (`--webhook-listen`), which makes the git source fetch at once instead of at its next
//! poll.
//!
//! Unlike the admin endpoints this listener may face beyond loopback (a git host must
//! reach it), so every request must prove it knows the secret in `--webhook-secret-file`.
//! It does so in one of three forms, chosen by which header is present, in this order:
//!
//! - GitHub: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body. A
//!   `ping` event (`X-GitHub-Event: ping`, sent when the hook is created) is answered 200
//!   and fetches nothing.
//! - GitLab: `X-Gitlab-Token: <secret>`, the secret itself (GitLab does not sign bodies).
//! - Generic, as Flux's `generic-hmac` receiver: `X-Signature: sha256=<hex>`, the
//!   HMAC-SHA256 of the raw body. Only sha256: `sha1=` is refused, SHA-1 being broken
//!   for this use and every sender that offers it also offering sha256.
//!
//! A request that proves nothing (no such header, a malformed one, a signature or token
//! that does not match) is refused 401 and triggers nothing. One that proves it is
//! answered 202 and asks for a fetch; nothing in its body is read beyond the signature,
//! so what is fetched is always what the configured remote holds. A signature covers no
//! time, so a captured request can be replayed: it can at most cause one more fetch.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc::{self, error::TrySendError};
use tracing::{debug, info, warn};

use crate::metrics::{Metrics, WebhookLabels};

/// The one path served.
pub const PATH: &str = "/hooks/git";

/// The largest body read (a push event for a large push is a few hundred KiB; GitHub caps
/// payloads at 25 MB but cuts the commit list long before). Larger is refused 413 before
/// any signature is checked.
pub const BODY_LIMIT: usize = 10 << 20;

/// The shortest secret accepted: a short one could be guessed by trying HMACs offline
/// from a single captured request.
pub const MIN_SECRET_LEN: usize = 16;

const GITHUB_SIGNATURE: &str = "x-hub-signature-256";
const GITHUB_EVENT: &str = "x-github-event";
const GITLAB_TOKEN: &str = "x-gitlab-token";
const GENERIC_SIGNATURE: &str = "x-signature";

const NO_HEADER: &str = "no signature header: X-Hub-Signature-256, X-Gitlab-Token or X-Signature";
const MISMATCH: &str = "signature does not match";
const TOKEN_MISMATCH: &str = "X-Gitlab-Token does not match";
const GITHUB_MALFORMED: &str = "X-Hub-Signature-256 is not sha256=<64 hex digits>";
const GENERIC_MALFORMED: &str =
    "X-Signature is not sha256=<64 hex digits> (only sha256 signatures are accepted)";

/// The shared secret the git host signs with (or, for GitLab, sends). Its `Debug` shows
/// `WebhookSecret(***)`, and nothing here logs or answers with it.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl WebhookSecret {
    /// Read the secret from `path`, without trailing white space (a file written with
    /// `echo` ends in a newline the git host's copy does not have). Leading white space is
    /// kept: it may be part of the secret. Refuses a missing or unreadable file, an empty
    /// secret and one shorter than [`MIN_SECRET_LEN`] bytes; the messages name the path,
    /// never the content.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the webhook secret file {}: {e}",
                path.display()
            )
        })?;
        let secret = text.trim_end();
        if secret.is_empty() {
            return Err(format!(
                "the webhook secret file {} is empty",
                path.display()
            ));
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the webhook secret in {} is shorter than {MIN_SECRET_LEN} bytes; use a \
                 random one (e.g. `openssl rand -hex 32`)",
                path.display()
            ));
        }
        Ok(Self(SecretString::from(secret.to_string())))
    }

    fn bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }

    /// Is `given` the secret? Compared as SHA-256 digests in constant time, so that
    /// neither where they differ nor the secret's length shows in the timing.
    fn is(&self, given: &[u8]) -> bool {
        Sha256::digest(given)
            .as_slice()
            .ct_eq(Sha256::digest(self.bytes()).as_slice())
            .into()
    }

    /// Is `tag` the HMAC-SHA256 of `body` under the secret? (Constant time.)
    fn signed(&self, body: &[u8], tag: &[u8]) -> bool {
        // HMAC takes a key of any length: this never fails.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.bytes()) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(tag).is_ok()
    }
}

/// A request for a fetch, from a webhook that proved it knows the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The form the request proved it in.
    pub source: Sender,
}

/// The form a webhook request authenticated in (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    GitHub,
    GitLab,
    Generic,
}

impl Sender {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
            Self::Generic => "generic",
        }
    }
}

impl std::fmt::Display for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone)]
struct Hook {
    secret: Arc<WebhookSecret>,
    trigger: mpsc::Sender<Trigger>,
    metrics: Metrics,
    /// When a refusal was last logged at warn (see [`REFUSAL_LOG_INTERVAL`]).
    warned: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// This listener may face the internet: refusals are logged at warn at most this often
/// (the others at debug; all are counted).
const REFUSAL_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

impl Hook {
    /// Whether a refusal may be logged at warn now.
    fn may_warn(&self) -> bool {
        let Ok(mut last) = self.warned.lock() else {
            return false;
        };
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < REFUSAL_LOG_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }

    fn count(&self, outcome: &'static str) {
        self.metrics
            .webhook_requests
            .get_or_create(&WebhookLabels { outcome })
            .inc();
    }
}

/// `POST /hooks/git`, sending a [`Trigger`] on `trigger` for each authenticated push.
/// Other methods are answered 405, other paths 404, bodies over [`BODY_LIMIT`] 413.
///
/// The trigger is sent with `try_send`: when the channel is full a fetch is already
/// pending, and since it has not been taken yet it starts after this push landed, so it
/// covers it (a channel of capacity 1 makes a burst of pushes one fetch).
///
/// Serve it with [`serve`] (or `into_make_service_with_connect_info::<SocketAddr>()`),
/// so that refusals are logged with the peer's address.
pub fn router(secret: WebhookSecret, trigger: mpsc::Sender<Trigger>, metrics: Metrics) -> Router {
    let hook = Hook {
        secret: Arc::new(secret),
        trigger,
        metrics,
        warned: Arc::default(),
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    Router::new()
        .route(PATH, post(receive))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(slots, bounded))
        .with_state(hook)
}

/// Requests handled at once on this listener, which may face the internet: more are
/// answered 503 at once, so bodies sent slowly cannot pile up.
pub const MAX_IN_FLIGHT: usize = 16;

/// A request (its body included) taking longer than this is answered 408.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// At most [`MAX_IN_FLIGHT`] requests at once, each within [`REQUEST_TIMEOUT`].
async fn bounded(
    State(slots): State<Arc<tokio::sync::Semaphore>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Ok(_slot) = slots.try_acquire() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy: try again\n").into_response();
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long\n").into_response(),
    }
}

/// Serve until `shutdown` resolves, with each request's peer address known.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn receive(
    State(hook): State<Hook>,
    // Optional: a router served without connect info still answers (the peer shows as
    // unknown) rather than failing every request with 500.
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer.map_or_else(|| "unknown".to_string(), |p| p.0.0.to_string());
    let sender = match authenticate(&hook.secret, &headers, &body) {
        Ok(sender) => sender,
        Err(reason) => {
            hook.count("refused");
            if hook.may_warn() {
                warn!(%peer, reason, "webhook refused");
            } else {
                debug!(%peer, reason, "webhook refused");
            }
            return (StatusCode::UNAUTHORIZED, format!("{reason}\n")).into_response();
        }
    };
    hook.count("accepted");
    if sender == Sender::GitHub
        && headers.get(GITHUB_EVENT).map(HeaderValue::as_bytes) == Some(b"ping")
    {
        info!(%sender, %peer, "webhook ping answered");
        return (StatusCode::OK, "pong\n").into_response();
    }
    match hook.trigger.try_send(Trigger { source: sender }) {
        Ok(()) => info!(%sender, %peer, "webhook accepted: fetch triggered"),
        Err(TrySendError::Full(_)) => {
            info!(%sender, %peer, "webhook accepted: a fetch is already pending")
        }
        Err(TrySendError::Closed(_)) => {
            warn!(%sender, %peer, "webhook accepted but the git source has stopped");
            return (StatusCode::SERVICE_UNAVAILABLE, "git source stopped\n").into_response();
        }
    }
    (StatusCode::ACCEPTED, "fetch triggered\n").into_response()
}

/// Which sender proved it knows the secret, or why the request proves nothing. The first
/// header present decides: a wrong GitHub signature is refused even beside a right
/// GitLab token.
fn authenticate(
    secret: &WebhookSecret,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Sender, &'static str> {
    if let Some(v) = headers.get(GITHUB_SIGNATURE) {
        let tag = sha256_tag(v).ok_or(GITHUB_MALFORMED)?;
        return if secret.signed(body, &tag) {
            Ok(Sender::GitHub)
        } else {
            Err(MISMATCH)
        };
    }
    if let Some(v) = headers.get(GITLAB_TOKEN) {
        return if secret.is(v.as_bytes()) {
            Ok(Sender::GitLab)
        } else {
            Err(TOKEN_MISMATCH)
        };
    }
    if let Some(v) = headers.get(GENERIC_SIGNATURE) {
        let tag = sha256_tag(v).ok_or(GENERIC_MALFORMED)?;
        return if secret.signed(body, &tag) {
            Ok(Sender::Generic)
        } else {
            Err(MISMATCH)
        };
    }
    Err(NO_HEADER)
}

/// `sha256=<64 hex digits>` → the 32 bytes.
fn sha256_tag(header: &HeaderValue) -> Option<Vec<u8>> {
    let hex_digits = header.as_bytes().strip_prefix(b"sha256=")?;
    hex::decode(hex_digits)
        .ok()
        .filter(|tag| tag.len() == Sha256::output_size())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef-webhook";
    const BODY: &str = r#"{"ref":"refs/heads/main","after":"0a1b2c"}"#;

    fn secret() -> WebhookSecret {
        WebhookSecret(SecretString::from(SECRET.to_string()))
    }

    fn hmac_hex(key: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// The router served on 127.0.0.1, and the other end of its trigger channel.
    struct Harness {
        url: String,
        triggers: mpsc::Receiver<Trigger>,
        /// Another sender on the channel, to fill it.
        tx: mpsc::Sender<Trigger>,
        metrics: Metrics,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    async fn start(capacity: usize) -> Harness {
        let (tx, triggers) = mpsc::channel(capacity);
        let metrics = Metrics::new(None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(secret(), tx.clone(), metrics.clone());
        tokio::spawn(serve(listener, app, async {
            let _ = stopped.await;
        }));
        Harness {
            url: format!("http://{addr}"),
            triggers,
            tx,
            metrics,
            _stop: stop,
        }
    }

    impl Harness {
        async fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
            let mut req = reqwest::Client::new()
                .post(format!("{}{path}", self.url))
                .body(body);
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            let resp = req.send().await.expect("response");
            let code = resp.status().as_u16();
            (code, resp.text().await.expect("body"))
        }

        fn received(&mut self) -> Vec<Trigger> {
            std::iter::from_fn(|| self.triggers.try_recv().ok()).collect()
        }
    }

    #[tokio::test]
    async fn each_sender_with_the_secret_triggers_one_fetch() {
        let github = format!("sha256={}", hmac_hex(SECRET, BODY.as_bytes()));
        let upper = github.to_uppercase().replace("SHA256=", "sha256=");
        let cases: [(&[(&str, &str)], Sender); 5] = [
            (
                &[("X-Hub-Signature-256", &github), ("X-GitHub-Event", "push")],
                Sender::GitHub,
            ),
            (&[("X-Hub-Signature-256", &upper)], Sender::GitHub),
            (&[("X-Gitlab-Token", SECRET)], Sender::GitLab),
            (&[("X-Signature", &github)], Sender::Generic),
            // The first header present decides.
            (
                &[("X-Signature", "sha256=00"), ("X-Gitlab-Token", SECRET)],
                Sender::GitLab,
            ),
        ];
        for (headers, sender) in cases {
            let mut h = start(4).await;
            let (code, text) = h.post(PATH, headers, BODY.into()).await;
            assert_eq!(
                (code, text.as_str()),
                (202, "fetch triggered\n"),
                "{headers:?}"
            );
            assert_eq!(
                h.received(),
                vec![Trigger { source: sender }],
                "{headers:?}"
            );
            assert!(
                h.metrics.render().contains(
                    "agentcore_controller_webhook_requests_total{outcome=\"accepted\"} 1"
                ),
                "{headers:?}"
            );
        }
    }

    #[tokio::test]
    async fn requests_that_prove_nothing_are_refused_and_trigger_nothing() {
        let good = hmac_hex(SECRET, BODY.as_bytes());
        let wrong_secret = format!(
            "sha256={}",
            hmac_hex("another-secret-of-16+", BODY.as_bytes())
        );
        let wrong_body = format!("sha256={}", hmac_hex(SECRET, b"another body"));
        let sha1 = format!("sha1={}", &good[..40]);
        let not_hex = format!("sha256={}", "zz".repeat(32));
        let short = format!("sha256={}", &good[..62]);
        let bare = good.clone();
        let right_github = format!("sha256={good}");
        // (headers, reason)
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![], NO_HEADER),
            (vec![("X-GitHub-Event", "push")], NO_HEADER),
            (vec![("X-Hub-Signature-256", &wrong_secret)], MISMATCH),
            (vec![("X-Hub-Signature-256", &wrong_body)], MISMATCH),
            (vec![("X-Hub-Signature-256", &not_hex)], GITHUB_MALFORMED),
            (vec![("X-Hub-Signature-256", &short)], GITHUB_MALFORMED),
            (vec![("X-Hub-Signature-256", &bare)], GITHUB_MALFORMED),
            (vec![("X-Hub-Signature-256", &sha1)], GITHUB_MALFORMED),
            (vec![("X-Hub-Signature-256", "")], GITHUB_MALFORMED),
            (
                vec![("X-Gitlab-Token", "0123456789abcdef-webhooK")],
                TOKEN_MISMATCH,
            ),
            (vec![("X-Gitlab-Token", "0123456789abcdef")], TOKEN_MISMATCH),
            (vec![("X-Gitlab-Token", &right_github)], TOKEN_MISMATCH),
            (vec![("X-Gitlab-Token", "")], TOKEN_MISMATCH),
            (vec![("X-Signature", &wrong_secret)], MISMATCH),
            (vec![("X-Signature", &wrong_body)], MISMATCH),
            (vec![("X-Signature", &not_hex)], GENERIC_MALFORMED),
            (vec![("X-Signature", &sha1)], GENERIC_MALFORMED),
            (vec![("X-Signature", &bare)], GENERIC_MALFORMED),
            // The first header present decides, even beside a right one.
            (
                vec![
                    ("X-Hub-Signature-256", &wrong_secret),
                    ("X-Gitlab-Token", SECRET),
                ],
                MISMATCH,
            ),
        ];
        let mut h = start(4).await;
        for (headers, reason) in &cases {
            let (code, text) = h.post(PATH, headers, BODY.into()).await;
            assert_eq!(
                (code, text.as_str()),
                (401, format!("{reason}\n").as_str()),
                "{headers:?}"
            );
            assert!(!text.contains(SECRET), "{headers:?}");
            assert_eq!(h.received(), vec![], "{headers:?}");
        }
        let refused = format!(
            "agentcore_controller_webhook_requests_total{{outcome=\"refused\"}} {}",
            cases.len()
        );
        assert!(h.metrics.render().contains(&refused), "{refused}");
    }

    #[tokio::test]
    async fn a_github_ping_is_answered_and_triggers_nothing() {
        let mut h = start(4).await;
        let signature = format!("sha256={}", hmac_hex(SECRET, b"{\"zen\":\"hi\"}"));
        let headers = [
            ("X-Hub-Signature-256", signature.as_str()),
            ("X-GitHub-Event", "ping"),
        ];
        let (code, _) = h.post(PATH, &headers, b"{\"zen\":\"hi\"}".to_vec()).await;
        assert_eq!(code, 200);
        assert_eq!(h.received(), vec![]);
        // A ping must be signed too.
        let headers = [
            ("X-Hub-Signature-256", "sha256=00"),
            ("X-GitHub-Event", "ping"),
        ];
        let (code, _) = h.post(PATH, &headers, b"{}".to_vec()).await;
        assert_eq!(code, 401);
    }

    #[tokio::test]
    async fn requests_beyond_the_in_flight_bound_are_answered_busy() {
        use tokio::io::AsyncWriteExt;
        let h = start(4).await;
        let addr = h.url.trim_start_matches("http://").to_string();
        // Bodies sent slowly (here: never finished) hold their slots...
        let mut slow = Vec::new();
        for _ in 0..MAX_IN_FLIGHT {
            let mut s = tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect");
            let head = format!(
                "POST {PATH} HTTP/1.1\r\nHost: {addr}\r\nX-Gitlab-Token: x\r\nContent-Length: 100\r\n\r\n{{"
            );
            s.write_all(head.as_bytes()).await.expect("send");
            slow.push(s);
        }
        // ...and the next request is answered at once, not queued behind them.
        let mut code = 0;
        for _ in 0..50 {
            code = h.post(PATH, &[("X-Gitlab-Token", SECRET)], vec![]).await.0;
            if code == 503 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(code, 503);
        drop(slow);
        let mut code = 0;
        for _ in 0..50 {
            code = h.post(PATH, &[("X-Gitlab-Token", SECRET)], vec![]).await.0;
            if code == 202 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(code, 202, "the slots are given back");
    }

    #[tokio::test]
    async fn a_push_while_a_fetch_is_pending_is_accepted_and_coalesced() {
        let mut h = start(1).await;
        h.tx.try_send(Trigger {
            source: Sender::Generic,
        })
        .expect("room for one");
        let (code, text) = h
            .post(PATH, &[("X-Gitlab-Token", SECRET)], BODY.into())
            .await;
        assert_eq!((code, text.as_str()), (202, "fetch triggered\n"));
        assert_eq!(
            h.received(),
            vec![Trigger {
                source: Sender::Generic
            }]
        );
    }

    #[tokio::test]
    async fn only_post_on_the_hook_path_and_bodies_up_to_the_limit() {
        let mut h = start(4).await;
        let client = reqwest::Client::new();
        let get = client
            .get(format!("{}{PATH}", h.url))
            .header("X-Gitlab-Token", SECRET)
            .send()
            .await
            .expect("response");
        assert_eq!(get.status().as_u16(), 405);
        let (code, _) = h
            .post("/other", &[("X-Gitlab-Token", SECRET)], vec![])
            .await;
        assert_eq!(code, 404);
        let (code, _) = h
            .post("/hooks/git/x", &[("X-Gitlab-Token", SECRET)], vec![])
            .await;
        assert_eq!(code, 404);

        let at_limit = vec![b'x'; BODY_LIMIT];
        let signature = format!("sha256={}", hmac_hex(SECRET, &at_limit));
        let (code, _) = h
            .post(PATH, &[("X-Hub-Signature-256", &signature)], at_limit)
            .await;
        assert_eq!(code, 202);
        let over = vec![b'x'; BODY_LIMIT + 1];
        let signature = format!("sha256={}", hmac_hex(SECRET, &over));
        let (code, _) = h
            .post(PATH, &[("X-Hub-Signature-256", &signature)], over)
            .await;
        assert_eq!(code, 413);
        assert_eq!(h.received().len(), 1);
    }

    /// Log lines written while it lives (the test runtime runs every task on this thread).
    #[test]
    fn the_secret_never_shows_in_debug_output() {
        assert_eq!(format!("{:?}", secret()), "WebhookSecret(***)");
        assert_eq!(format!("{:#?}", secret()), "WebhookSecret(***)");
    }

    #[test]
    fn a_secret_file_is_trimmed_and_must_hold_a_long_enough_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secret");
        for written in [
            SECRET.to_string(),
            format!("{SECRET}\n"),
            format!("{SECRET} \r\n"),
        ] {
            std::fs::write(&file, &written).expect("write");
            let read = WebhookSecret::from_file(&file).map(|s| s.0.expose_secret().to_string());
            assert_eq!(read, Ok(SECRET.to_string()), "{written:?}");
        }
        // (content, what the refusal says)
        let refused = [
            ("", "is empty"),
            ("\n", "is empty"),
            (" \t\r\n", "is empty"),
            ("fifteen-bytes!!\n", "shorter than 16 bytes"),
        ];
        for (content, says) in refused {
            std::fs::write(&file, content).expect("write");
            let err = WebhookSecret::from_file(&file).expect_err(content);
            assert!(err.contains(says), "{err}");
            assert!(err.contains(&file.display().to_string()), "{err}");
            if !content.trim().is_empty() {
                assert!(!err.contains(content.trim()), "{err}");
            }
        }
        let missing = dir.path().join("missing");
        let err = WebhookSecret::from_file(&missing).expect_err("missing");
        assert!(err.contains(&missing.display().to_string()), "{err}");
        assert!(WebhookSecret::from_file(dir.path()).is_err());
    }
}
