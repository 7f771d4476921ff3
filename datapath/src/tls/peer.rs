//! Test peer: a real rustls server with an rcgen CA, pumped against our client in
//! memory.

use super::{client_config, Established, Handshake, Progress, Session, TlsError};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection, SupportedCipherSuite};
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;

pub(crate) const NAME: &str = "target.lab";
pub(crate) const ALPN: &[u8] = b"http/1.1";

/// A CA and a leaf certificate it issued for [`NAME`].
pub(crate) struct Pki {
    pub(crate) ca: CertificateDer<'static>,
    pub(crate) ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: Vec<u8>,
}

pub(crate) fn pki() -> Pki {
    pki_named("quickdraw test CA")
}

/// Like [`pki`], with a CA of that common name.
pub(crate) fn pki_named(ca_name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![NAME.to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    Pki {
        ca: ca.der().clone(),
        ca_pem: ca.pem(),
        leaf: leaf.der().clone(),
        leaf_key: leaf_key.serialize_der(),
    }
}

impl Pki {
    /// A TLS 1.3 server; `suite` restricts it to one cipher suite.
    pub(crate) fn server_config(&self, suite: Option<SupportedCipherSuite>) -> Arc<ServerConfig> {
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(suite) = suite {
            provider.cipher_suites = vec![suite];
        }
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.clone()));
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf.clone()], key)
            .unwrap();
        config.alpn_protocols = vec![ALPN.to_vec()];
        // Lets a test take the server's keys and forge records a real server would not.
        config.enable_secret_extraction = true;
        Arc::new(config)
    }

    /// Our client config, trusting this CA.
    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        client_config(roots, &[ALPN]).unwrap()
    }
}

/// The TLS 1.3 suites of the ring provider.
pub(crate) fn tls13_suites() -> Vec<SupportedCipherSuite> {
    let CryptoProvider { cipher_suites, .. } = rustls::crypto::ring::default_provider();
    cipher_suites
        .into_iter()
        .filter(|s| s.tls13().is_some())
        .collect()
}

/// Feeds TLS bytes to the server; returns the plaintext they carried.
pub(crate) fn server_receive(
    server: &mut ServerConnection,
    mut tls: &[u8],
) -> Result<Vec<u8>, rustls::Error> {
    let mut got = Vec::new();
    while !tls.is_empty() {
        server.read_tls(&mut tls).unwrap();
        server.process_new_packets()?;
        let mut buf = [0u8; 4096];
        loop {
            match server.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("server read: {e}"),
            }
        }
    }
    Ok(got)
}

/// Everything the server wants to send.
pub(crate) fn server_output(server: &mut ServerConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut out).unwrap();
    }
    out
}

/// The TLS bytes of `data` sent by the server as application data.
pub(crate) fn server_send(server: &mut ServerConnection, data: &[u8]) -> Vec<u8> {
    server.writer().write_all(data).unwrap();
    server_output(server)
}

/// A handshake pumped to completion: our side, the server, and the server's bytes sent
/// after our Finished (its session tickets), not yet given to the session.
#[derive(Debug)]
pub(crate) struct Pair {
    pub(crate) est: Established,
    pub(crate) server: ServerConnection,
    pub(crate) to_client: Vec<u8>,
}

impl Pair {
    pub(crate) fn session(&mut self) -> &mut Session {
        &mut self.est.session
    }

    /// Gives the pending server bytes to the session; returns the data delivered.
    pub(crate) fn deliver(&mut self) -> Result<Vec<u8>, TlsError> {
        let mut got = Vec::new();
        let bytes = std::mem::take(&mut self.to_client);
        self.est
            .session
            .receive(&bytes, |d| got.extend_from_slice(d))?;
        Ok(got)
    }
}

pub(crate) fn connect(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    name: &str,
) -> Result<Pair, TlsError> {
    try_connect(client, server, name).0
}

/// Like [`connect`]; when our side fails, also says how the server ended.
pub(crate) fn try_connect(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    name: &str,
) -> (Result<Pair, TlsError>, Option<rustls::Error>) {
    let name = ServerName::try_from(name.to_string()).unwrap();
    let mut hs = match Handshake::new(client, name) {
        Ok(hs) => hs,
        Err(e) => return (Err(e), None),
    };
    let mut server = ServerConnection::new(server).unwrap();
    let (mut to_client, mut to_server) = (Vec::new(), Vec::new());
    for _ in 0..16 {
        let progress = hs.advance(&mut to_client, &mut to_server);
        let served = server_receive(&mut server, &std::mem::take(&mut to_server));
        let progress = match progress {
            Ok(p) => p,
            Err(e) => return (Err(e), served.err()),
        };
        served.expect("server failed");
        to_client.extend(server_output(&mut server));
        if let Progress::Done(est) = progress {
            let pair = Pair {
                est: *est,
                server,
                to_client,
            };
            return (Ok(pair), None);
        }
    }
    panic!("handshake did not complete");
}
