//! Scale-out end to end with real processes: a three-node NATS JetStream cluster
//! (`tests/scale/nats-cluster.sh`), `scanwatch server --role collector` ×2,
//! `--role aggregator` ×2 and `--role detector` over one shared SQLite store, fed a
//! simulated multi-sensor network (the seed case) posted as JSON Lines to both
//! collectors alternately. The same batches go to an embedded `--role all` server;
//! the stored events must be the same, and the windows and warnings identical. The
//! same again with the aggregates in ClickHouse: two real servers as two shards
//! (`tests/scale/clickhouse.sh`) behind the same `Store` trait. Both runs have faults
//! while the input is posted: NATS node 2 killed -9 and restarted; one aggregator
//! process killed -9 and started again with the same `--instance`; on ClickHouse
//! also shard 2 refusing the partial aggregates (table detached) for a few seconds,
//! so commits fail half way (their events stored, their batch ids not) and are
//! retried. The aggregators write partial window aggregates; the detector merges
//! them and never reads raw events. The answers must still be the embedded ones:
//! events, windows and warnings identical, except that the frequent-items sketch of
//! a cell with more than 64 sources may name other top sources (within its bound), and a
//! warning whose window a fault held back is marked late (when it came, not what it says). Sensors are registered with
//! `scanwatch admin sensor add --config` on the roles' config (the shared store).
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use scanwatch_event::{Timestamp, WireEvent};
use scanwatch_store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use scanwatch_store::prelude::*;
use scanwatch_store::sqlite::SqliteStore;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanwatch"))
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scale/nats-cluster.sh")
}

struct Cluster(PathBuf);

impl Cluster {
    /// Starts a 3-node NATS cluster in `dir`: the guard and its client URLs.
    fn start(dir: &Path) -> (Cluster, String) {
        let st = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        let cluster = Cluster(dir.to_path_buf());
        assert!(st.success(), "nats-cluster.sh start failed");
        let env = std::fs::read_to_string(dir.join("ports.env")).unwrap();
        let urls = env
            .lines()
            .find_map(|l| l.strip_prefix("NATS_URLS="))
            .unwrap()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_string();
        (cluster, urls)
    }
}

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

/// Waits (at most 60 s) until the server on `port` serves: `/healthz` answers 200
/// (an aggregator or detector answers 503 while it starts).
fn wait_http(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if matches!(request(port, "/healthz", &[], b""), Some((200, _))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the server on port {port} did not serve in 60 s: /healthz {:?}",
        request(port, "/healthz", &[], b"")
    );
}

