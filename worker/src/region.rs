//! Memory regions that a prepared JavaScript runtime lives in, so that it can be put back to
//! the state it was prepared in with one copy instead of being freed and built again.
//!
//! Building a runtime and context for a preset (intrinsics, the frozen prototypes, the host
//! objects) costs several times what a typical job does, and freeing one costs a quarter of
//! that again. Here a runtime is built once inside a [`Slot`]: a fixed range of address space
//! with its own allocator (dlmalloc, whose state lives at the slot's start). Everything the
//! runtime holds is in the slot: QuickJS's memory through [`SlotAllocator`], and every Rust
//! allocation made while the slot is [entered](Slot::enter) through [`Routing`], the process's
//! global allocator, which sends allocations to the entered slot and frees any block in the
//! slot it belongs to. A [`Snapshot`] is a copy of the slot's used bytes, allocator state
//! included; [`Slot::restore`] copies it back, which leaves the runtime exactly as it was
//! when the snapshot was taken: every object, reference count and free list. Nothing outside
//! the slot may then point into memory the job allocated, which is why only the engine's own
//! work runs inside it (see `js::Pristine`).
//!
//! Slots are carved out of one reservation of address space, mapped `PROT_NONE`, that is
//! made writable page by page as the allocator grows, so the `RLIMIT_DATA` of a worker counts
//! what a slot really uses. A worker inherits the zygote's slots (the same addresses) when
//! it is forked. Without the reservation (an address-space limit, say), or without
//! [`Routing`] installed as the global allocator, [`Slot::new`] answers `None` and runtimes
//! are built and freed per job as before.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::ptr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Address space per slot, the most one runtime (a job's heap included) can grow to: the first
/// of these sizes whose reservation the kernel grants (some arm64 kernels give a process only
/// 512 GiB of address space in all).
const SLOT_SIZES: [usize; 4] = [16 << 30, 4 << 30, 1 << 30, 256 << 20];
/// Slots in the reservation (a bit each in [`FREE`]): a worker uses one per preset and one of
/// its own.
const SLOTS: usize = 16;
/// Memory a job grew the slot by beyond its snapshot that a restore keeps resident for the
/// next job; anything more is given back to the kernel, so that an idle worker holds little
/// more than its runtimes (the C library's allocator gives back the top of its heap past 128
/// KiB the same way). A typical job's new blocks fit in it.
const KEEP_WARM: usize = 64 << 10;
/// The least a slot makes writable at a time when it grows.
const COMMIT_STEP: usize = 1 << 20;
/// How much a slot's allocator asks for at a time (dlmalloc's default is 64 KiB).
const GRANULARITY: usize = 16 << 10;
/// The alignment of every dlmalloc block (two words), which is also the size of the header
/// [`SlotAllocator`] puts before each block it hands to QuickJS, keeping that alignment.
const MALLOC_ALIGN: usize = 2 * std::mem::size_of::<usize>();

/// Start of the reservation; 0 until made, `usize::MAX` once it failed.
static BASE: AtomicUsize = AtomicUsize::new(0);
/// The size of each slot in the reservation (one of [`SLOT_SIZES`]).
static SLOT_BYTES: AtomicUsize = AtomicUsize::new(0);
/// A set bit is a slot nobody owns.
static FREE: AtomicU64 = AtomicU64::new((1 << SLOTS) - 1);
/// Per slot, the end of the memory it ever made writable (to give back when released).
static COMMITTED: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];

thread_local! {
    /// The slot this thread's Rust allocations go to; null for the C library's allocator.
    static CURRENT: Cell<*mut Header> = const { Cell::new(ptr::null_mut()) };
}

/// The global allocator of a binary that hosts workers: the C library's allocator, except
/// while the calling thread has entered a [`Slot`] (then the slot's). Freeing looks at the
/// address, so a block is always returned to the allocator it came from. Outside an entered
/// slot it costs one thread-local read per allocation and one range check per free.
pub struct Routing;

