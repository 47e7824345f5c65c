//! Cognito JWTs: their claims, an unverified look at them (to schedule renewal), lifetime
//! arithmetic, and a check that mirrors what a runtime's JWT authorizer does, with one
//! [`Verdict`] per check that says in words what is wrong and what to do.
//!
//! Cognito access tokens carry `client_id`, `token_use: "access"` and `scope`, and no
//! `aud`; ID tokens carry `aud` (the app client id) and `token_use: "id"`. That is why an
//! authorizer with `allowedAudience` refuses access tokens ("Claim 'aud' value mismatch")
//! and `allowedClients` is the setting to use with them.
//!
//! No function here puts the token, or any part of it, into an error or a verdict.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::kinds::agent_runtime::claims::{self, Claim, ClaimOperator, ClaimValueType};

/// The `aud` claim: one string (Cognito ID tokens) or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn values(&self) -> Vec<&str> {
        match self {
            Self::One(a) => vec![a.as_str()],
            Self::Many(list) => list.iter().map(String::as_str).collect(),
        }
    }
}

/// The claims of a Cognito token. Required: what every Cognito token (access or ID)
/// carries; everything else is optional, and claims not named here land in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: u64,
    /// `access` or `id` for Cognito tokens.
    pub token_use: String,
    /// Not before, seconds since the Unix epoch (Cognito does not set it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The app client (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The audience (ID tokens: the app client id). Cognito access tokens have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Space-separated scopes (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The user name (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The user name (ID tokens).
    #[serde(
        rename = "cognito:username",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cognito_username: Option<String>,
    /// Every other claim (jti, auth_time, email, cognito:groups, …).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Claims {
    /// The scopes of the `scope` claim, in order.
    pub fn scopes(&self) -> Vec<&str> {
        self.scope
            .as_deref()
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// The values of the `aud` claim (empty when there is none).
    pub fn audience(&self) -> Vec<&str> {
        self.aud.as_ref().map(Audience::values).unwrap_or_default()
    }

    /// The user the token was issued to: `username` (access) or `cognito:username` (ID).
    pub fn user(&self) -> Option<&str> {
        self.username
            .as_deref()
            .or(self.cognito_username.as_deref())
    }

    pub fn expires_at(&self) -> SystemTime {
        epoch_secs(self.exp)
    }

    pub fn issued_at(&self) -> SystemTime {
        epoch_secs(self.iat)
    }
}

/// Which Cognito token a runtime expects clients to present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenUse {
    #[default]
    Access,
    Id,
}

impl TokenUse {
    /// The `token_use` claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Id => "id",
        }
    }
}

impl fmt::Display for TokenUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three parts of a compact JWS, still base64url.
struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

fn split(token: &str) -> Result<Parts<'_>, String> {
    let token = token.trim();
    if token.is_empty() {
        return Err("not a JWT: the token is empty".to_string());
    }
    let mut it = token.split('.');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok(Parts {
            header,
            payload,
            signature,
        }),
        _ => Err(format!(
            "not a JWT: a JWT is three base64url parts separated by '.', this has {}",
            token.split('.').count()
        )),
    }
}

/// Decode one base64url JSON part. Errors name the part and what is wrong with it, never
/// its content (serde_json's message can quote a claim value, never the encoded token).
fn decode_part<T: DeserializeOwned>(part: &str, what: &str) -> Result<T, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| format!("not a JWT: its {what} is not base64url ({e})"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("not a Cognito token: its {what} cannot be read ({e})"))
}

/// In the signature check's detail when the token's key is not in the issuer's JWKS
/// (the issuer may have rotated its keys).
pub const UNKNOWN_KEY: &str = "is not among the issuer's keys";

/// Read a token's header and claims WITHOUT verifying anything: for scheduling renewal
/// of a token this process just obtained from Cognito, never for trusting one. The error
/// says what is wrong and never contains the token.
pub fn peek(token: &str) -> Result<(Header, Claims), String> {
    let parts = split(token)?;
    let header = decode_part(parts.header, "header")?;
    let claims = decode_part(parts.payload, "claims")?;
    Ok((header, claims))
}

fn epoch_secs(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// `exp - iat`; `None` when the token expires before it was issued.
pub fn lifetime(claims: &Claims) -> Option<Duration> {
    claims.exp.checked_sub(claims.iat).map(Duration::from_secs)
}

/// When to renew a token: `renew_before` before its expiry, by default one third of its
/// lifetime before (a 60-minute Cognito token is renewed after 40 minutes). Never earlier
/// than the issue time: a `renew_before` at or above the lifetime means "at once", which
/// callers should refuse as a setting. `None` when the token expires before it was issued.
pub fn renew_at(claims: &Claims, renew_before: Option<Duration>) -> Option<SystemTime> {
    let lifetime = lifetime(claims)?;
    let before = renew_before.unwrap_or(lifetime / 3);
    let issued = claims.issued_at();
    let at = claims
        .expires_at()
        .checked_sub(before)
        .map_or(issued, |t| t.max(issued));
    Some(at)
}

/// What the runtime's JWT authorizer is configured to accept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expectation {
    /// The issuer of the discovery URL (`https://cognito-idp.{region}.amazonaws.com/{poolId}`).
    pub issuer: String,
    pub token_use: TokenUse,
    pub allowed_clients: Vec<String>,
    pub allowed_audience: Vec<String>,
    pub allowed_scopes: Vec<String>,
    /// The authorizer's `customClaims` rules: claims the token must carry, and what their
    /// values must match.
    pub custom_claims: Vec<Claim>,
}

/// The outcome of one check: what was found (`detail`) and, when it failed, what to do
/// (`fix`). Neither ever contains the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The `claims` check: the name of the first custom claim rule the token fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
}

impl Verdict {
    fn pass(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            ok: true,
            detail: detail.into(),
            fix: None,
            claim: None,
        }
    }

    fn fail(check: &'static str, detail: impl Into<String>, fix: Option<String>) -> Self {
        Self {
            check,
            ok: false,
            detail: detail.into(),
            fix,
            claim: None,
        }
    }
}

