//! Aggregates for the desk's range queries: per (hour, protocol, port) and per
//! (source, hour, protocol, port) cells of `sum`/`uniqExact`/`min`/`max` states, kept
//! by ClickHouse itself (a materialized view on each server's raw events), so top
//! ports and a source's activity over any range merge cells instead of scanning every
//! event.
//!
//! * **Visibility.** A cell row is per commit: its `seq` is the `batch_seq` of the
//!   events it was made of, so reads count it only under a seq whose batch ids are
//!   stored (the same commit point as the raw events), and a torn commit's cells count
//!   nothing, as its events do. Rows of different commits are not merged by ClickHouse
//!   (the seq is part of the key): a commit of thousands of events on a few busy ports
//!   becomes a few rows, a commit of a long tail of one-event ports as many rows as
//!   events.
//! * **Exactness.** `uniqExact` states (a set of 128-bit hashes), so a range read from
//!   cells equals the same range read from the raw events, which
//!   `crates/store/tests/clickhouse.rs` and the bench check. Not the HyperLogLog of
//!   the embedded store: a sketch whose hash is public can be aimed at by a sender
//!   (docs/security.md); a set cannot.
//! * **Ranges.** The whole hours of `[from, to)` come from the cells, the partial
//!   hours at either end from the raw events; events timed outside what a `DateTime`
//!   holds (before 1970 or from 2100) have no cell and are always read raw.
//! * **Top ports.** First the busiest ports by events (sums only, cheap; only the
//!   first of them and the events of the next cross the wire), then the exact
//!   distinct counts of the ports that can still rank: a port's sources and sensors
//!   are at most its events, so once `limit` ports are counted exactly, a port with
//!   fewer events than the last of them cannot rank (every event counts at least
//!   once: the wire format and the parsers refuse a count of 0, and so does every
//!   commit of the stores, `crate::check_counts`); the ports past the first are read
//!   (those with at least that many events) only when one of them might rank. The
//!   passes are two or three reads, not one snapshot: a commit landing between them
//!   can leave a port it made busy out of that answer (the next one has it).
//! * **Upgrade.** Schema version 2 had no cells; opening it creates them for what is
//!   committed from then on and records the last commit without cells, whose events
//!   are read raw (`create_cells`).

use super::*;

const HOUR_MS: i64 = 3_600_000;
/// Cells hold events timed in `[0, CELL_END_MS)`: what a `DateTime` holds.
const CELL_END_MS: i64 = MAX_SECS / 3600 * HOUR_MS;
/// Beyond this many candidate ports, one query counts every port exactly.
const MAX_CANDIDATES: usize = 4_096;
/// A source's activity over up to two days is read from the raw events: one query,
/// which on 18.16 answers a day as fast as the cells (BENCHMARKS.md, "The desk on
/// ClickHouse"); longer ranges from the cells.
pub const RAW_RANGE_MS: i64 = 2 * 86_400_000;
/// Top ports over less than a day are read from the raw events (an hour or two
/// is mostly partial hours, read raw anyway, in one query instead of two); from
/// a day on from the cells, which answer a day quicker since the first pass
/// returns only the busiest ports (BENCHMARKS.md, "The desk on ClickHouse").
pub const TOP_PORTS_RAW_BELOW_MS: i64 = 86_400_000;
/// Ports counted exactly at first when ranking by sources or sensors (the busiest
/// by events), at least `limit`: enough that the last of the `limit` best is a busy
/// port, whose count bounds the rest. Ranked by events, `limit` of them.
const FIRST_CANDIDATES: usize = 256;

/// A port, (protocol, port), and its events over a range.
type PortEvents = ((u8, u16), u64);

