//! A small MCP client over streamable HTTP, enough to list and call what a server offers:
//! `initialize` (keeping the `Mcp-Session-Id` the server may hand out, and the protocol
//! version it chose), `notifications/initialized`, then requests. Answers may come as
//! `application/json` or as a `text/event-stream`; both are read. Each request carries
//! the bearer token, or is signed with SigV4 for runtimes without an authorizer.
//!
//! Nothing here puts the token into an error: HTTP error bodies are scrubbed of it.

use std::fmt;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::error::chain;

/// The protocol version this client asks for.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// AgentCore's session header (at least 33 characters).
pub const RUNTIME_SESSION_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-session-id";
/// The MCP session header.
pub const MCP_SESSION_HEADER: &str = "mcp-session-id";

/// How requests are authenticated.
pub enum Auth {
    None,
    Bearer(SecretString),
    SigV4 {
        credentials: aws_credential_types::Credentials,
        region: String,
    },
}

impl Auth {
    pub fn mode(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Bearer(_) => "bearer",
            Self::SigV4 { .. } => "sigv4",
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The server answered with an HTTP error.
    Http {
        status: u16,
        /// The `WWW-Authenticate` header, if any.
        challenge: Option<String>,
        /// The body, shortened, without the token.
        body: String,
    },
    /// The server answered with a JSON-RPC error.
    Rpc {
        code: i64,
        message: String,
        data: Option<Value>,
    },
    /// No answer (connection refused, timeout, TLS).
    Transport(String),
    /// An answer that is not MCP.
    Protocol(String),
}

impl Error {
    /// The HTTP status of a refused request.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http {
                status,
                challenge,
                body,
            } => {
                write!(f, "HTTP {status}")?;
                if let Some(m) = error_message(body) {
                    write!(f, ": {m}")?;
                } else if !body.trim().is_empty() {
                    write!(f, ": {}", body.trim())?;
                }
                if let Some(c) = challenge {
                    write!(f, " (WWW-Authenticate: {c})")?;
                }
                Ok(())
            }
            Self::Rpc {
                code,
                message,
                data,
            } => {
                write!(
                    f,
                    "the server answered with JSON-RPC error {code}: {message}"
                )?;
                if let Some(d) = data {
                    write!(f, " ({d})")?;
                }
                Ok(())
            }
            Self::Transport(e) => write!(f, "no answer: {e}"),
            Self::Protocol(e) => write!(f, "not an MCP answer: {e}"),
        }
    }
}

/// The `message` of a JSON error body (`{"message": "..."}`, as AgentCore sends), if any.
pub fn error_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v.get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str)
        .map(String::from)
}

/// Incremental reader of a `text/event-stream`: feed it bytes as they come, get the
/// `data` of each complete event.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: String,
    data: Vec<String>,
}

impl SseParser {
    /// Add text; returns the data of the events it completes (multi-line data joined with
    /// '\n', events with empty data skipped).
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buf.push_str(text);
        let mut events = Vec::new();
        while let Some(eol) = self.buf.find('\n') {
            let mut line: String = self.buf.drain(..=eol).collect();
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
            if line.is_empty() {
                // An event whose data is empty (a priming event) is not dispatched.
                let data = std::mem::take(&mut self.data).join("\n");
                if !data.is_empty() {
                    events.push(data);
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                self.data
                    .push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
            }
            // Comments (':'), event, id and retry fields carry nothing we need.
        }
        events
    }

    /// The data of an event the stream ended without a blank line after.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.trim_end_matches(['\r', '\n']);
        if let Some(d) = rest.strip_prefix("data:") {
            self.data.push(d.strip_prefix(' ').unwrap_or(d).to_string());
        }
        let data = std::mem::take(&mut self.data).join("\n");
        (!data.is_empty()).then_some(data)
    }
}

