//! Refuses requests a web page makes on a visitor's behalf.
//!
//! A page on another site can send a "simple" cross-site POST (`text/plain`, no preflight) to
//! a service on the visitor's machine, and with DNS rebinding it can even read the answer:
//! the page's own name is made to resolve to 127.0.0.1, so the browser treats the service as
//! same-origin and sends `Host: <the page's name>`. Two checks stop both:
//!
//! * **Host**: IP addresses, `localhost` and `*.localhost` are accepted, plus the names in
//!   `server.allowed_hosts` (a reverse proxy's name). A rebinding page always sends a name of
//!   its own, so it is refused. No `Host` (HTTP/1.0 clients) is accepted.
//! * **Origin**: browsers send it on every cross-origin POST. It is accepted when
//!   `cors.origins` allows it, or when it is the service's own origin (same host and port).
//!   Browser fetch metadata (`Sec-Fetch-Site: cross-site` / `same-site`) without an allowed
//!   `Origin` is refused too.
//!
//! curl and other non-browser clients send neither `Origin` nor `Sec-Fetch-Site`, and a
//! `Host` of the address they connect to: they are not affected.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use super::error::ApiError;
use super::AppState;
use crate::config::Config;

/// The longest `Host` or `Origin` value quoted back in an error answer.
const QUOTE_MAX: usize = 100;

/// The middleware: answers 403 to requests [`check`] refuses.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // `/mcp` makes the same checks itself (`mcp.allowed_hosts`, `cors.origins`) and answers
    // them as JSON-RPC errors, which MCP clients expect. Any other spelling of the path is
    // checked here as well as there.
    let mcp = req.path() == "/mcp" || req.path().starts_with("/mcp/");
    let verdict = match req.app_data::<web::Data<AppState>>() {
        Some(_) if mcp => Ok(()),
        Some(state) => check(state.config(), &req),
        None => Err(ApiError::Internal),
    };
    if let Err(e) = verdict {
        tracing::warn!(reason = %e, "refused a request that a web page may have sent");
        return Ok(req.into_response(e.error_response()).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Checks the `Host`, `Origin` and `Sec-Fetch-Site` headers of a request.
pub fn check(config: &Config, req: &ServiceRequest) -> Result<(), ApiError> {
    let headers = req.headers();
    // HTTP/2 carries the host in the URI's authority instead of a Host header.
    let host = match headers.get(header::HOST) {
        Some(v) => Some(v.to_str().map_err(|_| refuse_host(v.as_bytes()))?),
        None => req.uri().authority().map(|a| a.as_str()),
    };
    if let Some(host) = host {
        if !host_allowed(host, &config.server.allowed_hosts) {
            return Err(refuse_host(host.as_bytes()));
        }
    }
    let origins = &config.cors.origins;
    let any_origin = origins.iter().any(|o| o == "*");
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = any_origin
            || origin.to_str().is_ok_and(|o| {
                origins.iter().any(|a| a == o) || host.is_some_and(|h| same_origin(o, h))
            });
        if !allowed {
            return Err(ApiError::OriginNotAllowed(quote(origin.as_bytes())));
        }
    } else if !any_origin {
        let site = headers
            .get("sec-fetch-site")
            .map(|v| v.as_bytes().to_ascii_lowercase());
        if matches!(site.as_deref(), Some(b"cross-site" | b"same-site")) {
            return Err(ApiError::OriginNotAllowed(
                "(none, but the browser says the request is cross-site)".into(),
            ));
        }
    }
    Ok(())
}

fn refuse_host(host: &[u8]) -> ApiError {
    ApiError::HostNotAllowed(quote(host))
}

/// A header value as text for an error message: lossy UTF-8, at most [`QUOTE_MAX`] chars.
fn quote(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    match text.char_indices().nth(QUOTE_MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.into_owned(),
    }
}

/// Splits `host[:port]` (`[v6]:port` for IPv6) into the name and the port, if any.
fn split_host(value: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = value.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        return match after {
            "" => Some((addr, None)),
            _ => Some((addr, Some(after.strip_prefix(':')?))),
        };
    }
    match value.rsplit_once(':') {
        Some((name, port)) => Some((name, Some(port))),
        None => Some((value, None)),
    }
}

/// Whether a `Host` value names this service: an IP address, a localhost name or an allowed
/// name, with at most a numeric port.
pub fn host_allowed(value: &str, allowed: &[String]) -> bool {
    let Some((name, port)) = split_host(value) else {
        return false;
    };
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() {
        return false;
    }
    name == "localhost"
        || name.ends_with(".localhost")
        || allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(&name))
}

/// Whether `origin` (`scheme://host[:port]`) is the service's own origin, as the `Host` header
/// names it.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let normalise = |v: &str| -> Option<(String, String)> {
        let (name, port) = split_host(v)?;
        Some((
            name.to_ascii_lowercase(),
            port.unwrap_or(default_port).to_string(),
        ))
    };
    match (normalise(authority), normalise(host)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let none: Vec<String> = vec![];
        for ok in [
            "127.0.0.1",
            "127.0.0.1:5900",
            "[::1]:5900",
            "[::1]",
            "localhost",
            "LOCALHOST:80",
            "localhost.",
            "app.localhost:5900",
            "192.168.1.20:5900",
        ] {
            assert!(host_allowed(ok, &none), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:5900",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "localhost:",
            "localhost:59x0",
            "localhost:5900:1",
            "[::1",
            "",
            ":5900",
        ] {
            assert!(!host_allowed(bad, &none), "{bad}");
        }
        let proxy = vec!["sandbox.home.arpa".to_string()];
        assert!(host_allowed("Sandbox.Home.Arpa:443", &proxy));
        assert!(!host_allowed("other.home.arpa", &proxy));
        assert!(host_allowed("anything.example", &["*".to_string()]));
    }

    #[test]
    fn origins() {
        assert!(same_origin("http://localhost:5900", "localhost:5900"));
        assert!(same_origin("http://127.0.0.1", "127.0.0.1:80"));
        assert!(!same_origin("http://localhost:5901", "localhost:5900"));
        assert!(!same_origin("https://localhost:5900", "localhost:80"));
        assert!(!same_origin("null", "localhost:5900"));
        assert!(!same_origin("file://", "localhost"));
    }

    #[test]
    fn quotes_are_bounded() {
        assert_eq!(quote(b"abc"), "abc");
        assert_eq!(quote(&[b'x'; 5000]).chars().count(), QUOTE_MAX + 1);
        assert_eq!(quote(&[0xff, b'a']), "\u{fffd}a");
    }
}