/// The checks [`check`] reports, in its order.
pub const CHECKS: [&str; 8] = [
    "signature",
    "issuer",
    "expiry",
    "token_use",
    "client",
    "audience",
    "scope",
    "claims",
];

const UNVERIFIED: &str = " (from unverified claims: the signature check failed)";

/// Check `token` the way a runtime's JWT authorizer would, against the issuer's signing
/// keys and the authorizer's settings, at time `now`. Returns one verdict per entry of
/// [`CHECKS`], in that order, whatever fails: when the signature does not verify, the
/// claim checks still run and say that they read unverified claims.
///
/// `renewal_hint` completes the fix of an expired token, e.g. "run `agentcore-controller
/// token mcp-user` after 10:40"; without it a generic instruction is given.
///
/// Scopes: with `allowedScopes` set, the token passes when at least one of its scopes is
/// allowed. AgentCore documents the setting only as "scopes that are allowed"; "any one
/// of" is also how AWS's other JWT authorizer (API Gateway HTTP APIs) treats the list.
pub fn check(
    token: &str,
    jwks: &JwkSet,
    expect: &Expectation,
    now: SystemTime,
    renewal_hint: Option<&str>,
) -> Vec<Verdict> {
    let parts = match split(token) {
        Ok(parts) => parts,
        Err(e) => {
            return CHECKS
                .iter()
                .map(|&c| {
                    if c == "signature" {
                        Verdict::fail(c, e.clone(), Some(NOT_A_JWT_FIX.to_string()))
                    } else {
                        Verdict::fail(c, format!("not checked: {e}"), None)
                    }
                })
                .collect();
        }
    };
    let header = decode_part::<Header>(parts.header, "header");
    let claims = decode_part::<Claims>(parts.payload, "claims");
    let signature = check_signature(&parts, header, jwks);
    let verified = signature.ok;
    let mut out = vec![signature];
    match claims {
        Ok(c) => {
            let mut rest = vec![
                check_issuer(&c, expect),
                check_expiry(&c, now, renewal_hint),
                check_token_use(&c, expect),
                check_client(&c, expect),
                check_audience(&c, expect),
                check_scope(&c, expect),
                check_claims(&c, expect),
            ];
            if !verified {
                for v in &mut rest {
                    v.detail.push_str(UNVERIFIED);
                }
            }
            out.extend(rest);
        }
        Err(e) => out.extend(
            CHECKS[1..]
                .iter()
                .map(|&c| Verdict::fail(c, format!("not checked: {e}"), None)),
        ),
    }
    out
}

const NOT_A_JWT_FIX: &str = "pass the token exactly as Cognito issued it: three base64url parts \
     separated by '.', without quotes or a \"Bearer\" prefix";

fn check_signature(parts: &Parts<'_>, header: Result<Header, String>, jwks: &JwkSet) -> Verdict {
    const C: &str = "signature";
    let header = match header {
        Ok(h) => h,
        Err(e) => return Verdict::fail(C, e, Some(NOT_A_JWT_FIX.to_string())),
    };
    if header.alg != Algorithm::RS256 {
        return Verdict::fail(
            C,
            format!(
                "the token is signed with {:?}, but Cognito signs with RS256",
                header.alg
            ),
            Some(other_pool_fix()),
        );
    }
    let Some(kid) = header.kid.as_deref() else {
        return Verdict::fail(
            C,
            "the token's header names no signing key (kid)",
            Some(other_pool_fix()),
        );
    };
    let Some(jwk) = jwks.find(kid) else {
        let known: Vec<&str> = jwks
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.as_deref())
            .collect();
        return Verdict::fail(
            C,
            format!("signing key {kid} {UNKNOWN_KEY} ({})", list_or_none(&known)),
            Some(other_pool_fix()),
        );
    };
    if !matches!(jwk.algorithm, AlgorithmParameters::RSA(_)) {
        return Verdict::fail(
            C,
            format!("the issuer's key {kid} is not an RSA key"),
            Some(other_pool_fix()),
        );
    }
    if let Some(alg) = jwk.common.key_algorithm
        && alg != KeyAlgorithm::RS256
    {
        return Verdict::fail(
            C,
            format!("the issuer's key {kid} is for {alg:?}, not RS256"),
            Some(other_pool_fix()),
        );
    }
    let key = match DecodingKey::from_jwk(jwk) {
        Ok(key) => key,
        Err(e) => {
            return Verdict::fail(
                C,
                format!("the issuer's key {kid} cannot be used: {e}"),
                None,
            );
        }
    };
    let message = format!("{}.{}", parts.header, parts.payload);
    match jsonwebtoken::crypto::verify(parts.signature, message.as_bytes(), &key, Algorithm::RS256)
    {
        Ok(true) => Verdict::pass(C, format!("RS256 signature verified with key {kid}")),
        Ok(false) => Verdict::fail(
            C,
            format!(
                "the RS256 signature does not match the issuer's key {kid}: the token was \
                 altered, or signed by another key"
            ),
            Some(
                "get a fresh token from the user pool: an altered or truncated token cannot \
                 be repaired"
                    .to_string(),
            ),
        ),
        Err(e) => Verdict::fail(
            C,
            format!("the signature could not be checked: {e}"),
            Some(NOT_A_JWT_FIX.to_string()),
        ),
    }
}

fn other_pool_fix() -> String {
    "the token was not issued by the user pool of the runtime's discovery URL: get one from \
     that pool, or point the runtime at the pool that issued it"
        .to_string()
}

fn check_issuer(c: &Claims, expect: &Expectation) -> Verdict {
    const C: &str = "issuer";
    if c.iss == expect.issuer {
        return Verdict::pass(C, format!("issued by {}", c.iss));
    }
    let fix = if c.iss.trim_end_matches('/') == expect.issuer.trim_end_matches('/') {
        "the issuers differ only in a trailing '/': the discovery URL must be exactly \
         {issuer}/.well-known/openid-configuration"
            .replace("{issuer}", &c.iss)
    } else {
        format!(
            "get a token from {} (the pool of the runtime's discovery URL), or point the \
             runtime's discoveryUrl at {}/.well-known/openid-configuration",
            expect.issuer, c.iss
        )
    };
    Verdict::fail(
        C,
        format!(
            "issued by {}, but the runtime trusts {}",
            c.iss, expect.issuer
        ),
        Some(fix),
    )
}

