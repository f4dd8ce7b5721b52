//! A WASI preview 1 (`wasi_snapshot_preview1`) subset, written as plain linker functions.
//!
//! wasmtime-wasi 48's synchronous preview 1 bindings run every call through `in_tokio`, on a
//! lazily built multi-thread tokio runtime (checked in its `runtime.rs`): a single-threaded
//! worker whose seccomp filter traps `clone` cannot have that, and `wasi-common` is not
//! published for wasmtime 48. A command-line program needs little: standard streams, arguments, environment,
//! clocks, randomness and exit. That is what this module gives, in memory:
//!
//! * fd 0 reads the request's `stdin`; fds 1 and 2 append to capped buffers (writes past the cap
//!   are dropped but reported as written, so programs do not loop on them).
//! * There are **no preopened directories and no sockets**: `fd_prestat_get` answers `EBADF`
//!   for every descriptor (so a program finds no directory to open), `path_open` answers
//!   `EBADF` (no directory descriptor exists) and every other descriptor-taking call on a
//!   descriptor above 2 answers `EBADF`.
//! * `clock_time_get` gives the wall clock, and a monotonic clock and CPU-time clocks that start
//!   at zero with the run, all at 1 ms resolution (which `clock_res_get` reports), as fine as
//!   JavaScript's clocks and no finer; `random_get` uses `getrandom`;
//!   `poll_oneoff` handles clock subscriptions by sleeping (at most until the run's deadline)
//!   and reports standard streams as ready; `proc_exit` ends the run with its code.
//! * Every other preview 1 function a module imports (`path_*`, `sock_*`, `fd_readdir`, …)
//!   is defined as a stub answering `ENOSYS`, and listed in the answer's `stubbedImports`.

use std::time::{Duration, Instant};

use isolate_shared::message::WasiInput;
use nix::time::{clock_gettime, ClockId};
use rustix::rand::{getrandom, GetRandomFlags};
use wasmtime::{Caller, Extern, Linker, Memory, Module, Val, ValType};

use super::{Host, HostError};

/// The import module name of WASI preview 1.
pub const MODULE: &str = "wasi_snapshot_preview1";

const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;
const ESPIPE: i32 = 70;

/// The functions this module implements (everything else is an `ENOSYS` stub).
pub const IMPLEMENTED: [&str; 21] = [
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_write",
    "fd_read",
    "fd_close",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_filestat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_seek",
    "path_open",
    "random_get",
    "proc_exit",
    "sched_yield",
    "poll_oneoff",
    "fd_sync",
];

/// What a WASI program sees of the world, and what it wrote.
pub struct WasiCtx {
    stdin: Vec<u8>,
    stdin_pos: usize,
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    /// Captured standard output.
    pub stdout: Vec<u8>,
    /// Captured standard error.
    pub stderr: Vec<u8>,
    /// Whether anything was dropped because of the cap.
    pub truncated: bool,
    cap: usize,
    /// When the run started: the monotonic clock counts from here.
    started: Instant,
    /// CPU time of the process and of the thread when the run started.
    cpu_started: (u64, u64),
}

impl WasiCtx {
    /// A context for one run; each of stdout and stderr keeps at most `cap` bytes.
    pub fn new(input: &WasiInput, cap: usize) -> Self {
        WasiCtx {
            stdin: input.stdin.clone(),
            args: input.args.iter().map(|a| nul_terminated(a)).collect(),
            env: input
                .env
                .iter()
                .map(|(k, v)| nul_terminated(&format!("{k}={v}")))
                .collect(),
            cpu_started: (
                clock_ns(ClockId::CLOCK_PROCESS_CPUTIME_ID),
                clock_ns(ClockId::CLOCK_THREAD_CPUTIME_ID),
            ),
            ..Self::unused(cap)
        }
    }

    /// A context for a module that imports nothing from WASI: nothing can read or write it,
    /// so it copies no input and reads no clock (the CPU clocks are two system calls a run).
    pub fn unused(cap: usize) -> Self {
        WasiCtx {
            stdin: Vec::new(),
            stdin_pos: 0,
            args: Vec::new(),
            env: Vec::new(),
            stdout: Vec::new(),
            stderr: Vec::new(),
            truncated: false,
            cap,
            started: Instant::now(),
            cpu_started: (0, 0),
        }
    }

