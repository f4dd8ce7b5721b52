//! The QuickJS host: runs one [`ExecuteJob`] or [`ValidateJob`] in a fresh runtime.
//!
//! Every execution gets a new `Runtime` and `Context` (nothing survives from one job to the
//! next), with the job's memory and stack limits and an interrupt handler that ends the code at
//! its deadline. The code runs in one of two modes:
//!
//! * **script**: the value of the last expression statement is the result (`1+1` gives `2`);
//!   top-level `await` is allowed.
//! * **function body**: when the code has a top-level `return` (QuickJS reports "return not in
//!   a function" for it as a script), it is wrapped in an `async function` on the same line, so
//!   line numbers are unchanged and `await` is allowed.
//!
//! A result that is a promise is awaited by running the job queue until it settles, the
//! deadline passes, or nothing is left to run ("the promise never settled"). When the queue is
//! empty and a timer is scheduled, the worker sleeps until it is due (or the deadline, if that
//! comes first) and runs it; timers still scheduled when the result is ready never run.

pub mod console;
pub mod fetch;
mod heap;
pub mod prelude;
pub mod presets;
mod random;
mod script;
pub mod serialize;
mod source;
pub mod timers;
pub mod typescript;
pub mod web;

use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use isolate_shared::message::{
    CodeForm, ErrorKind, ExecuteJob, ExecuteOutcome, JobError, Preset, SyntaxError, ValidateJob,
    ValidateOutcome,
};
use rquickjs::promise::PromiseState;
use rquickjs::{qjs, Context, Ctx, Runtime, Value};

pub use random::reseed;
pub use source::FILENAME;

use console::LogSink;
use serialize::{Budget, Helpers, HelpersSlot, SerializeError};

/// Compiles every JavaScript source of the host to bytecode now (the zygote runs this before
/// it forks, so every worker inherits the bytes; see the `script` module).
pub fn warm() {
    prelude::warm();
    web::warm();
    fetch::warm();
}

/// The QuickJS message for a `return` outside a function.
const RETURN_OUTSIDE_FUNCTION: &str = "return not in a function";

/// A runtime and context made ready for the next job before it arrives: the preset's
/// intrinsics, the prelude (frozen prototypes, captured helpers) and `console` are in place;
/// only the job's limits, deadline and `env` are left to set.
///
/// Each `Prepared` serves exactly one job and is then dropped, so every execution still gets
/// a fresh runtime and context; preparing ahead only moves the set-up cost out of the
/// request's path (a worker prepares while it waits, and the zygote prepares one that every
/// forked worker inherits).
pub struct Prepared {
    preset: Preset,
    // Field order matters: the context must drop before its runtime.
    ctx: Context,
    rt: Runtime,
    sink: Rc<RefCell<LogSink>>,
    deadline: Rc<Cell<Option<Instant>>>,
    timed_out: Arc<AtomicBool>,
    host: fetch::HostSlot,
    heap: heap::HeapMeter,
}

impl Prepared {
    /// Builds a runtime and context for `preset` on the C library's allocator.
    pub fn new(preset: Preset) -> Result<Prepared, JobError> {
        Prepared::build(preset, heap::Malloc)
    }

