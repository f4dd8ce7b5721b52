//! `POST /execute` and `POST /validate`.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use super::answer::Answer;
use isolate_shared::message::{
    CodeForm, ErrorKind, ExecuteJob, ExecuteOutcome, JobError, Language, LogEntry, Preset,
    SupervisorMessage, ValidateJob, WorkerMessage,
};
use serde::Serialize;
use serde_json::value::RawValue;

use super::auth::{Caller, Usage};
use super::error::ApiError;
use super::{request, AppState, LogFields, RequestId};
use crate::fetch::{FetchAudit, FetchContext};
use crate::pool::{PoolError, Tenant};

#[derive(Serialize)]
struct LogOut<'a> {
    level: &'a str,
    message: &'a str,
    time: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats<'a> {
    elapsed: f64,
    timeout: u64,
    preset: &'a str,
    log_count: usize,
    logs_truncated: bool,
}

#[derive(Serialize)]
struct Meta {
    elapsed: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Success<'a> {
    success: bool,
    result: &'a RawValue,
    logs: Vec<LogOut<'a>>,
    execution_id: &'a str,
    stats: Stats<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fetches: Option<&'a [FetchAudit]>,
    usage: &'a Usage,
    #[serde(rename = "_meta")]
    meta: Meta,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure<'a> {
    success: bool,
    error: ErrorOut<'a>,
    logs: Vec<LogOut<'a>>,
    execution_id: &'a str,
    stats: Stats<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fetches: Option<&'a [FetchAudit]>,
    usage: &'a Usage,
    #[serde(rename = "_meta")]
    meta: Meta,
}

/// The key a request was authorised with; the middleware always sets one on the routes that
/// run code, so a missing one is the service's fault.
pub fn caller(req: &HttpRequest) -> Result<Caller, ApiError> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or(ApiError::Internal)
}

/// The pool's view of a key.
pub fn tenant(caller: &Caller) -> Tenant {
    Tenant {
        name: std::sync::Arc::clone(&caller.name),
        max_concurrent: caller.max_concurrent,
    }
}

/// The hosts an `agent` execution of `caller` may fetch: the service's allowlist, narrowed to
/// the key's `fetch_allow`, then to the request's `fetch.allow`. `None`: the service's list.
pub fn fetch_hosts(
    state: &AppState,
    caller: &Caller,
    request: Option<Vec<String>>,
) -> Result<Option<crate::fetch::HostSet>, ApiError> {
    let egress = state.egress();
    let refused = |problem| ApiError::InvalidField {
        field: "fetch",
        problem,
    };
    match (&caller.fetch_allow, request) {
        (None, None) => Ok(None),
        (None, Some(entries)) => egress.narrow(&entries).map(Some).map_err(refused),
        (Some(key), entries) => {
            let key_set = egress.narrow(key).map_err(|e| {
                tracing::error!(key = %caller.name, error = %e, "a key's fetch_allow is not covered by fetch.allow");
                ApiError::Internal
            })?;
            match entries {
                None => Ok(Some(key_set)),
                Some(entries) => key_set.narrow(&entries).map(Some).map_err(|e| {
                    ApiError::PolicyDenied(format!(
                        "fetch.allow: {}",
                        e.replace("the service's fetch allowlist", "its fetch_allow")
                    ))
                }),
            }
        }
    }
}

/// The fetch context of an `agent` execution (`None` for other presets): the hosts of
/// [`fetch_hosts`], within the execution's timeout.
fn fetch_context(
    state: &AppState,
    caller: &Caller,
    preset: Preset,
    request: Option<Vec<String>>,
    timeout_ms: u64,
) -> Result<Option<FetchContext>, ApiError> {
    if preset != Preset::Agent {
        return Ok(None);
    }
    let hosts = fetch_hosts(state, caller, request)?;
    Ok(Some(
        state
            .egress()
            .context(hosts, Duration::from_millis(timeout_ms)),
    ))
}

fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn logs_out(logs: &[LogEntry]) -> Vec<LogOut<'_>> {
    logs.iter()
        .map(|l| LogOut {
            level: l.level.as_str(),
            message: &l.message,
            time: l.time_ms,
        })
        .collect()
}

/// `POST /execute`: runs code in a worker and answers its result or its error.
pub async fn execute(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let caller = caller(&req)?;
    let body = request::read_object(&req, payload, state.config().server.max_body_bytes).await?;
    execute_body(
        &state,
        &body,
        &request_id(&req),
        started,
        &caller,
        "/execute",
    )
    .await
    .map(Answer::into_response)
}

/// What `POST /execute` does once its body is read: checks the fields, runs the code and
/// builds the answer. The MCP tool `run_javascript` calls it too.
pub async fn execute_body(
    state: &AppState,
    body: &request::Body,
    id: &str,
    started: Instant,
    caller: &Caller,
    route: &'static str,
) -> Result<Answer, ApiError> {
    let code = request::code(body)?;
    let preset = request::preset(body)?;
    caller.check_preset(preset)?;
    let env_json = request::env(body)?;
    let limits = &state.config().limits;
    let timeout_ms =
        caller.limit_timeout(request::timeout(body, limits)?, request::asks_timeout(body))?;
    let language = request::language(body)?;
    let allow = request::fetch_allow(body)?;
    let fetch = fetch_context(state, caller, preset, allow, timeout_ms)?;
    let job = ExecuteJob {
        code: code.to_string(),
        preset,
        env_json,
        timeout_ms,
        limits: limits.js(),
        language,
        form: CodeForm::Auto,
        data_json: None,
    };
    run(state, id, job, fetch, started, (caller, route)).await
}

/// `POST /deno`: runs a TypeScript (or JavaScript) function body with `data` in scope, in the
/// `data` preset, or the `agent` preset when `permissions` holds `"net"`.
pub async fn deno(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let caller = caller(&req)?;
    let body = request::read_object(&req, payload, state.config().server.max_body_bytes).await?;
    let code = request::code(&body)?;
    let data_json = request::data(&body)?;
    let net = request::permissions(&body)?;
    let limits = &state.config().limits;
    let timeout_ms = caller.limit_timeout(
        request::deno_timeout(&body, limits)?,
        request::asks_timeout(&body),
    )?;
    let preset = if net { Preset::Agent } else { Preset::Data };
    caller.check_preset(preset)?;
    let job = ExecuteJob {
        code: code.to_string(),
        preset,
        env_json: None,
        timeout_ms,
        limits: limits.js(),
        language: Language::TypeScript,
        form: CodeForm::FunctionBody,
        data_json: Some(data_json),
    };
    // `net` is the agent preset under the configured egress policy (narrowed by the key's).
    let fetch = fetch_context(&state, &caller, preset, None, timeout_ms)?;
    run(
        &state,
        &request_id(&req),
        job,
        fetch,
        started,
        (&caller, "/deno"),
    )
    .await
    .map(Answer::into_response)
}

