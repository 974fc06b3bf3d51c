//! A STIX 2.1 bundle of one stored warning, for threat-intelligence platforms.
//!
//! What the bundle holds:
//!
//! - the `identity` of scanwatch (creator of every object) and the TLP:GREEN
//!   `marking-definition` every object carries;
//! - a `report` (the shareable summary, see below) referring to every other object;
//! - an `attack-pattern` for scanning the port (CAPEC-300, ATT&CK T1595);
//! - per top source: an `indicator` (`[ipv4-addr:value = '…']`, valid from the window
//!   start until [`INDICATOR_LIFETIME_HOURS`] after its end) that `indicates` the
//!   attack pattern and is `based-on` an `observed-data` (the source's events in the
//!   window) whose SCOs are the address and a `network-traffic` to the port;
//! - a `vulnerability` per CVE among the candidate explanations, which the attack
//!   pattern `targets` (with the match reason);
//! - a `course-of-action` per block rule, which `mitigates` the attack pattern.
//!
//! Indicators and the report carry the warning's confidence ([`confidence`]); the
//! indicator type is `malicious-activity` when an explanation is likely or
//! confirmed, else `anomalous-activity`.
//!
//! Deterministic: ids are UUIDv5 of the warning's content (SCO ids as the STIX spec
//! defines them), and every timestamp comes from the warning, so the same warning
//! always gives the same bundle. Objects about one warning are created at its window
//! end; objects shared by many warnings keep a fixed `created` (the scanwatch
//! identity and the attack pattern at [`FIXED_CREATED`], a vulnerability at its
//! publication date) so that newer warnings give newer versions, never conflicts.
//!
//! The user's exposed assets are never exported: the summary here is rebuilt from the
//! headline, the port, the assessment and the ports to block.

use std::net::IpAddr;

use scanwatch_context::explain::Priority;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::lineage::FollowOn;
use crate::warning::{AdvisoryJson, Platform, Warning};

/// How long an indicator stays valid after the end of its warning's window: the
/// default lifetime of the blocklist (`/api/v1/blocklist`).
pub const INDICATOR_LIFETIME_HOURS: i64 = 24;

/// `created` of the objects that are the same in every bundle.
pub const FIXED_CREATED: &str = "2026-01-01T00:00:00.000Z";

/// The STIX 2.1 predefined TLP:GREEN marking definition.
pub const TLP_GREEN_ID: &str = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da";

/// Namespace of scanwatch's UUIDv5 ids (STIX and MISP).
pub(crate) const NAMESPACE: Uuid = Uuid::from_u128(0x2493_80bc_7392_4051_a6ba_5319_2eb0_1543);

/// The namespace STIX 2.1 fixes for deterministic SCO ids (section 2.9).
const SCO_NAMESPACE: Uuid = Uuid::from_u128(0x00ab_edb4_aa42_466c_9c01_fed2_3315_a9b7);

/// The fields of a warning the exports use, with what is empty left out.
pub(crate) struct Facts<'a> {
    /// `tcp`, `udp`, … (lowercase); `ip` when empty.
    pub proto: String,
    pub port: Option<u16>,
    /// Milliseconds since the epoch (the start no later than the end).
    pub start: i64,
    pub end: i64,
    pub episode_start: i64,
    pub events: Option<u64>,
    pub sources: Option<u64>,
    pub severity: Option<&'a str>,
    pub confidence: Option<&'a str>,
    pub headline: Option<&'a str>,
    pub top_sources: Vec<(IpAddr, Option<u64>)>,
    pub advisories: Vec<&'a AdvisoryJson>,
    pub mitigations: Vec<(Platform, &'a str)>,
    /// What identifies the warning: kind, protocol, port and window (and the
    /// network of a sweep).
    pub key: String,
    /// The network of a sweep warning (`203.0.113.0/24`).
    pub sweep_prefix: Option<&'a str>,
    w: &'a Warning,
}

