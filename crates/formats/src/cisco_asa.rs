//! Cisco ASA and Firepower Threat Defense (FTD) syslog: the deny and access-list
//! messages, with the texts of Cisco's syslog message guide:
//!
//! | id | text |
//! |---|---|
//! | 106001 | `Inbound TCP connection denied from IP/port to IP/port flags tcp_flags on interface name` |
//! | 106006 | `Deny inbound UDP from IP/port to IP/port on interface name` |
//! | 106015 | `Deny TCP (no connection) from IP/port to IP/port flags tcp_flags on interface name` |
//! | 106023 | `Deny protocol src iface:IP[/port][(user)] dst iface:IP[/port][(user)] [(type N, code N)] by access-group "acl" [h1, h2]` |
//! | 106100 | `access-list acl {permitted\|denied\|est-allowed} protocol iface/IP(port) -> iface/IP(port) hit-cnt N …` |
//!
//! The message follows `%ASA-<severity>-<id>: ` (`%FTD-` and `%PIX-` alike). Lines
//! of other message ids and of other programs are skipped.
//!
//! Header: the ASA's own timestamp `Mmm dd yyyy hh:mm:ss` (with a year; `logging
//! timestamp`), optionally preceded by `<pri>` and followed by the device id, or a
//! syslog header (RFC 3164 with the year rule, ISO 8601 / RFC 5424) from the relaying
//! syslog server; when both are there, the ASA's own time wins. The device id or the
//! syslog host names the sensor. Times without a zone are UTC. A line without any
//! timestamp is an error.
//!
//! Events:
//! - 106001: TCP, inbound, drop, flags from the flag words (`SYN`, `ACK`, `FIN`,
//!   `RST`, `PSH`, `URG`): a bare SYN counts.
//! - 106006: UDP, inbound, drop: counts.
//! - 106015: TCP without a connection (a stray ACK, RST or FIN), drop, flags from the
//!   words, direction unknown: counts only if the flags are a bare SYN.
//! - 106023: an access-group deny, drop, direction unknown; TCP flags are unknown (the
//!   ASA checks access lists only for new connections), so TCP and UDP count.
//! - 106100: `permitted` is accept and `denied` drop, flags unknown as for 106023.
//!   `est-allowed` lines (a packet of an established connection that the list would
//!   deny) are skipped: they are not attempts.
//! - ICMP: the type from 106023's `(type N, code N)`.

use std::net::IpAddr;

use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};

use crate::syslog::{month_number, parse_clock, parse_header, YearResolver};
use crate::{FormatSpec, LineOutcome, LineParser, ParseError, ParserOptions};

pub(crate) struct Spec;
pub(crate) static SPEC: Spec = Spec;

impl FormatSpec for Spec {
    fn name(&self) -> &'static str {
        "cisco-asa"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["asa", "ftd", "cisco-ftd"]
    }
    fn description(&self) -> &'static str {
        "Cisco ASA/FTD syslog deny messages (106001, 106006, 106015, 106023, 106100)"
    }
    fn sniff(&self, line: &str) -> bool {
        find_tag(line).is_some()
    }
    fn parser(&self, opts: &ParserOptions) -> Box<dyn LineParser> {
        Box::new(CiscoAsaParser {
            years: YearResolver::new(opts.reference_time),
        })
    }
}

#[derive(Debug)]
pub struct CiscoAsaParser {
    years: YearResolver,
}

/// `%ASA-4-106023: ` in a line: (byte offset of `%`, message id, message).
fn find_tag(line: &str) -> Option<(usize, &str, &str)> {
    let b = line.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'%', &b[from..]).map(|i| i + from) {
        from = i + 1;
        let rest = &line[i + 1..];
        let Some(after) = ["ASA-", "FTD-", "PIX-"]
            .iter()
            .find_map(|v| rest.strip_prefix(v))
        else {
            continue;
        };
        let Some((sev, after)) = after.split_once('-') else {
            continue;
        };
        let Some((id, msg)) = after.split_once(':') else {
            continue;
        };
        if sev.len() == 1
            && sev.as_bytes()[0].is_ascii_digit()
            && id.len() == 6
            && id.bytes().all(|c| c.is_ascii_digit())
        {
            return Some((i, id, msg.strip_prefix(' ').unwrap_or(msg)));
        }
    }
    None
}

