//! Threat context: what a port is. For now a built-in table of service names (from the
//! IANA registry) and short notes for the ports most seen in Internet scanning; the
//! threat-context issue extends it with the system services database, user
//! overrides and advisories.

pub mod advisory;
pub mod assets;
pub mod benign;
pub mod explain;
pub mod exposure;
pub mod knowledge;
pub mod mitigate;
mod ports;
pub mod services;

use scanwatch_event::Protocol;

/// What scanwatch knows about one (protocol, port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortInfo {
    pub name: &'static str,
    /// One sentence for an analyst, empty when there is nothing to add to the name.
    pub note: &'static str,
}

/// Looks up a port. Unknown registered ports get no name; ports 49152–65535 are
/// reported as dynamic (ephemeral) ports.
pub fn port_info(proto: Protocol, port: u16) -> Option<PortInfo> {
    let p = match proto {
        Protocol::Tcp => ports::Proto::Tcp,
        Protocol::Udp => ports::Proto::Udp,
        _ => return None,
    };
    if let Some(&(_, _, name, note)) = ports::TABLE
        .iter()
        .find(|(pp, n, _, _)| *n == port && (*pp == p || *pp == ports::Proto::Both))
    {
        return Some(PortInfo { name, note });
    }
    (port >= 49152).then_some(PortInfo {
        name: "dynamic",
        note: "IANA dynamic/private port range",
    })
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
        assert_eq!(service_name(Protocol::Tcp, 445), "microsoft-ds");
        assert_eq!(service_name(Protocol::Udp, 53), "domain");
        assert_eq!(service_name(Protocol::Tcp, 3389), "ms-wbt-server");
        assert_eq!(service_name(Protocol::Udp, 3389), "ms-wbt-server");
        assert_eq!(service_name(Protocol::Tcp, 60000), "dynamic");
        assert_eq!(service_name(Protocol::Tcp, 1), "tcpmux");
        assert_eq!(service_name(Protocol::Icmp, 0), "-");
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut seen = std::collections::HashSet::new();
        for (p, n, _, _) in ports::TABLE {
            assert!(seen.insert((*p as u8, *n)), "duplicate entry for port {n}");
        }
    }
}