    /// Builds a runtime and context for `preset` whose memory comes from `allocator`.
    fn build<A: rquickjs::allocator::Allocator + 'static>(
        preset: Preset,
        allocator: A,
    ) -> Result<Prepared, JobError> {
        let heap = heap::HeapMeter::default();
        let rt = Runtime::new_with_alloc(heap::Counting(heap.clone(), allocator))
            .map_err(|e| internal(format!("cannot create a runtime: {e}")))?;
        let deadline: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
        let timed_out = Arc::new(AtomicBool::new(false));
        let (d, flag) = (Rc::clone(&deadline), Arc::clone(&timed_out));
        rt.set_interrupt_handler(Some(Box::new(move || {
            let late = d.get().is_some_and(|d| Instant::now() >= d);
            if late {
                flag.store(true, Ordering::Relaxed);
            }
            late
        })));
        let ctx = presets::new_context(&rt, preset).map_err(|e| internal(e.to_string()))?;
        let sink = Rc::new(RefCell::new(LogSink::default()));
        let host: fetch::HostSlot = Rc::new(RefCell::new(None));
        ctx.with(|ctx| -> rquickjs::Result<()> {
            console::install(&ctx, &sink)?;
            random::install(&ctx)?;
            if preset == Preset::Agent {
                fetch::install(&ctx, &host)?;
            }
            let helpers: Vec<Value> = prelude::run(&ctx)?;
            let _ = ctx.store_userdata(HelpersSlot(Helpers::from_prelude(&ctx, helpers)));
            presets::install(&ctx, preset)
        })
        .map_err(|e| internal(format!("cannot prepare the context: {e}")))?;
        Ok(Prepared {
            preset,
            ctx,
            rt,
            sink,
            deadline,
            timed_out,
            host,
            heap,
        })
    }

    /// The preset this context was built for.
    pub fn preset(&self) -> Preset {
        self.preset
    }
}

/// Runs one job to completion in a fresh runtime and reports its outcome. `fetch` (in the
/// `agent` preset) rejects: there is no supervisor to ask.
pub fn execute(job: &ExecuteJob) -> ExecuteOutcome {
    match Pristine::new(job.preset) {
        Some(Ok(mut p)) => p.execute(job, None),
        Some(Err(e)) => outcome_of(Err(e), Instant::now()),
        None => execute_prepared(None, job, None),
    }
}

/// Runs one job, in `prepared` when it was built for the job's preset, otherwise in a runtime
/// made now. `host` performs the job's fetches (only the `agent` preset has `fetch`); it is
/// dropped with the context when the job ends. Never panics on user input.
pub fn execute_prepared(
    prepared: Option<Prepared>,
    job: &ExecuteJob,
    host: Option<fetch::HostFetch>,
) -> ExecuteOutcome {
    execute_retiring(prepared, job, host).0
}

