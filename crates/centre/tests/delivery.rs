//! The centre's truth does not depend on when sensors deliver (docs/time.md).
//!
//! Several sensors' batches are delivered to a centre over a real SQLite store in a
//! random schedule: interleaved, a sensor stopping for a while and resuming with
//! its backlog (going idle on the centre's clock in between), heartbeats with and
//! without new events, checkpoints taken, and the centre restarted between batches
//! (from its checkpoint when it took one, else replaying every stored event),
//! also right after a batch was committed and before it was fed (a crash in
//! between: the restart must count it once). Once everything
//! is delivered and the clock has moved past the last window, the stored windows
//! and warnings must be those of one pipeline run over the union of the events in
//! time order (what `scanwatch analyze` does), the late flag and revision number
//! aside.

#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod common;

use scanwatch_store::prelude::*;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use scanwatch_aggregate::sensor_key;
use scanwatch_alert::alert_json;
use scanwatch_centre::Centre;
use scanwatch_context::ContextData;
use scanwatch_event::{Event, Timestamp};
use scanwatch_pipeline::{Output, Pipeline, PipelineConfig};
use scanwatch_store::sqlite::SqliteStore;

use common::syn;

const W: i64 = 30_000;
/// 2026-06-01T00:00:00Z, on a window boundary.
const T0: i64 = 1_780_272_000_000;
const SENSORS: usize = 4;
const WINDOWS: i64 = 36;
/// The surge on tcp/1025 starts here.
const SURGE: i64 = 28;
/// The background of every busy port but tcp/22 doubles here.
const GROWTH: i64 = 20;

fn cfg() -> PipelineConfig {
    // 30 s windows with 20 minutes of history (longer than the data, so every
    // revision is within the detector's memory), warnings from 3 minutes of
    // history on; exact counts throughout, so the comparison can be exact.
    let mut c = PipelineConfig::new(W, 20 * 60_000);
    c.detect.min_history_ms = 3 * 60_000;
    c.aggregate.exact_limit = 1 << 16;
    c
}

/// xorshift64*: the events of one case from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Each sensor's log, in time order: background on tcp/22 and tcp/1025, then a
/// surge on tcp/1025 seen by every sensor.
fn logs(seed: u64) -> Vec<Vec<Event>> {
    let mut r = Rng(seed | 1);
    (0..SENSORS)
        .map(|s| {
            let mut ev = Vec::new();
            for w in 0..WINDOWS {
                let start = T0 + w * W;
                let at = |r: &mut Rng| start + r.below(W as u64) as i64;
                for _ in 0..5 + r.below(6) {
                    let src = IpAddr::V4(Ipv4Addr::new(198, 51, 100, r.below(250) as u8));
                    ev.push(syn(at(&mut r), src, s as u8 + 1, 22));
                }
                // Four more busy ports, all doubling from window GROWTH on (as
                // when busier sensors join): the network index is then about 2,
                // and must be the same whatever the delivery.
                let level = if w >= GROWTH { 2 } else { 1 };
                for (k, port) in [23u16, 80, 443, 8080].into_iter().enumerate() {
                    for _ in 0..level * (2 + r.below(2)) {
                        let src =
                            IpAddr::V4(Ipv4Addr::new(192, 0, 2 + k as u8, r.below(250) as u8));
                        ev.push(syn(at(&mut r), src, s as u8 + 1, port));
                    }
                }
                for _ in 0..1 + r.below(3) {
                    let src = IpAddr::V4(Ipv4Addr::new(203, 0, 113, r.below(8) as u8));
                    ev.push(syn(at(&mut r), src, s as u8 + 1, 1025));
                }
                if w >= SURGE {
                    for _ in 0..15 + r.below(10) {
                        let src =
                            IpAddr::V4(Ipv4Addr::new(100, 64, r.below(2) as u8, r.below(60) as u8));
                        ev.push(syn(at(&mut r), src, s as u8 + 1, 1025));
                    }
                }
                if w == SURGE {
                    // A sweep in the surge's first window: three addresses of one
                    // network probe 160 ports (and tcp/1025), each port on one
                    // sensor. One sweep warning; not counted on any port.
                    for i in 0..3u8 {
                        let src = IpAddr::V4(Ipv4Addr::new(45, 33, 7, 10 + i));
                        ev.push(syn(at(&mut r), src, s as u8 + 1, 1025));
                        for p in (2000..2160u16).filter(|p| usize::from(*p) % SENSORS == s) {
                            ev.push(syn(at(&mut r), src, s as u8 + 1, p));
                        }
                    }
                }
            }
            ev.sort_by_key(|e| e.time);
            ev
        })
        .collect()
}

