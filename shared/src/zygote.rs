//! Messages between the supervisor and the zygote (the fork server).
//!
//! The zygote greets with [`ZygoteReply::Hello`]. For each [`ZygoteRequest::Spawn`] it forks one
//! worker and answers [`ZygoteReply::Spawned`]; that frame travels with two file descriptors in
//! an `SCM_RIGHTS` control message, in this order: the supervisor's end of the worker's socket,
//! and a pidfd for the worker process.

use serde::{Deserialize, Serialize};

use crate::version::Hello;

/// Number of file descriptors attached to [`ZygoteReply::Spawned`].
pub const SPAWNED_FDS: usize = 2;

/// Descriptor number of the control socket in the zygote (the supervisor places it there
/// before exec), and of the job socket in a worker.
pub const CONTROL_FD: std::os::fd::RawFd = 3;

/// A request from the supervisor to the zygote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZygoteRequest {
    /// The first request: which sandbox layers to set up. Answered by
    /// [`ZygoteReply::Configured`] (or [`ZygoteReply::ConfigureFailed`]).
    Configure(SandboxConfig),
    /// Fork one new worker.
    Spawn,
}

/// Which sandbox layers to apply, and with what limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// Install the seccomp filters in every worker.
    pub seccomp: bool,
    /// Restrict every worker with a landlock ruleset that grants nothing.
    pub landlock: bool,
    /// Enter new user, network, IPC, UTS and mount namespaces in the zygote.
    pub namespaces: bool,
    /// Resource limits for every worker; `None` leaves them as inherited.
    pub rlimits: Option<Rlimits>,
    /// Not a layer, but set once per zygote like them: how long, in microseconds, a worker
    /// polls its socket after each answer before it blocks on it (0: it blocks at once).
    pub idle_poll_micros: u32,
    /// Not a layer either: move the zygote's code and read-only data into transparent huge
    /// pages before it forks, so that workers inherit them without page faults
    /// (`workers.huge_text_pages`).
    pub huge_text_pages: bool,
    /// Nor this: prepare each preset's runtime once, in a memory region of its own, and put
    /// it back to a snapshot of that region after every job instead of building a new one
    /// (`workers.runtime_snapshots`).
    pub runtime_snapshots: bool,
}

/// Resource limits applied to each worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimits {
    /// `RLIMIT_DATA` in bytes: heap and private writable mappings.
    pub data_bytes: u64,
    /// `RLIMIT_NOFILE`: open descriptors.
    pub open_files: u64,
    /// `RLIMIT_NPROC`: processes and threads of the worker's user.
    pub processes: u64,
    /// `RLIMIT_FSIZE` in bytes: largest file the worker may write.
    pub file_size_bytes: u64,
}

/// What the zygote set up, as measured by the zygote itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZygoteReport {
    /// Namespaces entered (`user`, `net`, `ipc`, `uts`, `mnt`), empty when none.
    pub namespaces: Vec<String>,
    /// Why namespaces were not entered, when they were asked for and failed.
    pub namespace_error: Option<String>,
    /// SHA-256 (hex) of the seccomp policy compiled for the workers, when seccomp is on.
    pub seccomp_policy_sha256: Option<String>,
    /// Why the zygote could not install its own seccomp filters, which its workers inherit
    /// (each worker then installs the whole policy itself).
    pub zygote_seccomp_error: Option<String>,
    /// The landlock ABI the kernel offers (0: none).
    pub landlock_kernel_abi: i32,
    /// Bytes of the zygote's code and read-only data moved into transparent huge pages (0:
    /// none).
    pub huge_text_bytes: u64,
    /// Why the code was not moved, when that was asked for and could not be done.
    pub huge_text_error: Option<String>,
    /// Bytes of the zygote's runtime snapshots, one per preset (0: runtimes are built per
    /// job).
    pub runtime_snapshot_bytes: u64,
}

/// What one worker applied to itself before greeting, read back from the kernel where possible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockdownReport {
    /// `PR_GET_NO_NEW_PRIVS` after lockdown.
    pub no_new_privs: bool,
    /// `PR_GET_SECCOMP` after lockdown: 2 when a filter is installed.
    pub seccomp_mode: i32,
    /// The landlock ABI enforced (0: none).
    pub landlock_abi: i32,
    /// `full`, `partial` or `none`: how much of the requested ruleset the kernel enforces.
    pub landlock_status: String,
    /// Whether the rlimits were applied.
    pub rlimits: bool,
    /// Layers that were asked for and failed, with the reason.
    pub errors: Vec<String>,
    /// Time spent applying the lockdown, in microseconds.
    pub micros: u64,
}

/// An answer from the zygote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZygoteReply {
    /// The zygote is initialised and waiting for requests.
    Hello(Hello),
    /// A worker was forked; its socket and pidfd are attached.
    Spawned {
        /// The worker's process id.
        pid: u32,
    },
    /// The sandbox was set up as far as the kernel allows.
    Configured(ZygoteReport),
    /// The sandbox could not be set up at all.
    ConfigureFailed {
        /// Why.
        message: String,
    },
    /// The fork failed.
    SpawnFailed {
        /// Why.
        message: String,
    },
}
