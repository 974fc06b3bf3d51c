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
//! `AggregatingMergeTree` with `sum`/`max` states, `Distributed(cluster, db, table)`,
//! and the functions `argMax`, `tuple`/`tupleElement`, `uniqExact`, `toDate`,
//! `unhex`/`hex`. Not used: TTL (19.6), `ON CLUSTER` (needs ZooKeeper), materialized
//! views (18.16 does not cascade them), `FINAL` (see below), query parameters.
//!
//! * **Raw events** (`events`): MergeTree partitioned by day (`toDate(time)`),
//!   `ORDER BY (proto, dst_port, time)`. Retention is [`Store::prune`] dropping whole
//!   day partitions (`ALTER TABLE .. DROP PARTITION ID`), on each shard's local table,
//!   because 18.16 has no TTL: so ClickHouse prunes by whole UTC days, keeping the
//!   day that contains the cutoff (SQLite deletes to the millisecond). Each event
//!   carries its batch id and the batch's commit sequence, so `events_between` keeps
//!   SQLite's order (time, then commit order, then position in the batch).
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
//! `commit_batch` checks the batch marker, inserts the events in ONE insert (atomic:
//! one block, on one server, as long as a batch has fewer rows than
//! `max_insert_block_size`, 1,048,576 by default), then the marker, then the sensor
//! counters. ClickHouse has no transaction across these inserts, so:
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
    hash_token, new_token, valid_sensor_name, AggregateCommit, AlertRow, ApiTokenRecord,
    BatchOutcome, ContextItem, ContextKind, DeadLetter, ImportCounts, PartialRow, PortTotals, Role,
    SensorRecord, SessionRecord, SourcePort, Store, StoreError, TopBy, UserRecord, WindowRow,
};

/// Version of the ClickHouse schema, recorded in `schema_version` on every server.
pub const SCHEMA_VERSION: u32 = 2;

/// Seconds stored in `DateTime` columns are clamped to [0, 2100-01-01): 18.16 wraps
/// larger values. Exact times are in the `Int64` millisecond columns; the `DateTime`
/// columns only choose partitions and narrow scans.
const MAX_SECS: i64 = 4_102_444_800;

/// Where and how to reach ClickHouse (`[store.clickhouse]` in the server's TOML).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP URL(s), comma-separated. Without `cluster`: alternatives (replicas), the
    /// first reachable is used. With `cluster`: one server per shard, in shard order.
    pub url: String,
    /// Database name (default `scanwatch`).
    #[serde(default = "default_database")]
    pub database: String,
    /// Cluster name from the servers' `remote_servers`: tables become `*_local` on
    /// every server plus `Distributed` tables over the cluster.
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Timeout of each request (`30s`, `500ms`; default `30s`).
    #[serde(default = "default_timeout")]
    pub timeout: String,
}

fn default_database() -> String {
    "scanwatch".to_string()
}

fn default_timeout() -> String {
    "30s".to_string()
}

impl fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("cluster", &self.cluster)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn valid_ident(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl ClickHouseConfig {
    /// A configuration with the defaults for everything but the URL(s).
    pub fn new(url: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            url: url.to_string(),
            database: default_database(),
            cluster: None,
            user: None,
            password: None,
            timeout: default_timeout(),
        }
    }

    /// The URLs of the list, trimmed, without a trailing `/`.
    pub fn urls(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// The request timeout.
    pub fn timeout(&self) -> Result<Duration, StoreError> {
        let d = scanwatch_event::parse_span(&self.timeout)
            .map_err(|e| StoreError::Config(format!("timeout: {e}")))?;
        if d.is_zero() {
            return Err(StoreError::Config("timeout must be above zero".into()));
        }
        Ok(d)
    }

    /// Checks the configuration without any I/O.
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |m: String| Err(StoreError::Config(m));
        let urls = self.urls();
        if urls.is_empty() {
            return bad("url: no URL given".into());
        }
        for u in &urls {
            let rest = u
                .strip_prefix("http://")
                .or_else(|| u.strip_prefix("https://"));
            match rest {
                Some(r) if !r.is_empty() => {}
                _ => return bad(format!("url {u:?}: use http://host:port or https://…")),
            }
            if u.chars().any(|c| c.is_whitespace() || c.is_control()) || u.contains(['?', '#']) {
                return bad(format!(
                    "url {u:?}: no spaces, query or fragment (settings are set by scanwatch)"
                ));
            }
        }
        if !valid_ident(&self.database) {
            return bad(format!(
                "database {:?}: use 1-64 letters, digits or '_', not starting with a digit",
                self.database
            ));
        }
        if let Some(c) = &self.cluster {
            if !valid_ident(c) {
                return bad(format!(
                    "cluster {c:?}: use 1-64 letters, digits or '_', not starting with a digit"
                ));
            }
        }
        if let Some(u) = &self.user {
            if u.is_empty() || u.contains(':') || u.chars().any(char::is_control) {
                return bad(format!(
                    "user {u:?}: not empty, no ':' or control characters"
                ));
            }
        }
        if self.password.is_some() && self.user.is_none() {
            return bad("password given without user".into());
        }
        self.timeout().map(|_| ())
    }
}

