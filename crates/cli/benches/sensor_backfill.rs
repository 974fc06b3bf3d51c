//! Sensor to centre, end to end: `scanwatch sensor run --once --from-start` sending
//! a netfilter log of SCANWATCH_BENCH_HOURS simulated hours (default 96: about a
//! million lines) to a real `scanwatch server` (embedded store) on loopback, until
//! every event is acknowledged after the centre's durable commit. Beside it, in the
//! same run on the same text, the bare loop (split lines, count ports) as the
//! baseline. CPU times of both processes from /proc/PID/stat. Linux only.
//! Run with `scripts/bench.sh` or `cargo bench -p scanwatch --bench sensor_backfill`.
#![allow(clippy::unwrap_used)] // a bench may panic on a broken setup

#[allow(dead_code)] // this bench uses the text and the bare loop only
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod live;

use live::{cpu_seconds, Kill};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let hours: usize = std::env::var("SCANWATCH_BENCH_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    let bin = env!("CARGO_BIN_EXE_scanwatch");
    let dir = tempfile::tempdir().unwrap();
    let text = common::netfilter_text(hours);
    let lines = text.lines().count();
    let log = dir.path().join("fw.log");
    std::fs::write(&log, &text).unwrap();

    // The baseline, same run, same text: best of three.
    let mut bare = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        std::hint::black_box(common::bare_loop(&text));
        bare = bare.min(t.elapsed().as_secs_f64());
    }
    drop(text);

    let centre = live::start(bin, dir.path());
    let server = &centre.server;
    let server_cpu0 = cpu_seconds(server.0.id()).unwrap();
    let start = Instant::now();
    let mut sensor = Kill(
        Command::new(bin)
            .args([
                "sensor",
                "run",
                "--once",
                "--from-start",
                "--server",
                &centre.url,
            ])
            .arg("--token-file")
            .arg(&centre.token)
            .arg("--spool")
            .arg(dir.path().join("spool"))
            .arg("--source")
            .arg(format!("{}:netfilter", log.display()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The sensor's CPU, read until it exits (the last reading is at most 20 ms old).
    let mut sensor_cpu = 0.0;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let status = loop {
        if let Some(c) = cpu_seconds(sensor.0.id()) {
            sensor_cpu = c;
        }
        if let Some(s) = sensor.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the sensor did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = start.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(server.0.id()).unwrap() - server_cpu0;
    let mut summary = String::new();
    std::io::Read::read_to_string(&mut sensor.0.stderr.take().unwrap(), &mut summary).unwrap();
    assert!(status.success(), "sensor failed: {summary}");
    let summary = summary.lines().last().unwrap_or_default().to_string();
    assert!(
        summary.contains(&format!("{lines} events kept")),
        "not every line was kept: {summary}"
    );
    println!("{lines} lines of netfilter log ({hours} simulated hours), one sensor, embedded centre on loopback");
    println!("{summary}");
    println!("{:<58} {:>12} {:>10}", "path", "events/s", "vs bare");
    println!(
        "{:<58} {:>12.0} {:>9.1}%",
        "bare loop (split lines, count ports), same text",
        lines as f64 / bare,
        100.0
    );
    println!(
        "{:<58} {:>12.0} {:>9.2}%",
        "sensor --once --from-start to acknowledged at the centre",
        lines as f64 / wall,
        100.0 * bare / wall
    );
    println!(
        "wall {wall:.1} s; CPU: sensor {sensor_cpu:.1} s ({:.0}% of the wall), server {server_cpu:.1} s ({:.0}%)",
        100.0 * sensor_cpu / wall,
        100.0 * server_cpu / wall
    );
}
