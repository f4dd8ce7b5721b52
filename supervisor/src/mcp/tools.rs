//! The four tools: their schemas and descriptions (written for a model, with this instance's
//! limits and fetch policy in them), and how a call runs through the HTTP routes' own code.
//!
//! A call's arguments are checked against the names in its input schema (an unknown name is
//! refused), then handed as a JSON object to the function behind the matching route
//! ([`crate::api::execute::execute_body`] and friends), which checks their types and values
//! exactly as it does for HTTP. So a malformed call gets the route's message as a JSON-RPC
//! `invalid params` error, and a run that fails (it threw, timed out, ran out of memory) is a
//! tool result with `isError: true` whose structured content carries the same `error` object
//! as the HTTP answer.

// MCP logging (`logging/setLevel`, `notifications/message`) is deprecated in the newest
// protocol revision, and rmcp marks its types so; clients of the current revisions use it.
#![allow(deprecated)]

use crate::api::auth::Caller;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::web;
use rmcp::model::{
    CallToolResult, ContentBlock, JsonObject, LoggingLevel, LoggingMessageNotificationParam, Tool,
    ToolAnnotations,
};
use rmcp::{ErrorData, Peer, RoleServer};
use serde_json::{json, Map, Value};

use crate::api::answer::Answer;
use crate::api::error::ApiError;
use crate::api::{execute, wasm, AppState};
use crate::config::Config;
use isolate_shared::message::Preset;

/// Tool names.
pub const RUN_JAVASCRIPT: &str = "run_javascript";
/// Tool names.
pub const VALIDATE_CODE: &str = "validate_code";
/// Tool names.
pub const COMPILE_WASM: &str = "compile_wasm";
/// Tool names.
pub const RUN_WASM: &str = "run_wasm";

/// The tool list of this instance, built once from the configuration.
pub struct Catalog {
    tools: Vec<Tool>,
}

impl Catalog {
    /// Builds the tools, their schemas and their descriptions from `config`.
    pub fn new(config: &Config) -> Catalog {
        Catalog {
            tools: vec![
                run_javascript_tool(config),
                validate_code_tool(),
                compile_wasm_tool(config),
                run_wasm_tool(config),
            ],
        }
    }

    /// Every tool, in the order `tools/list` gives them.
    pub fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn find(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }
}

