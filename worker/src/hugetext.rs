//! The zygote's machine code, read-only data and relocated read-only data moved into
//! transparent huge pages, which every worker inherits.
//!
//! A fresh worker process runs code the zygote has never run in that process: every page of
//! the binary's code or constants it touches is a page fault, and each fault maps up to 16
//! pages (the kernel's fault-around) that are unmapped again when the worker exits. For an
//! `agent` execution, a process of its own, that was about a quarter of its page faults. Pages
//! the zygote itself holds in small pages cost on every fork too: each is a page table entry
//! the fork copies and the exit clears (the relocated read-only data, written once by the
//! dynamic loader, is 221 of them in today's build). Here the zygote copies each of the three
//! segments into anonymous memory backed by transparent huge pages, and moves each copy over
//! the original addresses with one `mremap(2)`. A forked worker then inherits a handful of
//! huge-page table entries: nothing to fault in, and little to copy or tear down.
//!
//! A huge page covers an aligned 2 MiB block. A segment's blocks are moved whole: where the
//! rest of a block the segment only partly fills is unmapped (the padding between segments
//! that the link options leave, see `supervisor/build.rs`), the copy covers the whole block,
//! the bytes past the segment being zeros; where something else is mapped there, that part of
//! the segment stays as it was.
//!
//! The bytes are the same at the same addresses, so nothing else changes: return addresses,
//! function pointers and symbolisation from the file all stay valid. What changes: the code
//! no longer shows as a mapping of the binary (a profiler that reads `/proc/<pid>/maps` sees
//! anonymous memory there), the padding past a segment reads as zeros instead of faulting,
//! and the zygote holds one private copy (about 36 MiB in today's build) instead of sharing
//! the page cache; its workers share the zygote's copy.
//!
//! It is done only when the kernel gives the copy huge pages: a copy in small pages would
//! make every fork copy thousands of page table entries, so then the copy is dropped and the
//! segment stays mapped as it was. `workers.huge_text_pages = false` turns it off.

use std::io;

/// The size of a huge page (a PMD entry) on the architectures this runs on.
const HUGE: usize = 2 << 20;

/// `MADV_COLLAPSE` (Linux 6.1): collapse the range into huge pages now.
const MADV_COLLAPSE: libc::c_int = 25;

/// A string in the binary's read-only data, whose address finds that segment. The static
/// itself, a pointer the dynamic loader relocates, lies in the relocated read-only data
/// (`.data.rel.ro`), and its address finds that segment.
static READ_ONLY_MARK: &str = "isolate-service read-only data";

/// Moves the binary's code segment, then its read-only data and its relocated read-only data,
/// into transparent huge pages. The zygote calls it once, while single-threaded, before
/// forking any worker. Returns the bytes of huge pages they now lie in (whole 2 MiB blocks,
/// all segments), or why nothing was moved: a failure on the code stops there, and the code
/// stays mapped from the file.
pub fn remap() -> Result<u64, String> {
    // Kernels with other page sizes (64 KiB pages on arm64) have other huge pages.
    let size = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
        .map_err(|e| format!("no transparent huge pages: {e}"))?;
    if size.trim() != HUGE.to_string() {
        return Err(format!(
            "huge pages here are {} bytes, not 2 MiB",
            size.trim()
        ));
    }
    let code = remap as *const () as usize;
    let mut moved = vec![
        move_segment(code, "r-xp", libc::PROT_READ | libc::PROT_EXEC)
            .map_err(|why| format!("code: {why}"))?,
    ];
    // The read-only data is read by every job too (string constants, unwind tables), and the
    // relocated part (vtables, the global offset table) as well; when one cannot move, the
    // code alone still did. A mark inside blocks already moved (a build whose two read-only
    // segments are one) is not moved twice.
    let rodata = READ_ONLY_MARK.as_ptr() as usize;
    let relro = std::ptr::addr_of!(READ_ONLY_MARK) as usize;
    for addr in [rodata, relro] {
        if !moved.iter().any(|blocks| blocks.contains(&addr)) {
            moved.extend(move_segment(addr, "r--p", libc::PROT_READ).ok());
        }
    }
    Ok(moved.iter().map(|blocks| blocks.len() as u64).sum())
}

