//! `Parameter`: an SSM Parameter Store parameter whose value may come from another
//! object's output (the guide stores the runtime ARN at `/mcp_server/runtime/agent_arn`).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ssm::types::{ParameterType, ResourceTypeForTagging, Tag};
use serde::{Deserialize, Serialize};

use super::{
    Change, Ctx, Deps, Kind, ObjectMeta, Observed, Outputs, Reference, ValueSource, Writes, compare,
};
use crate::error::{Reason, ReconcileError, Result, aws_err, read_result, write_result};
use crate::memo::{Memo, time_stamp};
use crate::model::de::FieldProblem;
use crate::model::permissions::{Grant, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ParamType {
    #[default]
    String,
    StringList,
}

impl ParamType {
    fn sdk(self) -> ParameterType {
        match self {
            ParamType::String => ParameterType::String,
            ParamType::StringList => ParameterType::StringList,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterSpec {
    /// The parameter's name in SSM, e.g. `/mcp_server/runtime/agent_arn`.
    pub name: String,
    #[serde(default, rename = "type")]
    pub param_type: ParamType,
    pub value: ValueSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredParameter {
    pub name: String,
    pub param_type: ParamType,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedParameter {
    pub param_type: Option<ParamType>,
    pub value: String,
    pub arn: String,
}

pub struct Parameter {
    ctx: Arc<Ctx>,
    /// Whether each parameter carried the owner tag when its tags were last read, by name,
    /// with its version and last change then: tags are read again when either moves, and
    /// at least every [`MEMO_MAX_AGE`](crate::memo::MEMO_MAX_AGE).
    owned: Memo<bool>,
}

/// A parameter's ARN: `arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME`, the name's leading `/`
/// not doubled.
fn parameter_arn(region: &str, account: &str, name: &str) -> String {
    let name = name.strip_prefix('/').unwrap_or(name);
    let partition = super::policy::partition(region);
    format!("arn:{partition}:ssm:{region}:{account}:parameter/{name}")
}

#[async_trait]
impl Kind for Parameter {
    const KIND: &'static str = "Parameter";
    const LANE: &'static str = "ssm";
    const OUTPUTS: &'static [&'static str] = &["name", "arn", "value"];
    type Spec = ParameterSpec;
    type Desired = DesiredParameter;
    type Observed = ObservedParameter;

    fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            owned: Memo::default(),
        }
    }

    fn aws_name(_meta: &ObjectMeta, spec: &ParameterSpec) -> Option<String> {
        Some(spec.name.clone())
    }

    fn permissions(_meta: &ObjectMeta, spec: &ParameterSpec, scope: &Scope) -> Vec<Grant> {
        vec![Grant::new(
            &[
                "ssm:GetParameter",
                "ssm:PutParameter",
                "ssm:AddTagsToResource",
                "ssm:ListTagsForResource",
                "ssm:DeleteParameter",
            ],
            vec![scope.parameter_arn(&spec.name)],
        )]
    }

    fn references(spec: &ParameterSpec) -> Vec<Reference> {
        spec.value.reference("spec.value").into_iter().collect()
    }

    fn writes(_name: &str, spec: &ParameterSpec) -> Vec<Writes> {
        vec![Writes::new("spec.name", "SSM parameter", &spec.name)]
    }

    fn validate(_name: &str, spec: &ParameterSpec, problems: &mut Vec<FieldProblem>) {
        if let Some(problem) = super::names::parameter_name_problem(&spec.name) {
            problems.push(FieldProblem::new("spec.name", problem));
        }
        spec.value.validate("spec.value", problems);
    }

    fn resolve(
        &self,
        _meta: &ObjectMeta,
        spec: &ParameterSpec,
        deps: &Deps<'_>,
    ) -> Result<DesiredParameter> {
        Ok(DesiredParameter {
            name: spec.name.clone(),
            param_type: spec.param_type,
            value: spec.value.resolve(deps)?,
        })
    }

    async fn observe(&self, d: &DesiredParameter) -> Result<Option<Observed<ObservedParameter>>> {
        let ssm = &self.ctx.aws.ssm;
        let got = ssm.get_parameter().name(&d.name).send().await;
        let Some(p) =
            read_result(format!("GetParameter {}", d.name), got)?.and_then(|got| got.parameter)
        else {
            return Ok(None);
        };
        // Every write moves the version and the last change; a parameter made again under
        // the same name starts over with new ones.
        let stamp = format!(
            "{} {}",
            p.version,
            p.last_modified_date().map(time_stamp).unwrap_or_default()
        );
        let owned = match self.owned.get(&d.name, &stamp) {
            Some(recalled) => recalled.value,
            None => {
                let tags = ssm
                    .list_tags_for_resource()
                    .resource_type(ResourceTypeForTagging::Parameter)
                    .resource_id(&d.name)
                    .send()
                    .await
                    .map_err(aws_err(format!("ListTagsForResource {}", d.name)))?;
                let owned = self
                    .ctx
                    .owns(tags.tag_list().iter().map(|t| (t.key(), t.value())));
                self.owned.put(&d.name, stamp, owned);
                owned
            }
        };
        let param_type = match p.r#type() {
            Some(ParameterType::String) => Some(ParamType::String),
            Some(ParameterType::StringList) => Some(ParamType::StringList),
            _ => None,
        };
        Ok(Some(Observed {
            owned,
            resource: ObservedParameter {
                param_type,
                value: p.value.unwrap_or_default(),
                arn: p.arn.unwrap_or_default(),
            },
        }))
    }

    fn diff(d: &DesiredParameter, o: &ObservedParameter) -> Vec<Change> {
        let mut changes = Vec::new();
        compare(
            &mut changes,
            "spec.type",
            &o.param_type,
            &Some(d.param_type),
        );
        compare(&mut changes, "spec.value", &o.value, &d.value);
        changes
    }

    fn outputs(d: &DesiredParameter, o: &ObservedParameter) -> Outputs {
        Outputs::from([
            ("name".to_string(), d.name.clone()),
            ("arn".to_string(), o.arn.clone()),
            ("value".to_string(), o.value.clone()),
        ])
    }

    async fn create(&self, d: &DesiredParameter) -> Result<()> {
        self.create_observed(d).await.map(|_| ())
    }

    /// PutParameter answers with the version only; what observe reads is what it was given:
    /// the value, the type, the owner tag, and the ARN, which SSM derives from the name.
    async fn create_observed(
        &self,
        d: &DesiredParameter,
    ) -> Result<Option<Observed<ObservedParameter>>> {
        let mut req = self
            .ctx
            .aws
            .ssm
            .put_parameter()
            .name(&d.name)
            .value(&d.value)
            .r#type(d.param_type.sdk())
            .overwrite(false);
        for (k, v) in self.ctx.owner_tags() {
            req = req.tags(
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| ReconcileError::terminal(Reason::InvalidTag, e.to_string()))?,
            );
        }
        // ParameterAlreadyExists (our own resent request, a concurrent attempt) observes
        // again rather than overwrite a parameter whose ownership is unknown.
        req.send()
            .await
            .map_err(aws_err(format!("PutParameter {}", d.name)))?;
        Ok(Some(Observed {
            owned: true,
            resource: ObservedParameter {
                param_type: Some(d.param_type),
                value: d.value.clone(),
                arn: parameter_arn(&self.ctx.aws.region, &self.ctx.aws.account_id, &d.name),
            },
        }))
    }

    async fn update(
        &self,
        d: &DesiredParameter,
        o: &Observed<ObservedParameter>,
        changes: &[Change],
    ) -> Result<()> {
        let ssm = &self.ctx.aws.ssm;
        if changes.iter().any(|c| c.field.starts_with("spec.")) {
            ssm.put_parameter()
                .name(&d.name)
                .value(&d.value)
                .r#type(d.param_type.sdk())
                .overwrite(true)
                .send()
                .await
                .map_err(aws_err(format!("PutParameter {}", d.name)))?;
        }
        if !o.owned {
            self.owned.forget(&d.name);
            let mut req = ssm
                .add_tags_to_resource()
                .resource_type(ResourceTypeForTagging::Parameter)
                .resource_id(&d.name);
            for (k, v) in self.ctx.owner_tags() {
                req =
                    req.tags(Tag::builder().key(k).value(v).build().map_err(|e| {
                        ReconcileError::terminal(Reason::InvalidTag, e.to_string())
                    })?);
            }
            req.send()
                .await
                .map_err(aws_err(format!("AddTagsToResource {}", d.name)))?;
        }
        Ok(())
    }

    async fn delete(&self, d: &DesiredParameter, _o: &ObservedParameter) -> Result<()> {
        self.owned.forget(&d.name);
        let deleted = self
            .ctx
            .aws
            .ssm
            .delete_parameter()
            .name(&d.name)
            .send()
            .await;
        write_result(format!("DeleteParameter {}", d.name), deleted)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameter_arns_as_ssm_derives_them() {
        for (region, name, want) in [
            (
                "us-east-1",
                "/mcp/agent_arn",
                "arn:aws:ssm:us-east-1:123456789012:parameter/mcp/agent_arn",
            ),
            (
                "eu-west-1",
                "plain",
                "arn:aws:ssm:eu-west-1:123456789012:parameter/plain",
            ),
            (
                "cn-north-1",
                "/x",
                "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/x",
            ),
        ] {
            assert_eq!(parameter_arn(region, "123456789012", name), want, "{name}");
        }
    }

    fn desired(value: &str) -> DesiredParameter {
        DesiredParameter {
            name: "/p".into(),
            param_type: ParamType::String,
            value: value.into(),
        }
    }

    #[test]
    fn diff_table() {
        let cases = [
            (
                ObservedParameter {
                    param_type: Some(ParamType::String),
                    value: "a".into(),
                    arn: "x".into(),
                },
                desired("a"),
                vec![],
            ),
            (
                ObservedParameter {
                    param_type: Some(ParamType::String),
                    value: "old".into(),
                    arn: "x".into(),
                },
                desired("new"),
                vec![Change::new(
                    "spec.value",
                    Some(json!("old")),
                    Some(json!("new")),
                )],
            ),
            (
                ObservedParameter {
                    param_type: Some(ParamType::StringList),
                    value: "a".into(),
                    arn: "x".into(),
                },
                desired("a"),
                vec![Change::new(
                    "spec.type",
                    Some(json!("StringList")),
                    Some(json!("String")),
                )],
            ),
        ];
        for (observed, desired, want) in cases {
            assert_eq!(Parameter::diff(&desired, &observed), want);
        }
    }

    #[test]
    fn validation_table() {
        let src = |from: Option<&str>, output: Option<&str>, value: Option<&str>| ValueSource {
            from: from.map(String::from),
            output: output.map(String::from),
            value: value.map(String::from),
        };
        let cases = [
            (
                "/mcp_server/runtime/agent_arn",
                src(Some("AgentRuntime/rt"), Some("arn"), None),
                0,
            ),
            ("plain", src(None, None, Some("v")), 0),
            ("no/leading", src(None, None, Some("v")), 1),
            ("bad name!", src(None, None, Some("v")), 1),
            ("/p", src(Some("AgentRuntime/rt"), None, None), 1),
            ("/p", src(Some("rt"), Some("arn"), None), 1),
            ("/p", src(None, None, None), 1),
            (
                "/p",
                src(Some("AgentRuntime/rt"), Some("arn"), Some("v")),
                1,
            ),
        ];
        for (name, value, count) in cases {
            let spec = ParameterSpec {
                name: name.into(),
                param_type: ParamType::String,
                value,
            };
            let mut problems = Vec::new();
            Parameter::validate("x", &spec, &mut problems);
            assert_eq!(problems.len(), count, "{name}: {problems:?}");
        }
    }

    #[test]
    fn declared_outputs_are_the_outputs() {
        crate::kinds::assert_declared_outputs::<Parameter>(&Parameter::outputs(
            &desired("v"),
            &ObservedParameter {
                param_type: Some(ParamType::String),
                value: "v".into(),
                arn: "a".into(),
            },
        ));
    }
}
