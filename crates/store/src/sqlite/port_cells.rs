//! Per-port cells of the embedded store: for every hour and every day of event
//! time, and every (protocol, port) scanned in it, the events and mergeable
//! distinct counters of sources, targets and sensors (`scanwatch_aggregate`'s
//! [`Distinct`]: an exact set while small, a HyperLogLog sketch once it has more
//! than [`CELL_EXACT_LIMIT`] keys). They are counted from the stored event blocks in
//! bulk (`events::aggregate`, moving the watermark of what is counted in the same
//! transaction), so they count each batch exactly once, and they answer `top_ports`
//! over any range without reading the raw events of whole hours:
//!
//! - the range is cut into whole days, whole hours at its ends, and the parts of an
//!   hour at its very ends, which are counted from the raw events;
//! - a first pass reads only the busy cells' counts (a partial covering index of
//!   the cells with at least 8 events) and bounds each port's total: at least its
//!   largest cell, at most the sum of the day cells the range lies in, and a port
//!   with no busy cell at most 7 a day;
//! - when a quiet port could still rank, or too many ports could, a second pass
//!   reads every cell's counts for exact sums;
//! - only the ports whose bound reaches the requested rank have their counters
//!   read and merged (one union per counter, `DistinctUnion`; a sketched cell's
//!   HLL8 registers are merged from its bytes, without decoding it: 30 days of
//!   busy ports are hundreds of sketches).
//!
//! Exact while a merged counter is small, the sketch's documented error (about 0.8 %
//! relative standard error) when large: the rule `analyze` follows for its windows.

use scanwatch_aggregate::keyed::KeyedMap;
use std::collections::HashMap;

use rusqlite::{params, Connection};
use scanwatch_aggregate::{encode_distinct_into, ip_hash, Distinct, DistinctUnion};
use scanwatch_event::{Event, Timestamp};

use super::upsert::Upsert;
use crate::{PortTotals, StoreError, TopBy};

/// Keys kept exactly per counter of a cell (and of a merge over a range) before it
/// becomes a sketch. 1,024 keys take 8 KiB exactly, about what the sketch takes.
pub const CELL_EXACT_LIMIT: usize = 1024;

pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;
const SPANS: [i64; 2] = [HOUR_MS, DAY_MS];

/// A cell with fewer events than this is "small": none of its counts (events,
/// sources, sensors; each at most its events) can exceed `SMALL_EVENTS - 1`. The busy
/// index holds only the others.
const SMALL_EVENTS: i64 = 8;

/// Ports merged one at a time (a primary-key lookup under each stored start of the
/// range) up to this many; beyond it one scan of the range's cells is cheaper.
const MERGE_BY_KEY: usize = 64;

/// Version 6 of the schema.
pub(crate) const SCHEMA_V6: &str = "
CREATE TABLE port_cells (
    span_ms   INTEGER NOT NULL,
    start_ms  INTEGER NOT NULL,
    proto     INTEGER NOT NULL,
    port      INTEGER NOT NULL,
    events    INTEGER NOT NULL,
    n_src     INTEGER NOT NULL,
    n_sensors INTEGER NOT NULL,
    src       BLOB    NOT NULL,
    dst       BLOB    NOT NULL,
    sensors   BLOB    NOT NULL,
    PRIMARY KEY (span_ms, start_ms, proto, port)
) WITHOUT ROWID;
CREATE INDEX port_cells_by_port ON port_cells (span_ms, proto, port, start_ms);
CREATE INDEX port_cells_busy
    ON port_cells (span_ms, start_ms, proto, port, events, n_src, n_sensors)
    WHERE events >= 8;
";

/// The key of an address in a distinct counter: an IPv4 address is its own key
/// (exact, and a few bytes in a cell), an IPv6 address its 64-bit hash with the top
/// bit set (never equal to an IPv4 key).
pub(crate) fn ip_key(ip: std::net::IpAddr) -> u64 {
    match ip {
        std::net::IpAddr::V4(a) => u64::from(u32::from(a)),
        std::net::IpAddr::V6(_) => ip_hash(ip) | 1 << 63,
    }
}

