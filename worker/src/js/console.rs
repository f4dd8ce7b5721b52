//! The captured `console`: every call becomes a [`LogEntry`], within caps on count and bytes.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use isolate_shared::message::{LogEntry, LogLevel};
use rquickjs::function::Rest;
use rquickjs::{Ctx, Function, Object, Value};

use super::serialize::{self, Budget};

/// Where console output of one execution accumulates.
#[derive(Debug, Default)]
pub struct LogSink {
    /// Entries kept so far.
    pub entries: Vec<LogEntry>,
    /// Bytes of message text kept so far, counted JSON-escaped as the answer carries them.
    pub bytes: u64,
    /// Whether anything was dropped.
    pub truncated: bool,
    max_entries: u32,
    max_bytes: u64,
}

impl LogSink {
    /// An empty sink with the given caps.
    pub fn new(max_entries: u32, max_bytes: u64) -> Self {
        LogSink {
            max_entries,
            max_bytes,
            ..LogSink::default()
        }
    }

    fn remaining_bytes(&self) -> u64 {
        self.max_bytes.saturating_sub(self.bytes)
    }

    fn full(&self) -> bool {
        self.entries.len() as u64 >= u64::from(self.max_entries) || self.remaining_bytes() == 0
    }

    fn push(&mut self, level: LogLevel, mut message: String) {
        // Counted as the answer will carry it: JSON-escaped (a control character is six bytes).
        if serialize::truncate_json(&mut message, self.remaining_bytes()) {
            self.truncated = true;
        }
        self.bytes += serialize::json_len(&message);
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.entries.push(LogEntry {
            level,
            message,
            time_ms,
        });
    }
}

/// Installs `console` with `log`, `info`, `warn`, `error`, `debug` (and `trace` as `debug`)
/// writing into `sink`.
pub fn install<'js>(ctx: &Ctx<'js>, sink: &Rc<RefCell<LogSink>>) -> rquickjs::Result<()> {
    let console = Object::new(ctx.clone())?;
    for (name, level) in [
        ("log", LogLevel::Log),
        ("info", LogLevel::Info),
        ("warn", LogLevel::Warn),
        ("error", LogLevel::Error),
        ("debug", LogLevel::Debug),
        ("trace", LogLevel::Debug),
    ] {
        let sink = Rc::clone(sink);
        let f = Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> rquickjs::Result<()> {
                if sink.borrow().full() {
                    sink.borrow_mut().truncated = true;
                    return Ok(());
                }
                let room = sink.borrow().remaining_bytes();
                let message = format_args(&ctx, &args.0, room)?;
                sink.borrow_mut().push(level, message);
                Ok(())
            },
        )?
        .with_name(name)?;
        console.set(name, f)?;
    }
    ctx.globals().set("console", console)?;
    Ok(())
}

/// Formats console arguments the way people expect from a JavaScript console: strings as they
/// are, other values as compact JSON, joined by spaces. Stops once `room` bytes are produced.
fn format_args<'js>(ctx: &Ctx<'js>, args: &[Value<'js>], room: u64) -> rquickjs::Result<String> {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if out.len() as u64 >= room {
            break;
        }
        if i > 0 {
            out.push(' ');
        }
        let budget = Budget {
            max_bytes: room.saturating_sub(out.len() as u64) + 1,
            max_depth: 16,
        };
        serialize::inspect(ctx, arg, budget, &mut out)?;
    }
    Ok(out)
}
