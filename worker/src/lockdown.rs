//! The walls behind the engine: namespaces (entered once by the zygote), and in every worker,
//! after the fork and before it greets: `PR_SET_NO_NEW_PRIVS`, rlimits, a landlock ruleset that
//! grants nothing, and the seccomp filters of `policies/seccomp/`.
//!
//! The order matters. Namespaces come first and once, in the zygote, because creating a network
//! namespace costs far more than a fork. In the worker, rlimits and landlock need system calls
//! that seccomp then forbids, so seccomp is always last. Each layer that is asked for and fails
//! is reported, never silently skipped: the supervisor decides whether that is acceptable
//! (`sandbox.require`).

use std::collections::BTreeSet;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::OnceLock;

use isolate_shared::zygote::{LockdownReport, Rlimits, SandboxConfig, ZygoteReport};
use landlock::{
    Access, AccessFs, AccessNet, LandlockStatus, Ruleset, RulesetAttr, RulesetStatus, Scope, ABI,
};
use nix::sched::{unshare, CloneFlags};
use nix::sys::prctl::set_no_new_privs;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{getgid, getuid};
use seccompiler::{BpfProgram, TargetArch};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The seccomp policy for this architecture, compiled into the binary from `policies/`.
#[cfg(target_arch = "x86_64")]
pub const SECCOMP_POLICY: &str = include_str!("../../policies/seccomp/x86_64.json");
/// The seccomp policy for this architecture, compiled into the binary from `policies/`.
#[cfg(target_arch = "aarch64")]
pub const SECCOMP_POLICY: &str = include_str!("../../policies/seccomp/aarch64.json");

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

/// The landlock ABI whose rights this build handles (all file-system rights, TCP bind and
/// connect, abstract-socket and signal scoping). Newer kernels enforce exactly these; older
/// ones enforce what they know (best effort), and the report says which ABI was enforced.
const LANDLOCK_ABI: ABI = ABI::V6;

/// The frame a worker sends when it hits the kill list, encoded before any fork so that the
/// SIGSYS handler only copies it, patches in the system call number and writes it.
static VIOLATION_FRAME: OnceLock<Vec<u8>> = OnceLock::new();

/// Exit code of a worker that attempted a system call on the kill list.
pub const EXIT_VIOLATION: i32 = 31;

/// Offset of `si_syscall` in a SIGSYS `siginfo_t` on 64-bit Linux: signo, errno, code, padding
/// (16 bytes), then `_sigsys { void *_call_addr; int _syscall; unsigned _arch; }`.
const SI_SYSCALL_OFFSET: usize = 24;

extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Only async-signal-safe work here: a copy on the stack, one write(2), _exit(2).
    // SAFETY: the kernel passes a valid siginfo_t for a SA_SIGINFO handler; for SIGSYS the
    // system call number lies at SI_SYSCALL_OFFSET.
    let nr = unsafe {
        info.cast::<u8>()
            .add(SI_SYSCALL_OFFSET)
            .cast::<i32>()
            .read_unaligned()
    };
    if let Some(template) = VIOLATION_FRAME.get() {
        let mut buf = [0u8; 32];
        let n = template.len().min(buf.len());
        buf[..n].copy_from_slice(&template[..n]);
        if n >= 4 {
            buf[n - 4..n].copy_from_slice(&(nr as u32).to_le_bytes());
        }
        // SAFETY: CONTROL_FD is the worker's job socket, open for the worker's whole life
        // (it never closes it); the borrow lasts for this one write.
        let sock = unsafe { BorrowedFd::borrow_raw(isolate_shared::zygote::CONTROL_FD) };
        let _ = nix::unistd::write(sock, &buf[..n]);
    }
    // SAFETY: _exit(2) has no preconditions and is async-signal-safe; it ends the process
    // without running anything else (nix has no wrapper for it).
    unsafe { libc::_exit(EXIT_VIOLATION) }
}

/// Installs the SIGSYS handler that reports a trapped system call and exits.
fn install_sigsys_handler() -> io::Result<()> {
    let action = SigAction::new(
        SigHandler::SigAction(on_sigsys),
        SaFlags::SA_SIGINFO,
        SigSet::empty(),
    );
    // SAFETY: the handler makes only async-signal-safe calls (a copy on its stack, write(2),
    // _exit(2)) and reads VIOLATION_FRAME, which is set before any fork and never changes.
    unsafe { sigaction(Signal::SIGSYS, &action) }?;
    Ok(())
}