/// `Some(s)` unless empty.
pub(crate) fn text(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

impl<'a> Facts<'a> {
    pub fn new(w: &'a Warning) -> Facts<'a> {
        let proto = text(&w.protocol).map_or("ip".to_string(), str::to_ascii_lowercase);
        let end = w.window_end.0;
        let start = w.window_start.0.min(end);
        let episode_start = w.episode_start.0.min(start);
        let mut top_sources: Vec<(IpAddr, Option<u64>)> = Vec::new();
        for s in &w.top_sources {
            if !top_sources.iter().any(|(seen, _)| *seen == s.ip) {
                top_sources.push((s.ip, Some(s.events)));
            }
        }
        let mitigations = w
            .mitigations
            .iter()
            .filter_map(|m| Some((m.platform, text(&m.rule)?)))
            .collect();
        let sweep_prefix = w.sweep.as_ref().and_then(|s| text(&s.prefix));
        let mut key = format!(
            "{}|{proto}|{}|{}|{}",
            w.alert_kind.name(),
            w.port,
            w.window_start.to_rfc3339(),
            w.window_end.to_rfc3339(),
        );
        if let Some(p) = sweep_prefix {
            key.push('|');
            key.push_str(p);
        }
        Facts {
            proto,
            port: Some(w.port),
            start,
            end,
            episode_start,
            events: Some(w.events),
            sources: Some(w.sources),
            severity: Some(w.severity.name()),
            confidence: Some(w.confidence.name()),
            headline: text(&w.headline),
            top_sources,
            sweep_prefix,
            advisories: w.advisories.iter().collect(),
            mitigations,
            key,
            w,
        }
    }

    /// `tcp/1025` (`tcp` without a port).
    pub fn port_label(&self) -> String {
        match self.port {
            Some(p) => format!("{}/{p}", self.proto),
            None => self.proto.clone(),
        }
    }

    /// `TCP/1025`.
    pub fn port_title(&self) -> String {
        self.port_label().to_uppercase()
    }

    /// The advisories that are CVEs: (id, advisory).
    pub fn cves(&self) -> impl Iterator<Item = (&'a str, &'a AdvisoryJson)> + '_ {
        self.advisories
            .iter()
            .filter(|a| is_cve(&a.id))
            .map(|a| (a.id.as_str(), *a))
    }

    /// The service name of the port (empty: unknown).
    pub fn service_name(&self) -> Option<&'a str> {
        text(&self.w.service.name)
    }

    /// `urgent`, `high` or `routine`.
    pub fn priority(&self) -> Priority {
        self.w.priority
    }

    /// The summary without the user's assets: headline, port, assessment, what to
    /// block, other candidate explanations.
    pub fn shareable_summary(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        parts.push(self.headline.map_or_else(
            || format!("{}: scanning surge", self.port_title()),
            str::to_string,
        ));
        let service = &self.w.service;
        match (text(&service.name), text(&service.notes)) {
            (Some(n), Some(notes)) => parts.push(format!("Port: {n} — {notes}")),
            (Some(n), None) => parts.push(format!("Port: {n}")),
            (None, Some(notes)) => parts.push(format!("Port: {notes}")),
            (None, None) => {}
        }
        if let Some(a) = text(&self.w.assessment) {
            parts.push(format!("Assessment: {a}"));
        }
        if let Some(p) = text(&self.w.priority_reason) {
            parts.push(format!("Priority: {p}"));
        }
        let block: Vec<String> = self.w.block.iter().map(|b| b.label()).collect();
        if !block.is_empty() {
            parts.push(format!(
                "Block new inbound connections to {}",
                block.join(", ")
            ));
        }
        let others: Vec<&str> = self.advisories.iter().filter_map(|a| text(&a.id)).collect();
        if !others.is_empty() {
            parts.push(format!("Candidate explanations: {}", others.join(", ")));
        }
        // What the imported data says of the leading explanation's fix and its
        // vendor's next patch day (docs/context.md).
        if let Some(lead) = self.advisories.first() {
            let id = text(&lead.id).unwrap_or("the leading explanation");
            if let Some(fix) = text(&lead.fix.statement) {
                parts.push(format!("Fix ({id}): {fix}"));
            }
            if let Some(p) = &lead.next_patch_day {
                if let (Some(name), Some(date)) = (text(&p.name), text(&p.date)) {
                    parts.push(format!(
                        "Next scheduled {name}: {date} ({} days after the surge began)",
                        p.days_after_surge
                    ));
                }
            }
            if let Some(w) = lead.fix.workarounds.first() {
                parts.push(format!("Workaround ({id}): {w}"));
            }
        }
        let (follows, followed_by) = self.follow_ons();
        parts.extend(follows.map(FollowOn::sentence));
        parts.extend(followed_by.iter().map(FollowOn::followed_sentence));
        parts.join(". ")
    }

    /// The earlier surge this one follows, and the later ones that follow it (the
    /// latter set by the centre's exports from the warning's incident).
    pub fn follow_ons(&self) -> (Option<&'a FollowOn>, &'a [FollowOn]) {
        (self.w.follows.as_ref(), &self.w.followed_by)
    }
}

