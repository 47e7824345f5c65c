//! Custom claim rules of a runtime's JWT authorizer (`customClaims`): a claim the token
//! must carry, and what its value must match. As written in the manifest, checked against
//! AgentCore's constraints, normalised for comparison, and turned into AgentCore's types
//! and back.

use aws_sdk_bedrockagentcorecontrol::types::{
    AuthorizingClaimMatchValueType, ClaimMatchOperatorType, ClaimMatchValueType,
    CustomClaimValidationType, InboundTokenClaimValueType,
};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::de::FieldProblem;

/// The claim's type in the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClaimValueType {
    #[serde(rename = "STRING")]
    String,
    #[serde(rename = "STRING_ARRAY")]
    StringArray,
}

/// How the claim's value is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClaimOperator {
    /// A STRING claim equal to `value`.
    #[serde(rename = "EQUALS")]
    Equals,
    /// A STRING_ARRAY claim holding `value`.
    #[serde(rename = "CONTAINS")]
    Contains,
    /// A STRING_ARRAY claim holding any of `values`.
    #[serde(rename = "CONTAINS_ANY")]
    ContainsAny,
}

/// One rule as the manifest writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSpec {
    /// The claim's name in the token, e.g. `tenant` or `cognito:groups` (letters, digits,
    /// `_`, `.`, `/`, `:`; at most 255).
    pub name: String,
    /// `STRING` or `STRING_ARRAY`.
    pub value_type: ClaimValueType,
    /// `EQUALS` (STRING), `CONTAINS` (STRING_ARRAY, with `value`) or `CONTAINS_ANY`
    /// (STRING_ARRAY, with `values`).
    pub operator: ClaimOperator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// A rule, normalised: the values of CONTAINS_ANY sorted and deduplicated, so that two
/// rules that match the same tokens compare equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    pub name: String,
    pub value_type: ClaimValueType,
    pub operator: ClaimOperator,
    pub values: Vec<String>,
}

impl Claim {
    /// From a rule that passed [`validate`].
    pub fn of(spec: &ClaimSpec) -> Self {
        let mut values: Vec<String> = match (&spec.value, &spec.values) {
            (Some(v), _) => vec![v.clone()],
            (None, Some(vs)) => vs.clone(),
            (None, None) => Vec::new(),
        };
        values.sort();
        values.dedup();
        Self {
            name: spec.name.clone(),
            value_type: spec.value_type,
            operator: spec.operator,
            values,
        }
    }

    pub fn to_sdk(&self) -> Result<CustomClaimValidationType> {
        let value = match self.operator {
            ClaimOperator::ContainsAny => {
                ClaimMatchValueType::MatchValueStringList(self.values.clone())
            }
            _ => ClaimMatchValueType::MatchValueString(
                self.values.first().cloned().unwrap_or_default(),
            ),
        };
        let operator = match self.operator {
            ClaimOperator::Equals => ClaimMatchOperatorType::Equals,
            ClaimOperator::Contains => ClaimMatchOperatorType::Contains,
            ClaimOperator::ContainsAny => ClaimMatchOperatorType::ContainsAny,
        };
        let value_type = match self.value_type {
            ClaimValueType::String => InboundTokenClaimValueType::String,
            ClaimValueType::StringArray => InboundTokenClaimValueType::StringArray,
        };
        CustomClaimValidationType::builder()
            .inbound_token_claim_name(&self.name)
            .inbound_token_claim_value_type(value_type)
            .authorizing_claim_match_value(
                AuthorizingClaimMatchValueType::builder()
                    .claim_match_value(value)
                    .claim_match_operator(operator)
                    .build()
                    .map_err(super::sdk::build_err)?,
            )
            .build()
            .map_err(super::sdk::build_err)
    }

