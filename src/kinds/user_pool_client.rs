//! `UserPoolClient`: an app client of a Cognito user pool (the audience the MCP server's
//! authorizer allows, and what users sign in through).
//!
//! App clients cannot be tagged. A client found by name in the referenced pool counts as
//! ours: the pool is ours (it carries the owner tag) or was adopted explicitly with the
//! adopt annotation, and whoever owns a pool owns the clients inside it.
//!
//! The OAuth settings (`allowedOAuthFlows`, `allowedOAuthScopes`,
//! `allowedOAuthFlowsUserPoolClient`) are managed: left out, the client has none. A client
//! for machine-to-machine tokens allows `client_credentials` alone, has a secret, and is
//! allowed custom scopes `{identifier}/{scope}` of a `ResourceServer` in its pool.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::{
    ExplicitAuthFlowsType, OAuthFlowType, TimeUnitsType, TokenValidityUnitsType, UserPoolClientType,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::user_pool::check_cognito_name;
use super::{Change, Ctx, Deps, Kind, ObjectMeta, Observed, Outputs, Reference, changed, compare};
use crate::error::{Reason, ReconcileError, Result, Severity, aws_err, read_result, write_result};
use crate::memo::Memo;
use crate::model::de::FieldProblem;
use crate::model::permissions::{Condition, Grant, Scope};

/// The explicit auth flows Cognito accepts.
pub const AUTH_FLOWS: [&str; 6] = [
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ALLOW_CUSTOM_AUTH",
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
    "ALLOW_USER_AUTH",
];
/// Legacy flow names and their replacements (Cognito rejects mixing the two styles).
const LEGACY_FLOWS: [(&str, &str); 3] = [
    ("ADMIN_NO_SRP_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"),
    ("CUSTOM_AUTH_FLOW_ONLY", "ALLOW_CUSTOM_AUTH"),
    ("USER_PASSWORD_AUTH", "ALLOW_USER_PASSWORD_AUTH"),
];
const DEFAULT_FLOWS: [&str; 2] = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"];

/// The OAuth grant types an app client may allow.
pub const OAUTH_FLOWS: [&str; 3] = ["code", "implicit", "client_credentials"];
/// The OAuth grant of machine-to-machine tokens: it must be a client's only one.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// The scopes Cognito defines itself; every other scope names a resource server's.
pub const STANDARD_SCOPES: [&str; 5] = [
    "openid",
    "email",
    "phone",
    "profile",
    "aws.cognito.signin.user.admin",
];
/// Cognito's limit on AllowedOAuthScopes.
const MAX_OAUTH_SCOPES: usize = 50;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const DEFAULT_ACCESS: u64 = HOUR;
const DEFAULT_ID: u64 = HOUR;
const DEFAULT_REFRESH: u64 = 30 * DAY;
/// Cognito's limits for access and ID tokens: 5 minutes to 1 day.
const ACCESS_RANGE: (u64, u64) = (5 * MINUTE, DAY);
/// Cognito's limits for refresh tokens: 1 hour to 10 years.
const REFRESH_RANGE: (u64, u64) = (HOUR, 3650 * DAY);

/// How long each kind of token stays valid, as durations such as `60m`, `1h`, `30d`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenValiditySpec {
    /// Access token lifetime, 5m to 1d in whole minutes. Default 60m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// ID token lifetime, 5m to 1d in whole minutes. Default 60m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Refresh token lifetime, 1h to 3650d in whole minutes. Default 30d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPoolClientSpec {
    /// `metadata.name` of the UserPool the client belongs to.
    pub user_pool_ref: String,
    /// The client's name in Cognito; defaults to `metadata.name`. The client is found by
    /// this name inside its pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Whether the client has a client secret. Default false. Fixed at creation: changing
    /// it means replacing the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_secret: Option<bool>,
    /// Sign-in flows the client allows (ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH,
    /// ALLOW_USER_SRP_AUTH, ALLOW_ADMIN_USER_PASSWORD_AUTH, ALLOW_CUSTOM_AUTH,
    /// ALLOW_USER_AUTH). Default [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_auth_flows: Option<Vec<String>>,
    /// Token lifetimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_validity: Option<TokenValiditySpec>,
    /// OAuth grants the client allows at the pool's domain: `client_credentials`
    /// (machine-to-machine; the only one, with `generateSecret: true`). `code` and
    /// `implicit` are refused: Cognito takes them only with callback URLs, which this
    /// kind does not manage yet. Default none.
    #[serde(
        default,
        rename = "allowedOAuthFlows",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_oauth_flows: Option<Vec<String>>,
    /// OAuth scopes the client may request: Cognito's (openid, email, phone, profile,
    /// aws.cognito.signin.user.admin) or a resource server's `{identifier}/{scope}`.
    #[serde(
        default,
        rename = "allowedOAuthScopes",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_oauth_scopes: Option<Vec<String>>,
    /// Whether the OAuth settings are in force. Default: true when allowedOAuthFlows
    /// lists a grant.
    #[serde(
        default,
        rename = "allowedOAuthFlowsUserPoolClient",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_oauth_flows_user_pool_client: Option<bool>,
}

/// A client's OAuth settings, as sets (order and repeats do not matter to Cognito).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OAuth {
    pub flows: BTreeSet<String>,
    pub scopes: BTreeSet<String>,
    pub enabled: bool,
}

impl OAuth {
    fn from_spec(spec: &UserPoolClientSpec) -> Self {
        let flows: BTreeSet<String> = spec.allowed_oauth_flows.iter().flatten().cloned().collect();
        Self {
            enabled: spec
                .allowed_oauth_flows_user_pool_client
                .unwrap_or(!flows.is_empty()),
            flows,
            scopes: spec
                .allowed_oauth_scopes
                .iter()
                .flatten()
                .cloned()
                .collect(),
        }
    }

    fn from_aws(c: &UserPoolClientType) -> Self {
        Self {
            flows: c
                .allowed_o_auth_flows()
                .iter()
                .map(|f| f.as_str().to_string())
                .collect(),
            scopes: c.allowed_o_auth_scopes().iter().cloned().collect(),
            enabled: c.allowed_o_auth_flows_user_pool_client().unwrap_or(false),
        }
    }

