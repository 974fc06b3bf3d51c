//! Mitigations: block rules for nftables, iptables, pf and Windows Firewall, scoped to
//! the ports and protocol of a warning. Every rule drops only *new* inbound
//! connections (and, for UDP, new flows), so replies to the host's own traffic pass.
//!
//! Text generation only; the nftables output is a complete file that `nft -c -f`
//! accepts (tested in a network namespace by `tests/netns/rules.sh`).

use serde::{Deserialize, Serialize};

/// One port range to block, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct BlockTarget {
    /// `tcp` or `udp`.
    pub proto: String,
    pub first: u16,
    pub last: u16,
    pub why: String,
}

impl BlockTarget {
    pub fn new(proto: &str, first: u16, last: u16, why: impl Into<String>) -> BlockTarget {
        BlockTarget {
            proto: proto.to_string(),
            first: first.min(last),
            last: first.max(last),
            why: why.into(),
        }
    }

    /// `445` or `1025-65535`.
    pub fn ports(&self, sep: char) -> String {
        if self.first == self.last {
            self.first.to_string()
        } else {
            format!("{}{sep}{}", self.first, self.last)
        }
    }

    /// `tcp/445`, `tcp/1025-65535`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.proto, self.ports('-'))
    }
}

/// The same block in four firewall dialects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub nftables: String,
    pub iptables: String,
    pub pf: String,
    pub windows: String,
}

/// Sorts targets and merges overlapping or adjacent ranges of one protocol (the
/// first reason is kept, the others appended). Protocols other than tcp and udp
/// are dropped: the rules are about ports.
pub fn merge(mut targets: Vec<BlockTarget>) -> Vec<BlockTarget> {
    targets.retain(|t| t.proto == "tcp" || t.proto == "udp");
    targets.sort_by(|a, b| (&a.proto, a.first, b.last).cmp(&(&b.proto, b.first, a.last)));
    let mut out: Vec<BlockTarget> = Vec::new();
    for t in targets {
        if let Some(prev) = out.last_mut() {
            if prev.proto == t.proto && u32::from(t.first) <= u32::from(prev.last) + 1 {
                prev.last = prev.last.max(t.last);
                if !prev.why.contains(&t.why) {
                    prev.why = format!("{}; {}", prev.why, t.why);
                }
                continue;
            }
        }
        out.push(t);
    }
    out
}

/// A comment safe inside double quotes in every dialect, at most 100 bytes
/// (nftables allows 128).
fn comment(s: &str) -> String {
    let mut c: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ./,:;()+-_=".contains(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    if c.len() > 100 {
        c.truncate(97);
        c.push_str("...");
    }
    c
}

