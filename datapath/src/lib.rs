//! quickdraw's datapath: AF_XDP sockets and UMEM, the pinned busy-poll loop, smoltcp TCP
//! and rustls TLS over UMEM frames, pre-built requests and the fire path.
//!
//! The AF_XDP layer and the smoltcp device arrive with the issue "datapath: AF_XDP
//! sockets, UMEM and a smoltcp device"; until then this crate is intentionally empty so
//! the workspace layout matches DESIGN.md from the first commit.
