//! TLS 1.3 client over a transport we own: rustls runs the handshake and keeps the
//! secrets and tickets, we protect the records.
//!
//! Why records are done outside rustls: the fire path must not allocate, and a request
//! record should be sealed before the trigger. rustls' record layer allocates per record,
//! even in the unbuffered API, and seals only when asked to send. So after the handshake the connection is
//! converted with `dangerous_into_kernel_connection()`: rustls keeps what only it can do
//! (key updates, session tickets) and hands us the traffic secrets and sequence numbers;
//! [`Sealer`] and [`Opener`] protect records with ring into buffers owned by the caller.
//!
//! Verification is always on: the server's chain is checked by rustls' webpki verifier
//! against the roots given to [`client_config`]. There is no way to replace it here.
//!
//! Sans-IO: nothing in this module touches a socket or a clock. The caller moves bytes
//! between these buffers and a smoltcp socket or a `TcpStream`, so every path can be
//! driven in memory (see the tests, which talk to a real rustls server).
//!
//! Lifecycle: [`Handshake::advance`] until [`Progress::Done`], then [`Session`] for the
//! life of the connection. A reconnect with the same `ClientConfig` resumes (tickets are
//! stored by [`Session::receive`]).

mod handshake;
mod record;
mod session;

#[cfg(any(test, feature = "fuzzing"))]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod peer;

pub use handshake::{
    client_config, roots_from_pem_file, system_roots, Established, Handshake, Progress,
};
pub use record::{
    Opener, Presealed, SealPosition, Sealer, HEADER_LEN, MAX_PLAINTEXT, MAX_RECORD_LEN, TAG_LEN,
};
pub use session::{Received, Session, RX_CAPACITY};

use std::path::PathBuf;

/// Why a TLS operation failed.
///
/// Any error from [`Handshake::advance`] or [`Session::receive`] is final, and so is
/// [`TlsError::KeyLimit`]: reconnect. A sealing call refused with [`TlsError::Stale`],
/// [`TlsError::OutputPending`], [`TlsError::BufferTooSmall`] or
/// [`TlsError::PlaintextTooLong`] changed nothing and the session stays usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The server's certificate did not verify (unknown issuer, wrong name, expired...).
    /// Printed as "certificate not trusted: ...".
    #[error("certificate not trusted: {0}")]
    InvalidCertificate(rustls::CertificateError),
    /// rustls refused the handshake or a post-handshake message (session ticket, key
    /// update), or the peer sent an alert during the handshake.
    #[error(transparent)]
    Rustls(rustls::Error),
    /// ring refused a key or a seal. (Not a `source`: `Unspecified` implements
    /// `std::error::Error` only with ring's `std` feature, and it says nothing more.)
    #[error("AEAD operation failed")]
    Crypto(ring::error::Unspecified),
    /// A record failed authentication: corrupted, forged, or sealed with another key.
    #[error("record failed authentication")]
    BadRecordMac,
    /// A received record, or the messages inside it, broke the protocol.
    #[error("malformed record: {0}")]
    BadRecord(&'static str),
    /// Received bytes do not fit the fixed receive buffer.
    #[error("received data does not fit the receive buffer")]
    RecordOverflow,
    /// More plaintext than one record carries (2^14 bytes).
    #[error("{0} bytes of plaintext do not fit one record (2^14)")]
    PlaintextTooLong(usize),
    /// The output buffer is too small; nothing was written.
    #[error("output buffer too small: {need} bytes needed")]
    BufferTooSmall { need: usize },
    /// The key reached its AEAD usage limit; reconnect.
    #[error("AEAD usage limit of this key reached")]
    KeyLimit,
    /// A pre-sealed record lost its position (another record was sealed first, or the
    /// key changed): throw it away and pre-seal again.
    #[error("pre-sealed record is stale")]
    Stale,
    /// Protocol output (a key update reply) must be sent before any new record.
    #[error("pending protocol output must be sent first")]
    OutputPending,
    /// The peer sent a fatal alert.
    #[error("peer sent alert {0:?}")]
    Alert(rustls::AlertDescription),
    /// The connection was closed (by either side) or failed earlier.
    #[error("connection closed")]
    Closed,
    /// The negotiated suite is not one we protect records for.
    #[error("unsupported cipher suite {0:?}")]
    UnsupportedSuite(rustls::CipherSuite),
    /// The roots file could not be read or parsed.
    #[error("roots file {path}: {source}")]
    RootsFile {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate in the roots file is not usable as a trust anchor.
    #[error("roots file {path}: {source}")]
    BadRoot {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    /// The operating system's trust store gave no usable root certificate (none
    /// installed, unreadable, or `SSL_CERT_FILE`/`SSL_CERT_DIR` pointing nowhere useful).
    #[error(
        "system trust store: no usable root certificate{}",
        .first_error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    NoSystemRoots {
        first_error: Option<rustls_native_certs::Error>,
    },
}

impl From<ring::error::Unspecified> for TlsError {
    fn from(e: ring::error::Unspecified) -> Self {
        TlsError::Crypto(e)
    }
}

impl From<rustls::Error> for TlsError {
    // Certificate failures get their own variant: the caller reports them differently
    // ("target X: certificate not trusted: ...") from protocol failures.
    fn from(e: rustls::Error) -> Self {
        match e {
            rustls::Error::InvalidCertificate(c) => TlsError::InvalidCertificate(c),
            e => TlsError::Rustls(e),
        }
    }
}
