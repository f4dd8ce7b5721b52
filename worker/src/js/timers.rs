//! `setTimeout`, `setInterval`, `clearTimeout` and `clearInterval` (presets `compute` and up).
//!
//! The callbacks live in JavaScript (a `Map` inside [`SOURCE`]'s closure); Rust keeps only the
//! schedule, a list of `(due, sequence, id)`, shared with the native `schedule` and `cancel`
//! functions the script receives. The settle loop in [`super`] asks [`next`] for the earliest
//! timer when the job queue is empty, sleeps until it is due (or until the deadline, whichever
//! is first) and calls the script's `fire(id)`.
//!
//! Timers run only while the job's result is pending: when the result is ready, the context is
//! dropped with every timer still scheduled, so those callbacks never run. A timer due after
//! the deadline cannot run either, and a result still waiting for it is a `TIMEOUT`. At most
//! [`MAX_TIMERS`] timers can be live at once; one more throws a `RangeError`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rquickjs::function::Func;
use rquickjs::{Ctx, Exception, Function, Persistent, Value};

use super::prelude::Script;

/// The most timers (timeouts and intervals) one job may have scheduled at once.
pub const MAX_TIMERS: usize = 1000;

/// The longest delay: larger values (and negative or non-numeric ones) count as 0, as in
/// browsers.
const MAX_DELAY_MS: f64 = 2_147_483_647.0;

/// The timers' JavaScript half, compiled once per process.
pub static SCRIPT: Script = Script::new(c"timers.js", SOURCE);

/// Defines the four globals over a private callback table; returns `fire(id)`.
const SOURCE: &str = r#"(function (schedule, cancel, max) {
  'use strict';
  const callbacks = new Map(), g = globalThis;
  let last = 0;
  const add = (name, callback, delay, args, repeat) => {
    if (typeof callback !== 'function') {
      throw new TypeError(`${name}: the callback must be a function`);
    }
    if (callbacks.size >= max) {
      throw new RangeError(`${name}: too many timers (the limit is ${max} at once)`);
    }
    const id = ++last;
    delay = +delay;
    callbacks.set(id, { callback, args, repeat, delay });
    schedule(id, delay);
    return id;
  };
  const clear = (id) => {
    if (typeof id === 'number' && callbacks.delete(id)) cancel(id);
  };
  const define = (name, value) => Object.defineProperty(g, name,
    { value, writable: true, enumerable: false, configurable: true });
  define('setTimeout', function setTimeout(callback, delay, ...args) {
    return add('setTimeout', callback, delay, args, false);
  });
  define('setInterval', function setInterval(callback, delay, ...args) {
    return add('setInterval', callback, delay, args, true);
  });
  define('clearTimeout', function clearTimeout(id) { clear(id); });
  define('clearInterval', function clearInterval(id) { clear(id); });
  return (id) => {
    const t = callbacks.get(id);
    if (t === undefined) return;
    if (t.repeat) schedule(id, t.delay); else callbacks.delete(id);
    const { callback, args } = t;
    callback(...args);
  };
})"#;

/// The schedule of one context's timers.
#[derive(Debug, Default)]
pub struct Queue {
    entries: Vec<Entry>,
    sequence: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    due: Instant,
    sequence: u64,
    id: u32,
}

impl Queue {
    fn schedule(&mut self, id: u32, delay_ms: f64) {
        let delay = if delay_ms.is_finite() && delay_ms > 0.0 && delay_ms <= MAX_DELAY_MS {
            Duration::from_secs_f64(delay_ms / 1000.0)
        } else {
            Duration::ZERO
        };
        self.sequence += 1;
        self.entries.push(Entry {
            due: Instant::now() + delay,
            sequence: self.sequence,
            id,
        });
    }

    fn cancel(&mut self, id: u32) {
        self.entries.retain(|e| e.id != id);
    }

    /// The earliest timer: by due time, then in the order they were scheduled.
    fn earliest(&self) -> Option<usize> {
        (0..self.entries.len()).min_by_key(|&i| (self.entries[i].due, self.entries[i].sequence))
    }
}

/// What the settle loop needs: the shared schedule and the script's `fire`.
pub struct TimersSlot {
    queue: Rc<RefCell<Queue>>,
    fire: Persistent<Function<'static>>,
}

// SAFETY: `TimersSlot` holds a `Persistent` handle tied to the runtime that stores it (which is
// the invariant `JsLifetime` describes) and plain Rust data; it contains no `'js` borrow.
unsafe impl<'js> rquickjs::JsLifetime<'js> for TimersSlot {
    type Changed<'to> = TimersSlot;
}

/// Installs the timer globals in `ctx`.
pub fn install(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let queue = Rc::new(RefCell::new(Queue::default()));
    let (q1, q2) = (Rc::clone(&queue), Rc::clone(&queue));
    let schedule = Func::from(move |id: u32, delay: f64| q1.borrow_mut().schedule(id, delay));
    let cancel = Func::from(move |id: u32| q2.borrow_mut().cancel(id));
    let factory: Function = SCRIPT.run(ctx)?;
    let fire: Function = factory.call((schedule, cancel, MAX_TIMERS as u32))?;
    let fire = Persistent::save(ctx, fire);
    ctx.store_userdata(TimersSlot { queue, fire })
        .map_err(|_| Exception::throw_internal(ctx, "timers installed twice"))?;
    Ok(())
}

/// The next timer to run, removed from the schedule, as `(due, id)`; `None` when no timer is
/// scheduled (or the context has no timers).
pub fn next(ctx: &Ctx<'_>) -> Option<(Instant, u32)> {
    let slot = ctx.userdata::<TimersSlot>()?;
    let mut queue = slot.queue.borrow_mut();
    let i = queue.earliest()?;
    let e = queue.entries.swap_remove(i);
    Some((e.due, e.id))
}

/// The due time of the earliest timer, without removing it.
pub fn peek(ctx: &Ctx<'_>) -> Option<Instant> {
    let slot = ctx.userdata::<TimersSlot>()?;
    let queue = slot.queue.borrow();
    queue.earliest().map(|i| queue.entries[i].due)
}

/// Runs timer `id`'s callback (an interval is scheduled again first).
pub fn fire<'js>(ctx: &Ctx<'js>, id: u32) -> rquickjs::Result<()> {
    let fire = match ctx.userdata::<TimersSlot>() {
        Some(slot) => slot.fire.clone().restore(ctx)?,
        None => return Ok(()),
    };
    let _: Value = fire.call((id,))?;
    Ok(())
}
