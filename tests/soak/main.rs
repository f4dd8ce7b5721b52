//! Soak test: a mixed workload at high concurrency against the real binary, bounded in time
//! (`ISOLATE_SOAK_SECONDS`, default 15; `scripts/soak.sh` runs it for minutes). Every answer is
//! checked against its expected status and error type. Afterwards: no unanswered or wrong
//! answers, no leaked or zombie processes, supervisor RSS growth under 10% after warm-up, and
//! file descriptors back to their baseline. Prints a one-screen report.

#[path = "../e2e/common.rs"]
#[allow(dead_code)]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{descendants, request, state, zygote_pid, Service};

/// One kind of request and what it must get.
struct Kind {
    name: &'static str,
    path: &'static str,
    body: fn() -> String,
    status: u16,
    error_type: Option<&'static str>,
}

fn js(code: &str, timeout: u64) -> String {
    json!({"code": code, "timeout": timeout}).to_string()
}

const KINDS: &[Kind] = &[
    Kind {
        name: "normal script",
        path: "/execute",
        body: || js("let s = 0; for (let i = 0; i < 1000; i++) s += i; s", 5000),
        status: 200,
        error_type: None,
    },
    Kind {
        name: "thrown error",
        path: "/execute",
        body: || js("throw new TypeError('bad')", 5000),
        status: 422,
        error_type: Some("RUNTIME"),
    },
    Kind {
        name: "infinite loop",
        path: "/execute",
        body: || js("while (true) {}", 100),
        status: 422,
        error_type: Some("TIMEOUT"),
    },
    Kind {
        name: "memory bomb",
        path: "/execute",
        body: || {
            js(
                "const a = []; while (true) a.push(new Array(1e4).fill(1))",
                5000,
            )
        },
        status: 422,
        error_type: Some("MEMORY_LIMIT"),
    },
    Kind {
        name: "stack overflow",
        path: "/execute",
        body: || js("function r() { return r() + 1 } r()", 5000),
        status: 422,
        error_type: Some("STACK_OVERFLOW"),
    },
    Kind {
        name: "huge output",
        path: "/execute",
        body: || js("'x'.repeat(2e6)", 5000),
        status: 422,
        error_type: Some("OUTPUT_LIMIT"),
    },
    Kind {
        name: "console flood",
        path: "/execute",
        body: || {
            js(
                "for (let i = 0; i < 5000; i++) console.log('line', i); 'done'",
                5000,
            )
        },
        status: 200,
        error_type: None,
    },
    Kind {
        name: "invalid JSON",
        path: "/execute",
        body: || "{not json".into(),
        status: 400,
        error_type: None,
    },
    Kind {
        name: "missing code",
        path: "/execute",
        body: || "{}".into(),
        status: 400,
        error_type: None,
    },
    Kind {
        name: "unknown preset",
        path: "/execute",
        body: || json!({"code": "1", "preset": "x"}).to_string(),
        status: 400,
        error_type: None,
    },
    Kind {
        name: "syntax check",
        path: "/validate",
        body: || json!({"code": "let = ;"}).to_string(),
        status: 422,
        error_type: None,
    },
    Kind {
        name: "data preset digest",
        path: "/execute",
        body: || {
            json!({"code": "const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify(env)));\n\
                            return Buffer.from(d).toString('hex').length", "preset": "data", "env": {"a": [1, 2]}})
            .to_string()
        },
        status: 200,
        error_type: None,
    },
    Kind {
        name: "agent fetch denied",
        path: "/execute",
        body: || {
            json!({"code": "try { await fetch('https://api.example.com/'); return 'fetched' } catch (e) { return e.name }", "preset": "agent"})
            .to_string()
        },
        status: 200,
        error_type: None,
    },
    Kind {
        name: "deno TypeScript",
        path: "/deno",
        body: || {
            json!({"code": "interface P { n: number }\nconst p = data as P;\nreturn p.n! * 2", "data": {"n": 21}})
                .to_string()
        },
        status: 200,
        error_type: None,
    },
    Kind {
        name: "deno refused permission",
        path: "/deno",
        body: || json!({"code": "return 1", "permissions": ["read"]}).to_string(),
        status: 400,
        error_type: None,
    },
    Kind {
        name: "wasm add",
        path: "/wasm/run",
        body: || json!({"moduleId": WASM_ADD_ID, "args": [2, 3]}).to_string(),
        status: 200,
        error_type: None,
    },
    Kind {
        name: "wasm trap",
        path: "/wasm/run",
        body: || json!({"moduleId": WASM_TRAP_ID}).to_string(),
        status: 422,
        error_type: Some("WASM_TRAP"),
    },
];

/// `(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))`
const WASM_ADD: &str = "AGFzbQEAAAABBwFgAn9/AX8DAgEABwcBA2FkZAAACgkBBwAgACABags=";
/// `(module (func (export "boom") unreachable))`
const WASM_TRAP: &str = "AGFzbQEAAAABBAFgAAADAgEABwgBBGJvb20AAAoFAQMAAAs=";
const WASM_ADD_ID: &str = "soak-add";
const WASM_TRAP_ID: &str = "soak-trap";

#[derive(Default)]
struct Tally {
    sent: Vec<u64>,
    wrong: Vec<String>,
    latencies_ms: Vec<f64>,
}

