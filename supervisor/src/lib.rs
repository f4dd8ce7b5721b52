//! isolate-service's supervisor: the HTTP service that owns the worker pool.
//!
//! * [`config`]: the typed configuration and its layers (defaults, TOML, environment).
//! * [`pool`]: the zygote manager and the pool of sandboxed workers.
//! * [`fetch`]: the `agent` preset's fetch, performed here under the egress policy.
//! * [`api`]: routes, middleware and the mapping of errors to HTTP answers.
//! * [`mcp`]: the Model Context Protocol server (streamable HTTP at `/mcp`, and stdio).
//! * [`client`]: `isolate-service run`, a command-line client of a running service.
//!
//! **Invariant:** the supervisor never runs or parses user code; every piece of it goes to a
//! worker process.

pub mod api;
pub mod client;
pub mod config;
pub mod fetch;
pub mod mcp;
pub mod modules;
pub mod pool;
pub mod procfs;

use std::sync::Arc;
use std::time::Instant;

use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};

use api::{auth::Auth, AppState};
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
pub fn start_state(config: Config) -> Result<web::Data<AppState>, ServeError> {
    let config = Arc::new(config);
    let egress = Arc::new(fetch::Egress::new(&config.fetch)?);
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
    Ok(web::Data::new(AppState {
        config: Arc::clone(&config),
        pool,
        egress,
        auth: Arc::new(Auth::new(
            config.auth.token.as_deref(),
            config.auth.admin_token.as_deref(),
            config.auth.rate_limit_per_minute,
        )),
        started: Instant::now(),
        metrics: Default::default(),
        modules,
    }))
}

/// Starts the pool and serves HTTP until SIGINT/SIGTERM, then stops every worker.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let state = start_state(config)?;
    let config = Arc::clone(&state.config);
    let pool = Arc::clone(&state.pool);
    if !state.auth.enabled() {
        tracing::warn!("no auth token is set: any client that can reach the port can run code");
    }
    let origins = config.cors.origins.clone();
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let threads = config
        .server
        .http_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get().min(4)));
    let mcp_http = mcp::HttpTransport::new(&state);
    let write_timeout = std::time::Duration::from_millis(config.server.write_timeout_ms);
    let server = HttpServer::new(move || {
        let cors = build_cors(&origins);
        App::new()
            .app_data(state.clone())
            .app_data(web::Data::from(Arc::clone(&state.auth)))
            .configure(|cfg| mcp_http.mount(cfg))
            .configure(api::configure)
            .wrap(from_fn(api::browser::guard))
            .wrap(from_fn(api::log_request))
            .wrap(Condition::new(!origins.is_empty(), cors))
    })
    .workers(threads)
    .on_connect(move |conn, _| set_write_timeout(conn, write_timeout))
    .shutdown_timeout(5)
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
    let result = server
        .run()
        .await
        .map_err(|source| ServeError::Listen { addr, source });
    tracing::info!("shutting down: stopping the zygote and every worker");
    pool.shutdown();
    result
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
