//! The worker pool under faults: the supervisor's hard deadline, workers dying mid-execution,
//! pool exhaustion, the zygote dying, and shutdown leaving nothing behind.

use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

use crate::common::{
    alive, busy_worker, children, descendants, eventually, request, state, zygote_pid, Service,
};

#[test]
fn a_hung_worker_is_killed_at_the_hard_deadline() {
    let s = Service::with_config("[limits]\nkill_grace_ms = 200\n");
    let addr = s.addr;
    let body = json!({"code": "while (true) {}", "timeout": 1500}).to_string();
    let client =
        std::thread::spawn(move || request(addr, "POST", "/execute", &[], body.as_bytes()));
    // A stopped process cannot run its interrupt handler: only the supervisor can end it.
    let pid = busy_worker(&s);
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGSTOP);
    let started = Instant::now();
    let res = client.join().unwrap();
    assert_eq!(res.status, 422, "{}", res.body);
    let body = res.json();
    assert_eq!(body["error"]["type"], "TIMEOUT");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the worker was stopped"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "the hung worker still exists"
    );
    assert_eq!(s.execute(json!({"code": "'next'"}), 200)["result"], "next");
    assert!(s.get("/stats").json()["workers"]["killed"].as_u64() >= Some(1));
}

#[test]
fn a_worker_killed_mid_execution_answers_worker_crashed() {
    let s = Service::start();
    let addr = s.addr;
    let body = json!({"code": "while (true) {}", "timeout": 10000}).to_string();
    let client =
        std::thread::spawn(move || request(addr, "POST", "/execute", &[], body.as_bytes()));
    let pid = busy_worker(&s);
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    let res = client.join().unwrap();
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.json()["error"]["type"], "WORKER_CRASHED");
    assert_eq!(s.execute(json!({"code": "6*7"}), 200)["result"], 42);
    assert_eq!(s.get("/stats").json()["workers"]["crashed"], 1);
}

