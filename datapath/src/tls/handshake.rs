//! The TLS 1.3 client handshake, driven sans-IO through rustls' unbuffered client and
//! converted into a [`Session`] once it completes; plus the client configuration.

use super::{Session, TlsError};
use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::unbuffered::{ConnectionState, EncodeError, EncodeTlsData, UnbufferedStatus};
use rustls::{ClientConfig, HandshakeKind, RootCertStore, SupportedCipherSuite};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A client configuration for order connections: ring, TLS 1.3 only, the given roots
/// (webpki verification, never replaced), ALPN, secret extraction on (required by
/// `dangerous_into_kernel_connection`), and rustls' default in-memory session store so a
/// reconnect with the same config resumes. Share one config across reconnects.
pub fn client_config(roots: RootCertStore, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.enable_secret_extraction = true;
    Ok(Arc::new(config))
}

/// The roots in a PEM file (every CERTIFICATE section); at least one is required.
pub fn roots_from_pem_file(path: impl AsRef<Path>) -> Result<RootCertStore, TlsError> {
    let path = path.as_ref();
    let file_err = |source| TlsError::RootsFile {
        path: path.to_owned(),
        source,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(file_err)? {
        roots
            .add(cert.map_err(file_err)?)
            .map_err(|source| TlsError::BadRoot {
                path: path.to_owned(),
                source,
            })?;
    }
    if roots.is_empty() {
        return Err(file_err(rustls::pki_types::pem::Error::NoItemsFound));
    }
    Ok(roots)
}

/// The operating system's trust store, read by rustls-native-certs: on Linux the
/// distribution's bundle (`/etc/ssl/certs/ca-certificates.crt` on Debian), or the file and
/// directory named by `SSL_CERT_FILE` and `SSL_CERT_DIR` when set. Certificates that do
/// not parse are skipped; none usable at all is [`TlsError::NoSystemRoots`].
pub fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(TlsError::NoSystemRoots {
            first_error: found.errors.into_iter().next(),
        });
    }
    Ok(roots)
}

/// What [`Handshake::advance`] achieved.
#[derive(Debug)]
pub enum Progress {
    /// Send `outgoing` (if not empty), then call again once more bytes have arrived.
    Continue,
    /// The handshake is complete. `outgoing` may still hold our Finished: send it before
    /// any record the session seals.
    Done(Box<Established>),
}

/// A completed handshake.
#[derive(Debug)]
pub struct Established {
    /// The connection, ready to seal and receive.
    pub session: Session,
    /// The protocol the server chose by ALPN, if any.
    pub alpn: Option<Vec<u8>>,
    /// Whether the server accepted a ticket from an earlier connection.
    pub resumed: bool,
    pub suite: SupportedCipherSuite,
}

/// One TLS 1.3 client handshake.
pub struct Handshake {
    /// `None` once converted into a session or failed.
    conn: Option<UnbufferedClientConnection>,
    /// Application data the server sent right behind its Finished (half-RTT data),
    /// handed to the session.
    early_plaintext: Vec<u8>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("in_progress", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

/// What one turn of rustls' state machine asks of us next.
enum Step {
    Again,
    NeedInput,
    Complete,
    PeerClosed,
    Failed(rustls::Error),
}

impl Handshake {
    /// Starts a handshake with `server_name` (SNI and the name the certificate must
    /// match). Nothing is sent until the first [`advance`](Self::advance).
    pub fn new(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Result<Handshake, TlsError> {
        Ok(Handshake {
            conn: Some(UnbufferedClientConnection::new(config, server_name)?),
            early_plaintext: Vec::new(),
        })
    }

    /// Feeds `incoming` (bytes received and not yet consumed: append to it, we drain what
    /// rustls consumed) and appends the bytes to send to `outgoing`. Send `outgoing`
    /// after every call, whatever it returns, errors included: after a failure it may
    /// carry our alert to the server.
    ///
    /// On [`Progress::Done`], `incoming` is empty: bytes that arrived behind the
    /// handshake (a partial record, typically the start of a session ticket) moved into
    /// the session, which processes them on its next [`Session::receive`].
    pub fn advance(
        &mut self,
        incoming: &mut Vec<u8>,
        outgoing: &mut Vec<u8>,
    ) -> Result<Progress, TlsError> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Err(TlsError::Closed);
            };
            let UnbufferedStatus { discard, state } = conn.process_tls_records(incoming);
            let mut discard = discard;
            let step = match state {
                Err(e) => Step::Failed(e),
                Ok(ConnectionState::EncodeTlsData(mut enc)) => {
                    encode(&mut enc, outgoing)?;
                    Step::Again
                }
                // The caller sends `outgoing` after we return, in order, so it counts as
                // transmitted already.
                Ok(ConnectionState::TransmitTlsData(tx)) => {
                    tx.done();
                    Step::Again
                }
                Ok(ConnectionState::BlockedHandshake) => Step::NeedInput,
                Ok(ConnectionState::ReadTraffic(mut rd)) => {
                    while let Some(rec) = rd.next_record() {
                        let rec = rec?;
                        discard += rec.discard;
                        self.early_plaintext.extend_from_slice(rec.payload);
                    }
                    Step::Again
                }
                Ok(ConnectionState::WriteTraffic(_)) => Step::Complete,
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => Step::PeerClosed,
                Ok(_) => Step::Failed(rustls::Error::General(
                    "unexpected unbuffered connection state".into(),
                )),
            };
            incoming.drain(..discard);
            match step {
                Step::Again => {}
                Step::NeedInput => return Ok(Progress::Continue),
                Step::Complete => return self.establish(incoming).map(Progress::Done),
                Step::PeerClosed => {
                    self.conn = None;
                    return Err(TlsError::Closed);
                }
                Step::Failed(e) => {
                    if let Some(mut conn) = self.conn.take() {
                        flush_alert(&mut conn, incoming, outgoing);
                    }
                    return Err(e.into());
                }
            }
        }
    }

