//! An established TLS 1.3 connection: our record layer ([`Sealer`], [`Opener`]) in fixed
//! buffers, with rustls' kernel connection kept for key updates and session tickets.

use super::record::{self, Opener, Presealed, SealPosition, Sealer, HEADER_LEN, MAX_RECORD_LEN};
use super::{TlsError, MAX_PLAINTEXT};
use rustls::client::ClientConnectionData;
use rustls::kernel::KernelConnection;
use rustls::{
    AlertDescription, ContentType, ExtractedSecrets, HandshakeType, SupportedCipherSuite,
};
use std::fmt;

/// Receive buffer size: one largest record (16,645 bytes) plus room for the next one's
/// start, so a full record never has to wait for buffer space.
pub const RX_CAPACITY: usize = 18 * 1024;

/// Our own protocol output: at most one KeyUpdate (27 bytes) is ever queued.
const OUT_CAPACITY: usize = 64;

/// KeyUpdate(update_not_requested): msg_type 24, length 1, request_update 0.
const KEY_UPDATE_NOT_REQUESTED: [u8; 5] = [24, 0, 0, 1, 0];

/// Alert(warning, close_notify).
const CLOSE_NOTIFY: [u8; 2] = [1, 0];

/// What one [`Session::receive`] call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The peer sent close_notify: no more data will come.
    pub closed: bool,
    /// Bytes waiting in [`Session::pending_output`]; send them before anything else.
    pub to_send: usize,
}

/// The keys and the rustls state that renews them, apart from the buffers so a record
/// in the receive buffer can be handled while these change.
struct Keys {
    kernel: KernelConnection<ClientConnectionData>,
    suite: SupportedCipherSuite,
    sealer: Sealer,
    opener: Opener,
}

/// Records we must send on our own (a key update reply), in a fixed buffer.
struct Outbox {
    buf: [u8; OUT_CAPACITY],
    len: usize,
}

