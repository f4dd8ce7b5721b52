//! The service's configuration: one typed tree, loaded in layers.
//!
//! Defaults (written next to each field) → the TOML file given with `--config` → the
//! `ISOLATE_*` environment variables. Unknown keys in the file are errors (a typo must not be
//! silently ignored), unknown `ISOLATE_*` variables get a warning, and [`Config::validate`]
//! rejects values that cannot work, naming the key. `policies/config.toml` documents every key.

use std::collections::BTreeMap;
use std::path::Path;

use isolate_shared::message::{JsLimits, WasmLimits};
use serde::{Deserialize, Serialize, Serializer};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (names the key).
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {key} {problem}")]
    Invalid {
        /// The dotted key, or the environment variable.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The HTTP listener.
    pub server: ServerConfig,
    /// Authentication and rate limiting.
    pub auth: AuthConfig,
    /// Cross-origin requests.
    pub cors: CorsConfig,
    /// The worker pool.
    pub workers: WorkersConfig,
    /// Per-execution limits.
    pub limits: LimitsConfig,
    /// The sandbox layers behind the engine.
    pub sandbox: SandboxSettings,
    /// The `agent` preset's fetch: egress policy, secrets and limits.
    pub fetch: FetchConfig,
    /// WebAssembly: module store and per-run limits.
    pub wasm: WasmConfig,
    /// Logging.
    pub log: LogConfig,
    /// The MCP server (see [`crate::mcp::McpConfig`]).
    pub mcp: crate::mcp::McpConfig,
}

/// Serialises a secret as `"[redacted]"` when it is set, so that a serialised configuration
/// never carries it.
fn redacted<S: Serializer>(value: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => serializer.serialize_some("[redacted]"),
        None => serializer.serialize_none(),
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind (`ISOLATE_HOST`). Default `127.0.0.1`: only this machine can connect.
    pub host: String,
    /// Port to bind (`ISOLATE_PORT`). Default 5900; 0 picks a free port (printed at start).
    pub port: u16,
    /// Largest request body in bytes; larger ones get 413. Default 1 MiB.
    pub max_body_bytes: usize,
    /// HTTP threads. Default: the number of CPUs (at most 4).
    pub http_threads: Option<usize>,
    /// Longest time to receive a whole request body, from the end of the headers; slower
    /// bodies get 408. Default 30 s.
    pub body_timeout_ms: u64,
    /// Longest time an answer may wait for the client to read it (no progress at all on the
    /// connection) before the connection is closed. Default 10 s.
    pub write_timeout_ms: u64,
    /// Host names accepted in the `Host` header besides IP addresses and `localhost` (for a
    /// reverse proxy or a name in /etc/hosts); `"*"` accepts any. Default none: a page that
    /// rebinds its own name to this address is refused.
    pub allowed_hosts: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 5900,
            max_body_bytes: 1 << 20,
            http_threads: None,
            body_timeout_ms: 30_000,
            write_timeout_ms: 10_000,
            allowed_hosts: Vec::new(),
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bearer token every route but `/health` requires (`ISOLATE_AUTH_TOKEN`). Empty: no auth.
    #[serde(serialize_with = "redacted")]
    pub token: Option<String>,
    /// A separate token for `GET /status`; when set, only it opens `/status`. Unset: `/status`
    /// takes `auth.token` like every other route.
    #[serde(serialize_with = "redacted")]
    pub admin_token: Option<String>,
    /// Requests per minute per token (burst of the same size); 0 disables. Default 60.
    /// Applies only when a token is set.
    pub rate_limit_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token: None,
            admin_token: None,
            rate_limit_per_minute: 60,
        }
    }
}

/// `[cors]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed to call the API from a browser. Empty (default): no CORS headers at all.
    /// `"*"` allows any origin and must be chosen explicitly.
    pub origins: Vec<String>,
}

