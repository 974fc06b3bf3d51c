//! Query latency of the embedded server with 30 days of realistic data loaded: the
//! demo network (40 sensors, ~30 diurnal ports, a random-port tail, research
//! scanners, the seed surge) stretched to SCANWATCH_BENCH_DAYS (default 30) days,
//! stored and fed through the same path as ingest (raw events, window aggregates,
//! warnings). Then, through the HTTP app (`oneshot`, no network): `topports` over the
//! last 24 h and one port's 30-day history, p50/p99 over repeated requests, beside
//! the floor measured in the same run (`/healthz` through the same app), and two
//! sources' pages over the whole range. Then the
//! ingest latency of a small batch while four analysts call `topports` without
//! pause, against the same latency idle, with the read connections the server
//! opens (4) and without them (reads on the writer's connection), in one run.
//! Run with `scripts/bench.sh` or `cargo bench -p scanwatch-collector --bench query`.
#![allow(clippy::unwrap_used)] // a bench may panic on a broken setup

use scanwatch_store::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use scanwatch_collector::{app, AppState, Limits};
use scanwatch_event::Timestamp;
use scanwatch_pipeline::{Pipeline, PipelineConfig};
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{Role, Store};
use tower::ServiceExt;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // A profiling mode (`SCANWATCH_BENCH_ONLY`) of another bench, or misspelt:
    // nothing runs in its place (`cargo bench -p` runs every bench of the crate).
    let only = std::env::var("SCANWATCH_BENCH_ONLY")
        .ok()
        .filter(|o| !o.is_empty());
    if let Some(o) = only.as_deref().filter(|o| *o != "topports-range") {
        println!("SCANWATCH_BENCH_ONLY={o}: not this bench's mode (topports-range); nothing run");
        return;
    }
    let days: u32 = std::env::var("SCANWATCH_BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut sc = scanwatch_simulate::demo();
    sc.hours = days * 24;
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    // To compare the layouts of the sources' days in one binary:
    // `SCANWATCH_BENCH_PACK_PORTS=0` counts every port of a source's day in a row
    // of its own, as schema version 9 did (default: up to `PACK_PORTS` in one row).
    let pack_ports = std::env::var("SCANWATCH_BENCH_PACK_PORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(scanwatch_store::sqlite::PACK_PORTS);
    store.set_pack_ports(pack_ports);
    println!("a source's day: up to {pack_ports} ports in one row");
    let names: Vec<String> = (0..sc.sensors).map(|i| sc.sensor_name(i)).collect();
    for n in &names {
        store.add_sensor(n, Timestamp(0)).unwrap();
    }
    let api = store
        .add_api_token("bench", Role::Analyst, Timestamp(0))
        .unwrap();
    let probe = store.add_sensor("probe", Timestamp(0)).unwrap();
    let end = sc.start.0 + i64::from(sc.hours) * 3_600_000;
    let mut pipeline = Pipeline::new(PipelineConfig::new(3_600_000, 7 * 86_400_000));
    pipeline.set_emit_windows(true);
    let state = AppState::new(
        Box::new(store),
        pipeline,
        Limits::default(),
        Arc::new(move || Timestamp(end)),
    );

    // Load: one batch per sensor and hour, committed and fed as the server does.
    let t = Instant::now();
    let mut events = 0u64;
    let mut batch = 0u64;
    // The ports each source probed in the last hour: the desk looks up the one
    // with the most (a vertical scanner of the random-port tail).
    let mut last_ports: HashMap<std::net::IpAddr, HashSet<(u8, u16)>> = HashMap::new();
    for (h, hour) in sc.generator().enumerate() {
        let mut per: Vec<Vec<scanwatch_event::Event>> = vec![Vec::new(); names.len()];
        for (s, e) in hour {
            if h + 1 == sc.hours as usize {
                if let Some((p, port)) = e.scanned_port() {
                    last_ports
                        .entry(e.src)
                        .or_default()
                        .insert((p.number(), port));
                }
            }
            per[s as usize].push(e);
        }
        for (s, evs) in per.into_iter().enumerate() {
            if evs.is_empty() {
                continue;
            }
            events += evs.len() as u64;
            batch += 1;
            state
                .store
                .lock()
                .unwrap()
                .commit_batch(&names[s], &format!("b{batch}"), &evs, Timestamp(0))
                .unwrap();
            state.feed(&names[s], &evs).unwrap();
        }
    }
    let load = t.elapsed().as_secs_f64();
    // The whole data directory: the database, its WAL and shared memory; and the
    // database alone after a checkpoint.
    let size = || -> u64 {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|f| f.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    let before_checkpoint = size();
    for db in ["scanwatch.db", "counts.db"] {
        rusqlite::Connection::open(dir.path().join(db))
            .unwrap()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    println!(
        "data directory {:.0} MiB before the WAL checkpoint",
        before_checkpoint as f64 / (1 << 20) as f64
    );
    let db = size();
    println!(
        "loaded {days} days: {events} events in {batch} batches ({:.0} events/s), data directory {:.0} MiB",
        events as f64 / load,
        db as f64 / (1 << 20) as f64
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Reads go through a read connection, as the server's (`[server]
    // read_connections`, `[store] map_reads`).
    let reader = SqliteStore::open(dir.path()).unwrap();
    reader.map_for_reading().unwrap();
    let served = state
        .clone()
        .with_readers(vec![Box::new(reader) as Box<dyn Store>]);
    let router = app(served);
    let get = |path: String| {
        let router = router.clone();
        let api = api.clone();
        let rt = &rt;
        move || {
            rt.block_on(async {
                let resp = router
                    .clone()
                    .oneshot(
                        Request::get(path.as_str())
                            .header("authorization", format!("Bearer {api}"))
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                assert!(resp.status().is_success(), "{path}: {}", resp.status());
                axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .unwrap()
                    .len()
            })
        }
    };
    let rfc = |ms: i64| Timestamp(ms).to_rfc3339();
    let reps = 60;
    let measure = |name: &str, f: &dyn Fn() -> usize| -> (f64, f64, usize) {
        let bytes = f(); // warm up
        let mut lat: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        println!("{name:<58} p50 {p50:>8.2} ms  p99 {p99:>8.2} ms  ({bytes} bytes)");
        (p50, p99, bytes)
    };
    println!("{reps} requests each through the HTTP app (oneshot):");
    let (floor50, _, _) = measure("floor: GET /healthz (baseline)", &get("/healthz".into()));
    let (top50, top99, _) = measure(
        "GET /api/v1/topports?by=sources, last 24 h",
        &get(format!(
            "/api/v1/topports?by=sources&limit=10&from={}&to={}",
            rfc(end - 86_400_000),
            rfc(end)
        )),
    );
    if only.is_some() {
        // For profiling: the whole range's top ports alone, many times.
        let f = get(format!(
            "/api/v1/topports?by=sources&limit=10&from={}&to={}",
            rfc(end - i64::from(days) * 86_400_000),
            rfc(end)
        ));
        let t = Instant::now();
        for _ in 0..300 {
            f();
        }
        println!(
            "topports over {days} days: {:.2} ms each",
            t.elapsed().as_secs_f64() * 1000.0 / 300.0
        );
        return;
    }
    let (top30_50, top30_99, _) = measure(
        &format!("GET /api/v1/topports?by=sources, last {days} days"),
        &get(format!(
            "/api/v1/topports?by=sources&limit=10&from={}&to={}",
            rfc(end - i64::from(days) * 86_400_000),
            rfc(end)
        )),
    );
    // Ranked by events (the API's default): the ranking reads the cells' events
    // alone, the ten ranked ports' counters after.
    measure(
        &format!("GET /api/v1/topports (by events), last {days} days"),
        &get(format!(
            "/api/v1/topports?limit=10&from={}&to={}",
            rfc(end - i64::from(days) * 86_400_000),
            rfc(end)
        )),
    );
    // Ends that are not on an hour: the parts of an hour are read from raw events.
    let odd = 1_234_567;
    let (odd50, odd99, _) = measure(
        "GET /api/v1/topports?by=sources, 24 h not on the hour",
        &get(format!(
            "/api/v1/topports?by=sources&limit=10&from={}&to={}",
            rfc(end - 86_400_000 - odd),
            rfc(end - odd)
        )),
    );
    // Without the per-port cells: exact distinct counts over the raw events of
    // the range (what `topports` counted before them, issue 14), here read from
    // the event blocks and counted in memory.
    let raw = SqliteStore::open(dir.path()).unwrap();
    raw.map_for_reading().unwrap();
    let (raw50, raw99, _) = measure(
        "without cells: exact counts over the raw events, 24 h",
        &|| {
            use std::collections::{HashMap, HashSet};
            let mut ports: HashMap<(u8, u16), (u64, HashSet<std::net::IpAddr>)> = HashMap::new();
            for (_, e) in raw
                .events_between(Timestamp(end - 86_400_000), Timestamp(end))
                .unwrap()
            {
                if let Some((p, port)) = e.scanned_port() {
                    let a = ports.entry((p.number(), port)).or_default();
                    a.0 += u64::from(e.count);
                    a.1.insert(e.src);
                }
            }
            ports.len()
        },
    );
    println!(
        "topports from cells vs counting raw events, 24 h (p50): ×{:.1} faster; 30 days p99 {:.1} ms, 24 h off the hour p99 {:.1} ms ({}); raw p99 {:.0} ms",
        raw50 / top50,
        top30_99,
        odd99,
        if top30_99 < 50.0 && odd99 < 50.0 { "both < 50 ms: met" } else { "NOT met" },
        raw99
    );
    let _ = (top30_50, odd50);
    // The overview's top movers rank up to 1,000 ports of each of two days.
    let (mov50, mov99, _) = measure(
        "store: top 1,000 ports by sources, 24 h (the overview's movers)",
        &|| {
            raw.top_ports(
                Timestamp(end - 86_400_000),
                Timestamp(end),
                scanwatch_store::TopBy::Sources,
                1000,
            )
            .unwrap()
            .len()
        },
    );
    let _ = (mov50, mov99);
    let (hist50, hist99, _) = measure(
        &format!("GET /api/v1/ports/tcp/1025/history, last {days} days"),
        &get(format!(
            "/api/v1/ports/tcp/1025/history?from={}&to={}",
            rfc(end - i64::from(days) * 86_400_000),
            rfc(end)
        )),
    );
    // A source's page: a research scanner (its ports every day of the range) and
    // the vertical scanner of the last hour (many ports in one day).
    let scanner = sc.research_scanner_ips()[0];
    let (vertical, vertical_ports) = last_ports
        .iter()
        .map(|(ip, p)| (*ip, p.len()))
        .max_by_key(|(ip, n)| (*n, *ip))
        .unwrap();
    for (who, ip) in [
        ("a research scanner".to_string(), scanner),
        (
            format!("a vertical scanner ({vertical_ports} ports)"),
            vertical,
        ),
    ] {
        measure(
            &format!("GET /api/v1/sources/{{ip}}, {who}, {days} days"),
            &get(format!(
                "/api/v1/sources/{ip}?from={}&to={}",
                rfc(end - i64::from(days) * 86_400_000),
                rfc(end)
            )),
        );
    }
    println!(
        "ratios to the floor (p50): topports {:.0}×, history {:.0}×; target p99 < 50 ms: topports {}, history {}",
        top50 / floor50,
        hist50 / floor50,
        if top99 < 50.0 { "met" } else { "NOT met" },
        if hist99 < 50.0 { "met" } else { "NOT met" },
    );

    // Ingest under concurrent queries: with the server's read connections, and
    // with reads on the writer's connection (the baseline, as before them).
    let with_readers = state.clone().with_readers(
        (0..4)
            .map(|_| {
                let reader = SqliteStore::open(dir.path()).unwrap();
                reader.map_for_reading().unwrap();
                Box::new(reader) as Box<dyn Store>
            })
            .collect(),
    );
    let top = format!(
        "/api/v1/topports?by=sources&limit=10&from={}&to={}",
        rfc(end - 86_400_000),
        rfc(end)
    );
    let mut seq = 0u64;
    let mut ingest = |state: &AppState, analysts: usize| -> (f64, f64) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let router = app(state.clone());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut queries = Vec::new();
        for _ in 0..analysts {
            let (router, api, top, stop) = (router.clone(), api.clone(), top.clone(), stop.clone());
            queries.push(rt.spawn(async move {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let req = Request::get(top.as_str())
                        .header("authorization", format!("Bearer {api}"))
                        .body(Body::empty())
                        .unwrap();
                    let resp = router.clone().oneshot(req).await.unwrap();
                    assert!(resp.status().is_success());
                    n += 1;
                }
                n
            }));
        }
        let mut lat = Vec::new();
        for _ in 0..40 {
            seq += 1;
            let body: String = (0..10)
                .map(|i| {
                    format!(
                        "{{\"v\":1,\"time\":\"{}\",\"proto\":\"tcp\",\"src\":\"203.0.113.{}\",\"dst\":\"198.18.0.1\",\"dst_port\":1025,\"flags\":\"S\"}}\n",
                        rfc(end - 60_000),
                        i + 1
                    )
                })
                .collect();
            let req = Request::post("/api/v1/events")
                .header("authorization", format!("Bearer {probe}"))
                .header(scanwatch_collector::BATCH_HEADER, format!("p{seq}"))
                .body(Body::from(body))
                .unwrap();
            let t = Instant::now();
            let resp = rt.block_on(router.clone().oneshot(req)).unwrap();
            assert!(resp.status().is_success(), "{}", resp.status());
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for q in queries {
            rt.block_on(q).unwrap();
        }
        lat.sort_by(f64::total_cmp);
        (percentile(&lat, 0.5), percentile(&lat, 0.99))
    };
    println!("ingest of a 10-event batch, 40 requests each (p50 / p99):");
    for (name, st) in [
        ("with 4 read connections", &with_readers),
        ("reads on the writer's connection (baseline)", &state),
    ] {
        let (i50, i99) = ingest(st, 0);
        let (b50, b99) = ingest(st, 4);
        println!(
            "  {name:<44} idle {i50:>7.2} / {i99:>7.2} ms, 4 analysts on topports {b50:>8.2} / {b99:>8.2} ms: ×{:.1} p50, ×{:.1} p99",
            b50 / i50,
            b99 / i99
        );
    }

    // Retention as the server runs it each hour, cutting through a day (the day's
    // cells and source days are counted again from its blocks), beside the replay a
    // restart does (every stored event, decoded from the blocks).
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let cut = end - i64::from(days.saturating_sub(1)) * 86_400_000 + 13 * 3_600_000 + 60_000;
    let t = Instant::now();
    let (pruned, _) = store.prune(Timestamp(cut), Timestamp(i64::MIN)).unwrap();
    let prune_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let all = store
        .events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))
        .unwrap()
        .len();
    println!(
        "retention cutting through a day: {pruned} events in {prune_ms:.0} ms; reading every stored event back (a restart's replay reads them): {all} in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    drop(store);

    // Restart: a centre with the same settings started on the loaded store, once
    // replaying every stored event (the baseline: no checkpoint yet), once from a
    // checkpoint of the running centre with an hour of batches (one per sensor)
    // committed after it and not fed (a crash: the restart replays them and
    // revises the windows they fall in).
    let centre_on = |dir: &std::path::Path| {
        let mut p = Pipeline::new(PipelineConfig::new(3_600_000, 7 * 86_400_000));
        p.set_emit_windows(true);
        AppState::new(
            Box::new(SqliteStore::open(dir).unwrap()),
            p,
            Limits::default(),
            Arc::new(move || Timestamp(end)),
        )
        .centre
    };
    let t = Instant::now();
    let full = centre_on(dir.path()).replay(Timestamp(end)).unwrap();
    let full_s = t.elapsed().as_secs_f64();
    assert_eq!(full.checkpoint, None);
    let t = Instant::now();
    let cp = state.centre.checkpoint(Timestamp(end)).unwrap().unwrap();
    let cp_ms = t.elapsed().as_secs_f64() * 1000.0;
    let last_hour: Vec<(usize, Vec<scanwatch_event::Event>)> = {
        let mut per: Vec<Vec<scanwatch_event::Event>> = vec![Vec::new(); names.len()];
        for (_, e) in state
            .store
            .lock()
            .unwrap()
            .events_between(Timestamp(end - 3_600_000), Timestamp(end))
            .unwrap()
        {
            // The last hour's traffic again (as if a sensor resent it under new
            // batch ids), spread over the sensors: late for the windows the
            // running centre closed, so the restart revises them from the store.
            let s = (e.src_port.unwrap_or(0) as usize) % names.len();
            per[s].push(e);
        }
        per.into_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .collect()
    };
    let mut tail = 0usize;
    for (s, evs) in &last_hour {
        tail += evs.len();
        state
            .store
            .lock()
            .unwrap()
            .commit_batch(&names[*s], &format!("after-{s}"), evs, Timestamp(end))
            .unwrap();
    }
    drop(state);
    let t = Instant::now();
    let resumed = centre_on(dir.path()).replay(Timestamp(end)).unwrap();
    let resumed_s = t.elapsed().as_secs_f64();
    assert_eq!(resumed.checkpoint, Some(cp.mark), "{resumed:?}");
    assert_eq!(resumed.events, tail);
    println!(
        "restart, every stored event replayed (baseline): {} events in {full_s:.2} s; checkpoint taken in {cp_ms:.0} ms ({:.1} MiB); restart from it with {tail} events after it: {resumed_s:.2} s (×{:.0} faster; target < 2 s: {})",
        full.events,
        cp.bytes as f64 / (1 << 20) as f64,
        full_s / resumed_s,
        if resumed_s < 2.0 { "met" } else { "NOT met" }
    );

    // The aggregates' file lost (or moved aside as damaged): the store counts
    // every stored event again from the blocks when it opens.
    let stored: i64 = rusqlite::Connection::open(dir.path().join("scanwatch.db"))
        .unwrap()
        .query_row("SELECT SUM(events) FROM event_blocks", [], |r| r.get(0))
        .unwrap();
    for f in ["counts.db", "counts.db-wal", "counts.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let t = Instant::now();
    let store = SqliteStore::open(dir.path()).unwrap();
    let recount_s = t.elapsed().as_secs_f64();
    assert_eq!(store.uncounted().unwrap(), 0);
    println!(
        "counts.db lost: counted again from the blocks at open: {stored} events in {recount_s:.2} s ({:.0} events/s)",
        stored as f64 / recount_s
    );
}
