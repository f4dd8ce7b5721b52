//! Reading and checking request bodies: size limit, JSON, and typed fields with named errors.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::config::LimitsConfig;
use isolate_shared::message::{Language, Preset};

/// A JSON object body.
pub type Body = Map<String, Value>;

/// Reads the body, refusing more than `limit` bytes (413) before buffering them, and a body
/// that takes longer than `server.body_timeout_ms` to arrive (408).
pub async fn read_object(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Body, ApiError> {
    let body = read_bytes(req, payload, limit).await?;
    parse_object(&body)
}

/// Reads the whole body within `limit` bytes and `server.body_timeout_ms`.
pub async fn read_bytes(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let timeout_ms = req
        .app_data::<web::Data<super::AppState>>()
        .map_or(30_000, |s| s.config().server.body_timeout_ms);
    tokio::time::timeout(
        std::time::Duration::from_millis(timeout_ms),
        read_within(req, payload, limit),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout(timeout_ms))?
}

async fn read_within(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::BadBody)?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses a complete body as a JSON object.
pub fn parse_object(body: &[u8]) -> Result<Body, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::NotAnObject),
        Err(_) => Err(ApiError::InvalidJson),
    }
}

/// `code`: a non-empty string (required).
pub fn code(body: &Body) -> Result<&str, ApiError> {
    match body.get("code") {
        None | Some(Value::Null) => Err(ApiError::MissingField("code")),
        Some(Value::String(s)) if s.is_empty() => Err(ApiError::MissingField("code")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::InvalidField {
            field: "code",
            problem: "must be a string".into(),
        }),
    }
}

/// `preset`: one of the preset names; default `compute`.
pub fn preset(body: &Body) -> Result<Preset, ApiError> {
    match body.get("preset") {
        None | Some(Value::Null) => Ok(Preset::Compute),
        Some(Value::String(s)) => {
            Preset::from_name(s).ok_or_else(|| ApiError::UnknownPreset(s.clone()))
        }
        Some(_) => Err(ApiError::InvalidField {
            field: "preset",
            problem: "must be a string".into(),
        }),
    }
}

/// `env`: an object, passed on as JSON text; absent or null gives `{}` in the sandbox.
pub fn env(body: &Body) -> Result<Option<String>, ApiError> {
    match body.get("env") {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => serde_json::to_string(v)
            .map(Some)
            .map_err(|_| ApiError::Internal),
        Some(_) => Err(ApiError::InvalidField {
            field: "env",
            problem: "must be an object".into(),
        }),
    }
}

/// `timeout`: a positive number of milliseconds, capped at the configured maximum.
pub fn timeout(body: &Body, limits: &LimitsConfig) -> Result<u64, ApiError> {
    timeout_within(body, limits.default_timeout_ms, limits.max_timeout_ms)
}

/// `timeout` of `/deno`: the same rules with the `/deno` default and maximum.
pub fn deno_timeout(body: &Body, limits: &LimitsConfig) -> Result<u64, ApiError> {
    timeout_within(
        body,
        limits.deno_default_timeout_ms,
        limits.deno_max_timeout_ms,
    )
}

/// Whether the body names a `timeout` of its own (rather than taking the route's default).
pub fn asks_timeout(body: &Body) -> bool {
    body.get("timeout").is_some_and(|v| !v.is_null())
}

fn timeout_within(body: &Body, default_ms: u64, max_ms: u64) -> Result<u64, ApiError> {
    match body.get("timeout") {
        None | Some(Value::Null) => Ok(default_ms),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(ms) if ms.is_finite() && ms >= 1.0 => Ok((ms as u64).min(max_ms)),
            _ => Err(ApiError::InvalidField {
                field: "timeout",
                problem: "must be at least 1 (milliseconds)".into(),
            }),
        },
        Some(_) => Err(ApiError::InvalidField {
            field: "timeout",
            problem: "must be a number of milliseconds".into(),
        }),
    }
}

/// `language`: `javascript` (alias `js`, the default) or `typescript` (alias `ts`).
pub fn language(body: &Body) -> Result<Language, ApiError> {
    match body.get("language") {
        None | Some(Value::Null) => Ok(Language::JavaScript),
        Some(Value::String(s)) => match s.as_str() {
            "javascript" | "js" => Ok(Language::JavaScript),
            "typescript" | "ts" => Ok(Language::TypeScript),
            _ => Err(ApiError::InvalidField {
                field: "language",
                problem: format!(
                    "\"{s}\" is not supported (supported: \"javascript\", \"typescript\")"
                ),
            }),
        },
        Some(_) => Err(ApiError::InvalidField {
            field: "language",
            problem: "must be a string".into(),
        }),
    }
}

/// `fetch`: `{"allow": ["host", …]}`, the hosts an `agent` execution may fetch from, which
/// must each be covered by the configured allowlist (a request narrows it, never widens it).
/// Absent or null: the configured allowlist. Returns the requested entries, unchecked.
pub fn fetch_allow(body: &Body) -> Result<Option<Vec<String>>, ApiError> {
    let invalid = |problem: &str| ApiError::InvalidField {
        field: "fetch",
        problem: problem.into(),
    };
    let fetch = match body.get("fetch") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(invalid(
                "must be an object like {\"allow\": [\"api.example.com\"]}",
            ))
        }
    };
    if let Some(key) = fetch.keys().find(|k| k.as_str() != "allow") {
        return Err(invalid(&format!(
            "has an unknown key {key:?} (known: \"allow\")"
        )));
    }
    match fetch.get("allow") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(invalid("allow must be an array of host names")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid("allow must be an array of host names")),
    }
}

/// `data` of `/deno`: any JSON value, passed on as JSON text; absent gives `null`.
pub fn data(body: &Body) -> Result<String, ApiError> {
    match body.get("data") {
        None => Ok("null".into()),
        Some(v) => serde_json::to_string(v).map_err(|_| ApiError::Internal),
    }
}

/// The only permission `/deno` grants: network access through `fetch` (the `agent` preset).
pub const PERMISSION_NET: &str = "net";

/// `permissions` of `/deno`: an array of strings. Returns whether `net` was asked for; every
/// other permission is refused, because nothing in the sandbox can grant it.
pub fn permissions(body: &Body) -> Result<bool, ApiError> {
    let list = match body.get("permissions") {
        None | Some(Value::Null) => return Ok(false),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(ApiError::InvalidField {
                field: "permissions",
                problem: "must be an array of strings".into(),
            })
        }
    };
    let mut net = false;
    for entry in list {
        match entry {
            Value::String(p) if p == PERMISSION_NET => net = true,
            Value::String(p) => return Err(ApiError::PermissionRefused(p.clone())),
            _ => {
                return Err(ApiError::InvalidField {
                    field: "permissions",
                    problem: "must be an array of strings".into(),
                })
            }
        }
    }
    Ok(net)
}