    /// The time WASI clock `id` shows now, in nanoseconds at [`CLOCK_RESOLUTION_NS`]: the
    /// realtime clock is the wall clock; the monotonic clock and the two CPU-time clocks count
    /// from the start of the run, so they tell nothing of the host's uptime or of earlier
    /// runs. `None` for an unknown clock.
    pub fn now_ns(&self, id: i32) -> Option<u64> {
        let ns = match id {
            0 => clock_ns(ClockId::CLOCK_REALTIME),
            1 => u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            2 => clock_ns(ClockId::CLOCK_PROCESS_CPUTIME_ID).saturating_sub(self.cpu_started.0),
            3 => clock_ns(ClockId::CLOCK_THREAD_CPUTIME_ID).saturating_sub(self.cpu_started.1),
            _ => return None,
        };
        Some(ns - ns % CLOCK_RESOLUTION_NS)
    }
}

/// The resolution of every WASI clock: 1 ms, as JavaScript's `Date.now()` and
/// `performance.now()` give, so that timing side channels are no finer than in JavaScript.
pub const CLOCK_RESOLUTION_NS: u64 = 1_000_000;

impl WasiCtx {
    /// The cap on each of stdout and stderr, in bytes as the answer carries them.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

/// Cuts captured output to its longest prefix whose text, as the answer carries it (invalid
/// UTF-8 replaced by U+FFFD, then JSON-escaped), takes at most `cap` bytes; returns whether
/// anything was cut. Writes keep at most `cap` raw bytes, and the encoded text is never
/// shorter than the raw bytes, so this only ever shortens.
pub fn truncate_encoded(bytes: &mut Vec<u8>, cap: u64) -> bool {
    let mut used = 0u64;
    let mut at = 0usize;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            used += crate::js::serialize::json_char_len(c);
            if used > cap {
                bytes.truncate(at);
                return true;
            }
            at += c.len_utf8();
        }
        if !chunk.invalid().is_empty() {
            used += '\u{fffd}'.len_utf8() as u64;
            if used > cap {
                bytes.truncate(at);
                return true;
            }
            at += chunk.invalid().len();
        }
    }
    false
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn memory(caller: &mut Caller<'_, Host>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

fn slice(mem: &[u8], ptr: i32, len: usize) -> Option<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(len)?;
    (end <= mem.len()).then_some(start..end)
}

fn put(mem: &mut [u8], ptr: i32, bytes: &[u8]) -> Result<(), i32> {
    let r = slice(mem, ptr, bytes.len()).ok_or(EFAULT)?;
    mem[r].copy_from_slice(bytes);
    Ok(())
}

fn get_u32(mem: &[u8], ptr: usize) -> Result<u32, i32> {
    let b = mem
        .get(ptr..ptr.checked_add(4).ok_or(EFAULT)?)
        .ok_or(EFAULT)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads the `(ptr, len)` pairs of an iovec array.
fn iovecs(mem: &[u8], iovs: i32, count: i32) -> Result<Vec<(usize, usize)>, i32> {
    let base = iovs as u32 as usize;
    (0..count as u32 as usize)
        .map(|i| {
            let at = base.checked_add(i * 8).ok_or(EFAULT)?;
            Ok((get_u32(mem, at)? as usize, get_u32(mem, at + 4)? as usize))
        })
        .collect()
}

fn errno(r: Result<(), i32>) -> i32 {
    match r {
        Ok(()) => SUCCESS,
        Err(e) => e,
    }
}

/// Writes a list of NUL-terminated strings (`args` or `env`) into guest memory.
fn put_strings(mem: &mut [u8], list: &[Vec<u8>], ptrs: i32, buf: i32) -> Result<(), i32> {
    let mut at = buf as u32;
    for (i, s) in list.iter().enumerate() {
        put(mem, ptrs.wrapping_add(i as i32 * 4), &at.to_le_bytes())?;
        put(mem, at as i32, s)?;
        at = at.checked_add(s.len() as u32).ok_or(EFAULT)?;
    }
    Ok(())
}

fn sizes(list: &[Vec<u8>]) -> (u32, u32) {
    (list.len() as u32, list.iter().map(|s| s.len() as u32).sum())
}

/// Clock `id` in nanoseconds (0 if it cannot be read).
fn clock_ns(id: ClockId) -> u64 {
    clock_gettime(id).map_or(0, |ts| {
        (ts.tv_sec() as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec() as u64)
    })
}

/// Defines a `*_sizes_get`/`*_get` pair over one of the context's string lists (`args` or
/// `environ`): the count and total size, then the pointers and the NUL-terminated strings.
fn add_string_list(
    linker: &mut Linker<Host>,
    sizes_name: &str,
    get_name: &str,
    list: fn(&WasiCtx) -> &[Vec<u8>],
) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        sizes_name,
        move |mut c: Caller<'_, Host>, count: i32, size: i32| -> i32 {
            let Some(m) = memory(&mut c) else {
                return EFAULT;
            };
            let (mem, host) = m.data_and_store_mut(&mut c);
            let (n, bytes) = sizes(list(&host.wasi));
            errno(
                put(mem, count, &n.to_le_bytes())
                    .and_then(|()| put(mem, size, &bytes.to_le_bytes())),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        get_name,
        move |mut c: Caller<'_, Host>, ptrs: i32, buf: i32| -> i32 {
            let Some(m) = memory(&mut c) else {
                return EFAULT;
            };
            let (mem, host) = m.data_and_store_mut(&mut c);
            errno(put_strings(mem, list(&host.wasi), ptrs, buf))
        },
    )?;
    Ok(())
}

