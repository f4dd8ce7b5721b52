//! A worker's life: greet the supervisor, then answer jobs on one socket.
//!
//! Exit codes (seen by nobody but tests, since the zygote lets the kernel reap its children):
//! [`EXIT_OK`] when the supervisor closed the socket or the worker asked to be recycled,
//! [`EXIT_PROTOCOL`] on a malformed or unexpected frame, [`EXIT_SOCKET`] when the socket failed.

use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};

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

/// The preset a new worker prepares for (the API's default). After a job, a worker prepares for
/// the preset that job used, so a client that keeps to one preset never waits for a context.
const FIRST_PRESET: Preset = Preset::Compute;

/// Serves jobs on `sock` until the supervisor closes it. Returns the exit code.
///
/// `prepared` is a context made ready before the fork; after each job the worker prepares the
/// next one while it waits, so a job only pays for its own code. `lockdown` is what the worker
/// applied to itself; it travels in the greeting.
pub fn run(
    mut sock: UnixStream,
    mut prepared: Option<js::Prepared>,
    lockdown: LockdownReport,
) -> i32 {
    let hello = WorkerMessage::Hello(Hello::current(), lockdown);
    if write_frame(&mut sock, &hello).is_err() {
        return EXIT_SOCKET;
    }
    let mut likely = FIRST_PRESET;
    let mut modules = wasm::Cache::default();
    loop {
        if prepared.is_none() {
            prepared = js::Prepared::new(likely).ok();
        }
        let msg = match read_frame::<_, SupervisorMessage>(&mut sock, MAX_FRAME_BYTES) {
            Ok(msg) => msg,
            Err(FrameError::Closed) => return EXIT_OK,
            Err(FrameError::Io(_)) | Err(FrameError::Truncated) => return EXIT_SOCKET,
            Err(_) => return EXIT_PROTOCOL,
        };
        if let SupervisorMessage::Execute(job) = &msg {
            likely = job.preset;
        }
        let (answer, recycle) = match msg {
            SupervisorMessage::WasmCompile(job) => {
                let outcome = catch_unwind(AssertUnwindSafe(|| wasm::compile(&job)))
                    .unwrap_or_else(|_| WasmCompileOutcome {
                        result: Err("the compiler failed on this module".into()),
                        elapsed_us: 0,
                    });
                (WorkerMessage::WasmCompiled(outcome), false)
            }
            SupervisorMessage::WasmRun(job) => {
                match catch_unwind(AssertUnwindSafe(|| wasm::run(&mut modules, job))) {
                    Ok(outcome) => {
                        let recycle = outcome.recycle;
                        (WorkerMessage::WasmRan(outcome), recycle)
                    }
                    Err(_) => {
                        let mut outcome = WasmRunOutcome::failed(
                            WasmErrorKind::Internal,
                            "the engine failed while running this module",
                        );
                        outcome.recycle = true;
                        (WorkerMessage::WasmRan(outcome), true)
                    }
                }
            }
            other => answer(other, &mut prepared),
        };
        if write_frame(&mut sock, &answer).is_err() {
            return EXIT_SOCKET;
        }
        if recycle {
            return EXIT_OK;
        }
    }
}

/// Runs one job. A panic in the engine becomes an `INTERNAL` answer and retires the worker.
fn answer(msg: SupervisorMessage, prepared: &mut Option<js::Prepared>) -> (WorkerMessage, bool) {
    match msg {
        SupervisorMessage::Execute(job) => {
            let ready = prepared.take();
            let outcome = catch_unwind(AssertUnwindSafe(|| js::execute_prepared(ready, &job)))
                .unwrap_or_else(|_| {
                    ExecuteOutcome::failed(JobError::new(
                        ErrorKind::Internal,
                        "InternalError",
                        "the engine failed while running this code",
                    ))
                });
            let recycle = outcome.recycle;
            (WorkerMessage::Executed(outcome), recycle)
        }
        SupervisorMessage::Probe(job) => (WorkerMessage::Probed(probe(&job)), false),
        // Handled by `run`, which owns the module cache.
        SupervisorMessage::WasmCompile(_) | SupervisorMessage::WasmRun(_) => (
            WorkerMessage::WasmRan(WasmRunOutcome::failed(
                WasmErrorKind::Internal,
                "misrouted WebAssembly job",
            )),
            true,
        ),
        SupervisorMessage::Validate(job) => {
            match catch_unwind(AssertUnwindSafe(|| js::validate(&job))) {
                Ok(outcome) => (WorkerMessage::Validated(outcome), false),
                Err(_) => (
                    WorkerMessage::Validated(ValidateOutcome {
                        error: Some(isolate_shared::message::SyntaxError {
                            message: "the parser failed on this code".into(),
                            line: 1,
                            column: 1,
                        }),
                    }),
                    true,
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
