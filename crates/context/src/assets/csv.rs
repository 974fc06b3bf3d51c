//! The CSV asset inventory.
//!
//! A header row names the columns, in any order (case-insensitive; `-` or a blank may
//! stand for `_`). Only `host` is required; a column the parser does not know is an
//! error, so a typo cannot silently drop data. Lines starting with `#` are comments;
//! fields are trimmed; quoting follows RFC 4180 (a field with a comma needs quotes).
//!
//! | column | content | example |
//! |---|---|---|
//! | `host` | host name; when empty, the address is used as the name | `ns1.example.net` |
//! | `address` | one IPv4 or IPv6 address, or empty | `192.0.2.53`, `2001:db8::53` |
//! | `os` | operating system, free text, or empty | `Windows Server 2003` |
//! | `roles` | `;`-separated roles, normalized to lowercase canonical names: `dns`, `ad` (Active Directory / domain controller; `dc` is accepted), `http` (`web`), `ftp`, `mail`, `db`, `rdp`, `smb`, `vpn`, `file`; other roles are kept as written, lowercased | `ad;dns` |
//! | `open_ports` | `;`-separated open ports as `proto/port` (`tcp`, `udp` or `sctp`), `port/proto` (as nmap prints them), or a bare port meaning TCP | `tcp/53;udp/53;80` |
//! | `firewalled` | whether a separate firewall filters traffic to the host: `yes`/`true`/`1`, `no`/`false`/`0`, or empty (or `unknown`) when unknown | `no` |
//! | `zone` | network zone, lowercased; `internet`, `dmz`, `public` and `external` count as internet-facing | `dmz` |
//!
//! ```text
//! host,address,os,roles,open_ports,firewalled,zone
//! dc1.corp.example,10.0.0.10,Windows Server 2003,ad;dns,tcp/53;udp/53;tcp/88;tcp/135;tcp/389;tcp/1025,,internal
//! www1.example.net,192.0.2.80,Debian 12,dns;http;ftp,tcp/21;tcp/53;udp/53;tcp/80;tcp/443,no,dmz
//! ```
//!
//! A record with a bad value (address, port, firewalled) or the wrong number of fields
//! is skipped and reported with its record number (1 = first row after the header) and
//! line; every other record is still imported.

use std::net::IpAddr;

use super::{
    normalize_role, parse_port_proto, tidy_ports, tidy_roles, Asset, EntryError, EntryKind,
    EntryReason, FileError, OpenPort, Parsed,
};
use scanwatch_event::Protocol;

/// The known columns, in the documented order.
pub const CSV_COLUMNS: [&str; 7] = [
    "host",
    "address",
    "os",
    "roles",
    "open_ports",
    "firewalled",
    "zone",
];

const HOST: usize = 0;
const ADDRESS: usize = 1;
const OS: usize = 2;
const ROLES: usize = 3;
const OPEN_PORTS: usize = 4;
const FIREWALLED: usize = 5;
const ZONE: usize = 6;

