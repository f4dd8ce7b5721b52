//! What each preset puts in a fresh context, and the prototype freeze shared by all of them.
//!
//! `minimal` is the language core: the base objects (Object, Function, Array, String, Number,
//! Boolean, Symbol, BigInt, the Error family, Math, Reflect, iterators and generators), `eval`
//! and `Function` (which run inside the same sandbox), plus JSON, RegExp and Promise, which the
//! language's own syntax (`/re/`, `async`/`await`) needs. `compute` adds Date,
//! Map/Set/WeakMap/WeakSet, typed arrays, ArrayBuffer/SharedArrayBuffer/DataView/Atomics, Proxy
//! and WeakRef/FinalizationRegistry, and the timers (`setTimeout`, `setInterval` and their
//! `clear*`, see [`super::timers`]). `data` is the `compute` context plus the Web APIs of
//! [`super::web`]. Host objects are installed by [`install`], after the prelude.

use isolate_shared::message::Preset;
use rquickjs::context::intrinsic;
use rquickjs::{Context, Ctx, Runtime};

/// The intrinsics of the `minimal` preset.
type MinimalIntrinsics = (
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::Promise,
);

/// The intrinsics of the `compute` preset.
type ComputeIntrinsics = (
    MinimalIntrinsics,
    intrinsic::Date,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Proxy,
    intrinsic::WeakRef,
);

/// Creates a context with the intrinsics of `preset`.
///
/// `data` and `agent` get the `compute` intrinsics; their host objects are added by
/// [`install`] (and, for `agent`, by [`super::fetch::install`]).
pub fn new_context(rt: &Runtime, preset: Preset) -> Result<Context, PresetError> {
    let ctx = match preset {
        Preset::Minimal => Context::custom::<MinimalIntrinsics>(rt),
        Preset::Compute | Preset::Data | Preset::Agent => Context::custom::<ComputeIntrinsics>(rt),
    };
    ctx.map_err(|e| PresetError::Engine(e.to_string()))
}

/// Installs the host objects of `preset` in a context made by [`new_context`], after the
/// prelude has frozen the built-ins: nothing for `minimal`, the timers for `compute`, and the
/// timers plus the Web APIs for `data` and `agent` (whose `fetch` is installed before the
/// prelude by [`super::fetch::install`]). Each preset is the one before it plus one call.
pub fn install(ctx: &Ctx<'_>, preset: Preset) -> rquickjs::Result<()> {
    match preset {
        Preset::Minimal => Ok(()),
        Preset::Compute => super::timers::install(ctx),
        Preset::Data => {
            install(ctx, Preset::Compute)?;
            super::web::install(ctx)
        }
        Preset::Agent => install(ctx, Preset::Data),
    }
}

/// Why a context could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    /// QuickJS failed to create the context.
    #[error("cannot create a JavaScript context: {0}")]
    Engine(String),
}
