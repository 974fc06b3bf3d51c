//! Which of the user's assets a surge puts at risk, most exposed first.
//!
//! A [`Target`] is what a surge is aimed at: a protocol and port range, plus the
//! services or roles behind it (`["dns", "msrpc"]` for the seed case, a surge on
//! tcp/1025 aimed at the DNS Server RPC interface). [`rank`] lists every asset that
//! **matches** a target, because it has an open port in a target's range or runs one
//! of its services, and scores it:
//!
//! | points | reason | when |
//! |---:|---|---|
//! | 30 (+5 per further port, at most +15) | `exposes tcp/1025` | an open port in a target range |
//! | 20 (+5 per further service, at most +10) | `runs dns` | the asset runs a target service |
//! | 25 | `no firewall` | `firewalled` is `Some(false)` |
//! | 10 | `firewall unknown` | `firewalled` is `None` |
//! | 15 | `internet-facing (zone dmz)` | zone `internet`, `dmz`, `public` or `external` |
//! | 50 | `active directory server also running dns` | roles include `ad`, and it runs DNS |
//! | 30 | `dns on the same host as http and ftp without a separate firewall` | runs DNS and HTTP or FTP, `firewalled` is `Some(false)` |
//! | 15 | `dns on the same host as http and ftp, firewall unknown` | the same with `firewalled` `None` |
//!
//! The last three are the high-impact combinations: a domain controller that also
//! serves DNS hands an attacker of its DNS service the whole domain, and a hosting box
//! serving DNS next to web or FTP content with no firewall of its own (the seed case's
//! "hosting servers running DNS with HTTP/FTP and no separate firewall") is reachable
//! on every service it runs. Assets that match nothing are not listed; the rest are
//! sorted by score (highest first), then host name and address.
//!
//! **What an asset runs** is the union of its roles, the services its roles imply
//! (`ad` implies `msrpc`, `ldap`, `kerberos` and `smb`), and the services of its open
//! ports: the service nmap reported, or for ports without one the built-in port table's
//! name ([`crate::port_info`]). Service and role names are compared in canonical form
//! (see [`crate::assets::service_role`] and [`crate::assets::normalize_role`]), so a
//! target service `domain` matches role `dns` and `epmap` matches `msrpc`.

use std::collections::BTreeSet;

use scanwatch_event::Protocol;
use serde::{Deserialize, Serialize};

use crate::assets::{normalize_role, service_role, Asset};

/// Points for the first targeted open port.
pub const PORT_POINTS: u32 = 30;
/// Points for each further targeted open port.
pub const EXTRA_PORT_POINTS: u32 = 5;
/// Most points further ports add.
pub const EXTRA_PORT_CAP: u32 = 15;
/// Points for the first matching service or role.
pub const SERVICE_POINTS: u32 = 20;
/// Points for each further matching service or role.
pub const EXTRA_SERVICE_POINTS: u32 = 5;
/// Most points further services add.
pub const EXTRA_SERVICE_CAP: u32 = 10;
/// Points when the asset has no firewall (`firewalled == Some(false)`).
pub const NO_FIREWALL_POINTS: u32 = 25;
/// Points when whether the asset has a firewall is unknown.
pub const UNKNOWN_FIREWALL_POINTS: u32 = 10;
/// Points for an internet-facing zone.
pub const INTERNET_FACING_POINTS: u32 = 15;
/// Points for an Active Directory server that also runs DNS.
pub const AD_DNS_POINTS: u32 = 50;
/// Points for DNS beside HTTP or FTP without a separate firewall.
pub const DNS_HOSTING_POINTS: u32 = 30;
/// Points for DNS beside HTTP or FTP when the firewall is unknown.
pub const DNS_HOSTING_UNKNOWN_FIREWALL_POINTS: u32 = 15;

/// Zones that count as internet-facing.
pub const INTERNET_ZONES: [&str; 4] = ["internet", "dmz", "public", "external"];

