//! The SQLite store of event blocks, per-port cells and source days answers as an
//! exact count over the delivered events does (computed here, as the reference):
//! top ports, a source's activity and the events of a range, over random networks
//! delivered in random batches, for ranges aligned on days or hours or on nothing,
//! by each ranking and limit, while a counter of its own counts on another thread
//! (the server's), after retention cut through a day, after the aggregates' file
//! was lost, and after the migration that turns a version 5 store's rows into
//! blocks.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use proptest::prelude::*;
use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};
use scanwatch_store::prelude::*;
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{PortTotals, SourcePort, StoreError, TopBy};
use std::collections::{HashMap, HashSet};

mod old_versions;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// Day 20 of 1970: the network's first day.
const BASE: i64 = 20 * DAY;

fn ev(t: i64, src: u32, dst: u8, port: u16, count: u32, scan: bool) -> Event {
    Event {
        time: Timestamp(t),
        proto: if port % 7 == 0 {
            Protocol::Udp
        } else {
            Protocol::Tcp
        },
        src: std::net::IpAddr::V4(std::net::Ipv4Addr::from(0xC000_0000 | src)),
        dst: std::net::IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, dst)),
        src_port: Some(40000),
        dst_port: Some(port),
        flags: TcpFlags(if scan {
            TcpFlags::SYN
        } else {
            TcpFlags::SYN | TcpFlags::ACK
        }),
        flags_known: true,
        icmp_type: None,
        direction: Direction::Inbound,
        action: Action::Drop,
        count,
    }
}

type Delivered = [(String, Event)];

fn in_range(d: &Delivered, from: i64, to: i64) -> impl Iterator<Item = &(String, Event)> {
    d.iter()
        .filter(move |(_, e)| e.time.0 >= from && e.time.0 < to)
}

/// Top ports counted exactly over the delivered events.
fn reference(d: &Delivered, from: i64, to: i64, by: TopBy, limit: usize) -> Vec<PortTotals> {
    #[derive(Default)]
    struct Acc<'a> {
        events: u64,
        src: HashSet<std::net::IpAddr>,
        sensors: HashSet<&'a str>,
        dst: HashSet<std::net::IpAddr>,
    }
    let mut m: HashMap<(u8, u16), Acc> = HashMap::new();
    for (s, e) in in_range(d, from, to) {
        if let Some((p, port)) = e.scanned_port() {
            let a = m.entry((p.number(), port)).or_default();
            a.events += u64::from(e.count);
            a.src.insert(e.src);
            a.sensors.insert(s);
            a.dst.insert(e.dst);
        }
    }
    let mut v: Vec<PortTotals> = m
        .into_iter()
        .map(|((proto, port), a)| PortTotals {
            proto,
            port,
            events: a.events,
            sources: a.src.len() as u64,
            sensors: a.sensors.len() as u64,
            targets: a.dst.len() as u64,
        })
        .collect();
    let key = |t: &PortTotals| match by {
        TopBy::Events => t.events,
        TopBy::Sources => t.sources,
        TopBy::Sensors => t.sensors,
    };
    v.sort_by(|a, b| {
        key(b)
            .cmp(&key(a))
            .then(b.events.cmp(&a.events))
            .then((a.proto, a.port).cmp(&(b.proto, b.port)))
    });
    v.truncate(limit);
    v
}

/// A source's activity counted exactly over the delivered events.
fn source_reference(d: &Delivered, src: std::net::IpAddr, from: i64, to: i64) -> Vec<SourcePort> {
    /// Events, sensors, targets, first and last seen.
    type Acc<'a> = (u64, HashSet<&'a str>, HashSet<std::net::IpAddr>, i64, i64);
    let mut m: HashMap<(u8, u16), Acc> = HashMap::new();
    for (s, e) in in_range(d, from, to).filter(|(_, e)| e.src == src) {
        if let Some((p, port)) = e.scanned_port() {
            let a = m.entry((p.number(), port)).or_insert((
                0,
                HashSet::new(),
                HashSet::new(),
                i64::MAX,
                i64::MIN,
            ));
            a.0 += u64::from(e.count);
            a.1.insert(s);
            a.2.insert(e.dst);
            a.3 = a.3.min(e.time.0);
            a.4 = a.4.max(e.time.0);
        }
    }
    let mut v: Vec<SourcePort> = m
        .into_iter()
        .map(|((proto, port), a)| SourcePort {
            proto,
            port,
            events: a.0,
            sensors: a.1.len() as u64,
            targets: a.2.len() as u64,
            first_seen: Timestamp(a.3),
            last_seen: Timestamp(a.4),
        })
        .collect();
    v.sort_by(|a, b| {
        b.events
            .cmp(&a.events)
            .then((a.proto, a.port).cmp(&(b.proto, b.port)))
    });
    v
}

/// A network: a few busy ports with hundreds of sources, a long tail of ports
/// with one or two, replies that are not scans; three sensors.
fn network() -> impl Strategy<Value = Vec<(usize, Event)>> {
    let one = (
        0..3 * DAY,
        0usize..3,
        prop_oneof![
            3 => (0u32..400, prop::sample::select(vec![1025u16, 445, 23, 3389, 14])),
            2 => (0u32..60, 1u16..2000),
        ],
        0u8..40,
        1u32..4,
        prop::bool::weighted(0.95),
    )
        .prop_map(|(t, sensor, (src, port), dst, count, scan)| {
            (sensor, ev(BASE + t, src, dst, port, count, scan))
        });
    prop::collection::vec(one, 200..3000)
}

