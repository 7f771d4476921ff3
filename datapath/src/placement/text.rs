//! The program's machine code moved onto 2 MiB pages, once, before the datapath starts.
//!
//! A fire after a long wait runs code nothing else ran for a second: the command's
//! dispatch, the fire, the frame's checks and push. Each of its 4 KiB code pages then
//! costs a TLB miss, and in a virtual machine a page walk through two page tables whose
//! own entries have long left the caches; warming the code (warming/code.rs) brings
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
//!
//! Under a W^X rule (systemd's `MemoryDenyWriteExecute`, `PR_SET_MDWE`) no memory may
//! become executable, so the copy cannot be made read-execute. A file may still be
//! mapped read-execute: the copy is then written into a memory file on 2 MiB pages
//! (hugetlbfs, from the pages reserved with `vm.nr_hugepages`; else shmem, where
//! `shmem_enabled` allows huge pages) through a writable mapping that is dropped, and
//! the file is mapped read-execute over the code with one `mmap(MAP_FIXED)`, which
//! swaps the pages as atomically as `mremap`. At no time is any mapping writable and
//! executable, or made executable. Where neither kind of page is available nothing moves.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

const HUGE: usize = 2 << 20;

/// What [`huge_text`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HugeText {
    /// The length of the executable mapping that holds the datapath's code.
    pub text: usize,
    /// Bytes of it moved to memory advised for (or made of) huge pages.
    pub moved: usize,
    /// Bytes of that the kernel put on 2 MiB pages (/proc/self/smaps): fewer where THP
    /// is `never` or no free 2 MiB page was found.
    pub huge: usize,
    /// The code went into a memory file, the way around a W^X rule.
    pub via_file: bool,
}

