//! The zygote manager: one long-lived thread that owns the zygote process.
//!
//! It starts the zygote (fork+exec of `/proc/self/exe __zygote`, which is safe from a threaded
//! process), asks it for workers, waits for each new worker's greeting, and restarts the zygote
//! when it dies. The first zygote is started by `Pool::start` on the main thread; restarts
//! happen on the manager's own thread. Both threads live as long as the service, which matters
//! because `PR_SET_PDEATHSIG` (which kills the zygote when the supervisor dies) fires when the
//! *thread* that forked the child exits. The manager has a thread of its own so that its
//! blocking socket calls stay off the async runtime.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use isolate_shared::frame::{decode_frame, encode, read_frame};
use isolate_shared::message::WorkerMessage;
use isolate_shared::sys;
use isolate_shared::version;
use isolate_shared::zygote::CONTROL_FD;
use isolate_shared::zygote::{
    LockdownReport, SandboxConfig, ZygoteReply, ZygoteReport, ZygoteRequest, SPAWNED_FDS,
};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::unistd::{getpid, getppid};

use super::{PoolError, Registry, Worker};
use crate::config::{SandboxSettings, WorkersConfig};

/// The hidden subcommand that turns the binary into a zygote.
pub const ZYGOTE_ARG: &str = "__zygote";

/// A running zygote.
struct Zygote {
    child: Child,
    control: OwnedFd,
}

impl Drop for Zygote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts zygotes and forks workers from them.
pub struct ZygoteManager {
    zygote: Option<Zygote>,
    spawn_timeout: Duration,
    sandbox: SandboxSettings,
    /// The `[workers]` settings sent with the sandbox layers.
    workers: WorkersConfig,
    registry: Registry,
    /// How many times a zygote had to be (re)started, including the first.
    pub starts: u64,
    /// What the current zygote set up.
    pub report: Option<ZygoteReport>,
}

impl ZygoteManager {
    /// A manager that starts its zygote on first use.
    pub fn new(
        spawn_timeout: Duration,
        sandbox: SandboxSettings,
        workers: WorkersConfig,
        registry: Registry,
    ) -> Self {
        ZygoteManager {
            zygote: None,
            spawn_timeout,
            sandbox,
            workers,
            registry,
            starts: 0,
            report: None,
        }
    }

    /// The zygote's pid, when one is running.
    pub fn pid(&self) -> Option<u32> {
        self.zygote.as_ref().map(|z| z.child.id())
    }

    /// Reaps a dead zygote. Returns true when one was found dead.
    pub fn reap(&mut self) -> bool {
        let dead = match self.zygote.as_mut() {
            Some(z) => !matches!(z.child.try_wait(), Ok(None)),
            None => false,
        };
        if dead {
            if let Some(z) = self.zygote.take() {
                tracing::warn!(
                    pid = z.child.id(),
                    "the zygote exited; it will be restarted"
                );
            }
        }
        dead
    }

    /// Starts the zygote if none is running.
    pub fn ensure_started(&mut self) -> Result<(), PoolError> {
        self.reap();
        if self.zygote.is_none() {
            let zygote = self.start()?;
            let report = configure(
                &zygote,
                self.sandbox.to_wire(&self.workers),
                self.spawn_timeout,
            )?;
            if let Some(problem) = zygote_violation(&self.sandbox, &report) {
                return Err(PoolError::Sandbox(problem));
            }
            if let Some(why) = &report.huge_text_error {
                tracing::warn!(
                    reason = %why,
                    "the zygote's code stays in small pages (workers.huge_text_pages): \
                     each new worker process costs more page faults"
                );
            }
            if self.workers.runtime_snapshots && report.runtime_snapshot_bytes == 0 {
                tracing::warn!(
                    "runtimes are built per job (workers.runtime_snapshots): the zygote could \
                     not reserve address space for them; an address-space limit (ulimit -v, \
                     LimitAS=) below 4 GiB leaves none"
                );
            }
            self.report = Some(report);
            self.zygote = Some(zygote);
            self.starts += 1;
        }
        Ok(())
    }

