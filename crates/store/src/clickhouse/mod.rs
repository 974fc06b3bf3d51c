//! ClickHouse behind the [`Store`] trait: the scale-out store, one or several servers
//! (one per shard) spoken to over ClickHouse's HTTP interface.
//!
//! # Transport
//!
//! Plain HTTP with `ureq`, not the `clickhouse` crate: the [`Store`] trait is
//! synchronous and that crate is async-only (it would need a runtime per store or a
//! `block_on` in every call), and against 18.16 it needs `with_validation(false)`
//! since 18.16 has no `RowBinaryWithNamesAndTypes` format. Reads are
//! `FORMAT JSONEachRow` (64-bit integers arrive quoted; both forms are accepted),
//! hot inserts (events, windows, batch markers) are `RowBinary` (the scale tests
//! measured ~580k rows/s against ~410k for JSONEachRow), and inserts into the small
//! control tables are `JSONEachRow` (named fields). ClickHouse 18.16 has no query
//! parameters, so every string that goes into SQL text goes through [`quote`];
//! identifiers (database, cluster) are validated by [`ClickHouseConfig::validate`].
//!
//! # Schema
//!
//! Accepted by ClickHouse 18.16.1 (checked by the tests) and written with syntax that
//! current releases accept too: the `ENGINE = X PARTITION BY .. ORDER BY ..` form of
//! the MergeTree family (the old `MergeTree(date, key, 8192)` form is refused by
//! default since 23.x), `DateTime('UTC')` plus an `Int64` millisecond column (no
//! `DateTime64`, which came in 20.1), addresses as `FixedString(16)` with a flag for
//! IPv4 (no `IPv4`/`IPv6` types, 19.3), `ReplacingMergeTree(version)`,
//! `AggregatingMergeTree` with `sum`/`max`/`min`/`uniqExact` states and their
//! `-Merge`/`-MergeState` combinators, `Distributed(cluster, db, table)`, one level of
//! `MATERIALIZED VIEW .. TO` (18.16 does not cascade views, so none reads another),
//! and the functions `argMax`, `tuple`/`tupleElement`, `uniqExact`, `toDate`,
//! `unhex`/`hex`. Not used: TTL (19.6), `ON CLUSTER` (needs ZooKeeper), `FINAL` (see
//! below), query parameters.
//!
//! * **Raw events** (`events`): MergeTree partitioned by day (`toDate(time)`),
//!   `ORDER BY (proto, dst_port, time)`. Retention is [`Store::prune`] dropping whole
//!   day partitions (`ALTER TABLE .. DROP PARTITION ID`), on each shard's local table,
//!   because 18.16 has no TTL: so ClickHouse prunes by whole UTC days, keeping the
//!   day that contains the cutoff (SQLite deletes to the millisecond). Each event
//!   carries its batch id and the batch's commit sequence, so `events_between` keeps
//!   SQLite's order (time, then commit order, then position in the batch).
//! * **Cells** (`port_hours`, `source_hours`): per commit, hour and port (and source)
//!   `sum`/`uniqExact`/`min`/`max` states, made from every insert into the events by
//!   a materialized view, counted under the same commit point, pruned with the
//!   events; top ports and a source's activity over more than two days read them
//!   ([`cells`] has the rules).
//! * **Batch markers** (`batches`): one row per accepted (sensor, batch id), beside the
//!   batch's events on the same shard, partitioned by the day received (pruned with
//!   the events, like SQLite's `received_ms < events_before`).
//! * **Windows** (`windows`): ReplacingMergeTree keyed by (proto, port, window start)
//!   with a version column, partitioned by day; re-writing a window inserts a newer
//!   version. Reads take `argMax(.., version)` per key, which is exact whether or not
//!   background merges have run. Pruned by day partitions like the events.
//! * **Control tables** (sensors, heartbeats, sensor counters, API tokens, users,
//!   sessions, sink state, dead letters, context items, alerts): small, on the FIRST
//!   server only (one small control database, so every collector sees every sensor
//!   and token). ReplacingMergeTree with a `version` column; an update, revocation or
//!   deletion inserts a newer version (deletions as tombstones, `deleted = 1`), and
//!   reads take `argMax(tuple(..), version)` per key and filter afterwards. Not
//!   `FINAL`: a `WHERE` on a non-key column may be applied before `FINAL` collapses
//!   the versions (e.g. when moved to `PREWHERE`), which would resurrect old rows;
//!   `argMax` and a filter on its result are exact on every version. Sensor counters
//!   (batches, events, last seen) are an `AggregatingMergeTree` of `sum`/`max`
//!   states, so concurrent collectors add to them without read-modify-write.
//!
//! With `cluster` set, every server of the list is one shard of that cluster, in
//! shard order (checked against `system.clusters` at open). Data tables are
//! `<name>_local` on every server plus `Distributed` tables over them for reads; the
//! store writes into the local tables itself: a batch (events and marker) goes to the
//! shard picked by a hash of (sensor, batch id), so one batch is one block on one
//! server, and a window to the shard picked by a hash of (proto, port), so its
//! versions meet. DDL runs on every server in turn (no `ON CLUSTER` without ZooKeeper).
//!
//! # Versions and the clock
//!
//! Row versions are a hybrid logical clock: `max(wall clock in ms × 1024, last + 1)`,
//! seeded at open from the largest stored version. This is the one place the store
//! reads the clock, and only to order writes (which of two versions is newer, also
//! between two collectors); no time the store reports comes from it.
//!
//! # Exactly once, and the races
//!
//! `commit_batch` checks the batch marker, inserts the events in ONE insert (one
//! server; the events' parts and the cells the views make of them are written one
//! after the other, so a failure can leave some of them, all counted under the
//! marker only), then the marker, then the sensor counters. ClickHouse has no transaction across these inserts, so:
//! * two writers committing the same batch at the same moment could both pass the
//!   check; this is safe when one consumer owns a batch at a time, which the bus
//!   (one collector per sensor connection, or a JetStream consumer) guarantees;
//! * a crash between the events insert and the marker insert leaves the events
//!   without a marker: the resent batch is stored again. The events carry their batch
//!   id, so such duplicates can be found (`GROUP BY sensor, batch_id`).
//!
//! Names of sensors, API tokens and users are checked before insertion; two admins
//! creating the same name at the same moment could both succeed (the newest version
//! wins). Alert ids are a 53-bit hash of (kind, proto, port, window start), so the
//! same warning gets the same id on every collector without coordination; a
//! collision (negligible: ~n²/2⁵⁴) is detected and the next free id taken.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::{
    hash_token, new_token, valid_sensor_name, AggregateCommit, AlertRow, ApiTokenRecord, AuthStore,
    BatchOutcome, CheckpointStore, ContextItem, ContextKind, ContextStore, DeadLetter, EventStore,
    ImportCounts, PartialRow, PortTotals, Role, SensorRecord, SensorStore, SessionRecord,
    SinkStore, SourcePort, StoreError, StoredCheckpoint, TopBy, UserRecord, WarningStore,
    WindowRow, WindowStore,
};