/// Parses a CSV inventory (see the module documentation for the columns). `label`
/// becomes every asset's `source`, e.g. `csv:inventory.csv`.
pub fn parse_csv(bytes: &[u8], label: &str) -> Result<Parsed, FileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(bytes);
    let mut records = reader.byte_records();

    let header = match records.next() {
        None => return Err(FileError::Empty),
        Some(Err(e)) => return Err(FileError::Csv(e.to_string())),
        Some(Ok(h)) => h,
    };
    let columns = map_header(&header)?;

    let mut out = Parsed::default();
    for (i, rec) in records.enumerate() {
        let entry = i + 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                // Reading from memory with flexible records cannot fail in practice;
                // if it ever does, the reader's position is unreliable, so stop here.
                out.errors.push(EntryError {
                    kind: EntryKind::Record,
                    entry,
                    line: e.position().map(|p| p.line()),
                    reason: EntryReason::Csv(e.to_string()),
                });
                break;
            }
        };
        let line = rec.position().map(|p| p.line());
        let err = |reason| EntryError {
            kind: EntryKind::Record,
            entry,
            line,
            reason,
        };
        // A line of only blanks is read as one empty field: skip it like an empty line.
        if rec.len() == 1 && rec.get(0).is_some_and(|f| f.is_empty()) {
            continue;
        }
        if rec.len() != columns.len() {
            out.errors.push(err(EntryReason::FieldCount {
                expected: columns.len(),
                found: rec.len(),
            }));
            continue;
        }
        let mut fields: [&str; 7] = [""; 7];
        let mut utf8_errors = Vec::new();
        for (raw, &col) in rec.iter().zip(&columns) {
            match std::str::from_utf8(raw) {
                Ok(s) => fields[col] = s,
                Err(_) => utf8_errors.push(err(EntryReason::FieldUtf8 {
                    column: CSV_COLUMNS[col],
                })),
            }
        }
        if !utf8_errors.is_empty() {
            out.errors.extend(utf8_errors);
            continue;
        }
        match record_to_asset(&fields, label) {
            Ok(a) => out.assets.push(a),
            Err(reasons) => out.errors.extend(reasons.into_iter().map(err)),
        }
    }
    Ok(out)
}

/// Maps each header field to its column index, or fails on unknown, duplicate or
/// missing required columns.
fn map_header(header: &::csv::ByteRecord) -> Result<Vec<usize>, FileError> {
    let mut columns = Vec::with_capacity(header.len());
    let mut unknown = Vec::new();
    let mut seen = [false; 7];
    for raw in header.iter() {
        let Ok(name) = std::str::from_utf8(raw) else {
            return Err(FileError::HeaderUtf8);
        };
        let norm = name.to_ascii_lowercase().replace(['-', ' '], "_");
        match CSV_COLUMNS.iter().position(|c| *c == norm) {
            Some(i) if seen[i] => return Err(FileError::DuplicateColumn(name.to_string())),
            Some(i) => {
                seen[i] = true;
                columns.push(i);
            }
            None => unknown.push(name.to_string()),
        }
    }
    if !unknown.is_empty() {
        return Err(FileError::UnknownColumns(unknown));
    }
    if !seen[HOST] {
        return Err(FileError::MissingColumn("host"));
    }
    Ok(columns)
}

/// Builds one asset from its fields (indexed by column), or lists every bad field.
fn record_to_asset(f: &[&str; 7], label: &str) -> Result<Asset, Vec<EntryReason>> {
    let mut errors = Vec::new();

    let address = match f[ADDRESS] {
        "" => None,
        a => match parse_ip(a) {
            Some(ip) => Some(ip),
            None => {
                errors.push(EntryReason::BadAddress(a.to_string()));
                None
            }
        },
    };

    let mut open_ports = Vec::new();
    for tok in split_list(f[OPEN_PORTS]) {
        match parse_port_token(tok) {
            Ok(p) => open_ports.push(p),
            Err(why) => errors.push(EntryReason::BadPort {
                value: tok.to_string(),
                why,
            }),
        }
    }
    tidy_ports(&mut open_ports);

    let firewalled = match parse_bool(f[FIREWALLED]) {
        Ok(b) => b,
        Err(()) => {
            errors.push(EntryReason::BadFirewalled(f[FIREWALLED].to_string()));
            None
        }
    };

    let host = match (f[HOST], address) {
        ("", Some(ip)) => ip.to_string(),
        ("", None) => {
            if f[ADDRESS].is_empty() {
                errors.push(EntryReason::NoName);
            }
            String::new()
        }
        (h, _) => h.to_string(),
    };

    if !errors.is_empty() {
        return Err(errors);
    }

    let mut roles: Vec<String> = split_list(f[ROLES]).map(normalize_role).collect();
    tidy_roles(&mut roles);

    Ok(Asset {
        host,
        address,
        os: non_empty(f[OS]),
        roles,
        open_ports,
        firewalled,
        zone: non_empty(f[ZONE]).map(|z| z.to_lowercase()),
        source: label.to_string(),
    })
}