// SAFETY: blocks come from `System` or from a slot's dlmalloc, both of which honour the
// layout's size and alignment; every free and reallocation goes back to the allocator the
// address belongs to (a slot's range or not), and a slot is only used by the thread that
// entered it (workers and the zygote are single-threaded; a slot never crosses threads).
unsafe impl GlobalAlloc for Routing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match current() {
            // SAFETY: an entered slot is live and used by this thread only.
            Some(h) => unsafe { (*h).heap.c_memalign(layout.align(), layout.size()) },
            // SAFETY: forwarded with the caller's valid layout.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match header_of(ptr) {
            // SAFETY: `ptr` lies in a live slot, so its dlmalloc handed it out.
            Some(h) => unsafe { (*h).heap.c_free(ptr) },
            // SAFETY: not in any slot, so `System` allocated it with this layout.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let from = header_of(ptr);
        let to = current();
        match (from, to) {
            // SAFETY: a block of this slot's dlmalloc; its natural alignment is enough.
            (Some(h), Some(t)) if h == t && layout.align() <= MALLOC_ALIGN => unsafe {
                (*h).heap.c_realloc(ptr, new_size)
            },
            // SAFETY: a `System` block with this layout.
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            _ => {
                // Between allocators (or over-aligned): a new block, a copy, a free.
                // SAFETY: `new_size` with the old alignment is a valid layout (the caller's
                // contract), and both blocks are at least `min(old, new)` bytes long.
                unsafe {
                    let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                    let grown = self.alloc(new_layout);
                    if !grown.is_null() {
                        ptr::copy_nonoverlapping(ptr, grown, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    grown
                }
            }
        }
    }
}

/// The slot the calling thread has entered.
fn current() -> Option<*mut Header> {
    let h = CURRENT.with(Cell::get);
    (!h.is_null()).then_some(h)
}

/// The header of the slot `ptr` lies in, if it lies in one.
fn header_of(ptr: *mut u8) -> Option<*mut Header> {
    let base = BASE.load(Ordering::Acquire);
    let offset = (ptr as usize).wrapping_sub(base);
    let slot = SLOT_BYTES.load(Ordering::Relaxed);
    if base == 0 || base == usize::MAX || offset >= SLOTS * slot {
        return None;
    }
    Some((base + offset / slot * slot) as *mut Header)
}

/// What sits at the start of every slot: its allocator, whose state (bins, segments, the
/// pages handed out) is copied with the rest of the slot.
struct Header {
    heap: dlmalloc::Dlmalloc<Pages>,
}

/// The "system" under a slot's dlmalloc: pages of the slot, made writable in order.
struct Pages {
    /// Index of the slot (for [`COMMITTED`]).
    index: usize,
    /// The next page to hand out.
    next: Cell<usize>,
    /// The slot's first byte.
    start: usize,
    /// The end of the slot.
    end: usize,
}

// SAFETY: `alloc` hands out each page range once, writable and inside the slot; nothing is
// ever given back (the slot is released whole), which `free`, `free_part` and
// `can_release_part` answer; pages may hold old data (`allocates_zeros` is false).
unsafe impl dlmalloc::Allocator for Pages {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        let start = self.next.get();
        let len = align_up(size, page_size());
        let Some(end) = start.checked_add(len).filter(|&e| e <= self.end) else {
            return (ptr::null_mut(), 0, 0);
        };
        let committed = &COMMITTED[self.index];
        let have = committed.load(Ordering::Relaxed);
        if end > have {
            // Made writable ahead, by an eighth of what the slot holds (at least `COMMIT_STEP`),
            // so that a job growing its heap to many megabytes costs few system calls; exactly
            // what is needed when that much is refused (near RLIMIT_DATA).
            let ahead = align_up(COMMIT_STEP.max((have - self.start) / 8), page_size());
            let wanted = end.max(have.saturating_add(ahead)).min(self.end);
            let writable = |to: usize| {
                // SAFETY: pages of this slot's reservation above what is writable, which only
                // this slot uses.
                let rc = unsafe {
                    libc::mprotect(
                        have as *mut libc::c_void,
                        to - have,
                        libc::PROT_READ | libc::PROT_WRITE,
                    )
                };
                rc == 0
            };
            if writable(wanted) {
                committed.store(wanted, Ordering::Relaxed);
            } else if writable(end) {
                committed.store(end, Ordering::Relaxed);
            } else {
                // Over RLIMIT_DATA, typically: the allocation fails, the job sees it.
                return (ptr::null_mut(), 0, 0);
            }
        }
        self.next.set(end);
        (start as *mut u8, len, 0)
    }

