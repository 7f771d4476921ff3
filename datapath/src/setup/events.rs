//! From a configured `[[event_sources]]` entry to the datapath's source spec.

use super::{ALPN, CONNECT_TIMEOUT};
use crate::event::source::SourceSpec;
use crate::event::sse_source::SseSpec;
use crate::event::udp_source::UdpSpec;
use crate::tls;
use quickdraw_config::{EventKind, EventSource, TrustAnchors};
use rustls::pki_types::ServerName;
use std::net::Ipv4Addr;

/// Why a configured event source cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum SourceSetupError {
    #[error("event source {source_name}: trust: {error}")]
    Trust {
        source_name: String,
        error: tls::TlsError,
    },
    #[error("event source {source_name}: {why}")]
    Invalid {
        source_name: String,
        why: &'static str,
    },
}

/// The datapath's spec of a configured event source (reads an SSE source's CA file).
pub fn event_source(s: &EventSource) -> Result<SourceSpec, SourceSetupError> {
    let invalid = |why| SourceSetupError::Invalid {
        source_name: s.name.clone(),
        why,
    };
    Ok(match s.kind {
        EventKind::Sse => {
            let address = s.address.ok_or_else(|| invalid("no address"))?;
            let name = s
                .server_name
                .clone()
                .ok_or_else(|| invalid("no server_name"))?;
            let roots = match s.trust.as_ref().ok_or_else(|| invalid("no trust"))? {
                TrustAnchors::System => tls::system_roots(),
                TrustAnchors::CaFile(path) => tls::roots_from_pem_file(path),
            }
            .and_then(|roots| tls::client_config(roots, ALPN))
            .map_err(|error| SourceSetupError::Trust {
                source_name: s.name.clone(),
                error,
            })?;
            let server_name = ServerName::try_from(name.clone())
                .map_err(|_| invalid("server_name is not a valid TLS name"))?;
            SourceSpec::Sse(SseSpec {
                name: s.name.clone(),
                address,
                server_name,
                tls: roots,
                host: name,
                port: address.port(),
                path: s.path.clone().ok_or_else(|| invalid("no path"))?,
                connect_timeout_ns: CONNECT_TIMEOUT.as_nanos() as u64,
                idle_timeout_ns: s.idle_timeout_ms * 1_000_000,
                max_event: s.max_event_bytes,
            })
        }
        EventKind::Udp => SourceSpec::Udp(UdpSpec {
            name: s.name.clone(),
            addr: s
                .group
                .or(s.kernel_address)
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
            port: s.port.ok_or_else(|| invalid("no port"))?,
            max_event: s.max_event_bytes,
        }),
    })
}
