//! The service's configuration: one typed tree, loaded in layers.
//!
//! Defaults (written next to each field) → the TOML file given with `--config` → the
//! `ISOLATE_*` environment variables. Unknown keys in the file are errors (a typo must not be
//! silently ignored), unknown `ISOLATE_*` variables get a warning, and [`Config::validate`]
//! rejects values that cannot work, naming the key. `policies/config.toml` documents every key.
//!
//! This module holds the whole tree ([`Config`]), the loading layers, [`ENV_VARS`] and the
//! values derived from several sections. Each TOML section has a module of its own with its
//! struct, its defaults, its validation and its tests; their types are re-exported here.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize, Serializer};

mod auth;
mod cors;
mod fetch;
mod limits;
mod log;
mod mcp;
mod sandbox;
mod server;
mod wasm;
mod workers;

pub use auth::{valid_key_name, AuthConfig, KeyConfig, Scope};
pub use cors::CorsConfig;
pub use fetch::{FetchConfig, SecretHeader};
pub use limits::LimitsConfig;
pub use log::LogConfig;
pub use mcp::McpConfig;
pub use sandbox::{SandboxSettings, SANDBOX_LAYERS};
pub use server::ServerConfig;
pub use wasm::WasmConfig;
pub use workers::WorkersConfig;

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
    /// The MCP server (see [`crate::mcp`]).
    pub mcp: McpConfig,
}

/// Serialises a secret as `"[redacted]"` when it is set, so that a serialised configuration
/// never carries it.
fn redacted<S: Serializer>(value: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => serializer.serialize_some("[redacted]"),
        None => serializer.serialize_none(),
    }
}

/// Environment variables the service reads; any other `ISOLATE_*` variable gets a warning.
pub const ENV_VARS: [&str; 6] = [
    "ISOLATE_PORT",
    "ISOLATE_HOST",
    "ISOLATE_AUTH_TOKEN",
    "ISOLATE_LOG_LEVEL",
    "ISOLATE_LOG_FORMAT",
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

    /// The configuration as TOML, every secret replaced by `"[redacted]"` (what
    /// `--print-config` prints). Loading it again gives the same configuration but for the
    /// secrets.
    pub fn to_redacted_toml(&self) -> Result<String, String> {
        toml::to_string_pretty(self).map_err(|e| e.to_string())
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
                "ISOLATE_LOG_FORMAT" => self.log.format = value.trim().to_string(),
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
        self.fetch.resolve_secrets(env)
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

    /// Rejects values that cannot work, naming the key. The sections are checked in this
    /// order, so that a file with several mistakes is always refused for the same one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.fetch.validate()?;
        self.mcp.validate()?;
        self.server.validate()?;
        self.auth.validate()?;
        self.workers.validate()?;
        self.limits.validate()?;
        self.sandbox.validate(&self.limits)?;
        self.wasm.validate(&self.sandbox)?;
        self.log.validate()
    }
}

/// An environment made of `pairs`, for the tests of every section.
#[cfg(test)]
fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = c.apply_env(&env(&[("ISOLATE_PORT", "http")])).unwrap_err();
        assert!(err.to_string().contains("ISOLATE_PORT"));
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
    fn the_printed_configuration_is_toml_that_loads_again_without_its_secrets() {
        let mut c = Config::from_toml(
            "[server]\nport = 7001\n[fetch]\nallow_hosts = [\"api.example.com\"]\n\
             [[fetch.secret_headers]]\nhost = \"api.example.com\"\nname = \"X-Key\"\n\
             value = \"header-s3cr3t\"\n",
        )
        .unwrap();
        c.auth.token = Some("user-t0ken-s3cr3t".into());
        c.apply_env(&env(&[("ISOLATE_LOG_FORMAT", "json")]))
            .unwrap();
        let text = c.to_redacted_toml().unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
        let again = Config::from_toml(&text).unwrap();
        again.validate().unwrap();
        assert_eq!(again.server.port, 7001);
        assert_eq!(again.log.format, "json");
        assert_eq!(again.fetch.allow_hosts, ["api.example.com"]);
        let mut expected = c.clone();
        expected.auth.token = Some("[redacted]".into());
        expected.fetch.secret_headers[0].value = Some("[redacted]".into());
        assert_eq!(format!("{again:?}"), format!("{expected:?}"));
        assert_eq!(
            Config::from_toml(&Config::default().to_redacted_toml().unwrap())
                .map(|c| format!("{c:?}")),
            Ok(format!("{:?}", Config::default()))
        );
    }

    #[test]
    fn the_shipped_config_file_parses_and_matches_the_defaults() {
        let text = include_str!("../../../policies/config.toml");
        let c = Config::from_toml(text).unwrap();
        c.validate().unwrap();
        assert_eq!(format!("{c:?}"), format!("{:?}", Config::default()));
    }
}
