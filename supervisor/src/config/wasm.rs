//! `[wasm]`: the module store (directories, sizes) and the per-run limits sent to workers.

use isolate_shared::message::WasmLimits;
use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError, SandboxSettings};

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

    /// Rejects values that cannot work, naming the key; every linear memory of a run together
    /// must fit under `sandbox.rlimit_data_bytes`.
    pub(super) fn validate(&self, sandbox: &SandboxSettings) -> Result<(), ConfigError> {
        for (key, dir) in [
            ("wasm.module_dir", &self.module_dir),
            ("wasm.cache_dir", &self.cache_dir),
        ] {
            if dir.as_ref().is_some_and(|d| d.trim().is_empty()) {
                return Err(invalid(key, "must not be empty (leave it unset instead)"));
            }
        }
        if self.max_modules == 0 {
            return Err(invalid("wasm.max_modules", "must be at least 1"));
        }
        if !(1024..=16 << 20).contains(&self.max_module_bytes) {
            return Err(invalid(
                "wasm.max_module_bytes",
                "must be between 1 KiB and 16 MiB",
            ));
        }
        if self.max_store_bytes < self.max_module_bytes as u64 {
            return Err(invalid(
                "wasm.max_store_bytes",
                "must be at least wasm.max_module_bytes",
            ));
        }
        if self.compile_timeout_ms == 0 {
            return Err(invalid("wasm.compile_timeout_ms", "must be at least 1"));
        }
        if self.memory_bytes < 65536 {
            return Err(invalid(
                "wasm.memory_bytes",
                "must be at least one page (65536)",
            ));
        }
        let all_memories = self
            .memory_bytes
            .saturating_mul(u64::from(self.max_memories.max(1)));
        if sandbox.rlimit_data_bytes < all_memories.saturating_add(64 << 20) {
            return Err(invalid(
                "wasm.memory_bytes",
                "times wasm.max_memories must stay at least 64 MiB below sandbox.rlimit_data_bytes",
            ));
        }
        if self.max_instances == 0 || self.max_memories == 0 {
            return Err(invalid(
                "wasm.max_instances",
                "and wasm.max_memories must be at least 1",
            ));
        }
        if self.max_output_bytes > 16 << 20 {
            return Err(invalid("wasm.max_output_bytes", "must be at most 16 MiB"));
        }
        if !(1..=1024).contains(&self.worker_cache_modules) {
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
    use crate::config::Config;

    #[test]
    fn bad_values_name_their_key() {
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
    }
}