fn ranges(cuts: &[i64]) -> Vec<(i64, i64)> {
    let mut r = vec![
        (BASE, BASE + 3 * DAY),
        (BASE + DAY, BASE + 2 * DAY),
        (BASE + 5 * HOUR, BASE + 29 * HOUR),
        (BASE - HOUR, BASE + 4 * DAY),
        (BASE + 30 * HOUR + 17, BASE + 30 * HOUR + 1_000_000),
    ];
    for w in cuts.chunks(2) {
        if let [a, b] = w {
            r.push((BASE + a.min(b), BASE + a.max(b)));
        }
    }
    r
}

fn check(store: &SqliteStore, d: &Delivered, cuts: &[i64]) -> Result<(), TestCaseError> {
    let mut wide = ranges(cuts);
    wide.push((i64::MIN, i64::MAX));
    for &(from, to) in &wide {
        for by in [TopBy::Events, TopBy::Sources, TopBy::Sensors] {
            for limit in [1, 3, 10, 1000] {
                let got = store
                    .top_ports(Timestamp(from), Timestamp(to), by, limit)
                    .unwrap();
                prop_assert_eq!(
                    got,
                    reference(d, from, to, by, limit),
                    "[{}, {}) by {:?} limit {}",
                    from,
                    to,
                    by,
                    limit
                );
            }
        }
        // The busiest source and one from the long tail.
        for src in [0xC000_0000u32 | 7, 0xC000_0000 | 59] {
            let src = std::net::IpAddr::V4(std::net::Ipv4Addr::from(src));
            prop_assert_eq!(
                store
                    .source_activity(src, Timestamp(from), Timestamp(to))
                    .unwrap(),
                source_reference(d, src, from, to),
                "{} over [{}, {})",
                src,
                from,
                to
            );
        }
        let mut want: Vec<(String, Event)> = in_range(d, from, to).cloned().collect();
        want.sort_by_key(|(_, e)| e.time);
        prop_assert_eq!(
            store
                .events_between(Timestamp(from), Timestamp(to))
                .unwrap(),
            want
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    #[test]
    fn answers_equal_an_exact_count_of_the_delivered_events(
        events in network(),
        sizes in prop::collection::vec(1usize..400, 1..20),
        cuts in prop::collection::vec(-HOUR..3 * DAY + HOUR, 6),
        cut in 0..3 * DAY,
        counted_after in 0usize..20,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(dir.path()).unwrap();
        for n in ["a", "b", "c"] {
            s.add_sensor(n, Timestamp(0)).unwrap();
        }
        // As the server does: a counter on a connection of its own counts on
        // another thread while batches commit, queries read and retention cuts
        // (four blocks a transaction, so that a backlog is read ahead here).
        let mut counter = s.counter().unwrap();
        counter.set_group_blocks(4);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let counting = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    counter.count().unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            })
        };
        // Batches of assorted sizes, each sensor's in turn, in delivery order.
        let mut delivered: Vec<(String, Event)> = Vec::new();
        let mut at = 0;
        let mut batch = 0;
        while at < events.len() {
            let n = sizes[batch % sizes.len()].min(events.len() - at);
            let sensor = ["a", "b", "c"][batch % 3];
            let part: Vec<Event> = events[at..at + n].iter().map(|(_, e)| e.clone()).collect();
            s.commit_batch(sensor, &batch.to_string(), &part, Timestamp(0)).unwrap();
            delivered.extend(part.into_iter().map(|e| (sensor.to_string(), e)));
            at += n;
            batch += 1;
            // Some batches counted into the cells and source days, the later ones
            // waiting: every answer counts both.
            if batch == counted_after {
                s.aggregate_now().unwrap();
            }
        }
        check(&s, &delivered, &cuts)?;

        // Retention cuts through a day: what is left is counted as the events say.
        let (pruned, _) = s.prune(Timestamp(BASE + cut), Timestamp(0)).unwrap();
        let before = delivered.len();
        delivered.retain(|(_, e)| e.time.0 >= BASE + cut);
        prop_assert_eq!(pruned as usize, before - delivered.len());
        check(&s, &delivered, &cuts)?;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        counting.join().unwrap();

        // The aggregates' file lost: counted again from the blocks at open.
        drop(s);
        for f in ["counts.db", "counts.db-wal", "counts.db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
        let mut s = SqliteStore::open(dir.path()).unwrap();
        check(&s, &delivered, &cuts)?;
        s.aggregate_now().unwrap();
        check(&s, &delivered, &cuts)?;

        // A version 5 store (a row per event, no cells) is migrated: its rows become
        // blocks, with the cells and source days.
        let rows = s.events_between(Timestamp(i64::MIN), Timestamp(i64::MAX)).unwrap();
        let db = s.path().to_path_buf();
        drop(s);
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(old_versions::BACK_TO_V5_EVENTS).unwrap();
        old_versions::insert_v5_rows(&conn, &rows);
        conn.execute_batch("PRAGMA user_version = 5;").unwrap();
        drop(conn);
        let mut s = SqliteStore::open(dir.path()).unwrap();
        check(&s, &rows, &cuts)?;
        s.aggregate_now().unwrap();
        check(&s, &rows, &cuts)?;
    }
}

/// A store holding `n` events on tcp/1025, `step` ms apart, each of another
/// source and each of `count`.
fn one_source_per_event(n: u32, step: i64, count: u32) -> (tempfile::TempDir, SqliteStore) {
    let events: Vec<Event> = (0..n)
        .map(|i| {
            ev(
                BASE + i64::from(i) * step,
                i,
                (i % 200) as u8,
                1025,
                count,
                true,
            )
        })
        .collect();
    store_of(&events)
}

