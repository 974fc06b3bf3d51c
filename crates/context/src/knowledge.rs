//! Port knowledge in layers: the user's overrides, then the built-in table (names,
//! notes and sources for the most scanned ports), then the system services database
//! (names for every other registered port), then the built-in ranges (Windows
//! dynamic MS-RPC ports, the IANA dynamic range). Validation of the overrides file
//! happens here, without I/O; the CLI reads the files.
//!
//! # The overrides file (`ports.toml` in the data directory)
//!
//! ```toml
//! # scanwatch port overrides: names and notes of your own for ports.
//! version = 1                     # required; the only version there is
//!
//! [[port]]                        # one table per port or range
//! proto = "tcp"                   # "tcp", "udp" or "both"
//! port = 8443
//! name = "vpn-portal"             # shown as the service name
//! note = "our SSL VPN portal; a surge here means credential stuffing"
//! source = "network team wiki"    # optional: where the note comes from
//!
//! [[port]]
//! proto = "tcp"
//! ports = "1025-5000"             # a range instead of a single port
//! note = "legacy Windows 2003 servers still expose RPC here"
//! ```
//!
//! Rules:
//! - `version` must be `1`; unknown keys anywhere are errors (a typo never passes
//!   silently).
//! - Each `[[port]]` has `proto`, exactly one of `port` (0–65535) or `ports`
//!   (`"first-last"`), and at least one of `name` and `note`. `source` defaults to
//!   `user override` when the entry gives a note.
//! - A field the entry leaves out keeps what scanwatch knew: an entry with only a
//!   `name` keeps the built-in note. `note = ""` removes the note (and its source).
//! - `name`: no spaces or control characters, at most 64 characters. `note` and
//!   `source`: one line each, at most 500 characters.
//! - A single port wins over a range; of overlapping ranges the narrowest wins
//!   (the later entry on a tie). The same port (or range) twice is an error.
//!
//! ```
//! use scanwatch_context::knowledge::{parse_overrides, Origin, PortKnowledge};
//! use scanwatch_event::Protocol;
//!
//! let o = parse_overrides("version = 1\n[[port]]\nproto = \"tcp\"\nport = 8443\nname = \"vpn-portal\"\n").unwrap();
//! let k = PortKnowledge::builtin().with_overrides(&o);
//! let f = k.info(Protocol::Tcp, 8443).unwrap();
//! assert_eq!((f.name.as_str(), f.origin), ("vpn-portal", Origin::User));
//! assert!(f.note.contains("HTTPS"), "the built-in note stays");
//! assert_eq!(k.name(Protocol::Tcp, 1), "tcpmux");
//! ```

use std::collections::HashMap;
use std::fmt;

use scanwatch_event::Protocol;
use serde::{Deserialize, Serialize};

use crate::ports::{self, Proto};
use crate::services;

/// Source given to a services-database entry.
pub const SERVICES_SOURCE: &str = "system services database";
/// Source given to a user's note that names none.
pub const USER_SOURCE: &str = "user override";
/// Longest name in an override.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest note or source in an override.
pub const MAX_TEXT_CHARS: usize = 500;

/// Which layer an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The built-in table or one of its ranges.
    Builtin,
    /// The system services database.
    Services,
    /// The user's overrides.
    User,
}

impl Origin {
    /// `builtin`, `services` or `user`.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Builtin => "builtin",
            Origin::Services => "services",
            Origin::User => "user",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What is known about one (protocol, port).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortFact {
    /// Service name; `-` when only a note is known (e.g. a range note).
    pub name: String,
    /// One sentence for an analyst; may be empty.
    pub note: String,
    /// Where the note comes from; may be empty when the note is.
    pub source: String,
    /// The layer whose entry was used: `user` if an override applies, else
    /// `builtin` if the table has a row for the port, else `services` if the
    /// services database names it, else `builtin` (a range).
    pub origin: Origin,
}

/// The built-in table plus, optionally, the system services database and the
/// user's overrides. `Default` is the same as [`builtin`](Self::builtin).
#[derive(Clone, Debug, Default)]
pub struct PortKnowledge {
    services: HashMap<(Proto, u16), ServiceName>,
    user_ports: HashMap<(Proto, u16), UserFact>,
    /// (proto, first, last, fact), in file order.
    user_ranges: Vec<(Proto, u16, u16, UserFact)>,
}

#[derive(Clone, Debug)]
struct ServiceName {
    name: String,
    comment: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct UserFact {
    name: Option<String>,
    note: Option<String>,
    source: Option<String>,
}

impl PortKnowledge {
    /// The built-in table alone.
    pub fn builtin() -> Self {
        Self::default()
    }

