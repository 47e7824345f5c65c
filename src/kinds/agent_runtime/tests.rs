use super::*;
use crate::kinds::{Schema, SchemaOf};
use crate::model::yaml::parse_documents;
use aws_sdk_bedrockagentcorecontrol::operation::get_agent_runtime::GetAgentRuntimeOutput;
use aws_sdk_bedrockagentcorecontrol::types::{
    AgentRuntimeArtifact, AuthorizerConfiguration, ContainerConfiguration,
    CustomJwtAuthorizerConfiguration, LifecycleConfiguration, NetworkConfiguration,
    ProtocolConfiguration, ServerProtocol,
};
use serde_json::json;

fn desired() -> DesiredRuntime {
    DesiredRuntime {
        name: "mcp_server_ac".into(),
        description: None,
        container_uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp@sha256:abc".into(),
        role_arn: "arn:aws:iam::123456789012:role/r".into(),
        network: Network {
            mode: "PUBLIC".into(),
            subnets: vec![],
            security_groups: vec![],
        },
        protocol: Protocol::Mcp,
        environment: BTreeMap::new(),
        request_headers: Vec::new(),
        tags: None,
        keep_versions: None,
        lifecycle: Lifecycle::effective(None, None),
        authorizer: Some(Jwt {
            discovery_url: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x/.well-known/openid-configuration"
                .into(),
            allowed_clients: vec!["a".into(), "b".into()],
            allowed_audience: vec![],
            allowed_scopes: vec![],
            custom_claims: vec![],
        }),
    }
}

fn observed() -> ObservedRuntime {
    let d = desired();
    ObservedRuntime {
        id: "mcp_server_ac-abcdefghij".into(),
        arn: "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/mcp_server_ac-abcdefghij"
            .into(),
        version: "1".into(),
        name: d.name,
        status: "READY".into(),
        failure_reason: None,
        container_uri: Some(d.container_uri),
        role_arn: d.role_arn,
        network: d.network,
        protocol: "MCP".into(),
        environment: BTreeMap::new(),
        lifecycle: d.lifecycle,
        description: String::new(),
        authorizer: d.authorizer,
        request_headers: d.request_headers,
        tags: BTreeMap::new(),
        prunable_versions: Vec::new(),
        region: "us-east-1".into(),
    }
}

fn fields(changes: &[Change]) -> Vec<&str> {
    changes.iter().map(|c| c.field.as_str()).collect()
}

#[test]
fn diff_table() {
    type Edit = fn(&mut DesiredRuntime, &mut ObservedRuntime);
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        ("converged", |_, _| {}, vec![]),
        (
            "image",
            |d, _| d.container_uri = "x@sha256:new".into(),
            vec!["spec.image"],
        ),
        (
            "role",
            |d, _| d.role_arn = "arn:aws:iam::1:role/other".into(),
            vec!["spec.roleArn"],
        ),
        (
            "network",
            |d, _| d.network.mode = "VPC".into(),
            vec!["spec.network"],
        ),
        (
            "protocol",
            |d, _| d.protocol = Protocol::Http,
            vec!["spec.protocol"],
        ),
        (
            "lifecycle",
            |d, _| d.lifecycle = Lifecycle::effective(Some(60), None),
            vec!["spec.lifecycle"],
        ),
        (
            "description set",
            |d, _| d.description = Some("hello".into()),
            vec!["spec.description"],
        ),
        (
            "description omitted is left alone",
            |_, o| o.description = "old".into(),
            vec![],
        ),
        (
            "description same",
            |d, o| {
                d.description = Some("x".into());
                o.description = "x".into();
            },
            vec![],
        ),
        (
            "no authorizer wanted",
            |d, _| d.authorizer = None,
            vec!["spec.authorizer"],
        ),
        (
            "clients differ",
            |d, _| {
                if let Some(j) = &mut d.authorizer {
                    j.allowed_clients = vec!["a".into()];
                }
            },
            vec!["spec.authorizer"],
        ),
        (
            "environment",
            |d, _| {
                d.environment.insert("A".into(), "1".into());
            },
            vec!["spec.environment"],
        ),
        (
            "image missing in AWS",
            |_, o| o.container_uri = None,
            vec!["spec.image"],
        ),
        (
            "request headers",
            |d, _| d.request_headers = vec!["X-Request-Id".into()],
            vec!["spec.requestHeaderAllowlist"],
        ),
        (
            "request headers differing only in case",
            |d, o| {
                d.request_headers = vec!["X-Request-Id".into()];
                o.request_headers = vec!["x-request-id".into()];
            },
            vec![],
        ),
        (
            "custom claims",
            |d, _| {
                if let Some(j) = d.authorizer.as_mut() {
                    j.custom_claims = vec![super::claims::Claim {
                        name: "tenant".into(),
                        value_type: super::claims::ClaimValueType::String,
                        operator: super::claims::ClaimOperator::Equals,
                        values: vec!["acme".into()],
                    }];
                }
            },
            vec!["spec.authorizer"],
        ),
        (
            "tags",
            |d, o| {
                o.tags = BTreeMap::from([("team".to_string(), "a".to_string())]);
                d.tags = Some(BTreeMap::from([("team".to_string(), "b".to_string())]));
            },
            vec!["spec.tags"],
        ),
        (
            "tags not managed",
            |_, o| o.tags = BTreeMap::from([("team".to_string(), "a".to_string())]),
            vec![],
        ),
    ];
    for (name, edit, want) in cases {
        let (mut d, mut o) = (desired(), observed());
        edit(&mut d, &mut o);
        assert_eq!(fields(&AgentRuntime::diff(&d, &o)), want, "{name}");
    }
}

