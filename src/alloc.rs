//! Counting global allocator: live and peak heap bytes of the process, for the measured side of
//! the memory experiments (paper Table 1, docs/design.md section 5).
//!
//! Why count allocations instead of reading the process RSS: glibc keeps freed blocks in its
//! arenas and returns them to the OS lazily, so RSS overstates the memory that is actually live
//! and barely moves when a tensor is dropped. Counting every `alloc`/`dealloc` gives the exact
//! number of live heap bytes at every instant, and its running maximum.
//!
//! What it sees: every heap allocation of the process, including candle's CPU tensor storage
//! (a `Vec` per tensor), so CPU tensors are counted exactly (plus small bookkeeping such as
//! shapes and `Arc`s). What it does not see: GPU memory (CUDA/Metal buffers live on the device
//! and are allocated by the driver), memory mapped directly with `mmap` outside the Rust
//! allocator, and the stacks of threads.
//!
//! Install it once per binary or integration-test crate (a library cannot install it):
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: revstab::measure::alloc::CountingAlloc = revstab::measure::alloc::CountingAlloc;
//! ```
//!
//! The module sits at the bottom of the crate (it imports nothing) because the backward's
//! parameter gradients declare themselves to it ([`crate::layers::Grads`]);
//! [`crate::measure::alloc`] is the same module, where the memory measurements are.
//!
//! Without it the functions below still work but report zeros; check [`is_installed`].
//!
//! The counters are process-wide: allocations of every thread count, so measure one thing at a
//! time (for instance a single training step with candle's own thread pool, and nothing else
//! running in parallel).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A `GlobalAlloc` that forwards to [`System`] and keeps track of the live and peak heap bytes.
///
/// Sizes are the sizes requested in the `Layout`s (what the program asked for), not what the
/// system allocator rounds them up to. `realloc` is counted as a change of size from the old
/// layout to the new one; the transient copy that the system allocator may make while moving
/// a block is not counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

/// Live/peak byte counters. The global allocator uses one static instance; the type is public
/// so that its arithmetic can be tested (and reused) on private instances.
#[derive(Debug)]
pub struct Counters {
    current: AtomicUsize,
    peak: AtomicUsize,
    /// Live bytes declared as not activations ([`Counters::exclude`]: parameter gradients).
    excluded: AtomicUsize,
    /// Highest `current - excluded`.
    peak_included: AtomicUsize,
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

impl Counters {
    /// Counters at zero.
    pub const fn new() -> Self {
        Counters {
            current: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            excluded: AtomicUsize::new(0),
            peak_included: AtomicUsize::new(0),
        }
    }

    /// Bytes currently live.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// Highest number of live bytes since creation or since the last [`Counters::reset_peak`].
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Record an allocation of `size` bytes; updates the peak.
    pub fn record_alloc(&self, size: usize) {
        let now = self
            .current
            .fetch_add(size, Ordering::Relaxed)
            .wrapping_add(size);
        self.peak.fetch_max(now, Ordering::Relaxed);
        let excluded = self.excluded.load(Ordering::Relaxed);
        self.peak_included
            .fetch_max(now.saturating_sub(excluded), Ordering::Relaxed);
    }