    /// The flows for a request; `None` when there are none (Cognito refuses an empty list).
    fn sdk_flows(&self) -> Option<Vec<OAuthFlowType>> {
        (!self.flows.is_empty()).then(|| {
            self.flows
                .iter()
                .map(|f| OAuthFlowType::from(f.as_str()))
                .collect()
        })
    }

    fn sdk_scopes(&self) -> Option<Vec<String>> {
        (!self.scopes.is_empty()).then(|| self.scopes.iter().cloned().collect())
    }
}

/// Why Cognito would refuse `scope` in AllowedOAuthScopes, or `None`: a standard scope, or
/// `{identifier}/{scope}` with a valid resource server identifier and scope name.
pub fn oauth_scope_problem(scope: &str) -> Option<String> {
    if STANDARD_SCOPES.contains(&scope) {
        return None;
    }
    let valid = scope.rsplit_once('/').is_some_and(|(id, name)| {
        super::resource_server::valid_identifier(id)
            && super::resource_server::valid_scope_name(name)
    }) && scope.len() <= 256;
    (!valid).then(|| {
        format!(
            "`{scope}` is neither a Cognito scope ({}) nor a resource server's `{{identifier}}/{{scope}}`",
            STANDARD_SCOPES.join(", ")
        )
    })
}

/// Check the OAuth settings of a spec.
fn validate_oauth(spec: &UserPoolClientSpec, problems: &mut Vec<FieldProblem>) {
    let flows = spec.allowed_oauth_flows.as_deref().unwrap_or_default();
    for (i, flow) in flows.iter().enumerate() {
        if !OAUTH_FLOWS.contains(&flow.as_str()) {
            problems.push(FieldProblem::new(
                format!("spec.allowedOAuthFlows[{i}]"),
                format!(
                    "unknown OAuth flow `{flow}`; allowed: {}",
                    OAUTH_FLOWS.join(", ")
                ),
            ));
        } else if flow != CLIENT_CREDENTIALS {
            problems.push(FieldProblem::new(
                format!("spec.allowedOAuthFlows[{i}]"),
                format!(
                    "the `{flow}` flow needs callback URLs, which UserPoolClient does not manage yet: \
                     only client_credentials is supported until callback URLs are"
                ),
            ));
        }
    }
    if flows.iter().any(|f| f == CLIENT_CREDENTIALS) {
        if flows.iter().any(|f| f != CLIENT_CREDENTIALS) {
            problems.push(FieldProblem::new(
                "spec.allowedOAuthFlows",
                "client_credentials must be the only OAuth flow of a client (Cognito refuses it beside code or implicit); \
                 use another client for users",
            ));
        }
        if spec.generate_secret != Some(true) {
            problems.push(FieldProblem::new(
                "spec.generateSecret",
                "a client_credentials client authenticates with its secret: set generateSecret: true",
            ));
        }
    }
    if spec.allowed_oauth_flows_user_pool_client == Some(true) && flows.is_empty() {
        problems.push(FieldProblem::new(
            "spec.allowedOAuthFlowsUserPoolClient",
            "OAuth is switched on without a flow: list allowedOAuthFlows",
        ));
    }
    let scopes = spec.allowed_oauth_scopes.as_deref().unwrap_or_default();
    if scopes.len() > MAX_OAUTH_SCOPES {
        problems.push(FieldProblem::new(
            "spec.allowedOAuthScopes",
            format!(
                "{} scopes; Cognito allows at most {MAX_OAUTH_SCOPES}",
                scopes.len()
            ),
        ));
    }
    for (i, scope) in scopes.iter().enumerate() {
        if let Some(problem) = oauth_scope_problem(scope) {
            problems.push(FieldProblem::new(
                format!("spec.allowedOAuthScopes[{i}]"),
                problem,
            ));
        }
    }
}

/// An error about the OAuth settings, made clear: a scope no resource server defines may
/// come with a `ResourceServer` created in the same run (nothing orders the two), so it
/// is waited for, saying what to check.
fn oauth_error(d: &DesiredUserPoolClient, mut err: ReconcileError) -> ReconcileError {
    match err.reason.as_str() {
        "ScopeDoesNotExistException" => {
            err.severity = Severity::Waiting;
            err.message = format!(
                "{}: allowedOAuthScopes names a scope no resource server of pool {} defines ({}); \
                 waiting for a ResourceServer with that identifier and scope (check the spelling)",
                err.message,
                d.pool_id,
                d.oauth.scopes.iter().cloned().collect::<Vec<_>>().join(" ")
            );
            err
        }
        "InvalidOAuthFlowException" => {
            err.message = format!(
                "{} (client_credentials must be a client's only OAuth flow, and needs a client secret)",
                err.message
            );
            err
        }
        _ => err,
    }
}

/// Token lifetimes in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub access: u64,
    pub id: u64,
    pub refresh: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredUserPoolClient {
    pub pool_id: String,
    pub name: String,
    pub generate_secret: bool,
    /// Sorted and without duplicates: order and repeats do not matter to Cognito.
    pub flows: BTreeSet<String>,
    pub validity: Validity,
    pub oauth: OAuth,
}

#[derive(Debug, Clone)]
pub struct ObservedUserPoolClient {
    pub id: String,
    pub has_secret: bool,
    pub flows: BTreeSet<String>,
    pub validity: Validity,
    pub oauth: OAuth,
    /// The whole description without its secret: UpdateUserPoolClient resets what it is
    /// not given, so an update sends back everything we do not manage from here.
    pub raw: UserPoolClientType,
}

/// Parse a token lifetime and check it against Cognito's range.
fn parse_validity(text: &str, (min, max): (u64, u64)) -> std::result::Result<u64, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 60m, 1h, 30d"))?;
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || !secs.is_multiple_of(MINUTE) {
        return Err(format!("`{text}` is not a whole number of minutes"));
    }
    if !(min..=max).contains(&secs) {
        return Err(format!(
            "`{text}` is out of range: Cognito allows {} to {}",
            human(min),
            human(max)
        ));
    }
    Ok(secs)
}

