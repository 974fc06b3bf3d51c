//! Incidents: what an analyst thinks in. The stored warnings of one surge (its
//! consecutive warning windows: one port, one kind, one episode start; or one sweep
//! campaign) are one incident, with its start, peak, phase (rising, at peak,
//! falling, over) and the state an analyst gave it (new, acknowledged, assigned,
//! resolved, false positive, with a note).
//!
//! Incidents are derived from the stored warnings each time (nothing to keep in
//! step); only the analyst's state is stored, as a context document of kind
//! [`ContextKind::IncidentState`] keyed by the incident's id, so every store backend keeps it.
//! An incident's id is the id of its first stored warning.

use std::collections::BTreeMap;

use scanwatch_alert::lineage::FollowOn;
use scanwatch_alert::Warning;
use scanwatch_event::Timestamp;
use scanwatch_store::{AlertRow, ContextItem, ContextKind, IncidentStore, StoreError};
use serde::{Deserialize, Serialize};

/// A stored warning, typed; an unreadable record is logged and left out (a record
/// the centre wrote always reads; one written behind its back may not).
pub fn read_warning(row: &AlertRow) -> Option<Warning> {
    match Warning::from_stored(row.id, &row.json) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(warning = row.id, error = %e, "stored warning left out");
            None
        }
    }
}

/// Where an incident is in its course, from its warnings and the newest data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Its last window is its peak, above the one before.
    Rising,
    /// Its last window is its peak (the first, or level with the one before).
    AtPeak,
    /// Still warning, below its peak.
    Falling,
    /// No warning for more than one window before the newest closed one.
    Over,
}

/// What an analyst made of an incident.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    #[default]
    New,
    Acknowledged,
    Assigned,
    Resolved,
    FalsePositive,
}

impl Disposition {
    pub const ALL: [Disposition; 5] = [
        Disposition::New,
        Disposition::Acknowledged,
        Disposition::Assigned,
        Disposition::Resolved,
        Disposition::FalsePositive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Disposition::New => "new",
            Disposition::Acknowledged => "acknowledged",
            Disposition::Assigned => "assigned",
            Disposition::Resolved => "resolved",
            Disposition::FalsePositive => "false_positive",
        }
    }

    pub fn parse(s: &str) -> Option<Disposition> {
        Self::ALL.into_iter().find(|d| d.name() == s)
    }
}

/// The analyst's state of an incident, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IncidentState {
    pub state: Disposition,
    /// Who it is assigned to (with `assigned`; kept with later states).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Why (required for `false_positive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who set it, and when (RFC 3339).
    pub by: String,
    pub at: String,
}

/// Longest note and assignee kept.
pub const MAX_NOTE: usize = 2000;

/// A change of state as asked: checked without I/O.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StateChange {
    /// `new`, `acknowledged`, `assigned`, `resolved` or `false_positive`.
    #[cfg_attr(feature = "schema", schema(value_type = Disposition))]
    pub state: String,
    /// Who it is assigned to: needed for `assigned`.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schema(max_length = 2000, pattern = "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*$")
    )]
    pub assignee: Option<String>,
    /// Why: needed for `false_positive`.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schema(max_length = 2000, pattern = "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*$")
    )]
    pub note: Option<String>,
}

impl StateChange {
    /// The state to store, or why not.
    pub fn check(&self, by: &str, at: Timestamp) -> Result<IncidentState, String> {
        let state = Disposition::parse(&self.state).ok_or_else(|| {
            format!(
                "state {:?}: expected new, acknowledged, assigned, resolved or false_positive",
                self.state
            )
        })?;
        let clean = |s: &Option<String>, what: &str| -> Result<Option<String>, String> {
            match s.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(t) if t.chars().count() > MAX_NOTE => {
                    Err(format!("{what} longer than {MAX_NOTE} characters"))
                }
                Some(t) if t.chars().any(|c| c.is_control() && c != '\n') => {
                    Err(format!("{what} has control characters"))
                }
                Some(t) => Ok(Some(t.to_string())),
            }
        };
        let assignee = clean(&self.assignee, "assignee")?;
        let note = clean(&self.note, "note")?;
        if state == Disposition::Assigned && assignee.is_none() {
            return Err("state assigned needs an assignee".into());
        }
        if state == Disposition::FalsePositive && note.is_none() {
            return Err("state false_positive needs a note saying why".into());
        }
        Ok(IncidentState {
            state,
            assignee,
            note,
            by: by.to_string(),
            at: at.to_rfc3339(),
        })
    }
}

