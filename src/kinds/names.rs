//! AWS's published name constraints, in one place: the kinds' `validate` checks names
//! with these so that it refuses what AWS would refuse, and one table test holds every
//! rule against names AWS accepts and refuses.
//! Sources: the API references of SSM `PutParameter` (Name), Cognito `CreateUserPool`
//! (PoolName), `CreateUserPoolClient` (ClientName), `AdminCreateUser` (Username), IAM
//! `CreateRole` (RoleName), ECR `CreateRepository` (repositoryName) and `PutImage`
//! (imageTag, held to the OCI tag grammar), AgentCore `CreateAgentRuntime`
//! (agentRuntimeName) and Secrets Manager `CreateSecret` (Name).

/// SSM: a name AWS counts up to 2048 characters, of which 1037 are reserved for internal
/// use; 1011 is the most a caller may write, ARN prefix included.
pub const PARAMETER_NAME_MAX: usize = 1011;
/// SSM: parameter hierarchies are at most fifteen levels deep.
pub const PARAMETER_DEPTH_MAX: usize = 15;

/// Why SSM would refuse `name` as a parameter name, or `None`.
pub fn parameter_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.chars().count() > PARAMETER_NAME_MAX {
        return Some(format!(
            "`{name}` is not a valid parameter name: 1-{PARAMETER_NAME_MAX} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.-/".contains(*c)))
    {
        return Some(format!(
            "`{name}` is not a valid parameter name: {c:?} is not allowed (a-z A-Z 0-9 _ . - and / between levels)"
        ));
    }
    let hierarchical = name.contains('/');
    if hierarchical && !name.starts_with('/') {
        return Some("a hierarchical parameter name must start with /".into());
    }
    let levels: Vec<&str> = name.trim_start_matches('/').split('/').collect();
    if hierarchical && levels.iter().any(|l| l.is_empty()) {
        return Some(format!("`{name}` has an empty level (// or a trailing /)"));
    }
    if levels.len() > PARAMETER_DEPTH_MAX {
        return Some(format!(
            "`{name}` is {} levels deep; SSM allows at most {PARAMETER_DEPTH_MAX}",
            levels.len()
        ));
    }
    let first = levels[0].to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return Some(format!(
            "`{name}`: names beginning with aws or ssm (any case, also as the first level) are reserved by AWS"
        ));
    }
    None
}

/// Whether `name` is a valid runtime name: `[a-zA-Z][a-zA-Z0-9_]{0,47}`.
pub fn valid_runtime_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 48
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// ECR repository names: 2-256 characters matching
/// `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`.
pub fn is_repository_name(name: &str) -> bool {
    (2..=256).contains(&name.len()) && name.split('/').all(is_name_component)
}

/// `[a-z0-9]+(?:[._-][a-z0-9]+)*`: alphanumeric runs joined by single separators.
fn is_name_component(component: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !component.is_empty()
        && component
            .split(['.', '_', '-'])
            .all(|run| !run.is_empty() && run.chars().all(alnum))
}

/// IAM names: `min..=max` characters of a-z A-Z 0-9 _ + = , . @ -.
pub fn is_iam_name(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// Whether `name` is a valid secret name: 1-512 ASCII letters, digits and `/_+=.@-`.
pub fn valid_secret_name(name: &str) -> bool {
    (1..=512).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
}

/// Cognito names (usernames, attribute names): printable, no white space.
pub fn valid_cognito_text(text: &str, max: usize) -> bool {
    let len = text.chars().count();
    (1..=max).contains(&len) && text.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// Image tags as Docker and ECR accept them: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_image_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    chars.next().is_some_and(word)
        && tag.len() <= 128
        && chars.all(|c| word(c) || c == '.' || c == '-')
}

/// A Cognito user pool or app client name: `[\w\s+=,.@-]+`, 1-128 characters.
pub fn valid_cognito_name(name: &str) -> bool {
    (1..=128).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c.is_whitespace() || "+=,.@-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rule = fn(&str) -> bool;

    /// Each rule against names AWS accepts and names it refuses.
    #[test]
    fn names_table() {
        let deep = format!("/{}", vec!["l"; 16].join("/"));
        let fifteen = format!("/{}", vec!["l"; 15].join("/"));
        let p129 = "p".repeat(129);
        let u129 = "u".repeat(129);
        let r65 = "r".repeat(65);
        let r257 = "r".repeat(257);
        let t129 = "t".repeat(129);
        let r48 = "r".repeat(48);
        let r49 = "r".repeat(49);
        let s513 = "s".repeat(513);
        let long_param = format!("/{}", "p".repeat(PARAMETER_NAME_MAX));
        let rules: Vec<(&str, Rule, Vec<&str>, Vec<&str>)> = vec![
            (
                "SSM parameter",
                |n| parameter_name_problem(n).is_none(),
                vec![
                    "/mcp_server/runtime/agent_arn",
                    "plain",
                    "a.b-c_d",
                    &fifteen,
                    "/my-aws/x",
                    "/x/aws",
                ],
                vec![
                    "",
                    "/aws/x",
                    "/AWS/x",
                    "aws-x",
                    "SSMparam",
                    "/ssm/x",
                    "a/b",
                    "/a//b",
                    "/a/",
                    "/a b",
                    "/a*b",
                    &deep,
                    &long_param,
                ],
            ),
            (
                "Cognito pool or app client name",
                valid_cognito_name,
                vec!["MCPServerPool", "my pool", "a+b=c,d.e@f-g_h", "Größe"],
                vec!["", "a/b", "a:b", &p129],
            ),
            (
                "Cognito username",
                |n| valid_cognito_text(n, 128),
                vec!["testuser", "a@example.com", "ü-1"],
                vec!["", "two words", "tab\tbed", &u129],
            ),
            (
                "IAM role name",
                |n| is_iam_name(n, 64),
                vec!["agentcore-mcp_server_ac-role", "a+b=c,d.e@f"],
                vec!["", "a/b", "a b", &r65],
            ),
            (
                "ECR repository name",
                is_repository_name,
                vec!["mcp-server", "team/mcp_server", "a1.b2"],
                vec!["a", "Mcp", "a//b", "a--b", "-a", "a-", &r257],
            ),
            (
                "ECR image tag",
                is_image_tag,
                vec!["latest", "v1.2.3", "_x", "build-0123"],
                vec!["", ".x", "-x", "a/b", "a:b", &t129],
            ),
            (
                "AgentCore runtime name",
                valid_runtime_name,
                vec!["mcp_server_ac", "A", &r48],
                vec!["", "1abc", "_a", "a-b", "a.b", &r49],
            ),
            (
                "Secrets Manager secret name",
                valid_secret_name,
                vec!["mcp_server/cognito/credentials", "a+b=c.d@e-f"],
                vec!["", "a b", "a:b", "a*b", &s513],
            ),
        ];
        for (what, rule, good, bad) in rules {
            for name in good {
                assert!(rule(name), "{what}: `{name}` should be accepted");
            }
            for name in bad {
                assert!(!rule(name), "{what}: `{name}` should be refused");
            }
        }
    }
}
