//! Running the host's own JavaScript cheaply: each of its constant sources (the prelude, the
//! `data` preset's Web APIs, `fetch`) is compiled to QuickJS bytecode once per process (in the
//! zygote's warm-up, so every worker inherits the bytes) and each new context only loads and
//! runs the bytecode, which skips parsing on every execution.
//!
//! The bytecode is produced by this process from constant sources and never leaves it, so
//! loading it cannot be used to smuggle in crafted bytecode.

use std::ffi::CStr;
use std::sync::OnceLock;

use rquickjs::{qjs, Context, Ctx, FromJs, Runtime, Value};

/// A constant JavaScript source of the host, compiled to bytecode at most once per process.
pub struct Script {
    name: &'static CStr,
    source: &'static str,
    bytecode: OnceLock<Option<Vec<u8>>>,
}

impl Script {
    /// A script named `name` (shown in stack traces) with the given source.
    pub const fn new(name: &'static CStr, source: &'static str) -> Script {
        Script {
            name,
            source,
            bytecode: OnceLock::new(),
        }
    }

    /// Compiles the script now, if that has not happened yet.
    pub fn warm(&self) {
        let _ = self.bytecode();
    }

    fn bytecode(&self) -> Option<&[u8]> {
        self.bytecode
            .get_or_init(|| {
                // The bytes outlive any runtime, so they are never made inside a region slot.
                let _outside = crate::region::outside();
                self.compile()
            })
            .as_deref()
    }

    fn compile(&self) -> Option<Vec<u8>> {
        let rt = Runtime::new().ok()?;
        let ctx = Context::full(&rt).ok()?;
        ctx.with(|ctx| {
            let mut src = self.source.as_bytes().to_vec();
            src.push(0);
            // SAFETY: `src` is NUL-terminated with source.len() bytes before the NUL. The
            // compiled function is owned by `func` and freed on drop; the buffer
            // JS_WriteObject returns is copied and then released with js_free on the same
            // context.
            unsafe {
                let raw = qjs::JS_Eval(
                    ctx.as_raw().as_ptr(),
                    src.as_ptr().cast(),
                    self.source.len() as _,
                    self.name.as_ptr(),
                    (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32,
                );
                let func = Value::from_raw(ctx.clone(), raw);
                if func.is_exception() {
                    ctx.catch();
                    return None;
                }
                let mut len: qjs::size_t = 0;
                let buf = qjs::JS_WriteObject(
                    ctx.as_raw().as_ptr(),
                    &mut len,
                    func.as_raw(),
                    (qjs::JS_WRITE_OBJ_BYTECODE | qjs::JS_WRITE_OBJ_STRIP_SOURCE) as i32,
                );
                if buf.is_null() {
                    ctx.catch();
                    return None;
                }
                let bytes = std::slice::from_raw_parts(buf, len as usize).to_vec();
                qjs::js_free(ctx.as_raw().as_ptr(), buf.cast());
                Some(bytes)
            }
        })
    }

    /// Runs the script in `ctx` (from bytecode when it compiled) and converts its value.
    pub fn run<'js, T: FromJs<'js>>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<T> {
        let Some(code) = self.bytecode() else {
            return ctx.eval(self.source);
        };
        // SAFETY: `code` is bytecode this process compiled from `source` with the same QuickJS
        // build. JS_ReadObject returns a new function value (or an exception) owned by `func`;
        // JS_EvalFunction consumes that reference, so `func` is forgotten rather than dropped.
        let value = unsafe {
            let func = qjs::JS_ReadObject(
                ctx.as_raw().as_ptr(),
                code.as_ptr(),
                code.len() as _,
                qjs::JS_READ_OBJ_BYTECODE as i32,
            );
            if qjs::JS_IsException(func) {
                return Err(rquickjs::Error::Exception);
            }
            Value::from_raw(
                ctx.clone(),
                qjs::JS_EvalFunction(ctx.as_raw().as_ptr(), func),
            )
        };
        if value.is_exception() {
            return Err(rquickjs::Error::Exception);
        }
        T::from_js(ctx, value)
    }
}