/// `[workers]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// Idle workers kept ready. Default 4.
    pub prewarm: usize,
    /// Executions running at once. Default 50.
    pub max_concurrent: usize,
    /// Requests allowed to wait for a slot; more get 503 `BUSY`. Default 100.
    pub queue_size: usize,
    /// Longest wait for a slot, in ms, before 503 `BUSY`. Default 10000.
    pub queue_timeout_ms: u64,
    /// Executions a worker process serves before it is replaced. Default 1000; 1 gives every
    /// execution a fresh process. Workers are always replaced after a timeout, memory-limit
    /// hit, crash or protocol error.
    pub recycle_after: u32,
    /// Longest wait for the zygote to fork a worker and for the worker to greet, in ms.
    /// Default 10000.
    pub spawn_timeout_ms: u64,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            prewarm: 4,
            max_concurrent: 50,
            queue_size: 100,
            queue_timeout_ms: 10_000,
            recycle_after: 1000,
            spawn_timeout_ms: 10_000,
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Timeout when a request gives none, in ms. Default 5000.
    pub default_timeout_ms: u64,
    /// Largest timeout a request may ask for, in ms; larger ones are capped. Default 30000.
    pub max_timeout_ms: u64,
    /// Timeout of a `/deno` request that gives none, in ms. Default 30000.
    pub deno_default_timeout_ms: u64,
    /// Largest timeout a `/deno` request may ask for, in ms; larger ones are capped.
    /// Default 60000.
    pub deno_max_timeout_ms: u64,
    /// How long past its timeout a worker may keep running before the supervisor kills it,
    /// in ms. Default 250.
    pub kill_grace_ms: u64,
    /// QuickJS heap per execution, in bytes. Default 128 MiB.
    pub memory_bytes: u64,
    /// JavaScript stack per execution, in bytes. Default 1 MiB.
    pub stack_bytes: u64,
    /// Largest serialised result, in bytes; more is `OUTPUT_LIMIT`. Default 1 MiB.
    pub max_result_bytes: u64,
    /// Deepest nesting of a result; more is `OUTPUT_LIMIT`. Default 256.
    pub max_result_depth: u32,
    /// Most console entries kept per execution. Default 1000.
    pub max_log_entries: u32,
    /// Most console bytes kept per execution. Default 1 MiB.
    pub max_log_bytes: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let js = JsLimits::default();
        LimitsConfig {
            default_timeout_ms: 5000,
            max_timeout_ms: 30_000,
            deno_default_timeout_ms: 30_000,
            deno_max_timeout_ms: 60_000,
            kill_grace_ms: 250,
            memory_bytes: js.memory_bytes,
            stack_bytes: js.stack_bytes,
            max_result_bytes: js.max_result_bytes,
            max_result_depth: js.max_result_depth,
            max_log_entries: js.max_log_entries,
            max_log_bytes: js.max_log_bytes,
        }
    }
}

impl LimitsConfig {
    /// The limits sent with every job.
    pub fn js(&self) -> JsLimits {
        JsLimits {
            memory_bytes: self.memory_bytes,
            stack_bytes: self.stack_bytes,
            max_result_bytes: self.max_result_bytes,
            max_result_depth: self.max_result_depth,
            max_log_entries: self.max_log_entries,
            max_log_bytes: self.max_log_bytes,
        }
    }
}

/// `[sandbox]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSettings {
    /// Install the seccomp filters of `policies/seccomp/` in every worker. Default on.
    pub seccomp: bool,
    /// Restrict every worker with a landlock ruleset that grants nothing. Default on.
    pub landlock: bool,
    /// Run the zygote and its workers in new user, network, IPC, UTS and mount namespaces.
    /// Default on.
    pub namespaces: bool,
    /// Apply the rlimits below to every worker. Default on.
    pub rlimits: bool,
    /// Layers without which the service refuses to start (any of `seccomp`, `landlock`,
    /// `namespaces`, `rlimits`). Default none: a layer the kernel refuses is logged as a
    /// warning and reported by `/status`.
    pub require: Vec<String>,
    /// `RLIMIT_DATA` of a worker in bytes (heap and private writable memory, including what it
    /// shares with the zygote). Default 1 GiB.
    pub rlimit_data_bytes: u64,
    /// `RLIMIT_NOFILE` of a worker. Default 64.
    pub rlimit_open_files: u64,
    /// `RLIMIT_FSIZE` of a worker in bytes. Default 0: no file can grow.
    pub rlimit_file_size_bytes: u64,
}

/// The layers `sandbox.require` may name.
pub const SANDBOX_LAYERS: [&str; 4] = ["seccomp", "landlock", "namespaces", "rlimits"];

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            seccomp: true,
            landlock: true,
            namespaces: true,
            rlimits: true,
            require: Vec::new(),
            rlimit_data_bytes: 1 << 30,
            rlimit_open_files: 64,
            rlimit_file_size_bytes: 0,
        }
    }
}

