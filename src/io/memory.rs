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

/// One malloc arena for the whole process (glibc's default is up to 8 per core, one per
/// thread that allocates). The daemon's long-lived state is built on several threads
/// (the config on a blocking-pool thread, registrations on the runtime's workers), and
/// each arena keeps its own partly used pages: with 10,000 idle trunks the daemon's RSS
/// is about 31 MiB with one arena, about 35 MiB with the default. The hot path allocates nothing per datagram, so the
/// one arena's lock is not on it. Call before any thread is started; `MALLOC_ARENA_MAX`
/// in the environment still decides when set.
pub fn use_one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        const M_ARENA_MAX: std::ffi::c_int = -8;
        unsafe extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        // SAFETY: mallopt only sets a malloc parameter; called before other threads exist.
        unsafe {
            mallopt(M_ARENA_MAX, 1);
        }
    }
}

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
