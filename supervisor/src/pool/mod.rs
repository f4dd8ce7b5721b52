//! The worker pool: a bounded number of executions, a bounded queue, pre-warmed workers.
//!
//! * [`Pool::call`] takes a slot (at most `workers.max_concurrent` at once; up to
//!   `workers.queue_size` requests may wait for one, for at most `workers.queue_timeout_ms`;
//!   beyond either bound the answer is [`PoolError::Busy`]; waiting keys are served in turn,
//!   see [`fair`]), checks out an idle worker (or asks
//!   for a new one), sends the job and waits for the answer until the hard deadline.
//! * Past the deadline the worker is SIGKILLed through its pidfd and dropped; a worker that
//!   crashed, spoke out of turn, asked to be recycled or reached `workers.recycle_after`
//!   executions is dropped too. Dropping a [`Worker`] always kills its process.
//! * While an `agent` job runs, the worker may send host calls (`WorkerMessage::Fetch`)
//!   before its answer: [`Worker::call`] performs each through the job's [`FetchContext`] and
//!   writes the result back, all inside the same hard deadline. A host call from a job without
//!   a context is [`PoolError::HostCall`] and kills the worker. A worker that ran an `agent`
//!   job is always replaced (a fresh process per `agent` execution).
//! * The [`zygote`] manager thread keeps `workers.prewarm` idle workers ready and replaces
//!   dropped ones in the background, so a request waits for a fork only when the pool is dry.

pub mod fair;
pub mod zygote;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use isolate_shared::frame::{self, FrameError, HEADER_LEN, MAX_FRAME_BYTES};
use isolate_shared::message::{SupervisorMessage, WasmRunJob, WorkerMessage};
use isolate_shared::sys;
use isolate_shared::zygote::{LockdownReport, ZygoteReport};
// The system call numbers of the kill list below, from the libc crate that nix re-exports.
use nix::libc;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::config::{SandboxSettings, WorkersConfig};
use crate::fetch::FetchContext;
pub use fair::Tenant;

/// Why a job got no answer from a worker.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// No slot became free within the queue bounds.
    #[error("all {0} execution slots are busy and the queue is full")]
    Busy(usize),
    /// The worker did not answer before the hard deadline and was killed.
    #[error("the worker did not answer within {after:?} and was killed")]
    Deadline {
        /// The deadline.
        after: Duration,
        /// The CPU nanoseconds the worker spent on the job until the kill, from the kernel's
        /// accounting of the process (`/proc/<pid>/schedstat`); `None` when it could not be read.
        cpu_ns: Option<u64>,
    },
    /// The worker process died while running the job.
    #[error("the worker process (pid {0}) died while running the code")]
    Crashed(u32),
    /// The worker or zygote broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The zygote could not be started or reached.
    #[error("zygote unavailable: {0}")]
    Zygote(io::Error),
    /// The zygote could not fork.
    #[error("cannot start a worker: {0}")]
    Spawn(String),
    /// The pool is shutting down.
    #[error("the service is shutting down")]
    ShuttingDown,
    /// The worker announced an answer larger than the job's answer bound (its size, the
    /// bound); the worker was killed before any of it was buffered.
    #[error("the worker's answer of {0} bytes exceeds the bound of {1} bytes")]
    TooLarge(usize, usize),
    /// The worker attempted a system call on the seccomp kill list (its number) and exited.
    #[error("the worker attempted the forbidden system call {}", syscall_name(*.0))]
    Violation(u32),
    /// A required sandbox layer is not available.
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// The worker made a host call its job does not allow, and was killed.
    #[error("the worker made a host call its job does not allow")]
    HostCall,
}

impl PoolError {
    /// The CPU microseconds a worker killed at its deadline spent on the job (0 for any other
    /// error, or when the kernel's count could not be read).
    pub fn killed_cpu_us(&self) -> u64 {
        match self {
            PoolError::Deadline {
                cpu_ns: Some(ns), ..
            } => ns / 1000,
            _ => 0,
        }
    }
}

