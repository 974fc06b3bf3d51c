//! SQL functions the embedded store registers on its connection, so a counting
//! merges a cell or a source day into the stored one in one upsert (`INSERT …
//! ON CONFLICT DO UPDATE`) instead of a read and a write: a B-tree seek less per
//! row, about a row per event with the random-port tail.
//!
//! - `sw_merge_distinct(stored, new)`: the union of two encoded distinct counters
//!   (`scanwatch_aggregate::Distinct`, exact up to [`CELL_EXACT_LIMIT`] keys, then
//!   a sketch), encoded: the merge the counting did in Rust before.
//! - `sw_merged_distinct_count(stored, new)`: how many distinct keys that union
//!   holds (the cells keep it beside the counter, for the busy index).
//!
//! A counter that does not decode fails the statement (and with it the counting's
//! transaction), as the read-merge-write did. A stored one (the first argument)
//! also raises the connection's [`Damage`] flag: SQLite carries a function's
//! error out of the statement as text only, and the counting must tell a
//! damaged stored aggregate (counted again from the events) from other failures.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::Connection;
use scanwatch_aggregate::{decode_distinct, encode_distinct, Distinct};

use super::CELL_EXACT_LIMIT;

/// Raised when a stored counter given to one of the functions did not decode.
#[derive(Debug, Clone, Default)]
pub(crate) struct Damage(Arc<AtomicBool>);

impl Damage {
    /// Whether a stored counter failed to decode since the last call.
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

fn merged(ctx: &Context<'_>, damage: &Damage) -> rusqlite::Result<Distinct> {
    // The first argument is the stored counter: one that does not read back is
    // damaged derived data.
    let fail = |i: usize, e: &dyn std::fmt::Display| {
        if i == 0 {
            damage.0.store(true, Ordering::Relaxed);
        }
        let what = if i == 0 { " (the stored counter)" } else { "" };
        rusqlite::Error::UserFunctionError(format!("argument {i}{what}: {e}").into())
    };
    let arg = |i: usize| -> rusqlite::Result<Distinct> {
        let bytes = ctx.get_raw(i).as_blob().map_err(|e| fail(i, &e))?;
        decode_distinct(bytes).map_err(|e| fail(i, &e))
    };
    let mut stored = arg(0)?;
    stored.merge(&arg(1)?, CELL_EXACT_LIMIT);
    Ok(stored)
}

/// Registers the functions on `conn` (every connection the store opens: only the
/// counting's statements use them); the flag says when a stored counter did not
/// decode.
pub(crate) fn register(conn: &Connection) -> rusqlite::Result<Damage> {
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    let damage = Damage::default();
    let d = damage.clone();
    conn.create_scalar_function("sw_merge_distinct", 2, flags, move |ctx| {
        Ok(encode_distinct(&merged(ctx, &d)?))
    })?;
    let d = damage.clone();
    conn.create_scalar_function("sw_merged_distinct_count", 2, flags, move |ctx| {
        Ok(merged(ctx, &d)?.distinct() as i64)
    })?;
    Ok(damage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_counters_and_refuses_what_does_not_decode() {
        let conn = Connection::open_in_memory().unwrap();
        let damage = register(&conn).unwrap();
        let enc = |keys: &[u64]| {
            let mut d = Distinct::default();
            for k in keys {
                d.add_hash(*k, CELL_EXACT_LIMIT);
            }
            encode_distinct(&d)
        };
        let (a, b) = (enc(&[1, 2, 3]), enc(&[3, 4]));
        let (bytes, n): (Vec<u8>, i64) = conn
            .query_row(
                "SELECT sw_merge_distinct(?1, ?2), sw_merged_distinct_count(?1, ?2)",
                [&a, &b],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(n, 4);
        assert_eq!(decode_distinct(&bytes).unwrap().distinct(), 4);
        let err = conn
            .query_row("SELECT sw_merge_distinct(?1, x'ff00ff')", [&a], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .unwrap_err();
        assert!(err.to_string().contains("argument 1"), "{err}");
        assert!(!damage.take(), "the new counter is not the stored one");
        let err = conn
            .query_row("SELECT sw_merged_distinct_count(1, ?1)", [&a], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_err();
        assert!(err.to_string().contains("argument 0"), "{err}");
        assert!(damage.take(), "a stored counter that does not decode");
        assert!(!damage.take(), "taken");
    }
}
