//! The DShield submission format: tab-separated
//! `time<TAB>userid<TAB>count<TAB>src<TAB>sport<TAB>dst<TAB>dport<TAB>proto<TAB>flags`,
//! with the time written as `2026-11-26 10:40:12 -0500` (the zone may also be
//! `-05:00` or `Z`, or the whole field RFC 3339). `proto` is a number (6, 17, 1) or a
//! name; `flags` are TCP flag letters (`S`, `SA`) and may be empty. For ICMP, DShield
//! puts the ICMP type in the source-port column.

use scanwatch_event::{parse_rfc3339, Action, Direction, Event, Protocol, TcpFlags};

use crate::{FormatSpec, LineOutcome, LineParser, ParseError, ParserOptions};

pub(crate) struct Spec;
pub(crate) static SPEC: Spec = Spec;

const FIELDS: usize = 9;

impl FormatSpec for Spec {
    fn name(&self) -> &'static str {
        "dshield"
    }
    fn description(&self) -> &'static str {
        "DShield submission format (tab-separated: time, user id, count, src, sport, dst, dport, proto, flags)"
    }
    fn sniff(&self, line: &str) -> bool {
        let mut f = line.split('\t');
        let time = f.next().unwrap_or("");
        let n = 1 + f.count();
        (n == FIELDS || n == FIELDS - 1) && parse_time(time).is_some()
    }
    fn parser(&self, _opts: &ParserOptions) -> Box<dyn LineParser> {
        Box::new(DshieldParser)
    }
}

#[derive(Debug, Default)]
pub struct DshieldParser;

/// The usual `YYYY-MM-DD HH:MM:SS ±HHMM` read by hand (chrono's general parser is
/// most of a line's cost); anything else goes to the general path.
fn parse_time_fast(s: &str) -> Option<scanwatch_event::Timestamp> {
    let b = s.as_bytes();
    if b.len() != 25 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[19] != b' ' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let (h, m, sec, _, used) = crate::syslog::parse_clock(&b[11..19])?;
    if used != 8 {
        return None;
    }
    let t = scanwatch_event::Timestamp::from_civil(
        num(0..4)? as i32,
        num(5..7)?,
        num(8..10)?,
        h,
        m,
        sec,
        0,
    )?;
    let sign = match b[20] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset_ms = i64::from(num(21..23)? * 60 + num(23..25)?) * 60_000;
    Some(scanwatch_event::Timestamp(t.0 - sign * offset_ms))
}

fn parse_time(s: &str) -> Option<scanwatch_event::Timestamp> {
    let s = s.trim();
    if let Some(t) = parse_time_fast(s) {
        return Some(t);
    }
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    // `2026-11-26 10:40:12 -0500`, `… -05:00`, `… Z`.
    let (dt, zone) = s.rsplit_once(' ')?;
    let zone = match zone {
        "Z" | "UTC" | "GMT" => "+00:00".to_string(),
        z if z.len() == 5 && z.is_ascii() => format!("{}:{}", &z[..3], &z[3..]),
        z => z.to_string(),
    };
    parse_rfc3339(&format!("{}T{}{}", dt.get(..10)?, dt.get(11..)?, zone))
}

impl LineParser for DshieldParser {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        let t = line.trim_end_matches('\r');
        if t.trim().is_empty() || t.starts_with('#') {
            return LineOutcome::Skip;
        }
        match parse(t) {
            Ok(o) => o,
            Err(e) => LineOutcome::Error(e),
        }
    }
}

