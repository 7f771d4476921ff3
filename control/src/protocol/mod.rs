//! The control socket's wire protocol, shared by the CLI and the daemon: one JSON object
//! per line each way. Every request carries `"v"` and a `"cmd"`; every reply carries `"v"`
//! and `"ok"`, then either the command's fields or `"error"`.
//!
//! Requests deny unknown fields (a typo must not silently become a default on an order);
//! replies tolerate them, so a newer daemon can add fields without breaking older CLIs.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    /// `arm: None` fires the only open arm.
    Fire {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arm: Option<u64>,
    },
    Disarm {
        arm: u64,
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
}

fn one() -> u32 {
    1
}

fn one_usize() -> usize {
    1
}

/// When an arm fires. Scheduled triggers arrive in a later protocol revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerSpec {
    /// On a `fire` request.
    Manual,
}

/// The reply to `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    /// "af_xdp" or "kernel".
    pub backend: String,
    /// "copy"/"zerocopy" (AF_XDP) or "kernel".
    pub bind_mode: String,
    pub pinned: bool,
    /// The datapath thread is alive.
    pub running: bool,
    /// Running, and every target has every wanted connection warm.
    pub ready: bool,
    pub targets: Vec<TargetStatus>,
    /// Arms not yet finished (armed, or fired with outcomes pending).
    pub arms: Vec<ArmStatus>,
}

/// One target's pool as the datapath last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub name: String,
    pub warm: usize,
    pub wanted: usize,
    /// The last connection error the datapath reported for this target.
    pub last_error: Option<String>,
    pub errors: u64,
}

/// Where an arm stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArmState {
    /// Sent to the datapath, not yet acknowledged.
    Pending,
    Armed,
    /// Fired; outcomes still arriving.
    Fired,
    /// Every outcome is in.
    Done,
    Rejected,
    Disarmed,
}

impl ArmState {
    /// Still holds the datapath's attention.
    pub fn is_open(self) -> bool {
        matches!(self, ArmState::Pending | ArmState::Armed | ArmState::Fired)
    }
}

/// One arm, as `status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmStatus {
    pub arm: u64,
    pub sku: String,
    pub qty: u32,
    pub key: String,
    pub target: String,
    pub conns: usize,
    pub state: ArmState,
    pub outcomes: usize,
}

/// The reply to `arm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmReply {
    pub arm: u64,
    /// The Idempotency-Key the request carries.
    pub key: String,
    pub target: String,
    pub conns: usize,
}

/// The reply to `fire`: one outcome per connection asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireReply {
    pub arm: u64,
    pub key: String,
    /// Outcomes expected (the arm's conns).
    pub expected: usize,
    /// All expected outcomes arrived before the daemon stopped waiting.
    pub complete: bool,
    pub outcomes: Vec<FireOutcome>,
}

/// How one connection's share of a fire ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireOutcome {
    /// Connection index in the target's pool; `None` when nothing was sent.
    pub conn: Option<usize>,
    /// "status", "unknown" or "not_sent".
    pub result: String,
    /// The HTTP status, when `result` is "status".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why the outcome is unknown ("connection_lost", "timeout", "bad_response").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    pub stamps: StampsView,
}

/// CLOCK_MONOTONIC nanoseconds; 0 = did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StampsView {
    pub trigger_ns: u64,
    pub tx_ns: u64,
    pub first_byte_ns: u64,
    pub complete_ns: u64,
    pub scheduled_ns: u64,
}

/// The reply to `disarm` and `down`: which arm (if any) it was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Done {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<u64>,
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
mod tests {
    use super::*;

    fn round_trip(request: Request) {
        let line = encode_request(&request);
        assert!(
            line.ends_with('\n') && line.starts_with("{\"v\":1,"),
            "{line}"
        );
        assert_eq!(decode_request(line.trim_end().as_bytes()).unwrap(), request);
    }

    #[test]
    fn requests_round_trip() {
        round_trip(Request::Status {});
        round_trip(Request::Down {});
        round_trip(Request::Fire { arm: None });
        round_trip(Request::Fire { arm: Some(7) });
        round_trip(Request::Disarm { arm: 3 });
        round_trip(Request::Arm(ArmRequest {
            sku: "1001".into(),
            qty: 2,
            conns: 8,
            target: Some("lab".into()),
            trigger: TriggerSpec::Manual,
        }));
    }

