//! The SQLite store: sensors and tokens, exactly-once batches, event round trips,
//! persistence across reopen, and refusal of a newer schema.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_event::{Event, TcpFlags, Timestamp};
use scanwatch_store::prelude::*;
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{BatchOutcome, ContextItem, ContextKind, StoreError};

mod old_versions;
use old_versions::{BACK_TO_V5_EVENTS, BACK_TO_V8};

fn ev(t: i64, src: &str, port: u16) -> Event {
    Event {
        src_port: Some(40000),
        ..Event::syn_probe(
            Timestamp(t),
            src.parse().unwrap(),
            "198.18.0.1".parse().unwrap(),
            port,
            2,
        )
    }
}

/// The `n`-th event of a spread: `ms` apart, from `per` addresses in each of `per`
/// /24s of `net`, to `ports` in turn, every `tail`-th moved `shift` ports up (a
/// long tail of ports).
fn nth(
    n: usize,
    ms: i64,
    net: &str,
    per: usize,
    ports: &[u16],
    (tail, shift): (usize, u16),
) -> Event {
    ev(
        n as i64 * ms,
        &format!("{net}.{}.{}", n / per % per, n % per),
        ports[n % ports.len()] + u16::from(n % tail == 0) * shift,
    )
}

#[test]
fn sensors_tokens_and_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    let token = s.add_sensor("fw-1", Timestamp(1)).unwrap();
    assert!(token.starts_with("swt_") && token.len() == 68, "{token}");
    assert_eq!(
        s.authenticate_sensor(&token).unwrap().as_deref(),
        Some("fw-1")
    );
    assert_eq!(s.authenticate_sensor("swt_nope").unwrap(), None);
    assert!(matches!(
        s.add_sensor("fw-1", Timestamp(2)),
        Err(StoreError::SensorExists(_))
    ));
    assert!(matches!(
        s.add_sensor("bad name", Timestamp(2)),
        Err(StoreError::InvalidName(_))
    ));
    s.revoke_sensor("fw-1").unwrap();
    assert_eq!(
        s.authenticate_sensor(&token).unwrap(),
        None,
        "revoked tokens are refused at once"
    );
    assert!(matches!(
        s.revoke_sensor("ghost"),
        Err(StoreError::NoSuchSensor(_))
    ));
    let list = s.sensors().unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].revoked);
    // The token itself is never stored.
    let raw = std::fs::read(s.path()).unwrap();
    assert!(!raw.windows(token.len()).any(|w| w == token.as_bytes()));
}

#[test]
fn batches_count_once_and_events_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("fw-1", Timestamp(0)).unwrap();
    let mut v6 = ev(2_000, "2001:db8::1", 445);
    v6.flags_known = false;
    v6.flags = TcpFlags(0);
    let batch = vec![ev(1_000, "192.0.2.1", 1025), v6];
    assert_eq!(
        s.commit_batch("fw-1", "b-1", &batch, Timestamp(5)).unwrap(),
        BatchOutcome::Accepted { events: 2 }
    );
    assert_eq!(
        s.commit_batch("fw-1", "b-1", &batch, Timestamp(6)).unwrap(),
        BatchOutcome::Duplicate
    );
    let got = s.events_between(Timestamp(0), Timestamp(10_000)).unwrap();
    assert_eq!(
        got,
        vec![
            ("fw-1".to_string(), batch[0].clone()),
            ("fw-1".to_string(), batch[1].clone())
        ]
    );
    let rec = &s.sensors().unwrap()[0];
    assert_eq!(
        (rec.batches, rec.events, rec.last_seen),
        (1, 4, Some(Timestamp(5)))
    );
    assert!(matches!(
        s.commit_batch("ghost", "b-1", &batch, Timestamp(7)),
        Err(StoreError::NoSuchSensor(_))
    ));
    // Reopening finds everything; a half range finds half.
    drop(s);
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        s.events_between(Timestamp(1_500), Timestamp(3_000))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn version_1_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("fw-1", Timestamp(0)).unwrap();
    drop(s);
    let conn = rusqlite::Connection::open(dir.path().join("scanwatch.db")).unwrap();
    conn.execute_batch(BACK_TO_V5_EVENTS).unwrap();
    conn.execute_batch(
        "DROP INDEX events_by_src; ALTER TABLE events DROP COLUMN scanned_port; ALTER TABLE sensors DROP COLUMN heartbeat_ms; ALTER TABLE sensors DROP COLUMN heartbeat; DROP TABLE windows; DROP TABLE alerts; DROP TABLE api_tokens; DROP TABLE context_items; DROP TABLE sessions; DROP TABLE users; DROP TABLE sink_state; DROP TABLE dead_letters; DROP TABLE partials; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.sensors().unwrap().len(), 1, "data of version 1 is kept");
    assert!(s
        .alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)
        .unwrap()
        .is_empty());
}