/// The counters of one (span, start, protocol, port), or of a port over a range.
#[derive(Clone, Debug, Default)]
struct Cell {
    events: u64,
    /// Events as stored, each counted once whatever its `count`: no cell can
    /// hold more distinct sources, targets or sensors than this (see
    /// [`Cell::held`]). A cell of a build before version 11 does not know it
    /// (`records` is NULL): its events stand in.
    records: u64,
    src: Distinct,
    dst: Distinct,
    sensors: Distinct,
}

impl Cell {
    fn add(&mut self, sensor_id: i64, src: u64, dst: u64, count: u64) {
        self.events += count;
        self.records += 1;
        self.src.add_hash(src, CELL_EXACT_LIMIT);
        self.dst.add_hash(dst, CELL_EXACT_LIMIT);
        self.sensors.add_hash(sensor_id as u64, CELL_EXACT_LIMIT);
    }

    fn merge(&mut self, o: &Cell) {
        self.events += o.events;
        self.records += o.records;
        self.src.merge(&o.src, CELL_EXACT_LIMIT);
        self.dst.merge(&o.dst, CELL_EXACT_LIMIT);
        self.sensors.merge(&o.sensors, CELL_EXACT_LIMIT);
    }

    /// Merges `o`'s events and the counters `w` names.
    fn merge_only(&mut self, o: &Cell, w: Want) {
        self.events += o.events;
        self.records += o.records;
        if w.src {
            self.src.merge(&o.src, CELL_EXACT_LIMIT);
        }
        if w.dst {
            self.dst.merge(&o.dst, CELL_EXACT_LIMIT);
        }
        if w.sensors {
            self.sensors.merge(&o.sensors, CELL_EXACT_LIMIT);
        }
    }

    /// Takes the counters `w` names from `o` (read for the same port and range),
    /// and with any its records (read only with a counter).
    fn take(&mut self, o: Cell, w: Want) {
        if w.any() {
            self.records = o.records;
        }
        if w.src {
            self.src = o.src;
        }
        if w.dst {
            self.dst = o.dst;
        }
        if w.sensors {
            self.sensors = o.sensors;
        }
    }

    fn value(&self, by: TopBy) -> u64 {
        match by {
            TopBy::Events => self.events,
            TopBy::Sources => self.held(&self.src),
            TopBy::Sensors => self.held(&self.sensors),
        }
    }

    /// A counter's distinct count held to what the cell's events can hold: a
    /// sketch's estimate can exceed them (by its error, or far when a sender
    /// chose addresses to set its registers high: docs/security.md), a distinct
    /// count cannot. Held to the records, not only to the events: one stored
    /// event carries one source and one target whatever its `count` (up to
    /// 65,535), so a line cannot add more than one.
    fn held(&self, d: &Distinct) -> u64 {
        d.distinct().min(self.events).min(self.records)
    }
}

type PortKey = (u8, u16);

/// Which counters of a cell to read (the others stay empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Want {
    src: bool,
    dst: bool,
    sensors: bool,
}

impl Want {
    const ALL: Want = Want {
        src: true,
        dst: true,
        sensors: true,
    };

    /// What ranking by `by` needs (by events: no counter).
    fn ranking(by: TopBy) -> Want {
        Want {
            src: by == TopBy::Sources,
            dst: false,
            sensors: by == TopBy::Sensors,
        }
    }

    /// Whether any counter is read (then the records too).
    fn any(self) -> bool {
        self.src || self.dst || self.sensors
    }

    /// The counters this does not read.
    fn rest(self) -> Want {
        Want {
            src: !self.src,
            dst: !self.dst,
            sensors: !self.sensors,
        }
    }
}

/// A stored counter's BLOB column, borrowed (one of another type is damaged).
fn blob<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<&'a [u8], StoreError> {
    r.get_ref(i)?
        .as_blob()
        .map_err(|e| StoreError::DamagedAggregate(format!("a cell's counter: {e}")))
}

