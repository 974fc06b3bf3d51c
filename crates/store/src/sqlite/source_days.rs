//! The sources' days in the aggregates' file (`counts.db`): what a source did on
//! each port over a day, for its page (`/sources/{ip}`).
//!
//! Since version 10 a source's ports of a day are kept together, up to
//! [`PACK_PORTS`] of them in one row of `source_ports`
//! (`scanwatch_aggregate::source_day` has the bytes). A row per (day, source,
//! protocol, port), as versions 6 to 9 kept them, was most of what the counting
//! wrote: in the ingest bench's traffic, 0.30 rows an event were source days of
//! one event, the random-port tail a few vertical scanners send (BENCHMARKS.md,
//! "Where the counting's rows go"). Ports past the bound get a row of their own in
//! `source_days`, the old shape: a sweep of every port in a day (or a hostile
//! sensor's forged one) never makes each counting read and rewrite a row of
//! thousands of ports. A reader adds up both tables, so a store counted before
//! version 10 (every port in `source_days`) and after (the same ports packed)
//! answers what its events say.

use std::borrow::Cow;
use std::collections::HashMap;

use rusqlite::{params, Connection};
use scanwatch_aggregate::keyed::KeyedMap;
use scanwatch_aggregate::source_day::{decode_day_ports, encode_day_ports, PortActivity, PortKey};
use scanwatch_aggregate::{decode_distinct, encode_distinct_into, Distinct};

use super::port_cells::{floor_to, DAY_MS};
use super::upsert::Upsert;
use super::{SrcBytes, CELL_EXACT_LIMIT};
use crate::StoreError;

/// Version 10: a source's ports of a day in one row (in the aggregates' file).
pub(crate) const SCHEMA_V10: &str = "
CREATE TABLE IF NOT EXISTS source_ports (
    day_ms INTEGER NOT NULL,
    src    BLOB    NOT NULL,
    ports  BLOB    NOT NULL,
    PRIMARY KEY (day_ms, src)
) WITHOUT ROWID;
";

/// At most this many ports of a source's day are kept in its row of
/// `source_ports`, which each counting that sees the source that day reads and
/// writes again. The ingest bench's vertical scanners probe about 120 ports an
/// hour each.
pub const PACK_PORTS: usize = 128;

/// A port of a source's day stays in the packed row while it counts fewer events,
/// sensors and targets than this each, and leaves it for a row of its own when one
/// of them reaches it: its counters hold at most 15 keys each, so a port takes at
/// most about 170 bytes and a packed row about 22 KB (a port of one event about 15
/// bytes). Without it, a source's busiest ports (thousands of targets: counters of
/// 8–16 KB) would make a row of megabytes that every counting seeing one more event
/// of that source rewrote. (A port that left may come back to the packed row with
/// a later counting's few events, and leave again: readers add both up.)
pub const PACKED_EVENTS: u64 = 16;

/// Whether a port is too busy for the packed row ([`PACKED_EVENTS`]); its
/// counters are counted too, since a block may hold events of count 0.
fn busy(a: &PortActivity) -> bool {
    a.events >= PACKED_EVENTS
        || a.targets.distinct() >= PACKED_EVENTS
        || a.sensors.distinct() >= PACKED_EVENTS
}

/// (source, day, protocol number, port).
pub(crate) type DayKey = (SrcBytes, i64, u8, u16);

/// The source days a counting adds, before they are merged into the stored ones.
pub(crate) type Pending = KeyedMap<DayKey, PortActivity>;

/// A stored source day (packed, or a port's own row) that does not read back.
fn damaged(day: i64, e: impl std::fmt::Display) -> StoreError {
    StoreError::DamagedAggregate(format!("the source day at {day} ms: {e}"))
}

/// Counts `e` (from the sensor with id `sensor`, to the target with key
/// `target`) into its source's day on `(proto, port)`.
pub(crate) fn add(
    days: &mut Pending,
    sensor: i64,
    target: u64,
    e: &scanwatch_event::Event,
    proto: u8,
    port: u16,
) {
    // Times beyond ±2^60 ms (no real event time: the wire's are years 0 to
    // 9999) are taken as ±2^60, as `floor_to` takes them, so that first and last
    // lie in the day the row is keyed by and its bytes always read back.
    let t = super::events::clamp(e.time);
    days.entry((SrcBytes::of(e.src), floor_to(t, DAY_MS), proto, port))
        .or_default()
        .add(sensor as u64, target, t, e.count, CELL_EXACT_LIMIT);
}

