//! Streamable HTTP at `/mcp`: rmcp's `StreamableHttpService`, mounted in actix-web by
//! `rmcp-actix-web`, behind a guard of our own.
//!
//! The service's middleware (bearer token, rate limit, request log) covers `/mcp` like every
//! route. The guard then, before rmcp sees a request:
//! * refuses an `Origin` the CORS settings do not allow (browser pages cannot drive it);
//! * reads a POST body within the MCP message limit and a time bound, and answers a body that
//!   is too large, not JSON, or a JSON-RPC batch with a JSON-RPC error (rmcp answers these with
//!   plain text);
//! * refuses a new session beyond `mcp.max_sessions`.
//!
//! After rmcp, it turns rmcp's plain-text refusals (unknown session, wrong `Accept` or
//! `Content-Type`, a `Host` outside the allowed list) into JSON-RPC error bodies with the same
//! status, so that every answer of `/mcp` is JSON-RPC or an event stream.

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpMessage, HttpResponse};
use futures_util::StreamExt;
use rmcp::model::{ErrorCode, ErrorData, RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp_actix_web::transport::StreamableHttpService;

use super::stdio::id_from_prefix;
use super::tools::Catalog;
use super::McpServer;
use crate::api::auth::Caller;
use crate::api::AppState;

/// The longest a client may take to send one POST body to `/mcp`.
/// rmcp's plain-text refusals are short; anything longer is not one of them.
const REFUSAL_BYTES: usize = 4096;

/// `/mcp` over streamable HTTP, shared by every actix worker (sessions live in one manager).
#[derive(Clone)]
pub struct HttpTransport {
    service: Option<StreamableHttpService<McpServer, LocalSessionManager>>,
    guard: web::Data<Guard>,
}

struct Guard {
    sessions: Arc<LocalSessionManager>,
    max_sessions: usize,
    limit: usize,
    /// `server.body_timeout_ms`.
    body_timeout: Duration,
    origins: Vec<String>,
}

impl HttpTransport {
    /// The transport over the shared state; serves nothing when `mcp.enabled` is false.
    pub fn new(state: &web::Data<AppState>) -> HttpTransport {
        let config = state.config();
        let sessions = Arc::new(LocalSessionManager::default());
        let guard = web::Data::new(Guard {
            sessions: Arc::clone(&sessions),
            max_sessions: config.mcp.max_sessions,
            limit: super::message_limit(config),
            body_timeout: Duration::from_millis(config.server.body_timeout_ms),
            origins: config.cors.origins.clone(),
        });
        if !config.mcp.enabled {
            return HttpTransport {
                service: None,
                guard,
            };
        }
        let catalog = Arc::new(Catalog::new(config));
        let factory_state = state.clone();
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(String::from)
            .collect();
        if !matches!(config.server.host.as_str(), "0.0.0.0" | "::") {
            hosts.push(config.server.host.clone());
        }
        hosts.extend(config.mcp.allowed_hosts.iter().cloned());
        let any_host = config.mcp.allowed_hosts.iter().any(|h| h == "*");
        let service = StreamableHttpService::builder()
            .service_factory(Arc::new(move || {
                Ok(McpServer::new(
                    factory_state.clone(),
                    Arc::clone(&catalog),
                    None,
                ))
            }))
            .session_manager(sessions)
            .stateful_mode(true)
            .max_request_body_bytes(super::message_limit(config))
            .allowed_hosts(if any_host { Vec::new() } else { hosts })
            .sse_keep_alive(Duration::from_secs(15))
            // Each call runs under the key its request was authorised with.
            .on_request(Arc::new(
                |req: &actix_web::HttpRequest, ext: &mut rmcp::model::Extensions| {
                    if let Some(caller) = req.extensions().get::<Caller>() {
                        ext.insert(Arc::clone(caller));
                    }
                },
            ))
            .build();
        HttpTransport {
            service: Some(service),
            guard,
        }
    }

    /// Adds `/mcp` to an app (nothing when MCP over HTTP is disabled).
    pub fn mount(&self, cfg: &mut web::ServiceConfig) {
        let Some(service) = &self.service else {
            return;
        };
        cfg.service(
            web::scope("/mcp")
                .app_data(self.guard.clone())
                .wrap(from_fn(guard))
                // Outermost: the user token, decided on the scope the router chose.
                .wrap(from_fn(
                    |req: ServiceRequest, next: Next<actix_web::body::BoxBody>| {
                        let access =
                            crate::api::routes::Access::Scope(crate::api::routes::Scope::Mcp);
                        crate::api::routes::authorise(access, req, next)
                    },
                ))
                .service(service.clone().scope()),
        );
    }
}

/// A JSON-RPC error answer with no id (or the request's, when known) and the given status.
fn refusal(
    status: StatusCode,
    code: ErrorCode,
    message: String,
    id: Option<RequestId>,
) -> HttpResponse {
    let body = ServerJsonRpcMessage::error(ErrorData::new(code, message, None), id);
    let mut res = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.insert_header((header::RETRY_AFTER, "1"));
    }
    res.json(body)
}