#[test]
fn environment_values_are_masked() {
    let mut d = desired();
    let mut o = observed();
    o.environment.insert("KEEP".into(), "same".into());
    o.environment.insert("SECRETISH".into(), "old-value".into());
    o.environment.insert("GONE".into(), "bye".into());
    d.environment.insert("KEEP".into(), "same".into());
    d.environment.insert("SECRETISH".into(), "new-value".into());
    d.environment.insert("ADDED".into(), "hi".into());
    let changes = AgentRuntime::diff(&d, &o);
    assert_eq!(
        changes,
        vec![Change::new(
            "spec.environment",
            Some(json!({"GONE": "***", "KEEP": "***", "SECRETISH": "***"})),
            Some(json!({"ADDED": "*** (new)", "KEEP": "***", "SECRETISH": "*** (changed)"})),
        )]
    );
    let text = serde_json::to_string(&changes).unwrap_or_default();
    for v in ["same", "old-value", "new-value", "bye", "hi"] {
        assert!(!text.contains(&format!("\"{v}\"")), "{v} leaked: {text}");
    }
}

#[test]
fn lifecycle_defaults() {
    let cases = [
        (None, None, (900, 28800)),
        (None, Some(600), (600, 600)),
        (None, Some(3600), (900, 3600)),
        (Some(120), None, (120, 28800)),
        (Some(120), Some(240), (120, 240)),
    ];
    for (idle, max, (wi, wm)) in cases {
        let l = Lifecycle::effective(idle, max);
        assert_eq!(
            (
                l.idle_runtime_session_timeout_seconds,
                l.max_lifetime_seconds
            ),
            (wi, wm),
            "{idle:?} {max:?}"
        );
    }
}

