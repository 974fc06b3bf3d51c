//! The embedded default store: an SQLite file (`scanwatch.db`) in the data
//! directory, in WAL mode with `synchronous = FULL`, so a committed transaction is on
//! disk before the caller is told so; the aggregates counted from its event blocks
//! are in a second file beside it (`counts.db`, `counts.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};

pub mod counts;
mod events;
mod functions;
mod port_cells;
mod recount;
mod source_days;
mod upsert;

pub use events::AGGREGATE_EVERY;
pub use port_cells::CELL_EXACT_LIMIT;
pub use source_days::PACK_PORTS;

use crate::{
    hash_token, new_token, valid_sensor_name, AggregateCommit, AlertRow, ApiTokenRecord, AuthStore,
    BatchOutcome, CheckpointStore, ContextItem, ContextKind, ContextStore, DeadLetter, EventStore,
    ImportCounts, PartialRow, PortTotals, Role, SensorRecord, SensorStore, SessionRecord,
    SinkStore, SourcePort, StoreError, StoredCheckpoint, TopBy, UserRecord, WarningStore,
    WindowRow, WindowStore, SCHEMA_VERSION,
};

/// The database file inside the data directory.
pub const DB_FILE: &str = "scanwatch.db";

const SCHEMA: &str = "
CREATE TABLE sensors (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    token_hash   TEXT    NOT NULL UNIQUE,
    created_ms   INTEGER NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0,
    last_seen_ms INTEGER,
    batches      INTEGER NOT NULL DEFAULT 0,
    events       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE batches (
    sensor_id   INTEGER NOT NULL REFERENCES sensors(id),
    batch_id    TEXT    NOT NULL,
    received_ms INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    PRIMARY KEY (sensor_id, batch_id)
) WITHOUT ROWID;
CREATE TABLE events (
    time_ms   INTEGER NOT NULL,
    sensor_id INTEGER NOT NULL REFERENCES sensors(id),
    proto     INTEGER NOT NULL,
    src       BLOB    NOT NULL,
    dst       BLOB    NOT NULL,
    src_port  INTEGER,
    dst_port  INTEGER,
    flags     INTEGER,
    icmp_type INTEGER,
    direction INTEGER NOT NULL,
    action    INTEGER NOT NULL,
    count     INTEGER NOT NULL
);
CREATE INDEX events_by_time ON events(time_ms);
";

/// Version 2 added windows, alerts and API tokens.
const SCHEMA_V2: &str = "
ALTER TABLE events ADD COLUMN scanned_port INTEGER;
ALTER TABLE sensors ADD COLUMN heartbeat_ms INTEGER;
ALTER TABLE sensors ADD COLUMN heartbeat TEXT;
CREATE INDEX events_by_src ON events(src, time_ms);
CREATE TABLE windows (
    window_start_ms INTEGER NOT NULL,
    window_end_ms   INTEGER NOT NULL,
    proto           INTEGER NOT NULL,
    port            INTEGER NOT NULL,
    events          INTEGER NOT NULL,
    sources         INTEGER NOT NULL,
    sensors         INTEGER NOT NULL,
    targets         INTEGER NOT NULL,
    top_sources     TEXT    NOT NULL,
    PRIMARY KEY (proto, port, window_start_ms)
) WITHOUT ROWID;
CREATE INDEX windows_by_time ON windows(window_start_ms);
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL,
    proto           INTEGER NOT NULL,
    port            INTEGER NOT NULL,
    window_start_ms INTEGER NOT NULL,
    severity        INTEGER NOT NULL,
    json            TEXT    NOT NULL,
    UNIQUE (kind, proto, port, window_start_ms)
);
CREATE INDEX alerts_by_time ON alerts(window_start_ms);
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);
";