fn object(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

fn mib(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// What the `agent` preset's fetch may reach here, in a sentence.
fn fetch_policy(config: &Config) -> String {
    let f = &config.fetch;
    if f.allow_hosts.is_empty() {
        return "fetch exists but this instance allows no host, so every fetch is refused".into();
    }
    let hosts = if f.allow_hosts.iter().any(|h| h == "*") {
        "any public host".to_string()
    } else {
        f.allow_hosts.join(", ")
    };
    format!(
        "fetch (with Headers, Request, Response) reaches only these hosts: {hosts}; schemes {}; \
         private, loopback and link-local addresses are refused; at most {} fetches per run, \
         {} ms each, responses up to {}; the operator may add credentials to requests for \
         some hosts, and the code never sees them",
        f.allow_schemes.join(", "),
        f.max_requests,
        f.timeout_ms,
        mib(f.max_response_body_bytes),
    )
}

fn run_javascript_tool(config: &Config) -> Tool {
    let l = &config.limits;
    let description = format!(
        "Run JavaScript or TypeScript in a fresh, locked-down sandbox (QuickJS in its own \
process; no filesystem, no processes, no network except the agent preset's fetch) and get its \
result as JSON.\n\
\n\
Code modes: if the code contains a top-level `return`, it runs as the body of an async \
function and the returned value is the result; otherwise the value of the last expression \
statement is the result (\"1 + 1\" gives 2). `await` works in both.\n\
\n\
Presets (all have console, whose output comes back in `logs`; built-in prototypes are frozen):\n\
- minimal: the language core only (Object, Array, String, Number, Math, JSON, RegExp, Promise, \
BigInt, Symbol, Reflect, errors).\n\
- compute (default): minimal plus Date, Map, Set, WeakMap, WeakSet, typed arrays, ArrayBuffer, \
DataView, Atomics, Proxy, WeakRef and timers (setTimeout, setInterval).\n\
- data: compute plus Buffer, TextEncoder, TextDecoder, atob, btoa, URL, URLSearchParams, \
structuredClone and crypto (getRandomValues, randomUUID, subtle).\n\
- agent: data plus {fetch}. Each agent run gets a fresh process.\n\
\n\
Input: `env` (an object) is available to the code as the globals `env` and `input`. \
`timeout` is in milliseconds (default {default_timeout}, at most {max_timeout}). Memory is \
limited to {memory}; the result to {result_bytes} of JSON; logs to {log_entries} entries and \
{log_bytes}. `language: \"typescript\"` strips the types first (no type checking).\n\
\n\
Results follow JSON.stringify, extended: undefined becomes null, BigInt a decimal string, Map \
an array of [key, value] pairs, Set an array, typed arrays arrays of numbers, Error \
{{name, message, stack}}, cycles \"[Circular]\", a returned promise is awaited.\n\
\n\
Output: `result`, `logs` ([{{level, message, time}}]) and `stats`. On failure the result has \
isError true and `error` = {{type, name, message, line?, column?}}, with type one of RUNTIME \
(the code threw or has a syntax error), TIMEOUT, MEMORY_LIMIT, STACK_OVERFLOW, OUTPUT_LIMIT, \
SECURITY, WORKER_CRASHED, BUSY (retry shortly).",
        fetch = fetch_policy(config),
        default_timeout = l.default_timeout_ms,
        max_timeout = l.max_timeout_ms,
        memory = mib(l.memory_bytes),
        result_bytes = mib(l.max_result_bytes),
        log_entries = l.max_log_entries,
        log_bytes = mib(l.max_log_bytes),
    );
    let presets: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
    let input = json!({
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "minLength": 1,
                "description": "The code. Either a script whose last expression is the result, or a function body that returns it.",
            },
            "preset": {
                "type": "string",
                "enum": presets,
                "default": "compute",
                "description": "Which globals the code gets (see the tool description).",
            },
            "env": {
                "type": "object",
                "description": "Input data for the code, exposed as the globals `env` and `input`.",
            },
            "timeout": {
                "type": "number",
                "minimum": 1,
                "description": format!(
                    "Milliseconds before the run is stopped (default {}, values above {} are capped).",
                    l.default_timeout_ms, l.max_timeout_ms
                ),
            },
            "language": {
                "type": "string",
                "enum": ["javascript", "typescript"],
                "default": "javascript",
                "description": "typescript: type annotations are stripped before running (no type checking).",
            },
        },
        "required": ["code"],
        "additionalProperties": false,
    });
    Tool::new(RUN_JAVASCRIPT, description, object(input))
        .with_title("Run JavaScript or TypeScript in a sandbox")
        .with_raw_output_schema(object(execution_output_schema()))
        .with_annotations(
            ToolAnnotations::with_title("Run JavaScript or TypeScript in a sandbox")
                .read_only(false)
                .destructive(false)
                .idempotent(false)
                .open_world(!config.fetch.allow_hosts.is_empty()),
        )
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "type": { "type": "string", "description": "A stable error type, e.g. RUNTIME, TIMEOUT, MEMORY_LIMIT, SYNTAX, WASM_TRAP, COMPILE_ERROR, BUSY." },
            "name": { "type": "string", "description": "The error's name, e.g. TypeError, SyntaxError, TimeoutError." },
            "message": { "type": "string" },
            "line": { "type": "integer", "description": "1-based line in the submitted code, when known." },
            "column": { "type": "integer", "description": "1-based column, when known." },
            "stack": { "type": "string" },
        },
        "required": ["type", "name", "message"],
    })
}

