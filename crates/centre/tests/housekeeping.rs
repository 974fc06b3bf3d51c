//! The centre's clockwork runs on its own: with nothing delivered, windows close on
//! the clock, checkpoints are taken and old events pruned, and it stops when told.

#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scanwatch_centre::{Centre, Housekeeping, Retention, Schedule};
use scanwatch_event::{Event, Timestamp};
use scanwatch_pipeline::{Pipeline, PipelineConfig};
use scanwatch_store::prelude::*;
use scanwatch_store::sqlite::SqliteStore;

/// 2026-06-01T00:00:00Z.
const T0: i64 = 1_780_272_000_000;
const HOUR: i64 = 3_600_000;

/// An event from one of 200 sources to tcp/22.
fn syn(t: i64, last: u8) -> Event {
    common::syn(t, IpAddr::V4(Ipv4Addr::new(198, 19, 0, last)), 1, 22)
}

#[test]
fn the_clockwork_closes_windows_checkpoints_and_prunes_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.add_sensor("s1", Timestamp(T0)).unwrap();
    let centre = Centre::new(
        Box::new(store),
        Pipeline::new(PipelineConfig::new(60_000, HOUR)),
    );
    // Ten minutes of events, delivered just after they were logged.
    let events: Vec<Event> = (0..600)
        .map(|i| syn(T0 + i * 1_000, (i % 200) as u8))
        .collect();
    let delivered = Timestamp(T0 + 600_000);
    centre
        .store
        .lock()
        .unwrap()
        .commit_batch("s1", "b1", &events, delivered)
        .unwrap();
    centre.feed("s1", &events, delivered).unwrap();
    let windows = |c: &Centre| {
        c.store
            .lock()
            .unwrap()
            .windows_between(Timestamp(T0), Timestamp(T0 + HOUR))
            .unwrap()
            .len()
    };
    // The sensor's progress closes the windows it has delivered past; the last
    // ones wait for the clock.
    let before = windows(&centre);
    assert!(
        before < 10,
        "{before} windows closed before the clock moved"
    );
    // A day later by the clock: every deadline has passed, and events older than
    // twelve hours go (the windows stay).
    let now = Timestamp(T0 + 24 * HOUR);
    let fast = Duration::from_millis(10);
    let clockwork = Housekeeping::spawn_with(
        centre.clone(),
        Arc::new(move || now),
        Retention {
            events_ms: 12 * HOUR,
            windows_ms: 400 * 24 * HOUR,
        },
        None,
        Schedule {
            tick: fast,
            checkpoint: fast,
            prune: fast,
            resolve: fast,
        },
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let closed = windows(&centre);
        let (checkpoint, left) = {
            let s = centre.store.lock().unwrap();
            (
                s.checkpoint().unwrap().is_some(),
                s.events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))
                    .unwrap()
                    .len(),
            )
        };
        if closed == 10 && checkpoint && left == 0 {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    clockwork.stop();
    assert!(done, "windows closed: {}", windows(&centre));
}
