//! The prelude every context runs before user code, and the one place its source is named.

use rquickjs::{Ctx, FromJs};

use super::script::Script;

/// The prelude, which every context runs before user code. It freezes every built-in prototype,
/// including the hidden ones (`%TypedArray%.prototype`, iterator and generator prototypes,
/// `AsyncFunction.prototype`), and returns the built-ins the result serialiser
/// needs, captured before user code can shadow anything. It must not throw in any preset, so
/// every lookup tolerates a missing global. It runs from bytecode, see [`super::script`].
static PRELUDE: Script = Script::new(c"prelude.js", include_str!("prelude.js"));

/// Compiles the prelude to bytecode now (the zygote's warm-up).
pub fn warm() {
    PRELUDE.warm();
}

/// Runs the prelude in `ctx` and converts its value (the captured serialiser helpers).
pub fn run<'js, T: FromJs<'js>>(ctx: &Ctx<'js>) -> rquickjs::Result<T> {
    PRELUDE.run(ctx)
}