    /// From what AgentCore reports; None for a rule this controller cannot express (an
    /// operator or type newer than it), which then shows as drift.
    pub fn from_sdk(c: &CustomClaimValidationType) -> Option<Self> {
        let value_type = match c.inbound_token_claim_value_type() {
            InboundTokenClaimValueType::String => ClaimValueType::String,
            InboundTokenClaimValueType::StringArray => ClaimValueType::StringArray,
            _ => return None,
        };
        let m = c.authorizing_claim_match_value()?;
        let operator = match m.claim_match_operator() {
            ClaimMatchOperatorType::Equals => ClaimOperator::Equals,
            ClaimMatchOperatorType::Contains => ClaimOperator::Contains,
            ClaimMatchOperatorType::ContainsAny => ClaimOperator::ContainsAny,
            _ => return None,
        };
        let mut values = match m.claim_match_value()? {
            ClaimMatchValueType::MatchValueString(v) => vec![v.clone()],
            ClaimMatchValueType::MatchValueStringList(vs) => vs.clone(),
            _ => return None,
        };
        values.sort();
        values.dedup();
        Some(Self {
            name: c.inbound_token_claim_name().to_string(),
            value_type,
            operator,
            values,
        })
    }
}

/// The rules, sorted: AgentCore keeps them in no particular order.
pub fn normalised(mut claims: Vec<Claim>) -> Vec<Claim> {
    claims.sort();
    claims.dedup();
    claims
}

/// Check `claims` (at `path`) against AgentCore's constraints: a name of
/// `[A-Za-z0-9_./:]` (1-255), EQUALS only on a STRING claim with `value`, CONTAINS on a
/// STRING_ARRAY with `value`, CONTAINS_ANY on a STRING_ARRAY with `values`, and values of
/// `[A-Za-z0-9_.-]` (1-255).
pub fn validate(path: &str, claims: &[ClaimSpec], problems: &mut Vec<FieldProblem>) {
    if claims.is_empty() {
        problems.push(FieldProblem::new(
            path,
            "an empty list: omit customClaims for none",
        ));
    }
    for (i, c) in claims.iter().enumerate() {
        let at = |field: &str| format!("{path}[{i}].{field}");
        let name_ok = !c.name.is_empty()
            && c.name.len() <= 255
            && c.name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_./:".contains(ch));
        if !name_ok {
            problems.push(FieldProblem::new(
                at("name"),
                format!(
                    "`{}` is not a claim name AgentCore takes: letters, digits, `_`, `.`, `/` or `:` (1-255)",
                    c.name
                ),
            ));
        }
        let (want_type, list) = match c.operator {
            ClaimOperator::Equals => (ClaimValueType::String, false),
            ClaimOperator::Contains => (ClaimValueType::StringArray, false),
            ClaimOperator::ContainsAny => (ClaimValueType::StringArray, true),
        };
        if c.value_type != want_type {
            problems.push(FieldProblem::new(
                at("operator"),
                format!(
                    "{} matches a {} claim, not a {}: EQUALS for STRING; CONTAINS or CONTAINS_ANY for STRING_ARRAY",
                    word(c.operator),
                    type_word(want_type),
                    type_word(c.value_type)
                ),
            ));
        }
        let values: Vec<&String> = match (list, &c.value, &c.values) {
            (false, Some(v), None) => vec![v],
            (true, None, Some(vs)) if !vs.is_empty() => vs.iter().collect(),
            (false, _, _) => {
                problems.push(FieldProblem::new(
                    at("value"),
                    format!("{} takes one `value` (not `values`)", word(c.operator)),
                ));
                continue;
            }
            (true, _, _) => {
                problems.push(FieldProblem::new(
                    at("values"),
                    "CONTAINS_ANY takes `values`, a list of one or more (not `value`)",
                ));
                continue;
            }
        };
        for v in values {
            let ok = !v.is_empty()
                && v.len() <= 255
                && v.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch));
            if !ok {
                problems.push(FieldProblem::new(
                    at(if list { "values" } else { "value" }),
                    format!("`{v}` is not a value AgentCore matches: letters, digits, `_`, `.` or `-` (1-255)"),
                ));
            }
        }
    }
}

/// The rules of an authorizer as AWS answers it, leaving out any this controller cannot
/// read (an operator newer than it), normalised.
pub(crate) fn readable(rules: &[CustomClaimValidationType]) -> Vec<Claim> {
    normalised(rules.iter().filter_map(Claim::from_sdk).collect())
}