/// How many targeted ports are named one by one in the reasons.
const LISTED_PORTS: usize = 5;

/// What a surge is aimed at.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Target {
    #[serde(with = "crate::assets::proto_serde")]
    pub proto: Protocol,
    /// First port of the range, inclusive.
    pub first: u16,
    /// Last port of the range, inclusive; a range with `last < first` holds no port.
    pub last: u16,
    /// Service or role names behind the port, e.g. `["dns", "msrpc"]`.
    #[serde(default)]
    pub services: Vec<String>,
}

impl Target {
    /// One port, no services.
    pub fn port(proto: Protocol, port: u16) -> Target {
        Target::range(proto, port, port)
    }

    /// A port range, no services.
    pub fn range(proto: Protocol, first: u16, last: u16) -> Target {
        Target {
            proto,
            first,
            last,
            services: Vec::new(),
        }
    }

    /// The same target with these services.
    pub fn with_services<I, S>(mut self, services: I) -> Target
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.services = services.into_iter().map(Into::into).collect();
        self
    }

    /// Whether (proto, port) is in the target range.
    pub fn contains(&self, proto: Protocol, port: u16) -> bool {
        proto == self.proto && (self.first..=self.last).contains(&port)
    }
}

/// An asset a surge puts at risk, with its score and why.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Exposed {
    pub asset: Asset,
    pub score: u32,
    /// Short lowercase phrases, in the order of the score table.
    pub reasons: Vec<String>,
}

/// Ranks the assets a set of targets puts at risk (see the module documentation for
/// the score). Assets matching no target are left out.
pub fn rank(assets: &[Asset], targets: &[Target]) -> Vec<Exposed> {
    let wanted: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for s in targets.iter().flat_map(|t| &t.services) {
            let c = canonical(s);
            if !c.is_empty() && !v.contains(&c) {
                v.push(c);
            }
        }
        v
    };
    let mut out: Vec<Exposed> = assets
        .iter()
        .filter_map(|a| assess(a, targets, &wanted))
        .collect();
    out.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| {
                a.asset
                    .host
                    .to_lowercase()
                    .cmp(&b.asset.host.to_lowercase())
            })
            .then_with(|| a.asset.host.cmp(&b.asset.host))
            .then_with(|| a.asset.address.cmp(&b.asset.address))
    });
    out
}

fn assess(asset: &Asset, targets: &[Target], wanted: &[String]) -> Option<Exposed> {
    let ports: Vec<_> = asset
        .open_ports
        .iter()
        .filter(|p| targets.iter().any(|t| t.contains(p.proto, p.port)))
        .collect();
    let runs = runs(asset);
    let services: Vec<&String> = wanted.iter().filter(|s| runs.contains(*s)).collect();
    if ports.is_empty() && services.is_empty() {
        return None;
    }

    let mut score = 0u32;
    let mut reasons = Vec::new();

    if !ports.is_empty() {
        let extra = u32::try_from(ports.len() - 1).unwrap_or(u32::MAX);
        score += PORT_POINTS + extra.saturating_mul(EXTRA_PORT_POINTS).min(EXTRA_PORT_CAP);
        for p in ports.iter().take(LISTED_PORTS) {
            reasons.push(format!("exposes {p}"));
        }
        if ports.len() > LISTED_PORTS {
            reasons.push(format!(
                "exposes {} more targeted ports",
                ports.len() - LISTED_PORTS
            ));
        }
    }
    if !services.is_empty() {
        let extra = u32::try_from(services.len() - 1).unwrap_or(u32::MAX);
        score += SERVICE_POINTS
            + extra
                .saturating_mul(EXTRA_SERVICE_POINTS)
                .min(EXTRA_SERVICE_CAP);
        for s in &services {
            reasons.push(format!("runs {s}"));
        }
    }
    match asset.firewalled {
        Some(false) => {
            score += NO_FIREWALL_POINTS;
            reasons.push("no firewall".to_string());
        }
        None => {
            score += UNKNOWN_FIREWALL_POINTS;
            reasons.push("firewall unknown".to_string());
        }
        Some(true) => {}
    }
    if let Some(zone) = asset.zone.as_deref() {
        if INTERNET_ZONES.iter().any(|z| z.eq_ignore_ascii_case(zone)) {
            score += INTERNET_FACING_POINTS;
            reasons.push(format!("internet-facing (zone {zone})"));
        }
    }

    let dns = runs.contains("dns");
    if dns && asset.roles.iter().any(|r| r == "ad") {
        score += AD_DNS_POINTS;
        reasons.push("active directory server also running dns".to_string());
    }
    let others: Vec<&str> = ["http", "ftp"]
        .into_iter()
        .filter(|s| runs.contains(*s))
        .collect();
    if dns && !others.is_empty() {
        let with = others.join(" and ");
        match asset.firewalled {
            Some(false) => {
                score += DNS_HOSTING_POINTS;
                reasons.push(format!(
                    "dns on the same host as {with} without a separate firewall"
                ));
            }
            None => {
                score += DNS_HOSTING_UNKNOWN_FIREWALL_POINTS;
                reasons.push(format!("dns on the same host as {with}, firewall unknown"));
            }
            Some(true) => {}
        }
    }

    Some(Exposed {
        asset: asset.clone(),
        score,
        reasons,
    })
}

