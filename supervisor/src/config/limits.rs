//! `[limits]`: per-execution timeouts and the JavaScript limits sent with every job.

use isolate_shared::message::JsLimits;
use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

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

    /// Rejects values that cannot work, naming the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.default_timeout_ms == 0 {
            return Err(invalid("limits.default_timeout_ms", "must be at least 1"));
        }
        if self.max_timeout_ms < self.default_timeout_ms {
            return Err(invalid(
                "limits.max_timeout_ms",
                "must be at least limits.default_timeout_ms",
            ));
        }
        if self.deno_default_timeout_ms == 0 {
            return Err(invalid(
                "limits.deno_default_timeout_ms",
                "must be at least 1",
            ));
        }
        if self.deno_max_timeout_ms < self.deno_default_timeout_ms {
            return Err(invalid(
                "limits.deno_max_timeout_ms",
                "must be at least limits.deno_default_timeout_ms",
            ));
        }
        if self.memory_bytes < (4 << 20) {
            return Err(invalid(
                "limits.memory_bytes",
                "must be at least 4 MiB (4194304)",
            ));
        }
        if !(64 << 10..=256 << 20).contains(&self.stack_bytes) {
            return Err(invalid(
                "limits.stack_bytes",
                "must be between 64 KiB and 256 MiB",
            ));
        }
        if self.max_result_bytes == 0 || self.max_result_bytes > (32 << 20) {
            return Err(invalid(
                "limits.max_result_bytes",
                "must be between 1 and 32 MiB",
            ));
        }
        if self.max_log_bytes > (16 << 20) {
            return Err(invalid("limits.max_log_bytes", "must be at most 16 MiB"));
        }
        if self.max_result_depth == 0 || self.max_result_depth > 10_000 {
            return Err(invalid(
                "limits.max_result_depth",
                "must be between 1 and 10000",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn bad_values_name_their_key() {
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
    }
}