/// Defines the implemented preview 1 functions in `linker`.
pub fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    add_string_list(linker, "args_sizes_get", "args_get", |w| &w.args)?;
    add_string_list(linker, "environ_sizes_get", "environ_get", |w| &w.env)?;
    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut c: Caller<'_, Host>, id: i32, out: i32| -> i32 {
            if !(0..=3).contains(&id) {
                return EINVAL;
            }
            let Some(m) = memory(&mut c) else {
                return EFAULT;
            };
            errno(put(
                m.data_mut(&mut c),
                out,
                &CLOCK_RESOLUTION_NS.to_le_bytes(),
            ))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: Caller<'_, Host>, id: i32, _precision: i64, out: i32| -> i32 {
            let Some(now) = c.data().wasi.now_ns(id) else {
                return EINVAL;
            };
            let Some(m) = memory(&mut c) else {
                return EFAULT;
            };
            errno(put(m.data_mut(&mut c), out, &now.to_le_bytes()))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut c: Caller<'_, Host>, fd: i32, iovs: i32, count: i32, written: i32| -> i32 {
            if fd != 1 && fd != 2 {
                return EBADF;
            }
            let Some(m) = memory(&mut c) else {
                return EFAULT;
            };
            let (mem, host) = m.data_and_store_mut(&mut c);
            let list = match iovecs(mem, iovs, count) {
                Ok(l) => l,
                Err(e) => return e,
            };
            // The count reported back is a u32: a sum that does not fit is refused before
            // anything is written, rather than wrapped.
            if list
                .iter()
                .try_fold(0u32, |t, &(_, len)| t.checked_add(u32::try_from(len).ok()?))
                .is_none()
            {
                return EINVAL;
            }
            let ctx = &mut host.wasi;
            let mut total = 0u32;
            for (ptr, len) in list {
                let Some(r) = slice(mem, ptr as i32, len) else {
                    return EFAULT;
                };
                let cap = ctx.cap;
                let sink = if fd == 1 {
                    &mut ctx.stdout
                } else {
                    &mut ctx.stderr
                };
                let room = cap.saturating_sub(sink.len());
                sink.extend_from_slice(&mem[r.start..r.start + room.min(len)]);
                if room < len {
                    ctx.truncated = true;
                }
                total = total.wrapping_add(len as u32);
            }
            errno(put(mem, written, &total.to_le_bytes()))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |mut c: Caller<'_, Host>, fd: i32, iovs: i32, count: i32, read: i32| -> i32 {
            if fd != 0 {
                return EBADF;
            }
            let Some(m) = memory(&mut c) else {
                return EFAULT;
            };
            let (mem, host) = m.data_and_store_mut(&mut c);
            let list = match iovecs(mem, iovs, count) {
                Ok(l) => l,
                Err(e) => return e,
            };
            let ctx = &mut host.wasi;
            let mut total = 0u32;
            for (ptr, len) in list {
                let Some(r) = slice(mem, ptr as i32, len) else {
                    return EFAULT;
                };
                let left = &ctx.stdin[ctx.stdin_pos..];
                let n = left.len().min(len);
                mem[r.start..r.start + n].copy_from_slice(&left[..n]);
                ctx.stdin_pos += n;
                total += n as u32;
                if n < len {
                    break;
                }
            }
            errno(put(mem, read, &total.to_le_bytes()))
        },
    )?;
    linker.func_wrap(MODULE, "fd_close", |fd: i32| -> i32 {
        if (0..=2).contains(&fd) {
            SUCCESS
        } else {
            EBADF
        }
    })?;
    linker.func_wrap(MODULE, "fd_sync", |fd: i32| -> i32 {
        if (0..=2).contains(&fd) {
            SUCCESS
        } else {
            EBADF
        }
    })?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |mut c: Caller<'_, Host>, fd: i32, out: i32| -> i32 {
            if !(0..=2).contains(&fd) {
                return EBADF;
            }
            let Some(m) = memory(&mut c) else {
                return EFAULT;
            };
            // fdstat: filetype u8 (2 = character device), flags u16 at 2 (APPEND for output),
            // rights_base u64 at 8 (read for 0, write for 1 and 2), rights_inheriting at 16.
            let mut stat = [0u8; 24];
            stat[0] = 2;
            let rights: u64 = if fd == 0 { 1 << 1 } else { 1 << 6 };
            if fd != 0 {
                stat[2] = 1;
            }
            stat[8..16].copy_from_slice(&rights.to_le_bytes());
            errno(put(m.data_mut(&mut c), out, &stat))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_set_flags",
        |fd: i32, _flags: i32| -> i32 {
            if (0..=2).contains(&fd) {
                SUCCESS
            } else {
                EBADF
            }
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_filestat_get",
        |mut c: Caller<'_, Host>, fd: i32, out: i32| -> i32 {
            if !(0..=2).contains(&fd) {
                return EBADF;
            }
            let Some(m) = memory(&mut c) else {
                return EFAULT;
            };
            // filestat: dev, ino, filetype u8 at 16 (character device), nlink, size, times.
            let mut stat = [0u8; 64];
            stat[16] = 2;
            errno(put(m.data_mut(&mut c), out, &stat))
        },
    )?;
    linker.func_wrap(MODULE, "fd_prestat_get", |_fd: i32, _out: i32| -> i32 {
        EBADF
    })?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |_fd: i32, _path: i32, _len: i32| -> i32 { EBADF },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |fd: i32, _offset: i64, _whence: i32, _out: i32| -> i32 {
            if (0..=2).contains(&fd) {
                ESPIPE
            } else {
                EBADF
            }
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_open",
        |_dirfd: i32,
         _dirflags: i32,
         _path: i32,
         _path_len: i32,
         _oflags: i32,
         _rights: i64,
         _inheriting: i64,
         _fdflags: i32,
         _opened: i32|
         -> i32 { EBADF },
    )?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut c: Caller<'_, Host>, buf: i32, len: i32| -> i32 {
            let Some(m) = memory(&mut c) else {
                return EFAULT;
            };
            let mem = m.data_mut(&mut c);
            let Some(r) = slice(mem, buf, len as u32 as usize) else {
                return EFAULT;
            };
            let mut filled = r.start;
            while filled < r.end {
                // getrandom(2) through rustix, as nix has no wrapper for it.
                match getrandom(&mut mem[filled..r.end], GetRandomFlags::empty()) {
                    Ok(n) if n > 0 => filled += n,
                    _ => return 29, // EIO
                }
            }
            SUCCESS
        },
    )?;
    linker.func_wrap(MODULE, "proc_exit", |code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(HostError::Exit(code)))
    })?;
    linker.func_wrap(MODULE, "sched_yield", || -> i32 { SUCCESS })?;
    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        |mut c: Caller<'_, Host>,
         subs: i32,
         events: i32,
         count: i32,
         out: i32|
         -> wasmtime::Result<i32> { poll_oneoff(&mut c, subs, events, count, out) },
    )?;
    Ok(())
}

