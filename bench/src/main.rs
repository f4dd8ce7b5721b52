//! `isolate-bench`: a closed-loop HTTP/1.1 load generator for isolate-service.
//!
//! Every connection is a thread with one keep-alive TCP connection that sends
//! a request, waits for the full response, and sends the next one. After an
//! optional unrecorded warm-up, per-request latencies are recorded and
//! summarised with exact nearest-rank percentiles, printed as a human-readable
//! block and, with `--json`, as a single JSON line.
//!
//! Only the Rust standard library is used. See [`USAGE`] for the options.

mod http;
mod runner;
mod stats;

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use crate::http::Url;
use crate::runner::RunConfig;
use crate::stats::{Latency, Summary};

/// Command-line help text.
const USAGE: &str = "\
isolate-bench: closed-loop HTTP/1.1 load generator (http:// only, no TLS)

USAGE:
    isolate-bench --url URL [OPTIONS]

EXAMPLE:
    isolate-bench --url http://127.0.0.1:5900/execute --body '{\"code\":\"1+1\"}' \\
        --header 'Authorization: Bearer x' --connections 8 --duration 10 --warmup 2

OPTIONS:
    --url URL              Target http://host[:port][/path][?query]; host may be a
                           name, an IPv4 literal or a bracketed IPv6 literal
    --method METHOD        Request method [default: GET, or POST when a body is given]
    --body TEXT            Request body
    --body-file PATH       Read the request body from PATH (instead of --body)
    --header 'NAME: VALUE' Extra request header; may be repeated. Host, User-Agent,
                           Accept and (with a body) Content-Type: application/json
                           are sent unless overridden; Content-Length is automatic
    --connections N        Concurrent keep-alive connections, one thread each [default: 1]
    --duration SECS        Measured duration, fractional allowed
                           [default: 10, or until --requests is reached if given]
    --warmup SECS          Unrecorded warm-up before measuring [default: 0]
    --requests N           Stop after N measured requests (with --duration: whichever
                           comes first)
    --timeout SECS         Per-request timeout for connect, send and receive [default: 10]
    --label NAME           Label for the report [default: bench]
    --expect-status CODE   Only CODE counts as success [default: any 2xx]
    --json                 Also print one JSON line on stdout; the human-readable
                           report then goes to stderr
    -h, --help             Print this help

Options accept '--name VALUE' or '--name=VALUE'. Errors are non-successful
statuses plus I/O errors. Exit status: 0 after a run, 1 if the run could not
start, 2 for invalid arguments.
";

/// Default measured duration when neither `--duration` nor `--requests` is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Default per-request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on `--connections` (each one is a thread).
const MAX_CONNECTIONS: usize = 10_000;

/// Fully validated command-line options.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    /// Target URL.
    url: Url,
    /// Request method.
    method: String,
    /// Request body, if any.
    body: Option<Vec<u8>>,
    /// Extra headers in the order given.
    headers: Vec<(String, String)>,
    /// Number of connections.
    connections: usize,
    /// Measured duration; `None` when only `--requests` bounds the run.
    duration: Option<Duration>,
    /// Warm-up duration.
    warmup: Duration,
    /// Cap on measured requests.
    requests: Option<u64>,
    /// Per-request timeout.
    timeout: Duration,
    /// Report label.
    label: String,
    /// Status that counts as success, if not "any 2xx".
    expect_status: Option<u16>,
    /// Whether to print the JSON line.
    json: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    /// Print usage and exit.
    Help,
    /// Run a benchmark.
    Run(Box<Options>),
}

/// Stores `value` in `slot`, rejecting a repeated option.
fn set_once<T>(slot: &mut Option<T>, value: T, flag: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{flag} given more than once"));
    }
    *slot = Some(value);
    Ok(())
}

