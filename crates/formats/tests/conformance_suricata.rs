//! Conformance of the `suricata` (EVE JSON) parser against CrowdSec hub fixtures
//! (`testdata/fixtures/suricata/`, MIT, crowdsecurity/hub; see SOURCES.md).
//!
//! - `suricata-logs-evelog.log` with `__parser.assert`: CrowdSec's
//!   `crowdsecurity/suricata-evelogs` stage saw every line (`len == 8`, so entry `i`
//!   is line `i + 1`; checked through `Parsed["message"]`, the raw line). For each
//!   `Success == true` entry (the alerts) our event must have CrowdSec's `src_ip`
//!   (`Meta["source_ip"]`), `dest_ip`, `dest_port`, `proto` and `time` (UTC, no zone);
//!   `src_port`, absent from the assert, is compared with the line's own JSON. Every
//!   `Success == false` entry (CrowdSec only reads alerts) must be in [`DIVERGENCES`]
//!   with what we do instead: flows are events, stats are skipped.
//! - `suricata-eve-detect.log` (only a scenario assert): 4 alert events whose fields
//!   were read off the file by hand.
#![allow(clippy::unwrap_used)]

mod common;

use common::{parse_assert, parse_fixture, port, read, Fails};
use scanwatch_event::{parse_rfc3339, Action, Direction, Protocol};
use scanwatch_formats::ParsedEvent;

const DIR: &str = "suricata";
const STAGE: (&str, &str) = ("s01-parse", "crowdsecurity/suricata-evelogs");
const REF: &str = "2026-11-26T00:00:00Z";

/// (line, what we do): `Some(flow)` = event `proto src:sport > dst:dport` counted as a
/// scan attempt or not; `None` = skipped.
const DIVERGENCES: &[(usize, Option<(&str, bool)>)] = &[
    // Client flags 0x06 (SYN, RST), no ACK: a probe.
    (3, Some(("tcp 1.2.3.6:56814 > 127.0.0.1:2352", true))),
    (4, None), // stats
    (6, Some(("tcp 1.2.3.6:56814 > 127.0.0.1:2352", true))),
    (7, None), // stats
];

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

#[test]
fn evelog_parser_assert() {
    let log = "crowdsecurity-hub__suricata-logs-evelog.log";
    let assert_name = "crowdsecurity-hub__suricata-logs-evelog__parser.assert";
    let (text, out) = parse_fixture("suricata", DIR, log, REF);
    let a = parse_assert(assert_name, &read(DIR, assert_name));
    let lines: Vec<&str> = text.lines().collect();
    let mut f = Fails::default();

    let key = (STAGE.0.to_string(), STAGE.1.to_string());
    f.check(
        log,
        0,
        "len(stage)",
        &lines.len().to_string(),
        &a.lens.get(&key).map_or("-".into(), |n| n.to_string()),
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!((out.events.len(), out.skipped), (6, 2));

    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let Some(entry) = a.entry(STAGE.0, STAGE.1, i) else {
            f.push(format!("{log}:{n}: no assert entry"));
            continue;
        };
        if let Some(m) = entry.parsed.get("message") {
            f.check(log, n, "message (index mapping)", m, line);
        }
        let ev = out.events.iter().find(|e| e.line == n);
        if entry.success == Some(true) {
            let Some(ev) = ev else {
                f.push(format!("{log}:{n}: crowdsec parses this line, we do not"));
                continue;
            };
            let e = &ev.event;
            let p = &entry.parsed;
            for required in ["dest_ip", "dest_port", "proto", "time"] {
                if !p.contains_key(required) {
                    f.push(format!("{log}:{n}: assert has no {required}"));
                }
            }
            if let Some(v) = entry.meta.get("source_ip") {
                f.check(log, n, "src_ip", v, &e.src.to_string());
            }
            if let Some(v) = p.get("dest_ip") {
                f.check(log, n, "dst_ip", v, &e.dst.to_string());
            }
            if let Some(v) = p.get("dest_port") {
                f.check(log, n, "dst_port", v, &port(e.dst_port));
            }
            if let Some(v) = p.get("proto") {
                let want =
                    Protocol::parse(v).map_or_else(|| format!("<{v}>"), |p| p.name().into_owned());
                f.check(log, n, "proto", &want, &e.proto.name());
            }
            if let Some(v) = p.get("time") {
                let want = parse_rfc3339(&format!("{v}Z"))
                    .map_or_else(|| format!("<{v}>"), |t| t.to_rfc3339());
                f.check(log, n, "time", &want, &e.time.to_rfc3339());
            }
            let json: serde_json::Value = serde_json::from_str(line).unwrap();
            f.check(
                log,
                n,
                "src_port",
                &json["src_port"].to_string(),
                &port(e.src_port),
            );
            f.check(
                log,
                n,
                "direction",
                "Inbound",
                &format!("{:?}", e.direction),
            );
            f.check(log, n, "action", "accept", e.action.name());
            f.check(log, n, "counts", "true", &e.is_unsolicited().to_string());
        } else {
            match DIVERGENCES.iter().find(|d| d.0 == n) {
                None => f.push(format!(
                    "{log}:{n}: crowdsec refuses this line and DIVERGENCES does not say what we do"
                )),
                Some((_, None)) => {
                    if ev.is_some() {
                        f.push(format!("{log}:{n}: expected a skip"));
                    }
                }
                Some((_, Some((want, counts)))) => match ev {
                    None => f.push(format!("{log}:{n}: expected an event")),
                    Some(ev) => {
                        f.check(log, n, "flow", want, &flow(ev));
                        f.check(
                            log,
                            n,
                            "counts",
                            &counts.to_string(),
                            &ev.event.is_unsolicited().to_string(),
                        );
                        f.check(
                            log,
                            n,
                            "direction",
                            "Unknown",
                            &format!("{:?}", ev.event.direction),
                        );
                    }
                },
            }
        }
    }
    // Line 6 uses the `-0000` offset.
    let l6 = out.events.iter().find(|e| e.line == 6).unwrap();
    f.check(
        log,
        6,
        "time",
        "2022-07-12T05:52:18.378Z",
        &l6.event.time.to_rfc3339(),
    );
    f.finish();
}

