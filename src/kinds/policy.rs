//! IAM policy documents: reading what IAM hands back, a canonical form for comparing, and
//! offline checks of documents written in manifests. Pure: no AWS calls.
//!
//! IAM returns policy documents URL-encoded (RFC 3986) JSON; moto encodes them too, but
//! some emulators and older paths return plain JSON, so [`parse_document`] accepts both.
//! Two documents that mean the same thing compare equal once both are in [`canonical`]
//! form: single strings become lists where IAM allows either, lists are sorted and
//! deduplicated where order carries no meaning, and object keys are sorted. Nothing is
//! dropped.

use std::collections::{BTreeMap, BTreeSet};

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::Change;
use crate::model::de::FieldProblem;

/// Statement keys whose value is a string or a list of strings, order irrelevant.
const SET_KEYS: [&str; 4] = ["Action", "NotAction", "Resource", "NotResource"];
/// Keys IAM accepts at the top of a policy document.
const DOCUMENT_KEYS: [&str; 3] = ["Version", "Id", "Statement"];
/// Keys IAM accepts in a statement.
const STATEMENT_KEYS: [&str; 9] = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// The AWS partition of a region (`aws`, `aws-cn`, `aws-us-gov`), for building ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Parse a policy document as IAM returns it: URL-encoded JSON, or plain JSON.
pub fn parse_document(text: &str) -> Result<Value, String> {
    let text = text.trim();
    if let Ok(doc) = serde_json::from_str(text) {
        return Ok(doc);
    }
    let decoded = percent_decode_str(text)
        .decode_utf8()
        .map_err(|e| format!("policy document is not UTF-8 once URL-decoded: {e}"))?;
    if let Ok(doc) = serde_json::from_str(&decoded) {
        return Ok(doc);
    }
    // Form encoding writes spaces as '+' (a literal '+' is then %2B).
    let plus = text.replace('+', " ");
    let decoded = percent_decode_str(&plus)
        .decode_utf8()
        .map_err(|e| format!("policy document is not UTF-8 once URL-decoded: {e}"))?;
    serde_json::from_str(&decoded).map_err(|e| format!("policy document is not JSON: {e}"))
}

/// Parse what IAM returned into canonical form; text that does not parse is kept as a
/// JSON string, so it compares unequal to any document and gets rewritten.
pub fn observed_document(text: &str) -> Value {
    parse_document(text)
        .map(|doc| canonical(&doc))
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The canonical form of a policy document (see the module docs).
pub fn canonical(doc: &Value) -> Value {
    let Value::Object(map) = doc else {
        return sort_keys(doc);
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let value = if key == "Statement" {
            let statements = match value {
                Value::Array(items) => items.iter().map(canonical_statement).collect(),
                single => vec![canonical_statement(single)],
            };
            Value::Array(statements)
        } else {
            sort_keys(value)
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out.into_iter().collect())
}

/// Compact JSON of a document, as sent to IAM.
pub fn to_text(doc: &Value) -> String {
    doc.to_string()
}

fn canonical_statement(statement: &Value) -> Value {
    let Value::Object(map) = statement else {
        return sort_keys(statement);
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let value = match key.as_str() {
            k if SET_KEYS.contains(&k) => string_set(value, |s| s),
            "Principal" | "NotPrincipal" => principal(value),
            "Condition" => condition(value),
            _ => sort_keys(value),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out.into_iter().collect())
}

/// `"*"` stays; `{Service: "x"}` becomes `{Service: ["x"]}`, every principal type sorted.
/// IAM rewrites an account ID principal to `arn:aws:iam::ID:root`; both forms become the ID.
fn principal(value: &Value) -> Value {
    let Value::Object(map) = value else {
        return sort_keys(value);
    };
    let mut out = BTreeMap::new();
    for (kind, ids) in map {
        let ids = if kind == "AWS" {
            string_set(ids, account_root_to_id)
        } else {
            string_set(ids, |s| s)
        };
        out.insert(kind.clone(), ids);
    }
    Value::Object(out.into_iter().collect())
}

fn account_root_to_id(principal: String) -> String {
    let parts: Vec<&str> = principal.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "iam", "", account, "root"] if is_account_id(account) => account.to_string(),
        _ => principal,
    }
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// `{Operator: {key: value | [values]}}` with every value a sorted list of strings
/// (IAM compares condition values as strings; YAML may have written `false` or `3600`).
fn condition(value: &Value) -> Value {
    let Value::Object(operators) = value else {
        return sort_keys(value);
    };
    let mut out = BTreeMap::new();
    for (operator, keys) in operators {
        let keys = match keys {
            Value::Object(keys) => {
                let sorted: BTreeMap<String, Value> = keys
                    .iter()
                    .map(|(k, v)| (k.clone(), string_set(&scalars_to_strings(v), |s| s)))
                    .collect();
                Value::Object(sorted.into_iter().collect())
            }
            other => sort_keys(other),
        };
        out.insert(operator.clone(), keys);
    }
    Value::Object(out.into_iter().collect())
}

fn scalars_to_strings(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(scalars_to_strings).collect()),
        other => other.clone(),
    }
}

