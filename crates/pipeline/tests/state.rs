//! A centre's pipeline saved ([`Pipeline::state`], encoded as the centre's
//! checkpoint encodes it: CBOR) and taken up by a new pipeline at any point of
//! the golden seed-surge network goes on exactly as the one that never stopped:
//! the same windows and warnings from then on.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use scanwatch_event::Event;
use scanwatch_pipeline::{sensor_key, Output, Pipeline, PipelineConfig, PipelineState};

const HOUR: i64 = 3_600_000;

fn centre_pipeline() -> Pipeline {
    let mut p = Pipeline::new_centre(PipelineConfig::new(HOUR, 2 * 24 * HOUR));
    p.set_trusted(&["sensor-3".to_string()]);
    p
}

/// Pushes `events`, closing on the watermark less an hour (as the centre's replay
/// does); returns what came out.
fn feed(p: &mut Pipeline, events: &[(u32, Event)], max: &mut i64) -> Vec<Output> {
    let mut out = Vec::new();
    for (s, e) in events {
        let name = format!("sensor-{s}");
        p.name_sensor(sensor_key(&name), &name);
        p.push(sensor_key(&name), e);
        *max = (*max).max(e.time.0);
        p.close_through(*max - HOUR, &mut |o| out.push(o));
    }
    out
}

fn through_cbor(s: &PipelineState) -> PipelineState {
    let mut bytes = Vec::new();
    ciborium::into_writer(s, &mut bytes).unwrap();
    ciborium::from_reader(bytes.as_slice()).unwrap()
}

fn encoded(p: &Pipeline) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(&p.state(), &mut bytes).unwrap();
    bytes
}

#[test]
fn a_pipeline_taken_up_from_its_state_goes_on_as_the_one_that_never_stopped() {
    let sc = scanwatch_simulate::golden_cases()
        .into_iter()
        .find(|c| c.name == "seed-surge")
        .unwrap();
    let events = sc.all_events();
    let n = events.len();
    // Cut before the history fills, in the quiet days, just before the surge, in it.
    for cut in [n / 10, n / 2, n * 3 / 4, n * 9 / 10] {
        let mut a = centre_pipeline();
        let mut max = i64::MIN;
        feed(&mut a, &events[..cut], &mut max);
        let mut b = centre_pipeline();
        b.restore(through_cbor(&a.state())).unwrap();
        assert_eq!(a.open_window_starts(), b.open_window_starts(), "cut {cut}");
        assert_eq!(a.closed_before(), b.closed_before(), "cut {cut}");
        let (mut max_a, mut max_b) = (max, max);
        let out_a = feed(&mut a, &events[cut..], &mut max_a);
        let out_b = feed(&mut b, &events[cut..], &mut max_b);
        assert_eq!(out_a.len(), out_b.len(), "cut {cut}");
        assert!(out_a == out_b, "cut {cut}: the same windows and warnings");
        assert!(
            out_a.iter().any(|o| matches!(o, Output::Window(_))),
            "cut {cut}: windows closed after the cut"
        );
        assert!(
            out_a.iter().any(|o| matches!(o, Output::Alert(_))) || cut > n * 3 / 4,
            "cut {cut}: the surge is warned after the cut"
        );
    }
}

#[test]
fn a_state_whose_window_does_not_decode_is_refused_and_changes_nothing() {
    let sc = scanwatch_simulate::golden_cases()
        .into_iter()
        .find(|c| c.name == "seed-surge")
        .unwrap();
    let events = sc.all_events();
    let mut a = centre_pipeline();
    let mut max = i64::MIN;
    feed(&mut a, &events[..events.len() / 2], &mut max);
    assert!(!a.open_window_starts().is_empty());
    // Damage the first open window's bytes inside the CBOR.
    let mut value: ciborium::Value = ciborium::from_reader(encoded(&a).as_slice()).unwrap();
    let ciborium::Value::Map(top) = &mut value else {
        panic!("a map")
    };
    let agg = &mut top
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some("aggregator"))
        .unwrap()
        .1;
    let ciborium::Value::Map(agg) = agg else {
        panic!("a map")
    };
    let open = &mut agg
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some("open"))
        .unwrap()
        .1;
    let ciborium::Value::Array(open) = open else {
        panic!("an array")
    };
    let ciborium::Value::Array(first) = &mut open[0] else {
        panic!("a pair")
    };
    first[1] = ciborium::Value::Bytes(vec![0xff, 0x00, 0x13]);
    let mut bytes = Vec::new();
    ciborium::into_writer(&value, &mut bytes).unwrap();
    let state: PipelineState = ciborium::from_reader(bytes.as_slice()).unwrap();
    let mut b = centre_pipeline();
    assert!(b.restore(state).is_err());
    assert!(b.open_window_starts().is_empty(), "nothing was taken up");
    assert_eq!(b.closed_before(), None);
}

/// A centre runs for months and a sensor chooses its events' times: what its
/// pipeline holds does not grow with either. Late events in thousands of
/// distinct closed windows leave the saved state as it was once their windows
/// are taken for revision (builds before 2026-12-07 kept a count per late
/// window, without bound, in every checkpoint), and the warnings go out, not
/// into the report (which a centre never reads).
#[test]
fn a_centres_pipeline_holds_nothing_per_late_window_or_per_warning() {
    let sc = scanwatch_simulate::golden_cases()
        .into_iter()
        .find(|c| c.name == "seed-surge")
        .unwrap();
    let events = sc.all_events();
    let mut p = centre_pipeline();
    let mut max = i64::MIN;
    let out = feed(&mut p, &events, &mut max);
    let warned = out.iter().filter(|o| matches!(o, Output::Alert(_))).count();
    assert!(warned > 0, "the surge is warned");
    let before = encoded(&p);
    // One late event in each of 5,000 hours long closed (one sensor's clock, or
    // its choice), then the windows taken for revision as the centre takes them.
    let (_, e) = &events[0];
    let key = sensor_key("sensor-1");
    for k in 1..=5_000 {
        let mut late = e.clone();
        late.time = scanwatch_event::Timestamp(e.time.0 - k * HOUR);
        assert!(!p.push(key, &late), "late");
    }
    assert_eq!(p.take_dirty().len(), 5_000);
    let after = encoded(&p);
    // Only the count of late events moves (a number in the state).
    assert!(
        after.len() <= before.len() + 16,
        "the state grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    let report = p.finish(&mut |_| {});
    assert!(
        report.alerts.is_empty(),
        "{} warnings kept in a centre's report",
        report.alerts.len()
    );
    // An `analyze` pipeline keeps them for its summary.
    let mut a = Pipeline::new(PipelineConfig::new(HOUR, 2 * 24 * HOUR));
    a.set_trusted(&["sensor-3".to_string()]);
    for (s, e) in &events {
        let name = format!("sensor-{s}");
        a.push(sensor_key(&name), e);
    }
    assert!(!a.finish(&mut |_| {}).alerts.is_empty());
}
