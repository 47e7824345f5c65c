//! `Secret`: a Secrets Manager secret whose value is a JSON object; the manifest owns the
//! keys it lists, and keys other writers add (e.g. a token renewer) are kept.
//!
//! ```yaml
//! kind: Secret
//! metadata: { name: cognito-credentials }
//! spec:
//!   data:
//!     client_id: { from: UserPoolClient/MCPServerPoolClient, output: clientId }
//!     pool_id: { from: UserPool/MCPServerPool, output: poolId }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    Change, Ctx, DeletionPolicy, Deps, Kind, ObjectMeta, Observed, Outputs, Reference, ValueSource,
    Writes, secrets_manager,
};
use crate::error::{Reason, ReconcileError, Result, aws_err};
use crate::model::de::FieldProblem;
use crate::model::permissions::{Grant, Scope};

/// Field of the change that reports a secret scheduled for deletion (it is restored).
pub const DELETED_FIELD: &str = "deletedDate";
const MASK: &str = "***";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpec {
    /// The secret's name in Secrets Manager: 1-512 of letters, digits and / _ + = . @ -.
    /// Defaults to metadata.name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Free text (at most 2048 characters). Omitted: left as it is in AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The keys of the secret's JSON value, each `{ value: literal }` or
    /// `{ from: Kind/name, output: x }`. Keys not listed here are left untouched.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, ValueSource>,
}

#[derive(Debug, Clone)]
pub struct DesiredSecret {
    pub name: String,
    pub description: Option<String>,
    pub data: BTreeMap<String, SecretString>,
}

#[derive(Debug, Clone)]
pub struct ObservedSecret {
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    /// When the secret is scheduled for deletion (it then has no readable value).
    pub deleted_date: Option<String>,
    /// The current value (`SecretString`); `None` when it has none or while it is deleted.
    pub value: Option<SecretString>,
}

pub use super::names::valid_secret_name;

/// The current value as a JSON object: `Ok(empty)` when there is none, `Err(())` when it is
/// something else (plain text, a JSON array…).
fn current_object(value: Option<&SecretString>) -> std::result::Result<Map<String, Value>, ()> {
    match value {
        None => Ok(Map::new()),
        Some(s) => match serde_json::from_str::<Value>(s.expose_secret()) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(()),
        },
    }
}

/// The value to write: the current object with the desired keys set, or `None` when every
/// desired key already has its value. Fails (without quoting anything) when the current
/// value is not a JSON object, since merging into it would destroy it.
fn merged_value(
    name: &str,
    current: Option<&SecretString>,
    desired: &BTreeMap<String, SecretString>,
) -> Result<Option<SecretString>> {
    let mut object = current_object(current).map_err(|()| {
        ReconcileError::terminal(
            Reason::SecretNotJson,
            format!(
                "secret {name} holds a value that is not a JSON object, so the keys of spec.data \
                 cannot be merged into it; replace its value with a JSON object, or use another secretName"
            ),
        )
    })?;
    let mut changed = false;
    for (k, v) in desired {
        if object.get(k).and_then(Value::as_str) != Some(v.expose_secret()) {
            object.insert(k.clone(), Value::String(v.expose_secret().to_string()));
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    let text = serde_json::to_string(&Value::Object(object)).map_err(|_| {
        ReconcileError::terminal(
            Reason::InvalidValue,
            format!("secret {name}: value does not serialise"),
        )
    })?;
    Ok(Some(SecretString::from(text)))
}

/// The initial value of a new secret: exactly the desired keys.
fn initial_value(desired: &BTreeMap<String, SecretString>) -> SecretString {
    let object: Map<String, Value> = desired
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.expose_secret().to_string())))
        .collect();
    SecretString::from(Value::Object(object).to_string())
}

pub struct Secret {
    ctx: Arc<Ctx>,
}

