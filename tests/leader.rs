//! Leader election against the emulator, whose DynamoDB holds the lease: three replicas
//! of one controller instance; the leader killed with SIGKILL again and again while a
//! manifest is edited and a token falls due every few seconds. Which replica made each
//! AWS call is read from the emulator's own request log (by the replica's name in the user
//! agent), not from the replicas.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agentcore_controller::aws::{Access, Aws, access_of};
use base64::Engine;
use serde_json::Value;
use testkit::*;

/// Short timings so that a takeover takes seconds: the lease holds 3 s, a leader stops
/// writing 2 s after its last renewal, renewals and looks every 400 ms.
const LEASE_DURATION: Duration = Duration::from_secs(3);
const LOOK_PERIOD: Duration = Duration::from_millis(400);
/// What polling the replicas' /status adds to a measured takeover.
const POLL_SLACK: Duration = Duration::from_millis(600);
const KILLS: usize = 4;

fn manifests(n: &StackNames, value: &str) -> String {
    format!(
        r#"apiVersion: agentcore.dev/v1alpha1
kind: UserPool
metadata:
  name: {pool}
spec:
  passwordPolicy:
    minimumLength: 8
---
apiVersion: agentcore.dev/v1alpha1
kind: UserPoolClient
metadata:
  name: {client}
spec:
  userPoolRef: {pool}
  generateSecret: false
  explicitAuthFlows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]
  tokenValidity: {{ accessToken: 60m, idToken: 60m, refreshToken: 30d }}
---
apiVersion: agentcore.dev/v1alpha1
kind: User
metadata:
  name: {user}
spec:
  userPoolRef: {pool}
---
# Renewed every ~8 s: 60 minutes of lifetime, renewed 59m52s before expiry.
apiVersion: agentcore.dev/v1alpha1
kind: Token
metadata:
  name: token
spec:
  userRef: {user}
  clientRef: {client}
  bearer: access
  renewBefore: 59m52s
  secretName: {secret}
---
apiVersion: agentcore.dev/v1alpha1
kind: Parameter
metadata:
  name: edited
spec:
  name: {param}
  value: {{ value: "{value}" }}
"#,
        pool = n.pool,
        client = n.client,
        user = n.user,
        secret = n.secret,
        param = n.parameter,
    )
}

fn role(d: &Daemon) -> Option<String> {
    let (code, body) = d.get("/status");
    if code != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    v["leadership"]["role"].as_str().map(String::from)
}

fn identity(d: &Daemon) -> Option<String> {
    let (_, body) = d.get("/status");
    let v: Value = serde_json::from_str(&body).ok()?;
    v["leadership"]["identity"].as_str().map(String::from)
}

fn leaders(replicas: &[Daemon]) -> Vec<usize> {
    (0..replicas.len())
        .filter(|&i| role(&replicas[i]).as_deref() == Some("leader"))
        .collect()
}

/// The published bearer token's `iat` and `exp` (seconds since the epoch), if published.
async fn token_times(aws: &Aws, secret: &str) -> Option<(u64, u64)> {
    let v = aws
        .secrets
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .ok()?;
    let map: Value = serde_json::from_str(v.secret_string()?).ok()?;
    let jwt = map["bearer_token"].as_str()?;
    let payload = jwt.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?,
    )
    .ok()?;
    Some((claims["iat"].as_u64()?, claims["exp"].as_u64()?))
}

/// One AWS call of a replica, as the emulator logged it.
struct Logged {
    at: f64,
    replica: String,
    write: bool,
    lease: bool,
    what: String,
}

