//! Ingest throughput of the embedded server over loopback: batches of 1,000 events
//! posted by a load generator in the same run, beside a baseline measured in the
//! same run (the same batches parsed and committed to the store directly, without
//! HTTP), with p50/p99 acknowledgement latency. `SCANWATCH_BENCH_CLIENTS` sets how
//! many sensors send at once (default 2), `SCANWATCH_BENCH_BATCHES` how many
//! batches (default 200). The direct baseline's time is split into the parse, the
//! commit and the counting (as the server counts, in the large transactions it
//! takes when behind, and of a whole backlog at once). `SCANWATCH_BENCH_ONLY=counting` runs the counting alone,
//! `=server` the server with its load generator alone, for profiling. Run with
//! `scripts/bench.sh` or `cargo bench -p scanwatch-collector --bench ingest`.
#![allow(clippy::unwrap_used)] // a bench may panic on a broken setup

use scanwatch_store::prelude::*;
use std::sync::Arc;
use std::time::Instant;

use scanwatch_collector::{app, AppState, Limits, BATCH_HEADER};
use scanwatch_event::{Timestamp, WireEvent};
use scanwatch_pipeline::{Pipeline, PipelineConfig};
use scanwatch_store::sqlite::SqliteStore;

const BATCH: usize = 1000;

