//! Request templates from config: checked once at load, rendered at arm time to the exact
//! HTTP/1.1 bytes the fire path will send, so firing is a copy and nothing else.
//!
//! Placeholders are substituted raw, without JSON or URL escaping. That is safe because
//! each value is held to a charset that cannot break out of any of those contexts: `{sku}`
//! is `[A-Za-z0-9._-]`, `{qty}` is decimal digits, and `{idempotency_key}`, which the
//! Idempotency-Key header allows to be any visible ASCII, is held to the URL-unreserved
//! set `[A-Za-z0-9._~-]` wherever it is substituted into the path or the body (a `"` could
//! end a JSON string, a `&` could add a form field, a `#` could cut the path).

use super::placeholder::{Segment, Segments};
use super::{HttpError, Part};

/// What quickdraw sends as User-Agent. It is not configurable: quickdraw identifies
/// itself honestly to the venues it trades with.
const USER_AGENT: &str = concat!("quickdraw/", env!("CARGO_PKG_VERSION"));

/// Headers a template may not set, and why: quickdraw writes them itself, or they
/// concern the connection, which quickdraw owns.
const RESERVED: &[(&str, &str)] = &[
    (
        "Host",
        "quickdraw writes it from the connection's host and port",
    ),
    (
        "Content-Length",
        "quickdraw computes it from the rendered body",
    ),
    (
        "Transfer-Encoding",
        "quickdraw always sends a Content-Length body",
    ),
    (
        "Connection",
        "quickdraw owns the connection and keeps it warm",
    ),
    (
        "Keep-Alive",
        "quickdraw owns the connection and keeps it warm",
    ),
    (
        "Proxy-Connection",
        "quickdraw owns the connection and keeps it warm",
    ),
    ("Upgrade", "quickdraw owns the connection and keeps it warm"),
    (
        "TE",
        "quickdraw reads only chunked or Content-Length responses",
    ),
    ("Trailer", "quickdraw sends no trailers"),
    (
        "Expect",
        "waiting for 100 Continue would add a round trip to every fire",
    ),
    (
        "User-Agent",
        "quickdraw identifies itself honestly as quickdraw/<version>",
    ),
    (
        "Idempotency-Key",
        "quickdraw sends the {idempotency_key} given at arm time",
    ),
];

/// One order request as configured: placeholders may appear in the path, the header
/// values and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTemplate {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// The values for one arming of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placeholders<'a> {
    pub sku: &'a str,
    pub qty: u32,
    pub idempotency_key: &'a str,
}

impl RequestTemplate {
    /// Checks the template once, at config load: the method is an HTTP token, the path
    /// starts with `/` and is visible ASCII, header names are tokens and none is one
    /// quickdraw owns (Host, Content-Length, User-Agent, hop-by-hop headers, ...), no CR,
    /// LF or NUL reaches the request line or a header (header injection), and only
    /// known placeholders appear.
    ///
    /// The body may hold any text, newlines included: it is framed by the Content-Length
    /// that `render` computes, so its bytes cannot be read as headers.
    pub fn validate(&self) -> Result<(), HttpError> {
        if !is_token(&self.method) {
            return Err(invalid(Part::Method, "must be an HTTP token such as POST"));
        }
        if !self.path.starts_with('/') {
            return Err(invalid(Part::Path, "must start with '/'"));
        }
        for segment in Segments::new(&self.path, Part::Path) {
            if let Segment::Literal(text) = segment? {
                check_target(text, Part::Path)?;
            }
        }
        for (index, (name, value)) in self.headers.iter().enumerate() {
            if !is_token(name) {
                return Err(invalid(
                    Part::HeaderName(index),
                    "must be an HTTP token (letters, digits and !#$%&'*+-.^_`|~)",
                ));
            }
            if let Some(&(name, why)) = RESERVED.iter().find(|(r, _)| r.eq_ignore_ascii_case(name))
            {
                return Err(HttpError::ReservedHeader { index, name, why });
            }
            for segment in Segments::new(value, Part::HeaderValue(index)) {
                if let Segment::Literal(text) = segment? {
                    check_field_value(text, Part::HeaderValue(index))?;
                }
            }
        }
        for segment in Segments::new(&self.body, Part::Body) {
            segment?;
        }
        Ok(())
    }