/// A context that has served its job, kept only so that freeing it can wait until the answer
/// is on its way. Nothing runs in it any more (its pending timers and jobs are never driven);
/// dropping it frees the runtime.
pub struct Retired(#[allow(dead_code)] Option<Prepared>);

/// [`execute_prepared`], handing back the used context instead of freeing it, so that the
/// caller can free it after sending the answer (freeing a runtime costs about a quarter of
/// preparing one).
pub fn execute_retiring(
    prepared: Option<Prepared>,
    job: &ExecuteJob,
    host: Option<fetch::HostFetch>,
) -> (ExecuteOutcome, Retired) {
    let start = Instant::now();
    let prepared = match prepared.filter(|p| p.preset == job.preset) {
        Some(p) => Ok(p),
        None => Prepared::new(job.preset),
    };
    match prepared {
        Ok(p) => (run_job(&p, job, host, start), Retired(Some(p))),
        Err(e) => (outcome_of(Err(e), start), Retired(None)),
    }
}

/// Runs one job in `p` (made for the job's preset), which is left used.
fn run_job(
    p: &Prepared,
    job: &ExecuteJob,
    host: Option<fetch::HostFetch>,
    start: Instant,
) -> ExecuteOutcome {
    p.heap.restart();
    let deadline = start + Duration::from_millis(job.timeout_ms);
    *p.sink.borrow_mut() = LogSink::new(job.limits.max_log_entries, job.limits.max_log_bytes);
    *p.host.borrow_mut() = host.map(|host| within_deadline(host, p));
    let result = run(p, job, deadline);
    p.host.borrow_mut().take();
    let sink = std::mem::take(&mut *p.sink.borrow_mut());
    let mut outcome = outcome_of(result, start);
    outcome.logs = sink.entries;
    outcome.logs_truncated = sink.truncated;
    outcome.heap_peak_bytes = p.heap.peak() as u64;
    outcome
}

/// The outcome of a job that ended with `result`, without logs; a failure that leaves the
/// runtime in doubt asks for the worker to be recycled.
fn outcome_of(result: Result<String, JobError>, start: Instant) -> ExecuteOutcome {
    let recycle = matches!(&result, Err(e) if matches!(e.kind,
        ErrorKind::MemoryLimit | ErrorKind::StackOverflow | ErrorKind::Internal | ErrorKind::Timeout));
    ExecuteOutcome {
        result,
        logs: Vec::new(),
        logs_truncated: false,
        elapsed_us: start.elapsed().as_micros() as u64,
        cpu_us: 0,
        heap_peak_bytes: 0,
        recycle,
    }
}

/// A runtime and context prepared once inside a region slot (see [`crate::region`]), with a
/// snapshot of the slot taken right after: each job runs in it and the slot is then put back
/// to the snapshot, which gives the next job a runtime exactly as fresh as a newly built one
/// (same objects, same state, nothing the last job made or changed) for the cost of one copy
/// instead of a build and a free.
///
/// Only the engine's work runs inside the slot; the job's outcome is copied out of it before
/// the slot is restored. Made in the zygote, a `Pristine` is inherited by every worker.
pub struct Pristine {
    /// The runtime, as built: its fields point into the slot, and are only ever used by
    /// reference, so the restored slot matches them again. Never dropped: its memory goes
    /// with the slot.
    prepared: ManuallyDrop<Prepared>,
    snapshot: crate::region::Snapshot,
    /// A job has run since the last restore.
    used: bool,
    /// Dropped last, releasing every byte of the runtime at once.
    slot: crate::region::Slot,
}

impl Pristine {
    /// Builds the runtime for `preset` in a new slot and takes its snapshot. `None` when this
    /// process has no slots (see [`crate::region::Slot::new`]).
    pub fn new(preset: Preset) -> Option<Result<Pristine, JobError>> {
        Pristine::build(preset, false)
    }

    /// [`Pristine::new`] for the zygote, which forks: the snapshot and the runtime are pages
    /// of a memory file (see [`crate::region::Slot::snapshot_to_file`]), which makes a fork
    /// cheaper and costs a worker only the pages it touches.
    pub fn for_zygote(preset: Preset) -> Option<Result<Pristine, JobError>> {
        Pristine::build(preset, true)
    }

    fn build(preset: Preset, in_file: bool) -> Option<Result<Pristine, JobError>> {
        let slot = crate::region::Slot::new()?;
        let built = {
            let _inside = slot.enter();
            Prepared::build(preset, slot.allocator())
        };
        Some(match built {
            Ok(prepared) => Ok(Pristine {
                prepared: ManuallyDrop::new(prepared),
                snapshot: if in_file {
                    slot.snapshot_to_file()
                } else {
                    slot.snapshot()
                },
                used: false,
                slot,
            }),
            // The error's texts are in the slot, which goes now: a copy from outside it.
            Err(e) => Err(e.clone()),
        })
    }

    /// The preset this runtime was built for.
    pub fn preset(&self) -> Preset {
        self.prepared.preset
    }

    /// Bytes of the snapshot (the prepared runtime, allocator state included).
    pub fn snapshot_bytes(&self) -> usize {
        self.snapshot.len()
    }

    /// Runs one job (of this preset) in the runtime. The outcome lives outside the slot.
    pub fn execute(&mut self, job: &ExecuteJob, host: Option<fetch::HostFetch>) -> ExecuteOutcome {
        self.reset();
        self.used = true;
        let start = Instant::now();
        let inside = self.slot.enter();
        let outcome = run_job(&self.prepared, job, host, start);
        drop(inside);
        let copy = outcome.clone();
        // Its blocks go with the next restore: freeing them one by one would be wasted work.
        std::mem::forget(outcome);
        copy
    }

    /// Puts the runtime back to its snapshot if a job has used it (a worker calls this after
    /// the answer has left, and [`Pristine::execute`] before a job in case it did not).
    pub fn reset(&mut self) {
        if std::mem::take(&mut self.used) {
            self.slot.restore(&self.snapshot);
        }
    }
}

/// The runtimes a worker runs its jobs in: a [`Pristine`] per preset where this process has
/// region slots; otherwise a [`Prepared`] per job, built while the worker waits for it (for
/// the preset of the last job) and freed after its answer.
#[derive(Default)]
pub struct Contexts {
    pristine: Vec<Pristine>,
    /// Without slots: runtimes built ahead (the zygote's, one per preset), each for one job.
    spares: Vec<Prepared>,
    /// Without slots: the runtime built for the next job.
    prepared: Option<Prepared>,
    /// The preset of the last job (the next one is likely to use it too).
    likely: Option<Preset>,
    /// This process has no region slots.
    no_slots: bool,
}

impl Contexts {
    /// A runtime for each of `presets`, made now (the zygote's, which every worker inherits).
    pub fn for_zygote(presets: &[Preset]) -> Contexts {
        let mut contexts = Contexts::default();
        for &preset in presets {
            // After one failure the others are not tried: they would fail alike.
            let pristine = if contexts.no_slots {
                None
            } else {
                Pristine::for_zygote(preset)
            };
            match pristine {
                Some(Ok(p)) => contexts.pristine.push(p),
                Some(Err(_)) | None => {
                    contexts.no_slots = true;
                    contexts.spares.extend(Prepared::new(preset).ok());
                }
            }
        }
        contexts
    }

    /// A runtime for each of `presets`, each for one job, built on the C library's allocator
    /// (`workers.runtime_snapshots` off): later runtimes too are built per job.
    pub fn without_slots(presets: &[Preset]) -> Contexts {
        Contexts {
            spares: presets
                .iter()
                .filter_map(|&p| Prepared::new(p).ok())
                .collect(),
            no_slots: true,
            ..Contexts::default()
        }
    }

    /// Bytes of the snapshots of the runtimes in region slots.
    pub fn snapshot_bytes(&self) -> u64 {
        self.pristine
            .iter()
            .map(|p| p.snapshot_bytes() as u64)
            .sum()
    }

    /// What a worker does between jobs: puts the runtime of the last job back to its
    /// snapshot, or (without slots) builds the runtime the next job is likely to need.
    pub fn ready(&mut self) {
        for p in &mut self.pristine {
            p.reset();
        }
        if self.no_slots && self.prepared.is_none() {
            let likely = self.likely.unwrap_or(Preset::Compute);
            self.prepared =
                take_spare(&mut self.spares, likely).or_else(|| Prepared::new(likely).ok());
        }
    }

    /// Runs one job. Without slots, the used runtime comes back to be freed after the answer.
    pub fn execute(
        &mut self,
        job: &ExecuteJob,
        host: Option<fetch::HostFetch>,
    ) -> (ExecuteOutcome, Retired) {
        self.likely = Some(job.preset);
        if let Some(p) = self.pristine.iter_mut().find(|p| p.preset() == job.preset) {
            return (p.execute(job, host), Retired(None));
        }
        if !self.no_slots {
            match Pristine::new(job.preset) {
                Some(Ok(mut p)) => {
                    let outcome = p.execute(job, host);
                    self.pristine.push(p);
                    return (outcome, Retired(None));
                }
                // A slot that cannot hold a runtime (its memory refused, say): this process
                // builds its runtimes per job from now on, this one included.
                Some(Err(_)) | None => self.no_slots = true,
            }
        }
        let mut ready = self.prepared.take();
        if ready.as_ref().map(Prepared::preset) != Some(job.preset) {
            if let Some(spare) = take_spare(&mut self.spares, job.preset) {
                // The runtime made for another preset is kept for a later job.
                if let Some(other) = ready.replace(spare) {
                    self.spares.push(other);
                }
            }
        }
        execute_retiring(ready, job, host)
    }
}

/// Takes the unused runtime for `preset` out of `spares`, if there is one.
fn take_spare(spares: &mut Vec<Prepared>, preset: Preset) -> Option<Prepared> {
    let i = spares.iter().position(|p| p.preset() == preset)?;
    Some(spares.swap_remove(i))
}

/// Wraps the job's host call so that one returning after the engine's deadline (the
/// supervisor lets a fetch run up to the execution's remaining time) ends the execution as
/// `TIMEOUT` rather than letting the code go on with a rejected fetch.
fn within_deadline(mut host: fetch::HostFetch, p: &Prepared) -> fetch::HostFetch {
    let deadline = Rc::clone(&p.deadline);
    let timed_out = Arc::clone(&p.timed_out);
    Box::new(move |request| {
        let result = host(request);
        if deadline.get().is_some_and(|d| Instant::now() >= d) {
            timed_out.store(true, Ordering::Relaxed);
            return Err("the execution ran out of time during this fetch".into());
        }
        result
    })
}

fn run(p: &Prepared, job: &ExecuteJob, deadline: Instant) -> Result<String, JobError> {
    p.rt.set_memory_limit(usize::try_from(job.limits.memory_bytes).unwrap_or(usize::MAX));
    p.rt.set_max_stack_size(usize::try_from(job.limits.stack_bytes).unwrap_or(usize::MAX));
    p.deadline.set(Some(deadline));
    let timed_out = &p.timed_out;
    let timeout_ms = job.timeout_ms;
    // The TypeScript stripper keeps tables of its own from one call to the next: they are
    // never made inside a slot, which the next restore would take them from.
    let code = {
        let _outside = crate::region::outside();
        source::to_javascript(&job.code, job.language).map_err(source::strip_error)?
    };
    let outcome = p.ctx.with(|ctx| -> Result<String, JobError> {
        set_env(&ctx, job.env_json.as_deref(), job.data_json.as_deref())
            .map_err(|e| internal(format!("cannot set env: {e}")))?;
        let body_mode = Cell::new(job.form == CodeForm::FunctionBody);
        let value = evaluate(&ctx, &code, deadline, timed_out, &body_mode).map_err(|f| {
            let mut err = classify(f, timed_out, timeout_ms);
            source::locate(&job.code, &code, body_mode.get(), &mut err);
            err
        })?;
        let budget = Budget {
            max_bytes: job.limits.max_result_bytes,
            max_depth: job.limits.max_result_depth,
        };
        serialize::to_json(&ctx, &value, budget).map_err(|e| match e {
            SerializeError::Js(_) => {
                let failure = Failure::Exception(ctx.catch());
                let mut err = classify(failure, timed_out, timeout_ms);
                if err.kind == ErrorKind::Runtime {
                    err.message = format!("while serialising the result: {}", err.message);
                }
                err
            }
            SerializeError::TooLarge(max) => output_limit(format!(
                "the result exceeds the limit of {max} bytes when serialised"
            )),
            SerializeError::TooDeep(max) => {
                output_limit(format!("the result is nested deeper than {max} levels"))
            }
        })
    });
    // Once the deadline has fired the answer is TIMEOUT, even when the code swallowed the
    // interrupt (a looping `Error.prepareStackTrace` hook can) and went on to a result.
    if timed_out.load(Ordering::Relaxed) {
        return Err(timeout_error(timeout_ms));
    }
    outcome.map_err(|mut err| {
        // When the heap is exhausted QuickJS may not even manage to allocate its "out of
        // memory" error and throws `null` instead. A thrown non-Error (no stack) with the heap
        // at its limit is that case.
        let used = p.rt.memory_usage().malloc_size.max(0) as u64;
        if err.kind == ErrorKind::Runtime
            && err.stack.is_none()
            && used >= job.limits.memory_bytes / 10 * 9
        {
            err = memory_limit();
        }
        cap_error(&mut err, job.limits.max_result_bytes);
        err
    })
}

/// How a cut error text ends.
pub const TRUNCATED_MARK: &str = "… [truncated]";

/// Most bytes of an error's name, JSON-escaped.
const MAX_ERROR_NAME_BYTES: u64 = 1024;

/// Bounds the user-controlled texts of an error, measured JSON-escaped as the answer carries
/// them: the name at [`MAX_ERROR_NAME_BYTES`], the message and the stack at `max` bytes each
/// (the result limit). A cut text ends in [`TRUNCATED_MARK`].
fn cap_error(err: &mut JobError, max: u64) {
    serialize::cap_json(&mut err.name, MAX_ERROR_NAME_BYTES, TRUNCATED_MARK);
    serialize::cap_json(&mut err.message, max, TRUNCATED_MARK);
    if let Some(stack) = err.stack.as_mut() {
        serialize::cap_json(stack, max, TRUNCATED_MARK);
    }
}

fn timeout_error(timeout_ms: u64) -> JobError {
    let message = format!("execution exceeded the timeout of {timeout_ms} ms");
    JobError::new(ErrorKind::Timeout, "TimeoutError", message)
}

fn output_limit(message: String) -> JobError {
    JobError::new(ErrorKind::OutputLimit, "OutputLimitError", message)
}

fn memory_limit() -> JobError {
    JobError::new(
        ErrorKind::MemoryLimit,
        "MemoryLimitError",
        "the code exhausted its memory limit",
    )
}

/// Exposes the request's `env` as the globals `env` and `input` (`{}` when absent), and the
/// `/deno` route's `data` as the global `data` when there is one.
fn set_env(ctx: &Ctx<'_>, env_json: Option<&str>, data_json: Option<&str>) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    let env = ctx.json_parse(env_json.unwrap_or("{}"))?;
    globals.set("env", env.clone())?;
    globals.set("input", env)?;
    if let Some(data) = data_json {
        globals.set("data", ctx.json_parse(data)?)?;
    }
    Ok(())
}

/// How an evaluation failed, before classification.
enum Failure<'js> {
    /// The code threw this value (or was interrupted, or ran out of memory).
    Exception(Value<'js>),
    /// The result promise is pending and nothing is left to run.
    NeverSettled,
    /// The deadline passed while the job queue was being drained.
    Deadline,
    /// The engine failed for a reason that is not the code's.
    Engine(String),
}

/// Evaluates `code` as a sloppy global script with top-level await, under [`FILENAME`].
///
/// `JS_Eval` is called with an explicit length, so a NUL byte inside the code (in a string
/// literal, say) is just a character, as it is for `/validate`; rquickjs' `eval` would refuse
/// the code while building a C string from it.
fn eval_script<'js>(ctx: &Ctx<'js>, code: &str) -> rquickjs::Result<Value<'js>> {
    let mut src = Vec::with_capacity(code.len() + 1);
    src.extend_from_slice(code.as_bytes());
    src.push(0);
    let flags =
        qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_BACKTRACE_BARRIER | qjs::JS_EVAL_FLAG_ASYNC;
    // SAFETY: `src` holds `code.len()` bytes followed by a NUL, as JS_Eval requires; the file
    // name is a static C string; the returned value is owned by the Value built from it.
    let value = unsafe {
        let raw = qjs::JS_Eval(
            ctx.as_raw().as_ptr(),
            src.as_ptr().cast(),
            code.len() as _,
            source::FILENAME_C.as_ptr(),
            flags as i32,
        );
        Value::from_raw(ctx.clone(), raw)
    };
    if value.is_exception() {
        return Err(rquickjs::Error::Exception);
    }
    Ok(value)
}

