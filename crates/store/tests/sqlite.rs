//! The SQLite store: sensors and tokens, exactly-once batches, event round trips,
//! persistence across reopen, and refusal of a newer schema.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{BatchOutcome, Store, StoreError};

fn ev(t: i64, src: &str, port: u16) -> Event {
    Event {
        time: Timestamp(t),
        proto: Protocol::Tcp,
        src: src.parse().unwrap(),
        dst: "198.18.0.1".parse().unwrap(),
        src_port: Some(40000),
        dst_port: Some(port),
        flags: TcpFlags(TcpFlags::SYN),
        flags_known: true,
        icmp_type: None,
        direction: Direction::Inbound,
        action: Action::Drop,
        count: 2,
    }
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
fn a_newer_schema_is_refused_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("scanwatch.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
}
