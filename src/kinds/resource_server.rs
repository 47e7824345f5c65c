//! `ResourceServer`: a Cognito resource server, the API whose custom scopes
//! (`{identifier}/{scope}`) app clients may be allowed and machine-to-machine tokens carry.
//!
//! Resource servers cannot be tagged. As with app clients and users, a resource server
//! found by its identifier in the referenced pool counts as ours: the pool is ours (it
//! carries the owner tag) or was adopted explicitly with the adopt annotation, and whoever
//! owns a pool owns what lives inside it.
//!
//! The identifier names the resource server: changing it makes a new one (the old one
//! stays until deleted by hand, as a renamed app client does).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::{ResourceServerScopeType, ResourceServerType};
use serde::{Deserialize, Serialize};

use super::{Change, Ctx, Deps, Kind, ObjectMeta, Observed, Outputs, Reference, compare};
use crate::error::{Reason, ReconcileError, Result, aws_err, read_result, write_result};
use crate::model::de::FieldProblem;
use crate::model::permissions::{Condition, Grant, Scope};

/// Cognito's limit on scopes per resource server.
pub const MAX_SCOPES: usize = 100;
/// Cognito's limit on the identifier, the name, a scope name and a scope description.
const MAX_LEN: usize = 256;

/// One custom scope of a resource server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeSpec {
    /// The scope's name (no `/`); tokens and clients name it `{identifier}/{name}`.
    pub name: String,
    /// What the scope grants, 1-256 characters (Cognito requires one).
    pub description: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceServerSpec {
    /// `metadata.name` of the UserPool the resource server belongs to.
    pub user_pool_ref: String,
    /// The resource server's identifier, unique in its pool (often the API's URL, e.g.
    /// `https://api.example.com`, or a plain word such as `mcp`). The resource server is
    /// found by it; changing it makes another resource server.
    pub identifier: String,
    /// A friendly name; defaults to the identifier when that is a valid name, else to
    /// `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The custom scopes, at most 100, each name once.
    #[serde(default)]
    pub scopes: Vec<ScopeSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredResourceServer {
    pub pool_id: String,
    pub identifier: String,
    pub name: String,
    /// Scope name → description: a set, as order does not matter to Cognito.
    pub scopes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedResourceServer {
    pub name: String,
    pub scopes: BTreeMap<String, String>,
}

/// Identifier: 1-256 characters matching `[\x21\x23-\x5B\x5D-\x7E]+` (printable ASCII
/// without space, `"` and `\`).
pub fn valid_identifier(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Resource server name: 1-256 characters matching `[\w\s+=,.@-]+`, a Java pattern
/// whose classes are ASCII only: `\w` is `[a-zA-Z0-9_]` and `\s` is `[ \t\n\x0B\f\r]`.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_LEN).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b' '
                        | b'\t'
                        | b'\n'
                        | 0x0B
                        | 0x0C
                        | b'\r'
                        | b'+'
                        | b'='
                        | b','
                        | b'.'
                        | b'@'
                        | b'-'
                )
        })
}

/// Scope name: 1-256 characters matching `[\x21\x23-\x2E\x30-\x5B\x5D-\x7E]+` (the
/// identifier's characters without `/`).
pub fn valid_scope_name(name: &str) -> bool {
    valid_identifier(name) && !name.contains('/')
}

/// The name a spec gives the resource server.
fn name_of(meta_name: &str, spec: &ResourceServerSpec) -> String {
    match &spec.name {
        Some(n) => n.clone(),
        None if valid_name(&spec.identifier) => spec.identifier.clone(),
        None => meta_name.to_string(),
    }
}