#[test]
fn a_full_pool_answers_busy() {
    let s = Service::with_config("[workers]\nprewarm = 1\nmax_concurrent = 1\nqueue_size = 0\n");
    let addr = s.addr;
    let body = json!({"code": "while (true) {}", "timeout": 1500}).to_string();
    let client =
        std::thread::spawn(move || request(addr, "POST", "/execute", &[], body.as_bytes()));
    busy_worker(&s);
    let res = s.post("/execute", r#"{"code":"1"}"#);
    assert_eq!(res.status, 503);
    assert_eq!(res.header("retry-after"), Some("1"));
    let body = res.json();
    assert_eq!(
        (body["success"].as_bool(), body["error"]["type"].as_str()),
        (Some(false), Some("BUSY"))
    );
    assert_eq!(client.join().unwrap().json()["error"]["type"], "TIMEOUT");
    assert_eq!(s.execute(json!({"code": "1"}), 200)["result"], 1);
}

#[test]
fn queued_requests_wait_for_a_slot() {
    let s = Service::with_config("[workers]\nprewarm = 1\nmax_concurrent = 1\nqueue_size = 10\n");
    let addr = s.addr;
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let body =
                json!({"code": format!("let x = 0; for (let j = 0; j < 1e5; j++) x += j; {i}")})
                    .to_string();
            std::thread::spawn(move || request(addr, "POST", "/execute", &[], body.as_bytes()))
        })
        .collect();
    let mut results: Vec<i64> = clients
        .into_iter()
        .map(|c| {
            let res = c.join().unwrap();
            assert_eq!(res.status, 200, "{}", res.body);
            res.json()["result"].as_i64().unwrap()
        })
        .collect();
    results.sort();
    assert_eq!(results, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn workers_answer_with_polling_off_and_at_its_longest() {
    for poll in [0, 10_000] {
        let s = Service::with_config(&format!(
            "[workers]\nprewarm = 2\nmax_concurrent = 2\nidle_poll_micros = {poll}\n"
        ));
        // Back to back (the next job may find the worker polling) and spaced out (it finds
        // the worker asleep): every answer is right either way.
        for i in 0..8 {
            let answer = s.execute(json!({"code": format!("{i} * 2")}), 200);
            assert_eq!(answer["result"], i * 2, "idle_poll_micros = {poll}");
            if i % 2 == 1 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let agent = s.execute(json!({"code": "7", "preset": "agent"}), 200);
        assert_eq!(agent["result"], 7, "idle_poll_micros = {poll}");
    }
}

#[test]
fn workers_are_recycled_after_recycle_after_executions() {
    let s = Service::with_config("[workers]\nprewarm = 1\nmax_concurrent = 1\nrecycle_after = 1\n");
    for _ in 0..6 {
        s.execute(json!({"code": "1"}), 200);
    }
    let stats = s.get("/stats").json();
    assert_eq!(
        stats["workers"]["recycled"], 6,
        "a fresh process for every execution"
    );
    assert!(
        stats["workers"]["spawned"].as_u64() >= Some(6),
        "every execution had its own process"
    );
}

#[test]
fn every_process_and_every_execution_draws_its_own_random_numbers() {
    // A fresh process per execution: each worker's first job runs in a context it inherited
    // from the zygote, so this fails if the generator's state is inherited with it.
    let s = Service::with_config("[workers]\nprewarm = 2\nmax_concurrent = 2\nrecycle_after = 1\n");
    let mut seen = std::collections::HashSet::new();
    for preset in ["minimal", "compute", "data", "agent"] {
        for _ in 0..4 {
            let answer = s.execute(
                json!({"code": "[Math.random(), Math.random()]", "preset": preset}),
                200,
            );
            let pair = answer["result"].to_string();
            assert!(
                seen.insert(pair.clone()),
                "{preset}: {pair} was drawn before"
            );
        }
    }
    let stats = s.get("/stats").json();
    assert!(stats["workers"]["spawned"].as_u64() >= Some(16));
    // Within one long-lived process, each execution continues the sequence.
    let s = Service::with_config("[workers]\nprewarm = 1\nmax_concurrent = 1\n");
    let a = s.execute(json!({"code": "Math.random()"}), 200)["result"].clone();
    let b = s.execute(json!({"code": "Math.random()"}), 200)["result"].clone();
    assert_ne!(a, b);
}

#[test]
fn a_dead_zygote_is_restarted() {
    let s = Service::start();
    let zygote = zygote_pid(&s);
    let _ = kill(Pid::from_raw(zygote as i32), Signal::SIGKILL);
    assert!(eventually(Duration::from_secs(10), || {
        let now = zygote_pid(&s);
        now != 0 && now != zygote
    }));
    // Its workers died with it (PDEATHSIG); new ones come from the new zygote.
    for i in 0..8 {
        assert_eq!(
            s.execute(json!({"code": format!("{i} * 2")}), 200)["result"],
            i * 2
        );
    }
    assert!(s.get("/stats").json()["workers"]["zygoteStarts"].as_u64() >= Some(2));
}

/// A container started without an init (`podman run` without `--init`) makes the service PID 1.
/// Its zygote's parent is then pid 1 while the supervisor lives, which it must not take for the
/// supervisor's death.
#[test]
fn the_service_runs_as_pid_1() {
    // unshare(1): a new PID namespace whose first process is the service, inside a user
    // namespace so that no privilege is needed, with its own /proc so that the service reads
    // its namespace's pids. --kill-child stops the service should unshare be killed.
    let wrapper = [
        "unshare",
        "--user",
        "--map-root-user",
        "--pid",
        "--mount-proc",
        "--kill-child=SIGTERM",
    ];
    let probe = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg("true")
        .status();
    if !matches!(probe, Ok(status) if status.success()) {
        eprintln!("skipped: unshare cannot create a PID namespace here ({probe:?})");
        return;
    }
    let mut s = Service::wrapped(&wrapper, "", &[]);
    let status = s.get("/status").json();
    assert_eq!(status["supervisor"]["pid"], 1, "{status}");
    assert_eq!(s.execute(json!({"code": "6 * 7"}), 200)["result"], 42);
    assert_eq!(
        s.get("/stats").json()["workers"]["zygoteStarts"].as_u64(),
        Some(1),
        "the first zygote serves"
    );
    // unshare blocks SIGTERM rather than passing it on, so the test stops the service itself
    // (by its pid outside the namespace); unshare then exits with the service's status.
    let supervisor = children(s.pid());
    assert_eq!(supervisor.len(), 1, "unshare's children: {supervisor:?}");
    let _ = kill(Pid::from_raw(supervisor[0] as i32), Signal::SIGTERM);
    assert_eq!(s.stop(), Some(0));
}

#[test]
fn shutdown_leaves_no_process_behind() {
    let mut s = Service::start();
    s.execute(json!({"code": "1"}), 200);
    let family = descendants(s.pid());
    assert!(
        family.len() >= 2,
        "expected a zygote and workers, found {family:?}"
    );
    assert_eq!(s.stop(), Some(0));
    assert!(
        eventually(Duration::from_secs(5), || family.iter().all(|p| !alive(*p))),
        "left behind: {:?}",
        family.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
}

#[test]
fn a_killed_supervisor_takes_its_workers_along() {
    let mut s = Service::start();
    let addr = s.addr;
    let body = json!({"code": "while (true) {}", "timeout": 20000}).to_string();
    let _client =
        std::thread::spawn(move || request(addr, "POST", "/execute", &[], body.as_bytes()));
    let busy = busy_worker(&s);
    let family = descendants(s.pid());
    assert!(family.contains(&busy));
    s.kill();
    assert!(
        eventually(Duration::from_secs(5), || family.iter().all(|p| !alive(*p))),
        "left behind: {:?}",
        family
            .iter()
            .map(|p| (p, state(*p)))
            .filter(|(_, s)| s.is_some())
            .collect::<Vec<_>>()
    );
}
