//! WebAssembly end to end: `/wasm/compile` and `/wasm/run` against real, locked-down workers.
//! Test modules are written in WAT and assembled here with the `wat` crate.

use std::time::{Duration, Instant};

use base64::Engine as _;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::common::{alive, busy_worker, descendants, eventually, request, zygote_pid, Service};

const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32)
    local.get 0 local.get 1 i32.add))"#;

fn b64(wat: &str) -> String {
    let bytes = wat::parse_str(wat).expect("valid WAT");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn compile(s: &Service, wat: &str) -> Value {
    let res = s.post("/wasm/compile", &json!({ "bytes": b64(wat) }).to_string());
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()
}

fn compile_id(s: &Service, wat: &str) -> String {
    compile(s, wat)["moduleId"].as_str().unwrap().to_string()
}

fn run(s: &Service, body: Value, status: u16) -> Value {
    let res = s.post("/wasm/run", &body.to_string());
    assert_eq!(res.status, status, "{body} answered {}", res.body);
    res.json()
}

fn proc_field(pid: u32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(&format!("{key}:"))
            .map(|v| v.trim().to_string())
    })
}

#[test]
fn add_runs_in_locked_down_workers_and_compiles_once() {
    let s = Service::start();
    let first = compile(&s, ADD);
    let id = first["moduleId"].as_str().unwrap();
    assert_eq!(id.len(), 64, "content hash: {first}");
    assert_eq!(
        first["exports"],
        json!([{"name": "add", "kind": "function"}])
    );
    assert_eq!(first["imports"], json!([]));
    assert_eq!(first["cached"], false);
    assert!(first["compileTime"].as_str().unwrap().ends_with("ms"));
    let again = compile(&s, ADD);
    assert_eq!(again["moduleId"], first["moduleId"]);
    assert_eq!(again["cached"], true);
    let stats = s.get("/stats").json();
    assert_eq!(stats["wasm"]["compiles"], 1, "{stats}");
    assert_eq!(stats["wasm"]["modules"], 1);
    // Concurrent uploads of one new module compile it once.
    let fresh = b64(r#"(module (func (export "one") (result i32) i32.const 1))"#);
    let addr = s.addr;
    let uploads: Vec<_> = (0..6)
        .map(|_| {
            let body = json!({ "bytes": fresh }).to_string();
            std::thread::spawn(move || request(addr, "POST", "/wasm/compile", &[], body.as_bytes()))
        })
        .collect();
    let ids: std::collections::HashSet<String> = uploads
        .into_iter()
        .map(|u| {
            let res = u.join().unwrap();
            assert_eq!(res.status, 200, "{}", res.body);
            res.json()["moduleId"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    let stats = s.get("/stats").json();
    assert_eq!(
        stats["wasm"]["compiles"], 2,
        "one more compilation: {stats}"
    );
    assert_eq!(stats["wasm"]["modules"], 2);

    // Several runs, so that several workers load the module and later ones find it loaded.
    for i in 0..12 {
        let out = run(&s, json!({"moduleId": id, "args": [i, 3]}), 200);
        assert_eq!(out["success"], true);
        assert_eq!(out["result"], i + 3);
        assert_eq!(out["entry"], "add");
        assert_eq!(out["stats"]["exports"], json!(["add"]));
        for k in ["instantiateTime", "callTime"] {
            assert!(out["stats"][k].as_str().unwrap().ends_with("ms"), "{out}");
        }
    }
    // The workers that ran it are locked down: seccomp filter mode on every one.
    let workers = descendants(zygote_pid(&s));
    assert!(!workers.is_empty());
    for pid in workers {
        if let Some(mode) = proc_field(pid, "Seccomp") {
            assert_eq!(mode, "2", "worker {pid}");
            assert_eq!(proc_field(pid, "NoNewPrivs").as_deref(), Some("1"));
            assert_eq!(
                proc_field(pid, "Threads").as_deref(),
                Some("1"),
                "worker {pid}"
            );
        }
    }
    let status = s.get("/status").json();
    assert_eq!(status["sandbox"]["seccomp"]["active"], true, "{status}");
    assert_eq!(status["sandbox"]["landlock"]["active"], true, "{status}");
    let stats = s.get("/stats").json();
    assert_eq!(stats["wasm"]["compiles"], 2);
    assert!(stats["wasm"]["hits"].as_u64().unwrap() >= 18, "{stats}");
}

#[test]
fn values_arguments_and_results() {
    let s = Service::start();
    let id = compile_id(
        &s,
        r#"(module
            (func (export "swap") (param i32 i64) (result i64 i32 f64)
                local.get 1 local.get 0 f64.const 1.5)
            (func (export "inc64") (param i64) (result i64) local.get 0 i64.const 1 i64.add)
            (func (export "half") (param f32) (result f32) local.get 0 f32.const 0.5 f32.mul)
            (func (export "nothing")))"#,
    );
    let out = run(
        &s,
        json!({"moduleId": id, "entry": "swap", "args": [7, 8]}),
        200,
    );
    assert_eq!(out["result"], json!([8, 7, 1.5]));
    // Defaults to the first exported function.
    assert_eq!(
        run(&s, json!({"moduleId": id, "args": [1, "2"]}), 200)["result"],
        json!([2, 1, 1.5])
    );
    // i64 beyond 2^53 travels as a decimal string both ways.
    let out = run(
        &s,
        json!({"moduleId": id, "entry": "inc64", "args": ["9007199254740993"]}),
        200,
    );
    assert_eq!(out["result"], "9007199254740994");
    assert_eq!(
        run(
            &s,
            json!({"moduleId": id, "entry": "inc64", "args": [41]}),
            200
        )["result"],
        42
    );
    assert_eq!(
        run(
            &s,
            json!({"moduleId": id, "entry": "half", "args": [3]}),
            200
        )["result"],
        1.5
    );
    assert_eq!(
        run(&s, json!({"moduleId": id, "entry": "nothing"}), 200)["result"],
        Value::Null
    );

    let bad = run(
        &s,
        json!({"moduleId": id, "entry": "swap", "args": [1]}),
        422,
    );
    assert_eq!(bad["error"]["type"], "INVALID_ARGS");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 argument"),
        "{bad}"
    );
    let bad = run(
        &s,
        json!({"moduleId": id, "entry": "inc64", "args": ["twelve"]}),
        422,
    );
    assert_eq!(bad["error"]["type"], "INVALID_ARGS", "{bad}");
    let bad = run(
        &s,
        json!({"moduleId": id, "entry": "inc64", "args": [{"x": 1}]}),
        422,
    );
    assert_eq!(bad["error"]["type"], "INVALID_ARGS", "{bad}");
    let bad = run(
        &s,
        json!({"moduleId": id, "entry": "swap", "args": [1.5, 2]}),
        422,
    );
    assert_eq!(bad["error"]["type"], "INVALID_ARGS", "{bad}");
    let bad = run(&s, json!({"moduleId": id, "entry": "nope"}), 422);
    assert_eq!(bad["error"]["type"], "NO_CALLABLE_EXPORT");

    // Request errors.
    let res = s.post("/wasm/run", r#"{"args": []}"#);
    assert_eq!(
        (res.status, res.json()["error"].clone()),
        (400, json!("Missing \"moduleId\" field"))
    );
    let out = run(&s, json!({"moduleId": "does-not-exist"}), 422);
    assert_eq!(out["error"]["type"], "MODULE_NOT_FOUND");
    let res = s.post("/wasm/run", &json!({"moduleId": id, "args": 3}).to_string());
    assert_eq!(res.status, 400, "{}", res.body);
    let res = s.post("/wasm/run", "{nope");
    assert_eq!(res.status, 400);
    // A module with no functions.
    let empty = compile_id(&s, r#"(module (memory (export "m") 1))"#);
    assert_eq!(
        run(&s, json!({"moduleId": empty}), 422)["error"]["type"],
        "NO_CALLABLE_EXPORT"
    );
}

#[test]
fn traps_limits_and_timeouts_are_named() {
    let s = Service::with_config("[wasm]\nmemory_bytes = 16777216\n");
    let id = compile_id(
        &s,
        r#"(module
            (memory (export "memory") 1)
            (func (export "boom") unreachable)
            (func $f (export "recurse") (param i32) (result i32)
                (i32.add (call $f (local.get 0)) (i32.const 1)))
            (func (export "grow") (result i32)
                (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
                (i32.const 0))
            (func (export "spin") (loop $l (br $l)))
            (func (export "div") (param i32) (result i32) (i32.div_s (i32.const 1) (local.get 0)))
            (func (export "pages") (result i32) (drop (memory.grow (i32.const 2))) (memory.size))
            (func (export "oob") (result i32) (i32.load (i32.const 0x7ffffff0))))"#,
    );
    let out = run(&s, json!({"moduleId": id, "entry": "boom"}), 422);
    assert_eq!(out["success"], false);
    assert_eq!(out["error"]["type"], "WASM_TRAP");
    assert_eq!(out["error"]["trapCode"], "unreachable");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{out}"
    );

    let out = run(
        &s,
        json!({"moduleId": id, "entry": "recurse", "args": [1]}),
        422,
    );
    assert_eq!(
        (
            out["error"]["type"].clone(),
            out["error"]["trapCode"].clone()
        ),
        (json!("WASM_TRAP"), json!("stack_overflow")),
        "{out}"
    );

    let out = run(
        &s,
        json!({"moduleId": id, "entry": "div", "args": [0]}),
        422,
    );
    assert_eq!(out["error"]["trapCode"], "integer_division_by_zero");

    let out = run(&s, json!({"moduleId": id, "entry": "grow"}), 422);
    assert_eq!(out["error"]["type"], "MEMORY_LIMIT", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("16777216"),
        "{out}"
    );

    let started = Instant::now();
    let out = run(
        &s,
        json!({"moduleId": id, "entry": "spin", "timeout": 300}),
        422,
    );
    assert_eq!(out["error"]["type"], "TIMEOUT", "{out}");
    // The engine's own interrupt answered (the supervisor's kill says "worker was stopped").
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeded its timeout"),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // A memory declared larger than the limit fails at instantiation, by name.
    let big = compile_id(
        &s,
        r#"(module (memory (export "memory") 300) (func (export "f")))"#,
    );
    let out = run(&s, json!({"moduleId": big}), 422);
    assert_eq!(out["error"]["type"], "MEMORY_LIMIT", "{out}");

    let out = run(&s, json!({"moduleId": id, "entry": "pages"}), 200);
    assert_eq!(out["result"], 3);
    assert_eq!(out["stats"]["memoryPages"], 3);
    assert_eq!(out["stats"]["memoryBytes"], 3 * 65536);
    // The service still answers normally after all of that.
    assert_eq!(s.execute(json!({"code": "1+1"}), 200)["result"], 2);
    let later = run(
        &s,
        json!({"moduleId": id, "entry": "div", "args": [1]}),
        200,
    );
    assert_eq!(later["result"], 1);
}

const ECHO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $envsz (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 900) "err!")
  (func (export "_start")
    (local $n i32)
    (block $done
      (loop $again
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 4096))
        (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $done (i32.eqz (local.get $n)))
        (i32.store (i32.const 16) (i32.const 1024))
        (i32.store (i32.const 20) (local.get $n))
        (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
        (br $again)))
    (i32.store (i32.const 16) (i32.const 900))
    (i32.store (i32.const 20) (i32.const 4))
    (drop (call $write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24)))
    ;; exit code: 3 + 10 * the number of environment variables
    (drop (call $envsz (i32.const 32) (i32.const 36)))
    (call $exit (i32.add (i32.const 3) (i32.mul (i32.const 10) (i32.load (i32.const 32)))))))"#;