/// Moves the private mapping with permissions `perms` that holds `addr` into huge pages,
/// which get the protection `prot`: every 2 MiB block it fills, and every block it fills in
/// part whose rest is unmapped. Returns the blocks it now lies in.
fn move_segment(
    addr: usize,
    perms: &str,
    prot: libc::c_int,
) -> Result<std::ops::Range<usize>, String> {
    // Read afresh for each segment: moving one changes the map.
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map_err(|e| format!("cannot read /proc/self/maps: {e}"))?;
    let (start, end) = mapping(&maps, addr, perms).ok_or("the mapping was not found")?;
    let (first, last) = blocks(&maps, start, end).ok_or("it fills no 2 MiB block")?;
    let source = start.max(first)..end.min(last);
    // SAFETY: `source` lies inside a readable private mapping of this process (found above in
    // /proc/self/maps) with protection `prot`, the rest of `first..last` is unmapped
    // (`blocks`), and the process is single-threaded, so nothing maps or unmaps anything
    // meanwhile. `move_over` replaces it with an identical copy atomically.
    unsafe { move_over(first, last - first, source, prot) }?;
    Ok(first..last)
}

/// The `[start, end)` of the private mapping with permissions `perms` in `maps` (the text of
/// `/proc/self/maps`) that contains `addr`.
fn mapping(maps: &str, addr: usize, perms: &str) -> Option<(usize, usize)> {
    mappings(maps).find_map(|m| {
        (m.perms == perms && m.start <= addr && addr < m.end).then_some((m.start, m.end))
    })
}

/// One line of `/proc/<pid>/maps`.
pub(crate) struct Mapping<'a> {
    /// The first address.
    pub start: usize,
    /// The address past the last.
    pub end: usize,
    /// `r-xp` and the like.
    pub perms: &'a str,
    /// The path or pseudo-name (`[stack]`, `[heap]`); empty for anonymous memory.
    pub name: &'a str,
}

/// Every mapping in `maps` (the text of `/proc/<pid>/maps`); lines that do not parse are
/// skipped.
pub(crate) fn mappings(maps: &str) -> impl Iterator<Item = Mapping<'_>> {
    maps.lines().filter_map(|line| {
        let mut fields = line.split_whitespace();
        let (range, perms) = (fields.next()?, fields.next()?);
        let (a, b) = range.split_once('-')?;
        Some(Mapping {
            start: usize::from_str_radix(a, 16).ok()?,
            end: usize::from_str_radix(b, 16).ok()?,
            perms,
            // After the offset, the device and the inode.
            name: fields.nth(3).unwrap_or(""),
        })
    })
}

/// Whether no mapping in `maps` overlaps `[from, to)`.
fn unmapped(maps: &str, from: usize, to: usize) -> bool {
    from >= to || mappings(maps).all(|m| m.end <= from || to <= m.start)
}

/// `addr` rounded up to a 2 MiB boundary (`None` past the end of the address space).
fn align_up(addr: usize) -> Option<usize> {
    Some(addr.checked_add(HUGE - 1)? & !(HUGE - 1))
}

/// `addr` rounded down to a 2 MiB boundary.
fn align_down(addr: usize) -> usize {
    addr & !(HUGE - 1)
}

/// The 2 MiB-aligned `[first, last)` to move for the mapping `[start, end)` of `maps`: the
/// blocks it fills, widened to a partly filled block at either end when the rest of that block
/// is unmapped. `None` when that is no block at all.
fn blocks(maps: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let down = align_down(start);
    let first = if unmapped(maps, down, start) {
        down
    } else {
        align_up(start)?
    };
    let up = align_up(end)?;
    let last = if unmapped(maps, end, up) {
        up
    } else {
        align_down(end)
    };
    (last > first).then_some((first, last))
}

/// The `AnonHugePages` of this process's mapping starting at `addr`, in bytes.
fn huge_bytes_at(addr: usize) -> io::Result<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    anon_huge_bytes(&smaps, addr)
}

/// The `AnonHugePages` of the mapping starting at `addr` in `smaps` (the text of
/// `/proc/<pid>/smaps`), in bytes; 0 when there is no such mapping.
fn anon_huge_bytes(smaps: &str, addr: usize) -> io::Result<u64> {
    let head = format!("{addr:x}-");
    let mut inside = false;
    for line in smaps.lines() {
        if line.starts_with(|c: char| c.is_ascii_hexdigit()) && line.contains('-') {
            // A mapping's header line: `start-end perms offset dev inode path`.
            inside = line.starts_with(&head);
        } else if inside {
            if let Some(kb) = line.strip_prefix("AnonHugePages:") {
                let kb = kb.trim().trim_end_matches("kB").trim();
                return kb
                    .parse::<u64>()
                    .map(|k| k * 1024)
                    .map_err(io::Error::other);
            }
        }
    }
    Ok(0)
}

/// An anonymous mapping of this process that is unmapped on drop unless it was
/// [`Scratch::keep`]: the copy of the code while it is being made.
struct Scratch {
    addr: usize,
    len: usize,
}