/// The cell tables: (name, columns, key, the materialized view's select list).
fn tables() -> [(&'static str, &'static str, &'static str, &'static str); 2] {
    [
        (
            "port_hours",
            "proto UInt8, port UInt16, seq UInt64, \
             events AggregateFunction(sum, UInt64), \
             sources AggregateFunction(uniqExact, FixedString(16), UInt8), \
             sensors AggregateFunction(uniqExact, String), \
             targets AggregateFunction(uniqExact, FixedString(16), UInt8)",
            "proto, port, hour_ms, seq",
            "proto, dst_port AS port, batch_seq AS seq, sumState(toUInt64(count)) AS events, \
             uniqExactState(src, src_v4) AS sources, uniqExactState(sensor) AS sensors, \
             uniqExactState(dst, dst_v4) AS targets",
        ),
        (
            "source_hours",
            "src FixedString(16), src_v4 UInt8, proto UInt8, port UInt16, seq UInt64, \
             events AggregateFunction(sum, UInt64), \
             sensors AggregateFunction(uniqExact, String), \
             targets AggregateFunction(uniqExact, FixedString(16), UInt8), \
             first_ms AggregateFunction(min, Int64), \
             last_ms AggregateFunction(max, Int64)",
            "src, src_v4, hour_ms, proto, port, seq",
            "src, src_v4, proto, dst_port AS port, batch_seq AS seq, \
             sumState(toUInt64(count)) AS events, uniqExactState(sensor) AS sensors, \
             uniqExactState(dst, dst_v4) AS targets, minState(time_ms) AS first_ms, \
             maxState(time_ms) AS last_ms",
        ),
    ]
}

/// The cells of the events of `from`: what the views compute for every insert, and
/// the upgrade for the stored events.
fn cells_of(select: &str, key: &str, from: &str) -> String {
    format!(
        "SELECT toDateTime(intDiv(toUInt32(time), 3600) * 3600) AS hour, \
         intDiv(time_ms, {HOUR_MS}) * {HOUR_MS} AS hour_ms, {select} \
         FROM {from} WHERE scanned = 1 AND time_ms >= 0 AND time_ms < {CELL_END_MS} \
         GROUP BY hour, {key}"
    )
}

/// The whole hours of `[from, to)` that cells cover, if any.
fn whole_hours(from: Timestamp, to: Timestamp) -> Option<(i64, i64)> {
    let h = i128::from(HOUR_MS);
    let a = (i128::from(from.0) + h - 1).div_euclid(h) * h;
    let b = i128::from(to.0).div_euclid(h) * h;
    let (a, b) = (a.max(0), b.min(i128::from(CELL_END_MS)));
    (a < b).then_some((a as i64, b as i64))
}

impl ClickHouseStore {
    /// Creates the cell tables and their views on server `i`. With `upgrade` (a
    /// database of schema version 2, whose events have no cells), then records the
    /// largest commit seq of the events stored so far: read after the views exist,
    /// so every commit without cells has a seq up to it, and reads take those from
    /// the raw events. Nothing is rebuilt: the cells cover what comes after, and the
    /// raw reads of the older commits end as retention prunes them. Idempotent, so
    /// two processes may upgrade at once, and an interrupted upgrade runs again.
    pub(super) fn create_cells(&self, i: usize, upgrade: bool) -> Result<(), StoreError> {
        let events = self.local("events");
        let since = self.local("cells_after");
        self.exec(
            i,
            &format!(
                "CREATE TABLE IF NOT EXISTS {since} (seq UInt64) ENGINE = MergeTree ORDER BY seq"
            ),
        )?;
        for (name, cols, key, select) in tables() {
            let table = self.local(name);
            let view = self.local(&format!("{name}_feed"));
            self.exec(
                i,
                &format!(
                    "CREATE TABLE IF NOT EXISTS {table} (hour DateTime('UTC'), hour_ms Int64, \
                     {cols}) ENGINE = AggregatingMergeTree PARTITION BY toDate(hour) \
                     ORDER BY ({key})"
                ),
            )?;
            self.exec(
                i,
                &format!(
                    "CREATE MATERIALIZED VIEW IF NOT EXISTS {view} TO {table} AS {}",
                    cells_of(select, key, &events)
                ),
            )?;
            if let Some(cluster) = &self.cluster {
                let db = &self.db;
                self.exec(
                    i,
                    &format!(
                        "CREATE TABLE IF NOT EXISTS {db}.{name} AS {table} \
                         ENGINE = Distributed({cluster}, {db}, {name}_local)"
                    ),
                )?;
            }
        }
        if upgrade {
            self.exec(
                i,
                &format!("INSERT INTO {since} SELECT max(batch_seq) FROM {events}"),
            )?;
        }
        Ok(())
    }

