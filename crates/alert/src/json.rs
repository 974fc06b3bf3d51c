//! The JSON Lines schema of `analyze --json` (and, later, of the server's API). Field
//! names are a stable contract, documented in `docs/json-schema.md`.

use std::net::IpAddr;

use scanwatch_aggregate::CellSummary;
use scanwatch_detect::{Alert, Baseline};
use scanwatch_event::Timestamp;
use scanwatch_pipeline::Report;
use serde::Serialize;

/// Rounds to 3 decimals so output is stable and readable.
fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[derive(Debug, Serialize, PartialEq)]
pub struct SourceJson {
    pub ip: IpAddr,
    pub events: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct BaselineJson {
    pub events: f64,
    pub sources: f64,
    pub sensors: f64,
    /// Windows the baseline was computed over.
    pub windows: usize,
}

impl From<&Baseline> for BaselineJson {
    fn from(b: &Baseline) -> Self {
        BaselineJson {
            events: r3(b.events.median),
            sources: r3(b.sources.median),
            sensors: r3(b.sensors.median),
            windows: b.windows,
        }
    }
}

/// Evidence of a trend warning.
#[derive(Debug, Serialize, PartialEq)]
pub struct TrendJson {
    pub recent_sources: f64,
    pub before_sources: f64,
    pub windows: usize,
}

/// One `"type":"alert"` line.
#[derive(Debug, Serialize, PartialEq)]
pub struct AlertJson {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `surge` (one window far above baseline) or `trend` (a sustained rise).
    pub alert_kind: &'static str,
    pub protocol: String,
    pub port: u16,
    pub service: &'static str,
    pub window_start: String,
    pub window_end: String,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
    pub active_sensors: u64,
    pub baseline: BaselineJson,
    pub score: f64,
    pub severity: &'static str,
    pub z_sources: f64,
    pub z_events: f64,
    pub times_normal: f64,
    pub top_sensor_share: f64,
    pub episode_start: String,
    pub update: bool,
    pub top_sources: Vec<SourceJson>,
    /// Set for trend warnings, `null` for surges.
    pub trend: Option<TrendJson>,
    pub summary: String,
    /// What the port is, what may explain the surge, what to block, who is exposed
    /// (docs/context.md); absent when no context was loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<scanwatch_context::AlertContext>,
}

fn rfc(t: Timestamp) -> String {
    t.to_rfc3339()
}

fn sources(v: &[(IpAddr, u64)]) -> Vec<SourceJson> {
    v.iter()
        .map(|&(ip, events)| SourceJson { ip, events })
        .collect()
}

pub fn alert_json(a: &Alert) -> AlertJson {
    AlertJson {
        kind: "alert",
        alert_kind: a.kind.name(),
        protocol: a.proto.name().into_owned(),
        port: a.port,
        service: scanwatch_context::service_name(a.proto, a.port),
        window_start: rfc(a.window_start),
        window_end: rfc(a.window_end),
        events: a.events,
        sources: a.sources,
        sensors: a.sensors,
        targets: a.targets,
        active_sensors: a.active_sensors,
        baseline: (&a.baseline).into(),
        score: r3(a.score),
        severity: a.severity.name(),
        z_sources: r3(a.z_sources),
        z_events: r3(a.z_events),
        times_normal: r3(a.times_normal()),
        top_sensor_share: r3(a.top_sensor_share),
        episode_start: rfc(a.episode_start),
        update: a.is_update,
        top_sources: sources(&a.top_sources),
        trend: a.trend.map(|t| TrendJson {
            recent_sources: r3(t.recent_sources),
            before_sources: r3(t.before_sources),
            windows: t.span_windows,
        }),
        summary: crate::summary(a),
        context: None,
    }
}

/// One `"type":"window"` line: one (window, protocol, port) cell.
#[derive(Debug, Serialize, PartialEq)]
pub struct WindowJson {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub protocol: String,
    pub port: u16,
    pub window_start: String,
    pub window_end: String,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
    /// Whether the distinct counts are exact (false: HyperLogLog estimates).
    pub exact: bool,
    pub top_sources: Vec<SourceJson>,
}

pub fn window_json(start: Timestamp, end: Timestamp, c: &CellSummary) -> WindowJson {
    WindowJson {
        kind: "window",
        protocol: c.proto.name().into_owned(),
        port: c.port,
        window_start: rfc(start),
        window_end: rfc(end),
        events: c.events,
        sources: c.sources,
        sensors: c.sensors,
        targets: c.targets,
        exact: c.exact,
        top_sources: sources(&c.top_sources),
    }
}

/// The closing `"type":"summary"` line.
#[derive(Debug, Serialize, PartialEq)]
pub struct SummaryJson {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub files: usize,
    pub lines: u64,
    pub events: u64,
    /// Events counted towards a port (unsolicited inbound TCP SYN and UDP).
    pub port_events: u64,
    pub icmp_events: u64,
    pub parse_errors: u64,
    pub late_events: u64,
    pub windows: usize,
    pub sensors: usize,
    pub alerts: usize,
    /// Port events from known benign scanners, kept out of the counts above the
    /// line (present when a benign list was loaded and matched).
    #[serde(skip_serializing_if = "is_zero")]
    pub benign_events: u64,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub benign_by_label: std::collections::BTreeMap<String, u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub fn summary_json(r: &Report, stats: &crate::RunStats) -> SummaryJson {
    SummaryJson {
        kind: "summary",
        files: stats.files,
        lines: stats.lines,
        events: r.events,
        port_events: r.port_events,
        icmp_events: r.icmp_events,
        parse_errors: stats.parse_errors,
        late_events: r.late_events,
        windows: r.windows,
        sensors: r.sensors.len(),
        alerts: r.alerts.len(),
        benign_events: r.benign_events,
        benign_by_label: r.benign_by_label.clone(),
    }
}