/// A ClickHouse string literal: `'…'` with `\` and `'` escaped and every control
/// byte written as `\xHH`, so no input can end the literal early.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for ch in b.chunks(3) {
        let n = (u32::from(ch[0]) << 16)
            | (u32::from(ch.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(ch.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= ch.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn err(m: impl Into<String>) -> StoreError {
    StoreError::ClickHouse(m.into())
}

/// Why a request failed: the server was not reached (another may be tried) or it
/// refused the request.
enum Fail {
    Unreachable(String),
    Refused(String),
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> StoreError {
        match f {
            Fail::Unreachable(m) | Fail::Refused(m) => StoreError::ClickHouse(m),
        }
    }
}

struct Http {
    agent: ureq::Agent,
    auth: Option<String>,
}

impl Http {
    /// POSTs `body`, with `query` (if any) in the URL. The answer's text on 200.
    fn post(&self, base: &str, query: Option<&str>, body: &[u8]) -> Result<String, Fail> {
        let mut req = self.agent.post(format!("{base}/"));
        if let Some(q) = query {
            req = req.query("query", q);
        }
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let mut resp = req
            .send(body)
            .map_err(|e| Fail::Unreachable(format!("cannot reach {base}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .map_err(|e| Fail::Unreachable(format!("cannot read the answer of {base}: {e}")))?;
        if status != 200 {
            let msg: String = text.trim().chars().take(600).collect();
            return Err(Fail::Refused(format!("{base} answered {status}: {msg}")));
        }
        Ok(text)
    }
}

/// One row of a `JSONEachRow` answer.
struct Row(Map<String, Value>);

impl Row {
    fn get(&self, k: &str) -> Result<&Value, StoreError> {
        self.0
            .get(k)
            .ok_or_else(|| err(format!("answer without column {k}")))
    }

    fn str(&self, k: &str) -> Result<String, StoreError> {
        match self.get(k)? {
            Value::String(s) => Ok(s.clone()),
            v => Err(err(format!("column {k}: expected a string, got {v}"))),
        }
    }

    fn i128(&self, k: &str) -> Result<i128, StoreError> {
        let v = self.get(k)?;
        let parsed = match v {
            Value::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from)),
            Value::String(s) => s.parse::<i128>().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| err(format!("column {k}: expected an integer, got {v}")))
    }

    fn int<T: TryFrom<i128>>(&self, k: &str) -> Result<T, StoreError> {
        let v = self.i128(k)?;
        T::try_from(v).map_err(|_| err(format!("column {k}: {v} out of range")))
    }
}

/// A `RowBinary` body.
#[derive(Default)]
struct Rb(Vec<u8>);

impl Rb {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn bytes(&mut self, s: &[u8]) {
        let mut n = s.len() as u64;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(b);
                break;
            }
            self.0.push(b | 0x80);
        }
        self.0.extend_from_slice(s);
    }
    fn fixed16(&mut self, b: &[u8; 16]) {
        self.0.extend_from_slice(b);
    }
    /// A `DateTime` from milliseconds (clamped, see [`MAX_SECS`]).
    fn datetime(&mut self, ms: i64) {
        self.u32(secs(ms) as u32);
    }
}

/// Whole seconds of a millisecond time, clamped to what `DateTime` holds.
fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000).clamp(0, MAX_SECS - 1)
}

/// The UTC day (`YYYYMMDD`, a partition id) of a millisecond time, clamped.
fn day_id(ms: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = secs(ms).div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}")
}

/// A time range `[from, to)` on a `DateTime` column `dt` and its exact millisecond
/// column `ms` (the first narrows the scan to the partitions, the second decides).
fn time_range(dt: &str, ms: &str, from: Timestamp, to: Timestamp) -> String {
    format!(
        "{dt} >= toDateTime({}) AND {dt} <= toDateTime({}) AND {ms} >= {} AND {ms} < {}",
        secs(from.0),
        secs(to.0),
        lit(from.0),
        lit(to.0)
    )
}

/// An `Int64` literal (`i64::MIN` has no literal of its own in ClickHouse SQL).
fn lit(v: i64) -> String {
    format!("toInt64('{v}')")
}

fn ip16(ip: IpAddr) -> ([u8; 16], u8) {
    match ip {
        IpAddr::V4(a) => (a.to_ipv6_mapped().octets(), 1),
        IpAddr::V6(a) => (a.octets(), 0),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Bytes from ClickHouse's `hex()` of them.
fn unhex(h: &str) -> Result<Vec<u8>, StoreError> {
    if h.len() % 2 != 0 || !h.is_ascii() {
        return Err(err("bad hex in the answer"));
    }
    (0..h.len() / 2)
        .map(|i| {
            u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|_| err("bad hex in the answer"))
        })
        .collect()
}

fn ip_from_hex(h: &str, v4: bool) -> Result<IpAddr, StoreError> {
    let bad = || err(format!("bad address in the answer: {h:?}"));
    let b: [u8; 16] = unhex(h)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(bad)?;
    if v4 {
        Ok(IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15])))
    } else {
        Ok(IpAddr::V6(Ipv6Addr::from(b)))
    }
}

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

const ENUM_DIRECTION: &str = "Enum8('unknown' = 0, 'inbound' = 1, 'outbound' = 2)";
const ENUM_ACTION: &str = "Enum8('unknown' = 0, 'accept' = 1, 'drop' = 2, 'reject' = 3)";

fn direction_code(d: Direction) -> u8 {
    match d {
        Direction::Unknown => 0,
        Direction::Inbound => 1,
        Direction::Outbound => 2,
    }
}

fn action_code(a: Action) -> u8 {
    match a {
        Action::Unknown => 0,
        Action::Accept => 1,
        Action::Drop => 2,
        Action::Reject => 3,
    }
}

/// Columns of the raw events, in `RowBinary` order.
/// Appends the RowBinary rows of one batch's events (columns [`EVENT_COLUMNS`]).
fn put_events(rb: &mut Rb, sensor: &str, batch_id: &str, seq: u64, events: &[Event]) {
    for (i, e) in events.iter().enumerate() {
        let (src, src_v4) = ip16(e.src);
        let (dst, dst_v4) = ip16(e.dst);
        rb.datetime(e.time.0);
        rb.i64(e.time.0);
        rb.str(sensor);
        rb.str(batch_id);
        rb.u64(seq);
        rb.u32(u32::try_from(i).unwrap_or(u32::MAX));
        rb.u8(e.proto.number());
        rb.fixed16(&src);
        rb.fixed16(&dst);
        rb.u8(src_v4);
        rb.u8(dst_v4);
        rb.u16(e.src_port.unwrap_or(0));
        rb.u8(u8::from(e.src_port.is_some()));
        rb.u16(e.dst_port.unwrap_or(0));
        rb.u8(u8::from(e.dst_port.is_some()));
        rb.u8(if e.flags_known { e.flags.0 } else { 0 });
        rb.u8(u8::from(e.flags_known));
        rb.u8(e.icmp_type.unwrap_or(0));
        rb.u8(u8::from(e.icmp_type.is_some()));
        rb.u8(direction_code(e.direction));
        rb.u8(action_code(e.action));
        rb.u32(e.count);
        rb.u8(u8::from(e.scanned_port().is_some()));
    }
}

const BATCH_COLUMNS: &str = "received, received_ms, sensor, batch_id, events, seq, keep";

