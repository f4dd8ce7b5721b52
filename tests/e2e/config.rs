//! Configuration, authentication, rate limiting and CORS, through the real binary.

use std::process::Command;

use serde_json::json;

use crate::common::{binary, Service};

const TOKEN: &str = "test-token-0123456789";

#[test]
fn bearer_auth_guards_every_route_but_health() {
    let s = Service::with("", &[("ISOLATE_AUTH_TOKEN", TOKEN)]);
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(s.get("/health").status, 200);
    let res = s.post("/execute", r#"{"code":"1"}"#);
    assert_eq!(
        (res.status, res.json()),
        (401, json!({"error": "Missing bearer token"}))
    );
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    let res = s.request(
        "POST",
        "/execute",
        &[("Authorization", "Bearer wrong-token")],
        br#"{"code":"1"}"#,
    );
    assert_eq!(
        (res.status, res.json()),
        (403, json!({"error": "Invalid bearer token"}))
    );
    let res = s.request(
        "POST",
        "/execute",
        &[("Authorization", &bearer)],
        br#"{"code":"1"}"#,
    );
    assert_eq!(res.status, 200);
    assert_eq!(
        s.request("GET", "/stats", &[("Authorization", &bearer)], b"")
            .status,
        200
    );
    assert_eq!(s.get("/stats").status, 401);
    assert_eq!(s.get("/nope").status, 401);
}

#[test]
fn the_rate_limit_answers_429_with_retry_after() {
    let s = Service::with(
        "[auth]\nrate_limit_per_minute = 3\n",
        &[("ISOLATE_AUTH_TOKEN", TOKEN)],
    );
    let bearer = format!("Bearer {TOKEN}");
    for _ in 0..3 {
        assert_eq!(
            s.request("GET", "/stats", &[("Authorization", &bearer)], b"")
                .status,
            200
        );
    }
    let res = s.request(
        "POST",
        "/execute",
        &[("Authorization", &bearer)],
        br#"{"code":"1"}"#,
    );
    assert_eq!(res.status, 429);
    let retry = res.json()["retryAfter"].as_u64().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(res.header("retry-after"), Some(retry.to_string().as_str()));
    // /health is never limited.
    assert_eq!(s.get("/health").status, 200);
}

#[test]
fn cors_is_off_unless_origins_are_configured() {
    let s = Service::start();
    let res = s.request(
        "POST",
        "/execute",
        &[("Origin", "https://evil.example")],
        br#"{"code":"1"}"#,
    );
    // A page on another site cannot drive the service (see tests/e2e/http.rs).
    assert_eq!(res.status, 403);
    assert_eq!(res.header("access-control-allow-origin"), None);
    let s = Service::with_config("[cors]\norigins = [\"https://app.example\"]\n");
    let res = s.request(
        "POST",
        "/execute",
        &[("Origin", "https://app.example")],
        br#"{"code":"1"}"#,
    );
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let res = s.request(
        "OPTIONS",
        "/execute",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert!(res.status == 200 || res.status == 204, "{res:?}");
    let res = s.request(
        "POST",
        "/execute",
        &[("Origin", "https://evil.example")],
        br#"{"code":"1"}"#,
    );
    assert_ne!(
        res.header("access-control-allow-origin"),
        Some("https://evil.example")
    );
}

#[test]
fn invalid_configuration_stops_start_up_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("isolate-e2e-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (toml, env, needle) in [
        (
            "[workers]\nmax_concurrent = 0\n",
            None,
            "workers.max_concurrent",
        ),
        ("[workers]\nprewarn = 2\n", None, "prewarn"),
        (
            "[workers]\nidle_poll_micros = 10001\n",
            None,
            "workers.idle_poll_micros",
        ),
        (
            "[workers]\nidle_poll_micros = -1\n",
            None,
            "idle_poll_micros",
        ),
        ("[limits]\nmemory_bytes = \"lots\"\n", None, "memory_bytes"),
        ("", Some(("ISOLATE_PORT", "eighty")), "ISOLATE_PORT"),
        (
            "[fetch]\nallow_addresses = [\"10.0.0.0/99\"]\n",
            None,
            "fetch.allow_addresses",
        ),
        (
            "[[fetch.secret_headers]]\nhost = \"api.example.com\"\nname = \"Authorization\"\n\
             value_env = \"E2E_UNSET_FETCH_SECRET\"\n",
            None,
            "E2E_UNSET_FETCH_SECRET",
        ),
    ] {
        let path = dir.join("bad.toml");
        std::fs::write(&path, toml).unwrap();
        let mut cmd = Command::new(binary());
        cmd.arg("--config")
            .arg(&path)
            .arg("--check-config")
            .env_remove("ISOLATE_PORT");
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{toml}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{needle} not in {stderr}");
    }
    let out = Command::new(binary())
        .arg("--config")
        .arg(dir.join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn environment_variables_override_the_file() {
    // The file asks for port 1 (which the test could not bind); ISOLATE_PORT=0 wins.
    let s = Service::with("[server]\nport = 1\n", &[("ISOLATE_LOG_LEVEL", "info")]);
    assert_ne!(s.addr.port(), 1);
    assert_eq!(s.addr.ip().to_string(), "127.0.0.1");
    s.execute(json!({"code": "'logged'"}), 200);
    let logged = crate::common::eventually(std::time::Duration::from_secs(5), || {
        s.logs()
            .iter()
            .any(|l| l.contains("route=/execute") && l.contains("status=200"))
    });
    assert!(logged, "no request line at info level");
}

#[test]
fn help_lists_every_environment_variable_the_configuration_reads() {
    let out = Command::new(binary()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for var in isolate_service::config::ENV_VARS {
        assert!(help.contains(var), "--help does not name {var}:\n{help}");
    }
}
