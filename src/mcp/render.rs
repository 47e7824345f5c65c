//! MCP results as text for people: tools with their parameters, prompts with their
//! arguments, resources, and a tool call's content.

use serde_json::Value;

fn schema_type(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        _ => "any".to_string(),
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Tools as text: name and description, then one line per parameter.
pub fn tools_text(tools: &[Value]) -> String {
    if tools.is_empty() {
        return "The server offers no tools.\n".to_string();
    }
    let width = tools
        .iter()
        .map(|t| str_of(t, "name").len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for t in tools {
        out.push_str(&format!(
            "{:<width$}  {}\n",
            str_of(t, "name"),
            str_of(t, "description")
        ));
        let schema = t.get("inputSchema").cloned().unwrap_or_default();
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, p) in props {
                let req = if required.contains(&name.as_str()) {
                    ", required"
                } else {
                    ""
                };
                let desc = str_of(p, "description");
                out.push_str(
                    format!("{:<width$}    {name}: {}{req}  {desc}", "", schema_type(p)).trim_end(),
                );
                out.push('\n');
            }
        }
    }
    out
}

/// Prompts as text: name and description, then their arguments.
pub fn prompts_text(prompts: &[Value]) -> String {
    if prompts.is_empty() {
        return "The server offers no prompts.\n".to_string();
    }
    let width = prompts
        .iter()
        .map(|p| str_of(p, "name").len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for p in prompts {
        out.push_str(&format!(
            "{:<width$}  {}\n",
            str_of(p, "name"),
            str_of(p, "description")
        ));
        for a in p
            .get("arguments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let req = if a.get("required").and_then(Value::as_bool) == Some(true) {
                " (required)"
            } else {
                ""
            };
            out.push_str(
                format!(
                    "{:<width$}    {}{req}  {}",
                    "",
                    str_of(a, "name"),
                    str_of(a, "description")
                )
                .trim_end(),
            );
            out.push('\n');
        }
    }
    out
}

/// Resources as text: URI, name and MIME type.
pub fn resources_text(resources: &[Value]) -> String {
    if resources.is_empty() {
        return "The server offers no resources.\n".to_string();
    }
    let mut out = String::new();
    for r in resources {
        let mime = str_of(r, "mimeType");
        let line = format!(
            "{}  {}{}",
            str_of(r, "uri"),
            str_of(r, "name"),
            if mime.is_empty() {
                String::new()
            } else {
                format!(" ({mime})")
            }
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A tool result's content as text: text items as they are, others described.
pub fn content_text(result: &Value) -> String {
    let mut out = String::new();
    for item in result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let line = match str_of(item, "type") {
            "text" => str_of(item, "text").to_string(),
            "image" | "audio" => format!(
                "[{} {}, {} base64 characters]",
                str_of(item, "type"),
                str_of(item, "mimeType"),
                str_of(item, "data").len()
            ),
            "resource_link" => format!("[resource link {}]", str_of(item, "uri")),
            "resource" => {
                let r = item.get("resource").cloned().unwrap_or_default();
                match r.get("text").and_then(Value::as_str) {
                    Some(t) => t.to_string(),
                    None => format!("[resource {}]", str_of(&r, "uri")),
                }
            }
            other => format!("[{other} content]"),
        };
        out.push_str(&line);
        if !line.ends_with('\n') {
            out.push('\n');
        }
    }
    if out.is_empty()
        && let Some(s) = result.get("structuredContent")
    {
        out = format!("{s}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tools_and_prompts_read_as_text() {
        let tools = vec![json!({
            "name": "add",
            "description": "Add two numbers: a + b",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "a": {"type": "number", "description": "The first number."},
                    "b": {"type": ["number", "null"]}
                },
                "required": ["a"]
            }
        })];
        assert_eq!(
            tools_text(&tools),
            "add  Add two numbers: a + b\n       a: number, required  The first number.\n       b: number|null\n"
        );
        assert_eq!(tools_text(&[]), "The server offers no tools.\n");
        let prompts = vec![json!({
            "name": "greeting",
            "description": "Greet someone",
            "arguments": [{"name": "name", "description": "Who", "required": true}]
        })];
        assert_eq!(
            prompts_text(&prompts),
            "greeting  Greet someone\n            name (required)  Who\n"
        );
        assert_eq!(
            resources_text(&[json!({"uri": "file:///a", "name": "a", "mimeType": "text/plain"})]),
            "file:///a  a (text/plain)\n"
        );
    }

    #[test]
    fn tool_results_read_as_text() {
        for (result, want) in [
            (json!({"content": [{"type": "text", "text": "5"}]}), "5\n"),
            (
                json!({"content": [{"type": "text", "text": "a\n"}, {"type": "image", "mimeType": "image/png", "data": "AAAA"}]}),
                "a\n[image image/png, 4 base64 characters]\n",
            ),
            (
                json!({"content": [{"type": "resource", "resource": {"uri": "x://y", "text": "body"}}]}),
                "body\n",
            ),
            (
                json!({"content": [], "structuredContent": {"sum": 5}}),
                "{\"sum\":5}\n",
            ),
            (json!({}), ""),
        ] {
            assert_eq!(content_text(&result), want, "{result}");
        }
    }
}
