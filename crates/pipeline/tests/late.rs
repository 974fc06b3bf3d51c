//! Late events are re-evaluated, never dropped: the golden seed-surge network with
//! the events of the surge's first window delivered three hours late (beyond the
//! one-hour lateness) still warns about that window, marked `late`, with the merged
//! counts; delivered on time, the same window warns unmarked.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_event::Event;
use scanwatch_pipeline::{sensor_key, Output, Pipeline, PipelineConfig};

const HOUR: i64 = 3_600_000;

fn run(events: &[(u32, Event)]) -> (Vec<scanwatch_detect::Alert>, u64, usize) {
    let mut p = Pipeline::new(PipelineConfig::new(HOUR, 2 * 24 * HOUR));
    p.set_emit_windows(false);
    let mut alerts = Vec::new();
    for (s, e) in events {
        p.push(sensor_key(&format!("sensor-{s}")), e);
        p.drain(&mut |o| {
            if let Output::Alert(a) = o {
                alerts.push(*a);
            }
        });
    }
    let r = p.finish(&mut |o| {
        if let Output::Alert(a) = o {
            alerts.push(*a);
        }
    });
    (alerts, r.late_events, r.late_windows)
}

#[test]
fn a_surge_window_delivered_late_still_warns_marked_late() {
    let sc = scanwatch_simulate::golden_cases()
        .into_iter()
        .find(|c| c.name == "seed-surge")
        .unwrap();
    let events = sc.all_events();
    let onset = scanwatch_event::parse_rfc3339("2026-11-19T10:00:00Z")
        .unwrap()
        .0;
    let (on_time, late_count, _) = run(&events);
    assert_eq!(late_count, 0);
    let first = on_time
        .iter()
        .find(|a| a.port == 1025 && a.window_start.0 == onset)
        .expect("on time, the onset window warns");
    assert!(!first.late);

    // The onset window's events arrive after those of 13:00-14:00.
    let (held, mut rest): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|(_, e)| e.time.0 >= onset && e.time.0 < onset + HOUR);
    let at = rest
        .iter()
        .position(|(_, e)| e.time.0 >= onset + 4 * HOUR)
        .unwrap();
    let n_held: u64 = held.iter().map(|(_, e)| u64::from(e.count)).sum();
    rest.splice(at..at, held);
    let (alerts, late_count, late_windows) = run(&rest);
    assert_eq!(late_count, n_held, "every held event is counted as late");
    assert!(late_windows >= 1);
    let late = alerts
        .iter()
        .find(|a| a.port == 1025 && a.window_start.0 == onset)
        .expect("the late window is re-evaluated and warns");
    assert!(late.late, "marked late");
    assert_eq!(late.events, first.events, "merged: all the window's events");
    assert_eq!(late.sources, first.sources);
}
