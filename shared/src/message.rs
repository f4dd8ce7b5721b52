//! Messages between the supervisor and one worker.
//!
//! A worker speaks first: it sends [`WorkerMessage::Hello`] as soon as it is ready. From then on
//! the exchange is strictly request/answer: the supervisor sends one job
//! ([`SupervisorMessage::Execute`], `Validate` or `Probe`), the worker answers with exactly one
//! final [`WorkerMessage`]. A worker that answers out of turn, or with the wrong kind of answer,
//! is treated as broken and killed.
//!
//! **Host calls** (protocol [`crate::version::V4_FETCH`]). While it runs an `Execute` job of the
//! `agent` preset, a worker may send [`WorkerMessage::Fetch`] instead of its final answer. It
//! then blocks until the supervisor writes exactly one [`SupervisorMessage::FetchResult`] (a
//! response, or why there is none: a denial is an answer too), and goes on running the job. So
//! a job's exchange is `Execute, (Fetch, FetchResult)*, Executed`, strictly alternating, and the
//! worker never has more than one host call outstanding. A host call for a job that allows none,
//! a `FetchResult` the worker did not ask for, or a job frame while a host call is outstanding is
//! a protocol error: the supervisor kills such a worker, and the worker exits on such a frame.

use serde::{Deserialize, Serialize};

pub use crate::version::Hello;

/// A message from the supervisor to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SupervisorMessage {
    /// Run a piece of JavaScript.
    Execute(ExecuteJob),
    /// Parse a piece of JavaScript without running it.
    Validate(ValidateJob),
    /// Attempt one forbidden operation and report how the sandbox answered. Only builds with
    /// the `sandbox-selftest` feature act on it; others answer that it is not compiled in.
    Probe(ProbeJob),
    /// The answer to the worker's [`WorkerMessage::Fetch`] host call.
    FetchResult(FetchResult),
    /// Validate and compile a WebAssembly module; answered by [`WorkerMessage::WasmCompiled`].
    WasmCompile(WasmCompileJob),
    /// Run one export of a compiled module; answered by [`WorkerMessage::WasmRan`].
    WasmRun(WasmRunJob),
}

/// One sandbox probe: the name of the operation and the targets it aims at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeJob {
    /// Which operation to attempt (see the worker's `selftest` module).
    pub probe: String,
    /// The supervisor's pid (target of kill, ptrace and process_vm_readv).
    pub supervisor_pid: u32,
    /// A TCP port on 127.0.0.1 to connect to.
    pub tcp_port: u16,
    /// A Unix socket path to connect to.
    pub unix_path: String,
}

/// How a probe ended, when the worker survived it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeOutcome {
    /// The operation succeeded (the sandbox did not stop it).
    Succeeded,
    /// The operation failed with this errno.
    Failed(i32),
    /// No such probe, or probes are not compiled into this build.
    Unsupported(String),
}

/// A message from a worker to the supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerMessage {
    /// The first frame a worker sends: it is locked down and waiting for jobs.
    Hello(Hello, crate::zygote::LockdownReport),
    /// The answer to [`SupervisorMessage::Execute`].
    Executed(ExecuteOutcome),
    /// The answer to [`SupervisorMessage::Validate`].
    Validated(ValidateOutcome),
    /// The answer to [`SupervisorMessage::Probe`].
    Probed(ProbeOutcome),
    /// The answer to [`SupervisorMessage::WasmCompile`].
    WasmCompiled(WasmCompileOutcome),
    /// The answer to [`SupervisorMessage::WasmRun`].
    WasmRan(WasmRunOutcome),
    /// The worker attempted a system call on the seccomp kill list and is exiting. Written by
    /// its SIGSYS handler from a pre-encoded template, so the payload has a fixed layout: the
    /// system call number as 4 little-endian bytes.
    Violation {
        /// The system call number, little-endian.
        syscall_le: [u8; 4],
    },
    /// A host call: perform this HTTP request under the egress policy and answer with
    /// [`SupervisorMessage::FetchResult`]. Only during an `agent` job.
    Fetch(FetchRequest),
}

/// The largest request or response body a host call carries, in bytes. The supervisor's
/// configured fetch limits may not exceed it, and a worker refuses to send a larger request body.
pub const FETCH_MAX_BODY_BYTES: u64 = 32 << 20;

/// What to do with a redirect answer (the `redirect` option of `fetch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedirectMode {
    /// Follow it (each hop is checked against the egress policy again).
    Follow,
    /// Fail the fetch.
    Error,
    /// Return the redirect answer itself.
    Manual,
}