/// A string or list of strings as a sorted, deduplicated list (after `map` on each string).
/// Anything else is kept, with sorted keys.
fn string_set(value: &Value, map: impl Fn(String) -> String) -> Value {
    let items: Vec<Value> = match value {
        Value::String(s) => vec![Value::String(map(s.clone()))],
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Value::String(map(s.clone())),
                other => sort_keys(other),
            })
            .collect(),
        other => return sort_keys(other),
    };
    let mut keyed: Vec<(String, Value)> = items
        .into_iter()
        .map(|v| match &v {
            Value::String(s) => (s.clone(), v),
            other => (format!("\u{10FFFF}{other}"), v),
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    Value::Array(keyed.into_iter().map(|(_, v)| v).collect())
}

/// Any JSON value with object keys sorted, recursively.
pub fn sort_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), sort_keys(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

/// Whether two documents mean the same thing (equal canonical forms).
pub fn equivalent(a: &Value, b: &Value) -> bool {
    canonical(a) == canonical(b)
}

/// The statements of a canonical document by Sid, when every statement has a distinct Sid.
fn statements_by_sid(doc: &Value) -> Option<BTreeMap<String, Value>> {
    let statements = doc.get("Statement")?.as_array()?;
    let mut by_sid = BTreeMap::new();
    for statement in statements {
        let sid = statement.get("Sid")?.as_str()?;
        if by_sid.insert(sid.to_string(), statement.clone()).is_some() {
            return None;
        }
    }
    Some(by_sid)
}

/// The document without its statements.
fn frame(doc: &Value) -> Option<Map<String, Value>> {
    let mut map = doc.as_object()?.clone();
    map.remove("Statement");
    Some(map)
}

/// The Sids of the statements that differ (changed, added or removed) between two
/// documents, or `None` when that cannot be told (unnamed statements, or a difference
/// outside the statements).
pub fn differing_sids(observed: &Value, desired: &Value) -> Option<Vec<String>> {
    let (observed, desired) = (canonical(observed), canonical(desired));
    if frame(&observed)? != frame(&desired)? {
        return None;
    }
    let (o, d) = (statements_by_sid(&observed)?, statements_by_sid(&desired)?);
    let sids: BTreeSet<&String> = o.keys().chain(d.keys()).collect();
    let differing: Vec<String> = sids
        .into_iter()
        .filter(|sid| o.get(*sid) != d.get(*sid))
        .cloned()
        .collect();
    // Same statements in another order: tell it by the whole document instead.
    (!differing.is_empty()).then_some(differing)
}

/// The change of one policy document field, or `None` when both mean the same. When the
/// difference lies in named statements, `from`/`to` show only those, keyed by Sid (a
/// missing statement is `null`); otherwise they show the whole documents.
pub fn diff_documents(
    field: &str,
    observed: Option<&Value>,
    desired: Option<&Value>,
) -> Option<Change> {
    match (observed, desired) {
        (None, None) => None,
        (Some(o), None) => Some(Change::new(field, Some(canonical(o)), None)),
        (None, Some(d)) => Some(Change::new(field, None, Some(canonical(d)))),
        (Some(o), Some(d)) => {
            let (o, d) = (canonical(o), canonical(d));
            if o == d {
                return None;
            }
            let Some(sids) = differing_sids(&o, &d) else {
                return Some(Change::new(field, Some(o), Some(d)));
            };
            let pick = |doc: &Value| -> Value {
                let by_sid = statements_by_sid(doc).unwrap_or_default();
                let picked: Map<String, Value> = sids
                    .iter()
                    .map(|sid| (sid.clone(), by_sid.get(sid).cloned().unwrap_or(Value::Null)))
                    .collect();
                Value::Object(picked)
            };
            Some(Change::new(field, Some(pick(&o)), Some(pick(&d))))
        }
    }
}

/// Offline checks of a policy document written in a manifest at `path`. `trust` is set
/// for a trust (assume-role) policy, whose statements name a principal.
pub fn validate_document(path: &str, doc: &Value, trust: bool, problems: &mut Vec<FieldProblem>) {
    let Value::Object(map) = doc else {
        problems.push(FieldProblem::new(
            path,
            "a policy document must be a mapping with `Statement`",
        ));
        return;
    };
    for key in map.keys() {
        if !DOCUMENT_KEYS.contains(&key.as_str()) {
            problems.push(FieldProblem::new(
                format!("{path}.{key}"),
                format!(
                    "unknown policy field `{key}`; allowed here: {}",
                    DOCUMENT_KEYS.join(", ")
                ),
            ));
        }
    }
    if let Some(version) = map.get("Version")
        && !matches!(version.as_str(), Some("2012-10-17" | "2008-10-17"))
    {
        problems.push(FieldProblem::new(
            format!("{path}.Version"),
            "Version must be \"2012-10-17\" (or the legacy \"2008-10-17\"); quote it in YAML",
        ));
    }
    let statements: Vec<(String, &Value)> = match map.get("Statement") {
        None => {
            problems.push(FieldProblem::new(
                path,
                "a policy document needs `Statement`",
            ));
            return;
        }
        Some(Value::Array(items)) if items.is_empty() => {
            problems.push(FieldProblem::new(
                format!("{path}.Statement"),
                "`Statement` needs at least one statement",
            ));
            return;
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("{path}.Statement[{i}]"), s))
            .collect(),
        Some(single) => vec![(format!("{path}.Statement"), single)],
    };
    let mut sids = BTreeSet::new();
    for (at, statement) in statements {
        validate_statement(&at, statement, trust, &mut sids, problems);
    }
}

