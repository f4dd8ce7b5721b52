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
mod openapi;
pub mod request;
pub mod routes;
#[cfg(feature = "sandbox-selftest")]
mod selftest;
mod status;
mod ui;
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

/// State shared by every handler. The configuration and the egress policy can be replaced
/// while the service runs ([`AppState::reload`], on SIGHUP); a request keeps the ones it
/// started with.
pub struct AppState {
    config: std::sync::atomic::AtomicPtr<Config>,
    egress: std::sync::RwLock<Arc<crate::fetch::Egress>>,
    /// The worker pool.
    pub pool: Arc<Pool>,
    /// Token check and rate limit (also app data of its own, which the route guards read).
    pub auth: Arc<Auth>,
    /// When the service started.
    pub started: Instant,
    /// Execution counters.
    pub metrics: Metrics,
    /// Compiled WebAssembly modules.
    pub modules: Arc<crate::modules::ModuleStore>,
    /// The pool's worst case against the machine's memory, as found at start-up.
    pub sizing: crate::sizing::Sizing,
}

impl AppState {
    /// The state of a service that starts with `config`.
    pub fn new(
        config: Config,
        pool: Arc<Pool>,
        egress: Arc<crate::fetch::Egress>,
        modules: Arc<crate::modules::ModuleStore>,
        sizing: crate::sizing::Sizing,
    ) -> AppState {
        let auth = Arc::new(Auth::new(&config.auth));
        AppState {
            config: std::sync::atomic::AtomicPtr::new(Box::into_raw(Box::new(config))),
            egress: std::sync::RwLock::new(egress),
            pool,
            auth,
            started: Instant::now(),
            metrics: Metrics::default(),
            modules,
            sizing,
        }
    }

    /// The configuration in force. Each one is kept for the life of the process (a reload
    /// leaks the few kilobytes of the one it replaces), so a request can hold it across
    /// awaits without counting references.
    pub fn config(&self) -> &'static Config {
        // SAFETY: the pointer always comes from `Box::into_raw` and is never freed.
        unsafe { &*self.config.load(Ordering::Acquire) }
    }

    /// The egress policy and HTTP client in force.
    pub fn egress(&self) -> Arc<crate::fetch::Egress> {
        Arc::clone(&self.egress.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts in force what can change without a restart: `auth`, `fetch` (the egress policy),
    /// `limits` and `log.level` of `next`. Any other difference is left as it was and named
    /// in the returned warnings. Fails, changing nothing, when the merged configuration is
    /// invalid or the egress policy cannot be built.
    pub fn reload(&self, next: &Config) -> Result<Vec<String>, String> {
        let current = self.config();
        let mut merged = current.clone();
        merged.auth = next.auth.clone();
        merged.fetch = next.fetch.clone();
        merged.limits = next.limits.clone();
        merged.log.level = next.log.level.clone();
        merged.validate().map_err(|e| e.to_string())?;
        let egress = crate::fetch::Egress::new(&merged.fetch).map_err(|e| e.to_string())?;
        check_key_hosts(&merged, &egress)?;
        let mut warnings = Vec::new();
        let mut kept = next.clone();
        kept.auth = merged.auth.clone();
        kept.fetch = merged.fetch.clone();
        kept.limits = merged.limits.clone();
        kept.log.level = merged.log.level.clone();
        // The file's pool, sized as at start-up, so that a lowered `max_concurrent` is no change.
        let memory = self
            .sizing
            .memory_bytes
            .zip(self.sizing.memory_source.clone());
        crate::sizing::fit(&mut kept, memory);
        let differs =
            |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
        for (section, changed) in [
            ("server", differs(&kept.server, &current.server)),
            ("cors", differs(&kept.cors, &current.cors)),
            ("workers", differs(&kept.workers, &current.workers)),
            ("sandbox", differs(&kept.sandbox, &current.sandbox)),
            ("wasm", differs(&kept.wasm, &current.wasm)),
            ("log.format", kept.log.format != current.log.format),
            ("mcp", differs(&kept.mcp, &current.mcp)),
        ] {
            if changed {
                warnings.push(format!(
                    "{section} changed in the configuration but needs a restart; the running \
                     value is kept"
                ));
            }
        }
        self.auth.replace(&merged.auth);
        *self.egress.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(egress);
        self.config
            .store(Box::into_raw(Box::new(merged)), Ordering::Release);
        Ok(warnings)
    }
}

/// Checks that each key's `fetch_allow` is covered by the service's `fetch.allow`.
pub fn check_key_hosts(config: &Config, egress: &crate::fetch::Egress) -> Result<(), String> {
    for (i, key) in config.auth.keys.iter().enumerate() {
        if let Some(list) = &key.fetch_allow {
            egress
                .narrow(list)
                .map_err(|e| format!("invalid configuration: auth.keys[{i}].fetch_allow: {e}"))?;
        }
    }
    Ok(())
}

/// How many recent executions `/status` lists.
pub const RECENT_EXECUTIONS: usize = 100;

/// One recent execution as `/status` lists it: never its code, `env` or result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recent {
    /// Milliseconds since the Unix epoch when it was answered.
    pub at: u64,
    /// Its execution id (`-` for WebAssembly runs, which have none).
    pub id: String,
    /// The name of the key that ran it (`open` when no key is configured).
    pub key: Arc<str>,
    /// Its preset (`wasm` for WebAssembly).
    pub preset: &'static str,
    /// `ok` or the error type.
    pub outcome: &'static str,
    /// How long its call to the pool took, in milliseconds.
    pub ms: f64,
}

