//! Conformance of the `netfilter` parser against CrowdSec hub fixtures: real iptables,
//! UniFi and Proxmox lines with CrowdSec's expected parse results.
//!
//! The fixtures live in `testdata/fixtures/iptables/` (MIT, crowdsecurity/hub; see
//! `testdata/fixtures/SOURCES.md`). For each `*.log` the test parses the whole file
//! with the netfilter parser and compares, line by line, with the `s01-parse` stage
//! of the matching `*__parser.assert` file:
//!
//! - `Success == true` entries of the iptables stage: our event for that line must have
//!   the same `src_ip`, `dst_ip`, `src_port`, `dst_port`, `proto`, and, where the
//!   assert gives them, `Meta["machine"]` (our host), the action
//!   (`Meta["action"]` / `Parsed["action"]`) and the time (`Parsed["timestamp"]`,
//!   `Parsed["logdate"]`).
//! - `Success == false` entries: what we do instead is listed in [`DIVERGENCES`], and
//!   every such entry must be listed there (and every listed row must match one).
//! - `Success == true` entries of other stages (CrowdSec's sshd parser) are lines of
//!   another program: we must skip them.
//!
//! Index mapping: in every assert here, CrowdSec fed *every* line of the log to the
//! iptables stage (`len(results["s01-parse"][key]) == number of lines`; in the UniFi
//! file the sshd line is entry 3 of `crowdsecurity/iptables-logs`, with
//! `Success == false`, and entry 0 of `crowdsecurity/sshd-logs`). So entry `i` is
//! line `i + 1`. The test checks that mapping: each entry's `Parsed["message"]` must be
//! the end of the line it is mapped to. Entries of other stages (sshd) are numbered
//! among the lines *that* parser saw, so they are located by their message instead.
//!
//! All mismatches are collected and reported together as `file:line: field …`.
#![allow(clippy::unwrap_used)] // a test or bench may panic on a broken setup

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use scanwatch_event::{parse_rfc3339, Action, Direction, Protocol, Timestamp};
use scanwatch_formats::{format_by_name, parse_str, ParseOutput, ParsedEvent, ParserOptions};

/// The fixtures have no year; with this reference time every line falls in 2026
/// (the Proxmox lines carry their own year, 2022).
const REFERENCE_TIME: &str = "2026-11-26T00:00:00Z";
const SYSLOG_YEAR: i32 = 2026;

/// One log file, the assert that describes it, and what we expect overall.
struct Fixture {
    log: &'static str,
    /// `*__parser.assert` file, if any.
    assert: Option<&'static str>,
    /// The `s01-parse` key of CrowdSec's iptables parser in that assert.
    stage: &'static str,
    events: usize,
    errors: usize,
    skipped: usize,
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        log: "crowdsecurity-hub__iptables-logs.log",
        assert: Some("crowdsecurity-hub__iptables-logs__parser.assert"),
        stage: "crowdsecurity/iptables-logs",
        events: 3,
        errors: 1,
        skipped: 0,
    },
    Fixture {
        log: "crowdsecurity-hub__unifi-logs.log",
        assert: Some("crowdsecurity-hub__unifi-logs__parser.assert"),
        stage: "crowdsecurity/iptables-logs",
        events: 3,
        errors: 0,
        skipped: 1,
    },
    Fixture {
        log: "crowdsecurity-hub__proxmox-iptables.log",
        assert: Some("crowdsecurity-hub__proxmox-iptables-logs__parser.assert"),
        stage: "aderumier/proxmox-iptables-logs",
        events: 10,
        errors: 0,
        skipped: 0,
    },
    Fixture {
        // Only a scenario assert (the expected alerts); see `multi_port_scan_lines`.
        log: "crowdsecurity-hub__iptables-scan-multi-port.log",
        assert: None,
        stage: "",
        events: 49,
        errors: 0,
        skipped: 0,
    },
];

