//! The process's allocator settings. The `dmgd` binary (and the DiT benchmark, which includes
//! this file) runs on mimalloc, told never to return freed memory to the OS: a training step
//! frees and allocates tensors of the same sizes over and over, and with glibc's allocator every
//! large one came back as fresh pages (page faults were 40 % of a DiT-S/2 step with 2 threads).
//! Timings: docs/BENCH-diffusion.md.

use std::os::raw::c_int;

/// `mi_option_purge_delay` of mimalloc v3's `mi_option_e` (the Rust bindings do not name it).
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// Freed memory stays with mimalloc for reuse. The cost is a higher peak resident size where
/// many sizes come and go (DiT-XL/2 sampling: 5.5 GB, was 4.3 GB with glibc).
pub fn keep_freed_memory() {
    // SAFETY: sets one process-wide option, which mimalloc reads at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn purge_delay_is_the_option_set() {
        let get = || unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        // mimalloc v3's default purge delay is 1,000 ms: this fails if the option number moved.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(), 1000);
        }
        super::keep_freed_memory();
        assert_eq!(get(), -1);
    }
}
