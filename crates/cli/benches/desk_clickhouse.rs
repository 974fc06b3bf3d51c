//! The desk's range queries on the scale-out store with 30 days loaded: two ClickHouse
//! 18.16 servers (two shards, `tests/scale/clickhouse.sh`) holding the demo network
//! (40 sensors, ~30 diurnal ports, a random-port tail, research scanners)
//! stretched to SCANWATCH_BENCH_DAYS (default 30) days, committed as aggregators
//! commit (`commit_aggregate`, the cells made by ClickHouse's views on insert).
//! Then `top_ports` by sources (limit 20, as the desk) and by events (limit 10, the
//! API's default) over the last 24 h, over 24 h ending mid-hour (the API's "last
//! 24 h" from a clock mid-hour: raw ends) and over the 30 days, and one
//! source's activity over the 30 days, each read from the cells (what the store
//! answers for top ports from a day on, a source over more than two days) beside
//! the same read from the raw events (the baseline: what the store answered before
//! the cells, and answers for shorter ranges)
//! in the same run, p50/p99 over SCANWATCH_BENCH_REPS
//! (default 20) alternating requests; the answers are asserted equal.
//!
//! First what the cells cost on insert: the same commits with and without the views.
//! Two loads, since a cell row is per commit: one commit per simulated hour (all 40
//! sensors' batches in one fetch, as a busy aggregator commits) and one commit per
//! sensor and hour (40 commits an hour; SCANWATCH_BENCH_SMALL_DAYS, default 3 days,
//! loading it takes a commit's latency per batch).
//! Run with `scripts/bench.sh` or `cargo bench -p scanwatch --bench desk_clickhouse`;
//! needs `clickhouse-server` (Debian bookworm package).
#![allow(clippy::unwrap_used)] // a bench may panic on a broken setup

mod servers;

use std::time::Instant;

use scanwatch_event::{Event, Timestamp};
use scanwatch_store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use scanwatch_store::{AggregateCommit, BatchPart, EventStore, SensorStore, TopBy};
use servers::{env_value, Servers};

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Loads `days` of the demo network, one commit per hour (`per_sensor` false) or per
/// sensor and hour. Returns (events, commits, the end of the data).
fn load(s: &mut ClickHouseStore, days: u32, per_sensor: bool) -> (u64, u64, i64) {
    let mut sc = scanwatch_simulate::demo();
    sc.hours = days * 24;
    let names: Vec<String> = (0..sc.sensors).map(|i| sc.sensor_name(i)).collect();
    for n in &names {
        s.add_sensor(n, Timestamp(0)).unwrap();
    }
    let (mut events, mut commits) = (0u64, 0u64);
    for (hour_no, hour) in sc.generator().enumerate() {
        let mut per: Vec<Vec<Event>> = vec![Vec::new(); names.len()];
        for (i, e) in hour {
            per[i as usize].push(e);
        }
        let ids: Vec<String> = (0..names.len())
            .map(|i| format!("h{hour_no}-{i}"))
            .collect();
        let parts: Vec<BatchPart<'_>> = per
            .iter()
            .enumerate()
            .filter(|(_, evs)| !evs.is_empty())
            .map(|(i, evs)| BatchPart {
                sensor: &names[i],
                batch_id: &ids[i],
                events: evs,
            })
            .collect();
        events += per.iter().map(|v| v.len() as u64).sum::<u64>();
        let groups: Vec<Vec<BatchPart<'_>>> = if per_sensor {
            parts.into_iter().map(|p| vec![p]).collect()
        } else {
            vec![parts]
        };
        for batches in groups {
            commits += 1;
            s.commit_aggregate(&AggregateCommit {
                commit: commits,
                shard_key: commits,
                received: Timestamp(0),
                batches,
                partials: Vec::new(),
            })
            .unwrap();
        }
    }
    (
        events,
        commits,
        sc.start.0 + i64::from(sc.hours) * 3_600_000,
    )
}