/// What `/status` shows of one live worker.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// When the worker greeted.
    pub born: Instant,
    /// Jobs it has answered.
    pub executions: u32,
    /// Whether it is running a job now.
    pub busy: bool,
    /// What it applied to itself.
    pub lockdown: LockdownReport,
    /// Microseconds from the spawn request to its greeting (fork, lockdown, first frame).
    pub spawn_micros: u64,
}

/// Every live worker by pid; a [`Worker`] registers itself when created and leaves on drop.
pub type Registry = Arc<Mutex<HashMap<u32, WorkerInfo>>>;

/// One worker process, owned by exactly one place at a time (the idle queue or a request).
pub struct Worker {
    pid: u32,
    stream: Option<StdUnixStream>,
    pidfd: OwnedFd,
    executions: u32,
    registry: Registry,
    /// Worker-cache keys of the WebAssembly modules this worker holds loaded.
    modules: HashSet<String>,
    /// The kernel's count of the process's CPU time, opened once here (in the manager
    /// thread) rather than on each job's path.
    clock: Option<crate::procfs::CpuClock>,
}

impl Worker {
    fn new(
        pid: u32,
        stream: StdUnixStream,
        pidfd: OwnedFd,
        lockdown: LockdownReport,
        spawn_micros: u64,
        registry: &Registry,
    ) -> Self {
        let info = WorkerInfo {
            born: Instant::now(),
            executions: 0,
            busy: false,
            lockdown,
            spawn_micros,
        };
        lock(registry).insert(pid, info);
        Worker {
            pid,
            stream: Some(stream),
            pidfd,
            executions: 0,
            registry: Arc::clone(registry),
            modules: HashSet::new(),
            clock: crate::procfs::CpuClock::open(pid),
        }
    }

    /// The CPU nanoseconds the process has used so far.
    fn cpu_ns(&self) -> Option<u64> {
        self.clock.as_ref()?.ns()
    }

