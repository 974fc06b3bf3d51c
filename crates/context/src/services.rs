//! Parser for the system services database (the `/etc/services` format): service
//! names for registered ports beyond the built-in table. Pure: the caller reads the
//! file. Parsing never fails as a whole and never panics; bad lines come back as
//! per-line errors.
//!
//! Each line is `name port/protocol [alias ...] [# comment]`; blank lines and lines
//! holding only a comment are skipped. A `#` anywhere starts a comment, as in the C
//! library's `getservent`.
//!
//! ```
//! use scanwatch_context::services::parse_services;
//!
//! let parsed = parse_services("ssh\t\t22/tcp\t\t\t# SSH Remote Login Protocol\nbad line\n");
//! assert_eq!(parsed.entries[0].name, "ssh");
//! assert_eq!(parsed.lookup("tcp", 22).map(|e| e.name.as_str()), Some("ssh"));
//! assert_eq!(parsed.errors[0].to_string(), "line 2: expected port/protocol after `bad`, found `line`");
//! ```

use std::fmt;

/// Longest service name accepted (IANA names have at most 15 characters; local
/// additions may be longer).
pub const MAX_NAME_CHARS: usize = 64;

/// How much of a bad token an error message quotes.
const SHOWN_CHARS: usize = 32;

/// One service line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The official name (first field).
    pub name: String,
    pub port: u16,
    /// The protocol as written, lowercased (`tcp`, `udp`, `sctp`, `ddp` …).
    pub proto: String,
    pub aliases: Vec<String>,
    /// The text after `#`, trimmed; `None` when absent or empty.
    pub comment: Option<String>,
    /// 1-based line number.
    pub line: usize,
}

/// A line that is not a service entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

/// Everything a services file held: entries in file order, and errors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub entries: Vec<ServiceEntry>,
    pub errors: Vec<LineError>,
}

impl Parsed {
    /// The first entry for a port and protocol (`tcp`, `udp` …), as `getservbyport`
    /// returns it.
    pub fn lookup(&self, proto: &str, port: u16) -> Option<&ServiceEntry> {
        self.entries
            .iter()
            .find(|e| e.port == port && e.proto.eq_ignore_ascii_case(proto))
    }
}

/// Parses a whole services file.
pub fn parse_services(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, line) in text.lines().enumerate() {
        match parse_line(line, i + 1) {
            Ok(Some(e)) => out.entries.push(e),
            Ok(None) => {}
            Err(reason) => out.errors.push(LineError {
                line: i + 1,
                reason,
            }),
        }
    }
    out
}

/// Parses one line: `Ok(None)` for blank and comment-only lines, `Err(reason)` for
/// a line that is not a service entry.
pub fn parse_line(line: &str, number: usize) -> Result<Option<ServiceEntry>, String> {
    let (body, comment) = match line.split_once('#') {
        Some((b, c)) => (b, Some(c.trim()).filter(|c| !c.is_empty())),
        None => (line, None),
    };
    let mut fields = body.split_whitespace();
    let Some(name) = fields.next() else {
        return Ok(None);
    };
    check_name(name)?;
    let Some(port_proto) = fields.next() else {
        return Err(format!("missing port/protocol after `{}`", Shown(name)));
    };
    let Some((port, proto)) = port_proto.split_once('/') else {
        return Err(format!(
            "expected port/protocol after `{}`, found `{}`",
            Shown(name),
            Shown(port_proto)
        ));
    };
    let port = parse_port(port)?;
    if proto.is_empty() {
        return Err(format!("missing protocol after port {port}"));
    }
    if !proto.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("`{}` is not a protocol name", Shown(proto)));
    }
    let mut aliases = Vec::new();
    for a in fields {
        check_name(a)?;
        aliases.push(a.to_string());
    }
    Ok(Some(ServiceEntry {
        name: name.to_string(),
        port,
        proto: proto.to_ascii_lowercase(),
        aliases,
        comment: comment.map(str::to_string),
        line: number,
    }))
}

fn parse_port(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port `{}` is not a number", Shown(s)));
    }
    s.parse::<u16>()
        .map_err(|_| format!("port {} is above 65535", Shown(s)))
}

fn check_name(s: &str) -> Result<(), String> {
    if s.chars().any(char::is_control) {
        return Err(format!(
            "service name `{}` contains a control character",
            Shown(s)
        ));
    }
    if s.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "service name `{}` is longer than {MAX_NAME_CHARS} characters",
            Shown(s)
        ));
    }
    Ok(())
}

/// A token quoted in an error: at most [`SHOWN_CHARS`] characters, control
/// characters escaped.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.chars().enumerate() {
            if i == SHOWN_CHARS {
                return f.write_str("…");
            }
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as Debian's netbase ships them in /etc/services (tabs, aliases,
    /// comments, comment-only and blank lines).
    const DEBIAN: &str = "\
# Network services, Internet style
#
# Updated from https://www.iana.org/assignments/service-names-port-numbers/service-names-port-numbers.xhtml .
#
# New ports will be added on request if they have been officially assigned
# by IANA and used in the real-world or are needed by a debian package.
# If you need a huge list of used numbers please install the nmap package.

tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer
echo\t\t7/tcp
echo\t\t7/udp
discard\t\t9/tcp\t\tsink null
discard\t\t9/udp\t\tsink null
systat\t\t11/tcp\t\tusers
ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
smtp\t\t25/tcp\t\tmail
tacacs\t\t49/tcp\t\t\t\t# Login Host Protocol (TACACS)
domain\t\t53/tcp\t\t\t\t# Domain Name Server
domain\t\t53/udp
kerberos\t88/tcp\t\tkerberos5 krb5 kerberos-sec\t# Kerberos v5
submissions\t465/tcp\t\tssmtp smtps urd # Submission over TLS [RFC8314]
zabbix-agent\t10050/tcp\t\t\t# Zabbix Agent
\r
#
# Services added for the Debian GNU/Linux distribution
#
webmin\t\t10000/tcp
";

    #[test]
    fn debian_services() {
        let p = parse_services(DEBIAN);
        assert_eq!(p.errors, vec![]);
        assert_eq!(p.entries.len(), 15);
        let kerberos = p.lookup("tcp", 88).unwrap();
        assert_eq!(
            kerberos,
            &ServiceEntry {
                name: "kerberos".into(),
                port: 88,
                proto: "tcp".into(),
                aliases: vec!["kerberos5".into(), "krb5".into(), "kerberos-sec".into()],
                comment: Some("Kerberos v5".into()),
                line: 20,
            }
        );
        let discard = p.lookup("udp", 9).unwrap();
        assert_eq!(discard.aliases, ["sink", "null"]);
        assert_eq!(discard.comment, None);
        assert_eq!(p.lookup("UDP", 53).unwrap().name, "domain");
        assert_eq!(p.lookup("udp", 22), None);
        assert_eq!(p.lookup("tcp", 10050).unwrap().name, "zabbix-agent");
        assert_eq!(
            p.lookup("tcp", 465).unwrap().comment.as_deref(),
            Some("Submission over TLS [RFC8314]")
        );
    }

    #[test]
    fn malformed_lines_are_reported_and_skipped() {
        let text = "\
ssh 22/tcp
noport
www 80
http x/tcp
big 70000/tcp
neg -1/tcp
empty 5/
odd 5/t?p
ctl\u{1} 7/tcp
ok 8/UDP alias\t# fine
 # indented comment
# 22/tcp
";
        let p = parse_services(text);
        let errors: Vec<String> = p.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "line 2: missing port/protocol after `noport`",
                "line 3: expected port/protocol after `www`, found `80`",
                "line 4: port `x` is not a number",
                "line 5: port 70000 is above 65535",
                "line 6: port `-1` is not a number",
                "line 7: missing protocol after port 5",
                "line 8: `t?p` is not a protocol name",
                "line 9: service name `ctl\\u{1}` contains a control character",
            ]
        );
        let names: Vec<_> = p
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.line))
            .collect();
        assert_eq!(names, [("ssh", 1), ("ok", 10)]);
        assert_eq!(p.entries[1].proto, "udp");
    }

    #[test]
    fn long_tokens_are_shortened_in_messages() {
        let long = "x".repeat(100);
        let p = parse_services(&format!("{long}\n"));
        assert_eq!(
            p.errors[0].reason,
            format!(
                "service name `{}…` is longer than 64 characters",
                "x".repeat(32)
            )
        );
        let p = parse_services(&format!("a {long}/tcp"));
        assert!(
            p.errors[0].reason.starts_with("port `xxx"),
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        let inputs = [
            "",
            "\n\n",
            "#",
            "/",
            " / ",
            "a /",
            "a /tcp",
            "a 1/",
            "a 1//",
            "a 99999999999999999999/tcp",
            "é 1/tcp #é",
            "a\u{0}b 1/tcp",
            "a 1/tcp\r\n",
            "\u{feff}a 1/tcp",
            "a 1/tcp b\u{7f}",
            "a ０/tcp",
            "a 1/tcp/udp",
        ];
        for s in inputs {
            let p = parse_services(s);
            assert!(
                p.entries.len() + p.errors.len() <= s.lines().count().max(1),
                "{s:?}"
            );
        }
    }

    #[test]
    fn random_lines_never_panic() {
        // A fixed linear congruential generator over tricky characters.
        let alphabet: Vec<char> = "ab1/#\t \r\n9-6553tcpudp\u{0}é…\u{feff}".chars().collect();
        let mut x: u64 = 0x5eed;
        for _ in 0..3000 {
            let mut s = String::new();
            for _ in 0..(x % 40) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push(alphabet[(x >> 33) as usize % alphabet.len()]);
            }
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let p = parse_services(&s);
            for e in &p.errors {
                assert!(e.line >= 1 && !e.reason.is_empty(), "{s:?}");
            }
        }
    }
}
