//! The WebAssembly host: compile untrusted modules, and run their exports in a fresh `Store`.
//!
//! * [`init`] runs once in the zygote, before any fork: it creates the one wasmtime [`Engine`]
//!   (no threads: the `parallel-compilation` feature is not compiled in; `memory_init_cow` off, so no
//!   `memfd_create`; epoch interruption on), installs the `SIGALRM` handler that advances the
//!   epoch, and compiles, loads and calls a constant module so that the compiler's and the
//!   runtime's code pages, wasmtime's signal handlers and its alternate signal stack are in
//!   place before the fork. Workers inherit all of it and need no system call the seccomp policy
//!   refuses.
//! * [`compile`] validates and compiles a module and serialises the artifact for the
//!   supervisor's store.
//! * [`run`] deserialises an artifact (or takes it from the worker's [`Cache`]), instantiates it
//!   in a new `Store` with a [`ResourceLimiter`], and calls one export under a deadline.
//!
//! **Timeouts without a thread.** The worker is single-threaded, so nothing else can advance the
//! epoch. Before instantiation a run arms `setitimer(ITIMER_REAL)` for its timeout, repeating
//! every millisecond after that; the `SIGALRM` handler only calls `Engine::increment_epoch` (an
//! atomic add). Compiled code checks the epoch at function entries and loop headers; the
//! deadline callback compares the clock with the run's deadline and traps once it has passed.
//! The timer is disarmed before the answer is written. The supervisor's hard kill stays behind
//! it for anything that does not return to wasm code.

pub mod wasi;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use isolate_shared::message::{
    WasmArg, WasmCompileJob, WasmCompileOutcome, WasmCompiled, WasmError, WasmErrorKind,
    WasmExtern, WasmImport, WasmKind, WasmLimits, WasmRunJob, WasmRunOutcome, WasmRunStats,
    WasmType, WasmValue, WASM_MAX_STACK_BYTES,
};
use wasmtime::{
    Config, Engine, ExternType, Func, FuncType, Global, InstancePre, Linker, Memory, Module,
    OptLevel, Ref, ResourceLimiter, Store, Table, Trap, UpdateDeadline, Val, ValType,
};

/// The engine every worker shares (created by [`init`] in the zygote).
static ENGINE: OnceLock<Engine> = OnceLock::new();

/// Errors raised by the host inside a run; they travel through wasmtime as the error of the
/// call and are recognised by type afterwards.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The run's deadline passed.
    #[error("the WebAssembly run exceeded its timeout")]
    Timeout,
    /// A memory, table or instance limit was hit.
    #[error("{0}")]
    Limit(String),
    /// The module called WASI `proc_exit`.
    #[error("proc_exit({0})")]
    Exit(i32),
}

/// Why the engine could not be created.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// wasmtime refused the configuration.
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
    /// The SIGALRM handler could not be installed.
    #[error("cannot install the epoch timer's signal handler: {0}")]
    Signal(std::io::Error),
}

fn engine_config() -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .max_wasm_stack(WASM_MAX_STACK_BYTES)
        .memory_init_cow(false)
        .cranelift_opt_level(OptLevel::Speed);
    config
}

extern "C" fn on_sigalrm(_: libc::c_int) {
    // Only an atomic increment: async-signal-safe.
    if let Some(engine) = ENGINE.get() {
        engine.increment_epoch();
    }
}

