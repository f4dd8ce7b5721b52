//! The MCP server handler: what `initialize`, `tools/list`, `tools/call` and
//! `logging/setLevel` answer. One value serves one session (HTTP makes one per session).

// MCP logging (`logging/setLevel`, `notifications/message`) is deprecated in the newest
// protocol revision, and rmcp marks its types so; clients of the current revisions use it.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};

use actix_web::web;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, InitializeResult, ListToolsResult,
    LoggingLevel, PaginatedRequestParams, ServerCapabilities, SetLevelRequestParams, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::tools::{self, Catalog};
use crate::api::AppState;

/// The MCP handler of one session.
#[derive(Clone)]
pub struct McpServer {
    state: web::Data<AppState>,
    catalog: Arc<Catalog>,
    /// The level the client asked for with `logging/setLevel`; `None` sends no log messages.
    log_level: Arc<Mutex<Option<LoggingLevel>>>,
}

impl McpServer {
    /// A handler for a new session over the shared state and tool catalog.
    pub fn new(state: web::Data<AppState>, catalog: Arc<Catalog>) -> McpServer {
        McpServer {
            state,
            catalog,
            log_level: Arc::new(Mutex::new(None)),
        }
    }

    fn log_level(&self) -> Option<LoggingLevel> {
        *self.log_level.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const INSTRUCTIONS: &str = "\
isolate-service runs untrusted JavaScript, TypeScript and WebAssembly in locked-down worker \
processes (seccomp, landlock, namespaces, rlimits). Every run_javascript call gets a fresh \
sandbox: no state, variables or files survive between calls; pass data in through `env`. \
Use run_javascript to compute, transform data or (preset `agent`) call allowed HTTP APIs; \
validate_code to check syntax without running; compile_wasm then run_wasm for WebAssembly. \
A failed run is a tool result with isError true and an `error` object (type, name, message, \
line, column): fix the code and call again.";

impl ServerHandler for McpServer {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .build(),
        )
        .with_server_info(
            Implementation::new("isolate-service", env!("CARGO_PKG_VERSION"))
                .with_title("isolate-service code sandbox"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.catalog.tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.catalog.tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = tools::call(
            &self.state,
            &self.catalog,
            &request.name,
            request.arguments.unwrap_or_default(),
            self.log_level(),
            &context.peer,
        );
        // A cancelled call (notifications/cancelled, or the session closing) drops the
        // execution, which kills its worker; the pool replaces it.
        tokio::select! {
            result = call => result.map(CallToolResponse::from),
            () = context.ct.cancelled() => Err(ErrorData::new(
                rmcp::model::ErrorCode::INTERNAL_ERROR,
                "the call was cancelled; its worker was stopped",
                None,
            )),
        }
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self.log_level.lock().unwrap_or_else(|e| e.into_inner()) = Some(request.level);
        Ok(())
    }
}
