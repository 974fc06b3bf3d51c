//! Suricata EVE JSON lines (`eve.json`): one JSON object a line. Only `event_type`
//! `flow` and `alert` become events; every other type (`stats`, `dns`, `http`, …) and
//! blank lines are skipped.
//!
//! Fields used: `timestamp` (`2022-07-10T23:50:05.533101+0000`), `src_ip`, `dest_ip`,
//! `src_port`, `dest_port`, `proto` (`TCP`, `UDP`, `ICMP`, `IPv6-ICMP`, or a number),
//! `icmp_type`, `host` (the sensor name, if the line has one), `alert.action` and the
//! `tcp` object of flow events.
//!
//! What counts as a scan attempt:
//! - `flow`, TCP: only when the client never sent ACK but did send SYN. The client's
//!   flags are `tcp.tcp_flags_ts` (hex, to-server direction); when a flow has no
//!   `tcp_flags_ts`, the aggregate `tcp.syn`/`tcp.ack` booleans are used. Such a flow
//!   gets the flags of a bare SYN (a client RST or FIN after the SYN does not make it
//!   less of a probe); any other TCP flow gets the client's flags (with ACK), so it
//!   does not count. A TCP flow with no `tcp` object at all is given known, empty
//!   flags and does not count either. Direction is unknown (Suricata does not know
//!   which side is "inside"), which scanwatch treats as inbound.
//! - `alert`: the alerted packet is taken as inbound, and for TCP its flags are
//!   unknown (EVE alerts do not carry them), so a TCP or UDP alert counts as an
//!   unsolicited attempt. This is a choice: an alert is evidence of hostile traffic
//!   from `src_ip`, even when it rides an established connection.
//! - UDP always counts; ICMP and other protocols never (no port).
//!
//! Action: `alert.action` `allowed` is accept, `blocked` is drop; flows have no action.

use std::borrow::Cow;

use scanwatch_event::{parse_rfc3339, Action, Direction, Event, Protocol, TcpFlags};
use serde::Deserialize;

use crate::{FormatSpec, LineOutcome, LineParser, ParseError, ParserOptions};

pub(crate) struct Spec;
pub(crate) static SPEC: Spec = Spec;

impl FormatSpec for Spec {
    fn name(&self) -> &'static str {
        "suricata"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["eve", "suricata-eve"]
    }
    fn description(&self) -> &'static str {
        "Suricata EVE JSON (flow and alert events)"
    }
    fn sniff(&self, line: &str) -> bool {
        let t = line.trim_start();
        t.starts_with('{') && t.contains("\"event_type\"") && t.contains("\"timestamp\"")
    }
    fn parser(&self, _opts: &ParserOptions) -> Box<dyn LineParser> {
        Box::new(SuricataParser)
    }
}

#[derive(Debug, Default)]
pub struct SuricataParser;

#[derive(Deserialize)]
struct Eve<'a> {
    #[serde(borrow)]
    timestamp: Option<Str<'a>>,
    #[serde(borrow)]
    event_type: Option<Str<'a>>,
    #[serde(borrow)]
    src_ip: Option<Str<'a>>,
    #[serde(borrow)]
    dest_ip: Option<Str<'a>>,
    src_port: Option<u64>,
    dest_port: Option<u64>,
    #[serde(borrow)]
    proto: Option<Proto<'a>>,
    icmp_type: Option<u64>,
    #[serde(borrow)]
    host: Option<Str<'a>>,
    #[serde(borrow)]
    alert: Option<Alert<'a>>,
    #[serde(borrow)]
    tcp: Option<Tcp<'a>>,
}

/// `proto` is a name in current Suricata, a number in some old versions.
#[derive(Deserialize)]
#[serde(untagged)]
enum Proto<'a> {
    Name(#[serde(borrow)] Str<'a>),
    Number(u64),
}

#[derive(Deserialize)]
struct Alert<'a> {
    #[serde(borrow)]
    action: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Tcp<'a> {
    #[serde(borrow)]
    tcp_flags_ts: Option<Str<'a>>,
    #[serde(borrow)]
    tcp_flags: Option<Str<'a>>,
    syn: Option<bool>,
    ack: Option<bool>,
}

