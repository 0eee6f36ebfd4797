//! Heap accounting for the Rhai engine's memory limit.
//!
//! Rhai's size limits bound each value, but not how many values a script keeps
//! alive, and a map grown through `m[key] = value` is not measured at all (Rhai
//! checks the assigned value, not the map). So the Rhai engine also watches the
//! heap its thread holds, counted here by a global allocator wrapping the system
//! one: bytes allocated by the current thread minus bytes it freed. Per thread, so
//! that other threads (a test harness running tests in parallel, an HTTP server)
//! do not count against a script. Lua needs none of this: mlua limits the Lua
//! state's own allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting what each thread holds. The binary installs
/// it (`#[global_allocator]` in `main.rs`); the library does not impose it.
pub struct CountingAllocator;

thread_local! {
    // `const` and without a destructor: using it never allocates, so the
    // allocator itself may use it.
    static HEAP: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    // Fails only while the thread is being torn down; nothing reads it then.
    let _ = HEAP.try_with(|heap| heap.set(heap.get().wrapping_add(delta)));
}

/// Bytes the current thread allocated and has not freed (frees of memory another
/// thread allocated make it smaller; lure's script thread frees its own).
pub fn thread_heap() -> usize {
    HEAP.try_with(Cell::get).unwrap_or(0).max(0) as usize
}

// SAFETY: every method forwards to `System` unchanged and only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            add(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            add(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The count itself: a thread that frees what another allocated (a test
    /// harness's does) goes below zero, which `thread_heap` reads as 0.
    fn count() -> isize {
        HEAP.with(Cell::get)
    }

    #[test]
    fn counts_what_this_thread_holds() {
        let before = count();
        let block = vec![0u8; 1 << 20];
        assert!(count() >= before + (1 << 20));
        // Another thread's allocations are not ours.
        std::thread::spawn(|| std::hint::black_box(vec![0u8; 8 << 20]).len())
            .join()
            .unwrap();
        assert!(count() < before + (2 << 20));
        drop(block);
        assert!(count() < before + (1 << 20));
    }
}
