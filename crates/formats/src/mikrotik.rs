//! MikroTik RouterOS firewall log lines (a firewall rule with `log=yes`), as sent to a
//! remote syslog server:
//!
//! ```text
//! 2023-03-18T20:36:59.594792+01:00 10.120.127.1 firewall,info drop-tcp input: in:ether1-WAN out:(unknown 0), connection-state:new src-mac 00:17:10:88:bc:02, proto TCP (SYN), 36.97.161.219:59388->81.82.202.145:23, len 40
//! ```
//!
//! - Header: a syslog header (RFC 3164 with the year rule, ISO 8601 as written by
//!   rsyslog, RFC 5424); its host names the sensor. Then the topics
//!   (`firewall,info`, when the router sends them), the rule's `log-prefix` if any,
//!   and the chain (`input:`, `forward:`, `output:`, …).
//! - Body: `in:IFACE out:IFACE, [connection-state:… ][src-mac MAC, ]proto P[ (detail)],
//!   SRC->DST[, NAT …], len N`. Interface names may contain spaces; `(unknown 0)` and
//!   `(none)` mean no interface. Addresses are `ip:port`, `[ipv6]:port`, or without a
//!   port for protocols that have none; the first pair (before any `NAT (…)`) is the
//!   packet as the rule saw it.
//! - TCP flags are the detail words (`(SYN)`, `(ACK,PSH)`, `(SYN,ACK)`); a TCP line
//!   without them has unknown flags. ICMP's detail is `(type 8, code 0)`. ICMP with
//!   IPv6 addresses is ICMPv6.
//! - Direction: an input interface means inbound (also when forwarded); only an output
//!   interface means outbound (the router's own packets).
//! - Action: from the log prefix, as for netfilter (`drop-in`, `DROP`, `REJECT`,
//!   `ACCEPT`, …); RouterOS does not log the rule's action otherwise.
//!
//! A line is a firewall line when it has `: in:` (the chain, then the interfaces);
//! other RouterOS lines (`system,error,critical login failure …`) are skipped.

use std::net::IpAddr;

use scanwatch_event::{Direction, Event, Protocol, TcpFlags};

use crate::netfilter::action_from_prefix;
use crate::syslog::{next_token, parse_header, YearResolver};
use crate::{FormatSpec, LineOutcome, LineParser, ParseError, ParserOptions};

pub(crate) struct Spec;
pub(crate) static SPEC: Spec = Spec;

impl FormatSpec for Spec {
    fn name(&self) -> &'static str {
        "mikrotik"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["routeros"]
    }
    fn description(&self) -> &'static str {
        "MikroTik RouterOS firewall log lines in syslog"
    }
    fn sniff(&self, line: &str) -> bool {
        let Some(i) = line.find(": in:") else {
            return false;
        };
        let body = &line[i..];
        body.contains(" out:") && body.contains("proto ") && body.contains("->")
    }
    fn parser(&self, opts: &ParserOptions) -> Box<dyn LineParser> {
        Box::new(MikrotikParser {
            years: YearResolver::new(opts.reference_time),
        })
    }
}

#[derive(Debug)]
pub struct MikrotikParser {
    years: YearResolver,
}

impl LineParser for MikrotikParser {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        let t = line.trim_end_matches(['\r', '\n']);
        let Some(at) = t.find(": in:") else {
            return LineOutcome::Skip;
        };
        match self.parse(&t[..at], &t[at + 2..]) {
            Ok(o) => o,
            Err(e) => LineOutcome::Error(e),
        }
    }
}

/// An interface field that names an interface (not `(unknown 0)`, `(none)` or empty).
fn is_iface(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty() && !s.starts_with("(unknown") && s != "(none)"
}