/// One incident.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Incident {
    /// The id of its first stored warning.
    pub id: i64,
    /// `surge`, `trend`, or `sweep NETWORK`.
    pub kind: String,
    pub protocol: String,
    pub port: u16,
    /// Start of its first window.
    pub start: String,
    /// End of its last warning window.
    pub last_end: String,
    pub windows: usize,
    pub phase: Phase,
    /// The warning of its worst window (severity, then score).
    pub peak_id: i64,
    pub peak_window_start: String,
    pub peak_severity: String,
    pub peak_score: f64,
    pub peak_sources: u64,
    pub peak_events: u64,
    pub peak_sensors: u64,
    /// Its last window's headline.
    pub headline: String,
    /// The analyst's state (`new` until someone sets one).
    pub state: IncidentState,
    /// Its warnings' ids, oldest window first.
    pub warnings: Vec<i64>,
    /// The earlier incident on another port this one follows: the same advisory
    /// leads both (docs/context.md, "Follow-on surges").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows: Option<IncidentLink>,
    /// The later incidents that follow this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub followed_by: Vec<IncidentLink>,
    /// The leading advisory of its first warning explained at least `likely`.
    #[serde(skip)]
    lead: Option<String>,
}

/// Another incident, as a link.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct IncidentLink {
    pub id: i64,
    pub protocol: String,
    pub port: u16,
    /// Its start.
    pub start: String,
    /// The advisory leading both incidents.
    pub advisory: String,
}

/// What makes warnings one incident: subject (kind), protocol, port, episode start.
type GroupKey = (String, u8, u16, String);

/// The incidents of `rows` (any order; withdrawn warnings left out), newest start
/// first, with the stored `states`. `newest_end` is the end of the newest closed
/// window (the data's clock) and `window_ms` the window length: an incident whose
/// last warning ended more than one window before it is over.
pub fn incidents(
    rows: &[AlertRow],
    states: &[ContextItem],
    newest_end: Option<Timestamp>,
    window_ms: i64,
) -> Vec<Incident> {
    let states: BTreeMap<i64, IncidentState> = states
        .iter()
        .filter_map(|c| Some((c.key.parse().ok()?, serde_json::from_str(&c.json).ok()?)))
        .collect();
    let mut groups: BTreeMap<GroupKey, Vec<(&AlertRow, Warning)>> = BTreeMap::new();
    for r in rows {
        let Some(v) = read_warning(r) else {
            continue;
        };
        if v.withdrawn {
            continue;
        }
        let episode = v.episode_start.to_rfc3339();
        groups
            .entry((r.kind.clone(), r.proto, r.port, episode))
            .or_default()
            .push((r, v));
    }
    let mut out: Vec<Incident> = groups
        .into_iter()
        .filter_map(|((kind, _, port, start), mut ws)| {
            ws.sort_by_key(|(r, _)| (r.window_start, r.id));
            let (first, _) = ws.first()?;
            let (last, last_v) = ws.last()?;
            let (peak, peak_v) = ws.iter().max_by(|a, b| {
                (a.0.severity_rank, a.1.score)
                    .partial_cmp(&(b.0.severity_rank, b.1.score))
                    .unwrap_or(std::cmp::Ordering::Equal)
                    // The earliest of equal peaks.
                    .then(b.0.window_start.cmp(&a.0.window_start))
            })?;
            let lead = ws
                .iter()
                .find_map(|(_, v)| v.leading_advisory().map(str::to_string));
            let lead = lead.filter(|_| !kind.starts_with("sweep"));
            let last_end = last_v.window_end;
            let over = newest_end.is_some_and(|n| n.0 > last_end.0 + window_ms);
            let phase = if over {
                Phase::Over
            } else if peak.id != last.id {
                Phase::Falling
            } else if ws.len() >= 2 && ws[ws.len() - 2].1.score < last_v.score {
                Phase::Rising
            } else {
                Phase::AtPeak
            };
            Some(Incident {
                id: first.id,
                kind,
                protocol: last_v.protocol.clone(),
                port,
                start,
                last_end: last_end.to_rfc3339(),
                windows: ws.len(),
                phase,
                peak_id: peak.id,
                peak_window_start: peak.window_start.to_rfc3339(),
                peak_severity: peak_v.severity.name().to_string(),
                peak_score: peak_v.score,
                peak_sources: peak_v.sources,
                peak_events: peak_v.events,
                peak_sensors: peak_v.sensors,
                headline: last_v.headline.clone(),
                state: states.get(&first.id).cloned().unwrap_or_default(),
                warnings: ws.iter().map(|(r, _)| r.id).collect(),
                follows: None,
                followed_by: Vec::new(),
                lead,
            })
        })
        .collect();
    link_follow_ons(&mut out);
    out.sort_by(|a, b| b.start.cmp(&a.start).then(a.id.cmp(&b.id)));
    out
}

