//! The program's machine code moved onto 2 MiB pages, once, before the datapath starts.
//!
//! A fire after a long wait runs code nothing else ran for a second: the command's
//! dispatch, the fire, the frame's checks and push. Each of its 4 KiB code pages then
//! costs a TLB miss, and in a virtual machine a page walk through two page tables whose
//! own entries have long left the caches; prefetching the code (warming/code.rs) brings
//! its lines back but not, reliably, those walks. On 2 MiB pages the whole fire path's
//! code sits under one or two TLB entries that the busy loop itself keeps alive.
//!
//! How: the executable mapping that holds this function is copied into fresh anonymous
//! memory advised `MADV_HUGEPAGE`, made read-execute, and moved over the original with
//! one `mremap`, which swaps the pages under the same addresses atomically: a thread
//! executing there at that moment runs the same bytes from either. The kernel could do
//! this itself for file-backed code (`MADV_COLLAPSE`) only when built with
//! `CONFIG_READ_ONLY_THP_FOR_FS`, which this lab's kernel is not, hence the copy. The
//! binaries that run the datapath are linked with their segments 2 MiB apart (their
//! build.rs), which leaves nothing else mapped in the 2 MiB pages around the code: then
//! all of it moves, on whole huge pages (the gaps read as zeros instead of faulting).
//! Elsewhere (a test binary) only the aligned 2 MiB pages inside the code move.
#![allow(unsafe_code)]

use std::io;

const HUGE: usize = 2 << 20;

/// What [`huge_text`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HugeText {
    /// The length of the executable mapping that holds the datapath's code.
    pub text: usize,
    /// Bytes of it moved to anonymous memory advised for huge pages.
    pub moved: usize,
    /// Bytes of that the kernel put on 2 MiB pages (/proc/self/smaps): fewer where THP
    /// is `never` or no free 2 MiB page was found.
    pub huge: usize,
}

