//! Raw events in the embedded store: a batch's events are kept as compressed
//! blocks (`scanwatch_event::block`), one per hour of event time the batch
//! touches, not as one row per event; a block spans less than an hour, so the
//! blocks of a range are found by their first event's time.
//!
//! What queries read instead of raw events — the per-port cells (`port_cells`) and
//! what a source did on each port of a day (`source_days`) — is
//! brought up to date in bulk: once [`AGGREGATE_EVERY`] events wait (by the commit
//! that brings them, or by `count_due` after the server answered it, when the
//! store defers its counting; and before retention), in transactions of up to
//! [`GROUP_BLOCKS`] blocks (and [`GROUP_LINES`] events) of the aggregates' file (`counts.rs`) that also move
//! its `counted` watermark (the last block counted). Merging a batch's few thousand scattered cells in its own
//! commit wrote a page per cell; in bulk each page is written once for many
//! batches. A query adds the blocks after the watermark from their events, so
//! every answer counts every committed batch exactly once, and a crash loses
//! nothing: the blocks are the record, the watermark says what is counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use scanwatch_aggregate::source_day::{PortActivity, PortKey};
use scanwatch_event::{Event, Timestamp};

use super::ip_bytes;
use super::port_cells::{self, ceil_to, floor_to, ip_key, DAY_MS, HOUR_MS};
use super::source_days;
use super::CELL_EXACT_LIMIT;
use crate::{SourcePort, StoreError};
use scanwatch_event::block::{decode_events, encode_events};

/// Version 6: the event blocks and the sources' days (the per-port cells are in
/// `port_cells`); the row-per-event table goes.
pub(crate) const SCHEMA_V6: &str = "
CREATE TABLE event_blocks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sensor_id   INTEGER NOT NULL REFERENCES sensors(id),
    min_time_ms INTEGER NOT NULL,
    max_time_ms INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    data        BLOB    NOT NULL
);
CREATE INDEX event_blocks_by_time ON event_blocks (min_time_ms);
CREATE TABLE aggregated (
    one       INTEGER PRIMARY KEY CHECK (one = 1),
    block_id  INTEGER NOT NULL,
    pruned_to INTEGER NOT NULL
);
INSERT INTO aggregated (one, block_id, pruned_to) VALUES (1, 0, -1152921504606846976);
CREATE TABLE source_days (
    src      BLOB    NOT NULL,
    day_ms   INTEGER NOT NULL,
    proto    INTEGER NOT NULL,
    port     INTEGER NOT NULL,
    events   INTEGER NOT NULL,
    first_in INTEGER NOT NULL,
    last_in  INTEGER NOT NULL,
    sensors  BLOB    NOT NULL,
    targets  BLOB    NOT NULL,
    PRIMARY KEY (src, day_ms, proto, port)
) WITHOUT ROWID;
";

/// Version 7 keys the source days by day first: a counting's new rows of a day
/// share pages (keyed by source first, each landed on a page of its own), and
/// retention deletes a prefix of the table instead of scanning it.
pub(crate) const SCHEMA_V7: &str = "
CREATE TABLE source_days_v7 (
    day_ms   INTEGER NOT NULL,
    src      BLOB    NOT NULL,
    proto    INTEGER NOT NULL,
    port     INTEGER NOT NULL,
    events   INTEGER NOT NULL,
    first_in INTEGER NOT NULL,
    last_in  INTEGER NOT NULL,
    sensors  BLOB    NOT NULL,
    targets  BLOB    NOT NULL,
    PRIMARY KEY (day_ms, src, proto, port)
) WITHOUT ROWID;
INSERT INTO source_days_v7 (day_ms, src, proto, port, events, first_in, last_in, sensors, targets)
    SELECT day_ms, src, proto, port, events, first_in, last_in, sensors, targets FROM source_days
    ORDER BY day_ms, src, proto, port;
DROP TABLE source_days;
ALTER TABLE source_days_v7 RENAME TO source_days;
";

/// Times outside this range are treated as its ends (no stored event is that far
/// from 1970, and the arithmetic on ranges cannot overflow).
const FAR: i64 = 1 << 60;

pub(crate) fn clamp(t: Timestamp) -> i64 {
    t.0.clamp(-FAR, FAR)
}

fn encode_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Encode(e.to_string())
}