/// One HTTP request asked for by the code. Nothing in it is trusted: the supervisor parses
/// and checks every field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The method, as the code wrote it.
    pub method: String,
    /// The absolute URL, as the code wrote it.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
    /// What to do with redirects.
    pub redirect: RedirectMode,
}

/// The answer to a [`FetchRequest`]: a response, or the message of the `TypeError` the
/// promise rejects with.
pub type FetchResult = Result<FetchResponse, String>;

/// An HTTP response as the code sees it (headers the configuration attached never appear).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResponse {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub status_text: String,
    /// The URL of the final hop.
    pub url: String,
    /// Whether at least one redirect was followed.
    pub redirected: bool,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// The TypeScript stripper workers use and its version, for `/stats` (the worker's
/// `swc_ts_fast_strip` dependency; kept here so the supervisor need not link the worker).
pub const TS_STRIPPER: &str = "swc_ts_fast_strip 60 (strip-only)";

/// Which globals an execution gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Preset {
    /// The language core only.
    Minimal,
    /// The language built-ins.
    Compute,
    /// `compute` plus binary and encoding APIs.
    Data,
    /// `data` plus a supervised `fetch`.
    Agent,
}

impl Preset {
    /// Every preset, in order of increasing capability.
    pub const ALL: [Preset; 4] = [
        Preset::Minimal,
        Preset::Compute,
        Preset::Data,
        Preset::Agent,
    ];

    /// Whether every execution in this preset gets a process of its own (`agent`, whose code
    /// may reach the network through host calls): the worker exits after answering, without
    /// preparing for another job, and the supervisor replaces it.
    pub fn fresh_process(self) -> bool {
        self == Preset::Agent
    }

    /// The name used in the HTTP API.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Minimal => "minimal",
            Preset::Compute => "compute",
            Preset::Data => "data",
            Preset::Agent => "agent",
        }
    }

    /// Looks a preset up by its API name.
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// What the preset offers, as `/stats` and the MCP tools describe it.
    pub fn description(self) -> &'static str {
        match self {
            Preset::Minimal => {
                "Language core only: objects, arrays, strings, numbers, Math, JSON, RegExp, Promise"
            }
            Preset::Compute => {
                "Language built-ins: minimal plus Date, Map, Set, typed arrays, Proxy, WeakRef, timers"
            }
            Preset::Data => {
                "compute plus Buffer, TextEncoder/Decoder, atob/btoa, URL/URLSearchParams, \
                 structuredClone, crypto (getRandomValues, randomUUID, subtle)"
            }
            Preset::Agent => {
                "data plus fetch, Headers, Request and Response, through the service's egress policy"
            }
        }
    }
}

/// Per-execution limits, decided by the supervisor's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsLimits {
    /// Heap limit of the QuickJS runtime in bytes.
    pub memory_bytes: u64,
    /// Limit on the JavaScript stack in bytes.
    pub stack_bytes: u64,
    /// Largest serialised result in bytes.
    pub max_result_bytes: u64,
    /// Deepest nesting of the serialised result.
    pub max_result_depth: u32,
    /// Most console entries kept.
    pub max_log_entries: u32,
    /// Most console bytes kept (sum of message lengths).
    pub max_log_bytes: u64,
}

impl Default for JsLimits {
    fn default() -> Self {
        JsLimits {
            memory_bytes: 128 << 20,
            stack_bytes: 1 << 20,
            max_result_bytes: 1 << 20,
            max_result_depth: 256,
            max_log_entries: 1000,
            max_log_bytes: 1 << 20,
        }
    }
}

/// One execution of JavaScript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteJob {
    /// The source text.
    pub code: String,
    /// Which globals to expose.
    pub preset: Preset,
    /// The request's `env` object as JSON text, exposed as `env` and `input`.
    pub env_json: Option<String>,
    /// The engine's own deadline in milliseconds.
    pub timeout_ms: u64,
    /// Resource limits.
    pub limits: JsLimits,
    /// The language of `code`; TypeScript is stripped to JavaScript in the worker first.
    pub language: Language,
    /// How the code runs: decided from the code, or always as an async function body.
    pub form: CodeForm,
    /// JSON text exposed as the global `data` (the `/deno` route's `data`), when present.
    pub data_json: Option<String>,
}

/// The source language of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Language {
    /// JavaScript, run as it is.
    #[default]
    JavaScript,
    /// TypeScript: its type syntax is replaced by whitespace (positions are kept), then the
    /// result runs as JavaScript. Nothing is type-checked.
    TypeScript,
}

impl Language {
    /// The name used in the HTTP API.
    pub fn name(self) -> &'static str {
        match self {
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
        }
    }
}

