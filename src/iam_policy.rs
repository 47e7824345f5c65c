//! `agentcore-controller iam-policy`: the IAM policy the controller needs for a set of
//! manifests. Each kind says what it calls for each object (see
//! [`crate::kinds::Kind::permissions`]); the controller adds its inventory (SSM, under its
//! instance's path) and, with leader election in DynamoDB, its lease table. Grants on the
//! same resources under the same condition become one statement.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::kinds::Registry;
use crate::manifest::ManifestSet;
use crate::model::object::OWNER_TAG;
use crate::model::permissions::{Condition, Grant, Scope};

/// Where the policy applies, and what the controller itself needs besides the objects.
#[derive(Debug, Clone)]
pub struct PolicyOptions {
    /// `*`: any.
    pub region: String,
    /// `*`: any.
    pub account: String,
    pub instance: String,
    /// The DynamoDB table of `--leader-election dynamodb:TABLE`.
    pub lease_table: Option<String>,
}

/// What the controller needs whatever the manifests: its inventory, and its lease.
fn controller_grants(scope: &Scope, lease_table: Option<&str>) -> Vec<Grant> {
    let inventory = format!("/agentcore-controller/{}/inventory", scope.instance);
    let mut grants = vec![Grant::new(
        &[
            "ssm:GetParametersByPath",
            "ssm:PutParameter",
            "ssm:AddTagsToResource",
            "ssm:DeleteParameter",
        ],
        vec![
            scope.parameter_arn(&inventory),
            scope.parameter_arn(&format!("{inventory}/*")),
        ],
    )];
    if let Some(table) = lease_table {
        grants.push(Grant::new(
            &[
                "dynamodb:DescribeTable",
                "dynamodb:CreateTable",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
            ],
            vec![scope.arn("dynamodb", &format!("table/{table}"))],
        ));
    }
    grants
}

fn condition_json(c: Condition, instance: &str) -> Value {
    match c {
        Condition::Owned => {
            json!({ "StringEquals": { format!("aws:ResourceTag/{OWNER_TAG}"): instance } })
        }
        Condition::TaggedOnCreate => {
            json!({ "StringEquals": { format!("aws:RequestTag/{OWNER_TAG}"): instance } })
        }
        Condition::PassedTo(service) => {
            json!({ "StringEquals": { "iam:PassedToService": service } })
        }
    }
}

/// Every grant the manifests and the controller need.
pub fn grants(set: &ManifestSet, registry: &Registry, opts: &PolicyOptions) -> Vec<Grant> {
    let names = set
        .objects
        .iter()
        .filter_map(|o| {
            let schema = registry.schema(&o.key.kind)?;
            Some((o.key.clone(), schema.aws_name(&o.meta, &o.spec)?))
        })
        .collect();
    let scope = Scope {
        region: opts.region.clone(),
        account: opts.account.clone(),
        instance: opts.instance.clone(),
        names,
    };
    let mut all = controller_grants(&scope, opts.lease_table.as_deref());
    for o in &set.objects {
        if let Some(schema) = registry.schema(&o.key.kind) {
            all.extend(schema.permissions(&o.meta, &o.spec, &scope));
        }
    }
    all
}