/// Merges a counting's source days into the stored ones: each source's day into
/// its row of `source_ports` (read, merged, written again), the ports that do not
/// fit under `pack_ports` or reach [`PACKED_EVENTS`] into rows of their own in
/// `source_days`, upserted with their counters merged by `sw_merge_distinct`
/// (`functions.rs`). A port is in its packed row, in its row of its own, or in
/// both (a store counted before version 10, a port that left its packed row and
/// came back to it, one that had a row of its own when it left): readers add them
/// up.
pub(crate) fn merge(conn: &Connection, days: Pending, pack_ports: usize) -> Result<(), StoreError> {
    const PACKS: Upsert<'static> = Upsert {
        head: "INSERT INTO source_ports (day_ms, src, ports)",
        tail: "ON CONFLICT (day_ms, src) DO UPDATE SET ports = excluded.ports",
        columns: 3,
    };
    const OWN: Upsert<'static> = Upsert {
        head: "INSERT INTO source_days (src, day_ms, proto, port, events, first_in, last_in, sensors, targets, records)",
        // A row of a build before version 11 (`records` NULL) has its events
        // stand in for the records it had, from its first update on.
        tail: "ON CONFLICT (day_ms, src, proto, port) DO UPDATE SET
             events = events + excluded.events,
             first_in = MIN(first_in, excluded.first_in),
             last_in = MAX(last_in, excluded.last_in),
             sensors = sw_merge_distinct(sensors, excluded.sensors),
             targets = sw_merge_distinct(targets, excluded.targets),
             records = COALESCE(records, events) + excluded.records",
        columns: 10,
    };
    // In key order (day, source, protocol, port): a source's day is a run, and
    // neighbouring rows share pages. (References sorted: a day's counters are too
    // large to move around cheaply.)
    let mut days: Vec<(&DayKey, &PortActivity)> = days.iter().collect();
    days.sort_unstable_by(|a, b| {
        let ((sa, da, pa, qa), (sb, db, pb, qb)) = (a.0, b.0);
        (da, sa, pa, qa).cmp(&(db, sb, pb, qb))
    });
    let mut packs: Vec<(i64, &SrcBytes, Vec<u8>)> = Vec::new();
    let mut emptied: Vec<(i64, &SrcBytes)> = Vec::new();
    // Ports for rows of their own: a counting's (borrowed) or one that left its
    // packed row (owned, with all it counted there).
    let mut own: Vec<(&DayKey, Cow<'_, PortActivity>)> = Vec::new();
    // One buffer for every counter's bytes: a bound blob is copied by SQLite.
    let mut buf = Vec::new();
    {
        let mut read =
            conn.prepare_cached("SELECT ports FROM source_ports WHERE day_ms = ?1 AND src = ?2")?;
        for run in days.chunk_by(|a, b| (a.0 .1, &a.0 .0) == (b.0 .1, &b.0 .0)) {
            let (src, day) = (&run[0].0 .0, run[0].0 .1);
            let mut rows = read.query(params![day, src.as_slice()])?;
            let mut pack = match rows.next()? {
                Some(r) => {
                    decode_day_ports(day, r.get_ref(0)?.as_blob().map_err(|e| damaged(day, e))?)
                        .map_err(|e| damaged(day, e))?
                }
                None => Vec::new(),
            };
            drop(rows);
            let mut changed = false;
            for &(key, a) in run {
                let port = (key.2, key.3);
                match pack.binary_search_by_key(&port, |(p, _)| *p) {
                    Ok(i) => {
                        pack[i].1.merge(a, CELL_EXACT_LIMIT);
                        if busy(&pack[i].1) {
                            own.push((key, Cow::Owned(pack.remove(i).1)));
                        }
                    }
                    Err(i) if !busy(a) && pack.len() < pack_ports => {
                        pack.insert(i, (port, a.clone()))
                    }
                    Err(_) => {
                        own.push((key, Cow::Borrowed(a)));
                        continue;
                    }
                }
                changed = true;
            }
            if changed && pack.is_empty() {
                // Every port left: no row rather than an empty one.
                emptied.push((day, src));
            } else if changed {
                let mut bytes = Vec::new();
                encode_day_ports(day, &pack, &mut bytes, &mut buf);
                packs.push((day, src, bytes));
            }
        }
    }
    {
        let mut delete =
            conn.prepare_cached("DELETE FROM source_ports WHERE day_ms = ?1 AND src = ?2")?;
        for (day, src) in &emptied {
            delete.execute(params![day, src.as_slice()])?;
        }
    }
    PACKS.run(conn, &packs, |st, at, (day, src, bytes)| {
        st.raw_bind_parameter(at + 1, day)?;
        st.raw_bind_parameter(at + 2, src.as_slice())?;
        st.raw_bind_parameter(at + 3, bytes.as_slice())?;
        Ok(())
    })?;
    OWN.run(conn, &own, |st, at, ((src, day, proto, port), acc)| {
        st.raw_bind_parameter(at + 1, src.as_slice())?;
        st.raw_bind_parameter(at + 2, day)?;
        st.raw_bind_parameter(at + 3, proto)?;
        st.raw_bind_parameter(at + 4, port)?;
        st.raw_bind_parameter(at + 5, acc.events as i64)?;
        // First and last as milliseconds into the day: a few bytes less a row.
        st.raw_bind_parameter(at + 6, acc.first - day)?;
        st.raw_bind_parameter(at + 7, acc.last - day)?;
        for (i, d) in [(8, &acc.sensors), (9, &acc.targets)] {
            buf.clear();
            encode_distinct_into(d, &mut buf);
            st.raw_bind_parameter(at + i, buf.as_slice())?;
        }
        st.raw_bind_parameter(at + 10, acc.records as i64)?;
        Ok(())
    })
}

