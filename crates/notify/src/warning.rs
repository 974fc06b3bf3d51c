//! The view of a stored warning that the sinks need, read leniently from the
//! warning's JSON (the fields of `AlertJson`): the keys a decision depends on are
//! required, the rest default to empty.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::NotifyError;

/// Severity of a warning, least severe first (the order of `scanwatch-detect`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// How sure the context is of what the surge is (docs/context.md), least sure first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Suspected,
    Likely,
    Confirmed,
}

impl Confidence {
    pub fn parse(s: &str) -> Option<Confidence> {
        Some(match s {
            "suspected" => Confidence::Suspected,
            "likely" => Confidence::Likely,
            "confirmed" => Confidence::Confirmed,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Confidence::Suspected => "suspected",
            Confidence::Likely => "likely",
            Confidence::Confirmed => "confirmed",
        }
    }
}

/// Whether a notification opens a surge for a sink or tells that it grew.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    New,
    Update,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::New => "new",
            Event::Update => "update",
        }
    }
}

/// One block rule (or required action).
#[derive(Clone, Debug, PartialEq)]
pub struct Mitigation {
    pub platform: String,
    pub rule: String,
}

/// A stored warning as the sinks see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Warning {
    pub id: i64,
    pub protocol: String,
    pub port: u16,
    pub severity: Severity,
    pub confidence: Confidence,
    pub headline: String,
    pub summary: String,
    pub window_start: String,
    pub window_end: String,
    pub episode_start: String,
    /// A later window of the same surge (as the detector sees it).
    pub update: bool,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub times_normal: f64,
    /// Advisory ids (CVE, EDB, ...), best first.
    pub advisories: Vec<String>,
    pub mitigations: Vec<Mitigation>,
    /// The JSON as given (what webhooks carry).
    pub json: Value,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

impl Warning {
    /// Reads a warning; `protocol`, `port`, `severity` and `episode_start` are
    /// required (they key the surge and drive the filters).
    pub fn from_json(id: i64, v: &Value) -> Result<Warning, NotifyError> {
        let bad = |reason: &str| NotifyError::Warning {
            id,
            reason: reason.to_string(),
        };
        if !v.is_object() {
            return Err(bad("not a JSON object"));
        }
        let protocol = text(v, "protocol");
        if protocol.is_empty() {
            return Err(bad("no protocol"));
        }
        let port = v
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| bad("no valid port"))?;
        let severity =
            Severity::parse(&text(v, "severity")).ok_or_else(|| bad("no valid severity"))?;
        let confidence = match v.get("confidence").and_then(Value::as_str) {
            None => Confidence::Suspected,
            Some(c) => Confidence::parse(c).ok_or_else(|| bad("invalid confidence"))?,
        };
        let episode_start = text(v, "episode_start");
        if episode_start.is_empty() {
            return Err(bad("no episode_start"));
        }
        let advisories = v
            .get("advisories")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.get("id").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mitigations = v
            .get("mitigations")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|m| Mitigation {
                        platform: text(m, "platform"),
                        rule: text(m, "rule"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Warning {
            id,
            protocol,
            port,
            severity,
            confidence,
            headline: text(v, "headline"),
            summary: text(v, "summary"),
            window_start: text(v, "window_start"),
            window_end: text(v, "window_end"),
            episode_start,
            update: v.get("update").and_then(Value::as_bool).unwrap_or(false),
            events: num(v, "events"),
            sources: num(v, "sources"),
            sensors: num(v, "sensors"),
            times_normal: v.get("times_normal").and_then(Value::as_f64).unwrap_or(0.0),
            advisories,
            mitigations,
            json: v.clone(),
        })
    }

    /// `tcp/445`.
    pub fn port_label(&self) -> String {
        format!("{}/{}", self.protocol, self.port)
    }

    /// The key of the surge this warning belongs to: protocol, port, start (and
    /// the network of a sweep, whose port is only its busiest: two campaigns of
    /// one window are two stories).
    pub fn surge_key(&self) -> String {
        let base = format!(
            "surge:{}/{}/{}",
            self.protocol, self.port, self.episode_start
        );
        match self
            .json
            .get("sweep")
            .and_then(|s| s.get("prefix"))
            .and_then(Value::as_str)
        {
            Some(net) => format!("{base}/sweep {net}"),
            None => base,
        }
    }
}

/// What a sink renders: a warning and whether it is new or an update for this sink.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub warning: Warning,
    pub event: Event,
    /// When it is rendered (milliseconds since the epoch, from the notifier's clock).
    pub now_ms: i64,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(id: i64) -> Value {
        serde_json::json!({
            "type": "alert", "protocol": "tcp", "port": 445, "severity": "high",
            "confidence": "likely", "headline": "tcp/445: 120 sources, 9.5 times normal",
            "summary": "Scanning of SMB.\nBlock it.", "window_start": "2026-11-26T10:00:00Z",
            "window_end": "2026-11-26T11:00:00Z", "episode_start": "2026-11-26T10:00:00Z",
            "update": false, "events": 5000, "sources": 120, "sensors": 7, "times_normal": 9.5,
            "top_sources": [{"ip": "192.0.2.1", "events": 50}],
            "advisories": [{"id": "CVE-2020-0796", "title": "SMBGhost"}],
            "mitigations": [{"platform": "nftables", "rule": "tcp dport 445 drop"}],
            "id": id
        })
    }

    #[test]
    fn reads_a_warning_and_refuses_missing_keys() {
        let w = Warning::from_json(3, &sample(3)).expect("valid");
        assert_eq!(w.port_label(), "tcp/445");
        assert_eq!(w.severity, Severity::High);
        assert_eq!(w.confidence, Confidence::Likely);
        assert_eq!(w.advisories, vec!["CVE-2020-0796"]);
        assert_eq!(w.mitigations[0].platform, "nftables");
        assert_eq!(w.surge_key(), "surge:tcp/445/2026-11-26T10:00:00Z");
        let mut v = sample(3);
        v["severity"] = "huge".into();
        assert!(Warning::from_json(3, &v).is_err());
        let mut v = sample(3);
        v["port"] = 70000.into();
        assert!(Warning::from_json(3, &v).is_err());
        assert!(Warning::from_json(3, &Value::Null).is_err());
    }

    #[test]
    fn two_sweep_campaigns_of_one_window_are_two_stories() {
        let sweep = |net: &str| {
            let mut v = sample(4);
            v["alert_kind"] = "sweep".into();
            v["sweep"] = serde_json::json!({"prefix": net, "sources": 32, "ports": 2000});
            Warning::from_json(4, &v).expect("valid")
        };
        let (a, b) = (sweep("203.0.113.0/24"), sweep("198.51.100.0/24"));
        assert_ne!(a.surge_key(), b.surge_key());
        assert_eq!(
            a.surge_key(),
            "surge:tcp/445/2026-11-26T10:00:00Z/sweep 203.0.113.0/24"
        );
    }
}
