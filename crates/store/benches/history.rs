//! A port's history with short windows, and what a port-first index would cost the
//! closes. The windows are keyed by time first (schema version 8): a close writes
//! its rows together, and `port_history` walks the range's distinct window starts
//! (two seeks each). The alternative, an index by (protocol, port, start), reads a
//! port's history as one range but makes every close write a page per port. A week
//! of 60 s windows, 200 ports of which a third are seen in every window and the
//! rest in one window of seven, stored twice in the same run, with and without
//! that index; each figure beside the other.
//!
//! `cargo bench -p scanwatch-store --bench history`

use std::path::Path;
use std::time::Instant;

use scanwatch_event::Timestamp;
use scanwatch_store::prelude::*;
use scanwatch_store::sqlite::{SqliteStore, DB_FILE, PORT_HISTORY_SQL as WALK};
use scanwatch_store::WindowRow;

const WINDOW_MS: i64 = 60_000;
const STARTS: i64 = 7 * 24 * 60;
const PORTS: u16 = 200;

/// A port's history by the index: one range.
const RANGE: &str = "SELECT window_start_ms, window_end_ms, proto, port, events, sources, sensors, targets, top_sources
     FROM windows WHERE proto = ?1 AND port = ?2 AND window_start_ms >= ?3 AND window_start_ms < ?4
     ORDER BY window_start_ms";

fn best(reps: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut t = f64::MAX;
    let mut n = 0;
    for _ in 0..reps {
        let s = Instant::now();
        n = f();
        t = t.min(s.elapsed().as_secs_f64());
    }
    (t, n)
}

/// Stores the week; returns the seconds it took.
fn fill(s: &mut SqliteStore) -> f64 {
    let t = Instant::now();
    for i in 0..STARTS {
        let rows: Vec<WindowRow> = (0..PORTS)
            .filter(|p| p % 3 == 0 || i % 7 == 0)
            .map(|p| WindowRow {
                window_start: Timestamp(i * WINDOW_MS),
                window_end: Timestamp((i + 1) * WINDOW_MS),
                proto: 6,
                port: 1000 + p,
                events: 5,
                sources: 2,
                sensors: 1,
                targets: 1,
                top_sources_json: "[]".into(),
            })
            .collect();
        s.put_windows(&rows).expect("put windows");
    }
    t.elapsed().as_secs_f64()
}

fn with_index(dir: &Path) {
    rusqlite::Connection::open(dir.join(DB_FILE))
        .expect("open")
        .execute_batch(
            "CREATE INDEX bench_windows_by_port ON windows (proto, port, window_start_ms)",
        )
        .expect("create the index");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let kept = tempfile::tempdir().expect("temp dir");
    let indexed = tempfile::tempdir().expect("temp dir");
    drop(SqliteStore::open(indexed.path()).expect("store"));
    with_index(indexed.path());
    // Alternately, best of three: the machine is shared.
    let (mut put_kept, mut put_indexed) = (f64::MAX, f64::MAX);
    for round in 0..3 {
        for (dir, put) in [(&kept, &mut put_kept), (&indexed, &mut put_indexed)] {
            if round > 0 {
                let mut s = SqliteStore::open(dir.path()).expect("store");
                s.prune(Timestamp(0), Timestamp(i64::MAX))
                    .expect("empty it");
            }
            let mut s = SqliteStore::open(dir.path()).expect("store");
            *put = put.min(fill(&mut s));
        }
    }
    // Both read through a plain connection with the store's page cache, every
    // column of every row read, so only the plan differs (`port_history` runs the
    // walk; its answer is checked against it below).
    let open = |dir: &Path| {
        let c = rusqlite::Connection::open(dir.join(DB_FILE)).expect("open");
        c.pragma_update(None, "cache_size", -65_536).expect("cache");
        c
    };
    let (walker, ranger) = (open(kept.path()), open(indexed.path()));
    let read = |c: &rusqlite::Connection, sql: &str, port: u16| -> usize {
        let mut st = c.prepare_cached(sql).expect("prepare");
        let rows = st
            .query_map(rusqlite::params![6, port, 0, i64::MAX], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, u8>(2)?,
                    r.get::<_, u16>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, String>(8)?,
                ))
            })
            .expect("query");
        let mut n = 0;
        for r in rows {
            std::hint::black_box(r.expect("row"));
            n += 1;
        }
        n
    };
    let store = SqliteStore::open(kept.path()).expect("store");
    println!("input: {STARTS} windows of 60 s (a week), {PORTS} ports");
    println!(
        "{:<44} {:>8} {:>10} {:>10} {:>8}",
        "figure", "rows", "kept ms", "index ms", "kept/index"
    );
    println!(
        "{:<44} {:>8} {:>10.0} {:>10.0} {:>7.2}x",
        "storing the week's closes",
        "",
        put_kept * 1e3,
        put_indexed * 1e3,
        put_kept / put_indexed
    );
    for (name, port) in [
        ("history of a port seen in every window", 1003),
        ("history of a port seen in one of seven", 1001),
    ] {
        let answer = store
            .port_history(6, port, Timestamp(0), Timestamp(i64::MAX))
            .expect("history")
            .len();
        let (walked, n) = best(5, || read(&walker, WALK, port));
        let (ranged, m) = best(5, || read(&ranger, RANGE, port));
        assert_eq!((n, m), (answer, answer), "the same windows");
        println!(
            "{name:<44} {n:>8} {:>10.1} {:>10.1} {:>7.1}x",
            walked * 1e3,
            ranged * 1e3,
            walked / ranged
        );
    }
}
