//! Zeek `conn.log` written as JSON (`LogAscii::use_json=T`, or the
//! json-streaming-logs package): one JSON object a connection, with the same fields
//! as the TSV log (`ts`, `uid`, `id.orig_h`, `id.orig_p`, `id.resp_h`, `id.resp_p`,
//! `proto`, `conn_state`, `history`, `ip_proto`, …). Unset fields are absent (or
//! `null`).
//!
//! `ts` may be epoch seconds (a JSON number, Zeek's default `JSON::TS_EPOCH`), an
//! ISO 8601 string (`JSON::TS_ISO8601`, `"2011-08-15T03:37:11.992151Z"`), or integer
//! milliseconds (`JSON::TS_MILLIS`; an integer of 10^11 or more is read as
//! milliseconds, a smaller one as seconds).
//!
//! Everything else follows the TSV `zeek` format, so both encodings give the same
//! events: one event from originator to responder; `icmp` with IPv6 addresses is
//! ICMPv6 and the ICMP type is `id.orig_p`; `unknown_transport` uses `ip_proto`; the
//! same scan rule on `history` (a TCP connection counts when its history starts with
//! `S` and has no `h`); UDP counts; direction and action unknown.
//!
//! Lines whose `_path` names another log (`dns`, `http`, … in a json-streaming-logs
//! file that mixes them) are skipped, as are blank lines.

use std::net::IpAddr;

use scanwatch_event::{parse_rfc3339, Action, Direction, Event, Protocol, TcpFlags, Timestamp};
use serde::Deserialize;

use crate::suricata::Str;
use crate::zeek::{flags_from_history, parse_ts};
use crate::{FormatSpec, LineOutcome, LineParser, ParseError, ParserOptions};

pub(crate) struct Spec;
pub(crate) static SPEC: Spec = Spec;

impl FormatSpec for Spec {
    fn name(&self) -> &'static str {
        "zeek-json"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["zeek-conn-json", "bro-json"]
    }
    fn description(&self) -> &'static str {
        "Zeek conn.log as JSON lines"
    }
    fn sniff(&self, line: &str) -> bool {
        let t = line.trim_start();
        t.starts_with('{')
            && t.contains("\"id.orig_h\"")
            && t.contains("\"id.resp_p\"")
            && (t.contains("\"conn_state\"") || t.contains("\"_path\":\"conn\""))
    }
    fn parser(&self, _opts: &ParserOptions) -> Box<dyn LineParser> {
        Box::new(ZeekJsonParser)
    }
}

#[derive(Debug, Default)]
pub struct ZeekJsonParser;

/// `ts`: epoch seconds as a number, integer milliseconds, or an ISO 8601 string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Ts<'a> {
    Int(u64),
    Float(f64),
    Text(#[serde(borrow)] Str<'a>),
}

#[derive(Deserialize)]
struct Conn<'a> {
    #[serde(borrow)]
    ts: Option<Ts<'a>>,
    #[serde(borrow, rename = "_path")]
    path: Option<Str<'a>>,
    #[serde(borrow, rename = "id.orig_h")]
    orig_h: Option<Str<'a>>,
    #[serde(rename = "id.orig_p")]
    orig_p: Option<u64>,
    #[serde(borrow, rename = "id.resp_h")]
    resp_h: Option<Str<'a>>,
    #[serde(rename = "id.resp_p")]
    resp_p: Option<u64>,
    #[serde(borrow)]
    proto: Option<Str<'a>>,
    #[serde(borrow)]
    history: Option<Str<'a>>,
    ip_proto: Option<u64>,
}

impl LineParser for ZeekJsonParser {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        if line.trim().is_empty() {
            return LineOutcome::Skip;
        }
        match parse(line) {
            Ok(Some(event)) => LineOutcome::Event { event, host: None },
            Ok(None) => LineOutcome::Skip,
            Err(e) => LineOutcome::Error(e),
        }
    }
}

/// Integer `ts` values from this on are milliseconds (10^11 s is the year 5138).
const MILLIS_FROM: u64 = 100_000_000_000;

fn time(ts: &Ts<'_>) -> Result<Timestamp, ParseError> {
    match ts {
        Ts::Int(n) => {
            let ms = if *n >= MILLIS_FROM {
                i64::try_from(*n).ok()
            } else {
                i64::try_from(*n).ok().and_then(|s| s.checked_mul(1000))
            };
            ms.map(Timestamp)
                .ok_or_else(|| ParseError::timestamp(&n.to_string()))
        }
        // Rust prints the shortest form that reads back as the same number, which is
        // what Zeek wrote: the TSV reader then cuts it to milliseconds the same way.
        Ts::Float(f) => {
            let s = f.to_string();
            parse_ts(&s).ok_or_else(|| ParseError::timestamp(&s))
        }
        Ts::Text(s) => parse_rfc3339(s)
            .or_else(|| parse_ts(s))
            .ok_or_else(|| ParseError::timestamp(s)),
    }
}

