//! Start-up sizing: the worst case of the configured pool against the machine's memory.
//!
//! The service bounds each execution, not their sum. At start-up [`fit`] compares the worst
//! case (`workers.max_concurrent` × the most one worker may hold, plus the supervisor's own
//! share) with the memory there is: `MemTotal`, or the cgroup's limit (`memory.max`, or
//! `memory.limit_in_bytes` on cgroup v1) when it is lower. Over 90 % of it, and with
//! `workers.memory_fit = "lower"` (the default), `workers.max_concurrent` is lowered to fit;
//! with `"warn"` it is kept and a warning says so. `/status` shows the outcome.

use serde::Serialize;

use crate::config::Config;

/// What one worker may hold beyond its engine's own limit: the runtime, the context, the
/// stack and the frames in flight (an idle worker's resident set is about 4 MiB).
pub const WORKER_OVERHEAD_BYTES: u64 = 16 << 20;
/// The supervisor's own share, besides the module store: its threads, buffers and answers.
pub const SUPERVISOR_OVERHEAD_BYTES: u64 = 128 << 20;
/// The share of the machine's (or cgroup's) memory the worst case may take.
pub const BUDGET_PERCENT: u64 = 90;

/// The outcome, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sizing {
    /// The most one worker may hold: its largest engine limit plus [`WORKER_OVERHEAD_BYTES`].
    pub per_worker_bytes: u64,
    /// The supervisor's share: [`SUPERVISOR_OVERHEAD_BYTES`] plus `wasm.max_store_bytes`.
    pub overhead_bytes: u64,
    /// The worst case of the configured pool.
    pub worst_case_bytes: u64,
    /// The memory there is, when it could be read.
    pub memory_bytes: Option<u64>,
    /// Where that figure comes from: `MemTotal` or the cgroup file.
    pub memory_source: Option<String>,
    /// `workers.max_concurrent` as configured.
    pub configured_max_concurrent: usize,
    /// `workers.max_concurrent` in force.
    pub max_concurrent: usize,
    /// What start-up did about it.
    pub action: Fit,
}

/// What [`fit`] found and did, shown in `/status` in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// The worst case fits.
    Fits,
    /// `workers.max_concurrent` was lowered to fit.
    Lowered,
    /// It does not fit, and was kept (`workers.memory_fit = "warn"`).
    Warned,
    /// It does not fit, and sizing is off (`workers.memory_fit = "off"`).
    Off,
    /// The machine's memory could not be read.
    Unknown,
}

/// The memory there is: the lower of `MemTotal` and the cgroup's limit, with its source.
pub fn machine_memory() -> Option<(u64, String)> {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    });
    let cgroup = cgroup_limit();
    match (total, cgroup) {
        (Some(t), Some((c, path))) if c < t => Some((c, path)),
        (Some(t), _) => Some((t, "MemTotal".into())),
        (None, c) => c,
    }
}

/// The lowest memory limit of this process's cgroup and its ancestors, with the file it
/// came from.
fn cgroup_limit() -> Option<(u64, String)> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut best: Option<(u64, String)> = None;
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (base, file) = match controllers {
            "" => ("/sys/fs/cgroup".to_string(), "memory.max"),
            c if c.split(',').any(|c| c == "memory") => {
                ("/sys/fs/cgroup/memory".to_string(), "memory.limit_in_bytes")
            }
            _ => continue,
        };
        let mut dir = std::path::PathBuf::from(format!("{base}{path}"));
        loop {
            let candidate = dir.join(file);
            if let Ok(text) = std::fs::read_to_string(&candidate) {
                // "max" (v2) or a huge page-rounded number (v1) means no limit.
                if let Ok(limit) = text.trim().parse::<u64>() {
                    if limit < (1 << 60) && best.as_ref().is_none_or(|(b, _)| limit < *b) {
                        best = Some((limit, candidate.display().to_string()));
                    }
                }
            }
            if dir.as_os_str().len() <= base.len() || !dir.pop() {
                break;
            }
        }
    }
    best
}

/// Compares the configured pool with `memory` (bytes and source) and, as
/// `workers.memory_fit` says, lowers `workers.max_concurrent` (and `workers.prewarm` with it)
/// in `config`. Returns what it found and did.
pub fn fit(config: &mut Config, memory: Option<(u64, String)>) -> Sizing {
    let js = config.limits.memory_bytes;
    let wasm = config
        .wasm
        .memory_bytes
        .saturating_mul(u64::from(config.wasm.max_memories));
    let per_worker = js.max(wasm).saturating_add(WORKER_OVERHEAD_BYTES);
    let overhead = SUPERVISOR_OVERHEAD_BYTES.saturating_add(config.wasm.max_store_bytes);
    let configured = config.workers.max_concurrent;
    let worst = |n: usize| per_worker.saturating_mul(n as u64).saturating_add(overhead);
    let mut sizing = Sizing {
        per_worker_bytes: per_worker,
        overhead_bytes: overhead,
        worst_case_bytes: worst(configured),
        memory_bytes: memory.as_ref().map(|m| m.0),
        memory_source: memory.as_ref().map(|m| m.1.clone()),
        configured_max_concurrent: configured,
        max_concurrent: configured,
        action: Fit::Fits,
    };
    let Some((bytes, _)) = memory else {
        sizing.action = Fit::Unknown;
        return sizing;
    };
    let budget = bytes / 100 * BUDGET_PERCENT;
    if sizing.worst_case_bytes <= budget {
        return sizing;
    }
    sizing.action = match config.workers.memory_fit.as_str() {
        "off" => Fit::Off,
        "warn" => Fit::Warned,
        _ => {
            let fits = budget.saturating_sub(overhead) / per_worker.max(1);
            let lowered = usize::try_from(fits)
                .unwrap_or(usize::MAX)
                .clamp(1, configured);
            config.workers.max_concurrent = lowered;
            config.workers.prewarm = config.workers.prewarm.min(lowered);
            sizing.max_concurrent = lowered;
            sizing.worst_case_bytes = worst(lowered);
            Fit::Lowered
        }
    };
    sizing
}