/// `{identifier}/{scope}` for each scope, space-separated (as the `scope` claim lists them).
pub fn full_scopes(identifier: &str, scopes: &BTreeMap<String, String>) -> String {
    scopes
        .keys()
        .map(|s| format!("{identifier}/{s}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn observed_of(raw: &ResourceServerType) -> ObservedResourceServer {
    ObservedResourceServer {
        name: raw.name().unwrap_or_default().to_string(),
        scopes: raw
            .scopes()
            .iter()
            .map(|s| {
                (
                    s.scope_name().to_string(),
                    s.scope_description().to_string(),
                )
            })
            .collect(),
    }
}

fn sdk_scopes(d: &DesiredResourceServer) -> Result<Vec<ResourceServerScopeType>> {
    d.scopes
        .iter()
        .map(|(name, description)| {
            ResourceServerScopeType::builder()
                .scope_name(name)
                .scope_description(description)
                .build()
                .map_err(|e| {
                    ReconcileError::terminal(
                        Reason::InvalidRequest,
                        format!("scope {name} of resource server {}: {e}", d.identifier),
                    )
                })
        })
        .collect()
}

pub struct ResourceServer {
    ctx: Arc<Ctx>,
}

#[async_trait]
impl Kind for ResourceServer {
    const KIND: &'static str = "ResourceServer";
    const LANE: &'static str = "cognito-idp";
    const OUTPUTS: &'static [&'static str] = &["identifier", "scopes", "poolId"];
    const CONTAINED_IN: &'static [&'static str] = &["UserPool"];
    type Spec = ResourceServerSpec;
    type Desired = DesiredResourceServer;
    type Observed = ObservedResourceServer;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    fn permissions(_meta: &ObjectMeta, _spec: &ResourceServerSpec, scope: &Scope) -> Vec<Grant> {
        vec![
            Grant::new(
                &[
                    "cognito-idp:DescribeResourceServer",
                    "cognito-idp:CreateResourceServer",
                    "cognito-idp:UpdateResourceServer",
                    "cognito-idp:DeleteResourceServer",
                ],
                vec![scope.arn("cognito-idp", "userpool/*")],
            )
            .when(Condition::Owned),
        ]
    }

    fn references(spec: &ResourceServerSpec) -> Vec<Reference> {
        vec![Reference::new(
            "spec.userPoolRef",
            "UserPool",
            &spec.user_pool_ref,
        )]
    }

    fn validate(name: &str, spec: &ResourceServerSpec, problems: &mut Vec<FieldProblem>) {
        if spec.user_pool_ref.is_empty() {
            problems.push(FieldProblem::new(
                "spec.userPoolRef",
                "name the UserPool (its metadata.name) this resource server belongs to",
            ));
        }
        if !valid_identifier(&spec.identifier) {
            problems.push(FieldProblem::new(
                "spec.identifier",
                format!(
                    "`{}` is not a valid identifier: 1-256 printable ASCII characters without spaces, \" and \\",
                    spec.identifier
                ),
            ));
        }
        let given = name_of(name, spec);
        if !valid_name(&given) {
            let path = if spec.name.is_some() {
                "spec.name"
            } else {
                "metadata.name"
            };
            problems.push(FieldProblem::new(
                path,
                format!(
                    "`{given}` is not a valid resource server name: 1-256 characters of ASCII letters, digits, whitespace and _ + = , . @ - \
                     (spec.name defaults to the identifier when that is a valid name, else to metadata.name)"
                ),
            ));
        }
        if spec.scopes.len() > MAX_SCOPES {
            problems.push(FieldProblem::new(
                "spec.scopes",
                format!(
                    "{} scopes; Cognito allows at most {MAX_SCOPES} per resource server",
                    spec.scopes.len()
                ),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, s) in spec.scopes.iter().enumerate() {
            if !valid_scope_name(&s.name) {
                problems.push(FieldProblem::new(
                    format!("spec.scopes[{i}].name"),
                    format!(
                        "`{}` is not a valid scope name: 1-256 printable ASCII characters without spaces, /, \" and \\",
                        s.name
                    ),
                ));
            } else if !seen.insert(s.name.as_str()) {
                problems.push(FieldProblem::new(
                    format!("spec.scopes[{i}].name"),
                    format!("scope `{}` is listed twice", s.name),
                ));
            }
            if !(1..=MAX_LEN).contains(&s.description.chars().count()) {
                problems.push(FieldProblem::new(
                    format!("spec.scopes[{i}].description"),
                    "describe the scope in 1-256 characters (Cognito requires a description)",
                ));
            }
        }
    }

    fn resolve(
        &self,
        meta: &ObjectMeta,
        spec: &ResourceServerSpec,
        deps: &Deps<'_>,
    ) -> Result<DesiredResourceServer> {
        Ok(DesiredResourceServer {
            pool_id: deps.get("UserPool", &spec.user_pool_ref, "poolId")?,
            identifier: spec.identifier.clone(),
            name: name_of(&meta.name, spec),
            scopes: spec
                .scopes
                .iter()
                .map(|s| (s.name.clone(), s.description.clone()))
                .collect(),
        })
    }

    async fn observe(
        &self,
        d: &DesiredResourceServer,
    ) -> Result<Option<Observed<ObservedResourceServer>>> {
        let described = self
            .ctx
            .aws
            .cognito
            .describe_resource_server()
            .user_pool_id(&d.pool_id)
            .identifier(&d.identifier)
            .send()
            .await;
        // Not found: no such resource server, or the pool is gone and it with it.
        let found = read_result(
            format!("DescribeResourceServer {} in {}", d.identifier, d.pool_id),
            described,
        )?
        .and_then(|out| out.resource_server);
        Ok(found.map(|raw| Observed {
            // Owned when found: see the module documentation.
            owned: true,
            resource: observed_of(&raw),
        }))
    }

    fn diff(d: &DesiredResourceServer, o: &ObservedResourceServer) -> Vec<Change> {
        let mut changes = Vec::new();
        compare(&mut changes, "spec.name", &o.name, &d.name);
        // Compared as sets, shown sorted by name.
        let list = |m: &BTreeMap<String, String>| {
            m.iter()
                .map(|(name, description)| ScopeSpec {
                    name: name.clone(),
                    description: description.clone(),
                })
                .collect::<Vec<_>>()
        };
        compare(
            &mut changes,
            "spec.scopes",
            &list(&o.scopes),
            &list(&d.scopes),
        );
        changes
    }

    fn outputs(d: &DesiredResourceServer, _o: &ObservedResourceServer) -> Outputs {
        Outputs::from([
            ("identifier".to_string(), d.identifier.clone()),
            ("scopes".to_string(), full_scopes(&d.identifier, &d.scopes)),
            ("poolId".to_string(), d.pool_id.clone()),
        ])
    }

    async fn create(&self, d: &DesiredResourceServer) -> Result<()> {
        self.create_observed(d).await.map(|_| ())
    }

    /// CreateResourceServer answers with the resource server as DescribeResourceServer
    /// would.
    async fn create_observed(
        &self,
        d: &DesiredResourceServer,
    ) -> Result<Option<Observed<ObservedResourceServer>>> {
        let created = self
            .ctx
            .aws
            .cognito
            .create_resource_server()
            .user_pool_id(&d.pool_id)
            .identifier(&d.identifier)
            .name(&d.name)
            .set_scopes(Some(sdk_scopes(d)?))
            // No SDK retry: no idempotency token; a retry after a lost answer is caught by
            // observe, which finds the resource server by its identifier.
            .customize()
            .config_override(crate::aws::no_retry_cognito())
            .send()
            .await
            .map_err(aws_err(format!(
                "CreateResourceServer {} in {}",
                d.identifier, d.pool_id
            )))?;
        Ok(created.resource_server.map(|raw| Observed {
            owned: true,
            resource: observed_of(&raw),
        }))
    }

    /// UpdateResourceServer replaces the name and the whole list of scopes: one call
    /// serves every change.
    async fn update(
        &self,
        d: &DesiredResourceServer,
        _o: &Observed<ObservedResourceServer>,
        _changes: &[Change],
    ) -> Result<()> {
        self.ctx
            .aws
            .cognito
            .update_resource_server()
            .user_pool_id(&d.pool_id)
            .identifier(&d.identifier)
            .name(&d.name)
            .set_scopes(Some(sdk_scopes(d)?))
            .send()
            .await
            .map_err(aws_err(format!(
                "UpdateResourceServer {} in {}",
                d.identifier, d.pool_id
            )))?;
        Ok(())
    }

    async fn delete(&self, d: &DesiredResourceServer, _o: &ObservedResourceServer) -> Result<()> {
        let deleted = self
            .ctx
            .aws
            .cognito
            .delete_resource_server()
            .user_pool_id(&d.pool_id)
            .identifier(&d.identifier)
            .send()
            .await;
        write_result(
            format!("DeleteResourceServer {} in {}", d.identifier, d.pool_id),
            deleted,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(name: &str, description: &str) -> ScopeSpec {
        ScopeSpec {
            name: name.into(),
            description: description.into(),
        }
    }

    fn spec(identifier: &str, name: Option<&str>, scopes: Vec<ScopeSpec>) -> ResourceServerSpec {
        ResourceServerSpec {
            user_pool_ref: "pool".into(),
            identifier: identifier.into(),
            name: name.map(String::from),
            scopes,
        }
    }

    fn problems(meta_name: &str, spec: &ResourceServerSpec) -> Vec<String> {
        let mut found = Vec::new();
        ResourceServer::validate(meta_name, spec, &mut found);
        found.into_iter().map(|p| p.path).collect()
    }

    #[test]
    fn validation_table() {
        let long = "a".repeat(257);
        let max = "a".repeat(256);
        let many: Vec<ScopeSpec> = (0..101).map(|i| scope(&format!("s{i}"), "d")).collect();
        let hundred: Vec<ScopeSpec> = (0..100).map(|i| scope(&format!("s{i}"), "d")).collect();
        let cases: Vec<(&str, ResourceServerSpec, Vec<&str>)> = vec![
            (
                "api",
                spec("mcp", None, vec![scope("read", "Read")]),
                vec![],
            ),
            (
                "api",
                spec(
                    "https://api.example.com/v1",
                    Some("My API"),
                    vec![scope("read:all", "x"), scope("write", "y")],
                ),
                vec![],
            ),
            // An identifier that is no valid name: the name falls back to metadata.name.
            ("api", spec("https://api.example.com", None, vec![]), vec![]),
            (
                "a/b",
                spec("https://api.example.com", None, vec![]),
                vec!["metadata.name"],
            ),
            ("api", spec(&max, None, hundred), vec![]),
            ("api", spec("", None, vec![]), vec!["spec.identifier"]),
            (
                "api",
                spec(&long, Some("n"), vec![]),
                vec!["spec.identifier"],
            ),
            (
                "api",
                spec("has space", Some("n"), vec![]),
                vec!["spec.identifier"],
            ),
            (
                "api",
                spec("quo\"te", Some("n"), vec![]),
                vec!["spec.identifier"],
            ),
            (
                "api",
                spec("back\\slash", Some("n"), vec![]),
                vec!["spec.identifier"],
            ),
            (
                "api",
                spec("mcp", Some("no/slash"), vec![]),
                vec!["spec.name"],
            ),
            ("api", spec("mcp", Some(""), vec![]), vec!["spec.name"]),
            // ASCII classes only (Java's \w and \s): no accented letters, other scripts
            // or Unicode spaces.
            (
                "api",
                spec("mcp", Some("Café API"), vec![]),
                vec!["spec.name"],
            ),
            (
                "api",
                spec("mcp", Some("API 東京"), vec![]),
                vec!["spec.name"],
            ),
            (
                "api",
                spec("mcp", Some("no\u{a0}break"), vec![]),
                vec!["spec.name"],
            ),
            ("api", spec("mcp", Some("٣"), vec![]), vec!["spec.name"]),
            (
                "api",
                spec("mcp", Some("Tab\there, v=1.0 +x@y_z-w"), vec![]),
                vec![],
            ),
            ("api", spec("mcp", Some("vt\u{b}ff\u{c}"), vec![]), vec![]),
            // A name from a non-ASCII metadata.name is refused there.
            (
                "café",
                spec("https://api.example.com", None, vec![]),
                vec!["metadata.name"],
            ),
            ("api", spec("mcp", None, many), vec!["spec.scopes"]),
            (
                "api",
                spec("mcp", None, vec![scope("a/b", "d")]),
                vec!["spec.scopes[0].name"],
            ),
            (
                "api",
                spec("mcp", None, vec![scope("", "d")]),
                vec!["spec.scopes[0].name"],
            ),
            (
                "api",
                spec("mcp", None, vec![scope("has space", "d")]),
                vec!["spec.scopes[0].name"],
            ),
            (
                "api",
                spec("mcp", None, vec![scope("read", "d"), scope("read", "e")]),
                vec!["spec.scopes[1].name"],
            ),
            (
                "api",
                spec("mcp", None, vec![scope("read", "")]),
                vec!["spec.scopes[0].description"],
            ),
            (
                "api",
                spec("mcp", None, vec![scope("read", &long)]),
                vec!["spec.scopes[0].description"],
            ),
        ];
        for (meta_name, spec, want) in cases {
            assert_eq!(problems(meta_name, &spec), want, "{meta_name} {spec:?}");
        }
        let mut unnamed = spec("mcp", None, vec![]);
        unnamed.user_pool_ref.clear();
        assert_eq!(problems("api", &unnamed), ["spec.userPoolRef"]);
    }

    fn scopes(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        items
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_string()))
            .collect()
    }

    fn desired(name: &str, items: &[(&str, &str)]) -> DesiredResourceServer {
        DesiredResourceServer {
            pool_id: "us-east-1_abc".into(),
            identifier: "mcp".into(),
            name: name.into(),
            scopes: scopes(items),
        }
    }

    fn observed(name: &str, items: &[(&str, &str)]) -> ObservedResourceServer {
        ObservedResourceServer {
            name: name.into(),
            scopes: scopes(items),
        }
    }

    #[test]
    fn diff_table() {
        let rw = [("read", "Read"), ("write", "Write")];
        let wr = [("write", "Write"), ("read", "Read")];
        let cases = [
            (observed("mcp", &rw), desired("mcp", &wr), vec![]),
            (
                observed("mcp", &rw),
                desired("MCP API", &rw),
                vec![Change::new(
                    "spec.name",
                    Some(json!("mcp")),
                    Some(json!("MCP API")),
                )],
            ),
            (
                observed("mcp", &[("write", "Write"), ("admin", "A")]),
                desired("mcp", &wr),
                vec![Change::new(
                    "spec.scopes",
                    Some(json!([
                        {"name": "admin", "description": "A"},
                        {"name": "write", "description": "Write"}
                    ])),
                    Some(json!([
                        {"name": "read", "description": "Read"},
                        {"name": "write", "description": "Write"}
                    ])),
                )],
            ),
            // A description changed is a change too.
            (
                observed("mcp", &[("read", "old")]),
                desired("mcp", &[("read", "new")]),
                vec![Change::new(
                    "spec.scopes",
                    Some(json!([{"name": "read", "description": "old"}])),
                    Some(json!([{"name": "read", "description": "new"}])),
                )],
            ),
        ];
        for (o, d, want) in cases {
            assert_eq!(ResourceServer::diff(&d, &o), want, "{o:?} → {d:?}");
        }
    }

    #[test]
    fn observed_reads_the_description() {
        let raw = ResourceServerType::builder()
            .identifier("mcp")
            .name("mcp")
            .scopes(
                ResourceServerScopeType::builder()
                    .scope_name("write")
                    .scope_description("W")
                    .build()
                    .expect("scope"),
            )
            .scopes(
                ResourceServerScopeType::builder()
                    .scope_name("read")
                    .scope_description("R")
                    .build()
                    .expect("scope"),
            )
            .build();
        assert_eq!(
            observed_of(&raw),
            observed("mcp", &[("read", "R"), ("write", "W")])
        );
    }

    #[test]
    fn outputs_list_full_scope_names() {
        let d = desired("mcp", &[("write", "W"), ("read", "R")]);
        let out = ResourceServer::outputs(&d, &observed("mcp", &[]));
        assert_eq!(out["scopes"], "mcp/read mcp/write");
        assert_eq!(out["identifier"], "mcp");
        crate::kinds::assert_declared_outputs::<ResourceServer>(&out);
    }

    #[test]
    fn manifest_spec_parses() {
        use crate::kinds::Registry;
        use crate::model::yaml::parse_documents;
        let registry = Registry::offline();
        let schema = registry.schema("ResourceServer").expect("registered");
        let yaml =
            "userPoolRef: pool\nidentifier: mcp\nscopes:\n  - {name: read, description: Read}\n";
        let docs = parse_documents(yaml).expect("yaml");
        let (spec, problems) = schema.parse("api", &docs[0]);
        assert!(problems.is_empty(), "{problems:?}");
        let spec = spec.expect("valid");
        assert_eq!(
            schema.references(&spec),
            vec![Reference::new("spec.userPoolRef", "UserPool", "pool")]
        );
        let docs = parse_documents(
            "userPoolRef: pool\nidentifier: mcp\nscopes:\n  - {name: a/b, description: x}\n",
        )
        .expect("yaml");
        let problems = schema.parse("api", &docs[0]).1;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "spec.scopes[0].name");
    }
}
