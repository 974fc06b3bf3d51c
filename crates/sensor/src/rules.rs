//! Local rules applied on the sensor before anything leaves it: which events to keep
//! (ports, source networks, firewall actions) and how to anonymise target addresses,
//! so the centre never learns a sensor's internal addresses unless allowed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use scanwatch_event::{Action, Event};
use sha2::{Digest, Sha256};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("invalid port range {0:?}: use 22, 1000-2000 or 22,80,443")]
    Ports(String),
    #[error("invalid network {0:?}: use an address or CIDR such as 192.0.2.0/24")]
    Network(String),
    #[error("invalid action {0:?}: use accept, drop or reject")]
    Action(String),
    #[error("the anonymisation key must be at least 16 bytes")]
    ShortKey,
}

/// How target addresses leave the sensor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Anonymize {
    /// Unchanged.
    #[default]
    None,
    /// Replaced by the unspecified address (`0.0.0.0` / `::`): the centre still
    /// counts events and sources, but sees one target.
    Drop,
    /// A keyed, prefix-preserving permutation (the Crypto-PAn construction with
    /// SHA-256 as the pseudo-random function): addresses sharing a k-bit prefix stay
    /// sharing exactly a k-bit prefix, so distinct-target counts and subnet
    /// structure survive, but the real addresses are hidden from whoever lacks the
    /// key. Hand-written: no maintained crate implements it.
    Keyed(Vec<u8>),
}

/// The sensor's local rules. Empty rules keep everything.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// Only these destination ports (empty: all).
    pub include_ports: Vec<(u16, u16)>,
    pub exclude_ports: Vec<(u16, u16)>,
    pub exclude_sources: Vec<IpNet>,
    /// Only events with one of these actions (empty: all, including unknown).
    pub actions: Vec<Action>,
    pub anonymize: Anonymize,
    cache: HashMap<IpAddr, IpAddr>,
}

/// Parses `22`, `1000-2000`, `22,80,443-445`.
pub fn parse_ports(spec: &str) -> Result<Vec<(u16, u16)>, RuleError> {
    let bad = || RuleError::Ports(spec.to_string());
    spec.split(',')
        .map(|part| {
            let part = part.trim();
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b): (u16, u16) = (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            );
            if a > b {
                return Err(bad());
            }
            Ok((a, b))
        })
        .collect()
}

/// Parses an address or CIDR.
pub fn parse_network(spec: &str) -> Result<IpNet, RuleError> {
    spec.parse::<IpNet>()
        .or_else(|_| spec.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| RuleError::Network(spec.to_string()))
}

pub fn parse_action(spec: &str) -> Result<Action, RuleError> {
    match spec {
        "accept" => Ok(Action::Accept),
        "drop" => Ok(Action::Drop),
        "reject" => Ok(Action::Reject),
        _ => Err(RuleError::Action(spec.to_string())),
    }
}

fn in_ranges(ranges: &[(u16, u16)], p: u16) -> bool {
    ranges.iter().any(|&(a, b)| (a..=b).contains(&p))
}

/// Prefix-preserving keyed permutation of the bits of `bits` (big-endian, `n` bits).
fn permute(key: &[u8], bits: u128, n: u32) -> u128 {
    let mut out = 0u128;
    for i in 0..n {
        // The i-th output bit flips the input bit with a pseudo-random bit that
        // depends only on the key and the i bits before it.
        let prefix = if i == 0 { 0 } else { bits >> (n - i) };
        let mut h = Sha256::new();
        h.update(key);
        h.update(i.to_be_bytes());
        h.update(prefix.to_be_bytes());
        let flip = u128::from(h.finalize()[0] & 1);
        let bit = (bits >> (n - 1 - i)) & 1;
        out |= (bit ^ flip) << (n - 1 - i);
    }
    out
}

impl Rules {
    pub fn new(
        include_ports: Vec<(u16, u16)>,
        exclude_ports: Vec<(u16, u16)>,
        exclude_sources: Vec<IpNet>,
        actions: Vec<Action>,
        anonymize: Anonymize,
    ) -> Rules {
        Rules {
            include_ports,
            exclude_ports,
            exclude_sources,
            actions,
            anonymize,
            cache: HashMap::new(),
        }
    }

    /// Whether an event passes the rules.
    pub fn keep(&self, e: &Event) -> bool {
        if let Some(p) = e.dst_port {
            if !self.include_ports.is_empty() && !in_ranges(&self.include_ports, p) {
                return false;
            }
            if in_ranges(&self.exclude_ports, p) {
                return false;
            }
        }
        if self.exclude_sources.iter().any(|n| n.contains(&e.src)) {
            return false;
        }
        self.actions.is_empty() || self.actions.contains(&e.action)
    }

