//! Raw events as compressed blocks: how the embedded store keeps the events of a
//! batch (one block per hour of event time a batch touches) instead of one row per
//! event (`scanwatch-store`, `sqlite/events.rs`). The layout is by column (times as deltas, protocols, flags, addresses,
//! ports, counts), then deflated at level 1 (`flate2`): the columns compress well
//! and one block is one row to write, read and delete.
//!
//! Hand-written because no crate stores our event type by column; the format is
//! versioned, and the decoder refuses anything malformed with a reason (fuzzed:
//! `fuzz/fuzz_targets/event_block.rs`), allocating no more than the input can
//! hold.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bytes::{put_var, ReadError, Reader};
use crate::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};

/// Version of the block format (its first byte).
pub const BLOCK_FORMAT: u8 = 1;

/// Most events one block holds when read back (a batch is far smaller).
pub const MAX_BLOCK_EVENTS: usize = 4_000_000;

/// The most bytes one event takes in the uncompressed columns.
const MAX_EVENT_BYTES: usize = 10 + 1 + 1 + 1 + 16 + 16 + 2 + 2 + 1 + 1 + 5;

/// Why a block could not be read.
#[derive(Debug, thiserror::Error)]
#[error("event block: {0}")]
pub struct BlockError(String);

fn bad(why: impl Into<String>) -> BlockError {
    BlockError(why.into())
}

// Bits of the per-event shape byte.
const SRC_V6: u8 = 1;
const DST_V6: u8 = 2;
const SRC_PORT: u8 = 4;
const DST_PORT: u8 = 8;
const FLAGS: u8 = 16;
const ICMP: u8 = 32;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn direction_code(d: Direction) -> u8 {
    match d {
        Direction::Unknown => 0,
        Direction::Inbound => 1,
        Direction::Outbound => 2,
    }
}

fn action_code(a: Action) -> u8 {
    match a {
        Action::Unknown => 0,
        Action::Accept => 1,
        Action::Drop => 2,
        Action::Reject => 3,
    }
}

fn put_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

