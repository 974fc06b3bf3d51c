//! The JSON Lines schema of `analyze --json` (and, later, of the server's API). Field
//! names are a stable contract, documented in `docs/json-schema.md`.

use std::net::IpAddr;

use scanwatch_aggregate::CellSummary;
use scanwatch_context::{AlertContext, ContextData};
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

/// One of the sensors that saw the most events of a warning's window.
#[derive(Debug, Serialize, PartialEq)]
pub struct SensorCountJson {
    pub sensor: String,
    pub events: u64,
    /// Its share of the window's events on the port (3 decimals): a warning
    /// carried by a few sensors shows here (docs/security.md).
    pub share: f64,
}

/// The counts that were scored: without the busiest sensors (docs/security.md).
#[derive(Debug, Serialize, PartialEq)]
pub struct TrimmedJson {
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    /// The sensors left out (the busiest `trim_sensors`).
    pub left_out: Vec<String>,
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

/// One sweeper of a sweep warning.
#[derive(Debug, Serialize, PartialEq)]
pub struct SweepSourceJson {
    pub ip: IpAddr,
    /// Its distinct ports in the window, without those only one sensor reported
    /// beyond its peers (docs/detection.md, "Sweeps").
    pub ports: u64,
    pub events: u64,
    /// Sensors that saw it (at least this many).
    pub sensors: u64,
}

/// A port a sweep reached, with how many of its sources reached it.
#[derive(Debug, Serialize, PartialEq)]
pub struct SweepPortJson {
    pub protocol: String,
    pub port: u16,
    pub sources: u64,
}

/// The campaign of a sweep warning.
#[derive(Debug, Serialize, PartialEq)]
pub struct SweepJson {
    /// The network its sources share, e.g. `203.0.113.0/24`.
    pub prefix: String,
    pub sources: u64,
    /// Distinct (protocol, port)s its sources reached in the window.
    pub ports: u64,
    /// True when a source reached more ports than are kept (`ports` is a lower
    /// bound).
    pub ports_capped: bool,
    pub sensors: u64,
    pub events: u64,
    /// Its sources, most ports first (up to 10).
    pub top_sources: Vec<SweepSourceJson>,
    /// The ports most of its sources reached (up to 10).
    pub busiest_ports: Vec<SweepPortJson>,
}

impl From<&scanwatch_aggregate::Sweep> for SweepJson {
    fn from(s: &scanwatch_aggregate::Sweep) -> Self {
        SweepJson {
            prefix: format!("{}/{}", s.prefix, s.prefix_len),
            sources: s.sources,
            ports: s.ports,
            ports_capped: s.capped,
            sensors: s.sensors,
            events: s.events,
            top_sources: s
                .top_sources
                .iter()
                .map(|t| SweepSourceJson {
                    ip: t.ip,
                    ports: t.ports,
                    events: t.events,
                    sensors: t.sensors,
                })
                .collect(),
            busiest_ports: s
                .busiest_ports
                .iter()
                .map(|(p, port, n)| SweepPortJson {
                    protocol: p.name().into_owned(),
                    port: *port,
                    sources: *n,
                })
                .collect(),
        }
    }
}

/// One `"type":"alert"` line.
#[derive(Debug, Serialize, PartialEq)]
pub struct AlertJson {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `surge` (one window far above baseline), `trend` (a sustained rise) or
    /// `sweep` (sources of one network probing many ports: see `sweep`).
    pub alert_kind: &'static str,
    pub protocol: String,
    pub port: u16,
    /// What the port is: name, analyst notes and where the notes come from.
    pub service: ServiceJson,
    pub window_start: String,
    pub window_end: String,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
    /// The counts the warning was scored on.
    pub trimmed: TrimmedJson,
    pub active_sensors: u64,
    pub baseline: BaselineJson,
    pub score: f64,
    pub severity: &'static str,
    /// The network's common rise the window was read against (absent when 1;
    /// `baseline` is already scaled by it: docs/detection.md, "A changing
    /// network").
    #[serde(skip_serializing_if = "is_one")]
    pub network_index: f64,
    pub z_sources: f64,
    pub z_events: f64,
    pub times_normal: f64,
    pub top_sensor_share: f64,
    pub episode_start: String,
    pub update: bool,
    /// Present and true when raised by re-evaluating a window with late events.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    /// How often the window's counts were revised by late events (absent: never).
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub revision: u32,
    /// For a warning first raised by late events: how far (seconds of event time)
    /// the centre had already closed windows past this window's end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_by_s: Option<i64>,
    /// Present and true when a revision of the window's counts (late events from
    /// other sensors) means this warning no longer holds (`docs/time.md`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
    /// The heaviest sources at least `blocklist_min_sensors` sensors (or a trusted
    /// one) saw: what the blocklist takes.
    pub top_sources: Vec<SourceJson>,
    /// The heaviest sources fewer sensors saw: shown, never blocked.
    pub uncorroborated_sources: Vec<SourceJson>,
    /// The sensors that saw the most of the window's events (the breadth evidence).
    pub top_sensors: Vec<SensorCountJson>,
    /// Set for trend warnings, `null` for surges.
    pub trend: Option<TrendJson>,
    /// Set for sweep warnings (absent otherwise): the campaign. `protocol`/`port`
    /// are then its busiest port and the counts are the campaign's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepJson>,
    /// The numbers in one sentence.
    pub headline: String,
    /// The full narrative: the numbers, what the port is, the assessment, what to
    /// block and who is most exposed.
    pub summary: String,
    /// `suspected`, `likely` or `confirmed` (docs/context.md).
    pub confidence: &'static str,
    /// True only when IDS alerts confirm exploitation (`confirmed`).
    pub verified: bool,
    /// The confidence and why, in one sentence ("not verified" unless confirmed).
    pub assessment: String,
    /// `routine`, `high` or `urgent`: how urgent acting is (docs/context.md,
    /// "Priority"); `urgent` is an exploited flaw with no vendor fix at the surge.
    pub priority: &'static str,
    /// The priority and why, in one sentence.
    pub priority_reason: String,
    /// Set when the warning's surge follows an earlier surge on another port that
    /// the same advisory leads (e.g. the TCP/445 wave after the TCP/1025 surge of
    /// the same flaw): that surge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows: Option<crate::lineage::FollowOn>,
    /// Candidate explanations, best first.
    pub advisories: Vec<AdvisoryJson>,
    /// Block rules per platform (nftables, iptables, pf, windows) and the KEV
    /// required actions (`kev-required-action`).
    pub mitigations: Vec<MitigationJson>,
    /// The port ranges the rules block, with why.
    pub block: Vec<scanwatch_context::mitigate::BlockTarget>,
    /// IDS alerts seen on the port during the surge (any signature).
    pub ids_alerts_on_port: u64,
    /// The user's most exposed assets, most exposed first (at most 10).
    pub exposed_assets: Vec<ExposedJson>,
    pub exposed_total: usize,
}

/// What the port is.
#[derive(Debug, Serialize, PartialEq)]
pub struct ServiceJson {
    pub name: String,
    pub notes: String,
    pub source: String,
}

/// One candidate explanation.
#[derive(Debug, Serialize, PartialEq)]
pub struct AdvisoryJson {
    pub id: String,
    pub title: String,
    pub published: Option<String>,
    pub days_before_surge: Option<i64>,
    /// CISA KEV facts when listed, else `null`.
    pub kev: Option<scanwatch_context::explain::KevFacts>,
    /// Public exploits, `EDB-N: title`.
    pub exploits: Vec<String>,
    /// How many were public by the surge's last day (or undated): only these score.
    pub exploits_at_surge: usize,
    /// How it matches the port (`explicit`, `service`, `text`) and why.
    pub match_strength: &'static str,
    pub match_reason: String,
    /// Each score component.
    pub reasons: Vec<String>,
    pub score: f64,
    pub cvss: Option<f32>,
    /// IDS alerts naming it on the port during the surge, else `null`.
    pub ids: Option<scanwatch_context::explain::IdsEvidence>,
    /// Whether the imported data references a fix or a workaround.
    pub fix: scanwatch_context::explain::FixFacts,
    /// Its public exploits with their dates, oldest first.
    pub exploit_dates: Vec<scanwatch_context::explain::ExploitDate>,
    /// The vendor's next scheduled patch day after the surge began, else `null`.
    pub next_patch_day: Option<scanwatch_context::explain::PatchDayFacts>,
}

/// One block rule (or required action).
#[derive(Debug, Serialize, PartialEq)]
pub struct MitigationJson {
    /// `nftables` (a complete file), `iptables`, `pf`, `windows`, or
    /// `kev-required-action`.
    pub platform: &'static str,
    pub rule: String,
}

/// One exposed asset.
#[derive(Debug, Serialize, PartialEq)]
pub struct ExposedJson {
    pub host: String,
    pub address: Option<std::net::IpAddr>,
    pub zone: Option<String>,
    pub reasons: Vec<String>,
    /// 1 = most exposed.
    pub priority: usize,
    pub score: u32,
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
) -> AlertJson {
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
            ("nftables", &m.rules.nftables),
            ("iptables", &m.rules.iptables),
            ("pf", &m.rules.pf),
            ("windows", &m.rules.windows),
        ] {
            mitigations.push(MitigationJson {
                platform,
                rule: text.clone(),
            });
        }
    }
    for r in &m.required_actions {
        mitigations.push(MitigationJson {
            platform: "kev-required-action",
            rule: r.clone(),
        });
    }
    AlertJson {
        kind: "alert",
        alert_kind: a.kind.name(),
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
        window_start: rfc(a.window_start),
        window_end: rfc(a.window_end),
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
        severity: a.severity.name(),
        network_index: r3(a.network_index),
        z_sources: r3(a.z_sources),
        z_events: r3(a.z_events),
        times_normal: r3(a.times_normal()),
        top_sensor_share: r3(a.top_sensor_share),
        episode_start: rfc(a.episode_start),
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
        confidence: c.assessment.confidence.name(),
        verified: c.assessment.verified,
        assessment: c.assessment.statement.clone(),
        priority: c.assessment.priority.name(),
        priority_reason: c.assessment.priority_reason.clone(),
        follows: None,
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
                match_strength: k.match_strength.name(),
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

fn is_one(x: &f64) -> bool {
    *x == 1.0
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

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}
