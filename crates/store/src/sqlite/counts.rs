//! The embedded store's aggregates in a database file of their own (`counts.db`
//! beside `scanwatch.db`, since schema version 9): the per-port cells
//! (`port_cells`), the sources' days (`source_ports` since version 10, and
//! `source_days`: `source_days.rs`) and the watermark they are counted to
//! (`counted`).
//!
//! Why a second file: SQLite has one writer per file, and counting stored blocks
//! into these tables is most of the work of ingest (about 70 % in the ingest
//! bench's split), so on one file it held the write lock the batches' commits
//! wait for. With its own file, a [`Counter`] (its own connection: `counts.db` as
//! `main`, the store's file attached read-only as `ev`) writes while the store's
//! connection commits batches; the two cores work at once. The store's connection
//! has `counts.db` attached read-only as `counts`, so its queries name the tables
//! as before. A read-only attachment matters: `BEGIN IMMEDIATE` takes the write
//! lock of every attached database that is writable. A counter counting a backlog
//! of more than one transaction reads the blocks on a second connection of its
//! own (the store's file attached read-only), on a thread of its own.
//!
//! Consistency: the cells, the source days and the watermark change in one
//! transaction of this file; the blocks (the record, in the store's file) are only
//! added to, except by retention. A query reads the watermark first (its snapshot
//! of this file) and then the blocks after it (its snapshot of the store's file,
//! taken later, so it holds every block the cells count): each committed batch is
//! counted once. Retention cuts the blocks and moves `pruned_to` first and deletes
//! the cells wholly before the cut after (queries never read cells before
//! `pruned_to`). The aggregates are derived: a lost or deleted `counts.db` is
//! recounted from the blocks (watermark 0) when the store opens.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior};

use super::recount::{self, Ask};
use super::{events, functions, port_cells, source_days};
use crate::StoreError;

/// The aggregates' file, beside [`super::DB_FILE`].
pub const COUNTS_FILE: &str = "counts.db";

/// The aggregates' tables (the shapes of the store's versions 6 to 8, where they
/// lived in the store's file) and the watermark.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS port_cells (
    span_ms   INTEGER NOT NULL,
    start_ms  INTEGER NOT NULL,
    proto     INTEGER NOT NULL,
    port      INTEGER NOT NULL,
    events    INTEGER NOT NULL,
    n_src     INTEGER NOT NULL,
    n_sensors INTEGER NOT NULL,
    records   INTEGER,
    src       BLOB    NOT NULL,
    dst       BLOB    NOT NULL,
    sensors   BLOB    NOT NULL,
    PRIMARY KEY (span_ms, start_ms, proto, port)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS port_cells_busy
    ON port_cells (span_ms, start_ms, proto, port, events, n_src, n_sensors)
    WHERE events >= 8;
CREATE TABLE IF NOT EXISTS source_days (
    day_ms   INTEGER NOT NULL,
    src      BLOB    NOT NULL,
    proto    INTEGER NOT NULL,
    port     INTEGER NOT NULL,
    events   INTEGER NOT NULL,
    first_in INTEGER NOT NULL,
    last_in  INTEGER NOT NULL,
    records  INTEGER,
    sensors  BLOB    NOT NULL,
    targets  BLOB    NOT NULL,
    PRIMARY KEY (day_ms, src, proto, port)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counted (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    block_id INTEGER NOT NULL
);
INSERT OR IGNORE INTO counted (one, block_id) VALUES (1, 0);
";

/// Version 9 moves the aggregates of a version-8 store (in its file) here: the
/// rows and the watermark, replacing whatever this file held (a move cut short by
/// a crash is simply done again).
const MOVE_FROM_V8: &str = "
DELETE FROM port_cells;
DELETE FROM source_days;
DELETE FROM source_ports;
INSERT INTO port_cells (span_ms, start_ms, proto, port, events, n_src, n_sensors, src, dst, sensors)
    SELECT span_ms, start_ms, proto, port, events, n_src, n_sensors, src, dst, sensors
    FROM ev.port_cells ORDER BY span_ms, start_ms, proto, port;
INSERT INTO source_days (day_ms, src, proto, port, events, first_in, last_in, sensors, targets)
    SELECT day_ms, src, proto, port, events, first_in, last_in, sensors, targets
    FROM ev.source_days ORDER BY day_ms, src, proto, port;
UPDATE counted SET block_id = (SELECT block_id FROM ev.aggregated WHERE one = 1) WHERE one = 1;
UPDATE recounts SET epoch = epoch + 1, to_block = NULL WHERE one = 1;
";

/// The first schema version whose builds mark this file ([`Counter::mark_version`]).
const MARKED_SINCE: u32 = 11;

/// A file name as an SQLite URI (`file://` and the absolute path, with `%`, `?`
/// and `#` escaped), so it can carry `mode=ro`.
fn uri(path: &Path, query: &str) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut s = String::from("file://");
    for c in path.display().to_string().chars() {
        match c {
            '%' => s.push_str("%25"),
            '?' => s.push_str("%3f"),
            '#' => s.push_str("%23"),
            c => s.push(c),
        }
    }
    s.push('?');
    s.push_str(query);
    s
}

