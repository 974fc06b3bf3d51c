//! The command line follows the conventions of Unix tools (issue 16's table, a test
//! per row): clear errors and exit statuses, quiet on a closed pipe, read commands
//! that do not create data, host names that resolve, the port bound before the
//! replay, completions and man pages, every argument described.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bin;

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("scanwatch-conv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const GOOD: &str = "Nov 26 10:00:01 fw1 kernel: [1.0] DROP IN=eth0 OUT= MAC=00 SRC=192.0.2.1 DST=198.18.0.1 LEN=40 PROTO=TCP SPT=4000 DPT=1025 WINDOW=1024 RES=0x00 SYN URGP=0\n";

#[test]
fn nothing_parsed_is_a_failure() {
    let d = tmpdir("garbage");
    let f = d.join("garbage.log");
    std::fs::write(&f, "garbage\nmore garbage\n").unwrap();
    let out = bin()
        .args(["analyze", "--format", "dshield"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(e.contains("none of the 2 lines could be parsed"), "{e}");
    // One good line among them is a success.
    std::fs::write(&f, format!("garbage\n{GOOD}")).unwrap();
    let out = bin()
        .args(["analyze", "--format", "netfilter", "--year", "2026"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_gz_that_is_not_gzip_says_so() {
    let d = tmpdir("notgz");
    let f = d.join("random.gz");
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&f, bytes).unwrap();
    let out = bin().arg("analyze").arg(&f).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(e.contains("not a gzip file"), "{e}");
}

#[test]
fn too_little_history_says_why_there_is_no_warning() {
    let d = tmpdir("history");
    let f = d.join("fw1.log");
    std::fs::write(&f, GOOD.repeat(3)).unwrap();
    let out = bin()
        .args(["analyze", "--year", "2026", "--window", "30s"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    let o = String::from_utf8(out.stdout).unwrap();
    assert!(
        o.contains(
            "no warnings possible yet: 30.0s of history, warnings need 1d 0h (--min-history 1d"
        ),
        "{o}"
    );
}

#[test]
fn a_closed_pipe_is_a_quiet_exit() {
    // `analyze … | head -c 16`: the reader stops after a few bytes.
    let mut child = bin()
        .args(["analyze", "--json", "--emit", "all"])
        .args(seed_args())
        .args(seed_inputs())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut so, &mut first).unwrap();
    drop(so);
    let out = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{e}");
    assert!(!e.contains("Broken pipe") && !e.contains("error"), "{e}");
}

/// The golden seed-surge case: its inputs and arguments (it has critical warnings).
fn seed_inputs() -> Vec<std::path::PathBuf> {
    inputs("seed-surge")
}

fn inputs(case: &str) -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(case)
        .join("input");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn seed_args() -> Vec<String> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/seed-surge/args");
    std::fs::read_to_string(p)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn fail_on_gives_status_3_when_a_warning_is_that_bad() {
    let run = |extra: &[&str]| {
        bin()
            .args(["analyze", "--json"])
            .args(seed_args())
            .args(extra)
            .args(seed_inputs())
            .output()
            .unwrap()
    };
    // The seed surge is critical at its peak.
    assert_eq!(run(&["--fail-on", "critical"]).status.code(), Some(3));
    assert_eq!(run(&["--fail-on", "info"]).status.code(), Some(3));
    let bad = run(&["--fail-on", "severe"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("expected info, low, medium, high or critical"));
    // Without --fail-on, warnings are no failure.
    assert_eq!(run(&[]).status.code(), Some(0));
    // With it, a run with no warning is no failure either (tiny numbers never warn).
    let out = bin()
        .args([
            "analyze",
            "--json",
            "--sensor-id",
            "host",
            "--window",
            "1h",
            "--history",
            "2d",
            "--fail-on",
            "info",
        ])
        .args(inputs("tiny-numbers"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_token_comes_before_the_hint_on_a_shared_terminal() {
    let d = tmpdir("token");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} admin sensor add fw-1 --data {} 2>&1",
            env!("CARGO_BIN_EXE_scanwatch"),
            d.join("data").display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(!lines[0].contains(' '), "the token alone first: {text}");
    assert!(lines[1].contains("keep the token above"), "{text}");
}

#[test]
fn read_commands_do_not_create_a_data_directory() {
    let d = tmpdir("nodata");
    for args in [
        vec!["admin", "sensor", "list"],
        vec!["admin", "user", "list"],
    ] {
        let out = bin().args(&args).current_dir(&d).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let e = String::from_utf8(out.stderr).unwrap();
        assert!(
            e.contains("no scanwatch data in scanwatch-data"),
            "{args:?}: {e}"
        );
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            0,
            "{args:?} created something"
        );
    }
}

/// Starts a server with `args`, returns it once it listens (or its stderr if it
/// stopped).
fn server_listening(args: &[&str], port: u16) -> Result<common::Server, String> {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(_st) = child.try_wait().unwrap() {
            let mut e = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut e).unwrap();
            return Err(e);
        }
        if common::request(port, "GET", "/healthz", &[], b"").is_some() {
            return Ok(common::Server(child));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("did not start in 30 s".into())
}

#[test]
fn listen_takes_a_host_name() {
    let d = tmpdir("hostname");
    let port = common::free_port();
    let data = d.join("data");
    let listen = format!("localhost:{port}");
    let s = server_listening(
        &[
            "server",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            &listen,
        ],
        port,
    );
    assert!(s.is_ok(), "{s:?}", s = s.err());
}

#[test]
fn a_port_in_use_is_said_before_the_replay() {
    let d = tmpdir("inuse");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = d.join("data");
    let started = Instant::now();
    let out = bin()
        .args(["server", "--data", data.to_str().unwrap(), "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(
        e.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{e}"
    );
    // Nothing was opened or replayed before: no store was created either.
    assert!(!e.contains("replayed"), "{e}");
    assert!(!data.join("scanwatch.db").exists());
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn completions_and_man_pages() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("analyze") && text.contains("fail-on"),
            "{shell}"
        );
    }
    let d = tmpdir("man");
    let out = bin().arg("man").arg(&d).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let top = std::fs::read_to_string(d.join("scanwatch.1")).unwrap();
    assert!(
        top.starts_with(".ie") || top.contains(".TH scanwatch"),
        "{top}"
    );
    let analyze = std::fs::read_to_string(d.join("scanwatch-analyze.1")).unwrap();
    assert!(analyze.contains("fail\\-on"), "{analyze}");
    assert!(d.join("scanwatch-admin-sensor-add.1").exists());
}

/// Every argument of every subcommand has a description in `--help`.
#[test]
fn every_argument_is_described() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if a.get_help().is_none() && a.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for s in cmd.get_subcommands() {
            if s.get_about().is_none() && s.get_long_about().is_none() {
                missing.push(format!("{path} {} (no description)", s.get_name()));
            }
            walk(s, &format!("{path} {}", s.get_name()), missing);
        }
    }
    let cmd = <scanwatch::cli::Cli as clap::CommandFactory>::command();
    let mut missing = Vec::new();
    walk(&cmd, "scanwatch", &mut missing);
    assert!(
        missing.is_empty(),
        "arguments without a description:\n{}",
        missing.join("\n")
    );
}

#[test]
fn severities_are_coloured_only_when_asked_or_on_a_terminal() {
    let run = |color: &str, no_color: Option<&str>| {
        let mut c = bin();
        c.args(["analyze", "--color", color])
            .args(seed_args())
            .args(seed_inputs());
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        } else {
            c.env_remove("NO_COLOR");
        }
        String::from_utf8(c.output().unwrap().stdout).unwrap()
    };
    assert!(run("always", None).contains("\x1b[1;31m[CRITICAL]\x1b[0m"));
    // Not a terminal (a pipe here): auto paints nothing, nor does never.
    assert!(!run("auto", None).contains('\x1b'));
    assert!(!run("never", None).contains('\x1b'));
    assert!(!run("auto", Some("1")).contains('\x1b'));
    assert!(run("never", None).contains("[CRITICAL]"));
}

#[test]
fn tokens_are_listed_and_revoked_and_lists_speak_json() {
    let d = tmpdir("tokens");
    let data = d.join("data");
    let admin = |args: &[&str]| {
        bin()
            .arg("admin")
            .args(args)
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap()
    };
    assert!(admin(&["sensor", "add", "fw-1"]).status.success());
    assert!(admin(&["token", "add", "grafana", "--role", "analyst"])
        .status
        .success());
    assert!(admin(&["token", "add", "soar", "--role", "admin"])
        .status
        .success());
    let json = |out: std::process::Output| -> Vec<serde_json::Value> {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let tokens = json(admin(&["token", "list", "-o", "json"]));
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0]["name"], "grafana");
    assert_eq!(tokens[0]["state"], "active");
    assert!(
        tokens.iter().all(|t| !t.to_string().contains("swt_")),
        "never the token"
    );
    assert!(admin(&["token", "revoke", "grafana"]).status.success());
    let table = String::from_utf8(admin(&["token", "list"]).stdout).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("grafana") && l.contains("revoked")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("soar") && l.contains("active")),
        "{table}"
    );
    let ghost = admin(&["token", "revoke", "ghost"]);
    assert_eq!(ghost.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ghost.stderr).contains("no API token named \"ghost\""));
    let sensors = json(admin(&["sensor", "list", "-o", "json"]));
    assert_eq!(sensors.len(), 1);
    assert_eq!(
        (sensors[0]["name"].as_str(), sensors[0]["state"].as_str()),
        (Some("fw-1"), Some("active"))
    );
    assert!(json(admin(&["user", "list", "-o", "json"])).is_empty());
}
