//! The assembly of `/execute` answers: for any outcome a worker could send and any bound, the
//! answer is one JSON document within the bound (or, when the bound cannot hold even the
//! smallest failure, that failure), and it says what the outcome said: the same result, the
//! same logs and the same error, or an `OUTPUT_LIMIT` failure in their place.
#![no_main]

use std::time::Duration;

use isolate_service::api::auth::Usage;
use isolate_service::api::execute::{assemble, AnswerContext};
use isolate_shared::frame::decode;
use isolate_shared::message::{ErrorKind, ExecuteOutcome, Preset};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The most the `OUTPUT_LIMIT` failure that replaces an answer takes: it carries no result,
/// logs or audit, only its message, the id and the statistics.
const FAILURE_MAX: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let [mode, b0, b1, rest @ ..] = data else {
        return;
    };
    let bound = 64 + usize::from(u16::from_le_bytes([*b0, *b1])) * 4;
    // Half the inputs are a raw result text (JSON or not), half a whole decoded outcome.
    let outcome = if mode & 1 == 0 {
        ExecuteOutcome {
            result: Ok(String::from_utf8_lossy(rest).into_owned()),
            logs: Vec::new(),
            logs_truncated: false,
            elapsed_us: 0,
            cpu_us: 0,
            heap_peak_bytes: 0,
            recycle: false,
        }
    } else {
        match decode::<ExecuteOutcome>(rest) {
            Ok(o) => o,
            Err(_) => return,
        }
    };
    let context_with = |bound| AnswerContext {
        execution_id: "00000000-0000-4000-8000-000000000000",
        elapsed: Duration::from_micros(1234),
        timeout_ms: 5000,
        preset: Preset::Compute,
        fetches: None,
        usage: Usage {
            cpu_ms: 12.345,
            wall_ms: 1.234,
            heap_peak_bytes: 1 << 20,
            fetches: 0,
            egress_bytes: 0,
        },
        bound,
    };
    let context = context_with(bound);
    let (answer, kind) = assemble(&outcome, &context);
    // The answer with no bound: the backstop replaces it exactly when that is longer than the
    // bound (also when the outcome already was an OUTPUT_LIMIT failure), and otherwise leaves
    // it as it is.
    let (unbounded, unbounded_kind) = assemble(&outcome, &context_with(usize::MAX));
    let replaced = unbounded.body.len() > bound;
    if replaced {
        assert_eq!(kind, Some(ErrorKind::OutputLimit));
    } else {
        assert_eq!(answer.body, unbounded.body);
        assert_eq!(kind, unbounded_kind);
    }
    // Every answer is JSON. A number beyond f64 (`1E999`, which JSON allows and
    // `JSON.stringify` never writes) passes through as written, so the syntax is checked on
    // its own before the document is read as values.
    serde_json::from_slice::<serde::de::IgnoredAny>(&answer.body).expect("every answer is JSON");
    let Ok(doc) = serde_json::from_slice::<Value>(&answer.body) else {
        assert!(answer.body.len() <= bound.max(FAILURE_MAX));
        return;
    };
    if answer.body.len() > bound {
        assert!(
            replaced,
            "an answer of {} bytes passed its bound {bound}",
            answer.body.len()
        );
        assert!(
            answer.body.len() <= FAILURE_MAX,
            "{} bytes",
            answer.body.len()
        );
    }
    assert_eq!(doc["success"], Value::Bool(answer.status == 200));
    assert_eq!(doc["executionId"], context.execution_id);
    if replaced {
        assert_eq!(doc["error"]["type"], "OUTPUT_LIMIT");
        assert_eq!(doc["logs"], Value::Array(Vec::new()));
        assert_eq!(doc["stats"]["logsTruncated"], true);
        return;
    }
    match &outcome.result {
        Ok(text) => match serde_json::from_str::<Value>(text) {
            Ok(expected) => {
                assert_eq!(answer.status, 200);
                assert_eq!(doc["result"], expected);
            }
            Err(_) => {
                assert_eq!(answer.status, 500);
                assert_eq!(doc["error"]["type"], "INTERNAL");
            }
        },
        Err(e) => {
            assert_eq!(doc["error"]["type"], e.kind.as_str());
            assert_eq!(doc["error"]["message"], e.message.as_str());
            assert_eq!(doc["error"]["name"], e.name.as_str());
        }
    }
    if outcome
        .result
        .as_ref()
        .map_or(true, |t| serde_json::from_str::<Value>(t).is_ok())
    {
        let logs = doc["logs"].as_array().expect("logs are a list");
        assert_eq!(logs.len(), outcome.logs.len());
        for (out, log) in logs.iter().zip(&outcome.logs) {
            assert_eq!(out["message"], log.message.as_str());
            assert_eq!(out["level"], log.level.as_str());
        }
        assert_eq!(doc["stats"]["logsTruncated"], outcome.logs_truncated);
    }
});
