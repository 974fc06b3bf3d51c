//! The JSON Lines schema of `analyze --json` (and, later, of the server's API). Field
//! names are a stable contract, documented in `docs/json-schema.md`.

use std::net::IpAddr;

use scanwatch_aggregate::CellSummary;
use scanwatch_context::{AlertContext, ContextData};
use scanwatch_detect::report::Report;
use scanwatch_detect::Alert;
use scanwatch_event::Timestamp;
use serde::Serialize;

use crate::warning::{
    AdvisoryJson, ExposedJson, MitigationJson, Platform, SensorCountJson, ServiceJson, SourceJson,
    SweepJson, TrendJson, TrimmedJson, Warning, WarningType,
};

/// Rounds to 3 decimals so output is stable and readable.
pub(crate) fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn rfc(t: Timestamp) -> String {
    t.to_rfc3339()
}

fn sources(v: &[(IpAddr, u64)]) -> Vec<SourceJson> {
    v.iter()
        .map(|&(ip, events)| SourceJson { ip, events })
        .collect()
}

/// The JSON of a warning with its context (port facts, explanations, mitigations,
/// exposed assets) from `ctx`.
/// The warning's JSON; `sensor_name` names the sensors of its top-sensors list.
pub fn alert_json(
    a: &Alert,
    ctx: &ContextData,
    sensor_name: &dyn Fn(scanwatch_aggregate::SensorKey) -> String,
) -> Warning {
    let c = if a.sweep.is_some() {
        ctx.enrich_sweep(a.proto, a.port)
    } else {
        ctx.enrich(a.proto, a.port, a.episode_start, a.window_end)
    };
    let headline = crate::summary(a);
    let summary = narrative(&headline, &c);
    let m = &c.assessment.mitigation;
    let mut mitigations = Vec::new();
    if !m.block.is_empty() {
        for (platform, text) in [
            (Platform::Nftables, &m.rules.nftables),
            (Platform::Iptables, &m.rules.iptables),
            (Platform::Pf, &m.rules.pf),
            (Platform::Windows, &m.rules.windows),
        ] {
            mitigations.push(MitigationJson {
                platform,
                rule: text.clone(),
            });
        }
    }
    for r in &m.required_actions {
        mitigations.push(MitigationJson {
            platform: Platform::KevRequiredAction,
            rule: r.clone(),
        });
    }
    Warning {
        kind: WarningType::Alert,
        alert_kind: a.kind,
        protocol: a.proto.name().into_owned(),
        port: a.port,
        service: match &c.port {
            Some(p) => ServiceJson {
                name: p.name.clone(),
                notes: p.note.clone(),
                source: p.source.clone(),
            },
            None => ServiceJson {
                name: "-".into(),
                notes: String::new(),
                source: String::new(),
            },
        },
        window_start: a.window_start,
        window_end: a.window_end,
        events: a.events,
        sources: a.sources,
        sensors: a.sensors,
        targets: a.targets,
        trimmed: TrimmedJson {
            events: a.trimmed.events,
            sources: a.trimmed.sources,
            sensors: a.trimmed.sensors,
            left_out: a.trimmed_sensors.iter().map(|k| sensor_name(*k)).collect(),
        },
        active_sensors: a.active_sensors,
        baseline: (&a.baseline).into(),
        score: r3(a.score),
        severity: a.severity,
        network_index: r3(a.network_index),
        z_sources: r3(a.z_sources),
        z_events: r3(a.z_events),
        times_normal: r3(a.times_normal()),
        top_sensor_share: r3(a.top_sensor_share),
        episode_start: a.episode_start,
        update: a.is_update,
        late: a.late,
        revision: a.revision,
        late_by_s: a.late_by_ms.map(|ms| ms / 1000),
        withdrawn: false,
        top_sources: sources(&a.top_sources),
        uncorroborated_sources: sources(&a.uncorroborated_sources),
        top_sensors: a
            .top_sensors
            .iter()
            .map(|(k, n)| SensorCountJson {
                sensor: sensor_name(*k),
                events: *n,
                share: r3(*n as f64 / a.events.max(1) as f64),
            })
            .collect(),
        trend: a.trend.map(|t| TrendJson {
            recent_sources: r3(t.recent_sources),
            before_sources: r3(t.before_sources),
            windows: t.span_windows,
        }),
        sweep: a.sweep.as_ref().map(SweepJson::from),
        headline,
        summary,
        confidence: c.assessment.confidence,
        verified: c.assessment.verified,
        assessment: c.assessment.statement.clone(),
        priority: c.assessment.priority,
        priority_reason: c.assessment.priority_reason.clone(),
        follows: None,
        followed_by: Vec::new(),
        advisories: c
            .assessment
            .candidates
            .iter()
            .map(|k| AdvisoryJson {
                id: k.id.clone(),
                title: k.title.clone(),
                published: k.published.clone(),
                days_before_surge: k.days_before_surge,
                kev: k.kev.clone(),
                exploits: k.exploits.clone(),
                exploits_at_surge: k.exploits_at_surge,
                match_strength: k.match_strength,
                match_reason: k.match_reason.clone(),
                reasons: k.score_parts.clone(),
                score: r3(k.score),
                cvss: k.cvss,
                ids: k.ids.clone(),
                fix: k.fix.clone(),
                exploit_dates: k.exploit_dates.clone(),
                next_patch_day: k.next_patch_day.clone(),
            })
            .collect(),
        mitigations,
        block: m.block.clone(),
        ids_alerts_on_port: c.assessment.ids_alerts_on_port,
        exposed_assets: c
            .exposed
            .iter()
            .enumerate()
            .map(|(i, e)| ExposedJson {
                host: e.host.clone(),
                address: e.address,
                zone: e.zone.clone(),
                reasons: e.reasons.clone(),
                priority: i + 1,
                score: e.score,
            })
            .collect(),
        exposed_total: c.exposed_total,
    }
}

