//! OpenBSD/FreeBSD pf logs as text: `tcpdump -n -e -ttt -r /var/log/pflog` (the
//! binary pflog file read back by tcpdump), the same from `tcpdump -i pflog0`, or
//! such lines relayed through syslog (`… pf: rule …`).
//!
//! ```text
//! Nov 26 10:00:01.123456 rule 3/(match) block in on em0: 203.0.113.5.51234 > 198.51.100.7.1025: S 123:123(0) win 1024
//! 2025-10-18 20:00:21.848827 rule 439/0(match): block in on lan0.150: 172.16.150.72.43506 > 35.167.31.59.11111: Flags [S], seq 1257158708, win 29200, length 0
//! ```
//!
//! - Time: OpenBSD's `-ttt` (`Mmm dd hh:mm:ss.uuuuuu`, the year from the syslog year
//!   rule), tcpdump.org's `-tttt` (`yyyy-mm-dd hh:mm:ss.uuuuuu`), `-tt` (epoch
//!   seconds) or ISO 8601; all without a zone are UTC. A syslog-relayed line takes the
//!   pflog time after the tag when it has a date, else the syslog time, and its host
//!   names the sensor. Lines with only a time of day or a delta (FreeBSD's `-ttt`, no
//!   `-t…` flag) have no date: an error.
//! - pf header: `rule N[.anchor.M]/(reason)` (OpenBSD) or `rule N/0(match):`
//!   (tcpdump.org), optional `[uid …, pid …]`, the action (`pass` = accept, `block` =
//!   drop, `match`, `nat`, `rdr`, … unknown), the direction (`in`, `out`), `on IFACE:`,
//!   optional `[rewritten: …]` and `-v`'s `(tos …, proto TCP (6), …)`.
//! - Packet: `SRC > DST: …`; addresses end in `.port` for TCP and UDP. TCP flags are
//!   tcpdump.org's `Flags [S.]` (`.` is ACK) or OpenBSD's letters before the sequence
//!   numbers (`S`, `FP`, `.`, with ACK shown by a following `ack N`); a TCP line cut
//!   short (`[|tcp]`, `-q`'s `tcp N`) has unknown flags. UDP is `udp N`, `UDP, length N`,
//!   or any other port-bearing packet (tcpdump prints application decodes such as DNS
//!   or NTP instead of the word `udp`; TCP is always recognisable by its flags). ICMP
//!   and ICMPv6 (with the type of common messages), IGMP, ESP, AH, GRE, CARP/VRRP, PIM,
//!   OSPF and `ip-proto-N` are read by name.
//! - Multi-line `-v` output of tcpdump.org is not supported.
//!
//! Lines without a `rule …/…(…)` header (tcpdump's `reading from file …`, other
//! programs in a syslog file) are skipped.

use std::net::IpAddr;

use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};

use crate::syslog::{month_number, next_token, parse_header, parse_iso_utc, YearResolver};
use crate::zeek::parse_ts;
use crate::{FormatSpec, LineOutcome, LineParser, ParseError, ParserOptions};

pub(crate) struct Spec;
pub(crate) static SPEC: Spec = Spec;

impl FormatSpec for Spec {
    fn name(&self) -> &'static str {
        "pflog"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["openbsd-pf", "pf-tcpdump", "pflogd"]
    }
    fn description(&self) -> &'static str {
        "OpenBSD/FreeBSD pf log as tcpdump text (tcpdump -n -e -ttt -r /var/log/pflog)"
    }
    fn sniff(&self, line: &str) -> bool {
        find_rule(line).is_some_and(|(_, rest)| rest.contains(" on ") && rest.contains(" > "))
    }
    fn parser(&self, opts: &ParserOptions) -> Box<dyn LineParser> {
        Box::new(PflogParser {
            years: YearResolver::new(opts.reference_time),
        })
    }
}

#[derive(Debug)]
pub struct PflogParser {
    years: YearResolver,
}

impl LineParser for PflogParser {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        let t = line.trim_end_matches(['\r', '\n']);
        let Some((prefix, rest)) = find_rule(t) else {
            return LineOutcome::Skip;
        };
        match self.parse(prefix, rest) {
            Ok(o) => o,
            Err(e) => LineOutcome::Error(e),
        }
    }
}