    fn set_busy(&self, busy: bool) {
        if let Some(info) = lock(&self.registry).get_mut(&self.pid) {
            info.busy = busy;
            info.executions = self.executions;
        }
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn alive(&self) -> bool {
        self.stream.is_some() && !sys::pidfd_exited(&self.pidfd)
    }

    /// Sends one job and waits for the final answer, at most `deadline` in all, and of at
    /// most `frame_limit` bytes. Host calls that arrive first are performed through `fetch`
    /// and answered, one at a time.
    async fn call(
        &mut self,
        msg: &SupervisorMessage,
        deadline: Duration,
        fetch: Option<&FetchContext>,
        frame_limit: usize,
    ) -> Result<WorkerMessage, PoolError> {
        let frame = frame::encode(msg).map_err(|e| PoolError::Protocol(e.to_string()))?;
        let cpu_before = self.cpu_ns();
        let std = self.stream.take().ok_or(PoolError::Crashed(self.pid))?;
        let mut stream =
            tokio::net::UnixStream::from_std(std).map_err(|_| PoolError::Crashed(self.pid))?;
        let exchange = async {
            // Buffered reads: an answer's header and payload come in one system call.
            let mut stream = tokio::io::BufReader::with_capacity(READ_BUFFER, &mut stream);
            stream.write_all(&frame).await.map_err(FrameError::Io)?;
            if let Some(f) = fetch {
                f.start();
            }
            loop {
                match read_frame(&mut stream, frame_limit).await? {
                    WorkerMessage::Fetch(request) => {
                        let Some(f) = fetch else {
                            return Ok(Err(PoolError::HostCall));
                        };
                        let result = f.perform(request).await;
                        let answer = frame::encode(&SupervisorMessage::FetchResult(result))?;
                        stream.write_all(&answer).await.map_err(FrameError::Io)?;
                    }
                    reply => return Ok(Ok(reply)),
                }
            }
        };
        let result = tokio::time::timeout(deadline, exchange).await;
        self.stream = stream.into_std().ok();
        match result {
            Err(_) => {
                // The job's CPU time, read from the kernel before the process goes.
                let cpu_ns = self
                    .cpu_ns()
                    .zip(cpu_before)
                    .map(|(after, before)| after.saturating_sub(before));
                let _ = sys::pidfd_send_signal(&self.pidfd, Signal::SIGKILL);
                Err(PoolError::Deadline {
                    after: deadline,
                    cpu_ns,
                })
            }
            Ok(Err(FrameError::Closed | FrameError::Truncated | FrameError::Io(_))) => {
                Err(PoolError::Crashed(self.pid))
            }
            Ok(Err(FrameError::TooLarge { len, max })) => {
                let _ = sys::pidfd_send_signal(&self.pidfd, Signal::SIGKILL);
                self.stream = None;
                Err(PoolError::TooLarge(len, max))
            }
            Ok(Err(e)) => Err(PoolError::Protocol(e.to_string())),
            Ok(Ok(Err(e))) => {
                let _ = sys::pidfd_send_signal(&self.pidfd, Signal::SIGKILL);
                Err(e)
            }
            Ok(Ok(Ok(WorkerMessage::Violation { syscall_le }))) => {
                let _ = sys::pidfd_send_signal(&self.pidfd, Signal::SIGKILL);
                Err(PoolError::Violation(u32::from_le_bytes(syscall_le)))
            }
            Ok(Ok(Ok(reply))) => Ok(reply),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Always kill: a dropped worker may be mid-job (its request was cancelled). The zygote
        // ignores SIGCHLD, so the kernel reaps the process.
        let _ = sys::pidfd_send_signal(&self.pidfd, Signal::SIGKILL);
        lock(&self.registry).remove(&self.pid);
    }
}

/// The read buffer of one exchange with a worker: answers up to this size take one `read`.
const READ_BUFFER: usize = 8 * 1024;

async fn read_frame(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    limit: usize,
) -> Result<WorkerMessage, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = frame::payload_len(header, limit.min(MAX_FRAME_BYTES))?;
    let mut payload = vec![0u8; len];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    frame::decode(&payload)
}

/// The most workers the manager asks the zygote for at once.
const MAX_SPAWN_BATCH: usize = 8;

enum Command {
    Spawn(oneshot::Sender<Result<Worker, PoolError>>),
    Replenish,
    Shutdown,
}

/// Counters shown by `/stats` and `/health`.
#[derive(Debug, Default)]
pub struct PoolCounters {
    /// Workers forked.
    pub spawned: AtomicU64,
    /// Workers retired after a normal life (recycle_after or their own request).
    pub recycled: AtomicU64,
    /// Workers killed at the hard deadline.
    pub killed: AtomicU64,
    /// Workers that died while running a job.
    pub crashed: AtomicU64,
    /// Requests refused with BUSY.
    pub busy: AtomicU64,
    /// Workers that hit the seccomp kill list.
    pub violations: AtomicU64,
}

/// A snapshot of the pool for status routes.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSnapshot {
    /// Idle workers ready now.
    pub idle: usize,
    /// Executions running now.
    pub busy: usize,
    /// Requests waiting for a slot.
    pub queued: usize,
    /// Configured idle target.
    pub prewarm: usize,
    /// Configured concurrency cap.
    pub max_concurrent: usize,
    /// Configured queue bound.
    pub queue_size: usize,
    /// Workers forked since start.
    pub spawned: u64,
    /// Workers retired normally.
    pub recycled: u64,
    /// Workers killed at the deadline.
    pub killed: u64,
    /// Workers that crashed mid-job.
    pub crashed: u64,
    /// Requests refused with BUSY.
    pub rejected_busy: u64,
    /// Workers stopped for attempting a forbidden system call.
    pub violations: u64,
    /// The zygote's pid (0 when none runs).
    pub zygote_pid: u32,
    /// Zygote starts, the first included.
    pub zygote_starts: u64,
}

