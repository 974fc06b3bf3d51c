//! The user's asset inventory: which hosts they run, what those hosts serve and how
//! they are protected, read from a CSV inventory ([`parse_csv`]) or an nmap XML report
//! ([`parse_nmap_xml`]) and merged across imports ([`merge`]).
//!
//! Parsers are pure: they take the bytes of a file (the caller reads it) and a label
//! for [`Asset::source`], never panic, and return the assets they could read plus one
//! [`EntryError`] per bad record. A [`FileError`] means the file as a whole cannot be
//! read (no header, unknown columns, not XML, not an nmap report).

mod csv;
mod nmap;

use std::fmt;
use std::net::IpAddr;

use scanwatch_event::Protocol;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use self::csv::{parse_csv, CSV_COLUMNS};
pub use self::nmap::parse_nmap_xml;

/// One host of the user's network.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Asset {
    /// Host name; the address in text form when the source has no name.
    pub host: String,
    pub address: Option<IpAddr>,
    pub os: Option<String>,
    /// Normalized roles (see [`normalize_role`]), sorted, without duplicates.
    pub roles: Vec<String>,
    /// Open ports, sorted by (protocol, port), one entry per (protocol, port).
    pub open_ports: Vec<OpenPort>,
    /// Whether a separate firewall filters traffic to the host; `None` is unknown.
    pub firewalled: Option<bool>,
    /// Network zone in lowercase, e.g. `internet`, `dmz`, `internal`.
    pub zone: Option<String>,
    /// Where the record came from: `csv:FILE`, `nmap`, ... (the label the caller passed).
    pub source: String,
}

/// One open port of an asset.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OpenPort {
    /// `tcp`, `udp` or `sctp` (`ip-132`) in JSON.
    #[serde(with = "proto_serde")]
    pub proto: Protocol,
    pub port: u16,
    /// Service name as nmap reports it (`domain`, `http`, `msrpc`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Product nmap's version detection found (`Microsoft DNS`, `nginx`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
}

impl OpenPort {
    /// An open port with no service information.
    pub fn new(proto: Protocol, port: u16) -> OpenPort {
        OpenPort {
            proto,
            port,
            service: None,
            product: None,
        }
    }
}

impl fmt::Display for OpenPort {
    /// `tcp/53`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.proto, self.port)
    }
}

/// The assets a file yields, and what was wrong with the records that were skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    pub assets: Vec<Asset>,
    pub errors: Vec<EntryError>,
}

/// The file as a whole cannot be read; nothing is imported.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FileError {
    #[error("empty file, expected a header row")]
    Empty,
    #[error("missing required column {0}")]
    MissingColumn(&'static str),
    #[error("unknown column{} {} (known columns: {})", plural(.0.len()), quoted(.0), CSV_COLUMNS.join(", "))]
    UnknownColumns(Vec<String>),
    #[error("duplicate column {0:?}")]
    DuplicateColumn(String),
    #[error("header row is not valid utf-8")]
    HeaderUtf8,
    #[error("cannot read csv: {0}")]
    Csv(String),
    #[error("not valid utf-8 (first bad byte at offset {0})")]
    Utf8(usize),
    #[error("invalid xml: {0}")]
    Xml(String),
    #[error("not an nmap xml report: root element is <{0}>, expected <nmaprun>")]
    NotNmap(String),
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One record that was skipped (or, for nmap, one port of a host that was skipped).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{} {entry}{}: {reason}", kind_word(*.kind), line_suffix(*.line))]
pub struct EntryError {
    pub kind: EntryKind,
    /// 1-based number of the record (CSV, header not counted) or `<host>` element (nmap).
    pub entry: usize,
    /// 1-based line in the file where the record or element starts.
    pub line: Option<u64>,
    pub reason: EntryReason,
}

/// What an [`EntryError::entry`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A CSV data record.
    Record,
    /// An nmap `<host>` element.
    Host,
}

fn kind_word(k: EntryKind) -> &'static str {
    match k {
        EntryKind::Record => "record",
        EntryKind::Host => "host",
    }
}

fn line_suffix(line: Option<u64>) -> String {
    line.map_or_else(String::new, |l| format!(" (line {l})"))
}

/// Why a record was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EntryReason {
    #[error("expected {expected} fields, found {found}")]
    FieldCount { expected: usize, found: usize },
    #[error("column {column} is not valid utf-8")]
    FieldUtf8 { column: &'static str },
    #[error("host and address are both empty")]
    NoName,
    #[error("bad address {0:?}")]
    BadAddress(String),
    #[error("bad port {value:?}: {why}")]
    BadPort { value: String, why: &'static str },
    #[error("bad firewalled value {0:?}, expected yes, no, true, false, 1, 0 or empty")]
    BadFirewalled(String),
    #[error("host has neither an ip address nor a hostname")]
    NoAddress,
    #[error("cannot read record: {0}")]
    Csv(String),
}

/// Which asset two records describe: the address when there is one, else the host
/// name (case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    Addr(IpAddr),
    Host(String),
}

