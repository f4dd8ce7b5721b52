//! `[workers]`: the worker pool's size, queue, recycling and spawn timeout.

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// The longest `workers.idle_poll_micros`: past a few hundred microseconds polling only
/// burns CPU, since a wake-up costs less than that.
const MAX_IDLE_POLL_MICROS: u32 = 10_000;

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
    /// What start-up does when `max_concurrent` workers at their memory limits would not fit
    /// in 90 % of the machine's (or cgroup's) memory: `lower` (default) lowers
    /// `max_concurrent` to fit, `warn` keeps it with a warning, `off` only reports it in
    /// `/status`. See [`crate::sizing`].
    pub memory_fit: String,
    /// How long, in µs, a worker polls its socket after each answer before it sleeps, so
    /// that a job sent soon after finds it awake. Default 200; 0 turns polling off; at most
    /// 10000.
    pub idle_poll_micros: u32,
    /// Whether the zygote moves its machine code and read-only data into transparent huge
    /// pages before it forks, so that a new worker process inherits them without page faults.
    /// Default true; the zygote skips it (and `/status` says why) when the kernel gives no
    /// huge pages.
    pub huge_text_pages: bool,
    /// Whether each preset's runtime is prepared once per process, in a memory region of its
    /// own, and put back to a snapshot of that region after every job (one copy) instead of
    /// being freed and built again. Default true.
    pub runtime_snapshots: bool,
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
            memory_fit: "lower".into(),
            idle_poll_micros: 200,
            huge_text_pages: true,
            runtime_snapshots: true,
        }
    }
}

impl WorkersConfig {
    /// Rejects values that cannot work, naming the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_concurrent == 0 {
            return Err(invalid("workers.max_concurrent", "must be at least 1"));
        }
        if self.prewarm > self.max_concurrent {
            return Err(invalid(
                "workers.prewarm",
                "must not exceed workers.max_concurrent",
            ));
        }
        if self.recycle_after == 0 {
            return Err(invalid("workers.recycle_after", "must be at least 1"));
        }
        if self.spawn_timeout_ms == 0 {
            return Err(invalid("workers.spawn_timeout_ms", "must be at least 1"));
        }
        if self.idle_poll_micros > MAX_IDLE_POLL_MICROS {
            return Err(invalid(
                "workers.idle_poll_micros",
                "must be at most 10000 (10 ms)",
            ));
        }
        if !matches!(self.memory_fit.as_str(), "lower" | "warn" | "off") {
            return Err(invalid(
                "workers.memory_fit",
                "must be \"lower\", \"warn\" or \"off\"",
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
        c.workers.max_concurrent = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("workers.max_concurrent"));
        let mut c = Config::default();
        c.workers.idle_poll_micros = 10_001;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("workers.idle_poll_micros"));
        let mut c = Config::default();
        c.workers.idle_poll_micros = 10_000;
        assert!(c.validate().is_ok(), "10 ms is the longest poll allowed");
        let mut c = Config::default();
        c.workers.memory_fit = "shrink".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("workers.memory_fit"));
    }
}
