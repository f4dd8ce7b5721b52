//! The hostile-code corpus: sandbox-escape attempts and resource bombs, each with its exact
//! expected outcome. Every case runs in the same service, which must answer every one and
//! still run ordinary code afterwards.

use serde_json::{json, Value};

use crate::common::Service;

/// What an attempt must end in.
enum Expect {
    /// 200 with this result.
    Result(Value),
    /// 422 with this error type (and, when given, this error name).
    Error(&'static str, Option<&'static str>),
}

use Expect::{Error, Result};

const CASES: &[(&str, &str)] = &[
    ("constructor chain to the global object", "const g = (function(){}).constructor('return this')(); [typeof g.process, typeof g.require, g === globalThis]"),
    ("Function constructor looking for host objects", "Function('return typeof require + typeof process + typeof std + typeof os')()"),
    ("indirect eval looking for host objects", "(0, eval)('typeof std + typeof os + typeof scriptArgs + typeof print')"),
    ("array constructor chain", "[].constructor.constructor('return typeof globalThis.process')()"),
    ("module loading", "import('os')"),
    ("WebAssembly from JavaScript", "new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]))"),
    ("proxy trap throwing during serialisation", "new Proxy({}, { get() { throw new Error('trap') }, ownKeys() { return ['a'] }, getOwnPropertyDescriptor() { return {enumerable: true, configurable: true} } })"),
    ("Symbol.species getter that never returns", "class A extends Array { static get [Symbol.species]() { while (true) {} } }; new A(1, 2, 3).map(x => x)"),
    ("stack-trace hook swallowing the interrupt", "Error.prepareStackTrace = () => { while (true) {} }; new Error('x').stack"),
    ("stack-trace hook catching in a loop", "Error.prepareStackTrace = () => { for (;;) { try { while (true) {} } catch {} } }; try { null.x } catch (e) { e.stack }"),
    ("override of a frozen prototype method", "Object.prototype.toString = () => 'pwned'; ({}).toString()"),
    ("new property on a frozen prototype", "Object.defineProperty(Object.prototype, 'polluted', { value: 1 })"),
    ("prototype of the global object", "globalThis.__proto__ = null; 1"),
    ("caller walking", "(function f() { return f.caller })()"),
    ("async escape: work left in the job queue", "Promise.resolve().then(() => { while (true) {} }); 'returned'"),
    ("async generator flood", "async function* g() { while (true) yield 1 } (async () => { for await (const x of g()) {} })(); 'ok'"),
    ("catastrophic regular expression", "/(a+)+$/.test('a'.repeat(40) + 'b')"),
    ("string bomb past the engine's length limit", "'x'.repeat(2 ** 30)"),
    ("array bomb", "new Array(2 ** 32 - 1).fill(0)"),
    ("array of arrays bomb", "const a = []; while (true) a.push(new Array(1e4).fill(1))"),
    ("native loop the interrupt cannot reach", "new Array(1e9).join('x')"),
    ("native sort of a huge sparse array", "const a = []; a.length = 2 ** 32 - 1; a.sort()"),
    ("deeply nested JSON", "JSON.parse('['.repeat(1e6))"),
    ("lone surrogate in the result", "String.fromCharCode(0xD800)"),
];

