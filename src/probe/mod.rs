//! The live probe: Ready means deployed, `Serving` means answering. For each object whose
//! manifest asks for it (AgentRuntime `spec.probe`), the daemon calls the object's
//! invocation URL the way a client does (MCP `initialize`, then `tools/list`, with the
//! bearer token a Token publishes, or signed with SigV4 for a runtime without a JWT
//! authorizer) every `interval`, and at once after the object's outputs change. The
//! outcome is the object's `Serving` condition in `/status` (beside Ready and Synced,
//! which it leaves alone) and the `agentcore_controller_probe_*` metrics.
//!
//! The engine knows nothing of this: the probe reads the manifests the daemon loads and
//! the outputs in the engine's status (the `invocationUrl` output), and keeps its own
//! conditions, which the HTTP server adds to `/status`. Anything with an `invocationUrl`
//! output and a token source can be probed the same way.
//!
//! The token is read from the Token's secret for each probe and never logged, nor put in
//! a condition or metric.

pub mod classify;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::MissedTickBehavior;
use tracing::{info, warn};

use crate::aws::Aws;
use crate::engine::controller::Shared;
use crate::engine::status::{Condition, Timestamp};
use crate::kinds::agent_runtime::probe_spec::ProbeSpec;
use crate::kinds::agent_runtime::{AgentRuntimeSpec, AuthorizerSpec};
use crate::kinds::runtime_endpoint::RuntimeEndpointSpec;
use crate::manifest::Object;
use crate::mcp::client::{Auth, Client};
use crate::metrics::Metrics;
use crate::model::object::{ObjectKey, Outputs};
use classify::{Reason, Sent, classify};

/// The condition the probe sets.
pub const SERVING: &str = "Serving";
/// Its reason when the probe succeeds.
pub const SERVING_REASON: &str = "Serving";
/// Where the AgentCore data plane is reached instead of
/// `https://bedrock-agentcore.{region}.amazonaws.com` (an emulator, or `local`).
pub const DATA_PLANE_ENV: &str = "AGENTCORE_DATA_PLANE_URL";
/// How long one probe may take, all requests together.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the schedule is looked at.
const TICK: Duration = Duration::from_secs(1);

/// The `Serving` conditions, by object: shared with the HTTP server, which adds them to
/// `/status`.
pub type Board = Arc<std::sync::RwLock<BTreeMap<ObjectKey, Condition>>>;

/// `url` with its AgentCore data-plane origin (`https://bedrock-agentcore.*.amazonaws.com`)
/// replaced by `base`, path and query kept; any other URL as it is.
pub fn rebase(url: &str, base: Option<&str>) -> String {
    let Some(base) = base
        .map(|b| b.trim_end_matches('/'))
        .filter(|b| !b.is_empty())
    else {
        return url.to_string();
    };
    let Some(rest) = url.strip_prefix("https://") else {
        return url.to_string();
    };
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if host.starts_with("bedrock-agentcore.") && host.ends_with(".amazonaws.com") {
        format!("{base}{path}")
    } else {
        url.to_string()
    }
}

/// `url` as the data plane is reached from here (see [`DATA_PLANE_ENV`]).
pub fn data_plane_url(url: &str) -> String {
    rebase(url, std::env::var(DATA_PLANE_ENV).ok().as_deref())
}

/// How a probe authorizes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// The bearer the Token object of that name publishes.
    Token(String),
    /// SigV4 with the daemon's own credentials.
    SigV4,
    /// None can be chosen: why.
    Unknown(String),
}

/// One object to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub key: ObjectKey,
    pub interval: Duration,
    pub credentials: Credentials,
}

