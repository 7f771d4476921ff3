//! Response parsing: byte fixtures in every split, pipelining, limits, and seeded garbage.

use super::*;

const CAP: usize = 64 * 1024;

const CONTENT_LENGTH: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";
const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
    5;name=value\r\nhello\r\n7 ; a=\"q;r\"\r\n, world\r\n\
    0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n";
const NO_CONTENT: &[u8] = b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n";
const NOT_MODIFIED: &[u8] =
    b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\nContent-Length: 100\r\n\r\n";
const CONTINUE_THEN_CREATED: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n\
    HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n\
    HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
const HTTP10: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi";
const CLOSE_EMPTY_CHUNKED: &[u8] =
    b"HTTP/1.1 503 Busy\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

/// A fixture, what the parser must report for it, and its body.
struct Case {
    bytes: &'static [u8],
    want: Response,
    body: &'static [u8],
}

fn cases() -> Vec<Case> {
    let r = |status, head_len, body_len, close| Response {
        status,
        head_len,
        body_len,
        close,
    };
    vec![
        Case {
            bytes: CONTENT_LENGTH,
            want: r(200, 64, 5, false),
            body: b"hello",
        },
        Case {
            bytes: CHUNKED,
            want: r(200, 47, 12, false),
            body: b"hello, world",
        },
        Case {
            bytes: NO_CONTENT,
            want: r(204, 38, 0, false),
            body: b"",
        },
        Case {
            bytes: NOT_MODIFIED,
            want: r(304, 61, 0, false),
            body: b"",
        },
        Case {
            bytes: CONTINUE_THEN_CREATED,
            want: r(201, 43, 2, false),
            body: b"ok",
        },
        Case {
            bytes: HTTP10,
            want: r(200, 38, 2, true),
            body: b"hi",
        },
        Case {
            bytes: CLOSE_EMPTY_CHUNKED,
            want: r(503, 68, 0, true),
            body: b"",
        },
    ]
}