/// The pool of workers. Create with [`Pool::start`].
pub struct Pool {
    config: WorkersConfig,
    /// The largest answer frame a worker may send for a job other than a compilation (whose
    /// answer carries the compiled artifact): [`crate::config::Config::worker_frame_bytes`].
    frame_limit: usize,
    idle: Mutex<VecDeque<Worker>>,
    slots: fair::Slots,
    busy: AtomicUsize,
    commands: Mutex<mpsc::Sender<Command>>,
    manager: Mutex<Option<JoinHandle<()>>>,
    shutting_down: AtomicBool,
    zygote_pid: AtomicU32,
    zygote_starts: AtomicU64,
    zygote_report: Mutex<Option<ZygoteReport>>,
    registry: Registry,
    /// Lifetime counters.
    pub counters: PoolCounters,
}

impl Pool {
    /// Starts the zygote (with its sandbox) and the manager thread, and forks a first worker
    /// to check that the sandbox holds. Fails when the zygote cannot be started or a layer
    /// listed in `sandbox.require` is missing.
    pub fn start(
        config: WorkersConfig,
        sandbox: SandboxSettings,
        frame_limit: usize,
    ) -> Result<Arc<Pool>, PoolError> {
        let (tx, rx) = mpsc::channel();
        let pool = Arc::new(Pool {
            frame_limit,
            slots: fair::Slots::new(
                config.max_concurrent,
                config.queue_size,
                Duration::from_millis(config.queue_timeout_ms),
            ),
            config,
            idle: Mutex::new(VecDeque::new()),
            busy: AtomicUsize::new(0),
            commands: Mutex::new(tx),
            manager: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
            zygote_pid: AtomicU32::new(0),
            zygote_starts: AtomicU64::new(0),
            zygote_report: Mutex::new(None),
            registry: Arc::new(Mutex::new(HashMap::new())),
            counters: PoolCounters::default(),
        });
        let spawn_timeout = Duration::from_millis(pool.config.spawn_timeout_ms);
        let mut manager = zygote::ZygoteManager::new(
            spawn_timeout,
            sandbox.clone(),
            pool.config.clone(),
            Arc::clone(&pool.registry),
        );
        manager.ensure_started()?;
        let first = manager.spawn()?;
        warn_about_missing_layers(&sandbox, manager.report.as_ref(), &lock(&pool.registry));
        pool.counters.spawned.fetch_add(1, Ordering::Relaxed);
        lock(&pool.idle).push_back(first);
        *lock(&pool.zygote_report) = manager.report.clone();
        pool.zygote_pid
            .store(manager.pid().unwrap_or(0), Ordering::Relaxed);
        pool.zygote_starts.store(manager.starts, Ordering::Relaxed);
        let weak = Arc::downgrade(&pool);
        let handle = std::thread::Builder::new()
            .name("zygote-manager".into())
            .spawn(move || manager_loop(weak, rx, manager))
            .map_err(PoolError::Zygote)?;
        *lock(&pool.manager) = Some(handle);
        pool.send(Command::Replenish);
        Ok(pool)
    }

    fn send(&self, cmd: Command) {
        let _ = lock(&self.commands).send(cmd);
    }

    /// Runs one job on a worker: waits for a slot, checks out a worker, and returns its answer
    /// or why there is none. `deadline` bounds the worker's time (host calls included), not
    /// the wait for a slot. `fetch` performs the job's host calls; `None` allows none.
    pub async fn call(
        &self,
        msg: &SupervisorMessage,
        deadline: Duration,
        fetch: Option<&FetchContext>,
        tenant: &Tenant,
    ) -> Result<(WorkerMessage, u32), PoolError> {
        let _slot = self.acquire_slot(tenant).await?;
        let _busy = CountGuard::new(&self.busy);
        let mut worker = self.checkout().await?;
        let pid = worker.pid;
        worker.set_busy(true);
        let limit = match msg {
            SupervisorMessage::WasmCompile(_) => MAX_FRAME_BYTES,
            _ => self.frame_limit,
        };
        let result = worker.call(msg, deadline, fetch, limit).await;
        // A worker that ran an `agent` job is always replaced (a fresh process per execution).
        let fresh = fetch.is_some()
            || matches!(msg, SupervisorMessage::Execute(job) if job.preset.fresh_process());
        self.finish(worker, &result, fresh);
        result.map(|reply| (reply, pid))
    }

