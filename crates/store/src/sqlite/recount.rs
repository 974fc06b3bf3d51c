//! Counting the aggregates again after a damaged one, kept in `counts.db` so that
//! it outlives a restart: how many times the aggregates were emptied (the epoch)
//! and, while a recount after a damage runs, the last block stored when it began.
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
//!   emptied it, and its ask, from another epoch, is not taken. Likewise a counter
//!   that met a damage after another counter emptied the aggregates for it.
//!
//! Every emptying moves the epoch on: [`start_again`](super::counts) does, and a
//! trigger does it for any watermark moved back (also by a build before the
//! epochs, which knows nothing of this row).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::StoreError;

/// The recounts' row in `counts.db` (added to files made before it when a counter
/// opens them; a build before it does not read it, and its resets of the
/// watermark move the epoch on through the trigger).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS recounts (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    epoch    INTEGER NOT NULL,
    to_block INTEGER
);
INSERT OR IGNORE INTO recounts (one, epoch, to_block) VALUES (1, 0, NULL);
CREATE TRIGGER IF NOT EXISTS recounts_on_reset AFTER UPDATE OF block_id ON counted
WHEN NEW.block_id < OLD.block_id
BEGIN
    UPDATE recounts SET epoch = epoch + 1, to_block = NULL WHERE one = 1;
END;
";

/// The names [`SCHEMA`] makes, for the check that a file has them.
pub(crate) const NAMES: [&str; 2] = ["recounts", "recounts_on_reset"];

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

/// A number moved on at every emptying of the aggregates in this `counts.db`
/// (by one or more): only compared for equality.
pub(crate) fn epoch(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT epoch FROM recounts WHERE one = 1", [], |r| r.get(0))?)
}

/// Marks a recount after a damage begun, in the caller's transaction (the one
/// that emptied the aggregates): the last block stored now.
pub(crate) fn begin(tx: &Connection) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE recounts SET to_block = (SELECT COALESCE(MAX(id), 0) FROM ev.event_blocks)
         WHERE one = 1",
        [],
    )?;
    Ok(())
}

/// The aggregates are emptied, in the caller's transaction: the epoch moves on,
/// and a recount under way is forgotten (one that empties them for a damage marks
/// its own after this; one for another reason, a lost file or one counted past
/// the store, counts a damage it meets away as any other).
pub(crate) fn emptied(tx: &Connection) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE recounts SET epoch = epoch + 1, to_block = NULL WHERE one = 1",
        [],
    )?;
    Ok(())
}

/// Ends a recount under way once nothing waits to be counted (the blocks up to
/// where it began may have gone: a store file put back from a copy). Takes this
/// file's write lock only then.
pub(crate) fn end_if_done(conn: &mut Connection) -> Result<(), StoreError> {
    let done = "SELECT r.to_block IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM ev.event_blocks WHERE id > c.block_id)
        FROM recounts r, counted c WHERE r.one = 1 AND c.one = 1";
    if !conn.query_row(done, [], |r| r.get::<_, bool>(0))? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if tx.query_row(done, [], |r| r.get::<_, bool>(0))? {
        tx.execute("UPDATE recounts SET to_block = NULL WHERE one = 1", [])?;
    }
    tx.commit()?;
    Ok(())
}

/// Runs a query of the aggregates on one snapshot of both files: `read` gets the
/// snapshot and the watermark the aggregates were counted to (read first, so
/// the blocks read after it hold every block they count). A damaged aggregate
/// it meets leaves the ask for a recount, with the snapshot's epoch; met while a
/// recount after a damage runs (in the snapshot), it came back:
/// [`StoreError::DamageRecurs`], not the error a recount will mend.
pub(crate) fn in_snapshot<T>(
    conn: &Connection,
    store_file: &Path,
    read: impl FnOnce(&Connection, i64) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let (mark, epoch, recounting): (i64, i64, bool) = tx.query_row(
        "SELECT c.block_id, r.epoch, r.to_block IS NOT NULL AND c.block_id < r.to_block
         FROM counted c, recounts r WHERE c.one = 1 AND r.one = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    match read(&tx, mark) {
        Err(StoreError::DamagedAggregate(what)) => {
            // Asked also when it came back: the counting that takes the ask
            // fails with the way out (`counts.rs`), which the centre reports.
            let asked = ask(store_file, epoch);
            if recounting {
                return Err(StoreError::DamageRecurs(what));
            }
            Err(StoreError::DamagedAggregate(match asked {
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

/// A name beside the ask of this process and call's own (`counts.db.recount.` +
/// `what` + a random part): queries and counters of other threads and processes
/// write and take asks at once.
fn own_name(store_file: &Path, what: &str) -> std::io::Result<PathBuf> {
    let n = crate::random_id().map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(store_file.with_file_name(format!("{RECOUNT_FILE}.{what}.{n:016x}")))
}

/// Leaves the ask for a recount, holding `epoch`: written aside and renamed into
/// place, so the counting reads a whole one (the owner's only, as the store's
/// files are).
fn ask(store_file: &Path, epoch: i64) -> std::io::Result<()> {
    let part = own_name(store_file, "asking")?;
    let written = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&part)
        .and_then(|mut f| f.write_all(epoch.to_string().as_bytes()))
        .and_then(|()| std::fs::rename(&part, ask_file(store_file)));
    if written.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    written
}

/// Removes what an ask or a take cut short by a crash left beside the store
/// (`counts.db.recount.asking.*`, `.taking.*`), if older than ten minutes (a
/// younger one may be another process's, in hand).
pub(crate) fn clear_leftovers(store_file: &Path) {
    let Some(dir) = store_file.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefixes = [
        format!("{RECOUNT_FILE}.asking."),
        format!("{RECOUNT_FILE}.taking."),
    ];
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(600));
        if old && prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
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

/// Takes the ask for a recount, if there is one: claimed (renamed to a name of
/// this call's own, so an ask left meanwhile is the next one, and two counters
/// never take the same), then read and removed. One that cannot be taken is an
/// error, before anything is emptied; one claimed but not read is put back, so
/// every counting fails on it until it is mended.
pub(crate) fn take(store_file: &Path) -> Result<Ask, StoreError> {
    let path = ask_file(store_file);
    let err = |e: std::io::Error| StoreError::DataDir {
        path: path.display().to_string(),
        reason: format!("cannot take the ask for a recount: {e}"),
    };
    let taken = own_name(store_file, "taking").map_err(err)?;
    match std::fs::rename(&path, &taken) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ask::None),
        Err(e) => return Err(err(e)),
    }
    let said = match std::fs::read_to_string(&taken) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::rename(&taken, &path);
            return Err(err(e));
        }
    };
    std::fs::remove_file(&taken).map_err(err)?;
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