/// The answer to request `id` among JSON-RPC messages (one message or a batch): its
/// `result`, or its error. `Ok(None)` when the messages hold no answer to `id`
/// (notifications, requests from the server, answers to other ids).
pub fn answer(messages: &Value, id: u64) -> Result<Option<Value>, Error> {
    let list: Vec<&Value> = match messages {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    for m in list {
        if m.get("id").and_then(Value::as_u64) != Some(id) || m.get("method").is_some() {
            continue;
        }
        if let Some(e) = m.get("error") {
            return Err(Error::Rpc {
                code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("(no message)")
                    .to_string(),
                data: e.get("data").cloned(),
            });
        }
        return match m.get("result") {
            Some(r) => Ok(Some(r.clone())),
            None => Err(Error::Protocol(format!(
                "the answer to request {id} has neither result nor error"
            ))),
        };
    }
    Ok(None)
}

/// The answer to `id` in a whole `application/json` body.
pub fn answer_in_json(body: &str, id: u64) -> Result<Value, Error> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| Error::Protocol(format!("the JSON body does not parse: {e}")))?;
    answer(&v, id)?
        .ok_or_else(|| Error::Protocol(format!("the body holds no answer to request {id}")))
}

/// The answer to `id` in a whole `text/event-stream` body.
pub fn answer_in_sse(body: &str, id: u64) -> Result<Value, Error> {
    let mut parser = SseParser::default();
    let mut events = parser.push(body);
    events.extend(parser.finish());
    for data in events {
        if let Some(r) = answer_in_event(&data, id)? {
            return Ok(r);
        }
    }
    Err(Error::Protocol(format!(
        "the event stream ended without an answer to request {id}"
    )))
}

/// How much of `bytes` is whole UTF-8 characters: all but an incomplete character at the
/// end (which waits for the next chunk). Invalid sequences count as whole (they become
/// U+FFFD), so they never hold the stream up.
fn complete_utf8(bytes: &[u8]) -> usize {
    let mut pos = 0;
    loop {
        match std::str::from_utf8(&bytes[pos..]) {
            Ok(_) => return bytes.len(),
            Err(e) => match e.error_len() {
                Some(n) => pos += e.valid_up_to() + n,
                None => return pos + e.valid_up_to(),
            },
        }
    }
}

fn answer_in_event(data: &str, id: u64) -> Result<Option<Value>, Error> {
    if data.trim().is_empty() {
        return Ok(None); // priming events carry an empty data line
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| Error::Protocol(format!("an event's data is not JSON: {e}")))?;
    answer(&v, id)
}

const MAX_ERROR_BODY: usize = 600;

/// An MCP session with one server.
pub struct Client {
    http: reqwest::Client,
    url: String,
    auth: Auth,
    runtime_session: String,
    mcp_session: Option<String>,
    protocol: Option<String>,
    next_id: u64,
    /// The server's `initialize` result.
    pub server: Value,
}

