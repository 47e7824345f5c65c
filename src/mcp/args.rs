//! `key=value` tool arguments from the command line.
//!
//! The value is read as JSON where it parses (numbers, `true`/`false`, `null`, arrays,
//! objects, quoted strings), and kept as a string otherwise: `a=2` is the number 2,
//! `flag=true` a boolean, `tags=["x","y"]` an array, `name=Ann` the string "Ann", and
//! `zip='"01234"'` (JSON-quoted) the string "01234" where it would otherwise be a number.

use serde_json::{Map, Value};

/// The value of one `key=value` argument.
pub fn value(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => v,
        Err(_) => Value::String(text.to_string()),
    }
}

/// Parse `key=value` arguments into a JSON object. Errors name the argument at fault.
pub fn parse(args: &[String]) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for arg in args {
        let Some((key, text)) = arg.split_once('=') else {
            return Err(format!(
                "argument {arg:?} is not key=value (e.g. a=2, name=Ann, tags='[\"x\"]')"
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("argument {arg:?} has no key before '='"));
        }
        if out.insert(key.to_string(), value(text)).is_some() {
            return Err(format!("argument {key} is given twice"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_json_where_they_parse_and_strings_otherwise() {
        for (text, want) in [
            ("2", json!(2)),
            ("-1", json!(-1)),
            ("2.5", json!(2.5)),
            ("1e3", json!(1000.0)),
            ("true", json!(true)),
            ("false", json!(false)),
            ("null", json!(null)),
            ("[1,\"x\"]", json!([1, "x"])),
            ("{\"k\":1}", json!({"k": 1})),
            ("\"01234\"", json!("01234")),
            ("Ann", json!("Ann")),
            ("01234", json!("01234")),
            ("True", json!("True")),
            ("hello world", json!("hello world")),
            ("", json!("")),
            ("a=b", json!("a=b")),
            ("[unclosed", json!("[unclosed")),
        ] {
            assert_eq!(value(text), want, "{text:?}");
        }
    }

    #[test]
    fn arguments_become_an_object() {
        let args = |list: &[&str]| -> Vec<String> { list.iter().map(|s| s.to_string()).collect() };
        let cases: &[(&[&str], Result<Value, &str>)] = &[
            (&[], Ok(json!({}))),
            (&["a=2", "b=3"], Ok(json!({"a": 2, "b": 3}))),
            (
                &["name=Ann", "q=x=y", "empty="],
                Ok(json!({"name": "Ann", "q": "x=y", "empty": ""})),
            ),
            (&[" a =1"], Ok(json!({"a": 1}))),
            (&["a"], Err("argument \"a\" is not key=value")),
            (&["=3"], Err("has no key")),
            (&["a=1", "a=2"], Err("argument a is given twice")),
        ];
        for (input, want) in cases {
            match (parse(&args(input)), want) {
                (Ok(got), Ok(want)) => assert_eq!(Value::Object(got), *want, "{input:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{input:?}: {got}"),
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
