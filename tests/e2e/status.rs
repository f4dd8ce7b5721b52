//! The lockdown seen from outside: `/proc` of every worker, `/status`, and strict mode.

use std::process::Command;

use serde_json::json;

use crate::common::{binary, descendants, zygote_pid, Service};

fn proc_field(pid: u32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(&format!("{key}:"))
            .map(|v| v.trim().to_string())
    })
}

#[test]
fn every_worker_is_filtered_and_in_its_own_network_namespace() {
    let s = Service::start();
    s.execute(json!({"code": "1"}), 200);
    let zygote = zygote_pid(&s);
    let status = s.get("/status").json();
    // The workers the pool lists have greeted, which a worker does once locked down; a process
    // the zygote has just forked may still be on its way there (two filters, not yet three).
    let workers: Vec<u32> = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["pid"].as_u64())
        .map(|pid| pid as u32)
        .collect();
    assert!(!workers.is_empty());
    let supervisor_net = std::fs::read_link(format!("/proc/{}/ns/net", s.pid())).unwrap();
    let mut checked = 0;
    for pid in workers {
        // A worker that exits between the listing and the read is skipped.
        let Some(seccomp) = proc_field(pid, "Seccomp") else {
            continue;
        };
        checked += 1;
        assert_eq!(seccomp, "2", "worker {pid}");
        assert_eq!(
            proc_field(pid, "NoNewPrivs").as_deref(),
            Some("1"),
            "worker {pid}"
        );
        // The zygote's two, inherited, and the worker's narrowing one.
        assert_eq!(
            proc_field(pid, "Seccomp_filters").as_deref(),
            Some("3"),
            "worker {pid}"
        );
        let net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
        assert_ne!(
            net, supervisor_net,
            "worker {pid} shares the supervisor's network"
        );
    }
    // Idle workers stay: at least one must have been looked at.
    assert!(
        checked > 0,
        "every listed worker was gone before it was read"
    );
    // The zygote runs under the filters its workers inherit.
    assert_eq!(proc_field(zygote, "Seccomp").as_deref(), Some("2"));
    assert_eq!(proc_field(zygote, "Seccomp_filters").as_deref(), Some("2"));
    let sandbox = &status["sandbox"];
    assert_eq!(sandbox["seccomp"]["zygoteFiltered"], true, "{status}");
    assert!(sandbox["seccomp"]["zygoteError"].is_null(), "{status}");
    for layer in ["seccomp", "landlock", "namespaces", "noNewPrivs"] {
        assert_eq!(sandbox[layer]["active"], true, "{layer}: {status}");
    }
    assert_eq!(
        sandbox["seccomp"]["policySha256"].as_str().map(str::len),
        Some(64)
    );
    assert_eq!(
        sandbox["namespaces"]["entered"],
        json!(["user", "net", "ipc", "uts", "mnt"])
    );
    for w in status["workers"].as_array().unwrap() {
        assert_eq!(w["seccomp"], 2);
        assert!(w["rssBytes"].as_u64() > Some(0));
    }
    assert_eq!(status["zygote"]["alive"], true);
    assert!(status["supervisor"]["rssBytes"].as_u64() > Some(0));
}

#[test]
fn status_reports_layers_switched_off_as_inactive() {
    let s = Service::with_config(
        "[sandbox]\nseccomp = false\nlandlock = false\nnamespaces = false\nrlimits = false\n",
    );
    let status = s.get("/status").json();
    for layer in ["seccomp", "landlock", "namespaces"] {
        assert_eq!(status["sandbox"][layer]["active"], false, "{layer}");
        assert_eq!(status["sandbox"][layer]["enabled"], false, "{layer}");
    }
    for w in status["workers"].as_array().unwrap() {
        assert_eq!(w["seccomp"], 0);
    }
    // Without the lockdown the code still runs, in separate processes.
    assert_eq!(s.execute(json!({"code": "2 + 2"}), 200)["result"], 4);
}

