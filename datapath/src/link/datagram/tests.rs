//! Memberships and group sockets on loopback, read back from the kernel's own table
//! (`/proc/net/igmp`). Unprivileged: joining a group needs no capability.

use super::*;
use std::time::{Duration, Instant};

/// Groups of these tests only (other tests and the lab use 239.18.0.1).
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 18, 0, 77);
const GROUP_2: Ipv4Addr = Ipv4Addr::new(239, 18, 0, 78);

fn lo() -> u32 {
    crate::xsk::if_index("lo").expect("lo")
}

/// Whether interface `ifindex` is a member of `group`, by the kernel's table: a line per
/// interface (`Idx Device : Count Querier`), then one per group (tab, hex address as a
/// host-order u32, users...).
fn joined(ifindex: u32, group: Ipv4Addr) -> bool {
    let table = std::fs::read_to_string("/proc/net/igmp").expect("/proc/net/igmp");
    let hex = format!("{:08X}", u32::from_ne_bytes(group.octets()));
    let mut current = None;
    for line in table.lines().skip(1) {
        if line.starts_with('\t') {
            if current == Some(ifindex) && line.split_whitespace().next() == Some(&hex) {
                return true;
            }
        } else {
            current = line.split_whitespace().next().and_then(|i| i.parse().ok());
        }
    }
    false
}

#[test]
fn a_membership_lasts_as_long_as_its_owner() {
    assert!(!joined(lo(), GROUP));
    let membership = Membership::join(GROUP, lo()).expect("join on lo");
    assert_eq!((membership.group(), membership.ifindex()), (GROUP, lo()));
    assert!(joined(lo(), GROUP), "joined on lo");
    drop(membership);
    assert!(!joined(lo(), GROUP), "left with the drop");
}

#[test]
fn a_membership_is_refused_for_a_unicast_address() {
    assert!(Membership::join(Ipv4Addr::LOCALHOST, lo()).is_err());
}

/// Reads `socket` until `want` datagrams came or 500 ms passed.
fn read(socket: &UdpSocket, want: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut got = Vec::new();
    let mut buf = [0; 64];
    while got.len() < want && Instant::now() < deadline {
        match kernel_recv(socket, &mut buf) {
            Some(n) => got.push(buf[..n].to_vec()),
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    got
}

#[test]
fn a_group_socket_takes_the_group_and_nothing_else() {
    let port = 39_177;
    let feed = kernel_socket(GROUP_2, port, Some(lo())).expect("group socket");
    assert!(joined(lo(), GROUP_2));
    let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket2::SockRef::from(&sender)
        .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
        .unwrap();
    // Unicast to the port first: a socket bound to the group never sees it.
    sender
        .send_to(b"unicast", (Ipv4Addr::LOCALHOST, port))
        .unwrap();
    sender.send_to(b"group", (GROUP_2, port)).unwrap();
    assert_eq!(read(&feed, 2), [b"group".to_vec()]);
}
