//! The zygote: a single-threaded fork server.
//!
//! The supervisor execs its own binary with the hidden `__zygote` argument and the zygote's end
//! of a `SOCK_SEQPACKET` socket at descriptor [`CONTROL_FD`]. The zygote warms the engine once
//! (code pages, allocator arenas and the time-zone database are touched before any fork, so
//! every worker inherits them copy-on-write), greets with [`ZygoteReply::Hello`], takes its
//! sandbox configuration ([`ZygoteRequest::Configure`]: it enters the namespaces and compiles
//! the seccomp policy, see [`crate::lockdown`]), then for each [`ZygoteRequest::Spawn`] forks a
//! worker, which locks itself down before greeting, and hands the supervisor the worker's
//! socket and a pidfd for it.
//!
//! **Invariants:** the zygote never starts a thread (forking a threaded process is unsafe) and
//! never runs user code. It ignores `SIGCHLD`, so the kernel reaps workers as they exit and no
//! zombie is left behind; the supervisor learns of a worker's exit through its pidfd. It dies
//! with the supervisor (`PR_SET_PDEATHSIG` and end-of-file on the control socket), and its
//! workers die with it the same way.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};

use isolate_shared::frame::{decode_frame, encode};
use isolate_shared::message::{CodeForm, ExecuteJob, Hello, JsLimits, Language, Preset};
use isolate_shared::zygote::{ZygoteReply, ZygoteRequest};

use crate::lockdown::Lockdown;
use crate::{js, serve, sys};

pub use isolate_shared::zygote::CONTROL_FD;

/// Exit code when the control socket fails or carries garbage.
pub const EXIT_PROTOCOL: i32 = 2;
/// Exit code of a worker whose setup failed before it could serve.
pub const EXIT_SETUP: i32 = 4;
/// Exit code of a worker that panicked outside a job.
pub const EXIT_PANIC: i32 = 5;

/// Entry point of the `__zygote` subcommand. Returns the process exit code.
pub fn main() -> i32 {
    // SAFETY: the supervisor placed the control socket at CONTROL_FD before exec, and nothing
    // else in this fresh process owns that descriptor.
    let control = unsafe { OwnedFd::from_raw_fd(CONTROL_FD) };
    match run(&control) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("isolate-service zygote: {e}");
            EXIT_PROTOCOL
        }
    }
}

fn run(control: &OwnedFd) -> io::Result<()> {
    sys::set_parent_death_signal(libc::SIGKILL)?;
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } == 1 {
        return Err(io::Error::other("the supervisor is already gone"));
    }
    sys::close_from(CONTROL_FD + 1)?;
    sys::set_signal(libc::SIGCHLD, true)?;
    sys::set_signal(libc::SIGPIPE, true)?;
    crate::js::warm();
    warm_up();
    // The WebAssembly engine, its signal handlers and a warmed compiler, before any fork. A
    // failure leaves wasm unavailable (its jobs answer so) without stopping JavaScript.
    if let Err(e) = crate::wasm::init() {
        eprintln!("isolate-service zygote: {e}");
    }
    // A context per preset that every worker inherits ready-made (copy-on-write); the zygote
    // never uses them. Each serves one job in a worker, with `Math.random` reseeded after the
    // fork (see `js::reseed`).
    let templates: Vec<js::Prepared> = [
        Preset::Compute,
        Preset::Agent,
        Preset::Data,
        Preset::Minimal,
    ]
    .into_iter()
    .filter_map(|preset| js::Prepared::new(preset).ok())
    .collect();
    let mut templates = std::mem::ManuallyDrop::new(templates);
    let mut lockdown: Option<Lockdown> = None;
    send(control, &ZygoteReply::Hello(Hello::current()), &[])?;
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, _) = sys::recv_with_fds(control, &mut buf, 0)?;
        if n == 0 {
            return Ok(()); // The supervisor closed the socket: time to go.
        }
        let request: ZygoteRequest = decode_frame(&buf[..n]).map_err(io::Error::other)?;
        match request {
            ZygoteRequest::Configure(_) if lockdown.is_some() => {
                let message = "the sandbox is already configured".to_string();
                send(control, &ZygoteReply::ConfigureFailed { message }, &[])?;
            }
            ZygoteRequest::Configure(config) => match Lockdown::prepare(config) {
                Ok((prepared, report)) => {
                    lockdown = Some(prepared);
                    send(control, &ZygoteReply::Configured(report), &[])?;
                }
                Err(message) => send(control, &ZygoteReply::ConfigureFailed { message }, &[])?,
            },
            ZygoteRequest::Spawn => match spawn(&mut templates, lockdown.as_ref()) {
                Ok((pid, sock, pidfd)) => send(
                    control,
                    &ZygoteReply::Spawned { pid },
                    &[sock.as_raw_fd(), pidfd.as_raw_fd()],
                )?,
                Err(e) => send(
                    control,
                    &ZygoteReply::SpawnFailed {
                        message: e.to_string(),
                    },
                    &[],
                )?,
            },
        }
    }
}