/// Whether an exception thrown at compile time says the code is a function body.
fn is_function_body<'js>(exc: &Value<'js>) -> bool {
    exc.as_object()
        .and_then(|o| o.get::<_, String>("message").ok())
        .is_some_and(|m| m == RETURN_OUTSIDE_FUNCTION)
}

fn evaluate<'js>(
    ctx: &Ctx<'js>,
    code: &str,
    deadline: Instant,
    timed_out: &AtomicBool,
    body_mode: &Cell<bool>,
) -> Result<Value<'js>, Failure<'js>> {
    let first = if body_mode.get() {
        eval_script(ctx, &source::wrap_body(code))
    } else {
        eval_script(ctx, code)
    };
    let completion = match first {
        Ok(v) => v,
        Err(rquickjs::Error::Exception) => {
            let exc = ctx.catch();
            if body_mode.get() || !is_function_body(&exc) {
                return Err(Failure::Exception(exc));
            }
            body_mode.set(true);
            match eval_script(ctx, &source::wrap_body(code)) {
                Ok(v) => v,
                Err(rquickjs::Error::Exception) => return Err(Failure::Exception(ctx.catch())),
                Err(e) => return Err(Failure::Engine(e.to_string())),
            }
        }
        Err(e) => return Err(Failure::Engine(e.to_string())),
    };
    // With top-level await, evaluation yields a promise of `{value}`.
    let completion = settle(ctx, completion, deadline, timed_out)?;
    let value = match completion.as_object() {
        Some(o) => o
            .get::<_, Value>("value")
            .map_err(|_| Failure::Exception(ctx.catch()))?,
        None => completion,
    };
    settle(ctx, value, deadline, timed_out)
}

