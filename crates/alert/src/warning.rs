//! The warning as a type: what `analyze --json` writes, what the centre stores in
//! `AlertRow.json`, serves at `/api/v1/alerts` (its OpenAPI schema is derived here,
//! feature `schema`), renders on the dashboard, exports as STIX and MISP and sends
//! to the sinks. Field names are the contract of `docs/json-schema.md`.

use std::net::IpAddr;

use scanwatch_context::advisory::mapping::MatchStrength;
use scanwatch_context::explain::{Confidence, Priority};
use scanwatch_detect::{AlertKind, Baseline, Severity};
use scanwatch_event::Timestamp;
use serde::{Deserialize, Serialize};

use crate::json::r3;

/// The `type` of a warning line: always `alert`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum WarningType {
    #[default]
    Alert,
}

/// Where a mitigation applies: a firewall dialect, or CISA KEV's required action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Platform {
    /// A complete nftables file.
    Nftables,
    Iptables,
    Pf,
    /// Windows Firewall (PowerShell).
    Windows,
    /// CISA KEV's required action for the leading explanation.
    KevRequiredAction,
}

impl Platform {
    /// The firewall dialects, in the order they are listed.
    pub const FIREWALLS: [Platform; 4] = [
        Platform::Nftables,
        Platform::Iptables,
        Platform::Pf,
        Platform::Windows,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Platform::Nftables => "nftables",
            Platform::Iptables => "iptables",
            Platform::Pf => "pf",
            Platform::Windows => "windows",
            Platform::KevRequiredAction => "kev-required-action",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A stored warning as the API answers it: the warning with its id in the store.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct StoredWarning {
    /// The warning's id in the store.
    pub id: i64,
    #[serde(flatten)]
    pub warning: Warning,
}

/// Why a stored warning could not be read.
#[derive(Debug, thiserror::Error)]
#[error("warning {id} is not readable: {source}")]
pub struct UnreadableWarning {
    pub id: i64,
    #[source]
    pub source: serde_json::Error,
}

impl Warning {
    /// Reads a warning's stored JSON (`AlertRow.json`); `id` names it in the error.
    pub fn from_stored(id: i64, json: &str) -> Result<Warning, UnreadableWarning> {
        serde_json::from_str(json).map_err(|source| UnreadableWarning { id, source })
    }

    /// Whether it names `ip` among its sources: the top sources, those too few
    /// sensors saw, or a sweep's.
    pub fn names_source(&self, ip: IpAddr) -> bool {
        self.top_sources
            .iter()
            .chain(&self.uncorroborated_sources)
            .any(|s| s.ip == ip)
            || self
                .sweep
                .as_ref()
                .is_some_and(|s| s.top_sources.iter().any(|t| t.ip == ip))
    }

    /// `TCP/1025`.
    pub fn port_label(&self) -> String {
        format!("{}/{}", self.protocol.to_uppercase(), self.port)
    }

    /// The leading explanation's id when the confidence is `likely` or better.
    pub fn leading_advisory(&self) -> Option<&str> {
        crate::lineage::leading_advisory(
            self.confidence,
            self.advisories.first().map(|a| a.id.as_str()),
        )
    }
}

/// Reads one line of `analyze --json`: its warning, `None` for the other lines
/// (`window`, `summary`), an error for a line that is not one of them.
pub fn read_warning_line(line: &str) -> Result<Option<Warning>, serde_json::Error> {
    /// Only the `type` of a line.
    #[derive(Deserialize)]
    struct Line {
        #[serde(rename = "type")]
        kind: String,
    }
    if serde_json::from_str::<Line>(line)?.kind != "alert" {
        return Ok(None);
    }
    serde_json::from_str(line).map(Some)
}

fn one() -> f64 {
    1.0
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// RFC 3339 in UTC, as `Timestamp::to_rfc3339` writes it (seconds, or milliseconds
/// when there are some).
mod rfc3339 {
    use scanwatch_event::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        scanwatch_event::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SourceJson {
    #[cfg_attr(feature = "schema", schema(value_type = String, example = "192.0.2.1"))]
    pub ip: IpAddr,
    pub events: u64,
}

/// One of the sensors that saw the most events of a warning's window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SensorCountJson {
    pub sensor: String,
    pub events: u64,
    /// Its share of the window's events on the port (3 decimals): a warning
    /// carried by a few sensors shows here (docs/security.md).
    pub share: f64,
}

/// The counts that were scored: without the busiest sensors (docs/security.md).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct TrimmedJson {
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    /// The sensors left out (the busiest `trim_sensors`).
    pub left_out: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
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
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct TrendJson {
    pub recent_sources: f64,
    pub before_sources: f64,
    pub windows: usize,
}

/// One sweeper of a sweep warning.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SweepSourceJson {
    #[cfg_attr(feature = "schema", schema(value_type = String, example = "192.0.2.1"))]
    pub ip: IpAddr,
    /// Its distinct ports in the window, without those only one sensor reported
    /// beyond its peers (docs/detection.md, "Sweeps").
    pub ports: u64,
    pub events: u64,
    /// Sensors that saw it (at least this many).
    pub sensors: u64,
}

/// A port a sweep reached, with how many of its sources reached it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SweepPortJson {
    pub protocol: String,
    pub port: u16,
    pub sources: u64,
}

/// The campaign of a sweep warning.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SweepJson {
    /// The network its sources share, e.g. `203.0.113.0/24`.
    pub prefix: String,
    pub sources: u64,
    /// Distinct (protocol, port)s its sources reached in the window.
    pub ports: u64,
    /// True when a source reached more ports than are kept: `ports` is then
    /// estimated from the sources' samples when `ports_estimated`, otherwise a
    /// lower bound.
    pub ports_capped: bool,
    /// True when `ports` is estimated from the sources' samples of their ports.
    pub ports_estimated: bool,
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
            ports_estimated: s.ports_estimated,
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

/// A warning: one `"type":"alert"` line of `analyze --json`, and the record the
/// centre stores, serves and sends (docs/json-schema.md). Every reader reads this
/// type; a field older records lack reads as its default (the fields without a
/// default are the ones every version wrote).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Warning {
    #[serde(rename = "type")]
    #[serde(default)]
    pub kind: WarningType,
    /// `surge` (one window far above baseline), `trend` (a sustained rise) or
    /// `sweep` (sources of one network probing many ports: see `sweep`).
    pub alert_kind: AlertKind,
    pub protocol: String,
    pub port: u16,
    /// What the port is: name, analyst notes and where the notes come from.
    #[serde(default)]
    pub service: ServiceJson,
    #[serde(with = "rfc3339")]
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub window_start: Timestamp,
    #[serde(with = "rfc3339")]
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub window_end: Timestamp,
    #[serde(default)]
    pub events: u64,
    #[serde(default)]
    pub sources: u64,
    #[serde(default)]
    pub sensors: u64,
    #[serde(default)]
    pub targets: u64,
    /// The counts the warning was scored on.
    #[serde(default)]
    pub trimmed: TrimmedJson,
    #[serde(default)]
    pub active_sensors: u64,
    #[serde(default)]
    pub baseline: BaselineJson,
    pub score: f64,
    pub severity: Severity,
    /// The network's common rise the window was read against (absent when 1;
    /// `baseline` is already scaled by it: docs/detection.md, "A changing
    /// network").
    #[serde(skip_serializing_if = "is_one")]
    #[serde(default = "one")]
    pub network_index: f64,
    #[serde(default)]
    pub z_sources: f64,
    #[serde(default)]
    pub z_events: f64,
    #[serde(default)]
    pub times_normal: f64,
    #[serde(default)]
    pub top_sensor_share: f64,
    #[serde(with = "rfc3339")]
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub episode_start: Timestamp,
    #[serde(default)]
    pub update: bool,
    /// Present and true when raised by re-evaluating a window with late events.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[serde(default)]
    pub late: bool,
    /// How often the window's counts were revised by late events (absent: never).
    #[serde(skip_serializing_if = "is_zero_u32")]
    #[serde(default)]
    pub revision: u32,
    /// For a warning first raised by late events: how far (seconds of event time)
    /// the centre had already closed windows past this window's end.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub late_by_s: Option<i64>,
    /// Present and true when a revision of the window's counts (late events from
    /// other sensors) means this warning no longer holds (`docs/time.md`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[serde(default)]
    pub withdrawn: bool,
    /// The heaviest sources at least `blocklist_min_sensors` sensors (or a trusted
    /// one) saw: what the blocklist takes.
    #[serde(default)]
    pub top_sources: Vec<SourceJson>,
    /// The heaviest sources fewer sensors saw: shown, never blocked.
    #[serde(default)]
    pub uncorroborated_sources: Vec<SourceJson>,
    /// The sensors that saw the most of the window's events (the breadth evidence).
    #[serde(default)]
    pub top_sensors: Vec<SensorCountJson>,
    /// Set for trend warnings, `null` for surges.
    #[serde(default)]
    pub trend: Option<TrendJson>,
    /// Set for sweep warnings (absent otherwise): the campaign. `protocol`/`port`
    /// are then its busiest port and the counts are the campaign's.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub sweep: Option<SweepJson>,
    /// The numbers in one sentence.
    pub headline: String,
    /// The full narrative: the numbers, what the port is, the assessment, what to
    /// block and who is most exposed.
    #[serde(default)]
    pub summary: String,
    /// `suspected`, `likely` or `confirmed` (docs/context.md).
    #[serde(default)]
    pub confidence: Confidence,
    /// True only when IDS alerts confirm exploitation (`confirmed`).
    #[serde(default)]
    pub verified: bool,
    /// The confidence and why, in one sentence ("not verified" unless confirmed).
    #[serde(default)]
    pub assessment: String,
    /// `routine`, `high` or `urgent`: how urgent acting is (docs/context.md,
    /// "Priority"); `urgent` is an exploited flaw with no vendor fix at the surge.
    #[serde(default)]
    pub priority: Priority,
    /// The priority and why, in one sentence.
    #[serde(default)]
    pub priority_reason: String,
    /// Set when the warning's surge follows an earlier surge on another port that
    /// the same advisory leads (e.g. the TCP/445 wave after the TCP/1025 surge of
    /// the same flaw): that surge.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub follows: Option<crate::lineage::FollowOn>,
    /// The later surges on other ports that follow this one: set only in the
    /// centre's exports (STIX, MISP), from the warning's incident.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub followed_by: Vec<crate::lineage::FollowOn>,
    /// Candidate explanations, best first.
    #[serde(default)]
    pub advisories: Vec<AdvisoryJson>,
    /// Block rules per platform (nftables, iptables, pf, windows) and the KEV
    /// required actions (`kev-required-action`).
    #[serde(default)]
    pub mitigations: Vec<MitigationJson>,
    /// The port ranges the rules block, with why.
    #[serde(default)]
    pub block: Vec<scanwatch_context::mitigate::BlockTarget>,
    /// IDS alerts seen on the port during the surge (any signature).
    #[serde(default)]
    pub ids_alerts_on_port: u64,
    /// The user's most exposed assets, most exposed first (at most 10).
    #[serde(default)]
    pub exposed_assets: Vec<ExposedJson>,
    #[serde(default)]
    pub exposed_total: usize,
}

/// What the port is.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ServiceJson {
    pub name: String,
    pub notes: String,
    pub source: String,
}

/// One candidate explanation.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
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
    pub match_strength: MatchStrength,
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
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct MitigationJson {
    /// `nftables` (a complete file), `iptables`, `pf`, `windows`, or
    /// `kev-required-action`.
    pub platform: Platform,
    pub rule: String,
}

/// One exposed asset.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ExposedJson {
    pub host: String,
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
    pub address: Option<std::net::IpAddr>,
    pub zone: Option<String>,
    pub reasons: Vec<String>,
    /// 1 = most exposed.
    pub priority: usize,
    pub score: u32,
}
