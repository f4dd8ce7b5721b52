//! TypeScript: `language: "typescript"` on `/execute` and `/validate`, and the `/deno` route.
//! The types are stripped inside the sandboxed worker and the result runs in QuickJS.
//!
//! `deno_runs_typescript_function_bodies_with_data` and `deno_timeouts_have_their_own_default_and_cap`
//! need the `data` preset; `deno_net_permission_gives_the_agent_preset` needs the `agent`
//! preset and its `fetch`. They depend only on `data`, `console`, TypeScript syntax and
//! `typeof fetch === "function"`. The other tests need neither.

use serde_json::{json, Value};

use crate::common::Service;

fn ts(s: &Service, code: &str, status: u16) -> Value {
    s.execute(json!({"code": code, "language": "typescript"}), status)
}

fn deno(s: &Service, body: Value, status: u16) -> Value {
    let res = s.post("/deno", &body.to_string());
    assert_eq!(res.status, status, "{body} answered {}", res.body);
    res.json()
}

fn validate(s: &Service, body: Value, status: u16) -> Value {
    let res = s.post("/validate", &body.to_string());
    assert_eq!(res.status, status, "{body} answered {}", res.body);
    res.json()
}

#[test]
fn typescript_syntax_runs_on_execute() {
    let s = Service::start();
    let cases: &[(&str, &str, Value)] = &[
        (
            "interfaces and generics",
            "interface Box<T> { value: T }\nfunction open<T>(b: Box<T>): T { return b.value }\nreturn open<number>({ value: 41 }) + 1",
            json!(42),
        ),
        (
            "type-only imports and exports are erased",
            "import type { Thing } from 'things';\nexport type Alias = Thing;\nconst t = { n: 2 } as unknown as Thing;\nreturn (t as any).n",
            json!(2),
        ),
        (
            "as and satisfies",
            "const cfg = { port: 80 } satisfies { port: number };\nreturn (cfg.port as number) + 1",
            json!(81),
        ),
        (
            "non-null assertions and optional chaining",
            "const m = new Map<string, { v?: number }>([['a', {}]]);\nreturn [m.get('a')!.v ?? 'none', m.get('b')?.v]",
            json!(["none", null]),
        ),
        (
            "async and await",
            "async function twice(n: number): Promise<number> { return n * 2 }\nconst r: number = await twice(21);\nreturn r",
            json!(42),
        ),
        (
            "script mode: the last expression",
            "type N = number;\nconst a: N = 3;\na * a",
            json!(9),
        ),
        (
            "classes with modifiers, abstract members and implements",
            "interface Named { name(): string }\nabstract class Base implements Named {\n  private readonly id: number = 7;\n  abstract name(): string;\n  protected get n(): number { return this.id }\n}\nclass K extends Base { name() { return 'k' + this.n } }\nreturn new K().name()",
            json!("k7"),
        ),
        (
            "type errors that are valid JavaScript still run",
            "const n: number = 'not a number' as any;\nconst s: string = 5 as unknown as string;\nreturn [n, s]",
            json!(["not a number", 5]),
        ),
        (
            "declare and type-only namespaces are erased",
            "declare const injected: number;\nnamespace Types { export type T = string }\nreturn typeof injected",
            json!("undefined"),
        ),
    ];
    for (name, code, want) in cases {
        let res = ts(&s, code, 200);
        assert_eq!(&res["result"], want, "{name}: {res}");
        assert_eq!(res["success"], true);
    }
    // The `ts` alias, and JavaScript stays the default.
    let res = s.execute(
        json!({"code": "const a: number = 1; a", "language": "ts"}),
        200,
    );
    assert_eq!(res["result"], 1);
    let res = s.execute(json!({"code": "const a: number = 1; a"}), 422);
    assert_eq!(res["error"]["name"], "SyntaxError");
    let res = s.execute(json!({"code": "1", "language": "coffee"}), 400);
    assert!(
        res["error"].as_str().unwrap().contains("typescript"),
        "{res}"
    );
}

