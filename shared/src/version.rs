//! Protocol versions as a ladder of named constants.
//!
//! Every change to a type in [`crate::message`] or [`crate::zygote`] adds a constant here and
//! moves [`CURRENT`]. The supervisor refuses a worker or zygote that greets it with another
//! version (which can only happen when a binary is replaced under a running service).

use serde::{Deserialize, Serialize};

/// The first protocol: JavaScript execution and validation.
pub const V1_JAVASCRIPT: u32 = 1;

/// The zygote is configured with the sandbox layers; workers report their lockdown.
pub const V2_LOCKDOWN: u32 = 2;

/// A worker reports a seccomp violation (`WorkerMessage::Violation`) before it exits.
pub const V3_VIOLATIONS: u32 = 3;

/// Host calls: a worker running an `agent` job may send `WorkerMessage::Fetch` and wait for
/// `SupervisorMessage::FetchResult` before its final answer.
pub const V4_FETCH: u32 = 4;

/// Jobs carry a language (TypeScript is stripped in the worker), a code form (the `/deno`
/// route always runs a function body) and the `/deno` route's `data`.
pub const V5_TYPESCRIPT: u32 = 5;

/// WebAssembly: compile jobs, run jobs with artifacts cached in workers.
pub const V6_WASM: u32 = 6;

/// The zygote's configuration says how long a worker polls its socket after an answer.
pub const V7_IDLE_POLL: u32 = 7;

/// The zygote's configuration says whether to move its code into huge pages, and its report
/// says how much it moved.
pub const V8_HUGE_TEXT: u32 = 8;

/// The zygote's configuration says whether runtimes are restored from snapshots, and its
/// report says how large its snapshots are.
pub const V9_RUNTIME_SNAPSHOTS: u32 = 9;

/// The version this build speaks.
pub const CURRENT: u32 = V9_RUNTIME_SNAPSHOTS;

/// The handshake a process sends when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the process speaks ([`CURRENT`]).
    pub protocol: u32,
    /// The process id as the process itself sees it (informational).
    pub pid: u32,
}

impl Hello {
    /// The greeting of a process of this build.
    pub fn current() -> Self {
        Hello {
            protocol: CURRENT,
            pid: std::process::id(),
        }
    }
}