/// Adds what the source with address bytes `src` did on the day starting at
/// `day` to `ports`: its packed row and its rows of their own.
pub(crate) fn read_day(
    conn: &Connection,
    day: i64,
    src: &[u8],
    ports: &mut HashMap<PortKey, PortActivity>,
) -> Result<(), StoreError> {
    let mut packed =
        conn.prepare_cached("SELECT ports FROM source_ports WHERE day_ms = ?1 AND src = ?2")?;
    let mut rows = packed.query(params![day, src])?;
    if let Some(r) = rows.next()? {
        let bytes = r.get_ref(0)?.as_blob().map_err(|e| damaged(day, e))?;
        for (port, a) in decode_day_ports(day, bytes).map_err(|e| damaged(day, e))? {
            ports.entry(port).or_default().merge(&a, CELL_EXACT_LIMIT);
        }
    }
    let mut own = conn.prepare_cached(
        "SELECT proto, port, events, first_in, last_in, sensors, targets,
                COALESCE(records, events)
         FROM source_days WHERE day_ms = ?1 AND src = ?2",
    )?;
    let mut rows = own.query(params![day, src])?;
    while let Some(r) = rows.next()? {
        let d = |i: usize| -> Result<Distinct, StoreError> {
            decode_distinct(r.get_ref(i)?.as_blob().map_err(|e| damaged(day, e))?)
                .map_err(|e| damaged(day, e))
        };
        let a = PortActivity {
            events: r.get::<_, i64>(2)? as u64,
            records: r.get::<_, i64>(7)? as u64,
            first: day + r.get::<_, i64>(3)?,
            last: day + r.get::<_, i64>(4)?,
            sensors: d(5)?,
            targets: d(6)?,
        };
        let port = (r.get::<_, i64>(0)? as u8, r.get::<_, i64>(1)? as u16);
        ports.entry(port).or_default().merge(&a, CELL_EXACT_LIMIT);
    }
    Ok(())
}

/// The first day in `[from, to)` any source's day is kept for (a seek on each
/// table's key prefix, however far apart the days lie).
pub(crate) fn next_day(conn: &Connection, from: i64, to: i64) -> Result<Option<i64>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT MIN(d) FROM (
             SELECT MIN(day_ms) AS d FROM source_ports WHERE day_ms >= ?1 AND day_ms < ?2
             UNION ALL
             SELECT MIN(day_ms) FROM source_days WHERE day_ms >= ?1 AND day_ms < ?2)",
    )?;
    Ok(st.query_row(params![from, to], |r| r.get(0))?)
}

/// The source days wholly before `cut` go; the day it cuts through stays, unread
/// (queries read that day from its events) until it is wholly past.
pub(crate) fn prune(conn: &Connection, cut: i64) -> Result<(), StoreError> {
    let day = floor_to(cut, DAY_MS);
    conn.execute("DELETE FROM source_days WHERE day_ms < ?1", [day])?;
    conn.execute("DELETE FROM source_ports WHERE day_ms < ?1", [day])?;
    Ok(())
}

