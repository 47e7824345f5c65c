//! agentcore-controller: keeps an MCP server stack on Amazon Bedrock AgentCore Runtime
//! converged with declarative YAML manifests.

pub mod aws;
pub mod error;
pub mod kinds;
pub mod manifest;
