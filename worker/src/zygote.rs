//! The zygote: a single-threaded fork server.
//!
//! The supervisor execs its own binary with the hidden `__zygote` argument followed by its own
//! pid, and the zygote's end of a `SOCK_SEQPACKET` socket at descriptor [`CONTROL_FD`]. The zygote warms the engine once
//! (code pages, allocator arenas and the time-zone database are touched before any fork, so
//! every worker inherits them copy-on-write), greets with [`ZygoteReply::Hello`], takes its
//! sandbox configuration ([`ZygoteRequest::Configure`]: it enters the namespaces and compiles
//! the seccomp policy, see [`crate::lockdown`]), then for each [`ZygoteRequest::Spawn`] forks a
//! worker, which locks itself down before greeting, and hands the supervisor the worker's
//! socket and a pidfd for it.
//!
//! **Invariants:** the zygote never starts a thread (forking a threaded process is unsafe) and
//! never runs user code. It ignores `SIGCHLD`, so the kernel reaps workers as they exit and no
//! zombie is left behind; the supervisor learns of a worker's exit through its pidfd. It dies
//! with the supervisor (`PR_SET_PDEATHSIG` and end-of-file on the control socket), and its
//! workers die with it the same way.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};

use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::unistd::{fork, getpid, getppid, ForkResult, Pid};

use isolate_shared::frame::{decode_frame, encode};
use isolate_shared::message::{CodeForm, ExecuteJob, Hello, JsLimits, Language, Preset};
use isolate_shared::zygote::{ZygoteReply, ZygoteRequest};

use crate::lockdown::Lockdown;
use crate::{js, region, serve, sys};

pub use isolate_shared::zygote::CONTROL_FD;

/// Exit code when the control socket fails or carries garbage.
pub const EXIT_PROTOCOL: i32 = 2;
/// Exit code of a worker whose setup failed before it could serve.
pub const EXIT_SETUP: i32 = 4;
/// Exit code of a worker that panicked outside a job.
pub const EXIT_PANIC: i32 = 5;

/// Entry point of the `__zygote` subcommand, given the argument after it (the supervisor's
/// pid). Returns the process exit code.
pub fn main(supervisor_pid: Option<&str>) -> i32 {
    // SAFETY: the supervisor placed the control socket at CONTROL_FD before exec, and nothing
    // else in this fresh process owns that descriptor.
    let control = unsafe { OwnedFd::from_raw_fd(CONTROL_FD) };
    let result = parse_supervisor_pid(supervisor_pid).and_then(|pid| run(&control, pid));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("isolate-service zygote: {e}");
            EXIT_PROTOCOL
        }
    }
}

/// The supervisor's pid, as the supervisor passed it after `__zygote`.
fn parse_supervisor_pid(arg: Option<&str>) -> io::Result<Pid> {
    arg.and_then(|a| a.parse::<i32>().ok())
        .filter(|&pid| pid > 0)
        .map(Pid::from_raw)
        .ok_or_else(|| io::Error::other("the supervisor's pid must follow __zygote"))
}

/// Whether the process that started the zygote has exited, judged by the zygote's current
/// parent. Once the supervisor is gone the zygote is re-parented (to PID 1 or to a
/// subreaper), so the parent no longer being `supervisor` means it left. Comparing with the
/// supervisor's pid, not with 1, keeps this right when the supervisor itself is PID 1, as in a
/// container started without an init (`podman run` without `--init`).
fn supervisor_gone(parent: Pid, supervisor: Pid) -> bool {
    parent != supervisor
}

