//! The attack on a cell's distinct-source sketch, shared by the two test binaries
//! that run it without a seed and under one. A HyperLogLog keeps, per register,
//! the longest run of leading zeros of its keys' hashes, and its hash is public
//! (every process must agree on it). A sensor searches offline, for each
//! register, the address whose hash sets it highest, and reports those 16,384
//! addresses on a busy port once each: the sketch then reads millions of sources,
//! and after trimming the hostile sensor's share, the honest share scaled to
//! millions is a fake surge. Needs `sample_attack` beside it (its event).

use std::net::{IpAddr, Ipv4Addr};

use scanwatch_aggregate::{ip_hash, Cell, SourceIp, HLL_LG_K};
use scanwatch_event::{Event, Protocol};

/// Real sources of the port: 200, each seen by two of ten sensors, five events each.
pub const REAL: u32 = 200;
const HOSTILE: u64 = 99;

/// The register and value a source sets in the sketch. The crate keeps its
/// coupon's fields private; its `Debug` shows the packed number (value above 26
/// bits of slot), which is what an attacker computes.
fn register(ip: IpAddr) -> (u32, u32) {
    let c = datasketches::hll::Coupon::from_value(SourceIp(ip));
    let packed: u32 = format!("{c:?}")
        .trim_start_matches("Coupon(")
        .trim_end_matches(')')
        .parse()
        .expect("a coupon prints as Coupon(n)");
    ((packed & ((1 << 26) - 1)) % (1 << HLL_LG_K), packed >> 26)
}

/// For each register, the address of a /10 that sets it highest.
pub fn chosen() -> Vec<IpAddr> {
    let mut best = vec![(0u32, IpAddr::V4(Ipv4Addr::UNSPECIFIED)); 1 << HLL_LG_K];
    for i in 0u32..(1 << 22) {
        let ip = IpAddr::V4(Ipv4Addr::from(0x6440_0000 | i));
        let (slot, value) = register(ip);
        if value > best[slot as usize].0 {
            best[slot as usize] = (value, ip);
        }
    }
    best.into_iter()
        .filter(|(v, _)| *v > 0)
        .map(|(_, ip)| ip)
        .collect()
}

/// The honest port: `REAL` sources, each seen by two of ten sensors.
pub fn honest() -> Cell {
    let mut c = Cell::default();
    for i in 0..REAL {
        let e = crate::sample_attack::syn(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)));
        for k in 0..5 {
            c.add(u64::from((i + k % 2) % 10), &e, ip_hash(e.src), 64);
        }
    }
    c
}

/// The honest port with the hostile sensor's chosen addresses, once each, in
/// lines of `count`.
pub fn attacked(chosen: &[IpAddr], count: u32) -> Cell {
    let mut c = honest();
    for ip in chosen {
        let e = Event {
            count,
            ..crate::sample_attack::syn(*ip)
        };
        c.add(HOSTILE, &e, ip_hash(e.src), 64);
    }
    c
}

/// (distinct sources, what trimming the largest contributor leaves).
pub fn read(c: &Cell) -> (u64, u64) {
    let s = c.summary(Protocol::Tcp, 1025, 10);
    let largest = s.sole_sources.first().map_or(0, |e| e.1);
    (s.sources, s.sources.saturating_sub(largest))
}