    /// The largest seq recorded by an upgrade on any server (0 if none).
    pub(super) fn read_cells_after(&self) -> Result<u64, StoreError> {
        let mut after = 0;
        for i in 0..self.servers.len() {
            let r = self.rows(
                i,
                &format!("SELECT max(seq) AS s FROM {}", self.local("cells_after")),
            )?;
            if let Some(r) = r.first() {
                after = after.max(r.int::<u64>("s")?);
            }
        }
        Ok(after)
    }

    /// The SQL of `SELECT proto, port, {outer} … GROUP BY proto, port{tail}` over
    /// `[from, to)`: from the cells of `table` for the whole hours (of commits
    /// after an upgrade), from the raw events for the rest. `outer` merges states
    /// named as the cells' columns; `cells` selects them from the cells and `raw`
    /// makes them from the raw events, both naming them so; `extra` narrows both
    /// (to some ports, one source). A range of whole hours of cells alone is one
    /// aggregation over the table (each shard merges its cells, the first server
    /// the shards'); with raw parts the parts are merged in a subquery first, an
    /// aggregation more: on 30 days loaded, a day's busiest ports took 25 ms in one
    /// and 32 ms in two (curl, ten each, alternating), 30 days' 312 against 344 ms.
    #[allow(clippy::too_many_arguments)] // one query's parts, each named
    fn merged(
        &self,
        table: &str,
        outer: &str,
        cells: &str,
        raw: &str,
        extra: &str,
        from: Timestamp,
        to: Timestamp,
        tail: &str,
    ) -> String {
        let raw_range = |a: i64, b: i64| time_range("time", "time_ms", Timestamp(a), Timestamp(b));
        let raw_part = |cond: String| {
            format!(
                "SELECT proto, dst_port AS port, {raw} FROM {} \
                 WHERE scanned = 1 AND ({cond}) AND {}{extra} GROUP BY proto, port",
                self.dist("events"),
                self.committed("batch_seq"),
            )
        };
        let nested = |parts: String| {
            format!("SELECT proto, port, {outer} FROM ({parts}) GROUP BY proto, port{tail}")
        };
        match whole_hours(from, to) {
            None => nested(raw_part(raw_range(from.0, to.0))),
            Some((a, b)) => {
                let mut ends = Vec::new();
                if from.0 < a {
                    ends.push(format!("({})", raw_range(from.0, a)));
                }
                if b < to.0 {
                    ends.push(format!("({})", raw_range(b, to.0)));
                }
                // The commits stored before an upgrade have no cells: raw.
                let old = self.cells_after;
                if old > 0 {
                    ends.push(format!("({} AND batch_seq <= {old})", raw_range(a, b)));
                }
                let of_cells = format!(
                    "FROM {} WHERE {} AND {} AND seq > {old}{extra} GROUP BY proto, port",
                    self.dist(table),
                    time_range("hour", "hour_ms", Timestamp(a), Timestamp(b)),
                    self.committed("seq"),
                );
                if ends.is_empty() {
                    format!("SELECT proto, port, {outer} {of_cells}{tail}")
                } else {
                    nested(format!(
                        "SELECT proto, port, {cells} {of_cells} UNION ALL {}",
                        raw_part(ends.join(" OR "))
                    ))
                }
            }
        }
    }

