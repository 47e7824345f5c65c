//! Fault injection: the daemon and a one-shot `apply` talk to the emulator through a proxy
//! that answers a fifth of the requests with throttling, HTTP 500/503 or a dropped
//! connection — before the request reaches the emulator, or after it acted on it ("response
//! lost"). Everything must still converge, and nothing may be created twice.

use std::process::Stdio;
use std::time::{Duration, Instant};

use agentcore_controller::aws::Aws;
use serde_json::Value;
use testkit::fault_proxy::{Fault, FaultCounts, FaultProxy};
use testkit::*;

/// Share of requests that get a fault.
const FAULT_RATE: f64 = 0.2;

async fn repository_exists(aws: &Aws, name: &str) -> bool {
    aws.ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .is_ok()
}

/// Exactly one of everything the stack creates, checked against the emulator directly.
async fn assert_no_duplicates(aws: &Aws, names: &StackNames, faults: &[String]) {
    assert_one_of_each(aws, names, &format!("faults: {faults:#?}")).await;
}

fn ready_report(report: &Value) -> bool {
    report["objects"]
        .as_array()
        .is_some_and(|objs| !objs.is_empty() && objs.iter().all(|o| o["state"] == "Ready"))
}

fn assert_every_fault_type(counts: &FaultCounts, faults: &[String]) {
    assert!(counts.throttle > 0, "no throttling injected: {counts}");
    assert!(
        counts.status500 + counts.status503 > 0,
        "no 5xx injected: {counts}"
    );
    assert!(
        counts.drop_before > 0,
        "no connection dropped before forwarding: {counts}"
    );
    assert!(
        counts.drop_after > 0,
        "no response lost after forwarding: {counts}; faults: {faults:#?}"
    );
}

/// Under 20 % injected throttling, the SDK's adaptive mode (the default) stalls retried
/// calls for seconds after each throttle; these tests are about correctness under faults,
/// so they use plain jittered backoff.
const RETRY_MODE: &str = "standard";

