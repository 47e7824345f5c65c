//! `local`: a runtime's front door on loopback, for trying the auth path before deploying.
//!
//! Serves the runtime's invocation path (`/runtimes/{URL-encoded ARN}/invocations`),
//! checks each request's bearer token the way the runtime's JWT authorizer does (the
//! checks of [`crate::token::jwt::check`] against the issuer's keys and the authorizer's
//! allowedClients / allowedAudience / allowedScopes / customClaims; a deployed runtime's
//! authorizer is followed as it changes), answers refusals with AgentCore's
//! wording plus the failing checks, and forwards accepted requests to an MCP server: the
//! guide's, started in-process, or any other (`--upstream`). `Mcp-Session-Id` and
//! AgentCore's session header pass through both ways; like AgentCore, a request without
//! a runtime session id gets one, returned in the response.
//!
//! The token is never logged nor echoed: log lines and refusals carry the verdicts only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::json;
use tokio::sync::RwLock;

use super::authz::{self, Authorizer, Keys, Rejection};
use super::client::{MCP_SESSION_HEADER, RUNTIME_SESSION_HEADER};

/// Largest request body forwarded.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// What the local front door needs.
pub struct Config {
    /// The path clients call: `/runtimes/{URL-encoded ARN}/invocations`.
    pub invocation_path: String,
    /// Where accepted requests go (an MCP endpoint, e.g. `http://127.0.0.1:8000/mcp`).
    pub upstream: String,
    /// The authorizer (to fetch the issuer's keys again when they rotate).
    pub authorizer: Authorizer,
    /// The authorizer's expectations and the issuer's keys, as fetched at start.
    pub keys: Keys,
    /// The deployed runtime's authorizer each time it changes (`None`: the runtime no
    /// longer has a JWT authorizer, so it takes SigV4 only), to follow it as AgentCore
    /// does; `None` to keep the one given.
    pub updates: Option<tokio::sync::watch::Receiver<Option<Authorizer>>>,
}

/// The authorizer in force: `None` when the runtime has no JWT authorizer (SigV4 only).
struct Current {
    auth: Option<(Authorizer, Keys)>,
    /// When the keys were last fetched.
    refreshed: Instant,
}

/// The issuer's keys are fetched again when a token names a key they lack (the issuer
/// rotated its keys), at most this often.
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct Shared {
    config: Arc<Config>,
    current: Arc<RwLock<Current>>,
    http: reqwest::Client,
}

impl Shared {
    /// Check `token` against the authorizer in force.
    async fn verify(&self, token: &str) -> Result<(), Rejection> {
        let authorizer = match &self.current.read().await.auth {
            Some((a, _)) => a.clone(),
            None => return Err(authz::method_mismatch()),
        };
        self.verify_with(token, &authorizer).await
    }

    /// Check `token`; when it names a signing key the cached JWKS lacks, fetch the keys
    /// again (at most every [`KEY_REFRESH_INTERVAL`]) and check once more.
    async fn verify_with(&self, token: &str, authorizer: &Authorizer) -> Result<(), Rejection> {
        let first = match &self.current.read().await.auth {
            Some((_, keys)) => authz::verify(token, keys),
            None => return Err(authz::method_mismatch()),
        };
        let Err(rejection) = &first else {
            return first;
        };
        let unknown_key = rejection.checks.first().is_some_and(|c| {
            c.check == "signature" && c.detail.contains(crate::token::jwt::UNKNOWN_KEY)
        });
        if !unknown_key {
            return first;
        }
        // One request claims the refresh; the keys are fetched without holding the lock,
        // so requests with known keys are never held up by it.
        let claimed = {
            let mut current = self.current.write().await;
            let due = current.refreshed.elapsed() >= KEY_REFRESH_INTERVAL;
            if due {
                current.refreshed = Instant::now();
            }
            due
        };
        if claimed {
            match authorizer.keys().await {
                Ok(fresh) => {
                    let mut current = self.current.write().await;
                    if let Some((a, keys)) = &mut current.auth
                        && a == authorizer
                    {
                        *keys = fresh;
                    }
                }
                Err(e) => log(&format!("fetching the issuer's keys again failed: {e}")),
            }
        }
        match &self.current.read().await.auth {
            Some((_, keys)) => authz::verify(token, keys),
            None => Err(authz::method_mismatch()),
        }
    }
}

