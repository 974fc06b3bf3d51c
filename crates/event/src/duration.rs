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

/// A duration as people write it in config (`30s`, `10m`, `1h 30m`, `2w`), read with
/// [`parse_span`] when the config is read (serde), so a malformed one is refused
/// there with its key; keeps its text for messages. Whether it must be whole
/// seconds is the reader's rule: [`HumanDuration::millis`] or [`HumanDuration::span`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct HumanDuration {
    text: String,
    span: std::time::Duration,
}

impl HumanDuration {
    /// Any duration, `500ms` included.
    pub fn span(&self) -> std::time::Duration {
        self.span
    }

    /// In whole milliseconds, refused unless whole seconds and at least 1s (windows,
    /// histories, retention, intervals: the rule of [`parse_duration`]).
    pub fn millis(&self) -> Result<i64, DurationError> {
        parse_duration(&self.text)
    }

    /// As it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<HumanDuration, DurationError> {
        Ok(HumanDuration {
            span: parse_span(s)?,
            text: s.to_string(),
        })
    }
}

impl TryFrom<String> for HumanDuration {
    type Error = DurationError;

    fn try_from(s: String) -> Result<HumanDuration, DurationError> {
        Ok(HumanDuration {
            span: parse_span(&s)?,
            text: s,
        })
    }
}

impl From<HumanDuration> for String {
    fn from(d: HumanDuration) -> String {
        d.text
    }
}

impl std::fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
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

    #[test]
    fn a_human_duration_is_read_once_and_keeps_its_text() {
        #[derive(serde::Deserialize)]
        struct Cfg {
            t: HumanDuration,
        }
        let c: Cfg = serde_json::from_str(r#"{"t": "1h 30m"}"#).unwrap();
        assert_eq!(c.t.span(), std::time::Duration::from_secs(5400));
        assert_eq!(c.t.millis(), Ok(5_400_000));
        assert_eq!(c.t.to_string(), "1h 30m");
        let e = serde_json::from_str::<Cfg>(r#"{"t": "ten minutes"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("invalid duration \"ten minutes\""), "{e}");
        // Read, but not whole seconds: the reader that needs them refuses it.
        let c: Cfg = serde_json::from_str(r#"{"t": "1500ms"}"#).unwrap();
        assert_eq!(c.t.span(), std::time::Duration::from_millis(1500));
        assert!(c.t.millis().is_err());
    }
}
