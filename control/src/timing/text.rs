//! The text forms of time the CLI and the journal use: RFC 3339 UTC instants with
//! microseconds (`2026-11-27T08:00:00.000000Z`), short durations (`2s`, `150ms`,
//! `1m30s`), and the HTTP `Date` header's IMF-fixdate (`Fri, 27 Nov 2026 08:00:00 GMT`).

use super::clock::UnixNs;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Why a time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeTextError {
    #[error("{text:?} is not an RFC 3339 instant (like 2026-11-27T08:00:00.000000Z): {why}")]
    Instant { text: String, why: String },
    #[error("{text:?} is not in UTC: write it with a Z (like 2026-11-27T08:00:00.000000Z)")]
    NotUtc { text: String },
    #[error("{text:?} is not a duration (like 2s, 150ms, 1m30s, 250us)")]
    Duration { text: String },
}

/// Parses an RFC 3339 instant in UTC (`Z` or `+00:00`) to ns since the epoch.
pub fn parse_utc(text: &str) -> Result<UnixNs, TimeTextError> {
    let t = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|e| TimeTextError::Instant {
        text: text.to_owned(),
        why: e.to_string(),
    })?;
    if t.offset() != UtcOffset::UTC {
        return Err(TimeTextError::NotUtc {
            text: text.to_owned(),
        });
    }
    i64::try_from(t.unix_timestamp_nanos()).map_err(|_| TimeTextError::Instant {
        text: text.to_owned(),
        why: "out of range".into(),
    })
}

/// Formats ns since the epoch as RFC 3339 UTC with microseconds.
pub fn format_utc(ns: UnixNs) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)) else {
        return format!("@{ns}ns");
    };
    let d = t.date();
    let c = t.time();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        c.hour(),
        c.minute(),
        c.second(),
        c.microsecond()
    )
}

/// Parses `2s`, `150ms`, `1m30s`, `1.5s`, `250us`/`250µs`, `10ns`, `2h` to ns.
pub fn parse_duration(text: &str) -> Result<u64, TimeTextError> {
    let bad = || TimeTextError::Duration {
        text: text.to_owned(),
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() || frac.len() > 9 {
            return Err(bad());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let mut part = whole.checked_mul(scale).ok_or_else(bad)?;
        if !frac.is_empty() {
            let f: u128 = frac.parse().map_err(|_| bad())?;
            part += f * scale / 10u128.pow(frac.len() as u32);
        }
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = tail;
    }
    u64::try_from(total).map_err(|_| bad())
}

/// Reads an IMF-fixdate `Date` header to whole seconds since the epoch.
pub fn parse_http_date(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let t = PrimitiveDateTime::parse(text, format).ok()?;
    Some(t.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_with_microseconds() {
        let ns = parse_utc("2026-11-27T08:00:00.000001Z").unwrap();
        assert_eq!(ns, 1_795_766_400_000_001_000);
        assert_eq!(format_utc(ns), "2026-11-27T08:00:00.000001Z");
        assert_eq!(
            parse_utc("2026-11-27T08:00:00+00:00").unwrap() % 1_000_000_000,
            0
        );
        assert_eq!(format_utc(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn bad_instants_say_why() {
        for (text, want) in [
            ("tomorrow", "not an RFC 3339 instant"),
            ("2026-11-27 08:00:00", "not an RFC 3339 instant"),
            ("2026-11-27T08:00:00", "not an RFC 3339 instant"),
            ("2026-11-27T08:00:00+01:00", "not in UTC"),
            ("2026-13-27T08:00:00Z", "not an RFC 3339 instant"),
        ] {
            let err = parse_utc(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn durations() {
        for (text, ns) in [
            ("2s", 2_000_000_000),
            ("150ms", 150_000_000),
            ("1m30s", 90_000_000_000),
            ("1.5s", 1_500_000_000),
            ("250us", 250_000),
            ("250µs", 250_000),
            ("10ns", 10),
            ("2h", 7_200_000_000_000),
            (".5s", 500_000_000),
        ] {
            assert_eq!(parse_duration(text), Ok(ns), "{text}");
        }
        for text in ["", "2", "s", "2 s", "2d", "-1s", "1..2s", "99999999999999h"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date(b"Fri, 27 Nov 2026 08:00:00 GMT"),
            Some(1_795_766_400)
        );
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date(b"\xff"), None);
    }
}
