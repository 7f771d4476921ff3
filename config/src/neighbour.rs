//! Pinned neighbours given in config: a next hop's MAC known in advance.

use serde::Deserialize;
use std::fmt;
use std::net::Ipv4Addr;

/// A next hop (a target in the appliance's subnet, or the gateway) and its MAC. Pinned
/// from the start; next hops not listed are pinned from their first ARP reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neighbour {
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
}

/// An Ethernet address, written `02:00:00:00:00:02`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl std::str::FromStr for MacAddr {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<MacAddr, &'static str> {
        const WHAT: &str = "a MAC address like 02:00:00:00:00:02";
        let mut out = [0u8; 6];
        let mut parts = text.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or(WHAT)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(WHAT);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| WHAT)?;
        }
        if parts.next().is_some() {
            return Err(WHAT);
        }
        Ok(MacAddr(out))
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_and_print() {
        let mac: MacAddr = "02:0a:FF:00:00:02".parse().unwrap();
        assert_eq!(mac.0, [2, 10, 255, 0, 0, 2]);
        assert_eq!(mac.to_string(), "02:0a:ff:00:00:02");
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:02:03",
            "2:00:00:00:00:02",
            "zz:00:00:00:00:02",
            "+2:00:00:00:00:02",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }
}
