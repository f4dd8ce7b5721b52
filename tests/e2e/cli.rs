//! The command line: `serve` (the default), `--print-config`, `--version`, JSON logs, and the
//! `run` client against a real service.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use crate::common::{binary, Service};

const TOKEN: &str = "cli-test-token-0123456789";

fn scratch() -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("isolate-e2e-cli-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `isolate-service run ARGS…` against `s`, with the token in the environment.
fn run(s: &Service, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("run")
        .args(args)
        .args(["--url", &format!("http://{}", s.addr)])
        .env("ISOLATE_AUTH_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, content: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

#[test]
fn run_prints_the_result_logs_to_stderr_and_exits_by_outcome() {
    let s = Service::with("", &[("ISOLATE_AUTH_TOKEN", TOKEN)]);
    let dir = scratch();
    let js = write(
        &dir,
        "mean.js",
        b"console.log('items', env.xs.length);\nreturn env.xs.reduce((a, b) => a + b, 0) / env.xs.length",
    );
    let out = run(&s, &[&js, "--env", r#"{"xs":[1,2,3]}"#, "--preset", "data"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "2\n");
    assert_eq!(text(&out.stderr), "[log] items 3\n");

    let env_file = write(&dir, "env.json", br#"{"name":"file"}"#);
    let ts = write(
        &dir,
        "greet.ts",
        b"interface E { name: string }\nconst e: E = env as E;\nreturn { hello: e.name };",
    );
    let out = run(&s, &[&ts, "--env", &format!("@{env_file}")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"hello": "file"})
    );

    let thrown = write(
        &dir,
        "throw.js",
        b"let x = 1;\nthrow new TypeError('bad ' + x)",
    );
    let out = run(&s, &[&thrown]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: RUNTIME: bad 1"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");

    let wasm = dir.join("add.wasm");
    std::fs::write(
        &wasm,
        wat::parse_str(
            r#"(module (func (export "add") (param i32 i32) (result i32)
                local.get 0 local.get 1 i32.add))"#,
        )
        .unwrap(),
    )
    .unwrap();
    let wasm = wasm.display().to_string();
    let out = run(&s, &[&wasm, "--entry", "add", "--args", "[2,40]"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "42\n");
    let out = run(&s, &[&wasm, "--entry", "missing"]);
    assert_eq!(out.status.code(), Some(1));
    let broken = write(&dir, "broken.wasm", b"\0asm");
    let out = run(&s, &[&broken]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("COMPILE_ERROR"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_reports_refusals_bad_arguments_and_an_unreachable_service() {
    let s = Service::with("", &[("ISOLATE_AUTH_TOKEN", TOKEN)]);
    let dir = scratch();
    let js = write(&dir, "one.js", b"1");
    // A wrong token: the service's refusal, exit 1, the status named.
    let out = Command::new(binary())
        .args(["run", &js, "--token", "wrong-token-0000"])
        .args(["--url", &format!("http://{}", s.addr)])
        .env_remove("ISOLATE_AUTH_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Invalid bearer token [HTTP 403]"),
        "{}",
        text(&out.stderr)
    );
    // No token at all: 401.
    let out = Command::new(binary())
        .args(["run", &js, "--url", &format!("http://{}", s.addr)])
        .env_remove("ISOLATE_AUTH_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("HTTP 401"));
    // An unknown preset is the service's 400.
    let out = run(&s, &[&js, "--preset", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("HTTP 400"));
    // Usage errors: exit 2 before any request.
    for args in [
        vec![js.as_str(), "--env", "[1]"],
        vec![js.as_str(), "--env", "{"],
        vec![js.as_str(), "--entry", "f"],
        vec!["/nonexistent/file.js"],
        vec![js.as_str(), "--url", "ftp://127.0.0.1"],
    ] {
        let out = run(&s, &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let txt = write(&dir, "notes.txt", b"1");
    assert_eq!(run(&s, &[&txt]).status.code(), Some(2));
    // Nothing listens on port 9 of 127.0.0.1 here (discard): a connection error, exit 2.
    let out = Command::new(binary())
        .args(["run", &js, "--url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot reach"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn version_help_and_the_printed_configuration() {
    let out = Command::new(binary()).arg("--version").output().unwrap();
    assert_eq!(
        text(&out.stdout),
        format!("isolate-service {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(binary()).arg("--help").output().unwrap();
    let help = text(&out.stdout);
    for word in ["serve", "mcp", "run", "--print-config", "--check-config"] {
        assert!(help.contains(word), "{word} not in {help}");
    }
    let dir = scratch();
    let config = write(
        &dir,
        "c.toml",
        b"[workers]\nprewarm = 2\n[auth]\nadmin_token = \"admin-s3cr3t-token\"\n",
    );
    let out = Command::new(binary())
        .args(["--config", &config, "--print-config"])
        .env("ISOLATE_AUTH_TOKEN", "user-s3cr3t-token")
        .env("ISOLATE_LOG_FORMAT", "json")
        .env_remove("ISOLATE_PORT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(!printed.contains("s3cr3t"), "{printed}");
    let table: toml::Table = toml::from_str(&printed).unwrap();
    assert_eq!(table["workers"]["prewarm"].as_integer(), Some(2));
    assert_eq!(table["auth"]["token"].as_str(), Some("[redacted]"));
    assert_eq!(table["auth"]["admin_token"].as_str(), Some("[redacted]"));
    assert_eq!(table["log"]["format"].as_str(), Some("json"));
    assert_eq!(table["server"]["port"].as_integer(), Some(5900));
    // `serve` takes the same options; `--config` does not belong to `run`.
    let out = Command::new(binary())
        .args(["serve", "--config", &config, "--check-config"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "configuration OK\n");
    let out = Command::new(binary())
        .args(["--config", &config, "run", "x.js"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(binary()).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_is_the_default_and_explicit_and_logs_json_lines_on_request() {
    let dir = scratch();
    let config = write(&dir, "c.toml", b"[workers]\nprewarm = 1\n");
    let mut child = Command::new(binary())
        .args(["serve", "--config", &config])
        .env("ISOLATE_PORT", "0")
        .env("ISOLATE_LOG_FORMAT", "json")
        .env("ISOLATE_LOG_LEVEL", "info")
        .env_remove("ISOLATE_AUTH_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("isolate-service listening on http://")
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    let res = crate::common::request(addr, "POST", "/execute", &[], br#"{"code":"6*7"}"#);
    assert_eq!(res.status, 200);
    // Our own child, which has not been reaped.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let stderr = child.stderr.take().unwrap();
    let lines: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .collect();
    let _ = child.wait();
    assert!(!lines.is_empty());
    let mut saw_request = false;
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        if v["fields"]["message"] == "request" && v["fields"]["route"] == "/execute" {
            assert_eq!(v["fields"]["status"], 200);
            saw_request = true;
        }
    }
    assert!(saw_request, "{lines:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}
