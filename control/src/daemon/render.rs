//! Turning an arm request into an order the datapath can hold: pick the target, enforce
//! its caps, and render the exact request bytes with a fresh idempotency key. Pure apart
//! from the key's randomness, so every refusal is unit-tested.

use crate::protocol::ArmRequest;
use crate::setup::TargetPlan;
use quickdraw_datapath::http::{HttpError, Placeholders};
use ring::rand::{SecureRandom, SystemRandom};

/// Why an arm request was refused before reaching the datapath.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArmError {
    #[error("unknown target {name:?} (configured: {known})")]
    UnknownTarget { name: String, known: String },
    #[error("several targets are configured ({known}): say which with --target")]
    WhichTarget { known: String },
    #[error("conns must be at least 1")]
    NoConns,
    #[error("conns {asked} is over target {target}'s {cap} ({why})")]
    TooManyConns {
        asked: usize,
        cap: usize,
        target: String,
        why: &'static str,
    },
    #[error("qty must be at least 1")]
    NoQty,
    #[error("sku {sku:?}: must be 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    BadSku { sku: String },
    #[error("target {target}: cannot render the order request: {source}")]
    Render { target: String, source: HttpError },
    #[error("no randomness for the idempotency key")]
    Random,
}

/// An order ready to be armed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Index of the target in the configuration (and the datapath's).
    pub target: usize,
    pub conns: usize,
    pub request: Vec<u8>,
}

/// Resolves the target, checks the caps and renders the request carrying `key`.
pub fn prepare(targets: &[TargetPlan], req: &ArmRequest, key: &str) -> Result<Order, ArmError> {
    let known = || {
        targets
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let index = match &req.target {
        Some(name) => targets
            .iter()
            .position(|t| &t.name == name)
            .ok_or_else(|| ArmError::UnknownTarget {
                name: name.clone(),
                known: known(),
            })?,
        None if targets.len() == 1 => 0,
        None => return Err(ArmError::WhichTarget { known: known() }),
    };
    let t = &targets[index];
    // Checked here even when the template does not use {sku}: the sku is shown in
    // status and logs, and must stay one printable token there.
    let sku_ok = (1..=64).contains(&req.sku.len())
        && req
            .sku
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !sku_ok {
        return Err(ArmError::BadSku {
            sku: req.sku.clone(),
        });
    }
    if req.qty == 0 {
        return Err(ArmError::NoQty);
    }
    if req.conns == 0 {
        return Err(ArmError::NoConns);
    }
    let too_many = |cap, why| ArmError::TooManyConns {
        asked: req.conns,
        cap,
        target: t.name.clone(),
        why,
    };
    if req.conns > t.max_fires_per_arm {
        return Err(too_many(t.max_fires_per_arm, "max_fires_per_arm"));
    }
    if req.conns > t.connections {
        return Err(too_many(t.connections, "connections in its warm pool"));
    }
    let placeholders = Placeholders {
        sku: &req.sku,
        qty: req.qty,
        idempotency_key: key,
    };
    let request = t
        .template
        .render(&t.host, t.port, &placeholders)
        .map_err(|source| ArmError::Render {
            target: t.name.clone(),
            source,
        })?;
    Ok(Order {
        target: index,
        conns: req.conns,
        request,
    })
}

/// A fresh idempotency key: 128 random bits in lowercase hex. Unique per arm, and
/// URL-unreserved, so a template may put it in the path or body as well as the header.
pub fn new_key(rng: &SystemRandom) -> Result<String, ArmError> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes).map_err(|_| ArmError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TriggerSpec;
    use quickdraw_datapath::http::RequestTemplate;
    use std::collections::HashSet;
    use std::time::Duration;

    fn lab() -> TargetPlan {
        TargetPlan {
            name: "lab".into(),
            host: "target.lab".into(),
            port: 443,
            address: std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(198, 18, 0, 2), 443),
            template: RequestTemplate {
                method: "POST".into(),
                path: "/api/order".into(),
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: r#"{{"sku":"{sku}","qty":{qty}}}"#.into(),
            },
            connections: 8,
            max_fires_per_arm: 4,
            max_fires_per_minute: 60,
            response_timeout: Duration::from_secs(5),
        }
    }

    fn req(sku: &str, conns: usize, target: Option<&str>) -> ArmRequest {
        ArmRequest {
            sku: sku.into(),
            qty: 2,
            conns,
            target: target.map(Into::into),
            trigger: TriggerSpec::Manual,
            arrive: None,
        }
    }

    #[test]
    fn renders_the_order_with_the_key() {
        let order = prepare(&[lab()], &req("1001", 3, None), "00ff").unwrap();
        assert_eq!((order.target, order.conns), (0, 3));
        let text = String::from_utf8(order.request).unwrap();
        assert!(
            text.starts_with("POST /api/order HTTP/1.1\r\nHost: target.lab\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nIdempotency-Key: 00ff\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n{\"sku\":\"1001\",\"qty\":2}"),
            "{text}"
        );
    }

    #[test]
    fn refusals_say_why() {
        let mut other = lab();
        other.name = "other".into();
        let both = [lab(), other];
        let cases = [
            (
                prepare(&[lab()], &req("1", 1, Some("nope")), "k"),
                "unknown target \"nope\" (configured: lab)",
            ),
            (
                prepare(&both, &req("1", 1, None), "k"),
                "several targets are configured (lab, other)",
            ),
            (
                prepare(&[lab()], &req("1", 5, None), "k"),
                "conns 5 is over target lab's 4 (max_fires_per_arm)",
            ),
            (
                prepare(&[lab()], &req("1", 0, None), "k"),
                "conns must be at least 1",
            ),
            (prepare(&[lab()], &req("a b", 1, None), "k"), "sku \"a b\""),
            (prepare(&[lab()], &req("", 1, None), "k"), "sku \"\""),
            (
                prepare(&[lab()], &req(&"9".repeat(65), 1, None), "k"),
                "must be 1 to 64",
            ),
            (prepare(&[lab()], &req("x\"}", 1, None), "k"), "sku"),
        ];
        for (got, want) in cases {
            let err = got.unwrap_err().to_string();
            assert!(err.contains(want), "{err} (wanted {want})");
        }
        assert_eq!(
            prepare(&both, &req("1", 1, Some("other")), "k")
                .unwrap()
                .target,
            1
        );

        let mut small_pool = lab();
        small_pool.connections = 2;
        let err = prepare(&[small_pool], &req("1", 3, None), "k")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("over target lab's 2 (connections in its warm pool)"),
            "{err}"
        );

        let mut zero = req("1", 1, None);
        zero.qty = 0;
        assert_eq!(prepare(&[lab()], &zero, "k"), Err(ArmError::NoQty));
    }

    #[test]
    fn template_errors_name_the_target() {
        let mut bad = lab();
        bad.template.path = "/api/{order}".into();
        let err = prepare(&[bad], &req("1", 1, None), "k")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "target lab: cannot render the order request: path: unknown placeholder"
            ),
            "{err}"
        );
    }

    #[test]
    fn keys_are_unique_128_bit_hex() {
        let rng = SystemRandom::new();
        let keys: HashSet<String> = (0..10_000).map(|_| new_key(&rng).unwrap()).collect();
        assert_eq!(keys.len(), 10_000);
        for k in keys.iter().take(10) {
            assert_eq!(k.len(), 32);
            assert!(
                k.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{k}"
            );
        }
    }
}
