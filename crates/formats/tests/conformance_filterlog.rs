//! Conformance of the `filterlog` parser against CrowdSec hub fixtures
//! (`testdata/fixtures/pf/`, MIT, crowdsecurity/hub; see SOURCES.md).
//!
//! - `pf-logs.log` (3 pfSense RFC 3164 lines, 6 OPNsense RFC 5424 lines) with its
//!   `__parser.assert`: CrowdSec's `firewallservices/pf-logs` stage parsed every line
//!   (`len == 9`, entry `i` is line `i + 1`, checked through `Parsed["message"]`).
//!   For each entry our event must match `src_ip`, `dst_ip`, `src_port`, `dst_port`,
//!   `ip4_proto`/`ip6_proto`, `action`, `direction`, `Meta["machine"]` (our host) and
//!   the time (`timestamp`, no year: 2026 from the reference time; or `timestamp8601`).
//!   CrowdSec's `pf-logs-drop` stage refuses exactly the `pass` lines: ours must be
//!   the accept events.
//! - `pfsense-rfc5424-filterlog.log` (its assert has only the syslog and date stages):
//!   host (`Meta["machine"]` of `s00-raw`) and time (`Meta["timestamp"]` of
//!   `s02-enrich`) per line, plus the flow fields read off the file by hand; the
//!   trailing blank line is skipped.
#![allow(clippy::unwrap_used)]

mod common;

use common::{parse_assert, parse_fixture, port, read, Fails};
use scanwatch_event::{parse_rfc3339, Protocol, Timestamp};
use scanwatch_formats::ParsedEvent;

const DIR: &str = "pf";
const REF: &str = "2026-11-26T00:00:00Z";

fn flow(e: &ParsedEvent) -> String {
    let ev = &e.event;
    format!(
        "{} {}:{} > {}:{} {}",
        ev.proto,
        ev.src,
        port(ev.src_port),
        ev.dst,
        port(ev.dst_port),
        ev.flags.letters()
    )
}

/// `Sep 28 10:38:09` in 2026 (the reference year).
fn syslog_time(s: &str) -> Option<Timestamp> {
    const M: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut it = s.split_whitespace();
    let month = it.next()?;
    let m = M.iter().position(|x| *x == month)? as u32 + 1;
    let d: u32 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|x| x.parse::<u32>().ok());
    Timestamp::from_civil(2026, m, d, hms.next()??, hms.next()??, hms.next()??, 0)
}

#[test]
fn pf_logs_parser_assert() {
    let log = "crowdsecurity-hub__pf-logs.log";
    let assert_name = "crowdsecurity-hub__pf-logs__parser.assert";
    let (text, out) = parse_fixture("filterlog", DIR, log, REF);
    let a = parse_assert(assert_name, &read(DIR, assert_name));
    let lines: Vec<&str> = text.lines().collect();
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!((out.events.len(), out.skipped), (9, 0));
    let mut f = Fails::default();
    let key = (
        "s01-parse".to_string(),
        "firewallservices/pf-logs".to_string(),
    );
    f.check(
        log,
        0,
        "len(stage)",
        &lines.len().to_string(),
        &a.lens.get(&key).map_or("-".into(), |n| n.to_string()),
    );

    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let Some(entry) = a.entry("s01-parse", "firewallservices/pf-logs", i) else {
            f.push(format!("{log}:{n}: no assert entry"));
            continue;
        };
        f.check(
            log,
            n,
            "Success",
            "true",
            &format!("{}", entry.success == Some(true)),
        );
        if let Some(m) = entry.parsed.get("message") {
            if !line.ends_with(m.as_str()) {
                f.push(format!(
                    "{log}:{n}: message does not match the line (index mapping)"
                ));
            }
        }
        let Some(ev) = out.events.iter().find(|e| e.line == n) else {
            f.push(format!("{log}:{n}: no event"));
            continue;
        };
        let e = &ev.event;
        let p = &entry.parsed;
        for required in [
            "src_ip",
            "dst_ip",
            "src_port",
            "dst_port",
            "action",
            "direction",
        ] {
            if !p.contains_key(required) {
                f.push(format!("{log}:{n}: assert has no {required}"));
            }
        }
        let mut opt = |field: &str, want: Option<&String>, got: String| {
            if let Some(w) = want {
                f.check(log, n, field, w, &got);
            }
        };
        opt("src_ip", p.get("src_ip"), e.src.to_string());
        opt("dst_ip", p.get("dst_ip"), e.dst.to_string());
        opt("src_port", p.get("src_port"), port(e.src_port));
        opt("dst_port", p.get("dst_port"), port(e.dst_port));
        opt(
            "machine",
            entry.meta.get("machine"),
            ev.host.clone().unwrap_or_default(),
        );
        let proto = p.get("ip4_proto").or_else(|| p.get("ip6_proto"));
        match proto {
            Some(v) => {
                let want =
                    Protocol::parse(v).map_or_else(|| format!("<{v}>"), |p| p.name().into_owned());
                f.check(log, n, "proto", &want, &e.proto.name());
            }
            None => f.push(format!("{log}:{n}: assert has no ip4_proto/ip6_proto")),
        }
        if let Some(v) = p.get("action") {
            let want = match v.as_str() {
                "pass" => "accept",
                "block" => "drop",
                other => other,
            };
            f.check(log, n, "action", want, e.action.name());
        }
        if let Some(v) = p.get("direction") {
            let want = match v.as_str() {
                "in" => "Inbound",
                "out" => "Outbound",
                other => other,
            };
            f.check(log, n, "direction", want, &format!("{:?}", e.direction));
        }
        if let Some(v) = p.get("timestamp") {
            let want = syslog_time(v).map_or_else(|| format!("<{v}>"), |t| t.to_rfc3339());
            f.check(log, n, "timestamp", &want, &e.time.to_rfc3339());
        }
        if let Some(v) = p.get("timestamp8601") {
            let want = parse_rfc3339(v).map_or_else(|| format!("<{v}>"), |t| t.to_rfc3339());
            f.check(log, n, "timestamp8601", &want, &e.time.to_rfc3339());
        }
        // CrowdSec's drop filter refuses exactly the `pass` lines.
        if let Some(d) = a.entry("s01-parse", "firewallservices/pf-logs-drop", i) {
            let dropped = d.success == Some(true);
            f.check(
                log,
                n,
                "pf-logs-drop",
                &dropped.to_string(),
                &(e.action.name() == "drop").to_string(),
            );
        }
    }
    // Which lines count as scan attempts: line 2 (inbound SYN), the inbound UDP lines,
    // and the inbound SYNs 6 and 7; not line 1 (PA) or line 3 (outbound FA).
    let counted: Vec<usize> = out
        .events
        .iter()
        .filter(|e| e.event.is_unsolicited())
        .map(|e| e.line)
        .collect();
    f.check(
        log,
        0,
        "counted lines",
        "[2, 4, 5, 6, 7, 8, 9]",
        &format!("{counted:?}"),
    );
    f.finish();
}

