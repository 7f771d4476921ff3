//! Fuzz body: the TLS record opener, on raw bytes and on records we sealed.

use super::Input;
use crate::tls::{Opener, Sealer, TlsError, MAX_PLAINTEXT, MAX_RECORD_LEN};
use ring::aead;
use rustls::ContentType;

/// The three TLS 1.3 AEADs, each with a key of its length.
fn pair(which: u8) -> (Sealer, Opener) {
    let (alg, key): (&'static aead::Algorithm, &[u8]) = match which % 3 {
        0 => (&aead::AES_128_GCM, &[1; 16]),
        1 => (&aead::AES_256_GCM, &[2; 32]),
        _ => (&aead::CHACHA20_POLY1305, &[3; 32]),
    };
    let iv = [7; 12];
    (
        Sealer::for_test(alg, key, iv, 0, 1 << 24),
        Opener::for_test(alg, key, iv, 0, 1 << 24),
    )
}

/// Input: a suite selector, then operations until the input runs dry. Each operation is
/// either raw bytes handed to the opener as a record, or a record we seal (content type,
/// plaintext length, padding) and then maybe damage (flip a byte, cut it short). An
/// undamaged record must open to exactly what was sealed; anything else must be refused
/// without a panic; after a refusal the opener is replaced, as a session would be.
pub fn tls_record(data: &[u8]) {
    let mut input = Input::new(data);
    let which = input.u8();
    let (mut sealer, mut opener) = pair(which);
    let mut record = vec![0u8; MAX_RECORD_LEN + 64];
    let mut ops = 0;
    while !input.is_empty() && ops < 32 {
        ops += 1;
        let op = input.u8();
        if op & 0x80 != 0 {
            let len = usize::from(input.u16()).min(record.len());
            let raw = input.take(len);
            let buf = &mut record[..raw.len()];
            buf.copy_from_slice(raw);
            if opener.open_in_place(buf).is_err() {
                // Raw bytes almost never authenticate; a session would now be over.
                (sealer, opener) = pair(which);
            }
            continue;
        }
        let content_type = match op & 3 {
            0 => ContentType::ApplicationData,
            1 => ContentType::Handshake,
            2 => ContentType::Alert,
            // Type 0 cannot be told from padding: never sealed.
            _ => ContentType::from(input.u8().max(1)),
        };
        let plaintext_len = usize::from(input.u16()) % (MAX_PLAINTEXT + 2);
        let plaintext: Vec<u8> = (0..plaintext_len).map(|i| (i as u8) | 1).collect();
        let len = match sealer.seal(content_type, &plaintext, &mut record) {
            Ok(len) => len,
            Err(TlsError::PlaintextTooLong(_)) => continue,
            Err(e) => panic!("sealing a valid plaintext failed: {e}"),
        };
        let damage = input.u8();
        let opened = match damage % 4 {
            // Flip one byte anywhere in the record.
            1 => {
                let at = usize::from(input.u16()) % len;
                record[at] ^= input.u8() | 1;
                opener.open_in_place(&mut record[..len])
            }
            // Cut it short.
            2 => {
                let cut = usize::from(input.u16()) % len;
                opener.open_in_place(&mut record[..cut])
            }
            _ => {
                let (typ, range) = opener
                    .open_in_place(&mut record[..len])
                    .expect("our own record opens");
                assert_eq!(typ, content_type);
                assert_eq!(&record[range], &plaintext[..]);
                continue;
            }
        };
        assert!(opened.is_err(), "a damaged record was accepted");
        (sealer, opener) = pair(which);
    }
}
