//! Giving freed memory back to the system.
//!
//! Loading a large config builds the whole TOML document with spans (tens of MiB for
//! 10,000 trunks) and drops it a moment later. glibc's malloc keeps freed memory in its
//! arenas for reuse, so without a trim that peak stays in the daemon's RSS for its whole
//! life: about 50 MiB of a 93 MiB daemon with 10,000 trunks. `malloc_trim(0)` returns free
//! pages from every arena (not only the heap top) with `madvise`; it walks the free lists,
//! which takes a few milliseconds for such a heap, so it runs after loads and reloads and
//! on a slow timer, never on the hot path.

/// How often the run loop trims besides after each load: the start-up burst of
/// registrations, a reload's old generation and an ended call storm leave freed memory too
/// (10,000 trunks: 50.4 MiB RSS two seconds after the last registration, 41.2 MiB after a
/// trim). A trim of that heap costs a few milliseconds of CPU.
pub const TRIM_PERIOD: std::time::Duration = std::time::Duration::from_secs(10);

/// Returns freed heap memory to the system where the allocator keeps it (glibc).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim has no preconditions; it only takes glibc's arena locks.
        unsafe {
            malloc_trim(0);
        }
    }
}