    fn remap(&self, _: *mut u8, _: usize, _: usize, _: bool) -> *mut u8 {
        ptr::null_mut()
    }

    fn free_part(&self, _: *mut u8, _: usize, _: usize) -> bool {
        false
    }

    fn free(&self, _: *mut u8, _: usize) -> bool {
        false
    }

    fn can_release_part(&self, _: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        false
    }

    fn page_size(&self) -> usize {
        page_size()
    }
}

/// The kernel's page size (4 KiB on x86-64; 4, 16 or 64 KiB on arm64), which every
/// `mprotect` of a slot is aligned to.
fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    match PAGE.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: sysconf only reads a system constant.
            let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
                .ok()
                .filter(|p| p.is_power_of_two())
                .unwrap_or(4096);
            PAGE.store(page, Ordering::Relaxed);
            page
        }
        page => page,
    }
}

fn align_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Makes the reservation, once per process (a forked worker inherits it). Answers its base.
fn reservation() -> Option<usize> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let base = BASE.load(Ordering::Acquire);
    if base == usize::MAX {
        return None;
    }
    if base != 0 {
        return Some(base);
    }
    for slot in SLOT_SIZES {
        // SAFETY: a fresh anonymous mapping at an address the kernel picks; nothing is
        // replaced. `PROT_NONE` memory counts toward no limit but the address space's.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                SLOTS * slot,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if addr != libc::MAP_FAILED {
            SLOT_BYTES.store(slot, Ordering::Relaxed);
            BASE.store(addr as usize, Ordering::Release);
            return Some(addr as usize);
        }
    }
    BASE.store(usize::MAX, Ordering::Relaxed);
    None
}

/// Whether [`Routing`] is the global allocator: a box made inside `header`'s slot lands in it.
fn routing_installed(header: *mut Header) -> bool {
    let previous = CURRENT.with(|c| c.replace(header));
    let probe = Box::new(0u64);
    let inside = header_of(ptr::from_ref(&*probe).cast_mut().cast()) == Some(header);
    drop(probe);
    CURRENT.with(|c| c.set(previous));
    inside
}

/// One slot: a range of address space with its own allocator, owned by one thread.
pub struct Slot {
    index: usize,
    header: *mut Header,
}

