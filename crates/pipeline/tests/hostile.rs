//! One hostile sensor cannot hide a surge by making its sources look like sweepers:
//! in the golden seed-surge network, sensor-03 reports every TCP/1025 source of the
//! surge's hours as having also probed 150 other ports. The surge still warns in
//! its first window with the same sources, no sweep warning appears, and the 150
//! invented ports (each "seen" by that sensor alone) raise nothing.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use common::{run, seed_surge, HOUR};
use scanwatch_detect::{Alert, AlertKind};

#[test]
fn a_hostile_sensor_cannot_turn_a_surge_into_a_sweep() {
    let (sc, onset) = seed_surge();
    let honest = sc.all_events();
    let mut hostile = honest.clone();
    for (_, e) in honest.iter().filter(|(_, e)| {
        e.dst_port == Some(1025) && e.time.0 >= onset && e.time.0 < onset + 12 * HOUR
    }) {
        for p in 0..150u16 {
            let mut fake = e.clone();
            fake.dst_port = Some(20_000 + p);
            hostile.push((2, fake));
        }
    }
    hostile.sort_by_key(|(s, e)| (e.time, *s));
    let (a, b) = (run(&sc, &honest), run(&sc, &hostile));
    let first = |v: &[Alert]| {
        v.iter()
            .find(|x| x.port == 1025 && x.kind == AlertKind::Surge && !x.is_update)
            .map(|x| (x.window_start.0, x.trimmed.sources))
    };
    let (honest_first, hostile_first) = (first(&a), first(&b));
    assert_eq!(honest_first.map(|f| f.0), Some(onset));
    assert_eq!(hostile_first.map(|f| f.0), Some(onset), "{b:#?}");
    // The same trimmed sources: none of them was set aside as a sweeper.
    assert_eq!(hostile_first, honest_first);
    assert!(
        b.iter().all(|x| x.kind != AlertKind::Sweep),
        "no sweep warning"
    );
    assert!(
        b.iter().all(|x| x.port == 1025),
        "the invented ports raise nothing: {:?}",
        b.iter().map(|x| x.port).collect::<Vec<_>>()
    );
}
