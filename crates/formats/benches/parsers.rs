//! Criterion benches: lines/s and bytes/s of each parser on simulated lines.
#![allow(clippy::unwrap_used)] // a test or bench may panic on a broken setup

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scanwatch_event::{Timestamp, WireEvent};
use scanwatch_formats::{format_by_name, LineOutcome, ParserOptions};

fn lines(format: &str) -> String {
    let sc = scanwatch_simulate::demo();
    let mut out = String::new();
    for (s, e) in sc.generator().take(3).flatten().take(50_000) {
        let name = sc.sensor_name(s);
        let line = match format {
            "netfilter" => scanwatch_simulate::netfilter_line(&name, &e),
            "dshield" => scanwatch_simulate::dshield_line(&name, &e),
            _ => WireEvent::from_event(&e, Some(&name)).to_line(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn bench(c: &mut Criterion) {
    let opts = ParserOptions {
        reference_time: Timestamp(1_796_000_000_000),
    };
    let mut g = c.benchmark_group("parse");
    for name in ["netfilter", "dshield", "jsonl"] {
        let text = lines(name);
        let spec = format_by_name(name).expect("registered");
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(format!("{name}/bytes"), |b| {
            b.iter(|| {
                let mut p = spec.parser(&opts);
                let mut n = 0u64;
                for l in text.lines() {
                    if let LineOutcome::Event { event, .. } = p.parse_line(l) {
                        n += u64::from(event.dst_port.unwrap_or(0));
                    }
                }
                n
            })
        });
        g.throughput(Throughput::Elements(text.lines().count() as u64));
        g.bench_function(format!("{name}/lines"), |b| {
            b.iter(|| {
                let mut p = spec.parser(&opts);
                text.lines()
                    .filter(|l| matches!(p.parse_line(l), LineOutcome::Event { .. }))
                    .count()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
