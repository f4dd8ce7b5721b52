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

pub use crate::config::McpConfig;
pub use http::HttpTransport;
pub use server::McpServer;

use crate::config::Config;
use crate::ServeError;

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
