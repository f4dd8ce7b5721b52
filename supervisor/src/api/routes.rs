//! The route table: every route's method, path, handler and who may call it, in one place.
//!
//! Authorisation is attached to each route as a route-level middleware, so it is decided on
//! exactly what the router routes: `/%73tatus` reaches the `/status` handler only through the
//! `/status` route and its `admin` scope check, whatever the spelling of the path. Paths no
//! route matches are answered 404 by [`not_found`], which asks for a valid key itself; a
//! route's path with another method is answered 405 after that route's own check. The key a
//! request is authorised with goes into its extensions as a [`Caller`].

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{fn_service, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpMessage, ResponseError, Route};

pub use super::auth::{Access, Scope};
use super::auth::{Auth, Caller};
use super::error::ApiError;
use super::{execute, openapi, status, ui, wasm};

/// One route of the API.
pub struct RouteSpec {
    /// The method it answers.
    pub method: Method,
    /// Its path.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    handler: fn() -> Route,
}

/// Every route, in the order the 404 answer lists them. `/mcp` is mounted by
/// [`crate::mcp::HttpTransport`] with the `mcp` scope when it is enabled.
pub static ROUTES: [RouteSpec; 13] = [
    RouteSpec {
        method: Method::POST,
        path: "/execute",
        access: Access::Scope(Scope::Execute),
        handler: || web::route().to(execute::execute),
    },
    RouteSpec {
        method: Method::POST,
        path: "/validate",
        access: Access::Scope(Scope::Execute),
        handler: || web::route().to(execute::validate),
    },
    RouteSpec {
        method: Method::POST,
        path: "/deno",
        access: Access::Scope(Scope::Execute),
        handler: || web::route().to(execute::deno),
    },
    RouteSpec {
        method: Method::POST,
        path: "/wasm/compile",
        access: Access::Scope(Scope::Wasm),
        handler: || web::route().to(wasm::compile),
    },
    RouteSpec {
        method: Method::POST,
        path: "/wasm/run",
        access: Access::Scope(Scope::Wasm),
        handler: || web::route().to(wasm::run),
    },
    RouteSpec {
        method: Method::GET,
        path: "/health",
        access: Access::Public,
        handler: || web::route().to(super::health),
    },
    RouteSpec {
        method: Method::GET,
        path: "/stats",
        access: Access::Any,
        handler: || web::route().to(super::stats),
    },
    RouteSpec {
        method: Method::GET,
        path: "/status",
        access: Access::Scope(Scope::Admin),
        handler: || web::route().to(status::status),
    },
    RouteSpec {
        method: Method::GET,
        path: "/metrics",
        access: Access::Scope(Scope::Admin),
        handler: || web::route().to(status::metrics),
    },
    RouteSpec {
        method: Method::GET,
        path: "/ui",
        access: Access::Public,
        handler: || web::route().to(ui::page),
    },
    RouteSpec {
        method: Method::GET,
        path: "/ui/app.js",
        access: Access::Public,
        handler: || web::route().to(ui::script),
    },
    RouteSpec {
        method: Method::GET,
        path: "/ui/app.css",
        access: Access::Public,
        handler: || web::route().to(ui::style),
    },
    // The API's description: open to any valid key like the 404 answer, which lists the
    // routes, so that a client without a key learns nothing of them (docs/api.md).
    RouteSpec {
        method: Method::GET,
        path: "/openapi.json",
        access: Access::Any,
        handler: || web::route().to(openapi::document),
    },
];

/// The routes as `"METHOD /path"`, as 404 and 405 answers list them.
pub fn endpoints() -> Vec<String> {
    ROUTES
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// Registers every route of [`ROUTES`], each behind its own authorisation.
pub fn register(cfg: &mut web::ServiceConfig) {
    register_with(cfg, |spec| (spec.handler)());
}

/// Registers every route of [`ROUTES`] with the handler `handler` gives it, each behind its
/// own authorisation and 405 answer: [`register`] with the real handlers, and the route-access
/// fuzz target with probes that say which route answered.
pub fn register_with(cfg: &mut web::ServiceConfig, handler: impl Fn(&'static RouteSpec) -> Route) {
    for spec in &ROUTES {
        let access = spec.access;
        let method = &spec.method;
        cfg.service(
            web::resource(spec.path)
                .route(handler(spec).method(method.clone()))
                // Another method on this path: 405, after this route's own authorisation.
                .default_service(fn_service(move |req: ServiceRequest| async move {
                    let answer = ApiError::MethodNotAllowed {
                        allow: method.as_str(),
                        endpoints: endpoints(),
                    }
                    .error_response();
                    Ok::<_, actix_web::Error>(req.into_response(answer))
                }))
                .wrap(from_fn(move |req: ServiceRequest, next: Next<BoxBody>| {
                    authorise(access, req, next)
                })),
        );
    }
}

/// Paths no route matches: 404. It needs a valid key, like every route but the public ones,
/// so that a client without one learns nothing of the routes.
pub async fn not_found(req: ServiceRequest) -> Result<ServiceResponse, actix_web::Error> {
    if let Err(e) = check(Access::Any, &req) {
        return Ok(req.into_response(e.error_response()));
    }
    Ok(req.into_response(
        ApiError::NotFound {
            endpoints: endpoints(),
        }
        .error_response(),
    ))
}

/// The route-level middleware: checks the key `access` asks for (and charges its rate limit)
/// before the handler runs, and hands the handler the key as a [`Caller`].
pub async fn authorise(
    access: Access,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    match check(access, &req) {
        Err(e) => return Ok(req.into_response(e.error_response()).map_into_right_body()),
        Ok(Some(caller)) => {
            req.extensions_mut().insert(caller);
        }
        Ok(None) => {}
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Checks the request's `Authorization` header against what `access` asks for, answering the
/// key it runs under.
pub fn check(access: Access, req: &ServiceRequest) -> Result<Option<Caller>, ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match req.app_data::<web::Data<Auth>>() {
        Some(auth) => auth.authorise(access, header),
        // No token check registered: the app is misconfigured; refuse rather than serve.
        None => Err(ApiError::Internal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_unique_and_absolute() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(r.path.starts_with('/'), "{}", r.path);
            assert!(
                ROUTES[i + 1..].iter().all(|o| o.path != r.path),
                "{} twice",
                r.path
            );
        }
        assert!(endpoints().contains(&"GET /status".to_string()));
    }

    #[test]
    fn only_health_and_the_pages_files_are_public_and_only_status_and_metrics_are_admin() {
        for r in &ROUTES {
            let expected = match r.path {
                "/health" | "/ui" | "/ui/app.js" | "/ui/app.css" => Access::Public,
                "/status" | "/metrics" => Access::Scope(Scope::Admin),
                "/stats" | "/openapi.json" => Access::Any,
                "/wasm/compile" | "/wasm/run" => Access::Scope(Scope::Wasm),
                _ => Access::Scope(Scope::Execute),
            };
            assert_eq!(r.access, expected, "{}", r.path);
        }
    }
}
