//! MCP from the command line: a client for a runtime (or any MCP server) that lists and
//! calls tools, prompts and resources with the bearer token a Token publishes, and a
//! local stand-in for a runtime's JWT authorizer in front of an MCP server.
//!
//! - [`client`]: streamable HTTP, JSON and event-stream answers, bearer or SigV4.
//! - [`args`]: `key=value` tool arguments.
//! - [`authz`]: a runtime's authorizer, and the refusal AgentCore answers for a token.
//! - [`local`]: the invocation path on loopback, authorizing and forwarding.
//! - [`render`]: results as text.
//! - [`cmd`]: the `mcp` and `local` commands.

pub mod args;
pub mod authz;
pub mod client;
pub mod cmd;
pub mod local;
pub mod render;