/// A JSON string that borrows from the line when it has no escapes (serde's own
/// `Cow<str>` impl always copies inside an `Option`).
pub(crate) struct Str<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl LineParser for SuricataParser {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l> {
        if line.trim().is_empty() {
            return LineOutcome::Skip;
        }
        match parse(line) {
            Ok(o) => o,
            Err(e) => LineOutcome::Error(e),
        }
    }
}

fn hex_flags(field: &'static str, s: &str) -> Result<TcpFlags, ParseError> {
    u8::from_str_radix(s, 16)
        .map(TcpFlags)
        .map_err(|_| ParseError::invalid(field, s))
}

/// Flags for a TCP flow event, following the rule in the module docs.
fn flow_flags(tcp: Option<&Tcp<'_>>) -> Result<TcpFlags, ParseError> {
    let Some(tcp) = tcp else {
        return Ok(TcpFlags(0));
    };
    let client = match &tcp.tcp_flags_ts {
        Some(ts) => hex_flags("tcp_flags_ts", ts)?,
        None => {
            let mut f = match &tcp.tcp_flags {
                Some(all) => hex_flags("tcp_flags", all)?,
                None => TcpFlags(0),
            };
            if tcp.syn == Some(true) {
                f.0 |= TcpFlags::SYN;
            }
            if tcp.ack == Some(true) {
                f.0 |= TcpFlags::ACK;
            }
            f
        }
    };
    if client.contains(TcpFlags::SYN) && !client.contains(TcpFlags::ACK) {
        Ok(TcpFlags(TcpFlags::SYN))
    } else {
        Ok(client)
    }
}

