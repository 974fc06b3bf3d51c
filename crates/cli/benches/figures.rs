//! Reproduces every figure in BENCHMARKS.md, each beside a baseline measured in the
//! same run, as a ratio (the machines are shared and noisy, so only ratios compare).
//! Run with `scripts/bench.sh` or `cargo bench -p scanwatch --bench figures`.
#![allow(clippy::unwrap_used)] // a test or bench may panic on a broken setup

use std::time::Instant;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

/// Counts allocations so the memory figure is measured, not estimated.
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

#[path = "common.rs"]
mod common;

/// Best of `reps` runs, in seconds.
fn best<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let hours: usize = std::env::var("SCANWATCH_BENCH_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let text = common::netfilter_text(hours);
    let lines = text.lines().count() as f64;
    let mb = text.len() as f64 / 1e6;
    println!("input: {hours} simulated hours, {lines:.0} netfilter lines, {mb:.1} MB, one thread (one core)");
    let reps = 5;
    let base = best(reps, || common::bare_loop(&text));
    let parse = best(reps, || common::parse_only(&text));
    let full = best(reps, || common::pipeline(&text));
    let parsed = common::parsed_events(&text);
    let agg = best(reps, || common::aggregate_detect(&parsed));
    println!(
        "{:<34} {:>14} {:>10} {:>12}",
        "figure", "lines/s", "MB/s", "vs bare loop"
    );
    for (name, t) in [
        ("bare loop (split + DPT=)", base),
        ("netfilter parse", parse),
        ("parse + aggregate + detect", full),
        ("aggregate + detect (pre-parsed)", agg),
    ] {
        println!(
            "{:<34} {:>14.0} {:>10.1} {:>11.1}%",
            name,
            lines / t,
            mb / t,
            100.0 * base / t
        );
    }

    // Memory per active (window, protocol, port) cell: hold many windows open by
    // giving the aggregator a lateness longer than the input, then measure.
    use scanwatch_pipeline::{sensor_key, Pipeline, PipelineConfig};
    let mut cfg = PipelineConfig::new(3_600_000, 7 * 86_400_000);
    cfg.aggregate.lateness_ms = i64::MAX / 4;
    let opts = scanwatch_formats::ParserOptions {
        reference_time: scanwatch_event::Timestamp(1_796_000_000_000),
    };
    let mut p = scanwatch_formats::format_by_name("netfilter")
        .expect("registered")
        .parser(&opts);
    let events: Vec<_> = text
        .lines()
        .filter_map(|l| match p.parse_line(l) {
            scanwatch_formats::LineOutcome::Event { event, host } => {
                Some((sensor_key(host.unwrap_or("")), event))
            }
            _ => None,
        })
        .collect();
    let region = Region::new(GLOBAL);
    let mut pl = Pipeline::new(cfg);
    for (k, e) in &events {
        pl.push(*k, e);
    }
    let stats = region.change();
    let live = stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
        + stats.bytes_reallocated as i64;
    let cells = pl.open_cells().max(1);
    println!(
        "memory: {cells} open (window, protocol, port) cells; {:.0} live heap bytes/cell measured by the allocator (target ≤ 2048)",
        live as f64 / cells as f64,
    );
}