#[async_trait]
impl Kind for Secret {
    const KIND: &'static str = "Secret";
    const LANE: &'static str = "secretsmanager";
    const OUTPUTS: &'static [&'static str] = &["arn", "name"];
    const DEFAULT_DELETION_POLICY: DeletionPolicy = DeletionPolicy::Retain;
    type Spec = SecretSpec;
    type Desired = DesiredSecret;
    type Observed = ObservedSecret;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    fn permissions(meta: &ObjectMeta, spec: &SecretSpec, scope: &Scope) -> Vec<Grant> {
        let names: Vec<String> = Self::writes(&meta.name, spec)
            .into_iter()
            .map(|w| w.name)
            .collect();
        super::secrets_manager::grants(scope, &names)
    }

    fn references(spec: &SecretSpec) -> Vec<Reference> {
        spec.data
            .iter()
            .filter_map(|(k, v)| v.reference(&format!("spec.data.{k}")))
            .collect()
    }

    fn writes(name: &str, spec: &SecretSpec) -> Vec<Writes> {
        vec![match &spec.secret_name {
            Some(n) => Writes::new("spec.secretName", "secret", n),
            None => Writes::new("metadata.name", "secret", name),
        }]
    }

    fn validate(name: &str, spec: &SecretSpec, problems: &mut Vec<FieldProblem>) {
        let rule = "1-512 characters of ASCII letters, digits and / _ + = . @ -";
        match &spec.secret_name {
            Some(n) if !valid_secret_name(n) => problems.push(FieldProblem::new(
                "spec.secretName",
                format!("`{n}` is not a valid secret name: {rule}"),
            )),
            None if !valid_secret_name(name) => problems.push(FieldProblem::new(
                "metadata.name",
                format!("`{name}` is not a valid secret name: {rule}; rename the object or set spec.secretName"),
            )),
            _ => {}
        }
        if let Some(d) = &spec.description
            && d.chars().count() > 2048
        {
            problems.push(FieldProblem::new(
                "spec.description",
                "longer than Secrets Manager's 2048 characters",
            ));
        }
        for (k, v) in &spec.data {
            let path = format!("spec.data.{k}");
            if k.is_empty() {
                problems.push(FieldProblem::new(&path, "a key must not be empty"));
            }
            v.validate(&path, problems);
        }
    }

    fn resolve(
        &self,
        meta: &ObjectMeta,
        spec: &SecretSpec,
        deps: &Deps<'_>,
    ) -> Result<DesiredSecret> {
        resolve_secret(meta, spec, deps)
    }

    async fn observe(&self, d: &DesiredSecret) -> Result<Option<Observed<ObservedSecret>>> {
        let Some(described) = secrets_manager::describe(&self.ctx, &d.name).await? else {
            return Ok(None);
        };
        let owned = self.ctx.owns(
            described
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
        );
        let arn = described.arn().unwrap_or(&d.name).to_string();
        let deleted_date = described.deleted_date().map(|t| {
            t.fmt(Format::DateTime)
                .unwrap_or_else(|_| format!("{} seconds after the epoch", t.secs()))
        });
        // A secret scheduled for deletion has no readable value (GetSecretValue answers
        // InvalidRequestException on AWS and moto): read it after restoring.
        let value = if deleted_date.is_some() {
            None
        } else {
            secrets_manager::value(&self.ctx, &arn).await?
        };
        Ok(Some(Observed {
            owned,
            resource: ObservedSecret {
                name: described.name().unwrap_or(&d.name).to_string(),
                description: described.description().map(str::to_string),
                arn,
                deleted_date,
                value,
            },
        }))
    }

    fn diff(d: &DesiredSecret, o: &ObservedSecret) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some(date) = &o.deleted_date {
            // Scheduled for deletion: the manifest still wants it, so update restores it
            // (RestoreSecret keeps every key, including those other writers added). Its value
            // cannot be read until then; update merges the keys after restoring.
            changes.push(Change::new(
                DELETED_FIELD,
                Some(Value::String(date.clone())),
                None,
            ));
        }
        if let Some(desc) = &d.description
            && o.description.as_deref().unwrap_or_default() != desc
        {
            changes.push(Change::new(
                "spec.description",
                Some(Value::String(o.description.clone().unwrap_or_default())),
                Some(Value::String(desc.clone())),
            ));
        }
        if o.deleted_date.is_some() {
            return changes;
        }
        let current = current_object(o.value.as_ref()).unwrap_or_default();
        for (k, v) in &d.data {
            let now = current.get(k);
            if now.and_then(Value::as_str) != Some(v.expose_secret()) {
                changes.push(Change::new(
                    format!("spec.data.{k}"),
                    now.map(|_| Value::String(MASK.into())),
                    Some(Value::String(MASK.into())),
                ));
            }
        }
        changes
    }

    fn outputs(_d: &DesiredSecret, o: &ObservedSecret) -> Outputs {
        Outputs::from([
            ("arn".to_string(), o.arn.clone()),
            ("name".to_string(), o.name.clone()),
        ])
    }

    async fn create(&self, d: &DesiredSecret) -> Result<()> {
        let value = initial_value(&d.data);
        // The SDK fills ClientRequestToken (the first version's ID) and reuses it on its own
        // retries; across reconciles, observe finds the secret by name first.
        let req = self
            .ctx
            .aws
            .secrets
            .create_secret()
            .name(&d.name)
            .secret_string(value.expose_secret())
            .set_description(d.description.clone())
            .set_tags(Some(secrets_manager::owner_tags(&self.ctx)));
        match req.send().await {
            Ok(_) => Ok(()),
            // Created concurrently, or (AWS) still being force-deleted: look again next pass.
            Err(e)
                if e.as_service_error().is_some_and(|se| {
                    se.is_resource_exists_exception()
                        || (se.code() == Some("InvalidRequestException")
                            && se
                                .message()
                                .is_some_and(|m| m.contains("scheduled for deletion")))
                }) =>
            {
                Err(ReconcileError::recoverable(
                    Reason::SecretNameBusy,
                    format!(
                        "secret {} cannot be created yet: a secret with this name exists or is being deleted",
                        d.name
                    ),
                ))
            }
            Err(e) => Err(aws_err(format!("CreateSecret {}", d.name))(e)),
        }
    }

    async fn update(
        &self,
        d: &DesiredSecret,
        o: &Observed<ObservedSecret>,
        changes: &[Change],
    ) -> Result<()> {
        let sm = &self.ctx.aws.secrets;
        let id = o.resource.arn.as_str();
        let restored = o.resource.deleted_date.is_some();
        if restored {
            match sm.restore_secret().secret_id(id).send().await {
                Ok(_) => {}
                // AWS: a secret deleted with ForceDeleteWithoutRecovery can be seen for a
                // short while and cannot be restored; it will be gone (and created) shortly.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_invalid_request_exception()) =>
                {
                    return Err(ReconcileError::recoverable(
                        Reason::SecretBeingDeleted,
                        format!(
                            "secret {} is being deleted and cannot be restored; retrying",
                            d.name
                        ),
                    ));
                }
                Err(e) => return Err(aws_err(format!("RestoreSecret {}", d.name))(e)),
            }
        }
        if let Some(desc) = &d.description
            && changes.iter().any(|c| c.field == "spec.description")
        {
            sm.update_secret()
                .secret_id(id)
                .description(desc)
                .send()
                .await
                .map_err(aws_err(format!("UpdateSecret {}", d.name)))?;
        }
        if restored || changes.iter().any(|c| c.field.starts_with("spec.data.")) {
            // Read again right before writing: other writers may have added keys since observe.
            let current = secrets_manager::value(&self.ctx, id).await?;
            if let Some(value) = merged_value(&d.name, current.as_ref(), &d.data)? {
                sm.put_secret_value()
                    .secret_id(id)
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map_err(aws_err(format!("PutSecretValue {}", d.name)))?;
            }
        }
        if !o.owned {
            secrets_manager::tag_owned(&self.ctx, id).await?;
        }
        Ok(())
    }

    async fn delete(&self, _d: &DesiredSecret, o: &ObservedSecret) -> Result<()> {
        secrets_manager::delete_now(&self.ctx, &o.arn).await
    }
}

