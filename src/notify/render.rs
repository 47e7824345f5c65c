//! The bodies posted to receivers, both JSON (`Content-Type: application/json`).
//!
//! **json**: the event as it is, with the instance and the time it was sent (RFC 3339,
//! UTC, whole seconds); `droppedBefore` only when events were dropped since the last one
//! delivered (rate limit or full queue):
//!
//! ```json
//! {"instance": "prod", "time": "2025-01-02T03:04:05Z", "reason": "reconcileFailed",
//!  "severity": "error", "object": {"kind": "AgentRuntime", "name": "mcp"},
//!  "message": "AccessDenied: …", "fields": [], "revision": "main@sha1:0123…",
//!  "droppedBefore": 3}
//! ```
//!
//! **slack**: `{"text": …}`, one readable message: a first line with the instance, a
//! severity marker (info ✅, warning ⚠️, error ❌), the object, the reason in words and the
//! message; then `fields: …` and `revision: …` lines when there are any, and a last line
//! saying how many events were dropped before it:
//!
//! ```text
//! [prod] ❌ AgentRuntime/mcp: reconcile failed: AccessDenied: …
//! revision: main@sha1:0123…
//! (3 earlier events were dropped: rate limit)
//! ```
//!
//! Slack reads `<…>` as links and mentions (`<!channel>`): the text escapes `&`, `<` and
//! `>`, so that a message can never ping anyone.

use std::time::SystemTime;

use serde::Serialize;

use super::bucket::Dropped;
use super::{Event, Format, ObjectRef, Reason, Severity};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonBody<'a> {
    instance: &'a str,
    time: String,
    reason: Reason,
    severity: Severity,
    object: &'a Option<ObjectRef>,
    message: &'a str,
    fields: &'a [String],
    revision: &'a Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    dropped_before: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct SlackBody {
    text: String,
}

/// The body of `event`, sent at `time` by `instance`, in `format`.
pub fn render(
    format: Format,
    instance: &str,
    event: &Event,
    time: SystemTime,
    dropped: Dropped,
) -> Result<Vec<u8>, serde_json::Error> {
    match format {
        Format::Json => serde_json::to_vec(&JsonBody {
            instance,
            time: humantime::format_rfc3339_seconds(time).to_string(),
            reason: event.reason,
            severity: event.severity,
            object: &event.object,
            message: &event.message,
            fields: &event.fields,
            revision: &event.revision,
            dropped_before: dropped.total(),
        }),
        Format::Slack => serde_json::to_vec(&SlackBody {
            text: slack_text(instance, event, dropped),
        }),
    }
}

/// The Slack message: see the module docs.
pub fn slack_text(instance: &str, event: &Event, dropped: Dropped) -> String {
    let marker = match event.severity {
        Severity::Info => "✅",
        Severity::Warning => "⚠️",
        Severity::Error => "❌",
    };
    let mut text = format!("[{}] {marker} ", escape(instance));
    if let Some(object) = &event.object {
        text.push_str(&escape(&format!("{}/{}: ", object.kind, object.name)));
    }
    text.push_str(event.reason.words());
    if !event.message.is_empty() {
        text.push_str(": ");
        text.push_str(&escape(&one_line(&event.message)));
    }
    if !event.fields.is_empty() {
        text.push_str("\nfields: ");
        text.push_str(&escape(&one_line(&event.fields.join(", "))));
    }
    if let Some(revision) = &event.revision {
        text.push_str("\nrevision: ");
        text.push_str(&escape(&one_line(revision)));
    }
    let total = dropped.total();
    if total > 0 {
        let mut causes = Vec::new();
        if dropped.rate_limit > 0 {
            causes.push("rate limit");
        }
        if dropped.queue_full > 0 {
            causes.push("queue full");
        }
        let were = if total == 1 {
            "earlier event was"
        } else {
            "earlier events were"
        };
        text.push_str(&format!(
            "\n({total} {were} dropped: {})",
            causes.join(", ")
        ));
    }
    text
}