#[test]
fn version_2_is_migrated_and_context_items_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("fw-1", Timestamp(0)).unwrap();
    drop(s);
    let conn = rusqlite::Connection::open(dir.path().join("scanwatch.db")).unwrap();
    conn.execute_batch(BACK_TO_V5_EVENTS).unwrap();
    conn.execute_batch("DROP TABLE context_items; DROP TABLE sessions; DROP TABLE users; DROP TABLE sink_state; DROP TABLE dead_letters; DROP TABLE partials; PRAGMA user_version = 2;")
        .unwrap();
    drop(conn);
    let mut s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.sensors().unwrap().len(), 1, "data of version 2 is kept");
    let item = |k: &str, origin: &str, json: &str| ContextItem {
        key: k.into(),
        origin: origin.into(),
        json: json.into(),
    };
    let first = [
        item("nvd:CVE-1", "a.json", "{}"),
        item("nvd:CVE-2", "a.json", "{}"),
    ];
    let c = s
        .put_context_items(ContextKind::Advisory, &first, Timestamp(1))
        .unwrap();
    assert_eq!((c.added, c.updated, c.unchanged), (2, 0, 0));
    let c = s
        .put_context_items(ContextKind::Advisory, &first, Timestamp(2))
        .unwrap();
    assert_eq!(
        (c.added, c.updated, c.unchanged),
        (0, 0, 2),
        "re-import changes nothing"
    );
    let c = s
        .put_context_items(
            ContextKind::Advisory,
            &[
                item("nvd:CVE-2", "b.json", "{\"v\":2}"),
                item("nvd:CVE-3", "b.json", "{}"),
            ],
            Timestamp(3),
        )
        .unwrap();
    assert_eq!((c.added, c.updated, c.unchanged), (1, 1, 0));
    s.put_context_items(
        ContextKind::Benign,
        &[item("l:10.0.0.0/8", "l", "{}")],
        Timestamp(3),
    )
    .unwrap();
    let all = s.context_items(ContextKind::Advisory).unwrap();
    let keys: Vec<&str> = all.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["nvd:CVE-1", "nvd:CVE-2", "nvd:CVE-3"]);
    assert_eq!(all[1].json, "{\"v\":2}");
    assert_eq!(
        s.delete_context_origin(ContextKind::Advisory, "b.json")
            .unwrap(),
        2
    );
    assert_eq!(s.context_items(ContextKind::Advisory).unwrap().len(), 1);
    assert_eq!(
        s.context_items(ContextKind::Benign).unwrap().len(),
        1,
        "kinds are apart"
    );
}

#[test]
fn a_newer_schema_is_refused_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("scanwatch.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[test]
fn windows_alerts_and_api_tokens() {
    use scanwatch_store::{AlertRow, Role, WindowRow};
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    let w = |start: i64, events: u64| WindowRow {
        window_start: Timestamp(start),
        window_end: Timestamp(start + 3_600_000),
        proto: 6,
        port: 1025,
        events,
        sources: 3,
        sensors: 2,
        targets: 1,
        top_sources_json: "[]".into(),
    };
    s.put_windows(&[w(0, 5), w(3_600_000, 7)]).unwrap();
    s.put_windows(&[w(3_600_000, 9)]).unwrap(); // a replay replaces
    let h = s
        .port_history(6, 1025, Timestamp(0), Timestamp(10_000_000))
        .unwrap();
    assert_eq!(h.iter().map(|r| r.events).collect::<Vec<_>>(), vec![5, 9]);
    assert!(s
        .port_history(17, 1025, Timestamp(0), Timestamp(10_000_000))
        .unwrap()
        .is_empty());

    let a = |start: i64, sev: u8| AlertRow {
        id: 0,
        kind: "surge".into(),
        proto: 6,
        port: 1025,
        window_start: Timestamp(start),
        severity_rank: sev,
        json: format!("{{\"start\":{start}}}"),
    };
    let id1 = s.put_alert(&a(0, 2)).unwrap();
    let id2 = s.put_alert(&a(3_600_000, 4)).unwrap();
    assert_eq!(
        s.put_alert(&a(0, 2)).unwrap(),
        id1,
        "the same warning again is not a new one"
    );
    let all = s
        .alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![id2, id1],
        "most severe first"
    );
    assert_eq!(
        s.alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 3)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.alert(id1).unwrap().unwrap().json, "{\"start\":0}");
    assert!(s.alert(999).unwrap().is_none());

    let t = s
        .add_api_token("alice", Role::Analyst, Timestamp(0))
        .unwrap();
    assert_eq!(
        s.authenticate_api(&t).unwrap(),
        Some(("alice".to_string(), Role::Analyst))
    );
    assert!(matches!(
        s.add_api_token("alice", Role::Admin, Timestamp(0)),
        Err(StoreError::TokenExists(_))
    ));
    assert_eq!(s.authenticate_api("swt_x").unwrap(), None);
    // Sensor tokens are not API tokens and the other way round.
    let sensor = s.add_sensor("fw-1", Timestamp(0)).unwrap();
    assert_eq!(s.authenticate_api(&sensor).unwrap(), None);
    assert_eq!(s.authenticate_sensor(&t).unwrap(), None);
}

#[test]
fn top_ports_and_source_activity_count_only_scans() {
    use scanwatch_store::TopBy;
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("a", Timestamp(0)).unwrap();
    s.add_sensor("b", Timestamp(0)).unwrap();
    let mut reply = ev(1_000, "192.0.2.9", 80);
    reply.flags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
    s.commit_batch(
        "a",
        "1",
        &[
            ev(1_000, "192.0.2.1", 1025),
            ev(1_500, "192.0.2.2", 1025),
            ev(2_000, "192.0.2.1", 445),
            reply,
        ],
        Timestamp(0),
    )
    .unwrap();
    s.commit_batch("b", "1", &[ev(1_200, "192.0.2.1", 1025)], Timestamp(0))
        .unwrap();
    let top = s
        .top_ports(Timestamp(0), Timestamp(10_000), TopBy::Sources, 10)
        .unwrap();
    assert_eq!(
        top.len(),
        2,
        "the SYN-ACK to port 80 is not a scan: {top:?}"
    );
    assert_eq!(
        (
            top[0].port,
            top[0].events,
            top[0].sources,
            top[0].sensors,
            top[0].targets
        ),
        (1025, 6, 2, 2, 1)
    );
    assert_eq!((top[1].port, top[1].events), (445, 2));
    assert_eq!(
        s.top_ports(Timestamp(0), Timestamp(10_000), TopBy::Events, 1)
            .unwrap()
            .len(),
        1
    );
    assert!(s
        .top_ports(Timestamp(5_000), Timestamp(10_000), TopBy::Events, 10)
        .unwrap()
        .is_empty());
    let act = s
        .source_activity(
            "192.0.2.1".parse().unwrap(),
            Timestamp(0),
            Timestamp(10_000),
        )
        .unwrap();
    assert_eq!(
        act.iter()
            .map(|a| (a.port, a.events, a.sensors))
            .collect::<Vec<_>>(),
        vec![(1025, 4, 2), (445, 2, 1)]
    );
    assert_eq!(
        (act[0].first_seen, act[0].last_seen),
        (Timestamp(1_000), Timestamp(1_200))
    );
}