/// `t` rounded down to a multiple of `span`; times beyond ±2^60 ms (no real event
/// time) are taken as ±2^60 first, so the product cannot overflow.
pub(crate) fn floor_to(t: i64, span: i64) -> i64 {
    t.clamp(-(1 << 60), 1 << 60).div_euclid(span) * span
}

pub(crate) fn ceil_to(t: i64, span: i64) -> i64 {
    floor_to(t, span) + if t.rem_euclid(span) == 0 { 0 } else { span }
}

/// Cells being counted from blocks, written to the table at once.
#[derive(Default)]
pub(crate) struct Pending {
    // Keyed by times and ports a sender chooses: the keyed hasher (`keyed`).
    cells: KeyedMap<(i64, i64, PortKey), Cell>,
}

impl Pending {
    /// Counts an unsolicited event of sensor `sensor_id` in its hour and its day.
    pub(crate) fn add(&mut self, sensor_id: i64, e: &Event) {
        let Some((proto, port)) = e.scanned_port() else {
            return;
        };
        let (src, dst) = (ip_key(e.src), ip_key(e.dst));
        for span in SPANS {
            self.cells
                .entry((span, floor_to(e.time.0, span), (proto.number(), port)))
                .or_default()
                .add(sensor_id, src, dst, u64::from(e.count));
        }
    }

    /// Merges them into the stored cells, in the caller's transaction.
    pub(crate) fn write(self, conn: &Connection) -> Result<(), StoreError> {
        merge_into_table(conn, self.cells)
    }
}

/// Merges cells into the stored ones: upserts (`upsert.rs`), the counters merged
/// by `sw_merge_distinct` (`functions.rs`) when the cell is stored.
fn merge_into_table(
    tx: &Connection,
    cells: KeyedMap<(i64, i64, PortKey), Cell>,
) -> Result<(), StoreError> {
    const UPSERT: Upsert<'static> = Upsert {
        head: "INSERT INTO port_cells (span_ms, start_ms, proto, port, events, n_src, n_sensors, src, dst, sensors, records)",
        // A cell of a build before version 11 (`records` NULL) has its events
        // stand in for the records it had, so from its first update on it holds
        // them and the lines counted since (a line added later, however late its
        // time, counts once).
        tail: "ON CONFLICT (span_ms, start_ms, proto, port) DO UPDATE SET
             events = events + excluded.events,
             n_src = MIN(sw_merged_distinct_count(src, excluded.src), events + excluded.events,
                         COALESCE(records, events) + excluded.records),
             n_sensors = MIN(sw_merged_distinct_count(sensors, excluded.sensors),
                             events + excluded.events, COALESCE(records, events) + excluded.records),
             src = sw_merge_distinct(src, excluded.src),
             dst = sw_merge_distinct(dst, excluded.dst),
             sensors = sw_merge_distinct(sensors, excluded.sensors),
             records = COALESCE(records, events) + excluded.records",
        columns: 11,
    };
    // In key order: neighbouring cells share pages. (Keys and references sorted:
    // a cell is too large to move around cheaply.)
    let mut cells: Vec<_> = cells.iter().map(|(k, c)| (*k, c)).collect();
    cells.sort_unstable_by_key(|(k, _)| *k);
    // One buffer for every counter's bytes: a bound blob is copied by SQLite.
    let mut buf = Vec::new();
    UPSERT.run(
        tx,
        &cells,
        |st, at, ((span, start, (proto, port)), cell)| {
            st.raw_bind_parameter(at + 1, span)?;
            st.raw_bind_parameter(at + 2, start)?;
            st.raw_bind_parameter(at + 3, proto)?;
            st.raw_bind_parameter(at + 4, port)?;
            st.raw_bind_parameter(at + 5, cell.events as i64)?;
            st.raw_bind_parameter(at + 6, cell.held(&cell.src) as i64)?;
            st.raw_bind_parameter(at + 7, cell.held(&cell.sensors) as i64)?;
            for (i, d) in [(8, &cell.src), (9, &cell.dst), (10, &cell.sensors)] {
                buf.clear();
                encode_distinct_into(d, &mut buf);
                st.raw_bind_parameter(at + i, buf.as_slice())?;
            }
            st.raw_bind_parameter(at + 11, cell.records as i64)?;
            Ok(())
        },
    )
}

