//! The Model Context Protocol server: the service's executions as MCP tools for AI agents.
//!
//! One implementation ([`server::McpServer`], built on the official Rust SDK `rmcp`) behind two
//! transports:
//!
//! * **Streamable HTTP at `/mcp`** ([`http::HttpTransport`]), on the service's own listener and
//!   behind its middleware (bearer token, rate limit, request log). `rmcp-actix-web` mounts
//!   rmcp's own `StreamableHttpService` in actix-web, so rmcp makes every wire decision.
//! * **stdio** ([`serve_stdio`], the `mcp` subcommand): the pool runs in this process, MCP is
//!   spoken on stdin/stdout, and nothing but protocol messages is written to stdout.
//!
//! The tools ([`tools`]) call the same functions as the HTTP routes (`/execute`, `/validate`,
//! `/wasm/compile`, `/wasm/run`), so they share the pool, its queue, the limits and the module
//! store.

pub mod http;
pub mod server;
pub mod stdio;
pub mod tools;

use serde::{Deserialize, Serialize};

pub use http::HttpTransport;
pub use server::McpServer;

use crate::config::{Config, ConfigError};
use crate::ServeError;

/// The `[mcp]` section of the configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// Serve MCP over streamable HTTP at `/mcp` (behind the API's authentication). Default
    /// `true`. The stdio transport (`isolate-service mcp`) does not depend on it.
    pub enabled: bool,
    /// The most MCP sessions open at once over HTTP; an `initialize` beyond it answers 503.
    /// Default 64. A session ends when its client deletes it or after 5 minutes without a
    /// request.
    pub max_sessions: usize,
    /// `Host` values `/mcp` accepts besides `localhost`, `127.0.0.1`, `::1` and
    /// `server.host` (a defence against DNS rebinding): the names a reverse proxy or remote
    /// clients use to reach the service, with or without `:port`. `["*"]` accepts any.
    pub allowed_hosts: Vec<String>,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            enabled: true,
            max_sessions: 64,
            allowed_hosts: Vec::new(),
        }
    }
}

impl McpConfig {
    /// Rejects values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_sessions == 0 {
            return Err(ConfigError::Invalid {
                key: "mcp.max_sessions".into(),
                problem: "must be at least 1".into(),
            });
        }
        if let Some(bad) = self
            .allowed_hosts
            .iter()
            .find(|h| h.is_empty() || h.contains(['/', ' ', '@']))
        {
            return Err(ConfigError::Invalid {
                key: "mcp.allowed_hosts".into(),
                problem: format!("{bad:?} is not a host name or host:port"),
            });
        }
        Ok(())
    }
}

/// The largest MCP message accepted, on either transport: a `compile_wasm` call carrying a
/// module of `wasm.max_module_bytes` in base64 (the body limit of `/wasm/compile`), plus room
/// for the JSON-RPC envelope. Each tool then applies its route's own body limit to its
/// arguments.
pub fn message_limit(config: &Config) -> usize {
    crate::api::wasm::compile_body_limit(config) + 64 * 1024
}

/// Runs the MCP server on stdin/stdout: starts the pool (zygote and workers) in this process,
/// serves one MCP session until stdin closes or SIGINT/SIGTERM arrives, then stops every
/// worker. Logs go to stderr only; stdout carries nothing but protocol messages.
pub fn serve_stdio(config: Config) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ServeError::Listen {
            addr: "stdio".into(),
            source,
        })?;
    let result = runtime.block_on(stdio::serve(config));
    // A read of stdin still pending on tokio's blocking pool cannot be cancelled: do not wait
    // for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}
