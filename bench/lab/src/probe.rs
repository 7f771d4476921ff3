//! The kernel-path probe: one verified TLS 1.3 request from 198.18.0.1 (on `qd0`) to the
//! lab's nginx, with std sockets and rustls, timed. The baseline every faster path is
//! compared with, and the check that the lab really serves what it claims.

mod http;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned};
use serde::Serialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

pub use http::Request;

use crate::layout::{LabPaths, HOST_IF, KERNEL_IP, SERVER_NAME, TARGET_IP, TARGET_PORT};
use crate::Error;

/// Where and how to probe. [`Probe::lab`] fills in the lab's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The local address to bind before connecting.
    pub local_ip: Ipv4Addr,
    /// The interface to bind to (SO_BINDTODEVICE), so that the probe never leaves by another
    /// route; `None` to let routing decide.
    pub device: Option<String>,
    /// The server.
    pub target: SocketAddrV4,
    /// SNI, certificate name and Host header.
    pub server_name: String,
    /// PEM file of the only roots trusted.
    pub ca_cert: PathBuf,
    /// Bound on connect, and on each read and write.
    pub timeout: Duration,
}

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// The local end of the connection.
    pub local: SocketAddr,
    /// The server.
    pub target: SocketAddr,
    /// HTTP status code.
    pub status: u16,
    /// Negotiated TLS version ("TLSv1.3").
    pub protocol: String,
    /// Negotiated cipher suite (e.g. "TLS13_AES_256_GCM_SHA384").
    pub cipher_suite: String,
    /// Negotiated ALPN protocol.
    pub alpn: Option<String>,
    /// TCP connect (SYN to established), µs.
    pub connect_us: u64,
    /// TLS handshake, µs.
    pub handshake_us: u64,
    /// Request written to response read, µs.
    pub request_us: u64,
    /// Response body, lossily decoded.
    pub body: String,
}

impl Probe {
    /// The lab's kernel path: from 198.18.0.1 on `qd0` to target.lab at 198.18.0.2:443,
    /// trusting only the lab CA.
    pub fn lab() -> Self {
        Probe {
            local_ip: KERNEL_IP,
            device: Some(HOST_IF.to_owned()),
            target: SocketAddrV4::new(TARGET_IP, TARGET_PORT),
            server_name: SERVER_NAME.to_owned(),
            ca_cert: LabPaths::standard().ca_cert,
            timeout: Duration::from_secs(5),
        }
    }

    /// `GET /healthz`: 204 when the lab is healthy.
    pub fn healthz(&self) -> Result<ProbeReport, Error> {
        self.send(&Request::get("/healthz"))
    }

    /// Connects, handshakes (verifying the server against `ca_cert`), sends `request` and
    /// reads the whole response.
    pub fn send(&self, request: &Request<'_>) -> Result<ProbeReport, Error> {
        let config = client_config(&self.ca_cert)?;
        let name = ServerName::try_from(self.server_name.clone())
            .map_err(|e| Error::Http(format!("server name {:?}: {e}", self.server_name)))?;
        let wire = request.render(&self.server_name)?;
        let addr = SocketAddr::V4(self.target);

        let t0 = Instant::now();
        let tcp = connect(
            self.local_ip,
            self.device.as_deref(),
            self.target,
            self.timeout,
        )?;
        let local = tcp.local_addr().map_err(|e| Error::Net {
            what: "local address of",
            addr,
            source: e,
        })?;
        let t1 = Instant::now();

        let conn = ClientConnection::new(config, name)?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| Error::from_tls_io("TLS handshake with", addr, e))?;
        }
        let t2 = Instant::now();

        tls.write_all(&wire)
            .map_err(|e| Error::from_tls_io("write to", addr, e))?;
        let response =
            http::read_response(&mut tls, request.expects_no_body()).map_err(|e| match e {
                http::ReadError::Io(io) => Error::from_tls_io("read from", addr, io),
                http::ReadError::Http(text) => Error::Http(text),
            })?;
        let t3 = Instant::now();

        // Polite close; the server may have closed already ("Connection: close").
        tls.conn.send_close_notify();
        let _ = tls.conn.complete_io(&mut tls.sock);

        Ok(ProbeReport {
            local,
            target: addr,
            status: response.status,
            protocol: tls
                .conn
                .protocol_version()
                .map_or_else(String::new, protocol_name),
            cipher_suite: tls
                .conn
                .negotiated_cipher_suite()
                .map_or_else(String::new, |s| format!("{:?}", s.suite())),
            alpn: tls
                .conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            connect_us: micros(t1 - t0),
            handshake_us: micros(t2 - t1),
            request_us: micros(t3 - t2),
            body: String::from_utf8_lossy(&response.body).into_owned(),
        })
    }
}

