//! Turning a JavaScript value into JSON text, within a byte and depth budget.
//!
//! The rules follow `JSON.stringify` where it is well defined, and are extended where it is
//! lossy or throws, so that a result is always useful:
//!
//! | value | result |
//! |---|---|
//! | `undefined` at the top, function, symbol | `null` (inside objects the key is left out, inside arrays `null`, as `JSON.stringify` does) |
//! | `NaN`, `±Infinity` | `null`; `-0` becomes `0` |
//! | `BigInt` | its decimal digits as a string (`10n` → `"10"`) |
//! | object with a callable `toJSON` (`Date` included) | the serialised result of `toJSON(key)` |
//! | `Map` | an array of `[key, value]` pairs, so `new Map(result)` rebuilds it |
//! | `Set` | an array of its values |
//! | typed arrays, `ArrayBuffer` | an array of numbers (`BigInt64Array` elements as strings) |
//! | `Error` | `{name, message, stack}` plus its own enumerable properties |
//! | a reference back to an object being serialised | the string `"[Circular]"` |
//! | a promise | `{}` (a top-level promise is awaited before serialising) |
//!
//! Anything larger than the byte budget or nested deeper than the depth budget is an error
//! ([`SerializeError`]). Getters, proxies and `toJSON` are user code: they run under the same
//! deadline and memory limit as the rest of the execution, so a hostile one ends in `TIMEOUT`
//! or `MEMORY_LIMIT`, never in a hang.

use std::fmt::Write as _;

use rquickjs::{qjs, Coerced, Ctx, Function, Object, Persistent, Type, Value};

/// Limits for one serialisation.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Most bytes of output.
    pub max_bytes: u64,
    /// Deepest nesting of arrays and objects.
    pub max_depth: u32,
}

/// Why a value could not be serialised.
#[derive(Debug)]
pub enum SerializeError {
    /// User code (a getter, proxy trap or `toJSON`) threw; the exception is pending.
    Js(rquickjs::Error),
    /// The output exceeded the byte budget.
    TooLarge(u64),
    /// The value nested deeper than the depth budget.
    TooDeep(u32),
}

impl From<rquickjs::Error> for SerializeError {
    fn from(e: rquickjs::Error) -> Self {
        SerializeError::Js(e)
    }
}

/// Built-in functions captured before user code runs, so that user code cannot replace the
/// iteration the serialiser relies on.
#[derive(Default)]
pub struct Helpers {
    map_entries: Option<Persistent<Function<'static>>>,
    set_values: Option<Persistent<Function<'static>>>,
    /// `JSON.stringify`, for strings Rust cannot hold (lone UTF-16 surrogates).
    stringify: Option<Persistent<Function<'static>>>,
}

impl Helpers {
    /// Keeps the functions the prelude returned (an empty list in presets without Map/Set).
    /// `[mapEntries, setValues, stringify]`; the first two are `null` without Map/Set.
    pub fn from_prelude<'js>(ctx: &Ctx<'js>, list: Vec<Value<'js>>) -> Helpers {
        let mut it = list
            .into_iter()
            .map(|v| v.into_function().map(|f| Persistent::save(ctx, f)));
        Helpers {
            map_entries: it.next().flatten(),
            set_values: it.next().flatten(),
            stringify: it.next().flatten(),
        }
    }

    /// JSON text of a string value with lone surrogates, escaped as `JSON.stringify` does.
    fn escaped<'js>(&self, ctx: &Ctx<'js>, v: &Value<'js>) -> Option<String> {
        let out = Helpers::call(&self.stringify, ctx, v).ok()?;
        out.as_string()?.to_string().ok()
    }

    fn call<'js>(
        f: &Option<Persistent<Function<'static>>>,
        ctx: &Ctx<'js>,
        arg: &Value<'js>,
    ) -> rquickjs::Result<Value<'js>> {
        match f {
            Some(f) => f.clone().restore(ctx)?.call((arg.clone(),)),
            None => Ok(Value::new_undefined(ctx.clone())),
        }
    }
}

