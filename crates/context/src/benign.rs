//! Known benign scanners: research projects and the user's own scanners, from lists
//! of IPs and CIDRs the user supplies. Their traffic is counted apart and never by
//! itself raises a warning (research scanners are a large share of darknet traffic).
//!
//! List format, one network per line, `#` starts a comment:
//!
//! ```text
//! # Example research project
//! 192.0.2.0/28      example-research
//! 198.51.100.7      own vulnerability scanner
//! 2001:db8:5::/48
//! ```
//!
//! The text after the address is the label shown in reports; without one, the
//! list's name (usually its file name) is the label.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One benign network with its label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenignNet {
    pub net: IpNet,
    pub label: String,
}

/// A line of a list that is not an address or network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Parses a list; bad lines are reported and the rest kept.
pub fn parse_list(text: &str, default_label: &str) -> (Vec<BenignNet>, Vec<LineError>) {
    let mut nets = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (addr, label) = match line.split_once(char::is_whitespace) {
            Some((a, l)) => (a, l.trim()),
            None => (line, ""),
        };
        let net = addr
            .parse::<IpNet>()
            .ok()
            .or_else(|| addr.parse::<IpAddr>().ok().map(IpNet::from));
        match net {
            Some(net) => nets.push(BenignNet {
                net: net.trunc(),
                label: if label.is_empty() {
                    default_label.to_string()
                } else {
                    label.to_string()
                },
            }),
            None => errors.push(LineError {
                line: i + 1,
                reason: format!("{addr:?} is not an IP address or CIDR network"),
            }),
        }
    }
    (nets, errors)
}

/// Fast membership test over many networks. IPv4 and IPv6 ranges are kept sorted
/// and disjoint, so a lookup is one binary search (the per-event cost when a list
/// is loaded). Hand-written: the ranges need labels, which the CIDR-set crates
/// do not carry.
#[derive(Clone, Debug, Default)]
pub struct BenignSet {
    v4: Vec<(u32, u32, usize)>,
    v6: Vec<(u128, u128, usize)>,
    labels: Vec<String>,
}

impl BenignSet {
    pub fn new(nets: &[BenignNet]) -> BenignSet {
        let mut set = BenignSet::default();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for n in nets {
            let label = match set.labels.iter().position(|l| *l == n.label) {
                Some(i) => i,
                None => {
                    set.labels.push(n.label.clone());
                    set.labels.len() - 1
                }
            };
            match n.net {
                IpNet::V4(v) => v4.push((u32::from(v.network()), u32::from(v.broadcast()), label)),
                IpNet::V6(v) => {
                    v6.push((u128::from(v.network()), u128::from(v.broadcast()), label))
                }
            }
        }
        set.v4 = disjoint(v4);
        set.v6 = disjoint(v6);
        set
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The label of the list that holds `ip`, if any.
    pub fn label(&self, ip: IpAddr) -> Option<&str> {
        let i = match ip {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(a)),
            },
        }?;
        self.labels.get(i).map(String::as_str)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.label(ip).is_some()
    }
}

/// Sorts ranges and drops those inside an earlier one (the first, widest, label
/// wins); partly overlapping ranges are cut so the result is disjoint.
fn disjoint<T: Ord + Copy + num_step::Step>(mut r: Vec<(T, T, usize)>) -> Vec<(T, T, usize)> {
    r.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out: Vec<(T, T, usize)> = Vec::with_capacity(r.len());
    for (lo, hi, l) in r {
        match out.last() {
            Some(&(_, phi, _)) if hi <= phi => {}
            Some(&(_, phi, _)) if lo <= phi => out.push((phi.next(), hi, l)),
            _ => out.push((lo, hi, l)),
        }
    }
    out
}

fn find<T: Ord + Copy>(r: &[(T, T, usize)], x: T) -> Option<usize> {
    let i = r.partition_point(|&(lo, _, _)| lo <= x);
    let &(_, hi, l) = r.get(i.checked_sub(1)?)?;
    (x <= hi).then_some(l)
}

mod num_step {
    /// The next integer (saturating); only used on values below an upper bound.
    pub trait Step {
        fn next(self) -> Self;
    }
    impl Step for u32 {
        fn next(self) -> Self {
            self.saturating_add(1)
        }
    }
    impl Step for u128 {
        fn next(self) -> Self {
            self.saturating_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_with_labels_and_errors() {
        let text = "# research\n192.0.2.0/28 example research\n198.51.100.7\n\nnot-an-ip x\n2001:db8:5::/48 # v6\n192.0.2.77/24\n";
        let (nets, errors) = parse_list(text, "research.txt");
        assert_eq!(nets.len(), 4);
        assert_eq!(nets[0].label, "example research");
        assert_eq!(nets[1].label, "research.txt");
        assert_eq!(nets[3].net.to_string(), "192.0.2.0/24", "host bits cleared");
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "line 5: \"not-an-ip\" is not an IP address or CIDR network"
        );
    }

    #[test]
    fn lookups() {
        let (nets, _) = parse_list(
            "192.0.2.0/28 a\n192.0.2.8/29 b\n192.0.2.12/24 c\n10.0.0.1 d\n2001:db8::/32 e\n",
            "x",
        );
        let s = BenignSet::new(&nets);
        let table = [
            ("192.0.2.3", Some("c")),
            ("192.0.2.200", Some("c")),
            ("192.0.3.1", None),
            ("10.0.0.1", Some("d")),
            ("10.0.0.2", None),
            ("2001:db8:1::5", Some("e")),
            ("2001:db9::1", None),
            ("::ffff:10.0.0.1", Some("d")),
        ];
        for (ip, want) in table {
            assert_eq!(s.label(ip.parse().unwrap()), want, "{ip}");
        }
        assert!(BenignSet::new(&[]).is_empty());
    }

    #[test]
    fn overlapping_ranges_agree_with_a_linear_scan() {
        let (nets, _) = parse_list(
            "10.0.0.0/8 a\n10.1.0.0/16 b\n10.255.255.0/24 c\n9.255.255.255 d\n11.0.0.0/31 e\n",
            "x",
        );
        let s = BenignSet::new(&nets);
        for ip in [
            "9.255.255.255",
            "10.0.0.0",
            "10.1.2.3",
            "10.255.255.255",
            "11.0.0.0",
            "11.0.0.1",
            "11.0.0.2",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let linear = nets.iter().any(|n| n.net.contains(&ip));
            assert_eq!(s.contains(ip), linear, "{ip}");
        }
    }
}
