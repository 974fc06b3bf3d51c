//! The cost of ranking the bounded samples under the deployment's seed
//! (`sample_seed`), without a seed and under one:
//! - the witnesses: events into one cell of 50,000 sources (past the 4,096 kept,
//!   so the sample is drawn) and its read-out;
//! - a source's ports: one window where a source sweeps every tcp port (past the
//!   4,096 kept) seen by eight sensors, and its sweepers read out.
//!
//! The seed is set once per process, so each run is a child process of this
//! bench; the two alternate, three runs each, best of each printed beside the
//! other.
#![allow(clippy::unwrap_used)] // a bench may panic on a broken setup

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use scanwatch_aggregate::{ip_hash, Cell, SweepRule};
use scanwatch_event::{Event, Protocol};

#[path = "../tests/sample_attack/mod.rs"]
#[allow(dead_code)] // the bench uses its events only
mod sample_attack;

#[path = "../tests/sweep_attack/mod.rs"]
#[allow(dead_code)] // the bench uses its events only
mod sweep_attack;

const EVENTS: u32 = 200_000;
const SOURCES: u32 = 50_000;

/// Events per second, best of 15.
fn best_of(events: usize, mut run: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..15 {
        let t = Instant::now();
        run();
        best = best.min(t.elapsed().as_secs_f64());
    }
    events as f64 / best
}

/// (the witnesses' cell, the sweep) in events per second.
fn measure() -> (f64, f64) {
    let evs: Vec<Event> = (0..EVENTS)
        .map(|i| {
            sample_attack::syn(IpAddr::V4(Ipv4Addr::from(
                0x0a00_0000 | (i.wrapping_mul(2_654_435_761) % SOURCES),
            )))
        })
        .collect();
    let cell = best_of(evs.len(), || {
        let mut c = Cell::default();
        for (i, e) in evs.iter().enumerate() {
            c.add((i % 12) as u64, e, ip_hash(e.src), 64);
        }
        std::hint::black_box(c.summary(Protocol::Tcp, 1025, 10));
    });
    let sweep = sweep_attack::sweep_from(sweep_attack::sweeper(), 0, u16::MAX);
    let spread = best_of(sweep.len(), || {
        let w = sweep_attack::window(&sweep);
        std::hint::black_box(w.spreads.sweepers(SweepRule::default()).len());
    });
    (cell, spread)
}

fn child(seeded: bool) -> (f64, f64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(
            "SCANWATCH_SAMPLE_BENCH",
            if seeded { "seeded" } else { "plain" },
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut v = text.split_whitespace().map(|n| n.parse::<f64>().unwrap());
    (v.next().unwrap(), v.next().unwrap())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let print = |(cell, spread): (f64, f64)| println!("{cell} {spread}");
    match std::env::var("SCANWATCH_SAMPLE_BENCH").as_deref() {
        Ok("seeded") => {
            scanwatch_aggregate::sample_seed::set_sample_seed(0x5eed).unwrap();
            print(measure());
        }
        Ok(_) => print(measure()),
        Err(_) => {
            let (mut plain, mut seeded) = ((0f64, 0f64), (0f64, 0f64));
            for _ in 0..3 {
                let p = child(false);
                let s = child(true);
                plain = (plain.0.max(p.0), plain.1.max(p.1));
                seeded = (seeded.0.max(s.0), seeded.1.max(s.1));
            }
            println!("best of 3 × 15, alternating; without a seed the rank is the key itself:");
            println!("one cell of {SOURCES} sources, {EVENTS} events, with its read-out:");
            println!(
                "  without a seed                        {:>12.0} events/s",
                plain.0
            );
            println!(
                "  under a seed (SipHash-1-3 rank)       {:>12.0} events/s  ×{:.3}",
                seeded.0,
                seeded.0 / plain.0
            );
            println!("one source sweeping 65,535 tcp ports seen by 8 sensors, with its sweepers:");
            println!(
                "  without a seed                        {:>12.0} events/s",
                plain.1
            );
            println!(
                "  under a seed (SipHash-1-3 rank)       {:>12.0} events/s  ×{:.3}",
                seeded.1,
                seeded.1 / plain.1
            );
        }
    }
}