fn usage_schema() -> Value {
    json!({
        "type": "object",
        "description": "What the run used.",
        "properties": {
            "cpuMs": { "type": "number", "description": "CPU milliseconds the worker process spent on the run." },
            "wallMs": { "type": "number", "description": "Milliseconds from the call's arrival to its answer." },
            "heapPeakBytes": { "type": "integer", "description": "The most bytes the run's heap held." },
            "fetches": { "type": "integer", "description": "Fetch calls made (agent preset)." },
            "egressBytes": { "type": "integer", "description": "Bytes those fetches sent and received." },
        },
    })
}

fn logs_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "level": { "type": "string", "enum": ["log", "info", "warn", "error", "debug"] },
                "message": { "type": "string" },
                "time": { "type": "integer", "description": "Milliseconds since the Unix epoch." },
            },
            "required": ["level", "message", "time"],
        },
    })
}

fn execution_output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "success": { "type": "boolean", "description": "true when the code produced a result; false with `error` otherwise." },
            "result": { "description": "The code's result as JSON (present when success is true)." },
            "logs": logs_schema(),
            "executionId": { "type": "string" },
            "stats": {
                "type": "object",
                "properties": {
                    "elapsed": { "type": "number", "description": "Milliseconds, queueing included." },
                    "timeout": { "type": "integer" },
                    "preset": { "type": "string" },
                    "logCount": { "type": "integer" },
                    "logsTruncated": { "type": "boolean" },
                },
            },
            "fetches": { "type": "array", "items": { "type": "object" }, "description": "agent preset: each fetch made and whether it was allowed." },
            "usage": usage_schema(),
            "error": error_schema(),
        },
        "required": ["success"],
    })
}

fn validate_code_tool() -> Tool {
    let description = "Check that JavaScript or TypeScript code parses, without running it. \
Returns valid true, or valid false with `error` = {type: \"SYNTAX\", name: \"SyntaxError\", \
message, line, column}. Invalid code is a normal answer, not a tool error. Code is checked in \
the same form run_javascript would run it (a script, or a function body when it has a \
top-level return).";
    let input = json!({
        "type": "object",
        "properties": {
            "code": { "type": "string", "minLength": 1, "description": "The code to parse." },
            "language": {
                "type": "string",
                "enum": ["javascript", "typescript"],
                "default": "javascript",
            },
        },
        "required": ["code"],
        "additionalProperties": false,
    });
    let output = json!({
        "type": "object",
        "properties": {
            "valid": { "type": "boolean" },
            "error": error_schema(),
        },
        "required": ["valid"],
    });
    Tool::new(VALIDATE_CODE, description, object(input))
        .with_title("Check JavaScript or TypeScript syntax")
        .with_raw_output_schema(object(output))
        .with_annotations(
            ToolAnnotations::with_title("Check JavaScript or TypeScript syntax")
                .read_only(true)
                .destructive(false)
                .idempotent(true)
                .open_world(false),
        )
}

fn compile_wasm_tool(config: &Config) -> Tool {
    let w = &config.wasm;
    let description = format!(
        "Compile a WebAssembly module (binary, base64-encoded, at most {max}) in a sandboxed \
worker and keep it for run_wasm. Returns its `moduleId` (the SHA-256 of the bytes: compiling \
the same bytes again is free and returns the same id), its exports and imports. The store \
keeps at most {modules} modules and evicts the least recently used. WASI preview 1 modules are \
supported with in-memory stdio and no filesystem. A module that does not validate is a tool \
result with isError true and error.type COMPILE_ERROR.",
        max = mib(w.max_module_bytes as u64),
        modules = w.max_modules,
    );
    let input = json!({
        "type": "object",
        "properties": {
            "bytes": {
                "type": "string",
                "contentEncoding": "base64",
                "description": "The .wasm binary, base64 (standard alphabet, padding optional).",
            },
        },
        "required": ["bytes"],
        "additionalProperties": false,
    });
    let output = json!({
        "type": "object",
        "properties": {
            "success": { "type": "boolean" },
            "moduleId": { "type": "string" },
            "byteSize": { "type": "integer" },
            "compileTime": { "type": "string" },
            "cached": { "type": "boolean" },
            "exports": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": { "name": { "type": "string" }, "kind": { "type": "string" } },
                    "required": ["name", "kind"],
                },
            },
            "imports": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "module": { "type": "string" },
                        "name": { "type": "string" },
                        "kind": { "type": "string" },
                    },
                    "required": ["module", "name", "kind"],
                },
            },
            "error": error_schema(),
        },
        "required": ["success"],
    });
    Tool::new(COMPILE_WASM, description, object(input))
        .with_title("Compile a WebAssembly module")
        .with_raw_output_schema(object(output))
        .with_annotations(
            ToolAnnotations::with_title("Compile a WebAssembly module")
                .read_only(false)
                .destructive(false)
                .idempotent(true)
                .open_world(false),
        )
}