    /// Runs a WebAssembly job. The artifact travels only when the chosen worker is not known
    /// to hold the module (and once more if the worker answers that it lost it); the worker's
    /// answer says which modules it evicted, so the pool's knowledge stays exact.
    pub async fn call_wasm(
        &self,
        mut job: WasmRunJob,
        artifact: &[u8],
        deadline: Duration,
        tenant: &Tenant,
    ) -> Result<(WorkerMessage, u32), PoolError> {
        let _slot = self.acquire_slot(tenant).await?;
        let _busy = CountGuard::new(&self.busy);
        let mut worker = self.checkout().await?;
        let pid = worker.pid;
        worker.set_busy(true);
        let key = job.module_id.clone();
        if !worker.modules.contains(&key) {
            job.artifact = Some(artifact.to_vec());
        }
        let mut msg = SupervisorMessage::WasmRun(job);
        let mut result = worker.call(&msg, deadline, None, self.frame_limit).await;
        if matches!(&result, Ok(WorkerMessage::WasmRan(o)) if o.needs_artifact) {
            worker.modules.remove(&key);
            if let SupervisorMessage::WasmRun(job) = &mut msg {
                job.artifact = Some(artifact.to_vec());
            }
            result = worker.call(&msg, deadline, None, self.frame_limit).await;
        }
        if let Ok(WorkerMessage::WasmRan(o)) = &result {
            for gone in &o.evicted {
                worker.modules.remove(gone);
            }
            let unusable = matches!(&o.result, Err(e)
                if e.kind == isolate_shared::message::WasmErrorKind::ModuleUnusable);
            if !o.needs_artifact && !unusable {
                worker.modules.insert(key);
            }
        }
        self.finish(worker, &result, false);
        result.map(|reply| (reply, pid))
    }