/// The JSON-RPC code for one of rmcp's plain-text refusals.
fn code_for(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        // The code other SDKs use for an unknown or expired session.
        404 => ErrorCode(-32001),
        s if s >= 500 => ErrorCode::INTERNAL_ERROR,
        _ => ErrorCode::INVALID_REQUEST,
    }
}

fn origin_allowed(guard: &Guard, origin: &[u8]) -> bool {
    guard
        .origins
        .iter()
        .any(|o| o == "*" || o.as_bytes().eq_ignore_ascii_case(origin))
}

/// Reads the whole body within the limit and `server.body_timeout_ms`; `Err` is the answer.
async fn read_body(
    req: &mut ServiceRequest,
    limit: usize,
    timeout: Duration,
) -> Result<web::Bytes, HttpResponse> {
    let too_large = |id| {
        refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::INVALID_REQUEST,
            format!("the message is more than the limit of {limit} bytes"),
            id,
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(None));
    }
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| {
                refusal(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::INVALID_REQUEST,
                    "cannot read the request body".into(),
                    None,
                )
            })?;
            if body.len() + chunk.len() > limit {
                return Err(too_large(id_from_prefix(&body[..body.len().min(4096)])));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(())) => Ok(body.freeze()),
        Ok(Err(answer)) => Err(answer),
        Err(_) => Err(refusal(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::INVALID_REQUEST,
            format!(
                "the request body did not arrive within {} ms",
                timeout.as_millis()
            ),
            None,
        )),
    }
}

/// Refuses a body that is not one JSON-RPC message: invalid JSON (`-32700`) or a batch.
// The error is the whole answer, built at most once per refused request.
#[allow(clippy::result_large_err)]
fn check_message(body: &[u8]) -> Result<(), HttpResponse> {
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            ErrorCode::PARSE_ERROR,
            format!("Parse error: {e}"),
            None,
        ));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            "JSON-RPC batches are not supported (MCP removed them in protocol 2025-06-18): \
             send one message per request"
                .into(),
            None,
        ));
    }
    Ok(())
}

async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(guard) = req.app_data::<web::Data<Guard>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        if !origin_allowed(&guard, origin.as_bytes()) {
            let answer = refusal(
                StatusCode::FORBIDDEN,
                ErrorCode::INVALID_REQUEST,
                "requests from this Origin are not allowed (see cors.origins)".into(),
                None,
            );
            return Ok(req.into_response(answer));
        }
    }
    if req.method() == Method::POST {
        if !req.headers().contains_key("mcp-session-id")
            && guard.sessions.sessions.read().await.len() >= guard.max_sessions
        {
            let answer = refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::INTERNAL_ERROR,
                format!(
                    "the server holds the most MCP sessions it allows ({}); close one or retry later",
                    guard.max_sessions
                ),
                None,
            );
            return Ok(req.into_response(answer));
        }
        let body = match read_body(&mut req, guard.limit, guard.body_timeout).await {
            Ok(body) => body,
            Err(answer) => return Ok(req.into_response(answer)),
        };
        if let Err(answer) = check_message(&body) {
            return Ok(req.into_response(answer));
        }
        req.set_payload(actix_web::dev::Payload::from(body));
    }
    let res = next.call(req).await?;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return Ok(res.map_into_boxed_body());
    }
    // One of rmcp's plain-text refusals: the same status, as a JSON-RPC error.
    let (req, response) = res.into_parts();
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = match actix_web::body::to_bytes_limited(response.into_body(), REFUSAL_BYTES).await {
        Ok(Ok(bytes)) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status.canonical_reason().unwrap_or("refused").to_string(),
    };
    // rmcp answers a JSON body that is no JSON-RPC message (`"jsonrpc": "1.0"`, an object as
    // id, params of the wrong type for the message kind) with 415; it is a bad request.
    let status = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE
        && text.starts_with("fail to deserialize")
    {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    let mut answer = refusal(status, code_for(status), text, None);
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    Ok(ServiceResponse::new(req, answer))
}