fn key(a: &Asset) -> Key {
    match a.address {
        Some(ip) => Key::Addr(ip),
        None => Key::Host(a.host.to_lowercase()),
    }
}

/// Merges a new import into an existing inventory.
///
/// Records describe the same asset when they have the same address, or, without an
/// address, the same host name (case-insensitively). The record from `new` replaces
/// the one in `existing` (and a later record in `new` replaces an earlier one), so
/// re-importing a file is idempotent: `merge(merge(a, n), n) == merge(a, n)`. The
/// result is sorted by host name (case-insensitively), then address.
pub fn merge(existing: Vec<Asset>, new: Vec<Asset>) -> Vec<Asset> {
    let mut by_key: std::collections::BTreeMap<Key, Asset> = std::collections::BTreeMap::new();
    for a in existing.into_iter().chain(new) {
        by_key.insert(key(&a), a);
    }
    let mut out: Vec<Asset> = by_key.into_values().collect();
    sort_assets(&mut out);
    out
}

/// Sorts by host name (case-insensitively, then exactly), then address.
pub(crate) fn sort_assets(assets: &mut [Asset]) {
    assets.sort_by(|a, b| {
        a.host
            .to_lowercase()
            .cmp(&b.host.to_lowercase())
            .then_with(|| a.host.cmp(&b.host))
            .then_with(|| a.address.cmp(&b.address))
    });
}

/// Normalizes a role name to its canonical lowercase form.
///
/// | canonical | also accepted |
/// |---|---|
/// | `ad` | `dc`, `domain controller`, `domain-controller`, `active directory`, `active-directory`, `activedirectory` |
/// | `dns` | `domain`, `dns server`, `nameserver`, `name server` |
/// | `http` | `web`, `www`, `https`, `web server`, `webserver` |
/// | `ftp` | `ftps`, `sftp` |
/// | `mail` | `smtp`, `email`, `e-mail`, `imap`, `pop3`, `mx` |
/// | `db` | `database`, `sql`, `mysql`, `mssql`, `postgres`, `postgresql`, `oracle` |
/// | `rdp` | `remote desktop`, `terminal server` |
/// | `smb` | `cifs`, `samba` |
/// | `file` | `file server`, `fileserver`, `nfs` |
/// | `vpn` | `ipsec`, `openvpn`, `wireguard` |
///
/// Any other role is kept, lowercased, with runs of blanks turned into one `-`.
pub fn normalize_role(role: &str) -> String {
    let lower = role
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let canonical = match lower.as_str() {
        "dc" | "domain controller" | "domain-controller" | "active directory"
        | "active-directory" | "activedirectory" => "ad",
        "domain" | "dns server" | "nameserver" | "name server" => "dns",
        "web" | "www" | "https" | "web server" | "webserver" => "http",
        "ftps" | "sftp" => "ftp",
        "smtp" | "email" | "e-mail" | "imap" | "pop3" | "mx" => "mail",
        "database" | "sql" | "mysql" | "mssql" | "postgres" | "postgresql" | "oracle" => "db",
        "remote desktop" | "terminal server" => "rdp",
        "cifs" | "samba" => "smb",
        "file server" | "fileserver" | "nfs" => "file",
        "ipsec" | "openvpn" | "wireguard" => "vpn",
        _ => return lower.replace(' ', "-"),
    };
    canonical.to_string()
}

/// The role (or, for `kerberos`, `ldap` and `msrpc`, the service family) a service
/// name stands for: nmap's names (`domain`, `ms-wbt-server`, `microsoft-ds`), IANA's
/// (`epmap`), and their TLS variants. `None` for names with no role.
pub fn service_role(service: &str) -> Option<&'static str> {
    let s = service.trim().to_ascii_lowercase();
    let s = s.strip_prefix("ssl/").unwrap_or(&s);
    Some(match s {
        "domain" | "dns" | "domain-s" => "dns",
        "http-rpc-epmap" | "ncacn_http" => "msrpc",
        _ if s.starts_with("http") => "http",
        "www" | "www-http" => "http",
        "ftp" | "ftps" | "ftp-data" | "ftps-data" => "ftp",
        "ms-wbt-server" | "rdp" => "rdp",
        "microsoft-ds" | "netbios-ssn" | "smb" | "cifs" => "smb",
        "smtp" | "smtps" | "submission" | "submissions" | "imap" | "imaps" | "pop3" | "pop3s" => {
            "mail"
        }
        "mysql" | "ms-sql-s" | "ms-sql-m" | "postgresql" | "oracle-tns" | "oracle" | "mongodb"
        | "mongod" => "db",
        "isakmp" | "ipsec-nat-t" | "openvpn" | "pptp" | "wireguard" => "vpn",
        "nfs" | "nfsd" => "file",
        "ssh" => "ssh",
        "kerberos-sec" | "kerberos" | "kpasswd5" | "kpasswd" => "kerberos",
        "ldap" | "ldaps" | "ldapssl" | "globalcatldap" | "globalcatldapssl" => "ldap",
        "msrpc" | "epmap" | "loc-srv" | "ms-rpc" => "msrpc",
        _ => return None,
    })
}

