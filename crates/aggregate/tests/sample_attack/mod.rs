//! The attack on the witnesses' sample (`witness`), shared by the two test
//! binaries that run it without a seed and under one (the seed is set once per
//! process). Past 4,096 sources a cell keeps the sources of smallest rank, and
//! the count of sources only one sensor saw is scaled from that sample. A sensor
//! that can predict the ranks reports thousands of addresses that rank lowest,
//! fills the sample, and its scaled "sole sources" become nearly the whole cell:
//! trimming the largest contributor (what detection does) then hides a real surge.

use std::net::{IpAddr, Ipv4Addr};

use scanwatch_aggregate::sample_seed::rank_under;
use scanwatch_aggregate::{decode_window, encode_window, ip_hash, Cell, Window, WITNESS_SOURCES};
use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};

pub const REAL: u32 = 10_000;
const HOSTILE: u64 = 99;

/// A SYN from `src` to tcp/1025 (also the witness bench's events).
pub fn syn(src: IpAddr) -> Event {
    Event {
        time: Timestamp(0),
        proto: Protocol::Tcp,
        src,
        dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
        src_port: Some(40000),
        dst_port: Some(1025),
        flags: TcpFlags(TcpFlags::SYN),
        flags_known: true,
        icmp_type: None,
        direction: Direction::Inbound,
        action: Action::Drop,
        count: 1,
    }
}

/// The hostile sensor's choice: the 4,096 addresses of a /12 that rank lowest by
/// the only ranking it can compute, the public address hash.
pub fn chosen() -> Vec<IpAddr> {
    let mut v: Vec<(u64, IpAddr)> = (0u32..1 << 20)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x6440_0000 | i)))
        .map(|ip| (rank_under(None, ip_hash(ip)), ip))
        .collect();
    v.sort_unstable();
    v.into_iter().take(WITNESS_SOURCES).map(|e| e.1).collect()
}

/// The events of the attack: a surge of 10,000 real sources, each seen by two of
/// twelve sensors, then the hostile sensor's chosen addresses.
pub fn events(chosen: &[IpAddr]) -> Vec<(u64, Event)> {
    let mut v = Vec::new();
    for i in 0..REAL {
        let e = syn(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)));
        v.push((u64::from(i % 12), e.clone()));
        v.push((u64::from((i + 1) % 12), e));
    }
    v.extend(chosen.iter().map(|ip| (HOSTILE, syn(*ip))));
    v
}

pub fn cell(events: &[(u64, Event)]) -> Cell {
    let mut c = Cell::default();
    for (sensor, e) in events {
        c.add(*sensor, e, ip_hash(e.src), 64);
    }
    c
}

/// What trimming the largest contributor leaves of the cell's distinct sources.
pub fn trimmed(c: &Cell) -> u64 {
    let s = c.summary(Protocol::Tcp, 1025, 10);
    let largest = s.sole_sources.first().map_or(0, |e| e.1);
    s.sources.saturating_sub(largest)
}

/// The cell written by the codec and read back.
pub fn round_trip(c: &Cell) -> Cell {
    let mut w = Window::default();
    w.cells.insert((Protocol::Tcp, 1025), c.clone());
    let back = decode_window(&encode_window(&w)).unwrap();
    back.cells[&(Protocol::Tcp, 1025)].clone()
}

/// A cell of 6,000 sources (past the 4,096 a part keeps, not yet pruned in
/// memory) and the same cell written by the codec and read back: their
/// (sources, what trimming leaves).
pub fn through_the_codec() -> [(u64, u64); 2] {
    let c = cell(&events(&[])[..12_000]);
    let read = |c: &Cell| (c.summary(Protocol::Tcp, 1025, 10).sources, trimmed(c));
    [read(&c), read(&round_trip(&c))]
}
