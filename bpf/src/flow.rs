//! [`Flow`]: a TCP connection the appliance owns, and its `flows` map key.

use std::net::SocketAddrV4;

/// An IPv4 TCP connection, from the appliance's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The appliance's address and port (the destination of incoming frames).
    pub local: SocketAddrV4,
    /// The peer's address and port (the source of incoming frames).
    pub remote: SocketAddrV4,
}

/// Size of `struct flow_key` in `steer.h`.
pub(crate) const KEY_LEN: usize = 12;

impl Flow {
    /// The `struct flow_key` bytes: remote ip, local ip, remote port, local
    /// port, all in network byte order, as an incoming frame carries them.
    pub(crate) fn key(&self) -> [u8; KEY_LEN] {
        let mut key = [0; KEY_LEN];
        key[0..4].copy_from_slice(&self.remote.ip().octets());
        key[4..8].copy_from_slice(&self.local.ip().octets());
        key[8..10].copy_from_slice(&self.remote.port().to_be_bytes());
        key[10..12].copy_from_slice(&self.local.port().to_be_bytes());
        key
    }
}

#[cfg(test)]
mod tests {
    use super::Flow;

    #[test]
    fn key_is_ingress_order_network_bytes() {
        let flow = Flow {
            local: "198.18.0.2:40000".parse().unwrap(),
            remote: "198.18.0.1:443".parse().unwrap(),
        };
        assert_eq!(
            flow.key(),
            [198, 18, 0, 1, 198, 18, 0, 2, 0x01, 0xbb, 0x9c, 0x40]
        );
    }
}
