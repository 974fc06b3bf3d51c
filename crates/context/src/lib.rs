//! Threat context: what a port is. For now a built-in table of service names (from the
//! IANA registry) and short notes for the ports most seen in Internet scanning; the
//! threat-context issue extends it with the system services database, user
//! overrides and advisories.

pub mod advisory;
pub mod assets;
pub mod benign;
mod enrich;
pub mod explain;
pub mod exposure;
pub mod ids;
pub mod knowledge;
pub mod mitigate;
pub mod patchday;
mod ports;
pub mod services;

pub use enrich::{roles_for_port, AlertContext, ContextData, ExposedAsset, PortNote, MAX_EXPOSED};

use scanwatch_event::Protocol;

/// What scanwatch knows about one (protocol, port) from its built-in table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// The IANA service name; `unknown` or `reserved` where IANA has none, `dynamic`
    /// in the IANA dynamic range, `-` when only a range note applies.
    pub name: &'static str,
    /// One sentence for an analyst (lowercase first, no final period).
    pub note: &'static str,
    /// Where the note comes from (advisory, RFC, vendor document, scan report).
    pub source: &'static str,
}

impl PortInfo {
    /// Whether `name` names a service: false for `-`, `dynamic` and the `unknown` /
    /// `reserved` placeholders of ports IANA has not named.
    pub fn is_named(&self) -> bool {
        !(self.name == "-"
            || self.name == "dynamic"
            || ports::PLACEHOLDER_NAMES.contains(&self.name))
    }
}

/// Looks up a port in the built-in table; ports without a row of their own get the
/// note of a known range (1025–5000/tcp: dynamic MS-RPC ports of Windows
/// 2000/2003/XP; 49152–65535: the IANA dynamic range, named `dynamic`).
/// See [`knowledge::PortKnowledge`] for the system services database and user
/// overrides on top of this table.
pub fn port_info(proto: Protocol, port: u16) -> Option<PortInfo> {
    let p = match proto {
        Protocol::Tcp => ports::Proto::Tcp,
        Protocol::Udp => ports::Proto::Udp,
        _ => return None,
    };
    if let Some(&(_, _, name, note, source)) = ports::row(p, port) {
        return Some(PortInfo { name, note, source });
    }
    ports::range(p, port).map(|&(_, _, _, name, note, source)| PortInfo { name, note, source })
}

/// The service name, or `-`.
pub fn service_name(proto: Protocol, port: u16) -> &'static str {
    port_info(proto, port).map_or("-", |i| i.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ports_are_known() {
        let i = port_info(Protocol::Tcp, 1025).unwrap();
        assert!(i.note.contains("RPC"), "{i:?}");
        assert!(i.source.contains("KB 929851"), "{i:?}");
        assert_eq!(service_name(Protocol::Tcp, 445), "microsoft-ds");
        assert_eq!(service_name(Protocol::Udp, 53), "domain");
        assert_eq!(service_name(Protocol::Tcp, 3389), "ms-wbt-server");
        assert_eq!(service_name(Protocol::Udp, 3389), "ms-wbt-server");
        assert_eq!(service_name(Protocol::Tcp, 60000), "dynamic");
        assert_eq!(service_name(Protocol::Tcp, 1), "tcpmux");
        assert_eq!(service_name(Protocol::Icmp, 0), "-");
    }

    #[test]
    fn table_lookups() {
        // (proto, port, name, note contains, source contains)
        let cases = [
            (Protocol::Tcp, 22, "ssh", "brute force", "RFC 4251"),
            (Protocol::Tcp, 445, "microsoft-ds", "SMB", "CVE-2017-0144"),
            (Protocol::Udp, 1900, "ssdp", "amplification", "TA14-017A"),
            (
                Protocol::Udp,
                47808,
                "bacnet",
                "building automation",
                "BACnet",
            ),
            (Protocol::Tcp, 37215, "unknown", "Huawei", "CVE-2017-17215"),
            (Protocol::Tcp, 1031, "-", "MS-RPC", "KB 929851"),
            (Protocol::Tcp, 5000, "commplex-main", "UPnP", "SANS"),
            (Protocol::Tcp, 4999, "-", "1025-5000", "KB 929851"),
            (Protocol::Tcp, 49152, "dynamic", "Vista", "KB 929851"),
            (
                Protocol::Udp,
                65535,
                "dynamic",
                "dynamic/private",
                "RFC 6335",
            ),
        ];
        for (proto, port, name, note, source) in cases {
            let i = port_info(proto, port).unwrap_or_else(|| panic!("{proto}/{port}"));
            assert_eq!(i.name, name, "{proto}/{port}");
            assert!(i.note.contains(note), "{proto}/{port}: {}", i.note);
            assert!(i.source.contains(source), "{proto}/{port}: {}", i.source);
        }
        assert_eq!(port_info(Protocol::Udp, 1031), None);
        assert_eq!(port_info(Protocol::Tcp, 5001), None);
        assert_eq!(service_name(Protocol::Tcp, 5001), "-");
        assert!(port_info(Protocol::Tcp, 22).unwrap().is_named());
        assert!(!port_info(Protocol::Tcp, 37215).unwrap().is_named());
        assert!(!port_info(Protocol::Tcp, 1031).unwrap().is_named());
        assert!(!port_info(Protocol::Tcp, 60000).unwrap().is_named());
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut seen = std::collections::HashSet::new();
        for (p, n, _, _, _) in ports::TABLE {
            assert!(seen.insert((*p as u8, *n)), "duplicate entry for port {n}");
        }
    }
}
