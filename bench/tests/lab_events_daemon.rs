//! The standing lab event server (root; own lab): started like `bench lab up` starts it,
//! driven by `bench lab emit`'s command, stopped by the lab's teardown.

use quickdraw_lab::events::UDP_PORT;
use quickdraw_lab::events_daemon::{self, Emit};
use quickdraw_lab::KERNEL_IP;
use quickdraw_lab::{LabPaths, LabSession};
use std::net::{SocketAddrV4, UdpSocket};
use std::path::Path;
use std::time::Duration;

#[test]
fn the_event_server_runs_beside_the_lab_and_emits_on_command() {
    let mut lab = LabSession::start().expect("lab up");
    let paths = LabPaths::standard();
    let bench = Path::new(env!("CARGO_BIN_EXE_bench"));
    events_daemon::spawn(&paths, bench).expect("event server starts");
    events_daemon::spawn(&paths, bench).expect("a second start finds it running");
    let pid: u32 = std::fs::read_to_string(paths.state_dir.join("events.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let feed = SocketAddrV4::new(KERNEL_IP, UDP_PORT);
    let socket = UdpSocket::bind(feed).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let done = events_daemon::emit(
        &paths,
        &Emit {
            sse: Some(r#"{"sku":"1001"}"#.into()),
            udp: Some(r#"{"sku":"1001","stock":3}"#.into()),
            to: Some(feed),
            ..Emit::default()
        },
    )
    .unwrap();
    assert_eq!((done.streams, done.datagrams, done.error), (0, 1, None));
    let mut buf = [0u8; 256];
    let (n, from) = socket.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], br#"{"sku":"1001","stock":3}"#);
    assert_eq!(from.port(), quickdraw_lab::events::UDP_SOURCE_PORT);

    lab.down().unwrap();
    let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"));
    assert!(gone, "the event server outlived the lab");
}