/// Parses a number of seconds (fractional allowed, not negative).
fn parse_seconds(flag: &str, text: &str) -> Result<Duration, String> {
    let bad = || format!("{flag} expects a number of seconds, got {text:?}");
    let seconds: f64 = text.trim().parse().map_err(|_| bad())?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(bad());
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

/// Parses a positive integer.
fn parse_count<T: std::str::FromStr + PartialOrd + From<u8>>(
    flag: &str,
    text: &str,
) -> Result<T, String> {
    match text.trim().parse::<T>() {
        Ok(value) if value >= T::from(1) => Ok(value),
        _ => Err(format!("{flag} expects a positive integer, got {text:?}")),
    }
}

/// Parses a `Name: value` header argument.
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("--header expects 'Name: value', got {text:?}"))?;
    let name = name.trim();
    let value = value.trim();
    if !http::is_token(name) {
        return Err(format!("invalid header name {name:?}"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!("header {name} contains a line break or NUL"));
    }
    if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
    {
        return Err(format!(
            "{name} is set automatically from the body and cannot be given with --header"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// Parses command-line arguments (without the program name).
fn parse_args<I>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = OsString>,
{
    let mut url = None;
    let mut method = None;
    let mut body = None;
    let mut body_file = None;
    let mut headers = Vec::new();
    let mut connections = None;
    let mut duration = None;
    let mut warmup = None;
    let mut requests = None;
    let mut timeout = None;
    let mut label = None;
    let mut expect_status = None;
    let mut json = false;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|arg| format!("argument {arg:?} is not valid UTF-8"))?;
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value)),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--json" => {
                if inline.is_some() {
                    return Err("--json does not take a value".to_string());
                }
                json = true;
                continue;
            }
            _ => {}
        }
        if !flag.starts_with('-') {
            return Err(format!("unexpected argument {flag:?}"));
        }
        let value = match inline {
            Some(value) => value.to_string(),
            None => match flag.as_str() {
                "--url" | "--method" | "--body" | "--body-file" | "--header" | "--connections"
                | "--duration" | "--warmup" | "--requests" | "--timeout" | "--label"
                | "--expect-status" => args
                    .next()
                    .ok_or_else(|| format!("{flag} needs a value"))?
                    .into_string()
                    .map_err(|v| format!("value {v:?} for {flag} is not valid UTF-8"))?,
                _ => return Err(format!("unknown option {flag:?}")),
            },
        };
        match flag.as_str() {
            "--url" => set_once(&mut url, Url::parse(&value)?, &flag)?,
            "--method" => {
                if !http::is_token(&value) {
                    return Err(format!("invalid method {value:?}"));
                }
                set_once(&mut method, value, &flag)?;
            }
            "--body" => set_once(&mut body, value.into_bytes(), &flag)?,
            "--body-file" => set_once(&mut body_file, value, &flag)?,
            "--header" => headers.push(parse_header(&value)?),
            "--connections" => {
                let n: usize = parse_count(&flag, &value)?;
                if n > MAX_CONNECTIONS {
                    return Err(format!("--connections must be at most {MAX_CONNECTIONS}"));
                }
                set_once(&mut connections, n, &flag)?;
            }
            "--duration" => {
                let d = parse_seconds(&flag, &value)?;
                if d.is_zero() {
                    return Err("--duration must be greater than zero".to_string());
                }
                set_once(&mut duration, d, &flag)?;
            }
            "--warmup" => set_once(&mut warmup, parse_seconds(&flag, &value)?, &flag)?,
            "--requests" => set_once(&mut requests, parse_count(&flag, &value)?, &flag)?,
            "--timeout" => {
                let t = parse_seconds(&flag, &value)?;
                if t.is_zero() {
                    return Err("--timeout must be greater than zero".to_string());
                }
                set_once(&mut timeout, t, &flag)?;
            }
            "--label" => set_once(&mut label, value, &flag)?,
            "--expect-status" => {
                let code = value
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|code| (100..=999).contains(code))
                    .ok_or_else(|| {
                        format!("--expect-status expects a status code, got {value:?}")
                    })?;
                set_once(&mut expect_status, code, &flag)?;
            }
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }

    let url = url.ok_or("--url is required")?;
    if body.is_some() && body_file.is_some() {
        return Err("--body and --body-file cannot be used together".to_string());
    }
    if let Some(path) = body_file {
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read --body-file {path:?}: {e}"))?;
        body = Some(bytes);
    }
    let method = method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.to_string());
    if method == "HEAD" && body.is_some() {
        return Err("a HEAD request cannot have a body".to_string());
    }
    let duration = match (duration, requests) {
        (None, None) => Some(DEFAULT_DURATION),
        (duration, _) => duration,
    };

    Ok(Command::Run(Box::new(Options {
        url,
        method,
        body,
        headers,
        connections: connections.unwrap_or(1),
        duration,
        warmup: warmup.unwrap_or(Duration::ZERO),
        requests,
        timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        label: label.unwrap_or_else(|| "bench".to_string()),
        expect_status,
        json,
    })))
}

