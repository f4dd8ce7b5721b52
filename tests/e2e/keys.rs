//! API keys (`[[auth.keys]]`): `keys new`, scopes, per-key presets, timeouts, rate limits and
//! quotas, fair sharing between keys, `usage` on every answer, the keys in `/status` and
//! `/metrics`, the audit line, and reloading keys with SIGHUP.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{binary, eventually, request, Response, Service};

/// Runs `isolate-service keys new NAME` and answers the secret and the block.
fn new_key(name: &str) -> (String, String) {
    let out = Command::new(binary())
        .args(["keys", "new", name])
        .output()
        .expect("run keys new");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (secret, block) = text.split_once('\n').expect("two parts");
    (secret.to_string(), block.to_string())
}

fn call(s: &Service, method: &str, path: &str, secret: &str, body: &Value) -> Response {
    let auth = format!("Bearer {secret}");
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    s.request(
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

/// `POST /execute` of `body` with `secret` on a thread of its own; the thread answers the
/// result of the 200 it expects.
fn execute_on_a_thread(
    addr: std::net::SocketAddr,
    secret: &str,
    body: &str,
) -> std::thread::JoinHandle<Value> {
    let (auth, body) = (format!("Bearer {secret}"), body.to_string());
    std::thread::spawn(move || {
        let headers = [("Authorization", auth.as_str())];
        let r = request(addr, "POST", "/execute", &headers, body.as_bytes());
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["result"].clone()
    })
}

#[test]
fn keys_new_prints_the_secret_alone_then_a_block_that_configures_it() {
    let (secret, block) = new_key("agent-1");
    assert!(
        secret.starts_with("isk_") && !secret.contains(' '),
        "{secret}"
    );
    assert!(block.starts_with("[[auth.keys]]\nname = \"agent-1\"\nsecret_sha256 = \""));
    assert!(!block.contains(&secret));
    let (other, _) = new_key("agent-1");
    assert_ne!(secret, other);
    let bad = Command::new(binary())
        .args(["keys", "new", "no spaces"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(bad.stdout.is_empty());

    let s = Service::with_config(&format!("{block}presets = [\"compute\"]\n"));
    let ok = call(&s, "POST", "/execute", &secret, &json!({"code": "1 + 1"}));
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["result"], 2);
    let wrong = call(&s, "POST", "/execute", &other, &json!({"code": "1"}));
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert_eq!(s.post("/execute", r#"{"code":"1"}"#).status, 401);
}

#[test]
fn each_key_has_its_scopes_presets_and_timeouts_and_no_error_echoes_a_secret() {
    let (runner, runner_block) = new_key("runner");
    let (wasm, wasm_block) = new_key("wasm-only");
    let (ops, ops_block) = new_key("ops");
    let s = Service::with(&format!(
        "{runner_block}scopes = [\"execute\"]\npresets = [\"compute\", \"data\"]\nmax_timeout_ms = 1000\n\
         {wasm_block}scopes = [\"wasm\"]\n\
         {ops_block}scopes = [\"admin\"]\n"
    ), &[("ISOLATE_LOG_LEVEL", "info")]);
    let all = [&runner, &wasm, &ops];
    let mut answers = Vec::new();
    let mut expect = |secret: &str, method: &str, path: &str, body: Value, status: u16| {
        let r = call(&s, method, path, secret, &body);
        assert_eq!(r.status, status, "{method} {path} {body}: {}", r.body);
        let v = r.json();
        answers.push(r.body);
        v
    };
    let ok = expect(&runner, "POST", "/execute", json!({"code": "6 * 7"}), 200);
    assert_eq!(ok["result"], 42);
    let usage = &ok["usage"];
    for field in ["cpuMs", "wallMs", "heapPeakBytes", "fetches", "egressBytes"] {
        assert!(usage[field].is_number(), "{field} in {usage}");
    }
    assert!(usage["heapPeakBytes"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["cpuMs"].as_f64().unwrap() > 0.0, "{usage}");
    let agent = expect(
        &runner,
        "POST",
        "/execute",
        json!({"code": "1", "preset": "agent"}),
        403,
    );
    assert!(
        agent["error"]
            .as_str()
            .unwrap()
            .contains("\"agent\" is not among its presets"),
        "{agent}"
    );
    let deno_net = expect(
        &runner,
        "POST",
        "/deno",
        json!({"code": "return 1", "permissions": ["net"]}),
        403,
    );
    assert!(
        deno_net["error"].as_str().unwrap().contains("agent"),
        "{deno_net}"
    );
    let long = expect(
        &runner,
        "POST",
        "/execute",
        json!({"code": "1", "timeout": 5000}),
        403,
    );
    assert!(
        long["error"]
            .as_str()
            .unwrap()
            .contains("max_timeout_ms of 1000"),
        "{long}"
    );
    // The route's default (5 s) is more than the key's maximum: the key's maximum applies.
    let default = expect(&runner, "POST", "/execute", json!({"code": "1"}), 200);
    assert_eq!(default["stats"]["timeout"], 1000);
    let scope = expect(
        &runner,
        "POST",
        "/wasm/compile",
        json!({"bytes": "AGFzbQEAAAA="}),
        403,
    );
    assert_eq!(scope["scope"], "wasm", "{scope}");
    expect(&runner, "GET", "/status", Value::Null, 403);
    expect(&runner, "GET", "/metrics", Value::Null, 403);
    expect(&runner, "GET", "/stats", Value::Null, 200);
    let execute = expect(&wasm, "POST", "/execute", json!({"code": "1"}), 403);
    assert_eq!(execute["scope"], "execute");
    expect(
        &wasm,
        "POST",
        "/wasm/compile",
        json!({"bytes": "AGFzbQEAAAA="}),
        200,
    );
    expect(&ops, "POST", "/execute", json!({"code": "1"}), 403);
    let status = expect(&ops, "GET", "/status", Value::Null, 200);
    let keys = status["keys"].as_array().expect("keys in /status");
    let names: Vec<&str> = keys.iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["runner", "wasm-only", "ops"]);
    assert!(
        keys[0]["totals"]["executions"].as_u64().unwrap() >= 2,
        "{}",
        keys[0]
    );
    assert_eq!(keys[1]["scopes"], json!(["wasm"]));
    assert_eq!(
        call(&s, "POST", "/execute", "isk_unknown", &json!({"code": "1"})).status,
        403
    );
    let metrics = call(&s, "GET", "/metrics", &ops, &Value::Null);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains(r#"isolate_key_executions_total{key="runner",outcome="ok"}"#),
        "{}",
        metrics.body
    );
    assert!(metrics
        .body
        .contains(r#"isolate_key_cpu_seconds{key="runner"}"#));
    let status_text = call(&s, "GET", "/status", &ops, &Value::Null).body;
    answers.push(status_text);
    answers.push(metrics.body);
    for secret in all {
        for a in &answers {
            assert!(
                !a.contains(secret.as_str()),
                "an answer echoes a secret: {a}"
            );
        }
    }
    // One audit line per execution, with the key and never the code.
    let logs = s.logs();
    let audit: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("audit") && l.contains("execution"))
        .collect();
    assert!(
        audit
            .iter()
            .any(|l| l.contains("runner") && l.contains("/execute") && l.contains("cpu_ms")),
        "{logs:#?}"
    );
    assert!(audit.iter().all(|l| !l.contains("6 * 7")), "{audit:#?}");
}

#[test]
fn rate_limits_are_per_key() {
    let (slow, slow_block) = new_key("slow");
    let (fast, fast_block) = new_key("fast");
    let s = Service::with_config(&format!(
        "{slow_block}rate_limit_per_minute = 2\n{fast_block}"
    ));
    let body = json!({"code": "1"});
    for _ in 0..2 {
        assert_eq!(call(&s, "POST", "/execute", &slow, &body).status, 200);
    }
    let limited = call(&s, "POST", "/execute", &slow, &body);
    assert_eq!(limited.status, 429, "{}", limited.body);
    // 2 a minute: the next token is at most 30 s away (less, by however long the two took).
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    for _ in 0..5 {
        let r = call(&s, "POST", "/execute", &fast, &body);
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[test]
fn a_daily_quota_is_answered_with_its_name_limit_use_and_reset() {
    let (q, block) = new_key("quota");
    let (ops, ops_block) = new_key("ops");
    let s = Service::with_config(&format!(
        "{block}executions_per_day = 2\n{ops_block}scopes = [\"admin\"]\n"
    ));
    for _ in 0..2 {
        let r = call(&s, "POST", "/execute", &q, &json!({"code": "1"}));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let over = call(&s, "POST", "/execute", &q, &json!({"code": "1"}));
    assert_eq!(over.status, 429, "{}", over.body);
    let quota = &over.json()["quota"];
    assert_eq!(quota["name"], "executions_per_day");
    assert_eq!(quota["limit"], 2);
    assert_eq!(quota["used"], 2);
    let resets = quota["resetsAt"].as_str().unwrap();
    assert!(resets.ends_with("T00:00:00Z"), "{resets}");
    assert!(over.header("retry-after").is_some());
    // The refused one does not count.
    let status = call(&s, "GET", "/status", &ops, &Value::Null).json();
    assert_eq!(status["keys"][0]["today"]["executions"], 2, "{status}");
    assert_eq!(
        status["keys"][0]["today"]["executionsPerDay"], 2,
        "{status}"
    );
}

#[test]
fn a_flooding_key_does_not_delay_another_keys_first_request_behind_its_queue() {
    let (a, a_block) = new_key("flood");
    let (b, b_block) = new_key("single");
    let s = Service::with_config(&format!(
        "[workers]\nmax_concurrent = 2\nprewarm = 2\nqueue_size = 64\nqueue_timeout_ms = 60000\n\
         {a_block}rate_limit_per_minute = 0\n{b_block}rate_limit_per_minute = 0\n"
    ));
    let addr = s.addr;
    let slow = json!({"code": "await new Promise((r) => setTimeout(r, 250)); Date.now()", "timeout": 5000})
        .to_string();
    let flood: Vec<_> = (0..16)
        .map(|_| execute_on_a_thread(addr, &a, &slow))
        .collect();
    // Wait until the flood is queued behind the two slots.
    assert!(eventually(Duration::from_secs(10), || {
        s.get("/health").json()["workers"]["queued"]
            .as_u64()
            .unwrap_or(0)
            >= 10
    }));
    let r = call(&s, "POST", "/execute", &b, &json!({"code": "Date.now()"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let b_done = r.json()["result"].as_u64().unwrap();
    let a_done: Vec<u64> = flood
        .into_iter()
        .map(|t| t.join().unwrap().as_u64().unwrap())
        .collect();
    let after = a_done.iter().filter(|t| **t > b_done).count();
    // In arrival order b would run after all sixteen; in turn it runs after at most one of
    // flood's queued requests per slot.
    assert!(after >= 10, "b finished after {} of flood's 16", 16 - after);
}

#[test]
fn max_concurrent_caps_what_one_key_holds() {
    let (a, block) = new_key("capped");
    let s = Service::with_config(&format!(
        "[workers]\nmax_concurrent = 4\nprewarm = 4\n{block}max_concurrent = 1\nrate_limit_per_minute = 0\n"
    ));
    let addr = s.addr;
    let code = json!({"code": "const s = Date.now(); await new Promise((r) => setTimeout(r, 150)); [s, Date.now()]"})
        .to_string();
    let runs: Vec<_> = (0..3)
        .map(|_| execute_on_a_thread(addr, &a, &code))
        .collect();
    let mut spans: Vec<(u64, u64)> = runs
        .into_iter()
        .map(|t| {
            let v = t.join().unwrap();
            (v[0].as_u64().unwrap(), v[1].as_u64().unwrap())
        })
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "two executions of one key overlapped: {spans:?}"
        );
    }
}

#[test]
fn sighup_reloads_keys_and_a_broken_file_keeps_the_old_ones() {
    let (old, old_block) = new_key("old");
    let (new, new_block) = new_key("new");
    let s = Service::with_config(&old_block);
    let run = |secret: &str| call(&s, "POST", "/execute", secret, &json!({"code": "1"})).status;
    assert_eq!(run(&old), 200);
    assert_eq!(run(&new), 403);
    std::fs::write(
        s.config_path(),
        format!("{old_block}scopes = [\"wasm\"]\n{new_block}"),
    )
    .unwrap();
    s.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        eventually(Duration::from_secs(5), || run(&new) == 200),
        "{:#?}",
        s.logs()
    );
    assert_eq!(
        run(&old),
        403,
        "the reloaded scopes of old are not in force"
    );
    // A broken file (a bad hash) is refused with the reason, and the keys stay.
    std::fs::write(
        s.config_path(),
        "[[auth.keys]]\nname = \"x\"\nsecret_sha256 = \"not-hex\"\n",
    )
    .unwrap();
    s.signal(nix::sys::signal::Signal::SIGHUP);
    let mut seen = Vec::new();
    assert!(
        eventually(Duration::from_secs(5), || {
            seen.extend(s.logs());
            seen.iter()
                .any(|l| l.contains("reload refused") && l.contains("secret_sha256"))
        }),
        "{seen:#?}"
    );
    assert_eq!(run(&new), 200);
}

#[test]
fn mcp_calls_run_under_the_key_of_their_request() {
    let (k, block) = new_key("mcp-agent");
    let (plain, plain_block) = new_key("no-mcp");
    let s = Service::with_config(&format!(
        "{block}scopes = [\"mcp\"]\npresets = [\"compute\"]\n{plain_block}scopes = [\"execute\"]\n"
    ));
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}"#;
    let post = |secret: &str, extra: &[(&str, &str)], body: &str| {
        let auth = format!("Bearer {secret}");
        let mut headers = vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Authorization", auth.as_str()),
        ];
        headers.extend_from_slice(extra);
        s.request("POST", "/mcp", &headers, body.as_bytes())
    };
    assert_eq!(post(&plain, &[], init).status, 403);
    let r = post(&k, &[], init);
    assert_eq!(r.status, 200, "{}", r.body);
    let sid = r.header("mcp-session-id").expect("session").to_string();
    let session = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];
    post(
        &k,
        &session,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    let ok = post(
        &k,
        &session,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_javascript","arguments":{"code":"6 * 7"}}}"#,
    );
    assert!(ok.body.contains(r#""result":42"#), "{}", ok.body);
    assert!(ok.body.contains(r#""usage":{"#), "{}", ok.body);
    let refused = post(
        &k,
        &session,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"run_javascript","arguments":{"code":"1","preset":"agent"}}}"#,
    );
    assert!(
        refused.body.contains("not among its presets"),
        "{}",
        refused.body
    );
}
