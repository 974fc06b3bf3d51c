//! Syslog line headers (RFC 3164 `Mmm dd hh:mm:ss host`, ISO/RFC 3339 timestamps as
//! written by rsyslog and `journalctl -o short-iso`, RFC 5424 `<pri>1 time host`) and
//! the rule that gives a year to timestamps that have none.

use scanwatch_event::{parse_rfc3339, Timestamp};

use crate::ParseError;

const DAY_MS: i64 = 86_400_000;

/// Gives a year to RFC 3164 timestamps (`Nov 26 10:40:00`), which have none.
///
/// The rule, documented in `docs/formats.md`:
/// 1. The first such line gets the year of the reference time (a file's modification
///    time, or `--year`); if that would put it more than one day after the reference
///    time, it gets the year before (a December log read in January).
/// 2. Later lines keep that year, and move to the next year when the month goes back
///    by more than six months (December → January rollover inside the file).
/// 3. A line whose month is more than six months *after* the current one is a stray
///    older line and gets the year before, without changing the current year.
///
/// Timestamps without a zone are taken as UTC.
#[derive(Clone, Debug)]
pub struct YearResolver {
    reference: Timestamp,
    current: Option<(i32, u32)>,
    /// Cache of the last civil date seen: (year, month, day) → its midnight in ms.
    last_day: Option<((i32, u32, u32), i64)>,
}

impl YearResolver {
    pub fn new(reference: Timestamp) -> YearResolver {
        YearResolver {
            reference,
            current: None,
            last_day: None,
        }
    }

    /// Resolves civil fields without a year into a timestamp.
    pub fn resolve(
        &mut self,
        month: u32,
        day: u32,
        h: u32,
        m: u32,
        s: u32,
        ms: u32,
    ) -> Option<Timestamp> {
        let year = match self.current {
            None => {
                let ref_year = chrono::DateTime::from_timestamp_millis(self.reference.0)
                    .map(|d| chrono::Datelike::year(&d))
                    .unwrap_or(1970);
                let t = Timestamp::from_civil(ref_year, month, day, h, m, s, ms);
                let year = match t {
                    Some(t) if t.0 > self.reference.0 + DAY_MS => ref_year - 1,
                    _ => ref_year,
                };
                self.current = Some((year, month));
                year
            }
            Some((year, last)) => {
                if month + 6 < last {
                    self.current = Some((year + 1, month));
                    year + 1
                } else if month > last + 6 {
                    year - 1
                } else {
                    self.current = Some((year, month));
                    year
                }
            }
        };
        // Most lines share the date of the line before: skip the calendar maths.
        if h > 23 || m > 59 || s > 60 || ms > 999 {
            return None;
        }
        let midnight = match self.last_day {
            Some((d, t)) if d == (year, month, day) => t,
            _ => {
                // Feb 29 of a non-leap year and the like are refused here.
                let t = Timestamp::from_civil(year, month, day, 0, 0, 0, 0)?.0;
                self.last_day = Some(((year, month, day), t));
                t
            }
        };
        // A leap second (:60) is folded onto the next second.
        Some(Timestamp(
            midnight
                + i64::from(h) * 3_600_000
                + i64::from(m) * 60_000
                + i64::from(s) * 1000
                + i64::from(ms),
        ))
    }
}

/// The parts of a syslog line before the message.
#[derive(Debug, PartialEq)]
pub(crate) struct Header<'l> {
    pub time: Timestamp,
    pub host: Option<&'l str>,
    /// Everything after the host field.
    pub rest: &'l str,
}

pub(crate) fn month_number(b: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    if b.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(&b[..3]))
        .map(|i| i as u32 + 1)
}

fn two_digits(b: &[u8]) -> Option<u32> {
    match b {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        }
        _ => None,
    }
}

