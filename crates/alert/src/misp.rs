//! A MISP event of one stored warning, in the JSON that MISP's REST API
//! (`POST /events/add`) and PyMISP's `MISPEvent.load` accept.
//!
//! Attributes: every top source as `ip-src` (`to_ids`, seen in the window), the
//! surging `port`, each CVE among the candidate explanations as `vulnerability` with
//! its public exploits as `link`s, the shareable summary and each block rule as
//! `text`. Tags: `tlp:green`, `rsit:information-gathering="scanner"`, and
//! `scanwatch:severity`/`scanwatch:confidence`. Levels:
//!
//! - `threat_level_id`: critical and high → 1 (high), medium → 2, low → 3, else 4;
//! - `analysis`: suspected → 0 (initial), likely → 1 (ongoing), confirmed → 2
//!   (completed);
//! - `distribution`: 0 (your organisation only); widen it in MISP when sharing.
//!
//! Deterministic like the STIX bundle: UUIDv5 ids of the content, times from the
//! warning. The user's exposed assets are never exported.

use scanwatch_context::explain::{Confidence, Priority};
use scanwatch_detect::Severity;
use serde_json::{json, Value};

use crate::stix::{exploit, text, uuid5, Facts};
use crate::warning::{AdvisoryJson, Platform, Warning};

/// MISP's ISO 8601 form of a time in milliseconds since the epoch.
fn misp_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// MISP's threat level of a severity.
pub fn threat_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "1",
        Severity::Medium => "2",
        Severity::Low => "3",
        Severity::Info => "4",
    }
}

/// MISP's analysis state of a confidence.
pub fn analysis(confidence: Confidence) -> &'static str {
    match confidence {
        Confidence::Suspected => "0",
        Confidence::Likely => "1",
        Confidence::Confirmed => "2",
    }
}

struct Attributes {
    event: String,
    list: Vec<Value>,
}

impl Attributes {
    fn push(
        &mut self,
        category: &str,
        ty: &str,
        value: &str,
        to_ids: bool,
        comment: &str,
        extra: Value,
    ) {
        let uuid = uuid5(&format!(
            "misp|attribute|{}|{category}|{ty}|{value}|{comment}",
            self.event
        ));
        let mut a = json!({
            "uuid": uuid.to_string(),
            "category": category,
            "type": ty,
            "value": value,
            "to_ids": to_ids,
            "distribution": "5",
            "comment": comment,
        });
        if let (Value::Object(m), Value::Object(e)) = (&mut a, extra) {
            m.extend(e);
        }
        self.list.push(a);
    }
}

