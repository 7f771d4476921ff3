//! From the validated configuration to what a datapath thread runs: the AF_XDP engine's
//! shape and each target's TLS client, warm request and timers. Shared by the control
//! daemon and the bench, so both start exactly the same datapath from the same file.

use crate::device::Pin;
use crate::http::{self, RequestTemplate};
use crate::target::TargetSpec;
use crate::{tls, EngineConfig};
use quickdraw_config::{Config, Target, TrustAnchors, XdpMode};
use rustls::pki_types::ServerName;
use std::net::Ipv4Addr;
use std::time::Duration;

/// What order connections negotiate: the requests are HTTP/1.1.
const ALPN: &[&[u8]] = &[b"http/1.1"];
/// A TCP connect plus TLS handshake that takes longer than this is retried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Smallest smoltcp socket table: a reconnect needs a fresh slot while the old
/// connection is still closing.
const MIN_SOCKETS: usize = 16;

/// Why a configured target cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("target {target}: trust: {source}")]
    Trust {
        target: String,
        source: tls::TlsError,
    },
    #[error("target {target}: server_name {name:?} is not a valid TLS name")]
    ServerName { target: String, name: String },
    #[error("target {target}: {what}: {source}")]
    Http {
        target: String,
        what: &'static str,
        source: http::HttpError,
    },
}

/// The request template of a configured target.
pub fn template(target: &Target) -> RequestTemplate {
    let r = &target.request;
    RequestTemplate {
        method: r.method.clone(),
        path: r.path.clone(),
        headers: r.headers.clone(),
        body: r.body.clone(),
    }
}

/// The datapath's view of a configured target. Reads its CA file, so a missing lab CA
/// fails here, before anything starts.
pub fn target_spec(t: &Target) -> Result<TargetSpec, SetupError> {
    let trust = |source| SetupError::Trust {
        target: t.name.clone(),
        source,
    };
    let roots = match &t.trust {
        TrustAnchors::System => tls::system_roots().map_err(trust)?,
        TrustAnchors::CaFile(path) => tls::roots_from_pem_file(path).map_err(trust)?,
    };
    let tls = tls::client_config(roots, ALPN).map_err(trust)?;
    let server_name =
        ServerName::try_from(t.server_name.clone()).map_err(|_| SetupError::ServerName {
            target: t.name.clone(),
            name: t.server_name.clone(),
        })?;
    let http = |what, source| SetupError::Http {
        target: t.name.clone(),
        what,
        source,
    };
    let warm_request = http::warm_request(&t.server_name, t.address.port(), &t.warm_path)
        .map_err(|e| http("warm_path", e))?;
    template(t).validate().map_err(|e| http("request", e))?;
    Ok(TargetSpec {
        name: t.name.clone(),
        address: t.address,
        server_name,
        tls,
        connections: t.connections as usize,
        warm_request: warm_request.into_boxed_slice(),
        warm_interval_ns: t.warm_interval_ms * 1_000_000,
        response_timeout_ns: t.response_timeout_ms * 1_000_000,
        connect_timeout_ns: CONNECT_TIMEOUT.as_nanos() as u64,
    })
}

/// The AF_XDP engine for the configured appliance, with room for `connections`
/// connections in all.
pub fn engine_config(config: &Config, connections: usize) -> EngineConfig {
    let a = &config.appliance;
    EngineConfig {
        queue: a.queue,
        rx_queues: a.queues.resolve(rx_queue_count(&a.interface)),
        steer: a.steer,
        xdp_mode: match a.xdp_mode {
            XdpMode::Native => quickdraw_bpf::AttachMode::Native,
            XdpMode::Skb => quickdraw_bpf::AttachMode::Skb,
        },
        gateway: a.gateway,
        sockets: (connections * 2).max(MIN_SOCKETS),
        neighbours: neighbours(config),
        ..EngineConfig::new(&a.interface, a.ip, a.prefix_len)
    }
}

/// The warming policy the configuration asks for.
pub fn warming(config: &Config) -> crate::warming::Warming {
    let w = &config.appliance.warming;
    let us = |v: u64| v.saturating_mul(1_000);
    crate::warming::Warming {
        send_ns: us(w.send_interval_us),
        wire_ns: us(w.frame_interval_us),
        wire_window_ns: w.frame_window_ms.saturating_mul(1_000_000),
        ramp_ns: us(w.ramp_us),
        ramp_interval_ns: us(w.ramp_interval_us),
        quiet_ns: us(w.quiet_us),
    }
}

/// How many receive queues `interface` has now (its `queues/rx-*` in sysfs: the channels
/// a NIC is configured with, `numrxqueues` of a veth); 1 when it cannot be read (the
/// bind then reports what is wrong with the interface).
pub fn rx_queue_count(interface: &str) -> u32 {
    let dir = std::path::Path::new("/sys/class/net")
        .join(interface)
        .join("queues");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(0)
        .max(1)
}

/// The next hops to pin: every target in the appliance's subnet and the gateway, with
/// the MACs the configuration gives (the rest are learned from their first ARP reply),
/// and any other neighbour the configuration names.
pub fn neighbours(config: &Config) -> Vec<Pin> {
    let a = &config.appliance;
    let mask = match a.prefix_len.min(32) {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n)),
    };
    let local = |ip: Ipv4Addr| u32::from(ip) & mask == u32::from(a.ip) & mask;
    let given = |ip: Ipv4Addr| a.neighbours.iter().find(|n| n.ip == ip).map(|n| n.mac.0);
    let hops = config
        .targets
        .iter()
        .map(|t| *t.address.ip())
        .filter(|ip| local(*ip))
        .chain(a.gateway)
        .chain(a.neighbours.iter().map(|n| n.ip));
    let mut pins: Vec<Pin> = Vec::new();
    for ip in hops {
        if !pins.iter().any(|p| p.ip == ip) {
            pins.push(Pin { ip, mac: given(ip) });
        }
    }
    pins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hops_are_pinned_with_the_macs_config_gives() {
        let text = r#"
            [appliance]
            backend = "af_xdp"
            interface = "qd0"
            core = 1
            ip = "198.18.0.10"
            gateway = "198.18.0.1"
            neighbours = [{ ip = "198.18.0.2", mac = "02:00:00:00:00:02" }]

            [[targets]]
            name = "lab"
            address = "198.18.0.2:443"
            server_name = "target.lab"
            trust = "system"
            [targets.request]
            path = "/api/order"

            [[targets]]
            name = "far"
            address = "203.0.113.7:443"
            server_name = "far.example"
            trust = "system"
            [targets.request]
            path = "/api/order"
        "#;
        let config = Config::from_toml(text).expect("valid");
        assert_eq!(
            neighbours(&config),
            vec![
                Pin {
                    ip: Ipv4Addr::new(198, 18, 0, 2),
                    mac: Some([2, 0, 0, 0, 0, 2]),
                },
                Pin {
                    ip: Ipv4Addr::new(198, 18, 0, 1),
                    mac: None,
                },
            ]
        );
    }
}