    /// Returns a worker to the idle queue after a job, or retires it (always when `retire`).
    fn finish(&self, mut worker: Worker, result: &Result<WorkerMessage, PoolError>, retire: bool) {
        let pid = worker.pid;
        match result {
            Ok(reply) => {
                worker.executions += 1;
                let wants_recycle = retire
                    || match reply {
                        WorkerMessage::Executed(o) => o.recycle,
                        WorkerMessage::WasmRan(o) => o.recycle,
                        _ => false,
                    };
                worker.set_busy(false);
                if wants_recycle || worker.executions >= self.config.recycle_after {
                    self.counters.recycled.fetch_add(1, Ordering::Relaxed);
                    self.retire(worker);
                } else {
                    lock(&self.idle).push_back(worker);
                }
            }
            Err(PoolError::Deadline { .. }) => {
                self.counters.killed.fetch_add(1, Ordering::Relaxed);
                self.retire(worker);
            }
            Err(PoolError::Crashed(_)) => {
                self.counters.crashed.fetch_add(1, Ordering::Relaxed);
                self.retire(worker);
            }
            Err(PoolError::HostCall) => {
                self.counters.violations.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(pid, "a worker made a host call its job does not allow");
                self.retire(worker);
            }
            Err(PoolError::Violation(nr)) => {
                self.counters.violations.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    pid,
                    syscall = syscall_name(*nr),
                    "a worker attempted a forbidden system call"
                );
                self.retire(worker);
            }
            Err(_) => self.retire(worker),
        }
    }

    fn retire(&self, worker: Worker) {
        drop(worker);
        self.send(Command::Replenish);
    }

    async fn acquire_slot(&self, tenant: &Tenant) -> Result<fair::Permit, PoolError> {
        if self.shutting_down.load(Ordering::Relaxed) {
            return Err(PoolError::ShuttingDown);
        }
        let busy = |e| match e {
            fair::SlotError::Closed => PoolError::ShuttingDown,
            fair::SlotError::Busy => {
                self.counters.busy.fetch_add(1, Ordering::Relaxed);
                PoolError::Busy(self.config.max_concurrent)
            }
        };
        let queued_at = Instant::now();
        let permit = self.slots.acquire(tenant).await.map_err(busy)?;
        crate::telemetry::queue_wait(queued_at.elapsed());
        Ok(permit)
    }

    /// Takes the idle worker that answered last (the idle queue is a stack): its runtime was
    /// prepared most recently, so its memory is the warmest, and it may still be polling its
    /// socket (see `serve` in the worker), so a job finds it awake.
    async fn checkout(&self) -> Result<Worker, PoolError> {
        loop {
            let (next, left) = {
                let mut idle = lock(&self.idle);
                (idle.pop_back(), idle.len())
            };
            match next {
                Some(w) if w.alive() => {
                    // Wake the manager only when the pool fell below its target; a busy pool
                    // otherwise pays a cross-thread wake-up on every request.
                    if left < self.config.prewarm {
                        self.send(Command::Replenish);
                    }
                    return Ok(w);
                }
                Some(dead) => {
                    tracing::warn!(pid = dead.pid, "an idle worker died; discarding it");
                    drop(dead);
                }
                None => break,
            }
        }
        let (tx, rx) = oneshot::channel();
        self.send(Command::Spawn(tx));
        rx.await.map_err(|_| PoolError::ShuttingDown)?
    }

    /// Current state, for `/health` and `/stats`.
    pub fn snapshot(&self) -> PoolSnapshot {
        let c = &self.counters;
        PoolSnapshot {
            idle: lock(&self.idle).len(),
            busy: self.busy.load(Ordering::Relaxed),
            queued: self.slots.queued(),
            prewarm: self.config.prewarm,
            max_concurrent: self.config.max_concurrent,
            queue_size: self.config.queue_size,
            spawned: c.spawned.load(Ordering::Relaxed),
            recycled: c.recycled.load(Ordering::Relaxed),
            killed: c.killed.load(Ordering::Relaxed),
            crashed: c.crashed.load(Ordering::Relaxed),
            rejected_busy: c.busy.load(Ordering::Relaxed),
            violations: c.violations.load(Ordering::Relaxed),
            zygote_pid: self.zygote_pid.load(Ordering::Relaxed),
            zygote_starts: self.zygote_starts.load(Ordering::Relaxed),
        }
    }

    /// Every live worker: pid and what the pool knows of it.
    pub fn workers(&self) -> Vec<(u32, WorkerInfo)> {
        let mut list: Vec<_> = lock(&self.registry)
            .iter()
            .map(|(p, i)| (*p, i.clone()))
            .collect();
        list.sort_by_key(|(pid, _)| *pid);
        list
    }

    /// What the current zygote set up.
    pub fn zygote_report(&self) -> Option<ZygoteReport> {
        lock(&self.zygote_report).clone()
    }

    /// Kills every worker, then stops the manager (which stops the zygote), and waits until
    /// each of those processes is gone: see [`crate::lifecycle`].
    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.slots.close();
        // Workers first, while their zygote (which ignores SIGCHLD) lives to have the kernel
        // reap each one as it dies, killed ones included; then the zygote; then whatever came
        // back to the supervisor (a subreaper), reaped.
        lock(&self.idle).clear();
        let zygote = Some(self.zygote_pid.load(Ordering::Relaxed)).filter(|p| *p > 0);
        crate::lifecycle::wait_for_descendants(zygote, Duration::from_secs(1));
        self.send(Command::Shutdown);
        if let Some(handle) = lock(&self.manager).take() {
            let _ = handle.join();
        }
        lock(&self.idle).clear();
        // 1 + 3 s: with the default 10 s drain, within the unit's TimeoutStopSec=15s.
        let left = crate::lifecycle::wait_for_descendants(None, Duration::from_secs(3));
        if !left.is_empty() {
            tracing::error!(?left, "processes still there 3 s after the zygote stopped");
        }
    }
}

