//! Rendering reports for people (tables) and machines (JSON).

use std::fmt::Write as _;

use serde_json::Value;

use crate::engine::{ObjectReport, RunReport, State, TeardownReport};
use crate::kinds::Action;
use crate::manifest::Problem;

/// Left-aligned columns, two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{:<w$}  ", c, w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

fn action_word(action: Option<Action>, plan: bool) -> &'static str {
    match (action, plan) {
        (Some(Action::Create), false) => "created",
        (Some(Action::Update), false) => "updated",
        (Some(Action::Unchanged), false) => "unchanged",
        (Some(Action::Create), true) => "create",
        (Some(Action::Update), true) => "update",
        (Some(Action::Unchanged), true) => "in sync",
        (None, _) => "-",
    }
}

fn state_word(state: State) -> &'static str {
    match state {
        State::Ready => "Ready",
        State::Progressing => "Progressing",
        State::Waiting => "Waiting",
        State::Failed => "Failed",
        State::Blocked => "Blocked",
        State::Absent => "Absent",
    }
}

fn summary_of(o: &ObjectReport) -> String {
    if !o.message.is_empty() {
        return o.message.clone();
    }
    let keys = [
        "arn",
        "poolId",
        "clientId",
        "digest",
        "repositoryUri",
        "username",
        "name",
    ];
    keys.iter()
        .find_map(|k| o.outputs.get(*k).map(|v| format!("{k}={v}")))
        .unwrap_or_default()
}

/// The apply summary table.
pub fn apply_table(report: &RunReport) -> String {
    let rows: Vec<Vec<String>> = report
        .objects
        .iter()
        .map(|o| {
            vec![
                o.kind.clone(),
                o.name.clone(),
                action_word(o.action, false).into(),
                state_word(o.state).into(),
                summary_of(o),
            ]
        })
        .collect();
    let mut out = table(&["KIND", "NAME", "ACTION", "STATE", "DETAIL"], &rows);
    let count = |f: &dyn Fn(&ObjectReport) -> bool| report.objects.iter().filter(|o| f(o)).count();
    let _ = writeln!(
        out,
        "\n{} created, {} updated, {} unchanged, {} not ready ({:.1}s){}",
        count(&|o| o.action == Some(Action::Create)),
        count(&|o| o.action == Some(Action::Update)),
        count(&|o| o.action == Some(Action::Unchanged)),
        count(&|o| o.state != State::Ready),
        report.seconds,
        if report.timed_out { "; timed out" } else { "" }
    );
    out
}

fn render_value(v: &Option<Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(other) => other.to_string(),
    }
}

/// The diff plan: per object, the action and each field change `old → new`.
pub fn plan_text(report: &RunReport) -> String {
    let mut out = String::new();
    for o in &report.objects {
        let head = match (o.action, o.state) {
            (_, State::Failed) => format!("! {}/{}: {}", o.kind, o.name, o.message),
            (_, State::Waiting) => format!("~ {}/{}: waiting: {}", o.kind, o.name, o.message),
            (_, State::Blocked) => format!("+ {}/{}: {}", o.kind, o.name, o.message),
            (Some(Action::Create), _) => format!("+ {}/{}: will be created", o.kind, o.name),
            (Some(Action::Update), _) => format!("~ {}/{}: will be updated", o.kind, o.name),
            _ => format!("  {}/{}: in sync", o.kind, o.name),
        };
        out.push_str(&head);
        out.push('\n');
        for c in &o.changes {
            let _ = writeln!(
                out,
                "    {}: {} → {}",
                c.field,
                render_value(&c.from),
                render_value(&c.to)
            );
        }
    }
    let pending = report
        .objects
        .iter()
        .filter(|o| {
            matches!(o.action, Some(Action::Create | Action::Update)) || o.state == State::Blocked
        })
        .count();
    if pending == 0 {
        out.push_str("\nNo changes: AWS matches the manifests.\n");
    } else {
        let _ = writeln!(out, "\n{pending} object(s) to change.");
    }
    out
}

pub fn teardown_table(report: &TeardownReport) -> String {
    let rows: Vec<Vec<String>> = report
        .objects
        .iter()
        .map(|o| {
            let result = match o.result {
                Some(t) => serde_json::to_value(t)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                None => "failed".into(),
            };
            vec![o.kind.clone(), o.name.clone(), result, o.message.clone()]
        })
        .collect();
    table(&["KIND", "NAME", "RESULT", "DETAIL"], &rows)
}