impl LineParser for CiscoAsaParser {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        let t = line.trim_end_matches(['\r', '\n']);
        let Some((at, id, msg)) = find_tag(t) else {
            return LineOutcome::Skip;
        };
        if !matches!(id, "106001" | "106006" | "106015" | "106023" | "106100") {
            return LineOutcome::Skip;
        }
        // A packet of an established connection that the list would deny: not an
        // attempt (and for UDP nothing else would say so).
        if id == "106100" && msg.split(' ').nth(2) == Some("est-allowed") {
            return LineOutcome::Skip;
        }
        let result = self.header(&t[..at]).and_then(|(time, host)| {
            let event = message(id, msg.trim_end(), time)?;
            Ok(LineOutcome::Event { event, host })
        });
        match result {
            Ok(o) => o,
            Err(e) => LineOutcome::Error(e),
        }
    }
}

/// The ASA's own `Mmm dd yyyy hh:mm:ss[.fff]` timestamp at the start of `s`, and what
/// follows it. `None` when `s` does not start like that.
fn asa_time(s: &str) -> Option<Result<(Timestamp, &str), ParseError>> {
    let mut it = s.split_ascii_whitespace();
    let (mon, day, year, clock) = (it.next()?, it.next()?, it.next()?, it.next()?);
    if mon.len() != 3 || year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let month = month_number(mon.as_bytes())?;
    // The tokens are slices of `s`: where the clock ends in `s`.
    let end = (clock.as_ptr() as usize - s.as_ptr() as usize) + clock.len();
    let time = (|| {
        let day: u32 = day.parse().ok()?;
        let year: i32 = year.parse().ok()?;
        let clock = clock.trim_end_matches(':');
        let (h, m, sec, ms, used) = parse_clock(clock.as_bytes())?;
        if used != clock.len() {
            return None;
        }
        Timestamp::from_civil(year, month, day, h, m, sec, ms)
    })();
    Some(
        time.map(|t| (t, &s[end..]))
            .ok_or_else(|| ParseError::timestamp(&s[..end])),
    )
}

/// The first token of `rest` as a device id: not a zone name, not a lone `:`.
fn device_id(rest: &str) -> Option<&str> {
    let tok = rest.split_ascii_whitespace().next()?;
    let tok = tok.trim_end_matches(':');
    (!tok.is_empty() && !matches!(tok, "UTC" | "GMT" | "-")).then_some(tok)
}

impl CiscoAsaParser {
    fn header<'l>(&mut self, prefix: &'l str) -> Result<(Timestamp, Option<&'l str>), ParseError> {
        let mut p = prefix.trim();
        // `<166>` priority (forwarded or RFC 5424 lines keep it for parse_header).
        if let Some(r) = p.strip_prefix('<') {
            if let Some((pri, rest)) = r.split_once('>') {
                if pri.len() <= 3
                    && pri.bytes().all(|b| b.is_ascii_digit())
                    && !rest.starts_with("1 ")
                {
                    p = rest;
                }
            }
        }
        if p.is_empty() || p == ":" {
            return Err(ParseError::MissingField("timestamp"));
        }
        if let Some(r) = asa_time(p) {
            let (t, rest) = r?;
            return Ok((t, device_id(rest)));
        }
        let Some(h) = parse_header(p, &mut self.years)? else {
            return Err(ParseError::timestamp(p));
        };
        // A relaying syslog server's header, then perhaps the ASA's own timestamp.
        let host = h
            .host
            .map(|x| x.trim_end_matches(':'))
            .filter(|x| !x.is_empty());
        match asa_time(h.rest.trim()) {
            Some(r) => Ok((r?.0, host)),
            None => Ok((h.time, host)),
        }
    }
}