fn check_expiry(c: &Claims, now: SystemTime, renewal_hint: Option<&str>) -> Verdict {
    const C: &str = "expiry";
    let exp = c.expires_at();
    if now >= exp {
        let ago = now.duration_since(exp).unwrap_or_default();
        let hint = renewal_hint
            .unwrap_or("read the fresh token after renewal (`agentcore-controller token NAME`)");
        return Verdict::fail(
            C,
            format!("expired at {} ({} ago)", timestamp(exp), span(ago)),
            Some(format!(
                "the controller renews it at its next renewal; {hint}"
            )),
        );
    }
    if let Some(nbf) = c.nbf {
        let nbf = epoch_secs(nbf);
        if now < nbf {
            let until = nbf.duration_since(now).unwrap_or_default();
            return Verdict::fail(
                C,
                format!("not valid before {} (in {})", timestamp(nbf), span(until)),
                Some(
                    "check this machine's clock: the issuer's clock says the token is not \
                     valid yet"
                        .to_string(),
                ),
            );
        }
    }
    let left = exp.duration_since(now).unwrap_or_default();
    Verdict::pass(
        C,
        format!("expires at {} (in {})", timestamp(exp), span(left)),
    )
}

fn check_token_use(c: &Claims, expect: &Expectation) -> Verdict {
    const C: &str = "token_use";
    let want = expect.token_use;
    match (c.token_use.as_str(), want) {
        (got, _) if got == want.as_str() => Verdict::pass(C, format!("token_use is {got}")),
        ("id", TokenUse::Access) => Verdict::fail(
            C,
            "this is an ID token (token_use: id), but the runtime expects access tokens",
            Some("use the access token (bearer: access)".to_string()),
        ),
        ("access", TokenUse::Id) => Verdict::fail(
            C,
            "this is an access token (token_use: access), but the runtime expects ID tokens",
            Some("use the ID token (bearer: id)".to_string()),
        ),
        (got, _) => Verdict::fail(
            C,
            format!(
                "token_use is {got:?}: not a Cognito access or ID token (the runtime expects \
                 {want} tokens)"
            ),
            Some(format!("use the Cognito {want} token (bearer: {want})")),
        ),
    }
}

fn check_client(c: &Claims, expect: &Expectation) -> Verdict {
    const C: &str = "client";
    let allowed = &expect.allowed_clients;
    if allowed.is_empty() {
        return Verdict::pass(C, "allowedClients is not set: any client is accepted");
    }
    // Access tokens name their app client in client_id, ID tokens in aud.
    let (claim, clients): (&str, Vec<&str>) = if c.token_use == TokenUse::Id.as_str() {
        ("aud", c.audience())
    } else {
        ("client_id", c.client_id.as_deref().into_iter().collect())
    };
    let list = allowed.join(", ");
    if clients.is_empty() {
        return Verdict::fail(
            C,
            format!("the token has no {claim} claim, so it matches no allowedClients ({list})"),
            Some("use a Cognito access token: it names its app client in client_id".to_string()),
        );
    }
    if let Some(id) = clients.iter().find(|id| allowed.iter().any(|a| a == *id)) {
        return Verdict::pass(C, format!("client {id} is in allowedClients"));
    }
    let ids = clients.join(", ");
    Verdict::fail(
        C,
        format!("client {ids} ({claim}) is not in allowedClients ({list})"),
        Some(format!(
            "get the token through one of the allowed app clients, or add {ids} to \
             allowedClients (clientRefs)"
        )),
    )
}

fn check_audience(c: &Claims, expect: &Expectation) -> Verdict {
    const C: &str = "audience";
    let allowed = &expect.allowed_audience;
    if allowed.is_empty() {
        return Verdict::pass(C, "allowedAudience is not set: aud is not checked");
    }
    let list = allowed.join(", ");
    let aud = c.audience();
    if aud.is_empty() {
        if c.token_use == TokenUse::Access.as_str() {
            return Verdict::fail(
                C,
                format!(
                    "the token has no aud claim, but allowedAudience is set ({list}): the \
                     runtime answers \"Claim 'aud' value mismatch\""
                ),
                Some(
                    "Cognito access tokens carry client_id, not aud: use allowedClients"
                        .to_string(),
                ),
            );
        }
        return Verdict::fail(
            C,
            format!("the token has no aud claim, but allowedAudience is set ({list})"),
            Some("drop allowedAudience, or present a token that carries aud".to_string()),
        );
    }
    if let Some(a) = aud.iter().find(|a| allowed.iter().any(|x| x == *a)) {
        return Verdict::pass(C, format!("aud {a} is in allowedAudience"));
    }
    let got = aud.join(", ");
    Verdict::fail(
        C,
        format!(
            "aud {got} is not in allowedAudience ({list}): the runtime answers \"Claim 'aud' \
             value mismatch\""
        ),
        Some(format!(
            "add {got} to allowedAudience, or present a token issued for one of {list}"
        )),
    )
}

fn check_scope(c: &Claims, expect: &Expectation) -> Verdict {
    const C: &str = "scope";
    let allowed = &expect.allowed_scopes;
    if allowed.is_empty() {
        return Verdict::pass(C, "allowedScopes is not set: scope is not checked");
    }
    let list = allowed.join(", ");
    let scopes = c.scopes();
    if let Some(s) = scopes.iter().find(|s| allowed.iter().any(|a| a == *s)) {
        return Verdict::pass(C, format!("scope {s} is in allowedScopes"));
    }
    if scopes.is_empty() && c.token_use == TokenUse::Id.as_str() {
        return Verdict::fail(
            C,
            format!(
                "the token has no scope claim (ID tokens never do), but allowedScopes is set \
                 ({list})"
            ),
            Some("use the access token (bearer: access), or drop allowedScopes".to_string()),
        );
    }
    let detail = if scopes.is_empty() {
        format!("the token has no scope claim, but allowedScopes is set ({list})")
    } else {
        format!(
            "the token's scopes ({}) include none of allowedScopes ({list})",
            scopes.join(", ")
        )
    };
    Verdict::fail(
        C,
        detail,
        Some(
            "request one of the allowed scopes when getting the token (the app client's \
             AllowedOAuthScopes, through the OAuth token endpoint: tokens from InitiateAuth \
             carry only aws.cognito.signin.user.admin), or add one of the token's scopes to \
             allowedScopes"
                .to_string(),
        ),
    )
}