    /// Declare `bytes` more of the live bytes as not counted by [`Counters::measure_peaks`]'s
    /// second figure (the training step declares each parameter gradient it keeps).
    pub fn exclude(&self, bytes: usize) {
        self.excluded.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Like [`Counters::measure_peak`], and also the peak of the live bytes minus those declared
    /// by [`Counters::exclude`] during `f` (both above the live bytes at the start): the peak
    /// of everything but, say, the parameter gradients, at the moment it happened (subtracting
    /// all gradients from the whole peak undercounts when the peak comes before the last
    /// gradient exists).
    pub fn measure_peaks<T>(&self, f: impl FnOnce() -> T) -> (T, usize, usize) {
        self.excluded.store(0, Ordering::Relaxed);
        let start = self.current();
        self.peak_included.store(start, Ordering::Relaxed);
        let (out, peak) = self.measure_peak(f);
        let included = self
            .peak_included
            .load(Ordering::Relaxed)
            .saturating_sub(start);
        self.excluded.store(0, Ordering::Relaxed);
        (out, peak, included.min(peak))
    }

    /// Record the release of `size` bytes.
    pub fn record_dealloc(&self, size: usize) {
        self.current.fetch_sub(size, Ordering::Relaxed);
    }

    /// Record a successful reallocation from `old_size` to `new_size` bytes: growth counts as
    /// an allocation of the difference (and can raise the peak), shrinking as a release.
    pub fn record_realloc(&self, old_size: usize, new_size: usize) {
        if new_size >= old_size {
            self.record_alloc(new_size - old_size);
        } else {
            self.record_dealloc(old_size - new_size);
        }
    }

    /// Set the peak to the current live bytes and return that value. Another thread allocating
    /// between the read and the write can be missed by the new peak (a benign race).
    pub fn reset_peak(&self) -> usize {
        let now = self.current();
        self.peak.store(now, Ordering::Relaxed);
        now
    }

    /// Raise the peak to at least `value` (used to restore an outer measurement).
    pub fn raise_peak(&self, value: usize) {
        self.peak.fetch_max(value, Ordering::Relaxed);
    }

    /// Run `f` and return its result with the peak live bytes reached during `f`, counted above
    /// the live bytes at the start. The peak seen by outer observers is preserved: after `f`
    /// the peak is the larger of the peak before the call and the peak during it, so nested
    /// measurements compose.
    pub fn measure_peak<T>(&self, f: impl FnOnce() -> T) -> (T, usize) {
        let outer_peak = self.peak();
        let start = self.reset_peak();
        let out = f();
        let inner_peak = self.peak();
        self.raise_peak(outer_peak);
        (out, inner_peak.saturating_sub(start))
    }
}

static COUNTERS: Counters = Counters::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

#[inline]
fn mark_installed() {
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the same arguments and only updates atomic
// counters on the side; it never touches the returned memory, never allocates, and returns
// exactly what `System` returned, so `System`'s guarantees carry over.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            mark_installed();
            COUNTERS.record_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            mark_installed();
            COUNTERS.record_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        COUNTERS.record_dealloc(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_ptr = System.realloc(ptr, layout, new_size);
        // On failure the old block is untouched and still live: nothing changes.
        if !new_ptr.is_null() {
            mark_installed();
            COUNTERS.record_realloc(layout.size(), new_size);
        }
        new_ptr
    }
}

/// Heap bytes live now (0 if [`CountingAlloc`] is not the global allocator).
pub fn current_bytes() -> usize {
    COUNTERS.current()
}

/// Highest live heap bytes since the process started or since the last [`reset_peak`].
pub fn peak_bytes() -> usize {
    COUNTERS.peak()
}

/// Set the peak to the current live bytes and return it.
pub fn reset_peak() -> usize {
    COUNTERS.reset_peak()
}

/// Run `f`; return its result and the peak heap bytes reached during `f` above the live bytes
/// at its start (the extra memory `f` needed at its worst moment, including what it still
/// holds at the end). The process-wide peak is preserved for outer measurements. Returns 0 as
/// the peak when the allocator is not installed ([`is_installed`]).
pub fn measure_peak<T>(f: impl FnOnce() -> T) -> (T, usize) {
    COUNTERS.measure_peak(f)
}

/// [`Counters::measure_peaks`] on the process-wide counters: `(result, peak, peak without the
/// bytes declared by [`exclude`] meanwhile)`.
pub fn measure_peaks<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    COUNTERS.measure_peaks(f)
}

/// Declare `bytes` of the live heap as not activations (see [`Counters::exclude`]); a no-op
/// outside [`measure_peaks`] (the count is reset at its start and end).
pub fn exclude(bytes: usize) {
    COUNTERS.exclude(bytes)
}

/// True once an allocation has gone through [`CountingAlloc`], i.e. it is the global allocator
/// of this process (any Rust program allocates before `main`, so this is true in `main` when
/// installed).
pub fn is_installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_dealloc_track_current_and_peak() {
        let c = Counters::new();
        c.record_alloc(100);
        c.record_alloc(50);
        assert_eq!((c.current(), c.peak()), (150, 150));
        c.record_dealloc(100);
        assert_eq!((c.current(), c.peak()), (50, 150));
        c.record_alloc(30);
        assert_eq!((c.current(), c.peak()), (80, 150));
        c.record_alloc(200);
        assert_eq!((c.current(), c.peak()), (280, 280));
    }