impl SandboxSettings {
    /// The configuration sent to the zygote.
    pub fn to_wire(&self) -> isolate_shared::zygote::SandboxConfig {
        isolate_shared::zygote::SandboxConfig {
            seccomp: self.seccomp,
            landlock: self.landlock,
            namespaces: self.namespaces,
            rlimits: self.rlimits.then_some(isolate_shared::zygote::Rlimits {
                data_bytes: self.rlimit_data_bytes,
                open_files: self.rlimit_open_files,
                processes: 0,
                file_size_bytes: self.rlimit_file_size_bytes,
            }),
        }
    }

    /// Whether `layer` must be active.
    pub fn requires(&self, layer: &str) -> bool {
        self.require.iter().any(|r| r == layer)
    }
}

/// `[fetch]`: what the `agent` preset's `fetch` may reach. With no `allow_hosts`, every fetch
/// is denied.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// Hosts fetch may reach: exact names or IP literals, `*.example.com` (any name below
    /// example.com) or `*` (any host). Default none: every fetch is denied.
    pub allow_hosts: Vec<String>,
    /// URL schemes allowed (`https`, `http`). Default `["https"]`.
    pub allow_schemes: Vec<String>,
    /// Ports allowed. Default empty: the scheme's default port only (443, or 80 for http).
    pub allow_ports: Vec<u16>,
    /// Address ranges (CIDR) allowed although they are loopback, private, link-local or
    /// otherwise special, which are denied by default. Default none.
    pub allow_addresses: Vec<String>,
    /// Fetches per execution (denied ones count too). Default 10.
    pub max_requests: u32,
    /// Largest request body, in bytes. Default 1 MiB.
    pub max_request_body_bytes: u64,
    /// Largest response body, in bytes, enforced while it arrives. Default 1 MiB.
    pub max_response_body_bytes: u64,
    /// Longest time for one fetch (with its redirects), in ms; it never outlasts the
    /// execution's own timeout. Default 5000.
    pub timeout_ms: u64,
    /// Redirects followed per fetch. Default 5.
    pub max_redirects: u32,
    /// Headers the service adds to requests for matching hosts; the code never sees them.
    pub secret_headers: Vec<SecretHeader>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            allow_hosts: Vec::new(),
            allow_schemes: vec!["https".into()],
            allow_ports: Vec::new(),
            allow_addresses: Vec::new(),
            max_requests: 10,
            max_request_body_bytes: 1 << 20,
            max_response_body_bytes: 1 << 20,
            timeout_ms: 5000,
            max_redirects: 5,
            secret_headers: Vec::new(),
        }
    }
}

/// `[wasm]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WasmConfig {
    /// Directory from which `POST /wasm/compile` may load modules by `file`. Unset (default):
    /// `file` is refused and modules come only as `bytes`.
    pub module_dir: Option<String>,
    /// Directory where the module store keeps compiled artifacts across restarts (created with
    /// mode 0700 if missing). Unset (default): the store lives in memory only.
    pub cache_dir: Option<String>,
    /// Most modules in the store; the least recently used is evicted. Default 256.
    pub max_modules: usize,
    /// Most bytes of compiled artifacts in the store. Default 256 MiB.
    pub max_store_bytes: u64,
    /// Largest module accepted by `/wasm/compile`, in bytes (before base64). Default 8 MiB.
    pub max_module_bytes: usize,
    /// Longest compilation, in ms, before the worker is killed. Default 10000.
    pub compile_timeout_ms: u64,
    /// Largest size of each linear memory of a run, in bytes; more is `MEMORY_LIMIT`.
    /// Default 64 MiB.
    pub memory_bytes: u64,
    /// Most elements of a table; more is `MEMORY_LIMIT`. Default 100000.
    pub table_elements: u64,
    /// Most instances a run may create. Default 1.
    pub max_instances: u32,
    /// Most tables a run may create. Default 8.
    pub max_tables: u32,
    /// Most linear memories a run may create. Default 2.
    pub max_memories: u32,
    /// Most bytes kept of each of a WASI module's stdout and stderr. Default 1 MiB.
    pub max_output_bytes: u64,
    /// Modules each worker keeps loaded between runs. Default 16.
    pub worker_cache_modules: u32,
}

impl Default for WasmConfig {
    fn default() -> Self {
        WasmConfig {
            module_dir: None,
            cache_dir: None,
            max_modules: 256,
            max_store_bytes: 256 << 20,
            max_module_bytes: 8 << 20,
            compile_timeout_ms: 10_000,
            memory_bytes: 64 << 20,
            table_elements: 100_000,
            max_instances: 1,
            max_tables: 8,
            max_memories: 2,
            max_output_bytes: 1 << 20,
            worker_cache_modules: 16,
        }
    }
}