/// The MISP event (`{"Event": {...}}`) of stored warning `id`. Empty fields leave
/// out what needs them; it never fails.
pub fn misp_event(id: i64, alert: &Warning) -> Value {
    let f = Facts::new(alert);
    let event_uuid = uuid5(&format!("misp|event|{}", f.key)).to_string();
    let port_title = f.port_title();
    let first_seen = misp_time(f.start);
    let last_seen = misp_time(f.end);
    let mut attrs = Attributes {
        event: event_uuid.clone(),
        list: Vec::new(),
    };
    for (ip, events) in &f.top_sources {
        let comment = match (f.sweep_prefix, events) {
            (Some(net), Some(e)) => {
                format!("sweeper of {net}: {e} events to many ports in the window")
            }
            (Some(net), None) => format!("sweeper of {net}"),
            (None, Some(e)) => format!("top source: {e} events to {port_title} in the window"),
            (None, None) => format!("top source of the surge on {port_title}"),
        };
        attrs.push(
            "Network activity",
            "ip-src",
            &ip.to_string(),
            true,
            &comment,
            json!({"first_seen": first_seen, "last_seen": last_seen}),
        );
    }
    if let Some(p) = f.port {
        attrs.push(
            "Network activity",
            "port",
            &p.to_string(),
            false,
            &format!("the surging port ({})", f.proto),
            json!({}),
        );
    }
    for (cve, a) in f.cves() {
        attrs.push(
            "External analysis",
            "vulnerability",
            cve,
            false,
            &a.title,
            json!({}),
        );
        for e in &a.exploits {
            if let Some((n, title)) = exploit(e) {
                attrs.push(
                    "External analysis",
                    "link",
                    &format!("https://www.exploit-db.com/exploits/{n}"),
                    false,
                    format!("public exploit for {cve}: EDB-{n} {title}").trim_end(),
                    json!({}),
                );
            }
        }
    }
    // What the imported data says of each CVE's fix, as attributes of their own
    // (docs/exports.md): the fixes, a fix released after the surge, the vendor's
    // next patch day and the workarounds.
    for (cve, a) in f.cves() {
        fix_attributes(&mut attrs, cve, a);
    }
    let (follows, followed_by) = f.follow_ons();
    for (text, comment) in follows
        .iter()
        .map(|x| {
            (
                x.sentence(),
                "follow-on: the earlier surge this one follows",
            )
        })
        .chain(followed_by.iter().map(|x| {
            (
                x.followed_sentence(),
                "follow-on: a later surge of the same advisory",
            )
        }))
    {
        attrs.push(
            "Other",
            "text",
            &text,
            false,
            comment,
            json!({"disable_correlation": true}),
        );
    }
    attrs.push(
        "Other",
        "text",
        &f.shareable_summary(),
        false,
        "scanwatch summary",
        json!({"disable_correlation": true}),
    );
    for (platform, rule) in &f.mitigations {
        let comment = if *platform == Platform::KevRequiredAction {
            "CISA KEV required action".to_string()
        } else {
            format!("block rule ({platform})")
        };
        attrs.push(
            "Other",
            "text",
            rule,
            false,
            &comment,
            json!({"disable_correlation": true}),
        );
    }

    let mut tags = vec![
        json!({"name": "tlp:green"}),
        json!({"name": "rsit:information-gathering=\"scanner\""}),
    ];
    if let Some(s) = f.severity {
        tags.push(json!({"name": format!("scanwatch:severity=\"{s}\"")}));
    }
    if let Some(c) = f.confidence {
        tags.push(json!({"name": format!("scanwatch:confidence=\"{c}\"")}));
    }
    // Records stored before priorities existed state none (no reason): no tag.
    let priority = f.priority();
    if !alert.priority_reason.is_empty() {
        tags.push(json!({"name": format!("scanwatch:priority=\"{}\"", priority.name())}));
    }
    let info = match (f.headline, f.sources) {
        (Some(h), _) => format!("scanwatch alert {id}: {h}"),
        (None, Some(n)) => format!("scanwatch alert {id}: {n} sources scanning {port_title}"),
        (None, None) => format!("scanwatch alert {id}: scanning surge on {port_title}"),
    };
    let date = chrono::DateTime::from_timestamp_millis(f.start)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    json!({
        "Event": {
            "uuid": event_uuid,
            "info": info,
            "date": date,
            "timestamp": (f.end.div_euclid(1000)).max(0).to_string(),
            // An exploited flaw without a fix at the surge is High whatever the
            // surge's size.
            "threat_level_id": if priority == Priority::Urgent { "1" } else { threat_level(alert.severity) },
            "analysis": analysis(alert.confidence),
            "distribution": "0",
            "published": false,
            "Attribute": attrs.list,
            "Tag": tags,
        }
    })
}

