//! Zeek `conn.log` in the classic TSV form: tab-separated columns named by a
//! `#fields` header line, `-` for an unset value.
//!
//! The parser keeps the column order of the last `#fields` line; lines before any
//! header use Zeek's default order (`ts uid id.orig_h id.orig_p id.resp_h id.resp_p
//! proto service duration orig_bytes resp_bytes conn_state local_orig local_resp
//! missed_bytes history …`). Other `#` lines (`#separator`, `#types`, `#close`, btest's
//! `### …`) are skipped. Only the tab separator is supported. A `#fields` line
//! without `ts`, `id.orig_h`, `id.orig_p`, `id.resp_h`, `id.resp_p` or `proto` is an
//! error and leaves the column order as it was.
//!
//! Each row is one connection, made into one event from the originator to the
//! responder: `ts` (epoch seconds with a fraction; a masked `XXXXXXXXXX.XXXXXX`, as in
//! Zeek's test baselines, is a per-line timestamp error), `proto` (`tcp`, `udp`,
//! `icmp`, which is ICMPv6 for IPv6 addresses; `unknown_transport` uses the `ip_proto`
//! column). For ICMP Zeek puts the type in `id.orig_p`.
//!
//! The scan rule: a TCP connection counts as a scan attempt when its `history` starts
//! with `S` (the originator's SYN) and has no `h` (no SYN-ACK from the responder
//! seen). Such an event gets the flags of a bare SYN. Any other TCP row gets the
//! originator's flags from the uppercase history letters (`S`, `A`, `F`, `R`, with
//! `D` as PSH) plus ACK, so it does not count; a row without `history` gets known,
//! empty flags and does not count either. UDP rows count; direction is unknown
//! (treated as inbound) and the action unknown.

use std::net::IpAddr;

use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};

use crate::{FormatSpec, LineOutcome, LineParser, ParseError, ParserOptions};

pub(crate) struct Spec;
pub(crate) static SPEC: Spec = Spec;

impl FormatSpec for Spec {
    fn name(&self) -> &'static str {
        "zeek"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["zeek-conn", "bro"]
    }
    fn description(&self) -> &'static str {
        "Zeek conn.log (TSV with #fields header)"
    }
    fn sniff(&self, line: &str) -> bool {
        let mut f = line.split('\t');
        let ts = f.next().unwrap_or("");
        let uid = f.next().unwrap_or("");
        parse_ts(ts).is_some()
            && uid.starts_with('C')
            && uid.len() >= 15
            && line.split('\t').count() >= 12
    }
    fn parser(&self, _opts: &ParserOptions) -> Box<dyn LineParser> {
        Box::new(ZeekParser::default())
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Columns {
    ts: usize,
    orig_h: usize,
    orig_p: usize,
    resp_h: usize,
    resp_p: usize,
    proto: usize,
    history: Option<usize>,
    ip_proto: Option<usize>,
}

impl Default for Columns {
    fn default() -> Columns {
        Columns {
            ts: 0,
            orig_h: 2,
            orig_p: 3,
            resp_h: 4,
            resp_p: 5,
            proto: 6,
            history: Some(15),
            ip_proto: None,
        }
    }
}

impl Columns {
    fn from_header(names: &str) -> Result<Columns, ParseError> {
        let names: Vec<&str> = names.split('\t').map(str::trim).collect();
        let find = |n: &str| names.iter().position(|x| *x == n);
        let need = |n: &'static str| find(n).ok_or(ParseError::MissingField(n));
        Ok(Columns {
            ts: need("ts")?,
            orig_h: need("id.orig_h")?,
            orig_p: need("id.orig_p")?,
            resp_h: need("id.resp_h")?,
            resp_p: need("id.resp_p")?,
            proto: need("proto")?,
            history: find("history"),
            ip_proto: find("ip_proto"),
        })
    }
}

#[derive(Debug, Default)]
pub struct ZeekParser {
    cols: Columns,
}

impl LineParser for ZeekParser {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        let t = line.trim_end_matches(['\r', '\n']);
        if t.trim().is_empty() {
            return LineOutcome::Skip;
        }
        if let Some(h) = t.strip_prefix('#') {
            if let Some(names) = h.strip_prefix("fields\t") {
                match Columns::from_header(names) {
                    Ok(c) => self.cols = c,
                    Err(e) => return LineOutcome::Error(e),
                }
            }
            return LineOutcome::Skip;
        }
        match parse(t, &self.cols) {
            Ok(event) => LineOutcome::Event { event, host: None },
            Err(e) => LineOutcome::Error(e),
        }
    }
}