#[test]
fn pfsense_rfc5424() {
    let log = "crowdsecurity-hub__pfsense-rfc5424-filterlog.log";
    let assert_name = "crowdsecurity-hub__pfsense-rfc5424-filterlog__parser.assert";
    let (text, out) = parse_fixture("filterlog", DIR, log, REF);
    let a = parse_assert(assert_name, &read(DIR, assert_name));
    assert_eq!(text.lines().count(), 5);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!((out.events.len(), out.skipped), (4, 1));
    let mut f = Fails::default();
    let want = [
        "tcp 192.168.5.6:42970 > 192.168.1.100:80 S",
        "tcp 192.168.10.110:55726 > 192.168.5.6:443 S",
        "tcp fdfd:ace:ace:10:d8:cdbf:f6f8:6d69:65382 > fdfd:ace:ace:5::6:443 S",
        "tcp 192.168.5.6:58014 > 192.168.1.100:80 S",
    ];
    for (i, (ev, want)) in out.events.iter().zip(want).enumerate() {
        let n = i + 1;
        f.check(log, n, "line", &n.to_string(), &ev.line.to_string());
        f.check(log, n, "flow", want, &flow(ev));
        f.check(log, n, "action", "drop", ev.event.action.name());
        f.check(
            log,
            n,
            "counts",
            "true",
            &ev.event.is_unsolicited().to_string(),
        );
        match a.entry("s00-raw", "crowdsecurity/syslog-logs", i) {
            Some(e) => f.check(
                log,
                n,
                "machine",
                e.meta.get("machine").map_or("-", |s| s),
                ev.host.as_deref().unwrap_or(""),
            ),
            None => f.push(format!("{log}:{n}: no s00-raw entry")),
        }
        match a
            .entry("s02-enrich", "crowdsecurity/dateparse-enrich", i)
            .and_then(|e| e.meta.get("timestamp"))
        {
            Some(t) => {
                let want = parse_rfc3339(t).map_or_else(|| format!("<{t}>"), |t| t.to_rfc3339());
                f.check(log, n, "timestamp", &want, &ev.event.time.to_rfc3339());
            }
            None => f.push(format!("{log}:{n}: no s02-enrich timestamp")),
        }
    }
    f.finish();
}

#[test]
fn every_fixture_is_listed() {
    let mut names: Vec<String> = std::fs::read_dir(common::fixture_dir(DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "crowdsecurity-hub__pf-logs.log",
            "crowdsecurity-hub__pf-logs__parser.assert",
            "crowdsecurity-hub__pfsense-rfc5424-filterlog.log",
            "crowdsecurity-hub__pfsense-rfc5424-filterlog__parser.assert",
        ]
    );
}
