//! quickdraw's datapath: AF_XDP sockets and UMEM, the pinned busy-poll loop, smoltcp TCP
//! and rustls TLS over UMEM frames, pre-built requests and the fire path.

pub mod device;
pub mod xsk;
