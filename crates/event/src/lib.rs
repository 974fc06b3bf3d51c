//! The scan event: the one record every pipeline stage passes along, plus time and
//! duration helpers shared by all stages.
//!
//! An [`Event`] is what one firewall/IDS line says about one packet or connection
//! attempt (or, for DShield lines, `count` of them). It carries no sensor: the stage
//! that reads a source decides which sensor an event belongs to (see `--sensor-id`).

pub mod batch;
pub mod block;
pub mod bytes;
mod duration;
pub mod metrics;
#[cfg(feature = "schema")]
pub mod schema;
mod time;
mod wire;

use std::fmt;
use std::net::IpAddr;

pub use duration::{parse_duration, parse_span, DurationError, HumanDuration};
pub use time::{format_rfc3339, parse_rfc3339, Clock, Timestamp};
pub use wire::{WireError, WireEvent, WireIds, WIRE_VERSION};

/// IP protocol of an event.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    /// ICMP for IPv6 (protocol 58).
    Icmpv6,
    /// Any other IP protocol number.
    Other(u8),
}

impl Protocol {
    /// Lowercase name used in reports and JSON (`tcp`, `udp`, `icmp`, `icmpv6`, `ip-47`).
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self {
            Protocol::Tcp => "tcp".into(),
            Protocol::Udp => "udp".into(),
            Protocol::Icmp => "icmp".into(),
            Protocol::Icmpv6 => "icmpv6".into(),
            Protocol::Other(n) => format!("ip-{n}").into(),
        }
    }

    /// Parses a protocol name or number, case-insensitively (`TCP`, `udp`, `6`, `ICMPv6`).
    pub fn parse(s: &str) -> Option<Protocol> {
        let b = s.as_bytes();
        if b.eq_ignore_ascii_case(b"tcp") {
            Some(Protocol::Tcp)
        } else if b.eq_ignore_ascii_case(b"udp") {
            Some(Protocol::Udp)
        } else if b.eq_ignore_ascii_case(b"icmp") {
            Some(Protocol::Icmp)
        } else if b.eq_ignore_ascii_case(b"icmpv6") || b.eq_ignore_ascii_case(b"ipv6-icmp") {
            Some(Protocol::Icmpv6)
        } else if let Some(n) = [
            ("sctp", 132),
            ("udplite", 136),
            ("gre", 47),
            ("esp", 50),
            ("ah", 51),
            ("igmp", 2),
        ]
        .iter()
        .find(|(name, _)| b.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, n)| *n)
        {
            Some(Protocol::Other(n))
        } else if let Some(rest) = s.strip_prefix("ip-") {
            rest.parse::<u8>().ok().map(Protocol::from_number)
        } else {
            s.parse::<u8>().ok().map(Protocol::from_number)
        }
    }

    /// The IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
            Protocol::Icmpv6 => 58,
            Protocol::Other(n) => n,
        }
    }

    /// Maps an IANA protocol number.
    pub fn from_number(n: u8) -> Protocol {
        match n {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            1 => Protocol::Icmp,
            58 => Protocol::Icmpv6,
            other => Protocol::Other(other),
        }
    }

    /// Whether events of this protocol have ports.
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// TCP flags as the 8 bits of the TCP header (FIN = 0x01 … CWR = 0x80).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub fn contains(self, bit: u8) -> bool {
        self.0 & bit == bit
    }

    /// A connection opening: SYN set, ACK, RST and FIN clear.
    pub fn is_bare_syn(self) -> bool {
        self.0 & (Self::SYN | Self::ACK | Self::RST | Self::FIN) == Self::SYN
    }

    /// Sets the bit named by an iptables-style flag word (`SYN`, `ACK`, `PSH`, …).
    /// Returns false when the word is not a flag name.
    pub fn set_word(&mut self, word: &str) -> bool {
        let bit = match word.as_bytes() {
            b"SYN" => Self::SYN,
            b"ACK" => Self::ACK,
            b"FIN" => Self::FIN,
            b"RST" => Self::RST,
            b"PSH" => Self::PSH,
            b"URG" => Self::URG,
            b"ECE" => Self::ECE,
            b"CWR" => Self::CWR,
            _ => return false,
        };
        self.0 |= bit;
        true
    }

    /// Parses letter flags as used by DShield, tcpdump and pf (`S`, `SA`, `FPU`, `.`).
    /// Letters: F S R P A U E C (and W for CWR); `.` means ACK in tcpdump output.
    pub fn parse_letters(s: &str) -> Option<TcpFlags> {
        let mut f = 0u8;
        for c in s.bytes() {
            f |= match c.to_ascii_uppercase() {
                b'F' => Self::FIN,
                b'S' => Self::SYN,
                b'R' => Self::RST,
                b'P' => Self::PSH,
                b'A' | b'.' => Self::ACK,
                b'U' => Self::URG,
                b'E' => Self::ECE,
                b'C' | b'W' => Self::CWR,
                _ => return None,
            };
        }
        Some(TcpFlags(f))
    }

    /// Letter form, in FSRPAUEC order (`S`, `SA`); empty for no flags.
    pub fn letters(self) -> String {
        const L: [(u8, char); 8] = [
            (TcpFlags::FIN, 'F'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::ACK, 'A'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'C'),
        ];
        L.iter()
            .filter(|(b, _)| self.contains(*b))
            .map(|(_, c)| *c)
            .collect()
    }
}

/// Which way the packet went relative to the sensor host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Addressed to the sensor host or a network behind it (iptables `IN=x OUT=`
    /// or forwarded `IN=x OUT=y`).
    Inbound,
    /// Sent by the sensor host (iptables `IN= OUT=y`).
    Outbound,
    /// The log line does not say; treated as inbound.
    #[default]
    Unknown,
}

