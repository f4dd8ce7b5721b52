//! Reading the state of live processes from `/proc`, for `/status`: what the kernel says is in
//! force, not what the configuration asked for.

use std::collections::BTreeMap;

/// The `Key: value` lines of `/proc/<pid>/status`.
pub fn status(pid: u32) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    )
}

/// A process's `/proc/<pid>/schedstat`, kept open: each [`CpuClock::ns`] is one `pread`
/// instead of a path lookup, an open and a close (it is read twice per job).
#[derive(Debug)]
pub struct CpuClock(std::fs::File);

impl CpuClock {
    /// Opens the file of `pid`; `None` when it cannot be opened.
    pub fn open(pid: u32) -> Option<Self> {
        std::fs::File::open(format!("/proc/{pid}/schedstat"))
            .ok()
            .map(CpuClock)
    }

    /// CPU time the process's main thread has used, in nanoseconds: the first field of the
    /// file, read afresh from offset 0 (the kernel renders it on each read). Workers are
    /// single-threaded, so it is the process's. `None` once the process is gone.
    pub fn ns(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        // Three numbers of at most 20 digits each, two spaces and a newline.
        let mut buf = [0u8; 80];
        let n = self.0.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(buf.get(..n)?).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }
}

/// Resident set size in bytes, from a parsed status.
pub fn rss_bytes(status: &BTreeMap<String, String>) -> Option<u64> {
    let kb: u64 = status
        .get("VmRSS")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// A numeric field of a parsed status (`Seccomp`, `NoNewPrivs`, `Threads`, …).
pub fn number(status: &BTreeMap<String, String>, key: &str) -> Option<i64> {
    status.get(key)?.split_whitespace().next()?.parse().ok()
}

/// The namespace a process is in, as the kernel names it (`net:[4026531840]`).
pub fn namespace(pid: Option<u32>, kind: &str) -> Option<String> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/ns/{kind}"),
        None => format!("/proc/self/ns/{kind}"),
    };
    std::fs::read_link(path)
        .ok()
        .map(|p| p.display().to_string())
}

/// The soft limits of `/proc/<pid>/limits` by name (`Max data size` → `1073741824`).
pub fn limits(pid: u32) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/limits")) else {
        return BTreeMap::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            // Columns: name (padded to 26 characters), soft, hard, units.
            let (name, rest) = (l.get(..26)?, l.get(26..)?);
            let soft = rest.split_whitespace().next()?;
            Some((name.trim().to_string(), soft.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let st = status(me).unwrap();
        assert!(rss_bytes(&st).unwrap() > 0);
        assert!(number(&st, "Threads").unwrap() >= 1);
        assert!(namespace(None, "net").unwrap().starts_with("net:["));
        assert!(limits(me).contains_key("Max open files"));
    }
}
