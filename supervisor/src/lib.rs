//! isolate-service's supervisor: the HTTP service that owns the worker pool.
//!
//! * [`config`]: the typed configuration and its layers (defaults, TOML, environment).
//! * [`pool`]: the zygote manager and the pool of sandboxed workers.
//! * [`fetch`]: the `agent` preset's fetch, performed here under the egress policy.
//! * [`api`]: routes, middleware and the mapping of errors to HTTP answers.
//! * [`mcp`]: the Model Context Protocol server (streamable HTTP at `/mcp`, and stdio).
//! * [`lifecycle`]: systemd notifications, and reaping every process of ours on a stop.
//! * [`telemetry`]: what `GET /metrics` exposes to Prometheus.
//! * [`client`]: `isolate-service run`, a command-line client of a running service.
//!
//! **Invariant:** the supervisor never runs or parses user code; every piece of it goes to a
//! worker process.

pub mod api;
pub mod client;
pub mod config;
pub mod fetch;
pub mod lifecycle;
pub mod mcp;
pub mod modules;
pub mod pool;
pub mod procfs;
pub mod sizing;
pub mod telemetry;

use std::sync::Arc;
use std::time::Instant;

use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};

use api::AppState;
use config::Config;
use pool::{Pool, PoolError};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The worker pool could not start.
    #[error("cannot start the worker pool: {0}")]
    Pool(#[from] PoolError),
    /// The fetch policy or its HTTP client could not be set up.
    #[error("cannot set up fetch: {0}")]
    Egress(#[from] fetch::EgressError),
    /// A key's policy does not fit the rest of the configuration.
    #[error("{0}")]
    Keys(String),
    /// The module store's directory could not be used.
    #[error("cannot open the module store: {0}")]
    Store(#[from] modules::StoreError),
    /// The MCP session on stdio could not start (the client did not initialize it).
    #[error("cannot start the MCP session: {0}")]
    Mcp(String),
    /// The listener could not be bound or the server failed.
    #[error("cannot serve on {addr}: {source}")]
    Listen {
        /// host:port
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Starts what the routes share, all but the listener: the fetch policy, the module store
/// and the worker pool (with its zygote). The HTTP server and the MCP stdio server use it.
pub fn start_state(mut config: Config) -> Result<web::Data<AppState>, ServeError> {
    telemetry::install();
    let sizing = sizing::fit(&mut config, sizing::machine_memory());
    sizing::log(&sizing);
    let config = Arc::new(config);
    let egress = Arc::new(fetch::Egress::new(&config.fetch)?);
    api::check_key_hosts(&config, &egress).map_err(ServeError::Keys)?;
    let modules = Arc::new(modules::ModuleStore::open(
        config.wasm.cache_dir.as_deref(),
        config.wasm.max_modules,
        config.wasm.max_store_bytes,
    )?);
    let pool = Pool::start(
        config.workers.clone(),
        config.sandbox.clone(),
        config.worker_frame_bytes(),
    )?;
    let config = Arc::unwrap_or_clone(config);
    Ok(web::Data::new(AppState::new(
        config, pool, egress, modules, sizing,
    )))
}

/// How the service reloads its configuration on SIGHUP.
pub struct Reloader {
    /// Loads the configuration again as at start-up (the file and the environment), with
    /// its warnings.
    #[allow(clippy::type_complexity)]
    pub load: Box<dyn Fn() -> Result<(Config, Vec<String>), config::ConfigError> + Send + Sync>,
    /// Puts a new log level (or filter) in force.
    #[allow(clippy::type_complexity)]
    pub set_log_level: Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>,
}

/// Starts the pool and serves HTTP until SIGINT/SIGTERM, then stops every worker; SIGHUP
/// only logs that this server cannot reload (see [`serve_with`]).
pub async fn serve(config: Config) -> Result<(), ServeError> {
    serve_with(config, None).await
}

/// Starts the pool and serves HTTP. SIGTERM and SIGINT stop accepting connections, give the
/// requests in flight up to `server.shutdown_timeout_ms`, then stop the zygote and every worker
/// and wait until each is gone. SIGHUP reloads what `reloader` loads (see
/// [`AppState::reload`]). With `NOTIFY_SOCKET` set, systemd hears `READY=1` once the pool is
/// warm, `RELOADING=1` and `READY=1` around a reload, and `STOPPING=1` on a stop.
pub async fn serve_with(config: Config, reloader: Option<Reloader>) -> Result<(), ServeError> {
    lifecycle::become_subreaper();
    let state = start_state(config)?;
    let config = state.config();
    let pool = Arc::clone(&state.pool);
    if !state.auth.enabled() {
        tracing::warn!(
            "no auth token or key is set: any client that can reach the port can run code"
        );
    }
    let origins = config.cors.origins.clone();
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let threads = config
        .server
        .http_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get().min(4)));
    let mcp_http = mcp::HttpTransport::new(&state);
    let write_timeout = std::time::Duration::from_millis(config.server.write_timeout_ms);
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        let cors = build_cors(&origins);
        App::new()
            .app_data(app_state.clone())
            .app_data(web::Data::from(Arc::clone(&app_state.auth)))
            .configure(|cfg| mcp_http.mount(cfg))
            .configure(api::configure)
            .wrap(from_fn(api::browser::guard))
            .wrap(from_fn(api::log_request))
            .wrap(Condition::new(!origins.is_empty(), cors))
    })
    .workers(threads)
    .disable_signals()
    .on_connect(move |conn, _| set_write_timeout(conn, write_timeout))
    .shutdown_timeout(config.server.shutdown_timeout_secs())
    .bind((config.server.host.as_str(), config.server.port))
    .map_err(|source| ServeError::Listen {
        addr: addr.clone(),
        source,
    })?;
    for a in server.addrs() {
        // Tests and scripts read this line to learn the port when `port = 0`.
        println!("isolate-service listening on http://{a}");
        tracing::info!(address = %a, "listening");
    }
    let server = server.run();
    actix_web::rt::spawn(announce_ready(
        Arc::clone(&pool),
        config.workers.prewarm,
        std::time::Duration::from_millis(config.workers.spawn_timeout_ms),
    ));
    actix_web::rt::spawn(handle_signals(server.handle(), state, reloader));
    let result = server
        .await
        .map_err(|source| ServeError::Listen { addr, source });
    tracing::info!("stopping the zygote and every worker");
    pool.shutdown();
    tracing::info!("stopped");
    result
}

