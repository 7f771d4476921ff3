//! Touching: the fire path's machine code, and the memory it reads and patches, pulled
//! into the core's caches and its pages into the TLB, without running it. After a long
//! wait the fire's own code, which nothing else runs, was most of what made a cold fire
//! slow. Send warming calls these on its tick for the functions a fire runs, each marked
//! `#[inline(never)]` so that the code touched is the code executed.
//!
//! Touching is a read of one byte per 64-byte line, not a prefetch hint. Prefetches
//! (`prefetcht1`, every 50 µs) did not keep the lines: timing one load of each line at
//! the fire (lab VM, AMD EPYC under KVM, median over fires) found the built frame's
//! header line at 390 TSC ticks (memory) after a 20 ms or 1 s wait and the worst line of
//! `Appliance::fire`'s code at 520, against 78 (second-level cache) for both when
//! warming read them instead. A prefetch is a hint a core may drop (on a TLB miss, or
//! with its miss buffers busy); a load is not. Measured end to end in the README
//! ("Warming").
//!
//! The `unsafe` here is those reads: of bytes of a live value or slice (as
//! `MaybeUninit`, so padding is fine), or of the program's own code, which is mapped
//! readable, within the readable and executable mapping that holds it as
//! /proc/self/maps gave it (so a length rounded up past a function's end cannot read
//! beyond the mapping).
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::OnceLock;

const LINE: usize = 64;

/// Reads one byte of each 64-byte line of the value `v`, which pulls them into the
/// cache: a slice's elements, a struct's fields (a `Vec` or `Box` by reference is its
/// handle: pass the slice).
#[inline]
pub fn touch<T: ?Sized>(v: &T) {
    // SAFETY: a live value is readable over its whole size; its padding is read as
    // `MaybeUninit`.
    unsafe { touch_lines(std::ptr::from_ref(v).cast(), std::mem::size_of_val(v)) }
}

/// Reads one byte of each 64-byte line of `len` bytes of code from `at` (a function of
/// this program), stopping at the end of the mapping that holds it. Nothing is read when
/// `at` is not in the program's code (or /proc/self/maps could not be read).
pub fn touch_code(at: *const (), len: usize) {
    let start = at as usize;
    let Some(code) = code_mapping().filter(|code| code.contains(&start)) else {
        return;
    };
    let end = start.saturating_add(len).min(code.end);
    // SAFETY: [start, end) lies inside a readable mapping of our own code, which is never
    // unmapped (moving it onto huge pages swaps pages under the same addresses).
    unsafe { touch_lines(at.cast(), end - start) }
}

/// Finds the program's code mapping now (at start-up), so that no warming has to read
/// /proc/self/maps (and allocate) later.
pub fn find_code() {
    let _ = code_mapping();
}

/// The readable and executable mapping (adjacent ones merged) that holds this program's
/// code, read from /proc/self/maps once ([`find_code`] at start, else the first warming).
fn code_mapping() -> Option<&'static Range<usize>> {
    static CODE: OnceLock<Option<Range<usize>>> = OnceLock::new();
    CODE.get_or_init(|| {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        crate::placement::code_range(&maps, touch_code as *const () as usize)
    })
    .as_ref()
}

/// # Safety
/// `[at, at + len)` must be readable memory for the duration of the call.
#[inline]
unsafe fn touch_lines(at: *const u8, len: usize) {
    let base = at.cast::<MaybeUninit<u8>>();
    for offset in line_offsets(at as usize, len) {
        // SAFETY: `offset < len` (`line_offsets`), so in the readable range the caller
        // vouches for; a volatile read so that it is made although nothing uses the byte.
        let byte = unsafe { base.add(offset).read_volatile() };
        std::hint::black_box(byte);
    }
}

/// The offsets from `start` of one byte in each 64-byte line that `[start, start + len)`
/// meets: `start` itself in the first line, the line's start in the others. None when
/// `len` is 0 (an empty slice's pointer may dangle).
fn line_offsets(start: usize, len: usize) -> impl Iterator<Item = usize> {
    let first = start & !(LINE - 1);
    let end = if len == 0 { first } else { start + len };
    (first..end)
        .step_by(LINE)
        .map(move |line| line.max(start) - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_touched_up_to_the_end_of_its_mapping_and_nothing_else_is() {
        let code = code_mapping().expect("this test's code is in a readable mapping");
        assert!(code.contains(&(touch_code as *const () as usize)));
        // Past the end of the mapping: clamped, no fault.
        touch_code((code.end - 8) as *const (), 1 << 20);
        touch_code(touch_code as *const (), usize::MAX);
        // Not code: ignored (a heap address is never inside the code's mapping).
        let heap = Box::new([0u8; 16]);
        assert!(!code.contains(&(heap.as_ptr() as usize)));
        touch_code(heap.as_ptr().cast(), 1 << 30);
    }

    #[test]
    fn one_read_in_every_line_a_range_meets_and_none_outside_it() {
        let offsets = |start, len| line_offsets(start, len).collect::<Vec<_>>();
        // 66 bytes from the last byte of a line meet three lines.
        assert_eq!(offsets(0x103f, 66), vec![0, 1, 65]);
        assert_eq!(offsets(0x1000, 64), vec![0]);
        assert_eq!(offsets(0x1000, 65), vec![0, 64]);
        assert_eq!(offsets(0x1001, 1), vec![0]);
        assert_eq!(
            offsets(0x1001, 0),
            Vec::<usize>::new(),
            "empty: nothing read"
        );
        for start in 0x1000..0x1080 {
            for len in 0..200 {
                let o = offsets(start, len);
                assert!(o.iter().all(|&o| o < len), "inside: {start:#x} {len}");
                let lines = if len == 0 {
                    0
                } else {
                    (start + len - 1) / LINE - start / LINE + 1
                };
                assert_eq!(o.len(), lines, "one per line: {start:#x} {len}");
            }
        }
    }

    #[test]
    fn values_and_slices_of_any_length_are_touched() {
        touch::<[u8]>(&[]);
        touch(&[7u8; 1][..]);
        touch(&vec![1u8; 4097][..]);
        #[allow(dead_code)]
        struct Padded(u8, u64, u8);
        touch(&Padded(1, 2, 3));
        touch(&[Padded(1, 2, 3), Padded(4, 5, 6)][..]);
    }
}