/// Awaits `value` if it is a promise, by running the job queue.
fn settle<'js>(
    ctx: &Ctx<'js>,
    value: Value<'js>,
    deadline: Instant,
    timed_out: &AtomicBool,
) -> Result<Value<'js>, Failure<'js>> {
    let Some(promise) = value.as_promise().cloned() else {
        return Ok(value);
    };
    loop {
        match promise.state() {
            PromiseState::Resolved => {
                return promise
                    .result::<Value>()
                    .unwrap_or_else(|| Ok(Value::new_undefined(ctx.clone())))
                    .map_err(|_| Failure::Exception(ctx.catch()));
            }
            PromiseState::Rejected => {
                // SAFETY: the promise is settled and alive; JS_PromiseResult returns a new
                // reference to its reason, owned by the Value built from it.
                let reason = unsafe {
                    Value::from_raw(
                        ctx.clone(),
                        qjs::JS_PromiseResult(ctx.as_raw().as_ptr(), promise.as_raw()),
                    )
                };
                return Err(Failure::Exception(reason));
            }
            PromiseState::Pending => {
                if timed_out.load(Ordering::Relaxed) || Instant::now() >= deadline {
                    timed_out.store(true, Ordering::Relaxed);
                    return Err(Failure::Deadline);
                }
                if ctx.execute_pending_job() {
                    continue;
                }
                // The job queue is empty: the next timer, if any, is all that can settle it.
                let Some(due) = timers::peek(ctx) else {
                    return Err(Failure::NeverSettled);
                };
                let now = Instant::now();
                if due > deadline {
                    std::thread::sleep(deadline.saturating_duration_since(now));
                    timed_out.store(true, Ordering::Relaxed);
                    return Err(Failure::Deadline);
                }
                std::thread::sleep(due.saturating_duration_since(now));
                if timers::run_next(ctx).is_err() {
                    return Err(Failure::Exception(ctx.catch()));
                }
            }
        }
    }
}