/// Retention deleted the raw events before `cut`: the cells wholly before it go.
/// The hour and the day it cuts through stay, unread (`plan` starts the cells
/// after them), until a later cut passes them.
pub(crate) fn prune(conn: &Connection, cut: i64) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM port_cells WHERE (span_ms = ?1 AND start_ms < ?2) OR (span_ms = ?3 AND start_ms < ?4)",
        params![HOUR_MS, floor_to(cut, HOUR_MS), DAY_MS, floor_to(cut, DAY_MS)],
    )?;
    Ok(())
}

/// The pieces a range is read from: `(span, from, to)` runs of whole cells, and
/// the raw ends.
struct Plan {
    cells: Vec<(i64, i64, i64)>,
    raw: Vec<(i64, i64)>,
}

/// `floor`: where retention last cut; no cell it ran through is read.
fn plan(from: i64, to: i64, floor: i64) -> Plan {
    let mut p = Plan {
        cells: Vec::new(),
        raw: Vec::new(),
    };
    let (h0, h1) = (ceil_to(from.max(floor), HOUR_MS), floor_to(to, HOUR_MS));
    if h0 >= h1 {
        p.raw.push((from, to));
        return p;
    }
    p.raw.push((from, h0));
    p.raw.push((h1, to));
    let (d0, d1) = (ceil_to(h0, DAY_MS), floor_to(h1, DAY_MS));
    if d0 >= d1 {
        p.cells.push((HOUR_MS, h0, h1));
    } else {
        p.cells.push((HOUR_MS, h0, d0));
        p.cells.push((DAY_MS, d0, d1));
        p.cells.push((HOUR_MS, d1, h1));
    }
    p.cells.retain(|(_, a, b)| a < b);
    p.raw.retain(|(a, b)| a < b);
    p
}

/// What the first pass knows of a port: bounds on its ranked count, and in how
/// many bounding periods it had a busy cell.
#[derive(Clone, Copy, Debug, Default)]
struct Bounds {
    low: u64,
    high: u64,
    busy: u64,
}

impl Bounds {
    /// Adds a part known exactly (a raw end, or a cell in the exhaustive pass):
    /// events add up; a distinct count is at least the largest part's and at most
    /// the sum.
    fn add_part(&mut self, v: u64, by: TopBy) {
        self.add_low(v, by);
        self.high += v;
    }

    fn add_low(&mut self, v: u64, by: TopBy) {
        self.low = if by == TopBy::Events {
            self.low + v
        } else {
            self.low.max(v)
        };
    }
}

/// The busiest ports over `[from, to)`, ranked as an exact count over the raw
/// events ranks them: by the count, then events, both descending, then protocol
/// and port.
pub(crate) fn top_ports(
    conn: &Connection,
    store_file: &std::path::Path,
    cache: &std::sync::Mutex<super::events::BlockCache>,
    from: Timestamp,
    to: Timestamp,
    by: TopBy,
    limit: usize,
) -> Result<Vec<PortTotals>, StoreError> {
    let (from, to) = (super::events::clamp(from), super::events::clamp(to));
    if limit == 0 || from >= to {
        return Ok(Vec::new());
    }
    // One snapshot: the cells, the watermark they were counted to, and where
    // retention last cut.
    super::recount::in_snapshot(conn, store_file, |conn, mark| {
        top_ports_in(conn, mark, cache, from, to, by, limit)
    })
}