fn violation_template() -> Vec<u8> {
    let msg = isolate_shared::message::WorkerMessage::Violation { syscall_le: [0; 4] };
    isolate_shared::frame::encode(&msg).unwrap_or_default()
}

/// The policy's filters, compiled, in the two ways it can be installed.
///
/// The zygote installs the broad pair once, before its first fork, and every worker inherits
/// it: `zygote_kill` (the kill list less the calls the zygote itself makes) and `zygote`
/// (the worker allowlist plus those calls). Each worker then only adds `narrow`, one small
/// filter (two if they cannot be [`chain`]ed): the zygote's calls that are on the kill list
/// trap, and the rest of them fail with the allowlist's errno. The kernel applies the most
/// severe action of all installed filters, so what a worker may do is exactly the `worker` and `worker_kill` policy, while a
/// fork no longer compiles and installs the two large filters (about 7% of the CPU of a
/// fresh-process execution) and the kernel's action cache is computed once, in the zygote.
#[derive(Clone)]
pub struct Filters {
    zygote: Vec<BpfProgram>,
    narrow: Vec<BpfProgram>,
    /// `worker_kill` then `worker`, for a worker whose zygote could not install its pair.
    full: Vec<BpfProgram>,
}

impl Filters {
    /// Installs the zygote's pair on the calling process, after `PR_SET_NO_NEW_PRIVS`, which
    /// installing a filter without `CAP_SYS_ADMIN` requires.
    fn install_in_zygote(&self) -> Result<(), String> {
        let failed = |e: &dyn std::fmt::Display| format!("the zygote's seccomp filters: {e}");
        set_no_new_privs().map_err(|e| failed(&format!("no_new_privs: {e}")))?;
        self.zygote
            .iter()
            .try_for_each(|p| seccompiler::apply_filter(p))
            .map_err(|e| failed(&e))
    }
}

/// Compiles `policy` (seccompiler JSON with the `worker_kill`, `worker` and `zygote`
/// filters), deriving the zygote's pair and each worker's narrowing filters from it.
pub fn compile_policy(policy: &str) -> Result<Filters, String> {
    let invalid = |e: &dyn std::fmt::Display| format!("invalid seccomp policy: {e}");
    let doc: Value = serde_json::from_str(policy).map_err(|e| invalid(&e))?;
    let filter = |name: &str| {
        doc.get(name)
            .ok_or_else(|| format!("the seccomp policy has no {name} filter"))
    };
    let (kill, allow, zygote) = (filter("worker_kill")?, filter("worker")?, filter("zygote")?);
    let refused = allow
        .get("default_action")
        .ok_or("the seccomp policy's worker filter has no default_action")?;
    // What the zygote calls beyond the allowlist: allowed in the zygote, taken back in workers.
    let allowed = names(&rules(allow));
    let zygote_only: Vec<Value> = rules(zygote)
        .into_iter()
        .filter(|r| !allowed.contains(syscall(r)))
        .collect();
    let extra = names(&zygote_only);
    let (narrow_kill, zygote_kill): (Vec<_>, Vec<_>) = rules(kill)
        .into_iter()
        .partition(|r| extra.contains(syscall(r)));
    let killed = names(&rules(kill));
    let narrow_refuse: Vec<Value> = zygote_only
        .iter()
        .filter(|r| !killed.contains(syscall(r)))
        .cloned()
        .collect();
    let mut zygote_allow = rules(allow);
    zygote_allow.extend(zygote_only);
    // A filter without rules would decide nothing: it is left out.
    let narrow_names: Vec<&str> = [
        ("narrow_kill", &narrow_kill),
        ("narrow_refuse", &narrow_refuse),
    ]
    .into_iter()
    .filter(|(_, rules)| !rules.is_empty())
    .map(|(name, _)| name)
    .collect();
    let derived = serde_json::json!({
        "zygote_kill": with_rules(kill, zygote_kill),
        "zygote_allow": with_rules(allow, zygote_allow),
        "narrow_kill": with_rules(kill, narrow_kill),
        "narrow_refuse": {
            "default_action": "allow",
            "filter_action": refused,
            "filter": narrow_refuse,
        },
        "worker_kill": kill,
        "worker": allow,
    });
    let mut map = seccompiler::compile_from_json(derived.to_string().as_bytes(), ARCH)
        .map_err(|e| invalid(&e))?;
    let mut take = |name: &str| map.remove(name).ok_or_else(|| invalid(&name));
    Ok(Filters {
        zygote: vec![take("zygote_kill")?, take("zygote_allow")?],
        narrow: merge(
            narrow_names
                .into_iter()
                .map(&mut take)
                .collect::<Result<_, _>>()?,
        ),
        full: vec![uncached(take("worker_kill")?), uncached(take("worker")?)],
    })
}

