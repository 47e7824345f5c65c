//! `spec.probe`: a live probe of the runtime, run by the daemon (see [`crate::probe`]).
//! Nothing here goes to AWS, nor into the desired runtime that is diffed.
//!
//! ```yaml
//! probe: { interval: 5m }              # the Token whose client the authorizer allows
//! probe: { interval: 1m, tokenRef: mcp-user-token }
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::de::FieldProblem;

/// The shortest interval between probes.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// The interval when none is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeSpec {
    /// How often the daemon calls the runtime (e.g. `5m`, at least `10s`; default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// metadata.name of the Token whose published bearer the probe presents. Default: the
    /// Token whose clientRef is among the authorizer's clientRefs (or the only Token).
    /// A runtime without a JWT authorizer is probed with SigV4 instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ref: Option<String>,
}

impl ProbeSpec {
    /// The interval (the default for one that does not parse: validation refuses it).
    pub fn interval(&self) -> Duration {
        self.interval
            .as_deref()
            .and_then(|i| humantime::parse_duration(i.trim()).ok())
            .unwrap_or(DEFAULT_INTERVAL)
    }
}

/// Problems of `spec.probe`: an interval that is not a duration, or shorter than 10s;
/// an empty tokenRef.
pub fn validate(p: &ProbeSpec, problems: &mut Vec<FieldProblem>) {
    if let Some(i) = &p.interval {
        match humantime::parse_duration(i.trim()) {
            Ok(d) if d < MIN_INTERVAL => problems.push(FieldProblem::new(
                "spec.probe.interval",
                format!("`{i}` is shorter than 10s: probe at most every 10 seconds"),
            )),
            Ok(_) => {}
            Err(e) => problems.push(FieldProblem::new(
                "spec.probe.interval",
                format!("`{i}` is not a duration ({e}): write e.g. `30s`, `5m` or `1h`"),
            )),
        }
    }
    if p.token_ref.as_deref().is_some_and(|t| t.trim().is_empty()) {
        problems.push(FieldProblem::new(
            "spec.probe.tokenRef",
            "is empty: name a Token, or leave tokenRef out",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_durations_of_at_least_ten_seconds() {
        // interval, tokenRef, the problem's words (None: valid), the interval used.
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, u64);
        let cases: [Case<'_>; 8] = [
            (None, None, None, 300),
            (Some("5m"), None, None, 300),
            (Some("10s"), None, None, 10),
            (Some(" 1h "), Some("t"), None, 3600),
            (Some("9s"), None, Some("shorter than 10s"), 9),
            (Some("500ms"), None, Some("shorter than 10s"), 0),
            (Some("often"), None, Some("not a duration"), 300),
            (None, Some(" "), Some("name a Token"), 300),
        ];
        for (interval, token_ref, want, secs) in cases {
            let p = ProbeSpec {
                interval: interval.map(String::from),
                token_ref: token_ref.map(String::from),
            };
            let mut problems = Vec::new();
            validate(&p, &mut problems);
            match want {
                None => assert!(problems.is_empty(), "{interval:?}: {problems:?}"),
                Some(words) => {
                    assert_eq!(problems.len(), 1, "{interval:?}: {problems:?}");
                    assert!(
                        problems[0].message.contains(words),
                        "{interval:?}: {problems:?}"
                    );
                }
            }
            assert_eq!(p.interval().as_secs(), secs, "{interval:?}");
        }
    }
}