/// How many events may wait in blocks after the watermark before they are
/// aggregated (a query reads these from raw blocks on top of the cells; while a
/// counting runs, more arrive: the server refuses batches once
/// `limits.max_uncounted_events` wait, `EventStore::uncounted`).
pub const AGGREGATE_EVERY: u64 = 20_000;

/// Stores a batch's events as blocks in the caller's transaction.
pub(crate) fn store(conn: &Connection, sensor_id: i64, events: &[Event]) -> Result<(), StoreError> {
    // One block per hour of event time, each in the batch's order (the hour as a
    // quotient: no product to overflow at the extremes of i64), cut at what a
    // block may hold when read back.
    let mut hours: Vec<Vec<Event>> = Vec::new();
    let mut at: HashMap<i64, usize> = HashMap::new();
    for e in events {
        let i = *at.entry(e.time.0.div_euclid(HOUR_MS)).or_insert_with(|| {
            hours.push(Vec::new());
            hours.len() - 1
        });
        hours[i].push(e.clone());
    }
    let hours: Vec<&[Event]> = hours
        .iter()
        .flat_map(|h| h.chunks(scanwatch_event::block::MAX_BLOCK_EVENTS))
        .collect();
    let mut put = conn.prepare_cached(
        "INSERT INTO event_blocks (sensor_id, min_time_ms, max_time_ms, events, data)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for block in hours {
        let (lo, hi) = block.iter().fold((i64::MAX, i64::MIN), |(lo, hi), e| {
            (lo.min(e.time.0), hi.max(e.time.0))
        });
        put.execute(params![
            sensor_id,
            lo,
            hi,
            block.len() as i64,
            encode_events(block)
        ])?;
    }
    Ok(())
}

/// The last block counted in the cells and source days.
pub(crate) fn watermark(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT block_id FROM counted WHERE one = 1", [], |r| {
            r.get(0)
        })?,
    )
}

/// Where retention last cut: the hour and day cells it cut through still count
/// what it deleted, so queries read from the events before the first whole hour
/// and whole day after it.
pub(crate) fn pruned_to(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT pruned_to FROM aggregated WHERE one = 1", [], |r| {
            r.get(0)
        })?,
    )
}

/// How many events wait after the watermark.
pub(crate) fn waiting(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT COALESCE(SUM(events), 0) FROM event_blocks
         WHERE id > (SELECT block_id FROM counted WHERE one = 1)",
        [],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// The next blocks after a watermark, counted in memory and not yet written
/// ([`prepare_next`]): a thread of the counter reads and counts them while
/// another writes the ones before (`counts.rs`).
pub(crate) struct Prepared {
    after: i64,
    last: i64,
    /// Whether as many blocks or events as a group holds came (so more may
    /// wait).
    full: bool,
    cells: port_cells::Pending,
    days: source_days::Pending,
    damaged: Vec<(i64, String)>,
}

/// The most blocks counted in one transaction of the aggregates' file.
pub(crate) const GROUP_BLOCKS: usize = 256;

/// The most events (as stored, each once) read into one group, past its first
/// block: a block holds up to a whole batch (`max_events_per_batch`, 100,000
/// by default), so 256 of them could be 25.6 M events, and the counts in memory
/// grow with the distinct sources and ports among them (a few hundred bytes
/// each; two groups are in memory when a backlog is read ahead). A whole
/// store counted again at open (a lost `counts.db`, a recount) would not fit.
/// 262,144 is 256 blocks of 1,024: a group of the batches of 1,000 the ingest
/// bench sends is cut by its blocks, as before.
pub(crate) const GROUP_LINES: i64 = 262_144;

/// How much one group reads: at most `blocks` blocks, and no more blocks once
/// it holds `lines` events.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GroupLimit {
    pub blocks: usize,
    pub lines: i64,
}

impl GroupLimit {
    pub(crate) const DEFAULT: GroupLimit = GroupLimit {
        blocks: GROUP_BLOCKS,
        lines: GROUP_LINES,
    };
}

