//! A hostile sensor against the witnesses' sample (`witness`): past 4,096 sources a
//! cell keeps the sources of smallest rank, and the count of sources only one
//! sensor saw is scaled from that sample. A sensor that can predict the ranks
//! reports thousands of addresses that rank lowest, fills the sample, and its
//! scaled "sole sources" become nearly the whole cell: trimming the largest
//! contributor (what detection does) then hides a real surge. Under the
//! deployment's secret seed it cannot predict them.
//!
//! One test, in this process of its own: the sample seed is set once per process,
//! so the same attack runs first without a seed (it must work: the test can
//! fail), then under a seed (it must not).
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use std::net::{IpAddr, Ipv4Addr};

use scanwatch_aggregate::witness::{rank_under, ranking, set_sample_seed};
use scanwatch_aggregate::{decode_window, encode_window, ip_hash, Cell, Window, WITNESS_SOURCES};
use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};

const REAL: u32 = 10_000;
const HOSTILE: u64 = 99;

fn syn(src: IpAddr) -> Event {
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
fn chosen() -> Vec<IpAddr> {
    let mut v: Vec<(u64, IpAddr)> = (0u32..1 << 20)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x6440_0000 | i)))
        .map(|ip| (rank_under(None, ip_hash(ip)), ip))
        .collect();
    v.sort_unstable();
    v.into_iter().take(WITNESS_SOURCES).map(|e| e.1).collect()
}

/// A surge of 10,000 real sources, each seen by two of twelve sensors, plus the
/// hostile sensor's chosen addresses; what trimming the largest contributor
/// leaves of the distinct sources.
fn trimmed(chosen: &[IpAddr]) -> (u64, Cell) {
    let mut c = Cell::default();
    for i in 0..REAL {
        let e = syn(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)));
        let h = ip_hash(e.src);
        c.add(u64::from(i % 12), &e, h, 64);
        c.add(u64::from((i + 1) % 12), &e, h, 64);
    }
    for ip in chosen {
        c.add(HOSTILE, &syn(*ip), ip_hash(*ip), 64);
    }
    let s = c.summary(Protocol::Tcp, 1025, 10);
    let largest = s.sole_sources.first().map_or(0, |e| e.1);
    (s.sources.saturating_sub(largest), c)
}

fn round_trip(c: &Cell) -> Cell {
    let mut w = Window::default();
    w.cells.insert((Protocol::Tcp, 1025), c.clone());
    let back = decode_window(&encode_window(&w)).unwrap();
    back.cells[&(Protocol::Tcp, 1025)].clone()
}

#[test]
fn a_hostile_sensor_fills_an_unkeyed_sample_but_not_a_keyed_one() {
    let chosen = chosen();

    // No seed (as `analyze` runs): the chosen addresses fill the sample.
    assert_eq!(ranking(), 0);
    let (left, unkeyed) = trimmed(&chosen);
    eprintln!("without a seed: {left} of {REAL} real sources left after trimming");
    assert!(
        left < 2_000,
        "without a seed the hostile sensor should hide the surge: {left} of {REAL} sources left"
    );
    let stored = encode_window(&{
        let mut w = Window::default();
        w.cells.insert((Protocol::Tcp, 1025), unkeyed.clone());
        w
    });
    let stored_entries = unkeyed.witnesses.entries();

    // Under the deployment's seed the same addresses rank at random.
    set_sample_seed(0x5eed_1234_abcd_0042).unwrap();
    set_sample_seed(0x5eed_1234_abcd_0042).unwrap();
    assert!(set_sample_seed(7).is_err());
    assert_ne!(ranking(), 0);
    let (left, keyed) = trimmed(&chosen);
    eprintln!("under a seed: {left} of {REAL} real sources left after trimming");
    assert!(
        (8_500..=11_500).contains(&left),
        "under a seed the surge should stay: {left} of {REAL} sources left"
    );
    // A keyed sample is written with its ranking and read back as it was.
    let back = round_trip(&keyed);
    assert!(back.witnesses.entries() == keyed.witnesses.entries());
    assert_eq!(back.witnesses.bound(), keyed.witnesses.bound());
    assert!(back.witnesses.sampled());

    // A sample drawn by the address hash (stored before the seed) is read as a
    // sample of its own entries: nothing of it is lost, its bound is this
    // process's rank of them, and merging the same sources again changes nothing.
    let old = decode_window(&stored).unwrap().cells[&(Protocol::Tcp, 1025)].clone();
    assert!(old.witnesses.entries() == stored_entries);
    assert!(old.witnesses.sampled());
    let mut again = old.clone();
    again.merge(&old, 64);
    assert!(again.witnesses.entries() == stored_entries);
}