impl Slot {
    /// Takes a free slot and sets up its allocator. `None` when slots are not available in
    /// this process (no reservation, [`Routing`] not installed, all slots taken).
    pub fn new() -> Option<Slot> {
        let base = reservation()?;
        let index = loop {
            let free = FREE.load(Ordering::Relaxed);
            if free == 0 {
                return None;
            }
            let i = free.trailing_zeros() as usize;
            if FREE
                .compare_exchange(free, free & !(1 << i), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                break i;
            }
        };
        let slot_bytes = SLOT_BYTES.load(Ordering::Relaxed);
        let start = base + index * slot_bytes;
        let first = align_up(std::mem::size_of::<Header>(), page_size());
        // SAFETY: the first pages of this slot, which nobody else uses.
        let rc = unsafe {
            libc::mprotect(
                start as *mut libc::c_void,
                first,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        let slot = Slot {
            index,
            header: start as *mut Header,
        };
        if rc != 0 {
            return None;
        }
        COMMITTED[index].store(start + first, Ordering::Relaxed);
        let pages = Pages {
            index,
            next: Cell::new(start + first),
            start,
            end: start + slot_bytes,
        };
        let mut heap = dlmalloc::Dlmalloc::new_with_allocator(pages);
        // Pages are handed out in steps of this size: a snapshot copies up to the last one.
        heap.set_granularity(GRANULARITY);
        // SAFETY: the header's pages were just made writable; the slot is ours alone.
        unsafe { slot.header.write(Header { heap }) };
        if !routing_installed(slot.header) {
            // Not this binary's global allocator: it never will be, so no slot is tried again.
            BASE.store(usize::MAX, Ordering::Relaxed);
            return None;
        }
        Some(slot)
    }

    /// Sends this thread's Rust allocations to this slot until the guard is dropped.
    pub fn enter(&self) -> Entered {
        Entered(CURRENT.with(|c| c.replace(self.header)))
    }

    /// The allocator QuickJS takes its memory from in this slot.
    pub fn allocator(&self) -> SlotAllocator {
        SlotAllocator(self.header)
    }

    /// Copies the slot's used bytes (its allocator's state included) into memory of its own.
    pub fn snapshot(&self) -> Snapshot {
        let _outside = outside();
        let len = self.used();
        let mut bytes = Vec::with_capacity(len);
        // SAFETY: `len` bytes from the slot's start are writable memory of this slot, and
        // the vector has room for them.
        unsafe {
            ptr::copy_nonoverlapping(self.header.cast::<u8>(), bytes.as_mut_ptr(), len);
            bytes.set_len(len);
        }
        Snapshot {
            bytes: Bytes::Heap(bytes),
        }
    }

    /// [`Slot::snapshot`] for a process that forks (the zygote): the bytes go into a memory
    /// file, mapped read-only, and the slot's own pages become private pages of that file too
    /// (same contents). A fork copies page tables for none of them (they are file pages, not
    /// anonymous ones), and a child reads them from the page cache on first touch and copies
    /// a page only when it writes to it. A child that writes cannot reach another's pages:
    /// the mappings are private, the file is never mapped shared, and its descriptor is closed
    /// here. Falls back to [`Slot::snapshot`] when the file cannot be made. Needs
    /// `memfd_create(2)`, which workers are not allowed: only for the zygote.
    pub fn snapshot_to_file(&self) -> Snapshot {
        let _outside = outside();
        let len = self.used();
        // SAFETY: `len` bytes from the slot's start are initialised memory of this slot.
        let bytes = unsafe { std::slice::from_raw_parts(self.header.cast::<u8>(), len) };
        let mapped = (|| -> Option<*mut libc::c_void> {
            // SAFETY: a plain system call with a NUL-terminated name.
            let fd = unsafe { libc::memfd_create(c"isolate-runtime".as_ptr(), libc::MFD_CLOEXEC) };
            if fd < 0 {
                return None;
            }
            // SAFETY: a descriptor memfd_create just returned, owned here alone.
            let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
            file.write_all(bytes).ok()?;
            let fd = file.as_raw_fd();
            // SAFETY: a new read-only private mapping of the whole file, where the kernel
            // picks.
            let copy = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    fd,
                    0,
                )
            };
            if copy == libc::MAP_FAILED {
                return None;
            }
            // SAFETY: the slot's first `len` bytes, replaced by a private mapping of a file
            // that holds exactly those bytes; nothing runs in between (single thread).
            let slot = unsafe {
                libc::mmap(
                    self.header.cast(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    fd,
                    0,
                )
            };
            if slot == libc::MAP_FAILED {
                // SAFETY: the mapping made above, used by nothing.
                unsafe { libc::munmap(copy, len) };
                return None;
            }
            // Mapped in the zygote too, the snapshot's pages count as shared in every worker
            // that reads them, not as its own. (A fork copies no page-table entries of a file
            // mapping, so this costs forks nothing.)
            for page in (0..len).step_by(page_size()) {
                // SAFETY: inside the read-only mapping made above.
                unsafe { ptr::read_volatile(copy.cast::<u8>().add(page)) };
            }
            Some(copy)
        })();
        match mapped {
            Some(copy) => Snapshot {
                bytes: Bytes::Mapped(copy.cast(), len),
            },
            None => self.snapshot(),
        }
    }

    /// Puts the slot back to `snapshot` (which must be of this slot). Everything allocated
    /// in the slot since is gone: nothing may still point at it. Memory the slot grew by
    /// beyond [`KEEP_WARM`] is given back to the kernel (it stays reserved and writable).
    pub fn restore(&self, snapshot: &Snapshot) {
        let grown_to = self.used();
        let bytes = snapshot.bytes();
        let len = bytes.len();
        // SAFETY: the snapshot is at most as long as the slot's writable memory was when it
        // was taken (the slot only grows), and no reference into the slot is held across
        // this call (the caller's contract).
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.header.cast(), len) };
        let start = self.header as usize;
        let keep = start + len + KEEP_WARM;
        if grown_to > keep - start {
            // SAFETY: pages of this slot above everything the restored allocator knows of.
            unsafe {
                libc::madvise(
                    keep as *mut libc::c_void,
                    start + grown_to - keep,
                    libc::MADV_DONTNEED,
                )
            };
        }
    }

    /// Bytes from the slot's start to the end of the pages its allocator has handed out.
    fn used(&self) -> usize {
        // SAFETY: the header is live and not borrowed elsewhere (single thread).
        let next = unsafe { (*self.header).heap.allocator().next.get() };
        next - self.header as usize
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let start = self.header as usize;
        let committed = COMMITTED[self.index].swap(0, Ordering::Relaxed);
        if committed > start {
            // The slot's pages (anonymous or a snapshot file's) are replaced by reserved
            // address space again, which frees them.
            // SAFETY: this slot's range; nothing refers to it any more (the owner of the slot
            // drops it last, see `js::Pristine`).
            unsafe {
                libc::mmap(
                    start as *mut libc::c_void,
                    committed - start,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
        }
        FREE.fetch_or(1 << self.index, Ordering::AcqRel);
    }
}

/// A copy of a slot's used bytes, from [`Slot::snapshot`] or [`Slot::snapshot_to_file`].
pub struct Snapshot {
    bytes: Bytes,
}

/// Where a snapshot's bytes are.
enum Bytes {
    /// In the process's heap.
    Heap(Vec<u8>),
    /// In a read-only private mapping of a memory file: address and length.
    Mapped(*const u8, usize),
}

impl Snapshot {
    fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Heap(v) => v,
            // SAFETY: a live read-only mapping of `len` bytes, unmapped only on drop.
            Bytes::Mapped(ptr, len) => unsafe { std::slice::from_raw_parts(*ptr, *len) },
        }
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Whether it is empty (it never is: the allocator's state is in it).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if let Bytes::Mapped(ptr, len) = self.bytes {
            // SAFETY: the snapshot's own mapping, which nothing else refers to.
            unsafe { libc::munmap(ptr.cast_mut().cast(), len) };
        }
    }
}