/// The policy document: one statement per set of resources and condition, actions and
/// resources sorted, so that the same manifests always give the same text.
pub fn document(grants: &[Grant], instance: &str) -> Value {
    let mut statements: BTreeMap<(Option<Condition>, BTreeSet<String>), BTreeSet<&str>> =
        BTreeMap::new();
    for g in grants {
        let resources: BTreeSet<String> = g.resources.iter().cloned().collect();
        statements
            .entry((g.condition, resources))
            .or_default()
            .extend(g.actions.iter().copied());
    }
    let statements: Vec<Value> = statements
        .into_iter()
        .map(|((condition, resources), actions)| {
            let mut s = json!({
                "Effect": "Allow",
                "Action": actions.into_iter().collect::<Vec<_>>(),
                "Resource": resources.into_iter().collect::<Vec<_>>(),
            });
            if let Some(c) = condition {
                s["Condition"] = condition_json(c, instance);
            }
            s
        })
        .collect();
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// IAM's wildcard match: `*` any run of characters, `?` exactly one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Characters IAM counts against a managed policy's size (white space excluded).
pub const MANAGED_POLICY_LIMIT: usize = 6144;

/// The document's size as IAM counts it.
pub fn size(document: &Value) -> usize {
    document
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load_set;

    /// Whether `action` on `resource` is allowed by some grant (conditions taken as met):
    /// IAM's matching, `*` any run of characters and `?` one character, case-insensitive in
    /// the action.
    pub fn allows(grants: &[Grant], action: &str, resource: &str) -> bool {
        grants.iter().any(|g| {
            g.actions.iter().any(|a| a.eq_ignore_ascii_case(action))
                && g.resources.iter().any(|r| glob(r, resource))
        })
    }

    use std::path::PathBuf;

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        // (pattern, text, matches)
        let cases = [
            ("*", "arn:aws:ssm:us-east-1:1:parameter/a", true),
            (
                "arn:aws:secretsmanager:*:*:secret:a/b-??????",
                "arn:aws:secretsmanager:us-east-1:123:secret:a/b-Ab12Cd",
                true,
            ),
            (
                "arn:aws:secretsmanager:*:*:secret:a/b-??????",
                "arn:aws:secretsmanager:us-east-1:123:secret:a/bc-Ab12Cd",
                false,
            ),
            (
                "arn:aws:secretsmanager:*:*:secret:a/b-??????",
                "arn:aws:secretsmanager:us-east-1:123:secret:a/b-Ab12C",
                false,
            ),
            (
                "arn:aws:ssm:*:*:parameter/x/*",
                "arn:aws:ssm:eu-west-1:1:parameter/x/y/z",
                true,
            ),
            (
                "arn:aws:ssm:*:*:parameter/x/*",
                "arn:aws:ssm:eu-west-1:1:parameter/xy",
                false,
            ),
            ("arn:aws:iam::*:role/r", "arn:aws:iam::123:role/r", true),
            ("arn:aws:iam::*:role/r", "arn:aws:iam::123:role/r2", false),
            ("a*b*c", "abbbc", true),
            ("a*b*c", "acb", false),
        ];
        for (pattern, text, matches) in cases {
            assert_eq!(glob(pattern, text), matches, "{pattern} ~ {text}");
        }
    }

    fn guide_grants(lease: Option<&str>) -> Vec<Grant> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests");
        let registry = Registry::offline();
        let set = load_set(&[root], &registry).expect("the guide's manifests load");
        grants(
            &set,
            &registry,
            &PolicyOptions {
                region: "us-east-1".into(),
                account: "123456789012".into(),
                instance: "agentcore-controller".into(),
                lease_table: lease.map(String::from),
            },
        )
    }

    #[test]
    fn the_guides_stack_gets_what_it_calls_on_what_it_names_and_nothing_else() {
        let g = guide_grants(Some("leases"));
        let arn = |s: &str| format!("arn:aws:{s}");
        // (action, resource, allowed)
        let cases = [
            (
                "ssm:PutParameter",
                arn("ssm:us-east-1:123456789012:parameter/mcp_server/runtime/agent_arn"),
                true,
            ),
            (
                "ssm:PutParameter",
                arn("ssm:us-east-1:123456789012:parameter/other/param"),
                false,
            ),
            (
                "ssm:PutParameter",
                arn(
                    "ssm:us-east-1:123456789012:parameter/agentcore-controller/agentcore-controller/inventory/Role/x",
                ),
                true,
            ),
            (
                "ssm:GetParametersByPath",
                arn(
                    "ssm:us-east-1:123456789012:parameter/agentcore-controller/agentcore-controller/inventory",
                ),
                true,
            ),
            (
                "ssm:PutParameter",
                arn(
                    "ssm:us-east-1:123456789012:parameter/agentcore-controller/another/inventory/Role/x",
                ),
                false,
            ),
            (
                "secretsmanager:PutSecretValue",
                arn(
                    "secretsmanager:us-east-1:123456789012:secret:mcp_server/cognito/credentials-AbCdEf",
                ),
                true,
            ),
            (
                "secretsmanager:PutSecretValue",
                arn("secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"),
                false,
            ),
            (
                "secretsmanager:DeleteSecret",
                arn(
                    "secretsmanager:us-east-1:123456789012:secret:agentcore-controller/users/MCPServerPool/testuser-AbCdEf",
                ),
                true,
            ),
            (
                "iam:CreateRole",
                arn("iam::123456789012:role/agentcore-mcp_server_ac-role"),
                true,
            ),
            ("iam:CreateRole", arn("iam::123456789012:role/admin"), false),
            (
                "iam:PassRole",
                arn("iam::123456789012:role/agentcore-mcp_server_ac-role"),
                true,
            ),
            ("iam:PassRole", arn("iam::123456789012:role/admin"), false),
            (
                "ecr:PutImage",
                arn("ecr:us-east-1:123456789012:repository/mcp-server"),
                true,
            ),
            (
                "ecr:PutImage",
                arn("ecr:us-east-1:123456789012:repository/other"),
                false,
            ),
            (
                "ecr:DeleteRepository",
                arn("ecr:us-east-1:123456789012:repository/other"),
                false,
            ),
            (
                "bedrock-agentcore:UpdateAgentRuntime",
                arn("bedrock-agentcore:us-east-1:123456789012:runtime/mcp_server_ac-AbCd1234"),
                true,
            ),
            (
                "dynamodb:PutItem",
                arn("dynamodb:us-east-1:123456789012:table/leases"),
                true,
            ),
            (
                "dynamodb:DeleteTable",
                arn("dynamodb:us-east-1:123456789012:table/leases"),
                false,
            ),
            ("iam:DeleteUser", "*".to_string(), false),
            ("s3:GetObject", "*".to_string(), false),
        ];
        for (action, resource, allowed) in cases {
            assert_eq!(
                allows(&g, action, &resource),
                allowed,
                "{action} on {resource}"
            );
        }
        // PassRole only to AgentCore; runtimes and pools only when they are ours.
        let conditioned = |action: &str| {
            g.iter()
                .filter(|x| x.actions.contains(&action))
                .map(|x| x.condition)
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(
            conditioned("iam:PassRole"),
            BTreeSet::from([Some(Condition::PassedTo("bedrock-agentcore.amazonaws.com"))])
        );
        assert_eq!(
            conditioned("bedrock-agentcore:DeleteAgentRuntime"),
            BTreeSet::from([Some(Condition::Owned)])
        );
        assert_eq!(
            conditioned("cognito-idp:DeleteUserPool"),
            BTreeSet::from([Some(Condition::Owned)])
        );
        assert_eq!(
            conditioned("cognito-idp:CreateUserPool"),
            BTreeSet::from([Some(Condition::TaggedOnCreate)])
        );
        assert!(
            guide_grants(None)
                .iter()
                .all(|x| !x.actions.iter().any(|a| a.starts_with("dynamodb:")))
        );
    }

    #[test]
    fn the_document_is_stable_merged_and_within_a_managed_policys_size() {
        let g = guide_grants(None);
        let doc = document(&g, "agentcore-controller");
        assert_eq!(doc, document(&g, "agentcore-controller"));
        let statements = doc["Statement"].as_array().expect("statements");
        let keys: BTreeSet<String> = statements
            .iter()
            .map(|s| format!("{}{}", s["Resource"], s["Condition"]))
            .collect();
        assert_eq!(
            keys.len(),
            statements.len(),
            "one statement per resources and condition"
        );
        let owned = statements
            .iter()
            .find(|s| {
                s["Action"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "cognito-idp:DeleteUserPool"))
            })
            .expect("the pool statement");
        assert_eq!(
            owned["Condition"]["StringEquals"]["aws:ResourceTag/agentcore.dev/managed-by"],
            "agentcore-controller"
        );
        assert!(size(&doc) < MANAGED_POLICY_LIMIT, "{}", size(&doc));
    }
}