/// The objects the manifests ask to probe, with how each is authorized: the Token named
/// by `probe.tokenRef`; else, for a JWT authorizer, the Token whose clientRef is among
/// its clientRefs (or the only Token); a runtime without one is probed with SigV4.
pub fn targets(objects: &[Arc<Object>]) -> Vec<Target> {
    let tokens: Vec<(&str, Option<&str>)> = objects
        .iter()
        .filter(|o| &*o.key.kind == "Token")
        .map(|o| {
            (
                &*o.key.name,
                o.spec.get("clientRef").and_then(Value::as_str),
            )
        })
        .collect();
    let runtime_spec = |o: &Object| serde_json::from_value::<AgentRuntimeSpec>(o.spec.clone()).ok();
    let mut out = Vec::new();
    for o in objects.iter() {
        // A runtime is probed at its DEFAULT endpoint; a RuntimeEndpoint at its own, with
        // its runtime's authorizer.
        let (probe, authorizer) = match &*o.key.kind {
            "AgentRuntime" => {
                let Some(spec) = runtime_spec(o) else {
                    continue;
                };
                (spec.probe, spec.authorizer)
            }
            "RuntimeEndpoint" => {
                let Ok(spec) = serde_json::from_value::<RuntimeEndpointSpec>(o.spec.clone()) else {
                    continue;
                };
                let runtime = objects
                    .iter()
                    .find(|r| &*r.key.kind == "AgentRuntime" && *r.key.name == *spec.runtime_ref)
                    .and_then(|r| runtime_spec(r));
                (spec.probe, runtime.and_then(|r| r.authorizer))
            }
            _ => continue,
        };
        let Some(probe) = probe else {
            continue;
        };
        out.push(Target {
            key: o.key.clone(),
            interval: probe.interval(),
            credentials: credentials(&probe, authorizer.as_ref(), &tokens),
        });
    }
    out
}

/// How a probe authenticates (see [`targets`]).
fn credentials(
    probe: &ProbeSpec,
    authorizer: Option<&AuthorizerSpec>,
    tokens: &[(&str, Option<&str>)],
) -> Credentials {
    match (&probe.token_ref, authorizer) {
        (Some(name), _) if tokens.iter().any(|(t, _)| t == name) => {
            Credentials::Token(name.clone())
        }
        (Some(name), _) => Credentials::Unknown(format!(
            "spec.probe.tokenRef names Token {name}, which is not in the manifests"
        )),
        (None, None) => Credentials::SigV4,
        (None, Some(a)) => {
            let refs = a.jwt.client_refs.clone().unwrap_or_default();
            match crate::kinds::token::bearer_token_of(tokens, &refs) {
                Ok(one) => Credentials::Token(one.to_string()),
                Err(0) => Credentials::Unknown(
                    "no Token in the manifests publishes a bearer for this runtime: add \
                     one, or name it with spec.probe.tokenRef"
                        .to_string(),
                ),
                Err(n) => Credentials::Unknown(format!(
                    "{n} Tokens could publish the bearer: name one with spec.probe.tokenRef"
                )),
            }
        }
    }
}

/// A probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Initialize and tools/list answered: the number of tools.
    Serving {
        tools: usize,
    },
    Failed {
        reason: Reason,
        message: String,
    },
}

/// Set `key`'s condition on the board from `outcome`; the transition time moves only when
/// the status does. Whether the status changed (or is new).
pub fn record(
    board: &Board,
    key: &ObjectKey,
    outcome: &Outcome,
    took: Duration,
    now: SystemTime,
) -> bool {
    let (status, reason, message) = match outcome {
        Outcome::Serving { tools } => (
            "True",
            SERVING_REASON,
            format!(
                "MCP initialize and tools/list answered in {} ms: {tools} tool{}",
                took.as_millis(),
                if *tools == 1 { "" } else { "s" }
            ),
        ),
        Outcome::Failed { reason, message } => ("False", reason.as_str(), message.clone()),
    };
    let Ok(mut board) = board.write() else {
        return false;
    };
    let changed = board.get(key).is_none_or(|c| c.status != status);
    let last_transition_time = match board.get(key) {
        Some(c) if !changed => c.last_transition_time,
        _ => Timestamp::of(now),
    };
    board.insert(
        key.clone(),
        Condition {
            kind: SERVING.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            last_transition_time,
        },
    );
    changed
}

