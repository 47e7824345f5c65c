//! What a kind needs IAM to allow for one object (see `agentcore-controller iam-policy`):
//! the actions it calls and the resources they act on, scoped to the names the manifest
//! gives, or, where AWS picks the ID (user pools, runtimes), to what carries the
//! controller's owner tag.

use std::collections::BTreeMap;

use super::object::ObjectKey;

/// Where the policy applies: region and account (`*` when not given: any), the
/// controller instance (the owner tag's value), and the AWS names of the objects that
/// have one known offline (see `Schema::aws_name`), for objects that refer to them.
#[derive(Debug, Clone)]
pub struct Scope {
    pub region: String,
    pub account: String,
    pub instance: String,
    pub names: BTreeMap<ObjectKey, String>,
}

impl Scope {
    /// `arn:aws:{service}:{region}:{account}:{resource}`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.region, self.account
        )
    }

    /// An IAM ARN (IAM has no region).
    pub fn iam_arn(&self, resource: &str) -> String {
        format!("arn:aws:iam::{}:{resource}", self.account)
    }

    /// A Secrets Manager secret's ARN (AWS adds `-` and six characters to the name).
    pub fn secret_arn(&self, name: &str) -> String {
        self.arn("secretsmanager", &format!("secret:{name}-??????"))
    }

    /// An SSM parameter's ARN (`/a/b` is `parameter/a/b`).
    pub fn parameter_arn(&self, name: &str) -> String {
        self.arn(
            "ssm",
            &format!("parameter/{}", name.strip_prefix('/').unwrap_or(name)),
        )
    }

    /// The AWS name of the object `kind/name` refers to, or `*` when it has none known.
    pub fn name_of(&self, kind: &str, name: &str) -> String {
        self.names
            .get(&ObjectKey::new(kind, name))
            .cloned()
            .unwrap_or_else(|| "*".into())
    }
}

/// A condition on a grant, rendered with the instance as the tag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    /// The resource carries the owner tag (`aws:ResourceTag/...`).
    Owned,
    /// The request tags the new resource with the owner tag (`aws:RequestTag/...`).
    TaggedOnCreate,
    /// `iam:PassedToService` is this service principal.
    PassedTo(&'static str),
}

/// Actions allowed on resources, under a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub actions: Vec<&'static str>,
    pub resources: Vec<String>,
    pub condition: Option<Condition>,
}

impl Grant {
    pub fn new(actions: &[&'static str], resources: Vec<String>) -> Self {
        Self {
            actions: actions.to_vec(),
            resources,
            condition: None,
        }
    }

    pub fn when(mut self, condition: Condition) -> Self {
        self.condition = Some(condition);
        self
    }
}