/// A store of sensor "a" holding `events`, in batches of 700.
fn store_of(events: &[Event]) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("a", Timestamp(0)).unwrap();
    for (k, part) in events.chunks(700).enumerate() {
        s.commit_batch("a", &k.to_string(), part, Timestamp(0))
            .unwrap();
    }
    (dir, s)
}
/// A port with more sources than a cell keeps exactly is counted by the sketch,
/// within its documented error (2 % is about 2.5 standard errors).
#[test]
fn many_sources_are_counted_within_the_sketch_error() {
    let n = 5_000u32;
    let (_dir, s) = one_source_per_event(n, 10_000, 1);
    let top = s
        .top_ports(
            Timestamp(BASE),
            Timestamp(BASE + 2 * DAY),
            TopBy::Sources,
            5,
        )
        .unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].events, u64::from(n), "events are exact");
    let err = (top[0].sources as f64 - f64::from(n)).abs() / f64::from(n);
    assert!(err < 0.02, "{} sources for {n}", top[0].sources);
    assert_eq!(top[0].targets, 200, "a small counter stays exact");
}

/// The first number of keys `0xC000_0000 + i`, one each, whose sketch reads more
/// than it holds.
fn overcounting_size() -> u32 {
    use scanwatch_aggregate::Distinct;
    (1_100..4_000u32)
        .step_by(50)
        .find(|&n| {
            let mut d = Distinct::default();
            for i in 0..n {
                d.add_hash(
                    u64::from(0xC000_0000 | i),
                    scanwatch_store::sqlite::CELL_EXACT_LIMIT,
                );
            }
            d.distinct() > u64::from(n)
        })
        .expect("some size overcounts")
}

/// A sketch's estimate can exceed what it counted (here by its error; by far when
/// a sender chose addresses to set its registers high, docs/security.md): the
/// store holds every distinct count to the events as stored, as an exact count
/// is, whatever their `count` (a line of count 1,000 still carries one source
/// and one target). A port's sources over a range and a source's targets.
#[test]
fn a_sketch_that_overcounts_is_held_to_the_lines() {
    let n = overcounting_size();
    for count in [1, 1_000] {
        let (_dir, mut s) = one_source_per_event(n, 1_000, count);
        s.aggregate_now().unwrap();
        // The whole range (cells only) and one that starts after the first event
        // (its first hour read raw).
        for (a, b, lines) in [(BASE, BASE + 2 * DAY, n), (BASE + 1, BASE + 2 * DAY, n - 1)] {
            let top = s
                .top_ports(Timestamp(a), Timestamp(b), TopBy::Sources, 5)
                .unwrap();
            assert_eq!(top[0].events, u64::from(lines) * u64::from(count));
            assert!(
                top[0].sources <= u64::from(lines),
                "{} sources in {lines} lines of count {count}",
                top[0].sources
            );
            if lines == n {
                // The sketch read more: the lines bound it.
                assert_eq!(top[0].sources, u64::from(n), "count {count}");
            }
        }
    }
    // One source to `n` targets, on one day: its own row of the day (busy).
    let src = std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9));
    let events: Vec<Event> = (0..n)
        .map(|i| Event {
            src,
            dst: std::net::IpAddr::V4(std::net::Ipv4Addr::from(0xC000_0000 | i)),
            ..ev(BASE + i64::from(i) * 10, 0, 0, 1025, 1_000, true)
        })
        .collect();
    let (_dir, mut s) = store_of(&events);
    for counted in [false, true] {
        if counted {
            s.aggregate_now().unwrap();
        }
        let page = s
            .source_activity(src, Timestamp(BASE), Timestamp(BASE + DAY))
            .unwrap();
        assert_eq!(page[0].events, u64::from(n) * 1_000);
        assert!(
            page[0].targets <= u64::from(n),
            "{} targets in {n} lines (counted: {counted})",
            page[0].targets
        );
    }
}

/// The attack on a cell's source sketch (docs/security.md), on the desk: a
/// sensor searches offline, for each of the sketch's 16,384 registers, the
/// address of a /10 whose key sets it highest, and sends each once, in lines of
/// count 65,535, on a port of 200 real sources (1,000 lines). The port's sources
/// over the day: at most the lines, before and after counting.
#[test]
fn addresses_chosen_for_the_sketch_read_no_more_sources_than_lines() {
    use scanwatch_aggregate::HLL_LG_K;
    // The register and value a key sets: the crate keeps its coupon's fields
    // private; its `Debug` shows the packed number (value above 26 bits of
    // slot), which is what an attacker computes. (An IPv4 address is its own
    // key in a cell's counter.)
    let register = |key: u64| -> (usize, u32) {
        let c = datasketches::hll::Coupon::from_value(key);
        let packed: u32 = format!("{c:?}")
            .trim_start_matches("Coupon(")
            .trim_end_matches(')')
            .parse()
            .expect("a coupon prints as Coupon(n)");
        (
            ((packed & ((1 << 26) - 1)) % (1 << HLL_LG_K)) as usize,
            packed >> 26,
        )
    };
    let mut best = vec![(0u32, 0u32); 1 << HLL_LG_K];
    for i in 0u32..(1 << 22) {
        let ip = 0x6440_0000 | i;
        let (slot, value) = register(u64::from(ip));
        if value > best[slot].0 {
            best[slot] = (value, ip);
        }
    }
    let chosen: Vec<u32> = best
        .iter()
        .filter(|(v, _)| *v > 0)
        .map(|(_, ip)| *ip)
        .collect();
    let mut sketch = scanwatch_aggregate::Distinct::default();
    for ip in &chosen {
        sketch.add_hash(u64::from(*ip), scanwatch_store::sqlite::CELL_EXACT_LIMIT);
    }
    assert!(sketch.distinct() > 1_000_000, "{}", sketch.distinct());
    let real = 200u32;
    let mut events: Vec<Event> = (0..real * 5)
        .map(|i| ev(BASE + i64::from(i) * 60_000, i % real, 1, 1025, 1, true))
        .collect();
    events.extend(chosen.iter().enumerate().map(|(k, ip)| Event {
        src: std::net::IpAddr::V4(std::net::Ipv4Addr::from(*ip)),
        ..ev(BASE + k as i64 * 5_000, 0, 2, 1025, 65_535, true)
    }));
    events.sort_by_key(|e| e.time);
    let (_dir, mut s) = store_of(&events);
    // Lines (events as stored): what the count is held to.
    let lines = events.len() as u64;
    for counted in [false, true] {
        if counted {
            s.aggregate_now().unwrap();
        }
        let top = s
            .top_ports(Timestamp(BASE), Timestamp(BASE + DAY), TopBy::Sources, 1)
            .unwrap();
        println!(
            "{} sources read for {real} real and {} chosen (counted: {counted})",
            top[0].sources,
            chosen.len()
        );
        // The sketch read far more (the attack took); the lines bound it.
        assert_eq!(top[0].sources, lines);
    }
}

