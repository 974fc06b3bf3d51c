//! What may explain a surge: advisories that match the port, ranked by a documented
//! score; how sure we are (`suspected`, `likely`, `confirmed`); and what to block.
//!
//! Score of a candidate (docs/context.md has the reasoning):
//!
//! | component | points |
//! |---|---|
//! | port match: explicit (Exploit-DB port) / service (product → ports) / text | 3 / 2 / 1 |
//! | published 0–30 days before the surge (or during it) / ≤90 / ≤365 days / older | 3 / 2 / 1 / 0 |
//! | published more than a day after the surge's last window | not a candidate |
//! | public exploit (Exploit-DB) by the surge's last day, plus 0.5 per further one up to +1 | 2 (+1) |
//! | listed in CISA KEV (exploited in the wild) | 2 |
//! | IDS alerts naming the CVE on the surging port during the surge, corroborated | 5 |
//! | CVSS base score ≥ 9 | 0.5 |
//!
//! IDS alerts are *corroborated* when at least `confirm_min_sensors` sensors sent
//! them, or a trusted sensor did (the operator's own `--ids` files count as
//! trusted): one sensor's token cannot make a warning "confirmed"
//! (docs/security.md). Uncorroborated alerts are listed, with no points.
//!
//! Confidence: `confirmed` when corroborated IDS alerts name a candidate's CVE on
//! the surging port during the surge; `likely` when a candidate was published at most
//! `recent_days` before the surge (or during it) and has a public exploit from
//! before the surge's end or a KEV listing; otherwise `suspected`. Anything short of `confirmed` says "not verified".

use std::collections::{BTreeMap, BTreeSet};

use scanwatch_event::{Protocol, Timestamp};
use serde::{Deserialize, Serialize};

use crate::advisory::{
    port_matches, Advisory, AdvisorySource, MatchStrength, PortMatch, RemediationCategory,
};
use crate::ids::IdsHit;
use crate::mitigate::{self, BlockTarget, Rules};

const DAY_MS: i64 = 86_400_000;

/// Tuning of the explanation step.
#[derive(Clone, Debug, PartialEq)]
pub struct ExplainConfig {
    /// An advisory at most this many days older than the surge counts as recent.
    pub recent_days: i64,
    /// Candidates kept per warning.
    pub max_candidates: usize,
    /// Sensors whose IDS alerts must name a CVE before it confirms (default 2).
    pub confirm_min_sensors: usize,
    /// Sensors whose IDS alerts confirm on their own (`admin sensor set-trust`).
    pub trusted_sensors: BTreeSet<String>,
    /// Vendors' scheduled patch days (built-in table, plus the data directory's).
    pub patch_days: crate::patchday::PatchDays,
}

impl Default for ExplainConfig {
    fn default() -> Self {
        ExplainConfig {
            recent_days: 30,
            max_candidates: 5,
            confirm_min_sensors: 2,
            trusted_sensors: BTreeSet::new(),
            patch_days: crate::patchday::PatchDays::builtin(),
        }
    }
}

/// The surge to explain: port and the event-time span of its windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Surge {
    pub proto: Protocol,
    pub port: u16,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Advisories grouped by CVE (NVD entry, KEV entry and the exploits naming it),
/// with their port matches computed once.
#[derive(Clone, Debug, Default)]
pub struct Intel {
    groups: Vec<Group>,
}

#[derive(Clone, Debug, Default)]
struct Group {
    key: String,
    nvd: Option<Advisory>,
    kev: Option<Advisory>,
    exploits: Vec<Advisory>,
    /// Vendors' CSAF advisories naming the CVE.
    csaf: Vec<Advisory>,
    matches: Vec<PortMatch>,
}

impl Intel {
    pub fn new(advisories: &[Advisory]) -> Intel {
        let mut by_key: BTreeMap<String, Group> = BTreeMap::new();
        for a in advisories {
            let keys: Vec<String> = match a.source {
                AdvisorySource::Nvd | AdvisorySource::Kev | AdvisorySource::Csaf => {
                    vec![a.id.clone()]
                }
                AdvisorySource::ExploitDb if a.cves.is_empty() => vec![a.id.clone()],
                AdvisorySource::ExploitDb => a.cves.clone(),
            };
            let matches = port_matches(a);
            for k in keys {
                let g = by_key.entry(k.clone()).or_insert_with(|| Group {
                    key: k,
                    ..Group::default()
                });
                match a.source {
                    AdvisorySource::Nvd => g.nvd = Some(a.clone()),
                    AdvisorySource::Kev => g.kev = Some(a.clone()),
                    AdvisorySource::Csaf => {
                        if !g.csaf.contains(a) {
                            g.csaf.push(a.clone());
                        }
                    }
                    AdvisorySource::ExploitDb => {
                        if !g.exploits.iter().any(|e| e.id == a.id) {
                            g.exploits.push(a.clone());
                        }
                    }
                }
                for m in &matches {
                    if !g.matches.contains(m) {
                        g.matches.push(m.clone());
                    }
                }
            }
        }
        Intel {
            groups: by_key.into_values().collect(),
        }
    }

    /// Number of advisory groups (CVEs and exploits without a CVE).
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// KEV facts of a candidate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
// Read back from stored warnings: a field added later reads as its default.
#[serde(default)]
pub struct KevFacts {
    pub date_added: Option<String>,
    pub required_action: Option<String>,
    pub due_date: Option<String>,
    pub known_ransomware: bool,
}

/// IDS alerts that name a candidate's CVE on the surging port.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
// Read back from stored warnings: a field added later reads as its default.
#[serde(default)]
pub struct IdsEvidence {
    pub alerts: u64,
    pub sources: u64,
    /// Sensors that sent them (the operator's own files count as one).
    pub sensors: u64,
    /// Whether they may confirm: enough sensors, or a trusted one.
    pub corroborated: bool,
    pub signatures: Vec<String>,
}

/// Whether a vendor fix existed when the surge came, as far as the imported data
/// tells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum FixStatus {
    /// A vendor fix existed by the surge's last day (a CSAF `vendor_fix` dated by
    /// then, or an NVD reference tagged `Patch`).
    Available,
    /// The vendor said there was none (CSAF `none_available`, `fix_planned`,
    /// `no_fix_planned`), or its fix came only after the surge.
    NoneAtSurge,
    /// An NVD record without a `Patch` reference and no vendor CSAF.
    NotReferenced,
    /// Neither an NVD record nor a vendor CSAF advisory was imported.
    #[default]
    Unknown,
}

