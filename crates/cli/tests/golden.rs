//! Golden tests: each `testdata/<case>/` holds `input/` logs, the `args` to analyze
//! them with, and `expected.jsonl` (warnings and summary of `analyze --json`),
//! replayed on event time. Outputs must match byte for byte; `UPDATE_EXPECT=1`
//! rewrites the expected files. Each case also has assertions of its own, so a
//! snapshot can never silently bless a wrong answer.
#![allow(clippy::unwrap_used)] // a test or bench may panic on a broken setup

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn inputs(case: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(case).join("input"))
        .unwrap_or_else(|e| panic!("{case}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn run(case: &str, files: &[PathBuf]) -> String {
    let args = std::fs::read_to_string(root().join(case).join("args")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scanwatch"))
        .arg("analyze")
        .args(args.split_whitespace())
        .arg("--json")
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{case}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn alerts(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "alert")
        .collect()
}

fn check_golden(case: &str) -> Vec<Value> {
    let out = run(case, &inputs(case));
    let expected_path = root().join(case).join("expected.jsonl");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&expected_path, &out).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
        panic!("{case}: no expected.jsonl; run with UPDATE_EXPECT=1 and review it")
    });
    assert!(
        out == expected,
        "{case}: output differs from expected.jsonl\n--- got\n{out}"
    );
    let summary: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["parse_errors"], 0);
    alerts(&out)
}

fn first_alert_window(alerts: &[Value], proto: &str, port: u64) -> Option<String> {
    alerts
        .iter()
        .filter(|a| a["protocol"] == proto && a["port"] == port && a["update"] == false)
        .map(|a| a["window_start"].as_str().unwrap().to_string())
        .min()
}

#[test]
fn seed_surge_alerts_on_the_window_where_it_begins() {
    let a = check_golden("seed-surge");
    assert!(
        a.iter().all(|x| x["alert_kind"] == "surge"),
        "the surge explains the rise: no trend warning"
    );
    // The surge is injected at hour 3·24+10 from 2026-11-16T00:00Z.
    assert_eq!(
        first_alert_window(&a, "tcp", 1025).as_deref(),
        Some("2026-11-19T10:00:00Z")
    );
    assert!(
        a.iter().all(|x| x["port"] == 1025),
        "only TCP/1025 may warn"
    );
    assert!(a
        .iter()
        .any(|x| x["severity"] == "critical" || x["severity"] == "high"));
    let onset = a
        .iter()
        .find(|x| x["window_start"] == "2026-11-19T10:00:00Z")
        .unwrap();
    assert!(onset["sensors"].as_u64().unwrap() >= 6, "{onset}");
    assert!(onset["summary"].as_str().unwrap().starts_with("TCP/1025: "));
}

#[test]
fn one_noisy_sensor_cannot_fake_a_surge() {
    assert!(check_golden("noisy-sensor").is_empty());
}

#[test]
fn silent_port_waking_up_alerts() {
    let a = check_golden("silent-port-wakes");
    assert_eq!(
        first_alert_window(&a, "udp", 47808).as_deref(),
        Some("2026-11-19T00:00:00Z")
    );
    assert!(a.iter().all(|x| x["port"] == 47808));
    assert_eq!(a[0]["baseline"]["sources"], 0.0);
}

#[test]
fn diurnal_background_does_not_alert() {
    assert!(check_golden("diurnal-background").is_empty());
}

#[test]
fn tiny_absolute_numbers_do_not_alert() {
    assert!(check_golden("tiny-numbers").is_empty());
}