/// Attaches the database file `path` to `conn` read-only, as `name`.
pub(crate) fn attach_read_only(
    conn: &Connection,
    path: &Path,
    name: &str,
) -> Result<(), StoreError> {
    conn.execute(
        &format!("ATTACH DATABASE ?1 AS {name}"),
        [uri(path, "mode=ro")],
    )?;
    Ok(())
}

/// Where a writing connection keeps its statement journals (and temporary
/// tables): in memory. SQLite's default is a file in the temporary directory,
/// written page by page with a 4-byte header each, for a statement that changes
/// several rows inside a larger transaction, as the counting's upserts of 64
/// rows do (`strace -f -y` on the ingest bench: 16,362 of 40,902 writes of 300
/// batches went to such files; BENCHMARKS.md). A statement journal holds at most
/// the pages its one statement changes.
pub(crate) const TEMP_STORE: &str = "MEMORY";

/// How much of a database file a connection reads through a memory map.
pub(crate) const MAP_BYTES: u64 = 1 << 30;

/// Has `conn` read the database `schema` (`main` or an attached name) through a
/// memory map of up to [`MAP_BYTES`] instead of a `pread` into SQLite's page
/// cache per page: the desk's 30-day `topports`, which reads a few thousand pages
/// of cells, took 24–27 ms against 35 ms (query bench, BENCHMARKS.md). Writes
/// still go through the WAL, and SQLite's own connections never truncate a file
/// below what a reader's snapshot maps (this store never vacuums in place). The
/// mapped pages are the kernel's page cache, counted in the process's resident
/// memory once read, and reclaimable. Only the server's read connections map
/// (`SqliteStore::map_for_reading`): not the writer's, nor the counting's (no
/// quicker in the ingest bench, and its upserts walk all of the aggregates).
pub(crate) fn map_for_reading(conn: &Connection, schema: &str) -> Result<(), StoreError> {
    conn.pragma_update(Some(schema), "mmap_size", MAP_BYTES as i64)?;
    Ok(())
}

