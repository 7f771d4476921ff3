//! SCHED_FIFO for the calling thread: the one scheduler call rustix does not wrap.
#![allow(unsafe_code)]

use std::io;

/// Puts the calling thread under SCHED_FIFO at `priority` (1..=99).
pub fn set_fifo(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `param` is a valid sched_param for the duration of the call; pid 0 is the
    // calling thread; the kernel only reads it.
    let ret = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
