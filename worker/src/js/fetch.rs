//! `fetch`, `Headers`, `Request` and `Response` for the `agent` preset.
//!
//! The worker has no network. `fetch` turns its arguments into a [`FetchRequest`] and hands it
//! to the job's [`HostFetch`], which writes it to the supervisor as a host-call frame and blocks
//! until the supervisor's answer arrives; the supervisor performs the request under its egress
//! policy. So fetches are synchronous underneath and run one after another: the promise that
//! `fetch` returns is already settled when it is returned (`Promise.all` of several fetches
//! works, the requests just do not overlap).
//!
//! The JavaScript side (`fetch.js`) captures every built-in it uses before user code runs and
//! freezes its own constructors and prototypes; its state lives in private class fields, out of
//! the code's reach. Text crosses as UTF-8: strings are made well-formed (lone surrogates become
//! U+FFFD) before they are encoded, and response text decodes invalid sequences to U+FFFD.

use std::cell::RefCell;
use std::rc::Rc;

use isolate_shared::message::{FetchRequest, FetchResult, RedirectMode};
use rquickjs::function::Opt;
use rquickjs::{Array, ArrayBuffer, Ctx, Exception, Function, TypedArray, Value};

/// The largest request body the worker will hand to the supervisor (the supervisor applies
/// its own, configured limit, which cannot be larger).
pub const MAX_REQUEST_BODY_BYTES: usize = isolate_shared::message::FETCH_MAX_BODY_BYTES as usize;

/// What performs one fetch for the current job: sends the host call, waits for the answer.
pub type HostFetch = Box<dyn FnMut(FetchRequest) -> FetchResult>;

/// Where the current job's [`HostFetch`] sits. Empty between jobs (and in jobs run without a
/// supervisor), in which case `fetch` rejects.
pub type HostSlot = Rc<RefCell<Option<HostFetch>>>;

static SOURCE: super::script::Script =
    super::script::Script::new(c"fetch.js", include_str!("fetch.js"));

/// Compiles the JavaScript half to bytecode now (the zygote's warm-up), so that each `agent`
/// context only loads it.
pub fn warm() {
    SOURCE.warm();
}

/// Installs `fetch`, `Headers`, `Request` and `Response` into `ctx`, calling the host through
/// `slot`. Must run before any user code.
pub fn install<'js>(ctx: &Ctx<'js>, slot: &HostSlot) -> rquickjs::Result<()> {
    let slot = Rc::clone(slot);
    let host = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>,
              method: String,
              url: String,
              flat: Vec<String>,
              redirect: String,
              body: Opt<TypedArray<'js, u8>>|
              -> rquickjs::Result<Array<'js>> {
            let body = match body.0 {
                // SAFETY: the array was made by fetch.js for this call and no JavaScript runs
                // while its bytes are copied, so the buffer cannot be detached or resized.
                Some(array) => match unsafe { array.as_bytes() } {
                    Some(bytes) => bytes.to_vec(),
                    None => return Err(Exception::throw_type(&ctx, "the body was detached")),
                },
                None => Vec::new(),
            };
            if body.len() > MAX_REQUEST_BODY_BYTES {
                let message = format!("request body exceeds {MAX_REQUEST_BODY_BYTES} bytes");
                return Err(Exception::throw_type(&ctx, &message));
            }
            let mut headers = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(name), Some(value)) = (it.next(), it.next()) {
                headers.push((name, value));
            }
            let redirect = match redirect.as_str() {
                "error" => RedirectMode::Error,
                "manual" => RedirectMode::Manual,
                _ => RedirectMode::Follow,
            };
            let request = FetchRequest {
                method,
                url,
                headers,
                body,
                redirect,
            };
            let result = match slot.borrow_mut().as_mut() {
                Some(host) => host(request),
                None => Err("fetch is not available here: no supervisor to ask".into()),
            };
            let response = result.map_err(|message| Exception::throw_type(&ctx, &message))?;
            let out = Array::new(ctx.clone())?;
            out.set(0, response.status)?;
            out.set(1, response.status_text)?;
            out.set(2, response.url)?;
            out.set(3, response.redirected)?;
            let flat = Array::new(ctx.clone())?;
            for (i, (name, value)) in response.headers.into_iter().enumerate() {
                flat.set(2 * i, name)?;
                flat.set(2 * i + 1, value)?;
            }
            out.set(4, flat)?;
            out.set(5, ArrayBuffer::new(ctx.clone(), response.body)?)?;
            Ok(out)
        },
    )?;
    let encode = Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>, s: String| -> rquickjs::Result<ArrayBuffer<'js>> {
            ArrayBuffer::new(ctx, s.into_bytes())
        },
    )?;
    let decode = Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>, bytes: TypedArray<'js, u8>| -> rquickjs::Result<String> {
            // SAFETY: the array belongs to a body that fetch.js just took; no JavaScript runs
            // while it is decoded.
            match unsafe { bytes.as_bytes() } {
                // Like the Encoding standard's UTF-8 decode: a leading BOM is dropped.
                Some(b) => {
                    let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
                    Ok(String::from_utf8_lossy(b).into_owned())
                }
                None => Err(Exception::throw_type(&ctx, "the body was detached")),
            }
        },
    )?;
    let setup: Function = SOURCE.run(ctx)?;
    setup.call::<_, Value>((host, encode, decode))?;
    Ok(())
}