/// `BPF_LD | BPF_W | BPF_ABS`: load a word of `struct seccomp_data`.
const BPF_LD_W_ABS: u16 = 0x20;
/// `BPF_RET | BPF_K`: return a constant.
const BPF_RET_K: u16 = 0x06;

/// The kernel's order of seccomp actions: the action bits compared as a signed number, lower
/// is more severe.
fn severity(action: u32) -> i32 {
    (action & 0xffff_0000) as i32
}

/// `programs` as few filters as they can exactly be: each pair that [`chain`] can join, joined.
fn merge(programs: Vec<BpfProgram>) -> Vec<BpfProgram> {
    let mut merged: Vec<BpfProgram> = Vec::with_capacity(programs.len());
    for program in programs {
        if let Some(last) = merged.last_mut() {
            if let Some(one) = chain(last, &program) {
                *last = one;
                continue;
            }
        }
        merged.push(program);
    }
    merged
}

/// One program that decides what installing `first` and then `second` decides, when it can be
/// made exactly: `first`, with each of its `allow` returns turned into a jump to `second`
/// past its architecture check (the same three instructions as `first`'s, which has passed
/// by then). The kernel runs all installed filters and keeps the most severe action (on a
/// tie, the last installed filter's value); the chain runs `second` only where `first`
/// allows. The two agree when each other action `first` returns is strictly more severe than
/// every action the rest of `second` returns, or the very same value. `None` when that does
/// not hold, when the two do not begin with the same architecture check, or when either
/// program returns anything but a constant.
fn chain(first: &BpfProgram, second: &BpfProgram) -> Option<BpfProgram> {
    const BPF_JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
    const BPF_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const BPF_CLASS_MASK: u16 = 0x07;
    const BPF_RET: u16 = 0x06;
    const ARCH_OFFSET: u32 = 4; // offsetof(struct seccomp_data, arch)
    const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
                                        // seccompiler's programs begin: load the architecture; equal: skip one; return the
                                        // mismatch action.
    let check = first.get(..3)?;
    let arch_check = check[0].code == BPF_LD_W_ABS
        && check[0].k == ARCH_OFFSET
        && (check[1].code, check[1].jt, check[1].jf) == (BPF_JEQ_K, 1, 0)
        && check[2].code == BPF_RET_K;
    if !arch_check || check != second.get(..3)? {
        return None;
    }
    let rest = &second[3..];
    let returns = |p: &[seccompiler::sock_filter]| -> Option<Vec<u32>> {
        p.iter()
            .filter(|i| i.code & BPF_CLASS_MASK == BPF_RET)
            .map(|i| (i.code == BPF_RET_K).then_some(i.k))
            .collect()
    };
    let (ours, theirs) = (returns(first)?, returns(rest)?);
    let exact = ours
        .iter()
        .filter(|&&k| k != RET_ALLOW)
        .all(|&k| theirs.iter().all(|&t| k == t || severity(k) < severity(t)));
    if !exact || first.len() + rest.len() > usize::from(u16::MAX) {
        return None;
    }
    let len = first.len();
    let mut joined: BpfProgram = first
        .iter()
        .enumerate()
        .map(|(i, insn)| {
            if insn.code == BPF_RET_K && insn.k == RET_ALLOW {
                seccompiler::sock_filter {
                    code: BPF_JMP_JA,
                    jt: 0,
                    jf: 0,
                    k: (len - 1 - i) as u32,
                }
            } else {
                insn.clone()
            }
        })
        .collect();
    joined.extend_from_slice(rest);
    Some(joined)
}