impl FixStatus {
    /// `available`, `none_at_surge`, `not_referenced` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            FixStatus::Available => "available",
            FixStatus::NoneAtSurge => "none_at_surge",
            FixStatus::NotReferenced => "not_referenced",
            FixStatus::Unknown => "unknown",
        }
    }

    /// No fix the data knows of existed at the surge.
    pub fn unfixed(self) -> bool {
        self != FixStatus::Available
    }
}

/// A fix that came after the surge.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
// Read back from stored warnings: a field added later reads as its default.
#[serde(default)]
pub struct LaterFix {
    /// The vendor's text, e.g. "Security update MS07-029 (KB935966)".
    pub details: String,
    pub advisory: String,
    pub url: Option<String>,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub days_after_surge: i64,
}

/// Whether the imported data references a fix or a workaround.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
// Read back from stored warnings: a field added later reads as its default.
#[serde(default)]
pub struct FixFacts {
    pub status: FixStatus,
    /// The fixes available at the surge: NVD references tagged `Patch`, and the
    /// vendor fixes of CSAF advisories dated by the surge's last day (empty: none).
    pub patches: Vec<String>,
    /// A vendor fix released after the surge (CSAF), the earliest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_later: Option<LaterFix>,
    /// Workarounds: the vendors' CSAF workarounds and mitigations, NVD references
    /// tagged `Mitigation`, and KEV's required action.
    pub workarounds: Vec<String>,
    /// One sentence, saying only what the imported data supports.
    pub statement: String,
}

/// How urgent acting on a warning is: the surge, what explains it, and whether a
/// fix existed (docs/context.md, "Priority").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Priority {
    /// Nothing known and exploited explains the surge: watch it.
    #[default]
    Routine,
    /// A known flaw with public exploits (or exploited in the wild) likely explains
    /// it, and a vendor fix exists: patch and block.
    High,
    /// The worst case: the flaw behind the surge is exploited and no vendor fix
    /// existed when the surge came: block now, apply the workarounds.
    Urgent,
}

impl Priority {
    pub fn name(self) -> &'static str {
        match self {
            Priority::Routine => "routine",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

/// One public exploit and when it was published (Exploit-DB).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
// Read back from stored warnings: a field added later reads as its default.
#[serde(default)]
pub struct ExploitDate {
    pub id: String,
    pub published: Option<String>,
    /// Published after the surge's last day: it cannot have driven the surge
    /// (it still matters for what to patch now).
    pub after_surge: bool,
}

/// "5 public exploits", or, when some came later than the surge, "3 public
/// exploits by the surge (2 published later)" / "no public exploit by the surge
/// (2 published later)". `at_surge` counts those published by the surge's last day
/// or undated.
pub fn exploits_phrase(total: usize, at_surge: usize) -> String {
    let later = total.saturating_sub(at_surge);
    let s = |n: usize| if n == 1 { "" } else { "s" };
    match (at_surge, later) {
        (n, 0) => format!("{n} public exploit{}", s(n)),
        (0, l) => format!("no public exploit by the surge ({l} published later)"),
        (n, l) => format!(
            "{n} public exploit{} by the surge ({l} published later)",
            s(n)
        ),
    }
}

/// The vendor's next scheduled patch day after the surge began.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
// Read back from stored warnings: a field added later reads as its default.
#[serde(default)]
pub struct PatchDayFacts {
    pub vendor: String,
    /// E.g. "Microsoft patch day (Update Tuesday)".
    pub name: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub days_after_surge: i64,
    /// Where the schedule is published.
    pub source: String,
}

/// One possible explanation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    /// The CVE id, or `EDB-N` for an exploit without one.
    pub id: String,
    pub title: String,
    pub published: Option<String>,
    /// Days from publication to the surge's start (negative: published later).
    pub days_before_surge: Option<i64>,
    pub match_strength: MatchStrength,
    pub match_reason: String,
    /// Public exploits, `EDB-N: title`.
    pub exploits: Vec<String>,
    /// How many of them were public by the surge's last day (or are undated): only
    /// these score, and only these make an explanation `likely`.
    pub exploits_at_surge: usize,
    pub kev: Option<KevFacts>,
    pub cvss: Option<f32>,
    pub ids: Option<IdsEvidence>,
    /// Whether a fix or a workaround is referenced in the imported data.
    pub fix: FixFacts,
    /// Its public exploits with their dates, oldest first.
    pub exploit_dates: Vec<ExploitDate>,
    /// The vendor's next scheduled patch day after the surge began (vendors in the
    /// patch-day table only).
    pub next_patch_day: Option<PatchDayFacts>,
    pub score: f64,
    /// Each score component, e.g. `explicit port match +3`.
    pub score_parts: Vec<String>,
    #[serde(skip)]
    matches: Vec<PortMatch>,
}

impl Candidate {
    /// Every port range the candidate is linked to (for exposure and mitigation).
    pub fn port_matches(&self) -> &[PortMatch] {
        &self.matches
    }
}

/// How sure scanwatch is about what the surge is.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Confidence {
    #[default]
    Suspected,
    Likely,
    Confirmed,
}

impl Confidence {
    pub fn parse(s: &str) -> Option<Confidence> {
        [
            Confidence::Suspected,
            Confidence::Likely,
            Confidence::Confirmed,
        ]
        .into_iter()
        .find(|c| c.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Confidence::Suspected => "suspected",
            Confidence::Likely => "likely",
            Confidence::Confirmed => "confirmed",
        }
    }
}

/// What to do about a surge.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Mitigation {
    pub block: Vec<BlockTarget>,
    pub rules: Rules,
    /// CISA KEV required actions of the candidates that have one.
    pub required_actions: Vec<String>,
}

/// The explanation of one surge.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assessment {
    pub confidence: Confidence,
    pub verified: bool,
    /// One sentence: the confidence and why, saying "not verified" unless confirmed.
    pub statement: String,
    pub priority: Priority,
    /// The priority and why, in one sentence.
    pub priority_reason: String,
    pub candidates: Vec<Candidate>,
    /// IDS alerts on the surging port during the surge (any signature).
    pub ids_alerts_on_port: u64,
    pub mitigation: Mitigation,
}

fn day_of(date: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(date.get(..10)?, "%Y-%m-%d").ok()?;
    Some(
        d.and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis(),
    )
}