/// Sends `READY=1` once the pool holds `prewarm` idle workers (or `bound` has passed).
async fn announce_ready(pool: Arc<Pool>, prewarm: usize, bound: std::time::Duration) {
    let deadline = Instant::now() + bound;
    while pool.snapshot().idle < prewarm && Instant::now() < deadline {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let idle = pool.snapshot().idle;
    if idle < prewarm {
        tracing::warn!(
            idle,
            prewarm,
            "the pool is not warm yet; announcing readiness anyway"
        );
    }
    tracing::info!(idle, "ready");
    lifecycle::notify(&format!("READY=1\nSTATUS=serving with {idle} idle workers"));
}

/// Waits for SIGTERM, SIGINT (stop) and SIGHUP (reload).
async fn handle_signals(
    server: actix_web::dev::ServerHandle,
    state: web::Data<AppState>,
    reloader: Option<Reloader>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install the signal handlers; stopping");
        server.stop(false).await;
        return;
    };
    let mut stopping = false;
    loop {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => {
                reload(&state, reloader.as_ref());
                continue;
            }
        };
        if stopping {
            tracing::info!(signal = name, "already stopping");
            continue;
        }
        stopping = true;
        lifecycle::notify("STOPPING=1");
        tracing::info!(
            signal = name,
            grace_ms = state.config().server.shutdown_timeout_ms,
            "stopping: no new connections; requests in flight may finish"
        );
        let handle = server.clone();
        actix_web::rt::spawn(async move { handle.stop(true).await });
    }
}

/// SIGHUP: loads the configuration again and puts in force what can change while serving.
fn reload(state: &AppState, reloader: Option<&Reloader>) {
    let Some(reloader) = reloader else {
        tracing::warn!("SIGHUP: this server was started without a way to reload; ignored");
        return;
    };
    lifecycle::notify(&format!(
        "RELOADING=1\nMONOTONIC_USEC={}",
        lifecycle::monotonic_usec()
    ));
    match (reloader.load)() {
        Ok((next, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            match state.reload(&next) {
                Ok(kept) => {
                    if let Err(e) = (reloader.set_log_level)(&state.config().log.level) {
                        tracing::warn!(error = %e, "cannot change the log level");
                    }
                    for w in kept {
                        tracing::warn!("{w}");
                    }
                    tracing::info!("configuration reloaded: auth, fetch, limits and log.level");
                }
                Err(e) => tracing::error!("reload refused, the running configuration is kept: {e}"),
            }
        }
        Err(e) => tracing::error!("reload refused, the running configuration is kept: {e}"),
    }
    lifecycle::notify("READY=1");
}

/// The write timeout: a connection whose answer makes no progress at all (the client reads
/// nothing, its receive window stays shut) for `timeout` is closed by the kernel
/// (`TCP_USER_TIMEOUT`, which also bounds unacknowledged data), and actix drops the answer.
fn set_write_timeout(conn: &dyn std::any::Any, timeout: std::time::Duration) {
    let Some(stream) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(timeout)) {
        tracing::warn!(error = %e, "cannot set the write timeout (TCP_USER_TIMEOUT) on a connection");
    }
}

fn build_cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        .max_age(600);
    for o in origins {
        cors = if o == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(o)
        };
    }
    cors
}
