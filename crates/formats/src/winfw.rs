//! Windows Firewall `pfirewall.log` (W3C extended log format, version 1.5):
//! space-separated columns named by a `#Fields:` header line, `-` for an empty value.
//!
//! The parser keeps the column order of the last `#Fields:` line; lines before any
//! header use the default order `date time action protocol src-ip dst-ip src-port
//! dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path` (newer
//! Windows adds `pid`). Other `#` lines (`#Version:`, `#Software:`) are skipped. A
//! `#Fields:` line without one of the columns the parser needs is an error and leaves
//! the column order as it was.
//!
//! Choices:
//! - Times are written in local time (`#Time Format: Local`) with no zone; they are
//!   taken as UTC.
//! - Direction comes from `path`: `RECEIVE` is inbound, `SEND` outbound. When `path`
//!   is `-` it comes from the action: `OPEN-INBOUND` is inbound, `OPEN` (Windows XP:
//!   a connection this host opened) outbound, anything else unknown.
//! - Actions: `DROP` is drop; `ALLOW`, `OPEN`, `OPEN-INBOUND` accept. `CLOSE` lines
//!   (the end of a connection already logged when it opened) and `INFO-EVENTS-LOST`
//!   lines (no addresses) are skipped.
//! - TCP flags come from the `tcpflags` letters (`S`, `A`, `AP`, `FA`); `-` means the
//!   line does not give them (such a line counts, like a DShield line without flags,
//!   unless it is outbound).

use scanwatch_event::{parse_rfc3339, Action, Direction, Event, Protocol, TcpFlags};

use crate::{FormatSpec, LineOutcome, LineParser, ParseError, ParserOptions};

pub(crate) struct Spec;
pub(crate) static SPEC: Spec = Spec;

impl FormatSpec for Spec {
    fn name(&self) -> &'static str {
        "winfw"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["pfirewall", "windows-firewall"]
    }
    fn description(&self) -> &'static str {
        "Windows Firewall pfirewall.log (W3C, #Fields: header)"
    }
    fn sniff(&self, line: &str) -> bool {
        let mut f = line.split(' ');
        let (Some(d), Some(t), Some(a)) = (f.next(), f.next(), f.next()) else {
            return false;
        };
        let db = d.as_bytes();
        db.len() == 10
            && db[4] == b'-'
            && db[7] == b'-'
            && t.len() == 8
            && t.as_bytes()[2] == b':'
            && matches!(
                a,
                "DROP" | "ALLOW" | "OPEN" | "OPEN-INBOUND" | "CLOSE" | "INFO-EVENTS-LOST"
            )
    }
    fn parser(&self, _opts: &ParserOptions) -> Box<dyn LineParser> {
        Box::new(WinfwParser::default())
    }
}

/// Column positions of the fields the parser reads.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Columns {
    date: usize,
    time: usize,
    action: usize,
    protocol: usize,
    src_ip: usize,
    dst_ip: usize,
    src_port: usize,
    dst_port: usize,
    tcpflags: Option<usize>,
    icmptype: Option<usize>,
    path: Option<usize>,
}

impl Default for Columns {
    /// The default v1.5 order.
    fn default() -> Columns {
        Columns {
            date: 0,
            time: 1,
            action: 2,
            protocol: 3,
            src_ip: 4,
            dst_ip: 5,
            src_port: 6,
            dst_port: 7,
            tcpflags: Some(9),
            icmptype: Some(13),
            path: Some(16),
        }
    }
}

impl Columns {
    fn from_header(names: &str) -> Result<Columns, ParseError> {
        let names: Vec<&str> = names.split_whitespace().collect();
        let find = |n: &str| names.iter().position(|x| x.eq_ignore_ascii_case(n));
        let need = |n: &'static str| find(n).ok_or(ParseError::MissingField(n));
        Ok(Columns {
            date: need("date")?,
            time: need("time")?,
            action: need("action")?,
            protocol: need("protocol")?,
            src_ip: need("src-ip")?,
            dst_ip: need("dst-ip")?,
            src_port: need("src-port")?,
            dst_port: need("dst-port")?,
            tcpflags: find("tcpflags"),
            icmptype: find("icmptype"),
            path: find("path"),
        })
    }
}

#[derive(Debug, Default)]
pub struct WinfwParser {
    cols: Columns,
}

impl LineParser for WinfwParser {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        let t = line.trim_end_matches(['\r', '\n']).trim();
        if t.is_empty() {
            return LineOutcome::Skip;
        }
        if let Some(h) = t.strip_prefix('#') {
            if let Some(names) = h.strip_prefix("Fields:") {
                match Columns::from_header(names) {
                    Ok(c) => self.cols = c,
                    Err(e) => return LineOutcome::Error(e),
                }
            }
            return LineOutcome::Skip;
        }
        match parse(t, &self.cols) {
            Ok(o) => o,
            Err(e) => LineOutcome::Error(e),
        }
    }
}