#[test]
fn wasi_commands_get_stdio_and_exit_codes_but_no_files() {
    let s = Service::start();
    let echo = compile(&s, ECHO);
    assert!(echo["imports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["module"] == "wasi_snapshot_preview1"));
    let id = echo["moduleId"].as_str().unwrap();
    let out = run(&s, json!({"moduleId": id, "stdin": "hello, wasm\n"}), 200);
    assert_eq!(out["success"], true, "{out}");
    assert_eq!(out["entry"], "_start");
    assert_eq!(out["stdout"], "hello, wasm\n");
    assert_eq!(out["stderr"], "err!");
    assert_eq!(out["exitCode"], 3);
    let out = run(
        &s,
        json!({"moduleId": id, "stdin": "", "env": {"A": "1", "B": "2"}}),
        200,
    );
    assert_eq!(
        (out["stdout"].clone(), out["exitCode"].clone()),
        (json!(""), json!(23))
    );

    let opener = compile_id(
        &s,
        r#"(module
          (import "wasi_snapshot_preview1" "path_open"
            (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (data (i32.const 100) "/etc/passwd")
          (func (export "_start")
            ;; exit code: prestat errno * 10000 + path_open errno * 100 + sock_accept errno
            (call $exit (i32.add (i32.add
              (i32.mul (call $prestat (i32.const 3) (i32.const 0)) (i32.const 10000))
              (i32.mul (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 11)
                 (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 200)) (i32.const 100)))
              (call $accept (i32.const 3) (i32.const 0) (i32.const 0))))))"#,
    );
    let out = run(&s, json!({"moduleId": opener}), 200);
    // EBADF (8) for the preopen probe and path_open, ENOSYS (52) for the socket call.
    assert_eq!(out["exitCode"], 80852, "{out}");
    assert_eq!(
        out["stubbedImports"],
        json!(["wasi_snapshot_preview1.sock_accept"])
    );
}

#[test]
fn unknown_imports_are_named_or_given_or_stubbed() {
    let s = Service::start();
    let id = compile_id(
        &s,
        r#"(module
            (import "env" "mystery" (func $m (result i32)))
            (import "env" "scale" (global $g i32))
            (func (export "call") (result i32) (i32.mul (call $m) (global.get $g))))"#,
    );
    let out = run(&s, json!({"moduleId": id}), 422);
    assert_eq!(out["error"]["type"], "LINK_ERROR", "{out}");
    let message = out["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("env.mystery") && message.contains("env.scale"),
        "{out}"
    );
    let out = run(
        &s,
        json!({"moduleId": id, "imports": {"env": {"mystery": 21, "scale": 2}}}),
        200,
    );
    assert_eq!(out["result"], 42);
    let out = run(&s, json!({"moduleId": id, "stubImports": true}), 200);
    assert_eq!(out["result"], 0);
    assert_eq!(out["stubbedImports"], json!(["env.mystery", "env.scale"]));
    let res = s.post(
        "/wasm/run",
        &json!({"moduleId": id, "imports": {"env": {"f": [1]}}}).to_string(),
    );
    assert_eq!(res.status, 400, "{}", res.body);
}

#[test]
fn content_hash_ids_cannot_be_taken_over() {
    let s = Service::start();
    let victim = compile_id(&s, ADD);
    assert_eq!(victim.len(), 64);
    let other = b64(ECHO);
    // After the victim's upload, and (for a module not uploaded yet) before it, in any case.
    let not_yet = "ab".repeat(32);
    for id in [victim.clone(), victim.to_uppercase(), not_yet] {
        let res = s.post(
            "/wasm/compile",
            &json!({"bytes": other, "id": id}).to_string(),
        );
        assert_eq!(res.status, 400, "{id}: {}", res.body);
        assert!(res.body.contains("content-hash"), "{}", res.body);
    }
    // The victim's id still runs the victim's module.
    let out = run(
        &s,
        json!({"moduleId": victim, "entry": "add", "args": [2, 3]}),
        200,
    );
    assert_eq!(out["result"], 5, "{out}");
    // Naming a module by its own hash is the same as not naming it.
    let res = s.post(
        "/wasm/compile",
        &json!({"bytes": b64(ADD), "id": victim.to_uppercase()}).to_string(),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["moduleId"], victim.as_str());
}

#[test]
fn export_names_cost_answers_a_bounded_amount() {
    let s = Service::start();
    // 200 exports of 20,000 control characters each: 4 MB of names, 24 MB once JSON-escaped.
    let mut wat = String::from("(module (func $f (result i32) i32.const 7)");
    for i in 0..200 {
        wat.push_str(&format!(
            " (export \"{i:03}{}\" (func $f))",
            "\\01".repeat(20_000)
        ));
    }
    wat.push(')');
    let res = s.post("/wasm/compile", &json!({ "bytes": b64(&wat) }).to_string());
    assert_eq!(res.status, 200, "{}", &res.body[..res.body.len().min(300)]);
    assert!(
        res.body.len() < 2 << 20,
        "a compile answer of {} bytes",
        res.body.len()
    );
    let compiled = res.json();
    assert_eq!(compiled["exportsTruncated"], true);
    let listed = compiled["exports"].as_array().unwrap();
    assert!(!listed.is_empty() && listed.len() < 200, "{}", listed.len());
    let name = listed[0]["name"].as_str().unwrap();
    assert!(
        name.starts_with("000\u{1}") && name.ends_with('…'),
        "{name:.20}"
    );
    let id = compiled["moduleId"].as_str().unwrap();
    let res = s.post("/wasm/run", &json!({ "moduleId": id }).to_string());
    assert_eq!(res.status, 200, "{}", &res.body[..res.body.len().min(300)]);
    assert!(
        res.body.len() < 100 << 10,
        "a run answer of {} bytes",
        res.body.len()
    );
    let out = res.json();
    assert_eq!(out["result"], 7, "{out}");
    assert_eq!(out["stats"]["exportsTruncated"], true);
    assert!(out["entry"].as_str().unwrap().ends_with('…'));
    // A module with a few short names answers them all, with no truncation marks.
    let out = run(
        &s,
        json!({"moduleId": compile_id(&s, ADD), "args": [1, 2]}),
        200,
    );
    assert_eq!(out["stats"]["exports"], json!(["add"]));
    assert!(out["stats"].get("exportsTruncated").is_none(), "{out}");
}

#[test]
fn replacing_an_explicit_id_must_be_asked_for() {
    let s = Service::start();
    let first = s.post(
        "/wasm/compile",
        &json!({"bytes": b64(ADD), "id": "shared-name"}).to_string(),
    );
    assert_eq!(first.status, 200, "{}", first.body);
    // The same bytes again are the same module, answered from the store.
    let again = s.post(
        "/wasm/compile",
        &json!({"bytes": b64(ADD), "id": "shared-name"}).to_string(),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["cached"], true);
    // Other bytes under the name are refused, and the name keeps its module.
    for replace in [json!(null), json!(false)] {
        let res = s.post(
            "/wasm/compile",
            &json!({"bytes": b64(ECHO), "id": "shared-name", "replace": replace}).to_string(),
        );
        assert_eq!(res.status, 409, "{}", res.body);
        assert_eq!(res.json()["type"], "MODULE_EXISTS", "{}", res.body);
    }
    let out = run(
        &s,
        json!({"moduleId": "shared-name", "entry": "add", "args": [2, 3]}),
        200,
    );
    assert_eq!(out["result"], 5, "{out}");
    let res = s.post(
        "/wasm/compile",
        &json!({"bytes": b64(ECHO), "id": "shared-name", "replace": "yes"}).to_string(),
    );
    assert_eq!(res.status, 400, "{}", res.body);
    // Asked for, the replacement happens.
    let res = s.post(
        "/wasm/compile",
        &json!({"bytes": b64(ECHO), "id": "shared-name", "replace": true}).to_string(),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["cached"], false);
    let out = run(&s, json!({"moduleId": "shared-name", "stdin": "hey"}), 200);
    assert_eq!(out["stdout"], "hey", "{out}");
}

#[test]
fn compile_errors_and_bad_requests() {
    let s = Service::start();
    let res = s.post("/wasm/compile", &json!({"bytes": base64::engine::general_purpose::STANDARD.encode(b"\0asm\x01\0\0\0\x01\xff")}).to_string());
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.json()["type"], "COMPILE_ERROR");
    assert!(res.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("Invalid WebAssembly module"));
    let res = s.post(
        "/wasm/compile",
        &json!({"bytes": base64::engine::general_purpose::STANDARD.encode(b"not wasm at all")})
            .to_string(),
    );
    assert_eq!(res.status, 422, "{}", res.body);
    let res = s.post("/wasm/compile", r#"{"bytes": "%%% not base64"}"#);
    assert_eq!(res.status, 400, "{}", res.body);
    let res = s.post("/wasm/compile", "{}");
    assert_eq!(res.status, 400, "{}", res.body);
    let res = s.post(
        "/wasm/compile",
        &json!({"bytes": b64(ADD), "id": "../escape"}).to_string(),
    );
    assert_eq!(res.status, 400, "{}", res.body);
    let res = s.post(
        "/wasm/compile",
        &json!({"bytes": b64(ADD), "id": "my-add.v1"}).to_string(),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["moduleId"], "my-add.v1");
    assert_eq!(
        run(&s, json!({"moduleId": "my-add.v1", "args": [1, 1]}), 200)["result"],
        2
    );
    let res = s.post("/wasm/compile", &json!({"file": "add.wasm"}).to_string());
    assert_eq!(
        res.status, 403,
        "files are off without wasm.module_dir: {}",
        res.body
    );
    // The routes are listed, and GET is answered 405.
    let res = s.get("/nope");
    assert!(res.json()["endpoints"]
        .as_array()
        .unwrap()
        .contains(&json!("POST /wasm/run")));
    assert_eq!(s.get("/wasm/run").status, 405);
}

#[test]
fn files_load_only_from_inside_the_module_directory() {
    let base = std::env::temp_dir().join(format!("isolate-wasm-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let modules = base.join("modules");
    std::fs::create_dir_all(modules.join("sub")).unwrap();
    std::fs::write(modules.join("sub/add.wasm"), wat::parse_str(ADD).unwrap()).unwrap();
    let secret = base.join("secret.wasm");
    std::fs::write(&secret, wat::parse_str(ADD).unwrap()).unwrap();
    std::os::unix::fs::symlink(&secret, modules.join("link.wasm")).unwrap();
    let s = Service::with_config(&format!(
        "[wasm]\nmodule_dir = {:?}\n",
        modules.to_str().unwrap()
    ));
    let ok = s.post("/wasm/compile", r#"{"file": "sub/add.wasm"}"#);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        ok.json()["byteSize"].as_u64(),
        Some(wat::parse_str(ADD).unwrap().len() as u64)
    );
    let inside_abs = modules.join("sub/add.wasm");
    let res = s.post("/wasm/compile", &json!({"file": inside_abs}).to_string());
    assert_eq!(
        res.status, 200,
        "an absolute path inside the directory: {}",
        res.body
    );
    for (file, status) in [
        ("../secret.wasm", 400),
        ("sub/../../secret.wasm", 400),
        // Outside the directory, existing or not, answers as a missing file: no oracle.
        (secret.to_str().unwrap(), 404),
        ("/etc/passwd", 404),
        ("/etc/no-such-file", 404),
        ("link.wasm", 404),
        ("missing.wasm", 404),
        ("sub", 404),
    ] {
        let res = s.post("/wasm/compile", &json!({"file": file}).to_string());
        assert_eq!(res.status, status, "{file}: {}", res.body);
        if status == 404 {
            assert_eq!(
                res.json(),
                json!({"error": "Module file not found in the module directory"}),
                "{file}"
            );
        }
        assert!(
            !res.body.contains(base.to_str().unwrap()),
            "leaks a path: {}",
            res.body
        );
        assert!(!res.body.contains("root:"), "leaks contents: {}", res.body);
    }
    drop(s);
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn compiled_modules_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("isolate-wasm-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = format!("[wasm]\ncache_dir = {:?}\n", dir.to_str().unwrap());
    let id = {
        let mut s = Service::with_config(&config);
        let id = compile_id(&s, ADD);
        let named = s.post(
            "/wasm/compile",
            &json!({"bytes": b64(ECHO), "id": "echo"}).to_string(),
        );
        assert_eq!(named.status, 200, "{}", named.body);
        assert_eq!(s.get("/stats").json()["wasm"]["persistent"], true);
        s.stop();
        id
    };
    let s = Service::with_config(&config);
    let stats = s.get("/stats").json();
    assert_eq!(stats["wasm"]["modules"], 2, "{stats}");
    assert_eq!(stats["wasm"]["compiles"], 0);
    assert_eq!(
        run(&s, json!({"moduleId": id, "args": [40, 2]}), 200)["result"],
        42
    );
    let out = run(&s, json!({"moduleId": "echo", "stdin": "again"}), 200);
    assert_eq!(
        (out["stdout"].clone(), out["exitCode"].clone()),
        (json!("again"), json!(3))
    );
    // Compiling the same bytes again is answered from the restored store.
    assert_eq!(compile(&s, ADD)["cached"], true);
    assert_eq!(s.get("/stats").json()["wasm"]["compiles"], 0);
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stopped_worker_running_wasm_is_killed_at_the_hard_deadline() {
    let s = Service::start();
    let id = compile_id(&s, r#"(module (func (export "spin") (loop $l (br $l))))"#);
    let addr = s.addr;
    let body = json!({"moduleId": id, "timeout": 1000}).to_string();
    let client =
        std::thread::spawn(move || request(addr, "POST", "/wasm/run", &[], body.as_bytes()));
    // A stopped process cannot take its timer signal: only the supervisor can end it.
    let pid = busy_worker(&s);
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGSTOP);
    let res = client.join().unwrap();
    assert_eq!(res.status, 422, "{}", res.body);
    let out = res.json();
    assert_eq!(out["error"]["type"], "TIMEOUT");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the worker was stopped"),
        "{out}"
    );
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "the hung worker still exists"
    );
    assert_eq!(
        run(
            &s,
            json!({"moduleId": compile_id(&s, ADD), "args": [1, 2]}),
            200
        )["result"],
        3
    );
}

#[test]
fn wasi_sleeps_through_poll_oneoff_but_never_past_the_deadline() {
    let s = Service::start();
    let sleeper = compile_id(
        &s,
        r#"(module
          (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            ;; one clock subscription: userdata 7, monotonic clock, relative timeout in ns
            (i64.store (i32.const 0) (i64.const 7))
            (i32.store8 (i32.const 8) (i32.const 0))
            (i32.store (i32.const 16) (i32.const 1))
            (i64.store (i32.const 24) (i64.load (i32.const 512)))
            (drop (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))
            ;; exit code: the event's userdata * 10 + the number of events
            (call $exit (i32.add (i32.mul (i32.wrap_i64 (i64.load (i32.const 100))) (i32.const 10))
                                 (i32.load (i32.const 200)))))
          (data (i32.const 512) "\00\2d\31\01\00\00\00\00"))"#,
    );
    // 0x01312d00 ns = 20 ms.
    let started = Instant::now();
    let out = run(&s, json!({"moduleId": sleeper}), 200);
    assert_eq!(out["exitCode"], 71, "{out}");
    assert!(started.elapsed() >= Duration::from_millis(20));
    let long = compile_id(
        &s,
        r#"(module
          (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (i32.store (i32.const 16) (i32.const 1))
            (i64.store (i32.const 24) (i64.const 60000000000))
            (drop (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))))"#,
    );
    let started = Instant::now();
    let out = run(&s, json!({"moduleId": long, "timeout": 300}), 422);
    assert_eq!(out["error"]["type"], "TIMEOUT", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeded its timeout"),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// WASI output is capped on its size in the answer: a control byte is six bytes there.
#[test]
fn wasi_output_is_bounded_in_the_encoded_answer() {
    let s = Service::with_config("[wasm]\nmax_output_bytes = 1000\n");
    let id = compile_id(&s, ECHO);
    let stdin = "\u{1}".repeat(4000);
    let res = s.post(
        "/wasm/run",
        &json!({"moduleId": id, "stdin": stdin}).to_string(),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.len() < 2000, "{} bytes", res.body.len());
    let out = res.json();
    assert_eq!(out["stdout"].as_str().map(str::len), Some(1000 / 6));
    assert_eq!(out["outputTruncated"], true, "{out}");
}

/// The record file of `id` in a shared `wasm.cache_dir` (`<sha256(version NUL id)>.module`).
fn record_file(dir: &std::path::Path, id: &str) -> std::path::PathBuf {
    use sha2::Digest;
    let stem = sha2::Sha256::digest(format!("{}\0{id}", env!("CARGO_PKG_VERSION")));
    dir.join(format!("{}.module", hex::encode(stem)))
}

#[test]
fn two_instances_sharing_a_cache_dir_run_each_others_modules() {
    let dir = std::env::temp_dir().join(format!("isolate-wasm-shared-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = format!("[wasm]\ncache_dir = {:?}\n", dir.to_str().unwrap());
    let a = Service::with_config(&config);
    let b = Service::with_config(&config);

    // Compiled on a, run on b by its id: content hash and explicit id alike.
    let id = compile_id(&a, ADD);
    let named = a.post(
        "/wasm/compile",
        &json!({"bytes": b64(ADD), "id": "shared-add"}).to_string(),
    );
    assert_eq!(named.status, 200, "{}", named.body);
    assert_eq!(
        run(&b, json!({"moduleId": id, "args": [40, 2]}), 200)["result"],
        42
    );
    assert_eq!(
        run(&b, json!({"moduleId": "shared-add", "args": [1, 2]}), 200)["result"],
        3
    );
    let wasm = b.get("/stats").json()["wasm"].clone();
    assert_eq!(
        (wasm["loads"].clone(), wasm["compiles"].clone()),
        (json!(2), json!(0)),
        "{wasm}"
    );
    // The same bytes on b are answered from the shared store, other bytes under a's id refused.
    assert_eq!(compile(&b, ADD)["cached"], true);
    let other = b.post(
        "/wasm/compile",
        &json!({"bytes": b64(ECHO), "id": "shared-add"}).to_string(),
    );
    assert_eq!(other.status, 409, "{}", other.body);
    assert_eq!(other.json()["type"], "MODULE_EXISTS");
    assert_eq!(b.get("/stats").json()["wasm"]["compiles"], 0);

    // Ids in neither place, and ids that are no id (never a path), answer as unknown.
    for unknown in [
        "nowhere",
        "../../etc/passwd",
        "/etc/passwd",
        ".module",
        "a/b",
    ] {
        let out = run(&b, json!({"moduleId": unknown}), 422);
        assert_eq!(out["error"]["type"], "MODULE_NOT_FOUND", "{unknown}: {out}");
    }

    // A corrupt record is refused, never run; the instance that compiled it keeps its copy.
    let spin = compile_id(
        &a,
        r#"(module (func (export "seven") (result i32) i32.const 7))"#,
    );
    let path = record_file(&dir, &spin);
    let mut bytes = std::fs::read(&path).expect("the record is in the shared directory");
    let n = bytes.len();
    bytes[n - 8] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let out = run(&b, json!({"moduleId": spin}), 422);
    assert_eq!(out["error"]["type"], "MODULE_NOT_FOUND", "{out}");
    assert_eq!(b.get("/stats").json()["wasm"]["refused"], 1);
    // Truncated: refused the same way, and asked again, not read again until it changes.
    std::fs::write(&path, &bytes[..n / 2]).unwrap();
    for _ in 0..3 {
        run(&b, json!({"moduleId": spin}), 422);
    }
    assert_eq!(b.get("/stats").json()["wasm"]["refused"], 2);
    assert_eq!(run(&a, json!({"moduleId": spin}), 200)["result"], 7);

    // A record removed under a (as another instance's eviction would) is no error for a.
    std::fs::remove_file(record_file(&dir, &id)).unwrap();
    assert_eq!(
        run(&a, json!({"moduleId": id, "args": [2, 2]}), 200)["result"],
        4
    );
    drop((a, b));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_instances_compiling_one_module_at_once_agree() {
    let dir = std::env::temp_dir().join(format!("isolate-wasm-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = format!("[wasm]\ncache_dir = {:?}\n", dir.to_str().unwrap());
    let services = [Service::with_config(&config), Service::with_config(&config)];
    let race = |bodies: [String; 2]| -> Vec<Value> {
        let threads: Vec<_> = services
            .iter()
            .zip(bodies)
            .map(|(s, body)| {
                let addr = s.addr;
                std::thread::spawn(move || {
                    let res = request(addr, "POST", "/wasm/compile", &[], body.as_bytes());
                    json!({"status": res.status, "body": res.json()})
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    };
    // The same new module on both at once: both succeed with the same id.
    let body = json!({ "bytes": b64(ECHO) }).to_string();
    let both = race([body.clone(), body]);
    assert!(both.iter().all(|r| r["status"] == 200), "{both:?}");
    assert_eq!(both[0]["body"]["moduleId"], both[1]["body"]["moduleId"]);
    // Other bytes under one new explicit id on both at once: exactly one wins.
    let both = race([
        json!({"bytes": b64(ADD), "id": "contested"}).to_string(),
        json!({"bytes": b64(ECHO), "id": "contested"}).to_string(),
    ]);
    let mut statuses: Vec<_> = both.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{both:?}");
    // Whichever won, both instances now run the same module under the id.
    let winner = &both.iter().find(|r| r["status"] == 200).unwrap()["body"];
    let names: Vec<_> = winner["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    for s in &services {
        let out = run(s, json!({"moduleId": "contested", "args": [1, 1]}), 200);
        assert_eq!(out["stats"]["exports"], json!(names), "{out}");
    }
    let stray: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".module"))
        .collect();
    assert!(stray.is_empty(), "left in the shared directory: {stray:?}");
    drop(services);
    std::fs::remove_dir_all(&dir).unwrap();
}
