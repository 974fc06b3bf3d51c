//! What a run leaves for people to read: the last and the busiest windows with
//! their ports' baselines, and every warning. The pipeline fills it; the alert
//! stage renders it (it lives here, beside the warnings and baselines it holds, so
//! the alert stage needs nothing of the pipeline).

use std::collections::BTreeMap;

use scanwatch_aggregate::{CellSummary, ClosedWindow, SensorKey};
use scanwatch_event::Timestamp;

use crate::{Alert, Baseline};

/// One port of one window beside its baseline at that time.
#[derive(Clone, Debug, PartialEq)]
pub struct PortRow {
    pub cell: CellSummary,
    pub baseline: Baseline,
}

/// A closed window with its busiest ports and their baselines.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowReport {
    pub window: ClosedWindow,
    /// Up to `top_n` ports with the most events, most first.
    pub top: Vec<PortRow>,
}

/// What a finished run leaves for the report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub last: Option<WindowReport>,
    /// Busiest windows by port events, busiest first.
    pub busiest: Vec<WindowReport>,
    pub alerts: Vec<Alert>,
    pub sensors: BTreeMap<SensorKey, String>,
    pub windows: usize,
    pub first_window: Option<Timestamp>,
    /// All events pushed (summed counts), counted or not.
    pub events: u64,
    /// Unsolicited inbound events to a port: what the port tables count.
    pub port_events: u64,
    /// ICMP/ICMPv6 events (kept, not ports).
    pub icmp_events: u64,
    pub late_events: u64,
    /// Windows re-evaluated because late events for them arrived.
    pub late_windows: usize,
    /// Unsolicited port events from known benign scanners: counted here, kept out
    /// of the aggregates, so they never raise a warning by themselves.
    pub benign_events: u64,
    /// The same, per list label.
    pub benign_by_label: BTreeMap<String, u64>,
}

impl Report {
    pub fn sensor_name(&self, key: SensorKey) -> String {
        self.sensors
            .get(&key)
            .cloned()
            .unwrap_or_else(|| format!("{key:016x}"))
    }
}