/// The first wait before fetching the issuer's keys again after a failed fetch.
pub const KEY_RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two fetches of the issuer's keys.
pub const KEY_RETRY_MAX: Duration = Duration::from_secs(30);

/// The wait after `previous`: doubled, at most [`KEY_RETRY_MAX`].
fn next_delay(previous: Duration) -> Duration {
    previous.saturating_mul(2).min(KEY_RETRY_MAX)
}

/// `fetch` until it succeeds, waiting (with `sleep`) [`KEY_RETRY_FIRST`] after the first
/// failure and twice as long after each next one, up to [`KEY_RETRY_MAX`]; `None` as soon
/// as `superseded` resolves (a newer authorizer arrived, so these keys are not needed).
async fn fetch_until<T, E, F, FF, S, SF>(
    mut fetch: F,
    superseded: impl std::future::Future<Output = ()>,
    mut sleep: S,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> FF,
    FF: std::future::Future<Output = Result<T, E>>,
    S: FnMut(Duration) -> SF,
    SF: std::future::Future<Output = ()>,
{
    tokio::pin!(superseded);
    let mut delay = KEY_RETRY_FIRST;
    loop {
        match fetch().await {
            Ok(t) => return Some(t),
            Err(e) => log(&format!(
                "the runtime's authorizer changed, but its issuer's keys could not be fetched \
                 (the previous authorizer stays in force; trying again in {}s): {e}",
                delay.as_secs()
            )),
        }
        tokio::select! {
            biased;
            () = &mut superseded => return None,
            () = sleep(delay) => {}
        }
        delay = next_delay(delay);
    }
}

/// Follow the deployed runtime's authorizer: each change replaces the one in force (with
/// the issuer's keys fetched for it), as AgentCore applies an updated authorizer. Keys
/// that cannot be fetched are fetched again (see [`fetch_until`]) until they are, or a
/// newer authorizer replaces the one they are for.
async fn follow(
    current: Arc<RwLock<Current>>,
    mut updates: tokio::sync::watch::Receiver<Option<Authorizer>>,
) {
    // A newer authorizer arrived while the keys of the previous one were being fetched.
    let mut pending = false;
    loop {
        if !pending && updates.changed().await.is_err() {
            return;
        }
        pending = false;
        let next = updates.borrow_and_update().clone();
        let same = match (&current.read().await.auth, &next) {
            (Some((a, _)), Some(b)) => a == b,
            (None, None) => true,
            _ => false,
        };
        if same {
            continue;
        }
        let auth = match next {
            None => None,
            Some(a) => {
                let newer = async {
                    // With the sender gone no newer authorizer can come: keep trying.
                    if updates.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                };
                match fetch_until(|| a.keys(), newer, tokio::time::sleep).await {
                    Some(keys) => Some((a, keys)),
                    None => {
                        pending = true;
                        continue;
                    }
                }
            }
        };
        log(&match &auth {
            Some((a, _)) => format!(
                "the runtime's authorizer changed: allowedClients {}, allowedAudience {}, \
                 allowedScopes {}, customClaims {}",
                a.allowed_clients.join(", "),
                a.allowed_audience.join(", "),
                a.allowed_scopes.join(", "),
                a.custom_claims.len()
            ),
            None => {
                "the runtime no longer has a JWT authorizer: bearer tokens are refused".to_string()
            }
        });
        let mut c = current.write().await;
        c.auth = auth;
        c.refreshed = Instant::now();
    }
}

/// The invocation path of a runtime ARN (every reserved character percent-encoded, as in
/// the invocation URL).
pub fn invocation_path(arn: &str) -> String {
    let url = crate::kinds::agent_runtime::invocation_url("local", arn);
    let start = url.find("/runtimes/").unwrap_or(0);
    let end = url.find('?').unwrap_or(url.len());
    url[start..end].to_string()
}

/// Whether a request path is the invocation path (either encoded as clients encode it,
/// or with the ARN left as it is).
pub fn is_invocation_path(path: &str, invocation_path: &str) -> bool {
    path == invocation_path
        || percent_decode_str(path).decode_utf8_lossy()
            == percent_decode_str(invocation_path).decode_utf8_lossy()
}

/// The router: the invocation path (authorized, then forwarded) and `/ping`.
pub fn router(mut config: Config) -> Result<Router, String> {
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| format!("cannot set up HTTP: {e}"))?;
    let current = Arc::new(RwLock::new(Current {
        auth: Some((config.authorizer.clone(), config.keys.clone())),
        refreshed: Instant::now(),
    }));
    if let Some(updates) = config.updates.take() {
        tokio::spawn(follow(current.clone(), updates));
    }
    let shared = Shared {
        current,
        config: Arc::new(config),
        http,
    };
    Ok(Router::new().fallback(handle).with_state(shared))
}