/// How the code of an [`ExecuteJob`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum CodeForm {
    /// As a script, or as an async function body when it has a top-level `return`.
    #[default]
    Auto,
    /// Always as the body of an async function (the `/deno` route).
    FunctionBody,
}

/// The answer to an [`ExecuteJob`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteOutcome {
    /// The result as JSON text, or why there is none.
    pub result: Result<String, JobError>,
    /// Captured console output.
    pub logs: Vec<LogEntry>,
    /// Whether console output was dropped because of the caps.
    pub logs_truncated: bool,
    /// Time spent inside the worker, in microseconds.
    pub elapsed_us: u64,
    /// CPU time the worker process spent on this job, from reading it to writing the answer,
    /// in microseconds (set by the worker's serving loop).
    pub cpu_us: u64,
    /// The most bytes the job's JavaScript heap held at once, as its allocator counted them.
    pub heap_peak_bytes: u64,
    /// The worker asks to be replaced (its runtime hit a limit).
    pub recycle: bool,
}

/// A failed execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobError {
    /// The stable error class.
    pub kind: ErrorKind,
    /// The JavaScript error name (`TypeError`, …) or a name for the class.
    pub name: String,
    /// Human-readable message.
    pub message: String,
    /// JavaScript stack trace, when there is one.
    pub stack: Option<String>,
    /// 1-based line in the user's code, when known.
    pub line: Option<u32>,
    /// 1-based column in the user's code, when known.
    pub column: Option<u32>,
}

impl ExecuteOutcome {
    /// An outcome with only an error: no logs, and the worker is to be replaced.
    pub fn failed(error: JobError) -> Self {
        ExecuteOutcome {
            result: Err(error),
            logs: Vec::new(),
            logs_truncated: false,
            elapsed_us: 0,
            cpu_us: 0,
            heap_peak_bytes: 0,
            recycle: true,
        }
    }
}

impl JobError {
    /// An error with no stack or position.
    pub fn new(kind: ErrorKind, name: impl Into<String>, message: impl Into<String>) -> Self {
        JobError {
            kind,
            name: name.into(),
            message: message.into(),
            stack: None,
            line: None,
            column: None,
        }
    }
}

/// Stable error classes; [`ErrorKind::as_str`] gives the API's `type` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The code ran past its timeout.
    Timeout,
    /// The code threw (including syntax errors).
    Runtime,
    /// The code attempted something the sandbox forbids.
    Security,
    /// The code exhausted its memory limit.
    MemoryLimit,
    /// The code exhausted its stack.
    StackOverflow,
    /// The result or its serialisation exceeded its cap.
    OutputLimit,
    /// The worker process died while running the code.
    WorkerCrashed,
    /// No worker could take the job.
    Busy,
    /// The service failed for reasons unrelated to the code.
    Internal,
}

impl ErrorKind {
    /// The `type` string of the HTTP API.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::Runtime => "RUNTIME",
            ErrorKind::Security => "SECURITY",
            ErrorKind::MemoryLimit => "MEMORY_LIMIT",
            ErrorKind::StackOverflow => "STACK_OVERFLOW",
            ErrorKind::OutputLimit => "OUTPUT_LIMIT",
            ErrorKind::WorkerCrashed => "WORKER_CRASHED",
            ErrorKind::Busy => "BUSY",
            ErrorKind::Internal => "INTERNAL",
        }
    }
}

/// Console levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogLevel {
    /// `console.log`
    Log,
    /// `console.info`
    Info,
    /// `console.warn`
    Warn,
    /// `console.error`
    Error,
    /// `console.debug`
    Debug,
}

impl LogLevel {
    /// The level's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Log => "log",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Debug => "debug",
        }
    }
}

/// One captured console call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The console method used.
    pub level: LogLevel,
    /// The formatted arguments.
    pub message: String,
    /// Wall-clock time of the call, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// A request to parse code without running it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidateJob {
    /// The source text.
    pub code: String,
    /// The language of `code`.
    pub language: Language,
}

/// The answer to a [`ValidateJob`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidateOutcome {
    /// `None` when the code parses; otherwise the syntax error.
    pub error: Option<SyntaxError>,
}

/// A syntax error with its position in the user's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntaxError {
    /// The parser's message.
    pub message: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// The deepest WebAssembly stack a call may use, in bytes (wasmtime's `max_wasm_stack`). It is
/// a property of the engine, which the zygote creates once, so it is fixed per build. Deeper
/// recursion traps with `stack_overflow`; the worker's own stack (8 MiB) stays well above it.
pub const WASM_MAX_STACK_BYTES: usize = 512 << 10;