/// Parses `hh:mm:ss[.frac]` and returns (h, m, s, millis, bytes used).
pub(crate) fn parse_clock(b: &[u8]) -> Option<(u32, u32, u32, u32, usize)> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let h = two_digits(&b[0..2])?;
    let m = two_digits(&b[3..5])?;
    let s = two_digits(&b[6..8])?;
    let mut used = 8;
    let mut ms = 0;
    if b.len() > 8 && b[8] == b'.' {
        used = 9;
        let mut scale = 100;
        while used < b.len() && b[used].is_ascii_digit() {
            ms += u32::from(b[used] - b'0') * scale;
            scale /= 10;
            used += 1;
        }
        if used == 9 {
            return None;
        }
    }
    Some((h, m, s, ms, used))
}

/// Splits off the first space-separated token (skipping leading spaces).
pub(crate) fn next_token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(' ');
    if s.is_empty() {
        return None;
    }
    match memchr::memchr(b' ', s.as_bytes()) {
        Some(i) => Some((&s[..i], &s[i + 1..])),
        None => Some((s, "")),
    }
}

/// The first `n` bytes of `s`, or fewer so as not to cut a character in two.
fn head(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Parses a syslog header; `Ok(None)` when the line does not start like syslog.
pub(crate) fn parse_header<'l>(
    line: &'l str,
    years: &mut YearResolver,
) -> Result<Option<Header<'l>>, ParseError> {
    let mut s = line;
    // RFC 5424 / forwarded RFC 3164: `<134>` priority, then optional version `1 `.
    if s.starts_with('<') {
        if let Some(end) = head(s, 6).find('>') {
            s = &s[end + 1..];
            if let Some(r) = s.strip_prefix("1 ") {
                s = r;
            }
        }
    }
    let b = s.as_bytes();
    let (time, rest) = if b.len() >= 15 && b[3] == b' ' && month_number(b).is_some() {
        // RFC 3164: `Mmm dd hh:mm:ss` (day padded with a space or a zero).
        let month = month_number(b).unwrap_or(1);
        let day_field = &b[4..6];
        let day = match day_field {
            [b' ', d] if d.is_ascii_digit() => u32::from(d - b'0'),
            _ => two_digits(day_field)
                .ok_or_else(|| ParseError::Timestamp(head(s, 15).to_string()))?,
        };
        if b[6] != b' ' {
            return Err(ParseError::Timestamp(head(s, 15).to_string()));
        }
        let (h, m, sec, ms, used) =
            parse_clock(&b[7..]).ok_or_else(|| ParseError::Timestamp(head(s, 15).to_string()))?;
        let t = years
            .resolve(month, day, h, m, sec, ms)
            .ok_or_else(|| ParseError::Timestamp(head(&s[..7 + used], 32).to_string()))?;
        (t, &s[7 + used..])
    } else if b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T')
        && b[0].is_ascii_digit()
    {
        let (tok, rest) = next_token(s).unwrap_or((s, ""));
        let t =
            parse_rfc3339(tok).ok_or_else(|| ParseError::Timestamp(head(tok, 40).to_string()))?;
        (t, rest)
    } else {
        return Ok(None);
    };
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let (host, rest) = match next_token(rest) {
        // A host name never ends with ':' (that is a program tag: no host given).
        Some((h, r)) if !h.ends_with(':') && !h.starts_with('[') => (Some(h), r),
        _ => (None, rest),
    };
    Ok(Some(Header { time, host, rest }))
}