fn run_wasm_tool(config: &Config) -> Tool {
    let l = &config.limits;
    let w = &config.wasm;
    let description = format!(
        "Call an exported function of a module compiled with compile_wasm, in a fresh instance \
in a sandboxed worker. `entry` defaults to the first exported function; `args` are its \
parameters (numbers; i64 values beyond 2^53 as decimal strings). For a WASI command (entry \
`_start`), `args` are its command-line arguments and `stdin` its input; stdout and stderr come \
back in the result. Limits: memory {memory}, output {output}, timeout in milliseconds (default \
{default_timeout}, at most {max_timeout}). Output: `result` (one value, an array for several, \
null for none; NaN and infinities as strings) and `stats`. A trap, a timeout or an unknown \
module is a tool result with isError true and error.type WASM_TRAP, TIMEOUT, MEMORY_LIMIT, \
MODULE_NOT_FOUND, NO_CALLABLE_EXPORT, INVALID_ARGS or LINK_ERROR.",
        memory = mib(w.memory_bytes),
        output = mib(w.max_output_bytes),
        default_timeout = l.default_timeout_ms,
        max_timeout = l.max_timeout_ms,
    );
    let input = json!({
        "type": "object",
        "properties": {
            "moduleId": { "type": "string", "minLength": 1, "description": "The id compile_wasm returned." },
            "entry": { "type": "string", "description": "The exported function to call (default: the first one)." },
            "args": {
                "type": "array",
                "items": { "type": ["number", "string", "boolean"] },
                "description": "Arguments of the function, or of a WASI command line.",
            },
            "stdin": { "type": "string", "description": "Standard input of a WASI command." },
            "timeout": { "type": "number", "minimum": 1, "description": "Milliseconds before the run is stopped." },
        },
        "required": ["moduleId"],
        "additionalProperties": false,
    });
    let output = json!({
        "type": "object",
        "properties": {
            "success": { "type": "boolean" },
            "result": { "description": "The function's result (present when success is true)." },
            "moduleId": { "type": "string" },
            "entry": { "type": "string" },
            "stats": { "type": "object" },
            "usage": usage_schema(),
            "exitCode": { "type": ["integer", "null"] },
            "stdout": { "type": "string" },
            "stderr": { "type": "string" },
            "outputTruncated": { "type": "boolean" },
            "error": error_schema(),
        },
        "required": ["success"],
    });
    Tool::new(RUN_WASM, description, object(input))
        .with_title("Run a WebAssembly function")
        .with_raw_output_schema(object(output))
        .with_annotations(
            ToolAnnotations::with_title("Run a WebAssembly function")
                .read_only(true)
                .destructive(false)
                .idempotent(true)
                .open_world(false),
        )
}

/// Counts the bytes of an encoded value without building it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn encoded_len(v: &JsonObject) -> usize {
    let mut c = Counter(0);
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

