//! Measures the memory of open aggregation cells with a counting allocator, on the
//! same simulated input as the throughput figures (a separate binary, so the counting
//! allocator does not slow the throughput figures down).
#![allow(clippy::unwrap_used)] // a test or bench may panic on a broken setup

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[path = "common.rs"]
#[allow(dead_code)]
mod common;

/// Counts allocations so the memory figure is measured, not estimated.
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let hours: usize = std::env::var("SCANWATCH_BENCH_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let full = scanwatch_simulate::demo();
    let mut dense = full.clone();
    dense.random_port_probes_per_hour = 0;
    for (label, sc) in [
        ("demo network (with the random-port long tail)", &full),
        ("busy ports only (no long tail: the worst case)", &dense),
    ] {
        measure(label, &common::netfilter_text_of(sc, hours));
    }
}

fn measure(label: &str, text: &str) {
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
        "memory, {label}: {cells} open (window, protocol, port) cells; {:.0} live heap bytes/cell measured by the allocator (target ≤ 2048)",
        live as f64 / cells as f64,
    );
}
