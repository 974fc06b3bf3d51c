//! Many rows upserted with few statements: the counting writes tens of thousands
//! of cells and source days per transaction, almost all new rows, and one
//! `INSERT … ON CONFLICT` per row paid SQLite's per-statement work (binding, the
//! program's start, opening and closing the table's cursor, `sqlite3VdbeHalt`) for
//! each. A statement of [`ROWS`] rows pays it once per chunk (SQLite runs a
//! multi-row `VALUES` as one loop); the last, shorter chunk goes row by row, so
//! only two statements are prepared (and cached) per table.
//!
//! rusqlite has no bulk insert: this builds the statement's text (placeholders
//! only, never values) and binds by position.

use rusqlite::{Connection, Statement};

use crate::StoreError;

/// Rows per statement: 64 rows of up to eleven columns stay far under SQLite's limit
/// of bound parameters (32,766).
pub(crate) const ROWS: usize = 64;

/// An upsert of `columns` columns: `head` is `INSERT INTO t (a, b, …)`, `tail` the
/// `ON CONFLICT … DO UPDATE SET …` clause.
pub(crate) struct Upsert<'a> {
    pub head: &'a str,
    pub tail: &'a str,
    pub columns: usize,
}

impl Upsert<'_> {
    fn sql(&self, rows: usize) -> String {
        let one = format!("({})", vec!["?"; self.columns].join(", "));
        format!(
            "{} VALUES {} {}",
            self.head,
            vec![one.as_str(); rows].join(", "),
            self.tail
        )
    }

    /// Upserts `rows`, in order (two with the same key merge as two statements
    /// would: SQLite decides insert or update row by row). `bind` must bind every
    /// one of a row's values, at parameter indexes `at + 1 ..= at + columns`: a
    /// statement keeps the values bound before, so one left out would be the
    /// previous chunk's.
    pub(crate) fn run<R>(
        &self,
        conn: &Connection,
        rows: &[R],
        mut bind: impl FnMut(&mut Statement<'_>, usize, &R) -> rusqlite::Result<()>,
    ) -> Result<(), StoreError> {
        let mut chunks = rows.chunks_exact(ROWS);
        if rows.len() >= ROWS {
            let mut st = conn.prepare_cached(&self.sql(ROWS))?;
            debug_assert_eq!(st.parameter_count(), ROWS * self.columns);
            for chunk in &mut chunks {
                for (i, r) in chunk.iter().enumerate() {
                    bind(&mut st, i * self.columns, r)?;
                }
                st.raw_execute()?;
            }
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut st = conn.prepare_cached(&self.sql(1))?;
            debug_assert_eq!(st.parameter_count(), self.columns);
            for r in rest {
                bind(&mut st, 0, r)?;
                st.raw_execute()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const T: Upsert<'static> = Upsert {
        head: "INSERT INTO t (k, n, first)",
        tail:
            "ON CONFLICT (k) DO UPDATE SET n = n + excluded.n, first = MIN(first, excluded.first)",
        columns: 3,
    };

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (k INTEGER PRIMARY KEY, n INTEGER NOT NULL, first INTEGER NOT NULL) WITHOUT ROWID",
        )
        .unwrap();
        conn
    }

    fn write(conn: &Connection, rows: &BTreeMap<i64, (i64, i64)>) {
        let rows: Vec<_> = rows.iter().collect();
        T.run(conn, &rows, |st, at, (k, (n, first))| {
            st.raw_bind_parameter(at + 1, **k)?;
            st.raw_bind_parameter(at + 2, n)?;
            st.raw_bind_parameter(at + 3, first)
        })
        .unwrap();
    }

    fn read(conn: &Connection) -> BTreeMap<i64, (i64, i64)> {
        let mut st = conn.prepare("SELECT k, n, first FROM t").unwrap();
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    proptest! {
        /// Rounds of upserts in chunks (any size: none, fewer than a chunk, some
        /// chunks and a remainder), new keys and stored ones mixed, leave what
        /// the same rounds leave merged one row at a time.
        #[test]
        fn chunks_merge_as_single_rows_do(
            rounds in prop::collection::vec(
                prop::collection::btree_map(0i64..300, (1i64..5, 0i64..1000), 0..(3 * ROWS)),
                1..4,
            )
        ) {
            let conn = table();
            let mut want: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
            for round in &rounds {
                write(&conn, round);
                for (k, (n, first)) in round {
                    let e = want.entry(*k).or_insert((0, *first));
                    e.0 += n;
                    e.1 = e.1.min(*first);
                }
            }
            prop_assert_eq!(read(&conn), want);
        }
    }

    #[test]
    fn a_failing_row_fails_the_run() {
        let conn = table();
        let rows: BTreeMap<i64, (i64, i64)> = (0..ROWS as i64 + 1).map(|k| (k, (1, 0))).collect();
        let rows: Vec<_> = rows.iter().collect();
        // NOT NULL refuses the chunk's last row and the remainder's.
        for bad in [ROWS as i64 - 1, ROWS as i64] {
            let err = T
                .run(&conn, &rows, |st, at, (k, (n, first))| {
                    st.raw_bind_parameter(at + 1, **k)?;
                    if **k == bad {
                        st.raw_bind_parameter(at + 2, rusqlite::types::Null)?;
                    } else {
                        st.raw_bind_parameter(at + 2, n)?;
                    }
                    st.raw_bind_parameter(at + 3, first)
                })
                .unwrap_err();
            assert!(err.to_string().contains("NOT NULL"), "{err}");
        }
    }
}