/// Links each incident to the earlier one on another port it follows, in the
/// order they began (the rule of [`scanwatch_alert::lineage`]).
fn link_follow_ons(out: &mut [Incident]) {
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|&a, &b| {
        (out[a].start.as_str(), out[a].id).cmp(&(out[b].start.as_str(), out[b].id))
    });
    let mut lineage = scanwatch_alert::lineage::Lineage::new();
    for i in order {
        let Some(lead) = out[i].lead.clone() else {
            continue;
        };
        let Some(start) = scanwatch_event::parse_rfc3339(&out[i].start) else {
            continue;
        };
        let Some(f) = lineage.observe(&lead, &out[i].protocol, out[i].port, start) else {
            continue;
        };
        let Some(j) = out.iter().position(|o| {
            o.protocol.eq_ignore_ascii_case(&f.protocol)
                && o.port == f.port
                && scanwatch_event::parse_rfc3339(&o.start).map(|t| t.0)
                    == scanwatch_event::parse_rfc3339(&f.episode_start).map(|t| t.0)
        }) else {
            continue;
        };
        let link = |o: &Incident| IncidentLink {
            id: o.id,
            protocol: o.protocol.clone(),
            port: o.port,
            start: o.start.clone(),
            advisory: lead.clone(),
        };
        let (earlier, later) = (link(&out[j]), link(&out[i]));
        out[i].follows = Some(earlier);
        out[j].followed_by.push(later);
    }
}