    /// Adds the system services database: names (and, as note, comments) for
    /// registered ports that the built-in table has no name for. Only `tcp` and
    /// `udp` entries count; the first entry for a port wins, as in
    /// `getservbyport`. A second call adds to the first.
    pub fn with_services(mut self, services: &services::Parsed) -> Self {
        for e in &services.entries {
            let proto = match e.proto.as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => continue,
            };
            self.services
                .entry((proto, e.port))
                .or_insert_with(|| ServiceName {
                    name: e.name.clone(),
                    comment: e.comment.clone(),
                });
        }
        self
    }

    /// Adds the user's overrides; they win over everything else. Entries that
    /// [`Overrides::validate`] would refuse are skipped (use [`parse_overrides`] to
    /// report them). A later call wins over an earlier one.
    pub fn with_overrides(mut self, o: &Overrides) -> Self {
        for entry in &o.port {
            let Ok(c) = check_entry(entry) else { continue };
            let fact = UserFact {
                name: entry.name.clone(),
                note: entry.note.clone(),
                source: entry.source.clone(),
            };
            for &proto in c.protos {
                match c.ports {
                    Ports::One(port) => {
                        self.user_ports.insert((proto, port), fact.clone());
                    }
                    Ports::Range(first, last) => {
                        self.user_ranges.push((proto, first, last, fact.clone()));
                    }
                }
            }
        }
        self
    }

    /// Everything known about a port; `None` for protocols without ports and for
    /// ports no layer knows.
    pub fn info(&self, proto: Protocol, port: u16) -> Option<PortFact> {
        let p = match proto {
            Protocol::Tcp => Proto::Tcp,
            Protocol::Udp => Proto::Udp,
            _ => return None,
        };
        let base = self.base(p, port);
        let Some(user) = self.user(p, port) else {
            return base;
        };
        let name = user
            .name
            .clone()
            .or_else(|| base.as_ref().map(|b| b.name.clone()))
            .unwrap_or_else(|| "-".to_string());
        let (note, source) = match &user.note {
            Some(note) => {
                let default = if note.is_empty() { "" } else { USER_SOURCE };
                (
                    note.clone(),
                    user.source.clone().unwrap_or_else(|| default.into()),
                )
            }
            None => {
                let (note, source) = base.map(|b| (b.note, b.source)).unwrap_or_default();
                (note, user.source.clone().unwrap_or(source))
            }
        };
        Some(PortFact {
            name,
            note,
            source,
            origin: Origin::User,
        })
    }

    /// The service name, or `-` when unknown.
    pub fn name(&self, proto: Protocol, port: u16) -> String {
        self.info(proto, port)
            .map_or_else(|| "-".to_string(), |f| f.name)
    }

    /// The override for a port: a single port first, else the narrowest range
    /// holding it (the later one on a tie).
    fn user(&self, p: Proto, port: u16) -> Option<&UserFact> {
        if let Some(f) = self.user_ports.get(&(p, port)) {
            return Some(f);
        }
        let mut best: Option<(u16, &UserFact)> = None;
        for (rp, first, last, f) in &self.user_ranges {
            if *rp == p && (*first..=*last).contains(&port) {
                let width = last - first;
                if best.is_none_or(|(w, _)| width <= w) {
                    best = Some((width, f));
                }
            }
        }
        best.map(|(_, f)| f)
    }