/// Moves the code onto 2 MiB pages. Other threads may be running (the swap is atomic for
/// them). A second call finds the code already moved and moves nothing.
pub fn huge_text() -> io::Result<HugeText> {
    let here = huge_text as *const () as usize;
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let Some(code) = executable_mapping(&maps, here) else {
        return Ok(HugeText::default());
    };
    let (start, end) = (code.start, code.end);
    let text = end - start;
    if code.moved() {
        // Moved by an earlier call.
        return Ok(HugeText {
            text,
            moved: text,
            huge: huge_at(start),
            via_file: code.file,
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
    match onto_anonymous(lo, len, from, to) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
            let huge = onto_file(lo, len, from, to)?;
            Ok(HugeText {
                text,
                moved: if huge > 0 { len } else { 0 },
                huge,
                via_file: true,
            })
        }
        Err(e) => Err(e),
        Ok(0) => Ok(HugeText {
            text,
            ..HugeText::default()
        }),
        Ok(moved) => Ok(HugeText {
            text,
            moved,
            huge: huge_at(lo),
            via_file: false,
        }),
    }
}

/// Copies `from..to` to the same offsets in anonymous memory advised for huge pages and
/// swaps it in over `lo..lo + len`; the bytes moved (0 where THP is off).
fn onto_anonymous(lo: usize, len: usize, from: usize, to: usize) -> io::Result<usize> {
    let copy = Scratch::aligned(len)?;
    // SAFETY: advice on memory `copy` owns; it changes no byte.
    if unsafe { libc::madvise(copy.ptr(), len, libc::MADV_HUGEPAGE) } != 0 {
        // Refused where THP is off: then the move gains nothing, so nothing is moved.
        return Ok(0);
    }
    copy.take_code(lo, from, to);
    // SAFETY: changes the protection of memory `copy` owns, which nothing refers to.
    // Refused (EACCES, EPERM) under a W^X rule: the caller then goes through a file.
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
    Ok(len)
}

/// The name of the memory file the code is moved into (it shows in /proc/self/maps as
/// `/memfd:quickdraw-code (deleted)`, which is how a second call knows).
const CODE_FILE: &str = "quickdraw-code";

/// Writes `from..to` at the same offsets into a memory file on 2 MiB pages and maps it
/// read-execute over `lo..lo + len`. Tries hugetlbfs, then shmem; moves nothing (and
/// returns 0) unless the file's pages are huge. Returns the bytes on 2 MiB pages.
fn onto_file(lo: usize, len: usize, from: usize, to: usize) -> io::Result<usize> {
    use rustix::fs::MemfdFlags;
    let kinds = [
        MemfdFlags::CLOEXEC | MemfdFlags::HUGETLB | MemfdFlags::HUGE_2MB,
        MemfdFlags::CLOEXEC,
    ];
    for flags in kinds {
        let Ok(file) = rustix::fs::memfd_create(CODE_FILE, flags) else {
            continue;
        };
        if rustix::fs::ftruncate(&file, len as u64).is_err() {
            continue;
        }
        let copy = Scratch::aligned(len)?;
        // SAFETY: maps the file over `copy`'s own range (MAP_FIXED inside a mapping it
        // owns, which it unmaps when dropped); nothing else refers to those addresses.
        let mapped = unsafe {
            libc::mmap(
                copy.ptr(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                file.as_raw_fd(),
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            // hugetlbfs without enough free reserved pages (ENOMEM): try shmem.
            continue;
        }
        // SAFETY: advice on memory `copy` owns (shmem takes huge pages only where
        // advised when `shmem_enabled` is `advise`); it changes no byte.
        unsafe { libc::madvise(copy.ptr(), len, libc::MADV_HUGEPAGE) };
        copy.take_code(lo, from, to);
        if huge_at(copy.at) == 0 {
            // shmem on 4 KiB pages: moving would gain nothing.
            continue;
        }
        drop(copy);
        // Populated now, so that no fire takes the fault that maps a page of it.
        // SAFETY: replaces `lo..hi` with the file, holding the code at the same offsets,
        // read-execute, never writable (W^X rules allow it); around it nothing is mapped.
        let moved = unsafe {
            libc::mmap(
                lo as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_SHARED | libc::MAP_FIXED | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        if moved == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // The mapping keeps the file; its descriptor closes here.
        return Ok(huge_at(lo));
    }
    Ok(0)
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

    /// Copies the code at `from..to` into this memory at the same offset from its start
    /// as from `lo` (the start of what it will replace).
    fn take_code(&self, lo: usize, from: usize, to: usize) {
        assert!(
            lo <= from && from <= to && to - lo <= self.len,
            "inside the scratch"
        );
        // SAFETY: the source `from..to` is mapped readable (/proc/self/maps, just now);
        // the destination lies inside this mapping (checked above), fresh and writable,
        // so they cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                from as *const u8,
                (self.at + from - lo) as *mut u8,
                to - from,
            )
        };
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

/// Bytes on 2 MiB pages of this process's mapping that starts at `at`.
pub(crate) fn huge_at(at: usize) -> usize {
    std::fs::read_to_string("/proc/self/smaps").map_or(0, |s| huge_in(&s, at))
}

/// The huge pages of the mapping of /proc/self/smaps that starts at `at`, in bytes:
/// transparent ones (anonymous or shmem) and hugetlbfs ones.
fn huge_in(smaps: &str, at: usize) -> usize {
    const KINDS: [&str; 4] = [
        "AnonHugePages:",
        "ShmemPmdMapped:",
        "Shared_Hugetlb:",
        "Private_Hugetlb:",
    ];
    let head = format!("{at:x}-");
    smaps
        .lines()
        .skip_while(|l| !l.starts_with(&head))
        .skip(1)
        .take_while(|l| mapping(l).is_none())
        .filter_map(|l| KINDS.iter().find_map(|k| l.strip_prefix(k)))
        .filter_map(|kb| {
            kb.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .ok()
        })
        .sum::<usize>()
        * 1024
}

/// Whether one mapping alone (the code's, which lies inside) meets `lo..hi`.
fn alone_in(maps: &str, lo: usize, hi: usize) -> bool {
    maps.lines()
        .filter_map(mapping)
        .filter(|m| m.start < hi && m.end > lo)
        .count()
        == 1
}

/// The executable mapping of /proc/self/maps that holds `addr`.
fn executable_mapping(maps: &str, addr: usize) -> Option<Mapping> {
    maps.lines()
        .filter_map(mapping)
        .find(|m| m.exec && (m.start..m.end).contains(&addr))
}

/// The readable and executable memory around `addr`: the mapping of /proc/self/maps
/// that holds it, joined with the readable and executable mappings right next to it (the
/// code may be split where only part of it moved onto huge pages).
pub(crate) fn code_range(maps: &str, addr: usize) -> Option<std::ops::Range<usize>> {
    let code: Vec<Mapping> = maps
        .lines()
        .filter_map(mapping)
        .filter(|m| m.read && m.exec)
        .collect();
    let at = code.iter().position(|m| (m.start..m.end).contains(&addr))?;
    let mut range = code[at].start..code[at].end;
    for m in code[at + 1..].iter() {
        if m.start != range.end {
            break;
        }
        range.end = m.end;
    }
    for m in code[..at].iter().rev() {
        if m.end != range.start {
            break;
        }
        range.start = m.start;
    }
    Some(range)
}

/// A line of /proc/self/maps, or one that heads a mapping in /proc/self/smaps.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    read: bool,
    exec: bool,
    /// It maps a file (inode not 0).
    file: bool,
    /// It maps [`CODE_FILE`].
    code_file: bool,
}

impl Mapping {
    /// Code moved already: anonymous, or our memory file.
    fn moved(&self) -> bool {
        !self.file || self.code_file
    }
}

fn mapping(line: &str) -> Option<Mapping> {
    let mut fields = line.split_ascii_whitespace();
    let (range, perms) = (fields.next()?, fields.next()?);
    let (start, end) = range.split_once('-')?;
    let file = fields.nth(2)? != "0";
    let code_file = fields
        .next()
        .and_then(|path| path.strip_prefix("/memfd:"))
        .is_some_and(|name| name == CODE_FILE);
    Some(Mapping {
        start: usize::from_str_radix(start, 16).ok()?,
        end: usize::from_str_radix(end, 16).ok()?,
        read: perms.as_bytes().first() == Some(&b'r'),
        exec: perms.as_bytes().get(2) == Some(&b'x'),
        file,
        code_file,
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
7f1000000000-7f1000600000 r-xs 00000000 00:0f 1025 /memfd:quickdraw-code (deleted)
7f2000000000-7f2000600000 r-xs 00000000 00:0f 1026 /memfd:other (deleted)
";
        let code = executable_mapping(maps, 0x55d000300000).unwrap();
        assert_eq!((code.start, code.end), (0x55d000200000, 0x55d000a00000));
        assert!(!code.moved());
        assert_eq!(
            executable_mapping(maps, 0x55d000a00010),
            None,
            "not executable"
        );
        let anon = executable_mapping(maps, 0x7f0000000010).unwrap();
        assert_eq!((anon.start, anon.end), (0x7f0000000000, 0x7f0000400000));
        assert!(anon.moved(), "anonymous: moved already");
        assert!(
            executable_mapping(maps, 0x7f1000000010).unwrap().moved(),
            "our memory file: moved already"
        );
        assert!(
            !executable_mapping(maps, 0x7f2000000010).unwrap().moved(),
            "someone else's memory file"
        );
    }

    #[test]
    fn the_code_range_joins_adjacent_readable_code_and_nothing_else() {
        // Partly moved: anonymous huge pages in the middle of the file's mapping.
        let maps = "\
55d000000000-55d000013000 r--p 00000000 fe:00 42 /usr/bin/quickdraw
55d000213000-55d000400000 r-xp 00013000 fe:00 42 /usr/bin/quickdraw
55d000400000-55d000600000 r-xp 00000000 00:00 0
55d000600000-55d000627000 r-xp 00400000 fe:00 42 /usr/bin/quickdraw
55d000627000-55d000628000 --xp 00427000 fe:00 42 /usr/bin/quickdraw
55d000828000-55d000829000 rw-p 00028000 fe:00 42 /usr/bin/quickdraw
7f0000000000-7f0000400000 r-xp 00000000 fe:00 43 /usr/lib/libc.so.6
";
        assert_eq!(
            code_range(maps, 0x55d000500000),
            Some(0x55d000213000..0x55d000627000),
            "joined both ways, stops at the execute-only page"
        );
        assert_eq!(
            code_range(maps, 0x55d000213000),
            Some(0x55d000213000..0x55d000627000)
        );
        assert_eq!(code_range(maps, 0x55d000627010), None, "not readable");
        assert_eq!(code_range(maps, 0x55d000828010), None, "not executable");
        assert_eq!(
            code_range(maps, 0x7f0000000010),
            Some(0x7f0000000000..0x7f0000400000),
            "a gap is not joined"
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
                let huge = huge_at(start);
                assert!(huge >= HUGE, "{huge} B on 2 MiB pages of {start:x}-{end:x}");
            }
            mode => eprintln!("THP {mode:?}: huge pages not checked"),
        }
        // Again: nothing breaks.
        assert!(huge_text().expect("second call").text > 0);
    }

    /// hugetlbfs pages added to the kernel's pool for a test, given back when dropped.
    struct Reserved {
        before: String,
    }

    const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

    impl Reserved {
        /// `n` more free 2 MiB pages, or None where this process may not (not root) or
        /// the kernel found fewer.
        fn add(n: usize) -> Option<Reserved> {
            let before = std::fs::read_to_string(NR_HUGEPAGES).ok()?;
            let now: usize = before.trim().parse().ok()?;
            std::fs::write(NR_HUGEPAGES, format!("{}", now + n)).ok()?;
            let reserved = Reserved { before };
            let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
            let free: usize = meminfo
                .lines()
                .find_map(|l| l.strip_prefix("HugePages_Free:"))?
                .trim()
                .parse()
                .ok()?;
            (free >= n).then_some(reserved)
        }
    }

    impl Drop for Reserved {
        fn drop(&mut self) {
            let _ = std::fs::write(NR_HUGEPAGES, self.before.trim());
        }
    }

    /// Under a W^X rule (`PR_SET_MDWE`; systemd's `MemoryDenyWriteExecute` is the same
    /// rule) the code still moves, through a memory file on hugetlbfs pages reserved for
    /// the test. In a child process (this test binary again, running only
    /// `under_write_xor_execute`): the rule cannot be lifted once set.
    #[test]
    fn the_code_moves_through_a_file_under_a_write_xor_execute_rule() {
        let reserved = Reserved::add(16);
        let expect = if reserved.is_some() { "huge" } else { "any" };
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "placement::text::tests::under_write_xor_execute"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env("QD_TEXT_UNDER_MDWE", expect)
            .output()
            .expect("runs the test binary");
        drop(reserved);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
        if expect == "any" {
            eprintln!("no hugetlbfs pages could be reserved: huge pages not checked");
        }
    }

    /// The child of the test above.
    #[test]
    #[ignore = "run in its own process by the_code_moves_through_a_file_under_a_write_xor_execute_rule"]
    fn under_write_xor_execute() {
        let Ok(expect) = std::env::var("QD_TEXT_UNDER_MDWE") else {
            return;
        };
        const PR_SET_MDWE: libc::c_int = 65;
        const PR_MDWE_REFUSE_EXEC_GAIN: libc::c_ulong = 1;
        // SAFETY: a process attribute; no memory is touched.
        let set = unsafe { libc::prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) };
        assert_eq!(set, 0, "PR_SET_MDWE: {}", io::Error::last_os_error());
        // The rule holds: memory cannot become executable.
        let probe = Scratch::aligned(HUGE).unwrap();
        // SAFETY: memory `probe` owns; refused, or it is unmapped when dropped.
        let gain = unsafe { libc::mprotect(probe.ptr(), HUGE, libc::PROT_READ | libc::PROT_EXEC) };
        assert_ne!(gain, 0, "W^X rule not in force");
        drop(probe);

        let moved = huge_text().expect("moves through a file");
        assert!(moved.via_file, "{moved:?}");
        if expect == "huge" {
            // All of it, at once (populated, not faulted in by later calls).
            assert!(
                moved.moved >= HUGE && moved.huge == moved.moved,
                "{moved:?}"
            );
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            let here = huge_text as *const () as usize;
            let code = executable_mapping(&maps, here).unwrap();
            assert!(code.code_file, "{maps}");
        }
        // The code runs on, and a second call finds it moved.
        assert_eq!(format!("{:x}", std::hint::black_box(0xf1_u8)), "f1");
        let again = huge_text().expect("second call");
        assert_eq!(
            (again.moved, again.huge, again.via_file),
            (moved.moved, moved.huge, true)
        );
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
7f1000000000-7f1000600000 r-xs 00000000 00:0f 1025 /memfd:quickdraw-code (deleted)
Size:               6144 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
Shared_Hugetlb:     6144 kB
Private_Hugetlb:       0 kB
7f2000000000-7f2000600000 r-xs 00000000 00:01 1026 /memfd:quickdraw-code (deleted)
AnonHugePages:         0 kB
ShmemPmdMapped:     4096 kB
";
        assert_eq!(huge_in(smaps, 0x55c112200000), 4 << 20);
        assert_eq!(huge_in(smaps, 0x55c112152000), 0);
        assert_eq!(huge_in(smaps, 0x1000), 0, "no such mapping");
        assert_eq!(huge_in(smaps, 0x7f1000000000), 6 << 20, "hugetlbfs");
        assert_eq!(huge_in(smaps, 0x7f2000000000), 4 << 20, "shmem");
    }
}
