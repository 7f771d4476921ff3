//! The control socket's wire protocol, shared by the CLI and the daemon: one JSON object
//! per line each way. Every request carries `"v"` and a `"cmd"`; every reply carries `"v"`
//! and `"ok"`, then either the command's fields or `"error"`.
//!
//! Requests deny unknown fields (a typo must not silently become a default on an order);
//! replies tolerate them, so a newer daemon can add fields without breaking older CLIs.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[cfg(any(test, fuzzing))]
pub mod fuzz;
mod placement;
mod replies;
pub use placement::*;
pub use replies::*;

/// The protocol version this build speaks.
pub const VERSION: u64 = 1;

/// Longest request line the daemon reads, newline included; longer ones are refused.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// What the CLI asks of the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    // `{}` rather than unit variants: serde ignores unknown fields on unit variants of an
    // internally tagged enum, and `{"cmd":"down","force":true}` must be refused.
    Status {},
    Arm(ArmRequest),
    /// `arm: None` fires the only armed manual order. A scheduled arm fires early (and
    /// manually) only when named.
    Fire {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arm: Option<u64>,
    },
    Disarm {
        arm: u64,
    },
    /// Disarms every armed order (manual and scheduled).
    DisarmAll {},
    /// Every arm the daemon knows: open ones and the recently closed (journal included).
    Arms {},
    /// Waits for an arm's outcomes (a scheduled arm's fire, or one in flight) and
    /// answers like `fire`. `timeout_ms` bounds the wait; by default the daemon waits
    /// until the arm's deadline plus the target's response timeout.
    Wait {
        arm: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    Stats {},
    /// Estimates a target's clock offset and round trip from its `Date` header.
    Sync {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
    },
    Down {},
}

/// An order to hold ready. The daemon picks the arm id and the idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmRequest {
    pub sku: String,
    #[serde(default = "one")]
    pub qty: u32,
    /// Connections to send it over at once (a burst).
    #[serde(default = "one_usize")]
    pub conns: usize,
    /// Target name; may be left out when the daemon has exactly one target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub trigger: TriggerSpec,
    /// Correct a scheduled fire so the request arrives at the instant on the server's
    /// clock (needs a sync). Left out: the configuration's `timing.arrive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrive: Option<bool>,
}

fn one() -> u32 {
    1
}

fn one_usize() -> usize {
    1
}

/// When an arm fires: `"manual"`, `{"at":"2026-11-27T08:00:00.000000Z"}` or
/// `{"in_ns":2000000000}`. The daemon turns `at` and `in_ns` into a monotonic deadline
/// when it receives the arm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerSpec {
    /// On a `fire` request.
    Manual,
    /// At this RFC 3339 UTC instant (on our clock, or the server's with `arrive`).
    At(String),
    /// This many nanoseconds after the daemon receives the arm.
    InNs(u64),
}

/// Why a line could not be understood or a reply came back negative.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("expected a JSON object")]
    NotAnObject,
    #[error("missing \"v\" (protocol version)")]
    NoVersion,
    #[error("protocol version {got} not supported (this build speaks {VERSION})")]
    Version { got: Value },
    #[error("bad request: {0}")]
    Request(String),
    /// The daemon answered `"ok": false`.
    #[error("{0}")]
    Refused(String),
}

/// Reads one request line (without its newline).
pub fn decode_request(line: &[u8]) -> Result<Request, ProtocolError> {
    let body = open_envelope(line)?;
    serde_json::from_value(Value::Object(body)).map_err(|e| ProtocolError::Request(e.to_string()))
}

/// Writes one request line, newline included.
pub fn encode_request(request: &Request) -> String {
    seal(request, None)
}

/// Writes a successful reply line, newline included. `body` must serialize to an object.
pub fn encode_ok<T: Serialize>(body: &T) -> String {
    seal(body, Some(true))
}

/// Writes a refusal line, newline included.
pub fn encode_error(message: &str) -> String {
    #[derive(Serialize)]
    struct Refusal<'a> {
        error: &'a str,
    }
    seal(&Refusal { error: message }, Some(false))
}

/// Reads one reply line: the command's fields, or the daemon's refusal as an error.
pub fn decode_reply<T: DeserializeOwned>(line: &[u8]) -> Result<T, ProtocolError> {
    let mut body = open_envelope(line)?;
    match body.remove("ok") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            let message = match body.remove("error") {
                Some(Value::String(s)) => s,
                _ => "refused without a reason".to_owned(),
            };
            return Err(ProtocolError::Refused(message));
        }
        _ => return Err(ProtocolError::Request("reply has no boolean \"ok\"".into())),
    }
    serde_json::from_value(Value::Object(body)).map_err(ProtocolError::Json)
}

/// Serializes `body` (an object) as one line behind the envelope: `v`, and `ok` for
/// replies. Spliced as text rather than merged as a map: a map would sort the keys, and
/// `v` first, then the fields in declaration order, is what a person reading a capture
/// expects.
fn seal<T: Serialize + ?Sized>(body: &T, ok: Option<bool>) -> String {
    let body = serde_json::to_string(body).expect("protocol bodies serialize");
    let fields = body
        .strip_prefix('{')
        .expect("protocol bodies are JSON objects");
    let mut line = format!("{{\"v\":{VERSION},");
    if let Some(ok) = ok {
        line += &format!("\"ok\":{ok},");
    }
    if fields == "}" {
        line.pop(); // the comma after the envelope's last field
    }
    line.push_str(fields);
    line.push('\n');
    line
}

/// Parses a line as an object and takes its version out, refusing any but ours.
fn open_envelope(line: &[u8]) -> Result<Map<String, Value>, ProtocolError> {
    let Value::Object(mut object) = serde_json::from_slice(line)? else {
        return Err(ProtocolError::NotAnObject);
    };
    match object.remove("v") {
        None => Err(ProtocolError::NoVersion),
        Some(v) if v.as_u64() == Some(VERSION) => Ok(object),
        Some(got) => Err(ProtocolError::Version { got }),
    }
}

#[cfg(test)]
mod tests;