/// The rules of one filter of a seccompiler JSON policy.
fn rules(filter: &Value) -> Vec<Value> {
    filter
        .get("filter")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The system call a rule names ("" when it names none; seccompiler then rejects it).
fn syscall(rule: &Value) -> &str {
    rule.get("syscall").and_then(Value::as_str).unwrap_or("")
}

/// The system calls named by `rules`.
fn names(rules: &[Value]) -> BTreeSet<String> {
    rules.iter().map(|r| syscall(r).to_string()).collect()
}

/// `filter` with its rules replaced by `rules`.
fn with_rules(filter: &Value, rules: Vec<Value>) -> Value {
    let mut filter = filter.clone();
    filter["filter"] = Value::Array(rules);
    filter
}

/// `program` preceded by one load of the first system call argument, which changes nothing in
/// what it decides (every program seccompiler emits loads what it tests first).
///
/// Installing a filter makes the kernel compute its action cache: it emulates the program for
/// every system call number still allowed by the filters before it, with the signal lock
/// held. For the two large filters of a worker whose zygote has none, that was most of the
/// lockdown time; the emulation gives up at the first load of an argument, so this
/// instruction ends it at once (and that worker's system calls run the filters instead of a
/// cache lookup). The zygote's pair is installed with the cache, once; the narrowing filters
/// are emulated only for the few calls the zygote's pair allows.
fn uncached(mut program: BpfProgram) -> BpfProgram {
    const ARGS_OFFSET: u32 = 16; // offsetof(struct seccomp_data, args)
    program.insert(
        0,
        seccompiler::sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: ARGS_OFFSET,
        },
    );
    program
}

/// SHA-256 of a policy, as hex.
pub fn policy_hash(policy: &str) -> String {
    hex::encode(Sha256::digest(policy.as_bytes()))
}

/// Everything a worker needs to lock itself down, prepared by the zygote before any fork.
#[derive(Clone)]
pub struct Lockdown {
    config: SandboxConfig,
    filters: Option<Filters>,
    /// Whether the zygote runs under its pair of filters, which every worker inherits.
    zygote_filtered: bool,
}

impl Lockdown {
    /// How long a worker polls its socket after an answer before it blocks on it.
    pub fn idle_poll(&self) -> std::time::Duration {
        std::time::Duration::from_micros(u64::from(self.config.idle_poll_micros))
    }

    /// Prepares the layers in the zygote: enters the namespaces (when asked), compiles the
    /// seccomp policy and installs the zygote's pair of filters (see [`Filters`]), which every
    /// later fork inherits. Fails only when the policy itself is broken; when the pair cannot
    /// be installed, the report says why and each worker installs the whole policy itself.
    pub fn prepare(config: SandboxConfig) -> Result<(Lockdown, ZygoteReport), String> {
        VIOLATION_FRAME.get_or_init(violation_template);
        // First, while every system call is still allowed: the code into huge pages.
        let (huge_text_bytes, huge_text_error) = if config.huge_text_pages {
            crate::hugetext::remap().map_or_else(|why| (0, Some(why)), |bytes| (bytes, None))
        } else {
            (0, None)
        };
        let filters = if config.seccomp {
            Some(compile_policy(SECCOMP_POLICY)?)
        } else {
            None
        };
        let (namespaces, namespace_error) = if config.namespaces {
            match enter_namespaces() {
                Ok(entered) => (entered, None),
                Err(e) => (Vec::new(), Some(e)),
            }
        } else {
            (Vec::new(), None)
        };
        let landlock_kernel_abi = landlock_kernel_abi();
        // Last: the pair refuses the namespace and landlock set-up above.
        let zygote_seccomp_error = filters.as_ref().and_then(|f| f.install_in_zygote().err());
        let zygote_filtered = filters.is_some() && zygote_seccomp_error.is_none();
        let report = ZygoteReport {
            namespaces: namespaces.into_iter().map(String::from).collect(),
            namespace_error,
            seccomp_policy_sha256: config.seccomp.then(|| policy_hash(SECCOMP_POLICY)),
            zygote_seccomp_error,
            landlock_kernel_abi,
            huge_text_bytes,
            huge_text_error,
            runtime_snapshot_bytes: 0,
        };
        Ok((
            Lockdown {
                config,
                filters,
                zygote_filtered,
            },
            report,
        ))
    }

