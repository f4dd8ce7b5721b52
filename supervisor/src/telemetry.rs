//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4), recorded through the
//! `metrics` facade and rendered by `metrics-exporter-prometheus`'s recorder; nothing here
//! formats a sample by hand.
//!
//! Events are recorded where they happen ([`request`], [`execution`], [`queue_wait`],
//! [`fetch`]). Lifetime counters and gauges that other parts already keep (the pool's
//! counters, the module store's) are copied into the recorder when a scrape renders
//! ([`render`]), so those parts need no knowledge of this module. Every label takes its value
//! from a short fixed set (a route of the route table, a method, a status code, a preset, an
//! engine, an error type), so no client can make the exposition grow without bound.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics::{Label, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The figures other parts keep, copied into the exposition at each scrape.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// `(counter name, lifetime value)` of the pool and module store counters.
    pub counters: Vec<(&'static str, u64)>,
    /// Idle workers now.
    pub idle: usize,
    /// Executions running now.
    pub busy: usize,
    /// Requests waiting for a slot now.
    pub queued: usize,
    /// `workers.max_concurrent` in force.
    pub slots: usize,
    /// Modules in the store.
    pub modules: usize,
    /// Bytes of artifacts in the store.
    pub store_bytes: u64,
    /// Time since the service started.
    pub uptime: Duration,
    /// Worker CPU milliseconds of each key since the start.
    pub key_cpu_ms: Vec<(String, f64)>,
}

/// HTTP requests answered, by route, method and status.
pub const HTTP_REQUESTS: &str = "isolate_http_requests_total";
/// Executions answered, by engine, preset and outcome.
pub const EXECUTIONS: &str = "isolate_executions_total";
/// Execution durations, by engine and preset.
pub const EXECUTION_SECONDS: &str = "isolate_execution_duration_seconds";
/// Time requests waited for an execution slot.
pub const QUEUE_WAIT_SECONDS: &str = "isolate_queue_wait_seconds";
/// Fetches of the `agent` preset, by outcome.
pub const FETCHES: &str = "isolate_fetches_total";

/// Executions answered per key, by key and outcome.
pub const KEY_EXECUTIONS: &str = "isolate_key_executions_total";
/// Worker CPU seconds per key since the start (a gauge copied from the keys' ledgers at each
/// scrape: the facade's counters count whole units only).
pub const KEY_CPU_SECONDS: &str = "isolate_key_cpu_seconds";
/// Fetch bytes sent and received per key.
pub const KEY_EGRESS_BYTES: &str = "isolate_key_egress_bytes_total";

/// Bucket bounds of every `_seconds` histogram: 1 ms to 60 s, the range of the timeouts.
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];

/// How often histogram samples are folded into their buckets between scrapes, which bounds
/// the memory they hold.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder once and returns its handle; `None` when another recorder
/// was installed first (then `/metrics` answers 500 and nothing is recorded here).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::error!(error = %e, "cannot install the metrics recorder");
                return None;
            }
            describe();
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
            }
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route (the route table's path, or \"unmatched\"), method and status."
    );
    describe_counter!(
        EXECUTIONS,
        "Executions answered, by engine (quickjs, wasmtime), preset and outcome (ok, or the error type)."
    );
    describe_histogram!(
        EXECUTION_SECONDS,
        Unit::Seconds,
        "Time from taking an execution to its worker's answer, queueing included, by engine and preset."
    );
    describe_histogram!(
        QUEUE_WAIT_SECONDS,
        Unit::Seconds,
        "Time executions waited for a slot (0 when one was free)."
    );
    describe_counter!(
        FETCHES,
        "Fetches of the agent preset, by outcome: ok, denied (egress policy or the per-execution limit) or error."
    );
    describe_counter!(
        KEY_EXECUTIONS,
        "Executions answered, by key (the configured key's name, or open) and outcome (ok, or the error type)."
    );
    describe_gauge!(
        KEY_CPU_SECONDS,
        Unit::Seconds,
        "CPU seconds workers spent on each key's executions since the service started."
    );
    describe_counter!(
        KEY_EGRESS_BYTES,
        Unit::Bytes,
        "Bytes sent and received by each key's fetches (request and response bodies)."
    );
    for (name, help) in POOL_COUNTERS {
        describe_counter!(*name, *help);
    }
    describe_gauge!("isolate_workers", "Live workers, by state (idle, busy).");
    describe_gauge!(
        "isolate_queue_depth",
        "Requests waiting for an execution slot."
    );
    describe_gauge!(
        "isolate_execution_slots",
        "Executions that may run at once (workers.max_concurrent)."
    );
    describe_gauge!(
        "isolate_module_store_modules",
        "Compiled WebAssembly modules held."
    );
    describe_gauge!(
        "isolate_module_store_bytes",
        Unit::Bytes,
        "Bytes of compiled WebAssembly artifacts held."
    );
    for (name, help) in STORE_COUNTERS {
        describe_counter!(*name, *help);
    }
    describe_gauge!(
        "isolate_uptime_seconds",
        Unit::Seconds,
        "Seconds since the service started."
    );
    describe_gauge!(
        "isolate_build_info",
        "Always 1; the version label names the running build."
    );
}