/// Refuses argument names the tool's input schema does not list.
fn check_names(tool: &Tool, args: &JsonObject) -> Result<(), ErrorData> {
    let Some(Value::Object(known)) = tool.input_schema.get("properties") else {
        return Ok(());
    };
    if let Some(unknown) = args.keys().find(|k| !known.contains_key(k.as_str())) {
        let names: Vec<&str> = known.keys().map(String::as_str).collect();
        return Err(ErrorData::invalid_params(
            format!(
                "{} has no argument {unknown:?} (its arguments: {})",
                tool.name,
                names.join(", ")
            ),
            None,
        ));
    }
    Ok(())
}

/// A refused call as a JSON-RPC error with the route's own message.
fn refused(e: ApiError) -> ErrorData {
    let data = match &e {
        ApiError::UnknownPreset(_) => Some(json!({
            "presets": Preset::ALL.iter().map(|p| p.name()).collect::<Vec<_>>(),
        })),
        ApiError::QuotaExceeded {
            name,
            limit,
            used,
            resets_at,
            ..
        } => Some(json!({
            "quota": { "name": name, "limit": limit, "used": used, "resetsAt": resets_at },
        })),
        ApiError::RateLimited { retry_after } => Some(json!({ "retryAfter": retry_after })),
        _ => None,
    };
    ErrorData::invalid_params(e.to_string(), data)
}

/// A tool result that is not from an execution: the pool was full, or the service failed.
fn service_failure(e: &ApiError) -> CallToolResult {
    let (kind, name) = match e {
        ApiError::Busy => ("BUSY", "BusyError"),
        _ => ("INTERNAL", "InternalError"),
    };
    let mut out = Map::new();
    out.insert("success".into(), Value::Bool(false));
    out.insert(
        "error".into(),
        json!({ "type": kind, "name": name, "message": e.to_string() }),
    );
    finish(out, true, render_failure)
}