    fn start(&self) -> Result<Zygote, PoolError> {
        let (ours, theirs) = sys::seqpacket_pair().map_err(PoolError::Zygote)?;
        let theirs_raw = theirs.as_raw_fd();
        let parent = getpid();
        let mut cmd = Command::new("/proc/self/exe");
        // The zygote checks its parent against this pid (see `isolate_worker::zygote`).
        cmd.arg0("isolate-service-zygote")
            .arg(ZYGOTE_ARG)
            .arg(parent.to_string())
            .env_clear()
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // Runs in the child between fork and exec. The supervisor has threads, so only
        // async-signal-safe calls are allowed here: each step below is one system call
        // (fcntl or dup2, prctl, getppid) on values captured by copy, and nothing
        // allocates (an errno becomes an io::Error without allocating).
        let child_setup = move || -> io::Result<()> {
            // SAFETY: `theirs` stays open in the supervisor until `spawn` returns, so the
            // child's copy of the descriptor table holds this number until exec.
            let theirs = unsafe { BorrowedFd::borrow_raw(theirs_raw) };
            if theirs_raw == CONTROL_FD {
                // Already in place: only clear close-on-exec.
                fcntl(theirs, FcntlArg::F_SETFD(FdFlag::empty()))?;
            } else {
                // SAFETY: in the child, CONTROL_FD is a number reserved for the control
                // socket; whatever the supervisor had there is the child's copy, replaced by
                // dup2. Ownership is given up at once (into_raw_fd), so nothing closes it and
                // it crosses exec (dup2 clears close-on-exec).
                let _ = unsafe { nix::unistd::dup2_raw(theirs, CONTROL_FD) }?.into_raw_fd();
            }
            set_pdeathsig(Signal::SIGKILL)?;
            // The supervisor exited before PDEATHSIG was armed: nothing would kill the zygote.
            // The error ends the child before exec (std exits it with status 1), and there is
            // no supervisor left to read it.
            if getppid() != parent {
                return Err(Errno::ESRCH.into());
            }
            Ok(())
        };
        // SAFETY: `child_setup` only makes async-signal-safe calls (see above), as a closure
        // run between fork and exec in a multithreaded process must.
        unsafe {
            cmd.pre_exec(child_setup);
        }
        let child = cmd.spawn().map_err(PoolError::Zygote)?;
        drop(theirs);
        let zygote = Zygote {
            child,
            control: ours,
        };
        let (reply, _) = recv_reply(&zygote.control, self.spawn_timeout)?;
        match reply {
            ZygoteReply::Hello(h) if h.protocol == version::CURRENT => {
                tracing::info!(pid = zygote.child.id(), "zygote started");
                Ok(zygote)
            }
            other => Err(PoolError::Protocol(format!(
                "unexpected zygote greeting {other:?}"
            ))),
        }
    }

    /// Forks one worker and waits for its greeting. Restarts a dead zygote once.
    pub fn spawn(&mut self) -> Result<Worker, PoolError> {
        match self.try_spawn() {
            Err(PoolError::Zygote(e)) => {
                tracing::warn!(error = %e, "the zygote did not answer; restarting it");
                self.zygote = None;
                self.try_spawn()
            }
            // A worker that died between its fork and its greeting (killed from outside, or
            // by PDEATHSIG when the zygote died meanwhile) is replaced once; a second failure
            // is reported.
            Err(PoolError::Protocol(e)) => {
                tracing::warn!(error = %e, "a new worker did not greet; forking another");
                self.try_spawn()
            }
            other => other,
        }
    }

    fn try_spawn(&mut self) -> Result<Worker, PoolError> {
        self.ensure_started()?;
        let started = Instant::now();
        self.request_spawn()?;
        let (pid, sock, pidfd) = self.receive_spawned()?;
        self.greet(pid, sock, pidfd, started)
    }

