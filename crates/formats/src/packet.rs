//! Captured packets: one Ethernet frame (as libpcap hands it over) in, an event out
//! when it is unsolicited inbound TCP SYN (no ACK) or UDP to one of the host's own
//! addresses. Pure and fuzzed; the sensor's capture thread does the I/O. Decoding
//! uses etherparse (a maintained zero-copy header parser) rather than hand-written
//! offsets.

use std::net::IpAddr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};

/// Decodes one Ethernet frame into an event when it is unsolicited inbound TCP SYN
/// (no ACK) or UDP addressed to one of `addrs`; `None` for anything else.
pub fn event_from_frame(frame: &[u8], time: Timestamp, addrs: &[IpAddr]) -> Option<Event> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let (src, dst): (IpAddr, IpAddr) = match p.net? {
        NetSlice::Ipv4(v4) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
        ),
        NetSlice::Ipv6(v6) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
        ),
        _ => return None,
    };
    if !addrs.contains(&dst) {
        return None;
    }
    let (proto, sp, dp, flags) = match p.transport? {
        TransportSlice::Tcp(t) => {
            let mut f = 0u8;
            for (on, bit) in [
                (t.fin(), TcpFlags::FIN),
                (t.syn(), TcpFlags::SYN),
                (t.rst(), TcpFlags::RST),
                (t.psh(), TcpFlags::PSH),
                (t.ack(), TcpFlags::ACK),
                (t.urg(), TcpFlags::URG),
                (t.ece(), TcpFlags::ECE),
                (t.cwr(), TcpFlags::CWR),
            ] {
                if on {
                    f |= bit;
                }
            }
            (Protocol::Tcp, t.source_port(), t.destination_port(), f)
        }
        TransportSlice::Udp(u) => (Protocol::Udp, u.source_port(), u.destination_port(), 0),
        _ => return None,
    };
    let e = Event {
        time,
        proto,
        src,
        dst,
        src_port: Some(sp),
        dst_port: Some(dp),
        flags: TcpFlags(flags),
        flags_known: proto == Protocol::Tcp,
        icmp_type: None,
        direction: Direction::Inbound,
        action: Action::Unknown,
        count: 1,
    };
    e.is_unsolicited().then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn frame(src: [u8; 4], dst: [u8; 4], tcp_flags: Option<(bool, bool)>) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4(src, dst, 64);
        let mut out = Vec::new();
        match tcp_flags {
            Some((syn, ack)) => {
                let mut t = b.tcp(40000, 1025, 1, 1024);
                if syn {
                    t = t.syn();
                }
                if ack {
                    t = t.ack(5);
                }
                t.write(&mut out, &[]).unwrap();
            }
            None => b.udp(40000, 161).write(&mut out, &[]).unwrap(),
        }
        out
    }

    #[test]
    fn only_unsolicited_inbound_to_our_addresses() {
        let me: Vec<IpAddr> = vec!["198.18.0.1".parse().unwrap()];
        let t = Timestamp(1_000);
        let syn = event_from_frame(
            &frame([198, 18, 0, 2], [198, 18, 0, 1], Some((true, false))),
            t,
            &me,
        )
        .unwrap();
        assert_eq!(
            (syn.proto, syn.dst_port, syn.flags.letters().as_str()),
            (Protocol::Tcp, Some(1025), "S")
        );
        assert_eq!(syn.src.to_string(), "198.18.0.2");
        let udp = event_from_frame(&frame([198, 18, 0, 2], [198, 18, 0, 1], None), t, &me).unwrap();
        assert_eq!((udp.proto, udp.dst_port), (Protocol::Udp, Some(161)));
        // A SYN-ACK (a reply), a bare ACK, and a SYN to someone else are not scans.
        for f in [
            frame([198, 18, 0, 2], [198, 18, 0, 1], Some((true, true))),
            frame([198, 18, 0, 2], [198, 18, 0, 1], Some((false, true))),
            frame([198, 18, 0, 2], [198, 18, 0, 9], Some((true, false))),
        ] {
            assert_eq!(event_from_frame(&f, t, &me), None);
        }
        // Garbage and truncations never panic.
        let good = frame([198, 18, 0, 2], [198, 18, 0, 1], Some((true, false)));
        for n in 0..good.len() {
            let _ = event_from_frame(&good[..n], t, &me);
        }
    }
}