/// Runs one call. `Err` is a JSON-RPC error (the call was malformed); every execution,
/// successful or not, is `Ok`.
pub async fn call(
    state: &web::Data<AppState>,
    catalog: &Catalog,
    (name, args): (&str, JsonObject),
    caller: &Caller,
    log_level: Option<LoggingLevel>,
    peer: &Peer<RoleServer>,
) -> Result<CallToolResult, ErrorData> {
    let started = Instant::now();
    let Some(tool) = catalog.find(name) else {
        let names: Vec<&str> = catalog.tools.iter().map(|t| t.name.as_ref()).collect();
        return Err(ErrorData::invalid_params(
            format!("Unknown tool: {name} (tools: {})", names.join(", ")),
            None,
        ));
    };
    check_names(tool, &args)?;
    let config = state.config();
    let limit = if name == COMPILE_WASM {
        wasm::compile_body_limit(config)
    } else {
        config.server.max_body_bytes
    };
    let size = encoded_len(&args);
    if size > limit {
        return Err(ErrorData::invalid_params(
            format!("the arguments of {name} are {size} bytes, more than the limit of {limit}"),
            None,
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let answer = match name {
        RUN_JAVASCRIPT => {
            let route = "mcp run_javascript";
            execute::execute_body(state, &args, &id, started, caller, route).await
        }
        VALIDATE_CODE => execute::validate_body(state, &args, caller).await,
        COMPILE_WASM => wasm::compile_body(state, args, caller).await,
        _ => wasm::run_body(state, &args, caller, started).await,
    };
    let result = match answer {
        Ok(answer) => {
            log_call(name, &id, &answer, started);
            let result = shape(name, answer)?;
            if let (Some(level), RUN_JAVASCRIPT) = (log_level, name) {
                forward_logs(peer, level, &id, &result).await;
            }
            result
        }
        Err(e @ (ApiError::Busy | ApiError::Internal)) => {
            tracing::info!(tool = name, id = %id, error = if matches!(e, ApiError::Busy) { "BUSY" } else { "INTERNAL" }, elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "mcp call");
            service_failure(&e)
        }
        Err(e) => return Err(refused(e)),
    };
    Ok(result)
}

/// One structured line per tool call, like the HTTP request log (never code or `env`).
fn log_call(tool: &str, id: &str, answer: &Answer, started: Instant) {
    let fields = answer.fields.clone().unwrap_or_default();
    tracing::info!(
        tool,
        id = %id,
        status = answer.status.as_u16(),
        preset = fields.preset.unwrap_or("-"),
        error = fields.error_type.unwrap_or("-"),
        worker = fields.worker_pid.unwrap_or(0),
        fetches = fields.fetches.unwrap_or(0),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "mcp call"
    );
}

/// Turns a route's answer into the tool result: structured content, a text rendering, and
/// `isError` for failed runs.
fn shape(tool: &str, answer: Answer) -> Result<CallToolResult, ErrorData> {
    let body: Map<String, Value> = match serde_json::from_slice(&answer.body) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Ok(service_failure(&ApiError::Internal));
        }
    };
    let ok = answer.status == StatusCode::OK;
    Ok(match tool {
        RUN_JAVASCRIPT => {
            let mut out = body;
            out.remove("_meta");
            finish(out, !ok, |o| {
                if ok {
                    render_success(o)
                } else {
                    render_failure(o)
                }
            })
        }
        VALIDATE_CODE => {
            let mut out = Map::new();
            let valid = body.get("valid").and_then(Value::as_bool).unwrap_or(false);
            out.insert("valid".into(), Value::Bool(valid));
            if !valid {
                let message = body
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("the code does not parse")
                    .to_string();
                let timed_out = message.contains("longer than the timeout");
                let mut error = Map::new();
                error.insert(
                    "type".into(),
                    json!(if timed_out { "TIMEOUT" } else { "SYNTAX" }),
                );
                error.insert(
                    "name".into(),
                    json!(if timed_out {
                        "TimeoutError"
                    } else {
                        "SyntaxError"
                    }),
                );
                error.insert("message".into(), Value::String(message));
                for key in ["line", "column"] {
                    if let Some(n) = body.get(key).filter(|v| v.is_u64()) {
                        error.insert(key.into(), n.clone());
                    }
                }
                out.insert("error".into(), Value::Object(error));
            }
            finish(out, false, |o| {
                if valid {
                    "valid: the code parses".to_string()
                } else {
                    format!("invalid: {}", describe_error(o.get("error")))
                }
            })
        }
        COMPILE_WASM => {
            let mut out = Map::new();
            out.insert("success".into(), Value::Bool(ok));
            if ok {
                out.extend(body);
                finish(out, false, |o| {
                    format!(
                        "compiled: moduleId {}\nexports: {}\nimports: {}",
                        o.get("moduleId").and_then(Value::as_str).unwrap_or("?"),
                        o.get("exports").map(Value::to_string).unwrap_or_default(),
                        o.get("imports").map(Value::to_string).unwrap_or_default(),
                    )
                })
            } else {
                let kind = body
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("COMPILE_ERROR")
                    .to_string();
                let message = body
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("the module cannot be compiled")
                    .to_string();
                out.insert(
                    "error".into(),
                    json!({ "type": kind, "name": wasm_error_name(&kind), "message": message }),
                );
                finish(out, true, render_failure)
            }
        }
        _ => {
            let mut out = body;
            out.insert("success".into(), Value::Bool(ok));
            if let Some(Value::Object(error)) = out.get_mut("error") {
                let kind = error
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("INTERNAL")
                    .to_string();
                error
                    .entry("name")
                    .or_insert_with(|| json!(wasm_error_name(&kind)));
                if let Some(Value::String(m)) = error.get_mut("message") {
                    if m.contains("POST /wasm/compile") {
                        *m = m.replace("POST /wasm/compile", "the compile_wasm tool");
                    }
                }
            }
            finish(out, !ok, |o| {
                if ok {
                    render_success(o)
                } else {
                    render_failure(o)
                }
            })
        }
    })
}

fn wasm_error_name(kind: &str) -> &'static str {
    match kind {
        "COMPILE_ERROR" => "CompileError",
        "WASM_TRAP" => "RuntimeError",
        "LINK_ERROR" => "LinkError",
        "TIMEOUT" => "TimeoutError",
        "MEMORY_LIMIT" => "RangeError",
        "SECURITY" => "SecurityError",
        "WORKER_CRASHED" => "WorkerCrashedError",
        "BUSY" => "BusyError",
        "INTERNAL" => "InternalError",
        _ => "WasmError",
    }
}

