//! Assets from an nmap XML report (`nmap -oX`, format version 1.05 as written by
//! nmap 7.x).
//!
//! Each `<host>` whose `<status state>` is `up` (or that has no status) becomes one
//! asset; `<hosthint>` elements and hosts that are down are ignored.
//!
//! - **address**: the first `<address>` with `addrtype` `ipv4` or `ipv6` (MAC
//!   addresses are ignored).
//! - **host**: the first non-empty `<hostnames><hostname name>`, else the address.
//! - **os**: the `<os><osmatch name>` with the highest `accuracy` (the first of equals).
//! - **open ports**: each `<ports><port protocol portid>` whose `<state state>` is
//!   exactly `open` (`open|filtered` is not known to be open), with `<service name>`
//!   and `product`.
//! - **roles**, inferred from service names: `domain` → `dns`; `http*`, `https*` →
//!   `http`; `ftp`, `ftps` → `ftp`; `ms-wbt-server` → `rdp`; `microsoft-ds`,
//!   `netbios-ssn` → `smb`; `smtp`, `submission`, `imap`, `pop3` (and TLS variants) →
//!   `mail`; `mysql`, `ms-sql-s`, `postgresql`, `oracle-tns`, `mongodb` → `db`;
//!   `isakmp`, `openvpn`, `pptp` → `vpn`; `nfs` → `file`; `ssh` → `ssh`; and `ad`
//!   when Kerberos (`kerberos-sec` or tcp/88) and LDAP (`ldap` or tcp/389) are both
//!   open, or a product names Active Directory.
//! - **firewalled**: `Some(true)` when nmap saw filtered ports (an
//!   `<extraports state="filtered">` or a `<port>` whose state is `filtered`): something
//!   drops probes before they reach the host. Otherwise `None`, never `Some(false)`: a
//!   scan in which every port answered shows only that nothing filtered *the scanner's*
//!   probes, and the scanner may sit behind the firewall that Internet scanners face.
//! - **zone**: `None` (nmap cannot know it).
//!
//! A host with an unparsable address is skipped and reported; a port with a bad
//! protocol or port number is reported and the rest of its host kept. Errors count
//! `<host>` elements from 1, in document order.

use std::net::IpAddr;

use roxmltree::{Document, Node};

use super::{
    parse_port_proto, service_role, tidy_ports, tidy_roles, Asset, EntryError, EntryKind,
    EntryReason, FileError, OpenPort, Parsed,
};
use scanwatch_event::Protocol;

