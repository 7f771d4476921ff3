use super::*;

/// Every scalar as (dotted path, value text), for comparing.
fn visits(data: &str) -> Result<Vec<(String, String)>, JsonError> {
    let mut out = Vec::new();
    scan(data.as_bytes(), |path, value| {
        let path: Vec<String> = path
            .iter()
            .map(|s| match s {
                Step::Key(k) => String::from_utf8(Unescaped::new(k).collect()).unwrap(),
                Step::Index(i) => i.to_string(),
            })
            .collect();
        let value = match value {
            Scalar::Str(s) => format!(
                "s:{}",
                String::from_utf8(Unescaped::new(s).collect()).unwrap()
            ),
            Scalar::Num(n) => format!("n:{}", std::str::from_utf8(n).unwrap()),
            Scalar::Bool(b) => format!("b:{b}"),
            Scalar::Null => "null".into(),
        };
        out.push((path.join("."), value));
    })?;
    Ok(out)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn scalars_are_visited_with_their_paths_in_order() {
    let doc = r#" {"sku":"1001","stock":3,"price":{"amount":-12.5e1,"ccy":"EUR"},
        "tags":["a",{"x":null}],"live":true,"gone":false,"empty":{},"none":[]} "#;
    assert_eq!(
        visits(doc).unwrap(),
        pairs(&[
            ("sku", "s:1001"),
            ("stock", "n:3"),
            ("price.amount", "n:-12.5e1"),
            ("price.ccy", "s:EUR"),
            ("tags.0", "s:a"),
            ("tags.1.x", "null"),
            ("live", "b:true"),
            ("gone", "b:false"),
        ])
    );
    assert_eq!(visits("42").unwrap(), pairs(&[("", "n:42")]));
}

#[test]
fn escaped_keys_and_strings_are_decoded_on_comparison() {
    let doc = r#"{"s\u006bu":"10\"01\\\/\n","emoji":"\ud83d\ude00","lone":"\ud83d!"}"#;
    assert_eq!(
        visits(doc).unwrap(),
        pairs(&[
            ("sku", "s:10\"01\\/\n"),
            ("emoji", "s:\u{1F600}"),
            ("lone", "s:\u{FFFD}!"),
        ])
    );
    assert_eq!(compare_str(br#"10\u0030"#, b"100"), Ordering::Equal);
    assert_eq!(compare_str(b"abc", b"abd"), Ordering::Less);
    assert_eq!(compare_str(br#"\u00e9"#, "é".as_bytes()), Ordering::Equal);
    assert_eq!(compare_str(br#"\u00e9"#, b"e"), Ordering::Greater);
}

#[test]
fn invalid_json_is_refused_at_its_position() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "unexpected end, expected a value"),
        ("{", 1, "expected a key (a string)"),
        ("{\"a\" 1}", 5, "expected `:` after a key"),
        ("{\"a\":1,}", 7, "expected a key (a string)"),
        ("{\"a\":1 \"b\":2}", 7, "expected `,` or `}`"),
        ("[1 2]", 3, "expected `,` or `]`"),
        ("[01]", 2, "expected `,` or `]`"),
        ("-", 1, "expected a digit"),
        ("1.", 2, "expected a digit after `.`"),
        ("1e+", 3, "expected a digit in the exponent"),
        ("\"abc", 4, "unterminated string"),
        ("\"a\\x\"", 3, "invalid escape"),
        ("\"\\u12g4\"", 3, "expected 4 hex digits after \\u"),
        ("\"a\nb\"", 2, "control character in a string"),
        ("tru", 0, "expected true, false or null"),
        ("{} x", 3, "trailing bytes after the value"),
        ("+1", 0, "expected a value"),
    ];
    for &(doc, at, why) in cases {
        assert_eq!(visits(doc), Err(JsonError { at, why }), "{doc:?}");
    }
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert_eq!(visits(&deep).unwrap_err().why, "nested too deep");
    let ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(visits(&ok).is_ok());
}

#[test]
fn numbers_parse_to_their_value() {
    for (text, value) in [
        ("0", 0.0),
        ("-0.5", -0.5),
        ("1e3", 1000.0),
        ("12.25E-2", 0.1225),
    ] {
        assert_eq!(Scalar::Num(text.as_bytes()).number(), Some(value));
    }
    assert_eq!(Scalar::Str(b"1").number(), None);
}

#[test]
fn unescaped_matches_serde_json_on_random_strings() {
    let mut rng = fastrand::Rng::with_seed(0x15);
    let alphabet: Vec<char> = "ab\"\\/\n\r\t\u{8}\u{c}\u{1}\u{7f}é€\u{1F600}0 "
        .chars()
        .collect();
    for _ in 0..2_000 {
        let s: String = (0..rng.usize(0..12))
            .map(|_| alphabet[rng.usize(..alphabet.len())])
            .collect();
        let quoted = serde_json::to_string(&s).unwrap();
        let raw = &quoted.as_bytes()[1..quoted.len() - 1];
        assert_eq!(Unescaped::new(raw).collect::<Vec<u8>>(), s.as_bytes());
        // The same string with every character written as \u escapes.
        let mut escaped = String::new();
        for unit in s.encode_utf16() {
            escaped.push_str(&format!("\\u{unit:04x}"));
        }
        assert_eq!(
            compare_str(escaped.as_bytes(), s.as_bytes()),
            Ordering::Equal,
            "{s:?}"
        );
        assert!(visits(&format!("\"{escaped}\"")).is_ok());
    }
}

#[test]
fn validity_agrees_with_serde_json_on_random_documents() {
    let mut rng = fastrand::Rng::with_seed(0x7A);
    let atoms = [
        "{", "}", "[", "]", ",", ":", "\"k\"", "\"v\\n\"", "1", "-2.5E+3 ", "0", "01", "true",
        "null", " ", "\"", "\\", "x", ".",
    ];
    let mut agreed_valid = 0;
    for _ in 0..20_000 {
        let doc: String = (0..rng.usize(1..10))
            .map(|_| atoms[rng.usize(..atoms.len())])
            .collect();
        let ours = scan(doc.as_bytes(), |_, _| {}).is_ok();
        let theirs = serde_json::from_str::<serde_json::Value>(&doc).is_ok();
        assert_eq!(ours, theirs, "{doc:?}");
        agreed_valid += usize::from(ours);
    }
    assert!(
        agreed_valid > 100,
        "the generator makes valid documents too"
    );
}
