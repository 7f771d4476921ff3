//! Zero allocations while events are parsed and matched (no lab, no privileges): the SSE
//! parser fed byte by byte and in one piece, every predicate form evaluated on each
//! event. One binary for it: the counting allocator is global.

mod common;

use common::alloc::{measure, Counting};
use quickdraw_datapath::event::predicate::Matcher;
use quickdraw_datapath::event::sse::SseParser;

#[global_allocator]
static GLOBAL: Counting = Counting;

const STREAM: &[u8] = b": hi\r\nevent: stock\r\nid: 1\r\ndata: {\"sku\":\"1001\",\r\n\
data: \"stock\":3,\"name\":\"caf\\u00e9\",\"items\":[{\"sku\":\"7\"}]}\r\n\r\n\
data: {\"sku\":\"1002\",\"stock\":0}\n\ndata: not json\n\n";

#[test]
fn parsing_and_matching_events_allocates_nothing() {
    // The instrument first: it must see an allocation.
    let ((), n) = measure(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert_eq!(n, 1, "the counting allocator counts");

    let matchers: Vec<Matcher> = [
        r#"sku == "1001" && stock > 0"#,
        r#"name == "café" && items.0.sku != "8""#,
        "stock <= 0",
        r#"bytes:"not json""#,
    ]
    .iter()
    .map(|p| Matcher::compile(p).unwrap())
    .collect();
    let mut parser = SseParser::new(4096);
    let mut hits = [0u32; 4];
    let ((), n) = measure(|| {
        for round in 0..50 {
            let mut on_event = |e: quickdraw_datapath::event::sse::SseEvent<'_>| {
                for (i, m) in matchers.iter().enumerate() {
                    hits[i] += u32::from(m.matches(e.data));
                }
            };
            if round % 2 == 0 {
                parser.feed(STREAM, &mut on_event);
            } else {
                for b in STREAM {
                    parser.feed(std::slice::from_ref(b), &mut on_event);
                }
            }
        }
    });
    assert_eq!(n, 0, "allocations while parsing and matching");
    assert_eq!(hits, [50, 50, 50, 50]);
}