fn run(control: &OwnedFd, supervisor: Pid) -> io::Result<()> {
    // The supervisor set PDEATHSIG and checked its pid between fork and exec; setting it again
    // covers an exec that clears it (a binary with file capabilities), and the check after it
    // covers a supervisor that exited before the signal was armed.
    set_pdeathsig(Signal::SIGKILL)?;
    if supervisor_gone(getppid(), supervisor) {
        return Err(io::Error::other("the supervisor is already gone"));
    }
    sys::close_from(CONTROL_FD + 1)?;
    sys::set_signal(Signal::SIGCHLD, true)?;
    sys::set_signal(Signal::SIGPIPE, true)?;
    crate::js::warm();
    warm_up();
    // The WebAssembly engine, its signal handlers and a warmed compiler, before any fork. A
    // failure leaves wasm unavailable (its jobs answer so) without stopping JavaScript.
    if let Err(e) = crate::wasm::init() {
        eprintln!("isolate-service zygote: {e}");
    }
    // A runtime per preset that every worker inherits ready-made, made on `Configure` (which
    // says whether they live in region slots); none until then.
    let mut contexts = std::mem::ManuallyDrop::new(js::Contexts::default());
    let mut lockdown: Option<Lockdown> = None;
    send(control, &ZygoteReply::Hello(Hello::current()), &[])?;
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, _) = sys::recv_with_fds(control, &mut buf, 0)?;
        if n == 0 {
            return Ok(()); // The supervisor closed the socket: time to go.
        }
        let request: ZygoteRequest = decode_frame(&buf[..n]).map_err(io::Error::other)?;
        match request {
            ZygoteRequest::Configure(_) if lockdown.is_some() => {
                let message = "the sandbox is already configured".to_string();
                send(control, &ZygoteReply::ConfigureFailed { message }, &[])?;
            }
            ZygoteRequest::Configure(config) => {
                // Before the lockdown's preparation, while every system call is allowed (the
                // snapshots are memory files). The zygote never uses them itself. In region
                // slots each serves every job of its preset in a worker, restored after each;
                // otherwise each serves one job. `Math.random` is reseeded after the fork
                // (see `js::reseed`).
                let presets = [
                    Preset::Compute,
                    Preset::Agent,
                    Preset::Data,
                    Preset::Minimal,
                ];
                *contexts = if config.runtime_snapshots {
                    js::Contexts::for_zygote(&presets)
                } else {
                    js::Contexts::without_slots(&presets)
                };
                configure(control, config, &mut lockdown, contexts.snapshot_bytes())?;
            }
            ZygoteRequest::Spawn => match spawn(&mut contexts, lockdown.as_ref()) {
                Ok((pid, sock, pidfd)) => send(
                    control,
                    &ZygoteReply::Spawned { pid },
                    &[sock.as_raw_fd(), pidfd.as_raw_fd()],
                )?,
                Err(e) => send(
                    control,
                    &ZygoteReply::SpawnFailed {
                        message: e.to_string(),
                    },
                    &[],
                )?,
            },
        }
    }
}

/// Answers `Configure`: prepares the lockdown (see [`Lockdown::prepare`]) and reports it,
/// with the size of the runtime snapshots made just before.
fn configure(
    control: &OwnedFd,
    config: isolate_shared::zygote::SandboxConfig,
    lockdown: &mut Option<Lockdown>,
    snapshot_bytes: u64,
) -> io::Result<()> {
    // Read while /proc is still there: the lockdown's preparation may leave the mount
    // namespace without it.
    let stack = std::fs::read_to_string("/proc/self/maps")
        .ok()
        .as_deref()
        .and_then(stack_bounds);
    match Lockdown::prepare(config) {
        Ok((prepared, mut report)) => {
            *lockdown = Some(prepared);
            report.runtime_snapshot_bytes = snapshot_bytes;
            // The warm-up and the lockdown's preparation freed many small blocks into the C
            // library's free lists. Left there, the first larger allocation in every worker
            // would merge them (`malloc_consolidate`), writing to pages shared with the zygote,
            // a copy-on-write fault each: they are merged once, here, before the first fork.
            // Merging leaves them in the unsorted list, which the next allocation that finds
            // no exact fit sorts into bins, writing to every block: a block larger than any
            // free one (and below the mmap threshold) makes that happen here too.
            // SAFETY: malloc_trim only reorganises the allocator's free memory, the block is
            // freed at once, and the zygote is single-threaded.
            unsafe {
                libc::malloc_trim(0);
                libc::free(libc::malloc(96 << 10));
            }
            if let Some((low, _)) = stack {
                drop_dead_stack(low);
            }
            send(control, &ZygoteReply::Configured(report), &[])
        }
        Err(message) => send(control, &ZygoteReply::ConfigureFailed { message }, &[]),
    }
}

