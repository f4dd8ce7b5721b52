//! The result serialiser against an oracle: for any JSON document, running `JSON.parse` on it
//! inside the sandbox and serialising the value must give back the same JSON (numbers compared
//! as floats). Anything else (not JSON, too deep, too large) must end in a named error.
#![no_main]

use isolate_shared::message::{CodeForm, ErrorKind, ExecuteJob, JsLimits, Language, Preset};
use libfuzzer_sys::fuzz_target;

fn normalise(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64().unwrap_or(0.0)),
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalise(v))).collect()),
        other => other,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expected) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let job = ExecuteJob {
        code: "JSON.parse(env.doc)".into(),
        preset: Preset::Compute,
        env_json: Some(serde_json::json!({ "doc": text }).to_string()),
        timeout_ms: 2000,
        limits: JsLimits {
            memory_bytes: 64 << 20,
            ..JsLimits::default()
        },
        language: Language::JavaScript,
        form: CodeForm::Auto,
        data_json: None,
    };
    let out = isolate_worker::js::execute(&job);
    match out.result {
        Ok(json) => {
            let got: serde_json::Value =
                serde_json::from_str(&json).expect("the serialiser wrote invalid JSON");
            assert_eq!(normalise(got), normalise(expected), "round trip of {text}");
        }
        Err(e) => assert!(
            matches!(
                e.kind,
                ErrorKind::OutputLimit
                    | ErrorKind::StackOverflow
                    | ErrorKind::MemoryLimit
                    | ErrorKind::Runtime
            ),
            "unexpected {e:?} for {text}"
        ),
    }
});
