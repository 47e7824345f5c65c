//! `Token`: a Cognito bearer token published for clients, renewed before it expires (as
//! cert-manager's Certificate keeps a Secret fresh).
//!
//! The consumer secret keeps the guide's layout so existing clients work unchanged:
//! `pool_id`, `client_id`, `discovery_url`, `access_token`, `id_token`, `bearer_token`
//! (the chosen token) and `expires_at`. Each renewal writes a new secret version, so the
//! previous token stays reachable as AWSPREVIOUS. The refresh token lives in a
//! controller-only secret. Renewal uses the refresh token; when that is refused it signs
//! in with the user's controller-generated password; when that is refused too (changed
//! behind the controller's back) it sets a new generated password — it owns the user.
//!
//! With `grant: client_credentials` the token is a machine-to-machine access token from
//! the pool domain's OAuth 2.0 token endpoint, for an app client with a secret: the secret
//! is read with DescribeUserPoolClient at each renewal and kept in memory only. The
//! consumer secret has the same layout without `id_token`; there is no refresh token and
//! no controller-only secret: each renewal is a new grant.
//!
//! The consumer secret also names the grant that produced it (`grant`: `password` or
//! `client_credentials`; one written before that key is told by its `id_token`, which
//! only the password grant gives), so a Token switched to the other grant is granted
//! again at once, and a switch to client_credentials deletes the (default-named) refresh
//! token secret the password grant kept.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::user::{new_password, read_password, set_permanent_password};
use super::user_pool::discovery_url;
use super::{
    Change, Ctx, Deps, Kind, ObjectMeta, Observed, Outputs, Readiness, Reference, Writes,
    secrets_manager,
};
use crate::error::{Reason, ReconcileError, Result, aws_err};
use crate::model::de::FieldProblem;
use crate::model::permissions::{Condition, Grant, Scope};

/// Which Cognito token clients present as the bearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Bearer {
    /// The access token (`token_use: access`, carries `client_id`): what AgentCore recommends.
    #[default]
    Access,
    /// The ID token (`token_use: id`, carries `aud`).
    Id,
}

/// How the token is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GrantKind {
    /// A user signs in with its password (then renews with its refresh token).
    #[default]
    Password,
    /// The app client authenticates with its secret at the pool domain's token endpoint
    /// (machine to machine: no user).
    ClientCredentials,
}

impl GrantKind {
    /// As the manifest and the consumer secret's `grant` key spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// The grant a published consumer secret came from: its `grant` key, else (a secret
    /// written before that key) `password` when it has an `id_token` (only that grant
    /// gives one); `None` without a token.
    fn published(map: &Map<String, Value>) -> Option<Self> {
        let named = map
            .get(GRANT_KEY)
            .and_then(|v| serde_json::from_value::<Self>(v.clone()).ok());
        match named {
            Some(grant) => Some(grant),
            _ if !map.contains_key("bearer_token") => None,
            _ if map.contains_key("id_token") => Some(Self::Password),
            _ => Some(Self::ClientCredentials),
        }
    }
}

/// Which of the manifests' Tokens publishes the bearer for a runtime whose authorizer
/// names `client_refs`: the one Token of such a client, else the only Token. `Err` with the
/// number of candidates (0: none) when that does not decide. `tokens`: each Token with its
/// clientRef.
pub fn bearer_token_of<T: Copy>(
    tokens: &[(T, Option<&str>)],
    client_refs: &[String],
) -> std::result::Result<T, usize> {
    let matching: Vec<T> = tokens
        .iter()
        .filter(|(_, c)| c.is_some_and(|c| client_refs.iter().any(|r| r == c)))
        .map(|(t, _)| *t)
        .collect();
    match (matching.as_slice(), tokens) {
        ([one], _) | ([], [(one, _)]) => Ok(*one),
        ([], _) => Err(tokens.len()),
        _ => Err(matching.len()),
    }
}

/// The consumer secret's key naming the grant its token came from.
const GRANT_KEY: &str = "grant";
/// The field `diff` names when the published token came from the other grant.
const GRANT_CHANGE: &str = "spec.grant";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSpec {
    /// `password` (default: a user's tokens) or `client_credentials` (machine to machine).
    #[serde(default)]
    pub grant: GrantKind,
    /// The `User` object whose tokens are published (the password grant only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_ref: Option<String>,
    /// The `UserPoolClient` object the user signs in through, or that asks for the
    /// machine-to-machine token.
    pub client_ref: String,
    /// The `UserPoolDomain` whose token endpoint grants the token (client_credentials only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_ref: Option<String>,
    /// The scopes to ask for (client_credentials only), each `{identifier}/{scope}`.
    /// Default: every scope the client is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Which token is the bearer: `access` (default) or `id`.
    #[serde(default)]
    pub bearer: Bearer,
    /// Renew this long before expiry (e.g. `20m`). Default: a third of the token's lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before: Option<String>,
    /// The secret clients read (e.g. `mcp_server/cognito/credentials`).
    pub secret_name: String,
    /// The controller-only secret holding the refresh token (the password grant only).
    /// Default: `agentcore-controller/tokens/<secretName>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_secret_name: Option<String>,
}

/// How a desired token is obtained, with what that needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesiredGrant {
    Password {
        username: String,
        password_secret: String,
    },
    ClientCredentials {
        token_url: String,
        scopes: Vec<String>,
    },
}

