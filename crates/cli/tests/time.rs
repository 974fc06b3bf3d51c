//! The centre's time model with real processes (docs/time.md): twelve
//! `scanwatch sensor run` processes follow twelve firewall logs of the same seven
//! minutes (TCP/1025 rises from about 30 to about 1,400 sources per 30 s window) and
//! deliver to one `scanwatch server`: all started together, one after another, and
//! one started only after the others had delivered everything. Each time the
//! centre's tcp/1025 history must equal the per-window counts the logs hold, and
//! its warnings must be those `scanwatch analyze` gives on the same files, the
//! first of them in the first surge window. A sensor whose events are dated a day
//! ahead is refused, shown as clock-ahead, and leaves nothing behind.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::twelve::{
    analyze, finish, get, history, now_secs, rfc, warnings, write_logs, Logs, Warning, SENSORS,
    SURGE, W,
};
use common::{admin, bin, free_port, request, spawn_server, Server};

/// A centre with twelve registered sensors (token files in `dir`) and an API token.
struct Centre {
    _server: Server,
    port: u16,
    api: String,
    tokens: Vec<PathBuf>,
    data: PathBuf,
    config: PathBuf,
}

fn config_text(data: &Path, port: u16) -> String {
    format!(
        "version = 1\n[server]\ndata = {:?}\nlisten = \"127.0.0.1:{port}\"\n[detection]\nwindow = \"30s\"\nhistory = \"5m\"\nmin_history = \"4m\"\n",
        data.display().to_string()
    )
}

fn centre(dir: &Path) -> Centre {
    let data = dir.join("data");
    let mut tokens = Vec::new();
    for s in 0..SENSORS {
        let t = admin(&data, &["sensor", "add", &format!("fw-{s:02}")]);
        let f = dir.join(format!("token-{s:02}"));
        common::write_token(&f, t);
        tokens.push(f);
    }
    let api = admin(&data, &["token", "add", "reader", "--role", "analyst"]);
    let port = free_port();
    let config = dir.join("server.toml");
    std::fs::write(&config, config_text(&data, port)).unwrap();
    let server = start(&config, port);
    Centre {
        _server: server,
        port,
        api,
        tokens,
        data,
        config,
    }
}

fn start(config: &Path, port: u16) -> Server {
    spawn_server(
        &["server".as_ref(), "--config".as_ref(), config.as_os_str()],
        port,
        Duration::from_secs(20),
    )
}

