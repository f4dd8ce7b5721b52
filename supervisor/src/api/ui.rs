//! `GET /ui`: the admin page, three files embedded in the binary (no CDN, no build step).
//!
//! The files hold no data and need no token (a browser cannot send a bearer header when it
//! navigates); everything they show comes from `GET /status` and `POST /execute`, which the
//! page calls with the token the user typed, kept in the tab's `sessionStorage` and sent in the
//! `Authorization` header only. A strict Content-Security-Policy lets the page load its own
//! script and style and talk to its own origin, nothing else.

use actix_web::http::header;
use actix_web::HttpResponse;

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

/// The policy of every file of the page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// `GET /ui`
pub async fn page() -> HttpResponse {
    file("text/html; charset=utf-8", INDEX)
}

/// `GET /ui/app.js`
pub async fn script() -> HttpResponse {
    file("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /ui/app.css`
pub async fn style() -> HttpResponse {
    file("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_nothing_from_elsewhere_and_writes_data_as_text() {
        for text in [INDEX, SCRIPT, STYLE] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("eval("));
        assert!(SCRIPT.contains("sessionStorage") && !SCRIPT.contains("localStorage"));
    }
}
