//! The HTTP API: routes, middleware and the shared state.
//!
//! [`configure`] wires every route in one place. Requests pass, outermost first: CORS (only
//! when origins are configured) → [`log_request`] (one structured line per request, and the
//! request id) → [`authenticate`] (bearer token and rate limit; `/health` is exempt) → the
//! handler. Errors become answers only in [`error::ApiError`]'s `ResponseError` impl.

pub mod answer;
pub mod auth;
pub mod error;
pub mod execute;
pub mod request;
#[cfg(feature = "sandbox-selftest")]
mod selftest;
mod status;
pub mod wasm;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use isolate_shared::message::Preset;
use serde_json::json;

use crate::config::Config;
use crate::pool::Pool;
use auth::Auth;
use error::ApiError;

/// The routes, as listed in 404 answers.
pub const ENDPOINTS: [&str; 7] = [
    "POST /execute",
    "POST /validate",
    "POST /deno",
    "POST /wasm/compile",
    "POST /wasm/run",
    "GET /health",
    "GET /stats",
];

/// State shared by every handler.
pub struct AppState {
    /// The configuration the service started with.
    pub config: Arc<Config>,
    /// The worker pool.
    pub pool: Arc<Pool>,
    /// The egress policy and HTTP client of the `agent` preset's fetch.
    pub egress: Arc<crate::fetch::Egress>,
    /// Token check and rate limit.
    pub auth: Auth,
    /// When the service started.
    pub started: Instant,
    /// Execution counters.
    pub metrics: Metrics,
    /// Compiled WebAssembly modules.
    pub modules: Arc<crate::modules::ModuleStore>,
}

/// Counters of executions by outcome.
#[derive(Default)]
pub struct Metrics {
    /// Executions answered (any outcome).
    pub executions: AtomicU64,
    /// Executions that returned a result.
    pub succeeded: AtomicU64,
    /// Failed executions by error type.
    pub failed: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    fn record(&self, failure: Option<&'static str>) {
        self.executions.fetch_add(1, Ordering::Relaxed);
        match failure {
            None => {
                self.succeeded.fetch_add(1, Ordering::Relaxed);
            }
            Some(kind) => {
                *self
                    .failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(kind)
                    .or_default() += 1;
            }
        }
    }
}

/// The id given to every request; `/execute` answers it as `executionId`.
#[derive(Clone)]
pub struct RequestId(pub String);

/// What a handler tells the request log about the request.
#[derive(Clone, Default)]
pub struct LogFields {
    /// The preset of an execution.
    pub preset: Option<&'static str>,
    /// The error type of a failed execution.
    pub error_type: Option<&'static str>,
    /// The worker that ran it.
    pub worker_pid: Option<u32>,
    /// How many fetches an `agent` execution made (never their URLs).
    pub fetches: Option<usize>,
}

/// Wires the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/execute", web::post().to(execute::execute))
        .route("/validate", web::post().to(execute::validate))
        .route("/deno", web::post().to(execute::deno))
        .route("/wasm/compile", web::post().to(wasm::compile))
        .route("/wasm/run", web::post().to(wasm::run))
        .route("/health", web::get().to(health))
        .route("/stats", web::get().to(stats))
        .route("/status", web::get().to(status::status));
    #[cfg(feature = "sandbox-selftest")]
    cfg.route("/_selftest", web::post().to(selftest::probe));
    cfg.default_service(web::to(not_found));
}

/// Presets as listed by `/stats` and in preset errors.
pub fn available_presets() -> Vec<serde_json::Value> {
    Preset::ALL
        .into_iter()
        .map(|p| {
            json!({
                "name": p.name(),
                "description": isolate_worker::js::presets::description(p),
            })
        })
        .collect()
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    let allow = match req.path() {
        "/execute" | "/validate" | "/deno" | "/wasm/compile" | "/wasm/run" => Some("POST"),
        "/health" | "/stats" | "/status" => Some("GET"),
        _ => None,
    };
    match allow {
        Some(allow) => ApiError::MethodNotAllowed(allow),
        None => ApiError::NotFound,
    }
    .error_response()
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.snapshot();
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "uptime": state.started.elapsed().as_secs_f64(),
        "version": env!("CARGO_PKG_VERSION"),
        "workers": { "idle": pool.idle, "busy": pool.busy, "queued": pool.queued },
    }))
}

async fn stats(state: web::Data<AppState>) -> HttpResponse {
    let m = &state.metrics;
    let failed = m.failed.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let limits = &state.config.limits;
    HttpResponse::Ok().json(json!({
        "uptime": state.started.elapsed().as_secs_f64(),
        "version": env!("CARGO_PKG_VERSION"),
        "engine": { "name": "QuickJS-ng", "binding": "rquickjs 0.14", "isolation": "process per worker" },
        "typescript": { "stripper": isolate_worker::js::typescript::STRIPPER, "typeChecked": false },
        "executions": {
            "total": m.executions.load(Ordering::Relaxed),
            "succeeded": m.succeeded.load(Ordering::Relaxed),
            "failed": failed,
        },
        "workers": state.pool.snapshot(),
        "wasm": state.modules.snapshot(),
        "presets": available_presets(),
        "limits": {
            "defaultTimeoutMs": limits.default_timeout_ms,
            "denoDefaultTimeoutMs": limits.deno_default_timeout_ms,
            "denoMaxTimeoutMs": limits.deno_max_timeout_ms,
            "maxTimeoutMs": limits.max_timeout_ms,
            "memoryBytes": limits.memory_bytes,
            "stackBytes": limits.stack_bytes,
            "maxResultBytes": limits.max_result_bytes,
            "maxLogEntries": limits.max_log_entries,
            "maxLogBytes": limits.max_log_bytes,
            "maxBodyBytes": state.config.server.max_body_bytes,
        },
    }))
}

/// Checks the bearer token and charges the rate limit on every route but `/health`.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.path() != "/health" {
        if let Some(state) = req.app_data::<web::Data<AppState>>() {
            let header = req
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            let checked = if req.path() == "/status" {
                state.auth.check_admin(header)
            } else {
                state.auth.check(header)
            };
            if let Err(e) = checked {
                return Ok(req.into_response(e.error_response()).map_into_right_body());
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Gives the request an id and logs one line when it is answered.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = uuid::Uuid::new_v4().to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.path().to_string();
    let mut res = next.call(req).await?;
    let status = res.status().as_u16();
    if let Ok(v) = header::HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), v);
    }
    let fields = res
        .response()
        .extensions()
        .get::<LogFields>()
        .cloned()
        .unwrap_or_default();
    tracing::info!(
        id = %id,
        method = %method,
        route = %path,
        status,
        preset = fields.preset.unwrap_or("-"),
        error = fields.error_type.unwrap_or("-"),
        worker = fields.worker_pid.unwrap_or(0),
        fetches = fields.fetches.unwrap_or(0),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    Ok(res)
}