impl Scratch {
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: `addr..addr + len` is a mapping this module made and nothing else uses.
            unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
        }
    }
}

/// Maps `len` bytes of huge pages with the protection `prot`, copies the bytes of `source`
/// into them at the same offsets from `start` (both 2 MiB-aligned) as they have there, and
/// moves the copy over `start..start + len`.
///
/// # Safety
/// `source` must lie inside `start..start + len`, be mapped readable with the protection
/// `prot`, and the rest of `start..start + len` must be unmapped; no other thread may change
/// this process's mappings meanwhile.
unsafe fn move_over(
    start: usize,
    len: usize,
    source: std::ops::Range<usize>,
    prot: libc::c_int,
) -> Result<(), String> {
    let fail = |what: &str| format!("{what}: {}", io::Error::last_os_error());
    // SAFETY: a new anonymous mapping, placed by the kernel, one block longer than needed so
    // that a 2 MiB-aligned range of `len` bytes lies inside it.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len + HUGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err(fail("mmap"));
    }
    let raw = raw as usize;
    // The kernel placed `len + HUGE` bytes at `raw`, so rounding up cannot overflow.
    let copy = align_up(raw).unwrap_or(raw);
    // The slack on both sides of the aligned range goes at once; only the copy is left.
    drop(Scratch {
        addr: raw,
        len: copy - raw,
    });
    drop(Scratch {
        addr: copy + len,
        len: raw + HUGE - copy,
    });
    let scratch = Scratch { addr: copy, len };
    if copy < start + len && start < copy + len {
        // The kernel cannot place it over the mapped source, only in the unmapped rest of the
        // blocks, which is shorter than `len`: this is a guard, not a path.
        return Err("the copy was placed over the blocks it is for".into());
    }
    let ptr = copy as *mut libc::c_void;
    // SAFETY: `ptr..ptr + len` is the scratch mapping, ours alone.
    if unsafe { libc::madvise(ptr, len, libc::MADV_HUGEPAGE) } != 0 {
        return Err(fail("madvise(MADV_HUGEPAGE)"));
    }
    // SAFETY: the source is readable (the caller's promise), the destination lies inside the
    // writable scratch mapping (`source` lies inside `start..start + len`); the two do not
    // overlap (checked above).
    unsafe {
        std::ptr::copy_nonoverlapping(
            source.start as *const u8,
            (copy + (source.start - start)) as *mut u8,
            source.len(),
        )
    };
    let mut huge = huge_bytes_at(copy).unwrap_or(0);
    if huge < len as u64 {
        // The first touch got small pages (memory too fragmented at that moment, say): ask
        // the kernel to collapse them now. A kernel before 6.1 refuses, and the copy goes.
        // SAFETY: as for MADV_HUGEPAGE above; collapsing keeps the contents.
        unsafe { libc::madvise(ptr, len, MADV_COLLAPSE) };
        huge = huge_bytes_at(copy).unwrap_or(0);
    }
    if huge < len as u64 {
        return Err(format!(
            "the kernel gave {} of {} KiB in huge pages (transparent huge pages off?)",
            huge / 1024,
            len / 1024
        ));
    }
    // SAFETY: the scratch mapping, ours alone, gets the protection of the original.
    if unsafe { libc::mprotect(ptr, len, prot) } != 0 {
        return Err(fail("mprotect"));
    }
    // One system call replaces the original mapping with the copy: these addresses hold the
    // same bytes before and after, including the code making this call.
    // SAFETY: moves the scratch mapping over `start..start + len`, whose mapped part holds the
    // same bytes and whose rest is unmapped (the caller's promises; nothing else changes the
    // mappings meanwhile).
    let moved = unsafe {
        libc::mremap(
            ptr,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            start as *mut libc::c_void,
        )
    };
    if moved == libc::MAP_FAILED {
        return Err(fail("mremap"));
    }
    // The pages now live at `start`; nothing is left at `copy` to unmap.
    scratch.keep();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0000000-55d0c080e000 r--p 00000000 fe:00 42 /usr/bin/isolate-service
