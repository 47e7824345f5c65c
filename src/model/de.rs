//! A serde deserializer over a [`Node`] tree that reports problems with field paths and
//! lines, and keeps going past unknown fields so that all of them are reported at once.

use std::cell::RefCell;
use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use super::yaml::{Node, Value};

/// One problem in a manifest: where (field path, line when known) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl FieldProblem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line: None,
            message: message.into(),
        }
    }
}

/// Deserialize `T` from `node` (found at `path`). On failure, every unknown field plus the
/// first type error are returned.
pub fn from_node<T: DeserializeOwned>(node: &Node, path: &str) -> Result<T, Vec<FieldProblem>> {
    match from_node_lenient(node, path) {
        (Some(v), problems) if problems.is_empty() => Ok(v),
        (_, problems) => Err(problems),
    }
}

/// Like [`from_node`], but also returns the value when only unknown or duplicate fields
/// were found (they are skipped), so that further checks can still run on it.
pub fn from_node_lenient<T: DeserializeOwned>(
    node: &Node,
    path: &str,
) -> (Option<T>, Vec<FieldProblem>) {
    let problems = RefCell::new(Vec::new());
    let result = T::deserialize(NodeDe {
        node,
        path: path.to_string(),
        line: node.line,
        problems: &problems,
    });
    let mut problems = problems.into_inner();
    match result {
        Ok(v) => (Some(v), problems),
        Err(e) => {
            problems.push(FieldProblem {
                path: e.path.unwrap_or_else(|| path.to_string()),
                line: e.line.or(Some(node.line)),
                message: e.message,
            });
            (None, problems)
        }
    }
}

/// The error type of [`NodeDe`]: a message, and the place once known.
#[derive(Debug)]
pub struct DeError {
    message: String,
    path: Option<String>,
    line: Option<usize>,
}

impl DeError {
    fn at(mut self, path: &str, line: usize) -> Self {
        if self.path.is_none() {
            self.path = Some(path.to_string());
            self.line = Some(line);
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            path: None,
            line: None,
        }
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
    /// The line to blame: the key's line for a mapping value, the item's for a list item.
    line: usize,
    problems: &'a RefCell<Vec<FieldProblem>>,
}

impl<'a> NodeDe<'a> {
    fn located<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|e| e.at(&self.path, self.line))
    }

    fn invalid<T>(&self, expected: &str) -> Result<T, DeError> {
        Err(<DeError as de::Error>::custom(format!(
            "expected {expected}, found {}",
            self.node.type_name()
        ))
        .at(&self.path, self.line))
    }

    fn map_access(&self, fields: Option<&'static [&'static str]>) -> Result<MapDe<'a>, DeError> {
        let Value::Map(entries) = &self.node.value else {
            return self.invalid("a mapping");
        };
        let mut kept = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in entries {
            let path = join(&self.path, &key.name);
            if seen.contains(&key.name.as_str()) {
                self.problems.borrow_mut().push(FieldProblem {
                    path,
                    line: Some(key.line),
                    message: format!("duplicate key `{}`", key.name),
                });
                continue;
            }
            seen.push(&key.name);
            if let Some(fields) = fields
                && !fields.contains(&key.name.as_str())
            {
                self.problems.borrow_mut().push(FieldProblem {
                    path,
                    line: Some(key.line),
                    message: format!(
                        "unknown field `{}`; allowed here: {}",
                        key.name,
                        fields.join(", ")
                    ),
                });
                continue;
            }
            kept.push((key.name.as_str(), key.line, value, path));
        }
        Ok(MapDe {
            entries: kept.into_iter(),
            pending: None,
            problems: self.problems,
        })
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

struct MapDe<'a> {
    entries: std::vec::IntoIter<(&'a str, usize, &'a Node, String)>,
    pending: Option<(usize, &'a Node, String)>,
    problems: &'a RefCell<Vec<FieldProblem>>,
}

impl<'de, 'a> de::MapAccess<'de> for MapDe<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((name, line, node, path)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some((line, node, path));
        let key: StrDeserializer<'_, DeError> = name.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (line, node, path) = self
            .pending
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value without a key"))?;
        let de = NodeDe {
            node,
            path: path.clone(),
            line,
            problems: self.problems,
        };
        seed.deserialize(de).map_err(|e| e.at(&path, line))
    }
}

struct SeqDe<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    parent: String,
    problems: &'a RefCell<Vec<FieldProblem>>,
}

