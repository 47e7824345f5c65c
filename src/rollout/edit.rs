//! The one-line manifest edit a rollout makes: `version:` of a RuntimeEndpoint's spec,
//! changed in the text itself so that comments, order and layout stay as written (the
//! change is a reviewable one-line diff in git).

use serde_json::Value;

/// An edit of one manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// 1-based line of the `version:` line, after the edit.
    pub line: usize,
    /// The line as it was (`None`: the line is new).
    pub before: Option<String>,
    pub after: String,
    /// The whole file after the edit.
    pub text: String,
}

/// Set `spec.version` of the RuntimeEndpoint named `name` in `text` (one or more YAML
/// documents) to `version`. `Ok(None)`: it already says so.
pub fn set_endpoint_version(text: &str, name: &str, version: &str) -> Result<Option<Edit>, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let docs = documents(&lines);
    let mut found = docs
        .iter()
        .filter(|r| names_endpoint(&lines[r.start..r.end].concat(), name));
    let doc = match (found.next(), found.next()) {
        (Some(d), None) => d.clone(),
        (None, _) => return Err(format!("no RuntimeEndpoint named {name} in this file")),
        (Some(_), Some(_)) => {
            return Err(format!(
                "more than one RuntimeEndpoint named {name} in this file"
            ));
        }
    };
    let content = |l: &str| l.trim_end_matches(['\n', '\r']).to_string();
    let spec = (doc.start..doc.end)
        .find(|&i| content(lines[i]).starts_with("spec:"))
        .ok_or_else(|| format!("RuntimeEndpoint {name} has no spec: block"))?;
    let after_key = content(lines[spec])["spec:".len()..].trim().to_string();
    if !(after_key.is_empty() || after_key.starts_with('#')) {
        return Err(format!(
            "the spec of RuntimeEndpoint {name} is written on one line (flow style); set version: {version} in it by hand"
        ));
    }
    let body = (spec + 1..doc.end).take_while(|&i| {
        let l = content(lines[i]);
        l.trim().is_empty() || l.trim_start().starts_with('#') || l.starts_with([' ', '\t'])
    });
    let body: Vec<usize> = body.collect();
    let indent_of = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let child_indent = body
        .iter()
        .map(|&i| content(lines[i]))
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| indent_of(&l))
        .unwrap_or(2);
    let ending = if lines[spec].ends_with("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let existing = body.iter().copied().find(|&i| {
        let l = content(lines[i]);
        indent_of(&l) == child_indent && l.trim_start().starts_with("version:")
    });
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let edit_line;
    let before;
    let after;
    match existing {
        Some(i) => {
            let old = content(lines[i]);
            let rest = &old.trim_start()["version:".len()..];
            // Keep a trailing comment and the spaces before it.
            let comment = rest
                .find(" #")
                .map(|at| {
                    let value_end = rest[..at].trim_end().len();
                    &rest[value_end..]
                })
                .unwrap_or("");
            let value = rest[..rest.len() - comment.len()].trim();
            if unquote(value) == version {
                return Ok(None);
            }
            let new = format!("{}version: {version}{comment}", " ".repeat(child_indent));
            let end = if lines[i].ends_with('\n') {
                &lines[i][old.len()..]
            } else {
                ""
            };
            out[i] = format!("{new}{end}");
            edit_line = i + 1;
            before = Some(old);
            after = new;
        }
        None => {
            let new = format!("{}version: {version}", " ".repeat(child_indent));
            if !out[spec].ends_with('\n') {
                out[spec].push_str(ending);
            }
            out.insert(spec + 1, format!("{new}{ending}"));
            edit_line = spec + 2;
            before = None;
            after = new;
        }
    }
    Ok(Some(Edit {
        line: edit_line,
        before,
        after,
        text: out.concat(),
    }))
}

fn unquote(v: &str) -> &str {
    v.trim_matches(|c| c == '"' || c == '\'')
}

/// The line ranges of the documents in a YAML stream (separated by `---` lines).
fn documents(lines: &[&str]) -> Vec<std::ops::Range<usize>> {
    let mut docs = Vec::new();
    let mut start = 0;
    for (i, l) in lines.iter().enumerate() {
        let l = l.trim_end();
        if l == "---" || l.starts_with("--- ") {
            docs.push(start..i);
            start = i + 1;
        }
    }
    docs.push(start..lines.len());
    docs
}

