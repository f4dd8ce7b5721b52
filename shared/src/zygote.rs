//! Messages between the supervisor and the zygote (the fork server).
//!
//! The zygote greets with [`ZygoteReply::Hello`]. For each [`ZygoteRequest::Spawn`] it forks one
//! worker and answers [`ZygoteReply::Spawned`]; that frame travels with two file descriptors in
//! an `SCM_RIGHTS` control message, in this order: the supervisor's end of the worker's socket,
//! and a pidfd for the worker process.

use serde::{Deserialize, Serialize};

use crate::message::Hello;

/// Number of file descriptors attached to [`ZygoteReply::Spawned`].
pub const SPAWNED_FDS: usize = 2;

/// A request from the supervisor to the zygote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZygoteRequest {
    /// Fork one new worker.
    Spawn,
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
    /// The fork failed.
    SpawnFailed {
        /// Why.
        message: String,
    },
}