/// `[[fetch.secret_headers]]`: one header attached to requests for `host`.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretHeader {
    /// The host pattern (as in `allow_hosts`) whose requests get the header.
    pub host: String,
    /// The header name.
    pub name: String,
    /// The value, written in the file.
    #[serde(serialize_with = "redacted")]
    pub value: Option<String>,
    /// The name of an environment variable of the service holding the value (read at start).
    pub value_env: Option<String>,
}

impl std::fmt::Debug for SecretHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretHeader")
            .field("host", &self.host)
            .field("name", &self.name)
            .field("value", &self.value.as_ref().map(|_| "[redacted]"))
            .field("value_env", &self.value_env)
            .finish()
    }
}

impl WasmConfig {
    /// The limits sent with every run.
    pub fn limits(&self) -> WasmLimits {
        WasmLimits {
            memory_bytes: self.memory_bytes,
            table_elements: self.table_elements,
            instances: self.max_instances,
            tables: self.max_tables,
            memories: self.max_memories,
            max_output_bytes: self.max_output_bytes,
            worker_cache_modules: self.worker_cache_modules,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`, or a tracing filter (`ISOLATE_LOG_LEVEL`).
    /// Default `info`.
    pub level: String,
    /// `text` (default) or `json` (one JSON object per line).
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// Environment variables the service reads; any other `ISOLATE_*` variable gets a warning.
pub const ENV_VARS: [&str; 5] = [
    "ISOLATE_PORT",
    "ISOLATE_HOST",
    "ISOLATE_AUTH_TOKEN",
    "ISOLATE_LOG_LEVEL",
    "ISOLATE_CONFIG",
];

impl Config {
    /// Loads the file (if any), applies `env` on top and validates. Returns the configuration
    /// and warnings to log once logging is up.
    pub fn load(
        path: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Config::from_toml(&text).map_err(|message| ConfigError::Parse {
                    path: path.display().to_string(),
                    message,
                })?
            }
            None => Config::default(),
        };
        let warnings = config.apply_env(env)?;
        config.resolve_secrets(env)?;
        config.validate()?;
        Ok((config, warnings))
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim().to_string())
    }

    /// Applies the `ISOLATE_*` variables. Returns warnings for unknown ones.
    pub fn apply_env(
        &mut self,
        env: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        for (key, value) in env {
            match key.as_str() {
                "ISOLATE_PORT" => {
                    self.server.port = value.trim().parse().map_err(|_| {
                        invalid(
                            "ISOLATE_PORT",
                            format!("must be a port number (0-65535), got {value:?}"),
                        )
                    })?;
                }
                "ISOLATE_HOST" => self.server.host = value.trim().to_string(),
                "ISOLATE_AUTH_TOKEN" if value.trim().is_empty() => {
                    // An empty variable must not switch off a token set in the file.
                    warnings.push("ignoring ISOLATE_AUTH_TOKEN: it is empty".into());
                }
                "ISOLATE_AUTH_TOKEN" => self.auth.token = Some(value.clone()),
                "ISOLATE_LOG_LEVEL" => self.log.level = value.trim().to_string(),
                "ISOLATE_CONFIG" => {}
                other if other.starts_with("ISOLATE_") => {
                    warnings.push(format!(
                        "ignoring unknown environment variable {other} (known: {})",
                        ENV_VARS.join(", ")
                    ));
                }
                _ => {}
            }
        }
        Ok(warnings)
    }

    /// Reads the value of every `fetch.secret_headers` entry that names a `value_env`.
    pub fn resolve_secrets(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for s in &mut self.fetch.secret_headers {
            let Some(var) = &s.value_env else { continue };
            if s.value.is_some() {
                return Err(invalid(
                    "fetch.secret_headers",
                    format!("the header {:?} has both value and value_env", s.name),
                ));
            }
            match env.get(var) {
                Some(v) if !v.is_empty() => s.value = Some(v.clone()),
                _ => {
                    return Err(invalid(
                        "fetch.secret_headers",
                        format!("the environment variable {var} (value_env of the header {:?}) is unset or empty", s.name),
                    ))
                }
            }
        }
        Ok(())
    }

    fn validate_fetch(&self) -> Result<(), ConfigError> {
        use crate::fetch::policy::{Cidr, HostPattern};
        let f = &self.fetch;
        for h in &f.allow_hosts {
            HostPattern::parse(h).map_err(|e| invalid("fetch.allow_hosts", e))?;
        }
        if f.allow_schemes.is_empty() {
            return Err(invalid(
                "fetch.allow_schemes",
                "must name at least one scheme",
            ));
        }
        for s in &f.allow_schemes {
            if !matches!(s.as_str(), "https" | "http") {
                return Err(invalid(
                    "fetch.allow_schemes",
                    format!("may hold only \"https\" and \"http\", got {s:?}"),
                ));
            }
        }
        if f.allow_ports.contains(&0) {
            return Err(invalid("fetch.allow_ports", "must not contain 0"));
        }
        for a in &f.allow_addresses {
            Cidr::parse(a).map_err(|e| invalid("fetch.allow_addresses", e))?;
        }
        let max = isolate_shared::message::FETCH_MAX_BODY_BYTES;
        if f.max_request_body_bytes > max {
            return Err(invalid(
                "fetch.max_request_body_bytes",
                format!("must be at most {max}"),
            ));
        }
        if f.max_response_body_bytes > max {
            return Err(invalid(
                "fetch.max_response_body_bytes",
                format!("must be at most {max}"),
            ));
        }
        if f.max_requests > 1000 {
            return Err(invalid("fetch.max_requests", "must be at most 1000"));
        }
        if f.timeout_ms == 0 {
            return Err(invalid("fetch.timeout_ms", "must be at least 1"));
        }
        if f.max_redirects > 20 {
            return Err(invalid("fetch.max_redirects", "must be at most 20"));
        }
        for s in &f.secret_headers {
            HostPattern::parse(&s.host).map_err(|e| invalid("fetch.secret_headers", e))?;
            if reqwest::header::HeaderName::from_bytes(s.name.trim().as_bytes()).is_err() {
                return Err(invalid(
                    "fetch.secret_headers",
                    format!("{:?} is not a valid header name", s.name),
                ));
            }
            match (&s.value, &s.value_env) {
                (Some(v), _) if reqwest::header::HeaderValue::from_str(v).is_ok() => {}
                (Some(_), _) => {
                    return Err(invalid(
                        "fetch.secret_headers",
                        format!("the value of {:?} is not a valid header value", s.name),
                    ))
                }
                (None, _) => {
                    return Err(invalid(
                        "fetch.secret_headers",
                        format!("the header {:?} needs value or value_env", s.name),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The bound on every execution's answer (`/execute`, `/deno`, `/wasm/run`), in encoded
    /// bytes: the result cap, plus the larger of the console cap (with a little per entry) and
    /// WASI's two output caps, plus 1 MiB for the error, the fetch audit and the statistics.
    /// An answer that would be larger is replaced by an `OUTPUT_LIMIT` error, and a worker
    /// that announces a larger answer is killed before it is read.
    pub fn answer_bytes(&self) -> usize {
        let l = &self.limits;
        let logs = l
            .max_log_bytes
            .saturating_add(u64::from(l.max_log_entries).saturating_mul(64));
        let output = logs.max(self.wasm.max_output_bytes.saturating_mul(2));
        let total = l
            .max_result_bytes
            .saturating_add(output)
            .saturating_add(1 << 20);
        usize::try_from(total).unwrap_or(usize::MAX)
    }

    /// The largest frame a worker may send (but for a compiled module): an answer within
    /// [`Config::answer_bytes`], or a fetch host call with a body of up to
    /// `fetch.max_request_body_bytes` and 1 MiB for its URL and headers.
    pub fn worker_frame_bytes(&self) -> usize {
        let fetch = usize::try_from(self.fetch.max_request_body_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(1 << 20);
        self.answer_bytes().max(fetch)
    }

    /// Rejects values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_fetch()?;
        self.mcp.validate()?;
        if self.server.host.parse::<std::net::IpAddr>().is_err() && self.server.host != "localhost"
        {
            return Err(invalid(
                "server.host",
                format!("must be an IP address, got {:?}", self.server.host),
            ));
        }
        if self.server.max_body_bytes < 64 {
            return Err(invalid("server.max_body_bytes", "must be at least 64"));
        }
        if self.server.http_threads == Some(0) {
            return Err(invalid("server.http_threads", "must be at least 1"));
        }
        if !(100..=3_600_000).contains(&self.server.body_timeout_ms) {
            return Err(invalid(
                "server.body_timeout_ms",
                "must be between 100 and 3600000",
            ));
        }
        if !(100..=3_600_000).contains(&self.server.write_timeout_ms) {
            return Err(invalid(
                "server.write_timeout_ms",
                "must be between 100 and 3600000",
            ));
        }
        for h in &self.server.allowed_hosts {
            let name_like = h == "*"
                || (!h.is_empty()
                    && h.len() <= 253
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
            if !name_like {
                return Err(invalid(
                    "server.allowed_hosts",
                    format!("{h:?} is not a host name (no scheme, port or path; \"*\" for any)"),
                ));
            }
        }
        if self.auth.token.as_ref().is_some_and(|t| t.len() < 8) {
            return Err(invalid("auth.token", "must be at least 8 characters"));
        }
        if self.auth.admin_token.as_ref().is_some_and(|t| t.len() < 8) {
            return Err(invalid("auth.admin_token", "must be at least 8 characters"));
        }
        let w = &self.workers;
        if w.max_concurrent == 0 {
            return Err(invalid("workers.max_concurrent", "must be at least 1"));
        }
        if w.prewarm > w.max_concurrent {
            return Err(invalid(
                "workers.prewarm",
                "must not exceed workers.max_concurrent",
            ));
        }
        if w.recycle_after == 0 {
            return Err(invalid("workers.recycle_after", "must be at least 1"));
        }
        if w.spawn_timeout_ms == 0 {
            return Err(invalid("workers.spawn_timeout_ms", "must be at least 1"));
        }
        let l = &self.limits;
        if l.default_timeout_ms == 0 {
            return Err(invalid("limits.default_timeout_ms", "must be at least 1"));
        }
        if l.max_timeout_ms < l.default_timeout_ms {
            return Err(invalid(
                "limits.max_timeout_ms",
                "must be at least limits.default_timeout_ms",
            ));
        }
        if l.deno_default_timeout_ms == 0 {
            return Err(invalid(
                "limits.deno_default_timeout_ms",
                "must be at least 1",
            ));
        }
        if l.deno_max_timeout_ms < l.deno_default_timeout_ms {
            return Err(invalid(
                "limits.deno_max_timeout_ms",
                "must be at least limits.deno_default_timeout_ms",
            ));
        }
        if l.memory_bytes < (4 << 20) {
            return Err(invalid(
                "limits.memory_bytes",
                "must be at least 4 MiB (4194304)",
            ));
        }
        if !(64 << 10..=256 << 20).contains(&l.stack_bytes) {
            return Err(invalid(
                "limits.stack_bytes",
                "must be between 64 KiB and 256 MiB",
            ));
        }
        if l.max_result_bytes == 0 || l.max_result_bytes > (32 << 20) {
            return Err(invalid(
                "limits.max_result_bytes",
                "must be between 1 and 32 MiB",
            ));
        }
        if l.max_log_bytes > (16 << 20) {
            return Err(invalid("limits.max_log_bytes", "must be at most 16 MiB"));
        }
        if l.max_result_depth == 0 || l.max_result_depth > 10_000 {
            return Err(invalid(
                "limits.max_result_depth",
                "must be between 1 and 10000",
            ));
        }
        let sb = &self.sandbox;
        for layer in &sb.require {
            if !SANDBOX_LAYERS.contains(&layer.as_str()) {
                return Err(invalid(
                    "sandbox.require",
                    format!(
                        "names an unknown layer {layer:?} (known: {})",
                        SANDBOX_LAYERS.join(", ")
                    ),
                ));
            }
            let enabled = match layer.as_str() {
                "seccomp" => sb.seccomp,
                "landlock" => sb.landlock,
                "namespaces" => sb.namespaces,
                _ => sb.rlimits,
            };
            if !enabled {
                return Err(invalid(
                    "sandbox.require",
                    format!("requires {layer}, but sandbox.{layer} is false"),
                ));
            }
        }
        if sb.rlimit_data_bytes < self.limits.memory_bytes + (64 << 20) {
            return Err(invalid(
                "sandbox.rlimit_data_bytes",
                "must exceed limits.memory_bytes by at least 64 MiB",
            ));
        }
        if sb.rlimit_open_files < 8 {
            return Err(invalid("sandbox.rlimit_open_files", "must be at least 8"));
        }
        self.validate_wasm()?;
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(invalid("log.format", "must be \"text\" or \"json\""));
        }
        let level = self.log.level.trim().to_ascii_lowercase();
        let plain = matches!(
            level.as_str(),
            "off" | "error" | "warn" | "info" | "debug" | "trace"
        );
        // Anything else must be a filter with at least one `target=level` directive: a lone
        // word such as "loud" would otherwise be read as a target name and log nothing.
        if !plain
            && (!level.contains('=') || tracing_subscriber::EnvFilter::try_new(&level).is_err())
        {
            return Err(invalid(
                "log.level",
                format!("is not a valid level or filter: {:?}", self.log.level),
            ));
        }
        Ok(())
    }
}

impl Config {
    fn validate_wasm(&self) -> Result<(), ConfigError> {
        let w = &self.wasm;
        for (key, dir) in [
            ("wasm.module_dir", &w.module_dir),
            ("wasm.cache_dir", &w.cache_dir),
        ] {
            if dir.as_ref().is_some_and(|d| d.trim().is_empty()) {
                return Err(invalid(key, "must not be empty (leave it unset instead)"));
            }
        }
        if w.max_modules == 0 {
            return Err(invalid("wasm.max_modules", "must be at least 1"));
        }
        if !(1024..=16 << 20).contains(&w.max_module_bytes) {
            return Err(invalid(
                "wasm.max_module_bytes",
                "must be between 1 KiB and 16 MiB",
            ));
        }
        if w.max_store_bytes < w.max_module_bytes as u64 {
            return Err(invalid(
                "wasm.max_store_bytes",
                "must be at least wasm.max_module_bytes",
            ));
        }
        if w.compile_timeout_ms == 0 {
            return Err(invalid("wasm.compile_timeout_ms", "must be at least 1"));
        }
        if w.memory_bytes < 65536 {
            return Err(invalid(
                "wasm.memory_bytes",
                "must be at least one page (65536)",
            ));
        }
        let all_memories = w
            .memory_bytes
            .saturating_mul(u64::from(w.max_memories.max(1)));
        if self.sandbox.rlimit_data_bytes < all_memories.saturating_add(64 << 20) {
            return Err(invalid(
                "wasm.memory_bytes",
                "times wasm.max_memories must stay at least 64 MiB below sandbox.rlimit_data_bytes",
            ));
        }
        if w.max_instances == 0 || w.max_memories == 0 {
            return Err(invalid(
                "wasm.max_instances",
                "and wasm.max_memories must be at least 1",
            ));
        }
        if w.max_output_bytes > 16 << 20 {
            return Err(invalid("wasm.max_output_bytes", "must be at most 16 MiB"));
        }
        if !(1..=1024).contains(&w.worker_cache_modules) {
            return Err(invalid(
                "wasm.worker_cache_modules",
                "must be between 1 and 1024",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_safe_and_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!((c.server.host.as_str(), c.server.port), ("127.0.0.1", 5900));
        assert!(c.auth.token.is_none() && c.cors.origins.is_empty());
        assert_eq!(c.workers.max_concurrent, 50);
        assert_eq!(c.limits.memory_bytes, 128 << 20);
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut c = Config::from_toml("[server]\nport = 7000\nhost = \"0.0.0.0\"").unwrap();
        let warnings = c
            .apply_env(&env(&[
                ("ISOLATE_PORT", "8000"),
                ("ISOLATE_AUTH_TOKEN", "secret-token"),
                ("ISOLATE_TYPO", "1"),
                ("PATH", "/bin"),
            ]))
            .unwrap();
        assert_eq!(c.server.port, 8000);
        assert_eq!(c.server.host, "0.0.0.0");
        assert_eq!(c.auth.token.as_deref(), Some("secret-token"));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("ISOLATE_TYPO"));
        let warnings = c.apply_env(&env(&[("ISOLATE_AUTH_TOKEN", "")])).unwrap();
        assert_eq!(
            c.auth.token.as_deref(),
            Some("secret-token"),
            "an empty variable keeps the token"
        );
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Config::from_toml("[workers]\nprewarm = 3\nmax_concurent = 4").unwrap_err();
        assert!(err.contains("max_concurent"), "{err}");
        let err = Config::from_toml("[limits]\nmemory_bytes = \"lots\"").unwrap_err();
        assert!(err.contains("memory_bytes"), "{err}");
        let mut c = Config::default();
        c.sandbox.require = vec!["seccomp".into(), "selinux".into()];
        assert!(c.validate().unwrap_err().to_string().contains("selinux"));
        c.sandbox.require = vec!["landlock".into()];
        c.sandbox.landlock = false;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("sandbox.require"));
        let mut c = Config::default();
        c.workers.max_concurrent = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("workers.max_concurrent"));
        let mut c = Config::default();
        c.limits.deno_max_timeout_ms = c.limits.deno_default_timeout_ms - 1;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("limits.deno_max_timeout_ms"));
        c.limits.deno_default_timeout_ms = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("limits.deno_default_timeout_ms"));
        let mut c = Config::default();
        c.wasm.memory_bytes = 1 << 30;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("wasm.memory_bytes"));
        let mut c = Config::default();
        c.wasm.module_dir = Some(" ".into());
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("wasm.module_dir"));
        let mut c = Config::default();
        let err = c.apply_env(&env(&[("ISOLATE_PORT", "http")])).unwrap_err();
        assert!(err.to_string().contains("ISOLATE_PORT"));
        c.log.level = "loud".into();
        assert!(c.validate().unwrap_err().to_string().contains("log.level"));
        for ok in ["warn", "DEBUG", "isolate_service=debug,actix_web=warn"] {
            c.log.level = ok.into();
            c.validate().unwrap();
        }
    }

    #[test]
    fn fetch_settings_are_checked_and_secrets_come_from_the_environment() {
        let c = Config::default();
        assert!(c.fetch.allow_hosts.is_empty(), "deny everything by default");
        assert_eq!(c.fetch.allow_schemes, vec!["https".to_string()]);
        for (toml, key) in [
            ("[fetch]\nallow_hosts = [\"exa mple.com\"]", "fetch.allow_hosts"),
            ("[fetch]\nallow_schemes = [\"ftp\"]", "fetch.allow_schemes"),
            ("[fetch]\nallow_schemes = []", "fetch.allow_schemes"),
            ("[fetch]\nallow_addresses = [\"10.0.0.0/40\"]", "fetch.allow_addresses"),
            ("[fetch]\nmax_response_body_bytes = 1000000000", "fetch.max_response_body_bytes"),
            ("[fetch]\ntimeout_ms = 0", "fetch.timeout_ms"),
            (
                "[[fetch.secret_headers]]\nhost = \"a.example.com\"\nname = \"Authorization\"",
                "fetch.secret_headers",
            ),
            (
                "[[fetch.secret_headers]]\nhost = \"a.example.com\"\nname = \"Bad Name\"\nvalue = \"x\"",
                "fetch.secret_headers",
            ),
        ] {
            let err = Config::from_toml(toml).unwrap().validate().unwrap_err();
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
        let mut c = Config::from_toml(
            "[[fetch.secret_headers]]\nhost = \"a.example.com\"\nname = \"Authorization\"\nvalue_env = \"API_TOKEN\"",
        )
        .unwrap();
        assert!(c.resolve_secrets(&env(&[])).is_err());
        assert!(c.resolve_secrets(&env(&[("API_TOKEN", "")])).is_err());
        let mut both = c.clone();
        both.fetch.secret_headers[0].value = Some("inline".into());
        let err = both
            .resolve_secrets(&env(&[("API_TOKEN", "x")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("both value and value_env"),
            "{err}"
        );
        c.resolve_secrets(&env(&[("API_TOKEN", "Bearer s3cr3t")]))
            .unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.fetch.secret_headers[0].value.as_deref(),
            Some("Bearer s3cr3t")
        );
        assert!(
            !format!("{c:?}").contains("s3cr3t"),
            "secret values never appear in debug output"
        );
    }

    #[test]
    fn a_serialised_configuration_redacts_every_secret() {
        let mut c = Config::default();
        c.auth.token = Some("user-t0ken-s3cr3t".into());
        c.auth.admin_token = Some("admin-t0ken-s3cr3t".into());
        c.fetch.secret_headers.push(SecretHeader {
            host: "api.example.com".into(),
            name: "Authorization".into(),
            value: Some("Bearer header-s3cr3t".into()),
            value_env: None,
        });
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["auth"]["token"], "[redacted]");
        assert_eq!(v["auth"]["admin_token"], "[redacted]");
        assert_eq!(v["fetch"]["secret_headers"][0]["value"], "[redacted]");
        assert_eq!(v["auth"]["rate_limit_per_minute"], 60);
    }

    #[test]
    fn the_shipped_config_file_parses_and_matches_the_defaults() {
        let text = include_str!("../../policies/config.toml");
        let c = Config::from_toml(text).unwrap();
        c.validate().unwrap();
        assert_eq!(format!("{c:?}"), format!("{:?}", Config::default()));
    }
}
