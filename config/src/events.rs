//! `[[event_sources]]`: where event-triggered arms get their events. Arms name a source
//! with `--on NAME:PREDICATE`.
//!
//! ```toml
//! [[event_sources]]
//! name = "stock"              # [A-Za-z0-9_-]+
//! kind = "sse"                # a text/event-stream over verified TLS
//! address = "198.18.0.2:8443"
//! server_name = "target.lab"
//! trust = "/run/quickdraw-lab/ca.pem"
//! path = "/events"
//!
//! [[event_sources]]
//! name = "feed"
//! kind = "udp"                # one datagram = one event
//! port = 9000                 # on the appliance's address (AF_XDP), or:
//! kernel_address = "198.18.0.1"   # what the kernel backend binds (default 0.0.0.0)
//! # group = "239.1.2.3"       # a multicast group instead, on both backends (the
//!                             # kernel joins it on the interface; one feed per port)
//! ```

use crate::schema::TrustAnchors;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};

/// What carries the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Sse,
    Udp,
}

/// One event source. Fields that do not apply to its kind must be left out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSource {
    pub name: String,
    pub kind: EventKind,
    /// SSE: the server.
    pub address: Option<SocketAddrV4>,
    /// SSE: TLS server name and Host.
    pub server_name: Option<String>,
    /// SSE: `"system"` or a CA PEM file.
    pub trust: Option<TrustAnchors>,
    /// SSE: the stream's path.
    pub path: Option<String>,
    /// SSE: reconnect when nothing arrived for this long (0 = never).
    #[serde(default)]
    pub idle_timeout_ms: u64,
    /// UDP: the port.
    pub port: Option<u16>,
    /// UDP: a multicast group to receive instead of unicast (both backends; the kernel
    /// holds the interface's membership, on AF_XDP too).
    pub group: Option<Ipv4Addr>,
    /// UDP: the address the kernel backend's socket binds.
    pub kernel_address: Option<Ipv4Addr>,
    /// Largest event kept; bigger ones are dropped whole.
    #[serde(default = "default_max_event")]
    pub max_event_bytes: usize,
}

fn default_max_event() -> usize {
    4096
}

/// A field name and whether it is set.
type Field<'a> = (&'a str, bool);

/// Largest `max_event_bytes` accepted.
const MAX_EVENT_CEILING: usize = 64 * 1024;

pub(crate) fn check(sources: &[EventSource], report: &mut impl FnMut(String, String)) {
    let mut names = HashSet::new();
    for (i, s) in sources.iter().enumerate() {
        let key = |k: &str| format!("event_sources[{i}].{k}");
        let name_ok = !s.name.is_empty()
            && s.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            report(
                key("name"),
                format!("{:?}: use letters, digits, '_' and '-'", s.name),
            );
        }
        if !names.insert(s.name.as_str()) {
            report(
                key("name"),
                format!("{:?} is used by an earlier source", s.name),
            );
        }
        if s.max_event_bytes == 0 || s.max_event_bytes > MAX_EVENT_CEILING {
            report(
                key("max_event_bytes"),
                format!("{} is not in 1..={MAX_EVENT_CEILING}", s.max_event_bytes),
            );
        }
        let (needs, forbids): (&[Field], &[Field]) = match s.kind {
            EventKind::Sse => (
                &[
                    ("address", s.address.is_some()),
                    ("server_name", s.server_name.is_some()),
                    ("trust", s.trust.is_some()),
                    ("path", s.path.is_some()),
                ],
                &[
                    ("port", s.port.is_some()),
                    ("group", s.group.is_some()),
                    ("kernel_address", s.kernel_address.is_some()),
                ],
            ),
            EventKind::Udp => (
                &[("port", s.port.is_some_and(|p| p != 0))],
                &[
                    ("address", s.address.is_some()),
                    ("server_name", s.server_name.is_some()),
                    ("trust", s.trust.is_some()),
                    ("path", s.path.is_some()),
                ],
            ),
        };
        let kind = match s.kind {
            EventKind::Sse => "sse",
            EventKind::Udp => "udp",
        };
        for (field, present) in needs {
            if !present {
                report(key(field), format!("required for kind = {kind:?}"));
            }
        }
        for (field, present) in forbids {
            if *present {
                report(key(field), format!("does not apply to kind = {kind:?}"));
            }
        }
        if let Some(path) = &s.path {
            if !path.starts_with('/') {
                report(key("path"), format!("{path:?} must start with '/'"));
            }
        }
        if let Some(group) = s.group {
            if !group.is_multicast() {
                report(key("group"), format!("{group} is not a multicast address"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, EventKind};

    const LAB: &str = include_str!("../lab.toml");

    fn problems(extra: &str) -> Vec<String> {
        let at = LAB.find("[[event_sources]]").unwrap();
        let text = format!("{}{extra}", &LAB[..at]);
        match Config::from_toml(&text) {
            Err(e) => e.problems().iter().map(|p| p.to_string()).collect(),
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn the_lab_sources_are_valid() {
        let c = Config::from_toml(LAB).unwrap();
        let kinds: Vec<_> = c
            .event_sources
            .iter()
            .map(|s| (s.name.as_str(), s.kind))
            .collect();
        assert_eq!(
            kinds,
            [("lab-sse", EventKind::Sse), ("lab-udp", EventKind::Udp)]
        );
        assert_eq!(c.event_sources[1].port, Some(9000));
    }

    #[test]
    fn problems_are_reported_at_their_keys() {
        let got = problems(
            "[[event_sources]]\nname = \"a b\"\nkind = \"sse\"\npath = \"events\"\nport = 1\n\
             max_event_bytes = 0\n\
             [[event_sources]]\nname = \"u\"\nkind = \"udp\"\ngroup = \"10.0.0.1\"\n\
             [[event_sources]]\nname = \"u\"\nkind = \"udp\"\nport = 9\n",
        );
        let want = [
            "event_sources[0].name: \"a b\": use letters, digits, '_' and '-'",
            "event_sources[0].max_event_bytes: 0 is not in 1..=65536",
            "event_sources[0].address: required for kind = \"sse\"",
            "event_sources[0].server_name: required for kind = \"sse\"",
            "event_sources[0].trust: required for kind = \"sse\"",
            "event_sources[0].port: does not apply to kind = \"sse\"",
            "event_sources[0].path: \"events\" must start with '/'",
            "event_sources[1].port: required for kind = \"udp\"",
            "event_sources[1].group: 10.0.0.1 is not a multicast address",
            "event_sources[2].name: \"u\" is used by an earlier source",
        ];
        assert_eq!(got, want);
        let err = Config::from_toml(&format!(
            "{LAB}\n[[event_sources]]\nname = \"x\"\nkind = \"websocket\"\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("kind"), "{err}");
    }
}