/// The narrative of a warning: the numbers, what the port is, the assessment,
/// the leading explanation, what to block and the most exposed assets.
pub fn narrative(headline: &str, c: &AlertContext) -> String {
    let mut s = headline.to_string();
    if let Some(p) = c.port.as_ref().filter(|p| !p.note.is_empty()) {
        s.push_str(&format!(". Port: {} — {}", p.name, p.note));
    }
    let a = &c.assessment;
    s.push_str(&format!(". Assessment: {}", a.statement));
    s.push_str(&format!(". Priority: {}", a.priority_reason));
    if let Some(k) = a.candidates.first() {
        // The exploits with their dates, oldest first (at most eight).
        let dated: Vec<String> = k
            .exploit_dates
            .iter()
            .take(8)
            .map(|e| format!("{} {}", e.id, e.published.as_deref().unwrap_or("undated")))
            .collect();
        s.push_str(&format!(
            ". Leading explanation: {} ({}){}, {}{}{}",
            k.id,
            k.title,
            k.published
                .as_deref()
                .map_or(String::new(), |p| format!(", published {p}")),
            scanwatch_context::explain::exploits_phrase(k.exploits.len(), k.exploits_at_surge),
            if dated.is_empty() {
                String::new()
            } else {
                format!(" ({})", dated.join(", "))
            },
            if k.kev.is_some() { ", in CISA KEV" } else { "" }
        ));
        s.push_str(&format!(". Fix: {}", k.fix.statement));
        if let Some(p) = &k.next_patch_day {
            s.push_str(&format!(
                "; next scheduled {}: {} ({} days after the surge began)",
                p.name, p.date, p.days_after_surge
            ));
        }
        if let Some(w) = k.fix.workarounds.first() {
            s.push_str(&format!(". Workaround: {w}"));
        }
    }
    if !a.mitigation.block.is_empty() {
        let b: Vec<String> = a.mitigation.block.iter().map(|b| b.label()).collect();
        s.push_str(&format!(
            ". Block new inbound connections to {}",
            b.join(", ")
        ));
    }
    if !c.exposed.is_empty() {
        let e: Vec<String> = c
            .exposed
            .iter()
            .take(3)
            .map(|e| format!("{} ({})", e.host, e.reasons.join(", ")))
            .collect();
        s.push_str(&format!(
            ". Most exposed of your {} matching assets: {}",
            c.exposed_total,
            e.join("; ")
        ));
    }
    s
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
    /// Sources of the window's sweeps that reached the port: set aside, not in
    /// `sources` (absent when none).
    #[serde(skip_serializing_if = "is_zero")]
    pub swept_sources: u64,
    /// Their events here, not in `events`.
    #[serde(skip_serializing_if = "is_zero")]
    pub swept_events: u64,
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
        swept_sources: c.swept_sources,
        swept_events: c.swept_events,
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
