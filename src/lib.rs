//! agentcore-controller: keeps an MCP server stack on Amazon Bedrock AgentCore Runtime
//! converged with declarative YAML manifests.
//!
//! Data flows one way: files → [`manifest`] (validated objects and their graph) →
//! [`engine`] (order, retries, waiting) → [`kinds`] (one file per AWS resource kind) → AWS.

pub mod aws;
pub mod commands;
pub mod daemon;
pub mod engine;
pub mod error;
pub mod fresh;
pub mod gitsource;
pub mod guard;
pub mod iam_policy;
pub mod inventory;
pub mod kinds;
pub mod leader;
pub mod list_cache;
pub mod manifest;
pub mod manifest_paths;
pub mod mcp;
pub mod memo;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod oci;
pub mod output;
pub mod probe;
pub mod ratelimit;
pub mod reason;
pub mod rollout;
pub mod server;
pub mod token;
pub mod urgency;
pub mod webhook;