/// Serve until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    axum::serve(listener, router(config)?)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| e.to_string())
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn handle(State(s): State<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if path == "/ping" {
        return (StatusCode::OK, "{\"status\":\"Healthy\"}").into_response();
    }
    if !is_invocation_path(&path, &s.config.invocation_path) {
        log(&format!("{method} {path} -> 404 (not the invocation path)"));
        return json_response(
            StatusCode::NOT_FOUND,
            json!({
                "message": "No runtime at this path",
                "invocationPath": s.config.invocation_path,
            }),
        );
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let verdict = match authorization.and_then(bearer) {
        None => Err(authz::missing_bearer(authorization)),
        Some(token) => s.verify(token).await,
    };
    if let Err(rejection) = verdict {
        log(&format!(
            "{method} invocations -> {} {} ({})",
            rejection.status,
            rejection.message,
            rejection
                .checks
                .iter()
                .map(|c| format!("{}: {}", c.check, c.detail))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        return refuse(&rejection);
    }
    let (response, rpc) = forward(&s, req).await;
    log(&format!(
        "{method} invocations {} -> {} (token accepted, forwarded)",
        rpc.as_deref().unwrap_or("-"),
        response.status().as_u16()
    ));
    response
}

/// One line on stderr per request (never the token); a closed stderr is not an error.
fn log(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The refusal as AgentCore answers it (`{"message": …}`), plus the failing checks.
pub fn refuse(r: &Rejection) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = json_response(
        status,
        json!({
            "message": r.message,
            "checks": r.checks,
        }),
    );
    let challenge = authz::challenge(r);
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1), and those the
/// proxy sets itself.
fn passes(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "host"
            | "authorization"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if passes(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// The JSON-RPC method of a request body (for the log), if it is one.
pub fn rpc_method(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("method")?.as_str().map(String::from)
}

/// Forward to the upstream; the response, and the JSON-RPC method forwarded.
async fn forward(s: &Shared, req: Request) -> (Response, Option<String>) {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            let r = json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"message": format!("request body not read: {e}")}),
            );
            return (r, None);
        }
    };
    let rpc = rpc_method(&body);
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    let runtime_session = match parts.headers.get(RUNTIME_SESSION_HEADER) {
        Some(v) => v.clone(),
        None => match HeaderValue::from_str(&format!("local-{}", uuid::Uuid::new_v4())) {
            Ok(v) => {
                headers.insert(RUNTIME_SESSION_HEADER, v.clone());
                v
            }
            Err(_) => HeaderValue::from_static("local-session"),
        },
    };
    let upstream = s
        .http
        .request(parts.method, &s.config.upstream)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let up = match upstream {
        Ok(r) => r,
        Err(e) => {
            let r = json_response(
                StatusCode::BAD_GATEWAY,
                json!({"message": format!(
                    "the MCP server at {} did not answer: {}",
                    s.config.upstream,
                    e.without_url()
                )}),
            );
            return (r, rpc);
        }
    };
    let status = up.status();
    let mut out_headers = HeaderMap::new();
    copy_headers(up.headers(), &mut out_headers);
    out_headers.insert(RUNTIME_SESSION_HEADER, runtime_session);
    debug_assert!(passes(&HeaderName::from_static(MCP_SESSION_HEADER)));
    // Stream the body through: an event stream may stay open.
    let stream = futures::stream::unfold(Some(up), |state| async move {
        let mut up = state?;
        match up.chunk().await {
            Ok(Some(bytes)) => Some((Ok::<Bytes, reqwest::Error>(bytes), Some(up))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    *response.headers_mut() = out_headers;
    (response, rpc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str =
        "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/mcp_server_ac-AbC123";

    /// Fetches that fail `failures` times then succeed; the waits asked for, and the
    /// number of fetches made.
    async fn retried(
        failures: usize,
        superseded_after: Option<usize>,
    ) -> (Option<&'static str>, Vec<Duration>, usize) {
        use std::sync::Mutex;
        let attempts = Mutex::new(0usize);
        let waits = Mutex::new(Vec::new());
        let newer = tokio::sync::Notify::new();
        let got = fetch_until(
            || {
                let n = {
                    let mut a = attempts.lock().expect("attempts");
                    *a += 1;
                    *a
                };
                if superseded_after == Some(n) {
                    newer.notify_one();
                }
                std::future::ready(if n > failures {
                    Ok("keys")
                } else {
                    Err("unreachable issuer")
                })
            },
            newer.notified(),
            |d| {
                waits.lock().expect("waits").push(d);
                std::future::ready(())
            },
        )
        .await;
        let waits = waits.lock().expect("waits").clone();
        let attempts = *attempts.lock().expect("attempts");
        (got, waits, attempts)
    }

    #[tokio::test]
    async fn keys_are_fetched_again_with_a_bounded_backoff_until_they_come() {
        let s = Duration::from_secs;
        let (got, waits, attempts) = retried(0, None).await;
        assert_eq!((got, waits, attempts), (Some("keys"), vec![], 1));
        let (got, waits, attempts) = retried(8, None).await;
        assert_eq!(got, Some("keys"));
        assert_eq!(
            waits,
            [s(1), s(2), s(4), s(8), s(16), s(30), s(30), s(30)],
            "1s doubling to 30s"
        );
        assert_eq!(attempts, 9);
    }

    #[tokio::test]
    async fn a_newer_authorizer_ends_the_retries() {
        // The third fetch fails as the newer authorizer arrives: no fourth one.
        let (got, _, attempts) = retried(usize::MAX, Some(3)).await;
        assert_eq!((got, attempts), (None, 3));
    }

    #[test]
    fn the_invocation_path_encodes_the_arn() {
        let p = invocation_path(ARN);
        assert_eq!(
            p,
            "/runtimes/arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A123456789012%3Aruntime%2Fmcp_server_ac-AbC123/invocations"
        );
        assert!(is_invocation_path(&p, &p));
        assert!(is_invocation_path(
            "/runtimes/arn%3aaws%3abedrock-agentcore%3aus-east-1%3a123456789012%3aruntime%2fmcp_server_ac-AbC123/invocations",
            &p
        ));
        assert!(!is_invocation_path("/runtimes/other/invocations", &p));
        assert!(!is_invocation_path("/mcp", &p));
    }

    #[test]
    fn the_log_names_the_json_rpc_method() {
        for (body, want) in [
            (
                &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#[..],
                Some("tools/call"),
            ),
            (
                br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                Some("notifications/initialized"),
            ),
            (br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, None),
            (b"not json", None),
        ] {
            assert_eq!(rpc_method(body).as_deref(), want);
        }
    }

    #[test]
    fn bearer_tokens_are_taken_from_the_authorization_header() {
        for (header, want) in [
            ("Bearer abc.def.ghi", Some("abc.def.ghi")),
            ("bearer   abc ", Some("abc")),
            ("BEARER x", Some("x")),
            ("Bearer ", None),
            ("Bearer", None),
            ("Basic dXNlcg==", None),
            ("AWS4-HMAC-SHA256 Credential=x", None),
            ("", None),
        ] {
            assert_eq!(bearer(header), want, "{header:?}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_the_token_stay_behind() {
        let mut from = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer secret-token"),
            ("host", "127.0.0.1:8080"),
            ("connection", "keep-alive"),
            ("content-length", "12"),
            ("mcp-session-id", "s1"),
            (RUNTIME_SESSION_HEADER, "r1"),
            ("mcp-protocol-version", "2025-06-18"),
            ("content-type", "application/json"),
        ] {
            from.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let mut to = HeaderMap::new();
        copy_headers(&from, &mut to);
        let mut names: Vec<&str> = to.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "content-type",
                "mcp-protocol-version",
                "mcp-session-id",
                RUNTIME_SESSION_HEADER
            ]
        );
    }
}
