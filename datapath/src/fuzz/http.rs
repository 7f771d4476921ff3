//! Fuzz body: the HTTP/1.1 response parser, fed in fuzzer-chosen splits.

use super::Input;
use crate::http::ResponseParser;

/// Buffer sizes tried: a tiny one (every `TooLarge` path) and the datapath's own.
const CAPACITIES: [usize; 4] = [64, 512, 4096, 16 * 1024];
/// Responses looked for per input: bounds pipelined parsing.
const MAX_RESPONSES: usize = 64;

/// Input: a capacity selector, a HEAD flag, a split length, then the stream. The stream is
/// fed in pieces of the split length (1..=256 bytes).
pub fn http_response(data: &[u8]) {
    let mut input = Input::new(data);
    let capacity = CAPACITIES[usize::from(input.u8()) % CAPACITIES.len()];
    let head_request = input.u8() & 1 == 1;
    let split = usize::from(input.u8()) + 1;
    let stream = input.rest();
    let mut parser = ResponseParser::new(capacity);
    parser.expect(head_request);
    let mut responses = 0;
    for piece in stream.chunks(split) {
        let mut bytes = piece;
        loop {
            match parser.feed(bytes) {
                Ok(Some(response)) => {
                    assert_eq!(parser.body().len(), response.body_len);
                    assert!(response.head_len + response.body_len <= capacity);
                    assert!((100..=999).contains(&response.status));
                    let _ = parser.header("content-length");
                    if head_request && responses == 0 {
                        // `expect` covers the next response only.
                        assert_eq!(response.body_len, 0, "a HEAD response has no body");
                    }
                    responses += 1;
                    if responses == MAX_RESPONSES {
                        return;
                    }
                    // A pipelined response may already be buffered.
                    bytes = &[];
                }
                Ok(None) => break,
                Err(first) => {
                    // The first error repeats until reset, whatever comes next.
                    assert_eq!(parser.feed(b"HTTP/1.1 200 OK\r\n\r\n"), Err(first));
                    parser.reset();
                    assert!(!parser.started());
                    return;
                }
            }
        }
    }
}
