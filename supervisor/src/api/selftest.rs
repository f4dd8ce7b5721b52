//! `POST /_selftest` (only with the `sandbox-selftest` feature, for the test suite): runs one
//! sandbox probe in a real, locked-down worker and says how it ended.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use isolate_shared::message::{ProbeJob, ProbeOutcome, SupervisorMessage, WorkerMessage};
use serde_json::json;

use super::error::ApiError;
use super::{request, AppState};
use crate::pool::PoolError;

/// Body: `{probe, tcpPort, unixPath}`. Answer: `{probe, outcome, errno, syscall}` where
/// `outcome` is `succeeded`, `failed` (with `errno`), `killed` (the worker died; `syscall`
/// names the forbidden call when seccomp stopped it), `refused_host_call` (the worker made a
/// host call its job does not allow and was killed) or `unsupported`.
pub async fn probe(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = request::read_object(&req, payload, state.config().server.max_body_bytes).await?;
    let probe = body
        .get("probe")
        .and_then(|v| v.as_str())
        .ok_or(ApiError::MissingField("probe"))?
        .to_string();
    let job = ProbeJob {
        probe: probe.clone(),
        supervisor_pid: std::process::id(),
        tcp_port: body.get("tcpPort").and_then(|v| v.as_u64()).unwrap_or(0) as u16,
        unix_path: body
            .get("unixPath")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
    };
    let mut syscall = None;
    let tenant = crate::pool::Tenant::named("selftest");
    let msg = SupervisorMessage::Probe(job);
    let call = state.pool.call(&msg, Duration::from_secs(5), None, &tenant);
    let (outcome, errno) = match call.await {
        Ok((WorkerMessage::Probed(ProbeOutcome::Succeeded), _)) => ("succeeded", None),
        Ok((WorkerMessage::Probed(ProbeOutcome::Failed(e)), _)) => ("failed", Some(e)),
        Ok((WorkerMessage::Probed(ProbeOutcome::Unsupported(_)), _)) => ("unsupported", None),
        Err(PoolError::Violation(nr)) => {
            syscall = Some(crate::pool::syscall_name(nr));
            ("killed", None)
        }
        Err(PoolError::Crashed(_)) => ("killed", None),
        Err(PoolError::HostCall) => ("refused_host_call", None),
        Err(PoolError::Busy(_)) => return Err(ApiError::Busy),
        _ => return Err(ApiError::Internal),
    };
    Ok(HttpResponse::Ok()
        .json(json!({ "probe": probe, "outcome": outcome, "errno": errno, "syscall": syscall })))
}