#[test]
fn retention_prunes_old_rows_only() {
    use scanwatch_store::WindowRow;
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("a", Timestamp(0)).unwrap();
    s.commit_batch(
        "a",
        "old",
        &[ev(1_000, "192.0.2.1", 1025)],
        Timestamp(1_000),
    )
    .unwrap();
    s.commit_batch(
        "a",
        "new",
        &[ev(9_000, "192.0.2.1", 1025)],
        Timestamp(9_000),
    )
    .unwrap();
    let w = |start: i64| WindowRow {
        window_start: Timestamp(start),
        window_end: Timestamp(start + 1),
        proto: 6,
        port: 1,
        events: 1,
        sources: 1,
        sensors: 1,
        targets: 1,
        top_sources_json: "[]".into(),
    };
    s.put_windows(&[w(100), w(8_000)]).unwrap();
    assert_eq!(s.prune(Timestamp(5_000), Timestamp(5_000)).unwrap(), (1, 1));
    assert_eq!(
        s.events_between(Timestamp(0), Timestamp(i64::MAX))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.port_history(6, 1, Timestamp(0), Timestamp(i64::MAX))
            .unwrap()
            .len(),
        1
    );
    // The pruned batch id is forgotten with its events; the kept one still dedupes.
    assert_eq!(
        s.commit_batch(
            "a",
            "new",
            &[ev(9_000, "192.0.2.1", 1025)],
            Timestamp(9_500)
        )
        .unwrap(),
        BatchOutcome::Duplicate
    );
}

#[test]
fn heartbeats_are_kept_per_sensor() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("fw-1", Timestamp(0)).unwrap();
    assert_eq!(s.sensors().unwrap()[0].heartbeat, None);
    s.record_heartbeat("fw-1", "{\"spool_batches\":3}", Timestamp(8))
        .unwrap();
    assert_eq!(
        s.sensors().unwrap()[0].heartbeat,
        Some((Timestamp(8), "{\"spool_batches\":3}".to_string()))
    );
    assert!(matches!(
        s.record_heartbeat("ghost", "{}", Timestamp(9)),
        Err(StoreError::NoSuchSensor(_))
    ));
}

#[test]
fn version_3_is_migrated_with_users_sessions_and_sink_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("fw-1", Timestamp(0)).unwrap();
    drop(s);
    let conn = rusqlite::Connection::open(dir.path().join("scanwatch.db")).unwrap();
    conn.execute_batch(
        &format!("{BACK_TO_V5_EVENTS} DROP TABLE sessions; DROP TABLE users; DROP TABLE sink_state; DROP TABLE dead_letters; DROP TABLE partials; PRAGMA user_version = 3;"),
    )
    .unwrap();
    drop(conn);
    let mut s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.sensors().unwrap().len(), 1, "data of version 3 is kept");
    let user = scanwatch_store::UserRecord {
        name: "alice".into(),
        role: scanwatch_store::Role::Analyst,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$x$y".into(),
        created: Timestamp(5),
    };
    s.put_user(&user, false).unwrap();
    assert!(matches!(
        s.put_user(&user, false),
        Err(scanwatch_store::StoreError::UserExists(_))
    ));
    assert_eq!(s.user("alice").unwrap(), Some(user.clone()));
    s.put_session(&scanwatch_store::SessionRecord {
        id_hash: "h".into(),
        user: "alice".into(),
        csrf: "c".into(),
        created: Timestamp(10),
        expires: Timestamp(20),
    })
    .unwrap();
    assert!(s.session("h", Timestamp(19)).unwrap().is_some());
    assert!(s.session("h", Timestamp(20)).unwrap().is_none(), "expired");
    // A password reset ends the user's sessions.
    s.put_user(&user, true).unwrap();
    assert!(s.session("h", Timestamp(19)).unwrap().is_none());
    s.put_sink_state("soc", "tcp/1025/1", "{\"v\":1}", Timestamp(30))
        .unwrap();
    assert_eq!(
        s.sink_state("soc", "tcp/1025/1").unwrap().as_deref(),
        Some("{\"v\":1}")
    );
    assert_eq!(
        rusqlite::Connection::open(dir.path().join("scanwatch.db"))
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get::<_, u32>(0))
            .unwrap(),
        scanwatch_store::SCHEMA_VERSION
    );
}

#[test]
fn a_migration_is_planned_read_only_and_backed_up_first() {
    use scanwatch_store::sqlite::migration_plan;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(migration_plan(dir.path()).unwrap(), None, "no database yet");
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("fw-1", Timestamp(0)).unwrap();
    drop(s);
    let up_to_date = migration_plan(dir.path()).unwrap().unwrap();
    assert_eq!((up_to_date.from, up_to_date.to), (11, 11));
    assert!(up_to_date.steps.is_empty());
    // Back to version 4: without the partials table.
    let db = dir.path().join("scanwatch.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&format!(
        "{BACK_TO_V5_EVENTS} DROP TABLE partials; PRAGMA user_version = 4;"
    ))
    .unwrap();
    drop(conn);
    let plan = migration_plan(dir.path()).unwrap().unwrap();
    assert_eq!((plan.from, plan.to), (4, 11));
    assert_eq!(plan.steps.len(), 7);
    assert_eq!(plan.backup, dir.path().join("scanwatch.db.v4.bak"));
    assert!(!plan.backup.exists(), "planning changes nothing");
    let version = |p: &std::path::Path| -> u32 {
        rusqlite::Connection::open(p)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    };
    assert_eq!(version(&db), 4);

    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.sensors().unwrap().len(), 1);
    drop(s);
    assert_eq!(version(&db), scanwatch_store::SCHEMA_VERSION, "migrated");
    // The copy is the database as it was: version 4, its sensor, no partials.
    assert_eq!(version(&plan.backup), 4);
    let old = rusqlite::Connection::open(&plan.backup).unwrap();
    let sensors: i64 = old
        .query_row("SELECT COUNT(*) FROM sensors", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sensors, 1);
    let partials: i64 = old
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'partials'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(partials, 0);
    let mode = std::fs::metadata(&plan.backup)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the copy holds token and password hashes");
    // A second migration from the same version does not overwrite the first copy.
    drop(old);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&format!(
        "{BACK_TO_V5_EVENTS} DROP TABLE partials; PRAGMA user_version = 4;"
    ))
    .unwrap();
    drop(conn);
    assert_eq!(
        migration_plan(dir.path()).unwrap().unwrap().backup,
        dir.path().join("scanwatch.db.v4.bak.1")
    );
    drop(SqliteStore::open(dir.path()).unwrap());
    assert!(dir.path().join("scanwatch.db.v4.bak.1").exists());
    assert_eq!(version(&plan.backup), 4);
}

