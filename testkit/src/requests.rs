//! The emulator's request log (see `scripts/emulator.py`): every call with its time, the
//! caller's user agent, the operation and the parameters that name what it acts on.

use serde_json::Value;

/// One logged call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Seconds since the epoch, when the emulator received it.
    pub at: f64,
    /// The `app/NAME` of the caller's user agent, if any.
    pub app: Option<String>,
    /// The IAM service prefix (`cognito-idp`, `iam`, `sts`, `ecr`, `bedrock-agentcore`,
    /// `secretsmanager`, `ssm`, `dynamodb`), or empty when unknown.
    pub service: String,
    /// The API operation (`PutParameter`), or empty when unknown.
    pub operation: String,
    /// The naming parameters (`Name`, `SecretId`, `RoleName`, …).
    pub params: serde_json::Map<String, Value>,
    pub method: String,
    pub path: String,
}

impl Call {
    /// `service:Operation`, as IAM names the action.
    pub fn action(&self) -> String {
        format!("{}:{}", self.service, self.operation)
    }

    /// A naming parameter, as text.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }
}

/// The IAM prefix of the service a JSON-protocol target names.
fn service_of_target(prefix: &str) -> &'static str {
    match prefix {
        "AWSCognitoIdentityProviderService" => "cognito-idp",
        "AmazonSSM" => "ssm",
        "secretsmanager" => "secretsmanager",
        "AmazonEC2ContainerRegistry_V20150921" => "ecr",
        "DynamoDB_20120810" => "dynamodb",
        _ => "",
    }
}

/// AgentCore's control plane (REST): the operation a method and path make.
pub fn agentcore_operation(method: &str, path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    Some(match (method, parts.as_slice()) {
        ("PUT", ["runtimes"]) => "CreateAgentRuntime",
        ("POST", ["runtimes"]) => "ListAgentRuntimes",
        ("GET", ["runtimes", _]) => "GetAgentRuntime",
        ("PUT", ["runtimes", _]) => "UpdateAgentRuntime",
        ("DELETE", ["runtimes", _]) => "DeleteAgentRuntime",
        ("POST", ["runtimes", _, "versions"]) => "ListAgentRuntimeVersions",
        ("PUT", ["runtimes", _, "runtime-endpoints"]) => "CreateAgentRuntimeEndpoint",
        ("POST", ["runtimes", _, "runtime-endpoints"]) => "ListAgentRuntimeEndpoints",
        ("GET", ["runtimes", _, "runtime-endpoints", _]) => "GetAgentRuntimeEndpoint",
        ("PUT", ["runtimes", _, "runtime-endpoints", _]) => "UpdateAgentRuntimeEndpoint",
        ("DELETE", ["runtimes", _, "runtime-endpoints", _]) => "DeleteAgentRuntimeEndpoint",
        ("POST", ["tags", ..]) => "TagResource",
        ("DELETE", ["tags", ..]) => "UntagResource",
        ("GET", ["tags", ..]) => "ListTagsForResource",
        _ => return None,
    })
}

/// Every call logged at or after `since` (seconds since the epoch).
pub fn calls_since(log: &std::path::Path, since: f64) -> Vec<Call> {
    let text = std::fs::read_to_string(log).expect("the emulator's request log");
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v["t"].as_f64().is_some_and(|t| t >= since))
        .filter_map(|v| {
            let ua = v["ua"].as_str().unwrap_or_default();
            let app = ua
                .split_whitespace()
                .find_map(|part| part.strip_prefix("app/"))
                .map(String::from);
            let method = v["method"].as_str().unwrap_or_default().to_string();
            let path = v["path"].as_str().unwrap_or_default().to_string();
            let mut operation = v["operation"].as_str().unwrap_or_default().to_string();
            let target = v["service"].as_str().unwrap_or_default();
            let service = if !target.is_empty() {
                service_of_target(target)
            } else if !operation.is_empty() {
                // Query protocol: IAM, or STS for its one call here.
                if operation == "GetCallerIdentity" {
                    "sts"
                } else {
                    "iam"
                }
            } else if let Some(op) = agentcore_operation(&method, &path) {
                operation = op.to_string();
                "bedrock-agentcore"
            } else {
                ""
            };
            Some(Call {
                at: v["t"].as_f64()?,
                app,
                service: service.to_string(),
                operation,
                params: v["params"].as_object().cloned().unwrap_or_default(),
                method,
                path,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agentcore_paths_name_their_operations() {
        for (method, path, op) in [
            ("PUT", "/runtimes/", Some("CreateAgentRuntime")),
            ("POST", "/runtimes/", Some("ListAgentRuntimes")),
            ("GET", "/runtimes/rt-1/", Some("GetAgentRuntime")),
            ("PUT", "/runtimes/rt-1/", Some("UpdateAgentRuntime")),
            ("DELETE", "/runtimes/rt-1/", Some("DeleteAgentRuntime")),
            ("GET", "/tags/arn%3Aaws%3Ax", Some("ListTagsForResource")),
            ("GET", "/elsewhere", None),
        ] {
            assert_eq!(agentcore_operation(method, path), op, "{method} {path}");
        }
    }
}
