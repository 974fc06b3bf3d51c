//! End-to-end tests of the `scanwatch` binary: input handling, bad input, output
//! schemas, and the demo's seed case.
#![allow(clippy::unwrap_used)] // a test or bench may panic on a broken setup

mod common;

use std::io::Write;
use std::process::Command;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanwatch"))
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("scanwatch-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const GOOD: &str = "Nov 26 10:00:01 fw1 kernel: [1.0] DROP IN=eth0 OUT= MAC=00 SRC=192.0.2.1 DST=198.18.0.1 LEN=40 PROTO=TCP SPT=4000 DPT=1025 WINDOW=1024 RES=0x00 SYN URGP=0\n";

#[test]
fn bad_lines_are_counted_reported_and_the_rest_is_kept() {
    let d = tmpdir("bad-lines");
    let f = d.join("fw1.log");
    let mut body = String::new();
    for i in 0..10 {
        body.push_str(GOOD);
        body.push_str(&format!("Nov 26 10:00:0{i} fw1 kernel: IN=eth0 OUT= SRC=192.0.2.1{i} DST=1.2.3 PROTO=TCP SPT=1 DPT=2 SYN\n"));
    }
    body.push_str("Nov 26 10:00:09 fw1 sshd[1]: not a firewall line\n");
    std::fs::write(&f, body).unwrap();
    let out = bin()
        .args(["analyze", "--json", "--year", "2026", "--emit", "all"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    // The first five errors are shown with file and line; all ten are counted.
    assert!(
        stderr.contains("fw1.log:2: invalid DST: \"1.2.3\""),
        "{stderr}"
    );
    assert!(stderr.contains("fw1.log:10: invalid DST"), "{stderr}");
    assert!(!stderr.contains("fw1.log:12:"), "only five shown: {stderr}");
    assert!(
        stderr.contains("10 of 21 lines could not be parsed as netfilter"),
        "{stderr}"
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let window = lines.iter().find(|v| v["type"] == "window").unwrap();
    assert_eq!(window["events"], 10);
    assert_eq!(window["port"], 1025);
    assert_eq!(window["protocol"], "tcp");
    assert_eq!(window["window_start"], "2026-11-26T10:00:00Z");
    assert_eq!(window["top_sources"][0]["ip"], "192.0.2.1");
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["parse_errors"], 10);
    assert_eq!(summary["lines"], 21);
}

#[test]
fn missing_file_fails_but_other_files_are_still_read() {
    let d = tmpdir("missing");
    let f = d.join("fw1.log");
    std::fs::write(&f, GOOD).unwrap();
    let out = bin()
        .args(["analyze", "--json", "--year", "2026"])
        .arg(d.join("nope.log"))
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("cannot open"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("\"events\":1"), "{stdout}");
}

#[test]
fn gzip_and_stdin_and_explicit_formats() {
    let d = tmpdir("gz");
    let f = d.join("fw1.log.gz");
    let mut enc = flate2_writer(&f);
    enc.write_all(GOOD.as_bytes()).unwrap();
    drop(enc);
    let out = bin()
        .args(["analyze", "--json", "--year", "2026"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("\"events\":1"));

    let out = common::run_with_stdin(
        bin().args(["analyze", "--json", "--format", "dshield", "-"]),
        b"2026-11-26 10:40:12 -0500\t42\t3\t192.0.2.1\t4000\t198.51.100.7\t1025\t6\tS\n",
    );
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("\"events\":3"), "{s}");

    let out = bin()
        .args(["analyze", "--format", "nope", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("unknown format \"nope\""));
    let out = bin()
        .args(["analyze", "--window", "ten", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("invalid duration"));
}

#[test]
fn undetectable_format_is_a_clear_error() {
    let d = tmpdir("undetectable");
    let f = d.join("notes.txt");
    std::fs::write(&f, "hello\nworld\n").unwrap();
    let out = bin().args(["analyze"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(
        e.contains("cannot tell the log format") && e.contains("--format"),
        "{e}"
    );
}

#[test]
fn binary_garbage_does_not_stop_the_run() {
    let d = tmpdir("garbage");
    let f = d.join("fw1.log");
    let mut bytes = GOOD.as_bytes().to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0x00, b'\n']);
    bytes.extend_from_slice(GOOD.as_bytes());
    std::fs::write(&f, bytes).unwrap();
    let out = bin()
        .args([
            "analyze",
            "--json",
            "--year",
            "2026",
            "--format",
            "netfilter",
        ])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("fw1.log:2: invalid utf-8"));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("\"events\":2"));
}

#[test]
fn demo_warns_about_the_seed_case_and_the_445_wave() {
    let out = bin()
        .args(["demo", "--offline", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let alerts: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "alert")
        .collect();
    let first = |port: u64| {
        alerts
            .iter()
            .filter(|a| a["port"] == port && a["update"] == false)
            .map(|a| a["window_start"].as_str().unwrap())
            .min()
            .map(str::to_string)
    };
    assert_eq!(first(1025).as_deref(), Some("2026-11-23T02:00:00Z"));
    assert_eq!(first(445).as_deref(), Some("2026-11-25T08:00:00Z"));
    // The noisy single sensors never warn; nothing else does either.
    assert!(
        alerts.iter().all(|a| a["port"] == 1025 || a["port"] == 445),
        "{alerts:?}"
    );
    // Most severe first.
    let sev = |s: &str| {
        ["info", "low", "medium", "high", "critical"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    assert!(alerts.windows(2).all(
        |w| sev(w[0]["severity"].as_str().unwrap()) >= sev(w[1]["severity"].as_str().unwrap())
    ));
}

fn flate2_writer(path: &std::path::Path) -> impl Write {
    flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    )
}

#[test]
fn history_shorter_than_window_is_refused() {
    let out = bin()
        .args(["analyze", "--window", "1d", "--history", "1h", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(
        e.contains("--history (1h) must be at least one --window (1d)"),
        "{e}"
    );
}

#[test]
fn events_later_than_the_lateness_are_counted_not_lost_silently() {
    let d = tmpdir("late");
    let f = d.join("fw1.log");
    // 10:00, then 12:30 (closes the 10:00 window with 5m lateness), then a 10:05 line.
    let line = |t: &str| GOOD.replacen("Nov 26 10:00:01", &format!("Nov 26 {t}"), 1);
    std::fs::write(
        &f,
        [line("10:00:01"), line("12:30:00"), line("10:05:00")].concat(),
    )
    .unwrap();
    let out = bin()
        .args(["analyze", "--json", "--year", "2026", "--lateness", "5m"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("1 events arrived after their window had closed"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(summary["late_events"], 1);
    assert_eq!(summary["events"], 3);
}

#[test]
fn admin_sensor_add_list_revoke() {
    let d = tmpdir("admin");
    let data = d.join("data");
    let out = bin()
        .args(["admin", "sensor", "add", "fw-1", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(token.trim().starts_with("swt_"), "{token}");
    let again = bin()
        .args(["admin", "sensor", "add", "fw-1", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8(again.stderr)
        .unwrap()
        .contains("a sensor named \"fw-1\" already exists"));
    let list = bin()
        .args(["admin", "sensor", "list", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(
        text.contains("fw-1") && text.contains("active") && text.contains("never"),
        "{text}"
    );
    assert!(
        !text.contains(token.trim()),
        "the token is never shown again"
    );
    let rev = bin()
        .args(["admin", "sensor", "revoke", "fw-1", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(rev.status.success());
    let list = bin()
        .args(["admin", "sensor", "list", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(String::from_utf8(list.stdout).unwrap().contains("revoked"));
    let ghost = bin()
        .args(["admin", "sensor", "revoke", "ghost", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(ghost.status.code(), Some(2));
    assert!(String::from_utf8(ghost.stderr)
        .unwrap()
        .contains("no sensor named \"ghost\""));
}

#[test]
fn daily_windows_warn_from_six_windows_of_history_with_the_seed_numbers() {
    // The framing: ~30 sources a day before, ~1,500 on the surge day.
    let out = bin()
        .args([
            "demo",
            "--offline",
            "--json",
            "--window",
            "1d",
            "--history",
            "7d",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let alerts: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "alert")
        .collect();
    let seed = alerts
        .iter()
        .find(|a| a["port"] == 1025)
        .expect("the seed surge warns with daily windows");
    assert_eq!(seed["window_start"], "2026-11-23T00:00:00Z");
    let windows = seed["baseline"]["windows"].as_u64().unwrap();
    assert!((6..=7).contains(&windows), "history of {windows} windows");
    let (sources, base) = (
        seed["sources"].as_u64().unwrap(),
        seed["baseline"]["sources"].as_f64().unwrap(),
    );
    assert!(
        (1300..=1700).contains(&sources) && (15.0..=50.0).contains(&base),
        "{seed}"
    );
    assert!(seed["events"].as_u64().unwrap() >= 8000);
    assert!(["high", "critical"].contains(&seed["severity"].as_str().unwrap()));
}

/// The fields that make a warning the same warning.
fn warning_key(a: &Value) -> String {
    [
        "alert_kind",
        "protocol",
        "port",
        "window_start",
        "events",
        "sources",
        "sensors",
        "targets",
        "severity",
        "update",
        "confidence",
    ]
    .iter()
    .map(|k| a[*k].to_string())
    .collect::<Vec<_>>()
    .join(" ")
}

#[test]
fn demo_through_the_real_centre_stores_the_offline_warnings() {
    // Sensors submit over HTTP to an embedded server; the warnings are read back from
    // its API. They must be the ones the in-process pipeline raises.
    let dir = tempfile::tempdir().unwrap();
    // Context in the data directory: the demo's research scanners as benign.
    let scanners = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/context/research-scanners.txt"
    );
    let imported = bin()
        .args(["intel", "import", "benign", scanners, "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let live = bin()
        .args(["demo", "--json", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&live.stderr);
    assert!(live.status.success(), "{err}");
    assert!(
        err.contains("submitted 2623477 events in 9600 batches from 40 sensors"),
        "{err}"
    );
    assert!(err.contains("dashboard: http://127.0.0.1:"), "{err}");
    assert!(err.contains("login: user demo password "), "{err}");
    let offline = bin()
        .args(["demo", "--offline", "--json", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(offline.status.success());
    let keys = |out: &[u8]| {
        let mut k: Vec<String> = String::from_utf8(out.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["type"] == "alert")
            .map(|a| warning_key(&a))
            .collect();
        k.sort();
        k
    };
    let (live_keys, offline_keys) = (keys(&live.stdout), keys(&offline.stdout));
    assert!(live_keys.len() > 10, "{live_keys:?}");
    // The offline run ends its input and closes every window; a live centre keeps
    // the last windows open until later events pass them by the allowed lateness
    // (one window): the demo's last two hours (22:00 and 23:00 on 2026-11-25) may
    // still be open. Everything else must be the same, warning for warning.
    let closed = |k: &&String| !k.contains("\"2026-11-25T22:") && !k.contains("\"2026-11-25T23:");
    let live_closed: Vec<&String> = live_keys.iter().filter(closed).collect();
    let offline_closed: Vec<&String> = offline_keys.iter().filter(closed).collect();
    assert_eq!(live_closed, offline_closed);
    assert!(
        live_keys.iter().all(|k| offline_keys.contains(k)),
        "the live centre raised a warning the offline run did not"
    );
    // Every stored warning has its id, and the centre's store stays for a later look.
    assert!(String::from_utf8_lossy(&live.stdout)
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).unwrap()["id"].is_i64()));
    assert!(dir.path().join("demo-centre/scanwatch.db").exists());

    // The same warnings as incidents from the command line: far fewer rows, the
    // TCP/1025 surge one of them; acknowledged and shown with its state.
    let centre = dir.path().join("demo-centre");
    let incidents = |args: &[&str]| {
        let out = bin()
            .arg("incidents")
            .args(args)
            .arg("--data")
            .arg(&centre)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let list: Vec<Value> = incidents(&["list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !list.is_empty() && list.len() < live_keys.len(),
        "{} incidents of {} warnings",
        list.len(),
        live_keys.len()
    );
    let seed = list
        .iter()
        .filter(|i| i["port"] == 1025 && i["kind"] == "surge")
        .min_by_key(|i| i["start"].as_str().unwrap().to_string())
        .unwrap();
    assert!(seed["windows"].as_u64().unwrap() > 1, "{seed}");
    assert_eq!(seed["state"]["state"], "new");
    let id = seed["id"].as_i64().unwrap().to_string();
    let last = seed["warnings"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .to_string();
    incidents(&["ack", &last, "--by", "dana", "--note", "seen"]);
    let shown = incidents(&["show", &id]);
    assert!(shown.contains("state: acknowledged by dana"), "{shown}");
    assert!(shown.contains(": seen"), "{shown}");
    let acked = incidents(&["list", "--state", "acknowledged", "--json"]);
    assert_eq!(acked.lines().count(), 1, "{acked}");
    let refused = bin()
        .args(["incidents", "set", &id, "false_positive", "--data"])
        .arg(&centre)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs a note"));

    // `scanwatch block` reads the centre's blocklist (the demo's warnings'
    // corroborated top sources) and builds the nftables script of exactly those
    // addresses (a dry run: loading is tested in tests/netns/block.sh).
    let token_file = dir.path().join("api-token");
    let tok = bin()
        .args([
            "admin", "token", "add", "bouncer", "--role", "analyst", "--data",
        ])
        .arg(&centre)
        .output()
        .unwrap();
    assert!(tok.status.success());
    std::fs::write(&token_file, &tok.stdout).unwrap();
    let port = common::free_port();
    let _server = common::spawn_server(
        &[
            "server".as_ref(),
            "--data".as_ref(),
            centre.as_os_str(),
            "--listen".as_ref(),
            format!("127.0.0.1:{port}").as_ref(),
        ],
        port,
        std::time::Duration::from_secs(120),
    );
    let token = String::from_utf8(tok.stdout).unwrap();
    let auth = format!("Bearer {}", token.trim());
    let (st, listed) = common::request(
        port,
        "GET",
        "/api/v1/blocklist?format=txt&hours=720",
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(st, 200, "{listed}");
    let want: Vec<&str> = listed.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        !want.is_empty(),
        "the demo's warnings name sources: {listed}"
    );
    let dry = bin()
        .args(["block", "--source"])
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--token-file")
        .arg(&token_file)
        .args(["--hours", "720", "--timeout", "2h", "--dry-run"])
        .output()
        .unwrap();
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let script = String::from_utf8(dry.stdout).unwrap();
    for ip in &want {
        assert!(
            script.contains(&format!("{ip} timeout 2h")),
            "{ip} in {script}"
        );
    }
    assert_eq!(
        script.matches(" timeout 2h").count(),
        want.len(),
        "{script}"
    );
    // Without a token, a clear error.
    let no = bin()
        .args(["block", "--once", "--source"])
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(no.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no.stderr).contains("--token-file is needed"));
}
