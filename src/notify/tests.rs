//! The interface, and delivery to real HTTP receivers on loopback (real time: sockets
//! and paused time do not mix; the tuning shortens every wait).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use super::*;

/// In the receivers' URLs, to show that they never get out.
const SECRET_PATH: &str = "/services/T000/B000/s3cr3t-path";
const SECRET_QUERY: &str = "token=s3cr3t-query";

fn quick() -> Tuning {
    Tuning {
        queue: QUEUE,
        burst: 100,
        refill: REFILL,
        attempts: ATTEMPTS,
        backoff: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        retry_after_max: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
    }
}

/// One request a test receiver got, and its answer.
#[derive(Debug, Clone)]
struct Got {
    content_type: String,
    body: Value,
    status: u16,
}

impl Got {
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
}

/// A webhook receiver that records what it gets and answers from a script (200 once it
/// is done). It can hold its first request until told to answer.
#[derive(Default)]
struct Hook {
    got: Mutex<Vec<Got>>,
    script: Mutex<VecDeque<(u16, Option<&'static str>)>>,
    hold: Mutex<Option<oneshot::Receiver<()>>>,
    entered: Notify,
}

impl Hook {
    fn got(&self) -> Vec<Got> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits (up to 3 s) until `n` requests came.
    async fn wait_for(&self, n: usize) -> Vec<Got> {
        // Generous (the machines are shared); a test that must tell a delay apart uses a
        // longer one (a silent receiver's timeout is 30 s).
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.got();
            if got.len() >= n || Instant::now() > until {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn hook(State(hook): State<Arc<Hook>>, headers: HeaderMap, body: Bytes) -> Response {
    let hold = hook.hold.lock().expect("lock").take();
    hook.entered.notify_one();
    if let Some(released) = hold {
        let _ = released.await;
    }
    let (status, retry_after) = hook
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or((200, None));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    hook.got.lock().expect("lock").push(Got {
        content_type,
        body,
        status,
    });
    let mut response = StatusCode::from_u16(status)
        .expect("status")
        .into_response();
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(after));
    }
    response
}

/// A receiver answering `script`, then 200; its URL has a secret path and query.
async fn receiver(script: &[(u16, Option<&'static str>)]) -> (String, Arc<Hook>) {
    let state = Arc::new(Hook::default());
    state.script.lock().expect("lock").extend(script);
    let app = Router::new()
        .route(SECRET_PATH, post(hook))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}{SECRET_PATH}?{SECRET_QUERY}"), state)
}

/// A receiver that accepts connections and never answers.
async fn silent_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}{SECRET_PATH}")
}

fn json(url: &str) -> Receiver {
    Receiver::new(url, Format::Json).expect("receiver")
}

fn drift(n: usize) -> Event {
    Event::new(Reason::DriftCorrected, Severity::Warning, format!("n{n}")).object("Role", "r")
}

fn outcome(metrics: &Metrics, outcome: &'static str) -> u64 {
    metrics
        .notifications
        .get_or_create(&NotificationLabels { outcome })
        .get()
}

fn messages(got: &[Got]) -> Vec<String> {
    got.iter().map(|g| g.message().to_string()).collect()
}

#[test]
fn formats_parse_and_print() {
    for (text, format) in [("json", Format::Json), ("slack", Format::Slack)] {
        assert_eq!(text.parse::<Format>(), Ok(format));
        assert_eq!(format.to_string(), text);
    }
    for bad in ["", "JSON", "teams", "slack "] {
        let err = bad.parse::<Format>().expect_err(bad);
        assert!(err.contains("json or slack"), "{err}");
    }
    assert_eq!(Format::default(), Format::Json);
}

#[test]
fn receivers_take_only_http_and_https_urls() {
    for ok in [
        "http://127.0.0.1:8080/hook",
        "https://hooks.slack.com/services/T/B/x",
        "https://user:pass@example.com/x?token=y",
        "HTTPS://Example.COM",
        " https://example.com/padded ",
    ] {
        let r = Receiver::new(ok, Format::Slack).expect(ok);
        assert!(r.url.starts_with("http"), "{}", r.url);
        assert_eq!(r.format, Format::Slack);
    }
    // (URL, what the refusal says)
    let refused = [
        ("ftp://example.com/s3cr3t", "not ftp:"),
        ("file:///etc/s3cr3t", "not file:"),
        ("mailto:s3cr3t@example.com", "not mailto:"),
        ("unix:/run/s3cr3t.sock", "not unix:"),
        ("example.com/s3cr3t", "not a valid URL"),
        ("/s3cr3t", "not a valid URL"),
        ("", "not a valid URL"),
        ("http://", "not a valid URL"),
        ("https://exa mple.com/s3cr3t", "not a valid URL"),
        ("http://[::1/s3cr3t", "not a valid URL"),
    ];
    for (url, says) in refused {
        let err = Receiver::new(url, Format::Json).expect_err(url);
        assert!(err.contains(says), "{url}: {err}");
        assert!(!err.contains("s3cr3t"), "{url}: {err}");
    }
}

#[test]
fn receivers_are_named_by_scheme_host_and_port_only() {
    // (URL, its redacted form)
    let cases = [
        (
            "https://hooks.slack.com/services/T0/B0/XXXX",
            "https://hooks.slack.com",
        ),
        ("https://user:pass@example.com/x", "https://example.com"),
        (
            "https://user@example.com:8443/x?token=y#f",
            "https://example.com:8443",
        ),
        (
            "http://127.0.0.1:9000/hook?key=s3cr3t",
            "http://127.0.0.1:9000",
        ),
        ("http://example.com:80/x", "http://example.com"), // the default port is implied
        ("https://example.com:443/x", "https://example.com"),
        ("http://[::1]:8080/x", "http://[::1]:8080"),
        ("HTTPS://Example.COM/X", "https://example.com"),
        ("not a url with s3cr3t", "<invalid URL>"),
        ("mailto:s3cr3t@example.com", "mailto://<no host>"),
    ];
    for (url, expected) in cases {
        assert_eq!(redacted(url), expected, "{url}");
    }
    let r = json("https://user:pass@example.com/s3cr3t?token=s3cr3t");
    let shown = format!("{r:?}");
    assert!(shown.contains("https://example.com"), "{shown}");
    for secret in ["user", "pass", "s3cr3t"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn a_disabled_notifier_sends_nothing() {
    let n = Notifier::disabled();
    assert!(!n.is_enabled());
    n.send(drift(1));
    assert!(!Notifier::default().is_enabled());
    assert_eq!(format!("{n:?}"), "Notifier { receivers: [] }");
    // Outside a runtime there is nothing to deliver on: off, without a panic.
    let outside = Notifier::spawn(
        vec![json("http://127.0.0.1:9/x")],
        "test".into(),
        Metrics::new(None),
    );
    assert!(!outside.is_enabled());
}

#[tokio::test]
async fn no_receivers_means_disabled() {
    let n = Notifier::spawn(vec![], "test".into(), Metrics::new(None));
    assert!(!n.is_enabled());
}

#[tokio::test]
async fn events_arrive_once_in_order_as_json() {
    let (url, hook) = receiver(&[]).await;
    let metrics = Metrics::new(None);
    let n = Notifier::spawn_tuned(vec![json(&url)], "prod".into(), metrics.clone(), quick());
    assert!(n.is_enabled());
    let shown = format!("{n:?}");
    assert!(
        !shown.contains("s3cr3t") && shown.contains("127.0.0.1"),
        "{shown}"
    );
    for i in 0..20 {
        n.send(drift(i));
    }
    hook.wait_for(20).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = hook.got();
    assert_eq!(
        messages(&got),
        (0..20).map(|i| format!("n{i}")).collect::<Vec<_>>()
    );
    let first = &got[0];
    assert_eq!(first.content_type, "application/json");
    let keys: Vec<&str> = first
        .body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "instance", "time", "reason", "severity", "object", "message", "fields", "revision"
        ]
    );
    assert_eq!(first.body["instance"], "prod");
    assert_eq!(first.body["reason"], "driftCorrected");
    assert_eq!(first.body["severity"], "warning");
    assert_eq!(
        first.body["object"],
        serde_json::json!({"kind": "Role", "name": "r"})
    );
    let time = first.body["time"].as_str().expect("time");
    assert!(
        humantime::parse_rfc3339(time).is_ok() && time.ends_with('Z'),
        "{time}"
    );
    assert_eq!(outcome(&metrics, "sent"), 20);
    assert!(
        metrics
            .render()
            .contains("agentcore_controller_notifications_total{outcome=\"sent\"} 20"),
        "{}",
        metrics.render()
    );
}

#[tokio::test]
async fn repeats_are_suppressed_once_for_all_receivers() {
    let (a, hook_a) = receiver(&[]).await;
    let (b, hook_b) = receiver(&[]).await;
    let metrics = Metrics::new(None);
    let n = Notifier::spawn_tuned(
        vec![
            json(&a),
            Receiver::new(&b, Format::Slack).expect("receiver"),
        ],
        "prod".into(),
        metrics.clone(),
        quick(),
    );
    let failed = || {
        Event::new(Reason::ReconcileFailed, Severity::Error, "AccessDenied")
            .object("AgentRuntime", "mcp")
    };
    let recovered =
        Event::new(Reason::Recovered, Severity::Info, "ready").object("AgentRuntime", "mcp");
    for event in [
        failed(),
        failed(),
        failed(),
        recovered.clone(),
        recovered,
        failed(),
    ] {
        n.send(event);
    }
    hook_a.wait_for(3).await;
    hook_b.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reasons: Vec<Value> = hook_a
        .got()
        .iter()
        .map(|g| g.body["reason"].clone())
        .collect();
    assert_eq!(reasons, ["reconcileFailed", "recovered", "reconcileFailed"]);
    let texts: Vec<Value> = hook_b
        .got()
        .iter()
        .map(|g| g.body["text"].clone())
        .collect();
    assert_eq!(
        texts,
        [
            "[prod] ❌ AgentRuntime/mcp: reconcile failed: AccessDenied",
            "[prod] ✅ AgentRuntime/mcp: recovered: ready",
            "[prod] ❌ AgentRuntime/mcp: reconcile failed: AccessDenied",
        ]
    );
    assert_eq!(outcome(&metrics, "suppressed"), 3); // counted once, not per receiver
    assert_eq!(outcome(&metrics, "sent"), 6);
}

#[tokio::test]
async fn a_receiver_answering_503_twice_gets_the_event_once_after_retries() {
    let (url, hook) = receiver(&[(503, Some("1")), (503, None)]).await;
    let metrics = Metrics::new(None);
    let n = Notifier::spawn_tuned(vec![json(&url)], "prod".into(), metrics.clone(), quick());
    n.send(drift(1));
    n.send(drift(2));
    hook.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = hook.got();
    let seen: Vec<(u16, String)> = got
        .iter()
        .map(|g| (g.status, g.message().to_string()))
        .collect();
    assert_eq!(
        seen,
        [
            (503, "n1".into()),
            (503, "n1".into()),
            (200, "n1".into()),
            (200, "n2".into()),
        ]
    );
    // The same body each time.
    assert_eq!(got[0].body, got[2].body);
    assert_eq!(outcome(&metrics, "sent"), 2);
    assert_eq!(outcome(&metrics, "failed"), 0);
}

#[tokio::test]
async fn a_receiver_answering_400_is_not_retried() {
    let (url, hook) = receiver(&[(400, None)]).await;
    let metrics = Metrics::new(None);
    let n = Notifier::spawn_tuned(vec![json(&url)], "prod".into(), metrics.clone(), quick());
    n.send(drift(1));
    hook.wait_for(1).await;
    // Well past every backoff of the tuning: no second attempt.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.got().len(), 1);
    assert_eq!(outcome(&metrics, "failed"), 1);
    // The receiver still gets what follows.
    n.send(drift(2));
    let got = hook.wait_for(2).await;
    assert_eq!(got.iter().map(|g| g.status).collect::<Vec<_>>(), [400, 200]);
    assert_eq!(outcome(&metrics, "sent"), 1);
}

#[tokio::test]
async fn a_failing_receiver_is_given_up_on_after_five_attempts() {
    let (url, hook) = receiver(&[(500, None); 5]).await;
    let metrics = Metrics::new(None);
    let n = Notifier::spawn_tuned(vec![json(&url)], "prod".into(), metrics.clone(), quick());
    n.send(drift(1));
    n.send(drift(2));
    let got = hook.wait_for(6).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        messages(&got),
        ["n1", "n1", "n1", "n1", "n1", "n2"].map(String::from)
    );
    assert_eq!(hook.got().len(), 6);
    assert_eq!(outcome(&metrics, "failed"), 1);
    assert_eq!(outcome(&metrics, "sent"), 1);
}