/// `1.2.3.4:80`, `[2001:db8::1]:80`, `1.2.3.4` or `2001:db8::1`.
fn endpoint(field: &'static str, s: &str) -> Result<(IpAddr, Option<u16>), ParseError> {
    let bad = || ParseError::invalid(field, s);
    if let Some(r) = s.strip_prefix('[') {
        let (ip, port) = r.split_once("]:").ok_or_else(bad)?;
        return Ok((
            ip.parse().map_err(|_| bad())?,
            Some(port.parse().map_err(|_| bad())?),
        ));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    let (ip, port) = s.rsplit_once(':').ok_or_else(bad)?;
    Ok((
        ip.parse().map_err(|_| bad())?,
        Some(port.parse().map_err(|_| bad())?),
    ))
}

impl MikrotikParser {
    /// `head` is everything before `: in:` (header, topics, prefix, chain); `body`
    /// starts at `in:`.
    fn parse<'l>(&mut self, head: &'l str, body: &str) -> Result<LineOutcome<'l>, ParseError> {
        let Some(h) = parse_header(head, &mut self.years)? else {
            return Err(ParseError::MissingField("timestamp"));
        };
        // No host field: the first word is then the topics (`firewall,info`), which no
        // host name can be (no commas in host names).
        let (host, rest) = match h.host {
            // `x` is a slice of `head`: the rest starts where it does.
            Some(x) if x.contains(',') => {
                (None, &head[x.as_ptr() as usize - head.as_ptr() as usize..])
            }
            other => (other, h.rest),
        };
        // Topics, then the log prefix, then the chain (the last word).
        let rest = match next_token(rest) {
            Some((topics, r)) if topics.contains(',') && !r.is_empty() => r,
            _ => rest,
        };
        let prefix = rest.rsplit_once(' ').map_or("", |(p, _chain)| p);
        let action = action_from_prefix(prefix);

        let body = body.strip_prefix("in:").unwrap_or(body);
        let (iface_in, rest) = body
            .split_once(" out:")
            .ok_or(ParseError::MissingField("out:"))?;
        let (iface_out, rest) = rest.split_once(", ").unwrap_or((rest, ""));
        let at = rest
            .match_indices("proto ")
            .find(|(i, _)| *i == 0 || matches!(rest.as_bytes()[i - 1], b' ' | b','))
            .map(|(i, _)| i)
            .ok_or(ParseError::MissingField("proto"))?;
        let rest = &rest[at + 6..];
        let name_end = rest.find([' ', ',']).unwrap_or(rest.len());
        let name = &rest[..name_end];
        let proto = Protocol::parse(name).ok_or_else(|| ParseError::invalid("proto", name))?;
        let rest = rest[name_end..].trim_start();
        let (detail, rest) = match rest.strip_prefix('(') {
            Some(r) => {
                let (d, r) = r.split_once(')').ok_or(ParseError::MissingField(")"))?;
                (Some(d), r)
            }
            None => (None, rest),
        };
        let addrs = rest.trim_start_matches([',', ' ']);
        let addrs = addrs.split(',').next().unwrap_or(addrs).trim();
        let (src, dst) = addrs
            .split_once("->")
            .ok_or(ParseError::MissingField("->"))?;
        let (src, src_port) = endpoint("source", src)?;
        let (dst, dst_port) = endpoint("destination", dst)?;
        let proto = match proto {
            Protocol::Icmp if src.is_ipv6() => Protocol::Icmpv6,
            p => p,
        };
        let (src_port, dst_port) = if proto.has_ports() {
            (
                Some(src_port.ok_or(ParseError::MissingField("source port"))?),
                Some(dst_port.ok_or(ParseError::MissingField("destination port"))?),
            )
        } else {
            (None, None)
        };
        let (flags, flags_known) = match (proto, detail) {
            (Protocol::Tcp, Some(d)) => {
                let mut f = TcpFlags(0);
                for w in d.split(',') {
                    f.set_word(w.trim());
                }
                (f, true)
            }
            _ => (TcpFlags(0), false),
        };
        let icmp_type = match (proto, detail) {
            (Protocol::Icmp | Protocol::Icmpv6, Some(d)) => d
                .strip_prefix("type ")
                .and_then(|t| t.split(',').next())
                .and_then(|t| t.trim().parse().ok()),
            _ => None,
        };
        let direction = match (is_iface(iface_in), is_iface(iface_out)) {
            (true, _) => Direction::Inbound,
            (false, true) => Direction::Outbound,
            (false, false) => Direction::Unknown,
        };
        let event = Event {
            time: h.time,
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
        Ok(LineOutcome::Event { event, host })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_event::{parse_rfc3339, Action};

    fn parser() -> MikrotikParser {
        MikrotikParser {
            years: YearResolver::new(parse_rfc3339("2026-11-26T00:00:00Z").unwrap()),
        }
    }

    #[test]
    fn events() {
        // (line, time, host, "proto src:sp > dst:dp flags", direction, action, counts)
        let cases = [
            (
                "2023-03-18T20:36:59.594792+01:00 10.120.127.1 firewall,info drop-tcp input: in:ether1-WAN out:(unknown 0), connection-state:new src-mac 00:17:10:88:bc:02, proto TCP (SYN), 36.97.161.219:59388->81.82.202.145:23, len 40",
                "2023-03-18T19:36:59.594Z", Some("10.120.127.1"), "tcp 36.97.161.219:59388 > 81.82.202.145:23 S", Direction::Inbound, Action::Drop, true,
            ),
            (
                "2026-05-31T00:04:27.696749+02:00 gw firewall,info input: in:WAN out:(unknown 0), connection-state:new src-mac e4:41:64:93:a8:0f, proto TCP (SYN), [2001:db8:1234::1]:40384->[2001:db8:1234::2]:20461, len 24",
                "2026-05-30T22:04:27.696Z", Some("gw"), "tcp 2001:db8:1234::1:40384 > 2001:db8:1234::2:20461 S", Direction::Inbound, Action::Unknown, true,
            ),
            // Interface names with spaces; a prefix of two words (`pca-deny` is a drop).
            (
                "Nov 26 10:40:01 rb firewall,info pca-deny: pca-accept forward: in:3BEA VLAN out:Inspira Fibre Uplink, connection-state:new src-mac 02:01:24:03:ed:66, proto ICMP (type 8, code 0), 10.10.12.30->157.240.214.35, len 76",
                "2026-11-26T10:40:01Z", Some("rb"), "icmp 10.10.12.30:- > 157.240.214.35:- ", Direction::Inbound, Action::Drop, false,
            ),
            // Locally originated (no input interface), srcnat with NAT details.
            (
                "<134>Nov 26 10:40:02 rb firewall,info srcnat: in:(none) out:sfp-plus2, src-mac 00:25:84:d6:40:3f, proto TCP (ACK,PSH), 100.64.0.100:58105->217.107.214.29:80, NAT (100.64.0.100:58105->203.0.113.1:58105)->217.107.214.29:80, len 52",
                "2026-11-26T10:40:02Z", Some("rb"), "tcp 100.64.0.100:58105 > 217.107.214.29:80 PA", Direction::Outbound, Action::Unknown, false,
            ),
            // No host field: the topics come right after the timestamp.
            (
                "Nov 26 10:40:03 firewall,info DROP input: in:ether1 out:(unknown 0), proto UDP, 192.0.2.1:5353->198.51.100.7:53, len 60",
                "2026-11-26T10:40:03Z", None, "udp 192.0.2.1:5353 > 198.51.100.7:53 ", Direction::Inbound, Action::Drop, true,
            ),
            // BSD-syslog tag style (the prefix as the tag), a TCP line without flags,
            // and a numeric protocol.
            (
                "2026-02-27T08:14:23+00:00 router FW_INPUT_NEW: FW_INPUT_NEW input: in:ether1 out:(unknown 0), connection-state:new proto TCP, 185.220.101.47:54321->203.0.113.1:22, len 60",
                "2026-02-27T08:14:23Z", Some("router"), "tcp 185.220.101.47:54321 > 203.0.113.1:22 ", Direction::Inbound, Action::Unknown, true,
            ),
            (
                "Nov 26 10:40:04 rb firewall,info REJECT forward: in:ether1 out:ether2, proto 47, 192.0.2.1->198.51.100.7, len 100",
                "2026-11-26T10:40:04Z", Some("rb"), "ip-47 192.0.2.1:- > 198.51.100.7:- ", Direction::Inbound, Action::Reject, false,
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
            if e.proto == Protocol::Icmp {
                assert_eq!(e.icmp_type, Some(8));
            }
        }
    }

    #[test]
    fn skips() {
        for line in [
            "",
            "2023-03-19T12:34:09.757188+01:00 10.120.127.1 system,error,critical login failure for user admin from 10.127.0.35 via winbox",
            "Nov 26 10:40:01 rb dhcp,info dhcp1 assigned 10.0.0.5 to 00:11:22:33:44:55",
        ] {
            assert_eq!(parser().parse_line(line), LineOutcome::Skip, "{line:?}");
        }
    }

    #[test]
    fn errors() {
        let h = "Nov 26 10:40:01 rb firewall,info input";
        for (line, want) in [
            ("firewall,info forward: in:ether1 out:bridge1, proto TCP (SYN), 1.2.3.4:1->1.2.3.5:2, len 60".to_string(), "missing field timestamp"),
            ("12:30:40 firewall,info input: in:ether1 out:(none), proto TCP (SYN), 1.2.3.4:1->1.2.3.5:2, len 60".to_string(), "missing field timestamp"),
            ("Nov 88 10:40:01 rb firewall,info input: in:e out:(none), proto UDP, 1.2.3.4:1->1.2.3.5:2".to_string(), "unreadable timestamp"),
            (format!("{h}: in:ether1, proto TCP"), "missing field out:"),
            (format!("{h}: in:ether1 out:(none), len 60"), "missing field proto"),
            (format!("{h}: in:ether1 out:(none), proto FOO, 1.2.3.4:1->1.2.3.5:2"), "invalid proto"),
            (format!("{h}: in:ether1 out:(none), proto TCP (SYN, 1.2.3.4:1->1.2.3.5:2"), "missing field )"),
            (format!("{h}: in:ether1 out:(none), proto TCP (SYN), 1.2.3.4:1"), "missing field ->"),
            (format!("{h}: in:ether1 out:(none), proto TCP (SYN), 1.2.3:1->1.2.3.5:2"), "invalid source"),
            (format!("{h}: in:ether1 out:(none), proto TCP (SYN), 1.2.3.4:1->[::1:2"), "invalid destination"),
            (format!("{h}: in:ether1 out:(none), proto UDP, 1.2.3.4:1->1.2.3.5:70000"), "invalid destination"),
            (format!("{h}: in:ether1 out:(none), proto TCP (SYN), 1.2.3.4->1.2.3.5:2"), "missing field source port"),
            (format!("{h}: in:ether1 out:(none), proto UDP, 1.2.3.4:1->1.2.3.5"), "missing field destination port"),
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
