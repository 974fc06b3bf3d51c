//! scanwatch's own JSON Lines event format: one JSON object per line, the format the
//! sensor sends on the wire and `analyze --format jsonl` reads. Documented in
//! `docs/formats.md`; the `v` field is the format version.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{parse_rfc3339, Action, Direction, Event, Protocol, TcpFlags, Timestamp};

/// Version written in the `v` field. Readers accept lines without `v` as version 1.
pub const WIRE_VERSION: u32 = 1;

/// One event: one line of the JSON Lines body of `POST /api/v1/events`, and of the
/// files `analyze` reads (docs/formats.md). A body is any number of these, one a
/// line.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WireEvent<'a> {
    /// Format version: 1 (the default).
    #[serde(default = "default_version")]
    #[cfg_attr(feature = "schema", schema(minimum = 1, maximum = 1))]
    pub v: u32,
    /// RFC 3339 time, e.g. `2026-11-26T10:40:00.123Z`.
    #[serde(borrow)]
    #[cfg_attr(
        feature = "schema",
        schema(value_type = String, format = DateTime, example = "2026-11-26T10:40:00Z")
    )]
    pub time: Cow<'a, str>,
    /// Sensor name; optional in files, filled in by the sensor on the wire (the
    /// centre takes the sensor from the token and ignores it).
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
    pub sensor: Option<Cow<'a, str>>,
    /// `tcp`, `udp`, `icmp`, `icmpv6` or a protocol number.
    #[serde(borrow)]
    #[cfg_attr(
        feature = "schema",
        schema(value_type = String, example = "tcp", pattern = "^(tcp|udp|icmp|icmpv6|[0-9]{1,3})$")
    )]
    pub proto: Cow<'a, str>,
    #[cfg_attr(feature = "schema", schema(value_type = crate::schema::IpAddress))]
    pub src: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[cfg_attr(feature = "schema", schema(value_type = crate::schema::IpAddress))]
    pub dst: IpAddr,
    /// Required for tcp and udp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    /// TCP flags as letters (`S`, `SA`, `FA`); absent when unknown.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schema(value_type = Option<String>, pattern = "^[FSRPAUEC]{0,8}$")
    )]
    pub flags: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// `in` or `out`; absent when unknown.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>, pattern = "^(in|out)$"))]
    pub direction: Option<Cow<'a, str>>,
    /// `accept`, `drop` or `reject`; absent when unknown.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schema(value_type = Option<String>, pattern = "^(accept|drop|reject)$")
    )]
    pub action: Option<Cow<'a, str>>,
    /// How many events this line stands for (default 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    #[cfg_attr(feature = "schema", schema(minimum = 1))]
    pub count: u32,
    /// For events read from IDS alerts (Suricata EVE `alert`, fast.log): the rule,
    /// its message and the CVEs it names, so the centre can confirm explanations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<WireIds>,
}

/// The IDS rule behind an event read from an IDS alert.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WireIds {
    /// `gid:sid:rev` (fast.log) or the signature id (EVE).
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub signature: String,
    /// CVE ids, `CVE-YYYY-N`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
}

fn default_version() -> u32 {
    WIRE_VERSION
}
fn one() -> u32 {
    1
}
fn is_one(n: &u32) -> bool {
    *n == 1
}

