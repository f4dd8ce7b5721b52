//! Any request body: parsing and field validation return a value or a named error, never panic.
#![no_main]

use isolate_service::api::request;
use isolate_service::config::LimitsConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = LimitsConfig::default();
    if let Ok(body) = request::parse_object(data) {
        let _ = request::code(&body);
        let _ = request::preset(&body);
        if let Ok(Some(env)) = request::env(&body) {
            // What the worker receives must itself be valid JSON.
            serde_json::from_str::<serde_json::Value>(&env).unwrap();
        }
        if let Ok(t) = request::timeout(&body, &limits) {
            assert!(t >= 1 && t <= limits.max_timeout_ms);
        }
        let _ = request::language(&body);
        // The /deno fields.
        if let Ok(data) = request::data(&body) {
            serde_json::from_str::<serde_json::Value>(&data).unwrap();
        }
        let _ = request::permissions(&body);
        if let Ok(t) = request::deno_timeout(&body, &limits) {
            assert!(t >= 1 && t <= limits.deno_max_timeout_ms);
        }
    }
});