fn name(s: usize) -> String {
    format!("fw-{s:02}")
}

/// What `analyze` stores for the union of the logs: (window, proto, port) →
/// (events, sources, sensors, targets), and the warnings as JSON.
type Windows = BTreeMap<(i64, u8, u16), (u64, u64, u64, u64)>;

fn truth(logs: &[Vec<Event>]) -> (Windows, Vec<serde_json::Value>) {
    let mut all: Vec<(usize, &Event)> = logs
        .iter()
        .enumerate()
        .flat_map(|(s, l)| l.iter().map(move |e| (s, e)))
        .collect();
    all.sort_by_key(|(s, e)| (e.time, *s));
    let mut p = Pipeline::new(cfg());
    for s in 0..SENSORS {
        p.name_sensor(sensor_key(&name(s)), &name(s));
    }
    let mut windows = Windows::new();
    let mut alerts = Vec::new();
    let mut out = |o: Output| match o {
        Output::Window(w) => {
            assert!(!w.window.late, "the union in time order has no late events");
            for c in &w.window.cells {
                windows.insert(
                    (w.window.start.0, c.proto.number(), c.port),
                    (c.events, c.sources, c.sensors, c.targets),
                );
            }
        }
        Output::Alert(a) => alerts.push(*a),
        Output::Revision(_) => unreachable!("analyze does not revise"),
    };
    for (s, e) in &all {
        p.push(sensor_key(&name(*s)), e);
        p.drain(&mut out);
    }
    let report = p.finish(&mut out);
    let ctx = ContextData::builtin();
    let json = alerts
        .iter()
        .map(|a| serde_json::to_value(alert_json(a, &ctx, &|k| report.sensor_name(k))).unwrap())
        .collect();
    (windows, json)
}

/// A warning as the comparison sees it: without what only says when it was stored.
fn comparable(mut v: serde_json::Value) -> serde_json::Value {
    if let serde_json::Value::Object(m) = &mut v {
        for k in ["late", "late_by_s", "revision", "id"] {
            m.remove(k);
        }
    }
    v
}

/// A new data directory whose store knows the sensors.
fn store_with_sensors() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    for i in 0..SENSORS {
        s.add_sensor(&name(i), Timestamp(T0)).unwrap();
    }
    dir
}

fn centre(dir: &std::path::Path) -> Centre {
    let store = SqliteStore::open(dir).unwrap();
    Centre::new(Box::new(store), Pipeline::new(cfg()))
}

/// Sensor `s` delivers its next `n` events as one batch: committed, then fed
/// (unless `crash`: the centre stops between the two).
#[allow(clippy::too_many_arguments)]
fn deliver_one(
    c: &Centre,
    logs: &[Vec<Event>],
    next: &mut [usize],
    batch: &mut u64,
    s: usize,
    n: usize,
    now: &mut i64,
    crash: bool,
) {
    let from = next[s];
    let to = (from + n).min(logs[s].len());
    if from == to {
        return;
    }
    let events = &logs[s][from..to];
    // A sensor delivers what was logged: the centre's clock is past it.
    *now = (*now).max(events[events.len() - 1].time.0 + 500);
    *batch += 1;
    let id = format!("b{batch}");
    c.store
        .lock()
        .unwrap()
        .commit_batch(&name(s), &id, events, Timestamp(*now))
        .unwrap();
    if !crash {
        c.feed(&name(s), events, Timestamp(*now)).unwrap();
    }
    next[s] = to;
}

