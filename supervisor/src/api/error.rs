//! Every request-level error and the one place where each becomes an HTTP answer.
//!
//! Execution failures (the code threw, timed out, …) are not errors here: they are answers of
//! `/execute` with status 422, built in [`super::execute`]. This enum covers what stops a request
//! before or around execution.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use isolate_shared::message::ErrorKind;
use serde_json::json;

/// A request that cannot be served as asked.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON.
    #[error("Invalid JSON body")]
    InvalidJson,
    /// The body is JSON but not an object.
    #[error("The request body must be a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("Missing \"{0}\" field")]
    MissingField(&'static str),
    /// A field has the wrong type or value.
    #[error("Invalid \"{field}\" field: {problem}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// No such preset.
    #[error("Unknown preset \"{0}\"")]
    UnknownPreset(String),
    /// A `/deno` permission that is never granted.
    #[error(
        "Permission \"{0}\" is never granted: code runs in a sandbox without files, \
         processes, environment, FFI or system information; the only permission is \"net\" \
         (fetch through the egress policy)"
    )]
    PermissionRefused(String),
    /// The body exceeds the configured limit.
    #[error("Request body exceeds the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// The body could not be read.
    #[error("Cannot read the request body")]
    BadBody,
    /// The body did not arrive within `server.body_timeout_ms`.
    #[error("The request body did not arrive within {0} ms")]
    BodyTimeout(u64),
    /// The `Host` header names neither this machine nor an allowed name.
    #[error(
        "Host {0:?} is not allowed: use an IP address or localhost, or add the name to \
         server.allowed_hosts"
    )]
    HostNotAllowed(String),
    /// The request comes from a web page whose origin is not allowed.
    #[error(
        "Origin {0} is not allowed: browsers may call the API only from the origins in \
         cors.origins"
    )]
    OriginNotAllowed(String),
    /// No bearer token.
    #[error("Missing bearer token")]
    Unauthorized,
    /// Wrong bearer token.
    #[error("Invalid bearer token")]
    Forbidden,
    /// The key may not use this route family.
    #[error("This key lacks the \"{0}\" scope this route needs")]
    ScopeDenied(&'static str),
    /// The request asks for more than the key's policy allows (a preset, a timeout, a host).
    #[error("This key's policy does not allow it: {0}")]
    PolicyDenied(String),
    /// A daily quota of the key is used up.
    #[error("This key's daily quota {name} is used up")]
    QuotaExceeded {
        /// `executions_per_day` or `cpu_ms_per_day`.
        name: &'static str,
        /// The quota.
        limit: u64,
        /// What the key used today.
        used: u64,
        /// When the quota starts again (the next midnight UTC), ISO 8601.
        resets_at: String,
        /// Seconds until then.
        retry_after: u64,
    },
    /// Over the per-key rate limit.
    #[error("Rate limit exceeded")]
    RateLimited {
        /// Seconds until a request will be accepted again.
        retry_after: u64,
    },
    /// No route at this path.
    #[error("Not found")]
    NotFound {
        /// The routes there are, listed in the answer.
        endpoints: Vec<String>,
    },
    /// The path exists with another method.
    #[error("Method not allowed")]
    MethodNotAllowed {
        /// The method the path answers (the `Allow` header).
        allow: &'static str,
        /// The routes there are, listed in the answer.
        endpoints: Vec<String>,
    },
    /// `file` names something outside the module directory, or files are disabled.
    #[error("{0}")]
    FileForbidden(&'static str),
    /// `file` names no readable file in the module directory.
    #[error("Module file not found in the module directory")]
    FileNotFound,
    /// The module exceeds `wasm.max_module_bytes`.
    #[error("The module exceeds the limit of {0} bytes")]
    ModuleTooLarge(usize),
    /// The pool is full.
    #[error("All workers are busy; retry shortly")]
    Busy,
    /// The service failed.
    #[error("Internal error")]
    Internal,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson
            | ApiError::NotAnObject
            | ApiError::MissingField(_)
            | ApiError::InvalidField { .. }
            | ApiError::UnknownPreset(_)
            | ApiError::PermissionRefused(_)
            | ApiError::BadBody => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) | ApiError::ModuleTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::FileForbidden(_)
            | ApiError::HostNotAllowed(_)
            | ApiError::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::FileNotFound => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::ScopeDenied(_) | ApiError::PolicyDenied(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::RateLimited { .. } | ApiError::QuotaExceeded { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        let message = self.to_string();
        let body = match self {
            ApiError::UnknownPreset(_) => json!({
                "error": message,
                "presets": super::available_presets(),
            }),
            ApiError::Unauthorized => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
                json!({ "error": message })
            }
            ApiError::RateLimited { retry_after } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
                json!({ "error": message, "retryAfter": retry_after })
            }
            ApiError::ScopeDenied(scope) => json!({ "error": message, "scope": scope }),
            ApiError::QuotaExceeded {
                name,
                limit,
                used,
                resets_at,
                retry_after,
            } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
                json!({
                    "error": message,
                    "quota": { "name": name, "limit": limit, "used": used, "resetsAt": resets_at },
                })
            }
            ApiError::NotFound { endpoints } => json!({ "error": message, "endpoints": endpoints }),
            ApiError::MethodNotAllowed { allow, endpoints } => {
                res.insert_header((header::ALLOW, *allow));
                json!({ "error": message, "endpoints": endpoints })
            }
            ApiError::Busy => {
                res.insert_header((header::RETRY_AFTER, "1"));
                json!({
                    "success": false,
                    "error": { "type": "BUSY", "message": message, "name": "BusyError" },
                })
            }
            _ => json!({ "error": message }),
        };
        res.json(body)
    }
}