/// Every source day gone (the aggregates counted again from the blocks).
pub(crate) const CLEAR: &str = "DELETE FROM source_days; DELETE FROM source_ports;";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use scanwatch_event::{Event, Timestamp};

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        super::super::functions::register(&conn).unwrap();
        conn.execute_batch(super::super::counts::SCHEMA).unwrap();
        conn.execute_batch(SCHEMA_V10).unwrap();
        conn
    }

    /// (source, day, port, ms into the day, sensor, target, count).
    type Ev = (u8, i64, u16, i64, i64, u8, u32);

    fn event(&(src, day, port, at, _, target, count): &Ev) -> Event {
        Event::syn_probe(
            Timestamp(day * DAY_MS + at),
            std::net::Ipv4Addr::new(192, 0, 2, src).into(),
            std::net::Ipv4Addr::new(198, 18, 0, target).into(),
            port,
            count,
        )
    }

    fn add_all(days: &mut Pending, evs: &[Ev]) {
        for e in evs {
            let ev = event(e);
            let target = super::super::port_cells::ip_key(ev.dst);
            add(days, e.4, target, &ev, 6, e.2);
        }
    }

    /// A port's figures, to compare.
    type Figures = (u64, i64, i64, u64, u64);

    fn figures(m: &HashMap<PortKey, PortActivity>) -> Vec<(PortKey, Figures)> {
        let mut v: Vec<_> = m
            .iter()
            .map(|(k, a)| {
                let (s, t) = (a.sensors.distinct(), a.targets.distinct());
                (*k, (a.events, a.first, a.last, s, t))
            })
            .collect();
        v.sort_by_key(|x| x.0);
        v
    }

    proptest! {
        /// Whatever the bound of each counting (0 is the layout of version 9: every
        /// port in a row of its own), a source's day reads back as all of its
        /// events counted at once, and no packed row holds more ports than the
        /// largest bound it was written under.
        #[test]
        fn a_source_day_reads_as_its_events_whatever_the_bound(
            evs in prop::collection::vec(
                (0u8..3, 0i64..2, 0u16..12, 0..DAY_MS, 0i64..3, 0u8..6, 0u32..10),
                1..200,
            ),
            countings in prop::collection::vec((1usize..60, 0usize..6), 1..8),
        ) {
            let conn = db();
            let mut at = 0;
            let mut largest = 0;
            for (n, bound) in countings.iter().cycle() {
                if at >= evs.len() {
                    break;
                }
                let part = &evs[at..(at + n).min(evs.len())];
                at += part.len();
                largest = largest.max(*bound);
                let mut days = Pending::default();
                add_all(&mut days, part);
                merge(&conn, days, *bound).unwrap();
            }
            for src in 0u8..3 {
                for day in 0i64..2 {
                    let mine: Vec<Ev> =
                        evs.iter().filter(|e| e.0 == src && e.1 == day).copied().collect();
                    let mut want = Pending::default();
                    add_all(&mut want, &mine);
                    let want: HashMap<PortKey, PortActivity> =
                        want.iter().map(|(k, a)| ((k.2, k.3), a.clone())).collect();
                    let key = SrcBytes::of(std::net::Ipv4Addr::new(192, 0, 2, src).into());
                    let mut got = HashMap::new();
                    read_day(&conn, day * DAY_MS, key.as_slice(), &mut got).unwrap();
                    prop_assert_eq!(figures(&got), figures(&want), "source {} day {}", src, day);
                }
            }
            let mut st = conn.prepare("SELECT day_ms, ports FROM source_ports").unwrap();
            let rows = st
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
                .unwrap();
            for row in rows {
                let (day, bytes) = row.unwrap();
                let n = decode_day_ports(day, &bytes).unwrap().len();
                prop_assert!(n <= largest, "{} ports packed under a bound of {}", n, largest);
            }
        }
    }

    /// An event time no clock gives (beyond ±2^60 ms) is counted at ±2^60, in
    /// the day that holds it: the row reads back.
    #[test]
    fn times_at_the_ends_of_the_clock_are_kept_in_their_day() {
        let conn = db();
        for t in [i64::MIN, -(1 << 61), 1 << 61, i64::MAX] {
            let mut e = event(&(1, 0, 80, 0, 0, 1, 1));
            e.time = Timestamp(t);
            let mut days = Pending::default();
            add(&mut days, 0, 1, &e, 6, 80);
            merge(&conn, days, PACK_PORTS).unwrap();
        }
        let key = SrcBytes::of(std::net::Ipv4Addr::new(192, 0, 2, 1).into());
        for edge in [-(1i64 << 60), 1 << 60] {
            let mut got = HashMap::new();
            read_day(&conn, floor_to(edge, DAY_MS), key.as_slice(), &mut got).unwrap();
            let a = &got[&(6, 80)];
            assert_eq!((a.events, a.first, a.last), (2, edge, edge));
        }
    }

    /// A port leaves the packed row when it reaches `PACKED_EVENTS`, so the row
    /// stays small however busy the source's ports get, and the answers add up.
    #[test]
    fn busy_ports_leave_the_packed_row_so_it_stays_small() {
        let conn = db();
        let key = SrcBytes::of(std::net::Ipv4Addr::new(192, 0, 2, 1).into());
        let mut want: HashMap<PortKey, PortActivity> = HashMap::new();
        let mut count = |per_port: u64, first_target: u64| {
            let mut days = Pending::default();
            for port in 0..PACK_PORTS as u16 {
                for k in 0..per_port {
                    let (t, target) = (i64::from(port) + k as i64, first_target + k);
                    days.entry((key, 0, 6, port)).or_default().add(
                        1,
                        target,
                        t,
                        1,
                        CELL_EXACT_LIMIT,
                    );
                    want.entry((6, port))
                        .or_default()
                        .add(1, target, t, 1, CELL_EXACT_LIMIT);
                }
            }
            merge(&conn, days, PACK_PORTS).unwrap();
        };
        let rows = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        let packed_bytes = "SELECT COALESCE(MAX(length(ports)), 0) FROM source_ports";
        // 15 events and 15 targets a port: every port packed, the row ~22 KB at most.
        count(PACKED_EVENTS - 1, 0);
        assert_eq!(rows("SELECT COUNT(*) FROM source_days"), 0);
        let full = rows(packed_bytes);
        assert!((2_000..=22_000).contains(&full), "{full} bytes");
        // One more event each: every port leaves the row for one of its own.
        count(1, 1_000);
        assert_eq!(rows("SELECT COUNT(*) FROM source_days"), PACK_PORTS as i64);
        assert!(rows(packed_bytes) < 10, "an empty packed row");
        // Hundreds more targets a port: counted in the rows of their own.
        count(500, 5_000);
        assert!(rows(packed_bytes) < 10);
        let mut got = HashMap::new();
        read_day(&conn, 0, key.as_slice(), &mut got).unwrap();
        assert_eq!(figures(&got), figures(&want));
        assert_eq!(got[&(6, 0)].targets.distinct(), 516);
        // Events of count 0 (an older block may hold them) to 20 targets: too busy
        // for the packed row however few events they count.
        let mut days = Pending::default();
        for target in 0..20 {
            days.entry((key, 0, 6, 999))
                .or_default()
                .add(1, target, 5, 0, CELL_EXACT_LIMIT);
        }
        merge(&conn, days, PACK_PORTS).unwrap();
        assert_eq!(
            rows("SELECT COUNT(*) FROM source_days"),
            PACK_PORTS as i64 + 1
        );
        assert!(rows(packed_bytes) < 10);
    }

    /// A sweep of 300 ports in a day: the first `PACK_PORTS` in the source's row,
    /// the others in rows of their own, each counting after the first adding to
    /// the ports where they are.
    #[test]
    fn a_sweep_fills_its_row_and_goes_on_in_rows_of_their_own() {
        let conn = db();
        let sweep: Vec<Ev> = (0..300u16)
            .map(|p| (1, 0, p, i64::from(p), 0, 1, 1))
            .collect();
        for _ in 0..2 {
            let mut days = Pending::default();
            add_all(&mut days, &sweep);
            merge(&conn, days, PACK_PORTS).unwrap();
        }
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT COUNT(*) FROM source_ports"), 1);
        assert_eq!(
            count("SELECT COUNT(*) FROM source_days"),
            300 - PACK_PORTS as i64
        );
        assert_eq!(
            count("SELECT MIN(events) = 2 AND MAX(events) = 2 FROM source_days"),
            1
        );
        let key = SrcBytes::of(std::net::Ipv4Addr::new(192, 0, 2, 1).into());
        let mut got = HashMap::new();
        read_day(&conn, 0, key.as_slice(), &mut got).unwrap();
        assert_eq!(got.len(), 300);
        assert!(got.values().all(|a| a.events == 2 && a.first == a.last));
        assert_eq!(next_day(&conn, 0, DAY_MS).unwrap(), Some(0));
        prune(&conn, DAY_MS).unwrap();
        assert_eq!(next_day(&conn, 0, DAY_MS).unwrap(), None);
    }
}