fn expected(name: &str) -> Expect {
    match name {
        "constructor chain to the global object" => Result(json!(["undefined", "undefined", true])),
        "Function constructor looking for host objects"
        | "indirect eval looking for host objects" => {
            Result(json!("undefinedundefinedundefinedundefined"))
        }
        "array constructor chain" => Result(json!("undefined")),
        "module loading" => Error("RUNTIME", Some("ReferenceError")),
        "WebAssembly from JavaScript" => Error("RUNTIME", Some("ReferenceError")),
        "proxy trap throwing during serialisation" => Error("RUNTIME", Some("Error")),
        "Symbol.species getter that never returns"
        | "stack-trace hook swallowing the interrupt"
        | "stack-trace hook catching in a loop"
        | "catastrophic regular expression"
        | "native loop the interrupt cannot reach"
        | "native sort of a huge sparse array" => Error("TIMEOUT", Some("TimeoutError")),
        "override of a frozen prototype method" => Result(json!("[object Object]")),
        "new property on a frozen prototype" => Error("RUNTIME", Some("TypeError")),
        "prototype of the global object" => Result(json!(1)),
        "caller walking" => Result(json!(null)),
        "async escape: work left in the job queue" => Result(json!("returned")),
        "async generator flood" => Result(json!("ok")),
        "string bomb past the engine's length limit" => Error("RUNTIME", Some("RangeError")),
        "array bomb" | "array of arrays bomb" => Error("MEMORY_LIMIT", Some("MemoryLimitError")),
        "deeply nested JSON" => Error("STACK_OVERFLOW", Some("RangeError")),
        "lone surrogate in the result" => Result(json!("\\ud800")),
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn every_escape_attempt_has_its_exact_outcome() {
    let s = Service::start();
    for (name, code) in CASES {
        // Cases that must end in a timeout get a short one; the others get room enough that a
        // loaded machine cannot turn a memory or stack limit into a timeout.
        let timeout = match expected(name) {
            Error("TIMEOUT", _) => 300,
            _ => 5000,
        };
        let res = s.post(
            "/execute",
            &json!({"code": code, "timeout": timeout}).to_string(),
        );
        if *name == "lone surrogate in the result" {
            // Escaped as JSON.stringify does; serde_json (strict) would refuse to parse it, while
            // JSON.parse and most parsers accept it.
            assert_eq!(res.status, 200);
            assert!(
                res.body.contains(r#""result":"\ud800""#),
                "{name}: {}",
                res.body
            );
            continue;
        }
        let body = res.json();
        match expected(name) {
            Result(want) => {
                assert_eq!(res.status, 200, "{name}: {body}");
                assert_eq!(body["result"], want, "{name}");
            }
            Error(kind, error_name) => {
                assert_eq!(res.status, 422, "{name}: {body}");
                assert_eq!(body["error"]["type"], kind, "{name}: {body}");
                if let Some(n) = error_name {
                    assert_eq!(body["error"]["name"], n, "{name}: {body}");
                }
            }
        }
    }
    // The service answered everything and still works.
    assert_eq!(
        s.execute(json!({"code": "'still here'"}), 200)["result"],
        "still here"
    );
}

/// Keys and strings that Rust cannot hold as they are (lone surrogates) or that a C string
/// would cut (NUL) come out as `JSON.stringify` writes them, in results and in logs.
#[test]
fn lone_surrogates_and_nul_in_keys_follow_json_stringify() {
    let s = Service::start();
    let res = s.post(
        "/execute",
        &json!({"code": r"console.log({['\ud800']: 1}); ({['\ud800']: 1, 'a\u0000b': 1, a: 2})"})
            .to_string(),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.body
            .contains(r#""result":{"\ud800":1,"a\u0000b":1,"a":2}"#),
        "{}",
        res.body
    );
    assert!(
        res.body.contains(r#""message":"{\"\\ud800\":1}""#),
        "{}",
        res.body
    );
    let body = s.execute(json!({"code": r"({'a\u0000b': 1, a: 2})"}), 200);
    assert_eq!(body["result"], json!({"a\u{0}b": 1, "a": 2}));
}

/// A NUL byte inside the code (in a string literal) is a character: `/execute` runs the code
/// and `/validate` agrees that it is valid.
#[test]
fn a_nul_byte_in_the_code_runs_and_validates() {
    let s = Service::start();
    let code = "'a\u{0}b'.length";
    assert_eq!(s.execute(json!({"code": code}), 200)["result"], 3);
    let res = s.post("/validate", &json!({"code": code}).to_string());
    assert_eq!((res.status, res.json()), (200, json!({"valid": true})));
    let body = s.execute(json!({"code": "'a\u{0}b'; 1 +;"}), 422);
    assert_eq!(body["error"]["name"], "SyntaxError", "{body}");
    let res = s.post("/validate", &json!({"code": "'a\u{0}b'; 1 +;"}).to_string());
    assert_eq!(res.status, 422, "{}", res.body);
}

/// A thrown error's texts and console output are bounded on their JSON-escaped size: control
/// characters take six bytes each in the answer, and the caps count that.
#[test]
fn error_texts_and_logs_are_bounded_in_the_encoded_answer() {
    let s = Service::with_config("[limits]\nmax_result_bytes = 10000\nmax_log_bytes = 10000\n");
    let res = s.post(
        "/execute",
        &json!({"code": r"throw new Error('\u0001'.repeat(5e6))"}).to_string(),
    );
    assert_eq!(res.status, 422);
    assert!(res.body.len() < 25_000, "{} bytes", res.body.len());
    let body = res.json();
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.ends_with("… [truncated]")));
    let res = s.post(
        "/execute",
        &json!({"code": r"console.log('\u0001'.repeat(1 << 20)); 1"}).to_string(),
    );
    assert_eq!(res.status, 200);
    assert!(res.body.len() < 12_000, "{} bytes", res.body.len());
    assert_eq!(res.json()["stats"]["logsTruncated"], true);
}
