//! Log-format parsers: turn lines of firewall and IDS logs into [`Event`]s.
//!
//! Every format is one module behind the [`FormatSpec`] trait, registered in
//! [`REGISTRY`]. Parsers do no I/O: they take `&str` lines and return, per line, an
//! event, a skip (blank, header, or a line of another program) or a [`ParseError`].
//! Parsing never fails as a whole: [`parse_str`] collects events and per-line errors.

mod cisco_asa;
mod dshield;
mod fastlog;
mod filterlog;
pub mod ip;
mod jsonl;
mod mikrotik;
mod netfilter;
pub mod packet;
mod pflog;
mod suricata;
mod syslog;
mod ulogd_json;
mod winfw;
mod zeek;
mod zeek_json;

use scanwatch_event::{Event, Timestamp};
use thiserror::Error;

pub use netfilter::NetfilterParser;
pub use syslog::YearResolver;

/// Options every parser gets.
#[derive(Clone, Copy, Debug)]
pub struct ParserOptions {
    /// The instant the log was written up to (for a file: its modification time).
    /// Used only to infer the year of syslog timestamps that have none; see
    /// [`YearResolver`].
    pub reference_time: Timestamp,
}

/// What one line turned out to be.
#[derive(Debug, PartialEq)]
pub enum LineOutcome<'l> {
    /// An event, and the name of the host or sensor the line itself gives
    /// (syslog host field, DShield user id, JSON `sensor`), if any.
    Event { event: Event, host: Option<&'l str> },
    /// Not an event line: blank, comment, header, or another program's log line.
    Skip,
    /// A line of this format that cannot be read.
    Error(ParseError),
}

/// Why a line could not be parsed. Messages are lowercase, with no trailing period.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("invalid {field}: {value:?}")]
    InvalidField { field: &'static str, value: String },
    #[error("unreadable timestamp: {0:?}")]
    Timestamp(String),
    #[error("expected {expected} tab-separated fields, found {found}")]
    FieldCount { expected: usize, found: usize },
    #[error("{0}")]
    Wire(#[from] scanwatch_event::WireError),
}

impl ParseError {
    pub(crate) fn invalid(field: &'static str, value: &str) -> ParseError {
        // Cap what is echoed back so a huge garbage line gives a short message.
        let value: String = value.chars().take(64).collect();
        ParseError::InvalidField { field, value }
    }

    /// An unreadable timestamp, echoing at most 40 characters of it.
    pub(crate) fn timestamp(value: &str) -> ParseError {
        ParseError::Timestamp(value.chars().take(40).collect())
    }
}

/// A parser for one stream of lines (it may keep state, e.g. the current year).
pub trait LineParser: Send {
    fn parse_line<'l>(&mut self, line: &'l str) -> LineOutcome<'l>;
}

/// One log format: its name, how to recognise it, and how to make a parser.
pub trait FormatSpec: Sync {
    /// Name used by `--format` and in reports.
    fn name(&self) -> &'static str;
    /// Other names `--format` accepts for this format.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// One line for `--help` and docs.
    fn description(&self) -> &'static str;
    /// Whether a sample line looks like this format (used by `--format auto`).
    fn sniff(&self, line: &str) -> bool;
    fn parser(&self, opts: &ParserOptions) -> Box<dyn LineParser>;
}

/// Every format scanwatch reads, in auto-detection order. Adding a format is one
/// module plus one entry here.
///
/// The order matters for auto-detection: JSON formats with distinctive keys
/// (`suricata`, `zeek-json`, `ulogd-json`) come before the generic `jsonl`, and
/// `netfilter`, whose sniffer only asks for `SRC=` and `DST=`, comes last.
pub static REGISTRY: &[&dyn FormatSpec] = &[
    &suricata::SPEC,
    &zeek_json::SPEC,
    &ulogd_json::SPEC,
    &jsonl::SPEC,
    &dshield::SPEC,
    &filterlog::SPEC,
    &winfw::SPEC,
    &zeek::SPEC,
    &fastlog::SPEC,
    &cisco_asa::SPEC,
    &mikrotik::SPEC,
    &pflog::SPEC,
    &netfilter::SPEC,
];

/// Looks a format up by name or alias.
pub fn format_by_name(name: &str) -> Option<&'static dyn FormatSpec> {
    REGISTRY
        .iter()
        .copied()
        .find(|f| f.name() == name || f.aliases().contains(&name))
}

/// Names of all formats, for help texts and error messages.
pub fn format_names() -> Vec<&'static str> {
    REGISTRY.iter().map(|f| f.name()).collect()
}

/// How many leading lines auto-detection looks at.
pub const SNIFF_LINES: usize = 50;

/// Guesses the format of a file from its first lines: the first format that
/// recognises a non-blank, non-comment line wins.
pub fn detect<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<&'static dyn FormatSpec> {
    for line in lines.into_iter().take(SNIFF_LINES) {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(f) = REGISTRY.iter().copied().find(|f| f.sniff(line)) {
            return Some(f);
        }
    }
    None
}

/// An event with the line it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedEvent {
    pub line: usize,
    pub event: Event,
    pub host: Option<String>,
}

/// A line that could not be parsed (1-based line number).
#[derive(Clone, Debug, PartialEq)]
pub struct LineError {
    pub line: usize,
    pub error: ParseError,
}