/// What scanwatch does with a line that CrowdSec's parser refuses.
#[derive(Debug)]
enum Ours {
    /// A parse error whose message starts with this text.
    Error(&'static str),
    /// Skipped: not a netfilter line.
    Skip,
    /// An event: action, direction, and `proto src:spt > dst:dpt`.
    Event(Action, Direction, &'static str),
}

/// A `Success == false` entry and what we do instead.
struct Divergence {
    file: &'static str,
    /// 1-based line of the log (= CrowdSec entry index + 1).
    line: usize,
    ours: Ours,
    #[allow(dead_code)] // documentation only
    why: &'static str,
}

/// Every `Success == false` entry of the iptables stages.
///
/// | file | line | CrowdSec | scanwatch | why |
/// |---|---|---|---|---|
/// | iptables-logs | 3 | refused | parse error `missing field IN=` | `XX=` where the kernel always prints `IN=`: a damaged line |
/// | unifi-logs | 4 | refused (sshd parser takes it) | skipped | sshd line, no `SRC=` |
/// | proxmox | 2 | refused | event, accept | CrowdSec's filter drops `ACCEPT` lines; we keep them (action is informational) |
/// | proxmox | 5 | refused | event, accept | as line 2 |
/// | proxmox | 7 | refused | event, reject | chain `tap101i0-OUT`: CrowdSec's filter wants `-IN` |
/// | proxmox | 8 | refused | event, reject, outbound | `PVEFW-HOST-OUT`, no `IN=` (pve-firewall prints `IN=` only with an input device) |
/// | proxmox | 9 | refused | event, action unknown | chain `GROUP-security1-IN`, no `ACTION:` word: CrowdSec's grok wants both |
const DIVERGENCES: &[Divergence] = &[
    Divergence {
        file: "crowdsecurity-hub__iptables-logs.log",
        line: 3,
        ours: Ours::Error("missing field IN="),
        why: "XX= where the kernel always prints IN=: a damaged line",
    },
    Divergence {
        file: "crowdsecurity-hub__unifi-logs.log",
        line: 4,
        ours: Ours::Skip,
        why: "an sshd line (CrowdSec's sshd parser takes it); it has no SRC=",
    },
    Divergence {
        file: "crowdsecurity-hub__proxmox-iptables.log",
        line: 2,
        ours: Ours::Event(Action::Accept, Direction::Inbound, "tcp 10.3.95.34:56386 > 10.3.94.12:8006"),
        why: "CrowdSec's filter drops ACCEPT lines; we keep them, the action is informational",
    },
    Divergence {
        file: "crowdsecurity-hub__proxmox-iptables.log",
        line: 5,
        ours: Ours::Event(Action::Accept, Direction::Inbound, "tcp 10.3.95.34:43506 > 10.3.95.200:3306"),
        why: "as line 2",
    },
    Divergence {
        file: "crowdsecurity-hub__proxmox-iptables.log",
        line: 7,
        ours: Ours::Event(Action::Reject, Direction::Inbound, "tcp 10.3.95.200:51348 > 10.3.95.10:22"),
        why: "chain tap101i0-OUT: CrowdSec's filter wants '-IN'; bridged (IN= and OUT= set) counts as inbound for us",
    },
    Divergence {
        file: "crowdsecurity-hub__proxmox-iptables.log",
        line: 8,
        ours: Ours::Event(Action::Reject, Direction::Outbound, "tcp 10.3.94.12:49566 > 10.3.94.10:22"),
        why: "PVEFW-HOST-OUT without IN=: an outbound packet of the host",
    },
    Divergence {
        file: "crowdsecurity-hub__proxmox-iptables.log",
        line: 9,
        ours: Ours::Event(Action::Unknown, Direction::Inbound, "tcp 10.3.95.34:51606 > 10.3.95.200:22"),
        why: "chain GROUP-security1-IN and no ACTION: word, which CrowdSec's grok requires",
    },
];

// ---------------------------------------------------------------------------------
// The assert files: one `lhs == rhs` expression a line. Only the `s01-parse` entries
// are read: `results["s01-parse"]["<stage>"][<i>].Success == true|false`,
// `….Evt.Parsed["<k>"] == "<v>"`, `….Evt.Meta["<k>"] == "<v>"`, and
// `len(results["s01-parse"]["<stage>"]) == <n>`. Other lines are ignored.

#[derive(Debug, Default)]
struct Entry {
    success: Option<bool>,
    parsed: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Assert {
    /// `len(...)` per stage.
    lens: BTreeMap<String, usize>,
    /// (stage, index) -> entry.
    entries: BTreeMap<(String, usize), Entry>,
}

/// Reads a Go-style quoted string (`"a \"b\""`).
fn unquote(s: &str, ctx: &str) -> String {
    let inner = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{ctx}: expected a quoted value, got {s}"));
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                other => panic!("{ctx}: unsupported escape \\{other:?}"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `["key"]rest` -> (key, rest).
fn bracketed(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_prefix("[\"")?;
    let end = s.find("\"]")?;
    Some((&s[..end], &s[end + 2..]))
}

fn parse_assert(name: &str, text: &str) -> Assert {
    const LEN: &str = "len(results[\"s01-parse\"]";
    const RES: &str = "results[\"s01-parse\"]";
    let mut a = Assert::default();
    for (n, line) in text.lines().enumerate() {
        let ctx = format!("{name}:{}", n + 1);
        if let Some(rest) = line.strip_prefix(LEN) {
            let (stage, rest) = bracketed(rest).unwrap_or_else(|| panic!("{ctx}: bad len line"));
            let n: usize = rest
                .strip_prefix(") == ")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{ctx}: bad len line"));
            a.lens.insert(stage.to_string(), n);
        } else if let Some(rest) = line.strip_prefix(RES) {
            let (stage, rest) = bracketed(rest).unwrap_or_else(|| panic!("{ctx}: bad stage"));
            let (idx, rest) = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once("]."))
                .unwrap_or_else(|| panic!("{ctx}: bad index"));
            let idx: usize = idx
                .parse()
                .unwrap_or_else(|_| panic!("{ctx}: bad index {idx}"));
            let (lhs, rhs) = rest
                .split_once(" == ")
                .unwrap_or_else(|| panic!("{ctx}: no =="));
            let entry = a.entries.entry((stage.to_string(), idx)).or_default();
            if lhs == "Success" {
                entry.success = Some(match rhs {
                    "true" => true,
                    "false" => false,
                    other => panic!("{ctx}: Success == {other}"),
                });
            } else if let Some(k) = lhs.strip_prefix("Evt.Parsed").and_then(bracketed) {
                entry.parsed.insert(k.0.to_string(), unquote(rhs, &ctx));
            } else if let Some(k) = lhs.strip_prefix("Evt.Meta").and_then(bracketed) {
                entry.meta.insert(k.0.to_string(), unquote(rhs, &ctx));
            }
        }
    }
    a
}

// ---------------------------------------------------------------------------------

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fixtures/iptables")
}

fn read(name: &str) -> String {
    let p = fixture_dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse_fixture(log: &str) -> (String, ParseOutput) {
    let text = read(log);
    let spec = format_by_name("netfilter").expect("netfilter format is registered");
    let opts = ParserOptions {
        reference_time: parse_rfc3339(REFERENCE_TIME).expect("valid reference time"),
    };
    let out = parse_str(spec, &text, &opts);
    (text, out)
}

fn event_at(out: &ParseOutput, line: usize) -> Option<&ParsedEvent> {
    out.events.iter().find(|e| e.line == line)
}

fn port(p: Option<u16>) -> String {
    p.map_or_else(|| "-".to_string(), |p| p.to_string())
}

fn flow(e: &ParsedEvent) -> String {
    let ev = &e.event;
    format!(
        "{} {}:{} > {}:{}",
        ev.proto,
        ev.src,
        port(ev.src_port),
        ev.dst,
        port(ev.dst_port)
    )
}

/// CrowdSec action spellings: `Meta["action"]` (`drop`, `accept`) and `Parsed["action"]`
/// (UniFi `D`/`A`/`R`, Proxmox `DROP`, `REJECT`, `PVEFW-reject`).
fn crowdsec_action(v: &str) -> Option<Action> {
    let up = v.to_ascii_uppercase();
    if up == "D" || up.ends_with("DROP") {
        Some(Action::Drop)
    } else if up == "A" || up.ends_with("ACCEPT") {
        Some(Action::Accept)
    } else if up == "R" || up.ends_with("REJECT") {
        Some(Action::Reject)
    } else {
        None
    }
}

fn month(m: &str) -> Option<u32> {
    const M: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    M.iter().position(|x| *x == m).map(|i| i as u32 + 1)
}

fn hms(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split(':').map(|x| x.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// `Jun  8 14:34:33` (syslog, no year).
fn syslog_time(s: &str) -> Option<Timestamp> {
    let mut it = s.split_whitespace();
    let m = month(it.next()?)?;
    let d: u32 = it.next()?.parse().ok()?;
    let (h, mi, se) = hms(it.next()?)?;
    Timestamp::from_civil(SYSLOG_YEAR, m, d, h, mi, se, 0)
}

/// `20/Jun/2022:13:09:14 +0200` (Proxmox `logdate`).
fn httpdate(s: &str) -> Option<Timestamp> {
    let (dt, off) = s.split_once(' ')?;
    let (date, clock) = dt.split_once(':')?;
    let mut d = date.split('/');
    let day: u32 = d.next()?.parse().ok()?;
    let m = month(d.next()?)?;
    let y: i32 = d.next()?.parse().ok()?;
    let (h, mi, se) = hms(clock)?;
    let local = Timestamp::from_civil(y, m, day, h, mi, se, 0)?;
    let sign: i64 = if off.starts_with('-') { -1 } else { 1 };
    let oh: i64 = off.get(1..3)?.parse().ok()?;
    let om: i64 = off.get(3..5)?.parse().ok()?;
    Some(Timestamp(local.0 - sign * (oh * 60 + om) * 60_000))
}

/// Compares one `Success == true` entry with our event; pushes mismatches.
fn compare(file: &str, line: usize, entry: &Entry, ev: &ParsedEvent, fails: &mut Vec<String>) {
    let e = &ev.event;
    let mut check = |field: &str, want: &str, got: String| {
        if want != got {
            fails.push(format!(
                "{file}:{line}: field {field}: crowdsec {want:?}, ours {got:?}"
            ));
        }
    };
    let p = &entry.parsed;
    for required in ["src_ip", "dst_ip", "proto"] {
        if !p.contains_key(required) {
            check(
                required,
                "<present in assert>",
                "<missing in assert>".into(),
            );
        }
    }
    if let Some(v) = p.get("src_ip") {
        check("src_ip", v, e.src.to_string());
    }
    if let Some(v) = p.get("dst_ip") {
        check("dst_ip", v, e.dst.to_string());
    }
    if let Some(v) = p.get("src_port") {
        check("src_port", v, port(e.src_port));
    }
    if let Some(v) = p.get("dst_port") {
        check("dst_port", v, port(e.dst_port));
    }
    if let Some(v) = p.get("proto") {
        // CrowdSec keeps the text (`TCP`); we have a `Protocol`.
        let want =
            Protocol::parse(v).map_or_else(|| format!("<unknown {v}>"), |p| p.name().into_owned());
        check("proto", &want, e.proto.name().into_owned());
    }
    if let Some(v) = entry.meta.get("machine") {
        check("machine", v, ev.host.clone().unwrap_or_default());
    }
    for (field, v) in [
        ("Meta.action", entry.meta.get("action")),
        ("Parsed.action", p.get("action")),
    ] {
        if let Some(v) = v {
            let want = crowdsec_action(v)
                .map_or_else(|| format!("<unknown {v}>"), |a| a.name().to_string());
            check(field, &want, e.action.name().to_string());
        }
    }
    for (field, v, conv) in [
        (
            "timestamp",
            p.get("timestamp"),
            syslog_time as fn(&str) -> Option<Timestamp>,
        ),
        ("logdate", p.get("logdate"), httpdate),
    ] {
        if let Some(v) = v {
            let want = conv(v).map_or_else(|| format!("<unreadable {v}>"), |t| t.to_rfc3339());
            check(field, &want, e.time.to_rfc3339());
        }
    }
}

#[test]
fn crowdsec_parser_asserts() {
    let mut fails = Vec::new();
    let mut seen_divergences = vec![false; DIVERGENCES.len()];

    for fx in FIXTURES {
        let (text, out) = parse_fixture(fx.log);
        let lines: Vec<&str> = text.lines().collect();

        // Totals per file.
        let totals = (out.events.len(), out.errors.len(), out.skipped);
        if totals != (fx.events, fx.errors, fx.skipped) {
            fails.push(format!(
                "{}: (events, errors, skipped) = {totals:?}, expected {:?}; errors: {:?}",
                fx.log,
                (fx.events, fx.errors, fx.skipped),
                out.errors
            ));
        }
        if totals.0 + totals.1 + totals.2 != lines.len() {
            fails.push(format!(
                "{}: outcomes do not add up to {} lines",
                fx.log,
                lines.len()
            ));
        }

        let Some(assert_name) = fx.assert else {
            continue;
        };
        let a = parse_assert(assert_name, &read(assert_name));

        // The mapping entry i -> line i+1 holds when CrowdSec fed every line to the stage.
        match a.lens.get(fx.stage) {
            Some(&n) if n == lines.len() => {}
            other => fails.push(format!(
                "{assert_name}: len(s01-parse[{}]) = {other:?}, log has {} lines: index mapping needs review",
                fx.stage,
                lines.len()
            )),
        }

        for ((stage, idx), entry) in &a.entries {
            let message = entry.parsed.get("message");
            let line_no = if stage == fx.stage {
                // Entry i of the iptables stage is line i+1 (see the module docs).
                idx + 1
            } else {
                // Other stages only saw the lines the iptables stage refused, so their
                // index is not a line number: find the line by its message.
                let found: Vec<usize> = match message {
                    Some(m) => (0..lines.len())
                        .filter(|&i| lines[i].ends_with(m.as_str()))
                        .collect(),
                    None => Vec::new(),
                };
                match found[..] {
                    [i] => i + 1,
                    _ => {
                        fails.push(format!(
                            "{assert_name}: {stage}[{idx}]: message matches lines {found:?}, need exactly one"
                        ));
                        continue;
                    }
                }
            };
            let Some(line) = lines.get(line_no - 1) else {
                fails.push(format!(
                    "{assert_name}: {stage}[{idx}] has no line {line_no} in {}",
                    fx.log
                ));
                continue;
            };
            // Verify the mapping: CrowdSec's message is the end of the raw line.
            if let Some(msg) = message {
                if !line.ends_with(msg.as_str()) {
                    fails.push(format!(
                        "{}:{line_no}: {stage}[{idx}] message does not match this line (index mapping)",
                        fx.log
                    ));
                }
            }
            let success = match entry.success {
                Some(s) => s,
                None => {
                    fails.push(format!("{assert_name}: {stage}[{idx}] has no Success line"));
                    continue;
                }
            };

            if stage != fx.stage {
                // Another program's parser (sshd): a line that is not ours to read.
                if success && event_at(&out, line_no).is_some() {
                    fails.push(format!(
                        "{}:{line_no}: {stage} line should be skipped, we made an event",
                        fx.log
                    ));
                }
                continue;
            }

            if success {
                match event_at(&out, line_no) {
                    Some(ev) => compare(fx.log, line_no, entry, ev, &mut fails),
                    None => fails.push(format!(
                        "{}:{line_no}: crowdsec parses this line, we do not: {:?}",
                        fx.log,
                        out.errors.iter().find(|e| e.line == line_no)
                    )),
                }
                continue;
            }

            // Success == false: must be documented in DIVERGENCES, and we must do what it says.
            let Some(di) = DIVERGENCES
                .iter()
                .position(|d| d.file == fx.log && d.line == line_no)
            else {
                fails.push(format!(
                    "{}:{line_no}: crowdsec refuses this line and DIVERGENCES does not say what we do",
                    fx.log
                ));
                continue;
            };
            seen_divergences[di] = true;
            let d = &DIVERGENCES[di];
            let ev = event_at(&out, line_no);
            let err = out.errors.iter().find(|e| e.line == line_no);
            match &d.ours {
                Ours::Error(prefix) => match err {
                    Some(e) if e.error.to_string().starts_with(prefix) => {}
                    _ => fails.push(format!(
                        "{}:{line_no}: expected parse error {prefix:?}, got error {err:?}, event {ev:?}",
                        fx.log
                    )),
                },
                Ours::Skip => {
                    if ev.is_some() || err.is_some() {
                        fails.push(format!(
                            "{}:{line_no}: expected skip, got error {err:?}, event {ev:?}",
                            fx.log
                        ));
                    }
                }
                Ours::Event(action, direction, want_flow) => match ev {
                    Some(ev) => {
                        let got = (ev.event.action, ev.event.direction, flow(ev));
                        let want = (*action, *direction, want_flow.to_string());
                        if got != want {
                            fails.push(format!(
                                "{}:{line_no}: field action/direction/flow: expected {want:?}, ours {got:?}",
                                fx.log
                            ));
                        }
                    }
                    None => fails.push(format!("{}:{line_no}: expected an event, got error {err:?}", fx.log)),
                },
            }
        }
    }

    for (d, seen) in DIVERGENCES.iter().zip(&seen_divergences) {
        if !seen {
            fails.push(format!(
                "DIVERGENCES row {}:{} matches no Success == false entry",
                d.file, d.line
            ));
        }
    }

    let mut msg = String::new();
    for f in &fails {
        let _ = writeln!(msg, "  {f}");
    }
    assert!(
        fails.is_empty(),
        "{} conformance failure(s):\n{msg}",
        fails.len()
    );
}

/// Every `.log` and `__parser.assert` in the fixture directory is covered by [`FIXTURES`],
/// so a new fixture cannot be added without being checked.
#[test]
fn every_fixture_is_listed() {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".log") || n.ends_with("__parser.assert"))
        .collect();
    names.sort();
    for n in &names {
        let listed = FIXTURES
            .iter()
            .any(|f| f.log == n || f.assert == Some(n.as_str()));
        assert!(listed, "{n} is not listed in FIXTURES");
    }
    assert_eq!(names.len(), 7, "{names:?}");
}

/// The multi-port scan fixture (it has only a scenario assert): 49 TCP lines.
/// Lines 1-17 are the scan CrowdSec alerts on, bare SYNs from 62.34.17.168 to
/// 10.73.140.49 on 17 distinct ports; lines 18-49 are `[UFW AUDIT]` lines on `lo`
/// from 127.0.0.1 and 127.0.0.2 (16 each, ports 53-68) with PROTO=TCP but no TCP
/// flag words, which we parse but do not count as scan attempts.
#[test]
fn multi_port_scan_lines() {
    let log = "crowdsecurity-hub__iptables-scan-multi-port.log";
    let (text, out) = parse_fixture(log);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.events.len(), 49);
    assert_eq!(text.lines().count(), 49);

    // Destination ports as the file gives them, in order (plain text scan of DPT=).
    let file_dpts: Vec<u16> = text
        .lines()
        .map(|l| {
            let v = l
                .split(' ')
                .find_map(|t| t.strip_prefix("DPT="))
                .expect("DPT= on every line");
            v.parse().expect("numeric DPT")
        })
        .collect();

    let mut scan_ports = std::collections::BTreeSet::new();
    for (ev, want_dpt) in out.events.iter().zip(&file_dpts) {
        let (e, l) = (&ev.event, ev.line);
        assert_eq!(e.proto, Protocol::Tcp, "{log}:{l}: proto");
        assert_eq!(e.dst_port, Some(*want_dpt), "{log}:{l}: dst_port");
        if l <= 17 {
            assert_eq!(e.src.to_string(), "62.34.17.168", "{log}:{l}: src");
            assert_eq!(e.dst.to_string(), "10.73.140.49", "{log}:{l}: dst");
            assert_eq!(ev.host.as_deref(), Some("scw-d95986"), "{log}:{l}: host");
            assert!(
                e.flags.is_bare_syn(),
                "{log}:{l}: flags {:?}",
                e.flags.letters()
            );
            assert_eq!(e.direction, Direction::Inbound, "{log}:{l}: direction");
            assert!(e.scanned_port().is_some(), "{log}:{l}: should count");
            assert!(
                scan_ports.insert(want_dpt),
                "{log}:{l}: port {want_dpt} repeats"
            );
        } else {
            let want_src = if l <= 33 { "127.0.0.1" } else { "127.0.0.2" };
            assert_eq!(e.src.to_string(), want_src, "{log}:{l}: src");
            assert_eq!(e.dst.to_string(), "127.0.0.53", "{log}:{l}: dst");
            assert_eq!(ev.host.as_deref(), Some("vm-1"), "{log}:{l}: host");
            assert_eq!(e.flags.0, 0, "{log}:{l}: no flag words on the line");
            assert_eq!(
                e.scanned_port(),
                None,
                "{log}:{l}: TCP without SYN is not a scan attempt"
            );
        }
    }
    assert_eq!(scan_ports.len(), 17);
    let want: Vec<u16> = (53..=68).chain(53..=68).collect();
    assert_eq!(&file_dpts[17..], &want[..]);
}