/// The fix facts of one CVE (`advisories[].fix`, `next_patch_day`) as attributes.
fn fix_attributes(attrs: &mut Attributes, cve: &str, a: &AdvisoryJson) {
    let no_corr = || json!({"disable_correlation": true});
    let fix = &a.fix;
    if let Some(st) = text(&fix.statement) {
        let status = fix.status.name();
        attrs.push(
            "Other",
            "text",
            st,
            false,
            &format!("fix status of {cve}: {status}"),
            no_corr(),
        );
    }
    for p in &fix.patches {
        let (ty, cat) = if p.starts_with("http://") || p.starts_with("https://") {
            ("link", "External analysis")
        } else {
            ("text", "Other")
        };
        attrs.push(
            cat,
            ty,
            p,
            false,
            &format!("vendor fix for {cve}"),
            no_corr(),
        );
    }
    if let Some(l) = &fix.fixed_later {
        let comment = format!(
            "vendor fix for {cve} released {} ({} days after the surge began): {}",
            text(&l.date).unwrap_or("?"),
            l.days_after_surge,
            l.details
        );
        match l.url.as_deref().and_then(text) {
            Some(u) => attrs.push("External analysis", "link", u, false, &comment, no_corr()),
            None => attrs.push("Other", "text", &l.details, false, &comment, no_corr()),
        }
    }
    for w in &fix.workarounds {
        attrs.push(
            "Other",
            "text",
            w,
            false,
            &format!("workaround for {cve}"),
            no_corr(),
        );
    }
    if let Some(p) = &a.next_patch_day {
        if let Some(date) = text(&p.date) {
            attrs.push(
                "Other",
                "datetime",
                &format!("{date}T00:00:00.000000+00:00"),
                false,
                &format!(
                    "next scheduled {} after the surge began (for {cve})",
                    text(&p.name).unwrap_or("patch day")
                ),
                no_corr(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stix::tests::{minimal, w};

    fn load(name: &str) -> Value {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn of_type<'a>(e: &'a Value, ty: &str) -> Vec<&'a Value> {
        e["Event"]["Attribute"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["type"] == ty)
            .collect()
    }

    #[test]
    fn a_warning_with_cves() {
        let a = load("alert-1025-cve.json");
        let e = misp_event(7, &w(&a));
        assert_eq!(e, misp_event(7, &w(&a)), "deterministic");
        let ev = &e["Event"];
        assert!(ev["info"]
            .as_str()
            .unwrap()
            .starts_with("scanwatch alert 7: TCP/1025: 89 sources"));
        assert_eq!(ev["date"], "2007-04-19");
        assert_eq!(ev["timestamp"], "1176962400");
        assert_eq!(
            (&ev["threat_level_id"], &ev["analysis"]),
            (&json!("1"), &json!("1"))
        );
        let ips = of_type(&e, "ip-src");
        assert_eq!(ips.len(), 10);
        assert_eq!(ips[0]["value"], "26.172.193.230");
        assert_eq!(ips[0]["to_ids"], true);
        assert_eq!(ips[0]["first_seen"], "2007-04-19T05:00:00.000000+00:00");
        assert_eq!(of_type(&e, "port")[0]["value"], "1025");
        let v: Vec<&Value> = of_type(&e, "vulnerability")
            .iter()
            .map(|a| &a["value"])
            .collect();
        assert_eq!(v, [&json!("CVE-2007-1748"), &json!("CVE-2003-0352")]);
        // Six exploit links, and the fix released after the surge.
        let links = of_type(&e, "link");
        assert_eq!(links.len(), 7);
        assert_eq!(
            links[6]["comment"],
            "vendor fix for CVE-2007-1748 released 2007-05-08 (19 days after the surge began): Security update MS07-029 (KB935966)"
        );
        // The summary and four block rules; the fix status, three workarounds and
        // the follow-on surge as attributes of their own.
        let texts = of_type(&e, "text");
        assert_eq!(texts.len(), 10);
        let comments: Vec<&str> = texts
            .iter()
            .map(|t| t["comment"].as_str().unwrap())
            .collect();
        assert_eq!(comments[0], "fix status of CVE-2007-1748: none_at_surge");
        assert!(texts[0]["value"]
            .as_str()
            .unwrap()
            .starts_with("no vendor fix when the surge came"));
        assert_eq!(
            comments
                .iter()
                .filter(|c| **c == "workaround for CVE-2007-1748")
                .count(),
            3
        );
        assert!(texts[1]["value"].as_str().unwrap().contains("RpcProtocol"));
        assert_eq!(comments[4], "follow-on: a later surge of the same advisory");
        assert!(texts[4]["value"]
            .as_str()
            .unwrap()
            .starts_with("Followed by the TCP/445 surge that began 2007-04-21 08:00 UTC"));
        let day = of_type(&e, "datetime");
        assert_eq!(day.len(), 1);
        assert_eq!(day[0]["value"], "2007-05-08T00:00:00.000000+00:00");
        assert!(day[0]["comment"]
            .as_str()
            .unwrap()
            .starts_with("next scheduled Microsoft patch day"));
        assert_eq!(ev["Tag"][0]["name"], "tlp:green");
        assert!(ev["Tag"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "scanwatch:priority=\"urgent\""));
        let mut uuids: Vec<&str> = ev["Attribute"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["uuid"].as_str().unwrap())
            .collect();
        let n = uuids.len();
        uuids.sort();
        uuids.dedup();
        assert_eq!(uuids.len(), n, "attribute uuids are unique");
        assert!(!e.to_string().contains("dc1.corp.example"), "no assets");
    }

    #[test]
    fn the_snapshot_of_a_plain_warning() {
        let e = misp_event(1, &w(&load("alert-1025-plain.json")));
        let mut ev = e["Event"].clone();
        // The block rules are long; the snapshot keeps the first attributes.
        if let Some(a) = ev["Attribute"].as_array_mut() {
            a.retain(|x| x["comment"] != "block rule (nftables)");
            a.drain(2..9.min(a.len()));
        }
        let mut shown = serde_json::to_string_pretty(&ev).unwrap();
        shown.push('\n');
        expect_test::expect_file!["../testdata/misp-plain.snap.json"].assert_eq(&shown);
    }

    #[test]
    fn odd_values_do_not_panic() {
        // Records the warning type cannot hold are refused when read (the STIX
        // test); the odd values it can hold give a whole event.
        let a = minimal(json!({
            "top_sources": [{"ip": "2001:db8::1", "events": 0}],
            "advisories": [{"id": "CVE-2024-0001", "exploits": ["EDB-5", "EDB-x"]}],
        }));
        let e = misp_event(0, &a);
        assert!(e["Event"]["info"]
            .as_str()
            .unwrap()
            .starts_with("scanwatch alert 0"));
        assert_eq!(e["Event"]["threat_level_id"], "4");
        assert_eq!(of_type(&e, "ip-src")[0]["value"], "2001:db8::1");
    }
}