/// Two processes opening a new data directory at once (a server starting while
/// `admin sensor add` runs) both get the store: the schema is created once, under a
/// write lock taken before the version is read. Before, the second could fail with
/// "table … already exists" (a CI flake of the netns test, exit 2 with no output).
#[test]
fn concurrent_first_opens_both_succeed() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        for r in open_at_once(dir.path(), 4) {
            assert!(r.is_ok(), "round {round}: {r:?}");
        }
    }
}

/// Opens the store in `dir` from `n` threads released at once.
fn open_at_once(dir: &std::path::Path, n: usize) -> Vec<Result<(), StoreError>> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (p, b) = (dir.to_path_buf(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                SqliteStore::open(&p).map(|_| ())
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Four processes opening a version 8 store at once all get it: each backs it up
/// under a name of its own, one moves the aggregates, the others find it moved.
#[test]
fn concurrent_opens_of_a_version_8_store_all_succeed() {
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let s = SqliteStore::open(&path).unwrap();
        let db = s.path().to_path_buf();
        drop(s);
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(BACK_TO_V8)
            .unwrap();
        for r in open_at_once(&path, 4) {
            assert!(r.is_ok(), "round {round}: {r:?}");
        }
        let version: u32 = rusqlite::Connection::open(&db)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, scanwatch_store::SCHEMA_VERSION);
    }
}

/// Retention that deletes every block, then new batches: their blocks get new ids
/// (never one at or below what was counted before), so they are counted. Before,
/// SQLite reused the deleted ids and the new events fell behind the watermark:
/// missing from `top_ports` and the source pages for whole hours.
#[test]
fn batches_after_retention_emptied_the_store_are_counted() {
    use scanwatch_store::TopBy;
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("a", Timestamp(0)).unwrap();
    let hour = 3_600_000;
    let old: Vec<Event> = (0..3).map(|i| ev(i * hour, "192.0.2.1", 23)).collect();
    s.commit_batch("a", "1", &old, Timestamp(0)).unwrap();
    s.aggregate_now().unwrap();
    s.prune(Timestamp(10 * hour), Timestamp(0)).unwrap();
    let new: Vec<Event> = (0..3)
        .map(|i| ev(20 * hour + i, "192.0.2.2", 445))
        .collect();
    s.commit_batch("a", "2", &new, Timestamp(0)).unwrap();
    for counted in [false, true] {
        if counted {
            s.aggregate_now().unwrap();
        }
        let top = s
            .top_ports(Timestamp(0), Timestamp(48 * hour), TopBy::Events, 10)
            .unwrap();
        assert_eq!(top.len(), 1, "counted {counted}: {top:?}");
        assert_eq!((top[0].port, top[0].events), (445, 6), "counted {counted}");
        let act = s
            .source_activity(
                "192.0.2.2".parse().unwrap(),
                Timestamp(0),
                Timestamp(48 * hour),
            )
            .unwrap();
        assert_eq!(act.len(), 1, "counted {counted}");
        assert_eq!(act[0].events, 6);
    }
}

/// The event mark orders batches as they were stored: the events after a mark are
/// exactly those of the later batches (in time order), also after retention
/// trimmed or deleted blocks, after a duplicate, and across a reopen; the
/// checkpoint is kept and replaced whole; a version 6 store gains its table.
#[test]
fn the_event_mark_and_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("a", Timestamp(0)).unwrap();
    s.add_sensor("b", Timestamp(0)).unwrap();
    assert_eq!(s.event_mark().unwrap(), Some(0));
    assert_eq!(s.checkpoint().unwrap(), None);
    // Two hours of events: the first batch makes two blocks.
    let first = vec![
        ev(1_000, "203.0.113.1", 22),
        ev(3_601_000, "203.0.113.2", 22),
    ];
    s.commit_batch("a", "1", &first, Timestamp(10)).unwrap();
    let m1 = s.event_mark().unwrap().unwrap();
    assert_eq!(m1, 2);
    let second = vec![ev(5_000, "203.0.113.3", 23), ev(2_000, "203.0.113.4", 23)];
    s.commit_batch("b", "1", &second, Timestamp(11)).unwrap();
    assert_eq!(
        s.commit_batch("b", "1", &second, Timestamp(12)).unwrap(),
        BatchOutcome::Duplicate
    );
    let m2 = s.event_mark().unwrap().unwrap();
    assert!(m2 > m1);
    let after: Vec<(String, i64)> = s
        .events_after(m1)
        .unwrap()
        .into_iter()
        .map(|(n, e)| (n, e.time.0))
        .collect();
    assert_eq!(after, vec![("b".into(), 2_000), ("b".into(), 5_000)]);
    assert_eq!(s.events_after(0).unwrap().len(), 4);
    assert!(s.events_after(m2).unwrap().is_empty());
    // Retention trims the blocks before the cut in place: no block moves past a mark.
    s.prune(Timestamp(4_000), Timestamp(0)).unwrap();
    assert_eq!(s.event_mark().unwrap(), Some(m2));
    let left: Vec<i64> = s
        .events_after(m1)
        .unwrap()
        .iter()
        .map(|(_, e)| e.time.0)
        .collect();
    assert_eq!(left, vec![5_000]);
    // Deleting every block does not lower the mark.
    s.prune(Timestamp(i64::MAX / 2), Timestamp(0)).unwrap();
    assert_eq!(s.event_mark().unwrap(), Some(m2));
    s.commit_batch("a", "2", &[ev(9_000, "203.0.113.5", 25)], Timestamp(13))
        .unwrap();
    assert_eq!(s.events_after(m2).unwrap().len(), 1);
    let cp = |mark: u64, b: &[u8]| scanwatch_store::StoredCheckpoint {
        mark,
        taken: Timestamp(99),
        state: b.to_vec(),
    };
    s.put_checkpoint(&cp(m1, b"one")).unwrap();
    s.put_checkpoint(&cp(m2, b"two")).unwrap();
    drop(s);
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.checkpoint().unwrap(), Some(cp(m2, b"two")));
    assert_eq!(s.event_mark().unwrap(), Some(m2 + 1));
    // A version 6 store (no checkpoint table) is migrated, its blocks kept.
    let db = s.path().to_path_buf();
    drop(s);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!(
            "{BACK_TO_V8} DROP TABLE checkpoint; DROP TABLE damaged_blocks; PRAGMA user_version = 6;"
        ))
        .unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.checkpoint().unwrap(), None);
    assert_eq!(s.events_after(m2).unwrap().len(), 1);
    assert!(dir.path().join("scanwatch.db.v6.bak").exists());
}