fn parse(line: &str) -> Result<LineOutcome<'_>, ParseError> {
    let eve: Eve<'_> = serde_json::from_str(line).map_err(|e| {
        // serde_json messages may start with a capital ("EOF while …"): keep ours lowercase.
        ParseError::invalid("json", &e.to_string())
    })?;
    let kind = eve
        .event_type
        .as_deref()
        .ok_or(ParseError::MissingField("event_type"))?;
    let is_alert = match kind {
        "alert" => true,
        "flow" => false,
        _ => return Ok(LineOutcome::Skip),
    };
    let ts = eve
        .timestamp
        .as_deref()
        .ok_or(ParseError::MissingField("timestamp"))?;
    let time =
        parse_rfc3339(ts).ok_or_else(|| ParseError::Timestamp(ts.chars().take(40).collect()))?;
    let ip = |name: &'static str, v: &Option<Str<'_>>| -> Result<std::net::IpAddr, ParseError> {
        let v = v.as_deref().ok_or(ParseError::MissingField(name))?;
        v.parse().map_err(|_| ParseError::invalid(name, v))
    };
    let src = ip("src_ip", &eve.src_ip)?;
    let dst = ip("dest_ip", &eve.dest_ip)?;
    let proto = match eve
        .proto
        .as_ref()
        .ok_or(ParseError::MissingField("proto"))?
    {
        Proto::Name(n) => Protocol::parse(n).ok_or_else(|| ParseError::invalid("proto", n))?,
        Proto::Number(n) => u8::try_from(*n)
            .map(Protocol::from_number)
            .map_err(|_| ParseError::invalid("proto", &n.to_string()))?,
    };
    let port = |name: &'static str, v: Option<u64>| -> Result<u16, ParseError> {
        let v = v.ok_or(ParseError::MissingField(name))?;
        u16::try_from(v).map_err(|_| ParseError::invalid(name, &v.to_string()))
    };
    let (src_port, dst_port) = if proto.has_ports() {
        (
            Some(port("src_port", eve.src_port)?),
            Some(port("dest_port", eve.dest_port)?),
        )
    } else {
        (None, None)
    };
    let icmp_type = match proto {
        Protocol::Icmp | Protocol::Icmpv6 => eve.icmp_type.and_then(|t| u8::try_from(t).ok()),
        _ => None,
    };
    let (flags, flags_known) = match (proto, is_alert) {
        (Protocol::Tcp, true) => (TcpFlags(0), false),
        (Protocol::Tcp, false) => (flow_flags(eve.tcp.as_ref())?, true),
        _ => (TcpFlags(0), false),
    };
    let (direction, action) = if is_alert {
        let action = match eve.alert.as_ref().and_then(|a| a.action.as_deref()) {
            Some("allowed") => Action::Accept,
            Some("blocked") => Action::Drop,
            _ => Action::Unknown,
        };
        (Direction::Inbound, action)
    } else {
        (Direction::Unknown, Action::Unknown)
    };
    // The host name borrows from the line only when it has no JSON escapes.
    let host = match eve.host {
        Some(Str(Cow::Borrowed(h))) if !h.is_empty() => Some(h),
        _ => None,
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
    Ok(LineOutcome::Event { event, host })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> LineOutcome<'_> {
        SuricataParser.parse_line(line)
    }

    const T: &str = r#""timestamp":"2022-07-11T05:52:18.378379+0000""#;

    fn ev(line: &str) -> (Event, Option<&str>) {
        match p(line) {
            LineOutcome::Event { event, host } => (event, host),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn events() {
        // (line, proto, dst_port, flags letters, flags_known, counts as scan, host)
        let flow = |tcp: &str| {
            format!(
                r#"{{{T},"event_type":"flow","src_ip":"192.0.2.1","src_port":4000,"dest_ip":"198.51.100.7","dest_port":22,"proto":"TCP"{tcp}}}"#
            )
        };
        type Case<'a> = (
            String,
            Protocol,
            Option<u16>,
            &'a str,
            bool,
            bool,
            Option<&'a str>,
        );
        let cases: Vec<Case<'_>> = vec![
            // Client sent SYN and RST, no ACK: a probe (fixture line 3).
            (
                flow(
                    r#","tcp":{"tcp_flags":"16","tcp_flags_ts":"06","tcp_flags_tc":"14","syn":true,"rst":true,"ack":true}"#,
                ),
                Protocol::Tcp,
                Some(22),
                "S",
                true,
                true,
                None,
            ),
            // Full handshake: the client acked.
            (
                flow(r#","tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","syn":true,"ack":true}"#),
                Protocol::Tcp,
                Some(22),
                "FSPA",
                true,
                false,
                None,
            ),
            // No per-direction flags: the aggregate booleans decide.
            (
                flow(r#","tcp":{"syn":true}"#),
                Protocol::Tcp,
                Some(22),
                "S",
                true,
                true,
                None,
            ),
            (
                flow(r#","tcp":{"syn":true,"ack":true}"#),
                Protocol::Tcp,
                Some(22),
                "SA",
                true,
                false,
                None,
            ),
            // No tcp object: known, empty flags; not a scan.
            (flow(""), Protocol::Tcp, Some(22), "", true, false, None),
            // Alerts: inbound, TCP flags unknown, host from the line.
            (
                format!(
                    r#"{{{T},"event_type":"alert","host":"sensor1","src_ip":"192.0.2.1","src_port":1,"dest_ip":"198.51.100.7","dest_port":80,"proto":"TCP","alert":{{"action":"blocked"}}}}"#
                ),
                Protocol::Tcp,
                Some(80),
                "",
                false,
                true,
                Some("sensor1"),
            ),
            (
                format!(
                    r#"{{{T},"event_type":"flow","src_ip":"2001:db8::1","src_port":5353,"dest_ip":"2001:db8::2","dest_port":53,"proto":"UDP"}}"#
                ),
                Protocol::Udp,
                Some(53),
                "",
                false,
                true,
                None,
            ),
            (
                format!(
                    r#"{{{T},"event_type":"flow","src_ip":"192.0.2.1","dest_ip":"198.51.100.7","proto":"ICMP","icmp_type":8,"icmp_code":0}}"#
                ),
                Protocol::Icmp,
                None,
                "",
                false,
                false,
                None,
            ),
            (
                format!(
                    r#"{{{T},"event_type":"flow","src_ip":"192.0.2.1","dest_ip":"198.51.100.7","proto":47}}"#
                ),
                Protocol::Other(47),
                None,
                "",
                false,
                false,
                None,
            ),
            // An escaped host name is not borrowed: no host.
            (
                format!(
                    r#"{{{T},"event_type":"alert","host":"s\"1","src_ip":"192.0.2.1","src_port":1,"dest_ip":"198.51.100.7","dest_port":80,"proto":"UDP"}}"#
                ),
                Protocol::Udp,
                Some(80),
                "",
                false,
                true,
                None,
            ),
        ];
        for (line, proto, dport, letters, known, scan, host) in &cases {
            let (e, h) = ev(line);
            assert_eq!(e.proto, *proto, "{line}");
            assert_eq!(e.dst_port, *dport, "{line}");
            assert_eq!(e.flags.letters(), *letters, "{line}");
            assert_eq!(e.flags_known, *known, "{line}");
            assert_eq!(e.is_unsolicited(), *scan, "{line}");
            assert_eq!(h, *host, "{line}");
            assert_eq!(e.time.to_rfc3339(), "2022-07-11T05:52:18.378Z");
        }
        let (e, _) = ev(&cases[7].0);
        assert_eq!(e.icmp_type, Some(8));
        let (e, _) = ev(&cases[5].0);
        assert_eq!((e.direction, e.action), (Direction::Inbound, Action::Drop));
    }

    #[test]
    fn skips() {
        for line in [
            "",
            "   ",
            r#"{"timestamp":"2022-07-11T05:53:51.912203+0000","event_type":"stats","stats":{"uptime":1}}"#,
            r#"{"timestamp":"2022-07-11T05:53:51.912203+0000","event_type":"dns","src_ip":"x"}"#,
        ] {
            assert_eq!(p(line), LineOutcome::Skip, "{line}");
        }
    }

    #[test]
    fn errors() {
        let base = |over: &str| {
            format!(
                r#"{{{T},"event_type":"flow","src_ip":"192.0.2.1","src_port":1,"dest_ip":"198.51.100.7","dest_port":22,"proto":"TCP"{over}}}"#
            )
        };
        for (line, want) in [
            ("{".to_string(), "invalid json"),
            ("not json".to_string(), "invalid json"),
            ("[1,2]".to_string(), "invalid json"),
            (
                r#"{"timestamp":"x"}"#.to_string(),
                "missing field event_type",
            ),
            (
                r#"{"event_type":"flow"}"#.to_string(),
                "missing field timestamp",
            ),
            (
                r#"{"event_type":"flow","timestamp":"yesterday"}"#.to_string(),
                "unreadable timestamp",
            ),
            (
                format!(r#"{{{T},"event_type":"flow"}}"#),
                "missing field src_ip",
            ),
            (
                format!(r#"{{{T},"event_type":"flow","src_ip":"1.2.3"}}"#),
                "invalid src_ip",
            ),
            (
                format!(r#"{{{T},"event_type":"flow","src_ip":"1.2.3.4"}}"#),
                "missing field dest_ip",
            ),
            (
                format!(r#"{{{T},"event_type":"flow","src_ip":"1.2.3.4","dest_ip":"x"}}"#),
                "invalid dest_ip",
            ),
            (
                format!(r#"{{{T},"event_type":"flow","src_ip":"1.2.3.4","dest_ip":"1.2.3.5"}}"#),
                "missing field proto",
            ),
            (
                format!(
                    r#"{{{T},"event_type":"flow","src_ip":"1.2.3.4","dest_ip":"1.2.3.5","proto":"foo"}}"#
                ),
                "invalid proto",
            ),
            (
                format!(
                    r#"{{{T},"event_type":"flow","src_ip":"1.2.3.4","dest_ip":"1.2.3.5","proto":300}}"#
                ),
                "invalid proto",
            ),
            (
                format!(
                    r#"{{{T},"event_type":"flow","src_ip":"1.2.3.4","dest_ip":"1.2.3.5","proto":"UDP"}}"#
                ),
                "missing field src_port",
            ),
            (
                format!(
                    r#"{{{T},"event_type":"flow","src_ip":"1.2.3.4","dest_ip":"1.2.3.5","proto":"UDP","src_port":1}}"#
                ),
                "missing field dest_port",
            ),
            (
                format!(
                    r#"{{{T},"event_type":"flow","src_ip":"1.2.3.4","dest_ip":"1.2.3.5","proto":"UDP","src_port":1,"dest_port":70000}}"#
                ),
                "invalid dest_port",
            ),
            (
                format!(
                    r#"{{{T},"event_type":"flow","src_ip":"1.2.3.4","dest_ip":"1.2.3.5","proto":"UDP","src_port":-1,"dest_port":1}}"#
                ),
                "invalid json",
            ),
            (
                base(r#","tcp":{"tcp_flags_ts":"zz"}"#),
                "invalid tcp_flags_ts",
            ),
            (base(r#","tcp":{"tcp_flags":"1ff"}"#), "invalid tcp_flags"),
            (base(r#","src_ip":"1.2.3.4""#), "invalid json"),
        ] {
            match p(&line) {
                LineOutcome::Error(e) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with(want), "{line}: {msg}");
                    assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
