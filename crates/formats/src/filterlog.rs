//! pfSense / OPNsense `filterlog` lines: the pf firewall's CSV log inside an RFC 3164
//! (`Sep 28 10:38:09 pfSense filterlog[123]: CSV`) or RFC 5424
//! (`<134>1 2022-09-06T18:37:34+02:00 host filterlog 69805 - [meta …] CSV`) syslog
//! line. Lines of other programs and lines without a syslog header are skipped.
//!
//! The CSV: `rule,subrule,anchor,tracker,interface,reason,action,direction,ipversion,`
//! then for IPv4 `tos,ecn,ttl,id,offset,flags,protonum,protoname,length,src,dst` and
//! for IPv6 `class,flowlabel,hoplimit,protoname,protonum,length,src,dst`, then for TCP
//! `srcport,dstport,datalen,tcpflags,seq,ack,window,urg,options`, for UDP
//! `srcport,dstport,datalen`, for ICMP the ICMP type as a word (`request`, `reply`,
//! `unreach`, …).
//!
//! Direction `in` is inbound and `out` outbound (pf logs a packet on each interface it
//! crosses). Action `pass` is accept, `block` drop, `reject` reject, anything else
//! unknown. The protocol is read from the protocol number. A TCP line needs its flag
//! letters (`S`, `SA`, `PA`, `FA`); what counts as a scan is then the usual rule
//! (inbound bare SYN, inbound UDP).

use std::net::IpAddr;

use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags};

use crate::syslog::{next_token, parse_header, YearResolver};
use crate::{FormatSpec, LineOutcome, LineParser, ParseError, ParserOptions};

pub(crate) struct Spec;
pub(crate) static SPEC: Spec = Spec;

impl FormatSpec for Spec {
    fn name(&self) -> &'static str {
        "filterlog"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["pfsense", "opnsense", "pf"]
    }
    fn description(&self) -> &'static str {
        "pfSense/OPNsense filterlog CSV in RFC 3164 or RFC 5424 syslog"
    }
    fn sniff(&self, line: &str) -> bool {
        let Some(i) = line.find("filterlog") else {
            return false;
        };
        let csv = line[i..].rsplit(' ').next().unwrap_or("");
        let dir = csv.split(',').nth(7);
        csv.split(',').count() >= 12 && matches!(dir, Some("in" | "out"))
    }
    fn parser(&self, opts: &ParserOptions) -> Box<dyn LineParser> {
        Box::new(FilterlogParser {
            years: YearResolver::new(opts.reference_time),
        })
    }
}

#[derive(Debug)]
pub struct FilterlogParser {
    years: YearResolver,
}

impl LineParser for FilterlogParser {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        let t = line.trim_end_matches(['\r', '\n']);
        if t.trim().is_empty() {
            return LineOutcome::Skip;
        }
        match self.parse(t) {
            Ok(o) => o,
            Err(e) => LineOutcome::Error(e),
        }
    }
}