fn top_ports_in(
    conn: &Connection,
    mark: i64,
    cache: &std::sync::Mutex<super::events::BlockCache>,
    from: i64,
    to: i64,
    by: TopBy,
    limit: usize,
) -> Result<Vec<PortTotals>, StoreError> {
    let plan = plan(from, to, super::events::pruned_to(conn)?);
    // The ends from the raw events, and the events of the cells' range not yet
    // counted into them: exact, and merged into every port's total.
    let mut ends: HashMap<PortKey, Cell> = HashMap::new();
    let mut count = |sensor: i64, e: &Event| {
        if let Some((proto, port)) = e.scanned_port() {
            ends.entry((proto.number(), port)).or_default().add(
                sensor,
                ip_key(e.src),
                ip_key(e.dst),
                u64::from(e.count),
            );
        }
    };
    for &(a, b) in &plan.raw {
        super::events::scan(conn, Some(cache), a, b, &mut count)?;
    }
    if let (Some(first), Some(last)) = (plan.cells.first(), plan.cells.last()) {
        super::events::scan_waiting(conn, Some(cache), mark, first.1, last.2, &mut count)?;
    }
    let with_ends = |mut bounds: HashMap<PortKey, Bounds>, quiet: u64| {
        for (key, c) in &ends {
            bounds
                .entry(*key)
                .or_insert(Bounds {
                    high: quiet,
                    ..Bounds::default()
                })
                .add_part(c.value(by), by);
        }
        bounds
    };
    // First from the busy cells only: a port with none counts at most `quiet` in
    // its cells. When such a port could still rank, or too many ports could, the
    // counts of every cell give exact sums to bound with.
    let (bounds, quiet) = busy_pass(conn, &plan, by)?;
    let mut bounds = with_ends(bounds, quiet);
    let mut wanted = candidates(&bounds, limit);
    let quiet_ranks = nth_low(&bounds, limit).is_none_or(|t| t <= quiet);
    if !plan.cells.is_empty() && (quiet_ranks || wanted.len() > MERGE_BY_KEY) {
        bounds = with_ends(every_cell_pass(conn, &plan, by)?, 0);
        wanted = candidates(&bounds, limit);
    }

    let totals: HashMap<PortKey, Cell> = if wanted.len() <= MERGE_BY_KEY {
        // Highest bound first, merging only the ranked counter, until no port left
        // can reach the last place; then the other counters of the ranked ones.
        let mut order: Vec<(PortKey, u64)> = wanted
            .iter()
            .map(|k| (*k, bounds.get(k).map_or(0, |b| b.high)))
            .collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let ranked_by = Want::ranking(by);
        let starts = cell_starts(conn, &plan)?;
        let mut ranked: Vec<(u64, u64, PortKey, Cell)> = Vec::new();
        for (key, high) in order {
            if ranked.len() >= limit && high < ranked[limit - 1].0 {
                break;
            }
            let mut c = port_cell(conn, &starts, key, ranked_by)?;
            if let Some(e) = ends.get(&key) {
                c.merge_only(e, ranked_by);
            }
            ranked.push((c.value(by), c.events, key, c));
            ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
            ranked.truncate(limit);
        }
        let rest = ranked_by.rest();
        ranked
            .into_iter()
            .map(|(_, _, key, mut c)| {
                let mut more = port_cell(conn, &starts, key, rest)?;
                if let Some(e) = ends.get(&key) {
                    more.merge_only(e, rest);
                }
                c.take(more, rest);
                Ok((key, c))
            })
            .collect::<Result<_, StoreError>>()?
    } else {
        let mut t = merge_ports(conn, &plan, &wanted)?;
        for (key, c) in &ends {
            if wanted.binary_search(key).is_ok() {
                t.entry(*key).or_default().merge(c);
            }
        }
        t
    };
    let mut out: Vec<PortTotals> = totals
        .into_iter()
        .map(|((proto, port), c)| PortTotals {
            proto,
            port,
            events: c.events,
            sources: c.held(&c.src),
            sensors: c.held(&c.sensors),
            targets: c.held(&c.dst),
        })
        .collect();
    let value = |t: &PortTotals| match by {
        TopBy::Events => t.events,
        TopBy::Sources => t.sources,
        TopBy::Sensors => t.sensors,
    };
    out.sort_by(|a, b| {
        value(b)
            .cmp(&value(a))
            .then(b.events.cmp(&a.events))
            .then(a.proto.cmp(&b.proto))
            .then(a.port.cmp(&b.port))
    });
    out.truncate(limit);
    Ok(out)
}

