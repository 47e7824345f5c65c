//! Cognito's OAuth 2.0 token endpoint, for machine-to-machine tokens: the
//! `client_credentials` grant at `https://{prefix}.auth.{region}.amazoncognito.com/oauth2/token`
//! (client_secret_basic authentication; a form body; JSON `{access_token, token_type,
//! expires_in}` back, with no ID or refresh token).
//!
//! With [`DOMAIN_URL_ENV`] set (the AWS emulator), a Cognito domain URL is posted to
//! `{override}/oauth2/token` with the domain's host in `X-Forwarded-Host`, as
//! [`super::oidc`] routes discovery URLs. That variable is the token endpoint's own:
//! `AWS_ENDPOINT_URL` and its per-service forms are SDK settings (FIPS or VPC endpoints of
//! the Cognito API) and never reroute the request that carries the client secret. The
//! override must be `https://`, or plain `http://` to a loopback host only.
//!
//! The client secret and the token are [`SecretString`]s: neither ever reaches an error,
//! and error messages carry the endpoint's error code, never its description (which could
//! quote the request).

use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::{Reason, ReconcileError, chain};

/// Time allowed for the request, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The base URL that stands in for `https://{prefix}.auth.{region}.amazoncognito.com`
/// (an emulator).
pub const DOMAIN_URL_ENV: &str = "AGENTCORE_COGNITO_DOMAIN_URL";

/// The override [`DOMAIN_URL_ENV`] sets, if any.
pub fn domain_override() -> Option<String> {
    std::env::var(DOMAIN_URL_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Whether `base` may receive a client secret: `https://`, or `http://` to a loopback host
/// (`localhost`, `127.0.0.0/8`, `::1`).
fn check_override(base: &str) -> Result<Url, String> {
    let url =
        Url::parse(base).map_err(|e| format!("{DOMAIN_URL_ENV} {base:?} is not a URL: {e}"))?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(format!(
            "{DOMAIN_URL_ENV} {base:?} is refused: the token endpoint receives the client \
             secret, so it must be https:// (plain http:// only to localhost, 127.0.0.1 or ::1)"
        )),
    }
}

/// Whether `url` is on a Cognito prefix domain (`{prefix}.auth.{region}.amazoncognito.com`).
fn is_cognito_domain(url: &Url) -> bool {
    url.host_str().is_some_and(|h| {
        h.contains(".auth.")
            && (h.ends_with(".amazoncognito.com") || h.ends_with(".amazoncognito.com.cn"))
    })
}

/// The URL to post to for `token_url`, and the host to name in `X-Forwarded-Host` when the
/// override applied.
pub fn route(
    token_url: &str,
    endpoint_override: Option<&str>,
) -> Result<(Url, Option<String>), String> {
    let parsed =
        Url::parse(token_url.trim()).map_err(|e| format!("{token_url:?} is not a URL: {e}"))?;
    let base = endpoint_override.map(str::trim).filter(|b| !b.is_empty());
    let Some(base) = base.filter(|_| is_cognito_domain(&parsed)) else {
        return Ok((parsed, None));
    };
    check_override(base)?;
    let routed = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        parsed.path().trim_start_matches('/')
    );
    let routed = Url::parse(&routed)
        .map_err(|e| format!("the endpoint override {base:?} does not make a URL: {e}"))?;
    Ok((routed, parsed.host_str().map(String::from)))
}

/// The form body of a client_credentials request.
pub fn form(scopes: &[String]) -> String {
    let mut body = "grant_type=client_credentials".to_string();
    if !scopes.is_empty() {
        body.push_str("&scope=");
        body.push_str(&utf8_percent_encode(&scopes.join(" "), NON_ALPHANUMERIC).to_string());
    }
    body
}

/// A token from the endpoint (its lifetime is read from the token itself, as for the
/// password grant's).
pub struct Granted {
    pub access_token: SecretString,
}

#[derive(Deserialize)]
struct Answer {
    access_token: SecretString,
}

#[derive(Deserialize)]
struct Refusal {
    error: String,
}

/// What a refusal means, for `client_id` asking for `scopes`: a message that says what to
/// fix. Every OAuth error is terminal (only a change of the client or the manifest helps)
/// but a server error.
pub fn refusal(status: u16, error: &str, client_id: &str, scopes: &[String]) -> ReconcileError {
    let asked = if scopes.is_empty() {
        "its allowed scopes".to_string()
    } else {
        scopes.join(" ")
    };
    let what = match error {
        "invalid_client" => format!(
            "the token endpoint refused app client {client_id}'s credentials: the client has no \
             secret, or another one than Cognito describes (generateSecret: true is needed)"
        ),
        "unauthorized_client" => format!(
            "app client {client_id} may not use the client_credentials grant: its \
             allowedOAuthFlows must be [client_credentials] with allowedOAuthFlowsUserPoolClient: true"
        ),
        "invalid_scope" => format!(
            "app client {client_id} is not allowed the scope(s) {asked}: each must be in the \
             client's allowedOAuthScopes and defined by a ResourceServer of its pool"
        ),
        "unsupported_grant_type" => {
            format!("the token endpoint does not take the client_credentials grant for {client_id}")
        }
        "invalid_request" => {
            format!("the token endpoint found the request for {client_id} malformed")
        }
        other => format!("the token endpoint refused {client_id}: {other}"),
    };
    let text = format!("{what} ({error}, HTTP {status})");
    if status >= 500 || status == 429 {
        ReconcileError::recoverable(Reason::aws(error), text)
    } else {
        ReconcileError::terminal(Reason::aws(error), text)
    }
}

