//! The WebAssembly host of a build without the `wasm` feature (the fuzz targets, which test
//! JavaScript and the protocol, are built so): the same entry points as the real module, each
//! answering that WebAssembly is not compiled in.

use isolate_shared::message::{
    WasmCompileJob, WasmCompileOutcome, WasmErrorKind, WasmRunJob, WasmRunOutcome,
};

const ABSENT: &str = "WebAssembly is not compiled into this build";

/// Why the engine is unavailable.
#[derive(Debug, thiserror::Error)]
#[error("{ABSENT}")]
pub struct InitError;

/// Always fails: there is no engine to create.
pub fn init() -> Result<(), InitError> {
    Err(InitError)
}

/// Whether the engine exists in this process: never.
pub fn available() -> bool {
    false
}

/// The modules a worker keeps loaded: none.
#[derive(Default)]
pub struct Cache;

/// Answers that WebAssembly is not compiled in.
pub fn compile(_: &WasmCompileJob) -> WasmCompileOutcome {
    WasmCompileOutcome {
        result: Err(ABSENT.into()),
        elapsed_us: 0,
    }
}

/// Answers that WebAssembly is not compiled in.
pub fn run(_: &mut Cache, _: WasmRunJob) -> WasmRunOutcome {
    WasmRunOutcome::failed(WasmErrorKind::Internal, ABSENT)
}