    /// Whether runtimes live in region slots and are restored from snapshots.
    pub fn runtime_snapshots(&self) -> bool {
        self.config.runtime_snapshots
    }

    /// No layer at all (used when the supervisor sent no configuration).
    pub fn none() -> Lockdown {
        Lockdown {
            config: SandboxConfig {
                seccomp: false,
                landlock: false,
                namespaces: false,
                rlimits: None,
                idle_poll_micros: 0,
                huge_text_pages: false,
                runtime_snapshots: false,
            },
            filters: None,
            zygote_filtered: false,
        }
    }

    /// Applies every configured layer to the calling process (a freshly forked worker, still
    /// single-threaded) and reports what took effect. Seccomp goes last.
    pub fn apply(&self) -> LockdownReport {
        let started = std::time::Instant::now();
        let mut report = LockdownReport {
            no_new_privs: false,
            seccomp_mode: 0,
            landlock_abi: 0,
            landlock_status: "none".into(),
            rlimits: false,
            errors: Vec::new(),
            micros: 0,
        };
        report.no_new_privs = set_no_new_privs().is_ok();
        if let Err(e) = set_rlimit(Resource::RLIMIT_CORE, 0) {
            report.errors.push(format!("rlimit core: {e}"));
        }
        if let Some(limits) = self.config.rlimits {
            match apply_rlimits(&limits) {
                Ok(()) => report.rlimits = true,
                Err(e) => report.errors.push(format!("rlimits: {e}")),
            }
        }
        if self.config.landlock {
            match restrict_landlock() {
                Ok((abi, status)) => {
                    report.landlock_abi = abi;
                    report.landlock_status = status.into();
                }
                Err(e) => report.errors.push(format!("landlock: {e}")),
            }
        }
        if let Some(filters) = &self.filters {
            if let Err(e) = install_sigsys_handler() {
                report
                    .errors
                    .push(format!("seccomp: cannot install the SIGSYS handler: {e}"));
            }
            // Under the zygote's pair, only the narrowing filters; otherwise the whole policy,
            // the kill list first (once the allowlist is in place, installing a filter is
            // itself refused).
            let programs = if self.zygote_filtered {
                &filters.narrow
            } else {
                &filters.full
            };
            let installed = programs
                .iter()
                .try_for_each(|p| seccompiler::apply_filter(p));
            match installed {
                Ok(()) => report.seccomp_mode = 2,
                Err(e) => report.errors.push(format!("seccomp: {e}")),
            }
        }
        report.micros = started.elapsed().as_micros() as u64;
        report
    }
}

/// Sets both the soft and the hard limit of `resource` to `value`.
fn set_rlimit(resource: Resource, value: u64) -> io::Result<()> {
    Ok(setrlimit(resource, value, value)?)
}

fn apply_rlimits(r: &Rlimits) -> io::Result<()> {
    set_rlimit(Resource::RLIMIT_DATA, r.data_bytes)?;
    set_rlimit(Resource::RLIMIT_NOFILE, r.open_files)?;
    set_rlimit(Resource::RLIMIT_NPROC, r.processes)?;
    set_rlimit(Resource::RLIMIT_FSIZE, r.file_size_bytes)?;
    // Writing past RLIMIT_FSIZE then fails with EFBIG instead of killing the worker.
    crate::sys::set_signal(Signal::SIGXFSZ, true)
}

/// The landlock ABI the running kernel offers (0 when landlock is unavailable).
pub fn landlock_kernel_abi() -> i32 {
    // A raw system call: nix and rustix have no landlock calls, and the landlock crate keeps
    // this query private (its status reports the ABI only after a ruleset is created).
    // SAFETY: landlock_create_ruleset with a null attribute, size 0 and the VERSION flag only
    // returns the ABI version (or an error); it creates nothing.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    if v < 0 {
        0
    } else {
        v as i32
    }
}