fn install_timer_handler() -> std::io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    // SA_RESTART: reads on the job socket interrupted by the timer restart.
    let action = SigAction::new(
        SigHandler::Handler(on_sigalrm),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler is async-signal-safe: it reads ENGINE (a OnceLock set just before
    // this call and never again) and performs one atomic add on its epoch.
    unsafe { sigaction(Signal::SIGALRM, &action) }?;
    Ok(())
}

/// Arms (or with `None`, disarms) the run's epoch timer.
fn arm_timer(first: Option<Duration>) {
    let tv = |d: Duration| libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    let zero = Duration::ZERO;
    let value = libc::itimerval {
        it_value: tv(first
            .map(|d| d.max(Duration::from_micros(1)))
            .unwrap_or(zero)),
        it_interval: tv(first.map(|_| Duration::from_millis(1)).unwrap_or(zero)),
    };
    // A raw call: neither nix nor rustix wraps setitimer(2) (nix's timers are the POSIX
    // timer_create family, which the seccomp policy does not allow).
    // SAFETY: setitimer reads one itimerval we own; the old value is not wanted (null).
    unsafe { libc::setitimer(libc::ITIMER_REAL, &value, std::ptr::null_mut()) };
}

/// A module exporting `add(i32, i32) -> i32`, in binary form: the zygote's warm-up job.
const WARM_UP_MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, // type (i32 i32) -> i32
    0x03, 0x02, 0x01, 0x00, // one function of type 0
    0x07, 0x07, 0x01, 0x03, b'a', b'd', b'd', 0x00, 0x00, // export "add"
    0x0a, 0x09, 0x01, 0x07, 0x00, 0x20, 0x00, 0x20, 0x01, 0x6a,
    0x0b, // local.get 0 1, i32.add
];

/// Creates the engine and warms it. Called once by the zygote before it forks; a failure
/// leaves WebAssembly unavailable (runs answer `INTERNAL`) but JavaScript unaffected.
pub fn init() -> Result<(), InitError> {
    if ENGINE.get().is_some() {
        return Ok(());
    }
    let engine = Engine::new(&engine_config()).map_err(|e| InitError::Engine(e.to_string()))?;
    let _ = ENGINE.set(engine);
    install_timer_handler().map_err(InitError::Signal)?;
    // The warm-up: compile, serialise, load and call a constant module, as a run would.
    let compiled = compile(&WasmCompileJob {
        bytes: WARM_UP_MODULE.to_vec(),
    });
    if let Ok(c) = compiled.result {
        let mut cache = Cache::default();
        let _ = run(
            &mut cache,
            WasmRunJob {
                module_id: "warm-up".into(),
                artifact: Some(c.artifact),
                entry: "add".into(),
                args: vec![WasmArg::Int(1), WasmArg::Int(2)],
                imports: Vec::new(),
                stub_missing_imports: false,
                wasi: Default::default(),
                timeout_ms: 1000,
                limits: WasmLimits {
                    memory_bytes: 1 << 20,
                    table_elements: 16,
                    instances: 1,
                    tables: 1,
                    memories: 1,
                    max_output_bytes: 1024,
                    worker_cache_modules: 1,
                },
            },
        );
    }
    Ok(())
}

/// Whether the engine exists in this process.
pub fn available() -> bool {
    ENGINE.get().is_some()
}

fn wasm_type(t: &ValType) -> WasmType {
    match t {
        ValType::I32 => WasmType::I32,
        ValType::I64 => WasmType::I64,
        ValType::F32 => WasmType::F32,
        ValType::F64 => WasmType::F64,
        ValType::V128 => WasmType::V128,
        ValType::Ref(_) => WasmType::Ref,
    }
}

fn kind_of(ty: &ExternType) -> WasmKind {
    match ty {
        ExternType::Func(_) => WasmKind::Function,
        ExternType::Global(_) => WasmKind::Global,
        ExternType::Table(_) => WasmKind::Table,
        ExternType::Memory(_) => WasmKind::Memory,
        ExternType::Tag(_) => WasmKind::Tag,
    }
}

/// Validates and compiles `job.bytes`; answers the artifact and the module's interface, or
/// wasmtime's message for a malformed module.
pub fn compile(job: &WasmCompileJob) -> WasmCompileOutcome {
    let started = Instant::now();
    let result = compile_inner(&job.bytes);
    WasmCompileOutcome {
        result,
        elapsed_us: started.elapsed().as_micros() as u64,
    }
}

