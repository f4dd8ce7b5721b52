//! Hostile code: timeouts, memory and stack bombs, huge output, console floods, and state that
//! must not survive from one execution to the next.

use serde_json::json;

use crate::common::Service;

fn error_type(res: &serde_json::Value) -> &str {
    res["error"]["type"].as_str().unwrap_or("")
}

#[test]
fn the_engine_interrupt_ends_hostile_loops_cleanly() {
    let s = Service::start();
    for code in [
        "while (true) {}",
        "try { while (true) {} } finally { while (true) {} }",
        "try { for (;;) {} } catch (e) { 'caught' }",
        "async function f() { await null; return f() } await f()",
        "return new Promise(function loop(r) { Promise.resolve().then(() => loop(r)) })",
    ] {
        let res = s.execute(json!({"code": code, "timeout": 200}), 422);
        assert_eq!(error_type(&res), "TIMEOUT", "{code}");
        assert_eq!(
            res["error"]["message"], "execution exceeded the timeout of 200 ms",
            "{code}"
        );
    }
    // The same service keeps working.
    assert_eq!(s.execute(json!({"code": "1+1"}), 200)["result"], 2);
}

#[test]
fn memory_and_stack_bombs_are_named_and_contained() {
    let s = Service::with_config("[limits]\nmemory_bytes = 33554432\n");
    for code in [
        "const a = []; while (true) a.push(new Array(1e5).fill(a.length))",
        "'x'.repeat(1 << 29)",
        "const parts = []; for (;;) parts.push(new Float64Array(1 << 16))",
    ] {
        let res = s.execute(json!({"code": code}), 422);
        assert_eq!(error_type(&res), "MEMORY_LIMIT", "{code}: {res}");
    }
    let res = s.execute(
        json!({"code": "function r(n) { return r(n + 1) + 1 } r(0)"}),
        422,
    );
    assert_eq!(error_type(&res), "STACK_OVERFLOW");
    assert_eq!(
        s.execute(json!({"code": "[1,2,3].length"}), 200)["result"],
        3
    );
}

#[test]
fn huge_output_and_console_floods_are_capped() {
    let s = Service::with_config("[limits]\nmax_result_bytes = 10000\nmax_log_entries = 5\n");
    let res = s.execute(json!({"code": "'x'.repeat(20000)"}), 422);
    assert_eq!(error_type(&res), "OUTPUT_LIMIT");
    let res = s.execute(json!({"code": "const o = {}; let p = o; for (let i = 0; i < 5000; i++) { p.c = {}; p = p.c } o"}), 422);
    assert_eq!(error_type(&res), "OUTPUT_LIMIT");
    let res = s.execute(
        json!({"code": "for (let i = 0; i < 1000; i++) console.log(i); 'done'"}),
        200,
    );
    assert_eq!(res["logs"].as_array().map(Vec::len), Some(5));
    assert_eq!(res["stats"]["logsTruncated"], true);
}

#[test]
fn hostile_results_neither_hang_nor_crash() {
    let s = Service::start();
    let res = s.execute(
        json!({"code": "({ toJSON() { while (true) {} } })", "timeout": 200}),
        422,
    );
    assert_eq!(error_type(&res), "TIMEOUT");
    let res = s.execute(
        json!({"code": "({ get x() { throw new Error('nope') } })"}),
        422,
    );
    assert_eq!(error_type(&res), "RUNTIME");
    let res = s.execute(json!({"code": "const a = [1]; a.push(a); a"}), 200);
    assert_eq!(res["result"], json!([1, "[Circular]"]));
    let res = s.execute(
        json!({"code": "({ valueOf() { throw 1 }, n: 10n, f() {}, d: new Date(0) })"}),
        200,
    );
    assert_eq!(
        res["result"],
        json!({"n": "10", "d": "1970-01-01T00:00:00.000Z"})
    );
}

#[test]
fn nothing_leaks_between_executions() {
    // One worker serving every execution makes any leak visible.
    let s =
        Service::with_config("[workers]\nprewarm = 1\nmax_concurrent = 1\nrecycle_after = 1000\n");
    let res = s.execute(
        json!({"code": "globalThis.leak = 1; var v = 2; try { Array.prototype.polluted = 1 } catch {}; Object.prototype.x = 1; 'set'"}),
        200,
    );
    assert_eq!(res["result"], "set");
    let res = s.execute(
        json!({"code": "[typeof leak, typeof v, typeof [].polluted, typeof ({}).x, Object.isFrozen(Object.prototype)]"}),
        200,
    );
    assert_eq!(
        res["result"],
        json!(["undefined", "undefined", "undefined", "undefined", true])
    );
    let res = s.execute(
        json!({"code": "'use strict'; Array.prototype.map = null"}),
        422,
    );
    assert_eq!(res["error"]["name"], "TypeError");
    let res = s.execute(
        json!({"code": "typeof process + typeof require + typeof fetch"}),
        200,
    );
    assert_eq!(res["result"], "undefinedundefinedundefined");
}