/// Whether a document is the RuntimeEndpoint named `name`.
fn names_endpoint(doc: &str, name: &str) -> bool {
    let Ok(value) = serde_saphyr::from_str::<Value>(doc) else {
        return false;
    };
    value["kind"] == "RuntimeEndpoint" && value["metadata"]["name"] == name
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "apiVersion: agentcore.dev/v1alpha1\nkind: RuntimeEndpoint\n";

    #[test]
    fn edits_keep_everything_else() {
        let cases: &[(&str, &str, &str, &str, Option<&str>)] = &[
            (
                "replaces the value, keeps the comment",
                "metadata:\n  name: prod\nspec:\n  runtimeRef: rt\n  version: 2   # pinned after review\n",
                "3",
                "metadata:\n  name: prod\nspec:\n  runtimeRef: rt\n  version: 3   # pinned after review\n",
                Some("  version: 2   # pinned after review"),
            ),
            (
                "latest to a number",
                "metadata: { name: prod }\nspec:\n    runtimeRef: rt\n    version: latest\n    description: x\n",
                "4",
                "metadata: { name: prod }\nspec:\n    runtimeRef: rt\n    version: 4\n    description: x\n",
                Some("    version: latest"),
            ),
            (
                "inserted when missing, at the spec's indentation",
                "metadata: { name: prod }\nspec:  # the endpoint\n    runtimeRef: rt\n",
                "5",
                "metadata: { name: prod }\nspec:  # the endpoint\n    version: 5\n    runtimeRef: rt\n",
                None,
            ),
            (
                "a nested version is not the spec's",
                "metadata: { name: prod }\nspec:\n  runtimeRef: rt\n  tags:\n    version: keep\n",
                "6",
                "metadata: { name: prod }\nspec:\n  version: 6\n  runtimeRef: rt\n  tags:\n    version: keep\n",
                None,
            ),
            (
                "CRLF line endings stay",
                "metadata: { name: prod }\r\nspec:\r\n  runtimeRef: rt\r\n  version: \"1\"\r\n",
                "2",
                "metadata: { name: prod }\r\nspec:\r\n  runtimeRef: rt\r\n  version: 2\r\n",
                Some("  version: \"1\""),
            ),
        ];
        for (what, body, version, want, before) in cases {
            let text = format!("{HEAD}{body}");
            let edit = set_endpoint_version(&text, "prod", version)
                .unwrap_or_else(|e| panic!("{what}: {e}"))
                .unwrap_or_else(|| panic!("{what}: no edit"));
            assert_eq!(edit.text, format!("{HEAD}{want}"), "{what}");
            assert_eq!(edit.before.as_deref(), *before, "{what}");
            let line = edit.text.lines().nth(edit.line - 1).unwrap_or_default();
            assert_eq!(line, edit.after, "{what}: line {}", edit.line);
        }
    }

    #[test]
    fn only_the_named_document_changes() {
        let text = format!(
            "# endpoints\n{HEAD}metadata: {{ name: staging }}\nspec:\n  runtimeRef: rt\n  version: latest\n---\n{HEAD}metadata: {{ name: prod }}\nspec:\n  runtimeRef: rt\n  version: 1\n---\nkind: AgentRuntime\nmetadata: {{ name: prod }}\nspec:\n  version: 1\n"
        );
        let edit = set_endpoint_version(&text, "prod", "2").unwrap().unwrap();
        assert_eq!(
            edit.text,
            text.replacen("  version: 1\n---", "  version: 2\n---", 1)
        );
        assert_eq!(edit.line, 14);
    }

    #[test]
    fn nothing_to_do_and_refusals() {
        let same = format!(
            "{HEAD}metadata: {{ name: prod }}\nspec:\n  runtimeRef: rt\n  version: 3 # ok\n"
        );
        assert_eq!(set_endpoint_version(&same, "prod", "3").unwrap(), None);
        let cases: &[(&str, &str)] = &[
            (
                "metadata: { name: other }\nspec:\n  runtimeRef: rt\n",
                "no RuntimeEndpoint named prod",
            ),
            (
                "metadata: { name: prod }\nspec: { runtimeRef: rt }\n",
                "flow style",
            ),
            ("metadata: { name: prod }\n", "has no spec"),
        ];
        for (body, want) in cases {
            let err = set_endpoint_version(&format!("{HEAD}{body}"), "prod", "3").unwrap_err();
            assert!(err.contains(want), "{body}: {err}");
        }
        let twice = format!(
            "{HEAD}metadata: {{ name: prod }}\nspec: {{}}\n---\n{HEAD}metadata: {{ name: prod }}\nspec: {{}}\n"
        );
        assert!(
            set_endpoint_version(&twice, "prod", "3")
                .unwrap_err()
                .contains("more than one")
        );
    }
}
