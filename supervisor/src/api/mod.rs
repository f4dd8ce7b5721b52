//! The HTTP API: routes, middleware and the shared state.
//!
//! [`configure`] wires every route of [`routes::ROUTES`]. Requests pass, outermost first: CORS
//! (only when origins are configured) → [`log_request`] (one structured line per request, and
//! the request id) → the route's own authorisation ([`routes::authorise`]: bearer token and
//! rate limit, decided on the route the router chose) → the handler. Errors become answers only in [`error::ApiError`]'s `ResponseError` impl.

pub mod answer;
pub mod auth;
pub mod browser;
pub mod error;
pub mod execute;
pub mod request;
pub mod routes;
#[cfg(feature = "sandbox-selftest")]
mod selftest;
mod status;
pub mod wasm;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use isolate_shared::message::Preset;
use serde_json::json;

use crate::config::Config;
use crate::pool::Pool;
use auth::Auth;

/// State shared by every handler.
pub struct AppState {
    /// The configuration the service started with.
    pub config: Arc<Config>,
    /// The worker pool.
    pub pool: Arc<Pool>,
    /// The egress policy and HTTP client of the `agent` preset's fetch.
    pub egress: Arc<crate::fetch::Egress>,
    /// Token check and rate limit (also app data of its own, which the route guards read).
    pub auth: Arc<Auth>,
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

/// Wires the routes (see [`routes::ROUTES`]) and the answer for paths no route matches.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::register(cfg);
    #[cfg(feature = "sandbox-selftest")]
    cfg.service(
        web::resource("/_selftest")
            .route(web::post().to(selftest::probe))
            .wrap(actix_web::middleware::from_fn(
                |req: ServiceRequest, next: Next<actix_web::body::BoxBody>| {
                    routes::authorise(routes::Access::User, req, next)
                },
            )),
    );
    cfg.default_service(actix_web::dev::fn_service(routes::not_found));
}

/// Presets as listed by `/stats` and in preset errors.
pub fn available_presets() -> Vec<serde_json::Value> {
    Preset::ALL
        .into_iter()
        .map(|p| {
            json!({
                "name": p.name(),
                "description": p.description(),
            })
        })
        .collect()
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
        "typescript": { "stripper": isolate_shared::message::TS_STRIPPER, "typeChecked": false },
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
            "maxAnswerBytes": state.config.answer_bytes(),
        },
    }))
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