fn parse<'l>(line: &'l str, c: &Columns) -> Result<LineOutcome<'l>, ParseError> {
    // At most 32 columns are looked at; `-` is an empty value.
    let mut f = [""; 32];
    let mut n = 0;
    for part in line.split(' ').filter(|s| !s.is_empty()).take(32) {
        f[n] = part;
        n += 1;
    }
    let get = |i: usize, name: &'static str| -> Result<&str, ParseError> {
        match f.get(i).copied() {
            Some(v) if i < n && v != "-" => Ok(v),
            _ => Err(ParseError::MissingField(name)),
        }
    };
    let opt = |i: Option<usize>| {
        i.and_then(|i| f.get(i).copied())
            .filter(|v| !v.is_empty() && *v != "-")
    };
    let (action, implied) = match get(c.action, "action")? {
        "DROP" => (Action::Drop, Direction::Unknown),
        "ALLOW" => (Action::Accept, Direction::Unknown),
        "OPEN" => (Action::Accept, Direction::Outbound),
        "OPEN-INBOUND" => (Action::Accept, Direction::Inbound),
        "CLOSE" | "INFO-EVENTS-LOST" => return Ok(LineOutcome::Skip),
        other => return Err(ParseError::invalid("action", other)),
    };
    let date = get(c.date, "date")?;
    let time = get(c.time, "time")?;
    let stamp = format!("{date}T{time}Z");
    let time = parse_rfc3339(&stamp)
        .filter(|_| date.len() == 10)
        .ok_or_else(|| ParseError::Timestamp(stamp.chars().take(40).collect()))?;
    let p = get(c.protocol, "protocol")?;
    let proto = Protocol::parse(p).ok_or_else(|| ParseError::invalid("protocol", p))?;
    let ip = |i: usize, name: &'static str| -> Result<std::net::IpAddr, ParseError> {
        let v = get(i, name)?;
        v.parse().map_err(|_| ParseError::invalid(name, v))
    };
    let src = ip(c.src_ip, "src-ip")?;
    let dst = ip(c.dst_ip, "dst-ip")?;
    let port = |i: usize, name: &'static str| -> Result<u16, ParseError> {
        let v = get(i, name)?;
        v.parse().map_err(|_| ParseError::invalid(name, v))
    };
    let (src_port, dst_port) = if proto.has_ports() {
        (
            Some(port(c.src_port, "src-port")?),
            Some(port(c.dst_port, "dst-port")?),
        )
    } else {
        (None, None)
    };
    let (flags, flags_known) = match (proto, opt(c.tcpflags)) {
        (Protocol::Tcp, Some(v)) => (
            TcpFlags::parse_letters(v).ok_or_else(|| ParseError::invalid("tcpflags", v))?,
            true,
        ),
        _ => (TcpFlags(0), false),
    };
    let icmp_type = match (proto, opt(c.icmptype)) {
        (Protocol::Icmp | Protocol::Icmpv6, Some(v)) => Some(
            v.parse::<u8>()
                .map_err(|_| ParseError::invalid("icmptype", v))?,
        ),
        _ => None,
    };
    let direction = match opt(c.path) {
        Some("RECEIVE") => Direction::Inbound,
        Some("SEND") => Direction::Outbound,
        _ => implied,
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
        direction,
        action,
        count: 1,
    };
    Ok(LineOutcome::Event { event, host: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(p: &mut WinfwParser, line: &str) -> Event {
        match p.parse_line(line) {
            LineOutcome::Event { event, host } => {
                assert_eq!(host, None);
                event
            }
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn default_order_events() {
        // (line, proto, dport, flags, known, icmp, direction, action, counts)
        for (line, proto, dport, flags, known, icmp, dir, action, counts) in [
            (
                "2005-04-11 08:05:57 DROP UDP 123.45.78.90 123.156.78.255 137 137 78 - - - - - - - RECEIVE",
                Protocol::Udp, Some(137), "", false, None, Direction::Inbound, Action::Drop, true,
            ),
            (
                "2005-04-11 08:06:26 DROP TCP 123.45.78.90 123.156.78.90 80 1774 576 A 1 2 3 - - - RECEIVE",
                Protocol::Tcp, Some(1774), "A", true, None, Direction::Inbound, Action::Drop, false,
            ),
            (
                "2019-01-02 03:04:05 DROP TCP 192.0.2.1 192.0.2.2 4000 22 52 S 1 0 8192 - - - RECEIVE 4",
                Protocol::Tcp, Some(22), "S", true, None, Direction::Inbound, Action::Drop, true,
            ),
            (
                "2019-01-02 03:04:05 ALLOW TCP 192.0.2.2 192.0.2.1 50000 443 0 - - - - - - - SEND 4",
                Protocol::Tcp, Some(443), "", false, None, Direction::Outbound, Action::Accept, false,
            ),
            (
                "2005-04-11 08:08:58 DROP ICMP 123.45.78.90 123.156.78.90 7 7 78 - - - - 8 0 - RECEIVE",
                Protocol::Icmp, None, "", false, Some(8), Direction::Inbound, Action::Drop, false,
            ),
            (
                "2005-04-11 08:09:29 OPEN TCP 123.45.78.90 123.156.78.90 1606 445 - - - - - - - - -",
                Protocol::Tcp, Some(445), "", false, None, Direction::Outbound, Action::Accept, false,
            ),
            (
                "2005-04-11 08:09:29 OPEN-INBOUND UDP 2001:db8::1 2001:db8::2 1606 161 - - - - - - - - -\r",
                Protocol::Udp, Some(161), "", false, None, Direction::Inbound, Action::Accept, true,
            ),
        ] {
            let mut p = WinfwParser::default();
            let e = ev(&mut p, line);
            assert_eq!(e.proto, proto, "{line}");
            assert_eq!(e.dst_port, dport, "{line}");
            assert_eq!(e.flags.letters(), flags, "{line}");
            assert_eq!(e.flags_known, known, "{line}");
            assert_eq!(e.icmp_type, icmp, "{line}");
            assert_eq!((e.direction, e.action), (dir, action), "{line}");
            assert_eq!(e.is_unsolicited(), counts, "{line}");
        }
        let e = ev(
            &mut WinfwParser::default(),
            "2005-04-11 08:05:57 DROP UDP 1.2.3.4 5.6.7.8 1 2 78 - - - - - - - RECEIVE",
        );
        assert_eq!(e.time.to_rfc3339(), "2005-04-11T08:05:57Z");
    }

    #[test]
    fn header_sets_column_order() {
        let mut p = WinfwParser::default();
        assert_eq!(p.parse_line("#Version: 1.5"), LineOutcome::Skip);
        assert_eq!(
            p.parse_line("#Fields: time date path action protocol dst-ip src-ip dst-port src-port"),
            LineOutcome::Skip
        );
        let e = ev(
            &mut p,
            "08:05:57 2005-04-11 SEND DROP UDP 192.0.2.2 192.0.2.1 53 5353",
        );
        assert_eq!(e.src.to_string(), "192.0.2.1");
        assert_eq!((e.src_port, e.dst_port), (Some(5353), Some(53)));
        assert_eq!(e.direction, Direction::Outbound);
        // A bad header leaves the order as it was.
        assert!(matches!(
            p.parse_line("#Fields: date time action"),
            LineOutcome::Error(ParseError::MissingField("protocol"))
        ));
        let e = ev(
            &mut p,
            "08:05:57 2005-04-11 RECEIVE DROP UDP 192.0.2.2 192.0.2.1 53 5353",
        );
        assert_eq!(e.direction, Direction::Inbound);
    }

    #[test]
    fn skips() {
        let mut p = WinfwParser::default();
        for line in [
            "",
            "  ",
            "#Software: Microsoft Windows Firewall",
            "2005-04-11 08:06:02 CLOSE UDP 123.45.78.90 123.156.78.90 1027 53 - - - - - - - - -",
            "2005-04-11 08:52:26 INFO-EVENTS-LOST - - - - - - - - - - - - 59 -",
        ] {
            assert_eq!(p.parse_line(line), LineOutcome::Skip, "{line:?}");
        }
    }

    #[test]
    fn errors() {
        for (line, want) in [
            ("2005-04-11", "missing field action"),
            ("2005-04-11 08:05:57 EXPLODE UDP", "invalid action"),
            ("2005-04-11 08:05:57 DROP", "missing field protocol"),
            (
                "2005-04-11 08:05:57 DROP - 1.2.3.4",
                "missing field protocol",
            ),
            ("2005-04-11 08:05:57 DROP FOO 1.2.3.4", "invalid protocol"),
            (
                "2005-13-11 08:05:57 DROP UDP 1.2.3.4 5.6.7.8 1 2",
                "unreadable timestamp",
            ),
            (
                "2005-04-11 8:05:57 DROP UDP 1.2.3.4 5.6.7.8 1 2",
                "unreadable timestamp",
            ),
            (
                "05-04-11 08:05:57 DROP UDP 1.2.3.4 5.6.7.8 1 2",
                "unreadable timestamp",
            ),
            (
                "2005-04-11 08:05:57 DROP UDP 1.2.3 5.6.7.8 1 2",
                "invalid src-ip",
            ),
            (
                "2005-04-11 08:05:57 DROP UDP 1.2.3.4 - 1 2",
                "missing field dst-ip",
            ),
            (
                "2005-04-11 08:05:57 DROP UDP 1.2.3.4 5.6.7.8 1",
                "missing field dst-port",
            ),
            (
                "2005-04-11 08:05:57 DROP UDP 1.2.3.4 5.6.7.8 x 2",
                "invalid src-port",
            ),
            (
                "2005-04-11 08:05:57 DROP TCP 1.2.3.4 5.6.7.8 1 2 40 SQ",
                "invalid tcpflags",
            ),
            (
                "2005-04-11 08:05:57 DROP ICMP 1.2.3.4 5.6.7.8 - - 40 - - - - 300 0",
                "invalid icmptype",
            ),
        ] {
            match WinfwParser::default().parse_line(line) {
                LineOutcome::Error(e) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with(want), "{line}: {msg}");
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