/// Finds the `rule 3/(match)` or `rule 22/0(match):` header: the text before `rule`
/// and the text after the rule token.
fn find_rule(line: &str) -> Option<(&str, &str)> {
    let mut from = 0;
    while let Some(i) = line.get(from..)?.find("rule ").map(|i| i + from) {
        from = i + 5;
        if i > 0 && line.as_bytes()[i - 1] != b' ' {
            continue;
        }
        let after = &line[i + 5..];
        let (spec, rest) = after.split_once(' ').unwrap_or((after, ""));
        let spec = spec.strip_suffix(':').unwrap_or(spec);
        if spec.contains('/') && spec.contains('(') && spec.ends_with(')') {
            return Some((&line[..i], rest));
        }
    }
    None
}

/// Skips `[uid 0, pid 123] ` and `[rewritten: …] ` groups.
fn skip_brackets(mut s: &str) -> &str {
    while let Some(r) = s.strip_prefix('[') {
        match r.split_once(']') {
            Some((_, rest)) => s = rest.trim_start(),
            None => break,
        }
    }
    s
}

/// `1.2.3.4.80` / `fe80::1.546` (address and port) or a bare address.
fn addr_port(field: &'static str, s: &str) -> Result<(IpAddr, Option<u16>), ParseError> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    let bad = || ParseError::invalid(field, s);
    let (ip, port) = s.rsplit_once('.').ok_or_else(bad)?;
    Ok((
        ip.parse().map_err(|_| bad())?,
        Some(port.parse().map_err(|_| bad())?),
    ))
}

/// OpenBSD's TCP print: flag letters (`S`, `FP`, `.`, with `W`/`E` for ECN) followed
/// by the sequence numbers, `ack`, `win`, `urg`, options or a truncation mark.
fn openbsd_tcp(p: &str) -> Option<TcpFlags> {
    let mut toks = p.split_ascii_whitespace();
    let first = toks.next()?;
    if !first.bytes().all(|b| b"SFRPWE.".contains(&b)) {
        return None;
    }
    let is_seq = |t: &str| {
        let Some((a, b)) = t.split_once(':') else {
            return false;
        };
        let Some((b, len)) = b.split_once('(') else {
            return false;
        };
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
        digits(a) && digits(b) && len.strip_suffix(')').is_some_and(digits)
    };
    match toks.next() {
        None => {}
        Some(t)
            if is_seq(t)
                || matches!(t, "ack" | "win" | "urg")
                || t.starts_with('<')
                || t.starts_with("[|") => {}
        Some(_) => return None,
    }
    let mut f = 0;
    for b in first.bytes() {
        f |= match b {
            b'S' => TcpFlags::SYN,
            b'F' => TcpFlags::FIN,
            b'R' => TcpFlags::RST,
            b'P' => TcpFlags::PSH,
            b'W' => TcpFlags::CWR,
            b'E' => TcpFlags::ECE,
            _ => 0,
        };
    }
    for t in p.split_ascii_whitespace().skip(1) {
        match t {
            "ack" => f |= TcpFlags::ACK,
            "urg" => f |= TcpFlags::URG,
            _ if t.starts_with('<') => break,
            _ => {}
        }
    }
    Some(TcpFlags(f))
}