    /// Forks up to `n` workers at once: all the requests go out first, so the zygote forks the
    /// next worker while the ones before it lock themselves down (on another core), and the
    /// greetings are read last. Returns one result per worker asked for, in order; a failure
    /// that leaves the zygote's answers out of step stops the zygote (the next spawn starts
    /// another) and fails the rest of the batch.
    pub fn spawn_batch(&mut self, n: usize) -> Vec<Result<Worker, PoolError>> {
        if n <= 1 {
            return (0..n).map(|_| self.spawn()).collect();
        }
        if let Err(e) = self.ensure_started() {
            return failed_batch(e, n);
        }
        let started = Instant::now();
        let mut asked = 0;
        let mut results = Vec::with_capacity(n);
        while asked < n {
            match self.request_spawn() {
                Ok(()) => asked += 1,
                Err(e) => {
                    results.push(Err(e));
                    break;
                }
            }
        }
        let mut forked = Vec::with_capacity(asked);
        for _ in 0..asked {
            match self.receive_spawned() {
                Ok(spawned) => forked.push(Ok(spawned)),
                // The zygote answered, but could not fork: its next answer is still in step.
                Err(e @ PoolError::Spawn(_)) => forked.push(Err(e)),
                Err(e) => {
                    tracing::warn!(error = %e, "the zygote failed during a batch of spawns");
                    self.zygote = None;
                    forked.push(Err(e));
                    break;
                }
            }
        }
        let mut workers: Vec<_> = forked
            .into_iter()
            .map(|f| f.and_then(|(pid, sock, pidfd)| self.greet(pid, sock, pidfd, started)))
            .collect();
        workers.append(&mut results);
        while workers.len() < n {
            workers.push(Err(PoolError::Zygote(io::Error::other(
                "the zygote stopped answering during a batch of spawns",
            ))));
        }
        workers
    }

    /// Asks the running zygote for one worker.
    fn request_spawn(&self) -> Result<(), PoolError> {
        let Some(zygote) = self.zygote.as_ref() else {
            return Err(PoolError::Zygote(io::Error::other("no zygote")));
        };
        let frame =
            encode(&ZygoteRequest::Spawn).map_err(|e| PoolError::Protocol(e.to_string()))?;
        sys::send_with_fds(&zygote.control, &frame, &[]).map_err(PoolError::Zygote)
    }

    /// Reads the zygote's answer to one spawn request: the worker's pid, socket and pidfd.
    fn receive_spawned(&self) -> Result<(u32, OwnedFd, OwnedFd), PoolError> {
        let Some(zygote) = self.zygote.as_ref() else {
            return Err(PoolError::Zygote(io::Error::other("no zygote")));
        };
        let (reply, fds) = recv_reply(&zygote.control, self.spawn_timeout)?;
        let pid = match reply {
            ZygoteReply::Spawned { pid } => pid,
            ZygoteReply::SpawnFailed { message } => return Err(PoolError::Spawn(message)),
            other => {
                return Err(PoolError::Protocol(format!(
                    "unexpected zygote reply {other:?}"
                )))
            }
        };
        let mut fds = fds.into_iter();
        let (Some(sock), Some(pidfd), None) = (fds.next(), fds.next(), fds.next()) else {
            return Err(PoolError::Protocol(
                "the zygote sent the wrong descriptors".into(),
            ));
        };
        Ok((pid, sock, pidfd))
    }

    /// Waits for a new worker's greeting and checks its lockdown report.
    fn greet(
        &self,
        pid: u32,
        sock: OwnedFd,
        pidfd: OwnedFd,
        started: Instant,
    ) -> Result<Worker, PoolError> {
        let mut stream = UnixStream::from(sock);
        stream
            .set_read_timeout(Some(self.spawn_timeout))
            .map_err(PoolError::Zygote)?;
        let hello = read_frame::<_, WorkerMessage>(&mut stream, 4096);
        let ready = |stream: &UnixStream| -> io::Result<()> {
            stream.set_read_timeout(None)?;
            stream.set_nonblocking(true)
        };
        match hello {
            Ok(WorkerMessage::Hello(h, lockdown)) if h.protocol == version::CURRENT => {
                let problem = worker_violation(&self.sandbox, &lockdown);
                // Built now, so that any failure below still kills the process on drop.
                let worker = Worker::new(
                    pid,
                    stream,
                    pidfd,
                    lockdown,
                    started.elapsed().as_micros() as u64,
                    &self.registry,
                );
                if let Some(problem) = problem {
                    return Err(PoolError::Sandbox(problem));
                }
                ready(worker.stream.as_ref().ok_or(PoolError::Crashed(pid))?)
                    .map_err(PoolError::Zygote)?;
                Ok(worker)
            }
            other => {
                // Killed through the pidfd: no Worker was built for it.
                let _ = sys::pidfd_send_signal(&pidfd, Signal::SIGKILL);
                Err(match other {
                    Ok(msg) => PoolError::Protocol(format!("unexpected worker greeting {msg:?}")),
                    Err(e) => PoolError::Protocol(format!("worker {pid} did not greet: {e}")),
                })
            }
        }
    }
}