fn manager_loop(
    pool: Weak<Pool>,
    commands: mpsc::Receiver<Command>,
    mut manager: zygote::ZygoteManager,
) {
    let mut last_failure: Option<Instant> = None;
    loop {
        let cmd = commands.recv_timeout(Duration::from_millis(250));
        let Some(pool) = pool.upgrade() else { break };
        if pool.shutting_down.load(Ordering::Relaxed) {
            break;
        }
        if manager.reap() {
            if let Err(e) = manager.ensure_started() {
                tracing::error!(error = %e, "cannot restart the zygote");
            }
        }
        // Workers orphaned by a dead zygote are re-parented to the supervisor (a subreaper).
        crate::lifecycle::reap_orphans(manager.pid());
        // Every request waiting for a worker right now, and the idle workers missing, are
        // forked as one batch (see `ZygoteManager::spawn_batch`).
        let mut waiting = Vec::new();
        let mut stop = false;
        match cmd {
            Ok(Command::Spawn(reply)) => waiting.push(reply),
            Ok(Command::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => stop = true,
            Ok(Command::Replenish) | Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        // Keep `prewarm` idle workers; back off for a second after a failure.
        while !stop {
            // Requests waiting by now go first in this batch.
            while waiting.len() < MAX_SPAWN_BATCH {
                match commands.try_recv() {
                    Ok(Command::Spawn(reply)) => waiting.push(reply),
                    Ok(Command::Replenish) => {}
                    Ok(Command::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => stop = true,
                    Err(mpsc::TryRecvError::Empty) => break,
                }
                if stop {
                    break;
                }
            }
            if stop {
                break;
            }
            let backing_off = last_failure.is_some_and(|t| t.elapsed() <= Duration::from_secs(1));
            let missing = if backing_off || pool.shutting_down.load(Ordering::Relaxed) {
                0
            } else {
                pool.config.prewarm.saturating_sub(lock(&pool.idle).len())
            };
            let want = (waiting.len() + missing).min(MAX_SPAWN_BATCH);
            if want == 0 {
                break;
            }
            let mut batch = manager.spawn_batch(want).into_iter();
            for reply in waiting.drain(..) {
                // A request gets a worker from the batch, or one more try of its own (which
                // restarts a zygote that stopped answering).
                let worker = match batch.next() {
                    Some(Ok(w)) => Ok(w),
                    _ => manager.spawn(),
                };
                if worker.is_ok() {
                    pool.counters.spawned.fetch_add(1, Ordering::Relaxed);
                }
                let _ = reply.send(worker);
            }
            for worker in batch {
                match worker {
                    Ok(w) => {
                        pool.counters.spawned.fetch_add(1, Ordering::Relaxed);
                        lock(&pool.idle).push_back(w);
                        last_failure = None;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot pre-warm a worker");
                        last_failure = Some(Instant::now());
                    }
                }
            }
        }
        if stop {
            break;
        }
        pool.zygote_pid
            .store(manager.pid().unwrap_or(0), Ordering::Relaxed);
        pool.zygote_starts.store(manager.starts, Ordering::Relaxed);
    }
    // Dropping the manager kills and reaps the zygote; the workers follow it (PDEATHSIG).
    drop(manager);
}

/// Logs a loud warning for every layer that is enabled but did not take effect.
fn warn_about_missing_layers(
    sandbox: &SandboxSettings,
    zygote: Option<&ZygoteReport>,
    workers: &HashMap<u32, WorkerInfo>,
) {
    if sandbox.namespaces {
        if let Some(error) = zygote.and_then(|z| z.namespace_error.as_deref()) {
            tracing::warn!("SANDBOX DEGRADED: namespaces are off: {error}");
        }
    }
    for info in workers.values().take(1) {
        for error in &info.lockdown.errors {
            tracing::warn!("SANDBOX DEGRADED: {error}");
        }
        if sandbox.landlock && info.lockdown.landlock_status == "partial" {
            tracing::warn!(
                abi = info.lockdown.landlock_abi,
                "SANDBOX DEGRADED: landlock is only partially enforced by this kernel"
            );
        }
    }
    for (layer, on) in [
        ("seccomp", sandbox.seccomp),
        ("landlock", sandbox.landlock),
        ("namespaces", sandbox.namespaces),
        ("rlimits", sandbox.rlimits),
    ] {
        if !on {
            tracing::warn!(
                "SANDBOX DEGRADED: sandbox.{layer} is switched off in the configuration"
            );
        }
    }
}

/// The name of a system call on the seccomp kill list, for answers and logs.
pub fn syscall_name(nr: u32) -> String {
    KILL_LIST
        .iter()
        .chain(ARCH_KILL_LIST)
        .find(|(_, n)| i64::from(nr) == *n)
        .map_or_else(|| format!("#{nr}"), |(name, _)| (*name).to_string())
}

/// The system calls of the seccomp kill list (`worker_kill` in `policies/seccomp/`) on every
/// architecture, by name and number: what a violation is reported as. A test checks this list
/// and [`ARCH_KILL_LIST`] against the policy file, so they cannot drift apart.
const KILL_LIST: &[(&str, i64)] = &[
    ("execve", libc::SYS_execve),
    ("execveat", libc::SYS_execveat),
    ("clone", libc::SYS_clone),
    ("clone3", libc::SYS_clone3),
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("bpf", libc::SYS_bpf),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("personality", libc::SYS_personality),
];

/// The kill list's calls that only this architecture has.
#[cfg(target_arch = "x86_64")]
const ARCH_KILL_LIST: &[(&str, i64)] = &[
    ("fork", libc::SYS_fork),
    ("vfork", libc::SYS_vfork),
    ("modify_ldt", libc::SYS_modify_ldt),
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
];

/// The kill list's calls that only this architecture has.
#[cfg(not(target_arch = "x86_64"))]
const ARCH_KILL_LIST: &[(&str, i64)] = &[];

/// Locks a mutex, recovering from poisoning (the guarded data stays consistent: every critical
/// section is a single push, pop or read).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct CountGuard<'a>(&'a AtomicUsize);

impl<'a> CountGuard<'a> {
    fn new(c: &'a AtomicUsize) -> Self {
        c.fetch_add(1, Ordering::AcqRel);
        CountGuard(c)
    }
}

impl Drop for CountGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    const POLICY: &str = include_str!("../../../policies/seccomp/x86_64.json");
    #[cfg(target_arch = "aarch64")]
    const POLICY: &str = include_str!("../../../policies/seccomp/aarch64.json");

    #[test]
    fn violations_are_named_after_the_policy_files_kill_list() {
        let policy: serde_json::Value = serde_json::from_str(POLICY).expect("the policy is JSON");
        let mut in_policy: Vec<&str> = policy["worker_kill"]["filter"]
            .as_array()
            .expect("worker_kill has a filter")
            .iter()
            .map(|rule| rule["syscall"].as_str().expect("each rule names a call"))
            .collect();
        let mut named: Vec<&str> = KILL_LIST
            .iter()
            .chain(ARCH_KILL_LIST)
            .map(|(n, _)| *n)
            .collect();
        in_policy.sort_unstable();
        named.sort_unstable();
        assert_eq!(named, in_policy);
        for (name, nr) in KILL_LIST.iter().chain(ARCH_KILL_LIST) {
            assert_eq!(syscall_name(u32::try_from(*nr).expect("small")), *name);
        }
        assert_eq!(syscall_name(100_000), "#100000");
    }
}
