//! A batch is answered once it is durable, before its feed; what comes after the
//! answer (a read, the sensor's heartbeat) waits for that feed, so a sensor's
//! deliveries reach the time model in the order it made them.

#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::mpsc;
use std::time::Duration;

use scanwatch_centre::Centre;
use scanwatch_event::{Event, Timestamp};
use scanwatch_pipeline::{Pipeline, PipelineConfig};
use scanwatch_store::prelude::*;
use scanwatch_store::sqlite::SqliteStore;
use scanwatch_store::{BatchOutcome, ContextItem, ContextKind};

/// 2026-06-01T00:00:00Z.
const T0: i64 = 1_780_272_000_000;

/// An event from one source to tcp/22.
fn syn(t: i64) -> Event {
    common::syn(t, IpAddr::V4(Ipv4Addr::new(198, 19, 0, 7)), 1, 22)
}

fn delivered(c: &Centre) -> Option<Timestamp> {
    c.sensor_times()
        .unwrap()
        .get("s1")
        .and_then(|t| t.delivered_max)
}

/// Resends batch b1 on a thread; what it answered and what was fed then.
fn saw_dup(
    c: &Centre,
    events: Vec<Event>,
    now: Timestamp,
) -> mpsc::Receiver<(BatchOutcome, Option<Timestamp>)> {
    let (tx, rx) = mpsc::channel();
    let c = c.clone();
    std::thread::spawn(move || {
        let outcome = c
            .ingest("s1", "b1", &events, &[], now, |_, _| {
                panic!("a duplicate is not answered as accepted")
            })
            .unwrap();
        tx.send((outcome, delivered(&c))).unwrap();
    });
    rx
}

/// A centre of 1-minute windows over a store in a new directory, sensor `s1`.
fn centre_of_s1() -> (tempfile::TempDir, Centre) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.add_sensor("s1", Timestamp(T0)).unwrap();
    let centre = Centre::new(
        Box::new(store),
        Pipeline::new(PipelineConfig::new(60_000, 3_600_000)),
    );
    (dir, centre)
}

#[test]
fn the_answer_comes_before_the_feed_and_what_follows_waits_for_it() {
    let (_dir, centre) = centre_of_s1();
    let events: Vec<Event> = (0..100).map(|i| syn(T0 + i * 1_000)).collect();
    let last = events[99].time;
    let now = Timestamp(T0 + 100_000);
    let (answer, answered) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let c = centre.clone();
    let step = std::thread::spawn(move || {
        c.ingest("s1", "b1", &events, &[], now, |outcome, ids_stored| {
            answer.send((outcome, ids_stored)).unwrap();
            // The sensor has its answer; the feed waits for the test.
            released.recv().unwrap();
        })
    });
    let (outcome, ids_stored) = answered.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(outcome, BatchOutcome::Accepted { events: 100 });
    assert!(ids_stored);
    assert_eq!(delivered(&centre), None, "answered before the feed");
    // A read and the sensor's heartbeat, both after the answer, wait for the feed.
    let (seen, saw) = mpsc::channel();
    let c = centre.clone();
    let reader = seen.clone();
    std::thread::spawn(move || {
        c.settled();
        reader.send(("read", delivered(&c))).unwrap();
    });
    let c = centre.clone();
    std::thread::spawn(move || {
        c.heartbeat("s1", Some(last), now).unwrap();
        seen.send(("heartbeat", delivered(&c))).unwrap();
    });
    // The sensor gave up waiting and resends: the duplicate's answer waits too.
    let c = centre.clone();
    let resent: Vec<Event> = (0..100).map(|i| syn(T0 + i * 1_000)).collect();
    let dup = saw_dup(&c, resent, now);
    assert!(
        saw.recv_timeout(Duration::from_millis(300)).is_err(),
        "a read or a heartbeat passed a batch answered and not fed"
    );
    assert!(
        dup.recv_timeout(Duration::from_millis(10)).is_err(),
        "a resend was answered before its original was fed"
    );
    release.send(()).unwrap();
    let (outcome, d) = dup.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(outcome, BatchOutcome::Duplicate);
    assert_eq!(d, Some(last), "the duplicate after the feed");
    for _ in 0..2 {
        let (what, d) = saw.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(d, Some(last), "{what} after the feed");
    }
    assert_eq!(
        step.join().unwrap().unwrap(),
        BatchOutcome::Accepted { events: 100 }
    );
    // A resend is a duplicate: nothing is answered early, nothing fed again.
    let again: Vec<Event> = (0..100).map(|i| syn(T0 + i * 1_000)).collect();
    let outcome = centre
        .ingest("s1", "b1", &again, &[], now, |_, _| {
            panic!("a duplicate is not answered as accepted")
        })
        .unwrap();
    assert_eq!(outcome, BatchOutcome::Duplicate);
}

/// The IDS alerts a batch carried are stored in a transaction after the batch's:
/// when storing them fails, the batch is answered with the failure and they are
/// not taken in; the sensor's resend, a duplicate, stores them and hands them
/// over once (as it would after a crash between the two commits), and a further
/// resend changes nothing.
#[test]
fn a_resend_stores_the_ids_alerts_its_first_attempt_could_not() {
    let (dir, centre) = centre_of_s1();
    let db = rusqlite::Connection::open(dir.path().join(scanwatch_store::sqlite::DB_FILE)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refused BEFORE INSERT ON context_items
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
    )
    .unwrap();
    let events: Vec<Event> = (0..10).map(|i| syn(T0 + i * 1_000)).collect();
    let items: Vec<ContextItem> = (0..2)
        .map(|i| ContextItem {
            key: format!("s1:b1:{i}"),
            origin: "s1".into(),
            json: format!("{{\"n\":{i}}}"),
        })
        .collect();
    let now = Timestamp(T0 + 20_000);
    let calls = std::sync::Mutex::new(Vec::new());
    let first = centre.ingest("s1", "b1", &events, &items, now, |o, stored| {
        calls.lock().unwrap().push((o, stored))
    });
    assert!(
        first.is_err_and(|e| e.to_string().contains("refused by the test")),
        "the answer is the failure"
    );
    assert_eq!(
        calls.lock().unwrap().split_off(0),
        vec![(BatchOutcome::Accepted { events: 10 }, false)],
        "durable, the alerts not stored: not taken in"
    );
    let stored = |c: &Centre| {
        c.store
            .lock()
            .unwrap()
            .context_items(ContextKind::Ids)
            .unwrap()
            .len()
    };
    assert_eq!(stored(&centre), 0);
    db.execute_batch("DROP TRIGGER refused").unwrap();
    for (round, want) in [(1, vec![(BatchOutcome::Duplicate, true)]), (2, vec![])] {
        let again = centre
            .ingest("s1", "b1", &events, &items, now, |o, stored| {
                calls.lock().unwrap().push((o, stored))
            })
            .unwrap();
        assert_eq!(again, BatchOutcome::Duplicate);
        assert_eq!(calls.lock().unwrap().split_off(0), want, "resend {round}");
        assert_eq!(stored(&centre), 2, "resend {round}");
    }
}