fn sensor(c: &Centre, dir: &Path, s: usize, log: &Path) -> Child {
    bin()
        .args(["sensor", "run", "--once", "--from-start", "--server"])
        .arg(format!("http://127.0.0.1:{}", c.port))
        .arg("--token-file")
        .arg(&c.tokens[s])
        .arg("--spool")
        .arg(dir.join(format!("spool-{s:02}")))
        .arg("--source")
        .arg(format!("{}:netfilter", log.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn check(c: &Centre, logs: &Logs, expected: &[Warning], case: &str) {
    assert_eq!(
        history(c.port, &c.api, logs),
        logs.truth,
        "{case}: tcp/1025 history differs from the logs"
    );
    let got = warnings(c.port, &c.api);
    assert_eq!(got, expected, "{case}: warnings differ from analyze");
    let first = got
        .iter()
        .find(|w| w.1 == 1025 && w.0 == "surge")
        .unwrap_or_else(|| panic!("{case}: no tcp/1025 warning"));
    assert_eq!(
        got.iter().filter(|w| w.0 == "sweep").count(),
        1,
        "{case}: one sweep warning: {got:?}"
    );
    assert_eq!(
        first.2,
        rfc(logs.start + SURGE * W),
        "{case}: not warned in the first surge window"
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scanwatch-time-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn twelve_sensors_in_any_order_give_the_windows_and_warnings_of_analyze() {
    let dir = scratch("orders");
    let logs = write_logs(&dir);
    let expected = analyze(&logs);
    assert!(
        expected
            .iter()
            .any(|w| w.0 == "surge" && w.1 == 1025 && w.2 == rfc(logs.start + SURGE * W)),
        "analyze warns in the first surge window: {expected:?}"
    );

    // All twelve started together.
    let d = dir.join("together");
    std::fs::create_dir_all(&d).unwrap();
    let c = centre(&d);
    let children: Vec<Child> = (0..SENSORS)
        .map(|s| sensor(&c, &d, s, &logs.files[s]))
        .collect();
    children.into_iter().for_each(finish);
    check(&c, &logs, &expected, "together");

    // One after another: the first closes every window alone; each later one
    // revises them.
    let d = dir.join("in-turn");
    std::fs::create_dir_all(&d).unwrap();
    let c = centre(&d);
    for s in 0..SENSORS {
        finish(sensor(&c, &d, s, &logs.files[s]));
    }
    check(&c, &logs, &expected, "one after another");
    // The warning came when the third sensor's events revised the closed window:
    // it is marked late, with how late.
    let listed = get(
        c.port,
        &c.api,
        "/api/v1/alerts?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
    );
    let first = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["alert_kind"] == "surge"
                && a["port"] == 1025
                && a["window_start"] == rfc(logs.start + SURGE * W).as_str()
        })
        .unwrap();
    assert_eq!(first["late"], true, "{first}");
    assert!(
        first["late_by_s"].as_i64().is_some_and(|s| s >= 0),
        "{first}"
    );

    // Eleven together; the twelfth only after they delivered everything, with a
    // restart of the centre in between.
    let d = dir.join("late");
    std::fs::create_dir_all(&d).unwrap();
    let mut c = centre(&d);
    let children: Vec<Child> = (0..SENSORS - 1)
        .map(|s| sensor(&c, &d, s, &logs.files[s]))
        .collect();
    children.into_iter().for_each(finish);
    let _ = c._server.0.kill();
    let _ = c._server.0.wait();
    c._server = start(&c.config, c.port);
    let before = warnings(c.port, &c.api);
    assert!(
        before.iter().any(|w| w.0 == "surge"
            && w.1 == 1025
            && w.2 == rfc(logs.start + SURGE * W)
            && w.5 == 11),
        "eleven sensors already warn in the first surge window: {before:?}"
    );
    finish(sensor(&c, &d, SENSORS - 1, &logs.files[SENSORS - 1]));
    check(&c, &logs, &expected, "one sensor late");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sensor_with_its_clock_a_day_ahead_is_refused_and_leaves_nothing() {
    let dir = scratch("ahead");
    let logs = write_logs(&dir);
    // fw-11's log, dated a day ahead.
    let ahead = dir.join("ahead.log");
    let text = std::fs::read_to_string(&logs.files[SENSORS - 1]).unwrap();
    let shifted: String = text
        .lines()
        .map(|l| {
            let (stamp, rest) = l.split_at(15);
            let t = chrono::NaiveDateTime::parse_from_str(
                &format!(
                    "{} {stamp}",
                    chrono::DateTime::from_timestamp(now_secs(), 0)
                        .unwrap()
                        .format("%Y")
                ),
                "%Y %b %e %H:%M:%S",
            )
            .unwrap()
                + chrono::Duration::days(1);
            format!("{}{rest}\n", t.format("%b %e %H:%M:%S"))
        })
        .collect();
    std::fs::write(&ahead, shifted).unwrap();
    let c = centre(&dir);
    // The sensor with the wrong clock keeps its batches and retries: run it in
    // the background (without --once it keeps following).
    let mut wrong = bin()
        .args(["sensor", "run", "--from-start", "--server"])
        .arg(format!("http://127.0.0.1:{}", c.port))
        .arg("--token-file")
        .arg(&c.tokens[SENSORS - 1])
        .arg("--spool")
        .arg(dir.join("spool-wrong"))
        .arg("--source")
        .arg(format!("{}:netfilter", ahead.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let children: Vec<Child> = (0..SENSORS - 1)
        .map(|s| sensor(&c, &dir, s, &logs.files[s]))
        .collect();
    children.into_iter().for_each(finish);
    // The other eleven warn as analyze does on their eleven files.
    let eleven = Logs {
        files: logs.files[..SENSORS - 1].to_vec(),
        start: logs.start,
        truth: BTreeMap::new(),
    };
    let expected = analyze(&eleven);
    assert_eq!(
        warnings(c.port, &c.api),
        expected,
        "the clock-ahead sensor changed the others' warnings"
    );
    // It is shown as clock-ahead, and nothing of it was stored.
    let deadline = Instant::now() + Duration::from_secs(60);
    let row = loop {
        let v = get(c.port, &c.api, "/api/v1/sensors");
        let row = v
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == format!("fw-{:02}", SENSORS - 1))
            .unwrap()
            .clone();
        if row["clock"].is_string() || Instant::now() > deadline {
            break row;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let clock = row["clock"]
        .as_str()
        .unwrap_or_else(|| panic!("not shown as clock-ahead: {row}"));
    assert!(
        clock.starts_with("clock ahead by 1d") || clock.starts_with("clock ahead by 23h"),
        "{clock}"
    );
    assert_eq!(row["events"], 0, "{row}");
    let _ = wrong.kill();
    let _ = wrong.wait();
    // Its spool still holds the batches: nothing was lost.
    let spooled = std::fs::read_dir(dir.join("spool-wrong"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("batch-")
        })
        .count();
    assert!(
        spooled > 0,
        "the refused batches stay in the sensor's spool"
    );
    // After a restart nothing of it remains in the centre's numbers.
    drop(c._server);
    let port = free_port();
    std::fs::write(&c.config, config_text(&c.data, port)).unwrap();
    let c = Centre {
        _server: start(&c.config, port),
        port,
        ..c
    };
    assert_eq!(warnings(c.port, &c.api), expected);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

/// The memory bound of docs/time.md for a flood of late events: ten batches of
/// 100,000 events (100,000 distinct sources each), each in another past hour,
/// after every window up to now has closed. Late events are revised from the store,
/// not held: the server's peak stays under 384 MiB (it was 1.1 GB when late windows
/// were held in memory; docs/time.md has what the rest is).
#[test]
fn a_flood_of_late_events_over_past_hours_stays_under_the_memory_bound() {
    use std::io::Write;
    let dir = scratch("flood");
    let data = dir.join("data");
    let token = admin(&data, &["sensor", "add", "fw-01"]);
    let port = free_port();
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[server]\ndata = {:?}\nlisten = \"127.0.0.1:{port}\"\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let server = start(&config, port);
    let auth = format!("Bearer {token}");
    let now = now_secs();
    // Everything up to now is delivered: every earlier window closes.
    let hb = format!("{{\"complete_through\": \"{}\"}}", rfc(now));
    let (st, body) = request(
        port,
        "POST",
        "/api/v1/heartbeat",
        &[("Authorization", &auth)],
        hb.as_bytes(),
    )
    .unwrap();
    assert_eq!(st, 200, "{body}");
    let first = request(port, "GET", "/metrics", &[], b"").unwrap().1;
    let mut refused = 0u32;
    for h in 1..=10i64 {
        let hour = (now - h * 3600).div_euclid(3600) * 3600;
        let mut lines = String::new();
        for i in 0..100_000u32 {
            lines.push_str(&format!(
                "{{\"v\":1,\"time\":\"{}\",\"proto\":\"tcp\",\"src\":\"100.{}.{}.{}\",\"dst\":\"198.18.0.1\",\"dst_port\":1025,\"flags\":\"S\"}}\n",
                rfc(hour + i64::from(i % 3600)),
                64 + (i >> 16),
                (i >> 8) & 0xff,
                i & 0xff
            ));
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(lines.as_bytes()).unwrap();
        let body = gz.finish().unwrap();
        let batch = format!("flood-{h}");
        // A sender does what a sensor does: a 503 for the counting's backlog
        // (from 500,000 uncounted events on, docs/server.md) is sent again after
        // its Retry-After (one second); at most 30 times.
        let mut tries = 0;
        loop {
            tries += 1;
            let (st, answer) = request(
                port,
                "POST",
                "/api/v1/events",
                &[
                    ("Authorization", &auth),
                    ("X-Scanwatch-Batch", &batch),
                    ("Content-Encoding", "gzip"),
                ],
                &body,
            )
            .unwrap();
            if st == 503 && answer.contains("backlog") && tries < 30 {
                refused += 1;
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            assert_eq!(st, 200, "{answer}");
            break;
        }
    }
    eprintln!("batches refused for the counting's backlog and sent again: {refused}");
    let metrics = request(port, "GET", "/metrics", &[], b"").unwrap().1;
    let value = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(
        value(&metrics, "scanwatch_events_accepted_total "),
        1_000_000
    );
    assert_eq!(
        value(&metrics, "scanwatch_late_events_total ")
            - value(&first, "scanwatch_late_events_total "),
        1_000_000,
        "every flooded event was late: {metrics}"
    );
    assert!(
        value(&metrics, "scanwatch_windows_revised_total ") >= 10,
        "{metrics}"
    );
    let peak = peak_rss(server.0.id());
    eprintln!(
        "peak RSS of the server after the late flood: {} MiB",
        peak >> 20
    );
    assert!(
        peak < 384 << 20,
        "peak RSS {} MiB is over the 384 MiB bound",
        peak >> 20
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
