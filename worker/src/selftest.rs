//! Sandbox probes: each attempts one operation a locked-down worker must not be able to do,
//! and reports the errno it got, or dies trying (the seccomp kill list). Compiled only with the
//! `sandbox-selftest` feature, which only the test suite enables.

use std::ffi::CString;
use std::io;

use isolate_shared::message::{ProbeJob, ProbeOutcome};

/// The probe that sends a fetch host call during a job that allows none (handled by the job
/// loop in `serve`, which owns the socket). The supervisor must kill the worker.
pub const HOST_CALL_PROBE: &str = "host_call";

/// Every probe name, in the order the tests run them.
pub const PROBES: [&str; 16] = [
    "open_passwd",
    "create_tmp_file",
    "tcp_connect",
    "unix_connect",
    "execve",
    "fork",
    "ptrace",
    "kill_supervisor",
    "mount",
    "unshare",
    "bpf",
    "io_uring_setup",
    "keyctl",
    "perf_event_open",
    "process_vm_readv",
    "getpid",
];

fn errno<T: PartialOrd + Default>(ret: T) -> ProbeOutcome {
    if ret < T::default() {
        ProbeOutcome::Failed(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        ProbeOutcome::Succeeded
    }
}

/// Runs one probe.
pub fn run(job: &ProbeJob) -> ProbeOutcome {
    let target = job.supervisor_pid as libc::pid_t;
    // SAFETY: every call below passes valid pointers to buffers that live for
    // the duration of the call, or none; the point is to see whether the kernel refuses it.
    unsafe {
        match job.probe.as_str() {
            "open_passwd" => errno(libc::open(c"/etc/passwd".as_ptr(), libc::O_RDONLY)),
            "create_tmp_file" => {
                let path = CString::new(format!("/tmp/isolate-selftest-{}", libc::getpid()))
                    .unwrap_or_default();
                errno(libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY,
                    0o600,
                ))
            }
            "tcp_connect" => {
                let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                if fd < 0 {
                    return errno(fd);
                }
                let addr = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: job.tcp_port.to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                errno(libc::connect(
                    fd,
                    (&addr as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                ))
            }
            "unix_connect" => {
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                if fd < 0 {
                    return errno(fd);
                }
                let mut addr: libc::sockaddr_un = std::mem::zeroed();
                addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
                for (d, s) in addr
                    .sun_path
                    .iter_mut()
                    .zip(job.unix_path.bytes().take(100))
                {
                    *d = s as libc::c_char;
                }
                errno(libc::connect(
                    fd,
                    (&addr as *const libc::sockaddr_un).cast(),
                    std::mem::size_of::<libc::sockaddr_un>() as u32,
                ))
            }
            "execve" => {
                let argv = [c"/bin/sh".as_ptr(), std::ptr::null()];
                let envp = [std::ptr::null()];
                errno(libc::execve(
                    c"/bin/sh".as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                ))
            }
            "fork" => {
                let pid = libc::fork();
                if pid == 0 {
                    libc::_exit(0);
                }
                let outcome = errno(pid);
                if pid > 0 {
                    // The sandbox let it through (a layer is off): reap it, leave no zombie.
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
                outcome
            }
            "ptrace" => errno(libc::ptrace(libc::PTRACE_ATTACH, target, 0, 0)),
            "kill_supervisor" => errno(libc::kill(target, 0)),
            "mount" => errno(libc::mount(
                c"none".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            )),
            "unshare" => errno(libc::unshare(libc::CLONE_NEWUSER)),
            "bpf" => errno(libc::syscall(libc::SYS_bpf, 0, std::ptr::null::<u8>(), 0)),
            "io_uring_setup" => errno(libc::syscall(
                libc::SYS_io_uring_setup,
                1,
                std::ptr::null::<u8>(),
            )),
            "keyctl" => errno(libc::syscall(libc::SYS_keyctl, 0, 0, 0)),
            "perf_event_open" => errno(libc::syscall(
                libc::SYS_perf_event_open,
                std::ptr::null::<u8>(),
                0,
                -1,
                -1,
                0,
            )),
            "process_vm_readv" => {
                let mut buf = [0u8; 8];
                let local = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: 8,
                };
                let remote = libc::iovec {
                    iov_base: 0x1000 as *mut libc::c_void,
                    iov_len: 8,
                };
                errno(libc::process_vm_readv(target, &local, 1, &remote, 1, 0))
            }
            // wasmtime's copy-on-write memory images would use it; they are off, and the
            // allowlist refuses it.
            "memfd_create" => errno(libc::syscall(
                libc::SYS_memfd_create,
                c"isolate-selftest".as_ptr(),
                0,
            ) as libc::c_int),
            // Calls the zygote may make and a worker may not (see the policy's `zygote` filter).
            "socketpair" => {
                let mut fds = [0; 2];
                errno(libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_STREAM,
                    0,
                    fds.as_mut_ptr(),
                ))
            }
            "pidfd_open" => errno(libc::syscall(libc::SYS_pidfd_open, target, 0) as libc::c_int),
            "prctl" => errno(libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0)),
            "seccomp" => {
                // Installing a filter that allows everything would loosen nothing, but the
                // call itself must be refused.
                let allow = libc::sock_filter {
                    code: 0x06, // BPF_RET | BPF_K
                    jt: 0,
                    jf: 0,
                    k: 0x7fff_0000, // SECCOMP_RET_ALLOW
                };
                let prog = libc::sock_fprog {
                    len: 1,
                    filter: &allow as *const libc::sock_filter as *mut libc::sock_filter,
                };
                errno(libc::syscall(
                    libc::SYS_seccomp,
                    1, // SECCOMP_SET_MODE_FILTER
                    0,
                    &prog as *const libc::sock_fprog,
                ) as libc::c_int)
            }
            // A control: an allowed call must still work.
            "getpid" => errno(libc::getpid()),
            other => ProbeOutcome::Unsupported(format!("no probe named {other:?}")),
        }
    }
}
