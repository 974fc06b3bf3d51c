//! Twelve firewall logs of the same seven minutes, ending a minute ago, in which
//! TCP/1025 rises from about 25 to about 1,160 sources per 30 s window, and two
//! addresses of one network sweep 121 ports (1025 among them) in the surge's first
//! window, each port seen by one sensor (one sweep warning; the sweepers are not
//! counted on any port, docs/detection.md "Sweeps"): the input of
//! the time-model tests with real processes (`time.rs`, `scale.rs`), with what the
//! logs hold and what `scanwatch analyze` makes of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::bin;

pub const SENSORS: usize = 12;
pub const WINDOWS: i64 = 14;
/// The surge on tcp/1025 starts in this window.
pub const SURGE: i64 = 10;
pub const W: i64 = 30;
/// The sweepers' network (a /24).
pub const SWEEP_NET: [u8; 3] = [45, 33, 7];

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// xorshift64*, so the logs differ per sensor but every run of the test is alike.
pub struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Twelve kernel-log files of the same seven minutes, ending a minute ago, and the
/// tcp/1025 counts they hold per window start: (events, distinct sources).
pub struct Logs {
    pub files: Vec<PathBuf>,
    pub start: i64,
    pub truth: BTreeMap<i64, (u64, u64)>,
}

pub fn syslog_line(t: i64, host: &str, src: [u8; 4], dst: u8, port: u16) -> String {
    let d = chrono::DateTime::from_timestamp(t, 0).unwrap();
    format!(
        "{} {host} kernel: DROP IN=eth0 OUT= MAC=00 SRC={}.{}.{}.{} DST=198.18.0.{dst} LEN=40 PROTO=TCP SPT=40000 DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0\n",
        d.format("%b %e %H:%M:%S"),
        src[0], src[1], src[2], src[3]
    )
}

pub fn write_logs(dir: &Path) -> Logs {
    let start = (now_secs() - 8 * 60).div_euclid(W) * W;
    let mut r = Rng(0x5eed);
    let mut truth: BTreeMap<i64, (u64, BTreeSet<[u8; 4]>)> = BTreeMap::new();
    let mut files = Vec::new();
    for s in 0..SENSORS {
        let mut lines: Vec<(i64, String)> = Vec::new();
        for w in 0..WINDOWS {
            let ws = start + w * W;
            let mut add = |r: &mut Rng, src: [u8; 4], port: u16| {
                let t = ws + r.below(W as u64) as i64;
                lines.push((
                    t,
                    syslog_line(t, &format!("fw{s:02}"), src, s as u8 + 1, port),
                ));
                // Sweepers are set aside from every port's counts.
                if port == 1025 && src[..3] != SWEEP_NET {
                    let e = truth.entry(ws).or_default();
                    e.0 += 1;
                    e.1.insert(src);
                }
            };
            for _ in 0..20 {
                let src = [198, 51, 100, r.below(250) as u8];
                add(&mut r, src, 22);
            }
            // About 30 sources a window across the network before the surge.
            for _ in 0..4 {
                let src = [203, 0, 113, r.below(30) as u8];
                add(&mut r, src, 1025);
            }
            if w >= SURGE {
                // About 1,400 sources a window across the twelve sensors.
                for _ in 0..140 {
                    let src = [100, 64, r.below(8) as u8, r.below(250) as u8];
                    add(&mut r, src, 1025);
                }
            }
            if w == SURGE {
                // The sweep: each of its ports lands on one sensor, so no sensor
                // alone sees a sweeper (ten ports each), the network does.
                for host in [10u8, 11] {
                    let src = [SWEEP_NET[0], SWEEP_NET[1], SWEEP_NET[2], host];
                    for port in std::iter::once(1025).chain(2000..2120u16) {
                        if usize::from(port) % SENSORS == s {
                            add(&mut r, src, port);
                        }
                    }
                }
            }
        }
        lines.sort_by_key(|(t, _)| *t);
        let f = dir.join(format!("fw-{s:02}.log"));
        std::fs::write(&f, lines.into_iter().map(|(_, l)| l).collect::<String>()).unwrap();
        files.push(f);
    }
    Logs {
        files,
        start,
        truth: truth
            .into_iter()
            .map(|(ws, (e, s))| (ws, (e, s.len() as u64)))
            .collect(),
    }
}

pub fn rfc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A warning as both sides can show it.
pub type Warning = (String, u64, String, u64, u64, u64, String);

pub fn warning(v: &serde_json::Value) -> Warning {
    (
        v["alert_kind"].as_str().unwrap().to_string(),
        v["port"].as_u64().unwrap(),
        v["window_start"].as_str().unwrap().to_string(),
        v["sources"].as_u64().unwrap(),
        v["events"].as_u64().unwrap(),
        v["sensors"].as_u64().unwrap(),
        v["severity"].as_str().unwrap().to_string(),
    )
}

/// `scanwatch analyze` on the same files with the same settings.
pub fn analyze(logs: &Logs) -> Vec<Warning> {
    let out = bin()
        .args([
            "analyze",
            "--json",
            "--window",
            "30s",
            "--history",
            "5m",
            "--min-history",
            "4m",
            "--sensor-id",
            "file",
        ])
        .args(&logs.files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut w: Vec<Warning> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "alert")
        .map(|v| warning(&v))
        .collect();
    w.sort_by(|a, b| (&a.2, a.1, &a.0).cmp(&(&b.2, b.1, &b.0)));
    w
}

/// Waits (bounded) for a sensor started with `--once` to deliver everything.
pub fn finish(mut child: Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "sensor failed: {st}");
            return;
        }
        assert!(Instant::now() < deadline, "sensor did not finish in 120 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET path` with an API token on `port`, as JSON.
pub fn get(port: u16, api: &str, path: &str) -> serde_json::Value {
    let auth = format!("Bearer {api}");
    let (st, body) = super::request(port, "GET", path, &[("Authorization", &auth)], b"").unwrap();
    assert_eq!(st, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The centre's tcp/1025 history: window start → (events, sources).
pub fn history(port: u16, api: &str, logs: &Logs) -> BTreeMap<i64, (u64, u64)> {
    let path = format!(
        "/api/v1/ports/tcp/1025/history?from={}&to={}",
        rfc(logs.start - 3600),
        rfc(logs.start + 3600)
    );
    get(port, api, &path)
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let ws = chrono::DateTime::parse_from_rfc3339(w["window_start"].as_str().unwrap())
                .unwrap()
                .timestamp();
            (
                ws,
                (
                    w["events"].as_u64().unwrap(),
                    w["sources"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// The centre's warnings that hold (withdrawn ones aside), oldest first.
pub fn warnings(port: u16, api: &str) -> Vec<Warning> {
    let v = get(
        port,
        api,
        "/api/v1/alerts?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
    );
    let mut w: Vec<Warning> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a.get("withdrawn").is_none())
        .map(warning)
        .collect();
    w.sort_by(|a, b| (&a.2, a.1, &a.0).cmp(&(&b.2, b.1, &b.0)));
    w
}