/// Moves the code onto 2 MiB pages. Other threads may be running (the swap is atomic for
/// them). A second call finds the code already moved and moves nothing.
pub fn huge_text() -> io::Result<HugeText> {
    let here = huge_text as *const () as usize;
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let Some((start, end, from_file)) = executable_mapping(&maps, here) else {
        return Ok(HugeText::default());
    };
    let text = end - start;
    if !from_file {
        // Moved by an earlier call.
        return Ok(HugeText {
            text,
            moved: text,
            huge: anon_huge_at(start),
        });
    }
    let (lo, hi) = match alone_in(&maps, start / HUGE * HUGE, end.next_multiple_of(HUGE)) {
        true => (start / HUGE * HUGE, end.next_multiple_of(HUGE)),
        false => (start.next_multiple_of(HUGE), end / HUGE * HUGE),
    };
    if hi <= lo {
        return Ok(HugeText {
            text,
            ..HugeText::default()
        });
    }
    let len = hi - lo;
    // What of the code lies in `lo..hi`, copied to the same offset.
    let (from, to) = (start.max(lo), end.min(hi));
    let copy = Scratch::aligned(len)?;
    // SAFETY: advice on memory `copy` owns; it changes no byte.
    if unsafe { libc::madvise(copy.ptr(), len, libc::MADV_HUGEPAGE) } != 0 {
        // Refused where THP is off: then the move gains nothing, so nothing is moved.
        return Ok(HugeText {
            text,
            ..HugeText::default()
        });
    }
    // SAFETY: the source `from..to` is mapped readable (/proc/self/maps, just now); the
    // destination lies inside `copy`, a fresh mapping of `len` bytes, so they cannot
    // overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            from as *const u8,
            (copy.at + from - lo) as *mut u8,
            to - from,
        )
    };
    // SAFETY: changes the protection of memory `copy` owns, which nothing refers to.
    if unsafe { libc::mprotect(copy.ptr(), len, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: replaces `lo..hi` with `copy`: the code there, as the same bytes, already
    // read-execute, and around it only addresses nothing was mapped at (`alone_in`). No
    // instruction anywhere ever sees anything but the code it was linked with.
    let moved = unsafe {
        libc::mremap(
            copy.ptr(),
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            lo as *mut libc::c_void,
        )
    };
    if moved == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // Its pages are the program's code now, at `lo`.
    std::mem::forget(copy);
    Ok(HugeText {
        text,
        moved: len,
        huge: anon_huge_at(lo),
    })
}

/// Anonymous read-write memory at a 2 MiB-aligned address, unmapped when dropped.
struct Scratch {
    at: usize,
    len: usize,
}

impl Scratch {
    fn aligned(len: usize) -> io::Result<Scratch> {
        // SAFETY: a fresh private mapping where the kernel chooses; nothing existing is
        // affected. Failure is MAP_FAILED, checked below.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len + HUGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let raw = raw as usize;
        let at = raw.next_multiple_of(HUGE);
        // Give back the ends around the aligned `len`.
        for (start, n) in [(raw, at - raw), (at + len, raw + HUGE - at)] {
            if n > 0 {
                // SAFETY: unmaps part of the mapping made just above, outside `at..at+len`.
                unsafe { libc::munmap(start as *mut libc::c_void, n) };
            }
        }
        Ok(Scratch { at, len })
    }

    fn ptr(&self) -> *mut libc::c_void {
        self.at as *mut libc::c_void
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: the mapping `aligned` made and nothing else refers to.
        unsafe { libc::munmap(self.ptr(), self.len) };
    }
}

/// The transparent huge page mode in effect (`always`, `madvise`, `never`).
pub(crate) fn thp_mode() -> Option<String> {
    let text = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    let start = text.find('[')? + 1;
    let end = text[start..].find(']')? + start;
    Some(text[start..end].to_owned())
}

/// Bytes on 2 MiB pages of this process's anonymous mapping that starts at `at`.
pub(crate) fn anon_huge_at(at: usize) -> usize {
    std::fs::read_to_string("/proc/self/smaps").map_or(0, |s| anon_huge(&s, at))
}

/// `AnonHugePages` of the mapping of /proc/self/smaps that starts at `at`, in bytes.
fn anon_huge(smaps: &str, at: usize) -> usize {
    let head = format!("{at:x}-");
    smaps
        .lines()
        .skip_while(|l| !l.starts_with(&head))
        .skip(1)
        .take_while(|l| mapping(l).is_none())
        .find_map(|l| l.strip_prefix("AnonHugePages:"))
        .and_then(|kb| {
            kb.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Whether one mapping alone (the code's, which lies inside) meets `lo..hi`.
fn alone_in(maps: &str, lo: usize, hi: usize) -> bool {
    maps.lines()
        .filter_map(mapping)
        .filter(|m| m.start < hi && m.end > lo)
        .count()
        == 1
}

/// The executable mapping of /proc/self/maps that holds `addr`, and whether it maps a
/// file (else it is anonymous: moved already).
fn executable_mapping(maps: &str, addr: usize) -> Option<(usize, usize, bool)> {
    maps.lines()
        .filter_map(mapping)
        .find(|m| m.exec && (m.start..m.end).contains(&addr))
        .map(|m| (m.start, m.end, m.file))
}

/// A line of /proc/self/maps, or one that heads a mapping in /proc/self/smaps.
struct Mapping {
    start: usize,
    end: usize,
    exec: bool,
    /// It maps a file (inode not 0).
    file: bool,
}

fn mapping(line: &str) -> Option<Mapping> {
    let mut fields = line.split_ascii_whitespace();
    let (range, perms) = (fields.next()?, fields.next()?);
    let (start, end) = range.split_once('-')?;
    Some(Mapping {
        start: usize::from_str_radix(start, 16).ok()?,
        end: usize::from_str_radix(end, 16).ok()?,
        exec: perms.as_bytes().get(2) == Some(&b'x'),
        file: fields.nth(2)? != "0",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_executable_mapping_that_holds_an_address() {
        let maps = "\
55d000000000-55d000200000 r--p 00000000 fe:00 42 /usr/bin/quickdraw
55d000200000-55d000a00000 r-xp 00200000 fe:00 42 /usr/bin/quickdraw
55d000a00000-55d000b00000 rw-p 00a00000 fe:00 42 /usr/bin/quickdraw
7f0000000000-7f0000400000 r-xp 00000000 00:00 0
";
        assert_eq!(
            executable_mapping(maps, 0x55d000300000),
            Some((0x55d000200000, 0x55d000a00000, true))
        );
        assert_eq!(
            executable_mapping(maps, 0x55d000a00010),
            None,
            "not executable"
        );
        assert_eq!(
            executable_mapping(maps, 0x7f0000000010),
            Some((0x7f0000000000, 0x7f0000400000, false)),
            "anonymous: moved already"
        );
    }

    #[test]
    fn the_huge_pages_around_the_code_move_only_if_nothing_else_is_in_them() {
        // Linked 2 MiB apart: holes around the code.
        let apart = "\
55d000000000-55d000013000 r--p 00000000 fe:00 42 /usr/bin/quickdraw
55d000213000-55d000627000 r-xp 00013000 fe:00 42 /usr/bin/quickdraw
55d000827000-55d000829000 rw-p 00027000 fe:00 42 /usr/bin/quickdraw
";
        assert!(alone_in(apart, 0x55d000200000, 0x55d000800000));
        // Linked 4 KiB apart: the read-only data shares the first huge page.
        let packed = "\
55d000000000-55d000013000 r--p 00000000 fe:00 42 /usr/bin/quickdraw
55d000013000-55d000427000 r-xp 00013000 fe:00 42 /usr/bin/quickdraw
55d000427000-55d000429000 rw-p 00427000 fe:00 42 /usr/bin/quickdraw
";
        assert!(!alone_in(packed, 0x55d000000000, 0x55d000600000));
    }

    #[test]
    fn the_code_moves_onto_huge_pages_and_runs_on() {
        let pinned: fn() -> Option<usize> = std::hint::black_box(crate::placement::pinned_core);
        let before = pinned();
        // Another test may have moved the code first (the datapath's start does): this
        // call then finds less or nothing to move, and the process's code is where the
        // first call put it.
        let first = huge_text().expect("moves");
        assert!(first.text > 0, "{first:?}");
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let (start, end) = maps
            .lines()
            .filter_map(mapping)
            .filter(|m| m.exec && !m.file)
            .map(|m| (m.start, m.end))
            .max_by_key(|(s, e)| e - s)
            .expect("some code is on anonymous memory now");
        assert!(
            end - start >= HUGE && start % HUGE == 0,
            "{start:x}-{end:x}\n{maps}"
        );
        // Code on both sides of the move gives the same answers: this test's own, std's,
        // and a function called through a pointer taken before.
        assert_eq!(pinned(), before);
        assert_eq!(crate::placement::pinned_core(), before);
        assert_eq!(format!("{:x}", std::hint::black_box(0xf1_u8)), "f1");
        match thp_mode().as_deref() {
            Some("always" | "madvise") => {
                let huge = anon_huge_at(start);
                assert!(huge >= HUGE, "{huge} B on 2 MiB pages of {start:x}-{end:x}");
            }
            mode => eprintln!("THP {mode:?}: huge pages not checked"),
        }
        // Again: nothing breaks.
        assert!(huge_text().expect("second call").text > 0);
    }

    #[test]
    fn reads_the_huge_pages_of_one_mapping() {
        let smaps = "\
55c112152000-55c112200000 r-xp 0013a000 fe:00 10010779 /usr/bin/quickdraw
Size:                696 kB
AnonHugePages:         0 kB
55c112200000-55c112600000 r-xp 00000000 00:00 0
Size:               4096 kB
AnonHugePages:      4096 kB
VmFlags: rd ex mr mw me hg
55c112600000-55c112700000 rw-p 00000000 00:00 0
AnonHugePages:      2048 kB
";
        assert_eq!(anon_huge(smaps, 0x55c112200000), 4 << 20);
        assert_eq!(anon_huge(smaps, 0x55c112152000), 0);
        assert_eq!(anon_huge(smaps, 0x1000), 0, "no such mapping");
    }
}
