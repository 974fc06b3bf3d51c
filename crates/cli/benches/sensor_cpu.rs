//! Sensor overhead: CPU time of `scanwatch sensor run` following a firewall log that
//! grows at a steady SCANWATCH_BENCH_RATE lines/s (default 10,000) for
//! SCANWATCH_BENCH_SECS seconds (default 10), submitting to a real `scanwatch
//! server` on loopback; beside, in the same run and on the same file, the CPU time
//! of `tail -F FILE > /dev/null` (the floor: following a file and nothing else).
//! CPU times are read from /proc/PID/stat (user + system). Linux only.
//! Run with `scripts/bench.sh` or `cargo bench -p scanwatch --bench sensor_cpu`.
#![allow(clippy::unwrap_used)] // a bench may panic on a broken setup

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod live;

use live::{cpu_seconds, Kill};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rate: u64 = std::env::var("SCANWATCH_BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let secs: u64 = std::env::var("SCANWATCH_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let bin = env!("CARGO_BIN_EXE_scanwatch");
    let dir = tempfile::tempdir().unwrap();
    let centre = live::start(bin, dir.path());
    let log = dir.path().join("fw.log");
    std::fs::write(&log, "").unwrap();
    let sensor = Kill(
        Command::new(bin)
            .args(["sensor", "run", "--server", &centre.url])
            .arg("--token-file")
            .arg(&centre.token)
            .arg("--spool")
            .arg(dir.path().join("spool"))
            .arg("--source")
            .arg(format!("{}:netfilter", log.display()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let tail = Kill(
        Command::new("tail")
            .arg("-F")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let (s0, t0) = (
        cpu_seconds(sensor.0.id()).unwrap(),
        cpu_seconds(tail.0.id()).unwrap(),
    );

    // Realistic lines: the demo network as kernel log lines, replayed at `rate`.
    let sc = scanwatch_simulate::demo();
    let lines: Vec<String> = sc
        .generator()
        .flatten()
        .take((rate * secs) as usize)
        .map(|(s, e)| scanwatch_simulate::netfilter_line(&sc.sensor_name(s), &e) + "\n")
        .collect();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let start = Instant::now();
    let per_tick = (rate / 20).max(1) as usize; // 20 appends per second
    for (i, chunk) in lines.chunks(per_tick).enumerate() {
        f.write_all(chunk.concat().as_bytes()).unwrap();
        f.flush().unwrap();
        let due = start + Duration::from_millis(50 * (i as u64 + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2)); // let both catch up
    let sensor_cpu = cpu_seconds(sensor.0.id()).unwrap() - s0;
    let tail_cpu = cpu_seconds(tail.0.id()).unwrap() - t0;
    let achieved = lines.len() as f64 / wall;
    println!(
        "{} lines appended in {wall:.1} s ({achieved:.0} lines/s)",
        lines.len()
    );
    println!("{:<44} {:>10} {:>16}", "process", "CPU s", "% of one core");
    for (name, cpu) in [
        ("tail -F FILE > /dev/null (floor)", tail_cpu),
        ("scanwatch sensor run (parse, spool, send)", sensor_cpu),
    ] {
        println!(
            "{name:<44} {cpu:>10.2} {:>15.1}%",
            100.0 * cpu / (wall + 2.0)
        );
    }
    println!(
        "sensor CPU per 10k lines/s: {:.1}% of one core ({:.1}× the tail -F floor)",
        100.0 * sensor_cpu / (wall + 2.0) * 10_000.0 / achieved,
        sensor_cpu / tail_cpu.max(0.01)
    );
}
