//! Reproduces every figure in BENCHMARKS.md, each beside a baseline measured in the
//! same run, as a ratio (the machines are shared and noisy, so only ratios compare).
//! Run with `scripts/bench.sh` or `cargo bench -p scanwatch --bench figures`.
#![allow(clippy::unwrap_used)] // a test or bench may panic on a broken setup

use std::time::Instant;

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
    // A profiling mode (`SCANWATCH_BENCH_ONLY`) of another bench, or misspelt:
    // nothing runs in its place (`cargo bench -p` runs every bench of the crate).
    let only = std::env::var("SCANWATCH_BENCH_ONLY")
        .ok()
        .filter(|o| !o.is_empty());
    if let Some(o) = only
        .as_deref()
        .filter(|o| !["aggregate", "analyze1", "analyze2"].contains(o))
    {
        println!("SCANWATCH_BENCH_ONLY={o}: not this bench's mode (aggregate, analyze1, analyze2); nothing run");
        return;
    }
    let hours: usize = std::env::var("SCANWATCH_BENCH_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let text = common::netfilter_text(hours);
    if only.as_deref() == Some("aggregate") {
        // For profiling: aggregation alone, many times.
        let parsed = common::parsed_events(&text);
        let t = best(10, || common::aggregate_detect(&parsed));
        println!(
            "aggregate + detect: {:.0} events/s",
            parsed.len() as f64 / t
        );
        return;
    }
    let lines = text.lines().count() as f64;
    let mb = text.len() as f64 / 1e6;
    println!("input: {hours} simulated hours, {lines:.0} netfilter lines, {mb:.1} MB, one thread (one core) unless said");
    // The real command on a file: reading, format detection, sensor naming, merge.
    let path = std::env::temp_dir().join(format!("scanwatch-bench-{}.log", std::process::id()));
    std::fs::write(&path, &text).expect("write temp file");
    let args = scanwatch::analyze::AnalyzeArgs {
        files: vec![path.display().to_string()],
        format: "auto".into(),
        detection: scanwatch::analyze::DetectionArgs {
            window: "1h".into(),
            history: "7d".into(),
            lateness: None,
            min_history: "1d".into(),
            min_sources: 20,
            min_sensors: 3,
            trim_sensors: 1,
            blocklist_min_sensors: 2,
            sweep_ports: scanwatch_aggregate::SweepRule::DEFAULT_MIN_PORTS,
            network_index: true,
        },
        sensor_id: scanwatch::input::SensorId::Host,
        year: Some(2026),
        json: true,
        emit: scanwatch::analyze::Emit::Alerts,
        context: scanwatch::intel::ContextArgs::default(),
        threads: std::num::NonZeroUsize::new(1),
        color: scanwatch::analyze::ColorChoice::Never,
        fail_on: None,
    };
    let analyze = |args: &scanwatch::analyze::AnalyzeArgs| {
        let mut out = Vec::new();
        let mut err = Vec::new();
        scanwatch::analyze::run(args, &mut out, &mut err).expect("analyze runs");
        out
    };
    if let Some(threads @ ("analyze1" | "analyze2")) = only.as_deref() {
        // For profiling: `analyze` alone on one or two threads, many times.
        let n = if threads == "analyze1" { 1 } else { 2 };
        let run = scanwatch::analyze::AnalyzeArgs {
            threads: std::num::NonZeroUsize::new(n),
            ..args.clone()
        };
        let t = best(10, || analyze(&run).len());
        println!("analyze, {n} thread(s): {:.0} lines/s", lines / t);
        let _ = std::fs::remove_file(&path);
        return;
    }
    let reps = 5;
    let base = best(reps, || common::bare_loop(&text));
    let base_std = best(reps, || common::bare_loop_std(&path));
    assert_eq!(
        common::bare_loop(&text),
        common::bare_loop_std(&path),
        "the two bare loops count alike"
    );
    let parse = best(reps, || common::parse_only(&text));
    let full = best(reps, || common::pipeline(&text));
    let parsed = common::parsed_events(&text);
    let agg = best(reps, || common::aggregate_detect(&parsed));
    let e2e = best(reps, || analyze(&args).len());
    let threaded = scanwatch::analyze::AnalyzeArgs {
        threads: std::num::NonZeroUsize::new(2),
        ..args.clone()
    };
    let e2e2 = best(reps, || analyze(&threaded).len());
    assert_eq!(
        analyze(&args),
        analyze(&threaded),
        "same output, 1 or 2 threads"
    );
    let _ = std::fs::remove_file(&path);
    println!(
        "{:<34} {:>14} {:>10} {:>12}",
        "figure", "lines/s", "MB/s", "vs bare loop"
    );
    for (name, t) in [
        ("bare loop (split + DPT=)", base),
        ("bare loop, std lines of the file", base_std),
        ("netfilter parse", parse),
        ("parse + aggregate + detect", full),
        ("aggregate + detect (pre-parsed)", agg),
        ("scanwatch analyze on a file", e2e),
        ("analyze, parse on a 2nd thread", e2e2),
    ] {
        println!(
            "{:<34} {:>14.0} {:>10.1} {:>11.1}%",
            name,
            lines / t,
            mb / t,
            100.0 * base / t
        );
    }

    // Against the plain program over the file (issue 14's first figure): the
    // real command on the same file.
    println!("{:<34} {:>14} {:>10} {:>12}", "", "", "", "vs std lines");
    for (name, t) in [
        ("scanwatch analyze on a file", e2e),
        ("analyze, parse on a 2nd thread", e2e2),
    ] {
        println!(
            "{name:<34} {:>14} {:>10} {:>11.1}%",
            "",
            "",
            100.0 * base_std / t
        );
    }

    // The cost of sweep recognition (docs/detection.md, "Sweeps"): the same work
    // with the rule on (the default) and off, alternately, best of each.
    let no_sweeps = scanwatch::analyze::AnalyzeArgs {
        detection: scanwatch::analyze::DetectionArgs {
            sweep_ports: 0,
            ..args.detection.clone()
        },
        ..args.clone()
    };
    std::fs::write(&path, &text).expect("write temp file");
    let (mut on_a, mut off_a, mut on_e, mut off_e) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..reps {
        off_a = off_a.min(best(1, || {
            common::aggregate_detect_with(&parsed, scanwatch_aggregate::SweepRule::off())
        }));
        on_a = on_a.min(best(1, || common::aggregate_detect(&parsed)));
        off_e = off_e.min(best(1, || analyze(&no_sweeps).len()));
        on_e = on_e.min(best(1, || analyze(&args).len()));
    }
    let _ = std::fs::remove_file(&path);
    println!("sweep recognition (on / off, same run):");
    for (name, on, off) in [
        ("aggregate + detect (pre-parsed)", on_a, off_a),
        ("scanwatch analyze on a file", on_e, off_e),
    ] {
        println!(
            "{:<34} {:>11.0} on {:>11.0} off  throughput ×{:.3}",
            name,
            lines / on,
            lines / off,
            off / on
        );
    }

    println!("(memory per cell: cargo bench -p scanwatch --bench memory)");
}