#[test]
fn fixture_head_lengths_are_what_the_cases_say() {
    // Guards the hand-counted `head_len`s above against edits to the fixtures.
    for c in cases() {
        let final_head = c.bytes.windows(7).rposition(|w| w == b"HTTP/1.").unwrap();
        let end = c.bytes[final_head..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap();
        assert_eq!(
            end + 4,
            c.want.head_len,
            "{:?}",
            String::from_utf8_lossy(c.bytes)
        );
    }
}

#[test]
fn whole_fixtures_parse() {
    for c in cases() {
        let mut p = ResponseParser::new(CAP);
        assert_eq!(p.feed(c.bytes), Ok(Some(c.want)));
        assert_eq!(p.body(), c.body);
        assert!(!p.started());
    }
}

#[test]
fn every_two_way_split_parses() {
    for c in cases() {
        for cut in 0..c.bytes.len() {
            let mut p = ResponseParser::new(CAP);
            assert_eq!(p.feed(&c.bytes[..cut]), Ok(None), "cut {cut}");
            assert_eq!(p.feed(&c.bytes[cut..]), Ok(Some(c.want)), "cut {cut}");
            assert_eq!(p.body(), c.body, "cut {cut}");
        }
    }
}

#[test]
fn one_byte_at_a_time_completes_on_the_last_byte() {
    for c in cases() {
        let mut p = ResponseParser::new(CAP);
        let (last, init) = c.bytes.split_last().unwrap();
        for (i, b) in init.iter().enumerate() {
            assert_eq!(p.feed(std::slice::from_ref(b)), Ok(None), "byte {i}");
            assert!(p.started());
        }
        assert_eq!(p.feed(std::slice::from_ref(last)), Ok(Some(c.want)));
        assert_eq!(p.body(), c.body);
    }
}

#[test]
fn head_request_has_no_body() {
    let mut p = ResponseParser::new(CAP);
    p.expect(true);
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
    let got = p.feed(head).unwrap().unwrap();
    assert_eq!((got.status, got.body_len), (200, 0));
    // `expect(true)` covered one response only.
    assert_eq!(p.feed(CONTENT_LENGTH).unwrap().map(|r| r.body_len), Some(5));
}

#[test]
fn pipelined_responses_in_one_feed() {
    let mut stream = CONTENT_LENGTH.to_vec();
    stream.extend_from_slice(CHUNKED);
    stream.extend_from_slice(&NO_CONTENT[..10]);
    let mut p = ResponseParser::new(CAP);
    assert_eq!(p.feed(&stream).unwrap().map(|r| r.body_len), Some(5));
    assert_eq!(p.body(), b"hello");
    assert!(p.started(), "the next response has begun");
    assert_eq!(p.feed(&[]).unwrap().map(|r| r.body_len), Some(12));
    assert_eq!(p.body(), b"hello, world");
    assert!(p.started());
    assert_eq!(p.feed(&[]), Ok(None));
    assert_eq!(
        p.feed(&NO_CONTENT[10..]).unwrap().map(|r| r.status),
        Some(204)
    );
    assert!(!p.started());
    assert_eq!(p.feed(&[]), Ok(None));
}

#[test]
fn started_tracks_the_current_response() {
    let mut p = ResponseParser::new(CAP);
    assert!(!p.started());
    assert_eq!(p.feed(&[]), Ok(None));
    assert!(!p.started());
    assert_eq!(p.feed(b"H"), Ok(None));
    assert!(p.started());
    // An interim response is a first byte too.
    p.reset();
    assert!(!p.started());
    assert_eq!(p.feed(b"HTTP/1.1 100 Continue\r\n\r\n"), Ok(None));
    assert!(p.started());
    assert!(p.feed(&CONTINUE_THEN_CREATED[25..]).unwrap().is_some());
    assert!(!p.started());
}

#[test]
fn chunked_body_larger_raw_than_capacity_fits_decoded() {
    // 1-byte chunks cost 6 bytes of framing each; in-place decoding reclaims them.
    let mut stream = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for i in 0..400u32 {
        stream.extend_from_slice(b"1\r\n");
        stream.push(b'a' + (i % 26) as u8);
        stream.extend_from_slice(b"\r\n");
    }
    stream.extend_from_slice(b"0\r\n\r\n");
    let mut p = ResponseParser::new(512);
    assert!(stream.len() > 2000);
    assert_eq!(p.feed(&stream).unwrap().map(|r| r.body_len), Some(400));
    assert!(p
        .body()
        .iter()
        .zip((0..26).cycle())
        .all(|(&b, i)| b == b'a' + i));
}

#[test]
fn oversized_inputs_are_errors_not_panics() {
    let too_large = Err(HttpError::TooLarge { capacity: 64 });
    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
    head.extend(std::iter::repeat_n(b"X-Pad: 0123456789\r\n".as_slice(), 10).flatten());
    let mut p = ResponseParser::new(64);
    assert_eq!(p.feed(&head), too_large);
    assert_eq!(p.feed(b"\r\n"), too_large, "errors stick until reset");
    p.reset();
    assert_eq!(
        p.feed(b"HTTP/1.1 204 OK\r\n\r\n").map(|r| r.is_some()),
        Ok(true)
    );

    for stream in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
    ] {
        let mut p = ResponseParser::new(64);
        assert_eq!(
            p.feed(stream),
            too_large,
            "{}",
            String::from_utf8_lossy(stream)
        );
    }
    // Head one byte at a time into a full buffer.
    let mut p = ResponseParser::new(64);
    let errors = head
        .iter()
        .filter(|b| p.feed(std::slice::from_ref(b)).is_err())
        .count();
    assert!(errors > 0);
    // What follows a response must fit too.
    let mut p = ResponseParser::new(NO_CONTENT.len() + 4);
    let mut two = NO_CONTENT.to_vec();
    two.extend_from_slice(NO_CONTENT);
    assert!(matches!(p.feed(&two), Err(HttpError::TooLarge { .. })));
    let mut p = ResponseParser::new(0);
    assert_eq!(p.feed(&[]), Ok(None));
    assert!(p.feed(b"H").is_err());
}