    /// [`Store::top_ports`](crate::EventStore::top_ports) from the cells, whatever
    /// the range (the store reads ranges shorter than [`TOP_PORTS_RAW_BELOW_MS`]
    /// from the raw events).
    pub fn top_ports_from_cells(
        &self,
        from: Timestamp,
        to: Timestamp,
        by: TopBy,
        limit: usize,
    ) -> Result<Vec<PortTotals>, StoreError> {
        if limit == 0 || from >= to {
            return Ok(Vec::new());
        }
        let rank = |v: &PortTotals| match by {
            TopBy::Events => v.events,
            TopBy::Sources => v.sources,
            TopBy::Sensors => v.sensors,
        };
        let order = |a: &PortTotals, b: &PortTotals| {
            rank(b)
                .cmp(&rank(a))
                .then(b.events.cmp(&a.events))
                .then((a.proto, a.port).cmp(&(b.proto, b.port)))
        };
        // The busiest ports by events (at least `limit`) and the events of the
        // next one: every port not read has at most that many. Ranked by events,
        // the first pass's order is the answer's (the same tie-break), so only the
        // `limit` first are counted exactly (and ports tied with the last, read
        // below); by sources or sensors, which events only bound, more.
        let first = match by {
            TopBy::Events => limit,
            TopBy::Sources | TopBy::Sensors => limit.max(FIRST_CANDIDATES),
        };
        let mut ports = self.busiest_ports(from, to, None, Some(first.saturating_add(1)))?;
        let mut unread = (ports.len() > first)
            .then(|| ports.pop().map(|p| p.1))
            .flatten();
        if matches!(by, TopBy::Events) {
            // The first `limit` are the answer, ties at the limit broken there as
            // here: a port not read cannot rank, even with as many events.
            unread = None;
        }
        // Counted exactly: those first, then every port whose events reach the
        // `limit`-th value counted (the bound only rises), read once the ports
        // not read might reach it.
        let mut counted: Vec<PortTotals> = Vec::new();
        let mut seen: std::collections::HashSet<(u8, u16)> = std::collections::HashSet::new();
        let mut next = ports.clone();
        loop {
            if next.len() > MAX_CANDIDATES {
                counted = self.exact_ports(None, from, to)?;
                counted.sort_by(order);
                break;
            }
            counted.extend(self.exact_ports(Some(&next), from, to)?);
            seen.extend(next.iter().map(|p| p.0));
            counted.sort_by(order);
            let Some(bound) = counted.get(limit - 1).map(rank) else {
                break;
            };
            if unread.is_some_and(|n| n >= bound) {
                ports = self.busiest_ports(from, to, Some(bound), None)?;
                unread = None;
            }
            next = ports
                .iter()
                .filter(|p| p.1 >= bound && !seen.contains(&p.0))
                .copied()
                .collect();
            if next.is_empty() {
                break;
            }
        }
        counted.truncate(limit);
        Ok(counted)
    }

    /// Ports and their events over `[from, to)`, busiest first (then by protocol
    /// and port): those with at least `at_least` events, the first `first`. Only
    /// what is asked crosses the wire: every port of 30 days is 130,964 rows of
    /// the demo network, whose reading cost the store about 0.25 s.
    fn busiest_ports(
        &self,
        from: Timestamp,
        to: Timestamp,
        at_least: Option<u64>,
        first: Option<usize>,
    ) -> Result<Vec<PortEvents>, StoreError> {
        let having = at_least.map_or(String::new(), |n| format!(" HAVING events >= {n}"));
        let first = first.map_or(String::new(), |n| {
            format!(
                " LIMIT {}",
                u64::try_from(n).unwrap_or(u64::MAX).min(i64::MAX as u64)
            )
        });
        let rows = self.dist_rows(&self.merged(
            "port_hours",
            "sumMerge(events) AS events",
            "sumMergeState(events) AS events",
            "sumState(toUInt64(count)) AS events",
            "",
            from,
            to,
            &format!("{having} ORDER BY events DESC, proto, port{first}"),
        ))?;
        rows.iter()
            .map(|r| {
                Ok((
                    (r.int::<u8>("proto")?, r.int::<u16>("port")?),
                    r.int::<u64>("events")?,
                ))
            })
            .collect()
    }