/// Items of a `;`- (or `,`-) separated list, trimmed, empty items dropped.
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split([';', ',']).map(str::trim).filter(|t| !t.is_empty())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// An IPv4 or IPv6 address, IPv6 optionally in brackets.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// `tcp/53`, `53/udp` or `53` (TCP).
fn parse_port_token(tok: &str) -> Result<OpenPort, &'static str> {
    let (proto, port) = match tok.split_once('/') {
        None => (Protocol::Tcp, tok),
        Some((a, b)) => {
            let (a, b) = (a.trim(), b.trim());
            if let Some(p) = parse_port_proto(a) {
                (p, b)
            } else if let Some(p) = parse_port_proto(b) {
                (p, a)
            } else {
                return Err("expected tcp/PORT, udp/PORT, sctp/PORT or PORT");
            }
        }
    };
    match port.parse::<u16>() {
        Ok(0) => Err("port must be 1 to 65535"),
        Ok(n) => Ok(OpenPort::new(proto, n)),
        Err(_) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Err("port must be 1 to 65535")
        }
        Err(_) => Err("port is not a number"),
    }
}

/// yes/no/true/false/1/0 (any case); empty or `unknown` is `None`.
fn parse_bool(s: &str) -> Result<Option<bool>, ()> {
    match s.to_ascii_lowercase().as_str() {
        "" | "unknown" => Ok(None),
        "yes" | "y" | "true" | "1" => Ok(Some(true)),
        "no" | "n" | "false" | "0" => Ok(Some(false)),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY: &[u8] = include_bytes!("../../testdata/assets/inventory.csv");

    fn errors(p: &Parsed) -> Vec<String> {
        p.errors.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn inventory_parses() {
        let p = parse_csv(INVENTORY, "csv:inventory.csv").unwrap();
        assert!(p.errors.is_empty(), "{:?}", errors(&p));
        assert_eq!(p.assets.len(), 8);
        let dc = p
            .assets
            .iter()
            .find(|a| a.host == "dc1.corp.example")
            .unwrap();
        assert_eq!(dc.roles, ["ad", "dns", "smb"]);
        assert_eq!(dc.address, Some("10.20.0.10".parse().unwrap()));
        assert_eq!(dc.firewalled, None);
        assert_eq!(dc.zone.as_deref(), Some("internal"));
        assert_eq!(dc.source, "csv:inventory.csv");
        assert!(dc.open_ports.contains(&OpenPort::new(Protocol::Tcp, 1025)));
        assert!(dc.open_ports.contains(&OpenPort::new(Protocol::Udp, 53)));

        let hosting = p
            .assets
            .iter()
            .find(|a| a.host == "hosting1.example.net")
            .unwrap();
        assert_eq!(hosting.roles, ["dns", "ftp", "http"]);
        assert_eq!(hosting.firewalled, Some(false));
        let ports: Vec<String> = hosting.open_ports.iter().map(|p| p.to_string()).collect();
        assert_eq!(ports, ["tcp/21", "tcp/53", "tcp/80", "tcp/443", "udp/53"]);

        let www = p
            .assets
            .iter()
            .find(|a| a.host == "www.example.net")
            .unwrap();
        assert_eq!(www.firewalled, Some(true));
        assert_eq!(www.address, Some("2001:db8:80::443".parse().unwrap()));

        // Empty host name: the address stands in.
        assert!(p.assets.iter().any(|a| a.host == "10.20.5.23"));
    }

    #[test]
    fn columns_in_any_order_bom_comments_and_blank_lines() {
        let text = "\u{feff}Zone, Open-Ports ,HOST,firewalled\n# a comment\n\n  \ndmz,\"tcp/80, 443/tcp; 53/udp\",web1,TRUE\n";
        let p = parse_csv(text.as_bytes(), "csv:x").unwrap();
        assert!(p.errors.is_empty(), "{:?}", errors(&p));
        assert_eq!(p.assets.len(), 1);
        let a = &p.assets[0];
        assert_eq!(a.host, "web1");
        assert_eq!(a.zone.as_deref(), Some("dmz"));
        assert_eq!(a.firewalled, Some(true));
        let ports: Vec<String> = a.open_ports.iter().map(|p| p.to_string()).collect();
        assert_eq!(ports, ["tcp/80", "tcp/443", "udp/53"]);
        assert_eq!(a.address, None);
        assert!(a.roles.is_empty());
    }

    #[test]
    fn bad_records_are_reported_and_the_rest_kept() {
        let text = "\
host,address,roles,open_ports,firewalled
good1,192.0.2.1,dns,tcp/53,no
badport,192.0.2.2,http,tcp/80;tcp/99999;udp/dns,no
badaddr,192.0.2.300,,,
badfw,192.0.2.4,,,maybe
toofew,192.0.2.5
good2,192.0.2.6,web,80,yes
,,dns,,
badproto,192.0.2.7,,icmp/8,
";
        let p = parse_csv(text.as_bytes(), "csv:t").unwrap();
        let hosts: Vec<&str> = p.assets.iter().map(|a| a.host.as_str()).collect();
        assert_eq!(hosts, ["good1", "good2"]);
        assert_eq!(p.assets[1].roles, ["http"]);
        assert_eq!(
            errors(&p),
            [
                r#"record 2 (line 3): bad port "tcp/99999": port must be 1 to 65535"#,
                r#"record 2 (line 3): bad port "udp/dns": port is not a number"#,
                r#"record 3 (line 4): bad address "192.0.2.300""#,
                r#"record 4 (line 5): bad firewalled value "maybe", expected yes, no, true, false, 1, 0 or empty"#,
                "record 5 (line 6): expected 5 fields, found 2",
                "record 7 (line 8): host and address are both empty",
                r#"record 8 (line 9): bad port "icmp/8": expected tcp/PORT, udp/PORT, sctp/PORT or PORT"#,
            ]
        );
    }

    #[test]
    fn file_errors() {
        assert_eq!(parse_csv(b"", "x"), Err(FileError::Empty));
        assert_eq!(parse_csv(b"# only a comment\n", "x"), Err(FileError::Empty));
        assert_eq!(
            parse_csv(b"address,zone\n192.0.2.1,dmz\n", "x"),
            Err(FileError::MissingColumn("host"))
        );
        let e = parse_csv(b"host,owner,Notes\nh,me,x\n", "x").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"unknown columns "owner", "Notes" (known columns: host, address, os, roles, open_ports, firewalled, zone)"#
        );
        assert_eq!(
            parse_csv(b"host,Host\n", "x"),
            Err(FileError::DuplicateColumn("Host".into()))
        );
        assert_eq!(parse_csv(b"host,\xff\n", "x"), Err(FileError::HeaderUtf8));
    }

    #[test]
    fn invalid_utf8_field_is_an_entry_error() {
        let p = parse_csv(b"host,os\nh1,\xff\xfe\nh2,Linux\n", "x").unwrap();
        assert_eq!(p.assets.len(), 1);
        assert_eq!(
            errors(&p),
            ["record 1 (line 2): column os is not valid utf-8"]
        );
    }

    #[test]
    fn no_panic_on_prefixes_and_garbage() {
        for end in 0..=INVENTORY.len() {
            let _ = parse_csv(&INVENTORY[..end], "x");
        }
        for garbage in [
            &b"\"\"\"\"\"\n\"\"\"\n"[..],
            b"host\n\"unterminated",
            b"\0\0\0,\0\n",
            b"host,address\n,[::1\n,[]\n",
            b"\r\r\r\n\n,,,,,,,,,,,,,,,,,\n",
        ] {
            let _ = parse_csv(garbage, "x");
        }
    }
}