impl<'de, 'a> de::SeqAccess<'de> for SeqDe<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((i, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{i}]", self.parent);
        let de = NodeDe {
            node,
            path: path.clone(),
            line: node.line,
            problems: self.problems,
        };
        seed.deserialize(de)
            .map(Some)
            .map_err(|e| e.at(&path, node.line))
    }
}

impl<'de, 'a> de::Deserializer<'de> for NodeDe<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter().enumerate(),
                parent: self.path.clone(),
                problems: self.problems,
            }),
            Value::Map(_) => {
                let access = self.map_access(None)?;
                visitor.visit_map(access)
            }
        };
        self.located(r)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.value == Value::Null {
            visitor.visit_none()
        } else {
            let (path, line) = (self.path.clone(), self.line);
            visitor.visit_some(self).map_err(|e| e.at(&path, line))
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(s) => self.located(visitor.visit_str(s)),
            _ => self.invalid("a string"),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(_) => self.deserialize_any(visitor),
            _ => self.invalid("a list"),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(_) => self.deserialize_any(visitor),
            _ => self.invalid("a mapping"),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let access = self.map_access(Some(fields))?;
        let r = visitor.visit_map(access);
        self.located(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(s) => {
                let de: StrDeserializer<'_, DeError> = s.as_str().into_deserializer();
                let r = visitor.visit_enum(de).map_err(|_| {
                    <DeError as de::Error>::custom(format!(
                        "unknown value `{s}`; allowed: {}",
                        variants.join(", ")
                    ))
                });
                self.located(r)
            }
            _ => self.invalid(&format!("one of {}", variants.join(", "))),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let (path, line) = (self.path.clone(), self.line);
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| e.at(&path, line))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct tuple tuple_struct identifier
    }
}

/// Any node as JSON (for metadata and hashing).
pub fn to_json(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Value::from(*f),
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Seq(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::yaml::parse_documents;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Inner {
        min_length: u32,
        #[serde(default)]
        flags: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        name: String,
        mode: Mode,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Mode {
        A,
        B,
    }

    fn parse(text: &str) -> Result<Spec, Vec<FieldProblem>> {
        let docs = parse_documents(text).expect("yaml");
        from_node(&docs[0], "spec")
    }

    #[test]
    fn table() {
        struct Case {
            yaml: &'static str,
            problems: &'static [(&'static str, usize, &'static str)],
        }
        let cases = [
            Case {
                yaml: "name: x\nmode: A\ninner:\n  minLength: 8\n",
                problems: &[],
            },
            Case {
                yaml: "name: x\nbogus: 1\nmode: A\ninner:\n  minLength: 8\n  other: 2\n",
                problems: &[
                    (
                        "spec.bogus",
                        2,
                        "unknown field `bogus`; allowed here: name, mode, inner",
                    ),
                    (
                        "spec.inner.other",
                        6,
                        "unknown field `other`; allowed here: minLength, flags",
                    ),
                ],
            },
            Case {
                yaml: "name: x\nmode: C\n",
                problems: &[("spec.mode", 2, "unknown value `C`; allowed: A, B")],
            },
            Case {
                yaml: "name: x\nmode: A\ninner:\n  minLength: eight\n",
                problems: &[(
                    "spec.inner.minLength",
                    4,
                    "invalid type: string \"eight\", expected u32",
                )],
            },
            Case {
                yaml: "mode: A\n",
                problems: &[("spec", 1, "missing field `name`")],
            },
            Case {
                yaml: "name: [1]\nmode: A\n",
                problems: &[("spec.name", 1, "expected a string, found a list")],
            },
            Case {
                yaml: "name: x\nmode: A\ninner:\n  minLength: 1\n  flags: [a, 3]\n",
                problems: &[(
                    "spec.inner.flags[1]",
                    5,
                    "expected a string, found an integer",
                )],
            },
        ];
        for case in cases {
            let got = match parse(case.yaml) {
                Ok(_) => Vec::new(),
                Err(p) => p,
            };
            let got: Vec<(String, usize, String)> = got
                .into_iter()
                .map(|p| (p.path, p.line.unwrap_or(0), p.message))
                .collect();
            let want: Vec<(String, usize, String)> = case
                .problems
                .iter()
                .map(|(p, l, m)| (p.to_string(), *l, m.to_string()))
                .collect();
            assert_eq!(got, want, "yaml:\n{}", case.yaml);
        }
    }
}