/// Parses a port protocol: `tcp`, `udp` or `sctp` (any case).
pub(crate) fn parse_port_proto(s: &str) -> Option<Protocol> {
    match Protocol::parse(s)? {
        p @ (Protocol::Tcp | Protocol::Udp | Protocol::Other(132)) => Some(p),
        _ => None,
    }
}

/// Sorts and deduplicates open ports by (protocol, port); the first entry wins.
pub(crate) fn tidy_ports(ports: &mut Vec<OpenPort>) {
    ports.sort_by_key(|p| (p.proto, p.port));
    ports.dedup_by_key(|p| (p.proto, p.port));
}

/// Sorts and deduplicates roles.
pub(crate) fn tidy_roles(roles: &mut Vec<String>) {
    roles.retain(|r| !r.is_empty());
    roles.sort();
    roles.dedup();
}

pub(crate) mod proto_serde {
    use scanwatch_event::Protocol;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &Protocol, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&p.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
        let s = String::deserialize(d)?;
        Protocol::parse(&s).ok_or_else(|| D::Error::custom(format!("unknown protocol {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(host: &str, addr: Option<&str>, source: &str) -> Asset {
        Asset {
            host: host.into(),
            address: addr.map(|a| a.parse().unwrap()),
            os: None,
            roles: vec![],
            open_ports: vec![],
            firewalled: None,
            zone: None,
            source: source.into(),
        }
    }

    #[test]
    fn merge_replaces_by_address_then_host_and_is_idempotent() {
        let existing = vec![
            asset("web", Some("192.0.2.10"), "csv:old"),
            asset("printer", None, "csv:old"),
            asset("alpha", Some("192.0.2.1"), "csv:old"),
        ];
        let new = vec![
            asset("web-renamed", Some("192.0.2.10"), "nmap"),
            asset("PRINTER", None, "nmap"),
            asset("zeta", Some("2001:db8::1"), "nmap"),
        ];
        let once = merge(existing.clone(), new.clone());
        let hosts: Vec<(&str, &str)> = once
            .iter()
            .map(|a| (a.host.as_str(), a.source.as_str()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("alpha", "csv:old"),
                ("PRINTER", "nmap"),
                ("web-renamed", "nmap"),
                ("zeta", "nmap"),
            ]
        );
        let twice = merge(once.clone(), new.clone());
        assert_eq!(once, twice);
        // Order of the inputs does not matter for the order of the output.
        let mut rev = existing;
        rev.reverse();
        assert_eq!(merge(rev, new), once);
    }

    #[test]
    fn service_roles() {
        assert_eq!(service_role("domain"), Some("dns"));
        assert_eq!(service_role("https-alt"), Some("http"));
        assert_eq!(service_role("ssl/http"), Some("http"));
        assert_eq!(service_role("http-rpc-epmap"), Some("msrpc"));
        assert_eq!(service_role("epmap"), Some("msrpc"));
        assert_eq!(service_role("globalcatLDAP"), Some("ldap"));
        assert_eq!(service_role("snmp"), None);
    }

    #[test]
    fn roles_normalize() {
        assert_eq!(normalize_role(" Domain  Controller "), "ad");
        assert_eq!(normalize_role("DNS"), "dns");
        assert_eq!(normalize_role("Web"), "http");
        assert_eq!(normalize_role("Print  Server"), "print-server");
    }

    #[test]
    fn asset_json_roundtrip() {
        let mut a = asset("ns1", Some("192.0.2.53"), "nmap");
        a.open_ports = vec![
            OpenPort {
                proto: Protocol::Udp,
                port: 53,
                service: Some("domain".into()),
                product: None,
            },
            OpenPort::new(Protocol::Other(132), 2905),
        ];
        let json = serde_json::to_string(&a).unwrap();
        assert!(
            json.contains(r#"{"proto":"udp","port":53,"service":"domain"}"#),
            "{json}"
        );
        let back: Asset = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn error_messages() {
        let e = EntryError {
            kind: EntryKind::Record,
            entry: 3,
            line: Some(4),
            reason: EntryReason::BadAddress("10.0.0.300".into()),
        };
        assert_eq!(
            e.to_string(),
            r#"record 3 (line 4): bad address "10.0.0.300""#
        );
        assert_eq!(
            FileError::UnknownColumns(vec!["owner".into()]).to_string(),
            r#"unknown column "owner" (known columns: host, address, os, roles, open_ports, firewalled, zone)"#
        );
    }
}
