//! `GET /metrics`: its auth, its figures after real traffic, and the live output checked by
//! the real `promtool check metrics` (Debian's, from scripts/install-observability-deps.sh).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::common::{busy_worker, Service};

const TOKEN: &str = "metrics-user-token-0123";
const ADMIN: &str = "metrics-admin-token-0123";

/// promtool: on PATH, else where the install script unpacks it. `None` when neither exists,
/// which fails under CI (`CI` set) and skips elsewhere.
fn promtool() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join("scripts/promtool-path.sh"))
        .output()
        .expect("run scripts/promtool-path.sh");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "promtool is missing under CI: run scripts/install-observability-deps.sh"
    );
    eprintln!(
        "promtool not found ({}): skipping its check",
        path.display()
    );
    None
}

/// One sample: its value, found by name and by the labels it must carry.
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        if line.starts_with('#') {
            return None;
        }
        let (series, value) = line.rsplit_once(' ')?;
        let (n, rest) = match series.split_once('{') {
            Some((n, rest)) => (n, rest),
            None => (series, ""),
        };
        let matches = n == name
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        if matches {
            value.parse().ok()
        } else {
            None
        }
    })
}

fn scrape(s: &Service) -> String {
    let res = s.request(
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {ADMIN}"))],
        b"",
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    res.body
}

#[test]
fn metrics_need_the_admin_token_and_count_real_traffic() {
    let s = Service::with(
        "[auth]\nadmin_token = \"metrics-admin-token-0123\"\nrate_limit_per_minute = 0\n\
         [workers]\nprewarm = 2\n",
        &[("ISOLATE_AUTH_TOKEN", TOKEN)],
    );
    let user = format!("Bearer {TOKEN}");
    let user = [("Authorization", user.as_str())];
    // Auth: as /status.
    assert_eq!(s.get("/metrics").status, 401);
    assert_eq!(s.request("GET", "/metrics", &user, b"").status, 403);
    let wrong = [("Authorization", "Bearer metrics-admin-token-0124")];
    assert_eq!(s.request("GET", "/metrics", &wrong, b"").status, 403);
    let odd = [("Authorization", "Bearer  metrics-admin-token-0123 ")];
    assert_eq!(s.request("GET", "/metrics", &odd, b"").status, 200);
    assert_eq!(s.request("POST", "/metrics", &odd, b"").status, 405);

    let run = |body: serde_json::Value| {
        s.request("POST", "/execute", &user, body.to_string().as_bytes())
            .status
    };
    assert_eq!(run(json!({"code": "1 + 1"})), 200);
    assert_eq!(run(json!({"code": "1", "preset": "data"})), 200);
    assert_eq!(run(json!({"code": "throw new Error('x')"})), 422);
    assert_eq!(run(json!({"code": "while (true) {}", "timeout": 50})), 422);
    assert_eq!(
        run(json!({"code": "await fetch('https://denied.example/')", "preset": "agent"})),
        422
    );
    let add = wat::parse_str(
        r#"(module (func (export "add") (param i32 i32) (result i32)
            local.get 0 local.get 1 i32.add))"#,
    )
    .unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.encode(&add);
    let compile = json!({ "bytes": bytes }).to_string();
    let res = s.request("POST", "/wasm/compile", &user, compile.as_bytes());
    assert_eq!(res.status, 200, "{}", res.body);
    let id = res.json()["moduleId"].as_str().unwrap().to_string();
    let run_wasm = json!({"moduleId": id, "args": [2, 3]}).to_string();
    assert_eq!(
        s.request("POST", "/wasm/run", &user, run_wasm.as_bytes())
            .status,
        200
    );
    // Unknown paths count once under one label, however many there are.
    for i in 0..20 {
        assert_eq!(
            s.request("GET", &format!("/nope/{i}"), &user, b"").status,
            404
        );
    }

    let m = scrape(&s);
    let has = |name: &str, labels: &[(&str, &str)]| {
        sample(&m, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{m}"))
    };
    let exec = "isolate_executions_total";
    assert_eq!(
        has(
            exec,
            &[
                ("engine", "quickjs"),
                ("preset", "compute"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
    assert_eq!(has(exec, &[("preset", "data"), ("outcome", "ok")]), 1.0);
    assert_eq!(
        has(exec, &[("preset", "compute"), ("outcome", "RUNTIME")]),
        1.0
    );
    assert_eq!(has(exec, &[("outcome", "TIMEOUT")]), 1.0);
    assert_eq!(
        has(
            exec,
            &[
                ("engine", "wasmtime"),
                ("preset", "wasm"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
    assert_eq!(
        has(
            "isolate_execution_duration_seconds_count",
            &[("engine", "quickjs"), ("preset", "compute")]
        ),
        3.0
    );
    assert_eq!(
        has(
            "isolate_execution_duration_seconds_bucket",
            &[("engine", "quickjs"), ("preset", "compute"), ("le", "+Inf")]
        ),
        3.0
    );
    assert!(has("isolate_queue_wait_seconds_count", &[]) >= 6.0);
    assert_eq!(has("isolate_fetches_total", &[("outcome", "denied")]), 1.0);
    let requests = "isolate_http_requests_total";
    assert_eq!(
        has(
            requests,
            &[("route", "/execute"), ("method", "POST"), ("status", "200")]
        ),
        2.0
    );
    assert_eq!(
        has(requests, &[("route", "/execute"), ("status", "422")]),
        3.0
    );
    assert_eq!(
        has(requests, &[("route", "unmatched"), ("status", "404")]),
        20.0
    );
    assert_eq!(
        has(requests, &[("route", "/metrics"), ("status", "401")]),
        1.0
    );
    assert_eq!(
        has(requests, &[("route", "/metrics"), ("status", "403")]),
        2.0
    );
    assert!(!m.contains("/nope/"), "a raw path became a label");
    assert!(has("isolate_worker_spawns_total", &[]) >= 2.0);
    // The timeout killed or retired its worker; agent workers are always retired.
    assert!(
        has("isolate_worker_recycles_total", &[]) + has("isolate_worker_kills_total", &[]) >= 2.0
    );
    assert_eq!(has("isolate_worker_crashes_total", &[]), 0.0);
    assert_eq!(has("isolate_sandbox_violations_total", &[]), 0.0);
    assert_eq!(has("isolate_execution_slots", &[]), 50.0);
    assert_eq!(has("isolate_module_store_modules", &[]), 1.0);
    assert!(has("isolate_module_store_bytes", &[]) > 0.0);
    assert!(has("isolate_module_store_hits_total", &[]) >= 1.0);
    assert_eq!(has("isolate_module_store_evictions_total", &[]), 0.0);
    assert_eq!(has("isolate_workers", &[("state", "busy")]), 0.0);
    assert!(has("isolate_workers", &[("state", "idle")]) >= 1.0);
    assert_eq!(has("isolate_queue_depth", &[]), 0.0);
    assert_eq!(
        has(
            "isolate_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    promtool_accepts(&m);
}

#[test]
fn a_crash_and_busy_workers_show_while_they_happen() {
    // Without a token (the fixture's helpers read /stats without one).
    let s = Service::with(
        "[workers]\nprewarm = 1\nmax_concurrent = 1\nqueue_size = 1\nqueue_timeout_ms = 20000\n",
        &[("ISOLATE_LOG_LEVEL", "error")],
    );
    let addr = s.addr;
    let long = std::thread::spawn(move || {
        crate::common::request(
            addr,
            "POST",
            "/execute",
            &[],
            br#"{"code":"while (true) {}","timeout":3000}"#,
        )
    });
    let worker = busy_worker(&s);
    let queued = std::thread::spawn(move || {
        crate::common::request(addr, "POST", "/execute", &[], br#"{"code":"2"}"#)
    });
    let seen = crate::common::eventually(std::time::Duration::from_secs(5), || {
        let body = s.get("/metrics").body;
        sample(&body, "isolate_queue_depth", &[]) == Some(1.0)
            && sample(&body, "isolate_workers", &[("state", "busy")]) == Some(1.0)
    });
    assert!(seen, "the queue and the busy worker never showed");
    // A worker of the service under test, found among its descendants.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_eq!(long.join().unwrap().status, 422);
    assert_eq!(queued.join().unwrap().status, 200);
    let body = s.get("/metrics").body;
    assert_eq!(
        sample(&body, "isolate_worker_crashes_total", &[]),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "isolate_executions_total",
            &[("outcome", "WORKER_CRASHED")]
        ),
        Some(1.0)
    );
    let waited = sample(&body, "isolate_queue_wait_seconds_sum", &[]).unwrap_or(0.0);
    assert!(waited > 0.0, "{body}");
    promtool_accepts(&body);
}

/// `promtool check metrics` exits 0 on the exposition and says nothing.
fn promtool_accepts(exposition: &str) {
    let Some(promtool) = promtool() else { return };
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool finishes");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({:?}):\n{}{}\non:\n{exposition}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The alerting rules and the scrape configuration of docs/operations.md pass
/// `promtool check rules` and `promtool check config`.
#[test]
fn the_documented_alerts_and_scrape_configuration_are_valid() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("docs/operations.md")).unwrap();
    let blocks: Vec<&str> = text
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .collect();
    let rules = blocks
        .iter()
        .find(|b| b.starts_with("groups:"))
        .expect("an alerting rules block");
    let scrape = blocks
        .iter()
        .find(|b| b.starts_with("scrape_configs:"))
        .expect("a scrape configuration block");
    let Some(promtool) = promtool() else { return };
    let dir = std::env::temp_dir().join(format!("isolate-e2e-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
    std::fs::write(dir.join("token"), "t").unwrap();
    let scrape = scrape.replace(
        "/etc/prometheus/isolate-service.token",
        &dir.join("token").display().to_string(),
    );
    std::fs::write(dir.join("prometheus.yml"), scrape).unwrap();
    for (what, file) in [("rules", "rules.yml"), ("config", "prometheus.yml")] {
        let out = Command::new(&promtool)
            .args(["check", what])
            .arg(dir.join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool check {what}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