/// The `customClaims` rules: every rule must hold. One verdict for all of them; when some
/// fail, the detail names each failing rule and what the token carries instead, and
/// `claim` names the first.
fn check_claims(c: &Claims, expect: &Expectation) -> Verdict {
    const C: &str = "claims";
    let rules = &expect.custom_claims;
    if rules.is_empty() {
        return Verdict::pass(C, "customClaims is not set: no custom claim is checked");
    }
    // Every claim of the token by name, the ones this struct names included.
    let all = match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let mut failed: Vec<(&Claim, String, String)> = Vec::new();
    for rule in rules {
        if let Err((detail, fix)) = claim_holds(rule, all.get(&rule.name)) {
            failed.push((rule, detail, fix));
        }
    }
    let Some((first, _, _)) = failed.first() else {
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        return Verdict::pass(
            C,
            format!(
                "the token meets every customClaims rule ({})",
                names.join(", ")
            ),
        );
    };
    let name = first.name.clone();
    let detail = failed
        .iter()
        .map(|(_, d, _)| d.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let fix = failed
        .iter()
        .map(|(_, _, f)| f.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let mut v = Verdict::fail(C, detail, Some(fix));
    v.claim = Some(name);
    v
}

/// The rule in words: `tenant EQUALS "acme"`, `groups CONTAINS_ANY ["a", "b"]`.
pub fn rule_text(rule: &Claim) -> String {
    let values = match rule.operator {
        ClaimOperator::ContainsAny => format!("[{}]", quoted(&rule.values)),
        ClaimOperator::Equals | ClaimOperator::Contains => quoted(&rule.values),
    };
    format!("{} {} {values}", rule.name, claims::word(rule.operator))
}

fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the token's claim `got` satisfies `rule`; else what is wrong and what to do.
fn claim_holds(rule: &Claim, got: Option<&serde_json::Value>) -> Result<(), (String, String)> {
    use serde_json::Value;
    let name = &rule.name;
    let text = rule_text(rule);
    let Some(got) = got else {
        return Err((
            format!("the token has no {name} claim, but customClaims requires {text}"),
            format!(
                "present a token that carries {name} (with Cognito: a pre token generation \
                 trigger adds claims; cognito:groups comes from the user's groups), or remove \
                 the {name} rule from customClaims"
            ),
        ));
    };
    let kind = match got {
        Value::String(_) => "a string",
        Value::Array(a) if a.iter().all(Value::is_string) => "an array of strings",
        Value::Array(_) => "an array with non-string values",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Object(_) => "an object",
        Value::Null => "null",
    };
    let want_type = claims::type_word(rule.value_type);
    let other_type = match rule.value_type {
        ClaimValueType::String => "STRING_ARRAY (with CONTAINS or CONTAINS_ANY)",
        ClaimValueType::StringArray => "STRING (with EQUALS)",
    };
    let wrong_type = || {
        let fix = match (rule.value_type, got) {
            (ClaimValueType::String, Value::Array(_))
            | (ClaimValueType::StringArray, Value::String(_)) => format!(
                "set the {name} rule's valueType to {other_type}, or issue {name} as a {} \
                 claim",
                want_type
            ),
            _ => format!("issue {name} as a {want_type} claim, or remove the {name} rule"),
        };
        Err((
            format!("the token's {name} claim is {kind}, but the rule {text} expects {want_type}"),
            fix,
        ))
    };
    match (rule.value_type, got) {
        (ClaimValueType::String, Value::String(s)) => {
            if rule.values.iter().any(|v| v == s) {
                Ok(())
            } else {
                Err((
                    format!("the token's {name} is {s:?}, but customClaims requires {text}"),
                    format!(
                        "present a token whose {name} is {}, or change the rule's value to \
                         accept {s:?}",
                        quoted(&rule.values)
                    ),
                ))
            }
        }
        (ClaimValueType::StringArray, Value::Array(items))
            if items.iter().all(Value::is_string) =>
        {
            let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if rule.values.iter().any(|v| items.contains(&v.as_str())) {
                Ok(())
            } else {
                let have = if items.is_empty() {
                    "is empty".to_string()
                } else {
                    format!(
                        "holds {}",
                        quoted(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    )
                };
                let want = match rule.operator {
                    ClaimOperator::ContainsAny => format!("one of {}", quoted(&rule.values)),
                    _ => quoted(&rule.values),
                };
                Err((
                    format!("the token's {name} {have}, but customClaims requires {text}"),
                    format!(
                        "present a token whose {name} holds {want} (for cognito:groups: add \
                         the user to the group), or change the rule's values"
                    ),
                ))
            }
        }
        _ => wrong_type(),
    }
}

fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A rough human span: "45 seconds", "10 minutes", "3 hours", "2 days".
fn span(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0..120 => (s, "second"),
        120..7_200 => (s / 60, "minute"),
        7_200..172_800 => (s / 3_600, "hour"),
        _ => (s / 86_400, "day"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "it has none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use jsonwebtoken::EncodingKey;
    use serde_json::{Value, json};

    // Throwaway keys generated for these tests only (see testdata/README.md).
    const KEY_A: &str = include_str!("testdata/test-only-key-a.pem");
    const KEY_B: &str = include_str!("testdata/test-only-key-b.pem");
    const JWKS_A: &str = include_str!("testdata/test-only-jwks.json");
    const KID_A: &str = "test-only-key-a";

    /// 2027-01-15T08:00:00Z
    const NOW: u64 = 1_800_000_000;
    const ISS: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TestPool";
    const CLIENT: &str = "4tc9cv3p0g7hm2l0n4bsa1kfqe";

    fn now() -> SystemTime {
        epoch_secs(NOW)
    }

    fn jwks() -> JwkSet {
        serde_json::from_str(JWKS_A).unwrap()
    }

    /// PKCS#1 DER from a "BEGIN RSA PRIVATE KEY" PEM.
    fn der(pem: &str) -> Vec<u8> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        STANDARD.decode(body).unwrap()
    }

    fn sign_with(claims: &Value, kid: Option<&str>, pem: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&der(pem))).unwrap()
    }

    fn sign(claims: &Value) -> String {
        sign_with(claims, Some(KID_A), KEY_A)
    }

    /// An access token as Cognito issues it (InitiateAuth, 60 minutes), 10 minutes old.
    fn access() -> Value {
        json!({
            "sub": "8f2e1c7a-0b4d-4c3e-9a61-2d5b7e9f0a13",
            "iss": ISS,
            "client_id": CLIENT,
            "origin_jti": "0f0c3f43-5b43-4d0e-8b3a-7b1f4a0c2e11",
            "event_id": "a1d2c3b4-0000-4000-8000-000000000001",
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "auth_time": NOW - 600,
            "exp": NOW + 3000,
            "iat": NOW - 600,
            "jti": "5e7a9c1b-1111-4222-8333-944455566677",
            "username": "mcp-user"
        })
    }

    /// The ID token of the same sign-in.
    fn id() -> Value {
        json!({
            "sub": "8f2e1c7a-0b4d-4c3e-9a61-2d5b7e9f0a13",
            "iss": ISS,
            "aud": CLIENT,
            "cognito:username": "mcp-user",
            "origin_jti": "0f0c3f43-5b43-4d0e-8b3a-7b1f4a0c2e11",
            "event_id": "a1d2c3b4-0000-4000-8000-000000000001",
            "token_use": "id",
            "auth_time": NOW - 600,
            "exp": NOW + 3000,
            "iat": NOW - 600,
            "jti": "6f8b0d2c-1111-4222-8333-944455566677",
            "email": "mcp-user@example.com"
        })
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        claims[key] = value;
        claims
    }

    fn expect() -> Expectation {
        Expectation {
            issuer: ISS.to_string(),
            token_use: TokenUse::Access,
            allowed_clients: vec![CLIENT.to_string()],
            ..Expectation::default()
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    struct Case {
        name: &'static str,
        token: String,
        expect: Expectation,
        hint: Option<&'static str>,
        /// The checks that must fail; every other one must pass.
        failing: &'static [&'static str],
        /// (check, text) pairs: the text appears in that verdict's detail or fix.
        says: &'static [(&'static str, &'static str)],
    }

    fn case(name: &'static str, token: String) -> Case {
        Case {
            name,
            token,
            expect: expect(),
            hint: None,
            failing: &[],
            says: &[],
        }
    }

    fn tampered() -> String {
        // The claims of one token with the signature of another: the edited-claims attack.
        let good = sign(&access());
        let other = sign(&with(access(), "username", json!("admin")));
        let good_parts: Vec<&str> = good.split('.').collect();
        let other_parts: Vec<&str> = other.split('.').collect();
        format!("{}.{}.{}", good_parts[0], other_parts[1], good_parts[2])
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                says: &[
                    (
                        "signature",
                        "RS256 signature verified with key test-only-key-a",
                    ),
                    ("issuer", "issued by https://cognito-idp.eu-west-1"),
                    ("expiry", "expires at 2027-01-15T08:50:00Z (in 50 minutes)"),
                    ("token_use", "token_use is access"),
                    (
                        "client",
                        "client 4tc9cv3p0g7hm2l0n4bsa1kfqe is in allowedClients",
                    ),
                    ("audience", "allowedAudience is not set"),
                    ("scope", "allowedScopes is not set"),
                ],
                ..case("valid access token", sign(&access()))
            },
            Case {
                failing: &["expiry"],
                says: &[
                    ("expiry", "expired at 2027-01-15T07:50:00Z (10 minutes ago)"),
                    ("expiry", "the controller renews it at its next renewal"),
                    ("expiry", "`agentcore-controller token NAME`"),
                ],
                ..case(
                    "expired",
                    sign(&with(
                        with(access(), "exp", json!(NOW - 600)),
                        "iat",
                        json!(NOW - 4200),
                    )),
                )
            },
            Case {
                hint: Some("run `agentcore-controller token mcp-user` after 08:20"),
                failing: &["expiry"],
                says: &[
                    ("expiry", "expired at 2027-01-15T06:00:00Z (2 hours ago)"),
                    (
                        "expiry",
                        "run `agentcore-controller token mcp-user` after 08:20",
                    ),
                ],
                ..case(
                    "expired, with the caller's renewal hint",
                    sign(&with(
                        with(access(), "exp", json!(NOW - 7200)),
                        "iat",
                        json!(NOW - 10800),
                    )),
                )
            },
            Case {
                failing: &["expiry"],
                says: &[("expiry", "not valid before"), ("expiry", "clock")],
                ..case(
                    "not valid yet (nbf)",
                    sign(&with(access(), "nbf", json!(NOW + 300))),
                )
            },
            Case {
                failing: &["issuer"],
                says: &[
                    (
                        "issuer",
                        "issued by https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other, \
                         but the runtime trusts https://cognito-idp.eu-west-1",
                    ),
                    ("issuer", "get a token from https://cognito-idp.eu-west-1"),
                ],
                ..case(
                    "wrong issuer",
                    sign(&with(
                        access(),
                        "iss",
                        json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"),
                    )),
                )
            },
            Case {
                failing: &["token_use"],
                says: &[
                    ("token_use", "this is an ID token (token_use: id)"),
                    ("token_use", "use the access token (bearer: access)"),
                    // An ID token names its client in aud.
                    (
                        "client",
                        "client 4tc9cv3p0g7hm2l0n4bsa1kfqe is in allowedClients",
                    ),
                ],
                ..case("ID token where access is expected", sign(&id()))
            },
            Case {
                expect: Expectation {
                    token_use: TokenUse::Id,
                    allowed_audience: strings(&[CLIENT]),
                    ..expect()
                },
                says: &[(
                    "audience",
                    "aud 4tc9cv3p0g7hm2l0n4bsa1kfqe is in allowedAudience",
                )],
                ..case("ID token where ID tokens are expected", sign(&id()))
            },
            Case {
                expect: Expectation {
                    token_use: TokenUse::Id,
                    ..expect()
                },
                failing: &["token_use"],
                says: &[("token_use", "use the ID token (bearer: id)")],
                ..case("access token where ID tokens are expected", sign(&access()))
            },
            Case {
                expect: Expectation {
                    allowed_clients: vec![],
                    allowed_audience: strings(&[CLIENT]),
                    ..expect()
                },
                failing: &["audience"],
                says: &[
                    ("audience", "Claim 'aud' value mismatch"),
                    (
                        "audience",
                        "Cognito access tokens carry client_id, not aud: use allowedClients",
                    ),
                    ("client", "allowedClients is not set"),
                ],
                ..case("access token against allowedAudience", sign(&access()))
            },
            Case {
                expect: Expectation {
                    allowed_clients: strings(&["1example23456789", "2example23456789"]),
                    ..expect()
                },
                failing: &["client"],
                says: &[(
                    "client",
                    "client 4tc9cv3p0g7hm2l0n4bsa1kfqe (client_id) is not in allowedClients \
                     (1example23456789, 2example23456789)",
                )],
                ..case("client not in allowedClients", sign(&access()))
            },
            Case {
                expect: Expectation {
                    allowed_scopes: strings(&["mcp/invoke"]),
                    ..expect()
                },
                failing: &["scope"],
                says: &[
                    (
                        "scope",
                        "the token's scopes (aws.cognito.signin.user.admin) include none of \
                         allowedScopes (mcp/invoke)",
                    ),
                    ("scope", "request one of the allowed scopes"),
                ],
                ..case("scope not allowed", sign(&access()))
            },
            Case {
                expect: Expectation {
                    allowed_scopes: strings(&["mcp/invoke", "mcp/read"]),
                    ..expect()
                },
                says: &[("scope", "scope mcp/read is in allowedScopes")],
                ..case(
                    "one allowed scope is enough",
                    sign(&with(access(), "scope", json!("openid mcp/read"))),
                )
            },
            Case {
                failing: &["signature"],
                says: &[
                    (
                        "signature",
                        "does not match the issuer's key test-only-key-a",
                    ),
                    ("issuer", "from unverified claims"),
                    ("scope", "from unverified claims"),
                ],
                ..case(
                    "signed by another key",
                    sign_with(&access(), Some(KID_A), KEY_B),
                )
            },
            Case {
                failing: &["signature"],
                says: &[
                    ("signature", "does not match"),
                    ("expiry", "from unverified claims"),
                ],
                ..case("claims edited after signing", tampered())
            },
            Case {
                failing: &["signature"],
                says: &[
                    (
                        "signature",
                        "signing key rotated-away is not among the issuer's keys \
                         (test-only-key-a)",
                    ),
                    (
                        "signature",
                        "not issued by the user pool of the runtime's discovery URL",
                    ),
                    ("token_use", "token_use is access (from unverified claims"),
                ],
                ..case(
                    "unknown kid",
                    sign_with(&access(), Some("rotated-away"), KEY_A),
                )
            },
            Case {
                failing: &["signature"],
                says: &[("signature", "names no signing key (kid)")],
                ..case("no kid", sign_with(&access(), None, KEY_A))
            },
            Case {
                failing: &CHECKS,
                says: &[
                    ("signature", "not a JWT"),
                    ("signature", "without quotes"),
                    ("scope", "not checked"),
                ],
                ..case("garbage", "not-a-token".to_string())
            },
        ]
    }

    fn rule(name: &str, t: ClaimValueType, op: ClaimOperator, values: &[&str]) -> Claim {
        Claim {
            name: name.to_string(),
            value_type: t,
            operator: op,
            values: strings(values),
        }
    }

    #[test]
    fn custom_claim_rules_hold_or_say_which_failed_and_how_to_fix_it() {
        use ClaimOperator::*;
        use ClaimValueType::*;
        let tenant = rule("tenant", String, Equals, &["acme"]);
        let groups = rule("cognito:groups", StringArray, Contains, &["admins"]);
        let any = rule(
            "cognito:groups",
            StringArray,
            ContainsAny,
            &["admins", "mcp-users"],
        );
        // Name, rules, claims added to the access token, passes, what the verdict says.
        type Row<'a> = (
            &'a str,
            Vec<Claim>,
            Vec<(&'a str, Value)>,
            bool,
            &'a [&'a str],
        );
        let rows: Vec<Row<'_>> = vec![
            (
                "no rules",
                vec![],
                vec![],
                true,
                &["customClaims is not set"],
            ),
            (
                "STRING equal",
                vec![tenant.clone()],
                vec![("tenant", json!("acme"))],
                true,
                &["every customClaims rule (tenant)"],
            ),
            (
                "STRING missing",
                vec![tenant.clone()],
                vec![],
                false,
                &[
                    "the token has no tenant claim, but customClaims requires tenant EQUALS \"acme\"",
                    "pre token generation trigger",
                    "remove the tenant rule",
                ],
            ),
            (
                "STRING other value",
                vec![tenant.clone()],
                vec![("tenant", json!("globex"))],
                false,
                &[
                    "the token's tenant is \"globex\", but customClaims requires tenant EQUALS \"acme\"",
                    "whose tenant is \"acme\"",
                    "accept \"globex\"",
                ],
            ),
            (
                "STRING rule, array claim",
                vec![tenant.clone()],
                vec![("tenant", json!(["acme"]))],
                false,
                &[
                    "tenant claim is an array of strings, but the rule tenant EQUALS \"acme\" expects STRING",
                    "valueType to STRING_ARRAY",
                ],
            ),
            (
                "STRING rule, number claim",
                vec![tenant.clone()],
                vec![("tenant", json!(7))],
                false,
                &["is a number", "issue tenant as a STRING claim"],
            ),
            (
                "CONTAINS holds",
                vec![groups.clone()],
                vec![("cognito:groups", json!(["users", "admins"]))],
                true,
                &[],
            ),
            (
                "CONTAINS lacks the value",
                vec![groups.clone()],
                vec![("cognito:groups", json!(["users"]))],
                false,
                &[
                    "the token's cognito:groups holds \"users\", but customClaims requires cognito:groups CONTAINS \"admins\"",
                    "add the user to the group",
                ],
            ),
            (
                "CONTAINS, empty array",
                vec![groups.clone()],
                vec![("cognito:groups", json!([]))],
                false,
                &["cognito:groups is empty"],
            ),
            (
                "STRING_ARRAY rule, string claim",
                vec![groups.clone()],
                vec![("cognito:groups", json!("admins"))],
                false,
                &[
                    "is a string, but the rule cognito:groups CONTAINS \"admins\" expects STRING_ARRAY",
                    "valueType to STRING (with EQUALS)",
                ],
            ),
            (
                "CONTAINS_ANY, one of them",
                vec![any.clone()],
                vec![("cognito:groups", json!(["mcp-users"]))],
                true,
                &[],
            ),
            (
                "CONTAINS_ANY, none of them",
                vec![any.clone()],
                vec![("cognito:groups", json!(["users"]))],
                false,
                &[
                    "requires cognito:groups CONTAINS_ANY [\"admins\", \"mcp-users\"]",
                    "holds one of \"admins\", \"mcp-users\"",
                ],
            ),
            (
                "a claim the token always has",
                vec![rule("client_id", String, Equals, &[CLIENT])],
                vec![],
                true,
                &[],
            ),
            (
                "two rules, the second fails: both are named",
                vec![tenant.clone(), groups.clone()],
                vec![("tenant", json!("acme"))],
                false,
                &["no cognito:groups claim"],
            ),
        ];
        for (name, rules, add, ok, says) in rows {
            let mut claims = access();
            for (k, v) in add {
                claims = with(claims, k, v);
            }
            let expect = Expectation {
                custom_claims: rules,
                ..expect()
            };
            let verdicts = check(&sign(&claims), &jwks(), &expect, now(), None);
            let failed: Vec<&str> = verdicts.iter().filter(|v| !v.ok).map(|v| v.check).collect();
            let want: &[&str] = if ok { &[] } else { &["claims"] };
            assert_eq!(failed, want, "{name}: {verdicts:?}");
            let v = &verdicts[7];
            assert_eq!(v.check, "claims");
            assert_eq!(v.fix.is_some(), !ok, "{name}: {v:?}");
            let said = format!("{} | {}", v.detail, v.fix.clone().unwrap_or_default());
            for text in says {
                assert!(said.contains(text), "{name}: should say {text:?}: {said}");
            }
        }
    }

    #[test]
    fn the_first_failing_rule_names_the_claim() {
        let rules = vec![
            rule(
                "tenant",
                ClaimValueType::String,
                ClaimOperator::Equals,
                &["acme"],
            ),
            rule(
                "zone",
                ClaimValueType::String,
                ClaimOperator::Equals,
                &["eu"],
            ),
        ];
        let expect = Expectation {
            custom_claims: claims_sorted(rules),
            ..expect()
        };
        let v = check(&sign(&access()), &jwks(), &expect, now(), None);
        assert_eq!(v[7].claim.as_deref(), Some("tenant"));
        assert!(v[7].detail.contains("no tenant claim"), "{v:?}");
        assert!(v[7].detail.contains("no zone claim"), "{v:?}");
        let ok = check(
            &sign(&with(
                with(access(), "tenant", json!("acme")),
                "zone",
                json!("eu"),
            )),
            &jwks(),
            &expect,
            now(),
            None,
        );
        assert_eq!(ok[7].claim, None);
        assert!(ok[7].ok, "{ok:?}");
    }

    fn claims_sorted(rules: Vec<Claim>) -> Vec<Claim> {
        crate::kinds::agent_runtime::claims::normalised(rules)
    }

    #[test]
    fn check_reports_one_verdict_per_check() {
        let jwks = jwks();
        for c in cases() {
            let verdicts = check(&c.token, &jwks, &c.expect, now(), c.hint);
            let names: Vec<&str> = verdicts.iter().map(|v| v.check).collect();
            assert_eq!(names, CHECKS, "{}", c.name);
            for v in &verdicts {
                let should_fail = c.failing.contains(&v.check);
                assert_eq!(v.ok, !should_fail, "{}: {v:?}", c.name);
                // A failure says what to do, except a check that could not run (the
                // signature verdict's fix covers it); a pass has nothing to fix.
                let needs_fix = !v.ok && !v.detail.starts_with("not checked");
                assert_eq!(v.fix.is_some(), needs_fix, "{}: {v:?}", c.name);
                // Never the token, nor any of its parts.
                for part in c.token.split('.').filter(|p| p.len() > 8) {
                    assert!(!v.detail.contains(part), "{}: {v:?}", c.name);
                    assert!(!v.fix.clone().unwrap_or_default().contains(part));
                }
            }
            for (check, text) in c.says {
                let v = verdicts.iter().find(|v| v.check == *check).unwrap();
                let said = format!("{} | {}", v.detail, v.fix.clone().unwrap_or_default());
                assert!(
                    said.contains(text),
                    "{}: {check} should say {text:?}: {said}",
                    c.name
                );
            }
        }
    }

    /// A machine-to-machine access token as Cognito's token endpoint issues it
    /// (client_credentials): sub is the client, no username, resource server scopes.
    fn m2m() -> Value {
        json!({
            "sub": CLIENT,
            "iss": ISS,
            "client_id": CLIENT,
            "token_use": "access",
            "scope": "mcp/read mcp/write",
            "auth_time": NOW - 600,
            "exp": NOW + 3000,
            "iat": NOW - 600,
            "jti": "7a9c1b5e-1111-4222-8333-944455566677",
            "version": 2
        })
    }

    #[test]
    fn machine_to_machine_tokens_are_checked_on_client_and_scopes() {
        let jwks = jwks();
        let token = sign(&m2m());
        let (_, claims) = peek(&token).unwrap();
        assert_eq!(claims.user(), None, "no user in an M2M token");
        assert_eq!(claims.scopes(), ["mcp/read", "mcp/write"]);
        let with_scopes = |scopes: &[&str], clients: &[&str]| Expectation {
            allowed_scopes: strings(scopes),
            allowed_clients: strings(clients),
            ..expect()
        };
        for (expect, failing) in [
            (with_scopes(&["mcp/read"], &[CLIENT]), vec![]),
            (with_scopes(&[], &[CLIENT]), vec![]),
            (with_scopes(&["mcp/admin", "mcp/write"], &[CLIENT]), vec![]),
            (with_scopes(&["mcp/admin"], &[CLIENT]), vec!["scope"]),
            (
                with_scopes(&["mcp/read"], &["another-client"]),
                vec!["client"],
            ),
        ] {
            let verdicts = check(&token, &jwks, &expect, now(), None);
            let failed: Vec<&str> = verdicts.iter().filter(|v| !v.ok).map(|v| v.check).collect();
            assert_eq!(failed, failing, "{expect:?}: {verdicts:#?}");
        }
    }

    #[test]
    fn verdicts_serialize_for_json_output() {
        let v = check(&sign(&id()), &jwks(), &expect(), now(), None);
        let j = serde_json::to_value(&v[3]).unwrap();
        assert_eq!(j["check"], "token_use");
        assert_eq!(j["ok"], false);
        assert_eq!(j["fix"], "use the access token (bearer: access)");
        let j = serde_json::to_value(&v[0]).unwrap();
        assert!(j.get("fix").is_none());
    }

    #[test]
    fn peek_reads_claims_without_keys() {
        let (header, c) = peek(&sign(&access())).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(KID_A));
        assert_eq!(c.iss, ISS);
        assert_eq!(c.token_use, "access");
        assert_eq!(c.client_id.as_deref(), Some(CLIENT));
        assert_eq!(c.aud, None);
        assert_eq!(c.scopes(), vec!["aws.cognito.signin.user.admin"]);
        assert_eq!(c.user(), Some("mcp-user"));
        assert_eq!((c.iat, c.exp), (NOW - 600, NOW + 3000));
        assert_eq!(c.extra["jti"], "5e7a9c1b-1111-4222-8333-944455566677");
        assert!(!c.extra.contains_key("exp"));

        let (_, c) = peek(&sign(&id())).unwrap();
        assert_eq!(c.aud, Some(Audience::One(CLIENT.to_string())));
        assert_eq!(c.audience(), vec![CLIENT]);
        assert_eq!(c.user(), Some("mcp-user"));
        assert_eq!(c.extra["email"], "mcp-user@example.com");

        let (_, c) = peek(&sign(&with(id(), "aud", json!(["a", "b"])))).unwrap();
        assert_eq!(c.audience(), vec!["a", "b"]);
        // Surrounding whitespace (a token read from a file) is fine.
        assert!(peek(&format!("  {}\n", sign(&access()))).is_ok());
    }

    #[test]
    fn peek_on_garbage_says_why_without_the_token() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k"}"#);
        let no_token_use = URL_SAFE_NO_PAD.encode(
            br#"{"iss":"https://x","sub":"s","exp":2,"iat":1,"client_id":"secretish-claim"}"#,
        );
        let bad_json = URL_SAFE_NO_PAD.encode(b"{not json");
        for (token, says) in [
            (String::new(), "empty"),
            ("garbage-without-dots".to_string(), "this has 1"),
            ("a.b.c.d.e".to_string(), "this has 5"),
            ("###.###.###".to_string(), "header is not base64url"),
            (
                format!("{header}.{no_token_use}.c2lnbmF0dXJl"),
                "missing field `token_use`",
            ),
            (format!("{header}.{bad_json}.c2ln"), "claims cannot be read"),
            (
                format!("{bad_json}.{no_token_use}.c2ln"),
                "header cannot be read",
            ),
        ] {
            let e = peek(&token).unwrap_err();
            assert!(e.contains(says), "{token:?}: {e}");
            if !token.is_empty() {
                assert!(!e.contains(&token), "{e}");
            }
            for part in token.split('.').filter(|p| p.len() > 4) {
                assert!(!e.contains(part), "{e}");
            }
        }
    }

    fn claims(iat: u64, exp: u64) -> Claims {
        let mut c = peek(&sign(&access())).unwrap().1;
        c.iat = iat;
        c.exp = exp;
        c
    }

    #[test]
    fn lifetime_and_renewal_arithmetic() {
        let hour = claims(NOW, NOW + 3600);
        assert_eq!(lifetime(&hour), Some(Duration::from_secs(3600)));
        // Default: a third of the lifetime before expiry (40 minutes into a 60-minute token).
        assert_eq!(renew_at(&hour, None), Some(epoch_secs(NOW + 2400)));
        assert_eq!(
            renew_at(&hour, Some(Duration::from_secs(300))),
            Some(epoch_secs(NOW + 3300))
        );
        // A renew_before longer than the lifetime: at once, never before issue.
        assert_eq!(
            renew_at(&hour, Some(Duration::from_secs(7200))),
            Some(epoch_secs(NOW))
        );
        let day = claims(NOW, NOW + 86_400);
        assert_eq!(renew_at(&day, None), Some(epoch_secs(NOW + 57_600)));
        let backwards = claims(NOW, NOW - 1);
        assert_eq!(lifetime(&backwards), None);
        assert_eq!(renew_at(&backwards, None), None);
        let instant = claims(NOW, NOW);
        assert_eq!(lifetime(&instant), Some(Duration::ZERO));
        assert_eq!(renew_at(&instant, None), Some(epoch_secs(NOW)));
    }

    #[test]
    fn spans_read_naturally() {
        for (secs, text) in [
            (1, "1 second"),
            (45, "45 seconds"),
            (600, "10 minutes"),
            (7_199, "119 minutes"),
            (7_200, "2 hours"),
            (200_000, "2 days"),
        ] {
            assert_eq!(span(Duration::from_secs(secs)), text);
        }
    }
}