/// Parses an ISO 8601 date and time: RFC 3339 with an offset (`Z`, `+01:00`,
/// `+0100`), or without any zone (`2026-11-26T10:40:01.5`, also with a space for the
/// `T`), which is read as UTC.
pub(crate) fn parse_iso_utc(s: &str) -> Option<Timestamp> {
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Timestamp(dt.and_utc().timestamp_millis()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn year_rule() {
        // Log read in the same year.
        let mut y = YearResolver::new(ts("2026-11-26T12:00:00Z"));
        assert_eq!(
            y.resolve(11, 26, 10, 0, 0, 0),
            Some(ts("2026-11-26T10:00:00Z"))
        );
        // December lines in a file modified in January belong to last year, and the
        // rollover inside the file moves to the new year.
        let mut y = YearResolver::new(ts("2027-01-02T00:00:00Z"));
        assert_eq!(
            y.resolve(12, 31, 23, 59, 59, 0),
            Some(ts("2026-12-31T23:59:59Z"))
        );
        assert_eq!(
            y.resolve(1, 1, 0, 0, 1, 0),
            Some(ts("2027-01-01T00:00:01Z"))
        );
        // A stray older line does not move the current year back.
        assert_eq!(
            y.resolve(12, 30, 0, 0, 0, 0),
            Some(ts("2026-12-30T00:00:00Z"))
        );
        assert_eq!(
            y.resolve(1, 2, 0, 0, 0, 0),
            Some(ts("2027-01-02T00:00:00Z"))
        );
        // Invalid civil dates are refused, not panicked on.
        assert_eq!(y.resolve(2, 30, 0, 0, 0, 0), None);
        assert_eq!(y.resolve(1, 1, 25, 0, 0, 0), None);
    }

    #[test]
    fn headers() {
        let mut y = YearResolver::new(ts("2026-11-26T12:00:00Z"));
        let h = parse_header("Jun  8 14:34:33 sd-126005 kernel: [1.0] IN=eth0", &mut y)
            .unwrap()
            .unwrap();
        assert_eq!(h.time, ts("2026-06-08T14:34:33Z"));
        assert_eq!(h.host, Some("sd-126005"));
        assert_eq!(h.rest, "kernel: [1.0] IN=eth0");
        let h = parse_header("2026-11-26T10:11:12.5+0100 gw kernel: IN=eth0", &mut y)
            .unwrap()
            .unwrap();
        assert_eq!(h.time, ts("2026-11-26T09:11:12.500Z"));
        assert_eq!(h.host, Some("gw"));
        let h = parse_header("<4>1 2026-11-26T10:11:12Z gw kernel - - - IN=eth0", &mut y)
            .unwrap()
            .unwrap();
        assert_eq!(h.host, Some("gw"));
        let h = parse_header("Nov 26 10:11:12.123456 gw kernel: x", &mut y)
            .unwrap()
            .unwrap();
        assert_eq!(h.time, ts("2026-11-26T10:11:12.123Z"));
        assert!(parse_header("[  203.8] IN=lo", &mut y).unwrap().is_none());
        assert!(parse_header("Jun 88 14:34:33 h kernel:", &mut y).is_err());
        assert!(parse_header("Jun  8 14:3x:33 h kernel:", &mut y).is_err());
    }

    #[test]
    fn multibyte_text_in_a_bad_header_is_an_error_not_a_panic() {
        // Found by fuzzing: error messages cut the line at byte 15 (or 6), which may
        // fall inside a character.
        let mut y = YearResolver::new(ts("2026-11-26T12:00:00Z"));
        for line in [
            "Jun  \u{fffd}\u{fffd}\u{fffd}\u{fffd}8 14:34:33 h kernel: IN=",
            "Jun  8x14:34:3\u{e9}3 h kernel: IN=",
            "Jun  8 14:34:3\u{e9} h kernel: IN=",
            "Jun x8 14:34:3\u{e9} h kernel: IN=",
        ] {
            assert!(
                matches!(parse_header(line, &mut y), Err(ParseError::Timestamp(_))),
                "{line:?}"
            );
        }
        assert!(parse_header("<1234\u{e9}>1 x", &mut y).unwrap().is_none());
    }

    #[test]
    fn a_huge_bad_timestamp_gives_a_short_error() {
        // Found by fuzzing: the whole ISO token (or every fraction digit) was echoed.
        let mut y = YearResolver::new(ts("2026-11-26T12:00:00Z"));
        let iso = format!("2026-11-26T00:11:1{} gw kernel: IN=", "\u{3}".repeat(5000));
        let frac = format!("Feb 30 00:00:00.{} gw kernel: IN=", "1".repeat(5000));
        for line in [iso, frac] {
            match parse_header(&line, &mut y) {
                Err(ParseError::Timestamp(shown)) => assert!(shown.len() <= 40, "{}", shown.len()),
                other => panic!("{other:?}"),
            }
        }
    }
}
