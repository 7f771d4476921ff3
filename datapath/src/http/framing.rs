//! How long a response body is and whether the connection survives it, decided from a
//! parsed head by the rules of RFC 9112 §6.3, without allocating.

use super::HttpError;

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Length {
    /// No body: HEAD request, 204, 304 (1xx heads never get here).
    None,
    /// Exactly this many bytes.
    Fixed(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What the parser needs from a final (non-1xx) response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framing {
    pub(crate) length: Length,
    /// `Connection: close`, or HTTP/1.0 without `Connection: keep-alive`.
    pub(crate) close: bool,
}

/// Decides the framing of a final response head with `status` and HTTP/1.`minor`.
///
/// Content-Length syntax, Transfer-Encoding list syntax and the two together are
/// rejected even when the status or a HEAD request means no body follows: a head that
/// disagrees with itself is not trusted. Which codings are used matters only for a body.
pub(crate) fn framing(
    status: u16,
    minor: u8,
    headers: &[httparse::Header<'_>],
    head_request: bool,
) -> Result<Framing, HttpError> {
    let mut content_length = None;
    let mut chunked = None;
    let (mut close, mut keep_alive) = (false, false);
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            content_length = Some(merge_content_length(content_length, h.value)?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = Some(merge_transfer_coding(chunked, h.value)?);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for option in list(h.value) {
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if chunked.is_some() && content_length.is_some() {
        return Err(HttpError::ConflictingLength);
    }
    if chunked.is_some() && minor == 0 {
        // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
        return Err(HttpError::BadTransferEncoding {
            why: "sent in an HTTP/1.0 response",
        });
    }
    let close = close || (minor == 0 && !keep_alive);
    let length = if head_request || status == 204 || status == 304 {
        Length::None
    } else if let Some(ends_chunked) = chunked {
        if !ends_chunked {
            // The body would run until close; see `NoLength`.
            return Err(HttpError::BadTransferEncoding {
                why: "only `chunked` is supported (quickdraw sends no TE)",
            });
        }
        Length::Chunked
    } else if let Some(n) = content_length {
        Length::Fixed(n)
    } else {
        return Err(HttpError::NoLength { status });
    };
    Ok(Framing { length, close })
}

/// Elements of a comma-separated header list, trimmed, empty ones skipped.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|e| !e.is_empty())
}

/// Folds one Content-Length field into what earlier ones said. Repeats (`5, 5` or two
/// fields) are accepted when they agree, as RFC 9110 §8.6 allows.
fn merge_content_length(seen: Option<u64>, value: &[u8]) -> Result<u64, HttpError> {
    let bad = |why| HttpError::BadContentLength { why };
    let mut merged = seen;
    let mut any = false;
    for element in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if element.is_empty() || !element.iter().all(u8::is_ascii_digit) {
            return Err(bad("not a decimal number"));
        }
        let n = element.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        let n = n.ok_or(bad("overflows 64 bits"))?;
        if merged.is_some_and(|m| m != n) {
            return Err(bad("repeated with different values"));
        }
        merged = Some(n);
        any = true;
    }
    match merged {
        Some(n) if any => Ok(n),
        _ => Err(bad("not a decimal number")),
    }
}

/// Folds one Transfer-Encoding field in; `Ok(true)` while the codings so far are exactly
/// `chunked`. Anything else is refused here or, for the final coding, by the caller.
fn merge_transfer_coding(seen: Option<bool>, value: &[u8]) -> Result<bool, HttpError> {
    let mut chunked = seen;
    for coding in list(value) {
        if chunked == Some(true) {
            // Chunked must be last and applied once (RFC 9112 §6.1).
            return Err(HttpError::BadTransferEncoding {
                why: "a coding follows chunked",
            });
        }
        if chunked == Some(false) || !coding.eq_ignore_ascii_case(b"chunked") {
            chunked = Some(false);
        } else {
            chunked = Some(true);
        }
    }
    chunked.ok_or(HttpError::BadTransferEncoding { why: "empty" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<'a>(name: &'a str, value: &'a str) -> httparse::Header<'a> {
        httparse::Header {
            name,
            value: value.as_bytes(),
        }
    }

    fn fixed(headers: &[httparse::Header<'_>]) -> Result<Framing, HttpError> {
        framing(200, 1, headers, false)
    }

    #[test]
    fn content_length_forms() {
        let ok = |v: &str| fixed(&[h("Content-Length", v)]).map(|f| f.length);
        assert_eq!(ok("0"), Ok(Length::Fixed(0)));
        assert_eq!(ok("007"), Ok(Length::Fixed(7)));
        assert_eq!(ok("5, 5"), Ok(Length::Fixed(5)));
        assert_eq!(ok("18446744073709551615"), Ok(Length::Fixed(u64::MAX)));
        for (v, why) in [
            ("", "not a decimal number"),
            ("+5", "not a decimal number"),
            ("-1", "not a decimal number"),
            ("0x10", "not a decimal number"),
            ("5,", "not a decimal number"),
            ("1 2", "not a decimal number"),
            ("18446744073709551616", "overflows 64 bits"),
            ("5, 6", "repeated with different values"),
        ] {
            assert_eq!(ok(v), Err(HttpError::BadContentLength { why }), "{v:?}");
        }
        let two = |a, b| fixed(&[h("content-length", a), h("CONTENT-LENGTH", b)]);
        assert_eq!(two("3", "3").map(|f| f.length), Ok(Length::Fixed(3)));
        assert!(matches!(
            two("3", "4"),
            Err(HttpError::BadContentLength { .. })
        ));
    }

    #[test]
    fn transfer_encoding_forms() {
        let te = |vs: &[&'static str]| {
            let hs: Vec<_> = vs.iter().map(|v| h("Transfer-Encoding", v)).collect();
            fixed(&hs).map(|f| f.length)
        };
        assert_eq!(te(&["chunked"]), Ok(Length::Chunked));
        assert_eq!(te(&[" Chunked ,"]), Ok(Length::Chunked));
        for bad in [
            &["gzip"][..],
            &["gzip, chunked"],
            &["gzip", "chunked"],
            &["chunked, gzip"],
            &["chunked", "chunked"],
            &[""],
        ] {
            assert!(
                matches!(te(bad), Err(HttpError::BadTransferEncoding { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn conflicting_lengths_are_rejected_even_without_body() {
        let both = [h("Transfer-Encoding", "chunked"), h("Content-Length", "3")];
        assert_eq!(fixed(&both), Err(HttpError::ConflictingLength));
        assert_eq!(
            framing(304, 1, &both, false),
            Err(HttpError::ConflictingLength)
        );
        assert_eq!(
            framing(200, 1, &both, true),
            Err(HttpError::ConflictingLength)
        );
    }

    #[test]
    fn statuses_without_body_and_missing_length() {
        for (status, head) in [(204, false), (304, false), (200, true)] {
            assert_eq!(
                framing(status, 1, &[], head).map(|f| f.length),
                Ok(Length::None)
            );
        }
        // A HEAD response's Content-Length describes the GET body, not this one.
        let cl = [h("Content-Length", "1000")];
        assert_eq!(
            framing(200, 1, &cl, true).map(|f| f.length),
            Ok(Length::None)
        );
        assert_eq!(fixed(&[]), Err(HttpError::NoLength { status: 200 }));
        assert_eq!(
            framing(500, 1, &[], false),
            Err(HttpError::NoLength { status: 500 })
        );
    }

    #[test]
    fn connection_close_and_http10() {
        let cl = h("Content-Length", "0");
        let close = |minor, conn: Option<&'static str>| {
            let mut hs = vec![cl];
            hs.extend(conn.map(|c| h("Connection", c)));
            framing(200, minor, &hs, false).unwrap().close
        };
        assert!(!close(1, None));
        assert!(close(1, Some("close")));
        assert!(close(1, Some("Upgrade, CLOSE")));
        assert!(close(0, None));
        assert!(!close(0, Some("Keep-Alive")));
        assert!(close(0, Some("keep-alive, close")));
        let te10 = [h("Transfer-Encoding", "chunked")];
        assert!(matches!(
            framing(200, 0, &te10, false),
            Err(HttpError::BadTransferEncoding { .. })
        ));
    }
}
