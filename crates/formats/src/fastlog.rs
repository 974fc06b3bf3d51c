//! Snort and Suricata `fast.log` alerts (Snort's `alert_fast`): one line an alert,
//!
//! ```text
//! 07/11/2022-10:29:01.860293  [**] [1:2200074:2] SURICATA TCPv4 invalid checksum [**] [Classification: Generic Protocol Command Decode] [Priority: 3] {TCP} 2.57.122.209:28487 -> 172.31.18.55:80
//! ```
//!
//! - Time: Suricata writes `mm/dd/yyyy-hh:mm:ss.uuuuuu`, Snort `mm/dd-hh:mm:ss.uuuuuu`
//!   (no year: the syslog year rule gives it one) or, with `-y`, `mm/dd/yy-…`. Both
//!   write local time without a zone: it is read as UTC.
//! - Suricata in IPS mode puts `[Drop]` (dropped) or `[wDrop]` (would drop) before the
//!   first `[**]`: `[Drop]` is the drop action; otherwise the action is unknown.
//! - The message, classification and priority are not read; the protocol is the last
//!   `{…}` (`TCP`, `UDP`, `ICMP`, `IPV6-ICMP`, other names, or Suricata's `PROTO:047`).
//! - Addresses: `ip:port -> ip:port`; IPv6 addresses are written uncompressed (eight
//!   groups), so the port is what follows the last `:`. TCP and UDP need ports.
//!   Suricata writes ICMP type and code in the port places; the type is kept. Snort
//!   writes ICMP addresses without ports.
//!
//! Like Suricata EVE alerts, an alert is taken as **inbound** with **unknown** TCP
//! flags: a TCP or UDP alert counts as an unsolicited attempt on its destination
//! port. Lines without `[**]` are skipped.

use std::net::IpAddr;

use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};

use crate::syslog::{parse_clock, YearResolver};
use crate::{FormatSpec, LineOutcome, LineParser, ParseError, ParserOptions};

pub(crate) struct Spec;
pub(crate) static SPEC: Spec = Spec;

impl FormatSpec for Spec {
    fn name(&self) -> &'static str {
        "fastlog"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["fast", "fast.log", "suricata-fast", "snort", "snort-fast"]
    }
    fn description(&self) -> &'static str {
        "Snort/Suricata fast.log alerts"
    }
    fn sniff(&self, line: &str) -> bool {
        let Some((stamp, rest)) = line.split_once(' ') else {
            return false;
        };
        split_stamp(stamp).is_some() && rest.contains("[**]") && rest.contains(" -> ")
    }
    fn parser(&self, opts: &ParserOptions) -> Box<dyn LineParser> {
        Box::new(FastlogParser {
            years: YearResolver::new(opts.reference_time),
        })
    }
}

#[derive(Debug)]
pub struct FastlogParser {
    years: YearResolver,
}

impl LineParser for FastlogParser {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        let t = line.trim_end_matches(['\r', '\n']);
        if t.trim().is_empty() || !t.contains("[**]") {
            return LineOutcome::Skip;
        }
        match self.parse(t) {
            Ok(event) => LineOutcome::Event { event, host: None },
            Err(e) => LineOutcome::Error(e),
        }
    }
}

/// Date numbers of `mm/dd[/yy[yy]]-` and the clock after the `-`.
struct Stamp<'a> {
    date: [u32; 3],
    /// 0 without a year, else the digits of the year (2 or 4).
    year_digits: usize,
    clock: &'a str,
}