/// Fill in the data values from the dependencies' outputs. Pure.
fn resolve_secret(meta: &ObjectMeta, spec: &SecretSpec, deps: &Deps<'_>) -> Result<DesiredSecret> {
    let mut data = BTreeMap::new();
    for (k, v) in &spec.data {
        data.insert(k.clone(), SecretString::from(v.resolve(deps)?));
    }
    Ok(DesiredSecret {
        name: spec
            .secret_name
            .clone()
            .unwrap_or_else(|| meta.name.clone()),
        description: spec.description.clone(),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::ObjectKey;
    use crate::model::yaml::parse_documents;
    use serde_json::json;

    fn desired(pairs: &[(&str, &str)]) -> DesiredSecret {
        DesiredSecret {
            name: "s".into(),
            description: None,
            data: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
                .collect(),
        }
    }

    fn observed(value: Option<&str>) -> ObservedSecret {
        ObservedSecret {
            arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf".into(),
            name: "s".into(),
            description: None,
            deleted_date: None,
            value: value.map(|v| SecretString::from(v.to_string())),
        }
    }

    #[test]
    fn diff_table() {
        let masked = || Some(json!("***"));
        let cases: Vec<(&str, DesiredSecret, ObservedSecret, Vec<Change>)> = vec![
            (
                "converged",
                desired(&[("a", "1")]),
                observed(Some(r#"{"a":"1"}"#)),
                vec![],
            ),
            (
                "other writers' keys are kept and not reported",
                desired(&[("a", "1")]),
                observed(Some(r#"{"a":"1","token":"t"}"#)),
                vec![],
            ),
            (
                "different value",
                desired(&[("a", "2")]),
                observed(Some(r#"{"a":"1"}"#)),
                vec![Change::new("spec.data.a", masked(), masked())],
            ),
            (
                "missing key",
                desired(&[("a", "1"), ("b", "2")]),
                observed(Some(r#"{"a":"1"}"#)),
                vec![Change::new("spec.data.b", None, masked())],
            ),
            (
                "no value yet",
                desired(&[("a", "1")]),
                observed(None),
                vec![Change::new("spec.data.a", None, masked())],
            ),
            (
                "number is not the string",
                desired(&[("a", "1")]),
                observed(Some(r#"{"a":1}"#)),
                vec![Change::new("spec.data.a", masked(), masked())],
            ),
            (
                "plain text value",
                desired(&[("a", "1")]),
                observed(Some("hunter2")),
                vec![Change::new("spec.data.a", None, masked())],
            ),
            (
                "no keys wanted",
                desired(&[]),
                observed(Some("anything")),
                vec![],
            ),
            (
                "scheduled for deletion",
                desired(&[("a", "1")]),
                ObservedSecret {
                    deleted_date: Some("2030-01-01T00:00:00Z".into()),
                    ..observed(None)
                },
                vec![Change::new(
                    DELETED_FIELD,
                    Some(json!("2030-01-01T00:00:00Z")),
                    None,
                )],
            ),
            (
                "description",
                DesiredSecret {
                    description: Some("new".into()),
                    ..desired(&[])
                },
                observed(None),
                vec![Change::new(
                    "spec.description",
                    Some(json!("")),
                    Some(json!("new")),
                )],
            ),
            (
                "omitted description is left alone",
                desired(&[]),
                ObservedSecret {
                    description: Some("old".into()),
                    ..observed(None)
                },
                vec![],
            ),
        ];
        for (name, d, o, want) in cases {
            let got = Secret::diff(&d, &o);
            assert_eq!(got, want, "{name}");
            let text = serde_json::to_string(&got).unwrap_or_default();
            for secret in ["\"1\"", "\"2\"", "hunter2", "\"t\""] {
                assert!(!text.contains(secret), "{name}: {secret} leaked in {text}");
            }
        }
    }

    #[test]
    fn merge_table() {
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            &'a [(&'a str, &'a str)],
            Option<Value>,
        );
        let cases: Vec<Case> = vec![
            (
                "nothing to do",
                Some(r#"{"a":"1","x":"y"}"#),
                &[("a", "1")],
                None,
            ),
            (
                "keeps other keys",
                Some(r#"{"a":"1","token":"t"}"#),
                &[("a", "2"), ("b", "3")],
                Some(json!({"a": "2", "token": "t", "b": "3"})),
            ),
            (
                "no current value",
                None,
                &[("a", "1")],
                Some(json!({"a": "1"})),
            ),
            ("no keys", None, &[], None),
        ];
        for (name, current, want_keys, want) in cases {
            let current = current.map(|c| SecretString::from(c.to_string()));
            let got = merged_value("s", current.as_ref(), &desired(want_keys).data)
                .unwrap()
                .map(|v| serde_json::from_str::<Value>(v.expose_secret()).unwrap());
            assert_eq!(got, want, "{name}");
        }
        for not_object in ["plain", "[1,2]", "\"str\""] {
            let current = SecretString::from(not_object.to_string());
            let err = merged_value("s", Some(&current), &desired(&[("a", "1")]).data).unwrap_err();
            assert!(err.is_terminal());
            assert!(!err.message.contains(not_object), "{}", err.message);
        }
    }

    #[test]
    fn initial_value_is_the_data_object() {
        let v = initial_value(&desired(&[("b", "2"), ("a", "1")]).data);
        assert_eq!(
            serde_json::from_str::<Value>(v.expose_secret()).unwrap(),
            json!({"a": "1", "b": "2"})
        );
        assert_eq!(initial_value(&BTreeMap::new()).expose_secret(), "{}");
    }

    fn problems(name: &str, yaml: &str) -> Vec<String> {
        crate::kinds::problem_paths::<Secret>(name, yaml)
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, &str, Vec<&str>)> = vec![
            (
                "mcp_server/cognito/credentials",
                "data: { a: { value: x } }\n",
                vec![],
            ),
            (
                "bad name!",
                "data: { a: { value: x } }\n",
                vec!["metadata.name"],
            ),
            ("bad name!", "secretName: good/name+=.@-_\n", vec![]),
            ("x", "secretName: \"has space\"\n", vec!["spec.secretName"]),
            ("x", "secretName: \"é\"\n", vec!["spec.secretName"]),
            ("x", "secretName: aaaaaaaaaa\n", vec![]),
            (
                "x",
                "data: { a: { from: UserPool/p } }\n",
                vec!["spec.data.a"],
            ),
            (
                "x",
                "data: { a: { from: nokind, output: o } }\n",
                vec!["spec.data.a.from"],
            ),
            (
                "x",
                "data: { a: { value: x, from: UserPool/p, output: o } }\n",
                vec!["spec.data.a"],
            ),
            ("x", "data: {}\n", vec![]),
            ("x", "bogus: 1\n", vec!["spec.bogus"]),
        ];
        for (name, yaml, want) in cases {
            assert_eq!(problems(name, yaml), want, "{name}: {yaml}");
        }
        let long = format!("secretName: {}\n", "a".repeat(513));
        assert_eq!(problems("x", &long), vec!["spec.secretName"]);
        let max = format!("secretName: {}\n", "a".repeat(512));
        assert_eq!(problems("x", &max), Vec::<String>::new());
    }

    #[test]
    fn references_and_resolve() {
        let docs = parse_documents(
            "data:\n  client_id: { from: UserPoolClient/c, output: clientId }\n  region: { value: us-east-1 }\n",
        )
        .unwrap();
        let spec: SecretSpec = crate::model::de::from_node(&docs[0], "spec").unwrap();
        let refs: Vec<(String, String)> = Secret::references(&spec)
            .into_iter()
            .map(|r| (r.path, r.target.to_string()))
            .collect();
        assert_eq!(
            refs,
            vec![(
                "spec.data.client_id.from".to_string(),
                "UserPoolClient/c".to_string()
            )]
        );
        let outputs = BTreeMap::from([(
            ObjectKey::new("UserPoolClient", "c"),
            Outputs::from([("clientId".to_string(), "cid".to_string())]),
        )]);
        let meta = ObjectMeta {
            name: "creds".into(),
            ..Default::default()
        };
        let d = resolve_secret(&meta, &spec, &Deps::new(&outputs)).unwrap();
        assert_eq!(d.name, "creds");
        let plain: BTreeMap<&str, &str> = d
            .data
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose_secret()))
            .collect();
        assert_eq!(
            plain,
            BTreeMap::from([("client_id", "cid"), ("region", "us-east-1")])
        );
        assert!(
            !format!("{d:?}").contains("cid"),
            "Debug must not show values"
        );
    }

    #[test]
    fn declared_outputs_are_the_outputs() {
        crate::kinds::assert_declared_outputs::<Secret>(&Secret::outputs(
            &desired(&[("k", "v")]),
            &observed(Some("{}")),
        ));
    }
}