/// Turns a failure into the error the API reports.
fn classify<'js>(failure: Failure<'js>, timed_out: &AtomicBool, timeout_ms: u64) -> JobError {
    let timeout = || timeout_error(timeout_ms);
    if timed_out.load(Ordering::Relaxed) {
        return timeout();
    }
    let exc = match failure {
        Failure::Deadline => return timeout(),
        Failure::Engine(message) => return internal(message),
        Failure::NeverSettled => {
            return JobError::new(
                ErrorKind::Runtime,
                "Error",
                "the result is a promise that never settles (nothing is left to run)",
            )
        }
        Failure::Exception(exc) => exc,
    };
    let (name, message, stack) = describe(&exc);
    let (line, column) = stack.as_deref().map(position).unwrap_or((None, None));
    let kind = if name == "InternalError" && message == "out of memory" {
        ErrorKind::MemoryLimit
    } else if name == "RangeError" && message.contains("call stack size exceeded") {
        ErrorKind::StackOverflow
    } else {
        ErrorKind::Runtime
    };
    if kind == ErrorKind::MemoryLimit {
        return memory_limit();
    }
    JobError {
        kind,
        name: if name.is_empty() {
            "Error".into()
        } else {
            name
        },
        message,
        stack,
        line,
        column,
    }
}

