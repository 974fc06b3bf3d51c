//! `scanwatch admin user`: passwords come from standard input, are refused when
//! short or empty, stored as Argon2id hashes; a second add of the same name is
//! refused; `--reset` changes the password and ends the user's sessions. Also
//! `admin sensor set-trust` and `admin migrate`.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use scanwatch_store::prelude::*;
use std::process::{Command, Output};

use scanwatch_collector::web::auth::verify_password;
use scanwatch_event::Timestamp;
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{Role, SessionRecord};

fn user(data: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    common::run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_scanwatch"))
            .args(["admin", "user"])
            .args(args)
            .arg("--data")
            .arg(data),
        stdin.as_bytes(),
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn add_list_reset_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    let o = user(
        data,
        &["add", "alice", "--role", "admin"],
        "s3cret-pass\nignored\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("admin user \"alice\" added"),
        "{}",
        stderr(&o)
    );
    {
        let store = SqliteStore::open(data).unwrap();
        let u = store.user("alice").unwrap().unwrap();
        assert_eq!(u.role, Role::Admin);
        assert!(
            u.password_hash.starts_with("$argon2id$"),
            "{}",
            u.password_hash
        );
        assert!(verify_password("s3cret-pass", &u.password_hash));
    }

    // The same name again: refused, the password unchanged.
    let o = user(
        data,
        &["add", "alice", "--role", "analyst"],
        "another-pass\n",
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    let store = SqliteStore::open(data).unwrap();
    let u = store.user("alice").unwrap().unwrap();
    assert!(verify_password("s3cret-pass", &u.password_hash));
    assert_eq!(u.role, Role::Admin);
    drop(store);

    // Short, empty or missing passwords: refused with a clear message.
    for (input, msg) in [
        ("short\n", "password too short"),
        ("\n", "empty password"),
        ("", "empty password"),
    ] {
        let o = user(data, &["add", "bob", "--role", "analyst"], input);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(msg), "{input:?}: {}", stderr(&o));
    }
    let o = user(
        data,
        &["add", "bad/name", "--role", "analyst"],
        "long-enough\n",
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("invalid user name"), "{}", stderr(&o));
    let o = user(data, &["add", "bob"], "long-enough\n");
    assert!(!o.status.success(), "a new user needs --role");

    // --reset: new password, role kept, sessions ended.
    {
        let mut store = SqliteStore::open(data).unwrap();
        store
            .put_session(&SessionRecord {
                id_hash: "h".into(),
                user: "alice".into(),
                csrf: "c".into(),
                created: Timestamp(0),
                expires: Timestamp(i64::MAX),
            })
            .unwrap();
    }
    let o = user(data, &["add", "alice", "--reset"], "brand-new-pass\r\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let store = SqliteStore::open(data).unwrap();
    let u = store.user("alice").unwrap().unwrap();
    assert!(verify_password("brand-new-pass", &u.password_hash));
    assert!(!verify_password("s3cret-pass", &u.password_hash));
    assert_eq!(u.role, Role::Admin);
    assert!(store.session("h", Timestamp(1)).unwrap().is_none());
    drop(store);
    let o = user(data, &["add", "carol", "--reset"], "brand-new-pass\n");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no user named"), "{}", stderr(&o));

    let o = user(
        data,
        &["add", "bob", "--role", "analyst"],
        "bobs-password\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = user(data, &["list"], "");
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].starts_with("alice") && rows[0].contains("admin"),
        "{out}"
    );
    assert!(
        rows[1].starts_with("bob") && rows[1].contains("analyst"),
        "{out}"
    );
    assert!(!out.contains("argon2"), "no hashes in the list");
}

/// `admin sensor set-trust`: sets and lists a sensor's trust level; an unknown
/// sensor or level is refused with a reason and changes nothing.
#[test]
fn sensor_trust_is_set_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    common::admin(data, &["sensor", "add", "fw-1"]);
    common::admin(data, &["sensor", "add", "fw-2"]);
    common::admin(data, &["sensor", "set-trust", "fw-1", "trusted"]);
    let list = common::admin(data, &["sensor", "list"]);
    let trust = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .unwrap()
            .to_string()
    };
    assert_eq!(
        (trust("fw-1"), trust("fw-2")),
        ("trusted".into(), "normal".into()),
        "{list}"
    );
    for (args, why) in [
        (
            ["sensor", "set-trust", "fw-9", "trusted"],
            "no sensor named \"fw-9\"",
        ),
        (
            ["sensor", "set-trust", "fw-2", "total"],
            "trust level must be trusted or normal",
        ),
    ] {
        let out = common::bin()
            .arg("admin")
            .args(args)
            .arg("--data")
            .arg(data)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{err}");
    }
    common::admin(data, &["sensor", "set-trust", "fw-1", "normal"]);
    let list = common::admin(data, &["sensor", "list"]);
    assert!(
        list.lines().skip(1).all(|l| l.ends_with("normal")),
        "{list}"
    );
}