fn validate_statement(
    at: &str,
    statement: &Value,
    trust: bool,
    sids: &mut BTreeSet<String>,
    problems: &mut Vec<FieldProblem>,
) {
    let Value::Object(s) = statement else {
        problems.push(FieldProblem::new(at, "a statement must be a mapping"));
        return;
    };
    for key in s.keys() {
        if !STATEMENT_KEYS.contains(&key.as_str()) {
            problems.push(FieldProblem::new(
                format!("{at}.{key}"),
                format!(
                    "unknown statement field `{key}`; allowed here: {}",
                    STATEMENT_KEYS.join(", ")
                ),
            ));
        }
    }
    if let Some(sid) = s.get("Sid") {
        match sid.as_str() {
            Some(text) if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric()) => {
                if !sids.insert(text.to_string()) {
                    problems.push(FieldProblem::new(
                        format!("{at}.Sid"),
                        format!("duplicate Sid `{text}`; Sids must be unique within a policy"),
                    ));
                }
            }
            _ => problems.push(FieldProblem::new(
                format!("{at}.Sid"),
                "a Sid is a string of letters A-Z a-z and digits 0-9",
            )),
        }
    }
    if !matches!(
        s.get("Effect").and_then(Value::as_str),
        Some("Allow" | "Deny")
    ) {
        problems.push(FieldProblem::new(
            format!("{at}.Effect"),
            "Effect must be Allow or Deny",
        ));
    }
    for (a, b) in [
        ("Action", "NotAction"),
        ("Resource", "NotResource"),
        ("Principal", "NotPrincipal"),
    ] {
        if s.contains_key(a) && s.contains_key(b) {
            problems.push(FieldProblem::new(
                at,
                format!("set either {a} or {b}, not both"),
            ));
        }
    }
    if !s.contains_key("Action") && !s.contains_key("NotAction") {
        problems.push(FieldProblem::new(
            at,
            "a statement needs Action (or NotAction)",
        ));
    }
    let has_principal = s.contains_key("Principal") || s.contains_key("NotPrincipal");
    if trust && !has_principal {
        problems.push(FieldProblem::new(
            at,
            "a trust policy statement needs Principal",
        ));
    }
    if !trust {
        if has_principal {
            problems.push(FieldProblem::new(
                at,
                "an identity policy statement cannot name a Principal",
            ));
        }
        if !s.contains_key("Resource") && !s.contains_key("NotResource") {
            problems.push(FieldProblem::new(
                at,
                "a statement needs Resource (or NotResource)",
            ));
        }
    }
    for key in SET_KEYS {
        if let Some(v) = s.get(key)
            && !is_string_or_strings(v)
        {
            problems.push(FieldProblem::new(
                format!("{at}.{key}"),
                format!("{key} must be a string or a list of strings"),
            ));
        }
    }
    if let Some(cond) = s.get("Condition")
        && !cond
            .as_object()
            .is_some_and(|ops| ops.values().all(Value::is_object))
    {
        problems.push(FieldProblem::new(
            format!("{at}.Condition"),
            "Condition must map operators (e.g. StringEquals) to mappings of key: value",
        ));
    }
}