/// Clock subscriptions sleep until the earliest of their timeouts (never past the run's
/// deadline: that is a timeout); reads of stdin and writes to stdout/stderr are always ready.
fn poll_oneoff(
    c: &mut Caller<'_, Host>,
    subs: i32,
    events: i32,
    count: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    let Some(m) = memory(c) else {
        return Ok(EFAULT);
    };
    let count = count as u32 as usize;
    if count == 0 {
        return Ok(EINVAL);
    }
    let deadline = c.data().deadline;
    let mem = m.data(&*c);
    // subscription (48 bytes): userdata u64, tag u8 at 8; clock: id u32 at 16, timeout u64 at
    // 24, precision u64 at 32, flags u16 at 40 (1 = absolute); fd_read/fd_write: fd u32 at 16.
    let mut parsed = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        let at = (subs as u32 as usize).saturating_add(i * 48);
        let Some(s) = mem.get(at..at + 48) else {
            return Ok(EFAULT);
        };
        let userdata = u64::from_le_bytes(s[0..8].try_into().unwrap_or_default());
        let tag = s[8];
        let id = u32::from_le_bytes(s[16..20].try_into().unwrap_or_default());
        let timeout = u64::from_le_bytes(s[24..32].try_into().unwrap_or_default());
        let absolute = s[40] & 1 == 1;
        parsed.push((userdata, tag, id, timeout, absolute));
    }
    let mut sleep: Option<Duration> = None;
    let mut ready = Vec::new();
    for &(userdata, tag, id, timeout, absolute) in &parsed {
        match tag {
            0 => {
                let wait = if absolute {
                    let now = c.data().wasi.now_ns(id as i32).unwrap_or(0);
                    timeout.saturating_sub(now)
                } else {
                    timeout
                };
                let wait = Duration::from_nanos(wait);
                sleep = Some(sleep.map_or(wait, |s| s.min(wait)));
            }
            1 | 2 => {
                let ok = (tag == 1 && id == 0) || (tag == 2 && (id == 1 || id == 2));
                ready.push((userdata, if ok { SUCCESS } else { EBADF }, tag));
            }
            _ => ready.push((userdata, EINVAL, tag)),
        }
    }
    if ready.is_empty() {
        if let Some(wait) = sleep {
            let now = Instant::now();
            if now + wait > deadline {
                std::thread::sleep(deadline.saturating_duration_since(now));
                return Err(wasmtime::Error::new(HostError::Timeout));
            }
            std::thread::sleep(wait);
        }
        for &(userdata, tag, ..) in &parsed {
            if tag == 0 {
                ready.push((userdata, SUCCESS, 0));
            }
        }
    }
    let mem = m.data_mut(&mut *c);
    for (i, (userdata, err, tag)) in ready.iter().enumerate() {
        // event (32 bytes): userdata u64, error u16 at 8, type u8 at 10, fd_readwrite at 16.
        let mut ev = [0u8; 32];
        ev[0..8].copy_from_slice(&userdata.to_le_bytes());
        ev[8..10].copy_from_slice(&(*err as u16).to_le_bytes());
        ev[10] = *tag;
        if put(mem, events.wrapping_add(i as i32 * 32), &ev).is_err() {
            return Ok(EFAULT);
        }
    }
    Ok(errno(put(mem, out, &(ready.len() as u32).to_le_bytes())))
}

/// Defines every preview 1 function `module` imports that this module does not implement as a
/// stub answering `ENOSYS`. Returns their names (`wasi_snapshot_preview1.name`).
pub fn stub_unsupported(
    linker: &mut Linker<Host>,
    module: &Module,
) -> wasmtime::Result<Vec<String>> {
    let mut stubbed = Vec::new();
    for import in module.imports() {
        if import.module() != MODULE || IMPLEMENTED.contains(&import.name()) {
            continue;
        }
        if let wasmtime::ExternType::Func(ty) = import.ty() {
            let results: Vec<ValType> = ty.results().collect();
            linker.allow_shadowing(true);
            linker.func_new(MODULE, import.name(), ty.clone(), move |_, _, out| {
                for (slot, t) in out.iter_mut().zip(&results) {
                    *slot = match t {
                        ValType::I32 => Val::I32(ENOSYS),
                        other => Val::default_for_ty(other).unwrap_or(Val::I32(0)),
                    };
                }
                Ok(())
            })?;
            stubbed.push(format!("{MODULE}.{}", import.name()));
        }
    }
    Ok(stubbed)
}
