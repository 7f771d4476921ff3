//! Code warming: the fire path's machine code (and the built frame it patches) pulled
//! into the core's caches, and its pages into the TLB, without running it. After a long wait the fire's own code, which
//! nothing else runs, was most of what made a cold fire slow (lab, 1 s gap, 2 × 30 fires
//! each way: af_xdp trigger→wire p50 3.0 and 3.1 µs without, 1.8 and 1.9 µs with). Send
//! warming calls it on its tick for the functions a fire runs, each marked
//! `#[inline(never)]` so that the code prefetched is the code executed.
//!
//! The one `unsafe` here is the prefetch intrinsic, which is only a hint: it reads
//! nothing the program can see, never faults (an address outside any mapping is ignored)
//! and changes nothing but the caches. SSE, which it belongs to, is part of x86_64.
#![allow(unsafe_code)]

/// Prefetches `len` bytes from `at` (a function's code, or data the fire will touch)
/// into the second-level cache, one prefetch per 64-byte line.
#[inline]
pub fn prefetch(at: *const (), len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let start = at.cast::<i8>();
        for offset in (0..len).step_by(64) {
            // SAFETY: a prefetch never dereferences in the program's sense and never
            // faults; `wrapping_add` only forms the address.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, len);
}
