//! An incremental decoder of HTTP/1.1 chunked transfer coding (RFC 9112 §7.1) for a
//! long-lived response body: chunk data is handed out as it arrives, in place, never
//! buffered, so an event is not held back waiting for the rest of its chunk.

/// Why the chunked framing is broken; the stream cannot be trusted after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad chunked framing: {0}")]
pub struct ChunkedError(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size; `digits` so far.
    Size {
        digits: u8,
    },
    /// After the size: extensions (ignored) up to CR LF.
    Extension,
    /// Expecting the LF of the size line.
    SizeLf,
    /// This many data bytes to go.
    Data(u64),
    /// Expecting the CR LF after chunk data.
    DataCr,
    DataLf,
    /// After the last chunk: trailer lines up to an empty one; `empty` while the current
    /// line has no bytes yet.
    Trailer {
        empty: bool,
    },
    TrailerLf {
        empty: bool,
    },
    /// The body is complete.
    Done,
}

/// The decoder; see the module docs.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    size: u64,
}

impl Default for Chunked {
    fn default() -> Chunked {
        Chunked::new()
    }
}

impl Chunked {
    pub fn new() -> Chunked {
        Chunked {
            state: State::Size { digits: 0 },
            size: 0,
        }
    }

    /// The last chunk and its trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, handing each run of chunk data to `on_data`. Bytes after the end
    /// of the body are refused.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<(), ChunkedError> {
        while let Some(&b) = input.first() {
            if let State::Data(left) = self.state {
                let n = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                on_data(&input[..n]);
                input = &input[n..];
                let left = left - n as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data(left)
                };
                continue;
            }
            input = &input[1..];
            self.state = match self.state {
                State::Size { digits } => match (b as char).to_digit(16) {
                    Some(d) if digits < 15 => {
                        self.size = self.size * 16 + u64::from(d);
                        State::Size { digits: digits + 1 }
                    }
                    Some(_) => return Err(ChunkedError("chunk size too large")),
                    None if digits == 0 => return Err(ChunkedError("expected a hex chunk size")),
                    None => match b {
                        b'\r' => State::SizeLf,
                        b';' | b' ' | b'\t' => State::Extension,
                        _ => return Err(ChunkedError("bad byte after the chunk size")),
                    },
                },
                State::Extension => match b {
                    b'\r' => State::SizeLf,
                    b'\n' => return Err(ChunkedError("bare LF in a chunk size line")),
                    _ => State::Extension,
                },
                State::SizeLf if b == b'\n' => {
                    let size = std::mem::take(&mut self.size);
                    if size == 0 {
                        State::Trailer { empty: true }
                    } else {
                        State::Data(size)
                    }
                }
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size { digits: 0 },
                State::SizeLf | State::DataLf => return Err(ChunkedError("expected LF")),
                State::DataCr => return Err(ChunkedError("expected CR LF after chunk data")),
                State::Trailer { empty } => match b {
                    b'\r' => State::TrailerLf { empty },
                    _ => State::Trailer { empty: false },
                },
                State::TrailerLf { empty } if b == b'\n' => {
                    if empty {
                        State::Done
                    } else {
                        State::Trailer { empty: true }
                    }
                }
                State::TrailerLf { .. } => return Err(ChunkedError("expected LF in trailers")),
                State::Done => return Err(ChunkedError("bytes after the end of the body")),
                State::Data(_) => unreachable!("handled above"),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(pieces: &[&[u8]]) -> Result<(Vec<u8>, bool), ChunkedError> {
        let mut c = Chunked::new();
        let mut out = Vec::new();
        for p in pieces {
            c.feed(p, |d| out.extend_from_slice(d))?;
        }
        Ok((out, c.is_done()))
    }

    const BODY: &[u8] = b"8\r\ndata: a\n\r\n17;ext=1\r\n\ndata: {\"sku\":\"1001\"}\n\n\r\n\
        3\r\nxyz\r\n0\r\nTrailer: 1\r\n\r\n";
    const DATA: &[u8] = b"data: a\n\ndata: {\"sku\":\"1001\"}\n\nxyz";

    #[test]
    fn chunks_decode_at_every_split() {
        assert_eq!(decode(&[BODY]).unwrap(), (DATA.to_vec(), true));
        for at in 0..=BODY.len() {
            let (a, b) = BODY.split_at(at);
            assert_eq!(
                decode(&[a, b]).unwrap(),
                (DATA.to_vec(), true),
                "split {at}"
            );
        }
        let bytes: Vec<&[u8]> = BODY.chunks(1).collect();
        assert_eq!(decode(&bytes).unwrap(), (DATA.to_vec(), true));
    }

    #[test]
    fn an_open_stream_is_not_done() {
        assert_eq!(decode(&[b"4\r\nab"]).unwrap(), (b"ab".to_vec(), false));
        assert_eq!(decode(&[b"0\r\n\r\n"]).unwrap(), (vec![], true));
    }

    #[test]
    fn broken_framing_is_refused() {
        for (body, why) in [
            (&b"x\r\n"[..], "expected a hex chunk size"),
            (b"1\n", "bad byte after the chunk size"),
            (b"1;x\n", "bare LF in a chunk size line"),
            (b"1\rx", "expected LF"),
            (b"1\r\nab", "expected CR LF after chunk data"),
            (b"1\r\na\rx", "expected LF"),
            (b"ffffffffffffffff0\r\n", "chunk size too large"),
            (b"0\r\n\r\nx", "bytes after the end of the body"),
            (b"0\r\nT: 1\rx", "expected LF in trailers"),
        ] {
            assert_eq!(decode(&[body]), Err(ChunkedError(why)), "{body:?}");
        }
    }
}