impl Client {
    /// Connect: `initialize`, then `notifications/initialized`.
    pub async fn connect(url: &str, auth: Auth, timeout: Duration) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Transport(format!("cannot set up HTTP: {e}")))?;
        let mut client = Self {
            http,
            url: url.to_string(),
            auth,
            runtime_session: format!("agentcore-controller-mcp-{}", uuid::Uuid::new_v4()),
            mcp_session: None,
            protocol: None,
            next_id: 0,
            server: Value::Null,
        };
        let result = client
            .request(
                "initialize",
                json!({
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "agentcore-controller", "version": env!("CARGO_PKG_VERSION")},
                }),
            )
            .await?;
        client.protocol = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .map(String::from);
        client.server = result;
        client.notify("notifications/initialized").await?;
        Ok(client)
    }

    /// The MCP session id the server handed out, if any.
    pub fn mcp_session(&self) -> Option<&str> {
        self.mcp_session.as_deref()
    }

    /// Whether the server declared capability `name` (tools, prompts, resources, …).
    pub fn offers(&self, name: &str) -> bool {
        self.server
            .get("capabilities")
            .and_then(|c| c.get(name))
            .is_some_and(|v| !v.is_null())
    }

    /// Send request `method` and wait for its result. A JSON-RPC error comes back without
    /// the bearer token, should the server quote it.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        match self.exchange(method, params).await {
            Err(Error::Rpc {
                code,
                message,
                data,
            }) => Err(Error::Rpc {
                code,
                message: self.scrub(&message),
                data: data.map(|d| {
                    let text = self.scrub(&d.to_string());
                    serde_json::from_str(&text).unwrap_or(Value::String(text))
                }),
            }),
            other => other,
        }
    }

    async fn exchange(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut response = self.post(&message).await?;
        let content_type = header(&response, "content-type").unwrap_or_default();
        if content_type.starts_with("text/event-stream") {
            let mut parser = SseParser::default();
            let mut pending = Vec::new();
            loop {
                let chunk = response
                    .chunk()
                    .await
                    .map_err(|e| Error::Transport(chain(&e.without_url())))?;
                let (events, end) = match chunk {
                    Some(bytes) => {
                        pending.extend_from_slice(&bytes);
                        // Only whole UTF-8 characters go to the parser.
                        let valid = complete_utf8(&pending);
                        let text = String::from_utf8_lossy(&pending[..valid]).into_owned();
                        pending.drain(..valid);
                        (parser.push(&text), false)
                    }
                    None => (parser.finish().into_iter().collect(), true),
                };
                for data in &events {
                    if let Some(r) = answer_in_event(data, id)? {
                        return Ok(r);
                    }
                }
                if end {
                    return Err(Error::Protocol(format!(
                        "the event stream for {method} ended without an answer"
                    )));
                }
            }
        } else if content_type.starts_with("application/json") {
            let body = response
                .text()
                .await
                .map_err(|e| Error::Transport(chain(&e.without_url())))?;
            answer_in_json(&body, id)
        } else {
            Err(Error::Protocol(format!(
                "{method} was answered with content type {content_type:?}, not application/json or text/event-stream"
            )))
        }
    }

    /// Send a notification (no answer expected beyond 202 Accepted).
    pub async fn notify(&mut self, method: &str) -> Result<(), Error> {
        let message = json!({"jsonrpc": "2.0", "method": method});
        self.post(&message).await.map(|_| ())
    }

    /// Every page of a list request (`tools/list`, …): the items under `key`.
    pub async fn list(&mut self, method: &str, key: &str) -> Result<Vec<Value>, Error> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.request(method, params).await?;
            if let Some(list) = page.get(key).and_then(Value::as_array) {
                items.extend(list.iter().cloned());
            }
            cursor = page
                .get("nextCursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(String::from);
            if cursor.is_none() || items.len() > 100_000 {
                return Ok(items);
            }
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("content-type", "application/json".to_string()),
            ("accept", "application/json, text/event-stream".to_string()),
            (RUNTIME_SESSION_HEADER, self.runtime_session.clone()),
        ];
        if let Some(s) = &self.mcp_session {
            h.push((MCP_SESSION_HEADER, s.clone()));
        }
        if let Some(p) = &self.protocol {
            h.push(("mcp-protocol-version", p.clone()));
        }
        h
    }

    async fn post(&mut self, message: &Value) -> Result<reqwest::Response, Error> {
        let body = message.to_string();
        let base = self.headers();
        let mut headers: Vec<(String, String)> = base
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        match &self.auth {
            Auth::None => {}
            Auth::Bearer(token) => headers.push((
                "authorization".to_string(),
                format!("Bearer {}", token.expose_secret()),
            )),
            Auth::SigV4 {
                credentials,
                region,
            } => headers.extend(
                crate::token::probe::sigv4_headers(
                    &self.url,
                    &body,
                    &base,
                    credentials.clone(),
                    region,
                    SystemTime::now(),
                )
                .map_err(Error::Transport)?,
            ),
        }
        let mut req = self.http.post(&self.url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let response = req.send().await.map_err(|e| {
            if e.is_timeout() {
                Error::Transport(format!("{} did not answer in time", self.url))
            } else {
                Error::Transport(format!("{}: {}", self.url, chain(&e.without_url())))
            }
        })?;
        if let Some(s) = header(&response, MCP_SESSION_HEADER) {
            self.mcp_session = Some(s);
        }
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let challenge = header(&response, "www-authenticate");
        let text = response.text().await.unwrap_or_default();
        let mut body = self.scrub(&text);
        if body.len() > MAX_ERROR_BODY {
            let mut cut = MAX_ERROR_BODY;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            body.push('…');
        }
        Err(Error::Http {
            status: status.as_u16(),
            challenge: challenge.map(|c| self.scrub(&c)),
            body,
        })
    }

    /// `text` without the bearer token.
    fn scrub(&self, text: &str) -> String {
        match &self.auth {
            Auth::Bearer(t) if !t.expose_secret().is_empty() => {
                text.replace(t.expose_secret(), "***")
            }
            _ => text.to_string(),
        }
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that quotes the Authorization header back, in an HTTP error body (mode
    /// `http`) or a JSON-RPC error (mode `rpc`): the client's error never carries it.
    async fn echoing_server(mode: &'static str) -> String {
        use axum::http::{HeaderMap, StatusCode};
        let app = axum::Router::new().route(
            "/mcp",
            axum::routing::post(move |headers: HeaderMap| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let rpc = json!({"jsonrpc": "2.0", "id": 1,
                    "error": {"code": -32000, "message": format!("bad {auth}"), "data": {"got": auth}}});
                match mode {
                    "http" => (
                        StatusCode::UNAUTHORIZED,
                        [("content-type", "text/plain")],
                        format!("refused {auth}"),
                    ),
                    _ => (
                        StatusCode::OK,
                        [("content-type", "application/json")],
                        rpc.to_string(),
                    ),
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/mcp")
    }

    #[tokio::test]
    async fn errors_never_carry_the_bearer_token() {
        let token = "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJlLXNlY3JldA";
        for mode in ["http", "rpc"] {
            let url = echoing_server(mode).await;
            let auth = Auth::Bearer(SecretString::from(token.to_string()));
            let err = match Client::connect(&url, auth, Duration::from_secs(10)).await {
                Ok(_) => panic!("{mode}: the server refuses"),
                Err(e) => e,
            };
            let shown = format!("{err} {err:?}");
            assert!(
                shown.contains("***"),
                "{mode}: the quote is there, masked: {shown}"
            );
            assert!(!shown.contains(token), "{mode}: {shown}");
        }
    }

    #[test]
    fn whole_utf8_characters_only_and_invalid_bytes_never_stall() {
        let e_acute = "é".as_bytes(); // 2 bytes
        let cases: Vec<(Vec<u8>, usize)> = vec![
            (b"abc".to_vec(), 3),
            ([b"ab", &e_acute[..1]].concat(), 2),
            ([b"ab", e_acute].concat(), 4),
            (b"a\xffb".to_vec(), 3),
            ([b"a\xff", &e_acute[..1]].concat(), 2),
            (b"\xff\xfe\xfd".to_vec(), 3),
            (Vec::new(), 0),
        ];
        for (bytes, want) in cases {
            assert_eq!(complete_utf8(&bytes), want, "{bytes:?}");
        }
    }

    /// Chunks as they arrive, the data of the events each completes, what `finish` gives.
    type SseCase = (
        &'static [&'static str],
        &'static [&'static [&'static str]],
        Option<&'static str>,
    );

    #[test]
    fn event_streams_are_read_event_by_event_across_chunks() {
        let cases: &[SseCase] = &[
            (&["data: {\"a\":1}\n\n"], &[&["{\"a\":1}"]], None),
            (
                &[
                    "id: 0\nretry: 3000\ndata:\n\n",
                    "event: message\ndata: x\n\n",
                ],
                &[&[], &["x"]],
                None,
            ),
            (
                &["data: first\r\ndata: second\r\n\r\n"],
                &[&["first\nsecond"]],
                None,
            ),
            (
                &["da", "ta: sp", "lit\n", "\n"],
                &[&[], &[], &[], &["split"]],
                None,
            ),
            (
                &[": keep-alive\n\n", "data:no-space\n\n"],
                &[&[], &["no-space"]],
                None,
            ),
            (&["data: tail"], &[&[]], Some("tail")),
            (&["data: a\n\ndata: b\n\n"], &[&["a", "b"]], None),
        ];
        for (chunks, want, tail) in cases {
            let mut p = SseParser::default();
            for (chunk, want) in chunks.iter().zip(want.iter()) {
                assert_eq!(p.push(chunk), want.to_vec(), "{chunks:?}");
            }
            assert_eq!(p.finish().as_deref(), *tail, "{chunks:?}");
        }
    }

    #[test]
    fn answers_are_found_in_json_and_event_stream_bodies() {
        let ok = r#"{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"5"}]}}"#;
        let err = r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"tool not found","data":{"name":"nope"}}}"#;
        let progress =
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}"#;
        let server_request =
            r#"{"jsonrpc":"2.0","id":2,"method":"sampling/createMessage","params":{}}"#;
        let other = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        let five = json!({"content":[{"type":"text","text":"5"}]});
        let rpc_error = Error::Rpc {
            code: -32602,
            message: "tool not found".into(),
            data: Some(json!({"name": "nope"})),
        };
        let json_cases: Vec<(String, Result<Value, Error>)> = vec![
            (ok.to_string(), Ok(five.clone())),
            (err.to_string(), Err(rpc_error.clone())),
            (format!("[{other},{ok}]"), Ok(five.clone())),
            (
                other.to_string(),
                Err(Error::Protocol(
                    "the body holds no answer to request 2".into(),
                )),
            ),
            (
                r#"{"jsonrpc":"2.0","id":2}"#.to_string(),
                Err(Error::Protocol(
                    "the answer to request 2 has neither result nor error".into(),
                )),
            ),
        ];
        for (body, want) in json_cases {
            assert_eq!(answer_in_json(&body, 2), want, "{body}");
        }
        assert!(
            matches!(answer_in_json("<html>", 2), Err(Error::Protocol(m)) if m.contains("does not parse"))
        );

        let sse_cases: Vec<(String, Result<Value, Error>)> = vec![
            (format!("data: {ok}\n\n"), Ok(five.clone())),
            // A priming event, a notification and a request from the server come first.
            (
                format!(
                    "id: 0\nretry: 3000\ndata:\n\ndata: {progress}\n\ndata: {server_request}\n\nevent: message\ndata: {ok}\n\n"
                ),
                Ok(five.clone()),
            ),
            (format!("data: {err}\n\n"), Err(rpc_error)),
            (format!("data: {ok}"), Ok(five)),
            (
                format!("data: {progress}\n\n"),
                Err(Error::Protocol(
                    "the event stream ended without an answer to request 2".into(),
                )),
            ),
        ];
        for (body, want) in sse_cases {
            assert_eq!(answer_in_sse(&body, 2), want, "{body}");
        }
    }

    #[test]
    fn http_errors_read_well() {
        let e = Error::Http {
            status: 403,
            challenge: Some("Bearer error=\"insufficient_scope\"".into()),
            body: r#"{"message":"Claim 'client_id' value mismatch with configuration"}"#.into(),
        };
        assert_eq!(
            e.to_string(),
            "HTTP 403: Claim 'client_id' value mismatch with configuration (WWW-Authenticate: Bearer error=\"insufficient_scope\")"
        );
        assert_eq!(e.status(), Some(403));
        let e = Error::Http {
            status: 502,
            challenge: None,
            body: "upstream down\n".into(),
        };
        assert_eq!(e.to_string(), "HTTP 502: upstream down");
    }
}
