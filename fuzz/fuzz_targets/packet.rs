//! Fuzz the capture decoder: any bytes as an Ethernet frame either give nothing or
//! an unsolicited inbound TCP SYN / UDP event to the watched address, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_event::{Direction, Protocol, Timestamp};
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let me: [IpAddr; 2] = [
        IpAddr::from([198, 18, 0, 1]),
        "2001:db8::1".parse().expect("valid address"),
    ];
    if let Some(e) = scanwatch_formats::packet::event_from_frame(data, Timestamp(0), &me) {
        assert!(me.contains(&e.dst));
        assert!(e.is_unsolicited());
        assert_eq!(e.direction, Direction::Inbound);
        assert!(matches!(e.proto, Protocol::Tcp | Protocol::Udp));
    }
});