/// One delivery schedule, interpreted from `steps`; returns what the centre stored.
/// What a schedule made the centre do: restarts and windows revised.
#[derive(Debug, Default)]
struct Did {
    restarts: u64,
    /// Restarts that took up a checkpoint (the others replayed every event).
    resumed: u64,
    /// Restarts right after a batch was committed and not fed.
    crashes: u64,
    checkpoints: u64,
    revised: u64,
}

/// The centre stops (its state is dropped) and starts again on the same store.
fn restart(c: &mut Centre, dir: &std::path::Path, now: i64, did: &mut Did) {
    did.revised += c
        .counters
        .windows_revised
        .load(std::sync::atomic::Ordering::Relaxed);
    *c = centre(dir);
    let st = c.replay(Timestamp(now)).unwrap();
    assert_eq!(st.checkpoint_refused, None, "the checkpoint is refused");
    did.restarts += 1;
    if st.checkpoint.is_some() {
        did.resumed += 1;
    }
}

fn deliver(logs: &[Vec<Event>], steps: &[(u8, u8, u8)]) -> (Windows, Vec<serde_json::Value>, Did) {
    let dir = store_with_sensors();
    let mut c = centre(dir.path());
    let mut next = vec![0usize; SENSORS];
    let mut now = T0;
    let mut did = Did::default();
    let mut batch = 0u64;
    for &(action, a, b) in steps {
        let s = a as usize % SENSORS;
        now += i64::from(b) * 100;
        match action % 12 {
            0..=6 => deliver_one(
                &c,
                logs,
                &mut next,
                &mut batch,
                s,
                1 + b as usize % 60,
                &mut now,
                false,
            ),
            7 => {
                // A heartbeat: complete through the last event it delivered.
                let claim = next[s].checked_sub(1).map(|i| logs[s][i].time);
                c.heartbeat(&name(s), claim, Timestamp(now)).unwrap();
            }
            8 => {
                now += i64::from(a) * 2_000;
                c.tick(Timestamp(now)).unwrap();
            }
            9 => restart(&mut c, dir.path(), now, &mut did),
            10 => {
                c.checkpoint(Timestamp(now)).unwrap().unwrap();
                did.checkpoints += 1;
            }
            _ => {
                deliver_one(
                    &c,
                    logs,
                    &mut next,
                    &mut batch,
                    s,
                    1 + b as usize % 60,
                    &mut now,
                    true,
                );
                restart(&mut c, dir.path(), now, &mut did);
                did.crashes += 1;
            }
        }
    }
    // Whatever is left, round robin.
    while (0..SENSORS).any(|s| next[s] < logs[s].len()) {
        for s in 0..SENSORS {
            deliver_one(&c, logs, &mut next, &mut batch, s, 50, &mut now, false);
        }
    }
    // The clock moves past every deadline.
    c.tick(Timestamp(now + 3_600_000)).unwrap();
    did.revised += c
        .counters
        .windows_revised
        .load(std::sync::atomic::Ordering::Relaxed);
    let st = c.store.lock().unwrap();
    let windows = st
        .windows_between(Timestamp(i64::MIN), Timestamp(i64::MAX))
        .unwrap()
        .into_iter()
        .map(|w| {
            (
                (w.window_start.0, w.proto, w.port),
                (w.events, w.sources, w.sensors, w.targets),
            )
        })
        .collect();
    let mut alerts: Vec<serde_json::Value> = st
        .alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)
        .unwrap()
        .into_iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.json).unwrap())
        .filter(|v| v.get("withdrawn").is_none())
        .collect();
    alerts.sort_by_key(sort_key);
    (windows, alerts, did)
}

/// The order warnings are compared in: window, port, kind.
fn sort_key(v: &serde_json::Value) -> (String, String, String) {
    (
        v["window_start"].to_string(),
        v["port"].to_string(),
        v["alert_kind"].to_string(),
    )
}

