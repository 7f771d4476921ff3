//! The text forms of time the CLI and the journal use: RFC 3339 UTC instants with
//! microseconds (`2026-11-27T08:00:00.000000Z`) and the HTTP `Date` header's IMF-fixdate
//! (`Fri, 27 Nov 2026 08:00:00 GMT`). Durations are humantime's, on every flag of both
//! binaries.

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