fn compile_inner(bytes: &[u8]) -> Result<WasmCompiled, String> {
    let engine = ENGINE
        .get()
        .ok_or("the WebAssembly engine is not available in this worker")?;
    if bytes.len() < 4 || &bytes[..4] != b"\0asm" {
        return Err("not a WebAssembly binary (it must start with \\0asm)".into());
    }
    let module = Module::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
    let exports = module
        .exports()
        .map(|e| {
            let ty = e.ty();
            let (params, results) = match &ty {
                ExternType::Func(f) => (
                    f.params().map(|t| wasm_type(&t)).collect(),
                    f.results().map(|t| wasm_type(&t)).collect(),
                ),
                _ => (Vec::new(), Vec::new()),
            };
            WasmExtern {
                name: e.name().to_string(),
                kind: kind_of(&ty),
                params,
                results,
            }
        })
        .collect();
    let imports = module
        .imports()
        .map(|i| WasmImport {
            module: i.module().to_string(),
            name: i.name().to_string(),
            kind: kind_of(&i.ty()),
        })
        .collect();
    let artifact = module.serialize().map_err(|e| format!("{e:#}"))?;
    Ok(WasmCompiled {
        artifact,
        exports,
        imports,
    })
}

/// The state of one run, owned by its `Store`.
pub struct Host {
    limiter: Limiter,
    deadline: Instant,
    /// The WASI context (standard streams, arguments, environment).
    pub wasi: wasi::WasiCtx,
}

