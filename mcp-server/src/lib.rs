//! The guide's MCP server, in Rust with the official MCP SDK (`rmcp`): tools `add` and
//! `subtract`, and a `greeting` prompt.
//!
//! It follows the AgentCore Runtime contract for MCP servers: streamable HTTP on port 8000
//! at `/mcp`, stateless (AgentCore keeps no affinity between requests, and may hand each
//! one to a fresh micro-VM), plain `application/json` answers rather than an event stream,
//! and `GET /ping` for health. `GET /mcp` answers 405: a stateless server has no stream
//! to offer. The `Mcp-Session-Id` and `X-Amzn-Bedrock-AgentCore-Runtime-Session-Id`
//! headers AgentCore and clients send are accepted and ignored (nothing is kept between
//! requests).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! mcp_server::serve(listener, std::future::pending()).await
//! # }
//! ```

use std::future::Future;

/// The MCP SDK this server is built on, for callers that mount [`Guide`] differently.
pub use rmcp;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, PromptMessage, Role, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{
    ServerHandler, prompt, prompt_handler, prompt_router, schemars, tool, tool_handler, tool_router,
};

/// Where AgentCore sends MCP requests.
pub const MCP_PATH: &str = "/mcp";
/// AgentCore's health check path.
pub const PING_PATH: &str = "/ping";
/// The port AgentCore expects an MCP server to listen on.
pub const DEFAULT_PORT: u16 = 8000;

/// The two operands of `add` and `subtract`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct Operands {
    /// The first number.
    pub a: f64,
    /// The second number.
    pub b: f64,
}

/// The argument of the `greeting` prompt.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct GreetingArgs {
    /// Who to greet.
    pub name: String,
}

/// The guide's server: stateless, so one is made per request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Guide;

#[tool_router]
impl Guide {
    /// Add two numbers.
    #[tool(description = "Add two numbers: a + b")]
    fn add(&self, Parameters(Operands { a, b }): Parameters<Operands>) -> String {
        number(a + b)
    }

    /// Subtract b from a.
    #[tool(description = "Subtract two numbers: a - b")]
    fn subtract(&self, Parameters(Operands { a, b }): Parameters<Operands>) -> String {
        number(a - b)
    }
}

#[prompt_router]
impl Guide {
    /// A greeting for someone.
    #[prompt(name = "greeting", description = "Greet someone by name")]
    fn greeting(
        &self,
        Parameters(GreetingArgs { name }): Parameters<GreetingArgs>,
    ) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            format!("Hello, {name}! Welcome to the MCP server on AgentCore Runtime."),
        )]
    }
}

#[tool_handler]
#[prompt_handler]
impl ServerHandler for Guide {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions("Call `add` or `subtract` with numbers a and b.")
    }
}

/// A number as text: integers without a fraction ("5", "-1"), others as Rust prints them.
pub fn number(x: f64) -> String {
    x.to_string()
}

/// The MCP service alone (mount it anywhere).
pub fn mcp_service() -> StreamableHttpService<Guide, NeverSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_sse_retry(None)
        // Behind AgentCore the Host header is the runtime's, not a loopback name; the
        // DNS-rebinding guard only matters for servers a browser can reach on loopback.
        .disable_allowed_hosts();
    StreamableHttpService::new(|| Ok(Guide), Default::default(), config)
}

async fn ping() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"Healthy"}"#,
    )
}

/// `/mcp` (POST: MCP; GET and DELETE: 405) and `/ping`.
pub fn router() -> Router {
    Router::new()
        .route_service(MCP_PATH, mcp_service())
        .route(PING_PATH, get(ping))
}

/// Serve [`router`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_the_guide() {
        for (x, text) in [
            (5.0, "5"),
            (-1.0, "-1"),
            (0.5, "0.5"),
            (1e21, "1000000000000000000000"),
        ] {
            assert_eq!(number(x), text);
        }
    }
}
