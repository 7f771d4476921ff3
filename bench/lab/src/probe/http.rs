//! Just enough HTTP/1.1 for the probe: render one request, read one response (status line,
//! headers, a Content-Length body). Not a general client: chunked bodies are refused.

use std::io::{self, Read};

use crate::Error;

/// The most the probe reads of one response (head and body): the lab's are tiny.
const MAX_RESPONSE: usize = 1 << 20;

/// One HTTP/1.1 request. Host, User-Agent (`quickdraw/<version>`), `Connection: close` and,
/// with a body, Content-Length are added when rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// Method, e.g. "GET".
    pub method: &'a str,
    /// Origin-form target, e.g. "/healthz".
    pub path: &'a str,
    /// Further headers, in order.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The body (sent with Content-Length when non-empty or when the method is POST/PUT).
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// `GET path`.
    pub fn get(path: &'a str) -> Self {
        Request {
            method: "GET",
            path,
            headers: Vec::new(),
            body: b"",
        }
    }

    /// `POST path` with `body`.
    pub fn post(path: &'a str, body: &'a [u8]) -> Self {
        Request {
            method: "POST",
            path,
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A HEAD response has headers only, whatever its Content-Length says.
    pub(crate) fn expects_no_body(&self) -> bool {
        self.method.eq_ignore_ascii_case("HEAD")
    }

    /// The request's bytes. Refuses control characters in the head: one stray "\r\n" in a
    /// header value would smuggle a second request.
    pub(crate) fn render(&self, host: &str) -> Result<Vec<u8>, Error> {
        let user_agent = concat!("quickdraw/", env!("CARGO_PKG_VERSION"));
        let length = self.body.len().to_string();
        let mut fields = vec![
            ("Host", host),
            ("User-Agent", user_agent),
            ("Connection", "close"),
        ];
        fields.extend(self.headers.iter().copied());
        if !self.body.is_empty() || matches!(self.method, "POST" | "PUT") {
            fields.push(("Content-Length", &length));
        }

        let word = |s: &str| {
            !s.is_empty()
                && !s.contains(|c: char| c.is_ascii_whitespace() || c.is_control() || c == ':')
        };
        let value = |s: &str| !s.contains(|c: char| c.is_control() && c != '\t');
        let invalid = |what: &str, s: &str| Error::Http(format!("invalid {what} {s:?} in request"));
        if !word(self.method) {
            return Err(invalid("method", self.method));
        }
        if !self.path.starts_with('/') || !value(self.path) || self.path.contains(' ') {
            return Err(invalid("path", self.path));
        }
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        for (name, val) in &fields {
            if !word(name) {
                return Err(invalid("header name", name));
            }
            if !value(val) {
                return Err(invalid("header value", val));
            }
            head.push_str(&format!("{name}: {val}\r\n"));
        }
        head.push_str("\r\n");
        let mut wire = head.into_bytes();
        wire.extend_from_slice(self.body);
        Ok(wire)
    }
}

/// A response as read by the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why reading a response failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    Http(String),
}

/// The parsed head: status and how the body is delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
}

/// Reads one response from `stream`. `no_body`: the request was HEAD.
pub(crate) fn read_response(stream: &mut impl Read, no_body: bool) -> Result<Response, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_RESPONSE {
            return Err(ReadError::Http("response head too long".into()));
        }
        let n = stream.read(&mut chunk).map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Http(format!(
                "connection closed after {} bytes, before the end of the response head",
                buf.len()
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = parse_head(&buf[..head_end]).map_err(ReadError::Http)?;
    let mut body = buf.split_off(head_end);
    // RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304, whatever the headers say.
    let bodiless = no_body || head.status < 200 || head.status == 204 || head.status == 304;
    if bodiless {
        body.clear();
    } else if head.chunked {
        return Err(ReadError::Http(
            "chunked response bodies are not supported".into(),
        ));
    } else if let Some(len) = head.content_length {
        if len > MAX_RESPONSE {
            return Err(ReadError::Http(format!("body of {len} bytes is too large")));
        }
        while body.len() < len {
            let n = stream.read(&mut chunk).map_err(ReadError::Io)?;
            if n == 0 {
                return Err(ReadError::Http(format!(
                    "connection closed after {} of {len} body bytes",
                    body.len()
                )));
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(len);
    } else {
        // No length: the body runs to the end of the connection.
        stream.read_to_end(&mut body).map_err(ReadError::Io)?;
    }
    Ok(Response {
        status: head.status,
        body,
    })
}

fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_owned())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.splitn(3, ' ');
    let version = words.next().unwrap_or_default();
    let code = words.next().unwrap_or_default();
    let status = match (
        version.starts_with("HTTP/1."),
        code.len(),
        code.parse::<u16>(),
    ) {
        (true, 3, Ok(status)) if (100..600).contains(&status) => status,
        _ => return Err(format!("bad status line {status_line:?}")),
    };
    let mut parsed = Head {
        status,
        content_length: None,
        chunked: false,
    };
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let len = value
                .parse()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            if parsed.content_length.is_some_and(|l| l != len) {
                return Err("conflicting Content-Length headers".into());
            }
            parsed.content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            parsed.chunked |= value.to_ascii_lowercase().contains("chunked");
        }
    }
    Ok(parsed)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Response, ReadError> {
        read_response(&mut &bytes[..], false)
    }

    #[test]
    fn get_renders_host_agent_and_close() {
        let wire = Request::get("/healthz").render("target.lab").unwrap();
        let text = String::from_utf8(wire).unwrap();
        let agent = format!("User-Agent: quickdraw/{}\r\n", env!("CARGO_PKG_VERSION"));
        assert!(text.starts_with("GET /healthz HTTP/1.1\r\nHost: target.lab\r\n"));
        assert!(text.contains(&agent));
        assert!(text.contains("Connection: close\r\n"));
        assert!(!text.contains("Content-Length"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn post_renders_headers_and_body() {
        let wire = Request::post("/api/order", b"{\"sku\":1}")
            .header("Idempotency-Key", "k-1")
            .render("target.lab")
            .unwrap();
        let text = String::from_utf8(wire).unwrap();
        assert!(text.starts_with("POST /api/order HTTP/1.1\r\n"));
        assert!(text.contains("Idempotency-Key: k-1\r\n"));
        assert!(text.ends_with("Content-Length: 9\r\n\r\n{\"sku\":1}"));
    }

    #[test]
    fn header_injection_is_refused() {
        let smuggle = Request::get("/").header("X", "a\r\nGET /admin HTTP/1.1");
        assert!(smuggle.render("target.lab").is_err());
        assert!(Request::get("/a b").render("target.lab").is_err());
        assert!(Request::get("/").render("bad\nhost").is_err());
    }

    #[test]
    fn no_content_has_no_body() {
        let r =
            read(b"HTTP/1.1 204 No Content\r\nServer: nginx\r\nConnection: close\r\n\r\n").unwrap();
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
    }

    #[test]
    fn content_length_body_is_read_exactly() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello, and more";
        let r = read(raw).unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"hello"[..]));
    }

    #[test]
    fn body_without_length_runs_to_eof() {
        let r = read(b"HTTP/1.0 200 OK\r\n\r\nall of it").unwrap();
        assert_eq!(r.body, b"all of it");
    }

    #[test]
    fn malformed_responses_are_errors() {
        for raw in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\n",
        ] {
            assert!(read(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
    }
}