/// A stored block that does not decode (damaged on disk) is left out of reads
/// with a warning, then set aside into `damaged_blocks` by the next counting or
/// retention: the other blocks are read, counted and pruned as before, nothing
/// fails, and the damaged one is kept with why.
#[test]
fn a_damaged_block_is_set_aside_and_loses_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("a", Timestamp(0)).unwrap();
    let h = 3_600_000;
    for (i, t) in [1_000, h + 1_000, 2 * h + 1_000].into_iter().enumerate() {
        let events: Vec<Event> = (0..5)
            .map(|j| ev(t + j, &format!("203.0.113.{}", 10 * i + j as usize), 445))
            .collect();
        s.commit_batch("a", &format!("b{i}"), &events, Timestamp(10))
            .unwrap();
    }
    // The middle block's bytes are damaged behind the store's back.
    let db = s.path().to_path_buf();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE event_blocks SET data = x'01ff00ff' WHERE id = 2",
            [],
        )
        .unwrap();
    let all = s
        .events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))
        .unwrap();
    assert_eq!(all.len(), 10, "the other blocks are read");
    assert_eq!(s.damaged_blocks().unwrap(), 0, "a read changes nothing");
    s.aggregate_now().unwrap();
    assert_eq!(s.damaged_blocks().unwrap(), 1, "counting set it aside");
    let top = s
        .top_ports(
            Timestamp(0),
            Timestamp(3 * h),
            scanwatch_store::TopBy::Sources,
            10,
        )
        .unwrap();
    assert_eq!((top[0].port, top[0].sources), (445, 10));
    // A block damaged after it was counted: retention cutting through it sets it
    // aside too, and prunes the rest.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE event_blocks SET data = x'00' WHERE id = 3", [])
        .unwrap();
    let (pruned, _) = s.prune(Timestamp(2 * h + 1_002), Timestamp(0)).unwrap();
    assert_eq!(pruned, 5, "the first block's events");
    assert_eq!(s.damaged_blocks().unwrap(), 2);
    assert!(s
        .events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))
        .unwrap()
        .is_empty());
    let why: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT error FROM damaged_blocks WHERE id = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(!why.is_empty(), "kept with why");
}

