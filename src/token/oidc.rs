//! The issuer's OpenID configuration and signing keys (JWKS), fetched from a runtime's
//! `discoveryUrl` as its JWT authorizer does.
//!
//! With an endpoint override (the AWS emulator, from `AWS_ENDPOINT_URL`), a Cognito URL
//! `https://cognito-idp.{region}.amazonaws.com/{path}` is fetched as `{override}/{path}`.
//! The emulator names its own host in the documents it serves, so a [`Discovery`] fetched
//! through an override reports what AWS would: the issuer derived from the discovery URL
//! ([`expected_issuer`]) and the JWKS URI on the Cognito host, which [`fetch_jwks`] then
//! routes through the override again.

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use reqwest::Url;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::chain;

/// Time allowed for each fetch, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// What the authorizer needs from the OpenID configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    jwks_uri: String,
}

/// The issuer a discovery URL stands for: the URL without
/// `/.well-known/openid-configuration` (for Cognito,
/// `https://cognito-idp.{region}.amazonaws.com/{poolId}`, the tokens' `iss`).
pub fn expected_issuer(discovery_url: &str) -> String {
    let url = discovery_url.trim();
    url.strip_suffix(WELL_KNOWN).unwrap_or(url).to_string()
}

/// Fetch the OpenID configuration at `discovery_url` (through `endpoint_override` when it
/// is a Cognito URL and an override is given).
pub async fn fetch_discovery(
    discovery_url: &str,
    endpoint_override: Option<&str>,
) -> Result<Discovery, String> {
    let discovery_url = discovery_url.trim();
    let (url, overridden) = route(discovery_url, endpoint_override)?;
    let doc: Document = get_json(&url, "the OpenID configuration").await?;
    if !overridden {
        return Ok(Discovery {
            issuer: doc.issuer,
            jwks_uri: doc.jwks_uri,
        });
    }
    // The emulator's document names the emulator's host: keep its paths, put them back
    // on the Cognito host the runtime would use.
    let original = parse(discovery_url)?;
    let served = Url::parse(&doc.jwks_uri).map_err(|e| {
        format!(
            "the OpenID configuration from {url} has a jwks_uri that is not a URL ({}): {e}",
            doc.jwks_uri
        )
    })?;
    let mut jwks_uri = original;
    jwks_uri.set_path(served.path());
    jwks_uri.set_query(served.query());
    Ok(Discovery {
        issuer: expected_issuer(discovery_url),
        jwks_uri: jwks_uri.to_string(),
    })
}

/// Fetch the signing keys at `jwks_uri` (through `endpoint_override` when it is a Cognito
/// URL and an override is given).
pub async fn fetch_jwks(jwks_uri: &str, endpoint_override: Option<&str>) -> Result<JwkSet, String> {
    let (url, _) = route(jwks_uri.trim(), endpoint_override)?;
    get_json(&url, "the signing keys (JWKS)").await
}

fn parse(url: &str) -> Result<Url, String> {
    Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))
}

fn is_cognito(url: &Url) -> bool {
    url.host_str().is_some_and(|h| {
        h.starts_with("cognito-idp.")
            && (h.ends_with(".amazonaws.com") || h.ends_with(".amazonaws.com.cn"))
    })
}

/// The URL to fetch for `url`, and whether the override applied.
fn route(url: &str, endpoint_override: Option<&str>) -> Result<(Url, bool), String> {
    let parsed = parse(url)?;
    let base = endpoint_override.map(str::trim).filter(|b| !b.is_empty());
    let Some(base) = base.filter(|_| is_cognito(&parsed)) else {
        return Ok((parsed, false));
    };
    let mut routed = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        parsed.path().trim_start_matches('/')
    );
    if let Some(q) = parsed.query() {
        routed.push('?');
        routed.push_str(q);
    }
    let routed = Url::parse(&routed)
        .map_err(|e| format!("the endpoint override {base:?} does not make a URL: {e}"))?;
    Ok((routed, true))
}

async fn get_json<T: DeserializeOwned>(url: &Url, what: &str) -> Result<T, String> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| format!("fetching {what}: cannot set up HTTPS: {}", chain(&e)))?;
    let response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| fetch_error(what, url, e))?;
    let status = response.status();
    if !status.is_success() {
        let hint = if status == reqwest::StatusCode::NOT_FOUND && is_cognito(url) {
            " (check the region and user pool id in the URL)"
        } else {
            ""
        };
        return Err(format!("fetching {what} from {url}: HTTP {status}{hint}"));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| fetch_error(what, url, e))?;
    serde_json::from_slice(&body).map_err(|e| format!("{url} did not return {what}: {e}"))
}