fn check(seed: u64, steps: &[(u8, u8, u8)]) -> Did {
    let logs = logs(seed);
    let (tw, ta) = truth(&logs);
    assert!(
        ta.iter()
            .any(|a| a["port"] == 1025
                && a["window_start"] == Timestamp(T0 + SURGE * W).to_rfc3339()),
        "the case has its surge warning in the first surge window: {ta:#?}"
    );
    assert_eq!(
        ta.iter().filter(|a| a["alert_kind"] == "sweep").count(),
        1,
        "the case has one sweep warning: {ta:#?}"
    );
    let surges: Vec<(String, u64, f64)> = ta
        .iter()
        .filter(|a| a["alert_kind"] == "surge")
        .map(|a| {
            (
                a["window_start"].to_string(),
                a["port"].as_u64().unwrap(),
                a["network_index"].as_f64().unwrap_or(1.0),
            )
        })
        .collect();
    assert!(
        surges.iter().all(|s| s.1 == 1025) && surges.iter().any(|s| s.2 > 1.3),
        "only tcp/1025 surges, read against the grown network: {surges:?}"
    );
    let (cw, ca, did) = deliver(&logs, steps);
    assert_eq!(cw, tw, "stored windows differ from analyze on the union");
    let mut ta: Vec<_> = ta.into_iter().map(comparable).collect();
    ta.sort_by_key(sort_key);
    let ca: Vec<_> = ca.into_iter().map(comparable).collect();
    if ca != ta {
        panic!(
            "stored warnings differ from analyze on the union:\n{}",
            diff(&ca, &ta)
        );
    }
    did
}