/// AgentCore's name of an operator (`EQUALS`, ...).
pub(crate) fn word(op: ClaimOperator) -> &'static str {
    match op {
        ClaimOperator::Equals => "EQUALS",
        ClaimOperator::Contains => "CONTAINS",
        ClaimOperator::ContainsAny => "CONTAINS_ANY",
    }
}

/// AgentCore's name of a value type (`STRING`, `STRING_ARRAY`).
pub(crate) fn type_word(t: ClaimValueType) -> &'static str {
    match t {
        ClaimValueType::String => "STRING",
        ClaimValueType::StringArray => "STRING_ARRAY",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(
        name: &str,
        t: ClaimValueType,
        op: ClaimOperator,
        value: Option<&str>,
        values: Option<&[&str]>,
    ) -> ClaimSpec {
        ClaimSpec {
            name: name.into(),
            value_type: t,
            operator: op,
            value: value.map(String::from),
            values: values.map(|vs| vs.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn operators_pair_with_value_types_and_values_as_agentcore_takes_them() {
        use ClaimOperator::*;
        use ClaimValueType::*;
        // (rule, the fields refused)
        let cases: Vec<(ClaimSpec, Vec<&str>)> = vec![
            (spec("tenant", String, Equals, Some("acme"), None), vec![]),
            (
                spec(
                    "cognito:groups",
                    StringArray,
                    Contains,
                    Some("admins"),
                    None,
                ),
                vec![],
            ),
            (
                spec(
                    "custom/roles.v2",
                    StringArray,
                    ContainsAny,
                    None,
                    Some(&["a", "b-1"]),
                ),
                vec![],
            ),
            (
                spec("tenant", StringArray, Equals, Some("acme"), None),
                vec!["c[0].operator"],
            ),
            (
                spec("groups", String, Contains, Some("x"), None),
                vec!["c[0].operator"],
            ),
            (
                spec("groups", StringArray, ContainsAny, Some("x"), None),
                vec!["c[0].values"],
            ),
            (
                spec("groups", StringArray, ContainsAny, None, Some(&[])),
                vec!["c[0].values"],
            ),
            (
                spec("tenant", String, Equals, None, Some(&["a"])),
                vec!["c[0].value"],
            ),
            (
                spec("tenant", String, Equals, None, None),
                vec!["c[0].value"],
            ),
            (
                spec("has space", String, Equals, Some("a"), None),
                vec!["c[0].name"],
            ),
            (
                spec("dash-ed", String, Equals, Some("a"), None),
                vec!["c[0].name"],
            ),
            (spec("", String, Equals, Some("a"), None), vec!["c[0].name"]),
            (
                spec("tenant", String, Equals, Some("a/b"), None),
                vec!["c[0].value"],
            ),
            (
                spec("tenant", String, Equals, Some(""), None),
                vec!["c[0].value"],
            ),
        ];
        for (rule, want) in cases {
            let mut problems = Vec::new();
            validate("c", std::slice::from_ref(&rule), &mut problems);
            let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
            assert_eq!(paths, want, "{rule:?}: {problems:?}");
        }
        let mut problems = Vec::new();
        validate("c", &[], &mut problems);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn rules_go_to_agentcore_and_come_back_equal() {
        use ClaimOperator::*;
        use ClaimValueType::*;
        for rule in [
            spec("tenant", String, Equals, Some("acme"), None),
            spec("groups", StringArray, Contains, Some("admins"), None),
            spec(
                "roles",
                StringArray,
                ContainsAny,
                None,
                Some(&["b", "a", "b"]),
            ),
        ] {
            let claim = Claim::of(&rule);
            let sdk = claim.to_sdk().expect("builds");
            assert_eq!(Claim::from_sdk(&sdk), Some(claim.clone()), "{rule:?}");
        }
        assert_eq!(
            Claim::of(&spec(
                "roles",
                StringArray,
                ContainsAny,
                None,
                Some(&["b", "a", "b"])
            ))
            .values,
            ["a", "b"]
        );
    }
}