/// The replicas' calls since `since` (seconds since the epoch): a replica names itself in
/// the user agent as `app/IDENTITY`.
fn calls_since(log: &std::path::Path, since: f64) -> Vec<Logged> {
    testkit::requests::calls_since(log, since)
        .into_iter()
        .filter_map(|c| {
            Some(Logged {
                at: c.at,
                replica: c.app.clone()?,
                // An unknown call counts as a write.
                write: c.operation.is_empty() || access_of(&c.operation) == Access::Write,
                lease: c.service == "dynamodb",
                what: format!("{} {} {}", c.method, c.path, c.action()),
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_one_writer_through_repeated_leader_kills() {
    let aws = aws().await;
    let u = unique("le");
    let n = StackNames::unique();
    let table = format!("leases-{u}");
    let instance = format!("le-{u}");
    let m = Manifests::new();
    m.write("stack.yaml", &manifests(&n, "v0"));
    let lease = format!("dynamodb:{table}");
    let receiver = testkit::receiver::Receiver::start().await;
    let args = [
        "--leader-election",
        lease.as_str(),
        "--lease-duration",
        "3s",
        "--lease-renew-deadline",
        "2s",
        "--resync",
        "5s",
        "--instance",
        instance.as_str(),
        "--notify",
        receiver.url.as_str(),
    ];
    // The replicas of this test, by the name each gives itself (other tests of this binary
    // run replicas too, against the same emulator).
    let mine = std::sync::Mutex::new(BTreeSet::new());
    let start_replica = || {
        let d = Daemon::start(m.path(), &args, None);
        let id = identity(&d).expect("a replica names itself in /status");
        mine.lock().expect("lock").insert(id);
        d
    };
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let mut replicas: Vec<Daemon> = (0..3).map(|_| start_replica()).collect();

    // One leader converges the stack; the others stand by, ready too.
    wait_for(
        Duration::from_secs(90),
        "one leader, the stack Ready",
        || {
            let l = leaders(&replicas);
            l.len() == 1 && replicas[l[0]].all_ready()
        },
    );
    wait_for(Duration::from_secs(60), "the standbys ready", || {
        replicas.iter().all(|d| d.get("/readyz").0 == 200)
    });
    let standby = replicas
        .iter()
        .find(|d| role(d).as_deref() == Some("standby"))
        .expect("a standby");
    let status = standby.status();
    assert_eq!(
        status["leadership"]["holder"].as_str(),
        identity(&replicas[leaders(&replicas)[0]]).as_deref(),
        "a standby names the leader: {status:#}"
    );
    assert!(status["leadership"]["lease_expires_at"].is_string());
    let param = standby
        .object("Parameter", "edited")
        .expect("the standby tracks the objects");
    let synced = param["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Synced"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(synced["reason"], "Standby", "{param:#}");
    let metrics = standby.get("/metrics").1;
    assert!(
        metrics.contains("agentcore_controller_leader 0"),
        "{metrics}"
    );

    // The token's issue times, sampled while the leaders die.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sampler = {
        let aws = aws.clone();
        let secret = n.secret.clone();
        tokio::spawn(async move {
            let mut seen: Vec<(u64, u64)> = Vec::new();
            let mut expired_seen = Vec::new();
            loop {
                if let Some(t) = token_times(&aws, &secret).await {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .expect("clock")
                        .as_secs();
                    if t.1 <= now {
                        expired_seen.push(t);
                    }
                    if seen.last() != Some(&t) {
                        seen.push(t);
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = &mut stop_rx => return (seen, expired_seen),
                }
            }
        })
    };

    let mut takeovers = Vec::new();
    for round in 1..=KILLS {
        let leader = leaders(&replicas);
        assert_eq!(leader.len(), 1, "one leader before kill {round}");
        let leader = leader[0];
        // An edit, saved just before the leader dies (it may or may not have written it).
        m.write("stack.yaml", &manifests(&n, &format!("v{round}")));
        tokio::time::sleep(Duration::from_millis(300 * round as u64)).await;
        let killed = Instant::now();
        replicas.remove(leader).kill9();
        let mut new_leader = None;
        while killed.elapsed() < Duration::from_secs(20) {
            let l = leaders(&replicas);
            assert!(l.len() <= 1, "two replicas say they lead: {l:?}");
            if let [l] = l[..] {
                new_leader = Some(l);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let took = killed.elapsed();
        assert!(new_leader.is_some(), "nobody took over after kill {round}");
        takeovers.push(took);
        replicas.push(start_replica());
        // Let the new leader work a while before it dies in turn.
        tokio::time::sleep(Duration::from_secs(4)).await;
    }

    // Every edit lands: the last one is what AWS has.
    let last = format!("v{KILLS}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while parameter_value(&aws, &n.parameter).await.as_deref() != Some(last.as_str()) {
        assert!(Instant::now() < deadline, "the last edit never landed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A token renewal after the last takeover.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let _ = stop_tx.send(());
    let (issued, expired) = sampler.await.expect("sampler");

    // Shut down cleanly: the leader gives the lease up.
    for d in replicas {
        assert_eq!(d.terminate(), Some(0));
    }

    // Takeover within a lease duration and one look period (plus polling).
    let bound = LEASE_DURATION + LOOK_PERIOD + POLL_SLACK;
    for (i, took) in takeovers.iter().enumerate() {
        assert!(
            took <= &bound,
            "takeover {i} took {took:?} (bound {bound:?}): {takeovers:?}"
        );
    }

    // The token never expired, and it kept being renewed across the failovers: no gap
    // between renewals longer than its renewal interval plus a takeover plus a resync.
    assert!(
        expired.is_empty(),
        "an expired token was published: {expired:?}"
    );
    assert!(issued.len() >= 4, "renewals seen: {issued:?}");
    for w in issued.windows(2) {
        let gap = w[1].0.saturating_sub(w[0].0);
        assert!(gap <= 8 + 4 + 5 + 2, "{gap} s between renewals: {issued:?}");
    }

    // 0 duplicates.
    assert_eq!(pools_named(&aws, &n.pool).await.len(), 1);
    let pool = pools_named(&aws, &n.pool).await.remove(0);
    let clients = aws
        .cognito
        .list_user_pool_clients()
        .user_pool_id(&pool)
        .send()
        .await
        .expect("ListUserPoolClients");
    let clients: Vec<_> = clients
        .user_pool_clients()
        .iter()
        .filter(|c| c.client_name() == Some(n.client.as_str()))
        .collect();
    assert_eq!(clients.len(), 1, "{clients:?}");
    let secrets = aws
        .secrets
        .list_secrets()
        .send()
        .await
        .expect("ListSecrets");
    let named = secrets
        .secret_list()
        .iter()
        .filter(|s| s.name() == Some(n.secret.as_str()))
        .count();
    assert_eq!(named, 1);

    // At most one replica wrote at any moment: in the emulator's log the writes of the
    // replicas (the lease itself aside) come in runs, one replica's run after another's,
    // never interleaved.
    let log = emulator().request_log.clone().expect("request log");
    let mine = mine.into_inner().expect("lock");
    let calls: Vec<Logged> = calls_since(&log, since)
        .into_iter()
        .filter(|c| mine.contains(&c.replica))
        .collect();
    let writes: Vec<&Logged> = calls.iter().filter(|c| c.write && !c.lease).collect();
    let mut runs: Vec<&str> = Vec::new();
    for w in &writes {
        if runs.last() != Some(&w.replica.as_str()) {
            runs.push(&w.replica);
        }
    }
    let distinct: BTreeSet<&str> = runs.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        runs.len(),
        "a replica wrote again after another had: {runs:?}\n{}",
        writes
            .iter()
            .map(|w| format!("{:.3} {} {}", w.at, w.replica, w.what))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        runs.len() >= 3,
        "writes by several leaders in turn: {runs:?}"
    );
    // Each replica that took the lease told so (once per takeover), naming itself.
    let gained = receiver.of("leadershipGained", None);
    assert!(gained.len() > KILLS, "{gained:#?}");
    for e in &gained {
        let message = e["message"].as_str().unwrap_or_default();
        assert!(
            mine.iter().any(|id| message.starts_with(id.as_str())),
            "{message}"
        );
    }
    let lease_writes = calls.iter().filter(|c| c.write && c.lease).count();
    eprintln!(
        "takeovers: {takeovers:?}; token issued {} times; {} writes by {} leaders in turn; {lease_writes} lease writes",
        issued.len(),
        writes.len(),
        runs.len()
    );
}

/// The fence on its own, at the boundary to AWS: a write made without a valid lease is
/// refused in the process (the emulator never sees it), reads pass, and once the lease is
/// granted the same write goes out.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_without_the_lease_never_leaves_the_process() {
    use agentcore_controller::error::{Reason, ReconcileError};
    use agentcore_controller::leader::Fence;
    use agentcore_controller::ratelimit::RateLimits;
    let u = unique("fence");
    let app = format!("fence-test-{u}");
    let config = sdk_config()
        .to_builder()
        .app_name(aws_config::AppName::new(app.clone()).expect("app name"))
        .build();
    let fence = Fence::default();
    let aws = Aws::connect_with(&config, &RateLimits::default(), Some(fence.clone()))
        .await
        .expect("connect");
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let name = format!("/le/{u}/fenced");
    let put = || {
        aws.ssm
            .put_parameter()
            .name(&name)
            .value("x")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
    };
    let err = put().await.expect_err("a write without the lease");
    let err = ReconcileError::from_sdk("PutParameter", err);
    assert_eq!(err.reason, Reason::NotLeader, "{}", err.message);
    aws.ssm
        .describe_parameters()
        .send()
        .await
        .expect("reads pass the fence");
    let mine = |log: &[Logged]| {
        log.iter()
            .filter(|c| c.replica == app)
            .map(|c| (c.write, c.what.clone()))
            .collect::<Vec<_>>()
    };
    let log = emulator().request_log.clone().expect("request log");
    let seen = mine(&calls_since(&log, since));
    assert!(seen.iter().all(|(write, _)| !write), "{seen:?}");
    assert!(!seen.is_empty(), "the reads were seen: {seen:?}");

    fence.grant(tokio::time::Instant::now() + Duration::from_secs(10));
    put().await.expect("a write with the lease");
    assert_eq!(parameter_value(&aws, &name).await.as_deref(), Some("x"));
    let seen = mine(&calls_since(&log, since));
    assert_eq!(
        seen.iter().filter(|(write, _)| *write).count(),
        1,
        "{seen:?}"
    );
}

/// A stand-in for the Kubernetes API server: the Lease endpoints only, with the API's
/// optimistic concurrency (a replace whose `resourceVersion` is not the stored one gets
/// 409 Conflict, a create of an existing name 409 AlreadyExists, a missing one 404), and
/// the Status bodies the API answers errors with. (No Kubernetes API server can run
/// here; the emulator covers AWS only.)
mod fake_kubernetes {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::Router;
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use serde_json::{Value, json};

    #[derive(Clone, Default)]
    pub struct Leases {
        pub objects: Arc<Mutex<HashMap<(String, String), Value>>>,
        version: Arc<Mutex<u64>>,
    }

    fn status(code: StatusCode, reason: &str, message: String) -> Response {
        let body = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code.as_u16(),
        });
        (code, Json(body)).into_response()
    }

    impl Leases {
        fn next_version(&self) -> String {
            let mut v = self.version.lock().expect("lock");
            *v += 1;
            v.to_string()
        }
    }

    async fn read(State(s): State<Leases>, Path((ns, name)): Path<(String, String)>) -> Response {
        match s.objects.lock().expect("lock").get(&(ns, name.clone())) {
            Some(o) => Json(o.clone()).into_response(),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("leases.coordination.k8s.io \"{name}\" not found"),
            ),
        }
    }

    async fn create(
        State(s): State<Leases>,
        Path(ns): Path<String>,
        Json(mut lease): Json<Value>,
    ) -> Response {
        let name = lease["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut objects = s.objects.lock().expect("lock");
        if objects.contains_key(&(ns.clone(), name.clone())) {
            return status(
                StatusCode::CONFLICT,
                "AlreadyExists",
                format!("leases.coordination.k8s.io \"{name}\" already exists"),
            );
        }
        lease["metadata"]["resourceVersion"] = json!(s.next_version());
        lease["metadata"]["namespace"] = json!(ns);
        objects.insert((ns, name), lease.clone());
        (StatusCode::CREATED, Json(lease)).into_response()
    }

    async fn replace(
        State(s): State<Leases>,
        Path((ns, name)): Path<(String, String)>,
        Json(mut lease): Json<Value>,
    ) -> Response {
        let mut objects = s.objects.lock().expect("lock");
        let Some(stored) = objects.get(&(ns.clone(), name.clone())) else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("leases.coordination.k8s.io \"{name}\" not found"),
            );
        };
        if lease["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"] {
            return status(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": \
                     the object has been modified; please apply your changes to the latest \
                     version and try again"
                ),
            );
        }
        lease["metadata"]["resourceVersion"] = json!(s.next_version());
        objects.insert((ns, name), lease.clone());
        Json(lease).into_response()
    }

    /// Serve on a free loopback port; the server's URL.
    pub async fn serve(leases: Leases) -> String {
        let app = Router::new()
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
                get(read).put(replace),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
                post(create),
            )
            .with_state(leases);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// A kubeconfig for `url`, in namespace `ns`, in `dir`.
    pub fn kubeconfig(dir: &std::path::Path, url: &str, ns: &str) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
                 users:\n- name: fake\n  user:\n    token: not-a-secret\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {ns}\n\
                 current-context: fake\n"
            ),
        )
        .expect("write kubeconfig");
        path
    }
}