/// Resolves the target, runs the benchmark and builds the summary.
fn run(options: &Options) -> Result<Summary, String> {
    let addrs = options
        .url
        .resolve()
        .map_err(|e| format!("cannot resolve {}: {e}", options.url.host))?;
    let close_each = options.headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("connection")
            && value
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("close"))
    });
    let config = RunConfig {
        addrs,
        request: http::encode_request(
            &options.method,
            &options.url,
            &options.headers,
            options.body.as_deref(),
        ),
        head_request: options.method == "HEAD",
        close_each,
        connections: options.connections,
        warmup: options.warmup,
        duration: options.duration,
        max_requests: options.requests,
        timeout: options.timeout,
        expect_status: options.expect_status,
    };
    let result = runner::run(&config).map_err(|e| format!("benchmark failed: {e}"))?;
    Ok(Summary {
        label: options.label.clone(),
        target: format!("{} {}", options.method, options.url),
        connections: options.connections,
        requests: result.requests,
        status_errors: result.status_errors,
        io_errors: result.io_errors,
        reconnects: result.reconnects,
        status_counts: result.status_counts,
        duration: result.elapsed,
        warmup: options.warmup,
        latency: Latency::from_sorted(&result.samples),
        first_io_error: result.first_io_error,
    })
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(options)) => options,
        Err(message) => {
            eprintln!("isolate-bench: {message}");
            eprintln!("Try 'isolate-bench --help' for more information.");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(summary) => {
            if options.json {
                eprint!("{}", summary.human());
                println!("{}", summary.json());
            } else {
                print!("{}", summary.human());
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("isolate-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn options(list: &[&str]) -> Options {
        match parse_args(args(list)) {
            Ok(Command::Run(options)) => *options,
            other => panic!("expected options, got {other:?}"),
        }
    }

    #[test]
    fn parses_command_lines() {
        let o = options(&[
            "--url",
            "http://127.0.0.1:5900/execute",
            "--body",
            r#"{"code":"1+1"}"#,
            "--header",
            "Authorization: Bearer x",
            "--header=X-Other:  y ",
            "--connections",
            "8",
            "--duration",
            "0.5",
            "--warmup=2",
            "--json",
            "--label",
            "smoke",
            "--expect-status",
            "200",
        ]);
        assert_eq!(o.method, "POST");
        assert_eq!(o.url.port, 5900);
        assert_eq!(o.body.as_deref(), Some(&br#"{"code":"1+1"}"#[..]));
        assert_eq!(
            o.headers,
            vec![
                ("Authorization".to_string(), "Bearer x".to_string()),
                ("X-Other".to_string(), "y".to_string()),
            ]
        );
        assert_eq!(o.connections, 8);
        assert_eq!(o.duration, Some(Duration::from_millis(500)));
        assert_eq!(o.warmup, Duration::from_secs(2));
        assert!(o.json);
        assert_eq!(o.label, "smoke");
        assert_eq!(o.expect_status, Some(200));

        let o = options(&["--url", "http://localhost/"]);
        assert_eq!(o.method, "GET");
        assert_eq!(o.duration, Some(DEFAULT_DURATION));
        assert_eq!(o.requests, None);

        let o = options(&["--url", "http://localhost/", "--requests", "5"]);
        assert_eq!((o.duration, o.requests), (None, Some(5)));

        assert_eq!(parse_args(args(&["--help"])), Ok(Command::Help));
        for bad in [
            &[][..],
            &["--url"],
            &["--url", "https://localhost/"],
            &["--url", "http://localhost/", "--connections", "0"],
            &["--url", "http://localhost/", "--duration", "-1"],
            &["--url", "http://localhost/", "--duration", "0"],
            &["--url", "http://localhost/", "--warmup", "abc"],
            &["--url", "http://localhost/", "--header", "no colon"],
            &[
                "--url",
                "http://localhost/",
                "--header",
                "Content-Length: 3",
            ],
            &[
                "--url",
                "http://localhost/",
                "--body",
                "a",
                "--body-file",
                "f",
            ],
            &["--url", "http://localhost/", "--url", "http://localhost/"],
            &["--url", "http://localhost/", "--bogus"],
            &["--url", "http://localhost/", "stray"],
            &["--url", "http://localhost/", "--expect-status", "abc"],
            &["--url", "http://localhost/", "--method", "GE T"],
            &["--url", "http://localhost/", "--json=1"],
            &[
                "--url",
                "http://localhost/",
                "--body-file",
                "/nonexistent/body",
            ],
        ] {
            assert!(parse_args(args(bad)).is_err(), "accepted {bad:?}");
        }
    }

    /// Serves one connection: 200 responses, every third one chunked and
    /// every fifth one ending with `Connection: close`.
    fn serve(stream: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        for served in 1u32.. {
            let mut content_length = 0usize;
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            assert!(line.starts_with("POST /execute HTTP/1.1"), "{line:?}");
            loop {
                line.clear();
                reader.read_line(&mut line)?;
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; content_length];
            reader.read_exact(&mut body)?;
            assert_eq!(body, br#"{"code":"1+1"}"#);
            let close = served % 5 == 0;
            let connection = if close { "Connection: close\r\n" } else { "" };
            let response = if served % 3 == 0 {
                format!(
                    "HTTP/1.1 200 OK\r\n{connection}Transfer-Encoding: chunked\r\n\r\n\
                     1\r\n2\r\n0\r\n\r\n"
                )
            } else {
                format!("HTTP/1.1 200 OK\r\n{connection}Content-Length: 1\r\n\r\n2")
            };
            writer.write_all(response.as_bytes())?;
            if close {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Starts the test server; returns its URL and a stop function.
    fn start_server() -> (String, impl FnOnce()) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    thread::spawn(move || serve(stream));
                }
            }
        });
        let stopper = move || {
            stop.store(true, Ordering::SeqCst);
            // Wake the acceptor so it sees the flag.
            let _ = TcpStream::connect(addr);
            acceptor.join().unwrap();
        };
        (format!("http://{addr}/execute"), stopper)
    }

    #[test]
    fn runs_against_a_local_server() {
        let (url, stop) = start_server();
        let o = options(&[
            "--url",
            &url,
            "--body",
            r#"{"code":"1+1"}"#,
            "--connections",
            "2",
            "--duration",
            "0.3",
            "--warmup",
            "0.05",
            "--timeout",
            "2",
            "--label",
            "local",
        ]);
        let summary = run(&o).unwrap();
        assert!(summary.requests > 0);
        assert_eq!(summary.errors(), 0, "{}", summary.human());
        assert_eq!(summary.status_counts.get(&200), Some(&summary.requests));
        assert!(summary.reconnects > 0, "server closes every 5th response");
        assert!(summary.latency.is_some());
        assert!(summary.duration >= Duration::from_millis(250));
        let json = summary.json().to_string();
        assert!(json.starts_with("{\"label\":\"local\",\"connections\":2,"));
        assert!(json.contains(&format!(
            "\"status_counts\":{{\"200\":{}}}",
            summary.requests
        )));

        // A request cap stops the run after exactly that many requests, and
        // --expect-status turns other statuses into errors.
        let o = options(&[
            "--url",
            &url,
            "--body",
            r#"{"code":"1+1"}"#,
            "--connections",
            "2",
            "--requests",
            "25",
            "--expect-status",
            "201",
        ]);
        let summary = run(&o).unwrap();
        assert_eq!(summary.requests, 25);
        assert_eq!(summary.status_errors, 25);
        assert_eq!(summary.io_errors, 0);
        stop();
    }

    #[test]
    fn counts_io_errors_when_nothing_listens() {
        // Bind and drop a listener to get a port that is (almost surely) closed.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/");
        let o = options(&["--url", &url, "--requests", "3", "--timeout", "1"]);
        let summary = run(&o).unwrap();
        assert_eq!(summary.requests, 3);
        assert_eq!(summary.io_errors, 3);
        assert!(summary.latency.is_none());
        assert!(summary.first_io_error.is_some());
    }
}