/// Commits `events` from sensor "a" in batches of 1,000, then counts them.
fn deliver(s: &mut SqliteStore, delivered: &mut Vec<(String, Event)>, events: Vec<Event>) {
    for part in events.chunks(1_000) {
        let id = format!("b{}", delivered.len());
        s.commit_batch("a", &id, part, Timestamp(0)).unwrap();
        delivered.extend(part.iter().map(|e| ("a".to_string(), e.clone())));
    }
    s.aggregate_now().unwrap();
}

/// 12,000 events 20 s apart (2.8 days) from 40 sources to 300 ports, `k` ms
/// after the network's start.
fn round(k: i64) -> Vec<Event> {
    (0..12_000u32)
        .map(|n| {
            let port = 1 + (n * 7 % 300) as u16;
            ev(
                BASE + i64::from(n) * 20_000 + k,
                n % 40,
                (n % 9) as u8,
                port,
                1,
                true,
            )
        })
        .collect()
}

/// The schema version in the store's file of `dir`.
fn version(dir: &std::path::Path) -> u32 {
    rusqlite::Connection::open(dir.join("scanwatch.db"))
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// A store of version 10 with the first round of traffic counted into it.
fn counted_round() -> (tempfile::TempDir, SqliteStore, Vec<(String, Event)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("a", Timestamp(0)).unwrap();
    let mut delivered: Vec<(String, Event)> = Vec::new();
    deliver(&mut s, &mut delivered, round(0));
    (dir, s, delivered)
}

/// Puts the store's file in `dir` back to version 9, opens it (as version 10
/// again) and checks every answer against the delivered events, before and after
/// a counting.
fn undone_then_done_again(dir: &std::path::Path, delivered: &[(String, Event)]) {
    rusqlite::Connection::open(dir.join("scanwatch.db"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 9")
        .unwrap();
    let mut s = SqliteStore::open(dir).unwrap();
    assert_eq!(version(dir), scanwatch_store::SCHEMA_VERSION);
    check(&s, delivered, &[]).unwrap();
    s.aggregate_now().unwrap();
    check(&s, delivered, &[]).unwrap();
}

/// An upgrade undone: the store's file put back to version 9 while `counts.db`
/// keeps packed rows of version 10, and a build of version 9 starts its
/// aggregates afresh (it clears what it knows: the cells and the rows of their
/// own). Opened by version 10 again, the packed rows are not counted twice.
#[test]
fn an_upgrade_undone_then_done_again_counts_each_event_once() {
    let (dir, s, delivered) = counted_round();
    drop(s);
    let counts = rusqlite::Connection::open(dir.path().join("counts.db")).unwrap();
    counts
        .execute_batch(
            "DELETE FROM port_cells; DELETE FROM source_days; UPDATE counted SET block_id = 0;",
        )
        .unwrap();
    let packed: i64 = counts
        .query_row("SELECT COUNT(*) FROM source_ports", [], |r| r.get(0))
        .unwrap();
    assert!(packed > 0, "packed rows left behind");
    drop(counts);
    undone_then_done_again(dir.path(), &delivered);
}

/// As above, but the build of version 9 did not start afresh (no event came after
/// the upgrade, so its watermark was not ahead): it counted on, into rows of their
/// own, beside the packed rows of version 10. Opened by version 10 again, every
/// event is counted once.
#[test]
fn an_upgrade_undone_that_counted_on_is_counted_once() {
    let (dir, mut s, mut delivered) = counted_round();
    // Version 9's counting: every port in a row of its own.
    s.set_pack_ports(0);
    deliver(&mut s, &mut delivered, round(1));
    drop(s);
    undone_then_done_again(dir.path(), &delivered);
}

/// Damages the stored aggregates of the first round (`sql` on `counts.db`,
/// which must change rows).
fn damage(dir: &std::path::Path, sql: &str) {
    let counts = rusqlite::Connection::open(dir.join("counts.db")).unwrap();
    assert!(counts.execute(sql, []).unwrap() > 0, "{sql}");
}

fn recount_asked(dir: &std::path::Path) -> bool {
    dir.join(scanwatch_store::sqlite::counts::RECOUNT_FILE)
        .exists()
}

/// A damaged aggregate inside a sound `counts.db` (a packed source day, or a
/// cell's counter that the next counting's upsert merges into) met by the
/// counting: it counts the aggregates again from the blocks instead of failing,
/// and every answer is the exact count's.
#[test]
fn a_damaged_aggregate_met_by_the_counting_is_counted_again() {
    for sql in [
        "UPDATE source_ports SET ports = x'07'",
        "UPDATE port_cells SET src = x'ff00ff'",
    ] {
        let (dir, mut s, mut delivered) = counted_round();
        damage(dir.path(), sql);
        deliver(&mut s, &mut delivered, round(1));
        assert!(!recount_asked(dir.path()), "{sql}");
        check(&s, &delivered, &[]).unwrap();
        // The aggregates were counted again: nothing waits.
        assert_eq!(s.uncounted().unwrap(), 0, "{sql}");
    }
}

/// A damaged aggregate met by a query (a cell, or a source day, no counting
/// touches again): the query fails with a typed error and leaves the ask for a
/// recount, which the next counting (here the server's, on a connection of its
/// own) carries out; then every answer is the exact count's.
#[test]
fn a_damaged_aggregate_met_by_a_query_is_counted_again_by_the_next_counting() {
    let src: std::net::IpAddr = std::net::Ipv4Addr::from(0xC000_0000u32 | 7).into();
    type Query<'a> = &'a dyn Fn(&SqliteStore) -> Result<(), StoreError>;
    let cases: [(&str, Query); 2] = [
        ("UPDATE port_cells SET dst = x'ff00ff'", &|s| {
            s.top_ports(Timestamp(i64::MIN), Timestamp(i64::MAX), TopBy::Events, 10)
                .map(drop)
        }),
        ("UPDATE source_ports SET ports = x'07'", &|s| {
            s.source_activity(src, Timestamp(i64::MIN), Timestamp(i64::MAX))
                .map(drop)
        }),
    ];
    for (sql, query) in cases {
        let (dir, s, delivered) = counted_round();
        damage(dir.path(), sql);
        let err = query(&s).unwrap_err();
        assert!(
            matches!(err, StoreError::DamagedAggregate(_)),
            "{sql}: {err}"
        );
        assert!(recount_asked(dir.path()), "{sql}");
        // Nothing waits, yet the ask makes the counting start again.
        let mut counter = s.counter().unwrap();
        counter.count_due().unwrap();
        assert!(!recount_asked(dir.path()), "{sql}");
        query(&s).unwrap();
        check(&s, &delivered, &[]).unwrap();
    }
}

/// One number `sql` reads from `dir`'s `counts.db`.
fn counts_value(dir: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(dir.join("counts.db"))
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// The aggregates' watermark in `dir`'s `counts.db`.
fn watermark(dir: &std::path::Path) -> i64 {
    counts_value(dir, "SELECT block_id FROM counted")
}

/// A damaged aggregate that comes back while the aggregates are counted again
/// (here a trigger spoils every cell written, as a failing disk might): the
/// counting fails with the way out instead of emptying them again at every
/// counting, and taking it (removing `counts.db`) gives exact answers.
#[test]
fn a_damage_that_comes_back_during_the_recount_fails_with_the_way_out() {
    let (dir, mut s, mut delivered) = counted_round();
    for k in 1..4 {
        deliver(&mut s, &mut delivered, round(k));
    }
    let blocks: i64 = rusqlite::Connection::open(dir.path().join("scanwatch.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM event_blocks", [], |r| r.get(0))
        .unwrap();
    assert!(
        blocks > 256,
        "{blocks} blocks: a recount must take two transactions"
    );
    damage(dir.path(), "UPDATE port_cells SET src = x'ff00ff'");
    rusqlite::Connection::open(dir.path().join("counts.db"))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER spoil AFTER INSERT ON port_cells BEGIN
                 UPDATE port_cells SET src = x'ff00ff'
                 WHERE span_ms = NEW.span_ms AND start_ms = NEW.start_ms
                   AND proto = NEW.proto AND port = NEW.port;
             END;",
        )
        .unwrap();
    for part in round(4).chunks(1_000) {
        let id = format!("b{}", delivered.len());
        s.commit_batch("a", &id, part, Timestamp(0)).unwrap();
        delivered.extend(part.iter().map(|e| ("a".to_string(), e.clone())));
    }
    // Met, counted again from the first block, met again in the recount's
    // second transaction: the error with the way out.
    let err = s.aggregate_now().unwrap_err();
    assert!(matches!(err, StoreError::DamageRecurs(_)), "{err}");
    assert!(err.to_string().contains("remove counts.db"), "{err}");
    let mark = watermark(dir.path());
    assert!(mark > 0, "the recount's first transaction is counted");
    // The next counting fails as well, without emptying the aggregates again
    // (a row of a span no counting writes would go with them).
    let counts = rusqlite::Connection::open(dir.path().join("counts.db")).unwrap();
    let sentinel = "SELECT COUNT(*) FROM port_cells WHERE span_ms = 1";
    counts
        .execute_batch(
            "INSERT INTO port_cells VALUES (1, 0, 6, 1, 1, 1, 1, 1, x'00', x'00', x'00')",
        )
        .unwrap();
    let err = s.aggregate_now().unwrap_err();
    assert!(err.to_string().contains("remove counts.db"), "{err}");
    assert_eq!(watermark(dir.path()), mark);
    let kept: i64 = counts.query_row(sentinel, [], |r| r.get(0)).unwrap();
    assert_eq!(kept, 1, "the aggregates were emptied again");
    // So does a restarted centre's: the guard is kept in counts.db. The store
    // opens all the same (its counting at open fails and is logged).
    drop(s);
    let mut s = SqliteStore::open(dir.path()).unwrap();
    let err = s.aggregate_now().unwrap_err();
    assert!(err.to_string().contains("remove counts.db"), "{err}");
    assert_eq!(watermark(dir.path()), mark);
    let kept: i64 = counts.query_row(sentinel, [], |r| r.get(0)).unwrap();
    assert_eq!(kept, 1, "a restart emptied the aggregates again");
    // A query that meets a cell the recount wrote (spoiled again) answers that
    // the damage came back (not that a recount will mend it), and asks in the
    // recount's epoch: the counting that takes the ask fails with the way out.
    let err = s
        .top_ports(Timestamp(i64::MIN), Timestamp(i64::MAX), TopBy::Sources, 10)
        .unwrap_err();
    assert!(matches!(err, StoreError::DamageRecurs(_)), "{err}");
    assert!(recount_asked(dir.path()));
    let err = s.aggregate_now().unwrap_err();
    assert!(
        err.to_string().contains(": a query met") && err.to_string().contains("remove counts.db"),
        "{err}"
    );
    assert!(!recount_asked(dir.path()));
    let kept: i64 = counts.query_row(sentinel, [], |r| r.get(0)).unwrap();
    assert_eq!(kept, 1, "the query's ask emptied the aggregates again");
    drop(counts);
    drop(s);
    for f in ["counts.db", "counts.db-wal", "counts.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    check(&s, &delivered, &[]).unwrap();
}

/// An ask left by a query whose snapshot predates the last recount (it met a row
/// that recount emptied) is not taken: nothing is counted again. An ask that does
/// not say its epoch (a build before them) is taken as a current one.
#[test]
fn an_ask_from_before_the_last_recount_is_not_taken() {
    let (dir, s, delivered) = counted_round();
    damage(dir.path(), "UPDATE port_cells SET dst = x'ff00ff'");
    let all =
        |s: &SqliteStore| s.top_ports(Timestamp(i64::MIN), Timestamp(i64::MAX), TopBy::Events, 10);
    assert!(all(&s).is_err());
    let ask = dir
        .path()
        .join(scanwatch_store::sqlite::counts::RECOUNT_FILE);
    let stale = std::fs::read(&ask).unwrap();
    let mut counter = s.counter().unwrap();
    counter.count_due().unwrap();
    all(&s).unwrap();
    // The same ask again, as a query that read the damaged row in its snapshot
    // from before that recount leaves it after the recount is done.
    let counts = rusqlite::Connection::open(dir.path().join("counts.db")).unwrap();
    counts
        .execute_batch(
            "INSERT INTO port_cells VALUES (1, 0, 6, 1, 1, 1, 1, 1, x'00', x'00', x'00')",
        )
        .unwrap();
    let sentinel = "SELECT COUNT(*) FROM port_cells WHERE span_ms = 1";
    for (said, kept) in [(stale, 1), (Vec::new(), 0)] {
        std::fs::write(&ask, &said).unwrap();
        counter.count_due().unwrap();
        assert!(!ask.exists());
        let n: i64 = counts.query_row(sentinel, [], |r| r.get(0)).unwrap();
        assert_eq!(n, kept, "ask {:?}", String::from_utf8_lossy(&said));
        check(&s, &delivered, &[]).unwrap();
    }
}

/// A store with `batches` batches of `per_batch` events from sensor "a" waiting
/// to be counted, each batch's events within an hour (a block each).
fn backlog(batches: u32, per_batch: u32) -> (tempfile::TempDir, SqliteStore, Vec<(String, Event)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("a", Timestamp(0)).unwrap();
    s.defer_counting();
    let mut delivered: Vec<(String, Event)> = Vec::new();
    for b in 0..batches {
        let part: Vec<Event> = (0..per_batch)
            .map(|n| {
                let k = b * per_batch + n;
                ev(
                    BASE + i64::from(b / 64) * HOUR + i64::from(n),
                    k % 97,
                    (k % 11) as u8,
                    1 + (k * 13 % 400) as u16,
                    1,
                    true,
                )
            })
            .collect();
        s.commit_batch("a", &format!("b{b}"), &part, Timestamp(0))
            .unwrap();
        delivered.extend(part.into_iter().map(|e| ("a".to_string(), e)));
    }
    assert_eq!(s.uncounted().unwrap(), u64::from(batches * per_batch));
    (dir, s, delivered)
}

/// A backlog of many transactions' worth of blocks (each counting reads the next
/// blocks on a thread of its own while it writes the ones before) counted by
/// three counters at once: each transaction checks the watermark its blocks
/// follow, so every event is counted once, and every answer is the exact count's.
#[test]
fn three_counters_at_once_count_a_long_backlog_once() {
    let (_dir, s, delivered) = backlog(1_500, 8);
    let start = std::sync::Arc::new(std::sync::Barrier::new(3));
    let counting: Vec<_> = (0..3)
        .map(|_| {
            let mut counter = s.counter().unwrap();
            counter.set_group_blocks(64);
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                counter.count().unwrap();
                counter.groups_read_ahead()
            })
        })
        .collect();
    let read_ahead: u64 = counting.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(read_ahead > 0, "no group was read ahead");
    assert_eq!(s.uncounted().unwrap(), 0);
    check(&s, &delivered, &[BASE, BASE + 5 * HOUR, BASE + DAY]).unwrap();
}

/// A group of blocks is cut by its events too, not only by its blocks: a block
/// holds a whole batch (up to 100,000 events by default), and 256 of them counted
/// in memory at once (two groups when read ahead) would not fit. Twelve blocks
/// of 2,000 events, groups of at most 5,000 events past their first block: four
/// groups (three read ahead) where the blocks alone would make one.
#[test]
fn a_group_of_large_blocks_is_cut_by_its_events() {
    let (_dir, s, delivered) = backlog(12, 2_000);
    let mut counter = s.counter().unwrap();
    counter.set_group_lines(5_000);
    counter.count().unwrap();
    assert_eq!(
        counter.groups_read_ahead(),
        3,
        "groups of three blocks, the three after the first read ahead"
    );
    assert_eq!(s.uncounted().unwrap(), 0);
    check(&s, &delivered, &[BASE, BASE + HOUR]).unwrap();
}

/// A block that does not decode in a group the counting read ahead (the second of
/// a backlog of three groups) is set aside when its group is written, and the
/// others count as the events say.
#[test]
fn a_damaged_block_read_ahead_is_set_aside() {
    let (dir, s, mut delivered) = backlog(700, 4);
    let store = rusqlite::Connection::open(dir.path().join("scanwatch.db")).unwrap();
    let (id, lo, hi): (i64, i64, i64) = store
        .query_row(
            "SELECT id, min_time_ms, max_time_ms FROM event_blocks ORDER BY id LIMIT 1 OFFSET 300",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    store
        .execute("UPDATE event_blocks SET data = x'00' WHERE id = ?1", [id])
        .unwrap();
    // The damaged block is the 301st batch's.
    assert!(delivered[1_200..1_204]
        .iter()
        .all(|(_, e)| e.time.0 >= lo && e.time.0 <= hi));
    delivered.drain(1_200..1_204);
    let mut counter = s.counter().unwrap();
    counter.set_group_blocks(64);
    counter.count().unwrap();
    assert!(
        counter.groups_read_ahead() >= 4,
        "the damaged block's group was read ahead"
    );
    assert_eq!(s.damaged_blocks().unwrap(), 1);
    assert_eq!(s.uncounted().unwrap(), 0);
    check(&s, &delivered, &[BASE, BASE + 3 * HOUR]).unwrap();
}

/// An aggregates' file of a build before the recounts' row (and its trigger) is
/// given them when the store opens, and is queried and counted as before; a
/// watermark such a build moves back moves the epoch on.
#[test]
fn an_aggregates_file_without_the_recounts_row_gets_it() {
    let (dir, mut s, mut delivered) = counted_round();
    drop(s);
    let counts = rusqlite::Connection::open(dir.path().join("counts.db")).unwrap();
    counts
        .execute_batch("DROP TRIGGER recounts_on_reset; DROP TABLE recounts;")
        .unwrap();
    drop(counts);
    s = SqliteStore::open(dir.path()).unwrap();
    check(&s, &delivered, &[]).unwrap();
    deliver(&mut s, &mut delivered, round(1));
    check(&s, &delivered, &[]).unwrap();
    let counts = rusqlite::Connection::open(dir.path().join("counts.db")).unwrap();
    let epoch = |c: &rusqlite::Connection| -> i64 {
        c.query_row("SELECT epoch FROM recounts", [], |r| r.get(0))
            .unwrap()
    };
    let before = epoch(&counts);
    counts
        .execute("UPDATE counted SET block_id = 0", [])
        .unwrap();
    assert_eq!(epoch(&counts), before + 1);
}

/// An ask for a recount that cannot be taken (a directory in its place) fails
/// every counting before anything is emptied.
#[test]
fn an_ask_that_cannot_be_taken_empties_nothing() {
    let (dir, mut s, delivered) = counted_round();
    let before = watermark(dir.path());
    assert!(before > 0);
    std::fs::create_dir(
        dir.path()
            .join(scanwatch_store::sqlite::counts::RECOUNT_FILE),
    )
    .unwrap();
    // Every counting fails on it (it is put back), until it is mended.
    for _ in 0..2 {
        let err = s.aggregate_now().unwrap_err();
        assert!(matches!(err, StoreError::DataDir { .. }), "{err}");
        assert_eq!(watermark(dir.path()), before);
        assert!(recount_asked(dir.path()));
    }
    check(&s, &delivered, &[]).unwrap();
}

/// A store counted by version 9 (every port of a source's day in a row of its
/// own) opens as version 10 and counts on into packed rows: a port counted in
/// both shapes adds up, and every answer is the exact count's. Then a sweep past
/// the bound of a packed row: the ports that do not fit are counted in rows of
/// their own, and answered the same.
#[test]
fn a_version_9_store_counts_on_into_packed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.set_pack_ports(0);
    s.add_sensor("a", Timestamp(0)).unwrap();
    // Two rounds of the same traffic, the second 1 ms later.
    let mut delivered: Vec<(String, Event)> = Vec::new();
    deliver(&mut s, &mut delivered, round(0));
    drop(s);
    // Back to version 9: no table of packed rows, and the store's file says 9.
    let counts = rusqlite::Connection::open(dir.path().join("counts.db")).unwrap();
    let rows = |c: &rusqlite::Connection, t: &str| -> i64 {
        c.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(rows(&counts, "source_ports"), 0, "counted as version 9");
    let own = rows(&counts, "source_days");
    assert!(own > 1_000, "{own} rows of their own");
    counts.execute_batch("DROP TABLE source_ports").unwrap();
    drop(counts);
    back_to_before_records(dir.path(), 9);

    let mut s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(version(dir.path()), scanwatch_store::SCHEMA_VERSION);
    check(&s, &delivered, &[]).unwrap();
    deliver(&mut s, &mut delivered, round(1));
    let counts = rusqlite::Connection::open(dir.path().join("counts.db")).unwrap();
    assert!(
        rows(&counts, "source_ports") > 0,
        "counted on into packed rows"
    );
    assert_eq!(
        rows(&counts, "source_days"),
        own,
        "the old rows as they were"
    );
    check(&s, &delivered, &[]).unwrap();

    // One source sweeps 1,000 ports in an hour: 128 in its packed row, the rest
    // in rows of their own.
    let sweep: Vec<Event> = (0..1_000u16)
        .map(|p| {
            ev(
                BASE + 2 * DAY + i64::from(p) * 1_000,
                59,
                1,
                2_000 + p,
                1,
                true,
            )
        })
        .collect();
    deliver(&mut s, &mut delivered, sweep);
    let now = rows(&counts, "source_days");
    assert_eq!(
        now - own,
        1_000 - scanwatch_store::sqlite::PACK_PORTS as i64,
        "the ports past the bound"
    );
    check(&s, &delivered, &[]).unwrap();
}

/// Makes the aggregates in `dir` as a build before version 11 left them (no
/// records beside the cells and the source days, the file not marked) and sets
/// the store's file to `version`.
fn back_to_before_records(dir: &std::path::Path, version: u32) {
    rusqlite::Connection::open(dir.join("counts.db"))
        .unwrap()
        .execute_batch(
            "ALTER TABLE port_cells DROP COLUMN records;
             ALTER TABLE source_days DROP COLUMN records;
             PRAGMA user_version = 0;",
        )
        .unwrap();
    rusqlite::Connection::open(dir.join("scanwatch.db"))
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {version}"))
        .unwrap();
}

/// (cells without records, cells with them, source days without, with) in
/// `counts.db` of `dir`.
fn records_kept(dir: &std::path::Path) -> [i64; 4] {
    let n = |sql: &str| counts_value(dir, sql);
    [
        n("SELECT COUNT(*) FROM port_cells WHERE records IS NULL"),
        n("SELECT COUNT(*) FROM port_cells WHERE records IS NOT NULL"),
        n("SELECT COUNT(*) FROM source_days WHERE records IS NULL"),
        n("SELECT COUNT(*) FROM source_days WHERE records IS NOT NULL"),
    ]
}

/// The aggregates' epoch in `dir` (moved on by every counting again).
fn epoch(dir: &std::path::Path) -> i64 {
    counts_value(dir, "SELECT epoch FROM recounts")
}

/// A store counted by version 10 (no records beside its cells and source days)
/// opens as version 11 without counting anything again: its rows have no
/// records (their events stand in) until a counting adds to them (then they
/// hold their events and the lines since), a later counting's new rows have
/// them, and every answer is the exact count's, also over cells of both kinds.
#[test]
fn a_version_10_store_counts_on_with_records() {
    let (dir, mut s, mut delivered) = counted_round();
    // A sweep, so that a source's day has a row of its own.
    let sweep = |day: i64| -> Vec<Event> {
        (0..300u16)
            .map(|p| {
                ev(
                    BASE + day * DAY + i64::from(p) * 1_000,
                    59,
                    1,
                    2_000 + p,
                    1,
                    true,
                )
            })
            .collect()
    };
    deliver(&mut s, &mut delivered, sweep(0));
    drop(s);
    back_to_before_records(dir.path(), 10);
    let before = epoch(dir.path());
    let mut s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(version(dir.path()), scanwatch_store::SCHEMA_VERSION);
    assert_eq!(epoch(dir.path()), before, "nothing counted again");
    let [a, b, c, d] = records_kept(dir.path());
    assert!(a > 0 && b == 0 && c > 0 && d == 0, "{:?}", [a, b, c, d]);
    check(&s, &delivered, &[]).unwrap();
    // Counted into by this build: marked (an earlier build's counting is then
    // undone at the next open, above).
    let marked = counts_value(dir.path(), "PRAGMA user_version");
    assert_eq!(marked, i64::from(scanwatch_store::SCHEMA_VERSION));
    // The same traffic 1 ms later (into the cells without records), then days
    // later (new cells).
    deliver(&mut s, &mut delivered, round(1));
    let [a1, b1, c1, d1] = records_kept(dir.path());
    assert!(a1 < a && b1 > 0 && a1 + b1 == a, "{:?}", [a1, b1]);
    assert_eq!(c1, c, "the sweep's day not counted into ({d1} new rows)");
    check(&s, &delivered, &[]).unwrap();
    deliver(&mut s, &mut delivered, round(4 * DAY));
    deliver(&mut s, &mut delivered, sweep(4));
    let [a2, b2, c2, d2] = records_kept(dir.path());
    assert!(
        a2 == a1 && b2 > b1 && c2 == c1 && d2 > 0,
        "{:?}",
        [a2, b2, c2, d2]
    );
    check(&s, &delivered, &[]).unwrap();
}

/// An upgrade to version 11 undone: the store's file put back to version 10
/// while `counts.db` keeps records, which a build of version 10 would leave as
/// they were while it counted events into their cells (a bound too low).
/// Opened by version 11 again, the aggregates are counted again.
#[test]
fn an_upgrade_to_version_11_undone_is_counted_again() {
    let (dir, s, delivered) = counted_round();
    drop(s);
    let before = epoch(dir.path());
    rusqlite::Connection::open(dir.path().join("scanwatch.db"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 10")
        .unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(version(dir.path()), scanwatch_store::SCHEMA_VERSION);
    assert!(epoch(dir.path()) > before, "counted again");
    check(&s, &delivered, &[]).unwrap();
    s.aggregate_now().unwrap();
    let [a, b, c, _] = records_kept(dir.path());
    assert!(a == 0 && b > 0 && c == 0, "{:?}", [a, b, c]);
    check(&s, &delivered, &[]).unwrap();
    // Each scanned line counted once in its hour and once in its day.
    let lines = delivered
        .iter()
        .filter(|(_, e)| e.scanned_port().is_some())
        .count() as i64;
    let counts = rusqlite::Connection::open(dir.path().join("counts.db")).unwrap();
    for span in [HOUR, DAY] {
        let sum: i64 = counts
            .query_row(
                "SELECT SUM(records) FROM port_cells WHERE span_ms = ?1",
                [span],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(sum, lines, "span {span}");
    }
}