/// Version 6's tables back to version 5's (a row per event, no cells).
const BACK_TO_V5: &str = "
DROP TABLE event_blocks; DROP TABLE IF EXISTS source_days; DROP TABLE IF EXISTS port_cells;
DROP TABLE aggregated;
DROP TABLE checkpoint; DROP TABLE damaged_blocks;
CREATE TABLE events (
    time_ms INTEGER NOT NULL, sensor_id INTEGER NOT NULL REFERENCES sensors(id),
    proto INTEGER NOT NULL, src BLOB NOT NULL, dst BLOB NOT NULL, src_port INTEGER,
    dst_port INTEGER, flags INTEGER, icmp_type INTEGER, direction INTEGER NOT NULL,
    action INTEGER NOT NULL, count INTEGER NOT NULL, scanned_port INTEGER
);
CREATE INDEX events_by_time ON events(time_ms);
CREATE INDEX events_by_src ON events(src, time_ms);
PRAGMA user_version = 5;
";

#[test]
fn admin_migrate_says_what_it_would_do_then_does_it_with_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::admin(&data, &["sensor", "add", "fw-1"]);
    let up = common::admin(&data, &["migrate", "--check"]);
    assert!(up.ends_with("schema version 11, up to date"), "{up}");
    let db = data.join("scanwatch.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(BACK_TO_V5)
        .unwrap();
    let check = common::admin(&data, &["migrate", "--check"]);
    assert!(
        check.contains("schema version 5 -> 11 (--check: nothing changed)"),
        "{check}"
    );
    assert!(check.contains("version 6 adds per-port cells"), "{check}");
    assert!(
        check.contains("version 7 adds the centre's checkpoint"),
        "{check}"
    );
    assert!(
        check.contains("version 8 adds closed windows keyed by time first"),
        "{check}"
    );
    assert!(
        check.contains("version 9 adds a file of its own for the per-port cells and source days"),
        "{check}"
    );
    assert!(
        check.contains("version 10 adds a source's ports of a day in one row"),
        "{check}"
    );
    assert!(
        check.contains("version 11 adds the events as stored beside each per-port cell"),
        "{check}"
    );
    assert!(check.contains("scanwatch.db.v5.bak"), "{check}");
    assert!(
        !data.join("scanwatch.db.v5.bak").exists(),
        "--check changes nothing"
    );
    let done = common::admin(&data, &["migrate"]);
    assert!(
        done.contains("migrated; the database as it was is in"),
        "{done}"
    );
    assert!(data.join("scanwatch.db.v5.bak").exists());
    let again = common::admin(&data, &["migrate", "--check"]);
    assert!(again.ends_with("schema version 11, up to date"), "{again}");
    // The sensor survived the migration.
    assert!(common::admin(&data, &["sensor", "list"]).contains("fw-1"));
    // No database: a clear refusal.
    let out = Command::new(env!("CARGO_BIN_EXE_scanwatch"))
        .args(["admin", "migrate", "--data"])
        .arg(dir.path().join("none"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no database in"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_removed_user_is_gone_with_their_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let o = user(data, &["add", "bob", "--role", "analyst"], "s3cret-pass\n");
    assert!(o.status.success(), "{}", stderr(&o));
    {
        let mut store = SqliteStore::open(data).unwrap();
        store
            .put_session(&SessionRecord {
                id_hash: "h".into(),
                user: "bob".into(),
                csrf: "c".into(),
                created: Timestamp(0),
                expires: Timestamp(i64::MAX),
            })
            .unwrap();
    }
    let o = user(data, &["remove", "bob"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("user \"bob\" removed; their sessions are ended"),
        "{}",
        stderr(&o)
    );
    {
        let store = SqliteStore::open(data).unwrap();
        assert!(store.user("bob").unwrap().is_none());
        assert!(store.session("h", Timestamp(0)).unwrap().is_none());
    }
    let list = user(data, &["list", "-o", "json"], "");
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(!String::from_utf8_lossy(&list.stdout).contains("bob"));
    // Again: a clear refusal.
    let o = user(data, &["remove", "bob"], "");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no user named \"bob\""),
        "{}",
        stderr(&o)
    );
    // The name is free again.
    let o = user(data, &["add", "bob", "--role", "admin"], "an0ther-pass\n");
    assert!(o.status.success(), "{}", stderr(&o));
}