const POOL_COUNTERS: &[(&str, &str)] = &[
    ("isolate_worker_spawns_total", "Workers forked."),
    (
        "isolate_worker_recycles_total",
        "Workers retired after a normal life (workers.recycle_after, their own request, or an agent job).",
    ),
    (
        "isolate_worker_kills_total",
        "Workers killed at an execution's hard deadline.",
    ),
    (
        "isolate_worker_crashes_total",
        "Workers that died while running a job.",
    ),
    (
        "isolate_sandbox_violations_total",
        "Workers stopped for a sandbox violation: a system call on the seccomp kill list, or a host call their job does not allow.",
    ),
    (
        "isolate_busy_rejections_total",
        "Requests refused with BUSY (queue full or queue timeout).",
    ),
    (
        "isolate_zygote_starts_total",
        "Zygote starts, the first included.",
    ),
];

const STORE_COUNTERS: &[(&str, &str)] = &[
    (
        "isolate_module_store_hits_total",
        "Module store lookups that found the module.",
    ),
    (
        "isolate_module_store_misses_total",
        "Module store lookups that did not.",
    ),
    (
        "isolate_module_store_evictions_total",
        "Modules evicted to keep the store within its bounds.",
    ),
];

/// A method as a label: one of the methods the API knows, else `other`.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

/// Records one answered request. `route` is the pattern the router matched (`None` for the
/// 404 of unknown paths), never the raw path.
pub fn request(route: Option<&str>, method: &actix_web::http::Method, status: u16) {
    let route = route.unwrap_or("unmatched").to_string();
    counter!(
        HTTP_REQUESTS,
        "route" => route,
        "method" => method_label(method),
        "status" => status.to_string()
    )
    .increment(1);
}

/// Records one answered execution: `engine` `quickjs` or `wasmtime`, `outcome` `ok` or the
/// error type.
pub fn execution(
    engine: &'static str,
    preset: &'static str,
    outcome: &'static str,
    took: Duration,
) {
    counter!(EXECUTIONS, "engine" => engine, "preset" => preset, "outcome" => outcome).increment(1);
    histogram!(EXECUTION_SECONDS, "engine" => engine, "preset" => preset)
        .record(took.as_secs_f64());
}

/// Records what one answered execution of the key `key` used. Key names come from the
/// configuration, so the label's values are a fixed set.
pub fn key_execution(key: &str, outcome: &'static str, egress_bytes: u64) {
    counter!(KEY_EXECUTIONS, "key" => key.to_string(), "outcome" => outcome).increment(1);
    counter!(KEY_EGRESS_BYTES, "key" => key.to_string()).increment(egress_bytes);
}

/// Records how long an execution waited for its slot.
pub fn queue_wait(waited: Duration) {
    histogram!(QUEUE_WAIT_SECONDS).record(waited.as_secs_f64());
}

/// Records one fetch: `ok`, `denied` or `error`.
pub fn fetch(outcome: &'static str) {
    counter!(FETCHES, "outcome" => outcome).increment(1);
}

/// The exposition for one scrape: the recorded events, with `figures` copied in first.
/// `None` when no recorder could be installed.
pub fn render(figures: &Figures) -> Option<String> {
    let handle = install()?;
    for (name, value) in &figures.counters {
        counter!(*name).absolute(*value);
    }
    gauge!("isolate_workers", "state" => "idle").set(figures.idle as f64);
    gauge!("isolate_workers", "state" => "busy").set(figures.busy as f64);
    gauge!("isolate_queue_depth").set(figures.queued as f64);
    gauge!("isolate_execution_slots").set(figures.slots as f64);
    gauge!("isolate_module_store_modules").set(figures.modules as f64);
    gauge!("isolate_module_store_bytes").set(figures.store_bytes as f64);
    gauge!("isolate_uptime_seconds").set(figures.uptime.as_secs_f64());
    for (key, ms) in &figures.key_cpu_ms {
        gauge!(KEY_CPU_SECONDS, "key" => key.clone()).set(ms / 1000.0);
    }
    let version = Label::new("version", env!("CARGO_PKG_VERSION"));
    gauge!("isolate_build_info", vec![version]).set(1.0);
    handle.run_upkeep();
    Some(handle.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_sets() {
        use actix_web::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").expect("a token")),
            "other"
        );
    }

    #[test]
    fn every_pool_and_store_counter_is_described_once_and_ends_in_total() {
        let mut names: Vec<&str> = POOL_COUNTERS
            .iter()
            .chain(STORE_COUNTERS)
            .map(|(n, _)| *n)
            .collect();
        assert!(names.iter().all(|n| n.ends_with("_total")));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), POOL_COUNTERS.len() + STORE_COUNTERS.len());
    }
}
