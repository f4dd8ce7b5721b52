//! `GET /status`: the admin's view of the running system. Every figure is read from the live
//! processes (`/proc`) or from what the zygote and each worker reported after applying its
//! sandbox, never copied from the configuration. `GET /metrics`: the same service for
//! Prometheus ([`crate::telemetry`]).

use actix_web::{web, HttpResponse, ResponseError};
use serde_json::{json, Value};

use super::error::ApiError;
use super::AppState;
use crate::procfs;
use crate::telemetry::{self, Figures};

/// The media type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.snapshot();
    let store = state.modules.snapshot();
    let figures = Figures {
        counters: vec![
            ("isolate_worker_spawns_total", pool.spawned),
            ("isolate_worker_recycles_total", pool.recycled),
            ("isolate_worker_kills_total", pool.killed),
            ("isolate_worker_crashes_total", pool.crashed),
            ("isolate_sandbox_violations_total", pool.violations),
            ("isolate_busy_rejections_total", pool.rejected_busy),
            ("isolate_zygote_starts_total", pool.zygote_starts),
            ("isolate_module_store_hits_total", store.hits),
            ("isolate_module_store_misses_total", store.misses),
            ("isolate_module_store_evictions_total", store.evictions),
        ],
        idle: pool.idle,
        busy: pool.busy,
        queued: pool.queued,
        slots: pool.max_concurrent,
        modules: store.modules,
        store_bytes: store.bytes,
        uptime: state.started.elapsed(),
        key_cpu_ms: state.auth.cpu_totals(),
    };
    match telemetry::render(&figures) {
        Some(text) => HttpResponse::Ok()
            .content_type(METRICS_CONTENT_TYPE)
            .body(text),
        None => ApiError::Internal.error_response(),
    }
}

/// `GET /status`
pub async fn status(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.snapshot();
    let zygote = state.pool.zygote_report();
    let sandbox = &state.config().sandbox;
    let own_net = procfs::namespace(None, "net");
    let me = std::process::id();
    let me_status = procfs::status(me).unwrap_or_default();
    // Read from the kernel: whether the zygote runs under the filters its workers inherit.
    let zygote_pid = pool.zygote_pid;
    let zygote_filtered = (zygote_pid != 0)
        .then(|| procfs::status(zygote_pid))
        .flatten()
        .is_some_and(|st| procfs::number(&st, "Seccomp") == Some(2));

    let mut workers = Vec::new();
    let (mut seccomp_on, mut nnp_on, mut net_isolated, mut counted) = (0, 0, 0, 0);
    let mut landlock_abis = Vec::new();
    let mut rlimits = Value::Null;
    for (pid, info) in state.pool.workers() {
        let Some(st) = procfs::status(pid) else {
            continue;
        };
        let seccomp = procfs::number(&st, "Seccomp").unwrap_or(0);
        let nnp = procfs::number(&st, "NoNewPrivs").unwrap_or(0) == 1;
        let net = procfs::namespace(Some(pid), "net");
        let isolated = net.is_some() && net != own_net;
        counted += 1;
        seccomp_on += usize::from(seccomp == 2);
        nnp_on += usize::from(nnp);
        net_isolated += usize::from(isolated);
        landlock_abis.push(info.lockdown.landlock_abi);
        if rlimits.is_null() {
            let l = procfs::limits(pid);
            rlimits = json!({
                "dataBytes": l.get("Max data size"),
                "openFiles": l.get("Max open files"),
                "processes": l.get("Max processes"),
                "fileSizeBytes": l.get("Max file size"),
                "coreBytes": l.get("Max core file size"),
            });
        }
        workers.push(json!({
            "pid": pid,
            "state": if info.busy { "busy" } else { "idle" },
            "executions": info.executions,
            "ageSeconds": info.born.elapsed().as_secs_f64(),
            "rssBytes": procfs::rss_bytes(&st),
            "seccomp": seccomp,
            "seccompFilters": procfs::number(&st, "Seccomp_filters"),
            "noNewPrivs": nnp,
            "netNamespace": net,
            "landlockAbi": info.lockdown.landlock_abi,
            "landlockStatus": info.lockdown.landlock_status,
            "lockdownErrors": info.lockdown.errors,
            "lockdownMicros": info.lockdown.micros,
            "spawnMicros": info.spawn_micros,
        }));
    }
    let all = |n: usize| counted > 0 && n == counted;
    let landlock_abi = landlock_abis.iter().copied().min().unwrap_or(0);
    HttpResponse::Ok().json(json!({
        "supervisor": {
            "pid": me,
            "uptime": state.started.elapsed().as_secs_f64(),
            "version": env!("CARGO_PKG_VERSION"),
            "rssBytes": procfs::rss_bytes(&me_status),
            "threads": procfs::number(&me_status, "Threads"),
        },
        "zygote": {
            "pid": pool.zygote_pid,
            "starts": pool.zygote_starts,
            "alive": pool.zygote_pid > 0 && procfs::status(pool.zygote_pid).is_some(),
            "hugeTextBytes": zygote.as_ref().map_or(0, |z| z.huge_text_bytes),
            "hugeTextError": zygote.as_ref().and_then(|z| z.huge_text_error.clone()),
            "runtimeSnapshotBytes": zygote.as_ref().map_or(0, |z| z.runtime_snapshot_bytes),
        },
        "queue": {
            "queued": pool.queued,
            "busy": pool.busy,
            "idle": pool.idle,
            "maxConcurrent": pool.max_concurrent,
            "queueSize": pool.queue_size,
        },
        "workers": workers,
        "memory": state.sizing,
        "executions": state.metrics.executions.load(std::sync::atomic::Ordering::Relaxed),
        "recent": *state.metrics.recent.lock().unwrap_or_else(|e| e.into_inner()),
        "keys": state.auth.report(std::time::SystemTime::now()),
        "sandbox": {
            "required": sandbox.require,
            "seccomp": {
                "enabled": sandbox.seccomp,
                "active": all(seccomp_on),
                "workersFiltered": seccomp_on,
                "policySha256": zygote.as_ref().and_then(|z| z.seccomp_policy_sha256.clone()),
                "zygoteFiltered": zygote_filtered,
                "zygoteError": zygote.as_ref().and_then(|z| z.zygote_seccomp_error.clone()),
            },
            "noNewPrivs": { "active": all(nnp_on) },
            "landlock": {
                "enabled": sandbox.landlock,
                "active": all(landlock_abis.iter().filter(|a| **a > 0).count()),
                "kernelAbi": zygote.as_ref().map(|z| z.landlock_kernel_abi),
                "enforcedAbi": landlock_abi,
            },
            "namespaces": {
                "enabled": sandbox.namespaces,
                "active": all(net_isolated),
                "entered": zygote.as_ref().map(|z| z.namespaces.clone()).unwrap_or_default(),
                "error": zygote.as_ref().and_then(|z| z.namespace_error.clone()),
            },
            "rlimits": {
                "enabled": sandbox.rlimits,
                "inForce": rlimits,
            },
        },
    }))
}