/// `1521911721.255387` (seconds since the epoch) to milliseconds.
pub(crate) fn parse_ts(s: &str) -> Option<Timestamp> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || secs.len() > 12 || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut ms = 0i64;
    let mut scale = 100;
    for b in frac.bytes().take(3) {
        ms += i64::from(b - b'0') * scale;
        scale /= 10;
    }
    Some(Timestamp(secs * 1000 + ms))
}

/// TCP flags for a row, following the scan rule in the module docs.
pub(crate) fn flags_from_history(history: Option<&str>) -> TcpFlags {
    let Some(h) = history else {
        return TcpFlags(0);
    };
    if h.starts_with('S') && !h.contains('h') {
        return TcpFlags(TcpFlags::SYN);
    }
    let mut f = TcpFlags::ACK;
    for c in h.bytes() {
        f |= match c {
            b'S' => TcpFlags::SYN,
            b'A' => TcpFlags::ACK,
            b'F' => TcpFlags::FIN,
            b'R' => TcpFlags::RST,
            b'D' => TcpFlags::PSH,
            _ => 0,
        };
    }
    TcpFlags(f)
}

fn parse(line: &str, c: &Columns) -> Result<Event, ParseError> {
    let f: Vec<&str> = line.split('\t').collect();
    let get = |i: usize, name: &'static str| -> Result<&str, ParseError> {
        match f.get(i).copied() {
            Some(v) if v != "-" && !v.is_empty() => Ok(v),
            _ => Err(ParseError::MissingField(name)),
        }
    };
    let opt = |i: Option<usize>| {
        i.and_then(|i| f.get(i).copied())
            .filter(|v| !v.is_empty() && *v != "-" && *v != "(empty)")
    };
    let ts = get(c.ts, "ts")?;
    let time = parse_ts(ts).ok_or_else(|| ParseError::Timestamp(ts.chars().take(40).collect()))?;
    let ip = |i: usize, name: &'static str| -> Result<IpAddr, ParseError> {
        let v = get(i, name)?;
        v.parse().map_err(|_| ParseError::invalid(name, v))
    };
    let src = ip(c.orig_h, "id.orig_h")?;
    let dst = ip(c.resp_h, "id.resp_h")?;
    let p = get(c.proto, "proto")?;
    let proto = match p {
        "icmp" if src.is_ipv6() => Protocol::Icmpv6,
        "unknown_transport" => {
            let n = opt(c.ip_proto).ok_or(ParseError::MissingField("ip_proto"))?;
            n.parse::<u8>()
                .map(Protocol::from_number)
                .map_err(|_| ParseError::invalid("ip_proto", n))?
        }
        other => Protocol::parse(other).ok_or_else(|| ParseError::invalid("proto", other))?,
    };
    let port = |i: usize, name: &'static str| -> Result<u16, ParseError> {
        let v = get(i, name)?;
        v.parse().map_err(|_| ParseError::invalid(name, v))
    };
    let (src_port, dst_port, icmp_type) = if proto.has_ports() {
        (
            Some(port(c.orig_p, "id.orig_p")?),
            Some(port(c.resp_p, "id.resp_p")?),
            None,
        )
    } else if matches!(proto, Protocol::Icmp | Protocol::Icmpv6) {
        (
            None,
            None,
            opt(Some(c.orig_p)).and_then(|t| t.parse::<u8>().ok()),
        )
    } else {
        (None, None, None)
    };
    let (flags, flags_known) = if proto == Protocol::Tcp {
        (flags_from_history(opt(c.history)), true)
    } else {
        (TcpFlags(0), false)
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
        direction: Direction::Unknown,
        action: Action::Unknown,
        count: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &str = "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\tip_proto";

    #[allow(clippy::too_many_arguments)] // one argument a column
    fn row(
        ts: &str,
        src: &str,
        sp: &str,
        dst: &str,
        dp: &str,
        proto: &str,
        hist: &str,
        ipp: &str,
    ) -> String {
        format!("{ts}\tCabc\t{src}\t{sp}\t{dst}\t{dp}\t{proto}\t-\t0.1\t0\t0\tS0\tT\tF\t0\t{hist}\t1\t40\t0\t0\t-\t{ipp}")
    }

    fn ev(p: &mut ZeekParser, line: &str) -> Event {
        match p.parse_line(line) {
            LineOutcome::Event { event, host: None } => event,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn events() {
        // (history or proto row, proto, flags, counts)
        let t = "1521911721.255387";
        for (line, proto, flags, icmp, counts) in [
            (
                row(t, "10.0.0.1", "50817", "10.0.0.2", "23", "tcp", "S", "6"),
                Protocol::Tcp,
                "S",
                None,
                true,
            ),
            (
                row(t, "10.0.0.1", "50817", "10.0.0.2", "23", "tcp", "Sr", "6"),
                Protocol::Tcp,
                "S",
                None,
                true,
            ),
            (
                row(
                    t, "10.0.0.1", "50817", "10.0.0.2", "23", "tcp", "ShADTdtr", "6",
                ),
                Protocol::Tcp,
                "SPA",
                None,
                false,
            ),
            (
                row(t, "10.0.0.1", "50817", "10.0.0.2", "23", "tcp", "Sh", "6"),
                Protocol::Tcp,
                "SA",
                None,
                false,
            ),
            (
                row(
                    t, "10.0.0.1", "50817", "10.0.0.2", "23", "tcp", "^dtfAR", "6",
                ),
                Protocol::Tcp,
                "RA",
                None,
                false,
            ),
            (
                row(t, "10.0.0.1", "50817", "10.0.0.2", "23", "tcp", "-", "6"),
                Protocol::Tcp,
                "",
                None,
                false,
            ),
            (
                row(t, "10.0.0.1", "5353", "10.0.0.2", "53", "udp", "D", "17"),
                Protocol::Udp,
                "",
                None,
                true,
            ),
            (
                row(t, "10.0.0.1", "8", "10.0.0.2", "0", "icmp", "-", "1"),
                Protocol::Icmp,
                "",
                Some(8),
                false,
            ),
            (
                row(
                    t,
                    "2001:db8::1",
                    "128",
                    "2001:db8::2",
                    "129",
                    "icmp",
                    "-",
                    "58",
                ),
                Protocol::Icmpv6,
                "",
                Some(128),
                false,
            ),
            (
                row(
                    t,
                    "10.0.0.1",
                    "0",
                    "10.0.0.2",
                    "0",
                    "unknown_transport",
                    "-",
                    "47",
                ),
                Protocol::Other(47),
                "",
                None,
                false,
            ),
        ] {
            let mut p = ZeekParser::default();
            assert_eq!(p.parse_line(FIELDS), LineOutcome::Skip);
            let e = ev(&mut p, &line);
            assert_eq!(e.proto, proto, "{line}");
            assert_eq!(e.flags.letters(), flags, "{line}");
            assert_eq!(e.icmp_type, icmp, "{line}");
            assert_eq!(e.is_unsolicited(), counts, "{line}");
            assert_eq!(e.time.to_rfc3339(), "2018-03-24T17:15:21.255Z");
            assert_eq!(e.src_port.is_some(), proto.has_ports(), "{line}");
        }
    }

    #[test]
    fn header_order_and_default() {
        // Before any header: Zeek's default order (history at column 15).
        let mut p = ZeekParser::default();
        let e = ev(
            &mut p,
            &row("1.5", "10.0.0.1", "1", "10.0.0.2", "22", "tcp", "S", "6"),
        );
        assert_eq!((e.dst_port, e.time.0), (Some(22), 1500));
        // A reordered header.
        assert_eq!(
            p.parse_line("#fields\tproto\tid.resp_p\tid.resp_h\tid.orig_p\tid.orig_h\tts"),
            LineOutcome::Skip
        );
        let e = ev(&mut p, "udp\t53\t10.0.0.2\t5353\t10.0.0.1\t2");
        assert_eq!(
            (e.src.to_string().as_str(), e.dst_port, e.time.0),
            ("10.0.0.1", Some(53), 2000)
        );
        // A header without a needed column is an error, and the order stays.
        assert_eq!(
            p.parse_line("#fields\tts\tuid"),
            LineOutcome::Error(ParseError::MissingField("id.orig_h"))
        );
        let e = ev(&mut p, "udp\t53\t10.0.0.2\t5353\t10.0.0.1\t2");
        assert_eq!(e.dst_port, Some(53));
    }

    #[test]
    fn skips() {
        let mut p = ZeekParser::default();
        for line in [
            "",
            "  ",
            "#separator \\x09",
            "### BTest baseline",
            "#close\t2019-11-08-11-44-16",
            "#types\ttime",
        ] {
            assert_eq!(p.parse_line(line), LineOutcome::Skip, "{line:?}");
        }
    }

    #[test]
    fn errors() {
        let t = "1521911721.255387";
        for (line, want) in [
            (
                row(
                    "XXXXXXXXXX.XXXXXX",
                    "10.0.0.1",
                    "1",
                    "10.0.0.2",
                    "2",
                    "tcp",
                    "S",
                    "6",
                ),
                "unreadable timestamp",
            ),
            (
                row("-", "10.0.0.1", "1", "10.0.0.2", "2", "tcp", "S", "6"),
                "missing field ts",
            ),
            (
                row("1.2.3", "10.0.0.1", "1", "10.0.0.2", "2", "tcp", "S", "6"),
                "unreadable timestamp",
            ),
            (
                row(
                    "9999999999999",
                    "10.0.0.1",
                    "1",
                    "10.0.0.2",
                    "2",
                    "tcp",
                    "S",
                    "6",
                ),
                "unreadable timestamp",
            ),
            (
                row(t, "10.0.0", "1", "10.0.0.2", "2", "tcp", "S", "6"),
                "invalid id.orig_h",
            ),
            (
                row(t, "10.0.0.1", "1", "-", "2", "tcp", "S", "6"),
                "missing field id.resp_h",
            ),
            (
                row(t, "10.0.0.1", "1", "10.0.0.2", "2", "-", "S", "6"),
                "missing field proto",
            ),
            (
                row(t, "10.0.0.1", "1", "10.0.0.2", "2", "sctp2", "S", "6"),
                "invalid proto",
            ),
            (
                row(
                    t,
                    "10.0.0.1",
                    "1",
                    "10.0.0.2",
                    "2",
                    "unknown_transport",
                    "S",
                    "-",
                ),
                "missing field ip_proto",
            ),
            (
                row(
                    t,
                    "10.0.0.1",
                    "1",
                    "10.0.0.2",
                    "2",
                    "unknown_transport",
                    "S",
                    "300",
                ),
                "invalid ip_proto",
            ),
            (
                row(t, "10.0.0.1", "x", "10.0.0.2", "2", "tcp", "S", "6"),
                "invalid id.orig_p",
            ),
            (
                row(t, "10.0.0.1", "1", "10.0.0.2", "70000", "udp", "S", "6"),
                "invalid id.resp_p",
            ),
            ("1.0\tC\t10.0.0.1".to_string(), "missing field id.resp_h"),
        ] {
            let mut p = ZeekParser::default();
            assert_eq!(p.parse_line(FIELDS), LineOutcome::Skip);
            match p.parse_line(&line) {
                LineOutcome::Error(e) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with(want), "{line}: {msg}");
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
