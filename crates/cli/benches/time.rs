//! Delay from the first surge event to the stored warning at a live centre
//! (docs/time.md): twelve `scanwatch sensor run` processes follow twelve logs that
//! are written as time passes (30 s windows, six minutes of history before the
//! surge), and a TCP/1025 surge starts on a window boundary. Measured twice, in the
//! same invocation:
//!
//! 1. all twelve sensors live;
//! 2. one of them stalled (SIGSTOP) for three minutes from just before the surge,
//!    so it sends nothing and the centre must stop waiting for it (`idle_after`).
//!
//! The floor is the window itself: no warning can exist before the surge window
//! ends, so each delay is also given as a multiple of the window length.
//!
//!   cargo bench -p scanwatch --bench time

#![allow(clippy::unwrap_used)] // a benchmark may panic on a broken setup

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SENSORS: usize = 12;
const W: i64 = 30;

#[path = "../tests/common/mod.rs"]
mod common;

use common::{admin, bin, free_port};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn line(t_ms: i64, s: usize, src: [u8; 4], port: u16) -> String {
    let d = chrono::DateTime::from_timestamp_millis(t_ms).unwrap();
    format!(
        "{} fw{s:02} kernel: DROP IN=eth0 OUT= MAC=00 SRC={}.{}.{}.{} DST=198.18.0.{} LEN=40 PROTO=TCP SPT=40000 DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0\n",
        d.format("%b %e %H:%M:%S"),
        src[0],
        src[1],
        src[2],
        src[3],
        s + 1
    )
}

/// The lines sensor `s` logs in `[from, to)` ms: per 30 s, 20 on tcp/22 and 4 on
/// tcp/1025, and from `surge` on 140 more on tcp/1025 from ~2,000 sources.
fn lines(s: usize, from: i64, to: i64, surge: i64, seq: &mut u64) -> String {
    let mut out = String::new();
    // One event every 1,500 ms of tcp/22, every 7,500 ms of tcp/1025, and every
    // ~214 ms of surge: evenly spread, so the rates hold for any interval.
    let step = |every: i64| (from.div_euclid(every) + 1) * every;
    let mut t = step(1500);
    while t < to {
        *seq += 1;
        out.push_str(&line(t, s, [198, 51, 100, (*seq % 250) as u8], 22));
        t += 1500;
    }
    let mut t = step(7500);
    while t < to {
        *seq += 1;
        out.push_str(&line(t, s, [203, 0, 113, (*seq % 30) as u8], 1025));
        t += 7500;
    }
    let mut t = step(214).max(surge);
    while t < to {
        *seq += 1;
        let x = seq.wrapping_mul(2_654_435_761);
        out.push_str(&line(t, s, [100, 64, (x >> 8) as u8 & 7, x as u8], 1025));
        t += 214;
    }
    out
}

/// `GET path` with an API token; the body.
fn request(port: u16, path: &str, token: &str) -> Option<String> {
    let auth = format!("Bearer {token}");
    common::request(port, "GET", path, &[("Authorization", &auth)], b"").map(|(_, b)| b)
}

/// One run: returns the delay (ms) from the surge window's start to the warning
/// listed by the API.
fn run(dir: &Path, stall_one: bool) -> i64 {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let data = dir.join("data");
    let tokens: Vec<PathBuf> = (0..SENSORS)
        .map(|s| {
            let f = dir.join(format!("token-{s:02}"));
            common::write_token(&f, admin(&data, &["sensor", "add", &format!("fw-{s:02}")]));
            f
        })
        .collect();
    let api = admin(&data, &["token", "add", "bench", "--role", "analyst"]);
    let port = free_port();
    let cfg = dir.join("server.toml");
    std::fs::write(
        &cfg,
        format!(
            "version = 1\n[server]\ndata = {:?}\nlisten = \"127.0.0.1:{port}\"\n[detection]\nwindow = \"30s\"\nhistory = \"5m\"\nmin_history = \"4m\"\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let _server = Kill(
        bin()
            .args(["server", "--config"])
            .arg(&cfg)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while request(port, "/healthz", "").is_none() {
        assert!(Instant::now() < deadline, "no server");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Six minutes of history, then the surge on the first window boundary at
    // least 40 s from now (the sensors catch up on the history first).
    let start = now_ms();
    let surge = ((start + 40_000).div_euclid(W * 1000) + 1) * W * 1000;
    let files: Vec<PathBuf> = (0..SENSORS)
        .map(|s| dir.join(format!("fw-{s:02}.log")))
        .collect();
    let mut seqs = [0u64; SENSORS];
    for s in 0..SENSORS {
        std::fs::write(
            &files[s],
            lines(s, start - 6 * 60_000, start, surge, &mut seqs[s]),
        )
        .unwrap();
    }
    let sensors: Vec<Kill> = (0..SENSORS)
        .map(|s| {
            Kill(
                bin()
                    .args(["sensor", "run", "--from-start", "--server"])
                    .arg(format!("http://127.0.0.1:{port}"))
                    .arg("--token-file")
                    .arg(&tokens[s])
                    .arg("--spool")
                    .arg(dir.join(format!("spool-{s:02}")))
                    .arg("--source")
                    .arg(format!("{}:netfilter", files[s].display()))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    // The logs grow as time passes.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, files) = (stop.clone(), files.clone());
        std::thread::spawn(move || {
            let mut last = start;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let now = now_ms();
                for s in 0..SENSORS {
                    let mut f = std::fs::OpenOptions::new()
                        .append(true)
                        .open(&files[s])
                        .unwrap();
                    f.write_all(lines(s, last, now, surge, &mut seqs[s]).as_bytes())
                        .unwrap();
                }
                last = now;
            }
        })
    };
    let stalled = sensors[SENSORS - 1].0.id();
    if stall_one {
        while now_ms() < surge - 5_000 {
            std::thread::sleep(Duration::from_millis(100));
        }
        Command::new("kill")
            .args(["-STOP", &stalled.to_string()])
            .status()
            .unwrap();
    }
    let window = chrono::DateTime::from_timestamp_millis(surge)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let give_up = Instant::now() + Duration::from_secs(600);
    let seen = loop {
        if stall_one && now_ms() >= surge - 5_000 + 180_000 {
            Command::new("kill")
                .args(["-CONT", &stalled.to_string()])
                .status()
                .unwrap();
        }
        let body = request(
            port,
            "/api/v1/alerts?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
            &api,
        )
        .unwrap_or_default();
        let found = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .is_some_and(|a| {
                a.iter()
                    .any(|w| w["port"] == 1025 && w["window_start"] == window.as_str())
            });
        if found {
            break now_ms();
        }
        assert!(Instant::now() < give_up, "no warning within 10 minutes");
        std::thread::sleep(Duration::from_millis(100));
    };
    Command::new("kill")
        .args(["-CONT", &stalled.to_string()])
        .status()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    drop(sensors);
    seen - surge
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to list here
    }
    let dir = std::env::temp_dir().join(format!("scanwatch-bench-time-{}", std::process::id()));
    println!("== delay from the first surge event (window start) to the warning listed by the API; 30 s windows");
    for (name, stall) in [
        ("twelve sensors live", false),
        ("one sensor stalled for 3 minutes", true),
    ] {
        let d = run(&dir.join(if stall { "stall" } else { "live" }), stall);
        println!(
            "{name:<36} {:>7} ms  = {:.2} × the window  ({:>6} ms after the window ended)",
            d,
            d as f64 / (W * 1000) as f64,
            d - W * 1000
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