#[test]
fn too_many_headers_is_malformed() {
    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
    for _ in 0..=MAX_HEADERS {
        head.extend_from_slice(b"A: b\r\n");
    }
    head.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    let mut p = ResponseParser::new(CAP);
    assert_eq!(
        p.feed(&head),
        Err(HttpError::Malformed(httparse::Error::TooManyHeaders))
    );
}

#[test]
fn framing_errors() {
    let cases: &[(&[u8], HttpError)] = &[
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            HttpError::ConflictingLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
            HttpError::BadContentLength {
                why: "repeated with different values",
            },
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5a\r\n\r\n",
            HttpError::BadContentLength {
                why: "not a decimal number",
            },
        ),
        (
            b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n",
            HttpError::NoLength { status: 200 },
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            HttpError::UnexpectedStatus { status: 101 },
        ),
        (
            b"HTTP/1.1 099 Odd\r\n\r\n",
            HttpError::Malformed(httparse::Error::Status),
        ),
        (
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            HttpError::Malformed(httparse::Error::HeaderName),
        ),
        (
            b"HTTP/2 200\r\n\r\n",
            HttpError::Malformed(httparse::Error::Version),
        ),
        (
            b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
            HttpError::Malformed(httparse::Error::HeaderName),
        ),
    ];
    for (bytes, want) in cases {
        let mut p = ResponseParser::new(CAP);
        assert_eq!(
            p.feed(bytes),
            Err(*want),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn chunk_framing_errors() {
    let bad_chunk = |why| Err(HttpError::BadChunk { why });
    for (body, want) in [
        (&b"zz\r\n"[..], bad_chunk("invalid chunk-size line")),
        (b"5\nhello\r\n", bad_chunk("invalid chunk-size line")),
        (b"\r\n", bad_chunk("chunk size has no digits")),
        (b";ext\r\n", bad_chunk("chunk size has no digits")),
        (
            b"5;a\nb\r\nhello\r\n",
            bad_chunk("control byte in chunk extension"),
        ),
        (
            b"5;a\0\r\nhello\r\n",
            bad_chunk("control byte in chunk extension"),
        ),
        (
            b"5\r\nhelloXY",
            bad_chunk("chunk data not followed by CRLF"),
        ),
        (b"5\r\nhelloX", bad_chunk("chunk data not followed by CRLF")),
        (
            b"5\r\nhello\rX",
            bad_chunk("chunk data not followed by CRLF"),
        ),
        (
            b"5\r\nhello\n0\r\n\r\n",
            bad_chunk("chunk data not followed by CRLF"),
        ),
        (
            b"0\r\nBad Trailer\r\n\r\n",
            Err(HttpError::Malformed(httparse::Error::HeaderName)),
        ),
    ] {
        let mut stream = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        stream.extend_from_slice(body);
        let mut p = ResponseParser::new(CAP);
        assert_eq!(p.feed(&stream), want, "{}", String::from_utf8_lossy(body));
        // Byte by byte, the same error comes at the first byte that proves it.
        let mut p = ResponseParser::new(CAP);
        let first_err = stream
            .iter()
            .map(|b| p.feed(std::slice::from_ref(b)))
            .find(Result::is_err);
        assert_eq!(first_err, Some(want), "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn a_small_buffer_carries_an_endless_stream() {
    // Each response's bytes are dropped once the next feed begins, so the buffer need
    // only hold one response (plus what arrives with it), not the connection's history.
    let all = cases();
    let mut rng = fastrand::Rng::with_seed(0x10ad);
    let mut p = ResponseParser::new(256);
    for _ in 0..1_000 {
        let c = &all[rng.usize(..all.len())];
        let got = feed_randomly(&mut p, c.bytes, &mut rng).unwrap();
        assert_eq!(got, [(c.want, c.body.to_vec())]);
    }
}

/// Feeds `stream` in random pieces, collecting each response with its body.
fn feed_randomly(
    p: &mut ResponseParser,
    stream: &[u8],
    rng: &mut fastrand::Rng,
) -> Result<Vec<(Response, Vec<u8>)>, HttpError> {
    let mut got = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = rng.usize(0..=rest.len().min(40));
        let mut next = p.feed(&rest[..n]);
        rest = &rest[n..];
        while let Some(r) = next? {
            assert_eq!(p.body().len(), r.body_len);
            got.push((r, p.body().to_vec()));
            next = p.feed(&[]);
        }
    }
    Ok(got)
}

#[test]
fn random_splits_of_a_pipelined_stream_agree_with_the_fixtures() {
    let all = cases();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for _ in 0..2_000 {
        let picks: Vec<&Case> = (0..rng.usize(1..6))
            .map(|_| &all[rng.usize(..all.len())])
            .collect();
        let stream: Vec<u8> = picks.iter().flat_map(|c| c.bytes.iter().copied()).collect();
        let mut p = ResponseParser::new(1024);
        let got = feed_randomly(&mut p, &stream, &mut rng).unwrap();
        let want: Vec<_> = picks.iter().map(|c| (c.want, c.body.to_vec())).collect();
        assert_eq!(got, want);
        assert!(!p.started());
    }
}

#[test]
fn seeded_garbage_never_panics() {
    let mut rng = fastrand::Rng::with_seed(0xbad5eed);
    for _ in 0..50_000 {
        let len = rng.usize(0..256);
        let garbage: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let mut p = ResponseParser::new(rng.usize(0..512));
        let _ = feed_randomly(&mut p, &garbage, &mut rng);
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    // Plausible bytes reach the deeper states that uniform garbage cannot.
    const DICTIONARY: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r",
        b"0",
        b"5",
        b"f",
        b";",
        b":",
        b" ",
        b"\t",
        b"chunked",
        b"Content-Length: ",
        b"Transfer-Encoding: ",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"18446744073709551615",
        b"ffffffffffffffff",
        b"\0",
        b"\xff",
    ];
    let all = cases();
    let mut rng = fastrand::Rng::with_seed(0xf022);
    let mut completed = 0;
    for _ in 0..50_000 {
        let mut bytes = all[rng.usize(..all.len())].bytes.to_vec();
        for _ in 0..rng.usize(1..4) {
            let at = rng.usize(..=bytes.len());
            match rng.u8(..3) {
                0 if at < bytes.len() => bytes[at] = rng.u8(..),
                1 => {
                    let end = (at + rng.usize(0..8)).min(bytes.len());
                    bytes.drain(at..end);
                }
                _ => {
                    let word = DICTIONARY[rng.usize(..DICTIONARY.len())];
                    bytes.splice(at..at, word.iter().copied());
                }
            }
        }
        let mut p = ResponseParser::new(rng.usize(32..1024));
        p.expect(rng.u8(..8) == 0);
        if let Ok(got) = feed_randomly(&mut p, &bytes, &mut rng) {
            completed += got.len();
        }
    }
    // The mutations must leave many streams valid, or this test only exercises errors.
    assert!(completed > 5_000, "{completed}");
}

#[test]
fn header_of_the_last_response() {
    let mut p = ResponseParser::new(1024);
    let text = b"HTTP/1.1 204 No Content\r\nServer: nginx\r\nDate: Fri, 27 Nov 2026 08:00:01 GMT\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\ndate: Fri, 27 Nov 2026 08:00:02 GMT\r\n\r\nok";
    let first = p.feed(text).unwrap().unwrap();
    assert_eq!(first.status, 204);
    assert_eq!(
        p.header("date"),
        Some(&b"Fri, 27 Nov 2026 08:00:01 GMT"[..])
    );
    assert_eq!(p.header("X-Missing"), None);
    let second = p.feed(&[]).unwrap().unwrap();
    assert_eq!(second.status, 200);
    assert_eq!(
        p.header("Date"),
        Some(&b"Fri, 27 Nov 2026 08:00:02 GMT"[..])
    );
    assert_eq!(p.body(), b"ok");
    assert!(p.feed(&[]).unwrap().is_none());
    assert_eq!(p.header("Date"), None, "gone once the next feed starts");
}