    fn establish(&mut self, incoming: &mut Vec<u8>) -> Result<Box<Established>, TlsError> {
        let conn = self.conn.take().ok_or(TlsError::Closed)?;
        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
        let suite = conn
            .negotiated_cipher_suite()
            .ok_or(rustls::Error::HandshakeNotComplete)?;
        let (secrets, kernel) = conn.dangerous_into_kernel_connection()?;
        let session = Session::new(
            kernel,
            secrets,
            incoming,
            std::mem::take(&mut self.early_plaintext),
        )?;
        incoming.clear();
        Ok(Box::new(Established {
            session,
            alpn,
            resumed,
            suite,
        }))
    }
}

/// Appends one encoded chunk to `out`, sized exactly as rustls asks.
fn encode(
    enc: &mut EncodeTlsData<'_, ClientConnectionData>,
    out: &mut Vec<u8>,
) -> Result<(), TlsError> {
    let start = out.len();
    let mut want = 0;
    loop {
        out.resize(start + want, 0);
        match enc.encode(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(s)) if s.required_size > want => {
                want = s.required_size
            }
            Err(e) => {
                out.truncate(start);
                return Err(rustls::Error::General(e.to_string()).into());
            }
        }
    }
}

/// After a failure rustls has queued a fatal alert (e.g. bad_certificate); it is handed
/// out before the stored error is repeated. Best effort: the error is what matters.
///
/// `incoming` must be the caller's buffer, not an empty one: rustls may still hold
/// handshake messages located in it (the rest of the server's flight) and panics if the
/// buffer it is given no longer contains them.
fn flush_alert(conn: &mut UnbufferedClientConnection, incoming: &mut Vec<u8>, out: &mut Vec<u8>) {
    for _ in 0..4 {
        let UnbufferedStatus { discard, state } = conn.process_tls_records(incoming);
        let encoded = match state {
            Ok(ConnectionState::EncodeTlsData(mut enc)) => encode(&mut enc, out).is_ok(),
            _ => false,
        };
        incoming.drain(..discard);
        if !encoded {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::peer::{self, pki, server_output, server_receive, ALPN, NAME};
    use super::*;
    use rustls::{CertificateError, ServerConfig, ServerConnection};
    use std::io::Write;

    #[test]
    fn completes_with_each_tls13_suite_and_carries_data() {
        let pki = pki();
        let suites = peer::tls13_suites();
        assert_eq!(suites.len(), 3);
        for suite in suites {
            let mut pair =
                peer::connect(pki.client_config(), pki.server_config(Some(suite)), NAME).unwrap();
            assert_eq!(pair.est.suite, suite);
            assert_eq!(pair.session().cipher_suite(), suite);
            assert_eq!(pair.est.alpn.as_deref(), Some(ALPN));
            assert!(!pair.est.resumed);

            let mut out = [0u8; 256];
            let n = pair
                .session()
                .seal_app_data(b"GET / HTTP/1.1\r\n\r\n", &mut out)
                .unwrap();
            let got = server_receive(&mut pair.server, &out[..n]).unwrap();
            assert_eq!(got, b"GET / HTTP/1.1\r\n\r\n", "{suite:?}");

            pair.to_client
                .extend(peer::server_send(&mut pair.server, b"HTTP/1.1 200 OK\r\n"));
            assert_eq!(pair.deliver().unwrap(), b"HTTP/1.1 200 OK\r\n", "{suite:?}");
        }
    }

    #[test]
    fn unknown_ca_is_refused_and_the_server_told() {
        let (ours, theirs) = (pki(), peer::pki_named("some other CA"));
        let (result, server_end) =
            peer::try_connect(theirs.client_config(), ours.server_config(None), NAME);
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::InvalidCertificate(CertificateError::UnknownIssuer)
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("certificate not trusted: "),
            "{err}"
        );
        // Our alert went out in `outgoing` after the failure.
        assert!(
            matches!(server_end, Some(rustls::Error::AlertReceived(_))),
            "{server_end:?}"
        );
    }

    /// A CA regenerated under the same name (a rebuilt lab) is found by name, then its
    /// signature fails: BadSignature, not UnknownIssuer.
    #[test]
    fn regenerated_ca_with_the_same_name_is_refused() {
        let (ours, rebuilt) = (pki(), pki());
        let err =
            peer::connect(rebuilt.client_config(), ours.server_config(None), NAME).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::InvalidCertificate(CertificateError::BadSignature)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn wrong_name_is_refused() {
        let pki = pki();
        let err =
            peer::connect(pki.client_config(), pki.server_config(None), "other.lab").unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::InvalidCertificate(
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                )
            ),
            "{err:?}"
        );
    }

    #[test]
    fn reconnect_resumes_with_tickets_received_by_the_session() {
        let pki = pki();
        let (client, server) = (pki.client_config(), pki.server_config(None));
        let mut first = peer::connect(client.clone(), server.clone(), NAME).unwrap();
        // rustls' server sends its tickets (2 by default) after our Finished, so they
        // reach the session, not the handshake.
        assert_eq!(server.send_tls13_tickets, 2);
        assert!(!first.to_client.is_empty());
        assert_eq!(first.deliver().unwrap(), b"");

        let second = peer::connect(client, server, NAME).unwrap();
        assert!(second.est.resumed);
        assert_eq!(second.server.handshake_kind(), Some(HandshakeKind::Resumed));
    }

    /// Control for the test above: without the tickets, no resumption.
    #[test]
    fn no_resumption_without_the_tickets() {
        let pki = pki();
        let (client, server) = (pki.client_config(), pki.server_config(None));
        let _first = peer::connect(client.clone(), server.clone(), NAME).unwrap();
        let second = peer::connect(client, server, NAME).unwrap();
        assert!(!second.est.resumed);
        assert_eq!(second.server.handshake_kind(), Some(HandshakeKind::Full));
    }

    /// The server's first flight (with half-RTT data behind its Finished), cut
    /// `short` bytes before its end.
    fn half_rtt_flight(short: usize) -> (Handshake, Vec<u8>, Vec<u8>) {
        let pki = pki();
        let mut config = ServerConfig::clone(&pki.server_config(None));
        config.send_half_rtt_data = true;
        let mut server = ServerConnection::new(Arc::new(config)).unwrap();
        server.writer().write_all(b"early hello").unwrap();

        let name = ServerName::try_from(NAME).unwrap();
        let mut hs = Handshake::new(pki.client_config(), name).unwrap();
        let (mut incoming, mut outgoing) = (Vec::new(), Vec::new());
        assert!(matches!(
            hs.advance(&mut incoming, &mut outgoing),
            Ok(Progress::Continue)
        ));
        server_receive(&mut server, &outgoing).unwrap();
        let mut flight = server_output(&mut server);
        let tail = flight.split_off(flight.len() - short);
        (hs, flight, tail)
    }

    #[test]
    fn half_rtt_data_is_delivered_by_the_session() {
        let (mut hs, mut incoming, _) = half_rtt_flight(0);
        let mut outgoing = Vec::new();
        let Ok(Progress::Done(mut est)) = hs.advance(&mut incoming, &mut outgoing) else {
            panic!("handshake not done");
        };
        assert!(incoming.is_empty() && !outgoing.is_empty());
        let mut got = Vec::new();
        est.session
            .receive(&[], |d| got.extend_from_slice(d))
            .unwrap();
        assert_eq!(got, b"early hello");
    }

    #[test]
    fn partial_record_behind_the_handshake_moves_into_the_session() {
        let (mut hs, mut incoming, tail) = half_rtt_flight(3);
        let mut outgoing = Vec::new();
        let Ok(Progress::Done(mut est)) = hs.advance(&mut incoming, &mut outgoing) else {
            panic!("handshake not done");
        };
        assert!(incoming.is_empty());
        let mut got = Vec::new();
        est.session
            .receive(&tail, |d| got.extend_from_slice(d))
            .unwrap();
        assert_eq!(got, b"early hello");
        // The handshake is spent.
        assert!(matches!(
            hs.advance(&mut incoming, &mut outgoing),
            Err(TlsError::Closed)
        ));
    }

    #[test]
    fn roots_load_from_a_pem_file() {
        let pki = pki();
        let dir = std::env::temp_dir();
        let path = dir.join(format!("quickdraw-tls-roots-{}.pem", std::process::id()));
        std::fs::write(&path, format!("# lab CA\n{}", pki.ca_pem)).unwrap();
        let roots = roots_from_pem_file(&path);
        let empty = dir.join(format!("quickdraw-tls-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let none = roots_from_pem_file(&empty);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&empty);

        let roots = roots.unwrap();
        assert_eq!(roots.len(), 1);
        let client = client_config(roots, &[ALPN]).unwrap();
        assert!(peer::connect(client, pki.server_config(None), NAME).is_ok());

        assert!(matches!(
            none,
            Err(TlsError::RootsFile {
                source: rustls::pki_types::pem::Error::NoItemsFound,
                ..
            })
        ));
        let missing = roots_from_pem_file(dir.join("quickdraw-tls-no-such-file.pem"));
        assert!(matches!(
            missing,
            Err(TlsError::RootsFile {
                source: rustls::pki_types::pem::Error::Io(_),
                ..
            })
        ));
        // The OS store is exercised through SSL_CERT_FILE in control's lab test
        // (setting the variable here would race the other tests of this process).
    }
}