/// Reads the next blocks after `after` (up to `limit`, [`GroupLimit::DEFAULT`]
/// but in tests, so memory holds a bounded part and the transaction that writes
/// them holds the aggregates' lock a bounded time) and counts them in memory.
/// `None` when no block waits. `conn` reads the store's file (as
/// `event_blocks`). Blocks that do not decode count as nothing and are listed
/// for [`Prepared::write`]'s caller to set aside.
pub(crate) fn prepare_next(
    conn: &Connection,
    after: i64,
    limit: GroupLimit,
) -> Result<Option<Prepared>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT id, sensor_id, data, events FROM event_blocks WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let mut cells = port_cells::Pending::default();
    // Keyed by addresses a sender chooses: the keyed hasher (`keyed`), which
    // is also quicker than the standard library's SipHash.
    let mut days = source_days::Pending::default();
    let mut last = None;
    let mut rows = st.query([after, i64::try_from(limit.blocks).unwrap_or(i64::MAX)])?;
    let mut damaged = Vec::new();
    let (mut blocks, mut lines, mut full) = (0, 0i64, false);
    while let Some(r) = rows.next()? {
        if lines >= limit.lines {
            // Cut by its events: more wait.
            full = true;
            break;
        }
        let (id, sensor): (i64, i64) = (r.get(0)?, r.get(1)?);
        last = Some(id);
        blocks += 1;
        lines = lines.saturating_add(r.get::<_, i64>(3)?.max(1));
        let decoded = r
            .get_ref(2)?
            .as_blob()
            .map_err(encode_error)
            .and_then(|data| decode_events(data).map_err(encode_error));
        let events = match decoded {
            Ok(events) => events,
            Err(e) => {
                damaged.push((id, e.to_string()));
                continue;
            }
        };
        for e in events {
            if let Some((proto, port)) = e.scanned_port() {
                cells.add(sensor, &e);
                source_days::add(&mut days, sensor, ip_key(e.dst), &e, proto.number(), port);
            }
        }
    }
    Ok(last.map(|last| Prepared {
        after,
        last,
        full: full || blocks >= limit.blocks,
        cells,
        days,
        damaged,
    }))
}

impl Prepared {
    /// The watermark these blocks follow.
    pub(crate) fn after(&self) -> i64 {
        self.after
    }

    /// The last of these blocks.
    pub(crate) fn last(&self) -> i64 {
        self.last
    }

    /// Whether there were as many blocks as a group holds (so more may wait).
    pub(crate) fn is_full(&self) -> bool {
        self.full
    }

    /// Writes these counts into the cells and source days, in the caller's
    /// transaction of the aggregates' file, whose watermark it has checked is
    /// [`Prepared::after`], and moves the watermark past them. Returns the blocks
    /// that do not decode, with why (counted as nothing, passed by the
    /// watermark), for the caller to set aside in the store's file before it
    /// commits.
    pub(crate) fn write(
        self,
        conn: &Connection,
        pack_ports: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.cells.write(conn)?;
        source_days::merge(conn, self.days, pack_ports)?;
        conn.execute(
            "UPDATE counted SET block_id = ?1 WHERE one = 1",
            [self.last],
        )?;
        Ok(self.damaged)
    }
}

/// Moves a stored block that does not decode (damaged on disk, or written behind
/// the store's back) into `damaged_blocks`, with why: counting, retention and
/// queries go on without it (its events cannot be read), and it is kept for
/// whoever looks into it.
pub(crate) fn set_aside(conn: &Connection, id: i64, why: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO damaged_blocks
             (id, sensor_id, min_time_ms, max_time_ms, events, data, error)
         SELECT id, sensor_id, min_time_ms, max_time_ms, events, data, ?2
         FROM event_blocks WHERE id = ?1",
        params![id, why],
    )?;
    conn.execute("DELETE FROM event_blocks WHERE id = ?1", [id])?;
    tracing::warn!(
        block = id,
        error = why,
        "a stored event block does not decode: set aside in damaged_blocks"
    );
    Ok(())
}

/// How many stored blocks were set aside as damaged.
pub(crate) fn damaged(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM damaged_blocks", [], |r| r.get(0))?;
    Ok(n as u64)
}