/// One established connection. Sealing and opening never allocate; the receive buffer is
/// allocated once, at the handshake, and never grows.
///
/// Ordering rule: records leave in the order they were sealed or committed, and
/// [`pending_output`](Self::pending_output) goes before any record sealed after it
/// appeared (sealing refuses with [`TlsError::OutputPending`] until it is consumed).
pub struct Session {
    keys: Keys,
    out: Outbox,
    rx: Box<[u8]>,
    rx_len: usize,
    /// Half-RTT data received during the handshake, delivered by the first `receive`.
    early_plaintext: Vec<u8>,
    peer_closed: bool,
    we_closed: bool,
    /// A receive error left the stream position unknown: nothing more is accepted.
    failed: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("suite", &self.keys.suite.suite())
            .field("sealer", &self.keys.sealer)
            .field("opener", &self.keys.opener)
            .field("rx_len", &self.rx_len)
            .field("pending_output", &self.out.len)
            .field("peer_closed", &self.peer_closed)
            .field("we_closed", &self.we_closed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// `leftover`: bytes received behind the handshake, not yet processed.
    pub(crate) fn new(
        kernel: KernelConnection<ClientConnectionData>,
        secrets: ExtractedSecrets,
        leftover: &[u8],
        early_plaintext: Vec<u8>,
    ) -> Result<Session, TlsError> {
        let suite = kernel.negotiated_cipher_suite();
        let (tx_seq, tx) = secrets.tx;
        let (rx_seq, rx_secrets) = secrets.rx;
        let mut rx = vec![0; RX_CAPACITY].into_boxed_slice();
        rx.get_mut(..leftover.len())
            .ok_or(TlsError::RecordOverflow)?
            .copy_from_slice(leftover);
        Ok(Session {
            keys: Keys {
                sealer: Sealer::new(suite, &tx, tx_seq)?,
                opener: Opener::new(suite, &rx_secrets, rx_seq)?,
                kernel,
                suite,
            },
            out: Outbox {
                buf: [0; OUT_CAPACITY],
                len: 0,
            },
            rx,
            rx_len: leftover.len(),
            early_plaintext,
            peer_closed: false,
            we_closed: false,
            failed: false,
        })
    }

    pub fn cipher_suite(&self) -> SupportedCipherSuite {
        self.keys.suite
    }

    /// Position the next record will take; see [`Sealer`] for pre-sealing.
    pub fn next_position(&self) -> SealPosition {
        self.keys.sealer.position()
    }

    /// Seals `plaintext` (at most 2^14 bytes) as one application-data record into `out`;
    /// returns its length. Send it before anything sealed later.
    pub fn seal_app_data(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, TlsError> {
        self.check_can_send()?;
        self.keys
            .sealer
            .seal(ContentType::ApplicationData, plaintext, out)
    }

    /// Seals `plaintext` of any length as consecutive records of up to 2^14 bytes into
    /// `out`; returns the total length. Checks the room for all of them first.
    pub fn seal_app_data_all(
        &mut self,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, TlsError> {
        self.check_can_send()?;
        let need: usize = plaintext
            .chunks(MAX_PLAINTEXT)
            .map(|c| Sealer::record_len(c.len()))
            .sum();
        if out.len() < need {
            return Err(TlsError::BufferTooSmall { need });
        }
        let mut at = 0;
        for chunk in plaintext.chunks(MAX_PLAINTEXT) {
            at += self
                .keys
                .sealer
                .seal(ContentType::ApplicationData, chunk, &mut out[at..])?;
        }
        Ok(at)
    }

    /// Seals one application-data record at the next position without taking it (off
    /// the hot path). At fire time, [`commit`](Self::commit) it.
    pub fn preseal_app_data(
        &self,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<Presealed, TlsError> {
        self.check_can_send()?;
        self.keys
            .sealer
            .preseal(ContentType::ApplicationData, plaintext, out)
    }

    /// Takes the position of a pre-sealed record and returns its length: send those
    /// bytes now. [`TlsError::Stale`] if any record was sealed since (a keep-alive, our
    /// key update reply): pre-seal again.
    pub fn commit(&mut self, presealed: Presealed) -> Result<usize, TlsError> {
        self.check_commit(&presealed)?;
        self.keys.sealer.commit(presealed)
    }

    /// What [`commit`](Self::commit) would answer, changing nothing (the fire's
    /// rehearsal, `warming::Pass`).
    pub fn check_commit(&self, presealed: &Presealed) -> Result<usize, TlsError> {
        if self.failed || self.we_closed {
            return Err(TlsError::Closed);
        }
        // Stale first: pending output means our key update moved the sealer, so that is
        // the useful answer (pre-seal again).
        let len = self.keys.sealer.check(presealed)?;
        self.check_can_send()?;
        Ok(len)
    }

    /// Seals our close_notify into `out`; nothing can be sealed afterwards.
    pub fn close_notify(&mut self, out: &mut [u8]) -> Result<usize, TlsError> {
        self.check_can_send()?;
        let n = self
            .keys
            .sealer
            .seal(ContentType::Alert, &CLOSE_NOTIFY, out)?;
        self.we_closed = true;
        Ok(n)
    }

    /// Records this session must send on its own (a key update reply). Send them before
    /// any record sealed from now on, then [`consume_output`](Self::consume_output).
    pub fn pending_output(&self) -> &[u8] {
        &self.out.buf[..self.out.len]
    }

    /// Drops the first `n` bytes of [`pending_output`](Self::pending_output), now sent.
    pub fn consume_output(&mut self, n: usize) {
        let n = n.min(self.out.len);
        self.out.buf.copy_within(n..self.out.len, 0);
        self.out.len -= n;
    }

    /// Keeps the receive path warm between records (see [`Opener::warm`]) and the buffer
    /// records are gathered in; changes nothing the session reads.
    pub fn warm_receive(&mut self) {
        self.keys.opener.warm();
        crate::warming::touch(&self.rx[..self.rx.len().min(512)]);
    }

    /// Processes bytes received from the peer. Complete records are opened in place;
    /// application data goes to `on_data` (the slice is valid during the call only),
    /// session tickets to rustls' session store (which allocates: not a fire-path
    /// event), key updates renew our keys. A record may be split across calls and a call
    /// may carry several. Any error is final: reconnect.
    ///
    /// A handshake message split across records is refused ([`TlsError::BadRecord`]):
    /// servers send tickets and key updates in one record each.
    pub fn receive(
        &mut self,
        bytes: &[u8],
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<Received, TlsError> {
        if self.failed {
            return Err(TlsError::Closed);
        }
        if !self.early_plaintext.is_empty() {
            on_data(&std::mem::take(&mut self.early_plaintext));
        }
        if !self.peer_closed {
            if let Err(e) = self.receive_records(bytes, &mut on_data) {
                self.failed = true;
                return Err(e);
            }
        }
        Ok(Received {
            closed: self.peer_closed,
            to_send: self.out.len,
        })
    }

    fn receive_records(
        &mut self,
        mut bytes: &[u8],
        on_data: &mut impl FnMut(&[u8]),
    ) -> Result<(), TlsError> {
        loop {
            let n = bytes.len().min(self.rx.len() - self.rx_len);
            self.rx[self.rx_len..self.rx_len + n].copy_from_slice(&bytes[..n]);
            self.rx_len += n;
            bytes = &bytes[n..];

            let mut start = 0;
            while let Some(len) = complete_record(&self.rx[start..self.rx_len])? {
                let record = &mut self.rx[start..start + len];
                start += len;
                let (typ, range) = self.keys.opener.open_in_place(record)?;
                let body = &record[range];
                match typ {
                    ContentType::ApplicationData if !body.is_empty() => on_data(body),
                    ContentType::ApplicationData => {}
                    ContentType::Handshake => self.keys.on_handshake(body, &mut self.out)?,
                    ContentType::Alert => match *body {
                        [_, 0] => {
                            // RFC 8446 §6.1: anything after close_notify is ignored.
                            self.peer_closed = true;
                            self.rx_len = 0;
                            return Ok(());
                        }
                        [_, desc] => return Err(TlsError::Alert(AlertDescription::from(desc))),
                        _ => return Err(TlsError::BadRecord("malformed alert")),
                    },
                    _ => return Err(TlsError::BadRecord("unexpected content type")),
                }
            }
            self.rx.copy_within(start..self.rx_len, 0);
            self.rx_len -= start;

            if bytes.is_empty() {
                return Ok(());
            }
            // Cannot happen while headers are checked (a record fits the buffer), but
            // never loop without progress.
            if self.rx_len == self.rx.len() {
                return Err(TlsError::RecordOverflow);
            }
        }
    }

    fn check_can_send(&self) -> Result<(), TlsError> {
        if self.failed || self.we_closed {
            return Err(TlsError::Closed);
        }
        if self.out.len > 0 {
            return Err(TlsError::OutputPending);
        }
        Ok(())
    }
}

impl Keys {
    /// Post-handshake messages from the server, one or more per record.
    fn on_handshake(&mut self, mut msgs: &[u8], out: &mut Outbox) -> Result<(), TlsError> {
        if msgs.is_empty() {
            return Err(TlsError::BadRecord("empty handshake record"));
        }
        while !msgs.is_empty() {
            let &[typ, a, b, c, ref rest @ ..] = msgs else {
                return Err(TlsError::BadRecord(
                    "handshake message split across records",
                ));
            };
            let len = u32::from_be_bytes([0, a, b, c]) as usize;
            if rest.len() < len {
                return Err(TlsError::BadRecord(
                    "handshake message split across records",
                ));
            }
            let (body, tail) = rest.split_at(len);
            msgs = tail;
            match HandshakeType::from(typ) {
                HandshakeType::NewSessionTicket => self.kernel.handle_new_session_ticket(body)?,
                HandshakeType::KeyUpdate => {
                    // RFC 8446 §5.1: a key change must end its record.
                    if !tail.is_empty() {
                        return Err(TlsError::BadRecord("data behind KeyUpdate in its record"));
                    }
                    let requested = match body {
                        [0] => false,
                        [1] => true,
                        _ => return Err(TlsError::BadRecord("malformed KeyUpdate")),
                    };
                    self.on_key_update(requested, out)?;
                }
                _ => return Err(TlsError::BadRecord("unexpected post-handshake message")),
            }
        }
        Ok(())
    }

    fn on_key_update(&mut self, requested: bool, out: &mut Outbox) -> Result<(), TlsError> {
        let (seq, secrets) = self.kernel.update_rx_secret()?;
        self.opener.rekey(self.suite, &secrets, seq)?;
        // Reply once while a reply is still unsent, as rustls does: the peer needs one
        // update of our keys, not one per request.
        if requested && out.len == 0 {
            // RFC 8446 §4.6.3: our KeyUpdate goes out under the old key, everything
            // after it under the new one.
            out.len = self.sealer.seal(
                ContentType::Handshake,
                &KEY_UPDATE_NOT_REQUESTED,
                &mut out.buf,
            )?;
            let (seq, secrets) = self.kernel.update_tx_secret()?;
            self.sealer.rekey(self.suite, &secrets, seq)?;
        }
        Ok(())
    }
}

/// Length of the whole record at the start of `buf`, once all of it is there; the
/// header is checked as soon as it arrives.
fn complete_record(buf: &[u8]) -> Result<Option<usize>, TlsError> {
    let Some(hdr) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = HEADER_LEN + record::parse_header(hdr)?;
    debug_assert!(len <= MAX_RECORD_LEN);
    Ok((buf.len() >= len).then_some(len))
}

#[cfg(test)]
mod tests {
    use super::super::peer::{self, pki, server_output, server_receive, server_send, Pair, NAME};
    use super::*;
    use rustls::ServerConnection;

    /// A session with the server's tickets already processed.
    fn pair() -> Pair {
        let pki = pki();
        let mut pair = peer::connect(pki.client_config(), pki.server_config(None), NAME).unwrap();
        pair.deliver().unwrap();
        pair
    }

    fn send(pair: &mut Pair, request: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; Sealer::record_len(request.len())];
        let n = pair.session().seal_app_data(request, &mut out).unwrap();
        server_receive(&mut pair.server, &out[..n]).unwrap()
    }

    #[test]
    fn session_is_send() {
        fn send<T: Send>() {}
        send::<Session>();
    }

    #[test]
    fn large_response_arrives_byte_by_byte() {
        let mut pair = pair();
        let body: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let tls = server_send(&mut pair.server, &body);
        assert!(tls.len() > 2 * MAX_RECORD_LEN, "spans several records");
        let (mut got, mut calls) = (Vec::new(), 0);
        for byte in &tls {
            let r = pair
                .session()
                .receive(std::slice::from_ref(byte), |d| {
                    calls += 1;
                    got.extend_from_slice(d)
                })
                .unwrap();
            assert_eq!(
                r,
                Received {
                    closed: false,
                    to_send: 0
                }
            );
        }
        assert_eq!(got, body);
        assert_eq!(calls, 3, "one call per record");
        assert_eq!(
            pair.session().rx.len(),
            RX_CAPACITY,
            "the buffer never grew"
        );
    }

    #[test]
    fn several_records_in_one_chunk() {
        let pki = pki();
        let mut pair = peer::connect(pki.client_config(), pki.server_config(None), NAME).unwrap();
        // Tickets, three small records and a large one, all in one call.
        let mut chunk = std::mem::take(&mut pair.to_client);
        for part in [&b"a"[..], b"bb", b"ccc", &[7u8; 20_000]] {
            chunk.extend(server_send(&mut pair.server, part));
        }
        let mut got = Vec::new();
        pair.session()
            .receive(&chunk, |d| got.extend_from_slice(d))
            .unwrap();
        assert_eq!(got[..6], *b"abbccc");
        assert_eq!(got[6..], [7u8; 20_000]);
    }

    #[test]
    fn long_plaintext_is_split_into_records_the_server_reads() {
        let mut pair = pair();
        let body: Vec<u8> = (0..40_000u32).map(|i| (i % 239) as u8).collect();
        let mut out = vec![0u8; 41_000];
        let before = pair.session().next_position();
        assert!(matches!(
            pair.session().seal_app_data_all(&body, &mut out[..40_000]),
            Err(TlsError::BufferTooSmall { need: 40_066 })
        ));
        assert_eq!(pair.session().next_position(), before, "nothing sealed");
        let n = pair.session().seal_app_data_all(&body, &mut out).unwrap();
        assert_eq!(n, 40_000 + 3 * (HEADER_LEN + 1 + record::TAG_LEN));
        assert_eq!(server_receive(&mut pair.server, &out[..n]).unwrap(), body);
    }

    #[test]
    fn server_key_update_is_followed_both_ways() {
        let mut pair = pair();
        pair.server.refresh_traffic_keys().unwrap();
        let tls = server_send(&mut pair.server, b"after update");
        let mut got = Vec::new();
        let r = pair
            .session()
            .receive(&tls, |d| got.extend_from_slice(d))
            .unwrap();
        assert_eq!(got, b"after update", "opened with the server's new key");
        assert_eq!(
            r.to_send,
            Sealer::record_len(KEY_UPDATE_NOT_REQUESTED.len())
        );

        // Nothing may be sealed ahead of our reply.
        let mut out = [0u8; 64];
        assert!(matches!(
            pair.session().seal_app_data(b"x", &mut out),
            Err(TlsError::OutputPending)
        ));
        // Sent in two pieces, as a TCP socket with little room would take it.
        let reply = pair.session().pending_output().to_vec();
        pair.session().consume_output(10);
        assert_eq!(pair.session().pending_output(), &reply[10..]);
        pair.session().consume_output(usize::MAX);
        assert!(pair.session().pending_output().is_empty());
        server_receive(&mut pair.server, &reply).unwrap();

        assert_eq!(
            pair.session().next_position(),
            SealPosition { epoch: 1, seq: 0 }
        );
        assert_eq!(
            send(&mut pair, b"sealed with our new key"),
            b"sealed with our new key"
        );

        let tls = server_send(&mut pair.server, b"still readable");
        assert_eq!(pair.to_client.len(), 0);
        pair.to_client = tls;
        assert_eq!(pair.deliver().unwrap(), b"still readable");
    }

    #[test]
    fn close_notify_from_the_server_closes() {
        let mut pair = pair();
        pair.server.send_close_notify();
        let mut tls = server_output(&mut pair.server);
        tls.extend_from_slice(b"ignored garbage after close_notify");
        let r = pair.session().receive(&tls, |_| panic!("no data")).unwrap();
        assert!(r.closed);
        let r = pair
            .session()
            .receive(b"more", |_| panic!("no data"))
            .unwrap();
        assert!(r.closed);
    }

    #[test]
    fn our_close_notify_is_a_clean_eof_for_the_server() {
        let mut pair = pair();
        let mut out = [0u8; 64];
        let n = pair.session().close_notify(&mut out).unwrap();
        server_receive(&mut pair.server, &out[..n]).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            std::io::Read::read(&mut pair.server.reader(), &mut buf).unwrap(),
            0
        );
        assert!(matches!(
            pair.session().seal_app_data(b"late", &mut out),
            Err(TlsError::Closed)
        ));
    }

    #[test]
    fn corrupted_record_is_an_error_and_final() {
        let mut pair = pair();
        let mut tls = server_send(&mut pair.server, b"HTTP/1.1 200 OK\r\n");
        tls[HEADER_LEN + 3] ^= 0x20;
        let err = pair
            .session()
            .receive(&tls, |_| panic!("no data"))
            .unwrap_err();
        assert!(matches!(err, TlsError::BadRecordMac), "{err:?}");
        assert!(matches!(
            pair.session().receive(&[], |_| {}),
            Err(TlsError::Closed)
        ));
    }

    #[test]
    fn garbage_header_is_refused_as_soon_as_it_arrives() {
        let mut pair = pair();
        let err = pair
            .session()
            .receive(b"HTTP/1.1 400", |_| panic!("no data"))
            .unwrap_err();
        assert!(matches!(err, TlsError::BadRecord(_)), "{err:?}");
    }

    /// Records a rustls server would not send, sealed with its own keys.
    fn forged(content_type: ContentType, payload: &[u8]) -> Result<Received, TlsError> {
        let Pair {
            mut est, server, ..
        } = pair();
        let suite = est.suite;
        let secrets = ServerConnection::dangerous_extract_secrets(server).unwrap();
        let mut server_sealer = Sealer::new(suite, &secrets.tx.1, secrets.tx.0).unwrap();
        let mut out = [0u8; 256];
        let n = server_sealer.seal(content_type, payload, &mut out).unwrap();
        est.session.receive(&out[..n], |_| panic!("no data"))
    }

    #[test]
    fn forged_control_records() {
        // A fatal alert.
        assert!(matches!(
            forged(ContentType::Alert, &[2, 40]),
            Err(TlsError::Alert(AlertDescription::HandshakeFailure))
        ));
        // A ticket announcing more bytes than its record holds.
        assert!(matches!(
            forged(ContentType::Handshake, &[4, 0, 0, 100, 0, 0]),
            Err(TlsError::BadRecord(
                "handshake message split across records"
            ))
        ));
        // A KeyUpdate with a message behind it.
        assert!(matches!(
            forged(ContentType::Handshake, &[24, 0, 0, 1, 0, 4, 0, 0, 0]),
            Err(TlsError::BadRecord("data behind KeyUpdate in its record"))
        ));
        // A handshake message that has no place after the handshake.
        assert!(matches!(
            forged(ContentType::Handshake, &[20, 0, 0, 2, 0, 0]),
            Err(TlsError::BadRecord("unexpected post-handshake message"))
        ));
        // A ticket rustls cannot parse.
        assert!(matches!(
            forged(ContentType::Handshake, &[4, 0, 0, 2, 0, 0]),
            Err(TlsError::Rustls(_))
        ));
        // change_cipher_spec inside a protected record.
        assert!(matches!(
            forged(ContentType::ChangeCipherSpec, &[1]),
            Err(TlsError::BadRecord("unexpected content type"))
        ));
        // A well-formed KeyUpdate(update_not_requested) is followed silently.
        assert_eq!(
            forged(ContentType::Handshake, &KEY_UPDATE_NOT_REQUESTED).unwrap(),
            Received {
                closed: false,
                to_send: 0
            }
        );
    }

    #[test]
    fn presealed_request_survives_received_records() {
        let pki = pki();
        let mut pair = peer::connect(pki.client_config(), pki.server_config(None), NAME).unwrap();
        let mut early = [0u8; 256];
        let pre = pair
            .session()
            .preseal_app_data(b"POST /order", &mut early)
            .unwrap();
        // Tickets and a response arrive before the fire: receiving moves nothing we send.
        pair.to_client
            .extend(server_send(&mut pair.server, b"keep-alive response"));
        assert_eq!(pair.deliver().unwrap(), b"keep-alive response");

        let n = pair.session().commit(pre).unwrap();
        assert_eq!(
            server_receive(&mut pair.server, &early[..n]).unwrap(),
            b"POST /order"
        );
    }

    #[test]
    fn presealed_request_goes_stale_when_another_record_goes_first() {
        let mut pair = pair();
        let mut early = [0u8; 256];
        let pre = pair
            .session()
            .preseal_app_data(b"POST /order", &mut early)
            .unwrap();
        assert_eq!(send(&mut pair, b"GET /ping"), b"GET /ping");
        assert!(matches!(pair.session().commit(pre), Err(TlsError::Stale)));

        let pre = pair
            .session()
            .preseal_app_data(b"POST /order", &mut early)
            .unwrap();
        let n = pair.session().commit(pre).unwrap();
        assert_eq!(
            server_receive(&mut pair.server, &early[..n]).unwrap(),
            b"POST /order"
        );
    }

    #[test]
    fn presealed_request_goes_stale_on_key_update() {
        let mut pair = pair();
        let mut early = [0u8; 256];
        let pre = pair
            .session()
            .preseal_app_data(b"POST /order", &mut early)
            .unwrap();
        pair.server.refresh_traffic_keys().unwrap();
        pair.to_client = server_output(&mut pair.server);
        pair.deliver().unwrap();
        assert!(matches!(pair.session().commit(pre), Err(TlsError::Stale)));
    }
}