    /// What the built-in table, the services database and the ranges know.
    fn base(&self, p: Proto, port: u16) -> Option<PortFact> {
        let svc = self.services.get(&(p, port));
        if let Some(&(_, _, name, note, source)) = ports::row(p, port) {
            let name = match svc {
                Some(s) if ports::PLACEHOLDER_NAMES.contains(&name) => s.name.clone(),
                _ => name.to_string(),
            };
            return Some(PortFact {
                name,
                note: note.into(),
                source: source.into(),
                origin: Origin::Builtin,
            });
        }
        let range = ports::range(p, port);
        if let Some(s) = svc {
            let (note, source) = match (range, &s.comment) {
                (Some(&(_, _, _, _, note, source)), _) => (note.to_string(), source.to_string()),
                (None, Some(c)) => (c.clone(), SERVICES_SOURCE.to_string()),
                (None, None) => (String::new(), String::new()),
            };
            return Some(PortFact {
                name: s.name.clone(),
                note,
                source,
                origin: Origin::Services,
            });
        }
        range.map(|&(_, _, _, name, note, source)| PortFact {
            name: name.into(),
            note: note.into(),
            source: source.into(),
            origin: Origin::Builtin,
        })
    }
}

/// The overrides file. See the [module documentation](self) for the format.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Must be 1.
    pub version: u32,
    #[serde(default)]
    pub port: Vec<PortOverride>,
}

/// One `[[port]]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortOverride {
    /// `tcp`, `udp` or `both` (any case).
    pub proto: String,
    /// A single port; exactly one of `port` and `ports` is given.
    #[serde(default)]
    pub port: Option<u16>,
    /// A range `"first-last"`.
    #[serde(default)]
    pub ports: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

/// Why an overrides file was refused. Messages are lowercase and name the bad
/// entry; the caller prefixes the file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OverrideError {
    /// Not TOML, or not the expected keys and types (unknown field, wrong type,
    /// missing `version`); `line` is 1-based where known.
    Syntax {
        line: Option<usize>,
        message: String,
    },
    /// A `version` other than 1.
    Version(u32),
    /// A `[[port]]` entry (1-based, in file order) that is not valid.
    Entry { entry: usize, reason: String },
}

impl fmt::Display for OverrideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverrideError::Syntax {
                line: Some(line),
                message,
            } => write!(f, "line {line}: {message}"),
            OverrideError::Syntax {
                line: None,
                message,
            } => f.write_str(message),
            OverrideError::Version(v) => {
                write!(
                    f,
                    "unsupported version {v} (this scanwatch reads version 1)"
                )
            }
            OverrideError::Entry { entry, reason } => write!(f, "[[port]] entry {entry}: {reason}"),
        }
    }
}

impl std::error::Error for OverrideError {}