/// A module to validate and compile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmCompileJob {
    /// The module's binary (or text) form, as uploaded.
    pub bytes: Vec<u8>,
}

/// The answer to a [`WasmCompileJob`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmCompileOutcome {
    /// The compiled module, or the compiler's message for a malformed one.
    pub result: Result<WasmCompiled, String>,
    /// Time spent validating and compiling, in microseconds.
    pub elapsed_us: u64,
}

/// A compiled module: wasmtime's serialised artifact and the module's interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmCompiled {
    /// `Module::serialize` of the compiled module. Only ever deserialised inside a worker.
    pub artifact: Vec<u8>,
    /// Exports in declaration order.
    pub exports: Vec<WasmExtern>,
    /// Imports in declaration order.
    pub imports: Vec<WasmImport>,
}

/// The kind of an import or export, named as the JavaScript API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WasmKind {
    /// A function.
    Function,
    /// A linear memory.
    Memory,
    /// A table.
    Table,
    /// A global.
    Global,
    /// An exception tag.
    Tag,
}

impl WasmKind {
    /// The `kind` string of the HTTP API.
    pub fn as_str(self) -> &'static str {
        match self {
            WasmKind::Function => "function",
            WasmKind::Memory => "memory",
            WasmKind::Table => "table",
            WasmKind::Global => "global",
            WasmKind::Tag => "tag",
        }
    }
}

/// A value type of a function parameter or result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WasmType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 128-bit vector.
    V128,
    /// Any reference type.
    Ref,
}

impl WasmType {
    /// The type's name in the text format.
    pub fn as_str(self) -> &'static str {
        match self {
            WasmType::I32 => "i32",
            WasmType::I64 => "i64",
            WasmType::F32 => "f32",
            WasmType::F64 => "f64",
            WasmType::V128 => "v128",
            WasmType::Ref => "ref",
        }
    }
}

/// One export of a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmExtern {
    /// The export's name.
    pub name: String,
    /// What it is.
    pub kind: WasmKind,
    /// Parameter types (functions only).
    pub params: Vec<WasmType>,
    /// Result types (functions only).
    pub results: Vec<WasmType>,
}

/// One import of a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmImport {
    /// The module name (`env`, `wasi_snapshot_preview1`, …).
    pub module: String,
    /// The field name.
    pub name: String,
    /// What it is.
    pub kind: WasmKind,
}

/// An argument or import value as the request gave it; the worker converts it to the type the
/// module declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WasmArg {
    /// A JSON integer.
    Int(i64),
    /// A JSON number with a fraction or exponent, or an integer beyond the i64 range.
    Float(f64),
    /// A JSON string (i64 values may be given as decimal strings).
    Text(String),
    /// A JSON boolean (accepted as 0 or 1 for integer types).
    Bool(bool),
}

/// A value the request supplies for one non-WASI import (a global's value, or the constant a
/// function import returns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WasmImportValue {
    /// The import's module name.
    pub module: String,
    /// The import's field name.
    pub name: String,
    /// The value.
    pub value: WasmArg,
}

/// Per-run limits, decided by the supervisor's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmLimits {
    /// Largest size of each linear memory, in bytes (`memories` bounds how many there are).
    pub memory_bytes: u64,
    /// Most elements of any one table.
    pub table_elements: u64,
    /// Most instances a run may create.
    pub instances: u32,
    /// Most tables a run may create.
    pub tables: u32,
    /// Most memories a run may create.
    pub memories: u32,
    /// Most bytes kept of each of stdout and stderr.
    pub max_output_bytes: u64,
    /// Modules a worker keeps deserialised for later runs.
    pub worker_cache_modules: u32,
}

/// The WASI side of a run: what a module that imports `wasi_snapshot_preview1` sees.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WasiInput {
    /// Standard input.
    pub stdin: Vec<u8>,
    /// Program arguments (the first is the program name).
    pub args: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
}

/// One run of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WasmRunJob {
    /// The module's id in the supervisor's store (the worker's cache key).
    pub module_id: String,
    /// The compiled artifact, sent only when the worker is not known to hold the module.
    pub artifact: Option<Vec<u8>>,
    /// The export to call.
    pub entry: String,
    /// Arguments, converted to the export's parameter types.
    pub args: Vec<WasmArg>,
    /// Values for non-WASI imports.
    pub imports: Vec<WasmImportValue>,
    /// Satisfy function imports nothing else provides with functions returning zeros.
    pub stub_missing_imports: bool,
    /// Standard streams, arguments and environment for WASI modules.
    pub wasi: WasiInput,
    /// The engine's own deadline in milliseconds (instantiation and call).
    pub timeout_ms: u64,
    /// Resource limits.
    pub limits: WasmLimits,
}