/// The differing fields of two lists of warnings, one line each.
fn diff(centre: &[serde_json::Value], truth: &[serde_json::Value]) -> String {
    let key = |v: &serde_json::Value| {
        format!(
            "{} {}/{} {}",
            v["window_start"], v["protocol"], v["port"], v["alert_kind"]
        )
    };
    let mut out = String::new();
    for c in centre {
        match truth.iter().find(|t| key(t) == key(c)) {
            None => out.push_str(&format!(
                "only in the centre: {} {}\n",
                key(c),
                c["headline"]
            )),
            Some(t) => {
                if let (Some(cm), Some(tm)) = (c.as_object(), t.as_object()) {
                    for (k, v) in cm {
                        if tm.get(k) != Some(v) && !["mitigations", "summary"].contains(&k.as_str())
                        {
                            out.push_str(&format!(
                                "{}: {k}: centre {v} analyze {}\n",
                                key(c),
                                tm.get(k).unwrap_or(&serde_json::Value::Null)
                            ));
                        }
                    }
                }
            }
        }
    }
    for t in truth {
        if !centre.iter().any(|c| key(c) == key(t)) {
            out.push_str(&format!("only in analyze: {} {}\n", key(t), t["headline"]));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_delivery_schedule_stores_what_analyze_finds(
        seed in any::<u64>(),
        steps in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..160),
    ) {
        check(seed, &steps);
    }
}

/// Sensors delivered one after another, each its whole log: all but the first are
/// late for every window the first one's progress closed.
#[test]
fn one_sensor_after_another() {
    let steps: Vec<(u8, u8, u8)> = (0..SENSORS as u8)
        .flat_map(|s| std::iter::repeat_n((0u8, s, 59u8), 40))
        .collect();
    let did = check(7, &steps);
    assert!(
        did.revised > 20,
        "the later sensors revised the windows: {did:?}"
    );
}

/// Thirty rounds of three sensors delivering and a heartbeat, the fourth sensor
/// three minutes behind, going idle between its batches; `extra` adds the steps
/// of each round's end.
fn late_sensor(extra: impl Fn(u8, &mut Vec<(u8, u8, u8)>)) -> Vec<(u8, u8, u8)> {
    let mut steps = Vec::new();
    for round in 0..30u8 {
        for s in 0..3u8 {
            steps.push((0u8, s, 20u8));
        }
        steps.push((7, 0, 0));
        if round % 6 == 5 {
            steps.push((8, 80, 0)); // 160 s of quiet: sensor 3 goes idle
            steps.push((0, 3, 40));
        }
        extra(round, &mut steps);
    }
    steps
}

/// One sensor three minutes behind the others the whole time, going idle between
/// its batches, and a restart in the middle.
#[test]
fn one_sensor_late_and_a_restart() {
    let steps = late_sensor(|round, steps| {
        if round == 15 {
            steps.push((9, 0, 0));
        }
    });
    let did = check(11, &steps);
    assert_eq!(did.restarts, 1);
    assert!(did.revised > 0, "the late sensor revised windows: {did:?}");
}

/// The same late sensor, with a checkpoint every few rounds, restarts that take
/// it up (some right after a batch was committed and not fed: a crash between
/// the commit and the next checkpoint), and the surge arriving in between.
#[test]
fn checkpoints_and_crashes_between_commit_and_checkpoint() {
    let steps = late_sensor(|round, steps| {
        if round % 4 == 1 {
            steps.push((10, 0, 0));
        }
        match round % 7 {
            2 => steps.push((9, 0, 0)),
            4 => steps.push((11, round, 30)),
            _ => {}
        }
    });
    let did = check(11, &steps);
    assert!(did.checkpoints >= 7, "{did:?}");
    assert!(did.crashes >= 4, "{did:?}");
    assert_eq!(
        did.resumed, did.restarts,
        "every restart took up a checkpoint: {did:?}"
    );
    assert!(did.revised > 0, "{did:?}");
}

/// A restart from a checkpoint replays only the events stored after it, and a
/// restart replays every event when the checkpoint is unusable.
#[test]
fn a_restart_replays_only_what_was_stored_after_the_checkpoint() {
    let logs = logs(5);
    let dir = store_with_sensors();
    let c = centre(dir.path());
    let (mut next, mut batch, mut now) = (vec![0usize; SENSORS], 0u64, T0);
    // All but the last 60 events of each sensor: the surge is warned.
    while (0..SENSORS).any(|s| next[s] + 60 < logs[s].len()) {
        for s in 0..SENSORS {
            let n = (logs[s].len() - 60).saturating_sub(next[s]).min(200);
            deliver_one(&c, &logs, &mut next, &mut batch, s, n, &mut now, false);
        }
    }
    let before: usize = next.iter().sum();
    // Every deadline passes: the windows close.
    now += 3_600_000;
    c.tick(Timestamp(now)).unwrap();
    let cp = c.checkpoint(Timestamp(now)).unwrap().unwrap();
    assert!(cp.mark >= SENSORS as u64 && cp.bytes > 0, "{cp:?}");
    deliver_one(&c, &logs, &mut next, &mut batch, 0, 30, &mut now, false);
    deliver_one(&c, &logs, &mut next, &mut batch, 1, 20, &mut now, true);
    let stored: Vec<i64> = {
        let st = c.store.lock().unwrap();
        st.alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)
            .unwrap()
            .into_iter()
            .filter(|r| {
                serde_json::from_str::<serde_json::Value>(&r.json).unwrap()["withdrawn"].is_null()
            })
            .map(|r| r.id)
            .collect()
    };
    assert!(!stored.is_empty(), "the surge is warned before the restart");
    drop(c);
    // The restarted centre hands the sinks every stored warning again (what was
    // stored and not yet sent when it stopped is sent; each sink sends once).
    let raised = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let r2 = raised.clone();
    let c = centre(dir.path()).with_alert_hook(std::sync::Arc::new(move |id, _w| {
        r2.lock().unwrap().push(id)
    }));
    let st = c.replay(Timestamp(now)).unwrap();
    assert_eq!(st.checkpoint, Some(cp.mark));
    assert_eq!(st.events, 50, "only the two batches after the checkpoint");
    let raised = raised.lock().unwrap().clone();
    assert!(
        stored.iter().all(|id| raised.contains(id)),
        "stored {stored:?}, raised {raised:?}"
    );
    drop(c);
    // Other settings: the checkpoint is refused, with why, and all is replayed.
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut other = cfg();
    other.detect.min_history_ms += W;
    let c = Centre::new(Box::new(store), Pipeline::new(other));
    let st = c.replay(Timestamp(now)).unwrap();
    assert_eq!(st.checkpoint, None);
    assert!(
        st.checkpoint_refused
            .as_deref()
            .is_some_and(|why| why.contains("other settings")),
        "{st:?}"
    );
    assert_eq!(st.events, before + 50);
}

