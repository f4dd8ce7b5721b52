//! The closed-loop load engine.
//!
//! Each connection is one thread owning one persistent keep-alive
//! `TcpStream` (with `TCP_NODELAY`). A thread sends the request, reads the
//! whole response, records the latency and immediately sends the next one.
//! Requests started before the end of the warm-up are not recorded. Every
//! loop is bounded: by the measured duration, by the request cap, and by the
//! per-request timeout applied to connecting, writing and reading.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::{Response, ResponseReader};

/// Pause after a failed connection attempt, so an unreachable server does
/// not turn the generator into a busy loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(20);

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Addresses to connect to, tried in order.
    pub addrs: Vec<SocketAddr>,
    /// The serialised request, resent verbatim.
    pub request: Vec<u8>,
    /// True when the method is `HEAD` (responses then have no body).
    pub head_request: bool,
    /// Open a fresh connection for every request (the request asked for
    /// `Connection: close`).
    pub close_each: bool,
    /// Number of connections, one thread each.
    pub connections: usize,
    /// Unrecorded warm-up phase before measuring.
    pub warmup: Duration,
    /// Length of the measured phase; `None` to stop on `max_requests` only.
    pub duration: Option<Duration>,
    /// Cap on measured requests across all connections.
    pub max_requests: Option<u64>,
    /// Timeout for connecting and for each request/response exchange.
    pub timeout: Duration,
    /// The only status counted as success; `None` means any 2xx.
    pub expect_status: Option<u16>,
}

/// Raw results of a run, merged across connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunResult {
    /// Latencies of all measured requests that got a complete response, sorted.
    pub samples: Vec<Duration>,
    /// Measured request attempts, including failed ones.
    pub requests: u64,
    /// Responses with a status that does not count as success.
    pub status_errors: u64,
    /// Attempts that failed with an I/O or protocol error.
    pub io_errors: u64,
    /// Connections re-established during the measured phase.
    pub reconnects: u64,
    /// Responses per status code.
    pub status_counts: BTreeMap<u16, u64>,
    /// From the start of measuring to the completion of the last measured request.
    pub elapsed: Duration,
    /// The first I/O error seen in the measured phase.
    pub first_io_error: Option<String>,
}

/// State shared by all worker threads.
struct Shared<'a> {
    /// The run configuration.
    config: &'a RunConfig,
    /// Requests started at or after this instant are recorded.
    measure_start: Instant,
    /// No request is started at or after this instant.
    end: Option<Instant>,
    /// Measured request slots handed out so far (for `max_requests`).
    claimed: AtomicU64,
}

/// Runs the benchmark and returns the merged results.
pub fn run(config: &RunConfig) -> io::Result<RunResult> {
    let invalid = |message: &str| io::Error::new(io::ErrorKind::InvalidInput, message.to_string());
    if config.addrs.is_empty() {
        return Err(invalid("no address to connect to"));
    }
    if config.connections == 0 {
        return Err(invalid("at least one connection is required"));
    }
    if config.timeout.is_zero() {
        return Err(invalid("the timeout must be positive"));
    }
    if config.duration.is_none() && config.max_requests.is_none() {
        return Err(invalid("either a duration or a request cap is required"));
    }

    let start = Instant::now();
    let measure_start = start + config.warmup;
    let shared = Shared {
        config,
        measure_start,
        end: config.duration.map(|duration| measure_start + duration),
        claimed: AtomicU64::new(0),
    };

    let workers = thread::scope(|scope| -> io::Result<Vec<WorkerStats>> {
        let mut handles = Vec::with_capacity(config.connections);
        for index in 0..config.connections {
            let shared = &shared;
            let handle = thread::Builder::new()
                .name(format!("bench-conn-{index}"))
                .spawn_scoped(scope, move || worker(shared))?;
            handles.push(handle);
        }
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .map_err(|_| io::Error::other("a connection thread panicked"))
            })
            .collect()
    })?;

    let mut result = RunResult::default();
    let mut last_done: Option<Instant> = None;
    for stats in workers {
        result.samples.extend(stats.samples);
        result.requests += stats.requests;
        result.status_errors += stats.status_errors;
        result.io_errors += stats.io_errors;
        result.reconnects += stats.reconnects;
        for (status, count) in stats.status_counts {
            *result.status_counts.entry(status).or_default() += count;
        }
        if result.first_io_error.is_none() {
            result.first_io_error = stats.first_io_error;
        }
        last_done = last_done.max(stats.last_done);
    }
    result.samples.sort_unstable();
    result.elapsed = last_done.map_or(Duration::ZERO, |done| {
        done.saturating_duration_since(measure_start)
    });
    Ok(result)
}

/// Per-thread tallies, merged at the end.
#[derive(Debug, Default)]
struct WorkerStats {
    /// Latencies of measured requests with a complete response.
    samples: Vec<Duration>,
    /// Measured attempts.
    requests: u64,
    /// Measured responses with an unsuccessful status.
    status_errors: u64,
    /// Measured attempts that failed with an I/O error.
    io_errors: u64,
    /// Reconnections during the measured phase.
    reconnects: u64,
    /// Responses per status code.
    status_counts: BTreeMap<u16, u64>,
    /// Completion time of the last measured attempt.
    last_done: Option<Instant>,
    /// The first measured I/O error.
    first_io_error: Option<String>,
}

