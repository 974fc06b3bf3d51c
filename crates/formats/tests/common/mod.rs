//! Shared helpers for the conformance tests: reading CrowdSec `*.assert` files and
//! fixtures. (The iptables test keeps its own copy of the assert reader.)
#![allow(dead_code, clippy::unwrap_used)] // each test uses a part; a test may panic

use std::collections::BTreeMap;
use std::path::PathBuf;

use scanwatch_event::parse_rfc3339;
use scanwatch_formats::{format_by_name, parse_str, ParseOutput, ParserOptions};

/// One `results[stage][key][i]` entry: `Success`, `Evt.Parsed[...]`, `Evt.Meta[...]`.
#[derive(Debug, Default)]
pub struct Entry {
    pub success: Option<bool>,
    pub parsed: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
}

/// The entries of every stage (`s00-raw`, `s01-parse`, `s02-enrich`).
#[derive(Debug, Default)]
pub struct Assert {
    /// (stage, key) -> `len(...)`.
    pub lens: BTreeMap<(String, String), usize>,
    /// (stage, key, index) -> entry.
    pub entries: BTreeMap<(String, String, usize), Entry>,
}

impl Assert {
    pub fn entry(&self, stage: &str, key: &str, i: usize) -> Option<&Entry> {
        self.entries.get(&(stage.to_string(), key.to_string(), i))
    }
}

/// Reads a Go-style quoted string (`"a \"b\""`).
pub fn unquote(s: &str, ctx: &str) -> String {
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

fn bracketed(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_prefix("[\"")?;
    let end = s.find("\"]")?;
    Some((&s[..end], &s[end + 2..]))
}

pub fn parse_assert(name: &str, text: &str) -> Assert {
    let mut a = Assert::default();
    for (n, line) in text.lines().enumerate() {
        let ctx = format!("{name}:{}", n + 1);
        if let Some(rest) = line.strip_prefix("len(results") {
            let Some((stage, rest)) = bracketed(rest) else {
                continue;
            };
            let (key, rest) = bracketed(rest).unwrap_or_else(|| panic!("{ctx}: bad len"));
            let n: usize = rest
                .strip_prefix(") == ")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{ctx}: bad len line"));
            a.lens.insert((stage.to_string(), key.to_string()), n);
        } else if let Some(rest) = line.strip_prefix("results") {
            let (stage, rest) = bracketed(rest).unwrap_or_else(|| panic!("{ctx}: bad stage"));
            let (key, rest) = bracketed(rest).unwrap_or_else(|| panic!("{ctx}: bad key"));
            let (idx, rest) = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once("]."))
                .unwrap_or_else(|| panic!("{ctx}: bad index"));
            let idx: usize = idx.parse().unwrap_or_else(|_| panic!("{ctx}: bad index"));
            let (lhs, rhs) = rest
                .split_once(" == ")
                .unwrap_or_else(|| panic!("{ctx}: no =="));
            let e = a
                .entries
                .entry((stage.to_string(), key.to_string(), idx))
                .or_default();
            if lhs == "Success" {
                e.success = Some(rhs == "true");
            } else if let Some((k, _)) = lhs.strip_prefix("Evt.Parsed").and_then(bracketed) {
                e.parsed.insert(k.to_string(), unquote(rhs, &ctx));
            } else if let Some((k, _)) = lhs.strip_prefix("Evt.Meta").and_then(bracketed) {
                e.meta.insert(k.to_string(), unquote(rhs, &ctx));
            }
        }
    }
    a
}

pub fn fixture_dir(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/fixtures")
        .join(dir)
}

pub fn read(dir: &str, name: &str) -> String {
    let p = fixture_dir(dir).join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Parses a fixture with a format; `reference` is the RFC 3339 reference time.
pub fn parse_fixture(format: &str, dir: &str, log: &str, reference: &str) -> (String, ParseOutput) {
    let text = read(dir, log);
    let spec = format_by_name(format).expect("format is registered");
    let opts = ParserOptions {
        reference_time: parse_rfc3339(reference).expect("valid reference time"),
    };
    let out = parse_str(spec, &text, &opts);
    (text, out)
}

pub fn port(p: Option<u16>) -> String {
    p.map_or_else(|| "-".to_string(), |p| p.to_string())
}

/// Collects `file:line: field …` mismatches and fails with all of them at the end.
#[derive(Default)]
pub struct Fails(pub Vec<String>);

impl Fails {
    pub fn check(&mut self, file: &str, line: usize, field: &str, want: &str, got: &str) {
        if want != got {
            self.0.push(format!(
                "{file}:{line}: field {field}: expected {want:?}, ours {got:?}"
            ));
        }
    }
    pub fn push(&mut self, s: String) {
        self.0.push(s);
    }
    pub fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} conformance failure(s):\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

/// Checks that every `Parsed`/`Meta` key of an assert entry is either compared by the
/// test (`checked`) or listed as a value scanwatch's events do not carry
/// (`not_carried`), so a field added to a fixture's expected output is not silently
/// ignored.
pub fn all_keys_accounted(
    f: &mut Fails,
    file: &str,
    line: usize,
    entry: &Entry,
    checked: &[&str],
    not_carried: &[&str],
) {
    for key in entry.parsed.keys().chain(entry.meta.keys()) {
        if !checked.contains(&key.as_str()) && !not_carried.contains(&key.as_str()) {
            f.push(format!(
                "{file}:{line}: assert field {key:?} is neither checked nor listed as not carried"
            ));
        }
    }
}