struct Limiter {
    limits: WasmLimits,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.memory_bytes {
            return Err(wasmtime::Error::new(HostError::Limit(format!(
                "the module asked for {desired} bytes of linear memory; the limit is {} bytes",
                self.limits.memory_bytes
            ))));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.table_elements {
            return Err(wasmtime::Error::new(HostError::Limit(format!(
                "the module asked for a table of {desired} elements; the limit is {}",
                self.limits.table_elements
            ))));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.instances as usize
    }

    fn tables(&self) -> usize {
        self.limits.tables as usize
    }

    fn memories(&self) -> usize {
        self.limits.memories as usize
    }
}

struct Entry {
    id: String,
    module: Module,
    /// Ready to instantiate, when every import is WASI (or there are none).
    pre: Option<InstancePre<Host>>,
    stubbed: Vec<String>,
    wasi: bool,
}

/// Modules a worker keeps loaded between runs, most recently used last. It lives as long as the
/// worker process, so a recycled worker starts empty; the supervisor learns of evictions from
/// each run's answer.
#[derive(Default)]
pub struct Cache {
    entries: Vec<Entry>,
    base: Option<Linker<Host>>,
}

impl Cache {
    fn base(&mut self, engine: &Engine) -> Result<&Linker<Host>, WasmError> {
        if self.base.is_none() {
            let mut linker = Linker::new(engine);
            wasi::add_to_linker(&mut linker).map_err(|e| internal(format!("{e:#}")))?;
            self.base = Some(linker);
        }
        self.base
            .as_ref()
            .ok_or_else(|| internal("no linker".to_string()))
    }
}

fn internal(message: String) -> WasmError {
    WasmError {
        kind: WasmErrorKind::Internal,
        message,
        trap_code: None,
    }
}

fn error(kind: WasmErrorKind, message: impl Into<String>) -> WasmError {
    WasmError {
        kind,
        message: message.into(),
        trap_code: None,
    }
}

/// Runs one export; never panics on anything the module or the request does.
pub fn run(cache: &mut Cache, job: WasmRunJob) -> WasmRunOutcome {
    let Some(engine) = ENGINE.get() else {
        return WasmRunOutcome::failed(
            WasmErrorKind::Internal,
            "the WebAssembly engine is not available in this worker",
        );
    };
    let mut outcome = WasmRunOutcome::failed(WasmErrorKind::Internal, "");
    let loaded = Instant::now();
    let index = match cache.entries.iter().position(|e| e.id == job.module_id) {
        Some(i) => i,
        None => {
            let Some(artifact) = &job.artifact else {
                outcome.needs_artifact = true;
                return outcome;
            };
            match load(cache, engine, &job.module_id, artifact) {
                Ok(entry) => {
                    let keep = job.limits.worker_cache_modules.max(1) as usize;
                    while cache.entries.len() >= keep {
                        let old = cache.entries.remove(0);
                        outcome.evicted.push(old.id);
                    }
                    cache.entries.push(entry);
                    outcome.stats.load_us = loaded.elapsed().as_micros() as u64;
                    cache.entries.len() - 1
                }
                Err(e) => {
                    outcome.result = Err(e);
                    return outcome;
                }
            }
        }
    };
    // Most recently used last.
    let entry = cache.entries.remove(index);
    match cache.base(engine) {
        Ok(base) => run_entry(engine, &entry, base, &job, &mut outcome),
        Err(e) => outcome.result = Err(e),
    }
    cache.entries.push(entry);
    outcome
}

fn load(cache: &mut Cache, engine: &Engine, id: &str, artifact: &[u8]) -> Result<Entry, WasmError> {
    // SAFETY: the artifact was produced by `Module::serialize` in a worker of this build (the
    // supervisor stores it with the SHA-256 it had when written and checks it when reading it
    // back). Should it be corrupt or crafted anyway, the damage stays inside this sandboxed
    // worker, which is exactly why deserialisation never happens in the supervisor.
    let module = unsafe { Module::deserialize(engine, artifact) }.map_err(|e| {
        error(
            WasmErrorKind::ModuleUnusable,
            format!("the stored module cannot be loaded ({e}); compile it again"),
        )
    })?;
    let wasi = module.imports().any(|i| i.module() == wasi::MODULE);
    let only_wasi = module.imports().all(|i| i.module() == wasi::MODULE);
    let (pre, stubbed) = if only_wasi {
        let mut linker = cache.base(engine)?.clone();
        let stubbed =
            wasi::stub_unsupported(&mut linker, &module).map_err(|e| internal(format!("{e:#}")))?;
        (linker.instantiate_pre(&module).ok(), stubbed)
    } else {
        (None, Vec::new())
    };
    Ok(Entry {
        id: id.to_string(),
        module,
        pre,
        stubbed,
        wasi,
    })
}

fn run_entry(
    engine: &Engine,
    entry: &Entry,
    base: &Linker<Host>,
    job: &WasmRunJob,
    outcome: &mut WasmRunOutcome,
) {
    let timeout = Duration::from_millis(job.timeout_ms.max(1));
    let host = Host {
        limiter: Limiter { limits: job.limits },
        deadline: Instant::now() + timeout,
        wasi: if entry.wasi {
            wasi::WasiCtx::new(&job.wasi, job.limits.max_output_bytes as usize)
        } else {
            wasi::WasiCtx::unused(job.limits.max_output_bytes as usize)
        },
    };
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        if Instant::now() >= ctx.data().deadline {
            Err(wasmtime::Error::new(HostError::Timeout))
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
    outcome.wasi = entry.wasi;
    arm_timer(Some(timeout));
    let result = call(&mut store, entry, base, job, outcome);
    arm_timer(None);
    let wasi = &mut store.data_mut().wasi;
    outcome.stdout = std::mem::take(&mut wasi.stdout);
    outcome.stderr = std::mem::take(&mut wasi.stderr);
    let cap = wasi.cap() as u64;
    let cut_out = self::wasi::truncate_encoded(&mut outcome.stdout, cap);
    let cut_err = self::wasi::truncate_encoded(&mut outcome.stderr, cap);
    outcome.output_truncated = wasi.truncated || cut_out || cut_err;
    outcome.result = match result {
        Ok(values) => {
            if entry.wasi && job.entry == "_start" {
                outcome.exit_code = Some(0);
            }
            Ok(values)
        }
        Err(e) => match e.downcast_ref::<HostError>() {
            Some(HostError::Exit(code)) => {
                outcome.exit_code = Some(*code);
                Ok(Vec::new())
            }
            _ => Err(wasm_error(&e)),
        },
    };
    if let Err(e) = &outcome.result {
        outcome.recycle = matches!(
            e.kind,
            WasmErrorKind::Timeout | WasmErrorKind::MemoryLimit | WasmErrorKind::Internal
        );
    }
}

/// A wasmtime error that is not a host error, turned into an answer.
fn classify(e: &wasmtime::Error) -> WasmError {
    if let Some(h) = e.downcast_ref::<HostError>() {
        return match h {
            HostError::Timeout => error(WasmErrorKind::Timeout, h.to_string()),
            HostError::Limit(m) => error(WasmErrorKind::MemoryLimit, m.clone()),
            HostError::Exit(c) => internal(format!("unexpected exit {c}")),
        };
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        if *trap == Trap::Interrupt {
            return error(
                WasmErrorKind::Timeout,
                "the WebAssembly run exceeded its timeout",
            );
        }
        return WasmError {
            kind: WasmErrorKind::Trap,
            message: trap.to_string(),
            trap_code: Some(trap_code(*trap)),
        };
    }
    error(WasmErrorKind::Trap, format!("{e:#}"))
}

fn trap_code(trap: Trap) -> String {
    match trap {
        Trap::StackOverflow => "stack_overflow",
        Trap::MemoryOutOfBounds => "memory_out_of_bounds",
        Trap::HeapMisaligned => "heap_misaligned",
        Trap::TableOutOfBounds => "table_out_of_bounds",
        Trap::IndirectCallToNull => "indirect_call_to_null",
        Trap::BadSignature => "bad_signature",
        Trap::IntegerOverflow => "integer_overflow",
        Trap::IntegerDivisionByZero => "integer_division_by_zero",
        Trap::BadConversionToInteger => "bad_conversion_to_integer",
        Trap::UnreachableCodeReached => "unreachable",
        Trap::NullReference => "null_reference",
        Trap::AllocationTooLarge => "allocation_too_large",
        other => return format!("{other:?}").to_ascii_lowercase(),
    }
    .to_string()
}

fn call(
    store: &mut Store<Host>,
    entry: &Entry,
    base: &Linker<Host>,
    job: &WasmRunJob,
    outcome: &mut WasmRunOutcome,
) -> wasmtime::Result<Vec<WasmValue>> {
    let started = Instant::now();
    let instance = match (&entry.pre, job.imports.is_empty()) {
        (Some(pre), true) => {
            outcome.stubbed_imports = entry.stubbed.clone();
            pre.instantiate(&mut *store).map_err(link_error)?
        }
        _ => {
            let mut linker = base.clone();
            linker.allow_shadowing(true);
            match link(store, &mut linker, &entry.module, job) {
                Ok(stubbed) => outcome.stubbed_imports = stubbed,
                Err(e) => return Err(wasmtime::Error::new(LinkFailure(e))),
            }
            linker
                .instantiate(&mut *store, &entry.module)
                .map_err(link_error)?
        }
    };
    outcome.stats.instantiate_us = started.elapsed().as_micros() as u64;
    outcome.stats.exports = instance.exports(&mut *store).count() as u32;
    let func = instance.get_func(&mut *store, &job.entry);
    let result = match func {
        None => Err(wasmtime::Error::new(Refused(error(
            WasmErrorKind::NoSuchExport,
            format!("the module exports no function named \"{}\"", job.entry),
        )))),
        Some(func) => call_func(store, func, &job.args, &mut outcome.stats),
    };
    let memory: Option<Memory> = instance.exports(&mut *store).find_map(|e| e.into_memory());
    if let Some(m) = memory {
        outcome.stats.memory_pages = m.size(&*store);
        outcome.stats.memory_bytes = m.data_size(&*store) as u64;
    }
    result
}

/// A run refused before the call (bad arguments, missing export), as an error value.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.message)]
struct Refused(WasmError);

/// Imports that could not be satisfied.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct LinkFailure(String);

fn call_func(
    store: &mut Store<Host>,
    func: Func,
    args: &[WasmArg],
    stats: &mut WasmRunStats,
) -> wasmtime::Result<Vec<WasmValue>> {
    let ty = func.ty(&*store);
    let params = convert_args(&ty, args)
        .map_err(|m| wasmtime::Error::new(Refused(error(WasmErrorKind::InvalidArgs, m))))?;
    let mut results = vec![Val::I32(0); ty.results().len()];
    let started = Instant::now();
    let called = func.call(&mut *store, &params, &mut results);
    stats.call_us = started.elapsed().as_micros() as u64;
    called?;
    Ok(results.iter().map(value_out).collect())
}

fn value_out(v: &Val) -> WasmValue {
    match v {
        Val::I32(x) => WasmValue::I32(*x),
        Val::I64(x) => WasmValue::I64(*x),
        Val::F32(bits) => WasmValue::F32(f32::from_bits(*bits)),
        Val::F64(bits) => WasmValue::F64(f64::from_bits(*bits)),
        Val::V128(_) => WasmValue::Opaque(WasmType::V128),
        _ => WasmValue::Opaque(WasmType::Ref),
    }
}

fn convert_args(ty: &FuncType, args: &[WasmArg]) -> Result<Vec<Val>, String> {
    let params: Vec<ValType> = ty.params().collect();
    if params.len() != args.len() {
        let types: Vec<&str> = params.iter().map(|t| wasm_type(t).as_str()).collect();
        return Err(format!(
            "the function takes {} argument(s) ({}), {} given",
            params.len(),
            types.join(", "),
            args.len()
        ));
    }
    params
        .iter()
        .zip(args)
        .enumerate()
        .map(|(i, (t, a))| convert(t, a).map_err(|m| format!("argument {i}: {m}")))
        .collect()
}

/// Converts one request value to a wasm value of type `t`.
pub fn convert(t: &ValType, a: &WasmArg) -> Result<Val, String> {
    let int = |a: &WasmArg| -> Result<i64, String> {
        match a {
            WasmArg::Int(v) => Ok(*v),
            WasmArg::Bool(b) => Ok(i64::from(*b)),
            WasmArg::Text(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("\"{s}\" is not a decimal integer")),
            WasmArg::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(*f as i64),
            WasmArg::Float(f) => Err(format!("{f} is not an integer")),
        }
    };
    let float = |a: &WasmArg| -> Result<f64, String> {
        match a {
            WasmArg::Int(v) => Ok(*v as f64),
            WasmArg::Float(f) => Ok(*f),
            WasmArg::Bool(b) => Ok(f64::from(u8::from(*b))),
            WasmArg::Text(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("\"{s}\" is not a number")),
        }
    };
    match t {
        ValType::I32 => {
            let v = int(a)?;
            // Accept the signed and the unsigned 32-bit range (0xffffffff is -1).
            if (i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(&v) {
                Ok(Val::I32(v as i32))
            } else {
                Err(format!("{v} does not fit in an i32"))
            }
        }
        ValType::I64 => Ok(Val::I64(int(a)?)),
        ValType::F32 => Ok(Val::F32((float(a)? as f32).to_bits())),
        ValType::F64 => Ok(Val::F64(float(a)?.to_bits())),
        other => Err(format!(
            "parameters of type {} cannot be passed from JSON",
            wasm_type(other).as_str()
        )),
    }
}

/// Defines every non-WASI import of `module` in `linker`: memories and tables are created at
/// their minimum size, globals and functions take the request's values, and what is left gets
/// zero stubs when the request allows them. Returns the stubbed names, or an error naming every
/// import left unsatisfied.
fn link(
    store: &mut Store<Host>,
    linker: &mut Linker<Host>,
    module: &Module,
    job: &WasmRunJob,
) -> Result<Vec<String>, String> {
    let mut stubbed = wasi::stub_unsupported(linker, module).map_err(|e| format!("{e:#}"))?;
    let mut missing = Vec::new();
    for import in module.imports() {
        let (m, n) = (import.module(), import.name());
        if m == wasi::MODULE {
            continue;
        }
        let label = format!("{m}.{n}");
        let given = job
            .imports
            .iter()
            .find(|v| v.module == m && v.name == n)
            .map(|v| &v.value);
        let defined = match import.ty() {
            ExternType::Memory(ty) => Memory::new(&mut *store, ty)
                .map_err(|e| limit_message(&e))
                .and_then(|mem| {
                    linker
                        .define(&*store, m, n, mem)
                        .map(|_| ())
                        .map_err(|e| format!("{e:#}"))
                }),
            ExternType::Table(ty) => {
                let init = Ref::null(ty.element().heap_type());
                Table::new(&mut *store, ty, init)
                    .map_err(|e| limit_message(&e))
                    .and_then(|t| {
                        linker
                            .define(&*store, m, n, t)
                            .map(|_| ())
                            .map_err(|e| format!("{e:#}"))
                    })
            }
            ExternType::Global(ty) => {
                let value = match given {
                    Some(v) => {
                        convert(ty.content(), v).map_err(|e| format!("import {label}: {e}"))?
                    }
                    None if job.stub_missing_imports => {
                        stubbed.push(label.clone());
                        Val::default_for_ty(ty.content()).ok_or_else(|| {
                            format!("import {label}: no default value for its type")
                        })?
                    }
                    None => {
                        missing.push(label);
                        continue;
                    }
                };
                Global::new(&mut *store, ty, value)
                    .map_err(|e| format!("import {label}: {e:#}"))
                    .and_then(|g| {
                        linker
                            .define(&*store, m, n, g)
                            .map(|_| ())
                            .map_err(|e| format!("{e:#}"))
                    })
            }
            ExternType::Func(ty) => {
                let results: Vec<ValType> = ty.results().collect();
                let constant = match given {
                    Some(v) if results.len() == 1 => {
                        Some(convert(&results[0], v).map_err(|e| format!("import {label}: {e}"))?)
                    }
                    Some(_) => {
                        return Err(format!(
                            "import {label}: a value can only stand for a function with one result"
                        ))
                    }
                    None if job.stub_missing_imports => {
                        stubbed.push(label.clone());
                        None
                    }
                    None => {
                        missing.push(label);
                        continue;
                    }
                };
                linker
                    .func_new(m, n, ty.clone(), move |_, _, out| {
                        for (slot, t) in out.iter_mut().zip(&results) {
                            *slot = match &constant {
                                Some(c) => *c,
                                None => Val::default_for_ty(t).unwrap_or(Val::I32(0)),
                            };
                        }
                        Ok(())
                    })
                    .map(|_| ())
                    .map_err(|e| format!("{e:#}"))
            }
            ExternType::Tag(_) => {
                missing.push(label);
                continue;
            }
        };
        defined?;
    }
    if !missing.is_empty() {
        return Err(format!(
            "unsatisfied import(s): {} (give values in \"imports\" or set \"stubImports\": true)",
            missing.join(", ")
        ));
    }
    Ok(stubbed)
}

/// Instantiation errors that are neither traps nor limits are link errors (an import of the
/// wrong type, a start function that needs what is missing); wasmtime's own resource-limit
/// errors (too many memories, tables or instances) are limits.
fn link_error(e: wasmtime::Error) -> wasmtime::Error {
    if e.is::<Trap>() || e.is::<HostError>() {
        return e;
    }
    let message = format!("{e:#}");
    if message.contains("resource limit exceeded") {
        return wasmtime::Error::new(HostError::Limit(message));
    }
    wasmtime::Error::new(LinkFailure(message))
}

fn limit_message(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<HostError>() {
        Some(h) => h.to_string(),
        None => format!("{e:#}"),
    }
}

/// Turns the error of a run into its answer.
fn wasm_error(e: &wasmtime::Error) -> WasmError {
    if let Some(Refused(w)) = e.downcast_ref::<Refused>() {
        return w.clone();
    }
    if let Some(LinkFailure(m)) = e.downcast_ref::<LinkFailure>() {
        return error(WasmErrorKind::Link, m.clone());
    }
    classify(e)
}

#[cfg(test)]
mod tests;
