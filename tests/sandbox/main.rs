//! Proof, not promise: each test starts the real binary (built with the `sandbox-selftest`
//! feature), asks a real locked-down worker to attempt forbidden operations, and asserts
//! exactly how each attempt ended: the errno it got, or the worker killed by seccomp.
//! Layers are also switched on one at a time, to show that each denies something by itself.

#[path = "../e2e/common.rs"]
#[allow(dead_code)]
mod common;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;

use nix::errno::Errno;
use serde_json::{json, Value};

use common::{alive, Service};

/// The test's own targets: a TCP listener on loopback and a Unix socket. Nothing must reach
/// either of them.
struct Targets {
    tcp: TcpListener,
    unix: UnixListener,
    unix_path: std::path::PathBuf,
}

impl Targets {
    fn new() -> Targets {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        tcp.set_nonblocking(true).unwrap();
        let unix_path = std::env::temp_dir().join(format!(
            "isolate-sandbox-{}-{:?}.sock",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&unix_path);
        let unix = UnixListener::bind(&unix_path).unwrap();
        unix.set_nonblocking(true).unwrap();
        Targets {
            tcp,
            unix,
            unix_path,
        }
    }

    fn assert_untouched(&self) {
        assert_eq!(
            self.tcp.accept().map(|_| ()).unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "a worker reached the TCP listener"
        );
        assert_eq!(
            self.unix.accept().map(|_| ()).unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "a worker reached the Unix socket"
        );
    }
}

impl Drop for Targets {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.unix_path);
    }
}

fn probe(s: &Service, t: &Targets, name: &str) -> Value {
    let body = json!({
        "probe": name,
        "tcpPort": t.tcp.local_addr().unwrap().port(),
        "unixPath": t.unix_path.to_str().unwrap(),
    });
    let res = s.post("/_selftest", &body.to_string());
    assert_eq!(res.status, 200, "{name}: {}", res.body);
    res.json()
}

fn failed(errno: Errno) -> Value {
    json!({"outcome": "failed", "errno": errno as i32, "syscall": null})
}

/// Stopped by the seccomp kill list, which names the system call it trapped.
fn killed(syscall: &str) -> Value {
    json!({"outcome": "killed", "errno": null, "syscall": syscall})
}

fn outcome(v: &Value) -> Value {
    json!({"outcome": v["outcome"], "errno": v["errno"], "syscall": v["syscall"]})
}

#[test]
fn every_forbidden_operation_fails_or_kills_inside_a_locked_down_worker() {
    let s = Service::start();
    let t = Targets::new();
    let expected = [
        // The allowlist refuses: the call fails with EPERM and the worker lives on.
        ("open_passwd", failed(Errno::EPERM)),
        ("create_tmp_file", failed(Errno::EPERM)),
        ("tcp_connect", failed(Errno::EPERM)),
        ("unix_connect", failed(Errno::EPERM)),
        ("kill_supervisor", failed(Errno::EPERM)),
        // What the zygote may call and its workers may not.
        ("socketpair", failed(Errno::EPERM)),
        ("pidfd_open", failed(Errno::EPERM)),
        ("prctl", failed(Errno::EPERM)),
        ("seccomp", failed(Errno::EPERM)),
        // The kill list: the call never runs, the worker reports which call it was and exits.
        // (glibc's fork() is the clone system call.)
        ("execve", killed("execve")),
        ("fork", killed("clone")),
        ("ptrace", killed("ptrace")),
        ("mount", killed("mount")),
        ("unshare", killed("unshare")),
        ("bpf", killed("bpf")),
        ("io_uring_setup", killed("io_uring_setup")),
        ("keyctl", killed("keyctl")),
        ("perf_event_open", killed("perf_event_open")),
        ("process_vm_readv", killed("process_vm_readv")),
        // A control: an allowed call still works.
        (
            "getpid",
            json!({"outcome": "succeeded", "errno": null, "syscall": null}),
        ),
    ];
    for (name, want) in expected {
        assert_eq!(outcome(&probe(&s, &t, name)), want, "{name}");
    }
    t.assert_untouched();
    assert!(alive(s.pid()), "the supervisor survived every probe");
    assert!(!std::path::Path::new("/tmp")
        .read_dir()
        .unwrap()
        .flatten()
        .any(|e| e
            .file_name()
            .to_string_lossy()
            .starts_with("isolate-selftest-")));
    // Ordinary JavaScript still runs in the same locked-down workers.
    assert_eq!(
        s.execute(json!({"code": "[1, 2, 3].map(x => x * x)"}), 200)["result"],
        json!([1, 4, 9])
    );
    let status = s.get("/status").json();
    assert_eq!(status["sandbox"]["seccomp"]["active"], true, "{status}");
}

#[test]
fn landlock_alone_denies_files_network_and_signals() {
    let s = Service::with_config("[sandbox]\nseccomp = false\nnamespaces = false\n");
    let t = Targets::new();
    for (name, errno) in [
        ("open_passwd", Errno::EACCES),
        ("create_tmp_file", Errno::EACCES),
        ("tcp_connect", Errno::EACCES),
        ("kill_supervisor", Errno::EPERM),
    ] {
        assert_eq!(outcome(&probe(&s, &t, name)), failed(errno), "{name}");
    }
    t.assert_untouched();
    let status = s.get("/status").json();
    assert_eq!(status["sandbox"]["landlock"]["active"], true);
    assert!(
        status["sandbox"]["landlock"]["enforcedAbi"].as_i64() >= Some(6),
        "{status}"
    );
    assert_eq!(status["sandbox"]["seccomp"]["active"], false);
}