/// A TLS 1.3-only client configuration on the ring provider whose only roots are the
/// certificates in `ca_pem`, offering ALPN http/1.1. Verification is rustls' own (webpki):
/// there is deliberately no way to turn it off.
pub fn client_config(ca_pem: &Path) -> Result<Arc<ClientConfig>, Error> {
    let pem_error = |source| Error::CaPem {
        path: ca_pem.to_owned(),
        source,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).map_err(pem_error)? {
        roots.add(cert.map_err(pem_error)?)?;
    }
    if roots.is_empty() {
        return Err(pem_error(rustls::pki_types::pem::Error::NoItemsFound));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP connection from `local` (and `device`, when given) to `target`, with TCP_NODELAY
/// and `timeout` on connect, reads and writes.
///
/// Binding first is the point: 198.18.0.0/24 is routed to the default gateway whenever the
/// lab is down, and an unbound connect would then send lab traffic off the machine. Bound
/// to 198.18.0.1 on `qd0`, it fails locally instead (address not available, or no route).
pub fn connect(
    local: Ipv4Addr,
    device: Option<&str>,
    target: SocketAddrV4,
    timeout: Duration,
) -> Result<TcpStream, Error> {
    let addr = SocketAddr::V4(target);
    let local = SocketAddr::V4(SocketAddrV4::new(local, 0));
    let net = |what, addr| move |source| Error::Net { what, addr, source };
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .map_err(net("socket for", addr))?;
    if let Some(device) = device {
        socket
            .bind_device(Some(device.as_bytes()))
            .map_err(net("bind to device for", addr))?;
    }
    socket
        .bind(&SockAddr::from(local))
        .map_err(net("bind", local))?;
    socket
        .connect_timeout(&SockAddr::from(addr), timeout)
        .map_err(net("connect to", addr))?;
    let stream = TcpStream::from(socket);
    stream
        .set_nodelay(true)
        .map_err(net("TCP_NODELAY on", addr))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(net("read timeout on", addr))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(net("write timeout on", addr))?;
    Ok(stream)
}

fn protocol_name(version: ProtocolVersion) -> String {
    match version {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The first flight a rustls client trusting `ca_pem` sends to the lab's target: a real
/// TLS 1.3 ClientHello record, for exercising a raw TCP path (the AF_XDP datapath before
/// it speaks TLS itself).
pub fn client_hello(ca_pem: &Path) -> Result<Vec<u8>, Error> {
    let name = ServerName::try_from(SERVER_NAME).expect("the lab's server name is valid");
    let mut conn = ClientConnection::new(client_config(ca_pem)?, name)?;
    let mut out = Vec::new();
    while conn.wants_write() {
        // Writing into a Vec cannot fail.
        conn.write_tls(&mut out).expect("write_tls into a Vec");
    }
    Ok(out)
}

/// Whether `bytes` begin with a TLS handshake record carrying a ServerHello.
pub fn starts_with_server_hello(bytes: &[u8]) -> bool {
    bytes.len() >= 6 && bytes[0] == 0x16 && bytes[1] == 0x03 && bytes[5] == 0x02
}

impl std::fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {}: HTTP {} over {} {} (ALPN {}); connect {} µs, handshake {} µs, request {} µs",
            self.local,
            self.target,
            self.status,
            self.protocol,
            self.cipher_suite,
            self.alpn.as_deref().unwrap_or("none"),
            self.connect_us,
            self.handshake_us,
            self.request_us,
        )
    }
}
