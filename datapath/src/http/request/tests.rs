//! Request templates: exact rendered bytes and every rejected input.

use super::*;

const P: Placeholders<'static> = Placeholders {
    sku: "AB-12.x",
    qty: 3,
    idempotency_key: "k-123",
};

fn order() -> RequestTemplate {
    RequestTemplate {
        method: "POST".into(),
        path: "/v1/orders/{sku}".into(),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-Qty".into(), "{qty}".into()),
        ],
        body: r#"{{"sku":"{sku}","qty":{qty}}}"#.into(),
    }
}

fn with_header(name: &str, value: &str) -> RequestTemplate {
    let mut t = order();
    t.headers.push((name.into(), value.into()));
    t
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn post_with_body_renders_exact_bytes() {
    let got = order().render("api.shop.example", 443, &P).unwrap();
    let want = concat!(
        "POST /v1/orders/AB-12.x HTTP/1.1\r\n",
        "Host: api.shop.example\r\n",
        "User-Agent: quickdraw/",
        env!("CARGO_PKG_VERSION"),
        "\r\n",
        "Content-Type: application/json\r\n",
        "X-Qty: 3\r\n",
        "Idempotency-Key: k-123\r\n",
        "Content-Length: 25\r\n",
        "\r\n",
        r#"{"sku":"AB-12.x","qty":3}"#,
    );
    assert_eq!(text(&got), want);
}

#[test]
fn host_carries_port_unless_443() {
    let with_port = order().render("10.0.0.7", 8443, &P).unwrap();
    assert!(text(&with_port).contains("\r\nHost: 10.0.0.7:8443\r\n"));
    let v6 = order().render("[fd00::1]", 443, &P).unwrap();
    assert!(text(&v6).contains("\r\nHost: [fd00::1]\r\n"));
    let warm = warm_request("api.shop.example", 80, "/health").unwrap();
    let want = concat!(
        "GET /health HTTP/1.1\r\n",
        "Host: api.shop.example:80\r\n",
        "User-Agent: quickdraw/",
        env!("CARGO_PKG_VERSION"),
        "\r\n\r\n",
    );
    assert_eq!(text(&warm), want);
}

#[test]
fn content_length_zero_only_for_methods_with_bodies() {
    for (method, has_length) in [
        ("POST", true),
        ("PUT", true),
        ("PATCH", true),
        ("DELETE", false),
        ("GET", false),
    ] {
        let t = RequestTemplate {
            method: method.into(),
            path: "/o".into(),
            headers: vec![],
            body: String::new(),
        };
        let got = t.render("h", 443, &P).unwrap();
        assert_eq!(
            text(&got).contains("\r\nContent-Length: 0\r\n"),
            has_length,
            "{method}"
        );
        assert!(text(&got).ends_with("\r\n\r\n"), "{method}");
    }
    let mut delete_with_body = order();
    delete_with_body.method = "DELETE".into();
    let got = delete_with_body.render("h", 443, &P).unwrap();
    assert!(text(&got).contains("\r\nContent-Length: 25\r\n"));
}

#[test]
fn braces_escape_and_body_newlines_pass() {
    let t = RequestTemplate {
        method: "POST".into(),
        path: "/a{{b}}".into(),
        headers: vec![("X-Json".into(), "{{\"k\":\"{idempotency_key}\"}}".into())],
        body: "{{\n  \"sku\": \"{sku}\"\n}}\n".into(),
    };
    let got = t.render("h", 443, &P).unwrap();
    let got = text(&got);
    assert!(got.starts_with("POST /a{b} HTTP/1.1\r\n"), "{got}");
    assert!(got.contains("\r\nX-Json: {\"k\":\"k-123\"}\r\n"), "{got}");
    assert!(
        got.ends_with("\r\n\r\n{\n  \"sku\": \"AB-12.x\"\n}\n"),
        "{got}"
    );
}

#[test]
fn rejects_bad_method() {
    for method in ["", "PO ST", "POST\r\n", "GET\n", "{sku}", "PÖST"] {
        let mut t = order();
        t.method = method.into();
        assert_eq!(
            t.validate(),
            Err(HttpError::Invalid {
                part: Part::Method,
                why: "must be an HTTP token such as POST"
            }),
            "{method:?}"
        );
    }
}

#[test]
fn rejects_bad_path() {
    for (path, why) in [
        ("orders", "must start with '/'"),
        ("", "must start with '/'"),
        ("{sku}/x", "must start with '/'"),
        (
            "/o HTTP/1.1\r\nX: y",
            "contains CR, LF or NUL (header injection)",
        ),
        ("/o\n", "contains CR, LF or NUL (header injection)"),
        ("/o\0", "contains CR, LF or NUL (header injection)"),
        (
            "/a b",
            "must be visible ASCII without spaces (percent-encode the rest)",
        ),
        (
            "/café",
            "must be visible ASCII without spaces (percent-encode the rest)",
        ),
    ] {
        let mut t = order();
        t.path = path.into();
        assert_eq!(
            t.validate(),
            Err(HttpError::Invalid {
                part: Part::Path,
                why
            }),
            "{path:?}"
        );
        assert!(warm_request("h", 443, path).is_err(), "{path:?}");
    }
}

#[test]
fn rejects_header_injection_and_bad_names() {
    let injection = "contains CR, LF or NUL (header injection)";
    for value in ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\0"] {
        assert_eq!(
            with_header("X-Note", value).validate(),
            Err(HttpError::Invalid {
                part: Part::HeaderValue(2),
                why: injection
            }),
            "{value:?}"
        );
    }
    assert_eq!(
        with_header("X-Note", "a\x01b").validate(),
        Err(HttpError::Invalid {
            part: Part::HeaderValue(2),
            why: "contains a control character"
        })
    );
    assert!(with_header("X-Note", "tab\tand obs-text é")
        .validate()
        .is_ok());
    for name in ["", "X Note", "X-Note:", "X\r\nEvil", "X-{sku}"] {
        assert!(
            matches!(
                with_header(name, "v").validate(),
                Err(HttpError::Invalid {
                    part: Part::HeaderName(2),
                    ..
                })
            ),
            "{name:?}"
        );
    }
}