/// Line breaks (and other control characters) as spaces: each part keeps to its line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Slack's escapes for the characters its message syntax uses.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_735_787_045) // 2025-01-02T03:04:05Z
    }

    fn failed() -> Event {
        Event::new(
            Reason::ReconcileFailed,
            Severity::Error,
            "AccessDenied: not allowed",
        )
        .object("AgentRuntime", "mcp")
        .revision(Some("main@sha1:0123".into()))
    }

    fn json(event: &Event, dropped: Dropped) -> String {
        let body = render(Format::Json, "prod", event, at(), dropped).expect("render");
        String::from_utf8(body).expect("utf-8")
    }

    #[test]
    fn json_is_the_event_with_instance_and_time_in_order() {
        assert_eq!(
            json(&failed(), Dropped::default()),
            r#"{"instance":"prod","time":"2025-01-02T03:04:05Z","reason":"reconcileFailed","severity":"error","object":{"kind":"AgentRuntime","name":"mcp"},"message":"AccessDenied: not allowed","fields":[],"revision":"main@sha1:0123"}"#
        );
        let drift = Event::new(Reason::DriftCorrected, Severity::Warning, "put back")
            .fields(vec!["spec.a".into(), "spec.b".into()]);
        assert_eq!(
            json(
                &drift,
                Dropped {
                    rate_limit: 2,
                    queue_full: 1
                }
            ),
            r#"{"instance":"prod","time":"2025-01-02T03:04:05Z","reason":"driftCorrected","severity":"warning","object":null,"message":"put back","fields":["spec.a","spec.b"],"revision":null,"droppedBefore":3}"#
        );
    }

    #[test]
    fn reasons_and_severities_serialize_as_documented() {
        use Reason::*;
        let reasons = [
            (RevisionApplied, "revisionApplied"),
            (SourceFailed, "sourceFailed"),
            (DriftCorrected, "driftCorrected"),
            (ReconcileFailed, "reconcileFailed"),
            (Recovered, "recovered"),
            (TokenRenewalFailed, "tokenRenewalFailed"),
            (TokenExpiring, "tokenExpiring"),
            (PruneRefused, "pruneRefused"),
            (LeadershipGained, "leadershipGained"),
            (LeadershipLost, "leadershipLost"),
        ];
        for (reason, text) in reasons {
            assert_eq!(
                serde_json::to_value(reason).expect("serialize"),
                serde_json::json!(text)
            );
        }
        for (severity, text) in [
            (Severity::Info, "info"),
            (Severity::Warning, "warning"),
            (Severity::Error, "error"),
        ] {
            assert_eq!(
                serde_json::to_value(severity).expect("serialize"),
                serde_json::json!(text)
            );
        }
    }

    #[test]
    fn slack_text_is_one_readable_message() {
        let none = Dropped::default();
        // (event, dropped before it, text)
        let cases = [
            (
                failed(),
                none,
                "[prod] ❌ AgentRuntime/mcp: reconcile failed: AccessDenied: not allowed\n\
                 revision: main@sha1:0123",
            ),
            (
                Event::new(Reason::DriftCorrected, Severity::Warning, "put back")
                    .object("Role", "exec")
                    .fields(vec!["spec.a".into(), "spec.b".into()]),
                Dropped {
                    rate_limit: 3,
                    queue_full: 0,
                },
                "[prod] ⚠️ Role/exec: drift corrected: put back\nfields: spec.a, spec.b\n\
                 (3 earlier events were dropped: rate limit)",
            ),
            (
                Event::new(Reason::LeadershipGained, Severity::Info, ""),
                Dropped {
                    rate_limit: 0,
                    queue_full: 1,
                },
                "[prod] ✅ leadership gained\n(1 earlier event was dropped: queue full)",
            ),
            (
                Event::new(Reason::SourceFailed, Severity::Error, "fetch\nfailed"),
                Dropped {
                    rate_limit: 1,
                    queue_full: 2,
                },
                "[prod] ❌ source failed: fetch failed\n\
                 (3 earlier events were dropped: rate limit, queue full)",
            ),
            (
                Event::new(
                    Reason::PruneRefused,
                    Severity::Warning,
                    "<!channel> & <x|y>",
                ),
                none,
                "[prod] ⚠️ prune refused: &lt;!channel&gt; &amp; &lt;x|y&gt;",
            ),
        ];
        for (event, dropped, text) in cases {
            assert_eq!(slack_text("prod", &event, dropped), text);
            let body = render(Format::Slack, "prod", &event, at(), dropped).expect("render");
            let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(body, serde_json::json!({ "text": text }));
        }
    }
}
