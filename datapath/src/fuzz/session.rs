//! Fuzz body: `Session::receive` on an established session, fed records the server's
//! keys sealed (application data, post-handshake messages, alerts of the fuzzer's
//! choosing) and raw bytes, in fuzzer-chosen splits.
//!
//! Every input gets a fresh session from a real in-memory handshake against a rustls
//! server, so inputs are independent; that handshake, not the receive path, bounds the
//! executions per second.

use super::Input;
use crate::tls::peer::{self, Pki};
use crate::tls::{Sealer, TlsError, MAX_PLAINTEXT};
use rustls::{ClientConfig, ContentType, ServerConfig, ServerConnection};
use std::sync::Arc;

/// Records per input.
const MAX_RECORDS: usize = 16;

/// What every input reuses: the CA, our client config and the server's (building them
/// generates keys: once per process).
#[derive(Debug)]
pub struct SessionRig {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl SessionRig {
    pub fn new() -> SessionRig {
        let pki: Pki = peer::pki();
        let mut server = Arc::unwrap_or_clone(pki.server_config(None));
        // No tickets: the handshake is all that is needed, and tickets cost a seal each.
        server.send_tls13_tickets = 0;
        SessionRig {
            client: pki.client_config(),
            server: Arc::new(server),
        }
    }
}

impl Default for SessionRig {
    fn default() -> Self {
        SessionRig::new()
    }
}

/// Input: a split length, then records until the input runs dry: an op byte, then for a
/// sealed record its length and body, for raw bytes their length and the bytes.
pub fn session_receive(rig: &SessionRig, data: &[u8]) {
    let mut pair = peer::connect(rig.client.clone(), rig.server.clone(), peer::NAME)
        .expect("in-memory handshake");
    pair.deliver().expect("the server's own bytes");
    let suite = pair.est.suite;
    let peer::Pair {
        mut est, server, ..
    } = pair;
    let secrets = ServerConnection::dangerous_extract_secrets(server).expect("server secrets");
    let mut sealer = Sealer::new(suite, &secrets.tx.1, secrets.tx.0).expect("server sealer");

    let mut input = Input::new(data);
    let split = usize::from(input.u16() % 4096) + 1;
    let mut stream = Vec::new();
    let mut sent_data = Vec::new();
    // Whether everything sent is plain application data in whole records, so all of it
    // must come out.
    let mut plain = true;
    let mut record = vec![0u8; crate::tls::MAX_RECORD_LEN];
    for _ in 0..MAX_RECORDS {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        let len = usize::from(input.u16()) % (MAX_PLAINTEXT + 1);
        let body = input.take(len);
        let content_type = match op % 8 {
            0 => {
                stream.extend_from_slice(body);
                plain = false;
                continue;
            }
            1 | 2 => ContentType::Handshake,
            3 => ContentType::Alert,
            4 => ContentType::from(op.max(1)),
            _ => ContentType::ApplicationData,
        };
        if content_type != ContentType::ApplicationData {
            plain = false;
        }
        let n = sealer
            .seal(content_type, body, &mut record)
            .expect("sealing at most 2^14 bytes");
        stream.extend_from_slice(&record[..n]);
        if content_type == ContentType::ApplicationData && plain {
            sent_data.extend_from_slice(body);
        }
    }

    let mut got = Vec::new();
    let mut failed = None;
    for piece in stream.chunks(split) {
        match est.session.receive(piece, |d| got.extend_from_slice(d)) {
            Ok(_) => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if failed.is_some() {
        // Any error is final.
        assert!(matches!(
            est.session.receive(b"\x17\x03\x03\x00\x00", |_| {}),
            Err(TlsError::Closed)
        ));
    }
    if plain {
        assert!(failed.is_none(), "our own records refused: {failed:?}");
        assert_eq!(got, sent_data);
    }
}