#[test]
fn status_takes_the_admin_token_when_one_is_set() {
    let toml = "[auth]\ntoken = \"user-token-123456\"\nadmin_token = \"admin-token-123456\"\n";
    let s = Service::with_config(toml);
    assert_eq!(s.get("/status").status, 401);
    let user = [("Authorization", "Bearer user-token-123456")];
    let admin = [("Authorization", "Bearer admin-token-123456")];
    assert_eq!(s.request("GET", "/status", &user, b"").status, 403);
    assert_eq!(s.request("GET", "/status", &admin, b"").status, 200);
    assert_eq!(s.request("GET", "/stats", &user, b"").status, 200);
    // The admin key is a key: it reads /stats (any key may), but runs no code.
    assert_eq!(s.request("GET", "/stats", &admin, b"").status, 200);
    let run = s.request("POST", "/execute", &admin, br#"{"code":"1"}"#);
    assert_eq!(run.status, 403, "{}", run.body);
    assert!(run.body.contains("\"scope\":\"execute\""), "{}", run.body);
}

#[test]
fn strict_mode_starts_when_the_required_layers_hold_and_refuses_contradictions() {
    let s = Service::with_config(
        "[sandbox]\nrequire = [\"seccomp\", \"landlock\", \"namespaces\", \"rlimits\"]\n",
    );
    assert_eq!(
        s.execute(json!({"code": "'strict'"}), 200)["result"],
        "strict"
    );
    let dir = std::env::temp_dir().join(format!("isolate-e2e-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("strict.toml");
    std::fs::write(
        &path,
        "[sandbox]\nseccomp = false\nrequire = [\"seccomp\"]\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .arg("--config")
        .arg(&path)
        .env("ISOLATE_PORT", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sandbox.require"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pool whose worst case cannot fit this machine's memory is lowered at start-up (or kept,
/// with `workers.memory_fit = "warn"`), and the log and `/status` say which.
#[test]
fn a_pool_too_big_for_the_machine_is_lowered_and_says_so() {
    // 1000 workers × (1 GiB + 16 MiB) is far beyond any test machine.
    let big =
        "[workers]\nmax_concurrent = 1000\nprewarm = 2\n[limits]\nmemory_bytes = 1073741824\n\
               [sandbox]\nrlimit_data_bytes = 2147483648\n";
    let s = Service::with_config(big);
    let status = s.get("/status").json();
    let memory = &status["memory"];
    assert_eq!(memory["action"], "lowered", "{memory}");
    assert_eq!(memory["configuredMaxConcurrent"], 1000);
    let lowered = memory["maxConcurrent"].as_u64().unwrap();
    assert!((1..1000).contains(&lowered), "{memory}");
    assert_eq!(status["queue"]["maxConcurrent"], lowered);
    assert!(
        memory["worstCaseBytes"].as_u64().unwrap()
            <= memory["memoryBytes"].as_u64().unwrap() / 100 * 90
    );
    assert!(s
        .logs()
        .iter()
        .any(|l| l.contains("lowered workers.max_concurrent from 1000 to")));
    s.execute(json!({"code": "'still serving'"}), 200);

    let s = Service::with_config(&big.replace("[workers]\n", "[workers]\nmemory_fit = \"warn\"\n"));
    let status = s.get("/status").json();
    assert_eq!(status["memory"]["action"], "warned");
    assert_eq!(status["queue"]["maxConcurrent"], 1000);
    assert!(s.logs().iter().any(|l| l.contains("is kept at 1000")));

    let s = Service::start();
    assert_eq!(
        s.get("/status").json()["memory"]["configuredMaxConcurrent"],
        50
    );
}

/// Bytes of anonymous huge pages in the read-only mappings (code and constants) of `pid`.
///
/// `None` when the process is gone or has no memory left to look at: a worker that has
/// just exited stays a zombie until the zygote reaps it, and its `smaps` is empty.
fn huge_code_bytes(pid: u32) -> Option<u64> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut code = false;
    let mut code_mappings = 0;
    let mut total = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next()) {
            (Some(range), Some(perms)) if range.contains('-') && perms.len() == 4 => {
                code = perms == "r-xp" || perms == "r--p";
                code_mappings += usize::from(code);
            }
            (Some("AnonHugePages:"), Some(kb)) if code => total += kb.parse::<u64>().ok()? * 1024,
            _ => {}
        }
    }
    (code_mappings > 0).then_some(total)
}

#[test]
fn workers_inherit_the_zygotes_code_in_huge_pages_and_the_setting_turns_it_off() {
    let s = Service::start();
    let status = s.get("/status").json();
    let moved = status["zygote"]["hugeTextBytes"].as_u64().unwrap();
    if moved == 0 {
        // A kernel without transparent huge pages: the reason is reported instead.
        let why = status["zygote"]["hugeTextError"].as_str().unwrap_or("");
        assert!(!why.is_empty(), "neither moved nor a reason: {status}");
        eprintln!("the code was not moved into huge pages here: {why}");
    } else {
        assert_eq!(moved % (2 << 20), 0, "whole 2 MiB blocks: {status}");
        assert!(status["zygote"]["hugeTextError"].is_null(), "{status}");
        assert_eq!(huge_code_bytes(zygote_pid(&s)), Some(moved));
        // Every worker, including a fresh `agent` one, runs on the zygote's huge pages.
        let agent = s.execute(
            json!({"code": "console.log('x'); 6*7", "preset": "agent"}),
            200,
        );
        assert_eq!(agent["result"], 42);
        let mut seen = 0;
        for pid in descendants(zygote_pid(&s)) {
            if let Some(bytes) = huge_code_bytes(pid) {
                assert_eq!(bytes, moved, "worker {pid}");
                seen += 1;
            }
        }
        assert!(seen > 0, "no worker to look at");
    }
    for preset in ["minimal", "compute", "data", "agent"] {
        let answer = s.execute(
            json!({"code": "[1, 2].map((x) => x * 2)", "preset": preset}),
            200,
        );
        assert_eq!(answer["result"], json!([2, 4]), "{preset}");
    }
    drop(s);

    let off = Service::with_config("[workers]\nhuge_text_pages = false\n");
    let status = off.get("/status").json();
    assert_eq!(status["zygote"]["hugeTextBytes"], 0, "{status}");
    assert!(status["zygote"]["hugeTextError"].is_null(), "{status}");
    assert_eq!(huge_code_bytes(zygote_pid(&off)), Some(0));
    assert_eq!(off.execute(json!({"code": "1+1"}), 200)["result"], 2);
}

/// The `Size` and `Rss` of the `[stack]` mapping of `pid`, in kB.
fn stack_kb(pid: u32) -> Option<(u64, u64)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let block = smaps.split_once("[stack]")?.1;
    let field = |key: &str| -> Option<u64> {
        let line = block.lines().find(|l| l.starts_with(key))?;
        line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((field("Size:")?, field("Rss:")?))
}

#[test]
fn the_zygote_forks_with_its_dead_stack_given_back() {
    // The start-up's deepest calls leave most of the zygote's stack resident; it gives those
    // pages back before its first fork, so that no fork copies their page-table entries.
    let s = Service::start();
    s.execute(json!({"code": "1"}), 200);
    let (size, rss) = stack_kb(zygote_pid(&s)).expect("the zygote's stack in its smaps");
    assert!(
        rss <= 64,
        "{rss} of {size} kB of the zygote's stack resident"
    );
}

/// With `workers.runtime_snapshots` (the default) the zygote prepares each preset's runtime
/// once and reports its snapshots; a worker restores the runtime after every job, so one
/// worker serving every job shows that nothing of a job survives into the next, that
/// `Math.random` does not repeat, and that a job growing its heap far past the prepared
/// runtime leaves the next one unaffected. Switched off, the same holds with runtimes built
/// per job, and the report says 0.
#[test]
fn runtimes_are_restored_from_snapshots_and_the_setting_turns_it_off() {
    for on in [true, false] {
        let s = Service::with_config(&format!(
            "[workers]\nprewarm = 1\nmax_concurrent = 1\nruntime_snapshots = {on}\n"
        ));
        let status = s.get("/status").json();
        let bytes = status["zygote"]["runtimeSnapshotBytes"].as_u64().unwrap();
        if on {
            // Four presets, each a runtime of a few hundred kilobytes.
            assert!((400_000..16_000_000).contains(&bytes), "{status}");
        } else {
            assert_eq!(bytes, 0, "{status}");
        }
        let mut draws = std::collections::HashSet::new();
        for preset in ["minimal", "compute", "data"] {
            for _ in 0..3 {
                let first = s.execute(
                    json!({"code": "[typeof leaked, typeof JSON, Math.random()]", "preset": preset}),
                    200,
                );
                assert_eq!(first["result"][0], "undefined", "{preset} {first}");
                assert_eq!(first["result"][1], "object", "{preset} {first}");
                assert!(draws.insert(first["result"][2].to_string()), "{first}");
                let set = s.execute(
                    json!({"code": "globalThis.leaked = 1; delete globalThis.JSON; typeof JSON", "preset": preset}),
                    200,
                );
                assert_eq!(set["result"], "undefined", "{preset} {set}");
            }
        }
        let big = s.execute(
            json!({"code": "const a = []; for (let i = 0; i < 3e5; i++) a.push('x' + i); a.length"}),
            200,
        );
        assert_eq!(big["result"], 300000, "{big}");
        let after = s.execute(json!({"code": "[typeof a, typeof leaked]"}), 200);
        assert_eq!(
            after["result"],
            json!(["undefined", "undefined"]),
            "{after}"
        );
        // Workers served many of these jobs each (the pool may keep a second one idle).
        let status = s.get("/status").json();
        let most = status["workers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w["executions"].as_u64())
            .max();
        assert!(most >= Some(10), "{status}");
        assert_eq!(s.get("/stats").json()["workers"]["recycled"], 0);
    }
}