    #[test]
    fn realloc_grow_and_shrink() {
        let c = Counters::new();
        c.record_alloc(64);
        c.record_realloc(64, 256); // grow: +192
        assert_eq!((c.current(), c.peak()), (256, 256));
        c.record_realloc(256, 16); // shrink: -240
        assert_eq!((c.current(), c.peak()), (16, 256));
        c.record_realloc(16, 16); // same size: no change
        assert_eq!((c.current(), c.peak()), (16, 256));
        c.record_dealloc(16);
        assert_eq!(c.current(), 0);
    }

    #[test]
    fn reset_peak_sets_peak_to_current() {
        let c = Counters::new();
        c.record_alloc(1000);
        c.record_dealloc(600);
        assert_eq!(c.peak(), 1000);
        assert_eq!(c.reset_peak(), 400);
        assert_eq!(c.peak(), 400);
        c.record_alloc(10);
        assert_eq!(c.peak(), 410);
    }

    #[test]
    fn measure_peak_counts_above_start_and_restores_outer_peak() {
        let c = Counters::new();
        c.record_alloc(5000);
        c.record_dealloc(4000); // live 1000, peak 5000
        let ((), extra) = c.measure_peak(|| {
            c.record_alloc(300);
            c.record_alloc(200); // live 1500: 500 above start
            c.record_dealloc(500);
        });
        assert_eq!(extra, 500);
        assert_eq!(c.current(), 1000);
        assert_eq!(c.peak(), 5000, "outer peak restored");
    }

    #[test]
    fn nested_measure_peak_composes() {
        let c = Counters::new();
        let (inner, outer) = c.measure_peak(|| {
            c.record_alloc(100);
            let ((), inner) = c.measure_peak(|| {
                c.record_alloc(40);
                c.record_dealloc(40);
            });
            c.record_dealloc(100);
            inner
        });
        assert_eq!(inner, 40);
        assert_eq!(outer, 140);
    }

    #[test]
    fn measure_peak_includes_memory_still_held() {
        let c = Counters::new();
        let ((), extra) = c.measure_peak(|| c.record_alloc(77));
        assert_eq!(extra, 77);
    }

    #[test]
    fn global_functions_and_direct_calls() {
        // One test on purpose: it touches the process-wide counters, which other tests must
        // not race with. The lib test binary does not install the allocator, so first the
        // counters stay at zero.
        if !is_installed() {
            assert_eq!(current_bytes(), 0);
            let (v, extra) = measure_peak(|| vec![0u8; 1 << 20].len());
            assert_eq!(v, 1 << 20);
            assert_eq!(extra, 0);
        }
        // Then call the allocator directly (not as the global one): it must return usable
        // memory and count alloc + realloc growth, then return to the start on dealloc.
        let a = CountingAlloc;
        let layout = Layout::from_size_align(64, 8).unwrap();
        let before = current_bytes();
        let ((), extra) = measure_peak(|| unsafe {
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(*p.add(63), 0);
            let q = a.realloc(p, layout, 128);
            assert!(!q.is_null());
            a.dealloc(q, Layout::from_size_align(128, 8).unwrap());
        });
        assert!(is_installed());
        if before == 0 {
            // Not the global allocator: only our own calls were counted.
            assert_eq!(extra, 128);
            assert_eq!(current_bytes(), 0);
        }
    }
}