/// The daemon's prober.
pub struct Prober {
    pub aws: Aws,
    pub sdk: aws_config::SdkConfig,
    pub metrics: Metrics,
    pub shared: Arc<Shared>,
    pub board: Board,
    /// The manifests as last loaded.
    pub manifests: watch::Receiver<Arc<Vec<Arc<Object>>>>,
}

/// When an object was probed last, and the outputs it had then.
struct Last {
    at: Instant,
    outputs: Arc<Outputs>,
}

/// A finished probe: the object, its outcome and how long it took.
type Done = (ObjectKey, Outcome, Duration);

impl Prober {
    /// Probe what is due, until `shutdown`. Each probe is a task of its own, so a slow
    /// one (at most [`PROBE_TIMEOUT`]) holds up neither the others nor the schedule; an
    /// object is not probed again while its last probe is under way.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut last: BTreeMap<ObjectKey, Last> = BTreeMap::new();
        // The probes under way (dropping the set, at shutdown, ends them).
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let mut running: BTreeMap<ObjectKey, AbortHandle> = BTreeMap::new();
        // The targets change only when the manifests are loaded again.
        let mut manifests = this.manifests.clone();
        let mut objects = manifests.borrow_and_update().clone();
        let mut probed = targets(&objects);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    match done {
                        Ok((id, (key, outcome, took))) => {
                            // Only the probe still wanted is reported (not one of an
                            // object no longer probed).
                            if running.get(&key).is_some_and(|h| h.id() == id) {
                                running.remove(&key);
                                this.report(&key, &outcome, took);
                            }
                        }
                        Err(e) => {
                            if e.is_panic() {
                                warn!(error = %e, "a probe failed unexpectedly");
                            }
                            running.retain(|_, h| h.id() != e.id());
                        }
                    }
                    continue;
                }
                _ = tick.tick() => {}
            }
            if manifests.has_changed().unwrap_or(false) {
                objects = manifests.borrow_and_update().clone();
                probed = targets(&objects);
            }
            // Objects no longer probed lose their condition and gauges.
            let gone: Vec<ObjectKey> = last
                .keys()
                .filter(|k| !probed.iter().any(|t| &t.key == *k))
                .cloned()
                .collect();
            for key in gone {
                last.remove(&key);
                if let Some(h) = running.remove(&key) {
                    h.abort();
                }
                if let Ok(mut b) = this.board.write() {
                    b.remove(&key);
                }
                this.metrics.probe_gone(&key.kind, &key.name);
            }
            let snapshot = this.shared.snapshot();
            for t in &probed {
                if running.contains_key(&t.key) {
                    continue;
                }
                let Some(status) = snapshot
                    .objects
                    .iter()
                    .find(|s| *s.kind == *t.key.kind && *s.name == *t.key.name)
                else {
                    continue;
                };
                let Some(url) = status.outputs.get("invocationUrl").cloned() else {
                    continue;
                };
                let is_due = match last.get(&t.key) {
                    None => true,
                    Some(l) => l.at.elapsed() >= t.interval || *l.outputs != *status.outputs,
                };
                if !is_due {
                    continue;
                }
                last.insert(
                    t.key.clone(),
                    Last {
                        at: Instant::now(),
                        outputs: status.outputs.clone(),
                    },
                );
                let prober = this.clone();
                let objects = objects.clone();
                let t = t.clone();
                let key = t.key.clone();
                let handle = tasks.spawn(async move {
                    let (outcome, took) = prober.probe(&t, &url, &objects).await;
                    (t.key, outcome, took)
                });
                running.insert(key, handle);
            }
        }
    }

    fn report(&self, key: &ObjectKey, outcome: &Outcome, took: Duration) {
        let changed = record(&self.board, key, outcome, took, SystemTime::now());
        match outcome {
            Outcome::Serving { tools } => {
                self.metrics.probed(&key.kind, &key.name, took, Ok(*tools));
                if changed {
                    info!(object = %key, tools, "serving: the probe's initialize and tools/list were answered");
                }
            }
            Outcome::Failed { reason, message } => {
                self.metrics
                    .probed(&key.kind, &key.name, took, Err(reason.as_str()));
                if changed {
                    warn!(object = %key, reason = reason.as_str(), %message, "not serving: the probe failed");
                }
            }
        }
    }

    /// One probe of `t` at `url`, the credentials' reading included, within
    /// [`PROBE_TIMEOUT`]: its outcome and how long it took.
    async fn probe(&self, t: &Target, url: &str, objects: &[Arc<Object>]) -> (Outcome, Duration) {
        let started = Instant::now();
        // Whether the credentials were read before the time ran out.
        let authorized = AtomicBool::new(false);
        let outcome =
            match tokio::time::timeout(PROBE_TIMEOUT, self.attempt(t, url, objects, &authorized))
                .await
            {
                Ok(outcome) => outcome,
                Err(_) if !authorized.load(Ordering::Relaxed) => Outcome::Failed {
                    reason: Reason::NoCredentials,
                    message: format!(
                        "the probe's credentials were not read within {}s; fix: {}",
                        PROBE_TIMEOUT.as_secs(),
                        Reason::NoCredentials.fix()
                    ),
                },
                Err(_) => Outcome::Failed {
                    reason: Reason::Unreachable,
                    message: format!(
                        "no answer within {}s; fix: {}",
                        PROBE_TIMEOUT.as_secs(),
                        Reason::Unreachable.fix()
                    ),
                },
            };
        (outcome, started.elapsed())
    }

    /// A probe without a time limit (see [`Self::probe`]); `authorized` is set once the
    /// credentials are read.
    async fn attempt(
        &self,
        t: &Target,
        url: &str,
        objects: &[Arc<Object>],
        authorized: &AtomicBool,
    ) -> Outcome {
        let (auth, sent) = match self.auth(&t.credentials, objects).await {
            Ok(x) => x,
            Err(message) => {
                return Outcome::Failed {
                    reason: Reason::NoCredentials,
                    message: format!("{message}; fix: {}", Reason::NoCredentials.fix()),
                };
            }
        };
        authorized.store(true, Ordering::Relaxed);
        let url = data_plane_url(url);
        let call = async {
            let mut client = Client::connect(&url, auth, PROBE_TIMEOUT).await?;
            client.list("tools/list", "tools").await
        };
        match call.await {
            Ok(tools) => Outcome::Serving { tools: tools.len() },
            Err(e) => {
                let reason = classify(sent, &e);
                Outcome::Failed {
                    reason,
                    message: format!("{e}; fix: {}", reason.fix()),
                }
            }
        }
    }

    /// The authorization a probe presents.
    async fn auth(
        &self,
        credentials: &Credentials,
        objects: &[Arc<Object>],
    ) -> Result<(Auth, Sent), String> {
        match credentials {
            Credentials::Unknown(why) => Err(why.clone()),
            Credentials::SigV4 => {
                use aws_credential_types::provider::ProvideCredentials;
                let provider = self
                    .sdk
                    .credentials_provider()
                    .ok_or("the daemon has no AWS credentials to sign the probe with")?;
                let credentials = provider
                    .provide_credentials()
                    .await
                    .map_err(|e| format!("no AWS credentials to sign the probe with: {e}"))?;
                Ok((
                    Auth::SigV4 {
                        credentials,
                        region: self.aws.region.clone(),
                    },
                    Sent::SigV4,
                ))
            }
            Credentials::Token(name) => {
                let secret = objects
                    .iter()
                    .find(|o| &*o.key.kind == "Token" && &*o.key.name == name.as_str())
                    .and_then(|o| o.spec.get("secretName").and_then(Value::as_str))
                    .ok_or_else(|| format!("Token {name} names no secretName"))?;
                let bearer = self.bearer(secret).await.map_err(|e| {
                    format!("Token {name} has published no bearer in {secret} yet: {e}")
                })?;
                Ok((Auth::Bearer(bearer), Sent::Bearer))
            }
        }
    }

    /// The `bearer_token` of a Token's secret.
    async fn bearer(&self, secret: &str) -> Result<SecretString, String> {
        use crate::commands::{SecretRead, secret_object};
        let map = secret_object(&self.aws, secret)
            .await
            .map_err(|e| match e {
                SecretRead::Unreadable(why) => why,
                SecretRead::NotAnObject => "the secret is not a JSON object".to_string(),
            })?;
        map.get("bearer_token")
            .and_then(Value::as_str)
            .map(|t| SecretString::from(t.to_string()))
            .ok_or_else(|| "no bearer_token in it".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_plane_origin_is_replaced_and_nothing_else() {
        let url = "https://bedrock-agentcore.eu-west-1.amazonaws.com/runtimes/arn%3Aaws%3Ax/invocations?qualifier=prod";
        let cases: [(&str, Option<&str>, &str); 5] = [
            (url, None, url),
            (url, Some(""), url),
            (
                url,
                Some("http://127.0.0.1:8080/"),
                "http://127.0.0.1:8080/runtimes/arn%3Aaws%3Ax/invocations?qualifier=prod",
            ),
            (
                "https://example.com/runtimes/x/invocations",
                Some("http://127.0.0.1:8080"),
                "https://example.com/runtimes/x/invocations",
            ),
            (
                "https://bedrock-agentcore-control.us-east-1.amazonaws.com/runtimes/",
                Some("http://h"),
                "https://bedrock-agentcore-control.us-east-1.amazonaws.com/runtimes/",
            ),
        ];
        for (url, base, want) in cases {
            assert_eq!(rebase(url, base), want, "{url} {base:?}");
        }
    }

    fn object(kind: &str, name: &str, spec: Value) -> Arc<Object> {
        Arc::new(Object {
            key: ObjectKey::new(kind, name),
            meta: Default::default(),
            spec,
            deletion_policy: crate::model::object::DeletionPolicy::Delete,
            source: crate::manifest::Source {
                file: std::path::PathBuf::new(),
                line: 0,
            },
            hash: String::new(),
        })
    }

    fn runtime(name: &str, probe: Value, jwt: Option<Value>) -> Arc<Object> {
        let mut spec = serde_json::json!({"imageRef": "i", "roleRef": "r", "probe": probe});
        if let Some(j) = jwt {
            spec["authorizer"] = serde_json::json!({ "jwt": j });
        }
        object("AgentRuntime", name, spec)
    }

    fn token(name: &str, client: &str) -> Arc<Object> {
        object(
            "Token",
            name,
            serde_json::json!({"userRef": "u", "clientRef": client, "secretName": format!("{name}-s")}),
        )
    }

    #[test]
    fn each_probed_runtime_gets_its_token_or_sigv4() {
        use serde_json::json;
        let jwt = Some(json!({"userPoolRef": "p", "clientRefs": ["c1"]}));
        // Objects, the runtime probed, the credentials chosen (None: not probed).
        type Case = (&'static str, Vec<Arc<Object>>, Option<Credentials>);
        let cases: Vec<Case> = vec![
            (
                "no probe",
                vec![object(
                    "AgentRuntime",
                    "rt",
                    json!({"imageRef": "i", "roleRef": "r"}),
                )],
                None,
            ),
            (
                "the Token of an allowed client",
                vec![
                    runtime("rt", json!({"interval": "2m"}), jwt.clone()),
                    token("other", "c2"),
                    token("mine", "c1"),
                ],
                Some(Credentials::Token("mine".into())),
            ),
            (
                "the only Token",
                vec![runtime("rt", json!({}), jwt.clone()), token("t", "c9")],
                Some(Credentials::Token("t".into())),
            ),
            (
                "tokenRef wins",
                vec![
                    runtime("rt", json!({"tokenRef": "other"}), jwt.clone()),
                    token("other", "c2"),
                    token("mine", "c1"),
                ],
                Some(Credentials::Token("other".into())),
            ),
            (
                "SigV4 without an authorizer",
                vec![runtime("rt", json!({}), None), token("t", "c1")],
                Some(Credentials::SigV4),
            ),
            (
                "an endpoint, with its runtime's authorizer",
                vec![
                    object(
                        "AgentRuntime",
                        "rt",
                        json!({"imageRef": "i", "roleRef": "r", "authorizer": {"jwt": jwt.clone()}}),
                    ),
                    object(
                        "RuntimeEndpoint",
                        "prod",
                        json!({"runtimeRef": "rt", "probe": {"interval": "1m"}}),
                    ),
                    token("other", "c2"),
                    token("mine", "c1"),
                ],
                Some(Credentials::Token("mine".into())),
            ),
            (
                "an endpoint of a SigV4 runtime",
                vec![
                    object(
                        "AgentRuntime",
                        "rt",
                        json!({"imageRef": "i", "roleRef": "r"}),
                    ),
                    object(
                        "RuntimeEndpoint",
                        "prod",
                        json!({"runtimeRef": "rt", "probe": {}}),
                    ),
                ],
                Some(Credentials::SigV4),
            ),
        ];
        for (name, objects, want) in cases {
            let got = targets(&objects);
            match want {
                None => assert!(got.is_empty(), "{name}: {got:?}"),
                Some(c) => {
                    assert_eq!(got.len(), 1, "{name}: {got:?}");
                    assert_eq!(got[0].credentials, c, "{name}");
                }
            }
        }
        let two = targets(&[
            runtime("rt", json!({"interval": "2m"}), jwt.clone()),
            token("a", "c2"),
            token("b", "c3"),
        ]);
        assert!(
            matches!(&two[0].credentials, Credentials::Unknown(w) if w.contains("tokenRef")),
            "{two:?}"
        );
        assert_eq!(two[0].interval, Duration::from_secs(120));
        let missing = targets(&[runtime("rt", json!({"tokenRef": "nope"}), jwt)]);
        assert!(
            matches!(&missing[0].credentials, Credentials::Unknown(w) if w.contains("not in the manifests")),
            "{missing:?}"
        );
    }

    #[test]
    fn the_transition_time_moves_only_when_serving_flips() {
        let board = Board::default();
        let key = ObjectKey::new("AgentRuntime", "rt");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t1 = t0 + Duration::from_secs(60);
        let t2 = t1 + Duration::from_secs(60);
        let ms = Duration::from_millis(12);
        assert!(record(&board, &key, &Outcome::Serving { tools: 2 }, ms, t0));
        assert!(!record(
            &board,
            &key,
            &Outcome::Serving { tools: 3 },
            ms,
            t1
        ));
        let c = board.read().expect("board")[&key].clone();
        assert_eq!((&*c.status, &*c.reason), ("True", "Serving"));
        assert_eq!(
            c.message,
            "MCP initialize and tools/list answered in 12 ms: 3 tools"
        );
        assert_eq!(c.last_transition_time, Timestamp::of(t0));
        let failed = Outcome::Failed {
            reason: Reason::ClientMismatch,
            message: "HTTP 403".into(),
        };
        assert!(record(&board, &key, &failed, ms, t2));
        let c = board.read().expect("board")[&key].clone();
        assert_eq!((&*c.status, &*c.reason), ("False", "ClientMismatch"));
        assert_eq!(c.last_transition_time, Timestamp::of(t2));
    }
}