/// Serialises `value` as the result of an execution.
pub fn to_json<'js>(
    ctx: &Ctx<'js>,
    value: &Value<'js>,
    budget: Budget,
) -> Result<String, SerializeError> {
    let slot = ctx.userdata::<HelpersSlot>();
    let empty = Helpers::default();
    let helpers = slot.as_ref().map(|h| &h.0).unwrap_or(&empty);
    let mut out = String::new();
    let mut w = Writer {
        ctx,
        helpers,
        out: &mut out,
        start: 0,
        budget,
        stack: Vec::new(),
        inspect: false,
    };
    let v = w.apply_to_json(value.clone(), "")?;
    if absent(&v) {
        w.out.push_str("null");
    } else {
        w.value(&v, 0)?;
    }
    Ok(out)
}

/// Appends a console rendering of `value` to `out`: strings as they are, other values as JSON
/// with `undefined`, functions and symbols spelled out. Output past the budget is cut off, and
/// nesting past the depth budget is shown as `[Object]`; only a throwing getter is an error.
pub fn inspect<'js>(
    ctx: &Ctx<'js>,
    value: &Value<'js>,
    budget: Budget,
    out: &mut String,
) -> rquickjs::Result<()> {
    let helpers = ctx.userdata::<HelpersSlot>();
    let empty = Helpers::default();
    let helpers = helpers.as_ref().map(|h| &h.0).unwrap_or(&empty);
    if let Some(s) = value.as_string() {
        let s = match s.to_string() {
            Ok(s) => s,
            Err(_) => helpers.escaped(ctx, value).unwrap_or_default(),
        };
        push_cut(out, &s, budget.max_bytes);
        return Ok(());
    }
    let start = out.len();
    let mut w = Writer {
        ctx,
        helpers,
        out,
        start,
        budget,
        stack: Vec::new(),
        inspect: true,
    };
    match w.value(value, 0) {
        Ok(()) | Err(SerializeError::TooLarge(_)) | Err(SerializeError::TooDeep(_)) => {}
        Err(SerializeError::Js(e)) => return Err(e),
    }
    if (out.len() - start) as u64 > budget.max_bytes {
        let mut cut = start + budget.max_bytes as usize;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    Ok(())
}

/// Context userdata giving the console access to the captured helpers.
pub struct HelpersSlot(pub Helpers);

// SAFETY: `Helpers` holds only `Persistent` handles tied to the runtime that stores it, which
// is exactly the invariant `JsLifetime` describes; it contains no `'js` borrow.
unsafe impl<'js> rquickjs::JsLifetime<'js> for HelpersSlot {
    type Changed<'to> = HelpersSlot;
}

fn push_cut(out: &mut String, s: &str, max: u64) {
    let mut cut = (max as usize).min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    out.push_str(&s[..cut]);
}

/// Bytes `c` takes inside a JSON string as the service writes it (serde_json's escaping: `"`,
/// `\\` and `\b \f \n \r \t` take two, other control characters six).
pub fn json_char_len(c: char) -> u64 {
    match c {
        '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8() as u64,
    }
}

/// Bytes `s` takes inside a JSON string, quotes not counted.
pub fn json_len(s: &str) -> u64 {
    s.chars().map(json_char_len).sum()
}

/// Cuts `s` to its longest prefix that takes at most `max` bytes inside a JSON string and
/// returns whether anything was cut.
pub fn truncate_json(s: &mut String, max: u64) -> bool {
    let mut used = 0u64;
    for (i, c) in s.char_indices() {
        used += json_char_len(c);
        if used > max {
            s.truncate(i);
            return true;
        }
    }
    false
}

/// Caps `s` at `max` bytes inside a JSON string, ending a cut one with `marker` (the marker
/// included in the `max`). Returns whether it was cut.
pub fn cap_json(s: &mut String, max: u64, marker: &str) -> bool {
    if json_len(s) <= max {
        return false;
    }
    truncate_json(s, max.saturating_sub(json_len(marker)));
    if json_len(marker) <= max {
        s.push_str(marker);
    }
    true
}

/// Values that `JSON.stringify` leaves out of objects.
fn absent(v: &Value<'_>) -> bool {
    matches!(
        v.type_of(),
        Type::Undefined | Type::Uninitialized | Type::Symbol | Type::Function | Type::Constructor
    )
}

struct Writer<'a, 'js> {
    ctx: &'a Ctx<'js>,
    helpers: &'a Helpers,
    out: &'a mut String,
    start: usize,
    budget: Budget,
    /// Objects on the path from the root, for cycle detection.
    stack: Vec<usize>,
    inspect: bool,
}

impl<'js> Writer<'_, 'js> {
    fn check_size(&self) -> Result<(), SerializeError> {
        if (self.out.len() - self.start) as u64 > self.budget.max_bytes {
            return Err(SerializeError::TooLarge(self.budget.max_bytes));
        }
        Ok(())
    }

    /// Calls `v.toJSON(key)` when `v` has a callable `toJSON`. Object keys are passed as the
    /// JavaScript values they are, so that keys Rust cannot hold reach it intact.
    fn apply_to_json<K: rquickjs::IntoJs<'js>>(
        &mut self,
        v: Value<'js>,
        key: K,
    ) -> Result<Value<'js>, SerializeError> {
        if self.inspect {
            return Ok(v);
        }
        if let Some(obj) = v.as_object() {
            let to_json: Value = obj.get("toJSON")?;
            if let Some(f) = to_json.as_function() {
                return Ok(f.call((rquickjs::function::This(v.clone()), key))?);
            }
        }
        Ok(v)
    }

    fn value(&mut self, v: &Value<'js>, depth: u32) -> Result<(), SerializeError> {
        match v.type_of() {
            Type::Undefined | Type::Uninitialized => {
                self.out
                    .push_str(if self.inspect { "undefined" } else { "null" })
            }
            Type::Null => self.out.push_str("null"),
            Type::Bool => self.out.push_str(if v.as_bool() == Some(true) {
                "true"
            } else {
                "false"
            }),
            Type::Int => {
                let _ = write!(self.out, "{}", v.as_int().unwrap_or(0));
            }
            Type::Float => self.number(v.as_float().unwrap_or(f64::NAN)),
            Type::String => self.js_string(v),
            Type::BigInt => {
                let Coerced(s): Coerced<String> = v.get()?;
                self.string(&s);
            }
            Type::Symbol => {
                if self.inspect {
                    let desc: Value = v
                        .as_symbol()
                        .map(|s| s.description())
                        .transpose()?
                        .unwrap_or_else(|| Value::new_undefined(self.ctx.clone()));
                    // A description Rust cannot hold (a lone surrogate) is shown escaped.
                    let d = match desc.as_string().map(|s| s.to_string()) {
                        Some(Ok(d)) => d,
                        Some(Err(_)) => self.helpers.escaped(self.ctx, &desc).unwrap_or_default(),
                        None => String::new(),
                    };
                    let _ = write!(self.out, "Symbol({d})");
                } else {
                    self.out.push_str("null");
                }
            }
            Type::Function | Type::Constructor => {
                if self.inspect {
                    let name: Value = v
                        .as_object()
                        .map(|o| o.get("name"))
                        .transpose()?
                        .unwrap_or_else(|| Value::new_undefined(self.ctx.clone()));
                    let name = match name.as_string().map(|s| s.to_string()) {
                        Some(Ok(n)) => n,
                        Some(Err(_)) => self.helpers.escaped(self.ctx, &name).unwrap_or_default(),
                        None => String::new(),
                    };
                    let _ = write!(
                        self.out,
                        "[Function: {}]",
                        if name.is_empty() {
                            "(anonymous)"
                        } else {
                            &name
                        }
                    );
                } else {
                    self.out.push_str("null");
                }
            }
            Type::Promise if self.inspect => self.out.push_str("[Promise]"),
            _ => match v.as_object() {
                Some(obj) => self.object(obj, depth)?,
                None => self.out.push_str("null"),
            },
        }
        self.check_size()
    }

    /// Writes a JavaScript string value as a JSON string. One with lone surrogates is not
    /// UTF-8, so Rust cannot hold it: it takes `JSON.stringify`'s escaped form (`"\\ud800"`).
    fn js_string(&mut self, v: &Value<'js>) {
        match v.as_string().map(|s| s.to_string()) {
            Some(Ok(s)) => self.string(&s),
            _ => match self.helpers.escaped(self.ctx, v) {
                Some(json) => self.out.push_str(&json),
                None => self.out.push_str("null"),
            },
        }
    }

    fn number(&mut self, f: f64) {
        if !f.is_finite() {
            self.out.push_str(if self.inspect {
                if f.is_nan() {
                    "NaN"
                } else if f > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
            } else {
                "null"
            });
        } else if f == 0.0 {
            self.out.push('0');
        } else if f.fract() == 0.0 && f.abs() < 1e21 {
            let _ = write!(self.out, "{}", f as i128);
        } else if f.abs() >= 1e21 || f.abs() < 1e-6 {
            // JavaScript switches to exponent notation outside [1e-6, 1e21).
            let e = format!("{f:e}");
            match e.split_once('e') {
                Some((m, x)) if !x.starts_with('-') => {
                    let _ = write!(self.out, "{m}e+{x}");
                }
                _ => self.out.push_str(&e),
            }
        } else {
            let _ = write!(self.out, "{f}");
        }
    }

    fn string(&mut self, s: &str) {
        self.out.reserve(s.len() + 2);
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.out, "\\u{:04x}", c as u32);
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    fn object(&mut self, obj: &Object<'js>, depth: u32) -> Result<(), SerializeError> {
        // SAFETY: an object value always carries its pointer in the `ptr` field; it is only
        // used as an identity for cycle detection, never dereferenced.
        let id = unsafe { obj.as_raw().u.ptr } as usize;
        if self.stack.contains(&id) {
            self.string("[Circular]");
            return Ok(());
        }
        if depth >= self.budget.max_depth {
            if self.inspect {
                self.out.push_str("[Object]");
                return Ok(());
            }
            return Err(SerializeError::TooDeep(self.budget.max_depth));
        }
        self.stack.push(id);
        let r = self.object_inner(obj, depth + 1);
        self.stack.pop();
        r
    }

    fn object_inner(&mut self, obj: &Object<'js>, depth: u32) -> Result<(), SerializeError> {
        let raw = obj.as_raw();
        // SAFETY: these predicates only inspect the class id of a live value we hold a
        // reference to; they run no JavaScript and do not change reference counts.
        let (is_map, is_set, is_error, typed) = unsafe {
            (
                qjs::JS_IsMap(raw),
                qjs::JS_IsSet(raw),
                qjs::JS_IsError(raw),
                qjs::JS_GetTypedArrayType(raw),
            )
        };
        if obj.is_array() {
            let len: Value = obj.get("length")?;
            let len = len.as_number().unwrap_or(0.0).max(0.0) as u64;
            return self.array_like(depth, len, |i| obj.get(i as u32));
        }
        if is_map || is_set {
            let f = if is_map {
                &self.helpers.map_entries
            } else {
                &self.helpers.set_values
            };
            let list = Helpers::call(f, self.ctx, obj.as_value())?;
            return match list.as_object() {
                Some(list) => self.object_inner(list, depth),
                None => {
                    self.out.push_str("[]");
                    Ok(())
                }
            };
        }
        if typed >= 0 {
            return self.typed_array(obj, typed);
        }
        if let Some(buf) = rquickjs::ArrayBuffer::from_object(obj.clone()) {
            // SAFETY: copied out at once, before any JavaScript can run and detach the buffer.
            let bytes = unsafe { buf.as_bytes() }.unwrap_or(&[]).to_vec();
            return self.array_like(depth, bytes.len() as u64, |i| {
                Ok(Value::new_int(
                    self.ctx.clone(),
                    i32::from(bytes[i as usize]),
                ))
            });
        }
        self.out.push('{');
        let mut first = true;
        if is_error {
            for key in ["name", "message", "stack"] {
                let v: Value = obj.get(key)?;
                if v.is_string() {
                    if !first {
                        self.out.push(',');
                    }
                    first = false;
                    self.string(key);
                    self.out.push(':');
                    self.value(&v, depth)?;
                }
            }
        }
        // Keys are taken as JavaScript strings, never through a C string: an atom's C string
        // stops at the first NUL and may hold lone surrogates, which are not UTF-8.
        let keys: Vec<Value<'js>> = obj.keys::<Value>().collect::<rquickjs::Result<_>>()?;
        for key in keys {
            let name = key.as_string().and_then(|s| s.to_string().ok());
            if is_error && matches!(name.as_deref(), Some("name" | "message" | "stack")) {
                continue;
            }
            let v: Value = obj.get(key.clone())?;
            let v = self.apply_to_json(v, key.clone())?;
            if absent(&v) && !self.inspect {
                continue;
            }
            if !first {
                self.out.push(',');
            }
            first = false;
            match name {
                Some(name) => self.string(&name),
                None => self.js_string(&key),
            }
            self.out.push(':');
            self.value(&v, depth)?;
        }
        self.out.push('}');
        Ok(())
    }

    fn array_like(
        &mut self,
        depth: u32,
        len: u64,
        mut get: impl FnMut(u64) -> rquickjs::Result<Value<'js>>,
    ) -> Result<(), SerializeError> {
        self.out.push('[');
        for i in 0..len {
            if i > 0 {
                self.out.push(',');
            }
            let v = get(i)?;
            let v = self.apply_to_json(v, i.to_string())?;
            if absent(&v) && !self.inspect {
                self.out.push_str("null");
                self.check_size()?;
            } else {
                self.value(&v, depth)?;
            }
        }
        self.out.push(']');
        Ok(())
    }

    fn typed_array(&mut self, obj: &Object<'js>, kind: i32) -> Result<(), SerializeError> {
        let (mut offset, mut length, mut per): (qjs::size_t, qjs::size_t, qjs::size_t) = (0, 0, 0);
        // SAFETY: `obj` is a live typed array (JS_GetTypedArrayType returned a kind). The call
        // returns a new reference to its buffer, which `Value::from_raw` takes ownership of.
        let buffer = unsafe {
            let raw = qjs::JS_GetTypedArrayBuffer(
                self.ctx.as_raw().as_ptr(),
                obj.as_raw(),
                &mut offset,
                &mut length,
                &mut per,
            );
            Value::from_raw(self.ctx.clone(), raw)
        };
        let (offset, length, per) = (offset as usize, length as usize, per as usize);
        let bytes = buffer
            .as_object()
            .and_then(|o| rquickjs::ArrayBuffer::from_object(o.clone()))
            .and_then(|b| {
                // SAFETY: the bytes are copied out at once; no JavaScript runs (so nothing can
                // detach or resize the buffer) while the slice is borrowed.
                let all = unsafe { b.as_bytes() };
                all.and_then(|b| b.get(offset..offset + length))
                    .map(<[u8]>::to_vec)
            })
            .unwrap_or_default();
        self.out.push('[');
        for (i, chunk) in bytes.chunks_exact(per.max(1)).enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let arr = |n: usize| -> [u8; 8] {
                let mut a = [0u8; 8];
                a[..n].copy_from_slice(&chunk[..n]);
                a
            };
            match kind {
                0 | 2 => self.number(f64::from(chunk[0])),
                1 => self.number(f64::from(chunk[0] as i8)),
                3 => self.number(f64::from(i16::from_le_bytes([chunk[0], chunk[1]]))),
                4 => self.number(f64::from(u16::from_le_bytes([chunk[0], chunk[1]]))),
                5 => self.number(f64::from(i32::from_le_bytes([
                    chunk[0], chunk[1], chunk[2], chunk[3],
                ]))),
                6 => self.number(f64::from(u32::from_le_bytes([
                    chunk[0], chunk[1], chunk[2], chunk[3],
                ]))),
                7 => self.string(&i64::from_le_bytes(arr(8)).to_string()),
                8 => self.string(&u64::from_le_bytes(arr(8)).to_string()),
                9 => self.number(f16_to_f64(u16::from_le_bytes([chunk[0], chunk[1]]))),
                10 => self.number(f64::from(f32::from_le_bytes([
                    chunk[0], chunk[1], chunk[2], chunk[3],
                ]))),
                _ => self.number(f64::from_le_bytes(arr(8))),
            }
            if i % 1024 == 0 {
                self.check_size()?;
            }
        }
        self.out.push(']');
        Ok(())
    }
}

/// Decodes an IEEE 754 half-precision float.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}