/// `1.2.3.4/80` or `2001:db8::1/80`.
fn ip_slash_port(field: &'static str, s: &str) -> Result<(IpAddr, u16), ParseError> {
    let (ip, port) = s
        .rsplit_once('/')
        .ok_or_else(|| ParseError::invalid(field, s))?;
    let ip = ip.parse().map_err(|_| ParseError::invalid(field, s))?;
    let port = port.parse().map_err(|_| ParseError::invalid(field, s))?;
    Ok((ip, port))
}

/// TCP flag words (`SYN ACK`); unknown words are ignored.
fn flag_words(s: &str) -> TcpFlags {
    let mut f = TcpFlags(0);
    for w in s.split_ascii_whitespace() {
        f.set_word(w);
    }
    f
}

/// A protocol as ASA writes it (`tcp`, `udp`, `icmp`, `icmp6`, `gre`, a number).
fn protocol(s: &str) -> Result<Protocol, ParseError> {
    if s.eq_ignore_ascii_case("icmp6") {
        return Ok(Protocol::Icmpv6);
    }
    Protocol::parse(s).ok_or_else(|| ParseError::invalid("protocol", s))
}

struct Parsed {
    proto: Protocol,
    src: IpAddr,
    dst: IpAddr,
    ports: Option<(u16, u16)>,
    flags: Option<TcpFlags>,
    icmp_type: Option<u8>,
    direction: Direction,
    action: Action,
}

fn message(id: &str, msg: &str, time: Timestamp) -> Result<Event, ParseError> {
    let p = match id {
        "106001" => from_to(
            msg.strip_prefix("Inbound TCP connection denied from ")
                .ok_or_else(|| ParseError::invalid("message", msg))?,
            Protocol::Tcp,
            Direction::Inbound,
        )?,
        "106006" => from_to(
            msg.strip_prefix("Deny inbound UDP from ")
                .ok_or_else(|| ParseError::invalid("message", msg))?,
            Protocol::Udp,
            Direction::Inbound,
        )?,
        "106015" => from_to(
            msg.strip_prefix("Deny TCP (no connection) from ")
                .ok_or_else(|| ParseError::invalid("message", msg))?,
            Protocol::Tcp,
            Direction::Unknown,
        )?,
        "106023" => access_group(msg)?,
        _ => access_list(msg)?,
    };
    let proto = match p.proto {
        Protocol::Icmp if p.src.is_ipv6() => Protocol::Icmpv6,
        other => other,
    };
    let (src_port, dst_port) = if proto.has_ports() {
        let (s, d) = p.ports.ok_or(ParseError::MissingField("port"))?;
        (Some(s), Some(d))
    } else {
        (None, None)
    };
    let (flags, flags_known) = match (proto, p.flags) {
        (Protocol::Tcp, Some(f)) => (f, true),
        _ => (TcpFlags(0), false),
    };
    Ok(Event {
        time,
        proto,
        src: p.src,
        dst: p.dst,
        src_port,
        dst_port,
        flags,
        flags_known,
        icmp_type: p
            .icmp_type
            .filter(|_| matches!(proto, Protocol::Icmp | Protocol::Icmpv6)),
        direction: p.direction,
        action: p.action,
        count: 1,
    })
}

