//! Unit tests of the QuickJS host: modes, presets, limits and the serialisation rules.

use super::*;
use isolate_shared::message::{CodeForm, JsLimits, Language, LogLevel, Preset};

fn job(code: &str) -> ExecuteJob {
    ExecuteJob {
        code: code.into(),
        preset: Preset::Compute,
        env_json: None,
        timeout_ms: 1000,
        limits: JsLimits::default(),
        language: Language::JavaScript,
        form: CodeForm::Auto,
        data_json: None,
    }
}

fn ok(code: &str) -> String {
    match execute(&job(code)).result {
        Ok(json) => json,
        Err(e) => panic!("{code:?} failed: {e:?}"),
    }
}

fn err(j: ExecuteJob) -> JobError {
    match execute(&j).result {
        Ok(json) => panic!("{:?} succeeded with {json}", j.code),
        Err(e) => e,
    }
}

#[test]
fn last_expression_and_function_body_modes() {
    assert_eq!(ok("1+1"), "2");
    assert_eq!(ok("let x = 3; x * 2"), "6");
    assert_eq!(ok("return 7"), "7");
    assert_eq!(ok("if (true) return 'a'; 'b'"), "\"a\"");
    assert_eq!(ok("function f() { return 1 } f() + 1"), "2");
    assert_eq!(ok("await Promise.resolve(5)"), "5");
    assert_eq!(ok("const v = await Promise.resolve(2); return v * 3"), "6");
    assert_eq!(ok("Promise.resolve({a: 1})"), "{\"a\":1}");
    assert_eq!(ok("undefined"), "null");
    assert_eq!(ok(""), "null");
}

