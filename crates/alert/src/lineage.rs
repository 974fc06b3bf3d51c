//! Follow-on surges: a surge on one port that the same advisory leads as an earlier
//! surge on another port is its follow-on — the 2007 story's TCP/445 exploit wave two
//! days after the TCP/1025 surge of the DNS RPC flaw (one of that flaw's public
//! exploits uses 445).
//!
//! The rule (docs/context.md, "Follow-on surges"): surge B follows surge A when both
//! are explained at least `likely` with the same leading advisory, A is on another
//! protocol/port, and A began before B. B names the earliest such A. Only what the
//! advisories and the event times say is used, so `analyze` on the union of the
//! events and a centre fed in any order link the same surges (a centre links a
//! warning when it is raised: a surge raised late by a revision links then).

use std::collections::BTreeMap;

use scanwatch_event::Timestamp;
use serde::{Deserialize, Serialize};

use scanwatch_context::explain::Confidence;

use crate::warning::Warning;

/// The earlier surge a warning's surge follows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct FollowOn {
    pub protocol: String,
    pub port: u16,
    /// Start of that surge's first warning window.
    pub episode_start: String,
    /// The advisory leading both surges.
    pub advisory: String,
}

impl FollowOn {
    /// "Follows the TCP/1025 surge that began 2007-04-19 02:00 UTC (the same
    /// leading explanation, CVE-2007-1748)".
    pub fn sentence(&self) -> String {
        self.phrase("Follows")
    }

    /// The same for a later surge: "Followed by the TCP/445 surge that began …".
    pub fn followed_sentence(&self) -> String {
        self.phrase("Followed by")
    }

    fn phrase(&self, verb: &str) -> String {
        let when = scanwatch_event::parse_rfc3339(&self.episode_start)
            .and_then(|t| chrono::DateTime::from_timestamp_millis(t.0))
            .map_or(self.episode_start.clone(), |d| {
                d.format("%Y-%m-%d %H:%M UTC").to_string()
            });
        format!(
            "{verb} the {}/{} surge that began {when} (the same leading explanation, {})",
            self.protocol.to_uppercase(),
            self.port,
            self.advisory
        )
    }
}

/// The leading advisory of an explanation: the best candidate when the
/// confidence is `likely` or `confirmed`, else none.
pub fn leading_advisory(confidence: Confidence, first_candidate: Option<&str>) -> Option<&str> {
    match confidence {
        Confidence::Likely | Confidence::Confirmed => first_candidate,
        Confidence::Suspected => None,
    }
}

/// The surges seen so far, by leading advisory: for each protocol/port, when its
/// first surge began.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Lineage {
    // As lists of pairs: the ports' keys are not strings.
    #[serde(with = "pairs")]
    seen: Seen,
}

/// For each leading advisory, for each (protocol, port), when its first surge began.
type Seen = BTreeMap<String, BTreeMap<(String, u16), Timestamp>>;

/// The lineage's map as (advisory, [((protocol, port), start)]) pairs.
mod pairs {
    use super::*;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Entry = (String, Vec<((String, u16), Timestamp)>);

    pub fn serialize<S: Serializer>(m: &Seen, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<Entry> = m
            .iter()
            .map(|(a, ports)| {
                (
                    a.clone(),
                    ports.iter().map(|(k, t)| (k.clone(), *t)).collect(),
                )
            })
            .collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Seen, D::Error> {
        let v = Vec::<Entry>::deserialize(d)?;
        Ok(v.into_iter()
            .map(|(a, ports)| (a, ports.into_iter().collect()))
            .collect())
    }
}

impl Lineage {
    pub fn new() -> Lineage {
        Lineage::default()
    }

    /// Records a surge led by `advisory` on `protocol`/`port` that began at
    /// `start`, and returns the earlier surge it follows, if any.
    pub fn observe(
        &mut self,
        advisory: &str,
        protocol: &str,
        port: u16,
        start: Timestamp,
    ) -> Option<FollowOn> {
        let key = (protocol.to_ascii_lowercase(), port);
        let ports = self.seen.entry(advisory.to_string()).or_default();
        let follows = ports
            .iter()
            .filter(|(k, t)| **k != key && **t < start)
            .min_by_key(|(k, t)| (**t, (*k).clone()))
            .map(|((p, port), t)| FollowOn {
                protocol: p.clone(),
                port: *port,
                episode_start: t.to_rfc3339(),
                advisory: advisory.to_string(),
            });
        let first = ports.entry(key).or_insert(start);
        first.0 = first.0.min(start.0);
        follows
    }