/// A service or role name in the form assets and targets are compared in.
fn canonical(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    match service_role(&lower) {
        Some(r) => r.to_string(),
        None => normalize_role(&lower),
    }
}

/// Everything an asset runs, in canonical form.
fn runs(asset: &Asset) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for r in &asset.roles {
        let r = canonical(r);
        if r == "ad" {
            for implied in ["msrpc", "ldap", "kerberos", "smb"] {
                set.insert(implied.to_string());
            }
        }
        set.insert(r);
    }
    for p in &asset.open_ports {
        let name = match p.service.as_deref() {
            Some(s) => s,
            None => match crate::port_info(p.proto, p.port) {
                Some(info) if info.name != "dynamic" => info.name,
                _ => continue,
            },
        };
        set.insert(canonical(name));
    }
    set.remove("");
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::{parse_csv, parse_nmap_xml, OpenPort};

    const INVENTORY: &[u8] = include_bytes!("../testdata/assets/inventory.csv");
    const NMAP: &[u8] = include_bytes!("../testdata/assets/nmap-sample.xml");

    fn seed_target() -> Vec<Target> {
        vec![Target::port(Protocol::Tcp, 1025).with_services(["dns", "msrpc"])]
    }

    fn summary(ranked: &[Exposed]) -> Vec<(String, u32)> {
        ranked
            .iter()
            .map(|e| (e.asset.host.clone(), e.score))
            .collect()
    }

    #[test]
    fn seed_case_on_the_inventory() {
        let assets = parse_csv(INVENTORY, "csv:inventory.csv").unwrap().assets;
        let ranked = rank(&assets, &seed_target());
        assert_eq!(
            summary(&ranked),
            [
                ("dc1.corp.example".to_string(), 115),
                ("hosting1.example.net".to_string(), 90),
                ("ws-0421.corp.example".to_string(), 20),
            ]
        );
        assert_eq!(
            ranked[0].reasons,
            [
                "exposes tcp/1025",
                "runs dns",
                "runs msrpc",
                "firewall unknown",
                "active directory server also running dns",
            ]
        );
        assert_eq!(
            ranked[1].reasons,
            [
                "runs dns",
                "no firewall",
                "internet-facing (zone dmz)",
                "dns on the same host as http and ftp without a separate firewall",
            ]
        );
        // The workstation's tcp/135 is MS-RPC by the port table.
        assert_eq!(ranked[2].reasons, ["runs msrpc"]);
        // The firewalled web server runs nothing targeted.
        assert!(ranked.iter().all(|e| e.asset.host != "www.example.net"));
    }

    #[test]
    fn seed_case_on_the_nmap_scan() {
        let assets = parse_nmap_xml(NMAP, "nmap").unwrap().assets;
        let ranked = rank(&assets, &seed_target());
        assert_eq!(
            summary(&ranked),
            [
                ("dc1.corp.example".to_string(), 115),
                ("hosting1.example.net".to_string(), 45),
            ]
        );
        assert_eq!(
            ranked[1].reasons,
            [
                "runs dns",
                "firewall unknown",
                "dns on the same host as http and ftp, firewall unknown",
            ]
        );
    }

    #[test]
    fn web_target_puts_the_firewalled_server_below_the_open_one() {
        let assets = parse_csv(INVENTORY, "csv:inventory.csv").unwrap().assets;
        let ranked = rank(
            &assets,
            &[
                Target::port(Protocol::Tcp, 80),
                Target::port(Protocol::Tcp, 443),
            ],
        );
        let hosts: Vec<&str> = ranked.iter().map(|e| e.asset.host.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "hosting1.example.net",
                "www.example.net",
                "vpn-gw.example.net"
            ]
        );
        assert_eq!(ranked[0].score, 35 + 25 + 15 + 30);
        let www = &ranked[1];
        assert_eq!(www.score, 35 + 15);
        assert_eq!(
            www.reasons,
            [
                "exposes tcp/80",
                "exposes tcp/443",
                "internet-facing (zone dmz)"
            ]
        );
    }

    #[test]
    fn ranges_aliases_and_ties() {
        let mk = |host: &str, ports: &[u16]| Asset {
            host: host.into(),
            address: None,
            os: None,
            roles: vec![],
            open_ports: ports
                .iter()
                .map(|&p| OpenPort::new(Protocol::Tcp, p))
                .collect(),
            firewalled: Some(true),
            zone: Some("internal".into()),
            source: "test".into(),
        };
        let assets = vec![
            mk("b", &[1025, 1026, 1027, 1028, 1029, 1030, 1031]),
            mk("a", &[1025]),
            mk("C", &[1025]),
            mk("none", &[22]),
        ];
        let ranked = rank(&assets, &[Target::range(Protocol::Tcp, 1025, 1040)]);
        assert_eq!(
            summary(&ranked),
            [
                ("b".to_string(), 45),
                ("a".to_string(), 30),
                ("C".to_string(), 30)
            ]
        );
        assert_eq!(ranked[0].reasons.len(), 6);
        assert_eq!(ranked[0].reasons[5], "exposes 2 more targeted ports");
        // UDP target does not match TCP ports; an empty range matches nothing.
        assert!(rank(&assets, &[Target::port(Protocol::Udp, 1025)]).is_empty());
        assert!(rank(&assets, &[Target::range(Protocol::Tcp, 1040, 1025)]).is_empty());
        // Service aliases: `domain` finds the dns role, `epmap` an msrpc port.
        let mut dns = mk("ns", &[]);
        dns.roles = vec!["dns".into()];
        let mut rpc = mk("rpc", &[]);
        rpc.open_ports = vec![OpenPort {
            service: Some("msrpc".into()),
            ..OpenPort::new(Protocol::Tcp, 49668)
        }];
        let ranked = rank(
            &[dns, rpc],
            &[Target::port(Protocol::Tcp, 1).with_services(["Domain", "epmap"])],
        );
        let got: Vec<(&str, &[String])> = ranked
            .iter()
            .map(|e| (e.asset.host.as_str(), e.reasons.as_slice()))
            .collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "ns");
        assert_eq!(got[0].1, ["runs dns"]);
        assert_eq!(got[1].1, ["runs msrpc"]);
    }

    #[test]
    fn no_targets_no_exposure() {
        let assets = parse_csv(INVENTORY, "x").unwrap().assets;
        assert!(rank(&assets, &[]).is_empty());
    }
}
