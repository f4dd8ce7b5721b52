//! The service's life as a daemon: readiness and stopping notifications for systemd, and
//! making sure that no process of ours outlives the supervisor's stop.
//!
//! * [`notify`] sends one `sd_notify` datagram (`READY=1`, `STOPPING=1`, `RELOADING=1`) to
//!   `$NOTIFY_SOCKET` when it is set; the protocol is one datagram of `KEY=value` lines, so the
//!   standard library's `UnixDatagram` is all it takes.
//! * [`become_subreaper`] makes the supervisor the reaper of its orphaned descendants: a worker
//!   whose zygote died before it is re-parented to the supervisor instead of init, and
//!   [`reap_orphans`] and [`wait_for_descendants`] reap it, so none is left as a zombie.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Sends `state` (newline-separated `KEY=value` assignments) to the service manager. Returns
/// whether it was sent: `false` without `NOTIFY_SOCKET` or when the socket refuses it (logged).
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let sent = (|| -> io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
        match bytes.strip_prefix(b"@") {
            // An abstract socket: `@name` stands for a name that begins with a NUL byte.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(state.as_bytes(), &addr)?;
            }
            None => {
                socket.send_to(state.as_bytes(), &path)?;
            }
        }
        Ok(())
    })();
    match sent {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot notify the service manager ({state})");
            false
        }
    }
}

/// `MONOTONIC_USEC=…`: `CLOCK_MONOTONIC` now, which systemd wants with `RELOADING=1`.
pub fn monotonic_usec() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => (ts.tv_sec() as u64) * 1_000_000 + (ts.tv_nsec() as u64) / 1000,
        Err(_) => 0,
    }
}

/// Makes this process the reaper of its orphaned descendants (`PR_SET_CHILD_SUBREAPER`).
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(
            error = %io::Error::from(e),
            "cannot become the subreaper of the workers; orphans go to init"
        );
    }
}

/// Reaps every child that has exited but `keep` (the zygote, which its own `Child` reaps);
/// returns their pids. It peeks with `WNOWAIT` first, so `keep` is never reaped here.
pub fn reap_orphans(keep: Option<u32>) -> Vec<u32> {
    use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag};
    let mut reaped = Vec::new();
    loop {
        let peek = waitid(
            Id::All,
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        );
        let Some(pid) = peek.ok().and_then(|status| status.pid()) else {
            return reaped;
        };
        if pid.as_raw() <= 0 || Some(pid.as_raw() as u32) == keep {
            return reaped;
        }
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(status) if status.pid() == Some(pid) => reaped.push(pid.as_raw() as u32),
            _ => return reaped,
        }
    }
}

/// Every descendant of this process (children, their children, …), zombies included, from
/// `/proc`.
pub fn descendants() -> Vec<u32> {
    let me = std::process::id();
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold anything: parse after the last ')'.
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut found = vec![me];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Waits until this process has no descendant left but `keep`, reaping every child that
/// exits (never `keep`), at most `bound`. Returns what is left.
pub fn wait_for_descendants(keep: Option<u32>, bound: Duration) -> Vec<u32> {
    let deadline = Instant::now() + bound;
    loop {
        reap_orphans(keep);
        let mut left = descendants();
        left.retain(|p| Some(*p) != keep);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_child_is_reaped_and_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.05")
            .spawn()
            .expect("start sleep");
        let pid = child.id();
        assert!(descendants().contains(&pid));
        let deadline = Instant::now() + Duration::from_secs(5);
        while descendants().contains(&pid) && Instant::now() < deadline {
            reap_orphans(None);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!descendants().contains(&pid));
        // Reaped here, so std's own wait finds no child.
        assert!(child.try_wait().is_err());
    }

    #[test]
    fn notify_without_a_socket_sends_nothing() {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            assert!(!notify("READY=1"));
        }
        assert!(monotonic_usec() > 0);
    }
}