#[test]
fn eve_detect_alerts() {
    let log = "crowdsecurity-hub__suricata-eve-detect.log";
    let (_, out) = parse_fixture("suricata", DIR, log, REF);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!((out.events.len(), out.skipped), (4, 0));
    let mut f = Fails::default();
    let want = [
        (
            1,
            "tcp 1.2.3.4:33270 > 1.2.3.5:80",
            "2022-07-12T06:22:33.415Z",
        ),
        (
            2,
            "tcp 2.2.3.4:5164 > 2.2.3.5:5060",
            "2022-07-12T11:26:34.407Z",
        ),
        (
            3,
            "tcp 2.2.3.4:5164 > 2.2.3.5:5060",
            "2022-07-12T11:26:35.407Z",
        ),
        (
            4,
            "tcp 2.2.3.4:5164 > 2.2.3.5:5060",
            "2022-07-12T11:26:36.407Z",
        ),
    ];
    for (ev, (n, fl, t)) in out.events.iter().zip(want) {
        f.check(log, n, "line", &n.to_string(), &ev.line.to_string());
        f.check(log, n, "flow", fl, &flow(ev));
        f.check(log, n, "time", t, &ev.event.time.to_rfc3339());
        f.check(
            log,
            n,
            "flags_known",
            "false",
            &ev.event.flags_known.to_string(),
        );
        f.check(
            log,
            n,
            "action",
            Action::Accept.name(),
            ev.event.action.name(),
        );
        f.check(
            log,
            n,
            "direction",
            &format!("{:?}", Direction::Inbound),
            &format!("{:?}", ev.event.direction),
        );
        f.check(log, n, "host", "", ev.host.as_deref().unwrap_or(""));
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
            "crowdsecurity-hub__suricata-eve-detect.log",
            "crowdsecurity-hub__suricata-logs-evelog.log",
            "crowdsecurity-hub__suricata-logs-evelog__parser.assert",
            // fast.log fixtures: conformance_fastlog.rs.
            "crowdsecurity-hub__suricata-logs-fastlog.log",
            "crowdsecurity-hub__suricata-logs-fastlog__parser.assert",
            "plaso__suricata_alert_fast.log",
        ]
    );
}
