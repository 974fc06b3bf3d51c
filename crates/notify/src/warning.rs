//! The view of a stored warning that the sinks need, taken from the typed warning
//! (`scanwatch_alert::Warning`, the one the centre stores): the severity and
//! confidence are the detector's and the context's own enums.

use serde::{Deserialize, Serialize};

pub use scanwatch_context::explain::Confidence;
pub use scanwatch_detect::Severity;

use crate::NotifyError;

/// Whether a notification opens a surge for a sink or tells that it grew.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    New,
    Update,
    /// The surge is over: its incident had no warning for more than one window
    /// (sent once, only to a sink that was told of the surge).
    Resolved,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::New => "new",
            Event::Update => "update",
            Event::Resolved => "resolved",
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
    /// RFC 3339.
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
    /// The whole warning (what webhooks carry).
    pub record: scanwatch_alert::Warning,
}

impl Warning {
    /// The sinks' view of stored warning `id`; refused without a protocol (it
    /// keys the surge).
    pub fn new(id: i64, w: &scanwatch_alert::Warning) -> Result<Warning, NotifyError> {
        if w.protocol.is_empty() {
            return Err(NotifyError::Warning {
                id,
                reason: "no protocol".into(),
            });
        }
        Ok(Warning {
            id,
            protocol: w.protocol.clone(),
            port: w.port,
            severity: w.severity,
            confidence: w.confidence,
            headline: w.headline.clone(),
            summary: w.summary.clone(),
            window_start: w.window_start.to_rfc3339(),
            window_end: w.window_end.to_rfc3339(),
            episode_start: w.episode_start.to_rfc3339(),
            update: w.update,
            events: w.events,
            sources: w.sources,
            sensors: w.sensors,
            times_normal: w.times_normal,
            advisories: w.advisories.iter().map(|a| a.id.clone()).collect(),
            mitigations: w
                .mitigations
                .iter()
                .map(|m| Mitigation {
                    platform: m.platform.name().to_string(),
                    rule: m.rule.clone(),
                })
                .collect(),
            record: w.clone(),
        })
    }

    /// Reads stored warning `id` from its JSON (`AlertRow.json`).
    pub fn from_stored(id: i64, json: &str) -> Result<Warning, NotifyError> {
        let w =
            scanwatch_alert::Warning::from_stored(id, json).map_err(|e| NotifyError::Warning {
                id,
                reason: e.source.to_string(),
            })?;
        Warning::new(id, &w)
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
        match &self.record.sweep {
            Some(s) => format!("{base}/sweep {}", s.prefix),
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

    use serde_json::Value;

    /// A warning's JSON as the centre stores it.
    pub(crate) fn sample(id: i64) -> Value {
        serde_json::json!({
            "type": "alert", "alert_kind": "surge", "score": 3.5,
            "protocol": "tcp", "port": 445, "severity": "high",
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
        let w = Warning::from_stored(3, &sample(3).to_string()).expect("valid");
        assert_eq!(w.port_label(), "tcp/445");
        assert_eq!(w.severity, Severity::High);
        assert_eq!(w.confidence, Confidence::Likely);
        assert_eq!(w.advisories, vec!["CVE-2020-0796"]);
        assert_eq!(w.mitigations[0].platform, "nftables");
        assert_eq!(w.surge_key(), "surge:tcp/445/2026-11-26T10:00:00Z");
        let mut v = sample(3);
        v["severity"] = "huge".into();
        assert!(Warning::from_stored(3, &v.to_string()).is_err());
        let mut v = sample(3);
        v["port"] = 70000.into();
        assert!(Warning::from_stored(3, &v.to_string()).is_err());
        assert!(Warning::from_stored(3, "null").is_err());
    }

    #[test]
    fn two_sweep_campaigns_of_one_window_are_two_stories() {
        let sweep = |net: &str| {
            let mut v = sample(4);
            v["alert_kind"] = "sweep".into();
            v["sweep"] = serde_json::json!({"prefix": net, "sources": 32, "ports": 2000});
            Warning::from_stored(4, &v.to_string()).expect("valid")
        };
        let (a, b) = (sweep("203.0.113.0/24"), sweep("198.51.100.0/24"));
        assert_ne!(a.surge_key(), b.surge_key());
        assert_eq!(
            a.surge_key(),
            "surge:tcp/445/2026-11-26T10:00:00Z/sweep 203.0.113.0/24"
        );
    }
}