/// While alive, this thread's Rust allocations go to a slot (see [`Slot::enter`]); dropping
/// it goes back to what was before.
pub struct Entered(*mut Header);

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Sends this thread's Rust allocations to the C library's allocator until the guard is
/// dropped, inside an entered slot too: for work whose allocations must outlive a restore
/// (a lazily built table of a library, say).
pub fn outside() -> Entered {
    Entered(CURRENT.with(|c| c.replace(ptr::null_mut())))
}

/// QuickJS's allocator in a slot: dlmalloc blocks with a two-word header that holds the size
/// asked for (QuickJS asks a block's size back, to count its heap).
pub struct SlotAllocator(*mut Header);

impl SlotAllocator {
    fn heap(&mut self) -> &mut dlmalloc::Dlmalloc<Pages> {
        // SAFETY: the slot outlives every runtime built in it (see `js::Pristine`), and only
        // its thread calls in, one call at a time.
        unsafe { &mut (*self.0).heap }
    }

    /// A block of `size` bytes after its header, or null.
    fn finish(block: *mut u8, size: usize) -> *mut u8 {
        if block.is_null() {
            return block;
        }
        // SAFETY: the block is `size + MALLOC_ALIGN` bytes long and `MALLOC_ALIGN`-aligned.
        unsafe {
            block.cast::<usize>().write(size);
            block.add(MALLOC_ALIGN)
        }
    }
}