/// A result value of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum WasmValue {
    /// 32-bit integer.
    I32(i32),
    /// 64-bit integer.
    I64(i64),
    /// 32-bit float.
    F32(f32),
    /// 64-bit float.
    F64(f64),
    /// A value JSON cannot carry (vector or reference); only its type is reported.
    Opaque(WasmType),
}

/// Stable error classes of a run; [`WasmErrorKind::as_str`] gives the API's `type` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WasmErrorKind {
    /// The module trapped (`trap_code` says how).
    Trap,
    /// The run passed its timeout.
    Timeout,
    /// The module asked for more memory, table space or instances than the limits allow.
    MemoryLimit,
    /// An import could not be satisfied.
    Link,
    /// The arguments do not match the export's parameters.
    InvalidArgs,
    /// The entry is not an exported function.
    NoSuchExport,
    /// The stored artifact could not be loaded (compile the module again).
    ModuleUnusable,
    /// The worker failed for reasons unrelated to the module.
    Internal,
}

impl WasmErrorKind {
    /// The `type` string of the HTTP API.
    pub fn as_str(self) -> &'static str {
        match self {
            WasmErrorKind::Trap => "WASM_TRAP",
            WasmErrorKind::Timeout => "TIMEOUT",
            WasmErrorKind::MemoryLimit => "MEMORY_LIMIT",
            WasmErrorKind::Link => "LINK_ERROR",
            WasmErrorKind::InvalidArgs => "INVALID_ARGS",
            WasmErrorKind::NoSuchExport => "NO_CALLABLE_EXPORT",
            WasmErrorKind::ModuleUnusable => "MODULE_UNUSABLE",
            WasmErrorKind::Internal => "INTERNAL",
        }
    }
}

/// A failed run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmError {
    /// The stable error class.
    pub kind: WasmErrorKind,
    /// Human-readable message (wasmtime's, for traps and link errors).
    pub message: String,
    /// For traps: a stable name of the trap (`unreachable`, `stack_overflow`, …).
    pub trap_code: Option<String>,
}

/// Measurements of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WasmRunStats {
    /// Deserialising the artifact (0 when the worker had the module), in microseconds.
    pub load_us: u64,
    /// Instantiation (including the start function), in microseconds.
    pub instantiate_us: u64,
    /// The call itself, in microseconds.
    pub call_us: u64,
    /// Pages of the first memory at the end of the run.
    pub memory_pages: u64,
    /// Bytes of the first memory at the end of the run.
    pub memory_bytes: u64,
    /// Exports of the instance.
    pub exports: u32,
}

/// The answer to a [`WasmRunJob`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WasmRunOutcome {
    /// The results of the call, or why there are none.
    pub result: Result<Vec<WasmValue>, WasmError>,
    /// The worker does not hold the module and no artifact came with the job: send it again
    /// with the artifact. Nothing ran.
    pub needs_artifact: bool,
    /// Whether the module imports WASI (then `exit_code`, `stdout` and `stderr` apply).
    pub wasi: bool,
    /// The code given to `proc_exit`, or 0 when a WASI command returned normally.
    pub exit_code: Option<i32>,
    /// Captured standard output (capped).
    pub stdout: Vec<u8>,
    /// Captured standard error (capped).
    pub stderr: Vec<u8>,
    /// Whether output was dropped because of the cap.
    pub output_truncated: bool,
    /// Imports satisfied with zero-returning stubs (`module.name`).
    pub stubbed_imports: Vec<String>,
    /// Modules the worker dropped from its cache to make room (the supervisor forgets them).
    pub evicted: Vec<String>,
    /// Measurements.
    pub stats: WasmRunStats,
    /// CPU time the worker process spent on this job, from reading it to writing the answer,
    /// in microseconds (set by the worker's serving loop).
    pub cpu_us: u64,
    /// The worker asks to be replaced.
    pub recycle: bool,
}

impl WasmRunOutcome {
    /// An outcome with only an error.
    pub fn failed(kind: WasmErrorKind, message: impl Into<String>) -> Self {
        WasmRunOutcome {
            result: Err(WasmError {
                kind,
                message: message.into(),
                trap_code: None,
            }),
            needs_artifact: false,
            wasi: false,
            exit_code: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            output_truncated: false,
            stubbed_imports: Vec::new(),
            evicted: Vec::new(),
            stats: WasmRunStats::default(),
            cpu_us: 0,
            recycle: false,
        }
    }
}
