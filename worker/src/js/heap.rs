//! The allocator behind every JavaScript runtime, counted, so that a job's peak heap can be
//! reported (`usage.heapPeakBytes`): a slot's allocator (see `crate::region`) or, where slots
//! are not available, the C library's `malloc`.
//!
//! QuickJS takes memory from it in arenas (for small objects) and single blocks (for large
//! ones), so the count is the memory the runtime holds from the system, arenas' free space
//! included: what the job really cost the process. QuickJS still enforces the job's memory
//! limit itself, on top of this allocator.

use std::cell::Cell;
use std::rc::Rc;

use rquickjs::allocator::Allocator;

/// The current and the peak bytes one runtime holds; cloned into its allocator.
#[derive(Clone, Default)]
pub struct HeapMeter(Rc<Counts>);

#[derive(Default)]
struct Counts {
    current: Cell<usize>,
    peak: Cell<usize>,
}

impl HeapMeter {
    /// Starts a new peak from what the runtime holds now (a job begins).
    pub fn restart(&self) {
        self.0.peak.set(self.0.current.get());
    }

    /// The most bytes held since the last [`HeapMeter::restart`].
    pub fn peak(&self) -> usize {
        self.0.peak.get()
    }

    fn add(&self, bytes: usize) {
        let now = self.0.current.get().saturating_add(bytes);
        self.0.current.set(now);
        if now > self.0.peak.get() {
            self.0.peak.set(now);
        }
    }

    fn sub(&self, bytes: usize) {
        self.0
            .current
            .set(self.0.current.get().saturating_sub(bytes));
    }
}

/// An allocator whose blocks are counted into a [`HeapMeter`]: the C library's `malloc`
/// ([`Malloc`]) or a slot's (`region::SlotAllocator`).
pub struct Counting<A>(pub HeapMeter, pub A);

// SAFETY: every call is forwarded to `A` unchanged; only the counts are added.
unsafe impl<A: Allocator> Allocator for Counting<A> {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let ptr = self.1.alloc(size);
        // SAFETY: null or a block `A` just handed out.
        self.0.add(unsafe { Self::usable_size(ptr) });
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let ptr = self.1.calloc(count, size);
        // SAFETY: null or a block `A` just handed out.
        self.0.add(unsafe { Self::usable_size(ptr) });
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        // SAFETY: the caller passes a block of this allocator (or null).
        self.0.sub(unsafe { Self::usable_size(ptr) });
        // SAFETY: as above.
        unsafe { self.1.dealloc(ptr) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block of this allocator or null.
        let old = unsafe { Self::usable_size(ptr) };
        // SAFETY: as above.
        let grown = unsafe { self.1.realloc(ptr, new_size) };
        if !grown.is_null() {
            self.0.sub(old);
            // SAFETY: a block `A` just handed out.
            self.0.add(unsafe { Self::usable_size(grown) });
        } else if new_size == 0 {
            // realloc(ptr, 0) freed the block.
            self.0.sub(old);
        }
        grown
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        if ptr.is_null() {
            return 0;
        }
        // SAFETY: a block of `A` (the caller's contract).
        unsafe { A::usable_size(ptr) }
    }
}

/// The C library's `malloc` and friends.
pub struct Malloc;

// SAFETY: every block comes from the C library's allocator, whose blocks are aligned for any
// type (at least `usize`), and `usable_size` is that allocator's own answer for them.
unsafe impl Allocator for Malloc {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        // SAFETY: malloc accepts any size and answers null or a fresh block.
        unsafe { libc::malloc(size) }.cast::<u8>()
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        // SAFETY: calloc checks `count * size` for overflow itself.
        unsafe { libc::calloc(count, size) }.cast::<u8>()
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        // SAFETY: the caller passes a block of this allocator (or null, which free ignores).
        unsafe { libc::free(ptr.cast()) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block of this allocator or null.
        unsafe { libc::realloc(ptr.cast(), new_size) }.cast::<u8>()
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        if ptr.is_null() {
            return 0;
        }
        // SAFETY: `ptr` is non-null and came from this allocator's malloc, calloc or realloc.
        unsafe { libc::malloc_usable_size(ptr.cast()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_follows_allocations_and_restarts_from_the_current_size() {
        let meter = HeapMeter::default();
        let mut a = Counting(meter.clone(), Malloc);
        let p = a.alloc(1000);
        let q = a.alloc(5000);
        let peak = meter.peak();
        assert!(peak >= 6000, "{peak}");
        // SAFETY: blocks of this allocator.
        unsafe { a.dealloc(q) };
        assert_eq!(meter.peak(), peak);
        meter.restart();
        assert!(meter.peak() >= 1000 && meter.peak() < peak);
        // SAFETY: a block of this allocator.
        let r = unsafe { a.realloc(p, 20_000) };
        assert!(meter.peak() >= 20_000);
        // SAFETY: a block of this allocator.
        unsafe { a.dealloc(r) };
    }
}