/// Parses an nmap XML report. `label` becomes every asset's `source`, e.g. `nmap`.
pub fn parse_nmap_xml(bytes: &[u8], label: &str) -> Result<Parsed, FileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| FileError::Utf8(e.valid_up_to()))?;
    let opts = roxmltree::ParsingOptions {
        // nmap writes `<!DOCTYPE nmaprun>`; roxmltree still guards against entity bombs.
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc =
        Document::parse_with_options(text, opts).map_err(|e| FileError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "nmaprun" {
        return Err(FileError::NotNmap(root.tag_name().name().to_string()));
    }

    let mut out = Parsed::default();
    for (i, host) in root
        .children()
        .filter(|n| n.has_tag_name("host"))
        .enumerate()
    {
        let entry = i + 1;
        let err = |node: Node, reason| EntryError {
            kind: EntryKind::Host,
            entry,
            line: Some(u64::from(doc.text_pos_at(node.range().start).row)),
            reason,
        };
        match host_to_asset(host, label, &mut |node, reason| {
            out.errors.push(err(node, reason))
        }) {
            Some(asset) => out.assets.push(asset),
            None => continue,
        }
    }
    Ok(out)
}

fn children<'a, 'input>(
    node: Node<'a, 'input>,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(move |n| n.has_tag_name(name))
}

fn child<'a, 'input>(node: Node<'a, 'input>, name: &'static str) -> Option<Node<'a, 'input>> {
    children(node, name).next()
}

/// One `<host>`; `None` when it is down or unusable (the latter reported through `report`).
fn host_to_asset(
    host: Node,
    label: &str,
    report: &mut dyn FnMut(Node, EntryReason),
) -> Option<Asset> {
    if let Some(state) = child(host, "status").and_then(|s| s.attribute("state")) {
        if state != "up" {
            return None;
        }
    }

    let mut address: Option<IpAddr> = None;
    for a in children(host, "address") {
        if !matches!(a.attribute("addrtype"), Some("ipv4" | "ipv6")) {
            continue;
        }
        let raw = a.attribute("addr").unwrap_or("");
        match raw.parse() {
            Ok(ip) => {
                address = Some(ip);
                break;
            }
            Err(_) => {
                report(a, EntryReason::BadAddress(raw.to_string()));
                return None;
            }
        }
    }

    let hostname = child(host, "hostnames")
        .into_iter()
        .flat_map(|h| children(h, "hostname"))
        .filter_map(|h| h.attribute("name"))
        .map(str::trim)
        .find(|n| !n.is_empty());
    let host_name = match (hostname, address) {
        (Some(n), _) => n.to_string(),
        (None, Some(ip)) => ip.to_string(),
        (None, None) => {
            report(host, EntryReason::NoAddress);
            return None;
        }
    };

    let mut open_ports = Vec::new();
    let mut filtered = false;
    if let Some(ports) = child(host, "ports") {
        filtered |= children(ports, "extraports").any(|e| e.attribute("state") == Some("filtered"));
        for p in children(ports, "port") {
            let proto_s = p.attribute("protocol").unwrap_or("");
            let port_s = p.attribute("portid").unwrap_or("");
            let Some(proto) = parse_port_proto(proto_s) else {
                report(
                    p,
                    EntryReason::BadPort {
                        value: format!("{proto_s}/{port_s}"),
                        why: "protocol is not tcp, udp or sctp",
                    },
                );
                continue;
            };
            let Ok(port) = port_s.parse::<u16>() else {
                report(
                    p,
                    EntryReason::BadPort {
                        value: format!("{proto_s}/{port_s}"),
                        why: "port is not a number from 0 to 65535",
                    },
                );
                continue;
            };
            match child(p, "state").and_then(|s| s.attribute("state")) {
                Some("open") => {}
                Some("filtered") => {
                    filtered = true;
                    continue;
                }
                _ => continue,
            }
            let service = child(p, "service");
            let attr = |name| {
                service
                    .and_then(|s| s.attribute(name))
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            open_ports.push(OpenPort {
                proto,
                port,
                service: attr("name"),
                product: attr("product"),
            });
        }
    }
    tidy_ports(&mut open_ports);

    let os = child(host, "os").and_then(|os| {
        let mut best: Option<(u32, &str)> = None;
        for m in children(os, "osmatch") {
            let Some(name) = m.attribute("name").map(str::trim).filter(|n| !n.is_empty()) else {
                continue;
            };
            let acc = m
                .attribute("accuracy")
                .and_then(|a| a.trim().parse::<u32>().ok())
                .unwrap_or(0);
            if best.is_none_or(|(b, _)| acc > b) {
                best = Some((acc, name));
            }
        }
        best.map(|(_, n)| n.to_string())
    });

    let mut roles = infer_roles(&open_ports);
    tidy_roles(&mut roles);

    Some(Asset {
        host: host_name,
        address,
        os,
        roles,
        open_ports,
        firewalled: filtered.then_some(true),
        zone: None,
        source: label.to_string(),
    })
}

/// Roles from the services on open ports (see the module documentation).
fn infer_roles(ports: &[OpenPort]) -> Vec<String> {
    let mut roles: Vec<String> = ports
        .iter()
        .filter_map(|p| p.service.as_deref())
        .filter_map(service_role)
        .filter(|r| !matches!(*r, "kerberos" | "ldap" | "msrpc"))
        .map(str::to_string)
        .collect();
    let has = |svc: &str, port: u16| {
        ports.iter().any(|p| {
            p.service.as_deref() == Some(svc) || (p.proto == Protocol::Tcp && p.port == port)
        })
    };
    let ad_product = ports.iter().any(|p| {
        p.product
            .as_deref()
            .is_some_and(|s| s.to_ascii_lowercase().contains("active directory"))
    });
    if (has("kerberos-sec", 88) && has("ldap", 389)) || ad_product {
        roles.push("ad".to_string());
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = include_bytes!("../../testdata/assets/nmap-sample.xml");

    fn wrap(hosts: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE nmaprun>\n<nmaprun scanner=\"nmap\" version=\"7.95\" xmloutputversion=\"1.05\">\n{hosts}\n</nmaprun>\n"
        )
    }

    #[test]
    fn sample_parses() {
        let p = parse_nmap_xml(SAMPLE, "nmap").unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let hosts: Vec<&str> = p.assets.iter().map(|a| a.host.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "dc1.corp.example",
                "hosting1.example.net",
                "www.example.net"
            ]
        );

        let dc = &p.assets[0];
        assert_eq!(dc.address, Some("10.20.0.10".parse().unwrap()));
        assert_eq!(
            dc.os.as_deref(),
            Some("Microsoft Windows Server 2003 SP1 or SP2")
        );
        assert_eq!(dc.roles, ["ad", "dns", "rdp", "smb"]);
        assert_eq!(dc.firewalled, None);
        assert_eq!(dc.zone, None);
        assert_eq!(dc.source, "nmap");
        assert_eq!(dc.open_ports.len(), 12);
        let p1025 = dc.open_ports.iter().find(|p| p.port == 1025).unwrap();
        assert_eq!(p1025.proto, Protocol::Tcp);
        assert_eq!(p1025.service.as_deref(), Some("msrpc"));
        assert_eq!(p1025.product.as_deref(), Some("Microsoft Windows RPC"));

        let hosting = &p.assets[1];
        assert_eq!(hosting.roles, ["dns", "ftp", "http", "ssh"]);
        assert_eq!(hosting.os.as_deref(), Some("Linux 4.15 - 5.19"));
        assert_eq!(hosting.firewalled, None);
        let ports: Vec<String> = hosting.open_ports.iter().map(|p| p.to_string()).collect();
        assert_eq!(ports, ["tcp/21", "tcp/22", "tcp/53", "tcp/80", "tcp/443"]);

        let www = &p.assets[2];
        assert_eq!(www.roles, ["http"]);
        assert_eq!(www.firewalled, Some(true));
    }

    #[test]
    fn down_hosts_names_ipv6_best_os_and_filtered_ports() {
        let xml = wrap(
            r#"<host><status state="down" reason="no-response" reason_ttl="0"/>
<address addr="192.0.2.9" addrtype="ipv4"/></host>
<host><status state="up" reason="echo-reply" reason_ttl="64"/>
<address addr="2001:db8::53" addrtype="ipv6"/>
<hostnames>
</hostnames>
<ports><port protocol="udp" portid="53"><state state="open" reason="udp-response" reason_ttl="64"/><service name="domain" method="table" conf="3"/></port>
<port protocol="tcp" portid="25"><state state="filtered" reason="no-response" reason_ttl="0"/><service name="smtp" method="table" conf="3"/></port>
<port protocol="udp" portid="161"><state state="open|filtered" reason="no-response" reason_ttl="0"/><service name="snmp" method="table" conf="3"/></port>
</ports>
<os><osmatch name="Low" accuracy="85" line="1"/><osmatch name="High" accuracy="91" line="2"/><osmatch name="Also high" accuracy="91" line="3"/></os>
</host>"#,
        );
        let p = parse_nmap_xml(xml.as_bytes(), "nmap").unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.assets.len(), 1);
        let a = &p.assets[0];
        assert_eq!(a.host, "2001:db8::53");
        assert_eq!(a.address, Some("2001:db8::53".parse().unwrap()));
        assert_eq!(a.os.as_deref(), Some("High"));
        assert_eq!(a.firewalled, Some(true));
        assert_eq!(a.roles, ["dns"]);
        let ports: Vec<String> = a.open_ports.iter().map(|p| p.to_string()).collect();
        assert_eq!(ports, ["udp/53"]);
    }

    #[test]
    fn bad_entries_are_reported() {
        let xml = wrap(
            r#"<host><status state="up"/><address addr="10.0.0.999" addrtype="ipv4"/></host>
<host><status state="up"/><address addr="10.0.0.2" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="70000"><state state="open"/></port>
<port protocol="icmp" portid="8"><state state="open"/></port>
<port protocol="tcp" portid="80"><state state="open"/><service name="http"/></port></ports></host>
<host><status state="up"/><address addr="00:11:22:33:44:55" addrtype="mac"/></host>"#,
        );
        let p = parse_nmap_xml(xml.as_bytes(), "nmap").unwrap();
        let errs: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errs,
            [
                r#"host 1 (line 4): bad address "10.0.0.999""#,
                r#"host 2 (line 6): bad port "tcp/70000": port is not a number from 0 to 65535"#,
                r#"host 2 (line 7): bad port "icmp/8": protocol is not tcp, udp or sctp"#,
                "host 3 (line 9): host has neither an ip address nor a hostname",
            ]
        );
        assert_eq!(p.assets.len(), 1);
        assert_eq!(p.assets[0].host, "10.0.0.2");
        assert_eq!(p.assets[0].roles, ["http"]);
    }

    #[test]
    fn file_errors() {
        assert!(matches!(
            parse_nmap_xml(b"", "nmap"),
            Err(FileError::Xml(_))
        ));
        assert!(matches!(
            parse_nmap_xml(b"not xml at all", "nmap"),
            Err(FileError::Xml(_))
        ));
        assert_eq!(
            parse_nmap_xml(b"<scan/>", "nmap"),
            Err(FileError::NotNmap("scan".into()))
        );
        assert_eq!(
            parse_nmap_xml(b"<a>\xff</a>", "nmap"),
            Err(FileError::Utf8(3))
        );
        let bomb = br#"<?xml version="1.0"?>
<!DOCTYPE nmaprun [
<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
<!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
]>
<nmaprun><host><hostnames><hostname name="&g;"/></hostnames></host></nmaprun>"#;
        assert!(parse_nmap_xml(bomb, "nmap").is_err());
    }

    #[test]
    fn truncated_sample_never_panics() {
        let end_tag = b"</nmaprun>";
        let complete = SAMPLE
            .windows(end_tag.len())
            .position(|w| w == end_tag)
            .unwrap()
            + end_tag.len();
        for end in 0..=SAMPLE.len() {
            let r = parse_nmap_xml(&SAMPLE[..end], "nmap");
            if end < complete {
                // Cut before `</nmaprun>` ends: a file error, not a partial import.
                let e = r.unwrap_err();
                assert!(!e.to_string().is_empty());
            } else {
                assert_eq!(r.unwrap().assets.len(), 3);
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut bytes = SAMPLE.to_vec();
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed as usize) % bytes.len();
            bytes[i] = (seed >> 32) as u8;
            let _ = parse_nmap_xml(&bytes, "nmap");
        }
    }
}