/// The HTTP status of a failed execution: 500 when the service failed, 422 when the code did.
pub fn failure_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// What an execution runs, for the wording of [`pool_failure`]'s messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// JavaScript or TypeScript (`/execute`, `/deno`).
    Code,
    /// A WebAssembly module (`/wasm/run`).
    Module,
}

impl Subject {
    fn run(self) -> &'static str {
        match self {
            Subject::Code => "execution",
            Subject::Module => "the run",
        }
    }

    fn actor(self) -> &'static str {
        match self {
            Subject::Code => "the code",
            Subject::Module => "the run",
        }
    }

    fn thing(self) -> &'static str {
        match self {
            Subject::Code => "code",
            Subject::Module => "module",
        }
    }
}

/// What a pool error means to the client of an execution (`/execute`, `/deno`, `/wasm/run`):
/// the error `type`, its `name` and a message. `Busy` and shutting down are not execution
/// failures but a 503 ([`ApiError::Busy`]). Every route maps pool errors through this one
/// function, so the same failure reads the same everywhere.
pub fn pool_failure(
    e: &crate::pool::PoolError,
    timeout_ms: u64,
    subject: Subject,
) -> Result<(ErrorKind, &'static str, String), ApiError> {
    use crate::pool::PoolError;
    Ok(match e {
        PoolError::Busy(_) | PoolError::ShuttingDown => return Err(ApiError::Busy),
        PoolError::Deadline { .. } => (
            ErrorKind::Timeout,
            "TimeoutError",
            format!(
                "{} exceeded the timeout of {timeout_ms} ms; the worker was stopped",
                subject.run()
            ),
        ),
        PoolError::Violation(nr) => (
            ErrorKind::Security,
            "SecurityError",
            format!(
                "{} attempted a forbidden system call ({}); its worker was stopped",
                subject.actor(),
                crate::pool::syscall_name(*nr)
            ),
        ),
        PoolError::HostCall => (
            ErrorKind::Security,
            "SecurityError",
            "the worker made a host call this execution does not allow; it was stopped".into(),
        ),
        PoolError::Crashed(_) => (
            ErrorKind::WorkerCrashed,
            "WorkerCrashedError",
            format!(
                "the worker process running this {} died unexpectedly",
                subject.thing()
            ),
        ),
        PoolError::TooLarge(len, max) => (
            ErrorKind::OutputLimit,
            "RangeError",
            format!(
                "the answer would be {len} bytes, more than the bound of {max} bytes \
                 (limits.max_result_bytes and limits.max_log_bytes set it); the worker was stopped"
            ),
        ),
        other => {
            tracing::error!(error = %other, "cannot run an execution");
            (
                ErrorKind::Internal,
                "InternalError",
                format!("the service could not run this {}", subject.thing()),
            )
        }
    })
}