#[test]
fn observed_normalises_aws_defaults() {
    use aws_sdk_bedrockagentcorecontrol::types::NetworkMode as SdkMode;
    let d = desired();
    let out = GetAgentRuntimeOutput::builder()
        .agent_runtime_arn(
            "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/mcp_server_ac-abcdefghij",
        )
        .agent_runtime_id("mcp_server_ac-abcdefghij")
        .agent_runtime_name("mcp_server_ac")
        .agent_runtime_version("1")
        .role_arn(&d.role_arn)
        .status(AgentRuntimeStatus::Ready)
        .created_at(aws_smithy_types::DateTime::from_secs(0))
        .last_updated_at(aws_smithy_types::DateTime::from_secs(0))
        .network_configuration(
            NetworkConfiguration::builder()
                .network_mode(SdkMode::Public)
                .build()
                .unwrap(),
        )
        .agent_runtime_artifact(AgentRuntimeArtifact::ContainerConfiguration(
            ContainerConfiguration::builder()
                .container_uri(&d.container_uri)
                .build()
                .unwrap(),
        ))
        .protocol_configuration(
            ProtocolConfiguration::builder()
                .server_protocol(ServerProtocol::Mcp)
                .port(8000)
                .path("/mcp")
                .build()
                .unwrap(),
        )
        .lifecycle_configuration(LifecycleConfiguration::builder().build())
        .description("")
        .authorizer_configuration(AuthorizerConfiguration::CustomJwtAuthorizer(
            CustomJwtAuthorizerConfiguration::builder()
                .discovery_url(&d.authorizer.as_ref().unwrap().discovery_url)
                .allowed_clients("b")
                .allowed_clients("a")
                .allowed_clients("a")
                .build()
                .unwrap(),
        ))
        .build()
        .unwrap();
    let o = observed_from(&out, "us-east-1");
    assert_eq!(AgentRuntime::diff(&d, &o), vec![], "{o:?}");
    assert_eq!(AgentRuntime::readiness(&o), Readiness::Ready);
}

#[test]
fn readiness_table() {
    let cases = [
        ("READY", None, Readiness::Ready),
        (
            "CREATING",
            None,
            Readiness::Progressing("status CREATING".into()),
        ),
        (
            "UPDATING",
            None,
            Readiness::Progressing("status UPDATING".into()),
        ),
        (
            "DELETING",
            None,
            Readiness::Progressing("status DELETING".into()),
        ),
        (
            "CREATE_FAILED",
            Some("image not found"),
            Readiness::Failed("runtime mcp_server_ac is CREATE_FAILED: image not found".into()),
        ),
        (
            "UPDATE_FAILED",
            None,
            Readiness::Failed(
                "runtime mcp_server_ac is UPDATE_FAILED: AgentCore gave no reason".into(),
            ),
        ),
    ];
    for (status, reason, want) in cases {
        let mut o = observed();
        o.status = status.into();
        o.failure_reason = reason.map(String::from);
        assert_eq!(AgentRuntime::readiness(&o), want, "{status}");
    }
}

#[test]
fn invocation_url_encodes_the_arn() {
    assert_eq!(
        invocation_url(
            "us-east-1",
            "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/mcp_server_ac-AbCdEf1234"
        ),
        "https://bedrock-agentcore.us-east-1.amazonaws.com/runtimes/\
         arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A123456789012%3Aruntime%2Fmcp_server_ac-AbCdEf1234\
         /invocations?qualifier=DEFAULT"
    );
}

#[test]
fn client_tokens_fit_agentcore() {
    let d = desired();
    let a = client_token("ctl", &d, "create");
    assert_eq!(a, client_token("ctl", &d, "create"), "deterministic");
    assert_ne!(a, client_token("other", &d, "create"), "owner matters");
    assert_ne!(a, client_token("ctl", &d, "update-from-1"), "salt matters");
    let mut d2 = d.clone();
    d2.container_uri = "other".into();
    assert_ne!(
        a,
        client_token("ctl", &d2, "create"),
        "configuration matters"
    );
    let mut long = d.clone();
    long.name = format!("a{}_", "b".repeat(46));
    for t in [a, client_token("ctl", &long, "x")] {
        assert!((33..=256).contains(&t.len()), "{t}");
        assert!(
            t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{t}"
        );
        assert!(t.starts_with(|c: char| c.is_ascii_alphanumeric()), "{t}");
        assert!(t.ends_with(|c: char| c.is_ascii_alphanumeric()), "{t}");
    }
}

fn problems(name: &str, yaml: &str) -> Vec<(String, String)> {
    let docs = parse_documents(yaml).unwrap();
    SchemaOf::<AgentRuntime>(std::marker::PhantomData)
        .parse(name, &docs[0])
        .1
        .into_iter()
        .map(|p| (p.path, p.message))
        .collect::<Vec<_>>()
}

