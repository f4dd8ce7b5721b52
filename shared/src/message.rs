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

/// The handshake a process sends when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the process speaks ([`crate::version::CURRENT`]).
    pub protocol: u32,
    /// The process id as the process itself sees it (informational).
    pub pid: u32,
}

impl Hello {
    /// The greeting of a process of this build.
    pub fn current() -> Self {
        Hello {
            protocol: crate::version::CURRENT,
            pid: std::process::id(),
        }
    }
}

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