/// Version of the ClickHouse schema, recorded in `schema_version` on every server.
pub const SCHEMA_VERSION: u32 = 3;

/// Seconds stored in `DateTime` columns are clamped to [0, 2100-01-01): 18.16 wraps
/// larger values. Exact times are in the `Int64` millisecond columns; the `DateTime`
/// columns only choose partitions and narrow scans.
const MAX_SECS: i64 = 4_102_444_800;

pub mod cells;
mod config;
mod http;
mod queries;
mod rows;
mod schema;
mod sql;

use self::{http::*, rows::*, sql::*};
pub use config::ClickHouseConfig;
pub use sql::quote;

/// FNV-1a: a stable hash (across processes and builds) for choosing shards.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The id of a warning: 53 bits (exact in JSON numbers) of SHA-256 of its key, never 0.
fn alert_id(kind: &str, proto: u8, port: u16, window_start: Timestamp) -> i64 {
    let d = Sha256::digest(format!("{kind}\0{proto}\0{port}\0{}", window_start.0).as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    let id = (u64::from_be_bytes(b) & ((1 << 53) - 1)) as i64;
    id.max(1)
}

/// ClickHouse behind the [`Store`] trait.
pub struct ClickHouseStore {
    http: Http,
    db: String,
    cluster: Option<String>,
    /// With a cluster: one per shard, in shard order. Without: the one in use.
    servers: Vec<String>,
    /// The last row version handed out (see the module docs).
    last_version: u64,
    /// Commits up to this seq were stored before the cells existed (an upgraded
    /// database): their events are read raw. 0: every commit has cells.
    cells_after: u64,
}

impl fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseStore")
            .field("servers", &self.servers)
            .field("database", &self.db)
            .field("cluster", &self.cluster)
            .finish()
    }
}

