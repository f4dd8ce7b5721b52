//! The MCP server handler: what `initialize`, `tools/list`, `tools/call` and
//! `logging/setLevel` answer. One value serves one session (HTTP makes one per session).

// MCP logging (`logging/setLevel`, `notifications/message`) is deprecated in the newest
// protocol revision, and rmcp marks its types so; clients of the current revisions use it.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};

use actix_web::web;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CustomRequest, CustomResult, ErrorCode,
    Implementation, InitializeRequestParams, InitializeResult, ListToolsResult, LoggingLevel,
    PaginatedRequestParams, ServerCapabilities, SetLevelRequestParams, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::tools::{self, Catalog};
use crate::api::auth::Caller;
use crate::api::AppState;

/// The MCP handler of one session.
#[derive(Clone)]
pub struct McpServer {
    state: web::Data<AppState>,
    catalog: Arc<Catalog>,
    /// The level the client asked for with `logging/setLevel`; `None` sends no log messages.
    log_level: Arc<Mutex<Option<LoggingLevel>>>,
    /// The key of every call on a transport without keys (standard input); `None` over HTTP,
    /// where each call runs under the key its request was authorised with.
    local: Option<Caller>,
}

impl McpServer {
    /// A handler for a new session over the shared state and tool catalog. `local`: see the
    /// field.
    pub fn new(
        state: web::Data<AppState>,
        catalog: Arc<Catalog>,
        local: Option<Caller>,
    ) -> McpServer {
        McpServer {
            state,
            catalog,
            log_level: Arc::new(Mutex::new(None)),
            local,
        }
    }

    /// The key a call runs under: the local one, or the one the HTTP request that carried the
    /// call was authorised with (the route's middleware put it in the request's extensions,
    /// which the transport hands on). `None` over HTTP without one: the call is refused.
    fn caller(&self, context: &RequestContext<RoleServer>) -> Option<Caller> {
        if let Some(local) = &self.local {
            return Some(Arc::clone(local));
        }
        context
            .extensions
            .get::<::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<rmcp::model::Extensions>())
            .and_then(|ext| ext.get::<Caller>())
            .cloned()
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
        let Some(caller) = self.caller(&context) else {
            tracing::error!("an MCP call over HTTP arrived without its request's key");
            return Err(ErrorData::new(
                ErrorCode::INTERNAL_ERROR,
                "the call carries no authorised key",
                None,
            ));
        };
        let call = tools::call(
            &self.state,
            &self.catalog,
            (&request.name, request.arguments.unwrap_or_default()),
            &caller,
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

    /// rmcp hands over every request it cannot parse, unknown methods and known methods with
    /// malformed params alike: tell them apart, so that `{"method": "tools/call", "params": 5}`
    /// is `-32602` with serde's reason rather than "method not found".
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        Err(malformed_or_unknown(&request))
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

/// Methods of the MCP specification this server knows (a request for one of them that reached
/// [`ServerHandler::on_custom_request`] has malformed params).
const KNOWN_METHODS: [&str; 15] = [
    "initialize",
    "ping",
    "tools/call",
    "tools/list",
    "logging/setLevel",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "server/discover",
    "subscriptions/listen",
];

fn malformed_or_unknown(request: &CustomRequest) -> ErrorData {
    let method = request.method.as_str();
    if !KNOWN_METHODS.contains(&method) {
        return ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
            None,
        );
    }
    let reason = match method {
        "tools/call" => request.params_as::<CallToolRequestParams>().err(),
        "logging/setLevel" => request.params_as::<SetLevelRequestParams>().err(),
        "initialize" => request.params_as::<InitializeRequestParams>().err(),
        "tools/list" => request.params_as::<PaginatedRequestParams>().err(),
        _ => None,
    };
    let message = match (reason, &request.params) {
        (Some(e), _) => format!("Invalid params for {method}: {e}"),
        (None, None) => format!("Invalid params for {method}: params are missing"),
        (None, Some(_)) => format!("Invalid params for {method}"),
    };
    ErrorData::invalid_params(message, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_params_of_known_methods_are_invalid_params() {
        let e = malformed_or_unknown(&CustomRequest::new(
            "tools/call",
            Some(serde_json::json!(5)),
        ));
        assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
        assert!(
            e.message.starts_with("Invalid params for tools/call: "),
            "{}",
            e.message
        );
        let e = malformed_or_unknown(&CustomRequest::new("tools/call", None));
        assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
        assert!(e.message.contains("missing"), "{}", e.message);
        let e = malformed_or_unknown(&CustomRequest::new(
            "logging/setLevel",
            Some(serde_json::json!({"level": "loud"})),
        ));
        assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
        assert!(e.message.contains("loud"), "{}", e.message);
        let e = malformed_or_unknown(&CustomRequest::new("no/such", None));
        assert_eq!(e.code, ErrorCode::METHOD_NOT_FOUND);
        assert_eq!(e.message, "Method not found: no/such");
    }
}