fn strength_points(s: MatchStrength) -> (f64, &'static str) {
    match s {
        MatchStrength::Explicit => (3.0, "explicit port match"),
        MatchStrength::Service => (2.0, "service match"),
        MatchStrength::Text => (1.0, "description match"),
    }
}

fn covers(m: &PortMatch, proto: Protocol, port: u16) -> bool {
    m.proto.is_none_or(|p| p == proto) && m.first <= port && port <= m.last
}

fn strongest(ms: &[PortMatch], proto: Protocol, port: u16) -> Option<&PortMatch> {
    ms.iter()
        .filter(|m| covers(m, proto, port))
        .min_by_key(|m| (m.strength, m.last - m.first))
}

/// Explains one surge from the advisories and the IDS alerts at hand.
pub fn assess(surge: &Surge, intel: &Intel, ids: &[IdsHit], cfg: &ExplainConfig) -> Assessment {
    let on_port: Vec<&IdsHit> = ids
        .iter()
        .filter(|h| {
            h.proto == surge.proto
                && h.dst_port == Some(surge.port)
                && h.time >= surge.start
                && h.time < surge.end
        })
        .collect();
    let mut cands: Vec<Candidate> = intel
        .groups
        .iter()
        .filter_map(|g| candidate(g, surge, &on_port, cfg))
        .collect();
    cands.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    cands.truncate(cfg.max_candidates);

    let confirmed = cands
        .iter()
        .find(|c| c.ids.as_ref().is_some_and(|i| i.corroborated));
    let recent_exploited = cands.iter().find(|c| {
        c.days_before_surge
            .is_some_and(|d| d <= cfg.recent_days && d >= -((surge.end.0 - surge.start.0) / DAY_MS))
            && (c.exploits_at_surge > 0 || c.kev.is_some())
    });
    let port = format!("{}/{}", surge.proto, surge.port);
    let (confidence, statement) = if let Some(c) = confirmed {
        let ids = c.ids.as_ref().map_or(0, |i| i.alerts);
        (
            Confidence::Confirmed,
            format!(
                "confirmed: {ids} IDS alert{} naming {} on {port} during the surge",
                if ids == 1 { "" } else { "s" },
                c.id
            ),
        )
    } else if let Some(c) = recent_exploited {
        let when = match c.days_before_surge {
            Some(d) if d > 0 => format!("published {d} day{} before the surge", plural(d)),
            _ => "published as the surge began".to_string(),
        };
        let why = if c.exploits_at_surge == 0 {
            "listed as exploited in the wild (CISA KEV)".to_string()
        } else {
            format!(
                "with {}",
                exploits_phrase(c.exploits.len(), c.exploits_at_surge)
            )
        };
        (
            Confidence::Likely,
            format!(
                "likely: {} ({}) {when}, {why}, matches {port}; not verified: no IDS alert confirms exploitation",
                c.id, c.title
            ),
        )
    } else if cands.is_empty() {
        (
            Confidence::Suspected,
            format!("suspected: a surge only, no known advisory matches {port}; not verified"),
        )
    } else {
        (
            Confidence::Suspected,
            format!(
                "suspected: a surge only; no advisory published within {} days before it with a public exploit matches {port}; not verified",
                cfg.recent_days
            ),
        )
    };
    let (priority, priority_reason) = priority(confirmed.or(recent_exploited));
    let mitigation = mitigation(surge, &cands, cfg.recent_days);
    Assessment {
        confidence,
        verified: confidence == Confidence::Confirmed,
        statement,
        priority,
        priority_reason,
        candidates: cands,
        ids_alerts_on_port: on_port.len() as u64,
        mitigation,
    }
}

/// The priority of a warning from the candidate behind a `likely` or `confirmed`
/// assessment (none: `routine`): `urgent` when it is exploited (public exploits
/// by the surge, a KEV listing, or IDS alerts confirming it) and no vendor fix is
/// known to have existed when the surge came; `high` otherwise.
fn priority(lead: Option<&Candidate>) -> (Priority, String) {
    let Some(c) = lead else {
        return (
            Priority::Routine,
            "routine: no known exploited flaw explains the surge".to_string(),
        );
    };
    let exploited = if c.ids.as_ref().is_some_and(|i| i.corroborated) {
        Some("IDS alerts confirm exploitation".to_string())
    } else if c.exploits_at_surge > 0 {
        Some(exploits_phrase(c.exploits.len(), c.exploits_at_surge))
    } else if c.kev.is_some() {
        Some("exploited in the wild (CISA KEV)".to_string())
    } else {
        None
    };
    let unfixed = match c.fix.status {
        FixStatus::NoneAtSurge => Some("no vendor fix existed when the surge came"),
        FixStatus::NotReferenced => Some("no vendor fix is referenced in the imported data"),
        FixStatus::Available | FixStatus::Unknown => None,
    };
    match (exploited, unfixed) {
        (Some(e), Some(u)) => (
            Priority::Urgent,
            format!(
                "urgent: {} is exploited ({e}) and {u}: block now and apply the workarounds",
                c.id
            ),
        ),
        _ if c.fix.status == FixStatus::Available => (
            Priority::High,
            format!(
                "high: {} may explain the surge and a vendor fix exists: apply it",
                c.id
            ),
        ),
        _ => (
            Priority::High,
            format!(
                "high: {} may explain the surge; whether a vendor fix exists is not known",
                c.id
            ),
        ),
    }
}

