//! Helpers shared by the pipeline's tests (and its example).

use scanwatch_detect::Alert;
use scanwatch_event::Event;
use scanwatch_pipeline::{sensor_key, Output, Pipeline, PipelineConfig};

pub const HOUR: i64 = 3_600_000;

/// The golden seed-surge network and the start of its surge's first window
/// (tcp/1025, 3 days and 10 hours in).
pub fn seed_surge() -> (scanwatch_simulate::Scenario, i64) {
    let sc = scanwatch_simulate::golden_cases()
        .into_iter()
        .find(|c| c.name == "seed-surge")
        .unwrap();
    let onset = sc.start.0 + (3 * 24 + 10) * HOUR;
    (sc, onset)
}

/// The warnings of one `analyze`-like run (hourly windows, two days of history)
/// over a golden scenario's events, named by their sensors.
pub fn run(sc: &scanwatch_simulate::Scenario, events: &[(u32, Event)]) -> Vec<Alert> {
    let mut p = Pipeline::new(PipelineConfig::new(HOUR, 2 * 24 * HOUR));
    p.set_emit_windows(false);
    let mut alerts = Vec::new();
    let mut keep = |o: Output| {
        if let Output::Alert(a) = o {
            alerts.push(*a);
        }
    };
    for (s, e) in events {
        p.push(sensor_key(&sc.sensor_name(*s)), e);
        p.drain(&mut keep);
    }
    p.finish(&mut keep);
    alerts
}