impl DesiredGrant {
    pub fn kind(&self) -> GrantKind {
        match self {
            Self::Password { .. } => GrantKind::Password,
            Self::ClientCredentials { .. } => GrantKind::ClientCredentials,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DesiredToken {
    pub secret_name: String,
    pub state_secret_name: String,
    pub grant: DesiredGrant,
    pub pool_id: String,
    pub client_id: String,
    pub discovery_url: String,
    pub bearer: Bearer,
    pub renew_before: Option<Duration>,
    /// When this reconcile looks at the token (diff is pure: time comes in here).
    pub now: SystemTime,
}

/// What a Token owns as observed: the consumer secret's plain fields, what its bearer
/// token claims, and whether the controller-only refresh-token secret is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedToken {
    pub arn: String,
    pub pool_id: Option<String>,
    pub client_id: Option<String>,
    pub discovery_url: Option<String>,
    /// Claims of the current bearer token (`None` when there is none or it is unreadable).
    pub bearer: Option<TokenTimes>,
    /// The refresh-token secret exists (and is not scheduled for deletion). It is written
    /// after the consumer secret, so a run stopped in between leaves it missing; the next
    /// reconcile renews to write both again. Always true for client_credentials, which
    /// has none.
    pub refresh_stored: bool,
    /// The scopes the bearer token carries (its `scope` claim), sorted.
    pub scopes: Vec<String>,
    /// The grant the published token came from (see [`GrantKind::published`]).
    pub grant: Option<GrantKind>,
}

/// The claims renewal needs (read without verifying: scheduling only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTimes {
    pub issued_at: SystemTime,
    pub expires_at: SystemTime,
    pub token_use_access: bool,
}

impl TokenTimes {
    /// When renewal falls due: `renew_before` ahead of expiry, default a third of the
    /// lifetime.
    pub fn renew_at(&self, renew_before: Option<Duration>) -> SystemTime {
        let lifetime = self
            .expires_at
            .duration_since(self.issued_at)
            .unwrap_or_default();
        let ahead = renew_before.unwrap_or(lifetime / 3).min(lifetime);
        self.expires_at - ahead
    }
}

/// Read `exp`, `iat` and `token_use` from a JWT without verifying it (scheduling only).
pub fn token_times(token: &str) -> Option<TokenTimes> {
    let (_, claims) = crate::token::jwt::peek(token).ok()?;
    let expires_at = UNIX_EPOCH.checked_add(Duration::from_secs(claims.exp))?;
    let issued_at = UNIX_EPOCH
        .checked_add(Duration::from_secs(claims.iat))
        .filter(|i| *i <= expires_at && claims.iat > 0)
        .unwrap_or_else(|| {
            expires_at
                .checked_sub(Duration::from_secs(3600))
                .unwrap_or(UNIX_EPOCH)
        });
    Some(TokenTimes {
        issued_at,
        expires_at,
        token_use_access: claims.token_use == "access",
    })
}

/// The scopes a JWT's `scope` claim lists, sorted (read without verifying).
pub fn granted_scopes(token: &str) -> Vec<String> {
    let mut scopes: Vec<String> = crate::token::jwt::peek(token)
        .map(|(_, c)| c.scopes().into_iter().map(String::from).collect())
        .unwrap_or_default();
    scopes.sort();
    scopes.dedup();
    scopes
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Fresh tokens from Cognito (no ID token from the client_credentials grant).
struct Tokens {
    access: SecretString,
    id: Option<SecretString>,
    refresh: Option<SecretString>,
}

/// The default name of the controller-only secret that keeps a Token's refresh token.
fn state_secret_name(secret_name: &str) -> String {
    format!("agentcore-controller/tokens/{secret_name}")
}

pub struct Token {
    ctx: Arc<Ctx>,
}

impl Token {
    async fn secret_json(&self, name: &str) -> Result<Option<(String, Map<String, Value>, bool)>> {
        let Some(described) = secrets_manager::describe(&self.ctx, name).await? else {
            return Ok(None);
        };
        let owned = self.ctx.owns(
            described
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?, t.value()?))),
        );
        let arn = described.arn().unwrap_or_default().to_string();
        let value = secrets_manager::value(&self.ctx, name)
            .await?
            .unwrap_or_else(|| SecretString::from(String::new()));
        // The value may hold tokens: never quote it, not even in a parse error.
        let map =
            serde_json::from_str::<Map<String, Value>>(value.expose_secret()).unwrap_or_default();
        Ok(Some((arn, map, owned)))
    }

    /// Write a new version of secret `name` (creating it, tagged as ours, when it does not
    /// exist); returns its ARN as the answer gives it.
    async fn put_secret(&self, name: &str, value: &SecretString, exists: bool) -> Result<String> {
        let sm = &self.ctx.aws.secrets;
        let arn = if exists {
            sm.put_secret_value()
                .secret_id(name)
                .secret_string(value.expose_secret())
                .send()
                .await
                .map_err(aws_err(format!("PutSecretValue {name}")))?
                .arn
        } else {
            sm.create_secret()
                .name(name)
                .secret_string(value.expose_secret())
                .set_tags(Some(secrets_manager::owner_tags(&self.ctx)))
                .send()
                .await
                .map_err(aws_err(format!("CreateSecret {name}")))?
                .arn
        };
        Ok(arn.unwrap_or_default())
    }

    /// Whether secret `name` exists, restoring it first when it is scheduled for deletion
    /// (which blocks both CreateSecret and PutSecretValue).
    async fn ensure_restored(&self, name: &str) -> Result<bool> {
        let Some(described) = secrets_manager::describe(&self.ctx, name).await? else {
            return Ok(false);
        };
        if described.deleted_date().is_some() {
            self.ctx
                .aws
                .secrets
                .restore_secret()
                .secret_id(name)
                .send()
                .await
                .map_err(aws_err(format!("RestoreSecret {name}")))?;
        }
        Ok(true)
    }

    /// The app client's secret (in memory only); `None` when the client has none.
    async fn client_secret(&self, d: &DesiredToken) -> Result<Option<SecretString>> {
        let client = self
            .ctx
            .aws
            .cognito
            .describe_user_pool_client()
            .user_pool_id(&d.pool_id)
            .client_id(&d.client_id)
            .send()
            .await
            .map_err(aws_err(format!("DescribeUserPoolClient {}", d.client_id)))?;
        Ok(client
            .user_pool_client
            .and_then(|c| c.client_secret)
            .filter(|s| !s.is_empty())
            .map(SecretString::from))
    }

    /// SECRET_HASH for clients with a secret: Base64(HMAC-SHA256(secret, username + client id)).
    async fn secret_hash(&self, d: &DesiredToken, username: &str) -> Result<Option<String>> {
        let Some(secret) = self.client_secret(d).await? else {
            return Ok(None);
        };
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .map_err(|_| {
                ReconcileError::terminal(Reason::InvalidClientSecret, "client secret unusable")
            })?;
        mac.update(username.as_bytes());
        mac.update(d.client_id.as_bytes());
        Ok(Some(
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
        ))
    }

    async fn initiate(
        &self,
        d: &DesiredToken,
        username: &str,
        flow: AuthFlowType,
        params: Vec<(&str, String)>,
    ) -> std::result::Result<Tokens, SignInError> {
        let mut req = self
            .ctx
            .aws
            .cognito
            .initiate_auth()
            .client_id(&d.client_id)
            .auth_flow(flow.clone());
        for (k, v) in params {
            req = req.auth_parameters(k, v);
        }
        let out = req.send().await.map_err(|e| {
            let refused = e
                .as_service_error()
                .is_some_and(|se| se.is_not_authorized_exception());
            let mut err = aws_err(format!("InitiateAuth {} for {username}", flow.as_str()))(e);
            // Cognito's messages may quote what was sent (the emulator quotes the refresh
            // token): keep only the ones known to be safe and useful.
            const SAFE: [&str; 4] = [
                "Incorrect username or password.",
                "Password attempts exceeded",
                "User is disabled.",
                "Refresh Token has been revoked",
            ];
            let known = SAFE.iter().find(|m| err.message.contains(*m));
            err.message = format!(
                "InitiateAuth {} for {username}: {}{}",
                flow.as_str(),
                err.reason,
                known.map(|m| format!(": {m}")).unwrap_or_default()
            );
            if refused {
                SignInError::Refused(err)
            } else {
                SignInError::Failed(err)
            }
        })?;
        let Some(result) = out.authentication_result() else {
            let challenge = out
                .challenge_name()
                .map(|c| c.as_str().to_string())
                .unwrap_or_default();
            return Err(SignInError::Failed(ReconcileError::terminal(
                Reason::ChallengeRequired,
                format!(
                    "Cognito asks {username} for a {challenge} challenge; the controller signs in without challenges (is the user CONFIRMED?)"
                ),
            )));
        };
        Ok(Tokens {
            access: SecretString::from(result.access_token().unwrap_or_default().to_string()),
            id: Some(SecretString::from(
                result.id_token().unwrap_or_default().to_string(),
            )),
            refresh: result
                .refresh_token()
                .map(|r| SecretString::from(r.to_string())),
        })
    }

    async fn password_sign_in(
        &self,
        d: &DesiredToken,
        username: &str,
        password: &SecretString,
        hash: &Option<String>,
    ) -> std::result::Result<Tokens, SignInError> {
        let mut params = vec![
            ("USERNAME", username.to_string()),
            ("PASSWORD", password.expose_secret().to_string()),
        ];
        if let Some(h) = hash {
            params.push(("SECRET_HASH", h.clone()));
        }
        self.initiate(d, username, AuthFlowType::UserPasswordAuth, params)
            .await
    }

    /// Get fresh tokens by the token's grant.
    async fn renew(&self, d: &DesiredToken) -> Result<(Tokens, &'static str)> {
        match &d.grant {
            DesiredGrant::Password {
                username,
                password_secret,
            } => self.renew_user(d, username, password_secret).await,
            DesiredGrant::ClientCredentials { token_url, scopes } => {
                self.client_credentials(d, token_url, scopes).await
            }
        }
    }

    /// A machine-to-machine token: the client's secret (read now, in memory only) at the
    /// domain's token endpoint.
    async fn client_credentials(
        &self,
        d: &DesiredToken,
        token_url: &str,
        scopes: &[String],
    ) -> Result<(Tokens, &'static str)> {
        let Some(secret) = self.client_secret(d).await? else {
            return Err(ReconcileError::terminal(
                Reason::InvalidClientSecret,
                format!(
                    "app client {} has no client secret, which the client_credentials grant needs: \
                     give the UserPoolClient generateSecret: true (this replaces the client)",
                    d.client_id
                ),
            ));
        };
        // The token endpoint's own override, never AWS_ENDPOINT_URL: the secret goes there.
        let endpoint = crate::token::endpoint::domain_override();
        let granted = crate::token::endpoint::client_credentials(
            token_url,
            &d.client_id,
            &secret,
            scopes,
            endpoint.as_deref(),
        )
        .await?;
        Ok((
            Tokens {
                access: granted.access_token,
                id: None,
                refresh: None,
            },
            "client-credentials",
        ))
    }

    /// A user's tokens: refresh token, else password, else a new password.
    async fn renew_user(
        &self,
        d: &DesiredToken,
        username: &str,
        password_secret: &str,
    ) -> Result<(Tokens, &'static str)> {
        let hash = self.secret_hash(d, username).await?;
        let state = self.secret_json(&d.state_secret_name).await?;
        let refresh = state
            .as_ref()
            .and_then(|(_, m, _)| m.get("refresh_token"))
            .and_then(Value::as_str)
            .map(|s| SecretString::from(s.to_string()));
        if let Some(refresh) = &refresh {
            let mut params = vec![("REFRESH_TOKEN", refresh.expose_secret().to_string())];
            if let Some(h) = &hash {
                params.push(("SECRET_HASH", h.clone()));
            }
            match self
                .initiate(d, username, AuthFlowType::RefreshTokenAuth, params)
                .await
            {
                Ok(t) => return Ok((t, "refresh")),
                Err(SignInError::Refused(_)) => {
                    tracing::warn!(user = %username, "refresh token refused; signing in with the password");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let password = read_password(&self.ctx, password_secret).await?;
        match self.password_sign_in(d, username, &password, &hash).await {
            Ok(t) => return Ok((t, "password")),
            Err(e) if e.is_wrong_password() => {
                tracing::warn!(user = %username, "stored password refused; setting a new one");
            }
            Err(e) => return Err(e.into()),
        }
        // The controller owns the user: store a new password first (so it is never lost),
        // then set it, then sign in with it.
        let password = new_password(&self.ctx, &d.pool_id).await?;
        let stored = SecretString::from(
            serde_json::json!({"username": username, "password": password.expose_secret()})
                .to_string(),
        );
        self.put_secret(password_secret, &stored, true).await?;
        set_permanent_password(&self.ctx, &d.pool_id, username, &password).await?;
        let tokens = self.password_sign_in(d, username, &password, &hash).await?;
        Ok((tokens, "new-password"))
    }
}

/// Why a sign-in failed.
enum SignInError {
    /// Cognito refused the credentials with NotAuthorizedException (expired or revoked
    /// refresh token, wrong password).
    Refused(ReconcileError),
    /// Anything else.
    Failed(ReconcileError),
}

impl SignInError {
    /// Only a wrong password warrants setting a new one (not a disabled user, too many
    /// attempts or a bad SECRET_HASH).
    fn is_wrong_password(&self) -> bool {
        matches!(self, SignInError::Refused(e) if e.message.contains("Incorrect username or password"))
    }
}

impl From<SignInError> for ReconcileError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::Refused(e) | SignInError::Failed(e) => e,
        }
    }
}