fn bodies(n_batches: usize) -> Vec<String> {
    let sc = scanwatch_simulate::demo();
    let events: Vec<_> = sc
        .generator()
        .flatten()
        .take(n_batches * BATCH)
        .map(|(_, e)| e)
        .collect();
    events
        .chunks(BATCH)
        .map(|c| {
            c.iter()
                .map(|e| WireEvent::from_event(e, None).to_line() + "\n")
                .collect()
        })
        .collect()
}

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
    if let Some(o) = only
        .as_deref()
        .filter(|o| !["counting", "server"].contains(o))
    {
        println!("SCANWATCH_BENCH_ONLY={o}: not this bench's mode (counting, server); nothing run");
        return;
    }
    let n_batches: usize = std::env::var("SCANWATCH_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let bodies = Arc::new(bodies(n_batches));
    let events = (n_batches * BATCH) as f64;
    println!("input: {n_batches} batches of {BATCH} events (simulated demo traffic), JSON Lines");
    match only.as_deref() {
        Some("counting") => return counting_alone(&bodies),
        Some("server") => {
            let run = serve(&bodies);
            println!(
                "server over loopback, {} clients: {:.0} events/s answered, {:.0} with the counting after",
                run.clients,
                events / run.answered,
                events / run.seconds
            );
            return;
        }
        Some(o) => unreachable!("mode {o} refused above"),
        None => {}
    }

    // Baseline: parse and commit directly, no HTTP.
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.add_sensor("s", Timestamp(0)).unwrap();
    let t = Instant::now();
    for (i, b) in bodies.iter().enumerate() {
        let evs: Vec<_> = b
            .lines()
            .map(|l| WireEvent::parse_line(l).unwrap().to_event().unwrap())
            .collect();
        store
            .commit_batch("s", &format!("b{i}"), &evs, Timestamp(0))
            .unwrap();
    }
    let direct = t.elapsed().as_secs_f64();

    // Where the direct baseline's time goes, each part alone (best of three): the
    // parse (JSON and checks), the commit with the counting deferred (compressed
    // block, batch id), and the counting into the cells and source days as the
    // server does it (after a commit once 20,000 events wait, and the rest at the
    // end), timed apart from the commits. Then the counting every 256 batches, as
    // the server counts a backlog, and of every batch at once, as after a lost
    // `counts.db` or a recount (best of three each).
    let parsed = parse_all(&bodies);
    let (mut parse, mut commit, mut count, mut count_big, mut count_all) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let mut rows = String::new();
    for _ in 0..3 {
        let t = Instant::now();
        let n: u64 = bodies
            .iter()
            .flat_map(|b| b.lines())
            .map(|l| {
                let e = WireEvent::parse_line(l).unwrap().to_event().unwrap();
                u64::from(std::hint::black_box(e).count)
            })
            .sum();
        parse = parse.min(t.elapsed().as_secs_f64());
        let want: u64 = parsed.iter().flatten().map(|e| u64::from(e.count)).sum();
        assert_eq!(n, want);
        let (c, k, dir) = commit_then_count(&parsed, None);
        commit = commit.min(c);
        count = count.min(k);
        rows = rows_written(dir.path(), parsed.iter().map(Vec::len).sum());
    }
    for (every, best) in [(BIG_COUNTING, &mut count_big), (usize::MAX, &mut count_all)] {
        for _ in 0..3 {
            let (_, k, _) = commit_then_count(&parsed, Some(every));
            *best = best.min(k);
        }
    }

    // What waiting events cost a query (the server bounds them,
    // `max_uncounted_events`): every batch committed and none counted, top ports
    // over the whole range read (best of five), then the same once counted.
    let query_cost = {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store.add_sensor("s", Timestamp(0)).unwrap();
        store.defer_counting();
        for (i, evs) in parsed.iter().enumerate() {
            store
                .commit_batch("s", &format!("b{i}"), evs, Timestamp(0))
                .unwrap();
        }
        let waiting = store.uncounted().unwrap();
        let (from, to) = parsed
            .iter()
            .flatten()
            .fold((i64::MAX, i64::MIN), |(a, b), e| {
                (a.min(e.time.0), b.max(e.time.0 + 1))
            });
        let best = |s: &SqliteStore| {
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let top = s
                        .top_ports(
                            Timestamp(from),
                            Timestamp(to),
                            scanwatch_store::TopBy::Events,
                            10,
                        )
                        .unwrap();
                    assert_eq!(top.len(), 10);
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .fold(f64::MAX, f64::min)
        };
        let raw = best(&store);
        store.aggregate_now().unwrap();
        (waiting, raw, best(&store))
    };

    let ServerRun {
        clients,
        mut lat,
        refused,
        answered,
        seconds: http,
        backlog,
        bound: limits_bound,
    } = serve(&bodies);
    lat.sort_by(f64::total_cmp);
    println!("{:<48} {:>12} {:>10}", "figure", "events/s", "vs direct");
    // (Each row's rate against the direct baseline's: above 100 % is faster.)
    println!(
        "{:<48} {:>12.0} {:>9.1}%",
        "direct: parse + commit to SQLite (baseline)",
        events / direct,
        100.0
    );
    println!(
        "{:<48} {:>12.0} {:>9.1}%",
        format!("server over loopback: {clients} clients, 1,000/batch"),
        events / http,
        100.0 * direct / http
    );
    for (name, t) in [
        ("  of it: parse alone (JSON, checks)", parse),
        ("  of it: commit alone (counting deferred)", commit),
        ("  of it: counting alone, every 20,000 events", count),
        ("  counting alone, every 256 batches", count_big),
        ("  counting alone, every batch at once", count_all),
    ] {
        println!(
            "{name:<48} {:>12.0} {:>9.1}%",
            events / t,
            100.0 * direct / t
        );
    }
    println!("{rows}");
    println!(
        "ack latency per batch: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    println!(
        "top ports over the {:.1} h loaded: {:.1} ms with all {} events waiting to be counted, {:.1} ms counted",
        {
            let (a, b) = parsed.iter().flatten().fold((i64::MAX, i64::MIN), |(a, b), e| {
                (a.min(e.time.0), b.max(e.time.0))
            });
            (b - a) as f64 / 3_600_000.0
        },
        query_cost.1,
        query_cost.0,
        query_cost.2
    );
    println!(
        "server: last answer after {answered:.2} s ({:.0} events/s answered), then {:.2} s counting the {backlog} events still waiting; {refused} answers 503 or cut (from max_uncounted_events = {} on)",
        events / answered,
        http - answered,
        limits_bound,
    );
}

/// What the server on loopback did with the batches.
struct ServerRun {
    clients: usize,
    /// Acknowledgement latencies, ms.
    lat: Vec<f64>,
    /// Answers 503 or cut.
    refused: u64,
    /// Seconds to the last answer.
    answered: f64,
    /// Seconds to the end of the counting after the last answer.
    seconds: f64,
    /// Events waiting to be counted at the last answer.
    backlog: u64,
    /// `max_uncounted_events`.
    bound: u64,
}