/// Reads name, message and stack of a thrown value. Reading them may run user getters; a
/// getter that throws yields empty strings rather than a second exception.
fn describe<'js>(exc: &Value<'js>) -> (String, String, Option<String>) {
    let ctx = exc.ctx();
    // SAFETY: JS_IsError only inspects the class id of a live value.
    let is_error = unsafe { qjs::JS_IsError(exc.as_raw()) };
    if let (true, Some(obj)) = (is_error, exc.as_object()) {
        let get = |key: &str| -> Option<String> {
            match obj.get::<_, Value>(key) {
                Ok(v) => v.as_string().and_then(|s| s.to_string().ok()),
                Err(_) => {
                    ctx.catch();
                    None
                }
            }
        };
        let name = get("name").unwrap_or_default();
        let message = get("message").unwrap_or_default();
        let stack = get("stack").filter(|s| !s.is_empty());
        return (name, message, stack);
    }
    let mut text = String::new();
    let budget = Budget {
        max_bytes: 4096,
        max_depth: 8,
    };
    if serialize::inspect(ctx, exc, budget, &mut text).is_err() {
        ctx.catch();
        text = "a value that cannot be displayed".into();
    }
    (String::new(), format!("Uncaught {text}"), None)
}

/// Finds the first `input.js:LINE:COLUMN` in a stack trace.
fn position(stack: &str) -> (Option<u32>, Option<u32>) {
    let Some(at) = stack.find(FILENAME) else {
        return (None, None);
    };
    let rest = &stack[at + FILENAME.len()..];
    let mut nums = rest
        .strip_prefix(':')
        .unwrap_or("")
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .map(|n| n.parse::<u32>().ok());
    let line = nums.next().flatten();
    let column = nums.next().flatten();
    (line, column)
}

