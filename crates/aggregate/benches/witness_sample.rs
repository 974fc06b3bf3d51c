//! The cost of ranking the witnesses' sample under the deployment's seed
//! (`witness`): events into one cell of 50,000 sources (past the 4,096 kept, so
//! the sample is drawn) and its read-out, without a seed and under one. The seed
//! is set once per process, so each run is a child process of this bench; the
//! two alternate, three runs each, best of each printed beside the other.
#![allow(clippy::unwrap_used)] // a bench may panic on a broken setup

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use scanwatch_aggregate::{ip_hash, Cell};
use scanwatch_event::{Event, Protocol};

#[path = "../tests/sample_attack/mod.rs"]
#[allow(dead_code)] // the bench uses its events only
mod sample_attack;

const EVENTS: u32 = 200_000;
const SOURCES: u32 = 50_000;

/// Events per second into the cell, best of 15.
fn measure() -> f64 {
    let evs: Vec<Event> = (0..EVENTS)
        .map(|i| {
            sample_attack::syn(IpAddr::V4(Ipv4Addr::from(
                0x0a00_0000 | (i.wrapping_mul(2_654_435_761) % SOURCES),
            )))
        })
        .collect();
    let mut best = f64::MAX;
    for _ in 0..15 {
        let t = Instant::now();
        let mut c = Cell::default();
        for (i, e) in evs.iter().enumerate() {
            c.add((i % 12) as u64, e, ip_hash(e.src), 64);
        }
        std::hint::black_box(c.summary(Protocol::Tcp, 1025, 10));
        best = best.min(t.elapsed().as_secs_f64());
    }
    f64::from(EVENTS) / best
}

fn child(seeded: bool) -> f64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(
            "SCANWATCH_WITNESS_BENCH",
            if seeded { "seeded" } else { "plain" },
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    match std::env::var("SCANWATCH_WITNESS_BENCH").as_deref() {
        Ok("seeded") => {
            scanwatch_aggregate::witness::set_sample_seed(0x5eed).unwrap();
            println!("{}", measure());
        }
        Ok(_) => println!("{}", measure()),
        Err(_) => {
            let (mut plain, mut seeded) = (0f64, 0f64);
            for _ in 0..3 {
                plain = plain.max(child(false));
                seeded = seeded.max(child(true));
            }
            println!("one cell of {SOURCES} sources, {EVENTS} events, with its read-out (best of 3 × 15, alternating):");
            println!("  without a seed (rank = address hash)  {plain:>12.0} events/s");
            println!(
                "  under a seed (SipHash-1-3 rank)       {seeded:>12.0} events/s  ×{:.3}",
                seeded / plain
            );
        }
    }
}