/// Hands every event of the blocks after the watermark `mark` with time in
/// `[from, to)` to `each`, with its sensor id.
pub(crate) fn scan_waiting(
    conn: &Connection,
    cache: Option<&Mutex<BlockCache>>,
    mark: i64,
    from: i64,
    to: i64,
    each: impl FnMut(i64, &Event),
) -> Result<(), StoreError> {
    scan_query(
        conn,
        cache,
        "SELECT id, sensor_id, events, min_time_ms, data FROM event_blocks
         WHERE id > ?1 AND min_time_ms < ?2 AND max_time_ms >= ?3 ORDER BY id",
        mark,
        from,
        to,
        each,
    )
}

/// Hands every stored event with time in `[from, to)` to `each` with its sensor
/// id, block by block in the order they were stored, each block in its order.
pub(crate) fn scan(
    conn: &Connection,
    cache: Option<&Mutex<BlockCache>>,
    from: i64,
    to: i64,
    each: impl FnMut(i64, &Event),
) -> Result<(), StoreError> {
    // A block spans less than an hour: one that reaches `from` starts after
    // `from - 1 h`.
    scan_query(
        conn,
        cache,
        "SELECT id, sensor_id, events, min_time_ms, data FROM event_blocks
         WHERE min_time_ms > ?1 AND min_time_ms < ?2 AND max_time_ms >= ?3 ORDER BY id",
        from.saturating_sub(HOUR_MS),
        from,
        to,
        each,
    )
}

/// Decoded event blocks a connection read lately, so the queries that read the
/// same blocks again (the blocks not yet counted into the cells, and the hours at
/// a range's ends: every `topports` reads them) decode each once. Keyed by the
/// block's id with its event count and first time: retention trims a block in
/// place (fewer events, a later first time), which is then read again. Bounded by
/// [`BLOCK_CACHE_EVENTS`]; the oldest blocks go first.
#[derive(Debug, Default)]
pub(crate) struct BlockCache {
    blocks: BTreeMap<i64, (i64, i64, Arc<Vec<Event>>)>,
    events: usize,
}

/// Events a connection keeps decoded (about 7 MiB).
const BLOCK_CACHE_EVENTS: usize = 100_000;

impl BlockCache {
    fn get(&self, id: i64, events: i64, min_time: i64) -> Option<Arc<Vec<Event>>> {
        match self.blocks.get(&id) {
            Some((n, t, ev)) if *n == events && *t == min_time => Some(ev.clone()),
            _ => None,
        }
    }

    fn put(&mut self, id: i64, events: i64, min_time: i64, decoded: Arc<Vec<Event>>) {
        if let Some((_, _, old)) = self.blocks.remove(&id) {
            self.events -= old.len();
        }
        if decoded.len() > BLOCK_CACHE_EVENTS {
            return;
        }
        while self.events + decoded.len() > BLOCK_CACHE_EVENTS {
            match self.blocks.pop_first() {
                Some((_, (_, _, old))) => self.events -= old.len(),
                None => break,
            }
        }
        self.events += decoded.len();
        self.blocks.insert(id, (events, min_time, decoded));
    }
}