#[test]
fn env_is_exposed_as_env_and_input() {
    let mut j = job("return env.prices.reduce((a,b) => a+b, 0) / input.prices.length");
    j.env_json = Some(r#"{"prices":[83.50, 84.20, 82.10]}"#.into());
    assert_eq!(execute(&j).result.unwrap(), "83.26666666666667");
    assert_eq!(ok("typeof env + typeof input"), "\"objectobject\"");
}

#[test]
fn serialisation_rules() {
    assert_eq!(
        ok("({a: undefined, b: () => 1, c: Symbol('x'), d: 1})"),
        r#"{"d":1}"#
    );
    assert_eq!(
        ok("[undefined, () => 1, NaN, Infinity, -0]"),
        "[null,null,null,null,0]"
    );
    assert_eq!(ok("10n ** 30n"), r#""1000000000000000000000000000000""#);
    assert_eq!(
        ok("new Map([['a', 1], [2, {b: 2}]])"),
        r#"[["a",1],[2,{"b":2}]]"#
    );
    assert_eq!(ok("new Set([1, 'x'])"), r#"[1,"x"]"#);
    assert_eq!(ok("new Uint8Array([1, 2, 255])"), "[1,2,255]");
    assert_eq!(ok("new Int16Array([-2, 3])"), "[-2,3]");
    assert_eq!(ok("new Float64Array([1.5, -0.25])"), "[1.5,-0.25]");
    assert_eq!(ok("new BigInt64Array([-5n])"), r#"["-5"]"#);
    assert_eq!(ok("new Uint8Array([7, 8, 9]).subarray(1)"), "[8,9]");
    assert_eq!(ok("new Uint8Array([4, 5]).buffer"), "[4,5]");
    assert_eq!(ok("new Date(0)"), r#""1970-01-01T00:00:00.000Z""#);
    assert_eq!(ok("({toJSON() { return 'custom' }})"), r#""custom""#);
    assert_eq!(
        ok("const a = {x: 1}; a.self = a; a"),
        r#"{"x":1,"self":"[Circular]"}"#
    );
    assert_eq!(ok("const s = {v: 1}; [s, s]"), r#"[{"v":1},{"v":1}]"#);
    assert_eq!(ok("1e21"), "1e+21");
    assert_eq!(ok("-1.5e-7"), "-1.5e-7");
    assert_eq!(ok("0.1 + 0.2"), "0.30000000000000004");
    assert_eq!(ok("'a\"b\\n\\u0001'"), r#""a\"b\n\u0001""#);
    let e = ok("const e = new TypeError('bad'); e.code = 7; e");
    assert!(
        e.starts_with(r#"{"name":"TypeError","message":"bad","stack":"#),
        "{e}"
    );
    assert!(e.ends_with(r#","code":7}"#), "{e}");
    assert_eq!(ok("() => 1"), "null");
    assert_eq!(ok("String.fromCharCode(0xD800) + 'a'"), r#""\ud800a""#);
    assert_eq!(
        ok("({k: String.fromCharCode(0xDC00)})"),
        r#"{"k":"\udc00"}"#
    );
    let out = execute(&job("console.log(String.fromCharCode(0xD800)); 1"));
    assert_eq!(out.logs[0].message, r#""\ud800""#);
}

#[test]
fn keys_with_lone_surrogates_or_nul_follow_json_stringify() {
    assert_eq!(ok(r"({['\ud800']: 1})"), r#"{"\ud800":1}"#);
    assert_eq!(
        ok(r"({['x\udfffy']: '\ud800'})"),
        r#"{"x\udfffy":"\ud800"}"#
    );
    assert_eq!(ok(r"({'a\u0000b': 1, a: 2})"), r#"{"a\u0000b":1,"a":2}"#);
    assert_eq!(
        ok(r"({['\ud800']: {toJSON(k) { return k === '\ud800' }}})"),
        r#"{"\ud800":true}"#
    );
    let out = execute(&job(r"console.log({['\ud800']: 1, 'a\u0000b': 2}); 1"));
    assert_eq!(out.result.unwrap(), "1");
    assert_eq!(out.logs[0].message, r#"{"\ud800":1,"a\u0000b":2}"#);
    let out = execute(&job(
        r"console.log(Symbol('\ud800'), Object.defineProperty(() => 1, 'name', {value: '\udc00'})); 1",
    ));
    assert_eq!(out.result.unwrap(), "1");
    assert_eq!(
        out.logs[0].message,
        r#"Symbol("\ud800") [Function: "\udc00"]"#
    );
}

#[test]
fn error_texts_and_logs_are_capped_on_their_json_escaped_size() {
    let mut j =
        job(r"const e = new Error('\u0001'.repeat(1e5)); e.name = 'N'.repeat(1e5); throw e");
    j.limits.max_result_bytes = 1000;
    let e = err(j);
    assert!(
        serialize::json_len(&e.message) <= 1000,
        "{}",
        e.message.len()
    );
    assert!(e.message.ends_with(TRUNCATED_MARK), "{}", e.message.len());
    assert!(
        e.name.len() <= 1024 + TRUNCATED_MARK.len(),
        "{}",
        e.name.len()
    );
    let mut j = job(r"function f(n) { if (n) return f(n - 1); throw new Error('x') } f(5000)");
    j.limits.max_result_bytes = 100;
    let e = err(j);
    let stack = e.stack.unwrap_or_default();
    assert!(
        stack.len() <= 100 && stack.ends_with(TRUNCATED_MARK),
        "{stack}"
    );

    let mut j = job(r"console.log('\u0001'.repeat(1000)); 1");
    j.limits.max_log_bytes = 100;
    let out = execute(&j);
    assert_eq!(
        serialize::json_len(&out.logs[0].message),
        96,
        "16 escapes of 6 bytes"
    );
    assert!(out.logs_truncated);
}

#[test]
fn json_lengths_follow_the_escaping() {
    assert_eq!(serialize::json_len("a\"\\\n\u{1}é"), 1 + 2 + 2 + 2 + 6 + 2);
    let mut s = "\u{1}".repeat(10);
    assert!(serialize::truncate_json(&mut s, 20));
    assert_eq!(s.len(), 3);
    let mut s = "abcdef".to_string();
    assert!(serialize::cap_json(&mut s, 5, "~"));
    assert_eq!(s, "abcd~");
    assert!(!serialize::cap_json(&mut s, 5, "~"));
}

#[test]
fn console_is_captured_with_levels_and_caps() {
    let out = execute(&job(
        "console.log('a', 1, {b: [2]}); console.warn('w'); console.error(undefined); 3",
    ));
    assert_eq!(out.result.unwrap(), "3");
    let logs: Vec<_> = out
        .logs
        .iter()
        .map(|l| (l.level, l.message.as_str()))
        .collect();
    assert_eq!(
        logs,
        [
            (LogLevel::Log, "a 1 {\"b\":[2]}"),
            (LogLevel::Warn, "w"),
            (LogLevel::Error, "undefined")
        ]
    );
    assert!(!out.logs_truncated);

    let mut j = job("for (let i = 0; i < 100; i++) console.log('line ' + i); 'done'");
    j.limits.max_log_entries = 10;
    let out = execute(&j);
    assert_eq!(out.result.unwrap(), "\"done\"");
    assert_eq!(out.logs.len(), 10);
    assert!(out.logs_truncated);

    let mut j = job("console.log('x'.repeat(1000)); console.log('more'); 1");
    j.limits.max_log_bytes = 100;
    let out = execute(&j);
    assert_eq!(out.logs.len(), 1);
    assert_eq!(out.logs[0].message.len(), 100);
    assert!(out.logs_truncated);
}

#[test]
fn thrown_errors_carry_name_message_and_position() {
    let e = err(job("let a = 1;\nnull.x"));
    assert_eq!(e.kind, ErrorKind::Runtime);
    assert_eq!(e.name, "TypeError");
    assert_eq!(e.line, Some(2));
    let e = err(job(
        "if (false) return 1;\n\n  throw new RangeError('nope')",
    ));
    assert_eq!(
        (e.name.as_str(), e.message.as_str(), e.line, e.column),
        ("RangeError", "nope", Some(3), Some(13))
    );
    let e = err(job("throw 42"));
    assert_eq!(
        (e.name.as_str(), e.message.as_str()),
        ("Error", "Uncaught 42")
    );
    let e = err(job("await Promise.reject(new Error('async'))"));
    assert_eq!(e.message, "async");
    let e = err(job("1 +* 2"));
    assert_eq!(
        (e.name.as_str(), e.line, e.column),
        ("SyntaxError", Some(1), Some(4))
    );
    let e = err(job("new Promise(() => {})"));
    assert!(e.message.contains("never settles"), "{e:?}");
}

#[test]
fn timeouts_end_hostile_loops() {
    for code in [
        "while (true) {}",
        "try { while (true) {} } finally { while (true) {} }",
        "try { while (true) {} } catch (e) { 'caught' }",
        "async function f() { await null; return f() } await f()",
        "return new Promise(function loop(r) { Promise.resolve().then(() => loop(r)) })",
        "({ get x() { while (true) {} } })",
        "({ toJSON() { for (;;) {} } })",
        // The hook swallows the interrupt; the answer must still be TIMEOUT.
        "Error.prepareStackTrace = () => { while (true) {} }; new Error('x').stack",
    ] {
        let mut j = job(code);
        j.timeout_ms = 50;
        let e = err(j);
        assert_eq!(e.kind, ErrorKind::Timeout, "{code}: {e:?}");
    }
}

#[test]
fn memory_and_stack_limits_are_named() {
    // The timeout is far away, so that a loaded machine still reaches the memory limit first.
    let mut j = job("const a = []; while (true) a.push('x'.repeat(1000) + a.length)");
    j.limits.memory_bytes = 32 << 20;
    j.timeout_ms = 30_000;
    let e = err(j);
    assert_eq!(e.kind, ErrorKind::MemoryLimit, "{e:?}");
    for bomb in [
        "'x'.repeat(1 << 29)",
        "const a = []; while (true) a.push(new Array(1e5).fill(a.length))",
        "const a = []; while (true) a.push(new Float64Array(1e5))",
    ] {
        let mut j = job(bomb);
        j.limits.memory_bytes = 32 << 20;
        j.timeout_ms = 30_000;
        let e = err(j);
        assert_eq!(e.kind, ErrorKind::MemoryLimit, "{bomb}: {e:?}");
    }
    // Ropes make doubling cheap: the engine's length cap ends it before memory does.
    let e = err(job("let s = 'x'; while (true) s = s + s"));
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::Runtime, "string too long")
    );
    assert_eq!(
        err(job("function r() { return r() + 1 } r()")).kind,
        ErrorKind::StackOverflow
    );
    let e = err(job(
        "const o = {}; let p = o; for (let i = 0; i < 1000; i++) { p.c = {}; p = p.c } o",
    ));
    assert_eq!(e.kind, ErrorKind::OutputLimit);
    let mut j = job("'x'.repeat(2000)");
    j.limits.max_result_bytes = 1000;
    assert_eq!(err(j).kind, ErrorKind::OutputLimit);
    let mut j = job("new Array(1e9)");
    j.limits.max_result_bytes = 1000;
    assert_eq!(err(j).kind, ErrorKind::OutputLimit);
}

#[test]
fn hostile_results_do_not_crash() {
    let e = err(job("({ get x() { throw new Error('getter') } })"));
    assert_eq!(e.kind, ErrorKind::Runtime);
    assert!(e.message.contains("getter"), "{e:?}");
    assert_eq!(ok("new Proxy({}, { ownKeys() { return ['a'] }, getOwnPropertyDescriptor() { return {value: 1, enumerable: true, configurable: true} }, get() { return 5 } })"), r#"{"a":5}"#);
    assert_eq!(
        ok("({ valueOf() { throw 1 }, toString() { throw 2 }, v: 1 })"),
        r#"{"v":1}"#
    );
    assert_eq!(
        err(job("throw { get message() { throw 1 } }")).kind,
        ErrorKind::Runtime
    );
}

#[test]
fn builtins_are_frozen_and_presets_differ() {
    assert_eq!(ok("Object.isFrozen(Object.prototype) && Object.isFrozen(Array.prototype) && Object.isFrozen(Function.prototype) && Object.isFrozen(Map.prototype) && Object.isFrozen(Object.getPrototypeOf(Uint8Array).prototype) && Object.isFrozen(Object.getPrototypeOf(function*(){}).prototype) && Object.isFrozen(Object.getPrototypeOf([][Symbol.iterator]()))"), "true");
    assert_eq!(
        ok("'use strict'; try { Array.prototype.evil = 1; 'no' } catch (e) { e.name }"),
        "\"TypeError\""
    );
    assert_eq!(
        ok("typeof process + typeof require + typeof Date"),
        "\"undefinedundefinedfunction\""
    );
    let mut j = job("typeof Date + typeof Map + typeof Math + typeof JSON");
    j.preset = Preset::Minimal;
    assert_eq!(
        execute(&j).result.unwrap(),
        "\"undefinedundefinedobjectobject\""
    );
}

#[test]
fn a_nul_byte_in_the_code_is_a_character_when_running_and_validating() {
    let code = "'a\u{0}b'.length";
    assert_eq!(ok(code), "3");
    assert_eq!(ok("return `x\u{0}y`.charCodeAt(1)"), "0");
    let e = err(job("'a\u{0}b'; 1 +;"));
    assert_eq!(e.kind, ErrorKind::Runtime, "{e:?}");
    assert_eq!(e.name, "SyntaxError", "{e:?}");
    let v = |code: &str| {
        validate(&ValidateJob {
            code: code.into(),
            language: Language::JavaScript,
        })
        .error
    };
    assert_eq!(v(code), None);
    assert!(v("'a\u{0}b'; 1 +;").is_some());
}

#[test]
fn validate_reports_positions() {
    assert_eq!(
        validate(&ValidateJob {
            code: "1 + 1".into(),
            language: Language::JavaScript,
        })
        .error,
        None
    );
    assert_eq!(
        validate(&ValidateJob {
            code: "return await 1".into(),
            language: Language::JavaScript,
        })
        .error,
        None
    );
    let e = validate(&ValidateJob {
        code: "let a = 1;\nlet b = ;".into(),
        language: Language::JavaScript,
    })
    .error
    .unwrap();
    assert_eq!((e.line, e.column), (2, 9));
    let e = validate(&ValidateJob {
        code: "return 1 +* 2".into(),
        language: Language::JavaScript,
    })
    .error
    .unwrap();
    assert_eq!((e.line, e.column), (1, 11));
}

fn ts(code: &str) -> ExecuteJob {
    let mut j = job(code);
    j.language = Language::TypeScript;
    j
}

#[test]
fn typescript_runs_after_stripping() {
    let code = "interface P { x: number }\nconst p: P = { x: 20 };\nconst f = <T,>(v: T): T => v;\nreturn f<number>(p!.x as number) + 22;";
    assert_eq!(execute(&ts(code)).result.unwrap(), "42");
    // Type errors that are valid JavaScript run: nothing is type-checked.
    assert_eq!(
        execute(&ts("const n: number = 'text' as any; n"))
            .result
            .unwrap(),
        "\"text\""
    );
}

#[test]
fn typescript_errors_point_at_the_original_code() {
    let code = "type T = { a?: { b: number } };\nconst v: T = {};\n\n\n\n\nconst n: number = (v as any).a.b;\nreturn n;";
    let e = execute(&ts(code)).result.unwrap_err();
    assert_eq!(e.name, "TypeError");
    // QuickJS points at the start of the member expression, `v` at column 20, as it does for
    // the same line in JavaScript.
    assert_eq!((e.line, e.column), (Some(7), Some(20)), "{e:?}");
    let js = execute(&job(
        "const v = {};\n\n\n\n\n\nconst n         = (v       ).a.b;",
    ))
    .result
    .unwrap_err();
    assert_eq!((js.line, js.column), (Some(7), Some(20)));
    let e = execute(&ts("const a: number = 1;\nenum E { A }"))
        .result
        .unwrap_err();
    assert_eq!(
        (e.name.as_str(), e.line, e.column),
        ("SyntaxError", Some(2), Some(1))
    );
    assert!(e.message.contains("`enum`"), "{}", e.message);
}

#[test]
fn function_body_form_wraps_always_and_maps_first_line_positions() {
    let mut j = ts("const x: number = 1; null.y");
    j.form = CodeForm::FunctionBody;
    j.data_json = Some("{\"k\": 5}".into());
    let e = execute(&j).result.unwrap_err();
    let js = execute(&job("const x         = 1; null.y"))
        .result
        .unwrap_err();
    assert_eq!((e.line, e.column), (js.line, js.column), "{e:?}");
    assert_eq!(e.column, Some(21));
    assert!(
        e.stack.as_deref().unwrap_or("").contains("input.js:1:21)"),
        "{e:?}"
    );
    // Without a `return` a body returns undefined (null), and `data` is in scope.
    j.code = "data.k * 2".into();
    assert_eq!(execute(&j).result.unwrap(), "null");
    j.code = "return data.k * 2".into();
    assert_eq!(execute(&j).result.unwrap(), "10");
}

#[test]
fn import_and_export_declarations_are_named_in_both_languages() {
    for language in [Language::JavaScript, Language::TypeScript] {
        for (code, keyword, column) in [
            ("import x from 'y'; 1", "import", 1),
            ("const a = 1;\n  import { b } from 'y'", "import", 3),
            ("export const a = 1", "export", 1),
            ("return 1;\nimport * as m from 'y'", "import", 1),
        ] {
            let mut j = job(code);
            j.language = language;
            let e = execute(&j).result.unwrap_err();
            assert!(
                e.message
                    .starts_with(&format!("`{keyword}` declarations are not supported")),
                "{code}: {e:?}"
            );
            assert_eq!(e.column, Some(column), "{code}: {e:?}");
            let v = validate(&ValidateJob {
                code: code.into(),
                language,
            })
            .error
            .unwrap();
            assert!(
                v.message.starts_with(&format!("`{keyword}`")),
                "{code}: {v:?}"
            );
        }
    }
    // A dynamic import is an expression and stays a runtime error.
    let e = execute(&job("import('os')")).result.unwrap_err();
    assert_eq!(e.name, "ReferenceError");
}

#[test]
fn validate_strips_typescript() {
    let v = |code: &str| {
        validate(&ValidateJob {
            code: code.into(),
            language: Language::TypeScript,
        })
        .error
    };
    assert_eq!(v("const a: number = 1; return a"), None);
    let e = v("const a: number = 1;\nconst b: = 2").unwrap();
    assert_eq!(e.line, 2, "{e:?}");
    let e = v("let x = 1;\nenum E { A }").unwrap();
    assert_eq!((e.line, e.column), (2, 1));
    let e = v("const a: string = 'x';\nlet b = a +* 1").unwrap();
    assert_eq!(e.line, 2, "{e:?}");
}

#[test]
fn timers_run_in_order_while_the_result_is_pending() {
    assert_eq!(
        ok("const log = [];\n\
            setTimeout(() => log.push('b'), 10);\n\
            setTimeout(() => log.push('a'), 0);\n\
            setTimeout((x, y) => log.push(x + y), 0, 'c', 'd');\n\
            Promise.resolve().then(() => log.push('micro'));\n\
            await new Promise((r) => setTimeout(r, 20));\n\
            log"),
        r#"["micro","a","cd","b"]"#
    );
    assert_eq!(
        ok("let n = 0;\n\
            const done = await new Promise((resolve) => {\n\
              const id = setInterval(() => { n++; if (n === 3) { clearInterval(id); setTimeout(() => resolve(n), 5); } }, 1);\n\
            });\n\
            [done, n]"),
        "[3,3]"
    );
    // A microtask queued by a timer runs before the next timer.
    assert_eq!(
        ok("const log = [];\n\
            setTimeout(() => { log.push(1); queueMicrotask(() => log.push(2)); }, 0);\n\
            setTimeout(() => log.push(3), 0);\n\
            await new Promise((r) => setTimeout(r, 1));\n\
            log"),
        "[1,2,3]"
    );
}

#[test]
fn timers_are_cancelled_when_the_result_is_ready() {
    let mut j = job("setTimeout(() => console.log('late'), 0);\n\
                     setInterval(() => console.log('again'), 1);\n\
                     setTimeout(() => console.log('much later'), 60000);\n\
                     'done'");
    j.timeout_ms = 500;
    let out = execute(&j);
    assert_eq!(out.result.unwrap(), "\"done\"");
    assert!(out.logs.is_empty(), "{:?}", out.logs);
    // A cleared timer is gone from the schedule: nothing is left to run.
    let mut j = job(
        "const id = setTimeout(() => {}, 60000); clearTimeout(id); await new Promise(() => {})",
    );
    j.timeout_ms = 500;
    let e = err(j);
    assert_eq!(e.kind, ErrorKind::Runtime);
    assert!(e.message.contains("never settles"), "{e:?}");
}

#[test]
fn a_timer_past_the_deadline_is_a_timeout() {
    let mut j = job("await new Promise((r) => setTimeout(r, 5000)); 'never'");
    j.timeout_ms = 100;
    let out = execute(&j);
    assert_eq!(out.result.unwrap_err().kind, ErrorKind::Timeout);
    assert!(out.recycle);
    // An interval that never resolves anything ends at the deadline too.
    let mut j = job("setInterval(() => {}, 1); await new Promise(() => {})");
    j.timeout_ms = 100;
    assert_eq!(err(j).kind, ErrorKind::Timeout);
}

#[test]
fn timer_errors_and_limits() {
    let e = err(job(
        "setTimeout(() => { throw new RangeError('boom') }, 0); await new Promise((r) => setTimeout(r, 5))",
    ));
    assert_eq!(
        (e.name.as_str(), e.message.as_str()),
        ("RangeError", "boom")
    );
    let e = err(job(
        "for (let i = 0; i <= 1000; i++) setTimeout(() => {}, 1000)",
    ));
    assert_eq!(e.name, "RangeError");
    assert!(e.message.contains("too many timers"), "{e:?}");
    assert_eq!(
        ok("for (let i = 0; i < 1000; i++) clearTimeout(setTimeout(() => {}, 1000)); for (let i = 0; i < 1000; i++) setTimeout(() => {}, 1000); 'ok'"),
        "\"ok\""
    );
    assert_eq!(err(job("setTimeout('code', 0)")).name, "TypeError");
    let mut j =
        job("[typeof setTimeout, typeof setInterval, typeof clearTimeout, typeof queueMicrotask]");
    j.preset = Preset::Minimal;
    assert_eq!(
        execute(&j).result.unwrap(),
        r#"["undefined","undefined","undefined","function"]"#
    );
}

fn agent(code: &str) -> ExecuteJob {
    ExecuteJob {
        preset: Preset::Agent,
        ..job(code)
    }
}

/// Runs an agent job whose fetches are answered by `host` instead of a supervisor.
fn agent_with(code: &str, host: fetch::HostFetch) -> Result<String, JobError> {
    execute_prepared(None, &agent(code), Some(host)).result
}

#[test]
fn headers_are_case_insensitive_ordered_and_checked() {
    let code = r#"
        const h = new Headers({ 'Content-Type': 'text/plain', 'X-A': ' 1 ' });
        h.append('x-a', '2');
        h.set('X-B', 'b');
        h.append('Set-Cookie', 'a=1');
        h.append('set-cookie', 'b=2');
        const seen = [];
        h.forEach((v, k) => seen.push(`${k}=${v}`));
        const errors = [];
        for (const f of [() => h.append('bad name', 'x'), () => h.set('x', 'a\nb'),
                         () => new Headers([['only-one']]), () => new Headers(5)]) {
          try { f(); errors.push('none'); } catch (e) { errors.push(e.name); }
        }
        h.delete('X-B');
        const copy = new Headers(h);
        copy.set('x-a', 'replaced');
        return [h.get('x-A'), h.get('missing'), h.has('CONTENT-TYPE'), h.has('x-b'), seen,
                [...h].length, [...h.keys()], copy.get('x-a'), h.get('x-a'), errors,
                Object.prototype.toString.call(h), Object.isFrozen(Headers.prototype)];
    "#;
    assert_eq!(
        ok_job(agent(code)),
        r#"["1, 2",null,true,false,["content-type=text/plain","set-cookie=a=1","set-cookie=b=2","x-a=1, 2","x-b=b"],4,["content-type","set-cookie","set-cookie","x-a"],"replaced","1, 2",["TypeError","TypeError","TypeError","TypeError"],"[object Headers]",true]"#
    );
}

fn ok_job(j: ExecuteJob) -> String {
    match execute(&j).result {
        Ok(json) => json,
        Err(e) => panic!("{:?} failed: {e:?}", j.code),
    }
}

#[test]
fn request_and_response_constructors_follow_fetch_rules() {
    let code = r#"
        const out = {};
        const r = new Response('héllo', { status: 201, statusText: 'Made', headers: { A: 'b' } });
        out.resp = [r.status, r.ok, r.statusText, r.headers.get('content-type'), r.headers.get('a'),
                    r.bodyUsed, await r.clone().text(), await r.text(), r.bodyUsed];
        const bin = new Response(new Uint8Array([1, 2, 3]));
        out.bin = Array.from(new Uint8Array(await bin.arrayBuffer()));
        out.bom = await new Response(new Uint8Array([0xEF, 0xBB, 0xBF, 0x61, 0xFF])).text();
        out.json = await Response.json({ x: [1] }).json();
        out.redirect = [Response.redirect('https://a.example/', 301).status,
                        Response.redirect('https://a.example/').headers.get('location')];
        const q = new Request('https://api.example.com/x', { method: 'post', body: 'b',
                                                              headers: [['X', '1']] });
        const q2 = new Request(q, { method: 'PUT' });
        out.req = [q.method, q.url, q.redirect, q.headers.get('x'), q2.method, await q2.text(),
                   q.bodyUsed];
        out.errors = [];
        for (const f of [() => new Request('/relative'), () => new Request('https://a/', { body: 'x' }),
            () => new Request('https://a/', { method: 'CONNECT' }),
            () => new Request('https://a/', { redirect: 'sometimes' }),
            () => new Response('x', { status: 99 }), () => new Response({}),
            () => Response.redirect('https://a/', 200),
            () => Response.redirect('https://a/').headers.set('x', 'y')]) {
          try { f(); out.errors.push('none'); } catch (e) { out.errors.push(e.name); }
        }
        out.frozen = [Request, Response, Headers, Request.prototype, Response.prototype,
                      Object.getPrototypeOf(Response.prototype), fetch].every(Object.isFrozen);
        Response.prototype.text = () => 'x';
        out.assign = Response.prototype.text.name;
        return out;
    "#;
    let got: serde_json::Value = serde_json::from_str(&ok_job(agent(code))).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "resp": [201, true, "Made", "text/plain;charset=UTF-8", "b", false, "héllo", "héllo", true],
            "bin": [1, 2, 3],
            "bom": "a\u{fffd}",
            "json": {"x": [1]},
            "redirect": [301, "https://a.example/"],
            "req": ["POST", "https://api.example.com/x", "follow", "1", "PUT", "b", true],
            "errors": ["TypeError", "TypeError", "TypeError", "TypeError", "RangeError",
                       "TypeError", "RangeError", "TypeError"],
            "frozen": true,
            "assign": "text",
        })
    );
}

#[test]
fn fetch_hands_the_request_to_the_host_and_builds_the_response() {
    use isolate_shared::message::{FetchResponse, RedirectMode};
    use std::cell::RefCell;
    use std::rc::Rc;
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    let host: fetch::HostFetch = Box::new(move |req| {
        log.borrow_mut().push(req.clone());
        if req.url.contains("deny") {
            return Err("fetch to deny.example denied by egress policy: no".into());
        }
        Ok(FetchResponse {
            status: 200,
            status_text: "OK".into(),
            url: req.url.clone(),
            redirected: true,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{\"got\":\"\xff\"}".to_vec(),
        })
    });
    let code = r#"
        const r = await fetch('https://api.example.com/a?b=c', {
          method: 'PATCH', headers: new Headers({ 'X-Key': 'v' }),
          body: new Uint8Array([104, 105]), redirect: 'manual' });
        let denied;
        try { await fetch('https://deny.example/'); } catch (e) { denied = `${e.name}: ${e.message}`; }
        let again;
        try { r.headers.set('a', 'b'); } catch (e) { again = e.name; }
        const lone = await fetch('https://api.example.com/s', { method: 'POST', body: 'a\uD800b' });
        return [r.status, r.url, r.redirected, r.type, (await r.text()), denied, again];
    "#;
    let result = agent_with(code, host).unwrap();
    assert_eq!(
        result,
        r#"[200,"https://api.example.com/a?b=c",true,"basic","{\"got\":\"\ufffd\"}","TypeError: fetch to deny.example denied by egress policy: no","TypeError"]"#
            .replace("\\ufffd", "\u{fffd}")
    );
    let seen = seen.borrow();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].method, "PATCH");
    assert_eq!(
        seen[0].headers,
        vec![("x-key".to_string(), "v".to_string())]
    );
    assert_eq!(seen[0].body, b"hi");
    assert_eq!(seen[0].redirect, RedirectMode::Manual);
    assert!(seen[1].body.is_empty());
    assert_eq!(
        seen[2].body,
        "a\u{fffd}b".as_bytes(),
        "lone surrogates become U+FFFD"
    );
    assert_eq!(
        seen[2].headers,
        vec![(
            "content-type".to_string(),
            "text/plain;charset=UTF-8".to_string()
        )]
    );

    // Without a host (no supervisor), fetch rejects; other presets have no fetch at all.
    let e = err(agent("await fetch('https://a.example/')"));
    assert_eq!(e.name, "TypeError");
    assert_eq!(
        e.message,
        "fetch is not available here: no supervisor to ask"
    );
    assert_eq!(ok("typeof fetch"), "\"undefined\"");
}

#[test]
fn user_code_cannot_tamper_with_fetch_internals() {
    let host: fetch::HostFetch = Box::new(|req| {
        Ok(isolate_shared::message::FetchResponse {
            status: 200,
            status_text: "OK".into(),
            url: req.url,
            redirected: false,
            headers: vec![],
            body: b"[1]".to_vec(),
        })
    });
    let code = r#"
        globalThis.Promise = function () { throw new Error('hijacked'); };
        globalThis.Uint8Array = null; JSON.parse = () => 'hijacked'; String = null;
        const r = await fetch('https://a.example/');
        return await r.json();
    "#;
    assert_eq!(agent_with(code, host).unwrap(), "[1]");
}

#[test]
fn a_fetch_that_returns_past_the_deadline_ends_the_execution_as_timeout() {
    let host: fetch::HostFetch = Box::new(|_| {
        std::thread::sleep(std::time::Duration::from_millis(120));
        Err("fetch timed out after 60 ms".into())
    });
    let mut j = agent("try { await fetch('https://a.example/'); } catch (e) { 'caught' }");
    j.timeout_ms = 60;
    let e = execute_prepared(None, &j, Some(host)).result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e:?}");
}

/// A runtime restored from its slot's snapshot is as fresh as a new one: what a job defined,
/// changed or left scheduled is gone, and the next job runs as if it were the first.
#[test]
fn a_restored_runtime_keeps_nothing_of_the_last_job() {
    for (preset, in_file) in [
        (Preset::Compute, false),
        (Preset::Data, true),
        (Preset::Minimal, false),
    ] {
        let build = if in_file {
            Pristine::for_zygote
        } else {
            Pristine::new
        };
        let mut p = build(preset).expect("region slots").expect("a runtime");
        let run = |p: &mut Pristine, code: &str| {
            let mut j = job(code);
            j.preset = preset;
            let outcome = p.execute(&j, None);
            p.reset();
            outcome
                .result
                .unwrap_or_else(|e| panic!("{code:?} failed: {e:?}"))
        };
        let first = "[typeof leaked, Object.getOwnPropertyNames(globalThis).length, \
                     typeof JSON, typeof late]";
        let clean = run(&mut p, first);
        assert_eq!(
            run(
                &mut p,
                "globalThis.leaked = 1; delete globalThis.JSON; \
                 Promise.resolve().then(() => { globalThis.late = 1 }); 2"
            ),
            "2"
        );
        assert_eq!(run(&mut p, first), clean, "{preset:?}");
        assert!(clean.starts_with("[\"undefined\","), "{clean}");
        assert!(clean.ends_with(",\"object\",\"undefined\"]"), "{clean}");
    }
}

/// A job in a slot may grow its heap far past the prepared runtime's, up to the memory
/// limit, which still holds; the slot is then restored and gives the memory back.
#[test]
fn slots_grow_to_the_memory_limit_and_restore_after_it() {
    let mut p = Pristine::new(Preset::Compute)
        .expect("region slots")
        .expect("a runtime");
    let grow = job("const a = []; for (let i = 0; i < 3e5; i++) a.push('x' + i); a.length");
    let outcome = p.execute(&grow, None);
    assert_eq!(outcome.result.as_deref(), Ok("300000"));
    assert!(
        outcome.heap_peak_bytes > 10 << 20,
        "{}",
        outcome.heap_peak_bytes
    );
    p.reset();
    let mut hog = job("const a = []; while (true) a.push(new Array(1000).fill(1)); 1");
    hog.limits.memory_bytes = 32 << 20;
    let outcome = p.execute(&hog, None);
    assert_eq!(
        outcome.result.map_err(|e| e.kind),
        Err(ErrorKind::MemoryLimit)
    );
    assert!(
        outcome.heap_peak_bytes <= 33 << 20,
        "{}",
        outcome.heap_peak_bytes
    );
    p.reset();
    let outcome = p.execute(&job("[1, 2].map((x) => x * 2)"), None);
    assert_eq!(outcome.result.as_deref(), Ok("[2,4]"));
    assert!(
        outcome.heap_peak_bytes < 1 << 20,
        "{}",
        outcome.heap_peak_bytes
    );
}

/// `Math.random` continues one sequence across the jobs of a restored runtime instead of
/// starting the snapshot's again.
#[test]
fn a_restored_runtime_draws_new_random_numbers() {
    let mut p = Pristine::new(Preset::Compute)
        .expect("region slots")
        .expect("a runtime");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let outcome = p.execute(&job("Math.random()"), None);
        p.reset();
        assert!(seen.insert(outcome.result.expect("a number")));
    }
}

/// The logs, the result and an error's texts of a job in a slot are copied out of it: they
/// stay intact after the slot is restored and used again.
#[test]
fn outcomes_outlive_the_restore_of_their_slot() {
    let mut p = Pristine::new(Preset::Data)
        .expect("region slots")
        .expect("a runtime");
    let mut j = job("console.log('a'.repeat(5000)); ({big: 'b'.repeat(10000)})");
    j.preset = Preset::Data;
    let kept = p.execute(&j, None);
    p.reset();
    let mut other = job("console.log('c'.repeat(5000)); throw new TypeError('d'.repeat(3000))");
    other.preset = Preset::Data;
    let failed = p.execute(&other, None);
    p.reset();
    let again = p.execute(&j, None);
    assert_eq!(kept.result, again.result);
    assert_eq!(kept.logs[0].message, "a".repeat(5000));
    assert!(kept.result.as_deref().is_ok_and(|r| r.len() > 10_000));
    let e = failed.result.expect_err("thrown");
    assert_eq!(e.message, "d".repeat(3000));
    assert_eq!(failed.logs[0].message, "c".repeat(5000));
}
