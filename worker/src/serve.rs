//! A worker's life: greet the supervisor, then answer jobs on one socket.
//!
//! Exit codes (seen by nobody but tests, since the zygote lets the kernel reap its children):
//! [`EXIT_OK`] when the supervisor closed the socket or the worker asked to be recycled,
//! [`EXIT_PROTOCOL`] on a malformed or unexpected frame, [`EXIT_SOCKET`] when the socket failed.
//!
//! During an `agent` job the code's `fetch` calls become host calls on the same socket: the
//! worker writes `WorkerMessage::Fetch` and blocks until `SupervisorMessage::FetchResult`
//! arrives (see [`host_fetch`]). Any other frame in its place breaks the protocol: the fetch
//! rejects, and the worker exits without answering the job.

use std::cell::{Cell, RefCell};
use std::io::BufReader;
use std::mem::ManuallyDrop;
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use isolate_shared::frame::{read_frame, write_frame, FrameError, MAX_FRAME_BYTES};
use isolate_shared::message::{
    ErrorKind, ExecuteOutcome, Hello, JobError, Preset, SupervisorMessage, ValidateOutcome,
    WasmCompileOutcome, WasmErrorKind, WasmRunOutcome, WorkerMessage,
};
use isolate_shared::zygote::LockdownReport;

use crate::{js, wasm};

/// Normal end.
pub const EXIT_OK: i32 = 0;
/// The supervisor sent something that is not a job.
pub const EXIT_PROTOCOL: i32 = 2;
/// The socket failed.
pub const EXIT_SOCKET: i32 = 3;

/// The socket's read buffer: a job frame up to this size arrives in one `read`.
const READ_BUFFER: usize = 16 * 1024;

/// Serves jobs on `sock` until the supervisor closes it. Returns the exit code.
///
/// `contexts` are the runtimes made ready before the fork (see [`js::Contexts`]), so neither a
/// new worker's first job nor an `agent` job in its fresh process waits for one. Between jobs
/// the worker puts the last job's runtime back to its snapshot (or builds the next one), after
/// the answer has left, so a job only pays for its own code. `lockdown` is what the worker
/// applied to itself; it travels in the greeting. After each answer (and once the runtime is
/// ready) the worker polls the socket for up to `idle_poll` before it blocks on it. Not before
/// its first job: that comes when the pool hands the new worker out, not in reply to anything
/// the worker sent, and an `agent` worker has no other wait (it serves one job), so polling
/// there only spent up to `idle_poll` of CPU per fresh process.
///
/// Nothing is freed on the way out: the process ends right after, and freeing a runtime (or
/// the inherited ones, whose pages are shared with the zygote until written) would only
/// spend time touching memory the kernel is about to drop.
pub fn run(
    sock: UnixStream,
    contexts: js::Contexts,
    lockdown: LockdownReport,
    idle_poll: Duration,
) -> i32 {
    let mut contexts = ManuallyDrop::new(contexts);
    let mut modules = ManuallyDrop::new(wasm::Cache::default());
    serve(sock, &mut contexts, &mut modules, lockdown, idle_poll)
}