/// Runs a query for `(id, sensor_id, events, min_time_ms, data)` of blocks (bound
/// to `first`, `to`, `from`) and hands each of their events with time in
/// `[from, to)` to `each`, decoding a block only when `cache` does not hold it. A
/// block that does not decode is left out with a warning (set aside by the next
/// counting if it waits to be counted, by retention if the cut runs through it:
/// `set_aside`); the other blocks are read.
fn scan_query(
    conn: &Connection,
    cache: Option<&Mutex<BlockCache>>,
    sql: &str,
    first: i64,
    from: i64,
    to: i64,
    mut each: impl FnMut(i64, &Event),
) -> Result<(), StoreError> {
    if from >= to {
        return Ok(());
    }
    let mut st = conn.prepare_cached(sql)?;
    let mut rows = st.query(params![first, to, from])?;
    while let Some(r) = rows.next()? {
        let (id, sensor, n, min_time): (i64, i64, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let cached = cache.and_then(|c| c.lock().ok()?.get(id, n, min_time));
        let decoded = match cached {
            Some(events) => Ok(events),
            // The blob is read from the row only here (on a miss).
            None => r
                .get_ref(4)?
                .as_blob()
                .map_err(encode_error)
                .and_then(|data| decode_events(data).map_err(encode_error))
                .map(|events| {
                    let events = Arc::new(events);
                    if let Some(mut c) = cache.and_then(|c| c.lock().ok()) {
                        c.put(id, n, min_time, events.clone());
                    }
                    events
                }),
        };
        match decoded {
            Ok(events) => {
                for e in events.iter().filter(|e| e.time.0 >= from && e.time.0 < to) {
                    each(sensor, e);
                }
            }
            Err(e) => {
                tracing::warn!(block = id, error = %e, "a stored event block does not decode: left out")
            }
        }
    }
    Ok(())
}

/// Stored events with time in `[from, to)` with their sensor's name, in time
/// order (the order they were stored in among equal times).
pub(crate) fn between(
    conn: &Connection,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(String, Event)>, StoreError> {
    named_in_time_order(conn, |conn, out| {
        scan(conn, None, clamp(from), clamp(to), |s, e| {
            out.push((s, e.clone()))
        })
    })
}

/// The id of the newest block ever stored (0 before the first): blocks stored
/// later have larger ids (`AUTOINCREMENT` never reuses one, and retention trims a
/// block in place). `None` for a table made without `AUTOINCREMENT` (by a
/// development build of version 6), whose ids are reused after retention.
pub(crate) fn mark(conn: &Connection) -> Result<Option<u64>, StoreError> {
    let sql: String = conn
        .prepare_cached(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'event_blocks'",
        )?
        .query_row([], |r| r.get(0))?;
    if !sql.to_ascii_uppercase().contains("AUTOINCREMENT") {
        return Ok(None);
    }
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'event_blocks'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    u64::try_from(seq.unwrap_or(0))
        .map(Some)
        .map_err(encode_error)
}

/// The events of the blocks stored after `mark` with their sensor's name, in time
/// order (the order they were stored in among equal times).
pub(crate) fn after(conn: &Connection, mark: u64) -> Result<Vec<(String, Event)>, StoreError> {
    let mark = i64::try_from(mark).map_err(encode_error)?;
    named_in_time_order(conn, |conn, out| {
        scan_waiting(conn, None, mark, i64::MIN, i64::MAX, |s, e| {
            out.push((s, e.clone()))
        })
    })
}

/// The events `collect` reads (with sensor ids), sorted by time (stable) and named,
/// the names and the events read in one snapshot.
fn named_in_time_order(
    conn: &Connection,
    collect: impl FnOnce(&Connection, &mut Vec<(i64, Event)>) -> Result<(), StoreError>,
) -> Result<Vec<(String, Event)>, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let conn: &Connection = &tx;
    let names: HashMap<i64, String> = {
        let mut st = conn.prepare_cached("SELECT id, name FROM sensors")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut out: Vec<(i64, Event)> = Vec::new();
    collect(conn, &mut out)?;
    // Stable: equal times keep the order they were stored in.
    out.sort_by_key(|(_, e)| e.time);
    out.into_iter()
        .map(|(s, e)| {
            let name = names
                .get(&s)
                .cloned()
                .ok_or_else(|| StoreError::Encode(format!("events of unknown sensor id {s}")))?;
            Ok((name, e))
        })
        .collect()
}

/// What one source did over `[from, to)`, per port, busiest first: whole days
/// from its summaries (and the blocks not yet counted into them), the parts of a
/// day at the ends from the events.
pub(crate) fn source_activity(
    conn: &Connection,
    store_file: &std::path::Path,
    cache: &Mutex<BlockCache>,
    src: std::net::IpAddr,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<SourcePort>, StoreError> {
    let (from, to) = (clamp(from), clamp(to));
    // One snapshot: the summaries and the watermark they were counted to.
    let ports = super::recount::in_snapshot(conn, store_file, |conn, mark| {
        source_ports_in(conn, mark, cache, src, from, to)
    })?;
    let mut out: Vec<SourcePort> = ports
        .into_iter()
        .map(|((proto, port), a)| SourcePort {
            proto,
            port,
            events: a.events,
            // Held to the events as stored (far above them when a sender chose
            // the addresses: docs/security.md).
            sensors: a.held(&a.sensors),
            targets: a.held(&a.targets),
            first_seen: Timestamp(a.first),
            last_seen: Timestamp(a.last),
        })
        .collect();
    out.sort_by(|a, b| {
        b.events
            .cmp(&a.events)
            .then(a.proto.cmp(&b.proto))
            .then(a.port.cmp(&b.port))
    });
    Ok(out)
}

/// A source's ports over `[from, to)` in one snapshot whose aggregates are counted
/// to `mark`.
fn source_ports_in(
    conn: &Connection,
    mark: i64,
    cache: &Mutex<BlockCache>,
    src: std::net::IpAddr,
    from: i64,
    to: i64,
) -> Result<HashMap<PortKey, PortActivity>, StoreError> {
    let mut ports: HashMap<PortKey, PortActivity> = HashMap::new();
    // The day retention cut through is read from its events.
    let start = from.max(pruned_to(conn)?);
    let (d0, d1) = (ceil_to(start, DAY_MS), floor_to(to, DAY_MS));
    let ends = if d0 < d1 {
        let key = ip_bytes(src);
        // Only the days the tables hold, each found by a seek on the key's prefix
        // (the tables' keys start with the day: the rows a counting writes share
        // pages, and retention deletes a prefix).
        let mut at = d0;
        while let Some(day) = source_days::next_day(conn, at, d1)? {
            source_days::read_day(conn, day, &key, &mut ports)?;
            at = day.saturating_add(1);
        }
        vec![(from, d0), (d1, to)]
    } else {
        vec![(from, to)]
    };
    let mut count = |sensor: i64, e: &Event| {
        if e.src == src {
            if let Some((proto, port)) = e.scanned_port() {
                ports.entry((proto.number(), port)).or_default().add(
                    sensor as u64,
                    ip_key(e.dst),
                    e.time.0,
                    e.count,
                    CELL_EXACT_LIMIT,
                );
            }
        }
    };
    if d0 < d1 {
        scan_waiting(conn, Some(cache), mark, d0, d1, &mut count)?;
    }
    for (a, b) in ends {
        scan(conn, Some(cache), a, b, &mut count)?;
    }
    Ok(ports)
}

/// Retention in the store's file: the events before `cut` go (blocks wholly before
/// it deleted, a block it cuts through written again with what is left) and
/// `pruned_to` moves; the caller has counted everything first and deletes the
/// source days and port cells wholly before the cut after (`counts.rs`). The cells
/// the cut runs through are left as they are and never read (`pruned_to`):
/// counting the day again took 14.5 s with 30 days loaded, in the writer's
/// transaction, every hour. Returns how many events were deleted.
pub(crate) fn prune_blocks(conn: &Connection, cut: i64) -> Result<u64, StoreError> {
    let mut deleted: i64 = conn.query_row(
        "SELECT COALESCE(SUM(events), 0) FROM event_blocks WHERE min_time_ms < ?1 AND max_time_ms < ?1",
        [cut],
        |r| r.get(0),
    )?;
    // (`min_time_ms < cut` is implied; it lets the time index find the rows.)
    conn.execute(
        "DELETE FROM event_blocks WHERE min_time_ms < ?1 AND max_time_ms < ?1",
        [cut],
    )?;
    let cut_through: Vec<(i64, Vec<u8>)> = {
        let mut st = conn.prepare(
            "SELECT id, data FROM event_blocks WHERE min_time_ms < ?1 AND max_time_ms >= ?1",
        )?;
        let rows = st.query_map([cut], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, data) in cut_through {
        let mut events = match decode_events(&data) {
            Ok(events) => events,
            Err(e) => {
                set_aside(conn, id, &e.to_string())?;
                continue;
            }
        };
        let before = events.len();
        events.retain(|e| e.time.0 >= cut);
        deleted += (before - events.len()) as i64;
        let lo = events.iter().map(|e| e.time.0).min().unwrap_or(cut);
        conn.execute(
            "UPDATE event_blocks SET min_time_ms = ?2, events = ?3, data = ?4 WHERE id = ?1",
            params![id, lo, events.len() as i64, encode_events(&events)],
        )?;
    }
    conn.execute(
        "UPDATE aggregated SET pruned_to = MAX(pruned_to, ?1) WHERE one = 1",
        [cut],
    )?;
    Ok(deleted as u64)
}

/// Moves the row-per-event table of versions 1 to 5 into blocks (runs of one
/// sensor's events in the order they were stored, cut at each hour and every
/// 20,000 events), and drops it; the blocks are counted into the aggregates once
/// the store is open.
pub(crate) fn migrate_rows(conn: &Connection) -> Result<(), StoreError> {
    const RUN: usize = 20_000;
    let mut run: Vec<Event> = Vec::new();
    let mut run_sensor = None;
    {
        let mut st = conn.prepare(
            "SELECT sensor_id, time_ms, proto, src, dst, src_port, dst_port, flags, icmp_type, direction, action, count
             FROM events ORDER BY rowid",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let sensor: i64 = r.get(0)?;
            let e = super::event_row(r, 1)?;
            if run_sensor != Some(sensor) || run.len() >= RUN {
                if let Some(s) = run_sensor {
                    store(conn, s, &run)?;
                }
                run.clear();
                run_sensor = Some(sensor);
            }
            run.push(e);
        }
    }
    if let Some(s) = run_sensor {
        store(conn, s, &run)?;
    }
    // Counted into the aggregates once the store is open (they wait meanwhile).
    conn.execute_batch("DROP TABLE events;")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SrcBytes;
    use scanwatch_event::{Action, Direction, Protocol, TcpFlags};

    /// Addresses sorted as `SrcBytes` come out as SQLite sorts their blobs (the
    /// table's key order), and each is its 4 or 16 octets.
    #[test]
    fn source_bytes_sort_as_sqlite_sorts_the_blobs() {
        let ips: Vec<std::net::IpAddr> = [
            "192.0.2.1",
            "192.0.2.0",
            "0.0.0.0",
            "255.255.255.255",
            "c000:201::",
            "c000:201::1",
            "c000:200::",
            "::",
            "::1",
            "ffff::",
            "10.0.0.1",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (b BLOB)").unwrap();
        for ip in &ips {
            let octets = match ip {
                std::net::IpAddr::V4(a) => a.octets().to_vec(),
                std::net::IpAddr::V6(a) => a.octets().to_vec(),
            };
            assert_eq!(SrcBytes::of(*ip).as_slice(), octets.as_slice());
            conn.execute("INSERT INTO t VALUES (?1)", [ip_bytes(*ip)])
                .unwrap();
        }
        let mut st = conn.prepare("SELECT b FROM t ORDER BY b").unwrap();
        let by_sqlite: Vec<Vec<u8>> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut ours: Vec<SrcBytes> = ips.iter().map(|ip| SrcBytes::of(*ip)).collect();
        ours.sort();
        let ours: Vec<Vec<u8>> = ours.iter().map(|b| b.as_slice().to_vec()).collect();
        assert_eq!(ours, by_sqlite);
    }

    fn events(n: usize) -> Arc<Vec<Event>> {
        Arc::new(
            (0..n)
                .map(|i| Event {
                    time: Timestamp(i as i64),
                    proto: Protocol::Tcp,
                    src: "192.0.2.1"
                        .parse()
                        .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
                    dst: std::net::Ipv4Addr::LOCALHOST.into(),
                    src_port: None,
                    dst_port: Some(22),
                    flags: TcpFlags(TcpFlags::SYN),
                    flags_known: true,
                    icmp_type: None,
                    direction: Direction::Inbound,
                    action: Action::Drop,
                    count: 1,
                })
                .collect(),
        )
    }

    #[test]
    fn the_block_cache_misses_a_trimmed_block_and_stays_bounded() {
        let mut c = BlockCache::default();
        c.put(1, 3, 100, events(3));
        assert_eq!(c.get(1, 3, 100).map(|e| e.len()), Some(3));
        // Trimmed by retention: fewer events, a later first time.
        assert!(c.get(1, 2, 150).is_none());
        assert!(c.get(2, 3, 100).is_none());
        // Put again under the same id: replaced, counted once.
        c.put(1, 2, 150, events(2));
        assert_eq!(c.events, 2);
        // Over the bound, the oldest ids go first.
        c.put(5, 60_000, 0, events(60_000));
        c.put(7, 60_000, 0, events(60_000));
        assert!(c.get(1, 2, 150).is_none() && c.get(5, 60_000, 0).is_none());
        assert!(c.get(7, 60_000, 0).is_some());
        assert!(c.events <= BLOCK_CACHE_EVENTS);
        // A block bigger than the bound is not kept.
        c.put(9, 1, 0, events(BLOCK_CACHE_EVENTS + 1));
        assert!(c.get(9, 1, 0).is_none());
        assert_eq!(c.events, 60_000);
    }
}