#[test]
fn the_network_namespace_alone_leaves_no_route_out() {
    let s = Service::with_config("[sandbox]\nseccomp = false\nlandlock = false\n");
    let t = Targets::new();
    // The socket can be created, but its namespace has only a loopback that is down.
    assert_eq!(
        outcome(&probe(&s, &t, "tcp_connect")),
        failed(Errno::ENETUNREACH)
    );
    t.assert_untouched();
    let status = s.get("/status").json();
    assert_eq!(status["sandbox"]["namespaces"]["active"], true, "{status}");
}

#[test]
fn rlimits_alone_stop_new_processes() {
    let s =
        Service::with_config("[sandbox]\nseccomp = false\nlandlock = false\nnamespaces = false\n");
    let t = Targets::new();
    // RLIMIT_NPROC is 0; only a process with CAP_SYS_RESOURCE (root) is exempt, and then the
    // fork goes through (and the probe reaps the child: no zombie may be left).
    let got = outcome(&probe(&s, &t, "fork"));
    let want = if nix::unistd::geteuid().is_root() {
        json!({"outcome": "succeeded", "errno": null, "syscall": null})
    } else {
        failed(Errno::EAGAIN)
    };
    assert_eq!(got, want);
    let zygote = common::zygote_pid(&s);
    let zombies: Vec<u32> = common::descendants(zygote)
        .into_iter()
        .filter(|p| common::state(*p) == Some('Z'))
        .collect();
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    let status = s.get("/status").json();
    assert_eq!(
        status["sandbox"]["rlimits"]["inForce"]["processes"], "0",
        "{status}"
    );
    assert_eq!(
        status["sandbox"]["rlimits"]["inForce"]["fileSizeBytes"],
        "0"
    );
}

#[test]
fn a_forbidden_system_call_is_reported_by_name_and_counted_apart_from_crashes() {
    let s = Service::start();
    let t = Targets::new();
    let res = probe(&s, &t, "execve");
    assert_eq!(res["syscall"], "execve");
    let stats = s.get("/stats").json();
    assert_eq!(stats["workers"]["violations"], 1);
    assert_eq!(stats["workers"]["crashed"], 0, "a violation is not a crash");
    assert_eq!(s.execute(json!({"code": "'next'"}), 200)["result"], "next");
}

#[test]
fn a_host_call_from_a_job_that_allows_none_kills_the_worker() {
    // Even with fetch configured, only an `agent` execution may make host calls: a worker
    // that sends one during any other job is treated as subverted.
    let s = Service::with_config("[fetch]\nallow_hosts = [\"127.0.0.1\"]\n");
    let t = Targets::new();
    let res = probe(&s, &t, "host_call");
    assert_eq!(res["outcome"], "refused_host_call", "{res}");
    let stats = s.get("/stats").json();
    assert_eq!(stats["workers"]["violations"], 1);
    assert_eq!(stats["workers"]["crashed"], 0);
    assert_eq!(s.execute(json!({"code": "'next'"}), 200)["result"], "next");
    t.assert_untouched();
}

#[test]
fn webassembly_runs_in_strictly_locked_down_workers_that_still_say_no() {
    use base64::Engine as _;
    // Every layer required: the service refuses to start if any is missing. One worker, so the
    // probes below run in the process that compiled and ran the modules.
    let s = Service::with_config(
        "[workers]\nprewarm = 1\nmax_concurrent = 1\n\
         [sandbox]\nrequire = [\"seccomp\", \"landlock\", \"namespaces\", \"rlimits\"]\n",
    );
    let t = Targets::new();
    let add = wat::parse_str(
        r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#,
    )
    .unwrap();
    let echo = wat::parse_str(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "clock_time_get" (func $c (param i32 i64 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 64) "ok")
          (func (export "_start")
            (drop (call $r (i32.const 128) (i32.const 32)))
            (drop (call $c (i32.const 1) (i64.const 1) (i32.const 160)))
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 2))
            (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
    )
    .unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    for (bytes, args, want) in [
        (&add, json!([2, 3]), json!(5)),
        (&echo, json!([]), Value::Null),
    ] {
        let res = s.post("/wasm/compile", &json!({"bytes": b64(bytes)}).to_string());
        assert_eq!(res.status, 200, "{}", res.body);
        let id = res.json()["moduleId"].clone();
        let res = s.post(
            "/wasm/run",
            &json!({"moduleId": id, "args": args}).to_string(),
        );
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.json()["result"], want);
        if want.is_null() {
            assert_eq!(res.json()["stdout"], "ok");
        }
    }
    for (name, want) in [
        ("memfd_create", failed(Errno::EPERM)),
        ("open_passwd", failed(Errno::EPERM)),
        ("tcp_connect", failed(Errno::EPERM)),
        ("fork", killed("clone")),
    ] {
        assert_eq!(outcome(&probe(&s, &t, name)), want, "{name}");
    }
    t.assert_untouched();
    let status = s.get("/status").json();
    for layer in ["seccomp", "landlock", "namespaces"] {
        assert_eq!(
            status["sandbox"][layer]["active"], true,
            "{layer}: {status}"
        );
    }
}