/// What the firewall did, when the log line says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Action {
    #[default]
    Unknown,
    Accept,
    Drop,
    Reject,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Unknown => "unknown",
            Action::Accept => "accept",
            Action::Drop => "drop",
            Action::Reject => "reject",
        }
    }
}

/// One observed packet (or `count` identical ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Event time, milliseconds since the Unix epoch, UTC.
    pub time: Timestamp,
    pub proto: Protocol,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Source port; `None` for protocols without ports.
    pub src_port: Option<u16>,
    /// Destination port; `None` for protocols without ports.
    pub dst_port: Option<u16>,
    /// TCP flags; zero for other protocols or when the log does not give them.
    pub flags: TcpFlags,
    /// Whether the log gave TCP flags at all (DShield lines may omit them).
    pub flags_known: bool,
    /// ICMP type, for ICMP events.
    pub icmp_type: Option<u8>,
    pub direction: Direction,
    pub action: Action,
    /// How many packets this event stands for (DShield's count column); from 1 to
    /// [`MAX_COUNT`].
    pub count: u32,
}

/// The largest `count` one line may carry (a line above it is refused with an
/// error, by the parsers and by the centre): one line weighs at most this much
/// (docs/security.md).
pub const MAX_COUNT: u32 = 65_535;

impl Event {
    /// A scan probe as a firewall logs one: an inbound TCP SYN to `dst_port`,
    /// dropped, standing for `count` packets, with no source port.
    pub fn syn_probe(
        time: Timestamp,
        src: IpAddr,
        dst: IpAddr,
        dst_port: u16,
        count: u32,
    ) -> Event {
        Event {
            time,
            proto: Protocol::Tcp,
            src,
            dst,
            src_port: None,
            dst_port: Some(dst_port),
            flags: TcpFlags(TcpFlags::SYN),
            flags_known: true,
            icmp_type: None,
            direction: Direction::Inbound,
            action: Action::Drop,
            count,
        }
    }

    /// Whether this event is an unsolicited inbound attempt, the only kind scanwatch
    /// counts as scanning:
    /// - direction is inbound (or unknown), never outbound;
    /// - TCP: a bare SYN (SYN set; ACK, RST and FIN clear). A TCP line whose flags the
    ///   log does not give (some DShield submitters) is counted, since DShield only
    ///   submits blocked inbound attempts;
    /// - UDP: always (there is no handshake to tell a reply from a probe);
    /// - ICMP and other protocols: not counted as port scans (they have no port).
    pub fn is_unsolicited(&self) -> bool {
        if self.direction == Direction::Outbound {
            return false;
        }
        match self.proto {
            Protocol::Tcp => !self.flags_known || self.flags.is_bare_syn(),
            Protocol::Udp => true,
            _ => false,
        }
    }

    /// The (protocol, destination port) this event counts towards, if it counts.
    pub fn scanned_port(&self) -> Option<(Protocol, u16)> {
        if self.is_unsolicited() {
            self.dst_port.map(|p| (self.proto, p))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(proto: Protocol, flags: u8, dir: Direction) -> Event {
        Event {
            time: Timestamp(0),
            proto,
            src: "192.0.2.1".parse().unwrap(),
            dst: "198.51.100.1".parse().unwrap(),
            src_port: Some(4000),
            dst_port: Some(1025),
            flags: TcpFlags(flags),
            flags_known: proto == Protocol::Tcp,
            icmp_type: None,
            direction: dir,
            action: Action::Drop,
            count: 1,
        }
    }

    #[test]
    fn unsolicited_rule_table() {
        use Direction::*;
        let s = TcpFlags::SYN;
        let a = TcpFlags::ACK;
        let table = [
            (Protocol::Tcp, s, Inbound, true),
            (
                Protocol::Tcp,
                s | TcpFlags::ECE | TcpFlags::CWR,
                Inbound,
                true,
            ),
            (Protocol::Tcp, s | a, Inbound, false),
            (Protocol::Tcp, a, Inbound, false),
            (Protocol::Tcp, TcpFlags::RST, Inbound, false),
            (Protocol::Tcp, TcpFlags::FIN | a, Inbound, false),
            (Protocol::Tcp, s | TcpFlags::FIN, Inbound, false),
            (Protocol::Tcp, s, Outbound, false),
            (Protocol::Tcp, s, Unknown, true),
            (Protocol::Udp, 0, Inbound, true),
            (Protocol::Udp, 0, Outbound, false),
            (Protocol::Icmp, 0, Inbound, false),
        ];
        for (proto, flags, dir, want) in table {
            assert_eq!(
                ev(proto, flags, dir).is_unsolicited(),
                want,
                "{proto} {:?} {dir:?}",
                TcpFlags(flags).letters()
            );
        }
    }

    #[test]
    fn flag_letters_round_trip() {
        for s in ["S", "SA", "FPU", "R", ""] {
            let f = TcpFlags::parse_letters(s).unwrap();
            assert_eq!(f.letters(), s);
        }
        assert_eq!(TcpFlags::parse_letters(".").unwrap().0, TcpFlags::ACK);
        assert!(TcpFlags::parse_letters("SX").is_none());
    }

    #[test]
    fn protocol_names() {
        for p in ["tcp", "udp", "icmp", "icmpv6", "ip-47"] {
            assert_eq!(Protocol::parse(p).unwrap().name(), p);
        }
        assert_eq!(Protocol::parse("6"), Some(Protocol::Tcp));
        assert_eq!(Protocol::parse("TCP"), Some(Protocol::Tcp));
        assert_eq!(Protocol::parse("bogus"), None);
    }
}