fn fetch_error(what: &str, url: &Url, e: reqwest::Error) -> String {
    if e.is_timeout() {
        return format!(
            "fetching {what} from {url}: no answer within {} s",
            TIMEOUT.as_secs()
        );
    }
    format!("fetching {what} from {url}: {}", chain(&e.without_url()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::jwt::{self, CHECKS, Expectation, TokenUse};
    use std::time::SystemTime;

    const POOL_URL: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123/.well-known/openid-configuration";

    #[test]
    fn issuer_is_the_discovery_url_without_the_well_known_part() {
        assert_eq!(
            expected_issuer(POOL_URL),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
        );
        assert_eq!(
            expected_issuer(" https://idp.example.com/.well-known/openid-configuration\n"),
            "https://idp.example.com"
        );
        assert_eq!(expected_issuer("https://x/y"), "https://x/y");
    }

    #[test]
    fn only_cognito_urls_go_through_the_override() {
        let (u, o) = route(POOL_URL, Some("http://127.0.0.1:5000/")).unwrap();
        assert!(o);
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:5000/eu-west-1_AbC123/.well-known/openid-configuration"
        );
        let (u, o) = route(POOL_URL, None).unwrap();
        assert!(!o);
        assert_eq!(u.as_str(), POOL_URL);
        let (u, o) = route(POOL_URL, Some("  ")).unwrap();
        assert!(!o);
        assert_eq!(u.as_str(), POOL_URL);
        let other = "https://login.example.com/realm/.well-known/openid-configuration";
        let (u, o) = route(other, Some("http://127.0.0.1:5000")).unwrap();
        assert!(!o);
        assert_eq!(u.as_str(), other);
        let china = "https://cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_X/.well-known/jwks.json?v=1";
        let (u, _) = route(china, Some("http://localhost:4566/base")).unwrap();
        assert_eq!(
            u.as_str(),
            "http://localhost:4566/base/cn-north-1_X/.well-known/jwks.json?v=1"
        );
        assert!(
            route("not a url", None)
                .unwrap_err()
                .contains("is not a URL")
        );
    }

    #[tokio::test]
    async fn unreachable_issuer_is_a_clear_error() {
        // Nothing listens on a port that was just released.
        let port = testkit::free_port();
        let url = format!("http://127.0.0.1:{port}/.well-known/openid-configuration");
        let e = fetch_discovery(&url, None).await.unwrap_err();
        assert!(
            e.starts_with(&format!("fetching the OpenID configuration from {url}: ")),
            "{e}"
        );
        assert!(e.to_lowercase().contains("connect"), "{e}");
    }

    #[tokio::test]
    async fn emulator_tokens_check_out_through_the_override() {
        use aws_config::{BehaviorVersion, Region, SdkConfig};
        use aws_credential_types::Credentials;
        use aws_credential_types::provider::SharedCredentialsProvider;
        use aws_sdk_cognitoidentityprovider::types::{
            AuthFlowType, ExplicitAuthFlowsType, MessageActionType,
        };

        const REGION: &str = "us-east-1";
        let emulator = testkit::Emulator::start("oidc-test-emulator");
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&emulator.url)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "tests",
            )))
            .build();
        let cognito = aws_sdk_cognitoidentityprovider::Client::new(&config);

        let pool = cognito
            .create_user_pool()
            .pool_name("token-jwt-test")
            .send()
            .await
            .unwrap();
        let pool_id = pool.user_pool().and_then(|p| p.id()).unwrap().to_string();
        let client = cognito
            .create_user_pool_client()
            .user_pool_id(&pool_id)
            .client_name("token-jwt-test")
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
            .send()
            .await
            .unwrap();
        let client_id = client
            .user_pool_client()
            .and_then(|c| c.client_id())
            .unwrap()
            .to_string();
        let password = "Test-only-Passw0rd!";
        cognito
            .admin_create_user()
            .user_pool_id(&pool_id)
            .username("mcp-user")
            .message_action(MessageActionType::Suppress)
            .send()
            .await
            .unwrap();
        cognito
            .admin_set_user_password()
            .user_pool_id(&pool_id)
            .username("mcp-user")
            .password(password)
            .permanent(true)
            .send()
            .await
            .unwrap();
        let auth = cognito
            .initiate_auth()
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .client_id(&client_id)
            .auth_parameters("USERNAME", "mcp-user")
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .unwrap();
        let result = auth.authentication_result().unwrap();
        let access = result.access_token().unwrap();
        let id = result.id_token().unwrap();

        let issuer = format!("https://cognito-idp.{REGION}.amazonaws.com/{pool_id}");
        let discovery_url = format!("{issuer}/.well-known/openid-configuration");
        let discovery = fetch_discovery(&discovery_url, Some(&emulator.url))
            .await
            .unwrap();
        assert_eq!(discovery.issuer, issuer);
        assert_eq!(
            discovery.jwks_uri,
            format!("{issuer}/.well-known/jwks.json")
        );
        let jwks = fetch_jwks(&discovery.jwks_uri, Some(&emulator.url))
            .await
            .unwrap();
        assert!(!jwks.keys.is_empty());

        let expect = Expectation {
            issuer: discovery.issuer.clone(),
            token_use: TokenUse::Access,
            allowed_clients: vec![client_id.clone()],
            ..Expectation::default()
        };
        let verdicts = jwt::check(access, &jwks, &expect, SystemTime::now(), None);
        assert_eq!(verdicts.len(), CHECKS.len());
        for v in &verdicts {
            assert!(v.ok, "{v:?}");
        }
        assert!(verdicts[4].detail.contains(&client_id));

        let verdicts = jwt::check(id, &jwks, &expect, SystemTime::now(), None);
        let failed: Vec<&str> = verdicts.iter().filter(|v| !v.ok).map(|v| v.check).collect();
        assert_eq!(failed, ["token_use"], "{verdicts:?}");
        assert_eq!(
            verdicts[3].fix.as_deref(),
            Some("use the access token (bearer: access)")
        );

        // Renewal scheduling from the real token: a third of its lifetime before expiry.
        let (_, claims) = jwt::peek(access).unwrap();
        let lifetime = jwt::lifetime(&claims).unwrap();
        assert_eq!(
            jwt::renew_at(&claims, None),
            Some(claims.expires_at() - lifetime / 3)
        );

        // A pool id that the emulator does not know still gets a document (the emulator
        // serves any), but a path that is not Cognito's is a clear HTTP error.
        let e = fetch_jwks(
            &format!("https://cognito-idp.{REGION}.amazonaws.com/nope/nope/nope"),
            Some(&emulator.url),
        )
        .await
        .unwrap_err();
        assert!(e.contains("HTTP 404"), "{e}");
        assert!(e.contains(&emulator.url), "{e}");
    }
}