    /// Rewrites the event's target address as configured.
    pub fn apply(&mut self, e: &mut Event) {
        e.dst = match &self.anonymize {
            Anonymize::None => return,
            Anonymize::Drop => match e.dst {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            },
            Anonymize::Keyed(key) => {
                if let Some(a) = self.cache.get(&e.dst) {
                    *a
                } else {
                    let a = match e.dst {
                        IpAddr::V4(a) => {
                            IpAddr::V4(Ipv4Addr::from(
                                permute(key, u128::from(u32::from(a)), 32) as u32
                            ))
                        }
                        IpAddr::V6(a) => {
                            IpAddr::V6(Ipv6Addr::from(permute(key, u128::from(a), 128)))
                        }
                    };
                    if self.cache.len() >= 1 << 16 {
                        self.cache.clear();
                    }
                    self.cache.insert(e.dst, a);
                    a
                }
            }
        };
    }

    /// Keyed anonymisation from key bytes (at least 16).
    pub fn keyed(key: &[u8]) -> Result<Anonymize, RuleError> {
        if key.len() < 16 {
            return Err(RuleError::ShortKey);
        }
        Ok(Anonymize::Keyed(key.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_event::{Direction, Protocol, TcpFlags, Timestamp};

    fn ev(src: &str, dst: &str, port: u16, action: Action) -> Event {
        Event {
            time: Timestamp(0),
            proto: Protocol::Tcp,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: Some(1),
            dst_port: Some(port),
            flags: TcpFlags(TcpFlags::SYN),
            flags_known: true,
            icmp_type: None,
            direction: Direction::Inbound,
            action,
            count: 1,
        }
    }

    #[test]
    fn keep_rules_table() {
        let r = Rules {
            include_ports: parse_ports("1-1024,3389").unwrap(),
            exclude_ports: parse_ports("80").unwrap(),
            exclude_sources: vec![
                parse_network("192.0.2.0/24").unwrap(),
                parse_network("2001:db8::1").unwrap(),
            ],
            actions: vec![Action::Drop],
            ..Rules::default()
        };
        for (src, port, action, want) in [
            ("198.51.100.1", 22, Action::Drop, true),
            ("198.51.100.1", 3389, Action::Drop, true),
            ("198.51.100.1", 8080, Action::Drop, false),
            ("198.51.100.1", 80, Action::Drop, false),
            ("192.0.2.77", 22, Action::Drop, false),
            ("2001:db8::1", 22, Action::Drop, false),
            ("198.51.100.1", 22, Action::Accept, false),
        ] {
            assert_eq!(
                r.keep(&ev(src, "198.18.0.1", port, action)),
                want,
                "{src} {port} {action:?}"
            );
        }
        assert!(Rules::default().keep(&ev("192.0.2.1", "198.18.0.1", 1, Action::Unknown)));
        assert_eq!(parse_ports("10-5"), Err(RuleError::Ports("10-5".into())));
        assert_eq!(parse_ports("x"), Err(RuleError::Ports("x".into())));
        assert!(parse_network("300.1.1.1/8").is_err());
        assert!(parse_action("allow").is_err());
        assert_eq!(Rules::keyed(b"short"), Err(RuleError::ShortKey));
    }

    #[test]
    fn drop_and_keyed_anonymisation() {
        let mut r = Rules {
            anonymize: Anonymize::Drop,
            ..Rules::default()
        };
        let mut e = ev("192.0.2.1", "10.1.2.3", 22, Action::Drop);
        r.apply(&mut e);
        assert_eq!(e.dst, "0.0.0.0".parse::<IpAddr>().unwrap());

        let mut k1 = Rules {
            anonymize: Rules::keyed(b"0123456789abcdef").unwrap(),
            ..Rules::default()
        };
        let mut k2 = Rules {
            anonymize: Rules::keyed(b"fedcba9876543210").unwrap(),
            ..Rules::default()
        };
        let anon = |r: &mut Rules, dst: &str| {
            let mut e = ev("192.0.2.1", dst, 22, Action::Drop);
            r.apply(&mut e);
            e.dst
        };
        let a = anon(&mut k1, "10.1.2.3");
        assert_ne!(a, "10.1.2.3".parse::<IpAddr>().unwrap());
        assert_eq!(anon(&mut k1, "10.1.2.3"), a, "deterministic per key");
        assert_ne!(anon(&mut k2, "10.1.2.3"), a, "another key, another mapping");
        assert!(anon(&mut k1, "2001:db8::5").is_ipv6());
    }

    /// Addresses sharing exactly a k-bit prefix map to addresses sharing exactly a
    /// k-bit prefix, for every k.
    #[test]
    fn keyed_anonymisation_preserves_prefixes_exactly() {
        let key = b"0123456789abcdef";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..300 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let a = seed as u32;
            let k = (seed >> 40) as u32 % 32;
            let b = a ^ (1u32 << (31 - k)); // same first k bits, differs at bit k
            let (pa, pb) = (
                permute(key, u128::from(a), 32) as u32,
                permute(key, u128::from(b), 32) as u32,
            );
            assert_eq!((pa ^ pb).leading_zeros(), k, "a={a:08x} k={k}");
        }
    }
}