#[test]
fn validation_table() {
    let base = "imageRef: img\nroleRef: role\n";
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("mcp_server_ac", base.to_string(), vec![]),
        ("mcp-server", base.to_string(), vec!["metadata.name"]),
        (
            "mcp-server",
            format!("{base}runtimeName: mcp_server\n"),
            vec![],
        ),
        (
            "x",
            format!("{base}runtimeName: 9lives\n"),
            vec!["spec.runtimeName"],
        ),
        (
            "x",
            format!("{base}runtimeName: {}\n", "a".repeat(49)),
            vec!["spec.runtimeName"],
        ),
        (
            "x",
            format!("{base}description: \"\"\n"),
            vec!["spec.description"],
        ),
        (
            "x",
            format!("{base}network: {{ mode: VPC }}\n"),
            vec!["spec.network.subnets", "spec.network.securityGroups"],
        ),
        (
            "x",
            format!(
                "{base}network: {{ mode: VPC, subnets: [subnet-0123456789abcdef0], securityGroups: [sg-01234567] }}\n"
            ),
            vec![],
        ),
        (
            "x",
            format!("{base}network: {{ mode: VPC, subnets: [], securityGroups: [bad] }}\n"),
            vec!["spec.network.subnets", "spec.network.securityGroups[0]"],
        ),
        (
            "x",
            format!("{base}network: {{ subnets: [subnet-01234567] }}\n"),
            vec!["spec.network.subnets"],
        ),
        (
            "x",
            format!("{base}protocol: GRPC\n"),
            vec!["spec.protocol"],
        ),
        (
            "x",
            format!("{base}environment: {{ GOOD_1: a, 1BAD: b }}\n"),
            vec!["spec.environment.1BAD"],
        ),
        (
            "x",
            format!(
                "{base}environment: {{ ARN: {{ from: Parameter/p, output: value }}, LIT: {{ value: x }} }}\n"
            ),
            vec![],
        ),
        (
            "x",
            format!("{base}environment: {{ S: {{ from: Secret/s, output: arn }} }}\n"),
            vec!["spec.environment.S.from"],
        ),
        (
            "x",
            format!("{base}environment: {{ T: {{ from: Token/t, output: clientId }} }}\n"),
            vec!["spec.environment.T.from"],
        ),
        (
            "x",
            format!("{base}environment: {{ NO_OUTPUT: {{ from: Parameter/p }} }}\n"),
            vec!["spec.environment.NO_OUTPUT"],
        ),
        (
            "x",
            format!(
                "{base}environment: {{ B: {{ value: a, from: Parameter/p, output: value }} }}\n"
            ),
            vec!["spec.environment.B"],
        ),
        (
            "x",
            format!("{base}environment: {{ L: {} }}\n", "v".repeat(5001)),
            vec!["spec.environment.L"],
        ),
        (
            "x",
            format!("{base}environment: {{ PORT: 8000 }}\n"),
            vec!["spec.environment.PORT"],
        ),
        (
            "x",
            format!("{base}environment: {{ PORT: \"8000\" }}\n"),
            vec![],
        ),
        (
            "x",
            format!("{base}lifecycle: {{ idleRuntimeSessionTimeoutSeconds: 30 }}\n"),
            vec!["spec.lifecycle.idleRuntimeSessionTimeoutSeconds"],
        ),
        (
            "x",
            format!("{base}lifecycle: {{ maxLifetimeSeconds: 28801 }}\n"),
            vec!["spec.lifecycle.maxLifetimeSeconds"],
        ),
        (
            "x",
            format!(
                "{base}lifecycle: {{ idleRuntimeSessionTimeoutSeconds: 3600, maxLifetimeSeconds: 1800 }}\n"
            ),
            vec!["spec.lifecycle.idleRuntimeSessionTimeoutSeconds"],
        ),
        (
            "x",
            format!(
                "{base}lifecycle: {{ idleRuntimeSessionTimeoutSeconds: 900, maxLifetimeSeconds: 28800 }}\n"
            ),
            vec![],
        ),
        (
            "x",
            format!("{base}authorizer: {{ jwt: {{ userPoolRef: pool, clientRefs: [c] }} }}\n"),
            vec![],
        ),
        (
            "x",
            format!("{base}authorizer: {{ jwt: {{ clientRefs: [c] }} }}\n"),
            vec!["spec.authorizer.jwt"],
        ),
        (
            "x",
            format!(
                "{base}authorizer: {{ jwt: {{ userPoolRef: p, discoveryUrl: \"https://x/.well-known/openid-configuration\", allowedClients: [c] }} }}\n"
            ),
            vec!["spec.authorizer.jwt"],
        ),
        (
            "x",
            format!(
                "{base}authorizer: {{ jwt: {{ discoveryUrl: \"http://x/.well-known/openid-configuration\", allowedClients: [c] }} }}\n"
            ),
            vec!["spec.authorizer.jwt.discoveryUrl"],
        ),
        (
            "x",
            format!("{base}authorizer: {{ jwt: {{ userPoolRef: p }} }}\n"),
            vec!["spec.authorizer.jwt"],
        ),
        (
            "x",
            format!(
                "{base}authorizer: {{ jwt: {{ userPoolRef: p, clientRefs: [], allowedScopes: [s] }} }}\n"
            ),
            vec!["spec.authorizer.jwt.clientRefs"],
        ),
        (
            "x",
            format!("{base}authorizer: {{ jwt: {{ userPoolRef: p, allowedAudience: [c] }} }}\n"),
            vec!["spec.authorizer.jwt.allowedAudience"],
        ),
        (
            "x",
            format!(
                "{base}authorizer: {{ jwt: {{ userPoolRef: p, allowedAudience: [c], tokenType: id }} }}\n"
            ),
            vec![],
        ),
        (
            "x",
            format!(
                "{base}authorizer: {{ jwt: {{ discoveryUrl: \"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_A/.well-known/openid-configuration\", allowedAudience: [c] }} }}\n"
            ),
            vec!["spec.authorizer.jwt.allowedAudience"],
        ),
        (
            "x",
            format!(
                "{base}authorizer: {{ jwt: {{ discoveryUrl: \"https://login.example.com/.well-known/openid-configuration\", allowedAudience: [api] }} }}\n"
            ),
            vec![],
        ),
        (
            "x",
            format!(
                "{base}authorizer: {{ jwt: {{ userPoolRef: p, allowedScopes: [\"has space\"] }} }}\n"
            ),
            vec!["spec.authorizer.jwt.allowedScopes[0]"],
        ),
        (
            "x",
            format!(
                "{base}authorizer: {{ jwt: {{ userPoolRef: p, clientRefs: [c] }} }}\nrequestHeaderAllowlist: [Authorization, X-Amzn-Bedrock-AgentCore-Runtime-Custom-Tenant, X-Request-Id]\n"
            ),
            vec![],
        ),
        (
            "x",
            // Authorization needs a JWT authorizer; AWS's header space is off limits but
            // for the custom prefix (with a name after it); a name twice, ignoring case.
            format!(
                "{base}requestHeaderAllowlist: [Authorization, X-Amz-Date, x-amzn-trace-id, X-Amzn-Bedrock-AgentCore-Runtime-Custom-, 1bad, \"has space\", X-Tenant, x-tenant]\n"
            ),
            vec![
                "spec.requestHeaderAllowlist[0]",
                "spec.requestHeaderAllowlist[1]",
                "spec.requestHeaderAllowlist[2]",
                "spec.requestHeaderAllowlist[3]",
                "spec.requestHeaderAllowlist[4]",
                "spec.requestHeaderAllowlist[5]",
                "spec.requestHeaderAllowlist[7]",
            ],
        ),
        (
            "x",
            format!(
                "{base}requestHeaderAllowlist: [{}]\n",
                (0..21)
                    .map(|i| format!("X-H{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            vec!["spec.requestHeaderAllowlist"],
        ),
        (
            "x",
            format!(
                "{base}authorizer: {{ jwt: {{ userPoolRef: p, customClaims: [{{ name: tenant, valueType: STRING, operator: EQUALS, value: acme }}] }} }}\n"
            ),
            vec![],
        ),
        (
            "x",
            format!(
                "{base}authorizer: {{ jwt: {{ userPoolRef: p, customClaims: [{{ name: groups, valueType: STRING, operator: CONTAINS_ANY, values: [a] }}] }} }}\n"
            ),
            vec!["spec.authorizer.jwt.customClaims[0].operator"],
        ),
        (
            "x",
            format!(
                "{base}authorizer: {{ jwt: {{ userPoolRef: p, customClaims: [{{ name: tenant, valueType: STRING, operator: LIKE, value: acme }}] }} }}\n"
            ),
            vec!["spec.authorizer.jwt.customClaims[0].operator"],
        ),
        (
            "x",
            format!("{base}tags: {{ team: mcp, \"cost center\": \"4 2\" }}\n"),
            vec![],
        ),
        (
            "x",
            format!(
                "{base}tags: {{ \"aws:x\": \"y\", \"agentcore.dev/managed-by\": me, \"bad#key\": v, ok: \"bad#value\" }}\n"
            ),
            vec![
                "spec.tags.agentcore.dev/managed-by",
                "spec.tags.aws:x",
                "spec.tags.bad#key",
                "spec.tags.ok",
            ],
        ),
    ];
    for (name, yaml, want) in cases {
        let got = problems(name, &yaml);
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, want, "{name}: {yaml}\n{got:?}");
    }
}

#[test]
fn cognito_audience_message_is_exact() {
    let got = problems(
        "x",
        "imageRef: i\nroleRef: r\nauthorizer: { jwt: { userPoolRef: p, allowedAudience: [c] } }\n",
    );
    assert_eq!(
        got,
        vec![(
            "spec.authorizer.jwt.allowedAudience".to_string(),
            "Cognito access tokens carry client_id, not aud: the runtime would answer \
             \"Claim 'aud' value mismatch\"; use allowedClients (or clientRefs) instead"
                .to_string()
        )]
    );
}

#[test]
fn references_name_their_paths() {
    let docs = parse_documents(
        "imageRef: img\nroleRef: role\nauthorizer: { jwt: { userPoolRef: pool, clientRefs: [c1, c2] } }\n",
    )
    .unwrap();
    let spec: AgentRuntimeSpec = crate::model::de::from_node(&docs[0], "spec").unwrap();
    let refs: Vec<(String, String)> = AgentRuntime::references(&spec)
        .into_iter()
        .map(|r| (r.path, r.target.to_string()))
        .collect();
    let want = [
        ("spec.imageRef", "Image/img"),
        ("spec.roleRef", "Role/role"),
        ("spec.authorizer.jwt.userPoolRef", "UserPool/pool"),
        ("spec.authorizer.jwt.clientRefs[0]", "UserPoolClient/c1"),
        ("spec.authorizer.jwt.clientRefs[1]", "UserPoolClient/c2"),
    ];
    assert_eq!(
        refs,
        want.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn resolve_fills_references() {
    use crate::kinds::ObjectKey;
    let docs = parse_documents(
        "imageRef: img\nroleRef: role\nauthorizer: { jwt: { userPoolRef: pool, clientRefs: [c1], allowedClients: [lit, zz] } }\n",
    )
    .unwrap();
    let spec: AgentRuntimeSpec = crate::model::de::from_node(&docs[0], "spec").unwrap();
    let outputs = BTreeMap::from([
        (
            ObjectKey::new("Image", "img"),
            Outputs::from([("imageUri".to_string(), "uri@sha256:1".to_string())]),
        ),
        (
            ObjectKey::new("Role", "role"),
            Outputs::from([("arn".to_string(), "arn:role".to_string())]),
        ),
        (
            ObjectKey::new("UserPool", "pool"),
            Outputs::from([(
                "discoveryUrl".to_string(),
                "https://d/.well-known/openid-configuration".to_string(),
            )]),
        ),
        (
            ObjectKey::new("UserPoolClient", "c1"),
            Outputs::from([("clientId".to_string(), "cid".to_string())]),
        ),
    ]);
    let deps = Deps::new(&outputs);
    let meta = ObjectMeta {
        name: "mcp_server_ac".into(),
        ..Default::default()
    };
    let d = resolve_runtime(&meta, &spec, &deps).unwrap();
    assert_eq!(d.name, "mcp_server_ac");
    assert_eq!(d.container_uri, "uri@sha256:1");
    assert_eq!(d.role_arn, "arn:role");
    let j = d.authorizer.unwrap();
    assert_eq!(
        j.discovery_url,
        "https://d/.well-known/openid-configuration"
    );
    assert_eq!(j.allowed_clients, vec!["cid", "lit", "zz"]);
    assert_eq!(d.lifecycle, Lifecycle::effective(None, None));
    assert_eq!(d.protocol, Protocol::Mcp);

    let missing = BTreeMap::new();
    let err = resolve_runtime(&meta, &spec, &Deps::new(&missing)).unwrap_err();
    assert_eq!(err.severity, crate::error::Severity::Waiting);
}

#[test]
fn a_secret_output_in_the_environment_is_refused_with_the_reason() {
    let found = problems(
        "x",
        "imageRef: img\nroleRef: role\nenvironment: { S: { from: Secret/s, output: arn } }\n",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    let (_, message) = &found[0];
    assert!(
        message.starts_with("a Secret output may not be"),
        "{message}"
    );
    assert!(message.contains("GetAgentRuntime"), "{message}");
    assert!(message.contains("Secrets Manager"), "{message}");
}

#[test]
fn environment_values_come_from_outputs() {
    use crate::kinds::ObjectKey;
    let docs = parse_documents(
        "imageRef: img\nroleRef: role\nenvironment: { A: text, P: { from: Parameter/p, output: value }, V: { value: lit } }\n",
    )
    .unwrap();
    let spec: AgentRuntimeSpec = crate::model::de::from_node(&docs[0], "spec").unwrap();
    let refs: Vec<(String, String)> = AgentRuntime::references(&spec)
        .into_iter()
        .map(|r| (r.path, r.target.to_string()))
        .collect();
    assert!(
        refs.contains(&("spec.environment.P.from".into(), "Parameter/p".into())),
        "{refs:?}"
    );
    let mut outputs = BTreeMap::from([
        (
            ObjectKey::new("Image", "img"),
            Outputs::from([("imageUri".to_string(), "uri@sha256:1".to_string())]),
        ),
        (
            ObjectKey::new("Role", "role"),
            Outputs::from([("arn".to_string(), "arn:role".to_string())]),
        ),
    ]);
    let meta = ObjectMeta {
        name: "x".into(),
        ..Default::default()
    };
    let waiting = resolve_runtime(&meta, &spec, &Deps::new(&outputs)).unwrap_err();
    assert_eq!(waiting.severity, crate::error::Severity::Waiting);
    assert!(
        waiting.message.contains("Parameter/p"),
        "{}",
        waiting.message
    );
    outputs.insert(
        ObjectKey::new("Parameter", "p"),
        Outputs::from([("value".to_string(), "from-ssm".to_string())]),
    );
    outputs.insert(
        ObjectKey::new("Parameter", "p"),
        Outputs::from([("value".to_string(), "v".repeat(5001))]),
    );
    let long = resolve_runtime(&meta, &spec, &Deps::new(&outputs)).unwrap_err();
    assert_eq!(long.severity, crate::error::Severity::Terminal);
    assert!(
        long.message.starts_with("spec.environment.P:"),
        "{}",
        long.message
    );
    outputs.insert(
        ObjectKey::new("Parameter", "p"),
        Outputs::from([("value".to_string(), "from-ssm".to_string())]),
    );
    let d = resolve_runtime(&meta, &spec, &Deps::new(&outputs)).unwrap();
    let want = BTreeMap::from([
        ("A".to_string(), "text".to_string()),
        ("P".to_string(), "from-ssm".to_string()),
        ("V".to_string(), "lit".to_string()),
    ]);
    assert_eq!(d.environment, want);
}

#[test]
fn declared_outputs_are_the_outputs() {
    crate::kinds::assert_declared_outputs::<AgentRuntime>(&AgentRuntime::outputs(
        &desired(),
        &observed(),
    ));
}
