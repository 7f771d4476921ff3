//! From the validated configuration to what a datapath thread runs: the AF_XDP engine's
//! shape and each target's TLS client, warm request and timers. Shared by the control
//! daemon and the bench, so both start exactly the same datapath from the same file.

mod events;
pub use events::{event_source, SourceSetupError};

use crate::appliance::TargetSpec;
use crate::http::{self, RequestTemplate};
use crate::{tls, EngineConfig};
use quickdraw_config::{Config, Target, TrustAnchors, XdpMode};
use rustls::pki_types::ServerName;
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
        interface: a.interface.clone(),
        queue: a.queue,
        xdp_mode: match a.xdp_mode {
            XdpMode::Native => quickdraw_bpf::AttachMode::Native,
            XdpMode::Skb => quickdraw_bpf::AttachMode::Skb,
        },
        ip: a.ip,
        prefix_len: a.prefix_len,
        gateway: a.gateway,
        mac: None,
        sockets: (connections * 2).max(MIN_SOCKETS),
        ..EngineConfig::lab()
    }
}