fn parse(line: &str) -> Result<Option<Event>, ParseError> {
    let c: Conn<'_> =
        serde_json::from_str(line).map_err(|e| ParseError::invalid("json", &e.to_string()))?;
    if c.path.as_deref().is_some_and(|p| p != "conn") {
        return Ok(None);
    }
    let time = time(c.ts.as_ref().ok_or(ParseError::MissingField("ts"))?)?;
    let ip = |name: &'static str, v: &Option<Str<'_>>| -> Result<IpAddr, ParseError> {
        let v = v.as_deref().ok_or(ParseError::MissingField(name))?;
        v.parse().map_err(|_| ParseError::invalid(name, v))
    };
    let src = ip("id.orig_h", &c.orig_h)?;
    let dst = ip("id.resp_h", &c.resp_h)?;
    let p = c
        .proto
        .as_deref()
        .ok_or(ParseError::MissingField("proto"))?;
    let proto = match p {
        "icmp" if src.is_ipv6() => Protocol::Icmpv6,
        "unknown_transport" => {
            let n = c.ip_proto.ok_or(ParseError::MissingField("ip_proto"))?;
            u8::try_from(n)
                .map(Protocol::from_number)
                .map_err(|_| ParseError::invalid("ip_proto", &n.to_string()))?
        }
        other => Protocol::parse(other).ok_or_else(|| ParseError::invalid("proto", other))?,
    };
    let port = |name: &'static str, v: Option<u64>| -> Result<u16, ParseError> {
        let v = v.ok_or(ParseError::MissingField(name))?;
        u16::try_from(v).map_err(|_| ParseError::invalid(name, &v.to_string()))
    };
    let (src_port, dst_port, icmp_type) = if proto.has_ports() {
        (
            Some(port("id.orig_p", c.orig_p)?),
            Some(port("id.resp_p", c.resp_p)?),
            None,
        )
    } else if matches!(proto, Protocol::Icmp | Protocol::Icmpv6) {
        (None, None, c.orig_p.and_then(|t| u8::try_from(t).ok()))
    } else {
        (None, None, None)
    };
    let (flags, flags_known) = if proto == Protocol::Tcp {
        let history = c.history.as_deref().filter(|h| !h.is_empty());
        (flags_from_history(history), true)
    } else {
        (TcpFlags(0), false)
    };
    Ok(Some(Event {
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
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> LineOutcome<'_> {
        ZeekJsonParser.parse_line(line)
    }

    fn ev(line: &str) -> Event {
        match p(line) {
            LineOutcome::Event { event, host: None } => event,
            other => panic!("{line}: {other:?}"),
        }
    }

    // Three conn.log lines with ISO 8601 `ts`, from the VAST (Tenzir) documentation's
    // JSON import example (CTU-13 capture).
    const ICMP: &str = r#"{"ts":"2011-08-15T03:36:16.748830Z","uid":"CKmcUPexVMCAAkl6h","id.orig_h":"210.87.254.81","id.orig_p":3,"id.resp_h":"147.32.84.165","id.resp_p":1,"proto":"icmp","conn_state":"OTH","missed_bytes":0,"orig_pkts":1,"orig_ip_bytes":56,"resp_pkts":0,"resp_ip_bytes":0,"tunnel_parents":[]}"#;
    const SYN: &str = r#"{"ts":"2011-08-15T03:37:11.992151Z","uid":"CTluup1eVngpaS6e2i","id.orig_h":"147.32.84.165","id.orig_p":3923,"id.resp_h":"218.108.143.87","id.resp_p":22,"proto":"tcp","duration":3.006088,"orig_bytes":0,"resp_bytes":0,"conn_state":"S0","missed_bytes":0,"history":"S","orig_pkts":4,"orig_ip_bytes":192,"resp_pkts":0,"resp_ip_bytes":0,"tunnel_parents":[]}"#;

    #[test]
    fn events() {
        let e = ev(ICMP);
        assert_eq!(
            (e.proto, e.icmp_type, e.dst_port),
            (Protocol::Icmp, Some(3), None)
        );
        assert_eq!(e.time.to_rfc3339(), "2011-08-15T03:36:16.748Z");
        assert!(!e.is_unsolicited());
        let e = ev(SYN);
        assert_eq!(e.src.to_string(), "147.32.84.165");
        assert_eq!((e.src_port, e.dst_port), (Some(3923), Some(22)));
        assert_eq!((e.flags.letters().as_str(), e.flags_known), ("S", true));
        assert_eq!(
            (e.direction, e.action),
            (Direction::Unknown, Action::Unknown)
        );
        assert!(e.is_unsolicited());

        // The same rules as the TSV format, on the same histories.
        let with = |ts: &str, proto: &str, hist: &str, extra: &str| {
            format!(
                r#"{{"ts":{ts},"uid":"Cx","id.orig_h":"10.0.0.1","id.orig_p":50817,"id.resp_h":"10.0.0.2","id.resp_p":23,"proto":"{proto}","conn_state":"S0"{hist}{extra}}}"#
            )
        };
        for (hist, letters, counts) in [
            (r#","history":"Sr""#, "S", true),
            (r#","history":"ShADTdtr""#, "SPA", false),
            (r#","history":"Sh""#, "SA", false),
            (r#","history":"^dtfAR""#, "RA", false),
            ("", "", false),
            (r#","history":null"#, "", false),
        ] {
            let line = with("1521911721.255387", "tcp", hist, "");
            let e = ev(&line);
            assert_eq!(e.flags.letters(), letters, "{line}");
            assert_eq!(e.is_unsolicited(), counts, "{line}");
            assert_eq!(e.time.to_rfc3339(), "2018-03-24T17:15:21.255Z", "{line}");
        }
        // Timestamps: integer seconds, integer milliseconds, epoch in a string.
        for (ts, want) in [
            ("1521911721", "2018-03-24T17:15:21Z"),
            ("1521911721255", "2018-03-24T17:15:21.255Z"),
            (r#""1521911721.255387""#, "2018-03-24T17:15:21.255Z"),
            (
                r#""2018-03-24T17:15:21.255387+01:00""#,
                "2018-03-24T16:15:21.255Z",
            ),
        ] {
            let e = ev(&with(ts, "udp", "", ""));
            assert_eq!(e.time.to_rfc3339(), want, "{ts}");
            assert!(e.is_unsolicited());
        }
        let v6 = r#"{"ts":1.5,"id.orig_h":"2001:db8::1","id.orig_p":128,"id.resp_h":"2001:db8::2","id.resp_p":129,"proto":"icmp","conn_state":"OTH"}"#;
        let e = ev(v6);
        assert_eq!(
            (e.proto, e.icmp_type, e.time.0),
            (Protocol::Icmpv6, Some(128), 1500)
        );
        let gre = with("1", "unknown_transport", "", r#","ip_proto":47"#);
        assert_eq!(ev(&gre).proto, Protocol::Other(47));
        let path = with("1", "udp", "", r#","_path":"conn""#);
        assert_eq!(ev(&path).proto, Protocol::Udp);
    }

    #[test]
    fn skips() {
        for line in [
            "",
            " ",
            r#"{"_path":"dns","ts":1,"id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":53,"proto":"udp","query":"example.com"}"#,
        ] {
            assert_eq!(p(line), LineOutcome::Skip, "{line}");
        }
    }

    #[test]
    fn errors() {
        // A valid line with one field replaced.
        let with = |from: &str, to: &str| {
            r#"{"ts":1,"id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":2,"proto":"tcp"}"#
                .replace(from, to)
        };
        for (line, want) in [
            ("{".to_string(), "invalid json"),
            (with(r#""ts":1,"#, ""), "missing field ts"),
            (
                with(r#""ts":1"#, r#""ts":"XXXXXXXXXX.XXXXXX""#),
                "unreadable timestamp",
            ),
            (with(r#""ts":1"#, r#""ts":true"#), "invalid json"),
            (with(r#""ts":1"#, r#""ts":-1"#), "unreadable timestamp"),
            (
                with(r#""ts":1"#, &format!(r#""ts":{}"#, u64::MAX)),
                "unreadable timestamp",
            ),
            (with(r#""ts":1"#, r#""ts":1e300"#), "unreadable timestamp"),
            (with("10.0.0.1", "10.0.0"), "invalid id.orig_h"),
            (
                with(r#""id.resp_h":"10.0.0.2","#, ""),
                "missing field id.resp_h",
            ),
            (with(r#","proto":"tcp""#, ""), "missing field proto"),
            (with(r#""tcp""#, r#""sctp2""#), "invalid proto"),
            (
                with(r#""tcp""#, r#""unknown_transport""#),
                "missing field ip_proto",
            ),
            (
                with(r#""tcp""#, r#""unknown_transport","ip_proto":300"#),
                "invalid ip_proto",
            ),
            (with(r#""id.orig_p":1,"#, ""), "missing field id.orig_p"),
            (
                with(r#""id.resp_p":2"#, r#""id.resp_p":70000"#),
                "invalid id.resp_p",
            ),
            (
                with(r#""id.orig_p":1"#, r#""id.orig_p":"x""#),
                "invalid json",
            ),
            (with(r#""ts":1,"#, r#""ts":1,"ts":2,"#), "invalid json"),
        ] {
            match p(&line) {
                LineOutcome::Error(e) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with(want), "{line}: {msg}");
                    assert!(msg.len() < 200, "{msg}");
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