/// Until when a commit's batch ids are kept: they are its commit point, so they stay
/// while any of its events may (the later of receipt and its latest event time; one
/// value per commit, so its batch rows are one partition and one atomic part).
fn keep_until<'e>(received: Timestamp, events: impl IntoIterator<Item = &'e Event>) -> i64 {
    events
        .into_iter()
        .map(|e| e.time.0)
        .fold(received.0, i64::max)
}

const EVENT_COLUMNS: &str = "time, time_ms, sensor, batch_id, batch_seq, idx, proto, src, dst, \
    src_v4, dst_v4, src_port, has_src_port, dst_port, has_dst_port, flags, flags_known, \
    icmp_type, has_icmp_type, direction, action, count, scanned";

const WINDOW_COLUMNS: &str = "window_start, window_start_ms, window_end_ms, proto, port, events, \
    sources, sensors, targets, top_sources, version";

/// ClickHouse behind the [`Store`] trait.
pub struct ClickHouseStore {
    http: Http,
    db: String,
    cluster: Option<String>,
    /// With a cluster: one per shard, in shard order. Without: the one in use.
    servers: Vec<String>,
    /// The last row version handed out (see the module docs).
    last_version: u64,
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

    fn create_data_tables(&self, i: usize) -> Result<(), StoreError> {
        let db = &self.db;
        self.exec(i, &format!("CREATE DATABASE IF NOT EXISTS {db}"))?;
        self.exec(
            i,
            &format!(
                "CREATE TABLE IF NOT EXISTS {db}.schema_version (version UInt32) \
                 ENGINE = MergeTree ORDER BY version"
            ),
        )?;
        let r = self.rows(
            i,
            &format!("SELECT count() AS n, max(version) AS v FROM {db}.schema_version"),
        )?;
        let (n, found) = match r.first() {
            Some(r) => (r.int::<u64>("n")?, r.int::<u32>("v")?),
            None => (0, 0),
        };
        if n > 0 && found != SCHEMA_VERSION {
            return Err(StoreError::ClickHouseSchemaVersion { found });
        }
        let events = self.local("events");
        self.exec(
            i,
            &format!(
                "CREATE TABLE IF NOT EXISTS {events} (
                    time          DateTime('UTC'),
                    time_ms       Int64,
                    sensor        String,
                    batch_id      String,
                    batch_seq     UInt64,
                    idx           UInt32,
                    proto         UInt8,
                    src           FixedString(16),
                    dst           FixedString(16),
                    src_v4        UInt8,
                    dst_v4        UInt8,
                    src_port      UInt16,
                    has_src_port  UInt8,
                    dst_port      UInt16,
                    has_dst_port  UInt8,
                    flags         UInt8,
                    flags_known   UInt8,
                    icmp_type     UInt8,
                    has_icmp_type UInt8,
                    direction     {ENUM_DIRECTION},
                    action        {ENUM_ACTION},
                    count         UInt32,
                    scanned       UInt8
                ) ENGINE = MergeTree PARTITION BY toDate(time) ORDER BY (proto, dst_port, time)"
            ),
        )?;
        let batches = self.local("batches");
        self.exec(
            i,
            &format!(
                "CREATE TABLE IF NOT EXISTS {batches} (
                    received    DateTime('UTC'),
                    received_ms Int64,
                    sensor      String,
                    batch_id    String,
                    events      UInt64,
                    seq         UInt64,
                    keep        DateTime('UTC')
                ) ENGINE = MergeTree PARTITION BY toDate(keep) ORDER BY (sensor, batch_id)"
            ),
        )?;
        let partials = self.local("partials");
        self.exec(
            i,
            &format!(
                "CREATE TABLE IF NOT EXISTS {partials} (
                    window_start    DateTime('UTC'),
                    window_start_ms Int64,
                    max_time_ms     Int64,
                    seq             UInt64,
                    committed_ms    Int64,
                    state           String
                ) ENGINE = MergeTree PARTITION BY toDate(window_start)
                  ORDER BY (window_start_ms, seq)"
            ),
        )?;
        let windows = self.local("windows");
        self.exec(
            i,
            &format!(
                "CREATE TABLE IF NOT EXISTS {windows} (
                    window_start    DateTime('UTC'),
                    window_start_ms Int64,
                    window_end_ms   Int64,
                    proto           UInt8,
                    port            UInt16,
                    events          UInt64,
                    sources         UInt64,
                    sensors         UInt64,
                    targets         UInt64,
                    top_sources     String,
                    version         UInt64
                ) ENGINE = ReplacingMergeTree(version) PARTITION BY toDate(window_start)
                  ORDER BY (proto, port, window_start_ms)"
            ),
        )?;
        if let Some(cluster) = &self.cluster {
            // Reads only: the store itself picks the shard of every insert, so the
            // Distributed tables have no sharding key.
            for t in ["events", "windows", "partials"] {
                self.exec(
                    i,
                    &format!(
                        "CREATE TABLE IF NOT EXISTS {db}.{t} AS {db}.{t}_local \
                         ENGINE = Distributed({cluster}, {db}, {t}_local)"
                    ),
                )?;
            }
        }
        if n == 0 {
            self.exec(
                i,
                &format!("INSERT INTO {db}.schema_version (version) VALUES ({SCHEMA_VERSION})"),
            )?;
        }
        Ok(())
    }

    fn create_control_tables(&self) -> Result<(), StoreError> {
        let db = &self.db;
        let rmt = |name: &str, cols: &str, key: &str| {
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.{name} ({cols}, version UInt64) \
                 ENGINE = ReplacingMergeTree(version) ORDER BY ({key})"
            )
        };
        let ddl = [
            rmt(
                "sensors",
                "name String, token_hash String, created_ms Int64, revoked UInt8",
                "name",
            ),
            rmt(
                "sensor_heartbeats",
                "sensor String, at_ms Int64, json String",
                "sensor",
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.sensor_stats (sensor String, \
                 batches AggregateFunction(sum, UInt64), events AggregateFunction(sum, UInt64), \
                 last_seen AggregateFunction(max, Int64)) \
                 ENGINE = AggregatingMergeTree ORDER BY sensor"
            ),
            rmt(
                "api_tokens",
                "name String, role String, token_hash String, created_ms Int64, revoked UInt8",
                "name",
            ),
            rmt(
                "users",
                "name String, role String, password_hash String, created_ms Int64",
                "name",
            ),
            rmt(
                "sessions",
                "id_hash String, user String, csrf String, created_ms Int64, expires_ms Int64, \
                 deleted UInt8",
                "id_hash",
            ),
            rmt(
                "sink_state",
                "sink String, key String, json String, updated_ms Int64",
                "sink, key",
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.dead_letters (seq UInt64, sink String, \
                 key String, attempts UInt32, error String, payload String, at_ms Int64) \
                 ENGINE = MergeTree ORDER BY seq"
            ),
            rmt(
                "context_items",
                "kind String, key String, origin String, json String, imported_ms Int64, \
                 deleted UInt8",
                "kind, key",
            ),
            rmt(
                "alerts",
                "kind String, proto UInt8, port UInt16, window_start_ms Int64, id Int64, \
                 severity UInt8, json String, deleted UInt8",
                "kind, proto, port, window_start_ms",
            ),
        ];
        for sql in &ddl {
            self.exec(0, sql)?;
        }
        Ok(())
    }

    /// Starts the version clock after the largest version stored.
    fn seed_version(&mut self) -> Result<(), StoreError> {
        let mut max = 0u64;
        let ctl = [
            ("sensors", "version"),
            ("sensor_heartbeats", "version"),
            ("api_tokens", "version"),
            ("users", "version"),
            ("sessions", "version"),
            ("sink_state", "version"),
            ("dead_letters", "seq"),
            ("context_items", "version"),
            ("alerts", "version"),
        ];
        for (t, c) in ctl {
            let r = self.ctl_rows(&format!("SELECT max({c}) AS v FROM {}", self.ctl(t)))?;
            if let Some(r) = r.first() {
                max = max.max(r.int::<u64>("v")?);
            }
        }
        for (t, c) in [("windows", "version"), ("events", "batch_seq")] {
            let r = self.dist_rows(&format!("SELECT max({c}) AS v FROM {}", self.dist(t)))?;
            if let Some(r) = r.first() {
                max = max.max(r.int::<u64>("v")?);
            }
        }
        self.last_version = max;
        Ok(())
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

impl Store for ClickHouseStore {
    fn add_sensor(&mut self, name: &str, now: Timestamp) -> Result<String, StoreError> {
        if !valid_sensor_name(name) {
            return Err(StoreError::InvalidName(name.to_string()));
        }
        if self.sensor_exists(name)? {
            return Err(StoreError::SensorExists(name.to_string()));
        }
        let token = new_token()?;
        let v = self.next_version();
        self.insert_json(
            &self.ctl("sensors"),
            &[json!({
                "name": name, "token_hash": hash_token(&token), "created_ms": now.0,
                "revoked": 0, "version": v,
            })],
        )?;
        Ok(token)
    }

    fn revoke_sensor(&mut self, name: &str) -> Result<(), StoreError> {
        let r = self.ctl_rows(&format!(
            "SELECT tupleElement(r, 1) AS token_hash, tupleElement(r, 2) AS created_ms
             FROM (SELECT argMax(tuple(token_hash, created_ms), version) AS r FROM {}
                   WHERE name = {} GROUP BY name)",
            self.ctl("sensors"),
            quote(name)
        ))?;
        let Some(r) = r.first() else {
            return Err(StoreError::NoSuchSensor(name.to_string()));
        };
        let (h, c) = (r.str("token_hash")?, r.int::<i64>("created_ms")?);
        let v = self.next_version();
        self.insert_json(
            &self.ctl("sensors"),
            &[json!({
                "name": name, "token_hash": h, "created_ms": c, "revoked": 1, "version": v,
            })],
        )
    }

    fn sensors(&self) -> Result<Vec<SensorRecord>, StoreError> {
        let base = self.ctl_rows(&format!(
            "SELECT name, argMax(created_ms, version) AS created_ms, max(revoked) AS revoked \
             FROM {} GROUP BY name",
            self.ctl("sensors")
        ))?;
        let stats = self.ctl_rows(&format!(
            "SELECT sensor, sumMerge(batches) AS batches, sumMerge(events) AS events, \
                    maxMerge(last_seen) AS last_seen FROM {} GROUP BY sensor",
            self.ctl("sensor_stats")
        ))?;
        let beats = self.ctl_rows(&format!(
            "SELECT sensor, tupleElement(r, 1) AS at_ms, tupleElement(r, 2) AS json
             FROM (SELECT sensor, argMax(tuple(at_ms, json), version) AS r FROM {} GROUP BY sensor)",
            self.ctl("sensor_heartbeats")
        ))?;
        let mut st: HashMap<String, (u64, u64, i64)> = HashMap::new();
        for r in &stats {
            st.insert(
                r.str("sensor")?,
                (r.int("batches")?, r.int("events")?, r.int("last_seen")?),
            );
        }
        let mut hb: HashMap<String, (Timestamp, String)> = HashMap::new();
        for r in &beats {
            hb.insert(
                r.str("sensor")?,
                (Timestamp(r.int("at_ms")?), r.str("json")?),
            );
        }
        let mut out = Vec::with_capacity(base.len());
        for r in &base {
            let name = r.str("name")?;
            let s = st.get(&name);
            out.push(SensorRecord {
                created: Timestamp(r.int("created_ms")?),
                revoked: r.int::<u8>("revoked")? != 0,
                last_seen: s.map(|s| Timestamp(s.2)),
                batches: s.map_or(0, |s| s.0),
                events: s.map_or(0, |s| s.1),
                heartbeat: hb.get(&name).cloned(),
                name,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn record_heartbeat(
        &mut self,
        sensor: &str,
        json: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if !self.sensor_exists(sensor)? {
            return Err(StoreError::NoSuchSensor(sensor.to_string()));
        }
        let v = self.next_version();
        self.insert_json(
            &self.ctl("sensor_heartbeats"),
            &[json!({"sensor": sensor, "at_ms": now.0, "json": json, "version": v})],
        )
    }

    fn authenticate_sensor(&self, token: &str) -> Result<Option<String>, StoreError> {
        let r = self.ctl_rows(&format!(
            "SELECT name FROM {} GROUP BY name \
             HAVING argMax(token_hash, version) = {} AND max(revoked) = 0 ORDER BY name LIMIT 1",
            self.ctl("sensors"),
            quote(&hash_token(token))
        ))?;
        r.first().map(|r| r.str("name")).transpose()
    }

    fn commit_batch(
        &mut self,
        sensor: &str,
        batch_id: &str,
        events: &[Event],
        received: Timestamp,
    ) -> Result<BatchOutcome, StoreError> {
        if !self.sensor_exists(sensor)? {
            return Err(StoreError::NoSuchSensor(sensor.to_string()));
        }
        let shard = self.shard_of(&[sensor.as_bytes(), batch_id.as_bytes()]);
        let seen = self.rows(
            shard,
            &format!(
                "SELECT count() AS n FROM {} WHERE sensor = {} AND batch_id = {}",
                self.local("batches"),
                quote(sensor),
                quote(batch_id)
            ),
        )?;
        if let Some(r) = seen.first() {
            if r.int::<u64>("n")? > 0 {
                return Ok(BatchOutcome::Duplicate);
            }
        }
        let seq = self.next_version();
        if !events.is_empty() {
            let mut rb = Rb::default();
            put_events(&mut rb, sensor, batch_id, seq, events);
            self.insert_rowbinary(shard, &self.local("events"), EVENT_COLUMNS, rb)?;
        }
        let total: u64 = events.iter().map(|e| u64::from(e.count)).sum();
        // The batch id row is the commit point: every read counts only events whose
        // `batch_seq` has one, so events of a commit that failed before it are never
        // counted, and the resend stores them again under a new seq.
        let mut rb = Rb::default();
        rb.datetime(received.0);
        rb.i64(received.0);
        rb.str(sensor);
        rb.str(batch_id);
        rb.u64(total);
        rb.u64(seq);
        rb.datetime(keep_until(received, events));
        self.insert_rowbinary(shard, &self.local("batches"), BATCH_COLUMNS, rb)?;
        self.add_sensor_stats(&[(sensor, 1, total)], received)?;
        Ok(BatchOutcome::Accepted {
            events: events.len(),
        })
    }

    fn stored_batches(
        &self,
        shard_key: u64,
        ids: &[(&str, &str)],
    ) -> Result<Vec<bool>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let shard = self.shard_of_key(shard_key);
        let list: Vec<String> = ids
            .iter()
            .map(|(s, b)| format!("({}, {})", quote(s), quote(b)))
            .collect();
        let rows = self.rows(
            shard,
            &format!(
                "SELECT DISTINCT sensor, batch_id FROM {} WHERE (sensor, batch_id) IN ({})",
                self.local("batches"),
                list.join(", ")
            ),
        )?;
        let mut found = std::collections::HashSet::new();
        for r in &rows {
            found.insert((r.str("sensor")?, r.str("batch_id")?));
        }
        Ok(ids
            .iter()
            .map(|(s, b)| found.contains(&(s.to_string(), b.to_string())))
            .collect())
    }

    fn commit_aggregate(&mut self, c: &AggregateCommit<'_>) -> Result<(), StoreError> {
        let shard = self.shard_of_key(c.shard_key);
        let ids: Vec<(&str, &str)> = c.batches.iter().map(|b| (b.sensor, b.batch_id)).collect();
        if let Some(i) = self
            .stored_batches(c.shard_key, &ids)?
            .iter()
            .position(|x| *x)
        {
            return Err(StoreError::BatchStored {
                sensor: ids[i].0.to_string(),
                batch: ids[i].1.to_string(),
            });
        }
        // Three inserts into one shard; the last (the batch ids, one block, so
        // atomic) is the commit point: reads count events and partials only under a
        // seq that has batch rows.
        let mut rb = Rb::default();
        for b in &c.batches {
            put_events(&mut rb, b.sensor, b.batch_id, c.commit, b.events);
        }
        if !rb.0.is_empty() {
            self.insert_rowbinary(shard, &self.local("events"), EVENT_COLUMNS, rb)?;
        }
        if !c.partials.is_empty() {
            let mut rb = Rb::default();
            for p in &c.partials {
                rb.datetime(p.window_start.0);
                rb.i64(p.window_start.0);
                rb.i64(p.max_time.0);
                rb.u64(c.commit);
                rb.i64(p.committed.0);
                rb.bytes(&p.state);
            }
            self.insert_rowbinary(
                shard,
                &self.local("partials"),
                "window_start, window_start_ms, max_time_ms, seq, committed_ms, state",
                rb,
            )?;
        }
        let mut rb = Rb::default();
        let mut per_sensor: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let keep = keep_until(c.received, c.batches.iter().flat_map(|b| b.events));
        for b in &c.batches {
            let total: u64 = b.events.iter().map(|e| u64::from(e.count)).sum();
            rb.datetime(c.received.0);
            rb.i64(c.received.0);
            rb.str(b.sensor);
            rb.str(b.batch_id);
            rb.u64(total);
            rb.u64(c.commit);
            rb.datetime(keep);
            let e = per_sensor.entry(b.sensor).or_default();
            e.0 += 1;
            e.1 += total;
        }
        if !c.batches.is_empty() {
            self.insert_rowbinary(shard, &self.local("batches"), BATCH_COLUMNS, rb)?;
        }
        // After the commit point: a failure here loses these counters for this
        // commit (the resend finds its batches stored), never counts them twice.
        let stats: Vec<(&str, u64, u64)> = per_sensor
            .into_iter()
            .map(|(s, (b, e))| (s, b, e))
            .collect();
        self.add_sensor_stats(&stats, c.received)
    }

    fn partials_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        committed_since: Timestamp,
    ) -> Result<Vec<PartialRow>, StoreError> {
        let rows = self.dist_rows(&format!(
            "SELECT seq, committed_ms, window_start_ms, max_time_ms, hex(state) AS state FROM {} \
             WHERE {} AND committed_ms >= {} AND {} ORDER BY window_start_ms, seq",
            self.dist("partials"),
            time_range("window_start", "window_start_ms", from, to),
            lit(committed_since.0),
            self.committed("seq"),
        ))?;
        rows.iter()
            .map(|r| {
                Ok(PartialRow {
                    commit: r.int("seq")?,
                    committed: Timestamp(r.int("committed_ms")?),
                    window_start: Timestamp(r.int("window_start_ms")?),
                    max_time: Timestamp(r.int("max_time_ms")?),
                    state: unhex(&r.str("state")?)?,
                })
            })
            .collect()
    }

    fn top_ports(
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
        rows.iter()
            .map(|r| {
                Ok(PortTotals {
                    proto: r.int("proto")?,
                    port: r.int("port")?,
                    events: r.int("events")?,
                    sources: r.int("sources")?,
                    sensors: r.int("sensors")?,
                    targets: r.int("targets")?,
                })
            })
            .collect()
    }

    fn source_activity(
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
        rows.iter()
            .map(|r| {
                Ok(SourcePort {
                    proto: r.int("proto")?,
                    port: r.int("port")?,
                    events: r.int("events")?,
                    sensors: r.int("sensors")?,
                    targets: r.int("targets")?,
                    first_seen: Timestamp(r.int("first_ms")?),
                    last_seen: Timestamp(r.int("last_ms")?),
                })
            })
            .collect()
    }

    fn put_windows(&mut self, rows: &[WindowRow]) -> Result<(), StoreError> {
        let mut by_shard: BTreeMap<usize, Rb> = BTreeMap::new();
        for w in rows {
            let v = self.next_version();
            let shard = self.shard_of(&[&[w.proto], &w.port.to_be_bytes()]);
            let rb = by_shard.entry(shard).or_default();
            rb.datetime(w.window_start.0);
            rb.i64(w.window_start.0);
            rb.i64(w.window_end.0);
            rb.u8(w.proto);
            rb.u16(w.port);
            rb.u64(w.events);
            rb.u64(w.sources);
            rb.u64(w.sensors);
            rb.u64(w.targets);
            rb.str(&w.top_sources_json);
            rb.u64(v);
        }
        for (shard, rb) in by_shard {
            self.insert_rowbinary(shard, &self.local("windows"), WINDOW_COLUMNS, rb)?;
        }
        Ok(())
    }

    fn port_history(
        &self,
        proto: u8,
        port: u16,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<WindowRow>, StoreError> {
        self.window_rows(
            &format!(
                "proto = {proto} AND port = {port} AND {}",
                time_range("window_start", "window_start_ms", from, to)
            ),
            "window_start_ms",
        )
    }

    fn latest_window(&self) -> Result<Option<(Timestamp, Timestamp)>, StoreError> {
        let r = self.dist_rows(&format!(
            "SELECT window_start_ms FROM {} ORDER BY window_start_ms DESC LIMIT 1",
            self.dist("windows")
        ))?;
        let Some(start) = r
            .first()
            .map(|r| r.int::<i64>("window_start_ms"))
            .transpose()?
        else {
            return Ok(None);
        };
        let w = self.window_rows(
            &format!("window_start_ms = {}", lit(start)),
            "proto DESC, port DESC LIMIT 1",
        )?;
        Ok(w.first().map(|w| (w.window_start, w.window_end)))
    }

    fn windows_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<WindowRow>, StoreError> {
        self.window_rows(
            &time_range("window_start", "window_start_ms", from, to),
            "window_start_ms, proto, port",
        )
    }

    fn upsert_alert(&mut self, a: &AlertRow) -> Result<(i64, bool), StoreError> {
        let key = alert_key(a);
        let Some(old) = self.alert_rows(&key, "")?.into_iter().next() else {
            return Ok((self.put_alert(a)?, true));
        };
        if old.severity_rank == a.severity_rank && old.json == a.json {
            return Ok((old.id, false));
        }
        // A newer version of the same row (ReplacingMergeTree), under the same id.
        self.write_alert(a, old.id)?;
        Ok((old.id, true))
    }

    fn put_alert(&mut self, a: &AlertRow) -> Result<i64, StoreError> {
        let key = alert_key(a);
        if let Some(r) = self.alert_rows(&key, "")?.first() {
            return Ok(r.id);
        }
        let mut id = alert_id(&a.kind, a.proto, a.port, a.window_start);
        let mut free = false;
        for _ in 0..64 {
            let r = self.ctl_rows(&format!(
                "SELECT count() AS n FROM {} WHERE id = {id} AND NOT ({key})",
                self.ctl("alerts")
            ))?;
            if r.first()
                .map(|r| r.int::<u64>("n"))
                .transpose()?
                .unwrap_or(0)
                == 0
            {
                free = true;
                break;
            }
            id = if id >= (1 << 53) - 1 { 1 } else { id + 1 };
        }
        if !free {
            return Err(err("no free alert id after 64 tries"));
        }
        self.write_alert(a, id)?;
        Ok(id)
    }

    fn alerts(
        &self,
        from: Timestamp,
        to: Timestamp,
        min_severity: u8,
    ) -> Result<Vec<AlertRow>, StoreError> {
        self.alert_rows(
            &format!(
                "window_start_ms >= {} AND window_start_ms < {}",
                lit(from.0),
                lit(to.0)
            ),
            &format!(
                "AND severity >= {min_severity} ORDER BY severity DESC, window_start_ms DESC, v"
            ),
        )
    }

    fn alert(&self, id: i64) -> Result<Option<AlertRow>, StoreError> {
        Ok(self
            .alert_rows(&format!("id = {id}"), "ORDER BY v LIMIT 1")?
            .into_iter()
            .next())
    }

    fn add_api_token(
        &mut self,
        name: &str,
        role: Role,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        if !valid_sensor_name(name) {
            return Err(StoreError::InvalidName(name.to_string()));
        }
        let r = self.ctl_rows(&format!(
            "SELECT count() AS n FROM {} WHERE name = {}",
            self.ctl("api_tokens"),
            quote(name)
        ))?;
        if r.first()
            .map(|r| r.int::<u64>("n"))
            .transpose()?
            .unwrap_or(0)
            > 0
        {
            return Err(StoreError::TokenExists(name.to_string()));
        }
        let token = new_token()?;
        let v = self.next_version();
        self.insert_json(
            &self.ctl("api_tokens"),
            &[json!({
                "name": name, "role": role.name(), "token_hash": hash_token(&token),
                "created_ms": now.0, "revoked": 0, "version": v,
            })],
        )?;
        Ok(token)
    }

    fn authenticate_api(&self, token: &str) -> Result<Option<(String, Role)>, StoreError> {
        let r = self.ctl_rows(&format!(
            "SELECT name, tupleElement(r, 1) AS role
             FROM (SELECT name, argMax(tuple(role, token_hash), version) AS r, max(revoked) AS rv
                   FROM {} GROUP BY name)
             WHERE tupleElement(r, 2) = {} AND rv = 0 ORDER BY name LIMIT 1",
            self.ctl("api_tokens"),
            quote(&hash_token(token))
        ))?;
        let Some(r) = r.first() else { return Ok(None) };
        let name = r.str("name")?;
        Ok(Role::parse(&r.str("role")?).map(|role| (name, role)))
    }

    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
        let rows = self.ctl_rows(&format!(
            "SELECT name, tupleElement(r, 1) AS role, tupleElement(r, 2) AS created_ms, rv AS revoked
             FROM (SELECT name, argMax(tuple(role, created_ms), version) AS r, max(revoked) AS rv
                   FROM {} GROUP BY name)
             ORDER BY name",
            self.ctl("api_tokens")
        ))?;
        let mut out = Vec::new();
        for r in &rows {
            if let Some(role) = Role::parse(&r.str("role")?) {
                out.push(ApiTokenRecord {
                    name: r.str("name")?,
                    role,
                    created: Timestamp(r.int::<i64>("created_ms")?),
                    revoked: r.int::<u64>("revoked")? != 0,
                });
            }
        }
        Ok(out)
    }

    fn revoke_api_token(&mut self, name: &str) -> Result<(), StoreError> {
        let r = self.ctl_rows(&format!(
            "SELECT tupleElement(r, 1) AS role, tupleElement(r, 2) AS token_hash, tupleElement(r, 3) AS created_ms
             FROM (SELECT argMax(tuple(role, token_hash, created_ms), version) AS r FROM {}
                   WHERE name = {} GROUP BY name)",
            self.ctl("api_tokens"),
            quote(name)
        ))?;
        let Some(r) = r.first() else {
            return Err(StoreError::NoSuchToken(name.to_string()));
        };
        let (role, h, c) = (
            r.str("role")?,
            r.str("token_hash")?,
            r.int::<i64>("created_ms")?,
        );
        let v = self.next_version();
        self.insert_json(
            &self.ctl("api_tokens"),
            &[json!({
                "name": name, "role": role, "token_hash": h, "created_ms": c,
                "revoked": 1, "version": v,
            })],
        )
    }

    fn prune(
        &mut self,
        events_before: Timestamp,
        windows_before: Timestamp,
    ) -> Result<(u64, u64), StoreError> {
        let events = self.drop_days("events", "time", events_before, "1")?;
        self.drop_days("batches", "keep", events_before, "1")?;
        // Partials count only under their batch ids, so they go with them.
        self.drop_days("partials", "window_start", events_before, "1")?;
        let windows = self.drop_days(
            "windows",
            "window_start",
            windows_before,
            "DISTINCT proto, port, window_start_ms",
        )?;
        let old = self.alert_rows(&format!("window_start_ms < {}", lit(windows_before.0)), "")?;
        let mut rows = Vec::with_capacity(old.len());
        for a in &old {
            let v = self.next_version();
            rows.push(json!({
                "kind": a.kind, "proto": a.proto, "port": a.port,
                "window_start_ms": a.window_start.0, "id": a.id, "severity": a.severity_rank,
                "json": "", "deleted": 1, "version": v,
            }));
        }
        self.insert_json(&self.ctl("alerts"), &rows)?;
        // IDS alerts go with the events they came with (tombstones, as deletes are).
        let old_ids = self.ctl_rows(&format!(
            "SELECT key, tupleElement(r, 1) AS origin
             FROM (SELECT key, argMax(tuple(origin, imported_ms, deleted), version) AS r
                   FROM {} WHERE kind = {} GROUP BY key)
             WHERE tupleElement(r, 3) = 0 AND tupleElement(r, 2) < {}",
            self.ctl("context_items"),
            quote(crate::ContextKind::Ids.name()),
            lit(events_before.0)
        ))?;
        let mut rows = Vec::with_capacity(old_ids.len());
        for r in &old_ids {
            let v = self.next_version();
            rows.push(json!({
                "kind": crate::ContextKind::Ids.name(), "key": r.str("key")?, "origin": r.str("origin")?,
                "json": "", "imported_ms": 0, "deleted": 1, "version": v,
            }));
        }
        self.insert_json(&self.ctl("context_items"), &rows)?;
        Ok((events, windows))
    }

    fn events_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, Event)>, StoreError> {
        let rows = self.dist_rows(&format!(
            "SELECT sensor, time_ms, proto, hex(src) AS src, hex(dst) AS dst, src_v4, dst_v4,
                    src_port, has_src_port, dst_port, has_dst_port, flags, flags_known,
                    icmp_type, has_icmp_type, toInt8(direction) AS direction,
                    toInt8(action) AS action, count
             FROM {} WHERE {} AND {} ORDER BY time_ms, batch_seq, idx",
            self.dist("events"),
            time_range("time", "time_ms", from, to),
            self.committed("batch_seq"),
        ))?;
        rows.iter()
            .map(|r| {
                let flag = |k: &str| -> Result<bool, StoreError> { Ok(r.int::<u8>(k)? != 0) };
                Ok((
                    r.str("sensor")?,
                    Event {
                        time: Timestamp(r.int("time_ms")?),
                        proto: Protocol::from_number(r.int("proto")?),
                        src: ip_from_hex(&r.str("src")?, flag("src_v4")?)?,
                        dst: ip_from_hex(&r.str("dst")?, flag("dst_v4")?)?,
                        src_port: flag("has_src_port")?
                            .then(|| r.int("src_port"))
                            .transpose()?,
                        dst_port: flag("has_dst_port")?
                            .then(|| r.int("dst_port"))
                            .transpose()?,
                        flags: TcpFlags(r.int("flags")?),
                        flags_known: flag("flags_known")?,
                        icmp_type: flag("has_icmp_type")?
                            .then(|| r.int("icmp_type"))
                            .transpose()?,
                        direction: match r.int::<i8>("direction")? {
                            1 => Direction::Inbound,
                            2 => Direction::Outbound,
                            _ => Direction::Unknown,
                        },
                        action: match r.int::<i8>("action")? {
                            1 => Action::Accept,
                            2 => Action::Drop,
                            3 => Action::Reject,
                            _ => Action::Unknown,
                        },
                        count: r.int("count")?,
                    },
                ))
            })
            .collect()
    }

    fn put_context_items(
        &mut self,
        kind: ContextKind,
        items: &[ContextItem],
        now: Timestamp,
    ) -> Result<ImportCounts, StoreError> {
        let kind = kind.name();
        let mut current: HashMap<String, String> = self
            .context_map(kind)?
            .into_iter()
            .map(|(k, (_, j))| (k, j))
            .collect();
        let mut counts = ImportCounts::default();
        let mut rows = Vec::with_capacity(items.len());
        for it in items {
            match current.get(&it.key) {
                Some(o) if *o == it.json => counts.unchanged += 1,
                Some(_) => counts.updated += 1,
                None => counts.added += 1,
            }
            current.insert(it.key.clone(), it.json.clone());
            let v = self.next_version();
            rows.push(json!({
                "kind": kind, "key": it.key, "origin": it.origin, "json": it.json,
                "imported_ms": now.0, "deleted": 0, "version": v,
            }));
        }
        self.insert_json(&self.ctl("context_items"), &rows)?;
        Ok(counts)
    }

    fn delete_context_origin(
        &mut self,
        kind: ContextKind,
        origin: &str,
    ) -> Result<usize, StoreError> {
        let kind = kind.name();
        let gone: Vec<String> = self
            .context_map(kind)?
            .into_iter()
            .filter(|(_, (o, _))| o == origin)
            .map(|(k, _)| k)
            .collect();
        let mut rows = Vec::with_capacity(gone.len());
        for k in &gone {
            let v = self.next_version();
            rows.push(json!({
                "kind": kind, "key": k, "origin": origin, "json": "", "imported_ms": 0,
                "deleted": 1, "version": v,
            }));
        }
        self.insert_json(&self.ctl("context_items"), &rows)?;
        Ok(gone.len())
    }

    fn context_items(&self, kind: ContextKind) -> Result<Vec<ContextItem>, StoreError> {
        let kind = kind.name();
        Ok(self
            .context_map(kind)?
            .into_iter()
            .map(|(key, (origin, json))| ContextItem { key, origin, json })
            .collect())
    }

    fn put_user(&mut self, u: &UserRecord, replace: bool) -> Result<(), StoreError> {
        if !valid_sensor_name(&u.name) {
            return Err(StoreError::InvalidName(u.name.clone()));
        }
        let old = self.user_rows(&format!("name = {}", quote(&u.name)))?;
        let created = match old.first() {
            Some(_) if !replace => return Err(StoreError::UserExists(u.name.clone())),
            // A password reset keeps the creation time, as SQLite's upsert does.
            Some(o) => o.3,
            None => u.created.0,
        };
        let v = self.next_version();
        self.insert_json(
            &self.ctl("users"),
            &[json!({
                "name": u.name, "role": u.role.name(), "password_hash": u.password_hash,
                "created_ms": created, "version": v,
            })],
        )?;
        if replace {
            // A new password ends the user's sessions.
            let live = self.session_rows(&format!("tupleElement(r, 1) = {}", quote(&u.name)))?;
            self.end_sessions(&live)?;
        }
        Ok(())
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .user_rows(&format!("name = {}", quote(name)))?
            .into_iter()
            .find_map(|(name, role, password_hash, created)| {
                Role::parse(&role).map(|role| UserRecord {
                    name,
                    role,
                    password_hash,
                    created: Timestamp(created),
                })
            }))
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        Ok(self
            .user_rows("1 = 1")?
            .into_iter()
            .filter_map(|(name, role, password_hash, created)| {
                Role::parse(&role).map(|role| UserRecord {
                    name,
                    role,
                    password_hash,
                    created: Timestamp(created),
                })
            })
            .collect())
    }

    fn put_session(&mut self, s: &SessionRecord) -> Result<(), StoreError> {
        let v = self.next_version();
        self.insert_json(
            &self.ctl("sessions"),
            &[json!({
                "id_hash": s.id_hash, "user": s.user, "csrf": s.csrf,
                "created_ms": s.created.0, "expires_ms": s.expires.0, "deleted": 0, "version": v,
            })],
        )
    }

    fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .session_rows(&format!(
                "id_hash = {} AND tupleElement(r, 4) > {}",
                quote(id_hash),
                lit(now.0)
            ))?
            .into_iter()
            .next())
    }

    fn delete_session(&mut self, id_hash: &str, now: Timestamp) -> Result<(), StoreError> {
        let gone = self.session_rows(&format!(
            "id_hash = {} OR tupleElement(r, 4) <= {}",
            quote(id_hash),
            lit(now.0)
        ))?;
        self.end_sessions(&gone)
    }

    fn sink_state(&self, sink: &str, key: &str) -> Result<Option<String>, StoreError> {
        let r = self.ctl_rows(&format!(
            "SELECT argMax(json, version) AS json FROM {} WHERE sink = {} AND key = {} \
             GROUP BY sink, key",
            self.ctl("sink_state"),
            quote(sink),
            quote(key)
        ))?;
        r.first().map(|r| r.str("json")).transpose()
    }

    fn put_sink_state(
        &mut self,
        sink: &str,
        key: &str,
        json: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let v = self.next_version();
        self.insert_json(
            &self.ctl("sink_state"),
            &[json!({"sink": sink, "key": key, "json": json, "updated_ms": now.0, "version": v})],
        )
    }

    fn put_dead_letter(&mut self, d: &DeadLetter) -> Result<(), StoreError> {
        let v = self.next_version();
        self.insert_json(
            &self.ctl("dead_letters"),
            &[json!({
                "seq": v, "sink": d.sink, "key": d.key, "attempts": d.attempts,
                "error": d.error, "payload": d.payload, "at_ms": d.at.0,
            })],
        )
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = self.ctl_rows(&format!(
            "SELECT sink, key, attempts, error, payload, at_ms FROM {} ORDER BY seq",
            self.ctl("dead_letters")
        ))?;
        rows.iter()
            .map(|r| {
                Ok(DeadLetter {
                    sink: r.str("sink")?,
                    key: r.str("key")?,
                    attempts: r.int("attempts")?,
                    error: r.str("error")?,
                    payload: r.str("payload")?,
                    at: Timestamp(r.int("at_ms")?),
                })
            })
            .collect()
    }
}

/// The filter that picks one warning: (kind, protocol, port, window).
fn alert_key(a: &AlertRow) -> String {
    format!(
        "kind = {} AND proto = {} AND port = {} AND window_start_ms = {}",
        quote(&a.kind),
        a.proto,
        a.port,
        lit(a.window_start.0)
    )
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