/// The fields each grant needs and the ones it does not take.
fn validate_grant(spec: &TokenSpec, problems: &mut Vec<FieldProblem>) {
    let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    match spec.grant {
        GrantKind::Password => {
            if !given(&spec.user_ref) {
                problems.push(FieldProblem::new(
                    "spec.userRef",
                    "name the User whose tokens are published (or set grant: client_credentials for a machine-to-machine token)",
                ));
            }
            for (path, set) in [
                ("spec.domainRef", spec.domain_ref.is_some()),
                ("spec.scopes", spec.scopes.is_some()),
            ] {
                if set {
                    problems.push(FieldProblem::new(
                        path,
                        "only a grant: client_credentials token takes this",
                    ));
                }
            }
        }
        GrantKind::ClientCredentials => {
            if spec.user_ref.is_some() {
                problems.push(FieldProblem::new(
                    "spec.userRef",
                    "a client_credentials token has no user: remove spec.userRef",
                ));
            }
            if !given(&spec.domain_ref) {
                problems.push(FieldProblem::new(
                    "spec.domainRef",
                    "name the UserPoolDomain whose token endpoint grants the token",
                ));
            }
            if spec.bearer == Bearer::Id {
                problems.push(FieldProblem::new(
                    "spec.bearer",
                    "the client_credentials grant gives no ID token: use bearer: access",
                ));
            }
            if spec.state_secret_name.is_some() {
                problems.push(FieldProblem::new(
                    "spec.stateSecretName",
                    "a client_credentials token has no refresh token to keep: remove it",
                ));
            }
            for (i, scope) in spec.scopes.iter().flatten().enumerate() {
                let path = format!("spec.scopes[{i}]");
                if super::user_pool_client::STANDARD_SCOPES.contains(&scope.as_str()) {
                    problems.push(FieldProblem::new(
                        path,
                        format!(
                            "`{scope}` is a user scope; client_credentials tokens carry resource server scopes `{{identifier}}/{{scope}}`"
                        ),
                    ));
                } else if let Some(problem) = super::user_pool_client::oauth_scope_problem(scope) {
                    problems.push(FieldProblem::new(path, problem));
                }
            }
        }
    }
}