/// The loop of [`run`], over state that [`run`] never frees.
fn serve(
    sock: UnixStream,
    contexts: &mut js::Contexts,
    modules: &mut wasm::Cache,
    lockdown: LockdownReport,
    idle_poll: Duration,
) -> i32 {
    let hello = WorkerMessage::Hello(Hello::current(), lockdown);
    // Reads are buffered, so that a job's header and payload come in one system call; writes
    // go straight to the socket (a frame is already written with one call).
    let sock = Rc::new(RefCell::new(BufReader::with_capacity(READ_BUFFER, sock)));
    if write_frame(sock.borrow_mut().get_mut(), &hello).is_err() {
        return EXIT_SOCKET;
    }
    let broken = Rc::new(Cell::new(false));
    let mut first = true;
    loop {
        contexts.ready();
        if !first && sock.borrow().buffer().is_empty() && !idle_poll.is_zero() {
            wait_briefly(sock.borrow().get_ref(), idle_poll);
        }
        first = false;
        let read = read_frame::<_, SupervisorMessage>(&mut *sock.borrow_mut(), MAX_FRAME_BYTES);
        let msg = match read {
            Ok(SupervisorMessage::FetchResult(_)) => return EXIT_PROTOCOL,
            Ok(msg) => msg,
            Err(FrameError::Closed) => return EXIT_OK,
            Err(FrameError::Io(_)) | Err(FrameError::Truncated) => return EXIT_SOCKET,
            Err(_) => return EXIT_PROTOCOL,
        };
        let cpu_start = cpu_time_us();
        let mut host = None;
        if let SupervisorMessage::Execute(job) = &msg {
            if job.preset == Preset::Agent {
                host = Some(host_fetch(Rc::clone(&sock), Rc::clone(&broken)));
            }
        }
        #[cfg(feature = "sandbox-selftest")]
        if let SupervisorMessage::Probe(p) = &msg {
            if p.probe == crate::selftest::HOST_CALL_PROBE {
                // A host call during a job that allows none: the supervisor must refuse it
                // (it kills the worker), so reaching the answer below means it did not.
                let mut call = host_fetch(Rc::clone(&sock), Rc::clone(&broken));
                let _ = call(isolate_shared::message::FetchRequest {
                    method: "GET".into(),
                    url: "http://127.0.0.1/".into(),
                    headers: Vec::new(),
                    body: Vec::new(),
                    redirect: isolate_shared::message::RedirectMode::Follow,
                });
                if broken.get() {
                    return EXIT_PROTOCOL;
                }
                let answer =
                    WorkerMessage::Probed(isolate_shared::message::ProbeOutcome::Succeeded);
                if write_frame(sock.borrow_mut().get_mut(), &answer).is_err() {
                    return EXIT_SOCKET;
                }
                continue;
            }
        }
        let (mut answer, recycle, retired) = match msg {
            SupervisorMessage::WasmCompile(job) => {
                let outcome = catch_unwind(AssertUnwindSafe(|| wasm::compile(&job)))
                    .unwrap_or_else(|_| WasmCompileOutcome {
                        result: Err("the compiler failed on this module".into()),
                        elapsed_us: 0,
                    });
                (WorkerMessage::WasmCompiled(outcome), false, None)
            }
            SupervisorMessage::WasmRun(job) => {
                match catch_unwind(AssertUnwindSafe(|| wasm::run(modules, job))) {
                    Ok(outcome) => {
                        let recycle = outcome.recycle;
                        (WorkerMessage::WasmRan(outcome), recycle, None)
                    }
                    Err(_) => {
                        let mut outcome = WasmRunOutcome::failed(
                            WasmErrorKind::Internal,
                            "the engine failed while running this module",
                        );
                        outcome.recycle = true;
                        (WorkerMessage::WasmRan(outcome), true, None)
                    }
                }
            }
            other => answer(other, contexts, host),
        };
        let cpu_us = cpu_time_us().saturating_sub(cpu_start);
        match &mut answer {
            WorkerMessage::Executed(o) => o.cpu_us = cpu_us,
            WorkerMessage::WasmRan(o) => o.cpu_us = cpu_us,
            _ => {}
        }
        if broken.get() {
            return EXIT_PROTOCOL;
        }
        if write_frame(sock.borrow_mut().get_mut(), &answer).is_err() {
            return EXIT_SOCKET;
        }
        if recycle {
            // The process ends now: see `run` on why nothing is freed.
            std::mem::forget(retired);
            return EXIT_OK;
        }
        // The used context is freed only now, after the answer has left.
        drop(retired);
    }
}

/// Polls `sock` for a frame for up to `limit` (`workers.idle_poll_micros`), yielding the CPU
/// between polls, so that a job sent soon after the last answer finds the worker running
/// instead of asleep.
fn wait_briefly(sock: &UnixStream, limit: Duration) {
    use std::os::fd::AsRawFd;
    let started = std::time::Instant::now();
    let mut byte = 0u8;
    loop {
        // SAFETY: a one-byte peek into a valid buffer on an open socket.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                (&raw mut byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        // Data or the end of the stream (n >= 0), or an error other than "nothing yet": the
        // read that follows takes it from here.
        let waiting =
            n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock;
        if !waiting || started.elapsed() >= limit {
            return;
        }
        std::thread::yield_now();
    }
}