/// Sends one execution to a worker and answers its outcome, as `/execute` and `/deno` do.
async fn run(
    state: &AppState,
    id: &str,
    job: ExecuteJob,
    fetch: Option<FetchContext>,
    started: Instant,
    (caller, route): (&Caller, &'static str),
) -> Result<Answer, ApiError> {
    let limits = &state.config().limits;
    let (timeout_ms, preset) = (job.timeout_ms, job.preset);
    let job = SupervisorMessage::Execute(job);
    let hard_deadline = Duration::from_millis(timeout_ms + limits.kill_grace_ms);
    state.auth.admit(caller, std::time::SystemTime::now())?;
    let called = Instant::now();
    let tenant = tenant(caller);
    let call = state
        .pool
        .call(&job, hard_deadline, fetch.as_ref(), &tenant);
    let (outcome, pid) = match call.await {
        Ok((WorkerMessage::Executed(outcome), pid)) => (outcome, Some(pid)),
        Ok((other, pid)) => {
            let kind = match other {
                WorkerMessage::Hello(..) => "Hello",
                WorkerMessage::Executed(_) => "Executed",
                WorkerMessage::Validated(_) => "Validated",
                WorkerMessage::Probed(_) => "Probed",
                WorkerMessage::WasmCompiled(_) => "WasmCompiled",
                WorkerMessage::WasmRan(_) => "WasmRan",
                WorkerMessage::Violation { .. } => "Violation",
                WorkerMessage::Fetch(_) => "Fetch",
            };
            tracing::error!(
                pid,
                answer = kind,
                "worker answered an execution out of turn"
            );
            (
                failed(
                    ErrorKind::Internal,
                    "InternalError",
                    "the worker answered out of turn".into(),
                ),
                Some(pid),
            )
        }
        Err(e) => {
            let pid = match e {
                PoolError::Crashed(pid) => Some(pid),
                _ => None,
            };
            match super::error::pool_failure(&e, timeout_ms, super::error::Subject::Code) {
                Ok((kind, name, message)) => {
                    let mut outcome = failed(kind, name, message);
                    outcome.cpu_us = e.killed_cpu_us();
                    (outcome, pid)
                }
                Err(busy) => {
                    state.auth.refund(caller, std::time::SystemTime::now());
                    state.metrics.record(
                        (id, &caller.name),
                        "quickjs",
                        preset.name(),
                        Some(ErrorKind::Busy.as_str()),
                        called.elapsed(),
                    );
                    return Err(busy);
                }
            }
        }
    };

    let fetches = fetch.as_ref().map(|f| f.audit());
    let (fetch_count, egress_bytes) = fetch.as_ref().map_or((0, 0), |f| f.usage());
    let usage = Usage {
        cpu_ms: outcome.cpu_us as f64 / 1e3,
        wall_ms: Usage::millis_since(started),
        heap_peak_bytes: outcome.heap_peak_bytes,
        fetches: fetch_count,
        egress_bytes,
    };
    let context = AnswerContext {
        execution_id: id,
        elapsed: started.elapsed(),
        timeout_ms,
        preset,
        fetches: fetches.as_deref(),
        usage,
        bound: state.config().answer_bytes(),
    };
    let (answer, kind) = assemble(&outcome, &context);
    let fields = LogFields {
        preset: Some(preset.name()),
        error_type: kind.map(ErrorKind::as_str),
        worker_pid: pid,
        fetches: fetches.as_ref().map(Vec::len),
    };
    super::settle(
        state,
        caller,
        (id, route, "quickjs", preset.name()),
        (fields.error_type, called.elapsed()),
        &usage,
    );
    Ok(answer.with_fields(fields))
}

/// What an execution's answer says besides the worker's outcome.
pub struct AnswerContext<'a> {
    /// The request id, answered as `executionId`.
    pub execution_id: &'a str,
    /// Time since the request arrived.
    pub elapsed: Duration,
    /// The execution's timeout.
    pub timeout_ms: u64,
    /// The preset it ran in.
    pub preset: Preset,
    /// The fetch audit of an `agent` execution.
    pub fetches: Option<&'a [FetchAudit]>,
    /// What the execution used.
    pub usage: Usage,
    /// The most bytes the encoded answer may take ([`crate::config::Config::answer_bytes`]).
    pub bound: usize,
}