/// Gives back the pages of the zygote's stack (which starts at `low`) below the frames in
/// use, which the start-up's deepest calls (building runtimes, compiling the warm-up) left
/// resident. Every fork copies a page-table entry per resident page and every worker's exit
/// clears it again, and a worker whose calls reach one writes to it, a copy-on-write fault;
/// given back, a worker that reaches that deep gets a zeroed page of its own instead, and
/// one that does not pays nothing.
#[inline(never)]
fn drop_dead_stack(low: usize) {
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => return,
    };
    // A page of margin below this frame: the calls made from here (madvise itself) use it.
    let end = (sp & !(page - 1)).saturating_sub(page);
    if end > low {
        // SAFETY: `low..end` lies in this thread's stack below every live frame and the calls
        // made from this one (the zygote is single-threaded, no signal handler runs on it
        // meanwhile); nothing there is read before being written again, so zeroed pages are
        // as good as the old contents.
        unsafe { libc::madvise(low as *mut libc::c_void, end - low, libc::MADV_DONTNEED) };
    }
}

/// The `[start, end)` of the main thread's stack in `maps` (the text of `/proc/self/maps`).
fn stack_bounds(maps: &str) -> Option<(usize, usize)> {
    crate::hugetext::mappings(maps)
        .find(|m| m.name == "[stack]")
        .map(|m| (m.start, m.end))
}

fn send(control: &OwnedFd, reply: &ZygoteReply, fds: &[RawFd]) -> io::Result<()> {
    let frame = encode(reply).map_err(io::Error::other)?;
    sys::send_with_fds(control, &frame, fds)
}