/// The gauge of the published token's expiry (Unix time).
const EXPIRY_METRIC: &str = "token_expiry_timestamp_seconds";

#[async_trait]
impl Kind for Token {
    const KIND: &'static str = "Token";
    const LANE: &'static str = "cognito-idp";
    const OUTPUTS: &'static [&'static str] = &[
        "secretName",
        "secretArn",
        "expiresAt",
        "expiresAtEpoch",
        "issuedAtEpoch",
        "renewAt",
    ];
    /// The consumer secret is a secret: kept unless the manifest says otherwise.
    const DEFAULT_DELETION_POLICY: super::DeletionPolicy = super::DeletionPolicy::Retain;
    const METRICS: &'static [super::MetricSpec] = &[
        super::MetricSpec {
            name: EXPIRY_METRIC,
            help: "When the published bearer token expires (Unix time), by Token",
            source: super::MetricSource::Gauge,
        },
        super::MetricSpec {
            name: "token_seconds_to_expiry",
            help: "Seconds until the published bearer token expires, by Token",
            source: super::MetricSource::SecondsUntil(EXPIRY_METRIC),
        },
        super::MetricSpec {
            name: "token_renewals",
            help: "Bearer tokens published (first publication and renewals), by Token",
            source: super::MetricSource::Writes,
        },
        super::MetricSpec {
            name: "token_renewal_failures",
            help: "Failed token renewals, by Token and reason",
            source: super::MetricSource::Failures,
        },
    ];
    type Spec = TokenSpec;
    type Desired = DesiredToken;
    type Observed = ObservedToken;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    fn permissions(meta: &ObjectMeta, spec: &TokenSpec, scope: &Scope) -> Vec<Grant> {
        let names: Vec<String> = Self::writes(&meta.name, spec)
            .into_iter()
            .map(|w| w.name)
            .collect();
        // The client's secret (for a SECRET_HASH, or the client_credentials grant).
        let mut grants = vec![
            Grant::new(
                &["cognito-idp:DescribeUserPoolClient"],
                vec![scope.arn("cognito-idp", "userpool/*")],
            )
            .when(Condition::Owned),
        ];
        // The user's password, to sign in (InitiateAuth itself needs no IAM permission).
        // The token endpoint needs no IAM permission either.
        if spec.grant == GrantKind::Password {
            let user = spec.user_ref.as_deref().unwrap_or_default();
            let password = match scope.name_of("User", user).as_str() {
                "*" => "agentcore-controller/users/*".to_string(),
                name => name.to_string(),
            };
            grants.push(Grant::new(
                &[
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:DescribeSecret",
                ],
                vec![scope.secret_arn(&password)],
            ));
        }
        // A switch from the password grant deletes the refresh token it kept (when ours).
        if spec.grant == GrantKind::ClientCredentials {
            grants.push(Grant::new(
                &[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:DeleteSecret",
                ],
                vec![scope.secret_arn(&state_secret_name(&spec.secret_name))],
            ));
        }
        grants.extend(super::secrets_manager::grants(scope, &names));
        grants
    }

    fn references(spec: &TokenSpec) -> Vec<Reference> {
        let mut refs = Vec::new();
        if let Some(user) = &spec.user_ref {
            refs.push(Reference::new("spec.userRef", "User", user));
        }
        refs.push(Reference::new(
            "spec.clientRef",
            "UserPoolClient",
            &spec.client_ref,
        ));
        if let Some(domain) = &spec.domain_ref {
            refs.push(Reference::new("spec.domainRef", "UserPoolDomain", domain));
        }
        refs
    }

    fn writes(_name: &str, spec: &TokenSpec) -> Vec<Writes> {
        let mut writes = vec![Writes::new("spec.secretName", "secret", &spec.secret_name)];
        // No refresh token, no state secret, for client_credentials.
        if spec.grant == GrantKind::Password {
            writes.push(match &spec.state_secret_name {
                Some(n) => Writes::new("spec.stateSecretName", "secret", n),
                None => Writes::new(
                    "spec.secretName",
                    "secret",
                    state_secret_name(&spec.secret_name),
                ),
            });
        }
        writes
    }

    fn validate(_name: &str, spec: &TokenSpec, problems: &mut Vec<FieldProblem>) {
        if let Some(rb) = &spec.renew_before {
            match humantime::parse_duration(rb) {
                Ok(d) if d >= Duration::from_secs(1) => {}
                _ => problems.push(FieldProblem::new(
                    "spec.renewBefore",
                    format!("`{rb}` is not a duration of at least 1s (e.g. 20m, 90s)"),
                )),
            }
        }
        for (path, name) in [
            ("spec.secretName", Some(&spec.secret_name)),
            ("spec.stateSecretName", spec.state_secret_name.as_ref()),
        ] {
            if let Some(name) = name
                && !super::secret::valid_secret_name(name)
            {
                problems.push(FieldProblem::new(
                    path,
                    format!(
                        "`{name}` is not a valid secret name: 1-512 of letters, digits and /_+=.@-"
                    ),
                ));
            }
        }
        if spec.state_secret_name.as_deref() == Some(spec.secret_name.as_str()) {
            problems.push(FieldProblem::new(
                "spec.stateSecretName",
                "the refresh token must not live in the secret clients read; pick another name",
            ));
        }
        validate_grant(spec, problems);
    }

    fn resolve(
        &self,
        _meta: &ObjectMeta,
        spec: &TokenSpec,
        deps: &Deps<'_>,
    ) -> Result<DesiredToken> {
        let pool_id = deps.get("UserPoolClient", &spec.client_ref, "poolId")?;
        let grant = match spec.grant {
            GrantKind::Password => {
                let user = spec.user_ref.as_deref().unwrap_or_default();
                DesiredGrant::Password {
                    username: deps.get("User", user, "username")?,
                    password_secret: deps.get("User", user, "passwordSecretName")?,
                }
            }
            GrantKind::ClientCredentials => {
                let domain = spec.domain_ref.as_deref().unwrap_or_default();
                let domain_pool = deps.get("UserPoolDomain", domain, "poolId")?;
                if domain_pool != pool_id && !domain_pool.is_empty() && !pool_id.is_empty() {
                    return Err(ReconcileError::terminal(
                        Reason::InvalidSpec,
                        format!(
                            "spec.domainRef: UserPoolDomain/{domain} belongs to pool {domain_pool}, \
                             but UserPoolClient/{} to pool {pool_id}; name the domain of the client's pool",
                            spec.client_ref
                        ),
                    ));
                }
                DesiredGrant::ClientCredentials {
                    token_url: deps.get("UserPoolDomain", domain, "tokenUrl")?,
                    scopes: spec.scopes.clone().unwrap_or_default(),
                }
            }
        };
        Ok(DesiredToken {
            secret_name: spec.secret_name.clone(),
            state_secret_name: spec
                .state_secret_name
                .clone()
                .unwrap_or_else(|| state_secret_name(&spec.secret_name)),
            grant,
            client_id: deps.get("UserPoolClient", &spec.client_ref, "clientId")?,
            discovery_url: discovery_url(&self.ctx.aws.region, &pool_id),
            pool_id,
            bearer: spec.bearer,
            renew_before: spec
                .renew_before
                .as_deref()
                .and_then(|r| humantime::parse_duration(r).ok()),
            now: SystemTime::now(),
        })
    }

    async fn observe(&self, d: &DesiredToken) -> Result<Option<Observed<ObservedToken>>> {
        let Some((arn, map, owned)) = self.secret_json(&d.secret_name).await? else {
            return Ok(None);
        };
        // Its metadata only: the refresh token is read when renewing.
        let refresh_stored = match d.grant {
            DesiredGrant::Password { .. } => {
                secrets_manager::describe(&self.ctx, &d.state_secret_name)
                    .await?
                    .is_some_and(|s| s.deleted_date().is_none())
            }
            // None is kept.
            DesiredGrant::ClientCredentials { .. } => true,
        };
        let text = |k: &str| map.get(k).and_then(Value::as_str).map(String::from);
        let token = map.get("bearer_token").and_then(Value::as_str);
        let bearer = token.and_then(token_times);
        let scopes = token.map(granted_scopes).unwrap_or_default();
        Ok(Some(Observed {
            owned,
            resource: ObservedToken {
                arn,
                pool_id: text("pool_id"),
                client_id: text("client_id"),
                discovery_url: text("discovery_url"),
                bearer,
                refresh_stored,
                scopes,
                grant: GrantKind::published(&map),
            },
        }))
    }

    fn diff(d: &DesiredToken, o: &ObservedToken) -> Vec<Change> {
        let mut changes = Vec::new();
        for (field, have, want) in [
            ("spec.pool_id", &o.pool_id, &d.pool_id),
            ("spec.client_id", &o.client_id, &d.client_id),
            ("spec.discovery_url", &o.discovery_url, &d.discovery_url),
        ] {
            if have.as_deref() != Some(want.as_str()) {
                changes.push(Change::new(
                    field,
                    have.clone().map(Value::String),
                    Some(Value::String(want.clone())),
                ));
            }
        }
        // A token of the other grant is granted again at once, not when it falls due.
        if let Some(have) = o.grant
            && have != d.grant.kind()
        {
            changes.push(Change::new(
                GRANT_CHANGE,
                Some(Value::String(have.as_str().into())),
                Some(Value::String(d.grant.kind().as_str().into())),
            ));
        }
        // Scopes asked for by name: a token granted others is granted again.
        if let DesiredGrant::ClientCredentials { scopes, .. } = &d.grant
            && !scopes.is_empty()
            && o.bearer.is_some()
        {
            let mut want = scopes.clone();
            want.sort();
            want.dedup();
            if want != o.scopes {
                changes.push(Change::new(
                    "spec.scopes",
                    serde_json::to_value(&o.scopes).ok(),
                    serde_json::to_value(&want).ok(),
                ));
            }
        }
        let due = match &o.bearer {
            None => Some("*** (none)".to_string()),
            Some(t) if t.token_use_access != (d.bearer == Bearer::Access) => {
                Some("*** (other token type)".to_string())
            }
            Some(t) if d.now >= t.renew_at(d.renew_before) => Some(format!(
                "*** (expires {})",
                humantime::format_rfc3339_seconds(t.expires_at)
            )),
            Some(_) if !o.refresh_stored => Some("*** (refresh token not stored)".to_string()),
            Some(_) => None,
        };
        if let Some(from) = due {
            changes.push(Change::new(
                "status.bearer_token",
                Some(Value::String(from)),
                Some(Value::String("*** (renewed)".into())),
            ));
        }
        changes
    }

    fn readiness(o: &ObservedToken) -> Readiness {
        match &o.bearer {
            Some(t) if SystemTime::now() < t.expires_at => Readiness::Ready,
            Some(_) => Readiness::Failed("the published token has expired".into()),
            None => Readiness::Progressing("no token published yet".into()),
        }
    }

    fn outputs(d: &DesiredToken, o: &ObservedToken) -> Outputs {
        let mut out = Outputs::from([
            ("secretName".to_string(), d.secret_name.clone()),
            ("secretArn".to_string(), o.arn.clone()),
        ]);
        if let Some(t) = &o.bearer {
            out.insert(
                "expiresAt".into(),
                humantime::format_rfc3339_seconds(t.expires_at).to_string(),
            );
            out.insert("expiresAtEpoch".into(), epoch(t.expires_at).to_string());
            out.insert("issuedAtEpoch".into(), epoch(t.issued_at).to_string());
            out.insert(
                "renewAt".into(),
                humantime::format_rfc3339_seconds(t.renew_at(d.renew_before)).to_string(),
            );
        }
        out
    }

    fn gauges(_d: &DesiredToken, o: &ObservedToken) -> Vec<(&'static str, f64)> {
        o.bearer
            .iter()
            .map(|t| (EXPIRY_METRIC, epoch(t.expires_at) as f64))
            .collect()
    }

    fn requeue_after(d: &DesiredToken, o: &ObservedToken) -> Option<Duration> {
        let t = o.bearer.as_ref()?;
        Some(
            t.renew_at(d.renew_before)
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .max(Duration::from_secs(1)),
        )
    }

    async fn create(&self, d: &DesiredToken) -> Result<()> {
        self.publish(d, false, None).await.map(|_| ())
    }

    /// The first publish writes both secrets: what observe would read is what was written.
    async fn create_observed(&self, d: &DesiredToken) -> Result<Option<Observed<ObservedToken>>> {
        Ok(self
            .publish(d, false, None)
            .await?
            .map(|resource| Observed {
                owned: true,
                resource,
            }))
    }

    async fn update(
        &self,
        d: &DesiredToken,
        o: &Observed<ObservedToken>,
        changes: &[Change],
    ) -> Result<()> {
        let renew = changes.iter().any(|c| c.field == "status.bearer_token");
        let current = o.resource.bearer;
        // Switched to client_credentials: the password grant's refresh token goes first
        // (a publish failing after it is retried, and the switch still seen).
        if changes.iter().any(|c| c.field == GRANT_CHANGE)
            && d.grant.kind() == GrantKind::ClientCredentials
        {
            self.drop_state_secret(d).await?;
        }
        if renew || changes.iter().any(|c| c.field.starts_with("spec.")) {
            self.publish(d, true, current).await?;
        }
        if !o.owned {
            secrets_manager::tag_owned(&self.ctx, &d.secret_name).await?;
        }
        Ok(())
    }

    async fn delete(&self, d: &DesiredToken, _o: &ObservedToken) -> Result<()> {
        secrets_manager::delete_now(&self.ctx, &d.secret_name).await?;
        if let DesiredGrant::Password { .. } = d.grant {
            secrets_manager::delete_now(&self.ctx, &d.state_secret_name).await?;
        }
        Ok(())
    }
}

