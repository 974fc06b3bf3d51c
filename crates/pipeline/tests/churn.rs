//! A changing network hides no attack: the golden sensor-churn network (ten busier
//! sensors joining on day 9, five leaving on day 15, weekly cycle), with two real
//! surges while the new sensors' traffic is still far above every baseline — one
//! on a busy port (TCP/445), one on a silent one (TCP/1025). The network index
//! absorbs the common rise (nothing else warns), and both surges warn in their
//! first window.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_detect::{Alert, AlertKind};
use scanwatch_event::Protocol;
use scanwatch_pipeline::{sensor_key, Output, Pipeline, PipelineConfig};
use scanwatch_simulate::Surge;

const HOUR: i64 = 3_600_000;

fn run(sc: &scanwatch_simulate::Scenario) -> Vec<Alert> {
    let mut p = Pipeline::new(PipelineConfig::new(HOUR, 7 * 24 * HOUR));
    p.set_emit_windows(false);
    let mut alerts = Vec::new();
    let mut keep = |o: Output| {
        if let Output::Alert(a) = o {
            alerts.push(*a);
        }
    };
    for (s, e) in sc.all_events() {
        p.push(sensor_key(&sc.sensor_name(s)), &e);
        p.drain(&mut keep);
    }
    p.finish(&mut keep);
    alerts
}

#[test]
fn surges_warn_on_time_while_the_network_grows() {
    let mut sc = scanwatch_simulate::golden_cases()
        .into_iter()
        .find(|c| c.name == "sensor-churn")
        .unwrap();
    // Day 10, 10:00 and 14:00: a day after the ten busier sensors joined.
    let surge = |port, start_hour, peak| Surge {
        proto: Protocol::Tcp,
        port,
        start_hour,
        ramp_hours: 0,
        hold_hours: 4,
        decay_hours: 0,
        peak_sources_per_hour: peak,
        events_per_source: 2.0,
        coverage: 1.0,
        sensors_per_source: 2.5,
    };
    sc.surges.push(surge(445, 10 * 24 + 10, 120.0));
    sc.surges.push(surge(1025, 10 * 24 + 14, 80.0));
    let alerts = run(&sc);
    let first = |port: u16| {
        alerts
            .iter()
            .filter(|a| a.port == port && a.kind == AlertKind::Surge && !a.is_update)
            .map(|a| a.window_start.0)
            .min()
    };
    let day10 = sc.start.0 + 10 * 24 * HOUR;
    assert_eq!(first(445), Some(day10 + 10 * HOUR), "{alerts:#?}");
    assert_eq!(first(1025), Some(day10 + 14 * HOUR), "{alerts:#?}");
    assert!(
        alerts.iter().all(|a| a.port == 445 || a.port == 1025),
        "only the two surges warn: {:?}",
        alerts
            .iter()
            .map(|a| (a.port, a.window_start))
            .collect::<Vec<_>>()
    );
    // It was read against a grown network: the index was working.
    let onset = alerts
        .iter()
        .find(|a| a.port == 445 && a.window_start.0 == day10 + 10 * HOUR)
        .unwrap();
    assert!(onset.network_index > 1.5, "index {}", onset.network_index);
}