/// The ports that can be among the first `limit`: every port whose upper bound
/// reaches the `limit`-th largest lower bound (sorted).
fn candidates(bounds: &HashMap<PortKey, Bounds>, limit: usize) -> Vec<PortKey> {
    let threshold = nth_low(bounds, limit).unwrap_or(0);
    let mut wanted: Vec<PortKey> = bounds
        .iter()
        .filter(|(_, b)| b.high >= threshold)
        .map(|(k, _)| *k)
        .collect();
    wanted.sort_unstable();
    wanted
}

/// The `n`-th largest lower bound (`None` when fewer ports).
fn nth_low(bounds: &HashMap<PortKey, Bounds>, n: usize) -> Option<u64> {
    if bounds.len() < n {
        return None;
    }
    let mut lows: Vec<u64> = bounds.values().map(|b| b.low).collect();
    let (_, nth, _) = lows.select_nth_unstable_by(n - 1, |a, b| b.cmp(a));
    Some(*nth)
}

fn column(by: TopBy) -> &'static str {
    match by {
        TopBy::Events => "events",
        TopBy::Sources => "n_src",
        TopBy::Sensors => "n_sensors",
    }
}

/// Bounds from the busy cells (at least [`SMALL_EVENTS`] events) only, and the
/// most a port with no busy cell can count. Lower bounds: the busy cells of the
/// range (their largest; by events their sum). Upper bounds from "bounding
/// periods": each whole day of the range, and each day an hour run lies in (the
/// day's cell counts at least what the hours in it count); a period with no busy
/// cell of the port adds at most `SMALL_EVENTS - 1`.
fn busy_pass(
    conn: &Connection,
    plan: &Plan,
    by: TopBy,
) -> Result<(HashMap<PortKey, Bounds>, u64), StoreError> {
    let col = column(by);
    let mut st = conn.prepare_cached(&format!(
        "SELECT proto, port, MAX({col}), SUM({col}), COUNT(*)
         FROM port_cells INDEXED BY port_cells_busy
         WHERE span_ms = ?1 AND start_ms >= ?2 AND start_ms < ?3 AND events >= {SMALL_EVENTS}
         GROUP BY proto, port"
    ))?;
    let mut out: HashMap<PortKey, Bounds> = HashMap::new();
    let mut periods = 0u64;
    let mut each = |span: i64, a: i64, b: i64, f: &mut dyn FnMut(&mut Bounds, u64, u64, u64)| {
        let mut rows = st.query(params![span, a, b])?;
        while let Some(r) = rows.next()? {
            let key: PortKey = (r.get::<_, i64>(0)? as u8, r.get::<_, i64>(1)? as u16);
            let (max, sum, n): (i64, i64, i64) = (r.get(2)?, r.get(3)?, r.get(4)?);
            f(
                out.entry(key).or_default(),
                max as u64,
                sum as u64,
                n as u64,
            );
        }
        Ok::<(), StoreError>(())
    };
    for &(span, a, b) in &plan.cells {
        if span == DAY_MS {
            periods += ((b - a) / DAY_MS) as u64;
            each(DAY_MS, a, b, &mut |e, max, sum, n| {
                e.add_low(if by == TopBy::Events { sum } else { max }, by);
                e.high += sum;
                e.busy += n;
            })?;
        } else {
            // The hours give lower bounds; the days they lie in, upper bounds.
            each(HOUR_MS, a, b, &mut |e, max, sum, _| {
                e.add_low(if by == TopBy::Events { sum } else { max }, by);
            })?;
            let (d0, d1) = (floor_to(a, DAY_MS), ceil_to(b, DAY_MS));
            periods += ((d1 - d0) / DAY_MS) as u64;
            each(DAY_MS, d0, d1, &mut |e, _, sum, n| {
                e.high += sum;
                e.busy += n;
            })?;
        }
    }
    let small_max = (SMALL_EVENTS - 1) as u64;
    for e in out.values_mut() {
        e.high += periods.saturating_sub(e.busy) * small_max;
    }
    Ok((out, periods * small_max))
}