/// The ICMP or ICMPv6 type of the common messages tcpdump names.
fn icmp_type(p: &str, v6: bool) -> Option<u8> {
    const V4: [(&str, u8); 5] = [
        ("echo request", 8),
        ("echo reply", 0),
        ("unreachable", 3),
        ("time exceeded", 11),
        ("redirect", 5),
    ];
    const V6: [(&str, u8); 10] = [
        ("echo request", 128),
        ("echo reply", 129),
        ("router solicitation", 133),
        ("router advertisement", 134),
        ("neighbor solicitation", 135),
        ("neighbor advertisement", 136),
        ("multicast listener report v2", 143),
        ("unreachable", 1),
        ("packet too big", 2),
        ("time exceeded", 3),
    ];
    if let Some(i) = p.find("type-#") {
        let n: String = p[i + 6..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        return n.parse().ok();
    }
    let table: &[(&str, u8)] = if v6 { &V6 } else { &V4 };
    table.iter().find(|(w, _)| p.contains(w)).map(|(_, t)| *t)
}

/// Protocols tcpdump prints by name when the packet has no ports.
fn named_protocol(p: &str) -> Option<Protocol> {
    let word: String = p
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>()
        .to_ascii_lowercase();
    if let Some(n) = word.strip_prefix("ip-proto-") {
        return n.parse::<u8>().ok().map(Protocol::from_number);
    }
    const NAMES: [(&str, u8); 9] = [
        ("igmp", 2),
        ("esp", 50),
        ("ah", 51),
        ("gre", 47),
        ("sctp", 132),
        ("vrrp", 112),
        ("carp", 112),
        ("pim", 103),
        ("ospf", 89),
    ];
    NAMES
        .iter()
        .find(|(n, _)| {
            word.strip_prefix(n)
                .is_some_and(|r| r.is_empty() || r.starts_with('v') || r.starts_with('-'))
        })
        .map(|(_, n)| Protocol::Other(*n))
}

/// `proto TCP (6)` inside `-v`'s `(tos …, proto TCP (6), length 60)`.
fn v_proto(inner: &str) -> Option<u8> {
    let r = &inner[inner.find("proto ")? + 6..];
    let r = &r[r.find('(')? + 1..];
    r.split(')').next()?.parse().ok()
}

struct Payload {
    proto: Protocol,
    flags: Option<TcpFlags>,
    icmp_type: Option<u8>,
}

fn classify(p: &str, has_ports: bool, v6: bool, vproto: Option<u8>) -> Result<Payload, ParseError> {
    let tcp = |flags| Payload {
        proto: Protocol::Tcp,
        flags,
        icmp_type: None,
    };
    let other = |proto| Payload {
        proto,
        flags: None,
        icmp_type: None,
    };
    if let Some(r) = p.strip_prefix("Flags [") {
        let letters = r.split(']').next().unwrap_or("");
        let flags = if letters == "none" {
            TcpFlags(0)
        } else {
            TcpFlags::parse_letters(letters)
                .ok_or_else(|| ParseError::invalid("tcp flags", letters))?
        };
        return Ok(tcp(Some(flags)));
    }
    if p.starts_with("[|tcp]") || p.starts_with("tcp ") {
        return Ok(tcp(None));
    }
    if has_ports {
        if let Some(f) = openbsd_tcp(p) {
            return Ok(tcp(Some(f)));
        }
    }
    if p.starts_with("udp ") || p.starts_with("UDP") || p.starts_with("[|udp]") {
        return Ok(other(Protocol::Udp));
    }
    let head: String = p.chars().take(80).collect();
    if head.contains("icmp6") || head.contains("ICMP6") {
        return Ok(Payload {
            proto: Protocol::Icmpv6,
            flags: None,
            icmp_type: icmp_type(&head, true),
        });
    }
    if p.starts_with("icmp") || p.starts_with("ICMP") {
        return Ok(Payload {
            proto: if v6 { Protocol::Icmpv6 } else { Protocol::Icmp },
            flags: None,
            icmp_type: icmp_type(&head, v6),
        });
    }
    if let Some(proto) = named_protocol(p) {
        return Ok(other(proto));
    }
    match vproto {
        Some(6) => Ok(tcp(None)),
        Some(n) => Ok(other(Protocol::from_number(n))),
        None if has_ports => Ok(other(Protocol::Udp)),
        None => Err(ParseError::invalid("protocol", &head)),
    }
}

impl PflogParser {
    /// A timestamp that is the whole of `s`: `Mmm dd hh:mm:ss.frac`,
    /// `yyyy-mm-dd hh:mm:ss.frac`, ISO 8601 or epoch seconds. `Ok(None)` when `s` is
    /// something else (a delta, a time of day, a syslog header with a host).
    fn standalone(&mut self, s: &str) -> Result<Option<Timestamp>, ParseError> {
        let b = s.as_bytes();
        if b.len() >= 19 && b[4] == b'-' && b[7] == b'-' && matches!(b[10], b' ' | b'T') {
            return parse_iso_utc(s)
                .map(Some)
                .ok_or_else(|| ParseError::timestamp(s));
        }
        if b.len() >= 15 && b[3] == b' ' && month_number(b).is_some() {
            return match parse_header(s, &mut self.years)? {
                Some(h) if h.host.is_none() && h.rest.trim().is_empty() => Ok(Some(h.time)),
                _ => Ok(None),
            };
        }
        if let Some((secs, _)) = s.split_once('.') {
            if secs.len() >= 9 {
                return parse_ts(s)
                    .map(Some)
                    .ok_or_else(|| ParseError::timestamp(s));
            }
        }
        Ok(None)
    }

    fn prefix_time<'l>(
        &mut self,
        prefix: &'l str,
    ) -> Result<(Timestamp, Option<&'l str>), ParseError> {
        let p = prefix.trim();
        if p.is_empty() {
            return Err(ParseError::MissingField("timestamp"));
        }
        if let Some(t) = self.standalone(p)? {
            return Ok((t, None));
        }
        let Some(h) = parse_header(p, &mut self.years)? else {
            return Err(ParseError::timestamp(p));
        };
        // `host pf: [pflog time]`: the tag, then maybe tcpdump's own timestamp.
        let inner = match next_token(h.rest) {
            Some((tag, r)) if tag.ends_with(':') => r.trim(),
            _ => h.rest.trim(),
        };
        let time = self.standalone(inner)?.unwrap_or(h.time);
        Ok((time, h.host))
    }

    fn parse<'l>(&mut self, prefix: &'l str, rest: &str) -> Result<LineOutcome<'l>, ParseError> {
        let (time, host) = self.prefix_time(prefix)?;
        let rest = skip_brackets(rest.trim_start());
        let (action, rest) = next_token(rest).ok_or(ParseError::MissingField("action"))?;
        let action = match action {
            "pass" => Action::Accept,
            "block" | "synproxy-drop" => Action::Drop,
            "match" | "scrub" | "no-scrub" | "nat" | "no-nat" | "binat" | "no-binat" | "rdr"
            | "no-rdr" | "defer" | "divert" | "rt" | "afrt" => Action::Unknown,
            a if a.starts_with("unkn") => Action::Unknown,
            other => return Err(ParseError::invalid("action", other)),
        };
        let (dir, rest) = next_token(rest).ok_or(ParseError::MissingField("direction"))?;
        let direction = match dir {
            "in" => Direction::Inbound,
            "out" => Direction::Outbound,
            d if d == "in/out" || d.starts_with("unkn") => Direction::Unknown,
            other => return Err(ParseError::invalid("direction", other)),
        };
        let rest = rest
            .trim_start()
            .strip_prefix("on ")
            .ok_or(ParseError::MissingField("interface"))?;
        let (iface, rest) = next_token(rest).ok_or(ParseError::MissingField("interface"))?;
        if !iface.ends_with(':') {
            return Err(ParseError::invalid("interface", iface));
        }
        let mut rest = skip_brackets(rest.trim_start());
        // tcpdump.org -v: `(tos 0x0, ttl 64, …, proto TCP (6), length 60) `.
        let mut vproto = None;
        if rest.starts_with('(') {
            let mut depth = 0usize;
            let mut end = None;
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            end = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let end = end.ok_or(ParseError::MissingField(")"))?;
            vproto = v_proto(&rest[..end]);
            rest = rest[end + 1..].trim_start();
        }
        let (src, rest) = rest
            .split_once(" > ")
            .ok_or(ParseError::MissingField("destination"))?;
        let (dst, payload) = next_token(rest).ok_or(ParseError::MissingField("destination"))?;
        // The address ends at the `:` after it; a decoder may follow without a space
        // (`ff02::1:2.547:dhcp6 solicit`). IPv6 addresses have colons but no dots, so
        // the cut is the first `:` after the last `.`, or a trailing `:`.
        let dst = match dst
            .rfind('.')
            .and_then(|d| dst[d..].find(':').map(|c| d + c))
        {
            Some(cut) => &dst[..cut],
            None => dst.strip_suffix(':').unwrap_or(dst),
        };
        let (src, sport) = addr_port("source", src.trim())?;
        let (dst, dport) = addr_port("destination", dst)?;
        let p = classify(payload.trim_start(), dport.is_some(), src.is_ipv6(), vproto)?;
        let (src_port, dst_port) = if p.proto.has_ports() {
            (
                Some(sport.ok_or(ParseError::MissingField("source port"))?),
                Some(dport.ok_or(ParseError::MissingField("destination port"))?),
            )
        } else {
            (None, None)
        };
        let event = Event {
            time,
            proto: p.proto,
            src,
            dst,
            src_port,
            dst_port,
            flags: p.flags.unwrap_or_default(),
            flags_known: p.flags.is_some(),
            icmp_type: p.icmp_type,
            direction,
            action,
            count: 1,
        };
        Ok(LineOutcome::Event { event, host })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_event::parse_rfc3339;

    fn parser() -> PflogParser {
        PflogParser {
            years: YearResolver::new(parse_rfc3339("2026-11-26T00:00:00Z").unwrap()),
        }
    }

    #[test]
    fn events() {
        // (line, time, host, "proto src:sp > dst:dp flags", direction, action, counts)
        let cases = [
            // OpenBSD -ttt, as in the OpenBSD FAQ and pf log readers.
            (
                "Nov 26 10:00:01.123456 rule 3/(match) block in on em0: 203.0.113.5.51234 > 198.51.100.7.1025: S 123:123(0) win 1024",
                "2026-11-26T10:00:01.123Z", None, "tcp 203.0.113.5:51234 > 198.51.100.7:1025 S", Direction::Inbound, Action::Drop, true,
            ),
            (
                "Jan 30 20:43:54.026177 rule 4/(match) block in on em0: 52.1.2.3.38527 > 67.1.2.3.5432: S 362481813:362481813(0) win 26880 <mss 1460,sackOK,timestamp 664198628 0,nop,wscale 7> (DF) [tos 0x20]",
                "2026-01-30T20:43:54.026Z", None, "tcp 52.1.2.3:38527 > 67.1.2.3:5432 S", Direction::Inbound, Action::Drop, true,
            ),
            (
                "Mar 30 15:33:26 enigma pf: Mar 30 15:32:33.483712 rule 2/(match) pass in on xl0: 140.211.166.3.6667 > 192.168.2.10.16290: P 7408:7677(269) ack 1773 win 2520 <nop,nop,timestamp 3960674784 2860123562> (DF)",
                "2026-03-30T15:32:33.483Z", Some("enigma"), "tcp 140.211.166.3:6667 > 192.168.2.10:16290 PA", Direction::Inbound, Action::Accept, false,
            ),
            (
                "Mar 30 15:54:22.171929 rule 3/(match) pass out on xl0: 192.168.2.10.1514 > 192.168.2.190.1030:  udp 73",
                "2026-03-30T15:54:22.171Z", None, "udp 192.168.2.10:1514 > 192.168.2.190:1030 ", Direction::Outbound, Action::Accept, false,
            ),
            (
                "Mar 30 17:47:41.400075 rule 3/(match) pass out on lo0: 127.0.0.1 > 127.0.0.1: icmp: echo request",
                "2026-03-30T17:47:41.400Z", None, "icmp 127.0.0.1:- > 127.0.0.1:- ", Direction::Outbound, Action::Accept, false,
            ),
            (
                "Feb 16 16:43:20 firewall pf: rule 0/(match) block in on ep0: 194.54.59.189.2559 > 194.54.107.19.139: [|tcp] (DF)",
                "2026-02-16T16:43:20Z", Some("firewall"), "tcp 194.54.59.189:2559 > 194.54.107.19:139 ", Direction::Inbound, Action::Drop, true,
            ),
            (
                "Sep 28 03:50:16.900084 rule 11/(match) block in on em1: 10.0.0.11.5353 > 224.0.0.251.5353: 0*- [0q] 7/0/0[|domain] (DF)",
                "2026-09-28T03:50:16.900Z", None, "udp 10.0.0.11:5353 > 224.0.0.251:5353 ", Direction::Inbound, Action::Drop, true,
            ),
            (
                "Sep 28 03:50:20.124951 rule 11/(match) block in on em1: 10.0.0.11 > 224.0.0.22: igmp-2 [v2] (DF) [tos 0xc0] [ttl 1]",
                "2026-09-28T03:50:20.124Z", None, "ip-2 10.0.0.11:- > 224.0.0.22:- ", Direction::Inbound, Action::Drop, false,
            ),
            (
                "Oct 18 05:16:52.230791 rule 11/(match) block in on em1: fe80::a00:27ff:fe4f:2af9.546 > ff02::1:2.547:dhcp6 solicit [hlim 1]",
                "2026-10-18T05:16:52.230Z", None, "udp fe80::a00:27ff:fe4f:2af9:546 > ff02::1:2:547 ", Direction::Inbound, Action::Drop, true,
            ),
            (
                "Sep 28 03:50:03.749086 rule 11/(match) block in on em1: fe80::21f:e2ff:fe61:969a > ff02::2: icmp6: router solicitation",
                "2026-09-28T03:50:03.749Z", None, "icmpv6 fe80::21f:e2ff:fe61:969a:- > ff02::2:- ", Direction::Inbound, Action::Drop, false,
            ),
            // OpenBSD -v: the rule's uid/pid; an anchor rule; a SYN-ACK.
            (
                "Nov 26 10:00:02.000001 rule 1.relayd.2/(match) [uid 0, pid 12345] pass out on em0: 198.51.100.7.22 > 203.0.113.5.51234: S 1:1(0) ack 124 win 16384",
                "2026-11-26T10:00:02Z", None, "tcp 198.51.100.7:22 > 203.0.113.5:51234 SA", Direction::Outbound, Action::Accept, false,
            ),
            // tcpdump.org -tttt (FreeBSD, OPNsense), Flags [..] with `.` = ACK.
            (
                "2025-10-18 20:00:21.848827 rule 439/0(match): block in on lan0.150: 172.16.150.72.43506 > 35.167.31.59.11111: Flags [S], seq 1257158708, win 29200, options [mss 1460,sackOK,TS val 2730428032 ecr 0,nop,wscale 3], length 0",
                "2025-10-18T20:00:21.848Z", None, "tcp 172.16.150.72:43506 > 35.167.31.59:11111 S", Direction::Inbound, Action::Drop, true,
            ),
            (
                "2025-10-18 20:00:21.848277 rule 81/0(match): pass in on lan0: 192.168.133.225.41641 > 199.38.181.93.3478: UDP, length 40",
                "2025-10-18T20:00:21.848Z", None, "udp 192.168.133.225:41641 > 199.38.181.93:3478 ", Direction::Inbound, Action::Accept, true,
            ),
            (
                "2025-10-18 20:00:22.000000 rule 5/0(match): block out on lan0: 10.0.0.5.443 > 192.0.2.9.51000: Flags [R.], seq 1, ack 2, win 0, length 0",
                "2025-10-18T20:00:22Z", None, "tcp 10.0.0.5:443 > 192.0.2.9:51000 RA", Direction::Outbound, Action::Drop, false,
            ),
            // Syslog-relayed with a delta stamp and single-line -v (pfSense).
            (
                "Jan 11 07:28:30 141.102.4.254 pf: 000145 rule 141/0(match): block in on bge0: (tos 0x0, ttl 128, id 58078, offset 0, flags [none], proto UDP (17), length 1052) 141.102.12.99.1137 > 188.40.123.111.24460: UDP, length 1024",
                "2026-01-11T07:28:30Z", Some("141.102.4.254"), "udp 141.102.12.99:1137 > 188.40.123.111:24460 ", Direction::Inbound, Action::Drop, true,
            ),
            (
                "Aug  6 12:03:15 bsd-host pflogd[1042]: 2026-08-06 12:03:15.123456 rule 0/0(match): block in on em0: 192.168.1.50.80 > 10.0.0.1.443: Flags [S.], seq 1, ack 1, win 1024, length 0",
                "2026-08-06T12:03:15.123Z", Some("bsd-host"), "tcp 192.168.1.50:80 > 10.0.0.1:443 SA", Direction::Inbound, Action::Drop, false,
            ),
            // -tt epoch; a packet with ECN letters.
            (
                "1795651201.500000 rule 3/(match) block in on em0: 203.0.113.5.51234 > 198.51.100.7.443: SWE 1:1(0) win 1024",
                "2026-11-26T00:00:01.500Z", None, "tcp 203.0.113.5:51234 > 198.51.100.7:443 SEC", Direction::Inbound, Action::Drop, true,
            ),
            (
                "2024-05-29T22:00:08.006704+02:00 rule 1/0(match): block in on vtnet0: 141.98.7.190.56034 > 46.38.233.77.8728: Flags [S], seq 1, win 1024, length 0",
                "2024-05-29T20:00:08.006Z", None, "tcp 141.98.7.190:56034 > 46.38.233.77:8728 S", Direction::Inbound, Action::Drop, true,
            ),
            (
                "2024-05-29 22:00:09.000000 rule 1/0(match): block in on vtnet0: fe80::c4f:2e96:d24e:5364 > ff02::16: HBH ICMP6, multicast listener report v2, 1 group record(s), length 28",
                "2024-05-29T22:00:09Z", None, "icmpv6 fe80::c4f:2e96:d24e:5364:- > ff02::16:- ", Direction::Inbound, Action::Drop, false,
            ),
        ];
        for (line, time, host, flow, dir, action, counts) in cases {
            let (e, h) = match parser().parse_line(line) {
                LineOutcome::Event { event, host } => (event, host),
                other => panic!("{line}: {other:?}"),
            };
            assert_eq!(e.time.to_rfc3339(), time, "{line}");
            assert_eq!(h, host, "{line}");
            let got = crate::test_support::flow(&e);
            assert_eq!(got, flow, "{line}");
            assert_eq!((e.direction, e.action), (dir, action), "{line}");
            assert_eq!(e.is_unsolicited(), counts, "{line}");
            match e.proto {
                Protocol::Icmp => assert_eq!(e.icmp_type, Some(8), "{line}"),
                Protocol::Icmpv6 => assert!(matches!(e.icmp_type, Some(133 | 143)), "{line}"),
                _ => assert_eq!(e.icmp_type, None, "{line}"),
            }
        }
    }

    #[test]
    fn skips() {
        for line in [
            "",
            "reading from file /var/log/pflog, link-type PFLOG (OpenBSD pflog file)",
            "tcpdump: WARNING: snaplen raised from 116 to 160",
            "Nov 26 10:00:01 fw sshd[1]: rule the world",
        ] {
            assert_eq!(parser().parse_line(line), LineOutcome::Skip, "{line:?}");
        }
    }

    #[test]
    fn errors() {
        let pkt = "block in on em0: 192.0.2.1.1 > 192.0.2.2.2: S 1:1(0) win 1";
        for (line, want) in [
            (format!("rule 3/(match) {pkt}"), "missing field timestamp"),
            (format!("00:00:00.000185 rule 0/0(match): {pkt}"), "unreadable timestamp"),
            (format!("23:11:12 rule 14/(match) {pkt}"), "unreadable timestamp"),
            (format!("Feb 30 10:00:01.1 rule 3/(match) {pkt}"), "unreadable timestamp"),
            (format!("2026-02-30 10:00:01.1 rule 3/(match) {pkt}"), "unreadable timestamp"),
            (format!("99999999999999.5 rule 3/(match) {pkt}"), "unreadable timestamp"),
            ("Nov 26 10:00:01.1 rule 3/(match)".to_string(), "missing field action"),
            ("Nov 26 10:00:01.1 rule 3/(match) drop in on em0: x".to_string(), "invalid action"),
            ("Nov 26 10:00:01.1 rule 3/(match) block".to_string(), "missing field direction"),
            ("Nov 26 10:00:01.1 rule 3/(match) block sideways on em0: x".to_string(), "invalid direction"),
            ("Nov 26 10:00:01.1 rule 3/(match) block in em0: x".to_string(), "missing field interface"),
            ("Nov 26 10:00:01.1 rule 3/(match) block in on em0 x".to_string(), "invalid interface"),
            ("Nov 26 10:00:01.1 rule 3/(match) block in on em0: (tos 0x0, proto TCP (6) 1.2.3.4 > 1.2.3.5".to_string(), "missing field )"),
            ("Nov 26 10:00:01.1 rule 3/(match) block in on em0: 1.2.3.4.5".to_string(), "missing field destination"),
            ("Nov 26 10:00:01.1 rule 3/(match) block in on em0: 1.2.3.x > 1.2.3.5.6: udp 1".to_string(), "invalid source"),
            ("Nov 26 10:00:01.1 rule 3/(match) block in on em0: 1.2.3.4.5 > 1.2.3.5.99999: udp 1".to_string(), "invalid destination"),
            ("Nov 26 10:00:01.1 rule 3/(match) block in on em0: 1.2.3.4.5 > 1.2.3.5.6: Flags [Sx], seq 1".to_string(), "invalid tcp flags"),
            ("Nov 26 10:00:01.1 rule 3/(match) block in on em0: 1.2.3.4 > 1.2.3.5: whatever this is".to_string(), "invalid protocol"),
            ("Nov 26 10:00:01.1 rule 3/(match) block in on em0: 1.2.3.4 > 1.2.3.5.6: udp 1".to_string(), "missing field source port"),
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