/// Logs the outcome of [`fit`] once, at start-up.
pub fn log(sizing: &Sizing) {
    let mib = |b: u64| b >> 20;
    match sizing.action {
        Fit::Lowered => tracing::warn!(
            "memory: lowered workers.max_concurrent from {} to {}: {} × {} MiB per worker + {} MiB \
             would exceed {}% of {} MiB ({}); set workers.memory_fit = \"warn\" to keep it",
            sizing.configured_max_concurrent,
            sizing.max_concurrent,
            sizing.configured_max_concurrent,
            mib(sizing.per_worker_bytes),
            mib(sizing.overhead_bytes),
            BUDGET_PERCENT,
            mib(sizing.memory_bytes.unwrap_or(0)),
            sizing.memory_source.as_deref().unwrap_or("?"),
        ),
        Fit::Warned | Fit::Off => {
            tracing::warn!(
            "memory: the worst case of {} MiB ({} × {} MiB per worker + {} MiB) exceeds {}% of \
             {} MiB ({}); workers.max_concurrent is kept at {} (workers.memory_fit = {:?}): the \
             kernel's OOM killer may pick the supervisor",
            mib(sizing.worst_case_bytes),
            sizing.max_concurrent,
            mib(sizing.per_worker_bytes),
            mib(sizing.overhead_bytes),
            BUDGET_PERCENT,
            mib(sizing.memory_bytes.unwrap_or(0)),
            sizing.memory_source.as_deref().unwrap_or("?"),
            sizing.max_concurrent,
            if sizing.action == Fit::Off { "off" } else { "warn" },
        )
        }
        Fit::Unknown => tracing::warn!("memory: cannot read the machine's memory; not sized"),
        Fit::Fits => tracing::info!(
            worst_case_mib = mib(sizing.worst_case_bytes),
            memory_mib = mib(sizing.memory_bytes.unwrap_or(0)),
            "memory: the worst case of the pool fits"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn the_default_pool_is_lowered_on_a_small_machine_and_kept_on_a_big_one() {
        let mut c = Config::default();
        let s = fit(&mut c, Some((24 * GIB, "MemTotal".into())));
        assert_eq!((s.action, c.workers.max_concurrent), (Fit::Fits, 50));
        assert_eq!(s.per_worker_bytes, (128 + 16) << 20);
        assert_eq!(s.worst_case_bytes, 50 * (144 << 20) + (384 << 20));

        let mut c = Config::default();
        let s = fit(&mut c, Some((4 * GIB, "MemTotal".into())));
        // 90 % of 4 GiB is 3686 MiB; less 384 MiB, 3302 MiB hold 22 workers of 144 MiB.
        assert_eq!(
            (s.action, s.max_concurrent, c.workers.max_concurrent),
            (Fit::Lowered, 22, 22)
        );
        assert!(s.worst_case_bytes <= 4 * GIB / 100 * 90);
        assert_eq!(c.workers.prewarm, 4);
        c.validate().unwrap();

        let mut c = Config::default();
        c.workers.memory_fit = "warn".into();
        let s = fit(
            &mut c,
            Some((4 * GIB, "/sys/fs/cgroup/x/memory.max".into())),
        );
        assert_eq!((s.action, c.workers.max_concurrent), (Fit::Warned, 50));

        let mut c = Config::default();
        let s = fit(&mut c, Some((256 << 20, "MemTotal".into())));
        assert_eq!(
            (s.action, c.workers.max_concurrent, c.workers.prewarm),
            (Fit::Lowered, 1, 1)
        );
        c.validate().unwrap();

        let mut c = Config::default();
        assert_eq!(fit(&mut c, None).action, Fit::Unknown);
    }

    #[test]
    fn this_machine_has_readable_memory() {
        let (bytes, source) = machine_memory().expect("/proc/meminfo");
        assert!(bytes > 64 << 20, "{bytes} from {source}");
    }

    #[test]
    fn the_units_memory_max_holds_the_default_worst_case() {
        let unit = include_str!("../../packaging/systemd/isolate-service.service");
        let value = unit
            .lines()
            .find_map(|l| l.strip_prefix("MemoryMax="))
            .expect("the unit sets MemoryMax=");
        let bytes = match value.trim().strip_suffix('G') {
            Some(g) => g.parse::<u64>().expect("a number of GiB") * GIB,
            None => panic!("MemoryMax= in G: {value}"),
        };
        let mut c = Config::default();
        let s = fit(&mut c, Some((bytes, "MemoryMax".into())));
        assert_eq!(s.action, Fit::Fits, "{s:?}");
        // And not much more: within 25 % of the worst case divided by the budget.
        assert!(
            bytes / 100 * BUDGET_PERCENT < s.worst_case_bytes / 4 * 5,
            "{s:?}"
        );
    }
}