/// Run a one-shot command through the proxy (the emulator's environment otherwise).
fn controller_via(proxy: &FaultProxy, args: &[&str]) -> std::process::Command {
    let mut cmd = controller_command(args);
    cmd.env("AWS_ENDPOINT_URL", &proxy.url)
        .env("AWS_RETRY_MODE", RETRY_MODE);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_converges_through_faults_without_duplicates() {
    let started = Instant::now();
    let aws = aws().await; // direct to the emulator
    let proxy = FaultProxy::start(&emulator().url, FAULT_RATE, 0x5EED_0001);
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    let daemon = Daemon::start_with(
        m.path(),
        &["--resync", "5s", "--retry-base", "200ms"],
        Some(&proxy.url),
        &[("AWS_RETRY_MODE", RETRY_MODE)],
    );

    // CI pushes the image once the daemon has created the repository.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !repository_exists(&aws, &names.repo).await {
        assert!(
            Instant::now() < deadline,
            "the daemon never created the repository; log:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    push_image(&aws, &names.repo, "latest", &names.runtime).await;

    while !daemon.all_ready() {
        assert!(
            Instant::now() < deadline,
            "not all Ready within 120 s through the fault proxy ({}):\n{:#}\nfaults: {:#?}\nlog:\n{}",
            proxy.counts(),
            daemon.status(),
            proxy.fault_log(),
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let objects = daemon.status()["objects"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(objects, 9, "{:#}", daemon.status());
    let converged_after = started.elapsed();

    assert_no_duplicates(&aws, &names, &proxy.fault_log()).await;
    // Let a resync or two run through the faults as well, then stop the daemon.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(daemon.all_ready(), "{:#}", daemon.status());
    let daemon_counts = proxy.counts();
    // The daemon alone met every kind of fault (the seeded sequence has all five within
    // its first 28 decisions).
    assert_every_fault_type(&daemon_counts, &proxy.fault_log());
    let stopping = Instant::now();
    assert_eq!(
        daemon.terminate(),
        Some(0),
        "the daemon stops cleanly on SIGTERM"
    );
    let stopped_in = stopping.elapsed();
    assert_no_duplicates(&aws, &names, &proxy.fault_log()).await;

    // A one-shot apply through the same proxy finds everything in place.
    let dir = m.arg();
    let applying = Instant::now();
    let out = controller_via(&proxy, &["apply", "-f", &dir, "--output", "json"])
        .output()
        .expect("run apply");
    let applied_in = applying.elapsed();
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{}", stderr(&out));
    assert!(ready_report(&report), "{report:#}");
    assert_no_duplicates(&aws, &names, &proxy.fault_log()).await;
    eprintln!(
        "daemon: Ready in {converged_after:?}, stopped in {stopped_in:?}, {daemon_counts}; \
         then apply: {applied_in:?}, all told {}",
        proxy.counts()
    );
}

/// One `apply` through the proxy while CI pushes the image as soon as the repository
/// exists; the exit code and the JSON report.
async fn apply_while_pushing(
    proxy: &FaultProxy,
    aws: &Aws,
    m: &Manifests,
    names: &StackNames,
) -> (Option<i32>, Value, String) {
    let dir = m.arg();
    let started = Instant::now();
    let child = controller_via(
        proxy,
        &["apply", "-f", &dir, "--output", "json", "--timeout", "100s"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn apply");
    let deadline = Instant::now() + Duration::from_secs(100);
    while !repository_exists(aws, &names.repo).await {
        assert!(
            Instant::now() < deadline,
            "apply never created the repository"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    push_image(aws, &names.repo, "latest", &names.runtime).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait for apply");
    eprintln!("apply took {:?}", started.elapsed());
    (out.status.code(), json(&out), stderr(&out))
}

#[tokio::test(flavor = "multi_thread")]
async fn one_shot_apply_converges_through_faults_without_duplicates() {
    let aws = aws().await;
    let proxy = FaultProxy::start(&emulator().url, FAULT_RATE, 0x5EED_0002);
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    let (code, report, err) = apply_while_pushing(&proxy, &aws, &m, &names).await;
    let counts = proxy.counts();
    eprintln!("one-shot apply: {counts}");
    assert_eq!(
        code,
        Some(0),
        "apply through the fault proxy ({counts}):\n{report:#}\n{err}\nfaults: {:#?}",
        proxy.fault_log()
    );
    assert!(ready_report(&report), "{report:#}");
    // Every kind of fault (the seeded sequence has all five within its first 36 decisions).
    assert_every_fault_type(&counts, &proxy.fault_log());
    assert_no_duplicates(&aws, &names, &proxy.fault_log()).await;
}

/// The first response to every create is lost: the emulator made the resource and the
/// connection drops before the answer. Retries (the SDK's and the engine's) must find it
/// rather than make a second one.
#[tokio::test(flavor = "multi_thread")]
async fn lost_create_responses_do_not_duplicate() {
    let aws = aws().await;
    let proxy = FaultProxy::start(&emulator().url, 0.0, 0x5EED_0003);
    let creates = [
        "CreateUserPool",
        "CreateUserPoolClient",
        "AdminCreateUser",
        "CreateSecret",
        "CreateSecret",
        "CreateRole",
        "CreateRepository",
        "PutParameter",
        "PUT /runtimes",
    ];
    for op in creates {
        proxy.force(op, Fault::DropAfter);
    }
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    let (code, report, err) = apply_while_pushing(&proxy, &aws, &m, &names).await;
    let counts = proxy.counts();
    eprintln!("lost create responses: {counts}");
    assert_no_duplicates(&aws, &names, &proxy.fault_log()).await;
    assert_eq!(
        code,
        Some(0),
        "apply with lost create responses ({counts}):\n{report:#}\n{err}\nfaults: {:#?}",
        proxy.fault_log()
    );
    assert!(ready_report(&report), "{report:#}");
    assert_eq!(
        counts.drop_after,
        creates.len() as u64,
        "every create lost its first response: {:#?}",
        proxy.fault_log()
    );
}

/// The proxy itself: two requests on one kept-alive client connection, each answered by an
/// upstream that sends a chunked body and closes; the client gets them re-framed with
/// Content-Length, and a throttled request gets the query protocol's XML error.
#[test]
fn proxy_keeps_connections_alive_and_reframes_chunked_responses() {
    use std::io::{BufRead, BufReader, Read, Write};
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let upstream_url = format!("http://{}", upstream.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in upstream.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                  5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
            );
        }
    });
    let proxy = FaultProxy::start(&upstream_url, 0.0, 7);
    let addr = proxy.url.trim_start_matches("http://").to_string();
    let mut client = std::net::TcpStream::connect(&addr).expect("connect to the proxy");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut exchange = |body: &str| -> (String, String) {
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        client.write_all(request.as_bytes()).expect("send");
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read a header line");
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("content-length");
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("read the body");
        (head, String::from_utf8(body).expect("utf-8"))
    };
    for n in 0..2 {
        let (head, body) = exchange(&format!("Action=Ping&N={n}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Connection: keep-alive"), "{head}");
        assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
        assert_eq!(body, "hello world");
    }
    proxy.force("Ping", Fault::Throttle);
    let (head, body) = exchange("Action=Ping");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(body.contains("<Code>Throttling</Code>"), "{body}");
    let counts = proxy.counts();
    assert_eq!(
        (counts.requests, counts.forwarded, counts.throttle),
        (3, 2, 1)
    );
}

/// `delete` when a dependency cannot be read: the runtime cannot be found without the
/// image's digest, so it must be left alone and reported, not guessed "absent" — and the
/// role it uses must not be deleted from under it. Once the faults stop, delete finishes.
#[tokio::test(flavor = "multi_thread")]
async fn delete_leaves_alone_what_it_cannot_find_and_keeps_its_dependencies() {
    let aws = aws().await;
    let proxy = FaultProxy::start(&emulator().url, 0.0, 0x5EED_0004);
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    let (code, report, err) = apply_while_pushing(&proxy, &aws, &m, &names).await;
    assert_eq!(code, Some(0), "{report:#}\n{err}");
    // More failures than the SDK's five attempts: reading the image fails once.
    for _ in 0..5 {
        proxy.force("DescribeImages", Fault::Status500);
    }
    let out = controller_via(&proxy, &["delete", "-f", &m.arg(), "--output", "json"])
        .output()
        .expect("run delete");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let runtime = object(&report, "AgentRuntime");
    assert!(runtime["result"].is_null(), "{runtime:#}");
    let message = runtime["message"].as_str().unwrap_or_default();
    assert!(message.contains("could not be read"), "{message}");
    let role = object(&report, "Role");
    assert!(role["result"].is_null(), "{role:#}");
    assert!(
        role["message"]
            .as_str()
            .is_some_and(|m| m.contains("AgentRuntime/")),
        "{role:#}"
    );
    assert_eq!(runtimes_named(&aws, &names.runtime).await.len(), 1);
    assert!(
        aws.iam
            .get_role()
            .role_name(&names.role)
            .send()
            .await
            .is_ok(),
        "the role the runtime uses is still there"
    );
    // Faults over: the runtime and the role go.
    let out = controller_via(&proxy, &["delete", "-f", &m.arg(), "--output", "json"])
        .output()
        .expect("run delete");
    let report = json(&out);
    assert_eq!(object(&report, "AgentRuntime")["result"], "deleted");
    assert_eq!(object(&report, "Role")["result"], "deleted");
}