/// Creates `path` the owner's only if it does not exist (SQLite's WAL and
/// shared-memory files take its mode): the store's files hold what it holds.
pub(crate) fn create_private(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        // Another process created it in between: theirs is as good.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Switches a connection's database to WAL. Switching a new database takes an
/// exclusive lock without waiting on the busy handler: retried, bounded, when
/// another process opens it too.
pub(crate) fn set_wal(conn: &Connection) -> Result<(), StoreError> {
    for attempt in 0.. {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => break,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && attempt < 200 =>
            {
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A connection that counts the store's waiting blocks into the aggregates, apart
/// from the store's own connection: the server runs one on a thread of its own
/// (`EventStore::counter`), so counting never holds the lock batches commit under.
#[derive(Debug)]
pub struct Counter {
    conn: Connection,
    /// Reads the store's blocks (attached read-only, as `ev`) for the thread
    /// that counts the next ones in memory while `conn` writes the ones before;
    /// opened the first time a backlog needs it.
    reader: Option<Connection>,
    /// Raised by the merge functions when a stored counter does not decode.
    damage: functions::Damage,
    /// How many ports of a source's day go in its one row
    /// ([`source_days::PACK_PORTS`]).
    pack_ports: usize,
    /// The store's file (blocks set aside as damaged are moved there).
    store_file: PathBuf,
    /// Blocks and events per transaction ([`events::GroupLimit::DEFAULT`];
    /// fewer in tests, so that small stores are read ahead).
    group: events::GroupLimit,
    /// Groups this counter took from its reading thread.
    read_ahead: u64,
}

impl Counter {
    /// Opens the aggregates of the store in `dir` (`store_file` is its
    /// database), creating their tables if the file is new.
    pub(crate) fn open(dir: &Path, store_file: &Path) -> Result<Counter, StoreError> {
        let path = dir.join(COUNTS_FILE);
        create_private(&path).map_err(|e| StoreError::DataDir {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut conn = Connection::open(&path)?;
        let damage = functions::register(&conn)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        set_wal(&conn)?;
        // Derived data: a commit lost to a power cut takes its watermark with it
        // (one transaction), and the blocks are counted again.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.pragma_update(None, "wal_autocheckpoint", 16_384)?;
        conn.pragma_update(None, "temp_store", TEMP_STORE)?;
        // Read first: every process that opens the store opens this file, and
        // only a new one needs the write lock.
        // (A file of version 9 lacks the table of version 10, one made before the
        // recounts' row lacks that.)
        let made: bool = conn.query_row(
            &format!(
                "SELECT COUNT(*) = 4 FROM sqlite_master
                 WHERE name IN ('counted', 'source_ports', '{}', '{}')",
                recount::NAMES[0],
                recount::NAMES[1]
            ),
            [],
            |r| r.get(0),
        )?;
        if !made {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(SCHEMA)?;
            tx.execute_batch(source_days::SCHEMA_V10)?;
            tx.execute_batch(recount::SCHEMA)?;
            tx.commit()?;
        }
        // A file of a build before version 11 has cells and source days without
        // their records: the column is added (NULL in its rows, whose events
        // stand in).
        const RECORDED: [&str; 2] = ["port_cells", "source_days"];
        let missing = |conn: &Connection| -> rusqlite::Result<Vec<&str>> {
            let mut out = Vec::new();
            for table in RECORDED {
                let has: bool = conn.query_row(
                    "SELECT COUNT(*) = 1 FROM pragma_table_info(?1) WHERE name = 'records'",
                    [table],
                    |r| r.get(0),
                )?;
                if !has {
                    out.push(table);
                }
            }
            Ok(out)
        };
        if !missing(&conn)?.is_empty() {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for table in missing(&tx)? {
                tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN records INTEGER"))?;
            }
            tx.commit()?;
        }
        attach_read_only(&conn, store_file, "ev")?;
        recount::clear_leftovers(store_file);
        Ok(Counter {
            conn,
            reader: None,
            damage,
            pack_ports: source_days::PACK_PORTS,
            group: events::GroupLimit::DEFAULT,
            read_ahead: 0,
            store_file: store_file.to_path_buf(),
        })
    }

    /// As [`Counter::open`], but an aggregates' file that is not a sound database
    /// (damaged on disk, or written over) is moved aside (`counts.db.damaged`, or
    /// `.damaged.1`, …, its WAL and shared memory with it: a stale WAL must not be
    /// played into the new file) and a new one made, counted again from the
    /// blocks: the aggregates are derived. Returns where the damaged file went.
    pub(crate) fn open_or_recount(
        dir: &Path,
        store_file: &Path,
    ) -> Result<(Counter, Option<PathBuf>), StoreError> {
        match Counter::open(dir, store_file) {
            Err(StoreError::Db(rusqlite::Error::SqliteFailure(f, _)))
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
                ) =>
            {
                let aside = move_aside(dir)?;
                Ok((Counter::open(dir, store_file)?, Some(aside)))
            }
            r => r.map(|c| (c, None)),
        }
    }

    /// Moves a version-8 store's aggregates into this file, if the store is still
    /// at version 8 (read under this file's write lock; the caller then drops them
    /// from the store's file and sets version 9 there).
    pub(crate) fn move_from_v8(&mut self) -> Result<(), StoreError> {
        durably(&mut self.conn, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: u32 = tx.pragma_query_value(Some("ev"), "user_version", |r| r.get(0))?;
            if version == 8 {
                tx.execute_batch(MOVE_FROM_V8)?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Starts the aggregates afresh (watermark 0) if they were counted further
    /// than the store's file has ever stored (its block ids are never reused):
    /// the store's file was put back from an older copy, and the cells count
    /// events it does not hold while its next blocks would take ids below the
    /// watermark and never be counted.
    pub(crate) fn check_against_store(&mut self) -> Result<bool, StoreError> {
        fn ahead(conn: &Connection) -> Result<bool, StoreError> {
            // The highest id ever given (AUTOINCREMENT keeps it in
            // `sqlite_sequence`; a table made without it has only its rows).
            let sequence: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM ev.sqlite_master WHERE name = 'sqlite_sequence')",
                [],
                |r| r.get(0),
            )?;
            let given = if sequence {
                "MAX(COALESCE((SELECT MAX(id) FROM ev.event_blocks), 0),
                     COALESCE((SELECT seq FROM ev.sqlite_sequence WHERE name = 'event_blocks'), 0))"
            } else {
                "COALESCE((SELECT MAX(id) FROM ev.event_blocks), 0)"
            };
            Ok(conn.query_row(
                &format!("SELECT (SELECT block_id FROM counted WHERE one = 1) > {given}"),
                [],
                |r| r.get(0),
            )?)
        }
        // Read first: the write lock only when there is something to do.
        if !ahead(&self.conn)? {
            return Ok(false);
        }
        durably(&mut self.conn, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let reset = ahead(&tx)?;
            if reset {
                start_again(&tx)?;
            }
            tx.commit()?;
            Ok(reset)
        })
    }

    /// Starts the aggregates afresh (watermark 0) if they hold what only a later
    /// build writes while the store's file says an earlier version, before it is
    /// set to this build's: packed source days at version 9 (version 10 packs
    /// them), or anything at version 9 or 10 once a build of version 11 or later
    /// opened the store (it marks this file, [`Counter::mark_version`]: then its
    /// cells keep their records). The store was put back from its copy of the
    /// earlier version (an upgrade undone), and a build of that version may since
    /// have counted into this file: the same events again into rows of their own
    /// (it starts afresh without clearing the packed rows, which it does not
    /// know), or events into cells whose records it leaves as they were (a bound
    /// then too low). Counting again from the blocks is exact either way.
    pub(crate) fn start_again_if_newer(&mut self) -> Result<bool, StoreError> {
        durably(&mut self.conn, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Read again under this file's lock: another process may have set the
            // store to this version and counted into it meanwhile.
            let version: u32 = tx.pragma_query_value(Some("ev"), "user_version", |r| r.get(0))?;
            let packed: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM source_ports)", [], |r| {
                    r.get(0)
                })?;
            let marked: u32 = tx.pragma_query_value(Some("main"), "user_version", |r| r.get(0))?;
            let again =
                (version == 9 && packed) || ((9..=10).contains(&version) && marked >= MARKED_SINCE);
            if again {
                start_again(&tx)?;
            }
            tx.commit()?;
            Ok(again)
        })
    }

    /// Marks this file as opened by a build of this schema version (its
    /// `user_version`, read by [`Counter::start_again_if_newer`]), once the
    /// store's file says it: from then on the cells keep their records, which an
    /// earlier build would not.
    pub(crate) fn mark_version(&mut self) -> Result<(), StoreError> {
        let marked = |c: &Connection| -> rusqlite::Result<u32> {
            c.pragma_query_value(Some("main"), "user_version", |r| r.get(0))
        };
        if marked(&self.conn)? >= crate::SCHEMA_VERSION {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if marked(&tx)? < crate::SCHEMA_VERSION {
            tx.pragma_update(Some("main"), "user_version", crate::SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Keeps at most `n` ports of a source's day in its one row from now on
    /// (the rest in rows of their own). Not a setting: the tests count with a
    /// small bound, and with none (the layout of version 9).
    #[doc(hidden)]
    pub fn set_pack_ports(&mut self, n: usize) {
        self.pack_ports = n;
    }

    /// Counts at most `n` blocks (at least 1) in a transaction from now on, so
    /// that a backlog of more than `n` is read ahead on a second thread. Not a
    /// setting: the tests read ahead in small stores.
    #[doc(hidden)]
    pub fn set_group_blocks(&mut self, n: usize) {
        self.group.blocks = n.max(1);
    }

    /// Reads no more blocks into a transaction once it holds `n` events (its
    /// first block is read whatever its size). Not a setting: for the tests.
    #[doc(hidden)]
    pub fn set_group_lines(&mut self, n: i64) {
        self.group.lines = n.max(1);
    }

    /// How many groups of blocks this counter took from its reading thread (for
    /// the tests: that the path of two threads ran).
    #[doc(hidden)]
    pub fn groups_read_ahead(&self) -> u64 {
        self.read_ahead
    }

    /// How many events wait in blocks after the watermark.
    pub fn waiting(&self) -> Result<u64, StoreError> {
        events::waiting(&self.conn)
    }

    /// Counts every block after the watermark into the aggregates and moves it:
    /// at most [`events::GROUP_BLOCKS`] blocks (and [`events::GROUP_LINES`]
    /// events past the first block) per transaction of this file (which
    /// locks only this file), so another counter (another process's) waits at most
    /// one of them (`count_waiting`).
    ///
    /// A stored aggregate that does not read back (damaged on disk, or written
    /// behind the store's back), met here or by a query (which leaves
    /// [`RECOUNT_FILE`], looked for before and after counting), starts the
    /// aggregates again from the blocks, as a lost `counts.db` does: the counting
    /// goes on instead of stopping at that row. Meanwhile queries read the blocks,
    /// slower and exact. One met again before that recount is done fails the
    /// counting instead, also after a restart (`recount.rs`).
    pub fn count(&mut self) -> Result<(), StoreError> {
        self.take_ask()?;
        loop {
            match self.count_waiting()? {
                Counted::All => {}
                // More may wait, or another counter moved the watermark: on
                // from where it is.
                Counted::Again => continue,
                Counted::Damage { why, seen } => {
                    self.recount(&why, seen)?;
                    continue;
                }
            }
            // A query may have asked while this counting ran.
            if self.take_ask()? {
                continue;
            }
            recount::end_if_done(&mut self.conn)?;
            return Ok(());
        }
    }

    /// Counts the blocks after the watermark in transactions of up to
    /// [`events::GROUP_BLOCKS`] blocks and [`events::GROUP_LINES`] events (so another counter, another process's, waits
    /// at most one of them), each checking the watermark is where its blocks
    /// follow. A backlog of more than one transaction is counted by two threads:
    /// one reads the next blocks and counts them in memory (on `reader`) while
    /// this one writes the ones before, the part that holds the lock; at most
    /// two groups are in memory (the one written, the one read). Reading and
    /// counting in memory were about a third of the counting's time in a profile
    /// of the twelve-sensor ingest bench; a backlog of a million events counted
    /// about 1.4 times as fast so (BENCHMARKS.md, "The counting reads ahead"). A
    /// smaller one is counted here alone: handing a group's counts to another
    /// thread cost more than it saved.
    fn count_waiting(&mut self) -> Result<Counted, StoreError> {
        let start = events::watermark(&self.conn)?;
        let limit = self.group;
        let Some(first) = events::prepare_next(&self.conn, start, limit)? else {
            return Ok(Counted::All);
        };
        if first.is_full() && self.reader.is_none() {
            let reader = Connection::open_in_memory()?;
            reader.busy_timeout(std::time::Duration::from_secs(10))?;
            attach_read_only(&reader, &self.store_file, "ev")?;
            self.reader = Some(reader);
        }
        let Counter {
            conn,
            reader,
            damage,
            pack_ports,
            store_file,
            read_ahead,
            ..
        } = self;
        let mut group = Group {
            conn,
            damage,
            pack_ports: *pack_ports,
            store_file,
            limit,
        };
        let Some(reader) = reader.as_mut().filter(|_| first.is_full()) else {
            return Ok(group.write(first)?.unwrap_or(Counted::Again));
        };
        let interrupt = reader.get_interrupt_handle();
        std::thread::scope(|scope| {
            // A rendezvous: the next group is handed over once this thread takes
            // it, so two are in memory at most.
            let (send, next) = std::sync::mpsc::sync_channel(0);
            let mut after = first.last();
            let reading = std::thread::Builder::new()
                .name("scanwatch-count-read".into())
                .spawn_scoped(scope, move || loop {
                    let prepared = events::prepare_next(reader, after, limit);
                    let go_on = match &prepared {
                        Ok(Some(p)) => {
                            after = p.last();
                            true
                        }
                        Ok(None) | Err(_) => false,
                    };
                    // The writer stopped taking them: nothing more to read.
                    if send.send(prepared).is_err() || !go_on {
                        return;
                    }
                });
            if let Err(e) = reading {
                tracing::warn!(error = %e, "cannot start a thread to read the blocks to count: counting on one thread");
                return group.on_one_thread(first);
            }
            let mut prepared = first;
            let counted = loop {
                match group.write(prepared) {
                    Ok(None) => {}
                    r => break r.map(|c| c.unwrap_or(Counted::All)),
                }
                prepared = match next.recv() {
                    Ok(Ok(Some(p))) => {
                        *read_ahead += 1;
                        p
                    }
                    Ok(Ok(None)) => break Ok(Counted::All),
                    Ok(Err(e)) => break Err(e),
                    // The reading thread panicked: the scope passes it on.
                    Err(_) => break Ok(Counted::Again),
                };
            };
            if !matches!(counted, Ok(Counted::All)) {
                // Stopped early: the group being read is not wanted.
                interrupt.interrupt();
            }
            // The reading thread's next send fails: it ends (the scope waits).
            drop(next);
            counted
        })
    }

    /// Counts if at least [`events::AGGREGATE_EVERY`] events wait, or a query
    /// asked for the aggregates to be counted again.
    pub fn count_due(&mut self) -> Result<(), StoreError> {
        if self.recount_asked() || self.waiting()? >= events::AGGREGATE_EVERY {
            self.count()?;
        }
        Ok(())
    }

    pub(crate) fn recount_asked(&self) -> bool {
        recount::ask_file(&self.store_file).exists()
    }

    /// Takes a query's ask for a recount, if there is one, under this file's
    /// write lock (one that cannot be taken fails here, before anything is
    /// emptied), and starts the recount as [`begin_recount`] decides. Whether it
    /// did.
    fn take_ask(&mut self) -> Result<bool, StoreError> {
        if !self.recount_asked() {
            return Ok(false);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let asked_at = match recount::take(&self.store_file)? {
            Ask::None => return Ok(false),
            Ask::From(epoch) => epoch,
        };
        begin_recount(
            tx,
            "a query met a stored aggregate that does not read back",
            asked_at,
        )
    }

    /// Empties the aggregates and sets the watermark to 0 (everything stored is
    /// counted again) for a damage met in aggregates of epoch `seen`, as
    /// [`begin_recount`] decides.
    fn recount(&mut self, why: &str, seen: i64) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        begin_recount(tx, why, Some(seen)).map(drop)
    }

    /// Retention cut the blocks before `cut` (and moved `pruned_to`): the cells
    /// and source days wholly before it go. The hour and the day it cuts through
    /// stay, unread, until a later cut passes them.
    pub(crate) fn prune(&mut self, cut: i64) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        source_days::prune(&tx, cut)?;
        port_cells::prune(&tx, cut)?;
        tx.commit()?;
        Ok(())
    }
}

pub use super::recount::RECOUNT_FILE;

/// What writing a group of counted blocks needs of a [`Counter`].
struct Group<'a> {
    conn: &'a mut Connection,
    damage: &'a functions::Damage,
    pack_ports: usize,
    store_file: &'a Path,
    /// Blocks per transaction.
    limit: events::GroupLimit,
}

impl Group<'_> {
    /// Writes `prepared` in a transaction of its own, if the watermark is still
    /// where its blocks follow; `None` when written, else how the counting ends.
    fn write(&mut self, prepared: events::Prepared) -> Result<Option<Counted>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if events::watermark(&tx)? != prepared.after() {
            return Ok(Some(Counted::Again));
        }
        self.damage.take();
        let damaged = match prepared.write(&tx, self.pack_ports) {
            Err(e) if self.damage.take() || is_damage(&e) => {
                // The epoch of the aggregates that met it: another counter may
                // empty them before this one has the lock again.
                let seen = recount::epoch(&tx)?;
                return Ok(Some(Counted::Damage {
                    why: e.to_string(),
                    seen,
                }));
            }
            r => r?,
        };
        if !damaged.is_empty() {
            set_aside(self.store_file, &damaged)?;
        }
        tx.commit()?;
        Ok(None)
    }

    /// Writes `first` and reads and writes the groups after it, on this thread.
    fn on_one_thread(&mut self, first: events::Prepared) -> Result<Counted, StoreError> {
        let mut prepared = first;
        loop {
            let after = prepared.last();
            if let Some(end) = self.write(prepared)? {
                return Ok(end);
            }
            match events::prepare_next(self.conn, after, self.limit)? {
                Some(p) => prepared = p,
                None => return Ok(Counted::All),
            }
        }
    }
}