    /// Renders the exact bytes to send: the request line, `Host` (with `:port` unless
    /// 443), `User-Agent: quickdraw/<version>`, the template's headers, `Idempotency-Key`,
    /// `Content-Length` when there is a body (and always for POST, PUT and PATCH, whose
    /// servers may otherwise wait for one), then the body. Placeholder values are checked
    /// here; `{sku}` only if the template uses it.
    pub fn render(
        &self,
        host: &str,
        port: u16,
        p: &Placeholders<'_>,
    ) -> Result<Vec<u8>, HttpError> {
        self.validate()?;
        check_host(host, port)?;
        check_key_in_header(p.idempotency_key)?;

        let mut body = Vec::with_capacity(self.body.len() + 64);
        expand(&mut body, &self.body, Part::Body, p)?;

        let mut out = Vec::with_capacity(256 + self.path.len() + body.len());
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        expand(&mut out, &self.path, Part::Path, p)?;
        out.extend_from_slice(b" HTTP/1.1\r\n");
        push_host_and_agent(&mut out, host, port);
        for (index, (name, value)) in self.headers.iter().enumerate() {
            push_str(&mut out, [name, ": "]);
            expand(&mut out, value, Part::HeaderValue(index), p)?;
            out.extend_from_slice(b"\r\n");
        }
        push_str(&mut out, ["Idempotency-Key: ", p.idempotency_key, "\r\n"]);
        if !body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
            push_str(
                &mut out,
                ["Content-Length: ", &body.len().to_string(), "\r\n"],
            );
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// The keep-warm request: `GET <path> HTTP/1.1` with Host and User-Agent, no body.
///
/// Returns a `Result` (not bare bytes) because `host` and `path` come from config and a
/// CR or LF in either would inject headers.
pub fn warm_request(host: &str, port: u16, path: &str) -> Result<Vec<u8>, HttpError> {
    check_host(host, port)?;
    if !path.starts_with('/') {
        return Err(invalid(Part::Path, "must start with '/'"));
    }
    check_target(path, Part::Path)?;
    let mut out = Vec::with_capacity(96 + host.len() + path.len());
    push_str(&mut out, ["GET ", path, " HTTP/1.1\r\n"]);
    push_host_and_agent(&mut out, host, port);
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

fn invalid(part: Part, why: &'static str) -> HttpError {
    HttpError::Invalid { part, why }
}

fn push_str<const N: usize>(out: &mut Vec<u8>, parts: [&str; N]) {
    for s in parts {
        out.extend_from_slice(s.as_bytes());
    }
}

fn push_host_and_agent(out: &mut Vec<u8>, host: &str, port: u16) {
    push_str(out, ["Host: ", host]);
    if port != 443 {
        push_str(out, [":", &port.to_string()]);
    }
    push_str(out, ["\r\nUser-Agent: ", USER_AGENT, "\r\n"]);
}

/// Appends `field` with its placeholders substituted, checking each value for `part`.
fn expand(
    out: &mut Vec<u8>,
    field: &str,
    part: Part,
    p: &Placeholders<'_>,
) -> Result<(), HttpError> {
    for segment in Segments::new(field, part) {
        match segment? {
            Segment::Literal(text) => out.extend_from_slice(text.as_bytes()),
            Segment::Sku => {
                check_sku(p.sku)?;
                out.extend_from_slice(p.sku.as_bytes());
            }
            Segment::Qty => out.extend_from_slice(p.qty.to_string().as_bytes()),
            Segment::IdempotencyKey => {
                if !matches!(part, Part::HeaderValue(_))
                    && !p.idempotency_key.bytes().all(is_unreserved)
                {
                    return Err(invalid(
                        Part::IdempotencyKey,
                        "in the path or body it may only hold A-Z a-z 0-9 . _ ~ - \
                         (it is substituted without escaping)",
                    ));
                }
                out.extend_from_slice(p.idempotency_key.as_bytes());
            }
        }
    }
    Ok(())
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// RFC 3986 `unreserved`: safe unescaped in a URL, a JSON string and a form value.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-')
}

/// Path text: visible ASCII only, so it cannot end the request-target early.
fn check_target(text: &str, part: Part) -> Result<(), HttpError> {
    check_injection(text, part)?;
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            part,
            "must be visible ASCII without spaces (percent-encode the rest)",
        ));
    }
    Ok(())
}

/// Header value text: RFC 9110 field-value, i.e. no control bytes but tab.
fn check_field_value(text: &str, part: Part) -> Result<(), HttpError> {
    check_injection(text, part)?;
    if text.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(invalid(part, "contains a control character"));
    }
    Ok(())
}

/// Checked first and reported as such, so an injection attempt is named for what it is.
fn check_injection(text: &str, part: Part) -> Result<(), HttpError> {
    if text.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(invalid(part, "contains CR, LF or NUL (header injection)"));
    }
    Ok(())
}

fn check_host(host: &str, port: u16) -> Result<(), HttpError> {
    if host.is_empty() || host.len() > 255 {
        return Err(invalid(Part::Host, "must be 1..=255 bytes"));
    }
    if port == 0 {
        return Err(invalid(Part::Host, "port 0 cannot be connected to"));
    }
    let ok = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']').is_some_and(|inner| {
            !inner.is_empty()
                && inner
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }),
        None => host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')),
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            Part::Host,
            "must be a DNS name or IPv4 address ([A-Za-z0-9._-]) or an IPv6 literal in brackets",
        ))
    }
}

fn check_sku(sku: &str) -> Result<(), HttpError> {
    let charset = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if (1..=64).contains(&sku.len()) && sku.bytes().all(charset) {
        Ok(())
    } else {
        Err(invalid(
            Part::Sku,
            "must be 1..=64 characters of A-Z a-z 0-9 . _ -",
        ))
    }
}

fn check_key_in_header(key: &str) -> Result<(), HttpError> {
    if (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(invalid(
            Part::IdempotencyKey,
            "must be 1..=128 visible ASCII characters without spaces",
        ))
    }
}

#[cfg(test)]
mod tests;