pub fn problems_text(problems: &[Problem]) -> String {
    let mut out = String::new();
    for p in problems {
        let _ = writeln!(out, "{p}");
    }
    let _ = writeln!(
        out,
        "{} problem{} found",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    out
}

/// The `status` table of a running daemon.
pub fn status_table(s: &crate::engine::status::Snapshot) -> String {
    let cond = |o: &crate::engine::status::ObjectStatus, kind: &str| {
        o.condition(kind)
            .map(|c| c.status.to_string())
            .unwrap_or_else(|| "Unknown".into())
    };
    let rows: Vec<Vec<String>> = s
        .objects
        .iter()
        .map(|o| {
            let reason = o
                .conditions
                .iter()
                .find(|c| c.status != "True")
                .map(|c| {
                    if c.message.is_empty() {
                        c.reason.to_string()
                    } else {
                        format!("{}: {}", c.reason, c.message)
                    }
                })
                .unwrap_or_default();
            vec![
                o.kind.clone(),
                o.name.clone(),
                cond(o, "Ready"),
                cond(o, "Synced"),
                // Set by the live probe only (`spec.probe`): `-` for the others.
                o.condition("Serving")
                    .map_or_else(|| "-".into(), |c| c.status.to_string()),
                o.last_reconcile
                    .as_ref()
                    .map(|r| format!("{} {}", r.outcome, r.at))
                    .unwrap_or_else(|| "-".into()),
                o.next_reconcile_at
                    .map_or_else(|| "-".into(), |t| t.to_string()),
                reason,
            ]
        })
        .collect();
    let mut out = table(
        &[
            "KIND", "NAME", "READY", "SYNCED", "SERVING", "LAST", "NEXT", "REASON",
        ],
        &rows,
    );
    if let Some(l) = &s.leadership {
        let _ = writeln!(out, "\n{}", leadership_line(l));
    }
    if let Some(source) = &s.source {
        let _ = write!(
            out,
            "\n{}",
            source_lines(source, s.applied_revision.as_deref())
        );
    }
    if let Some(msg) = &s.prune_refused {
        let _ = writeln!(out, "\nPRUNE REFUSED: {msg}");
    }
    for p in &s.problems {
        let _ = writeln!(out, "problem: {p}");
    }
    out
}

/// Where a git source stands: what it checked out last, what is applied, and why the
/// last update failed.
fn source_lines(s: &crate::gitsource::SourceStatus, applied: Option<&str>) -> String {
    let mut out = format!("SOURCE: {} ({}", s.url, s.reference);
    if !s.path.is_empty() {
        let _ = write!(out, ", path {}", s.path);
    }
    out.push_str(")\n");
    match &s.revision {
        Some(r) => {
            let _ = writeln!(
                out,
                "  revision: {r} ({:?}, committed {})",
                r.subject, r.commit_time
            );
        }
        None => out.push_str("  revision: none checked out yet\n"),
    }
    let _ = writeln!(out, "  applied:  {}", applied.unwrap_or("not yet"));
    if let Some(e) = &s.last_error {
        let at = s.last_error_at.map(|t| t.to_string()).unwrap_or_default();
        let stays = if s.revision.is_some() {
            "the revision above stays in force"
        } else {
            "nothing is loaded until a revision is checked out"
        };
        let _ = writeln!(out, "  FAILING since {at}: {e} ({stays})");
    }
    out
}

/// One line on this replica's part in leader election.
fn leadership_line(l: &crate::leader::Leadership) -> String {
    use crate::leader::Role;
    let expires = l.lease_expires_at.as_deref().unwrap_or("unknown");
    match (&l.role, &l.holder) {
        (Role::Leader, _) => format!(
            "LEADER: this replica ({}) holds {} until {expires} unless renewed; {} transitions",
            l.identity, l.lease, l.transitions
        ),
        (Role::Standby, Some(holder)) => format!(
            "STANDBY: this replica ({}) observes only; {holder} holds {} (until {expires} unless renewed)",
            l.identity, l.lease
        ),
        (Role::Standby, None) => format!(
            "STANDBY: this replica ({}) observes only; nobody holds {} as far as it has seen",
            l.identity, l.lease
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_says_which_replica_leads() {
        use crate::leader::{Leadership, Role};
        let l = |role, holder: Option<&str>| Leadership {
            role,
            identity: "b-1".into(),
            holder: holder.map(String::from),
            lease_expires_at: Some("2026-12-04T00:00:15Z".into()),
            lease: "dynamodb:t/i".into(),
            transitions: 3,
        };
        // (leadership, what the line must say)
        let cases = [
            (
                l(Role::Leader, Some("b-1")),
                "LEADER: this replica (b-1) holds dynamodb:t/i until 2026-12-04T00:00:15Z",
            ),
            (
                l(Role::Standby, Some("a-7")),
                "STANDBY: this replica (b-1) observes only; a-7 holds dynamodb:t/i",
            ),
            (l(Role::Standby, None), "nobody holds dynamodb:t/i"),
        ];
        for (leadership, says) in cases {
            let line = leadership_line(&leadership);
            assert!(line.contains(says), "{line}");
        }
        let snapshot = crate::engine::status::Snapshot {
            leadership: Some(l(Role::Standby, Some("a-7"))),
            ..Default::default()
        };
        assert!(status_table(&snapshot).contains("STANDBY: "));
    }

    #[test]
    fn the_status_says_which_revision_is_in_force_and_why_updates_fail() {
        let sha = "c".repeat(40);
        let source = crate::gitsource::SourceStatus {
            url: "https://github.com/o/r.git".into(),
            reference: "branch main".into(),
            path: "manifests".into(),
            revision: Some(crate::gitsource::Revision {
                reference: "main".into(),
                sha: sha.clone(),
                commit_time: crate::engine::status::Timestamp::of(std::time::UNIX_EPOCH),
                subject: "Raise the idle timeout".into(),
            }),
            last_error: Some(format!("commit {} is not signed", "d".repeat(40))),
            ..Default::default()
        };
        let snapshot = crate::engine::status::Snapshot {
            source: Some(source),
            applied_revision: Some(format!("main@sha1:{sha}").into()),
            ..Default::default()
        };
        let text = status_table(&snapshot);
        for says in [
            "SOURCE: https://github.com/o/r.git (branch main, path manifests)",
            &format!("revision: main@sha1:{sha} (\"Raise the idle timeout\""),
            &format!("applied:  main@sha1:{sha}"),
            "is not signed (the revision above stays in force)",
        ] {
            assert!(text.contains(says), "{says}\n{text}");
        }
    }

    #[test]
    fn the_status_shows_serving_for_probed_objects_only() {
        use crate::engine::status::{Condition, ObjectStatus, Snapshot, Timestamp};
        let condition = |kind: &'static str,
                         status: &'static str,
                         reason: &'static str,
                         message: &str| Condition {
            kind: kind.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: Timestamp::of(std::time::UNIX_EPOCH),
        };
        let mut probed = ObjectStatus::new("AgentRuntime", "rt");
        probed.conditions = vec![
            condition("Ready", "True", "Available", ""),
            condition("Synced", "True", "ReconcileSuccess", ""),
            condition("Serving", "False", "ClientMismatch", "HTTP 403"),
        ];
        let mut plain = ObjectStatus::new("Role", "role");
        plain.conditions = vec![
            condition("Ready", "True", "Available", ""),
            condition("Synced", "True", "ReconcileSuccess", ""),
        ];
        let snapshot = Snapshot {
            objects: vec![std::sync::Arc::new(probed), std::sync::Arc::new(plain)],
            ..Default::default()
        };
        let text = status_table(&snapshot);
        let lines: Vec<&str> = text.lines().collect();
        let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            words(lines[0])[..5],
            ["KIND", "NAME", "READY", "SYNCED", "SERVING"]
        );
        assert_eq!(
            words(lines[1])[..5],
            ["AgentRuntime", "rt", "True", "True", "False"]
        );
        assert!(lines[1].ends_with("ClientMismatch: HTTP 403"), "{text}");
        assert_eq!(words(lines[2])[..5], ["Role", "role", "True", "True", "-"]);
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "LONGER"],
            &[vec!["xx".into(), "y".into()], vec!["z".into(), "".into()]],
        );
        assert_eq!(t, "A   LONGER\nxx  y\nz\n");
    }
}