/// What the elector relies on, held by each store: a conditional write succeeds only
/// against the version it names (or, naming none, where there is no record), and a
/// read gives back what was written.
async fn lease_store_contract(store: &dyn agentcore_controller::leader::LeaseStore) {
    use agentcore_controller::leader::{LeaseRecord, Swap};
    let record = |holder: &str, version: &str| LeaseRecord {
        holder: holder.into(),
        version: version.into(),
        duration: Duration::from_millis(2500),
        renewed_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
        acquired_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        transitions: 1,
    };
    let what = store.describe();
    assert_eq!(store.read().await.expect("read"), None, "{what}");
    assert_eq!(
        store.swap(None, &record("a", "1")).await.expect("create"),
        Swap::Done,
        "{what}"
    );
    assert_eq!(
        store
            .swap(None, &record("b", "x"))
            .await
            .expect("second create"),
        Swap::Conflict,
        "{what}"
    );
    assert_eq!(
        store.read().await.expect("read"),
        Some(record("a", "1")),
        "{what}"
    );
    assert_eq!(
        store
            .swap(Some("0"), &record("b", "2"))
            .await
            .expect("stale swap"),
        Swap::Conflict,
        "{what}"
    );
    assert_eq!(
        store
            .swap(Some("1"), &record("b", "2"))
            .await
            .expect("swap"),
        Swap::Done,
        "{what}"
    );
    assert_eq!(
        store
            .swap(Some("1"), &record("c", "3"))
            .await
            .expect("replayed swap"),
        Swap::Conflict,
        "{what}"
    );
    assert_eq!(
        store.read().await.expect("read"),
        Some(record("b", "2")),
        "{what}"
    );
    assert_eq!(
        store
            .swap(Some("2"), &record("", "4"))
            .await
            .expect("release"),
        Swap::Done,
        "{what}"
    );
    assert_eq!(
        store.read().await.expect("read").map(|r| r.holder),
        Some(String::new()),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn both_lease_stores_keep_the_contract_the_elector_relies_on() {
    use agentcore_controller::leader::dynamodb::DynamoDbLeases;
    use agentcore_controller::leader::kubernetes::KubernetesLeases;
    let u = unique("contract");
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let dynamo = DynamoDbLeases::new(client, format!("contract-{u}"), "lease");
    dynamo.ensure_table().await.expect("create the table");
    dynamo.ensure_table().await.expect("again: it exists");
    lease_store_contract(&dynamo).await;

    let m = Manifests::new();
    let url = fake_kubernetes::serve(fake_kubernetes::Leases::default()).await;
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(fake_kubernetes::kubeconfig(m.path(), &url, "ns"))
            .expect("kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let kubernetes = KubernetesLeases::new(client, "ns", "lease");
    lease_store_contract(&kubernetes).await;
}

/// `--leader-election kubernetes` end to end, against the stand-in API server: one of two
/// replicas leads and is named in the Lease as Kubernetes tools read it; stopped with
/// SIGTERM, it gives the lease up and the other leads at its next look, long before the
/// lease would have run out.
#[tokio::test(flavor = "multi_thread")]
async fn kubernetes_leases_elect_one_leader_and_hand_over_on_shutdown() {
    let aws = aws().await;
    let u = unique("k8s");
    let leases = fake_kubernetes::Leases::default();
    let url = fake_kubernetes::serve(leases.clone()).await;
    let m = Manifests::new();
    let kubeconfig = fake_kubernetes::kubeconfig(m.path(), &url, "agentcore");
    let manifests = m.path().join("manifests");
    std::fs::create_dir_all(&manifests).expect("mkdir");
    let param = format!("/le/{u}/k8s");
    std::fs::write(
        manifests.join("p.yaml"),
        format!(
            "apiVersion: agentcore.dev/v1alpha1\nkind: Parameter\nmetadata:\n  name: p\nspec:\n  name: {param}\n  value: {{ value: \"led\" }}\n"
        ),
    )
    .expect("write");
    let instance = format!("K8s_{u}");
    let args = [
        "--leader-election",
        "kubernetes",
        "--lease-duration",
        "10s",
        "--lease-renew-deadline",
        "5s",
        "--instance",
        instance.as_str(),
    ];
    let kubeconfig = kubeconfig.display().to_string();
    let envs = [("KUBECONFIG", kubeconfig.as_str()), ("POD_NAMESPACE", "")];
    let mut replicas: Vec<Daemon> = (0..2)
        .map(|_| Daemon::start_with(&manifests, &args, None, &envs))
        .collect();
    wait_for(
        Duration::from_secs(60),
        "one leader, the parameter written",
        || leaders(&replicas).len() == 1,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while parameter_value(&aws, &param).await.as_deref() != Some("led") {
        assert!(Instant::now() < deadline, "the leader never wrote");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leader = leaders(&replicas)[0];
    let name = identity(&replicas[leader]).expect("identity");
    // The Lease, as `kubectl get lease` shows it: named after the instance (made a valid
    // name), in the kubeconfig's namespace.
    let lease_name = agentcore_controller::leader::kubernetes::lease_name(&instance);
    let lease = leases
        .objects
        .lock()
        .expect("lock")
        .get(&("agentcore".to_string(), lease_name.clone()))
        .cloned()
        .expect("the Lease");
    assert_eq!(lease["spec"]["holderIdentity"], name.as_str(), "{lease:#}");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 10, "{lease:#}");
    assert!(lease["spec"]["renewTime"].is_string(), "{lease:#}");
    let standby = replicas[1 - leader].status();
    assert_eq!(
        standby["leadership"]["lease"],
        format!("kubernetes:agentcore/{lease_name}")
    );

    let stopped = Instant::now();
    assert_eq!(replicas.remove(leader).terminate(), Some(0));
    wait_for(Duration::from_secs(5), "the other replica leading", || {
        leaders(&replicas).len() == 1
    });
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(8), "handed over in {took:?}");
    for d in replicas {
        assert_eq!(d.terminate(), Some(0));
    }
}

/// Lease timings given without leader election would be ignored: they are refused, and
/// the error says what is missing. Timings without a margin are refused too.
#[test]
fn lease_flags_without_leader_election_or_a_margin_are_refused() {
    let out = controller(&["run", "-f", ".", "--lease-duration", "20s"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--leader-election"),
        "{}",
        stderr(&out)
    );
    let out = controller(&[
        "run",
        "-f",
        ".",
        "--leader-election",
        "dynamodb:leases",
        "--lease-duration",
        "10s",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("must exceed --lease-renew-deadline"),
        "{}",
        stderr(&out)
    );
}
