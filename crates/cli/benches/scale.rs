//! Scale-out figures with real servers on loopback, each beside a baseline measured
//! in the same run:
//!
//! * store insert rate: the same batches through `ClickHouseStore::commit_batch`
//!   (two ClickHouse 18.16 servers = two shards, `tests/scale/clickhouse.sh`) and
//!   through `SqliteStore::commit_batch` (the baseline), then the compressed bytes
//!   per row of the ClickHouse events table (`system.parts`);
//! * ingest throughput of `scanwatch server` in roles over a NATS JetStream cluster
//!   (`tests/scale/nats-cluster.sh`, three nodes; the stream has
//!   SCANWATCH_BENCH_REPLICAS replicas, default 1, i.e. one node carries it) into
//!   ClickHouse: 1 collector + 1 aggregator, then 2 collectors + 2 aggregators, beside
//!   the embedded `--role all` server (SQLite) fed the same batches by the same load
//!   generator. "Acknowledged": every POST answered 200; "committed": the store's
//!   event count reached the total (polled every 50 ms);
//! * end-to-end delay: from posting the batch that closes a surge window to the
//!   warning being listed by `GET /api/v1/alerts` (API token), embedded vs scale-out
//!   (collector, aggregator, detector, api), SCANWATCH_BENCH_REPS surges, median.
//!
//! Also prints the average bytes per event of the wire format (JSON Lines) and of the
//! JetStream stream, used by the sizing in BENCHMARKS.md. Every server started here
//! is stopped at the end (scripts' `stop`, child processes killed on drop).
//! Run with `scripts/bench.sh` or `cargo bench -p scanwatch --bench scale`; needs
//! `nats-server` and `clickhouse-server` (Debian bookworm packages).
#![allow(clippy::unwrap_used)] // a bench may panic on a broken setup

mod servers;

use scanwatch_store::prelude::*;
use servers::{env_value, Servers};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scanwatch_event::{Event, Protocol, Timestamp, WireEvent};
use scanwatch_simulate::Surge;
use scanwatch_store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{Role, Store};