/// Splits `07/11/2022-10:29:01.860293` into its date numbers and clock.
fn split_stamp(s: &str) -> Option<Stamp<'_>> {
    let (date, clock) = s.split_once('-')?;
    let mut date_parts = [0u32; 3];
    let mut n = 0;
    let mut year_digits = 0;
    for (i, part) in date.split('/').enumerate() {
        if i >= 3 || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let want = if i == 2 { [2, 4] } else { [2, 2] };
        if !want.contains(&part.len()) {
            return None;
        }
        if i == 2 {
            year_digits = part.len();
        }
        date_parts[i] = part.parse().ok()?;
        n += 1;
    }
    if n < 2 {
        return None;
    }
    let c = clock.as_bytes();
    (c.len() >= 8 && c[2] == b':' && c[5] == b':').then_some(Stamp {
        date: date_parts,
        year_digits,
        clock,
    })
}

impl FastlogParser {
    fn time(&mut self, stamp: &str) -> Result<Timestamp, ParseError> {
        let bad = || ParseError::timestamp(stamp);
        let s = split_stamp(stamp).ok_or_else(bad)?;
        let (h, m, sec, ms, used) = parse_clock(s.clock.as_bytes()).ok_or_else(bad)?;
        if used != s.clock.len() {
            return Err(bad());
        }
        let [month, day, y] = s.date;
        let t = match s.year_digits {
            0 => self.years.resolve(month, day, h, m, sec, ms),
            2 => Timestamp::from_civil(
                2000 + i32::try_from(y).map_err(|_| bad())?,
                month,
                day,
                h,
                m,
                sec,
                ms,
            ),
            _ => Timestamp::from_civil(
                i32::try_from(y).map_err(|_| bad())?,
                month,
                day,
                h,
                m,
                sec,
                ms,
            ),
        };
        t.ok_or_else(bad)
    }

    fn parse(&mut self, line: &str) -> Result<Event, ParseError> {
        let (stamp, rest) = line.split_once(' ').unwrap_or((line, ""));
        let time = self.time(stamp)?;
        let head = rest.split("[**]").next().unwrap_or("");
        let action = match head.trim() {
            "[Drop]" => Action::Drop,
            _ => Action::Unknown,
        };
        let open = rest
            .rfind('{')
            .ok_or(ParseError::MissingField("protocol"))?;
        let (name, addrs) = rest[open + 1..]
            .split_once('}')
            .ok_or(ParseError::MissingField("protocol"))?;
        let proto = protocol(name).ok_or_else(|| ParseError::invalid("protocol", name))?;
        let (src, dst) = addrs
            .trim()
            .split_once(" -> ")
            .ok_or(ParseError::MissingField("destination"))?;
        let (src, src_port) = endpoint("source", src.trim(), proto)?;
        let (dst, dst_port) = endpoint("destination", dst.trim(), proto)?;
        let (src_port, dst_port, icmp_type) = if proto.has_ports() {
            (src_port, dst_port, None)
        } else if matches!(proto, Protocol::Icmp | Protocol::Icmpv6) {
            (None, None, src_port.and_then(|t| u8::try_from(t).ok()))
        } else {
            (None, None, None)
        };
        let proto = match proto {
            Protocol::Icmp if dst.is_ipv6() => Protocol::Icmpv6,
            p => p,
        };
        Ok(Event {
            time,
            proto,
            src,
            dst,
            src_port,
            dst_port,
            flags: TcpFlags(0),
            flags_known: false,
            icmp_type,
            direction: Direction::Inbound,
            action,
            count: 1,
        })
    }
}

/// The protocol in `{…}`: a name from `/etc/protocols` or Suricata's `PROTO:047`.
fn protocol(name: &str) -> Option<Protocol> {
    if let Some(n) = name.strip_prefix("PROTO:") {
        return n.parse::<u8>().ok().map(Protocol::from_number);
    }
    if name.is_empty() {
        return None;
    }
    Protocol::parse(name).or_else(|| {
        const MORE: [(&str, u8); 6] = [
            ("ipv6", 41),
            ("ipip", 4),
            ("ipencap", 4),
            ("pim", 103),
            ("vrrp", 112),
            ("ospf", 89),
        ];
        MORE.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, n)| Protocol::Other(*n))
    })
}