/// Windows are keyed by time first (version 8): a port's history walks the
/// stored starts. Windows of several ports, lengths and gaps answer `port_history`
/// and `windows_between` as a filter of what was put, before and after a version 7
/// store (keyed by port, with the per-port cell index) is migrated.
#[test]
fn port_history_over_time_keyed_windows_and_the_version_8_migration() {
    use scanwatch_store::WindowRow;
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    let h = 3_600_000;
    let w = |start: i64, len: i64, proto: u8, port: u16, events: u64| WindowRow {
        window_start: Timestamp(start),
        window_end: Timestamp(start + len),
        proto,
        port,
        events,
        sources: 1,
        sensors: 1,
        targets: 1,
        top_sources_json: "[]".into(),
    };
    let mut put = Vec::new();
    for i in 0..40i64 {
        // Port 1025 every hour, 445 every third, UDP 1025 every fifth; 30 s
        // windows between hours 10 and 11, a negative start, a gap at hour 20.
        if i == 20 {
            continue;
        }
        put.push(w(i * h, h, 6, 1025, i as u64 + 1));
        if i % 3 == 0 {
            put.push(w(i * h, h, 6, 445, 100 + i as u64));
        }
        if i % 5 == 0 {
            put.push(w(i * h, h, 17, 1025, 200 + i as u64));
        }
    }
    for k in 0..4 {
        put.push(w(10 * h + 30_000 * (k + 1), 30_000, 6, 445, 300 + k as u64));
    }
    put.push(w(-h, h, 6, 1025, 7));
    // Stored in two calls out of time order.
    let (a, b) = put.split_at(put.len() / 2);
    s.put_windows(b).unwrap();
    s.put_windows(a).unwrap();
    let expect_history = |proto: u8, port: u16, from: i64, to: i64| -> Vec<(i64, u64)> {
        let mut v: Vec<(i64, u64)> = put
            .iter()
            .filter(|r| r.proto == proto && r.port == port)
            .filter(|r| r.window_start.0 >= from && r.window_start.0 < to)
            .map(|r| (r.window_start.0, r.events))
            .collect();
        v.sort();
        v
    };
    let check = |s: &SqliteStore| {
        for (proto, port) in [(6, 1025), (6, 445), (17, 1025), (6, 22)] {
            for (from, to) in [
                (i64::MIN, i64::MAX),
                (0, 40 * h),
                (10 * h, 11 * h),
                (10 * h + 1, 25 * h),
                (20 * h, 21 * h),
                (-h, 0),
            ] {
                let got: Vec<(i64, u64)> = s
                    .port_history(proto, port, Timestamp(from), Timestamp(to))
                    .unwrap()
                    .iter()
                    .map(|r| {
                        assert_eq!((r.proto, r.port), (proto, port));
                        (r.window_start.0, r.events)
                    })
                    .collect();
                assert_eq!(
                    got,
                    expect_history(proto, port, from, to),
                    "{proto}/{port} {from}..{to}"
                );
            }
        }
        let between = s
            .windows_between(Timestamp(9 * h), Timestamp(12 * h))
            .unwrap();
        let mut want: Vec<(i64, u8, u16)> = put
            .iter()
            .filter(|r| r.window_start.0 >= 9 * h && r.window_start.0 < 12 * h)
            .map(|r| (r.window_start.0, r.proto, r.port))
            .collect();
        want.sort();
        let got: Vec<(i64, u8, u16)> = between
            .iter()
            .map(|r| (r.window_start.0, r.proto, r.port))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            s.latest_window().unwrap(),
            Some((Timestamp(39 * h), Timestamp(40 * h)))
        );
    };
    check(&s);
    let db = s.path().to_path_buf();
    drop(s);
    // Back to version 7: windows keyed by port with an index by time, and the
    // per-port cell index.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(BACK_TO_V8)
        .unwrap();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE windows_v7 (
                 window_start_ms INTEGER NOT NULL, window_end_ms INTEGER NOT NULL,
                 proto INTEGER NOT NULL, port INTEGER NOT NULL, events INTEGER NOT NULL,
                 sources INTEGER NOT NULL, sensors INTEGER NOT NULL, targets INTEGER NOT NULL,
                 top_sources TEXT NOT NULL,
                 PRIMARY KEY (proto, port, window_start_ms)) WITHOUT ROWID;
             INSERT INTO windows_v7 SELECT * FROM windows;
             DROP TABLE windows;
             ALTER TABLE windows_v7 RENAME TO windows;
             CREATE INDEX windows_by_time ON windows(window_start_ms);
             CREATE INDEX port_cells_by_port ON port_cells (span_ms, proto, port, start_ms);
             PRAGMA user_version = 7;",
        )
        .unwrap();
    let plan = scanwatch_store::sqlite::migration_plan(dir.path())
        .unwrap()
        .unwrap();
    assert_eq!((plan.from, plan.to, plan.steps.len()), (7, 11, 4));
    let s = SqliteStore::open(dir.path()).unwrap();
    check(&s);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ('windows_by_time', 'port_cells_by_port')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(indexes.is_empty(), "{indexes:?}");
    // Nor did the cells take the per-port index along to their own file.
    let moved: i64 = rusqlite::Connection::open(dir.path().join("counts.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'port_cells_by_port'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(moved, 0);
    assert!(dir.path().join("scanwatch.db.v7.bak").exists());
}

/// The server defers the counting into the aggregates to after its answer
/// (`defer_counting`, then `count_due`): commits then count nothing however many
/// events wait, answers are the same meanwhile (queries read the waiting blocks),
/// and `count_due` counts them. Without deferring, the commit that brings 20,000
/// events to wait counts them.
#[test]
fn deferred_counting_waits_for_count_due_and_answers_the_same() {
    use scanwatch_store::TopBy;
    let watermark = |s: &SqliteStore| -> i64 {
        rusqlite::Connection::open(s.path().with_file_name("counts.db"))
            .unwrap()
            .query_row("SELECT block_id FROM counted", [], |r| r.get(0))
            .unwrap()
    };
    let batches: Vec<Vec<Event>> = (0..5)
        .map(|b| {
            (0..5_000)
                .map(|i| {
                    nth(
                        b * 5_000 + i,
                        7_000,
                        "203.0",
                        250,
                        &[22, 23, 445, 1025],
                        (97, 1000),
                    )
                })
                .collect()
        })
        .collect();
    let load = |defer: bool| {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(dir.path()).unwrap();
        s.add_sensor("a", Timestamp(0)).unwrap();
        if defer {
            s.defer_counting();
        }
        for (i, b) in batches.iter().enumerate() {
            s.commit_batch("a", &i.to_string(), b, Timestamp(1))
                .unwrap();
        }
        (dir, s)
    };
    let answers = |s: &SqliteStore| {
        let (from, to) = (Timestamp(0), Timestamp(200_000_000));
        (
            s.top_ports(from, to, TopBy::Sources, 10).unwrap(),
            s.top_ports(
                Timestamp(3_600_000),
                Timestamp(90_000_000),
                TopBy::Events,
                3,
            )
            .unwrap(),
            s.source_activity("203.0.1.7".parse().unwrap(), from, to)
                .unwrap(),
        )
    };
    let (_d1, inline) = load(false);
    assert!(
        watermark(&inline) > 0,
        "25,000 events were counted at commit"
    );
    assert_eq!(inline.uncounted().unwrap(), 5_000, "the last batch waits");
    let (_d2, mut deferred) = load(true);
    assert_eq!(
        watermark(&deferred),
        0,
        "a deferring store counts nothing at commit"
    );
    // What waits is what the server bounds (`max_uncounted_events`): every event
    // committed and not counted, a duplicate adding nothing.
    assert_eq!(deferred.uncounted().unwrap(), 25_000);
    deferred
        .commit_batch("a", "0", &batches[0], Timestamp(1))
        .unwrap();
    assert_eq!(deferred.uncounted().unwrap(), 25_000);
    let want = answers(&inline);
    assert!(!want.0.is_empty() && !want.2.is_empty());
    assert_eq!(answers(&deferred), want);
    deferred.count_due().unwrap();
    assert!(
        watermark(&deferred) > 0,
        "count_due counted the waiting blocks"
    );
    assert_eq!(deferred.uncounted().unwrap(), 0);
    assert_eq!(answers(&deferred), want);
    // Nothing due: nothing to do.
    deferred.count_due().unwrap();
    assert_eq!(answers(&deferred), want);
}

/// A read connection that reads the files through a memory map (the server's,
/// `[store] map_reads`) answers what the writer answers: with events waiting to
/// be counted, after they are counted (pages in the aggregates' WAL, not yet in
/// its file), and after more batches commit.
#[test]
fn a_mapped_reader_answers_as_the_writer_does() {
    use scanwatch_store::TopBy;
    let dir = tempfile::tempdir().unwrap();
    let mut writer = SqliteStore::open(dir.path()).unwrap();
    writer.add_sensor("a", Timestamp(0)).unwrap();
    writer.defer_counting();
    let batch = |b: usize| -> Vec<Event> {
        (0..4_000)
            .map(|i| {
                nth(
                    b * 4_000 + i,
                    9_000,
                    "198.51",
                    200,
                    &[23, 445, 3389],
                    (89, 2000),
                )
            })
            .collect()
    };
    let answers = |s: &SqliteStore| {
        let (from, to) = (Timestamp(0), Timestamp(400_000_000));
        (
            s.top_ports(from, to, TopBy::Sources, 10).unwrap(),
            s.top_ports(Timestamp(7_200_000), to, TopBy::Events, 5)
                .unwrap(),
            s.source_activity("198.51.3.17".parse().unwrap(), from, to)
                .unwrap(),
            s.events_between(from, to).unwrap().len(),
        )
    };
    let mapped = SqliteStore::open(dir.path()).unwrap();
    mapped.map_for_reading().unwrap();
    for b in 0..3 {
        writer
            .commit_batch("a", &format!("b{b}"), &batch(b), Timestamp(1))
            .unwrap();
    }
    let want = answers(&writer);
    assert!(!want.0.is_empty() && !want.2.is_empty() && want.3 == 12_000);
    assert_eq!(answers(&mapped), want, "events waiting to be counted");
    writer.aggregate_now().unwrap();
    assert_eq!(writer.uncounted().unwrap(), 0);
    assert_eq!(answers(&mapped), want, "counted");
    for b in 3..6 {
        writer
            .commit_batch("a", &format!("b{b}"), &batch(b), Timestamp(1))
            .unwrap();
    }
    writer.aggregate_now().unwrap();
    let more = answers(&writer);
    assert_ne!(more, want);
    assert_eq!(answers(&mapped), more, "after more batches");
}

/// The aggregates are in a file of their own (`counts.db`), so a batch commits
/// while a counting holds that file's write lock (the server counts on another
/// thread): here another connection holds it for the whole commit. The store's
/// connection has that file attached read-only; attached writable, its
/// `BEGIN IMMEDIATE` would wait for the lock (the busy timeout) and fail.
#[test]
fn a_batch_commits_while_the_aggregates_file_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("a", Timestamp(0)).unwrap();
    let counts = rusqlite::Connection::open(dir.path().join("counts.db")).unwrap();
    counts.execute_batch("BEGIN IMMEDIATE").unwrap();
    let batch: Vec<Event> = (0..100)
        .map(|i| ev(i * 1_000, "203.0.113.7", 1025))
        .collect();
    assert!(matches!(
        s.commit_batch("a", "1", &batch, Timestamp(1)).unwrap(),
        BatchOutcome::Accepted { events: 100 }
    ));
    counts.execute_batch("COMMIT").unwrap();
    // Queries read the waiting block meanwhile; the counting then counts it.
    let top = |s: &SqliteStore| {
        s.top_ports(
            Timestamp(0),
            Timestamp(1_000_000),
            scanwatch_store::TopBy::Events,
            5,
        )
        .unwrap()
    };
    let before = top(&s);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].events, 200, "100 events of count 2");
    s.aggregate_now().unwrap();
    assert_eq!(top(&s), before);
}