#[test]
fn slow_ramp_is_caught_by_the_trend_test() {
    // 0 → 60 sources an hour over three days from 2026-11-16T12:00Z: no single window
    // stands out (the per-window test stays quiet), the day-over-history trend fires.
    let a = check_golden("slow-ramp");
    assert!(!a.is_empty(), "the ramp must warn");
    assert!(
        a.iter()
            .all(|x| x["port"] == 6379 && x["alert_kind"] == "trend"),
        "{a:?}"
    );
    let first = first_alert_window(&a, "tcp", 6379).unwrap();
    // Not before a day of rising traffic exists, and well before the ramp ends.
    assert!(
        first.as_str() > "2026-11-17T12:00:00Z" && first.as_str() < "2026-11-19T12:00:00Z",
        "{first}"
    );
    let t = &a.iter().find(|x| x["update"] == false).unwrap()["trend"];
    assert!(
        t["recent_sources"].as_f64().unwrap()
            >= 2.8 * t["before_sources"].as_f64().unwrap().max(1.0)
    );
}

/// Runs a case with extra arguments (no golden file): for the checks that a rule
/// is what makes the difference.
fn run_with(case: &str, extra: &[&str]) -> Vec<Value> {
    let args = std::fs::read_to_string(root().join(case).join("args")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scanwatch"))
        .arg("analyze")
        .args(args.split_whitespace())
        .args(extra)
        .arg("--json")
        .args(inputs(case))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{case}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    alerts(&String::from_utf8(out.stdout).unwrap())
}

#[test]
fn a_sweep_is_one_story_not_a_warning_per_port() {
    // 32 addresses of 203.0.113.64/26 probe TCP ports 1-2000 once each (a random
    // sensor per probe) in the hour from 2026-11-19T10:00Z.
    let a = check_golden("research-sweep");
    assert_eq!(a.len(), 1, "one sweep warning and nothing else: {a:?}");
    let w = &a[0];
    assert_eq!(w["alert_kind"], "sweep");
    assert_eq!(w["window_start"], "2026-11-19T10:00:00Z");
    assert_eq!(w["sweep"]["prefix"], "203.0.113.0/24");
    assert_eq!(w["sweep"]["sources"], 32);
    assert_eq!(w["sweep"]["ports"], 2000);
    assert!(w["severity"] == "low" || w["severity"] == "info", "{w}");
    assert_eq!(w["advisories"].as_array().unwrap().len(), 0);
    // The rule is what makes the difference: without it every port warns.
    let off = run_with("research-sweep", &["--sweep-ports", "0"]);
    assert!(off.len() >= 1900, "{} warnings without sweeps", off.len());
    assert!(off.iter().all(|x| x["alert_kind"] == "surge"));
}

#[test]
fn a_surge_during_a_sweep_still_warns_in_its_first_window() {
    // The seed case's TCP/1025 surge begins in the hour of the same sweep, which
    // probes TCP/1025 too.
    let a = check_golden("surge-during-sweep");
    assert_eq!(
        first_alert_window(&a, "tcp", 1025).as_deref(),
        Some("2026-11-19T10:00:00Z")
    );
    let sweeps: Vec<&Value> = a.iter().filter(|x| x["alert_kind"] == "sweep").collect();
    assert_eq!(sweeps.len(), 1, "{sweeps:?}");
    assert!(
        a.iter()
            .filter(|x| x["alert_kind"] != "sweep")
            .all(|x| x["port"] == 1025),
        "only TCP/1025 may surge"
    );
    // The sweepers are not counted as the surge's sources, nor named in it.
    let onset = a
        .iter()
        .find(|x| x["alert_kind"] == "surge" && x["window_start"] == "2026-11-19T10:00:00Z")
        .unwrap();
    for s in onset["top_sources"]
        .as_array()
        .unwrap()
        .iter()
        .chain(onset["uncorroborated_sources"].as_array().unwrap())
    {
        assert!(!s["ip"].as_str().unwrap().starts_with("203.0.113."), "{s}");
    }
    let with = onset["sources"].as_u64().unwrap();
    let off = run_with("surge-during-sweep", &["--sweep-ports", "0"]);
    let raw = off
        .iter()
        .find(|x| x["port"] == 1025 && x["window_start"] == "2026-11-19T10:00:00Z")
        .unwrap();
    assert_eq!(
        raw["sources"].as_u64().unwrap(),
        with + 32,
        "the 32 sweepers set aside"
    );
}

#[test]
fn more_busier_or_fewer_sensors_and_the_weekly_cycle_raise_nothing() {
    // Three weeks, analyze's defaults: 30 sensors, ten joining on day 9 each four
    // times as busy as an old one, five leaving on day 15, weekends at half.
    assert!(check_golden("sensor-churn").is_empty());
    // The network index is what makes the difference.
    let off = run_with("sensor-churn", &["--network-index", "false"]);
    assert!(off.len() >= 20, "{} warnings without the index", off.len());
    assert!(off
        .iter()
        .all(|x| x["window_start"].as_str().unwrap() >= "2026-11-25"));
}

#[test]
fn same_input_same_bytes_whatever_the_file_order() {
    let mut files = inputs("seed-surge");
    let a = run("seed-surge", &files);
    files.reverse();
    let b = run("seed-surge", &files);
    assert_eq!(a, b);
}

/// `analyze` with one thread and with several gives the same output, byte for byte:
/// every golden case with windows and warnings (`--emit all`), and a run over bad
/// lines and hosts named along the way, where stderr (the errors, in order) must
/// match too.
#[test]
fn one_thread_or_several_give_the_same_bytes() {
    let cases = [
        "seed-surge",
        "diurnal-background",
        "noisy-sensor",
        "silent-port-wakes",
        "slow-ramp",
        "tiny-numbers",
        "surge-during-sweep",
    ];
    let analyze = |case: Option<&str>, files: &[PathBuf], threads: &str| {
        let args = case.map_or(String::new(), |c| {
            std::fs::read_to_string(root().join(c).join("args")).unwrap()
        });
        let out = Command::new(env!("CARGO_BIN_EXE_scanwatch"))
            .arg("analyze")
            .args(args.split_whitespace())
            .args(["--json", "--emit", "all", "--threads", threads])
            .args(files)
            .output()
            .unwrap();
        (out.status.code(), out.stdout, out.stderr)
    };
    for case in cases {
        let files = inputs(case);
        let one = analyze(Some(case), &files, "1");
        assert_eq!(
            one.0,
            Some(0),
            "{case}: {}",
            String::from_utf8_lossy(&one.2)
        );
        assert!(one.1.len() > 1000, "{case}: windows and warnings printed");
        for threads in ["2", "5"] {
            let many = analyze(Some(case), &files, threads);
            assert!(
                one == many,
                "{case}: --threads {threads} differs from --threads 1"
            );
        }
    }
    // Bad lines among good ones, in two files, sensors named by their host field.
    let dir = tempfile::tempdir().unwrap();
    let mut seed = String::new();
    for f in &inputs("seed-surge")[..4] {
        let gz = std::fs::File::open(f).unwrap();
        std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(gz), &mut seed)
            .unwrap();
    }
    let mut files = Vec::new();
    for (i, step) in [(0usize, 7usize), (1, 11)] {
        let mut text = String::new();
        for (n, line) in seed.lines().enumerate().skip(i).step_by(2) {
            text.push_str(line);
            text.push('\n');
            if n % step == 0 {
                // A firewall line with a broken source address: a parse error.
                text.push_str(&line.replace("SRC=", "SRC=300."));
                text.push('\n');
            }
        }
        let f = dir.path().join(format!("part-{i}.log"));
        std::fs::write(&f, text).unwrap();
        files.push(f);
    }
    let args = [
        "--format",
        "netfilter",
        "--sensor-id",
        "host",
        "--year",
        "2026",
        "--window",
        "1h",
        "--history",
        "2d",
    ];
    let run = |threads: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_scanwatch"))
            .arg("analyze")
            .args(args)
            .args(["--json", "--emit", "all", "--threads", threads])
            .args(&files)
            .output()
            .unwrap();
        (out.status.code(), out.stdout, out.stderr)
    };
    let one = run("1");
    let stderr = String::from_utf8_lossy(&one.2);
    assert!(stderr.contains("could not be parsed"), "{stderr}");
    assert!(one.1.len() > 1000);
    assert!(
        one == run("3"),
        "bad lines: --threads 3 differs from --threads 1"
    );
}
