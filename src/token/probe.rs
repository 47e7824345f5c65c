//! `check-auth --probe`: send one MCP `initialize` to the runtime's invocation URL with
//! the bearer token, and one signed with SigV4, and report which auth mode it accepts.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// The outcome of one probe.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// `bearer` or `sigv4`.
    pub mode: &'static str,
    pub accepted: bool,
    /// HTTP status, when the runtime answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub detail: String,
}

/// The MCP `initialize` request body.
pub fn initialize_body() -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "agentcore-controller", "version": env!("CARGO_PKG_VERSION")}
        }
    })
    .to_string()
}

fn base_headers() -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".into()),
        ("accept", "application/json, text/event-stream".into()),
        // AgentCore wants a session id of at least 33 characters.
        (
            "x-amzn-bedrock-agentcore-runtime-session-id",
            format!("agentcore-controller-probe-{}", uuid::Uuid::new_v4()),
        ),
    ]
}

/// SigV4 headers for a POST of `body` to `url` (service `bedrock-agentcore`).
pub fn sigv4_headers(
    url: &str,
    body: &str,
    headers: &[(&'static str, String)],
    credentials: aws_credential_types::Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("bedrock-agentcore")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign: {e}"))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(k, v)| (*k, v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| format!("cannot sign: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("cannot sign: {e}"))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

async fn post(
    url: &str,
    headers: Vec<(String, String)>,
    body: String,
    mode: &'static str,
) -> Probe {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return Probe {
                mode,
                accepted: false,
                status: None,
                detail: format!("no HTTP client: {e}"),
            };
        }
    };
    let mut req = client.post(url).body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let www = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let accepted = resp.status().is_success();
            let detail = if accepted {
                "accepted: the runtime answered initialize".to_string()
            } else if status == 401 || status == 403 {
                format!("refused ({status}) {www}").trim_end().to_string()
            } else {
                format!("HTTP {status}")
            };
            Probe {
                mode,
                accepted,
                status: Some(status),
                detail,
            }
        }
        Err(e) => Probe {
            mode,
            accepted: false,
            status: None,
            detail: format!("no answer: {e}"),
        },
    }
}

/// Probe `url` once with the bearer token and once with SigV4 (credentials from `sdk`).
pub async fn probe(
    url: &str,
    bearer: &SecretString,
    sdk: &aws_config::SdkConfig,
    region: &str,
) -> Vec<Probe> {
    let body = initialize_body();
    let mut bearer_headers: Vec<(String, String)> = base_headers()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    bearer_headers.push((
        "authorization".into(),
        format!("Bearer {}", bearer.expose_secret()),
    ));
    let mut out = vec![post(url, bearer_headers, body.clone(), "bearer").await];

    let base = base_headers();
    let creds = match sdk.credentials_provider() {
        Some(p) => p.provide_credentials().await.map_err(|e| e.to_string()),
        None => Err("no AWS credentials configured".to_string()),
    };
    let signed = creds.and_then(|c| sigv4_headers(url, &body, &base, c, region, SystemTime::now()));
    match signed {
        Ok(sig) => {
            let mut headers: Vec<(String, String)> =
                base.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            headers.extend(sig);
            out.push(post(url, headers, body, "sigv4").await);
        }
        Err(e) => out.push(Probe {
            mode: "sigv4",
            accepted: false,
            status: None,
            detail: e,
        }),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialize_is_json_rpc() {
        let v: serde_json::Value = serde_json::from_str(&initialize_body()).expect("json");
        assert_eq!(v["method"], "initialize");
        assert_eq!(v["jsonrpc"], "2.0");
    }

    #[test]
    fn sigv4_signs_for_bedrock_agentcore() {
        let creds =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let headers = base_headers();
        let url = "https://bedrock-agentcore.us-east-1.amazonaws.com/runtimes/arn%3Aaws%3Ax/invocations?qualifier=DEFAULT";
        let signed = sigv4_headers(
            url,
            "{}",
            &headers,
            creds,
            "us-east-1",
            SystemTime::UNIX_EPOCH,
        )
        .expect("signed");
        let auth = signed
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone())
            .expect("authorization header");
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/19700101/us-east-1/bedrock-agentcore/aws4_request"), "{auth}");
        assert!(!auth.contains("secret"));
        assert!(signed.iter().any(|(k, _)| k == "x-amz-date"));
    }
}
