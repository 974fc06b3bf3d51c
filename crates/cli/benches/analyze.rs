//! Criterion bench: `analyze` end to end in memory (parse + aggregate + detect) beside
//! the bare loop, on simulated netfilter lines.
#![allow(clippy::unwrap_used)] // a test or bench may panic on a broken setup

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "common.rs"]
mod common;

fn bench(c: &mut Criterion) {
    let text = common::netfilter_text(6);
    let lines = text.lines().count() as u64;
    let mut g = c.benchmark_group("analyze");
    g.throughput(Throughput::Elements(lines));
    g.bench_function("bare_loop", |b| b.iter(|| common::bare_loop(&text)));
    g.bench_function("parse", |b| b.iter(|| common::parse_only(&text)));
    g.bench_function("parse_aggregate_detect", |b| {
        b.iter(|| common::pipeline(&text))
    });
    let parsed = common::parsed_events(&text);
    g.bench_function("aggregate_detect", |b| {
        b.iter(|| common::aggregate_detect(&parsed))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