/// Events stored dated beyond the clock skew (by an older version, or before the
/// clock stepped back) are left out of a replay; no checkpoint is taken while
/// they are (its mark would pass them), so a later start, once the clock has
/// passed them, still feeds them.
#[test]
fn events_left_out_as_future_are_fed_by_a_later_start() {
    let logs = logs(3);
    let dir = store_with_sensors();
    let c = centre(dir.path());
    let (mut next, mut batch, mut now) = (vec![0usize; SENSORS], 0u64, T0);
    deliver_one(&c, &logs, &mut next, &mut batch, 0, 100, &mut now, false);
    let cp = c.checkpoint(Timestamp(now)).unwrap().unwrap();
    // A day ahead of the clock, stored behind the centre's back.
    let ahead: Vec<Event> = logs[1][..40]
        .iter()
        .map(|e| Event {
            time: Timestamp(e.time.0 + 86_400_000),
            ..e.clone()
        })
        .collect();
    c.store
        .lock()
        .unwrap()
        .commit_batch(&name(1), "ahead", &ahead, Timestamp(now))
        .unwrap();
    drop(c);
    let c = centre(dir.path());
    let st = c.replay(Timestamp(now)).unwrap();
    assert_eq!((st.checkpoint, st.future_events), (Some(cp.mark), 40));
    assert_eq!(
        c.checkpoint(Timestamp(now)).unwrap(),
        None,
        "no checkpoint past events left out"
    );
    drop(c);
    let later = now + 2 * 86_400_000;
    let c = centre(dir.path());
    let st = c.replay(Timestamp(later)).unwrap();
    assert_eq!(
        (st.checkpoint, st.events, st.future_events),
        (Some(cp.mark), 40, 0)
    );
    assert!(c.checkpoint(Timestamp(later)).unwrap().is_some());
}