impl Overrides {
    /// Checks the version and every entry; the first problem is the error.
    pub fn validate(&self) -> Result<(), OverrideError> {
        if self.version != 1 {
            return Err(OverrideError::Version(self.version));
        }
        let mut seen: HashMap<(Proto, Ports), usize> = HashMap::new();
        for (i, entry) in self.port.iter().enumerate() {
            let n = i + 1;
            let c =
                check_entry(entry).map_err(|reason| OverrideError::Entry { entry: n, reason })?;
            for &proto in c.protos {
                if let Some(first) = seen.insert((proto, c.ports), n) {
                    return Err(OverrideError::Entry {
                        entry: n,
                        reason: format!(
                            "{} {} is already given by entry {first}",
                            proto_name(proto),
                            c.ports
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Parses and validates an overrides file (see the [module documentation](self)).
pub fn parse_overrides(text: &str) -> Result<Overrides, OverrideError> {
    let o: Overrides = toml::from_str(text).map_err(|e| OverrideError::Syntax {
        line: e
            .span()
            .and_then(|s| text.get(..s.start))
            .map(|before| before.matches('\n').count() + 1),
        message: e.message().trim_end().to_string(),
    })?;
    o.validate()?;
    Ok(o)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Ports {
    One(u16),
    Range(u16, u16),
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ports::One(p) => write!(f, "port {p}"),
            Ports::Range(a, b) => write!(f, "ports {a}-{b}"),
        }
    }
}

struct Checked {
    protos: &'static [Proto],
    ports: Ports,
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Both => "both",
    }
}

fn check_entry(e: &PortOverride) -> Result<Checked, String> {
    let protos: &'static [Proto] = if e.proto.eq_ignore_ascii_case("tcp") {
        &[Proto::Tcp]
    } else if e.proto.eq_ignore_ascii_case("udp") {
        &[Proto::Udp]
    } else if e.proto.eq_ignore_ascii_case("both") {
        &[Proto::Tcp, Proto::Udp]
    } else {
        return Err(format!(
            "unknown proto {:?} (expected \"tcp\", \"udp\" or \"both\")",
            e.proto
        ));
    };
    let ports = match (e.port, &e.ports) {
        (Some(_), Some(_)) => return Err("give either port or ports, not both".into()),
        (None, None) => return Err("missing port (or ports = \"first-last\")".into()),
        (Some(p), None) => Ports::One(p),
        (None, Some(r)) => parse_range(r)?,
    };
    let at = format!("{} {ports}", e.proto.to_ascii_lowercase());
    if e.name.is_none() && e.note.is_none() {
        return Err(format!("{at}: sets neither name nor note"));
    }
    if let Some(name) = &e.name {
        if name.is_empty() {
            return Err(format!("{at}: name is empty"));
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{at}: name {name:?} contains spaces or control characters"
            ));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(format!(
                "{at}: name is longer than {MAX_NAME_CHARS} characters"
            ));
        }
    }
    for (field, value) in [("note", &e.note), ("source", &e.source)] {
        if let Some(v) = value {
            if v.chars().any(char::is_control) {
                return Err(format!(
                    "{at}: {field} must be one line without control characters"
                ));
            }
            if v.chars().count() > MAX_TEXT_CHARS {
                return Err(format!(
                    "{at}: {field} is longer than {MAX_TEXT_CHARS} characters"
                ));
            }
        }
    }
    Ok(Checked { protos, ports })
}

fn parse_range(r: &str) -> Result<Ports, String> {
    let bad = || format!("ports {r:?} is not a range like \"1025-5000\"");
    let (a, b) = r.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<u16>()
            .map_err(|_| format!("ports {r:?}: {s} is above 65535"))
    };
    let (first, last) = (num(a)?, num(b)?);
    if first > last {
        return Err(format!("ports {r:?} ends before it starts"));
    }
    Ok(Ports::Range(first, last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::parse_services;

    const SERVICES: &str = "\
ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
zabbix-agent\t10050/tcp\t\t\t# Zabbix Agent
zabbix-trapper\t10051/tcp\t\t\t# Zabbix Trapper
iad2\t\t1031/tcp
nocomment\t7777/udp
dup\t\t10050/tcp
sctp-only\t9999/sctp
unknown-port\t37215/tcp\t\t# some local name
";

    const OVERRIDES: &str = r#"
version = 1

[[port]]
proto = "tcp"
port = 8443
name = "vpn-portal"

[[port]]
proto = "both"
port = 10051
note = "our monitoring; expected from 192.0.2.0/24 only"
source = "ops runbook"

[[port]]
proto = "tcp"
ports = "1025-5000"
note = "legacy servers"

[[port]]
proto = "tcp"
ports = "3000-3100"
name = "grafana-farm"

[[port]]
proto = "UDP"
port = 53
note = ""
"#;

    fn knowledge() -> PortKnowledge {
        PortKnowledge::builtin()
            .with_services(&parse_services(SERVICES))
            .with_overrides(&parse_overrides(OVERRIDES).unwrap())
    }

    #[test]
    fn layered_lookups() {
        let k = knowledge();
        // (proto, port, name, note, source, origin)
        let cases: &[(Protocol, u16, &str, &str, &str, Origin)] = &[
            // built-in row
            (
                Protocol::Tcp,
                22,
                "ssh",
                "brute force",
                "RFC 4251",
                Origin::Builtin,
            ),
            (
                Protocol::Udp,
                47808,
                "bacnet",
                "building automation",
                "BACnet",
                Origin::Builtin,
            ),
            // services fill a gap, with their comment as note
            (
                Protocol::Tcp,
                10050,
                "zabbix-agent",
                "Zabbix Agent",
                SERVICES_SOURCE,
                Origin::Services,
            ),
            (Protocol::Udp, 7777, "nocomment", "", "", Origin::Services),
            // services name a placeholder row; the built-in note stays
            (
                Protocol::Tcp,
                37215,
                "unknown-port",
                "Huawei",
                "CVE-2017-17215",
                Origin::Builtin,
            ),
            // user wins: name only keeps the built-in note
            (
                Protocol::Tcp,
                8443,
                "vpn-portal",
                "HTTPS",
                "SANS",
                Origin::User,
            ),
            // user note over services name
            (
                Protocol::Tcp,
                10051,
                "zabbix-trapper",
                "our monitoring",
                "ops runbook",
                Origin::User,
            ),
            (
                Protocol::Udp,
                10051,
                "-",
                "our monitoring",
                "ops runbook",
                Origin::User,
            ),
            // user range note, names from below
            (
                Protocol::Tcp,
                1031,
                "iad2",
                "legacy servers",
                USER_SOURCE,
                Origin::User,
            ),
            (
                Protocol::Tcp,
                1433,
                "ms-sql-s",
                "legacy servers",
                USER_SOURCE,
                Origin::User,
            ),
            // narrower user range wins for the name; the note comes from below it
            (
                Protocol::Tcp,
                3050,
                "grafana-farm",
                "MS-RPC",
                "KB 929851",
                Origin::User,
            ),
            // user clears a note
            (Protocol::Udp, 53, "domain", "", "", Origin::User),
            // range notes without user or services
            (Protocol::Tcp, 1031, "iad2", "legacy", "user", Origin::User),
            (Protocol::Udp, 1031, "", "", "", Origin::Builtin),
            (
                Protocol::Tcp,
                60000,
                "dynamic",
                "Vista",
                "KB 929851",
                Origin::Builtin,
            ),
        ];
        for &(proto, port, name, note, source, origin) in cases {
            let Some(f) = k.info(proto, port) else {
                assert_eq!(name, "", "{proto}/{port} unknown");
                continue;
            };
            assert_eq!(f.name, name, "{proto}/{port}");
            assert!(f.note.contains(note), "{proto}/{port}: {:?}", f.note);
            if note.is_empty() {
                assert_eq!(f.note, "", "{proto}/{port}");
            }
            assert!(f.source.contains(source), "{proto}/{port}: {:?}", f.source);
            assert_eq!(f.origin, origin, "{proto}/{port}");
        }
        assert_eq!(k.name(Protocol::Tcp, 9999), "-");
        assert_eq!(k.name(Protocol::Icmp, 0), "-");
        assert_eq!(k.info(Protocol::Icmp, 0), None);
    }

    #[test]
    fn builtin_alone_matches_port_info() {
        let k = PortKnowledge::builtin();
        for port in [
            1, 22, 445, 1025, 1031, 4999, 5001, 8080, 37215, 49152, 65535,
        ] {
            for proto in [Protocol::Tcp, Protocol::Udp] {
                let a = crate::port_info(proto, port);
                let b = k.info(proto, port);
                assert_eq!(
                    a.map(|i| i.name.to_string()),
                    b.as_ref().map(|f| f.name.clone())
                );
                assert_eq!(
                    a.map(|i| i.note.to_string()),
                    b.as_ref().map(|f| f.note.clone())
                );
                assert_eq!(a.map(|i| i.source.to_string()), b.map(|f| f.source));
            }
        }
        assert_eq!(k.name(Protocol::Tcp, 22), "ssh");
        assert_eq!(k.name(Protocol::Tcp, 5001), "-");
        // without services the range note has the placeholder name
        assert_eq!(k.name(Protocol::Tcp, 1031), "-");
        let with = k.with_services(&parse_services("iad2 1031/tcp\n"));
        let f = with.info(Protocol::Tcp, 1031).unwrap();
        assert_eq!((f.name.as_str(), f.origin), ("iad2", Origin::Services));
        assert!(f.note.contains("MS-RPC"), "{f:?}");
    }

    #[test]
    fn origin_names() {
        assert_eq!(Origin::Builtin.to_string(), "builtin");
        assert_eq!(Origin::Services.name(), "services");
        assert_eq!(serde_json::to_string(&Origin::User).unwrap(), "\"user\"");
    }

    #[test]
    fn override_errors() {
        let entry = |body: &str| format!("version = 1\n[[port]]\n{body}\n");
        let cases: Vec<(String, &str)> = vec![
            (
                "version = 2\n".into(),
                "unsupported version 2 (this scanwatch reads version 1)",
            ),
            ("[[port]]\nproto = \"tcp\"\nport = 1\nname = \"x\"\n".into(), "line 1: missing field `version`"),
            (
                entry("proto = \"tcp\"\nport = 22\nnmae = \"x\""),
                "line 5: unknown field `nmae`, expected one of `proto`, `port`, `ports`, `name`, `note`, `source`",
            ),
            (
                "version = 1\ncolour = \"red\"\n".into(),
                "line 2: unknown field `colour`, expected `version` or `port`",
            ),
            (
                entry("proto = \"tpc\"\nport = 22\nname = \"x\""),
                "[[port]] entry 1: unknown proto \"tpc\" (expected \"tcp\", \"udp\" or \"both\")",
            ),
            (
                entry("proto = \"tcp\"\nport = 70000\nname = \"x\""),
                "line 4: invalid value: integer `70000`, expected u16",
            ),
            (
                entry("proto = \"tcp\"\nport = 22\nports = \"1-2\"\nname = \"x\""),
                "[[port]] entry 1: give either port or ports, not both",
            ),
            (
                entry("proto = \"tcp\"\nname = \"x\""),
                "[[port]] entry 1: missing port (or ports = \"first-last\")",
            ),
            (
                entry("proto = \"tcp\"\nports = \"5000-1025\"\nname = \"x\""),
                "[[port]] entry 1: ports \"5000-1025\" ends before it starts",
            ),
            (
                entry("proto = \"tcp\"\nports = \"1025\"\nname = \"x\""),
                "[[port]] entry 1: ports \"1025\" is not a range like \"1025-5000\"",
            ),
            (
                entry("proto = \"tcp\"\nports = \"1-99999\"\nname = \"x\""),
                "[[port]] entry 1: ports \"1-99999\": 99999 is above 65535",
            ),
            (
                entry("proto = \"tcp\"\nport = 22\nsource = \"x\""),
                "[[port]] entry 1: tcp port 22: sets neither name nor note",
            ),
            (
                entry("proto = \"udp\"\nport = 22\nname = \"my ssh\""),
                "[[port]] entry 1: udp port 22: name \"my ssh\" contains spaces or control characters",
            ),
            (
                entry("proto = \"tcp\"\nport = 22\nnote = \"two\\nlines\""),
                "[[port]] entry 1: tcp port 22: note must be one line without control characters",
            ),
            (
                "version = 1\n[[port]]\nproto = \"tcp\"\nport = 22\nname = \"a\"\n[[port]]\nproto = \"both\"\nport = 22\nname = \"b\"\n".into(),
                "[[port]] entry 2: tcp port 22 is already given by entry 1",
            ),
            ("version = 1\n[[port]\n".into(), "line 2: "),
        ];
        for (text, want) in cases {
            let got = parse_overrides(&text).expect_err(&text).to_string();
            assert!(got.starts_with(want), "{text}\n got: {got}\nwant: {want}");
            assert!(
                got.chars().next().is_some_and(|c| !c.is_uppercase()),
                "not lowercase: {got}"
            );
        }
    }

    #[test]
    fn overrides_parse() {
        let o = parse_overrides(OVERRIDES).unwrap();
        assert_eq!(o.version, 1);
        assert_eq!(o.port.len(), 5);
        assert_eq!(o.port[2].ports.as_deref(), Some("1025-5000"));
        assert_eq!(parse_overrides("version = 1\n").unwrap().port, vec![]);
        // the example of the module documentation is valid
        let doc = include_str!("knowledge.rs");
        let start = doc.find("//! ```toml\n").unwrap() + "//! ```toml\n".len();
        let end = start + doc[start..].find("//! ```\n").unwrap();
        let example: String = doc[start..end]
            .lines()
            .map(|l| {
                l.strip_prefix("//!")
                    .unwrap_or(l)
                    .strip_prefix(' ')
                    .unwrap_or("")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let o = parse_overrides(&example).unwrap();
        assert_eq!(o.port.len(), 2);
    }

    #[test]
    fn unvalidated_overrides_skip_bad_entries() {
        let o = Overrides {
            version: 1,
            port: vec![
                PortOverride {
                    proto: "icmp".into(),
                    port: Some(22),
                    name: Some("bad".into()),
                    ..Default::default()
                },
                PortOverride {
                    proto: "tcp".into(),
                    port: Some(22),
                    name: Some("good".into()),
                    ..Default::default()
                },
            ],
        };
        assert!(o.validate().is_err());
        let k = PortKnowledge::builtin().with_overrides(&o);
        assert_eq!(k.name(Protocol::Tcp, 22), "good");
        assert_eq!(k.name(Protocol::Udp, 22), "-");
    }
}