/// Exact sums over every cell of the plan: the upper bound is the sum of a port's
/// cells, the lower bound their largest (by events: the sum).
fn every_cell_pass(
    conn: &Connection,
    plan: &Plan,
    by: TopBy,
) -> Result<HashMap<PortKey, Bounds>, StoreError> {
    let col = column(by);
    let mut st = conn.prepare_cached(&format!(
        "SELECT proto, port, MAX({col}), SUM({col})
         FROM port_cells WHERE span_ms = ?1 AND start_ms >= ?2 AND start_ms < ?3
         GROUP BY proto, port"
    ))?;
    let mut out: HashMap<PortKey, Bounds> = HashMap::new();
    for &(span, a, b) in &plan.cells {
        let mut rows = st.query(params![span, a, b])?;
        while let Some(r) = rows.next()? {
            let key: PortKey = (r.get::<_, i64>(0)? as u8, r.get::<_, i64>(1)? as u16);
            let (max, sum): (i64, i64) = (r.get(2)?, r.get(3)?);
            let e = out.entry(key).or_default();
            e.add_low(if by == TopBy::Events { sum } else { max } as u64, by);
            e.high += sum as u64;
        }
    }
    Ok(out)
}

/// Merged counters per port while merging.
struct Union {
    events: u64,
    records: u64,
    src: DistinctUnion,
    dst: DistinctUnion,
    sensors: DistinctUnion,
}

impl Union {
    fn new() -> Union {
        Union {
            events: 0,
            records: 0,
            src: DistinctUnion::new(CELL_EXACT_LIMIT),
            dst: DistinctUnion::new(CELL_EXACT_LIMIT),
            sensors: DistinctUnion::new(CELL_EXACT_LIMIT),
        }
    }

    /// Adds a stored cell (events, then the three counters' bytes, then its
    /// records or, without them, its events again, from `at`), decoding only the
    /// counters `w` names; without any, only its events are read (a statement
    /// may select them alone).
    fn add_row(&mut self, r: &rusqlite::Row<'_>, at: usize, w: Want) -> Result<(), StoreError> {
        let add = |u: &mut DistinctUnion, i: usize| -> Result<(), StoreError> {
            u.add_encoded(blob(r, i)?)
                .map_err(|e| StoreError::DamagedAggregate(format!("a cell's counter: {e}")))
        };
        self.events += r.get::<_, i64>(at)? as u64;
        if !w.any() {
            return Ok(());
        }
        self.records += r.get::<_, i64>(at + 4)? as u64;
        if w.src {
            add(&mut self.src, at + 1)?;
        }
        if w.dst {
            add(&mut self.dst, at + 2)?;
        }
        if w.sensors {
            add(&mut self.sensors, at + 3)?;
        }
        Ok(())
    }

    fn finish(self) -> Cell {
        Cell {
            events: self.events,
            records: self.records,
            src: self.src.finish(),
            dst: self.dst.finish(),
            sensors: self.sensors.finish(),
        }
    }
}

/// The starts of the stored cells of the plan's periods, as `(span, start)`:
/// found once per query, then each ranked port is looked up under each (the cells
/// have no per-port index since schema version 8: each new cell wrote a page of
/// it). Each start is the least one after the last (one seek each).
fn cell_starts(conn: &Connection, plan: &Plan) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut st = conn.prepare_cached(
        "WITH RECURSIVE starts(s) AS (
             SELECT MIN(start_ms) FROM port_cells
             WHERE span_ms = ?1 AND start_ms >= ?2 AND start_ms < ?3
             UNION ALL
             SELECT (SELECT MIN(start_ms) FROM port_cells
                     WHERE span_ms = ?1 AND start_ms > starts.s AND start_ms < ?3)
             FROM starts WHERE starts.s IS NOT NULL
         )
         SELECT s FROM starts WHERE s IS NOT NULL",
    )?;
    let mut out = Vec::new();
    for &(span, a, b) in &plan.cells {
        let mut rows = st.query(params![span, a, b])?;
        while let Some(r) = rows.next()? {
            out.push((span, r.get(0)?));
        }
    }
    Ok(out)
}

