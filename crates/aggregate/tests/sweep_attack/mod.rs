//! The attack on a source's spread (`spread`), shared by the two test binaries
//! that run it without a seed and under one (the seed is set once per process).
//! Past 4,096 ports a source keeps the ports of smallest rank. A sensor that can
//! predict the ranks reports a real sweeper on the 4,096 ports that rank lowest:
//! the honest sensors' ports leave the record, trimming the hostile sensor's own
//! ports leaves nothing, and the sweep is not recognised (its sources are then
//! counted in every port they probed and no sweep warning is raised). Needs
//! `sample_attack` beside it (its event).

use std::net::{IpAddr, Ipv4Addr};

use scanwatch_aggregate::{
    decode_window, encode_window, ip_hash, port_key, Spread, SweepRule, Window,
};
use scanwatch_event::{Event, Protocol};

/// The real sweeper's ports: tcp 20,000–20,999, each seen by one of eight sensors.
pub const SWEPT: u16 = 1_000;
const FIRST_SWEPT: u16 = 20_000;
const HOSTILE: u64 = 99;

pub fn sweeper() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))
}

/// A SYN from `src` to `proto`/`port` (the witnesses' scenario's event, aimed).
fn probe(src: IpAddr, proto: Protocol, port: u16) -> Event {
    let mut e = crate::sample_attack::syn(src);
    e.proto = proto;
    e.dst_port = Some(port);
    e
}

/// The real sweep: `SWEPT` ports of `src`, each seen by one of eight sensors.
pub fn sweep(src: IpAddr) -> Vec<(u64, Event)> {
    sweep_from(src, FIRST_SWEPT, SWEPT)
}

/// `n` tcp ports of `src` from `first` on, each seen by one of eight sensors.
pub fn sweep_from(src: IpAddr, first: u16, n: u16) -> Vec<(u64, Event)> {
    (0..n)
        .map(|i| (u64::from(i % 8), probe(src, Protocol::Tcp, first + i)))
        .collect()
}

/// The hostile sensor's choice without the seed: the 4,096 ports whose keys are
/// smallest (tcp 0–4,095; the rank without a seed is the key).
pub fn lowest(src: IpAddr) -> Vec<(u64, Event)> {
    (0..4_096u16)
        .map(|p| (HOSTILE, probe(src, Protocol::Tcp, p)))
        .collect()
}

/// The hostile sensor's choice under a seed it does not know: every udp port.
#[allow(dead_code)] // used by the keyed binary only
pub fn flood(src: IpAddr) -> Vec<(u64, Event)> {
    (0..=u16::MAX)
        .map(|p| (HOSTILE, probe(src, Protocol::Udp, p)))
        .collect()
}

/// A real source of a surge: tcp/1025 seen by two sensors.
#[allow(dead_code)] // used by the keyed binary only
pub fn surge_source(src: IpAddr) -> Vec<(u64, Event)> {
    (0..2u64)
        .map(|s| (s, probe(src, Protocol::Tcp, 1025)))
        .collect()
}

pub fn window(events: &[(u64, Event)]) -> Window {
    let mut w = Window::default();
    for (sensor, e) in events {
        w.add(*sensor, e, 64);
    }
    w
}

/// The source's spread in the window.
pub fn spread(w: &Window, src: IpAddr) -> &Spread {
    w.spreads
        .get(ip_hash(src))
        .expect("the source has a spread")
}

/// Whether `src` is a sweeper of the window under the default rule.
pub fn is_sweeper(w: &Window, src: IpAddr) -> bool {
    w.spreads
        .sweepers(SweepRule::default())
        .contains_key(&ip_hash(src))
}

/// What trimming the largest contributor leaves of the source's ports.
pub fn trimmed(w: &Window, src: IpAddr) -> u64 {
    spread(w, src).trimmed_ports(SweepRule::default().trim)
}

/// Kept ports the honest sensors saw (what trimming would leave unscaled).
#[allow(dead_code)] // used by the keyed binary only
pub fn honest_kept(w: &Window, src: IpAddr) -> usize {
    let swept = port_key(Protocol::Tcp, FIRST_SWEPT)..port_key(Protocol::Tcp, FIRST_SWEPT + SWEPT);
    spread(w, src)
        .ports()
        .filter(|p| swept.contains(&p.key))
        .count()
}

/// The window written by the codec and read back.
#[allow(dead_code)] // used by the keyed binary only
pub fn round_trip(w: &Window) -> Window {
    decode_window(&encode_window(w)).expect("a window reads back")
}

/// A campaign of five sweepers of 203.0.113.0/24, three past the cap (tcp
/// 1–65,535, tcp 1–30,000 and tcp 10,001–20,000) and two below it (tcp
/// 10,001–10,200 each), each port seen by one of eight sensors. 65,535 ports
/// together; tcp 10,001–10,200 reached by all five.
pub fn campaign() -> Vec<(u64, Event)> {
    let at = |last: u8| IpAddr::V4(Ipv4Addr::new(203, 0, 113, last));
    let mut all = sweep_from(at(1), 1, u16::MAX);
    all.extend(sweep_from(at(2), 1, 30_000));
    all.extend(sweep_from(at(3), 10_001, 10_000));
    all.extend(sweep_from(at(4), 10_001, 200));
    all.extend(sweep_from(at(5), 10_001, 200));
    all
}

/// How many of the campaign's sweepers reached tcp `port`.
pub fn campaign_reached(port: u16) -> u64 {
    u64::from(port >= 1)
        + u64::from((1..=30_000).contains(&port))
        + u64::from((10_001..=20_000).contains(&port))
        + 2 * u64::from((10_001..=10_200).contains(&port))
}

/// The window's one sweep (campaign) under the default rule.
pub fn the_sweep(w: &Window) -> scanwatch_aggregate::Sweep {
    let closed = scanwatch_aggregate::ClosedWindow::from_window(
        scanwatch_event::Timestamp(0),
        3_600_000,
        w,
        10,
        SweepRule::default(),
    );
    assert_eq!(closed.sweeps.len(), 1, "one campaign");
    closed.sweeps.into_iter().next().expect("a sweep")
}
