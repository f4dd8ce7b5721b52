//! The sandboxed side of isolate-service.
//!
//! * [`zygote`]: the single-threaded fork server the supervisor execs once; it initialises
//!   the engine, then forks workers on request.
//! * [`serve`]: a worker's life: greet, then answer jobs on its one socket until told to stop.
//! * [`js`]: the QuickJS host that runs one job in a fresh runtime.
//! * [`wasm`]: the wasmtime host: compile modules, run exports in a fresh `Store`, WASI.
//! * [`lockdown`]: namespaces, rlimits, landlock and seccomp.
//! * [`hugetext`]: the zygote's code moved into transparent huge pages for its workers.
//! * `sys` (from `isolate-shared`): descriptor passing, pidfds and the other calls both sides
//!   share; everything else calls `nix` directly.
//!
//! **Invariant:** nothing in this crate opens a network socket, and a worker never creates
//! threads: the process stays single-threaded so that the zygote can fork safely and every
//! lockdown applies to the whole process.

pub mod hugetext;
pub mod js;
pub mod lockdown;
pub mod region;
#[cfg(feature = "sandbox-selftest")]
pub mod selftest;
pub mod serve;
pub use isolate_shared::sys;
#[cfg(feature = "wasm")]
pub mod wasm;
#[cfg(not(feature = "wasm"))]
#[path = "wasm_disabled.rs"]
pub mod wasm;
pub mod zygote;

/// The unit tests run their runtimes in region slots, as workers do.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: region::Routing = region::Routing;