/// The batches sent to the server on loopback by `SCANWATCH_BENCH_CLIENTS`
/// sensors at once (`SCANWATCH_BENCH_ONLY=server` runs only this, for
/// profiling).
fn serve(bodies: &Arc<Vec<String>>) -> ServerRun {
    // The server on loopback, with a load generator of client threads (two, or
    // `SCANWATCH_BENCH_CLIENTS`), each a sensor of its own with one batch in
    // flight, as a sensor sends.
    let clients: usize = std::env::var("SCANWATCH_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2);
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let tokens: Vec<String> = (0..clients)
        .map(|k| store.add_sensor(&format!("s{k}"), Timestamp(0)).unwrap())
        .collect();
    // As `scanwatch server` wires it: a batch is answered before the store counts
    // it into its aggregates (the handler counts after its answer).
    store.defer_counting();
    let mut pipeline = Pipeline::new(PipelineConfig::new(3_600_000, 7 * 86_400_000));
    pipeline.set_emit_windows(true);
    let limits = Limits {
        max_events_per_second_per_sensor: u64::MAX / 100,
        max_uncounted_events: std::env::var("SCANWATCH_BENCH_MAX_UNCOUNTED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(Limits::default().max_uncounted_events),
        ..Limits::default()
    };
    let limits_bound = limits.max_uncounted_events;
    // The centre's clock after the simulated traffic (events ahead of the clock by
    // more than the allowed skew are refused with 425).
    let state = AppState::new(
        Box::new(store),
        pipeline,
        limits,
        Arc::new(|| Timestamp(4_102_444_800_000)),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let store = state.store.clone();
    rt.spawn(async move { axum::serve(listener, app(state)).await });
    let url = format!("http://{addr}/api/v1/events");
    let t = Instant::now();
    // (Shared: a copy of the bodies per client would be 50 MB each.)
    let shared = Arc::new(bodies.clone());
    let threads: Vec<_> = (0..clients)
        .map(|k| {
            let (bodies, url, token) = (shared.clone(), url.clone(), tokens[k].clone());
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                let (mut lat, mut refused) = (Vec::new(), 0u64);
                for (i, b) in bodies.iter().enumerate().filter(|(i, _)| i % clients == k) {
                    let t = Instant::now();
                    // Answered 503 while the server's bound of events waiting to be
                    // counted is reached (`max_uncounted_events`): sent again after
                    // 20 ms (bounded; a sensor waits the answer's `Retry-After`).
                    for attempt in 0.. {
                        let r = agent
                            .post(&url)
                            .config()
                            .http_status_as_error(false)
                            .build()
                            .header("Authorization", &format!("Bearer {token}"))
                            .header(BATCH_HEADER, &format!("b{i}"))
                            .send(b.as_str());
                        match r.map(|r| r.status().as_u16()) {
                            Ok(200) => break,
                            // Refused, or the connection cut under a refusal.
                            Ok(503) | Err(_) if attempt < 10_000 => {
                                refused += 1;
                                std::thread::sleep(std::time::Duration::from_millis(20));
                            }
                            other => panic!("batch {i}: {other:?}"),
                        }
                    }
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                (lat, refused)
            })
        })
        .collect();
    let (mut lat, mut refused) = (Vec::new(), 0);
    for h in threads {
        let (l, r) = h.join().unwrap();
        lat.extend(l);
        refused += r;
    }
    let answered = t.elapsed().as_secs_f64();
    let backlog = store.lock().unwrap().uncounted().unwrap();
    // The counting the server did after its last answers is part of the work:
    // count what is still due (a counting the centre's counter is running holds
    // the aggregates' lock, so this waits for it), as the direct baseline did
    // inline.
    store.lock().unwrap().count_due().unwrap();
    let seconds = t.elapsed().as_secs_f64();
    ServerRun {
        clients,
        lat,
        refused,
        answered,
        seconds,
        backlog,
        bound: limits_bound,
    }
}

/// The bodies' events, a batch each.
fn parse_all(bodies: &[String]) -> Vec<Vec<scanwatch_event::Event>> {
    bodies
        .iter()
        .map(|b| {
            b.lines()
                .map(|l| WireEvent::parse_line(l).unwrap().to_event().unwrap())
                .collect()
        })
        .collect()
}

/// Batches between countings for the row "every 256 batches": about what one
/// transaction takes when the counting is behind (at most 256 blocks,
/// `events::GROUP_BLOCKS`; a batch is one block, or two when it crosses an
/// hour), as the server counts a backlog. A transaction writes again every page
/// its cells lie on, so fewer, larger ones write less (BENCHMARKS.md).
const BIG_COUNTING: usize = 256;

/// The batches committed to a fresh store with the counting deferred, counted as
/// the server does (once 20,000 events wait, after a commit, and the rest at the
/// end), or every `every` batches: the seconds of the commits and of the
/// counting, apart.
fn commit_then_count(
    parsed: &[Vec<scanwatch_event::Event>],
    every: Option<usize>,
) -> (f64, f64, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.add_sensor("s", Timestamp(0)).unwrap();
    store.defer_counting();
    let (mut c, mut k) = (0.0, 0.0);
    for (i, evs) in parsed.iter().enumerate() {
        let t = Instant::now();
        store
            .commit_batch("s", &format!("b{i}"), evs, Timestamp(0))
            .unwrap();
        c += t.elapsed().as_secs_f64();
        let t = Instant::now();
        match every {
            None => store.count_due().unwrap(),
            Some(n) if (i + 1) % n == 0 => store.aggregate_now().unwrap(),
            Some(_) => {}
        }
        k += t.elapsed().as_secs_f64();
    }
    let t = Instant::now();
    store.aggregate_now().unwrap();
    k += t.elapsed().as_secs_f64();
    (c, k, dir)
}

/// The rows the counting stored in the aggregates of the store in `dir` (a row
/// written again by a later counting is counted once), per kind of
/// row and per event counted (`events`: the batches' lines, as the rates count
/// them; the demo's events stand for one each): a row is the counting's unit of cost (an upsert
/// into a B-tree), so this says which rows the counting's time goes to.
fn rows_written(dir: &std::path::Path, events: usize) -> String {
    let conn =
        rusqlite::Connection::open(dir.join(scanwatch_store::sqlite::counts::COUNTS_FILE)).unwrap();
    let count =
        |sql: &str| -> f64 { conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as f64 };
    let per = |n: f64| n / events as f64;
    let cells = |span: i64, small: bool| {
        count(&format!(
            "SELECT COUNT(*) FROM port_cells WHERE span_ms = {span} AND (events < 8) = {small}"
        ))
    };
    let (hour_small, hour_busy) = (cells(3_600_000, true), cells(3_600_000, false));
    let (day_small, day_busy) = (cells(86_400_000, true), cells(86_400_000, false));
    // A source's ports of a day packed in one row (version 10), and the ports
    // past that row's bound in rows of their own.
    let packed = count("SELECT COUNT(*) FROM source_ports");
    let days_one = count("SELECT COUNT(*) FROM source_days WHERE events = 1");
    let days_more = count("SELECT COUNT(*) FROM source_days WHERE events > 1");
    let all = hour_small + hour_busy + day_small + day_busy + packed + days_one + days_more;
    format!(
        "rows the counting stored, per event: {:.3} in all; hour cells {:.3} with fewer than 8 events and {:.3} busier, \
         day cells {:.3} and {:.3}, source days {:.3} packed, and {:.3} of one event and {:.3} of more in rows of their own",
        per(all),
        per(hour_small),
        per(hour_busy),
        per(day_small),
        per(day_busy),
        per(packed),
        per(days_one),
        per(days_more),
    )
}

/// For profiling (`SCANWATCH_BENCH_ONLY=counting`): the counting alone, as the
/// split above times it, five times on fresh stores; the rate of each.
fn counting_alone(bodies: &[String]) {
    let parsed = parse_all(bodies);
    let n: usize = parsed.iter().map(Vec::len).sum();
    for _ in 0..5 {
        let (_, k, _) = commit_then_count(&parsed, None);
        println!("counting alone: {:.0} events/s", n as f64 / k);
        let (_, k, _) = commit_then_count(&parsed, Some(usize::MAX));
        println!(
            "counting alone, every batch at once: {:.0} events/s",
            n as f64 / k
        );
    }
}