/// Restricts the calling process with a ruleset that handles every right of
/// [`LANDLOCK_ABI`] and grants none. Returns the ABI enforced and how fully.
fn restrict_landlock() -> Result<(i32, &'static str), String> {
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .and_then(|r| r.handle_access(AccessNet::from_all(LANDLOCK_ABI)))
        .and_then(|r| r.scope(Scope::from_all(LANDLOCK_ABI)))
        .and_then(|r| r.create())
        .and_then(|r| r.restrict_self())
        .map_err(|e| e.to_string())?;
    let abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi as i32,
        _ => 0,
    };
    let how = match status.ruleset {
        RulesetStatus::FullyEnforced => "full",
        RulesetStatus::PartiallyEnforced => "partial",
        RulesetStatus::NotEnforced => "none",
    };
    if how == "none" {
        return Err("the kernel does not enforce landlock".into());
    }
    Ok((abi, how))
}

/// Enters new user, network, IPC, UTS and mount namespaces. Without unprivileged user
/// namespaces it tries the others alone (which needs `CAP_SYS_ADMIN`). Returns the names of
/// the namespaces entered.
pub fn enter_namespaces() -> Result<Vec<&'static str>, String> {
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
    let others = CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWNS;
    // The zygote calls this while single-threaded, as a new user namespace requires.
    let user_err = match unshare(CloneFlags::CLONE_NEWUSER | others) {
        Ok(()) => {
            // Map our own ids to themselves, so that files and signals keep their meaning.
            std::fs::write("/proc/self/setgroups", "deny")
                .and_then(|()| std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")))
                .and_then(|()| std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")))
                .map_err(|e| format!("cannot write the user namespace's id maps: {e}"))?;
            return Ok(vec!["user", "net", "ipc", "uts", "mnt"]);
        }
        Err(e) => io::Error::from(e),
    };
    if unshare(others).is_ok() {
        return Ok(vec!["net", "ipc", "uts", "mnt"]);
    }
    Err(format!(
        "cannot create namespaces ({user_err}); enable unprivileged user namespaces \
         (sysctl kernel.unprivileged_userns_clone=1 or user.max_user_namespaces > 0) \
         or run with CAP_SYS_ADMIN"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_file_compiles_and_comments_every_rule() {
        for (name, text) in [
            ("x86_64", include_str!("../../policies/seccomp/x86_64.json")),
            (
                "aarch64",
                include_str!("../../policies/seccomp/aarch64.json"),
            ),
        ] {
            let arch = if name == "x86_64" {
                TargetArch::x86_64
            } else {
                TargetArch::aarch64
            };
            let map = seccompiler::compile_from_json(text.as_bytes(), arch)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                map.contains_key("worker") && map.contains_key("worker_kill"),
                "{name}"
            );
            // Every rule has a reason (seccompiler itself ignores comments).
            let rules = text.matches("\"syscall\"").count();
            let comments = text.matches("\"comment\"").count();
            assert_eq!(rules, comments, "{name}: every rule needs a comment");
        }
        compile_policy(SECCOMP_POLICY).unwrap();
        assert_eq!(policy_hash("abc").len(), 64);
    }

    #[test]
    fn the_violation_frame_ends_with_the_syscall_number() {
        use isolate_shared::message::WorkerMessage;
        let mut frame = violation_template();
        let n = frame.len();
        assert!(n <= 32, "the handler's buffer holds it");
        frame[n - 4..].copy_from_slice(&59u32.to_le_bytes());
        let msg: WorkerMessage = isolate_shared::frame::decode_frame(&frame).unwrap();
        assert_eq!(
            msg,
            WorkerMessage::Violation {
                syscall_le: 59u32.to_le_bytes()
            }
        );
    }

    #[test]
    fn the_narrowing_filters_take_back_exactly_the_zygote_only_calls() {
        let policy = |zygote: &str| {
            format!(
                r#"{{"worker": {{"default_action": {{"errno": 1}}, "filter_action": "allow",
                     "filter": [{{"syscall": "read"}}]}},
                   "worker_kill": {{"default_action": "allow", "filter_action": "trap",
                     "filter": [{{"syscall": "execve"}}, {{"syscall": "clone"}}]}},
                   "zygote": {{"default_action": {{"errno": 1}}, "filter_action": "allow",
                     "filter": [{zygote}]}}}}"#
            )
        };
        let count = |zygote: &str| {
            let f = compile_policy(&policy(zygote)).unwrap();
            assert_eq!((f.zygote.len(), f.full.len()), (2, 2));
            f.narrow.len()
        };
        // A kill-list call (trapped again) and one the allowlist lacks (refused again): the
        // trap is more severe than the refusal, so the two filters are chained into one.
        assert_eq!(
            count(r#"{"syscall": "clone"}, {"syscall": "socketpair"}"#),
            1
        );
        assert_eq!(count(r#"{"syscall": "socketpair"}"#), 1);
        assert_eq!(count(r#"{"syscall": "clone"}"#), 1);
        // Already allowed in workers: nothing to take back.
        assert_eq!(count(r#"{"syscall": "read"}"#), 0);
        assert_eq!(compile_policy(SECCOMP_POLICY).unwrap().narrow.len(), 1);
    }

    /// Runs a classic BPF program on a `seccomp_data` (the instructions seccompiler emits).
    fn run_bpf(program: &BpfProgram, nr: u32, arch: u32) -> u32 {
        let word = |off: u32| match off {
            0 => nr,
            4 => arch,
            _ => 0, // the instruction pointer and the arguments: all zero here
        };
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = &program[pc];
            pc += 1;
            let jump = |cond: bool| if cond { i.jt } else { i.jf } as usize;
            match i.code {
                0x20 => a = word(i.k),            // ld [k]
                0x54 => a &= i.k,                 // and #k
                0x05 => pc += i.k as usize,       // ja
                0x15 => pc += jump(a == i.k),     // jeq #k
                0x25 => pc += jump(a > i.k),      // jgt #k
                0x35 => pc += jump(a >= i.k),     // jge #k
                0x45 => pc += jump(a & i.k != 0), // jset #k
                0x06 => return i.k,               // ret #k
                code => panic!("instruction {code:#x} not handled by this test"),
            }
        }
    }

    #[test]
    fn a_chained_filter_decides_what_the_two_filters_decide() {
        let compile = |json: &str| {
            let mut map = seccompiler::compile_from_json(json.as_bytes(), ARCH).unwrap();
            map.remove("f").unwrap()
        };
        let filter = |action: &str, calls: &[&str]| {
            let rules: Vec<String> = calls
                .iter()
                .map(|c| format!(r#"{{"syscall": "{c}"}}"#))
                .collect();
            compile(&format!(
                r#"{{"f": {{"default_action": "allow", "filter_action": {action},
                     "filter": [{}]}}}}"#,
                rules.join(",")
            ))
        };
        let trap = filter(r#""trap""#, &["clone", "execve"]);
        let refuse = filter(r#"{"errno": 1}"#, &["socketpair", "prctl", "clone"]);
        let joined = chain(&trap, &refuse).expect("a trap is more severe than an errno");
        let arch = if cfg!(target_arch = "x86_64") {
            0xc000_003e // AUDIT_ARCH_X86_64
        } else {
            0xc000_00b7 // AUDIT_ARCH_AARCH64
        };
        for a in [arch, 0x4000_0003] {
            for nr in 0..512 {
                let (t, r) = (run_bpf(&trap, nr, a), run_bpf(&refuse, nr, a));
                // The kernel keeps the most severe; on a tie, the last installed filter's.
                let both = if severity(t) < severity(r) { t } else { r };
                assert_eq!(
                    run_bpf(&joined, nr, a),
                    both,
                    "system call {nr}, arch {a:#x}"
                );
            }
        }
        // The other way round an allowed call of the first would hide the second's trap.
        assert!(chain(&refuse, &trap).is_none());
        assert_eq!(merge(vec![refuse.clone(), trap.clone()]).len(), 2);
        assert_eq!(merge(vec![trap, refuse]).len(), 1);
    }

    #[test]
    fn a_broken_policy_is_an_error() {
        assert!(compile_policy("{").is_err());
        assert!(compile_policy(
            r#"{"other": {"default_action": "allow", "filter_action": "allow", "filter": []}}"#
        )
        .is_err());
    }
}