fn internal(message: String) -> JobError {
    JobError::new(ErrorKind::Internal, "InternalError", message)
}

/// Parses `job.code` (as a script, or as a function body when it has a top-level `return`)
/// without running it.
pub fn validate(job: &ValidateJob) -> ValidateOutcome {
    let code = match source::to_javascript(&job.code, job.language) {
        Ok(code) => code,
        Err(e) => {
            return ValidateOutcome {
                error: Some(SyntaxError {
                    message: e.message,
                    line: e.line,
                    column: e.column,
                }),
            }
        }
    };
    let code = &*code;
    let error = match compile_error(code) {
        Some((message, _, _)) if message == RETURN_OUTSIDE_FUNCTION => {
            compile_error(&source::wrap_body(code)).map(|e| (e, true))
        }
        other => other.map(|e| (e, false)),
    };
    let error =
        error.map(|(error, in_body)| source::locate_syntax(&job.code, code, in_body, error));
    ValidateOutcome { error }
}

/// Compiles `code` as a global script (top-level await allowed) and returns the syntax error.
fn compile_error(code: &str) -> Option<(String, u32, u32)> {
    let rt = Runtime::new().ok()?;
    rt.set_memory_limit(256 << 20);
    let ctx = rquickjs::Context::custom::<rquickjs::context::intrinsic::Eval>(&rt).ok()?;
    ctx.with(|ctx| {
        let mut src = Vec::with_capacity(code.len() + 1);
        src.extend_from_slice(code.as_bytes());
        src.push(0);
        let filename = source::FILENAME_C;
        let flags =
            qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY | qjs::JS_EVAL_FLAG_ASYNC;
        // SAFETY: `src` is NUL-terminated with `code.len()` bytes before the NUL, as JS_Eval
        // requires; the returned value is owned by the Value built from it and freed on drop.
        let compiled = unsafe {
            let raw = qjs::JS_Eval(
                ctx.as_raw().as_ptr(),
                src.as_ptr().cast(),
                code.len() as _,
                filename.as_ptr(),
                flags as i32,
            );
            Value::from_raw(ctx.clone(), raw)
        };
        if !compiled.is_exception() {
            return None;
        }
        let exc = ctx.catch();
        let (_, message, stack) = describe(&exc);
        let (line, column) = stack.as_deref().map(position).unwrap_or((None, None));
        Some((message, line.unwrap_or(1), column.unwrap_or(1)))
    })
}

#[cfg(test)]
mod tests;