fn is_string_or_strings(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(items) => !items.is_empty() && items.iter().all(Value::is_string),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_table() {
        let plain = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let encoded = "%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%5D%7D";
        let form = "%7B%22Version%22%3A+%222012-10-17%22%2C+%22Statement%22%3A+%5B%5D%7D";
        let want = json!({"Version": "2012-10-17", "Statement": []});
        let cases = [
            (plain, Some(want.clone())),
            (encoded, Some(want.clone())),
            (form, Some(want.clone())),
            ("  \n{\"a\": \"x+y%20\"}", Some(json!({"a": "x+y%20"}))),
            ("%7B%22a%22%3A%22x%2By%22%7D", Some(json!({"a": "x+y"}))),
            ("not json", None),
            ("%FF%FE", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_document(text).ok(), want, "{text}");
        }
    }

    #[test]
    fn canonical_table() {
        let cases = [
            // Statement object → list; Action/Resource string → list.
            (
                json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:Get", "Resource": "*"}}),
                json!({"Version": "2012-10-17", "Statement": [{"Action": ["s3:Get"], "Effect": "Allow", "Resource": ["*"]}]}),
            ),
            // Lists sorted and deduplicated, NotAction/NotResource too.
            (
                json!({"Statement": [{"Effect": "Deny", "NotAction": ["b", "a", "b"], "NotResource": ["y", "x"]}]}),
                json!({"Statement": [{"Effect": "Deny", "NotAction": ["a", "b"], "NotResource": ["x", "y"]}]}),
            ),
            // Principal.Service string → list; account root ARN → account ID; "*" kept.
            (
                json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "b.amazonaws.com", "AWS": ["arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:role/r"]}, "Action": "sts:AssumeRole"}]}),
                json!({"Statement": [{"Action": ["sts:AssumeRole"], "Effect": "Allow", "Principal": {"AWS": ["123456789012", "arn:aws:iam::123456789012:role/r"], "Service": ["b.amazonaws.com"]}}]}),
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "a"}]}),
                json!({"Statement": [{"Action": ["a"], "Effect": "Allow", "Principal": "*"}]}),
            ),
            // Condition values → sorted lists of strings.
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "a", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": false}, "StringEquals": {"k": ["z", "a"], "n": 3600}}}]}),
                json!({"Statement": [{"Action": ["a"], "Condition": {"Bool": {"aws:SecureTransport": ["false"]}, "StringEquals": {"k": ["a", "z"], "n": ["3600"]}}, "Effect": "Allow", "Resource": ["*"]}]}),
            ),
            // Unknown fields are kept, statement order is kept.
            (
                json!({"Id": "x", "Statement": [{"Sid": "B", "Effect": "Allow", "Action": "b", "Resource": "*", "Extra": {"z": 1, "a": 2}}, {"Sid": "A", "Effect": "Allow", "Action": "a", "Resource": "*"}]}),
                json!({"Id": "x", "Statement": [{"Action": ["b"], "Effect": "Allow", "Extra": {"a": 2, "z": 1}, "Resource": ["*"], "Sid": "B"}, {"Action": ["a"], "Effect": "Allow", "Resource": ["*"], "Sid": "A"}]}),
            ),
        ];
        for (input, want) in cases {
            let got = canonical(&input);
            assert_eq!(got, want, "{input}");
            // Keys come out sorted, so the text is canonical too.
            assert_eq!(got.to_string(), sort_keys(&want).to_string());
            assert_eq!(canonical(&got), got, "idempotent");
        }
    }

    #[test]
    fn equivalence_table() {
        let base = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["a", "b"], "Resource": "*"}]});
        let cases = [
            (
                json!({"Statement": [{"Resource": ["*"], "Action": ["b", "a"], "Effect": "Allow"}], "Version": "2012-10-17"}),
                true,
            ),
            (
                json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": ["a", "b", "a"], "Resource": ["*"]}}),
                true,
            ),
            (
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["a"], "Resource": "*"}]}),
                false,
            ),
            (
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": ["a", "b"], "Resource": "*"}]}),
                false,
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": ["a", "b"], "Resource": "*"}]}),
                false,
            ),
        ];
        for (other, want) in cases {
            assert_eq!(equivalent(&base, &other), want, "{other}");
        }
    }

    #[test]
    fn observed_document_round_trip() {
        let doc = json!({"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}]});
        let encoded: String = percent_encoding::utf8_percent_encode(
            &to_text(&canonical(&doc)),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        assert_eq!(observed_document(&encoded), canonical(&doc));
        assert_eq!(observed_document("garbage"), json!("garbage"));
    }

    #[test]
    fn differing_sids_table() {
        let doc = |stmts: Value| json!({"Version": "2012-10-17", "Statement": stmts});
        let a = json!({"Sid": "A", "Effect": "Allow", "Action": "a", "Resource": "*"});
        let a2 = json!({"Sid": "A", "Effect": "Allow", "Action": ["a", "a2"], "Resource": "*"});
        let b = json!({"Sid": "B", "Effect": "Allow", "Action": "b", "Resource": "*"});
        let unnamed = json!({"Effect": "Allow", "Action": "u", "Resource": "*"});
        let cases: Vec<(Value, Value, Option<Vec<&str>>)> = vec![
            (doc(json!([a, b])), doc(json!([a2, b])), Some(vec!["A"])),
            (doc(json!([a, b])), doc(json!([a])), Some(vec!["B"])),
            (doc(json!([a])), doc(json!([a2, b])), Some(vec!["A", "B"])),
            (doc(json!([a, b])), doc(json!([a, b])), None),
            (doc(json!([a, b])), doc(json!([b, a])), None),
            (doc(json!([a, unnamed])), doc(json!([a2, unnamed])), None),
            (
                doc(json!([a])),
                json!({"Version": "2008-10-17", "Statement": [a2]}),
                None,
            ),
        ];
        for (o, d, want) in cases {
            let want = want.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(differing_sids(&o, &d), want, "{o} vs {d}");
        }
    }

    #[test]
    fn diff_documents_table() {
        let a = json!({"Sid": "A", "Effect": "Allow", "Action": "a", "Resource": "*"});
        let a2 = json!({"Sid": "A", "Effect": "Allow", "Action": "a2", "Resource": "*"});
        let b = json!({"Sid": "B", "Effect": "Allow", "Action": "b", "Resource": "*"});
        let doc = |stmts: Value| json!({"Version": "2012-10-17", "Statement": stmts});
        let f = "spec.inlinePolicies.p";
        let cases = [
            (None, None, None),
            (Some(doc(json!([a]))), Some(doc(json!(a))), None),
            (
                None,
                Some(doc(json!([a]))),
                Some(Change::new(f, None, Some(canonical(&doc(json!([a])))))),
            ),
            (
                Some(doc(json!([a]))),
                None,
                Some(Change::new(f, Some(canonical(&doc(json!([a])))), None)),
            ),
            (
                Some(doc(json!([a, b]))),
                Some(doc(json!([a2, b]))),
                Some(Change::new(
                    f,
                    Some(json!({"A": canonical_statement(&a)})),
                    Some(json!({"A": canonical_statement(&a2)})),
                )),
            ),
            (
                Some(doc(json!([a]))),
                Some(doc(json!([a, b]))),
                Some(Change::new(
                    f,
                    Some(json!({"B": null})),
                    Some(json!({"B": canonical_statement(&b)})),
                )),
            ),
            (
                Some(doc(json!([a, b]))),
                Some(doc(json!([b, a]))),
                Some(Change::new(
                    f,
                    Some(canonical(&doc(json!([a, b])))),
                    Some(canonical(&doc(json!([b, a])))),
                )),
            ),
        ];
        for (o, d, want) in cases {
            assert_eq!(
                diff_documents(f, o.as_ref(), d.as_ref()),
                want,
                "{o:?} vs {d:?}"
            );
        }
    }

    #[test]
    fn validate_table() {
        let identity = |stmt: Value| json!({"Version": "2012-10-17", "Statement": [stmt]});
        let cases: Vec<(Value, bool, usize)> = vec![
            (
                identity(
                    json!({"Sid": "A1", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}),
                ),
                false,
                0,
            ),
            (
                json!({"Statement": {"Effect": "Allow", "Action": ["a"], "Resource": ["*"]}}),
                false,
                0,
            ),
            (
                json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"Service": "x.amazonaws.com"}, "Action": "sts:AssumeRole"}}),
                true,
                0,
            ),
            (json!("text"), false, 1),
            (json!({"Version": "2012-10-17"}), false, 1),
            (json!({"Statement": []}), false, 1),
            (
                json!({"Version": "2012-10-18", "Statement": {"Effect": "Allow", "Action": "a", "Resource": "*"}}),
                false,
                1,
            ),
            (
                json!({"Statment": [], "Statement": {"Effect": "Allow", "Action": "a", "Resource": "*"}}),
                false,
                1,
            ),
            (
                identity(json!({"Effect": "allow", "Action": "a", "Resource": "*"})),
                false,
                1,
            ),
            (
                identity(json!({"Effect": "Allow", "Resource": "*"})),
                false,
                1,
            ),
            (
                identity(json!({"Effect": "Allow", "Action": "a"})),
                false,
                1,
            ),
            (
                identity(
                    json!({"Effect": "Allow", "Action": "a", "Resource": "*", "Principal": "*"}),
                ),
                false,
                1,
            ),
            (
                identity(
                    json!({"Effect": "Allow", "Action": "a", "NotAction": "b", "Resource": "*"}),
                ),
                false,
                1,
            ),
            (
                identity(json!({"Effect": "Allow", "Action": 3, "Resource": "*"})),
                false,
                1,
            ),
            (
                identity(
                    json!({"Effect": "Allow", "Action": "a", "Resource": "*", "Sid": "no-dash"}),
                ),
                false,
                1,
            ),
            (
                identity(
                    json!({"Effect": "Allow", "Action": "a", "Resource": "*", "Condition": {"StringEquals": "x"}}),
                ),
                false,
                1,
            ),
            (
                identity(
                    json!({"Effect": "Allow", "Action": "a", "Resource": "*", "Actions": "b"}),
                ),
                false,
                1,
            ),
            (
                identity(json!({"Effect": "Allow", "Action": "sts:AssumeRole"})),
                true,
                1,
            ),
            (
                json!({"Statement": [
                    {"Sid": "A", "Effect": "Allow", "Action": "a", "Resource": "*"},
                    {"Sid": "A", "Effect": "Allow", "Action": "b", "Resource": "*"}
                ]}),
                false,
                1,
            ),
        ];
        for (doc, trust, count) in cases {
            let mut problems = Vec::new();
            validate_document("spec.p", &doc, trust, &mut problems);
            assert_eq!(problems.len(), count, "{doc}: {problems:?}");
        }
    }

    #[test]
    fn partitions() {
        assert_eq!(partition("us-east-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    }
}