/// `A/p to B/p [flags F…] on interface X` (106001, 106006, 106015).
fn from_to(s: &str, proto: Protocol, direction: Direction) -> Result<Parsed, ParseError> {
    let (src, rest) = s.split_once(" to ").ok_or(ParseError::MissingField("to"))?;
    let (dst, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let (src, sp) = ip_slash_port("source", src)?;
    let (dst, dp) = ip_slash_port("destination", dst)?;
    let flags = if proto == Protocol::Tcp {
        let words = rest
            .strip_prefix("flags ")
            .ok_or(ParseError::MissingField("flags"))?;
        let words = words.split(" on interface").next().unwrap_or(words);
        Some(flag_words(words))
    } else {
        None
    };
    Ok(Parsed {
        proto,
        src,
        dst,
        ports: Some((sp, dp)),
        flags,
        icmp_type: None,
        direction,
        action: Action::Drop,
    })
}

/// `iface:IP[/port][(user…)]` of 106023.
fn iface_endpoint(field: &'static str, s: &str) -> Result<(IpAddr, Option<u16>), ParseError> {
    let s = s.trim();
    let addr = s.split('(').next().unwrap_or(s).trim_end();
    let (_iface, addr) = addr
        .split_once(':')
        .ok_or_else(|| ParseError::invalid(field, s))?;
    match addr.split_once('/') {
        Some(_) => ip_slash_port(field, addr).map(|(ip, p)| (ip, Some(p))),
        None => addr
            .parse()
            .map(|ip| (ip, None))
            .map_err(|_| ParseError::invalid(field, s)),
    }
}

/// 106023: `Deny tcp src outside:A/p dst inside:B/p [(type N, code N)] by access-group …`.
fn access_group(msg: &str) -> Result<Parsed, ParseError> {
    let s = msg
        .strip_prefix("Deny ")
        .ok_or_else(|| ParseError::invalid("message", msg))?;
    let s = s.strip_prefix("protocol ").unwrap_or(s);
    let (proto, s) = s.split_once(' ').ok_or(ParseError::MissingField("src"))?;
    let proto = protocol(proto)?;
    let s = s
        .strip_prefix("src ")
        .ok_or(ParseError::MissingField("src"))?;
    let (src, rest) = s
        .split_once(" dst ")
        .ok_or(ParseError::MissingField("dst"))?;
    let dst = rest.split(" by access-group").next().unwrap_or(rest);
    let (dst, icmp) = match dst.find(" (type ") {
        Some(i) => (&dst[..i], Some(&dst[i + 7..])),
        None => (dst, None),
    };
    let (src, sp) = iface_endpoint("source", src)?;
    let (dst, dp) = iface_endpoint("destination", dst)?;
    let icmp_type = icmp.and_then(|t| t.split(',').next()?.trim().parse().ok());
    Ok(Parsed {
        proto,
        src,
        dst,
        ports: sp.zip(dp),
        flags: None,
        icmp_type,
        direction: Direction::Unknown,
        action: Action::Drop,
    })
}

/// `iface/IP(port)[(user…)]` of 106100.
fn list_endpoint(field: &'static str, s: &str) -> Result<(IpAddr, u16), ParseError> {
    let s = s.trim();
    let (_iface, rest) = s
        .split_once('/')
        .ok_or_else(|| ParseError::invalid(field, s))?;
    let (ip, rest) = rest
        .split_once('(')
        .ok_or_else(|| ParseError::invalid(field, s))?;
    let port = rest.split(')').next().unwrap_or("");
    let ip = ip.parse().map_err(|_| ParseError::invalid(field, s))?;
    let port = port.parse().map_err(|_| ParseError::invalid(field, s))?;
    Ok((ip, port))
}

/// 106100: `access-list acl permitted tcp outside/A(p) -> inside/B(p) hit-cnt 1 …`.
fn access_list(msg: &str) -> Result<Parsed, ParseError> {
    let s = msg
        .strip_prefix("access-list ")
        .ok_or_else(|| ParseError::invalid("message", msg))?;
    let mut it = s.splitn(4, ' ');
    let (_acl, verdict, proto, rest) = match (it.next(), it.next(), it.next(), it.next()) {
        (Some(a), Some(v), Some(p), Some(r)) => (a, v, p, r),
        _ => return Err(ParseError::MissingField("protocol")),
    };
    let proto = protocol(proto)?;
    let action = match verdict {
        "permitted" => Action::Accept,
        "denied" => Action::Drop,
        other => return Err(ParseError::invalid("action", other)),
    };
    let (src, rest) = rest
        .split_once(" -> ")
        .ok_or(ParseError::MissingField("->"))?;
    let dst = rest.split(" hit-cnt").next().unwrap_or(rest);
    let (src, sp) = list_endpoint("source", src)?;
    let (dst, dp) = list_endpoint("destination", dst)?;
    Ok(Parsed {
        proto,
        src,
        dst,
        ports: Some((sp, dp)),
        flags: None,
        icmp_type: None,
        direction: Direction::Unknown,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_event::parse_rfc3339;

    fn parser() -> CiscoAsaParser {
        CiscoAsaParser {
            years: YearResolver::new(parse_rfc3339("2026-11-26T00:00:00Z").unwrap()),
        }
    }

    fn ev(line: &str) -> (Event, Option<String>) {
        match parser().parse_line(line) {
            LineOutcome::Event { event, host } => (event, host.map(str::to_string)),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn messages() {
        // (line, time, host, "proto src:sp > dst:dp flags", direction, action, counts)
        let cases = [
            // 106001 with the example of the PIX/ASA handbook's text.
            (
                "Nov 26 2026 10:40:01: %ASA-2-106001: Inbound TCP connection denied from 192.0.2.1/4444 to 198.51.100.7/1025 flags SYN on interface outside",
                "2026-11-26T10:40:01Z", None, "tcp 192.0.2.1:4444 > 198.51.100.7:1025 S", Direction::Inbound, Action::Drop, true,
            ),
            (
                "<162>Nov 26 2026 10:40:01 asa01 : %ASA-2-106001: Inbound TCP connection denied from 192.0.2.1/4444 to 198.51.100.7/1025 flags SYN ACK on interface outside",
                "2026-11-26T10:40:01Z", Some("asa01"), "tcp 192.0.2.1:4444 > 198.51.100.7:1025 SA", Direction::Inbound, Action::Drop, false,
            ),
            (
                "Nov 26 10:40:02 fw1 %ASA-2-106006: Deny inbound UDP from 192.0.2.1/5060 to 198.51.100.7/5060 on interface outside",
                "2026-11-26T10:40:02Z", Some("fw1"), "udp 192.0.2.1:5060 > 198.51.100.7:5060 ", Direction::Inbound, Action::Drop, true,
            ),
            // 106015 as in logstash-patterns-core's test, and with the double space
            // ASA writes after the flag words.
            (
                "Nov 26 2026 10:40:03: %ASA-6-106015: Deny TCP (no connection) from 192.168.150.65/2278 to 64.101.128.83/80 flags RST on interface inside",
                "2026-11-26T10:40:03Z", None, "tcp 192.168.150.65:2278 > 64.101.128.83:80 R", Direction::Unknown, Action::Drop, false,
            ),
            (
                "Nov 26 2026 10:40:03: %FTD-6-106015: Deny TCP (no connection) from 10.1.1.1/443 to 10.2.2.2/51000 flags FIN PSH ACK  on interface inside",
                "2026-11-26T10:40:03Z", None, "tcp 10.1.1.1:443 > 10.2.2.2:51000 FPA", Direction::Unknown, Action::Drop, false,
            ),
            // 106023, as in the witfoo/syslog-to-artifact samples.
            (
                "<164>Aug 28 2022 19:34:14: %ASA-4-106023: Deny tcp src outside:123.93.187.190/63659 dst dmz-1:245.194.191.142/8827 by access-group \"outside_access_in\" [0x0, 0x0]",
                "2022-08-28T19:34:14Z", None, "tcp 123.93.187.190:63659 > 245.194.191.142:8827 ", Direction::Unknown, Action::Drop, true,
            ),
            (
                "<164>Aug 30 2022 20:01:00: %ASA-4-106023: Deny udp src outside:212.18.2.238/31240 dst dmz-1:112.33.252.103/514 by access-group \"outside_access_in\" [0x0, 0x0]",
                "2022-08-30T20:01:00Z", None, "udp 212.18.2.238:31240 > 112.33.252.103:514 ", Direction::Unknown, Action::Drop, true,
            ),
            (
                "Nov 26 2026 10:40:04 fw : %ASA-4-106023: Deny icmp src outside:192.0.2.1 dst inside:198.51.100.7 (type 8, code 0) by access-group \"outside_in\" [0x0, 0x0]",
                "2026-11-26T10:40:04Z", Some("fw"), "icmp 192.0.2.1:- > 198.51.100.7:- ", Direction::Unknown, Action::Drop, false,
            ),
            (
                "Nov 26 2026 10:40:04: %ASA-4-106023: Deny protocol 47 src outside:192.0.2.1 dst inside:198.51.100.7 by access-group \"outside_in\" [0x0, 0x0]",
                "2026-11-26T10:40:04Z", None, "ip-47 192.0.2.1:- > 198.51.100.7:- ", Direction::Unknown, Action::Drop, false,
            ),
            (
                "2026-11-26T10:40:05Z ftd1 : %FTD-4-106023: Deny tcp src outside:2001:db8::1/40000(LOCAL\\idfw, 5) dst inside:2001:db8::2/22(server) by access-group \"acl\" [0x1, 0x2]",
                "2026-11-26T10:40:05Z", Some("ftd1"), "tcp 2001:db8::1:40000 > 2001:db8::2:22 ", Direction::Unknown, Action::Drop, true,
            ),
            // 106100, with a relaying syslog server's header.
            (
                "Jan 19 10:55:14 10.157.238.252 : %ASA-5-106100: access-list Global_acl denied tcp outside/10.169.6.133(65089) -> inside/192.168.85.110(7680) hit-cnt 4 300-second interval [0xc7afbac6, 0x0]",
                "2026-01-19T10:55:14Z", Some("10.157.238.252"), "tcp 10.169.6.133:65089 > 192.168.85.110:7680 ", Direction::Unknown, Action::Drop, true,
            ),
            (
                "Mar 31 2014 18:02:36: %ASA-5-106100: access-list inbound denied tcp outside/128.241.220.82(3154) -> asp3/62.84.96.19(32005) hit-cnt 1 first hit [0x91c26a3, 0x0]",
                "2014-03-31T18:02:36Z", None, "tcp 128.241.220.82:3154 > 62.84.96.19:32005 ", Direction::Unknown, Action::Drop, true,
            ),
            (
                "Dec 15 01:36:40 10.80.101.20 Dec 15 2025 01:36:41: %ASA-6-106100: access-list gw-pci-prod permitted udp gw-pci-prod/10.80.9.75(61180) -> inside/10.1.1.142(53) hit-cnt 1 300-second interval [0x2fa0dec4, 0x8bf258ad]",
                "2025-12-15T01:36:41Z", Some("10.80.101.20"), "udp 10.80.9.75:61180 > 10.1.1.142:53 ", Direction::Unknown, Action::Accept, true,
            ),
        ];
        for (line, time, host, flow, dir, action, counts) in cases {
            let (e, h) = ev(line);
            assert_eq!(e.time.to_rfc3339(), time, "{line}");
            assert_eq!(h.as_deref(), host, "{line}");
            let got = crate::test_support::flow(&e);
            assert_eq!(got, flow, "{line}");
            assert_eq!((e.direction, e.action), (dir, action), "{line}");
            assert_eq!(e.is_unsolicited(), counts, "{line}");
            if e.proto == Protocol::Icmp {
                assert_eq!(e.icmp_type, Some(8), "{line}");
            }
        }
    }

    #[test]
    fn skips() {
        for line in [
            "",
            "Nov 26 2026 10:40:01: %ASA-6-302013: Built inbound TCP connection 1 for outside:192.0.2.1/4444 (192.0.2.1/4444) to inside:10.0.0.1/22 (10.0.0.1/22)",
            "Nov 26 10:40:01 host sshd[1]: Accepted publickey for root",
            "100% of nothing %ASA-x-106023: Deny",
            "%ASA-4-10602: short id",
            "Nov 26 2026 10:40:06: %ASA-6-106100: access-list in est-allowed tcp outside/198.51.100.7(443) -> inside/10.0.0.5(51000) hit-cnt 1 first hit [0x1, 0x0]",
        ] {
            assert_eq!(parser().parse_line(line), LineOutcome::Skip, "{line:?}");
        }
    }

    #[test]
    fn errors() {
        let m = "%ASA-4-106023: Deny tcp src outside:192.0.2.1/1 dst inside:198.51.100.7/22 by access-group \"a\" [0x0, 0x0]";
        let h = "Nov 26 2026 10:40:01:";
        for (line, want) in [
            (m.to_string(), "missing field timestamp"),
            (format!("<164>{m}"), "missing field timestamp"),
            (format!("Nov 31 2026 10:40:01: {m}"), "unreadable timestamp"),
            (format!("Nov 26 2026 10:4x:01: {m}"), "unreadable timestamp"),
            (format!("yesterday {m}"), "unreadable timestamp"),
            (format!("Nov 88 10:40:01 fw {m}"), "unreadable timestamp"),
            (format!("{h} %ASA-2-106001: Outbound whatever"), "invalid message"),
            (format!("{h} %ASA-2-106001: Inbound TCP connection denied from 1.2.3.4/1"), "missing field to"),
            (format!("{h} %ASA-2-106001: Inbound TCP connection denied from 1.2.3.4/1 to 1.2.3.5/2 on interface x"), "missing field flags"),
            (format!("{h} %ASA-2-106001: Inbound TCP connection denied from 1.2.3.4 to 1.2.3.5/2 flags SYN on interface x"), "invalid source"),
            (format!("{h} %ASA-2-106006: Deny inbound UDP from 1.2.3.4/1 to 1.2.3.5/99999 on interface x"), "invalid destination"),
            (format!("{h} %ASA-6-106015: Deny UDP (no connection) from 1.2.3.4/1 to 1.2.3.5/2"), "invalid message"),
            (format!("{h} %ASA-4-106023: Permit tcp src a:1.2.3.4/1 dst b:1.2.3.5/2"), "invalid message"),
            (format!("{h} %ASA-4-106023: Deny foo src a:1.2.3.4/1 dst b:1.2.3.5/2 by access-group"), "invalid protocol"),
            (format!("{h} %ASA-4-106023: Deny tcp from a:1.2.3.4/1"), "missing field src"),
            (format!("{h} %ASA-4-106023: Deny tcp src a:1.2.3.4/1 to b"), "missing field dst"),
            (format!("{h} %ASA-4-106023: Deny tcp src 1.2.3.4/1 dst b:1.2.3.5/2 by access-group"), "invalid source"),
            (format!("{h} %ASA-4-106023: Deny tcp src a:1.2.3.4 dst b:1.2.3.5 by access-group"), "missing field port"),
            (format!("{h} %ASA-5-106100: access-list a denied"), "missing field protocol"),
            (format!("{h} %ASA-5-106100: access-list a dropped tcp a/1.2.3.4(1) -> b/1.2.3.5(2) hit-cnt 1"), "invalid action"),
            (format!("{h} %ASA-5-106100: access-list a denied tcp a/1.2.3.4(1) b/1.2.3.5(2) hit-cnt 1"), "missing field ->"),
            (format!("{h} %ASA-5-106100: access-list a denied tcp a/1.2.3.4(x) -> b/1.2.3.5(2) hit-cnt 1"), "invalid source"),
            (format!("{h} %ASA-5-106100: access-list a denied tcp a/1.2.3.4(1) -> 1.2.3.5 hit-cnt 1"), "invalid destination"),
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
