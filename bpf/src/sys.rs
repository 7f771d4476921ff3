//! The crate's only `unsafe` code: the few libbpf and libc calls that
//! libbpf-rs does not wrap.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use libbpf_rs::libbpf_sys;

/// Attaches the XDP program `prog` to `ifindex` through a new BPF link
/// (`BPF_LINK_CREATE` with `BPF_XDP`), `flags` being `XDP_FLAGS_*_MODE`.
/// Closing the returned fd detaches the program; so does the process's exit.
///
/// libbpf-rs's `attach_xdp` also makes a link but cannot pass mode flags.
pub(crate) fn xdp_link(prog: BorrowedFd<'_>, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let target = i32::try_from(ifindex).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
    let opts = libbpf_sys::bpf_link_create_opts {
        sz: size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        flags,
        ..Default::default()
    };
    // SAFETY: `prog` is an open fd for the whole call; `opts` is initialised,
    // its `sz` is its own size, it outlives the call and libbpf only reads it.
    let fd = unsafe {
        libbpf_sys::bpf_link_create(prog.as_raw_fd(), target, libbpf_sys::BPF_XDP, &opts)
    };
    if fd < 0 {
        // libbpf returns -errno.
        return Err(io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: a non-negative return is a new link fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `if_nametoindex(3)`: the index of the interface called `name` in the
/// calling thread's network namespace.
pub(crate) fn if_nametoindex(name: &str) -> io::Result<u32> {
    let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(index)
}

/// A new, unbound AF_XDP socket: on kernel 6.18 the XSKMAP accepts one
/// without UMEM, rings or bind, and `bpf_redirect_map` then returns
/// `XDP_REDIRECT` for its slot, which is all a test run needs.
#[cfg(test)]
pub(crate) fn xsk_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant arguments, no pointers.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative return is a new socket fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Moves the calling thread (only) into a new, empty network namespace, so a
/// test can attach XDP to its own `lo` without touching the host's.
#[cfg(test)]
pub(crate) fn unshare_netns() -> io::Result<()> {
    // SAFETY: plain syscall with a constant argument, no pointers; it changes
    // the namespace of the calling thread only.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Adds a clsact qdisc to `ifindex` in the calling thread's network
/// namespace: `Ok(true)` if this call created it, `Ok(false)` if the
/// interface had one already (then it is not ours to remove).
///
/// libbpf-rs's `TcHook::create` does the same but reports both as success.
pub(crate) fn clsact_create(ifindex: u32) -> io::Result<bool> {
    quiet_expected_exists();
    let ifindex = i32::try_from(ifindex).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
    let mut hook = libbpf_sys::bpf_tc_hook {
        sz: size_of::<libbpf_sys::bpf_tc_hook>() as _,
        ifindex,
        attach_point: libbpf_sys::BPF_TC_INGRESS,
        ..Default::default()
    };
    // SAFETY: `hook` is initialised, its `sz` is its own size, and it
    // outlives the call; libbpf reads it and sends one netlink request.
    let err = unsafe { libbpf_sys::bpf_tc_hook_create(&mut hook) };
    match -err {
        0 => Ok(true),
        libc::EEXIST => Ok(false),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// What the kernel says, through libbpf, when the clsact qdisc [`clsact_create`] asks for
/// is already there: an answer we expect (EEXIST: not ours to remove), not a warning.
const EXISTS: &str = "Exclusivity flag on, cannot modify";

/// libbpf prints the message the kernel attaches to a netlink error as a warning on
/// stderr, so an existing qdisc put `libbpf: Kernel error message: Exclusivity flag on,
/// cannot modify` at the top of `bench run` (after `bench lab loss`, which leaves its
/// clsact). From the first qdisc request on, libbpf's messages go to stderr as its own
/// printer sends them, that one excepted. Process-wide: libbpf has one printer.
fn quiet_expected_exists() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Info, print_unless_expected)));
    });
}

fn print_unless_expected(_level: libbpf_rs::PrintLevel, message: String) {
    if !message.contains(EXISTS) {
        eprint!("{message}");
    }
}