55d0c080f000-55d0c1faa000 r-xp 0080f000 fe:00 42 /usr/bin/isolate-service
7f0000000000-7f0000100000 r-xp 00026000 fe:00 7 /usr/lib/libc.so.6
";

    #[test]
    fn the_mapping_is_the_one_with_those_permissions_holding_the_address() {
        assert_eq!(
            mapping(MAPS, 0x55d0_c100_0000, "r-xp"),
            Some((0x55d0_c080_f000, 0x55d0_c1fa_a000))
        );
        assert_eq!(
            mapping(MAPS, 0x7f00_0000_0010, "r-xp"),
            Some((0x7f00_0000_0000, 0x7f00_0010_0000))
        );
        assert_eq!(
            mapping(MAPS, 0x55d0_c000_1000, "r--p"),
            Some((0x55d0_c000_0000, 0x55d0_c080_e000))
        );
        // Other permissions than asked, or outside every mapping: none.
        assert_eq!(mapping(MAPS, 0x55d0_c000_1000, "r-xp"), None);
        assert_eq!(mapping(MAPS, 0x55d0_c100_0000, "r--p"), None);
        assert_eq!(mapping(MAPS, 0x1000, "r-xp"), None);
        assert_eq!(mapping("garbage\n\nx-y r-xp", 0x1000, "r-xp"), None);
    }

    #[test]
    fn the_huge_pages_of_a_mapping_are_read_from_smaps() {
        let smaps = "\
7f0000000000-7f0000400000 rw-p 00000000 00:00 0 
Size:               4096 kB
AnonHugePages:      2048 kB
7f0000400000-7f0000800000 r-xp 00000000 00:00 0 
Size:               4096 kB
AnonHugePages:      4096 kB
";
        assert_eq!(anon_huge_bytes(smaps, 0x7f00_0000_0000).unwrap(), 2 << 20);
        assert_eq!(anon_huge_bytes(smaps, 0x7f00_0040_0000).unwrap(), 4 << 20);
        assert_eq!(anon_huge_bytes(smaps, 0x7f00_0080_0000).unwrap(), 0);
        assert!(anon_huge_bytes(
            "7f0000000000-7f0000400000 r\nAnonHugePages: x kB\n",
            0x7f00_0000_0000
        )
        .is_err());
    }

    #[test]
    fn blocks_widen_into_unmapped_padding_but_never_over_a_neighbour() {
        // Today's layout: every segment starts on a 2 MiB boundary, and the padding up to the
        // next one is unmapped, so each segment moves in whole blocks, its last one included.
        let linked = "\
56501e400000-56501ec14000 r--p 00000000 fe:00 42 /usr/bin/isolate-service
56501ee00000-5650205af000 r-xp 00a00000 fe:00 42 /usr/bin/isolate-service
565020600000-5650206dd000 r--p 02200000 fe:00 42 /usr/bin/isolate-service
5650208dc000-5650208e1000 rw-p 022dc000 fe:00 42 /usr/bin/isolate-service
";
        let base = 0x5650_1e40_0000;
        let at = |start, end| blocks(linked, base + start, base + end);
        assert_eq!(at(0, 0x81_4000), Some((base, base + 0xa0_0000)));
        assert_eq!(
            at(0xa0_0000, 0x21a_f000),
            Some((base + 0xa0_0000, base + 0x220_0000))
        );
        assert_eq!(
            at(0x220_0000, 0x22d_d000),
            Some((base + 0x220_0000, base + 0x240_0000))
        );
        // Packed segments: the blocks shared with a neighbour stay as they are.
        assert_eq!(
            blocks(MAPS, 0x55d0_c080_f000, 0x55d0_c1fa_a000),
            Some((0x55d0_c0a0_0000, 0x55d0_c200_0000))
        );
        assert_eq!(
            blocks(MAPS, 0x55d0_c000_0000, 0x55d0_c080_e000),
            Some((0x55d0_c000_0000, 0x55d0_c080_0000))
        );
        // Neighbours on both sides of a mapping within one block: nothing to move.
        let packed = "\
200000-201000 rw-p 0 0:0 0
201000-3ff000 r-xp 0 0:0 0
3ff000-400000 rw-p 0 0:0 0
";
        assert_eq!(blocks(packed, 0x20_1000, 0x3f_f000), None);
        assert_eq!(blocks(packed, 0x20_0000, 0x20_1000), None);
        assert_eq!(blocks("", usize::MAX - 10, usize::MAX), None);
    }

    #[test]
    fn a_range_is_unmapped_when_no_mapping_overlaps_it() {
        assert!(unmapped(MAPS, 0x55d0_c080_e000, 0x55d0_c080_f000));
        assert!(!unmapped(MAPS, 0x55d0_c080_d000, 0x55d0_c080_f000));
        assert!(!unmapped(MAPS, 0x55d0_c080_e000, 0x55d0_c081_0000));
        // Empty ranges overlap nothing, even inside a mapping.
        assert!(unmapped(MAPS, 0x55d0_c000_1000, 0x55d0_c000_1000));
        assert!(unmapped("", 0, usize::MAX));
    }
}