/// The bytes of a block of events, in their order.
pub fn encode_events(events: &[Event]) -> Vec<u8> {
    let n = events.len();
    let mut times = Vec::with_capacity(n * 2);
    let mut protos = Vec::with_capacity(n);
    let mut shapes = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut srcs = Vec::with_capacity(n * 4);
    let mut dsts = Vec::with_capacity(n * 4);
    let mut ports = Vec::with_capacity(n * 4);
    let mut small = Vec::with_capacity(n);
    let mut counts = Vec::with_capacity(n);
    let mut last = 0i64;
    for e in events {
        put_var(&mut times, zigzag(e.time.0.wrapping_sub(last)));
        last = e.time.0;
        protos.push(e.proto.number());
        let mut shape = 0;
        if e.src.is_ipv6() {
            shape |= SRC_V6;
        }
        if e.dst.is_ipv6() {
            shape |= DST_V6;
        }
        if let Some(p) = e.src_port {
            shape |= SRC_PORT;
            ports.extend_from_slice(&p.to_le_bytes());
        }
        if let Some(p) = e.dst_port {
            shape |= DST_PORT;
            ports.extend_from_slice(&p.to_le_bytes());
        }
        if e.flags_known {
            shape |= FLAGS;
            small.push(e.flags.0);
        }
        if let Some(t) = e.icmp_type {
            shape |= ICMP;
            small.push(t);
        }
        shapes.push(shape);
        kinds.push(direction_code(e.direction) << 2 | action_code(e.action));
        put_ip(&mut srcs, e.src);
        put_ip(&mut dsts, e.dst);
        put_var(&mut counts, u64::from(e.count));
    }
    let mut body = Vec::with_capacity(times.len() + n * 16);
    for col in [
        &times, &protos, &shapes, &kinds, &srcs, &dsts, &ports, &small, &counts,
    ] {
        body.extend_from_slice(col);
    }
    let mut out = vec![BLOCK_FORMAT];
    put_var(&mut out, n as u64);
    put_var(&mut out, body.len() as u64);
    let mut z = flate2::write::DeflateEncoder::new(out, flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = z.write_all(&body);
    z.finish().unwrap_or_default()
}

impl From<ReadError> for BlockError {
    fn from(e: ReadError) -> BlockError {
        BlockError(e.0.to_string())
    }
}

fn ip(r: &mut Reader<'_>, v6: bool) -> Result<IpAddr, BlockError> {
    Ok(if v6 {
        let b: [u8; 16] = r.take(16)?.try_into().map_err(|_| bad("truncated"))?;
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        let b = r.take(4)?;
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    })
}

/// Reads a block made by [`encode_events`].
pub fn decode_events(bytes: &[u8]) -> Result<Vec<Event>, BlockError> {
    let mut head = Reader::new(bytes);
    let version = head.u8()?;
    if version != BLOCK_FORMAT {
        return Err(bad(format!(
            "format version {version}, this build reads {BLOCK_FORMAT}"
        )));
    }
    let n = usize::try_from(head.var()?).map_err(|_| bad("count too large"))?;
    let len = usize::try_from(head.var()?).map_err(|_| bad("length too large"))?;
    if n > MAX_BLOCK_EVENTS || len > n.saturating_mul(MAX_EVENT_BYTES) {
        return Err(bad(format!("{n} events in {len} bytes")));
    }
    let mut body = Vec::with_capacity(len.min(1 << 20));
    flate2::read::DeflateDecoder::new(head.rest)
        .take(len as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| bad(format!("deflate: {e}")))?;
    if body.len() != len {
        return Err(bad(format!(
            "{} bytes of columns, {len} announced",
            body.len()
        )));
    }
    // Column by column: the fixed-size ones are sliced off once the shapes say how
    // long they are.
    let mut r = Reader::new(&body);
    let mut times = Vec::with_capacity(n);
    let mut last = 0i64;
    for _ in 0..n {
        last = last.wrapping_add(unzigzag(r.var()?));
        times.push(last);
    }
    let protos = r.take(n)?;
    let shapes = r.take(n)?;
    let kinds = r.take(n)?;
    let width = |bit: u8| -> usize {
        shapes
            .iter()
            .map(|s| if s & bit != 0 { 16 } else { 4 })
            .sum()
    };
    let mut srcs = Reader::new(r.take(width(SRC_V6))?);
    let mut dsts = Reader::new(r.take(width(DST_V6))?);
    let port_bytes: usize = shapes
        .iter()
        .map(|s| 2 * (usize::from(s & SRC_PORT != 0) + usize::from(s & DST_PORT != 0)))
        .sum();
    let mut ports = Reader::new(r.take(port_bytes)?);
    let small_bytes: usize = shapes
        .iter()
        .map(|s| usize::from(s & FLAGS != 0) + usize::from(s & ICMP != 0))
        .sum();
    let mut small = Reader::new(r.take(small_bytes)?);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let shape = shapes[i];
        if shape & !(SRC_V6 | DST_V6 | SRC_PORT | DST_PORT | FLAGS | ICMP) != 0 {
            return Err(bad(format!("unknown shape bits {shape:#x}")));
        }
        let direction = match kinds[i] >> 2 {
            0 => Direction::Unknown,
            1 => Direction::Inbound,
            2 => Direction::Outbound,
            d => return Err(bad(format!("direction {d}"))),
        };
        let action = match kinds[i] & 3 {
            0 => Action::Unknown,
            1 => Action::Accept,
            2 => Action::Drop,
            _ => Action::Reject,
        };
        let src = ip(&mut srcs, shape & SRC_V6 != 0)?;
        let dst = ip(&mut dsts, shape & DST_V6 != 0)?;
        let src_port = (shape & SRC_PORT != 0)
            .then(|| ports.u16_le())
            .transpose()?;
        let dst_port = (shape & DST_PORT != 0)
            .then(|| ports.u16_le())
            .transpose()?;
        let flags = (shape & FLAGS != 0).then(|| small.u8()).transpose()?;
        let icmp_type = (shape & ICMP != 0).then(|| small.u8()).transpose()?;
        let count = u32::try_from(r.var()?).map_err(|_| bad("count too large"))?;
        out.push(Event {
            time: Timestamp(times[i]),
            proto: Protocol::from_number(protos[i]),
            src,
            dst,
            src_port,
            dst_port,
            flags: TcpFlags(flags.unwrap_or(0)),
            flags_known: flags.is_some(),
            icmp_type,
            direction,
            action,
            count,
        });
    }
    if !r.rest.is_empty() {
        return Err(bad("trailing bytes after the columns"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = Event> {
        let ip = prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        ];
        (
            any::<i64>(),
            any::<u8>(),
            (ip.clone(), ip),
            (any::<Option<u16>>(), any::<Option<u16>>()),
            any::<Option<u8>>(),
            any::<Option<u8>>(),
            (0u8..3, 0u8..4),
            1u32..=65_535,
        )
            .prop_map(
                |(t, p, (src, dst), (sp, dp), flags, icmp, (d, a), count)| Event {
                    time: Timestamp(t),
                    proto: Protocol::from_number(p),
                    src,
                    dst,
                    src_port: sp,
                    dst_port: dp,
                    flags: TcpFlags(flags.unwrap_or(0)),
                    flags_known: flags.is_some(),
                    icmp_type: icmp,
                    direction: [Direction::Unknown, Direction::Inbound, Direction::Outbound]
                        [usize::from(d)],
                    action: [
                        Action::Unknown,
                        Action::Accept,
                        Action::Drop,
                        Action::Reject,
                    ][usize::from(a)],
                    count,
                },
            )
    }

    proptest! {
        #[test]
        fn blocks_round_trip(events in prop::collection::vec(event(), 0..200)) {
            let bytes = encode_events(&events);
            prop_assert_eq!(decode_events(&bytes).unwrap(), events);
        }

        #[test]
        fn a_damaged_block_is_refused_or_read_never_a_panic(
            events in prop::collection::vec(event(), 1..50),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut bytes = encode_events(&events);
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            let _ = decode_events(&bytes);
            let _ = decode_events(&bytes[..i]);
        }
    }

    /// Format 1 as written by another encoder (Python's zlib, the fuzz seed): the
    /// layout is the documented one, not whatever this build happens to write.
    #[test]
    fn a_block_written_elsewhere_reads() {
        let bytes = include_bytes!("../../../fuzz/seeds/event_block/two-events");
        let events = decode_events(bytes).unwrap();
        assert_eq!(events.len(), 2);
        let (a, b) = (&events[0], &events[1]);
        assert_eq!(a.time.0, 1_176_958_800_000);
        assert_eq!(b.time.0, 1_176_958_801_000);
        assert_eq!((a.proto, b.proto), (Protocol::Tcp, Protocol::Udp));
        assert_eq!(a.src.to_string(), "192.0.2.1");
        assert_eq!(b.dst.to_string(), "198.18.0.2");
        assert_eq!((a.src_port, a.dst_port), (Some(40000), Some(1025)));
        assert_eq!((b.src_port, b.dst_port), (Some(5353), Some(53)));
        assert!(a.flags_known && a.flags.0 == 2 && !b.flags_known);
        assert_eq!((a.direction, a.action), (Direction::Inbound, Action::Drop));
        assert_eq!(
            (b.direction, b.action),
            (Direction::Unknown, Action::Unknown)
        );
        assert_eq!((a.count, b.count), (1, 3));
        assert_eq!(a.icmp_type, None);
    }

    #[test]
    fn a_newer_format_is_refused_with_its_version() {
        let mut bytes = encode_events(&[]);
        bytes[0] = 9;
        let err = decode_events(&bytes).unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
    }
}
