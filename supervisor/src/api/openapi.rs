//! `GET /openapi.json`: the OpenAPI 3.1 description of every route, kept in the repository as
//! `docs/openapi.json` and embedded in the binary as it is there.
//!
//! The document is written by hand. It cannot drift unnoticed: the unit tests below check it
//! against the route table (every route, its method and its access level, and nothing else)
//! and against the answers [`super::error::ApiError`] gives, and the end-to-end tests
//! (`tests/e2e/openapi.rs`) validate real answers of every route against it.

use actix_web::HttpResponse;

/// The document, byte for byte as `docs/openapi.json` holds it.
pub const DOCUMENT: &[u8] = include_bytes!("../../../docs/openapi.json");

/// `GET /openapi.json`
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::ApiError;
    use crate::api::routes::{Access, ROUTES};
    use actix_web::ResponseError;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::from_slice(DOCUMENT).expect("docs/openapi.json is JSON")
    }

    #[test]
    fn the_document_lists_exactly_the_route_table() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        let paths = doc["paths"].as_object().expect("paths");
        for r in &ROUTES {
            let method = r.method.as_str().to_ascii_lowercase();
            let op = &paths
                .get(r.path)
                .unwrap_or_else(|| panic!("{} is not in docs/openapi.json", r.path))[&method];
            assert!(
                op.is_object(),
                "{} {} is not in docs/openapi.json",
                r.method,
                r.path
            );
            let access = match r.access {
                Access::Public => "public",
                Access::Any => "any",
                Access::Scope(scope) => scope.name(),
            };
            assert_eq!(op["x-access"], access, "{} {}", r.method, r.path);
            // Public routes need no token: the document says so, and lists no token errors.
            let open = op["security"] == serde_json::json!([]);
            assert_eq!(open, r.access == Access::Public, "{}", r.path);
            let responses = op["responses"].as_object().expect("responses");
            for status in ["401", "429"] {
                assert_eq!(responses.contains_key(status), !open, "{} {status}", r.path);
            }
            assert!(responses.contains_key("403"), "{} 403", r.path);
        }
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys() {
                assert!(
                    ROUTES
                        .iter()
                        .any(|r| r.path == path && r.method.as_str().eq_ignore_ascii_case(method)),
                    "{method} {path} is in docs/openapi.json but not a route"
                );
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = doc();
        fn walk(v: &Value, doc: &Value) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        let pointer = r.strip_prefix('#').expect("local references only");
                        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
                    }
                    map.values().for_each(|v| walk(v, doc));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, doc)),
                _ => {}
            }
        }
        walk(&doc, &doc);
    }

    #[test]
    fn request_errors_have_the_documented_statuses() {
        // Every status an `ApiError` answers on a route that reads a body is documented there.
        let doc = doc();
        let errors = [
            ApiError::InvalidJson,
            ApiError::PayloadTooLarge(1),
            ApiError::BodyTimeout(1),
            ApiError::Unauthorized,
            ApiError::Forbidden,
            ApiError::RateLimited { retry_after: 1 },
            ApiError::Busy,
            ApiError::Internal,
        ];
        for path in [
            "/execute",
            "/validate",
            "/deno",
            "/wasm/compile",
            "/wasm/run",
        ] {
            let responses = &doc["paths"][path]["post"]["responses"];
            for e in &errors {
                let status = e.status_code().as_str().to_string();
                assert!(
                    responses[&status].is_object(),
                    "{path} does not document {status}"
                );
            }
        }
        let compile = &doc["paths"]["/wasm/compile"]["post"]["responses"];
        for e in [
            ApiError::FileNotFound,
            ApiError::FileForbidden(""),
            ApiError::ModuleTooLarge(1),
        ] {
            assert!(compile[e.status_code().as_str()].is_object(), "{e}");
        }
        let shared = &doc["components"]["responses"];
        for (name, e) in [
            ("NotFound", ApiError::NotFound { endpoints: vec![] }),
            (
                "MethodNotAllowed",
                ApiError::MethodNotAllowed {
                    allow: "GET",
                    endpoints: vec![],
                },
            ),
        ] {
            assert!(shared[name].is_object(), "{name} ({})", e.status_code());
        }
    }
}