/// One port's events and the counters `w` names over the cells at `starts` (with
/// any counter, its records too).
fn port_cell(
    conn: &Connection,
    starts: &[(i64, i64)],
    key: PortKey,
    w: Want,
) -> Result<Cell, StoreError> {
    // Events alone when no counter is wanted (ranking by events): SQLite reads
    // every column a statement selects, the counters' bytes (a sketch's span
    // pages of their own) included.
    let mut st = conn.prepare_cached(if w.any() {
        "SELECT events, src, dst, sensors, COALESCE(records, events) FROM port_cells
         WHERE span_ms = ?1 AND start_ms = ?2 AND proto = ?3 AND port = ?4"
    } else {
        "SELECT events FROM port_cells
         WHERE span_ms = ?1 AND start_ms = ?2 AND proto = ?3 AND port = ?4"
    })?;
    let mut u = Union::new();
    for &(span, start) in starts {
        let mut rows = st.query(params![span, start, key.0, key.1])?;
        if let Some(r) = rows.next()? {
            u.add_row(r, 0, w)?;
        }
    }
    Ok(u.finish())
}

/// The merged counters of many `ports` (sorted) over the plan's cells: one scan
/// of the range's cells.
fn merge_ports(
    conn: &Connection,
    plan: &Plan,
    ports: &[PortKey],
) -> Result<HashMap<PortKey, Cell>, StoreError> {
    let mut out: HashMap<PortKey, Union> = HashMap::new();
    let mut st = conn.prepare_cached(
        "SELECT proto, port, events, src, dst, sensors, COALESCE(records, events) FROM port_cells
         WHERE span_ms = ?1 AND start_ms >= ?2 AND start_ms < ?3",
    )?;
    for &(span, a, b) in &plan.cells {
        let mut rows = st.query(params![span, a, b])?;
        while let Some(r) = rows.next()? {
            let key: PortKey = (r.get::<_, i64>(0)? as u8, r.get::<_, i64>(1)? as u16);
            if ports.binary_search(&key).is_ok() {
                out.entry(key)
                    .or_insert_with(Union::new)
                    .add_row(r, 2, Want::ALL)?;
            }
        }
    }
    Ok(out.into_iter().map(|(k, u)| (k, u.finish())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_cut_into_raw_ends_hours_and_days() {
        let h = HOUR_MS;
        let d = DAY_MS;
        // Inside one hour: all raw.
        let p = plan(10, h - 1, i64::MIN);
        assert_eq!(p.raw, vec![(10, h - 1)]);
        assert!(p.cells.is_empty());
        // Two days and a bit: raw ends, hours up to the day, the day, hours after.
        let p = plan(d - h - 5, 2 * d + 2 * h + 7, i64::MIN);
        assert_eq!(
            p.raw,
            vec![(d - h - 5, d - h), (2 * d + 2 * h, 2 * d + 2 * h + 7)]
        );
        assert_eq!(
            p.cells,
            vec![(h, d - h, d), (d, d, 2 * d), (h, 2 * d, 2 * d + 2 * h)]
        );
        // Aligned on days: days only.
        let p = plan(0, 3 * d, i64::MIN);
        assert!(p.raw.is_empty());
        assert_eq!(p.cells, vec![(d, 0, 3 * d)]);
        // Retention cut through the first day: its hours and the day are read
        // from the events up to the next whole hour, hours to the next day.
        let p = plan(0, 3 * d, h + 5);
        assert_eq!(p.raw, vec![(0, 2 * h)]);
        assert_eq!(p.cells, vec![(h, 2 * h, d), (d, d, 3 * d)]);
        // Negative times round down too, and the extremes do not overflow.
        assert_eq!(floor_to(-1, h), -h);
        assert_eq!(ceil_to(-1, h), 0);
        assert!(floor_to(i64::MIN, d) < -(1 << 59));
        assert!(ceil_to(i64::MAX, d) > 1 << 59);
    }
}