/// How a counting of the waiting blocks ended.
enum Counted {
    /// Every block that waited is counted.
    All,
    /// Count on from the watermark: more may wait, or another counter moved it.
    Again,
    /// A stored aggregate did not read back, met in aggregates of epoch `seen`.
    Damage { why: String, seen: i64 },
}

/// Empties the aggregates and marks a recount begun, in `tx` (which holds this
/// file's write lock, so the guard is read and set under it), for a damaged
/// aggregate met in aggregates of epoch `seen` (`None`: not known, an ask left by
/// a build before the epochs). Does nothing when they were emptied since (the
/// damage went with them), or when a recount is under way and `seen` is not
/// known. Fails with the way out when the damage was met during the recount
/// under way: it came back (a failing disk, a defect). Whether it began one.
fn begin_recount(
    tx: rusqlite::Transaction<'_>,
    why: &str,
    seen: Option<i64>,
) -> Result<bool, StoreError> {
    let now = recount::epoch(&tx)?;
    if let Some(seen) = seen.filter(|&s| s != now) {
        tracing::info!(
            seen,
            now,
            "a damaged aggregate met before the aggregates were last emptied: not counted again"
        );
        return Ok(false);
    }
    if recount::under_way(&tx)? {
        if seen.is_none() {
            return Ok(false);
        }
        return Err(StoreError::DamageRecurs(why.to_string()));
    }
    tracing::error!(reason = %why, "a stored aggregate does not read back: counting the aggregates again from the stored events");
    start_again(&tx)?;
    recount::begin(&tx)?;
    tx.commit()?;
    Ok(true)
}

