use super::*;

/// An owned copy of one event, for comparing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    kind: Vec<u8>,
    data: Vec<u8>,
    id: Vec<u8>,
}

fn owned(e: SseEvent<'_>) -> Owned {
    Owned {
        kind: e.kind.to_vec(),
        data: e.data.to_vec(),
        id: e.id.to_vec(),
    }
}

fn ev(kind: &str, data: &str, id: &str) -> Owned {
    Owned {
        kind: kind.into(),
        data: data.into(),
        id: id.into(),
    }
}

/// Parses `stream` in pieces split at `splits` (ascending offsets).
fn parse_split(stream: &[u8], splits: &[usize], capacity: usize) -> (Vec<Owned>, SseParser) {
    let mut p = SseParser::new(capacity);
    let mut out = Vec::new();
    let mut at = 0;
    for &s in splits.iter().chain(std::iter::once(&stream.len())) {
        p.feed(&stream[at..s], |e| out.push(owned(e)));
        at = s;
    }
    (out, p)
}

fn parse(stream: &[u8]) -> Vec<Owned> {
    parse_split(stream, &[], 1024).0
}

#[test]
fn one_event_per_blank_line() {
    let s = b"data: {\"sku\":\"1001\"}\n\ndata: two\n\n";
    assert_eq!(
        parse(s),
        vec![ev("", "{\"sku\":\"1001\"}", ""), ev("", "two", "")]
    );
}

#[test]
fn data_lines_join_with_lf_and_type_and_id_are_kept() {
    let s = b"event: stock\nid: 7\ndata: a\ndata:b\ndata:  c\n\n";
    assert_eq!(parse(s), vec![ev("stock", "a\nb\n c", "7")]);
}

#[test]
fn every_line_ending_is_accepted() {
    for s in [
        &b"data: x\r\n\r\ndata: y\r\n\r\n"[..],
        b"data: x\r\rdata: y\r\r",
        b"data: x\n\ndata: y\n\n",
        b"data: x\r\n\ndata: y\n\r\n",
    ] {
        assert_eq!(parse(s), vec![ev("", "x", ""), ev("", "y", "")], "{s:?}");
    }
}

#[test]
fn comments_and_unknown_fields_are_ignored() {
    let s = b": keep-alive\nfoo: bar\ndatum: no\ndata: yes\n:another\n\n";
    assert_eq!(parse(s), vec![ev("", "yes", "")]);
}

#[test]
fn a_field_without_colon_has_an_empty_value() {
    // "data" alone is a data field with an empty value: two of them give "\n".
    assert_eq!(parse(b"data\ndata\n\n"), vec![ev("", "\n", "")]);
    assert_eq!(parse(b"data:\n\n"), vec![ev("", "", "")]);
}

#[test]
fn no_data_means_no_event_and_the_type_is_reset() {
    assert_eq!(parse(b"event: a\n\ndata: x\n\n"), vec![ev("", "x", "")]);
    assert_eq!(parse(b"id: 1\n\n\n\n"), vec![]);
}

#[test]
fn id_persists_and_nul_ids_are_ignored() {
    let s = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\0x\ndata: c\n\nid\ndata: d\n\n";
    assert_eq!(
        parse(s),
        vec![
            ev("", "a", "1"),
            ev("", "b", "1"),
            ev("", "c", "1"),
            ev("", "d", "")
        ]
    );
}

#[test]
fn retry_is_taken_only_when_all_digits() {
    let (_, p) = parse_split(b"retry: 1500\n", &[], 64);
    assert_eq!(p.retry_ms, Some(1500));
    let (_, p) = parse_split(b"retry: 1500\nretry: 15x\nretry: \n", &[], 64);
    assert_eq!(p.retry_ms, Some(1500));
    let (_, p) = parse_split(b"retry: 99999999999999999999999\n", &[], 64);
    assert_eq!(p.retry_ms, None, "overflow is not a number");
}

#[test]
fn a_leading_bom_is_skipped_once() {
    assert_eq!(parse(b"\xEF\xBB\xBFdata: x\n\n"), vec![ev("", "x", "")]);
    // A second BOM is content: a field named "\u{feff}data", ignored.
    assert_eq!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n"), vec![]);
    // A partial BOM is content too.
    assert_eq!(parse(b"\xEFdata: x\n\ndata: y\n\n"), vec![ev("", "y", "")]);
}

#[test]
fn oversized_events_are_dropped_whole_and_counted() {
    let (events, p) = parse_split(b"data: 12345\n\ndata: 123456\n\ndata: 1\n\n", &[], 5);
    assert_eq!(events, vec![ev("", "12345", ""), ev("", "1", "")]);
    assert_eq!((p.oversized, p.dispatched), (1, 2));
    let long_kind = format!(
        "event: {}\ndata: x\n\ndata: y\n\n",
        "k".repeat(MAX_KIND + 1)
    );
    let (events, p) = parse_split(long_kind.as_bytes(), &[], 64);
    assert_eq!((events, p.oversized), (vec![ev("", "y", "")], 1));
}