/// `n` failures of a batch that could not start, the first with its reason.
fn failed_batch(first: PoolError, n: usize) -> Vec<Result<Worker, PoolError>> {
    let mut out = vec![Err(first)];
    out.extend((1..n).map(|_| {
        Err(PoolError::Zygote(io::Error::other(
            "the zygote could not be started",
        )))
    }));
    out
}

/// Sends the sandbox configuration to a new zygote and returns what it set up.
fn configure(
    zygote: &Zygote,
    config: SandboxConfig,
    timeout: Duration,
) -> Result<ZygoteReport, PoolError> {
    let frame = encode(&ZygoteRequest::Configure(config))
        .map_err(|e| PoolError::Protocol(e.to_string()))?;
    sys::send_with_fds(&zygote.control, &frame, &[]).map_err(PoolError::Zygote)?;
    match recv_reply(&zygote.control, timeout)?.0 {
        ZygoteReply::Configured(report) => Ok(report),
        ZygoteReply::ConfigureFailed { message } => Err(PoolError::Sandbox(message)),
        other => Err(PoolError::Protocol(format!(
            "unexpected zygote reply {other:?}"
        ))),
    }
}

/// A required zygote-level layer that is missing, with how to fix it.
fn zygote_violation(sandbox: &SandboxSettings, report: &ZygoteReport) -> Option<String> {
    if sandbox.requires("namespaces") && report.namespaces.is_empty() {
        return Some(format!(
            "sandbox.require lists namespaces, but none could be entered: {}",
            report
                .namespace_error
                .as_deref()
                .unwrap_or("unknown reason")
        ));
    }
    None
}

/// A required worker-level layer that did not take effect, with how to fix it.
fn worker_violation(sandbox: &SandboxSettings, lockdown: &LockdownReport) -> Option<String> {
    let detail = |layer: &str| {
        lockdown
            .errors
            .iter()
            .find(|e| e.starts_with(layer))
            .cloned()
            .unwrap_or_else(|| format!("{layer}: not applied"))
    };
    if sandbox.requires("seccomp") && lockdown.seccomp_mode != 2 {
        return Some(format!(
            "sandbox.require lists seccomp, but the worker could not install its filter ({}); \
             the kernel needs CONFIG_SECCOMP_FILTER",
            detail("seccomp")
        ));
    }
    if sandbox.requires("landlock") && lockdown.landlock_abi == 0 {
        return Some(format!(
            "sandbox.require lists landlock, but it is not enforced ({}); it needs Linux 5.13+ \
             with landlock in the lsm= boot parameter",
            detail("landlock")
        ));
    }
    if sandbox.requires("rlimits") && !lockdown.rlimits {
        return Some(format!(
            "sandbox.require lists rlimits, but they were not applied ({})",
            detail("rlimits")
        ));
    }
    None
}

/// Receives one reply from the zygote, waiting at most `timeout`.
fn recv_reply(
    control: &OwnedFd,
    timeout: Duration,
) -> Result<(ZygoteReply, Vec<OwnedFd>), PoolError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let left = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(control.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, left) {
            Ok(0) => {
                return Err(PoolError::Zygote(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the zygote did not answer in time",
                )))
            }
            Ok(_) => break,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(PoolError::Zygote(e.into())),
        }
    }
    let mut buf = [0u8; 4096];
    let (n, fds) = sys::recv_with_fds(control, &mut buf, SPAWNED_FDS).map_err(PoolError::Zygote)?;
    if n == 0 {
        return Err(PoolError::Zygote(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the zygote closed its socket",
        )));
    }
    let reply = decode_frame(&buf[..n]).map_err(|e| PoolError::Protocol(e.to_string()))?;
    Ok((reply, fds))
}