    /// The exact totals of some ports over `[from, to)`.
    fn exact_ports(
        &self,
        ports: Option<&[PortEvents]>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<PortTotals>, StoreError> {
        if ports.is_some_and(|p| p.is_empty()) {
            return Ok(Vec::new());
        }
        // All of them: no list (a list of every port would be a long query).
        let list = match ports {
            None => String::new(),
            Some(ports) => {
                let list: Vec<String> = ports
                    .iter()
                    .map(|((proto, port), _)| format!("({proto}, {port})"))
                    .collect();
                format!(" AND (proto, port) IN ({})", list.join(", "))
            }
        };
        let rows = self.dist_rows(&self.merged(
            "port_hours",
            "sumMerge(events) AS events, uniqExactMerge(sources) AS sources, \
             uniqExactMerge(sensors) AS sensors, uniqExactMerge(targets) AS targets",
            "sumMergeState(events) AS events, uniqExactMergeState(sources) AS sources, \
             uniqExactMergeState(sensors) AS sensors, uniqExactMergeState(targets) AS targets",
            "sumState(toUInt64(count)) AS events, uniqExactState(src, src_v4) AS sources, \
             uniqExactState(sensor) AS sensors, uniqExactState(dst, dst_v4) AS targets",
            &list,
            from,
            to,
            "",
        ))?;
        rows.iter().map(port_totals).collect()
    }

    /// [`Store::source_activity`](crate::EventStore::source_activity) from the
    /// cells, whatever the range.
    pub fn source_activity_from_cells(
        &self,
        src: IpAddr,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SourcePort>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let (b, v4) = ip16(src);
        let rows = self.dist_rows(&self.merged(
            "source_hours",
            "sumMerge(events) AS events, uniqExactMerge(sensors) AS sensors, \
             uniqExactMerge(targets) AS targets, minMerge(first_ms) AS first_ms, \
             maxMerge(last_ms) AS last_ms",
            "sumMergeState(events) AS events, uniqExactMergeState(sensors) AS sensors, \
             uniqExactMergeState(targets) AS targets, minMergeState(first_ms) AS first_ms, \
             maxMergeState(last_ms) AS last_ms",
            "sumState(toUInt64(count)) AS events, uniqExactState(sensor) AS sensors, \
             uniqExactState(dst, dst_v4) AS targets, minState(time_ms) AS first_ms, \
             maxState(time_ms) AS last_ms",
            &format!(" AND src = unhex({}) AND src_v4 = {v4}", quote(&hex(&b))),
            from,
            to,
            " ORDER BY events DESC, proto, port",
        ))?;
        rows.iter().map(source_port).collect()
    }
}

/// Reads from the raw events, kept beside the cells.
impl ClickHouseStore {
    /// Top ports read from the raw events (what the cells replaced): the baseline of
    /// the benches and what the tests compare the cells with.
    pub fn top_ports_from_events(
        &self,
        from: Timestamp,
        to: Timestamp,
        by: TopBy,
        limit: usize,
    ) -> Result<Vec<PortTotals>, StoreError> {
        let order = match by {
            TopBy::Events => "events",
            TopBy::Sources => "sources",
            TopBy::Sensors => "sensors",
        };
        let rows = self.dist_rows(&format!(
            "SELECT proto, dst_port AS port, sum(count) AS events, uniqExact(src, src_v4) AS sources,
                    uniqExact(sensor) AS sensors, uniqExact(dst, dst_v4) AS targets
             FROM {} WHERE scanned = 1 AND {} AND {}
             GROUP BY proto, port ORDER BY {order} DESC, events DESC, proto, port LIMIT {}",
            self.dist("events"),
            time_range("time", "time_ms", from, to),
            self.committed("batch_seq"),
            u64::try_from(limit).unwrap_or(u64::MAX).min(i64::MAX as u64)
        ))?;
        rows.iter().map(port_totals).collect()
    }

    /// A source's activity read from the raw events (the baseline, as above).
    pub fn source_activity_from_events(
        &self,
        src: IpAddr,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SourcePort>, StoreError> {
        let (b, v4) = ip16(src);
        let rows = self.dist_rows(&format!(
            "SELECT proto, dst_port AS port, sum(count) AS events, uniqExact(sensor) AS sensors,
                    uniqExact(dst, dst_v4) AS targets, min(time_ms) AS first_ms, max(time_ms) AS last_ms
             FROM {} WHERE src = unhex({}) AND src_v4 = {v4} AND scanned = 1 AND {} AND {}
             GROUP BY proto, port ORDER BY events DESC, proto, port",
            self.dist("events"),
            quote(&hex(&b)),
            time_range("time", "time_ms", from, to),
            self.committed("batch_seq"),
        ))?;
        rows.iter().map(source_port).collect()
    }
}

/// A row of per-port totals (`proto, port, events, sources, sensors, targets`).
fn port_totals(r: &Row) -> Result<PortTotals, StoreError> {
    Ok(PortTotals {
        proto: r.int("proto")?,
        port: r.int("port")?,
        events: r.int("events")?,
        sources: r.int("sources")?,
        sensors: r.int("sensors")?,
        targets: r.int("targets")?,
    })
}

/// A row of a source's activity on a port (`.., first_ms, last_ms`).
fn source_port(r: &Row) -> Result<SourcePort, StoreError> {
    Ok(SourcePort {
        proto: r.int("proto")?,
        port: r.int("port")?,
        events: r.int("events")?,
        sensors: r.int("sensors")?,
        targets: r.int("targets")?,
        first_seen: Timestamp(r.int("first_ms")?),
        last_seen: Timestamp(r.int("last_ms")?),
    })
}
