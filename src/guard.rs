//! Who may use the daemon's HTTP endpoints.
//!
//! - Every endpoint refuses a `Host` header naming a host it was not told about: a page
//!   on an attacker's domain that rebinds its name to this address (DNS rebinding) sends
//!   its own name as Host. An IP literal and `localhost` are always answered (no
//!   attacker controls them), and so is a request without Host (browsers always send
//!   one); other names only when given with `--allowed-host`.
//! - The POST endpoints (reconcile now, confirm a prune) act: on loopback they need only
//!   the action header (a cross-site page cannot add it); beyond loopback they need a
//!   bearer token read from `--admin-token-file`, and without one they are off.

use std::net::{IpAddr, SocketAddr};

use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

#[derive(Clone)]
pub struct Guard {
    loopback: bool,
    /// Lower case, without a trailing dot.
    allowed_hosts: Vec<String>,
    admin_token: Option<SecretString>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("loopback", &self.loopback)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Why a request is refused: the status and a message that says what to do.
pub type Refusal = (StatusCode, &'static str);

impl Guard {
    pub fn new(
        listen: SocketAddr,
        allowed_hosts: &[String],
        admin_token: Option<SecretString>,
    ) -> Self {
        Self {
            loopback: listen.ip().is_loopback(),
            allowed_hosts: allowed_hosts.iter().map(|h| normalise(h)).collect(),
            admin_token,
        }
    }

    /// Whether the daemon listens beyond loopback with its POST endpoints off.
    pub fn actions_off(&self) -> bool {
        !self.loopback && self.admin_token.is_none()
    }

    /// May a request with this Host header be served?
    pub fn host(&self, host: Option<&str>) -> Result<(), Refusal> {
        let Some(host) = host else {
            return Ok(());
        };
        let name = normalise(strip_port(host));
        let ip_literal = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok();
        let local = name == "localhost" || name.ends_with(".localhost");
        if ip_literal || local || self.allowed_hosts.contains(&name) {
            Ok(())
        } else {
            Err((
                StatusCode::MISDIRECTED_REQUEST,
                "this daemon does not answer to that Host name (a guard against DNS \
                 rebinding); address it by IP or localhost, or start it with \
                 --allowed-host NAME\n",
            ))
        }
    }

    /// May a POST with this `Authorization` header act?
    pub fn act(&self, authorization: Option<&str>) -> Result<(), Refusal> {
        match &self.admin_token {
            None if self.loopback => Ok(()),
            None => Err((
                StatusCode::FORBIDDEN,
                "POST endpoints are off: the daemon listens beyond loopback and was started \
                 without --admin-token-file\n",
            )),
            Some(token) => {
                let given = authorization
                    .and_then(|a| a.strip_prefix("Bearer "))
                    .map(str::trim)
                    .unwrap_or_default();
                if same(given, token.expose_secret()) {
                    Ok(())
                } else {
                    Err((
                        StatusCode::UNAUTHORIZED,
                        "POST needs Authorization: Bearer with the token in the daemon's \
                         --admin-token-file (agentcore-controller confirm-prune \
                         --admin-token-file FILE)\n",
                    ))
                }
            }
        }
    }
}

/// Read an admin token file: its content without surrounding white space, not empty.
pub fn read_token_file(path: &std::path::Path) -> Result<SecretString, String> {
    read_secret_file(path, "the admin token file")
}

/// Read a secret kept in a file (`what` names it in errors, which never quote the
/// content): its content without surrounding white space, not empty.
pub fn read_secret_file(path: &std::path::Path, what: &str) -> Result<SecretString, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{what} {} is empty", path.display()));
    }
    Ok(SecretString::from(secret.to_string()))
}

/// Equal, in time that does not depend on where they differ (digests compared whole).
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn normalise(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `name:port`, `[v6]:port`, `v4:port` → the host part (a bare IPv6 address has no port).
fn strip_port(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(listen: &str, hosts: &[&str], token: Option<&str>) -> Guard {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        Guard::new(
            listen.parse().expect("address"),
            &hosts,
            token.map(|t| SecretString::from(t.to_string())),
        )
    }

    #[test]
    fn hosts_an_attacker_cannot_name_are_answered_and_others_only_when_allowed() {
        let g = guard(
            "0.0.0.0:8181",
            &["controller.example.com", "Ops.Internal."],
            None,
        );
        // (Host header, answered)
        let cases = [
            (None, true),
            (Some("10.0.0.7:8181"), true),
            (Some("127.0.0.1"), true),
            (Some("[::1]:8181"), true),
            (Some("::1"), true),
            (Some("localhost:9090"), true),
            (Some("LOCALHOST"), true),
            (Some("app.localhost"), true),
            (Some("controller.example.com:8181"), true),
            (Some("CONTROLLER.example.com."), true),
            (Some("ops.internal"), true),
            (Some("evil.example"), false),
            (Some("evil.example:8181"), false),
            (Some("127.0.0.1.evil.example"), false),
            (Some("localhost.evil.example"), false),
            (Some(""), false),
        ];
        for (host, answered) in cases {
            assert_eq!(g.host(host).is_ok(), answered, "{host:?}");
        }
        assert_eq!(
            g.host(Some("evil.example")).map_err(|r| r.0),
            Err(StatusCode::MISDIRECTED_REQUEST)
        );
    }

    #[test]
    fn posts_act_on_loopback_or_with_the_admin_token_only() {
        // (listen, token configured, Authorization header, outcome)
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Result<(), StatusCode>,
        );
        let cases: [Case; 8] = [
            ("127.0.0.1:8181", None, None, Ok(())),
            ("[::1]:8181", None, None, Ok(())),
            ("0.0.0.0:8181", None, None, Err(StatusCode::FORBIDDEN)),
            (
                "0.0.0.0:8181",
                None,
                Some("Bearer anything"),
                Err(StatusCode::FORBIDDEN),
            ),
            (
                "0.0.0.0:8181",
                Some("s3cret"),
                Some("Bearer s3cret"),
                Ok(()),
            ),
            (
                "0.0.0.0:8181",
                Some("s3cret"),
                Some("Bearer s3cre"),
                Err(StatusCode::UNAUTHORIZED),
            ),
            (
                "0.0.0.0:8181",
                Some("s3cret"),
                None,
                Err(StatusCode::UNAUTHORIZED),
            ),
            // A token configured on loopback is required there too.
            (
                "127.0.0.1:8181",
                Some("s3cret"),
                Some("Basic s3cret"),
                Err(StatusCode::UNAUTHORIZED),
            ),
        ];
        for (listen, token, auth, outcome) in cases {
            let g = guard(listen, &[], token);
            assert_eq!(
                g.act(auth).map_err(|r| r.0),
                outcome,
                "{listen} {token:?} {auth:?}"
            );
        }
        assert!(guard("0.0.0.0:1", &[], None).actions_off());
        assert!(!guard("0.0.0.0:1", &[], Some("t")).actions_off());
        assert!(!guard("127.0.0.1:1", &[], None).actions_off());
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let g = guard("0.0.0.0:8181", &[], Some("s3cret-token"));
        assert!(!format!("{g:?}").contains("s3cret"));
    }

    #[test]
    fn a_token_file_is_trimmed_and_must_hold_something() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, "  abc\n").expect("write");
        assert_eq!(
            read_token_file(&file).map(|t| t.expose_secret().to_string()),
            Ok("abc".into())
        );
        std::fs::write(&file, "\n").expect("write");
        assert!(read_token_file(&file).is_err());
        assert!(read_token_file(&dir.path().join("missing")).is_err());
    }
}