/// Version 3 added the threat-context items (advisories, assets, benign scanners):
/// JSON documents the CLI imports, keyed by kind and a key chosen by the importer.
const SCHEMA_V3: &str = "
CREATE TABLE context_items (
    kind        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    origin      TEXT    NOT NULL,
    json        TEXT    NOT NULL,
    imported_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
";

/// Version 4 added dashboard users and sessions, and what notification sinks
/// remember (sent surges, dead letters).
const SCHEMA_V4: &str = "
CREATE TABLE users (
    name          TEXT    PRIMARY KEY,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE sessions (
    id_hash    TEXT    PRIMARY KEY,
    user       TEXT    NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE sink_state (
    sink       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    json       TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (sink, key)
) WITHOUT ROWID;
CREATE TABLE dead_letters (
    id       INTEGER PRIMARY KEY,
    sink     TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    attempts INTEGER NOT NULL,
    error    TEXT    NOT NULL,
    payload  TEXT    NOT NULL,
    at_ms    INTEGER NOT NULL
);
";

/// Version 5: partial window aggregates of the scale-out aggregators.
const SCHEMA_V5: &str = "
CREATE TABLE partials (
    commit_id       INTEGER NOT NULL,
    committed_ms    INTEGER NOT NULL,
    window_start_ms INTEGER NOT NULL,
    max_time_ms     INTEGER NOT NULL,
    state           BLOB    NOT NULL
);
CREATE INDEX partials_by_window ON partials (window_start_ms);
";

/// Version 7: the centre's checkpoint (one row: its state and the last block id
/// it covers), and event blocks set aside because they do not decode.
const SCHEMA_V7: &str = "
CREATE TABLE checkpoint (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    mark     INTEGER NOT NULL,
    taken_ms INTEGER NOT NULL,
    state    BLOB    NOT NULL
);
CREATE TABLE damaged_blocks (
    id          INTEGER PRIMARY KEY,
    sensor_id   INTEGER NOT NULL,
    min_time_ms INTEGER NOT NULL,
    max_time_ms INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    error       TEXT    NOT NULL
);
";

/// Version 8: closed windows keyed by time first (a window's close stores a few
/// thousand rows of one start: keyed by port first, each landed on a page of its
/// own, and storing them took a fifth of the centre's ingest work), without the
/// index by time that key makes redundant; and the per-port cells without their
/// per-port index (every new cell wrote a page of it; a port's cells are found by
/// their key, one period at a time).
const SCHEMA_V8: &str = "
DROP INDEX IF EXISTS port_cells_by_port;
CREATE TABLE windows_v8 (
    window_start_ms INTEGER NOT NULL,
    window_end_ms   INTEGER NOT NULL,
    proto           INTEGER NOT NULL,
    port            INTEGER NOT NULL,
    events          INTEGER NOT NULL,
    sources         INTEGER NOT NULL,
    sensors         INTEGER NOT NULL,
    targets         INTEGER NOT NULL,
    top_sources     TEXT    NOT NULL,
    PRIMARY KEY (window_start_ms, proto, port)
) WITHOUT ROWID;
INSERT INTO windows_v8 (window_start_ms, window_end_ms, proto, port, events, sources, sensors, targets, top_sources)
    SELECT window_start_ms, window_end_ms, proto, port, events, sources, sensors, targets, top_sources
    FROM windows ORDER BY window_start_ms, proto, port;
DROP TABLE windows;
ALTER TABLE windows_v8 RENAME TO windows;
";

/// SQLite behind the [`Store`] trait.
#[derive(Debug)]
pub struct SqliteStore {
    /// The store's file, with the aggregates' file attached read-only as `counts`.
    conn: Connection,
    /// The store's own connection to the aggregates' file (`counts.rs`): counts
    /// at commits (unless deferred), on `count_due` and before retention.
    counter: counts::Counter,
    /// Events in blocks not yet counted into the cells and source days
    /// (`events.rs`): counted once they reach `events::AGGREGATE_EVERY`.
    waiting: u64,
    /// Counting left to [`EventStore::count_due`] (the server), not done by the
    /// commit that brings enough events to wait.
    defer: bool,
    /// Event blocks this connection decoded lately (`events::BlockCache`).
    blocks: std::sync::Mutex<events::BlockCache>,
    path: PathBuf,
}

/// An address as the tables store it (4 or 16 bytes), without an allocation:
/// the counting keys each event's source day by it. Ordered as SQLite orders the
/// blobs (bytes, then the shorter first: zero padding is the least byte), so rows
/// sorted by it go in the table's key order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SrcBytes {
    bytes: [u8; 16],
    len: u8,
}

impl SrcBytes {
    pub(crate) fn of(ip: IpAddr) -> SrcBytes {
        let mut bytes = [0; 16];
        let len = match ip {
            IpAddr::V4(a) => {
                bytes[..4].copy_from_slice(&a.octets());
                4
            }
            IpAddr::V6(a) => {
                bytes = a.octets();
                16
            }
        };
        SrcBytes { bytes, len }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    SrcBytes::of(ip).as_slice().to_vec()
}

fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 => <[u8; 16]>::try_from(b)
            .ok()
            .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        _ => None,
    }
}

/// An event of the row-per-event table of versions 1 to 5, its columns from `at`:
/// time, proto, src, dst, src_port, dst_port, flags, icmp_type, direction, action,
/// count.
fn event_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Event> {
    let bad =
        |i: usize| rusqlite::Error::InvalidColumnType(i, "ip".into(), rusqlite::types::Type::Blob);
    let src: Vec<u8> = r.get(at + 2)?;
    let dst: Vec<u8> = r.get(at + 3)?;
    let flags: Option<u8> = r.get(at + 6)?;
    Ok(Event {
        time: Timestamp(r.get(at)?),
        proto: Protocol::from_number(r.get(at + 1)?),
        src: ip_from(&src).ok_or_else(|| bad(at + 2))?,
        dst: ip_from(&dst).ok_or_else(|| bad(at + 3))?,
        src_port: r.get(at + 4)?,
        dst_port: r.get(at + 5)?,
        flags: TcpFlags(flags.unwrap_or(0)),
        flags_known: flags.is_some(),
        icmp_type: r.get(at + 7)?,
        direction: match r.get::<_, i64>(at + 8)? {
            1 => Direction::Inbound,
            2 => Direction::Outbound,
            _ => Direction::Unknown,
        },
        action: match r.get::<_, i64>(at + 9)? {
            1 => Action::Accept,
            2 => Action::Drop,
            3 => Action::Reject,
            _ => Action::Unknown,
        },
        count: r.get(at + 10)?,
    })
}

/// What in a data directory others can read or write: the directory should be
/// 0700 and the database files 0600 (docs/security.md). One line per finding, for
/// the binary to print at start.
pub fn permission_warnings(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |p: &Path, want: u32| {
        if let Ok(m) = std::fs::metadata(p) {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                out.push(format!(
                    "{} is mode {mode:04o}: others can read it; it holds password hashes, session and token hashes (chmod {want:04o})",
                    p.display()
                ));
            }
        }
    };
    check(dir, 0o700);
    for db in [DB_FILE, counts::COUNTS_FILE] {
        for f in [db.to_string(), format!("{db}-wal"), format!("{db}-shm")] {
            check(&dir.join(f), 0o600);
        }
    }
    out
}

/// What each schema version added (the migration to it adds its tables).
pub const MIGRATIONS: [(u32, &str); 10] = [
    (2, "windows, warnings and API tokens"),
    (
        3,
        "threat-context items (advisories, assets, benign scanners)",
    ),
    (
        4,
        "dashboard users and sessions, notification state and dead letters",
    ),
    (5, "partial window aggregates of the scale-out aggregators"),
    (
        6,
        "per-port cells of every hour and day and per-source days (built from the stored events), and keeps raw events as compressed blocks",
    ),
    (
        7,
        "the centre's checkpoint, so a restart replays only the events stored after it, a place for event blocks that do not decode, and source days keyed by day first",
    ),
    (
        8,
        "closed windows keyed by time first and per-port cells without a per-port index, so storing a window's close and counting events append instead of writing a page per port",
    ),
    (
        9,
        "a file of its own for the per-port cells and source days (counts.db), written by a connection of their own while batches commit",
    ),
    (
        10,
        "a source's ports of a day in one row of the aggregates' file (up to 128 ports), so counting writes a row per source and day instead of one per port",
    ),
    (
        11,
        "the events as stored beside each per-port cell and source day, to which their distinct counts are held (a sketch aimed at with chosen addresses cannot read more sources or targets than lines were sent)",
    ),
];