fn finish(
    out: Map<String, Value>,
    is_error: bool,
    render: impl FnOnce(&Map<String, Value>) -> String,
) -> CallToolResult {
    let text = render(&out);
    let mut result = if is_error {
        CallToolResult::error(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::success(vec![ContentBlock::text(text)])
    };
    result.structured_content = Some(Value::Object(out));
    result
}

fn describe_error(error: Option<&Value>) -> String {
    let Some(e) = error else {
        return "unknown error".into();
    };
    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
    let mut text = format!("{} {}: {}", s("type"), s("name"), s("message"));
    match (
        e.get("line").and_then(Value::as_u64),
        e.get("column").and_then(Value::as_u64),
    ) {
        (Some(l), Some(c)) => text.push_str(&format!(" (line {l}, column {c})")),
        (Some(l), None) => text.push_str(&format!(" (line {l})")),
        _ => {}
    }
    text
}

fn render_logs(out: &Map<String, Value>, text: &mut String) {
    let Some(Value::Array(logs)) = out.get("logs") else {
        return;
    };
    if logs.is_empty() {
        return;
    }
    text.push_str("\nlogs:");
    for l in logs {
        let level = l.get("level").and_then(Value::as_str).unwrap_or("log");
        let message = l.get("message").and_then(Value::as_str).unwrap_or("");
        text.push_str(&format!("\n[{level}] {message}"));
    }
    if out
        .get("stats")
        .and_then(|s| s.get("logsTruncated"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        text.push_str("\n(logs truncated)");
    }
}

fn render_wasi_output(out: &Map<String, Value>, text: &mut String) {
    for key in ["stdout", "stderr"] {
        if let Some(s) = out
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            text.push_str(&format!("\n{key}:\n{s}"));
        }
    }
}

fn render_success(out: &Map<String, Value>) -> String {
    let result = out.get("result").cloned().unwrap_or(Value::Null);
    let mut text = format!("result: {result}");
    render_logs(out, &mut text);
    render_wasi_output(out, &mut text);
    text
}

fn render_failure(out: &Map<String, Value>) -> String {
    let mut text = format!("error: {}", describe_error(out.get("error")));
    render_logs(out, &mut text);
    render_wasi_output(out, &mut text);
    text
}

fn mcp_level(level: &str) -> LoggingLevel {
    match level {
        "debug" => LoggingLevel::Debug,
        "warn" => LoggingLevel::Warning,
        "error" => LoggingLevel::Error,
        _ => LoggingLevel::Info,
    }
}

fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// Sends the run's console entries at or above the client's level as `notifications/message`
/// (logger `console`), before the result.
async fn forward_logs(
    peer: &Peer<RoleServer>,
    min: LoggingLevel,
    id: &str,
    result: &CallToolResult,
) {
    let Some(Value::Array(logs)) = result
        .structured_content
        .as_ref()
        .and_then(|s| s.get("logs"))
    else {
        return;
    };
    for entry in logs {
        let level = mcp_level(entry.get("level").and_then(Value::as_str).unwrap_or("log"));
        if rank(level) < rank(min) {
            continue;
        }
        let data = json!({
            "executionId": id,
            "level": entry.get("level").cloned().unwrap_or(Value::Null),
            "message": entry.get("message").cloned().unwrap_or(Value::Null),
            "time": entry.get("time").cloned().unwrap_or(Value::Null),
        });
        let mut param = LoggingMessageNotificationParam::new(level, data);
        param.logger = Some("console".into());
        if peer.notify_logging_message(param).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_for_input_and_output() {
        let catalog = Catalog::new(&Config::default());
        let names: Vec<&str> = catalog.tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names,
            [RUN_JAVASCRIPT, VALIDATE_CODE, COMPILE_WASM, RUN_WASM]
        );
        for t in &catalog.tools {
            assert_eq!(
                t.input_schema.get("type"),
                Some(&json!("object")),
                "{}",
                t.name
            );
            assert_eq!(
                t.input_schema.get("additionalProperties"),
                Some(&json!(false))
            );
            let out = t.output_schema.as_ref().expect("output schema");
            assert_eq!(out.get("type"), Some(&json!("object")), "{}", t.name);
            assert!(t.description.as_ref().is_some_and(|d| d.len() > 100));
        }
    }

    #[test]
    fn the_description_states_this_instances_fetch_policy_and_limits() {
        let mut config = Config::default();
        let d = run_javascript_tool(&config).description.unwrap_or_default();
        assert!(d.contains("allows no host"), "{d}");
        assert!(d.contains("at most 30000"), "{d}");
        config.fetch.allow_hosts = vec!["api.example.com".into()];
        let d = run_javascript_tool(&config).description.unwrap_or_default();
        assert!(d.contains("only these hosts: api.example.com"), "{d}");
    }

    #[test]
    fn unknown_argument_names_are_refused_with_the_known_ones() {
        let catalog = Catalog::new(&Config::default());
        let tool = catalog.find(RUN_JAVASCRIPT).expect("tool");
        let mut args = JsonObject::new();
        args.insert("code".into(), json!("1"));
        check_names(tool, &args).expect("code is known");
        args.insert("cdoe".into(), json!("1"));
        let e = check_names(tool, &args).expect_err("a typo is refused");
        assert!(e.message.contains("\"cdoe\""), "{}", e.message);
        assert!(e.message.contains("code, preset"), "{}", e.message);
    }

    #[test]
    fn answers_become_results_with_is_error_only_for_failed_runs() {
        let ok = Answer::json(
            StatusCode::OK,
            &json!({"success": true, "result": 2, "logs": [], "stats": {}, "_meta": {}}),
        );
        let r = shape(RUN_JAVASCRIPT, ok).expect("shaped");
        assert_eq!(r.is_error, Some(false));
        let s = r.structured_content.expect("structured");
        assert_eq!(s["result"], json!(2));
        assert!(s.get("_meta").is_none());

        let failed = Answer::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"success": false, "error": {"type": "RUNTIME", "name": "Error", "message": "boom", "line": 1, "column": 7}, "logs": [], "stats": {}}),
        );
        let r = shape(RUN_JAVASCRIPT, failed).expect("shaped");
        assert_eq!(r.is_error, Some(true));
        let text = format!("{:?}", r.content);
        assert!(
            text.contains("RUNTIME Error: boom (line 1, column 7)"),
            "{text}"
        );

        let invalid = Answer::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"valid": false, "error": "Unexpected token", "line": 2, "column": 3}),
        );
        let r = shape(VALIDATE_CODE, invalid).expect("shaped");
        assert_eq!(r.is_error, Some(false));
        let s = r.structured_content.expect("structured");
        assert_eq!(s["error"]["type"], json!("SYNTAX"));
        assert_eq!(s["error"]["line"], json!(2));

        let trap = Answer::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"success": false, "error": {"type": "WASM_TRAP", "message": "unreachable"}}),
        );
        let r = shape(RUN_WASM, trap).expect("shaped");
        assert_eq!(r.is_error, Some(true));
        let s = r.structured_content.expect("structured");
        assert_eq!(s["error"]["name"], json!("RuntimeError"));
    }

    #[test]
    fn console_levels_map_to_mcp_levels_in_order() {
        assert_eq!(mcp_level("log"), LoggingLevel::Info);
        assert_eq!(mcp_level("warn"), LoggingLevel::Warning);
        assert!(rank(mcp_level("debug")) < rank(mcp_level("info")));
        assert!(rank(mcp_level("error")) > rank(mcp_level("warn")));
    }
}