    #[test]
    fn wire_shape_is_the_documented_one() {
        let line = br#"{"v":1,"cmd":"arm","sku":"1001","trigger":"manual"}"#;
        let Request::Arm(arm) = decode_request(line).unwrap() else {
            panic!()
        };
        assert_eq!((arm.qty, arm.conns, arm.target), (1, 1, None));
        assert_eq!(
            decode_request(br#"{"cmd":"fire","v":1}"#).unwrap(),
            Request::Fire { arm: None }
        );
        assert_eq!(
            encode_request(&Request::Disarm { arm: 4 }),
            "{\"v\":1,\"cmd\":\"disarm\",\"arm\":4}\n"
        );
    }

    #[test]
    fn replies_round_trip() {
        let reply = ArmReply {
            arm: 1,
            key: "ab".into(),
            target: "lab".into(),
            conns: 1,
        };
        let line = encode_ok(&reply);
        assert!(line.starts_with("{\"v\":1,\"ok\":true,"), "{line}");
        assert_eq!(decode_reply::<ArmReply>(line.as_bytes()).unwrap(), reply);

        let fire = FireReply {
            arm: 2,
            key: "k".into(),
            expected: 2,
            complete: true,
            outcomes: vec![
                FireOutcome {
                    conn: Some(0),
                    result: "status".into(),
                    status: Some(200),
                    unknown: None,
                    stamps: StampsView {
                        trigger_ns: 1,
                        tx_ns: 2,
                        first_byte_ns: 3,
                        complete_ns: 4,
                        scheduled_ns: 0,
                    },
                },
                FireOutcome {
                    conn: None,
                    result: "not_sent".into(),
                    status: None,
                    unknown: None,
                    stamps: StampsView::default(),
                },
            ],
        };
        assert_eq!(
            decode_reply::<FireReply>(encode_ok(&fire).as_bytes()).unwrap(),
            fire
        );
        assert_eq!(
            decode_reply::<Done>(encode_ok(&Done::default()).as_bytes()).unwrap(),
            Done::default()
        );
    }

    #[test]
    fn refusals_come_back_as_errors() {
        let line = encode_error("no such arm 9");
        assert_eq!(line, "{\"v\":1,\"ok\":false,\"error\":\"no such arm 9\"}\n");
        match decode_reply::<Done>(line.as_bytes()) {
            Err(ProtocolError::Refused(m)) => assert_eq!(m, "no such arm 9"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replies_tolerate_fields_from_newer_daemons() {
        let line = br#"{"v":1,"ok":true,"arm":1,"key":"k","target":"t","conns":1,"later":true}"#;
        assert_eq!(decode_reply::<ArmReply>(line).unwrap().arm, 1);
    }

    #[test]
    fn malformed_requests_are_errors_not_panics() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "not JSON"),
            (b"{", "not JSON"),
            (b"\xff\xfe", "not JSON"),
            (b"[1,2]", "object"),
            (b"{\"cmd\":\"status\"}", "missing \"v\""),
            (b"{\"v\":2,\"cmd\":\"status\"}", "version 2 not supported"),
            (b"{\"v\":\"1\",\"cmd\":\"status\"}", "not supported"),
            (b"{\"v\":1}", "missing field `cmd`"),
            (b"{\"v\":1,\"cmd\":\"launch\"}", "unknown variant `launch`"),
            (b"{\"v\":1,\"cmd\":\"disarm\"}", "missing field `arm`"),
            (b"{\"v\":1,\"cmd\":\"disarm\",\"arm\":-1}", "invalid value"),
            (
                b"{\"v\":1,\"cmd\":\"arm\",\"sku\":\"1\"}",
                "missing field `trigger`",
            ),
            (
                b"{\"v\":1,\"cmd\":\"arm\",\"sku\":\"1\",\"trigger\":\"at\"}",
                "unknown variant `at`",
            ),
            (
                b"{\"v\":1,\"cmd\":\"arm\",\"sku\":\"1\",\"trigger\":\"manual\",\"qtty\":2}",
                "unknown field `qtty`",
            ),
            (
                b"{\"v\":1,\"cmd\":\"status\",\"verbose\":true}",
                "unknown field `verbose`",
            ),
        ];
        for (line, want) in cases {
            let err = decode_request(line)
                .expect_err(&String::from_utf8_lossy(line))
                .to_string();
            assert!(
                err.contains(want),
                "{:?}: {err}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