/// POST the client_credentials grant to `token_url` (through `endpoint_override`, from
/// [`domain_override`], for a Cognito domain), authenticating as `client_id` with `secret`.
pub async fn client_credentials(
    token_url: &str,
    client_id: &str,
    secret: &SecretString,
    scopes: &[String],
    endpoint_override: Option<&str>,
) -> Result<Granted, ReconcileError> {
    let invalid = |msg: String| ReconcileError::terminal(Reason::InvalidSpec, msg);
    let (url, forwarded) = route(token_url, endpoint_override).map_err(invalid)?;
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| {
            ReconcileError::recoverable(
                Reason::Unreachable,
                format!("token endpoint: cannot set up HTTPS: {}", chain(&e)),
            )
        })?;
    // basic_auth marks the header sensitive: it is never printed.
    let mut request = client
        .post(url.clone())
        .basic_auth(client_id, Some(secret.expose_secret()))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(form(scopes));
    if let Some(host) = forwarded {
        request = request.header("X-Forwarded-Host", host);
    }
    let unreachable = |e: reqwest::Error| {
        ReconcileError::recoverable(
            Reason::Unreachable,
            format!("POST {token_url}: {}", chain(&e.without_url())),
        )
    };
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    if status.is_success() {
        // Never quote the body: it holds the token.
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
            ReconcileError::recoverable(
                Reason::BadResponse,
                format!("POST {token_url}: HTTP {status} without a token in JSON"),
            )
        })?;
        return Ok(Granted {
            access_token: answer.access_token,
        });
    }
    match serde_json::from_slice::<Refusal>(&body) {
        Ok(r) => Err(refusal(status.as_u16(), &r.error, client_id, scopes)),
        Err(_) if status.is_server_error() => Err(ReconcileError::recoverable(
            Reason::BadResponse,
            format!("POST {token_url}: HTTP {status}"),
        )),
        Err(_) => Err(ReconcileError::terminal(
            Reason::BadResponse,
            format!(
                "POST {token_url}: HTTP {status} without an OAuth error (is this a Cognito domain's token endpoint?)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://my-tokens.auth.eu-west-1.amazoncognito.com/oauth2/token";

    #[test]
    fn only_cognito_domains_go_through_the_override() {
        let (u, host) = route(URL, Some("http://127.0.0.1:5000/")).expect("route");
        assert_eq!(u.as_str(), "http://127.0.0.1:5000/oauth2/token");
        assert_eq!(
            host.as_deref(),
            Some("my-tokens.auth.eu-west-1.amazoncognito.com")
        );
        let (u, host) = route(URL, None).expect("route");
        assert_eq!((u.as_str(), host), (URL, None));
        let (u, host) = route(URL, Some(" ")).expect("route");
        assert_eq!((u.as_str(), host), (URL, None));
        let other = "https://login.example.com/oauth2/token";
        let (u, host) = route(other, Some("http://127.0.0.1:5000")).expect("route");
        assert_eq!((u.as_str(), host), (other, None));
        assert!(route("not a url", None).is_err());
    }

    #[test]
    fn the_override_is_https_or_loopback_http() {
        for (base, ok) in [
            ("http://127.0.0.1:5000", true),
            ("http://localhost:5000/", true),
            ("http://[::1]:5000", true),
            ("https://cognito-proxy.internal.example.com", true),
            ("https://10.0.0.5:8443", true),
            ("http://10.0.0.5:5000", false),
            ("http://cognito-proxy.internal.example.com", false),
            ("http://127.0.0.1.example.com", false),
            ("ftp://127.0.0.1", false),
            ("not a url", false),
        ] {
            let routed = route(URL, Some(base));
            assert_eq!(routed.is_ok(), ok, "{base}: {routed:?}");
            if let Err(e) = routed {
                assert!(e.contains(DOMAIN_URL_ENV), "{e}");
            }
        }
        // Not a Cognito domain: the override is not used, so not judged either.
        let other = "https://login.example.com/oauth2/token";
        assert!(route(other, Some("http://10.0.0.5:5000")).is_ok());
    }

    #[test]
    fn the_form_encodes_scopes() {
        assert_eq!(form(&[]), "grant_type=client_credentials");
        assert_eq!(
            form(&["mcp/read".into(), "https://api/x".into()]),
            "grant_type=client_credentials&scope=mcp%2Fread%20https%3A%2F%2Fapi%2Fx"
        );
    }

    #[test]
    fn refusals_say_what_to_fix() {
        let scopes = vec!["mcp/admin".to_string()];
        for (error, status, says, terminal) in [
            ("invalid_client", 400, "no secret", true),
            ("unauthorized_client", 400, "allowedOAuthFlows", true),
            ("invalid_scope", 400, "mcp/admin", true),
            ("unsupported_grant_type", 400, "client_credentials", true),
            ("invalid_request", 400, "malformed", true),
            ("server_error", 503, "server_error", false),
        ] {
            let e = refusal(status, error, "client1", &scopes);
            assert_eq!(e.is_terminal(), terminal, "{error}");
            assert!(e.message.contains(says), "{error}: {}", e.message);
            assert!(e.message.contains("client1"), "{}", e.message);
            assert_eq!(e.reason.as_str(), error);
        }
        let e = refusal(400, "invalid_scope", "c", &[]);
        assert!(e.message.contains("its allowed scopes"), "{}", e.message);
    }
}