/// `scanwatch admin sensor add NAME --data DIR` or `--config FILE`: the token.
fn add_sensor(flag: &str, path: &Path, name: &str) -> String {
    let out = bin()
        .args(["admin", "sensor", "add", name, flag])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin sensor add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Prints the processes' logs when the test fails (on panic), however it fails.
struct Logs(PathBuf);

impl Drop for Logs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        for n in 1..=3 {
            files.push(self.0.join(format!("nats/n{n}/nats.log")));
        }
        for n in 1..=2 {
            files.push(self.0.join(format!("clickhouse/ch{n}/log/server.err.log")));
        }
        files.sort();
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(80);
            eprintln!(
                "--- {} (last {} of {} lines)\n{}",
                f.display(),
                lines.len() - from,
                lines.len(),
                lines[from..].join("\n")
            );
        }
    }
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

    /// HTTP port of server `n` (1 or 2).
    fn http_port(&self, n: usize) -> u16 {
        let url = self.1.split(',').nth(n - 1).unwrap();
        url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Runs one query on server `n` over HTTP: (status, answer).
    fn query(&self, n: usize, sql: &str) -> (u16, String) {
        request(self.http_port(n), "/", &[], sql.as_bytes()).unwrap_or((0, String::new()))
    }

    /// Makes server `n` refuse the partial aggregates of every commit (its
    /// `partials_local` detached: the insert fails with "table doesn't exist") or
    /// accept them again (attached). That insert is the second write of a commit:
    /// the events went in before it, the batch ids (the commit point) do not.
    fn set_writable(&self, n: usize, on: bool) {
        let sql = if on {
            "ATTACH TABLE scanwatch.partials_local"
        } else {
            "DETACH TABLE scanwatch.partials_local"
        };
        let (st, answer) = self.query(n, sql);
        assert_eq!(st, 200, "ch{n}: {sql}: {answer}");
    }

    /// Batches whose events were inserted more than once (a torn commit: events
    /// stored, batch ids not, then the commit sent again), per server.
    fn torn_batches(&self) -> String {
        (1..=2)
            .map(|n| {
                self.query(
                    n,
                    "SELECT sensor, batch_id, uniqExact(batch_seq) AS n, count() AS rows \
                     FROM scanwatch.events_local GROUP BY sensor, batch_id HAVING n > 1 \
                     FORMAT TSV",
                )
                .1
            })
            .collect()
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

type Snapshot = (
    Vec<String>,
    Vec<scanwatch_store::WindowRow>,
    Vec<(String, serde_json::Value)>,
);

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
    let windows = s.windows_between(lo, hi).unwrap();
    let mut alerts: Vec<(String, serde_json::Value)> = s
        .alerts(lo, hi, 0)
        .unwrap()
        .iter()
        .map(|a| {
            (
                format!(
                    "{} {} {} {:?} {}",
                    a.kind, a.proto, a.port, a.window_start, a.severity_rank
                ),
                serde_json::from_str(&a.json).unwrap(),
            )
        })
        .collect();
    alerts.sort_by(|a, b| a.0.cmp(&b.0));
    (events, windows, alerts)
}

/// Cells with more distinct sources than this are counted with sketches (the
/// default exact limit).
const EXACT_LIMIT: u64 = 64;

/// Where the windows and warnings of `got` differ from `want`: everything must be
/// equal, except the top sources of a sketch cell (the frequent-items sketch names
/// its heaviest keys by the order it saw them; their counts stay within its bound,
/// which the aggregate crate's property tests check).
fn differences(got: &Snapshot, want: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    if got.1.len() != want.1.len() {
        out.push(format!(
            "{} window cells, want {}",
            got.1.len(),
            want.1.len()
        ));
    }
    for (g, w) in got.1.iter().zip(&want.1) {
        let mut g = g.clone();
        if w.sources > EXACT_LIMIT {
            g.top_sources_json.clone_from(&w.top_sources_json);
        }
        if &g != w {
            out.push(format!("window cell {g:?}, want {w:?}"));
        }
    }
    if got.2.len() != want.2.len() {
        out.push(format!("{} warnings, want {}", got.2.len(), want.2.len()));
    }
    for ((gk, gj), (wk, wj)) in got.2.iter().zip(&want.2) {
        let sketch = wj["sources"].as_u64().unwrap_or(0) > EXACT_LIMIT;
        // What says *when* the answer came (a part held back by a fault arrives
        // after its window closed and revises it: `late`, `late_by_s`,
        // `revision`) is not the answer: compared without, as in
        // crates/centre/tests/delivery.rs.
        let strip = |v: &serde_json::Value| {
            let mut v = v.clone();
            if let Some(m) = v.as_object_mut() {
                if sketch {
                    m.remove("top_sources");
                }
                for k in ["late", "late_by_s", "revision"] {
                    m.remove(k);
                }
            }
            v
        };
        if gk != wk || strip(gj) != strip(wj) {
            out.push(format!("warning {gk} {gj}, want {wk} {wj}"));
        }
    }
    out
}

/// SQLite: an aggregator killed -9 (a commit is one transaction, so a kill never
/// splits one) and a NATS node restarted.
#[test]
fn scale_out_roles_give_the_embedded_answers_through_faults() {
    scale_out(false);
}

/// ClickHouse shards: an aggregator killed -9, a NATS node restarted and shard 2
/// refusing the partial aggregates for a few seconds (commits torn half way).
#[test]
fn scale_out_roles_on_clickhouse_shards_give_the_embedded_answers_through_faults() {
    scale_out(true);
}

/// Where the posting stands when each fault starts and ends (fractions of the
/// batches): the schedule is by batch, so every fault happens while input is posted
/// however fast the machine is.
const KILL_AGGREGATOR_AT: f64 = 0.15;
const RESTART_AGGREGATOR_AT: f64 = 0.25;
const RESTART_NATS_AT: f64 = 0.35;
const KILL_DETECTOR_AT: f64 = 0.45;
const REFUSE_WRITES_AT: f64 = 0.60;
const ACCEPT_WRITES_AT: f64 = 0.75;
/// At least this long the killed aggregator stays down and shard 2 refuses writes
/// (the posting waits at the end of a fault if it got there sooner).
const DOWN_FOR: Duration = Duration::from_secs(4);

fn scale_out(on_clickhouse: bool) {
    let started = Instant::now();
    let found = Command::new("nats-server").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "nats-server is not installed: apt-get install -y nats-server (Debian bookworm: 2.9.10)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let _logs = Logs(tmp.path().to_path_buf());
    let (cluster, urls) = Cluster::start(&tmp.path().join("nats"));

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
    let (c1, c2, e) = (free_port(), free_port(), free_port());
    // The aggregator's and the detectors' /healthz and /metrics, behind a token.
    let (ops_agg, ops_agg1, ops_det, ops_det2) =
        (free_port(), free_port(), free_port(), free_port());
    let metrics_token = tmp.path().join("metrics-token");
    std::fs::write(&metrics_token, "m3trics-t0ken\n").unwrap();
    let scale_cfg = tmp.path().join("scale.toml");
    // A short ack_wait: an ack lost while a NATS node restarts is redelivered (and
    // answered `Duplicate`) within seconds rather than 30.
    let bus_extra = "ack_wait = \"5s\"\n";
    // The detector notifies, as `--role all` does: a webhook on loopback.
    let (hook_port, hooks) = common::receiver();
    let sink = format!(
        "[[sinks]]\nkind = \"webhook\"\nname = \"soc\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n\
         max_age = \"none\"\ninitial_delay = \"10ms\"\n"
    );
    std::fs::write(
        &scale_cfg,
        config(&scale, c1, &urls, &format!("{bus_extra}{store_toml}{sink}")).replace(
            "[limits]",
            &format!(
                "metrics_token_file = {:?}\n[limits]",
                metrics_token.display().to_string()
            ),
        ),
    )
    .unwrap();
    let emb_cfg = tmp.path().join("embedded.toml");
    std::fs::write(&emb_cfg, config(&embedded, e, &urls, "")).unwrap();
    let mut tokens = Vec::new();
    for n in &names {
        // The sensors and their tokens live in the shared store the roles' config
        // names (ClickHouse's control tables, or the SQLite file): any collector
        // accepts any sensor.
        tokens.push((
            add_sensor("--config", &scale_cfg, n),
            add_sensor("--data", &embedded, n),
        ));
    }

    let log = |n: &str| tmp.path().join(format!("{n}.log"));
    let agg = |i: u32, name: &str| {
        let ops = format!("127.0.0.1:{}", if i == 0 { ops_agg } else { ops_agg1 });
        let extra = [
            "--instance".to_string(),
            i.to_string(),
            "--instances".into(),
            "2".into(),
            "--ops-listen".into(),
            ops,
        ];
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        server(&scale_cfg, "aggregator", &extra, &log(name))
    };
    let mut procs = vec![
        server(&scale_cfg, "collector", &[], &log("collector1")),
        server(
            &scale_cfg,
            "collector",
            &["--listen", &format!("127.0.0.1:{c2}")],
            &log("collector2"),
        ),
        agg(0, "agg0"),
        agg(1, "agg1"),
        server(
            &scale_cfg,
            "detector",
            &["--ops-listen", &format!("127.0.0.1:{ops_det}")],
            &log("detector"),
        ),
        server(&emb_cfg, "all", &[], &log("embedded")),
        // A standby detector: it takes over when the active one is killed.
        server(
            &scale_cfg,
            "detector",
            &["--ops-listen", &format!("127.0.0.1:{ops_det2}")],
            &log("detector2"),
        ),
    ];
    const AGG1: usize = 3;
    const DETECTORS: [(usize, &str); 2] = [(4, "detector"), (6, "detector2")];
    // Whether a detector holds the lease, by the last lease line of its log.
    let active = |name: &str| {
        let text = std::fs::read_to_string(log(name)).unwrap_or_default();
        text.lines()
            .rev()
            .find(|l| l.contains("lease taken") || l.contains("standing by"))
            .is_some_and(|l| l.contains("lease taken"))
    };
    let mut killed_detector: Option<&str> = None;
    // Every role is up (its listener or ops endpoint answers) before the first
    // batch: a role that does not start fails here, named by its port.
    for p in [c1, c2, e, ops_agg, ops_agg1, ops_det, ops_det2] {
        wait_http(p);
    }

    // One batch per sensor and hour, in time order, to the collectors alternately.
    let mut batches: Vec<(usize, String, String)> = Vec::new();
    let mut per: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    let mut hour = None;
    let mut total = 0;
    let flush = |per: &mut Vec<Vec<String>>, h: i64, out: &mut Vec<(usize, String, String)>| {
        for (i, lines) in per.iter_mut().enumerate() {
            if !lines.is_empty() {
                out.push((i, format!("h{h}"), lines.join("\n")));
                lines.clear();
            }
        }
    };
    for (s, ev) in sc.all_events() {
        let h = ev.time.0.div_euclid(3_600_000);
        if hour.is_some_and(|x| x != h) {
            flush(&mut per, hour.unwrap_or(0), &mut batches);
        }
        hour = Some(h);
        per[s as usize].push(WireEvent::from_event(&ev, Some(&names[s as usize])).to_line());
        total += 1;
    }
    flush(&mut per, hour.unwrap_or(0), &mut batches);
    assert!(total > 1000, "a realistic input: {total} events");

    // A role's counter on /metrics (behind the token).
    let metric = |port: u16, name: &str| -> u64 {
        let (st, body) = common::request(
            port,
            "GET",
            "/metrics",
            &[("Authorization", "Bearer m3trics-t0ken")],
            b"",
        )
        .unwrap_or_else(|| panic!("no answer from /metrics on port {port}"));
        assert_eq!(st, 200, "{body}");
        body.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in {body}"))
    };
    // Commits the aggregators failed (each attempt), on both.
    let failed_commits = || -> u64 {
        [ops_agg, ops_agg1]
            .into_iter()
            .map(|p| metric(p, "scanwatch_aggregator_messages_total{outcome=\"failed\"}"))
            .sum()
    };
    let at = |f: f64| (batches.len() as f64 * f) as usize;
    let mut agg_down: Option<Instant> = None;
    let mut ro_since: Option<(Instant, u64)> = None;
    let mut nats_restart: Option<std::thread::JoinHandle<bool>> = None;
    let restart_agg = |procs: &mut Vec<Proc>| {
        procs[AGG1] = agg(1, "agg1-restarted");
    };
    for (k, (i, batch, body)) in batches.iter().enumerate() {
        {
            if k == at(KILL_AGGREGATOR_AT) {
                // SIGKILL: no shutdown, messages in flight stay unacked.
                procs[AGG1].0.kill().unwrap();
                procs[AGG1].0.wait().unwrap();
                eprintln!("fault: aggregator 1 killed -9 at batch {k}");
                agg_down = Some(Instant::now());
            }
            if k == at(RESTART_AGGREGATOR_AT) {
                let down = agg_down.take().unwrap();
                std::thread::sleep(DOWN_FOR.saturating_sub(down.elapsed()));
                restart_agg(&mut procs);
                wait_http(ops_agg1);
                eprintln!("fault: aggregator 1 started again at batch {k}");
            }
            if k == at(KILL_DETECTOR_AT) {
                // kill -9 the detector holding the lease (bounded wait for one to
                // hold it): the standby must take over and reach the same answers.
                let deadline = Instant::now() + Duration::from_secs(30);
                let (i, name) = loop {
                    if let Some(d) = DETECTORS.iter().find(|(_, n)| active(n)) {
                        break *d;
                    }
                    assert!(Instant::now() < deadline, "no detector holds the lease");
                    std::thread::sleep(Duration::from_millis(200));
                };
                procs[i].0.kill().unwrap();
                procs[i].0.wait().unwrap();
                killed_detector = Some(name);
                eprintln!("fault: active {name} killed -9 at batch {k}");
            }
            if k == at(RESTART_NATS_AT) {
                let dir = cluster.0.clone();
                nats_restart = Some(std::thread::spawn(move || {
                    Command::new("bash")
                        .arg(script())
                        .args(["restart-node", "2"])
                        .arg(dir)
                        .stdout(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                }));
                eprintln!("fault: nats node 2 killed -9 and restarting at batch {k}");
            }
            if let Some(c) = &ch {
                if k == at(REFUSE_WRITES_AT) {
                    // After the node and aggregator restarts: no process may be
                    // opening a store (which creates missing tables) while the table
                    // is away.
                    if let Some(t) = nats_restart.take() {
                        assert!(t.join().unwrap(), "nats-cluster.sh restart-node 2 failed");
                    }
                    c.set_writable(2, false);
                    eprintln!("fault: clickhouse shard 2 refuses writes from batch {k}");
                    ro_since = Some((Instant::now(), failed_commits()));
                }
                if k == at(ACCEPT_WRITES_AT) {
                    let (since, failed_before) = ro_since.take().unwrap();
                    std::thread::sleep(DOWN_FOR.saturating_sub(since.elapsed()));
                    // The shard stays away until an aggregator has tried to write
                    // to it (its partitions' consumers may still be moving after
                    // the node restart): the fault must be met, not slept through.
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while failed_commits() == failed_before && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    c.set_writable(2, true);
                    eprintln!("fault: clickhouse shard 2 writable again at batch {k}");
                }
            }
        }
        let port = if k % 2 == 0 { c1 } else { c2 };
        for (p, tok) in [(port, &tokens[*i].0), (e, &tokens[*i].1)] {
            let auth = format!("Bearer {tok}");
            // A collector answers 500 when it could not publish in time (a node
            // restarting); a sensor would retry the same batch id: so does this.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let r = request(
                    p,
                    "/api/v1/events",
                    &[("Authorization", &auth), ("X-Scanwatch-Batch", batch)],
                    body.as_bytes(),
                );
                match r {
                    Some((200, _)) => break,
                    other if Instant::now() > deadline => {
                        panic!("batch {batch} of sensor {i} to port {p}: {other:?}")
                    }
                    _ => std::thread::sleep(Duration::from_millis(500)),
                }
            }
        }
    }
    if let Some(t) = nats_restart {
        assert!(t.join().unwrap(), "nats-cluster.sh restart-node 2 failed");
    }
    let posted = started.elapsed();

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
        if differences(&got, &want).is_empty() || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    eprintln!(
        "posted {} batches in {posted:?}; converged after {:?}",
        batches.len(),
        started.elapsed()
    );
    if got.0.len() != want.0.len() {
        if let Some(c) = &ch {
            eprintln!("batches stored more than once:\n{}", c.torn_batches());
        }
    }
    assert_eq!(got.0.len(), want.0.len(), "events stored once each");
    assert!(got.0 == want.0, "the same events");
    let diff = differences(&got, &want);
    assert!(
        diff.is_empty(),
        "windows and warnings differ:\n{}",
        diff.join("\n")
    );
    // The standby took over from the killed detector.
    let killed = killed_detector.unwrap();
    let (_, survivor) = DETECTORS.iter().find(|(_, n)| *n != killed).unwrap();
    assert!(
        active(survivor),
        "{survivor} took the lease after {killed} was killed"
    );
    // Every role serves /healthz and /metrics: the aggregator counts what it
    // stored, the surviving detector holds the lease and counts its steps and
    // warnings; /metrics needs the token, on the collectors too.
    let survivor_ops = if *survivor == "detector" {
        ops_det
    } else {
        ops_det2
    };
    for p in [ops_agg, survivor_ops, c1] {
        assert_eq!(request(p, "/metrics", &[], b"").unwrap().0, 401);
    }
    assert_eq!(request(ops_agg, "/healthz", &[], b"").unwrap().0, 200);
    assert!(
        metric(
            ops_agg,
            "scanwatch_aggregator_messages_total{outcome=\"stored\"}"
        ) > 0
    );
    assert!(metric(ops_agg, "scanwatch_aggregator_events_total") > 0);
    let survivor_ops = if *survivor == "detector" {
        ops_det
    } else {
        ops_det2
    };
    assert_eq!(metric(survivor_ops, "scanwatch_detector_lease_held"), 1);
    assert!(
        metric(
            survivor_ops,
            "scanwatch_detector_steps_total{outcome=\"ok\"}"
        ) > 0
    );
    assert!(metric(survivor_ops, "scanwatch_alerts_raised_total") > 0);
    assert!(metric(c1, "scanwatch_batches_accepted_total") > 0);
    // The api (the same program as a collector) answers from the shared store: the
    // warnings the API lists are the stored ones.
    let api_token = open_scale()
        .add_api_token("ops", scanwatch_store::Role::Analyst, Timestamp(0))
        .unwrap();
    let auth = format!("Bearer {api_token}");
    let (st, body) = common::request(
        c2,
        "GET",
        "/api/v1/alerts",
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(st, 200, "{body}");
    let listed: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(listed.len(), want.2.len(), "the api lists every warning");
    // The detectors sent the warnings to the webhook: new, then updates, each once,
    // though each rebuilt its state from the store when it took the lease; only a
    // notification sent in the instant before its detector was killed -9 (before the
    // send was recorded) may come twice (delivery is at least once: docs/notify.md).
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && hooks.lock().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let sent: Vec<serde_json::Value> = hooks
        .lock()
        .unwrap()
        .iter()
        .map(|h| serde_json::from_str(&h.body).unwrap())
        .collect();
    assert!(!sent.is_empty(), "the detector notified nothing");
    // (A `resolved` carries the surge's last warning again: it is the surge's end,
    // not a second sending of that warning.)
    let mut keys: Vec<String> = sent
        .iter()
        .filter(|b| b["event"] != "resolved")
        .map(|b| format!("{} {} {}", b["protocol"], b["port"], b["window_start"]))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert!(n - keys.len() <= 1, "warnings sent twice: {sent:?}");
    assert!(
        keys.len() <= want.2.len(),
        "more notifications than warnings"
    );
    assert!(sent.iter().any(|b| b["event"] == "new"), "{sent:?}");
    // The faults happened and were survived, not skipped.
    assert!(log("agg1-restarted").exists(), "aggregator 1 restarted");
    if let Some(c) = &ch {
        // Commits really were torn (events stored twice, once uncommitted) and
        // still nothing was counted twice.
        assert!(
            !c.torn_batches().trim().is_empty(),
            "no commit was torn: the fault did not happen"
        );
        // The refused commits were retried (never acked) until accepted.
        let agg_logs: String = ["agg0", "agg1", "agg1-restarted"]
            .iter()
            .map(|n| std::fs::read_to_string(log(n)).unwrap_or_default())
            .collect();
        // Either a fetch failed all its attempts (logged, redelivered), or an
        // attempt failed and its retry found the commit's ids stored (a torn
        // commit answers `Duplicate`): the aggregators' metrics count both.
        let failed_attempts = failed_commits();
        assert!(
            (agg_logs.contains("not stored") && agg_logs.contains("store accepts again"))
                || failed_attempts > 0,
            "the aggregators saw shard 2 refuse writes and recovered"
        );
    }
    drop(procs);
}

/// `scanwatch admin … --config` works on the store the config names: on ClickHouse,
/// a sensor, API token and user added through one process are seen by another
/// store instance (as every collector sees them), and a revocation too.
/// An aggregator and a detector whose bus is not there yet answer on their ops
/// endpoint from the start, saying what they wait for, rather than refusing
/// connections; no NATS server is needed (the bus URL is a closed port).
#[test]
fn a_role_waiting_for_its_bus_says_so_on_its_ops_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    // A port nothing listens on (bound, then released).
    let closed = free_port();
    let cfg = tmp.path().join("scale.toml");
    std::fs::write(
        &cfg,
        config(
            &tmp.path().join("data"),
            free_port(),
            &format!("nats://127.0.0.1:{closed}"),
            "publish_timeout = \"60s\"\n",
        ),
    )
    .unwrap();
    for role in ["aggregator", "detector"] {
        let ops = free_port();
        let log = tmp.path().join(format!("{role}.log"));
        let _p = server(
            &cfg,
            role,
            &["--ops-listen", &format!("127.0.0.1:{ops}")],
            &log,
        );
        // Bounded wait for the endpoint; it must answer 503, never 200, while the
        // bus is away.
        let deadline = Instant::now() + Duration::from_secs(30);
        let (st, body) = loop {
            if let Some(r) = request(ops, "/healthz", &[], b"") {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "no ops endpoint: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(st, 503, "{role}: {body}");
        assert!(body.contains(r#""status":"starting""#), "{body}");
        assert!(body.contains(r#""waiting_for":"the bus""#), "{body}");
        assert!(body.contains(&format!(r#""role":"{role}""#)), "{body}");
        let (st, metrics) = request(ops, "/metrics", &[], b"").unwrap();
        assert_eq!(st, 200, "{metrics}");
        assert!(
            metrics.contains(&format!("scanwatch_role_ready{{role=\"{role}\"}} 0")),
            "{metrics}"
        );
        // The role's own counters are there too, at zero.
        let counter = if role == "aggregator" {
            "scanwatch_aggregator_events_total"
        } else {
            "scanwatch_detector_lease_held"
        };
        assert!(metrics.contains(counter), "{metrics}");
    }
}

#[test]
fn admin_with_a_clickhouse_config_manages_the_shared_store() {
    let tmp = tempfile::tempdir().unwrap();
    let _logs = Logs(tmp.path().to_path_buf());
    let ch = ClickHouse::start(&tmp.path().join("clickhouse"));
    let cfg = tmp.path().join("scale.toml");
    std::fs::write(
        &cfg,
        format!(
            "version = 1\n[store]\nkind = \"clickhouse\"\nurl = \"{}\"\ncluster = \"scanwatch\"\n",
            ch.1
        ),
    )
    .unwrap();
    let admin = |args: &[&str], stdin: &str| {
        let out = common::run_with_stdin(
            bin().arg("admin").args(args).arg("--config").arg(&cfg),
            stdin.as_bytes(),
        );
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        );
        assert!(out.status.success(), "admin {args:?}: {e}");
        (o, e)
    };
    let (token, said) = admin(&["sensor", "add", "fw-1"], "");
    let token = token.trim();
    assert!(said.contains("clickhouse store"), "{said}");
    let (api, _) = admin(&["token", "add", "ops", "--role", "analyst"], "");
    admin(
        &["user", "add", "alice", "--role", "admin"],
        "correct horse battery\n",
    );

    let other = ClickHouseStore::open(&ch.config()).unwrap();
    assert_eq!(
        other.authenticate_sensor(token).unwrap().as_deref(),
        Some("fw-1")
    );
    assert_eq!(
        other
            .authenticate_api(api.trim())
            .unwrap()
            .map(|(n, _)| n)
            .as_deref(),
        Some("ops")
    );
    assert!(other.user("alice").unwrap().is_some());
    let (list, _) = admin(&["sensor", "list"], "");
    assert!(
        list.lines()
            .any(|l| l.starts_with("fw-1") && l.contains("active")),
        "{list}"
    );
    let (users, _) = admin(&["user", "list"], "");
    assert!(users.lines().any(|l| l.starts_with("alice")), "{users}");

    admin(&["sensor", "revoke", "fw-1"], "");
    assert_eq!(other.authenticate_sensor(token).unwrap(), None);
    let (list, _) = admin(&["sensor", "list"], "");
    assert!(
        list.lines()
            .any(|l| l.starts_with("fw-1") && l.contains("revoked")),
        "{list}"
    );
}

/// The centre's time model (docs/time.md) through the scale-out roles on NATS
/// JetStream and two ClickHouse shards: twelve sensors following twelve logs of the
/// same seven minutes deliver through a collector, one after another. The first
/// sensor's progress closes every window alone; each later sensor's partial
/// aggregates revise them in the detector, which never reads raw events. At the end
/// the tcp/1025 history equals the per-window counts in the logs, and the warnings
/// equal `scanwatch analyze` on the same files, the first in the first surge window.
#[test]
fn scale_out_roles_with_twelve_sensors_in_turn_give_the_answers_of_analyze() {
    use common::twelve::{analyze, finish, rfc, write_logs, SENSORS, SURGE, W};
    let tmp = tempfile::tempdir().unwrap();
    let _logs = Logs(tmp.path().to_path_buf());
    let (_cluster, urls) = Cluster::start(&tmp.path().join("nats"));
    let ch = ClickHouse::start(&tmp.path().join("clickhouse"));
    let logs = write_logs(tmp.path());
    let expected = analyze(&logs);
    let port = free_port();
    let cfg = tmp.path().join("scale.toml");
    std::fs::write(
        &cfg,
        config(
            &tmp.path().join("data"),
            port,
            &urls,
            &format!(
                "ack_wait = \"5s\"\n[store]\nkind = \"clickhouse\"\nurl = \"{}\"\ncluster = \"scanwatch\"\n\
                 [detection]\nwindow = \"30s\"\nhistory = \"5m\"\nmin_history = \"4m\"\n",
                ch.1
            ),
        ),
    )
    .unwrap();
    let tokens: Vec<PathBuf> = (0..SENSORS)
        .map(|s| {
            let f = tmp.path().join(format!("token-{s:02}"));
            common::write_token(&f, add_sensor("--config", &cfg, &format!("fw-{s:02}")));
            f
        })
        .collect();
    let api = ClickHouseStore::open(&ch.config())
        .unwrap()
        .add_api_token("reader", scanwatch_store::Role::Analyst, Timestamp(0))
        .unwrap();
    let log = |n: &str| tmp.path().join(format!("{n}.log"));
    let _procs = [
        server(&cfg, "collector", &[], &log("collector")),
        server(&cfg, "aggregator", &[], &log("aggregator")),
        server(&cfg, "detector", &[], &log("detector")),
    ];
    wait_http(port);
    let history = || common::twelve::history(port, &api, &logs);
    let warnings = || common::twelve::warnings(port, &api);
    for (s, file) in logs.files.iter().enumerate() {
        finish(
            bin()
                .args(["sensor", "run", "--once", "--from-start", "--server"])
                .arg(format!("http://127.0.0.1:{port}"))
                .arg("--token-file")
                .arg(&tokens[s])
                .arg("--spool")
                .arg(tmp.path().join(format!("spool-{s:02}")))
                .arg("--source")
                .arg(format!("{}:netfilter", file.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        if s == 0 {
            // The first sensor alone closes the windows (its heartbeat says it is
            // complete); wait until the detector has stored them, so every later
            // sensor's parts revise closed windows.
            let deadline = Instant::now() + Duration::from_secs(60);
            while history().len() < logs.truth.len() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
            let alone = history();
            assert_eq!(
                alone.len(),
                logs.truth.len(),
                "the first sensor's windows closed: {alone:?}"
            );
            assert!(
                alone.iter().all(|(ws, (e, _))| *e < logs.truth[ws].0),
                "they hold only its share: {alone:?}"
            );
        }
    }
    // The detector merges what the aggregator committed within a few cycles.
    let deadline = Instant::now() + Duration::from_secs(90);
    while (history() != logs.truth || warnings() != expected) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        history(),
        logs.truth,
        "tcp/1025 history differs from the logs"
    );
    let got = warnings();
    assert_eq!(got, expected, "warnings differ from analyze");
    let first = got.iter().find(|w| w.1 == 1025 && w.0 == "surge").unwrap();
    assert_eq!(
        first.2,
        rfc(logs.start + SURGE * W),
        "not warned in the first surge window"
    );
    assert_eq!(
        got.iter().filter(|w| w.0 == "sweep").count(),
        1,
        "one sweep warning, through the scale-out roles: {got:?}"
    );
    let detector = std::fs::read_to_string(log("detector")).unwrap_or_default();
    assert!(!detector.contains("left out"), "{detector}");
}