/// Counters of executions by outcome.
#[derive(Default)]
pub struct Metrics {
    /// The last [`RECENT_EXECUTIONS`] executions, oldest first.
    pub recent: Mutex<std::collections::VecDeque<Recent>>,
    /// Executions answered (any outcome).
    pub executions: AtomicU64,
    /// Executions that returned a result.
    pub succeeded: AtomicU64,
    /// Failed executions by error type.
    pub failed: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts one answered execution here and in the exposition of `/metrics`: its engine
    /// (`quickjs` or `wasmtime`), its preset (`wasm` for WebAssembly), its error type if it
    /// failed, and how long its call to the pool took.
    fn record(
        &self,
        execution: (&str, &Arc<str>),
        engine: &'static str,
        preset: &'static str,
        failure: Option<&'static str>,
        took: std::time::Duration,
    ) {
        crate::telemetry::execution(engine, preset, failure.unwrap_or("ok"), took);
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() >= RECENT_EXECUTIONS {
                recent.pop_front();
            }
            recent.push_back(Recent {
                at,
                id: execution.0.to_string(),
                key: Arc::clone(execution.1),
                preset,
                outcome: failure.unwrap_or("ok"),
                ms: took.as_secs_f64() * 1000.0,
            });
        }
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

/// Books an answered execution: in the recent list and the counters of `/status` and
/// `/metrics`, and in its key's ledger (totals, quotas); then writes its audit line (the key's
/// name, the route, the preset, the outcome, the CPU and the time it took; never the secret,
/// the code or `env`). `what` is the execution id, the route, the engine and the preset;
/// `how` its error type (`None`: it succeeded) and how long its call to the pool took.
pub fn settle(
    state: &AppState,
    caller: &auth::Caller,
    (id, route, engine, preset): (&str, &str, &'static str, &'static str),
    (failure, took): (Option<&'static str>, std::time::Duration),
    usage: &auth::Usage,
) {
    state
        .metrics
        .record((id, &caller.name), engine, preset, failure, took);
    state
        .auth
        .settle(caller, failure, usage, std::time::SystemTime::now());
    tracing::info!(
        target: "audit",
        key = %caller.name,
        id = %id,
        route = %route,
        preset = %preset,
        outcome = failure.unwrap_or("ok"),
        cpu_ms = usage.cpu_ms,
        wall_ms = usage.wall_ms,
        fetches = usage.fetches,
        egress_bytes = usage.egress_bytes,
        "execution"
    );
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
                    routes::authorise(routes::Access::Scope(routes::Scope::Execute), req, next)
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
    let limits = &state.config().limits;
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
            "maxBodyBytes": state.config().server.max_body_bytes,
            "maxAnswerBytes": state.config().answer_bytes(),
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
    crate::telemetry::request(res.request().match_pattern().as_deref(), &method, status);
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
