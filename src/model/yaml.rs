//! A YAML document as a tree of nodes that remember their line, parsed with serde-saphyr
//! (no unsafe code; bounded alias expansion and nesting against YAML bombs).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One YAML node and where it starts (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub column: usize,
    pub value: Value,
}

/// The value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order; duplicate keys are kept so validation can report them.
    Map(Vec<(Key, Node)>),
}

/// A mapping key and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub line: usize,
    pub column: usize,
}

impl Node {
    /// The entry `key` of a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The line of the node at a dotted path such as `spec.authorizer.allowedClients[0]`,
    /// or of the deepest ancestor that exists. Keys may themselves contain dots
    /// (`metadata.annotations.agentcore.dev/adopt`): the longest matching key wins.
    pub fn line_of(&self, path: &str) -> usize {
        let mut node = self;
        let mut line = self.line;
        let mut rest = path;
        loop {
            rest = rest.trim_start_matches('.');
            if rest.is_empty() {
                return line;
            }
            let next = if let Some(after) = rest.strip_prefix('[') {
                let Some(end) = after.find(']') else {
                    return line;
                };
                let item = after[..end]
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| match &node.value {
                        Value::Seq(items) => items.get(i),
                        _ => None,
                    });
                item.map(|n| (n.line, n, &after[end + 1..]))
            } else {
                let Value::Map(entries) = &node.value else {
                    return line;
                };
                entries
                    .iter()
                    .filter(|(k, _)| {
                        rest.strip_prefix(k.name.as_str()).is_some_and(|r| {
                            r.is_empty() || r.starts_with('.') || r.starts_with('[')
                        })
                    })
                    .max_by_key(|(k, _)| k.name.len())
                    .map(|(k, v)| (k.line, v, &rest[k.name.len()..]))
            };
            match next {
                Some((l, n, r)) => {
                    line = l;
                    node = n;
                    rest = r;
                }
                None => return line,
            }
        }
    }

    /// A short description of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Why a text is not YAML, and the line to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl ParseError {
    fn new(text: &str, e: &serde_saphyr::Error) -> Self {
        use serde_saphyr::MessageFormatter;
        let message = serde_saphyr::DefaultMessageFormatter
            .format_message(e.without_snippet())
            .escape_debug()
            .to_string();
        let line = e
            .location()
            .map_or(1, |l| usize::try_from(l.line()).unwrap_or(1).max(1));
        // The scanner places a tab it trips over at the start of the scalar it was reading,
        // often the line before: point at the tab itself.
        let line = if message.contains("tab") {
            text.lines()
                .enumerate()
                .skip(line - 1)
                .find(|(_, l)| l.contains('\t'))
                .map_or(line, |(i, _)| i + 1)
        } else {
            line
        };
        // The parser's words for a budget breach are its own; say what it means here.
        let message = if message.contains("alias replay limit exceeded") {
            format!(
                "aliases expand past {} nodes, the limit for a file of {} bytes (an alias \
                 bomb?); write the values out instead",
                text.len().max(ALIAS_EVENTS_MIN),
                text.len()
            )
        } else {
            message
        };
        ParseError { line, message }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Alias expansion may add at most this many parser events, or one per byte of the text
/// when that is more. A manifest has no use for more (the ones in this repository use no
/// aliases); a "billion laughs" of a few hundred bytes would otherwise expand to hundreds
/// of thousands of nodes, seconds of CPU, before anything else could reject it.
pub const ALIAS_EVENTS_MIN: usize = 4096;

/// How deep collections may nest. The deepest manifest (an IAM policy's conditions) needs
/// about ten levels; each level costs tens of KiB of stack in an unoptimised build, and
/// the parser's default of 64 overflowed a 2 MiB thread stack (the daemon loads on such
/// threads) before the limit was reached.
pub const MAX_DEPTH: usize = 32;

/// Parse every document of a YAML text. Empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, ParseError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_depth: MAX_DEPTH },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: text.len().max(ALIAS_EVENTS_MIN),
        },
    };
    let docs: Vec<Node> = serde_saphyr::from_multiple_with_options(text, options)
        .map_err(|e| ParseError::new(text, &e))?;
    Ok(docs
        .into_iter()
        .filter(|d| d.value != Value::Null)
        .collect())
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            line: spanned.referenced.line() as usize,
            column: spanned.referenced.column() as usize,
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .or(Ok(Value::Float(v as f64)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let name = match key.value {
                Value::Str(s) => s,
                Value::Int(i) => i.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Null => "null".to_string(),
                Value::Seq(_) | Value::Map(_) => {
                    return Err(de::Error::custom("mapping keys must be scalars"));
                }
            };
            let value = map.next_value::<Node>()?;
            entries.push((
                Key {
                    name,
                    line: key.line,
                    column: key.column,
                },
                value,
            ));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_lines() {
        let text = "a: 1\n---\nkind: X\nspec:\n  list:\n    - one\n    - two\n  flag: true\n";
        let docs = parse_documents(text).expect("parses");
        assert_eq!(docs.len(), 2);
        let second = &docs[1];
        assert_eq!(second.line_of("spec.list[1]"), 7);
        assert_eq!(second.line_of("spec.flag"), 8);
        assert_eq!(second.line_of("spec.missing.deeper"), 4);
        assert_eq!(second.get("kind").and_then(Node::as_str), Some("X"));
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(parse_documents("a: [1, 2\nb: c").is_err());
    }

    /// A mapping five wide and seven deep: 378 bytes that expand to 5^7 leaves.
    pub(crate) fn alias_bomb() -> String {
        let mut text = "a0: &a0 {k1: x, k2: x, k3: x, k4: x, k5: x}\n".to_string();
        for i in 1..7 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} {{k1: *a{p}, k2: *a{p}, k3: *a{p}, k4: *a{p}, k5: *a{p}}}\n"
            ));
        }
        text.push_str("spec: *a6\n");
        text
    }

    #[test]
    fn alias_expansion_is_bounded_by_the_text_size() {
        let err = parse_documents(&alias_bomb())
            .expect_err("a bomb")
            .to_string();
        assert!(
            err.contains("aliases expand past 4096 nodes, the limit for a file of 378 bytes"),
            "{err}"
        );
        // Ordinary use of an anchor still works.
        let docs = parse_documents("a: &x [1, 2]\nb: *x\n").expect("parses");
        let b = docs[0].get("b").map(|b| &b.value);
        assert!(
            matches!(b, Some(Value::Seq(items)) if items.len() == 2),
            "{b:?}"
        );
    }

    /// Nesting past the limit is refused, within what a 2 MiB thread stack holds.
    #[test]
    fn nesting_is_bounded_within_a_small_stack() {
        for depth in [MAX_DEPTH - 3, 64, 1000] {
            for flow in [true, false] {
                let text = if flow {
                    format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth))
                } else {
                    (0..depth)
                        .map(|d| format!("{}k{d}:\n", "  ".repeat(d)))
                        .collect()
                };
                let parsed = std::thread::Builder::new()
                    .stack_size(2 << 20)
                    .spawn(move || parse_documents(&text).map(|_| ()).map_err(|e| e.message))
                    .expect("thread")
                    .join()
                    .expect("no stack overflow");
                if depth < MAX_DEPTH {
                    assert_eq!(parsed, Ok(()), "depth {depth}");
                } else {
                    let err = parsed.expect_err("too deep");
                    assert!(
                        err.contains("budget breached: Depth") || err.contains("recursion limit"),
                        "{err}"
                    );
                }
            }
        }
    }

    #[test]
    fn empty_documents_are_skipped() {
        let docs = parse_documents("---\n---\na: 1\n").expect("parses");
        assert_eq!(docs.len(), 1);
    }
}
