//! Durations given on the command line and in config (`30s`, `10m`, `1h`, `1d`, `2w`).

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DurationError {
    #[error("invalid duration {input:?}: {reason} (examples: 30s, 10m, 1h, 1d)")]
    Invalid { input: String, reason: String },
    #[error("duration {input:?} must be a whole number of seconds and at least 1s")]
    NotWholeSeconds { input: String },
}

/// Parses any human duration (`500ms`, `2s`, `5m`, `1h 30m`) with `humantime`: the
/// one duration parser of scanwatch (timeouts, retry delays and ages take this).
pub fn parse_span(s: &str) -> Result<std::time::Duration, DurationError> {
    humantime::parse_duration(s.trim()).map_err(|e| DurationError::Invalid {
        input: s.to_string(),
        reason: e.to_string(),
    })
}

/// A duration in whole milliseconds, at least one second and whole seconds:
/// windows, histories and intervals.
pub fn parse_duration(s: &str) -> Result<i64, DurationError> {
    let d = parse_span(s)?;
    if d.subsec_nanos() != 0 || d.as_secs() == 0 {
        return Err(DurationError::NotWholeSeconds {
            input: s.to_string(),
        });
    }
    i64::try_from(d.as_millis()).map_err(|_| DurationError::Invalid {
        input: s.to_string(),
        reason: "too large".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30_000));
        assert_eq!(parse_duration("10m"), Ok(600_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_duration("14d"), Ok(14 * 86_400_000));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1500ms").is_err());
        assert!(parse_duration("ten minutes").is_err());
        assert!(parse_duration("").is_err());
    }
}