/// `CVE-2007-1748`.
pub(crate) fn is_cve(id: &str) -> bool {
    let mut p = id.splitn(3, '-');
    p.next() == Some("CVE")
        && p.next()
            .is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
        && p.next()
            .is_some_and(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `EDB-3737: title` → (3737, title).
pub(crate) fn exploit(e: &str) -> Option<(u64, &str)> {
    let rest = e.strip_prefix("EDB-")?;
    let (n, title) = rest.split_once(':').unwrap_or((rest, ""));
    Some((n.trim().parse().ok()?, title.trim()))
}

/// Milliseconds since the epoch as a STIX timestamp with milliseconds.
pub(crate) fn stix_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A `YYYY-MM-DD` (or RFC 3339) date as a STIX timestamp.
fn date_time(s: &str) -> Option<i64> {
    scanwatch_event::parse_rfc3339(s)
        .or_else(|| scanwatch_event::parse_rfc3339(&format!("{s}T00:00:00Z")))
        .map(|t| t.0)
}

/// The STIX confidence (0–100, the "None/Low/Med/High" scale of the STIX 2.1
/// appendix) of scanwatch's confidence: suspected = Low, likely = Med, confirmed =
/// High.
pub fn confidence(c: &str) -> Option<u8> {
    match c {
        "suspected" => Some(15),
        "likely" => Some(50),
        "confirmed" => Some(85),
        _ => None,
    }
}

pub(crate) fn uuid5(name: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

fn sdo_id(ty: &str, name: &str) -> String {
    format!("{ty}--{}", uuid5(&format!("stix|{ty}|{name}")))
}

/// The deterministic id of an SCO from its id-contributing properties, given in
/// the key order of RFC 8785 (sorted), as STIX 2.1 section 2.9 defines it.
fn sco_id(ty: &str, contributing: &[(&str, Value)]) -> String {
    let mut m = Map::new();
    for (k, v) in contributing {
        m.insert((*k).to_string(), v.clone());
    }
    let canonical = Value::Object(m).to_string();
    format!(
        "{ty}--{}",
        Uuid::new_v5(&SCO_NAMESPACE, canonical.as_bytes())
    )
}

fn tlp_green() -> Value {
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP_GREEN_ID,
        "created": "2017-01-20T00:00:00.000Z",
        "definition_type": "tlp",
        "name": "TLP:GREEN",
        "definition": {"tlp": "green"},
    })
}

/// Objects of one bundle, built in order.
struct Builder {
    objects: Vec<Value>,
    identity: String,
    created: String,
}

impl Builder {
    /// An SDO or SRO with the common properties; `created`/`modified` default to the
    /// warning's window end.
    fn sdo(&mut self, ty: &str, id: &str, props: Value) -> String {
        let mut m = Map::new();
        m.insert("type".into(), ty.into());
        m.insert("spec_version".into(), "2.1".into());
        m.insert("id".into(), id.into());
        m.insert("created_by_ref".into(), self.identity.clone().into());
        m.insert("created".into(), self.created.clone().into());
        m.insert("modified".into(), self.created.clone().into());
        m.insert("object_marking_refs".into(), json!([TLP_GREEN_ID]));
        if let Value::Object(p) = props {
            for (k, v) in p {
                if v.is_null() {
                    m.remove(&k);
                } else {
                    m.insert(k, v);
                }
            }
        }
        self.objects.push(Value::Object(m));
        id.to_string()
    }

    fn relationship(&mut self, key: &str, source: &str, ty: &str, target: &str, desc: &str) {
        let id = sdo_id("relationship", &format!("{key}|{source}|{ty}|{target}"));
        let mut props = json!({
            "relationship_type": ty,
            "source_ref": source,
            "target_ref": target,
        });
        if !desc.is_empty() {
            props["description"] = desc.into();
        }
        self.sdo("relationship", &id, props);
    }
}

/// The STIX 2.1 bundle of stored warning `id`. Empty fields leave out what needs
/// them; it never fails.
pub fn stix_bundle(id: i64, alert: &Warning) -> Value {
    let f = Facts::new(alert);
    let created = stix_time(f.end);
    let conf = f.confidence.and_then(confidence);
    let identity = sdo_id("identity", "scanwatch");
    let mut b = Builder {
        objects: Vec::new(),
        identity: identity.clone(),
        created: created.clone(),
    };
    b.sdo(
        "identity",
        &identity,
        json!({
            "created": FIXED_CREATED,
            "modified": FIXED_CREATED,
            "created_by_ref": null,
            "name": "scanwatch",
            "description": "scanwatch, an early-warning network for Internet scanning surges: sensors send firewall and IDS events, the centre warns when a port is scanned far above its baseline",
            "identity_class": "system",
        }),
    );
    b.objects.push(tlp_green());
    let key = f.key.clone();
    let port_title = f.port_title();
    let mut labels = vec![
        "scanwatch".to_string(),
        f.port_label(),
        format!("severity-{}", f.severity.unwrap_or("unknown")),
    ];
    if let Some(c) = f.confidence {
        labels.push(format!("confidence-{c}"));
    }

    // The attack pattern: scanning of the port, the same object in every bundle.
    let service = f
        .service_name()
        .map_or(String::new(), |n| format!(" ({n})"));
    let pattern = sdo_id("attack-pattern", &f.port_label());
    b.sdo(
        "attack-pattern",
        &pattern,
        json!({
            "created": FIXED_CREATED,
            "modified": FIXED_CREATED,
            "name": format!("Scanning of {port_title}"),
            "description": format!("Unsolicited connection attempts to {port_title}{service} from many Internet sources, seen by scanwatch sensors: scanning for the service, often ahead of its exploitation."),
            "external_references": [
                {"source_name": "capec", "external_id": "CAPEC-300", "url": "https://capec.mitre.org/data/definitions/300.html"},
                {"source_name": "mitre-attack", "external_id": "T1595", "url": "https://attack.mitre.org/techniques/T1595/"},
            ],
            "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "reconnaissance"}],
        }),
    );

    // Vulnerabilities: the CVEs among the candidate explanations.
    let mut vulns: Vec<(String, &AdvisoryJson)> = Vec::new();
    for (cve, a) in f.cves() {
        let vid = sdo_id("vulnerability", cve);
        if vulns.iter().any(|(v, _)| *v == vid) {
            continue;
        }
        let vcreated = a.published.as_deref().and_then(date_time);
        let vcreated_s = vcreated.map_or(FIXED_CREATED.to_string(), stix_time);
        let modified = if vcreated_s > created {
            vcreated_s.clone()
        } else {
            created.clone()
        };
        let mut refs = vec![json!({
            "source_name": "cve",
            "external_id": cve,
            "url": format!("https://www.cve.org/CVERecord?id={cve}"),
        })];
        for e in &a.exploits {
            if let Some((n, title)) = exploit(e) {
                let mut r = json!({
                    "source_name": "exploit-db",
                    "external_id": format!("EDB-{n}"),
                    "url": format!("https://www.exploit-db.com/exploits/{n}"),
                });
                if !title.is_empty() {
                    r["description"] = title.into();
                }
                refs.push(r);
            }
        }
        let mut desc: Vec<String> = Vec::new();
        if let Some(t) = text(&a.title) {
            desc.push(t.to_string());
        }
        if let Some(c) = a.cvss {
            desc.push(format!("CVSS {c:.1}"));
        }
        if let Some(k) = &a.kev {
            desc.push(match k.date_added.as_deref().and_then(text) {
                Some(d) => format!("in CISA KEV since {d}"),
                None => "in CISA KEV".to_string(),
            });
        }
        let mut props = json!({
            "created": vcreated_s,
            "modified": modified,
            "name": cve,
            "external_references": refs,
        });
        if !desc.is_empty() {
            props["description"] = desc.join("; ").into();
        }
        b.sdo("vulnerability", &vid, props);
        vulns.push((vid, a));
    }

    // Courses of action: the block rules and KEV required actions.
    let mut courses = Vec::new();
    for (platform, rule) in &f.mitigations {
        let platform = platform.name();
        let name = if platform == Platform::KevRequiredAction.name() {
            "CISA KEV required action".to_string()
        } else {
            format!("Block {port_title} with {platform}")
        };
        let cid = sdo_id("course-of-action", &format!("{key}|{platform}|{rule}"));
        if courses.contains(&cid) {
            continue;
        }
        b.sdo(
            "course-of-action",
            &cid,
            json!({"name": name, "description": rule}),
        );
        courses.push(cid);
    }

    // What the imported data says of each vulnerability's fix: a course of action
    // that mitigates it (the vendor fix with its links, or the fix status with the
    // vendor's next patch day), and one per workaround (docs/context.md).
    let mut fixes: Vec<(String, String)> = Vec::new();
    for (vid, a) in &vulns {
        let fix = &a.fix;
        // A warning stored before the fix facts existed has none.
        if fix.statement.is_empty() && fix.patches.is_empty() && fix.workarounds.is_empty() {
            continue;
        }
        let cve = text(&a.id).unwrap_or("the vulnerability");
        let patches: Vec<&str> = fix.patches.iter().map(String::as_str).collect();
        let mut desc = fix.statement.clone();
        if let Some(p) = &a.next_patch_day {
            if let (Some(name), Some(date)) = (text(&p.name), text(&p.date)) {
                desc.push_str(&format!(
                    "; next scheduled {name}: {date} ({} days after the surge began)",
                    p.days_after_surge
                ));
            }
        }
        let (name, mut refs) = if patches.is_empty() {
            (format!("Fix status of {cve}"), Vec::new())
        } else {
            (
                format!("Apply the vendor fix for {cve}"),
                patches
                    .iter()
                    .map(|p| match p.rsplit_once(' ') {
                        // A vendor's fix as text with its link at the end (CSAF).
                        Some((what, u)) if u.starts_with("http") => json!(
                            {"source_name": "vendor-fix", "url": u, "description": what}
                        ),
                        _ if p.starts_with("http") => {
                            json!({"source_name": "vendor-fix", "url": p})
                        }
                        _ => json!({"source_name": "vendor-fix", "description": p}),
                    })
                    .collect::<Vec<Value>>(),
            )
        };
        // A fix released after the surge (CSAF): where to get it now.
        if let Some(l) = &fix.fixed_later {
            let mut r = json!({
                "source_name": "vendor-fix-after-the-surge",
                "description": format!("{} ({})", l.details, l.date),
            });
            if let Some(u) = l.url.as_deref().and_then(text) {
                r["url"] = u.into();
            }
            refs.push(r);
        }
        let cid = sdo_id("course-of-action", &format!("{key}|fix|{cve}"));
        let mut props = json!({"name": name, "description": desc});
        if !refs.is_empty() {
            props["external_references"] = refs.into();
        }
        b.sdo("course-of-action", &cid, props);
        fixes.push((cid, vid.clone()));
        for (i, w) in fix.workarounds.iter().enumerate() {
            let wid = sdo_id("course-of-action", &format!("{key}|workaround|{cve}|{i}"));
            b.sdo(
                "course-of-action",
                &wid,
                json!({"name": format!("Workaround for {cve}"), "description": w}),
            );
            fixes.push((wid, vid.clone()));
        }
    }

    // Per top source: indicator, observed data and its SCOs.
    let indicator_types = match f.confidence {
        Some("likely" | "confirmed") => json!(["malicious-activity"]),
        _ => json!(["anomalous-activity"]),
    };
    let valid_from = stix_time(f.start);
    let valid_until = stix_time(f.end.saturating_add(INDICATOR_LIFETIME_HOURS * 3_600_000));
    let window = format!("{}–{}", stix_time(f.start), stix_time(f.end));
    let mut per_source = Vec::new();
    for (ip, events) in &f.top_sources {
        let (ty, ipver) = match ip {
            IpAddr::V4(_) => ("ipv4-addr", "ipv4"),
            IpAddr::V6(_) => ("ipv6-addr", "ipv6"),
        };
        let addr = sco_id(ty, &[("value", json!(ip.to_string()))]);
        let protocols = json!([ipver, f.proto]);
        let mut contributing = Vec::new();
        if let Some(p) = f.port {
            contributing.push(("dst_port", json!(p)));
        }
        contributing.push(("protocols", protocols.clone()));
        contributing.push(("src_ref", json!(addr)));
        let traffic = sco_id("network-traffic", &contributing);
        let observed = sdo_id("observed-data", &format!("{key}|{ip}"));
        let count = events.unwrap_or(1).clamp(1, 999_999_999);
        b.sdo(
            "observed-data",
            &observed,
            json!({
                "first_observed": valid_from,
                "last_observed": stix_time(f.end),
                "number_observed": count,
                "object_refs": [addr, traffic],
            }),
        );
        b.objects.push(json!({
            "type": ty, "spec_version": "2.1", "id": addr, "value": ip.to_string(),
        }));
        let mut nt = json!({
            "type": "network-traffic", "spec_version": "2.1", "id": traffic,
            "src_ref": addr, "protocols": protocols,
        });
        if let Some(p) = f.port {
            nt["dst_port"] = p.into();
        }
        b.objects.push(nt);
        let ind = sdo_id("indicator", &format!("{key}|{ip}"));
        let events_text = events.map_or(String::new(), |e| {
            format!(
                " with {e}{} events",
                f.events.map_or(String::new(), |t| format!(" of {t}"))
            )
        });
        b.sdo(
            "indicator",
            &ind,
            json!({
                "name": match f.sweep_prefix {
                    Some(net) => format!("{ip}: sweeper of {net} probing many ports"),
                    None => format!("{ip}: top source of a scanning surge on {port_title}"),
                },
                "description": match f.sweep_prefix {
                    Some(net) => format!(
                        "{ip} was one of the sweepers of {net}{events_text} in {window}, probing many ports each, in a sweep that began {}. {}",
                        stix_time(f.episode_start),
                        f.headline.unwrap_or("")
                    ),
                    None => format!(
                        "{ip} was one of the top sources{events_text} to {port_title} in {window}, in a surge that began {}. {}",
                        stix_time(f.episode_start),
                        f.headline.unwrap_or("")
                    ),
                }.trim_end().to_string(),
                "indicator_types": indicator_types,
                "pattern": format!("[{ty}:value = '{ip}']"),
                "pattern_type": "stix",
                "pattern_version": "2.1",
                "valid_from": valid_from,
                "valid_until": valid_until,
                "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "reconnaissance"}],
                "labels": labels,
                "confidence": conf,
            }),
        );
        per_source.push((ind, observed, addr, traffic));
    }

    // Relationships.
    for (ind, observed, _, _) in &per_source {
        b.relationship(&key, ind, "indicates", &pattern, "");
        b.relationship(&key, ind, "based-on", observed, "");
    }
    for (vid, a) in &vulns {
        let s = a.match_strength.name();
        let why = match text(&a.match_reason) {
            Some(r) => format!("{s} match: {r}"),
            None => format!("{s} match"),
        };
        b.relationship(&key, &pattern, "targets", vid, &why);
    }
    for c in &courses {
        b.relationship(&key, c, "mitigates", &pattern, "");
    }
    for (c, vid) in &fixes {
        b.relationship(&key, c, "mitigates", vid, "");
    }

    // The report referring to everything.
    let refs: Vec<Value> = b
        .objects
        .iter()
        .filter_map(|o| o.get("id").cloned())
        .filter(|i| i.as_str() != Some(TLP_GREEN_ID))
        .collect();
    let external = json!([{
        "source_name": "scanwatch",
        "external_id": format!("alert-{id}"),
        "description": format!("stored warning {id} (GET /api/v1/alerts/{id})"),
    }]);
    let report = sdo_id("report", &key);
    b.sdo(
        "report",
        &report,
        json!({
            "name": f.headline.map_or_else(|| format!("Scanning surge on {port_title}"), str::to_string),
            "description": f.shareable_summary(),
            "report_types": ["threat-report"],
            "confidence": conf,
            "published": created,
            "object_refs": refs,
            "labels": labels,
            "external_references": external,
        }),
    );
    // The report first after the identity and marking, for readers that look there.
    if let Some(r) = b.objects.pop() {
        b.objects.insert(2.min(b.objects.len()), r);
    }

    json!({
        "type": "bundle",
        "id": sdo_id("bundle", &key),
        "objects": b.objects,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn load(name: &str) -> Value {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The typed warning of a JSON value.
    pub(crate) fn w(v: &Value) -> Warning {
        serde_json::from_value(v.clone()).unwrap()
    }

    /// The least a warning holds, with odd values in the fields that have them.
    pub(crate) fn minimal(extra: Value) -> Warning {
        let mut v = json!({"alert_kind": "surge", "protocol": "tcp", "port": 1,
            "window_start": "2026-11-26T10:00:00Z", "window_end": "2026-11-26T11:00:00Z",
            "episode_start": "2026-11-26T10:00:00Z", "severity": "info", "score": 0.0,
            "headline": ""});
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            m.extend(e);
        }
        w(&v)
    }

    fn of_type<'a>(b: &'a Value, ty: &str) -> Vec<&'a Value> {
        b["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == ty)
            .collect()
    }

    /// The sweep warning of the golden research-sweep case.
    fn sweep() -> Value {
        let path = format!(
            "{}/../../testdata/research-sweep/expected.jsonl",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|v| v["alert_kind"] == "sweep")
            .unwrap()
    }

    #[test]
    fn a_sweep_names_its_sweepers_and_two_campaigns_stay_apart() {
        let a = sweep();
        let b = stix_bundle(3, &w(&a));
        let ind = of_type(&b, "indicator");
        assert!(!ind.is_empty());
        for i in &ind {
            let name = i["name"].as_str().unwrap();
            assert!(name.contains("sweeper of 203.0.113.0/24"), "{name}");
        }
        // Another network's sweep, same window and busiest port: other objects.
        let mut other = a.clone();
        other["sweep"]["prefix"] = json!("198.51.100.0/24");
        let c = stix_bundle(4, &w(&other));
        assert_ne!(
            of_type(&b, "report")[0]["id"],
            of_type(&c, "report")[0]["id"]
        );
        let m = crate::misp::misp_event(3, &w(&a));
        let n = crate::misp::misp_event(4, &w(&other));
        assert_ne!(m["Event"]["uuid"], n["Event"]["uuid"]);
        assert!(m.to_string().contains("sweeper of 203.0.113.0/24"));
    }

    #[test]
    fn sco_ids_follow_the_spec() {
        // The ids the OASIS `stix2` Python library gives the same objects.
        let ip = sco_id("ipv4-addr", &[("value", json!("1.2.3.4"))]);
        assert_eq!(ip, "ipv4-addr--0198f97b-e65d-5025-87e5-58bc39d4bdb4");
        let nt = sco_id(
            "network-traffic",
            &[
                ("dst_port", json!(1025)),
                ("protocols", json!(["ipv4", "tcp"])),
                ("src_ref", json!(ip)),
            ],
        );
        assert_eq!(nt, "network-traffic--97d1be9d-630a-5826-b997-8a8221e8c339");
    }

    #[test]
    fn a_warning_with_cves_gives_a_full_deterministic_bundle() {
        let a = load("alert-1025-cve.json");
        let b = stix_bundle(7, &w(&a));
        assert_eq!(b, stix_bundle(7, &w(&a)), "deterministic");
        assert_eq!(b["type"], "bundle");
        assert!(b.get("spec_version").is_none(), "2.1 bundles have none");
        assert_eq!(of_type(&b, "identity").len(), 1);
        let inds = of_type(&b, "indicator");
        assert_eq!(inds.len(), 10);
        let i = inds[0];
        assert_eq!(i["pattern"], "[ipv4-addr:value = '26.172.193.230']");
        assert_eq!(i["pattern_type"], "stix");
        assert_eq!(i["valid_from"], "2007-04-19T05:00:00.000Z");
        assert_eq!(i["valid_until"], "2007-04-20T06:00:00.000Z");
        assert_eq!(i["created"], "2007-04-19T06:00:00.000Z");
        assert_eq!(i["confidence"], 50);
        assert_eq!(i["indicator_types"], json!(["malicious-activity"]));
        let obs = of_type(&b, "observed-data");
        assert_eq!(obs.len(), 10);
        assert_eq!(obs[0]["number_observed"], 37);
        let nt = of_type(&b, "network-traffic");
        assert_eq!(nt[0]["dst_port"], 1025);
        assert_eq!(nt[0]["protocols"], json!(["ipv4", "tcp"]));
        assert_eq!(of_type(&b, "ipv4-addr").len(), 10);
        let v = of_type(&b, "vulnerability");
        let names: Vec<&str> = v.iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["CVE-2007-1748", "CVE-2003-0352"]);
        assert_eq!(v[0]["external_references"][0]["source_name"], "cve");
        assert_eq!(v[0]["created"], "2007-04-13T00:00:00.000Z");
        // Four block rules, the fix status of the CVE with a fix record and its
        // vendor's three workarounds.
        let courses = of_type(&b, "course-of-action");
        assert_eq!(courses.len(), 8);
        let fix = courses
            .iter()
            .find(|c| c["name"] == "Fix status of CVE-2007-1748")
            .unwrap();
        let d = fix["description"].as_str().unwrap();
        assert!(
            d.starts_with("no vendor fix when the surge came")
                && d.ends_with("next scheduled Microsoft patch day (Update Tuesday): 2007-05-08 (19 days after the surge began)"),
            "{d}"
        );
        assert_eq!(
            fix["external_references"][0]["url"],
            "https://learn.microsoft.com/en-us/security-updates/securitybulletins/2007/ms07-029"
        );
        assert_eq!(
            courses
                .iter()
                .filter(|c| c["name"] == "Workaround for CVE-2007-1748")
                .count(),
            3
        );
        let rels = of_type(&b, "relationship");
        assert_eq!(rels.len(), 10 * 2 + 2 + 4 + 1 + 3);
        assert!(rels.iter().any(|r| r["relationship_type"] == "mitigates"
            && r["source_ref"] == fix["id"]
            && r["target_ref"] == v[0]["id"]));
        // Every reference points into the bundle.
        let ids: Vec<&str> = b["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect();
        for r in rels {
            assert!(ids.contains(&r["source_ref"].as_str().unwrap()));
            assert!(ids.contains(&r["target_ref"].as_str().unwrap()));
        }
        let report = &of_type(&b, "report")[0];
        for r in report["object_refs"].as_array().unwrap() {
            assert!(ids.contains(&r.as_str().unwrap()));
        }
        let text = report["description"].as_str().unwrap();
        assert!(text.contains("CVE-2007-1748"), "{text}");
        // What the imported data says of a fix and of the next patch day travels
        // with the shared summary (docs/context.md).
        assert!(
            text.contains("Fix (CVE-2007-1748): no vendor fix when the surge came")
                && text.contains("Priority: urgent: CVE-2007-1748 is exploited")
                && text.contains("Workaround (CVE-2007-1748): Disable remote management over RPC")
                && text.contains("Followed by the TCP/445 surge that began 2007-04-21 08:00 UTC")
                && text.contains("Next scheduled Microsoft patch day (Update Tuesday): 2007-05-08 (19 days after the surge began)"),
            "{text}"
        );
        assert!(!b.to_string().contains("dc1.corp.example"), "no assets");
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "ids are unique");
    }

    #[test]
    fn a_referenced_fix_and_workarounds_become_courses_of_action() {
        let mut a = load("alert-1025-cve.json");
        a["advisories"][0]["fix"] = json!({
            "patches": ["https://vendor.example/fix"],
            "workarounds": ["Block TCP 445 at the edge"],
            "statement": "a vendor fix is referenced: https://vendor.example/fix",
        });
        let b = stix_bundle(7, &w(&a));
        let courses = of_type(&b, "course-of-action");
        let fix = courses
            .iter()
            .find(|c| c["name"] == "Apply the vendor fix for CVE-2007-1748")
            .unwrap();
        assert_eq!(
            fix["external_references"][0]["url"],
            "https://vendor.example/fix"
        );
        let w = courses
            .iter()
            .find(|c| c["name"] == "Workaround for CVE-2007-1748")
            .unwrap();
        assert_eq!(w["description"], "Block TCP 445 at the edge");
        let vuln = &of_type(&b, "vulnerability")[0];
        let rels = of_type(&b, "relationship");
        for c in [fix, w] {
            assert!(rels.iter().any(|r| r["relationship_type"] == "mitigates"
                && r["source_ref"] == c["id"]
                && r["target_ref"] == vuln["id"]));
        }
    }

    #[test]
    fn the_snapshot_of_a_plain_warning() {
        let a = load("alert-1025-plain.json");
        let b = stix_bundle(1, &w(&a));
        let first = |ty: &str| of_type(&b, ty)[0].clone();
        let mut report = first("report");
        let refs = report["object_refs"].as_array().map_or(0, Vec::len);
        report["object_refs"] = format!("{refs} ids").into();
        let mut shown = serde_json::to_string_pretty(&json!({
            "bundle": b["id"],
            "report": report,
            "indicator": first("indicator"),
            "observed-data": first("observed-data"),
            "network-traffic": first("network-traffic"),
        }))
        .unwrap();
        shown.push('\n');
        expect_test::expect_file!["../testdata/stix-plain.snap.json"].assert_eq(&shown);
        assert_eq!(of_type(&b, "indicator")[0]["confidence"], 15);
        assert_eq!(
            of_type(&b, "indicator")[0]["indicator_types"],
            json!(["anomalous-activity"])
        );
        assert!(of_type(&b, "vulnerability").is_empty());
    }

    #[test]
    fn odd_records_are_refused_and_odd_values_do_not_panic() {
        // What the warning type cannot hold is refused when read, with why.
        for a in [
            json!(null),
            json!({}),
            json!([1, 2]),
            json!({"protocol": 6, "port": 70000, "window_end": "nonsense",
                   "top_sources": [{"ip": "not an ip"}, {"ip": "2001:db8::7"}, {"ip": "2001:db8::7"}, 5],
                   "advisories": [{"id": "EDB-1"}, {"id": "CVE-2024-12345", "published": "junk", "exploits": ["EDB-x", 3]}],
                   "mitigations": [{"platform": "pf"}, 1]}),
        ] {
            let e = Warning::from_stored(0, &a.to_string()).unwrap_err();
            assert!(
                e.to_string().starts_with("warning 0 is not readable: "),
                "{e}"
            );
        }
        // The odd values a warning can hold give a whole bundle.
        let a = minimal(json!({
            "top_sources": [{"ip": "2001:db8::7", "events": 1}, {"ip": "2001:db8::7", "events": 1}],
            "advisories": [{"id": "EDB-1"}, {"id": "CVE-2024-12345", "published": "junk", "exploits": ["EDB-x", ""]}],
            "mitigations": [{"platform": "pf", "rule": ""}],
        }));
        let b = stix_bundle(0, &a);
        assert_eq!(b["type"], "bundle");
        assert!(!of_type(&b, "report").is_empty());
        let inds = of_type(&b, "indicator");
        assert_eq!(inds.len(), 1, "duplicates dropped");
        assert_eq!(inds[0]["pattern"], "[ipv6-addr:value = '2001:db8::7']");
        assert_eq!(of_type(&b, "vulnerability").len(), 1);
        assert!(is_cve("CVE-2024-12345") && !is_cve("CVE-24-1") && !is_cve("EDB-1"));
    }
}