/// The first sentence of a description, at most about 90 characters, cut at a word.
fn short(description: &str, fallback: &str) -> String {
    let d = description.trim();
    if d.is_empty() {
        return fallback.to_string();
    }
    let first = d.split(". ").next().unwrap_or(d);
    if first.chars().count() <= 90 {
        return first.trim_end_matches('.').to_string();
    }
    let mut out = String::new();
    for w in first.split_whitespace() {
        if out.chars().count() + w.chars().count() > 88 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out.push('…');
    out
}

fn plural(n: i64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn candidate(g: &Group, s: &Surge, on_port: &[&IdsHit], cfg: &ExplainConfig) -> Option<Candidate> {
    let m = strongest(&g.matches, s.proto, s.port)?.clone();
    let mut score = 0.0;
    let mut parts = Vec::new();
    let mut add = |p: f64, what: String| {
        score += p;
        parts.push(format!("{what} {}{p}", if p >= 0.0 { "+" } else { "" }));
    };
    let (p, what) = strength_points(m.strength);
    add(p, what.to_string());

    let lead = g
        .nvd
        .as_ref()
        .or(g.kev.as_ref())
        .or(g.csaf.first())
        .or(g.exploits.first())?;
    let published = g
        .nvd
        .as_ref()
        .and_then(|a| a.published.clone())
        .or_else(|| g.kev.as_ref().and_then(|a| a.published.clone()))
        .or_else(|| g.csaf.iter().filter_map(|a| a.published.clone()).min())
        .or_else(|| g.exploits.iter().filter_map(|e| e.published.clone()).min());
    let days = published
        .as_deref()
        .and_then(day_of)
        .map(|d| (s.start.0 - d).div_euclid(DAY_MS));
    if let Some(d) = days {
        // Published after the surge's last window: it cannot explain it (a replay
        // of old logs against today's advisories must not cite the future).
        if s.start.0 - d * DAY_MS >= s.end.0 + DAY_MS {
            return None;
        }
        if d <= cfg.recent_days {
            add(3.0, format!("published {d} days before the surge"));
        } else if d <= 90 {
            add(2.0, format!("published {d} days before the surge"));
        } else if d <= 365 {
            add(1.0, format!("published {d} days before the surge"));
        }
    }
    // An exploit published after the surge's last day cannot have driven it: like
    // an advisory from after the surge, it scores nothing (a replay of old logs
    // against today's Exploit-DB must not cite the future). Undated ones count.
    let after_surge = |e: &Advisory| {
        e.published
            .as_deref()
            .and_then(day_of)
            .is_some_and(|d| d >= s.end.0 + DAY_MS)
    };
    let at_surge = g.exploits.iter().filter(|e| !after_surge(e)).count();
    if at_surge > 0 {
        let extra = ((at_surge - 1) as f64 * 0.5).min(1.0);
        add(2.0 + extra, exploits_phrase(g.exploits.len(), at_surge));
    } else if !g.exploits.is_empty() {
        add(0.0, exploits_phrase(g.exploits.len(), 0));
    }
    if g.kev.is_some() {
        add(2.0, "in CISA KEV".into());
    }
    let cves: BTreeSet<&str> = if g.key.starts_with("CVE-") {
        [g.key.as_str()].into()
    } else {
        BTreeSet::new()
    };
    let hits: Vec<&&IdsHit> = on_port
        .iter()
        .filter(|h| h.cves.iter().any(|c| cves.contains(c.as_str())))
        .collect();
    let ids = (!hits.is_empty()).then(|| {
        let sources: BTreeSet<_> = hits.iter().map(|h| h.src).collect();
        let sigs: BTreeSet<String> = hits.iter().map(|h| h.signature.clone()).collect();
        let sensors: BTreeSet<Option<&str>> = hits.iter().map(|h| h.sensor.as_deref()).collect();
        let trusted = sensors
            .iter()
            .any(|s| s.is_none_or(|s| cfg.trusted_sensors.contains(s)));
        IdsEvidence {
            alerts: hits.len() as u64,
            sources: sources.len() as u64,
            sensors: sensors.len() as u64,
            corroborated: trusted || sensors.len() >= cfg.confirm_min_sensors.max(1),
            signatures: sigs.into_iter().take(5).collect(),
        }
    });
    match &ids {
        Some(i) if i.corroborated => add(5.0, "IDS alerts name it on this port".into()),
        Some(i) => add(
            0.0,
            format!(
                "IDS alerts from {} sensor{} name it (not corroborated)",
                i.sensors,
                plural(i.sensors as i64)
            ),
        ),
        None => {}
    }
    let cvss = g
        .nvd
        .as_ref()
        .and_then(|a| a.cvss)
        .or_else(|| g.exploits.iter().find_map(|e| e.cvss));
    if cvss.is_some_and(|c| c >= 9.0) {
        add(0.5, "cvss ≥ 9".into());
    }
    // The worst case: exploited, and no vendor fix the data knows of when the
    // surge came.
    let fix = fix_facts(g, s);
    if (at_surge > 0 || g.kev.is_some())
        && matches!(
            fix.status,
            FixStatus::NoneAtSurge | FixStatus::NotReferenced
        )
    {
        add(1.0, "exploited with no vendor fix at the surge".into());
    }
    // A name, not a cut description: KEV's name, else the shortest exploit title,
    // else the description cut at a word.
    let title = g
        .kev
        .as_ref()
        .map(|k| k.title.clone())
        .filter(|t| !t.is_empty())
        .or_else(|| {
            g.exploits
                .iter()
                .map(|e| e.title.clone())
                .filter(|t| !t.is_empty())
                .min_by_key(|t| (t.len(), t.clone()))
        })
        .unwrap_or_else(|| short(&lead.description, &lead.title));
    let mut exploits: Vec<&Advisory> = g.exploits.iter().collect();
    exploits.sort_by(|a, b| a.id.cmp(&b.id));
    Some(Candidate {
        id: g.key.clone(),
        title,
        published,
        days_before_surge: days,
        match_strength: m.strength,
        match_reason: m.reason.clone(),
        exploits: exploits
            .iter()
            .map(|e| format!("{}: {}", e.id, e.title))
            .collect(),
        exploits_at_surge: at_surge,
        kev: g.kev.as_ref().map(|k| KevFacts {
            date_added: k.published.clone(),
            required_action: k.required_action.clone(),
            due_date: k.due_date.clone(),
            known_ransomware: k.known_ransomware,
        }),
        cvss,
        ids,
        fix,
        exploit_dates: {
            let mut v: Vec<ExploitDate> = exploits
                .iter()
                .map(|e| ExploitDate {
                    id: e.id.clone(),
                    published: e.published.clone(),
                    after_surge: after_surge(e),
                })
                .collect();
            v.sort_by(|a, b| a.published.cmp(&b.published).then(a.id.cmp(&b.id)));
            v
        },
        next_patch_day: next_patch_day(g, s, &cfg.patch_days),
        score,
        score_parts: parts,
        matches: g.matches.clone(),
    })
}

/// What the imported data says of a fix when the surge came: the vendors' CSAF
/// remediations (fixes with their dates, "none available", workarounds), NVD
/// references tagged `Patch` or `Mitigation`, and KEV's required action. A fix
/// released after the surge's last day did not exist for it: it is named as a
/// later fix.
fn fix_facts(g: &Group, s: &Surge) -> FixFacts {
    let day = |d: &Option<String>| d.as_deref().and_then(day_of);
    let later = |d: &Option<String>| day(d).is_some_and(|d| d >= s.end.0 + DAY_MS);
    let rems: Vec<&crate::advisory::Remediation> =
        g.csaf.iter().flat_map(|a| a.remediations.iter()).collect();
    let nvd_refs = g.nvd.iter().flat_map(|a| a.references.iter());
    let mut patches: Vec<String> = rems
        .iter()
        .filter(|r| r.category.is_fix() && !later(&r.date))
        .map(|r| fix_text(r))
        .collect();
    patches.extend(
        nvd_refs
            .clone()
            .filter(|r| r.tagged("Patch"))
            .map(|r| r.url.clone()),
    );
    let fixed_later = rems
        .iter()
        .filter(|r| r.category.is_fix() && later(&r.date))
        .min_by_key(|r| r.date.clone())
        .and_then(|r| {
            let date = r.date.clone()?;
            let start = chrono::DateTime::from_timestamp_millis(s.start.0)?.date_naive();
            let d = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").ok()?;
            Some(LaterFix {
                details: r.details.clone(),
                advisory: r.advisory.clone(),
                url: r.url.clone(),
                date,
                days_after_surge: (d - start).num_days(),
            })
        });
    // The vendor's last word by the surge that no fix was available.
    let no_fix = rems
        .iter()
        .filter(|r| r.category.is_no_fix() && !later(&r.date))
        .max_by_key(|r| r.date.clone());
    let mut workarounds: Vec<String> = rems
        .iter()
        .filter(|r| {
            matches!(
                r.category,
                RemediationCategory::Workaround | RemediationCategory::Mitigation
            )
        })
        .map(|r| format!("{} ({})", r.details.trim_end_matches('.'), r.advisory))
        .collect();
    workarounds.extend(
        nvd_refs
            .filter(|r| r.tagged("Mitigation"))
            .map(|r| r.url.clone()),
    );
    if let Some(a) = g.kev.as_ref().and_then(|k| k.required_action.clone()) {
        workarounds.push(format!("CISA KEV required action: {a}"));
    }
    let advisory = g
        .nvd
        .iter()
        .flat_map(|a| a.references.iter())
        .find(|r| r.tagged("Vendor Advisory"))
        .map(|r| r.url.clone());
    let later_text = fixed_later.as_ref().map(|f| {
        format!(
            "; a fix came later: {} ({}, {}, {} days after the surge began)",
            f.details.trim_end_matches('.'),
            f.advisory,
            f.date,
            f.days_after_surge
        )
    });
    let (status, statement) = if let Some(p) = patches.first() {
        (
            FixStatus::Available,
            format!("a vendor fix is referenced: {p}"),
        )
    } else if no_fix.is_some() || fixed_later.is_some() {
        let said = no_fix.map_or(String::new(), |r| {
            format!(
                " ({}{}: {})",
                r.advisory,
                r.date
                    .as_deref()
                    .map_or(String::new(), |d| format!(", {d}")),
                r.details.trim_end_matches('.')
            )
        });
        (
            FixStatus::NoneAtSurge,
            format!(
                "no vendor fix when the surge came{said}{}",
                later_text.unwrap_or_default()
            ),
        )
    } else {
        match (g.nvd.is_some(), g.csaf.first(), advisory) {
            (true, _, Some(a)) => (
                FixStatus::NotReferenced,
                format!("no vendor fix referenced in the imported NVD data (vendor advisory: {a})"),
            ),
            (true, _, None) => (
                FixStatus::NotReferenced,
                "no vendor fix referenced in the imported NVD data".to_string(),
            ),
            (false, Some(c), _) => (
                FixStatus::NotReferenced,
                format!(
                    "the vendor's advisory names no fix ({})",
                    c.remediations
                        .first()
                        .map_or(c.title.as_str(), |r| r.advisory.as_str())
                ),
            ),
            (false, None, _) => (
                FixStatus::Unknown,
                "no NVD record or vendor advisory imported: whether a fix exists is not known"
                    .to_string(),
            ),
        }
    };
    FixFacts {
        status,
        patches,
        fixed_later,
        workarounds,
        statement,
    }
}

/// A CSAF fix as one line: its text, where it comes from and its date.
fn fix_text(r: &crate::advisory::Remediation) -> String {
    let mut t = format!("{} ({}", r.details.trim_end_matches('.'), r.advisory);
    if let Some(d) = &r.date {
        t.push_str(&format!(", {d}"));
    }
    t.push(')');
    if let Some(u) = &r.url {
        t.push_str(&format!(" {u}"));
    }
    t
}

/// The vendor's next scheduled patch day after the surge's first day, when the
/// vendor (KEV `vendorProject`, else the NVD CPE vendor) is in the table.
fn next_patch_day(
    g: &Group,
    s: &Surge,
    table: &crate::patchday::PatchDays,
) -> Option<PatchDayFacts> {
    let vendor = g
        .kev
        .as_ref()
        .and_then(|k| k.vendor.clone())
        .or_else(|| g.nvd.as_ref().and_then(|n| n.vendor.clone()))?;
    let cycle = table.cycle(&vendor)?;
    let start = chrono::DateTime::from_timestamp_millis(s.start.0)?.date_naive();
    let date = cycle.next_after(start)?;
    Some(PatchDayFacts {
        vendor,
        name: cycle.name.clone(),
        date: date.format("%Y-%m-%d").to_string(),
        days_after_surge: (date - start).num_days(),
        source: cycle.source.clone(),
    })
}

/// Block targets: the surging port; the whole dynamic range above 1024 when the
/// port is a dynamic MS-RPC port and the leading candidate reaches it through RPC;
/// and the ports public exploits name (Exploit-DB) for the leading candidate and
/// for every candidate published within `recent_days` before the surge.
fn mitigation(s: &Surge, cands: &[Candidate], recent_days: i64) -> Mitigation {
    let proto = s.proto.name().to_string();
    let mut block = vec![BlockTarget::new(
        &proto,
        s.port,
        s.port,
        format!("the surging port {}/{}", s.proto, s.port),
    )];
    let rpc_dynamic = s.proto == Protocol::Tcp
        && ((1025..=5000).contains(&s.port) || s.port >= 49152)
        && cands.first().is_some_and(|c| {
            let r = c.match_reason.to_ascii_lowercase();
            r.contains("rpc")
        });
    if rpc_dynamic {
        block.push(BlockTarget::new(
            "tcp",
            1025,
            65535,
            "dynamic MS-RPC ports: block unsolicited inbound above 1024",
        ));
    }
    // Exploit ports of the leading candidate and of the other recent ones.
    let recent = |c: &Candidate| c.days_before_surge.is_some_and(|d| d <= recent_days);
    for c in cands
        .iter()
        .enumerate()
        .filter(|(i, c)| *i == 0 || recent(c))
        .map(|(_, c)| c)
    {
        for m in c
            .matches
            .iter()
            .filter(|m| m.strength == MatchStrength::Explicit)
        {
            let p = m.proto.map_or(proto.clone(), |p| p.name().to_string());
            block.push(BlockTarget::new(
                &p,
                m.first,
                m.last,
                format!("public exploits for {} use {p}/{}", c.id, m.first),
            ));
        }
    }
    let block = mitigate::merge(block);
    let rules = mitigate::rules(&block);
    let mut required_actions: Vec<String> = Vec::new();
    for c in cands {
        if let Some(a) = c.kev.as_ref().and_then(|k| k.required_action.clone()) {
            let a = format!("{}: {a}", c.id);
            if !required_actions.contains(&a) {
                required_actions.push(a);
            }
        }
    }
    Mitigation {
        block,
        rules,
        required_actions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advisory::{parse_exploitdb_csv, parse_kev_json, parse_nvd_json};

    fn sample_intel() -> Intel {
        Intel::new(&sample_advisories(false))
    }

    /// The NVD, KEV and Exploit-DB samples, and with `csaf` the vendor's CSAF
    /// advisory for CVE-2007-1748 (MS07-029).
    fn sample_advisories(csaf: bool) -> Vec<Advisory> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/intel/");
        let read = |f: &str| std::fs::read(format!("{dir}{f}")).unwrap();
        let mut all = Vec::new();
        if csaf {
            all.extend(
                crate::advisory::parse_csaf_json(&read("csaf-ms07-029.json"))
                    .unwrap()
                    .advisories,
            );
        }
        all.extend(
            parse_nvd_json(&read("nvdcve-2.0-sample.json"))
                .unwrap()
                .advisories,
        );
        all.extend(
            parse_kev_json(&read("known_exploited_vulnerabilities.json"))
                .unwrap()
                .advisories,
        );
        all.extend(
            parse_exploitdb_csv(&read("files_exploits.csv"))
                .unwrap()
                .advisories,
        );
        all
    }

    fn at(date: &str) -> Timestamp {
        Timestamp(day_of(date).unwrap())
    }

    fn surge(proto: Protocol, port: u16, start: &str, end: &str) -> Surge {
        Surge {
            proto,
            port,
            start: at(start),
            end: at(end),
        }
    }

    #[test]
    fn seed_case_is_likely_dns_rpc_and_blocks_above_1024_and_smb() {
        let intel = sample_intel();
        let s = surge(Protocol::Tcp, 1025, "2007-04-19", "2007-04-20");
        let a = assess(&s, &intel, &[], &ExplainConfig::default());
        assert_eq!(a.confidence, Confidence::Likely, "{}", a.statement);
        assert!(!a.verified);
        assert!(a.statement.contains("not verified"), "{}", a.statement);
        let top = &a.candidates[0];
        assert_eq!(top.id, "CVE-2007-1748");
        assert_eq!(top.days_before_surge, Some(6));
        assert!(top.exploits.len() >= 5, "{:?}", top.exploits);
        assert!(top.match_reason.contains("RPC"), "{}", top.match_reason);
        let blocks: Vec<String> = a.mitigation.block.iter().map(|b| b.label()).collect();
        assert!(blocks.contains(&"tcp/1025-65535".to_string()), "{blocks:?}");
        assert!(blocks.contains(&"tcp/445".to_string()), "{blocks:?}");
        assert!(blocks.contains(&"tcp/139".to_string()), "{blocks:?}");
        assert!(a
            .mitigation
            .rules
            .nftables
            .contains("tcp dport 1025-65535 ct state new"));
        // Ranked by score, best first, each with its parts.
        for w in a.candidates.windows(2) {
            assert!(w[0].score >= w[1].score);
        }
        assert!(top.score_parts.iter().any(|p| p.contains("public exploit")));
    }

    #[test]
    fn the_same_surge_years_later_is_only_suspected() {
        let intel = sample_intel();
        let s = surge(Protocol::Tcp, 1025, "2026-11-23", "2026-11-24");
        let a = assess(&s, &intel, &[], &ExplainConfig::default());
        assert_eq!(a.confidence, Confidence::Suspected, "{}", a.statement);
        assert!(a.statement.contains("not verified"));
        assert_eq!(a.candidates[0].id, "CVE-2007-1748", "still the best match");
    }

    #[test]
    fn ids_alerts_naming_the_cve_confirm() {
        let intel = sample_intel();
        let s = surge(Protocol::Tcp, 445, "2017-05-12", "2017-05-14");
        let hit = |cve: &str, port: u16| IdsHit {
            time: at("2017-05-13"),
            proto: Protocol::Tcp,
            src: "192.0.2.7".parse().unwrap(),
            dst: "198.51.100.9".parse().unwrap(),
            dst_port: Some(port),
            rule: "1:2024218:1".into(),
            signature: format!("ET EXPLOIT Possible ETERNALBLUE MS17-010 {cve}"),
            cves: vec![cve.to_string()],
            sensor: None,
        };
        // An alert on another port, or naming another CVE, confirms nothing.
        let a = assess(
            &s,
            &intel,
            &[hit("CVE-2017-0144", 139), hit("CVE-1999-0001", 445)],
            &ExplainConfig::default(),
        );
        assert_ne!(a.confidence, Confidence::Confirmed);
        assert_eq!(a.ids_alerts_on_port, 1);
        let a = assess(
            &s,
            &intel,
            &[hit("CVE-2017-0144", 445)],
            &ExplainConfig::default(),
        );
        assert_eq!(a.confidence, Confidence::Confirmed, "{}", a.statement);
        assert!(a.verified);
        assert_eq!(a.candidates[0].id, "CVE-2017-0144");
        assert_eq!(a.candidates[0].ids.as_ref().unwrap().alerts, 1);
        assert!(a
            .mitigation
            .required_actions
            .iter()
            .any(|r| r.starts_with("CVE-2017-0144: ")));
    }

    #[test]
    fn ids_alerts_confirm_only_when_corroborated() {
        let intel = sample_intel();
        let s = surge(Protocol::Tcp, 445, "2017-05-12", "2017-05-14");
        let hit = |sensor: Option<&str>| IdsHit {
            time: at("2017-05-13"),
            proto: Protocol::Tcp,
            src: "192.0.2.7".parse().unwrap(),
            dst: "198.51.100.9".parse().unwrap(),
            dst_port: Some(445),
            rule: "1:2024218:1".into(),
            signature: "ET EXPLOIT ETERNALBLUE CVE-2017-0144".into(),
            cves: vec!["CVE-2017-0144".into()],
            sensor: sensor.map(String::from),
        };
        let trusted = ExplainConfig {
            trusted_sensors: ["s1".to_string()].into(),
            ..ExplainConfig::default()
        };
        let three = ExplainConfig {
            confirm_min_sensors: 3,
            ..ExplainConfig::default()
        };
        let default = ExplainConfig::default();
        // (hits, config, confirmed and +5)
        let cases: Vec<(Vec<IdsHit>, &ExplainConfig, bool)> = vec![
            (vec![hit(Some("s1"))], &default, false),
            (vec![hit(Some("s1")), hit(Some("s1"))], &default, false),
            (vec![hit(Some("s1")), hit(Some("s2"))], &default, true),
            (vec![hit(Some("s1")), hit(Some("s2"))], &three, false),
            (vec![hit(Some("s1"))], &trusted, true),
            (vec![hit(Some("s2"))], &trusted, false),
            (vec![hit(None)], &default, true),
        ];
        for (i, (hits, cfg, confirmed)) in cases.iter().enumerate() {
            let a = assess(&s, &intel, hits, cfg);
            assert_eq!(
                a.confidence == Confidence::Confirmed,
                *confirmed,
                "case {i}: {}",
                a.statement
            );
            let c = a
                .candidates
                .iter()
                .find(|c| c.id == "CVE-2017-0144")
                .unwrap();
            let ids = c.ids.as_ref().unwrap();
            assert_eq!(ids.corroborated, *confirmed, "case {i}");
            assert_eq!(
                c.score_parts.iter().any(|p| p.ends_with("+5")),
                *confirmed,
                "case {i}: {:?}",
                c.score_parts
            );
        }
    }

    /// What the imported data says of a fix, the next patch day and the exploits'
    /// dates, per candidate (real NVD, KEV and Exploit-DB samples).
    #[test]
    fn fix_patch_day_and_exploit_dates_say_only_what_the_data_supports() {
        let intel = sample_intel();
        // (surge port, start, candidate, fix starts with, next patch day)
        type Case<'a> = (u16, &'a str, &'a str, &'a str, Option<(&'a str, i64)>);
        let cases: [Case; 4] = [
            // The 2007 DNS RPC case: the bulletin link is not tagged `Patch` in the
            // sample, so no fix; Microsoft's next patch day after 2007-04-19.
            (1025, "2007-04-19", "CVE-2007-1748", "no vendor fix referenced", Some(("2007-05-08", 19))),
            // BlueKeep: NVD references a patch.
            (3389, "2019-05-20", "CVE-2019-0708", "a vendor fix is referenced: https://portal.msrc.microsoft.com", Some(("2019-06-11", 22))),
            // Apache is not in the patch-day table: no day is invented.
            // A vendor advisory is not a fix; it is named for the analyst to follow.
            (80, "2021-10-06", "CVE-2021-41773", "no vendor fix referenced in the imported NVD data (vendor advisory: https://httpd.apache.org", None),
            // Across a year's end.
            (445, "2017-12-20", "CVE-2017-0144", "no vendor fix referenced", Some(("2018-01-09", 20))),
        ];
        for (port, start, id, fix, day) in cases {
            let s = surge(Protocol::Tcp, port, start, start);
            let a = assess(&s, &intel, &[], &ExplainConfig::default());
            let Some(c) = a.candidates.iter().find(|c| c.id == id) else {
                panic!(
                    "{id} is not a candidate on {port}: {:?}",
                    a.candidates.iter().map(|c| &c.id).collect::<Vec<_>>()
                );
            };
            assert!(
                c.fix.statement.starts_with(fix),
                "{id}: {}",
                c.fix.statement
            );
            assert_eq!(
                c.next_patch_day
                    .as_ref()
                    .map(|p| (p.date.as_str(), p.days_after_surge)),
                day,
                "{id}"
            );
            let dates: Vec<&Option<String>> =
                c.exploit_dates.iter().map(|e| &e.published).collect();
            assert!(dates.windows(2).all(|w| w[0] <= w[1]), "{id}: oldest first");
            assert_eq!(c.exploit_dates.len(), c.exploits.len(), "{id}");
        }
    }

    #[test]
    fn fix_status_and_priority_follow_the_vendor_data() {
        let with = Intel::new(&sample_advisories(true));
        let without = sample_intel();
        // (intel, port, surge start, candidate, status, fix starts with, later fix,
        //  workarounds, priority)
        type Case<'a> = (
            &'a Intel,
            u16,
            &'a str,
            &'a str,
            FixStatus,
            &'a str,
            Option<(&'a str, i64)>,
            usize,
            Priority,
        );
        let cases: [Case; 7] = [
            // The seed: Microsoft said no update was available (advisory of
            // 2007-04-12); MS07-029 came 19 days after the surge began.
            (&with, 1025, "2007-04-19", "CVE-2007-1748", FixStatus::NoneAtSurge,
             "no vendor fix when the surge came (MS07-029: Vulnerability in Windows DNS RPC Interface Could Allow Remote Code Execution, 2007-04-12: No security update is available yet",
             Some(("2007-05-08", 19)), 3, Priority::Urgent),
            // The same flaw surging two days after MS07-029: the update existed.
            (&with, 1025, "2007-05-10", "CVE-2007-1748", FixStatus::Available,
             "a vendor fix is referenced: Security update MS07-029 (KB935966) (MS07-029: Vulnerability in Windows DNS RPC Interface Could Allow Remote Code Execution, 2007-05-08) https://learn.microsoft.com",
             None, 3, Priority::High),
            // Without the vendor's CSAF: NVD references no patch, the worst case too.
            (&without, 1025, "2007-04-19", "CVE-2007-1748", FixStatus::NotReferenced,
             "no vendor fix referenced in the imported NVD data", None, 0, Priority::Urgent),
            // BlueKeep: NVD references a patch, KEV lists it: high, not urgent.
            (&without, 3389, "2019-05-20", "CVE-2019-0708", FixStatus::Available,
             "a vendor fix is referenced: https://portal.msrc.microsoft.com", None, 1, Priority::High),
            // EternalBlue three weeks after its CVE: in KEV (exploited in the wild),
            // no patch reference in the sample; KEV's required action is a workaround.
            (&without, 445, "2017-04-05", "CVE-2017-0144", FixStatus::NotReferenced,
             "no vendor fix referenced", None, 1, Priority::Urgent),
            // MS03-026 (RPC DCOM) known only from Exploit-DB: no NVD record, no
            // vendor advisory: whether a fix exists is not known, nothing invented.
            (&without, 135, "2003-09-20", "CVE-2003-0352", FixStatus::Unknown,
             "no NVD record or vendor advisory imported: whether a fix exists is not known", None, 0, Priority::High),
            // Apache path traversal on 80: old news by 2023 (not recent: routine).
            (&without, 80, "2023-10-06", "CVE-2021-41773", FixStatus::NotReferenced,
             "no vendor fix referenced in the imported NVD data (vendor advisory: https://httpd.apache.org", None, 0, Priority::Routine),
        ];
        for (intel, port, start, id, status, fix, later, workarounds, prio) in cases {
            let s = surge(Protocol::Tcp, port, start, start);
            let a = assess(&s, intel, &[], &ExplainConfig::default());
            let c = a
                .candidates
                .iter()
                .find(|c| c.id == id)
                .unwrap_or_else(|| panic!("{id} on {port}"));
            assert_eq!(c.fix.status, status, "{id} {start}: {}", c.fix.statement);
            assert!(
                c.fix.statement.starts_with(fix),
                "{id} {start}: {}",
                c.fix.statement
            );
            assert_eq!(
                c.fix
                    .fixed_later
                    .as_ref()
                    .map(|f| (f.date.as_str(), f.days_after_surge)),
                later,
                "{id} {start}"
            );
            assert_eq!(
                c.fix.workarounds.len(),
                workarounds,
                "{id} {start}: {:?}",
                c.fix.workarounds
            );
            assert_eq!(a.priority, prio, "{id} {start}: {}", a.priority_reason);
            assert!(
                a.priority_reason.starts_with(prio.name()),
                "{}",
                a.priority_reason
            );
            let bonus = c
                .score_parts
                .iter()
                .any(|p| p == "exploited with no vendor fix at the surge +1");
            assert_eq!(
                bonus,
                prio == Priority::Urgent,
                "{id} {start}: {:?}",
                c.score_parts
            );
        }
        // The seed's workarounds are the vendor's, first the registry change.
        let a = assess(
            &surge(Protocol::Tcp, 1025, "2007-04-19", "2007-04-19"),
            &with,
            &[],
            &ExplainConfig::default(),
        );
        let w = &a.candidates[0].fix.workarounds;
        assert!(
            w[0].starts_with(
                "Disable remote management over RPC for the DNS server: set the registry value"
            ),
            "{w:?}"
        );
        assert!(
            a.priority_reason
                .contains("no vendor fix existed when the surge came"),
            "{}",
            a.priority_reason
        );
        // No advisory at all: routine.
        let a = assess(
            &surge(Protocol::Tcp, 31337, "2007-04-19", "2007-04-19"),
            &with,
            &[],
            &ExplainConfig::default(),
        );
        assert_eq!(a.priority, Priority::Routine);
    }

    #[test]
    fn only_exploits_public_by_the_surge_score() {
        let intel = sample_intel();
        // The 2007 DNS RPC case on the real Exploit-DB sample: three exploits of
        // April 2007 and two Metasploit modules of 2010.
        let s = surge(Protocol::Tcp, 1025, "2007-04-19", "2007-04-20");
        let a = assess(&s, &intel, &[], &ExplainConfig::default());
        let c = a
            .candidates
            .iter()
            .find(|c| c.id == "CVE-2007-1748")
            .unwrap();
        assert_eq!(c.exploits.len(), 5);
        assert_eq!(c.exploits_at_surge, 3);
        let later: Vec<&str> = c
            .exploit_dates
            .iter()
            .filter(|e| e.after_surge)
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(later, ["EDB-16748", "EDB-16366"]);
        assert!(
            c.score_parts
                .iter()
                .any(|p| p == "3 public exploits by the surge (2 published later) +3"),
            "{:?}",
            c.score_parts
        );
        assert_eq!(a.confidence, Confidence::Likely);
        assert!(
            a.statement.contains("3 public exploits by the surge"),
            "{}",
            a.statement
        );
        // The same flaw seen in 2011: all five were public, and all score.
        let s = surge(Protocol::Tcp, 1025, "2011-05-02", "2011-05-03");
        let a = assess(&s, &intel, &[], &ExplainConfig::default());
        let c = a
            .candidates
            .iter()
            .find(|c| c.id == "CVE-2007-1748")
            .unwrap();
        assert_eq!(c.exploits_at_surge, 5);
        assert!(c.exploit_dates.iter().all(|e| !e.after_surge));
        assert!(
            c.score_parts.iter().any(|p| p == "5 public exploits +3"),
            "{:?}",
            c.score_parts
        );
    }

    #[test]
    fn exploit_phrases() {
        for (total, at, want) in [
            (1, 1, "1 public exploit"),
            (5, 5, "5 public exploits"),
            (5, 3, "3 public exploits by the surge (2 published later)"),
            (2, 1, "1 public exploit by the surge (1 published later)"),
            (2, 0, "no public exploit by the surge (2 published later)"),
        ] {
            assert_eq!(exploits_phrase(total, at), want);
        }
    }

    #[test]
    fn no_intel_still_gives_rules_for_the_port() {
        let s = surge(Protocol::Udp, 5060, "2026-11-23", "2026-11-24");
        let a = assess(&s, &Intel::default(), &[], &ExplainConfig::default());
        assert_eq!(a.confidence, Confidence::Suspected);
        assert!(a.candidates.is_empty());
        assert_eq!(a.mitigation.block.len(), 1);
        assert!(a
            .mitigation
            .rules
            .nftables
            .contains("udp dport 5060 ct state new"));
    }
}