/// Builds the answer of `/execute` and `/deno` from a worker's outcome: the success or
/// failure document with logs, statistics and the fetch audit, and the error type it
/// reports. An answer that would pass `context.bound` is replaced by an `OUTPUT_LIMIT`
/// failure without the result, logs and audit, so no outcome can make it larger; a result
/// that is not JSON (a worker's fault) is an `INTERNAL` failure.
pub fn assemble(
    outcome: &ExecuteOutcome,
    context: &AnswerContext<'_>,
) -> (Answer, Option<ErrorKind>) {
    let elapsed = context.elapsed;
    let stats = |log_count, logs_truncated| Stats {
        elapsed: (elapsed.as_secs_f64() * 1e6).round() / 1e3,
        timeout: context.timeout_ms,
        preset: context.preset.name(),
        log_count,
        logs_truncated,
    };
    let meta = || Meta {
        elapsed: format!("{:.2}ms", elapsed.as_secs_f64() * 1e3),
    };
    let fetches = context.fetches;
    let id = context.execution_id;
    let usage = &context.usage;
    let failure = |e: &JobError, logs, stats, fetches| {
        let status = super::error::failure_status(e.kind);
        Answer::json(
            status,
            &Failure {
                success: false,
                error: ErrorOut {
                    kind: e.kind.as_str(),
                    message: &e.message,
                    name: &e.name,
                    stack: e.stack.as_deref(),
                    line: e.line,
                    column: e.column,
                },
                logs,
                execution_id: id,
                stats,
                fetches,
                usage,
                meta: meta(),
            },
        )
    };
    let mut kind = outcome.result.as_ref().err().map(|e| e.kind);
    let stats_now = stats(outcome.logs.len(), outcome.logs_truncated);
    let mut answer = match &outcome.result {
        Ok(json) => match serde_json::from_str::<&RawValue>(json) {
            Ok(result) => Answer::json(
                StatusCode::OK,
                &Success {
                    success: true,
                    result,
                    logs: logs_out(&outcome.logs),
                    execution_id: id,
                    stats: stats_now,
                    fetches,
                    usage,
                    meta: meta(),
                },
            ),
            Err(e) => {
                tracing::error!(error = %e, "a worker answered a result that is not JSON");
                kind = Some(ErrorKind::Internal);
                let e = JobError::new(
                    ErrorKind::Internal,
                    "InternalError",
                    "the worker answered a result that is not JSON",
                );
                failure(&e, Vec::new(), stats(0, false), None)
            }
        },
        Err(e) => failure(e, logs_out(&outcome.logs), stats_now, fetches),
    };
    // The backstop: whatever the parts' own caps, the answer stays within its bound.
    let bound = context.bound;
    if answer.body.len() > bound {
        let e = JobError::new(
            ErrorKind::OutputLimit,
            "RangeError",
            format!(
                "the answer would be {} bytes, more than the bound of {bound} bytes; the \
                 result, logs and fetch audit were dropped",
                answer.body.len()
            ),
        );
        answer = failure(&e, Vec::new(), stats(0, true), None);
        kind = Some(ErrorKind::OutputLimit);
    }
    (answer, kind)
}

fn failed(kind: ErrorKind, name: &str, message: String) -> ExecuteOutcome {
    ExecuteOutcome::failed(JobError::new(kind, name, message))
}

/// `POST /validate`: parses code in a worker without running it.
pub async fn validate(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&req)?;
    let body = request::read_object(&req, payload, state.config().server.max_body_bytes).await?;
    validate_body(&state, &body, &caller)
        .await
        .map(Answer::into_response)
}

/// What `POST /validate` does once its body is read. The MCP tool `validate_code` calls it too.
pub async fn validate_body(
    state: &AppState,
    body: &request::Body,
    caller: &Caller,
) -> Result<Answer, ApiError> {
    let code = request::code(body)?;
    let language = request::language(body)?;
    let job = SupervisorMessage::Validate(ValidateJob {
        code: code.to_string(),
        language,
    });
    let limits = &state.config().limits;
    let deadline = Duration::from_millis(limits.default_timeout_ms + limits.kill_grace_ms);
    match state.pool.call(&job, deadline, None, &tenant(caller)).await {
        Ok((WorkerMessage::Validated(outcome), _)) => Ok(match outcome.error {
            None => Answer::json(StatusCode::OK, &serde_json::json!({ "valid": true })),
            Some(e) => Answer::json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &serde_json::json!({
                    "valid": false,
                    "error": e.message,
                    "line": e.line,
                    "column": e.column,
                }),
            ),
        }),
        Err(PoolError::Busy(_) | PoolError::ShuttingDown) => Err(ApiError::Busy),
        Err(PoolError::Deadline { .. }) => Ok(Answer::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &serde_json::json!({
                "valid": false,
                "error": "parsing took longer than the timeout",
            }),
        )),
        Ok(_) | Err(_) => Err(ApiError::Internal),
    }
}