fn is_damage(e: &StoreError) -> bool {
    matches!(e, StoreError::DamagedAggregate(_))
}

/// Runs `f` with this file's commits synced (`synchronous = FULL`; else
/// `NORMAL`, which a power cut may roll back by a few commits, and which is
/// safe for the counting: the older watermark and cells still describe the
/// same blocks, which are counted again). A change of what the cells describe
/// (emptied to count again, moved from an older store) must not be rolled back
/// once the store's file, synced at every commit, has moved on from it (set
/// its version, stored blocks with ids below the old watermark): the cells
/// would describe another history, and nothing would look at them again.
fn durably<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.pragma_update(None, "synchronous", "FULL")?;
    let r = f(conn);
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    r
}

/// Empties every aggregate and sets the watermark to 0, in the caller's
/// transaction: everything stored is counted again (the recount epoch moves on,
/// and a recount under way is forgotten: [`begin_recount`] marks its own after
/// this).
fn start_again(tx: &Connection) -> Result<(), StoreError> {
    tx.execute_batch(&format!(
        "DELETE FROM port_cells; {} UPDATE counted SET block_id = 0 WHERE one = 1;",
        source_days::CLEAR
    ))?;
    recount::emptied(tx)?;
    Ok(())
}

/// Renames a damaged `counts.db` and its `-wal` and `-shm` to the first free
/// `counts.db.damaged[.N]` (with the same suffixes). Another process that moved it
/// first is as good.
fn move_aside(dir: &Path) -> Result<PathBuf, StoreError> {
    let err = |p: &Path, e: std::io::Error| StoreError::DataDir {
        path: p.display().to_string(),
        reason: format!("cannot move the damaged aggregates aside: {e}"),
    };
    let aside = super::free_name(dir.join(format!("{COUNTS_FILE}.damaged")));
    for suffix in ["", "-wal", "-shm"] {
        let from = dir.join(format!("{COUNTS_FILE}{suffix}"));
        let to = PathBuf::from(format!("{}{suffix}", aside.display()));
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(&from, e)),
        }
    }
    Ok(aside)
}

