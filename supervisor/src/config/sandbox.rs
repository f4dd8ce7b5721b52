//! `[sandbox]`: the layers behind the engine (seccomp, landlock, namespaces, rlimits), which of
//! them are required, and the configuration sent to the zygote.

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError, LimitsConfig};

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
    /// The configuration sent to the zygote, with the `[workers]` settings it applies
    /// (`idle_poll_micros`, `huge_text_pages`, `runtime_snapshots`).
    pub fn to_wire(&self, workers: &super::WorkersConfig) -> isolate_shared::zygote::SandboxConfig {
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
            idle_poll_micros: workers.idle_poll_micros,
            huge_text_pages: workers.huge_text_pages,
            runtime_snapshots: workers.runtime_snapshots,
        }
    }

    /// Whether `layer` must be active.
    pub fn requires(&self, layer: &str) -> bool {
        self.require.iter().any(|r| r == layer)
    }

    /// Rejects values that cannot work, naming the key; `sandbox.rlimit_data_bytes` is checked
    /// against `limits.memory_bytes`.
    pub(super) fn validate(&self, limits: &LimitsConfig) -> Result<(), ConfigError> {
        for layer in &self.require {
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
                "seccomp" => self.seccomp,
                "landlock" => self.landlock,
                "namespaces" => self.namespaces,
                _ => self.rlimits,
            };
            if !enabled {
                return Err(invalid(
                    "sandbox.require",
                    format!("requires {layer}, but sandbox.{layer} is false"),
                ));
            }
        }
        if self.rlimit_data_bytes < limits.memory_bytes + (64 << 20) {
            return Err(invalid(
                "sandbox.rlimit_data_bytes",
                "must exceed limits.memory_bytes by at least 64 MiB",
            ));
        }
        if self.rlimit_open_files < 8 {
            return Err(invalid("sandbox.rlimit_open_files", "must be at least 8"));
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
        c.sandbox.require = vec!["seccomp".into(), "selinux".into()];
        assert!(c.validate().unwrap_err().to_string().contains("selinux"));
        c.sandbox.require = vec!["landlock".into()];
        c.sandbox.landlock = false;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("sandbox.require"));
    }
}
