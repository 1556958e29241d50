//! Keeping glibc's heap from drifting up. Every camera reconnect starts new GStreamer
//! streaming threads; glibc gives threads that allocate memory pools ("arenas") of their
//! own, up to 8 per core, and returns freed memory from those pools to the kernel only
//! when asked. Over 50 camera flaps RSS then drifted from 89 to 100–145 MiB without any
//! leak. Two measures, measured in tests/camera_loss.rs:
//! - `bound_arenas` at start: two pools (`MALLOC_ARENA_MAX`, which the unit also sets);
//! - `release_free` after each ended camera session: `malloc_trim(0)` hands the pages the
//!   ended pipeline freed back to the kernel.

/// Caps glibc's memory pools at two, unless `MALLOC_ARENA_MAX` is set (it wins). Call
/// first thing, before other threads start.
pub fn bound_arenas() {
    #[cfg(target_env = "gnu")]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Returns freed heap pages of every pool to the kernel (a few ms; call when a large
/// structure such as a pipeline was just torn down).
pub fn release_free() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