    /// Links a warning to the surge it follows: sets `follows` and adds the
    /// sentence to its narrative. Sweeps and warnings without a `likely` or
    /// `confirmed` explanation are left as they are.
    pub fn link(&mut self, j: &mut Warning) {
        if j.sweep.is_some() {
            return;
        }
        let Some(lead) = j.leading_advisory().map(str::to_string) else {
            return;
        };
        if let Some(f) = self.observe(&lead, &j.protocol, j.port, j.episode_start) {
            j.summary.push_str(&format!(". {}", f.sentence()));
            j.follows = Some(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        scanwatch_event::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn a_later_surge_of_the_same_advisory_on_another_port_follows_the_first() {
        let mut l = Lineage::new();
        let cve = "CVE-2007-1748";
        // (advisory, protocol, port, start, follows: port and start)
        type Step<'a> = (&'a str, &'a str, u16, &'a str, Option<(u16, &'a str)>);
        let steps: [Step; 7] = [
            (cve, "tcp", 1025, "2007-04-19T02:00:00Z", None),
            // Later windows of the same surge, and of the same port: not a follow-on.
            (cve, "tcp", 1025, "2007-04-19T02:00:00Z", None),
            (cve, "tcp", 1025, "2007-04-25T00:00:00Z", None),
            // The 445 wave two days later.
            (
                cve,
                "tcp",
                445,
                "2007-04-21T08:00:00Z",
                Some((1025, "2007-04-19T02:00:00Z")),
            ),
            // Another advisory on 445: nothing to follow.
            ("CVE-2017-0144", "tcp", 445, "2017-05-12T00:00:00Z", None),
            // The same flaw on 139 later: follows the earliest, 1025.
            (
                cve,
                "tcp",
                139,
                "2007-04-22T00:00:00Z",
                Some((1025, "2007-04-19T02:00:00Z")),
            ),
            // UDP/1025 is another port.
            (
                cve,
                "udp",
                1025,
                "2007-04-23T00:00:00Z",
                Some((1025, "2007-04-19T02:00:00Z")),
            ),
        ];
        for (adv, proto, port, start, want) in steps {
            let got = l.observe(adv, proto, port, t(start));
            assert_eq!(
                got.as_ref().map(|f| (f.port, f.episode_start.as_str())),
                want,
                "{adv} {proto}/{port} {start}"
            );
            if let Some(f) = got {
                assert_eq!(f.advisory, adv);
                assert_eq!(f.protocol, "tcp");
            }
        }
        let f = FollowOn {
            protocol: "tcp".into(),
            port: 1025,
            episode_start: "2007-04-19T02:00:00Z".into(),
            advisory: cve.into(),
        };
        assert_eq!(
            f.sentence(),
            "Follows the TCP/1025 surge that began 2007-04-19 02:00 UTC (the same leading explanation, CVE-2007-1748)"
        );
    }

    #[test]
    fn an_earlier_surge_seen_later_is_not_followed_by_what_came_before_it() {
        // Delivery order does not make a surge follow one that began after it.
        let mut l = Lineage::new();
        assert_eq!(l.observe("A", "tcp", 445, t("2007-04-21T08:00:00Z")), None);
        assert_eq!(l.observe("A", "tcp", 1025, t("2007-04-19T02:00:00Z")), None);
        // The 445 surge, linked again (a revision), now follows 1025.
        assert_eq!(
            l.observe("A", "tcp", 445, t("2007-04-21T08:00:00Z"))
                .map(|f| f.port),
            Some(1025)
        );
    }

    #[test]
    fn only_likely_or_confirmed_explanations_lead() {
        assert_eq!(leading_advisory(Confidence::Likely, Some("X")), Some("X"));
        assert_eq!(
            leading_advisory(Confidence::Confirmed, Some("X")),
            Some("X")
        );
        assert_eq!(leading_advisory(Confidence::Suspected, Some("X")), None);
        assert_eq!(leading_advisory(Confidence::Likely, None), None);
    }
}