/// Everything one input yielded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParseOutput {
    pub events: Vec<ParsedEvent>,
    pub errors: Vec<LineError>,
    pub skipped: usize,
}

/// Parses a whole text with one format. Never fails: bad lines become [`LineError`]s.
pub fn parse_str(spec: &dyn FormatSpec, input: &str, opts: &ParserOptions) -> ParseOutput {
    let mut parser = spec.parser(opts);
    let mut out = ParseOutput::default();
    for (i, line) in input.lines().enumerate() {
        match parser.parse_line(line) {
            LineOutcome::Event { event, host } => out.events.push(ParsedEvent {
                line: i + 1,
                event,
                host: host.map(str::to_string),
            }),
            LineOutcome::Skip => out.skipped += 1,
            LineOutcome::Error(error) => out.errors.push(LineError { line: i + 1, error }),
        }
    }
    out
}

/// Helpers shared by the parsers' table tests.
#[cfg(test)]
pub(crate) mod test_support {
    use scanwatch_event::Event;

    /// `tcp 192.0.2.1:4444 > 198.51.100.7:1025 S` (`-` for a missing port).
    pub(crate) fn flow(e: &Event) -> String {
        let port = |p: Option<u16>| p.map_or("-".to_string(), |p| p.to_string());
        format!(
            "{} {}:{} > {}:{} {}",
            e.proto,
            e.src,
            port(e.src_port),
            e.dst,
            port(e.dst_port),
            e.flags.letters()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        for (name, want) in [
            ("netfilter", "netfilter"),
            ("iptables", "netfilter"),
            ("nftables", "netfilter"),
            ("ulogd", "netfilter"),
            ("dshield", "dshield"),
            ("jsonl", "jsonl"),
            ("suricata", "suricata"),
            ("eve", "suricata"),
            ("filterlog", "filterlog"),
            ("pfsense", "filterlog"),
            ("winfw", "winfw"),
            ("pfirewall", "winfw"),
            ("zeek", "zeek"),
            ("bro", "zeek"),
            ("zeek-json", "zeek-json"),
            ("bro-json", "zeek-json"),
            ("ulogd-json", "ulogd-json"),
            ("nftables-json", "ulogd-json"),
            ("fastlog", "fastlog"),
            ("snort", "fastlog"),
            ("cisco-asa", "cisco-asa"),
            ("ftd", "cisco-asa"),
            ("mikrotik", "mikrotik"),
            ("routeros", "mikrotik"),
            ("pflog", "pflog"),
            ("openbsd-pf", "pflog"),
        ] {
            assert_eq!(format_by_name(name).map(|f| f.name()), Some(want), "{name}");
        }
        assert!(format_by_name("auto").is_none());
    }

    #[test]
    fn detect_picks_each_format() {
        let nf = "Jun  8 14:34:33 h kernel: [1.2] IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2 PROTO=UDP SPT=1 DPT=2";
        let ds = "2026-11-26 10:00:00 -0500\t42\t1\t192.0.2.1\t4000\t192.0.2.2\t1025\t6\tS";
        let js = r#"{"time":"2026-11-26T10:00:00Z","proto":"udp","src":"192.0.2.1","dst":"192.0.2.2","dst_port":53}"#;
        assert_eq!(detect(["", "# c", nf]).map(|f| f.name()), Some("netfilter"));
        assert_eq!(detect([ds]).map(|f| f.name()), Some("dshield"));
        assert_eq!(detect([js]).map(|f| f.name()), Some("jsonl"));
        let eve = r#"{"timestamp":"2022-07-11T05:52:18.378379+0000","event_type":"flow","src_ip":"192.0.2.1","src_port":1,"dest_ip":"192.0.2.2","dest_port":22,"proto":"TCP"}"#;
        assert_eq!(detect([eve]).map(|f| f.name()), Some("suricata"));
        let pf = "Sep 28 10:38:24 pfSense filterlog: 53,,,1000102631,em0,match,block,in,4,0x0,,64,600,0,none,6,tcp,44,10.0.2.2,10.0.2.15,53792,22,0,S,31552001,,65535,,mss";
        assert_eq!(detect([pf]).map(|f| f.name()), Some("filterlog"));
        let opn = r#"<134>1 2022-09-06T18:37:34+02:00 opnsense filterlog 69805 - [meta sequenceId="2633353"] 10,,,02f4,re0,match,block,in,4,0x0,,118,28579,0,none,17,udp,132,212.102.36.22,37.120.48.198,49838,52938,112"#;
        assert_eq!(detect([opn]).map(|f| f.name()), Some("filterlog"));
        let wf = "2005-04-11 08:05:57 DROP UDP 123.45.78.90 123.156.78.255 137 137 78 - - - - - - - RECEIVE";
        assert_eq!(
            detect(["#Version: 1.5", "#Fields: date time action", wf]).map(|f| f.name()),
            Some("winfw")
        );
        let zk = "1521911721.411148\tCXWfTK3LRdiuQxBbM6\t10.47.25.80\t50817\t10.128.0.218\t23189\ttcp\t-\t0.000486\t0\t0\tREJ\t-\t-\t0\tSr\t2\t104\t2\t80\t-";
        assert_eq!(detect(["#fields\tts", zk]).map(|f| f.name()), Some("zeek"));
        assert!(detect(["hello world"]).is_none());
    }
}