#[tokio::test]
async fn a_silent_receiver_delays_neither_send_nor_other_receivers() {
    let silent = silent_receiver().await;
    let (url, hook) = receiver(&[]).await;
    let metrics = Metrics::new(None);
    let mut tuning = quick();
    tuning.timeout = Duration::from_secs(30);
    let n = Notifier::spawn_tuned(
        vec![json(&silent), json(&url)],
        "prod".into(),
        metrics.clone(),
        tuning,
    );
    for i in 0..5 {
        n.send(drift(i));
    }
    // Delivered while the silent receiver still holds the first (its timeout is 30 s,
    // longer than `wait_for` waits).
    let got = hook.wait_for(5).await;
    assert_eq!(
        messages(&got),
        ["n0", "n1", "n2", "n3", "n4"].map(String::from)
    );
    // Thousands more while the silent one holds its first: each send returns (it never
    // waits on a receiver; were it to, this loop would not end).
    for i in 0..5_000 {
        n.send(drift(i));
    }
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_says_so() {
    let (url, hook) = receiver(&[]).await;
    let (release, held) = oneshot::channel();
    *hook.hold.lock().expect("lock") = Some(held);
    let metrics = Metrics::new(None);
    let mut tuning = quick();
    tuning.queue = 4;
    let n = Notifier::spawn_tuned(vec![json(&url)], "prod".into(), metrics.clone(), tuning);
    n.send(drift(0));
    tokio::time::timeout(Duration::from_secs(3), hook.entered.notified())
        .await
        .expect("the first request");
    // The receiver holds event 0: of the next ten, the queue keeps the last four.
    for i in 1..=10 {
        n.send(drift(i));
    }
    let _ = release.send(());
    let got = hook.wait_for(5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        messages(&hook.got()),
        ["n0", "n7", "n8", "n9", "n10"].map(String::from)
    );
    assert_eq!(got[0].body.get("droppedBefore"), None);
    assert_eq!(got[1].body["droppedBefore"], 6);
    assert_eq!(got[2].body.get("droppedBefore"), None);
    assert_eq!(outcome(&metrics, "dropped"), 6);
    assert_eq!(outcome(&metrics, "sent"), 5);
}

#[tokio::test]
async fn over_the_rate_limit_events_are_dropped_and_the_next_one_says_so() {
    let (url, hook) = receiver(&[]).await;
    let metrics = Metrics::new(None);
    let mut tuning = quick();
    tuning.burst = 2;
    tuning.refill = Duration::from_secs(1);
    let n = Notifier::spawn_tuned(
        vec![Receiver::new(&url, Format::Slack).expect("receiver")],
        "prod".into(),
        metrics.clone(),
        tuning,
    );
    let started = Instant::now();
    for i in 0..5 {
        n.send(drift(i));
    }
    hook.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hook.got().len(), 2);
    assert_eq!(outcome(&metrics, "dropped"), 3);
    // Once a token is back, the next event tells of the three before it.
    tokio::time::sleep(Duration::from_millis(1100).saturating_sub(started.elapsed())).await;
    n.send(drift(5));
    let got = hook.wait_for(3).await;
    let texts: Vec<&str> = got.iter().filter_map(|g| g.body["text"].as_str()).collect();
    assert_eq!(
        texts,
        [
            "[prod] ⚠️ Role/r: drift corrected: n0",
            "[prod] ⚠️ Role/r: drift corrected: n1",
            "[prod] ⚠️ Role/r: drift corrected: n5\n(3 earlier events were dropped: rate limit)",
        ]
    );
    assert_eq!(outcome(&metrics, "sent"), 3);
}

