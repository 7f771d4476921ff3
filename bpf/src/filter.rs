//! [`StampFilter`]: which IPv4/TCP frames the stamping programs record
//! (`struct stamp_config` in `stamp.h`).

use std::net::Ipv4Addr;

/// Size of `struct stamp_config`.
pub(crate) const CONFIG_LEN: usize = 12;

/// Which IPv4/TCP frames are stamped. A frame is stamped when its source or
/// its destination address is in `network`/`prefix_len`, its source or
/// destination port is `port` (when set), and it carries payload (when
/// `data_only`). The default stamps every IPv4/TCP frame, SYN, FIN and bare
/// ACKs included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StampFilter {
    /// The network; its bits beyond `prefix_len` are ignored.
    pub network: Ipv4Addr,
    /// 0 (any address) to 32 (one address).
    pub prefix_len: u8,
    /// Only frames from or to this TCP port; `None`: any port.
    pub port: Option<u16>,
    /// Only frames that carry TCP payload (no bare ACK, SYN or FIN).
    pub data_only: bool,
    /// IPv4/UDP datagrams too (event feeds), with `seq`, `ack` and flags 0 and the
    /// UDP payload's length; the same address, port and `data_only` rules apply.
    pub udp: bool,
}

impl Default for StampFilter {
    fn default() -> Self {
        StampFilter::ANY
    }
}

impl StampFilter {
    /// Every IPv4/TCP frame.
    pub const ANY: StampFilter = StampFilter {
        network: Ipv4Addr::UNSPECIFIED,
        prefix_len: 0,
        port: None,
        data_only: false,
        udp: false,
    };

    /// Frames from or to `network`/`prefix_len`, any port, with or without
    /// payload.
    pub fn network(network: Ipv4Addr, prefix_len: u8) -> StampFilter {
        StampFilter {
            network,
            prefix_len,
            ..StampFilter::ANY
        }
    }

    /// The `struct stamp_config` bytes; `None` if `prefix_len` is over 32.
    pub(crate) fn config(&self) -> Option<[u8; CONFIG_LEN]> {
        if self.prefix_len > 32 {
            return None;
        }
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        let net = u32::from(self.network) & mask;
        let mut config = [0; CONFIG_LEN];
        config[0..4].copy_from_slice(&net.to_be_bytes());
        config[4..8].copy_from_slice(&mask.to_be_bytes());
        config[8..10].copy_from_slice(&self.port.unwrap_or(0).to_be_bytes());
        config[10] = u8::from(self.data_only);
        config[11] = u8::from(self.udp);
        Some(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bytes_are_network_order() {
        let filter = StampFilter {
            network: Ipv4Addr::new(198, 18, 0, 77),
            prefix_len: 24,
            port: Some(443),
            data_only: true,
            udp: false,
        };
        assert_eq!(
            filter.config().unwrap(),
            [198, 18, 0, 0, 255, 255, 255, 0, 0x01, 0xbb, 1, 0]
        );
        let udp = StampFilter {
            udp: true,
            ..filter
        };
        assert_eq!(udp.config().unwrap()[11], 1);
    }

    #[test]
    fn any_is_all_zeros_like_the_map_after_load() {
        assert_eq!(StampFilter::default().config().unwrap(), [0; CONFIG_LEN]);
        // /0 ignores the address given.
        let all = StampFilter::network(Ipv4Addr::new(10, 1, 2, 3), 0);
        assert_eq!(all.config().unwrap(), [0; CONFIG_LEN]);
    }

    #[test]
    fn host_prefix_and_bad_prefix() {
        let host = StampFilter::network(Ipv4Addr::new(198, 18, 0, 2), 32);
        assert_eq!(
            host.config().unwrap()[..8],
            [198, 18, 0, 2, 255, 255, 255, 255]
        );
        assert!(StampFilter::network(Ipv4Addr::LOCALHOST, 33)
            .config()
            .is_none());
    }
}