#[test]
fn unsupported_constructs_are_named_with_their_position() {
    let s = Service::start();
    let cases: &[(&str, &str, u32, u32)] = &[
        ("const a = 1;\nenum Color { Red }", "`enum`", 2, 1),
        (
            "let x = 1;\nnamespace N { export const v = 1 }",
            "`namespace`",
            2,
            1,
        ),
        (
            "class P {\n  constructor(private x: number) {}\n}",
            "parameter properties",
            2,
            23,
        ),
        (
            "import fs = require('fs');",
            "`import x = require(...)`",
            1,
            1,
        ),
        ("let v: any = 1;\nlet n = <number>v;", "`<T>x`", 2, 9),
        ("export = 1;", "`export =`", 1, 1),
        (
            "const a = 1;\nimport x from 'y';",
            "`import` declarations",
            2,
            1,
        ),
        ("export const z = 1;", "`export` declarations", 1, 1),
        ("@sealed\nclass D {}", "decorators", 1, 1),
    ];
    for (code, named, line, column) in cases {
        let res = ts(&s, code, 422);
        let e = &res["error"];
        assert_eq!(e["type"], "RUNTIME", "{code}: {res}");
        assert_eq!(e["name"], "SyntaxError", "{code}: {res}");
        assert!(
            e["message"].as_str().unwrap().contains(named),
            "{code}: {res}"
        );
        assert_eq!(
            (e["line"].clone(), e["column"].clone()),
            (json!(line), json!(column)),
            "{code}: {res}"
        );
    }
    // The same import and export errors in JavaScript.
    let res = s.execute(json!({"code": "import x from 'y'; x"}), 422);
    assert!(res["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("`import` declarations are not supported"));
    let res = s.execute(json!({"code": "export default 1"}), 422);
    assert!(res["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("`export` declarations are not supported"));
}

#[test]
fn runtime_errors_point_at_the_typescript_source() {
    let s = Service::start();
    let code = "interface User {\n  name: string;\n  address?: { city: string };\n}\nconst users: User[] = [{ name: 'a' }];\nconst first: User = users[0]!;\nconst city: string = first.address!.city;\nreturn city;";
    let res = ts(&s, code, 422);
    let e = &res["error"];
    assert_eq!(e["name"], "TypeError", "{res}");
    // Line 7, at `first.address!.city` (QuickJS points at the start of the member chain).
    assert_eq!(
        (e["line"].clone(), e["column"].clone()),
        (json!(7), json!(22)),
        "{res}"
    );
    assert!(
        e["stack"].as_str().unwrap().contains("input.js:7:22"),
        "{res}"
    );
    // A thrown error on the first line of a function body keeps its column too.
    // Every position is the one QuickJS gives for the same JavaScript, with the types
    // replaced by whitespace (or, for multi-byte type syntax, a comment of the same bytes).
    for typed in [
        "const n: number = 1; throw new Error('x' + n)",
        "const n: number = 1; return (n as any).x.y",
        "let s: 'é' | 'è' = 'é'; return (s as any).a.b",
    ] {
        let plain = typed
            .replace(": number", "        ")
            .replace(" as any", "       ")
            .replace(": 'é' | 'è'", "/*'é'|'è'*/");
        assert_eq!(plain.len(), typed.len());
        let res = ts(&s, typed, 422);
        let js = s.execute(json!({"code": plain}), 422);
        assert_eq!(res["error"]["message"], js["error"]["message"], "{res}");
        assert_eq!(res["error"]["line"], js["error"]["line"], "{res}");
        assert_eq!(
            res["error"]["column"], js["error"]["column"],
            "{typed}: {res} vs {js}"
        );
        assert!(res["error"]["column"].as_u64() > Some(20), "{res}");
    }
}

#[test]
fn validate_strips_typescript() {
    let s = Service::start();
    let res = validate(
        &s,
        json!({"code": "const a: number = 1;\nreturn a as number", "language": "typescript"}),
        200,
    );
    assert_eq!(res, json!({"valid": true}));
    let res = validate(
        &s,
        json!({"code": "const a: number = 1;\nconst b: string = ;", "language": "typescript"}),
        422,
    );
    assert_eq!(res["valid"], false);
    assert_eq!(
        (res["line"].clone(), res["column"].clone()),
        (json!(2), json!(19)),
        "{res}"
    );
    let res = validate(
        &s,
        json!({"code": "let q = 1;\nenum E { A }", "language": "ts"}),
        422,
    );
    assert!(res["error"].as_str().unwrap().contains("`enum`"), "{res}");
    assert_eq!(
        (res["line"].clone(), res["column"].clone()),
        (json!(2), json!(1))
    );
    // Without the language, type syntax is a JavaScript syntax error.
    validate(&s, json!({"code": "const a: number = 1"}), 422);
}

#[test]
fn deno_runs_typescript_function_bodies_with_data() {
    let s = Service::start();
    let res = deno(
        &s,
        json!({
            "code": "interface Order { qty: number; price: number }\nconst orders = data.orders as Order[];\nconsole.log('orders', orders.length);\nconst total = orders.reduce((sum: number, o: Order) => sum + o.qty * o.price, 0);\nreturn { total, tag: data.tag! };",
            "data": {"orders": [{"qty": 2, "price": 3}, {"qty": 1, "price": 4}], "tag": "t"},
        }),
        200,
    );
    assert_eq!(res["success"], true);
    assert_eq!(res["result"], json!({"total": 10, "tag": "t"}));
    assert_eq!(res["logs"][0]["message"], "orders 2");
    assert_eq!(res["stats"]["preset"], "data");
    assert_eq!(res["stats"]["timeout"], 30000);
    assert!(res["executionId"].is_string());
    // `data` may be any JSON value, or absent (null); JavaScript works as well as TypeScript.
    assert_eq!(
        deno(&s, json!({"code": "return data * 2", "data": 21}), 200)["result"],
        42
    );
    assert_eq!(
        deno(&s, json!({"code": "return data === null"}), 200)["result"],
        true
    );
    // Always a function body: `await` is allowed and without `return` the result is null.
    let res = deno(
        &s,
        json!({"code": "const v: number = await Promise.resolve(5); v"}),
        200,
    );
    assert_eq!(res["result"], Value::Null);
    // Failures answer as /execute does.
    let res = deno(
        &s,
        json!({"code": "const a: string = 'x';\nthrow new TypeError(a)"}),
        422,
    );
    assert_eq!(res["success"], false);
    assert_eq!(res["error"]["type"], "RUNTIME");
    let js = s.execute(
        json!({"code": "const a         = 'x';\nthrow new TypeError(a)"}),
        422,
    );
    assert_eq!(res["error"]["line"], 2);
    assert_eq!(
        res["error"]["column"], js["error"]["column"],
        "{res} vs {js}"
    );
    let res = deno(&s, json!({"code": "enum E { A }\nreturn 1"}), 422);
    assert!(res["error"]["message"].as_str().unwrap().contains("`enum`"));
    assert_eq!(deno(&s, json!({}), 400)["error"], "Missing \"code\" field");
}

#[test]
fn deno_timeouts_have_their_own_default_and_cap() {
    let s = Service::start();
    let res = deno(&s, json!({"code": "return 1", "timeout": 45000}), 200);
    assert_eq!(res["stats"]["timeout"], 45000);
    let res = deno(&s, json!({"code": "return 1", "timeout": 999999}), 200);
    assert_eq!(res["stats"]["timeout"], 60000);
    let res = deno(&s, json!({"code": "while (true) {}", "timeout": 150}), 422);
    assert_eq!(res["error"]["type"], "TIMEOUT");
    assert_eq!(res["stats"]["timeout"], 150);
    deno(&s, json!({"code": "return 1", "timeout": "soon"}), 400);
    let s = Service::with_config(
        "[limits]\ndeno_default_timeout_ms = 1234\ndeno_max_timeout_ms = 2000\n",
    );
    assert_eq!(
        deno(&s, json!({"code": "return 1"}), 200)["stats"]["timeout"],
        1234
    );
    assert_eq!(
        deno(&s, json!({"code": "return 1", "timeout": 5000}), 200)["stats"]["timeout"],
        2000
    );
}

#[test]
fn deno_net_permission_gives_the_agent_preset() {
    let s = Service::start();
    let res = deno(
        &s,
        json!({"code": "return typeof fetch", "permissions": ["net"]}),
        200,
    );
    assert_eq!(res["result"], "function");
    assert_eq!(res["stats"]["preset"], "agent");
    let res = deno(
        &s,
        json!({"code": "return typeof fetch", "permissions": []}),
        200,
    );
    assert_eq!(res["result"], "undefined");
    assert_eq!(res["stats"]["preset"], "data");
}

#[test]
fn deno_refuses_every_permission_but_net() {
    let s = Service::start();
    for p in [
        "read",
        "write",
        "run",
        "env",
        "ffi",
        "sys",
        "hrtime",
        "all",
        "net=example.com",
        "READ",
    ] {
        let res = deno(
            &s,
            json!({"code": "return 1", "permissions": ["net", p]}),
            400,
        );
        let message = res["error"].as_str().unwrap();
        assert!(message.contains(&format!("\"{p}\"")), "{p}: {message}");
        assert!(message.contains("never granted"), "{p}: {message}");
    }
    for bad in [
        json!("net"),
        json!({"net": true}),
        json!([1]),
        json!(["net", null]),
        json!(true),
    ] {
        let res = deno(&s, json!({"code": "return 1", "permissions": bad}), 400);
        assert_eq!(
            res["error"], "Invalid \"permissions\" field: must be an array of strings",
            "{bad}"
        );
    }
}

#[test]
fn deno_is_listed_and_only_answers_post() {
    let s = Service::start();
    let res = s.get("/nope");
    assert_eq!(res.status, 404);
    assert!(res.json()["endpoints"]
        .as_array()
        .unwrap()
        .contains(&json!("POST /deno")));
    let res = s.get("/deno");
    assert_eq!((res.status, res.header("allow")), (405, Some("POST")));
}

#[test]
fn deeply_nested_typescript_is_stripped_on_its_own_stack() {
    let s = Service::start();
    // What QuickJS said: the status, the error type, and whether the error came from the
    // engine (it has a stack trace) rather than from the stripper.
    let outcome = |code: String| {
        let res = s.post(
            "/execute",
            &json!({"code": code, "language": "typescript"}).to_string(),
        );
        let body = res.json();
        (
            res.status,
            body["error"]["type"].as_str().unwrap_or("").to_string(),
            body["error"]["stack"].is_string(),
        )
    };
    // Far deeper than the worker's 8 MiB main stack lets the parser recurse (about 4000 of
    // these): the stripper gets through and QuickJS answers with its own limit.
    let code = format!(
        "const f = {}0;\nreturn typeof f",
        "(a: number) => ".repeat(9000)
    );
    let (status, kind, from_engine) = outcome(code);
    assert_eq!(status, 422);
    assert!(
        kind == "STACK_OVERFLOW" || (kind == "RUNTIME" && from_engine),
        "{kind}"
    );
    // Brackets nested past the bound are refused by name, before parsing.
    let code = format!("return {}1{}", "(".repeat(1500), ")".repeat(1500));
    let res = s.post(
        "/execute",
        &json!({"code": code, "language": "ts"}).to_string(),
    );
    assert_eq!(res.status, 422);
    let message = res.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(message.contains("nests brackets deeper"), "{message}");
    assert_eq!(ts(&s, "const ok: number = 1; ok", 200)["result"], 1);
}

/// Long chains of prefix operators, assignments and arrows (hundreds of kilobytes) kept the
/// stripper busy until the timeout; they are refused at once with a `SyntaxError`, on
/// `/execute`, `/validate` and `/deno` alike.
#[test]
fn long_operator_chains_are_refused_promptly() {
    let s = Service::start();
    for (shape, count) in [("!", 300_000), ("a=", 150_000), ("()=>", 100_000)] {
        let code = format!("{}1", shape.repeat(count));
        let started = std::time::Instant::now();
        let body = s.execute(
            json!({"code": code, "language": "typescript", "timeout": 30000}),
            422,
        );
        assert!(
            started.elapsed().as_secs() < 5,
            "{shape}: {:?}",
            started.elapsed()
        );
        assert_eq!(body["error"]["type"], "RUNTIME", "{shape}: {body}");
        assert_eq!(body["error"]["name"], "SyntaxError", "{shape}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains("chains more than"), "{shape}: {message}");
        let v = validate(&s, json!({"code": code, "language": "typescript"}), 422);
        assert_eq!(v["valid"], false, "{shape}");
        let started = std::time::Instant::now();
        deno(&s, json!({"code": format!("return {code}")}), 422);
        assert!(started.elapsed().as_secs() < 5, "{shape} on /deno");
    }
    assert_eq!(ts(&s, "const ok: number = 1; ok", 200)["result"], 1);
}