#[tokio::test]
async fn what_is_queued_is_delivered_after_the_notifier_is_dropped() {
    let (url, hook) = receiver(&[(503, None)]).await;
    let n = Notifier::spawn_tuned(vec![json(&url)], "prod".into(), Metrics::new(None), quick());
    let clone = n.clone();
    n.send(drift(1));
    clone.send(drift(2));
    drop(n);
    drop(clone);
    let got = hook.wait_for(3).await;
    assert_eq!(messages(&got), ["n1", "n1", "n2"].map(String::from));
}

#[tokio::test]
async fn delivery_errors_never_show_the_url() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let silent = silent_receiver().await;
    let (refusing, _hook) = receiver(&[(400, None)]).await;
    let mut tuning = quick();
    tuning.attempts = 2;
    tuning.timeout = Duration::from_millis(200);
    // (receiver, what the error says)
    let cases = [
        (
            format!("http://user:pa55@{closed}{SECRET_PATH}?{SECRET_QUERY}"),
            "gave up after 2 attempts",
        ),
        (format!("{silent}?{SECRET_QUERY}"), "timed out"),
        (refusing, "HTTP 400 Bad Request, not retried"),
    ];
    for (url, says) in cases {
        let delivery =
            deliver::Delivery::new(&json(&url), "prod".into(), Metrics::new(None), tuning)
                .expect("client");
        let err = delivery.post(b"{}".to_vec()).await.expect_err(&url);
        assert!(err.contains(says), "{err}");
        for secret in ["s3cr3t", "pa55", "user", "/services"] {
            assert!(!err.contains(secret), "{err}");
        }
    }
}
