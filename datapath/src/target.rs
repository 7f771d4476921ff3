//! A target as the datapath sees it: where it is, how to reach it over TLS, and how to
//! keep its pool of connections warm.

use rustls::pki_types::ServerName;
use std::net::SocketAddrV4;
use std::sync::Arc;

/// One target and how to keep its connections.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub name: String,
    pub address: SocketAddrV4,
    pub server_name: ServerName<'static>,
    pub tls: Arc<rustls::ClientConfig>,
    /// Connections kept open and warm.
    pub connections: usize,
    /// The rendered keep-warm request.
    pub warm_request: Box<[u8]>,
    pub warm_interval_ns: u64,
    pub response_timeout_ns: u64,
    pub connect_timeout_ns: u64,
}
