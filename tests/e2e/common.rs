//! The test fixture: starts the real `isolate-service` binary on an ephemeral port with a
//! configuration of the test's choosing, talks HTTP/1.1 to it over a plain TCP socket, and
//! looks at its process tree through `/proc`.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// A running service; stopped (and its directory removed) on drop.
pub struct Service {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: PathBuf,
    stderr: mpsc::Receiver<String>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Response {
    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// A header by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn scratch_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("isolate-e2e-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_isolate-service")
}

impl Service {
    /// Starts with the default configuration.
    pub fn start() -> Service {
        Service::with_config("")
    }

    /// Starts with `toml` as the configuration file.
    pub fn with_config(toml: &str) -> Service {
        Service::with(toml, &[])
    }

    /// Starts with `toml` as the configuration file and extra environment variables.
    pub fn with(toml: &str, env: &[(&str, &str)]) -> Service {
        Service::wrapped(&[], toml, env)
    }

    /// Starts the binary as the last argument of `wrapper` (a program and its arguments, say
    /// `unshare`), with `toml` and `env` as in [`Service::with`]. [`Service::pid`] is then the
    /// wrapper's pid.
    pub fn wrapped(wrapper: &[&str], toml: &str, env: &[(&str, &str)]) -> Service {
        let dir = scratch_dir();
        let config = dir.join("config.toml");
        std::fs::write(&config, toml).expect("write config");
        let mut cmd = match wrapper {
            [program, args @ ..] => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(binary());
                cmd
            }
            [] => Command::new(binary()),
        };
        cmd.arg("--config")
            .arg(&config)
            .env("ISOLATE_PORT", "0")
            .env("ISOLATE_HOST", "127.0.0.1")
            .env("ISOLATE_LOG_LEVEL", "warn")
            .env_remove("ISOLATE_AUTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start isolate-service");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("isolate-service listening on http://") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let (etx, erx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("listen address"),
            Err(_) => {
                let _ = child.kill();
                let logs: Vec<String> = erx.try_iter().collect();
                panic!("the service did not start: {}", logs.join("\n"));
            }
        };
        let service = Service {
            child: Some(child),
            addr,
            dir,
            stderr: erx,
        };
        service.wait_for_idle_workers(1);
        service
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The configuration file it was started with (a test may rewrite it and send SIGHUP).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// Sends `signal` to the supervisor.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(child) = &self.child {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, signal);
        }
    }

    /// Everything the service logged to stderr so far.
    pub fn logs(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// Sends a request and reads the whole answer.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        request(self.addr, method, path, headers, body)
    }

    /// `POST path` with a JSON text body.
    pub fn post(&self, path: &str, body: &str) -> Response {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }

    /// `POST /execute` with `body` and expects the given status.
    pub fn execute(&self, body: Value, status: u16) -> Value {
        let res = self.post("/execute", &body.to_string());
        assert_eq!(res.status, status, "{body} answered {}", res.body);
        res.json()
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// Waits until `/health` reports at least `n` idle workers.
    pub fn wait_for_idle_workers(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let res = self.get("/health");
            if res.status == 200 && res.json()["workers"]["idle"].as_u64().unwrap_or(0) >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("fewer than {n} idle workers after 20 s");
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the service did not stop within 15 s of SIGTERM");
    }

    /// SIGKILLs the supervisor and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            // A failing test shows what the service logged (warnings and up) beside its panic.
            for line in self.stderr.try_iter() {
                eprintln!("service: {line}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTP/1.1 exchange with `Connection: close`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && *v == "chunked");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !chunked {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if chunked {
        out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n0\r\n\r\n");
    } else {
        out.extend_from_slice(body);
    }
    // The server may answer (413) and close before reading everything: ignore write errors.
    let _ = s.write_all(&out);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

/// Parses a raw HTTP/1.1 answer (headers, and a plain or chunked body).
pub fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP header in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
            let len = usize::from_str_radix(String::from_utf8_lossy(&rest[..pos]).trim(), 16)
                .unwrap_or(0);
            if len == 0 {
                break;
            }
            out.extend_from_slice(&rest[pos + 2..pos + 2 + len]);
            rest = &rest[pos + 4 + len..];
        }
        body = out;
    }
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}

/// (pid, parent pid, state) of every process.
fn processes() -> Vec<(u32, u32, char)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces: parse after the last ')'.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let mut fields = after.split(' ');
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push((pid, ppid, state));
    }
    out
}

/// Every descendant of `root`, zombies included (so that tests can look for them; use
/// [`alive`] or [`state`] for liveness). `root` must be a real process, never 0 or 1: a test
/// that signals "descendants" of those would hit unrelated processes.
pub fn descendants(root: u32) -> Vec<u32> {
    assert!(root > 1, "refusing to list the descendants of pid {root}");
    let procs = processes();
    let mut found = HashSet::from([root]);
    let mut changed = true;
    while changed {
        changed = false;
        for (pid, ppid, _) in &procs {
            if found.contains(ppid) && found.insert(*pid) {
                changed = true;
            }
        }
    }
    found.remove(&root);
    found.into_iter().collect()
}

/// The direct children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|&(_, ppid, _)| ppid == pid)
        .map(|(child, _, _)| child)
        .collect()
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    processes().iter().any(|(p, _, s)| *p == pid && *s != 'Z')
}

/// The state letter of `pid` (`R`, `S`, `T`, …).
pub fn state(pid: u32) -> Option<char> {
    processes()
        .into_iter()
        .find(|(p, _, _)| *p == pid)
        .map(|(_, _, s)| s)
}

/// Waits until a worker of `service` is running code (state `R` in ten samples in a row, 5 ms
/// apart, which rules out a new worker briefly busy preparing its context) and returns its pid.
pub fn busy_worker(service: &Service) -> u32 {
    let zygote = zygote_pid(service);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut streak: HashMap<u32, u32> = HashMap::new();
    while Instant::now() < deadline {
        let running: HashSet<u32> = descendants(zygote)
            .into_iter()
            .filter(|p| state(*p) == Some('R'))
            .collect();
        streak.retain(|pid, _| running.contains(pid));
        for pid in running {
            let n = streak.entry(pid).or_insert(0);
            *n += 1;
            if *n >= 10 {
                return pid;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no busy worker found");
}

/// The zygote's pid, from `/stats`. While the pool restarts its zygote `/stats` says 0, so this
/// waits up to 10 s for a pid.
pub fn zygote_pid(service: &Service) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = service.get("/stats").json();
        let pid = stats["workers"]["zygotePid"].as_u64().expect("zygotePid") as u32;
        if pid > 1 {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no zygote pid in /stats: {stats}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` until it is true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}
