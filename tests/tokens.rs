//! Bearer tokens against the emulator (its Cognito issues real RS256 JWTs with a JWKS and
//! a discovery document): published in the guide's layout, verified by `check-auth`,
//! renewed by the daemon before they expire, recovered from a revoked refresh token and a
//! password changed behind the controller's back, and never leaked into any output; and
//! machine-to-machine tokens (client_credentials at a pool domain's token endpoint) with
//! their resource server, domain and client, kept converged and renewed.

use std::time::Duration;

use agentcore_controller::aws::Aws;
use serde_json::Value;
use testkit::*;

async fn versions(aws: &Aws, name: &str) -> Vec<(String, Vec<String>)> {
    let out = aws
        .secrets
        .list_secret_version_ids()
        .secret_id(name)
        .send()
        .await
        .expect("ListSecretVersionIds");
    out.versions()
        .iter()
        .map(|v| {
            (
                v.version_id().unwrap_or_default().to_string(),
                v.version_stages().to_vec(),
            )
        })
        .collect()
}

/// The guide's stack applied once by controller instance `instance`, with the image
/// pushed; returns the names.
async fn applied(m: &Manifests, instance: &str, renew_before: Option<&str>) -> (StackNames, Aws) {
    let aws = aws().await;
    let names = StackNames::unique();
    names.write_to(m, "manifests");
    if let Some(rb) = renew_before {
        let text = std::fs::read_to_string(m.path().join("outputs.yaml")).expect("read");
        m.write(
            "outputs.yaml",
            &text.replace(
                "  bearer: access\n",
                &format!("  bearer: access\n  renewBefore: {rb}\n"),
            ),
        );
    }
    let _ = controller(&[
        "apply",
        "-f",
        &m.arg(),
        "--timeout",
        "3s",
        "--instance",
        instance,
    ]);
    push_image(&aws, &names.repo, "latest", &names.runtime).await;
    let out = controller(&["apply", "-f", &m.arg(), "--instance", instance]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    (names, aws)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_published_token_has_the_guide_layout_and_the_runtime_would_accept_it() {
    let m = Manifests::new();
    let (names, aws) = applied(&m, "agentcore-controller", None).await;
    let map = secret_map(&aws, &names.secret).await;
    for key in [
        "pool_id",
        "client_id",
        "discovery_url",
        "access_token",
        "id_token",
        "bearer_token",
        "expires_at",
    ] {
        assert!(
            map.contains_key(key),
            "missing {key}: keys {:?}",
            map.keys().collect::<Vec<_>>()
        );
    }
    assert_eq!(
        map["bearer_token"], map["access_token"],
        "the access token is the bearer"
    );
    let (_, claims) =
        agentcore_controller::token::jwt::peek(map["bearer_token"].as_str().unwrap_or(""))
            .expect("a JWT");
    assert_eq!(claims.token_use, "access");
    assert_eq!(claims.client_id.as_deref(), map["client_id"].as_str());

    // check-auth: every check passes against the runtime's actual authorizer.
    let out = controller(&[
        "check-auth",
        "cognito-credentials",
        "-f",
        &m.arg(),
        "--output",
        "json",
    ]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["check"].as_str())
        .collect();
    for check in ["signature", "issuer", "expiry", "token_use", "client"] {
        assert!(checks.contains(&check), "{check} not checked: {report:#}");
    }

    // token prints the bearer; url prints the invocation URL.
    let out = controller(&["token", "cognito-credentials", "-f", &m.arg()]);
    assert_eq!(
        stdout(&out).trim(),
        map["bearer_token"].as_str().unwrap_or("")
    );
    let out = controller(&["url", &names.runtime, "-f", &m.arg()]);
    let url = stdout(&out);
    assert!(
        url.starts_with(&format!("https://bedrock-agentcore.{REGION}.amazonaws.com/runtimes/arn%3Aaws%3Abedrock-agentcore%3A"))
            && url.trim_end().ends_with("/invocations?qualifier=DEFAULT"),
        "{url}"
    );

    // The runtime changed by hand to allowedAudience: refused, with the fix.
    let rt = runtime(&aws, &names.runtime).await;
    let jwt = rt
        .authorizer_configuration()
        .and_then(|a| a.as_custom_jwt_authorizer().ok())
        .expect("jwt");
    let audience =
        aws_sdk_bedrockagentcorecontrol::types::CustomJwtAuthorizerConfiguration::builder()
            .discovery_url(jwt.discovery_url())
            .allowed_audience(map["client_id"].as_str().unwrap_or(""))
            .build()
            .expect("config");
    set_jwt_authorizer(&aws, &rt, audience).await;
    let out = controller(&["check-auth", "cognito-credentials", "-f", &m.arg()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("allowedClients"),
        "the aud fix is named: {text}"
    );

    // A custom claim rule the token does not meet: the claims check fails, naming it.
    let rt = runtime(&aws, &names.runtime).await;
    let rule = agentcore_controller::kinds::agent_runtime::claims::Claim {
        name: "cognito:groups".into(),
        value_type: agentcore_controller::kinds::agent_runtime::claims::ClaimValueType::StringArray,
        operator: agentcore_controller::kinds::agent_runtime::claims::ClaimOperator::Contains,
        values: vec!["admins".into()],
    };
    let claims =
        aws_sdk_bedrockagentcorecontrol::types::CustomJwtAuthorizerConfiguration::builder()
            .discovery_url(jwt.discovery_url())
            .allowed_clients(map["client_id"].as_str().unwrap_or(""))
            .custom_claims(rule.to_sdk().expect("rule"))
            .build()
            .expect("config");
    set_jwt_authorizer(&aws, &rt, claims).await;
    let out = controller(&[
        "check-auth",
        "cognito-credentials",
        "-f",
        &m.arg(),
        "--output",
        "json",
    ]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let failing: Vec<&serde_json::Value> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failing.len(), 1, "{report:#}");
    assert_eq!(failing[0]["check"], "claims", "{report:#}");
    assert!(
        failing[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("the token has no cognito:groups claim")),
        "{report:#}"
    );
    assert!(failing[0]["fix"].is_string(), "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_renews_before_expiry_and_recovers_lost_credentials() {
    let m = Manifests::new();
    // Tokens live an hour; renewing 3597 s ahead makes renewal fall due 3 s after issue.
    let instance = format!("inst-{}", unique("t"));
    let (names, aws) = applied(&m, &instance, Some("3597s")).await;
    let flags = [
        "--instance",
        instance.as_str(),
        "--resync",
        "30s",
        "--retry-base",
        "200ms",
    ];
    let d = Daemon::start(m.path(), &flags, None);
    wait_for(
        Duration::from_secs(60),
        "the stack Ready in the daemon",
        || d.all_ready(),
    );
    let token_status = |d: &Daemon| {
        d.object("Token", "cognito-credentials")
            .expect("token status")
    };
    let first_renew_at = token_status(&d)["outputs"]["renewAt"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let first = secret_map(&aws, &names.secret).await;
    let first_version = current_version(&aws, &names.secret).await;
    let first_expiry =
        agentcore_controller::token::jwt::peek(first["bearer_token"].as_str().unwrap_or(""))
            .expect("JWT")
            .1
            .exp;

    // A new version is written before the old token's deadline, and the next renewal
    // time moves on.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while current_version(&aws, &names.secret).await == first_version {
        assert!(
            std::time::Instant::now() < deadline,
            "no renewal\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    assert!(
        now_secs < first_expiry,
        "renewed before the old token expired"
    );
    let vs = versions(&aws, &names.secret).await;
    assert!(
        vs.iter()
            .any(|(id, s)| *id == first_version && s.iter().any(|x| x == "AWSPREVIOUS")),
        "the previous token stays reachable as AWSPREVIOUS: {vs:?}"
    );
    let renewed = secret_map(&aws, &names.secret).await;
    assert_ne!(renewed["bearer_token"], first["bearer_token"]);
    wait_for(Duration::from_secs(10), "renewAt to move forward", || {
        token_status(&d)["outputs"]["renewAt"]
            .as_str()
            .unwrap_or("")
            > first_renew_at.as_str()
    });

    // A revoked (here: unusable) refresh token: the password signs in instead.
    revoke(&aws, &pool_of(&aws, &names.secret).await, &names.user).await;
    wait_for(
        Duration::from_secs(30),
        "renewal through the password",
        || {
            d.log_text()
                .contains("refresh token refused; signing in with the password")
        },
    );

    // The password changed behind the controller's back (and the refresh token spoiled
    // again): the controller sets a new password and signs in with it.
    let pool_id = renewed["pool_id"].as_str().unwrap_or("").to_string();
    let password_secret = format!("agentcore-controller/users/{}/{}", names.pool, names.user);
    let old_password = secret_map(&aws, &password_secret).await["password"].clone();
    aws.cognito
        .admin_set_user_password()
        .user_pool_id(&pool_id)
        .username(&names.user)
        .password("Changed-By-Hand-1!")
        .permanent(true)
        .send()
        .await
        .expect("change the password by hand");
    revoke(&aws, &pool_of(&aws, &names.secret).await, &names.user).await;
    wait_for(
        Duration::from_secs(30),
        "the stored password refused",
        || {
            d.log_text()
                .contains("stored password refused; setting a new one")
        },
    );
    // The log line comes first; the new password is stored a moment later.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let new_password = loop {
        let p = secret_map(&aws, &password_secret).await["password"].clone();
        if p != old_password {
            break p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new password stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(new_password, Value::String("Changed-By-Hand-1!".into()));
    // Stored first, then set on the user: it signs in once the daemon has set it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let signed_in = aws
            .cognito
            .admin_initiate_auth()
            .user_pool_id(&pool_id)
            .client_id(renewed["client_id"].as_str().unwrap_or(""))
            .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", &names.user)
            .auth_parameters("PASSWORD", new_password.as_str().unwrap_or(""))
            .send()
            .await;
        if signed_in.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stored password works: {signed_in:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Restarted with the token inside its window: renewed at once.
    assert_eq!(d.terminate(), Some(0));
    tokio::time::sleep(Duration::from_secs(4)).await; // now due
    let before_restart = current_version(&aws, &names.secret).await;
    let d = Daemon::start(m.path(), &flags, None);
    wait_for(
        Duration::from_secs(10),
        "a renewal right after the restart",
        || {
            std::thread::sleep(Duration::from_millis(100));
            blocking_current_version(&names.secret) != before_restart
        },
    );
    assert_eq!(d.terminate(), Some(0));
}

/// Revoke the user's refresh tokens (AdminUserGlobalSignOut).
async fn revoke(aws: &Aws, pool_id: &str, user: &str) {
    aws.cognito
        .admin_user_global_sign_out()
        .user_pool_id(pool_id)
        .username(user)
        .send()
        .await
        .expect("AdminUserGlobalSignOut");
}

async fn pool_of(aws: &Aws, secret: &str) -> String {
    secret_map(aws, secret).await["pool_id"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn current_version(aws: &Aws, name: &str) -> String {
    versions(aws, name)
        .await
        .into_iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(id, _)| id)
        .unwrap_or_default()
}

/// [`current_version`] from synchronous code (wait_for's closure), on its own runtime.
fn blocking_current_version(secret: &str) -> String {
    let secret = secret.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let aws = aws().await;
            current_version(&aws, &secret).await
        })
    })
    .join()
    .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_value_reaches_any_output() {
    let m = Manifests::new();
    let mut captured = String::new();
    let instance = format!("inst-{}", unique("s"));
    let (names, aws) = applied(&m, &instance, Some("3597s")).await;
    let dir = m.arg();
    let i = instance.as_str();
    for args in [
        vec!["apply", "-f", &dir, "--output", "json", "--instance", i],
        vec!["diff", "-f", &dir, "--output", "json", "--instance", i],
        vec!["diff", "-f", &dir, "--instance", i],
        vec!["check-auth", "cognito-credentials", "-f", &dir],
        vec!["--log", "debug", "apply", "-f", &dir, "--instance", i],
    ] {
        let out = controller(&args);
        captured.push_str(&stdout(&out));
        captured.push_str(&stderr(&out));
    }
    // Revoked refresh tokens: the emulator quotes the refused token in its error message,
    // which must not reach any output either.
    revoke(&aws, &pool_of(&aws, &names.secret).await, &names.user).await;
    let d = Daemon::start(m.path(), &["--instance", &instance, "--resync", "5s"], None);
    wait_for(Duration::from_secs(60), "Ready", || d.all_ready());
    std::thread::sleep(Duration::from_secs(5)); // at least one renewal
    captured.push_str(&d.get("/status").1);
    captured.push_str(&d.get("/metrics").1);
    let status = controller(&["status", "--listen", &d.listen, "--output", "json"]);
    captured.push_str(&stdout(&status));
    let log = d.log_text();
    assert_eq!(d.terminate(), Some(0));
    captured.push_str(&log);
    assert!(
        log.contains("token renewed"),
        "a renewal happened during the capture"
    );

    let mut secrets: Vec<String> = Vec::new();
    let consumer = secret_map(&aws, &names.secret).await;
    for key in ["access_token", "id_token", "bearer_token"] {
        secrets.push(consumer[key].as_str().unwrap_or("").to_string());
    }
    let state = secret_map(
        &aws,
        &format!("agentcore-controller/tokens/{}", names.secret),
    )
    .await;
    secrets.push(state["refresh_token"].as_str().unwrap_or("").to_string());
    let password = secret_map(
        &aws,
        &format!("agentcore-controller/users/{}/{}", names.pool, names.user),
    )
    .await;
    secrets.push(password["password"].as_str().unwrap_or("").to_string());
    assert!(captured.len() > 10_000, "captured {} bytes", captured.len());
    for s in secrets {
        assert!(s.len() >= 16, "a real secret value");
        // Any JWT part (its signature especially) or the password would be a leak.
        for part in s.split('.') {
            if part.len() >= 16 {
                assert!(
                    !captured.contains(part),
                    "a secret value leaked into the output"
                );
            }
        }
    }
}

/// The Token writes the consumer secret, then its controller-only refresh-token secret: a
/// run killed between the two leaves the second missing (simulated here by deleting it
/// behind the controller's back). `diff` sees it, and one `apply` stores it again.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_refresh_token_secret_is_stored_again() {
    let m = Manifests::new();
    let instance = "tokens-heal";
    let (names, aws) = applied(&m, instance, None).await;
    let state = format!("agentcore-controller/tokens/{}", names.secret);
    let stored = secret_map(&aws, &state).await;
    assert!(
        stored["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    aws.secrets
        .delete_secret()
        .secret_id(&state)
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("DeleteSecret");

    let dir = m.arg();
    let out = controller(&["diff", "-f", &dir, "--instance", instance]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("refresh token not stored"),
        "{}",
        stdout(&out)
    );
    let out = controller(&["apply", "-f", &dir, "--instance", instance]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let healed = secret_map(&aws, &state).await;
    assert!(
        healed["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "the refresh token is stored again"
    );
    let out = controller(&["diff", "-f", &dir, "--instance", instance]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The User stores its password in a secret (marked pending), sets it on the user, then
/// clears the mark. A run killed in between leaves the mark (simulated by tagging the
/// secret again); a lost secret (deleted behind the controller's back) leaves the user
/// with a password nobody knows. Each is seen by `diff` and healed by one `apply`: the
/// stored password is the one Cognito accepts.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_pending_password_secret_is_healed() {
    use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
    use aws_sdk_secretsmanager::types::Tag;
    let m = Manifests::new();
    let instance = "users-heal";
    let (names, aws) = applied(&m, instance, None).await;
    let password_secret = format!("agentcore-controller/users/{}/{}", names.pool, names.user);
    let client_id = secret_map(&aws, &names.secret).await["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    let dir = m.arg();
    let signs_in = |password: String| {
        let (aws, client_id, user) = (aws.clone(), client_id.clone(), names.user.clone());
        async move {
            aws.cognito
                .initiate_auth()
                .client_id(client_id)
                .auth_flow(AuthFlowType::UserPasswordAuth)
                .auth_parameters("USERNAME", user)
                .auth_parameters("PASSWORD", password)
                .send()
                .await
                .is_ok_and(|o| o.authentication_result().is_some())
        }
    };

    // A run stopped before the pending mark was cleared.
    aws.secrets
        .tag_resource()
        .secret_id(&password_secret)
        .tags(
            Tag::builder()
                .key("agentcore.dev/password-pending")
                .value("true")
                .build(),
        )
        .send()
        .await
        .expect("TagResource");
    // The password secret lost.
    let lost = || async {
        aws.secrets
            .delete_secret()
            .secret_id(&password_secret)
            .force_delete_without_recovery(true)
            .send()
            .await
            .expect("DeleteSecret");
    };
    for (case, damage) in [("pending", None), ("deleted", Some(lost))] {
        if let Some(damage) = damage {
            damage().await;
        }
        let out = controller(&["diff", "-f", &dir, "--instance", instance]);
        assert_eq!(out.status.code(), Some(2), "{case}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("passwordSecret"),
            "{case}: {}",
            stdout(&out)
        );
        let out = controller(&["apply", "-f", &dir, "--instance", instance]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{case}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let stored = secret_map(&aws, &password_secret).await;
        let password = stored["password"].as_str().unwrap_or_default().to_string();
        assert!(
            signs_in(password).await,
            "{case}: the stored password signs in"
        );
        let out = controller(&["diff", "-f", &dir, "--instance", instance]);
        assert_eq!(out.status.code(), Some(0), "{case}: {}", stdout(&out));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_renewal_is_told_once_and_so_is_its_recovery() {
    let m = Manifests::new();
    let instance = format!("inst-{}", unique("n"));
    // Renewal falls due 3 s after each issue.
    let (names, aws) = applied(&m, &instance, Some("3597s")).await;
    let receiver = testkit::receiver::Receiver::start().await;
    let d = Daemon::start(
        m.path(),
        &[
            "--instance",
            instance.as_str(),
            "--retry-base",
            "200ms",
            // A refusal for good is looked at again at the resync (the cause may be fixed
            // outside the manifests, as here).
            "--resync",
            "5s",
            "--notify",
            &receiver.url,
        ],
        None,
    );
    wait_for(Duration::from_secs(60), "the stack Ready", || d.all_ready());
    let published = secret_map(&aws, &names.secret).await;
    let pool_id = pool_of(&aws, &names.secret).await;

    // The user is disabled and its refresh tokens revoked: neither the refresh token nor
    // the password signs in, renewal after renewal.
    aws.cognito
        .admin_disable_user()
        .user_pool_id(&pool_id)
        .username(&names.user)
        .send()
        .await
        .expect("AdminDisableUser");
    revoke(&aws, &pool_id, &names.user).await;
    let token = "cognito-credentials";
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while receiver.of("tokenRenewalFailed", Some(token)).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no tokenRenewalFailed: {:#?}\n{}",
            receiver.events(),
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Retried again and again meanwhile, told once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.of("tokenRenewalFailed", Some(token)).len(), 1);

    aws.cognito
        .admin_enable_user()
        .user_pool_id(&pool_id)
        .username(&names.user)
        .send()
        .await
        .expect("AdminEnableUser");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while receiver.of("recovered", Some(token)).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery told: {:#?}\n{}",
            receiver.events(),
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(receiver.of("tokenRenewalFailed", Some(token)).len(), 1);
    assert_eq!(receiver.of("recovered", Some(token)).len(), 1);
    // No secret value in any event.
    let events = format!("{:?}", receiver.events());
    let password_secret = format!("agentcore-controller/users/{}/{}", names.pool, names.user);
    let password = secret_map(&aws, &password_secret).await["password"].clone();
    for secret in [
        published["bearer_token"].as_str().unwrap_or("-"),
        published["id_token"].as_str().unwrap_or("-"),
        password.as_str().unwrap_or("-"),
    ] {
        assert!(!events.contains(secret), "a secret value in a notification");
    }
    assert_eq!(d.terminate(), Some(0));
}

// ---------------------------------------------------------------------------------------
// Machine-to-machine tokens: a resource server's scopes, the pool's domain, an app client
// allowed the client_credentials grant, and a Token granted at the domain's token endpoint.

/// The names of one copy of the M2M manifests.
struct M2m {
    pool: String,
    identifier: String,
    domain: String,
    client: String,
    secret: String,
}

impl M2m {
    fn unique() -> Self {
        let u = unique("m");
        Self {
            pool: format!("M2mPool{u}"),
            identifier: format!("https://api-{u}.example.com"),
            domain: format!("tokens-{u}"),
            client: format!("M2mClient{u}"),
            secret: format!("m2m/{u}/token"),
        }
    }

    /// UserPool, ResourceServer (scopes read and write), UserPoolDomain, a
    /// client_credentials UserPoolClient allowed `{identifier}/read`, and the Token.
    fn yaml(&self, token_extra: &str) -> String {
        format!(
            "apiVersion: agentcore.dev/v1alpha1
kind: UserPool
metadata:
  name: {}
spec: {{}}
---
{}",
            self.pool,
            self.in_pool(token_extra)
        )
    }

    /// [`M2m::yaml`] without the UserPool (for a pool defined elsewhere).
    fn in_pool(&self, token_extra: &str) -> String {
        let M2m {
            pool,
            identifier,
            domain,
            client,
            secret,
        } = self;
        format!(
            "apiVersion: agentcore.dev/v1alpha1
kind: ResourceServer
metadata:
  name: api
spec:
  userPoolRef: {pool}
  identifier: {identifier}
  scopes:
    - {{name: write, description: Change things}}
    - {{name: read, description: Read things}}
---
apiVersion: agentcore.dev/v1alpha1
kind: UserPoolDomain
metadata:
  name: domain
spec:
  userPoolRef: {pool}
  domain: {domain}
---
apiVersion: agentcore.dev/v1alpha1
kind: UserPoolClient
metadata:
  name: {client}
spec:
  userPoolRef: {pool}
  generateSecret: true
  allowedOAuthFlows: [client_credentials]
  allowedOAuthScopes: [{identifier}/read]
  tokenValidity:
    accessToken: 5m
---
apiVersion: agentcore.dev/v1alpha1
kind: Token
metadata:
  name: machine
  annotations:
    agentcore.dev/deletion-policy: Delete
spec:
  grant: client_credentials
  clientRef: {client}
  domainRef: domain
  scopes: [{identifier}/read]
  secretName: {secret}
{token_extra}"
        )
    }
}

fn run_ok(args: &[&str]) -> std::process::Output {
    let out = controller(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// The client's secret, as the test reads it (to prove it never shows in any output).
async fn client_secret(aws: &Aws, pool_id: &str, client_id: &str) -> String {
    aws.cognito
        .describe_user_pool_client()
        .user_pool_id(pool_id)
        .client_id(client_id)
        .send()
        .await
        .expect("DescribeUserPoolClient")
        .user_pool_client()
        .and_then(|c| c.client_secret())
        .unwrap_or_default()
        .to_string()
}

async fn resource_server_scopes(aws: &Aws, pool_id: &str, identifier: &str) -> Option<Vec<String>> {
    let out = aws
        .cognito
        .describe_resource_server()
        .user_pool_id(pool_id)
        .identifier(identifier)
        .send()
        .await
        .ok()?;
    let mut scopes: Vec<String> = out
        .resource_server()?
        .scopes()
        .iter()
        .map(|s| s.scope_name().to_string())
        .collect();
    scopes.sort();
    Some(scopes)
}

async fn domain_pool(aws: &Aws, domain: &str) -> Option<String> {
    aws.cognito
        .describe_user_pool_domain()
        .domain(domain)
        .send()
        .await
        .expect("DescribeUserPoolDomain")
        .domain_description()
        .and_then(|d| d.user_pool_id())
        .filter(|p| !p.is_empty())
        .map(String::from)
}

/// Verify `token` against the pool's signing keys, as the runtime's authorizer would with
/// `allowedClients: [client_id]` and `allowedScopes: [scope]`.
async fn verified(map: &serde_json::Map<String, Value>, scope: &str) {
    use agentcore_controller::token::{jwt, oidc};
    let url = emulator().url.clone();
    let discovery = oidc::fetch_discovery(map["discovery_url"].as_str().unwrap_or(""), Some(&url))
        .await
        .expect("discovery");
    let jwks = oidc::fetch_jwks(&discovery.jwks_uri, Some(&url))
        .await
        .expect("jwks");
    let expect = jwt::Expectation {
        issuer: discovery.issuer,
        token_use: jwt::TokenUse::Access,
        allowed_clients: vec![map["client_id"].as_str().unwrap_or("").to_string()],
        allowed_scopes: vec![scope.to_string()],
        ..Default::default()
    };
    let verdicts = jwt::check(
        map["bearer_token"].as_str().unwrap_or(""),
        &jwks,
        &expect,
        std::time::SystemTime::now(),
        None,
    );
    assert!(verdicts.iter().all(|v| v.ok), "{verdicts:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_credentials_token_is_granted_kept_converged_and_torn_down() {
    let aws = aws().await;
    let names = M2m::unique();
    let m = Manifests::new();
    m.write("m2m.yaml", &names.yaml(""));
    let dir = m.arg();
    let instance = "tokens-m2m";
    let mut captured = String::new();
    let mut keep = |out: &std::process::Output| {
        captured.push_str(&stdout(out));
        captured.push_str(&stderr(out));
    };
    keep(&run_ok(&[
        "--log",
        "debug",
        "apply",
        "-f",
        &dir,
        "--instance",
        instance,
    ]));

    // The published token: the user tokens' layout without an ID token, and no state
    // secret (no refresh token).
    let map = secret_map(&aws, &names.secret).await;
    for key in [
        "access_token",
        "bearer_token",
        "expires_at",
        "client_id",
        "discovery_url",
        "pool_id",
    ] {
        assert!(map.contains_key(key), "missing {key}: {map:?}");
    }
    assert!(!map.contains_key("id_token"), "no ID token");
    assert_eq!(map["bearer_token"], map["access_token"]);
    let state = format!("agentcore-controller/tokens/{}", names.secret);
    assert!(
        aws.secrets
            .describe_secret()
            .secret_id(&state)
            .send()
            .await
            .is_err(),
        "no state secret for a client_credentials token"
    );
    let (_, claims) =
        agentcore_controller::token::jwt::peek(map["bearer_token"].as_str().unwrap_or(""))
            .expect("a JWT");
    let read = format!("{}/read", names.identifier);
    let client_id = map["client_id"].as_str().unwrap_or("").to_string();
    let pool_id = map["pool_id"].as_str().unwrap_or("").to_string();
    assert_eq!(claims.scope.as_deref(), Some(read.as_str()));
    assert_eq!(claims.sub, client_id, "sub is the client");
    assert_eq!(claims.client_id.as_deref(), Some(client_id.as_str()));
    assert_eq!(claims.user(), None, "no username");
    assert_eq!(claims.token_use, "access");
    verified(&map, &read).await;
    assert_eq!(
        domain_pool(&aws, &names.domain).await.as_deref(),
        Some(pool_id.as_str())
    );

    // Converged: a second apply writes nothing.
    let out = run_ok(&[
        "apply",
        "-f",
        &dir,
        "--output",
        "json",
        "--instance",
        instance,
    ]);
    keep(&out);
    let report = json(&out);
    assert_eq!(report["calls"]["writes"], 0, "{report:#}");

    // Drift: the resource server's scopes changed by hand are put back.
    aws.cognito
        .update_resource_server()
        .user_pool_id(&pool_id)
        .identifier(&names.identifier)
        .name("changed by hand")
        .scopes(
            aws_sdk_cognitoidentityprovider::types::ResourceServerScopeType::builder()
                .scope_name("read")
                .scope_description("Read things")
                .build()
                .expect("scope"),
        )
        .send()
        .await
        .expect("UpdateResourceServer by hand");
    let out = controller(&["diff", "-f", &dir, "--instance", instance]);
    keep(&out);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("spec.scopes"), "{}", stdout(&out));
    keep(&run_ok(&["apply", "-f", &dir, "--instance", instance]));
    assert_eq!(
        resource_server_scopes(&aws, &pool_id, &names.identifier).await,
        Some(vec!["read".to_string(), "write".to_string()])
    );

    // The client's OAuth settings changed by hand are put back too.
    let described = aws
        .cognito
        .describe_user_pool_client()
        .user_pool_id(&pool_id)
        .client_id(&client_id)
        .send()
        .await
        .expect("DescribeUserPoolClient");
    let c = described.user_pool_client().expect("client");
    aws.cognito
        .update_user_pool_client()
        .user_pool_id(&pool_id)
        .client_id(&client_id)
        .set_client_name(c.client_name().map(String::from))
        .allowed_o_auth_flows(
            aws_sdk_cognitoidentityprovider::types::OAuthFlowType::ClientCredentials,
        )
        .allowed_o_auth_scopes(format!("{}/write", names.identifier))
        .allowed_o_auth_flows_user_pool_client(true)
        .send()
        .await
        .expect("UpdateUserPoolClient by hand");
    let out = controller(&["diff", "-f", &dir, "--instance", instance]);
    keep(&out);
    assert!(
        stdout(&out).contains("spec.allowedOAuthScopes"),
        "{}",
        stdout(&out)
    );
    keep(&run_ok(&["apply", "-f", &dir, "--instance", instance]));
    let scopes = aws
        .cognito
        .describe_user_pool_client()
        .user_pool_id(&pool_id)
        .client_id(&client_id)
        .send()
        .await
        .expect("DescribeUserPoolClient")
        .user_pool_client()
        .map(|c| c.allowed_o_auth_scopes().to_vec())
        .unwrap_or_default();
    assert_eq!(scopes, [read.as_str()]);

    // The Token asks for another scope (which the client is now allowed): granted again.
    let write = format!("{}/write", names.identifier);
    m.write(
        "m2m.yaml",
        &names
            .yaml("")
            .replace(&format!("[{read}]"), &format!("[{read}, {write}]")),
    );
    let out = controller(&["diff", "-f", &dir, "--instance", instance]);
    keep(&out);
    assert!(stdout(&out).contains("spec.scopes"), "{}", stdout(&out));
    keep(&run_ok(&["apply", "-f", &dir, "--instance", instance]));
    let regranted = secret_map(&aws, &names.secret).await;
    let (_, claims) =
        agentcore_controller::token::jwt::peek(regranted["bearer_token"].as_str().unwrap_or(""))
            .expect("a JWT");
    let mut scopes = claims.scopes();
    scopes.sort_unstable();
    assert_eq!(scopes, [read.as_str(), write.as_str()]);
    verified(&regranted, &write).await;
    let out = run_ok(&[
        "apply",
        "-f",
        &dir,
        "--output",
        "json",
        "--instance",
        instance,
    ]);
    keep(&out);
    assert_eq!(json(&out)["calls"]["writes"], 0, "converged");

    // No client secret and no token in any output.
    let secret = client_secret(&aws, &pool_id, &client_id).await;
    assert!(secret.len() >= 16, "a real client secret");
    assert!(!captured.contains(&secret), "the client secret leaked");
    for part in map["access_token"].as_str().unwrap_or("").split('.') {
        assert!(
            part.len() < 16 || !captured.contains(part),
            "the token leaked"
        );
    }

    // Delete: the resource server and the domain go; the pool is retained (its default).
    let out = run_ok(&["delete", "-f", &dir, "--instance", instance]);
    assert!(!stdout(&out).contains(&secret));
    assert_eq!(
        domain_pool(&aws, &names.domain).await,
        None,
        "domain deleted"
    );
    assert_eq!(
        resource_server_scopes(&aws, &pool_id, &names.identifier).await,
        None,
        "resource server deleted"
    );
    assert_eq!(
        pools_named(&aws, &names.pool).await.len(),
        1,
        "pool retained"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_credentials_token_is_renewed_before_it_expires() {
    let aws = aws().await;
    let names = M2m::unique();
    let m = Manifests::new();
    // Tokens live 5 minutes; renewing 297 s ahead makes renewal fall due 3 s after issue.
    m.write("m2m.yaml", &names.yaml("  renewBefore: 297s\n"));
    let instance = format!("inst-{}", unique("r"));
    run_ok(&["apply", "-f", &m.arg(), "--instance", &instance]);
    let first = secret_map(&aws, &names.secret).await;
    let first_version = current_version(&aws, &names.secret).await;
    let first_expiry =
        agentcore_controller::token::jwt::peek(first["bearer_token"].as_str().unwrap_or(""))
            .expect("JWT")
            .1
            .exp;

    let d = Daemon::start(
        m.path(),
        &["--instance", instance.as_str(), "--retry-base", "200ms"],
        None,
    );
    wait_for(Duration::from_secs(60), "Ready in the daemon", || {
        d.all_ready()
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while current_version(&aws, &names.secret).await == first_version {
        assert!(
            std::time::Instant::now() < deadline,
            "no renewal\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    assert!(
        now_secs < first_expiry,
        "renewed before the old token expired"
    );
    let renewed = secret_map(&aws, &names.secret).await;
    assert_ne!(renewed["bearer_token"], first["bearer_token"]);
    assert!(!renewed.contains_key("id_token"));
    verified(&renewed, &format!("{}/read", names.identifier)).await;
    let log = d.log_text();
    assert!(log.contains("client-credentials"), "renewed by a new grant");
    let secret = client_secret(
        &aws,
        renewed["pool_id"].as_str().unwrap_or(""),
        renewed["client_id"].as_str().unwrap_or(""),
    )
    .await;
    assert!(secret.len() >= 16);
    assert!(
        !log.contains(&secret),
        "the client secret leaked into the log"
    );
    assert_eq!(d.terminate(), Some(0));
}

/// A Token switched from the password grant to client_credentials (same client, which
/// allows both) is granted again at once, not when its token falls due, and the refresh
/// token the password grant kept is deleted; the consumer secret names its grant.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_switched_to_client_credentials_is_granted_at_once_and_drops_its_refresh_token() {
    let aws = aws().await;
    let names = M2m::unique();
    let m = Manifests::new();
    let read = format!("{}/read", names.identifier);
    // The M2M client also lets a user sign in; a User to sign in as.
    let both = names
        .yaml("")
        .replace(
            "  generateSecret: true\n",
            "  generateSecret: true\n  explicitAuthFlows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]\n",
        )
        + &format!(
            "---
apiVersion: agentcore.dev/v1alpha1
kind: User
metadata:
  name: person
spec:
  userPoolRef: {}
",
            names.pool
        );
    let m2m_grant = format!(
        "  grant: client_credentials\n  clientRef: {}\n  domainRef: domain\n  scopes: [{read}]\n",
        names.client
    );
    assert!(both.contains(&m2m_grant), "{both}");
    let password = both.replace(
        &m2m_grant,
        &format!("  userRef: person\n  clientRef: {}\n", names.client),
    );
    m.write("m2m.yaml", &password);
    let dir = m.arg();
    let instance = "tokens-m2m-switch";
    run_ok(&["apply", "-f", &dir, "--instance", instance]);
    let state = format!("agentcore-controller/tokens/{}", names.secret);
    let user = secret_map(&aws, &names.secret).await;
    assert_eq!(user["grant"], "password", "{:?}", user.keys());
    assert!(user.contains_key("id_token"));
    let (_, claims) =
        agentcore_controller::token::jwt::peek(user["bearer_token"].as_str().unwrap_or(""))
            .expect("a JWT");
    assert!(claims.user().is_some(), "a user's token");
    aws.secrets
        .describe_secret()
        .secret_id(&state)
        .send()
        .await
        .expect("the refresh token is kept");

    // The switch, well before the user's token is due: planned and applied at once.
    m.write("m2m.yaml", &both);
    let out = controller(&["diff", "-f", &dir, "--instance", instance]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("spec.grant"), "{}", stdout(&out));
    run_ok(&["apply", "-f", &dir, "--instance", instance]);
    let machine = secret_map(&aws, &names.secret).await;
    assert_eq!(machine["grant"], "client_credentials");
    assert!(!machine.contains_key("id_token"), "no ID token left");
    assert_eq!(machine["client_id"], user["client_id"], "the same client");
    let (_, claims) =
        agentcore_controller::token::jwt::peek(machine["bearer_token"].as_str().unwrap_or(""))
            .expect("a JWT");
    assert_eq!(claims.user(), None, "no user: a machine-to-machine token");
    assert_eq!(claims.scope.as_deref(), Some(read.as_str()));
    assert!(
        aws.secrets
            .describe_secret()
            .secret_id(&state)
            .send()
            .await
            .is_err(),
        "the password grant's refresh token is deleted"
    );
    let out = run_ok(&[
        "apply",
        "-f",
        &dir,
        "--output",
        "json",
        "--instance",
        instance,
    ]);
    assert_eq!(json(&out)["calls"]["writes"], 0, "converged");
    run_ok(&["delete", "-f", &dir, "--instance", instance]);
}

/// A prefix is global: a second pool asking for it fails, naming the pool that holds it. A
/// new prefix replaces the pool's domain, and the plan says so first.
#[tokio::test(flavor = "multi_thread")]
async fn a_domain_prefix_is_global_and_replaced_when_changed() {
    let aws = aws().await;
    let names = M2m::unique();
    let m = Manifests::new();
    m.write("m2m.yaml", &names.yaml(""));
    let dir = m.arg();
    let instance = "tokens-m2m-domain";
    run_ok(&["apply", "-f", &dir, "--instance", instance]);
    let pool_id = domain_pool(&aws, &names.domain).await.expect("domain");

    // Another pool asking for the same prefix.
    let other = Manifests::new();
    let other_pool = format!("{}Other", names.pool);
    other.write(
        "other.yaml",
        &format!(
            "apiVersion: agentcore.dev/v1alpha1
kind: UserPool
metadata:
  name: {other_pool}
spec: {{}}
---
apiVersion: agentcore.dev/v1alpha1
kind: UserPoolDomain
metadata:
  name: taken
spec:
  userPoolRef: {other_pool}
  domain: {}
",
            names.domain
        ),
    );
    let out = controller(&[
        "apply",
        "-f",
        &other.arg(),
        "--instance",
        instance,
        "--timeout",
        "20s",
    ]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("belongs to user pool") && text.contains(&pool_id),
        "the conflict is named: {text}"
    );
    assert_eq!(
        domain_pool(&aws, &names.domain).await.as_deref(),
        Some(pool_id.as_str()),
        "the prefix stays with its pool"
    );

    // A new prefix: planned as a replacement, then the old domain goes and the new one
    // serves the token endpoint.
    let renamed = format!("{}-new", names.domain);
    m.write(
        "m2m.yaml",
        &names.yaml("").replace(
            &format!("domain: {}\n", names.domain),
            &format!("domain: {renamed}\n"),
        ),
    );
    let out = controller(&["diff", "-f", &dir, "--instance", instance]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("requires replacement")
            && stdout(&out).contains(&format!("{} is deleted first", names.domain)),
        "{}",
        stdout(&out)
    );
    let before = secret_map(&aws, &names.secret).await;
    run_ok(&["apply", "-f", &dir, "--instance", instance]);
    assert_eq!(
        domain_pool(&aws, &names.domain).await,
        None,
        "old prefix gone"
    );
    assert_eq!(
        domain_pool(&aws, &renamed).await.as_deref(),
        Some(pool_id.as_str())
    );
    // Converged; the published token (the pool's, whichever domain granted it) stays
    // valid until its renewal, which asks the new domain.
    let out = run_ok(&[
        "apply",
        "-f",
        &dir,
        "--output",
        "json",
        "--instance",
        instance,
    ]);
    assert_eq!(json(&out)["calls"]["writes"], 0, "converged");
    assert_eq!(
        secret_map(&aws, &names.secret).await["bearer_token"],
        before["bearer_token"]
    );
}

/// A Token asking for a scope its client is not allowed: the token endpoint's refusal
/// comes back naming the scope and the client, without the client's secret.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_grant_names_the_scope_and_not_the_secret() {
    let aws = aws().await;
    let names = M2m::unique();
    let m = Manifests::new();
    let write = format!("{}/write", names.identifier);
    let yaml = names.yaml("").replace(
        &format!("  scopes: [{}/read]\n", names.identifier),
        &format!("  scopes: [{write}]\n"),
    );
    assert!(yaml.contains(&format!("scopes: [{write}]")));
    m.write("m2m.yaml", &yaml);
    let out = controller(&[
        "apply",
        "-f",
        &m.arg(),
        "--instance",
        "tokens-m2m-refused",
        "--timeout",
        "20s",
    ]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("invalid_scope") && text.contains(&write),
        "the refusal names the scope: {text}"
    );
    let pool_id = domain_pool(&aws, &names.domain).await.expect("domain");
    let clients = aws
        .cognito
        .list_user_pool_clients()
        .user_pool_id(&pool_id)
        .max_results(60)
        .send()
        .await
        .expect("ListUserPoolClients");
    let client_id = clients
        .user_pool_clients()
        .iter()
        .find(|c| c.client_name() == Some(names.client.as_str()))
        .and_then(|c| c.client_id())
        .expect("the client")
        .to_string();
    assert!(text.contains(&client_id), "names the client: {text}");
    let secret = client_secret(&aws, &pool_id, &client_id).await;
    assert!(secret.len() >= 16);
    assert!(!text.contains(&secret), "the client secret leaked");
}

/// The token endpoint, which receives the client secret, is rerouted by
/// AGENTCORE_COGNITO_DOMAIN_URL only (AWS_ENDPOINT_URL, here the emulator, is the SDK's),
/// and never to plain http:// beyond loopback: the grant is refused before any request.
#[tokio::test(flavor = "multi_thread")]
async fn the_token_endpoint_is_never_reached_over_plain_http_beyond_loopback() {
    let aws = aws().await;
    let names = M2m::unique();
    let m = Manifests::new();
    m.write("m2m.yaml", &names.yaml(""));
    let out = controller_command(&[
        "apply",
        "-f",
        &m.arg(),
        "--instance",
        "tokens-m2m-plain-http",
        "--timeout",
        "20s",
    ])
    .env("AGENTCORE_COGNITO_DOMAIN_URL", "http://192.0.2.10:8080")
    .output()
    .expect("run agentcore-controller");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("AGENTCORE_COGNITO_DOMAIN_URL") && text.contains("https://"),
        "the refusal names the variable and what it must be: {text}"
    );
    assert!(
        aws.secrets
            .describe_secret()
            .secret_id(&names.secret)
            .send()
            .await
            .is_err(),
        "no token published"
    );
    let pool_id = domain_pool(&aws, &names.domain).await.expect("domain");
    let clients = aws
        .cognito
        .list_user_pool_clients()
        .user_pool_id(&pool_id)
        .max_results(60)
        .send()
        .await
        .expect("ListUserPoolClients");
    let client_id = clients
        .user_pool_clients()
        .iter()
        .find(|c| c.client_name() == Some(names.client.as_str()))
        .and_then(|c| c.client_id())
        .expect("the client")
        .to_string();
    let secret = client_secret(&aws, &pool_id, &client_id).await;
    assert!(secret.len() >= 16);
    assert!(!text.contains(&secret), "the client secret leaked");
}

/// `check-auth` holds a machine-to-machine token against the runtime's actual authorizer:
/// its client in allowedClients, its scope in allowedScopes; no user involved.
#[tokio::test(flavor = "multi_thread")]
async fn check_auth_accepts_a_machine_to_machine_token_by_client_and_scope() {
    let aws = aws().await;
    let m = Manifests::new();
    let names = StackNames::unique();
    names.write_to(&m, "manifests");
    let m2m = M2m {
        pool: names.pool.clone(),
        ..M2m::unique()
    };
    m.write("m2m.yaml", &m2m.in_pool(""));
    let runtime_yaml = std::fs::read_to_string(m.path().join("runtime.yaml")).expect("read");
    let refs = format!("clientRefs: [{}]", names.client);
    assert!(runtime_yaml.contains(&refs), "{runtime_yaml}");
    m.write(
        "runtime.yaml",
        &runtime_yaml.replace(
            &refs,
            &format!(
                "clientRefs: [{}, {}]\n      allowedScopes: [{}/read]",
                names.client, m2m.client, m2m.identifier
            ),
        ),
    );
    let instance = "tokens-m2m-check";
    let _ = controller(&[
        "apply",
        "-f",
        &m.arg(),
        "--timeout",
        "3s",
        "--instance",
        instance,
    ]);
    push_image(&aws, &names.repo, "latest", &names.runtime).await;
    run_ok(&["apply", "-f", &m.arg(), "--instance", instance]);

    let out = controller(&["check-auth", "machine", "-f", &m.arg(), "--output", "json"]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let passed: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == true)
        .filter_map(|c| c["check"].as_str())
        .collect();
    for check in [
        "signature",
        "issuer",
        "expiry",
        "token_use",
        "client",
        "scope",
    ] {
        assert!(passed.contains(&check), "{check}: {report:#}");
    }

    // The runtime allows another scope only: the M2M token is refused on scope.
    let rt = runtime(&aws, &names.runtime).await;
    let jwt = rt
        .authorizer_configuration()
        .and_then(|a| a.as_custom_jwt_authorizer().ok())
        .expect("jwt");
    let other = aws_sdk_bedrockagentcorecontrol::types::CustomJwtAuthorizerConfiguration::builder()
        .discovery_url(jwt.discovery_url())
        .set_allowed_clients(Some(jwt.allowed_clients().to_vec()))
        .allowed_scopes(format!("{}/write", m2m.identifier))
        .build()
        .expect("config");
    set_jwt_authorizer(&aws, &rt, other).await;
    let out = controller(&["check-auth", "machine", "-f", &m.arg(), "--output", "json"]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .filter_map(|c| c["check"].as_str())
        .collect();
    assert_eq!(failed, ["scope"], "{report:#}");
}