#[test]
fn an_event_without_its_blank_line_waits() {
    let mut p = SseParser::new(64);
    let mut n = 0;
    p.feed(b"data: x\n", |_| n += 1);
    assert_eq!(n, 0);
    p.feed(b"\n", |_| n += 1);
    assert_eq!(n, 1);
}

#[test]
fn reset_starts_a_new_stream_but_keeps_the_last_id() {
    let mut p = SseParser::new(64);
    p.feed(b"id: 9\ndata: x\n\ndata: half", |_| {});
    p.reset();
    let mut out = Vec::new();
    p.feed(b"\xEF\xBB\xBFdata: y\n\n", |e| out.push(owned(e)));
    assert_eq!(out, vec![ev("", "y", "9")]);
    assert_eq!(p.last_event_id(), b"9");
}

const FIXTURE: &[u8] = b"\xEF\xBB\xBF: hello\r\nretry: 250\r\nevent: stock\r\nid: 41\r\n\
data: {\"sku\":\"1001\",\r\ndata: \"stock\":3}\r\n\r\ndata\rdata:x\r\r\
id: 42\ndata: {\"sku\":\"1002\"}\n\n";

fn fixture_events() -> Vec<Owned> {
    vec![
        ev("stock", "{\"sku\":\"1001\",\n\"stock\":3}", "41"),
        ev("", "\nx", "41"),
        ev("", "{\"sku\":\"1002\"}", "42"),
    ]
}

#[test]
fn every_single_split_gives_the_same_events() {
    for at in 0..=FIXTURE.len() {
        let (events, p) = parse_split(FIXTURE, &[at], 256);
        assert_eq!(events, fixture_events(), "split at {at}");
        assert_eq!(p.retry_ms, Some(250));
    }
}

#[test]
fn every_pair_of_splits_gives_the_same_events() {
    for a in 0..=FIXTURE.len() {
        for b in a..=FIXTURE.len() {
            let (events, _) = parse_split(FIXTURE, &[a, b], 256);
            assert_eq!(events, fixture_events(), "split at {a}, {b}");
        }
    }
}

#[test]
fn byte_at_a_time_gives_the_same_events() {
    let splits: Vec<usize> = (1..FIXTURE.len()).collect();
    assert_eq!(parse_split(FIXTURE, &splits, 256).0, fixture_events());
}

#[test]
fn each_event_is_dispatched_when_its_last_byte_arrives() {
    // Fed one byte at a time, the nth event comes out on exactly the byte that ends its
    // blank line (the CR of a CRLF: the LF is not waited for).
    let ends = [
        FIXTURE.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2,
        FIXTURE.windows(2).position(|w| w == b"\r\r").unwrap() + 1,
        FIXTURE.len() - 1,
    ];
    let mut p = SseParser::new(256);
    let mut seen = Vec::new();
    for (i, b) in FIXTURE.iter().enumerate() {
        p.feed(std::slice::from_ref(b), |_| seen.push(i));
    }
    assert_eq!(seen, ends);
}

#[test]
fn random_streams_split_randomly_match_one_piece() {
    // Streams of random lines from a small alphabet that hits every state; any split
    // must give exactly what the whole stream gives.
    let mut rng = fastrand::Rng::with_seed(0x55E);
    let atoms: [&[u8]; 14] = [
        b"data",
        b"data:",
        b"data: ",
        b"event:",
        b"id:",
        b"retry:",
        b":",
        b"x",
        b"1",
        b"\r",
        b"\n",
        b"\r\n",
        b" ",
        b"\xEF\xBB\xBF",
    ];
    for _ in 0..2_000 {
        let mut s = Vec::new();
        for _ in 0..rng.usize(0..40) {
            s.extend_from_slice(atoms[rng.usize(..atoms.len())]);
        }
        let whole = parse_split(&s, &[], 32);
        let mut splits: Vec<usize> = (0..rng.usize(0..6))
            .map(|_| rng.usize(0..=s.len()))
            .collect();
        splits.sort_unstable();
        let split = parse_split(&s, &splits, 32);
        assert_eq!(whole.0, split.0, "{s:?} split at {splits:?}");
        assert_eq!(whole.1.retry_ms, split.1.retry_ms);
        assert_eq!(whole.1.oversized, split.1.oversized);
    }
}

#[test]
fn the_last_event_data_is_kept_for_warming_and_only_dispatched_data_counts() {
    let mut p = SseParser::new(64);
    assert_eq!(p.last_data(), b"", "nothing before the first event");
    p.feed(b"data: {\"sku\":\"1001\"}\n\n", |_| {});
    assert_eq!(p.last_data(), b"{\"sku\":\"1001\"}");
    // An oversized event is dropped, not kept: the last one stays.
    p.feed(
        &[b"data: ".as_slice(), &[b'x'; 80], b"\n\n"].concat(),
        |_| {},
    );
    assert_eq!(p.oversized, 1);
    assert_eq!(p.last_data().len(), b"{\"sku\":\"1001\"}".len());
    p.feed(b"data: b\n\n", |_| {});
    assert_eq!(p.last_data(), b"b");
}
