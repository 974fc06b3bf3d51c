//! A cheap stand-in for fuzzing the newer parsers in `cargo test`: every fixture line
//! and fuzz seed line, cut at every character and with single characters replaced,
//! must give an event, a skip or an error (never a panic), and events must keep the
//! invariants the fuzz targets check (`fuzz/fuzz_targets/common.rs`).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use scanwatch_event::{parse_rfc3339, Protocol};
use scanwatch_formats::{format_by_name, LineOutcome, ParseError, ParserOptions};

const FORMATS: &[&str] = &[
    "zeek-json",
    "ulogd-json",
    "fastlog",
    "cisco-asa",
    "mikrotik",
    "pflog",
];

fn sample_lines() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["testdata/fixtures", "fuzz/seeds"] {
        for sub in std::fs::read_dir(root.join(dir)).unwrap() {
            let sub = sub.unwrap().path();
            if sub.is_dir() {
                for f in std::fs::read_dir(&sub).unwrap() {
                    files.push(f.unwrap().path());
                }
            }
        }
    }
    files.sort();
    let mut lines: Vec<String> = files
        .iter()
        .filter(|p| p.extension().is_none_or(|e| e != "assert"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

fn check(format: &str, outcome: &LineOutcome<'_>, line: &str) {
    match outcome {
        LineOutcome::Event { event: ev, .. } => {
            // These formats always give both ports for TCP and UDP, and none otherwise.
            let ports = ev.proto.has_ports();
            assert_eq!(ev.src_port.is_some(), ports, "{format}: {line:?}");
            assert_eq!(ev.dst_port.is_some(), ports, "{format}: {line:?}");
            if ev.flags_known || ev.flags.0 != 0 {
                assert_eq!(ev.proto, Protocol::Tcp, "{format}: flags: {line:?}");
            }
            if ev.icmp_type.is_some() {
                assert!(
                    matches!(ev.proto, Protocol::Icmp | Protocol::Icmpv6),
                    "{format}: icmp type: {line:?}"
                );
            }
            assert!(ev.count >= 1);
            let _ = ev.time.to_rfc3339();
        }
        LineOutcome::Error(e) => {
            if let ParseError::Timestamp(v) | ParseError::InvalidField { value: v, .. } = e {
                assert!(v.chars().count() <= 64, "{format}: long error: {line:?}");
            }
            let msg = e.to_string();
            assert!(
                msg.starts_with(|c: char| c.is_ascii_lowercase()) && !msg.ends_with('.'),
                "{format}: message {msg:?}"
            );
        }
        LineOutcome::Skip => {}
    }
}

#[test]
fn cut_and_mutated_lines_never_panic() {
    let opts = ParserOptions {
        reference_time: parse_rfc3339("2026-11-26T00:00:00Z").unwrap(),
    };
    let lines = sample_lines();
    assert!(lines.len() > 100, "{}", lines.len());
    for format in FORMATS {
        let spec = format_by_name(format).unwrap();
        let mut parser = spec.parser(&opts);
        for line in &lines {
            let cuts: Vec<usize> = line.char_indices().map(|(i, _)| i).collect();
            for &i in &cuts {
                let cut = &line[..i];
                let o = parser.parse_line(cut);
                check(format, &o, cut);
            }
            // Replace one character in every 7th place with characters that matter to
            // the parsers.
            for &i in cuts.iter().step_by(7) {
                let c = line[i..].chars().next().unwrap();
                for r in [' ', ':', '.', '9', '{', '"', '\u{e9}', '/'] {
                    let mut m = String::with_capacity(line.len() + 2);
                    m.push_str(&line[..i]);
                    m.push(r);
                    m.push_str(&line[i + c.len_utf8()..]);
                    let o = parser.parse_line(&m);
                    check(format, &o, &m);
                }
            }
        }
    }
}