// SAFETY: blocks are `MALLOC_ALIGN`-aligned (dlmalloc's alignment plus a header of that
// size), at least `size` bytes long, and `usable_size` answers the size recorded in the header, which is at
// most the block's length.
unsafe impl rquickjs::allocator::Allocator for SlotAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let Some(total) = size.checked_add(MALLOC_ALIGN) else {
            return ptr::null_mut();
        };
        // SAFETY: any size may be asked for; null on failure.
        let block = unsafe { self.heap().c_malloc(total) };
        Self::finish(block, size)
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(bytes) = count.checked_mul(size) else {
            return ptr::null_mut();
        };
        let ptr = self.alloc(bytes);
        if !ptr.is_null() {
            // SAFETY: a fresh block of `bytes` bytes.
            unsafe { ptr::write_bytes(ptr, 0, bytes) };
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: `ptr` came from `alloc`, so its block starts one header earlier.
        unsafe { self.heap().c_free(ptr.sub(MALLOC_ALIGN)) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        let Some(total) = new_size.checked_add(MALLOC_ALIGN) else {
            return ptr::null_mut();
        };
        // SAFETY: `ptr` came from `alloc`; on failure the old block stays valid.
        let block = unsafe { self.heap().c_realloc(ptr.sub(MALLOC_ALIGN), total) };
        Self::finish(block, new_size)
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        if ptr.is_null() {
            return 0;
        }
        // SAFETY: `ptr` came from `alloc`, which wrote the size just before it.
        unsafe { ptr.sub(MALLOC_ALIGN).cast::<usize>().read() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allocations follow the entered slot, frees and growth follow the address, and a
    /// restore brings back the bytes (allocator state included) of the snapshot.
    #[test]
    fn allocations_follow_the_slot_and_a_restore_undoes_them() {
        let slot = Slot::new().expect("a slot (the unit tests install Routing)");
        let inside = |p: *const u8| header_of(p.cast_mut()) == Some(slot.header);
        let kept = {
            let _in = slot.enter();
            let mut v: Vec<u8> = Vec::with_capacity(16);
            v.extend_from_slice(b"prepared");
            v
        };
        assert!(inside(kept.as_ptr()));
        let outside_box = Box::new(7u64);
        assert!(!inside(ptr::from_ref(&*outside_box).cast()));
        let snapshot = slot.snapshot();
        let first_after = {
            let _in = slot.enter();
            let block = Box::new([3u8; 48]);
            let at = ptr::from_ref(&*block) as usize;
            std::mem::forget(block);
            at
        };
        let grown = {
            let _in = slot.enter();
            // Moved into the slot by a reallocation made inside it.
            let mut moved = outside_box.to_string().into_bytes();
            moved.reserve(1 << 20);
            assert!(inside(moved.as_ptr()));
            let big = vec![1u8; 8 << 20];
            assert!(inside(big.as_ptr()));
            drop(big);
            moved
        };
        // Freed outside the slot, by address.
        drop(grown);
        slot.restore(&snapshot);
        assert_eq!(kept, b"prepared");
        // The restored allocator is the snapshot's: it hands out the same block again (its
        // state has forgotten the one made after the snapshot), and the kept block is intact.
        let _in = slot.enter();
        let same = Box::new([4u8; 48]);
        assert_eq!(ptr::from_ref(&*same) as usize, first_after);
        drop(same);
        let again = vec![2u8; 1 << 20];
        assert!(inside(again.as_ptr()));
        assert_eq!(kept, b"prepared");
        drop(again);
        std::mem::forget(kept);
    }
}
