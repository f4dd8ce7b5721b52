//! The service's life as a daemon: a stop under load that lets requests in flight finish and
//! leaves no process (not even a zombie), a SIGKILL that takes every process along, SIGHUP
//! reloads that drop no request, and the systemd notifications.

use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{busy_worker, descendants, eventually, request, Service};

/// Whether `pid` has no entry in `/proc` at all: not running, and not a zombie either.
fn vanished(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// What is left of `pids`: each one's state and its parent's pid.
fn left_over(pids: &[u32]) -> Vec<(u32, Option<char>, Option<String>)> {
    pids.iter()
        .filter(|p| !vanished(**p))
        .map(|p| {
            let ppid = std::fs::read_to_string(format!("/proc/{p}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("PPid:"))
                        .map(str::to_string)
                });
            (*p, crate::common::state(*p), ppid)
        })
        .collect()
}

const FINISHING: &str = "const t = Date.now(); while (Date.now() - t < 800) {} 'finished'";

#[test]
fn sigterm_under_load_lets_requests_finish_within_the_bound_and_leaves_no_process() {
    let mut s = Service::with_config(
        "[server]\nshutdown_timeout_ms = 2000\n[workers]\nprewarm = 2\nmax_concurrent = 4\n",
    );
    let addr = s.addr;
    let endless = json!({"code": "while (true) {}", "timeout": 20000}).to_string();
    let hung: Vec<_> = (0..2)
        .map(|_| {
            let body = endless.clone();
            std::thread::spawn(move || {
                std::panic::catch_unwind(|| request(addr, "POST", "/execute", &[], body.as_bytes()))
                    .ok()
                    .map(|r| r.status)
            })
        })
        .collect();
    busy_worker(&s);
    let finishing = std::thread::spawn(move || {
        let body = json!({"code": FINISHING, "timeout": 5000}).to_string();
        request(addr, "POST", "/execute", &[], body.as_bytes())
    });
    std::thread::sleep(Duration::from_millis(200));
    let family = descendants(s.pid());
    assert!(family.len() >= 4, "a zygote and three workers: {family:?}");
    let refused_after_stop = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
    });
    let t0 = Instant::now();
    assert_eq!(s.stop(), Some(0));
    let took = t0.elapsed();
    let done = finishing.join().expect("the finishing request");
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["result"], "finished");
    assert!(
        refused_after_stop.join().unwrap(),
        "a new connection was accepted while stopping"
    );
    for h in hung {
        // Cut off at the bound: no answer, or the connection closed.
        assert_ne!(h.join().unwrap(), Some(200));
    }
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "stopped in {took:?}, the bound is 2 s"
    );
    // Gone for good right after the exit: no process and no zombie.
    assert!(
        eventually(Duration::from_millis(500), || left_over(&family).is_empty()),
        "left behind: {:?}; logs: {:#?}",
        left_over(&family),
        s.logs()
    );
}

#[test]
fn a_sigkilled_supervisor_leaves_no_process_and_no_zombie() {
    let mut s = Service::start();
    let addr = s.addr;
    let body = json!({"code": "while (true) {}", "timeout": 20000}).to_string();
    let _client = std::thread::spawn(move || {
        let _ =
            std::panic::catch_unwind(|| request(addr, "POST", "/execute", &[], body.as_bytes()));
    });
    busy_worker(&s);
    let family = descendants(s.pid());
    s.kill();
    assert!(
        eventually(Duration::from_secs(5), || left_over(&family).is_empty()),
        "left behind: {:?}",
        left_over(&family)
    );
}

#[test]
fn sighup_reloads_auth_and_limits_without_dropping_a_request() {
    let s = Service::with_config(
        "[auth]\ntoken = \"first-token-0123\"\nrate_limit_per_minute = 0\n\
         [limits]\nmax_timeout_ms = 30000\n",
    );
    let bearer = |t: &str| format!("Bearer {t}");
    let first = bearer("first-token-0123");
    let second = bearer("second-token-0123");
    let addr = s.addr;
    let in_flight = {
        let first = first.clone();
        std::thread::spawn(move || {
            let body = json!({"code": FINISHING, "timeout": 5000}).to_string();
            request(
                addr,
                "POST",
                "/execute",
                &[("Authorization", &first)],
                body.as_bytes(),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(
        s.config_path(),
        "[workers]\nqueue_size = 7\n[auth]\ntoken = \"second-token-0123\"\nrate_limit_per_minute = 0\n\
         [limits]\nmax_timeout_ms = 6000\n[log]\nlevel = \"info\"\n",
    )
    .unwrap();
    s.signal(nix::sys::signal::Signal::SIGHUP);
    let stats = |token: &str| s.request("GET", "/stats", &[("Authorization", token)], b"");
    let reloaded = eventually(Duration::from_secs(5), || stats(&second).status == 200);
    assert!(reloaded, "the new token never worked: {:#?}", s.logs());
    assert_eq!(stats(&first).status, 403);
    assert_eq!(
        stats(&second).json()["limits"]["maxTimeoutMs"],
        6000,
        "limits were not reloaded"
    );
    let done = in_flight.join().unwrap();
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["result"], "finished");
    // A key that needs a restart is named, and its running value stays.
    let mut seen = Vec::new();
    let named = eventually(Duration::from_secs(5), || {
        seen.extend(s.logs());
        seen.iter()
            .any(|l| l.contains("workers changed") && l.contains("needs a restart"))
    });
    assert!(named, "{seen:#?}");
    assert_eq!(stats(&second).status, 200);
    // An invalid file changes nothing.
    std::fs::write(s.config_path(), "[auth]\ntoken = \"short\"\n").unwrap();
    s.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(eventually(Duration::from_secs(5), || {
        s.logs().iter().any(|l| l.contains("reload refused"))
    }));
    assert_eq!(stats(&second).status, 200);
}

#[test]
fn systemd_hears_ready_once_warm_then_reloading_and_stopping() {
    let dir = std::env::temp_dir().join(format!("isolate-e2e-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut s = Service::with(
        "[workers]\nprewarm = 3\n",
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    let mut buf = [0u8; 512];
    let mut next = || {
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = next();
    assert!(ready.starts_with("READY=1\n"), "{ready}");
    assert!(s.get("/health").json()["workers"]["idle"].as_u64() >= Some(3));
    s.signal(nix::sys::signal::Signal::SIGHUP);
    let reloading = next();
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(next(), "READY=1");
    s.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(next(), "STOPPING=1");
    assert_eq!(s.stop(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
