//! Counting the aggregates again after a damaged one, kept in `counts.db` so that
//! it outlives a restart: which recount this is (its epoch) and, while one runs,
//! the last block stored when it began.
//!
//! A stored aggregate that does not read back (damaged on disk, or written behind
//! the store's back) starts the aggregates again from the blocks (`Counter::count`,
//! `counts.rs`). Two things must not turn that into a loop:
//!
//! - a damage met *again* before the recount is done (a failing disk, a defect) is
//!   not counted away again: the counting fails with the way out. The guard is the
//!   row below, written in the transaction that empties the aggregates, so a
//!   restarted centre keeps it (before, it lived in the counter's memory, and every
//!   restart began one recount more);
//! - a query leaves an ask for a recount ([`RECOUNT_FILE`]) when it meets a damaged
//!   aggregate, and it writes there the epoch of its snapshot: a query whose
//!   snapshot predates a recount may meet the damaged row after that recount has
//!   emptied it, and its ask, from an older epoch, is not taken.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::StoreError;

/// The recounts' row in `counts.db` (added to files made before it when a counter
/// opens them; a build before it ignores the table).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS recounts (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    epoch    INTEGER NOT NULL,
    to_block INTEGER
);
INSERT OR IGNORE INTO recounts (one, epoch, to_block) VALUES (1, 0, NULL);
";

/// The file a query leaves beside the store's (`counts.db.recount`) when it met a
/// stored aggregate that does not read back, holding the recount epoch of its
/// snapshot: the next counting, in whichever process, starts the aggregates again
/// (unless a recount began since) and removes it.
pub const RECOUNT_FILE: &str = "counts.db.recount";

pub(crate) fn ask_file(store_file: &Path) -> PathBuf {
    store_file.with_file_name(RECOUNT_FILE)
}

/// Whether a recount after a damaged aggregate is under way: one began and the
/// watermark has not yet passed the last block stored then.
pub(crate) fn under_way(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT r.to_block IS NOT NULL AND c.block_id < r.to_block
         FROM recounts r, counted c WHERE r.one = 1 AND c.one = 1",
        [],
        |r| r.get(0),
    )?)
}

/// The number of recounts begun so far in this `counts.db`.
pub(crate) fn epoch(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT epoch FROM recounts WHERE one = 1", [], |r| r.get(0))?)
}

/// Marks a recount begun, in the caller's transaction (the one that empties the
/// aggregates): the next epoch, and the last block stored now.
pub(crate) fn begin(tx: &Connection) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE recounts SET epoch = epoch + 1,
             to_block = (SELECT COALESCE(MAX(id), 0) FROM ev.event_blocks)
         WHERE one = 1",
        [],
    )?;
    Ok(())
}

/// Forgets a recount under way, in the caller's transaction: the aggregates start
/// again for another reason (lost, or counted past the store), and a damage met in
/// that counting is counted away as any other.
pub(crate) fn forget(tx: &Connection) -> Result<(), StoreError> {
    tx.execute("UPDATE recounts SET to_block = NULL WHERE one = 1", [])?;
    Ok(())
}

/// Runs a query of the aggregates on one snapshot of both files: `read` gets the
/// snapshot and the watermark the aggregates were counted to (read first, so
/// the blocks read after it hold every block they count). A damaged aggregate
/// it meets leaves the ask for a recount, with the snapshot's epoch.
pub(crate) fn in_snapshot<T>(
    conn: &Connection,
    store_file: &Path,
    read: impl FnOnce(&Connection, i64) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let (mark, epoch): (i64, i64) = tx.query_row(
        "SELECT c.block_id, r.epoch FROM counted c, recounts r WHERE c.one = 1 AND r.one = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    match read(&tx, mark) {
        Err(StoreError::DamagedAggregate(what)) => {
            Err(StoreError::DamagedAggregate(match ask(store_file, epoch) {
                Ok(()) => format!(
                    "{what}; the next counting counts the aggregates again from the stored events"
                ),
                Err(e) => format!(
                    "{what}; cannot ask for a recount at {}: {e}",
                    ask_file(store_file).display()
                ),
            }))
        }
        r => r,
    }
}

/// Leaves the ask for a recount, holding `epoch`: written aside and renamed into
/// place, so the counting reads a whole one (the owner's only, as the store's
/// files are).
fn ask(store_file: &Path, epoch: i64) -> std::io::Result<()> {
    // A name of this ask's own: queries on other threads may ask at once.
    static ASKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = ASKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = ask_file(store_file);
    let part = path.with_extension(format!("recount.{}.{n}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&part)
        .and_then(|mut f| f.write_all(epoch.to_string().as_bytes()))
        .and_then(|()| std::fs::rename(&part, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    written
}

/// What an ask said.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ask {
    /// No ask waits.
    None,
    /// An ask from a query whose snapshot had this epoch; `None` when it does not
    /// say (left by a build before the epochs): taken as current.
    From(Option<i64>),
}

/// Takes the ask for a recount, if there is one: read, then removed (one that
/// cannot be read or removed is an error, before anything is emptied: left in
/// place it would ask again at every counting).
pub(crate) fn take(store_file: &Path) -> Result<Ask, StoreError> {
    let path = ask_file(store_file);
    let err = |e: std::io::Error| StoreError::DataDir {
        path: path.display().to_string(),
        reason: format!("cannot take the ask for a recount: {e}"),
    };
    let said = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ask::None),
        Err(e) => return Err(err(e)),
    };
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        // Another process's counting took it meanwhile: it acts on it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ask::None),
        Err(e) => return Err(err(e)),
    }
    Ok(Ask::From(said.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ask_reads_back_its_epoch_and_is_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("scanwatch.db");
        assert_eq!(take(&store).unwrap(), Ask::None);
        ask(&store, 7).unwrap();
        ask(&store, 9).unwrap();
        assert_eq!(take(&store).unwrap(), Ask::From(Some(9)));
        assert_eq!(take(&store).unwrap(), Ask::None);
        // An ask of a build before the epochs (an empty file) is a current one.
        std::fs::write(ask_file(&store), "").unwrap();
        assert_eq!(take(&store).unwrap(), Ask::From(None));
        // Nothing is left beside the store.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
