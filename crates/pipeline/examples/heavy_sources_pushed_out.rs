//! A known open weakness (docs/security.md, "Heavy sources pushed out"): one
//! hostile sensor empties a surge warning's corroborated top sources by reporting
//! a few hundred made-up sources, each in one line of a high `count`, in the
//! surge's first window. Prints, for 0 to 1,000 such sources, whether the golden
//! seed-surge network's surge still warns in its first window, its trimmed
//! sources, and how many corroborated and uncorroborated top sources it names.
//! Run with `cargo run --release -p scanwatch-pipeline --example heavy_sources_pushed_out`.
#![allow(clippy::unwrap_used)] // an example may panic on a broken setup

use std::net::{IpAddr, Ipv4Addr};

#[path = "../tests/common/mod.rs"]
mod common;

use common::{run, seed_surge, HOUR};
use scanwatch_detect::AlertKind;
use scanwatch_event::Timestamp;

fn main() {
    let (sc, onset) = seed_surge();
    let honest = sc.all_events();
    let template = honest
        .iter()
        .find(|(_, e)| e.dst_port == Some(1025) && e.time.0 >= onset && e.time.0 < onset + HOUR)
        .unwrap()
        .1
        .clone();
    for fakes in [0usize, 100, 200, 300, 500, 1_000] {
        let mut events = honest.clone();
        for k in 0..fakes {
            let mut f = template.clone();
            f.src = IpAddr::V4(Ipv4Addr::new(100, 99, (k / 250) as u8, (k % 250) as u8));
            f.time = Timestamp(onset + HOUR - 1_000);
            f.count = 60_000;
            events.push((2, f));
        }
        events.sort_by_key(|(s, e)| (e.time, *s));
        let alerts = run(&sc, &events);
        match alerts.iter().find(|a| {
            a.port == 1025 && a.kind == AlertKind::Surge && !a.is_update && a.window_start.0 == onset
        }) {
            Some(a) => println!(
                "{fakes:>5} made-up sources: warned, trimmed sources {}, top_sources {}, uncorroborated_sources {}",
                a.trimmed.sources,
                a.top_sources.len(),
                a.uncorroborated_sources.len()
            ),
            None => println!("{fakes:>5} made-up sources: no warning in the first window"),
        }
    }
}