const BATCH: usize = 1000;
const SENSORS: usize = 4;
const CLIENTS: usize = 4;

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// A `scanwatch server` process, killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server(config: &Path, role: &str, extra: &[&str], log: &Path) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_scanwatch"))
            .args(["server", "--role", role, "--config"])
            .arg(config)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_http(agent: &ureq::Agent, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while agent
        .get(&format!("http://127.0.0.1:{port}/healthz"))
        .call()
        .is_err()
    {
        assert!(Instant::now() < deadline, "no server on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Ch {
    urls: String,
    first: String,
}

impl Ch {
    fn config(&self, db: &str) -> ClickHouseConfig {
        let mut c = ClickHouseConfig::new(&self.urls);
        c.cluster = Some("scanwatch".into());
        c.database = db.into();
        c
    }

    fn toml(&self, db: &str) -> String {
        format!(
            "[store]\nkind = \"clickhouse\"\nurl = \"{}\"\ncluster = \"scanwatch\"\ndatabase = \"{db}\"\n",
            self.urls
        )
    }

    /// One query on every server; the answers (TabSeparated) one per server.
    fn query_all(&self, agent: &ureq::Agent, sql: &str) -> Vec<String> {
        self.urls
            .split(',')
            .map(|u| {
                agent
                    .post(&format!("{u}/"))
                    .send(sql)
                    .unwrap()
                    .body_mut()
                    .read_to_string()
                    .unwrap()
            })
            .collect()
    }

    fn count(&self, agent: &ureq::Agent, db: &str) -> u64 {
        agent
            .post(&format!("{}/", self.first))
            .send(format!("SELECT count() FROM {db}.events"))
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}

fn config(data: &Path, port: u16, nats: &str, bus: (u32, u32), name: &str, store: &str) -> String {
    let (replicas, partitions) = bus;
    format!(
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
url = "{nats}"
replicas = {replicas}
partitions = {partitions}
stream = "SW_{name}"
subject_prefix = "sw.{name}"
consumer_prefix = "agg-{name}"
lease_bucket = "lease_{name}"
lease_ttl = "3s"
{store}"#,
        data.display()
    )
}

/// `n` batches of BATCH demo events: the events, and the body as JSON Lines.
fn batches(n: usize) -> Vec<(Vec<Event>, String)> {
    let sc = scanwatch_simulate::demo();
    let events: Vec<Event> = sc
        .generator()
        .flatten()
        .take(n * BATCH)
        .map(|(_, e)| e)
        .collect();
    events
        .chunks(BATCH)
        .map(|c| {
            let body = c
                .iter()
                .map(|e| WireEvent::from_event(e, None).to_line() + "\n")
                .collect();
            (c.to_vec(), body)
        })
        .collect()
}

/// Posts every body (batch i as sensor i % SENSORS, to ports[i % len]) from CLIENTS
/// threads; returns the wall time until the last was acknowledged and the ack
/// latencies (ms).
fn load(bodies: &Arc<Vec<String>>, ports: &[u16], tokens: &[String], run: &str) -> (f64, Vec<f64>) {
    let t = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let (bodies, ports, tokens, run) = (
                bodies.clone(),
                ports.to_vec(),
                tokens.to_vec(),
                run.to_string(),
            );
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                let mut lat = Vec::new();
                for (i, b) in bodies.iter().enumerate().filter(|(i, _)| i % CLIENTS == k) {
                    let url = format!("http://127.0.0.1:{}/api/v1/events", ports[i % ports.len()]);
                    let t = Instant::now();
                    // A centre counting a backlog answers 503 (`max_uncounted_events`):
                    // sent again shortly (bounded), as a sensor would after its wait.
                    for attempt in 0.. {
                        match agent
                            .post(&url)
                            .header("Authorization", &format!("Bearer {}", tokens[i % SENSORS]))
                            .header("X-Scanwatch-Batch", &format!("{run}-{i}"))
                            .send(b.as_str())
                        {
                            Ok(_) => break,
                            Err(ureq::Error::StatusCode(503)) if attempt < 10_000 => {
                                std::thread::sleep(Duration::from_millis(20))
                            }
                            Err(e) => panic!("batch {i}: {e}"),
                        }
                    }
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<f64> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    lat.sort_by(f64::total_cmp);
    (t.elapsed().as_secs_f64(), lat)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

/// (messages, bytes) of a JetStream stream, from the monitoring port of each node
/// (the largest: with one replica only one node holds it).
fn stream_state(agent: &ureq::Agent, monitors: &[u16], stream: &str) -> (u64, u64) {
    fn find(v: &serde_json::Value, name: &str, out: &mut (u64, u64)) {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("name").and_then(|n| n.as_str()) == Some(name) {
                    if let Some(s) = m.get("state") {
                        let g = |k: &str| s.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
                        if g("bytes") > out.1 {
                            *out = (g("messages"), g("bytes"));
                        }
                    }
                }
                m.values().for_each(|x| find(x, name, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| find(x, name, out)),
            _ => {}
        }
    }
    let mut out = (0, 0);
    for p in monitors {
        if let Ok(mut r) = agent
            .get(&format!(
                "http://127.0.0.1:{p}/jsz?accounts=true&streams=true"
            ))
            .call()
        {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(
                &r.body_mut().read_to_string().unwrap_or_default(),
            ) {
                find(&v, stream, &mut out);
            }
        }
    }
    out
}

struct Row(String, f64, f64); // figure, events/s, baseline events/s

fn print_rows(title: &str, rows: &[Row]) {
    println!("{title:<64} {:>12} {:>10}", "events/s", "ratio");
    for Row(name, v, base) in rows {
        println!("{name:<64} {v:>12.0} {:>10.3}", v / base);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n_batches: usize = env_or("SCANWATCH_BENCH_BATCHES", 150);
    let reps: usize = env_or("SCANWATCH_BENCH_REPS", 4);
    let replicas: u32 = env_or("SCANWATCH_BENCH_REPLICAS", 1);
    let partitions: u32 = env_or("SCANWATCH_BENCH_PARTITIONS", 16);
    let commit_wait: u64 = env_or("SCANWATCH_BENCH_COMMIT_WAIT", 30);
    let total = (n_batches * BATCH) as u64;
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let agent = ureq::Agent::new_with_defaults();

    let (_nats, nenv) = Servers::start("nats-cluster.sh", &tmp.path().join("nats"));
    let nats = env_value(&nenv, "NATS_URLS");
    let monitors: Vec<u16> = (1..=3)
        .map(|i| {
            env_value(&nenv, &format!("NATS_MONITOR_PORT_{i}"))
                .parse()
                .unwrap()
        })
        .collect();
    let (_ch, cenv) = Servers::start("clickhouse.sh", &tmp.path().join("clickhouse"));
    let ch_urls: Vec<String> = (1..=2)
        .map(|i| {
            format!(
                "http://127.0.0.1:{}",
                env_value(&cenv, &format!("CH_HTTP_PORT_{i}"))
            )
        })
        .collect();
    let ch = Ch {
        urls: ch_urls.join(","),
        first: ch_urls[0].clone(),
    };
    let version = agent
        .post(&format!("{}/", ch.first))
        .send("SELECT version()")
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    println!(
        "servers: NATS 3-node cluster (stream replicas {replicas}, {partitions} partitions), ClickHouse {} ×2 shards; started in {:.1} s",
        version.trim(),
        started.elapsed().as_secs_f64()
    );

    let input = batches(n_batches);
    let wire_bytes: usize = input.iter().map(|(_, b)| b.len()).sum();
    println!(
        "input: {n_batches} batches of {BATCH} events (simulated demo traffic); JSON Lines {:.1} bytes/event on average (newline included)",
        wire_bytes as f64 / total as f64
    );

    // 1. Store insert rate: ClickHouseStore vs SqliteStore, same batches, one thread.
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = SqliteStore::open(dir.path()).unwrap();
    sqlite.add_sensor("s", Timestamp(0)).unwrap();
    let t = Instant::now();
    for (i, (evs, _)) in input.iter().enumerate() {
        sqlite
            .commit_batch("s", &format!("b{i}"), evs, Timestamp(0))
            .unwrap();
    }
    let sqlite_rate = total as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let n = sqlite
        .events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))
        .unwrap()
        .len();
    let sqlite_read = n as f64 / t.elapsed().as_secs_f64();
    drop(sqlite);
    let mut chs = ClickHouseStore::open(&ch.config("bench_direct")).unwrap();
    chs.add_sensor("s", Timestamp(0)).unwrap();
    let t = Instant::now();
    for (i, (evs, _)) in input.iter().enumerate() {
        chs.commit_batch("s", &format!("b{i}"), evs, Timestamp(0))
            .unwrap();
    }
    let ch_rate = total as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let n = chs
        .events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))
        .unwrap()
        .len();
    let ch_read = n as f64 / t.elapsed().as_secs_f64();
    drop(chs);
    assert_eq!(ch.count(&agent, "bench_direct"), total);
    println!("\n== store insert rate (commit_batch, {BATCH} events a batch, one thread)");
    print_rows(
        "figure",
        &[
            Row(
                "SqliteStore::commit_batch (baseline)".into(),
                sqlite_rate,
                sqlite_rate,
            ),
            Row(
                "ClickHouseStore::commit_batch (2 shards)".into(),
                ch_rate,
                sqlite_rate,
            ),
        ],
    );
    let parts = |stage: &str| {
        let sql = "SELECT sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes), count() \
                   FROM system.parts WHERE database = 'bench_direct' AND table = 'events_local' AND active";
        let (mut rows, mut comp, mut unc, mut n) = (0u64, 0u64, 0u64, 0u64);
        for a in ch.query_all(&agent, sql) {
            let f: Vec<u64> = a
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            rows += f[0];
            comp += f[1];
            unc += f[2];
            n += f[3];
        }
        println!(
            "clickhouse events_local {stage}: {rows} rows in {n} parts, {comp} bytes compressed ({:.1} B/row), {unc} uncompressed ({:.1} B/row)",
            comp as f64 / rows as f64,
            unc as f64 / rows as f64
        );
    };
    print_rows(
        "read back (events_between over everything, as the detector reads)",
        &[
            Row(
                "SqliteStore::events_between (baseline)".into(),
                sqlite_read,
                sqlite_read,
            ),
            Row(
                "ClickHouseStore::events_between (2 shards)".into(),
                ch_read,
                sqlite_read,
            ),
        ],
    );
    parts("as inserted");

    // 1b. What an aggregator does per fetch: one commit of FETCH batches (events, ids
    // and one partial aggregate per window), SQLite vs ClickHouse; and what the
    // detector reads now (the partials) beside the raw events it used to read.
    const FETCH: usize = 16;
    let agg_cfg = scanwatch_aggregate::AggregateConfig::new(3_600_000);
    let commits = |s: &mut dyn Store| -> f64 {
        s.add_sensor("s", Timestamp(0)).unwrap();
        let ids: Vec<String> = (0..input.len()).map(|i| format!("a{i}")).collect();
        let t = Instant::now();
        for (k, chunk) in input.chunks(FETCH).enumerate() {
            let parts = chunk
                .iter()
                .enumerate()
                .map(|(j, (evs, _))| scanwatch_store::BatchPart {
                    sensor: "s",
                    batch_id: &ids[k * FETCH + j],
                    events: evs,
                })
                .collect();
            let c = scanwatch_bus::partial_commit(
                parts,
                Timestamp(0),
                Timestamp(0),
                k as u64,
                &agg_cfg,
                None,
            )
            .unwrap();
            s.commit_aggregate(&c).unwrap();
        }
        total as f64 / t.elapsed().as_secs_f64()
    };
    let read_partials = |s: &dyn Store| -> (f64, usize) {
        let t = Instant::now();
        let n = s
            .partials_between(
                Timestamp(i64::MIN),
                Timestamp(i64::MAX),
                Timestamp(i64::MIN),
            )
            .unwrap()
            .len();
        (total as f64 / t.elapsed().as_secs_f64(), n)
    };
    let dir = tempfile::tempdir().unwrap();
    let mut sq = SqliteStore::open(dir.path()).unwrap();
    let sq_commit = commits(&mut sq);
    let (sq_partials, sq_rows) = read_partials(&sq);
    drop(sq);
    let mut cha = ClickHouseStore::open(&ch.config("bench_aggregate")).unwrap();
    let ch_commit = commits(&mut cha);
    let (ch_partials, ch_rows) = read_partials(&cha);
    drop(cha);
    println!("\n== aggregator commits ({FETCH} batches of {BATCH} events a commit, partials per 1 h window)");
    print_rows(
        "figure",
        &[
            Row(
                "SqliteStore::commit_batch, per batch (baseline)".into(),
                sqlite_rate,
                sqlite_rate,
            ),
            Row(
                "SqliteStore::commit_aggregate".into(),
                sq_commit,
                sqlite_rate,
            ),
            Row(
                "ClickHouseStore::commit_batch, per batch".into(),
                ch_rate,
                sqlite_rate,
            ),
            Row(
                "ClickHouseStore::commit_aggregate (2 shards)".into(),
                ch_commit,
                sqlite_rate,
            ),
        ],
    );
    println!("partial rows: {sq_rows} (SQLite), {ch_rows} (ClickHouse) for {total} events");
    print_rows(
        "detector read, in events covered per second",
        &[
            Row(
                "ClickHouseStore::events_between, raw events (baseline: the old detector)".into(),
                ch_read,
                ch_read,
            ),
            Row("SqliteStore::partials_between".into(), sq_partials, ch_read),
            Row(
                "ClickHouseStore::partials_between (2 shards)".into(),
                ch_partials,
                ch_read,
            ),
        ],
    );
    ch.query_all(&agent, "OPTIMIZE TABLE bench_direct.events_local FINAL");
    parts("after OPTIMIZE FINAL");
    let cols = ch.query_all(
        &agent,
        "SELECT name, sum(data_compressed_bytes) FROM system.columns \
         WHERE database = 'bench_direct' AND table = 'events_local' GROUP BY name ORDER BY name",
    );
    let mut per_col: std::collections::BTreeMap<String, u64> = Default::default();
    for a in cols {
        for l in a.lines() {
            if let Some((n, b)) = l.split_once('\t') {
                *per_col.entry(n.into()).or_default() += b.parse::<u64>().unwrap_or(0);
            }
        }
    }
    let per_col: Vec<String> = per_col
        .iter()
        .map(|(n, b)| format!("{n} {:.2}", *b as f64 / total as f64))
        .collect();
    println!(
        "compressed B/row by column (after merge): {}",
        per_col.join(", ")
    );

    // 2. Ingest throughput: embedded vs 1+1 vs 2+2 roles.
    let bodies: Arc<Vec<String>> = Arc::new(input.into_iter().map(|(_, b)| b).collect());
    let log = |n: &str| tmp.path().join(format!("{n}.log"));
    let mut rows = Vec::new();
    let embedded_rate;
    {
        let data = tmp.path().join("embedded");
        let mut s = SqliteStore::open(&data).unwrap();
        let tokens: Vec<String> = (0..SENSORS)
            .map(|i| s.add_sensor(&format!("s{i}"), Timestamp(0)).unwrap())
            .collect();
        drop(s);
        let port = free_port();
        let cfg = tmp.path().join("embedded.toml");
        std::fs::write(
            &cfg,
            config(&data, port, &nats, (replicas, partitions), "emb", ""),
        )
        .unwrap();
        let _p = server(&cfg, "all", &[], &log("embedded"));
        wait_http(&agent, port);
        let (secs, lat) = load(&bodies, &[port], &tokens, "emb");
        embedded_rate = total as f64 / secs;
        rows.push((
            "embedded --role all (SQLite), acknowledged = committed".to_string(),
            embedded_rate,
            embedded_rate,
            lat,
        ));
    }
    let mut stream_bytes = (0, 0);
    for n in [1usize, 2] {
        let name = format!("s{n}");
        let db = format!("bench_{name}");
        let mut s = ClickHouseStore::open(&ch.config(&db)).unwrap();
        let tokens: Vec<String> = (0..SENSORS)
            .map(|i| s.add_sensor(&format!("s{i}"), Timestamp(0)).unwrap())
            .collect();
        drop(s);
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let cfg = tmp.path().join(format!("{name}.toml"));
        let data = tmp.path().join(&name);
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(
            &cfg,
            config(
                &data,
                ports[0],
                &nats,
                (replicas, partitions),
                &name,
                &ch.toml(&db),
            ),
        )
        .unwrap();
        let mut procs = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            procs.push(server(
                &cfg,
                "collector",
                &["--listen", &format!("127.0.0.1:{p}")],
                &log(&format!("{name}-collector{i}")),
            ));
        }
        for i in 0..n {
            procs.push(server(
                &cfg,
                "aggregator",
                &["--instance", &i.to_string(), "--instances", &n.to_string()],
                &log(&format!("{name}-aggregator{i}")),
            ));
        }
        for p in &ports {
            wait_http(&agent, *p);
        }
        std::thread::sleep(Duration::from_secs(1)); // aggregators connected
        let t = Instant::now();
        let (acked, lat) = load(&bodies, &ports, &tokens, &name);
        // Bounded: at most `commit_wait` s after the last acknowledgement; if the
        // aggregators have not stored everything by then, the rate is what they did
        // store in the time (printed as incomplete).
        let deadline = Instant::now() + Duration::from_secs(commit_wait);
        let mut stored = 0;
        while Instant::now() < deadline {
            stored = ch.count(&agent, &db);
            if stored >= total {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let committed = t.elapsed().as_secs_f64();
        assert!(stored <= total, "{name}: more events than sent");
        let done = if stored < total {
            format!(" (INCOMPLETE: {stored} of {total} after {committed:.0} s)")
        } else {
            String::new()
        };
        rows.push((
            format!("{n} collector(s) + {n} aggregator(s), NATS → ClickHouse: acknowledged"),
            total as f64 / acked,
            embedded_rate,
            lat,
        ));
        rows.push((
            format!("{n} collector(s) + {n} aggregator(s), NATS → ClickHouse: committed{done}"),
            stored as f64 / committed,
            embedded_rate,
            Vec::new(),
        ));
        stream_bytes = stream_state(&agent, &monitors, &format!("SW_{name}"));
        drop(procs);
    }
    println!(
        "\n== ingest throughput: {n_batches} batches of {BATCH} events, {CLIENTS} client threads, {SENSORS} sensors; ratio vs embedded"
    );
    println!(
        "{:<64} {:>12} {:>10} {:>16}",
        "figure", "events/s", "ratio", "ack p50/p99 ms"
    );
    for (name, v, base, lat) in &rows {
        let l = if lat.is_empty() {
            String::new()
        } else {
            format!("{:.1}/{:.1}", pct(lat, 0.5), pct(lat, 0.99))
        };
        println!("{name:<64} {v:>12.0} {:>10.3} {l:>16}", v / base);
    }
    let (r1, r2) = (rows[1].1, rows[3].1);
    let (c1, c2) = (rows[2].1, rows[4].1);
    println!(
        "scale-out 2+2 vs 1+1: acknowledged {:.3}, committed {:.3}",
        r2 / r1,
        c2 / c1
    );
    println!(
        "JetStream stream after the 2+2 run: {} messages ({:.0} events each), {} bytes = {:.1} bytes/event (one replica's file storage; ×replicas on disk)",
        stream_bytes.0,
        total as f64 / stream_bytes.0.max(1) as f64,
        stream_bytes.1,
        stream_bytes.1 as f64 / total as f64
    );

    // 3. End-to-end delay: closing batch posted → warning listed by the API.
    let (emb, sca) = e2e(&agent, &ch, tmp.path(), &nats, (replicas, partitions), reps);
    let (mut e, mut s): (Vec<f64>, Vec<f64>) = (
        emb.iter().copied().filter(|x| !x.is_nan()).collect(),
        sca.iter().copied().filter(|x| !x.is_nan()).collect(),
    );
    let (me, ms) = (median(&mut e), median(&mut s));
    println!("\n== end-to-end delay: closing batch posted → warning in GET /api/v1/alerts ({reps} surges)");
    println!(
        "embedded --role all:          {:?} ms, median {me:.0} ms",
        emb.iter().map(|x| x.round()).collect::<Vec<_>>()
    );
    println!("scale-out (collector → NATS → aggregator → ClickHouse → detector → api): {:?} ms, median {ms:.0} ms", sca.iter().map(|x| x.round()).collect::<Vec<_>>());
    println!("ratio scale-out / embedded (medians): {:.1}", ms / me);
    println!(
        "\ntotal bench time {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// Delays (ms) for the embedded server and for the roles, one per surge.
fn e2e(
    agent: &ureq::Agent,
    ch: &Ch,
    tmp: &Path,
    nats: &str,
    bus: (u32, u32),
    reps: usize,
) -> (Vec<f64>, Vec<f64>) {
    // The seed case's small network (8 sensors), a day of history, then `reps` short
    // surges on ports that are quiet or silent, four hours apart.
    let mut sc = scanwatch_simulate::golden_cases()
        .into_iter()
        .next()
        .unwrap();
    let ports = [
        1025u16, 6379, 8088, 9000, 5432, 2375, 11211, 27017, 631, 8883,
    ];
    let reps = reps.min(ports.len());
    let first = 82u32; // as the seed case: three days of history first
    sc.surges = (0..reps)
        .map(|k| Surge {
            proto: Protocol::Tcp,
            port: ports[k],
            start_hour: first + 4 * k as u32,
            ramp_hours: 0,
            hold_hours: 2,
            decay_hours: 0,
            peak_sources_per_hour: 150.0,
            events_per_source: 1.5,
            coverage: 1.0,
            sensors_per_source: 3.0,
        })
        .collect();
    sc.hours = first + 4 * reps as u32 + 3;
    let names: Vec<String> = (0..sc.sensors).map(|i| sc.sensor_name(i)).collect();
    // hour → per sensor → lines
    let mut hours: std::collections::BTreeMap<i64, Vec<Vec<(i64, String)>>> = Default::default();
    for (s, e) in sc.all_events() {
        let h = e.time.0.div_euclid(3_600_000);
        hours
            .entry(h)
            .or_insert_with(|| vec![Vec::new(); names.len()])[s as usize]
            .push((
                e.time.0,
                WireEvent::from_event(&e, Some(&names[s as usize])).to_line(),
            ));
    }
    let h0 = sc.start.0.div_euclid(3_600_000);

    // Embedded server.
    let edata = tmp.join("e2e-embedded");
    let mut st = SqliteStore::open(&edata).unwrap();
    let etok: Vec<String> = names
        .iter()
        .map(|n| st.add_sensor(n, Timestamp(0)).unwrap())
        .collect();
    let eapi = st
        .add_api_token("bench", Role::Analyst, Timestamp(0))
        .unwrap();
    drop(st);
    let eport = free_port();
    let ecfg = tmp.join("e2e-embedded.toml");
    std::fs::write(&ecfg, config(&edata, eport, nats, bus, "e2e_emb", "")).unwrap();
    // Scale-out: collector, aggregator, detector, api over ClickHouse.
    let db = "bench_e2e";
    let mut st = ClickHouseStore::open(&ch.config(db)).unwrap();
    let stok: Vec<String> = names
        .iter()
        .map(|n| st.add_sensor(n, Timestamp(0)).unwrap())
        .collect();
    let sapi = st
        .add_api_token("bench", Role::Analyst, Timestamp(0))
        .unwrap();
    drop(st);
    let (cport, aport) = (free_port(), free_port());
    let sdata = tmp.join("e2e-scale");
    std::fs::create_dir_all(&sdata).unwrap();
    let scfg = tmp.join("e2e-scale.toml");
    std::fs::write(&scfg, config(&sdata, cport, nats, bus, "e2e", &ch.toml(db))).unwrap();
    let log = |n: &str| tmp.join(format!("{n}.log"));
    let _procs = [
        server(&ecfg, "all", &[], &log("e2e-embedded")),
        server(&scfg, "collector", &[], &log("e2e-collector")),
        server(&scfg, "aggregator", &[], &log("e2e-aggregator")),
        server(&scfg, "detector", &[], &log("e2e-detector")),
        server(
            &scfg,
            "api",
            &["--listen", &format!("127.0.0.1:{aport}")],
            &log("e2e-api"),
        ),
    ];
    for p in [eport, cport, aport] {
        wait_http(agent, p);
    }
    let post = |port: u16, tok: &str, batch: &str, lines: &[(i64, String)]| {
        let body: String = lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        agent
            .post(&format!("http://127.0.0.1:{port}/api/v1/events"))
            .header("Authorization", &format!("Bearer {tok}"))
            .header("X-Scanwatch-Batch", batch)
            .send(body.as_str())
            .unwrap();
    };
    let has_alert = |port: u16, tok: &str, p: u16| -> bool {
        let Ok(mut r) = agent
            .get(&format!("http://127.0.0.1:{port}/api/v1/alerts"))
            .header("Authorization", &format!("Bearer {tok}"))
            .call()
        else {
            return false;
        };
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default())
                .unwrap_or_default();
        v.as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["port"].as_u64() == Some(u64::from(p)) && x["protocol"] == "tcp")
        })
    };
    let targets = [(eport, eport, &etok, &eapi), (cport, aport, &stok, &sapi)];
    let post_hour = |h: i64, skip: Option<usize>| {
        let Some(hour) = hours.get(&h) else { return };
        for (i, lines) in hour.iter().enumerate() {
            if lines.is_empty() || Some(i) == skip {
                continue;
            }
            for (ing, _, toks, _) in &targets {
                post(*ing, &toks[i], &format!("h{h}"), lines);
            }
        }
    };
    let (mut emb, mut sca) = (Vec::new(), Vec::new());
    let mut next = h0;
    for (k, surge) in sc.surges.iter().enumerate() {
        let s = h0 + i64::from(surge.start_hour);
        let close = s + 2; // window [s, s+1h) closes once an event at s+2h arrives (lateness 1h)
        while next < close {
            post_hour(next, None);
            next += 1;
        }
        std::thread::sleep(Duration::from_secs(2)); // the detector caught up with the rest
        for (_, api, _, tok) in &targets {
            assert!(
                !has_alert(*api, tok, surge.port),
                "warning before the closing batch"
            );
        }
        // The closing batch: the sensor whose first event of hour `close` is earliest.
        let (i, _) = hours[&close]
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .min_by_key(|(_, l)| l[0].0)
            .unwrap();
        for (j, (ing, api, toks, tok)) in targets.iter().enumerate() {
            let t = Instant::now();
            post(*ing, &toks[i], &format!("h{close}"), &hours[&close][i]);
            let deadline = t + Duration::from_secs(30);
            let mut ms = f64::NAN;
            while Instant::now() < deadline {
                if has_alert(*api, tok, surge.port) {
                    ms = t.elapsed().as_secs_f64() * 1000.0;
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if ms.is_nan() {
                println!(
                    "surge {k} (tcp/{}): no warning within 30 s on {}",
                    surge.port,
                    if j == 0 { "embedded" } else { "scale-out" }
                );
            }
            if j == 0 {
                emb.push(ms)
            } else {
                sca.push(ms)
            }
        }
        post_hour(close, Some(i));
        next = close + 1;
    }
    (emb, sca)
}