/// Rows and compressed bytes of a table over both shards.
fn size(urls: &[String], db: &str, table: &str) -> (u64, u64) {
    let agent = ureq::Agent::new_with_defaults();
    let mut total = (0, 0);
    for u in urls {
        let r = agent
            .post(&format!("{u}/"))
            .send(format!(
                "SELECT sum(rows), sum(data_compressed_bytes) FROM system.parts \
                 WHERE database = '{db}' AND table = '{table}_local' AND active"
            ))
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let mut it = r.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
        total.0 += it.next().unwrap_or(0);
        total.1 += it.next().unwrap_or(0);
    }
    total
}

/// p50 and p99 in ms of `cells` and `raw`, called alternately `reps` times each; the
/// answers must be equal.
fn compare<T: PartialEq + std::fmt::Debug>(
    reps: usize,
    mut cells: impl FnMut() -> T,
    mut raw: impl FnMut() -> T,
) -> [(f64, f64); 2] {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        let x = cells();
        a.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let y = raw();
        b.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(x, y, "the cells and the raw events disagree");
    }
    [a, b].map(|mut v| {
        v.sort_by(f64::total_cmp);
        (percentile(&v, 0.5), percentile(&v, 0.99))
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let days: u32 = env_or("SCANWATCH_BENCH_DAYS", 30);
    let small_days: u32 = env_or("SCANWATCH_BENCH_SMALL_DAYS", 3);
    let reps: usize = env_or("SCANWATCH_BENCH_REPS", 20);
    let tmp = tempfile::tempdir().unwrap();
    // SCANWATCH_BENCH_CLICKHOUSE_DIR: servers already started there by
    // `tests/scale/clickhouse.sh start DIR` (kept for profiling), else new ones.
    let (_ch, env) = match std::env::var_os("SCANWATCH_BENCH_CLICKHOUSE_DIR") {
        Some(dir) => (
            None,
            std::fs::read_to_string(std::path::Path::new(&dir).join("ports.env")).unwrap(),
        ),
        None => {
            let (ch, env) = Servers::start("clickhouse.sh", &tmp.path().join("clickhouse"));
            (Some(ch), env)
        }
    };
    let urls: Vec<String> = (1..=2)
        .map(|i| {
            format!(
                "http://127.0.0.1:{}",
                env_value(&env, &format!("CH_HTTP_PORT_{i}"))
            )
        })
        .collect();
    let agent = ureq::Agent::new_with_defaults();
    // Servers kept from an earlier run hold its databases: start afresh.
    for u in &urls {
        for db in [
            "desk_hourly",
            "desk_small",
            "desk_insert_0_false",
            "desk_insert_0_true",
            "desk_insert_1_false",
            "desk_insert_1_true",
        ] {
            agent
                .post(&format!("{u}/"))
                .send(format!("DROP DATABASE IF EXISTS {db}"))
                .unwrap();
        }
    }
    let config = |db: &str| {
        let mut c = ClickHouseConfig::new(&urls.join(","));
        c.cluster = Some("scanwatch".into());
        c.database = db.into();
        c
    };
    println!("ClickHouse 18.16 ×2 shards; {reps} requests each, cells and raw events alternating");

    // What the views cost on insert: the same commits into a database whose views
    // were dropped (the baseline) and into one with them, alternating, twice.
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..2 {
        for (k, views) in [(0, false), (1, true)] {
            let db = format!("desk_insert_{round}_{views}");
            let mut s = ClickHouseStore::open(&config(&db)).unwrap();
            if !views {
                for u in &urls {
                    for v in ["port_hours_feed_local", "source_hours_feed_local"] {
                        agent
                            .post(&format!("{u}/"))
                            .send(format!("DROP TABLE {db}.{v}"))
                            .unwrap();
                    }
                }
            }
            let t = Instant::now();
            let (events, _, _) = load(&mut s, small_days, false);
            rates[k].push(events as f64 / t.elapsed().as_secs_f64());
        }
    }
    println!(
        "insert ({small_days} days, one commit per hour): without the views {:.0} and {:.0} events/s, with them {:.0} and {:.0}: ratio {:.2}",
        rates[0][0],
        rates[0][1],
        rates[1][0],
        rates[1][1],
        (rates[1][0] + rates[1][1]) / (rates[0][0] + rates[0][1])
    );
    for (db, days, per_sensor, what) in [
        ("desk_hourly", days, false, "one commit per hour"),
        (
            "desk_small",
            small_days,
            true,
            "one commit per sensor and hour",
        ),
    ] {
        let mut s = ClickHouseStore::open(&config(db)).unwrap();
        let t = Instant::now();
        let (events, commits, end) = load(&mut s, days, per_sensor);
        let secs = t.elapsed().as_secs_f64();
        let (ev_rows, ev_bytes) = size(&urls, db, "events");
        let (ph_rows, ph_bytes) = size(&urls, db, "port_hours");
        let (sh_rows, sh_bytes) = size(&urls, db, "source_hours");
        println!(
            "\n== {days} days, {what}: {events} events in {commits} commits, loaded in {secs:.1} s ({:.0} events/s)",
            events as f64 / secs
        );
        println!(
            "rows (compressed MiB): events {ev_rows} ({:.1}), port_hours {ph_rows} ({:.1}), source_hours {sh_rows} ({:.1})",
            ev_bytes as f64 / 1048576.0,
            ph_bytes as f64 / 1048576.0,
            sh_bytes as f64 / 1048576.0
        );
        println!(
            "{:<44} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "query", "cells p50", "cells p99", "raw p50", "raw p99", "p99 raw/cells"
        );
        let day = Timestamp(end - 86_400_000);
        let all = Timestamp(end - i64::from(days) * 86_400_000);
        // A research scanner: a source on many ports every day.
        let src = scanwatch_simulate::demo().research_scanner_ips()[0];
        assert!(!s
            .source_activity(src, all, Timestamp(end))
            .unwrap()
            .is_empty());
        // Top ports by sources (limit 20, as the desk) and by events (limit 10, the
        // API's default), over the last 24 h and the whole range (whole hours), and
        // over 24 h ending half an hour before (as the API's "last 24 h" from a
        // clock mid-hour: the cells of 23 hours and two half hours of raw events).
        let top = |by: TopBy, limit: usize, from: Timestamp, to: Timestamp| {
            compare(
                reps,
                || s.top_ports_from_cells(from, to, by, limit).unwrap(),
                || s.top_ports_from_events(from, to, by, limit).unwrap(),
            )
        };
        let half_hour = 1_800_000;
        let mut rows: Vec<(String, [(f64, f64); 2])> = Vec::new();
        for (by, name, limit) in [
            (TopBy::Sources, "sources", 20),
            (TopBy::Events, "events", 10),
        ] {
            rows.push((
                format!("top_ports by {name}, last 24 h"),
                top(by, limit, day, Timestamp(end)),
            ));
            rows.push((
                format!("top_ports by {name}, 24 h to mid-hour"),
                top(
                    by,
                    limit,
                    Timestamp(day.0 - half_hour),
                    Timestamp(end - half_hour),
                ),
            ));
            rows.push((
                format!("top_ports by {name}, {days} days"),
                top(by, limit, all, Timestamp(end)),
            ));
        }
        rows.push((
            format!("source_activity, {days} days"),
            compare(
                reps,
                || {
                    s.source_activity_from_cells(src, all, Timestamp(end))
                        .unwrap()
                },
                || {
                    s.source_activity_from_events(src, all, Timestamp(end))
                        .unwrap()
                },
            ),
        ));
        for (name, [(c50, c99), (r50, r99)]) in rows {
            println!(
                "{name:<44} {c50:>10.1} {c99:>10.1} {r50:>10.1} {r99:>10.1} {:>8.2}",
                r99 / c99
            );
        }
    }
}
