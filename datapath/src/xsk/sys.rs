//! The system calls and memory mappings behind AF_XDP: each wrapper turns -1 into
//! `io::Error::last_os_error()` and owns what it creates.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// Turns a libc return value into a `Result`, reading errno on -1.
macro_rules! syscall {
    ($call:expr) => {{
        let ret = $call;
        if ret == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }};
}

/// A new AF_XDP socket, close-on-exec.
pub fn xdp_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; a non-negative return is a fresh fd we now own.
    let fd = unsafe {
        syscall!(libc::socket(
            libc::AF_XDP,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            0
        ))?
    };
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(SOL_XDP, opt, value)` for a plain-old-data `value`.
pub fn set_option<T: Copy>(fd: BorrowedFd<'_>, opt: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to `size_of::<T>()` readable bytes for the duration of the call.
    unsafe {
        syscall!(libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            opt,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        ))?;
    }
    Ok(())
}

/// `getsockopt(SOL_XDP, opt)` into a plain-old-data `T`, which must be filled completely.
pub fn get_option<T: Copy>(fd: BorrowedFd<'_>, opt: libc::c_int) -> io::Result<T> {
    let mut value = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` has room for `len` bytes; the kernel writes at most `len` and updates it.
    unsafe {
        syscall!(libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            opt,
            value.as_mut_ptr().cast(),
            &mut len,
        ))?;
    }
    if len as usize != size_of::<T>() {
        // An older kernel answered with an older layout: refuse rather than misread it.
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "SOL_XDP option {opt}: kernel wrote {len} bytes, expected {}",
                size_of::<T>()
            ),
        ));
    }
    // SAFETY: zero-initialised, then fully written by the kernel (checked just above);
    // the T used here are integer-only kernel ABI structs, valid for any bit pattern.
    Ok(unsafe { value.assume_init() })
}

/// Binds an AF_XDP socket to `(ifindex, queue)` with `flags` (XDP_COPY, XDP_ZEROCOPY, ...).
pub fn bind(fd: BorrowedFd<'_>, ifindex: u32, queue: u32, flags: u16) -> io::Result<()> {
    bind_addr(fd, ifindex, queue, flags, 0)
}

/// Binds an AF_XDP socket to `(ifindex, queue)` on the UMEM of the bound socket `umem_of`
/// (`XDP_SHARED_UMEM`). The socket must have its own Fill and Completion rings when the
/// queue differs; the bind mode and need-wakeup are inherited from `umem_of`.
pub fn bind_shared(
    fd: BorrowedFd<'_>,
    ifindex: u32,
    queue: u32,
    umem_of: BorrowedFd<'_>,
) -> io::Result<()> {
    bind_addr(
        fd,
        ifindex,
        queue,
        libc::XDP_SHARED_UMEM,
        umem_of.as_raw_fd() as u32,
    )
}

fn bind_addr(
    fd: BorrowedFd<'_>,
    ifindex: u32,
    queue: u32,
    flags: u16,
    shared_umem_fd: u32,
) -> io::Result<()> {
    let addr = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: shared_umem_fd,
    };
    // SAFETY: `addr` is a valid sockaddr_xdp and its exact size is passed.
    unsafe {
        syscall!(libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_xdp).cast(),
            size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        ))?;
    }
    Ok(())
}

/// Tells the kernel there are Tx descriptors to send (the one syscall of the hot path).
///
/// EAGAIN/EBUSY/ENOBUFS mean "busy, will be picked up by the next kick"; ENETDOWN means
/// the link is down: all of them leave the descriptors in the ring, so they are not errors
/// of the kick itself (the same set libbpf's xsk code ignores).
pub fn kick_tx(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a zero-length sendto with null buffer and address reads no memory.
    let ret = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    busy_is_ok(ret)
}

/// Wakes the driver to refill its receive side from the Fill ring (needed only when the
/// Fill ring carries XDP_RING_NEED_WAKEUP).
pub fn wake_rx(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a zero-length recvfrom with null buffer and address writes no memory.
    let ret = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    busy_is_ok(ret)
}

/// A wake-up's result: the "busy, try again" errors leave the rings as they are and the
/// next wake-up picks them up, so they are not failures of the call.
fn busy_is_ok(ret: isize) -> io::Result<()> {
    if ret >= 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN) => Ok(()),
        _ => Err(err),
    }
}

/// The index of the interface called `name`.
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL byte")
    })?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name:?}"),
        ));
    }
    Ok(index)
}

/// An owned memory mapping, unmapped on drop.
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; which thread touches it is
// governed by the ring and UMEM types built on top, not by the mapping itself.
unsafe impl Send for Mmap {}
// SAFETY: as above; `Mmap` itself only hands out its base pointer.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// `len` bytes of zeroed private memory, populated up front so the hot path never
    /// takes a page fault on it, and backed by transparent huge pages where the kernel
    /// allows them (THP `madvise` or `always`).
    ///
    /// Huge pages because each received frame lands on its own 4 KiB page of the UMEM:
    /// with small pages the first look at an event's frame was a TLB miss and a page
    /// walk, every time, since thousands of frames rotate through Fill; eight 2 MiB pages
    /// cover the default 16 MiB UMEM and stay in the TLB. Without THP it works as before.
    pub fn anonymous(len: usize) -> io::Result<Mmap> {
        let map = Self::map(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)?;
        // SAFETY: advice on the range this value just mapped; neither call changes its
        // contents (zero either way). A refusal (THP off, an old kernel) is not an error.
        let populated = unsafe {
            libc::madvise(map.ptr.as_ptr().cast(), len, libc::MADV_HUGEPAGE);
            libc::madvise(map.ptr.as_ptr().cast(), len, libc::MADV_POPULATE_WRITE) == 0
        };
        if !populated {
            // Kernels before 5.14: fault every page in now, off the hot path.
            for page in (0..len).step_by(4096) {
                // SAFETY: `page` < `len`, inside the mapping; writing the zero it holds.
                unsafe { map.ptr.as_ptr().add(page).write_volatile(0) };
            }
        }
        Ok(map)
    }

    /// One of an AF_XDP socket's rings, shared with the kernel at page offset `offset`.
    pub fn ring(fd: BorrowedFd<'_>, len: usize, offset: u64) -> io::Result<Mmap> {
        Self::map(
            len,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            offset as libc::off_t,
        )
    }

    fn map(
        len: usize,
        flags: libc::c_int,
        fd: libc::c_int,
        offset: libc::off_t,
    ) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: a fresh mapping at an address the kernel chooses; no existing memory is
        // affected. Failure is MAP_FAILED, checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mmap { ptr, len })
    }

    pub fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value created and nobody else unmaps.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Mmap;

    /// The kernel's THP mode, when it has THP: "always", "madvise" or "never".
    #[test]
    fn anonymous_memory_is_zeroed_populated_and_on_huge_pages_where_the_kernel_allows() {
        let len = 8 << 20;
        let map = Mmap::anonymous(len).unwrap();
        let base = map.as_ptr().as_ptr();
        for at in (0..len).step_by(4096 * 7) {
            // SAFETY: inside the mapping, which this test owns.
            assert_eq!(unsafe { base.add(at).read() }, 0);
        }
        match crate::placement::thp_mode().as_deref() {
            Some("always" | "madvise") => {
                let huge = crate::placement::huge_at(base as usize);
                // At least the aligned middle of 8 MiB is on 2 MiB pages.
                assert!(huge >= 4 << 20, "AnonHugePages {huge} B of {len} B");
            }
            _ => eprintln!("no THP on this kernel: huge pages not checked"),
        }
    }
}