/// Skips RFC 5424 structured data (`-` or one or more `[id k="v" …]`); returns the rest.
fn skip_structured_data(s: &str) -> Option<&str> {
    let s = s.trim_start_matches(' ');
    if let Some(r) = s.strip_prefix('-') {
        return Some(r);
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b'[' {
        let mut in_quotes = false;
        i += 1;
        loop {
            match b.get(i)? {
                b'\\' if in_quotes => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    (i > 0).then(|| s.get(i..)).flatten()
}

/// The pf ICMP type words that name a type number.
fn icmp_type(word: &str) -> Option<u8> {
    Some(match word {
        "reply" => 0,
        "redirect" => 5,
        "request" => 8,
        "timexceed" => 11,
        "paramprob" => 12,
        "tstamp" => 13,
        "tstampreply" => 14,
        "maskreply" => 18,
        w if w.starts_with("unreach") || w == "needfrag" => 3,
        _ => return None,
    })
}

impl FilterlogParser {
    fn parse<'l>(&mut self, line: &'l str) -> Result<LineOutcome<'l>, ParseError> {
        let Some(h) = parse_header(line, &mut self.years)? else {
            return Ok(LineOutcome::Skip);
        };
        let Some((tag, rest)) = next_token(h.rest) else {
            return Ok(LineOutcome::Skip);
        };
        let program = tag.split(['[', ':']).next().unwrap_or("");
        if program != "filterlog" {
            return Ok(LineOutcome::Skip);
        }
        let msg = if tag.ends_with(':') {
            rest
        } else {
            // RFC 5424: PROCID MSGID STRUCTURED-DATA MSG.
            let (_procid, r) = next_token(rest).ok_or(ParseError::MissingField("csv"))?;
            let (_msgid, r) = next_token(r).ok_or(ParseError::MissingField("csv"))?;
            skip_structured_data(r).ok_or(ParseError::MissingField("csv"))?
        };
        let msg = msg.trim_matches(' ').trim_start_matches('\u{feff}');
        if msg.is_empty() {
            return Err(ParseError::MissingField("csv"));
        }
        let event = parse_csv(msg, h.time)?;
        Ok(LineOutcome::Event {
            event,
            host: h.host,
        })
    }
}

fn parse_csv(msg: &str, time: scanwatch_event::Timestamp) -> Result<Event, ParseError> {
    let f: Vec<&str> = msg.split(',').collect();
    let get =
        |i: usize, name: &'static str| f.get(i).copied().ok_or(ParseError::MissingField(name));
    let action = match get(6, "action")? {
        "pass" => Action::Accept,
        "block" => Action::Drop,
        "reject" => Action::Reject,
        _ => Action::Unknown,
    };
    let direction = match get(7, "direction")? {
        "in" => Direction::Inbound,
        "out" => Direction::Outbound,
        other => return Err(ParseError::invalid("direction", other)),
    };
    // (protocol number, source, destination, first protocol-specific field)
    let (proto_at, src_at, next) = match get(8, "ip version")? {
        "4" => (15, 18, 20),
        "6" => (13, 15, 17),
        other => return Err(ParseError::invalid("ip version", other)),
    };
    let num = get(proto_at, "protocol")?;
    let proto = num
        .parse::<u8>()
        .map(Protocol::from_number)
        .map_err(|_| ParseError::invalid("protocol", num))?;
    let ip = |i: usize, name: &'static str| -> Result<IpAddr, ParseError> {
        let v = get(i, name)?;
        v.parse().map_err(|_| ParseError::invalid(name, v))
    };
    let src = ip(src_at, "source ip")?;
    let dst = ip(src_at + 1, "destination ip")?;
    let port = |i: usize, name: &'static str| -> Result<u16, ParseError> {
        let v = get(i, name)?;
        v.parse().map_err(|_| ParseError::invalid(name, v))
    };
    let (src_port, dst_port) = if proto.has_ports() {
        (
            Some(port(next, "source port")?),
            Some(port(next + 1, "destination port")?),
        )
    } else {
        (None, None)
    };
    let (flags, flags_known) = if proto == Protocol::Tcp {
        let v = get(next + 3, "tcp flags")?;
        if v.is_empty() {
            return Err(ParseError::MissingField("tcp flags"));
        }
        (
            TcpFlags::parse_letters(v).ok_or_else(|| ParseError::invalid("tcp flags", v))?,
            true,
        )
    } else {
        (TcpFlags(0), false)
    };
    let icmp_type = if proto == Protocol::Icmp {
        f.get(next).and_then(|w| icmp_type(w))
    } else {
        None
    };
    Ok(Event {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_event::parse_rfc3339;

    fn parser() -> FilterlogParser {
        FilterlogParser {
            years: YearResolver::new(parse_rfc3339("2026-11-26T00:00:00Z").unwrap()),
        }
    }

    const V4_SYN: &str = "53,,,1000102631,em0,match,block,in,4,0x0,,64,600,0,none,6,tcp,44,10.0.2.2,10.0.2.15,53792,22,0,S,31552001,,65535,,mss";

    #[test]
    fn events() {
        // (line, proto, src, dst, dport, flags, direction, action, host, time, counts)
        let cases = [
            (
                format!("Sep 28 10:38:24 pfSense filterlog: {V4_SYN}"),
                Protocol::Tcp, "10.0.2.2", "10.0.2.15", Some(22), "S",
                Direction::Inbound, Action::Drop, Some("pfSense"), "2026-09-28T10:38:24Z", true,
            ),
            (
                "Sep 28 10:38:41 pfSense filterlog[123]: 6,,,1000102434,em0,match,block,out,4,0x0,,64,0,0,DF,6,tcp,40,10.0.2.15,10.0.2.2,22,53742,0,FA,3617062173,29633380,65535,,".to_string(),
                Protocol::Tcp, "10.0.2.15", "10.0.2.2", Some(53742), "FA",
                Direction::Outbound, Action::Drop, Some("pfSense"), "2026-09-28T10:38:41Z", false,
            ),
            (
                "<134>1 2022-09-06T18:37:34+02:00 opnsense filterlog 69805 - [meta sequenceId=\"26\"] 103,,,40b9,re0,match,pass,in,4,0x0,,116,11172,0,none,17,udp,48,68.41.165.77,10.0.0.200,64752,51918,28".to_string(),
                Protocol::Udp, "68.41.165.77", "10.0.0.200", Some(51918), "",
                Direction::Inbound, Action::Accept, Some("opnsense"), "2022-09-06T16:37:34Z", true,
            ),
            (
                "<134>1 2025-11-06T11:42:14.270789+00:00 fw filterlog 92653 - - 621,,,1644355515,vtnet0.10,match,block,in,6,0x00,0x07c63,64,TCP,6,44,fdfd:ace:ace:10::69,fdfd:ace:ace:5::6,65382,443,0,S,1927530165,,0,,mss;nop".to_string(),
                Protocol::Tcp, "fdfd:ace:ace:10::69", "fdfd:ace:ace:5::6", Some(443), "S",
                Direction::Inbound, Action::Drop, Some("fw"), "2025-11-06T11:42:14.270Z", true,
            ),
            // Structured data with a quoted `]` and two elements.
            (
                "<134>1 2022-09-06T18:37:34Z h filterlog 1 - [a x=\"]\\\"\"][b] 1,,,t,re0,match,reject,in,4,0x0,,64,1,0,none,1,icmp,84,192.0.2.1,192.0.2.2,request,1,2".to_string(),
                Protocol::Icmp, "192.0.2.1", "192.0.2.2", None, "",
                Direction::Inbound, Action::Reject, Some("h"), "2022-09-06T18:37:34Z", false,
            ),
            // No host field; an unknown action word.
            (
                "Sep 28 10:38:24 filterlog: 1,,,t,em0,match,nat,in,4,0x0,,64,1,0,none,47,gre,84,192.0.2.1,192.0.2.2".to_string(),
                Protocol::Other(47), "192.0.2.1", "192.0.2.2", None, "",
                Direction::Inbound, Action::Unknown, None, "2026-09-28T10:38:24Z", false,
            ),
        ];
        for (line, proto, src, dst, dport, flags, dir, action, host, time, counts) in cases {
            match parser().parse_line(&line) {
                LineOutcome::Event { event: e, host: h } => {
                    assert_eq!(e.proto, proto, "{line}");
                    assert_eq!(e.src.to_string(), src, "{line}");
                    assert_eq!(e.dst.to_string(), dst, "{line}");
                    assert_eq!(e.dst_port, dport, "{line}");
                    assert_eq!(e.flags.letters(), flags, "{line}");
                    assert_eq!((e.direction, e.action), (dir, action), "{line}");
                    assert_eq!(h, host, "{line}");
                    assert_eq!(e.time.to_rfc3339(), time, "{line}");
                    assert_eq!(e.is_unsolicited(), counts, "{line}");
                    if proto == Protocol::Icmp {
                        assert_eq!(e.icmp_type, Some(8));
                    }
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn skips() {
        for line in [
            "",
            "  ",
            "Sep 28 10:38:24 pfSense sshd[12]: Accepted publickey for root",
            "Sep 28 10:38:24 pfSense",
            "not syslog at all",
            "<134>1 2022-09-06T18:37:34Z opnsense configd.py 1 - - hello",
        ] {
            assert_eq!(parser().parse_line(line), LineOutcome::Skip, "{line:?}");
        }
    }

    #[test]
    fn errors() {
        let h = "Sep 28 10:38:24 pfSense filterlog:";
        let with = |csv: &str| format!("{h} {csv}");
        for (line, want) in [
            ("Sep 88 10:38:24 pfSense filterlog: 1".to_string(), "unreadable timestamp"),
            (format!("{h} "), "missing field csv"),
            ("<134>1 2022-09-06T18:37:34Z h filterlog 1".to_string(), "missing field csv"),
            ("<134>1 2022-09-06T18:37:34Z h filterlog 1 - [meta x=\"1\"".to_string(), "missing field csv"),
            ("<134>1 2022-09-06T18:37:34Z h filterlog 1 - x 1,2".to_string(), "missing field csv"),
            (with("1,2,3"), "missing field action"),
            (with("1,,,t,em0,match,block"), "missing field direction"),
            (with("1,,,t,em0,match,block,sideways,4"), "invalid direction"),
            (with("1,,,t,em0,match,block,in"), "missing field ip version"),
            (with("1,,,t,em0,match,block,in,5"), "invalid ip version"),
            (with("1,,,t,em0,match,block,in,4,0x0,,64,1,0,none"), "missing field protocol"),
            (with("1,,,t,em0,match,block,in,4,0x0,,64,1,0,none,tcp,tcp"), "invalid protocol"),
            (with("1,,,t,em0,match,block,in,4,0x0,,64,1,0,none,6,tcp,40"), "missing field source ip"),
            (with("1,,,t,em0,match,block,in,4,0x0,,64,1,0,none,6,tcp,40,1.2.3"), "invalid source ip"),
            (with("1,,,t,em0,match,block,in,4,0x0,,64,1,0,none,6,tcp,40,1.2.3.4,x"), "invalid destination ip"),
            (with("1,,,t,em0,match,block,in,4,0x0,,64,1,0,none,6,tcp,40,1.2.3.4,1.2.3.5"), "missing field source port"),
            (with("1,,,t,em0,match,block,in,4,0x0,,64,1,0,none,6,tcp,40,1.2.3.4,1.2.3.5,1,99999"), "invalid destination port"),
            (with("1,,,t,em0,match,block,in,4,0x0,,64,1,0,none,6,tcp,40,1.2.3.4,1.2.3.5,1,2,0"), "missing field tcp flags"),
            (with("1,,,t,em0,match,block,in,4,0x0,,64,1,0,none,6,tcp,40,1.2.3.4,1.2.3.5,1,2,0,,1"), "missing field tcp flags"),
            (with("1,,,t,em0,match,block,in,4,0x0,,64,1,0,none,6,tcp,40,1.2.3.4,1.2.3.5,1,2,0,SZ,1"), "invalid tcp flags"),
            (with("1,,,t,em0,match,block,in,6,0x00,0x0,64,udp,17,73,::1"), "missing field destination ip"),
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
