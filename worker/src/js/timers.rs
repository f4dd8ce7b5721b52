//! `setTimeout`, `setInterval`, `clearTimeout` and `clearInterval` (presets `compute` and up).
//!
//! The four globals are native functions over a schedule kept in the context's userdata
//! ([`TimersSlot`]): each entry holds its due time, a sequence number (timers due at the same
//! time run in the order they were scheduled), the callback and its arguments. The settle loop
//! in [`super`] asks [`peek`] for the earliest due time when the job queue is empty, sleeps
//! until then (or until the deadline, whichever is first), and runs it with [`run_next`].
//!
//! Timers run only while the job's result is pending: when the result is ready, the context is
//! dropped with every timer still scheduled, so those callbacks never run. A timer due after
//! the deadline cannot run either, and a result still waiting for it is a `TIMEOUT`. At most
//! [`MAX_TIMERS`] timers can be live at once; one more throws a `RangeError`.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use rquickjs::function::{Opt, Rest};
use rquickjs::object::Property;
use rquickjs::{Coerced, Ctx, Exception, Function, Persistent, Value};

/// The most timers (timeouts and intervals) one job may have scheduled at once.
pub const MAX_TIMERS: usize = 1000;

/// The longest delay: larger values (and negative or non-numeric ones) count as 0, as in
/// browsers.
const MAX_DELAY_MS: f64 = 2_147_483_647.0;

/// One scheduled timer.
struct Timer {
    id: u32,
    due: Instant,
    sequence: u64,
    /// The delay to reschedule with, for an interval.
    every: Option<Duration>,
    callback: Persistent<Function<'static>>,
    args: Vec<Persistent<Value<'static>>>,
}

/// The schedule of one context's timers, kept in its userdata.
#[derive(Default)]
pub struct TimersSlot {
    timers: RefCell<Vec<Timer>>,
    last_id: Cell<u32>,
    sequence: Cell<u64>,
}

// SAFETY: `TimersSlot` holds `Persistent` handles tied to the runtime that stores it (which is
// the invariant `JsLifetime` describes) and plain Rust data; it contains no `'js` borrow.
unsafe impl<'js> rquickjs::JsLifetime<'js> for TimersSlot {
    type Changed<'to> = TimersSlot;
}

impl TimersSlot {
    fn push(&self, mut timer: Timer, delay: Duration) {
        let sequence = self.sequence.get() + 1;
        self.sequence.set(sequence);
        timer.due = Instant::now() + delay;
        timer.sequence = sequence;
        self.timers.borrow_mut().push(timer);
    }

    fn earliest(timers: &[Timer]) -> Option<usize> {
        (0..timers.len()).min_by_key(|&i| (timers[i].due, timers[i].sequence))
    }
}

fn delay_of(ms: f64) -> Duration {
    if ms.is_finite() && ms > 0.0 && ms <= MAX_DELAY_MS {
        Duration::from_secs_f64(ms / 1000.0)
    } else {
        Duration::ZERO
    }
}

fn add<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    callback: Value<'js>,
    delay: Opt<Coerced<f64>>,
    args: Rest<Value<'js>>,
    repeat: bool,
) -> rquickjs::Result<u32> {
    let Some(callback) = callback.into_function() else {
        return Err(Exception::throw_type(
            ctx,
            &format!("{name}: the callback must be a function"),
        ));
    };
    let slot = ctx
        .userdata::<TimersSlot>()
        .ok_or_else(|| Exception::throw_internal(ctx, "timers are not installed"))?;
    if slot.timers.borrow().len() >= MAX_TIMERS {
        return Err(Exception::throw_range(
            ctx,
            &format!("{name}: too many timers (the limit is {MAX_TIMERS} at once)"),
        ));
    }
    let delay = delay_of(delay.0.map_or(0.0, |d| d.0));
    let id = slot.last_id.get().wrapping_add(1);
    slot.last_id.set(id);
    let timer = Timer {
        id,
        due: Instant::now(),
        sequence: 0,
        every: repeat.then_some(delay),
        callback: Persistent::save(ctx, callback),
        args: args
            .0
            .into_iter()
            .map(|a| Persistent::save(ctx, a))
            .collect(),
    };
    slot.push(timer, delay);
    Ok(id)
}

fn clear(ctx: Ctx<'_>, id: Opt<Value<'_>>) {
    let Some(id) = id.0.and_then(|v| v.as_number()) else {
        return;
    };
    if let Some(slot) = ctx.userdata::<TimersSlot>() {
        // Dropping the entry releases its callback and arguments.
        let removed: Vec<Timer> = {
            let mut timers = slot.timers.borrow_mut();
            let (gone, kept): (Vec<Timer>, Vec<Timer>) =
                timers.drain(..).partition(|t| f64::from(t.id) == id);
            *timers = kept;
            gone
        };
        drop(removed);
    }
}

fn set_timeout<'js>(
    ctx: Ctx<'js>,
    callback: Value<'js>,
    delay: Opt<Coerced<f64>>,
    args: Rest<Value<'js>>,
) -> rquickjs::Result<u32> {
    add(&ctx, "setTimeout", callback, delay, args, false)
}

fn set_interval<'js>(
    ctx: Ctx<'js>,
    callback: Value<'js>,
    delay: Opt<Coerced<f64>>,
    args: Rest<Value<'js>>,
) -> rquickjs::Result<u32> {
    add(&ctx, "setInterval", callback, delay, args, true)
}

/// Installs the timer globals in `ctx` (writable, configurable, not enumerable, like the
/// other globals).
pub fn install<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<()> {
    ctx.store_userdata(TimersSlot::default())
        .map_err(|_| Exception::throw_internal(ctx, "timers installed twice"))?;
    let globals = ctx.globals();
    let functions: [(&str, Function<'js>); 4] = [
        ("setTimeout", Function::new(ctx.clone(), set_timeout)?),
        ("setInterval", Function::new(ctx.clone(), set_interval)?),
        ("clearTimeout", Function::new(ctx.clone(), clear)?),
        ("clearInterval", Function::new(ctx.clone(), clear)?),
    ];
    for (name, f) in functions {
        let f = f.with_name(name)?;
        globals.prop(name, Property::from(f).writable().configurable())?;
    }
    Ok(())
}

/// The due time of the earliest timer, without removing it; `None` when no timer is
/// scheduled (or the context has no timers).
pub fn peek(ctx: &Ctx<'_>) -> Option<Instant> {
    let slot = ctx.userdata::<TimersSlot>()?;
    let timers = slot.timers.borrow();
    TimersSlot::earliest(&timers).map(|i| timers[i].due)
}

/// Takes the earliest timer off the schedule and runs its callback; an interval goes back on
/// the schedule first, due one period later, so `clearInterval` inside its own callback works.
/// Does nothing when no timer is scheduled.
pub fn run_next(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let (callback, args) = {
        let Some(slot) = ctx.userdata::<TimersSlot>() else {
            return Ok(());
        };
        let timer = {
            let mut timers = slot.timers.borrow_mut();
            let Some(i) = TimersSlot::earliest(&timers) else {
                return Ok(());
            };
            timers.swap_remove(i)
        };
        let callback = timer.callback.clone().restore(ctx)?;
        let args = timer
            .args
            .iter()
            .map(|a| a.clone().restore(ctx))
            .collect::<rquickjs::Result<Vec<Value>>>()?;
        if let Some(every) = timer.every {
            slot.push(timer, every);
        }
        (callback, args)
    };
    let _: Value = callback.call((Rest(args),))?;
    Ok(())
}
