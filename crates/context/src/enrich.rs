//! The context of one warning, all in one place: what the port is, what may explain
//! the surge and how sure we are, what to block, and which of the user's assets are
//! most exposed. The alert stage attaches it to warnings; `exposure` prints it.

use scanwatch_event::{Protocol, Timestamp};
use serde::Serialize;

use crate::assets::Asset;
use crate::explain::{self, Assessment, ExplainConfig, Intel, Surge};
use crate::exposure::{self, Target};
use crate::ids::IdsHit;
use crate::knowledge::PortKnowledge;

/// Everything the context stage knows, loaded once per run.
#[derive(Clone, Debug)]
pub struct ContextData {
    pub ports: PortKnowledge,
    pub intel: Intel,
    pub ids: Vec<IdsHit>,
    pub assets: Vec<Asset>,
    pub explain: ExplainConfig,
}

impl ContextData {
    /// The context of a sweep warning: what its busiest port is, and no
    /// explanation, mitigation or exposure by port: a sweep probes every port, so
    /// no advisory of one port explains it, and what to block is its sources (the
    /// warning's corroborated top sources, which the blocklist takes).
    pub fn enrich_sweep(&self, proto: Protocol, port: u16) -> AlertContext {
        AlertContext {
            port: self.ports.info(proto, port).map(|f| PortNote {
                name: f.name.to_string(),
                note: f.note.to_string(),
                source: f.source.to_string(),
            }),
            assessment: Assessment {
                confidence: explain::Confidence::Suspected,
                verified: false,
                statement: "a sweep (not verified): sources probing many ports each, \
                            not a rise of one port; no advisory of one port explains it, \
                            and its sources seen by several sensors go to the blocklist"
                    .to_string(),
                priority: explain::Priority::Routine,
                priority_reason: "routine: a sweep; no advisory of one port explains it"
                    .to_string(),
                candidates: Vec::new(),
                ids_alerts_on_port: 0,
                mitigation: explain::Mitigation::default(),
            },
            exposed: Vec::new(),
            exposed_total: 0,
        }
    }

    /// Built-in port knowledge only: no advisories, IDS alerts or assets.
    pub fn builtin() -> ContextData {
        ContextData {
            ports: PortKnowledge::builtin(),
            intel: Intel::default(),
            ids: Vec::new(),
            assets: Vec::new(),
            explain: ExplainConfig::default(),
        }
    }
}

/// What the port is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PortNote {
    pub name: String,
    pub note: String,
    /// Where the note comes from (a citation, `/etc/services`, or the user's file).
    pub source: String,
}

/// An exposed asset, briefly.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExposedAsset {
    pub host: String,
    pub address: Option<std::net::IpAddr>,
    pub zone: Option<String>,
    pub score: u32,
    pub reasons: Vec<String>,
}

/// The context attached to one warning.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertContext {
    pub port: Option<PortNote>,
    #[serde(flatten)]
    pub assessment: Assessment,
    /// The most exposed assets, most exposed first (at most [`MAX_EXPOSED`]).
    pub exposed: Vec<ExposedAsset>,
    /// How many assets are exposed in all.
    pub exposed_total: usize,
}

/// Assets listed per warning.
pub const MAX_EXPOSED: usize = 10;

/// Roles (as the asset inventory names them) behind a port, for exposure matching.
pub fn roles_for_port(proto: Protocol, port: u16) -> &'static [&'static str] {
    match (proto, port) {
        (_, 53) => &["dns"],
        (Protocol::Tcp, 135) => &["msrpc", "ad"],
        (_, 137..=139) | (Protocol::Tcp, 445) => &["smb"],
        (Protocol::Tcp, 80 | 443 | 8080 | 8443) => &["http"],
        (Protocol::Tcp, 20 | 21) => &["ftp"],
        (Protocol::Tcp, 3389) => &["rdp"],
        (_, 88 | 389 | 464 | 636 | 3268 | 3269) => &["ad"],
        (Protocol::Tcp, 25 | 465 | 587 | 110 | 143 | 993 | 995) => &["mail"],
        (Protocol::Tcp, 1433 | 1521 | 3306 | 5432 | 6379 | 27017) => &["db"],
        (_, 500 | 4500 | 1194 | 1723) => &["vpn"],
        (Protocol::Tcp, 1025..=5000) | (Protocol::Tcp, 49152..=65535) => &["msrpc"],
        _ => &[],
    }
}

impl ContextData {
    /// Port facts, explanation, mitigation and exposure for a surge on
    /// `proto`/`port` that began at `start` and was last seen in a window ending at
    /// `end`.
    pub fn enrich(
        &self,
        proto: Protocol,
        port: u16,
        start: Timestamp,
        end: Timestamp,
    ) -> AlertContext {
        let surge = Surge {
            proto,
            port,
            start,
            end,
        };
        let assessment = explain::assess(&surge, &self.intel, &self.ids, &self.explain);
        let mut services: Vec<String> = Vec::new();
        let mut add_roles = |p: Protocol, n: u16| {
            for r in roles_for_port(p, n) {
                if !services.iter().any(|s| s == r) {
                    services.push((*r).to_string());
                }
            }
        };
        add_roles(proto, port);
        for c in assessment.candidates.iter().take(3) {
            for m in c.port_matches() {
                add_roles(m.proto.unwrap_or(proto), m.first);
            }
        }
        let mut targets = vec![Target::port(proto, port).with_services(services.clone())];
        for b in &assessment.mitigation.block {
            if let Some(p) = Protocol::parse(&b.proto) {
                if !(p == proto && b.first == port && b.last == port) {
                    targets.push(Target::range(p, b.first, b.last));
                }
            }
        }
        let ranked = exposure::rank(&self.assets, &targets);
        let exposed_total = ranked.len();
        let exposed = ranked
            .into_iter()
            .take(MAX_EXPOSED)
            .map(|e| ExposedAsset {
                host: e.asset.host,
                address: e.asset.address,
                zone: e.asset.zone,
                score: e.score,
                reasons: e.reasons,
            })
            .collect();
        AlertContext {
            port: self.ports.info(proto, port).map(|f| PortNote {
                name: f.name.to_string(),
                note: f.note.to_string(),
                source: f.source.to_string(),
            }),
            assessment,
            exposed,
            exposed_total,
        }
    }
}