/// A step that could not store what it closed leaves the state unfit for a
/// checkpoint (its mark would pass a batch whose windows and warnings were never
/// stored, and a restart would not feed that batch again): no checkpoint is taken
/// after it, also not by one that was already waiting for the batch's feed when
/// the feed failed (the centre's gate: the server's ingest holds it from the
/// commit to the end of the feed).
#[test]
fn no_checkpoint_after_a_step_that_could_not_store_its_windows() {
    let logs = logs(5);
    let dir = store_with_sensors();
    let c = std::sync::Arc::new(centre(dir.path()));
    let (mut next, mut batch, mut now) = (vec![0usize; SENSORS], 0u64, T0);
    for s in 0..SENSORS {
        let n = logs[s].len() / 2;
        deliver_one(&c, &logs, &mut next, &mut batch, s, n, &mut now, false);
    }
    c.checkpoint(Timestamp(now)).unwrap().unwrap();
    // The windows' table refuses rows from now on (a real SQLite failure), and
    // another writer holds the store, so the next batch's commit waits, with the
    // gate held, until the test lets it go.
    let db = rusqlite::Connection::open(dir.path().join(scanwatch_store::sqlite::DB_FILE)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refused BEFORE INSERT ON windows
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;
         BEGIN IMMEDIATE;",
    )
    .unwrap();
    // The rest of a sensor's events, an hour after: their feed closes windows.
    let events = logs[0][next[0]..].to_vec();
    let received = Timestamp(now + 3_600_000);
    let ingest = {
        let c = c.clone();
        std::thread::spawn(move || c.ingest(&name(0), "late", &events, &[], received, |_, _| {}))
    };
    // The ingest holds the store's lock while its commit waits (bounded wait).
    let start = std::time::Instant::now();
    while c.store.try_lock().is_ok() {
        assert!(
            start.elapsed().as_secs() < 60,
            "the ingest never took the store"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let waiting = {
        let c = c.clone();
        std::thread::spawn(move || c.checkpoint(received).unwrap())
    };
    // Time for the checkpoint to pass its first look and wait at the gate (had it
    // not reached the gate by then, it would find the state unfit at its first
    // look, and the test would pass without telling the two apart).
    std::thread::sleep(std::time::Duration::from_millis(300));
    db.execute_batch("COMMIT").unwrap();
    let fed = ingest.join().unwrap();
    assert!(
        fed.as_ref()
            .is_err_and(|e| e.to_string().contains("refused by the test")),
        "the feed fails storing its windows: {fed:?}"
    );
    assert_eq!(
        waiting.join().unwrap(),
        None,
        "a checkpoint waiting for the failed feed is not taken"
    );
    assert_eq!(
        c.checkpoint(received).unwrap(),
        None,
        "nor one taken after it"
    );
    // A heartbeat's step that fails the same way: still none.
    assert!(c.tick(Timestamp(received.0 + 3_600_000)).is_err());
    assert_eq!(c.checkpoint(received).unwrap(), None);
}

/// A late event in a window older than the raw events' retention does not
/// revise it (its other events are pruned, or about to be: a revision would
/// replace the window's stored counts with the late event's alone); one within
/// it does. Both are stored.
#[test]
fn a_window_older_than_the_events_retention_is_not_revised() {
    let logs = logs(7);
    let dir = store_with_sensors();
    let (mut next, mut batch, mut now) = (vec![0usize; SENSORS], 0u64, T0);
    // Every window closes an hour after the last event; retention keeps the
    // raw events from window 20 on at that clock.
    let end = T0 + WINDOWS * W + 3_600_000;
    let c = centre(dir.path()).with_retention(end - (T0 + 20 * W));
    while (0..SENSORS).any(|s| next[s] < logs[s].len()) {
        for s in 0..SENSORS {
            deliver_one(&c, &logs, &mut next, &mut batch, s, 150, &mut now, false);
        }
    }
    c.tick(Timestamp(end)).unwrap();
    let events_in = |ws: i64| -> u64 {
        c.store
            .lock()
            .unwrap()
            .windows_between(Timestamp(ws), Timestamp(ws + 1))
            .unwrap()
            .iter()
            .filter(|r| r.proto == 6 && r.port == 23)
            .map(|r| r.events)
            .sum()
    };
    let (old, kept) = (T0 + 2 * W, T0 + 30 * W);
    let (old_before, kept_before) = (events_in(old), events_in(kept));
    // Retention prunes the raw events before window 20 (the windows stay).
    c.store
        .lock()
        .unwrap()
        .prune(Timestamp(T0 + 20 * W), Timestamp(i64::MIN))
        .unwrap();
    let src = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 99));
    for (i, ws) in [old, kept].into_iter().enumerate() {
        let late = vec![syn(ws + 1_000, src, 7, 23)];
        c.store
            .lock()
            .unwrap()
            .commit_batch(&name(0), &format!("late{i}"), &late, Timestamp(end))
            .unwrap();
        c.feed(&name(0), &late, Timestamp(end)).unwrap();
    }
    let counters = &c.counters;
    assert_eq!(
        counters
            .windows_not_revised
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        counters
            .windows_revised
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        events_in(old),
        old_before,
        "the old window as it was stored, not its late event alone"
    );
    assert_eq!(events_in(kept), kept_before + 1, "the kept one revised");
    assert!(old_before > 0, "tcp/23 was in the old window");
}