/// The incidents of the warnings in `[from, to)`, with their states.
pub fn load(
    s: &dyn IncidentStore,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Incident>, StoreError> {
    let rows = s.alerts(from, to, 0)?;
    let states = s.context_items(ContextKind::IncidentState)?;
    let latest = s.latest_window()?;
    let window = latest.map_or(3_600_000, |(a, b)| (b.0 - a.0).max(1));
    Ok(incidents(&rows, &states, latest.map(|l| l.1), window))
}

/// How far back (event time) the ends of incidents are looked for.
pub const OVER_LOOKBACK_MS: i64 = 7 * 86_400_000;

/// The incidents of the last [`OVER_LOOKBACK_MS`] that are over (no warning for
/// more than one window before the newest closed one), each with its last warning:
/// what the notifier tells the sinks as `resolved` (once per sink and surge).
pub fn over(s: &dyn IncidentStore) -> Result<Vec<(i64, Warning)>, StoreError> {
    let Some((_, end)) = s.latest_window()? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for inc in load(
        s,
        Timestamp(end.0.saturating_sub(OVER_LOOKBACK_MS)),
        Timestamp(i64::MAX),
    )? {
        if inc.phase != Phase::Over {
            continue;
        }
        let Some(&last) = inc.warnings.last() else {
            continue;
        };
        if let Some(w) = s.alert(last)?.as_ref().and_then(read_warning) {
            out.push((last, w));
        }
    }
    Ok(out)
}

/// The follow-on links of warning `id`'s incident, as the exports carry them: the
/// earlier surge it follows and the later ones that follow it.
#[derive(Clone, Debug, Default)]
pub struct FollowOns {
    pub follows: Option<FollowOn>,
    pub followed_by: Vec<FollowOn>,
}

impl FollowOns {
    /// Of warning `id`'s incident (none when it has no incident).
    pub fn of(s: &dyn IncidentStore, id: i64) -> Result<FollowOns, StoreError> {
        let Some(inc) = containing(s, id)? else {
            return Ok(FollowOns::default());
        };
        let link = |l: &IncidentLink| FollowOn {
            protocol: l.protocol.clone(),
            port: l.port,
            episode_start: l.start.clone(),
            advisory: l.advisory.clone(),
        };
        Ok(FollowOns {
            follows: inc.follows.as_ref().map(link),
            followed_by: inc.followed_by.iter().map(link).collect(),
        })
    }

    /// Stored warning `id` and its incident's follow-on links.
    pub fn with_alert(
        s: &dyn IncidentStore,
        id: i64,
    ) -> Result<Option<(AlertRow, FollowOns)>, StoreError> {
        let Some(row) = s.alert(id)? else {
            return Ok(None);
        };
        Ok(Some((row, FollowOns::of(s, id)?)))
    }

    /// Adds them to a stored warning: `follows` when the warning has none of its
    /// own (it was raised before the earlier surge was), and `followed_by`.
    pub fn add_to(&self, w: &mut Warning) {
        if w.follows.is_none() {
            w.follows.clone_from(&self.follows);
        }
        if !self.followed_by.is_empty() {
            w.followed_by.clone_from(&self.followed_by);
        }
    }
}

/// How far before an incident's start [`containing`] looks for the incident it
/// follows (docs/context.md, "Follow-on surges").
pub const FOLLOW_ON_LOOKBACK_MS: i64 = 30 * 86_400_000;

/// The incident that holds warning `id` (any of its warnings), if any.
pub fn containing(s: &dyn IncidentStore, id: i64) -> Result<Option<Incident>, StoreError> {
    let Some(row) = s.alert(id)? else {
        return Ok(None);
    };
    // Its incident starts at or before it: its episode start (or a day before,
    // if the warning does not say); the incidents it may follow up to
    // FOLLOW_ON_LOOKBACK_MS before that.
    let from = read_warning(&row).map_or(Timestamp(row.window_start.0 - 86_400_000), |w| {
        w.episode_start
    });
    let from = Timestamp(from.0.saturating_sub(FOLLOW_ON_LOOKBACK_MS));
    Ok(load(s, from, Timestamp(i64::MAX))?
        .into_iter()
        .find(|i| i.warnings.contains(&id)))
}

/// Stores `state` for the incident holding warning `id`; the incident as it
/// stands after, or `None` when there is no such warning.
pub fn set_state(
    s: &mut dyn IncidentStore,
    id: i64,
    state: &IncidentState,
    now: Timestamp,
) -> Result<Option<Incident>, StoreError> {
    let Some(inc) = containing(s, id)? else {
        return Ok(None);
    };
    let json = serde_json::to_string(state).map_err(|e| StoreError::Encode(e.to_string()))?;
    s.put_context_items(
        ContextKind::IncidentState,
        &[ContextItem {
            key: inc.id.to_string(),
            origin: "analyst".into(),
            json,
        }],
        now,
    )?;
    containing(s, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn row(id: i64, kind: &str, port: u16, ws: i64, episode: i64, sev: u8, score: f64) -> AlertRow {
        let severity = ["info", "low", "medium", "high", "critical"][sev as usize];
        let json = serde_json::json!({
            "type": "alert", "alert_kind": kind, "protocol": "tcp", "port": port,
            "window_start": Timestamp(ws).to_rfc3339(),
            "window_end": Timestamp(ws + H).to_rfc3339(),
            "episode_start": Timestamp(episode).to_rfc3339(),
            "severity": severity,
            "score": score, "sources": 100 + id as u64, "events": 1000, "sensors": 8,
            "headline": format!("TCP/{port}: window {id}"),
        });
        AlertRow {
            id,
            kind: kind.into(),
            proto: 6,
            port,
            window_start: Timestamp(ws),
            severity_rank: sev,
            json: json.to_string(),
        }
    }

    /// `row` with an explanation: its confidence and leading advisory.
    fn explained(mut r: AlertRow, confidence: &str, lead: &str) -> AlertRow {
        let mut v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
        v["confidence"] = confidence.into();
        v["advisories"] = serde_json::json!([{"id": lead}, {"id": "CVE-1999-0001"}]);
        r.json = v.to_string();
        r
    }

    /// Only incidents whose last warning ended more than a window before the
    /// newest stored window are over, each with its last warning.
    #[test]
    fn over_incidents_come_with_their_last_warning() {
        use scanwatch_store::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let mut st = scanwatch_store::sqlite::SqliteStore::open(dir.path()).unwrap();
        assert!(over(&st).unwrap().is_empty(), "an empty store");
        // A surge on 1025 at hours 10-12 (over by hour 100) and one on 445 running
        // in the newest window (hour 99).
        let mut ids = Vec::new();
        for r in [
            row(0, "surge", 1025, 10 * H, 10 * H, 2, 2.6),
            row(0, "surge", 1025, 11 * H, 10 * H, 4, 5.1),
            row(0, "surge", 1025, 12 * H, 10 * H, 3, 3.0),
            row(0, "surge", 445, 98 * H, 98 * H, 2, 2.0),
            row(0, "surge", 445, 99 * H, 98 * H, 3, 3.5),
        ] {
            ids.push(st.put_alert(&r).unwrap());
        }
        st.put_windows(&[scanwatch_store::WindowRow {
            window_start: Timestamp(99 * H),
            window_end: Timestamp(100 * H),
            proto: 6,
            port: 445,
            events: 1,
            sources: 1,
            sensors: 1,
            targets: 1,
            top_sources_json: "[]".into(),
        }])
        .unwrap();
        let got = over(&st).unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, ids[2], "the 1025 surge's last warning");
        assert_eq!(got[0].1.port, 1025);
        assert_eq!(got[0].1.window_start, Timestamp(12 * H));
    }

    #[test]
    fn a_later_incident_led_by_the_same_advisory_on_another_port_follows() {
        let cve = "CVE-2007-1748";
        let rows = vec![
            explained(row(1, "surge", 1025, 10 * H, 10 * H, 2, 2.6), "likely", cve),
            explained(row(2, "surge", 1025, 11 * H, 10 * H, 4, 5.1), "likely", cve),
            // Two days later on 445, the same flaw: follows 1025.
            explained(row(3, "surge", 445, 58 * H, 58 * H, 2, 2.0), "likely", cve),
            // On 139 a day later: follows 1025 (the earliest), not 445.
            explained(row(4, "surge", 139, 80 * H, 80 * H, 2, 2.0), "likely", cve),
            // The same advisory only `suspected`: not led by it, no link.
            explained(
                row(5, "surge", 3389, 90 * H, 90 * H, 2, 2.0),
                "suspected",
                cve,
            ),
            // Another advisory on 22.
            explained(
                row(6, "surge", 22, 95 * H, 95 * H, 2, 2.0),
                "likely",
                "CVE-2024-6387",
            ),
        ];
        let incs = incidents(&rows, &[], Some(Timestamp(200 * H)), H);
        let by_port = |p: u16| incs.iter().find(|i| i.port == p).unwrap();
        let follows = |p: u16| by_port(p).follows.as_ref().map(|f| (f.id, f.port));
        assert_eq!(follows(1025), None);
        assert_eq!(follows(445), Some((1, 1025)));
        assert_eq!(follows(139), Some((1, 1025)));
        assert_eq!(follows(3389), None);
        assert_eq!(follows(22), None);
        let later: Vec<(i64, u16)> = by_port(1025)
            .followed_by
            .iter()
            .map(|f| (f.id, f.port))
            .collect();
        assert_eq!(later, [(3, 445), (4, 139)]);
        assert_eq!(by_port(445).follows.as_ref().unwrap().advisory, cve);
        // The order of the rows does not matter.
        let mut reversed = rows.clone();
        reversed.reverse();
        assert_eq!(incidents(&reversed, &[], Some(Timestamp(200 * H)), H), incs);
        // Serialized: present only when set.
        let j = serde_json::to_value(by_port(445)).unwrap();
        assert_eq!(j["follows"]["port"], 1025);
        assert!(j.get("followed_by").is_none());
        assert!(j.get("lead").is_none());
    }

    #[test]
    fn one_incident_per_surge_with_its_peak_and_phase() {
        // Table: (rows, newest closed window end) → (incidents, first's phase).
        let surge = vec![
            row(1, "surge", 1025, 10 * H, 10 * H, 2, 2.6),
            row(2, "surge", 1025, 11 * H, 10 * H, 4, 5.1),
            row(3, "surge", 1025, 12 * H, 10 * H, 3, 3.9),
            // Another surge of the same port, days later.
            row(4, "surge", 1025, 90 * H, 90 * H, 1, 1.6),
            // Another port in the same hours.
            row(5, "surge", 445, 11 * H, 11 * H, 3, 3.5),
            row(6, "surge", 445, 12 * H, 11 * H, 4, 4.5),
        ];
        // (incident id, phase, windows, peak id)
        type Want = (i64, Phase, usize, i64);
        let cases: Vec<(i64, Vec<Want>)> = vec![
            // At 13:00 the 1025 surge is falling (peak 11:00), 445 rising.
            (
                13 * H,
                vec![(1, Phase::Falling, 3, 2), (5, Phase::Rising, 2, 6)],
            ),
            // Two windows later both are over.
            (15 * H, vec![(1, Phase::Over, 3, 2), (5, Phase::Over, 2, 6)]),
        ];
        for (now, want) in cases {
            let got = incidents(
                &surge[..3]
                    .iter()
                    .chain(&surge[4..])
                    .cloned()
                    .collect::<Vec<_>>(),
                &[],
                Some(Timestamp(now)),
                H,
            );
            let got: Vec<Want> = got
                .iter()
                .map(|i| (i.id, i.phase, i.windows, i.peak_id))
                .collect();
            let mut want = want;
            want.sort_by_key(|w| w.0);
            let mut got = got;
            got.sort_by_key(|g| g.0);
            assert_eq!(got, want, "at {now}");
        }
        let all = incidents(&surge, &[], Some(Timestamp(91 * H)), H);
        assert_eq!(all.len(), 3, "two surges of 1025 are two incidents");
        assert_eq!(all[0].id, 4, "newest first");
        assert_eq!(all[0].phase, Phase::AtPeak);
        let first = all.iter().find(|i| i.id == 1).unwrap();
        assert_eq!(first.peak_severity, "critical");
        assert_eq!(first.warnings, vec![1, 2, 3]);
        assert_eq!(first.state.state, Disposition::New);
    }

    #[test]
    fn withdrawn_warnings_and_states() {
        let mut w = row(2, "surge", 22, 11 * H, 10 * H, 2, 2.0);
        let mut v: serde_json::Value = serde_json::from_str(&w.json).unwrap();
        v["withdrawn"] = true.into();
        w.json = v.to_string();
        let rows = vec![row(1, "surge", 22, 10 * H, 10 * H, 3, 3.0), w];
        let st = StateChange {
            state: "false_positive".into(),
            assignee: None,
            note: Some("a pentest we ordered".into()),
        }
        .check("alice", Timestamp(0))
        .unwrap();
        let states = vec![ContextItem {
            key: "1".into(),
            origin: "analyst".into(),
            json: serde_json::to_string(&st).unwrap(),
        }];
        let got = incidents(&rows, &states, None, H);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].windows, 1, "the withdrawn window is not part of it");
        assert_eq!(got[0].state.state, Disposition::FalsePositive);
        assert_eq!(got[0].state.by, "alice");
    }

    #[test]
    fn state_changes_are_checked() {
        let c = |state: &str, assignee: Option<&str>, note: Option<&str>| {
            StateChange {
                state: state.into(),
                assignee: assignee.map(String::from),
                note: note.map(String::from),
            }
            .check("bob", Timestamp(0))
        };
        assert!(c("acknowledged", None, None).is_ok());
        assert!(c("assigned", Some("carol"), None).is_ok());
        assert!(c("assigned", None, None)
            .unwrap_err()
            .contains("needs an assignee"));
        assert!(c("false_positive", None, None)
            .unwrap_err()
            .contains("needs a note"));
        assert!(c("closed", None, None)
            .unwrap_err()
            .contains("expected new"));
        assert!(c("resolved", None, Some(&"x".repeat(MAX_NOTE + 1))).is_err());
        assert!(c("resolved", None, Some("bell\u{7}")).is_err());
        assert_eq!(c("resolved", None, Some("  ")).unwrap().note, None);
    }
}