fn supervisor_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn open_fds(pid: u32) -> i64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0) as i64
}

/// Descriptors the supervisor holds beyond three per live worker (its socket, its pidfd and its
/// `/proc/<pid>/schedstat`).
///
/// The descriptor count and the worker list are two reads, and the pool may fork or retire a
/// worker between them (it replenishes in the background), so a reading counts only when the
/// descriptor count is the same before and after the worker list was read; the `/status`
/// connection itself is closed before the second count is taken.
fn baseline_fds(s: &Service) -> i64 {
    let mut last = 0;
    for _ in 0..20 {
        let before = open_fds(s.pid());
        let workers = s.get("/status").json()["workers"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0) as i64;
        std::thread::sleep(Duration::from_millis(20));
        let after = open_fds(s.pid());
        last = before - 3 * workers;
        if before == after {
            return last;
        }
    }
    last
}

#[test]
fn soak() {
    let seconds: f64 = std::env::var("ISOLATE_SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15.0);
    let connections = 16;
    let s = Service::with_config("[limits]\nmemory_bytes = 33554432\n[workers]\nprewarm = 4\n");
    let addr = s.addr;
    for (bytes, id) in [(WASM_ADD, WASM_ADD_ID), (WASM_TRAP, WASM_TRAP_ID)] {
        let res = s.post(
            "/wasm/compile",
            &json!({"bytes": bytes, "id": id}).to_string(),
        );
        assert_eq!(res.status, 200, "{}", res.body);
    }
    let fds_start = baseline_fds(&s);
    let tally = Arc::new(Mutex::new(Tally {
        sent: vec![0; KINDS.len()],
        ..Tally::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let warm_up = Duration::from_secs_f64((seconds * 0.2).max(2.0));
    let clients: Vec<_> = (0..connections)
        .map(|c| {
            let (tally, stop) = (Arc::clone(&tally), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let k = i % KINDS.len();
                    let kind = &KINDS[k];
                    i += 7;
                    let t = Instant::now();
                    let res = request(addr, "POST", kind.path, &[], (kind.body)().as_bytes());
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    let body: Value = serde_json::from_str(&res.body).unwrap_or(Value::Null);
                    let got_type = body["error"]["type"].as_str();
                    let mut t = tally.lock().unwrap();
                    t.sent[k] += 1;
                    t.latencies_ms.push(ms);
                    let type_ok = kind.error_type.is_none() || got_type == kind.error_type;
                    if res.status != kind.status || !type_ok || body.is_null() {
                        t.wrong.push(format!(
                            "{}: {} {}",
                            kind.name,
                            res.status,
                            &res.body[..res.body.len().min(200)]
                        ));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(warm_up);
    let rss_after_warm_up = supervisor_rss(s.pid());
    std::thread::sleep(Duration::from_secs_f64(seconds).saturating_sub(warm_up));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let the pool settle: replacements forked, retired workers gone.
    std::thread::sleep(Duration::from_millis(1500));
    let rss_end = supervisor_rss(s.pid());
    let zygote = zygote_pid(&s);
    let family = descendants(s.pid());
    let zombies: Vec<u32> = family
        .iter()
        .copied()
        .filter(|p| state(*p) == Some('Z'))
        .collect();
    let workers = descendants(zygote).len();
    let registered = s.get("/status").json()["workers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    // Descriptors must come back to the baseline; connections the clients just closed may
    // still be closing on the server side, so allow a few seconds for that.
    let mut fds_end = baseline_fds(&s);
    let settle = Instant::now();
    while fds_end > fds_start && settle.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(200));
        fds_end = baseline_fds(&s);
    }

    let t = tally.lock().unwrap();
    let total: u64 = t.sent.iter().sum();
    let mut lat = t.latencies_ms.clone();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let growth =
        (rss_end as f64 - rss_after_warm_up as f64) / rss_after_warm_up.max(1) as f64 * 100.0;
    println!(
        "\n=== soak: {elapsed:.1} s, {connections} connections, {total} requests ({:.0}/s)",
        total as f64 / elapsed
    );
    for (k, kind) in KINDS.iter().enumerate() {
        println!("  {:<24} {:>7}", kind.name, t.sent[k]);
    }
    println!("  wrong answers            {:>7}", t.wrong.len());
    println!(
        "  latency ms        p50 {:.2}  p99 {:.2}  max {:.2}",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "  supervisor RSS    {} KiB after warm-up, {} KiB at the end ({growth:+.1}%)",
        rss_after_warm_up / 1024,
        rss_end / 1024
    );
    println!(
        "  processes         {workers} workers alive ({registered} registered), {} zombies",
        zombies.len()
    );
    println!("  descriptors       {fds_end} beyond the workers' ({fds_start} before the load)");

    assert!(
        t.wrong.is_empty(),
        "wrong answers: {:#?}",
        &t.wrong[..t.wrong.len().min(10)]
    );
    assert!(
        t.sent.iter().all(|n| *n > 0),
        "every kind of request was sent"
    );
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    assert_eq!(
        workers, registered,
        "every live worker is known to the pool, and only those live"
    );
    assert!(
        growth < 10.0,
        "supervisor RSS grew {growth:.1}% after warm-up"
    );
    assert!(
        fds_end <= fds_start,
        "descriptors leaked: {fds_start} before, {fds_end} after"
    );
}
