//! Event time: milliseconds since the Unix epoch (UTC), and its RFC 3339 form.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Milliseconds since 1970-01-01T00:00:00Z. Ordered, copyable, no time zone.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// Where "now" comes from: the wall clock, given by the binary, or a fixed one in
/// tests. Crates that stamp what they store or send take one (the collector, the
/// aggregators, the notifier); nothing below them reads the clock.
pub type Clock = std::sync::Arc<dyn Fn() -> Timestamp + Send + Sync>;

impl Timestamp {
    pub const MS_PER_SEC: i64 = 1000;

    pub fn from_secs(s: i64) -> Timestamp {
        Timestamp(s.saturating_mul(1000))
    }

    /// Start of the window of length `window_ms` that holds this instant
    /// (windows are aligned on the Unix epoch).
    pub fn floor(self, window_ms: i64) -> Timestamp {
        Timestamp(self.0.div_euclid(window_ms) * window_ms)
    }

    /// Builds a timestamp from civil UTC fields; `None` when they are out of range.
    pub fn from_civil(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        min: u32,
        sec: u32,
        millis: u32,
    ) -> Option<Timestamp> {
        let d = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
        let t = d.and_hms_milli_opt(hour, min, sec, millis)?;
        Some(Timestamp(t.and_utc().timestamp_millis()))
    }

    /// RFC 3339 in UTC with a `Z` suffix; milliseconds only when non-zero.
    pub fn to_rfc3339(self) -> String {
        format_rfc3339(self)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_rfc3339(*self))
    }
}

/// Formats as RFC 3339 UTC (`2026-11-26T10:40:00Z`, or `…00.123Z` with milliseconds).
pub fn format_rfc3339(t: Timestamp) -> String {
    match DateTime::<Utc>::from_timestamp_millis(t.0) {
        Some(dt) => {
            let fmt = if t.0.rem_euclid(1000) == 0 {
                SecondsFormat::Secs
            } else {
                SecondsFormat::Millis
            };
            dt.to_rfc3339_opts(fmt, true)
        }
        None => format!("@{}ms", t.0),
    }
}

/// Parses RFC 3339 / ISO 8601 with an offset (`Z`, `+00:00`, `+0000`), as written by
/// rsyslog, `journalctl -o short-iso` and JSON emitters.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(Timestamp(dt.timestamp_millis()));
    }
    // `+0000` offsets (journalctl short-iso, Suricata) are not RFC 3339 proper.
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(Timestamp(dt.timestamp_millis()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_floor() {
        let t = parse_rfc3339("2026-11-26T10:47:13Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-26T10:47:13Z");
        assert_eq!(t.floor(600_000).to_rfc3339(), "2026-11-26T10:40:00Z");
        let t = parse_rfc3339("2026-11-26T10:47:13.250+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-26T09:47:13.250Z");
        assert_eq!(
            parse_rfc3339("2026-11-26T10:47:13.5+0000")
                .unwrap()
                .to_rfc3339(),
            "2026-11-26T10:47:13.500Z"
        );
        assert_eq!(Timestamp(-1).floor(1000), Timestamp(-1000));
        assert!(parse_rfc3339("yesterday").is_none());
    }
}