/// The CPU time this process has used, in microseconds (0 when the clock cannot be read).
///
/// A worker has one thread (see the crate's invariant), so its thread's clock is the
/// process's; the kernel reads the thread clock without walking the thread group, which made
/// the process clock about 3% of a worker's time on short WebAssembly jobs.
fn cpu_time_us() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(0, |t| {
        (t.tv_sec() as u64).saturating_mul(1_000_000) + (t.tv_nsec() as u64) / 1_000
    })
}

/// The host call behind `fetch`: one `Fetch` frame out, one `FetchResult` frame back, on the
/// job's socket. Anything else sets `broken` (the worker then exits instead of answering).
fn host_fetch(
    sock: Rc<RefCell<BufReader<UnixStream>>>,
    broken: Rc<Cell<bool>>,
) -> js::fetch::HostFetch {
    Box::new(move |request| {
        if broken.get() {
            return Err("fetch failed: the connection to the supervisor is broken".into());
        }
        let mut sock = sock.borrow_mut();
        if write_frame(sock.get_mut(), &WorkerMessage::Fetch(request)).is_err() {
            broken.set(true);
            return Err("fetch failed: the supervisor cannot be reached".into());
        }
        match read_frame::<_, SupervisorMessage>(&mut *sock, MAX_FRAME_BYTES) {
            Ok(SupervisorMessage::FetchResult(result)) => result,
            Ok(_) | Err(_) => {
                broken.set(true);
                Err("fetch failed: the supervisor did not answer".into())
            }
        }
    })
}

/// Runs one job. A panic in the engine becomes an `INTERNAL` answer and retires the worker.
/// The used context comes back with the answer, to be freed once the answer is sent.
fn answer(
    msg: SupervisorMessage,
    contexts: &mut js::Contexts,
    host: Option<js::fetch::HostFetch>,
) -> (WorkerMessage, bool, Option<js::Retired>) {
    match msg {
        SupervisorMessage::FetchResult(_) => (
            WorkerMessage::Executed(ExecuteOutcome::failed(JobError::new(
                ErrorKind::Internal,
                "InternalError",
                "a fetch result arrived without a fetch",
            ))),
            true,
            None,
        ),
        SupervisorMessage::Execute(job) => {
            let (outcome, retired) =
                match catch_unwind(AssertUnwindSafe(|| contexts.execute(&job, host))) {
                    Ok((outcome, retired)) => (outcome, Some(retired)),
                    Err(_) => (
                        ExecuteOutcome::failed(JobError::new(
                            ErrorKind::Internal,
                            "InternalError",
                            "the engine failed while running this code",
                        )),
                        None,
                    ),
                };
            // A fresh-process preset's worker ends after this answer; saying so in the answer
            // keeps the supervisor's count of recycled workers exact.
            let recycle = outcome.recycle || job.preset.fresh_process();
            let mut outcome = outcome;
            outcome.recycle = recycle;
            (WorkerMessage::Executed(outcome), recycle, retired)
        }
        SupervisorMessage::Probe(job) => (WorkerMessage::Probed(probe(&job)), false, None),
        // Handled by `run`, which owns the module cache.
        SupervisorMessage::WasmCompile(_) | SupervisorMessage::WasmRun(_) => (
            WorkerMessage::WasmRan(WasmRunOutcome::failed(
                WasmErrorKind::Internal,
                "misrouted WebAssembly job",
            )),
            true,
            None,
        ),
        SupervisorMessage::Validate(job) => {
            match catch_unwind(AssertUnwindSafe(|| js::validate(&job))) {
                Ok(outcome) => (WorkerMessage::Validated(outcome), false, None),
                Err(_) => (
                    WorkerMessage::Validated(ValidateOutcome {
                        error: Some(isolate_shared::message::SyntaxError {
                            message: "the parser failed on this code".into(),
                            line: 1,
                            column: 1,
                        }),
                    }),
                    true,
                    None,
                ),
            }
        }
    }
}

#[cfg(feature = "sandbox-selftest")]
fn probe(job: &isolate_shared::message::ProbeJob) -> isolate_shared::message::ProbeOutcome {
    crate::selftest::run(job)
}

#[cfg(not(feature = "sandbox-selftest"))]
fn probe(_: &isolate_shared::message::ProbeJob) -> isolate_shared::message::ProbeOutcome {
    isolate_shared::message::ProbeOutcome::Unsupported(
        "probes are not compiled into this build".into(),
    )
}