/// Runs a small job per preset, outside any region slot, so that everything a first
/// execution touches is loaded before forking, and anything a library builds once per process
/// (tables, cached values) is built in ordinary memory, never in a slot whose restore would
/// take it away.
fn warm_up() {
    let jobs = [
        (
            Preset::Compute,
            "const d = new Date(0); setTimeout(() => {}, 0); \
             [d.getTimezoneOffset(), JSON.stringify({a: [1]}), /x/.test('x'), new Map([[1, 2]]).size]",
        ),
        (
            Preset::Data,
            "const key = await crypto.subtle.importKey('raw', new TextEncoder().encode('k'), \
             {name: 'HMAC', hash: 'SHA-256'}, false, ['sign']); \
             const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode('x')); \
             console.log(btoa('x'), new URL('https://a.example/b?c=d').searchParams.get('c')); \
             [Buffer.from(mac).toString('hex'), crypto.randomUUID().length, \
              new TextDecoder().decode(new Uint8Array([104, 105]))]",
        ),
        (
            Preset::Agent,
            "console.log('x'); await fetch('https://a.example/').catch((e) => String(e))",
        ),
    ];
    for (preset, code) in jobs {
        let _ = js::execute_prepared(
            None,
            &ExecuteJob {
                code: code.into(),
                preset,
                env_json: Some(r#"{"a": 1}"#.into()),
                timeout_ms: 1000,
                limits: JsLimits::default(),
                language: Language::JavaScript,
                form: CodeForm::Auto,
                data_json: None,
            },
            None,
        );
    }
    // The TypeScript stripper builds tables on first use; every worker inherits them.
    js::typescript::warm();
}

/// Forks one worker. Returns its pid, the supervisor's end of its socket and its pidfd.
fn spawn(
    contexts: &mut js::Contexts,
    lockdown: Option<&Lockdown>,
) -> io::Result<(u32, OwnedFd, OwnedFd)> {
    let (ours, theirs) = UnixStream::pair()?;
    let zygote_pid = getpid();
    // SAFETY: the zygote never starts a thread, so the child is a consistent copy of a
    // single-threaded process and may run ordinary (not only async-signal-safe) code; the
    // child never returns into the zygote's code (it ends in `_exit`).
    match unsafe { fork() }? {
        ForkResult::Child => {
            // The child's copies of the runtimes become its own.
            let first = std::mem::take(contexts);
            let none = Lockdown::none();
            let lockdown = lockdown.unwrap_or(&none);
            let code = catch_unwind(AssertUnwindSafe(|| {
                worker_main(theirs, zygote_pid, first, lockdown)
            }))
            .unwrap_or(EXIT_PANIC);
            // SAFETY: _exit(2) has no preconditions (nix has no wrapper for it); it ends the
            // child without running the zygote's destructors or atexit handlers, which
            // belong to the parent.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            let pidfd = sys::pidfd_open(child.as_raw())?;
            Ok((child.as_raw() as u32, OwnedFd::from(ours), pidfd))
        }
    }
}

/// The first code a worker runs after the fork.
fn worker_main(sock: UnixStream, zygote_pid: Pid, first: js::Contexts, lockdown: &Lockdown) -> i32 {
    // Before anything can draw from it: the generator's state is the zygote's until now.
    js::reseed();
    // The worker's own allocations come from a fresh slot, never freed or restored: taken from
    // the C library's heap, each would write into free lists that sit in pages shared with the
    // zygote, a copy-on-write fault apiece (a fresh `agent` process pays them all). Never
    // released: the process ends without freeing anything.
    let heap = std::mem::ManuallyDrop::new(if lockdown.runtime_snapshots() {
        region::Slot::new()
    } else {
        None
    });
    let _own_heap = heap.as_ref().map(region::Slot::enter);
    let setup = || -> io::Result<UnixStream> {
        sys::set_signal(Signal::SIGCHLD, false)?;
        set_pdeathsig(Signal::SIGKILL)?;
        if getppid() != zygote_pid {
            return Err(io::Error::other("the zygote exited during the fork"));
        }
        // Keep nothing but the job socket: it moves to CONTROL_FD (replacing this process's
        // copy of the zygote's control socket) and everything above it is closed.
        let fd = sys::move_fd(OwnedFd::from(sock), CONTROL_FD)?;
        sys::close_from(CONTROL_FD + 1)?;
        Ok(UnixStream::from(fd))
    };
    match setup() {
        // Lock down last, once nothing but the job socket is left; then greet.
        Ok(sock) => serve::run(sock, first, lockdown.apply(), lockdown.idle_poll()),
        Err(_) => EXIT_SETUP,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_is_the_mapping_named_so() {
        let maps = "\
55c89572a000-55c8957bc000 rw-p 00000000 00:00 0                          [heap]
7ffd32a8d000-7ffd32ab0000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";
        assert_eq!(
            stack_bounds(maps),
            Some((0x7ffd_32a8_d000, 0x7ffd_32ab_0000))
        );
        assert_eq!(stack_bounds("55c8-55c9 rw-p 0 0:0 0 [heap]\n"), None);
        let (low, high) = stack_bounds(&std::fs::read_to_string("/proc/self/maps").unwrap())
            .expect("this process has a stack");
        assert!(low < high);
    }

    #[test]
    fn a_supervisor_that_is_pid_1_is_not_taken_for_gone() {
        let one = Pid::from_raw(1);
        assert!(!supervisor_gone(one, one), "a supervisor running as PID 1");
        assert!(!supervisor_gone(Pid::from_raw(4242), Pid::from_raw(4242)));
        // Re-parented to init or to a subreaper: the supervisor has exited.
        assert!(supervisor_gone(one, Pid::from_raw(4242)));
        assert!(supervisor_gone(Pid::from_raw(77), Pid::from_raw(4242)));
    }

    #[test]
    fn the_supervisor_pid_argument_is_required_and_positive() {
        assert_eq!(parse_supervisor_pid(Some("1")).unwrap(), Pid::from_raw(1));
        assert_eq!(
            parse_supervisor_pid(Some("4242")).unwrap(),
            Pid::from_raw(4242)
        );
        for bad in [None, Some(""), Some("0"), Some("-3"), Some("x")] {
            assert!(parse_supervisor_pid(bad).is_err(), "{bad:?}");
        }
    }
}