#[test]
fn rejects_reserved_headers_in_any_case() {
    for (name, reserved) in [
        ("User-Agent", "User-Agent"),
        ("user-agent", "User-Agent"),
        ("Content-Length", "Content-Length"),
        ("CONTENT-LENGTH", "Content-Length"),
        ("Host", "Host"),
        ("Transfer-Encoding", "Transfer-Encoding"),
        ("Connection", "Connection"),
        ("Idempotency-Key", "Idempotency-Key"),
        ("Expect", "Expect"),
    ] {
        let Err(HttpError::ReservedHeader {
            index,
            name: got,
            why,
        }) = with_header(name, "x").validate()
        else {
            panic!("{name} accepted");
        };
        assert_eq!((index, got), (2, reserved));
        assert!(!why.is_empty());
    }
    let e = with_header("User-Agent", "curl/8").validate().unwrap_err();
    assert!(e.to_string().contains("honestly"), "{e}");
}

#[test]
fn rejects_unknown_placeholders_where_they_appear() {
    let mut in_path = order();
    in_path.path = "/o/{id}".into();
    let mut in_body = order();
    in_body.body = r#"{"sku":"{sku}"}"#.into(); // JSON braces not doubled
    for (t, part, name) in [
        (in_path, Part::Path, "id"),
        (with_header("X-P", "{price}"), Part::HeaderValue(2), "price"),
        (in_body, Part::Body, "\"sku\":\"{sku"),
    ] {
        let Err(HttpError::UnknownPlaceholder {
            part: got,
            name: got_name,
        }) = t.validate()
        else {
            panic!("{name} accepted");
        };
        assert_eq!((got, got_name.as_str()), (part, name));
    }
    let mut unclosed = order();
    unclosed.body = "{sku".into();
    assert_eq!(
        unclosed.validate(),
        Err(HttpError::UnmatchedBrace {
            part: Part::Body,
            offset: 0
        })
    );
}