fn send(control: &OwnedFd, reply: &ZygoteReply, fds: &[RawFd]) -> io::Result<()> {
    let frame = encode(reply).map_err(io::Error::other)?;
    sys::send_with_fds(control, &frame, fds)
}

/// Runs one small job so that everything a first execution touches is loaded before forking.
fn warm_up() {
    let _ = js::execute(&ExecuteJob {
        code: "const d = new Date(0); [d.getTimezoneOffset(), JSON.stringify({a: [1]}), /x/.test('x')]".into(),
        preset: Preset::Compute,
        env_json: None,
        timeout_ms: 1000,
        limits: JsLimits::default(),
        language: Language::JavaScript,
        form: CodeForm::Auto,
        data_json: None,
    });
    // The TypeScript stripper builds tables on first use; every worker inherits them.
    js::typescript::warm();
}

/// Forks one worker. Returns its pid, the supervisor's end of its socket and its pidfd.
fn spawn(
    templates: &mut Vec<js::Prepared>,
    lockdown: Option<&Lockdown>,
) -> io::Result<(u32, OwnedFd, OwnedFd)> {
    let (ours, theirs) = UnixStream::pair()?;
    // SAFETY: getpid has no preconditions.
    let zygote_pid = unsafe { libc::getpid() };
    // SAFETY: the zygote is single-threaded, so the child gets a consistent copy of the
    // process; the child never returns into the zygote's code (it ends in `_exit`).
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // The child's copies of the templates become its first contexts.
            let first = std::mem::take(templates);
            let none = Lockdown::none();
            let lockdown = lockdown.unwrap_or(&none);
            let code = catch_unwind(AssertUnwindSafe(|| {
                worker_main(theirs, zygote_pid, first, lockdown)
            }))
            .unwrap_or(EXIT_PANIC);
            // SAFETY: ending the child without running the zygote's destructors or atexit
            // handlers, which belong to the parent.
            unsafe { libc::_exit(code) }
        }
        pid => {
            drop(theirs);
            let pidfd = sys::pidfd_open(pid)?;
            Ok((pid as u32, OwnedFd::from(ours), pidfd))
        }
    }
}

/// The first code a worker runs after the fork.
fn worker_main(
    sock: UnixStream,
    zygote_pid: libc::pid_t,
    first: Vec<js::Prepared>,
    lockdown: &Lockdown,
) -> i32 {
    // Before anything can draw from it: the generator's state is the zygote's until now.
    js::reseed();
    let setup = || -> io::Result<UnixStream> {
        sys::set_signal(libc::SIGCHLD, false)?;
        sys::set_parent_death_signal(libc::SIGKILL)?;
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != zygote_pid {
            return Err(io::Error::other("the zygote exited during the fork"));
        }
        // Keep nothing but the job socket: it moves to CONTROL_FD (replacing this process's
        // copy of the zygote's control socket) and everything above it is closed.
        let fd = sys::move_fd(OwnedFd::from(sock), CONTROL_FD)?;
        sys::close_from(CONTROL_FD + 1)?;
        Ok(UnixStream::from(fd))
    };
    match setup() {
        // Lock down last, once nothing but the job socket is left; then greet.
        Ok(sock) => serve::run(sock, first, lockdown.apply()),
        Err(_) => EXIT_SETUP,
    }
}