/// `ip:port`, or a bare address for protocols without ports (ICMP from Snort).
fn endpoint(
    field: &'static str,
    s: &str,
    proto: Protocol,
) -> Result<(IpAddr, Option<u16>), ParseError> {
    if !proto.has_ports() {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok((ip, None));
        }
    }
    let (ip, port) = s
        .rsplit_once(':')
        .ok_or_else(|| ParseError::invalid(field, s))?;
    let ip = ip.parse().map_err(|_| ParseError::invalid(field, s))?;
    let port = port.parse().map_err(|_| ParseError::invalid(field, s))?;
    Ok((ip, Some(port)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_event::parse_rfc3339;

    fn parser() -> FastlogParser {
        FastlogParser {
            years: YearResolver::new(parse_rfc3339("2026-11-26T00:00:00Z").unwrap()),
        }
    }

    fn ev(line: &str) -> Event {
        match parser().parse_line(line) {
            LineOutcome::Event { event, host: None } => event,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn events() {
        // (line, time, proto, src, src port, dst, dst port, icmp type, action)
        type Case<'a> = (
            &'a str,
            &'a str,
            Protocol,
            &'a str,
            Option<u16>,
            &'a str,
            Option<u16>,
            Option<u8>,
            Action,
        );
        let cases: [Case<'_>; 6] = [
            // Suricata (CrowdSec hub fixture line 2).
            (
                "07/11/2022-10:29:32.251216  [**] [1:2008578:4] ET SCAN Sipvicious Scan [**] [Classification: Attempted Information Leak] [Priority: 2] {UDP} 89.248.163.216:5116 -> 172.31.18.55:5060",
                "2022-07-11T10:29:32.251Z", Protocol::Udp, "89.248.163.216", Some(5116), "172.31.18.55", Some(5060), None, Action::Unknown,
            ),
            // Suricata IPS drop; ICMP type and code in the port places; IPv6 uncompressed.
            (
                "11/26/2026-10:00:00.000001  [Drop] [**] [1:2100366:8] GPL ICMP_INFO PING *NIX [**] [Classification: Misc activity] [Priority: 3] {IPV6-ICMP} 2001:0db8:0000:0000:0000:0000:0000:0001:128 -> 2001:0db8:0000:0000:0000:0000:0000:0002:0",
                "2026-11-26T10:00:00Z", Protocol::Icmpv6, "2001:db8::1", None, "2001:db8::2", None, Some(128), Action::Drop,
            ),
            (
                "11/26/2026-10:00:00.5  [wDrop] [**] [1:1:1] x [**] [Classification: y] [Priority: 3] {PROTO:047} 192.0.2.1:0 -> 198.51.100.7:0",
                "2026-11-26T10:00:00.500Z", Protocol::Other(47), "192.0.2.1", None, "198.51.100.7", None, None, Action::Unknown,
            ),
            // Snort 3 (plaso fixture): no year, quoted message, IPv6 with a port.
            (
                "02/04-23:41:31.115933 [**] [1:20035:1000] \"MALWARE-CNC outbound connection\" [**] [Classification: Attempted Information Leak] [Priority: 1] {TCP} 2001:df1:c200:c:0:0:0:35:60884 -> 2001:4860:4860:0:0:0:0:8888:80",
                "2026-02-04T23:41:31.115Z", Protocol::Tcp, "2001:df1:c200:c::35", Some(60884), "2001:4860:4860::8888", Some(80), None, Action::Unknown,
            ),
            // Snort 3 ICMP without ports and without a classification.
            (
                "12/28-12:55:38.765402 [**] [1:366:11] \"PROTOCOL-ICMP PING Unix\" [**] [Priority: 3] {ICMP} 2001:df1:c200:c:0:0:0:35 -> 2001:4860:4860:0:0:0:0:8888",
                "2025-12-28T12:55:38.765Z", Protocol::Icmpv6, "2001:df1:c200:c::35", None, "2001:4860:4860::8888", None, None, Action::Unknown,
            ),
            // Snort 2 with -y: mm/dd/yy; a `{` in the message does not confuse it.
            (
                "11/26/26-10:40:12.000000  [**] [1:1000001:1] odd {msg} [**] [Priority: 2] {TCP} 192.0.2.1:4444 -> 198.51.100.7:1025",
                "2026-11-26T10:40:12Z", Protocol::Tcp, "192.0.2.1", Some(4444), "198.51.100.7", Some(1025), None, Action::Unknown,
            ),
        ];
        for (line, time, proto, src, sp, dst, dp, icmp, action) in cases {
            let e = ev(line);
            assert_eq!(e.time.to_rfc3339(), time, "{line}");
            assert_eq!(e.proto, proto, "{line}");
            assert_eq!(
                (e.src.to_string().as_str(), e.src_port),
                (src, sp),
                "{line}"
            );
            assert_eq!(
                (e.dst.to_string().as_str(), e.dst_port),
                (dst, dp),
                "{line}"
            );
            assert_eq!(e.icmp_type, icmp, "{line}");
            assert_eq!(
                (e.direction, e.action),
                (Direction::Inbound, action),
                "{line}"
            );
            assert!(!e.flags_known, "{line}");
            assert_eq!(e.is_unsolicited(), proto.has_ports(), "{line}");
        }
    }

    #[test]
    fn skips() {
        for line in ["", "  ", "some header line", "\r"] {
            assert_eq!(parser().parse_line(line), LineOutcome::Skip, "{line:?}");
        }
    }

    #[test]
    fn errors() {
        let rest = "[**] [1:1:1] m [**] [Priority: 1] {TCP} 192.0.2.1:1 -> 192.0.2.2:2";
        for (line, want) in [
            (
                format!("13/11/2022-10:29:01.860293  {rest}"),
                "unreadable timestamp",
            ),
            (
                format!("21/12/28-12:55:38.765402 {rest}"),
                "unreadable timestamp",
            ),
            (format!("07/11/2022-10:29  {rest}"), "unreadable timestamp"),
            (
                format!("07/11/2022-10:29:01.x  {rest}"),
                "unreadable timestamp",
            ),
            (format!("07/11/2022 {rest}"), "unreadable timestamp"),
            (format!("02/30-10:29:01.1 {rest}"), "unreadable timestamp"),
            (
                "07/11/2022-10:29:01.1 [**] x [**] TCP 1.2.3.4:1 -> 1.2.3.5:2".to_string(),
                "missing field protocol",
            ),
            (
                "07/11/2022-10:29:01.1 [**] x [**] {TCP 1.2.3.4:1 -> 1.2.3.5:2".to_string(),
                "missing field protocol",
            ),
            (
                rest.replace("TCP", "FOO")
                    .replace("[**] [1", "07/11/2022-10:29:01.1 [**] [1"),
                "invalid protocol",
            ),
            (
                rest.replace("TCP", "PROTO:999")
                    .replace("[**] [1", "07/11/2022-10:29:01.1 [**] [1"),
                "invalid protocol",
            ),
            (
                "07/11/2022-10:29:01.1 [**] x [**] {TCP} 1.2.3.4:1".to_string(),
                "missing field destination",
            ),
            (
                "07/11/2022-10:29:01.1 [**] x [**] {TCP} 1.2.3.4 -> 1.2.3.5:2".to_string(),
                "invalid source",
            ),
            (
                "07/11/2022-10:29:01.1 [**] x [**] {UDP} 1.2.3.4:1 -> 1.2.3.5:99999".to_string(),
                "invalid destination",
            ),
            (
                "07/11/2022-10:29:01.1 [**] x [**] {ICMP} 1.2.3 -> 1.2.3.5".to_string(),
                "invalid source",
            ),
        ] {
            match parser().parse_line(&line) {
                LineOutcome::Error(e) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with(want), "{line}: {msg}");
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
