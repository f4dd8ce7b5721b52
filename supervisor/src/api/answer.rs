//! A route's answer as a status and a JSON body, built without actix types, so that the same
//! execution path serves both the HTTP routes and the MCP tools ([`crate::mcp`]).

use actix_web::http::header::ContentType;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use super::LogFields;

/// `text` cut to at most `max` bytes (at a character boundary) and marked with `…` when cut:
/// how echoed texts (URLs in the fetch audit, export names) stay small whatever they are.
pub fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

/// A complete answer: the status, the encoded JSON body and what the request log records.
pub struct Answer {
    /// The HTTP status of the answer (the MCP tools read success or failure from it).
    pub status: StatusCode,
    /// The JSON body, encoded.
    pub body: Vec<u8>,
    /// What the request log records about the execution, when there was one.
    pub fields: Option<LogFields>,
}

impl Answer {
    /// Encodes `value` as the body. A value that cannot be encoded (never one of the answer
    /// types) becomes a 500 answer, as actix's `json` would make it.
    pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Answer {
        match serde_json::to_vec(value) {
            Ok(body) => Answer {
                status,
                body,
                fields: None,
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an answer");
                Answer {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: br#"{"error":"Internal error"}"#.to_vec(),
                    fields: None,
                }
            }
        }
    }

    /// Attaches the request-log fields.
    pub fn with_fields(mut self, fields: LogFields) -> Answer {
        self.fields = Some(fields);
        self
    }

    /// The HTTP response.
    pub fn into_response(self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status)
            .content_type(ContentType::json())
            .body(self.body);
        if let Some(fields) = self.fields {
            response.extensions_mut().insert(fields);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clipping_keeps_short_texts_and_cuts_at_a_character() {
        assert_eq!(clip("short", 5), "short");
        assert_eq!(clip("abcdef", 3), "abc…");
        // 'é' is two bytes: a cut inside it backs off to the boundary before it.
        assert_eq!(clip("aéb", 2), "a…");
        assert_eq!(clip("", 0), "");
    }
}