/// What opening the store in `dir` would do to its schema, without changing
/// anything: `None` when there is no database yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationPlan {
    /// The database's schema version now.
    pub from: u32,
    /// The version this build reads ([`SCHEMA_VERSION`]).
    pub to: u32,
    /// What each step adds, oldest first (empty when up to date).
    pub steps: Vec<(u32, &'static str)>,
    /// Where the copy taken before migrating would go.
    pub backup: PathBuf,
}

/// Reads the schema version of the store in `dir` (read-only) and says what a
/// migration would do. A version newer than this build is an error, as at open.
pub fn migration_plan(dir: &Path) -> Result<Option<MigrationPlan>, StoreError> {
    let path = dir.join(DB_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let from: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if from > SCHEMA_VERSION {
        return Err(StoreError::SchemaVersion { found: from });
    }
    Ok(Some(MigrationPlan {
        from,
        to: SCHEMA_VERSION,
        steps: MIGRATIONS
            .iter()
            .copied()
            .filter(|(v, _)| *v > from)
            .collect(),
        backup: backup_path(dir, from),
    }))
}

/// `scanwatch.db.v<version>.bak`, or with `.1`, `.2`, … when taken before.
fn backup_path(dir: &Path, version: u32) -> PathBuf {
    free_name(dir.join(format!("{DB_FILE}.v{version}.bak")))
}

/// `base` if no file has that name, or else the first free `base.1`, `base.2`, …
pub(crate) fn free_name(base: PathBuf) -> PathBuf {
    let mut p = base.clone();
    let mut n = 1;
    while p.exists() && n < 1000 {
        p = PathBuf::from(format!("{}.{n}", base.display()));
        n += 1;
    }
    p
}

/// Copies the database as it is (`VACUUM INTO`: a consistent snapshot, even with a
/// WAL) into a new file, the owner's only, before a migration changes it.
fn backup(conn: &Connection, dir: &Path, version: u32) -> Result<PathBuf, StoreError> {
    // Two processes opening an old store at once both back it up: one of them
    // takes the next name when the other took this one in between.
    let mut attempts = 0;
    let path = loop {
        let path = backup_path(dir, version);
        match std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => break path,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 100 => {
                attempts += 1;
            }
            Err(e) => {
                return Err(StoreError::DataDir {
                    path: path.display().to_string(),
                    reason: format!("cannot create the backup before migrating: {e}"),
                })
            }
        }
    };
    conn.execute("VACUUM INTO ?1", [path.display().to_string()])?;
    Ok(path)
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`. A store of an older schema
    /// version is copied to `scanwatch.db.v<N>.bak` ([`migration_plan`] says
    /// where) and then migrated, in one transaction.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        let data_dir = |e: std::io::Error| StoreError::DataDir {
            path: dir.display().to_string(),
            reason: e.to_string(),
        };
        // A new data directory is the owner's only (0700) and the database file is
        // created 0600 before SQLite opens it (its WAL and shared-memory files take
        // the database file's mode): it holds password hashes and session tokens.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(data_dir)?;
        let path = dir.join(DB_FILE);
        // Only a file that does not exist yet is touched here: closing any other
        // descriptor of an open database would drop this process's SQLite locks
        // on it (POSIX advisory locks are per process).
        counts::create_private(&path).map_err(data_dir)?;
        let mut conn = Connection::open(&path)?;
        functions::register(&conn)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        counts::set_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Ingest writes two index entries per event: with SQLite's 2 MiB default
        // page cache, the indexes spill and are read back on every batch. 64 MiB
        // per connection (readers share the OS page cache, not this one).
        conn.pragma_update(None, "cache_size", -65_536)?;
        // Checkpoint the WAL every 64 MiB instead of every 4 MiB: an index page
        // written by many batches in between is copied to the database once.
        conn.pragma_update(None, "wal_autocheckpoint", 16_384)?;
        // Statement journals in memory, not in files of the temporary directory
        // (`counts::TEMP_STORE`).
        conn.pragma_update(None, "temp_store", counts::TEMP_STORE)?;
        let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if (1..SCHEMA_VERSION).contains(&version) {
            // An upgrade: a consistent copy of the data as it was, first.
            backup(&conn, dir, version)?;
        }
        // Create or migrate under a write lock taken up front, reading the version
        // again under it: two processes opening a new data directory at once (the
        // server starting while `admin sensor add` runs) must not both create the
        // schema (the second would fail on "table already exists").
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaVersion { found: version });
        }
        // Versions before 8 are brought to 8 in the store's file, in one
        // transaction; version 9 then moves the aggregates to a file of their own.
        if version < 8 {
            let tx = write_tx(&mut conn)?;
            let applied = (|| -> Result<(), StoreError> {
                let conn: &Connection = &tx;
                let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
                let v6 = format!(
                    "{} {} {} {SCHEMA_V7} {SCHEMA_V8}",
                    port_cells::SCHEMA_V6,
                    events::SCHEMA_V6,
                    events::SCHEMA_V7
                );
                let steps = match version {
                    // A new store: version 9 at once, its aggregates in their own
                    // file from the start (no version 8 for another process to
                    // see, back up and move).
                    0 => format!(
                        "{SCHEMA} {SCHEMA_V2} {SCHEMA_V3} {SCHEMA_V4} {SCHEMA_V5} {v6}
                         DROP TABLE port_cells; DROP TABLE source_days;"
                    ),
                    // Migrations: add the tables of the versions in between (`v6`
                    // holds versions 7 and 8 too).
                    1 => format!("{SCHEMA_V2} {SCHEMA_V3} {SCHEMA_V4} {SCHEMA_V5} {v6}"),
                    2 => format!("{SCHEMA_V3} {SCHEMA_V4} {SCHEMA_V5} {v6}"),
                    3 => format!("{SCHEMA_V4} {SCHEMA_V5} {v6}"),
                    4 => format!("{SCHEMA_V5} {v6}"),
                    5 => v6,
                    6 => format!("{} {SCHEMA_V7} {SCHEMA_V8}", events::SCHEMA_V7),
                    7 => SCHEMA_V8.to_string(),
                    // Another process migrated it meanwhile.
                    8..=SCHEMA_VERSION => return Ok(()),
                    found => return Err(StoreError::SchemaVersion { found }),
                };
                let to = if version == 0 { SCHEMA_VERSION } else { 8 };
                conn.execute_batch(&format!("{steps} PRAGMA user_version = {to};"))?;
                // The row-per-event table becomes blocks (inside this transaction:
                // a crash leaves the old version, backed up, whole).
                if version < 6 {
                    events::migrate_rows(conn)?;
                }
                Ok(())
            })();
            // (Dropped without a commit, the transaction rolls back.)
            applied?;
            tx.commit()?;
        }
        let (mut counter, aside) = counts::Counter::open_or_recount(dir, &path)?;
        if let Some(aside) = aside {
            tracing::warn!(
                moved_to = %aside.display(),
                "the aggregates' file (counts.db) is not a sound database: moved aside; counting them again from the stored events"
            );
        }
        let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaVersion { found: version });
        }
        if version == 8 {
            // The aggregates are copied into their file first, then dropped here
            // with the version set, under this file's write lock: a crash in
            // between leaves version 8 whole, and the copy is done again.
            counter.move_from_v8()?;
            let tx = write_tx(&mut conn)?;
            let version: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if version == 8 {
                tx.execute_batch(&format!(
                    "DROP TABLE main.port_cells; DROP TABLE main.source_days;
                     PRAGMA user_version = {SCHEMA_VERSION};"
                ))?;
            }
            tx.commit()?;
        }
        if (9..=10).contains(&version) {
            // Version 10 adds a table to the aggregates' file, version 11 a column
            // (both made when the counter opened it, above); the store's file only
            // says so, so that a build of an earlier version, which would not
            // write them, refuses the store.
            if counter.start_again_if_newer()? {
                tracing::warn!(version, "the store was put back to an earlier version after an upgrade (the aggregates hold rows of a later one): counting them again from its events");
            }
            let tx = write_tx(&mut conn)?;
            let now: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if (9..=10).contains(&now) {
                tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
            }
            tx.commit()?;
        }
        // (After the store's file says this version: a crash in between leaves
        // an unmarked file, which the next open marks.)
        counter.mark_version()?;
        if counter.check_against_store()? {
            tracing::warn!("the aggregates were counted further than the store holds (restored from a copy?): counting them again from its events");
        }
        counts::attach_read_only(&conn, &dir.join(counts::COUNTS_FILE), "counts")?;
        let waiting = counter.waiting()?;
        let mut store = SqliteStore {
            conn,
            counter,
            waiting,
            defer: false,
            blocks: Default::default(),
            path,
        };
        // Blocks a migration from row-per-event versions stored, or a lost
        // aggregates file left uncounted, are counted now. A damage that came
        // back during a recount does not keep the store closed: it is opened
        // (queries read the blocks), and every counting fails with the way out
        // until it is taken.
        if store.waiting >= events::AGGREGATE_EVERY {
            match store.aggregate_now() {
                Err(e @ StoreError::DamageRecurs(_)) => {
                    tracing::error!(error = %e, "cannot count the aggregates at open");
                }
                r => r?,
            }
        }
        Ok(store)
    }

    /// A connection of its own that counts this store's waiting blocks into the
    /// aggregates (`counts.rs`), for a thread apart from the one that commits.
    pub fn counter(&self) -> Result<counts::Counter, StoreError> {
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        counts::Counter::open(dir, &self.path)
    }

    /// The deployment's sample seed (`scanwatch_aggregate::sample_seed`): drawn
    /// at random the first time it is asked for, then kept in the store's file for
    /// its life (copied with its backups). Under one write lock, so processes
    /// asking at once agree. Its table is additive (older builds ignore it), so it
    /// needs no schema version of its own.
    pub fn sample_seed(&mut self) -> Result<u64, StoreError> {
        let candidate = crate::random_id()?;
        let tx = write_tx(&mut self.conn)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS deployment (
                 one         INTEGER PRIMARY KEY CHECK (one = 1),
                 sample_seed INTEGER NOT NULL
             );",
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO deployment (one, sample_seed) VALUES (1, ?1)",
            [candidate as i64],
        )?;
        let seed: i64 = tx.query_row("SELECT sample_seed FROM deployment", [], |r| r.get(0))?;
        tx.commit()?;
        Ok(seed as u64)
    }

    /// How many stored event blocks were set aside because they do not decode
    /// (table `damaged_blocks`, with why; the server says so at start).
    pub fn damaged_blocks(&self) -> Result<u64, StoreError> {
        events::damaged(&self.conn)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// From now on, reads the store's file and the aggregates' through a memory
    /// map (`counts::map_for_reading`): for the server's read connections, whose
    /// queries then skip a system call and a copy per page. The price: a disk
    /// read error on a mapped page ends the process (SIGBUS) instead of failing
    /// the query, as does another program truncating a file in place
    /// (`[store] map_reads = false` in the server's config reads without it).
    pub fn map_for_reading(&self) -> Result<(), StoreError> {
        counts::map_for_reading(&self.conn, "main")?;
        counts::map_for_reading(&self.conn, "counts")
    }

    /// [`counts::Counter::set_pack_ports`] for this store's own counting.
    #[doc(hidden)]
    pub fn set_pack_ports(&mut self, n: usize) {
        self.counter.set_pack_ports(n);
    }

    /// Counts every block not yet counted into the cells and source days now
    /// (otherwise done once enough events wait, and before retention). Answers are
    /// the same before and after; queries read less raw data after.
    pub fn aggregate_now(&mut self) -> Result<(), StoreError> {
        self.counter.count()?;
        self.waiting = 0;
        Ok(())
    }

    /// After a commit of `events` events: counts the waiting blocks into the cells
    /// and source days once enough wait (unless deferred to `count_due`), in a
    /// transaction of its own. The batch is
    /// already durable, so a failure here is not the batch's: it is logged, the
    /// blocks wait (queries read them meanwhile) and the next commit tries again.
    fn committed(&mut self, events: usize) {
        self.waiting += events as u64;
        if !self.defer && self.waiting >= events::AGGREGATE_EVERY {
            if let Err(e) = self.aggregate_now() {
                tracing::warn!(error = %e, waiting = self.waiting, "cannot count the stored events into the aggregates yet");
            }
        }
    }

    fn sensor_id(&self, name: &str) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT id FROM sensors WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::NoSuchSensor(name.to_string()))
    }
}

/// A port's history (`?1` protocol, `?2` port, `?3`..`?4` the range of window
/// starts). Windows are keyed by time first (version 8): it walks the range's
/// distinct starts (each the least start after the last, one seek) and looks the
/// port up under each (one seek), instead of a port-first key every close scatters
/// its rows over. Public for the history bench, which times it against a port
/// index.
pub const PORT_HISTORY_SQL: &str = "WITH RECURSIVE starts(s) AS (
         SELECT MIN(window_start_ms) FROM windows
         WHERE window_start_ms >= ?3 AND window_start_ms < ?4
         UNION ALL
         SELECT (SELECT MIN(window_start_ms) FROM windows
                 WHERE window_start_ms > starts.s AND window_start_ms < ?4)
         FROM starts WHERE starts.s IS NOT NULL
     )
     SELECT w.window_start_ms, w.window_end_ms, w.proto, w.port, w.events, w.sources, w.sensors, w.targets, w.top_sources
     FROM starts JOIN windows w ON w.window_start_ms = starts.s AND w.proto = ?1 AND w.port = ?2
     ORDER BY w.window_start_ms";

/// A transaction that writes: the write lock taken at `BEGIN` (waiting on the busy
/// timeout). A deferred one that reads first and then writes fails at once with
/// `SQLITE_BUSY` when another connection (`scanwatch admin` while the server starts,
/// the notifier's own connection) committed in between: SQLite cannot upgrade a
/// stale snapshot, and its busy handler is not asked.
fn write_tx(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// A user row; `None` for a role this build does not know.
fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<UserRecord>> {
    let role: String = r.get(1)?;
    let Some(role) = Role::parse(&role) else {
        return Ok(None);
    };
    Ok(Some(UserRecord {
        name: r.get(0)?,
        role,
        password_hash: r.get(2)?,
        created: Timestamp(r.get(3)?),
    }))
}

fn window_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WindowRow> {
    Ok(WindowRow {
        window_start: Timestamp(r.get(0)?),
        window_end: Timestamp(r.get(1)?),
        proto: r.get(2)?,
        port: r.get(3)?,
        events: r.get::<_, i64>(4)? as u64,
        sources: r.get::<_, i64>(5)? as u64,
        sensors: r.get::<_, i64>(6)? as u64,
        targets: r.get::<_, i64>(7)? as u64,
        top_sources_json: r.get(8)?,
    })
}

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        proto: r.get(2)?,
        port: r.get(3)?,
        window_start: Timestamp(r.get(4)?),
        severity_rank: r.get(5)?,
        json: r.get(6)?,
    })
}

const ALERT_COLUMNS: &str = "id, kind, proto, port, window_start_ms, severity, json";

impl SensorStore for SqliteStore {
    fn add_sensor(&mut self, name: &str, now: Timestamp) -> Result<String, StoreError> {
        if !valid_sensor_name(name) {
            return Err(StoreError::InvalidName(name.to_string()));
        }
        let token = new_token()?;
        let r = self.conn.execute(
            "INSERT INTO sensors (name, token_hash, created_ms) VALUES (?1, ?2, ?3)",
            params![name, hash_token(&token), now.0],
        );
        match r {
            Ok(_) => Ok(token),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::SensorExists(name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn revoke_sensor(&mut self, name: &str) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute("UPDATE sensors SET revoked = 1 WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(StoreError::NoSuchSensor(name.to_string()));
        }
        Ok(())
    }

    fn sensors(&self) -> Result<Vec<SensorRecord>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT name, created_ms, revoked, last_seen_ms, batches, events, heartbeat_ms, heartbeat FROM sensors ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(SensorRecord {
                name: r.get(0)?,
                created: Timestamp(r.get(1)?),
                revoked: r.get::<_, i64>(2)? != 0,
                last_seen: r.get::<_, Option<i64>>(3)?.map(Timestamp),
                batches: r.get::<_, i64>(4)? as u64,
                events: r.get::<_, i64>(5)? as u64,
                heartbeat: match (r.get::<_, Option<i64>>(6)?, r.get::<_, Option<String>>(7)?) {
                    (Some(t), Some(j)) => Some((Timestamp(t), j)),
                    _ => None,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn record_heartbeat(
        &mut self,
        sensor: &str,
        json: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE sensors SET heartbeat_ms = ?1, heartbeat = ?2 WHERE name = ?3",
            params![now.0, json, sensor],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchSensor(sensor.to_string()));
        }
        Ok(())
    }

    fn authenticate_sensor(&self, token: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name FROM sensors WHERE token_hash = ?1 AND revoked = 0",
                [hash_token(token)],
                |r| r.get(0),
            )
            .optional()?)
    }
}

impl EventStore for SqliteStore {
    fn prune(
        &mut self,
        events_before: Timestamp,
        windows_before: Timestamp,
    ) -> Result<(u64, u64), StoreError> {
        // Everything counted first, so nothing before the cut waits to be counted;
        // then the blocks and `pruned_to` here, and the aggregates wholly before
        // the cut in their file after (`counts.rs`: queries never read them then).
        self.aggregate_now()?;
        let tx = write_tx(&mut self.conn)?;
        let events = events::prune_blocks(&tx, events_before.0)?;
        tx.execute(
            "DELETE FROM batches WHERE received_ms < ?1",
            [events_before.0],
        )?;
        let windows = tx.execute(
            "DELETE FROM windows WHERE window_start_ms < ?1",
            [windows_before.0],
        )?;
        tx.execute(
            "DELETE FROM partials WHERE window_start_ms < ?1",
            [events_before.0],
        )?;
        tx.execute(
            "DELETE FROM alerts WHERE window_start_ms < ?1",
            [windows_before.0],
        )?;
        // IDS alerts go with the events they came with; expired sessions go too.
        tx.execute(
            "DELETE FROM context_items WHERE kind = ?1 AND imported_ms < ?2",
            params![crate::ContextKind::Ids.name(), events_before.0],
        )?;
        tx.execute(
            "DELETE FROM sessions WHERE expires_ms < ?1",
            [events_before.0],
        )?;
        tx.commit()?;
        // Retention happened; cells left before the cut are never read and the
        // next cut deletes them.
        if let Err(e) = self.counter.prune(events_before.0) {
            tracing::warn!(error = %e, "cannot delete the aggregates before the retention cut yet");
        }
        Ok((events, windows as u64))
    }

    fn top_ports(
        &self,
        from: Timestamp,
        to: Timestamp,
        by: TopBy,
        limit: usize,
    ) -> Result<Vec<PortTotals>, StoreError> {
        port_cells::top_ports(&self.conn, &self.path, &self.blocks, from, to, by, limit)
    }

    fn source_activity(
        &self,
        src: IpAddr,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SourcePort>, StoreError> {
        events::source_activity(&self.conn, &self.path, &self.blocks, src, from, to)
    }

    fn commit_batch(
        &mut self,
        sensor: &str,
        batch_id: &str,
        events: &[Event],
        received: Timestamp,
    ) -> Result<BatchOutcome, StoreError> {
        // Before the sensor, as the other backend checks.
        crate::check_counts(events)?;
        let sensor_id = self.sensor_id(sensor)?;
        let tx = write_tx(&mut self.conn)?;
        if !insert_batch(&tx, sensor_id, batch_id, events, received)? {
            return Ok(BatchOutcome::Duplicate);
        }
        tx.commit()?;
        self.committed(events.len());
        Ok(BatchOutcome::Accepted {
            events: events.len(),
        })
    }

    fn defer_counting(&mut self) {
        self.defer = true;
    }

    fn count_due(&mut self) -> Result<(), StoreError> {
        if self.waiting >= events::AGGREGATE_EVERY || self.counter.recount_asked() {
            self.aggregate_now()?;
        }
        Ok(())
    }

    fn uncounted(&self) -> Result<u64, StoreError> {
        // The watermark from the aggregates' file (attached read-only), then the
        // blocks after it: a sum over their rows' leading columns (the blocks'
        // data is not read).
        events::waiting(&self.conn)
    }

    fn counter(&self) -> Result<Option<Box<dyn crate::Counting>>, StoreError> {
        Ok(Some(Box::new(SqliteStore::counter(self)?)))
    }

    fn stored_batches(
        &self,
        _shard_key: u64,
        ids: &[(&str, &str)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT 1 FROM batches b JOIN sensors s ON s.id = b.sensor_id
             WHERE s.name = ?1 AND b.batch_id = ?2",
        )?;
        ids.iter()
            .map(|(s, b)| Ok(st.exists(params![s, b])?))
            .collect()
    }

    fn commit_aggregate(&mut self, c: &AggregateCommit<'_>) -> Result<(), StoreError> {
        for b in &c.batches {
            crate::check_counts(b.events)?;
        }
        let mut ids = std::collections::HashMap::new();
        for b in &c.batches {
            if !ids.contains_key(b.sensor) {
                ids.insert(b.sensor, self.sensor_id(b.sensor)?);
            }
        }
        let tx = write_tx(&mut self.conn)?;
        for b in &c.batches {
            if !insert_batch(&tx, ids[b.sensor], b.batch_id, b.events, c.received)? {
                // Dropping the transaction rolls the whole commit back.
                return Err(StoreError::BatchStored {
                    sensor: b.sensor.to_string(),
                    batch: b.batch_id.to_string(),
                });
            }
        }
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO partials (commit_id, committed_ms, window_start_ms, max_time_ms, state)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for p in &c.partials {
                // The id's bits as SQLite's signed integer.
                let id = i64::from_ne_bytes(p.commit.to_ne_bytes());
                st.execute(params![
                    id,
                    p.committed.0,
                    p.window_start.0,
                    p.max_time.0,
                    p.state
                ])?;
            }
        }
        tx.commit()?;
        self.committed(c.batches.iter().map(|b| b.events.len()).sum());
        Ok(())
    }

    fn partials_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        committed_since: Timestamp,
    ) -> Result<Vec<PartialRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT commit_id, committed_ms, window_start_ms, max_time_ms, state FROM partials
             WHERE window_start_ms >= ?1 AND window_start_ms < ?2 AND committed_ms >= ?3
             ORDER BY window_start_ms, rowid",
        )?;
        let rows = st.query_map(params![from.0, to.0, committed_since.0], |r| {
            Ok(PartialRow {
                commit: u64::from_ne_bytes(r.get::<_, i64>(0)?.to_ne_bytes()),
                committed: Timestamp(r.get(1)?),
                window_start: Timestamp(r.get(2)?),
                max_time: Timestamp(r.get(3)?),
                state: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn events_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, Event)>, StoreError> {
        events::between(&self.conn, from, to)
    }
}

impl CheckpointStore for SqliteStore {
    fn event_mark(&self) -> Result<Option<u64>, StoreError> {
        events::mark(&self.conn)
    }

    fn events_after(&self, mark: u64) -> Result<Vec<(String, Event)>, StoreError> {
        events::after(&self.conn, mark)
    }

    fn put_checkpoint(&mut self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO checkpoint (one, mark, taken_ms, state) VALUES (1, ?1, ?2, ?3)",
            )?
            .execute(params![
                i64::try_from(c.mark).map_err(|e| StoreError::Encode(e.to_string()))?,
                c.taken.0,
                c.state
            ])?;
        Ok(())
    }

    fn checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = self
            .conn
            .prepare_cached("SELECT mark, taken_ms, state FROM checkpoint WHERE one = 1")?
            .query_row([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .optional()?;
        row.map(|(mark, taken, state)| {
            Ok(StoredCheckpoint {
                mark: u64::try_from(mark).map_err(|e| StoreError::Encode(e.to_string()))?,
                taken: Timestamp(taken),
                state,
            })
        })
        .transpose()
    }
}

impl WindowStore for SqliteStore {
    fn put_windows(&mut self, rows: &[WindowRow]) -> Result<(), StoreError> {
        let tx = write_tx(&mut self.conn)?;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO windows (window_start_ms, window_end_ms, proto, port, events, sources, sensors, targets, top_sources)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for w in rows {
                st.execute(params![
                    w.window_start.0,
                    w.window_end.0,
                    w.proto,
                    w.port,
                    w.events as i64,
                    w.sources as i64,
                    w.sensors as i64,
                    w.targets as i64,
                    w.top_sources_json
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn latest_window(&self) -> Result<Option<(Timestamp, Timestamp)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT window_start_ms, window_end_ms FROM windows ORDER BY window_start_ms DESC LIMIT 1",
                [],
                |r| Ok((Timestamp(r.get(0)?), Timestamp(r.get(1)?))),
            )
            .optional()?)
    }

    fn windows_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<WindowRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT window_start_ms, window_end_ms, proto, port, events, sources, sensors, targets, top_sources FROM windows
             WHERE window_start_ms >= ?1 AND window_start_ms < ?2 ORDER BY window_start_ms, proto, port",
        )?;
        let rows = st.query_map(params![from.0, to.0], window_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn port_history(
        &self,
        proto: u8,
        port: u16,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<WindowRow>, StoreError> {
        let mut st = self.conn.prepare_cached(PORT_HISTORY_SQL)?;
        let rows = st.query_map(params![proto, port, from.0, to.0], window_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl WarningStore for SqliteStore {
    fn put_alert(&mut self, a: &AlertRow) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO alerts (kind, proto, port, window_start_ms, severity, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![a.kind, a.proto, a.port, a.window_start.0, a.severity_rank, a.json],
        )?;
        Ok(self.conn.query_row(
            "SELECT id FROM alerts WHERE kind = ?1 AND proto = ?2 AND port = ?3 AND window_start_ms = ?4",
            params![a.kind, a.proto, a.port, a.window_start.0],
            |r| r.get(0),
        )?)
    }

    fn upsert_alert(&mut self, a: &AlertRow) -> Result<(i64, bool), StoreError> {
        let tx = write_tx(&mut self.conn)?;
        let old: Option<(i64, u8, String)> = tx
            .query_row(
                "SELECT id, severity, json FROM alerts WHERE kind = ?1 AND proto = ?2 AND port = ?3 AND window_start_ms = ?4",
                params![a.kind, a.proto, a.port, a.window_start.0],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let out = match old {
            Some((id, sev, json)) if sev == a.severity_rank && json == a.json => (id, false),
            Some((id, _, _)) => {
                tx.execute(
                    "UPDATE alerts SET severity = ?2, json = ?3 WHERE id = ?1",
                    params![id, a.severity_rank, a.json],
                )?;
                (id, true)
            }
            None => {
                tx.execute(
                    "INSERT INTO alerts (kind, proto, port, window_start_ms, severity, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![a.kind, a.proto, a.port, a.window_start.0, a.severity_rank, a.json],
                )?;
                (tx.last_insert_rowid(), true)
            }
        };
        tx.commit()?;
        Ok(out)
    }

    fn alerts(
        &self,
        from: Timestamp,
        to: Timestamp,
        min_severity: u8,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE window_start_ms >= ?1 AND window_start_ms < ?2 AND severity >= ?3
             ORDER BY severity DESC, window_start_ms DESC, id"
        ))?;
        let rows = st.query_map(params![from.0, to.0, min_severity], alert_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn alert(&self, id: i64) -> Result<Option<AlertRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                [id],
                alert_row,
            )
            .optional()?)
    }
}

impl AuthStore for SqliteStore {
    fn add_api_token(
        &mut self,
        name: &str,
        role: Role,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        if !valid_sensor_name(name) {
            return Err(StoreError::InvalidName(name.to_string()));
        }
        let token = new_token()?;
        match self.conn.execute(
            "INSERT INTO api_tokens (name, role, token_hash, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.name(), hash_token(&token), now.0],
        ) {
            Ok(_) => Ok(token),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::TokenExists(name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn authenticate_api(&self, token: &str) -> Result<Option<(String, Role)>, StoreError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT name, role FROM api_tokens WHERE token_hash = ?1 AND revoked = 0",
                [hash_token(token)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(n, r)| Role::parse(&r).map(|r| (n, r))))
    }

    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT name, role, created_ms, revoked FROM api_tokens ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, role, created, revoked) = row?;
            if let Some(role) = Role::parse(&role) {
                out.push(ApiTokenRecord {
                    name,
                    role,
                    created: Timestamp(created),
                    revoked: revoked != 0,
                });
            }
        }
        Ok(out)
    }

    fn revoke_api_token(&mut self, name: &str) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute("UPDATE api_tokens SET revoked = 1 WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(StoreError::NoSuchToken(name.to_string()));
        }
        Ok(())
    }

    fn put_user(&mut self, u: &UserRecord, replace: bool) -> Result<(), StoreError> {
        if !valid_sensor_name(&u.name) {
            return Err(StoreError::InvalidName(u.name.clone()));
        }
        let sql = if replace {
            "INSERT INTO users (name, role, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash"
        } else {
            "INSERT INTO users (name, role, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4)"
        };
        let tx = write_tx(&mut self.conn)?;
        match tx.execute(
            sql,
            params![u.name, u.role.name(), u.password_hash, u.created.0],
        ) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(StoreError::UserExists(u.name.clone()))
            }
            Err(e) => return Err(e.into()),
        }
        if replace {
            // A new password ends the user's sessions.
            tx.execute("DELETE FROM sessions WHERE user = ?1", [&u.name])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn remove_user(&mut self, name: &str, _now: Timestamp) -> Result<bool, StoreError> {
        let tx = write_tx(&mut self.conn)?;
        let n = tx.execute("DELETE FROM users WHERE name = ?1", [name])?;
        tx.execute("DELETE FROM sessions WHERE user = ?1", [name])?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, role, password_hash, created_ms FROM users WHERE name = ?1",
                [name],
                user_row,
            )
            .optional()?
            .flatten())
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT name, role, password_hash, created_ms FROM users ORDER BY name")?;
        let rows = st.query_map([], user_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.extend(r?);
        }
        Ok(out)
    }

    fn put_session(&mut self, s: &SessionRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO sessions (id_hash, user, csrf, created_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.id_hash, s.user, s.csrf, s.created.0, s.expires.0],
        )?;
        Ok(())
    }

    fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id_hash, user, csrf, created_ms, expires_ms FROM sessions
                 WHERE id_hash = ?1 AND expires_ms > ?2",
                params![id_hash, now.0],
                |r| {
                    Ok(SessionRecord {
                        id_hash: r.get(0)?,
                        user: r.get(1)?,
                        csrf: r.get(2)?,
                        created: Timestamp(r.get(3)?),
                        expires: Timestamp(r.get(4)?),
                    })
                },
            )
            .optional()?)
    }

    fn delete_session(&mut self, id_hash: &str, now: Timestamp) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM sessions WHERE id_hash = ?1 OR expires_ms <= ?2",
            params![id_hash, now.0],
        )?;
        Ok(())
    }
}

impl ContextStore for SqliteStore {
    fn put_context_items(
        &mut self,
        kind: ContextKind,
        items: &[ContextItem],
        now: Timestamp,
    ) -> Result<ImportCounts, StoreError> {
        let kind = kind.name();
        let tx = write_tx(&mut self.conn)?;
        let mut counts = ImportCounts::default();
        {
            let mut get =
                tx.prepare_cached("SELECT json FROM context_items WHERE kind = ?1 AND key = ?2")?;
            let mut put = tx.prepare_cached(
                "INSERT INTO context_items (kind, key, origin, json, imported_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kind, key) DO UPDATE SET
                   origin = excluded.origin, json = excluded.json, imported_ms = excluded.imported_ms",
            )?;
            for it in items {
                let old: Option<String> = get
                    .query_row(params![kind, it.key], |r| r.get(0))
                    .optional()?;
                match old {
                    Some(o) if o == it.json => counts.unchanged += 1,
                    Some(_) => counts.updated += 1,
                    None => counts.added += 1,
                }
                put.execute(params![kind, it.key, it.origin, it.json, now.0])?;
            }
        }
        tx.commit()?;
        Ok(counts)
    }

    fn delete_context_origin(
        &mut self,
        kind: ContextKind,
        origin: &str,
    ) -> Result<usize, StoreError> {
        let kind = kind.name();
        Ok(self.conn.execute(
            "DELETE FROM context_items WHERE kind = ?1 AND origin = ?2",
            params![kind, origin],
        )?)
    }

    fn context_items(&self, kind: ContextKind) -> Result<Vec<ContextItem>, StoreError> {
        let kind = kind.name();
        let mut st = self.conn.prepare_cached(
            "SELECT key, origin, json FROM context_items WHERE kind = ?1 ORDER BY key",
        )?;
        let rows = st.query_map([kind], |r| {
            Ok(ContextItem {
                key: r.get(0)?,
                origin: r.get(1)?,
                json: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl SinkStore for SqliteStore {
    fn sink_state(&self, sink: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT json FROM sink_state WHERE sink = ?1 AND key = ?2",
                [sink, key],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn put_sink_state(
        &mut self,
        sink: &str,
        key: &str,
        json: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO sink_state (sink, key, json, updated_ms) VALUES (?1, ?2, ?3, ?4)",
            params![sink, key, json, now.0],
        )?;
        Ok(())
    }

    fn put_dead_letter(&mut self, d: &DeadLetter) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO dead_letters (sink, key, attempts, error, payload, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![d.sink, d.key, d.attempts, d.error, d.payload, d.at.0],
        )?;
        Ok(())
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT sink, key, attempts, error, payload, at_ms FROM dead_letters ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(DeadLetter {
                sink: r.get(0)?,
                key: r.get(1)?,
                attempts: r.get(2)?,
                error: r.get(3)?,
                payload: r.get(4)?,
                at: Timestamp(r.get(5)?),
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// Stores one batch in an open transaction: its id, its events and the sensor's
/// counters. False (and nothing written) if the sensor sent this batch id before.
fn insert_batch(
    tx: &rusqlite::Transaction<'_>,
    sensor_id: i64,
    batch_id: &str,
    events: &[Event],
    received: Timestamp,
) -> Result<bool, StoreError> {
    crate::check_counts(events)?;
    let fresh = tx.execute(
        "INSERT OR IGNORE INTO batches (sensor_id, batch_id, received_ms, events) VALUES (?1, ?2, ?3, ?4)",
        params![sensor_id, batch_id, received.0, events.len() as i64],
    )?;
    if fresh == 0 {
        return Ok(false);
    }
    events::store(tx, sensor_id, events)?;
    let total: i64 = events.iter().map(|e| i64::from(e.count)).sum();
    tx.execute(
        "UPDATE sensors SET batches = batches + 1, events = events + ?1,
                 last_seen_ms = MAX(COALESCE(last_seen_ms, ?2), ?2) WHERE id = ?3",
        params![total, received.0, sensor_id],
    )?;
    Ok(true)
}