fn parse(line: &str) -> Result<LineOutcome<'_>, ParseError> {
    let mut f = [""; FIELDS];
    let mut n = 0;
    for part in line.split('\t') {
        if n == FIELDS {
            return Err(ParseError::FieldCount {
                expected: FIELDS,
                found: line.split('\t').count(),
            });
        }
        f[n] = part.trim();
        n += 1;
    }
    // The flags column may be missing entirely on non-TCP lines.
    if n < FIELDS - 1 {
        return Err(ParseError::FieldCount {
            expected: FIELDS,
            found: n,
        });
    }
    let time =
        parse_time(f[0]).ok_or_else(|| ParseError::Timestamp(f[0].chars().take(40).collect()))?;
    let host = (!f[1].is_empty()).then_some(f[1]);
    let count: u32 = f[2]
        .parse()
        .map_err(|_| ParseError::invalid("count", f[2]))?;
    if count == 0 || count > scanwatch_event::MAX_COUNT {
        return Err(ParseError::invalid("count", f[2]));
    }
    let src = f[3]
        .parse()
        .map_err(|_| ParseError::invalid("source ip", f[3]))?;
    let dst = f[5]
        .parse()
        .map_err(|_| ParseError::invalid("target ip", f[5]))?;
    let proto = Protocol::parse(f[7]).ok_or_else(|| ParseError::invalid("protocol", f[7]))?;
    let port =
        |name: &'static str, v: &str| v.parse::<u16>().map_err(|_| ParseError::invalid(name, v));
    let (src_port, dst_port, icmp_type) = if proto.has_ports() {
        (
            Some(port("source port", f[4])?),
            Some(port("target port", f[6])?),
            None,
        )
    } else {
        // The source-port column holds the ICMP type for ICMP, nothing for others.
        let icmp = matches!(proto, Protocol::Icmp | Protocol::Icmpv6);
        (
            None,
            None,
            if icmp { f[4].parse::<u8>().ok() } else { None },
        )
    };
    let (flags, flags_known) = match (proto, f[8]) {
        (Protocol::Tcp, "") => (TcpFlags(0), false),
        (Protocol::Tcp, s) => (
            TcpFlags::parse_letters(s).ok_or_else(|| ParseError::invalid("tcp flags", s))?,
            true,
        ),
        _ => (TcpFlags(0), false),
    };
    let event = Event {
        time,
        proto,
        src,
        dst,
        src_port,
        dst_port,
        flags,
        flags_known,
        icmp_type,
        // DShield logs are blocked inbound attempts by definition.
        direction: Direction::Inbound,
        action: Action::Drop,
        count,
    };
    Ok(LineOutcome::Event { event, host })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> LineOutcome<'_> {
        DshieldParser.parse_line(line)
    }

    #[test]
    fn parses_lines() {
        let LineOutcome::Event { event, host } =
            p("2026-11-26 10:40:12 -0500\t42\t3\t192.0.2.1\t4000\t198.51.100.7\t1025\t6\tS")
        else {
            panic!()
        };
        assert_eq!(host, Some("42"));
        assert_eq!(event.count, 3);
        assert_eq!(event.time.to_rfc3339(), "2026-11-26T15:40:12Z");
        assert_eq!(event.scanned_port(), Some((Protocol::Tcp, 1025)));
        let LineOutcome::Event { event, .. } =
            p("2026-11-26 10:40:12 +01:00\t42\t1\t192.0.2.1\t8\t198.51.100.7\t0\t1")
        else {
            panic!()
        };
        assert_eq!(event.proto, Protocol::Icmp);
        assert_eq!(event.icmp_type, Some(8));
        // Other port-less protocols (GRE here) have no ICMP type.
        let LineOutcome::Event { event, .. } =
            p("2026-11-26 10:40:12 +01:00\t42\t1\t192.0.2.1\t8\t198.51.100.7\t0\t47")
        else {
            panic!()
        };
        assert_eq!((event.proto, event.icmp_type), (Protocol::Other(47), None));
        let LineOutcome::Event { event, .. } =
            p("2026-11-26T10:40:12Z\t42\t1\t192.0.2.1\t1\t198.51.100.7\t23\tTCP\t")
        else {
            panic!()
        };
        assert!(!event.flags_known);
        assert!(event.is_unsolicited());
        assert_eq!(p("# header"), LineOutcome::Skip);
    }

    #[test]
    fn fast_and_general_time_agree() {
        for s in [
            "2026-11-26 10:40:12 -0500",
            "2026-11-26 10:40:12 +0130",
            "2024-02-29 23:59:59 +0000",
            "2026-02-30 10:40:12 +0000",
            "2026-11-26 24:40:12 +0000",
            "2026-11-26 10:40:12 +05x0",
        ] {
            let fast = parse_time_fast(s);
            let (dt, zone) = s.rsplit_once(' ').unwrap();
            let general = parse_rfc3339(&format!(
                "{}T{}{}:{}",
                &dt[..10],
                &dt[11..],
                &zone[..3],
                &zone[3..]
            ));
            assert_eq!(fast, general, "{s}");
        }
    }

    #[test]
    fn errors() {
        for (line, want) in [
            (
                "2026-11-26 10:40:12 -0500\t42\t1\t192.0.2.1",
                "expected 9 tab-separated fields, found 4",
            ),
            (
                "yesterday\t42\t1\t192.0.2.1\t1\t192.0.2.2\t1\t6\tS",
                "unreadable timestamp",
            ),
            // Found by fuzzing: a 5-byte zone with a multibyte character was sliced at byte 3.
            (
                "2026-11-26 10:40:12 -0\u{e9}0\t42\t1\t192.0.2.1\t1\t192.0.2.2\t1\t6\tS",
                "unreadable timestamp",
            ),
            (
                "2026-11-26 10:40:12 10\u{fffd}\t42\t1\t192.0.2.1\t1\t192.0.2.2\t1\t6\tS",
                "unreadable timestamp",
            ),
            (
                "2026-11-26 10:40:12 -0500\t42\tx\t192.0.2.1\t1\t192.0.2.2\t1\t6\tS",
                "invalid count",
            ),
            (
                "2026-11-26 10:40:12 -0500\t42\t0\t192.0.2.1\t1\t192.0.2.2\t1\t6\tS",
                "invalid count",
            ),
            (
                "2026-11-26 10:40:12 -0500\t42\t1\t192.0.2.1\t1\t192.0.2.2\t99999\t6\tS",
                "invalid target port",
            ),
            (
                "2026-11-26 10:40:12 -0500\t42\t1\t192.0.2.1\t1\t192.0.2.2\t1\tfoo\tS",
                "invalid protocol",
            ),
            (
                "2026-11-26 10:40:12 -0500\t42\t1\t192.0.2.1\t1\t192.0.2.2\t1\t6\tSZ",
                "invalid tcp flags",
            ),
            (
                "2026-11-26 10:40:12 -0500\t42\t1\t192.0.2.1\t1\t192.0.2.2\t1\t6\tS\textra",
                "expected 9 tab-separated fields, found 10",
            ),
        ] {
            match p(line) {
                LineOutcome::Error(e) => assert!(e.to_string().starts_with(want), "{line}: {e}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