fn human(secs: u64) -> String {
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// The lifetimes of a spec, each with its manifest path; errors name the path.
fn validity_of(
    spec: Option<&TokenValiditySpec>,
) -> std::result::Result<Validity, Vec<FieldProblem>> {
    let spec = spec.cloned().unwrap_or_default();
    let mut problems = Vec::new();
    let mut one = |field: &str, text: &Option<String>, range, default| match text {
        None => default,
        Some(t) => parse_validity(t, range).unwrap_or_else(|msg| {
            problems.push(FieldProblem::new(
                format!("spec.tokenValidity.{field}"),
                msg,
            ));
            default
        }),
    };
    let v = Validity {
        access: one(
            "accessToken",
            &spec.access_token,
            ACCESS_RANGE,
            DEFAULT_ACCESS,
        ),
        id: one("idToken", &spec.id_token, ACCESS_RANGE, DEFAULT_ID),
        refresh: one(
            "refreshToken",
            &spec.refresh_token,
            REFRESH_RANGE,
            DEFAULT_REFRESH,
        ),
    };
    if problems.is_empty() {
        for (field, secs) in [("accessToken", v.access), ("idToken", v.id)] {
            if secs > v.refresh {
                problems.push(FieldProblem::new(
                    format!("spec.tokenValidity.{field}"),
                    format!(
                        "{} is longer than the refresh token's {}; Cognito requires it to be no longer",
                        human(secs),
                        human(v.refresh)
                    ),
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(v)
    } else {
        Err(problems)
    }
}

/// Seconds of `value` in `unit`, with Cognito's default unit when none is reported.
fn seconds(value: i64, unit: Option<&TimeUnitsType>, default_unit: u64) -> u64 {
    let per = match unit {
        Some(TimeUnitsType::Seconds) => 1,
        Some(TimeUnitsType::Minutes) => MINUTE,
        Some(TimeUnitsType::Hours) => HOUR,
        Some(TimeUnitsType::Days) => DAY,
        _ => default_unit,
    };
    u64::try_from(value).unwrap_or(0).saturating_mul(per)
}

/// The lifetimes a client reports, in seconds. Missing values (and a refresh validity of
/// 0, which Cognito replaces with its default) are Cognito's defaults; missing units are
/// Cognito's default units (hours for access and ID tokens, days for refresh tokens).
pub fn observed_validity(c: &UserPoolClientType) -> Validity {
    let units = c.token_validity_units();
    let or = |secs: u64, default: u64| if secs == 0 { default } else { secs };
    Validity {
        access: c
            .access_token_validity()
            .map(|v| {
                or(
                    seconds(v.into(), units.and_then(|u| u.access_token()), HOUR),
                    DEFAULT_ACCESS,
                )
            })
            .unwrap_or(DEFAULT_ACCESS),
        id: c
            .id_token_validity()
            .map(|v| {
                or(
                    seconds(v.into(), units.and_then(|u| u.id_token()), HOUR),
                    DEFAULT_ID,
                )
            })
            .unwrap_or(DEFAULT_ID),
        refresh: or(
            seconds(
                c.refresh_token_validity().into(),
                units.and_then(|u| u.refresh_token()),
                DAY,
            ),
            DEFAULT_REFRESH,
        ),
    }
}

/// The lifetimes as Cognito values and units: minutes for access and ID tokens, days for
/// a refresh lifetime of whole days, minutes otherwise.
fn validity_request(v: &Validity) -> (i32, i32, i32, TokenValidityUnitsType) {
    let minutes = |secs: u64| i32::try_from(secs / MINUTE).unwrap_or(i32::MAX);
    let (refresh, refresh_unit) = if v.refresh.is_multiple_of(DAY) {
        (
            i32::try_from(v.refresh / DAY).unwrap_or(i32::MAX),
            TimeUnitsType::Days,
        )
    } else {
        (minutes(v.refresh), TimeUnitsType::Minutes)
    };
    let units = TokenValidityUnitsType::builder()
        .access_token(TimeUnitsType::Minutes)
        .id_token(TimeUnitsType::Minutes)
        .refresh_token(refresh_unit)
        .build();
    (minutes(v.access), minutes(v.id), refresh, units)
}

fn sdk_flows(flows: &BTreeSet<String>) -> Vec<ExplicitAuthFlowsType> {
    flows
        .iter()
        .map(|f| ExplicitAuthFlowsType::from(f.as_str()))
        .collect()
}

pub struct UserPoolClient {
    ctx: Arc<Ctx>,
    /// Client IDs by pool and name, from earlier listings.
    known: Memo<String>,
}

impl UserPoolClient {
    /// Find the client by listing the pool's clients, then describe it.
    async fn observe_by_listing(
        &self,
        d: &DesiredUserPoolClient,
    ) -> Result<Option<Observed<ObservedUserPoolClient>>> {
        let cognito = &self.ctx.aws.cognito;
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let listed = cognito
                .list_user_pool_clients()
                .user_pool_id(&d.pool_id)
                .max_results(60)
                .set_next_token(token.take())
                .send()
                .await;
            // The pool is gone, and its clients with it.
            let Some(page) = read_result(format!("ListUserPoolClients {}", d.pool_id), listed)?
            else {
                return Ok(None);
            };
            ids.extend(
                page.user_pool_clients()
                    .iter()
                    .filter(|c| c.client_name() == Some(d.name.as_str()))
                    .filter_map(|c| c.client_id().map(String::from)),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        if ids.len() > 1 {
            // Clients carry no tags, so nothing tells ours apart.
            return Err(ReconcileError::terminal(
                Reason::AmbiguousUserPoolClient,
                format!(
                    "{} app clients are named {} in pool {} ({}); delete the extra ones or set spec.clientName",
                    ids.len(),
                    d.name,
                    d.pool_id,
                    ids.join(", ")
                ),
            ));
        }
        let Some(id) = ids.pop() else { return Ok(None) };
        let found = self.describe(d, &id).await?;
        if found.is_some() {
            self.known.put(&known_key(d), String::new(), id.clone());
        }
        Ok(found)
    }

    /// DescribeUserPoolClient; `None` when there is no such client (or pool).
    async fn describe(
        &self,
        d: &DesiredUserPoolClient,
        id: &str,
    ) -> Result<Option<Observed<ObservedUserPoolClient>>> {
        let described = self
            .ctx
            .aws
            .cognito
            .describe_user_pool_client()
            .user_pool_id(&d.pool_id)
            .client_id(id)
            .send()
            .await;
        let described = read_result(
            format!("DescribeUserPoolClient {} ({id})", d.name),
            described,
        )?
        .and_then(|out| out.user_pool_client);
        Ok(described.map(|raw| observed_client(id.to_string(), raw)))
    }
}

/// How long a client ID found by listing is used without listing again.
pub const KNOWN_ID_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(300);

fn known_key(d: &DesiredUserPoolClient) -> String {
    format!("{}/{}", d.pool_id, d.name)
}

/// A client as observed from its description (DescribeUserPoolClient, or the answer to
/// CreateUserPoolClient); the client secret is dropped.
fn observed_client(id: String, mut raw: UserPoolClientType) -> Observed<ObservedUserPoolClient> {
    let has_secret = raw.client_secret().is_some_and(|s| !s.is_empty());
    // Never keep the client secret around.
    raw.client_secret = None;
    let flows = raw
        .explicit_auth_flows()
        .iter()
        .map(|f| f.as_str().to_string())
        .collect();
    let validity = observed_validity(&raw);
    let oauth = OAuth::from_aws(&raw);
    Observed {
        // Owned when found: see the module documentation.
        owned: true,
        resource: ObservedUserPoolClient {
            id,
            has_secret,
            flows,
            validity,
            oauth,
            raw,
        },
    }
}

#[async_trait]
impl Kind for UserPoolClient {
    const KIND: &'static str = "UserPoolClient";
    const LANE: &'static str = "cognito-idp";
    const OUTPUTS: &'static [&'static str] = &["clientId", "clientName", "poolId"];
    const CONTAINED_IN: &'static [&'static str] = &["UserPool"];
    type Spec = UserPoolClientSpec;
    type Desired = DesiredUserPoolClient;
    type Observed = ObservedUserPoolClient;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            known: Memo::new(KNOWN_ID_MAX_AGE),
        }
    }

    fn permissions(_meta: &ObjectMeta, _spec: &UserPoolClientSpec, scope: &Scope) -> Vec<Grant> {
        vec![
            Grant::new(
                &[
                    "cognito-idp:ListUserPoolClients",
                    "cognito-idp:DescribeUserPoolClient",
                    "cognito-idp:CreateUserPoolClient",
                    "cognito-idp:UpdateUserPoolClient",
                    "cognito-idp:DeleteUserPoolClient",
                ],
                vec![scope.arn("cognito-idp", "userpool/*")],
            )
            .when(Condition::Owned),
        ]
    }

    fn references(spec: &UserPoolClientSpec) -> Vec<Reference> {
        vec![Reference::new(
            "spec.userPoolRef",
            "UserPool",
            &spec.user_pool_ref,
        )]
    }

    fn validate(name: &str, spec: &UserPoolClientSpec, problems: &mut Vec<FieldProblem>) {
        if spec.user_pool_ref.is_empty() {
            problems.push(FieldProblem::new(
                "spec.userPoolRef",
                "name the UserPool (its metadata.name) this client belongs to",
            ));
        }
        match &spec.client_name {
            Some(n) => check_cognito_name("spec.clientName", "client name", n, problems),
            None => check_cognito_name(
                "metadata.name",
                "client name (spec.clientName defaults to metadata.name; set it to another name)",
                name,
                problems,
            ),
        }
        if let Some(flows) = &spec.explicit_auth_flows {
            if flows.is_empty() {
                problems.push(FieldProblem::new(
                    "spec.explicitAuthFlows",
                    format!("list at least one flow; allowed: {}", AUTH_FLOWS.join(", ")),
                ));
            }
            for (i, flow) in flows.iter().enumerate() {
                let path = format!("spec.explicitAuthFlows[{i}]");
                if let Some((_, new)) = LEGACY_FLOWS.iter().find(|(old, _)| old == flow) {
                    problems.push(FieldProblem::new(
                        path,
                        format!("`{flow}` is a legacy flow name; use {new}"),
                    ));
                } else if !AUTH_FLOWS.contains(&flow.as_str()) {
                    problems.push(FieldProblem::new(
                        path,
                        format!("unknown flow `{flow}`; allowed: {}", AUTH_FLOWS.join(", ")),
                    ));
                }
            }
        }
        if let Err(found) = validity_of(spec.token_validity.as_ref()) {
            problems.extend(found);
        }
        validate_oauth(spec, problems);
    }

    fn resolve(
        &self,
        meta: &ObjectMeta,
        spec: &UserPoolClientSpec,
        deps: &Deps<'_>,
    ) -> Result<DesiredUserPoolClient> {
        let validity = validity_of(spec.token_validity.as_ref()).map_err(|problems| {
            let text = problems
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect::<Vec<_>>()
                .join("; ");
            ReconcileError::terminal(Reason::InvalidSpec, text)
        })?;
        let flows = match &spec.explicit_auth_flows {
            Some(f) => f.iter().cloned().collect(),
            None => DEFAULT_FLOWS.iter().map(|f| f.to_string()).collect(),
        };
        Ok(DesiredUserPoolClient {
            pool_id: deps.get("UserPool", &spec.user_pool_ref, "poolId")?,
            name: spec
                .client_name
                .clone()
                .unwrap_or_else(|| meta.name.clone()),
            generate_secret: spec.generate_secret.unwrap_or(false),
            flows,
            validity,
            oauth: OAuth::from_spec(spec),
        })
    }

    /// By the ID an earlier listing found (clients have no name lookup), described
    /// directly; the pool's clients are listed again when that ID is older than
    /// [`KNOWN_ID_MAX_AGE`] (a same-named client added since is then found), or it is gone
    /// or renamed.
    async fn observe(
        &self,
        d: &DesiredUserPoolClient,
    ) -> Result<Option<Observed<ObservedUserPoolClient>>> {
        let key = known_key(d);
        if let Some(id) = self.known.get(&key, "").map(|r| r.value) {
            match self.describe(d, &id).await? {
                Some(found) if found.resource.raw.client_name() == Some(d.name.as_str()) => {
                    return Ok(Some(found));
                }
                _ => self.known.forget(&key),
            }
        }
        self.observe_by_listing(d).await
    }

    fn diff(d: &DesiredUserPoolClient, o: &ObservedUserPoolClient) -> Vec<Change> {
        let mut changes = Vec::new();
        if o.has_secret != d.generate_secret {
            changes.push(Change::new(
                GENERATE_SECRET,
                Some(Value::Bool(o.has_secret)),
                Some(Value::String(format!(
                    "{} (requires replacement)",
                    d.generate_secret
                ))),
            ));
        }
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
        compare(
            &mut changes,
            "spec.explicitAuthFlows",
            &list(&o.flows),
            &list(&d.flows),
        );
        let base = "spec.tokenValidity";
        for (field, have, want) in [
            ("accessToken", o.validity.access, d.validity.access),
            ("idToken", o.validity.id, d.validity.id),
            ("refreshToken", o.validity.refresh, d.validity.refresh),
        ] {
            // Compared in seconds (`human` is one-to-one), shown as durations.
            compare(
                &mut changes,
                &format!("{base}.{field}"),
                &human(have),
                &human(want),
            );
        }
        compare(
            &mut changes,
            "spec.allowedOAuthFlows",
            &list(&o.oauth.flows),
            &list(&d.oauth.flows),
        );
        compare(
            &mut changes,
            "spec.allowedOAuthScopes",
            &list(&o.oauth.scopes),
            &list(&d.oauth.scopes),
        );
        compare(
            &mut changes,
            "spec.allowedOAuthFlowsUserPoolClient",
            &o.oauth.enabled,
            &d.oauth.enabled,
        );
        changes
    }

    fn outputs(d: &DesiredUserPoolClient, o: &ObservedUserPoolClient) -> Outputs {
        Outputs::from([
            ("clientId".to_string(), o.id.clone()),
            ("clientName".to_string(), d.name.clone()),
            ("poolId".to_string(), d.pool_id.clone()),
        ])
    }

    async fn create(&self, d: &DesiredUserPoolClient) -> Result<()> {
        self.create_observed(d).await.map(|_| ())
    }

    /// CreateUserPoolClient answers with the client as DescribeUserPoolClient would.
    async fn create_observed(
        &self,
        d: &DesiredUserPoolClient,
    ) -> Result<Option<Observed<ObservedUserPoolClient>>> {
        // No client token exists for CreateUserPoolClient; a retry after a lost response is
        // caught by observe, which finds the client by name — so the engine retries, not the
        // SDK (see `aws::no_retry_cognito`).
        let (access, id, refresh, units) = validity_request(&d.validity);
        let created = self
            .ctx
            .aws
            .cognito
            .create_user_pool_client()
            .user_pool_id(&d.pool_id)
            .client_name(&d.name)
            .generate_secret(d.generate_secret)
            .set_explicit_auth_flows(Some(sdk_flows(&d.flows)))
            .access_token_validity(access)
            .id_token_validity(id)
            .refresh_token_validity(refresh)
            .token_validity_units(units)
            .set_allowed_o_auth_flows(d.oauth.sdk_flows())
            .set_allowed_o_auth_scopes(d.oauth.sdk_scopes())
            .allowed_o_auth_flows_user_pool_client(d.oauth.enabled)
            // No SDK retry: no idempotency token (see CreateUserPool).
            .customize()
            .config_override(crate::aws::no_retry_cognito())
            .send()
            .await
            .map_err(|e| {
                oauth_error(
                    d,
                    aws_err(format!("CreateUserPoolClient {} in {}", d.name, d.pool_id))(e),
                )
            })?;
        Ok(created.user_pool_client.and_then(|raw| {
            let id = raw.client_id()?.to_string();
            self.known.put(&known_key(d), String::new(), id.clone());
            Some(observed_client(id, raw))
        }))
    }

    async fn update(
        &self,
        d: &DesiredUserPoolClient,
        o: &Observed<ObservedUserPoolClient>,
        changes: &[Change],
    ) -> Result<()> {
        let o = &o.resource;
        refuse_replacement(d, o, changes)?;
        // Every other change is one UpdateUserPoolClient, the same whichever fields changed:
        // it sets every setting it is not given back to its default (on AWS; moto merges
        // instead), so everything we do not manage is sent back as described.
        let raw = &o.raw;

        let (access, id, refresh, units) = validity_request(&d.validity);
        let non_empty = |v: &Option<Vec<String>>| v.clone().filter(|v| !v.is_empty());
        self.ctx
            .aws
            .cognito
            .update_user_pool_client()
            .user_pool_id(&d.pool_id)
            .client_id(&o.id)
            .client_name(&d.name)
            .set_explicit_auth_flows(Some(sdk_flows(&d.flows)))
            .access_token_validity(access)
            .id_token_validity(id)
            .refresh_token_validity(refresh)
            .token_validity_units(units)
            .set_read_attributes(non_empty(&raw.read_attributes))
            .set_write_attributes(non_empty(&raw.write_attributes))
            .set_supported_identity_providers(non_empty(&raw.supported_identity_providers))
            .set_callback_urls(non_empty(&raw.callback_urls))
            .set_logout_urls(non_empty(&raw.logout_urls))
            .set_default_redirect_uri(raw.default_redirect_uri.clone())
            .set_allowed_o_auth_flows(d.oauth.sdk_flows())
            .set_allowed_o_auth_scopes(d.oauth.sdk_scopes())
            .allowed_o_auth_flows_user_pool_client(d.oauth.enabled)
            .set_analytics_configuration(raw.analytics_configuration.clone())
            .set_prevent_user_existence_errors(raw.prevent_user_existence_errors.clone())
            .set_enable_token_revocation(raw.enable_token_revocation)
            .set_enable_propagate_additional_user_context_data(
                raw.enable_propagate_additional_user_context_data,
            )
            .set_auth_session_validity(raw.auth_session_validity)
            .set_refresh_token_rotation(raw.refresh_token_rotation.clone())
            .send()
            .await
            .map_err(|e| {
                oauth_error(
                    d,
                    aws_err(format!("UpdateUserPoolClient {} ({})", d.name, o.id))(e),
                )
            })?;
        Ok(())
    }

    async fn delete(&self, d: &DesiredUserPoolClient, o: &ObservedUserPoolClient) -> Result<()> {
        let deleted = self
            .ctx
            .aws
            .cognito
            .delete_user_pool_client()
            .user_pool_id(&d.pool_id)
            .client_id(&o.id)
            .send()
            .await;
        write_result(
            format!("DeleteUserPoolClient {} ({})", d.name, o.id),
            deleted,
        )?;
        self.known.forget(&known_key(d));
        Ok(())
    }
}

/// The field `diff` names when the client's secret is not what the spec asks.
const GENERATE_SECRET: &str = "spec.generateSecret";

/// Cognito cannot add or remove a client secret after creation: an update whose changes
/// name it is refused, and says how to get there.
fn refuse_replacement(
    d: &DesiredUserPoolClient,
    o: &ObservedUserPoolClient,
    changes: &[Change],
) -> Result<()> {
    if !changed(changes, GENERATE_SECRET) {
        return Ok(());
    }
    Err(ReconcileError::terminal(
        Reason::RequiresReplacement,
        format!(
            "app client {} ({}) {} and Cognito cannot change that after creation; \
             delete the client so it is created again, or give it a new spec.clientName",
            d.name,
            o.id,
            if o.has_secret {
                "has a client secret"
            } else {
                "has no client secret"
            }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An update is refused when its changes name the client secret, and only then.
    #[test]
    fn update_refuses_what_needs_a_new_client() {
        let d = desired(&["ALLOW_USER_PASSWORD_AUTH"], DEFAULTS, true);
        let o = observed(&["ALLOW_USER_PASSWORD_AUTH"], DEFAULTS, false);
        let field = |f: &str| Change::new(f, None, None);
        let cases = [
            (vec![], true),
            (vec![field("spec.explicitAuthFlows")], true),
            (vec![Change::adoption()], true),
            (vec![field(GENERATE_SECRET)], false),
            (UserPoolClient::diff(&d, &o), false),
        ];
        for (changes, allowed) in cases {
            let refused = refuse_replacement(&d, &o, &changes);
            assert_eq!(refused.is_ok(), allowed, "{changes:?}");
            if let Err(e) = refused {
                assert_eq!(e.reason, Reason::RequiresReplacement);
                assert!(e.message.contains("has no client secret"), "{e}");
            }
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    const DEFAULTS: Validity = Validity {
        access: HOUR,
        id: HOUR,
        refresh: 30 * DAY,
    };

    fn desired(flows: &[&str], validity: Validity, secret: bool) -> DesiredUserPoolClient {
        DesiredUserPoolClient {
            pool_id: "us-east-1_abc".into(),
            name: "client".into(),
            generate_secret: secret,
            flows: set(flows),
            validity,
            oauth: OAuth::default(),
        }
    }

    fn observed(flows: &[&str], validity: Validity, secret: bool) -> ObservedUserPoolClient {
        ObservedUserPoolClient {
            id: "c1".into(),
            has_secret: secret,
            flows: set(flows),
            validity,
            oauth: OAuth::default(),
            raw: UserPoolClientType::builder().build(),
        }
    }

    #[test]
    fn diff_table() {
        let flows = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"];
        let cases = [
            (
                observed(&flows, DEFAULTS, false),
                desired(&flows, DEFAULTS, false),
                vec![],
            ),
            (
                observed(&flows, DEFAULTS, false),
                desired(
                    &[
                        "ALLOW_REFRESH_TOKEN_AUTH",
                        "ALLOW_USER_PASSWORD_AUTH",
                        "ALLOW_USER_PASSWORD_AUTH",
                    ],
                    DEFAULTS,
                    false,
                ),
                vec![],
            ),
            (
                observed(&flows, DEFAULTS, false),
                desired(
                    &["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
                    DEFAULTS,
                    false,
                ),
                vec![Change::new(
                    "spec.explicitAuthFlows",
                    Some(json!([
                        "ALLOW_REFRESH_TOKEN_AUTH",
                        "ALLOW_USER_PASSWORD_AUTH"
                    ])),
                    Some(json!(["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"])),
                )],
            ),
            (
                observed(&flows, DEFAULTS, false),
                desired(&flows, DEFAULTS, true),
                vec![Change::new(
                    "spec.generateSecret",
                    Some(json!(false)),
                    Some(json!("true (requires replacement)")),
                )],
            ),
            (
                observed(&flows, DEFAULTS, false),
                desired(
                    &flows,
                    Validity {
                        access: 30 * MINUTE,
                        refresh: 7 * DAY,
                        ..DEFAULTS
                    },
                    false,
                ),
                vec![
                    Change::new(
                        "spec.tokenValidity.accessToken",
                        Some(json!("1h")),
                        Some(json!("30m")),
                    ),
                    Change::new(
                        "spec.tokenValidity.refreshToken",
                        Some(json!("30days")),
                        Some(json!("7days")),
                    ),
                ],
            ),
        ];
        for (o, d, want) in cases {
            assert_eq!(UserPoolClient::diff(&d, &o), want);
        }
    }

    #[test]
    fn observed_validity_is_normalised() {
        let units = |a, i, r| {
            TokenValidityUnitsType::builder()
                .access_token(a)
                .id_token(i)
                .refresh_token(r)
                .build()
        };
        let cases = [
            // Nothing reported: Cognito's defaults.
            (UserPoolClientType::builder().build(), DEFAULTS),
            // Values without units: hours and days.
            (
                UserPoolClientType::builder()
                    .access_token_validity(1)
                    .id_token_validity(2)
                    .refresh_token_validity(30)
                    .build(),
                Validity {
                    id: 2 * HOUR,
                    ..DEFAULTS
                },
            ),
            // What we send, read back (moto echoes it).
            (
                UserPoolClientType::builder()
                    .access_token_validity(60)
                    .id_token_validity(60)
                    .refresh_token_validity(30)
                    .token_validity_units(units(
                        TimeUnitsType::Minutes,
                        TimeUnitsType::Minutes,
                        TimeUnitsType::Days,
                    ))
                    .build(),
                DEFAULTS,
            ),
            (
                UserPoolClientType::builder()
                    .access_token_validity(3600)
                    .id_token_validity(1)
                    .refresh_token_validity(90)
                    .token_validity_units(units(
                        TimeUnitsType::Seconds,
                        TimeUnitsType::Hours,
                        TimeUnitsType::Minutes,
                    ))
                    .build(),
                Validity {
                    refresh: 90 * MINUTE,
                    ..DEFAULTS
                },
            ),
        ];
        for (client, want) in cases {
            assert_eq!(observed_validity(&client), want, "{client:?}");
        }
    }

    #[test]
    fn request_round_trips() {
        for v in [
            DEFAULTS,
            Validity {
                access: 5 * MINUTE,
                id: DAY,
                refresh: 90 * MINUTE,
            },
        ] {
            let (access, id, refresh, units) = validity_request(&v);
            let client = UserPoolClientType::builder()
                .access_token_validity(access)
                .id_token_validity(id)
                .refresh_token_validity(refresh)
                .token_validity_units(units)
                .build();
            assert_eq!(observed_validity(&client), v);
        }
        let (_, _, refresh, units) = validity_request(&DEFAULTS);
        assert_eq!(
            (refresh, units.refresh_token()),
            (30, Some(&TimeUnitsType::Days))
        );
    }

    #[test]
    fn validation_table() {
        let tv = |a: Option<&str>, i: Option<&str>, r: Option<&str>| {
            Some(TokenValiditySpec {
                access_token: a.map(String::from),
                id_token: i.map(String::from),
                refresh_token: r.map(String::from),
            })
        };
        let flows = |f: &[&str]| Some(f.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let cases: Vec<(Option<Vec<String>>, Option<TokenValiditySpec>, usize)> = vec![
            (None, None, 0),
            (
                flows(&["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]),
                tv(Some("60m"), Some("1h"), Some("30d")),
                0,
            ),
            (
                flows(&["ALLOW_USER_AUTH", "ALLOW_USER_AUTH"]),
                tv(Some("5m"), Some("1d"), Some("3650d")),
                0,
            ),
            (flows(&[]), None, 1),
            (flows(&["USER_PASSWORD_AUTH"]), None, 1),
            (flows(&["ALLOW_EVERYTHING", "ADMIN_NO_SRP_AUTH"]), None, 2),
            (None, tv(Some("4m"), None, None), 1),
            (None, tv(None, Some("25h"), None), 1),
            (None, tv(None, None, Some("59m")), 1),
            (None, tv(None, None, Some("3651d")), 1),
            (None, tv(Some("90s"), None, None), 1),
            (None, tv(Some("soon"), None, None), 1),
            // Access and ID tokens may not outlive the refresh token.
            (None, tv(Some("2h"), Some("3h"), Some("1h")), 2),
        ];
        for (explicit_auth_flows, token_validity, count) in cases {
            let spec = UserPoolClientSpec {
                user_pool_ref: "pool".into(),
                explicit_auth_flows,
                token_validity,
                ..Default::default()
            };
            let mut problems = Vec::new();
            UserPoolClient::validate("client", &spec, &mut problems);
            assert_eq!(problems.len(), count, "{spec:?}: {problems:?}");
        }
        let mut problems = Vec::new();
        let spec = UserPoolClientSpec::default();
        UserPoolClient::validate("bad/name", &spec, &mut problems);
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["spec.userPoolRef", "metadata.name"]);
    }

    #[test]
    fn oauth_validation_table() {
        let v = |items: &[&str]| Some(items.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        type Case<'a> = (
            Option<Vec<String>>,
            Option<Vec<String>>,
            Option<bool>,
            Vec<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (None, None, None, vec![]),
            (
                v(&["client_credentials"]),
                v(&["mcp/read", "https://api.example.com/write"]),
                Some(true),
                vec![],
            ),
            // Cognito takes these only with CallbackURLs, which the manifest cannot set.
            (
                v(&["code", "implicit"]),
                v(&["openid", "email"]),
                None,
                vec!["spec.allowedOAuthFlows[0]", "spec.allowedOAuthFlows[1]"],
            ),
            (
                v(&["password"]),
                None,
                None,
                vec!["spec.allowedOAuthFlows[0]"],
            ),
            // client_credentials beside another flow, and without a secret.
            (
                v(&["client_credentials", "code"]),
                None,
                Some(true),
                vec!["spec.allowedOAuthFlows[1]", "spec.allowedOAuthFlows"],
            ),
            (
                v(&["client_credentials"]),
                None,
                Some(false),
                vec!["spec.generateSecret"],
            ),
            (
                v(&["client_credentials"]),
                None,
                None,
                vec!["spec.generateSecret"],
            ),
            (
                None,
                v(&["read", "mcp/", "/read", "mcp/a b", "mcp/x\\y"]),
                None,
                vec![
                    "spec.allowedOAuthScopes[0]",
                    "spec.allowedOAuthScopes[1]",
                    "spec.allowedOAuthScopes[2]",
                    "spec.allowedOAuthScopes[3]",
                    "spec.allowedOAuthScopes[4]",
                ],
            ),
            (
                None,
                Some((0..51).map(|i| format!("mcp/s{i}")).collect()),
                None,
                vec!["spec.allowedOAuthScopes"],
            ),
        ];
        let mut on_without_flows = UserPoolClientSpec {
            user_pool_ref: "pool".into(),
            allowed_oauth_flows_user_pool_client: Some(true),
            ..Default::default()
        };
        let mut problems = Vec::new();
        UserPoolClient::validate("client", &on_without_flows, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "spec.allowedOAuthFlowsUserPoolClient");
        on_without_flows.allowed_oauth_flows = Some(vec!["client_credentials".into()]);
        on_without_flows.generate_secret = Some(true);
        problems.clear();
        UserPoolClient::validate("client", &on_without_flows, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        for (flows, scopes, secret, want) in cases {
            let spec = UserPoolClientSpec {
                user_pool_ref: "pool".into(),
                generate_secret: secret,
                allowed_oauth_flows: flows,
                allowed_oauth_scopes: scopes,
                ..Default::default()
            };
            let mut problems = Vec::new();
            UserPoolClient::validate("client", &spec, &mut problems);
            let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
            assert_eq!(paths, want, "{spec:?}");
        }
        let spec = UserPoolClientSpec {
            user_pool_ref: "pool".into(),
            allowed_oauth_flows: v(&["code"]),
            ..Default::default()
        };
        let mut problems = Vec::new();
        UserPoolClient::validate("client", &spec, &mut problems);
        assert!(
            problems.iter().any(|p| p.message.contains("callback URLs")
                && p.message.contains("only client_credentials is supported")),
            "{problems:?}"
        );
    }

    #[test]
    fn oauth_defaults_and_diff() {
        let spec = UserPoolClientSpec {
            allowed_oauth_flows: Some(vec!["client_credentials".into()]),
            allowed_oauth_scopes: Some(vec!["mcp/write".into(), "mcp/read".into()]),
            ..Default::default()
        };
        let want = OAuth::from_spec(&spec);
        assert!(want.enabled, "enabled by default when flows are given");
        assert!(!OAuth::from_spec(&UserPoolClientSpec::default()).enabled);
        let mut d = desired(&[], DEFAULTS, true);
        d.oauth = want.clone();
        let mut o = observed(&[], DEFAULTS, true);
        // The same scopes in another order: no change.
        o.oauth = OAuth {
            scopes: set(&["mcp/read", "mcp/write"]),
            ..want.clone()
        };
        assert_eq!(UserPoolClient::diff(&d, &o), vec![]);
        // Changed by hand: every OAuth field is put back.
        o.oauth = OAuth {
            flows: set(&["code"]),
            scopes: set(&["mcp/read"]),
            enabled: false,
        };
        assert_eq!(
            UserPoolClient::diff(&d, &o),
            vec![
                Change::new(
                    "spec.allowedOAuthFlows",
                    Some(json!(["code"])),
                    Some(json!(["client_credentials"]))
                ),
                Change::new(
                    "spec.allowedOAuthScopes",
                    Some(json!(["mcp/read"])),
                    Some(json!(["mcp/read", "mcp/write"]))
                ),
                Change::new(
                    "spec.allowedOAuthFlowsUserPoolClient",
                    Some(json!(false)),
                    Some(json!(true))
                ),
            ]
        );
        let described = UserPoolClientType::builder()
            .allowed_o_auth_flows(OAuthFlowType::ClientCredentials)
            .allowed_o_auth_scopes("mcp/write")
            .allowed_o_auth_scopes("mcp/read")
            .allowed_o_auth_flows_user_pool_client(true)
            .build();
        assert_eq!(OAuth::from_aws(&described), want);
        assert_eq!(
            OAuth::from_aws(&UserPoolClientType::builder().build()),
            OAuth::default()
        );
    }

    #[test]
    fn oauth_errors_say_what_to_do() {
        let mut d = desired(&[], DEFAULTS, true);
        d.oauth.scopes = set(&["mcp/raed"]);
        let e = oauth_error(
            &d,
            ReconcileError::terminal(
                Reason::aws("ScopeDoesNotExistException"),
                "CreateUserPoolClient c: ScopeDoesNotExistException: Invalid scope requested",
            ),
        );
        assert_eq!(e.severity, Severity::Waiting);
        assert!(
            e.message.contains("mcp/raed") && e.message.contains("ResourceServer"),
            "{e}"
        );
        let e = oauth_error(
            &d,
            ReconcileError::terminal(Reason::aws("InvalidOAuthFlowException"), "x"),
        );
        assert!(e.is_terminal());
        assert!(e.message.contains("only OAuth flow"), "{e}");
        let other = ReconcileError::terminal(Reason::aws("InvalidParameterException"), "y");
        assert_eq!(oauth_error(&d, other.clone()), other);
    }

    #[test]
    fn validity_problems_name_the_field() {
        let spec = TokenValiditySpec {
            refresh_token: Some("10m".into()),
            ..Default::default()
        };
        let problems = validity_of(Some(&spec)).err().unwrap_or_default();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "spec.tokenValidity.refreshToken");
        assert!(
            problems[0].message.contains("1h"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn manifest_spec_parses() {
        use crate::kinds::Registry;
        use crate::model::yaml::parse_documents;
        let registry = Registry::offline();
        let schema = registry.schema("UserPoolClient").expect("registered");
        let yaml = "userPoolRef: pool\nexplicitAuthFlows: [ALLOW_USER_SRP_AUTH, ALLOW_REFRESH_TOKEN_AUTH]\n\
                    tokenValidity:\n  accessToken: 30m\n";
        let docs = parse_documents(yaml).expect("yaml");
        let spec = schema.parse("client", &docs[0]).0.expect("valid");
        let refs = schema.references(&spec);
        assert_eq!(
            refs,
            vec![Reference::new("spec.userPoolRef", "UserPool", "pool")]
        );
        let docs = parse_documents(
            "userPoolRef: pool\ngenerateSecret: true\nallowedOAuthFlows: [client_credentials]\n\
             allowedOAuthScopes: [mcp/read]\nallowedOAuthFlowsUserPoolClient: true\n",
        )
        .expect("yaml");
        let (m2m, problems) = schema.parse("client", &docs[0]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            m2m.expect("valid")["allowedOAuthScopes"],
            serde_json::json!(["mcp/read"])
        );
        let docs = parse_documents("userPoolRef: pool\nexplicitAuthFlows: [SRP]\n").expect("yaml");
        let problems = schema.parse("client", &docs[0]).1;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "spec.explicitAuthFlows[0]");
    }

    #[test]
    fn declared_outputs_are_the_outputs() {
        let out = UserPoolClient::outputs(
            &desired(&[], DEFAULTS, false),
            &observed(&[], DEFAULTS, false),
        );
        crate::kinds::assert_declared_outputs::<UserPoolClient>(&out);
    }
}