/// A version 8 store kept its aggregates in its own file: opening it moves them,
/// rows and watermark, into `counts.db` (version 9) and drops them there; the
/// answers are the same, nothing is counted again.
#[test]
fn a_version_8_store_moves_its_aggregates_to_their_own_file() {
    use scanwatch_store::TopBy;
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    // Counted as version 8 counted: every port of a source's day in a row of its
    // own.
    s.set_pack_ports(0);
    s.add_sensor("a", Timestamp(0)).unwrap();
    for b in 0..7 {
        let batch: Vec<Event> = (0..4_000)
            .map(|i| {
                let n = b * 4_000 + i;
                ev(
                    n as i64 * 9_000,
                    &format!("203.0.{}.{}", n / 250 % 250, n % 250),
                    1000 + (n % 40) as u16,
                )
            })
            .collect();
        s.commit_batch("a", &b.to_string(), &batch, Timestamp(1))
            .unwrap();
    }
    let answers = |s: &SqliteStore| {
        let (from, to) = (Timestamp(0), Timestamp(1 << 40));
        (
            s.top_ports(from, to, TopBy::Sources, 50).unwrap(),
            s.top_ports(
                Timestamp(3_600_000),
                Timestamp(90_000_000),
                TopBy::Events,
                5,
            )
            .unwrap(),
            s.source_activity("203.0.3.7".parse().unwrap(), from, to)
                .unwrap(),
        )
    };
    let counted = |dir: &std::path::Path| -> i64 {
        rusqlite::Connection::open(dir.join("counts.db"))
            .unwrap()
            .query_row("SELECT block_id FROM counted", [], |r| r.get(0))
            .unwrap()
    };
    let want = answers(&s);
    let mark = counted(dir.path());
    assert!(mark > 0, "20,000 of the 28,000 events were counted");
    let db = s.path().to_path_buf();
    drop(s);
    // Version 8: the aggregates, rows and watermark, in the store's file; no
    // counts.db.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(BACK_TO_V8).unwrap();
    conn.execute(
        "ATTACH DATABASE ?1 AS c",
        [dir.path().join("counts.db").display().to_string()],
    )
    .unwrap();
    conn.execute_batch(
        "INSERT INTO main.port_cells SELECT span_ms, start_ms, proto, port, events, n_src,
             n_sensors, src, dst, sensors FROM c.port_cells;
         INSERT INTO main.source_days SELECT day_ms, src, proto, port, events, first_in,
             last_in, sensors, targets FROM c.source_days;
         UPDATE aggregated SET block_id = (SELECT block_id FROM c.counted);
         DETACH DATABASE c;",
    )
    .unwrap();
    drop(conn);
    for f in ["counts.db", "counts.db-wal", "counts.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(counted(dir.path()), mark, "moved, not counted again");
    assert_eq!(answers(&s), want);
    let main_tables: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('port_cells', 'source_days')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(main_tables, 0, "dropped from the store's file");
    assert!(dir.path().join("scanwatch.db.v8.bak").exists());
}

/// A damaged aggregates' file (here written over with bytes that are no database)
/// is moved aside, kept for whoever looks into it, and the aggregates are counted
/// again from the blocks: the store opens and answers as before.
#[test]
fn a_damaged_aggregates_file_is_moved_aside_and_counted_again() {
    use scanwatch_store::TopBy;
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("a", Timestamp(0)).unwrap();
    let batch: Vec<Event> = (0..30_000)
        .map(|i| {
            ev(
                i * 1_000,
                &format!("203.0.{}.{}", i / 250 % 250, i % 250),
                1025,
            )
        })
        .collect();
    s.commit_batch("a", "1", &batch, Timestamp(1)).unwrap();
    let top = |s: &SqliteStore| {
        s.top_ports(Timestamp(0), Timestamp(1 << 40), TopBy::Sources, 5)
            .unwrap()
    };
    let want = top(&s);
    drop(s);
    std::fs::write(dir.path().join("counts.db"), vec![b'x'; 8192]).unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(top(&s), want);
    assert_eq!(
        std::fs::read(dir.path().join("counts.db.damaged")).unwrap(),
        vec![b'x'; 8192],
        "the damaged file is kept"
    );
}

/// The store's file put back from an older copy (docs/deploy.md) while
/// `counts.db` stays: the aggregates were counted further than the restored file
/// holds, so they are counted again from its events at open; the answers are the
/// copy's, and the batches that follow are counted.
#[test]
fn a_store_restored_from_an_older_copy_is_counted_again() {
    use scanwatch_store::TopBy;
    let dir = tempfile::tempdir().unwrap();
    let batch = |b: usize| -> Vec<Event> {
        (0..25_000)
            .map(|i| {
                ev(
                    (b * 25_000 + i) as i64 * 1_000,
                    &format!("203.0.{}.{}", b, i % 250),
                    1025 + b as u16,
                )
            })
            .collect()
    };
    let top = |s: &SqliteStore| {
        s.top_ports(Timestamp(0), Timestamp(1 << 40), TopBy::Events, 10)
            .unwrap()
    };
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("a", Timestamp(0)).unwrap();
    s.commit_batch("a", "0", &batch(0), Timestamp(1)).unwrap();
    let copy = dir.path().join("copy.db");
    rusqlite::Connection::open(s.path())
        .unwrap()
        .execute("VACUUM INTO ?1", [copy.display().to_string()])
        .unwrap();
    let at_copy = top(&s);
    for b in 1..3 {
        s.commit_batch("a", &b.to_string(), &batch(b), Timestamp(1))
            .unwrap();
    }
    s.aggregate_now().unwrap();
    assert_ne!(top(&s), at_copy);
    let db = s.path().to_path_buf();
    drop(s);
    std::fs::copy(&copy, &db).unwrap();
    for f in ["scanwatch.db-wal", "scanwatch.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let mut s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(top(&s), at_copy, "the copy's answers");
    s.commit_batch("a", "3", &batch(3), Timestamp(1)).unwrap();
    s.aggregate_now().unwrap();
    let got = top(&s);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.iter().all(|p| p.events == 2 * 25_000),
        "25,000 events of count 2 on each: {got:?}"
    );
}

/// A write that reads first (retention counts, then deletes) waits for another
/// process's write instead of failing: `scanwatch admin` adding a token while the
/// server starts made the server's start-up prune fail with "database is locked".
#[test]
fn a_write_waits_for_another_connections_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    s.add_sensor("fw-1", Timestamp(1)).unwrap();
    let db = dir.path().join(scanwatch_store::sqlite::DB_FILE);
    let (held, hold) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(db).unwrap();
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        c.execute("UPDATE sensors SET created_ms = 2", []).unwrap();
        held.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        c.execute_batch("COMMIT").unwrap();
    });
    hold.recv().unwrap();
    let pruned = s.prune(Timestamp(1_000), Timestamp(1_000));
    other.join().unwrap();
    assert_eq!(pruned.unwrap(), (0, 0));
    s.add_sensor("fw-2", Timestamp(3)).unwrap();
}

/// The deployment's sample seed is drawn once and kept: the same after a
/// reopen and for four processes asking at once, another for another store.
#[test]
fn the_sample_seed_is_drawn_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStore::open(dir.path())
        .unwrap()
        .sample_seed()
        .unwrap();
    assert_eq!(
        SqliteStore::open(dir.path())
            .unwrap()
            .sample_seed()
            .unwrap(),
        first
    );
    let other = tempfile::tempdir().unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let seeds: Vec<u64> = (0..4)
        .map(|_| {
            let (p, b) = (other.path().to_path_buf(), barrier.clone());
            std::thread::spawn(move || {
                let mut s = SqliteStore::open(&p).unwrap();
                b.wait();
                s.sample_seed().unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(seeds.iter().all(|s| *s == seeds[0]), "{seeds:?}");
    assert_ne!(seeds[0], first);
}