#[test]
fn rejects_bad_placeholder_values() {
    let t = order();
    let bad_sku = [
        "",
        "has space",
        "semi;colon",
        "quote\"",
        "é",
        &"x".repeat(65),
    ];
    for sku in bad_sku {
        let p = Placeholders { sku, ..P };
        assert!(
            matches!(
                t.render("h", 443, &p),
                Err(HttpError::Invalid {
                    part: Part::Sku,
                    ..
                })
            ),
            "{sku:?}"
        );
    }
    assert!(t
        .render(
            "h",
            443,
            &Placeholders {
                sku: &"x".repeat(64),
                ..P
            }
        )
        .is_ok());

    let bad_key = ["", "a b", "a\r\nX: y", "tab\t", "é", &"k".repeat(129)];
    for idempotency_key in bad_key {
        let p = Placeholders {
            idempotency_key,
            ..P
        };
        assert!(
            matches!(
                t.render("h", 443, &p),
                Err(HttpError::Invalid {
                    part: Part::IdempotencyKey,
                    ..
                })
            ),
            "{idempotency_key:?}"
        );
    }
    // Any visible ASCII suits the header, but not the body, where it is not escaped.
    let p = Placeholders {
        idempotency_key: "a\",\"qty\":999",
        ..P
    };
    assert!(t.render("h", 443, &p).is_ok());
    let mut key_in_body = order();
    key_in_body.body = r#"{{"key":"{idempotency_key}"}}"#.into();
    assert!(matches!(
        key_in_body.render("h", 443, &p),
        Err(HttpError::Invalid {
            part: Part::IdempotencyKey,
            ..
        })
    ));
}

#[test]
fn sku_is_checked_only_when_used() {
    let mut t = order();
    t.path = "/o".into();
    t.body = "{qty}".into();
    let p = Placeholders { sku: "", ..P };
    assert!(t.render("h", 443, &p).is_ok());
}

#[test]
fn rejects_bad_hosts() {
    for (host, port) in [
        ("", 443),
        ("a b", 443),
        ("h\r\nX: y", 443),
        ("h/x", 443),
        ("fd00::1", 443),
        ("[fd00::1", 443),
        ("[]", 443),
        ("h", 0),
    ] {
        assert!(
            matches!(
                order().render(host, port, &P),
                Err(HttpError::Invalid {
                    part: Part::Host,
                    ..
                })
            ),
            "{host:?}:{port}"
        );
        assert!(warm_request(host, port, "/").is_err(), "{host:?}:{port}");
    }
}

#[test]
fn random_templates_never_panic_or_inject() {
    let mut rng = fastrand::Rng::with_seed(0x9d);
    let alphabet: &[&str] = &[
        "{", "}", "sku", "qty", "/", "\r", "\n", "a", " ", "é", "\0", ":",
    ];
    let field = |rng: &mut fastrand::Rng| -> String {
        (0..rng.usize(0..10))
            .map(|_| alphabet[rng.usize(..alphabet.len())])
            .collect()
    };
    for _ in 0..20_000 {
        let t = RequestTemplate {
            method: if rng.bool() {
                "POST".into()
            } else {
                field(&mut rng)
            },
            path: format!("/{}", field(&mut rng)),
            headers: vec![(field(&mut rng), field(&mut rng))],
            body: field(&mut rng),
        };
        if let Ok(bytes) = t.render("h", 443, &P) {
            // Whatever got through, an outside parser sees exactly the lines we wrote.
            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut req = httparse::Request::new(&mut headers);
            let Ok(httparse::Status::Complete(head_len)) = req.parse(&bytes) else {
                panic!("{t:?} rendered an unparsable head");
            };
            if !t.path.contains(['{', '}']) {
                assert_eq!(req.path, Some(t.path.as_str()), "{t:?}");
            }
            let names: Vec<_> = req.headers.iter().map(|h| h.name).collect();
            assert_eq!(
                names[..4],
                [
                    "Host",
                    "User-Agent",
                    t.headers[0].0.as_str(),
                    "Idempotency-Key"
                ],
                "{t:?}"
            );
            assert!(names.len() <= 5, "{t:?}");
            let body_len = bytes.len() - head_len;
            if names.len() == 5 {
                assert_eq!(
                    req.headers[4].value,
                    body_len.to_string().as_bytes(),
                    "{t:?}"
                );
            } else {
                assert_eq!(body_len, 0, "{t:?}");
            }
        }
    }
}