/// Rules for `targets` (call [`merge`] first). Empty input gives empty rules.
pub fn rules(targets: &[BlockTarget]) -> Rules {
    if targets.is_empty() {
        return Rules::default();
    }
    let mut nft_rules = String::new();
    for t in targets {
        nft_rules.push_str(&format!(
            "\t\t{} dport {} ct state new counter drop comment \"scanwatch: {}\"\n",
            t.proto,
            t.ports('-'),
            comment(&t.why)
        ));
    }
    let nftables = format!(
        "#!/usr/sbin/nft -f\n\
         # scanwatch: drop new inbound connections to the ports of a warning.\n\
         # Load: nft -f FILE (replaces an earlier scanwatch table). Remove: nft delete table inet scanwatch\n\
         table inet scanwatch\n\
         delete table inet scanwatch\n\
         table inet scanwatch {{\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority -10; policy accept;\n\
         {nft_rules}\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority -10; policy accept;\n\
         {nft_rules}\
         \t}}\n\
         }}\n"
    );

    let mut iptables = String::from(
        "# scanwatch: drop new inbound connections to the ports of a warning (IPv4 and IPv6;\n\
         # FORWARD protects hosts behind this gateway).\n",
    );
    for cmd in ["iptables", "ip6tables"] {
        for chain in ["INPUT", "FORWARD"] {
            for t in targets {
                iptables.push_str(&format!(
                    "{cmd} -I {chain} -p {} --dport {} -m conntrack --ctstate NEW -m comment --comment \"scanwatch: {}\" -j DROP\n",
                    t.proto,
                    t.ports(':'),
                    comment(&t.why)
                ));
            }
        }
    }

    let mut pf = String::from(
        "# scanwatch: add to /etc/pf.conf before the pass rules, then: pfctl -f /etc/pf.conf\n\
         # pf matches replies by state before rules, so only new inbound connections are blocked.\n",
    );
    for t in targets {
        pf.push_str(&format!(
            "block drop in quick proto {} from any to any port {} label \"scanwatch: {}\"\n",
            t.proto,
            t.ports(':'),
            comment(&t.label())
        ));
    }

    let mut windows = String::from(
        "rem scanwatch: run in an elevated prompt; remove with: netsh advfirewall firewall delete rule name=\"NAME\"\n",
    );
    for t in targets {
        windows.push_str(&format!(
            "netsh advfirewall firewall add rule name=\"scanwatch block {} {}\" dir=in action=block protocol={} localport={}\n",
            t.proto.to_uppercase(),
            t.ports('-'),
            t.proto.to_uppercase(),
            t.ports('-')
        ));
    }
    Rules {
        nftables,
        iptables,
        pf,
        windows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn merges_ranges() {
        let m = merge(vec![
            BlockTarget::new("tcp", 1025, 1025, "surge port"),
            BlockTarget::new("tcp", 445, 445, "smb exploits"),
            BlockTarget::new("tcp", 1025, 65535, "dynamic rpc"),
            BlockTarget::new("udp", 53, 53, "dns"),
            BlockTarget::new("tcp", 139, 139, "netbios"),
            BlockTarget::new("icmp", 0, 0, "no ports"),
            BlockTarget::new("tcp", 446, 446, "next to 445"),
        ]);
        let labels: Vec<String> = m.iter().map(BlockTarget::label).collect();
        assert_eq!(
            labels,
            ["tcp/139", "tcp/445-446", "tcp/1025-65535", "udp/53"]
        );
        assert_eq!(m[2].why, "dynamic rpc; surge port");
    }

    #[test]
    fn seed_rules() {
        let r = rules(&merge(vec![
            BlockTarget::new("tcp", 1025, 65535, "dynamic MS-RPC ports (\"above 1024\")"),
            BlockTarget::new("tcp", 445, 445, "SMB: public exploits use it"),
        ]));
        expect![[r#"
            #!/usr/sbin/nft -f
            # scanwatch: drop new inbound connections to the ports of a warning.
            # Load: nft -f FILE (replaces an earlier scanwatch table). Remove: nft delete table inet scanwatch
            table inet scanwatch
            delete table inet scanwatch
            table inet scanwatch {
            	chain input {
            		type filter hook input priority -10; policy accept;
            		tcp dport 445 ct state new counter drop comment "scanwatch: SMB: public exploits use it"
            		tcp dport 1025-65535 ct state new counter drop comment "scanwatch: dynamic MS-RPC ports ( above 1024 )"
            	}
            	chain forward {
            		type filter hook forward priority -10; policy accept;
            		tcp dport 445 ct state new counter drop comment "scanwatch: SMB: public exploits use it"
            		tcp dport 1025-65535 ct state new counter drop comment "scanwatch: dynamic MS-RPC ports ( above 1024 )"
            	}
            }
        "#]]
        .assert_eq(&r.nftables);
        assert!(r
            .iptables
            .contains("iptables -I INPUT -p tcp --dport 1025:65535 -m conntrack --ctstate NEW"));
        assert!(r
            .iptables
            .contains("ip6tables -I FORWARD -p tcp --dport 445 "));
        assert!(r
            .pf
            .contains("block drop in quick proto tcp from any to any port 1025:65535 label"));
        assert!(r.windows.contains(
            "netsh advfirewall firewall add rule name=\"scanwatch block TCP 445\" dir=in action=block protocol=TCP localport=445"
        ));
        assert_eq!(rules(&[]), Rules::default());
    }

    #[test]
    fn comments_are_sanitised_and_bounded() {
        let c = comment(&format!("a\"b'c\\d;`$(rm){}", "x".repeat(200)));
        assert!(c.len() <= 100);
        assert!(!c.contains(['"', '\'', '\\', '`', '$']));
    }
}