/// Why a JSON line is not a valid event.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("invalid json: {0}")]
    Json(String),
    #[error("unsupported event format version {0} (this build reads version {WIRE_VERSION})")]
    Version(u32),
    #[error("invalid time {0:?}: expected RFC 3339 such as 2026-11-26T10:40:00Z")]
    Time(String),
    #[error("unknown protocol {0:?}")]
    Proto(String),
    #[error("{0} event without dst_port")]
    MissingPort(&'static str),
    #[error("invalid tcp flags {0:?}: expected letters such as S, SA, FA")]
    Flags(String),
    #[error("invalid {field} {value:?}")]
    Field { field: &'static str, value: String },
    #[error("count must be at least 1")]
    ZeroCount,
    #[error("count {0} above the bound {max}", max = crate::MAX_COUNT)]
    CountTooLarge(u32),
}

impl<'a> WireEvent<'a> {
    /// Parses one line of the format.
    pub fn parse_line(line: &'a str) -> Result<WireEvent<'a>, WireError> {
        serde_json::from_str(line).map_err(|e| WireError::Json(e.to_string()))
    }

    /// Converts to an [`Event`], validating every field.
    pub fn to_event(&self) -> Result<Event, WireError> {
        if self.v != WIRE_VERSION {
            return Err(WireError::Version(self.v));
        }
        let time =
            parse_rfc3339(&self.time).ok_or_else(|| WireError::Time(self.time.to_string()))?;
        let proto =
            Protocol::parse(&self.proto).ok_or_else(|| WireError::Proto(self.proto.to_string()))?;
        if proto.has_ports() && self.dst_port.is_none() {
            return Err(WireError::MissingPort(if proto == Protocol::Tcp {
                "tcp"
            } else {
                "udp"
            }));
        }
        let (flags, flags_known) = match &self.flags {
            Some(f) => (
                TcpFlags::parse_letters(f).ok_or_else(|| WireError::Flags(f.to_string()))?,
                true,
            ),
            None => (TcpFlags(0), false),
        };
        let direction = match self.direction.as_deref() {
            None => Direction::Unknown,
            Some("in") => Direction::Inbound,
            Some("out") => Direction::Outbound,
            Some(other) => {
                return Err(WireError::Field {
                    field: "direction",
                    value: other.to_string(),
                })
            }
        };
        let action = match self.action.as_deref() {
            None => Action::Unknown,
            Some("accept") => Action::Accept,
            Some("drop") => Action::Drop,
            Some("reject") => Action::Reject,
            Some(other) => {
                return Err(WireError::Field {
                    field: "action",
                    value: other.to_string(),
                })
            }
        };
        if self.count == 0 {
            return Err(WireError::ZeroCount);
        }
        if self.count > crate::MAX_COUNT {
            return Err(WireError::CountTooLarge(self.count));
        }
        let ports = proto.has_ports();
        let tcp = proto == Protocol::Tcp;
        let icmp = matches!(proto, Protocol::Icmp | Protocol::Icmpv6);
        Ok(Event {
            time,
            proto,
            src: self.src,
            dst: self.dst,
            src_port: if ports { self.src_port } else { None },
            dst_port: if ports { self.dst_port } else { None },
            // `Event::flags` is zero for other protocols, `icmp_type` is for ICMP only.
            flags: if tcp { flags } else { TcpFlags(0) },
            flags_known: flags_known && tcp,
            icmp_type: if icmp { self.icmp_type } else { None },
            direction,
            action,
            count: self.count,
        })
    }

    /// The wire form of an event, with an optional sensor name.
    pub fn from_event(e: &Event, sensor: Option<&'a str>) -> WireEvent<'a> {
        WireEvent {
            v: WIRE_VERSION,
            time: Cow::Owned(Timestamp::to_rfc3339(e.time)),
            sensor: sensor.map(Cow::Borrowed),
            proto: e.proto.name(),
            src: e.src,
            src_port: e.src_port,
            dst: e.dst,
            dst_port: e.dst_port,
            flags: e.flags_known.then(|| Cow::Owned(e.flags.letters())),
            icmp_type: e.icmp_type,
            direction: match e.direction {
                Direction::Inbound => Some(Cow::Borrowed("in")),
                Direction::Outbound => Some(Cow::Borrowed("out")),
                Direction::Unknown => None,
            },
            action: match e.action {
                Action::Unknown => None,
                a => Some(Cow::Borrowed(a.name())),
            },
            count: e.count,
            ids: None,
        }
    }

    /// One JSON line, without the trailing newline.
    pub fn to_line(&self) -> String {
        // Serialising this struct cannot fail: every field is a plain value.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_minimal_and_full() {
        let w = WireEvent::parse_line(
            r#"{"time":"2026-11-26T10:40:00Z","proto":"tcp","src":"192.0.2.1","dst":"198.51.100.7","dst_port":1025,"flags":"S"}"#,
        )
        .unwrap();
        let e = w.to_event().unwrap();
        assert_eq!(e.scanned_port(), Some((Protocol::Tcp, 1025)));
        assert_eq!(e.count, 1);
        let line = WireEvent::from_event(&e, Some("s1")).to_line();
        assert_eq!(
            line,
            r#"{"v":1,"time":"2026-11-26T10:40:00Z","sensor":"s1","proto":"tcp","src":"192.0.2.1","dst":"198.51.100.7","dst_port":1025,"flags":"S"}"#
        );
        let back = WireEvent::parse_line(&line).unwrap().to_event().unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn fields_of_other_protocols_are_dropped() {
        // Found by fuzzing: a udp line with "flags" gave a UDP event with TCP flag bits.
        let e = WireEvent::parse_line(
            r#"{"time":"2026-11-26T10:40:00Z","proto":"udp","src":"192.0.2.1","dst":"192.0.2.2","dst_port":53,"flags":"S","icmp_type":8}"#,
        )
        .unwrap()
        .to_event()
        .unwrap();
        assert_eq!(
            (e.flags, e.flags_known, e.icmp_type),
            (TcpFlags(0), false, None)
        );
        let e = WireEvent::parse_line(
            r#"{"time":"2026-11-26T10:40:00Z","proto":"icmp","src":"192.0.2.1","dst":"192.0.2.2","flags":"S","icmp_type":8}"#,
        )
        .unwrap()
        .to_event()
        .unwrap();
        assert_eq!((e.flags, e.icmp_type), (TcpFlags(0), Some(8)));
    }

    #[test]
    fn errors_are_specific() {
        let cases = [
            (
                r#"{"time":"x","proto":"tcp","src":"192.0.2.1","dst":"192.0.2.2","dst_port":1}"#,
                "invalid time",
            ),
            (
                r#"{"time":"2026-01-01T00:00:00Z","proto":"tcp","src":"192.0.2.1","dst":"192.0.2.2"}"#,
                "without dst_port",
            ),
            (
                r#"{"time":"2026-01-01T00:00:00Z","proto":"zz","src":"192.0.2.1","dst":"192.0.2.2"}"#,
                "unknown protocol",
            ),
            (
                r#"{"v":9,"time":"2026-01-01T00:00:00Z","proto":"udp","src":"192.0.2.1","dst":"192.0.2.2","dst_port":1}"#,
                "version",
            ),
            (
                r#"{"time":"2026-01-01T00:00:00Z","proto":"udp","src":"192.0.2.1","dst":"192.0.2.2","dst_port":1,"count":0}"#,
                "count",
            ),
            (
                r#"{"time":"2026-01-01T00:00:00Z","proto":"tcp","src":"192.0.2.1","dst":"192.0.2.2","dst_port":1,"flags":"Q"}"#,
                "flags",
            ),
            (
                r#"{"time":"2026-01-01T00:00:00Z","proto":"udp","src":"1.2.3","dst":"192.0.2.2","dst_port":1}"#,
                "invalid json",
            ),
            (r#"not json"#, "invalid json"),
        ];
        for (line, want) in cases {
            let err = WireEvent::parse_line(line)
                .and_then(|w| w.to_event())
                .unwrap_err();
            assert!(err.to_string().contains(want), "{line}: {err}");
        }
    }
}