impl ClickHouseStore {
    /// Connects, creates the database and tables if missing (on every server when
    /// `cluster` is set), and checks the schema version.
    pub fn open(cfg: &ClickHouseConfig) -> Result<ClickHouseStore, StoreError> {
        cfg.validate()?;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout()?))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("scanwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let auth = cfg.user.as_ref().map(|u| {
            let pw = cfg.password.as_deref().unwrap_or("");
            format!("Basic {}", base64(format!("{u}:{pw}").as_bytes()))
        });
        let mut store = ClickHouseStore {
            http: Http { agent, auth },
            db: cfg.database.clone(),
            cluster: cfg.cluster.clone(),
            servers: Vec::new(),
            last_version: 0,
            cells_after: 0,
        };
        let urls = cfg.urls();
        match &cfg.cluster {
            Some(cluster) => {
                for u in &urls {
                    store.http.post(u, None, b"SELECT 1").map_err(|e| match e {
                        Fail::Unreachable(m) | Fail::Refused(m) => err(format!(
                            "every server of cluster {cluster} must answer at open: {m}"
                        )),
                    })?;
                }
                store.servers = urls;
                store.check_cluster(cluster)?;
            }
            None => {
                let mut last = String::new();
                for u in &urls {
                    match store.http.post(u, None, b"SELECT 1") {
                        Ok(_) => {
                            store.servers = vec![u.clone()];
                            break;
                        }
                        Err(Fail::Unreachable(m) | Fail::Refused(m)) => last = m,
                    }
                }
                if store.servers.is_empty() {
                    return Err(err(format!("no server of {:?} answered: {last}", cfg.url)));
                }
            }
        }
        for i in 0..store.servers.len() {
            store.create_data_tables(i)?;
        }
        store.cells_after = store.read_cells_after()?;
        store.create_control_tables()?;
        store.seed_version()?;
        Ok(store)
    }

    /// The servers in use: with a cluster, one per shard (the first holds the control
    /// tables); without, the one that answered first.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// Each server of the list must be the shard of its position in the cluster.
    fn check_cluster(&self, cluster: &str) -> Result<(), StoreError> {
        let n = self.servers.len();
        for i in 0..n {
            let rows = self.rows(
                i,
                &format!(
                    "SELECT shard_num, is_local FROM system.clusters WHERE cluster = {}",
                    quote(cluster)
                ),
            )?;
            let shards: std::collections::BTreeSet<u32> = rows
                .iter()
                .map(|r| r.int::<u32>("shard_num"))
                .collect::<Result<_, _>>()?;
            if shards.len() != n {
                return Err(err(format!(
                    "{}: cluster {cluster} has {} shard(s) but the url lists {n} server(s); list one server per shard, in shard order",
                    self.servers[i],
                    shards.len()
                )));
            }
            let mut local = Vec::new();
            for r in &rows {
                if r.int::<u8>("is_local")? == 1 {
                    local.push(r.int::<u32>("shard_num")?);
                }
            }
            if local != [i as u32 + 1] {
                return Err(err(format!(
                    "{} is server {} of the url list but shard {local:?} of cluster {cluster}; list one server per shard, in shard order",
                    self.servers[i],
                    i + 1
                )));
            }
        }
        Ok(())
    }

    fn clustered(&self) -> bool {
        self.cluster.is_some()
    }

    /// The table a writer uses on one server (the local part with a cluster).
    fn local(&self, name: &str) -> String {
        if self.clustered() {
            format!("{}.{name}_local", self.db)
        } else {
            format!("{}.{name}", self.db)
        }
    }

    /// The table readers use (the Distributed table with a cluster).
    fn dist(&self, name: &str) -> String {
        format!("{}.{name}", self.db)
    }

    /// A control table (first server only).
    fn ctl(&self, name: &str) -> String {
        format!("{}.{name}", self.db)
    }

    fn exec(&self, server: usize, sql: &str) -> Result<String, StoreError> {
        let base = self
            .servers
            .get(server)
            .ok_or_else(|| err(format!("no server {server}")))?;
        Ok(self.http.post(base, None, sql.as_bytes())?)
    }

    fn parse_rows(text: &str) -> Result<Vec<Row>, StoreError> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(Value::Object(m)) => Ok(Row(m)),
                Ok(_) => Err(err("an answer row is not a JSON object")),
                Err(e) => Err(err(format!("cannot read an answer row: {e}"))),
            })
            .collect()
    }

    fn rows(&self, server: usize, sql: &str) -> Result<Vec<Row>, StoreError> {
        Self::parse_rows(&self.exec(server, &format!("{sql} FORMAT JSONEachRow"))?)
    }

    /// Rows from the control tables.
    fn ctl_rows(&self, sql: &str) -> Result<Vec<Row>, StoreError> {
        self.rows(0, sql)
    }

    /// Rows through the Distributed tables: any server can answer, tried in order.
    fn dist_rows(&self, sql: &str) -> Result<Vec<Row>, StoreError> {
        let body = format!("{sql} FORMAT JSONEachRow");
        let mut last = String::new();
        for base in &self.servers {
            match self.http.post(base, None, body.as_bytes()) {
                Ok(t) => return Self::parse_rows(&t),
                Err(Fail::Refused(m)) => return Err(err(m)),
                Err(Fail::Unreachable(m)) => last = m,
            }
        }
        Err(err(last))
    }

    fn insert_rowbinary(
        &self,
        server: usize,
        table: &str,
        columns: &str,
        rb: Rb,
    ) -> Result<(), StoreError> {
        let base = self
            .servers
            .get(server)
            .ok_or_else(|| err(format!("no server {server}")))?;
        let q = format!("INSERT INTO {table} ({columns}) FORMAT RowBinary");
        self.http.post(base, Some(&q), &rb.0)?;
        Ok(())
    }

    /// Inserts JSON objects into a control table, in one insert.
    fn insert_json(&self, table: &str, rows: &[Value]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = String::new();
        for r in rows {
            body.push_str(&r.to_string());
            body.push('\n');
        }
        let q = format!("INSERT INTO {table} FORMAT JSONEachRow");
        self.http
            .post(&self.servers[0], Some(&q), body.as_bytes())?;
        Ok(())
    }

    fn next_version(&mut self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_millis()).ok())
            .unwrap_or(0)
            .saturating_mul(1024);
        self.last_version = wall.max(self.last_version.saturating_add(1));
        self.last_version
    }

    /// The shard of a commit's shard key.
    fn shard_of_key(&self, key: u64) -> usize {
        (key % self.servers.len() as u64) as usize
    }

    /// The condition that a row's `seq_col` belongs to a commit whose batch ids are
    /// stored (the commit point), checked on each shard against its own batches.
    fn committed(&self, seq_col: &str) -> String {
        format!("{seq_col} IN (SELECT seq FROM {})", self.local("batches"))
    }

    /// Adds (batches, events) to sensors' counters, with `received` as last seen, in
    /// one insert.
    fn add_sensor_stats(
        &self,
        rows: &[(&str, u64, u64)],
        received: Timestamp,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = rows
            .iter()
            .map(|(s, b, e)| format!("({}, toUInt64({b}), toUInt64({e}))", quote(s)))
            .collect();
        self.exec(
            0,
            &format!(
                "INSERT INTO {} (sensor, batches, events, last_seen) \
                 SELECT tupleElement(x, 1) AS sensor, sumState(tupleElement(x, 2)), \
                 sumState(tupleElement(x, 3)), maxState({}) \
                 FROM (SELECT arrayJoin([{}]) AS x) GROUP BY sensor",
                self.ctl("sensor_stats"),
                lit(received.0),
                list.join(", ")
            ),
        )?;
        Ok(())
    }

    fn shard_of(&self, parts: &[&[u8]]) -> usize {
        (fnv1a(parts) % self.servers.len() as u64) as usize
    }

    fn sensor_exists(&self, name: &str) -> Result<bool, StoreError> {
        let r = self.ctl_rows(&format!(
            "SELECT count() AS n FROM {} WHERE name = {}",
            self.ctl("sensors"),
            quote(name)
        ))?;
        Ok(match r.first() {
            Some(r) => r.int::<u64>("n")? > 0,
            None => false,
        })
    }

    fn window_rows(&self, filter: &str, order: &str) -> Result<Vec<WindowRow>, StoreError> {
        let rows = self.dist_rows(&format!(
            "SELECT window_start_ms, tupleElement(r, 1) AS window_end_ms, proto, port, \
                    tupleElement(r, 2) AS events, tupleElement(r, 3) AS sources, \
                    tupleElement(r, 4) AS sensors, tupleElement(r, 5) AS targets, \
                    tupleElement(r, 6) AS top_sources
             FROM (SELECT proto, port, window_start_ms,
                          argMax(tuple(window_end_ms, events, sources, sensors, targets, top_sources), version) AS r
                   FROM {} WHERE {filter} GROUP BY proto, port, window_start_ms)
             ORDER BY {order}",
            self.dist("windows")
        ))?;
        rows.iter()
            .map(|r| {
                Ok(WindowRow {
                    window_start: Timestamp(r.int("window_start_ms")?),
                    window_end: Timestamp(r.int("window_end_ms")?),
                    proto: r.int("proto")?,
                    port: r.int("port")?,
                    events: r.int("events")?,
                    sources: r.int("sources")?,
                    sensors: r.int("sensors")?,
                    targets: r.int("targets")?,
                    top_sources_json: r.str("top_sources")?,
                })
            })
            .collect()
    }

    /// Live alerts matching `filter` (on key columns or `id`), with their insert
    /// version (the order SQLite's row ids give).
    /// Writes a version of warning `a` under `id` (the newest version wins).
    fn write_alert(&mut self, a: &AlertRow, id: i64) -> Result<(), StoreError> {
        let v = self.next_version();
        self.insert_json(
            &self.ctl("alerts"),
            &[json!({
                "kind": a.kind, "proto": a.proto, "port": a.port,
                "window_start_ms": a.window_start.0, "id": id, "severity": a.severity_rank,
                "json": a.json, "deleted": 0, "version": v,
            })],
        )
    }

    fn alert_rows(&self, filter: &str, outer: &str) -> Result<Vec<AlertRow>, StoreError> {
        let rows = self.ctl_rows(&format!(
            "SELECT tupleElement(r, 1) AS id, kind, proto, port, window_start_ms,
                    tupleElement(r, 2) AS severity, tupleElement(r, 3) AS json, v
             FROM (SELECT kind, proto, port, window_start_ms,
                          argMax(tuple(id, severity, json, deleted), version) AS r, max(version) AS v
                   FROM {} WHERE {filter} GROUP BY kind, proto, port, window_start_ms)
             WHERE tupleElement(r, 4) = 0 {outer}",
            self.ctl("alerts")
        ))?;
        rows.iter()
            .map(|r| {
                Ok(AlertRow {
                    id: r.int("id")?,
                    kind: r.str("kind")?,
                    proto: r.int("proto")?,
                    port: r.int("port")?,
                    window_start: Timestamp(r.int("window_start_ms")?),
                    severity_rank: r.int("severity")?,
                    json: r.str("json")?,
                })
            })
            .collect()
    }

    /// Live sessions matching `filter` (a condition on `id_hash`, `user`, `expires_ms`).
    fn session_rows(&self, filter: &str) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = self.ctl_rows(&format!(
            "SELECT id_hash, tupleElement(r, 1) AS user, tupleElement(r, 2) AS csrf,
                    tupleElement(r, 3) AS created_ms, tupleElement(r, 4) AS expires_ms
             FROM (SELECT id_hash, argMax(tuple(user, csrf, created_ms, expires_ms, deleted), version) AS r
                   FROM {} GROUP BY id_hash)
             WHERE tupleElement(r, 5) = 0 AND ({filter}) ORDER BY id_hash",
            self.ctl("sessions")
        ))?;
        rows.iter()
            .map(|r| {
                Ok(SessionRecord {
                    id_hash: r.str("id_hash")?,
                    user: r.str("user")?,
                    csrf: r.str("csrf")?,
                    created: Timestamp(r.int("created_ms")?),
                    expires: Timestamp(r.int("expires_ms")?),
                })
            })
            .collect()
    }

    fn end_sessions(&mut self, sessions: &[SessionRecord]) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(sessions.len());
        for s in sessions {
            let v = self.next_version();
            rows.push(json!({
                "id_hash": s.id_hash, "user": s.user, "csrf": s.csrf,
                "created_ms": s.created.0, "expires_ms": s.expires.0,
                "deleted": 1, "version": v,
            }));
        }
        self.insert_json(&self.ctl("sessions"), &rows)
    }

    /// Live context items of one kind: key → (origin, json).
    fn context_map(&self, kind: &str) -> Result<BTreeMap<String, (String, String)>, StoreError> {
        let rows = self.ctl_rows(&format!(
            "SELECT key, tupleElement(r, 1) AS origin, tupleElement(r, 2) AS json
             FROM (SELECT key, argMax(tuple(origin, json, deleted), version) AS r
                   FROM {} WHERE kind = {} GROUP BY key)
             WHERE tupleElement(r, 3) = 0",
            self.ctl("context_items"),
            quote(kind)
        ))?;
        rows.iter()
            .map(|r| Ok((r.str("key")?, (r.str("origin")?, r.str("json")?))))
            .collect()
    }

    fn user_rows(&self, filter: &str) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let rows = self.ctl_rows(&format!(
            "SELECT name, tupleElement(r, 1) AS role, tupleElement(r, 2) AS password_hash,
                    tupleElement(r, 3) AS created_ms
             FROM (SELECT name, argMax(tuple(role, password_hash, created_ms), version) AS r
                   FROM {} WHERE {filter} GROUP BY name)
             ORDER BY name",
            self.ctl("users")
        ))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.str("name")?,
                    r.str("role")?,
                    r.str("password_hash")?,
                    r.int("created_ms")?,
                ))
            })
            .collect()
    }

    /// Drops the day partitions of a data table (on every server) that lie wholly
    /// before `before`; returns the rows they held (`count` decides how to count).
    fn drop_days(
        &self,
        table: &str,
        date_col: &str,
        before: Timestamp,
        count: &str,
    ) -> Result<u64, StoreError> {
        let cutoff = day_id(before.0);
        let local = self.local(table);
        let local_name = local.rsplit('.').next().unwrap_or(&local).to_string();
        let mut total = 0u64;
        for i in 0..self.servers.len() {
            let parts = self.rows(
                i,
                &format!(
                    "SELECT DISTINCT partition_id FROM system.parts WHERE database = {} \
                     AND table = {} AND active AND partition_id < {}",
                    quote(&self.db),
                    quote(&local_name),
                    quote(&cutoff)
                ),
            )?;
            if parts.is_empty() {
                continue;
            }
            let c = self.rows(
                i,
                &format!(
                    "SELECT count() AS n FROM (SELECT {count} FROM {local} \
                     WHERE toYYYYMMDD({date_col}) < {cutoff})"
                ),
            )?;
            if let Some(r) = c.first() {
                total += r.int::<u64>("n")?;
            }
            for p in &parts {
                let id = p.str("partition_id")?;
                self.exec(
                    i,
                    &format!("ALTER TABLE {local} DROP PARTITION ID {}", quote(&id)),
                )?;
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_everything_that_could_end_a_literal() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), "'it\\'s'");
        assert_eq!(
            quote("a\\'; DROP TABLE x; --"),
            "'a\\\\\\'; DROP TABLE x; --'"
        );
        assert_eq!(quote("\n\t\0\u{7f}"), "'\\x0a\\x09\\x00\\x7f'");
        assert_eq!(quote("é☃"), "'é☃'");
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_id(0), "19700101");
        assert_eq!(day_id(-5), "19700101");
        assert_eq!(day_id(86_399_999), "19700101");
        assert_eq!(day_id(86_400_000), "19700102");
        assert_eq!(day_id(1_709_164_800_000), "20240229");
        assert_eq!(day_id(i64::MAX), "20991231");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn config_is_validated_without_io() {
        let ok = ClickHouseConfig::new("http://127.0.0.1:8123, http://127.0.0.1:8124/");
        ok.validate().unwrap();
        assert_eq!(
            ok.urls(),
            ["http://127.0.0.1:8123", "http://127.0.0.1:8124"]
        );
        let mut c = ok.clone();
        c.database = "x; DROP".into();
        assert!(matches!(c.validate(), Err(StoreError::Config(_))));
        let mut c = ok.clone();
        c.cluster = Some("1abc".into());
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.url = "ftp://x".into();
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.url = " , ".into();
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.timeout = "0s".into();
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.password = Some("pw".into());
        assert!(c.validate().is_err());
        c.user = Some("scanwatch".into());
        c.validate().unwrap();
        assert!(!format!("{c:?}").contains("pw\""));
        let parsed: Result<ClickHouseConfig, _> =
            serde_json::from_str(r#"{"url": "http://h:1", "bogus": 1}"#);
        assert!(parsed.is_err(), "unknown fields are refused");
        let parsed: ClickHouseConfig = serde_json::from_str(r#"{"url": "http://h:1"}"#).unwrap();
        assert_eq!(parsed.database, "scanwatch");
        assert_eq!(parsed.timeout().unwrap(), Duration::from_secs(30));
    }

    #[test]
    fn alert_ids_are_stable_53_bit() {
        let a = alert_id("surge", 6, 445, Timestamp(60_000));
        assert_eq!(a, alert_id("surge", 6, 445, Timestamp(60_000)));
        assert_ne!(a, alert_id("surge", 6, 446, Timestamp(60_000)));
        assert!(a > 0 && a < (1 << 53));
    }
}