/// Result of one request attempt.
enum Outcome {
    /// A complete response was read.
    Response(Response),
    /// The request failed after a connection was available.
    Failed(io::Error),
    /// No connection could be established.
    ConnectFailed(io::Error),
}

/// The body of one connection thread.
fn worker(shared: &Shared<'_>) -> WorkerStats {
    let config = shared.config;
    let mut stats = WorkerStats::default();
    let mut client = Client::new(config);
    // Connect up front so that the first recorded latency does not include
    // the initial handshake; a failure here is retried by the loop.
    if let Ok(reader) = client.connect() {
        client.conn = Some(reader);
    }

    loop {
        let now = Instant::now();
        if shared.end.is_some_and(|end| now >= end) {
            break;
        }
        let measuring = now >= shared.measure_start;
        if measuring {
            if let Some(limit) = config.max_requests {
                if shared.claimed.fetch_add(1, Ordering::Relaxed) >= limit {
                    break;
                }
            }
        }

        let reconnects_before = client.reconnects;
        let started = Instant::now();
        let outcome = client.request();
        let done = Instant::now();
        let connect_failed = matches!(outcome, Outcome::ConnectFailed(_));

        if measuring {
            stats.requests += 1;
            stats.last_done = Some(done);
            stats.reconnects += client.reconnects - reconnects_before;
            match outcome {
                Outcome::Response(response) => {
                    stats.samples.push(done.saturating_duration_since(started));
                    *stats.status_counts.entry(response.status).or_default() += 1;
                    let success = match config.expect_status {
                        Some(expected) => response.status == expected,
                        None => (200..300).contains(&response.status),
                    };
                    if !success {
                        stats.status_errors += 1;
                    }
                }
                Outcome::Failed(error) | Outcome::ConnectFailed(error) => {
                    stats.io_errors += 1;
                    if stats.first_io_error.is_none() {
                        stats.first_io_error = Some(error.to_string());
                    }
                }
            }
        }

        if connect_failed {
            let pause = match shared.end {
                Some(end) => CONNECT_BACKOFF.min(end.saturating_duration_since(Instant::now())),
                None => CONNECT_BACKOFF,
            };
            thread::sleep(pause);
        }
    }
    stats
}

/// One keep-alive HTTP connection with reconnect logic.
struct Client<'a> {
    /// The run configuration.
    config: &'a RunConfig,
    /// The open connection, if any.
    conn: Option<ResponseReader<TcpStream>>,
    /// Responses received on the current connection.
    served: u64,
    /// Index into `config.addrs` of the address that last worked.
    preferred: usize,
    /// Whether a connection was ever established.
    ever_connected: bool,
    /// Connections established after the first one.
    reconnects: u64,
}

impl<'a> Client<'a> {
    /// A client with no connection yet.
    fn new(config: &'a RunConfig) -> Self {
        Client {
            config,
            conn: None,
            served: 0,
            preferred: 0,
            ever_connected: false,
            reconnects: 0,
        }
    }

    /// Opens a new connection, trying the last working address first.
    fn connect(&mut self) -> io::Result<ResponseReader<TcpStream>> {
        let addrs = &self.config.addrs;
        let mut last_error = None;
        for offset in 0..addrs.len() {
            let index = (self.preferred + offset) % addrs.len();
            match open_stream(&addrs[index], self.config.timeout) {
                Ok(stream) => {
                    self.preferred = index;
                    if self.ever_connected {
                        self.reconnects += 1;
                    }
                    self.ever_connected = true;
                    self.served = 0;
                    return Ok(ResponseReader::new(stream));
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no address to connect to")))
    }

    /// Sends one request and reads its response, reconnecting as needed.
    ///
    /// If a reused connection turns out to have been closed by the server
    /// before any response byte arrived, the request is retried once on a
    /// fresh connection (the usual HTTP client behaviour for stale
    /// keep-alive connections).
    fn request(&mut self) -> Outcome {
        let mut retried = false;
        loop {
            let mut reader = match self.conn.take() {
                Some(reader) => reader,
                None => match self.connect() {
                    Ok(reader) => reader,
                    Err(error) => return Outcome::ConnectFailed(error),
                },
            };
            let reused = self.served > 0;
            match exchange(&mut reader, self.config) {
                Ok(response) => {
                    if response.keep_alive && !self.config.close_each {
                        self.served += 1;
                        self.conn = Some(reader);
                    }
                    return Outcome::Response(response);
                }
                Err((error, response_started)) => {
                    let stale = reused
                        && !response_started
                        && matches!(
                            error.kind(),
                            io::ErrorKind::UnexpectedEof
                                | io::ErrorKind::ConnectionReset
                                | io::ErrorKind::ConnectionAborted
                                | io::ErrorKind::BrokenPipe
                        );
                    if stale && !retried {
                        retried = true;
                        continue;
                    }
                    return Outcome::Failed(error);
                }
            }
        }
    }
}

/// Connects to `addr` and configures the socket.
fn open_stream(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// Writes the request and reads the response within the configured timeout.
///
/// On failure also reports whether any response bytes had arrived.
fn exchange(
    reader: &mut ResponseReader<TcpStream>,
    config: &RunConfig,
) -> Result<Response, (io::Error, bool)> {
    reader.begin(Some(Instant::now() + config.timeout));
    if let Err(error) = reader.get_mut().write_all(&config.request) {
        return Err((error, false));
    }
    match reader.read_response(config.head_request, None) {
        Ok(response) => Ok(response),
        Err(error) => Err((error, reader.received() > 0)),
    }
}
