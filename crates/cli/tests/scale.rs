//! Scale-out end to end with real processes: a three-node NATS JetStream cluster
//! (`tests/scale/nats-cluster.sh`), `scanwatch server --role collector` ×2,
//! `--role aggregator` ×2 and `--role detector` over one shared SQLite store, fed a
//! simulated multi-sensor network (the seed case) posted as JSON Lines to both
//! collectors alternately. The same batches go to an embedded `--role all` server;
//! the stored events must be the same, and the windows and warnings identical. The
//! same again with the aggregates in ClickHouse: two real servers as two shards
//! (`tests/scale/clickhouse.sh`) behind the same `Store` trait.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use scanwatch_event::{Timestamp, WireEvent};
use scanwatch_store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::Store;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanwatch"))
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scale/nats-cluster.sh")
}

struct Cluster(PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.0)
            .stdout(Stdio::null())
            .status();
    }
}

/// Kills a server process when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn request(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let method = if body.is_empty() && headers.is_empty() {
        "GET"
    } else {
        "POST"
    };
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

fn server(config: &Path, role: &str, extra: &[&str], log: &Path) -> Proc {
    let child = bin()
        .args(["server", "--role", role, "--config"])
        .arg(config)
        .args(extra)
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Proc(child)
}

fn wait_http(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if request(port, "/healthz", &[], b"").is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no server on port {port}");
}

fn add_sensor(data: &Path, name: &str) -> String {
    let out = bin()
        .args(["admin", "sensor", "add", name, "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn config(data: &Path, port: u16, urls: &str, store: &str) -> String {
    let mut c = format!(
        r#"version = 1
[server]
data = "{}"
listen = "127.0.0.1:{port}"
[limits]
max_events_per_second_per_sensor = 100000000
[retention]
events = "36500d"
windows = "36500d"
[bus]
kind = "nats"
url = "{urls}"
replicas = 3
partitions = 8
lease_ttl = "3s"
"#,
        data.display()
    );
    c.push_str(store);
    c
}

/// Two ClickHouse servers (shards of cluster `scanwatch`), stopped on drop.
struct ClickHouse(PathBuf, String);

impl ClickHouse {
    fn start(dir: &Path) -> ClickHouse {
        let found = Command::new("sh")
            .args(["-c", "command -v clickhouse-server"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "clickhouse-server is not installed: apt-get install -y clickhouse-server clickhouse-client"
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scale/clickhouse.sh");
        let st = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        let env = std::fs::read_to_string(dir.join("ports.env")).unwrap_or_default();
        let port = |n: u8| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("CH_HTTP_PORT_{n}=")))
                .unwrap_or("0")
                .trim_matches(|c| c == '"' || c == '\'')
                .to_string()
        };
        let urls = format!("http://127.0.0.1:{},http://127.0.0.1:{}", port(1), port(2));
        let ch = ClickHouse(dir.to_path_buf(), urls);
        assert!(st.success(), "clickhouse.sh start failed");
        ch
    }

    fn config(&self) -> ClickHouseConfig {
        let mut c = ClickHouseConfig::new(&self.1);
        c.cluster = Some("scanwatch".into());
        c
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scale/clickhouse.sh");
        let _ = Command::new("bash")
            .arg(script)
            .arg("stop")
            .arg(&self.0)
            .stdout(Stdio::null())
            .status();
    }
}

type Snapshot = (Vec<String>, Vec<String>, Vec<String>);

/// Events (sorted), windows and warnings of a store.
fn snapshot(s: &dyn Store) -> Snapshot {
    let (lo, hi) = (Timestamp(i64::MIN), Timestamp(i64::MAX));
    let mut events: Vec<String> = s
        .events_between(lo, hi)
        .unwrap()
        .iter()
        .map(|(n, e)| format!("{n} {}", WireEvent::from_event(e, None).to_line()))
        .collect();
    events.sort();
    let windows = s
        .windows_between(lo, hi)
        .unwrap()
        .iter()
        .map(|w| format!("{w:?}"))
        .collect();
    let mut alerts: Vec<String> = s
        .alerts(lo, hi, 0)
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {:?} {} {}",
                a.kind, a.proto, a.port, a.window_start, a.severity_rank, a.json
            )
        })
        .collect();
    alerts.sort();
    (events, windows, alerts)
}

#[test]
fn scale_out_roles_give_the_embedded_answers() {
    scale_out(false);
}

#[test]
fn scale_out_roles_on_clickhouse_shards_give_the_embedded_answers() {
    scale_out(true);
}