/// Moves blocks that do not decode (rare: damaged on disk, or written behind the
/// store's back) into the store's `damaged_blocks`, on a connection of its own to
/// the store's file, before the counting that passed them commits: a crash in
/// between leaves them set aside and not yet passed, which the next counting
/// does not see. (The locks are taken in this order only: this file's, then the
/// store's; nothing takes them the other way round.)
fn set_aside(store_file: &Path, damaged: &[(i64, String)]) -> Result<(), StoreError> {
    let mut store = Connection::open(store_file)?;
    store.busy_timeout(std::time::Duration::from_secs(10))?;
    let tx = store.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (id, why) in damaged {
        events::set_aside(&tx, *id, why)?;
    }
    tx.commit()?;
    Ok(())
}

impl crate::Counting for Counter {
    fn count_due(&mut self) -> Result<(), StoreError> {
        Counter::count_due(self)
    }

    fn count_all(&mut self) -> Result<(), StoreError> {
        Counter::count(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use scanwatch_event::{Event, Timestamp};

    /// Two counters meet one damage: the second to have the lock finds the
    /// aggregates emptied by the first since it met it (another epoch), so it
    /// neither empties them again nor takes the recount under way for the damage
    /// coming back; a damage met in the recount's own epoch does fail with the
    /// way out.
    #[test]
    fn a_damage_another_counter_counted_away_meanwhile_is_left_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = crate::sqlite::SqliteStore::open(dir.path()).unwrap();
        s.add_sensor("a", Timestamp(0)).unwrap();
        let ip = std::net::IpAddr::from([192, 0, 2, 1]);
        let events: Vec<Event> = (0..100u16)
            .map(|n| {
                Event::syn_probe(
                    Timestamp(1_700_000_000_000 + i64::from(n) * 1_000),
                    ip,
                    ip,
                    80 + n,
                    1,
                )
            })
            .collect();
        s.commit_batch("a", "b0", &events, Timestamp(0)).unwrap();
        let (mut a, mut b) = (s.counter().unwrap(), s.counter().unwrap());
        a.count().unwrap();
        let seen = recount::epoch(&a.conn).unwrap();
        b.recount("a damage", seen).unwrap();
        assert!(recount::under_way(&b.conn).unwrap());
        let sentinel = "SELECT COUNT(*) FROM port_cells WHERE span_ms = 1";
        a.conn
            .execute_batch(
                "INSERT INTO port_cells VALUES (1, 0, 6, 1, 1, 1, 1, 1, x'00', x'00', x'00')",
            )
            .unwrap();
        a.recount("a damage", seen).unwrap();
        let kept: i64 = a.conn.query_row(sentinel, [], |r| r.get(0)).unwrap();
        assert_eq!(kept, 1, "emptied again");
        let now = recount::epoch(&a.conn).unwrap();
        assert_ne!(now, seen);
        let err = a.recount("a damage", now).unwrap_err();
        assert!(err.to_string().contains("remove counts.db"), "{err}");
        // Counted to the end, the recount is over.
        a.conn
            .execute("DELETE FROM port_cells WHERE span_ms = 1", [])
            .unwrap();
        a.count().unwrap();
        let to_block = |c: &Connection| -> Option<i64> {
            c.query_row("SELECT to_block FROM recounts", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(to_block(&a.conn), None);
        // A recount whose last blocks went (set aside, a store put back) ends
        // when nothing waits.
        a.conn
            .execute("UPDATE recounts SET to_block = 1000000000", [])
            .unwrap();
        assert!(recount::under_way(&a.conn).unwrap());
        a.count().unwrap();
        assert_eq!(to_block(&a.conn), None);
    }
}