impl Token {
    /// Delete the refresh-token secret a password grant kept, when it is ours (a secret
    /// of that name without the controller's tags is left alone).
    async fn drop_state_secret(&self, d: &DesiredToken) -> Result<()> {
        let Some(described) = secrets_manager::describe(&self.ctx, &d.state_secret_name).await?
        else {
            return Ok(());
        };
        let owned = self.ctx.owns(
            described
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?, t.value()?))),
        );
        if !owned {
            tracing::warn!(secret = %d.state_secret_name, "not deleting a refresh-token secret the controller does not own");
            return Ok(());
        }
        tracing::info!(secret = %d.state_secret_name, "deleting the password grant's refresh token: the token is client_credentials now");
        secrets_manager::delete_now(&self.ctx, &d.state_secret_name).await
    }

    /// Renew and write a new version of the consumer secret (and the refresh token).
    /// Returns the token as observe would read it back when both secrets were written
    /// (`None` when Cognito handed out no new refresh token).
    async fn publish(
        &self,
        d: &DesiredToken,
        exists: bool,
        current: Option<TokenTimes>,
    ) -> Result<Option<ObservedToken>> {
        let (tokens, how) = match self.renew(d).await {
            Ok(t) => t,
            Err(mut e) => {
                // Never let the retry outlive the token; and say loudly when it is close.
                if let Some(t) = current {
                    let left = t
                        .expires_at
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    e = e.retry_before((left / 2).max(Duration::from_secs(1)));
                    let lifetime = t.expires_at.duration_since(t.issued_at).unwrap_or_default();
                    if left < lifetime / 6 {
                        e.message = format!(
                            "renewal failing and the published token expires in {}s: {}",
                            left.as_secs(),
                            e.message
                        );
                        e = e.unready();
                    }
                }
                return Err(e);
            }
        };
        let bearer = match (d.bearer, &tokens.id) {
            (Bearer::Access, _) => &tokens.access,
            (Bearer::Id, Some(id)) => id,
            (Bearer::Id, None) => {
                return Err(ReconcileError::terminal(
                    Reason::InvalidSpec,
                    "the client_credentials grant gives no ID token: use bearer: access",
                ));
            }
        };
        let times = token_times(bearer.expose_secret());
        // Keys other writers added are kept; a secret that observe found absent has none.
        let existing = if exists {
            self.secret_json(&d.secret_name)
                .await?
                .map(|(_, m, _)| m)
                .unwrap_or_default()
        } else {
            Map::new()
        };
        let mut map: BTreeMap<String, Value> = existing.into_iter().collect();
        for (k, v) in [
            ("pool_id", d.pool_id.clone()),
            ("client_id", d.client_id.clone()),
            ("discovery_url", d.discovery_url.clone()),
            ("access_token", tokens.access.expose_secret().to_string()),
            ("bearer_token", bearer.expose_secret().to_string()),
            (GRANT_KEY, d.grant.kind().as_str().to_string()),
        ] {
            map.insert(k.to_string(), Value::String(v));
        }
        match &tokens.id {
            Some(id) => map.insert(
                "id_token".into(),
                Value::String(id.expose_secret().to_string()),
            ),
            // No ID token from this grant: none left from an earlier one either.
            None => map.remove("id_token"),
        };
        if let Some(t) = times {
            map.insert(
                "expires_at".into(),
                Value::String(humantime::format_rfc3339_seconds(t.expires_at).to_string()),
            );
        }
        let value = SecretString::from(serde_json::to_string(&map).unwrap_or_default());
        let arn = self.put_secret(&d.secret_name, &value, exists).await?;
        let mut refresh_stored = matches!(d.grant, DesiredGrant::ClientCredentials { .. });
        if let Some(refresh) = &tokens.refresh {
            let state_exists = self.ensure_restored(&d.state_secret_name).await?;
            let state = SecretString::from(
                serde_json::json!({"refresh_token": refresh.expose_secret()}).to_string(),
            );
            self.put_secret(&d.state_secret_name, &state, state_exists)
                .await?;
            refresh_stored = true;
        }
        tracing::info!(secret = %d.secret_name, via = how, "token renewed");
        Ok((refresh_stored && !arn.is_empty()).then(|| ObservedToken {
            arn,
            pool_id: Some(d.pool_id.clone()),
            client_id: Some(d.client_id.clone()),
            discovery_url: Some(d.discovery_url.clone()),
            bearer: times,
            refresh_stored,
            scopes: granted_scopes(bearer.expose_secret()),
            grant: Some(d.grant.kind()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: u64, iat: u64, token_use: &str) -> String {
        let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.sig",
            enc(serde_json::json!({"alg": "RS256", "kid": "k"})),
            enc(
                serde_json::json!({"iss": "https://issuer", "sub": "s", "exp": exp, "iat": iat, "token_use": token_use})
            )
        )
    }

    fn jwt_with_scope(exp: u64, iat: u64, scope: &str) -> String {
        let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.sig",
            enc(serde_json::json!({"alg": "RS256", "kid": "k"})),
            enc(
                serde_json::json!({"iss": "https://issuer", "sub": "c", "exp": exp, "iat": iat, "token_use": "access", "scope": scope})
            )
        )
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn desired(now: u64, bearer: Bearer, renew_before: Option<u64>) -> DesiredToken {
        DesiredToken {
            secret_name: "s".into(),
            state_secret_name: "st".into(),
            grant: DesiredGrant::Password {
                username: "u".into(),
                password_secret: "p".into(),
            },
            pool_id: "pool".into(),
            client_id: "client".into(),
            discovery_url: "https://d".into(),
            bearer,
            renew_before: renew_before.map(Duration::from_secs),
            now: at(now),
        }
    }

    fn observed(token: Option<&str>) -> ObservedToken {
        ObservedToken {
            arn: "arn".into(),
            pool_id: Some("pool".into()),
            client_id: Some("client".into()),
            discovery_url: Some("https://d".into()),
            bearer: token.and_then(token_times),
            refresh_stored: true,
            scopes: token.map(granted_scopes).unwrap_or_default(),
            grant: token.map(|_| GrantKind::Password),
        }
    }

    #[test]
    fn renewal_due_table() {
        // Token issued at 1000, expires at 4600 (one hour): default renewal at 3400.
        let token = jwt(4600, 1000, "access");
        let cases = [
            (2000, Bearer::Access, None, false),
            (3399, Bearer::Access, None, false),
            (3400, Bearer::Access, None, true),
            (5000, Bearer::Access, None, true),
            (2000, Bearer::Access, Some(3000), true), // renewBefore 50m: due at 1600
            (1500, Bearer::Access, Some(3000), false),
            (2000, Bearer::Id, None, true), // the published token is of the other type
        ];
        for (now, bearer, rb, due) in cases {
            let changes = Token::diff(&desired(now, bearer, rb), &observed(Some(&token)));
            let renews = changes.iter().any(|c| c.field == "status.bearer_token");
            assert_eq!(
                renews, due,
                "now {now} bearer {bearer:?} renewBefore {rb:?}"
            );
            for c in &changes {
                let text = serde_json::to_string(c).unwrap_or_default();
                assert!(!text.contains(&token), "a change shows the token");
            }
        }
        // No token at all: due.
        let changes = Token::diff(&desired(2000, Bearer::Access, None), &observed(None));
        assert_eq!(changes.len(), 1);
        // A fresh token without its refresh token stored (a run stopped between the two
        // writes): renewed, which writes both.
        let mut o = observed(Some(&token));
        o.refresh_stored = false;
        let changes = Token::diff(&desired(2000, Bearer::Access, None), &o);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "status.bearer_token");
    }

    #[test]
    fn plain_fields_are_compared() {
        let token = jwt(4600, 1000, "access");
        let mut o = observed(Some(&token));
        o.client_id = Some("other".into());
        let changes = Token::diff(&desired(2000, Bearer::Access, None), &o);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "spec.client_id");
    }

    #[test]
    fn token_times_reads_claims_and_rejects_garbage() {
        let t = token_times(&jwt(4600, 1000, "id")).expect("claims");
        assert_eq!(t.expires_at, at(4600));
        assert_eq!(t.issued_at, at(1000));
        assert!(!t.token_use_access);
        assert_eq!(t.renew_at(None), at(3400));
        assert_eq!(t.renew_at(Some(Duration::from_secs(99_999))), at(1000));
        for garbage in ["", "a.b.c", "not-a-jwt", "x.eyJleHAiOiJzb29uIn0.y"] {
            assert!(token_times(garbage).is_none(), "{garbage}");
        }
    }

    #[test]
    fn requeue_lands_on_the_renewal_time() {
        let now = SystemTime::now();
        let exp = epoch(now) + 3000;
        let token = jwt(exp, exp - 3600, "access");
        let wait = Token::requeue_after(
            &desired(epoch(now), Bearer::Access, None),
            &observed(Some(&token)),
        )
        .expect("requeue");
        // Renewal at exp - 1200 = now + 1800 (within a second or two of rounding).
        assert!(
            wait <= Duration::from_secs(1800) && wait >= Duration::from_secs(1797),
            "{wait:?}"
        );
    }

    fn spec(grant: GrantKind) -> TokenSpec {
        TokenSpec {
            grant,
            user_ref: None,
            client_ref: "client".into(),
            domain_ref: None,
            scopes: None,
            bearer: Bearer::Access,
            renew_before: None,
            secret_name: "app/creds".into(),
            state_secret_name: None,
        }
    }

    #[test]
    fn each_grant_takes_its_own_fields() {
        let user = |mut s: TokenSpec| {
            s.user_ref = Some("u".into());
            s
        };
        let domain = |mut s: TokenSpec| {
            s.domain_ref = Some("d".into());
            s
        };
        let scopes = |mut s: TokenSpec, items: &[&str]| {
            s.scopes = Some(items.iter().map(|x| x.to_string()).collect());
            s
        };
        let password = || spec(GrantKind::Password);
        let m2m = || spec(GrantKind::ClientCredentials);
        let cases: Vec<(TokenSpec, Vec<&str>)> = vec![
            (user(password()), vec![]),
            (password(), vec!["spec.userRef"]),
            (
                scopes(domain(user(password())), &["mcp/read"]),
                vec!["spec.domainRef", "spec.scopes"],
            ),
            (domain(m2m()), vec![]),
            (
                scopes(domain(m2m()), &["mcp/read", "https://api/x/write"]),
                vec![],
            ),
            (m2m(), vec!["spec.domainRef"]),
            (user(domain(m2m())), vec!["spec.userRef"]),
            (
                scopes(domain(m2m()), &["openid", "read", "mcp/a b"]),
                vec!["spec.scopes[0]", "spec.scopes[1]", "spec.scopes[2]"],
            ),
            (
                TokenSpec {
                    bearer: Bearer::Id,
                    state_secret_name: Some("st".into()),
                    ..domain(m2m())
                },
                vec!["spec.bearer", "spec.stateSecretName"],
            ),
        ];
        for (spec, want) in cases {
            let mut problems = Vec::new();
            Token::validate("t", &spec, &mut problems);
            let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
            assert_eq!(paths, want, "{spec:?}");
        }
    }

    #[test]
    fn a_client_credentials_token_writes_and_refers_to_its_own() {
        let mut s = spec(GrantKind::ClientCredentials);
        s.domain_ref = Some("d".into());
        let refs = Token::references(&s);
        assert_eq!(
            refs,
            vec![
                Reference::new("spec.clientRef", "UserPoolClient", "client"),
                Reference::new("spec.domainRef", "UserPoolDomain", "d"),
            ]
        );
        // The consumer secret only: no state secret.
        let writes: Vec<String> = Token::writes("t", &s).into_iter().map(|w| w.name).collect();
        assert_eq!(writes, ["app/creds"]);
        let mut p = spec(GrantKind::Password);
        p.user_ref = Some("u".into());
        assert_eq!(Token::writes("t", &p).len(), 2);
        // No grant on the user's password secret.
        let scope = Scope {
            region: "us-east-1".into(),
            account: "1".into(),
            instance: "i".into(),
            names: Default::default(),
        };
        let grants = Token::permissions(&meta("t"), &s, &scope);
        assert!(
            grants.iter().all(|g| g
                .resources
                .iter()
                .all(|r| !r.contains("agentcore-controller/users"))),
            "{grants:?}"
        );
        assert!(
            grants
                .iter()
                .any(|g| g.actions.contains(&"cognito-idp:DescribeUserPoolClient"))
        );
        // The refresh token a switch from the password grant leaves may be deleted.
        assert!(
            grants
                .iter()
                .any(|g| g.actions.contains(&"secretsmanager:DeleteSecret")
                    && g.resources
                        .iter()
                        .any(|r| r.contains("agentcore-controller/tokens/app/creds"))),
            "{grants:?}"
        );
    }

    fn meta(name: &str) -> ObjectMeta {
        serde_json::from_value(serde_json::json!({"name": name})).expect("meta")
    }

    #[test]
    fn a_client_credentials_token_is_renewed_without_a_refresh_token() {
        let token = jwt(4600, 1000, "access");
        let mut d = desired(2000, Bearer::Access, None);
        d.grant = DesiredGrant::ClientCredentials {
            token_url: "https://t.auth.us-east-1.amazoncognito.com/oauth2/token".into(),
            scopes: vec![],
        };
        let observed = |token: Option<&str>| ObservedToken {
            grant: token.map(|_| GrantKind::ClientCredentials),
            ..observed(token)
        };
        // Fresh: nothing to do (no refresh token is missing).
        assert_eq!(Token::diff(&d, &observed(Some(&token))), vec![]);
        // Scopes asked for by name that the token does not carry: granted again.
        let scoped = jwt_with_scope(4600, 1000, "mcp/read");
        for (asked, changed) in [
            (vec!["mcp/read"], false),
            (vec!["mcp/read", "mcp/read"], false),
            (vec!["mcp/write", "mcp/read"], true),
            (vec![], false),
        ] {
            let mut d = d.clone();
            d.grant = DesiredGrant::ClientCredentials {
                token_url: String::new(),
                scopes: asked.iter().map(|s| s.to_string()).collect(),
            };
            let changes = Token::diff(&d, &observed(Some(&scoped)));
            assert_eq!(
                changes.iter().any(|c| c.field == "spec.scopes"),
                changed,
                "{asked:?}: {changes:?}"
            );
        }
        // Due: a new grant.
        d.now = at(3400);
        let changes = Token::diff(&d, &observed(Some(&token)));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "status.bearer_token");
    }

    #[test]
    fn a_token_of_the_other_grant_is_granted_again_at_once() {
        // Fresh (not due), but published by the other grant.
        let token = jwt(4600, 1000, "access");
        let password = desired(2000, Bearer::Access, None);
        let mut m2m = password.clone();
        m2m.grant = DesiredGrant::ClientCredentials {
            token_url: String::new(),
            scopes: vec![],
        };
        for (d, have, changed) in [
            (&m2m, GrantKind::Password, true),
            (&password, GrantKind::ClientCredentials, true),
            (&m2m, GrantKind::ClientCredentials, false),
            (&password, GrantKind::Password, false),
        ] {
            let o = ObservedToken {
                grant: Some(have),
                ..observed(Some(&token))
            };
            let changes = Token::diff(d, &o);
            let grant: Vec<_> = changes.iter().filter(|c| c.field == "spec.grant").collect();
            assert_eq!(grant.len(), usize::from(changed), "{have:?}: {changes:?}");
            if let Some(c) = grant.first() {
                assert_eq!(c.from, Some(Value::String(have.as_str().into())));
                assert_eq!(c.to, Some(Value::String(d.grant.kind().as_str().into())));
            }
        }
    }

    #[test]
    fn the_published_grant_is_its_key_else_told_by_the_id_token() {
        let map = |pairs: &[(&str, &str)]| -> Map<String, Value> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect()
        };
        for (pairs, want) in [
            (
                vec![("bearer_token", "t"), ("grant", "client_credentials")],
                Some(GrantKind::ClientCredentials),
            ),
            (
                vec![("bearer_token", "t"), ("grant", "password")],
                Some(GrantKind::Password),
            ),
            (
                vec![("bearer_token", "t"), ("id_token", "i")],
                Some(GrantKind::Password),
            ),
            (
                vec![("bearer_token", "t")],
                Some(GrantKind::ClientCredentials),
            ),
            (vec![], None),
        ] {
            assert_eq!(GrantKind::published(&map(&pairs)), want, "{pairs:?}");
        }
    }

    #[test]
    fn declared_outputs_are_the_outputs() {
        crate::kinds::assert_declared_outputs::<Token>(&Token::outputs(
            &desired(1000, Bearer::Access, None),
            &observed(Some(&jwt(4600, 1000, "access"))),
        ));
    }
}
