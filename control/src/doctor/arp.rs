//! ARP requests from a packet socket: the RFC 5227 probe (sender address 0.0.0.0) that
//! asks who owns an address without claiming it. The one place in `control` that talks
//! to the kernel below the socket API std and rustix offer (no safe `sockaddr_ll`), so
//! it opts back into `unsafe`, each call with its SAFETY comment.
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

const ETH_P_ARP: u16 = 0x0806;
const REQUEST: u16 = 1;
const REPLY: u16 = 2;

/// An ARP packet for IPv4 over Ethernet (RFC 826), 28 bytes.
pub fn request(sender_mac: [u8; 6], sender_ip: Ipv4Addr, target: Ipv4Addr) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&REQUEST.to_be_bytes());
    p[8..14].copy_from_slice(&sender_mac);
    p[14..18].copy_from_slice(&sender_ip.octets());
    // Target hardware address left zero; target protocol address:
    p[24..28].copy_from_slice(&target.octets());
    p
}

/// The sender's MAC if `packet` is an ARP reply from `target`.
pub fn reply_from(packet: &[u8], target: Ipv4Addr) -> Option<[u8; 6]> {
    if packet.len() < 28 || packet[6..8] != REPLY.to_be_bytes() || packet[14..18] != target.octets()
    {
        return None;
    }
    packet[8..14].try_into().ok()
}

fn link_addr(ifindex: u32, mac: [u8; 6]) -> libc::sockaddr_ll {
    let mut addr = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ETH_P_ARP.to_be(),
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: [0; 8],
    };
    addr.sll_addr[..6].copy_from_slice(&mac);
    addr
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Broadcasts a request for `target` on interface `ifindex` (our MAC `mac`, our address
/// `sender`: 0.0.0.0 for a probe) and waits up to `wait` for a reply: its sender's MAC.
pub fn ask(
    ifindex: u32,
    mac: [u8; 6],
    sender: Ipv4Addr,
    target: Ipv4Addr,
    wait: Duration,
) -> io::Result<Option<[u8; 6]>> {
    // SAFETY: socket(2) takes no pointers; a non-negative return is a new fd we own.
    let fd = unsafe {
        check(libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            i32::from(ETH_P_ARP.to_be()),
        ))?
    };
    // SAFETY: `fd` was just returned by socket(2) and nobody else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let here = link_addr(ifindex, [0; 6]);
    // SAFETY: `here` is a valid sockaddr_ll and its exact size is passed.
    unsafe {
        check(libc::bind(
            fd.as_raw_fd(),
            (&here as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        ))?;
    }
    let packet = request(mac, sender, target);
    let broadcast = link_addr(ifindex, [0xff; 6]);
    // SAFETY: `packet` and `broadcast` are valid for the lengths passed.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&broadcast as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if sent == -1 {
        return Err(io::Error::last_os_error());
    }
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 128];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1.
        let ready = unsafe { check(libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32))? };
        if ready == 0 {
            continue;
        }
        // SAFETY: `buf` is writable for its whole length.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if let Some(mac) = reply_from(&buf[..n as usize], target) {
            return Ok(Some(mac));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_layout_and_reply_parse() {
        let target = Ipv4Addr::new(198, 18, 0, 10);
        let p = request([2, 0, 0, 0, 0, 1], Ipv4Addr::UNSPECIFIED, target);
        assert_eq!(&p[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&p[14..18], &[0, 0, 0, 0], "a probe claims no address");
        assert_eq!(&p[24..], &target.octets());
        assert_eq!(reply_from(&p, target), None, "a request is not a reply");
        let mut reply = p;
        reply[6..8].copy_from_slice(&REPLY.to_be_bytes());
        reply[8..14].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        reply[14..18].copy_from_slice(&target.octets());
        assert_eq!(reply_from(&reply, target), Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(reply_from(&reply, Ipv4Addr::new(1, 2, 3, 4)), None);
        assert_eq!(reply_from(&reply[..20], target), None);
    }
}
