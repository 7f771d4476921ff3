use super::*;
use crate::event::sse::SseParser;
use serde_json::{json, Value};

fn m(text: &str) -> Matcher {
    Matcher::compile(text).unwrap_or_else(|e| panic!("{}", e.show(text)))
}

fn err(text: &str) -> (usize, PredicateErrorKind) {
    let e = Matcher::compile(text).expect_err(text);
    (e.at, e.kind)
}

#[test]
fn clauses_compile_to_paths_ops_and_literals() {
    let matcher =
        m(r#" sku == "1001" && stock>0&&price.amount <= -1.5e1 && items.0.x != "\u00e9\n" "#);
    let clauses = matcher.clauses().unwrap();
    assert_eq!(clauses.len(), 4);
    assert_eq!(clauses[0].op, Op::Eq);
    assert_eq!(&*clauses[0].path[0].key, b"sku");
    assert_eq!(clauses[0].literal, Literal::Str((*b"1001").into()));
    assert_eq!(
        (clauses[1].op, &clauses[1].literal),
        (Op::Gt, &Literal::Num(0.0))
    );
    assert_eq!(clauses[2].path.len(), 2);
    assert_eq!(clauses[2].literal, Literal::Num(-15.0));
    assert_eq!(clauses[3].path[1].index, Some(0));
    assert_eq!(clauses[3].literal, Literal::Str("é\n".as_bytes().into()));
    assert_eq!(
        matcher.text(),
        r#" sku == "1001" && stock>0&&price.amount <= -1.5e1 && items.0.x != "\u00e9\n" "#
    );
    assert!(m(r#"bytes:"\"restock\"""#).clauses().is_none());
}

#[test]
fn errors_name_their_position() {
    use PredicateErrorKind::*;
    let cases: &[(&str, usize, PredicateErrorKind)] = &[
        ("", 0, Empty),
        ("   ", 3, Empty),
        (
            "== 1",
            0,
            Expected("a field path (like sku or price.amount)"),
        ),
        ("sku", 3, Expected("an operator (==, !=, >, >=, <, <=)")),
        ("sku = \"1\"", 4, SingleEquals),
        ("sku == ", 7, Expected("a string (\"...\") or a number")),
        ("sku == 1001 stock > 0", 12, Expected("`&&` or the end")),
        ("sku == 1 || stock > 0", 9, Or),
        (
            "sku == 1 &&",
            11,
            Expected("a field path (like sku or price.amount)"),
        ),
        ("a. == 1", 2, Expected("a field name after `.`")),
        ("sku == \"10", 7, UnterminatedString),
        ("sku == \"1\\x\"", 9, BadEscape),
        ("sku == \"\\ud800\"", 8, BadEscape),
        ("n == 01", 6, BadNumber("no leading zeros")),
        ("n == 1.", 7, BadNumber("expected a digit after `.`")),
        ("n == 1e", 7, BadNumber("expected a digit in the exponent")),
        ("n == -x", 6, BadNumber("expected a digit")),
        ("n == 1e999", 5, BadNumber("out of range")),
        (
            "sku == unquoted",
            7,
            Expected("a string (\"...\") or a number"),
        ),
        ("bytes:", 6, Expected("a string (\"...\")")),
        ("bytes:\"\"", 8, Expected("a non-empty byte string")),
        ("bytes:\"a\" && x == 1", 10, Expected("`&&` or the end")),
        ("a.b.c.d.e.f.g.h.i == 1", 16, PathTooLong),
    ];
    for &(text, at, kind) in cases {
        assert_eq!(err(text), (at, kind), "{text:?}");
    }
    let many = vec!["a == 1"; MAX_CLAUSES + 1].join(" && ");
    assert_eq!(err(&many).1, TooManyClauses);
    let long = format!("a == \"{}\"", "x".repeat(MAX_LITERAL + 1));
    assert_eq!(err(&long), (5, LiteralTooLong));
    assert!(Matcher::compile(&vec!["a == 1"; MAX_CLAUSES].join(" && ")).is_ok());
}

#[test]
fn errors_read_well_for_a_person() {
    let e = Matcher::compile("sku = \"1001\"").unwrap_err();
    assert_eq!(
        e.to_string(),
        "column 5: `=` is not a comparison; write `==`"
    );
    assert_eq!(
        e.show("sku = \"1001\""),
        "sku = \"1001\"\n    ^\ncolumn 5: `=` is not a comparison; write `==`"
    );
}

#[test]
fn event_specs_name_a_source_and_errors_count_from_the_start() {
    let spec = EventSpec::parse("feed:sku == \"1001\" && stock > 0").unwrap();
    assert_eq!(&*spec.source, "feed");
    assert!(spec.matcher.matches(br#"{"sku":"1001","stock":1}"#));
    let spec = EventSpec::parse("inv-2:bytes:\"restock\"").unwrap();
    assert_eq!(&*spec.source, "inv-2");
    assert!(spec.matcher.matches(b"data restock now"));
    let e = EventSpec::parse("feed:sku = 1").unwrap_err();
    assert_eq!((e.at, e.kind), (9, PredicateErrorKind::SingleEquals));
    let e = EventSpec::parse(":sku == 1").unwrap_err();
    assert_eq!((e.at, e.kind), (0, PredicateErrorKind::NoSource));
    let e = EventSpec::parse("feed sku == 1").unwrap_err();
    assert_eq!(e.at, 4);
    let e = EventSpec::parse("feed:").unwrap_err();
    assert_eq!((e.at, e.kind), (5, PredicateErrorKind::Empty));
}

#[test]
fn clauses_hold_on_the_first_value_of_the_right_type() {
    let event = br#"{"sku":"1001","stock":3,"price":{"amount":12.5},"items":[{"sku":"7"}],
        "name":"caf\u00e9","dup":1,"dup":2,"s":"10"}"#;
    let yes = [
        r#"sku == "1001""#,
        r#"sku != "1002""#,
        "stock > 0 && stock >= 3 && stock < 4 && stock <= 3 && stock == 3.0",
        "price.amount == 12.5 && price.amount > 12",
        r#"items.0.sku == "7""#,
        r#"name == "café" && name > "cafe""#,
        r#"sku > "1000" && sku < "1002" && sku >= "1001" && sku <= "1001""#,
        "dup == 1",
        r#"bytes:"\"stock\":3""#,
    ];
    for p in yes {
        assert!(m(p).matches(event), "{p}");
    }
    let no = [
        r#"sku == "1002""#,
        "sku == 1001",     // a string is not a number
        "s > 1",           // nor is "10"
        r#"stock != "3""#, // != needs the same type too
        "missing != 1",    // and the field
        "stock > 3",
        r#"sku == "1001" && stock > 5"#,
        r#"items.1.sku == "7""#,
        "items.sku == 7",
        "price == 12.5", // an object is not a scalar
        "dup == 2",
        r#"bytes:"stock\":4""#,
    ];
    for p in no {
        assert!(!m(p).matches(event), "{p}");
    }
}

#[test]
fn invalid_json_matches_no_clause_but_bytes_still_look() {
    assert!(!m("a == 1").matches(br#"{"a":1"#));
    assert!(!m("a == 1").matches(b"a == 1"));
    assert!(m(r#"bytes:"a == 1""#).matches(b"x a == 1"));
    assert!(!m(r#"bytes:"ab""#).matches(b"a"));
    assert!(m(r#"bytes:"ab""#).matches(b"aab"));
    assert!(!m(r#"bytes:"ab""#).matches(b"aa b"));
}

// ---- The randomized test: SSE parser + predicate against a model on serde_json. ----

/// The model: the same semantics, written the obvious way over a parsed document.
fn model(clauses: &[(Vec<String>, Op, Value)], doc: &Value) -> bool {
    clauses.iter().all(|(path, op, want)| {
        let mut v = doc;
        for seg in path {
            v = match v {
                Value::Object(o) => match o.get(seg) {
                    Some(v) => v,
                    None => return false,
                },
                Value::Array(a) => match seg.parse::<usize>().ok().and_then(|i| a.get(i)) {
                    Some(v) => v,
                    None => return false,
                },
                _ => return false,
            };
        }
        let ordering = match (v, want) {
            (Value::String(a), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Number(a), Value::Number(b)) => {
                match a.as_f64().unwrap().partial_cmp(&b.as_f64().unwrap()) {
                    Some(o) => o,
                    None => return false,
                }
            }
            _ => return false,
        };
        op.holds(ordering)
    })
}

fn random_scalar(rng: &mut fastrand::Rng) -> Value {
    match rng.u8(0..6) {
        0 => json!(rng.i32(-3..4)),
        1 => json!(rng.i32(-3..4) as f64 / 2.0),
        2 => json!(["1001", "1002", "100", "é", "a\"b", ""][rng.usize(..6)]),
        3 => json!(rng.bool()),
        4 => Value::Null,
        _ => json!(rng.u32(0..3).to_string()),
    }
}

fn random_doc(rng: &mut fastrand::Rng, depth: u32) -> Value {
    let keys = ["sku", "stock", "price", "items", "a", "0"];
    let mut object = serde_json::Map::new();
    for _ in 0..rng.usize(0..5) {
        let v = match rng.u8(0..5) {
            0 if depth < 3 => random_doc(rng, depth + 1),
            1 if depth < 3 => Value::Array(
                (0..rng.usize(0..3))
                    .map(|_| random_doc(rng, depth + 1))
                    .collect(),
            ),
            _ => random_scalar(rng),
        };
        object.insert(keys[rng.usize(..keys.len())].to_string(), v);
    }
    Value::Object(object)
}

/// Every scalar of `doc` with its path.
fn scalars(doc: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match doc {
        Value::Object(o) => o.iter().for_each(|(k, v)| {
            path.push(k.clone());
            scalars(v, path, out);
            path.pop();
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| {
            path.push(i.to_string());
            scalars(v, path, out);
            path.pop();
        }),
        v => out.push((path.clone(), v.clone())),
    }
}

/// A predicate whose clauses mostly name fields the events have, with their values.
fn random_predicate(
    rng: &mut fastrand::Rng,
    docs: &[Value],
) -> (String, Vec<(Vec<String>, Op, Value)>) {
    let keys = ["sku", "stock", "price", "items", "a", "0", "1"];
    let ops = [
        Op::Eq,
        Op::Ne,
        Op::Gt,
        Op::Ge,
        Op::Lt,
        Op::Le,
        Op::Eq,
        Op::Ge,
        Op::Le,
    ];
    let mut known = Vec::new();
    scalars(&docs[rng.usize(..docs.len())], &mut Vec::new(), &mut known);
    let mut text = Vec::new();
    let mut clauses = Vec::new();
    for _ in 0..rng.usize(1..3) {
        let (path, mut lit) = match known.get(rng.usize(..known.len() + 1)) {
            Some(k) if rng.u8(0..4) > 0 => k.clone(),
            _ => (
                (0..rng.usize(1..4))
                    .map(|_| keys[rng.usize(..keys.len())].to_string())
                    .collect(),
                random_scalar(rng),
            ),
        };
        if !(lit.is_string() || lit.is_number()) {
            lit = random_scalar(rng);
            if !(lit.is_string() || lit.is_number()) {
                lit = json!(0);
            }
        }
        let op = ops[rng.usize(..ops.len())];
        // Paths of generated keys are plain segments; anything else is skipped.
        if !path
            .iter()
            .all(|s| keys.contains(&s.as_str()) || s.parse::<u32>().is_ok())
        {
            continue;
        }
        text.push(format!("{} {} {}", path.join("."), op.as_str(), lit));
        clauses.push((path, op, lit));
    }
    if clauses.is_empty() {
        let lit = json!("1001");
        text.push(format!("sku == {lit}"));
        clauses.push((vec!["sku".into()], Op::Eq, lit));
    }
    (text.join(" && "), clauses)
}

#[test]
fn random_events_through_the_sse_parser_match_as_the_model_says() {
    let mut rng = fastrand::Rng::with_seed(0xE7E7);
    let (mut matched, mut total) = (0, 0);
    for _ in 0..300 {
        // A stream of events; pretty-printed ones span several `data:` lines (joined
        // with \n, which is JSON whitespace), with random line endings.
        // Some events repeat an earlier one, so the predicate (drawn from one of them)
        // matches several.
        let mut docs: Vec<Value> = Vec::new();
        for _ in 0..rng.usize(1..8) {
            let doc = match docs.len() {
                n if n > 0 && rng.bool() => docs[rng.usize(..n)].clone(),
                _ => random_doc(&mut rng, 0),
            };
            docs.push(doc);
        }
        let (text, clauses) = random_predicate(&mut rng, &docs);
        let matcher = m(&text);
        let mut stream = Vec::new();
        for doc in &docs {
            let body = if rng.bool() {
                serde_json::to_string_pretty(doc).unwrap()
            } else {
                doc.to_string()
            };
            let eol = ["\n", "\r\n", "\r"][rng.usize(..3)];
            if rng.bool() {
                stream.extend_from_slice(
                    format!(": comment{eol}id: {}{eol}", rng.u32(..)).as_bytes(),
                );
            }
            for line in body.lines() {
                stream.extend_from_slice(format!("data: {line}{eol}").as_bytes());
            }
            stream.extend_from_slice(eol.as_bytes());
        }
        let want: Vec<bool> = docs.iter().map(|d| model(&clauses, d)).collect();
        for _ in 0..5 {
            let mut splits: Vec<usize> = (0..rng.usize(0..8))
                .map(|_| rng.usize(0..=stream.len()))
                .collect();
            splits.sort_unstable();
            let mut parser = SseParser::new(4096);
            let mut got = Vec::new();
            let mut at = 0;
            for &s in splits.iter().chain(std::iter::once(&stream.len())) {
                parser.feed(&stream[at..s], |e| got.push(matcher.matches(e.data)));
                at = s;
            }
            assert_eq!(got, want, "{text}\n{}", String::from_utf8_lossy(&stream));
        }
        matched += want.iter().filter(|&&w| w).count();
        total += want.len();
    }
    assert!(
        matched > total / 40 && matched < total,
        "the generator covers both: {matched}/{total}"
    );
}
