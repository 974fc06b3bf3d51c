//! Helpers shared by the centre's tests.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses part; a broken setup may panic

use std::net::{IpAddr, Ipv4Addr};

use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};

/// A dropped inbound TCP SYN from `src` to 198.18.0.`dst_last`:`port` at `t` (ms).
pub fn syn(t: i64, src: IpAddr, dst_last: u8, port: u16) -> Event {
    Event {
        time: Timestamp(t),
        proto: Protocol::Tcp,
        src,
        dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, dst_last)),
        src_port: Some(40_000),
        dst_port: Some(port),
        flags: TcpFlags::parse_letters("S").unwrap(),
        flags_known: true,
        icmp_type: None,
        direction: Direction::Inbound,
        action: Action::Drop,
        count: 1,
    }
}
