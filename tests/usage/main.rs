//! `usage.cpuMs` against a known amount of CPU. A test binary of its own: cargo runs test
//! binaries one after another, so no other test competes for the cores while the busy loop
//! below runs (which would make the worker get less CPU than its wall time).

#[path = "../e2e/common.rs"]
#[allow(dead_code)]
mod common;

use serde_json::json;

use common::Service;

#[test]
fn cpu_ms_is_the_workers_cpu_time_of_the_job() {
    let s = Service::start();
    // A 200 ms busy loop. A run that got less than a core (the machine may be shared) is tried
    // again, at most three times; every run must still use no more CPU than wall time.
    let code = "const t = Date.now(); let n = 0; while (Date.now() - t < 200) n++; n";
    let mut seen = Vec::new();
    let close = (0..3).any(|_| {
        let r = s.post(
            "/execute",
            &json!({"code": code, "timeout": 5000}).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let usage = r.json()["usage"].clone();
        let cpu = usage["cpuMs"].as_f64().unwrap();
        let wall = usage["wallMs"].as_f64().unwrap();
        assert!(cpu <= wall + 5.0, "more CPU than wall time: {usage}");
        seen.push(usage);
        (150.0..=250.0).contains(&cpu)
    });
    assert!(close, "cpuMs of a 200 ms busy loop: {seen:#?}");
    // A run killed at its deadline still reports the CPU it used.
    let r = s.post(
        "/execute",
        &json!({"code": "while (true) {}", "timeout": 300}).to_string(),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let usage = &r.json()["usage"];
    assert!(usage["cpuMs"].as_f64().unwrap() > 50.0, "{usage}");
}