fn scale_out(on_clickhouse: bool) {
    let found = Command::new("nats-server").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "nats-server is not installed: apt-get install -y nats-server (Debian bookworm: 2.9.10)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let ndir = tmp.path().join("nats");
    let st = Command::new("bash")
        .arg(script())
        .arg("start")
        .arg(&ndir)
        .status()
        .unwrap();
    let _cluster = Cluster(ndir.clone());
    assert!(st.success(), "nats-cluster.sh start failed");
    let env = std::fs::read_to_string(ndir.join("ports.env")).unwrap();
    let urls = env
        .lines()
        .find_map(|l| l.strip_prefix("NATS_URLS="))
        .unwrap()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_string();

    let sc = scanwatch_simulate::golden_cases()
        .into_iter()
        .next()
        .unwrap();
    let names: Vec<String> = (0..sc.sensors).map(|i| sc.sensor_name(i)).collect();
    let (scale, embedded) = (tmp.path().join("scale"), tmp.path().join("embedded"));
    let ch = on_clickhouse.then(|| ClickHouse::start(&tmp.path().join("clickhouse")));
    let open_scale = || -> Box<dyn Store> {
        match &ch {
            Some(c) => Box::new(ClickHouseStore::open(&c.config()).unwrap()),
            None => Box::new(SqliteStore::open(&scale).unwrap()),
        }
    };
    let store_toml = match &ch {
        Some(c) => format!(
            "[store]\nkind = \"clickhouse\"\nurl = \"{}\"\ncluster = \"scanwatch\"\n",
            c.1
        ),
        None => String::new(),
    };
    let mut tokens = Vec::new();
    for n in &names {
        // The sensors and their tokens live in the shared store: any collector
        // accepts any sensor.
        let t = match &ch {
            Some(_) => open_scale().add_sensor(n, Timestamp(0)).unwrap(),
            None => add_sensor(&scale, n),
        };
        tokens.push((t, add_sensor(&embedded, n)));
    }

    let (c1, c2, e) = (free_port(), free_port(), free_port());
    let scale_cfg = tmp.path().join("scale.toml");
    std::fs::write(&scale_cfg, config(&scale, c1, &urls, &store_toml)).unwrap();
    let emb_cfg = tmp.path().join("embedded.toml");
    std::fs::write(&emb_cfg, config(&embedded, e, &urls, "")).unwrap();
    let log = |n: &str| tmp.path().join(format!("{n}.log"));
    let _procs = [
        server(&scale_cfg, "collector", &[], &log("collector1")),
        server(
            &scale_cfg,
            "collector",
            &["--listen", &format!("127.0.0.1:{c2}")],
            &log("collector2"),
        ),
        server(
            &scale_cfg,
            "aggregator",
            &["--instance", "0", "--instances", "2"],
            &log("agg0"),
        ),
        server(
            &scale_cfg,
            "aggregator",
            &["--instance", "1", "--instances", "2"],
            &log("agg1"),
        ),
        server(&scale_cfg, "detector", &[], &log("detector")),
        server(&emb_cfg, "all", &[], &log("embedded")),
    ];
    for p in [c1, c2, e] {
        wait_http(p);
    }

    // One batch per sensor and hour, in time order, to the collectors alternately.
    let mut per: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    let mut hour = None;
    let mut posted = 0usize;
    let mut flush = |per: &mut Vec<Vec<String>>, h: i64| {
        for (i, lines) in per.iter_mut().enumerate() {
            if lines.is_empty() {
                continue;
            }
            let body = lines.join("\n");
            let batch = format!("h{h}");
            let port = if posted % 2 == 0 { c1 } else { c2 };
            posted += 1;
            for (p, tok) in [(port, &tokens[i].0), (e, &tokens[i].1)] {
                let auth = format!("Bearer {tok}");
                let (status, reply) = request(
                    p,
                    "/api/v1/events",
                    &[("Authorization", &auth), ("X-Scanwatch-Batch", &batch)],
                    body.as_bytes(),
                )
                .unwrap();
                assert_eq!(status, 200, "{reply}");
            }
            lines.clear();
        }
    };
    let mut total = 0;
    for (s, ev) in sc.all_events() {
        let h = ev.time.0.div_euclid(3_600_000);
        if hour.is_some_and(|x| x != h) {
            flush(&mut per, hour.unwrap_or(0));
        }
        hour = Some(h);
        per[s as usize].push(WireEvent::from_event(&ev, Some(&names[s as usize])).to_line());
        total += 1;
    }
    flush(&mut per, hour.unwrap_or(0));
    assert!(total > 1000, "a realistic input: {total} events");

    // Bounded wait for the detector to reach the embedded answer.
    let want = snapshot(&SqliteStore::open(&embedded).unwrap());
    assert_eq!(want.0.len(), total);
    assert!(
        !want.1.is_empty() && !want.2.is_empty(),
        "windows and warnings to compare"
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    let got = loop {
        let got = snapshot(open_scale().as_ref());
        if got == want || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    if got != want {
        for n in ["detector", "agg0", "agg1", "collector1"] {
            eprintln!(
                "--- {n}.log\n{}",
                std::fs::read_to_string(log(n)).unwrap_or_default()
            );
        }
    }
    assert_eq!(got.0.len(), want.0.len(), "events stored once each");
    assert!(got.0 == want.0, "the same events");
    assert_eq!(got.1.len(), want.1.len(), "window cells");
    assert!(got.1 == want.1, "identical windows");
    assert_eq!(got.2, want.2, "identical warnings");
}
